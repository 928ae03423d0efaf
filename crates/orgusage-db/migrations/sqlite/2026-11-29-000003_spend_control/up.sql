-- Spend control (issue 11).
--
-- A reservation holds part of a limited client's monthly budget between `authorize` (before an
-- LLM request) and the record that settles it (or `release`, or expiry). amount is the
-- MARKED-UP estimate in nano-USD, counted against the client-local month starting month_start.
--
-- Keyed by (client, id) and, on SQLite, WITHOUT ROWID: one b-tree to write per authorization
-- and per settle. The table only holds live reservations (settled, released and purged ones are
-- deleted), so the per-client sum reads a handful of rows.
CREATE TABLE spend_reservations (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    id TEXT NOT NULL,
    month_start DATE NOT NULL,
    amount BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_spend_reservations PRIMARY KEY (client_org_id, id)
) WITHOUT ROWID;

-- Reconciliation against OpenRouter's /activity, which is per UTC day and model: the ledger
-- keeps the generation's UTC creation instant (unix seconds) and model. NULL for rows written
-- before this migration or through mark_generation_processed.
ALTER TABLE processed_generations ADD COLUMN created_at BIGINT;
ALTER TABLE processed_generations ADD COLUMN model_name TEXT;
CREATE INDEX orgusage_idx_processed_generations_client_created ON processed_generations (client_org_id, created_at);
