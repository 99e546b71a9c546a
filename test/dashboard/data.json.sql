-- The data of every dashboard tile, read from the dash_* views as one JSON object (test/dashboard/build.sh).
-- psql -v brand=... chooses the brand (default: the brand with the most AIPL rows, else the first one with trade).
\if :{?brand}
\else
SELECT coalesce((SELECT brand FROM retail_mid.dash_aipl_trend GROUP BY brand ORDER BY sum(customers) DESC LIMIT 1),
                (SELECT min(brand) FROM retail_mid.dws_refresh_state), '') AS brand \gset
\endif
SELECT json_build_object(
  'brand', :'brand',
  'aipl_trend', (SELECT coalesce(json_agg(t ORDER BY t.dt, t.stage), '[]') FROM
      (SELECT dt, stage, customers FROM retail_mid.dash_aipl_trend WHERE brand = :'brand'
          AND dt > (SELECT max(dt) - 90 FROM retail_mid.dash_aipl_trend WHERE brand = :'brand')) t),
  'aipl_flow', (SELECT coalesce(json_agg(t), '[]') FROM
      (SELECT from_dt, dt, from_stage, to_stage, customers FROM retail_mid.dash_aipl_flow WHERE brand = :'brand'
          AND dt = (SELECT max(dt) FROM retail_mid.dash_aipl_trend WHERE brand = :'brand')) t),
  'aipl_gmv', (SELECT coalesce(json_agg(t), '[]') FROM
      (SELECT from_date, to_date, stage, customers, buyers, gmv, gmv_share FROM retail_mid.dash_aipl_gmv WHERE brand = :'brand') t),
  'rfm', (SELECT coalesce(json_agg(t ORDER BY t.customers DESC), '[]') FROM
      (SELECT map_name, window_days, as_of, segment, customers, customer_share, revenue_share FROM retail_mid.dash_rfm_distribution
        WHERE brand = :'brand' AND (map_name, window_days) = (SELECT map_name, window_days FROM retail_mid.dash_rfm_distribution
                                                               WHERE brand = :'brand' ORDER BY as_of DESC, map_name, window_days LIMIT 1)) t),
  'portrait', (SELECT coalesce(json_agg(t ORDER BY t.tag_name, t.value), '[]') FROM
      (SELECT audience_name, tag_name, value, audience_share, base_share, lift FROM retail_mid.dash_audience_portrait
        WHERE brand = :'brand' AND audience_name = (SELECT min(audience_name) FROM retail_mid.dash_audience_portrait WHERE brand = :'brand')) t),
  'campaigns', (SELECT coalesce(json_agg(t), '[]') FROM
      (SELECT campaign_name || ' / ' || channel AS label, sent, exposed, clicked, redeemed FROM retail_mid.dash_campaign_performance
        WHERE brand = :'brand'
       UNION ALL
       SELECT 'plan ' || plan_name || ' / ' || channel, planned + sent + delivered + failed, delivered, 0, 0
         FROM retail_mid.dash_reach_plan WHERE brand = :'brand') t),
  'stock', (SELECT coalesce(json_agg(t ORDER BY t.site_id), '[]') FROM
      (SELECT site_id, coalesce(site_type, '?') AS site_type, sum(on_hand) AS on_hand, sum(on_order) AS on_order, sum(reserved) AS reserved
         FROM retail_mid.dash_stock_position WHERE brand = :'brand' GROUP BY site_id, site_type) t),
  'replenishment', (SELECT coalesce(json_agg(t ORDER BY t.site_id), '[]') FROM
      (SELECT site_id, count(*) AS series, count(*) FILTER (WHERE below_reorder_point) AS below_rop, coalesce(sum(order_qty), 0) AS order_qty
         FROM retail_mid.dash_replenishment WHERE brand = :'brand' GROUP BY site_id) t),
  'forecast', (SELECT coalesce(json_agg(t ORDER BY t.dt), '[]') FROM
      (SELECT dt, sum(forecast) AS forecast, sum(lo80) AS lo80, sum(hi80) AS hi80, sum(actual) AS actual
         FROM retail_mid.dash_forecast_actual WHERE brand = :'brand' GROUP BY dt) t),
  'candidates', (SELECT coalesce(json_agg(t ORDER BY t.rank), '[]') FROM
      (SELECT rank, name, lon, lat, net_gain, expected_sales FROM retail_mid.dash_site_candidate) t),
  'stores', (SELECT coalesce(json_agg(t), '[]') FROM
      (SELECT name, own, lon, lat FROM retail_mid.dash_site_store WHERE brand = :'brand') t),
  'quality', (SELECT coalesce(json_agg(t ORDER BY t.table_name), '[]') FROM
      (SELECT table_name, count(*) FILTER (WHERE outcome = 'pass') AS pass, count(*) FILTER (WHERE outcome = 'warn') AS warn,
              count(*) FILTER (WHERE outcome = 'fail') AS fail, count(*) FILTER (WHERE outcome NOT IN ('pass', 'warn', 'fail')) AS other
         FROM retail_mid.dash_quality_scorecard GROUP BY table_name) t)
);
