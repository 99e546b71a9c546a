-- ods: the landing contract. Loaders write here, one load at a time (load_id); nothing is cleaned yet.
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
    PRIMARY KEY (brand, sku_id)
);
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
COMMENT ON TABLE retail_mid.ods_campaign_touch IS 'Who a campaign reached, through which channel, and how they responded (sent, exposed, clicked, redeemed).';

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
CREATE INDEX ON retail_mid.ods_demand_zone USING gist (geom);
COMMENT ON TABLE retail_mid.ods_demand_zone IS 'Demand zones (census tracts, grid cells, cities) with population and purchasing power, for site selection.';
