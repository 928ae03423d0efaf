// The diesel table definitions, identical for SQLite and PostgreSQL (the migrations differ only in
// dialect). Money and rate columns are BIGINT nano-units; see orgusage_domain::money.

diesel::table! {
    global_settings (id) {
        id -> Text,
        openrouter_provisioning_key -> Nullable<Text>,
        default_markup_rate -> BigInt,
        billing_currency -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    client_organizations (id) {
        id -> Text,
        name -> Text,
        openrouter_api_key -> Text,
        openrouter_key_hash -> Nullable<Text>,
        markup_rate -> BigInt,
        monthly_limit -> Nullable<BigInt>,
        billing_email -> Nullable<Text>,
        timezone -> Text,
        is_active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    user_client_mapping (id) {
        id -> Text,
        user_id -> Text,
        client_org_id -> Text,
        openrouter_user_id -> Text,
        is_active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(user_client_mapping -> client_organizations (client_org_id));
diesel::allow_tables_to_appear_in_same_query!(
    global_settings,
    client_organizations,
    user_client_mapping
);
