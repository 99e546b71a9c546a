#!/usr/bin/perl
# backup_restore: a database filled through every pipeline step (two synthetic brands, refresh, RFM, AIPL, CLV, tags,
# a saved audience, quality rules and results, a metric granularity, a brand entitlement, a masking rule, changed
# default rows) is dumped with pg_dump -Fc and restored with pg_restore into a new database. The copy must hold the
# same rows in every table (fingerprints), the same sequences, policies, grants and masked views; an analyst sees only
# their brand; a refresh gives the same result on both; ids continue after the restored ones; ALTER EXTENSION UPDATE
# runs. Dumping without the rights, and restoring as a non-superuser, fail with a clear error.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $bindir = `pg_config --bindir 2>/dev/null`; chomp $bindir;
$bindir = '/usr/lib/postgresql/15/bin' unless -x "$bindir/pg_dump";
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;

sub psql {
    my ($sql, $db, %o) = @_;
    open my $f, '>', "$dir/q.sql" or die; print $f $sql; close $f;
    my $user = $o{user} ? "-U $o{user}" : '';
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 $user -d $db -f $dir/q.sql 2>&1`;
    return ($?, $out) if $o{may_fail};
    die "psql failed on $db: $out" if $?;
    chomp $out; return $out;
}

# One md5 per table of the schema (extension members and generated tables alike), as in upgrade.t.
my $fingerprints_sql = <<'SQL';
CREATE TEMP TABLE fp(rel text, rows bigint, md5 text);
DO $$
DECLARE r record; n bigint; h text;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
            WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1::text LOOP
    EXECUTE format('SELECT count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM %s t', r.rel)
       INTO n, h;
    INSERT INTO fp VALUES (r.rel::text, n, h);
  END LOOP;
END $$;
SELECT string_agg(rel || ' ' || rows || ' ' || md5, E'\n' ORDER BY rel) FROM fp;
SQL

# Where every sequence of the schema stands.
my $sequences_sql = "SELECT string_agg(format('%s.%s %s', schemaname, sequencename, last_value), E'\\n' ORDER BY 1)"
                  . " FROM pg_sequences WHERE schemaname = 'retail_mid'";

# Security as the catalog holds it: policies, row-level security flags, owners and grants of every relation and of the
# schema, definitions and owners of the masked views.
my $security_sql = <<'SQL';
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('policy %s %s %s %s %s using=%s check=%s', p.tablename, p.policyname, p.permissive, p.roles, p.cmd, p.qual, p.with_check) AS x
    FROM pg_policies p WHERE p.schemaname = 'retail_mid'
  UNION ALL
  SELECT format('rel %s kind=%s owner=%s rls=%s force=%s acl=%s', c.relname, c.relkind, c.relowner::regrole, c.relrowsecurity,
                c.relforcerowsecurity, (SELECT array_agg(a ORDER BY a::text) FROM unnest(c.relacl) a))
    FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  UNION ALL
  SELECT format('view %s options=%s %s', c.relname, c.reloptions, pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'v' AND c.relname LIKE '%\_masked'
  UNION ALL
  SELECT format('schema acl=%s', (SELECT array_agg(a ORDER BY a::text) FROM unnest(n.nspacl) a)) FROM pg_namespace n WHERE n.nspname = 'retail_mid'
) s
SQL

# What an analyst entitled to br_a reads: brands of the brand tables, their rows, a masked view, audiences.
my $analyst_sql = <<'SQL';
SET ROLE br_alice;
SELECT concat_ws(' | ',
  (SELECT string_agg(DISTINCT brand, ',') FROM retail_mid.dws_trade_customer_td),
  (SELECT count(*) FROM retail_mid.dws_trade_customer_td),
  (SELECT string_agg(DISTINCT brand, ',') FROM retail_mid.dwd_trade_order_line_di_masked),
  (SELECT count(*) FROM retail_mid.dwd_trade_order_line_di_masked),
  (SELECT string_agg(DISTINCT brand, ',') FROM retail_mid.ods_customer_masked),
  (SELECT count(*) FROM retail_mid.tag_value),
  (SELECT count(*) FROM retail_mid.customer_key),
  (SELECT string_agg(DISTINCT brand, ',') FROM retail_mid.dws_metric_bk_store),
  (SELECT string_agg(DISTINCT audience_brand, ',') FROM retail_mid.audience_member_brand),
  retail_mid.audience_count('monetary_td >= 100'));
RESET ROLE;
SQL

my $orig = 'retail_mid_backup_orig';
my $copy = 'retail_mid_backup_copy';
psql("DROP DATABASE IF EXISTS $orig; DROP DATABASE IF EXISTS $copy; CREATE DATABASE $orig", 'postgres');
psql(<<'SQL', 'postgres');
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'br_alice') THEN CREATE ROLE br_alice LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'br_nobody') THEN CREATE ROLE br_nobody LOGIN; END IF;
END $$;
SQL
psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid CASCADE; GRANT retail_mid_analyst TO br_alice", $orig);

# every pipeline step, on two brands
psql(<<'SQL', $orig);
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(seed => 7, customers => 300, days => 60, orders_per_day => 30, stores => 3,
                                     skus => 60, start_date => '2024-01-01', brand => 'br_a');
SELECT retail_mid.generate_synthetic(seed => 8, customers => 250, days => 60, orders_per_day => 25, stores => 3,
                                     skus => 50, start_date => '2024-01-01', brand => 'br_b');
-- a changed default row, a default row of the user's own, a user's tag in the taxonomy
UPDATE retail_mid.aipl_rule SET lookback_days = 45 WHERE brand = '*' AND stage = 'A' AND source = 'event';
INSERT INTO retail_mid.rfm_config (brand, map_name, k, method) VALUES ('br_b', 'eight_class', 2, 'average');
INSERT INTO retail_mid.tag_taxonomy (level1, level2, description) VALUES ('其他', '备份', 'backup test');
-- a metric granularity with a brand dimension, generated by the refresh
INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity) VALUES
 ('amount', 'retail_mid.dwd_trade_order_line_di', 'dt', 'sum(t.amount)', 'CNY', 'additive'),
 ('buyers', 'retail_mid.dwd_trade_order_line_di', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'non_additive'),
 ('orders', 'retail_mid.dwd_trade_order_line_di', 'dt', 'count(DISTINCT t.order_id)', 'orders', 'non_additive');
INSERT INTO retail_mid.metric_qualifier VALUES ('sale', 't.line_type = ''sale''', 'Sales lines.');
INSERT INTO retail_mid.metric_granularity VALUES ('bk_store', '{brand,store_id}', 'Store.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES
 ('amount', 'sale', '7d', 'bk_store'), ('buyers', 'sale', '7d', 'bk_store'), ('orders', 'sale', '7d', 'bk_store');
INSERT INTO retail_mid.metric_composite VALUES ('sale_aov_7d', 'bk_store', '{sale_amount_7d} / nullif({sale_orders_7d}, 0)', 'CNY/order');
SELECT retail_mid.refresh_all();
SELECT retail_mid.metric_generate('bk_store', '2024-01-01', '2024-02-29');
SELECT retail_mid.rfm_refresh('br_a', '2024-02-29', 60);
SELECT retail_mid.rfm_refresh('br_b', '2024-02-29', 60);
SELECT retail_mid.aipl_refresh('br_a', '2024-02-20', '2024-02-29');
SELECT retail_mid.clv_score_refresh('2024-02-29');
SELECT retail_mid.evaluate_tags();
-- the analyst's brand, a shared group tag (brand rows of its bitmaps), a masking rule of the user's
INSERT INTO retail_mid.brand_entitlement VALUES ('br_alice', 'br_a');
UPDATE retail_mid.tag_definition SET shared_with_brands = true
 WHERE tag_name = (SELECT min(tag_name) FROM retail_mid.tag_definition WHERE scope = 'group');
INSERT INTO retail_mid.pii_mask_rule VALUES ('retail_mid.dwd_trade_order_line_di', 'customer_key', 'hash');
SELECT retail_mid.save_audience('backup_champions', 'monetary_td >= 100', 'br_a');
SELECT retail_mid.save_audience('backup_all', 'rfm_segment = ''champions''');
-- quality: default rules, one rule changed twice (versions 1..3 in the history), two evaluations
SELECT retail_mid.quality_add_default_rules('retail_mid.dwd_trade_order_line_di');
UPDATE retail_mid.quality_rule SET weight = 2, by_brand = true WHERE rule_id = (SELECT min(rule_id) FROM retail_mid.quality_rule);
UPDATE retail_mid.quality_rule SET weight = 3 WHERE rule_id = (SELECT min(rule_id) FROM retail_mid.quality_rule);
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di', '2024-03-01 00:00+00');
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di', '2024-03-02 00:00+00');
SQL

my $fp_orig = psql($fingerprints_sql, $orig);
my %rows = map { my @f = split / /; ($f[0] => $f[1]) } split /\n/, $fp_orig;
my @empty = grep { !$rows{$_} } sort keys %rows;
ok($rows{'retail_mid.dws_trade_customer_td'} && $rows{'retail_mid.quality_rule_version'} && $rows{'retail_mid.dws_metric_bk_store'}
   && $rows{'retail_mid.audience_package'} && $rows{'retail_mid.tag_bitmap'}, 'the original holds data in every layer')
    or diag($fp_orig);
note("tables left empty by the pipeline: @empty");

# every table of the extension is registered with pg_extension_config_dump, and every sequence
is(psql("SELECT string_agg(c.oid::regclass::text, ' ' ORDER BY 1) FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass"
      . " AND d.objid = c.oid AND d.deptype = 'e' WHERE c.relkind IN ('r', 'p', 'S') AND c.relnamespace = 'retail_mid'::regnamespace"
      . " AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'retail_mid')::oid[])", $orig),
   '', 'every table and sequence of the extension is kept by pg_dump (pg_extension_config_dump)');

my $seq_orig = psql($sequences_sql, $orig);
my $sec_orig = psql($security_sql, $orig);
my $ana_orig = psql($analyst_sql, $orig);
like($ana_orig, qr/^br_a \| \d+ \| br_a \| \d+ \| br_a \| \d+ \| \d+ \| br_a \| br_a \| \d+$/, "the analyst sees only br_a on the original ($ana_orig)");

# dump and restore
my $dump = "$dir/orig.dump";
my $out = `$bindir/pg_dump -Fc -d $orig -f $dump 2>&1`;
is($?, 0, 'pg_dump -Fc runs') or diag($out);
my $toc = `$bindir/pg_restore -l $dump 2>&1`;
my $data_entries = () = $toc =~ /TABLE DATA retail_mid /g;
ok($data_entries >= 70, "the dump holds the rows of the extension's tables ($data_entries TABLE DATA entries)");
ok($toc =~ /SEQUENCE SET retail_mid customer_key_customer_key_seq/ && $toc =~ /SEQUENCE SET retail_mid quality_rule_rule_id_seq/,
   'the dump holds where the identity sequences stand');
psql("CREATE DATABASE $copy", 'postgres');
$out = `$bindir/pg_restore -d $copy $dump 2>&1`;
is($?, 0, 'pg_restore into a new database runs without an error') or diag($out);
is($out, '', 'pg_restore prints nothing (no error, no warning)');

my $fp_copy = psql($fingerprints_sql, $copy);
my %copy = map { my @f = split / /; ($f[0] => $_) } split /\n/, $fp_copy;
my @differ = grep { my $rel = (split / /)[0]; !defined $copy{$rel} || $copy{$rel} ne $_ } split /\n/, $fp_orig;
is(join("\n", @differ), '', "every table's rows are restored exactly (fingerprints of " . scalar(keys %rows) . ' tables)')
    or diag("restored:\n" . join("\n", map { $copy{(split / /)[0]} // '(missing)' } @differ));
is(scalar(keys %copy), scalar(keys %rows), 'the copy has no table the original has not');

# a plain-format dump run through psql loads the rows the same way (COPY ... FROM stdin)
my $plain = 'retail_mid_backup_plain';
psql("DROP DATABASE IF EXISTS $plain; CREATE DATABASE $plain", 'postgres');
$out = `$bindir/pg_dump -Fp -d $orig -f $dir/orig.sql 2>&1 && psql -X -q -v ON_ERROR_STOP=1 -d $plain -f $dir/orig.sql 2>&1`;
is($?, 0, 'a plain-format dump restores through psql without an error') or diag($out);
is(psql($fingerprints_sql, $plain), $fp_copy, 'with the same rows in every table');
psql("DROP DATABASE $plain", 'postgres');
is(psql($sequences_sql, $copy), $seq_orig, 'every sequence stands where it stood');
my $sec_copy = psql($security_sql, $copy);
is($sec_copy, $sec_orig, 'policies, row-level security, owners, grants and masked views are the same')
    or do { write_file("$dir/a", $sec_orig); write_file("$dir/b", $sec_copy); diag(`diff $dir/a $dir/b`) };
is(psql($analyst_sql, $copy), $ana_orig, 'the analyst sees the same rows of br_a only on the copy');

# the restored copy works: new ids after the restored ones, a refresh gives the same result as on the original
my $after_keys = "SET client_min_messages = warning;"
   . " SELECT (SELECT max(customer_key) FROM retail_mid.customer_key) || ' ' || (SELECT max(job_id) FROM retail_mid.job_log)"
   . " || ' ' || (SELECT max(rule_id) FROM retail_mid.quality_rule) || ' ' || (SELECT max(result_id) FROM retail_mid.quality_result);";
my ($max_ck, $max_job, $max_rule, $max_result) = split / /, psql($after_keys, $copy);
my $new = psql(<<'SQL', $copy);
SET client_min_messages = warning;
INSERT INTO retail_mid.customer_key (id_type, id_value) VALUES ('member_id', 'after-restore') RETURNING customer_key;
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di', '2024-03-03 00:00+00');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template) VALUES
 ('after_restore', 'retail_mid.dwd_trade_order_line_di', 'sku_id', 'not_null') RETURNING rule_id;
SELECT (SELECT min(result_id) FROM retail_mid.quality_result WHERE as_of = '2024-03-03 00:00+00') || ' '
    || (SELECT version FROM retail_mid.quality_rule WHERE rule_name = 'after_restore') || ' '
    || (SELECT count(*) FROM retail_mid.quality_rule_version v JOIN retail_mid.quality_rule r USING (rule_id) WHERE r.rule_name = 'after_restore');
SQL
my ($ck, $job, $rule, $tail) = split /\n/, $new;
my ($result, $version, $versions) = split / /, $tail;
ok($ck > $max_ck && $job > $max_job && $rule > $max_rule && $result > $max_result,
   "new ids continue after the restored ones (customer_key $ck > $max_ck, job $job > $max_job, rule $rule > $max_rule, result $result > $max_result)");
is("$version $versions", '1 1', 'a new quality rule starts at version 1 with its history row (triggers work again after the restore)');

my $refresh = "SET client_min_messages = warning; SELECT retail_mid.refresh('2024-02-20', '2024-02-29'); SELECT retail_mid.evaluate_tags();";
psql($refresh, $orig);
psql("SET client_min_messages = warning; DELETE FROM retail_mid.customer_key WHERE id_value = 'after-restore';"
   . " DELETE FROM retail_mid.quality_rule WHERE rule_name = 'after_restore'; $refresh", $copy);
# job_log and the tables stamped with the time of the run differ by nature; the quality tables got the copy's extra run
my $skip = qr/^retail_mid\.(job_log|dws_refresh_state|domain_refresh_state|customer_universe|quality_result|quality_rule|quality_rule_version|tag_definition|tag_value) /;
my %r_copy = map { my @f = split / /; ($f[0] => $_) } grep { !/$skip/ } split /\n/, psql($fingerprints_sql, $copy);
my @r_differ = grep { !/$skip/ && ($r_copy{(split / /)[0]} // '') ne $_ } split /\n/, psql($fingerprints_sql, $orig);
is(join("\n", @r_differ), '', 'a refresh and a tag evaluation on the copy give the same rows as on the original (DWD, DWS, metrics, bitmaps)');
my $tv = "SELECT md5(string_agg(format('%s %s %s %s %s', tag_name, brand, customer_key, value, valid_to IS NULL), E'\\n' ORDER BY 1))"
       . " FROM retail_mid.tag_value UNION ALL SELECT md5(max_key || ' ' || bitmap::text) FROM retail_mid.customer_universe";
is(psql($tv, $copy), psql($tv, $orig), 'and the same tag values and customer universe');

# the extension on the copy can be updated (already at the current version: nothing to do, no error)
my ($rc, $upd) = psql("ALTER EXTENSION retail_mid UPDATE", $copy, may_fail => 1);
is($rc, 0, 'ALTER EXTENSION retail_mid UPDATE runs on the restored copy') or diag($upd);
is(psql("SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'", $copy),
   psql("SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'", $orig), 'the copy is at the version of the original');

# without the rights: a dump by a role that may not read the tables, a restore by a non-superuser
$out = `$bindir/pg_dump -Fc -U br_nobody -d $orig -f $dir/nobody.dump 2>&1`;
ok($? != 0 && $out =~ /permission denied/, 'pg_dump by a role without rights fails: permission denied') or diag($out);
psql("DROP DATABASE IF EXISTS retail_mid_backup_nobody; CREATE DATABASE retail_mid_backup_nobody OWNER br_nobody", 'postgres');
$out = `$bindir/pg_restore -U br_nobody -d retail_mid_backup_nobody --single-transaction $dump 2>&1`;
ok($? != 0 && $out =~ /ERROR:  (permission denied|must be (superuser|member of role))/,
   'pg_restore by a non-superuser stops at its first privileged statement (permission denied)') or diag($out);
is(psql("SELECT count(*) FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'retail_mid')",
        'retail_mid_backup_nobody'), '0', 'and leaves no half-restored extension behind');

psql("DROP DATABASE retail_mid_backup_nobody; DROP DATABASE $copy; DROP DATABASE $orig", 'postgres');
done_testing();

sub write_file { my ($p, $s) = @_; open my $f, '>', $p or die; print $f $s; close $f; }
