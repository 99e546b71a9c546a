SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- assortment_complete_journey: benchmark stores, preferences and assortment gaps on Dunnhumby's Complete Journey
-- (transactions_sample: 2,377 households, 293 stores; products with department -> category_l1 and product_category ->
-- category_l2). CJ has no store areas, so sales per square metre cannot be computed: store_category_productivity
-- returns the sales with NULL space. Figures are printed for the record; what the method guarantees is asserted
-- (ranks, a benchmark is another store, similarity in [0, 1], suggested SKUs not sold by the store, indices against
-- plain SQL for the largest store).
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_assort');
SELECT retail_mid.refresh('2017-01-01', '2017-12-31') IS NOT NULL AS refreshed;
ANALYZE retail_mid.dwd_trade_order_line_di, retail_mid.dws_trade_sku_store_1d, retail_mid.dim_customer;
RESET client_min_messages;
SET extra_float_digits = 0;
-- the store with the most identified customers, and the window (the year)
SELECT store_id AS big FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'cj_assort' AND customer_key IS NOT NULL AND store_id IS NOT NULL
 GROUP BY store_id ORDER BY count(DISTINCT customer_key) DESC, store_id LIMIT 1 \gset
CREATE TEMP TABLE cja_sim AS SELECT * FROM retail_mid.store_similarity('cj_assort', 5, 0.5, '2017-01-01', '2017-12-31');
SELECT count(DISTINCT store_id) AS stores, count(*) AS pairs, bool_and(benchmark_store_id <> store_id) AS other_stores,
       bool_and(similarity BETWEEN 0 AND 1 + 1e-12) AS in_unit_range, min(rank) = 1 AND max(rank) <= 5 AS ranks_ok
  FROM cja_sim;
SELECT rank, benchmark_store_id, round(similarity::numeric, 3) AS similarity, round(customer_similarity::numeric, 3) AS customer,
       round(category_similarity::numeric, 3) AS category, customers, benchmark_customers
  FROM cja_sim WHERE store_id = :'big' ORDER BY rank;
CREATE TEMP TABLE cja_sug AS SELECT * FROM retail_mid.assortment_suggest('cj_assort', :'big', 10, 5, 0.5, '2017-01-01', '2017-12-31');
SELECT count(*) AS suggestions, bool_and(NOT EXISTS (SELECT 1 FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand = 'cj_assort'
           AND l.store_id = :'big' AND l.sku_id = s.sku_id AND l.line_type = 'sale' AND l.dt BETWEEN '2017-01-01' AND '2017-12-31')) AS none_sold_there,
       bool_and(expected_sales > 0) AS positive
  FROM cja_sug s;
SELECT rank, sku_id, category_l1, round(expected_sales::numeric, 2) AS expected_sales, round(expected_buyers::numeric, 1) AS expected_buyers,
       benchmark_stores, round(benchmark_sales::numeric, 2) AS benchmark_sales, round(preference_index::numeric) AS preference_index
  FROM cja_sug ORDER BY rank;
-- department preference of the largest store's customers against plain SQL
CREATE TEMP TABLE cja_pref AS SELECT * FROM retail_mid.store_preference('cj_assort', 'category_l1', '2017-01-01', '2017-12-31');
WITH l AS (SELECT * FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'cj_assort' AND dt BETWEEN '2017-01-01' AND '2017-12-31'
              AND customer_key IS NOT NULL),
     mine AS (SELECT DISTINCT customer_key FROM l WHERE store_id = :'big' AND line_type = 'sale'),
     r AS (SELECT coalesce(category_l1, '(unknown)') AS item,
                  100 * (sum(amount) FILTER (WHERE customer_key IN (SELECT * FROM mine)) / (SELECT sum(amount) FROM l WHERE customer_key IN (SELECT * FROM mine)))
                      / (sum(amount) / (SELECT sum(amount) FROM l)) AS idx
             FROM l GROUP BY 1)
SELECT count(*) AS departments, max(abs(r.idx - p.preference_index)) < 1e-9 AS preference_ok
  FROM r JOIN cja_pref p ON p.store_id = :'big' AND p.item = r.item;
SELECT item AS department, customers, buyers, round(preference_index::numeric) AS preference_index
  FROM cja_pref WHERE store_id = :'big' AND buyers >= 20 ORDER BY preference_index DESC, item LIMIT 5;
-- no category space in CJ: sales only
SELECT count(*) AS rows, count(space_sqm) AS with_space, round(sum(net_sales)) AS net_sales
  FROM retail_mid.store_category_productivity('cj_assort', '2017-01-01', '2017-12-31');
-- leave the shared tables as they were
SET client_min_messages = warning;
DO $$
DECLARE t regclass; pending bool := true; pass int := 0;
BEGIN
    WHILE pending AND pass < 10 LOOP
        pending := false; pass := pass + 1;
        FOR t IN SELECT a.attrelid::regclass FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = 'brand'
                    AND NOT a.attisdropped AND NOT c.relispartition
        LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE brand = %L', t, 'cj_assort');
            EXCEPTION WHEN foreign_key_violation THEN
                pending := true;
            END;
        END LOOP;
    END LOOP;
END;
$$;
RESET client_min_messages;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
