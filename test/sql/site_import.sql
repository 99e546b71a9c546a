-- site_import: the ODS zones and own stores of a brand feed the site-selection tables
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 11, customers => 50, days => 7, orders_per_day => 5, stores => 6, skus => 20,
                                     with_events => false, brand => 'site_import_t') > 0 AS generated;
RESET client_min_messages;
UPDATE retail_mid.ods_site SET closed_on = '2024-01-01' WHERE brand = 'site_import_t' AND site_id = 'S0006';
SELECT * FROM retail_mid.site_import_ods('site_import_t');
SELECT (SELECT count(*) FROM retail_mid.ods_demand_zone WHERE brand = 'site_import_t') AS ods_zones,
       (SELECT count(*) FROM retail_mid.ods_site WHERE brand = 'site_import_t' AND kind = 'store' AND closed_on IS NULL) AS open_ods_stores,
       (SELECT count(*) FROM retail_mid.site_store WHERE brand = 'site_import_t' AND own) AS site_stores,
       (SELECT bool_and(s.attractiveness = o.floor_area AND ST_Equals(s.geom, o.geom)) FROM retail_mid.site_store s
          JOIN retail_mid.ods_site o ON o.brand = s.brand AND o.site_id = s.store_code) AS same_stores;
-- importing again adds nothing
SELECT * FROM retail_mid.site_import_ods('site_import_t');
SELECT * FROM retail_mid.site_import_ods(NULL);
DELETE FROM retail_mid.site_store WHERE brand = 'site_import_t';
DELETE FROM retail_mid.site_demand_zone WHERE name IN (SELECT zone_id FROM retail_mid.ods_demand_zone WHERE brand = 'site_import_t');
