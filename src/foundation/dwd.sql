-- foundation/dwd.sql: the cleaned detail layer: one row per kept order line, rebuilt day by day from the ODS.
--
-- dwd_trade_order_line_di is rebuilt by retail_mid.refresh. The cleaning rules (each counted per day in
-- dwd_trade_cleaning_1d):
--   duplicate_line   an exact duplicate of an earlier line of the same order (same SKU, quantity, unit price,
--                    discount) is dropped; the first line number is kept.
--   zero_price       a line with unit price 0 (free goods, manual adjustments) is dropped.
--   negative_price   a line with a negative unit price (bad-debt adjustments) is dropped.
--   zero_quantity    a line with quantity 0 is dropped.
--   return_line      a line with negative quantity (a cancellation or a return) is kept as line_type 'return'
--                    with a negative amount, so that net sales reconcile with the source.
--   anonymous_line   a line whose order has no customer identifier is kept with customer_key NULL: it counts
--                    in store and SKU sales but in no customer table.

CREATE TABLE retail_mid.dwd_trade_order_line_di (
    dt                date      NOT NULL,
    brand             text      NOT NULL,
    order_id          text      NOT NULL,
    line_no           int       NOT NULL,
    order_time        timestamp NOT NULL,
    customer_key      int4,
    store_id          text,
    channel           text      NOT NULL,
    sku_id            text      NOT NULL,
    quantity          numeric(14,3) NOT NULL,
    unit_price        numeric(14,4) NOT NULL,
    discount          numeric(14,4) NOT NULL,
    amount            numeric(18,4) NOT NULL,
    line_type         text      NOT NULL CHECK (line_type IN ('sale', 'return')),
    original_order_id text,
    -- issue 15: the DIM labels (dim_product and dim_site as of dt)
    category_l1       text,
    category_l2       text,
    store_region      text
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions (foundation/partition.sql)
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_trade_order_line_di', '');
-- issue 13: the index on dt is created on each partition (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dwd_trade_order_line_di IS 'Cleaned order lines, one row per kept ODS line (rules in src/foundation/dwd.sql and docs/foundation.md); rebuilt per day by retail_mid.refresh.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.dt IS 'Business date of the order (order_time::date).';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.brand IS 'Brand (tenant) the order belongs to.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.order_id IS 'Source order id.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.line_no IS 'Source line number within the order.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.order_time IS 'Time the order was placed.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.customer_key IS 'Dense customer key (retail_mid.customer_key); NULL for anonymous orders.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.store_id IS 'Selling store, NULL for channels without one.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.channel IS 'Sales channel, e.g. store, online, app.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.sku_id IS 'Product (SKU) id.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.quantity IS 'Units; negative for returned or cancelled goods.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.unit_price IS 'Price per unit, always > 0 after cleaning.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.discount IS 'Discount on the line, in currency.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.amount IS 'quantity * unit_price - discount; negative for returns.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.line_type IS 'sale or return (returns include cancellations).';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.original_order_id IS 'For returns: the order the goods were bought with, when the source says.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.category_l1 IS 'Category level 1 of the SKU on the order date (dim_product version valid on dt); unknown when the product is not in the ODS.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.category_l2 IS 'Category level 2 of the SKU on the order date; unknown when the product is not in the ODS.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.store_region IS 'Region of the store on the order date (dim_site version valid on dt); unknown for a store not in the ODS, NULL for lines without a store.';

CREATE TABLE retail_mid.dwd_trade_cleaning_1d (
    dt     date   NOT NULL,
    brand  text   NOT NULL,
    rule   text   NOT NULL CHECK (rule IN ('source_line', 'duplicate_line', 'zero_price', 'negative_price', 'zero_quantity',
                                           'return_line', 'anonymous_line', 'kept_line')),
    lines  bigint NOT NULL,
    amount numeric(18,4) NOT NULL,
    PRIMARY KEY (dt, brand, rule)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_trade_cleaning_1d', '');
COMMENT ON TABLE retail_mid.dwd_trade_cleaning_1d IS 'How many ODS lines (and how much quantity*price) each DWD cleaning rule touched per day; source_line = kept_line + the dropped rules.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.dt IS 'Business date of the order.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.rule IS 'source_line, duplicate_line, zero_price, negative_price, zero_quantity (dropped), return_line, anonymous_line (kept, flagged), kept_line.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.lines IS 'Number of lines the rule applied to.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.amount IS 'Sum of quantity * unit_price over those lines.';

-- Rebuilds the DWD days [from_date, to_date] from the ODS and returns the number of lines written.
-- Rules apply in the order listed above: a line is counted under the first dropping rule that matches.
CREATE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id), array_agg(o.brand))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id, o.brand
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                   AND k.id_value = btrim(o.customer_id))) o;

    -- issue 13: the months of the range get their partitions; the delete and insert touch only those
    PERFORM retail_mid.ensure_partitions('retail_mid.dwd_trade_order_line_di', from_date, to_date);
    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                         AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT x.dt, x.brand, x.order_id, x.line_no, x.order_time, x.customer_key, x.store_id, x.channel, x.sku_id, x.quantity, x.unit_price,
           x.discount, x.quantity * x.unit_price - x.discount,
           CASE WHEN x.quantity < 0 THEN 'return' ELSE 'sale' END, x.original_order_id,
           -- issue 15: categories and region as of the order date
           coalesce(p.category_l1, 'unknown'), coalesce(p.category_l2, 'unknown'),
           CASE WHEN x.store_id IS NOT NULL THEN coalesce(s.region, 'unknown') END
      FROM pg_temp.rm_dwd_lines x
      LEFT JOIN retail_mid.dim_product p ON p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to
      LEFT JOIN retail_mid.dim_site s ON s.brand = x.brand AND s.site_id = x.store_id AND s.valid_from <= x.dt AND x.dt < s.valid_to
     WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_trade(date, date) IS 'Rebuilds dwd_trade_order_line_di and dwd_trade_cleaning_1d for the given days from the ODS; called by retail_mid.refresh.';

CREATE VIEW retail_mid.dwd_trade_cleaning_report AS
SELECT brand, rule, sum(lines)::bigint AS lines, sum(amount)::numeric(18,2) AS amount
  FROM retail_mid.dwd_trade_cleaning_1d GROUP BY brand, rule;
COMMENT ON VIEW retail_mid.dwd_trade_cleaning_report IS 'Effect of each DWD cleaning rule over all refreshed days, per brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.rule IS 'Cleaning rule (see dwd_trade_cleaning_1d).';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.lines IS 'Lines the rule applied to.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.amount IS 'Sum of quantity * unit_price over those lines.';
