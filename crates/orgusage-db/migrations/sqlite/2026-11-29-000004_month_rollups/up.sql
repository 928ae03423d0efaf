-- Per-client-month rollups of client_user_daily_usage, so that a report over a year reads twelve
-- month rows per user instead of 365 day rows (docs/performance.md, "Reports").
--
-- One row per (client, client-local month, user): the sums of the month's user-day rows,
-- days_active = how many user-day rows the month has (the reports' COUNT(*)), and the greatest
-- openrouter_user_id of those rows (the reports' MAX). month_start is the first day of the
-- month of usage_date, which is already a client-local date.
--
-- The triggers below keep it equal to its days in the same transaction as every write to the
-- day table, whichever path wrote it (record_usage, batches, the importer, a manual repair):
-- the day rows stay the single source of truth and the rollup is derived from them.
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
    overflowed BOOLEAN NOT NULL DEFAULT 0,
    CONSTRAINT orgusage_pk_client_user_monthly_usage PRIMARY KEY (client_org_id, month_start, user_id)
) WITHOUT ROWID;

INSERT INTO client_user_monthly_usage (client_org_id, month_start, user_id, openrouter_user_id,
    total_tokens, input_tokens, output_tokens, total_requests, raw_cost, markup_cost, days_active)
SELECT client_org_id, date(usage_date, 'start of month'), user_id, MAX(openrouter_user_id),
    SUM(total_tokens), SUM(input_tokens), SUM(output_tokens), SUM(total_requests), SUM(raw_cost),
    SUM(markup_cost), COUNT(*)
FROM client_user_daily_usage
GROUP BY client_org_id, date(usage_date, 'start of month'), user_id;

-- A new user-day row: add it. A month whose tokens or costs would leave i64 (each day fits,
-- their sum need not) is flagged `overflowed` and keeps its last exact sums: a report that
-- reads the month then fails with Overflow, as the same SUM over the day rows does (SQLite
-- would otherwise turn the sum into a REAL without an error).
CREATE TRIGGER orgusage_user_month_insert AFTER INSERT ON client_user_daily_usage
BEGIN
    INSERT INTO client_user_monthly_usage (client_org_id, month_start, user_id,
        openrouter_user_id, total_tokens, input_tokens, output_tokens, total_requests, raw_cost,
        markup_cost, days_active)
    VALUES (NEW.client_org_id, date(NEW.usage_date, 'start of month'), NEW.user_id,
        NEW.openrouter_user_id, NEW.total_tokens, NEW.input_tokens, NEW.output_tokens,
        NEW.total_requests, NEW.raw_cost, NEW.markup_cost, 1)
    ON CONFLICT (client_org_id, month_start, user_id) DO UPDATE SET
        openrouter_user_id = max(openrouter_user_id, excluded.openrouter_user_id),
        total_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN total_tokens ELSE total_tokens + excluded.total_tokens END,
        input_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN input_tokens ELSE input_tokens + excluded.input_tokens END,
        output_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN output_tokens ELSE output_tokens + excluded.output_tokens END,
        total_requests = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN total_requests ELSE total_requests + excluded.total_requests END,
        raw_cost = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN raw_cost ELSE raw_cost + excluded.raw_cost END,
        markup_cost = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN markup_cost ELSE markup_cost + excluded.markup_cost END,
        days_active = days_active + 1,
        overflowed = (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END);
END;

-- An updated user-day row that stays in its user-month (every upsert of record_usage): add the
-- difference. The upsert keeps the greater openrouter_user_id, so the month's greatest only
-- grows; a writer that lowers it makes the month's value be read again from its days.
CREATE TRIGGER orgusage_user_month_update AFTER UPDATE ON client_user_daily_usage
WHEN NEW.client_org_id = OLD.client_org_id AND NEW.user_id = OLD.user_id
    AND date(NEW.usage_date, 'start of month') = date(OLD.usage_date, 'start of month')
BEGIN
    UPDATE client_user_monthly_usage SET
        openrouter_user_id = CASE WHEN NEW.openrouter_user_id >= OLD.openrouter_user_id
            THEN max(openrouter_user_id, NEW.openrouter_user_id)
            ELSE (SELECT MAX(d.openrouter_user_id) FROM client_user_daily_usage d
                  WHERE d.client_org_id = NEW.client_org_id
                    AND d.usage_date >= date(NEW.usage_date, 'start of month')
                    AND d.usage_date < date(NEW.usage_date, 'start of month', '+1 month')
                    AND d.user_id = NEW.user_id) END,
        total_tokens = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN total_tokens ELSE total_tokens + (NEW.total_tokens - OLD.total_tokens) END,
        input_tokens = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN input_tokens ELSE input_tokens + (NEW.input_tokens - OLD.input_tokens) END,
        output_tokens = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN output_tokens ELSE output_tokens + (NEW.output_tokens - OLD.output_tokens) END,
        total_requests = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN total_requests ELSE total_requests + (NEW.total_requests - OLD.total_requests) END,
        raw_cost = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN raw_cost ELSE raw_cost + (NEW.raw_cost - OLD.raw_cost) END,
        markup_cost = CASE WHEN (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END) THEN markup_cost ELSE markup_cost + (NEW.markup_cost - OLD.markup_cost) END,
        overflowed = (overflowed OR CASE WHEN (NEW.total_tokens - OLD.total_tokens) > 0 THEN total_tokens > 9223372036854775807 - (NEW.total_tokens - OLD.total_tokens) ELSE 0 END OR CASE WHEN (NEW.raw_cost - OLD.raw_cost) > 0 THEN raw_cost > 9223372036854775807 - (NEW.raw_cost - OLD.raw_cost) ELSE 0 END OR CASE WHEN (NEW.markup_cost - OLD.markup_cost) > 0 THEN markup_cost > 9223372036854775807 - (NEW.markup_cost - OLD.markup_cost) ELSE 0 END)
    WHERE client_org_id = NEW.client_org_id
      AND month_start = date(NEW.usage_date, 'start of month') AND user_id = NEW.user_id;
END;

-- A removed user-day row (or one whose key moved): take it out of its month. The month row
-- goes with its last day; its greatest openrouter_user_id is read again from the remaining days
-- when the removed row held it.
CREATE TRIGGER orgusage_user_month_delete AFTER DELETE ON client_user_daily_usage
BEGIN
    DELETE FROM client_user_monthly_usage
    WHERE client_org_id = OLD.client_org_id
      AND month_start = date(OLD.usage_date, 'start of month') AND user_id = OLD.user_id
      AND days_active <= 1;
    UPDATE client_user_monthly_usage SET
        openrouter_user_id = CASE WHEN OLD.openrouter_user_id < openrouter_user_id
            THEN openrouter_user_id
            ELSE (SELECT MAX(d.openrouter_user_id) FROM client_user_daily_usage d
                  WHERE d.client_org_id = OLD.client_org_id
                    AND d.usage_date >= date(OLD.usage_date, 'start of month')
                    AND d.usage_date < date(OLD.usage_date, 'start of month', '+1 month')
                    AND d.user_id = OLD.user_id) END,
        total_tokens = total_tokens - OLD.total_tokens,
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        total_requests = total_requests - OLD.total_requests,
        raw_cost = raw_cost - OLD.raw_cost,
        markup_cost = markup_cost - OLD.markup_cost,
        days_active = days_active - 1
    WHERE client_org_id = OLD.client_org_id
      AND month_start = date(OLD.usage_date, 'start of month') AND user_id = OLD.user_id;
END;

CREATE TRIGGER orgusage_user_month_move_out AFTER UPDATE ON client_user_daily_usage
WHEN NOT (NEW.client_org_id = OLD.client_org_id AND NEW.user_id = OLD.user_id
    AND date(NEW.usage_date, 'start of month') = date(OLD.usage_date, 'start of month'))
BEGIN
    DELETE FROM client_user_monthly_usage
    WHERE client_org_id = OLD.client_org_id
      AND month_start = date(OLD.usage_date, 'start of month') AND user_id = OLD.user_id
      AND days_active <= 1;
    UPDATE client_user_monthly_usage SET
        openrouter_user_id = CASE WHEN OLD.openrouter_user_id < openrouter_user_id
            THEN openrouter_user_id
            ELSE (SELECT MAX(d.openrouter_user_id) FROM client_user_daily_usage d
                  WHERE d.client_org_id = OLD.client_org_id
                    AND d.usage_date >= date(OLD.usage_date, 'start of month')
                    AND d.usage_date < date(OLD.usage_date, 'start of month', '+1 month')
                    AND d.user_id = OLD.user_id) END,
        total_tokens = total_tokens - OLD.total_tokens,
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        total_requests = total_requests - OLD.total_requests,
        raw_cost = raw_cost - OLD.raw_cost,
        markup_cost = markup_cost - OLD.markup_cost,
        days_active = days_active - 1
    WHERE client_org_id = OLD.client_org_id
      AND month_start = date(OLD.usage_date, 'start of month') AND user_id = OLD.user_id;
    INSERT INTO client_user_monthly_usage (client_org_id, month_start, user_id,
        openrouter_user_id, total_tokens, input_tokens, output_tokens, total_requests, raw_cost,
        markup_cost, days_active)
    VALUES (NEW.client_org_id, date(NEW.usage_date, 'start of month'), NEW.user_id,
        NEW.openrouter_user_id, NEW.total_tokens, NEW.input_tokens, NEW.output_tokens,
        NEW.total_requests, NEW.raw_cost, NEW.markup_cost, 1)
    ON CONFLICT (client_org_id, month_start, user_id) DO UPDATE SET
        openrouter_user_id = max(openrouter_user_id, excluded.openrouter_user_id),
        total_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN total_tokens ELSE total_tokens + excluded.total_tokens END,
        input_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN input_tokens ELSE input_tokens + excluded.input_tokens END,
        output_tokens = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN output_tokens ELSE output_tokens + excluded.output_tokens END,
        total_requests = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN total_requests ELSE total_requests + excluded.total_requests END,
        raw_cost = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN raw_cost ELSE raw_cost + excluded.raw_cost END,
        markup_cost = CASE WHEN (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END) THEN markup_cost ELSE markup_cost + excluded.markup_cost END,
        days_active = days_active + 1,
        overflowed = (overflowed OR CASE WHEN excluded.total_tokens > 0 THEN total_tokens > 9223372036854775807 - excluded.total_tokens ELSE 0 END OR CASE WHEN excluded.raw_cost > 0 THEN raw_cost > 9223372036854775807 - excluded.raw_cost ELSE 0 END OR CASE WHEN excluded.markup_cost > 0 THEN markup_cost > 9223372036854775807 - excluded.markup_cost ELSE 0 END);
END;
