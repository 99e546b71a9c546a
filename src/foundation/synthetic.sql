-- foundation/synthetic.sql: a deterministic retail data generator for the demo, tests and benchmarks at any size.
--
-- Every value is retail_mid.synth_uniform(seed, stream, index), a hash, so the same arguments give the same rows
-- under any plan.

CREATE FUNCTION retail_mid.synth_uniform(seed bigint, stream int, i bigint)
RETURNS float8 AS 'MODULE_PATHNAME', 'synth_uniform' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_uniform(bigint, int, bigint) IS 'Uniform [0,1) number that is a pure function of (seed, stream, index): the generator''s source of randomness.';

CREATE FUNCTION retail_mid.synth_customer(seed bigint, stream int, i bigint, customers int)
RETURNS int AS 'MODULE_PATHNAME', 'synth_customer' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_customer(bigint, int, bigint, int) IS 'The synthetic customer order i draws, NULL for anonymous (15%); Pareto-like tiers: 35% of orders from the top 5% of customers, 35% from the next 20%.';

CREATE FUNCTION retail_mid.synth_is_active(seed bigint, c int, d int, days int)
RETURNS boolean AS 'MODULE_PATHNAME', 'synth_is_active' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_is_active(bigint, int, int, int) IS 'Whether synthetic customer c is active on day d: 40% are acquired during the first half of the period, 45% churn at a uniform day after their start.';

-- Generates one brand's stores, warehouses, demand zones, products, customers with several identifiers, orders
-- (weekly and yearly seasonality, Pareto-like customer spend, Zipf-like SKU popularity so that the tail is
-- intermittent, promotions with price cuts and uplift, returns), behaviour events consistent with the purchases,
-- campaigns, inventory and inbound shipments, and dirty lines (exact duplicates, zero and negative prices) at
-- dirty_rate. Replaces whatever the brand had in the ODS. Returns the number of order lines.
CREATE FUNCTION retail_mid.generate_synthetic(
    seed bigint DEFAULT 42, customers int DEFAULT 5000, days int DEFAULT 365, orders_per_day int DEFAULT 300,
    stores int DEFAULT 12, skus int DEFAULT 400, start_date date DEFAULT '2024-01-01', dirty_rate float8 DEFAULT 0.01,
    with_events boolean DEFAULT true, brand text DEFAULT 'synthetic')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_job bigint; v_load bigint; v_lines bigint; v_orders bigint; v_events bigint := 0; b text := brand;
    s bigint := seed;
BEGIN
    IF seed IS NULL OR customers IS NULL OR days IS NULL OR orders_per_day IS NULL OR stores IS NULL OR skus IS NULL
       OR start_date IS NULL OR dirty_rate IS NULL OR with_events IS NULL OR brand IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF customers < 1 OR days < 1 OR orders_per_day < 1 OR stores < 1 OR skus < 1 THEN
        RAISE EXCEPTION 'customers, days, orders_per_day, stores and skus must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF days > 3660 OR customers > 100000000 OR skus > 10000000 OR stores > 100000 OR orders_per_day > 10000000 THEN
        RAISE EXCEPTION 'generate_synthetic size out of range'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'At most 3660 days, 1e8 customers, 1e7 SKUs, 1e5 stores.';
    END IF;
    IF NOT (dirty_rate >= 0 AND dirty_rate <= 0.5) THEN
        RAISE EXCEPTION 'dirty_rate must be between 0 and 0.5' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('generate_synthetic', jsonb_build_object('seed', seed, 'customers', customers, 'days', days,
        'orders_per_day', orders_per_day, 'stores', stores, 'skus', skus, 'dirty_rate', dirty_rate, 'brand', brand));

    DELETE FROM retail_mid.ods_order_line WHERE brand = b;   DELETE FROM retail_mid.ods_order WHERE brand = b;
    DELETE FROM retail_mid.ods_behavior_event WHERE brand = b; DELETE FROM retail_mid.ods_campaign_touch WHERE brand = b;
    DELETE FROM retail_mid.ods_campaign WHERE brand = b;     DELETE FROM retail_mid.ods_promotion WHERE brand = b;
    DELETE FROM retail_mid.ods_inventory_snapshot WHERE brand = b; DELETE FROM retail_mid.ods_inbound_shipment WHERE brand = b;
    DELETE FROM retail_mid.ods_customer_identifier WHERE brand = b; DELETE FROM retail_mid.ods_customer WHERE brand = b;
    DELETE FROM retail_mid.ods_product WHERE brand = b;      DELETE FROM retail_mid.ods_site WHERE brand = b;
    DELETE FROM retail_mid.ods_demand_zone WHERE brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    RAISE NOTICE 'generate_synthetic: sites, zones, % products, % customers', skus, customers;
    -- Sites around one city centre (Shanghai): stores, one CDC, two RDCs, one FDC per four stores.
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, floor_area, city, parent_site_id, load_id)
    SELECT b, 'S' || lpad(i::text, 4, '0'), 'Store ' || i, 'store',
           ST_SetSRID(ST_MakePoint(121.47 + 0.3 * sqrt(u1) * cos(2 * pi() * u2), 31.23 + 0.25 * sqrt(u1) * sin(2 * pi() * u2)), 4326),
           start_date - (30 + floor(u3 * 2000))::int, round((200 + 1800 * u3)::numeric, 0), 'Shanghai',
           'FDC' || lpad((1 + (i - 1) / 4)::text, 3, '0'), v_load
      FROM generate_series(1, stores) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 1, i) u1, retail_mid.synth_uniform(s, 2, i) u2, retail_mid.synth_uniform(s, 3, i) u3) u;
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    VALUES (b, 'CDC01', 'Central DC', 'CDC', ST_SetSRID(ST_MakePoint(121.20, 31.10), 4326), start_date - 3000, 'Shanghai', NULL, v_load),
           (b, 'RDC01', 'Regional DC north', 'RDC', ST_SetSRID(ST_MakePoint(121.45, 31.40), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load),
           (b, 'RDC02', 'Regional DC south', 'RDC', ST_SetSRID(ST_MakePoint(121.50, 31.05), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load);
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    SELECT b, 'FDC' || lpad(f::text, 3, '0'), 'Front DC ' || f, 'FDC', ST_Centroid(ST_Collect(geom)), min(opened_on), 'Shanghai',
           CASE WHEN f % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, v_load
      FROM retail_mid.ods_site, LATERAL (SELECT substr(parent_site_id, 4)::int AS f) x
     WHERE brand = b AND kind = 'store' GROUP BY f;
    INSERT INTO retail_mid.ods_demand_zone (brand, zone_id, zone_name, geom, population, households, income, load_id)
    SELECT b, 'Z' || lpad(i::text, 4, '0'), 'Zone ' || i,
           ST_SetSRID(ST_MakePoint(121.47 + 0.4 * (retail_mid.synth_uniform(s, 4, i) - 0.5) * 2,
                                   31.23 + 0.35 * (retail_mid.synth_uniform(s, 5, i) - 0.5) * 2), 4326),
           round((2000 + 18000 * retail_mid.synth_uniform(s, 6, i))::numeric), round((800 + 7000 * retail_mid.synth_uniform(s, 6, i))::numeric),
           round((40000 + 80000 * retail_mid.synth_uniform(s, 7, i))::numeric), v_load
      FROM generate_series(1, greatest(50, stores * 10)) i;

    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, category_l3, category_l4, product_brand, list_price, load_id)
    SELECT b, 'P' || lpad(i::text, 6, '0'), 'Product ' || i, c1, c1 || ' ' || (1 + i % 4), c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3),
           c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3) || '.' || (1 + i % 2), 'Brand ' || (1 + i % 25),
           round(exp(1.0 + 2.6 * retail_mid.synth_uniform(s, 8, i))::numeric, 2), v_load
      FROM generate_series(1, skus) i,
           LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[1 + i % 5] AS c1) c;

    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, name, gender, birth_date, phone, email, city, province,
                                         register_time, register_channel, home_store_id, load_id)
    SELECT b, 'M' || lpad(i::text, 8, '0'), 'member_id', 'Customer ' || i,
           CASE WHEN u1 < 0.55 THEN 'F' WHEN u1 < 0.98 THEN 'M' ELSE 'U' END,
           date '1950-01-01' + floor(u2 * 18000)::int, '1' || lpad((3800000000 + i)::text, 10, '0'), 'c' || i || '@example.com',
           'Shanghai', 'Shanghai', start_date - floor(u3 * 1500)::int + time '10:00',
           (ARRAY['store', 'app', 'mini_program', 'web'])[1 + floor(u3 * 4)::int],
           'S' || lpad((1 + floor(retail_mid.synth_uniform(s, 11, i) * stores))::text, 4, '0'), v_load
      FROM generate_series(1, customers) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 9, i) u1, retail_mid.synth_uniform(s, 10, i) u2, retail_mid.synth_uniform(s, 12, i) u3) u;
    -- Identifiers: every member id, most phones, some e-mails, devices and WeChat open ids; 2% of customers share a
    -- device with the next customer (households), which gives the identity graph real merges.
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, seen_at, load_id)
    SELECT b, c.customer_id, t.id_type, t.id_value, c.register_time, v_load
      FROM retail_mid.ods_customer c,
           LATERAL (SELECT substr(c.customer_id, 2)::bigint AS i) k,
           LATERAL (VALUES ('member_id', c.customer_id, true),
                           ('phone', c.phone, retail_mid.synth_uniform(s, 13, k.i) < 0.8),
                           ('email', c.email, retail_mid.synth_uniform(s, 14, k.i) < 0.5),
                           ('device_id', 'D' || CASE WHEN retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02 THEN k.i - 1 ELSE k.i END,
                            retail_mid.synth_uniform(s, 16, k.i) < 0.6 OR retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02),
                           ('open_id', 'wx' || md5(s || ':' || k.i), retail_mid.synth_uniform(s, 17, k.i) < 0.4)) AS t(id_type, id_value, present)
     WHERE c.brand = b AND t.present;
    PERFORM retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg(customer_id), array_agg(b))
       FROM retail_mid.ods_customer WHERE brand = b;

    RAISE NOTICE 'generate_synthetic: orders over % days', days;
    -- Orders per day: weekday profile x yearly wave x noise. Each order draws a customer (synth_customer); when
    -- that customer is not active on the day (not acquired yet, or churned), a second draw is tried, and when
    -- that one is not active either the order stays anonymous.
    CREATE TEMP TABLE rm_syn_order ON COMMIT DROP AS
    SELECT o, d, c,
           CASE WHEN c IS NOT NULL AND retail_mid.synth_uniform(s, 22, o) < 0.8
                THEN 1 + floor(retail_mid.synth_uniform(s, 11, c) * stores)::int
                ELSE 1 + floor(retail_mid.synth_uniform(s, 27, o) * stores)::int END AS store,
           retail_mid.synth_uniform(s, 23, o) AS u_channel,
           1 + least(19, floor(-ln(1 - retail_mid.synth_uniform(s, 24, o)) * 1.7))::int AS n_lines,
           start_date + d + make_interval(secs => 28800 + floor(46800 * retail_mid.synth_uniform(s, 25, o))) AS ts
      FROM (SELECT o, d, CASE WHEN c1 IS NOT NULL AND retail_mid.synth_is_active(s, c1, d, days) THEN c1
                              WHEN c2 IS NOT NULL AND retail_mid.synth_is_active(s, c2, d, days) THEN c2 END AS c
              FROM (SELECT d * 10000000::bigint + k AS o, d,
                           retail_mid.synth_customer(s, 20, d * 10000000::bigint + k, customers) AS c1,
                           retail_mid.synth_customer(s, 28, d * 10000000::bigint + k, customers) AS c2
                      FROM generate_series(0, days - 1) d,
                           LATERAL generate_series(1, greatest(1, round(orders_per_day
                                * (ARRAY[1.2, 0.85, 0.85, 0.9, 0.95, 1.1, 1.3])[1 + extract(dow FROM start_date + d)::int] / 1.0214
                                * (1 + 0.25 * sin(2 * pi() * (extract(doy FROM start_date + d) - 80) / 365.25))
                                * (0.9 + 0.2 * retail_mid.synth_uniform(s, 26, d))))::int) k) draws) x;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'O' || o, CASE WHEN c IS NOT NULL THEN 'member_id' END, 'M' || lpad(c::text, 8, '0'), ts,
           CASE WHEN u_channel < 0.7 THEN 'store' WHEN u_channel < 0.9 THEN 'online' ELSE 'app' END,
           'S' || lpad(store::text, 4, '0'), 'paid', v_load
      FROM rm_syn_order;
    GET DIAGNOSTICS v_orders = ROW_COUNT;

    -- Lines: Zipf-like SKU choice; a SKU x store x week is on promotion with probability 0.06 (20% off, about
    -- twice the units). Dirt: exact duplicate lines, zero and negative prices, each at a third of dirty_rate.
    CREATE TEMP TABLE rm_syn_line ON COMMIT DROP AS
    SELECT o.o, j, o.d, x.sku, o.store, p.list_price,
           retail_mid.synth_uniform(s, 31, (x.sku::bigint * 100003 + o.store) * 1000 + o.d / 7) < 0.06 AS promo,
           retail_mid.synth_uniform(s, 32, o.o * 32 + j) AS u_qty, retail_mid.synth_uniform(s, 33, o.o * 32 + j) AS u_dirt
      FROM rm_syn_order o
      JOIN LATERAL generate_series(1, o.n_lines) j ON true
      CROSS JOIN LATERAL (SELECT 1 + ((floor(skus * power(retail_mid.synth_uniform(s, 30, o.o * 32 + j), 2.5))::bigint + (j - 1) * 7919) % skus)::int AS sku) x
      JOIN retail_mid.ods_product p ON p.brand = b AND p.sku_id = 'P' || lpad(x.sku::text, 6, '0');
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'O' || o, j + CASE WHEN dup THEN 100 ELSE 0 END, 'P' || lpad(sku::text, 6, '0'),
           1 + floor(-ln(1 - u_qty) * CASE WHEN promo THEN 1.6 ELSE 0.8 END),
           CASE WHEN u_dirt < dirty_rate / 3 THEN 0
                WHEN u_dirt < dirty_rate / 3 * 1.1 THEN -list_price
                WHEN promo THEN round(list_price * 0.8, 2) ELSE list_price END,
           0, v_load
      FROM rm_syn_line, LATERAL (VALUES (false), (true)) AS dd(dup)
     WHERE NOT dup OR u_dirt > 1 - dirty_rate / 3;
    GET DIAGNOSTICS v_lines = ROW_COUNT;

    INSERT INTO retail_mid.ods_promotion (brand, sku_id, store_id, start_date, end_date, promo_price, display, feature, load_id)
    SELECT DISTINCT ON (sku, store, d / 7) b, 'P' || lpad(sku::text, 6, '0'), 'S' || lpad(store::text, 4, '0'),
           start_date + (d / 7) * 7, start_date + (d / 7) * 7 + 6, round(list_price * 0.8, 2),
           retail_mid.synth_uniform(s, 34, sku) < 0.5, retail_mid.synth_uniform(s, 35, sku) < 0.3, v_load
      FROM rm_syn_line WHERE promo ORDER BY sku, store, d / 7;

    -- Returns: 2% of identified orders send their first line back 1 to 14 days later (within the period).
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, original_order_id, load_id)
    SELECT b, 'R' || substr(o.order_id, 2), o.id_type, o.customer_id,
           o.order_time + make_interval(days => 1 + floor(14 * retail_mid.synth_uniform(s, 41, substr(o.order_id, 2)::bigint))::int),
           o.channel, o.store_id, 'returned', o.order_id, v_load
      FROM retail_mid.ods_order o
     WHERE o.brand = b AND o.status = 'paid' AND o.customer_id IS NOT NULL
       AND retail_mid.synth_uniform(s, 40, substr(o.order_id, 2)::bigint) < 0.02
       AND o.order_time + interval '15 days' < start_date + days;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, original_order_id, original_line_no, load_id)
    SELECT b, r.order_id, 1, l.sku_id, -l.quantity, l.unit_price, 0, l.order_id, 1, v_load
      FROM retail_mid.ods_order r JOIN retail_mid.ods_order_line l ON l.brand = b AND l.order_id = r.original_order_id AND l.line_no = 1
     WHERE r.brand = b AND r.status = 'returned' AND l.unit_price > 0;

    IF with_events THEN
        RAISE NOTICE 'generate_synthetic: behaviour events';
        -- Every identified purchase is preceded by views and a cart event of its SKUs and followed by a purchase event;
        -- on top, exposures, clicks, searches and favourites for random customers, so that the funnel has non-buyers.
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, amount, load_id)
        SELECT b, 'member_id', 'M' || lpad(o.c::text, 8, '0'), o.ts - make_interval(mins => e.before_min), e.event_type,
               'sku_id', 'P' || lpad(l.sku::text, 6, '0'), CASE WHEN o.u_channel < 0.7 THEN 'store' ELSE 'app' END,
               e.cnt, CASE WHEN e.event_type = 'purchase' THEN l.list_price END, v_load
          FROM rm_syn_order o JOIN rm_syn_line l ON l.o = o.o AND l.j = 1,
               LATERAL (VALUES ('exposure', 1440, 1 + floor(3 * l.u_qty)::int), ('click', 1400, 1), ('view', 30, 1 + floor(2 * l.u_dirt)::int),
                               ('cart', 10, 1), ('purchase', 0, 1)) AS e(event_type, before_min, cnt)
         WHERE o.c IS NOT NULL;
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, load_id)
        SELECT b, 'member_id', 'M' || lpad(c::text, 8, '0'), start_date + d + time '12:00', et, 'sku_id',
               'P' || lpad((1 + floor(skus * retail_mid.synth_uniform(s, 52, i))::int)::text, 6, '0'),
               (ARRAY['app', 'web', 'media'])[1 + floor(3 * retail_mid.synth_uniform(s, 53, i))::int], 1, v_load
          FROM generate_series(0, days - 1) d,
               LATERAL generate_series(1, greatest(1, customers / 50)) k,
               LATERAL (SELECT d::bigint * 10000000 + k AS i) ii,
               LATERAL (SELECT 1 + floor(customers * retail_mid.synth_uniform(s, 50, i))::int AS c,
                               retail_mid.synth_uniform(s, 51, i) AS u) cu,
               LATERAL (VALUES ('exposure', true), ('click', u < 0.3), ('search', u < 0.15), ('favorite', u < 0.05),
                               ('follow', u < 0.01), ('review', u > 0.995), ('share', u > 0.99)) AS e(et, present)
         WHERE present;
        SELECT count(*) INTO v_events FROM retail_mid.ods_behavior_event WHERE brand = b;
    END IF;

    -- Campaigns: three, each sent to a share of customers; some are exposed, click and redeem.
    INSERT INTO retail_mid.ods_campaign (brand, campaign_id, name, kind, start_date, end_date, load_id)
    SELECT b, 'C' || i, 'Campaign ' || i, (ARRAY['coupon', 'newsletter', 'media'])[i], start_date + i * days / 4, start_date + i * days / 4 + 14, v_load
      FROM generate_series(1, 3) i;
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, load_id)
    SELECT b, 'C' || i, 'member_id', 'M' || lpad(c::text, 8, '0'), (ARRAY['sms', 'email', 'media'])[i],
           start_date + i * days / 4 + time '09:00', t.touch_type, v_load
      FROM generate_series(1, 3) i, generate_series(1, customers) c,
           LATERAL (SELECT retail_mid.synth_uniform(s, 60 + i, c) AS u) uu,
           LATERAL (VALUES ('sent', u < 0.3), ('exposed', u < 0.2), ('clicked', u < 0.06), ('redeemed', u < 0.02)) AS t(touch_type, present)
     WHERE present;

    -- Stock at the end of the period for every store x SKU that sold, and weekly replenishment from the RDCs.
    INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, on_order, reserved, load_id)
    SELECT b, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'), start_date + days - 1,
           floor(40 * retail_mid.synth_uniform(s, 70, sku::bigint * 100003 + store)), 0, 0, v_load
      FROM (SELECT DISTINCT store, sku FROM rm_syn_line) x;
    INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity, load_id)
    SELECT b, 'SH' || w || '-' || store, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'),
           CASE WHEN store % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, start_date + w * 7, start_date + w * 7 + 3,
           start_date + w * 7 + 2 + floor(5 * retail_mid.synth_uniform(s, 71, w::bigint * 100003 + store))::int,
           1 + floor(30 * retail_mid.synth_uniform(s, 72, (w::bigint * 100003 + store) * 1000 + sku)), v_load
      FROM generate_series(0, days / 7 - 1) w, generate_series(1, stores) store,
           LATERAL (SELECT DISTINCT 1 + floor(skus * power(retail_mid.synth_uniform(s, 73, (w::bigint * 100003 + store) * 100 + q), 2.5))::int AS sku
                      FROM generate_series(1, 5) q) k;

    UPDATE retail_mid.ods_load SET rows_read = v_lines, rows_loaded = v_lines WHERE load_id = v_load;
    DROP TABLE rm_syn_order, rm_syn_line;
    RAISE NOTICE 'generate_synthetic: % orders, % lines, % behaviour events', v_orders, v_lines, v_events;
    PERFORM retail_mid.job_finish(v_job, v_lines, jsonb_build_object('orders', v_orders, 'lines', v_lines, 'events', v_events));
    RETURN v_lines;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic(bigint, int, int, int, int, int, date, float8, boolean, text) IS 'Deterministic synthetic retail data for one brand (replacing its ODS rows): sites, zones, products, customers and identifiers, seasonal orders with promotions, returns and dirty lines, behaviour events, campaigns, stock and shipments.';

-- issue 17: paid media with known effects, added to a brand made by generate_synthetic. For every channel, weekly
-- spend is on in a share of the weeks (on_share) at a random level around mean_spend, spread evenly over the week's
-- days; its effect on the week's sales is beta * hill(adstock) with the geometric adstock a_w = x_w + decay * a_{w-1}
-- (weeks from start_date) and hill(a) = a^slope / (a^slope + half_saturation^slope). The effect is added as one
-- anonymous order per channel and day (the brand's first store and SKU, a seventh of the week's effect), so that
-- the DWS see it. Replaces the brand's earlier media spend and media orders. Returns the truth per channel and week.
CREATE FUNCTION retail_mid.generate_synthetic_media(
    brand text DEFAULT 'synthetic',
    channels jsonb DEFAULT '{"tv":     {"decay": 0.7, "half_saturation": 12000, "slope": 2.0, "beta": 12000, "mean_spend": 3000, "on_share": 0.5},
                             "search": {"decay": 0.2, "half_saturation": 1500,  "slope": 1.2, "beta": 6000,  "mean_spend": 1500, "on_share": 0.8},
                             "social": {"decay": 0.45, "half_saturation": 2500, "slope": 2.5, "beta": 8000,  "mean_spend": 1500, "on_share": 0.6}}',
    seed bigint DEFAULT 42, start_date date DEFAULT NULL, weeks int DEFAULT NULL)
RETURNS TABLE (channel text, week_start date, spend numeric, adstock float8, contribution float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    b text := brand; v_job bigint; v_load bigint; v_store text; v_sku text; v_from date; v_weeks int;
    ch record; p jsonb; k text; a float8; x numeric; w int; ci int := 0; s bigint := seed;
BEGIN
    IF brand IS NULL OR channels IS NULL OR seed IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic_media: brand, channels and seed must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT min(site_id) INTO v_store FROM retail_mid.ods_site WHERE brand = b AND kind = 'store';
    SELECT min(sku_id) INTO v_sku FROM retail_mid.ods_product WHERE brand = b;
    IF v_store IS NULL OR v_sku IS NULL THEN
        RAISE EXCEPTION 'unknown brand "%"', brand USING ERRCODE = 'undefined_object',
            DETAIL = 'The brand has no store or product in the ODS.', HINT = 'Run generate_synthetic for the brand first.';
    END IF;
    v_from := coalesce(start_date, (SELECT min(order_time)::date FROM retail_mid.ods_order WHERE brand = b AND order_id NOT LIKE 'MM%'));
    v_weeks := coalesce(weeks, (SELECT ((max(order_time)::date - v_from + 1) / 7)::int FROM retail_mid.ods_order WHERE brand = b AND order_id NOT LIKE 'MM%'));
    IF v_from IS NULL OR v_weeks IS NULL OR v_weeks < 1 OR v_weeks > 1000 THEN
        RAISE EXCEPTION 'generate_synthetic_media needs between 1 and 1000 weeks' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(channels) <> 'object' OR channels = '{}' THEN
        RAISE EXCEPTION 'channels must be a non-empty JSON object of channel parameters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, p IN SELECT e.key, e.value FROM jsonb_each(channels) e LOOP
        IF jsonb_typeof(p) <> 'object' OR EXISTS (SELECT 1 FROM unnest(ARRAY['decay', 'half_saturation', 'slope', 'beta', 'mean_spend', 'on_share']) f
                                                   WHERE jsonb_typeof(p -> f) IS DISTINCT FROM 'number')
           OR (p ->> 'decay')::float8 NOT BETWEEN 0 AND 0.99 OR (p ->> 'half_saturation')::float8 <= 0 OR (p ->> 'slope')::float8 <= 0
           OR (p ->> 'mean_spend')::float8 < 0 OR (p ->> 'on_share')::float8 NOT BETWEEN 0.01 AND 1 THEN
            RAISE EXCEPTION 'bad parameters for channel "%"', k USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Each channel needs numbers decay (0 to 0.99), half_saturation > 0, slope > 0, beta, mean_spend >= 0 and on_share (0.01 to 1).';
        END IF;
    END LOOP;
    v_job := retail_mid.job_start('generate_synthetic_media', jsonb_build_object('brand', brand, 'channels', channels, 'seed', seed,
                                                                                  'start_date', v_from, 'weeks', v_weeks));
    DELETE FROM retail_mid.ods_order_line WHERE brand = b AND order_id LIKE 'MM%';
    DELETE FROM retail_mid.ods_order WHERE brand = b AND order_id LIKE 'MM%';
    DELETE FROM retail_mid.ods_media_spend WHERE brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic_media', 'seed=' || seed, b) RETURNING load_id INTO v_load;
    CREATE TEMP TABLE rm_syn_media (channel text, ci int, week_start date, spend numeric, adstock float8, contribution float8) ON COMMIT DROP;
    FOR k, p IN SELECT e.key, e.value FROM jsonb_each(channels) e ORDER BY e.key LOOP
        ci := ci + 1;
        a := 0;
        FOR w IN 0 .. v_weeks - 1 LOOP
            -- on in on_share of the weeks, at 0.3 to 1.7 times the level that gives mean_spend on average; whole cents a day
            x := CASE WHEN retail_mid.synth_uniform(s, 900 + ci, w) < (p ->> 'on_share')::float8
                      THEN 7 * round(((p ->> 'mean_spend')::float8 / (p ->> 'on_share')::float8
                                      * (0.3 + 1.4 * retail_mid.synth_uniform(s, 950 + ci, w)) / 7)::numeric, 2)
                      ELSE 0 END;
            a := x::float8 + (p ->> 'decay')::float8 * a;
            INSERT INTO rm_syn_media VALUES (k, ci, v_from + 7 * w, x, a,
                CASE WHEN a > 0 THEN (p ->> 'beta')::float8 / (1 + ((p ->> 'half_saturation')::float8 / a) ^ (p ->> 'slope')::float8) ELSE 0 END);
        END LOOP;
    END LOOP;
    INSERT INTO retail_mid.ods_media_spend (brand, spend_date, channel, campaign_id, spend, impressions, load_id)
    SELECT b, m.week_start + d, m.channel, '(none)', m.spend / 7, round(m.spend / 7 * (20 + 10 * m.ci))::bigint, v_load
      FROM rm_syn_media m, generate_series(0, 6) d;
    INSERT INTO retail_mid.ods_order (brand, order_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'MM' || m.ci || '-' || (m.week_start + d - v_from), m.week_start + d + time '12:00', 'store', v_store, 'paid', v_load
      FROM rm_syn_media m, generate_series(0, 6) d WHERE m.contribution >= 0.07;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'MM' || m.ci || '-' || (m.week_start + d - v_from), 1, v_sku, 1, round((m.contribution / 7)::numeric, 2), 0, v_load
      FROM rm_syn_media m, generate_series(0, 6) d WHERE m.contribution >= 0.07;
    UPDATE retail_mid.ods_load SET rows_read = (SELECT count(*) * 7 FROM rm_syn_media), rows_loaded = (SELECT count(*) * 7 FROM rm_syn_media)
     WHERE load_id = v_load;
    RAISE NOTICE 'generate_synthetic_media: % channels, % weeks from %', ci, v_weeks, v_from;
    PERFORM retail_mid.job_finish(v_job, (SELECT count(*) * 7 FROM rm_syn_media), jsonb_build_object('channels', ci, 'weeks', v_weeks));
    ANALYZE retail_mid.ods_media_spend;
    RETURN QUERY SELECT m.channel, m.week_start, m.spend, m.adstock, m.contribution FROM rm_syn_media m ORDER BY m.channel, m.week_start;
    DROP TABLE rm_syn_media;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic_media(text, jsonb, bigint, date, int) IS 'Adds paid media with known geometric adstock and Hill saturation per channel to a synthetic brand: daily spend in ods_media_spend and the media''s sales as anonymous orders; returns the true spend, adstock and contribution per channel and week (the truth the marketing mix model must recover).';
