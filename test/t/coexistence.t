#!/usr/bin/perl
# Coexistence in one backend (docs/coexistence.md): retail_mid.so exports only what PostgreSQL calls, and its
# bitmaps stay right when a library exporting pg_roaringbitmap's rb_* names and another CRoaring's roaring_* names
# (test/coexist/decoy.c) is loaded before or after it; with pg_roaringbitmap installed, both extensions at once.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);

my $root = abs_path("$0/../../..");
my $so = $ENV{RETAIL_MID_SO} // "$root/retail_mid.so";   # the built library (RETAIL_MID_SO: another build to check)
my $db = 'retail_mid_coexist';
sub psql {   # each -c of one call runs in the same session; returns the output of all of them
    my ($dbname, @cmds) = @_;
    my $args = join(' ', map { my $c = $_; $c =~ s/'/'\\''/g; "-c '$c'" } @cmds);
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $dbname $args 2>&1`;
    chomp $out; return ($out, $?);
}
sub q1 { my ($dbname, @cmds) = @_; my ($out, $rc) = psql($dbname, @cmds); die "psql failed: $out" if $rc; return $out; }

# 1. the dynamic symbol table: Pg_magic_func, _PG_init, pg_finfo_X and X; no CRoaring name is bound globally
my @defined = map { (split ' ')[-1] } grep { /\S/ } split /\n/, `nm -D --defined-only $so`;
my %has = map { $_ => 1 } @defined;
my @stray = grep { !/^(Pg_magic_func|_PG_init)$/ && !(/^pg_finfo_(.+)$/ ? $has{$1} : $has{"pg_finfo_$_"}) } @defined;
ok(@defined > 100 && $has{Pg_magic_func}, scalar(@defined) . ' exported symbols, Pg_magic_func among them');
is(join(' ', @stray), '', 'every exported symbol is Pg_magic_func, _PG_init, pg_finfo_X or an X with pg_finfo_X');
my @roaring_refs = map { (split ' ')[-1] } grep { /roaring_/ } split /\n/, `nm -D --undefined-only $so`;
is(join(' ', @roaring_refs), '', 'no roaring_* name is left to the dynamic linker (every call goes through our handle)');
is(join(' ', grep { /NEEDED\s+libroaring/ } split /\n/, `objdump -p $so`), '', 'libroaring is not a link-time dependency (it would join the global scope)');

# 2. the decoy, built where the server (user postgres) can read it
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;
my $incdir = `pg_config --includedir-server`; chomp $incdir;
my $decoy = "$dir/decoy.so";
my $cc = `cc -shared -fPIC -I$incdir -o $decoy $root/test/coexist/decoy.c 2>&1`;
is($?, 0, 'decoy library builds') or diag($cc);
chmod 0755, $decoy;

q1('postgres', "DROP DATABASE IF EXISTS $db");
q1('postgres', "CREATE DATABASE $db");
q1($db, 'SET client_min_messages = warning', 'CREATE EXTENSION retail_mid CASCADE',
   'CREATE TABLE t AS SELECT g, k FROM generate_series(1, 2) g, LATERAL (SELECT (i * (g * 2 + 1)) % 70001 AS k FROM generate_series(1, 30000) i) s',
   "CREATE FUNCTION decoy_probe() RETURNS bool AS '$decoy', 'decoy_probe' LANGUAGE C",
   "CREATE FUNCTION decoy_rb_cardinality(int8) RETURNS int8 AS '$decoy', 'rb_cardinality' LANGUAGE C");
my $expected = q1($db, "SELECT (SELECT count(DISTINCT k) FROM t WHERE g = 1) || ' ' || (SELECT count(DISTINCT k) FROM t)"
   . " || ' ' || (SELECT count(*) FROM (SELECT k FROM t WHERE g = 1 INTERSECT SELECT k FROM t WHERE g = 2) x)"
   . " || ' ' || (SELECT md5(array_agg(DISTINCT k ORDER BY k)::text) FROM t)");
my $bitmaps = "WITH a AS (SELECT retail_mid.rb_build_agg(k) b FROM t WHERE g = 1), b AS (SELECT retail_mid.rb_build_agg(k) b FROM t WHERE g = 2)"
   . " SELECT retail_mid.rb_cardinality(a.b) || ' ' || retail_mid.rb_cardinality(a.b OPERATOR(retail_mid.|) b.b)"
   . " || ' ' || retail_mid.rb_cardinality(a.b OPERATOR(retail_mid.&) b.b) || ' ' || md5(retail_mid.rb_to_array(a.b OPERATOR(retail_mid.|) b.b)::text) FROM a, b";
my $aggs = "SELECT retail_mid.rb_or_cardinality_agg(b) || ' ' || retail_mid.rb_and_cardinality_agg(b) FROM"
   . " (SELECT retail_mid.rb_build_agg(k) b FROM t GROUP BY g) x";
my $expected_aggs = (split ' ', $expected)[1] . ' ' . (split ' ', $expected)[2];
note("plain SQL: $expected");

# 2a. decoy loaded first, then retail_mid in the same session
my ($out, $rc) = psql($db, "LOAD '$decoy'", $bitmaps, $aggs, 'SELECT decoy_rb_cardinality(0)');
is($out, "$expected\n$expected_aggs\n-1", 'decoy loaded first: retail_mid bitmaps (cardinality, |, &, to_array, aggregates) match plain SQL, the decoy answers its own rb_cardinality');

# 2b. retail_mid loaded first, then the decoy: the decoy's calls to its own CRoaring names must reach the decoy
($out, $rc) = psql($db, 'SELECT retail_mid.rb_cardinality(retail_mid.rb_build(ARRAY[1, 2, 3]))', "LOAD '$decoy'", 'SELECT decoy_probe()', $bitmaps);
is($out, "3\nt\n$expected", 'retail_mid loaded first: the decoy still reaches its own CRoaring, retail_mid bitmaps still match');

# 2c. a fresh database: the decoy loaded in the session that runs CREATE EXTENSION, before it
q1('postgres', "DROP DATABASE IF EXISTS ${db}_2");
q1('postgres', "CREATE DATABASE ${db}_2");
($out, $rc) = psql("${db}_2", "LOAD '$decoy'", 'SET client_min_messages = warning', 'CREATE EXTENSION retail_mid CASCADE',
   'SELECT retail_mid.rb_cardinality(retail_mid.rb_build_agg(i)) FROM generate_series(1, 5000) i');
is($out, '5000', 'decoy loaded before CREATE EXTENSION in a fresh database: the extension installs and counts right');
q1('postgres', "DROP DATABASE ${db}_2");

# 3. the real pg_roaringbitmap, when installed: both extensions in one database and one session, in both orders
SKIP: {
    if (q1('postgres', "SELECT count(*) FROM pg_available_extensions WHERE name = 'roaringbitmap'") eq '0') {
        diag('SKIPPED: pg_roaringbitmap is not installed (not packaged for Debian 12); the decoy stands in for it');
        skip('pg_roaringbitmap is not installed', 2);
    }
    q1($db, 'CREATE EXTENSION roaringbitmap');
    my $theirs = 'SELECT public.rb_cardinality(public.rb_build_agg(k)) || \' \' || public.rb_cardinality(public.rb_or_agg(b)) || \' \' || public.rb_cardinality(public.rb_and_agg(b))'
       . ' FROM (SELECT g, k, public.rb_build(ARRAY[k]) b FROM t) x WHERE g = 1';
    my $theirs_expected = q1($db, "SELECT count(DISTINCT k) || ' ' || count(DISTINCT k) || ' ' || CASE WHEN count(DISTINCT k) = 1 THEN 1 ELSE 0 END FROM t WHERE g = 1");
    ($out, $rc) = psql($db, $theirs, $bitmaps);
    is($out, "$theirs_expected\n$expected", 'pg_roaringbitmap loaded first, then retail_mid: both right');
    ($out, $rc) = psql($db, $bitmaps, $theirs);
    is($out, "$expected\n$theirs_expected", 'retail_mid loaded first, then pg_roaringbitmap: both right');
}

q1('postgres', "DROP DATABASE $db");
done_testing();
