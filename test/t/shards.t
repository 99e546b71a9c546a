#!/usr/bin/perl
# shards (issue 14, docs/shards.md): a sharded deployment on postgres_fdw gives the answers of one server. Three
# clusters: the one test/with_cluster.sh started (databases rm_single: the one-server run; rm_coord: the coordinator;
# rm_shard0) and two started here (rm_shard1, rm_shard2). The same synthetic data (two brands) is loaded into
# rm_single and, through the coordinator's shard_load, into the shards; each runs the pipeline; then every result the
# coordinator gives is compared with rm_single, row for row. Then pushdown (EXPLAIN VERBOSE), brand isolation, a
# stopped shard and its return. SHARDS_BENCH=1 (make bench BENCH=shards) measures what travels instead of testing.
# Prints SKIPPED when postgres_fdw is not installed.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

my $bench = $ENV{SHARDS_BENCH};
$SIG{TERM} = $SIG{INT} = sub { exit 1 };   # END stops the clusters started here
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;
my $root_user = ($> == 0);
my $bin = `pg_config --bindir 2>/dev/null`; chomp $bin;
$bin = '/usr/lib/postgresql/15/bin' unless $bin && -x "$bin/initdb";
my $h0 = $ENV{PGHOST}; my $p0 = $ENV{PGPORT};

sub psql {
    my ($sql, $d, %o) = @_;
    my $host = $o{host} // $h0; my $port = $o{port} // $p0;
    my $f = "$dir/q" . int(rand(1e9)) . '.sql';
    open my $fh, '>', $f or die; print $fh $sql; close $fh;
    chmod 0644, $f;
    my $user = $o{user} ? "-U $o{user}" : '';
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -h $host -p $port $user -d $d -f $f 2>&1`;
    return ($?, $out) if $o{may_fail};
    die "psql failed on $d: $out" if $?;
    chomp $out; return $out;
}

my ($avail) = psql("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgres_fdw'", 'postgres');
if (!$avail) {
    print "SKIPPED: postgres_fdw is not installed (PostgreSQL contrib)\n";
    plan skip_all => 'SKIPPED: postgres_fdw is not installed';
}
my $destdir = psql("SELECT coalesce(current_setting('extension_destdir', true), '')", 'postgres');

# two more clusters, as the harness starts its own (initdb under a temporary directory, a free port, a socket there)
my @clusters;
sub start_cluster {
    my ($name) = @_;
    my $cdir = "$dir/$name";
    mkdir $cdir; chmod 0755, $cdir;
    my @as = $root_user ? ('runuser', '-u', 'postgres', '--') : ();
    system("chown postgres: $cdir") if $root_user;
    my $port = 20000 + int(rand(20000));
    $port++ while system("(echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null") == 0;
    system(join(' ', @as, "$bin/initdb", '-D', "$cdir/data", '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', ">$cdir/initdb.log 2>&1")) == 0
        or die "initdb failed: " . `cat $cdir/initdb.log`;
    open my $c, '>>', "$cdir/data/postgresql.conf" or die;
    print $c "port = $port\nlisten_addresses = ''\nunix_socket_directories = '$cdir'\nshared_buffers = 64MB\n"
           . "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_wal_size = 2GB\nlog_min_messages = warning\n";
    print $c "extension_destdir = '$destdir'\n" if $destdir ne '';
    close $c;
    my $cl = { name => $name, dir => $cdir, port => $port, as => \@as };
    push @clusters, $cl;
    pg_ctl($cl, 'start');
    return $cl;
}
sub pg_ctl {
    my ($cl, $what) = @_;
    my @extra = $what eq 'start' ? ('-l', "$cl->{dir}/server.log", '-w') : ('-m', 'fast', '-w');
    system(join(' ', @{$cl->{as}}, "$bin/pg_ctl", '-D', "$cl->{dir}/data", @extra, $what, '>/dev/null')) == 0 or die "pg_ctl $what failed";
}
END { for my $cl (@clusters) { system(join(' ', @{$cl->{as}}, "$bin/pg_ctl", '-D', "$cl->{dir}/data", '-m', 'immediate', 'stop', '>/dev/null 2>&1')) if -d "$cl->{dir}/data"; } }

my $c1 = start_cluster('c1');
my $c2 = start_cluster('c2');
# shard n: [database, host, port]
my @shards = (['rm_shard0', $h0, $p0], ['rm_shard1', $c1->{dir}, $c1->{port}], ['rm_shard2', $c2->{dir}, $c2->{port}]);
sub on_shard { my ($i, $sql, %o) = @_; return psql($sql, $shards[$i][0], host => $shards[$i][1], port => $shards[$i][2], %o); }

# sizes: small for the test, larger for the benchmark
my ($customers, $days, $opd) = $bench ? ($ENV{CUSTOMERS} || 5000, $ENV{DAYS} || 180, $ENV{ORDERS_PER_DAY} || 400) : (300, 45, 30);
my $as_of = psql("SELECT (date '2024-01-01' + $days - 1)::text", 'postgres');
my $gen = "SET client_min_messages = warning;\n"
        . "SELECT retail_mid.generate_synthetic(seed => 14, customers => $customers, days => $days, orders_per_day => $opd, stores => 4, skus => 30, brand => 'b1');\n"
        . "SELECT retail_mid.generate_synthetic(seed => 41, customers => " . int($customers / 2) . ", days => $days, orders_per_day => " . int($opd / 2) . ", stores => 3, skus => 20, brand => 'b2');\n";
my $roles = "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shard_tap_analyst') THEN "
          . "CREATE ROLE shard_tap_analyst LOGIN; END IF; END \$\$;\n";
my $create = "SET client_min_messages = warning; CREATE EXTENSION retail_mid CASCADE; GRANT retail_mid_analyst TO shard_tap_analyst;\n";
my $fc_options = '{"quantiles": [0.5, 0.9]}';
# quality rules: the shipped order-line set, a key that spans shards, a rule by brand, stability and tables_agree
my $rules = "SELECT retail_mid.quality_add_default_rules('retail_mid.dwd_trade_order_line_di');\n"
          . "INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters, by_brand) VALUES "
          . "('store_day_unique', 'retail_mid.dwd_trade_order_line_di', NULL, 'unique_key', '{\"columns\": [\"brand\", \"store_id\", \"dt\"]}', false), "
          . "('customer_day_unique', 'retail_mid.dws_trade_customer_1d', NULL, 'unique_key', '{\"columns\": [\"brand\", \"customer_key\", \"dt\"]}', true), "
          . "('amount_small', 'retail_mid.dwd_trade_order_line_di', 'amount', 'range', '{\"max\": 300}', true), "
          . "('lines_stable', 'retail_mid.dwd_trade_order_line_di', NULL, 'stability', '{\"metric\": \"row_count\", \"warmup\": 2, \"seasonality\": \"none\"}', false), "
          . "('amount_mean_stable', 'retail_mid.dwd_trade_order_line_di', 'amount', 'stability', '{\"metric\": \"mean\", \"warmup\": 2, \"seasonality\": \"none\"}', true), "
          . "('dws_agrees', 'retail_mid.dws_trade_customer_1d', NULL, 'tables_agree', "
          . "'{\"expression\": \"sum(orders)\", \"other_table\": \"retail_mid.dwd_trade_order_line_di\", \"other_expression\": \"count(DISTINCT order_id)\"}', false);\n";
my $settings = "INSERT INTO retail_mid.brand_entitlement VALUES ('shard_tap_analyst', 'b1');\n"
             . "INSERT INTO retail_mid.rfm_config (brand, map_name, k, method) VALUES ('b2', 'ten_segment', 5, 'quantile') ON CONFLICT DO NOTHING;\n";

for my $d ('rm_single', 'rm_coord') { psql("DROP DATABASE IF EXISTS $d", 'postgres'); psql("CREATE DATABASE $d", 'postgres'); }
for my $i (0 .. 2) {
    psql("DROP DATABASE IF EXISTS $shards[$i][0]", 'postgres', host => $shards[$i][1], port => $shards[$i][2]);
    psql("CREATE DATABASE $shards[$i][0]", 'postgres', host => $shards[$i][1], port => $shards[$i][2]);
    psql($roles, 'postgres', host => $shards[$i][1], port => $shards[$i][2]);
    on_shard($i, $create);
}
psql($create, $_) for ('rm_single', 'rm_coord');

# the one-server run: the same settings, data and key order (shard_assign_keys, as shard_load does), the pipeline
my $t0 = time;
my $pipeline = "SET client_min_messages = warning;\nSELECT retail_mid.refresh_all();\n"
             . "SELECT retail_mid.aipl_refresh(b, date '$as_of' - 29, '$as_of') FROM unnest(ARRAY['b1', 'b2']) b;\n";
psql($settings . $gen . "SELECT retail_mid.shard_assign_keys('b1'); SELECT retail_mid.shard_assign_keys('b2');\n" . $pipeline
     . "SELECT retail_mid.rfm_refresh(b, '$as_of', 365) FROM unnest(ARRAY['b1', 'b2']) b;\nSELECT retail_mid.evaluate_tags();\n"
     . "SELECT retail_mid.replenish_refresh_forecasts(b, '$as_of', 365, 14, '$fc_options') FROM unnest(ARRAY['b1', 'b2']) b;\n"
     . $rules . join('', map { "SELECT retail_mid.quality_evaluate(NULL, '$as_of 23:00+00'::timestamptz - $_ * interval '1 day');\n" } 2, 1, 0), 'rm_single');
my $t_single = time - $t0;

# the sharded run: shards added, global settings synced, data routed, the pipeline on every shard, RFM globally
my $rc_settings = psql($settings, 'rm_coord');
my $add = join('', map { "SELECT retail_mid.shard_add('shard$_', '$shards[$_][1]', $shards[$_][2], '$shards[$_][0]');\n" } 0 .. 2);
$t0 = time;
psql("SET client_min_messages = warning;\n$add SELECT retail_mid.shard_attach_tables();\nSELECT retail_mid.shard_sync_global();\n", 'rm_coord');
is(join(',', map { on_shard($_, "SELECT md5(string_agg(e::text, ',' ORDER BY e::text)) || md5((SELECT string_agg(c::text, ',' ORDER BY c::text) FROM retail_mid.rfm_config c)) FROM retail_mid.brand_entitlement e") } 0 .. 2),
   join(',', (psql("SELECT md5(string_agg(e::text, ',' ORDER BY e::text)) || md5((SELECT string_agg(c::text, ',' ORDER BY c::text) FROM retail_mid.rfm_config c)) FROM retail_mid.brand_entitlement e", 'rm_coord')) x 3),
   '1 shard_sync_global: entitlements and RFM settings of every shard equal the coordinator\'s');
psql($gen . "SET client_min_messages = warning; SELECT retail_mid.shard_load('b1'); SELECT retail_mid.shard_load('b2');\n", 'rm_coord');
my $t_load = time - $t0;
$t0 = time;
on_shard($_, $pipeline . "SELECT 1;\n") for 0 .. 2;
psql("SET client_min_messages = warning; SELECT retail_mid.shard_rfm_refresh(b, '$as_of', 365) FROM unnest(ARRAY['b1', 'b2']) b;", 'rm_coord');
on_shard($_, "SET client_min_messages = warning; SELECT retail_mid.evaluate_tags();") for 0 .. 2;
psql("SET client_min_messages = warning; SELECT retail_mid.shard_gather_tags();", 'rm_coord');
my $t_fc = time;
psql("SET client_min_messages = warning; SELECT retail_mid.shard_forecast_refresh(b, '$as_of', 365, 14, '$fc_options') FROM unnest(ARRAY['b1', 'b2']) b;", 'rm_coord');
$t_fc = time - $t_fc;
my $t_q = time;
psql("SET client_min_messages = warning;\n" . $rules . join('', map { "SELECT retail_mid.shard_quality_evaluate(NULL, '$as_of 23:00+00'::timestamptz - $_ * interval '1 day');\n" } 2, 1, 0), 'rm_coord');
$t_q = time - $t_q;
my $t_sharded = time - $t0;
note(sprintf("one server: %.1f s; sharded: load %.1f s, pipeline %.1f s (forecasts %.1f s); quality over the shards %.1f s", $t_single, $t_load, $t_sharded, $t_fc, $t_q));

if ($bench) { require "$ENV{SHARDS_BENCH_SCRIPT}"; bench_report(\&psql, \&on_shard, $as_of); done_testing(); exit 0; }

# compare: the same query text (or a pair) on the one server and on the coordinator
my $n = 1;
my $plan;
sub same {
    my ($what, $single_sql, $coord_sql) = @_;
    $coord_sql //= $single_sql;
    my $a = psql($single_sql, 'rm_single');
    my $b = psql("SET enable_partitionwise_aggregate = on;\n" . $coord_sql, 'rm_coord');
    $n++;
    ok($a ne '' && $a eq $b, "$n $what") or diag("one server: " . substr($a, 0, 400) . "\ncoordinator: " . substr($b, 0, 400));
}
sub rows { my ($q) = @_; return "SELECT count(*) || ' rows ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ($q) t"; }

same('key dictionary: the same identifiers have the same keys', rows("SELECT customer_key, id_type, issuer, id_value FROM retail_mid.customer_key"));
$n++;
my @per = map { on_shard($_, "SELECT count(*) FROM retail_mid.ods_order") } 0 .. 2;
my $total = psql("SELECT count(*) FROM retail_mid.ods_order", 'rm_single');
ok((!grep { $_ == 0 } @per) && $per[0] + $per[1] + $per[2] == $total, "$n shard_load: orders routed to every shard, none lost or doubled (@per of $total)");
$n++;
is(on_shard(1, "SELECT count(*) FROM retail_mid.customer_key k WHERE retail_mid.shard_of_customer(k.customer_key, 3) <> 1"), '0',
   "$n a shard holds only the keys it owns");
for my $t (qw(dwd_trade_order_line_di dws_trade_customer_1d dws_trade_customer_td dws_aipl_customer_stage_1d customer_brand)) {
    same("$t row for row", rows("SELECT * FROM retail_mid.$t"), rows("SELECT * FROM retail_mid_dist.$t"));
}
same('rfm_snapshot (global breakpoints) row for row',
     rows("SELECT brand, customer_key, recency_days, frequency, round(monetary::numeric, 6), r_score, f_score, m_score, segment FROM retail_mid.rfm_snapshot"),
     rows("SELECT brand, customer_key, recency_days, frequency, round(monetary::numeric, 6), r_score, f_score, m_score, segment FROM retail_mid_dist.rfm_snapshot"));
same('RFM segment counts per brand',
     rows("SELECT brand, segment, count(*) FROM retail_mid.rfm_snapshot GROUP BY 1, 2"),
     rows("SELECT brand, segment, count(*) FROM retail_mid_dist.rfm_snapshot GROUP BY 1, 2"));
same('AIPL stage counts per brand and day',
     rows("SELECT brand, dt, stage, count(*) FROM retail_mid.dws_aipl_customer_stage_1d GROUP BY 1, 2, 3"),
     rows("SELECT brand, dt, stage, count(*) FROM retail_mid_dist.dws_aipl_customer_stage_1d GROUP BY 1, 2, 3"));
same('store x day totals and exact distinct customers (bitmaps OR-ed across shards)',
     rows("SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, net_amount, customers FROM retail_mid.dws_trade_store_1d"),
     rows("SELECT dt, brand, store_id, sum(orders), sum(anonymous_orders), sum(return_orders), sum(lines), sum(quantity), sum(net_amount), "
          . "retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)) FROM retail_mid_dist.dws_trade_store_1d GROUP BY 1, 2, 3"));
for my $w (7, 30, $days) {
    same("distinct customers per brand and store over the last $w days",
         rows("SELECT brand, store_id, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)), sum(net_amount) FROM retail_mid.dws_trade_store_1d WHERE dt > date '$as_of' - $w GROUP BY 1, 2"),
         rows("SELECT brand, store_id, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)), sum(net_amount) FROM retail_mid_dist.dws_trade_store_1d WHERE dt > date '$as_of' - $w GROUP BY 1, 2"));
}
same('distinct customers over 30 days: count(DISTINCT customer_key) over the DWD partitions',
     rows("SELECT brand, count(DISTINCT customer_key) FROM retail_mid.dwd_trade_order_line_di WHERE dt > date '$as_of' - 30 GROUP BY 1"),
     rows("SELECT brand, count(DISTINCT customer_key) FROM retail_mid_dist.dwd_trade_order_line_di WHERE dt > date '$as_of' - 30 GROUP BY 1"));
same('SKU x store series: daily quantities, amounts and buyers',
     rows("SELECT dt, brand, store_id, sku_id, orders, quantity, net_amount, buyers FROM retail_mid.dws_trade_sku_store_1d"),
     rows("SELECT dt, brand, store_id, sku_id, sum(orders), sum(quantity), sum(net_amount), retail_mid.rb_cardinality(retail_mid.rb_or_agg(buyer_bitmap)) "
          . "FROM retail_mid_dist.dws_trade_sku_store_1d GROUP BY 1, 2, 3, 4"));
same('cleaning counts per day, brand and rule',
     rows("SELECT dt, brand, rule, lines, amount FROM retail_mid.dwd_trade_cleaning_1d"),
     rows("SELECT dt, brand, rule, sum(lines), sum(amount) FROM retail_mid_dist.dwd_trade_cleaning_1d GROUP BY 1, 2, 3"));
my $clv = "SELECT (f).r::numeric(12,6), (f).alpha::numeric(12,6), (f).a::numeric(12,6), (f).b::numeric(12,6), (f).n FROM (SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) AS f FROM "
        . "(SELECT (retail_mid.clv_summary(dt, net_amount::float8, date '$as_of', date '$as_of', 7)).* FROM %s WHERE brand = 'b1' GROUP BY customer_key) s) q";
same('CLV: BG/NBD fit on the union of the shards\' per-customer summaries',
     sprintf($clv, 'retail_mid.dws_trade_customer_1d'), sprintf($clv, 'retail_mid_dist.dws_trade_customer_1d'));

# tags: the shards' bitmaps OR-ed on the coordinator (shard_gather_tags), then audiences
same('tags: every tag bitmap (tag, value, brand, members)',
     rows("SELECT tag_name, tag_value, brand, customers, md5(array_to_string(retail_mid.rb_to_array(bitmap), ',')) FROM retail_mid.tag_bitmap"));
my @exprs = split /\n/, psql("SELECT format('%I = %L', tag_name, tag_value) FROM retail_mid.tag_bitmap WHERE brand = '*' AND customers > 0 ORDER BY customers DESC, 1 LIMIT 3", 'rm_single');
if (@exprs >= 2) {
    for my $e ($exprs[0], "$exprs[0] OR $exprs[1]", "$exprs[0] AND NOT $exprs[1]") {
        (my $q = $e) =~ s/'/''/g;
        same("audience_count($e)", "SELECT retail_mid.audience_count('$q')");
        same("audience($e), member for member", "SELECT md5(array_to_string(retail_mid.rb_to_array(retail_mid.audience('$q')), ','))");
    }
} else { $n++; fail("$n tags to build audiences from"); }

# numeric tags: bit-sliced indexes rebuilt on the coordinator from every shard's values
same('numeric tags: every bit-sliced index (tag, brand, scale, range, customers, bytes)',
     rows("SELECT tag_name, brand, scale, min_value, max_value, customers, md5(bsi) FROM retail_mid.tag_bsi"));
my @ranges = split /\n/, psql("SELECT format('%I >= %s', tag_name, round(((min_value + max_value) / 2)::numeric, 0)) FROM retail_mid.tag_bsi "
                              . "WHERE brand = 'b1' AND max_value > min_value ORDER BY customers DESC, 1 LIMIT 2", 'rm_single');
if (@ranges == 2) {
    for my $e ($ranges[0], "$ranges[0] AND NOT $ranges[1]") {
        (my $q = $e) =~ s/'/''/g;
        same("audience($e) in brand b1, member for member",
             "SELECT retail_mid.audience_count('$q', 'b1') || ' ' || md5(array_to_string(retail_mid.rb_to_array(retail_mid.audience('$q', 'b1')), ','))");
    }
} else { $n++; fail("$n numeric tags to build audiences from"); }

# forecasts per series: the shards' daily parts summed on the coordinator, each series fitted on its owner shard
same('forecasts per series (replenish_forecast, same options) row for row',
     rows("SELECT brand, site_id, sku_id, made_on, result FROM retail_mid.replenish_forecast"),
     rows("SELECT brand, site_id, sku_id, made_on, result FROM retail_mid_dist.replenish_forecast"));
$n++;
my @fc = map { on_shard($_, "SELECT count(*) || ' ' || count(*) FILTER (WHERE retail_mid.shard_of_series(brand, site_id, sku_id, 3) <> $_) FROM retail_mid.replenish_forecast") } 0 .. 2;
ok((!grep { !/^[1-9]\d* 0$/ } @fc), "$n every shard fits and stores only the series it owns (series, foreign: @fc)");
$n++;
my @fit = map { [split / /, on_shard($_, "SELECT extract(epoch FROM started_at) || ' ' || extract(epoch FROM finished_at) FROM retail_mid.job_log WHERE job = 'shard_forecast_fit' ORDER BY job_id DESC LIMIT 1")] } 0 .. 2;
my ($last_start) = sort { $b <=> $a } map { $_->[0] } @fit;
my ($first_end) = sort { $a <=> $b } map { $_->[1] } @fit;
note(sprintf("shard_forecast_fit on the three shards: %s (the last started %.3f s before the first finished)",
             join(', ', map { sprintf('%.3f-%.3f', @$_) } @fit), $first_end - $last_start));
like(psql("EXPLAIN (VERBOSE, COSTS OFF) SELECT coalesce(sum(series), 0) FROM (SELECT series FROM retail_mid_dist.shard_forecast_run_s0 UNION ALL "
          . "SELECT series FROM retail_mid_dist.shard_forecast_run_s1 UNION ALL SELECT series FROM retail_mid_dist.shard_forecast_run_s2) u", 'rm_coord'),
     qr/Async Foreign Scan.*Async Foreign Scan.*Async Foreign Scan/s, "$n the fits are requested from the three shards at once (an asynchronous Append)");
$n++;
like(psql("SELECT detail::text FROM retail_mid.job_log WHERE job = 'shard_forecast_refresh' ORDER BY job_id DESC LIMIT 1", 'rm_coord'),
     qr/series_per_shard.*shard0.*shard1.*shard2/, "$n shard_forecast_refresh logs the series sent to each shard");

# quality: the coordinator's one result set equals the one-server run (samples: as many rows, from any shard)
my $qcols = "rule_id, rule_name, table_name, column_name, template, brand, as_of, rows_checked, round(observed::numeric, 6), round(violation_ratio::numeric, 9), "
          . "round(statistic::numeric, 6), compared_value IS NULL, outcome, score, jsonb_array_length(sample)";
same('quality results of every rule, evaluation and brand (the coordinator\'s quality_result)', rows("SELECT $qcols FROM retail_mid.quality_result"));
$n++;
like(psql("SELECT count(*) || ' ' || count(DISTINCT rule_id) || ' ' || count(*) FILTER (WHERE brand <> '*') || ' ' || count(statistic) || ' ' || count(*) FILTER (WHERE outcome <> 'pass') FROM retail_mid.quality_result", 'rm_coord'),
     qr/^(\d+) 27 [1-9]\d* [1-9]\d* [1-9]\d*$/, "$n quality: 27 rules, results by brand, z-scores and failures among them");
same('quality: a key duplicated across shards counts (store x day, samples of the duplicated keys)',
     rows("SELECT observed, sample FROM retail_mid.quality_result WHERE rule_name = 'store_day_unique'"));
$n++;
my $per_shard = join('+', map { on_shard($_, "SELECT count(*) - count(DISTINCT (brand, store_id, dt)) FROM retail_mid.dwd_trade_order_line_di") } 0 .. 2);
my $global = psql("SELECT observed FROM retail_mid.quality_result WHERE rule_name = 'store_day_unique' LIMIT 1", 'rm_coord');
ok(eval($per_shard) < $global, "$n and per-shard counts would be too few ($per_shard < $global)");
same('quality_score over the shards', rows("SELECT * FROM retail_mid.quality_score"));
$plan = psql("EXPLAIN (VERBOSE, COSTS OFF) SELECT t.brand, count(*) FILTER (WHERE t.amount > 300) FROM retail_mid_dist.dwd_trade_order_line_di_p1 t GROUP BY t.brand", 'rm_coord');
$n++;
like($plan, qr/Remote SQL: SELECT brand, count\(\*\) FILTER \(WHERE \(amount > 300/, "$n a rule's count runs on the shard (Remote SQL)");

# pushdown: GROUP BY customer_key ships the extension's aggregate to each shard
$plan = psql("SET enable_partitionwise_aggregate = on; EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_key, retail_mid.rfm_agg_daily(dt, orders::int8, net_amount, '$as_of', 365) "
                . "FROM retail_mid_dist.dws_trade_customer_1d WHERE brand = 'b1' GROUP BY customer_key", 'rm_coord');
note($plan);
$n++;
my @remote = ($plan =~ /Remote SQL: (SELECT customer_key, retail_mid\.rfm_agg_daily\([^\n]*GROUP BY[^\n]*)/g);
is(scalar(@remote), 3, "$n EXPLAIN VERBOSE: rfm_agg_daily runs on each of the 3 shards (Remote SQL ... GROUP BY customer_key)");
$plan = psql("SET enable_partitionwise_aggregate = on; EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_key, retail_mid.clv_summary(dt, net_amount::float8, '$as_of', '$as_of', 7) "
             . "FROM retail_mid_dist.dws_trade_customer_1d GROUP BY customer_key", 'rm_coord');
note($plan);
$n++;
@remote = ($plan =~ /Remote SQL: (SELECT customer_key, retail_mid\.clv_summary\([^\n]*GROUP BY[^\n]*)/g);
is(scalar(@remote), 3, "$n EXPLAIN VERBOSE: clv_summary runs on each shard");
$n++;
like($plan, qr/Async Foreign Scan/, "$n the shards are scanned asynchronously (async_capable)");

# brand isolation: the analyst entitled to b1 sees through the coordinator what it sees on one server
for my $t ('dws_trade_customer_1d', 'dws_trade_store_1d', 'dws_aipl_customer_stage_1d') {
    my $m = $t eq 'dws_aipl_customer_stage_1d' ? 'count(*)' : 'sum(orders)';
    my $a = psql(rows("SELECT brand, $m FROM retail_mid.$t GROUP BY 1"), 'rm_single', user => 'shard_tap_analyst');
    my $b = psql(rows("SELECT brand, $m FROM retail_mid_dist.$t GROUP BY 1"), 'rm_coord', user => 'shard_tap_analyst');
    $n++;
    ok($a eq $b && $a =~ /^1 rows/, "$n brand isolation on the coordinator: $t shows one brand, as on one server") or diag("$a\n$b");
}
my ($rc, $out) = psql("SELECT count(*) FROM retail_mid_dist.dws_trade_customer_1d_p0", 'rm_coord', user => 'shard_tap_analyst', may_fail => 1);
$n++;
ok($rc != 0 && $out =~ /permission denied/, "$n an analyst cannot read a shard's partition directly");

# a stopped shard: an error naming it, never a partial answer; back again, it answers without rebuilding the others
my $before = psql("SELECT count(*), sum(net_amount) FROM retail_mid_dist.dws_trade_customer_1d", 'rm_coord');
pg_ctl($c2, 'stop');
($rc, $out) = psql("SELECT count(*), sum(net_amount) FROM retail_mid_dist.dws_trade_customer_1d", 'rm_coord', may_fail => 1);
$n++;
ok($rc != 0 && $out =~ /shard2/, "$n shard 2 stopped: the query fails naming server shard2") or diag($out);
($rc, $out) = psql("SELECT count(*) FROM retail_mid_dist.dws_trade_store_1d", 'rm_coord', may_fail => 1);
$n++;
ok($rc != 0 && $out =~ /shard2/ && $out !~ /^\d+$/m, "$n and so does a per-store view (no partial count)") or diag($out);
($rc, $out) = psql("SELECT retail_mid.shard_gather_tags()", 'rm_coord', may_fail => 1);
$n++;
ok($rc != 0 && $out =~ /shard2/, "$n and a coordinator job (shard_gather_tags) fails naming shard2, changing nothing") or diag($out);
pg_ctl($c2, 'start');
$n++;
is(psql("SELECT count(*), sum(net_amount) FROM retail_mid_dist.dws_trade_customer_1d", 'rm_coord'), $before, "$n shard 2 back: the same answer, nothing rebuilt");
same('shard 2 back: store x day distinct customers as before (views of partial tables)',
     rows("SELECT dt, brand, store_id, customers FROM retail_mid.dws_trade_store_1d"),
     rows("SELECT dt, brand, store_id, retail_mid.rb_cardinality(retail_mid.rb_or_agg(customer_bitmap)) FROM retail_mid_dist.dws_trade_store_1d GROUP BY 1, 2, 3"));
psql("SET client_min_messages = warning; SELECT retail_mid.shard_gather_tags(); SELECT retail_mid.shard_forecast_refresh('b2', '$as_of', 365, 14, '$fc_options');", 'rm_coord');
same('shard 2 back: coordinator jobs run again (tags gathered): every bitmap and numeric index as on one server',
     rows("SELECT tag_name, tag_value, brand, customers, md5(retail_mid.rb_to_array(bitmap)::text) FROM retail_mid.tag_bitmap "
          . "UNION ALL SELECT tag_name, brand, min_value::text, customers, md5(bsi) FROM retail_mid.tag_bsi"));
same('shard 2 back: the refitted forecasts of brand b2 equal one server\'s',
     rows("SELECT brand, site_id, sku_id, made_on, result FROM retail_mid.replenish_forecast WHERE brand = 'b2'"),
     rows("SELECT brand, site_id, sku_id, made_on, result FROM retail_mid_dist.replenish_forecast WHERE brand = 'b2'"));

# bad inputs
for my $case (["SELECT retail_mid.shard_add('shard0', 'x', 5432, 'd')", qr/42710|already registered/],
              ["SELECT retail_mid.shard_add('Bad Name', 'x', 5432, 'd')", qr/22023|invalid shard server name/],
              ["SELECT retail_mid.shard_add('s9', 'x', 0, 'd')", qr/22023|out of range/],
              ["SELECT retail_mid.shard_load(NULL)", qr/22004|must not be null/],
              ["SELECT retail_mid.shard_forecast_refresh(NULL)", qr/22004.*must not be null/s],
              ["SELECT retail_mid.shard_forecast_refresh('b1', NULL, 3)", qr/22023.*history_days/s],
              ["SELECT retail_mid.shard_forecast_refresh('b1', NULL, 30, 14, '{\"seed\": \"x\"}')", qr/22023/],
              ["SELECT retail_mid.shard_forecast_refresh('nobrand')", qr/22023.*no sales/s],
              ["SELECT retail_mid.shard_quality_evaluate('retail_mid.ods_site')", qr/22023.*not a customer or series table/s],
              ["SELECT retail_mid.shard_quality_evaluate(NULL, 'infinity')", qr/22023.*finite/s]) {
    ($rc, $out) = psql("\\set VERBOSITY verbose\n$case->[0]", 'rm_coord', may_fail => 1);
    $n++;
    ok($rc != 0 && $out =~ $case->[1], "$n $case->[0] is refused") or diag($out);
}
($rc, $out) = psql("\\set VERBOSITY verbose\nSELECT retail_mid.shard_attach_tables()", 'rm_single', may_fail => 1);
$n++;
ok($rc != 0 && $out =~ /55000.*no shard is registered/s, "$n shard_attach_tables without shards: 55000") or diag($out);

psql("DROP DATABASE rm_coord WITH (FORCE)", 'postgres');
psql("DROP DATABASE rm_single WITH (FORCE)", 'postgres');
psql("DROP DATABASE rm_shard0 WITH (FORCE)", 'postgres');
done_testing();
