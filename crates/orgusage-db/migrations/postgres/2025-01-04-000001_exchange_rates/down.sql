DROP TABLE daily_exchange_rates;
