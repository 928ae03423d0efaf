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
        openrouter_api_key_lookup -> Nullable<Text>,
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

diesel::table! {
    client_daily_usage (client_org_id, usage_date) {
        client_org_id -> Text,
        usage_date -> Date,
        total_tokens -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        total_requests -> BigInt,
        raw_cost -> BigInt,
        markup_cost -> BigInt,
        unique_users -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    client_user_daily_usage (client_org_id, usage_date, user_id) {
        client_org_id -> Text,
        user_id -> Text,
        openrouter_user_id -> Text,
        usage_date -> Date,
        total_tokens -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        total_requests -> BigInt,
        raw_cost -> BigInt,
        markup_cost -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    client_model_daily_usage (client_org_id, usage_date, model_name) {
        client_org_id -> Text,
        model_name -> Text,
        usage_date -> Date,
        total_tokens -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        total_requests -> BigInt,
        raw_cost -> BigInt,
        markup_cost -> BigInt,
        provider -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    client_user_monthly_usage (client_org_id, month_start, user_id) {
        client_org_id -> Text,
        month_start -> Date,
        user_id -> Text,
        openrouter_user_id -> Text,
        total_tokens -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        total_requests -> BigInt,
        raw_cost -> BigInt,
        markup_cost -> BigInt,
        days_active -> BigInt,
        overflowed -> Bool,
    }
}

diesel::joinable!(client_daily_usage -> client_organizations (client_org_id));
diesel::allow_tables_to_appear_in_same_query!(
    client_organizations,
    client_daily_usage,
    client_user_daily_usage,
    client_model_daily_usage,
    client_user_monthly_usage
);

diesel::table! {
    processed_generations (client_org_id, id) {
        client_org_id -> Text,
        id -> Text,
        generation_date -> Date,
        processed_at -> BigInt,
        total_cost -> BigInt,
        total_tokens -> BigInt,
        created_at -> Nullable<BigInt>,
        model_name -> Nullable<Text>,
    }
}

diesel::table! {
    processed_generation_cleanup_log (id) {
        id -> BigInt,
        cleanup_date -> Date,
        cutoff_date -> Date,
        cutoff_timestamp -> BigInt,
        days_retained -> BigInt,
        records_before -> BigInt,
        records_deleted -> BigInt,
        records_remaining -> BigInt,
        old_tokens_removed -> BigInt,
        old_cost_removed -> BigInt,
        payload_bytes_removed -> BigInt,
        cleanup_duration_ms -> BigInt,
        success -> Bool,
        error_message -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    daily_exchange_rates (rate_date, currency_from, currency_to, rate_rule) {
        rate_date -> Date,
        currency_from -> Text,
        currency_to -> Text,
        rate_rule -> Text,
        rate -> BigInt,
        table_no -> Text,
        effective_date -> Date,
        source -> Text,
        fetched_at -> BigInt,
    }
}

diesel::table! {
    spend_reservations (client_org_id, id) {
        client_org_id -> Text,
        id -> Text,
        month_start -> Date,
        amount -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}
