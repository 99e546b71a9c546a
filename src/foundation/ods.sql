-- foundation/ods.sql: the landing contract: loaders write here, one load at a time (load_id); nothing is cleaned yet.
--
-- Every table carries brand (the tenant) and the load that brought the row.

CREATE TABLE retail_mid.ods_load (
    load_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL,
    path          text,
    brand         text        NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    rows_read     bigint      NOT NULL DEFAULT 0,
    rows_loaded   bigint      NOT NULL DEFAULT 0,
    rows_rejected bigint      NOT NULL DEFAULT 0,
    rejects       jsonb       NOT NULL DEFAULT '{}'
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_load', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_load_load_id_seq', '');
COMMENT ON TABLE retail_mid.ods_load IS 'One row per completed load: source, file, rows read / loaded / rejected and the rejection reasons with counts.';
COMMENT ON COLUMN retail_mid.ods_load.rejects IS 'Rejection reason -> number of rows, e.g. {"quantity is not an integer": 3}.';

CREATE TABLE retail_mid.ods_customer (
    brand            text NOT NULL,
    customer_id      text NOT NULL,
    id_type          text NOT NULL DEFAULT 'member_id',
    name             text,
    gender           text CHECK (gender IN ('F', 'M', 'U')),
    birth_date       date,
    phone            text,
    email            text,
    city             text,
    province         text,
    country          text,
    register_time    timestamp,
    register_channel text,
    home_store_id    text,
    guide_id         text,
    attributes       jsonb NOT NULL DEFAULT '{}',
    load_id          bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, customer_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_customer', '');
COMMENT ON TABLE retail_mid.ods_customer IS 'Customers (members) as the brand knows them; further identifiers in ods_customer_identifier.';

CREATE TABLE retail_mid.ods_customer_identifier (
    brand       text NOT NULL,
    customer_id text NOT NULL,
    id_type     text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value    text NOT NULL,
    seen_at     timestamp,
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, customer_id, id_type, id_value)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_customer_identifier', '');
COMMENT ON TABLE retail_mid.ods_customer_identifier IS 'Every identifier seen for a customer (member id, phone, e-mail, device, social open id): the edges of the identity graph.';

CREATE TABLE retail_mid.ods_product (
    brand         text NOT NULL,
    sku_id        text NOT NULL,
    sku_name      text,
    category_l1   text,
    category_l2   text,
    category_l3   text,
    category_l4   text,
    product_brand text,
    list_price    numeric(14,4) CHECK (list_price >= 0),
    package_size  text,
    load_id       bigint REFERENCES retail_mid.ods_load,
    attributes    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (brand, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_product', '');
COMMENT ON TABLE retail_mid.ods_product IS 'Products (SKUs) with a four-level category, the product brand and the list price.';

CREATE TABLE retail_mid.ods_site (
    brand       text NOT NULL,
    site_id     text NOT NULL,
    site_name   text,
    kind        text NOT NULL CHECK (kind IN ('store', 'CDC', 'RDC', 'FDC')),
    geom        geometry(Point, 4326),
    opened_on   date,
    closed_on   date,
    floor_area  numeric CHECK (floor_area > 0),
    city        text,
    parent_site_id text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, site_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_site', '');
CREATE INDEX ON retail_mid.ods_site USING gist (geom);
COMMENT ON TABLE retail_mid.ods_site IS 'Stores and warehouses (central, regional and front distribution centres) as WGS84 points.';

CREATE TABLE retail_mid.ods_order (
    brand             text NOT NULL,
    order_id          text NOT NULL,
    id_type           text CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    customer_id       text,
    order_time        timestamp NOT NULL,
    channel           text NOT NULL DEFAULT 'store',
    store_id          text,
    status            text NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'cancelled', 'returned')),
    original_order_id text,
    country           text,
    load_id           bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, order_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_order', '');
CREATE INDEX ON retail_mid.ods_order (order_time);
COMMENT ON TABLE retail_mid.ods_order IS 'Order headers. Cancellations and returns are orders of their own with status cancelled/returned, negative lines and original_order_id.';

CREATE TABLE retail_mid.ods_order_line (
    brand             text NOT NULL,
    order_id          text NOT NULL,
    line_no           int  NOT NULL,
    sku_id            text NOT NULL,
    quantity          numeric(14,3) NOT NULL,
    unit_price        numeric(14,4) NOT NULL,
    discount          numeric(14,4) NOT NULL DEFAULT 0,
    original_order_id text,
    original_line_no  int,
    load_id           bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, order_id, line_no)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_order_line', '');
COMMENT ON TABLE retail_mid.ods_order_line IS 'Order lines as received: negative quantity for cancelled or returned goods, referring to the original order where known.';

CREATE TABLE retail_mid.ods_behavior_event (
    brand            text NOT NULL,
    id_type          text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value         text NOT NULL,
    event_time       timestamp NOT NULL,
    event_type       text NOT NULL CHECK (event_type IN ('exposure', 'click', 'view', 'search', 'favorite', 'cart',
                                                          'register', 'follow', 'review', 'share', 'purchase')),
    object_attribute text,
    object_value     text,
    channel          text,
    event_count      int NOT NULL DEFAULT 1 CHECK (event_count > 0),
    amount           numeric(14,4),
    load_id          bigint REFERENCES retail_mid.ods_load
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_behavior_event', '');
CREATE INDEX ON retail_mid.ods_behavior_event (event_time);
COMMENT ON TABLE retail_mid.ods_behavior_event IS 'Behaviour events in the shape of the seed platform''s behaviour quick config: who (identifier + type), when, what (event type), on which object (attribute = value), where (channel), how many and how much.';

CREATE TABLE retail_mid.ods_promotion (
    brand       text NOT NULL,
    sku_id      text NOT NULL,
    store_id    text NOT NULL,
    start_date  date NOT NULL,
    end_date    date NOT NULL CHECK (end_date >= start_date),
    promo_price numeric(14,4) CHECK (promo_price >= 0),
    display     boolean NOT NULL DEFAULT false,
    feature     boolean NOT NULL DEFAULT false,
    display_share numeric(6,5) CHECK (display_share BETWEEN 0 AND 1),
    feature_share numeric(6,5) CHECK (feature_share BETWEEN 0 AND 1),
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, sku_id, store_id, start_date)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_promotion', '');
COMMENT ON TABLE retail_mid.ods_promotion IS 'Promotions per product x store x period: promoted price, in-store display (deal), feature advertising.';
COMMENT ON COLUMN retail_mid.ods_promotion.display_share IS 'Share of the period with the in-store display, when the source gives it (NULL: display says it all).';
COMMENT ON COLUMN retail_mid.ods_promotion.feature_share IS 'Share of the period with feature advertising, when the source gives it (Dominick''s feat).';

CREATE TABLE retail_mid.ods_inventory_snapshot (
    brand         text NOT NULL,
    site_id       text NOT NULL,
    sku_id        text NOT NULL,
    snapshot_date date NOT NULL,
    on_hand       numeric(14,3) NOT NULL,
    on_order      numeric(14,3) NOT NULL DEFAULT 0,
    reserved      numeric(14,3) NOT NULL DEFAULT 0,
    load_id       bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, site_id, sku_id, snapshot_date)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_inventory_snapshot', '');
COMMENT ON TABLE retail_mid.ods_inventory_snapshot IS 'Stock per site and SKU at the end of a day: on hand, on order, reserved.';

CREATE TABLE retail_mid.ods_inbound_shipment (
    brand        text NOT NULL,
    shipment_id  text NOT NULL,
    site_id      text NOT NULL,
    sku_id       text NOT NULL,
    supplier_id  text,
    ordered_on   date NOT NULL,
    expected_on  date,
    received_on  date,
    quantity     numeric(14,3) NOT NULL CHECK (quantity > 0),
    load_id      bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, shipment_id, site_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_inbound_shipment', '');
-- replenishment looks up the latest shipment of a site (x SKU) and the shipments of a source (demand/replenish.sql)
CREATE INDEX ON retail_mid.ods_inbound_shipment (brand, site_id, sku_id, ordered_on);
CREATE INDEX ON retail_mid.ods_inbound_shipment (brand, supplier_id, site_id);
COMMENT ON TABLE retail_mid.ods_inbound_shipment IS 'Purchase orders and transfers into a site: the lead time is received_on - ordered_on.';

CREATE TABLE retail_mid.ods_campaign (
    brand       text NOT NULL,
    campaign_id text NOT NULL,
    name        text,
    kind        text,
    start_date  date,
    end_date    date,
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, campaign_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_campaign', '');
COMMENT ON TABLE retail_mid.ods_campaign IS 'Marketing campaigns.';

CREATE TABLE retail_mid.ods_campaign_touch (
    brand       text NOT NULL,
    campaign_id text NOT NULL,
    id_type     text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value    text NOT NULL,
    channel     text,
    touched_at  timestamp,
    touch_type  text NOT NULL CHECK (touch_type IN ('sent', 'exposed', 'clicked', 'redeemed')),
    coupon_id   text,
    load_id     bigint REFERENCES retail_mid.ods_load
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_campaign_touch', '');
COMMENT ON TABLE retail_mid.ods_campaign_touch IS 'Who a campaign reached, through which channel, and how they responded (sent, exposed, clicked, redeemed).';

-- issue 17: media spend and impressions per channel, campaign and day, for the marketing mix model (goods/mmm.sql)
CREATE TABLE retail_mid.ods_media_spend (
    brand       text NOT NULL,
    spend_date  date NOT NULL,
    channel     text NOT NULL CHECK (btrim(channel) <> ''),
    campaign_id text NOT NULL DEFAULT '(none)',
    spend       numeric(18,4) NOT NULL CHECK (spend >= 0),
    impressions bigint CHECK (impressions >= 0),
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, spend_date, channel, campaign_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_media_spend', '');
COMMENT ON TABLE retail_mid.ods_media_spend IS 'Paid media: spend and impressions per channel (tv, search, social ...), campaign and day; the input of the marketing mix model (mmm_fit).';
COMMENT ON COLUMN retail_mid.ods_media_spend.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.ods_media_spend.spend_date IS 'Day of the spend.';
COMMENT ON COLUMN retail_mid.ods_media_spend.channel IS 'Media channel (tv, search, social, outdoor ...).';
COMMENT ON COLUMN retail_mid.ods_media_spend.campaign_id IS 'Campaign (ods_campaign), ''(none)'' for spend not booked to a campaign.';
COMMENT ON COLUMN retail_mid.ods_media_spend.spend IS 'Spend in currency, not negative.';
COMMENT ON COLUMN retail_mid.ods_media_spend.impressions IS 'Impressions bought, when known.';
COMMENT ON COLUMN retail_mid.ods_media_spend.load_id IS 'Load that brought the row.';

CREATE TABLE retail_mid.ods_demand_zone (
    brand       text NOT NULL,
    zone_id     text NOT NULL,
    zone_name   text,
    geom        geometry(Geometry, 4326) NOT NULL,
    population  numeric CHECK (population >= 0),
    households  numeric CHECK (households >= 0),
    income      numeric,
    spend_potential numeric,
    attributes  jsonb NOT NULL DEFAULT '{}',
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, zone_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_demand_zone', '');
CREATE INDEX ON retail_mid.ods_demand_zone USING gist (geom);
COMMENT ON TABLE retail_mid.ods_demand_zone IS 'Demand zones (census tracts, grid cells, cities) with population and purchasing power, for site selection.';

-- Column documentation of the contract (docs/reference.md is generated from these comments).
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('ods_load', 'load_id', 'Identity of the load.'), ('ods_load', 'source', 'Loader: online_retail, complete_journey, cdnow, orange_juice, boston_tracts, synthetic.'),
        ('ods_load', 'path', 'File or directory read (for the generator, its seed).'), ('ods_load', 'brand', 'Brand the rows were loaded for.'),
        ('ods_load', 'loaded_at', 'When the load committed.'), ('ods_load', 'rows_read', 'Rows read from the files.'),
        ('ods_load', 'rows_loaded', 'Rows that passed validation and were loaded.'), ('ods_load', 'rows_rejected', 'Rows rejected (see rejects).'),
        ('ods_customer', 'brand', 'Brand (tenant) the customer belongs to.'), ('ods_customer', 'customer_id', 'The brand''s primary identifier of the customer.'),
        ('ods_customer', 'id_type', 'Type of customer_id: member_id, phone, email, device_id, open_id, household_id or customer_id.'),
        ('ods_customer', 'name', 'Full name (personal data).'), ('ods_customer', 'gender', 'F, M or U (unknown).'),
        ('ods_customer', 'birth_date', 'Date of birth (personal data).'), ('ods_customer', 'phone', 'Mobile phone number (personal data).'),
        ('ods_customer', 'email', 'E-mail address (personal data).'), ('ods_customer', 'city', 'City of residence.'),
        ('ods_customer', 'province', 'Province or state.'), ('ods_customer', 'country', 'Country.'),
        ('ods_customer', 'register_time', 'When the customer became a member.'), ('ods_customer', 'register_channel', 'Where the customer registered (store, app, mini_program, web).'),
        ('ods_customer', 'home_store_id', 'Store the customer belongs to (affiliation).'), ('ods_customer', 'guide_id', 'Shopping guide in charge of the customer.'),
        ('ods_customer', 'attributes', 'Further source attributes as JSON (e.g. Complete Journey demographics).'), ('ods_customer', 'load_id', 'Load that brought the row.'),
        ('ods_customer_identifier', 'brand', 'Brand.'), ('ods_customer_identifier', 'customer_id', 'The customer (ods_customer.customer_id).'),
        ('ods_customer_identifier', 'id_type', 'member_id, phone, email, device_id, open_id, household_id or customer_id.'),
        ('ods_customer_identifier', 'id_value', 'The identifier''s value.'), ('ods_customer_identifier', 'seen_at', 'When the pair was observed.'),
        ('ods_customer_identifier', 'load_id', 'Load that brought the row.'),
        ('ods_product', 'brand', 'Brand.'), ('ods_product', 'sku_id', 'SKU id.'), ('ods_product', 'sku_name', 'Product name.'),
        ('ods_product', 'category_l1', 'Category, level 1 (e.g. department).'), ('ods_product', 'category_l2', 'Category, level 2.'),
        ('ods_product', 'category_l3', 'Category, level 3.'), ('ods_product', 'category_l4', 'Category, level 4.'),
        ('ods_product', 'product_brand', 'Manufacturer''s or private-label brand.'), ('ods_product', 'list_price', 'Regular shelf price.'),
        ('ods_product', 'package_size', 'Package size as text (e.g. 64 oz).'), ('ods_product', 'load_id', 'Load that brought the row.'),
        ('ods_product', 'attributes', 'Further attributes as JSON (launch_date, status ... read by dim_product).'),
        ('ods_site', 'brand', 'Brand.'), ('ods_site', 'site_id', 'Store or warehouse id.'), ('ods_site', 'site_name', 'Name.'),
        ('ods_site', 'kind', 'store, CDC (central DC), RDC (regional DC) or FDC (front DC).'), ('ods_site', 'geom', 'Location, WGS84 point.'),
        ('ods_site', 'opened_on', 'Opening date.'), ('ods_site', 'closed_on', 'Closing date, NULL while open.'), ('ods_site', 'floor_area', 'Selling area in m2 (an attractiveness measure).'),
        ('ods_site', 'city', 'City.'), ('ods_site', 'parent_site_id', 'Site that replenishes this one (store -> FDC -> RDC -> CDC).'),
        ('ods_site', 'attributes', 'Further attributes as JSON (e.g. trade-area demographics).'), ('ods_site', 'load_id', 'Load that brought the row.'),
        ('ods_order', 'brand', 'Brand.'), ('ods_order', 'order_id', 'Order id.'), ('ods_order', 'id_type', 'Type of the customer identifier, NULL for anonymous orders.'),
        ('ods_order', 'customer_id', 'Customer identifier as the channel knows it, NULL for anonymous orders.'), ('ods_order', 'order_time', 'When the order was placed.'),
        ('ods_order', 'channel', 'Sales channel (store, online, app, catalogue ...).'), ('ods_order', 'store_id', 'Selling or fulfilling store.'),
        ('ods_order', 'status', 'paid, cancelled or returned.'), ('ods_order', 'original_order_id', 'For cancellations and returns, the order they undo.'),
        ('ods_order', 'country', 'Country of the customer or delivery.'), ('ods_order', 'load_id', 'Load that brought the row.'),
        ('ods_order_line', 'brand', 'Brand.'), ('ods_order_line', 'order_id', 'Order id.'), ('ods_order_line', 'line_no', 'Line number within the order.'),
        ('ods_order_line', 'sku_id', 'SKU id.'), ('ods_order_line', 'quantity', 'Units; negative for cancelled or returned goods.'),
        ('ods_order_line', 'unit_price', 'Price per unit before the line discount.'), ('ods_order_line', 'discount', 'Discount on the line, in currency.'),
        ('ods_order_line', 'original_order_id', 'For return lines, the order of the original sale.'), ('ods_order_line', 'original_line_no', 'For return lines, the original line.'),
        ('ods_order_line', 'load_id', 'Load that brought the row.'),
        ('ods_behavior_event', 'brand', 'Brand.'), ('ods_behavior_event', 'id_type', 'Type of the customer identifier.'), ('ods_behavior_event', 'id_value', 'Customer identifier.'),
        ('ods_behavior_event', 'event_time', 'When it happened.'),
        ('ods_behavior_event', 'event_type', 'exposure, click, view, search, favorite, cart, register, follow, review, share or purchase.'),
        ('ods_behavior_event', 'object_attribute', 'What the event was about: sku_id, category, brand, content, campaign ...'),
        ('ods_behavior_event', 'object_value', 'The value of that attribute.'), ('ods_behavior_event', 'channel', 'app, web, store, media ...'),
        ('ods_behavior_event', 'event_count', 'How many times (pre-aggregated sources).'), ('ods_behavior_event', 'amount', 'Money involved, e.g. a purchase amount.'),
        ('ods_behavior_event', 'load_id', 'Load that brought the row.'),
        ('ods_promotion', 'brand', 'Brand.'), ('ods_promotion', 'sku_id', 'Promoted SKU.'), ('ods_promotion', 'store_id', 'Store.'),
        ('ods_promotion', 'start_date', 'First day.'), ('ods_promotion', 'end_date', 'Last day.'), ('ods_promotion', 'promo_price', 'Promoted price.'),
        ('ods_promotion', 'display', 'In-store display or deal.'), ('ods_promotion', 'feature', 'Feature advertising (mailer, flyer).'), ('ods_promotion', 'load_id', 'Load that brought the row.'),
        ('ods_inventory_snapshot', 'brand', 'Brand.'), ('ods_inventory_snapshot', 'site_id', 'Store or warehouse.'), ('ods_inventory_snapshot', 'sku_id', 'SKU.'),
        ('ods_inventory_snapshot', 'snapshot_date', 'Day the stock was counted (end of day).'), ('ods_inventory_snapshot', 'on_hand', 'Units on hand.'),
        ('ods_inventory_snapshot', 'on_order', 'Units ordered, not yet received.'), ('ods_inventory_snapshot', 'reserved', 'Units promised to open orders.'),
        ('ods_inventory_snapshot', 'load_id', 'Load that brought the row.'),
        ('ods_inbound_shipment', 'brand', 'Brand.'), ('ods_inbound_shipment', 'shipment_id', 'Purchase order or transfer id.'), ('ods_inbound_shipment', 'site_id', 'Receiving site.'),
        ('ods_inbound_shipment', 'sku_id', 'SKU.'), ('ods_inbound_shipment', 'supplier_id', 'Supplier or shipping warehouse.'), ('ods_inbound_shipment', 'ordered_on', 'Day ordered.'),
        ('ods_inbound_shipment', 'expected_on', 'Day promised.'), ('ods_inbound_shipment', 'received_on', 'Day received, NULL while open.'), ('ods_inbound_shipment', 'quantity', 'Units.'),
        ('ods_inbound_shipment', 'load_id', 'Load that brought the row.'),
        ('ods_campaign', 'brand', 'Brand.'), ('ods_campaign', 'campaign_id', 'Campaign id.'), ('ods_campaign', 'name', 'Name.'), ('ods_campaign', 'kind', 'Type of campaign.'),
        ('ods_campaign', 'start_date', 'First day.'), ('ods_campaign', 'end_date', 'Last day.'), ('ods_campaign', 'load_id', 'Load that brought the row.'),
        ('ods_campaign_touch', 'brand', 'Brand.'), ('ods_campaign_touch', 'campaign_id', 'Campaign.'), ('ods_campaign_touch', 'id_type', 'Type of the customer identifier.'),
        ('ods_campaign_touch', 'id_value', 'Customer identifier.'), ('ods_campaign_touch', 'channel', 'sms, email, wechat, app_push, media, mail, store ...'),
        ('ods_campaign_touch', 'touched_at', 'When.'), ('ods_campaign_touch', 'touch_type', 'sent, exposed, clicked or redeemed.'),
        ('ods_campaign_touch', 'coupon_id', 'Coupon redeemed, if any.'), ('ods_campaign_touch', 'load_id', 'Load that brought the row.'),
        ('ods_demand_zone', 'brand', 'Brand (or data set) the zones were loaded for.'), ('ods_demand_zone', 'zone_id', 'Zone id (e.g. census tract).'),
        ('ods_demand_zone', 'zone_name', 'Name (e.g. town).'), ('ods_demand_zone', 'geom', 'Polygon or point, WGS84.'), ('ods_demand_zone', 'population', 'Residents.'),
        ('ods_demand_zone', 'households', 'Households.'), ('ods_demand_zone', 'income', 'Median household income.'),
        ('ods_demand_zone', 'spend_potential', 'Estimated retail spend of the zone, when known.'), ('ods_demand_zone', 'attributes', 'Further attributes (income bands ...) as JSON.'),
        ('ods_demand_zone', 'load_id', 'Load that brought the row.')) AS c(tbl, col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.%I.%I IS %L', r.tbl, r.col, r.txt);
    END LOOP;
END $$;

-- issue 17: category space per store (shelf area of each level-1 category), for sales and margin per square metre
-- and the assortment of goods/assortment.sql. The current layout: a reload replaces a (store, category) row.
CREATE TABLE retail_mid.ods_store_category_space (
    brand        text NOT NULL,
    store_id     text NOT NULL,
    category_l1  text NOT NULL CHECK (btrim(category_l1) <> ''),
    space_sqm    numeric(14,3) NOT NULL CHECK (space_sqm > 0),
    shelf_metres numeric(14,3) CHECK (shelf_metres >= 0),
    load_id      bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, store_id, category_l1)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_store_category_space', '');
COMMENT ON TABLE retail_mid.ods_store_category_space IS 'Selling space of each level-1 category in each store (square metres, and shelf metres when known): the denominator of sales and margin per square metre.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.store_id IS 'Store (ods_site of kind store).';
COMMENT ON COLUMN retail_mid.ods_store_category_space.category_l1 IS 'Level-1 category (ods_product.category_l1).';
COMMENT ON COLUMN retail_mid.ods_store_category_space.space_sqm IS 'Selling area given to the category, in square metres, positive.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.shelf_metres IS 'Shelf length given to the category, in metres, when known.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.load_id IS 'Load that brought the row.';
