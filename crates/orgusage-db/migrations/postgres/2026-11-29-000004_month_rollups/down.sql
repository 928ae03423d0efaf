DROP TRIGGER orgusage_user_month_rollup ON client_user_daily_usage;
DROP FUNCTION orgusage_user_month_rollup();
DROP TABLE client_user_monthly_usage;
