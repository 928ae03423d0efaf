DROP TABLE client_model_daily_usage;
DROP TABLE client_user_daily_usage;
DROP TABLE client_daily_usage;
