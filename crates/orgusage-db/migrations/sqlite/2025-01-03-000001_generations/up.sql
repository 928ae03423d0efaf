-- The exactly-once ledger: one row per (client, OpenRouter generation id), inserted in the same
-- transaction as the usage it bills. total_cost is always the RAW cost in nano-USD.
CREATE TABLE processed_generations (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    id TEXT NOT NULL,
    generation_date DATE NOT NULL,
    processed_at BIGINT NOT NULL,
    total_cost BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_processed_generations PRIMARY KEY (client_org_id, id)
);
CREATE INDEX orgusage_idx_processed_generations_processed_at ON processed_generations (processed_at);
CREATE INDEX orgusage_idx_processed_generations_client_date ON processed_generations (client_org_id, generation_date);

CREATE TABLE processed_generation_cleanup_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cleanup_date DATE NOT NULL,
    cutoff_date DATE NOT NULL,
    cutoff_timestamp BIGINT NOT NULL,
    days_retained BIGINT NOT NULL,
    records_before BIGINT NOT NULL,
    records_deleted BIGINT NOT NULL,
    records_remaining BIGINT NOT NULL,
    old_tokens_removed BIGINT NOT NULL,
    old_cost_removed BIGINT NOT NULL,
    payload_bytes_removed BIGINT NOT NULL,
    cleanup_duration_ms BIGINT NOT NULL,
    success BOOLEAN NOT NULL DEFAULT 1,
    error_message TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX orgusage_idx_cleanup_log_cleanup_date ON processed_generation_cleanup_log (cleanup_date);
CREATE INDEX orgusage_idx_cleanup_log_success ON processed_generation_cleanup_log (success);
