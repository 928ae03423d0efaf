-- Per-client-month rollups of client_user_daily_usage, so that a report over a year reads twelve
-- month rows per user instead of 365 day rows (docs/performance.md, "Reports").
--
-- One row per (client, client-local month, user): the sums of the month's user-day rows,
-- days_active = how many user-day rows the month has (the reports' COUNT(*)), and the greatest
-- openrouter_user_id of those rows (the reports' MAX). month_start is the first day of the
-- month of usage_date, which is already a client-local date.
--
-- The trigger below keeps it equal to its days in the same transaction as every write to the
-- day table, whichever path wrote it (record_usage, the one-statement path, batches, the
-- importer, a manual repair): the day rows stay the single source of truth.
CREATE TABLE client_user_monthly_usage (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    month_start DATE NOT NULL,
    user_id TEXT NOT NULL,
    openrouter_user_id TEXT NOT NULL,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_requests BIGINT NOT NULL DEFAULT 0,
    raw_cost BIGINT NOT NULL DEFAULT 0,
    markup_cost BIGINT NOT NULL DEFAULT 0,
    days_active BIGINT NOT NULL DEFAULT 0,
    overflowed BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT orgusage_pk_client_user_monthly_usage PRIMARY KEY (client_org_id, month_start, user_id)
);

INSERT INTO client_user_monthly_usage (client_org_id, month_start, user_id, openrouter_user_id,
    total_tokens, input_tokens, output_tokens, total_requests, raw_cost, markup_cost, days_active)
SELECT client_org_id, CAST(date_trunc('month', CAST(usage_date AS timestamp)) AS date), user_id,
    MAX(openrouter_user_id), CAST(SUM(total_tokens) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT),
    CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(total_requests) AS BIGINT),
    CAST(SUM(raw_cost) AS BIGINT), CAST(SUM(markup_cost) AS BIGINT), COUNT(*)
FROM client_user_daily_usage
GROUP BY 1, 2, 3;

-- Adds NEW and removes OLD (an UPDATE is both, as a difference when the row stays in its
-- user-month). A month whose tokens or costs would leave BIGINT (each day fits, their sum need
-- not) is flagged `overflowed` and keeps its last exact sums; a report that reads the month then
-- fails with Overflow, as the same SUM over the day rows does.
CREATE FUNCTION orgusage_user_month_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_month date;
    old_month date;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_month := CAST(date_trunc('month', CAST(NEW.usage_date AS timestamp)) AS date);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_month := CAST(date_trunc('month', CAST(OLD.usage_date AS timestamp)) AS date);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.client_org_id = OLD.client_org_id AND NEW.user_id = OLD.user_id
        AND new_month = old_month THEN
        -- Every upsert of record_usage: the day's greatest openrouter_user_id only grows; a
        -- writer that lowers it makes the month's value be read again from its days.
        UPDATE client_user_monthly_usage m SET
            openrouter_user_id = CASE WHEN NEW.openrouter_user_id >= OLD.openrouter_user_id
                THEN GREATEST(m.openrouter_user_id, NEW.openrouter_user_id)
                ELSE (SELECT MAX(d.openrouter_user_id) FROM client_user_daily_usage d
                      WHERE d.client_org_id = NEW.client_org_id AND d.usage_date >= new_month
                        AND d.usage_date < new_month + INTERVAL '1 month'
                        AND d.user_id = NEW.user_id) END,
            total_tokens = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.total_tokens ELSE m.total_tokens + (NEW.total_tokens - OLD.total_tokens) END,
            input_tokens = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.input_tokens ELSE m.input_tokens + (NEW.input_tokens - OLD.input_tokens) END,
            output_tokens = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.output_tokens ELSE m.output_tokens + (NEW.output_tokens - OLD.output_tokens) END,
            total_requests = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.total_requests ELSE m.total_requests + (NEW.total_requests - OLD.total_requests) END,
            raw_cost = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.raw_cost ELSE m.raw_cost + (NEW.raw_cost - OLD.raw_cost) END,
            markup_cost = CASE WHEN (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END) THEN m.markup_cost ELSE m.markup_cost + (NEW.markup_cost - OLD.markup_cost) END,
            overflowed = (m.overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN m.total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE FALSE END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN m.raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE FALSE END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN m.markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE FALSE END)
        WHERE m.client_org_id = NEW.client_org_id AND m.month_start = new_month
          AND m.user_id = NEW.user_id;
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM client_user_monthly_usage
        WHERE client_org_id = OLD.client_org_id AND month_start = old_month
          AND user_id = OLD.user_id AND days_active <= 1;
        UPDATE client_user_monthly_usage m SET
            openrouter_user_id = CASE WHEN OLD.openrouter_user_id < m.openrouter_user_id
                THEN m.openrouter_user_id
                ELSE (SELECT MAX(d.openrouter_user_id) FROM client_user_daily_usage d
                      WHERE d.client_org_id = OLD.client_org_id AND d.usage_date >= old_month
                        AND d.usage_date < old_month + INTERVAL '1 month'
                        AND d.user_id = OLD.user_id) END,
            total_tokens = m.total_tokens - OLD.total_tokens,
            input_tokens = m.input_tokens - OLD.input_tokens,
            output_tokens = m.output_tokens - OLD.output_tokens,
            total_requests = m.total_requests - OLD.total_requests,
            raw_cost = m.raw_cost - OLD.raw_cost,
            markup_cost = m.markup_cost - OLD.markup_cost,
            days_active = m.days_active - 1
        WHERE m.client_org_id = OLD.client_org_id AND m.month_start = old_month
          AND m.user_id = OLD.user_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO client_user_monthly_usage AS m (client_org_id, month_start, user_id,
            openrouter_user_id, total_tokens, input_tokens, output_tokens, total_requests,
            raw_cost, markup_cost, days_active)
        VALUES (NEW.client_org_id, new_month, NEW.user_id, NEW.openrouter_user_id,
            NEW.total_tokens, NEW.input_tokens, NEW.output_tokens, NEW.total_requests,
            NEW.raw_cost, NEW.markup_cost, 1)
        ON CONFLICT (client_org_id, month_start, user_id) DO UPDATE SET
            openrouter_user_id = GREATEST(m.openrouter_user_id, excluded.openrouter_user_id),
            total_tokens = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.total_tokens ELSE m.total_tokens + excluded.total_tokens END,
            input_tokens = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.input_tokens ELSE m.input_tokens + excluded.input_tokens END,
            output_tokens = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.output_tokens ELSE m.output_tokens + excluded.output_tokens END,
            total_requests = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.total_requests ELSE m.total_requests + excluded.total_requests END,
            raw_cost = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.raw_cost ELSE m.raw_cost + excluded.raw_cost END,
            markup_cost = CASE WHEN (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN m.markup_cost ELSE m.markup_cost + excluded.markup_cost END,
            days_active = m.days_active + 1,
            overflowed = (m.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN m.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN m.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN m.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END);
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to the commit: every transaction then locks its month rows after all its day rows
-- (and after the monthly-limit lock), and the batch path writes its user rows ordered by
-- (client, month, user, day), so month rows are locked in key order too. No transaction can
-- then hold a month row while waiting for a day row, which rules out deadlocks between
-- single records, one-statement records and batches (docs/architecture.md, "No deadlocks").
--
-- The library's batch path (record_usage_batch, record_generations, group commit) sets
-- orgusage.rollups_by_caller for its own transaction only (set_config(..., true)) and writes the
-- month rows of its chunk itself, as one multi-row upsert at the end of the transaction in key
-- order: a deferred PL/pgSQL call per user row doubled the cost of a 1,000-record chunk. The
-- WHEN is evaluated when the row is written, so those rows queue no trigger event at all.
CREATE CONSTRAINT TRIGGER orgusage_user_month_rollup
AFTER INSERT OR UPDATE OR DELETE ON client_user_daily_usage
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (current_setting('orgusage.rollups_by_caller', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION orgusage_user_month_rollup();
