-- Fills a database for the dashboard (make dashboard, test/t/dashboard.t): the synthetic brand, the public layer,
-- and every job whose output a dashboard tile reads. psql -v small=1 for a small brand (the test), else the default.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
\if :{?small}
SELECT retail_mid.generate_synthetic(seed => 7, customers => 400, days => 90, orders_per_day => 40, stores => 3, skus => 30,
                                     start_date => '2024-01-01') AS order_lines;
\else
SELECT retail_mid.generate_synthetic() AS order_lines;
\endif
SELECT retail_mid.refresh_all() AS rows_written;
SELECT as_of FROM retail_mid.dws_refresh_state WHERE brand = 'synthetic' \gset
SELECT retail_mid.rfm_refresh('synthetic', :'as_of', 365) AS rfm_customers;
SELECT retail_mid.aipl_refresh('synthetic', (:'as_of'::date - 59), :'as_of') AS aipl_customer_days;
SELECT retail_mid.evaluate_tags() AS tag_values;
SELECT retail_mid.save_audience('repeat_buyers', 'repeat_buyer', 'synthetic') AS audience_version;
-- forecasts made 14 days before the last day with trade: 14 days of actuals to compare with
SELECT retail_mid.replenish_refresh_forecasts('synthetic', (:'as_of'::date - 14), 365, 28) AS forecast_series;
-- site selection on the synthetic demand zones (as the demo does)
SELECT * FROM retail_mid.site_import_ods('synthetic');
INSERT INTO retail_mid.site_store (store_id, brand, store_code, name, own, geom, attractiveness)
SELECT 100000 + zone_id, 'synthetic', 'Z' || zone_id, 'Store near ' || name, zone_id % 40 = 0,
       ST_PointOnSurface(geom), 500 + 100 * (zone_id % 7)
  FROM retail_mid.site_demand_zone WHERE zone_id % 5 = 0;
INSERT INTO retail_mid.site_candidate (candidate_id, name, geom, attractiveness)
SELECT zone_id, 'Candidate in ' || name, ST_PointOnSurface(geom), 1000
  FROM retail_mid.site_demand_zone WHERE zone_id % 7 = 3;
SELECT retail_mid.site_score_candidates(1.0, 2.0, 10000) AS candidates_scored;
SELECT retail_mid.quality_add_default_rules('retail_mid.dwd_trade_order_line_di') AS rules_added;
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di') AS quality_results;
