-- Encrypted values stay in openrouter_api_key: decrypt them (or restore a plaintext backup)
-- before reverting, or the clients cannot be found by key any more.
DROP INDEX orgusage_uq_client_organizations_api_key_lookup;
ALTER TABLE client_organizations DROP COLUMN openrouter_api_key_lookup;
