#!/usr/bin/perl
# The hostile run (issue 19), bounded: test/torture/torture.py over a fixed sample (seed 19, 4 calls per routine, the
# type input and mutated serialised states), as a non-superuser admin and as a superuser. No call may crash the
# server, raise XX000 or run past the time limit. The full run is `make torture` (docs/torture.md).
use strict;
use warnings;
use Test::More;

my $py = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
if (system("$py -c 'import psycopg2' >/dev/null 2>&1") != 0) {
    plan skip_all => 'python3-psycopg2 is not installed (test/deps.sh installs it)';
}
my $out = `$py test/torture/torture.py --seed 19 --per-routine 4 --mutations 20 --timeout-ms 10000 --db retail_mid_torture_t 2>&1`;
my $rc = $? >> 8;
diag($out);
my %total = $out =~ /^total (\w+)=(\d+)$/mg;
my ($calls) = $out =~ /^admin: calls=(\d+)/m;
ok(defined $calls && $calls > 500, 'the sample made calls (' . ($calls // 0) . ' per role)');
is($total{crash}, 0, 'no server crash');
is($total{XX000}, 0, 'no XX000');
is($total{timeout}, 0, 'no call past the time limit');
is($rc, 0, 'torture.py exits 0');
`psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS retail_mid_torture_t' 2>&1`;
done_testing();
