#!/usr/bin/perl
# fulfilment: concurrent routers never promise the same unit twice and never deadlock.
# Three psql sessions route 80 orders each at the same time against 100 units of X (and plenty of Y, asked for
# in opposite SKU orders to provoke lock-order deadlocks). Exactly 100 orders must get their X, whatever the
# interleaving; reservations must add up to the stock's reserved column and never exceed on hand.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $db = 'retail_mid_ful_conc';
my $dir = tempdir(CLEANUP => 1);
sub psql { my ($sql, $dbname) = @_; my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d $dbname -c "$sql" 2>&1`; die "psql failed: $out" if $?; chomp $out; return $out; }

psql("DROP DATABASE IF EXISTS $db", 'postgres');
psql("CREATE DATABASE $db", 'postgres');
psql("CREATE EXTENSION retail_mid CASCADE", $db);
open my $f, '>', "$dir/setup.sql" or die;
print $f <<'SQL';
INSERT INTO retail_mid.fulfilment_location (location_id, kind, geom) VALUES
    (1, 'RDC', 'SRID=4326;POINT(121.0 31.0)'), (2, 'FDC', 'SRID=4326;POINT(121.4 31.2)'), (3, 'store', 'SRID=4326;POINT(121.47 31.24)');
INSERT INTO retail_mid.fulfilment_stock (location_id, sku_id, on_hand) VALUES
    (1, 'X', 40), (2, 'X', 30), (3, 'X', 30), (1, 'Y', 1000), (2, 'Y', 1000), (3, 'Y', 1000);
SQL
close $f;
system("psql -X -q -v ON_ERROR_STOP=1 -d $db -f $dir/setup.sql") == 0 or die "setup failed";

my @pids;
for my $s (1 .. 3) {
    open my $w, '>', "$dir/s$s.sql" or die;
    for my $i (1 .. 80) {
        my ($skus, $qty) = ($i + $s) % 2 ? ('{X,Y}', '{1,2}') : ('{Y,X}', '{2,1}');
        my $lon = 121.40 + 0.001 * (($i * 7 + $s) % 70);
        print $w "SELECT count(*) FROM retail_mid.fulfilment_route('s$s-$i', ST_SetSRID(ST_MakePoint($lon, 31.2), 4326), '$skus', '$qty');\n";
    }
    close $w;
    my $pid = fork();
    die "fork failed" unless defined $pid;
    if ($pid == 0) {
        exec("psql -X -q -d $db -f $dir/s$s.sql >$dir/s$s.out 2>$dir/s$s.err") or exit 1;
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;

my $errors = '';
for my $s (1 .. 3) { open my $e, '<', "$dir/s$s.err" or die; local $/; $errors .= <$e>; }
my @err_lines = grep { /ERROR:/ } split /\n/, $errors;
unlike($errors, qr/deadlock detected/, 'no deadlock between concurrent routers');
is(scalar(grep { !/not enough stock to ship order|no location can ship any line/ } @err_lines), 0,
   'the only errors are out-of-stock refusals');
is(psql("SELECT count(DISTINCT order_id) FROM retail_mid.fulfilment_reservation WHERE sku_id = 'X'", $db), '100',
   'exactly 100 orders got a unit of X (100 on hand)');
is(scalar(@err_lines), 140, '140 orders were refused');
is(psql("SELECT sum(reserved) FROM retail_mid.fulfilment_stock WHERE sku_id = 'X'", $db), '100', 'all 100 X reserved, none twice');
is(psql("SELECT count(*) FROM retail_mid.fulfilment_stock s LEFT JOIN (SELECT location_id, sku_id, sum(quantity) q FROM retail_mid.fulfilment_reservation GROUP BY 1, 2) r USING (location_id, sku_id) WHERE s.reserved <> coalesce(r.q, 0) OR s.reserved > s.on_hand", $db),
   '0', 'reservations add up to reserved, which never exceeds on hand');
is(psql("SELECT count(*) FROM (SELECT order_id FROM retail_mid.fulfilment_reservation GROUP BY order_id HAVING sum(quantity) FILTER (WHERE sku_id = 'X') <> 1 OR sum(quantity) FILTER (WHERE sku_id = 'Y') <> 2) o", $db),
   '0', 'every routed order got exactly its lines');
psql("DROP DATABASE $db", 'postgres');
done_testing();
