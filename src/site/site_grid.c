/* site/site_grid.c: great-circle distance on PostGIS's sphere and the grid of cells that prunes zone-site pairs. */
/*
 * The latitude/longitude grid has cells at least a given radius wide, so that zone-site pairs can be pruned
 * with an equi-join on cell ids and measured exactly afterwards.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"

#include "site/site_internal.h"

void
HuffCheckLonLat(double lon, double lat)
{
	if (isnan(lon) || isinf(lon) || lon < -360.0 || lon > 360.0 ||
		isnan(lat) || isinf(lat) || lat < -90.0 || lat > 90.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("longitude and latitude must be finite degrees within range"),
				 errdetail("Got longitude %g, latitude %g.", lon, lat)));
}

/* great_circle_distance(lon1, lat1, lon2, lat2) -> metres */
PG_FUNCTION_INFO_V1(great_circle_distance);
Datum
great_circle_distance(PG_FUNCTION_ARGS)
{
	double		lon1 = PG_GETARG_FLOAT8(0),
				lat1 = PG_GETARG_FLOAT8(1),
				lon2 = PG_GETARG_FLOAT8(2),
				lat2 = PG_GETARG_FLOAT8(3);

	HuffCheckLonLat(lon1, lat1);
	HuffCheckLonLat(lon2, lat2);
	PG_RETURN_FLOAT8(GreatCircle(lon1, lat1, lon2, lat2));
}

void
SiteGridInit(SiteGrid *g, double radius)
{
	const double a = 6378137.0;
	const double b = a * (1.0 - 1.0 / 298.257223563);
	const double sphere = (2.0 * a + b) / 3.0;

	if (isnan(radius) || isinf(radius) || radius <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("radius must be a positive finite number"),
				 errdetail("radius is %g.", radius)));
	g->r = radius / sphere * (1.0 + 1e-9) + 1e-12;
	g->h = g->r * 180.0 / M_PI;
	g->nbands = g->h >= 180.0 ? 1 : (int) floor(180.0 / g->h);
	if (g->nbands < 1)
		g->nbands = 1;
	if (g->nbands > 1000000)
		g->nbands = 1000000;
	g->band_height = 180.0 / g->nbands;
}

static int
SiteGridBand(const SiteGrid *g, double lat)
{
	int			band = (int) floor((lat + 90.0) / g->band_height);

	return band < 0 ? 0 : (band >= g->nbands ? g->nbands - 1 : band);
}

static int64
SiteGridCellsInBand(const SiteGrid *g, int band)
{
	double		lo = -90.0 + band * g->band_height;
	double		hi = lo + g->band_height;
	double		m = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
	double		n = floor(360.0 * cos(m * M_PI / 180.0) / g->h);

	if (!(n >= 1.0))
		return 1;
	return n > 1e7 ? 10000000 : (int64) n;
}

static int64
SiteGridLonIndex(double lon, int64 ncells)
{
	int64		i = (int64) floor((lon + 180.0) * ncells / 360.0);

	i %= ncells;
	return i < 0 ? i + ncells : i;
}

/* The cell of a point in grid g. */
int64
SiteGridPointCell(const SiteGrid *g, double lon, double lat)
{
	int			band = SiteGridBand(g, lat);

	return ((int64) band << 32) | SiteGridLonIndex(lon, SiteGridCellsInBand(g, band));
}

/* site_grid_cell(lon, lat, radius) -> int8: the cell of a zone */
PG_FUNCTION_INFO_V1(site_grid_cell);
Datum
site_grid_cell(PG_FUNCTION_ARGS)
{
	double		lon = PG_GETARG_FLOAT8(0);
	double		lat = PG_GETARG_FLOAT8(1);
	SiteGrid	g;

	HuffCheckLonLat(lon, lat);
	SiteGridInit(&g, PG_GETARG_FLOAT8(2));
	PG_RETURN_INT64(SiteGridPointCell(&g, lon, lat));
}

/*
 * Every cell of grid g that the cap of g's radius around lon/lat touches, into *cells (palloc'd, grown as
 * needed; *cap is its size); returns the count.
 */
int
SiteGridCapCells(const SiteGrid *g, double lon, double lat, int64 **cells, int *cap)
{
	double		dlon;
	int			b0,
				b1;
	int			n = 0;

	if (fabs(lat) + g->h >= 90.0 || g->r >= M_PI / 2)
		dlon = 180.0;
	else
	{
		double		x = sin(g->r) / cos(lat * M_PI / 180.0);

		dlon = x >= 1.0 ? 180.0 : asin(x) * 180.0 / M_PI;
	}
	b0 = SiteGridBand(g, lat - g->h < -90.0 ? -90.0 : lat - g->h);
	b1 = SiteGridBand(g, lat + g->h > 90.0 ? 90.0 : lat + g->h);
	for (int band = b0; band <= b1; band++)
	{
		int64		ncells = SiteGridCellsInBand(g, band);
		int64		first,
					last;

		if (dlon >= 180.0)
		{
			first = 0;
			last = ncells - 1;
		}
		else
		{
			first = (int64) floor((lon - dlon + 180.0) * ncells / 360.0);
			last = (int64) floor((lon + dlon + 180.0) * ncells / 360.0);
			if (last - first >= ncells)
			{
				first = 0;
				last = ncells - 1;
			}
		}
		for (int64 i = first; i <= last; i++)
		{
			int64		idx = i % ncells;
			int64		cell;
			bool		dup = false;

			if (idx < 0)
				idx += ncells;
			cell = ((int64) band << 32) | idx;
			for (int k = 0; k < n && !dup; k++)
				dup = (*cells)[k] == cell;
			if (dup)
				continue;
			if (n == *cap)
			{
				if (*cap >= 1 << 24)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("radius too large for the grid")));
				*cap *= 2;
				*cells = repalloc(*cells, sizeof(int64) * *cap);
			}
			(*cells)[n++] = cell;
		}
	}
	return n;
}

/* site_grid_cells(lon, lat, radius) -> int8[]: every cell the cap of radius metres around lon/lat touches */
PG_FUNCTION_INFO_V1(site_grid_cells);
Datum
site_grid_cells(PG_FUNCTION_ARGS)
{
	double		lon = PG_GETARG_FLOAT8(0);
	double		lat = PG_GETARG_FLOAT8(1);
	SiteGrid	g;
	int			cap = 16;
	int64	   *cells = palloc(sizeof(int64) * cap);
	int			n;
	Datum	   *d;

	HuffCheckLonLat(lon, lat);
	SiteGridInit(&g, PG_GETARG_FLOAT8(2));
	n = SiteGridCapCells(&g, lon, lat, &cells, &cap);
	d = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(cells[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
