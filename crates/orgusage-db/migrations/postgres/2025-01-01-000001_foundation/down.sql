DROP TABLE user_client_mapping;
DROP TABLE client_organizations;
DROP TABLE global_settings;
