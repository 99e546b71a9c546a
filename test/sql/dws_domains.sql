-- dws_domains: the behaviour, marketing, inventory and member DWD/DWS (issue 15) reconcile with plain SQL over the
-- ODS on the synthetic generator and on Complete Journey, refresh is idempotent and takes late data.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(seed => 15, customers => 300, days => 120, orders_per_day => 30, stores => 4,
                                     skus => 80, start_date => '2024-01-01', brand => 'dom_test') > 0 AS generated;
-- a warehouse snapshot, an untrimmed identifier and an exact duplicate event
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, on_order, reserved)
SELECT 'dom_test', site_id, 'P000001', '2024-04-29', 500, 0, 20 FROM retail_mid.ods_site WHERE brand = 'dom_test' AND kind <> 'store' ORDER BY site_id LIMIT 1;
-- an open purchase order for a store and one for the warehouse, and three members who register in the window
INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity)
SELECT 'dom_test', 'OPEN-' || site_id, site_id, sku_id, 'SUP1', '2024-04-25', '2024-05-03', NULL, 12
  FROM (SELECT DISTINCT ON (site_id LIKE 'S%') site_id, sku_id FROM retail_mid.ods_inventory_snapshot WHERE brand = 'dom_test' ORDER BY site_id LIKE 'S%', site_id, sku_id) x;
UPDATE retail_mid.ods_customer SET register_time = ('2024-03-0' || right(customer_id, 1) || ' 09:00')::timestamp
 WHERE brand = 'dom_test' AND customer_id IN ('M00000001', 'M00000002', 'M00000003');
INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel)
VALUES ('dom_test', 'member_id', ' M00000001 ', '2024-02-01 10:00', 'view', 'sku_id', 'P000002', 'app'),
       ('dom_test', 'member_id', 'M00000001', '2024-02-01 10:00', 'view', 'sku_id', 'P000002', 'app'),
       ('dom_test', 'member_id', '   ', '2024-02-01 10:00', 'view', 'sku_id', 'P000002', 'app');
SELECT retail_mid.refresh('2024-01-01', '2024-04-29') > 0 AS refreshed;
RESET client_min_messages;

SELECT (SELECT count(*) FROM retail_mid.dwd_behavior_event_di WHERE brand = 'dom_test') > 0 AS has_events,
       (SELECT count(*) FROM retail_mid.dwd_marketing_touch_di WHERE brand = 'dom_test') > 0 AS has_touches,
       (SELECT count(*) FROM retail_mid.dws_inventory_site_sku_1d WHERE brand = 'dom_test') > 0 AS has_stock,
       (SELECT count(*) FROM retail_mid.dws_member_1d WHERE brand = 'dom_test') > 0 AS has_members;

-- DWD: the distinct ODS rows with a usable identifier, keyed by the trimmed identifier
CREATE TEMP TABLE ref_event AS
SELECT DISTINCT e.event_time::date AS dt, k.customer_key, e.event_time, e.event_type, e.object_attribute, e.object_value,
       coalesce(e.channel, '(none)') AS channel, e.event_count, e.amount
  FROM retail_mid.ods_behavior_event e JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                                     AND k.id_value = btrim(e.id_value)
 WHERE e.brand = 'dom_test' AND e.event_time >= '2024-01-01' AND e.event_time < '2024-04-30';
SELECT (SELECT count(*) FROM ref_event) AS ref_events,
       (SELECT count(*) FROM (SELECT * FROM ref_event EXCEPT SELECT dt, customer_key, event_time, event_type, object_attribute, object_value, channel, event_count, amount
                                FROM retail_mid.dwd_behavior_event_di WHERE brand = 'dom_test') x) AS missing,
       (SELECT count(*) FROM retail_mid.dwd_behavior_event_di WHERE brand = 'dom_test') - (SELECT count(*) FROM ref_event) AS extra;
-- the untrimmed and duplicate events became one row, the blank identifier none
SELECT count(*) AS customer_1_views_feb_1 FROM retail_mid.dwd_behavior_event_di d JOIN retail_mid.customer_key k USING (customer_key)
 WHERE d.brand = 'dom_test' AND k.id_value = 'M00000001' AND d.event_time = '2024-02-01 10:00' AND d.event_type = 'view';

-- behaviour DWS against plain SQL
SELECT count(*) AS behaviour_mismatches FROM (
    (SELECT e.dt, e.customer_key, e.channel, CASE WHEN e.object_attribute = 'sku_id' THEN coalesce(p.category_l1, '(unknown)') ELSE '(none)' END AS cat,
            sum(CASE WHEN e.event_type = 'view' THEN e.event_count ELSE 0 END) AS views,
            sum(CASE WHEN e.event_type = 'cart' THEN e.event_count ELSE 0 END) AS carts,
            sum(CASE WHEN e.event_type = 'favorite' THEN e.event_count ELSE 0 END) AS favorites,
            sum(CASE WHEN e.event_type = 'share' THEN e.event_count ELSE 0 END) AS shares, sum(e.event_count) AS events
       FROM ref_event e LEFT JOIN retail_mid.ods_product p ON p.brand = 'dom_test' AND p.sku_id = e.object_value
      GROUP BY 1, 2, 3, 4
     EXCEPT SELECT dt, customer_key, channel, category_l1, views, carts, favorites, shares, events FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test')
    UNION ALL
    (SELECT dt, customer_key, channel, category_l1, views, carts, favorites, shares, events FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test'
     EXCEPT SELECT e.dt, e.customer_key, e.channel, CASE WHEN e.object_attribute = 'sku_id' THEN coalesce(p.category_l1, '(unknown)') ELSE '(none)' END,
            sum(CASE WHEN e.event_type = 'view' THEN e.event_count ELSE 0 END), sum(CASE WHEN e.event_type = 'cart' THEN e.event_count ELSE 0 END),
            sum(CASE WHEN e.event_type = 'favorite' THEN e.event_count ELSE 0 END), sum(CASE WHEN e.event_type = 'share' THEN e.event_count ELSE 0 END),
            sum(e.event_count)
       FROM ref_event e LEFT JOIN retail_mid.ods_product p ON p.brand = 'dom_test' AND p.sku_id = e.object_value GROUP BY 1, 2, 3, 4)) x;
SELECT sum(views) AS views, sum(carts) AS carts, sum(favorites) AS favorites, sum(shares) AS shares, sum(events) AS events
  FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test';

-- campaign funnel against plain SQL on the ODS (distinct identifiers per touch type)
CREATE TEMP TABLE ref_campaign AS
SELECT touched_at::date AS dt, campaign_id, coalesce(channel, '(none)') AS channel,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'sent') AS sent,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type <> 'sent') AS delivered,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'exposed') AS opened,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'clicked') AS clicked,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'redeemed') AS redeemed
  FROM (SELECT DISTINCT * FROM retail_mid.ods_campaign_touch WHERE brand = 'dom_test' AND touched_at < '2024-04-30') t GROUP BY 1, 2, 3;
SELECT count(*) AS campaign_mismatches FROM (
    (SELECT * FROM ref_campaign EXCEPT SELECT dt, campaign_id, channel, sent, delivered, opened, clicked, redeemed FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'dom_test')
    UNION ALL
    (SELECT dt, campaign_id, channel, sent, delivered, opened, clicked, redeemed FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'dom_test' EXCEPT SELECT * FROM ref_campaign)) x;
SELECT campaign_id, channel, sent, delivered, opened, clicked, redeemed FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'dom_test' ORDER BY 1;

-- inventory against plain SQL: open shipments, trailing 28-day sales from the trade DWD
CREATE TEMP TABLE ref_stock AS
SELECT i.snapshot_date AS dt, i.site_id, i.sku_id, i.on_hand,
       (SELECT coalesce(sum(quantity), 0) FROM retail_mid.ods_inbound_shipment s WHERE s.brand = i.brand AND s.site_id = i.site_id AND s.sku_id = i.sku_id
         AND s.ordered_on <= i.snapshot_date AND (s.received_on IS NULL OR s.received_on > i.snapshot_date)) AS on_order,
       greatest(i.on_hand - i.reserved, 0) AS atp,
       (SELECT coalesce(sum(quantity), 0) FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand = i.brand AND l.store_id = i.site_id AND l.sku_id = i.sku_id
         AND l.dt BETWEEN i.snapshot_date - 27 AND i.snapshot_date) AS sold
  FROM retail_mid.ods_inventory_snapshot i WHERE i.brand = 'dom_test';
SELECT count(*) AS stock_rows,
       count(*) FILTER (WHERE d.dt IS NULL OR d.on_hand <> r.on_hand OR d.on_order <> r.on_order OR d.available_to_promise <> r.atp
                          OR abs(d.mean_daily_sales_28d - r.sold / 28.0) > 1e-6
                          OR d.days_of_cover IS DISTINCT FROM CASE WHEN r.sold > 0 THEN round(r.on_hand * 28 / r.sold, 2) END
                          OR d.stock_out <> (r.on_hand <= 0)) AS mismatches,
       count(*) FILTER (WHERE d.site_kind <> 'store') AS warehouse_rows,
       count(*) FILTER (WHERE d.on_order > 0) AS with_open_orders,
       count(*) FILTER (WHERE d.stock_out) AS stock_outs,
       count(*) FILTER (WHERE d.days_of_cover IS NOT NULL) AS with_cover
  FROM ref_stock r LEFT JOIN retail_mid.dws_inventory_site_sku_1d d ON d.brand = 'dom_test' AND d.dt = r.dt AND d.site_id = r.site_id AND d.sku_id = r.sku_id;

-- inbound DWD: the ODS shipment lines of the refreshed days, supplier trimmed (blank: NULL), lead time received -
-- ordered; none missing, none extra
SELECT (SELECT count(*) FROM retail_mid.ods_inbound_shipment WHERE brand = 'dom_test' AND ordered_on BETWEEN '2024-01-01' AND '2024-04-29') AS ods_lines,
       (SELECT count(*) FROM (SELECT brand, shipment_id, site_id, sku_id, nullif(btrim(supplier_id), ''), ordered_on, expected_on, received_on,
                                     quantity, received_on - ordered_on
                                FROM retail_mid.ods_inbound_shipment WHERE brand = 'dom_test' AND ordered_on BETWEEN '2024-01-01' AND '2024-04-29'
                              EXCEPT SELECT brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity, lead_time_days
                                       FROM retail_mid.dwd_inventory_inbound_di WHERE brand = 'dom_test') x) AS missing,
       (SELECT count(*) FROM retail_mid.dwd_inventory_inbound_di WHERE brand = 'dom_test')
     - (SELECT count(*) FROM retail_mid.ods_inbound_shipment WHERE brand = 'dom_test' AND ordered_on BETWEEN '2024-01-01' AND '2024-04-29') AS extra,
       (SELECT count(*) FROM retail_mid.dwd_inventory_inbound_di WHERE brand = 'dom_test' AND dt <> ordered_on) AS wrong_day;

-- members against a brute-force definition per day: active = a sale day in dt-89..dt, lapsed = sales only before that
CREATE TEMP TABLE ref_member AS
WITH m AS (SELECT c.brand, k.customer_key, coalesce(c.home_store_id, '(none)') AS store_id, coalesce(c.register_channel, '(none)') AS channel,
                  c.register_time::date AS registered
             FROM retail_mid.ods_customer c JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                                     AND k.id_value = btrim(c.customer_id)
            WHERE c.brand = 'dom_test'),
     sale AS (SELECT DISTINCT l.customer_key, l.dt FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand = 'dom_test' AND l.line_type = 'sale'),
     days AS (SELECT d::date AS dt FROM generate_series(date '2024-01-01', date '2024-04-29', interval '1 day') d)
SELECT days.dt, m.store_id, m.channel,
       count(*) FILTER (WHERE m.registered = days.dt) AS new_members,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM sale s WHERE s.customer_key = m.customer_key AND s.dt BETWEEN days.dt - 89 AND days.dt)) AS active,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM sale s WHERE s.customer_key = m.customer_key AND s.dt < days.dt - 89)
                          AND NOT EXISTS (SELECT 1 FROM sale s WHERE s.customer_key = m.customer_key AND s.dt BETWEEN days.dt - 89 AND days.dt)) AS lapsed
  FROM days CROSS JOIN m GROUP BY 1, 2, 3;
DELETE FROM ref_member WHERE new_members = 0 AND active = 0 AND lapsed = 0;
SELECT count(*) AS member_mismatches FROM (
    (SELECT * FROM ref_member EXCEPT SELECT dt, store_id, channel, new_members, active_members, lapsed_members FROM retail_mid.dws_member_1d WHERE brand = 'dom_test')
    UNION ALL
    (SELECT dt, store_id, channel, new_members, active_members, lapsed_members FROM retail_mid.dws_member_1d WHERE brand = 'dom_test' EXCEPT SELECT * FROM ref_member)) x;
SELECT sum(new_members) AS new_members, max(active_members) AS max_active FROM retail_mid.dws_member_1d WHERE brand = 'dom_test';
SELECT sum(active_members) AS active_apr_29, sum(lapsed_members) AS lapsed_apr_29 FROM retail_mid.dws_member_1d WHERE brand = 'dom_test' AND dt = '2024-04-29';

-- idempotent: refreshing again gives the same rows
CREATE FUNCTION pg_temp.dom_fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
        SELECT 'e' || md5(string_agg(x::text, ',' ORDER BY x::text)) t FROM retail_mid.dwd_behavior_event_di x WHERE brand = 'dom_test'
        UNION ALL SELECT 't' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dwd_marketing_touch_di x WHERE brand = 'dom_test'
        UNION ALL SELECT 'b' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_behavior_customer_1d x WHERE brand = 'dom_test'
        UNION ALL SELECT 'c' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_marketing_campaign_1d x WHERE brand = 'dom_test'
        UNION ALL SELECT 'i' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_inventory_site_sku_1d x WHERE brand = 'dom_test'
        UNION ALL SELECT 'm' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_member_1d x WHERE brand = 'dom_test'
        UNION ALL SELECT 's' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dwd_inventory_inbound_di x WHERE brand = 'dom_test') f $$;
SELECT pg_temp.dom_fingerprint() AS before \gset
SET client_min_messages = warning;
SELECT retail_mid.refresh('2024-01-01', '2024-04-29') > 0 AS refreshed_again;
RESET client_min_messages;
SELECT pg_temp.dom_fingerprint() = :'before' AS idempotent;

-- late data: a share and a redemption arrive for 2024-02-01 after it was refreshed; refreshing that day takes them
INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel)
VALUES ('dom_test', 'member_id', 'M00000002', '2024-02-01 11:00', 'share', 'sku_id', 'P000002', 'app');
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
VALUES ('dom_test', 'C1', 'member_id', 'M00000002', 'sms', '2024-02-01 11:00', 'redeemed');
SELECT sum(shares) AS shares_feb_1_before FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test' AND dt = '2024-02-01';
SET client_min_messages = warning;
SELECT retail_mid.refresh('2024-02-01', '2024-02-01') > 0 AS late_refreshed;
RESET client_min_messages;
SELECT sum(shares) AS shares_feb_1_after FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test' AND dt = '2024-02-01';
SELECT redeemed, redemptions FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'dom_test' AND dt = '2024-02-01' AND campaign_id = 'C1';
-- the other days were left as they were
SELECT count(*) AS behaviour_rows_other_days_changed FROM (
    SELECT dt, customer_key, channel, category_l1, views, carts, favorites, shares, events FROM retail_mid.dws_behavior_customer_1d WHERE brand = 'dom_test' AND dt <> '2024-02-01'
    EXCEPT SELECT dt, customer_key, channel, cat, views, carts, favorites, shares, events FROM (
        SELECT e.dt, e.customer_key, e.channel, CASE WHEN e.object_attribute = 'sku_id' THEN coalesce(p.category_l1, '(unknown)') ELSE '(none)' END AS cat,
               sum(CASE WHEN e.event_type = 'view' THEN e.event_count ELSE 0 END) AS views, sum(CASE WHEN e.event_type = 'cart' THEN e.event_count ELSE 0 END) AS carts,
               sum(CASE WHEN e.event_type = 'favorite' THEN e.event_count ELSE 0 END) AS favorites, sum(CASE WHEN e.event_type = 'share' THEN e.event_count ELSE 0 END) AS shares,
               sum(e.event_count) AS events
          FROM ref_event e LEFT JOIN retail_mid.ods_product p ON p.brand = 'dom_test' AND p.sku_id = e.object_value GROUP BY 1, 2, 3, 4) r) x;

-- one mapping: the keyed view (AIPL) and the DWD give the same key to an untrimmed identifier
SELECT count(*) AS keyed_view_rows_feb_1_customer_1 FROM retail_mid.behavior_event_keyed b JOIN retail_mid.customer_key k USING (customer_key)
 WHERE b.brand = 'dom_test' AND k.id_value = 'M00000001' AND b.event_time = '2024-02-01 10:00';
SELECT retail_mid.identifier_value('  M1 ') AS trimmed, retail_mid.identifier_value('   ') IS NULL AS blank_is_null;

-- security: brand isolation and grants like the trade DWD/DWS (BI reads the touch DWD: the campaign tile, a
-- security_invoker view, reads it)
SELECT c.relname, c.relrowsecurity, has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst,
       has_table_privilege('retail_mid_bi', c.oid, 'SELECT') AS bi, obj_description(c.oid, 'pg_class') IS NOT NULL AS commented
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace
   AND c.relname IN ('dwd_behavior_event_di', 'dwd_marketing_touch_di', 'dws_behavior_customer_1d', 'dws_marketing_campaign_1d',
                     'dws_inventory_site_sku_1d', 'dws_member_1d', 'dwd_trade_order_line_di', 'dws_trade_store_1d')
 ORDER BY 1;

-- bad input
\set VERBOSITY sqlstate
SELECT retail_mid.refresh_domains(NULL, '2024-01-01');
SELECT retail_mid.refresh_domains('2024-02-01', '2024-01-01');
SELECT retail_mid.refresh_domains('-infinity', '2024-01-01');
\set VERBOSITY default

-- Complete Journey: the campaign funnel against plain SQL over its campaigns and coupon redemptions
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_dom');
SELECT retail_mid.refresh('2017-01-01', '2017-12-31') > 0 AS refreshed;
RESET client_min_messages;
CREATE TEMP TABLE ref_cj AS
SELECT touched_at::date AS dt, btrim(campaign_id) AS campaign_id, coalesce(channel, '(none)') AS channel,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'sent') AS sent,
       count(DISTINCT btrim(id_value)) FILTER (WHERE touch_type = 'redeemed') AS redeemed,
       count(*) FILTER (WHERE touch_type = 'redeemed') AS redemptions
  FROM (SELECT DISTINCT * FROM retail_mid.ods_campaign_touch WHERE brand = 'cj_dom' AND touched_at >= '2017-01-01' AND touched_at < '2018-01-01') t
 GROUP BY 1, 2, 3;
SELECT (SELECT count(*) FROM ref_cj) AS cj_campaign_days,
       (SELECT count(*) FROM (SELECT * FROM ref_cj EXCEPT SELECT dt, campaign_id, channel, sent, redeemed, redemptions
                                FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'cj_dom') x) AS missing,
       (SELECT count(*) FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'cj_dom') - (SELECT count(*) FROM ref_cj) AS extra,
       (SELECT sum(sent) FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'cj_dom') AS sent,
       (SELECT sum(redemptions) FROM retail_mid.dws_marketing_campaign_1d WHERE brand = 'cj_dom') AS redemptions;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
