-- foundation/dwd_domains.sql: the detail layer of the non-trade domains (issue 15): behaviour events and campaign
-- touches, keyed and de-duplicated, and inbound shipments, rebuilt day by day from the ODS by retail_mid.refresh
-- (refresh_domains).
--
-- Identifier to key: one rule everywhere, retail_mid.identifier_value (trim; blank = no identifier), the same
-- rule as the trade DWD (btrim) and assign_customer_keys. Identifiers first seen in the refreshed days get their
-- keys first, as in build_dwd_trade; rows without a usable identifier are left out of the DWD.

CREATE FUNCTION retail_mid.identifier_value(id_value text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NULLIF(pg_catalog.btrim(id_value), '');
COMMENT ON FUNCTION retail_mid.identifier_value(text) IS 'The customer identifier as the key dictionary spells it: trimmed, NULL when blank. Every mapping of ODS identifiers to customer keys (trade, behaviour and touch DWD, keyed views, reach) compares retail_mid.customer_key.id_value with it.';

CREATE TABLE retail_mid.dwd_behavior_event_di (
    dt               date      NOT NULL,
    brand            text      NOT NULL,
    customer_key     int4      NOT NULL,
    event_time       timestamp NOT NULL,
    event_type       text      NOT NULL,
    object_attribute text,
    object_value     text,
    channel          text      NOT NULL,
    event_count      int       NOT NULL,
    amount           numeric(14,4)
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with indexes on dt and (brand, customer_key) (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dwd_behavior_event_di IS 'Behaviour events with the customer key of their identifier, one row per distinct ODS event (exact duplicates, i.e. same identifier, time, type, object, channel, count and amount, are kept once; events with a blank identifier are left out); rebuilt per day by retail_mid.refresh.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_behavior_event_di', '');
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.dt IS 'Business date of the event (event_time::date).';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.customer_key IS 'Customer key of the event''s identifier (retail_mid.customer_key, via retail_mid.identifier_value).';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_time IS 'When.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_type IS 'exposure, click, view, search, favorite, cart, register, follow, review, share or purchase.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.object_attribute IS 'Kind of object (e.g. sku_id, campaign), NULL when none.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.object_value IS 'The object (e.g. the SKU id), trimmed.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.channel IS 'Channel, ''(none)'' when the source gives none.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_count IS 'How many events the row stands for.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.amount IS 'Amount, if any.';

CREATE TABLE retail_mid.dwd_marketing_touch_di (
    dt           date      NOT NULL,
    brand        text      NOT NULL,
    campaign_id  text      NOT NULL,
    customer_key int4      NOT NULL,
    channel      text      NOT NULL,
    touched_at   timestamp NOT NULL,
    touch_type   text      NOT NULL,
    coupon_id    text
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with indexes on dt and (brand, campaign_id) (retail_mid.ensure_partitions)
COMMENT ON TABLE retail_mid.dwd_marketing_touch_di IS 'Campaign touches with the customer key of the touched identifier, one row per distinct ODS touch (exact duplicates kept once; touches without a time or with a blank identifier are left out); rebuilt per day by retail_mid.refresh.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_marketing_touch_di', '');
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.dt IS 'Business date of the touch (touched_at::date).';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.campaign_id IS 'Campaign (ods_campaign), trimmed.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.customer_key IS 'Customer key of the touched identifier (retail_mid.customer_key, via retail_mid.identifier_value).';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.channel IS 'Channel, ''(none)'' when the source gives none.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.touched_at IS 'When.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.touch_type IS 'sent, exposed, clicked or redeemed.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.coupon_id IS 'Coupon redeemed or offered, if any.';

CREATE TABLE retail_mid.dwd_inventory_inbound_di (
    dt             date          NOT NULL,
    brand          text          NOT NULL,
    shipment_id    text          NOT NULL,
    site_id        text          NOT NULL,
    sku_id         text          NOT NULL,
    supplier_id    text,
    ordered_on     date          NOT NULL,
    expected_on    date,
    received_on    date,
    quantity       numeric(14,3) NOT NULL,
    lead_time_days int4,
    PRIMARY KEY (dt, brand, shipment_id, site_id, sku_id)
);
-- replenishment looks up the latest shipment of a site (x SKU), the shipments of a source, and the open orders of
-- a site x SKU (demand/replenish.sql, dws_inventory_site_sku_1d)
CREATE INDEX ON retail_mid.dwd_inventory_inbound_di (brand, site_id, sku_id, ordered_on);
CREATE INDEX ON retail_mid.dwd_inventory_inbound_di (brand, supplier_id, site_id);
COMMENT ON TABLE retail_mid.dwd_inventory_inbound_di IS 'Inbound shipment lines (purchase orders and transfers into a site), one row per ODS line (ods_inbound_shipment), by order day; the supplier is NULL when the source gives none or a blank one; rebuilt per order day by retail_mid.refresh. What replenishment reads for lead times, sources and open orders.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_inventory_inbound_di', '');
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.dt IS 'Business date of the line: the order day (ordered_on).';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.shipment_id IS 'Shipment (purchase order or transfer).';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.site_id IS 'Receiving site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.supplier_id IS 'Supplier or shipping site, trimmed; NULL when the ODS gives none or a blank one.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.ordered_on IS 'Day the line was ordered.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.expected_on IS 'Day it is expected, if known.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.received_on IS 'Day it was received; NULL while open.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.quantity IS 'Units ordered.';
COMMENT ON COLUMN retail_mid.dwd_inventory_inbound_di.lead_time_days IS 'received_on - ordered_on in days; NULL while open.';

-- Rebuilds the three DWD tables for [from_date, to_date]; returns the rows written. The (brand, site, SKU) pairs
-- whose inbound lines were rewritten are left in the temporary table rm_inbound_touched for build_dws_domains
-- (their open orders on later snapshot days change too).
CREATE FUNCTION retail_mid.build_dwd_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint;
BEGIN
    PERFORM retail_mid.assign_customer_keys(array_agg(x.id_type), array_agg(x.id_value), array_agg(x.brand))
       FROM (SELECT DISTINCT e.id_type, retail_mid.identifier_value(e.id_value) AS id_value, e.brand
               FROM retail_mid.ods_behavior_event e
              WHERE e.event_time >= from_date AND e.event_time < to_date + 1
                AND retail_mid.identifier_value(e.id_value) IS NOT NULL
             UNION
             SELECT DISTINCT t.id_type, retail_mid.identifier_value(t.id_value), t.brand
               FROM retail_mid.ods_campaign_touch t
              WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1
                AND retail_mid.identifier_value(t.id_value) IS NOT NULL) x
      WHERE NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                         WHERE k.id_type = x.id_type AND k.issuer = retail_mid.customer_key_issuer(x.id_type, x.brand)
                           AND k.id_value = x.id_value);

    -- issue 13: the monthly partitions of the days written
    PERFORM retail_mid.ensure_partitions(t, from_date, to_date)
       FROM unnest(ARRAY['retail_mid.dwd_behavior_event_di', 'retail_mid.dwd_marketing_touch_di']::regclass[]) t;
    DELETE FROM retail_mid.dwd_behavior_event_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_behavior_event_di
    SELECT DISTINCT e.event_time::date, e.brand, k.customer_key, e.event_time, e.event_type, btrim(e.object_attribute),
           btrim(e.object_value), coalesce(nullif(btrim(e.channel), ''), '(none)'), e.event_count, e.amount
      FROM retail_mid.ods_behavior_event e
      JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                AND k.id_value = retail_mid.identifier_value(e.id_value)
     WHERE e.event_time >= from_date AND e.event_time < to_date + 1;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM retail_mid.dwd_marketing_touch_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_marketing_touch_di
    SELECT DISTINCT t.touched_at::date, t.brand, btrim(t.campaign_id), k.customer_key,
           coalesce(nullif(btrim(t.channel), ''), '(none)'), t.touched_at, t.touch_type, btrim(t.coupon_id)
      FROM retail_mid.ods_campaign_touch t
      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = retail_mid.identifier_value(t.id_value)
     WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- inbound shipments by order day; the pairs whose lines were deleted or written, before and after
    CREATE TEMP TABLE IF NOT EXISTS rm_inbound_touched (brand text, site_id text, sku_id text) ON COMMIT DROP;
    WITH d AS (DELETE FROM retail_mid.dwd_inventory_inbound_di i WHERE i.dt BETWEEN from_date AND to_date
               RETURNING i.brand, i.site_id, i.sku_id)
    INSERT INTO rm_inbound_touched SELECT DISTINCT d.brand, d.site_id, d.sku_id FROM d;
    INSERT INTO retail_mid.dwd_inventory_inbound_di
    SELECT i.ordered_on, i.brand, i.shipment_id, i.site_id, i.sku_id, nullif(btrim(i.supplier_id), ''), i.ordered_on,
           i.expected_on, i.received_on, i.quantity, i.received_on - i.ordered_on
      FROM retail_mid.ods_inbound_shipment i
     WHERE i.ordered_on BETWEEN from_date AND to_date;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO rm_inbound_touched
    SELECT DISTINCT i.brand, i.site_id, i.sku_id FROM retail_mid.dwd_inventory_inbound_di i WHERE i.dt BETWEEN from_date AND to_date;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_domains(date, date) IS 'Rebuilds dwd_behavior_event_di, dwd_marketing_touch_di and dwd_inventory_inbound_di for the given days from the ODS (keys for new identifiers first); called by retail_mid.refresh_domains.';
