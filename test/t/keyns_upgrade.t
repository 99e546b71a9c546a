#!/usr/bin/perl
# keyns_upgrade: issue 19, finding 4. In 1.0.0 the key dictionary was keyed by (type, value) across brands, so
# customer "12346" of Online Retail and customer "12346" of CDNOW got one key. 1.0.0 is installed, both public data
# sets are loaded and run through DWD/DWS, RFM, tags, an audience and OneID; the colliding pairs share keys. After
# ALTER EXTENSION retail_mid UPDATE no brand-issued key is shared by two brands, every row of every table holding keys
# is still there with the same content per brand (keys read as the identifier they stand for), and the per-brand
# figures equal those of a fresh install of the current version loaded the same way.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $data = $ENV{RETAIL_MID_DATA} // '';
my $dir = tempdir(CLEANUP => 1);
my $have = $data ne '' && -f "$data/online_retail.csv.gz" && -f "$data/cdnow_elog.csv";
my $n_tests = 11;
SKIP: {
    skip("SKIPPED: RETAIL_MID_DATA with online_retail.csv.gz and cdnow_elog.csv is not set", $n_tests) unless $have;

sub psql {
    my ($sql, $db) = @_;
    open my $f, '>', "$dir/q.sql" or die; print $f $sql; close $f;
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db -f $dir/q.sql 2>&1`;
    die "psql failed on $db: $out" if $?;
    chomp $out; return $out;
}

my $load = <<"SQL";
SET client_min_messages = warning;
SELECT rows_loaded FROM retail_mid.load_online_retail('$data/online_retail.csv.gz', 'online_retail');
SELECT rows_loaded FROM retail_mid.load_cdnow('$data/cdnow_elog.csv', 'cdnow');
SELECT retail_mid.refresh_all();
SELECT retail_mid.rfm_refresh('online_retail', '2011-12-09', 365);
SELECT retail_mid.rfm_refresh('cdnow', '1998-06-30', 365);
SELECT retail_mid.evaluate_tags();
SELECT retail_mid.save_audience('keyns_champions', 'rfm_segment = ''champions''', 'online_retail');
SELECT retail_mid.save_audience('keyns_champions_all', 'rfm_segment = ''champions''');
SELECT retail_mid.resolve_identities();
SQL

# keys of brand-issued identifier types used by more than one brand (ODS identifiers and every table with a brand and
# a customer key)
my $shared_sql = <<'SQL';
CREATE TEMP TABLE use (customer_key int4, brand text);
DO $d$
DECLARE r record;
BEGIN
  INSERT INTO use SELECT DISTINCT k.customer_key, c.brand FROM retail_mid.ods_customer c
    JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = c.customer_id
     AND (NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = 'retail_mid.customer_key'::regclass AND a.attname = 'issuer')
          OR (to_jsonb(k) ->> 'issuer') = c.brand);
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
            WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand')
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_key') LOOP
    EXECUTE format('INSERT INTO use SELECT DISTINCT customer_key, brand FROM %s WHERE brand <> ''*''', r.rel);
  END LOOP;
END $d$;
SELECT count(*) FROM (SELECT u.customer_key FROM use u JOIN retail_mid.customer_key k USING (customer_key)
                       WHERE k.id_type NOT IN ('phone', 'email', 'device_id')
                       GROUP BY 1 HAVING count(DISTINCT u.brand) > 1) x;
SQL

# per table and brand: rows and an md5 of the rows with each customer key read as the identifier it stands for
# (type:value), over the columns COLUMNS (those of 1.0.0); group-wide ('*') rows as a set (the upgrade copies them to
# the split keys). Bitmaps are read as the sorted identifiers they hold.
my $fp_sql = <<'SQL';
CREATE TEMP TABLE fp (rel text, brand text, rows bigint, md5 text);
DO $d$
DECLARE r record; cols jsonb := $c$COLUMNS$c$; x text; b text;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
            WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND c.relname NOT IN ('customer_key', 'job_log', 'customer_universe', 'oneid_person_map', 'oneid_merge_log',
                                    'tag_bitmap', 'tag_bsi')
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand')
              AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_key')
                   OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.atttypid = 'retail_mid.rbitmap'::regtype))
            ORDER BY 1::text LOOP
    SELECT string_agg(CASE WHEN e = 'customer_key' THEN '(SELECT k.id_type || '':'' || k.id_value FROM retail_mid.customer_key k WHERE k.customer_key = t.customer_key)'
                           WHEN (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = r.rel AND a.attname = e) = 'retail_mid.rbitmap'::regtype
                           THEN format('(SELECT string_agg(k.id_type || '':'' || k.id_value, '','' ORDER BY k.id_type || '':'' || k.id_value) FROM retail_mid.rb_iterate(t.%I) i JOIN retail_mid.customer_key k ON k.customer_key = i)', e)
                           WHEN e IN ('customers') THEN NULL
                           ELSE 't.' || quote_ident(e) END, ', ')
      INTO x FROM jsonb_array_elements_text(cols -> r.rel::text) e;
    EXECUTE format('INSERT INTO fp SELECT %1$L, t.brand, count(DISTINCT ROW(%2$s)::text), md5(coalesce(string_agg(DISTINCT ROW(%2$s)::text, E''\n''), '''')) '
                   'FROM %1$s t GROUP BY t.brand', r.rel, x);
  END LOOP;
END $d$;
SELECT string_agg(rel || ' ' || brand || ' ' || rows || ' ' || md5, E'\n' ORDER BY rel, brand) FROM fp;
SQL

my $columns_sql = <<'SQL';
SELECT coalesce(jsonb_object_agg(x.rel, x.cols), '{}') FROM (
  SELECT c.oid::regclass::text AS rel, jsonb_agg(a.attname ORDER BY a.attnum) AS cols
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition GROUP BY c.oid) x;
SQL

# the per-brand figures a fresh install must give as well
my $figures_sql = <<'SQL';
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('dictionary %s %s %s', id_type, CASE WHEN issuer = '' THEN '-' ELSE issuer END, count(*)) AS x FROM retail_mid.customer_key GROUP BY id_type, issuer
  UNION ALL
  SELECT format('dwd %s lines %s customers %s amount %s', brand, count(*), count(DISTINCT customer_key), sum(amount))
    FROM retail_mid.dwd_trade_order_line_di GROUP BY brand
  UNION ALL
  SELECT format('customer_td %s customers %s orders %s amount %s', brand, count(*), sum(orders), sum(net_amount))
    FROM retail_mid.dws_trade_customer_td GROUP BY brand
  UNION ALL
  SELECT format('rfm %s customers %s monetary %s frequency %s', brand, count(*), round(sum(monetary)::numeric, 2), sum(frequency))
    FROM retail_mid.rfm_snapshot GROUP BY brand
  UNION ALL
  SELECT format('tag %s %s %s %s', tag_name, brand, value, count(*)) FROM retail_mid.tag_value
   WHERE valid_to IS NULL AND brand <> '*' GROUP BY tag_name, brand, value
  UNION ALL
  SELECT format('tag_bitmap %s %s %s %s', tag_name, brand, tag_value, customers) FROM retail_mid.tag_bitmap WHERE brand <> '*'
  UNION ALL
  SELECT format('tag_bsi %s %s %s', tag_name, brand, customers) FROM retail_mid.tag_bsi WHERE brand <> '*'
  UNION ALL
  SELECT format('customer_brand %s %s', brand, count(*)) FROM retail_mid.customer_brand GROUP BY brand
  UNION ALL
  SELECT format('audience %s %s %s', name, brand, customers) FROM retail_mid.audience_package
  UNION ALL
  SELECT format('oneid identifiers %s persons %s', count(*), count(DISTINCT person_key)) FROM retail_mid.oneid_person_map) y;
SQL

my $old = 'retail_mid_keyns_old';
my $fresh = 'retail_mid_keyns_fresh';
psql("DROP DATABASE IF EXISTS $old; CREATE DATABASE $old", 'postgres');
psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid VERSION '1.0.0' CASCADE", $old);
psql($load, $old);

my $pairs = psql(<<'SQL', $old);
SELECT count(*) FROM (SELECT customer_id FROM retail_mid.ods_customer WHERE brand IN ('online_retail', 'cdnow')
                       GROUP BY customer_id HAVING count(DISTINCT brand) = 2) x;
SQL
is(psql(<<'SQL', $old), 446, 'the two data sets have 446 customer ids in common among their buyers (order lines in both brands)');
SELECT count(*) FROM (SELECT customer_key FROM retail_mid.dwd_trade_order_line_di WHERE brand IN ('online_retail', 'cdnow') AND customer_key IS NOT NULL
                       GROUP BY 1 HAVING count(DISTINCT brand) = 2) x;
SQL
is(psql($shared_sql, $old), $pairs, "in 1.0.0 the $pairs customer ids the two brands' ODS have in common are $pairs shared keys");
my $shared_keys = psql(<<'SQL', $old);
SELECT md5(string_agg(customer_key::text, ',' ORDER BY customer_key)) FROM (
  SELECT DISTINCT k.customer_key FROM retail_mid.customer_key k JOIN retail_mid.ods_customer c ON c.id_type = k.id_type AND c.customer_id = k.id_value
   GROUP BY 1 HAVING count(DISTINCT c.brand) > 1) x;
SQL
my $cols = psql($columns_sql, $old);
my $before = psql($fp_sql =~ s/COLUMNS/$cols/r, $old);
ok(($before =~ tr/\n//) >= 10, 'per-brand fingerprints of the key-holding tables before the update') or diag($before);

psql("SET client_min_messages = warning; ALTER EXTENSION retail_mid UPDATE", $old);
is(psql("SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'", $old), '1.1.0', 'updated to 1.1.0');
is(psql($shared_sql, $old), 0, 'after the update no key of a brand-issued identifier is used by two brands');
is(psql(<<'SQL', $old), "$pairs|$pairs|$shared_keys", 'each pair is two keys now: the first brand loaded (Online Retail) kept its key, CDNOW got a new one');
SELECT count(*) FILTER (WHERE k1.customer_key <> k2.customer_key), count(*) FILTER (WHERE k2.customer_key > k1.customer_key),
       md5(string_agg(k1.customer_key::text, ',' ORDER BY k1.customer_key))
  FROM retail_mid.customer_key k1 JOIN retail_mid.customer_key k2 ON k2.id_type = k1.id_type AND k2.id_value = k1.id_value
 WHERE k1.issuer = 'online_retail' AND k2.issuer = 'cdnow';
SQL
my $after = psql($fp_sql =~ s/COLUMNS/$cols/r, $old);
my @diff = grep { my $l = $_; !grep { $_ eq $l } split /\n/, $after } split /\n/, $before;
is(join("\n", @diff), '', 'every row of every key-holding table survives per brand, keys read as their identifiers (order lines, DWS, RFM, tag values, audiences, customer brands)')
    or diag("after:\n$after");
is(psql(<<'SQL', $old), 't|t', 'the group-wide audience and tag bitmaps hold the new keys too; the customer universe has every key');
SELECT (SELECT retail_mid.rb_cardinality(snapshot) = customers FROM retail_mid.audience_package WHERE name = 'keyns_champions_all'),
       (SELECT retail_mid.rb_cardinality(bitmap) FROM retail_mid.customer_universe) = (SELECT count(*) FROM retail_mid.customer_key);
SQL
is(psql("SELECT count(*) FROM retail_mid.oneid_person_map m WHERE NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k WHERE k.customer_key = m.customer_key)"
        . " OR m.customer_key IN (SELECT customer_key FROM retail_mid.customer_key k WHERE NOT EXISTS (SELECT 1 FROM retail_mid.oneid_person_map p WHERE p.customer_key = k.customer_key))", $old)
   . '|' . psql("SELECT count(*) FROM retail_mid.customer_key k WHERE NOT EXISTS (SELECT 1 FROM retail_mid.oneid_person_map p WHERE p.customer_key = k.customer_key)", $old),
   '0|0', 'OneID maps every key, the split ones included');

psql("DROP DATABASE IF EXISTS $fresh; CREATE DATABASE $fresh", 'postgres');
psql("SET client_min_messages = warning; CREATE EXTENSION retail_mid CASCADE", $fresh);
psql($load, $fresh);
my $fig_up = psql($figures_sql, $old);
my $fig_fresh = psql($figures_sql, $fresh);
is($fig_up, $fig_fresh, 'per-brand figures after the update equal a fresh install loaded the same way (dictionary by type and issuer, DWD, DWS, RFM, tags, audiences, OneID)');
my ($n_fig) = scalar(split /\n/, $fig_fresh);
ok($n_fig > 30 && $fig_fresh =~ /dictionary customer_id cdnow 2357/, "the comparison covers $n_fig figures") or diag($fig_fresh);
psql("DROP DATABASE $old; DROP DATABASE $fresh", 'postgres');
}
done_testing($n_tests);
