-- Daily usage per client, per (client, user) and per (client, model). One row per key and
-- client-local day; every record_usage adds to all three in one transaction.
-- Money is BIGINT nano-USD; usage_date is the client-local calendar date. The natural key is the
-- primary key (the original's two string-id formats could store one day twice, bug B6). The
-- primary keys lead with (client_org_id, usage_date), which serves every report's range scan;
-- no other index is kept, so each recorded request costs three index writes, not six.
CREATE TABLE client_daily_usage (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    usage_date DATE NOT NULL,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_requests BIGINT NOT NULL DEFAULT 0,
    raw_cost BIGINT NOT NULL DEFAULT 0,
    markup_cost BIGINT NOT NULL DEFAULT 0,
    unique_users BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_client_daily_usage PRIMARY KEY (client_org_id, usage_date)
);

CREATE TABLE client_user_daily_usage (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    user_id TEXT NOT NULL,
    openrouter_user_id TEXT NOT NULL,
    usage_date DATE NOT NULL,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_requests BIGINT NOT NULL DEFAULT 0,
    raw_cost BIGINT NOT NULL DEFAULT 0,
    markup_cost BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_client_user_daily_usage PRIMARY KEY (client_org_id, usage_date, user_id)
);

CREATE TABLE client_model_daily_usage (
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    model_name TEXT NOT NULL,
    usage_date DATE NOT NULL,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_requests BIGINT NOT NULL DEFAULT 0,
    raw_cost BIGINT NOT NULL DEFAULT 0,
    markup_cost BIGINT NOT NULL DEFAULT 0,
    provider TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT orgusage_pk_client_model_daily_usage PRIMARY KEY (client_org_id, usage_date, model_name)
);
