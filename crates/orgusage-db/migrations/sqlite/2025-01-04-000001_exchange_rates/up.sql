-- The exchange rate applied to the costs of each COST date (rate_date), per currency pair and
-- rate rule, as fetched from NBP (table A mid). The first writer wins (INSERT ... ON CONFLICT DO
-- NOTHING, then read back), so every instance uses the same rate for a day and a stored day never
-- reprices. Fallback and provisional rates are never stored.
-- rate is BIGINT nano-units (PLN per unit of currency_from x 1e9): NBP mids have 4 decimals, so
-- they are stored exactly. rate_rule is part of the key so that an instance configured with the
-- non-legal 'same_day_if_published' rule can never pre-empt the legal rate of a day.
CREATE TABLE daily_exchange_rates (
    rate_date DATE NOT NULL,
    currency_from TEXT NOT NULL,
    currency_to TEXT NOT NULL,
    rate_rule TEXT NOT NULL CHECK (rate_rule IN ('previous_business_day', 'same_day_if_published')),
    rate BIGINT NOT NULL CHECK (rate > 0),
    table_no TEXT NOT NULL,
    effective_date DATE NOT NULL CHECK (effective_date <= rate_date),
    source TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_daily_exchange_rates PRIMARY KEY (rate_date, currency_from, currency_to, rate_rule)
) WITHOUT ROWID;
-- Audits ask "which cost dates used table X".
CREATE INDEX orgusage_idx_daily_exchange_rates_effective_date ON daily_exchange_rates (effective_date);
