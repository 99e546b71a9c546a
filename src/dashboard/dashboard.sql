-- dashboard/dashboard.sql: one view per tile of the dashboards (issue 15), the stable surface BI tools and `make dashboard` read.
--
-- Every view reads only what the earlier files built (no data of its own, nothing to register with pg_dump). They run
-- with the caller's rights (security_invoker), so the row-level security of their base tables applies: a reader sees
-- the brands of her entitlements. The exception is dash_site_candidate, which, like site_candidate_ranking, is owned
-- by retail_mid_view_owner (the candidates are the group's planning output, of no brand). Installed after
-- governance/lockdown.sql, so the grants lockdown gives every relation installed before it are given here.

-- ----------------------------------------------------------------- AIPL

CREATE VIEW retail_mid.dash_aipl_trend AS
SELECT s.brand, s.dt, s.stage::text AS stage,
       CASE s.stage WHEN 'A' THEN 'awareness' WHEN 'I' THEN 'interest' WHEN 'P' THEN 'purchase' ELSE 'loyalty' END AS stage_name,
       s.members AS customers
  FROM retail_mid.dws_aipl_stage_bitmap_1d s;
COMMENT ON VIEW retail_mid.dash_aipl_trend IS 'Dashboard tile AIPL trend: customers per AIPL stage per day and brand, over every staged day (filter dt for a window).';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.stage IS 'Stage code: A, I, P or L.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.stage_name IS 'Stage name: awareness, interest, purchase or loyalty.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.customers IS 'Customers in the stage on the day.';

-- Day to day: the customers of each (previous staged day's stage, day's stage) pair; '-' for no stage.
CREATE VIEW retail_mid.dash_aipl_flow AS
WITH days AS (
    SELECT d.brand, d.dt, (SELECT max(p.dt) FROM retail_mid.dws_aipl_stage_bitmap_1d p WHERE p.brand = d.brand AND p.dt < d.dt) AS from_dt
      FROM (SELECT s.brand, s.dt FROM retail_mid.dws_aipl_stage_bitmap_1d s GROUP BY s.brand, s.dt) d
)
SELECT d.brand, d.from_dt, d.dt, f.from_stage, f.to_stage, f.customers
  FROM days d CROSS JOIN LATERAL retail_mid.aipl_flow(d.brand, d.from_dt, d.dt) f
 WHERE d.from_dt IS NOT NULL;
COMMENT ON VIEW retail_mid.dash_aipl_flow IS 'Dashboard tile AIPL flow: customers moving from their stage on the previous staged day (from_dt) to their stage on dt, per brand; between two chosen dates use retail_mid.aipl_flow(brand, d1, d2).';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.from_dt IS 'The previous staged day of the brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.from_stage IS 'Stage (A, I, P, L) on from_dt; - for no stage.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.to_stage IS 'Stage (A, I, P, L) on dt; - for no stage.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.customers IS 'Customers with that pair of stages.';

CREATE VIEW retail_mid.dash_aipl_gmv AS
SELECT b.brand, b.from_date, b.to_date, g.stage, g.customers, g.buyers, g.conversion_rate, g.avg_transaction_value, g.gmv,
       round(g.gmv / nullif(sum(g.gmv) OVER (PARTITION BY b.brand), 0), 6) AS gmv_share
  FROM (SELECT s.brand, greatest(min(s.dt), max(s.dt) - 30) AS from_date, max(s.dt) AS to_date
          FROM retail_mid.dws_aipl_stage_bitmap_1d s GROUP BY s.brand) b
 CROSS JOIN LATERAL retail_mid.aipl_gmv_decomposition(b.brand, b.from_date, b.to_date) g;
COMMENT ON VIEW retail_mid.dash_aipl_gmv IS 'Dashboard tile GMV contribution by AIPL stage: retail_mid.aipl_gmv_decomposition over the last 30 days of each brand''s staged history (customers by stage on from_date, their buyers and net amount in (from_date, to_date]).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.from_date IS 'Day the stages are taken (the latest staged day minus 30, or the first staged day).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.to_date IS 'Last day of the period (the latest staged day).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.stage IS 'Stage on from_date: A, I, P or L.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.customers IS 'Customers in the stage on from_date.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.buyers IS 'Of them, customers who bought in (from_date, to_date].';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.conversion_rate IS 'buyers / customers.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.avg_transaction_value IS 'Net amount per buyer in the period.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.gmv IS 'Net amount of the stage''s buyers in the period (customers x conversion_rate x avg_transaction_value).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.gmv_share IS 'Share of the brand''s GMV over the four stages (0..1; NULL when that is 0).';

-- ----------------------------------------------------------------- RFM

CREATE VIEW retail_mid.dash_rfm_distribution AS
SELECT s.brand, s.map_name, s.window_days, s.as_of, s.segment, s.customers, s.customer_share, s.monetary, s.revenue_share
  FROM retail_mid.rfm_segment_summary s
 WHERE s.as_of = (SELECT max(l.as_of) FROM retail_mid.rfm_snapshot l
                   WHERE l.brand = s.brand AND l.map_name = s.map_name AND l.window_days = s.window_days);
COMMENT ON VIEW retail_mid.dash_rfm_distribution IS 'Dashboard tile RFM distribution: customers and net amount per RFM segment in the latest snapshot of each brand, segment map and window (rfm_segment_summary; older snapshots are there).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.as_of IS 'Snapshot date (the latest).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.segment IS 'Segment; (unmapped) for customers no rule covers.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.customers IS 'Customers in the segment.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.customer_share IS 'Share of the snapshot''s customers (0..1).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.monetary IS 'Their net amount within the window.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.revenue_share IS 'Share of the snapshot''s net amount (0..1; 0 when that total is 0).';

-- ----------------------------------------------------------------- audience portrait

-- Categorical tag values (enum and boolean tags: no numeric value) of every saved audience's members against the
-- brand's tagged customers (the base), one row per audience, tag and value of the base.
CREATE VIEW retail_mid.dash_audience_portrait AS
WITH tags AS (
    SELECT v.brand, v.tag_name, v.customer_key, v.value
      FROM retail_mid.tag_value_brand v
     WHERE v.numeric_value IS NULL AND v.value IS NOT NULL
), base AS (
    SELECT t.brand, t.tag_name, t.value, count(*) AS customers,
           sum(count(*)) OVER (PARTITION BY t.brand, t.tag_name) AS tagged
      FROM tags t GROUP BY t.brand, t.tag_name, t.value
), aud AS (
    SELECT m.brand, m.audience_name, m.audience_brand, m.version, t.tag_name, t.value, count(*) AS customers
      FROM retail_mid.audience_member_brand m
      JOIN tags t ON t.brand = m.brand AND t.customer_key = m.customer_key
     GROUP BY m.brand, m.audience_name, m.audience_brand, m.version, t.tag_name, t.value
), aud_total AS (
    SELECT a.brand, a.audience_name, a.audience_brand, a.version, a.tag_name, sum(a.customers) AS tagged
      FROM aud a GROUP BY a.brand, a.audience_name, a.audience_brand, a.version, a.tag_name
)
SELECT b.brand, t.audience_name, t.audience_brand, t.version AS audience_version, b.tag_name, b.value,
       coalesce(a.customers, 0) AS audience_customers,
       round(coalesce(a.customers, 0) / t.tagged, 6) AS audience_share,
       b.customers AS base_customers,
       round(b.customers / b.tagged, 6) AS base_share,
       round((coalesce(a.customers, 0) / t.tagged) / (b.customers / b.tagged), 4) AS lift
  FROM aud_total t
  JOIN base b ON b.brand = t.brand AND b.tag_name = t.tag_name
  LEFT JOIN aud a ON a.brand = t.brand AND a.audience_name = t.audience_name AND a.audience_brand = t.audience_brand
                 AND a.version = t.version AND a.tag_name = t.tag_name AND a.value = b.value;
COMMENT ON VIEW retail_mid.dash_audience_portrait IS 'Dashboard tile audience portrait: for the latest version of every saved audience, the share of its members (customers of the brand) per value of each categorical tag (enum, boolean), against the share among all the brand''s customers with a value of that tag (the base).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.brand IS 'Brand of the customers.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_brand IS 'Brand the audience was saved for (* for group-wide).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_version IS 'Version of the audience (the latest).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.tag_name IS 'Categorical tag.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.value IS 'Tag value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_customers IS 'Audience members with the value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_share IS 'audience_customers / audience members with a value of the tag (0..1).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.base_customers IS 'The brand''s customers with the value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.base_share IS 'base_customers / the brand''s customers with a value of the tag (0..1).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.lift IS 'audience_share / base_share (over 1: the value is over-represented in the audience).';

-- ----------------------------------------------------------------- campaigns and reach

CREATE VIEW retail_mid.dash_campaign_performance AS
SELECT t.brand, t.campaign_id, coalesce(c.campaign_name, t.campaign_id) AS campaign_name, c.kind, c.start_date, c.end_date, t.channel,
       count(*) FILTER (WHERE t.touch_type = 'sent') AS sent,
       count(*) FILTER (WHERE t.touch_type = 'exposed') AS exposed,
       count(*) FILTER (WHERE t.touch_type = 'clicked') AS clicked,
       count(*) FILTER (WHERE t.touch_type = 'redeemed') AS redeemed,
       count(DISTINCT t.customer_key) AS customers,
       round(count(*) FILTER (WHERE t.touch_type = 'clicked')::numeric / nullif(count(*) FILTER (WHERE t.touch_type = 'sent'), 0), 6) AS click_rate,
       round(count(*) FILTER (WHERE t.touch_type = 'redeemed')::numeric / nullif(count(*) FILTER (WHERE t.touch_type = 'sent'), 0), 6) AS redemption_rate
  FROM retail_mid.dwd_marketing_touch_di t
  LEFT JOIN retail_mid.dim_campaign c ON c.brand = t.brand AND c.campaign_id = t.campaign_id
 GROUP BY t.brand, t.campaign_id, c.campaign_name, c.kind, c.start_date, c.end_date, t.channel;
COMMENT ON VIEW retail_mid.dash_campaign_performance IS 'Dashboard tile campaign performance: touches per campaign and channel by touch type (the touch DWD dwd_marketing_touch_di: touches of identifiers with a customer key, exact duplicates once, as of the last refresh), labelled from dim_campaign, with click and redemption rates.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.campaign_name IS 'Campaign name (dim_campaign; the id when it has no name).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.kind IS 'Campaign kind (dim_campaign).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.start_date IS 'First day of the campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.end_date IS 'Last day of the campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.channel IS 'Channel of the touches, ''(none)'' when the source gives none.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.sent IS 'Touches of type sent.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.exposed IS 'Touches of type exposed.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.clicked IS 'Touches of type clicked.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.redeemed IS 'Touches of type redeemed.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.customers IS 'Distinct customers touched.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.click_rate IS 'clicked / sent (NULL without sent touches).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.redemption_rate IS 'redeemed / sent (NULL without sent touches).';

CREATE VIEW retail_mid.dash_reach_plan AS
SELECT o.brand, o.plan_id, p.name AS plan_name, p.audience, p.campaign_id,
       coalesce(o.channel, '(none)') AS channel, coalesce(o.template, '(none)') AS template,
       count(*) FILTER (WHERE o.status = 'planned') AS planned,
       count(*) FILTER (WHERE o.status = 'sent') AS sent,
       count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
       count(*) FILTER (WHERE o.status = 'failed') AS failed,
       count(*) FILTER (WHERE o.status = 'skipped') AS skipped,
       count(*) AS decided
  FROM retail_mid.reach_outbox o
  JOIN retail_mid.reach_plan p ON p.plan_id = o.plan_id
 GROUP BY o.brand, o.plan_id, p.name, p.audience, p.campaign_id, coalesce(o.channel, '(none)'), coalesce(o.template, '(none)');
COMMENT ON VIEW retail_mid.dash_reach_plan IS 'Dashboard tile campaign performance (reach plans): the outbox of every reach plan per channel and template by status: planned, then sent, delivered or failed as the delivery system reports, or skipped.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.plan_id IS 'Reach plan.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.plan_name IS 'Plan name.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.audience IS 'Saved audience the plan reaches.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.campaign_id IS 'Campaign the plan belongs to, if any.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.channel IS 'Channel; (none) for skipped customers.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.template IS 'Message template; (none) for skipped customers.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.planned IS 'Outbox rows still planned.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.sent IS 'Rows reported sent.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.delivered IS 'Rows reported delivered.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.failed IS 'Rows reported failed.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.skipped IS 'Customers skipped (consent, frequency cap, no channel).';
COMMENT ON COLUMN retail_mid.dash_reach_plan.decided IS 'All outbox rows of the plan, channel and template.';

-- ----------------------------------------------------------------- stock, replenishment, forecasts

CREATE VIEW retail_mid.dash_stock_position AS
SELECT i.brand, i.site_id, d.site_type, d.region, i.sku_id, i.dt AS snapshot_date, i.on_hand, i.on_order, i.reserved,
       i.on_hand - i.reserved AS available
  FROM retail_mid.dws_inventory_site_sku_1d i
  JOIN (SELECT l.brand, l.site_id, max(l.dt) AS dt
          FROM retail_mid.dws_inventory_site_sku_1d l GROUP BY l.brand, l.site_id) m
    ON m.brand = i.brand AND m.site_id = i.site_id AND m.dt = i.dt
  LEFT JOIN retail_mid.dim_site d ON d.brand = i.brand AND d.site_id = i.site_id AND d.is_current;
COMMENT ON VIEW retail_mid.dash_stock_position IS 'Dashboard tile stock: stock per site and SKU on each site''s latest snapshot day of the inventory DWS (dws_inventory_site_sku_1d), stores and warehouses alike, with the site''s type and region (dim_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_id IS 'Site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_type IS 'Site type (dim_site; NULL for a site not in ods_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.region IS 'Region of the site (dim_site, current).';
COMMENT ON COLUMN retail_mid.dash_stock_position.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_stock_position.snapshot_date IS 'The site''s latest snapshot day.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_order IS 'Units on open inbound orders (dws_inventory_site_sku_1d.on_order).';
COMMENT ON COLUMN retail_mid.dash_stock_position.reserved IS 'Units reserved for open orders.';
COMMENT ON COLUMN retail_mid.dash_stock_position.available IS 'on_hand - reserved.';

CREATE VIEW retail_mid.dash_replenishment AS
SELECT o.brand, o.site_id, o.sku_id, o.as_of, o.snapshot_date, o.on_hand, o.on_order, o.reserved, o.inventory_position,
       o.mean_daily_demand, o.cover_days, o.lead_time_mean, o.reorder_point, o.order_up_to, o.order_qty,
       o.inventory_position < o.reorder_point AS below_reorder_point
  FROM retail_mid.replenish_suggested_order o;
COMMENT ON VIEW retail_mid.dash_replenishment IS 'Dashboard tile replenishment: the suggested order of every store x SKU with a stored forecast (replenish_suggested_order, normal method): stock, reorder point, order-up-to level and the order.';
COMMENT ON COLUMN retail_mid.dash_replenishment.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_replenishment.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_replenishment.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_replenishment.as_of IS 'Day the forecast was made.';
COMMENT ON COLUMN retail_mid.dash_replenishment.snapshot_date IS 'Inventory snapshot used; NULL when there is none (stock taken as 0).';
COMMENT ON COLUMN retail_mid.dash_replenishment.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.dash_replenishment.on_order IS 'Units on order.';
COMMENT ON COLUMN retail_mid.dash_replenishment.reserved IS 'Units reserved.';
COMMENT ON COLUMN retail_mid.dash_replenishment.inventory_position IS 'on_hand + on_order - reserved.';
COMMENT ON COLUMN retail_mid.dash_replenishment.mean_daily_demand IS 'Mean daily forecast over the horizon.';
COMMENT ON COLUMN retail_mid.dash_replenishment.cover_days IS 'Days the free stock lasts at the mean daily forecast (Infinity with stock and no demand).';
COMMENT ON COLUMN retail_mid.dash_replenishment.lead_time_mean IS 'Mean lead time in days (NULL when unknown).';
COMMENT ON COLUMN retail_mid.dash_replenishment.reorder_point IS 'Reorder point.';
COMMENT ON COLUMN retail_mid.dash_replenishment.order_up_to IS 'Order-up-to level.';
COMMENT ON COLUMN retail_mid.dash_replenishment.order_qty IS 'Suggested order in units (whole packs); NULL without a lead time.';
COMMENT ON COLUMN retail_mid.dash_replenishment.below_reorder_point IS 'inventory_position < reorder_point.';

CREATE VIEW retail_mid.dash_forecast_actual AS
SELECT f.brand, f.site_id, f.sku_id, f.made_on, r.step, f.made_on + r.step AS dt, r.mean AS forecast, r.lo80, r.hi80,
       CASE WHEN f.made_on + r.step <= s.as_of THEN coalesce(a.sales_quantity, 0)::float8 END AS actual
  FROM retail_mid.replenish_forecast f
 CROSS JOIN LATERAL retail_mid.forecast_rows(f.result) r
  LEFT JOIN retail_mid.dws_refresh_state s ON s.brand = f.brand
  LEFT JOIN retail_mid.dws_trade_sku_store_1d a
    ON a.brand = f.brand AND a.store_id = f.site_id AND a.sku_id = f.sku_id AND a.dt = f.made_on + r.step;
COMMENT ON VIEW retail_mid.dash_forecast_actual IS 'Dashboard tile forecast against actuals: every step of the stored daily forecasts (replenish_forecast) with the units sold that day (dws_trade_sku_store_1d); make the forecasts as of a past day (replenish_refresh_forecasts(brand, as_of)) to see both.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.made_on IS 'Last day of the forecast''s history.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.step IS 'Days ahead (1 = the day after made_on).';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.dt IS 'Day forecast (made_on + step).';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.forecast IS 'Point forecast, units.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.lo80 IS 'Lower bound of the 80% interval.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.hi80 IS 'Upper bound of the 80% interval.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.actual IS 'Units sold that day (0 on days without sales); NULL after the brand''s latest day with trade.';

-- ----------------------------------------------------------------- sites

CREATE VIEW retail_mid.dash_site_candidate AS
SELECT r.rank, r.candidate_id, r.name, c.lon, c.lat, r.expected_sales, r.cannibalisation, r.net_gain, r.market_share,
       r.competitors, r.nearest_competitor_m
  FROM retail_mid.site_candidate_ranking r
  JOIN retail_mid.site_candidate c ON c.candidate_id = r.candidate_id;
COMMENT ON VIEW retail_mid.dash_site_candidate IS 'Dashboard tile site candidates (map): the candidates of the last scoring run with their WGS 84 coordinates, ranked by net gain; the group''s planning output, of no brand.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.rank IS '1 = best net gain.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.name IS 'Candidate label.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.lon IS 'Longitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_candidate.lat IS 'Latitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_candidate.expected_sales IS 'Huff expected sales of the candidate.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.cannibalisation IS 'Sales taken from own stores.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.net_gain IS 'expected_sales - cannibalisation.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.market_share IS 'Share of the demand in reach.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.competitors IS 'Competitor stores within the trade area.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.nearest_competitor_m IS 'Distance to the nearest competitor, metres.';

CREATE VIEW retail_mid.dash_site_store AS
SELECT s.brand, s.store_id, s.store_code, s.name, s.own, s.lon, s.lat, s.attractiveness, s.observed_sales
  FROM retail_mid.site_store s;
COMMENT ON VIEW retail_mid.dash_site_store IS 'Dashboard tile site candidates (map): the own and competitor stores of site selection with their WGS 84 coordinates, per brand.';
COMMENT ON COLUMN retail_mid.dash_site_store.brand IS 'Brand whose site selection the store belongs to.';
COMMENT ON COLUMN retail_mid.dash_site_store.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_site_store.store_code IS 'Store code.';
COMMENT ON COLUMN retail_mid.dash_site_store.name IS 'Store name.';
COMMENT ON COLUMN retail_mid.dash_site_store.own IS 'true for the brand''s own stores, false for competitors.';
COMMENT ON COLUMN retail_mid.dash_site_store.lon IS 'Longitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_store.lat IS 'Latitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_store.attractiveness IS 'Huff attractiveness (e.g. floor area).';
COMMENT ON COLUMN retail_mid.dash_site_store.observed_sales IS 'Observed sales, when known.';

-- ----------------------------------------------------------------- governance

CREATE VIEW retail_mid.dash_quality_scorecard AS
SELECT q.brand, q.rule_id, q.rule_name, q.table_name, q.column_name, q.template, q.dimension, q.data_domain,
       q.day, q.as_of, q.outcome, q.score, q.rows_checked, q.violation_ratio, q.warn_threshold, q.fail_threshold
  FROM retail_mid.quality_result_latest q;
COMMENT ON VIEW retail_mid.dash_quality_scorecard IS 'Dashboard tile quality and governance scorecard: the latest result of every quality rule (quality_result_latest), pass, warn or fail; brand * rows (whole tables) are visible to administrators only.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.brand IS '* for the whole table, else the brand of a per-brand result.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rule_id IS 'Rule.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rule_name IS 'Rule name.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.table_name IS 'Checked table.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.column_name IS 'Checked column, if any.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.template IS 'Rule template.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.dimension IS 'Quality dimension.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.data_domain IS 'Data domain.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.day IS 'Day of the latest evaluation.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.as_of IS 'Evaluation time.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.outcome IS 'pass, warn, fail or warming_up.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.score IS 'Rule score: pass 100, warn 50, fail 0.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rows_checked IS 'Rows checked.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.violation_ratio IS 'Share of checked rows violating the rule.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.warn_threshold IS 'Warning threshold.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.fail_threshold IS 'Failure threshold.';

-- issue 17: channel contribution (marketing mix): the latest fit of each brand, per week and component
CREATE VIEW retail_mid.dash_channel_contribution AS
SELECT k.brand, k.model_id, k.week_start, k.component, k.is_media, k.spend, k.contribution,
       k.contribution / nullif(w.fitted, 0) AS share_of_fitted,
       CASE WHEN k.is_media THEN k.contribution / nullif(k.spend, 0) END AS roi
  FROM retail_mid.mmm_contribution k
  JOIN retail_mid.mmm_week w ON w.model_id = k.model_id AND w.week_start = k.week_start
 WHERE k.model_id = (SELECT max(m.model_id) FROM retail_mid.mmm_model m WHERE m.brand = k.brand);
COMMENT ON VIEW retail_mid.dash_channel_contribution IS 'Channel contribution tile: the weekly sales of each brand''s latest marketing mix fit split into media channels, base, seasonality and promotion.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.model_id IS 'Fit (mmm_model), the brand''s latest.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.week_start IS 'First day of the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.component IS 'Media channel, or base, seasonality or promotion.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.is_media IS 'True for media channels.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.spend IS 'Media spend of the week, NULL for the controls.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.contribution IS 'Sales attributed to the component in the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.share_of_fitted IS 'Contribution / fitted sales of the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.roi IS 'Contribution / spend of a media channel in the week (carry-over included), NULL for controls or no spend.';

-- issue 17: store assortment (goods/assortment.sql): every store's gaps as assortment_refresh last wrote them, and
-- sales and margin per square metre per store and category over the 91 days ending each brand's latest DWS day
CREATE VIEW retail_mid.dash_assortment_gap AS
SELECT g.brand, g.store_id, s.site_name AS store_name, g.rank, g.sku_id, p.sku_name, g.category_l1, g.expected_sales, g.expected_buyers,
       g.benchmark_stores, g.benchmark_sales, g.preference_index, g.category_preference_index, g.from_date, g.to_date, g.computed_at
  FROM retail_mid.assortment_gap g
  LEFT JOIN retail_mid.dim_site s ON s.brand = g.brand AND s.site_id = g.store_id AND s.is_current
  LEFT JOIN retail_mid.dim_product p ON p.brand = g.brand AND p.sku_id = g.sku_id AND p.is_current;
COMMENT ON VIEW retail_mid.dash_assortment_gap IS 'Store assortment gaps tile: per store the SKUs it does not sell that its benchmark stores sell to customers like its own, ranked by expected sales (assortment_gap, written by assortment_refresh).';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.store_name IS 'Store name (dim_site), NULL when unknown.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.rank IS 'Rank by expected sales, 1 = largest.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.sku_id IS 'SKU the store did not sell in the window.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.sku_name IS 'SKU name (dim_product), NULL when unknown.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.category_l1 IS 'Level-1 category of the SKU.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.expected_sales IS 'Expected net sales to the store''s identified customers over a window as long as the one analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.expected_buyers IS 'Expected buyers among the store''s identified customers.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.benchmark_stores IS 'Benchmark stores that sold the SKU.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.benchmark_sales IS 'Their net sales of the SKU to identified customers in the window.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.preference_index IS 'The store''s customers'' preference for the SKU bought anywhere in the brand (100 = like the brand).';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.category_preference_index IS 'The same for its level-1 category.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.from_date IS 'First day of the window analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.to_date IS 'Last day of the window analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.computed_at IS 'When assortment_refresh computed it.';

CREATE VIEW retail_mid.dash_store_category_sqm AS
WITH sales AS (
    SELECT d.brand, d.store_id, coalesce(d.category_l1, '(unknown)') AS category_l1, sum(d.net_amount) AS net_sales, sum(d.quantity) AS units
      FROM retail_mid.dws_trade_sku_store_1d d JOIN retail_mid.dws_refresh_state r ON r.brand = d.brand
     WHERE d.dt BETWEEN r.as_of - 90 AND r.as_of AND d.store_id <> '(none)'
     GROUP BY 1, 2, 3),
j AS (
    SELECT coalesce(a.brand, sp.brand) AS brand, coalesce(a.store_id, sp.store_id) AS store_id,
           coalesce(a.category_l1, sp.category_l1) AS category_l1, sp.space_sqm, coalesce(a.net_sales, 0) AS net_sales,
           coalesce(a.units, 0) AS units
      FROM sales a
      FULL JOIN retail_mid.dim_store_category_space sp ON sp.brand = a.brand AND sp.store_id = a.store_id AND sp.category_l1 = a.category_l1),
b AS (SELECT j.brand, j.category_l1, sum(j.net_sales) / sum(j.space_sqm) AS per_sqm FROM j WHERE j.space_sqm IS NOT NULL GROUP BY 1, 2)
SELECT j.brand, j.store_id, j.category_l1, r.as_of - 90 AS from_date, r.as_of AS to_date, j.space_sqm, j.net_sales, j.units,
       (j.net_sales / j.space_sqm)::float8 AS sales_per_sqm,
       (100 * (j.net_sales / j.space_sqm) / nullif(b.per_sqm, 0))::float8 AS sales_per_sqm_index
  FROM j JOIN retail_mid.dws_refresh_state r ON r.brand = j.brand
  LEFT JOIN b ON b.brand = j.brand AND b.category_l1 = j.category_l1;
COMMENT ON VIEW retail_mid.dash_store_category_sqm IS 'Sales per square metre tile: per brand, store and level-1 category over the 91 days ending the brand''s latest DWS day, net sales, space and sales per square metre against the brand''s category (as store_category_productivity; the margin, which needs the product costs, is left to that function).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.category_l1 IS 'Level-1 category.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.from_date IS 'First day of the window (as_of - 90).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.to_date IS 'Last day of the window (the brand''s latest DWS day).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.space_sqm IS 'Space of the category in the store (dim_store_category_space), NULL when not loaded.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.net_sales IS 'Net sales of the category in the store in the window (0 for a category with space and no sales).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.units IS 'Net units.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.sales_per_sqm IS 'Net sales per square metre, NULL without space.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.sales_per_sqm_index IS '100 * sales per square metre / the brand''s sales per square metre of the category (its sales over its space in the stores with space for it).';

-- ----------------------------------------------------------------- security (as governance/lockdown.sql does)

DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_class c
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 'dash\_%'
                AND c.relname <> 'dash_site_candidate' ORDER BY c.relname LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
        PERFORM retail_mid.security_grant(v);
    END LOOP;
END;
$$;
-- the site candidates: owned by retail_mid_view_owner like site_candidate_ranking, readable by every shipped role
ALTER VIEW retail_mid.dash_site_candidate OWNER TO retail_mid_view_owner;
GRANT SELECT ON retail_mid.dash_site_candidate TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
-- BI reads the brand-isolated tables under the dashboard views (security_invoker views need both)
GRANT SELECT ON retail_mid.ods_campaign, retail_mid.ods_inventory_snapshot, retail_mid.site_store, retail_mid.replenish_forecast
    TO retail_mid_bi;
-- issue 15: the campaign tile reads the touch DWD; the suggested orders read the inbound DWD. BI keeps the inbound
-- shipments it could read in 1.0.0 (then under replenish_lead_time_history; the BI contract keeps what it granted).
GRANT SELECT ON retail_mid.dwd_marketing_touch_di, retail_mid.dwd_inventory_inbound_di, retail_mid.ods_inbound_shipment TO retail_mid_bi;
-- issue 17: the channel contribution tile
GRANT SELECT ON retail_mid.mmm_contribution, retail_mid.mmm_week, retail_mid.mmm_model TO retail_mid_bi;
-- issue 17: the store assortment tiles
GRANT SELECT ON retail_mid.assortment_gap, retail_mid.ods_store_category_space TO retail_mid_bi;
