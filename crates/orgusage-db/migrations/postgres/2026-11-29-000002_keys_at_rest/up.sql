-- Keys at rest (optional encryption of stored secrets, see docs/operations.md "Keys at rest").
-- When a key ring is configured, openrouter_api_key holds `enc:v1:<key-id>:<base64>` (a random
-- nonce makes every ciphertext distinct, so the old unique index no longer sees duplicates) and
-- this column holds `v1:<key-id>:<base64 HMAC-SHA256 of the key>`: the equality lookup of
-- get_client_by_api_key and the uniqueness of API keys move here. NULL for plaintext rows
-- (several NULLs are allowed by a unique index on both backends).
ALTER TABLE client_organizations ADD COLUMN openrouter_api_key_lookup TEXT;
CREATE UNIQUE INDEX orgusage_uq_client_organizations_api_key_lookup ON client_organizations (openrouter_api_key_lookup);
