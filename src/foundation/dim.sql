-- foundation/dim.sql: the dimension layer: products, sites and stores, customers and the calendar.
--
-- Conformed dimensions read by the DWD (categories and regions as of the order date), the DWS and every BI tool.
-- dim_product and dim_site keep history (slowly changing dimensions of type 2) of the attributes the seed's
-- analyses need at a past date: a product's category (levels 1-4) and a site's region. Every version covers
-- [valid_from, valid_to): the first version of a key starts on 1900-01-01 (its first known state holds for all
-- earlier history), the current one ends on 9999-12-31 and has is_current. The other attributes are of type 1
-- (overwritten on every version). retail_mid.dim_refresh maintains them from the ODS; retail_mid.refresh calls it
-- first, in its transaction. The state at a past date d: valid_from <= d AND d < valid_to (dim_product_at,
-- dim_site_at). dim_date is the calendar (ISO weeks, the NRF 4-5-4 retail calendar) with the editable holidays
-- of dim_holiday.

-- ----------------------------------------------------------------- products
CREATE TABLE retail_mid.dim_product (
    brand         text NOT NULL,
    sku_id        text NOT NULL,
    valid_from    date NOT NULL,
    valid_to      date NOT NULL DEFAULT '9999-12-31',
    is_current    boolean NOT NULL DEFAULT true,
    sku_name      text,
    category_l1   text NOT NULL,
    category_l2   text NOT NULL,
    category_l3   text NOT NULL,
    category_l4   text NOT NULL,
    product_brand text NOT NULL,
    list_price    numeric(14,4),
    price_band    text NOT NULL CHECK (price_band IN ('low', 'mid', 'high', 'unknown')),
    package_size  text,
    launch_date   date,
    status        text NOT NULL,
    PRIMARY KEY (brand, sku_id, valid_from),
    CHECK (valid_from < valid_to)
);
CREATE UNIQUE INDEX ON retail_mid.dim_product (brand, sku_id) WHERE is_current;
COMMENT ON TABLE retail_mid.dim_product IS 'Products (SKUs), one row per version: the category (levels 1-4) keeps its history (SCD type 2, [valid_from, valid_to)), the other attributes are the current ones. Maintained by retail_mid.dim_refresh from ods_product.';
-- kept by pg_dump: the versions are history no source holds any more
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_product', '');

-- ----------------------------------------------------------------- sites and stores
CREATE TABLE retail_mid.dim_site (
    brand          text NOT NULL,
    site_id        text NOT NULL,
    valid_from     date NOT NULL,
    valid_to       date NOT NULL DEFAULT '9999-12-31',
    is_current     boolean NOT NULL DEFAULT true,
    site_name      text,
    site_type      text NOT NULL,
    region         text NOT NULL,
    city           text NOT NULL,
    floor_area     numeric,
    opened_on      date,
    closed_on      date,
    status         text NOT NULL CHECK (status IN ('open', 'closed', 'planned')),
    parent_site_id text,
    geom           geometry(Point, 4326),
    PRIMARY KEY (brand, site_id, valid_from),
    CHECK (valid_from < valid_to)
);
CREATE UNIQUE INDEX ON retail_mid.dim_site (brand, site_id) WHERE is_current;
COMMENT ON TABLE retail_mid.dim_site IS 'Stores and warehouses, one row per version: the region keeps its history (SCD type 2, [valid_from, valid_to)), the other attributes are the current ones. Maintained by retail_mid.dim_refresh from ods_site.';
-- kept by pg_dump: the versions are history no source holds any more
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_site', '');

CREATE VIEW retail_mid.dim_store AS
SELECT brand, site_id AS store_id, valid_from, valid_to, is_current, site_name AS store_name, region, city, floor_area,
       opened_on, closed_on, status, parent_site_id, geom
  FROM retail_mid.dim_site WHERE site_type = 'store';
COMMENT ON VIEW retail_mid.dim_store IS 'The stores of dim_site (site_type store), every version.';

-- ----------------------------------------------------------------- campaigns
-- The campaigns as the touch DWD names them (campaign_id trimmed): a view, the ODS campaign list has no history to
-- keep. What dashboards label campaigns with instead of reading ods_campaign.
CREATE VIEW retail_mid.dim_campaign AS
SELECT DISTINCT ON (c.brand, btrim(c.campaign_id))
       c.brand, btrim(c.campaign_id) AS campaign_id, nullif(btrim(c.name), '') AS campaign_name,
       nullif(btrim(c.kind), '') AS kind, c.start_date, c.end_date
  FROM retail_mid.ods_campaign c
 ORDER BY c.brand, btrim(c.campaign_id), c.campaign_id;
COMMENT ON VIEW retail_mid.dim_campaign IS 'Marketing campaigns (ods_campaign) keyed as dwd_marketing_touch_di and dws_marketing_campaign_1d key them (campaign_id trimmed; of ids equal once trimmed, the first); brand-isolated like the ODS.';

CREATE VIEW retail_mid.dim_store_category_space AS
SELECT s.brand, s.store_id, btrim(s.category_l1) AS category_l1, s.space_sqm, s.shelf_metres
  FROM retail_mid.ods_store_category_space s;
COMMENT ON VIEW retail_mid.dim_store_category_space IS 'The current space of each level-1 category in each store (ods_store_category_space, category trimmed), as the goods functions and tiles read it; no history. Brand-isolated like the ODS.';
COMMENT ON COLUMN retail_mid.dim_store_category_space.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dim_store_category_space.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dim_store_category_space.category_l1 IS 'Level-1 category, trimmed.';
COMMENT ON COLUMN retail_mid.dim_store_category_space.space_sqm IS 'Space of the category in the store, square metres.';
COMMENT ON COLUMN retail_mid.dim_store_category_space.shelf_metres IS 'Shelf length of the category in the store, metres; NULL when not given.';

-- ----------------------------------------------------------------- customers
CREATE TABLE retail_mid.dim_customer (
    brand            text NOT NULL,
    id_type          text NOT NULL,
    customer_id_hash text NOT NULL,
    customer_key     int4,
    gender           text NOT NULL,
    birth_year       int4,
    member_level     text NOT NULL,
    home_store_id    text,
    guide_id         text,
    register_channel text NOT NULL,
    register_date    date,
    city             text NOT NULL,
    province         text,
    country          text,
    PRIMARY KEY (brand, id_type, customer_id_hash)
);
CREATE INDEX ON retail_mid.dim_customer (customer_key);
COMMENT ON TABLE retail_mid.dim_customer IS 'Customers (members) of each brand with their current attributes (type 1): member level, home store, guide, register channel, city. Holds no personal data: no name, phone, e-mail or customer id (its md5 hash, as the hash masking rule shows it), the birth year only. Rebuilt by retail_mid.dim_refresh from ods_customer.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_customer', '');

-- ----------------------------------------------------------------- calendar
-- The retail calendar of the NRF (National Retail Federation) 4-5-4 convention: a fiscal year ends on the
-- Saturday nearest 31 January (of the next calendar year) and is named after the calendar year it starts in
-- (FY2023 = 2023-01-29 .. 2024-02-03). Its weeks run Sunday to Saturday; a year has 52 weeks, or 53 when the
-- nearest Saturday drifts (FY2012, FY2017, FY2023, FY2028 ...). Quarters have 13 weeks as months of 4, 5 and 4
-- weeks; a 53rd week belongs to the last month (January of the next calendar year), which then has 5 weeks.
CREATE FUNCTION retail_mid.nrf_fiscal_year_end(fiscal_year int4)
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.make_date(fiscal_year + 1, 1, 31)
           + ((9 - pg_catalog.date_part('dow', pg_catalog.make_date(fiscal_year + 1, 1, 31))::int4) % 7 - 3);
END;
COMMENT ON FUNCTION retail_mid.nrf_fiscal_year_end(int4) IS 'Last day of an NRF 4-5-4 fiscal year: the Saturday nearest 31 January of the next calendar year (FY2023 ends 2024-02-03).';

CREATE TABLE retail_mid.dim_calendar (
    date_key             date PRIMARY KEY,
    year                 int4 NOT NULL,
    quarter              int4 NOT NULL,
    month                int4 NOT NULL,
    month_name           text NOT NULL,
    day_of_month         int4 NOT NULL,
    day_of_year          int4 NOT NULL,
    iso_year             int4 NOT NULL,
    iso_week             int4 NOT NULL,
    iso_day_of_week      int4 NOT NULL,
    day_name             text NOT NULL,
    is_weekend           boolean NOT NULL,
    week_start           date NOT NULL,
    month_start          date NOT NULL,
    fiscal_year          int4 NOT NULL,
    fiscal_quarter       int4 NOT NULL,
    fiscal_month         int4 NOT NULL,
    fiscal_week          int4 NOT NULL,
    fiscal_day_of_week   int4 NOT NULL,
    fiscal_year_start    date NOT NULL,
    fiscal_year_end      date NOT NULL,
    fiscal_weeks_in_year int4 NOT NULL
);
COMMENT ON TABLE retail_mid.dim_calendar IS 'One row per day from 1980 to 2070 (retail_mid.dim_calendar_fill adds more): the Gregorian, ISO 8601 and NRF 4-5-4 retail calendars. Read dim_date, which adds the holidays.';

-- ISO weeks by the Thursday rule (the week belongs to the year of its Thursday), computed without extract(week)
-- so the test can compare the two.
CREATE FUNCTION retail_mid.dim_calendar_fill(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date OR from_date < '1800-01-01' OR to_date > '2999-12-31' THEN
        RAISE EXCEPTION 'calendar range must be finite, ordered and between 1800 and 2999'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retail_mid.dim_calendar
    SELECT d, date_part('year', d), date_part('quarter', d), date_part('month', d), to_char(d, 'FMMonth'),
           date_part('day', d), date_part('doy', d),
           date_part('year', thu), (thu - make_date(date_part('year', thu)::int, 1, 1)) / 7 + 1, isodow,
           to_char(d, 'FMDay'), isodow >= 6, d - (isodow - 1), date_trunc('month', d)::date,
           fy, least((fw - 1) / 13, 3) + 1,
           3 * least((fw - 1) / 13, 3) + CASE WHEN fw - 13 * least((fw - 1) / 13, 3) <= 4 THEN 1
                                              WHEN fw - 13 * least((fw - 1) / 13, 3) <= 9 THEN 2 ELSE 3 END,
           fw, (d - fy_start) % 7 + 1, fy_start, retail_mid.nrf_fiscal_year_end(fy),
           (retail_mid.nrf_fiscal_year_end(fy) - fy_start + 1) / 7
      FROM generate_series(from_date, to_date, interval '1 day') g(ts),
           LATERAL (SELECT g.ts::date AS d, date_part('isodow', g.ts)::int AS isodow) a,
           LATERAL (SELECT a.d - a.isodow + 4 AS thu,
                           CASE WHEN a.d <= retail_mid.nrf_fiscal_year_end(date_part('year', a.d)::int - 1)
                                THEN date_part('year', a.d)::int - 1 ELSE date_part('year', a.d)::int END AS fy) b,
           LATERAL (SELECT retail_mid.nrf_fiscal_year_end(b.fy - 1) + 1 AS fy_start) c,
           LATERAL (SELECT (a.d - c.fy_start) / 7 + 1 AS fw) w
    ON CONFLICT (date_key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.dim_calendar_fill(date, date) IS 'Adds the days of [from_date, to_date] missing from dim_calendar (1800-2999); returns the number added.';
SELECT retail_mid.dim_calendar_fill('1980-01-01', '2070-12-31');
-- pg_dump keeps the days users added (the shipped ones are created again by CREATE EXTENSION)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_calendar', $$WHERE date_key < '1980-01-01' OR date_key > '2070-12-31'$$);

CREATE TABLE retail_mid.dim_holiday (
    country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$|^\*$'),
    holiday_date date NOT NULL,
    name         text NOT NULL CHECK (name <> ''),
    shipped      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (country, holiday_date, name)
);
COMMENT ON TABLE retail_mid.dim_holiday IS 'Holidays as data: add, change or delete rows (moveable feasts such as the Spring Festival, Easter or Thanksgiving, store-specific days). Ships the fixed-date public holidays of CN and US for 1980-2070 (shipped = true); pg_dump keeps the rows users add and their changes to shipped rows.';
INSERT INTO retail_mid.dim_holiday (country, holiday_date, name, shipped)
SELECT h.country, make_date(y, h.m, h.d), h.name, true
  FROM generate_series(1980, 2070) y,
       (VALUES ('CN', 1, 1, 'New Year''s Day'), ('CN', 5, 1, 'Labour Day'), ('CN', 10, 1, 'National Day'),
               ('CN', 10, 2, 'National Day holiday'), ('CN', 10, 3, 'National Day holiday'),
               ('US', 1, 1, 'New Year''s Day'), ('US', 7, 4, 'Independence Day'), ('US', 11, 11, 'Veterans Day'),
               ('US', 12, 25, 'Christmas Day')) h(country, m, d, name);
-- kept by pg_dump with the user's changes to its shipped rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_holiday', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.dim_holiday FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();

CREATE VIEW retail_mid.dim_date AS
SELECT c.date_key, c.year, c.quarter, c.month, c.month_name, c.day_of_month, c.day_of_year, c.iso_year, c.iso_week,
       c.iso_day_of_week, c.day_name, c.is_weekend, c.week_start, c.month_start, c.fiscal_year, c.fiscal_quarter,
       c.fiscal_month, c.fiscal_week, c.fiscal_day_of_week, c.fiscal_year_start, c.fiscal_year_end, c.fiscal_weeks_in_year,
       h.holidays IS NOT NULL AS is_holiday, coalesce(h.holidays, '') AS holidays
  FROM retail_mid.dim_calendar c
  LEFT JOIN (SELECT holiday_date, string_agg(country || ': ' || name, '; ' ORDER BY country, name) AS holidays
               FROM retail_mid.dim_holiday GROUP BY holiday_date) h ON h.holiday_date = c.date_key;
COMMENT ON VIEW retail_mid.dim_date IS 'The calendar (dim_calendar) with the holidays of dim_holiday: Gregorian, ISO 8601 week and NRF 4-5-4 retail calendar attributes per day.';

-- ----------------------------------------------------------------- the state at a past date
CREATE FUNCTION retail_mid.dim_product_at(as_of date)
RETURNS SETOF retail_mid.dim_product LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM retail_mid.dim_product p WHERE p.valid_from <= as_of AND as_of < p.valid_to;
END;
COMMENT ON FUNCTION retail_mid.dim_product_at(date) IS 'Every product as it was on a date (the version valid then); brand-isolated like dim_product.';

CREATE FUNCTION retail_mid.dim_site_at(as_of date)
RETURNS SETOF retail_mid.dim_site LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM retail_mid.dim_site s WHERE s.valid_from <= as_of AND as_of < s.valid_to;
END;
COMMENT ON FUNCTION retail_mid.dim_site_at(date) IS 'Every site as it was on a date (the version valid then); brand-isolated like dim_site.';

-- ----------------------------------------------------------------- maintenance
-- Brings the dimensions up to date with the ODS. A change of a type-2 attribute seen by a refresh on day as_of
-- closes the current version on as_of and opens a new one from as_of (a second change the same day replaces it);
-- a key seen for the first time gets one version from 1900-01-01. Running it again without ODS changes changes
-- nothing. launch_date: attributes.launch_date of the ODS product, else the first order day seen by the refreshes
-- ([from_date, to_date], kept as the earliest). Returns the rows written.
CREATE FUNCTION retail_mid.dim_refresh(as_of date DEFAULT CURRENT_DATE, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) OR as_of <= '1900-01-01' OR as_of >= '9999-12-31' THEN
        RAISE EXCEPTION 'dim_refresh as_of must be a date after 1900-01-01 and before 9999-12-31'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- products
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT p.brand, p.sku_id, p.sku_name,
           coalesce(nullif(btrim(p.category_l1), ''), 'unknown') AS c1, coalesce(nullif(btrim(p.category_l2), ''), 'unknown') AS c2,
           coalesce(nullif(btrim(p.category_l3), ''), 'unknown') AS c3, coalesce(nullif(btrim(p.category_l4), ''), 'unknown') AS c4,
           coalesce(nullif(btrim(p.product_brand), ''), 'unknown') AS product_brand, p.list_price, p.package_size,
           CASE WHEN p.attributes ->> 'launch_date' ~ '^\d{4}-\d{2}-\d{2}$' THEN (p.attributes ->> 'launch_date')::date END AS launch_date,
           coalesce(nullif(btrim(p.attributes ->> 'status'), ''), 'active') AS status
      FROM retail_mid.ods_product p;
    -- a changed category closes the current version (or, changed again the same day, is replaced in place)
    UPDATE retail_mid.dim_product d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current AND d.valid_from < as_of
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET category_l1 = s.c1, category_l2 = s.c2, category_l3 = s.c3, category_l4 = s.c4
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_product (brand, sku_id, valid_from, sku_name, category_l1, category_l2, category_l3, category_l4,
                                        product_brand, list_price, price_band, package_size, launch_date, status)
    SELECT s.brand, s.sku_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_product o WHERE o.brand = s.brand AND o.sku_id = s.sku_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.sku_name, s.c1, s.c2, s.c3, s.c4, s.product_brand, s.list_price, 'unknown', s.package_size, s.launch_date, s.status
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_product d WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    -- first sale days of the refreshed range
    IF from_date IS NOT NULL AND to_date IS NOT NULL THEN
        CREATE TEMP TABLE rm_dim_first ON COMMIT DROP AS
        SELECT l.brand, l.sku_id, min(o.order_time)::date AS first_day
          FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
         WHERE o.order_time >= from_date AND o.order_time < to_date + 1 AND l.quantity > 0
         GROUP BY l.brand, l.sku_id;
        UPDATE rm_dim_src s SET launch_date = least(f.first_day, d.launch_date)
          FROM rm_dim_first f, retail_mid.dim_product d
         WHERE s.launch_date IS NULL AND f.brand = s.brand AND f.sku_id = s.sku_id
           AND d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current;
        DROP TABLE rm_dim_first;
    END IF;
    -- type-1 attributes on every version; a product gone from the ODS is delisted
    UPDATE retail_mid.dim_product d
       SET sku_name = s.sku_name, product_brand = s.product_brand, list_price = s.list_price, package_size = s.package_size,
           launch_date = coalesce(s.launch_date, d.launch_date), status = s.status
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id
       AND (d.sku_name, d.product_brand, d.list_price, d.package_size, coalesce(s.launch_date, d.launch_date), d.status)
           IS DISTINCT FROM (s.sku_name, s.product_brand, s.list_price, s.package_size, d.launch_date, s.status);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET status = 'delisted'
     WHERE d.status <> 'delisted' AND NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.sku_id = d.sku_id);
    -- price band: tercile of the list price within brand x category level 1 (current versions)
    UPDATE retail_mid.dim_product d SET price_band = b.band
      FROM (SELECT p.brand, p.sku_id, CASE WHEN p.list_price IS NULL THEN 'unknown'
                                           ELSE (ARRAY['low', 'mid', 'high'])[ntile(3) OVER (PARTITION BY p.brand, p.category_l1, p.list_price IS NULL ORDER BY p.list_price)] END AS band
              FROM retail_mid.dim_product p WHERE p.is_current) b
     WHERE d.brand = b.brand AND d.sku_id = b.sku_id AND d.price_band IS DISTINCT FROM b.band;
    DROP TABLE rm_dim_src;

    -- sites: region = attributes.region, else attributes.province, else the name of the regional DC that serves it
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    WITH RECURSIVE up AS (
        SELECT s.brand, s.site_id, s.parent_site_id AS up_id, 0 AS depth FROM retail_mid.ods_site s
        UNION ALL
        SELECT u.brand, u.site_id, p.parent_site_id, u.depth + 1
          FROM up u JOIN retail_mid.ods_site p ON p.brand = u.brand AND p.site_id = u.up_id AND p.kind <> 'RDC'
         WHERE u.depth < 10),
    rdc AS (
        SELECT DISTINCT ON (u.brand, u.site_id) u.brand, u.site_id, coalesce(r.site_name, r.site_id) AS rdc_name
          FROM up u JOIN retail_mid.ods_site r ON r.brand = u.brand AND r.site_id = u.up_id AND r.kind = 'RDC'
         ORDER BY u.brand, u.site_id, u.depth)
    SELECT s.brand, s.site_id, s.site_name, s.kind,
           coalesce(nullif(btrim(s.attributes ->> 'region'), ''), nullif(btrim(s.attributes ->> 'province'), ''),
                    CASE WHEN s.kind = 'RDC' THEN coalesce(s.site_name, s.site_id) END, r.rdc_name, 'unknown') AS region,
           coalesce(nullif(btrim(s.city), ''), 'unknown') AS city, s.floor_area, s.opened_on, s.closed_on,
           CASE WHEN s.closed_on <= as_of THEN 'closed' WHEN s.opened_on > as_of THEN 'planned' ELSE 'open' END AS status,
           s.parent_site_id, s.geom
      FROM retail_mid.ods_site s LEFT JOIN rdc r ON r.brand = s.brand AND r.site_id = s.site_id;
    UPDATE retail_mid.dim_site d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.valid_from < as_of AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d SET region = s.region
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_site (brand, site_id, valid_from, site_name, site_type, region, city, floor_area, opened_on,
                                     closed_on, status, parent_site_id, geom)
    SELECT s.brand, s.site_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_site o WHERE o.brand = s.brand AND o.site_id = s.site_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.site_name, s.kind, s.region, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_site d WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d
       SET site_name = s.site_name, site_type = s.kind, city = s.city, floor_area = s.floor_area, opened_on = s.opened_on,
           closed_on = s.closed_on, status = s.status, parent_site_id = s.parent_site_id, geom = s.geom
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id
       AND (d.site_name, d.site_type, d.city, d.floor_area, d.opened_on, d.closed_on, d.status, d.parent_site_id, d.geom::bytea)
           IS DISTINCT FROM (s.site_name, s.kind, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom::bytea);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DELETE FROM retail_mid.dim_site d
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.site_id = d.site_id);
    DROP TABLE rm_dim_src;

    -- customers (type 1): rebuilt where changed
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT c.brand, c.id_type, md5(c.customer_id) AS customer_id_hash, k.customer_key, coalesce(c.gender, 'U') AS gender,
           date_part('year', c.birth_date)::int4 AS birth_year,
           coalesce(nullif(btrim(coalesce(c.attributes ->> 'member_level', c.attributes ->> 'level')), ''), 'member') AS member_level,
           c.home_store_id, coalesce(c.guide_id, nullif(btrim(c.attributes ->> 'guide_id'), '')) AS guide_id,
           coalesce(nullif(btrim(c.register_channel), ''), 'unknown') AS register_channel, c.register_time::date AS register_date,
           coalesce(nullif(btrim(c.city), ''), 'unknown') AS city, c.province, c.country
      FROM retail_mid.ods_customer c
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                         AND k.id_value = btrim(c.customer_id);
    DELETE FROM retail_mid.dim_customer d
     -- (the key compared with = first: a hash join, not a nested loop over every pair of customers; the key columns
     -- are NOT NULL in dim_customer, so this is the same test)
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.id_type = d.id_type AND s.customer_id_hash = d.customer_id_hash
                         AND (s.brand, s.id_type, s.customer_id_hash, s.customer_key, s.gender, s.birth_year,
                               s.member_level, s.home_store_id, s.guide_id, s.register_channel, s.register_date, s.city,
                               s.province, s.country)
                             IS NOT DISTINCT FROM (d.brand, d.id_type, d.customer_id_hash, d.customer_key, d.gender, d.birth_year,
                               d.member_level, d.home_store_id, d.guide_id, d.register_channel, d.register_date, d.city,
                               d.province, d.country));
    INSERT INTO retail_mid.dim_customer
    SELECT * FROM rm_dim_src ON CONFLICT (brand, id_type, customer_id_hash) DO NOTHING;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DROP TABLE rm_dim_src;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.dim_refresh(date, date, date) IS 'Brings dim_product, dim_site and dim_customer up to date with the ODS (category and region changes seen on as_of open new versions from as_of); from_date/to_date: the refreshed order days, for first sale days. Idempotent; called by retail_mid.refresh; returns the rows written.';

-- Column documentation.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('dim_product', 'brand', 'Brand (tenant).'), ('dim_product', 'sku_id', 'SKU id.'),
        ('dim_product', 'valid_from', 'First day of this version (1900-01-01 for the first version).'),
        ('dim_product', 'valid_to', 'Day after the last day of this version (9999-12-31 for the current one).'),
        ('dim_product', 'is_current', 'Whether this is the current version.'), ('dim_product', 'sku_name', 'Product name.'),
        ('dim_product', 'category_l1', 'Category level 1 (department), ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l2', 'Category level 2, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l3', 'Category level 3, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l4', 'Category level 4, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'product_brand', 'Manufacturer''s or private-label brand, ''unknown'' when the source has none.'),
        ('dim_product', 'list_price', 'Regular shelf price, NULL when the source has none.'),
        ('dim_product', 'price_band', 'low, mid or high: tercile of the list price within brand x category_l1 (current versions); unknown without a price.'),
        ('dim_product', 'package_size', 'Package size as text.'),
        ('dim_product', 'launch_date', 'Launch date: ods_product.attributes.launch_date, else the first day with a sale seen by refresh.'),
        ('dim_product', 'status', 'ods_product.attributes.status, else active; delisted when the product left the ODS.'),
        ('dim_site', 'brand', 'Brand (tenant).'), ('dim_site', 'site_id', 'Store or warehouse id.'),
        ('dim_site', 'valid_from', 'First day of this version (1900-01-01 for the first version).'),
        ('dim_site', 'valid_to', 'Day after the last day of this version (9999-12-31 for the current one).'),
        ('dim_site', 'is_current', 'Whether this is the current version.'), ('dim_site', 'site_name', 'Name.'),
        ('dim_site', 'site_type', 'store, CDC, RDC or FDC.'),
        ('dim_site', 'region', 'Region: ods_site.attributes.region, else attributes.province, else the name of the regional DC (RDC) that replenishes the site, else unknown; history kept.'),
        ('dim_site', 'city', 'City, ''unknown'' when the source has none.'), ('dim_site', 'floor_area', 'Selling area in m2.'),
        ('dim_site', 'opened_on', 'Opening date.'), ('dim_site', 'closed_on', 'Closing date, NULL while open.'),
        ('dim_site', 'status', 'open, closed (closed_on passed) or planned (opened_on in the future), as of the last dim_refresh.'),
        ('dim_site', 'parent_site_id', 'Site that replenishes this one.'), ('dim_site', 'geom', 'Location, WGS84 point.'),
        ('dim_store', 'brand', 'Brand (tenant).'), ('dim_store', 'store_id', 'Store id.'),
        ('dim_campaign', 'brand', 'Brand.'), ('dim_campaign', 'campaign_id', 'Campaign, trimmed (the key of dwd_marketing_touch_di).'),
        ('dim_campaign', 'campaign_name', 'Campaign name, trimmed; NULL when the ODS gives none.'),
        ('dim_campaign', 'kind', 'Campaign kind (ods_campaign.kind), trimmed; NULL when none.'),
        ('dim_campaign', 'start_date', 'First day of the campaign.'), ('dim_campaign', 'end_date', 'Last day of the campaign.'),
        ('dim_store', 'valid_from', 'First day of this version.'), ('dim_store', 'valid_to', 'Day after the last day of this version.'),
        ('dim_store', 'is_current', 'Whether this is the current version.'), ('dim_store', 'store_name', 'Name.'),
        ('dim_store', 'region', 'Region (see dim_site.region); history kept.'), ('dim_store', 'city', 'City.'),
        ('dim_store', 'floor_area', 'Selling area in m2.'), ('dim_store', 'opened_on', 'Opening date.'),
        ('dim_store', 'closed_on', 'Closing date, NULL while open.'), ('dim_store', 'status', 'open, closed or planned.'),
        ('dim_store', 'parent_site_id', 'Front or regional DC that replenishes the store.'), ('dim_store', 'geom', 'Location, WGS84 point.'),
        ('dim_customer', 'brand', 'Brand (tenant).'), ('dim_customer', 'customer_id_hash', 'md5 of the brand''s identifier of the customer (ods_customer.customer_id), the value the hash masking rule shows: stable for joins, not the identifier.'),
        ('dim_customer', 'id_type', 'Type of the customer''s identifier (member_id, phone, email ...).'), ('dim_customer', 'customer_key', 'Dense customer key (the key of the DWD and DWS), NULL until the customer is keyed (first order or identifier).'),
        ('dim_customer', 'gender', 'F, M or U (unknown).'), ('dim_customer', 'birth_year', 'Year of birth (the date itself is not kept).'),
        ('dim_customer', 'member_level', 'Membership level: ods_customer.attributes.member_level (or level), else member.'),
        ('dim_customer', 'home_store_id', 'Store the customer belongs to.'), ('dim_customer', 'guide_id', 'Shopping guide in charge (ods_customer.guide_id or attributes.guide_id).'),
        ('dim_customer', 'register_channel', 'Where the customer registered, unknown when the source does not say.'),
        ('dim_customer', 'register_date', 'Day the customer became a member.'), ('dim_customer', 'city', 'City, unknown when the source does not say.'),
        ('dim_customer', 'province', 'Province or state.'), ('dim_customer', 'country', 'Country.'),
        ('dim_calendar', 'date_key', 'The day.'), ('dim_calendar', 'year', 'Calendar year.'), ('dim_calendar', 'quarter', 'Calendar quarter 1-4.'),
        ('dim_calendar', 'month', 'Calendar month 1-12.'), ('dim_calendar', 'month_name', 'Month name (English).'),
        ('dim_calendar', 'day_of_month', 'Day of the month.'), ('dim_calendar', 'day_of_year', 'Day of the year 1-366.'),
        ('dim_calendar', 'iso_year', 'ISO 8601 week-numbering year (the year of the week''s Thursday).'),
        ('dim_calendar', 'iso_week', 'ISO 8601 week 1-53 (weeks start on Monday).'), ('dim_calendar', 'iso_day_of_week', 'ISO day of week, 1 = Monday .. 7 = Sunday.'),
        ('dim_calendar', 'day_name', 'Day name (English).'), ('dim_calendar', 'is_weekend', 'Saturday or Sunday.'),
        ('dim_calendar', 'week_start', 'Monday of the ISO week.'), ('dim_calendar', 'month_start', 'First day of the month.'),
        ('dim_calendar', 'fiscal_year', 'NRF 4-5-4 fiscal year, named after the calendar year it starts in.'),
        ('dim_calendar', 'fiscal_quarter', 'Fiscal quarter 1-4 (13 weeks; the 4th has 14 in a 53-week year).'),
        ('dim_calendar', 'fiscal_month', 'Fiscal month 1-12 (1 = February): 4, 5 and 4 weeks per quarter; month 12 has 5 weeks in a 53-week year.'),
        ('dim_calendar', 'fiscal_week', 'Fiscal week 1-53, Sunday to Saturday.'), ('dim_calendar', 'fiscal_day_of_week', 'Day of the fiscal week, 1 = Sunday .. 7 = Saturday.'),
        ('dim_calendar', 'fiscal_year_start', 'First day (a Sunday) of the fiscal year.'),
        ('dim_calendar', 'fiscal_year_end', 'Last day of the fiscal year: the Saturday nearest 31 January.'),
        ('dim_calendar', 'fiscal_weeks_in_year', '52, or 53 in a long year.'),
        ('dim_holiday', 'country', 'ISO 3166 country code, or * for every country.'), ('dim_holiday', 'holiday_date', 'The day.'),
        ('dim_holiday', 'name', 'Name of the holiday.'), ('dim_holiday', 'shipped', 'Row shipped with the extension (created again by CREATE EXTENSION; a restore merges the dumped version onto it).'),
        ('dim_date', 'is_holiday', 'Whether dim_holiday has a holiday on the day (any country).'),
        ('dim_date', 'holidays', 'The day''s holidays as ''country: name'' separated by ''; '', empty when none.')) AS c(tbl, col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.%I.%I IS %L', r.tbl, r.col, r.txt);
    END LOOP;
    -- dim_date repeats the calendar's columns
    FOR r IN SELECT a.attname, col_description('retail_mid.dim_calendar'::regclass, a.attnum) AS txt
               FROM pg_attribute a WHERE a.attrelid = 'retail_mid.dim_calendar'::regclass AND a.attnum > 0 LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.dim_date.%I IS %L', r.attname, r.txt);
    END LOOP;
END $$;
