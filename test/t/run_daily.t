#!/usr/bin/perl
# run_daily: two runs at once cannot interleave (the second fails at once with 55P03 and writes nothing, the first
# completes, a later run finds everything done), and the pg_cron schedule: schedule_daily installs the job (seen in
# cron.job, replaced when scheduled again), unschedule_daily removes it, 55000 with a hint when pg_cron is missing
# (not loaded here; loaded but not created in the database). The pg_cron part starts a second cluster with
# WITH_PG_CRON=1 (test/with_cluster.sh); it prints SKIPPED when the postgresql-15-cron package is not installed.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Time::HiRes qw(sleep);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;
my $db = 'retail_mid_run_daily_tap';

sub psql {
    my ($sql, $d, %o) = @_;
    my $f = "$dir/q$$" . int(rand(1e9)) . '.sql';
    open my $fh, '>', $f or die; print $fh $sql; close $fh;
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d $d -f $f 2>&1`;
    return ($?, $out) if $o{may_fail};
    die "psql failed on $d: $out" if $?;
    chomp $out; return $out;
}

psql("DROP DATABASE IF EXISTS $db; CREATE DATABASE $db", 'postgres');
psql(<<'SQL', $db);
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 3, customers => 200, days => 30, orders_per_day => 20, stores => 2, skus => 10, brand => 'tap_a');
SQL

# session 1 holds the run's advisory lock, as a run in progress does (for 8 s)
my $first = "$dir/first.out";
# (in a subshell: "a; b &" would run a in the foreground and wait for it)
system("(psql -X -q -A -t -d $db -c \"SELECT pg_advisory_lock(hashtext('retail_mid.run_daily')), pg_sleep(8)\" > $first 2>&1; echo \"rc=\$?\" >> $first) &");
my $waited = 0;
while ($waited < 60) {
    last if psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = (hashtext('retail_mid.run_daily')::bigint & 4294967295)::oid", $db) > 0;
    sleep 0.2; $waited += 0.2;
}
ok($waited < 60, 'session 1 holds the lock');

# session 2: refused at once, with the SQLSTATE and a message naming the running backend, writing nothing
my $before = psql("SELECT count(*) FROM retail_mid.job_log", $db);
my $t0 = time;
my ($rc, $out) = psql("\\set VERBOSITY verbose\nCALL retail_mid.run_daily('2024-01-30')", $db, may_fail => 1);
ok($rc != 0, 'a second run while the first runs fails');
like($out, qr/55P03/, 'with SQLSTATE 55P03 (lock_not_available)') or diag($out);
like($out, qr/run_daily is already running \(backend \d+\)/, 'and a message naming the running backend');
ok(time - $t0 < 4, 'without waiting for the first');
is(psql("SELECT count(*) FROM retail_mid.job_log", $db), $before, 'the refused run wrote nothing');

$waited = 0;
while ($waited < 60 && !(-s $first && `cat $first` =~ /rc=/)) { sleep 0.5; $waited += 0.5; }
psql("CALL retail_mid.run_daily('2024-01-30')", $db);
is(psql("SELECT string_agg(arguments->>'step' || ':' || outcome, ' ' ORDER BY job_id) FROM retail_mid.job_log WHERE job = 'run_daily'", $db),
   'refresh:ok rfm:ok aipl:ok tags:ok forecast:ok quality:ok', 'once the lock is free, the run does every step');
is(psql("SELECT pg_try_advisory_lock(hashtext('retail_mid.run_daily')) AND pg_advisory_unlock(hashtext('retail_mid.run_daily'))", $db),
   't', 'the lock is released at the end');
psql("CALL retail_mid.run_daily('2024-01-30')", $db);
is(psql("SELECT count(*) FILTER (WHERE detail ? 'skipped') || '/' || count(*) FROM retail_mid.job_log WHERE job = 'run_daily' AND job_id > "
        . "(SELECT max(job_id) FROM retail_mid.job_log WHERE arguments->>'step' = 'quality' AND NOT detail ? 'skipped')", $db),
   '6/6', 'a later run of the same day finds every step done');

# pg_cron missing (this cluster does not preload it): 55000 with the hint
($rc, $out) = psql("\\set VERBOSITY verbose\nSELECT retail_mid.schedule_daily()", $db, may_fail => 1);
like($out, qr/55000.*pg_cron is not installed/s, 'schedule_daily without pg_cron: 55000');
like($out, qr/postgresql-15-cron.*shared_preload_libraries/s, 'with the hint to install and preload it');
($rc, $out) = psql("\\set VERBOSITY verbose\nSELECT retail_mid.unschedule_daily()", $db, may_fail => 1);
like($out, qr/55000/, 'unschedule_daily without pg_cron: 55000');
psql("DROP DATABASE $db", 'postgres');

# pg_cron loaded: a cluster of its own
my $pkglib = `pg_config --pkglibdir 2>/dev/null`; chomp $pkglib;
$pkglib = '/usr/lib/postgresql/15/lib' unless $pkglib;
SKIP: {
    unless (-f "$pkglib/pg_cron.so") {
        print "SKIPPED: pg_cron is not installed (Debian package postgresql-15-cron)\n";
        skip 'pg_cron not installed', 9;
    }
    open my $fh, '>', "$dir/cron.sql" or die;
    print $fh <<'SQL';
\set VERBOSITY verbose
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
SELECT 'loaded_not_created', current_setting('shared_preload_libraries');
SELECT retail_mid.schedule_daily();
CREATE EXTENSION pg_cron;
CREATE ROLE cron_admin LOGIN IN ROLE retail_mid_admin;
GRANT USAGE ON SCHEMA cron TO cron_admin;
SET ROLE cron_admin;
SELECT 'scheduled', retail_mid.schedule_daily() > 0;
SELECT 'job', jobname, schedule, command, username, database FROM cron.job;
SELECT 'rescheduled', retail_mid.schedule_daily('15 3 * * *') > 0;
SELECT 'jobs', count(*), min(schedule) FROM cron.job;
SELECT 'bad', retail_mid.schedule_daily('not a schedule');
SELECT 'unscheduled', retail_mid.unschedule_daily();
SELECT 'again', retail_mid.unschedule_daily();
SELECT 'left', count(*) FROM cron.job;
SQL
    close $fh;
    my $cron_out = `cd $root && WITH_PG_CRON=1 bash test/with_cluster.sh psql -X -A -t -d postgres -f $dir/cron.sql 2>&1`;
    like($cron_out, qr/loaded_not_created\|pg_cron/, 'the cluster preloads pg_cron') or diag($cron_out);
    like($cron_out, qr/55000.*pg_cron is not installed.*CREATE EXTENSION pg_cron was not run/s,
         'loaded but not created in the database: 55000, saying so');
    like($cron_out, qr/^scheduled\|t$/m, 'schedule_daily returns the job id');
    like($cron_out, qr/^job\|retail_mid_run_daily\|30 2 \* \* \*\|CALL retail_mid\.run_daily\(\)\|cron_admin\|postgres$/m,
         'the job is in cron.job: name, default schedule, command, the scheduling role, the database');
    like($cron_out, qr/^jobs\|1\|15 3 \* \* \*$/m, 'scheduling again replaces the job');
    like($cron_out, qr/ERROR:  22023: invalid schedule/, 'a bad schedule is refused by pg_cron (22023)');
    like($cron_out, qr/^unscheduled\|t$/m, 'unschedule_daily removes it');
    like($cron_out, qr/^again\|f$/m, 'and says false when there is none');
    like($cron_out, qr/^left\|0$/m, 'cron.job is empty');
}

done_testing();
