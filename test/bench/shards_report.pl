# Measurements of test/bench/shards.sh (required by test/t/shards.t when SHARDS_BENCH is set). For each workload: the
# coordinator's EXPLAIN ANALYZE VERBOSE gives the Remote SQL sent to each shard; each is run again on its shard to
# measure what it returns (rows, bytes as pg_column_size of the rows) and how long the shard works on it.
use strict;
use warnings;
use Time::HiRes qw(time);

sub bench_report {
    my ($psql, $on_shard, $as_of) = @_;
    my %w = (
        'per-customer RFM aggregate (GROUP BY customer_key, pushed down)' =>
            "SELECT customer_key, retail_mid.rfm_agg_daily(dt, orders::int8, net_amount, '$as_of', 365) FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' GROUP BY customer_key",
        'global RFM summary (rfm_collect_daily over every shard: rows travel)' =>
            "SELECT length(retail_mid.rfm_collect_daily(customer_key, dt, orders::int8, net_amount, '$as_of', 365)) FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' AND dt <= '$as_of'",
        'CLV BG/NBD fit (per-customer clv_summary pushed down, fit on the coordinator)' =>
            "SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (SELECT (retail_mid.clv_summary(dt, net_amount::float8, date '$as_of', date '$as_of', 7)).* FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' GROUP BY customer_key) s",
        'distinct customers per store, last 30 days (partial bitmaps OR-ed)' =>
            "SELECT brand, store_id, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)) FROM retail_mid_dist.dws_trade_store_1d WHERE dt > date '$as_of' - 30 GROUP BY 1, 2",
        'DWS totals per brand (sum over customer partitions)' =>
            "SELECT brand, sum(net_amount), count(*) FROM retail_mid_dist.dws_trade_customer_1d GROUP BY brand",
    );
    printf "%-80s %5s %10s %12s %10s %10s\n", 'workload', 'shard', 'rows', 'bytes', 'shard ms', 'share';
    for my $name (sort keys %w) {
        my $plan = $psql->("SET enable_partitionwise_aggregate = on; EXPLAIN (ANALYZE, VERBOSE) $w{$name}", 'rm_coord');
        my ($total) = $plan =~ /Execution Time: ([\d.]+) ms/;
        my %remote;
        my $shard;
        for my $line (split /\n/, $plan) {
            $shard = $1 if $line =~ /(?:Foreign Scan on|Relations: .*?)retail_mid_dist\.\w+_[ps](\d)/;
            $shard = $1 if $line =~ /retail_mid_dist\.\w+_[ps](\d)/ && $line =~ /Foreign Scan/;
            if ($line =~ /Remote SQL: (.*)$/) { $remote{$shard} = $1 if defined $shard; }
        }
        my ($maxms, $summs) = (0, 0);
        my @lines;
        for my $i (sort keys %remote) {
            my $sql = $remote{$i};
            my $m = $on_shard->($i, "SELECT count(*) || ' ' || coalesce(sum(pg_column_size(q.*)), 0) FROM ($sql) q");
            my ($rows, $bytes) = split / /, $m;
            my $t0 = time; $on_shard->($i, "SELECT count(*) FROM ($sql) q"); my $ms = (time - $t0) * 1000;
            $maxms = $ms if $ms > $maxms; $summs += $ms;
            push @lines, [$i, $rows, $bytes, $ms];
        }
        for my $l (@lines) { printf "%-80s %5d %10d %12d %10.1f %9.0f%%\n", $name, @$l, $summs ? 100 * $l->[3] / $summs : 0; }
        printf "%-80s total %.1f ms on the coordinator (EXPLAIN ANALYZE); slowest shard %.1f ms (psql round trip included)\n", $name, $total // 0, $maxms;
    }
}
1;
