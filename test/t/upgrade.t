#!/usr/bin/perl
# upgrade: 1.0.0 installed, filled by the pipeline, then ALTER EXTENSION retail_mid UPDATE; the catalog must equal a
# fresh install of the current version (pg_dump --schema-only --binary-upgrade, which writes out every member object
# of the extension, normalised), every table's rows must survive, and the regression suite must pass on the upgraded
# database. It fails when an install script changes without the matching upgrade script.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $bindir = `pg_config --bindir 2>/dev/null`; chomp $bindir;
$bindir = '/usr/lib/postgresql/15/bin' unless -x "$bindir/pg_dump";
my $pg_regress = dirname(`pg_config --pgxs`) . '/../test/regress/pg_regress';
my $dir = tempdir(CLEANUP => 1);
my ($current) = `cat $root/retail_mid.control` =~ /^default_version = '([^']+)'/m;
my @released = sort map { m{retail_mid--(\d+\.\d+\.\d+)\.sql$} ? $1 : () } glob("$root/upgrade/retail_mid--*.sql");

sub psql {
    my ($sql, $db) = @_;
    open my $f, '>', "$dir/q.sql" or die; print $f $sql; close $f;
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db -f $dir/q.sql 2>&1`;
    die "psql failed on $db: $out" if $?;
    chomp $out; return $out;
}

# The columns of every table of the extension before the update: a column an upgrade adds (at the end of its table)
# is not part of what must survive, so the fingerprints read the columns the old version had. Columns an upgrade
# rewrites on purpose are left out too, and compared with a fresh install instead (%rewritten).
my %rewritten = ('retail_mid.tag_definition' => 'rule_sql');  # issue 19: the shipped tags' rules join the dictionary by issuer
my $columns_sql = <<'SQL';
SELECT coalesce(jsonb_object_agg(x.rel, x.cols), '{}') FROM (
  SELECT c.oid::regclass::text AS rel, jsonb_agg(quote_ident(a.attname) ORDER BY a.attnum) AS cols
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p')
     AND (c.oid::regclass::text, a.attname::text) NOT IN (REWRITTEN)
   GROUP BY c.oid) x;
SQL
my $rewritten_list = join(', ', map { "('$_', '$rewritten{$_}')" } sort keys %rewritten);
$columns_sql =~ s/REWRITTEN/$rewritten_list/;

# Rows an upgrade ships into a table that already holds user rows (new shipped definitions): left out of the
# fingerprints on both sides (the old version has none of them), and compared with a fresh install instead.
# (table => [the rows, the columns compared with a fresh install])
my %shipped = ('retail_mid.tag_definition' => [q{tag_name ~ '^(sms|email|wechat|app_push)_(open|click)_rate_180d$'},  # issue 16
                                               'tag_name, level1, level2, level3, value_type, source, expression, numeric_scale, description, scope']);
my $shipped_json = '{' . join(', ', map { my $v = $shipped{$_}[0] =~ s/"/\\"/gr; "\"$_\": \"$v\"" } sort keys %shipped) . '}';

# Tables an upgrade turns into a view with the same columns and rows (issue 16: the AIPL stage rows are a view over
# the stage bitmaps, into which the update carries the 1.0 rows): fingerprinted as views after the update.
my @became_view = ('retail_mid.dws_aipl_customer_stage_1d');
my $became_view_list = join(', ', map { "'$_'" } @became_view);

# One md5 per table of the extension (over the columns of COLUMNS, a JSON object from $columns_sql; all columns of a
# table it does not name; without the rows of %shipped): what must survive an upgrade untouched.
my $fingerprints_sql = <<'SQL';
CREATE TEMP TABLE fp(rel text, rows bigint, md5 text);
DO $fp$
DECLARE r record; n bigint; h text; cols jsonb := $cols$COLUMNS$cols$; x text; shipped jsonb := $sh$SHIPPED$sh$;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
            WHERE c.relnamespace = 'retail_mid'::regnamespace
              AND (c.relkind IN ('r', 'p') OR (c.relkind = 'v' AND c.oid::regclass::text IN (BECAME_VIEW))) ORDER BY 1::text LOOP
    x := coalesce('ROW(' || (SELECT string_agg('t.' || e, ', ') FROM jsonb_array_elements_text(cols -> r.rel::text) e) || ')', 't');
    EXECUTE format('SELECT count(*), md5(coalesce(string_agg(%1$s::text, E''\n'' ORDER BY %1$s::text), '''')) FROM %2$s t WHERE NOT (%3$s)',
                   x, r.rel, coalesce(shipped ->> r.rel::text, 'false'))
       INTO n, h;
    INSERT INTO fp VALUES (r.rel::text, n, h);
  END LOOP;
END $fp$;
SELECT string_agg(rel || ' ' || rows || ' ' || md5, E'\n' ORDER BY rel) FROM fp;
SQL
$fingerprints_sql =~ s/SHIPPED/$shipped_json/;
$fingerprints_sql =~ s/BECAME_VIEW/$became_view_list/;

# The catalog of the extension as pg_dump writes it in binary-upgrade mode, without what differs between any two
# databases (OIDs, dump ids, the database's own name).
sub catalog {
    my ($db) = @_;
    # issue 13: the monthly partitions of the history tables (<table>_pYYYYMM) are created at run time for the
    # rows a database holds (an updated 1.0.0 database has rows, a fresh install none) and are not extension
    # members: they are left out of the comparison on purpose and checked separately below.
    my $dump = `$bindir/pg_dump --schema-only --binary-upgrade -T 'retail_mid.*_p[0-9][0-9][0-9][0-9][0-9][0-9]' -d $db 2>&1`;
    die "pg_dump failed: $dump" if $?;
    # config tables' oids and filters (a filter may span lines, e.g. postgis's)
    $dump =~ s/(binary_upgrade_create_empty_extension\('[^']*', '[^']*', \w+, '[^']*'), '\{[0-9,]*\}', '(?:[^']|'')*'/$1, '{config tables}', '{filters}'/g;
    my @keep;
    for (split /\n/, $dump) {
        next if /^-- (TOC entry|Dependencies|Dumped (from|by))/ || /^\\(un)?restrict /;
        next if /binary_upgrade_set_next_|SET relfrozenxid|^WHERE oid = '\d+';$|^SELECT pg_catalog\.setval\(/;
        s/(binary_upgrade_create_empty_extension\('[^']*', '[^']*', \w+, '[^']*'), '\{[0-9,]*\}'/$1, '{config tables}'/;
        # retail_mid's filters are in registration order, which an update changes: compared sorted below ($config_sql)
        s/(binary_upgrade_create_empty_extension\('retail_mid', .*'\{config tables\}'), '(?:[^']|'')*'/$1, '{filters}'/;
        push @keep, $_;
    }
    return join("\n", @keep) . "\n";
}

sub write_file { my ($p, $s) = @_; open my $f, '>', $p or die; print $f $s; close $f; }

ok(scalar(@released) >= 1 && $released[0] eq '1.0.0', "the first release's full script is kept (upgrade/retail_mid--1.0.0.sql)");
ok(-f "$root/upgrade/retail_mid--$released[-1]--$current.sql" || $released[-1] eq $current,
   "an upgrade script leads from the last released version $released[-1] to $current");

my $fresh = 'retail_mid_upgrade_fresh';
psql("DROP DATABASE IF EXISTS $fresh; CREATE DATABASE $fresh", 'postgres');
psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid CASCADE", $fresh);
my $fresh_catalog = catalog($fresh);

for my $from (grep { $_ ne $current } @released) {
    my $db = 'retail_mid_upgrade_' . ($from =~ s/\./_/gr);
    psql("DROP DATABASE IF EXISTS $db; CREATE DATABASE $db", 'postgres');
    psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid VERSION '$from' CASCADE", $db);
    is(psql("SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'", $db), $from, "$from installs");

    # data of every kind the old version holds: trade through DWD/DWS, keys, RFM, AIPL, tags, an audience, quality
    psql(<<'SQL', $db);
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(seed => 11, customers => 400, days => 60, orders_per_day => 40, stores => 4,
                                     skus => 80, start_date => '2024-01-01');
SELECT retail_mid.refresh_all();
SELECT retail_mid.rfm_refresh('synthetic', '2024-02-29', 60);
SELECT retail_mid.aipl_refresh('synthetic', '2024-02-20', '2024-02-29');
SELECT retail_mid.evaluate_tags();
SELECT retail_mid.save_audience('upgrade_check', 'rfm_segment = ''champions''', 'synthetic');
SELECT retail_mid.quality_add_default_rules('retail_mid.dwd_trade_order_line_di');
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di');
SQL
    my $old_columns = psql($columns_sql, $db);
    my $before = psql($fingerprints_sql =~ s/COLUMNS/$old_columns/r, $db);
    ok(($before =~ tr/\n//) > 20 && $before =~ /dws_trade_customer_td [1-9]/, "$from holds data in its tables before the update");

    psql("SET client_min_messages = warning; ALTER EXTENSION retail_mid UPDATE", $db);
    is(psql("SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'", $db), $current, "$from updates to $current");

    my $after = psql($fingerprints_sql =~ s/COLUMNS/$old_columns/r, $db);
    # tables new in the current version are allowed (they start empty); every old table keeps its rows exactly
    my %new = map { my @f = split / /; ($f[0] => $_) } split /\n/, $after;
    my @lost = grep { my $rel = (split / /)[0]; !defined $new{$rel} || $new{$rel} ne $_ } split /\n/, $before;
    is(join("\n", @lost), '', "every table's rows survive the update from $from (fingerprints)");

    for my $rel (sort keys %rewritten) {
        my $q = "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM (SELECT $rewritten{$rel} FROM $rel) t";
        is(psql($q, $db), psql($q, $fresh), "$rel.$rewritten{$rel} (rewritten by the update) equals a fresh install's");
    }
    for my $rel (sort keys %shipped) {
        my ($rows, $cols) = @{$shipped{$rel}};
        my $q = "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM (SELECT $cols FROM $rel WHERE $rows) t";
        is(psql($q, $db), psql($q, $fresh), "the rows the update ships into $rel equal a fresh install's");
    }

    # issue 13: the moved rows sit in monthly partitions that are not extension members and have no grants
    is(psql("SELECT count(*) FILTER (WHERE d.objid IS NOT NULL) || ' ' || count(*) FILTER (WHERE c.relacl::text ~ 'retail_mid_')"
          . " || ' ' || (count(*) > 0) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid"
          . " LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'"
          . " WHERE i.inhparent = ANY (retail_mid.partitioned_history_tables())", $db),
       '0 0 true', "the update from $from moves the history rows into monthly partitions that are not extension members");

    my $upgraded_catalog = catalog($db);
    write_file("$dir/fresh.sql", $fresh_catalog);
    write_file("$dir/upgraded.sql", $upgraded_catalog);
    my $diff = `diff -u $dir/fresh.sql $dir/upgraded.sql`;
    ok($diff eq '', "the catalog after updating from $from equals a fresh install of $current")
        or diag("differences (- fresh install, + updated from $from); ship them in upgrade/:\n" . substr($diff, 0, 6000));

    my $config_sql = "SELECT coalesce(array_to_string(array(SELECT c::regclass::text || ' ' || coalesce(w, '')"
                   . " FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, w) WHERE e.extname = 'retail_mid'"
                   . " ORDER BY 1), E'\\n'), '')";
    is(psql($config_sql, $db), psql($config_sql, $fresh), "the tables pg_dump keeps (pg_extension_config_dump) are the same after updating from $from");

    # the regression suite on a database that was updated, not freshly created (as PostGIS's --upgrade-path runs)
    my $suite_db = 'retail_mid_upgrade_suite';
    psql("DROP DATABASE IF EXISTS $suite_db; CREATE DATABASE $suite_db", 'postgres');
    psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid VERSION '$from' CASCADE; ALTER EXTENSION retail_mid UPDATE", $suite_db);
    my $out = "$dir/suite_$from";
    mkdir $out;
    # in the suite's own order: some tests rely on an earlier one dropping and recreating the extension
    my @tests = map { m{/([^/]+)\.sql$} } sort glob("$root/test/sql/*.sql");
    my $log = `cd $root && $pg_regress --inputdir=test --outputdir=$out --use-existing --dbname=$suite_db --bindir=$bindir @tests 2>&1`;
    my $failed = () = $log =~ /\.\.\. (FAILED|failed)/g;
    my $passed = () = $log =~ /\.\.\. ok/g;
    ok($? == 0 && $failed == 0 && $passed == scalar(@tests), "the regression suite passes on a database updated from $from ($passed of " . scalar(@tests) . ")")
        or diag($log . (-f "$out/regression.diffs" ? `head -n 200 $out/regression.diffs` : ''));
}

done_testing();
