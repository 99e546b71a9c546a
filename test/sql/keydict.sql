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
