-- foundation/dws.sql: the shared summary layer: _1d tables per day, _td to date, _nd views over 7 to 365 days.
--
-- The _nd views cover the 7/30/90/365 days up to an as-of date. Distinct customers are kept as bitmaps of
-- customer keys so that they roll up exactly from days to longer periods (a sum of daily distinct counts would
-- count a returning customer twice).

CREATE TABLE retail_mid.dws_refresh_state (
    brand        text PRIMARY KEY,
    as_of        date NOT NULL,
    refreshed_at timestamptz NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_refresh_state', '');
COMMENT ON TABLE retail_mid.dws_refresh_state IS 'Per brand, the latest business date with trade in the DWS: the as-of date of the _nd views.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.as_of IS 'Latest day with trade in dws_trade_store_1d.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.refreshed_at IS 'When a refresh last touched the brand.';

CREATE TABLE retail_mid.dws_trade_customer_1d (
    dt               date   NOT NULL,
    brand            text   NOT NULL,
    customer_key     int4   NOT NULL,
    orders           int    NOT NULL,
    return_orders    int    NOT NULL,
    lines            int    NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_order_time timestamp NOT NULL,
    last_order_time  timestamp NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, customer_key)
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_1d', '');
-- and an index on customer_key (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dws_trade_customer_1d IS 'Trade per customer and day (identified customers only).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.customer_key IS 'Customer key (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.orders IS 'Orders with at least one sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.return_orders IS 'Orders with at least one return line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.lines IS 'Kept DWD lines, sales and returns.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.quantity IS 'Net units (sales minus returns).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.sales_amount IS 'Gross sales amount (sale lines).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.return_amount IS 'Returned amount as a positive number.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.first_order_time IS 'First order time of the day.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.last_order_time IS 'Last order time of the day.';

CREATE TABLE retail_mid.dws_trade_sku_store_1d (
    dt              date   NOT NULL,
    brand           text   NOT NULL,
    store_id        text   NOT NULL,
    sku_id          text   NOT NULL,
    orders          int    NOT NULL,
    quantity        numeric(18,3) NOT NULL,
    sales_quantity  numeric(18,3) NOT NULL,
    return_quantity numeric(18,3) NOT NULL,
    sales_amount    numeric(18,4) NOT NULL,
    return_amount   numeric(18,4) NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    buyers          int    NOT NULL,
    buyer_bitmap    retail_mid.rbitmap NOT NULL,
    -- issue 15: DIM labels as of dt
    category_l1     text,
    category_l2     text,
    store_region    text
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, store_id, sku_id)
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_1d', '');
-- and an index on (brand, store_id, sku_id) (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dws_trade_sku_store_1d IS 'Trade per SKU x store x day; the demand series for forecasting. Lines without a store are under store_id ''(none)''.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.orders IS 'Orders with a sale line of this SKU.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.quantity IS 'Net units sold (sales minus returns).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sales_quantity IS 'Units on sale lines.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.return_quantity IS 'Units returned, as a positive number.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.buyers IS 'Distinct identified customers with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.buyer_bitmap IS 'Those customers'' keys, for exact distinct counts over longer periods.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.category_l1 IS 'Category level 1 of the SKU on dt (dwd_trade_order_line_di.category_l1).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.category_l2 IS 'Category level 2 of the SKU on dt.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.store_region IS 'Region of the store on dt (dim_site), NULL for store_id ''(none)''.';

CREATE TABLE retail_mid.dws_trade_store_1d (
    dt                date   NOT NULL,
    brand             text   NOT NULL,
    store_id          text   NOT NULL,
    orders            int    NOT NULL,
    anonymous_orders  int    NOT NULL,
    return_orders     int    NOT NULL,
    lines             int    NOT NULL,
    quantity          numeric(18,3) NOT NULL,
    sales_amount      numeric(18,4) NOT NULL,
    return_amount     numeric(18,4) NOT NULL,
    net_amount        numeric(18,4) NOT NULL,
    customers         int    NOT NULL,
    customer_bitmap   retail_mid.rbitmap NOT NULL,
    -- issue 15: DIM label as of dt
    store_region      text
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, store_id)
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_1d', '');
COMMENT ON TABLE retail_mid.dws_trade_store_1d IS 'Trade per store and day.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.orders IS 'Orders with at least one sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.anonymous_orders IS 'Of those, orders without an identified customer.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.return_orders IS 'Orders with at least one return line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.lines IS 'Kept DWD lines.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.customers IS 'Distinct identified customers with a sale.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.customer_bitmap IS 'Those customers'' keys, for exact distinct counts over longer periods.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.store_region IS 'Region of the store on dt (dim_site), NULL for store_id ''(none)''.';

CREATE TABLE retail_mid.dws_trade_customer_td (
    brand            text NOT NULL,
    customer_key     int4 NOT NULL,
    first_order_date date NOT NULL,
    last_order_date  date NOT NULL,
    orders           bigint NOT NULL,
    return_orders    bigint NOT NULL,
    active_days      int  NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_sale_date  date,
    last_sale_date   date,
    PRIMARY KEY (brand, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_td', '');
COMMENT ON TABLE retail_mid.dws_trade_customer_td IS 'Trade per customer over all refreshed history (to date).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.first_order_date IS 'Date of the first day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.last_order_date IS 'Date of the last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.orders IS 'Orders with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.return_orders IS 'Orders with a return line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.active_days IS 'Days with any trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.first_sale_date IS 'First day with a sale (orders > 0); NULL when the customer only returned goods. RFM recency counts from sale days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.last_sale_date IS 'Last day with a sale (orders > 0); NULL when the customer only returned goods.';

CREATE TABLE retail_mid.dws_trade_sku_store_td (
    brand         text NOT NULL,
    store_id      text NOT NULL,
    sku_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    selling_days  int  NOT NULL,
    orders        bigint NOT NULL,
    quantity      numeric(18,3) NOT NULL,
    net_amount    numeric(18,4) NOT NULL,
    buyers        int  NOT NULL,
    PRIMARY KEY (brand, store_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_td', '');
COMMENT ON TABLE retail_mid.dws_trade_sku_store_td IS 'Trade per SKU x store over all refreshed history.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.first_sale_date IS 'First day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.last_sale_date IS 'Last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.selling_days IS 'Days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.orders IS 'Orders with a sale line of the SKU.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.net_amount IS 'Net sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.buyers IS 'Distinct identified buyers over all history (exact).';

CREATE TABLE retail_mid.dws_trade_store_td (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    orders          bigint NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    customers       int  NOT NULL,
    customer_bitmap retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_td', '');
COMMENT ON TABLE retail_mid.dws_trade_store_td IS 'Trade per store over all refreshed history.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.first_sale_date IS 'First day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.last_sale_date IS 'Last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.orders IS 'Orders with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.net_amount IS 'Net sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.customers IS 'Distinct identified customers over all history (exact).';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.customer_bitmap IS 'Their keys.';

-- ----------------------------------------------------------------- retained history (issue 13)
-- retail_mid.retain(before) drops whole months of the _1d tables; the totals of the dropped days move into these
-- baselines (in the same transaction), and the _td rebuild adds them, so a _td row stays the total over all history
-- although its oldest days are gone. history_retention holds the first day still kept: refresh refuses days before it.
CREATE TABLE retail_mid.history_retention (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    kept_from   date NOT NULL,
    retained_at timestamptz NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.history_retention', '');
COMMENT ON TABLE retail_mid.history_retention IS 'At most one row: the first day of the partitioned history still kept after retail_mid.retain (refresh refuses days before it).';
COMMENT ON COLUMN retail_mid.history_retention.singleton IS 'Always true (one row).';
COMMENT ON COLUMN retail_mid.history_retention.kept_from IS 'First day still kept: the _1d and DWD days before it were dropped and their totals are in the *_retained tables.';
COMMENT ON COLUMN retail_mid.history_retention.retained_at IS 'When retain last dropped history.';

CREATE TABLE retail_mid.dws_trade_customer_retained (
    brand            text NOT NULL,
    customer_key     int4 NOT NULL,
    first_order_date date NOT NULL,
    last_order_date  date NOT NULL,
    orders           bigint NOT NULL,
    return_orders    bigint NOT NULL,
    active_days      int  NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_sale_date  date,
    last_sale_date   date,
    PRIMARY KEY (brand, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_customer_retained IS 'Totals per customer of the days dropped by retail_mid.retain (columns as dws_trade_customer_td); added to the _1d rows when dws_trade_customer_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.first_order_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.last_order_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.orders IS 'Orders with a sale line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.return_orders IS 'Orders with a return line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.active_days IS 'Dropped days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.quantity IS 'Net units on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.sales_amount IS 'Sales amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.return_amount IS 'Returned amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.first_sale_date IS 'First dropped day with a sale (NULL: returns only).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.last_sale_date IS 'Last dropped day with a sale (NULL: returns only).';

CREATE TABLE retail_mid.dws_trade_sku_store_retained (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    sku_id          text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    selling_days    int  NOT NULL,
    orders          bigint NOT NULL,
    quantity        numeric(18,3) NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    buyer_bitmap    retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_sku_store_retained IS 'Totals per SKU x store of the days dropped by retail_mid.retain, with the buyers'' keys (so distinct buyers stay exact); added when dws_trade_sku_store_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.first_sale_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.last_sale_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.selling_days IS 'Dropped days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.orders IS 'Orders with a sale line of the SKU on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.quantity IS 'Net units on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.buyer_bitmap IS 'Keys of the identified buyers on the dropped days.';

CREATE TABLE retail_mid.dws_trade_store_retained (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    orders          bigint NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    customer_bitmap retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_store_retained IS 'Totals per store of the days dropped by retail_mid.retain, with the customers'' keys; added when dws_trade_store_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.first_sale_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.last_sale_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.orders IS 'Orders with a sale line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.customer_bitmap IS 'Keys of the identified customers on the dropped days.';

-- Rebuilds the _1d tables for [from_date, to_date] from the DWD and the _td rows of every key those days touch
-- (before or after the change, so that removed late data is taken out of the totals too).
CREATE FUNCTION retail_mid.build_dws_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    CREATE TEMP TABLE rm_touched_customer ON COMMIT DROP AS
        SELECT DISTINCT brand, customer_key FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_sku_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;
    PERFORM retail_mid.ensure_partitions(t, from_date, to_date)  -- issue 13
       FROM unnest(ARRAY['retail_mid.dws_trade_customer_1d', 'retail_mid.dws_trade_sku_store_1d', 'retail_mid.dws_trade_store_1d']::regclass[]) t;
    DELETE FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;

    -- One pass over the DWD lines to orders: an order has one customer, store and day, so customer and store
    -- counts become plain sums over it and need no count(DISTINCT).
    CREATE TEMP TABLE rm_order ON COMMIT DROP AS
    SELECT dt, brand, order_id, customer_key, coalesce(store_id, '(none)') AS store_id,
           count(*) AS lines, sum(quantity) AS quantity,
           bool_or(line_type = 'sale') AS has_sale, bool_or(line_type = 'return') AS has_return,
           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount,
           min(order_time) AS order_time, max(store_region) AS store_region  -- issue 15
      FROM retail_mid.dwd_trade_order_line_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, order_id, customer_key, coalesce(store_id, '(none)');
    ANALYZE rm_order;

    INSERT INTO retail_mid.dws_trade_customer_1d
    SELECT dt, brand, customer_key, count(*) FILTER (WHERE has_sale), count(*) FILTER (WHERE has_return),
           sum(lines), sum(quantity), sum(sales_amount), sum(return_amount), sum(sales_amount) - sum(return_amount),
           min(order_time), max(order_time)
      FROM rm_order WHERE customer_key IS NOT NULL
     GROUP BY dt, brand, customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    INSERT INTO retail_mid.dws_trade_store_1d
    SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, sales_amount, return_amount,
           sales_amount - return_amount, retail_mid.rb_cardinality(b), b, store_region
      FROM (SELECT dt, brand, store_id, max(store_region) AS store_region, count(*) FILTER (WHERE has_sale) AS orders,
                   count(*) FILTER (WHERE has_sale AND customer_key IS NULL) AS anonymous_orders,
                   count(*) FILTER (WHERE has_return) AS return_orders, sum(lines) AS lines, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE has_sale), '{}') AS b
              FROM rm_order GROUP BY dt, brand, store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- SKU lines are first summed per order, so that an order counts once per SKU.
    INSERT INTO retail_mid.dws_trade_sku_store_1d
    SELECT dt, brand, store_id, sku_id, orders, sales_quantity - return_quantity, sales_quantity, return_quantity,
           sales_amount, return_amount, sales_amount - return_amount, retail_mid.rb_cardinality(b), b,
           category_l1, category_l2, store_region  -- issue 15
      FROM (SELECT dt, brand, store_id, sku_id, max(category_l1) AS category_l1, max(category_l2) AS category_l2,
                   max(store_region) AS store_region, count(*) FILTER (WHERE sales_quantity > 0) AS orders,
                   sum(sales_quantity) AS sales_quantity, sum(return_quantity) AS return_quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE sales_quantity > 0), '{}') AS b
              FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id, order_id, customer_key,
                           max(category_l1) AS category_l1, max(category_l2) AS category_l2, max(store_region) AS store_region,
                           coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0) AS sales_quantity,
                           coalesce(-sum(quantity) FILTER (WHERE line_type = 'return'), 0) AS return_quantity,
                           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
                           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount
                      FROM retail_mid.dwd_trade_order_line_di
                     WHERE dt BETWEEN from_date AND to_date
                     GROUP BY dt, brand, coalesce(store_id, '(none)'), sku_id, order_id, customer_key) per_order
             GROUP BY dt, brand, store_id, sku_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- To-date rows of every touched key, recomputed from the _1d history.
    INSERT INTO rm_touched_customer SELECT DISTINCT brand, customer_key FROM rm_order WHERE customer_key IS NOT NULL;
    INSERT INTO rm_touched_store SELECT DISTINCT brand, store_id FROM rm_order;
    INSERT INTO rm_touched_sku_store
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;

    DELETE FROM retail_mid.dws_trade_customer_td t USING (SELECT DISTINCT * FROM rm_touched_customer) k
     WHERE t.brand = k.brand AND t.customer_key = k.customer_key;
    -- issue 13: plus the totals of the days retain dropped (dws_trade_customer_retained)
    INSERT INTO retail_mid.dws_trade_customer_td
    SELECT u.brand, u.customer_key, min(u.first_order_date), max(u.last_order_date), sum(u.orders), sum(u.return_orders),
           sum(u.active_days), sum(u.quantity), sum(u.sales_amount), sum(u.return_amount), sum(u.net_amount),
           min(u.first_sale_date), max(u.last_sale_date)
      FROM (SELECT d.brand, d.customer_key, min(dt) AS first_order_date, max(dt) AS last_order_date, sum(orders) AS orders,
                   sum(return_orders) AS return_orders, count(*) AS active_days, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount, sum(net_amount) AS net_amount,
                   min(dt) FILTER (WHERE orders > 0) AS first_sale_date, max(dt) FILTER (WHERE orders > 0) AS last_sale_date
              FROM retail_mid.dws_trade_customer_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = d.brand AND k.customer_key = d.customer_key
             GROUP BY d.brand, d.customer_key
            UNION ALL
            SELECT r.brand, r.customer_key, r.first_order_date, r.last_order_date, r.orders, r.return_orders, r.active_days,
                   r.quantity, r.sales_amount, r.return_amount, r.net_amount, r.first_sale_date, r.last_sale_date
              FROM retail_mid.dws_trade_customer_retained r
              JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = r.brand AND k.customer_key = r.customer_key) u
     GROUP BY u.brand, u.customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_sku_store_td t USING (SELECT DISTINCT * FROM rm_touched_sku_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id AND t.sku_id = k.sku_id;
    INSERT INTO retail_mid.dws_trade_sku_store_td  -- issue 13: plus dws_trade_sku_store_retained
    SELECT u.brand, u.store_id, u.sku_id, min(u.first_sale_date), max(u.last_sale_date), sum(u.selling_days), sum(u.orders),
           sum(u.quantity), sum(u.net_amount), retail_mid.rb_cardinality(retail_mid.rb_or_agg(u.b))
      FROM (SELECT d.brand, d.store_id, d.sku_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, count(*) AS selling_days,
                   sum(orders) AS orders, sum(quantity) AS quantity, sum(net_amount) AS net_amount, retail_mid.rb_or_agg(buyer_bitmap) AS b
              FROM retail_mid.dws_trade_sku_store_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
                ON k.brand = d.brand AND k.store_id = d.store_id AND k.sku_id = d.sku_id
             GROUP BY d.brand, d.store_id, d.sku_id
            UNION ALL
            SELECT r.brand, r.store_id, r.sku_id, r.first_sale_date, r.last_sale_date, r.selling_days, r.orders, r.quantity,
                   r.net_amount, r.buyer_bitmap
              FROM retail_mid.dws_trade_sku_store_retained r
              JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
                ON k.brand = r.brand AND k.store_id = r.store_id AND k.sku_id = r.sku_id) u
     GROUP BY u.brand, u.store_id, u.sku_id;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_store_td t USING (SELECT DISTINCT * FROM rm_touched_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id;
    INSERT INTO retail_mid.dws_trade_store_td
    SELECT brand, store_id, first_sale_date, last_sale_date, orders, net_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT u.brand, u.store_id, min(u.first_sale_date) AS first_sale_date, max(u.last_sale_date) AS last_sale_date,
                   sum(u.orders) AS orders, sum(u.net_amount) AS net_amount, retail_mid.rb_or_agg(u.b) AS b
              FROM (SELECT d.brand, d.store_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, sum(orders) AS orders,
                           sum(net_amount) AS net_amount, retail_mid.rb_or_agg(customer_bitmap) AS b
                      FROM retail_mid.dws_trade_store_1d d
                      JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = d.brand AND k.store_id = d.store_id
                     GROUP BY d.brand, d.store_id
                    UNION ALL  -- issue 13: plus dws_trade_store_retained
                    SELECT r.brand, r.store_id, r.first_sale_date, r.last_sale_date, r.orders, r.net_amount, r.customer_bitmap
                      FROM retail_mid.dws_trade_store_retained r
                      JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = r.brand AND k.store_id = r.store_id) u
             GROUP BY u.brand, u.store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DROP TABLE rm_order, rm_touched_customer, rm_touched_sku_store, rm_touched_store;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_trade(date, date) IS 'Rebuilds the trade _1d tables for the given days and the _td rows they touch; called by retail_mid.refresh.';

-- _nd: trade over the 7, 30, 90 and 365 days ending on an as-of date, computed from the _1d tables on read
-- (so a refresh never has to rewrite them). The views use each brand's latest day with trade.
CREATE FUNCTION retail_mid.dws_trade_customer_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, customer_key int4, last_order_date date,
               orders_7d bigint, orders_30d bigint, orders_90d bigint, orders_365d bigint,
               net_amount_7d numeric, net_amount_30d numeric, net_amount_90d numeric, net_amount_365d numeric,
               active_days_30d bigint, active_days_365d bigint)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_customer_nd_at.as_of, d.brand, d.customer_key, max(d.dt),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 7), 0),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30), 0),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 90), 0),
           sum(d.orders),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 7), 0),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30), 0),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 90), 0),
           sum(d.net_amount),
           count(*) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30),
           count(*)
      FROM retail_mid.dws_trade_customer_1d d
     WHERE d.dt > dws_trade_customer_nd_at.as_of - 365 AND d.dt <= dws_trade_customer_nd_at.as_of
       AND d.brand = dws_trade_customer_nd_at.brand
     GROUP BY d.brand, d.customer_key;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_customer_nd_at(date, text) IS 'Trade per customer over the 7/30/90/365 days ending on as_of (customers with trade in the last 365 days).';

CREATE VIEW retail_mid.dws_trade_customer_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_customer_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_customer_nd IS 'Trade per customer over the 7/30/90/365 days ending on the brand''s latest day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.as_of IS 'Last day of every window.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.last_order_date IS 'Last day with trade within 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_7d IS 'Orders in the last 7 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_30d IS 'Orders in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_90d IS 'Orders in the last 90 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_365d IS 'Orders in the last 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_7d IS 'Net amount in the last 7 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_30d IS 'Net amount in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_90d IS 'Net amount in the last 90 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_365d IS 'Net amount in the last 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.active_days_30d IS 'Days with trade in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.active_days_365d IS 'Days with trade in the last 365 days.';

CREATE FUNCTION retail_mid.dws_trade_store_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, store_id text, period_days int, orders bigint, net_amount numeric,
               customers bigint, customer_bitmap retail_mid.rbitmap)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_store_nd_at.as_of, d.brand, d.store_id, p.days, sum(d.orders), sum(d.net_amount),
           retail_mid.rb_cardinality(retail_mid.rb_or_agg(d.customer_bitmap)), retail_mid.rb_or_agg(d.customer_bitmap)
      FROM retail_mid.dws_trade_store_1d d
      JOIN (VALUES (7), (30), (90), (365)) AS p(days)
        ON d.dt > dws_trade_store_nd_at.as_of - p.days AND d.dt <= dws_trade_store_nd_at.as_of
     WHERE d.brand = dws_trade_store_nd_at.brand
     GROUP BY d.brand, d.store_id, p.days;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_store_nd_at(date, text) IS 'Trade per store over the 7/30/90/365 days ending on as_of, with exact distinct customers.';

CREATE VIEW retail_mid.dws_trade_store_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_store_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_store_nd IS 'Trade per store over the 7/30/90/365 days ending on the brand''s latest day with trade (one row per period).';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.as_of IS 'Last day of the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.store_id IS 'Store id.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.period_days IS 'Window length in days: 7, 30, 90 or 365.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.orders IS 'Orders with a sale line in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.net_amount IS 'Net sales amount in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.customers IS 'Distinct identified customers in the window (exact, from bitmaps).';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.customer_bitmap IS 'Their keys.';

CREATE FUNCTION retail_mid.dws_trade_sku_store_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, store_id text, sku_id text, period_days int, orders bigint,
               quantity numeric, net_amount numeric, buyers bigint)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_sku_store_nd_at.as_of, d.brand, d.store_id, d.sku_id, p.days, sum(d.orders), sum(d.quantity),
           sum(d.net_amount), retail_mid.rb_cardinality(retail_mid.rb_or_agg(d.buyer_bitmap))
      FROM retail_mid.dws_trade_sku_store_1d d
      JOIN (VALUES (7), (30), (90), (365)) AS p(days)
        ON d.dt > dws_trade_sku_store_nd_at.as_of - p.days AND d.dt <= dws_trade_sku_store_nd_at.as_of
     WHERE d.brand = dws_trade_sku_store_nd_at.brand
     GROUP BY d.brand, d.store_id, d.sku_id, p.days;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_sku_store_nd_at(date, text) IS 'Trade per SKU x store over the 7/30/90/365 days ending on as_of, with exact distinct buyers.';

CREATE VIEW retail_mid.dws_trade_sku_store_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_sku_store_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_sku_store_nd IS 'Trade per SKU x store over the 7/30/90/365 days ending on the brand''s latest day with trade (one row per period).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.as_of IS 'Last day of the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.store_id IS 'Store id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.period_days IS 'Window length in days: 7, 30, 90 or 365.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.orders IS 'Orders with a sale line of the SKU in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.quantity IS 'Net units in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.net_amount IS 'Net sales amount in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.buyers IS 'Distinct identified buyers in the window (exact).';
