SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
-- issue 17: product selection and store assortment. A synthetic brand of three groups of twin stores (alike customers
-- and category mix) in which A1 lacks the signature SKUs its twins sell (the planted gap): store_similarity must pair
-- the twins, assortment_suggest must put the planted SKUs on top with an expected sales close to the truth, and the
-- similarity, the preferences, the estimate and the sales and margin per square metre are checked against plain SQL.
SET extra_float_digits = 0;
CREATE TEMP TABLE as_truth AS SELECT * FROM retail_mid.generate_synthetic_assortment('assort_syn', 7, '2024-01-01', 84, 120);
SELECT retail_mid.refresh('2024-01-01', '2024-03-24') IS NOT NULL AS refreshed;
RESET client_min_messages;
SELECT count(*) AS stores, count(*) FILTER (WHERE planted) AS planted FROM (SELECT DISTINCT store_id, planted FROM as_truth) t;
CREATE TEMP TABLE as_win AS SELECT as_of - 364 AS f, as_of AS t FROM retail_mid.dws_refresh_state WHERE brand = 'assort_syn';

-- benchmark stores: every store's two nearest are its twins
CREATE TEMP TABLE as_sim AS SELECT * FROM retail_mid.store_similarity('assort_syn', 8);
SELECT count(*) FILTER (WHERE rank <= 2) AS top2_pairs,
       count(*) FILTER (WHERE rank <= 2 AND left(store_id, 1) = left(benchmark_store_id, 1)) AS top2_twins,
       count(*) AS all_pairs FROM as_sim;
SELECT store_id, rank, benchmark_store_id, round(similarity::numeric, 3) AS similarity, round(customer_similarity::numeric, 3) AS customer,
       round(category_similarity::numeric, 3) AS category
  FROM as_sim WHERE store_id = 'A1' ORDER BY rank;
-- the combination is customer_weight * customer + (1 - customer_weight) * category
SELECT max(abs(similarity - (0.5 * customer_similarity + 0.5 * category_similarity))) < 1e-12 AS combined_ok FROM as_sim;
SELECT bool_and(abs(s.similarity - s.customer_similarity) < 1e-12) AS weight_one_ok
  FROM retail_mid.store_similarity('assort_syn', 8, 1) s;
-- category similarity in plain SQL: cosine of the stores' shares of gross sales per level-1 category (DWS)
WITH cat AS (SELECT d.store_id, d.category_l1, sum(d.sales_amount)::float8 AS s FROM retail_mid.dws_trade_sku_store_1d d, as_win w
              WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t GROUP BY 1, 2),
     sh AS (SELECT store_id, category_l1, s / sum(s) OVER (PARTITION BY store_id) AS v FROM cat),
     nr AS (SELECT store_id, sqrt(sum(v * v)) AS n FROM sh GROUP BY 1),
     cs AS (SELECT a.store_id AS a, b.store_id AS b, sum(a.v * b.v) / (min(na.n) * min(nb.n)) AS c
              FROM sh a JOIN sh b ON b.category_l1 = a.category_l1 AND b.store_id <> a.store_id
              JOIN nr na ON na.store_id = a.store_id JOIN nr nb ON nb.store_id = b.store_id GROUP BY 1, 2)
SELECT count(*) AS pairs, max(abs(cs.c - s.category_similarity)) < 1e-12 AS category_cosine_ok
  FROM cs JOIN as_sim s ON s.store_id = cs.a AND s.benchmark_store_id = cs.b;
-- customer similarity in plain SQL: per store, the share of its customers in each value of five features
WITH l AS (SELECT * FROM retail_mid.dwd_trade_order_line_di d, as_win w
            WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t AND d.customer_key IS NOT NULL),
     c AS (SELECT customer_key, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS o,
                  ntile(4) OVER (ORDER BY sum(amount), customer_key) AS q FROM l GROUP BY 1),
     dc AS (SELECT DISTINCT ON (customer_key) customer_key, gender, birth_year, member_level FROM retail_mid.dim_customer
             WHERE brand = 'assort_syn' ORDER BY customer_key, id_type, customer_id_hash),
     f AS (SELECT c.customer_key, coalesce(dc.gender, 'U') AS gender,
                  CASE WHEN 2024 - dc.birth_year < 25 THEN 1 WHEN 2024 - dc.birth_year < 35 THEN 2 WHEN 2024 - dc.birth_year < 45 THEN 3
                       WHEN 2024 - dc.birth_year < 55 THEN 4 ELSE 5 END AS age, dc.member_level AS lvl,
                  CASE WHEN o <= 1 THEN 1 WHEN o <= 3 THEN 2 WHEN o <= 7 THEN 3 ELSE 4 END AS freq, q
             FROM c LEFT JOIN dc USING (customer_key)),
     sc AS (SELECT DISTINCT store_id, customer_key FROM l WHERE line_type = 'sale'),
     x AS (SELECT sc.store_id, f.* FROM sc JOIN f USING (customer_key)),
     sh AS (SELECT store_id, 'g' || gender AS k, count(*)::float8 / sum(count(*)) OVER (PARTITION BY store_id) AS v FROM x GROUP BY 1, 2
            UNION ALL SELECT store_id, 'a' || age, count(*)::float8 / sum(count(*)) OVER (PARTITION BY store_id) FROM x GROUP BY 1, 2
            UNION ALL SELECT store_id, 'l' || lvl, count(*)::float8 / sum(count(*)) OVER (PARTITION BY store_id) FROM x GROUP BY 1, 2
            UNION ALL SELECT store_id, 'f' || freq, count(*)::float8 / sum(count(*)) OVER (PARTITION BY store_id) FROM x GROUP BY 1, 2
            UNION ALL SELECT store_id, 'q' || q, count(*)::float8 / sum(count(*)) OVER (PARTITION BY store_id) FROM x GROUP BY 1, 2),
     nr AS (SELECT store_id, sqrt(sum(v * v)) AS n FROM sh GROUP BY 1),
     cs AS (SELECT a.store_id AS a, b.store_id AS b, sum(a.v * b.v) / (min(na.n) * min(nb.n)) AS c
              FROM sh a JOIN sh b ON b.k = a.k AND b.store_id <> a.store_id
              JOIN nr na ON na.store_id = a.store_id JOIN nr nb ON nb.store_id = b.store_id GROUP BY 1, 2)
SELECT count(*) AS pairs, max(abs(cs.c - s.customer_similarity)) < 1e-12 AS customer_cosine_ok
  FROM cs JOIN as_sim s ON s.store_id = cs.a AND s.benchmark_store_id = cs.b;

-- the planted gap: with its two twins as benchmarks, A1's top suggestions are the three signature SKUs of its group
-- in the order of their true rates, then R1_1 (the one regular SKU it lacks)
CREATE TEMP TABLE as_sug AS SELECT * FROM retail_mid.assortment_suggest('assort_syn', 'A1', 5, benchmarks => 2);
SELECT rank, sku_id, category_l1, benchmark_stores, round(preference_index::numeric) AS preference_index,
       round(category_preference_index::numeric) AS category_preference_index,
       jsonb_path_query_array(evidence, '$.benchmarks[*].store_id') AS benchmarks
  FROM as_sug ORDER BY rank;
-- against the truth: had A1 sold SIG_Aj, its orders would have bought it with the planted probability at 30 each
WITH o AS (SELECT count(DISTINCT order_id) AS n FROM retail_mid.dwd_trade_order_line_di
            WHERE brand = 'assort_syn' AND store_id = 'A1' AND customer_key IS NOT NULL AND line_type = 'sale'),
     tr AS (SELECT t.sku_id, o.n * t2.order_rate * 30 AS truth FROM as_truth t, o,
                   LATERAL (SELECT avg(order_rate) AS order_rate FROM as_truth x WHERE x.sku_id = t.sku_id AND x.store_id IN ('A2', 'A3')) t2
             WHERE t.store_id = 'A1' AND t.planted)
SELECT s.sku_id, round((s.expected_sales / tr.truth)::numeric, 2) AS estimate_over_truth,
       s.expected_sales / tr.truth BETWEEN 0.8 AND 1.25 AS within_20pct
  FROM as_sug s JOIN tr ON tr.sku_id = s.sku_id ORDER BY s.rank;
-- the estimate in plain SQL: per frequency band g, A1's customers x sum_b w_b sales_b(g) / sum_b w_b customers_b(g)
WITH l AS (SELECT * FROM retail_mid.dwd_trade_order_line_di d, as_win w
            WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t AND d.customer_key IS NOT NULL),
     q AS (SELECT customer_key, width_bucket(count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'), ARRAY[2, 4, 8]) AS g FROM l GROUP BY 1),
     sc AS (SELECT DISTINCT store_id, customer_key FROM l WHERE line_type = 'sale'),
     n AS (SELECT store_id, g, count(*) AS n FROM sc JOIN q USING (customer_key) GROUP BY 1, 2),
     bw AS (SELECT benchmark_store_id AS b, similarity AS w FROM as_sim WHERE store_id = 'A1' AND rank <= 2),
     sales AS (SELECT l.sku_id, q.g, l.store_id AS b, sum(l.amount)::float8 AS s FROM l JOIN q USING (customer_key) GROUP BY 1, 2, 3),
     rate AS (SELECT k.sku_id, n.g, sum(bw.w * coalesce(sa.s, 0)) / sum(bw.w * n.n) AS r
                FROM (SELECT DISTINCT sku_id FROM as_sug) k CROSS JOIN bw JOIN n ON n.store_id = bw.b
                LEFT JOIN sales sa ON sa.sku_id = k.sku_id AND sa.g = n.g AND sa.b = bw.b GROUP BY 1, 2),
     e AS (SELECT rate.sku_id, sum(n.n * rate.r) AS e FROM rate JOIN n ON n.store_id = 'A1' AND n.g = rate.g GROUP BY 1)
SELECT count(*) AS skus, max(abs(e.e - s.expected_sales) / s.expected_sales) < 1e-9 AS estimate_ok
  FROM e JOIN as_sug s ON s.sku_id = e.sku_id;
-- the preference index of SIG_A1 in plain SQL: A1's customers' share of spend on it anywhere against the brand's
WITH l AS (SELECT * FROM retail_mid.dwd_trade_order_line_di d, as_win w
            WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t AND d.customer_key IS NOT NULL),
     a1 AS (SELECT DISTINCT customer_key FROM l WHERE store_id = 'A1' AND line_type = 'sale'),
     r AS (SELECT 100 * (sum(amount) FILTER (WHERE sku_id = 'SIG_A1' AND customer_key IN (SELECT * FROM a1))
                         / sum(amount) FILTER (WHERE customer_key IN (SELECT * FROM a1)))
                      / (sum(amount) FILTER (WHERE sku_id = 'SIG_A1') / sum(amount)) AS idx FROM l)
SELECT abs(r.idx - s.preference_index) < 1e-9 AS sku_preference_ok FROM r, as_sug s WHERE s.sku_id = 'SIG_A1';
-- with the default five benchmarks, three of them from group B (similarity about 0.36), SIG_A1 stays first but group B's
-- SIG_B1 comes second: the number of benchmarks matters (docs/goods.md)
SELECT rank, sku_id FROM retail_mid.assortment_suggest('assort_syn', 'A1', 2) ORDER BY rank;

-- people x goods x place: store_preference against plain SQL for every store and category
CREATE TEMP TABLE as_pref AS SELECT * FROM retail_mid.store_preference('assort_syn');
WITH l AS (SELECT * FROM retail_mid.dwd_trade_order_line_di d, as_win w
            WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t AND d.customer_key IS NOT NULL),
     sc AS (SELECT DISTINCT store_id, customer_key FROM l WHERE line_type = 'sale'),
     bt AS (SELECT category_l1, sum(amount) AS s, count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS b FROM l GROUP BY 1),
     bb AS (SELECT sum(amount) AS s, count(DISTINCT customer_key) AS n FROM l),
     st AS (SELECT sc.store_id, l.category_l1, sum(l.amount) AS s, count(DISTINCT l.customer_key) FILTER (WHERE l.line_type = 'sale') AS b
              FROM sc JOIN l USING (customer_key) GROUP BY 1, 2),
     stt AS (SELECT sc.store_id, sum(l.amount) AS s, count(DISTINCT sc.customer_key) AS n FROM sc JOIN l USING (customer_key) GROUP BY 1),
     r AS (SELECT st.store_id, st.category_l1, (100 * (st.s / stt.s) / (bt.s / bb.s))::float8 AS idx,
                  (100 * (st.b::float8 / stt.n) / (bt.b::float8 / bb.n)) AS pidx
             FROM st JOIN stt USING (store_id) JOIN bt USING (category_l1) CROSS JOIN bb)
SELECT count(*) AS rows, max(abs(r.idx - p.preference_index)) < 1e-9 AS preference_ok,
       max(abs(r.pidx - p.penetration_index)) < 1e-9 AS penetration_ok
  FROM r JOIN as_pref p ON p.store_id = r.store_id AND p.item = r.category_l1;
-- the groups' own categories: A stores' customers prefer Personal care, B stores' Food, C stores' Beverage
SELECT left(store_id, 1) AS grp, item, round(min(preference_index)::numeric) AS min_index
  FROM as_pref WHERE (left(store_id, 1), item) IN (('A', 'Personal care'), ('B', 'Food'), ('C', 'Beverage')) GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS sku_rows FROM retail_mid.store_preference('assort_syn', 'sku') WHERE store_id = 'A1' AND item LIKE 'SIG_A%';

-- sales and margin per square metre against plain SQL (DWS, space, unit costs)
CREATE TEMP TABLE as_prod AS SELECT * FROM retail_mid.store_category_productivity('assort_syn');
WITH s AS (SELECT d.store_id, d.category_l1, sum(d.net_amount) AS net,
                  sum(d.net_amount - d.quantity * (p.attributes ->> 'unit_cost')::numeric) AS margin,
                  bool_and(p.attributes ? 'unit_cost') AS costed
             FROM retail_mid.dws_trade_sku_store_1d d JOIN retail_mid.ods_product p ON p.brand = d.brand AND p.sku_id = d.sku_id, as_win w
            WHERE d.brand = 'assort_syn' AND d.dt BETWEEN w.f AND w.t GROUP BY 1, 2),
     r AS (SELECT s.*, sp.space_sqm, s.net / sp.space_sqm AS per_sqm, CASE WHEN costed THEN s.margin / sp.space_sqm END AS m_per_sqm
             FROM s JOIN retail_mid.ods_store_category_space sp ON sp.brand = 'assort_syn' AND sp.store_id = s.store_id AND sp.category_l1 = s.category_l1)
SELECT count(*) AS rows, max(abs(r.per_sqm - p.sales_per_sqm)) < 1e-9 AS sales_per_sqm_ok,
       max(abs(r.m_per_sqm - p.margin_per_sqm)) < 1e-9 AS margin_per_sqm_ok,
       count(*) FILTER (WHERE r.m_per_sqm IS NULL) = count(*) FILTER (WHERE p.margin_per_sqm IS NULL) AS same_nulls
  FROM r JOIN as_prod p ON p.store_id = r.store_id AND p.category_l1 = r.category_l1;
SELECT category_l1, count(*) AS stores, min(cost_coverage) AS min_coverage, count(margin_per_sqm) AS with_margin
  FROM as_prod GROUP BY 1 ORDER BY 1;
-- the brand's category index averages to 100 weighted by space
SELECT category_l1, round((sum(sales_per_sqm_index * space_sqm) / sum(space_sqm))::numeric, 6) AS weighted_index
  FROM as_prod GROUP BY 1 ORDER BY 1;

-- every store's gaps for the dashboard
SET client_min_messages = warning;
SELECT retail_mid.assortment_refresh('assort_syn', 4, 2) AS suggestions;
RESET client_min_messages;
SELECT store_id, rank, sku_id, store_name FROM retail_mid.dash_assortment_gap WHERE brand = 'assort_syn' AND store_id = 'A1' ORDER BY rank;
SELECT count(*) AS tiles, count(DISTINCT store_id) AS stores, count(space_sqm) AS with_space
  FROM retail_mid.dash_store_category_sqm WHERE brand = 'assort_syn';
SELECT outcome, rows_written FROM retail_mid.job_log WHERE job = 'assortment_refresh' ORDER BY job_id DESC LIMIT 1;

-- bad inputs
SELECT * FROM retail_mid.store_similarity(NULL);
SELECT * FROM retail_mid.store_similarity('no_such_brand');
SELECT * FROM retail_mid.store_similarity('assort_syn', 0);
SELECT * FROM retail_mid.store_similarity('assort_syn', NULL);
SELECT * FROM retail_mid.store_similarity('assort_syn', 2, 1.5);
SELECT * FROM retail_mid.store_similarity('assort_syn', 2, 'NaN');
SELECT * FROM retail_mid.store_similarity('assort_syn', 2, 0.5, '2024-03-01', '2024-01-01');
SELECT * FROM retail_mid.store_similarity('assort_syn', 2, 0.5, '-infinity', '2024-01-01');
SELECT * FROM retail_mid.assortment_suggest('assort_syn', 'ZZ');
SELECT * FROM retail_mid.assortment_suggest('assort_syn', NULL);
SELECT * FROM retail_mid.assortment_suggest('assort_syn', 'A1', 0);
SELECT * FROM retail_mid.assortment_suggest('assort_syn', 'A1', 5, 2, 0.5, '2020-01-01', '2020-02-01');
SELECT * FROM retail_mid.store_preference('assort_syn', 'brand');
SELECT * FROM retail_mid.store_category_productivity('no_such_brand');
SELECT retail_mid.assortment_refresh('assort_syn', 0);
SELECT * FROM retail_mid.generate_synthetic_assortment('assort_bad', 1, '2024-01-01', 3);
SELECT * FROM retail_mid.generate_synthetic_assortment(NULL);
INSERT INTO retail_mid.ods_store_category_space (brand, store_id, category_l1, space_sqm) VALUES ('assort_syn', 'A1', 'Toys', 0);
SELECT retail_mid.load_store_category_space('/nonexistent/space.csv', 'assort_syn');
-- the loader: a file with an unknown store, a bad area, a missing category and a duplicate is refused whole, or
-- loads its valid rows (the later of the duplicates)
SELECT format('/tmp/retail_mid_assort_%s.csv', pg_backend_pid()) AS csv_path \gset
SELECT format($c$COPY (SELECT * FROM (VALUES ('A1', 'Toys', '12.5', '4'), ('A1', 'Garden', '8', ''), ('ZZ', 'Toys', '3', ''),
                                            ('A2', 'Toys', '-1', ''), ('A2', 'Toys', 'lots', ''), ('A2', '', '3', ''), ('A1', 'Garden', '9', '2'),
                                            ('A3', 'Toys', '5', '-2')) v(store_id, category_l1, space_sqm, shelf_metres))
               TO %L WITH (FORMAT csv, HEADER true)$c$, :'csv_path') AS copy_out \gset
:copy_out;
SET client_min_messages = warning;
\set VERBOSITY sqlstate
SELECT rows_read, rows_loaded FROM retail_mid.load_store_category_space(:'csv_path', 'assort_syn');
\set VERBOSITY default
SELECT rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.load_store_category_space(:'csv_path', 'assort_syn', 6);
RESET client_min_messages;
SELECT store_id, category_l1, space_sqm, shelf_metres FROM retail_mid.ods_store_category_space
 WHERE brand = 'assort_syn' AND category_l1 IN ('Toys', 'Garden') ORDER BY 1, 2;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', 'cat > /dev/null; rm -f ' || :'csv_path') AS rm_cmd \gset
:rm_cmd;
-- leave the shared tables as they were
DO $$
DECLARE t regclass; pending bool := true; pass int := 0;
BEGIN
    WHILE pending AND pass < 10 LOOP   -- foreign keys: delete referencing rows first, whatever the table order
        pending := false; pass := pass + 1;
        FOR t IN SELECT a.attrelid::regclass FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = 'brand'
                    AND NOT a.attisdropped AND NOT c.relispartition
        LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE brand = %L', t, 'assort_syn');
            EXCEPTION WHEN foreign_key_violation THEN
                pending := true;
            END;
        END LOOP;
    END LOOP;
    IF pending THEN
        RAISE EXCEPTION 'could not remove the assort_syn rows';
    END IF;
END;
$$;
SELECT count(*) AS rows_left FROM retail_mid.dws_trade_store_1d WHERE brand = 'assort_syn';
