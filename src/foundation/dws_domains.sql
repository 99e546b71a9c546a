-- foundation/dws_domains.sql: the summary layer of the non-trade domains (issue 15): behaviour per customer,
-- campaigns, inventory per site and SKU, members per store and channel. Each _1d table is rebuilt for the
-- refreshed days by retail_mid.refresh_domains (called by retail_mid.refresh in its transaction): delete the days,
-- insert them again from the DWD / ODS / trade DWS, so refreshing twice gives the same rows and a late row for a
-- past day is picked up by refreshing that day again.

CREATE TABLE retail_mid.dws_behavior_customer_1d (
    dt            date   NOT NULL,
    brand         text   NOT NULL,
    customer_key  int4   NOT NULL,
    channel       text   NOT NULL,
    category_l1   text   NOT NULL,
    views         bigint NOT NULL,
    carts         bigint NOT NULL,
    favorites     bigint NOT NULL,
    shares        bigint NOT NULL,
    events        bigint NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, customer_key, channel,
                           -- category_l1) and an index on (brand, customer_key) (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dws_behavior_customer_1d IS 'Behaviour per customer, day, channel and object category (from dwd_behavior_event_di; counts are sums of event_count).';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_behavior_customer_1d', '');
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.channel IS 'Channel, ''(none)'' when the event has none.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.category_l1 IS 'Top-level category (ods_product.category_l1) of the object when it is a SKU (object_attribute sku_id); ''(none)'' for other objects, ''(unknown)'' for a SKU without a category.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.views IS 'View events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.carts IS 'Add-to-cart events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.favorites IS 'Favourite events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.shares IS 'Share events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.events IS 'All events of any type.';

CREATE TABLE retail_mid.dws_marketing_campaign_1d (
    dt          date   NOT NULL,
    brand       text   NOT NULL,
    campaign_id text   NOT NULL,
    channel     text   NOT NULL,
    sent        bigint NOT NULL,
    delivered   bigint NOT NULL,
    opened      bigint NOT NULL,
    clicked     bigint NOT NULL,
    redeemed    bigint NOT NULL,
    redemptions bigint NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, campaign_id, channel)
COMMENT ON TABLE retail_mid.dws_marketing_campaign_1d IS 'Campaign funnel per campaign, channel and day (from dwd_marketing_touch_di): distinct customers per touch type on the day.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_marketing_campaign_1d', '');
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.dt IS 'Business date of the touches.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.channel IS 'Channel of the touches.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.sent IS 'Distinct customers with a sent touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.delivered IS 'Distinct customers with evidence of delivery: an exposed, clicked or redeemed touch (the ODS has no delivery receipt, so this is a lower bound).';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.opened IS 'Distinct customers with an exposed touch (opened / seen).';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.clicked IS 'Distinct customers with a clicked touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.redeemed IS 'Distinct customers with a redeemed touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.redemptions IS 'Redeemed touches (a customer may redeem several coupons).';

CREATE TABLE retail_mid.dws_inventory_site_sku_1d (
    dt                  date    NOT NULL,
    brand               text    NOT NULL,
    site_id             text    NOT NULL,
    site_kind           text    NOT NULL,
    sku_id              text    NOT NULL,
    on_hand             numeric(14,3) NOT NULL,
    on_order            numeric(14,3) NOT NULL,
    reserved            numeric(14,3) NOT NULL,
    available_to_promise numeric(14,3) NOT NULL,
    mean_daily_sales_28d numeric(18,6) NOT NULL,
    days_of_cover       numeric(14,2),
    stock_out           boolean NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, site_id, sku_id) and an index
                           -- on (brand, site_id, sku_id, dt): consumers look up a site x SKU's latest day on or before a
                           -- date (replenishment) (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dws_inventory_site_sku_1d IS 'Stock per site (store or warehouse) x SKU on each day with an ODS inventory snapshot, with open inbound orders, available to promise and days of cover.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_inventory_site_sku_1d', '');
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.dt IS 'Snapshot date (stock at the end of the day).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.site_id IS 'Site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.site_kind IS 'ods_site.kind: store, CDC, RDC or FDC; ''(unknown)'' for a site not in ods_site.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.on_hand IS 'Units on hand (snapshot).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.on_order IS 'Units on open inbound orders (ods_inbound_shipment ordered on or before dt, not received by dt).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.reserved IS 'Units reserved (snapshot).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.available_to_promise IS 'greatest(on_hand - reserved, 0): what can be promised from stock now (open orders are not promised).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.mean_daily_sales_28d IS 'Net units sold at the site (dws_trade_sku_store_1d.quantity, store_id = site_id) over the 28 days ending dt, divided by 28; 0 for warehouses.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.days_of_cover IS 'on_hand / (net units sold in the 28 days ending dt / 28), rounded to 2 decimals; NULL when those sales are 0 or less (cover undefined).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.stock_out IS 'on_hand <= 0.';

CREATE TABLE retail_mid.dws_member_1d (
    dt              date   NOT NULL,
    brand           text   NOT NULL,
    store_id        text   NOT NULL,
    channel         text   NOT NULL,
    new_members     bigint NOT NULL,
    active_members  bigint NOT NULL,
    lapsed_members  bigint NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (dt, brand, store_id, channel)
COMMENT ON TABLE retail_mid.dws_member_1d IS 'Members (ods_customer rows) per home store, register channel and day: new, active (a sale day in the 90 days ending dt) and lapsed (sales before, none in those 90 days).';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_member_1d', '');
COMMENT ON COLUMN retail_mid.dws_member_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_member_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_member_1d.store_id IS 'Member''s home store (ods_customer.home_store_id), ''(none)'' when unknown.';
COMMENT ON COLUMN retail_mid.dws_member_1d.channel IS 'Member''s register channel (ods_customer.register_channel), ''(none)'' when unknown.';
COMMENT ON COLUMN retail_mid.dws_member_1d.new_members IS 'Members registered on dt (register_time::date = dt).';
COMMENT ON COLUMN retail_mid.dws_member_1d.active_members IS 'Members with a sale day (dws_trade_customer_1d.orders > 0) in the 90 days ending dt (dt - 89 .. dt).';
COMMENT ON COLUMN retail_mid.dws_member_1d.lapsed_members IS 'Members with a sale day before dt - 89 and none from dt - 89 to dt.';

-- Rebuilds the four _1d tables for [from_date, to_date]; returns the rows written. Reads the domain DWD (build it
-- first), the trade DWS (days of cover, member activity) and the ODS (snapshots, shipments, sites, customers).
CREATE FUNCTION retail_mid.build_dws_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint; v_inv_from date;
BEGIN
    -- issue 13: the monthly partitions of the days written
    PERFORM retail_mid.ensure_partitions(t, from_date, to_date)
       FROM unnest(ARRAY['retail_mid.dws_behavior_customer_1d', 'retail_mid.dws_marketing_campaign_1d',
                         'retail_mid.dws_inventory_site_sku_1d', 'retail_mid.dws_member_1d']::regclass[]) t;
    DELETE FROM retail_mid.dws_behavior_customer_1d WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_behavior_customer_1d
    SELECT e.dt, e.brand, e.customer_key, e.channel,
           CASE WHEN e.object_attribute = 'sku_id' THEN coalesce(p.category_l1, '(unknown)') ELSE '(none)' END,
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'view'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'cart'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'favorite'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'share'), 0),
           sum(e.event_count)
      FROM retail_mid.dwd_behavior_event_di e
      LEFT JOIN retail_mid.ods_product p ON e.object_attribute = 'sku_id' AND p.brand = e.brand AND p.sku_id = e.object_value
     WHERE e.dt BETWEEN from_date AND to_date
     GROUP BY 1, 2, 3, 4, 5;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_marketing_campaign_1d WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_marketing_campaign_1d
    SELECT dt, brand, campaign_id, channel,
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'sent'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type IN ('exposed', 'clicked', 'redeemed')),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'exposed'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'clicked'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'redeemed'),
           count(*) FILTER (WHERE touch_type = 'redeemed')
      FROM retail_mid.dwd_marketing_touch_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, campaign_id, channel;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- issue 13: a day's days of cover read the 28 days of trade ending it; a day whose 28 days reach before the history
    -- kept by retain keeps the row computed when those days were there (rebuilt now, it would miss the dropped sales)
    v_inv_from := greatest(from_date, (SELECT h.kept_from + 27 FROM retail_mid.history_retention h));
    IF v_inv_from > from_date THEN
        RAISE NOTICE 'refresh: inventory days % .. % kept as they are (their 28 days of sales reach before the retained history, kept from %)',
            from_date, least(v_inv_from - 1, to_date), v_inv_from - 27;
    END IF;
    DELETE FROM retail_mid.dws_inventory_site_sku_1d WHERE dt BETWEEN v_inv_from AND to_date;
    INSERT INTO retail_mid.dws_inventory_site_sku_1d
    SELECT i.snapshot_date, i.brand, i.site_id, coalesce(s.kind, '(unknown)'), i.sku_id, i.on_hand, coalesce(o.on_order, 0),
           i.reserved, greatest(i.on_hand - i.reserved, 0), round(coalesce(d.sold, 0) / 28.0, 6),
           CASE WHEN d.sold > 0 THEN round(i.on_hand * 28 / d.sold, 2) END, i.on_hand <= 0
      FROM retail_mid.ods_inventory_snapshot i
      LEFT JOIN retail_mid.ods_site s ON s.brand = i.brand AND s.site_id = i.site_id
      LEFT JOIN LATERAL (SELECT sum(sh.quantity) AS on_order FROM retail_mid.dwd_inventory_inbound_di sh
                          WHERE sh.brand = i.brand AND sh.site_id = i.site_id AND sh.sku_id = i.sku_id
                            AND sh.ordered_on <= i.snapshot_date
                            AND (sh.received_on IS NULL OR sh.received_on > i.snapshot_date)) o ON true
      LEFT JOIN LATERAL (SELECT sum(t.quantity) AS sold FROM retail_mid.dws_trade_sku_store_1d t
                          WHERE t.brand = i.brand AND t.store_id = i.site_id AND t.sku_id = i.sku_id
                            AND t.dt > i.snapshot_date - 28 AND t.dt <= i.snapshot_date) d ON true
     WHERE i.snapshot_date BETWEEN v_inv_from AND to_date;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    -- inbound lines ordered in the days refreshed count as open orders on later snapshot days too: those days'
    -- on_order of the pairs whose lines build_dwd_domains rewrote (rm_inbound_touched) follows them
    IF to_regclass('pg_temp.rm_inbound_touched') IS NOT NULL THEN
        UPDATE retail_mid.dws_inventory_site_sku_1d i SET on_order = x.on_order
          FROM (SELECT l.dt, l.brand, l.site_id, l.sku_id,
                       coalesce((SELECT sum(sh.quantity) FROM retail_mid.dwd_inventory_inbound_di sh
                                  WHERE sh.brand = l.brand AND sh.site_id = l.site_id AND sh.sku_id = l.sku_id
                                    AND sh.ordered_on <= l.dt AND (sh.received_on IS NULL OR sh.received_on > l.dt)), 0) AS on_order
                  FROM retail_mid.dws_inventory_site_sku_1d l
                 WHERE l.dt > to_date
                   AND EXISTS (SELECT 1 FROM pg_temp.rm_inbound_touched t
                                WHERE t.brand = l.brand AND t.site_id = l.site_id AND t.sku_id = l.sku_id)) x
         WHERE i.dt = x.dt AND i.brand = x.brand AND i.site_id = x.site_id AND i.sku_id = x.sku_id AND i.on_order <> x.on_order;
        GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
        DROP TABLE pg_temp.rm_inbound_touched;
    END IF;

    -- Member activity as intervals: a sale day s followed by the next sale day s2 makes the member active on
    -- [s, least(s2 - 1, s + 89)] and lapsed on [s + 90, s2 - 1] (open-ended after the last sale day).
    DELETE FROM retail_mid.dws_member_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_member ON COMMIT DROP AS
    SELECT c.brand, k.customer_key, coalesce(nullif(btrim(c.home_store_id), ''), '(none)') AS store_id,
           coalesce(nullif(btrim(c.register_channel), ''), '(none)') AS channel, c.register_time::date AS registered
      FROM retail_mid.ods_customer c
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                     AND k.id_value = retail_mid.identifier_value(c.customer_id);
    CREATE TEMP TABLE rm_member_state ON COMMIT DROP AS
    SELECT m.brand, m.store_id, m.channel, x.lo, x.hi, x.state
      FROM (SELECT d.brand, d.customer_key, d.dt AS s,
                   lead(d.dt) OVER (PARTITION BY d.brand, d.customer_key ORDER BY d.dt) AS s2
              FROM (SELECT c.brand, c.customer_key, c.dt FROM retail_mid.dws_trade_customer_1d c
                     WHERE c.orders > 0 AND c.dt <= to_date
                    -- issue 13: the last sale day of the days dropped by retain (the only one of them that can make
                    -- a member active or lapsed on a kept day)
                    UNION ALL
                    SELECT r.brand, r.customer_key, r.last_sale_date FROM retail_mid.dws_trade_customer_retained r
                     WHERE r.last_sale_date IS NOT NULL AND r.last_sale_date <= to_date) d) a
      JOIN rm_member m ON m.brand = a.brand AND m.customer_key = a.customer_key,
           LATERAL (VALUES (a.s, least(coalesce(a.s2, 'infinity'::date) - 1, a.s + 89), 'active'),
                           (a.s + 90, coalesce(a.s2, 'infinity'::date) - 1, 'lapsed')) x(lo, hi, state)
     WHERE x.lo <= x.hi AND x.hi >= from_date AND x.lo <= to_date;
    INSERT INTO retail_mid.dws_member_1d
    SELECT dt, brand, store_id, channel, sum(new_members), sum(active_members), sum(lapsed_members)
      FROM (SELECT registered AS dt, brand, store_id, channel, count(*) AS new_members, 0 AS active_members, 0 AS lapsed_members
              FROM rm_member WHERE registered BETWEEN from_date AND to_date
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT g.dt::date, s.brand, s.store_id, s.channel, 0,
                   count(*) FILTER (WHERE s.state = 'active'), count(*) FILTER (WHERE s.state = 'lapsed')
              FROM rm_member_state s,
                   LATERAL generate_series(greatest(s.lo, from_date), least(s.hi, to_date), interval '1 day') g(dt)
             GROUP BY 1, 2, 3, 4) u
     GROUP BY dt, brand, store_id, channel;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DROP TABLE rm_member, rm_member_state;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_domains(date, date) IS 'Rebuilds dws_behavior_customer_1d, dws_marketing_campaign_1d, dws_inventory_site_sku_1d and dws_member_1d for the given days; called by retail_mid.refresh_domains.';

-- The domain layer in one call, for refresh (and for a first build after upgrading from 1.0.0).
CREATE FUNCTION retail_mid.refresh_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_dwd bigint; v_dws bigint;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'refresh_domains dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date OR from_date = '-infinity' OR to_date = 'infinity' OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'refresh_domains range must be non-empty, finite and at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- issue 13: days dropped by retain cannot be rebuilt (as in refresh)
    IF from_date < (SELECT h.kept_from FROM retail_mid.history_retention h) THEN
        RAISE EXCEPTION 'refresh_domains range starts at %, before the retained history (kept from %)', from_date,
                        (SELECT h.kept_from FROM retail_mid.history_retention h)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retail_mid.retain dropped the days before it.',
                  HINT = 'Refresh from the first kept day on.';
    END IF;
    v_dwd := retail_mid.build_dwd_domains(from_date, to_date);
    RAISE NOTICE 'refresh: % behaviour/touch DWD rows written; building domain DWS', v_dwd;
    v_dws := retail_mid.build_dws_domains(from_date, to_date);
    RAISE NOTICE 'refresh: % domain DWS rows written', v_dws;
    -- what was read, for the consumers' freshness check (domain_require_fresh)
    DELETE FROM retail_mid.domain_refresh_state s WHERE s.dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.domain_refresh_state (domain, brand, dt, ods_rows, ods_digest)
    SELECT d.domain, d.brand, d.dt, d.ods_rows, d.ods_digest FROM retail_mid.domain_ods_digest('dated', NULL, from_date, to_date) d;
    RETURN v_dwd + v_dws;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_domains(date, date) IS 'Rebuilds the behaviour, marketing, inventory and member DWD/DWS for the given days (after the trade DWS, which it reads) and records what it read in domain_refresh_state (the consumers'' freshness check); called by retail_mid.refresh in its transaction; returns rows written.';

-- ----------------------------------------------------------------- freshness of the domain layer (issue 15)
-- A consumer of the DWD/DWS must not read a layer that is behind the ODS. refresh_domains records, per domain,
-- brand and day it rebuilt, a digest of the ODS rows it read (row count and the sum of a hash of every whole row,
-- load_id included), refresh_dims the same per brand for the sites and products the DIM layer was built from;
-- domain_stale_days compares the ODS now with that record, so a new, changed, late or deleted row is noticed. Consumers that load the ODS
-- themselves (load_media_feedback) refresh the days they loaded; consumers that only read (reach, the behaviour and
-- campaign tags, replenishment) call domain_require_fresh, which fails with 55000 and names the refresh to run.
CREATE TABLE retail_mid.domain_refresh_state (
    domain       text        NOT NULL CHECK (domain IN ('behavior', 'touch', 'inventory', 'inbound', 'site', 'product')),
    brand        text        NOT NULL,
    dt           date        NOT NULL,
    ods_rows     bigint      NOT NULL,
    ods_digest   numeric     NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, brand, dt)
);
COMMENT ON TABLE retail_mid.domain_refresh_state IS 'What refresh_domains read from the ODS, per domain (behavior: ods_behavior_event, touch: ods_campaign_touch, inventory: ods_inventory_snapshot, inbound: ods_inbound_shipment), brand and day, and what refresh_dims read (site: ods_site, product: ods_product; one row per brand, day -infinity): compared with the ODS now by domain_stale_days so that consumers do not read a stale DWD/DWS/DIM.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.domain_refresh_state', '');
COMMENT ON COLUMN retail_mid.domain_refresh_state.domain IS 'behavior (dwd_behavior_event_di, dws_behavior_customer_1d), touch (dwd_marketing_touch_di, dws_marketing_campaign_1d), inventory (dws_inventory_site_sku_1d), inbound (dwd_inventory_inbound_di, the open orders of dws_inventory_site_sku_1d), site (dim_site) or product (dim_product).';
COMMENT ON COLUMN retail_mid.domain_refresh_state.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.dt IS 'Day (event_time, touched_at, snapshot_date or ordered_on); -infinity for site and product, which are not split by day.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.ods_rows IS 'ODS rows of the brand and day when the layer was rebuilt.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.ods_digest IS 'Sum of hashtextextended(row::text, 0) over those rows: changes when a row is added, removed, changed or reloaded.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.refreshed_at IS 'When refresh_domains rebuilt the day (refresh_dims the dimension).';

-- The ODS side of the digest, per domain, brand and day (brand NULL: every brand; a NULL bound: unbounded). which:
-- one domain, * (all) or dated (the four split by day, what refresh_domains records). site and product are one row
-- per brand on day -infinity, whatever the bounds.
CREATE FUNCTION retail_mid.domain_ods_digest(which text, of_brand text, from_date date, to_date date)
RETURNS TABLE (domain text, brand text, dt date, ods_rows bigint, ods_digest numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE d text := which; b text := of_brand; lo date := coalesce(from_date, '-infinity'); hi date := coalesce(to_date, 'infinity');
BEGIN
    -- one table per domain, read only when asked for (a caller may read the snapshots but not the events)
    IF d IN ('behavior', '*', 'dated') THEN
        RETURN QUERY
        SELECT 'behavior'::text, e.brand, e.event_time::date, count(*), sum(hashtextextended(e::text, 0))
          FROM retail_mid.ods_behavior_event e
         WHERE (b IS NULL OR e.brand = b) AND e.event_time >= lo AND e.event_time < hi + 1
         GROUP BY e.brand, e.event_time::date;
    END IF;
    IF d IN ('touch', '*', 'dated') THEN
        RETURN QUERY
        SELECT 'touch'::text, t.brand, t.touched_at::date, count(*), sum(hashtextextended(t::text, 0))
          FROM retail_mid.ods_campaign_touch t
         WHERE (b IS NULL OR t.brand = b) AND t.touched_at >= lo AND t.touched_at < hi + 1
         GROUP BY t.brand, t.touched_at::date;
    END IF;
    IF d IN ('inventory', '*', 'dated') THEN
        RETURN QUERY
        SELECT 'inventory'::text, i.brand, i.snapshot_date, count(*), sum(hashtextextended(i::text, 0))
          FROM retail_mid.ods_inventory_snapshot i
         WHERE (b IS NULL OR i.brand = b) AND i.snapshot_date >= lo AND i.snapshot_date <= hi
         GROUP BY i.brand, i.snapshot_date;
    END IF;
    IF d IN ('inbound', '*', 'dated') THEN
        RETURN QUERY
        SELECT 'inbound'::text, i.brand, i.ordered_on, count(*), sum(hashtextextended(i::text, 0))
          FROM retail_mid.ods_inbound_shipment i
         WHERE (b IS NULL OR i.brand = b) AND i.ordered_on >= lo AND i.ordered_on <= hi
         GROUP BY i.brand, i.ordered_on;
    END IF;
    IF d IN ('site', '*') THEN
        RETURN QUERY
        SELECT 'site'::text, x.brand, '-infinity'::date, count(*), sum(hashtextextended(x::text, 0))
          FROM retail_mid.ods_site x WHERE b IS NULL OR x.brand = b GROUP BY x.brand;
    END IF;
    IF d IN ('product', '*') THEN
        RETURN QUERY
        SELECT 'product'::text, x.brand, '-infinity'::date, count(*), sum(hashtextextended(x::text, 0))
          FROM retail_mid.ods_product x WHERE b IS NULL OR x.brand = b GROUP BY x.brand;
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.domain_ods_digest(text, text, date, date) IS 'Rows and digest (sum of hashtextextended of every whole row) of the ODS per domain (which: behavior, touch, inventory, inbound, site, product, * for all or dated for the first four), brand (of_brand; NULL: all) and day in [from_date, to_date] (NULL: unbounded; site and product: one row per brand on day -infinity, whatever the bounds), reading only the tables of the domains asked for; what refresh_domains and refresh_dims record in domain_refresh_state.';

-- Days on which the domain layer is behind the ODS: the ODS digest differs from the recorded one (new, changed
-- or removed rows), or ODS rows were never refreshed.
CREATE FUNCTION retail_mid.domain_stale_days(domain text, brand text DEFAULT NULL, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (domain text, brand text, dt date, ods_rows bigint, refreshed_rows bigint, refreshed_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(o.domain, s.domain), coalesce(o.brand, s.brand), coalesce(o.dt, s.dt), coalesce(o.ods_rows, 0), s.ods_rows, s.refreshed_at
      FROM retail_mid.domain_ods_digest(domain_stale_days.domain, domain_stale_days.brand, domain_stale_days.from_date, domain_stale_days.to_date) o
      FULL JOIN (SELECT r.* FROM retail_mid.domain_refresh_state r
                  WHERE domain_stale_days.domain IN (r.domain, '*')
                    AND (domain_stale_days.brand IS NULL OR r.brand = domain_stale_days.brand)
                    AND (r.domain IN ('site', 'product')
                         OR r.dt >= coalesce(domain_stale_days.from_date, '-infinity'::date)
                            AND r.dt <= coalesce(domain_stale_days.to_date, 'infinity'::date))) s
        ON s.domain = o.domain AND s.brand = o.brand AND s.dt = o.dt
     WHERE o.ods_rows IS DISTINCT FROM s.ods_rows OR o.ods_digest IS DISTINCT FROM s.ods_digest
     ORDER BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.domain_stale_days(text, text, date, date) IS 'Days on which a domain (behavior, touch, inventory, inbound, site, product or *) of a brand (NULL: all) is behind the ODS in [from_date, to_date] (NULL: unbounded): rows added, changed, removed or reloaded since refresh_domains last rebuilt the day (refresh_dims the site or product dimension: one row on day -infinity, whatever the bounds), or never refreshed; empty when the layer is current.';

-- For consumers: true when the layer is current for the brand and days, else 55000 with the refresh to run.
CREATE FUNCTION retail_mid.domain_require_fresh(domain text, brand text, from_date date, to_date date)
RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; lo date; hi date; v_dims text;
BEGIN
    IF domain IS NULL THEN
        RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF domain NOT IN ('behavior', 'touch', 'inventory', 'inbound', 'site', 'product', '*') THEN
        RAISE EXCEPTION 'unknown domain "%"', domain USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use behavior, touch, inventory, inbound, site, product or *.';
    END IF;
    SELECT count(*) FILTER (WHERE s.domain NOT IN ('site', 'product')),
           min(s.dt) FILTER (WHERE s.domain NOT IN ('site', 'product')), max(s.dt) FILTER (WHERE s.domain NOT IN ('site', 'product')),
           string_agg(DISTINCT s.domain, ', ') FILTER (WHERE s.domain IN ('site', 'product'))
      INTO n, lo, hi, v_dims FROM retail_mid.domain_stale_days(domain, brand, from_date, to_date) s;
    IF v_dims IS NOT NULL THEN
        RAISE EXCEPTION 'the % dimension of brand % is behind the ODS', v_dims, coalesce(brand, '*')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The ODS rows of that dimension changed (or were never read) after retail_mid.refresh_dims last rebuilt the DIM layer; see retail_mid.domain_stale_days.',
                  HINT = 'Run SELECT retail_mid.refresh_dims(); (or retail_mid.refresh) and try again.';
    END IF;
    IF n > 0 THEN
        RAISE EXCEPTION 'the % layer of brand % is behind the ODS on % day(s) between % and %', domain, coalesce(brand, '*'), n, to_char(lo, 'YYYY-MM-DD'), to_char(hi, 'YYYY-MM-DD')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The ODS rows of those days changed (or were never refreshed) after retail_mid.refresh_domains last rebuilt them; see retail_mid.domain_stale_days.',
                  HINT = format('Run SELECT retail_mid.refresh_domains(%L, %L); (or retail_mid.refresh over those days) and try again.', to_char(lo, 'YYYY-MM-DD'), to_char(hi, 'YYYY-MM-DD'));
    END IF;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION retail_mid.domain_require_fresh(text, text, date, date) IS 'For consumers of the domain DWD/DWS and DIM: true when domain_stale_days is empty for the domain (behavior, touch, inventory, inbound, site, product or *), brand (NULL: all) and days (NULL bounds: unbounded), else an error with SQLSTATE 55000 whose hint names the call to run (refresh_domains over the stale days, or refresh_dims).';

-- The DIM layer with its record: dim_refresh, then the digest of the sites and products it read, so that a consumer
-- of dim_site / dim_product (replenishment) notices an ODS change made after it. retail_mid.refresh calls it.
CREATE FUNCTION retail_mid.refresh_dims(as_of date DEFAULT CURRENT_DATE, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    n := retail_mid.dim_refresh(as_of, from_date, to_date);
    DELETE FROM retail_mid.domain_refresh_state s WHERE s.domain IN ('site', 'product');
    INSERT INTO retail_mid.domain_refresh_state (domain, brand, dt, ods_rows, ods_digest)
    SELECT d.domain, d.brand, d.dt, d.ods_rows, d.ods_digest FROM retail_mid.domain_ods_digest('site', NULL, NULL, NULL) d
    UNION ALL
    SELECT d.domain, d.brand, d.dt, d.ods_rows, d.ods_digest FROM retail_mid.domain_ods_digest('product', NULL, NULL, NULL) d;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_dims(date, date, date) IS 'retail_mid.dim_refresh (same arguments), then records the digest of the ODS sites and products it read in domain_refresh_state (domains site and product), which consumers of dim_site and dim_product check (domain_require_fresh); called by retail_mid.refresh; returns the rows dim_refresh wrote.';
