#!/usr/bin/perl
# keydict + dws under concurrency: racing loaders get one key per identifier; a refresh never shows a dashboard
# a half-built state and does not block it; two refreshes at once queue and give the same tables as one.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

my $db = 'retail_mid_dws_conc';
my $dir = tempdir(CLEANUP => 1);
sub psql { my ($sql, $dbname) = @_; $dbname //= $db; my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $dbname -c "$sql" 2>&1`; die "psql failed: $out" if $?; chomp $out; return $out; }
sub background {   # runs a SQL file in its own psql session; returns the pid
    my ($name, $sql) = @_;
    open my $f, '>', "$dir/$name.sql" or die; print $f $sql; close $f;
    my $pid = fork(); die "fork failed" unless defined $pid;
    if ($pid == 0) { exec("psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db -f $dir/$name.sql >$dir/$name.out 2>$dir/$name.err") or exit 1; }
    return $pid;
}
sub slurp { my ($n) = @_; open my $f, '<', "$dir/$n" or return ''; local $/; my $s = <$f>; return $s // ''; }

psql("DROP DATABASE IF EXISTS $db", 'postgres');
psql("CREATE DATABASE $db", 'postgres');
psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid CASCADE");

# 1. three loaders assign keys to overlapping sets of 3,000 new identifiers at the same time
my @pids;
for my $s (0 .. 2) {
    my $lo = 1 + 1000 * $s;
    my $hi = $lo + 2999;
    push @pids, background("keys$s", join('', map { "SELECT retail_mid.assign_customer_keys(array_agg('phone'::text), array_agg(g::text)) FROM generate_series($lo + $_ * 100, least($hi, $lo + $_ * 100 + 149)) g;\n" } 0 .. 29));
}
waitpid($_, 0) for @pids;
is(slurp('keys0.err') . slurp('keys1.err') . slurp('keys2.err'), '', 'racing key assignments raise no error');
is(psql("SELECT count(*) FROM retail_mid.customer_key WHERE id_type = 'phone'"), '5000', 'one key per identifier (5,000 distinct)');
is(psql("SELECT count(DISTINCT customer_key) FROM retail_mid.customer_key"), psql("SELECT count(*) FROM retail_mid.customer_key"), 'keys are unique');
ok(psql("SELECT max(customer_key) - min(customer_key) + 1 FROM retail_mid.customer_key") < 5000 * 2, 'keys stay dense (gaps only from lost races)');

# 2. a long refresh and a dashboard reading at the same time
psql("SET client_min_messages = warning; SELECT retail_mid.generate_synthetic(seed => 3, customers => 300, days => 60, orders_per_day => 40, stores => 4, skus => 100, start_date => '2024-01-01', with_events => false)");
psql("SET client_min_messages = warning; SELECT retail_mid.refresh('2024-01-01', '2024-02-29')");
my $total = psql("SELECT sum(net_amount) FROM retail_mid.dws_trade_store_1d");
my $fingerprint_sql = "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_sku_store_1d x";
my $fingerprint = psql($fingerprint_sql);
my $writer = background('writer', "SET client_min_messages = warning;\nBEGIN;\nSELECT retail_mid.refresh('2024-01-01', '2024-02-29') > 0;\nSELECT pg_sleep(3);\nSELECT extract(epoch FROM clock_timestamp());\nCOMMIT;\n");
sleep(1.0);
my $reader = background('reader', join('', map { "SELECT extract(epoch FROM clock_timestamp()) || ' ' || (SELECT sum(net_amount) FROM retail_mid.dws_trade_store_1d) || ' ' || (SELECT count(*) FROM retail_mid.dws_trade_customer_td);\nSELECT pg_sleep(0.2);\n" } 1 .. 5));
waitpid($reader, 0);
waitpid($writer, 0);
is(slurp('writer.err') . slurp('reader.err'), '', 'refresh and dashboard reads raise no error');
my ($commit_at) = grep { /^\d+\.\d+$/ } split /\n/, slurp('writer.out');
my @reads = grep { /^\d/ } split /\n/, slurp('reader.out');
my $td = psql("SELECT count(*) FROM retail_mid.dws_trade_customer_td");
is(scalar(@reads), 5, 'the dashboard read five times during the refresh');
is(scalar(grep { (split / /)[1] ne $total || (split / /)[2] ne $td } @reads), 0, 'every read saw the complete previous state');
ok(scalar(grep { (split / /)[0] < $commit_at } @reads) >= 4, 'reads were not blocked by the open refresh');

# 3. two refreshes at once queue on the advisory lock and end in the same state as one
@pids = map { background("refresh$_", "SET client_min_messages = warning;\nSELECT retail_mid.refresh('2024-01-01', '2024-02-29') > 0;\n") } 1 .. 2;
waitpid($_, 0) for @pids;
is(slurp('refresh1.err') . slurp('refresh2.err'), '', 'concurrent refreshes both succeed');
is(psql($fingerprint_sql), $fingerprint, 'and leave the same tables as a single refresh');

psql("DROP DATABASE $db", 'postgres');
done_testing();
