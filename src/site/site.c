/*
 * site.c: Huff gravity-model arithmetic for site selection: aggregates and array functions, the batch
 * scorer's pruning and measuring (huff_impact_batch, site_catchment_batch, site_trade_area_hulls) and the
 * calibration (huff_calibrate, huff_fit).
 *
 * Geometry stays in SQL and PostGIS (h3_postgis habit); these functions receive plain numbers: zone and site
 * ids, lon/lat (distances on PostGIS's sphere, same formula), attractiveness, distance (or any travel cost)
 * and demand, and do the probability arithmetic:
 *
 *   P(zone z -> store j) = A_j^alpha * max(d_zj, d_min)^-beta / sum over the stores k in reach of z
 *
 * d_min (min_distance) is the documented floor that keeps a zone centroid lying on a store finite.
 */
#include "retail_mid.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <nlopt.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#define HUFF_ALPHA_MAX 10.0
#define HUFF_BETA_MAX 10.0
#define HUFF_STATE_MAGIC 0x48554631	/* "HUF1" */
#define HUFF_STATE_VERSION 1

/* Roles of the sites fed to the impact aggregate. */
#define ROLE_COMPETITOR 0
#define ROLE_OWN 1
#define ROLE_CANDIDATE 2

typedef struct HuffRow
{
	int64		zone;
	int64		site;
	double		attractiveness;
	double		distance;
	double		demand;
	int32		role;
	int32		pad;
} HuffRow;

/* Parameters shared by every row of one aggregation; checked once, then compared. */
typedef struct HuffParams
{
	double		alpha;
	double		beta;
	double		min_distance;
	double		threshold;
	double		cutoff;			/* huff_impact_geo only: pairs farther apart are dropped; 0 elsewhere */
} HuffParams;

typedef struct HuffState
{
	bool		have_params;
	HuffParams	params;
	int64		n;
	int64		cap;
	HuffRow    *rows;
} HuffState;

/* Serialised header; the rows follow as raw HuffRow structs (workers of one server share the layout). */
typedef struct HuffStateHeader
{
	uint32		magic;
	int32		version;
	int32		have_params;
	int32		pad;
	HuffParams	params;
	int64		n;
} HuffStateHeader;

PG_FUNCTION_INFO_V1(huff_probabilities);
PG_FUNCTION_INFO_V1(huff_sales_transfn);
PG_FUNCTION_INFO_V1(huff_impact_transfn);
PG_FUNCTION_INFO_V1(huff_impact_geo_transfn);
PG_FUNCTION_INFO_V1(huff_impact_cell_transfn);
PG_FUNCTION_INFO_V1(great_circle_distance);
PG_FUNCTION_INFO_V1(site_grid_cell);
PG_FUNCTION_INFO_V1(site_grid_cells);
PG_FUNCTION_INFO_V1(huff_combinefn);
PG_FUNCTION_INFO_V1(huff_serialfn);
PG_FUNCTION_INFO_V1(huff_deserialfn);
PG_FUNCTION_INFO_V1(huff_sales_finalfn);
PG_FUNCTION_INFO_V1(huff_impact_finalfn);
PG_FUNCTION_INFO_V1(huff_calibrate);

/* Rows already grouped by zone (stores by id, then candidates by id) with dense site numbers in HuffRow.pad. */
typedef struct HuffPresorted
{
	HuffRow   **idx;
	const int64 *store_ids;		/* sorted, unique: pad of a store row indexes it */
	int64		nstores;
	int64		ncandidates;	/* pad of a candidate row is below this */
} HuffPresorted;

static Datum HuffImpactCompute(HuffState *state, const HuffPresorted *pre, TupleDesc desc, Oid elemtype);

/* Validates alpha, beta, the distance floor and the trade-area threshold, with one error per case. */
static void
HuffCheckParams(const HuffParams *p)
{
	if (isnan(p->alpha) || p->alpha < 0.0 || p->alpha > HUFF_ALPHA_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be between 0 and %g", HUFF_ALPHA_MAX),
				 errdetail("alpha is %g.", p->alpha)));
	if (isnan(p->beta) || p->beta < 0.0 || p->beta > HUFF_BETA_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("beta must be between 0 and %g", HUFF_BETA_MAX),
				 errdetail("beta is %g.", p->beta)));
	if (isnan(p->min_distance) || isinf(p->min_distance) || p->min_distance <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_distance must be a positive finite number"),
				 errdetail("min_distance is %g.", p->min_distance)));
	if (isnan(p->cutoff) || isinf(p->cutoff) || p->cutoff < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cutoff must be a positive finite number"),
				 errdetail("cutoff is %g.", p->cutoff)));
	if (isnan(p->threshold) || p->threshold < 0.0 || p->threshold > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold must be between 0 and 1"),
				 errdetail("threshold is %g.", p->threshold)));
}

/* Validates one site's numbers; the same messages serve the aggregates and the array functions. */
static void
HuffCheckRow(int64 site, double attractiveness, double distance, double demand)
{
	if (isnan(attractiveness) || isinf(attractiveness) || attractiveness <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attractiveness must be a positive finite number"),
				 errdetail("Site " INT64_FORMAT " has attractiveness %g.", site, attractiveness),
				 errhint("Give closed or unrated sites a small positive value, or leave them out.")));
	if (isnan(distance) || isinf(distance) || distance < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("distance must be a non-negative finite number"),
				 errdetail("Site " INT64_FORMAT " has distance %g.", site, distance)));
	if (isnan(demand) || isinf(demand) || demand < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("demand must be a non-negative finite number"),
				 errdetail("Demand is %g.", demand)));
}

/* The Huff utility A^alpha * max(d, d_min)^-beta, computed in logs so large exponents do not overflow early. */
static inline double
HuffUtility(double attractiveness, double distance, const HuffParams *p)
{
	double		d = distance < p->min_distance ? p->min_distance : distance;
	double		u = exp(p->alpha * log(attractiveness) - p->beta * log(d));

	if (!(u > 0.0) || isinf(u))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("Huff utility out of range"),
				 errdetail("attractiveness %g ^ alpha %g * distance %g ^ -beta %g is not a positive finite double.",
						   attractiveness, p->alpha, d, p->beta),
				 errhint("Rescale attractiveness or distances (e.g. to kilometres).")));
	return u;
}

static void
HuffRequireNotNull(FunctionCallInfo fcinfo, int first, int last)
{
	for (int i = first; i <= last; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("Huff model input must not be null"),
					 errdetail("Argument %d is null.", i)));
}

static HuffState *
HuffStateCreate(MemoryContext aggcontext)
{
	HuffState  *state = MemoryContextAllocZero(aggcontext, sizeof(HuffState));

	state->cap = 1024;
	state->rows = MemoryContextAlloc(aggcontext, sizeof(HuffRow) * state->cap);
	return state;
}

static void
HuffStateReserve(HuffState *state, int64 extra, MemoryContext aggcontext)
{
	if (state->n + extra <= state->cap)
		return;
	while (state->n + extra > state->cap)
		state->cap *= 2;
	if ((Size) state->cap * sizeof(HuffRow) > MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows for one Huff aggregation")));
	state->rows = repalloc_huge(state->rows, (Size) state->cap * sizeof(HuffRow));
	(void) aggcontext;
}

/* Parameters must be the same on every row; remember the first set, compare the rest. */
static void
HuffStateSetParams(HuffState *state, const HuffParams *p)
{
	if (!state->have_params)
	{
		HuffCheckParams(p);
		state->params = *p;
		state->have_params = true;
	}
	else if (state->params.alpha != p->alpha || state->params.beta != p->beta ||
			 state->params.min_distance != p->min_distance || state->params.threshold != p->threshold ||
			 state->params.cutoff != p->cutoff)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha, beta, min_distance, threshold and cutoff must be the same on every row")));
}

static HuffState *
HuffTransCommon(FunctionCallInfo fcinfo, MemoryContext *aggcontext)
{
	if (!AggCheckCallContext(fcinfo, aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Huff transition function called in non-aggregate context")));
	if (PG_ARGISNULL(0))
		return HuffStateCreate(*aggcontext);
	return (HuffState *) PG_GETARG_POINTER(0);
}

/*
 * huff_sales_transfn(state, zone_id, store_id, attractiveness, distance, demand, alpha, beta, min_distance)
 */
Datum
huff_sales_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *state = HuffTransCommon(fcinfo, &aggcontext);
	HuffParams	p;
	HuffRow    *r;

	HuffRequireNotNull(fcinfo, 1, 8);
	p.alpha = PG_GETARG_FLOAT8(6);
	p.beta = PG_GETARG_FLOAT8(7);
	p.min_distance = PG_GETARG_FLOAT8(8);
	p.threshold = 0.0;
	p.cutoff = 0.0;
	HuffStateSetParams(state, &p);
	HuffCheckRow(PG_GETARG_INT64(2), PG_GETARG_FLOAT8(3), PG_GETARG_FLOAT8(4), PG_GETARG_FLOAT8(5));
	HuffStateReserve(state, 1, aggcontext);
	r = &state->rows[state->n++];
	r->zone = PG_GETARG_INT64(1);
	r->site = PG_GETARG_INT64(2);
	r->attractiveness = PG_GETARG_FLOAT8(3);
	r->distance = PG_GETARG_FLOAT8(4);
	r->demand = PG_GETARG_FLOAT8(5);
	r->role = ROLE_COMPETITOR;
	r->pad = 0;
	PG_RETURN_POINTER(state);
}

static int32
HuffParseRole(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len == 3 && memcmp(s, "own", 3) == 0)
		return ROLE_OWN;
	if (len == 10 && memcmp(s, "competitor", 10) == 0)
		return ROLE_COMPETITOR;
	if (len == 9 && memcmp(s, "candidate", 9) == 0)
		return ROLE_CANDIDATE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid site role \"%.*s\"", len > 40 ? 40 : len, s),
			 errhint("Use own, competitor or candidate.")));
	return -1;					/* keep the compiler quiet */
}

/*
 * huff_impact_transfn(state, zone_id, site_id, role, attractiveness, distance, demand, alpha, beta,
 * min_distance, threshold)
 */
Datum
huff_impact_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *state = HuffTransCommon(fcinfo, &aggcontext);
	HuffParams	p;
	HuffRow    *r;
	int32		role;

	HuffRequireNotNull(fcinfo, 1, 10);
	p.alpha = PG_GETARG_FLOAT8(7);
	p.beta = PG_GETARG_FLOAT8(8);
	p.min_distance = PG_GETARG_FLOAT8(9);
	p.threshold = PG_GETARG_FLOAT8(10);
	p.cutoff = 0.0;
	HuffStateSetParams(state, &p);
	role = HuffParseRole(PG_GETARG_TEXT_PP(3));
	HuffCheckRow(PG_GETARG_INT64(2), PG_GETARG_FLOAT8(4), PG_GETARG_FLOAT8(5), PG_GETARG_FLOAT8(6));
	HuffStateReserve(state, 1, aggcontext);
	r = &state->rows[state->n++];
	r->zone = PG_GETARG_INT64(1);
	r->site = PG_GETARG_INT64(2);
	r->attractiveness = PG_GETARG_FLOAT8(4);
	r->distance = PG_GETARG_FLOAT8(5);
	r->demand = PG_GETARG_FLOAT8(6);
	r->role = role;
	r->pad = 0;
	PG_RETURN_POINTER(state);
}

/*
 * Great-circle distance in metres between two lon/lat points (degrees) on the sphere PostGIS uses for
 * geography with use_spheroid = false: radius (2a + b) / 3 of WGS84, and PostGIS's sphere_distance formula,
 * so that the result equals ST_Distance(geography, geography, false) to rounding.
 */
static inline double
GreatCircle(double lon1, double lat1, double lon2, double lat2)
{
	const double a = 6378137.0;
	const double b = a * (1.0 - 1.0 / 298.257223563);
	const double radius = (2.0 * a + b) / 3.0;
	double		slat = lat1 * M_PI / 180.0;
	double		elat = lat2 * M_PI / 180.0;
	double		d_lon = (lon2 - lon1) * M_PI / 180.0;
	double		cos_d_lon = cos(d_lon);
	double		cos_lat_e = cos(elat);
	double		sin_lat_e = sin(elat);
	double		cos_lat_s = cos(slat);
	double		sin_lat_s = sin(slat);
	double		a1 = cos_lat_e * sin(d_lon);
	double		a2 = cos_lat_s * sin_lat_e - sin_lat_s * cos_lat_e * cos_d_lon;
	double		y = sqrt(a1 * a1 + a2 * a2);
	double		x = sin_lat_s * sin_lat_e + cos_lat_s * cos_lat_e * cos_d_lon;

	return radius * atan2(y, x);
}

static void
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

/*
 * A latitude/longitude grid whose cells are at least `radius` metres across, for pruning zone-site pairs by
 * an equi-join on cell ids (the h3_postgis habit: join on cells, measure exactly afterwards). Bands of
 * latitude are >= the cap's angular radius high; each band has as many longitude cells as fit with width
 * >= the radius at the band's poleward edge. A site lists every cell its spherical cap can touch, so every
 * zone within radius shares a cell with it; the exact distance is checked later (huff_impact_geo).
 */
typedef struct SiteGrid
{
	double		r;				/* angular radius, radians, slightly enlarged */
	double		h;				/* the same in degrees */
	int			nbands;
	double		band_height;	/* degrees */
} SiteGrid;

static void
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
static inline int64
SiteGridPointCell(const SiteGrid *g, double lon, double lat)
{
	int			band = SiteGridBand(g, lat);

	return ((int64) band << 32) | SiteGridLonIndex(lon, SiteGridCellsInBand(g, band));
}

/* site_grid_cell(lon, lat, radius) -> int8: the cell of a zone */
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
static int
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

/*
 * huff_impact_geo_transfn(state, zone_id, zone_lon, zone_lat, demand, site_id, role, site_lon, site_lat,
 * attractiveness, alpha, beta, min_distance, threshold, cutoff)
 * Like huff_impact, but takes coordinates: SQL prunes with a bounding box on the GiST index, and the exact
 * great-circle distance and the cut-off are applied here (pairs beyond it are skipped).
 */
Datum
huff_impact_geo_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *state = HuffTransCommon(fcinfo, &aggcontext);
	HuffParams	p;
	HuffRow    *r;
	int32		role;
	double		zlon,
				zlat,
				slon,
				slat,
				d;

	HuffRequireNotNull(fcinfo, 1, 14);
	p.alpha = PG_GETARG_FLOAT8(10);
	p.beta = PG_GETARG_FLOAT8(11);
	p.min_distance = PG_GETARG_FLOAT8(12);
	p.threshold = PG_GETARG_FLOAT8(13);
	p.cutoff = PG_GETARG_FLOAT8(14);
	HuffStateSetParams(state, &p);
	if (!(p.cutoff > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cutoff must be a positive finite number"),
				 errdetail("cutoff is %g.", p.cutoff)));
	zlon = PG_GETARG_FLOAT8(2);
	zlat = PG_GETARG_FLOAT8(3);
	slon = PG_GETARG_FLOAT8(7);
	slat = PG_GETARG_FLOAT8(8);
	HuffCheckLonLat(zlon, zlat);
	HuffCheckLonLat(slon, slat);
	role = HuffParseRole(PG_GETARG_TEXT_PP(6));
	d = GreatCircle(zlon, zlat, slon, slat);
	HuffCheckRow(PG_GETARG_INT64(5), PG_GETARG_FLOAT8(9), d, PG_GETARG_FLOAT8(4));
	if (d > p.cutoff)
		PG_RETURN_POINTER(state);
	HuffStateReserve(state, 1, aggcontext);
	r = &state->rows[state->n++];
	r->zone = PG_GETARG_INT64(1);
	r->site = PG_GETARG_INT64(5);
	r->attractiveness = PG_GETARG_FLOAT8(9);
	r->distance = d;
	r->demand = PG_GETARG_FLOAT8(4);
	r->role = role;
	r->pad = 0;
	PG_RETURN_POINTER(state);
}

/* A one-dimensional array of a fixed-width type without nulls, or an error; returns its data and length. */
static const void *
HuffPlainArray(ArrayType *a, Oid elemtype, const char *what, int *n)
{
	if (ARR_ELEMTYPE(a) != elemtype)
		elog(ERROR, "%s has the wrong element type", what);
	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array without nulls", what)));
	*n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	return ARR_DATA_PTR(a);
}

/*
 * huff_impact_cell_transfn(state, zone_ids int8[], zone_lons float8[], zone_lats float8[], demands float8[],
 * site_id, role, site_lon, site_lat, attractiveness, alpha, beta, min_distance, threshold, cutoff)
 * The same as huff_impact_geo, for all the zones of one grid cell at once: SQL joins each site to the cells
 * it touches (site_grid_cells) and passes each cell's zones as arrays, one call per site and cell.
 */
Datum
huff_impact_cell_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *state = HuffTransCommon(fcinfo, &aggcontext);
	HuffParams	p;
	int32		role;
	int			nz,
				nlon,
				nlat,
				nd;
	const int64 *zones;
	const double *lons;
	const double *lats;
	const double *demands;
	double		slon,
				slat,
				attr;
	int64		site;
	double		sin_s,
				cos_s;
	const double a = 6378137.0;
	const double b = a * (1.0 - 1.0 / 298.257223563);
	const double radius = (2.0 * a + b) / 3.0;

	HuffRequireNotNull(fcinfo, 1, 14);
	p.alpha = PG_GETARG_FLOAT8(10);
	p.beta = PG_GETARG_FLOAT8(11);
	p.min_distance = PG_GETARG_FLOAT8(12);
	p.threshold = PG_GETARG_FLOAT8(13);
	p.cutoff = PG_GETARG_FLOAT8(14);
	HuffStateSetParams(state, &p);
	if (!(p.cutoff > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cutoff must be a positive finite number"),
				 errdetail("cutoff is %g.", p.cutoff)));
	zones = HuffPlainArray(PG_GETARG_ARRAYTYPE_P(1), INT8OID, "zone_ids", &nz);
	lons = HuffPlainArray(PG_GETARG_ARRAYTYPE_P(2), FLOAT8OID, "zone_lons", &nlon);
	lats = HuffPlainArray(PG_GETARG_ARRAYTYPE_P(3), FLOAT8OID, "zone_lats", &nlat);
	demands = HuffPlainArray(PG_GETARG_ARRAYTYPE_P(4), FLOAT8OID, "demands", &nd);
	if (nlon != nz || nlat != nz || nd != nz)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("zone_ids, zone_lons, zone_lats and demands must have the same length")));
	site = PG_GETARG_INT64(5);
	role = HuffParseRole(PG_GETARG_TEXT_PP(6));
	slon = PG_GETARG_FLOAT8(7);
	slat = PG_GETARG_FLOAT8(8);
	attr = PG_GETARG_FLOAT8(9);
	HuffCheckLonLat(slon, slat);
	HuffCheckRow(site, attr, 0.0, 0.0);
	sin_s = sin(slat * M_PI / 180.0);
	cos_s = cos(slat * M_PI / 180.0);
	HuffStateReserve(state, nz, aggcontext);
	for (int i = 0; i < nz; i++)
	{
		double		elat,
					d_lon,
					cos_d_lon,
					cos_lat_e,
					sin_lat_e,
					a1,
					a2,
					d;
		HuffRow    *r;

		HuffCheckLonLat(lons[i], lats[i]);
		/* GreatCircle with the site's trigonometry hoisted out of the loop */
		elat = lats[i] * M_PI / 180.0;
		d_lon = (lons[i] - slon) * M_PI / 180.0;
		cos_d_lon = cos(d_lon);
		cos_lat_e = cos(elat);
		sin_lat_e = sin(elat);
		a1 = cos_lat_e * sin(d_lon);
		a2 = cos_s * sin_lat_e - sin_s * cos_lat_e * cos_d_lon;
		d = radius * atan2(sqrt(a1 * a1 + a2 * a2), sin_s * sin_lat_e + cos_s * cos_lat_e * cos_d_lon);
		if (d > p.cutoff)
			continue;
		HuffCheckRow(site, attr, d, demands[i]);
		r = &state->rows[state->n++];
		r->zone = zones[i];
		r->site = site;
		r->attractiveness = attr;
		r->distance = d;
		r->demand = demands[i];
		r->role = role;
		r->pad = 0;
	}
	PG_RETURN_POINTER(state);
}

/* Combine: append the rows of the second state to the first (a parallel worker's share of the pairs). */
Datum
huff_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *a;
	HuffState  *b;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Huff combine function called in non-aggregate context")));
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	b = (HuffState *) PG_GETARG_POINTER(1);
	if (PG_ARGISNULL(0))
		a = HuffStateCreate(aggcontext);
	else
		a = (HuffState *) PG_GETARG_POINTER(0);
	if (b->have_params)
		HuffStateSetParams(a, &b->params);
	HuffStateReserve(a, b->n, aggcontext);
	if (b->n > 0)
		memcpy(a->rows + a->n, b->rows, sizeof(HuffRow) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

Datum
huff_serialfn(PG_FUNCTION_ARGS)
{
	HuffState  *state = (HuffState *) PG_GETARG_POINTER(0);
	HuffStateHeader h;
	Size		len = sizeof(HuffStateHeader) + sizeof(HuffRow) * (Size) state->n;
	bytea	   *out;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Huff serial function called in non-aggregate context")));
	if (len + VARHDRSZ > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Huff aggregate state too large to serialise")));
	memset(&h, 0, sizeof(h));
	h.magic = HUFF_STATE_MAGIC;
	h.version = HUFF_STATE_VERSION;
	h.have_params = state->have_params ? 1 : 0;
	h.params = state->params;
	h.n = state->n;
	out = palloc(len + VARHDRSZ);
	SET_VARSIZE(out, len + VARHDRSZ);
	memcpy(VARDATA(out), &h, sizeof(h));
	if (state->n > 0)
		memcpy(VARDATA(out) + sizeof(h), state->rows, sizeof(HuffRow) * state->n);
	PG_RETURN_BYTEA_P(out);
}

/* Deserialise, rejecting bytes that are not a whole, valid state of this version. */
Datum
huff_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *data = VARDATA_ANY(in);
	HuffStateHeader h;
	MemoryContext aggcontext;
	HuffState  *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Huff deserial function called in non-aggregate context")));
	if (len < sizeof(h))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid Huff aggregate state: too short")));
	memcpy(&h, data, sizeof(h));
	if (h.magic != HUFF_STATE_MAGIC || h.version != HUFF_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid Huff aggregate state: unknown format")));
	if (h.n < 0 || (Size) h.n > (len - sizeof(h)) / sizeof(HuffRow) ||
		len != sizeof(h) + sizeof(HuffRow) * (Size) h.n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid Huff aggregate state: length does not match row count")));
	state = MemoryContextAllocZero(aggcontext, sizeof(HuffState));
	state->have_params = h.have_params != 0;
	state->params = h.params;
	if (state->have_params)
		HuffCheckParams(&state->params);
	state->n = h.n;
	state->cap = h.n > 0 ? h.n : 1;
	state->rows = MemoryContextAllocHuge(aggcontext, sizeof(HuffRow) * (Size) state->cap);
	if (h.n > 0)
		memcpy(state->rows, data + sizeof(h), sizeof(HuffRow) * (Size) h.n);
	for (int64 i = 0; i < state->n; i++)
	{
		HuffRow    *r = &state->rows[i];

		if (r->role < ROLE_COMPETITOR || r->role > ROLE_CANDIDATE)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("invalid Huff aggregate state: bad role")));
		HuffCheckRow(r->site, r->attractiveness, r->distance, r->demand);
	}
	PG_RETURN_POINTER(state);
}

/* Sort key of a row: zone, then stores before candidates, then site; sorted with an inlined comparator. */
typedef struct HuffKey
{
	int64		zone;
	int64		site;
	int32		cand;
	int32		idx;
} HuffKey;

static inline int
HuffKeyCmp(const HuffKey *x, const HuffKey *y)
{
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	if (x->cand != y->cand)
		return x->cand - y->cand;
	if (x->site != y->site)
		return x->site < y->site ? -1 : 1;
	return 0;
}

#define ST_SORT huff_sort_keys
#define ST_ELEMENT_TYPE HuffKey
#define ST_COMPARE(a, b) HuffKeyCmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * A sorted view of the state's rows (zone, stores before candidates, site); the state itself is left
 * untouched so finals can run repeatedly.
 */
static HuffRow **
HuffSortedRows(HuffState *state)
{
	HuffRow   **idx = palloc_extended(sizeof(HuffRow *) * (state->n > 0 ? state->n : 1), MCXT_ALLOC_HUGE);
	HuffKey    *keys = palloc_extended(sizeof(HuffKey) * (state->n > 0 ? state->n : 1), MCXT_ALLOC_HUGE);

	if (state->n > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows for one Huff aggregation")));
	for (int64 i = 0; i < state->n; i++)
	{
		keys[i].zone = state->rows[i].zone;
		keys[i].site = state->rows[i].site;
		keys[i].cand = state->rows[i].role == ROLE_CANDIDATE;
		keys[i].idx = (int32) i;
	}
	huff_sort_keys(keys, state->n);
	for (int64 i = 0; i < state->n; i++)
		idx[i] = &state->rows[keys[i].idx];
	pfree(keys);
	return idx;
}

/* One zone's rows [start, end): checks duplicates and that the demand is the same on every row. */
static void
HuffCheckZone(HuffRow **idx, int64 start, int64 end)
{
	for (int64 i = start + 1; i < end; i++)
	{
		if (idx[i]->demand != idx[start]->demand)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("demand differs between rows of zone " INT64_FORMAT, idx[start]->zone),
					 errdetail("Found %g and %g.", idx[start]->demand, idx[i]->demand)));
		if (idx[i]->site == idx[i - 1]->site &&
			(idx[i]->role == ROLE_CANDIDATE) == (idx[i - 1]->role == ROLE_CANDIDATE))
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("site " INT64_FORMAT " appears more than once in zone " INT64_FORMAT,
							idx[i]->site, idx[i]->zone)));
	}
}

typedef struct KeyValue
{
	int64		a;
	int64		b;
	double		v;
	double		w;
	int64		cnt;
} KeyValue;

static int
KeyValueCmp(const void *x, const void *y)
{
	const KeyValue *p = x;
	const KeyValue *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return 0;
}

/* Growable array of KeyValue in the current memory context. */
typedef struct KVList
{
	KeyValue   *items;
	int64		n;
	int64		cap;
} KVList;

static inline void
KVPush(KVList *l, int64 a, int64 b, double v, double w)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 1024;
		if (l->items)
			l->items = repalloc_huge(l->items, sizeof(KeyValue) * (Size) l->cap);
		else
			l->items = palloc_extended(sizeof(KeyValue) * (Size) l->cap, MCXT_ALLOC_HUGE);
	}
	l->items[l->n].a = a;
	l->items[l->n].b = b;
	l->items[l->n].v = v;
	l->items[l->n].w = w;
	l->items[l->n].cnt = 1;
	l->n++;
}

/* Sorts by (a, b) and sums v and w over equal keys, in place. */
static void
KVReduce(KVList *l)
{
	int64		out = 0;

	if (l->n == 0)
		return;
	qsort(l->items, l->n, sizeof(KeyValue), KeyValueCmp);
	for (int64 i = 1; i < l->n; i++)
	{
		if (l->items[i].a == l->items[out].a && l->items[i].b == l->items[out].b)
		{
			l->items[out].v += l->items[i].v;
			l->items[out].w += l->items[i].w;
			l->items[out].cnt += l->items[i].cnt;
		}
		else
			l->items[++out] = l->items[i];
	}
	l->n = out + 1;
}

/* Element type and tuple descriptor of the composite array the final function returns. */
static TupleDesc
HuffResultDesc(FunctionCallInfo fcinfo, Oid *elemtype)
{
	Oid			rettype = get_fn_expr_rettype(fcinfo->flinfo);
	TupleDesc	desc;

	*elemtype = OidIsValid(rettype) ? get_element_type(rettype) : InvalidOid;
	if (!OidIsValid(*elemtype))
		elog(ERROR, "could not determine the result type of the Huff final function");
	desc = lookup_rowtype_tupdesc_copy(*elemtype, -1);
	return BlessTupleDesc(desc);
}

static Datum
HuffBuildArray(Datum *elems, int64 n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (n > MaxArraySize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Huff result has too many rows")));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, (int) n, elemtype, typlen, typbyval, typalign));
}

/*
 * Expected sales per store (and the number of zones it draws from): the baseline Huff model.
 * Returns huff_store_sales[] ordered by store id; zones with no store in reach contribute nothing.
 */
Datum
huff_sales_finalfn(PG_FUNCTION_ARGS)
{
	HuffState  *state = PG_ARGISNULL(0) ? NULL : (HuffState *) PG_GETARG_POINTER(0);
	Oid			elemtype;
	TupleDesc	desc = HuffResultDesc(fcinfo, &elemtype);
	KVList		sales = {0};
	HuffRow   **idx;
	Datum	   *elems;
	int64		start = 0;

	if (state == NULL || state->n == 0)
		PG_RETURN_DATUM(HuffBuildArray(NULL, 0, elemtype));
	idx = HuffSortedRows(state);
	while (start < state->n)
	{
		int64		end = start;
		double		total = 0.0;
		double		demand = idx[start]->demand;

		while (end < state->n && idx[end]->zone == idx[start]->zone)
			end++;
		HuffCheckZone(idx, start, end);
		for (int64 i = start; i < end; i++)
			total += HuffUtility(idx[i]->attractiveness, idx[i]->distance, &state->params);
		for (int64 i = start; i < end; i++)
		{
			double		u = HuffUtility(idx[i]->attractiveness, idx[i]->distance, &state->params);

			KVPush(&sales, idx[i]->site, 0, total > 0.0 ? demand * (u / total) : 0.0, 1.0);
		}
		start = end;
	}
	KVReduce(&sales);
	elems = palloc(sizeof(Datum) * sales.n);
	for (int64 i = 0; i < sales.n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(sales.items[i].a);
		values[1] = Float8GetDatum(sales.items[i].v);
		values[2] = Int32GetDatum((int32) sales.items[i].cnt);
		elems[i] = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	}
	PG_RETURN_DATUM(HuffBuildArray(elems, sales.n, elemtype));
}

static Datum
HuffImpactTuple(TupleDesc desc, int64 candidate, const char *kind, int64 object, double before, double after,
				int64 zones)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = Int64GetDatum(candidate);
	values[1] = CStringGetTextDatum(kind);
	values[2] = Int64GetDatum(object);
	values[3] = Float8GetDatum(before);
	values[4] = Float8GetDatum(after);
	values[5] = Int32GetDatum((int32) zones);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/* One zone's run in the sorted rows: stores in [start, first_cand), candidates in [first_cand, end). */
typedef struct ZoneRun
{
	int64		start;
	int64		first_cand;
	int64		end;
	double		total;			/* sum of the existing stores' utilities */
} ZoneRun;

/* A candidate row: which candidate, in which zone run, at which row. */
typedef struct CandRef
{
	int64		candidate;
	int64		run;
	int64		row;
} CandRef;

static int
CandRefCmp(const void *a, const void *b)
{
	const CandRef *x = a;
	const CandRef *y = b;

	if (x->candidate != y->candidate)
		return x->candidate < y->candidate ? -1 : 1;
	if (x->run != y->run)
		return x->run < y->run ? -1 : 1;
	return 0;
}

static int
Int64Cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * What each candidate does when it opens alone beside the existing stores. Returns huff_impact[] rows:
 *   kind 'candidate': object = candidate, before = demand of the zones in its reach, after = its expected
 *                     sales, zones = zones in reach;
 *   kind 'store':     object = existing store sharing a zone with it, before/after = that store's expected
 *                     sales without/with the candidate (before - after is the cannibalisation or loss),
 *                     zones = zones shared;
 *   kind 'zone':      object = zone where the candidate's probability exceeds threshold, before = the
 *                     zone's demand, after = that probability, zones = 1.
 * Zones with no existing store in reach are unserved: a candidate reaching one gets all its demand.
 */
Datum
huff_impact_finalfn(PG_FUNCTION_ARGS)
{
	HuffState  *state = PG_ARGISNULL(0) ? NULL : (HuffState *) PG_GETARG_POINTER(0);
	Oid			elemtype;
	TupleDesc	desc = HuffResultDesc(fcinfo, &elemtype);

	PG_RETURN_DATUM(HuffImpactCompute(state, NULL, desc, elemtype));
}

/* The work of huff_impact_finalfn, shared with huff_impact_batch: huff_impact[] from a state's pairs. */
static Datum
HuffImpactCompute(HuffState *state, const HuffPresorted *pre, TupleDesc desc, Oid elemtype)
{
	HuffRow   **idx;
	double	   *util;
	int32	   *store_index;	/* per row: dense index of the store, -1 for candidates */
	int64	   *store_ids;
	int64		nstores = 0;
	double	   *base;			/* per store: baseline expected sales */
	double	   *loss;			/* per store: loss to the current candidate */
	int32	   *shared;			/* per store: zones shared with the current candidate */
	int64	   *touched;
	ZoneRun    *runs;
	int64		nruns = 0;
	CandRef    *cands;
	int64		ncands = 0;
	Datum	   *elems;
	int64		nelems = 0;
	Datum	   *zone_elems;
	int64		nzone_elems = 0;
	int64		start = 0;

	if (state == NULL || state->n == 0)
		return HuffBuildArray(NULL, 0, elemtype);
	idx = pre ? pre->idx : HuffSortedRows(state);
	util = palloc_extended(sizeof(double) * state->n, MCXT_ALLOC_HUGE);
	store_index = palloc_extended(sizeof(int32) * state->n, MCXT_ALLOC_HUGE);
	runs = palloc_extended(sizeof(ZoneRun) * state->n, MCXT_ALLOC_HUGE);
	cands = palloc_extended(sizeof(CandRef) * state->n, MCXT_ALLOC_HUGE);

	/* dense store numbering, in store id order */
	if (pre)
	{
		store_ids = (int64 *) pre->store_ids;
		nstores = pre->nstores;
	}
	else
	{
		int64		u = 0;

		store_ids = palloc_extended(sizeof(int64) * state->n, MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < state->n; i++)
			if (idx[i]->role != ROLE_CANDIDATE)
				store_ids[nstores++] = idx[i]->site;
		qsort(store_ids, nstores, sizeof(int64), Int64Cmp);
		for (int64 i = 0; i < nstores; i++)
			if (u == 0 || store_ids[i] != store_ids[u - 1])
				store_ids[u++] = store_ids[i];
		nstores = u;
	}
	base = palloc_extended(sizeof(double) * (nstores + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	loss = palloc_extended(sizeof(double) * (nstores + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	shared = palloc_extended(sizeof(int32) * (nstores + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	touched = palloc_extended(sizeof(int64) * (nstores + 1), MCXT_ALLOC_HUGE);

	/* pass 1, per zone: utilities, the stores' total, baseline sales */
	while (start < state->n)
	{
		ZoneRun    *run = &runs[nruns];
		double		demand = idx[start]->demand;

		run->start = start;
		run->end = start;
		while (run->end < state->n && idx[run->end]->zone == idx[start]->zone)
			run->end++;
		HuffCheckZone(idx, start, run->end);
		run->first_cand = start;
		while (run->first_cand < run->end && idx[run->first_cand]->role != ROLE_CANDIDATE)
			run->first_cand++;
		run->total = 0.0;
		for (int64 i = start; i < run->end; i++)
			util[i] = HuffUtility(idx[i]->attractiveness, idx[i]->distance, &state->params);
		for (int64 i = start; i < run->first_cand; i++)
		{
			if (pre)
				store_index[i] = idx[i]->pad;
			else
			{
				int64	   *hit = bsearch(&idx[i]->site, store_ids, nstores, sizeof(int64), Int64Cmp);

				Assert(hit != NULL);
				store_index[i] = (int32) (hit - store_ids);
			}
			run->total += util[i];
		}
		for (int64 i = start; i < run->first_cand; i++)
			base[store_index[i]] += demand * (util[i] / run->total);
		for (int64 c = run->first_cand; c < run->end; c++)
		{
			store_index[c] = -1;
			cands[ncands].candidate = idx[c]->site;
			cands[ncands].run = nruns;
			cands[ncands].row = c;
			ncands++;
		}
		start = run->end;
		nruns++;
	}

	/* pass 2, per candidate: its sales, the zones of its trade area, and what each store loses */
	if (pre)
	{
		/* a stable counting sort by the dense candidate number keeps each candidate's runs in order */
		int64	   *first = palloc0(sizeof(int64) * (pre->ncandidates + 1));
		CandRef    *sorted = palloc_extended(sizeof(CandRef) * (ncands + 1), MCXT_ALLOC_HUGE);

		for (int64 k = 0; k < ncands; k++)
			first[idx[cands[k].row]->pad + 1]++;
		for (int64 c = 0; c < pre->ncandidates; c++)
			first[c + 1] += first[c];
		for (int64 k = 0; k < ncands; k++)
			sorted[first[idx[cands[k].row]->pad]++] = cands[k];
		cands = sorted;
	}
	else
		qsort(cands, ncands, sizeof(CandRef), CandRefCmp);
	elems = palloc_extended(sizeof(Datum) * (ncands + 1), MCXT_ALLOC_HUGE);
	zone_elems = palloc_extended(sizeof(Datum) * (ncands + 1), MCXT_ALLOC_HUGE);
	for (int64 k = 0; k < ncands;)
	{
		int64		cand = cands[k].candidate;
		int64		ntouched = 0;
		int64		nzones = 0;
		double		reach = 0.0;
		double		sales = 0.0;
		int64		nstore_rows;

		for (; k < ncands && cands[k].candidate == cand; k++)
		{
			ZoneRun    *run = &runs[cands[k].run];
			int64		c = cands[k].row;
			double		demand = idx[c]->demand;
			double		share = util[c] / (run->total + util[c]);

			nzones++;
			reach += demand;
			sales += demand * share;
			if (share > state->params.threshold)
				zone_elems[nzone_elems++] = HuffImpactTuple(desc, cand, "zone", idx[c]->zone, demand, share, 1);
			/* u_j/S - u_j/(S+c) = (u_j/S) * c/(S+c) */
			for (int64 i = run->start; i < run->first_cand; i++)
			{
				int32		j = store_index[i];

				if (shared[j] == 0)
					touched[ntouched++] = j;
				shared[j]++;
				loss[j] += demand * (util[i] / run->total) * share;
			}
		}
		nstore_rows = ntouched;
		if (nelems + 1 + nstore_rows > ncands + 1)
			elems = repalloc_huge(elems, sizeof(Datum) * (nelems + 1 + nstore_rows + ncands));
		elems[nelems++] = HuffImpactTuple(desc, cand, "candidate", cand, reach, sales, nzones);
		qsort(touched, ntouched, sizeof(int64), Int64Cmp);
		for (int64 t = 0; t < ntouched; t++)
		{
			int64		j = touched[t];

			elems[nelems++] = HuffImpactTuple(desc, cand, "store", store_ids[j], base[j], base[j] - loss[j], shared[j]);
			loss[j] = 0.0;
			shared[j] = 0;
		}
	}
	if (nzone_elems > 0)
	{
		elems = repalloc_huge(elems, sizeof(Datum) * (nelems + nzone_elems));
		memcpy(elems + nelems, zone_elems, sizeof(Datum) * nzone_elems);
		nelems += nzone_elems;
	}
	return HuffBuildArray(elems, nelems, elemtype);
}

/* The elements of a one-dimensional array of 8-byte elements (float8 or int8), which must have no nulls. */
static Datum *
HuffArrayElements(ArrayType *a, Oid elemtype, const char *what, int *n)
{
	Datum	   *d;
	bool	   *nulls;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(a, elemtype, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
	return d;
}

/* Unpacks a one-dimensional float8 array with no nulls. */
static double *
HuffFloatArray(ArrayType *a, const char *what, int *n)
{
	Datum	   *d = HuffArrayElements(a, FLOAT8OID, what, n);
	double	   *out = palloc(sizeof(double) * (*n > 0 ? *n : 1));

	for (int i = 0; i < *n; i++)
		out[i] = DatumGetFloat8(d[i]);
	return out;
}

/* Unpacks a one-dimensional int8 array with no nulls. */
static int64 *
HuffIntArray(ArrayType *a, const char *what, int *n)
{
	Datum	   *d = HuffArrayElements(a, INT8OID, what, n);
	int64	   *out = palloc(sizeof(int64) * (*n > 0 ? *n : 1));

	for (int i = 0; i < *n; i++)
		out[i] = DatumGetInt64(d[i]);
	return out;
}

/*
 * huff_probabilities(attractiveness float8[], distance float8[], alpha, beta, min_distance) -> float8[]
 * The probabilities of one zone choosing each of the given stores; empty in, empty out.
 */
Datum
huff_probabilities(PG_FUNCTION_ARGS)
{
	int			na,
				nd;
	double	   *a = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(0), "attractiveness", &na);
	double	   *d = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(1), "distance", &nd);
	HuffParams	p;
	Datum	   *out;
	double		total = 0.0;

	p.alpha = PG_GETARG_FLOAT8(2);
	p.beta = PG_GETARG_FLOAT8(3);
	p.min_distance = PG_GETARG_FLOAT8(4);
	p.threshold = 0.0;
	p.cutoff = 0.0;
	HuffCheckParams(&p);
	if (na != nd)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("attractiveness and distance arrays must have the same length"),
				 errdetail("They have %d and %d elements.", na, nd)));
	out = palloc(sizeof(Datum) * (na > 0 ? na : 1));
	for (int i = 0; i < na; i++)
	{
		HuffCheckRow(i + 1, a[i], d[i], 0.0);
		a[i] = HuffUtility(a[i], d[i], &p);
		total += a[i];
	}
	for (int i = 0; i < na; i++)
		out[i] = Float8GetDatum(a[i] / total);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, na, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Calibration data: pairs sorted by zone, each store mapped to its observation (or -1). */
typedef struct CalibData
{
	int			npairs;
	double	   *log_a;
	double	   *log_d;
	double	   *demand;
	int64	   *zone;
	int		   *obs_index;		/* per pair: index into observed, -1 when the store has no observation */
	int			nobs;
	double	   *observed;
	double	   *predicted;		/* scratch, per observation */
	double	   *util;			/* scratch, per pair */
	double		min_distance;
	double		scale;			/* least-squares scale of the last evaluation */
	double		sse;
	int			evaluations;
} CalibData;

/* Sum of squared errors of the scaled Huff prediction at (alpha, beta); the scale is solved exactly. */
static double
CalibSSE(const double *x, CalibData *cd)
{
	double		alpha = x[0],
				beta = x[1];
	double		sop = 0.0,
				spp = 0.0,
				sse = 0.0;
	int			start = 0;

	cd->evaluations++;
	memset(cd->predicted, 0, sizeof(double) * cd->nobs);
	while (start < cd->npairs)
	{
		int			end = start;
		double		total = 0.0;
		double		top = -INFINITY;

		while (end < cd->npairs && cd->zone[end] == cd->zone[start])
			end++;
		/* shift by the largest exponent: the shares are unchanged and nothing under- or overflows */
		for (int i = start; i < end; i++)
		{
			cd->util[i] = alpha * cd->log_a[i] - beta * cd->log_d[i];
			if (cd->util[i] > top)
				top = cd->util[i];
		}
		for (int i = start; i < end; i++)
		{
			cd->util[i] = exp(cd->util[i] - top);
			total += cd->util[i];
		}
		for (int i = start; i < end; i++)
			if (cd->obs_index[i] >= 0)
				cd->predicted[cd->obs_index[i]] += cd->demand[i] * cd->util[i] / total;
		start = end;
	}
	for (int j = 0; j < cd->nobs; j++)
	{
		sop += cd->observed[j] * cd->predicted[j];
		spp += cd->predicted[j] * cd->predicted[j];
	}
	cd->scale = spp > 0.0 ? sop / spp : 0.0;
	for (int j = 0; j < cd->nobs; j++)
	{
		double		e = cd->observed[j] - cd->scale * cd->predicted[j];

		sse += e * e;
	}
	cd->sse = sse;
	return sse;
}

static double
CalibObjective(unsigned n, const double *x, double *grad, void *data)
{
	return CalibSSE(x, (CalibData *) data);
}

/* A key (zone, store or grid cell) and the position it came from; sorts by key, then position. */
typedef struct KeyOrder
{
	int64		key;
	int			i;
} KeyOrder;

static int
KeyOrderCmp(const void *a, const void *b)
{
	const KeyOrder *x = a;
	const KeyOrder *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->i - y->i;
}

static int
StoreKeyCmp(const void *a, const void *b)
{
	int64		x = ((const KeyOrder *) a)->key;
	int64		y = ((const KeyOrder *) b)->key;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * huff_calibrate(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[], demand float8[],
 *                observed_store_id int8[], observed_sales float8[], alpha0, beta0, min_distance)
 * -> (alpha, beta, scale, sse, rmse, r_squared, stores, evaluations)
 * Least squares: observed_j ~ scale * HuffSales_j(alpha, beta), scale solved in closed form, (alpha, beta)
 * by NLopt's BOBYQA within [0, 10] x [0, 10].
 */
Datum
huff_calibrate(PG_FUNCTION_ARGS)
{
	int			nz,
				ns,
				na,
				nd,
				ndm,
				nos,
				nov;
	int64	   *zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(0), "zone_id", &nz);
	int64	   *store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(1), "store_id", &ns);
	double	   *attr = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(2), "attractiveness", &na);
	double	   *dist = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(3), "distance", &nd);
	double	   *demand = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(4), "demand", &ndm);
	int64	   *obs_store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(5), "observed_store_id", &nos);
	double	   *observed = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(6), "observed_sales", &nov);
	HuffParams	p;
	CalibData	cd;
	KeyOrder   *order;
	KeyOrder   *sorted_obs;
	double		x[2],
				lb[2] = {0.0, 0.0},
				ub[2] = {HUFF_ALPHA_MAX, HUFF_BETA_MAX},
				minf;
	double		mean = 0.0,
				sst = 0.0;
	nlopt_opt	opt;
	nlopt_result res;
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	p.alpha = PG_GETARG_FLOAT8(7);
	p.beta = PG_GETARG_FLOAT8(8);
	p.min_distance = PG_GETARG_FLOAT8(9);
	p.threshold = 0.0;
	p.cutoff = 0.0;
	HuffCheckParams(&p);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "huff_calibrate must return a composite type");
	if (ns != nz || na != nz || nd != nz || ndm != nz)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("zone_id, store_id, attractiveness, distance and demand arrays must have the same length")));
	if (nos != nov)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("observed_store_id and observed_sales arrays must have the same length")));
	if (nos < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration needs observed sales of at least 3 stores"),
				 errdetail("%d stores have observed sales.", nos)));

	/* observations: unique store ids, finite non-negative sales */
	sorted_obs = palloc(sizeof(KeyOrder) * nos);
	for (int j = 0; j < nos; j++)
	{
		sorted_obs[j].key = obs_store[j];
		sorted_obs[j].i = j;
	}
	qsort(sorted_obs, nos, sizeof(KeyOrder), KeyOrderCmp);
	for (int j = 1; j < nos; j++)
		if (sorted_obs[j].key == sorted_obs[j - 1].key)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("store " INT64_FORMAT " has more than one observed sales figure", sorted_obs[j].key)));
	for (int j = 0; j < nos; j++)
	{
		if (isnan(observed[j]) || isinf(observed[j]) || observed[j] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("observed sales must be non-negative finite numbers"),
					 errdetail("Store " INT64_FORMAT " has %g.", obs_store[j], observed[j])));
		mean += observed[j];
	}
	mean /= nos;
	for (int j = 0; j < nos; j++)
		sst += (observed[j] - mean) * (observed[j] - mean);

	memset(&cd, 0, sizeof(cd));
	cd.npairs = nz;
	cd.nobs = nos;
	cd.observed = observed;
	cd.min_distance = p.min_distance;
	cd.log_a = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.log_d = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.demand = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.zone = palloc(sizeof(int64) * (nz > 0 ? nz : 1));
	cd.obs_index = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	cd.util = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.predicted = palloc(sizeof(double) * nos);
	order = palloc(sizeof(KeyOrder) * (nz > 0 ? nz : 1));
	for (int i = 0; i < nz; i++)
	{
		HuffCheckRow(store[i], attr[i], dist[i], demand[i]);
		order[i].key = zone[i];
		order[i].i = i;
	}
	qsort(order, nz, sizeof(KeyOrder), KeyOrderCmp);
	for (int k = 0; k < nz; k++)
	{
		int			i = order[k].i;
		KeyOrder	key;
		KeyOrder   *hit;
		double		d = dist[i] < p.min_distance ? p.min_distance : dist[i];

		cd.zone[k] = zone[i];
		cd.log_a[k] = log(attr[i]);
		cd.log_d[k] = log(d);
		cd.demand[k] = demand[i];
		key.key = store[i];
		key.i = 0;
		hit = bsearch(&key, sorted_obs, nos, sizeof(KeyOrder), StoreKeyCmp);
		cd.obs_index[k] = hit ? hit->i : -1;
	}

	x[0] = p.alpha;
	x[1] = p.beta;
	opt = nlopt_create(NLOPT_LN_BOBYQA, 2);
	if (opt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
	nlopt_set_lower_bounds(opt, lb);
	nlopt_set_upper_bounds(opt, ub);
	nlopt_set_min_objective(opt, CalibObjective, &cd);
	nlopt_set_xtol_rel(opt, 1e-10);
	nlopt_set_ftol_rel(opt, 1e-14);
	nlopt_set_maxeval(opt, 5000);
	res = nlopt_optimize(opt, x, &minf);
	nlopt_destroy(opt);
	if (res < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Huff calibration failed"),
				 errdetail("NLopt returned code %d.", (int) res)));
	/* re-evaluate at the optimum so scale and sse belong to the returned point */
	CalibSSE(x, &cd);

	values[0] = Float8GetDatum(x[0]);
	values[1] = Float8GetDatum(x[1]);
	values[2] = Float8GetDatum(cd.scale);
	values[3] = Float8GetDatum(cd.sse);
	values[4] = Float8GetDatum(sqrt(cd.sse / nos));
	if (sst > 0.0)
		values[5] = Float8GetDatum(1.0 - cd.sse / sst);
	else
		nulls[5] = true;
	values[6] = Int32GetDatum(nos);
	values[7] = Int32GetDatum(cd.evaluations);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Maximum-likelihood (and least-squares) fit of the Huff model with analytic gradients, optionally with a free
 * attractiveness multiplier per store.
 *
 * Observations are either store totals (observed sales per store) or zone-level flows (customers or sales of
 * zone z at store j). Each observation o has a model value m_o(theta) = sum over its pairs of D_z * P_zj, and
 * the fitted value is scale * m_o.
 *   ml: observations ~ Poisson(scale * m_o); the scale is profiled out (scale = sum y / sum m), which leaves
 *       the multinomial log-likelihood  sum y_o log(m_o / sum m): the fit does not depend on the unit of y.
 *   ls: least squares, scale solved in closed form (as huff_calibrate).
 * Gradient: with P_zj = u_zj / sum_k u_zk and log u_zj = alpha log A_j + gamma_j - beta log d_zj,
 *   d m_o / d theta = sum over its pairs D_z P_zj (g_zj - sum_k P_zk g_zk),  g = (log A, -log d, e_j),
 * and d f / d theta = sum_o w_o d m_o / d theta with w_o = d f / d m_o (for ls by the envelope theorem).
 * A free multiplier per store makes alpha unidentifiable (alpha log A_j + gamma_j is one free number per store),
 * so alpha is then held at alpha0 and one store is the reference (multiplier 1).
 */
#define FIT_GAMMA_BOUND 6.907755278982137	/* ln 1000: multipliers within [1/1000, 1000] */

typedef struct FitData
{
	int			npairs;
	int64	   *zone;			/* per pair, sorted by zone */
	double	   *log_a;
	double	   *log_d;
	double	   *demand;
	int		   *gamma;			/* per pair: index of the store's free multiplier, -1 when none */
	int		   *obs;			/* per pair: observation it contributes to, -1 when none */
	double	   *prob;			/* scratch per pair: P_zj of the last evaluation */
	int			nobs;
	double	   *y;
	double	   *m;				/* scratch per observation: model value */
	double	   *w;				/* scratch per observation: d f / d m */
	int			ngamma;
	bool		ml;
	bool		fit_alpha;		/* false when multipliers are fitted */
	double		alpha_fixed;
	double		scale;
	int			evaluations;
	nlopt_opt	opt;
} FitData;

/* Unpacks x into alpha, beta and the multipliers' gamma (log utility factors). */
static inline void
FitUnpack(const FitData *fd, const double *x, double *alpha, double *beta, const double **gamma)
{
	if (fd->fit_alpha)
	{
		*alpha = x[0];
		*beta = x[1];
		*gamma = NULL;
	}
	else
	{
		*alpha = fd->alpha_fixed;
		*beta = x[0];
		*gamma = x + 1;
	}
}

/* Model values m_o and the probabilities P_zj at x. */
static void
FitPredict(FitData *fd, const double *x)
{
	double		alpha,
				beta;
	const double *gamma;
	int			start = 0;

	FitUnpack(fd, x, &alpha, &beta, &gamma);
	memset(fd->m, 0, sizeof(double) * fd->nobs);
	while (start < fd->npairs)
	{
		int			end = start;
		double		top = -INFINITY,
					total = 0.0;

		while (end < fd->npairs && fd->zone[end] == fd->zone[start])
			end++;
		for (int i = start; i < end; i++)
		{
			double		e = alpha * fd->log_a[i] - beta * fd->log_d[i];

			if (gamma && fd->gamma[i] >= 0)
				e += gamma[fd->gamma[i]];
			fd->prob[i] = e;
			if (e > top)
				top = e;
		}
		for (int i = start; i < end; i++)
		{
			fd->prob[i] = exp(fd->prob[i] - top);
			total += fd->prob[i];
		}
		for (int i = start; i < end; i++)
		{
			fd->prob[i] /= total;
			if (fd->obs[i] >= 0)
				fd->m[fd->obs[i]] += fd->demand[i] * fd->prob[i];
		}
		start = end;
	}
}

/* NLopt objective: negative profiled log-likelihood (ml) or SSE (ls), with its gradient. */
static double
FitObjective(unsigned n, const double *x, double *grad, void *data)
{
	FitData    *fd = (FitData *) data;
	double		f = 0.0;
	double		sum_y = 0.0,
				sum_m = 0.0;
	int			start = 0;

	/* no ereport from inside NLopt: a pending cancel stops the optimiser, and is served after it returns */
	if (InterruptPending && fd->opt != NULL)
		nlopt_force_stop(fd->opt);
	fd->evaluations++;
	FitPredict(fd, x);
	if (fd->ml)
	{
		for (int o = 0; o < fd->nobs; o++)
		{
			sum_y += fd->y[o];
			sum_m += fd->m[o];
		}
		if (!(sum_m > 0.0))
			sum_m = DBL_MIN;
		for (int o = 0; o < fd->nobs; o++)
		{
			double		mo = fd->m[o] > DBL_MIN ? fd->m[o] : DBL_MIN;	/* only under extreme parameters */

			if (fd->y[o] > 0.0)
				f -= fd->y[o] * log(mo);
			fd->w[o] = -fd->y[o] / mo + sum_y / sum_m;
		}
		f += sum_y * log(sum_m);
		fd->scale = sum_y / sum_m;
	}
	else
	{
		double		sym = 0.0,
					smm = 0.0;

		for (int o = 0; o < fd->nobs; o++)
		{
			sym += fd->y[o] * fd->m[o];
			smm += fd->m[o] * fd->m[o];
		}
		fd->scale = smm > 0.0 ? sym / smm : 0.0;
		for (int o = 0; o < fd->nobs; o++)
		{
			double		e = fd->y[o] - fd->scale * fd->m[o];

			f += e * e;
			fd->w[o] = -2.0 * fd->scale * e;
		}
	}
	if (grad == NULL)
		return f;

	memset(grad, 0, sizeof(double) * n);
	while (start < fd->npairs)
	{
		int			end = start;
		double		wz = 0.0,	/* sum_j w_j P_zj */
					wa = 0.0,	/* sum_j w_j P_zj log A_j */
					wl = 0.0,	/* sum_j w_j P_zj log d_zj */
					pa = 0.0,	/* sum_j P_zj log A_j */
					pl = 0.0;	/* sum_j P_zj log d_zj */
		double		demand = fd->demand[start];

		while (end < fd->npairs && fd->zone[end] == fd->zone[start])
			end++;
		for (int i = start; i < end; i++)
		{
			double		p = fd->prob[i];
			double		wp = fd->obs[i] >= 0 ? fd->w[fd->obs[i]] * p : 0.0;

			wz += wp;
			wa += wp * fd->log_a[i];
			wl += wp * fd->log_d[i];
			pa += p * fd->log_a[i];
			pl += p * fd->log_d[i];
		}
		if (fd->fit_alpha)
		{
			grad[0] += demand * (wa - wz * pa);
			grad[1] -= demand * (wl - wz * pl);
		}
		else
		{
			grad[0] -= demand * (wl - wz * pl);
			for (int i = start; i < end; i++)
				if (fd->gamma[i] >= 0)
				{
					double		wi = fd->obs[i] >= 0 ? fd->w[fd->obs[i]] : 0.0;

					grad[1 + fd->gamma[i]] += demand * fd->prob[i] * (wi - wz);
				}
		}
		start = end;
	}
	return f;
}

typedef struct ZoneStoreKey
{
	int64		zone;
	int64		store;
	int			i;
} ZoneStoreKey;

static int
ZoneStoreKeyCmp(const void *a, const void *b)
{
	const ZoneStoreKey *x = a;
	const ZoneStoreKey *y = b;

	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	if (x->store != y->store)
		return x->store < y->store ? -1 : 1;
	return 0;
}

static const char *
FitStatusName(nlopt_result r)
{
	switch (r)
	{
		case NLOPT_SUCCESS:
			return "success";
		case NLOPT_STOPVAL_REACHED:
			return "stopval reached";
		case NLOPT_FTOL_REACHED:
			return "ftol reached";
		case NLOPT_XTOL_REACHED:
			return "xtol reached";
		case NLOPT_MAXEVAL_REACHED:
			return "max evaluations reached";
		case NLOPT_MAXTIME_REACHED:
			return "max time reached";
		case NLOPT_ROUNDOFF_LIMITED:
			return "roundoff limited";
		case NLOPT_FAILURE:
			return "failure";
		default:
			return "error";
	}
}

/*
 * huff_fit(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[], demand float8[],
 *          obs_zone_id int8[], obs_store_id int8[], observed float8[], method text, fit_attractiveness bool,
 *          reference_store int8, alpha0, beta0, min_distance, max_evaluations)
 * obs_zone_id empty: store totals; otherwise zone-level flows, one per (zone, store).
 */
PG_FUNCTION_INFO_V1(huff_fit);
Datum
huff_fit(PG_FUNCTION_ARGS)
{
	int			nz,
				ns,
				na,
				nd,
				ndm,
				noz,
				nos,
				nov;
	int64	   *zone,
			   *store,
			   *obs_zone,
			   *obs_store;
	double	   *attr,
			   *dist,
			   *demand,
			   *observed;
	text	   *method_t;
	char	   *method;
	bool		ml,
				fit_attr,
				cell_level;
	bool		have_ref;
	int64		ref_store = 0;
	int			max_eval;
	HuffParams	p;
	FitData		fd;
	ZoneStoreKey *order;
	ZoneStoreKey *okeys;		/* observations sorted by (zone, store); zone 0 for store totals */
	int64	   *obs_stores_sorted;
	int			nobs_stores = 0;
	int		   *pairs_per_obs;
	int64	   *gamma_store;
	int			nparams;
	double	   *x,
			   *lb,
			   *ub;
	double		minf;
	nlopt_opt	opt;
	nlopt_result res;
	double		sum_y = 0.0,
				mean_y,
				sst = 0.0,
				sse = 0.0,
				ll = 0.0,
				ll0 = 0.0,
				dev = 0.0,
				dev0 = 0.0,
				ape = 0.0;
	int			nape = 0;
	bool		ll_finite = true;
	TupleDesc	desc;
	Datum		values[17];
	bool		nulls[17];

	HuffRequireNotNull(fcinfo, 0, 9);
	HuffRequireNotNull(fcinfo, 11, 14);
	zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(0), "zone_id", &nz);
	store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(1), "store_id", &ns);
	attr = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(2), "attractiveness", &na);
	dist = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(3), "distance", &nd);
	demand = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(4), "demand", &ndm);
	obs_zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(5), "obs_zone_id", &noz);
	obs_store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(6), "obs_store_id", &nos);
	observed = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(7), "observed", &nov);
	method_t = PG_GETARG_TEXT_PP(8);
	method = text_to_cstring(method_t);
	fit_attr = PG_GETARG_BOOL(9);
	have_ref = !PG_ARGISNULL(10);
	if (have_ref)
		ref_store = PG_GETARG_INT64(10);
	p.alpha = PG_GETARG_FLOAT8(11);
	p.beta = PG_GETARG_FLOAT8(12);
	p.min_distance = PG_GETARG_FLOAT8(13);
	p.threshold = 0.0;
	p.cutoff = 0.0;
	max_eval = PG_GETARG_INT32(14);
	HuffCheckParams(&p);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "huff_fit must return a composite type");

	if (strcmp(method, "ml") == 0)
		ml = true;
	else if (strcmp(method, "ls") == 0)
		ml = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown calibration method \"%s\"", method),
				 errhint("Use ml (maximum likelihood) or ls (least squares).")));
	if (max_eval < 1 || max_eval > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_evaluations must be between 1 and 1000000"),
				 errdetail("max_evaluations is %d.", max_eval)));
	if (ns != nz || na != nz || nd != nz || ndm != nz)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("zone_id, store_id, attractiveness, distance and demand arrays must have the same length")));
	if (nov != nos)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("obs_store_id and observed arrays must have the same length")));
	cell_level = noz > 0;
	if (cell_level && noz != nos)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("obs_zone_id must be empty (store totals) or as long as obs_store_id (zone-level flows)")));
	if (nos < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration needs at least 3 observations"),
				 errdetail("%d observations were given.", nos)));
	if (fit_attr && !cell_level)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per-store attractiveness needs zone-level observations"),
				 errdetail("With store totals, one free multiplier per store and the scale fit every store exactly, whatever alpha and beta are."),
				 errhint("Pass flows per zone and store (site_observed_flow), or fit alpha and beta only.")));
	if (fit_attr && !(p.alpha > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha0 must be positive when per-store attractiveness is fitted"),
				 errdetail("alpha is held at alpha0 and the multipliers scale attractiveness A to the power alpha.")));
	for (int o = 0; o < nos; o++)
	{
		if (isnan(observed[o]) || isinf(observed[o]) || observed[o] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("observed sales must be non-negative finite numbers"),
					 errdetail("Store " INT64_FORMAT " has %g.", obs_store[o], observed[o])));
		sum_y += observed[o];
	}
	if (!(sum_y > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observed sales are all zero"),
				 errdetail("There is nothing to fit.")));

	/* observations sorted by (zone, store): duplicates are errors, pairs find theirs by binary search */
	okeys = palloc(sizeof(ZoneStoreKey) * nos);
	for (int o = 0; o < nos; o++)
	{
		okeys[o].zone = cell_level ? obs_zone[o] : 0;
		okeys[o].store = obs_store[o];
		okeys[o].i = o;
	}
	qsort(okeys, nos, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
	for (int o = 1; o < nos; o++)
		if (ZoneStoreKeyCmp(&okeys[o], &okeys[o - 1]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 cell_level ? errmsg("zone " INT64_FORMAT " and store " INT64_FORMAT " have more than one observation",
										 okeys[o].zone, okeys[o].store)
					 : errmsg("store " INT64_FORMAT " has more than one observed sales figure", okeys[o].store)));
	/* the distinct observed stores, sorted: they carry the free multipliers */
	obs_stores_sorted = palloc(sizeof(int64) * nos);
	for (int o = 0; o < nos; o++)
		obs_stores_sorted[o] = obs_store[o];
	qsort(obs_stores_sorted, nos, sizeof(int64), Int64Cmp);
	for (int o = 0; o < nos; o++)
		if (nobs_stores == 0 || obs_stores_sorted[o] != obs_stores_sorted[nobs_stores - 1])
			obs_stores_sorted[nobs_stores++] = obs_stores_sorted[o];
	if (fit_attr)
	{
		if (!have_ref)
			ref_store = obs_stores_sorted[0];
		else if (!bsearch(&ref_store, obs_stores_sorted, nobs_stores, sizeof(int64), Int64Cmp))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reference store " INT64_FORMAT " has no observation", ref_store),
					 errhint("The reference store must be one of the observed stores.")));
		if (nobs_stores < 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per-store attractiveness needs observations of at least 2 stores")));
	}

	memset(&fd, 0, sizeof(fd));
	fd.npairs = nz;
	fd.nobs = nos;
	fd.ml = ml;
	fd.fit_alpha = !fit_attr;
	fd.alpha_fixed = p.alpha;
	fd.y = observed;
	fd.m = palloc0(sizeof(double) * nos);
	fd.w = palloc0(sizeof(double) * nos);
	fd.zone = palloc(sizeof(int64) * (nz > 0 ? nz : 1));
	fd.log_a = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd.log_d = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd.demand = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd.gamma = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	fd.obs = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	fd.prob = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	pairs_per_obs = palloc0(sizeof(int) * nos);
	gamma_store = palloc(sizeof(int64) * nobs_stores);
	fd.ngamma = 0;
	if (fit_attr)
		for (int k = 0; k < nobs_stores; k++)
			if (obs_stores_sorted[k] != ref_store)
				gamma_store[fd.ngamma++] = obs_stores_sorted[k];

	order = palloc(sizeof(ZoneStoreKey) * (nz > 0 ? nz : 1));
	for (int i = 0; i < nz; i++)
	{
		HuffCheckRow(store[i], attr[i], dist[i], demand[i]);
		order[i].zone = zone[i];
		order[i].store = store[i];
		order[i].i = i;
	}
	qsort(order, nz, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
	for (int k = 0; k < nz; k++)
	{
		int			i = order[k].i;
		ZoneStoreKey key;
		ZoneStoreKey *hit;
		int64	   *g;
		double		d = dist[i] < p.min_distance ? p.min_distance : dist[i];

		if (k > 0 && order[k].zone == order[k - 1].zone && order[k].store == order[k - 1].store)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("site " INT64_FORMAT " appears more than once in zone " INT64_FORMAT, store[i], zone[i])));
		if (k > 0 && order[k].zone == order[k - 1].zone && demand[i] != fd.demand[k - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("demand differs between rows of zone " INT64_FORMAT, zone[i])));
		fd.zone[k] = zone[i];
		fd.log_a[k] = log(attr[i]);
		fd.log_d[k] = log(d);
		fd.demand[k] = demand[i];
		key.zone = cell_level ? zone[i] : 0;
		key.store = store[i];
		key.i = 0;
		hit = bsearch(&key, okeys, nos, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
		fd.obs[k] = hit ? hit->i : -1;
		if (hit)
			pairs_per_obs[hit->i]++;
		g = fd.ngamma > 0 ? bsearch(&store[i], gamma_store, fd.ngamma, sizeof(int64), Int64Cmp) : NULL;
		fd.gamma[k] = g ? (int) (g - gamma_store) : -1;
	}
	/* a positive observation the model cannot produce makes the likelihood zero whatever the parameters */
	for (int o = 0; o < nos; o++)
		if (ml && pairs_per_obs[o] == 0 && observed[o] > 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 cell_level ? errmsg("zone " INT64_FORMAT " has observed sales at store " INT64_FORMAT " but is not within its reach",
										 obs_zone[o], obs_store[o])
					 : errmsg("store " INT64_FORMAT " has observed sales but no zone within reach", obs_store[o]),
					 errhint("Raise the cut-off, or leave the observation out.")));

	nparams = fd.fit_alpha ? 2 : 1 + fd.ngamma;
	x = palloc(sizeof(double) * nparams);
	lb = palloc(sizeof(double) * nparams);
	ub = palloc(sizeof(double) * nparams);
	if (fd.fit_alpha)
	{
		x[0] = p.alpha;
		x[1] = p.beta;
		lb[0] = 0.0;
		ub[0] = HUFF_ALPHA_MAX;
		lb[1] = 0.0;
		ub[1] = HUFF_BETA_MAX;
	}
	else
	{
		x[0] = p.beta;
		lb[0] = 0.0;
		ub[0] = HUFF_BETA_MAX;
		for (int k = 0; k < fd.ngamma; k++)
		{
			x[1 + k] = 0.0;
			lb[1 + k] = -FIT_GAMMA_BOUND * p.alpha;
			ub[1 + k] = FIT_GAMMA_BOUND * p.alpha;
		}
	}
	opt = nlopt_create(NLOPT_LD_LBFGS, nparams);
	if (opt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
	nlopt_set_lower_bounds(opt, lb);
	nlopt_set_upper_bounds(opt, ub);
	nlopt_set_min_objective(opt, FitObjective, &fd);
	nlopt_set_ftol_rel(opt, 1e-13);
	nlopt_set_xtol_rel(opt, 1e-10);
	nlopt_set_maxeval(opt, max_eval);
	fd.opt = opt;
	res = nlopt_optimize(opt, x, &minf);
	nlopt_destroy(opt);
	fd.opt = NULL;
	CHECK_FOR_INTERRUPTS();		/* a cancel only stopped the optimiser (see FitObjective) */
	if (res == NLOPT_INVALID_ARGS || res == NLOPT_OUT_OF_MEMORY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Huff calibration failed"),
				 errdetail("NLopt returned code %d.", (int) res)));

	/* goodness of fit at the returned point (not counted as an evaluation of the optimiser) */
	(void) FitObjective(nparams, x, NULL, &fd);
	fd.evaluations--;
	mean_y = sum_y / nos;
	for (int o = 0; o < nos; o++)
	{
		double		yo = observed[o];
		double		mu = fd.scale * fd.m[o];
		double		e = yo - mu;

		sse += e * e;
		sst += (yo - mean_y) * (yo - mean_y);
		if (yo > 0.0)
		{
			ape += fabs(e) / yo;
			nape++;
			if (mu > 0.0)
			{
				ll += yo * log(mu);
				dev += 2.0 * (yo * log(yo / mu) - e);
			}
			else
				ll_finite = false;
			ll0 += yo * log(mean_y);
			dev0 += 2.0 * (yo * log(yo / mean_y) - (yo - mean_y));
		}
		else
		{
			dev += 2.0 * mu;
			dev0 += 2.0 * mean_y;
		}
		ll -= mu + lgamma(yo + 1.0);
		ll0 -= mean_y + lgamma(yo + 1.0);
	}

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(ml ? "ml" : "ls");
	values[1] = Float8GetDatum(fd.fit_alpha ? x[0] : p.alpha);
	values[2] = Float8GetDatum(fd.fit_alpha ? x[1] : x[0]);
	values[3] = Float8GetDatum(fd.scale);
	values[4] = Float8GetDatum(ll);
	nulls[4] = !ll_finite;
	values[5] = Float8GetDatum(ll0);
	values[6] = Float8GetDatum(1.0 - dev / dev0);
	nulls[6] = !ll_finite || !(dev0 > 0.0);
	values[7] = Float8GetDatum(1.0 - sse / sst);
	nulls[7] = !(sst > 0.0);
	values[8] = Float8GetDatum(sqrt(sse / nos));
	values[9] = Float8GetDatum(100.0 * ape / (nape > 0 ? nape : 1));
	nulls[9] = nape == 0;
	values[10] = Int32GetDatum(nos);
	values[11] = Int32GetDatum(nparams + 1);	/* and the scale */
	values[12] = Int32GetDatum(fd.evaluations);
	values[13] = BoolGetDatum(res == NLOPT_SUCCESS || res == NLOPT_FTOL_REACHED || res == NLOPT_XTOL_REACHED ||
							  res == NLOPT_STOPVAL_REACHED);
	values[14] = CStringGetTextDatum(FitStatusName(res));
	if (fit_attr)
	{
		Datum	   *ids = palloc(sizeof(Datum) * nobs_stores);
		Datum	   *factors = palloc(sizeof(Datum) * nobs_stores);

		for (int k = 0; k < nobs_stores; k++)
		{
			int64	   *g = bsearch(&obs_stores_sorted[k], gamma_store, fd.ngamma, sizeof(int64), Int64Cmp);

			ids[k] = Int64GetDatum(obs_stores_sorted[k]);
			factors[k] = Float8GetDatum(g ? exp(x[1 + (g - gamma_store)] / p.alpha) : 1.0);
		}
		values[15] = PointerGetDatum(construct_array(ids, nobs_stores, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[16] = PointerGetDatum(construct_array(factors, nobs_stores, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	else
	{
		nulls[15] = true;
		nulls[16] = true;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

typedef struct ZoneRef
{
	int64		zone;
	int			i;
} ZoneRef;

static int
ZoneRefCmp(const void *a, const void *b)
{
	int64		x = ((const ZoneRef *) a)->zone;
	int64		y = ((const ZoneRef *) b)->zone;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Batch scoring in one pass (site_score_candidates): the zones, stores and candidates come in as arrays (one
 * scan of each table), the zones are bucketed by grid cell in C, and each site meets the zones of the cells
 * its cut-off circle touches: the pairs the SQL grid join found, measured with the same formula.
 */
typedef struct GridIndex
{
	SiteGrid	g;
	int			n;
	int64	   *cell;			/* sorted cells of the points */
	int		   *point;			/* the point at each sorted position */
} GridIndex;

static void
GridIndexBuild(GridIndex *gi, double radius, const double *lon, const double *lat, int n)
{
	KeyOrder   *cp = palloc(sizeof(KeyOrder) * (n > 0 ? n : 1));

	SiteGridInit(&gi->g, radius);
	for (int i = 0; i < n; i++)
	{
		HuffCheckLonLat(lon[i], lat[i]);
		cp[i].key = SiteGridPointCell(&gi->g, lon[i], lat[i]);
		cp[i].i = i;
	}
	qsort(cp, n, sizeof(KeyOrder), KeyOrderCmp);
	gi->n = n;
	gi->cell = palloc(sizeof(int64) * (n > 0 ? n : 1));
	gi->point = palloc(sizeof(int) * (n > 0 ? n : 1));
	for (int i = 0; i < n; i++)
	{
		gi->cell[i] = cp[i].key;
		gi->point[i] = cp[i].i;
	}
	pfree(cp);
}

/* First sorted position whose cell is >= cell. */
static int
GridLowerBound(const GridIndex *gi, int64 cell)
{
	int			lo = 0,
				hi = gi->n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (gi->cell[mid] < cell)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The points of gi within the grid's cells around lon/lat, appended to *out (grown as needed); a point is
 * listed once because every point lies in exactly one cell and the cells are distinct.
 */
static int
GridNear(const GridIndex *gi, double lon, double lat, int64 **cells, int *cells_cap, int **out, int *out_cap)
{
	int			nc = SiteGridCapCells(&gi->g, lon, lat, cells, cells_cap);
	int			n = 0;

	for (int c = 0; c < nc; c++)
		for (int k = GridLowerBound(gi, (*cells)[c]); k < gi->n && gi->cell[k] == (*cells)[c]; k++)
		{
			if (n == *out_cap)
			{
				*out_cap *= 2;
				*out = repalloc_huge(*out, sizeof(int) * (Size) *out_cap);
			}
			(*out)[n++] = gi->point[k];
		}
	return n;
}

/* An array argument of the batch functions: one-dimensional, no nulls, the expected length. */
static const void *
BatchArray(FunctionCallInfo fcinfo, int arg, Oid elemtype, const char *what, int expected, int *n)
{
	const void *p = HuffPlainArray(PG_GETARG_ARRAYTYPE_P(arg), elemtype, what, n);

	if (expected >= 0 && *n != expected)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s has %d elements, expected %d", what, *n, expected)));
	return p;
}

/*
 * huff_impact_batch(zone_id int8[], zone_lon float8[], zone_lat float8[], demand float8[],
 *                   store_id int8[], store_own bool[], store_lon float8[], store_lat float8[], store_attr float8[],
 *                   cand_id int8[], cand_lon float8[], cand_lat float8[], cand_attr float8[],
 *                   alpha, beta, min_distance, threshold, cutoff) -> huff_impact[]
 * The same result as huff_impact_geo over every (zone, site) pair within cutoff metres.
 */
PG_FUNCTION_INFO_V1(huff_impact_batch);
Datum
huff_impact_batch(PG_FUNCTION_ARGS)
{
	int			nz,
				n,
				ns,
				nc;
	const int64 *zid = BatchArray(fcinfo, 0, INT8OID, "zone_id", -1, &nz);
	const double *zlon = BatchArray(fcinfo, 1, FLOAT8OID, "zone_lon", nz, &n);
	const double *zlat = BatchArray(fcinfo, 2, FLOAT8OID, "zone_lat", nz, &n);
	const double *zdem = BatchArray(fcinfo, 3, FLOAT8OID, "demand", nz, &n);
	const int64 *sid = BatchArray(fcinfo, 4, INT8OID, "store_id", -1, &ns);
	const bool *sown = BatchArray(fcinfo, 5, BOOLOID, "store_own", ns, &n);
	const double *slon = BatchArray(fcinfo, 6, FLOAT8OID, "store_lon", ns, &n);
	const double *slat = BatchArray(fcinfo, 7, FLOAT8OID, "store_lat", ns, &n);
	const double *sattr = BatchArray(fcinfo, 8, FLOAT8OID, "store_attr", ns, &n);
	const int64 *cid = BatchArray(fcinfo, 9, INT8OID, "cand_id", -1, &nc);
	const double *clon = BatchArray(fcinfo, 10, FLOAT8OID, "cand_lon", nc, &n);
	const double *clat = BatchArray(fcinfo, 11, FLOAT8OID, "cand_lat", nc, &n);
	const double *cattr = BatchArray(fcinfo, 12, FLOAT8OID, "cand_attr", nc, &n);
	HuffParams	p;
	HuffState	state;
	GridIndex	gi;
	int			cells_cap = 64,
				near_cap = 1024;
	int64	   *cells = palloc(sizeof(int64) * cells_cap);
	int		   *near = palloc(sizeof(int) * near_cap);
	Oid			elemtype;
	TupleDesc	desc = HuffResultDesc(fcinfo, &elemtype);
	const double a = 6378137.0;
	const double b = a * (1.0 - 1.0 / 298.257223563);
	const double radius = (2.0 * a + b) / 3.0;
	double	   *zvec;
	double		min_dot;
	ZoneRef    *sorder;
	int64	   *store_ids;
	int		   *rzone;
	int64		rzone_cap;
	HuffPresorted pre;

	p.alpha = PG_GETARG_FLOAT8(13);
	p.beta = PG_GETARG_FLOAT8(14);
	p.min_distance = PG_GETARG_FLOAT8(15);
	p.threshold = PG_GETARG_FLOAT8(16);
	p.cutoff = PG_GETARG_FLOAT8(17);
	HuffCheckParams(&p);
	if (!(p.cutoff > 0.0) || isinf(p.cutoff))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cutoff must be a positive finite number"),
				 errdetail("cutoff is %g.", p.cutoff)));
	for (int i = 0; i < nz; i++)
		HuffCheckRow(zid[i], 1.0, 0.0, zdem[i]);
	GridIndexBuild(&gi, p.cutoff, zlon, zlat, nz);
	/*
	 * Unit vectors of the zones: a dot product rejects most pairs beyond the cut-off without trigonometry; the
	 * margin (1e-12, a few metres) leaves every pair near the cut-off to the exact formula below
	 */
	zvec = palloc(sizeof(double) * 3 * (nz > 0 ? nz : 1));
	for (int i = 0; i < nz; i++)
	{
		double		la = zlat[i] * M_PI / 180.0,
					lo = zlon[i] * M_PI / 180.0;

		zvec[3 * i] = cos(la) * cos(lo);
		zvec[3 * i + 1] = cos(la) * sin(lo);
		zvec[3 * i + 2] = sin(la);
	}
	min_dot = p.cutoff / radius >= M_PI ? -2.0 : cos(p.cutoff / radius) - 1e-12;

	/* stores, then candidates, each in id order: the order of the rows within a zone */
	sorder = palloc(sizeof(ZoneRef) * (ns + nc + 1));
	for (int j = 0; j < ns; j++)
	{
		sorder[j].zone = sid[j];
		sorder[j].i = j;
	}
	for (int j = 0; j < nc; j++)
	{
		sorder[ns + j].zone = cid[j];
		sorder[ns + j].i = j;
	}
	qsort(sorder, ns, sizeof(ZoneRef), ZoneRefCmp);
	qsort(sorder + ns, nc, sizeof(ZoneRef), ZoneRefCmp);
	for (int j = 1; j < ns + nc; j++)
		if (j != ns && sorder[j].zone == sorder[j - 1].zone)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("%s " INT64_FORMAT " appears more than once", j < ns ? "store" : "candidate", sorder[j].zone)));
	store_ids = palloc(sizeof(int64) * (ns + 1));
	for (int j = 0; j < ns; j++)
		store_ids[j] = sorder[j].zone;
	/* zone ids must be unique: rows are grouped by their position in the arrays */
	{
		int64	   *zs = palloc(sizeof(int64) * (nz + 1));

		memcpy(zs, zid, sizeof(int64) * nz);
		qsort(zs, nz, sizeof(int64), Int64Cmp);
		for (int i = 1; i < nz; i++)
			if (zs[i] == zs[i - 1])
				ereport(ERROR,
						(errcode(ERRCODE_CARDINALITY_VIOLATION),
						 errmsg("zone " INT64_FORMAT " appears more than once", zs[i])));
		pfree(zs);
	}

	memset(&state, 0, sizeof(state));
	state.have_params = true;
	state.params = p;
	state.cap = 1024;
	state.rows = palloc(sizeof(HuffRow) * state.cap);
	rzone_cap = 1024;
	rzone = palloc(sizeof(int) * rzone_cap);
	for (int j = 0; j < ns + nc; j++)
	{
		bool		is_cand = j >= ns;
		int			k = sorder[j].i;
		int32		dense = is_cand ? j - ns : j;
		int64		site = is_cand ? cid[k] : sid[k];
		double		lon = is_cand ? clon[k] : slon[k];
		double		lat = is_cand ? clat[k] : slat[k];
		double		attr = is_cand ? cattr[k] : sattr[k];
		int32		role = is_cand ? ROLE_CANDIDATE : (sown[k] ? ROLE_OWN : ROLE_COMPETITOR);
		double		sin_s,
					cos_s,
					sx,
					sy;
		int			nn;

		HuffCheckLonLat(lon, lat);
		HuffCheckRow(site, attr, 0.0, 0.0);
		sin_s = sin(lat * M_PI / 180.0);
		cos_s = cos(lat * M_PI / 180.0);
		sx = cos_s * cos(lon * M_PI / 180.0);
		sy = cos_s * sin(lon * M_PI / 180.0);
		nn = GridNear(&gi, lon, lat, &cells, &cells_cap, &near, &near_cap);
		if ((j & 255) == 0)
			CHECK_FOR_INTERRUPTS();
		HuffStateReserve(&state, nn, CurrentMemoryContext);
		if (state.cap > rzone_cap)
		{
			rzone_cap = state.cap;
			rzone = repalloc_huge(rzone, sizeof(int) * (Size) rzone_cap);
		}
		for (int q = 0; q < nn; q++)
		{
			int			i = near[q];
			double		elat,
						d_lon,
						cos_d_lon,
						cos_lat_e,
						sin_lat_e,
						a1,
						a2,
						d;
			HuffRow    *r;

			if (zvec[3 * i] * sx + zvec[3 * i + 1] * sy + zvec[3 * i + 2] * sin_s < min_dot)
				continue;
			/* GreatCircle(site, zone) with the site's trigonometry hoisted, as huff_impact_cell_transfn */
			elat = zlat[i] * M_PI / 180.0;
			d_lon = (zlon[i] - lon) * M_PI / 180.0;
			cos_d_lon = cos(d_lon);
			cos_lat_e = cos(elat);
			sin_lat_e = sin(elat);
			a1 = cos_lat_e * sin(d_lon);
			a2 = cos_s * sin_lat_e - sin_s * cos_lat_e * cos_d_lon;
			d = radius * atan2(sqrt(a1 * a1 + a2 * a2), sin_s * sin_lat_e + cos_s * cos_lat_e * cos_d_lon);
			if (d > p.cutoff)
				continue;
			r = &state.rows[state.n++];
			r->zone = zid[i];
			r->site = site;
			r->attractiveness = attr;
			r->distance = d;
			r->demand = zdem[i];
			r->role = role;
			r->pad = dense;
			rzone[state.n - 1] = i;
		}
	}
	/* group the rows by zone with a stable counting sort: within a zone they stay in site order */
	{
		int64	   *first = palloc0(sizeof(int64) * (nz + 1));

		pre.idx = palloc_extended(sizeof(HuffRow *) * (state.n + 1), MCXT_ALLOC_HUGE);
		for (int64 r = 0; r < state.n; r++)
			first[rzone[r] + 1]++;
		for (int i = 0; i < nz; i++)
			first[i + 1] += first[i];
		for (int64 r = 0; r < state.n; r++)
			pre.idx[first[rzone[r]]++] = &state.rows[r];
	}
	pre.store_ids = store_ids;
	pre.nstores = ns;
	pre.ncandidates = nc;
	PG_RETURN_DATUM(HuffImpactCompute(&state, &pre, desc, elemtype));
}

/*
 * site_catchment_batch(zone_lon float8[], zone_lat float8[], population float8[], income float8[] (NaN: unknown),
 *                      cand_id int8[], cand_lon float8[], cand_lat float8[], comp_lon float8[], comp_lat float8[],
 *                      competitor_radius)
 * -> SETOF (candidate_id, population_1km, population_3km, population_5km, income_1km, income_3km, income_5km,
 *           competitors, nearest_competitor_m)
 * The numbers of site_catchment for every candidate at once; nearest_competitor_m is the nearest competitor at
 * any distance (null when there is none).
 */
PG_FUNCTION_INFO_V1(site_catchment_batch);
Datum
site_catchment_batch(PG_FUNCTION_ARGS)
{
	static const double radii[3] = {1000.0, 3000.0, 5000.0};
	int			nz,
				n,
				nc,
				nk;
	const double *zlon = BatchArray(fcinfo, 0, FLOAT8OID, "zone_lon", -1, &nz);
	const double *zlat = BatchArray(fcinfo, 1, FLOAT8OID, "zone_lat", nz, &n);
	const double *zpop = BatchArray(fcinfo, 2, FLOAT8OID, "population", nz, &n);
	const double *zinc = BatchArray(fcinfo, 3, FLOAT8OID, "income", nz, &n);
	const int64 *cid = BatchArray(fcinfo, 4, INT8OID, "cand_id", -1, &nc);
	const double *clon = BatchArray(fcinfo, 5, FLOAT8OID, "cand_lon", nc, &n);
	const double *clat = BatchArray(fcinfo, 6, FLOAT8OID, "cand_lat", nc, &n);
	const double *klon = BatchArray(fcinfo, 7, FLOAT8OID, "comp_lon", -1, &nk);
	const double *klat = BatchArray(fcinfo, 8, FLOAT8OID, "comp_lat", nk, &n);
	double		comp_radius = PG_GETARG_FLOAT8(9);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GridIndex	zg,
				kg;
	int			cells_cap = 64,
				near_cap = 1024;
	int64	   *cells;
	int		   *near;
	double	   *kvec;

	if (isnan(comp_radius) || isinf(comp_radius) || comp_radius <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("competitor_radius must be a positive finite number"),
				 errdetail("competitor_radius is %g.", comp_radius)));
	InitMaterializedSRF(fcinfo, 0);
	cells = palloc(sizeof(int64) * cells_cap);
	near = palloc(sizeof(int) * near_cap);
	for (int i = 0; i < nz; i++)
		if (isinf(zpop[i]) || isnan(zpop[i]) || zpop[i] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("population must be a non-negative finite number")));
	GridIndexBuild(&zg, radii[2], zlon, zlat, nz);
	GridIndexBuild(&kg, comp_radius, klon, klat, nk);
	/* unit vectors of the competitors, for the nearest one beyond the radius (largest dot product) */
	kvec = palloc(sizeof(double) * 3 * (nk > 0 ? nk : 1));
	for (int i = 0; i < nk; i++)
	{
		double		la = klat[i] * M_PI / 180.0,
					lo = klon[i] * M_PI / 180.0;

		kvec[3 * i] = cos(la) * cos(lo);
		kvec[3 * i + 1] = cos(la) * sin(lo);
		kvec[3 * i + 2] = sin(la);
	}
	for (int c = 0; c < nc; c++)
	{
		double		pop[3] = {0, 0, 0},
					pinc[3] = {0, 0, 0},
					pknown[3] = {0, 0, 0};
		bool		any_inc[3] = {false, false, false};
		int			ncomp = 0;
		double		nearest = 0.0;
		int			nn;
		Datum		values[9];
		bool		nulls[9];

		HuffCheckLonLat(clon[c], clat[c]);
		if ((c & 255) == 0)
			CHECK_FOR_INTERRUPTS();
		nn = GridNear(&zg, clon[c], clat[c], &cells, &cells_cap, &near, &near_cap);
		for (int q = 0; q < nn; q++)
		{
			int			i = near[q];
			double		d = GreatCircle(zlon[i], zlat[i], clon[c], clat[c]);

			for (int r = 0; r < 3; r++)
				if (d <= radii[r])
				{
					pop[r] += zpop[i];
					if (!isnan(zinc[i]))
					{
						pinc[r] += zpop[i] * zinc[i];
						pknown[r] += zpop[i];
						any_inc[r] = true;
					}
				}
		}
		nn = GridNear(&kg, clon[c], clat[c], &cells, &cells_cap, &near, &near_cap);
		for (int q = 0; q < nn; q++)
		{
			int			i = near[q];
			double		d = GreatCircle(klon[i], klat[i], clon[c], clat[c]);

			if (d <= comp_radius)
			{
				if (ncomp == 0 || d < nearest)
					nearest = d;
				ncomp++;
			}
		}
		if (ncomp == 0 && nk > 0)
		{
			/*
			 * None within the radius: the nearest of all by the largest dot product of unit vectors (the same
			 * order as great-circle distance), measured with GreatCircle; near-ties are all measured
			 */
			double		la = clat[c] * M_PI / 180.0,
						lo = clon[c] * M_PI / 180.0;
			double		cx = cos(la) * cos(lo),
						cy = cos(la) * sin(lo),
						cz = sin(la);
			double		best = -2.0;
			bool		found = false;

			for (int i = 0; i < nk; i++)
			{
				double		dot = kvec[3 * i] * cx + kvec[3 * i + 1] * cy + kvec[3 * i + 2] * cz;

				if (dot > best)
					best = dot;
			}
			for (int i = 0; i < nk; i++)
			{
				double		dot = kvec[3 * i] * cx + kvec[3 * i + 1] * cy + kvec[3 * i + 2] * cz;

				if (dot >= best - 1e-12)
				{
					double		d = GreatCircle(klon[i], klat[i], clon[c], clat[c]);

					if (!found || d < nearest)
						nearest = d;
					found = true;
				}
			}
		}
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum(cid[c]);
		for (int r = 0; r < 3; r++)
		{
			values[1 + r] = Float8GetDatum(pop[r]);
			values[4 + r] = Float8GetDatum(any_inc[r] && pknown[r] != 0.0 ? pinc[r] / pknown[r] : 0.0);
			nulls[4 + r] = !(any_inc[r] && pknown[r] != 0.0);
		}
		values[7] = Int32GetDatum(ncomp);
		values[8] = Float8GetDatum(nearest);
		nulls[8] = nk == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Appends an EWKB double (little endian, as the header says) to buf. */
static void
EwkbDouble(StringInfo buf, double v)
{
	uint64		bits;
	unsigned char b[8];

	memcpy(&bits, &v, 8);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char) (bits >> (8 * i));
	appendBinaryStringInfo(buf, (char *) b, 8);
}

static void
EwkbUint32(StringInfo buf, uint32 v)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	appendBinaryStringInfo(buf, (char *) b, 4);
}

typedef struct XY
{
	double		x;
	double		y;
} XY;

static int
XYCmp(const void *a, const void *b)
{
	const XY   *p = a;
	const XY   *q = b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return 0;
}

static inline double
XYCross(XY o, XY a, XY b)
{
	return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/*
 * The convex hull of points as EWKB (SRID 4326), the types ST_ConvexHull(ST_Collect(points)) gives: a point for
 * one distinct point, a line between the extremes when all are collinear, else a polygon (collinear boundary
 * points dropped). Planar in degrees, like the SQL it replaces.
 */
static bytea *
PointHullEwkb(XY *pts, int n)
{
	StringInfoData buf;
	XY		   *hull;
	int			k = 0,
				u = 0;
	bytea	   *out;

	qsort(pts, n, sizeof(XY), XYCmp);
	for (int i = 0; i < n; i++)		/* distinct points */
		if (u == 0 || XYCmp(&pts[i], &pts[u - 1]) != 0)
			pts[u++] = pts[i];
	n = u;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, 1);	/* little endian */
	if (n == 1)
	{
		EwkbUint32(&buf, 0x20000001);	/* point with SRID */
		EwkbUint32(&buf, 4326);
		EwkbDouble(&buf, pts[0].x);
		EwkbDouble(&buf, pts[0].y);
	}
	else
	{
		/* Andrew's monotone chain: lower then upper hull, counter-clockwise */
		hull = palloc(sizeof(XY) * (2 * n + 1));
		for (int i = 0; i < n; i++)
		{
			while (k >= 2 && XYCross(hull[k - 2], hull[k - 1], pts[i]) <= 0)
				k--;
			hull[k++] = pts[i];
		}
		for (int i = n - 2, t = k + 1; i >= 0; i--)
		{
			while (k >= t && XYCross(hull[k - 2], hull[k - 1], pts[i]) <= 0)
				k--;
			hull[k++] = pts[i];
		}
		/* hull[k - 1] == hull[0]: a closed ring of k - 1 distinct vertices */
		if (k - 1 < 3)
		{
			/* collinear: the line between the extremes (the first and last in sorted order) */
			EwkbUint32(&buf, 0x20000002);
			EwkbUint32(&buf, 4326);
			EwkbUint32(&buf, 2);
			EwkbDouble(&buf, pts[0].x);
			EwkbDouble(&buf, pts[0].y);
			EwkbDouble(&buf, pts[n - 1].x);
			EwkbDouble(&buf, pts[n - 1].y);
		}
		else
		{
			EwkbUint32(&buf, 0x20000003);
			EwkbUint32(&buf, 4326);
			EwkbUint32(&buf, 1);
			EwkbUint32(&buf, k);
			for (int i = 0; i < k; i++)
			{
				EwkbDouble(&buf, hull[i].x);
				EwkbDouble(&buf, hull[i].y);
			}
		}
	}
	out = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(out, VARHDRSZ + buf.len);
	memcpy(VARDATA(out), buf.data, buf.len);
	return out;
}

typedef struct CandZone
{
	int64		candidate;
	int64		zone;
} CandZone;

static int
CandZoneCmp(const void *a, const void *b)
{
	const CandZone *x = a;
	const CandZone *y = b;

	if (x->candidate != y->candidate)
		return x->candidate < y->candidate ? -1 : 1;
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	return 0;
}

/*
 * site_trade_area_hulls(zone_id int8[], zone_lon float8[], zone_lat float8[], zone_is_point bool[],
 *                       pair_candidate int8[], pair_zone int8[])
 * -> SETOF (candidate_id, zones, polygon_zones, zone_ids int8[], hull bytea)
 * Per candidate, its trade-area zones (the pairs), how many are polygons, and the EWKB convex hull of the
 * point zones (null when there are none); the caller unions polygon zones with PostGIS.
 */
PG_FUNCTION_INFO_V1(site_trade_area_hulls);
Datum
site_trade_area_hulls(PG_FUNCTION_ARGS)
{
	int			nz,
				n,
				np;
	const int64 *zid = BatchArray(fcinfo, 0, INT8OID, "zone_id", -1, &nz);
	const double *zlon = BatchArray(fcinfo, 1, FLOAT8OID, "zone_lon", nz, &n);
	const double *zlat = BatchArray(fcinfo, 2, FLOAT8OID, "zone_lat", nz, &n);
	const bool *zpoint = BatchArray(fcinfo, 3, BOOLOID, "zone_is_point", nz, &n);
	const int64 *pc = BatchArray(fcinfo, 4, INT8OID, "pair_candidate", -1, &np);
	const int64 *pz = BatchArray(fcinfo, 5, INT8OID, "pair_zone", np, &n);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ZoneRef    *zones = palloc(sizeof(ZoneRef) * (nz > 0 ? nz : 1));
	CandZone   *pairs = palloc(sizeof(CandZone) * (np > 0 ? np : 1));
	XY		   *pts = palloc(sizeof(XY) * (np > 0 ? np : 1));
	Datum	   *ids = palloc(sizeof(Datum) * (np > 0 ? np : 1));

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < nz; i++)
	{
		zones[i].zone = zid[i];
		zones[i].i = i;
	}
	qsort(zones, nz, sizeof(ZoneRef), ZoneRefCmp);
	for (int i = 0; i < np; i++)
	{
		pairs[i].candidate = pc[i];
		pairs[i].zone = pz[i];
	}
	qsort(pairs, np, sizeof(CandZone), CandZoneCmp);
	for (int k = 0; k < np;)
	{
		int64		cand = pairs[k].candidate;
		int			nzones = 0,
					npoly = 0,
					npts = 0;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		for (; k < np && pairs[k].candidate == cand; k++)
		{
			ZoneRef		key;
			ZoneRef    *hit;

			if (nzones > 0 && DatumGetInt64(ids[nzones - 1]) == pairs[k].zone)
				continue;		/* the same zone twice */
			key.zone = pairs[k].zone;
			key.i = 0;
			hit = bsearch(&key, zones, nz, sizeof(ZoneRef), ZoneRefCmp);
			if (hit == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("zone " INT64_FORMAT " of candidate " INT64_FORMAT " is not among the zones", pairs[k].zone, cand)));
			ids[nzones++] = Int64GetDatum(pairs[k].zone);
			if (zpoint[hit->i])
			{
				pts[npts].x = zlon[hit->i];
				pts[npts].y = zlat[hit->i];
				npts++;
			}
			else
				npoly++;
		}
		values[0] = Int64GetDatum(cand);
		values[1] = Int32GetDatum(nzones);
		values[2] = Int32GetDatum(npoly);
		values[3] = PointerGetDatum(construct_array(ids, nzones, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (npts > 0)
			values[4] = PointerGetDatum(PointHullEwkb(pts, npts));
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
