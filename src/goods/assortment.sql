-- goods/assortment.sql: product selection and store assortment (the seed's people x goods x place, benchmark stores,
-- "thousand stores, thousand faces", sales per square metre).
--
-- Set operations over the trade DWD (customers of a store, what they buy anywhere) and the DWS (category mix, sales
-- per SKU and store): store_profile (customer mix and category mix of each store), store_similarity (benchmark
-- stores), store_preference (a store's customers' preference for categories and SKUs against the brand),
-- assortment_suggest (SKUs a store lacks that sell in its benchmark stores to customers like its own),
-- store_category_productivity (sales and margin per square metre, with the space of ods_store_category_space),
-- assortment_refresh (every store's gaps into assortment_gap, read by the dashboard) and a synthetic brand with a
-- planted gap (generate_synthetic_assortment).

-- The set-based functions below join large sets on equality (customers, stores, SKUs) through CTEs whose sizes the
-- planner cannot estimate; they run with enable_nestloop off so those joins are hashed (a nested loop over two CTE
-- scans took minutes on Complete Journey).

-- The window of an analysis: to_date defaults to the brand's latest day in the DWS, from_date to 364 days before it.
CREATE FUNCTION retail_mid.assortment_window(brand text, from_date date, to_date date, OUT window_from date, OUT window_to date)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF brand IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    window_to := coalesce(to_date, (SELECT r.as_of FROM retail_mid.dws_refresh_state r WHERE r.brand = assortment_window.brand));
    IF window_to IS NULL THEN
        RAISE EXCEPTION 'brand "%" has no trade in the DWS', brand USING ERRCODE = 'undefined_object',
            HINT = 'Load its orders and run retail_mid.refresh, or pass to_date.';
    END IF;
    window_from := coalesce(from_date, window_to - 364);
    IF NOT isfinite(window_from) OR NOT isfinite(window_to) OR window_from > window_to THEN
        RAISE EXCEPTION 'the window % .. % is not a finite range of days', window_from, window_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_window(text, date, date) IS 'Internal to the assortment functions: the analysis window, to_date defaulting to the brand''s latest DWS day (dws_refresh_state) and from_date to 364 days before it; checks the brand has trade and the window is a finite range.';

-- The profile of every store in a window: kind customer: the share of the store's identified customers (a sale line
-- at the store in the window) with each value of five features: gender, age band (years at the end of the window),
-- member level (dim_customer), frequency band (brand-wide orders in the window: 1, 2-3, 4-7, 8+) and spend quartile
-- (brand-wide net spend in the window, quartiles of the brand's customers); each feature's shares add up to 1. kind
-- category: the share of the store's gross sales (dws_trade_sku_store_1d) in each level-1 category.
CREATE FUNCTION retail_mid.store_profile(brand text, from_date date, to_date date)
RETURNS TABLE (store_id text, kind text, feature text, share float8, customers int)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.order_id AS oid, l.amount AS amt, l.line_type AS lt
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = store_profile.brand AND l.dt BETWEEN store_profile.from_date AND store_profile.to_date
           AND l.customer_key IS NOT NULL),
    cust AS (
        SELECT c.ck, count(DISTINCT c.oid) FILTER (WHERE c.lt = 'sale') AS orders,
               ntile(4) OVER (ORDER BY sum(c.amt), c.ck) AS spend_q
          FROM lines c GROUP BY c.ck),
    dimc AS (
        SELECT DISTINCT ON (d.customer_key) d.customer_key AS ck, d.gender, d.birth_year, d.member_level
          FROM retail_mid.dim_customer d
         WHERE d.brand = store_profile.brand AND d.customer_key IS NOT NULL
         ORDER BY d.customer_key, d.id_type, d.customer_id_hash),
    feat AS (
        SELECT c.ck, x.f
          FROM cust c LEFT JOIN dimc d ON d.ck = c.ck
         CROSS JOIN LATERAL (VALUES
               ('gender:' || coalesce(d.gender, 'U')),
               ('age:' || CASE WHEN d.birth_year IS NULL THEN 'unknown'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 25 THEN '<25'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 35 THEN '25-34'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 45 THEN '35-44'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 55 THEN '45-54'
                    ELSE '55+' END),
               ('level:' || coalesce(d.member_level, 'unknown')),
               ('frequency:' || CASE WHEN c.orders <= 1 THEN '1' WHEN c.orders <= 3 THEN '2-3'
                                                          WHEN c.orders <= 7 THEN '4-7' ELSE '8+' END),
               ('spend:q' || c.spend_q)) x(f)),
    sc AS (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    n AS (SELECT sc.st, count(*) AS customers FROM sc GROUP BY sc.st),
    cat AS (
        SELECT s.store_id AS st, coalesce(s.category_l1, '(unknown)') AS category, sum(s.sales_amount) AS sales
          FROM retail_mid.dws_trade_sku_store_1d s
         WHERE s.brand = store_profile.brand AND s.dt BETWEEN store_profile.from_date AND store_profile.to_date
           AND s.store_id <> '(none)'
         GROUP BY 1, 2)
    SELECT sc.st, 'customer', f.f, (count(*)::float8 / max(n.customers)::float8), max(n.customers)::int
      FROM sc JOIN feat f ON f.ck = sc.ck JOIN n ON n.st = sc.st
     GROUP BY sc.st, f.f
    UNION ALL
    SELECT c.st, 'category', c.category,
           (c.sales / sum(c.sales) OVER (PARTITION BY c.st))::float8, n.customers::int
      FROM cat c LEFT JOIN n ON n.st = c.st
     WHERE c.sales > 0;
END;
COMMENT ON FUNCTION retail_mid.store_profile(text, date, date) IS 'Profile of every store of a brand in a window: kind customer, the share of its identified customers per gender, age band, member level, frequency band and spend quartile (each feature adds up to 1); kind category, the share of its gross sales per level-1 category. The input of store_similarity.';

-- Every pair of stores with both profiles: the cosine of their customer profiles, the cosine of their category
-- profiles and customer_weight * the first + (1 - customer_weight) * the second. stores NULL: all stores, else the
-- pairs whose first store is listed. One join on the features: pairs that share no feature value (similarity 0) are
-- left out.
CREATE FUNCTION retail_mid.store_similarity_pairs(brand text, from_date date, to_date date, stores text[], customer_weight float8)
RETURNS TABLE (store_id text, benchmark_store_id text, similarity float8, customer_similarity float8, category_similarity float8,
               customers int, benchmark_customers int)
LANGUAGE sql STABLE PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH p AS MATERIALIZED (SELECT * FROM retail_mid.store_profile(store_similarity_pairs.brand, store_similarity_pairs.from_date, store_similarity_pairs.to_date)),
    norms AS (SELECT p.store_id AS st, p.kind, pg_catalog.sqrt(sum(p.share * p.share)) AS norm, max(p.customers) AS customers
                FROM p GROUP BY 1, 2),
    st AS (SELECT a.st, a.norm AS cnorm, b.norm AS gnorm, a.customers FROM norms a JOIN norms b ON b.st = a.st
            WHERE a.kind = 'customer' AND b.kind = 'category'),
    dots AS (SELECT a.store_id AS s, b.store_id AS t,
                    sum(a.share * b.share) FILTER (WHERE a.kind = 'customer') AS dc,
                    sum(a.share * b.share) FILTER (WHERE a.kind = 'category') AS dg
               FROM p a JOIN p b ON b.kind = a.kind AND b.feature = a.feature AND b.store_id <> a.store_id
              WHERE store_similarity_pairs.stores IS NULL OR a.store_id = ANY (store_similarity_pairs.stores)
              GROUP BY 1, 2),
    pairs AS (SELECT d.s, d.t, coalesce(d.dc, 0) / (a.cnorm * b.cnorm) AS cc, coalesce(d.dg, 0) / (a.gnorm * b.gnorm) AS gc,
                     a.customers AS ac, b.customers AS bc
                FROM dots d JOIN st a ON a.st = d.s JOIN st b ON b.st = d.t)
    SELECT s, t, store_similarity_pairs.customer_weight * cc + (1 - store_similarity_pairs.customer_weight) * gc, cc, gc, ac, bc
      FROM pairs;
END;
COMMENT ON FUNCTION retail_mid.store_similarity_pairs(text, date, date, text[], float8) IS 'Internal to store_similarity and assortment_suggest: for every pair of stores (the first among stores, NULL for all) the cosine similarity of their customer profiles and of their category profiles (store_profile) and their weighted sum.';

CREATE FUNCTION retail_mid.assortment_check_weight(benchmarks int, customer_weight float8)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF benchmarks IS NULL OR customer_weight IS NULL THEN
        RAISE EXCEPTION 'benchmarks and customer_weight must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF benchmarks < 1 OR benchmarks > 1000 THEN
        RAISE EXCEPTION 'benchmarks must be between 1 and 1000, not %', benchmarks USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF customer_weight = 'NaN'::float8 OR customer_weight < 0 OR customer_weight > 1 THEN
        RAISE EXCEPTION 'customer_weight must be between 0 and 1, not %', customer_weight USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_check_weight(int, float8) IS 'Internal to the assortment functions: checks the number of benchmark stores (1 to 1000) and the customer weight (0 to 1).';

-- Benchmark stores: for every store with identified customers and sales in the window, its most similar stores.
CREATE FUNCTION retail_mid.store_similarity(brand text, benchmarks int DEFAULT 5, customer_weight float8 DEFAULT 0.5,
                                            from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, rank int, benchmark_store_id text, similarity float8, customer_similarity float8,
               category_similarity float8, customers int, benchmark_customers int)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY
    SELECT x.store_id, x.rk::int, x.benchmark_store_id, x.similarity, x.customer_similarity, x.category_similarity,
           x.customers, x.benchmark_customers
      FROM (SELECT p.*, row_number() OVER (PARTITION BY p.store_id ORDER BY p.similarity DESC, p.benchmark_store_id) AS rk
              FROM retail_mid.store_similarity_pairs(brand, w.window_from, w.window_to, NULL, customer_weight) p) x
     WHERE x.rk <= benchmarks
     ORDER BY x.store_id, x.rk;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_similarity(text, int, float8, date, date) IS 'Benchmark stores: for every store of a brand (identified customers and sales in the window, default the 365 days ending the latest DWS day) its most similar stores, by customer_weight * cosine of the customer profiles + (1 - customer_weight) * cosine of the category profiles (store_profile), with both components.';

-- People x goods x place: for each store, its identified customers' spend on each item (level-1 or level-2 category,
-- or SKU) bought anywhere in the brand, against the brand's customers.
CREATE FUNCTION retail_mid.store_preference_core(brand text, from_date date, to_date date, level text)
RETURNS TABLE (store_id text, item text, customers int, buyers int, penetration float8, brand_penetration float8,
               spend_share float8, brand_spend_share float8, preference_index float8, penetration_index float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.line_type AS lt, l.amount AS amt,
               CASE store_preference_core.level WHEN 'sku' THEN l.sku_id WHEN 'category_l2' THEN coalesce(l.category_l2, '(unknown)')
                    ELSE coalesce(l.category_l1, '(unknown)') END AS it
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = store_preference_core.brand
           AND l.dt BETWEEN store_preference_core.from_date AND store_preference_core.to_date AND l.customer_key IS NOT NULL),
    sc AS (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    ci AS MATERIALIZED (SELECT l.ck, l.it, sum(l.amt) AS spend, bool_or(l.lt = 'sale') AS bought FROM lines l GROUP BY 1, 2),
    ct AS (SELECT ci.ck, sum(ci.spend) AS spend FROM ci GROUP BY 1),
    bi AS (SELECT ci.it, sum(ci.spend) AS spend, count(*) FILTER (WHERE ci.bought) AS buyers FROM ci GROUP BY 1),
    bt AS (SELECT sum(ct.spend) AS spend, count(*) AS customers FROM ct),
    stt AS (SELECT sc.st, count(*) AS customers, sum(ct.spend) AS spend FROM sc JOIN ct ON ct.ck = sc.ck GROUP BY 1),
    si AS (SELECT sc.st, ci.it, sum(ci.spend) AS spend, count(*) FILTER (WHERE ci.bought) AS buyers
             FROM sc JOIN ci ON ci.ck = sc.ck GROUP BY 1, 2)
    SELECT si.st, si.it, stt.customers::int, si.buyers::int,
           si.buyers::float8 / stt.customers::float8,
           bi.buyers::float8 / bt.customers::float8,
           (si.spend / nullif(stt.spend, 0))::float8,
           (bi.spend / nullif(bt.spend, 0))::float8,
           (100 * (si.spend / nullif(stt.spend, 0))
                / nullif(bi.spend / nullif(bt.spend, 0), 0))::float8,
           100 * (si.buyers::float8 / stt.customers::float8)
               / nullif(bi.buyers::float8 / bt.customers::float8, 0)
      FROM si JOIN stt ON stt.st = si.st JOIN bi ON bi.it = si.it CROSS JOIN bt
     WHERE si.buyers > 0;
END;
COMMENT ON FUNCTION retail_mid.store_preference_core(text, date, date, text) IS 'Internal to store_preference: the preference of each store''s identified customers for each item of a level (category_l1, category_l2 or sku), bought anywhere in the brand, against all the brand''s customers.';

CREATE FUNCTION retail_mid.store_preference(brand text, level text DEFAULT 'category_l1', from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, item text, customers int, buyers int, penetration float8, brand_penetration float8,
               spend_share float8, brand_spend_share float8, preference_index float8, penetration_index float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    IF level IS NULL OR level NOT IN ('category_l1', 'category_l2', 'sku') THEN
        RAISE EXCEPTION 'level must be category_l1, category_l2 or sku, not %', coalesce(level, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY SELECT * FROM retail_mid.store_preference_core(brand, w.window_from, w.window_to, level) p ORDER BY p.store_id, p.item;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_preference(text, text, date, date) IS 'People x goods x place: for each store and item (level category_l1, category_l2 or sku) the store''s identified customers (a sale at the store in the window), those who bought the item anywhere in the brand, penetration and spend share against the brand''s customers, and the indices 100 * store / brand (100 = like the brand).';

-- The suggestions of one or more stores (NULL: all). For a store a, its benchmarks b (the top `benchmarks` of
-- store_similarity_pairs, weight w_ab = similarity) and a SKU s it did not sell in the window (no sale line at a, also
-- anonymous) but its benchmarks did: customers are split by frequency band g (brand-wide orders in the window: 1, 2-3,
-- 4-7, 8+; not by spend, which the missing SKU itself lowers, biasing the estimate down); the rate of s per customer of
-- segment g is sum_b w_ab * sales_b(s, g) / sum_b w_ab * customers_b(g) (sales of s at b to identified customers of g;
-- customers of b in g), and the expected sales are sum_g customers_a(g) * rate(s, g) (a segment no benchmark has:
-- the rate over all segments). Expected buyers likewise. Net sales to identified customers over the window.
CREATE FUNCTION retail_mid.assortment_candidates(brand text, from_date date, to_date date, stores text[], k int, benchmarks int, customer_weight float8)
RETURNS TABLE (store_id text, rank int, sku_id text, category_l1 text, expected_sales float8, expected_buyers float8,
               benchmark_stores int, benchmark_sales float8, preference_index float8, category_preference_index float8, evidence jsonb)
LANGUAGE sql STABLE PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH sim AS MATERIALIZED (
        SELECT x.store_id AS a, x.benchmark_store_id AS b, x.similarity AS w, x.benchmark_customers AS bn
          FROM (SELECT p.*, row_number() OVER (PARTITION BY p.store_id ORDER BY p.similarity DESC, p.benchmark_store_id) AS rk
                  FROM retail_mid.store_similarity_pairs(assortment_candidates.brand, assortment_candidates.from_date, assortment_candidates.to_date,
                                                         assortment_candidates.stores, assortment_candidates.customer_weight) p) x
         WHERE x.rk <= assortment_candidates.benchmarks),
    lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.sku_id AS sku, l.amount AS amt, l.line_type AS lt,
               coalesce(l.category_l1, '(unknown)') AS cat, l.order_id AS oid
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = assortment_candidates.brand
           AND l.dt BETWEEN assortment_candidates.from_date AND assortment_candidates.to_date AND l.customer_key IS NOT NULL),
    seg AS MATERIALIZED (SELECT x.ck, CASE WHEN x.o <= 1 THEN 1 WHEN x.o <= 3 THEN 2 WHEN x.o <= 7 THEN 3 ELSE 4 END AS g
                           FROM (SELECT l.ck, count(DISTINCT l.oid) FILTER (WHERE l.lt = 'sale') AS o FROM lines l GROUP BY l.ck) x),
    sc AS MATERIALIZED (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    nseg AS (SELECT sc.st, seg.g, count(*) AS n FROM sc JOIN seg ON seg.ck = sc.ck GROUP BY 1, 2),
    carried AS (SELECT DISTINCT d.store_id AS st, d.sku_id AS sku FROM retail_mid.dws_trade_sku_store_1d d
                 WHERE d.brand = assortment_candidates.brand
                   AND d.dt BETWEEN assortment_candidates.from_date AND assortment_candidates.to_date
                   AND d.sales_quantity > 0 AND d.store_id IN (SELECT sim.a FROM sim)),
    bsales AS (SELECT l.st AS b, l.sku, seg.g, sum(l.amt) AS sales,
                      count(DISTINCT l.ck) FILTER (WHERE l.lt = 'sale') AS buyers
                 FROM lines l JOIN seg ON seg.ck = l.ck
                WHERE l.st IN (SELECT sim.b FROM sim) GROUP BY 1, 2, 3),
    den AS (SELECT sim.a, nseg.g, sum(sim.w * nseg.n) AS d
              FROM sim JOIN nseg ON nseg.st = sim.b GROUP BY 1, 2),
    den_all AS (SELECT den.a, sum(den.d) AS d FROM den GROUP BY 1),
    num AS (SELECT sim.a, bs.sku, bs.g, sum(sim.w * bs.sales::float8) AS sales, sum(sim.w * bs.buyers) AS buyers
              FROM sim JOIN bsales bs ON bs.b = sim.b GROUP BY 1, 2, 3),
    cand AS (SELECT num.a, num.sku, sum(num.sales) AS sales, sum(num.buyers) AS buyers FROM num
              WHERE NOT EXISTS (SELECT 1 FROM carried c WHERE c.st = num.a AND c.sku = num.sku)
              GROUP BY 1, 2 HAVING sum(num.sales) > 0),
    est AS (SELECT c.a, c.sku,
                   sum(ns.n * CASE WHEN dn.d > 0 THEN coalesce(nm.sales, 0) / dn.d
                                                        ELSE c.sales / nullif(da.d, 0) END) AS expected_sales,
                   sum(ns.n * CASE WHEN dn.d > 0 THEN coalesce(nm.buyers, 0) / dn.d
                                                        ELSE c.buyers / nullif(da.d, 0) END) AS expected_buyers
              FROM cand c JOIN nseg ns ON ns.st = c.a
              JOIN den_all da ON da.a = c.a
              LEFT JOIN den dn ON dn.a = c.a AND dn.g = ns.g
              LEFT JOIN num nm ON nm.a = c.a AND nm.sku = c.sku AND nm.g = ns.g
             GROUP BY 1, 2),
    top AS MATERIALIZED (
        SELECT r.* FROM (SELECT e.*, row_number() OVER (PARTITION BY e.a ORDER BY e.expected_sales DESC, e.sku) AS rk
                           FROM est e WHERE e.expected_sales > 0) r
         WHERE r.rk <= assortment_candidates.k),
    skucat AS (SELECT l.sku, max(l.cat) AS cat FROM lines l WHERE l.sku IN (SELECT top.sku FROM top) GROUP BY 1),
    -- preference of the store's customers (spend anywhere in the brand) for the SKU and its category, against the brand
    brand_tot AS (SELECT sum(l.amt) AS s FROM lines l),
    sku_tot AS (SELECT l.sku, sum(l.amt) AS s FROM lines l WHERE l.sku IN (SELECT top.sku FROM top) GROUP BY 1),
    cat_tot AS (SELECT l.cat, sum(l.amt) AS s FROM lines l WHERE l.cat IN (SELECT skucat.cat FROM skucat) GROUP BY 1),
    mine AS MATERIALIZED (SELECT sc.st, l.sku, l.cat, l.amt FROM sc JOIN lines l ON l.ck = sc.ck
                           WHERE sc.st IN (SELECT top.a FROM top)),
    store_tot AS (SELECT m.st, sum(m.amt) AS s FROM mine m GROUP BY 1),
    store_sku AS (SELECT m.st, m.sku, sum(m.amt) AS s FROM mine m GROUP BY 1, 2),
    store_cat AS (SELECT m.st, m.cat, sum(m.amt) AS s FROM mine m GROUP BY 1, 2),
    ev AS (SELECT t.a, t.sku, count(*) FILTER (WHERE coalesce(bs.sales, 0) > 0) AS nb, sum(coalesce(bs.sales, 0)) AS bsales,
                  pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('store_id', sim.b, 'similarity', pg_catalog.round(sim.w::numeric, 4),
                                       'customers', sim.bn, 'sales', coalesce(bs.sales, 0), 'buyers', coalesce(bs.buyers, 0))
                                       ORDER BY sim.w DESC, sim.b) AS benchmarks
             FROM top t JOIN sim ON sim.a = t.a
             LEFT JOIN (SELECT bsales.b, bsales.sku, sum(bsales.sales) AS sales, sum(bsales.buyers) AS buyers FROM bsales GROUP BY 1, 2) bs
                    ON bs.b = sim.b AND bs.sku = t.sku
            GROUP BY 1, 2)
    SELECT t.a, t.rk::int, t.sku, sk.cat, t.expected_sales, t.expected_buyers, ev.nb::int, ev.bsales::float8,
           (100 * (coalesce(ss.s, 0) / nullif(stt.s, 0))
                / nullif(skt.s / nullif(bt.s, 0), 0))::float8,
           (100 * (coalesce(scat.s, 0) / nullif(stt.s, 0))
                / nullif(ctt.s / nullif(bt.s, 0), 0))::float8,
           pg_catalog.jsonb_build_object('store_customers', (SELECT sum(ns.n) FROM nseg ns WHERE ns.st = t.a),
                                         'benchmarks', ev.benchmarks,
                                         'estimate', 'sum over frequency bands of this store''s customers x the similarity-weighted sales per customer of the benchmarks')
      FROM top t
      JOIN ev ON ev.a = t.a AND ev.sku = t.sku
      JOIN skucat sk ON sk.sku = t.sku
      CROSS JOIN brand_tot bt
      LEFT JOIN sku_tot skt ON skt.sku = t.sku
      LEFT JOIN cat_tot ctt ON ctt.cat = sk.cat
      LEFT JOIN store_tot stt ON stt.st = t.a
      LEFT JOIN store_sku ss ON ss.st = t.a AND ss.sku = t.sku
      LEFT JOIN store_cat scat ON scat.st = t.a AND scat.cat = sk.cat
     ORDER BY t.a, t.rk;
END;
COMMENT ON FUNCTION retail_mid.assortment_candidates(text, date, date, text[], int, int, float8) IS 'Internal to assortment_suggest and assortment_refresh: the k SKUs each listed store (NULL: all) did not sell in the window that its benchmark stores sold, ranked by expected sales (benchmarks'' similarity-weighted sales per customer by frequency band, scaled to the store''s customers), with the evidence.';

CREATE FUNCTION retail_mid.assortment_suggest(brand text, store text, k int DEFAULT 10, benchmarks int DEFAULT 5,
                                              customer_weight float8 DEFAULT 0.5, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (rank int, sku_id text, category_l1 text, expected_sales float8, expected_buyers float8, benchmark_stores int,
               benchmark_sales float8, preference_index float8, category_preference_index float8, evidence jsonb)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    IF store IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'store and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF k < 1 OR k > 100000 THEN
        RAISE EXCEPTION 'k must be between 1 and 100000, not %', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dim_site s WHERE s.brand = assortment_suggest.brand AND s.site_id = store AND s.site_type = 'store' AND s.is_current) THEN
        RAISE EXCEPTION 'store "%" is not a store of brand "%"', store, brand USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand = assortment_suggest.brand AND l.store_id = store
                      AND l.dt BETWEEN w.window_from AND w.window_to AND l.customer_key IS NOT NULL AND l.line_type = 'sale') THEN
        RAISE EXCEPTION 'store "%" has no identified customers from % to %', store, w.window_from, w.window_to USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT c.rank, c.sku_id, c.category_l1, c.expected_sales, c.expected_buyers, c.benchmark_stores, c.benchmark_sales,
           c.preference_index, c.category_preference_index, c.evidence
      FROM retail_mid.assortment_candidates(brand, w.window_from, w.window_to, ARRAY[store], k, benchmarks, customer_weight) c
     ORDER BY c.rank;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_suggest(text, text, int, int, float8, date, date) IS 'The k SKUs a store did not sell in the window (default the 365 days ending the latest DWS day) that its benchmark stores (store_similarity) sold, by expected sales to the store''s identified customers: per frequency band (brand-wide orders in the window: 1, 2-3, 4-7, 8+), the benchmarks'' similarity-weighted sales per customer times the store''s customers; with expected buyers, the benchmarks selling it and their sales, the store''s customers'' preference index for the SKU and its category (store_preference), and the evidence per benchmark.';

-- ----------------------------------------------------------------- sales and margin per square metre
-- Per store and level-1 category over a window: net sales and units (dws_trade_sku_store_1d), the category's space
-- (ods_store_category_space), sales per square metre and its index against the brand's category (its sales over its
-- space in every store with space for it). Margin: net sales - net units x unit cost, where ods_product.attributes
-- has unit_cost; cost_coverage is the share of net sales whose SKU has a cost, and margin per square metre is given
-- only when it is 1 (no cost: no margin, not a guess).
CREATE FUNCTION retail_mid.store_category_productivity_core(brand text, from_date date, to_date date)
RETURNS TABLE (store_id text, category_l1 text, space_sqm numeric, floor_area numeric, net_sales numeric, units numeric,
               sales_per_sqm float8, sales_per_sqm_index float8, gross_margin numeric, cost_coverage float8, margin_per_sqm float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    WITH sales AS (
        SELECT d.store_id AS st, coalesce(d.category_l1, '(unknown)') AS cat, sum(d.net_amount) AS net, sum(d.quantity) AS units,
               sum(d.net_amount - d.quantity * c.cost) FILTER (WHERE c.cost IS NOT NULL) AS margin,
               sum(d.net_amount) FILTER (WHERE c.cost IS NOT NULL) AS net_costed
          FROM retail_mid.dws_trade_sku_store_1d d
          LEFT JOIN LATERAL (SELECT CASE WHEN p.attributes ->> 'unit_cost' ~ '^\s*\d{1,12}(\.\d*)?\s*$' THEN (p.attributes ->> 'unit_cost')::numeric END AS cost
                               FROM retail_mid.ods_product p
                              WHERE p.brand = d.brand AND p.sku_id = d.sku_id) c ON true
         WHERE d.brand = store_category_productivity_core.brand
           AND d.dt BETWEEN store_category_productivity_core.from_date AND store_category_productivity_core.to_date
           AND d.store_id <> '(none)'
         GROUP BY 1, 2),
    space AS (SELECT s.store_id AS st, s.category_l1 AS cat, s.space_sqm FROM retail_mid.dim_store_category_space s
               WHERE s.brand = store_category_productivity_core.brand),
    j AS (SELECT coalesce(a.st, sp.st) AS st, coalesce(a.cat, sp.cat) AS cat, sp.space_sqm, coalesce(a.net, 0) AS net,
                 coalesce(a.units, 0) AS units, a.margin, a.net_costed
            FROM sales a FULL JOIN space sp ON sp.st = a.st AND sp.cat = a.cat),
    bcat AS (SELECT j.cat, sum(j.net) / sum(j.space_sqm) AS per_sqm FROM j WHERE j.space_sqm IS NOT NULL GROUP BY 1)
    SELECT j.st, j.cat, j.space_sqm, f.floor_area, j.net, j.units,
           (j.net / j.space_sqm)::float8,
           (100 * (j.net / j.space_sqm) / nullif(b.per_sqm, 0))::float8,
           j.margin,
           CASE WHEN j.net <> 0 THEN (coalesce(j.net_costed, 0) / j.net)::float8 END,
           CASE WHEN j.net <> 0 AND coalesce(j.net_costed, 0) = j.net
                THEN (j.margin / j.space_sqm)::float8 END
      FROM j LEFT JOIN bcat b ON b.cat = j.cat
      LEFT JOIN retail_mid.dim_site f ON f.brand = store_category_productivity_core.brand
                                     AND f.site_id = j.st AND f.is_current;
END;
COMMENT ON FUNCTION retail_mid.store_category_productivity_core(text, date, date) IS 'Internal to store_category_productivity and dash_store_category_sqm: sales and margin per square metre per store and level-1 category over a window.';

CREATE FUNCTION retail_mid.store_category_productivity(brand text, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, category_l1 text, space_sqm numeric, floor_area numeric, net_sales numeric, units numeric,
               sales_per_sqm float8, sales_per_sqm_index float8, gross_margin numeric, cost_coverage float8, margin_per_sqm float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY SELECT * FROM retail_mid.store_category_productivity_core(brand, w.window_from, w.window_to) p ORDER BY p.store_id, p.category_l1;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_category_productivity(text, date, date) IS 'Sales and margin per square metre per store and level-1 category over a window (default the 365 days ending the latest DWS day): net sales and units (DWS), space (ods_store_category_space; NULL without it), sales per square metre and its index against the brand''s category (100 = the brand''s sales per square metre of the category), gross margin over the SKUs with a unit_cost in ods_product.attributes, the share of sales it covers, and margin per square metre when every sale has a cost.';

-- ----------------------------------------------------------------- every store's gaps, for the dashboard
CREATE TABLE retail_mid.assortment_gap (
    brand                     text NOT NULL,
    store_id                  text NOT NULL,
    rank                      int  NOT NULL,
    sku_id                    text NOT NULL,
    category_l1               text,
    expected_sales            float8 NOT NULL,
    expected_buyers           float8,
    benchmark_stores          int NOT NULL,
    benchmark_sales           float8 NOT NULL,
    preference_index          float8,
    category_preference_index float8,
    evidence                  jsonb NOT NULL,
    from_date                 date NOT NULL,
    to_date                   date NOT NULL,
    computed_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand, store_id, rank)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.assortment_gap', '');
COMMENT ON TABLE retail_mid.assortment_gap IS 'Assortment gaps of every store of a brand (assortment_refresh): the SKUs assortment_suggest proposes, with their expected sales and evidence; read by dash_assortment_gap.';
COMMENT ON COLUMN retail_mid.assortment_gap.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.assortment_gap.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.assortment_gap.rank IS 'Rank by expected sales, 1 = largest.';
COMMENT ON COLUMN retail_mid.assortment_gap.sku_id IS 'SKU the store did not sell in the window.';
COMMENT ON COLUMN retail_mid.assortment_gap.category_l1 IS 'Level-1 category of the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.expected_sales IS 'Expected net sales to the store''s identified customers over a window as long as the one analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.expected_buyers IS 'Expected buyers among the store''s identified customers over such a window.';
COMMENT ON COLUMN retail_mid.assortment_gap.benchmark_stores IS 'Benchmark stores that sold the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.benchmark_sales IS 'Their net sales of the SKU to identified customers in the window.';
COMMENT ON COLUMN retail_mid.assortment_gap.preference_index IS 'The store''s customers'' share of spend on the SKU anywhere in the brand, against the brand''s (100 = like the brand).';
COMMENT ON COLUMN retail_mid.assortment_gap.category_preference_index IS 'The same for the SKU''s level-1 category.';
COMMENT ON COLUMN retail_mid.assortment_gap.evidence IS 'Store customers and, per benchmark store, its similarity, customers, sales and buyers of the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.from_date IS 'First day of the window analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.to_date IS 'Last day of the window analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.computed_at IS 'When assortment_refresh wrote the row.';

CREATE FUNCTION retail_mid.assortment_refresh(brand text, k int DEFAULT 10, benchmarks int DEFAULT 5, customer_weight float8 DEFAULT 0.5,
                                              from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record; v_job bigint; n bigint; b text := brand;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    v_job := retail_mid.job_start('assortment_refresh', jsonb_build_object('brand', brand, 'k', k, 'benchmarks', benchmarks,
             'customer_weight', customer_weight, 'from_date', w.window_from, 'to_date', w.window_to));
    RAISE NOTICE 'assortment_refresh: brand %, % .. %', brand, w.window_from, w.window_to;
    DELETE FROM retail_mid.assortment_gap g WHERE g.brand = b;
    INSERT INTO retail_mid.assortment_gap (brand, store_id, rank, sku_id, category_l1, expected_sales, expected_buyers, benchmark_stores,
                                           benchmark_sales, preference_index, category_preference_index, evidence, from_date, to_date)
    SELECT b, c.store_id, c.rank, c.sku_id, c.category_l1, c.expected_sales, c.expected_buyers, c.benchmark_stores, c.benchmark_sales,
           c.preference_index, c.category_preference_index, c.evidence, w.window_from, w.window_to
      FROM retail_mid.assortment_candidates(b, w.window_from, w.window_to, NULL, k, benchmarks, customer_weight) c;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'assortment_refresh: % suggestions for % stores', n, (SELECT count(DISTINCT g.store_id) FROM retail_mid.assortment_gap g WHERE g.brand = b);
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_refresh(text, int, int, float8, date, date) IS 'Replaces a brand''s rows of assortment_gap with the k suggestions of assortment_suggest for every store (one set-based pass); logs to job_log; returns the rows written.';

-- ----------------------------------------------------------------- synthetic stores with a planted gap
-- Nine stores in three groups of twins (A1-A3, B1-B3, C1-C3). The customers of a group are alike (gender, age,
-- member level) and unlike the others', and each group buys its own category mix; a customer shops at her home store
-- and, one order in ten, at a twin of it. Every store sells the 40 regular SKUs (R<category>_<n>), except that A1 never
-- sells R1_1. Each group has three signature SKUs (SIG_<group><n>) added to an order at a store of the group with a
-- known probability (A: 0.30, 0.20, 0.12; B and C: 0.45, 0.40, 0.35, so that a store paired with the wrong twins would
-- be offered those first); A1 never sells SIG_A1..SIG_A3: the planted gap. Regular SKUs outside Apparel carry a
-- unit_cost (60% of the price) in ods_product.attributes, and every store gets the space of each category. Returns
-- the truth: per store and signature SKU, its probability per order (0 where the store lacks it).
CREATE FUNCTION retail_mid.generate_synthetic_assortment(brand text DEFAULT 'assort_syn', seed bigint DEFAULT 7,
    start_date date DEFAULT '2024-01-01', days int DEFAULT 84, customers_per_store int DEFAULT 120)
RETURNS TABLE (store_id text, sku_id text, planted boolean, order_rate float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_job bigint; v_load bigint; b text := brand; s bigint := seed; n bigint;
BEGIN
    IF brand IS NULL OR seed IS NULL OR start_date IS NULL OR days IS NULL OR customers_per_store IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic_assortment arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF days < 7 OR days > 3660 OR customers_per_store < 10 OR customers_per_store > 100000 OR NOT isfinite(start_date) THEN
        RAISE EXCEPTION 'days must be between 7 and 3660 and customers_per_store between 10 and 100000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('generate_synthetic_assortment', jsonb_build_object('brand', brand, 'seed', seed, 'days', days,
             'customers_per_store', customers_per_store));
    DELETE FROM retail_mid.ods_order_line l WHERE l.brand = b; DELETE FROM retail_mid.ods_order o WHERE o.brand = b;
    DELETE FROM retail_mid.ods_customer_identifier c WHERE c.brand = b; DELETE FROM retail_mid.ods_customer c WHERE c.brand = b;
    DELETE FROM retail_mid.ods_store_category_space c WHERE c.brand = b;
    DELETE FROM retail_mid.ods_product p WHERE p.brand = b; DELETE FROM retail_mid.ods_site o WHERE o.brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic_assortment', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    CREATE TEMP TABLE rm_as_store ON COMMIT DROP AS
    SELECT k, g, chr(64 + g) || (1 + (k - 1) % 3) AS st,
           chr(64 + g) || (1 + (k % 3)) AS twin1, chr(64 + g) || (1 + (k + 1) % 3) AS twin2
      FROM generate_series(1, 9) k, LATERAL (SELECT 1 + (k - 1) / 3 AS g) x;
    -- category weights per group (categories 1..5), as cumulative bounds
    CREATE TEMP TABLE rm_as_mix ON COMMIT DROP AS
    SELECT g, c, w, sum(w) OVER (PARTITION BY g ORDER BY c) - w AS lo, sum(w) OVER (PARTITION BY g ORDER BY c) AS hi
      FROM (VALUES (1, 1, 0.10), (1, 2, 0.15), (1, 3, 0.45), (1, 4, 0.10), (1, 5, 0.20),
                   (2, 1, 0.40), (2, 2, 0.20), (2, 3, 0.10), (2, 4, 0.20), (2, 5, 0.10),
                   (3, 1, 0.15), (3, 2, 0.40), (3, 3, 0.10), (3, 4, 0.25), (3, 5, 0.10)) v(g, c, w);
    CREATE TEMP TABLE rm_as_sig ON COMMIT DROP AS
    SELECT g, j, 'SIG_' || chr(64 + g) || j AS sku, r AS rate, cat
      FROM (VALUES (1, 1, 0.30, 3), (1, 2, 0.20, 3), (1, 3, 0.12, 3), (2, 1, 0.45, 1), (2, 2, 0.40, 1), (2, 3, 0.35, 1),
                   (3, 1, 0.45, 2), (3, 2, 0.40, 2), (3, 3, 0.35, 2)) v(g, j, r, cat);

    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, opened_on, floor_area, city, load_id)
    SELECT b, st, 'Store ' || st, 'store', start_date - 1000, round((800 + 400 * retail_mid.synth_uniform(s, 101, k))::numeric, 0), 'Shanghai', v_load
      FROM rm_as_store;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, product_brand, list_price, attributes, load_id)
    SELECT b, 'R' || c || '_' || j, 'Regular ' || c || '.' || j, cn, cn || ' ' || (1 + j % 2), 'House', p,
           CASE WHEN c = 5 THEN '{}'::jsonb ELSE jsonb_build_object('unit_cost', round(0.6 * p, 2)) END, v_load
      FROM generate_series(1, 5) c, generate_series(1, 8) j,
           LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[c] AS cn,
                           round((4 + 16 * retail_mid.synth_uniform(s, 102, c * 100 + j))::numeric, 2) AS p) x;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, product_brand, list_price, attributes, load_id)
    SELECT b, sku, 'Signature ' || sku, cn, cn || ' signature', 'House', 30, '{"unit_cost": 18}', v_load
      FROM rm_as_sig, LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[cat] AS cn) x;
    INSERT INTO retail_mid.ods_store_category_space (brand, store_id, category_l1, space_sqm, shelf_metres, load_id)
    SELECT b, a.st, (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[m.c],
           round((o.floor_area * 0.6 * m.w * (0.8 + 0.4 * retail_mid.synth_uniform(s, 103, a.k * 10 + m.c)))::numeric, 1),
           round((o.floor_area * 0.6 * m.w / 2)::numeric, 1), v_load
      FROM rm_as_store a JOIN rm_as_mix m ON m.g = a.g JOIN retail_mid.ods_site o ON o.brand = b AND o.site_id = a.st;

    -- customers: i = (k - 1) * customers_per_store + j; the group sets gender, age and member level
    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, gender, birth_date, home_store_id, register_time, attributes, load_id)
    SELECT b, 'AC' || lpad(i::text, 7, '0'), 'member_id',
           CASE WHEN retail_mid.synth_uniform(s, 104, i) < (ARRAY[0.85, 0.5, 0.15])[a.g] THEN 'F' ELSE 'M' END,
           make_date((ARRAY[1995, 1975, 1950])[a.g] + floor(retail_mid.synth_uniform(s, 105, i) * 12)::int, 6, 1),
           a.st, start_date - 400 + time '10:00', jsonb_build_object('member_level', (ARRAY['gold', 'silver', 'member'])[a.g]), v_load
      FROM rm_as_store a, generate_series((a.k - 1) * customers_per_store + 1, a.k * customers_per_store) i;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, seen_at, load_id)
    SELECT b, c.customer_id, 'member_id', c.customer_id, c.register_time, v_load FROM retail_mid.ods_customer c WHERE c.brand = b;
    PERFORM retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg(c.customer_id), array_agg(b))
       FROM retail_mid.ods_customer c WHERE c.brand = b;

    -- orders: a customer orders on a day with probability 0.07, at a twin of her home store one time in ten
    CREATE TEMP TABLE rm_as_order ON COMMIT DROP AS
    SELECT i * 10000 + d AS o, 'AC' || lpad(i::text, 7, '0') AS cust, a.g,
           CASE WHEN u < 0.05 THEN a.twin1 WHEN u < 0.10 THEN a.twin2 ELSE a.st END AS st,
           start_date + d + time '12:00' AS t
      FROM rm_as_store a, generate_series((a.k - 1) * customers_per_store + 1, a.k * customers_per_store) i,
           generate_series(0, days - 1) d, LATERAL (SELECT retail_mid.synth_uniform(s, 107, i * 10000 + d) AS u) x
     WHERE retail_mid.synth_uniform(s, 106, i * 10000 + d) < 0.07;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, load_id)
    SELECT b, 'AO' || o, 'member_id', cust, t, 'store', st, v_load FROM rm_as_order;
    -- three regular lines (category by the group's mix, SKU uniform in it; A1 sells R1_2 for R1_1)
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, load_id)
    SELECT b, 'AO' || r.o, ln, x.sku, 1, p.list_price, v_load
      FROM rm_as_order r, generate_series(1, 3) ln,
           LATERAL (SELECT m.c FROM rm_as_mix m WHERE m.g = r.g AND retail_mid.synth_uniform(s, 110 + ln, r.o) >= m.lo
                       AND retail_mid.synth_uniform(s, 110 + ln, r.o) < m.hi) m,
           LATERAL (SELECT 'R' || m.c || '_' || (1 + floor(retail_mid.synth_uniform(s, 120 + ln, r.o) * 8)::int) AS raw) y,
           LATERAL (SELECT CASE WHEN y.raw = 'R1_1' AND r.st = 'A1' THEN 'R1_2' ELSE y.raw END AS sku) x,
           retail_mid.ods_product p
     WHERE p.brand = b AND p.sku_id = x.sku;
    -- signature lines: at a store of the group, with the SKU's probability; never at A1 for group A
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, load_id)
    SELECT b, 'AO' || r.o, 3 + g.j, g.sku, 1, 30, v_load
      FROM rm_as_order r JOIN rm_as_store a ON a.st = r.st JOIN rm_as_sig g ON g.g = a.g
     WHERE r.st <> 'A1' AND retail_mid.synth_uniform(s, 130 + g.j, r.o) < g.rate;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'generate_synthetic_assortment: % orders, % signature lines', (SELECT count(*) FROM rm_as_order), n;
    ANALYZE retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_customer;
    PERFORM retail_mid.job_finish(v_job, (SELECT count(*) FROM retail_mid.ods_order_line l WHERE l.brand = b));
    RETURN QUERY
    SELECT a.st, g.sku, a.st = 'A1' AND g.g = 1, CASE WHEN a.st = 'A1' OR g.g <> a.g THEN 0 ELSE g.rate END::float8
      FROM rm_as_store a CROSS JOIN rm_as_sig g ORDER BY 1, 2;
    DROP TABLE rm_as_order, rm_as_sig, rm_as_mix, rm_as_store;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic_assortment(text, bigint, date, int, int) IS 'Generates a brand of nine stores in three groups of twins (alike customers and category mix per group) with category space, unit costs and orders, in which store A1 lacks the signature SKUs its twins sell (the planted gap) and R1_1; replaces the brand''s ODS rows; returns the truth per store and signature SKU (its probability per order, 0 where the store lacks it).';
