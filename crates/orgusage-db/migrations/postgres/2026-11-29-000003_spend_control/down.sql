DROP FUNCTION orgusage_authorize(TEXT, TEXT, NUMERIC, BIGINT, BIGINT);
DROP INDEX orgusage_idx_processed_generations_client_created;
ALTER TABLE processed_generations DROP COLUMN model_name;
ALTER TABLE processed_generations DROP COLUMN created_at;
DROP TABLE spend_reservations;
