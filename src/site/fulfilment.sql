-- site/fulfilment.sql: routing an order to the location(s) that ship it, with available-to-promise and reservations.
--
-- Locations (CDC, RDC, FDC, stores) live in retail_mid.fulfilment_location, stock in retail_mid.fulfilment_stock
-- (on hand and reserved); fulfilment_import_ods(brand) fills both from ods_site and ods_inventory_snapshot.
-- fulfilment_route locks the stock rows of the order's SKUs in (location_id, sku_id) order, so concurrent routers
-- queue instead of deadlocking and never promise the same unit twice; the choice itself is made by the C function
-- fulfilment_plan.

CREATE TABLE retail_mid.fulfilment_location (
    location_id bigint PRIMARY KEY,
    brand       text NOT NULL DEFAULT '',
    code        text,
    kind        text NOT NULL CHECK (kind IN ('CDC', 'RDC', 'FDC', 'store')),
    geom        geometry NOT NULL,
    centre      geography(Point, 4326) NOT NULL,
    active      boolean NOT NULL DEFAULT true
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_location', '');
COMMENT ON TABLE retail_mid.fulfilment_location IS 'Locations that can ship orders: central, regional and front distribution centres and stores; filled by hand or from ods_site by fulfilment_import_ods.';
COMMENT ON COLUMN retail_mid.fulfilment_location.location_id IS 'Location identifier.';
COMMENT ON COLUMN retail_mid.fulfilment_location.brand IS 'Brand (ods_site.brand for imported locations).';
COMMENT ON COLUMN retail_mid.fulfilment_location.code IS 'The source system''s site id (ods_site.site_id); unique per brand.';
COMMENT ON COLUMN retail_mid.fulfilment_location.kind IS 'CDC, RDC, FDC or store.';
COMMENT ON COLUMN retail_mid.fulfilment_location.geom IS 'Point in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.fulfilment_location.centre IS 'Set by trigger: the point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.fulfilment_location.active IS 'Inactive locations are never chosen.';
CREATE UNIQUE INDEX fulfilment_location_code_idx ON retail_mid.fulfilment_location (brand, code);
CREATE INDEX fulfilment_location_centre_idx ON retail_mid.fulfilment_location USING gist (centre);
CREATE TRIGGER fulfilment_location_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.fulfilment_location
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();

CREATE TABLE retail_mid.fulfilment_stock (
    location_id bigint NOT NULL REFERENCES retail_mid.fulfilment_location,
    sku_id      text   NOT NULL,
    on_hand     numeric NOT NULL CHECK (on_hand >= 0 AND on_hand < 'Infinity'),
    reserved    numeric NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    PRIMARY KEY (location_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_stock', '');
COMMENT ON TABLE retail_mid.fulfilment_stock IS 'Stock per location and SKU: on hand, and reserved by routed orders not yet shipped.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.location_id IS 'Location.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.reserved IS 'Units promised to routed orders (sum of their open reservations); never above on_hand.';

CREATE TABLE retail_mid.fulfilment_reservation (
    order_id    text   NOT NULL,
    location_id bigint NOT NULL REFERENCES retail_mid.fulfilment_location,
    sku_id      text   NOT NULL,
    shipment    int4   NOT NULL,
    quantity    numeric NOT NULL CHECK (quantity > 0),
    distance_m  float8 NOT NULL,
    status      text   NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'shipped', 'released')),
    reserved_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, location_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_reservation', '');
COMMENT ON TABLE retail_mid.fulfilment_reservation IS 'What fulfilment_route promised: per order, location and SKU the units reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.order_id IS 'Order.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.location_id IS 'Shipping location.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.shipment IS 'Shipment number within the order, 1 = nearest location.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.quantity IS 'Units reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.distance_m IS 'Great-circle metres from the location to the delivery point.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.status IS 'reserved, shipped or released.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.reserved_at IS 'When it was routed.';

CREATE VIEW retail_mid.fulfilment_atp AS
SELECT s.location_id, l.kind, s.sku_id, s.on_hand, s.reserved, s.on_hand - s.reserved AS atp, l.brand
  FROM retail_mid.fulfilment_stock s JOIN retail_mid.fulfilment_location l USING (location_id);
COMMENT ON VIEW retail_mid.fulfilment_atp IS 'Available-to-promise per location and SKU: on hand minus reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.location_id IS 'Location.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.kind IS 'CDC, RDC, FDC or store.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.reserved IS 'Units reserved by routed orders.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.atp IS 'Units that can still be promised.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.brand IS 'Brand of the location (rows of the caller''s brands only).';

CREATE FUNCTION retail_mid.fulfilment_plan(atp float8[], quantity float8[], distance float8[], exact_limit int4 DEFAULT 16)
RETURNS int4[] AS 'MODULE_PATHNAME', 'fulfilment_plan' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.fulfilment_plan(float8[], float8[], float8[], int4) IS 'Chooses shipping locations (1-based indexes, nearest first) from an ATP matrix (locations x lines, row-major): the nearest single location that can ship everything, else the fewest locations (exact up to exact_limit candidates, greedy set cover above), ties by total distance; empty when the order cannot be shipped.';

CREATE FUNCTION retail_mid.fulfilment_route(order_id text, delivery geometry, sku_ids text[], quantities numeric[],
                                            max_distance float8 DEFAULT NULL, exact_limit int4 DEFAULT 16)
RETURNS TABLE (shipment int4, location_id bigint, kind text, sku_id text, quantity numeric, distance_m float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_point geography;
    v_skus text[];
    v_qty numeric[];
    v_locs bigint[];
    v_dist float8[];
    v_atp float8[];
    v_plan int4[];
    v_remaining numeric;
    v_take numeric;
    v_avail numeric;
    v_shipment int4 := 0;
    v_used boolean;
    i int; l int;
BEGIN
    IF order_id IS NULL OR order_id = '' THEN
        RAISE EXCEPTION 'order_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF delivery IS NULL OR ST_IsEmpty(delivery) THEN
        RAISE EXCEPTION 'delivery point must not be null or empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ST_SRID(delivery) = 0 THEN
        RAISE EXCEPTION 'delivery point has no SRID' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Set one with ST_SetSRID.';
    END IF;
    IF GeometryType(delivery) <> 'POINT' THEN
        RAISE EXCEPTION 'delivery must be a point, not %', lower(GeometryType(delivery)) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sku_ids IS NULL OR quantities IS NULL OR cardinality(sku_ids) = 0 THEN
        RAISE EXCEPTION 'an order needs at least one line' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(sku_ids) <> cardinality(quantities) THEN
        RAISE EXCEPTION 'sku_ids and quantities must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(sku_ids, quantities) u(s, q) WHERE s IS NULL OR q IS NULL OR NOT (q > 0 AND q < 'Infinity')) THEN
        RAISE EXCEPTION 'order lines need a SKU and a positive finite quantity' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_distance IS NOT NULL AND NOT (max_distance > 0) THEN
        RAISE EXCEPTION 'max_distance must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.fulfilment_reservation r
                WHERE r.order_id = fulfilment_route.order_id AND r.status <> 'released') THEN
        RAISE EXCEPTION 'order % is already routed', order_id USING ERRCODE = 'unique_violation',
            HINT = 'Release it with fulfilment_settle(order_id, false) to route it again.';
    END IF;
    DELETE FROM retail_mid.fulfilment_reservation r WHERE r.order_id = fulfilment_route.order_id;
    v_point := geography(ST_Transform(delivery, 4326));
    -- one line per SKU (repeated SKUs are added up), in SKU order
    SELECT array_agg(s ORDER BY s), array_agg(q ORDER BY s) INTO v_skus, v_qty
      FROM (SELECT s, sum(q) q FROM unnest(sku_ids, quantities) u(s, q) GROUP BY s) g;

    -- lock every stock row of these SKUs in one global order: concurrent routers wait for each other here
    PERFORM 1 FROM retail_mid.fulfilment_stock s WHERE s.sku_id = ANY (v_skus)
     ORDER BY s.location_id, s.sku_id FOR UPDATE;

    -- candidate locations (any ATP for any line), nearest first, with their ATP per line
    SELECT array_agg(c.location_id ORDER BY c.d, c.location_id), array_agg(c.d ORDER BY c.d, c.location_id)
      INTO v_locs, v_dist
      FROM (SELECT l.location_id, ST_Distance(l.centre, v_point, false) AS d
              FROM retail_mid.fulfilment_location l
             WHERE l.active
               AND (max_distance IS NULL OR ST_DWithin(l.centre, v_point, max_distance, false))
               AND EXISTS (SELECT 1 FROM retail_mid.fulfilment_stock s
                            WHERE s.location_id = l.location_id AND s.sku_id = ANY (v_skus) AND s.on_hand > s.reserved)) c;
    IF v_locs IS NULL THEN
        RAISE EXCEPTION 'no location can ship any line of order %', order_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT array_agg(coalesce(s.on_hand - s.reserved, 0)::float8 ORDER BY li.o, k.o) INTO v_atp
      FROM unnest(v_locs) WITH ORDINALITY li(id, o)
     CROSS JOIN unnest(v_skus) WITH ORDINALITY k(sku, o)
      LEFT JOIN retail_mid.fulfilment_stock s ON s.location_id = li.id AND s.sku_id = k.sku;

    v_plan := retail_mid.fulfilment_plan(v_atp, v_qty::float8[], v_dist, exact_limit);
    IF cardinality(v_plan) = 0 THEN
        RAISE EXCEPTION 'not enough stock to ship order %', order_id USING ERRCODE = 'no_data_found',
            DETAIL = 'Even all candidate locations together do not have every line available to promise.';
    END IF;

    -- allocate each line from the nearest chosen location first
    FOREACH i IN ARRAY v_plan LOOP
        v_used := false;
        FOR l IN 1 .. cardinality(v_skus) LOOP
            v_remaining := v_qty[l];
            IF v_remaining <= 0 THEN CONTINUE; END IF;
            SELECT s.on_hand - s.reserved INTO v_avail FROM retail_mid.fulfilment_stock s
             WHERE s.location_id = v_locs[i] AND s.sku_id = v_skus[l];
            v_take := least(coalesce(v_avail, 0), v_remaining);
            IF v_take > 0 THEN
                IF NOT v_used THEN v_shipment := v_shipment + 1; v_used := true; END IF;
                UPDATE retail_mid.fulfilment_stock s SET reserved = s.reserved + v_take
                 WHERE s.location_id = v_locs[i] AND s.sku_id = v_skus[l];
                INSERT INTO retail_mid.fulfilment_reservation (order_id, location_id, sku_id, shipment, quantity, distance_m)
                VALUES (fulfilment_route.order_id, v_locs[i], v_skus[l], v_shipment, v_take, v_dist[i]);
                v_qty[l] := v_remaining - v_take;
            END IF;
        END LOOP;
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(v_qty) q WHERE q > 0) THEN
        RAISE EXCEPTION 'allocation left order % short', order_id;   -- cannot happen: the plan covers every line
    END IF;

    RETURN QUERY
    SELECT r.shipment, r.location_id, l.kind, r.sku_id, r.quantity, r.distance_m
      FROM retail_mid.fulfilment_reservation r JOIN retail_mid.fulfilment_location l USING (location_id)
     WHERE r.order_id = fulfilment_route.order_id
     ORDER BY r.shipment, r.sku_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_route(text, geometry, text[], numeric[], float8, int4) IS 'Routes an order (delivery point, SKUs, quantities): nearest location with everything available to promise, else the fewest locations that together have it (fulfilment_plan); reserves the units and returns the shipments. Concurrency-safe: stock rows are locked in (location, sku) order.';

CREATE FUNCTION retail_mid.fulfilment_settle(order_id text, ship boolean)
RETURNS bigint LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    PERFORM 1 FROM retail_mid.fulfilment_stock s
      JOIN retail_mid.fulfilment_reservation r ON r.location_id = s.location_id AND r.sku_id = s.sku_id
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved'
     ORDER BY s.location_id, s.sku_id FOR UPDATE OF s;
    UPDATE retail_mid.fulfilment_stock s
       SET reserved = s.reserved - r.quantity,
           on_hand = s.on_hand - CASE WHEN ship THEN r.quantity ELSE 0 END
      FROM retail_mid.fulfilment_reservation r
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved'
       AND r.location_id = s.location_id AND r.sku_id = s.sku_id;
    UPDATE retail_mid.fulfilment_reservation r SET status = CASE WHEN ship THEN 'shipped' ELSE 'released' END
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_settle(text, boolean) IS 'Closes an order''s open reservations: ship = true takes the units off on_hand, false releases them back to ATP; returns the number of reservation rows closed.';

-- Feeds locations and stock from the ODS: every located site of the brand (CDC, RDC, FDC, store; active unless
-- closed) and the latest inventory snapshot per site and SKU, whose on_hand - reserved (what the source system
-- has not promised elsewhere) becomes on_hand here. Idempotent: a second run with the same ODS changes nothing.
CREATE FUNCTION retail_mid.fulfilment_import_ods(brand text)
RETURNS TABLE (locations_added bigint, locations_updated bigint, stock_rows bigint, stock_changed bigint,
               stock_clamped bigint, stock_skipped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    b text := brand;
    v_added bigint; v_updated bigint; v_rows bigint; v_changed bigint; v_clamped bigint; v_skipped bigint;
    v_job bigint;
BEGIN
    IF b IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('fulfilment_import_ods', jsonb_build_object('brand', b));
    -- one import of a brand at a time; routers keep running (they lock stock rows, not the table)
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.fulfilment_import_ods'), hashtext(b));

    UPDATE retail_mid.fulfilment_location l
       SET kind = o.kind, geom = o.geom, active = o.closed_on IS NULL
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND l.brand = o.brand AND l.code = o.site_id AND o.geom IS NOT NULL
       AND (l.kind IS DISTINCT FROM o.kind OR NOT ST_Equals(l.geom, o.geom) OR l.active IS DISTINCT FROM (o.closed_on IS NULL));
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    INSERT INTO retail_mid.fulfilment_location (location_id, brand, code, kind, geom, active)
    SELECT (SELECT coalesce(max(location_id), 0) FROM retail_mid.fulfilment_location) + row_number() OVER (ORDER BY o.site_id),
           o.brand, o.site_id, o.kind, o.geom, o.closed_on IS NULL
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND o.geom IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM retail_mid.fulfilment_location l WHERE l.brand = o.brand AND l.code = o.site_id);
    GET DIAGNOSTICS v_added = ROW_COUNT;

    CREATE TEMP TABLE fulfilment_import_tmp ON COMMIT DROP AS
    SELECT l.location_id, s.site_id, s.sku_id, greatest(s.on_hand - s.reserved, 0) AS available
      FROM (SELECT DISTINCT ON (i.site_id, i.sku_id) i.site_id, i.sku_id, i.on_hand, i.reserved
              FROM retail_mid.ods_inventory_snapshot i
             WHERE i.brand = b
             ORDER BY i.site_id, i.sku_id, i.snapshot_date DESC) s
      LEFT JOIN retail_mid.fulfilment_location l ON l.brand = b AND l.code = s.site_id;
    SELECT count(*) FILTER (WHERE location_id IS NOT NULL), count(*) FILTER (WHERE location_id IS NULL)
      INTO v_rows, v_skipped FROM fulfilment_import_tmp;
    -- stock this module has promised (reserved) stays promised: on_hand never drops below it
    SELECT count(*) INTO v_clamped
      FROM fulfilment_import_tmp t JOIN retail_mid.fulfilment_stock s ON s.location_id = t.location_id AND s.sku_id = t.sku_id
     WHERE t.available < s.reserved;
    INSERT INTO retail_mid.fulfilment_stock AS s (location_id, sku_id, on_hand)
    SELECT t.location_id, t.sku_id, t.available FROM fulfilment_import_tmp t
     WHERE t.location_id IS NOT NULL
     ORDER BY t.location_id, t.sku_id          -- the lock order of fulfilment_route
    ON CONFLICT (location_id, sku_id) DO UPDATE SET on_hand = greatest(excluded.on_hand, s.reserved)
     WHERE s.on_hand IS DISTINCT FROM greatest(excluded.on_hand, s.reserved);
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    DROP TABLE fulfilment_import_tmp;
    IF v_clamped > 0 THEN
        RAISE WARNING 'fulfilment_import_ods: % stock rows have less available than already reserved; on_hand kept at the reserved quantity', v_clamped;
    END IF;
    RAISE NOTICE 'fulfilment_import_ods: % locations added, % updated, % stock rows (% changed, % without a located site)',
        v_added, v_updated, v_rows, v_changed, v_skipped;
    PERFORM retail_mid.job_finish(v_job, v_rows, jsonb_build_object('locations_added', v_added, 'locations_updated', v_updated,
        'stock_changed', v_changed, 'stock_clamped', v_clamped, 'stock_skipped', v_skipped));
    RETURN QUERY SELECT v_added, v_updated, v_rows, v_changed, v_clamped, v_skipped;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_import_ods(text) IS 'Feeds fulfilment_location from a brand''s located ods_site rows (CDC, RDC, FDC, store; inactive when closed) and fulfilment_stock.on_hand from the latest ods_inventory_snapshot per site and SKU (on_hand - reserved, at least 0, never below what fulfilment has reserved); idempotent. Returns locations added and updated, stock rows seen, changed, clamped to the reserved quantity, and skipped (site without location).';

DO $$
DECLARE
    v_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'postgis');
BEGIN
    EXECUTE format('ALTER FUNCTION retail_mid.fulfilment_route(text, geometry, text[], numeric[], float8, int4) SET search_path = pg_catalog, %I, pg_temp', v_schema);
    EXECUTE format('ALTER FUNCTION retail_mid.fulfilment_import_ods(text) SET search_path = pg_catalog, %I, pg_temp', v_schema);
END;
$$;
