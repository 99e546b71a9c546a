#!/usr/bin/perl
# dashboard: looks at the HTML dashboard the way a person would. Builds a small synthetic database with every job a
# tile reads (test/dashboard/data.sql), writes the page (test/dashboard/build.sh: dash_* views -> JSON -> one HTML file
# with ECharts inlined), renders it in headless Chromium and checks: the page's scripts ran (a status element they
# fill), no script error and nothing failed to load, every chart drew data points (the page writes each chart's count
# into a data-points attribute), and the screenshot is not blank (many distinct colours in the PNG).
# Skipped when chromium (Debian package chromium) or npm is not installed.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $root = abs_path(dirname(__FILE__) . '/../..');
my ($chromium) = grep { -x $_ } ('/usr/bin/chromium', '/usr/bin/chromium-browser');
my $npm = `command -v npm 2>/dev/null`;
if (!$chromium || !$npm) {
    plan skip_all => 'SKIPPED: chromium or npm is not installed (test/deps.sh chromium nodejs npm)';
}
my $db = 'retail_mid_dashboard';
my $dir = tempdir(CLEANUP => 1);
sub run { my ($cmd) = @_; my $out = `$cmd 2>&1`; die "failed ($?): $cmd\n$out" if $?; return $out; }

run("psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $db'");
run("psql -X -q -d postgres -c 'CREATE DATABASE $db'");
run("psql -X -q -A -t -d $db -v small=1 -f $root/test/dashboard/data.sql");
my $html = "$dir/dashboard.html";
my $built = run("PGDATABASE=$db bash $root/test/dashboard/build.sh $html synthetic");
ok(-s $html > 100_000, 'the page is written with the chart library inlined') or diag($built);
open my $fh, '<', $html or die; my $page = do { local $/; <$fh> }; close $fh;
unlike($page, qr/<script[^>]+src=|<link[^>]+href=|https?:\/\/[a-z0-9.-]+\/[^"' ]*\.(js|css|png)/i, 'the page loads nothing from elsewhere');

my @chrome = ($chromium, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--window-size=1600,1400',
              '--virtual-time-budget=10000', "--user-data-dir=$dir/profile");
my $dom = run(join(' ', @chrome, '--dump-dom', "file://$html", '2>/dev/null'));
like($dom, qr/id="status" data-ready="1"/, 'the scripts of the page ran to the end');
my ($errors) = $dom =~ /id="errors"[^>]*data-errors="(\d+)"/;
my ($error_text) = $dom =~ /<div id="errors"[^>]*>(.*?)<\/div>/s;
is($errors, 0, 'no script error and nothing failed to load') or diag($error_text);
my %points = $dom =~ /id="chart_(\w+)"[^>]*data-points="(\d+)"/g;
my @tiles = qw(aipl_trend aipl_flow aipl_gmv rfm portrait campaigns stock replenishment forecast sites quality);
is(scalar(keys %points), scalar(@tiles), scalar(@tiles) . ' charts on the page');
for my $t (@tiles) {
    ok(($points{$t} // 0) > 0, "chart $t drew " . ($points{$t} // 0) . ' data points');
}
# every chart drew on its canvas: the canvases are not blank
run(join(' ', @chrome, "--screenshot=$dir/shot.png", "file://$html", '2>/dev/null'));
ok(-s "$dir/shot.png", 'screenshot taken');
my $colours = run("python3 $root/test/dashboard/png_colours.py $dir/shot.png");
chomp $colours;
ok($colours > 200, "the screenshot is not blank ($colours distinct colours)");
run("psql -X -q -d postgres -c 'DROP DATABASE $db'");
done_testing();
