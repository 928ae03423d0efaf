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
);

-- Reconciliation against OpenRouter's /activity, which is per UTC day and model: the ledger
-- keeps the generation's UTC creation instant (unix seconds) and model. NULL for rows written
-- before this migration or through mark_generation_processed.
ALTER TABLE processed_generations ADD COLUMN created_at BIGINT;
ALTER TABLE processed_generations ADD COLUMN model_name TEXT;
CREATE INDEX orgusage_idx_processed_generations_client_created ON processed_generations (client_org_id, created_at);

-- authorize() on PostgreSQL in ONE round trip. The per-client advisory lock must be taken
-- BEFORE the month is summed, and a single SQL statement takes its snapshot before it could
-- wait for the lock; a VOLATILE PL/pgSQL function takes a fresh snapshot for every statement,
-- so the sums below see every transaction that committed before the lock was granted. The lock
-- is the one `MonthLock` takes in the record paths (namespace 0x6f726775 = "orgu").
--
-- status: 0 = the client has no limit (nothing reserved, no lock taken), 1 = reserved,
-- 2 = refused, 3 = unknown or inactive client. The month is the client-local month of p_now
-- computed with PostgreSQL's time-zone database. Expired reservations are skipped, not deleted:
-- deleting them here would wait on a record transaction that is settling one of them while it
-- waits for this lock (a deadlock); `purge_expired_reservations` removes them outside the lock.
CREATE FUNCTION orgusage_authorize(p_id TEXT, p_client TEXT, p_estimate NUMERIC, p_now BIGINT, p_expires BIGINT)
RETURNS TABLE (status INTEGER, limit_units BIGINT, spent BIGINT, reserved BIGINT, amount BIGINT, month_first DATE)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c_tz TEXT;
    c_rate BIGINT;
    c_limit BIGINT;
    c_active BOOLEAN;
    v_first DATE;
    v_amount BIGINT;
    v_spent BIGINT;
    v_reserved BIGINT;
BEGIN
    SELECT c.timezone, c.markup_rate, c.monthly_limit, c.is_active
      INTO c_tz, c_rate, c_limit, c_active
      FROM client_organizations c WHERE c.id = p_client;
    IF NOT FOUND OR NOT c_active THEN
        RETURN QUERY SELECT 3, NULL::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT, NULL::DATE;
        RETURN;
    END IF;
    -- estimate (USD, exact) x rate (nano-units) = nano-USD; round() on numeric is half away
    -- from zero, the rule of orgusage_domain::money::mul_rate_to_units.
    v_amount := round(p_estimate * c_rate)::BIGINT;
    v_first := date_trunc('month', to_timestamp(p_now) AT TIME ZONE c_tz)::DATE;
    IF c_limit IS NULL THEN
        RETURN QUERY SELECT 0, NULL::BIGINT, 0::BIGINT, 0::BIGINT, v_amount, v_first;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(1869768565, hashtext(p_client));
    SELECT COALESCE(SUM(u.markup_cost), 0)::BIGINT INTO v_spent
      FROM client_daily_usage u
     WHERE u.client_org_id = p_client
       AND u.usage_date BETWEEN v_first AND (v_first + INTERVAL '1 month' - INTERVAL '1 day')::DATE;
    SELECT COALESCE(SUM(r.amount), 0)::BIGINT INTO v_reserved
      FROM spend_reservations r
     WHERE r.client_org_id = p_client AND r.month_start = v_first AND r.expires_at > p_now;
    IF v_spent::NUMERIC + v_reserved + v_amount > c_limit THEN
        RETURN QUERY SELECT 2, c_limit, v_spent, v_reserved, v_amount, v_first;
        RETURN;
    END IF;
    -- A reservation is a hold on budget, not money: losing the last few hundred milliseconds
    -- of reservations in a server crash only loosens the guard by their amounts, while a
    -- synchronous commit would cost a WAL flush per authorization (docs/spend-control.md).
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO spend_reservations (id, client_org_id, month_start, amount, created_at, expires_at)
    VALUES (p_id, p_client, v_first, v_amount, p_now, p_expires);
    RETURN QUERY SELECT 1, c_limit, v_spent, v_reserved, v_amount, v_first;
END;
$$;
