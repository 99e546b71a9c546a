-- keydict: dense, stable customer keys
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SELECT retail_mid.assign_customer_keys(ARRAY['member_id','member_id','phone','member_id'], ARRAY['A1',' A1 ','138',NULL]);
SELECT retail_mid.assign_customer_keys(ARRAY['member_id','email'], ARRAY['A1','x@y.z']);
SELECT customer_key, id_type, id_value FROM retail_mid.customer_key ORDER BY customer_key;
SELECT retail_mid.customer_key_of('member_id', 'A1') = retail_mid.customer_key_of('member_id', ' A1');
SELECT retail_mid.customer_key_of('email', 'new@y.z') AS new_key;
-- bad input
SELECT retail_mid.assign_customer_keys(ARRAY['member_id'], ARRAY['a','b']);
SELECT retail_mid.assign_customer_keys(ARRAY['pager'], ARRAY['a']);
SELECT retail_mid.customer_key_of(NULL, 'x') IS NULL AS null_in_null_out;
-- issue 19: identifiers a brand issues itself are namespaced by the brand; phone, email and device_id are shared
SELECT retail_mid.customer_key_issuer('customer_id', 'kd_a') AS customer_id, retail_mid.customer_key_issuer('member_id', 'kd_a') AS member_id,
       retail_mid.customer_key_issuer('household_id', 'kd_a') AS household_id, retail_mid.customer_key_issuer('open_id', 'kd_a') AS open_id,
       retail_mid.customer_key_issuer('phone', 'kd_a') AS phone, retail_mid.customer_key_issuer('email', 'kd_a') AS email,
       retail_mid.customer_key_issuer('device_id', 'kd_a') AS device_id, retail_mid.customer_key_issuer('member_id', NULL) AS no_brand;
SELECT retail_mid.assign_customer_keys(ARRAY['customer_id', 'customer_id', 'phone', 'phone', 'email', 'member_id'],
                                       ARRAY['12346', '12346', '13700000001', '13700000001', 'kd@x.y', ' A1 '],
                                       ARRAY['kd_a', 'kd_b', 'kd_a', 'kd_b', 'kd_b', 'kd_a']) AS new_keys;
SELECT id_type, issuer, id_value FROM retail_mid.customer_key
 WHERE id_value IN ('12346', '13700000001', 'kd@x.y', 'A1') ORDER BY 1, 2, 3;
SELECT retail_mid.customer_key_of('customer_id', '12346', 'kd_a') <> retail_mid.customer_key_of('customer_id', '12346', 'kd_b') AS brand_ids_differ,
       retail_mid.customer_key_of('phone', '13700000001', 'kd_a') = retail_mid.customer_key_of('phone', '13700000001', 'kd_b') AS phone_shared,
       retail_mid.customer_key_of('email', 'kd@x.y', 'kd_a') = retail_mid.customer_key_of('email', 'kd@x.y', NULL::text) IS NULL AS strict_null_brand,
       retail_mid.customer_key_of('email', 'kd@x.y', 'kd_a') = retail_mid.customer_key_of('email', 'kd@x.y') AS email_shared;
-- the 1.0.0 forms: no brand means no issuer; a brand-issued value of exactly one brand is still found, of several is ambiguous
SELECT retail_mid.customer_key_of('member_id', 'A1') = (SELECT customer_key FROM retail_mid.customer_key
                                                         WHERE id_type = 'member_id' AND issuer = '' AND id_value = 'A1') AS no_issuer_key_first;
SELECT retail_mid.customer_key_of('customer_id', '12346');
SELECT retail_mid.assign_customer_keys(ARRAY['customer_id'], ARRAY['12347'], ARRAY['kd_a']) AS one_brand;
SELECT retail_mid.customer_key_of('customer_id', '12347') = retail_mid.customer_key_of('customer_id', '12347', 'kd_a') AS only_issuer_found;
SELECT retail_mid.assign_customer_keys(ARRAY['customer_id'], ARRAY['12346']) AS no_issuer_key_created;
SELECT retail_mid.customer_key_of('customer_id', '12346') = (SELECT customer_key FROM retail_mid.customer_key
                                                              WHERE id_type = 'customer_id' AND issuer = '' AND id_value = '12346') AS no_issuer_key_wins;
SELECT retail_mid.assign_customer_keys(ARRAY['phone'], ARRAY['1'], ARRAY['kd_a', 'kd_b']);
\set VERBOSITY terse
INSERT INTO retail_mid.customer_key (id_type, issuer, id_value) VALUES ('phone', 'kd_a', '139');
\set VERBOSITY default
-- per-brand customers through the pipeline: two brands with the same customer ids and one shared phone
INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type) SELECT b, 'C' || g, 'customer_id' FROM unnest(ARRAY['kd_a', 'kd_b']) b, generate_series(1, 5) g;
INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value)
SELECT brand, customer_id, 'customer_id', customer_id FROM retail_mid.ods_customer WHERE brand IN ('kd_a', 'kd_b')
UNION ALL VALUES ('kd_a', 'C1', 'phone', '13900000009'), ('kd_b', 'C4', 'phone', '13900000009');
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time)
SELECT b, b || '-' || g, 'customer_id', 'C' || (1 + g % CASE b WHEN 'kd_a' THEN 5 ELSE 3 END), timestamp '2023-03-01' + g * interval '7 hours'
  FROM unnest(ARRAY['kd_a', 'kd_b']) b, generate_series(1, 12) g;
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price)
SELECT brand, order_id, 1, 'S1', 1, 10 FROM retail_mid.ods_order WHERE brand IN ('kd_a', 'kd_b');
SELECT identifiers > 0 AS resolved FROM retail_mid.resolve_identities();
SET client_min_messages = warning;
SELECT retail_mid.refresh('2023-03-01', '2023-03-05') > 0 AS refreshed;
RESET client_min_messages;
SELECT t.brand, t.customers, o.customers AS ods_customers, s.customers AS store_bitmap_customers, cb.customers AS customer_brand
  FROM (SELECT brand, count(DISTINCT customer_key) AS customers FROM retail_mid.dws_trade_customer_td GROUP BY brand) t
  JOIN (SELECT brand, count(DISTINCT customer_id) AS customers FROM retail_mid.ods_order GROUP BY brand) o USING (brand)
  JOIN (SELECT brand, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)) AS customers FROM retail_mid.dws_trade_store_td GROUP BY brand) s USING (brand)
  JOIN (SELECT cb.brand, count(*) AS customers FROM retail_mid.customer_brand cb JOIN retail_mid.customer_key k USING (customer_key)
         WHERE k.id_type = 'customer_id' GROUP BY cb.brand) cb USING (brand)
 WHERE t.brand IN ('kd_a', 'kd_b') ORDER BY 1;
-- no key is shared by the two brands' customer ids; the phone is one key in both brands
SELECT count(*) AS shared_customer_id_keys FROM retail_mid.dws_trade_customer_td a JOIN retail_mid.dws_trade_customer_td b USING (customer_key)
 WHERE a.brand = 'kd_a' AND b.brand = 'kd_b';
SELECT count(DISTINCT brand) AS brands_of_phone FROM retail_mid.customer_brand cb JOIN retail_mid.customer_key k USING (customer_key)
 WHERE k.id_type = 'phone' AND k.id_value = '13900000009';
SELECT count(DISTINCT m.person_key) AS persons_of_c1_c4 FROM retail_mid.oneid_person_map m
 WHERE m.customer_key IN (retail_mid.customer_key_of('customer_id', 'C1', 'kd_a'), retail_mid.customer_key_of('customer_id', 'C4', 'kd_b'));
SELECT count(DISTINCT m.person_key) AS persons_of_c1_c1 FROM retail_mid.oneid_person_map m
 WHERE m.customer_key IN (retail_mid.customer_key_of('customer_id', 'C1', 'kd_a'), retail_mid.customer_key_of('customer_id', 'C1', 'kd_b'));
