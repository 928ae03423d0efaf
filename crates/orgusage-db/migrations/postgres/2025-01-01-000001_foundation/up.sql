-- Foundation tables: settings, client organizations, user-client mappings.
-- Money and rates are BIGINT at scale 9 (nano-units); timestamps are Unix seconds.
CREATE TABLE global_settings (
    id TEXT PRIMARY KEY NOT NULL CHECK (id = 'global'),
    openrouter_provisioning_key TEXT,
    default_markup_rate BIGINT NOT NULL DEFAULT 1300000000 CHECK (default_markup_rate > 0),
    billing_currency TEXT NOT NULL DEFAULT 'USD',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE client_organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    openrouter_api_key TEXT NOT NULL,
    openrouter_key_hash TEXT,
    markup_rate BIGINT NOT NULL DEFAULT 1300000000 CHECK (markup_rate > 0),
    monthly_limit BIGINT CHECK (monthly_limit IS NULL OR monthly_limit >= 0),
    billing_email TEXT,
    timezone TEXT NOT NULL DEFAULT 'Europe/Warsaw',
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX orgusage_uq_client_organizations_api_key ON client_organizations (openrouter_api_key);
CREATE INDEX orgusage_idx_client_organizations_active ON client_organizations (is_active);

CREATE TABLE user_client_mapping (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    client_org_id TEXT NOT NULL REFERENCES client_organizations (id),
    openrouter_user_id TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- One active mapping per user, enforced by the database (bug B34).
CREATE UNIQUE INDEX orgusage_uq_user_client_mapping_active_user ON user_client_mapping (user_id) WHERE is_active;
-- Plain user_id index: the partial index above is not usable when is_active is a bound parameter.
CREATE INDEX orgusage_idx_user_client_mapping_user ON user_client_mapping (user_id);
CREATE INDEX orgusage_idx_user_client_mapping_client ON user_client_mapping (client_org_id, is_active);
CREATE INDEX orgusage_idx_user_client_mapping_openrouter_user ON user_client_mapping (openrouter_user_id);
