#!/usr/bin/perl
# reach: two sessions running reach plans of one brand at the same time never push anyone over the frequency cap.
# 3000 customers, each with 4 touches in the 30 days before the send times and consent for sms; cap 7 in 30 days.
# Session 1 runs plans 1, 3, 5 and session 2 plans 2, 4, 6 concurrently, all sent within a few hours: whatever the
# interleaving (forced: each run's transaction stays open while the other session runs), exactly three plans can touch each customer, so 9,000 touches are planned and 9,000 skipped,
# and nobody ends with more than 7 touches in the window.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $db = 'retail_mid_reach_conc';
my $dir = tempdir(CLEANUP => 1);
sub psql { my ($sql, $dbname) = @_; my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $dbname -c "$sql" 2>&1`; die "psql failed: $out" if $?; chomp $out; return $out; }

psql("DROP DATABASE IF EXISTS $db", 'postgres');
psql("CREATE DATABASE $db", 'postgres');
psql("CREATE EXTENSION retail_mid CASCADE", $db);
open my $f, '>', "$dir/setup.sql" or die;
print $f <<'SQL';
SET client_min_messages = warning;
SELECT retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg('c' || g), array_agg('conc'::text)) FROM generate_series(1, 3000) g;
CREATE TABLE public.conc_cust AS SELECT customer_key FROM retail_mid.customer_key WHERE id_value ~ '^c\d+$';
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql)
VALUES ('conc_in', '其他', '其他', 'boolean', 'SELECT customer_key, true FROM public.conc_cust');
SELECT retail_mid.evaluate_tags(ARRAY['conc_in']);
INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at)
SELECT 'conc', customer_key, 'sms', 'granted', '2026-01-01' FROM public.conc_cust;
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
SELECT 'conc', 'hist', k.id_type, k.id_value, 'sms', timestamp '2026-05-31' - make_interval(days => 5 * j), 'sent'
  FROM retail_mid.customer_key k JOIN public.conc_cust USING (customer_key), generate_series(1, 4) j;
-- the frequency caps read the touch DWD (issue 15): bring it up to date with the touches just loaded
SELECT retail_mid.refresh_domains('2026-05-01', '2026-06-30');
SELECT retail_mid.reach_plan_create('conc', 'conc_in', '{sms}', timestamp '2026-06-01 08:00' + make_interval(hours => i), name => 'p' || i)
  FROM generate_series(1, 8) i;
SQL
close $f;
system("psql -X -q -v ON_ERROR_STOP=1 -d $db -f $dir/setup.sql >/dev/null") == 0 or die "setup failed";
my @plans = split /\n/, psql("SELECT plan_id FROM retail_mid.reach_plan WHERE brand = 'conc' ORDER BY plan_id", $db);
is(scalar(@plans), 8, 'eight plans created');

my @pids;
for my $s (1 .. 2) {
    open my $w, '>', "$dir/s$s.sql" or die;
    # each run's transaction stays open a second after the run, and session 2 starts half a second later, so every
    # run of one session overlaps a run of the other
    print $w "SET client_min_messages = warning;\n";
    print $w "SELECT pg_sleep(0.5);\n" if $s == 2;
    for my $i (0 .. 2) {
        my $p = $plans[2 * $i + $s - 1];
        print $w "BEGIN;\nSELECT planned, skipped_frequency_cap FROM retail_mid.reach_plan_run($p);\nSELECT pg_sleep(1);\nCOMMIT;\n";
    }
    close $w;
    my $pid = fork();
    die "fork failed" unless defined $pid;
    if ($pid == 0) {
        exec("psql -X -q -A -t -d $db -f $dir/s$s.sql >$dir/s$s.out 2>$dir/s$s.err") or exit 1;
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;

my $errors = '';
for my $s (1 .. 2) { open my $e, '<', "$dir/s$s.err" or die; local $/; $errors .= <$e>; }
is($errors, '', 'no errors in either session');
is(psql("SELECT count(*) FROM retail_mid.reach_run WHERE brand = 'conc'", $db), '6', 'all six runs happened');
is(psql("SELECT count(*) FILTER (WHERE status = 'planned') || ' ' || count(*) FILTER (WHERE reason = 'frequency_cap') FROM retail_mid.reach_outbox WHERE brand = 'conc'", $db),
   '9000 9000', '9,000 touches planned and 9,000 skipped by the cap');
is(psql("SELECT count(*) FROM (SELECT customer_key FROM retail_mid.reach_touch WHERE brand = 'conc' AND touched_at > '2026-05-02 14:00' GROUP BY 1 HAVING count(*) > 7) x", $db),
   '0', 'nobody has more than 7 touches in the 30 days up to the last send time');
is(psql("SELECT count(DISTINCT n) || ':' || min(n) FROM (SELECT customer_key, count(*) AS n FROM retail_mid.reach_outbox WHERE brand = 'conc' AND status = 'planned' GROUP BY 1) x", $db),
   '1:3', 'every customer got exactly three of the six plans');

# Under REPEATABLE READ a run whose snapshot predates another run's commit cannot count from that stale snapshot:
# it fails with a serialization error (40001) for the caller to retry.
open my $ra, '>', "$dir/rr_a.sql" or die;
print $ra "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT count(*) FROM retail_mid.reach_outbox;\nSELECT pg_sleep(1.5);\nSELECT * FROM retail_mid.reach_plan_run($plans[6]);\nCOMMIT;\n";
close $ra;
open my $rb, '>', "$dir/rr_b.sql" or die;
print $rb "SELECT pg_sleep(0.5);\nSELECT * FROM retail_mid.reach_plan_run($plans[7]);\n";
close $rb;
@pids = ();
for my $s ('rr_a', 'rr_b') {
    my $pid = fork();
    die "fork failed" unless defined $pid;
    if ($pid == 0) { exec("psql -X -q -A -t -d $db -f $dir/$s.sql >$dir/$s.out 2>$dir/$s.err") or exit 1; }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;
{ local $/; open my $e, '<', "$dir/rr_a.err" or die; my $err = <$e>;
  like($err, qr/could not serialize access due to concurrent update/, 'a repeatable read run with a stale snapshot fails with 40001'); }
is(psql("SELECT count(*) FROM retail_mid.reach_outbox WHERE plan_id = $plans[6]", $db), '0', 'the failed run wrote nothing');
is(psql("SELECT count(*) FILTER (WHERE reason = 'frequency_cap') FROM retail_mid.reach_outbox WHERE plan_id = $plans[7]", $db), '3000',
   'the other run skipped everyone (all at the cap)');
psql("DROP DATABASE $db", 'postgres');
done_testing();
