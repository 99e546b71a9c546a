-- fulfilment_import: locations and stock fed from ods_site and the latest ods_inventory_snapshot
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 12, customers => 50, days => 7, orders_per_day => 5, stores => 6, skus => 20,
                                     with_events => false, brand => 'ful_import_t') > 0 AS generated;
RESET client_min_messages;
SET extra_float_digits = 0;
-- the synthetic ODS has store snapshots of one day; add older and newer snapshots, DC stock, reservations of the
-- source system, a closed store and a site without a location
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, reserved)
SELECT brand, site_id, sku_id, snapshot_date - 1, on_hand + 100, 0 FROM retail_mid.ods_inventory_snapshot WHERE brand = 'ful_import_t';
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, reserved)
SELECT 'ful_import_t', d, 'P' || lpad(k::text, 6, '0'), '2030-01-01', 500 + k, 20 * (k % 3)
  FROM unnest(ARRAY['CDC01', 'RDC01']) d, generate_series(1, 5) k;
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, reserved) VALUES
    ('ful_import_t', 'CDC01', 'P000001', '2029-12-31', 7, 0),          -- older than 2030-01-01: ignored
    ('ful_import_t', 'RDC02', 'P000009', '2030-01-01', 3, 5);          -- reserved above on hand: 0 available
INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom) VALUES ('ful_import_t', 'FDC999', 'unlocated', 'FDC', NULL);
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand) VALUES ('ful_import_t', 'FDC999', 'P000001', '2030-01-01', 9);
UPDATE retail_mid.ods_site SET closed_on = '2024-01-01' WHERE brand = 'ful_import_t' AND site_id = 'S0006';

SELECT * FROM retail_mid.fulfilment_import_ods('ful_import_t');
-- locations: every located ODS site, same kind and point, inactive when closed (plain SQL reference)
SELECT count(*) AS ods_located_sites,
       count(l.location_id) AS imported,
       count(*) FILTER (WHERE l.kind = o.kind AND ST_Equals(l.geom, o.geom) AND l.active = (o.closed_on IS NULL)) AS same,
       string_agg(o.kind, ',' ORDER BY o.kind) FILTER (WHERE o.kind <> 'store') AS dc_kinds,
       count(*) FILTER (WHERE NOT l.active) AS inactive
  FROM retail_mid.ods_site o LEFT JOIN retail_mid.fulfilment_location l ON l.brand = o.brand AND l.code = o.site_id
 WHERE o.brand = 'ful_import_t' AND o.geom IS NOT NULL;
-- stock: on_hand = on_hand - reserved of the latest snapshot (at least 0), for every located site x SKU
WITH latest AS (
    SELECT i.* FROM retail_mid.ods_inventory_snapshot i
     WHERE i.brand = 'ful_import_t'
       AND i.snapshot_date = (SELECT max(j.snapshot_date) FROM retail_mid.ods_inventory_snapshot j
                               WHERE j.brand = i.brand AND j.site_id = i.site_id AND j.sku_id = i.sku_id))
SELECT count(*) AS latest_rows, count(s.location_id) AS stock_rows,
       count(*) FILTER (WHERE s.on_hand = greatest(x.on_hand - x.reserved, 0)) AS equal_on_hand,
       count(*) FILTER (WHERE s.location_id IS NULL) AS without_location
  FROM latest x
  LEFT JOIN retail_mid.fulfilment_location l ON l.brand = x.brand AND l.code = x.site_id
  LEFT JOIN retail_mid.fulfilment_stock s ON s.location_id = l.location_id AND s.sku_id = x.sku_id;
SELECT l.code, s.sku_id, s.on_hand, s.reserved FROM retail_mid.fulfilment_stock s JOIN retail_mid.fulfilment_location l USING (location_id)
 WHERE l.brand = 'ful_import_t' AND l.kind <> 'store' ORDER BY 1, 2;
-- importing again changes nothing
SELECT * FROM retail_mid.fulfilment_import_ods('ful_import_t');
-- the router uses the imported stock: 600 of P000003 are more than any store has, so the CDC and the RDC share it
SELECT shipment, l.code, r.kind, r.sku_id, r.quantity
  FROM retail_mid.fulfilment_route('ful-1', 'SRID=4326;POINT(121.3 31.2)', '{P000003}', '{600}') r
  JOIN retail_mid.fulfilment_location l USING (location_id) ORDER BY shipment;
-- a newer snapshot: CDC01 P000003 now has 10 available but 503 are reserved by the order: on_hand stays 503
-- (a warning says so); RDC01 P000003 rises to 800
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, reserved) VALUES
    ('ful_import_t', 'CDC01', 'P000003', '2030-01-02', 10, 0), ('ful_import_t', 'RDC01', 'P000003', '2030-01-02', 800, 0);
SELECT * FROM retail_mid.fulfilment_import_ods('ful_import_t');
SELECT l.code, s.on_hand, s.reserved FROM retail_mid.fulfilment_stock s JOIN retail_mid.fulfilment_location l USING (location_id)
 WHERE l.brand = 'ful_import_t' AND s.sku_id = 'P000003' AND l.kind <> 'store' ORDER BY 1;
-- a store that reopens and moves is updated in place
UPDATE retail_mid.ods_site SET closed_on = NULL, geom = ST_SetSRID(ST_MakePoint(121.5, 31.3), 4326)
 WHERE brand = 'ful_import_t' AND site_id = 'S0006';
SELECT locations_added, locations_updated, stock_changed FROM retail_mid.fulfilment_import_ods('ful_import_t');
SELECT active, ST_AsText(geometry(centre)) AS centre FROM retail_mid.fulfilment_location WHERE brand = 'ful_import_t' AND code = 'S0006';
SELECT job, rows_written, outcome FROM retail_mid.job_log WHERE job = 'fulfilment_import_ods' ORDER BY job_id;
-- bad input: null brand; a brand without ODS rows imports nothing
SELECT * FROM retail_mid.fulfilment_import_ods(NULL);
SELECT * FROM retail_mid.fulfilment_import_ods('no such brand');

-- leave the database as a fresh one
DROP EXTENSION retail_mid;
DROP EXTENSION postgis;
