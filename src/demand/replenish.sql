-- demand/replenish.sql: replenishment from forecasts: safety stock, reorder point, order-up-to level, order quantities.
--
-- Lead-time demand, stored forecasts, suggested orders, transfers between stores and a service-level backtest.

CREATE FUNCTION retail_mid.normal_quantile(p float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'normal_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.normal_quantile(float8) IS 'Inverse standard normal CDF (z for a cycle service level), accurate to about 1e-15.';

CREATE FUNCTION retail_mid.safety_stock(service_level float8, sigma_demand float8, lead_time float8,
                                        mean_demand float8 DEFAULT 0, sigma_lead_time float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- abs(x) < Infinity is false for NaN (greater than every number in PostgreSQL) and for +-Infinity
    IF NOT (abs(sigma_demand) < 'Infinity' AND abs(lead_time) < 'Infinity' AND abs(mean_demand) < 'Infinity'
            AND abs(sigma_lead_time) < 'Infinity') THEN
        RAISE EXCEPTION 'safety stock inputs must be finite numbers' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got sigma_demand %s, lead_time %s, mean_demand %s, sigma_lead_time %s.',
                            sigma_demand, lead_time, mean_demand, sigma_lead_time);
    END IF;
    IF sigma_demand < 0 OR lead_time < 0 OR mean_demand < 0 OR sigma_lead_time < 0 THEN
        RAISE EXCEPTION 'safety stock inputs must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN retail_mid.normal_quantile(service_level)
           * sqrt(lead_time * sigma_demand ^ 2 + mean_demand ^ 2 * sigma_lead_time ^ 2);
END;
$$;
COMMENT ON FUNCTION retail_mid.safety_stock(float8, float8, float8, float8, float8) IS 'Safety stock z * sqrt(L * sigma_d^2 + d^2 * sigma_L^2) for a cycle service level (z = normal quantile); with a fixed lead time it is z * sigma_d * sqrt(L). Demand per period, lead time in periods.';

-- Lead-time demand from a forecast result: the sum of the first L point forecasts, and its quantile for a service
-- level with the per-step standard deviations read off the upper half of the 80% interval (the lower bound may be
-- clipped at 0) and added as independent (an
-- approximation: ETS forecast errors are positively correlated across steps, so this is on the low side).
CREATE FUNCTION retail_mid.lead_time_demand(result jsonb, lead_time int4, service_level float8,
                                            OUT mean float8, OUT quantile float8, OUT sigma float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lead_time < 1 OR lead_time > jsonb_array_length(result -> 'mean') THEN
        RAISE EXCEPTION 'lead time must be between 1 and the forecast horizon (%)', jsonb_array_length(result -> 'mean')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT sum(r.mean), sqrt(sum(((r.hi80 - r.mean) / 1.2815515655446004) ^ 2))
      INTO mean, sigma FROM retail_mid.forecast_rows(result) r WHERE r.step <= lead_time;
    quantile := greatest(0, mean + retail_mid.normal_quantile(service_level) * coalesce(sigma, 0));
END;
$$;
COMMENT ON FUNCTION retail_mid.lead_time_demand(jsonb, int4, float8) IS 'Demand over the first lead_time forecast steps: its mean, its service-level quantile and sigma (per-step sigma = (hi80 - mean) / z(0.9), added as independent).';

CREATE FUNCTION retail_mid.order_quantity(on_hand float8, on_order float8, reserved float8, reorder_point float8,
                                          order_up_to float8, pack_size float8 DEFAULT 1, min_order_qty float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_position float8 := on_hand + on_order - reserved;
    v_qty float8;
BEGIN
    -- abs(x) < Infinity is false for NaN (greater than every number in PostgreSQL) and for +-Infinity
    IF NOT (abs(on_hand) < 'Infinity' AND abs(on_order) < 'Infinity' AND abs(reserved) < 'Infinity'
            AND abs(reorder_point) < 'Infinity' AND abs(order_up_to) < 'Infinity' AND abs(pack_size) < 'Infinity'
            AND abs(min_order_qty) < 'Infinity') THEN
        RAISE EXCEPTION 'order quantity inputs must be finite numbers' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got on_hand %s, on_order %s, reserved %s, reorder_point %s, order_up_to %s, pack_size %s, min_order_qty %s.',
                            on_hand, on_order, reserved, reorder_point, order_up_to, pack_size, min_order_qty);
    END IF;
    IF pack_size <= 0 THEN
        RAISE EXCEPTION 'pack size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_order_qty < 0 THEN
        RAISE EXCEPTION 'minimum order quantity must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF order_up_to < reorder_point THEN
        RAISE EXCEPTION 'order-up-to level must not be below the reorder point' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_position > reorder_point OR v_position >= order_up_to THEN
        RETURN 0;   -- with reorder point = order-up-to (base stock) a position at the level needs nothing
    END IF;
    -- the 1e-9 keeps an exact multiple (computed in floating point) from rounding up to one pack more
    v_qty := ceil((order_up_to - v_position) / pack_size - 1e-9) * pack_size;
    IF v_qty < min_order_qty THEN
        v_qty := ceil(min_order_qty / pack_size - 1e-9) * pack_size;
    END IF;
    RETURN greatest(v_qty, 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.order_quantity(float8, float8, float8, float8, float8, float8, float8) IS '(s, S) policy: when the inventory position (on hand + on order - reserved) is at or below the reorder point s and below S, order up to S, rounded up to whole packs and raised to the minimum order quantity (itself rounded up to packs); otherwise 0.';

-- ----------------------------------------------------------------- kernels in C (src/demand/replenish.c)

CREATE FUNCTION retail_mid.lead_time_demand_mixture(means float8[], sigmas float8[], lead_time_mean float8,
                                                    lead_time_sd float8, service_level float8,
                                                    OUT mean float8, OUT sd float8, OUT quantile float8)
AS 'MODULE_PATHNAME', 'lead_time_demand_mixture' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.lead_time_demand_mixture(float8[], float8[], float8, float8, float8) IS 'Distribution of demand over a variable lead time: day h ~ Normal(means[h], sigmas[h]^2), days independent; lead time a whole number of days K with P(K = k) = Phi((k + 0.5 - L)/sd) - Phi((k - 0.5 - L)/sd) (tails put on 0 and on the horizon), or fixed L (fractional day pro rata) when sd = 0. Returns the mixture mean, sd and service-level quantile (bisection, clipped at 0).';

CREATE FUNCTION retail_mid.lead_time_demand_fill_rate(means float8[], sigmas float8[], lead_time_mean float8,
                                                      lead_time_sd float8, fill_rate float8, order_quantity float8,
                                                      OUT mean float8, OUT sd float8, OUT level float8,
                                                      OUT expected_shortage float8)
AS 'MODULE_PATHNAME', 'lead_time_demand_fill_rate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.lead_time_demand_fill_rate(float8[], float8[], float8, float8, float8, float8) IS 'The lead-time demand mixture of lead_time_demand_mixture; instead of a quantile, the smallest level x >= 0 whose expected shortage per cycle E[(X - x)+] (sum of w_k sd_k G((x - mean_k)/sd_k), G the normal loss function) is at most (1 - fill_rate) / fill_rate * order_quantity: the loss-function method for a target fill rate with lost sales (Silver, Pyke & Peterson). Returns the mixture mean and sd, that level and its expected shortage.';

CREATE FUNCTION retail_mid.normal_loss(k float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'normal_loss' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.normal_loss(float8) IS 'Standard normal loss function G(k) = E[(Z - k)+] = phi(k) - k (1 - Phi(k)): expected shortage per cycle in units of sigma for a safety factor k.';

CREATE FUNCTION retail_mid.fill_rate_safety_factor(fill_rate float8, sigma float8, order_quantity float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'fill_rate_safety_factor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.fill_rate_safety_factor(float8, float8, float8) IS 'Safety factor k for a target fill rate with lost sales: sigma G(k) = (1 - fill_rate) / fill_rate * order_quantity (G = normal_loss, sigma = sd of demand over the protection interval, order_quantity = expected units per cycle); safety stock = k sigma. 0 when sigma = 0; z(fill_rate) when order_quantity = 0.';

CREATE FUNCTION retail_mid.replenish_simulate(demand float8[], reorder_point float8[], order_up_to float8[],
                                              lead_time int4, initial_on_hand float8, pack_size float8 DEFAULT 1,
                                              min_order_qty float8 DEFAULT 0,
                                              OUT days int4, OUT demand_units float8, OUT sold float8, OUT lost float8,
                                              OUT fill_rate float8, OUT days_out_of_stock int4, OUT days_with_lost_sales int4,
                                              OUT avg_on_hand float8, OUT orders int4, OUT units_ordered float8,
                                              OUT final_on_hand float8, OUT cycles int4, OUT stockout_cycles int4,
                                              OUT cycle_service_level float8)
AS 'MODULE_PATHNAME', 'replenish_simulate' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.replenish_simulate(float8[], float8[], float8[], int4, float8, float8, float8) IS 'Day-by-day (s, S) simulation with lost sales: each day orders due arrive, on review days (reorder_point not NULL) an order up to order_up_to is placed when the position (on hand + on order) is at or below the reorder point (whole packs, at least min_order_qty; arrives lead_time days later, 0 = the same morning), then demand is served from stock and the rest is lost. Days out of stock = days ending with nothing on hand; fill rate = sold / demand; average on hand over end-of-day stock; a cycle runs from one arrival day to the day before the next (the last, open cycle is not counted), a stock-out cycle loses sales, cycle service level = 1 - stockout_cycles / cycles.';

CREATE FUNCTION retail_mid.replenish_simulate(demand float8[], reorder_point float8[], order_up_to float8[],
                                              lead_times int4[], initial_on_hand float8, pack_size float8 DEFAULT 1,
                                              min_order_qty float8 DEFAULT 0,
                                              OUT days int4, OUT demand_units float8, OUT sold float8, OUT lost float8,
                                              OUT fill_rate float8, OUT days_out_of_stock int4, OUT days_with_lost_sales int4,
                                              OUT avg_on_hand float8, OUT orders int4, OUT units_ordered float8,
                                              OUT final_on_hand float8, OUT cycles int4, OUT stockout_cycles int4,
                                              OUT cycle_service_level float8)
AS 'MODULE_PATHNAME', 'replenish_simulate_lead_times' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.replenish_simulate(float8[], float8[], float8[], int4[], float8, float8, float8) IS 'replenish_simulate with one lead time per day: an order placed on day t arrives lead_times[t] days later (0 to 3660; NULL allowed only on days without a review), so a later order can arrive before an earlier one (orders cross).';

-- Lead times drawn for a simulation: K = floor(L + sd z + 1/2) clipped to [0, 3660], z = Phi^-1(u), u from
-- synth_uniform(seed, stream, day): the discretised normal of lead_time_demand_mixture, P(K = k) =
-- Phi((k + 1/2 - L)/sd) - Phi((k - 1/2 - L)/sd), the mass below 1/2 on 0.
CREATE FUNCTION retail_mid.replenish_lead_time_draws(lead_time_mean float8, lead_time_sd float8, days int4,
                                                     seed bigint DEFAULT 1, stream int4 DEFAULT 0)
RETURNS int4[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got mean %s and sd %s.', lead_time_mean, lead_time_sd);
    END IF;
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY(
        SELECT CASE WHEN u.u <= 0 THEN 0
                    ELSE least(3660, greatest(0, floor(lead_time_mean + lead_time_sd * retail_mid.normal_quantile(u.u) + 0.5)))::int4 END
          FROM generate_series(1, days) i, LATERAL (SELECT retail_mid.synth_uniform(seed, stream, i) AS u) u
         ORDER BY i);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_lead_time_draws(float8, float8, int4, bigint, int4) IS 'One pseudo-random lead time per day (deterministic in seed and stream): K = floor(L + sd z + 1/2), z standard normal from synth_uniform, clipped to [0, 3660] days; P(K = k) = Phi((k + 1/2 - L)/sd) - Phi((k - 1/2 - L)/sd), the mass below 1/2 on 0, the lead-time distribution the quantile method assumes.';

-- ----------------------------------------------------------------- parameters: lead times, review period, packs, service level

CREATE TABLE retail_mid.replenish_parameter (
    brand          text NOT NULL,
    source_id      text NOT NULL DEFAULT '*',
    sku_id         text NOT NULL DEFAULT '*',
    category       text NOT NULL DEFAULT '*',
    lead_time_mean float8 CHECK (lead_time_mean >= 0 AND lead_time_mean <= 365),
    lead_time_sd   float8 CHECK (lead_time_sd >= 0 AND lead_time_sd <= 365),
    review_period  int4   NOT NULL DEFAULT 7 CHECK (review_period BETWEEN 1 AND 365),
    pack_size      float8 NOT NULL DEFAULT 1 CHECK (pack_size > 0 AND pack_size < 1e9),
    min_order_qty  float8 NOT NULL DEFAULT 0 CHECK (min_order_qty >= 0 AND min_order_qty < 1e12),
    service_level  float8 NOT NULL DEFAULT 0.95 CHECK (service_level > 0 AND service_level < 1),
    service_measure text  NOT NULL DEFAULT 'cycle' CHECK (service_measure IN ('cycle', 'fill_rate')),
    lot_days       int4   NOT NULL DEFAULT 0 CHECK (lot_days BETWEEN 0 AND 365),
    unit_margin    float8 CHECK (unit_margin >= 0 AND unit_margin < 1e12),
    PRIMARY KEY (brand, source_id, sku_id, category),
    CHECK (sku_id = '*' OR category = '*'),
    CHECK (lead_time_mean IS NOT NULL OR lead_time_sd IS NULL)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_parameter', '');
COMMENT ON TABLE retail_mid.replenish_parameter IS 'Replenishment parameters per brand, source (supplier or shipping site) and item (SKU, category or *). For a store x SKU the most specific row wins: SKU, then category level 4, 3, 2, 1, then *; among rows of equal item specificity one naming the store''s source beats source *. A NULL lead time means: estimate it from the inbound shipments (dwd_inventory_inbound_di).';
COMMENT ON COLUMN retail_mid.replenish_parameter.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_parameter.source_id IS 'Supplier or shipping site (dwd_inventory_inbound_di.supplier_id, or the store''s parent_site_id in dim_site), * for any.';
COMMENT ON COLUMN retail_mid.replenish_parameter.sku_id IS 'SKU the row applies to, * for any (then category may narrow it).';
COMMENT ON COLUMN retail_mid.replenish_parameter.category IS 'Category value matched against category_l1 .. category_l4 of the SKU, * for any.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lead_time_mean IS 'Mean lead time in days from order to receipt; NULL: estimated from received inbound shipments of the source.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lead_time_sd IS 'Standard deviation of the lead time in days (NULL with a given mean = 0).';
COMMENT ON COLUMN retail_mid.replenish_parameter.review_period IS 'Days between two order reviews (the order-up-to level covers it).';
COMMENT ON COLUMN retail_mid.replenish_parameter.pack_size IS 'Orders are whole multiples of this.';
COMMENT ON COLUMN retail_mid.replenish_parameter.min_order_qty IS 'Smallest order, rounded up to whole packs.';
COMMENT ON COLUMN retail_mid.replenish_parameter.service_level IS 'Target service: a cycle service level (probability of no stock-out over the protection interval, lead time + review period) or a fill rate (share of demand served from stock), as service_measure says.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lot_days IS 'Days of mean forecast demand between the reorder point and the order-up-to level: 0 = order up to the reorder point at every review where the position is below it (the (R, S) base-stock policy); more = larger, rarer orders and more stock.';
COMMENT ON COLUMN retail_mid.replenish_parameter.unit_margin IS 'Margin of one unit sold (price - cost); suggested_transfers skips a transfer whose cost exceeds the margin of the units it moves. NULL: unknown, no cost check.';
COMMENT ON COLUMN retail_mid.replenish_parameter.service_measure IS 'cycle: service_level is a cycle service level (safety factor z = Phi^-1(service_level)); fill_rate: it is a target fill rate, safety stock by the loss-function method (expected shortage per cycle = (1 - fill rate) / fill rate x review-period demand, lost sales).';

-- Lead times observed: one value per shipment (its earliest ordered and latest received day over its lines).
-- Replenishment reads the public layer (issue 15): inbound lines from dwd_inventory_inbound_di, sites from dim_site
-- and products from dim_product (current versions); the entry points (suggested_orders, replenish_refresh_forecasts,
-- replenish_backtest) check with domain_require_fresh that they are not behind the ODS.
CREATE VIEW retail_mid.replenish_lead_time_history AS
SELECT brand, source_id, coalesce(site_id, '*')::text AS site_id, count(*)::int4 AS shipments,
       avg(days)::float8 AS lead_time_mean, coalesce(stddev_samp(days), 0)::float8 AS lead_time_sd,
       min(ordered_on) AS first_ordered_on, max(received_on) AS last_received_on
  FROM (SELECT brand, supplier_id AS source_id, site_id, shipment_id, min(ordered_on) AS ordered_on,
               max(received_on) AS received_on, max(received_on) - min(ordered_on) AS days
          FROM retail_mid.dwd_inventory_inbound_di
         WHERE supplier_id IS NOT NULL
         GROUP BY brand, supplier_id, site_id, shipment_id
        HAVING bool_and(received_on IS NOT NULL)) s
 GROUP BY GROUPING SETS ((brand, source_id, site_id), (brand, source_id));
COMMENT ON VIEW retail_mid.replenish_lead_time_history IS 'Observed lead times (received - ordered, days) per source and receiving site, and per source over all sites (site_id *), from fully received inbound shipments (dwd_inventory_inbound_di).';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.source_id IS 'Supplier or shipping site.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.site_id IS 'Receiving site, * for all sites together.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.shipments IS 'Received shipments.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.lead_time_mean IS 'Mean days from order to receipt.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.lead_time_sd IS 'Sample standard deviation of those days (0 for one shipment).';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.first_ordered_on IS 'Earliest order day.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.last_received_on IS 'Latest receipt day.';

-- One lead time per fully received shipment of a source (the same shipments as replenish_lead_time_history).
CREATE FUNCTION retail_mid.replenish_shipment_lead_times(brand text, source_id text)
RETURNS TABLE (site_id text, shipment_id text, ordered_on date, received_on date, days int4)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT i.site_id, i.shipment_id, min(i.ordered_on), max(i.received_on), (max(i.received_on) - min(i.ordered_on))::int4
      FROM retail_mid.dwd_inventory_inbound_di i
     WHERE i.brand = replenish_shipment_lead_times.brand AND i.supplier_id = replenish_shipment_lead_times.source_id
     GROUP BY i.site_id, i.shipment_id
    HAVING bool_and(i.received_on IS NOT NULL)
     ORDER BY 3, 2, 1;
END;
COMMENT ON FUNCTION retail_mid.replenish_shipment_lead_times(text, text) IS 'Fully received inbound shipments of a source (supplier) per receiving site (dwd_inventory_inbound_di): earliest order day, latest receipt day and the lead time in days between them.';

-- Observed lead times replayed over a simulation window: for each day, the lead time of the latest fully received
-- shipment from the source ordered on or before that day (before the first one: the first one), from the shipments
-- into the site when there are at least min_shipments of them, else from the shipments into all sites of the source.
CREATE FUNCTION retail_mid.replenish_lead_time_replay(brand text, source_id text, site_id text, first_day date,
                                                      days int4, min_shipments int4 DEFAULT 3,
                                                      OUT basis text, OUT shipments int4, OUT lead_times int4[])
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; src text := source_id; st text := site_id; v_site int; v_all int; v_one_site bool;
BEGIN
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) FILTER (WHERE x.site_id = st), count(*) INTO v_site, v_all
      FROM retail_mid.replenish_shipment_lead_times(b, src) x;
    v_one_site := v_site >= min_shipments;
    basis := CASE WHEN v_one_site THEN 'history (source, site)' WHEN v_all >= min_shipments THEN 'history (source)' END;
    IF basis IS NULL THEN
        RETURN;
    END IF;
    shipments := CASE WHEN v_one_site THEN v_site ELSE v_all END;
    lead_times := ARRAY(
        WITH r AS (SELECT * FROM retail_mid.replenish_shipment_lead_times(b, src) x WHERE NOT v_one_site OR x.site_id = st)
        SELECT coalesce((SELECT r.days FROM r WHERE r.ordered_on <= first_day + i
                          ORDER BY r.ordered_on DESC, r.shipment_id DESC, r.site_id DESC LIMIT 1),
                        (SELECT r.days FROM r ORDER BY r.ordered_on, r.shipment_id, r.site_id LIMIT 1))
          FROM generate_series(0, days - 1) i ORDER BY i);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_lead_time_replay(text, text, text, date, int4, int4) IS 'Observed lead times replayed day by day from first_day: the lead time (received - ordered, days) of the latest fully received shipment of the source ordered on or before each day (before the first: the first), from the shipments into the site if at least min_shipments, else into all sites of the source (basis says which; NULL basis and lead_times when neither has min_shipments).';

-- The parameters in force for one store x SKU (see the table comment for the precedence). The source is the
-- supplier of the latest shipment of the SKU into the site, else of any shipment into the site, else the site's
-- parent. Lead time: the rule's, else the history of (source, site) with at least min_shipments shipments, else
-- of (source, all sites), else none (basis 'none': no order can be suggested).
CREATE FUNCTION retail_mid.replenish_resolve(brand text, site_id text, sku_id text, min_shipments int4 DEFAULT 3)
RETURNS TABLE (source_id text, rule text, lead_time_mean float8, lead_time_sd float8, lead_time_basis text,
               review_period int4, pack_size float8, min_order_qty float8, service_level float8, service_measure text,
               lot_days int4, unit_margin float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT src.source_id,
           CASE WHEN r.brand IS NULL THEN 'default' ELSE format('source=%s sku=%s category=%s', r.source_id, r.sku_id, r.category) END,
           coalesce(r.lead_time_mean, h1.lead_time_mean, h2.lead_time_mean),
           CASE WHEN r.lead_time_mean IS NOT NULL THEN coalesce(r.lead_time_sd, 0)
                ELSE coalesce(h1.lead_time_sd, h2.lead_time_sd) END,
           CASE WHEN r.lead_time_mean IS NOT NULL THEN 'parameter'
                WHEN h1.lead_time_mean IS NOT NULL THEN 'history (source, site)'
                WHEN h2.lead_time_mean IS NOT NULL THEN 'history (source)' ELSE 'none' END,
           coalesce(r.review_period, 7), coalesce(r.pack_size, 1), coalesce(r.min_order_qty, 0), coalesce(r.service_level, 0.95),
           coalesce(r.service_measure, 'cycle'), coalesce(r.lot_days, 0), r.unit_margin
      FROM (SELECT coalesce(
                (SELECT i.supplier_id FROM retail_mid.dwd_inventory_inbound_di i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id
                    AND i.sku_id = replenish_resolve.sku_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT i.supplier_id FROM retail_mid.dwd_inventory_inbound_di i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT st.parent_site_id FROM retail_mid.dim_site st
                  WHERE st.brand = replenish_resolve.brand AND st.site_id = replenish_resolve.site_id AND st.is_current),
                '*') AS source_id) src
      LEFT JOIN LATERAL (
            SELECT p.*
              FROM retail_mid.replenish_parameter p
              LEFT JOIN retail_mid.dim_product pr ON pr.brand = replenish_resolve.brand AND pr.sku_id = replenish_resolve.sku_id AND pr.is_current
             WHERE p.brand = replenish_resolve.brand AND p.source_id IN (src.source_id, '*')
               AND p.sku_id IN (replenish_resolve.sku_id, '*')
               AND (p.category = '*' OR p.category IN (pr.category_l1, pr.category_l2, pr.category_l3, pr.category_l4))
             ORDER BY CASE WHEN p.sku_id <> '*' THEN 5 WHEN p.category = '*' THEN 0
                           WHEN p.category = pr.category_l4 THEN 4 WHEN p.category = pr.category_l3 THEN 3
                           WHEN p.category = pr.category_l2 THEN 2 ELSE 1 END DESC,
                      (p.source_id <> '*') DESC
             LIMIT 1) r ON true
      -- the history of replenish_lead_time_history, computed for this source only and only when needed (no
      -- parameter lead time; all sites only when the site has too few shipments): the suggested orders call this
      -- once per store x SKU
      LEFT JOIN LATERAL (
            SELECT avg(s.days)::float8 AS lead_time_mean, coalesce(stddev_samp(s.days), 0)::float8 AS lead_time_sd
              FROM (SELECT max(i.received_on) - min(i.ordered_on) AS days
                      FROM retail_mid.dwd_inventory_inbound_di i
                     WHERE i.brand = replenish_resolve.brand AND i.supplier_id = src.source_id
                       AND i.site_id = replenish_resolve.site_id AND r.lead_time_mean IS NULL
                     GROUP BY i.shipment_id
                    HAVING bool_and(i.received_on IS NOT NULL)) s
            HAVING count(*) >= min_shipments AND count(*) > 0) h1 ON true
      LEFT JOIN LATERAL (
            SELECT avg(s.days)::float8 AS lead_time_mean, coalesce(stddev_samp(s.days), 0)::float8 AS lead_time_sd
              FROM (SELECT max(i.received_on) - min(i.ordered_on) AS days
                      FROM retail_mid.dwd_inventory_inbound_di i
                     WHERE i.brand = replenish_resolve.brand AND i.supplier_id = src.source_id
                       AND r.lead_time_mean IS NULL AND h1.lead_time_mean IS NULL
                     GROUP BY i.site_id, i.shipment_id
                    HAVING bool_and(i.received_on IS NOT NULL)) s
            HAVING count(*) >= min_shipments AND count(*) > 0) h2 ON true;
END;
COMMENT ON FUNCTION retail_mid.replenish_resolve(text, text, text, int4) IS 'Replenishment parameters in force for one site x SKU (from the public layer: dwd_inventory_inbound_di, dim_site, dim_product, current versions): source, the winning replenish_parameter row (or default: review 7 days, pack 1, no minimum, cycle service level 0.95, lot 0 days, margin unknown), the lead time and where it came from (parameter, history of source and site, history of source, none).';

-- ----------------------------------------------------------------- the policy from a forecast

-- Both safety-stock methods from one forecast result (daily steps). Orders are reviewed every R days and arrive L
-- days after they are placed, so the stock at a review must last until the order of the NEXT review arrives: the
-- protection interval is P = L + R (Silver, Pyke & Peterson, periodic review), not L.
--  d = mean of the horizon's point forecasts (mean daily demand), sigma1 = one-step forecast standard deviation,
--  Q = review demand = sum of the point forecasts of the R days after ceil(L) (the expected order per cycle);
--  normal: sigma_P = sqrt(P * sigma1^2 + d^2 * sdL^2), SS = k * sigma_P, reorder point = d * P + SS;
--  quantile: reorder point = the level of demand over P (lead_time_demand_mixture over the forecast's own daily
--    means and per-step sigmas, lead time L + R with sd sdL), SS = that - its mean;
--  k and the level: service_measure 'cycle': k = z(service_level), the service_level quantile;
--    'fill_rate': the loss-function method, expected shortage per cycle = (1 - b) / b * Q (b = service_level, lost
--    sales): k from fill_rate_safety_factor, the level from lead_time_demand_fill_rate;
--  order-up-to = reorder point + lot_days * d (0: the (R, S) base-stock policy, an order at every review where the
--  position is below the level). Per-step sigma = (hi80 - mean) / z(0.9): the upper half, never clipped at 0.
CREATE FUNCTION retail_mid.replenish_policy(result jsonb, lead_time_mean float8, lead_time_sd float8,
                                            review_period int4, service_level float8, service_measure text DEFAULT 'cycle',
                                            lot_days int4 DEFAULT 0,
                                            OUT mean_daily_demand float8, OUT sigma_daily float8,
                                            OUT lead_time_demand float8,
                                            OUT safety_stock_normal float8, OUT reorder_point_normal float8,
                                            OUT safety_stock_quantile float8, OUT reorder_point_quantile float8,
                                            OUT review_demand float8,
                                            OUT order_up_to_normal float8, OUT order_up_to_quantile float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_means float8[]; v_sig float8[]; v_h int; v_nl int; v_p float8; v_sigma_p float8; v_k float8; v_mean float8; v_level float8;
BEGIN
    IF jsonb_typeof(result -> 'mean') IS DISTINCT FROM 'array' OR jsonb_typeof(result -> 'hi80') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'not a forecast result: mean and hi80 arrays are missing' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF review_period < 1 THEN
        RAISE EXCEPTION 'review period must be at least 1 day' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lot_days < 0 OR lot_days > 365 THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF service_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service measure must be cycle or fill_rate' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(e.v::float8 ORDER BY e.k),
           array_agg(greatest(0, coalesce(((result -> 'hi80' ->> (e.k::int - 1))::float8 - e.v::float8) / 1.2815515655446004, 0)) ORDER BY e.k)
      INTO v_means, v_sig
      FROM jsonb_array_elements_text(result -> 'mean') WITH ORDINALITY e(v, k);
    v_h := cardinality(v_means);
    v_nl := greatest(1, ceil(lead_time_mean)::int);
    IF v_h IS NULL OR v_nl + review_period > v_h THEN
        RAISE EXCEPTION 'forecast horizon % is shorter than the lead time plus the review period (% + % days)',
            coalesce(v_h, 0), lead_time_mean, review_period
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Forecast a longer horizon.';
    END IF;
    v_p := lead_time_mean + review_period;
    mean_daily_demand := (SELECT avg(x) FROM unnest(v_means) x);
    sigma_daily := v_sig[1];
    review_demand := greatest(0, (SELECT sum(x) FROM unnest(v_means[v_nl + 1 : v_nl + review_period]) x));
    lead_time_demand := mean_daily_demand * v_p;
    v_sigma_p := sqrt(v_p * sigma_daily ^ 2 + greatest(mean_daily_demand, 0) ^ 2 * lead_time_sd ^ 2);
    IF service_measure = 'cycle' THEN
        v_k := retail_mid.normal_quantile(service_level);
        SELECT m.mean, m.quantile INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_mixture(v_means, v_sig, v_p, lead_time_sd, service_level) m;
    ELSE
        v_k := retail_mid.fill_rate_safety_factor(service_level, v_sigma_p, review_demand);
        SELECT m.mean, m.level INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_fill_rate(v_means, v_sig, v_p, lead_time_sd, service_level, review_demand) m;
    END IF;
    safety_stock_normal := v_k * v_sigma_p;
    reorder_point_normal := greatest(0, lead_time_demand + safety_stock_normal);
    reorder_point_quantile := v_level;
    safety_stock_quantile := v_level - v_mean;
    order_up_to_normal := reorder_point_normal + lot_days * greatest(mean_daily_demand, 0);
    order_up_to_quantile := reorder_point_quantile + lot_days * greatest(mean_daily_demand, 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_policy(jsonb, float8, float8, int4, float8, text, int4) IS 'Reorder point and order-up-to level of a periodic-review (R, s, S) policy from a daily forecast result by both methods, over the protection interval P = lead time + review period: normal (d P + k sqrt(P sigma1^2 + d^2 sdL^2), d = mean daily forecast, sigma1 = one-step sd) and the level of demand over P (lead_time_demand_mixture over the forecast''s daily means and sigmas, lead time L + R); k and the level for a cycle service level (z, quantile) or, with service_measure fill_rate, a target fill rate (loss-function method, lost sales, Q = review demand); Q = review demand, the forecast demand of the review period after the lead time; order-up-to = reorder point + lot_days d (0: the (R, S) base-stock policy). lead_time_demand is d P.';

-- ----------------------------------------------------------------- stored forecasts

CREATE TABLE retail_mid.replenish_forecast (
    brand    text NOT NULL,
    site_id  text NOT NULL,
    sku_id   text NOT NULL,
    made_on  date NOT NULL,
    result   jsonb NOT NULL,
    PRIMARY KEY (brand, site_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_forecast', '');
COMMENT ON TABLE retail_mid.replenish_forecast IS 'The latest daily demand forecast per store x SKU that replenishment uses (written by replenish_refresh_forecasts, or by the user with any forecast result of daily steps starting the day after made_on).';
COMMENT ON COLUMN retail_mid.replenish_forecast.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_forecast.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.replenish_forecast.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.replenish_forecast.made_on IS 'Last day of history; step 1 is the next day.';
COMMENT ON COLUMN retail_mid.replenish_forecast.result IS 'Forecast result (retail_mid.forecast / forecast_array jsonb).';

-- Dense daily demand (sales_quantity, 0 on days without sales) per store x SKU from the first sale in the window
-- to the window's last day: the input of the forecasts. Store sites only. PL/pgSQL rather than a standard-SQL
-- body only to check the window first: an infinite last_day would zero-fill without end (issue 19).
CREATE FUNCTION retail_mid.replenish_demand_arrays(brand text, first_day date, last_day date)
RETURNS TABLE (site_id text, sku_id text, first_sale date, y float8[])
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF first_day IS NULL OR last_day IS NULL THEN
        RAISE EXCEPTION 'replenish_demand_arrays dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF first_day > last_day THEN
        RAISE EXCEPTION 'replenish_demand_arrays range is empty: first_day % is after last_day %', first_day, last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer window would run until cancelled
    IF NOT isfinite(first_day) OR NOT isfinite(last_day) OR last_day - first_day > 36600 THEN
        RAISE EXCEPTION 'replenish_demand_arrays range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got first_day %s and last_day %s.', first_day, last_day);
    END IF;
    RETURN QUERY
    SELECT p.store_id, p.sku_id, p.f,
           (SELECT array_agg(coalesce(t.sales_quantity, 0)::float8 ORDER BY d.d)
              FROM generate_series(p.f, last_day, interval '1 day') d(d)
              LEFT JOIN retail_mid.dws_trade_sku_store_1d t
                     ON t.brand = replenish_demand_arrays.brand AND t.store_id = p.store_id AND t.sku_id = p.sku_id AND t.dt = d.d::date)
      FROM (SELECT w.store_id, w.sku_id, min(w.dt) AS f
              FROM retail_mid.dws_trade_sku_store_1d w
              JOIN retail_mid.dim_site s ON s.brand = w.brand AND s.site_id = w.store_id AND s.is_current AND s.site_type = 'store'
             WHERE w.brand = replenish_demand_arrays.brand AND w.dt BETWEEN first_day AND last_day AND w.sales_quantity > 0
             GROUP BY w.store_id, w.sku_id) p
     ORDER BY 1, 2;
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_demand_arrays(text, date, date) IS 'Daily units sold per store x SKU (dws_trade_sku_store_1d; stores: current dim_site rows of type store) as an array from the first sale in [first_day, last_day] to last_day, zero-filled.';

CREATE FUNCTION retail_mid.replenish_refresh_forecasts(brand text, as_of date DEFAULT NULL, history_days int4 DEFAULT 365,
                                                       horizon int4 DEFAULT 28, options jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_asof date := as_of; v_n bigint; b text := brand;
BEGIN
    IF brand IS NULL OR history_days IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'brand, history_days and horizon must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF history_days < 7 OR history_days > 3660 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_asof := coalesce(v_asof, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_asof IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM retail_mid.domain_require_fresh('site', b, NULL, NULL);
    v_job := retail_mid.job_start('replenish_refresh_forecasts', jsonb_build_object('brand', brand, 'as_of', v_asof,
                 'history_days', history_days, 'horizon', horizon, 'options', options));
    DELETE FROM retail_mid.replenish_forecast f WHERE f.brand = b;
    INSERT INTO retail_mid.replenish_forecast (brand, site_id, sku_id, made_on, result)
    SELECT b, a.site_id, a.sku_id, v_asof, retail_mid.forecast_array(a.y, horizon, 7, options)
      FROM retail_mid.replenish_demand_arrays(b, v_asof - history_days + 1, v_asof) a;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RAISE NOTICE 'replenish_refresh_forecasts: % store x SKU series forecast as of %', v_n, v_asof;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'as_of', v_asof));
    RETURN v_n;
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_refresh_forecasts(text, date, int4, int4, jsonb) IS 'Replaces a brand''s rows of replenish_forecast: forecast_array (daily, weekly season) of each store x SKU that sold in the history_days before as_of (default: the last day with sales), zero-filled up to as_of. Logged in job_log.';

-- ----------------------------------------------------------------- suggested orders

CREATE FUNCTION retail_mid.suggested_orders(brand text, method text DEFAULT 'normal', min_shipments int4 DEFAULT 3)
RETURNS TABLE (site_id text, sku_id text, as_of date, source_id text, rule text, lead_time_basis text,
               lead_time_mean float8, lead_time_sd float8, review_period int4, service_level float8,
               service_measure text, lot_days int4, mean_daily_demand float8, sigma_daily float8, lead_time_demand float8,
               safety_stock_normal float8, reorder_point_normal float8,
               safety_stock_quantile float8, reorder_point_quantile float8,
               reorder_point float8, order_up_to float8,
               snapshot_date date, on_hand float8, on_order float8, reserved float8, inventory_position float8,
               cover_days float8, pack_size float8, min_order_qty float8, order_qty float8, unit_margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off
-- (jit off: one row per store x SKU through lateral functions costs much and runs fast; compiling it took longer
-- than running it, 10 of the 15 seconds of dash_replenishment on the demo brand)
AS $$
BEGIN
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT f.site_id, f.sku_id, f.made_on, p.source_id, p.rule, p.lead_time_basis,
           p.lead_time_mean, p.lead_time_sd, p.review_period, p.service_level, p.service_measure, p.lot_days,
           pol.mean_daily_demand, pol.sigma_daily, pol.lead_time_demand,
           pol.safety_stock_normal, pol.reorder_point_normal, pol.safety_stock_quantile, pol.reorder_point_quantile,
           x.rop, x.s,
           inv.snapshot_date, coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
           coalesce(inv.on_hand, 0) + coalesce(inv.on_order, 0) - coalesce(inv.reserved, 0),
           CASE WHEN pol.mean_daily_demand > 0 THEN (coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0)) / pol.mean_daily_demand
                WHEN coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0) > 0 THEN 'Infinity'::float8 ELSE 0 END,
           p.pack_size, p.min_order_qty,
           retail_mid.order_quantity(coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
                                     x.rop, x.s, p.pack_size, p.min_order_qty),
           p.unit_margin
      FROM retail_mid.replenish_forecast f
      CROSS JOIN LATERAL retail_mid.replenish_resolve(f.brand, f.site_id, f.sku_id, min_shipments) p
      LEFT JOIN LATERAL (SELECT q.* FROM retail_mid.replenish_policy(f.result, p.lead_time_mean, p.lead_time_sd,
                                                                      p.review_period, p.service_level, p.service_measure, p.lot_days) q
                          WHERE p.lead_time_mean IS NOT NULL) pol ON true
      LEFT JOIN LATERAL (SELECT CASE method WHEN 'normal' THEN pol.reorder_point_normal ELSE pol.reorder_point_quantile END AS rop,
                                CASE method WHEN 'normal' THEN pol.order_up_to_normal ELSE pol.order_up_to_quantile END AS s) x ON true
      LEFT JOIN LATERAL (SELECT i.dt AS snapshot_date, i.on_hand::float8 AS on_hand, i.on_order::float8 AS on_order, i.reserved::float8 AS reserved
                           FROM retail_mid.dws_inventory_site_sku_1d i
                          WHERE i.brand = f.brand AND i.site_id = f.site_id AND i.sku_id = f.sku_id AND i.dt <= f.made_on
                          ORDER BY i.dt DESC LIMIT 1) inv ON true
     WHERE f.brand = suggested_orders.brand
       AND (SELECT retail_mid.domain_require_fresh('inventory', suggested_orders.brand, NULL, NULL)
               AND retail_mid.domain_require_fresh('inbound', suggested_orders.brand, NULL, NULL)
               AND retail_mid.domain_require_fresh('site', suggested_orders.brand, NULL, NULL)
               AND retail_mid.domain_require_fresh('product', suggested_orders.brand, NULL, NULL))
     ORDER BY f.site_id, f.sku_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.suggested_orders(text, text, int4) IS 'Suggested order per store x SKU of a brand: stored forecast, parameters in force (replenish_resolve), safety stock and reorder point by both methods, the one of method (normal | quantile) driving reorder point, order-up-to level and the order, stock (on hand, open inbound orders, reserved) from the latest day of the inventory DWS (dws_inventory_site_sku_1d) on or before the forecast day (none: 0), cover in days, order quantity in whole packs (NULL when no lead time is known). 55000 when the inventory DWS, the inbound DWD or the site or product DIM is behind the ODS (domain_require_fresh).';

CREATE VIEW retail_mid.replenish_suggested_order AS
SELECT b.brand, o.* FROM (SELECT DISTINCT f.brand FROM retail_mid.replenish_forecast f) b,
       LATERAL retail_mid.suggested_orders(b.brand) o;
COMMENT ON VIEW retail_mid.replenish_suggested_order IS 'suggested_orders(brand) with the normal method for every brand that has stored forecasts.';
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('brand', 'Brand.'), ('site_id', 'Store.'), ('sku_id', 'SKU.'), ('as_of', 'Day the forecast was made (last day of history).'),
        ('source_id', 'Supplier or shipping site that replenishes the store (latest shipment, else parent site).'),
        ('rule', 'The replenish_parameter row in force, or default.'),
        ('lead_time_basis', 'parameter, history (source, site), history (source) or none.'),
        ('lead_time_mean', 'Mean lead time, days.'), ('lead_time_sd', 'Standard deviation of the lead time, days.'),
        ('review_period', 'Days between reviews.'), ('service_level', 'Target service level (cycle service level or fill rate).'),
        ('service_measure', 'cycle or fill_rate: how service_level is read.'),
        ('lot_days', 'Days of mean demand between reorder point and order-up-to level (0: base stock).'),
        ('mean_daily_demand', 'Mean of the forecast''s daily point forecasts over the horizon.'),
        ('sigma_daily', 'One-step forecast standard deviation ((hi80 - mean) / z(0.9) of step 1).'),
        ('lead_time_demand', 'Mean daily demand x protection interval (mean lead time + review period).'),
        ('safety_stock_normal', 'k sqrt(P sigma^2 + d^2 sd_L^2), P = L + R, k = z(service level) or the fill-rate factor.'),
        ('reorder_point_normal', 'Demand over the protection interval + normal safety stock.'),
        ('safety_stock_quantile', 'Quantile-method reorder point minus the mean demand over the protection interval.'),
        ('reorder_point_quantile', 'Service-level quantile (or fill-rate level) of demand over lead time + review period (variable lead time, daily forecast profile).'),
        ('reorder_point', 'Reorder point of the chosen method.'), ('order_up_to', 'Reorder point + lot_days x mean daily demand.'),
        ('snapshot_date', 'Inventory snapshot used (latest on or before as_of); NULL when there is none (stock taken as 0).'),
        ('on_hand', 'Units on hand.'), ('on_order', 'Units on order.'), ('reserved', 'Units reserved for open orders.'),
        ('inventory_position', 'on_hand + on_order - reserved.'),
        ('cover_days', 'Days the free stock (on hand - reserved) lasts at the mean daily forecast (Infinity when it is 0 with stock).'),
        ('pack_size', 'Pack size.'), ('min_order_qty', 'Minimum order.'),
        ('order_qty', 'Suggested order in units (whole packs), 0 above the reorder point, NULL without a lead time.'),
        ('unit_margin', 'Margin of one unit (replenish_parameter), NULL when unknown.')) AS c(col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.replenish_suggested_order.%I IS %L', r.col, r.txt);
    END LOOP;
END $$;

-- ----------------------------------------------------------------- transfers between stores

-- Transfer lanes: what moving stock from one store to another costs and in which packs it moves.
CREATE TABLE retail_mid.replenish_transfer_lane (
    brand             text NOT NULL,
    from_site_id      text NOT NULL DEFAULT '*',
    to_site_id        text NOT NULL DEFAULT '*',
    pack_size         float8 NOT NULL DEFAULT 1 CHECK (pack_size > 0 AND pack_size < 1e9),
    cost_per_unit     float8 NOT NULL DEFAULT 0 CHECK (cost_per_unit >= 0 AND cost_per_unit < 1e12),
    cost_per_transfer float8 NOT NULL DEFAULT 0 CHECK (cost_per_transfer >= 0 AND cost_per_transfer < 1e12),
    PRIMARY KEY (brand, from_site_id, to_site_id),
    CHECK (from_site_id <> to_site_id OR from_site_id = '*')
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_transfer_lane', '');
COMMENT ON TABLE retail_mid.replenish_transfer_lane IS 'Cost and pack size of moving stock between two stores of a brand (* = any store). For a pair the most specific lane wins: (from, to), then (from, *), then (*, to), then (*, *); none: pack 1, no cost.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.from_site_id IS 'Giving store, * for any.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.to_site_id IS 'Receiving store, * for any.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.pack_size IS 'Transfers on this lane move whole multiples of this (rounded down).';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.cost_per_unit IS 'Cost of moving one unit.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.cost_per_transfer IS 'Fixed cost of one transfer (one SKU, one lane).';

-- Donors: stores whose free stock covers more than cover_days days of forecast; they can give the stock above
-- cover_days of demand (floor). Receivers: stores whose position is below the reorder point; they need up to the
-- order-up-to level (ceil). Pairs of the same brand and SKU are taken nearest first (geography distance in metres,
-- ties by donor then receiver id), each moving min(what the donor still has to give, what the receiver still needs)
-- rounded down to the lane's packs; a pair is skipped when that is 0, or when the lane's cost (per transfer + per
-- unit x units) exceeds the margin of the units moved (receiver's unit_margin x units: the stock saved from being a
-- lost sale there; no margin known: no cost check).
CREATE FUNCTION retail_mid.suggested_transfers(brand text, cover_days float8 DEFAULT 28, method text DEFAULT 'normal',
                                               max_distance_m float8 DEFAULT NULL)
RETURNS TABLE (sku_id text, from_site_id text, to_site_id text, distance_m float8, quantity float8,
               from_cover_days float8, from_excess float8, to_need float8, pack_size float8, transfer_cost float8,
               margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record; v_sku text; v_give jsonb; v_need jsonb; v_q float8; v_cost float8;
BEGIN
    IF cover_days IS NULL OR NOT (cover_days >= 0 AND cover_days < 'Infinity') THEN
        RAISE EXCEPTION 'cover_days must be a finite number of days, not negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_distance_m IS NOT NULL AND NOT (max_distance_m >= 0) THEN
        RAISE EXCEPTION 'max_distance_m must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN
        WITH o AS (SELECT so.*, st.geom FROM retail_mid.suggested_orders(brand, method) so
                     JOIN retail_mid.dim_site st ON st.brand = suggested_transfers.brand AND st.site_id = so.site_id AND st.is_current AND st.site_type = 'store'
                    WHERE st.geom IS NOT NULL AND so.reorder_point IS NOT NULL),
             give AS (SELECT o.*, floor(o.on_hand - o.reserved - suggested_transfers.cover_days * o.mean_daily_demand) AS excess
                        FROM o WHERE o.cover_days > suggested_transfers.cover_days),
             need AS (SELECT o.*, ceil(o.order_up_to - o.inventory_position) AS need
                        FROM o WHERE o.inventory_position < o.reorder_point)
        SELECT g.sku_id, g.site_id AS from_site, n.site_id AS to_site,
               ST_Distance(g.geom::geography, n.geom::geography) AS dist, g.cover_days AS cov, g.excess, n.need,
               coalesce(l.pack_size, 1) AS pack, coalesce(l.cost_per_unit, 0) AS cpu, coalesce(l.cost_per_transfer, 0) AS cpt,
               n.unit_margin
          FROM give g JOIN need n ON n.sku_id = g.sku_id AND n.site_id <> g.site_id
          LEFT JOIN LATERAL (SELECT * FROM retail_mid.replenish_transfer_lane l
                              WHERE l.brand = suggested_transfers.brand AND l.from_site_id IN (g.site_id, '*') AND l.to_site_id IN (n.site_id, '*')
                              ORDER BY (l.from_site_id <> '*') DESC, (l.to_site_id <> '*') DESC LIMIT 1) l ON true
         WHERE g.excess > 0 AND n.need > 0
           AND (max_distance_m IS NULL OR ST_DWithin(g.geom::geography, n.geom::geography, max_distance_m))
         ORDER BY g.sku_id, dist, g.site_id, n.site_id
    LOOP
        IF v_sku IS DISTINCT FROM r.sku_id THEN
            v_sku := r.sku_id; v_give := '{}'; v_need := '{}';
        END IF;
        v_q := least(coalesce((v_give ->> r.from_site)::float8, r.excess), coalesce((v_need ->> r.to_site)::float8, r.need));
        -- whole packs of the lane, never more than the donor can give (the 1e-9 keeps an exact multiple whole)
        v_q := floor(v_q / r.pack + 1e-9) * r.pack;
        CONTINUE WHEN v_q <= 0;
        v_cost := r.cpt + r.cpu * v_q;
        CONTINUE WHEN r.unit_margin IS NOT NULL AND v_cost > r.unit_margin * v_q;
        v_give := jsonb_set(v_give, ARRAY[r.from_site], to_jsonb(coalesce((v_give ->> r.from_site)::float8, r.excess) - v_q));
        v_need := jsonb_set(v_need, ARRAY[r.to_site], to_jsonb(coalesce((v_need ->> r.to_site)::float8, r.need) - v_q));
        sku_id := r.sku_id; from_site_id := r.from_site; to_site_id := r.to_site; distance_m := r.dist; quantity := v_q;
        from_cover_days := r.cov; from_excess := r.excess; to_need := r.need; pack_size := r.pack; transfer_cost := v_cost;
        margin := r.unit_margin * v_q;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.suggested_transfers(text, float8, text, float8) IS 'Stock moves between stores of a brand: stores with more than cover_days of free stock give the units above cover_days of forecast demand to stores below their reorder point (up to their order-up-to level), pairs of the same SKU nearest first (PostGIS geography distance, optionally within max_distance_m), never more than the giver''s excess or the receiver''s need, rounded down to the lane''s packs (replenish_transfer_lane); a pair whose cost (per transfer + per unit) exceeds the margin of the units moved (receiver''s unit_margin) is skipped. Returns the lane''s pack size, the transfer''s cost and that margin (NULL when unknown).';

-- plpgsql bodies resolve PostGIS names at run time: give them PostGIS's schema (unknown until install).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION retail_mid.suggested_transfers(text, float8, text, float8) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'));
END;
$$;

-- ----------------------------------------------------------------- service-level backtest

CREATE FUNCTION retail_mid.replenish_backtest(brand text, weeks int4 DEFAULT 8, method text DEFAULT 'normal',
                                              options jsonb DEFAULT '{}')
RETURNS TABLE (site_id text, sku_id text, days int4, lead_time_days int4, lead_time_model text, review_period int4,
               service_measure text, service_level float8, demand float8,
               sold float8, lost float8, fill_rate float8, days_out_of_stock int4, days_with_lost_sales int4,
               avg_on_hand float8, orders int4, units_ordered float8, cycles int4, stockout_cycles int4,
               cycle_service_level float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; v_job bigint; v_end date; v_start date; v_hist int; v_h int; v_opts jsonb; v_max int;
    v_n int := 0; v_total int; r record; v_sim record; v_rop float8[]; v_S float8[]; v_dem float8[]; v_first int;
    v_lt int; v_k int; v_pol record; v_res jsonb; v_tot_d float8 := 0; v_tot_s float8 := 0; v_tot_oos bigint := 0;
    v_tot_days bigint := 0; v_tot_inv float8 := 0; v_tot_lost_days bigint := 0; v_tot_orders bigint := 0; v_tot_units float8 := 0;
    v_tot_cycles bigint := 0; v_tot_so bigint := 0; v_mode text; v_seed bigint; v_measure text; v_level float8;
    v_min_ship int; v_lot int; v_lts int4[]; v_replay record; v_model text; v_days int;
BEGIN
    IF brand IS NULL OR weeks IS NULL OR options IS NULL THEN
        RAISE EXCEPTION 'brand, weeks and options must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF weeks < 1 OR weeks > 104 THEN
        RAISE EXCEPTION 'weeks must be between 1 and 104' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'replenish_backtest options must be a json object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(options) k WHERE k NOT IN ('history_days', 'horizon', 'forecast', 'max_series', 'end_date',
                                                                          'min_shipments', 'lead_time', 'seed', 'service_level', 'service_measure', 'lot_days')) THEN
        RAISE EXCEPTION 'unknown replenish_backtest option' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Options: history_days, horizon, forecast, max_series, end_date, min_shipments, lead_time, seed, service_level, service_measure, lot_days.';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(options) e WHERE e.value = 'null'::jsonb) THEN
        RAISE EXCEPTION 'replenish_backtest options must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    BEGIN
        v_hist := coalesce((options ->> 'history_days')::int, 365);
        v_h := coalesce((options ->> 'horizon')::int, 28);
        v_max := (options ->> 'max_series')::int;
        v_seed := coalesce((options ->> 'seed')::bigint, 1);
        v_level := (options ->> 'service_level')::float8;
        v_min_ship := coalesce((options ->> 'min_shipments')::int, 3);
        v_end := (options ->> 'end_date')::date;
        v_lot := (options ->> 'lot_days')::int;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'malformed replenish_backtest option value' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('options: %s', options), HINT = 'history_days, horizon, max_series, seed, min_shipments and lot_days are integers, service_level a number, end_date a date.';
    END;
    v_opts := options -> 'forecast';
    v_mode := coalesce(options ->> 'lead_time', 'normal');
    IF v_mode NOT IN ('mean', 'normal', 'history') THEN
        RAISE EXCEPTION 'lead_time must be mean, normal or history' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got %s.', v_mode);
    END IF;
    v_measure := options ->> 'service_measure';
    IF v_measure IS NOT NULL AND v_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service_measure must be cycle or fill_rate' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_level IS NOT NULL AND NOT (v_level > 0 AND v_level < 1) THEN
        RAISE EXCEPTION 'service_level must be strictly between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_lot IS NOT NULL AND (v_lot < 0 OR v_lot > 365) THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max IS NOT NULL AND v_max < 1 OR v_min_ship < 1 THEN
        RAISE EXCEPTION 'max_series and min_shipments must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_end := coalesce(v_end, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_end IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_hist < 7 OR v_hist > 3660 OR v_h < 2 OR v_h > 366 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660 and horizon between 2 and 366' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_days := 7 * weeks;
    v_start := v_end - v_days + 1;
    PERFORM retail_mid.domain_require_fresh(x.d, b, NULL, NULL) FROM unnest(ARRAY['inbound', 'site', 'product']) x(d);
    v_job := retail_mid.job_start('replenish_backtest', jsonb_build_object('brand', brand, 'weeks', weeks, 'method', method,
                 'options', options, 'start', v_start, 'end', v_end));
    -- every store x SKU that sold in the history before the window or in it; y runs from history start to v_end
    CREATE TEMP TABLE rm_bt_series ON COMMIT DROP AS
    SELECT a.site_id, a.sku_id, a.first_sale, a.y
      FROM retail_mid.replenish_demand_arrays(b, v_start - v_hist, v_end) a
     ORDER BY (SELECT sum(x) FROM unnest(a.y) x) DESC, a.site_id, a.sku_id
     LIMIT v_max;
    SELECT count(*) INTO v_total FROM rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % store x SKU series, % to % (% weeks), lead times %', v_total, v_start, v_end, weeks, v_mode;
    FOR r IN SELECT s.*, p.* FROM rm_bt_series s
               CROSS JOIN LATERAL retail_mid.replenish_resolve(b, s.site_id, s.sku_id, v_min_ship) p
              ORDER BY s.site_id, s.sku_id
    LOOP
        v_n := v_n + 1;
        IF v_n % 100 = 0 THEN
            RAISE NOTICE 'replenish_backtest: % of % series', v_n, v_total;
        END IF;
        CONTINUE WHEN r.lead_time_mean IS NULL;   -- no lead time known: nothing to simulate
        r.service_level := coalesce(v_level, r.service_level);
        r.service_measure := coalesce(v_measure, r.service_measure);
        r.lot_days := coalesce(v_lot, r.lot_days);
        -- index in y of the window's first day (y[1] = first_sale)
        v_first := v_start - r.first_sale + 1;
        v_dem := ARRAY(SELECT coalesce(r.y[i], 0) FROM generate_series(v_first, v_first + v_days - 1) i);
        v_rop := array_fill(NULL::float8, ARRAY[v_days]);
        v_S := array_fill(NULL::float8, ARRAY[v_days]);
        FOR v_k IN 0 .. v_days - 1 BY r.review_period LOOP
            -- forecast with the history up to the day before the review day (at most history_days days)
            IF v_first + v_k - 1 >= 1 THEN
                v_res := retail_mid.forecast_array(r.y[greatest(1, v_first + v_k - v_hist) : v_first + v_k - 1], v_h, 7, v_opts);
                v_pol := retail_mid.replenish_policy(v_res, r.lead_time_mean, r.lead_time_sd, r.review_period, r.service_level,
                                                     r.service_measure, r.lot_days);
                v_rop[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.reorder_point_normal ELSE v_pol.reorder_point_quantile END;
                v_S[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.order_up_to_normal ELSE v_pol.order_up_to_quantile END;
            ELSE
                v_rop[v_k + 1] := 0; v_S[v_k + 1] := 0;   -- no history yet (first sale inside the window)
            END IF;
        END LOOP;
        v_lt := round(r.lead_time_mean)::int;
        -- lead time of an order placed on each day: the rounded mean, a draw, or the observed one replayed
        v_lts := NULL;
        IF v_mode = 'history' THEN
            v_replay := retail_mid.replenish_lead_time_replay(b, r.source_id, r.site_id, v_start, v_days, v_min_ship);
            v_lts := v_replay.lead_times;
            v_model := coalesce(v_replay.basis || ', ' || v_replay.shipments || ' shipments', 'normal (no history)');
        END IF;
        IF v_mode = 'mean' THEN
            v_lts := array_fill(v_lt, ARRAY[v_days]);
            v_model := 'mean';
        ELSIF v_lts IS NULL THEN
            v_lts := retail_mid.replenish_lead_time_draws(r.lead_time_mean, r.lead_time_sd, v_days, v_seed,
                                                          hashtext(r.site_id || '|' || r.sku_id));
            v_model := coalesce(v_model, 'normal');
        END IF;
        -- start at the first review's order-up-to level (whole units), nothing on order
        v_sim := retail_mid.replenish_simulate(v_dem, v_rop, v_S, v_lts, ceil(v_S[1]), r.pack_size, r.min_order_qty);
        site_id := r.site_id; sku_id := r.sku_id; days := v_sim.days; lead_time_days := v_lt; lead_time_model := v_model;
        review_period := r.review_period; service_measure := r.service_measure; service_level := r.service_level;
        demand := v_sim.demand_units; sold := v_sim.sold; lost := v_sim.lost; fill_rate := v_sim.fill_rate;
        days_out_of_stock := v_sim.days_out_of_stock; days_with_lost_sales := v_sim.days_with_lost_sales;
        avg_on_hand := v_sim.avg_on_hand; orders := v_sim.orders; units_ordered := v_sim.units_ordered;
        cycles := v_sim.cycles; stockout_cycles := v_sim.stockout_cycles; cycle_service_level := v_sim.cycle_service_level;
        RETURN NEXT;
        v_tot_d := v_tot_d + demand; v_tot_s := v_tot_s + sold; v_tot_oos := v_tot_oos + days_out_of_stock;
        v_tot_days := v_tot_days + days; v_tot_inv := v_tot_inv + avg_on_hand * days;
        v_tot_lost_days := v_tot_lost_days + days_with_lost_sales; v_tot_orders := v_tot_orders + orders; v_tot_units := v_tot_units + units_ordered;
        v_tot_cycles := v_tot_cycles + cycles; v_tot_so := v_tot_so + stockout_cycles;
    END LOOP;
    -- the overall row: sums, fill rate = sold / demand over all series, average on hand per series-day,
    -- cycle service level over all counted cycles
    site_id := '*'; sku_id := '*'; days := v_tot_days; lead_time_days := NULL; lead_time_model := v_mode; review_period := NULL;
    service_measure := v_measure; service_level := v_level;
    demand := v_tot_d; sold := v_tot_s; lost := v_tot_d - v_tot_s; fill_rate := CASE WHEN v_tot_d > 0 THEN v_tot_s / v_tot_d END;
    days_out_of_stock := v_tot_oos; days_with_lost_sales := v_tot_lost_days;
    avg_on_hand := CASE WHEN v_tot_days > 0 THEN v_tot_inv / v_tot_days END; orders := v_tot_orders; units_ordered := v_tot_units;
    cycles := v_tot_cycles; stockout_cycles := v_tot_so;
    cycle_service_level := CASE WHEN v_tot_cycles > 0 THEN 1 - v_tot_so::float8 / v_tot_cycles END;
    RETURN NEXT;
    DROP TABLE rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % series simulated, fill rate %, % series-days out of stock of %', v_n, round(fill_rate::numeric, 4), v_tot_oos, v_tot_days;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'fill_rate', fill_rate, 'days_out_of_stock', v_tot_oos,
                                  'series_days', v_tot_days, 'avg_on_hand', avg_on_hand, 'cycle_service_level', cycle_service_level,
                                  'lead_time', v_mode, 'start', v_start, 'end', v_end));
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_backtest(text, int4, text, jsonb) IS 'Service-level backtest of the suggested-order policy over the last weeks of a brand''s sales: per store x SKU, on every review day a forecast from the history up to the day before, reorder point and order-up-to by method (protection interval lead time + review period), start at the first order-up-to level (rounded up), orders arriving after a simulated lead time (option lead_time: normal = drawn from the discretised normal of the lead-time mean and sd, seed option; history = the observed lead times of the source replayed, normal draws where there is no history; mean = the rounded mean), orders may cross; demand = actual units sold, lost sales; returns fill rate, days out of stock, average on hand, cycles and cycle service level per store x SKU and an overall row (site_id and sku_id *). Options: history_days (365), horizon (28), forecast (forecast options), max_series (largest sellers first), end_date, min_shipments (3), lead_time (normal), seed (1), service_level, service_measure and lot_days (override the parameters). Logged in job_log.';
