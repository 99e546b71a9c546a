# Measurements of test/bench/shards.sh (required by test/t/shards.t when SHARDS_BENCH is set). For each workload: the
# coordinator's EXPLAIN ANALYZE VERBOSE gives the Remote SQL sent to each shard; each is run again on its shard to
# measure what it returns (rows, bytes as pg_column_size of the rows) and how long the shard works on it (EXPLAIN
# ANALYZE there). Then the
# coordinator jobs as a whole: their time on the coordinator and, from each shard's job_log, the shards' own part.
use strict;
use warnings;
use Time::HiRes qw(time);

sub bench_report {
    my ($psql, $on_shard, $as_of) = @_;
    my $union = sub { my ($fmt) = @_; join(' UNION ALL ', map { sprintf($fmt, $_) } 0 .. 2); };
    my %w = (
        '1 per-customer RFM aggregate (GROUP BY customer_key, pushed down)' =>
            "SELECT customer_key, retail_mid.rfm_agg_daily(dt, orders::int8, net_amount, '$as_of', 365) FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' GROUP BY customer_key",
        '2 global RFM summary (rfm_collect_daily over every shard: rows travel)' =>
            "SELECT length(retail_mid.rfm_collect_daily(customer_key, dt, orders::int8, net_amount, '$as_of', 365)) FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' AND dt <= '$as_of'",
        '3 CLV BG/NBD fit (per-customer clv_summary pushed down, fit on the coordinator)' =>
            "SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (SELECT (retail_mid.clv_summary(dt, net_amount::float8, date '$as_of', date '$as_of', 7)).* FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' GROUP BY customer_key) s",
        '4 distinct customers per store, last 30 days (partial bitmaps OR-ed)' =>
            "SELECT brand, store_id, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)) FROM retail_mid_dist.dws_trade_store_1d WHERE dt > date '$as_of' - 30 GROUP BY 1, 2",
        '5 DWS totals per brand (sum over customer partitions)' =>
            "SELECT brand, sum(net_amount), count(*) FROM retail_mid_dist.dws_trade_customer_1d GROUP BY brand",
        '6 forecast histories (shard_forecast_refresh: daily series sums)' =>
            "SELECT store_id, sku_id, dt, sum(sales_quantity) FROM retail_mid_dist.dws_trade_sku_store_1d WHERE brand = 'b1' AND dt > date '$as_of' - 365 GROUP BY 1, 2, 3",
        '7 numeric tag indexes (shard_gather_tags: current values travel)' =>
            "SELECT v.tag_name, v.brand, retail_mid.bsi_cardinality(retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * 100)::int8)) FROM retail_mid_dist.tag_value v "
            . "WHERE v.valid_to IS NULL AND v.numeric_value IS NOT NULL GROUP BY 1, 2",
        '8 quality rules of the DWD order lines (shard_quality_evaluate: per shard and brand)' =>
            "SELECT brand, sum(r), sum(v) FROM (" . $union->("SELECT t.brand, count(*) AS r, count(*) FILTER (WHERE t.amount > 300) AS v FROM retail_mid_dist.dwd_trade_order_line_di_p%d t GROUP BY t.brand") . ") u GROUP BY brand",
    );
    printf "%-88s %5s %10s %12s %10s %6s\n", 'workload', 'shard', 'rows', 'bytes', 'shard ms', 'share';
    for my $name (sort keys %w) {
        my $plan = $psql->("SET enable_partitionwise_aggregate = on; EXPLAIN (ANALYZE, VERBOSE) $w{$name}", 'rm_coord');
        my ($total) = $plan =~ /Execution Time: ([\d.]+) ms/;
        my (%remote, $shard);
        for my $line (split /\n/, $plan) {
            if ($line =~ /Foreign Scan/) { $shard = undef; }
            $shard = $1 if !defined $shard && $line =~ /retail_mid_dist\.\w+?_[ps](\d+)\b/;
            push @{$remote{$shard}}, $1 if $line =~ /Remote SQL: (.*)$/ && defined $shard;
        }
        print "$name: no Remote SQL found in\n$plan\n" unless %remote;
        my ($summs, @lines) = (0);
        for my $i (sort keys %remote) {
            my ($rows, $bytes, $ms) = (0, 0, 0);
            for my $sql (@{$remote{$i}}) {
                my ($r, $b) = split / /, $on_shard->($i, "SELECT count(*) || ' ' || coalesce(sum(pg_column_size(q.*)), 0) FROM ($sql) q");
                my ($t) = $on_shard->($i, "EXPLAIN (ANALYZE) SELECT count(*) FROM ($sql) q") =~ /Execution Time: ([\d.]+) ms/;
                $ms += $t // 0;
                $rows += $r; $bytes += $b;
            }
            $summs += $ms;
            push @lines, [$i, $rows, $bytes, $ms];
        }
        my ($maxms) = sort { $b <=> $a } map { $_->[3] } @lines;
        for my $l (@lines) { printf "%-88s %5d %10d %12d %10.1f %5.0f%%\n", $name, @$l, $summs ? 100 * $l->[3] / $summs : 0; }
        printf "%-88s total %.1f ms on the coordinator (EXPLAIN ANALYZE); slowest shard %.1f ms (its EXPLAIN ANALYZE)\n", $name, $total // 0, $maxms // 0;
    }
    # the coordinator jobs: wall time on the coordinator, and each shard's own job (shard_forecast_fit) from its job_log
    for my $job (["shard_forecast_refresh('b1', '$as_of', 365, 14)", 'shard_forecast_fit'],
                 ["shard_quality_evaluate(NULL, '$as_of 23:30+00')", undef],
                 ["shard_gather_tags()", undef]) {
        my $t0 = time;
        $psql->("SET client_min_messages = warning; SELECT retail_mid.$job->[0]", 'rm_coord');
        my $ms = (time - $t0) * 1000;
        my $shards = '';
        if ($job->[1]) {
            $shards = join(' / ', map { $on_shard->($_, "SELECT round(extract(epoch FROM duration) * 1000) || ' ms, ' || rows_written || ' series' FROM retail_mid.job_log WHERE job = '$job->[1]' ORDER BY job_id DESC LIMIT 1") } 0 .. 2);
            $shards = "; shards' own fits: $shards";
        }
        printf "job %-60s %.0f ms on the coordinator (wall)%s\n", $job->[0], $ms, $shards;
    }
}
1;
