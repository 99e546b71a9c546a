-- site/site.sql: site selection with the Huff gravity model (demand zones, stores, candidates, scoring, calibration).
--
-- Spatial pruning and distances are done here in SQL on geography columns with GiST indexes; the Huff
-- arithmetic is done by the C aggregates huff_sales and huff_impact over plain numbers (src/site/site.c).
-- Distances are great-circle metres on the WGS84 mean-radius sphere (PostGIS geography with
-- use_spheroid = false). Own stores live in retail_mid.site_store until ods_site(kind = 'store') is on main
-- (site_store.store_code is meant to hold ods_site.site_id); competitors have no ODS source.

-- ----------------------------------------------------------------- tables
CREATE TABLE retail_mid.site_demand_zone (
    zone_id         bigint PRIMARY KEY,
    name            text,
    geom            geometry NOT NULL,
    population      float8 NOT NULL DEFAULT 0 CHECK (population >= 0 AND population < 'Infinity'),
    households      float8 CHECK (households >= 0 AND households < 'Infinity'),
    income          float8 CHECK (income >= 0 AND income < 'Infinity'),
    spend_potential float8 CHECK (spend_potential >= 0 AND spend_potential < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL,
    geom_4326       geometry NOT NULL,
    is_point        boolean NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_demand_zone', '');
COMMENT ON TABLE retail_mid.site_demand_zone IS 'Demand zones of the Huff model: census tracts, grid cells or points, in any SRID, with population and purchasing power.';
COMMENT ON COLUMN retail_mid.site_demand_zone.zone_id IS 'Zone identifier.';
COMMENT ON COLUMN retail_mid.site_demand_zone.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_demand_zone.geom IS 'Point or (multi)polygon in any SRID other than 0; must be valid and non-empty.';
COMMENT ON COLUMN retail_mid.site_demand_zone.population IS 'Residents of the zone.';
COMMENT ON COLUMN retail_mid.site_demand_zone.households IS 'Households of the zone, if known.';
COMMENT ON COLUMN retail_mid.site_demand_zone.income IS 'Mean household income of the zone, if known.';
COMMENT ON COLUMN retail_mid.site_demand_zone.spend_potential IS 'Spending on the category per period; the Huff demand of the zone. When null, population is the demand.';
COMMENT ON COLUMN retail_mid.site_demand_zone.centre IS 'Set by trigger: centroid of geom in EPSG:4326, the point distances are measured from.';
COMMENT ON COLUMN retail_mid.site_demand_zone.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_demand_zone.lat IS 'Set by trigger: latitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_demand_zone.geom_4326 IS 'Set by trigger: geom transformed to EPSG:4326, used for trade-area polygons.';
COMMENT ON COLUMN retail_mid.site_demand_zone.is_point IS 'Set by trigger: true when geom is a point (trade areas hull point zones and union polygon zones).';
CREATE INDEX site_demand_zone_centre_idx ON retail_mid.site_demand_zone USING gist (centre);
-- 2-D index for the bounding-box pruning of the batch scorer (cheaper to probe than geography's 3-D boxes)
CREATE INDEX site_demand_zone_point_idx ON retail_mid.site_demand_zone USING gist (geometry(centre));

CREATE TABLE retail_mid.site_store (
    store_id        bigint PRIMARY KEY,
    brand           text NOT NULL DEFAULT '',
    store_code      text,
    name            text,
    own             boolean NOT NULL,
    geom            geometry NOT NULL,
    attractiveness  float8 NOT NULL CHECK (attractiveness > 0 AND attractiveness < 'Infinity'),
    observed_sales  float8 CHECK (observed_sales >= 0 AND observed_sales < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_store', '');
COMMENT ON TABLE retail_mid.site_store IS 'Existing stores, the brand''s own and competitors, with attractiveness; stand-in for ods_site(kind = ''store'') plus competitor data.';
COMMENT ON COLUMN retail_mid.site_store.store_id IS 'Store identifier (numeric, shared by own and competitor stores).';
COMMENT ON COLUMN retail_mid.site_store.brand IS 'Brand of the store.';
COMMENT ON COLUMN retail_mid.site_store.store_code IS 'The source system''s store id (ods_site.site_id for own stores).';
COMMENT ON COLUMN retail_mid.site_store.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_store.own IS 'True for the brand''s own stores (cannibalisation is reported for these), false for competitors.';
COMMENT ON COLUMN retail_mid.site_store.geom IS 'Point (or polygon: its centroid is used) in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.site_store.attractiveness IS 'Positive attractiveness A: floor area, rating or any numeric score.';
COMMENT ON COLUMN retail_mid.site_store.observed_sales IS 'Observed sales per period, for calibration and comparable-store estimates (own stores).';
COMMENT ON COLUMN retail_mid.site_store.centre IS 'Set by trigger: the store point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.site_store.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_store.lat IS 'Set by trigger: latitude of centre in degrees.';
CREATE INDEX site_store_centre_idx ON retail_mid.site_store USING gist (centre);
CREATE INDEX site_store_point_idx ON retail_mid.site_store USING gist (geometry(centre));

CREATE TABLE retail_mid.site_candidate (
    candidate_id    bigint PRIMARY KEY,
    name            text,
    geom            geometry NOT NULL,
    attractiveness  float8 NOT NULL CHECK (attractiveness > 0 AND attractiveness < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate', '');
COMMENT ON TABLE retail_mid.site_candidate IS 'Candidate sites for a new own store, scored in batch by site_score_candidates.';
COMMENT ON COLUMN retail_mid.site_candidate.candidate_id IS 'Candidate identifier.';
COMMENT ON COLUMN retail_mid.site_candidate.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_candidate.geom IS 'Point (or polygon: its centroid is used) in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.site_candidate.attractiveness IS 'Positive attractiveness the store would have (same scale as site_store).';
COMMENT ON COLUMN retail_mid.site_candidate.centre IS 'Set by trigger: the candidate point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.site_candidate.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_candidate.lat IS 'Set by trigger: latitude of centre in degrees.';
CREATE INDEX site_candidate_centre_idx ON retail_mid.site_candidate USING gist (centre);

CREATE TABLE retail_mid.site_travel_cost (
    zone_id   bigint NOT NULL REFERENCES retail_mid.site_demand_zone ON DELETE CASCADE,
    site_kind text   NOT NULL CHECK (site_kind IN ('store', 'candidate')),
    site_id   bigint NOT NULL,
    cost      float8 NOT NULL CHECK (cost >= 0 AND cost < 'Infinity'),
    PRIMARY KEY (zone_id, site_kind, site_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_travel_cost', '');
COMMENT ON TABLE retail_mid.site_travel_cost IS 'Optional user-supplied travel cost (e.g. drive minutes) from zones to stores and candidates, used instead of distance when use_travel_cost is true; missing pairs are out of reach.';
COMMENT ON COLUMN retail_mid.site_travel_cost.zone_id IS 'Demand zone.';
COMMENT ON COLUMN retail_mid.site_travel_cost.site_kind IS 'store (site_store.store_id) or candidate (site_candidate.candidate_id).';
COMMENT ON COLUMN retail_mid.site_travel_cost.site_id IS 'Store or candidate id.';
COMMENT ON COLUMN retail_mid.site_travel_cost.cost IS 'Non-negative travel cost; the cut-off and min_distance are in the same unit.';

CREATE TABLE retail_mid.site_candidate_score (
    candidate_id        bigint PRIMARY KEY,
    expected_sales      float8 NOT NULL,
    demand_in_reach     float8 NOT NULL,
    market_share        float8 NOT NULL,
    zones_in_reach      int4   NOT NULL,
    trade_area          geometry NOT NULL,
    trade_area_zones    int4   NOT NULL,
    population_1km      float8 NOT NULL,
    population_3km      float8 NOT NULL,
    population_5km      float8 NOT NULL,
    income_1km          float8,
    income_3km          float8,
    income_5km          float8,
    competitors         int4   NOT NULL,
    nearest_competitor_m float8,
    cannibalisation     float8 NOT NULL,
    net_gain            float8 NOT NULL,
    comparable_estimate float8,
    alpha               float8 NOT NULL,
    beta                float8 NOT NULL,
    cutoff              float8 NOT NULL,
    scored_at           timestamptz NOT NULL DEFAULT now()
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate_score', '');
COMMENT ON TABLE retail_mid.site_candidate_score IS 'Result of the last site_score_candidates run: one row per candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.expected_sales IS 'Huff expected sales (demand units) of the candidate opened alone beside the existing stores.';
COMMENT ON COLUMN retail_mid.site_candidate_score.demand_in_reach IS 'Demand of the zones within the cut-off of the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.market_share IS 'expected_sales / demand_in_reach; 0 when no zone is in reach.';
COMMENT ON COLUMN retail_mid.site_candidate_score.zones_in_reach IS 'Zones within the cut-off.';
COMMENT ON COLUMN retail_mid.site_candidate_score.trade_area IS 'EPSG:4326 union of the zones where the candidate''s probability exceeds the threshold (convex hull for point zones); empty when none.';
COMMENT ON COLUMN retail_mid.site_candidate_score.trade_area_zones IS 'Zones in the trade area.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_1km IS 'Population of the zones whose centre is within 1 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_3km IS 'Population of the zones whose centre is within 3 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_5km IS 'Population of the zones whose centre is within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_1km IS 'Population-weighted mean income within 1 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_3km IS 'Population-weighted mean income within 3 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_5km IS 'Population-weighted mean income within 5 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.competitors IS 'Competitor stores within the cut-off distance (metres, also when travel cost is used).';
COMMENT ON COLUMN retail_mid.site_candidate_score.nearest_competitor_m IS 'Distance in metres to the nearest competitor at any distance; null when there are none.';
COMMENT ON COLUMN retail_mid.site_candidate_score.cannibalisation IS 'Expected sales the brand''s own stores lose when the candidate opens (sum of site_candidate_cannibalisation).';
COMMENT ON COLUMN retail_mid.site_candidate_score.net_gain IS 'expected_sales - cannibalisation: what the brand gains.';
COMMENT ON COLUMN retail_mid.site_candidate_score.comparable_estimate IS 'Mean observed sales of the k own stores with the most similar catchment profile; null when no own store has observed sales.';
COMMENT ON COLUMN retail_mid.site_candidate_score.alpha IS 'alpha used.';
COMMENT ON COLUMN retail_mid.site_candidate_score.beta IS 'beta used.';
COMMENT ON COLUMN retail_mid.site_candidate_score.cutoff IS 'Cut-off used (metres, or travel-cost units).';
COMMENT ON COLUMN retail_mid.site_candidate_score.scored_at IS 'When the run happened.';

CREATE TABLE retail_mid.site_candidate_cannibalisation (
    candidate_id    bigint NOT NULL,
    store_id        bigint NOT NULL,
    sales_before    float8 NOT NULL,
    sales_after     float8 NOT NULL,
    cannibalisation float8 NOT NULL,
    PRIMARY KEY (candidate_id, store_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate_cannibalisation', '');
COMMENT ON TABLE retail_mid.site_candidate_cannibalisation IS 'Result of the last site_score_candidates run: expected sales of each own store sharing a zone with a candidate, before and after it opens.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.store_id IS 'Own store that shares at least one zone with the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.sales_before IS 'Expected sales of the store without the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.sales_after IS 'Expected sales of the store with the candidate open.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.cannibalisation IS 'sales_before - sales_after.';

-- ----------------------------------------------------------------- geometry checks
-- Clear errors instead of PostGIS internals, and the EPSG:4326 centre every query uses.
CREATE FUNCTION retail_mid.site_prepare_geometry()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g geometry := NEW.geom;
    t text;
BEGIN
    IF g IS NULL THEN
        RETURN NEW;     -- the NOT NULL constraint reports it
    END IF;
    IF ST_IsEmpty(g) THEN
        RAISE EXCEPTION 'geometry of % must not be empty', TG_TABLE_NAME USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ST_SRID(g) = 0 THEN
        RAISE EXCEPTION 'geometry of % has no SRID', TG_TABLE_NAME
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Set one with ST_SetSRID; any SRID known to spatial_ref_sys works.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM spatial_ref_sys WHERE srid = ST_SRID(g)) THEN
        RAISE EXCEPTION 'geometry of % has unknown SRID %', TG_TABLE_NAME, ST_SRID(g) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    t := GeometryType(g);
    IF t NOT IN ('POINT', 'POLYGON', 'MULTIPOLYGON') THEN
        RAISE EXCEPTION 'geometry of % must be a point or a polygon, not %', TG_TABLE_NAME, lower(t)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT ST_IsValid(g) THEN
        RAISE EXCEPTION 'geometry of % is invalid', TG_TABLE_NAME
            USING ERRCODE = 'invalid_parameter_value', DETAIL = ST_IsValidReason(g) || '.', HINT = 'Repair it with ST_MakeValid.';
    END IF;
    NEW.centre := geography(ST_Transform(ST_Centroid(g), 4326));
    IF TG_TABLE_NAME IN ('site_demand_zone', 'site_store', 'site_candidate') THEN
        NEW.lon := ST_X(geometry(NEW.centre));
        NEW.lat := ST_Y(geometry(NEW.centre));
    END IF;
    IF TG_TABLE_NAME = 'site_demand_zone' THEN
        NEW.geom_4326 := ST_Transform(g, 4326);
        NEW.is_point := t = 'POINT';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_prepare_geometry() IS 'Trigger: rejects empty, SRID-less, unknown-SRID, non point/polygon and invalid geometries, and sets the EPSG:4326 centre (and lon/lat, geom_4326, is_point where the table has them).';

CREATE TRIGGER site_demand_zone_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_demand_zone
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();
CREATE TRIGGER site_store_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_store
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();
CREATE TRIGGER site_candidate_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_candidate
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();

-- ----------------------------------------------------------------- the C core
CREATE TYPE retail_mid.huff_store_sales AS (store_id int8, expected_sales float8, zones int4);
COMMENT ON TYPE retail_mid.huff_store_sales IS 'One store''s Huff expected sales and the number of zones it draws from.';
CREATE TYPE retail_mid.huff_impact AS (candidate_id int8, kind text, object_id int8, before float8, after float8, zones int4);
COMMENT ON TYPE retail_mid.huff_impact IS 'One row of huff_impact: kind candidate (before = demand in reach, after = expected sales, zones = zones in reach), store (expected sales of an existing store before/after the candidate opens, zones shared) or zone (before = zone demand, after = probability above threshold).';

CREATE FUNCTION retail_mid.huff_probabilities(attractiveness float8[], distance float8[], alpha float8,
                                              beta float8, min_distance float8 DEFAULT 100)
RETURNS float8[] AS 'MODULE_PATHNAME', 'huff_probabilities' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_probabilities(float8[], float8[], float8, float8, float8) IS 'Huff probabilities of one zone choosing each store: A^alpha * max(d, min_distance)^-beta, normalised to sum 1.';

CREATE FUNCTION retail_mid.huff_sales_transfn(internal, int8, int8, float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_sales_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_sales_transfn(internal, int8, int8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_sales.';
CREATE FUNCTION retail_mid.huff_impact_transfn(internal, int8, int8, text, float8, float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_transfn(internal, int8, int8, text, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact.';
CREATE FUNCTION retail_mid.huff_combinefn(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_combinefn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_combinefn(internal, internal) IS 'Combine function of huff_sales and huff_impact (appends a worker''s pairs).';
CREATE FUNCTION retail_mid.huff_serialfn(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'huff_serialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_serialfn(internal) IS 'Serial function of huff_sales and huff_impact.';
CREATE FUNCTION retail_mid.huff_deserialfn(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_deserialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_deserialfn(bytea, internal) IS 'Deserial function of huff_sales and huff_impact; rejects malformed bytes.';
CREATE FUNCTION retail_mid.huff_sales_finalfn(internal)
RETURNS retail_mid.huff_store_sales[] AS 'MODULE_PATHNAME', 'huff_sales_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_sales_finalfn(internal) IS 'Final function of huff_sales.';
CREATE FUNCTION retail_mid.huff_impact_finalfn(internal)
RETURNS retail_mid.huff_impact[] AS 'MODULE_PATHNAME', 'huff_impact_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_finalfn(internal) IS 'Final function of huff_impact.';

CREATE AGGREGATE retail_mid.huff_sales(zone_id int8, store_id int8, attractiveness float8, distance float8,
                                       demand float8, alpha float8, beta float8, min_distance float8) (
    SFUNC = retail_mid.huff_sales_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_sales_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_sales(int8, int8, float8, float8, float8, float8, float8, float8) IS 'Huff expected sales per store over (zone, store) pairs within reach: sum over zones of demand * P(zone -> store). One row per pair; demand must be the same on every row of a zone.';

CREATE AGGREGATE retail_mid.huff_impact(zone_id int8, site_id int8, role text, attractiveness float8,
                                        distance float8, demand float8, alpha float8, beta float8,
                                        min_distance float8, threshold float8) (
    SFUNC = retail_mid.huff_impact_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact(int8, int8, text, float8, float8, float8, float8, float8, float8, float8) IS 'For each candidate opened alone beside the existing stores: its expected sales, each existing store''s sales before and after, and its trade-area zones. role is own, competitor or candidate.';

CREATE FUNCTION retail_mid.great_circle_distance(lon1 float8, lat1 float8, lon2 float8, lat2 float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'great_circle_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.great_circle_distance(float8, float8, float8, float8) IS 'Great-circle metres between two lon/lat points in degrees, on the sphere of PostGIS geography with use_spheroid = false (equal to ST_Distance(a::geography, b::geography, false) to rounding).';

CREATE FUNCTION retail_mid.huff_impact_geo_transfn(internal, int8, float8, float8, float8, int8, text, float8, float8,
                                                   float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_geo_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_geo_transfn(internal, int8, float8, float8, float8, int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact_geo.';

CREATE AGGREGATE retail_mid.huff_impact_geo(zone_id int8, zone_lon float8, zone_lat float8, demand float8,
                                            site_id int8, role text, site_lon float8, site_lat float8,
                                            attractiveness float8, alpha float8, beta float8,
                                            min_distance float8, threshold float8, cutoff float8) (
    SFUNC = retail_mid.huff_impact_geo_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact_geo(int8, float8, float8, float8, int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'huff_impact over (zone, site) candidate pairs given by coordinates: the great-circle distance is computed in C and pairs beyond cutoff metres are skipped, so SQL only needs a bounding-box prune (site_search_boxes).';

CREATE FUNCTION retail_mid.site_grid_cell(lon float8, lat float8, radius float8)
RETURNS int8 AS 'MODULE_PATHNAME', 'site_grid_cell' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.site_grid_cell(float8, float8, float8) IS 'Cell of a lon/lat point in the latitude/longitude grid whose cells are at least radius metres across (for pruning pairs by an equi-join).';
CREATE FUNCTION retail_mid.site_grid_cells(lon float8, lat float8, radius float8)
RETURNS int8[] AS 'MODULE_PATHNAME', 'site_grid_cells' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.site_grid_cells(float8, float8, float8) IS 'Every grid cell (site_grid_cell with the same radius) that points within radius metres of lon/lat can lie in, across the antimeridian and the poles.';

CREATE FUNCTION retail_mid.huff_impact_cell_transfn(internal, int8[], float8[], float8[], float8[], int8, text, float8, float8,
                                                    float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_cell_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_cell_transfn(internal, int8[], float8[], float8[], float8[], int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact_geo over the zones of a grid cell given as arrays.';

CREATE AGGREGATE retail_mid.huff_impact_geo(zone_ids int8[], zone_lons float8[], zone_lats float8[], demands float8[],
                                            site_id int8, role text, site_lon float8, site_lat float8,
                                            attractiveness float8, alpha float8, beta float8,
                                            min_distance float8, threshold float8, cutoff float8) (
    SFUNC = retail_mid.huff_impact_cell_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact_geo(int8[], float8[], float8[], float8[], int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'huff_impact_geo with the zones of one grid cell per row as arrays (one row per site and cell it touches): the form the batch scorer uses, since it calls C once per site and cell instead of once per pair.';

CREATE FUNCTION retail_mid.huff_impact_batch(zone_id int8[], zone_lon float8[], zone_lat float8[], demand float8[],
    store_id int8[], store_own boolean[], store_lon float8[], store_lat float8[], store_attractiveness float8[],
    candidate_id int8[], candidate_lon float8[], candidate_lat float8[], candidate_attractiveness float8[],
    alpha float8, beta float8, min_distance float8, threshold float8, cutoff float8)
RETURNS retail_mid.huff_impact[] AS 'MODULE_PATHNAME', 'huff_impact_batch' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_batch(int8[], float8[], float8[], float8[], int8[], boolean[], float8[], float8[], float8[], int8[], float8[], float8[], float8[], float8, float8, float8, float8, float8) IS 'huff_impact_geo over every zone-site pair within cutoff great-circle metres, from whole tables passed as arrays: the zones are bucketed by grid cell in C, so one call replaces the grid join (the batch scorer''s path).';

CREATE FUNCTION retail_mid.site_catchment_batch(zone_lon float8[], zone_lat float8[], population float8[], income float8[],
    candidate_id int8[], candidate_lon float8[], candidate_lat float8[], competitor_lon float8[], competitor_lat float8[],
    competitor_radius float8)
RETURNS TABLE (candidate_id int8, population_1km float8, population_3km float8, population_5km float8,
               income_1km float8, income_3km float8, income_5km float8, competitors int4, nearest_competitor_m float8)
AS 'MODULE_PATHNAME', 'site_catchment_batch' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retail_mid.site_catchment_batch(float8[], float8[], float8[], float8[], int8[], float8[], float8[], float8[], float8[], float8) IS 'site_catchment for many points at once (income NaN = unknown): population and population-weighted income within 1/3/5 km, competitors within competitor_radius, and the great-circle metres to the nearest competitor at any distance (null when there are none).';

CREATE FUNCTION retail_mid.site_trade_area_hulls(zone_id int8[], zone_lon float8[], zone_lat float8[], zone_is_point boolean[],
    pair_candidate int8[], pair_zone int8[])
RETURNS TABLE (candidate_id int8, zones int4, polygon_zones int4, zone_ids int8[], hull bytea)
AS 'MODULE_PATHNAME', 'site_trade_area_hulls' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retail_mid.site_trade_area_hulls(int8[], float8[], float8[], boolean[], int8[], int8[]) IS 'Per candidate of the (candidate, zone) pairs: its trade-area zones, how many are polygons, and the EWKB (EPSG:4326) convex hull of its point zones as ST_ConvexHull(ST_Collect(...)) gives it (point, line when collinear, polygon); null when it has no point zone.';

-- Bounding boxes (EPSG:4326 degrees) holding every point within radius metres of (lon, lat) on the sphere:
-- the spherical cap's latitude band and its widest longitude span asin(sin r / cos lat); a second box when the
-- span crosses the antimeridian; the whole longitude range when the cap reaches a pole.
CREATE FUNCTION retail_mid.site_search_boxes(lon float8, lat float8, radius float8)
RETURNS TABLE (box geometry)
LANGUAGE sql IMMUTABLE PARALLEL SAFE   -- not STRICT and one plain SELECT, so that the planner inlines it
BEGIN ATOMIC
    SELECT v.box
      FROM (SELECT degrees(r.a) AS dlat,
                   CASE WHEN abs(lat) + degrees(r.a) >= 90 OR r.a >= pi() / 2 THEN 180
                        ELSE degrees(asin(least(1, sin(r.a) / cos(radians(lat))))) END AS dlon
              FROM (SELECT radius / 6371008.771415059 * (1 + 1e-9) + 1e-12 AS a) r) d
     CROSS JOIN LATERAL (VALUES
        (ST_MakeEnvelope(CASE WHEN d.dlon >= 180 THEN -180 ELSE lon - d.dlon END, greatest(-90, lat - d.dlat),
                         CASE WHEN d.dlon >= 180 THEN 180 ELSE lon + d.dlon END, least(90, lat + d.dlat), 4326)),
        (CASE WHEN d.dlon < 180 AND lon - d.dlon < -180
              THEN ST_MakeEnvelope(lon - d.dlon + 360, greatest(-90, lat - d.dlat), 180, least(90, lat + d.dlat), 4326) END),
        (CASE WHEN d.dlon < 180 AND lon + d.dlon > 180
              THEN ST_MakeEnvelope(-180, greatest(-90, lat - d.dlat), lon + d.dlon - 360, least(90, lat + d.dlat), 4326) END)
     ) v(box)
     WHERE v.box IS NOT NULL;
END;
COMMENT ON FUNCTION retail_mid.site_search_boxes(float8, float8, float8) IS 'EPSG:4326 boxes that contain every point within radius metres (great circle) of lon/lat, split at the antimeridian; used to prune zone-site pairs with the 2-D GiST index.';

CREATE FUNCTION retail_mid.huff_calibrate(zone_id int8[], store_id int8[], attractiveness float8[],
    distance float8[], demand float8[], observed_store_id int8[], observed_sales float8[],
    alpha0 float8 DEFAULT 1, beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100,
    OUT alpha float8, OUT beta float8, OUT scale float8, OUT sse float8, OUT rmse float8,
    OUT r_squared float8, OUT stores int4, OUT evaluations int4)
RETURNS record AS 'MODULE_PATHNAME', 'huff_calibrate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_calibrate(int8[], int8[], float8[], float8[], float8[], int8[], float8[], float8, float8, float8) IS 'Least-squares fit of alpha and beta (BOBYQA, bounds [0, 10]) so that scale * Huff sales match observed store sales; reports the closed-form scale, SSE, RMSE and R^2.';

CREATE FUNCTION retail_mid.huff_fit(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[],
    demand float8[], obs_zone_id int8[], obs_store_id int8[], observed float8[], method text DEFAULT 'ml',
    fit_attractiveness boolean DEFAULT false, reference_store int8 DEFAULT NULL, alpha0 float8 DEFAULT 1,
    beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100, max_evaluations int4 DEFAULT 1000,
    OUT fit_method text, OUT alpha float8, OUT beta float8, OUT scale float8, OUT log_likelihood float8,
    OUT null_log_likelihood float8, OUT pseudo_r_squared float8, OUT r_squared float8, OUT rmse float8,
    OUT mape float8, OUT observations int4, OUT parameters int4, OUT evaluations int4, OUT converged boolean,
    OUT status text, OUT factor_store_id int8[], OUT attractiveness_factor float8[])
RETURNS record AS 'MODULE_PATHNAME', 'huff_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_fit(int8[], int8[], float8[], float8[], float8[], int8[], int8[], float8[], text, boolean, int8, float8, float8, float8, int4) IS 'Fits the Huff model to observed store totals (obs_zone_id empty) or zone-level flows: method ml (Poisson, scale profiled out = multinomial likelihood) or ls (least squares, closed-form scale), NLopt L-BFGS with analytic gradients, alpha and beta in [0, 10]; with fit_attractiveness alpha is held at alpha0 and each observed store but the reference gets a multiplier on its attractiveness in [1/1000, 1000]. Reports log-likelihood, null log-likelihood, deviance pseudo-R^2, R^2, RMSE, MAPE (percent) and convergence status.';

-- ----------------------------------------------------------------- the SQL layer

-- The (zone, store) pairs within reach, with the distance or travel cost: the input of every Huff computation.
CREATE FUNCTION retail_mid.site_zone_store_pairs(cutoff float8, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (zone_id bigint, store_id bigint, own boolean, attractiveness float8, distance float8,
               demand float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT z.zone_id, s.store_id, s.own, s.attractiveness,
           ST_Distance(z.centre, s.centre, false), coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_demand_zone z
      JOIN retail_mid.site_store s ON ST_DWithin(z.centre, s.centre, cutoff, false)
     WHERE NOT use_travel_cost
    UNION ALL
    SELECT z.zone_id, s.store_id, s.own, s.attractiveness, c.cost, coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_travel_cost c
      JOIN retail_mid.site_demand_zone z ON z.zone_id = c.zone_id
      JOIN retail_mid.site_store s ON s.store_id = c.site_id
     WHERE use_travel_cost AND c.site_kind = 'store' AND c.cost <= cutoff;
END;
COMMENT ON FUNCTION retail_mid.site_zone_store_pairs(float8, boolean) IS 'Zone-store pairs within the cut-off (great-circle metres, GiST-pruned with ST_DWithin) or, with use_travel_cost, the site_travel_cost pairs with cost <= cutoff; demand = coalesce(spend_potential, population).';

CREATE FUNCTION retail_mid.site_zone_candidate_pairs(cutoff float8, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (zone_id bigint, candidate_id bigint, attractiveness float8, distance float8, demand float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT z.zone_id, c.candidate_id, c.attractiveness,
           ST_Distance(z.centre, c.centre, false), coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_candidate c
      JOIN retail_mid.site_demand_zone z ON ST_DWithin(z.centre, c.centre, cutoff, false)
     WHERE NOT use_travel_cost
    UNION ALL
    SELECT z.zone_id, c.candidate_id, c.attractiveness, t.cost, coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_travel_cost t
      JOIN retail_mid.site_demand_zone z ON z.zone_id = t.zone_id
      JOIN retail_mid.site_candidate c ON c.candidate_id = t.site_id
     WHERE use_travel_cost AND t.site_kind = 'candidate' AND t.cost <= cutoff;
END;
COMMENT ON FUNCTION retail_mid.site_zone_candidate_pairs(float8, boolean) IS 'Zone-candidate pairs within the cut-off, like site_zone_store_pairs.';

CREATE FUNCTION retail_mid.site_check_model(alpha float8, beta float8, cutoff float8)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF alpha IS NULL OR beta IS NULL OR cutoff IS NULL THEN
        RAISE EXCEPTION 'alpha, beta and cutoff must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT (alpha >= 0 AND alpha <= 10) THEN
        RAISE EXCEPTION 'alpha must be between 0 and 10' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('alpha is %s.', alpha);
    END IF;
    IF NOT (beta >= 0 AND beta <= 10) THEN
        RAISE EXCEPTION 'beta must be between 0 and 10' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('beta is %s.', beta);
    END IF;
    IF NOT (cutoff > 0 AND cutoff < 'Infinity') THEN
        RAISE EXCEPTION 'cutoff must be a positive finite number' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('cutoff is %s.', cutoff);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_check_model(float8, float8, float8) IS 'Validates alpha, beta and the cut-off before any spatial work is done.';

CREATE FUNCTION retail_mid.site_huff_sales(alpha float8, beta float8, cutoff float8,
                                           min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (store_id bigint, own boolean, expected_sales float8, zones int4)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.site_check_model(alpha, beta, cutoff);
    RETURN QUERY
    SELECT s.store_id, s.own, coalesce(h.expected_sales, 0), coalesce(h.zones, 0)
      FROM retail_mid.site_store s
      LEFT JOIN unnest((SELECT retail_mid.huff_sales(p.zone_id, p.store_id, p.attractiveness, p.distance, p.demand,
                                                     alpha, beta, min_distance)
                          FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p)) h
             ON h.store_id = s.store_id
     ORDER BY s.store_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_huff_sales(float8, float8, float8, float8, boolean) IS 'Huff expected sales of every existing store (0 for stores with no zone in reach).';

-- Catchment profile of any point: population and population-weighted income within 1/3/5 km, competitors.
-- Pruned with site_search_boxes on the 2-D indexes, measured with great_circle_distance.
CREATE FUNCTION retail_mid.site_catchment(lon float8, lat float8, competitor_radius float8 DEFAULT 5000)
RETURNS TABLE (population_1km float8, population_3km float8, population_5km float8, income_1km float8,
               income_3km float8, income_5km float8, competitors int4, nearest_competitor_m float8)
LANGUAGE sql STABLE PARALLEL SAFE   -- not STRICT, so that the planner can inline it
BEGIN ATOMIC
    SELECT coalesce(sum(z.population) FILTER (WHERE dd.d <= 1000), 0),
           coalesce(sum(z.population) FILTER (WHERE dd.d <= 3000), 0),
           coalesce(sum(z.population), 0),
           sum(z.population * z.income) FILTER (WHERE dd.d <= 1000)
               / nullif(sum(z.population) FILTER (WHERE dd.d <= 1000 AND z.income IS NOT NULL), 0),
           sum(z.population * z.income) FILTER (WHERE dd.d <= 3000)
               / nullif(sum(z.population) FILTER (WHERE dd.d <= 3000 AND z.income IS NOT NULL), 0),
           sum(z.population * z.income) / nullif(sum(z.population) FILTER (WHERE z.income IS NOT NULL), 0),
           (SELECT count(*)::int4
              FROM retail_mid.site_search_boxes(site_catchment.lon, site_catchment.lat, competitor_radius) cb
              JOIN retail_mid.site_store s ON geometry(s.centre) && cb.box
             WHERE NOT s.own
               AND retail_mid.great_circle_distance(s.lon, s.lat, site_catchment.lon, site_catchment.lat) <= competitor_radius),
           (SELECT retail_mid.great_circle_distance(s.lon, s.lat, site_catchment.lon, site_catchment.lat)
              FROM retail_mid.site_store s WHERE NOT s.own
             ORDER BY s.centre <-> geography(ST_SetSRID(ST_MakePoint(site_catchment.lon, site_catchment.lat), 4326)) LIMIT 1)
      FROM retail_mid.site_search_boxes(site_catchment.lon, site_catchment.lat, 5000) b
      JOIN retail_mid.site_demand_zone z ON geometry(z.centre) && b.box
     CROSS JOIN LATERAL (SELECT retail_mid.great_circle_distance(z.lon, z.lat, site_catchment.lon, site_catchment.lat) AS d) dd
     WHERE dd.d <= 5000;
END;
COMMENT ON FUNCTION retail_mid.site_catchment(float8, float8, float8) IS 'Catchment profile of a lon/lat point: population and population-weighted mean income of the zones whose centre is within 1, 3 and 5 km (great circle), competitors within competitor_radius metres and the distance to the nearest competitor (null when there is none).';

-- Comparable-store estimate: the k own stores with observed sales whose catchment profile is closest
-- (z-scored population 1/3/5 km, income 5 km, competitors; Euclidean distance).
CREATE FUNCTION retail_mid.site_comparable_stores(candidate_id bigint, k int4 DEFAULT 5, competitor_radius float8 DEFAULT 5000)
RETURNS TABLE (store_id bigint, profile_distance float8, observed_sales float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'k must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH prof AS (
        SELECT s.store_id AS id, false AS is_candidate, s.observed_sales AS sales, p.*
          FROM retail_mid.site_store s CROSS JOIN LATERAL retail_mid.site_catchment(s.lon, s.lat, competitor_radius) p
         WHERE s.own AND s.observed_sales IS NOT NULL
        UNION ALL
        SELECT c.candidate_id, true, NULL, p.*
          FROM retail_mid.site_candidate c CROSS JOIN LATERAL retail_mid.site_catchment(c.lon, c.lat, competitor_radius) p
         WHERE c.candidate_id = site_comparable_stores.candidate_id
    ), stats AS (
        SELECT avg(population_1km) m1, nullif(stddev_pop(population_1km), 0) s1,
               avg(population_3km) m3, nullif(stddev_pop(population_3km), 0) s3,
               avg(population_5km) m5, nullif(stddev_pop(population_5km), 0) s5,
               avg(income_5km) mi, nullif(stddev_pop(income_5km), 0) si,
               avg(competitors) mc, nullif(stddev_pop(competitors), 0) sc
          FROM prof WHERE NOT is_candidate
    ), z AS (
        SELECT p.id, p.is_candidate, p.sales,
               coalesce((p.population_1km - m1) / s1, 0) z1, coalesce((p.population_3km - m3) / s3, 0) z3,
               coalesce((p.population_5km - m5) / s5, 0) z5, coalesce((p.income_5km - mi) / si, 0) zi,
               coalesce((p.competitors - mc) / sc, 0) zc
          FROM prof p CROSS JOIN stats
    )
    SELECT o.id, sqrt((o.z1 - c.z1)^2 + (o.z3 - c.z3)^2 + (o.z5 - c.z5)^2 + (o.zi - c.zi)^2 + (o.zc - c.zc)^2),
           o.sales
      FROM z o CROSS JOIN z c
     WHERE NOT o.is_candidate AND c.is_candidate
     ORDER BY 2, 1
     LIMIT k;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_comparable_stores(bigint, int4, float8) IS 'The k own stores with observed sales whose catchment profile (population 1/3/5 km, income 5 km, competitors; z-scored) is nearest to the candidate''s, with their sales.';

-- Batch scoring of every candidate. Replaces the contents of site_candidate_score and
-- site_candidate_cannibalisation; returns the number of candidates scored.
CREATE FUNCTION retail_mid.site_score_candidates(alpha float8, beta float8, cutoff float8,
    threshold float8 DEFAULT 0.5, min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    k_comparable int4 DEFAULT 5)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint;
    v_n bigint;
    v_pairs bigint;
    v_competitor_radius float8 := CASE WHEN use_travel_cost THEN 5000 ELSE cutoff END;
    v_zone_id int8[]; v_zone_lon float8[]; v_zone_lat float8[]; v_zone_demand float8[];
    v_zone_population float8[]; v_zone_income float8[]; v_zone_is_point boolean[];
BEGIN
    PERFORM retail_mid.site_check_model(alpha, beta, cutoff);
    IF threshold IS NULL OR NOT (threshold >= 0 AND threshold <= 1) THEN
        RAISE EXCEPTION 'threshold must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('threshold is %s.', threshold);
    END IF;
    IF min_distance IS NULL OR NOT (min_distance > 0 AND min_distance < 'Infinity') THEN
        RAISE EXCEPTION 'min_distance must be a positive finite number' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('min_distance is %s.', min_distance);
    END IF;
    IF k_comparable IS NULL OR k_comparable < 1 THEN
        RAISE EXCEPTION 'k_comparable must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one scoring run at a time: a second run waits here instead of colliding on the result tables
    LOCK TABLE retail_mid.site_candidate_score, retail_mid.site_candidate_cannibalisation IN SHARE ROW EXCLUSIVE MODE;
    IF to_regclass('pg_temp.site_impact_tmp') IS NOT NULL THEN
        DROP TABLE site_impact_tmp;          -- left over by an earlier run in the same transaction
    END IF;
    v_job := retail_mid.job_start('site_score_candidates', jsonb_build_object('alpha', alpha, 'beta', beta,
        'cutoff', cutoff, 'threshold', threshold, 'min_distance', min_distance, 'use_travel_cost', use_travel_cost));

    SELECT coalesce(array_agg(z.zone_id), '{}'), coalesce(array_agg(z.lon), '{}'), coalesce(array_agg(z.lat), '{}'),
           coalesce(array_agg(coalesce(z.spend_potential, z.population)), '{}'), coalesce(array_agg(z.population), '{}'),
           coalesce(array_agg(coalesce(z.income, 'NaN')), '{}'), coalesce(array_agg(z.is_point), '{}')
      INTO v_zone_id, v_zone_lon, v_zone_lat, v_zone_demand, v_zone_population, v_zone_income, v_zone_is_point
      FROM retail_mid.site_demand_zone z;

    IF use_travel_cost THEN
        CREATE TEMP TABLE site_impact_tmp ON COMMIT DROP AS
        SELECT (u).candidate_id, (u).kind, (u).object_id, (u).before, (u).after, (u).zones
          FROM (SELECT unnest(retail_mid.huff_impact(p.zone_id, p.site_id, p.role, p.attractiveness, p.distance,
                                                     p.demand, alpha, beta, min_distance, threshold)) u
                  FROM (SELECT s.zone_id, s.store_id AS site_id, CASE WHEN s.own THEN 'own' ELSE 'competitor' END AS role,
                               s.attractiveness, s.distance, s.demand
                          FROM retail_mid.site_zone_store_pairs(cutoff, true) s
                        UNION ALL
                        SELECT c.zone_id, c.candidate_id, 'candidate', c.attractiveness, c.distance, c.demand
                          FROM retail_mid.site_zone_candidate_pairs(cutoff, true) c) p) x;
    ELSE
        -- one scan of each table into arrays; the grid pruning, the great-circle distances and the cut-off
        -- are done in C (huff_impact_batch), which returns the same rows as huff_impact_geo over the grid join
        CREATE TEMP TABLE site_impact_tmp ON COMMIT DROP AS
        SELECT (u).candidate_id, (u).kind, (u).object_id, (u).before, (u).after, (u).zones
          FROM (SELECT unnest(retail_mid.huff_impact_batch(v_zone_id, v_zone_lon, v_zone_lat, v_zone_demand,
                                                           s.ids, s.owns, s.lons, s.lats, s.attrs,
                                                           c.ids, c.lons, c.lats, c.attrs,
                                                           alpha, beta, min_distance, threshold, cutoff)) u
                  FROM (SELECT coalesce(array_agg(store_id), '{}') ids, coalesce(array_agg(own), '{}') owns,
                               coalesce(array_agg(lon), '{}') lons, coalesce(array_agg(lat), '{}') lats,
                               coalesce(array_agg(attractiveness), '{}') attrs FROM retail_mid.site_store) s,
                       (SELECT coalesce(array_agg(candidate_id), '{}') ids, coalesce(array_agg(lon), '{}') lons,
                               coalesce(array_agg(lat), '{}') lats, coalesce(array_agg(attractiveness), '{}') attrs
                          FROM retail_mid.site_candidate) c) x;
    END IF;
    GET DIAGNOSTICS v_pairs = ROW_COUNT;
    ANALYZE site_impact_tmp (kind);   -- row counts per kind: the joins below are planned far better with them
    RAISE NOTICE 'site_score_candidates: Huff impact computed, % result rows', v_pairs;

    DELETE FROM retail_mid.site_candidate_cannibalisation;
    DELETE FROM retail_mid.site_candidate_score;
    INSERT INTO retail_mid.site_candidate_cannibalisation (candidate_id, store_id, sales_before, sales_after, cannibalisation)
    SELECT i.candidate_id, i.object_id, i.before, i.after, i.before - i.after
      FROM site_impact_tmp i JOIN retail_mid.site_store s ON s.store_id = i.object_id
     WHERE i.kind = 'store' AND s.own;

    INSERT INTO retail_mid.site_candidate_score
    -- catchments and competitors of every candidate in one C call (the same numbers as site_catchment)
    WITH ci AS (SELECT * FROM site_impact_tmp WHERE kind = 'candidate'),
         catch AS (
            SELECT k.* FROM (SELECT coalesce(array_agg(candidate_id), '{}') ids, coalesce(array_agg(lon), '{}') lons,
                                    coalesce(array_agg(lat), '{}') lats FROM retail_mid.site_candidate) c,
                            (SELECT coalesce(array_agg(lon), '{}') lons, coalesce(array_agg(lat), '{}') lats
                               FROM retail_mid.site_store WHERE NOT own) s,
                            retail_mid.site_catchment_batch(v_zone_lon, v_zone_lat, v_zone_population, v_zone_income,
                                                            c.ids, c.lons, c.lats, s.lons, s.lats, v_competitor_radius) k),
         cn AS (SELECT k.candidate_id, sum(k.cannibalisation) AS total
                  FROM retail_mid.site_candidate_cannibalisation k GROUP BY k.candidate_id),
         -- trade areas: the hull of point zones in C; polygon zones (rare in batches) unioned with PostGIS, their
         -- rows fetched by primary key
         ta AS (SELECT h.candidate_id, h.zones,
                       CASE WHEN h.polygon_zones = 0 THEN ST_GeomFromEWKB(h.hull) ELSE (
                           -- polygons are unioned, points hulled; each aggregate only sees its own kind
                           SELECT CASE WHEN count(*) FILTER (WHERE z.is_point) = 0
                                       THEN ST_Union(z.geom_4326) FILTER (WHERE NOT z.is_point)
                                       ELSE ST_Union(ST_Union(z.geom_4326) FILTER (WHERE NOT z.is_point),
                                                     ST_ConvexHull(ST_Collect(z.geom_4326) FILTER (WHERE z.is_point))) END
                             FROM retail_mid.site_demand_zone z WHERE z.zone_id = ANY (h.zone_ids)) END AS area
                  FROM (SELECT coalesce(array_agg(candidate_id), '{}') c, coalesce(array_agg(object_id), '{}') z
                          FROM site_impact_tmp WHERE kind = 'zone') p,
                       retail_mid.site_trade_area_hulls(v_zone_id, v_zone_lon, v_zone_lat, v_zone_is_point, p.c, p.z) h)
    SELECT c.candidate_id,
           coalesce(ci.after, 0), coalesce(ci.before, 0),
           coalesce(ci.after / nullif(ci.before, 0), 0),
           coalesce(ci.zones, 0),
           coalesce(ta.area, ST_SetSRID('POLYGON EMPTY'::geometry, 4326)), coalesce(ta.zones, 0),
           coalesce(catch.population_1km, 0), coalesce(catch.population_3km, 0), coalesce(catch.population_5km, 0),
           catch.income_1km, catch.income_3km, catch.income_5km,
           coalesce(catch.competitors, 0), catch.nearest_competitor_m,
           coalesce(cn.total, 0), coalesce(ci.after, 0) - coalesce(cn.total, 0),
           NULL, alpha, beta, cutoff, now()
      FROM retail_mid.site_candidate c
      LEFT JOIN ci ON ci.candidate_id = c.candidate_id
      LEFT JOIN cn ON cn.candidate_id = c.candidate_id
      LEFT JOIN ta ON ta.candidate_id = c.candidate_id
      LEFT JOIN catch ON catch.candidate_id = c.candidate_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    RAISE NOTICE 'site_score_candidates: % candidates scored', v_n;

    IF EXISTS (SELECT 1 FROM retail_mid.site_store WHERE own AND observed_sales IS NOT NULL) THEN
        UPDATE retail_mid.site_candidate_score sc
           SET comparable_estimate = (SELECT avg(cs.observed_sales)
                                        FROM retail_mid.site_comparable_stores(sc.candidate_id, k_comparable, v_competitor_radius) cs);
        RAISE NOTICE 'site_score_candidates: comparable-store estimates done';
    END IF;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('impact_rows', v_pairs));
    RETURN v_n;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_score_candidates(float8, float8, float8, float8, float8, boolean, int4) IS 'Scores every candidate (Huff expected sales, market share, trade area, catchment, competitors, cannibalisation of own stores, comparable-store estimate) into site_candidate_score and site_candidate_cannibalisation; returns the number of candidates.';

CREATE VIEW retail_mid.site_candidate_ranking AS
SELECT rank() OVER (ORDER BY s.net_gain DESC, s.candidate_id)::int4 AS rank,
       s.candidate_id, c.name, s.expected_sales, s.cannibalisation, s.net_gain, s.market_share,
       s.population_5km, s.income_5km, s.competitors, s.nearest_competitor_m, s.comparable_estimate,
       s.trade_area
  FROM retail_mid.site_candidate_score s
  JOIN retail_mid.site_candidate c ON c.candidate_id = s.candidate_id;
COMMENT ON VIEW retail_mid.site_candidate_ranking IS 'Candidates of the last scoring run ranked by net gain (expected sales minus cannibalisation of own stores).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.rank IS '1 = best net gain.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.name IS 'Candidate label.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.expected_sales IS 'Huff expected sales of the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.cannibalisation IS 'Sales taken from own stores.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.net_gain IS 'expected_sales - cannibalisation.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.market_share IS 'Share of the demand in reach.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.population_5km IS 'Population within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.income_5km IS 'Population-weighted income within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.competitors IS 'Competitors within the cut-off.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.nearest_competitor_m IS 'Metres to the nearest competitor (null: none).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.comparable_estimate IS 'Comparable-store sales estimate (null: no own store with observed sales).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.trade_area IS 'Trade-area polygon (EPSG:4326).';

-- Calibration against the observed sales of existing stores.
CREATE FUNCTION retail_mid.site_calibrate(cutoff float8, alpha0 float8 DEFAULT 1, beta0 float8 DEFAULT 2,
    min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    OUT alpha float8, OUT beta float8, OUT scale float8, OUT sse float8, OUT rmse float8,
    OUT r_squared float8, OUT stores int4, OUT evaluations int4)
RETURNS record LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.site_check_model(alpha0, beta0, cutoff);
    SELECT r.* INTO alpha, beta, scale, sse, rmse, r_squared, stores, evaluations
      FROM (SELECT array_agg(p.zone_id) z, array_agg(p.store_id) s, array_agg(p.attractiveness) a,
                   array_agg(p.distance) d, array_agg(p.demand) m
              FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p) pp,
           (SELECT coalesce(array_agg(o.store_id), '{}') os, coalesce(array_agg(o.observed_sales), '{}') ov
              FROM retail_mid.site_store o WHERE o.observed_sales IS NOT NULL) oo,
           retail_mid.huff_calibrate(coalesce(pp.z, '{}'), coalesce(pp.s, '{}'), coalesce(pp.a, '{}'),
                                     coalesce(pp.d, '{}'), coalesce(pp.m, '{}'), oo.os, oo.ov,
                                     alpha0, beta0, min_distance) r;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_calibrate(float8, float8, float8, float8, boolean) IS 'Fits alpha and beta to site_store.observed_sales by least squares (huff_calibrate) with goodness of fit.';

-- Observed flows (customers or sales of a zone at a store), e.g. from loyalty cards: the richer input of the
-- maximum-likelihood calibration, and the only one with which per-store attractiveness can be fitted.
CREATE TABLE retail_mid.site_observed_flow (
    zone_id  bigint NOT NULL REFERENCES retail_mid.site_demand_zone ON DELETE CASCADE,
    store_id bigint NOT NULL REFERENCES retail_mid.site_store ON DELETE CASCADE,
    observed float8 NOT NULL CHECK (observed >= 0 AND observed < 'Infinity'),
    PRIMARY KEY (zone_id, store_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_observed_flow', '');
COMMENT ON TABLE retail_mid.site_observed_flow IS 'Observed customers (or sales) per demand zone and store, for site_calibrate_fit(level => ''zone'').';
COMMENT ON COLUMN retail_mid.site_observed_flow.zone_id IS 'Demand zone the customers live in.';
COMMENT ON COLUMN retail_mid.site_observed_flow.store_id IS 'Store they bought at.';
COMMENT ON COLUMN retail_mid.site_observed_flow.observed IS 'Customers or sales, non-negative; zero counts are information too.';

CREATE FUNCTION retail_mid.site_calibrate_fit(cutoff float8, method text DEFAULT 'ml', level text DEFAULT 'store',
    fit_attractiveness boolean DEFAULT false, reference_store bigint DEFAULT NULL, alpha0 float8 DEFAULT 1,
    beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    max_evaluations int4 DEFAULT 1000,
    OUT fit_method text, OUT alpha float8, OUT beta float8, OUT scale float8, OUT log_likelihood float8,
    OUT null_log_likelihood float8, OUT pseudo_r_squared float8, OUT r_squared float8, OUT rmse float8,
    OUT mape float8, OUT observations int4, OUT parameters int4, OUT evaluations int4, OUT converged boolean,
    OUT status text, OUT factor_store_id int8[], OUT attractiveness_factor float8[])
RETURNS record LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE m text := method;
BEGIN
    PERFORM retail_mid.site_check_model(alpha0, beta0, cutoff);
    IF level IS NULL OR level NOT IN ('store', 'zone') THEN
        RAISE EXCEPTION 'level must be store or zone' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'store fits site_store.observed_sales, zone fits site_observed_flow.';
    END IF;
    IF m IS NULL OR fit_attractiveness IS NULL OR max_evaluations IS NULL THEN
        RAISE EXCEPTION 'method, fit_attractiveness and max_evaluations must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.* INTO fit_method, alpha, beta, scale, log_likelihood, null_log_likelihood, pseudo_r_squared, r_squared,
                    rmse, mape, observations, parameters, evaluations, converged, status, factor_store_id,
                    attractiveness_factor
      FROM (SELECT array_agg(p.zone_id) z, array_agg(p.store_id) s, array_agg(p.attractiveness) a,
                   array_agg(p.distance) d, array_agg(p.demand) dm
              FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p) pp,
           (SELECT coalesce(array_agg(o.zone_id ORDER BY o.zone_id, o.store_id), '{}') oz,
                   coalesce(array_agg(o.store_id ORDER BY o.zone_id, o.store_id), '{}') os,
                   coalesce(array_agg(o.observed ORDER BY o.zone_id, o.store_id), '{}') ov
              FROM (SELECT NULL::bigint AS zone_id, st.store_id, st.observed_sales AS observed
                      FROM retail_mid.site_store st WHERE level = 'store' AND st.observed_sales IS NOT NULL
                    UNION ALL
                    SELECT f.zone_id, f.store_id, f.observed FROM retail_mid.site_observed_flow f WHERE level = 'zone') o) oo,
           retail_mid.huff_fit(coalesce(pp.z, '{}'), coalesce(pp.s, '{}'), coalesce(pp.a, '{}'), coalesce(pp.d, '{}'),
                               coalesce(pp.dm, '{}'), CASE WHEN level = 'zone' THEN oo.oz ELSE '{}' END, oo.os, oo.ov,
                               m, fit_attractiveness, reference_store, alpha0, beta0, min_distance, max_evaluations) r;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_calibrate_fit(float8, text, text, boolean, bigint, float8, float8, float8, boolean, int4) IS 'Calibrates the Huff model (huff_fit) on the zone-store pairs within the cut-off: level store fits site_store.observed_sales, level zone fits site_observed_flow; method ml (maximum likelihood, default) or ls; with fit_attractiveness (level zone only) a multiplier per observed store, reference store fixed at 1, alpha held at alpha0.';

-- plpgsql bodies resolve PostGIS names at run time: give them PostGIS's schema (unknown until install).
DO $$
DECLARE
    v_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'postgis');
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['retail_mid.site_prepare_geometry()',
                             'retail_mid.site_huff_sales(float8, float8, float8, float8, boolean)',
                             'retail_mid.site_comparable_stores(bigint, int4, float8)',
                             'retail_mid.site_score_candidates(float8, float8, float8, float8, float8, boolean, int4)',
                             'retail_mid.site_calibrate(float8, float8, float8, float8, boolean)',
                             'retail_mid.site_calibrate_fit(float8, text, text, boolean, bigint, float8, float8, float8, boolean, int4)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, v_schema);
    END LOOP;
END;
$$;

-- Copies a brand's demand zones (ods_demand_zone) and own stores (ods_site, kind store, with a location) into the
-- site-selection tables, skipping those already there; competitors and candidates have no ODS source.
CREATE FUNCTION retail_mid.site_import_ods(brand text)
RETURNS TABLE (zones bigint, stores bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_zones bigint; v_stores bigint; b text := brand;
BEGIN
    IF b IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, households, income, spend_potential)
    SELECT (SELECT coalesce(max(zone_id), 0) FROM retail_mid.site_demand_zone) + row_number() OVER (ORDER BY z.zone_id),
           z.zone_id, z.geom, coalesce(z.population, 0), z.households, z.income, z.spend_potential
      FROM retail_mid.ods_demand_zone z
     WHERE z.brand = b AND NOT EXISTS (SELECT 1 FROM retail_mid.site_demand_zone s WHERE s.name = z.zone_id);
    GET DIAGNOSTICS v_zones = ROW_COUNT;
    INSERT INTO retail_mid.site_store (store_id, brand, store_code, name, own, geom, attractiveness)
    SELECT (SELECT coalesce(max(store_id), 0) FROM retail_mid.site_store) + row_number() OVER (ORDER BY o.site_id),
           o.brand, o.site_id, o.site_name, true, o.geom, coalesce(o.floor_area, 1)
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND o.kind = 'store' AND o.geom IS NOT NULL AND o.closed_on IS NULL
       AND NOT EXISTS (SELECT 1 FROM retail_mid.site_store s WHERE s.brand = o.brand AND s.store_code = o.site_id);
    GET DIAGNOSTICS v_stores = ROW_COUNT;
    RETURN QUERY SELECT v_zones, v_stores;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_import_ods(text) IS 'Copies a brand''s ODS demand zones and located, open own stores (attractiveness = floor area) into site_demand_zone / site_store; returns how many of each were added.';
