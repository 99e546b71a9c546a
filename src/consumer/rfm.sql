-- consumer/rfm.sql: recency, frequency, monetary value per customer, scored and segmented per brand.
--
-- Parallel-safe C aggregates, tie-safe scoring configurable per brand, segment maps as data, snapshots and
-- dashboard views.

CREATE TYPE retail_mid.rfm_row AS (recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date);
COMMENT ON TYPE retail_mid.rfm_row IS 'RFM raw values of one customer at an as-of date: days since the last sale, distinct orders and net amount within the window, first and last sale dates on or before as_of.';

CREATE FUNCTION retail_mid.rfm_lines_trans_text(internal, date, text, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_text(internal, date, text, float8, date, int4) IS 'Transition function of rfm_agg over order lines with text order ids.';
CREATE FUNCTION retail_mid.rfm_lines_trans_int8(internal, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_int8(internal, date, int8, float8, date, int4) IS 'Transition function of rfm_agg over order lines with bigint order ids.';
CREATE FUNCTION retail_mid.rfm_daily_trans(internal, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_daily_trans(internal, date, int8, float8, date, int4) IS 'Transition function of rfm_agg_daily.';
CREATE FUNCTION retail_mid.rfm_lines_trans_text_num(internal, date, text, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_text_num(internal, date, text, numeric, date, int4) IS 'Transition function of rfm_agg over order lines with text order ids and numeric amounts.';
CREATE FUNCTION retail_mid.rfm_lines_trans_int8_num(internal, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_int8_num(internal, date, int8, numeric, date, int4) IS 'Transition function of rfm_agg over order lines with bigint order ids and numeric amounts.';
CREATE FUNCTION retail_mid.rfm_daily_trans_num(internal, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_daily_trans_num(internal, date, int8, numeric, date, int4) IS 'Transition function of rfm_agg_daily with numeric amounts.';
CREATE FUNCTION retail_mid.rfm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_combine(internal, internal) IS 'Combine function of the RFM aggregates.';
CREATE FUNCTION retail_mid.rfm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_serial(internal) IS 'Serialisation function of the RFM aggregates.';
CREATE FUNCTION retail_mid.rfm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_deserial(bytea, internal) IS 'Deserialisation function of the RFM aggregates; rejects malformed states.';
CREATE FUNCTION retail_mid.rfm_final(internal) RETURNS retail_mid.rfm_row
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_final(internal) IS 'Final function of the RFM aggregates.';

CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id text, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_text, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, text, float8, date, int4) IS 'RFM of one customer''s order lines (GROUP BY customer): lines after as_of are ignored; recency = as_of minus the last sale date; frequency = distinct order ids with a sale line dated in (as_of - window_days, as_of]; monetary = sum of all line amounts in that window (returns, i.e. negative amounts, subtract and add no order; summed exactly at 1/10000); NULL for a customer without a sale on or before as_of. Lines with a NULL date or order id are skipped; a NULL amount is an error.';
CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_int8, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, int8, float8, date, int4) IS 'rfm_agg for bigint order ids; same rules as the text form.';
CREATE AGGREGATE retail_mid.rfm_agg_daily(dt date, orders int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_daily_trans, STYPE = internal, SSPACE = 64, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg_daily(date, int8, float8, date, int4) IS 'RFM of one customer''s daily rows (dws_trade_customer_1d: dt, orders, net_amount): the same answer as rfm_agg over the order lines when every order lies on one day. Days with orders > 0 are sale days; rows after as_of are ignored.';

CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id text, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_text_num, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, text, numeric, date, int4) IS 'rfm_agg for numeric amounts (read without a float8 conversion, rounded half away from zero to 1/10000); same rules as the float8 form.';
CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_int8_num, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, int8, numeric, date, int4) IS 'rfm_agg for bigint order ids and numeric amounts.';
CREATE AGGREGATE retail_mid.rfm_agg_daily(dt date, orders int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_daily_trans_num, STYPE = internal, SSPACE = 64, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg_daily(date, int8, numeric, date, int4) IS 'rfm_agg_daily for numeric amounts.';

-- Quantile breakpoints and scores.
CREATE FUNCTION retail_mid.rfm_breaks_trans(internal, float8, int4, bool) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_trans(internal, float8, int4, bool) IS 'Transition function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_combine(internal, internal) IS 'Combine function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_serial(internal) IS 'Serialisation function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_deserial(bytea, internal) IS 'Deserialisation function of rfm_breaks; rejects malformed states.';
CREATE FUNCTION retail_mid.rfm_breaks_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_final(internal) IS 'Final function of rfm_breaks.';
CREATE AGGREGATE retail_mid.rfm_breaks(value float8, k int4, descending bool) (
    SFUNC = retail_mid.rfm_breaks_trans, STYPE = internal, COMBINEFUNC = retail_mid.rfm_breaks_combine,
    SERIALFUNC = retail_mid.rfm_breaks_serial, DESERIALFUNC = retail_mid.rfm_breaks_deserial,
    FINALFUNC = retail_mid.rfm_breaks_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_breaks(float8, int4, bool) IS 'The k - 1 breakpoints of tie-safe quantile scoring: with n values, c_s = ceil((s - 1) n / k), break s is the c_s-th smallest value (the c_s-th largest when descending). rfm_quantile_score then gives 1 + floor(k * #{x < v} / n) (descending: #{x > v}): equal values share a score, the worst value scores 1. NULL values are skipped.';
CREATE FUNCTION retail_mid.rfm_quantile_score(value float8, breaks float8[], descending bool) RETURNS int4
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_quantile_score(float8, float8[], bool) IS 'Score of a value against rfm_breaks: 1 + the number of breaks it exceeds (descending: it is below).';

-- Whole-population collection and scoring: what rfm_scores runs (one aggregate over all rows, scores in C).
CREATE FUNCTION retail_mid.rfm_collect_text(internal, int4, date, text, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_text_num(internal, int4, date, text, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_int8(internal, int4, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_int8_num(internal, int4, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_daily(internal, int4, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_daily_num(internal, int4, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_td(internal, int4, date, date, int8, numeric, date) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_collect_text(internal, int4, date, text, float8, date, int4) IS 'Transition function of rfm_collect (text order ids, float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_text_num(internal, int4, date, text, numeric, date, int4) IS 'Transition function of rfm_collect (text order ids, numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_int8(internal, int4, date, int8, float8, date, int4) IS 'Transition function of rfm_collect (bigint order ids, float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_int8_num(internal, int4, date, int8, numeric, date, int4) IS 'Transition function of rfm_collect (bigint order ids, numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_daily(internal, int4, date, int8, float8, date, int4) IS 'Transition function of rfm_collect_daily (float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_daily_num(internal, int4, date, int8, numeric, date, int4) IS 'Transition function of rfm_collect_daily (numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_td(internal, int4, date, date, int8, numeric, date) IS 'Transition function of rfm_collect_td.';
COMMENT ON FUNCTION retail_mid.rfm_collect_combine(internal, internal) IS 'Combine function of the rfm_collect aggregates (order pairs merged, so an order split between workers counts once).';
COMMENT ON FUNCTION retail_mid.rfm_collect_serial(internal) IS 'Serialisation function of the rfm_collect aggregates.';
COMMENT ON FUNCTION retail_mid.rfm_collect_deserial(bytea, internal) IS 'Deserialisation function of the rfm_collect aggregates; rejects malformed states.';
COMMENT ON FUNCTION retail_mid.rfm_collect_final(internal) IS 'Final function of the rfm_collect aggregates: the summary bytea.';
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id text, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_text, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id text, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_text_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_int8, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_int8_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_daily(customer_key int4, dt date, orders int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_daily, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_daily(customer_key int4, dt date, orders int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_daily_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_td(customer_key int4, first_order_date date, last_order_date date, orders int8, amount numeric, as_of date) (
    SFUNC = retail_mid.rfm_collect_td, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, text, float8, date, int4) IS 'RFM summary of a whole population of order lines (no GROUP BY): per customer the values rfm_agg gives, as one opaque bytea for rfm_score_summary. Same rules as rfm_agg; rows with a NULL customer_key are skipped.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, text, numeric, date, int4) IS 'rfm_collect for numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, int8, float8, date, int4) IS 'rfm_collect for bigint order ids.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, int8, numeric, date, int4) IS 'rfm_collect for bigint order ids and numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_daily(int4, date, int8, float8, date, int4) IS 'RFM summary of a whole population of daily customer rows (dws_trade_customer_1d), rules of rfm_agg_daily.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_daily(int4, date, int8, numeric, date, int4) IS 'rfm_collect_daily for numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_td(int4, date, date, int8, numeric, date) IS 'RFM summary from to-date customer rows (dws_trade_customer_td): the window is the whole history; an error when a row''s last order lies after as_of.';

CREATE FUNCTION retail_mid.rfm_score_summary(summary bytea, k int4, method text, r_thresholds float8[], f_thresholds float8[],
                                             m_thresholds float8[], segments text[])
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 100000;
COMMENT ON FUNCTION retail_mid.rfm_score_summary(bytea, int4, text, float8[], float8[], float8[], text[]) IS 'Scores every customer of an rfm_collect summary by method (quantile, threshold, average: the rules of rfm_config) on 1..k and looks up the segment in segments, a k^3 array indexed (r - 1) k^2 + (f - 1) k + m (NULL: no segment). Rows come in customer_key order; a NULL summary gives no rows.';

-- Configuration and segment maps, as data.
CREATE TABLE retail_mid.rfm_segment_map_def (
    map_name    text PRIMARY KEY,
    k           int4 NOT NULL CHECK (k BETWEEN 2 AND 100),
    description text NOT NULL DEFAULT ''
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_segment_map_def', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_segment_map_def FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.rfm_segment_map_def IS 'The RFM segment maps: name and the score scale 1..k their rules are written in.';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.k IS 'Scores run 1..k; the scoring configuration used with the map must have the same k.';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.map_name IS 'Name of the segment map (e.g. ten_segment, eight_class).';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.description IS 'What the map is for.';

CREATE TABLE retail_mid.rfm_segment_map (
    map_name  text NOT NULL REFERENCES retail_mid.rfm_segment_map_def ON DELETE CASCADE,
    segment   text NOT NULL,
    r_min int4 NOT NULL, r_max int4 NOT NULL, f_min int4 NOT NULL, f_max int4 NOT NULL, m_min int4 NOT NULL, m_max int4 NOT NULL,
    priority  int4 NOT NULL DEFAULT 100,
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (map_name, segment, r_min, f_min, m_min),
    CHECK (r_min <= r_max AND f_min <= f_max AND m_min <= m_max AND r_min >= 1 AND f_min >= 1 AND m_min >= 1)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_segment_map', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_segment_map FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.rfm_segment_map IS 'Segment rules: a customer whose (R, F, M) scores fall in the boxes gets the segment; where boxes overlap the lowest priority wins; a customer no rule covers gets a NULL segment.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.segment IS 'Segment name shown on dashboards.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.priority IS 'Lower wins when several rules match.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.map_name IS 'rfm_segment_map_def.map_name the rule belongs to.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.r_min IS 'Lowest R score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.r_max IS 'Highest R score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.f_min IS 'Lowest F score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.f_max IS 'Highest F score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.m_min IS 'Lowest M score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.m_max IS 'Highest M score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.description IS 'What the segment means for marketing.';

INSERT INTO retail_mid.rfm_segment_map_def VALUES
  ('eight_class', 2, 'The seed platform''s eight classes: R, F and M each high (2) or low (1) against the population average or a threshold.'),
  ('ten_segment', 5, 'The common ten segments on R and F scores 1..5 (M is not used).');
INSERT INTO retail_mid.rfm_segment_map (map_name, segment, r_min, r_max, f_min, f_max, m_min, m_max, priority, description) VALUES
  ('eight_class', '重要价值客户', 2, 2, 2, 2, 2, 2, 1, 'important value: recent, frequent, high spend'),
  ('eight_class', '重要发展客户', 2, 2, 1, 1, 2, 2, 2, 'important to develop: recent, infrequent, high spend'),
  ('eight_class', '重要保持客户', 1, 1, 2, 2, 2, 2, 3, 'important to keep: not recent, frequent, high spend'),
  ('eight_class', '重要挽留客户', 1, 1, 1, 1, 2, 2, 4, 'important to win back: not recent, infrequent, high spend'),
  ('eight_class', '一般价值客户', 2, 2, 2, 2, 1, 1, 5, 'ordinary value: recent, frequent, low spend'),
  ('eight_class', '一般发展客户', 2, 2, 1, 1, 1, 1, 6, 'ordinary to develop: recent, infrequent, low spend'),
  ('eight_class', '一般保持客户', 1, 1, 2, 2, 1, 1, 7, 'ordinary to keep: not recent, frequent, low spend'),
  ('eight_class', '一般挽留客户', 1, 1, 1, 1, 1, 1, 8, 'ordinary to win back: not recent, infrequent, low spend'),
  ('ten_segment', 'Champions',          5, 5, 4, 5, 1, 5, 1, 'R 5, F 4-5'),
  ('ten_segment', 'Loyal Customers',    3, 4, 4, 5, 1, 5, 2, 'R 3-4, F 4-5'),
  ('ten_segment', 'Potential Loyalist', 4, 5, 2, 3, 1, 5, 3, 'R 4-5, F 2-3'),
  ('ten_segment', 'New Customers',      5, 5, 1, 1, 1, 5, 4, 'R 5, F 1'),
  ('ten_segment', 'Promising',          4, 4, 1, 1, 1, 5, 5, 'R 4, F 1'),
  ('ten_segment', 'Need Attention',     3, 3, 3, 3, 1, 5, 6, 'R 3, F 3'),
  ('ten_segment', 'About To Sleep',     3, 3, 1, 2, 1, 5, 7, 'R 3, F 1-2'),
  ('ten_segment', 'At Risk',            1, 2, 3, 4, 1, 5, 8, 'R 1-2, F 3-4'),
  ('ten_segment', 'Can''t Lose Them',   1, 2, 5, 5, 1, 5, 9, 'R 1-2, F 5'),
  ('ten_segment', 'Hibernating',        1, 2, 1, 2, 1, 5, 10, 'R 1-2, F 1-2 (hibernating or lost)');

CREATE TABLE retail_mid.rfm_config (
    brand        text NOT NULL,
    map_name     text NOT NULL REFERENCES retail_mid.rfm_segment_map_def ON DELETE CASCADE,
    k            int4 NOT NULL CHECK (k BETWEEN 2 AND 100),
    method       text NOT NULL CHECK (method IN ('quantile', 'threshold', 'average')),
    r_thresholds float8[], f_thresholds float8[], m_thresholds float8[],
    PRIMARY KEY (brand, map_name),
    CONSTRAINT rfm_config_average_k CHECK (method <> 'average' OR k = 2),
    CONSTRAINT rfm_config_thresholds CHECK (method <> 'threshold' OR (cardinality(r_thresholds) = k - 1 AND cardinality(f_thresholds) = k - 1
                                     AND cardinality(m_thresholds) = k - 1))
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_config', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_config FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.rfm_config IS 'How RFM scores are computed per brand and segment map; brand ''*'' is the default for brands without a row of their own.';
COMMENT ON COLUMN retail_mid.rfm_config.method IS 'quantile: tie-safe quantiles (see rfm_breaks); threshold: fixed ascending cut points; average: 2 = better than the population mean, 1 otherwise (k = 2).';
COMMENT ON COLUMN retail_mid.rfm_config.r_thresholds IS 'threshold method, k - 1 ascending day counts: R score = k - #{t : recency_days > t} (at most t1 days scores k).';
COMMENT ON COLUMN retail_mid.rfm_config.f_thresholds IS 'threshold method, k - 1 ascending order counts: F score = 1 + #{t : frequency >= t}.';
COMMENT ON COLUMN retail_mid.rfm_config.m_thresholds IS 'threshold method, k - 1 ascending amounts: M score = 1 + #{t : monetary >= t}.';
COMMENT ON COLUMN retail_mid.rfm_config.brand IS 'Brand the configuration applies to; ''*'' for every brand without its own row.';
COMMENT ON COLUMN retail_mid.rfm_config.map_name IS 'Segment map scored with this configuration.';
COMMENT ON COLUMN retail_mid.rfm_config.k IS 'Number of score levels 1..k for R, F and M; equals the map''s k.';
INSERT INTO retail_mid.rfm_config (brand, map_name, k, method) VALUES ('*', 'ten_segment', 5, 'quantile'), ('*', 'eight_class', 2, 'average');

-- The scoring rule of a brand and map: its rfm_config row (or brand '*') and the map as a k^3 segment array.
CREATE TYPE retail_mid.rfm_scoring AS (k int4, method text, r_thresholds float8[], f_thresholds float8[], m_thresholds float8[],
                                       segments text[]);
COMMENT ON TYPE retail_mid.rfm_scoring IS 'Arguments of rfm_score_summary for one brand and segment map (see rfm_scoring()).';

CREATE FUNCTION retail_mid.rfm_scoring(brand text, map_name text) RETURNS retail_mid.rfm_scoring
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg record;
    v_k int4;
    segs text[];
BEGIN
    SELECT d.k INTO v_k FROM retail_mid.rfm_segment_map_def d WHERE d.map_name = rfm_scoring.map_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown rfm segment map "%"', map_name USING ERRCODE = 'undefined_object',
            HINT = 'The maps are listed in retail_mid.rfm_segment_map_def.';
    END IF;
    SELECT c.* INTO cfg FROM retail_mid.rfm_config c
     WHERE c.map_name = rfm_scoring.map_name AND c.brand IN (rfm_scoring.brand, '*')
     ORDER BY c.brand = '*' LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no rfm configuration for brand "%" and map "%"', brand, map_name USING ERRCODE = 'undefined_object',
            HINT = 'Add a row to retail_mid.rfm_config (brand ''*'' applies to every brand).';
    END IF;
    IF cfg.k <> v_k THEN
        RAISE EXCEPTION 'rfm configuration scores 1..% but map "%" is written for 1..%', cfg.k, map_name, v_k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- every (r, f, m) cell gets the matching rule of lowest priority (then segment name), NULL when none matches
    SELECT array_agg(cell.segment ORDER BY rs, fs, ms) INTO segs
      FROM generate_series(1, cfg.k) rs, generate_series(1, cfg.k) fs, generate_series(1, cfg.k) ms
      LEFT JOIN LATERAL (SELECT m.segment FROM retail_mid.rfm_segment_map m
                          WHERE m.map_name = rfm_scoring.map_name AND rs BETWEEN m.r_min AND m.r_max
                            AND fs BETWEEN m.f_min AND m.f_max AND ms BETWEEN m.m_min AND m.m_max
                          ORDER BY m.priority, m.segment LIMIT 1) cell ON true;
    RETURN ROW(cfg.k, cfg.method, cfg.r_thresholds, cfg.f_thresholds, cfg.m_thresholds, segs)::retail_mid.rfm_scoring;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scoring(text, text) IS 'The scoring rule (rfm_config row of the brand, else brand ''*'') and the segment map of map_name as arguments for rfm_score_summary; errors for an unknown map, a missing configuration or a k that differs from the map''s.';

-- Scores of every customer of a brand, from any table shaped like dws_trade_customer_1d
-- (brand, dt, customer_key, orders, net_amount) or like the order lines.
CREATE FUNCTION retail_mid.rfm_scores_from(source regclass, brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment',
                                           grain text DEFAULT 'daily')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sc retail_mid.rfm_scoring;
    collect text;
BEGIN
    IF source IS NULL OR brand IS NULL OR as_of IS NULL OR window_days IS NULL OR map_name IS NULL THEN
        RAISE EXCEPTION 'rfm_scores arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF window_days <= 0 THEN
        RAISE EXCEPTION 'window_days must be positive' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got %s.', window_days);
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    collect := CASE grain
      WHEN 'daily' THEN 'retail_mid.rfm_collect_daily(s.customer_key, s.dt, s.orders::int8, s.net_amount, $1, $2)'
      WHEN 'lines' THEN 'retail_mid.rfm_collect(s.customer_key, s.dt, s.order_id, s.amount, $1, $2)'
    END;
    IF collect IS NULL THEN
        RAISE EXCEPTION 'grain must be daily or lines' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    sc := retail_mid.rfm_scoring(brand, map_name);
    RETURN QUERY EXECUTE format(
        'SELECT * FROM retail_mid.rfm_score_summary((SELECT %s FROM %s s WHERE s.brand = $3 AND s.dt <= $1),
                                                   $4, $5, $6, $7, $8, $9)', collect, source)
      USING as_of, window_days, brand, sc.k, sc.method, sc.r_thresholds, sc.f_thresholds, sc.m_thresholds, sc.segments;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scores_from(regclass, text, date, int4, text, text) IS 'RFM raw values, scores and segment of every customer of a brand with a sale on or before as_of, scored by the brand''s rfm_config row for the map (or brand ''*''). grain daily: a table shaped like dws_trade_customer_1d (brand, dt, customer_key, orders, net_amount); grain lines: shaped like dwd_trade_order_line_di (brand, dt, customer_key, order_id, amount). One pass over the source (rfm_collect), scores in C (rfm_score_summary); rows in customer_key order.';

CREATE FUNCTION retail_mid.rfm_scores(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid.dws_trade_customer_1d');
BEGIN
    IF src IS NULL THEN
        RAISE EXCEPTION 'retail_mid.dws_trade_customer_1d does not exist' USING ERRCODE = 'undefined_table',
            HINT = 'Build the DWS layer with retail_mid.refresh first.';
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.rfm_scores_from(src, brand, as_of, window_days, map_name, 'daily');
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scores(text, date, int4, text) IS 'RFM raw values, scores and segment of every customer of a brand at as_of over the last window_days days, from retail_mid.dws_trade_customer_1d.';

-- The checks of rfm_scores_td, apart so that rfm_scores_td itself can be a SQL function the planner inlines:
-- its rows then stream from the C scorer into the caller's plan instead of through a PL/pgSQL result store.
CREATE FUNCTION retail_mid.rfm_td_as_of(brand text, as_of date, map_name text) RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_refreshed date;
BEGIN
    IF brand IS NULL OR map_name IS NULL THEN
        RAISE EXCEPTION 'rfm_scores_td arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.as_of INTO v_refreshed FROM retail_mid.dws_refresh_state r WHERE r.brand = rfm_td_as_of.brand;
    IF NOT FOUND THEN
        RETURN NULL;  -- nothing refreshed for the brand yet: no customers
    END IF;
    IF NOT isfinite(coalesce(as_of, v_refreshed)) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF as_of < v_refreshed THEN
        RAISE EXCEPTION 'as_of % is before the brand''s last refreshed day %', as_of, v_refreshed
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Totals to date cannot be wound back; use rfm_scores with a window for an earlier date.';
    END IF;
    RETURN coalesce(as_of, v_refreshed);
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_td_as_of(text, date, text) IS 'Internal to rfm_scores_td: checks its arguments and returns the as_of date to score at (the brand''s dws_refresh_state date when as_of is NULL), or NULL when the brand has not been refreshed.';

CREATE FUNCTION retail_mid.rfm_scores_td(brand text, as_of date DEFAULT NULL, map_name text DEFAULT 'ten_segment')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT s.*
      FROM (SELECT retail_mid.rfm_td_as_of(rfm_scores_td.brand, rfm_scores_td.as_of, rfm_scores_td.map_name) AS d
            OFFSET 0) a  -- not pulled up: the check runs once, not once per row of the aggregate
     CROSS JOIN LATERAL (SELECT (retail_mid.rfm_scoring(rfm_scores_td.brand, rfm_scores_td.map_name)).*) sc
     CROSS JOIN LATERAL retail_mid.rfm_score_summary(
           (SELECT retail_mid.rfm_collect_td(t.customer_key, t.first_sale_date, t.last_sale_date, t.orders, t.net_amount, a.d)
              FROM retail_mid.dws_trade_customer_td t WHERE t.brand = rfm_scores_td.brand),
           sc.k, sc.method, sc.r_thresholds, sc.f_thresholds, sc.m_thresholds, sc.segments) s
     WHERE a.d IS NOT NULL;
END;
COMMENT ON FUNCTION retail_mid.rfm_scores_td(text, date, text) IS 'RFM over the whole history from retail_mid.dws_trade_customer_td (one row per customer, so no pass over daily rows): recency to as_of (default: the brand''s dws_refresh_state date), frequency = orders to date, monetary = net amount to date. An as_of before the last refresh is an error (totals to date cannot be wound back); for a window use rfm_scores.';

-- Snapshots for dashboards.
CREATE TABLE retail_mid.rfm_snapshot (
    brand text NOT NULL, map_name text NOT NULL, window_days int4 NOT NULL, as_of date NOT NULL, customer_key int4 NOT NULL,
    recency_days int4 NOT NULL, frequency int4 NOT NULL, monetary float8 NOT NULL,
    r_score int4 NOT NULL, f_score int4 NOT NULL, m_score int4 NOT NULL, segment text,
    PRIMARY KEY (brand, map_name, window_days, as_of, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_snapshot', '');
COMMENT ON TABLE retail_mid.rfm_snapshot IS 'RFM scores and segments as of given dates, written by rfm_refresh; read by the dashboard views.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.segment IS 'Segment of the map; NULL when no rule of a user map covers the scores.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.brand IS 'Brand scored.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.map_name IS 'Segment map used.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.window_days IS 'Look-back window in days ending on as_of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.as_of IS 'Date the scores are as of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.customer_key IS 'Customer (customer_key dictionary).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.recency_days IS 'Days from the last order day in the window to as_of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.frequency IS 'Orders in the window.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.monetary IS 'Net amount in the window (currency units).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.r_score IS 'Recency score 1..k (k = most recent).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.f_score IS 'Frequency score 1..k (k = most orders).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.m_score IS 'Monetary score 1..k (k = highest amount).';

CREATE FUNCTION retail_mid.rfm_refresh_from(source regclass, brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; n bigint;
BEGIN
    v_job := retail_mid.job_start('rfm_refresh', jsonb_build_object('source', source::text, 'brand', brand, 'as_of', as_of,
                                                                   'window_days', window_days, 'map_name', map_name));
    DELETE FROM retail_mid.rfm_snapshot s WHERE s.brand = rfm_refresh_from.brand AND s.map_name = rfm_refresh_from.map_name
       AND s.window_days = rfm_refresh_from.window_days AND s.as_of = rfm_refresh_from.as_of;
    INSERT INTO retail_mid.rfm_snapshot
    SELECT brand, map_name, window_days, as_of, x.customer_key, x.recency_days, x.frequency, x.monetary,
           x.r_score, x.f_score, x.m_score, x.segment
      FROM retail_mid.rfm_scores_from(source, brand, as_of, window_days, map_name, 'daily') x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'rfm_refresh: % customers of brand % scored as of %', n, brand, as_of;
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_refresh_from(regclass, text, date, int4, text) IS 'Replaces the rfm_snapshot rows of (brand, map, window, as_of) with fresh scores from a dws_trade_customer_1d-shaped table; logs to job_log; returns the customers written.';

CREATE FUNCTION retail_mid.rfm_refresh(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid.dws_trade_customer_1d');
BEGIN
    IF src IS NULL THEN
        RAISE EXCEPTION 'retail_mid.dws_trade_customer_1d does not exist' USING ERRCODE = 'undefined_table',
            HINT = 'Build the DWS layer with retail_mid.refresh first.';
    END IF;
    RETURN retail_mid.rfm_refresh_from(src, brand, as_of, window_days, map_name);
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_refresh(text, date, int4, text) IS 'rfm_refresh_from over retail_mid.dws_trade_customer_1d.';

CREATE VIEW retail_mid.rfm_segment_summary AS
SELECT s.brand, s.map_name, s.window_days, s.as_of, coalesce(s.segment, '(unmapped)') AS segment,
       count(*)::bigint AS customers,
       sum(s.monetary)::float8 AS monetary,
       (count(*)::float8 / sum(count(*)) OVER w)::float8 AS customer_share,
       coalesce(sum(s.monetary) / nullif(sum(sum(s.monetary)) OVER w, 0), 0)::float8 AS revenue_share
  FROM retail_mid.rfm_snapshot s
 GROUP BY s.brand, s.map_name, s.window_days, s.as_of, coalesce(s.segment, '(unmapped)')
WINDOW w AS (PARTITION BY s.brand, s.map_name, s.window_days, s.as_of);
COMMENT ON VIEW retail_mid.rfm_segment_summary IS 'Customers and revenue per RFM segment of each snapshot, with their shares.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.as_of IS 'Snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.segment IS 'Segment; (unmapped) for customers no rule covers.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.customers IS 'Customers in the segment.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.monetary IS 'Their net amount within the window.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.customer_share IS 'Share of the snapshot''s customers (0..1).';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.revenue_share IS 'Share of the snapshot''s net amount (0 when that total is 0).';

CREATE VIEW retail_mid.rfm_segment_migration AS
WITH snaps AS (SELECT DISTINCT brand, map_name, window_days, as_of FROM retail_mid.rfm_snapshot),
pairs AS (SELECT a.brand, a.map_name, a.window_days, a.as_of AS from_as_of, b.as_of AS to_as_of
            FROM snaps a JOIN snaps b USING (brand, map_name, window_days) WHERE a.as_of < b.as_of)
SELECT p.brand, p.map_name, p.window_days, p.from_as_of, p.to_as_of,
       x.from_segment, x.to_segment, count(*)::bigint AS customers
  FROM pairs p
  CROSS JOIN LATERAL (
      SELECT coalesce(f.segment, CASE WHEN f.customer_key IS NULL THEN '(not a customer)' ELSE '(unmapped)' END) AS from_segment,
             coalesce(t.segment, CASE WHEN t.customer_key IS NULL THEN '(not a customer)' ELSE '(unmapped)' END) AS to_segment
        FROM (SELECT * FROM retail_mid.rfm_snapshot s WHERE s.brand = p.brand AND s.map_name = p.map_name
                 AND s.window_days = p.window_days AND s.as_of = p.from_as_of) f
        FULL JOIN (SELECT * FROM retail_mid.rfm_snapshot s WHERE s.brand = p.brand AND s.map_name = p.map_name
                 AND s.window_days = p.window_days AND s.as_of = p.to_as_of) t ON t.customer_key = f.customer_key) x
 GROUP BY p.brand, p.map_name, p.window_days, p.from_as_of, p.to_as_of, x.from_segment, x.to_segment;
COMMENT ON VIEW retail_mid.rfm_segment_migration IS 'Customers moving from one RFM segment to another between two snapshot dates of the same brand, map and window (every ordered pair of snapshot dates; filter on from_as_of and to_as_of).';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.from_as_of IS 'Earlier snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.to_as_of IS 'Later snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.from_segment IS 'Segment at from_as_of; (not a customer) when the customer had no sale yet.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.to_segment IS 'Segment at to_as_of; (not a customer) when absent from that snapshot.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.customers IS 'Customers making that move.';
