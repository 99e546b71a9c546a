/* site/site_internal.h: what the site files share: the Huff aggregate state, the geographic grid, common checks. */
#ifndef RETAIL_MID_SITE_INTERNAL_H
#define RETAIL_MID_SITE_INTERNAL_H

#include <math.h>

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"

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

/* Validates alpha, beta, the distance floor and the trade-area threshold, with one error per case. */
extern void HuffCheckParams(const HuffParams *p);

/* Validates one site's numbers; the same messages serve the aggregates and the array functions. */
extern void HuffCheckRow(int64 site, double attractiveness, double distance, double demand);

/* The Huff utility A^alpha * max(d, d_min)^-beta, computed in logs so large exponents do not overflow early. */
extern double HuffUtility(double attractiveness, double distance, const HuffParams *p);

/* Rejects NULL in arguments first..last (the parameters of a Huff aggregate or array function). */
extern void HuffRequireNotNull(FunctionCallInfo fcinfo, int first, int last);

/* Grows the state's row array in the aggregate context so that `extra` more rows fit. */
extern void HuffStateReserve(HuffState *state, int64 extra, MemoryContext aggcontext);

/* A one-dimensional array of a fixed-width type without nulls, or an error; returns its data and length. */
extern const void *HuffPlainArray(ArrayType *a, Oid elemtype, const char *what, int *n);

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

/* Validates a lon/lat pair in degrees (finite, within the ranges of geography). */
extern void HuffCheckLonLat(double lon, double lat);

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

/* Sets up grid g for the given radius in metres (cells at least that wide). */
extern void SiteGridInit(SiteGrid *g, double radius);

/* The cell of a point in grid g. */
extern int64 SiteGridPointCell(const SiteGrid *g, double lon, double lat);

/*
 * Every cell of grid g that the cap of g's radius around lon/lat touches, into *cells (palloc'd, grown as
 * needed; *cap is its size); returns the count.
 */
extern int SiteGridCapCells(const SiteGrid *g, double lon, double lat, int64 **cells, int *cap);

/* Rows already grouped by zone (stores by id, then candidates by id) with dense site numbers in HuffRow.pad. */
typedef struct HuffPresorted
{
	HuffRow   **idx;
	const int64 *store_ids;		/* sorted, unique: pad of a store row indexes it */
	int64		nstores;
	int64		ncandidates;	/* pad of a candidate row is below this */
} HuffPresorted;

/* The work of huff_impact_finalfn, shared with huff_impact_batch: huff_impact[] from a state's pairs. */
extern Datum HuffImpactCompute(HuffState *state, const HuffPresorted *pre, TupleDesc desc, Oid elemtype);

/* Element type and tuple descriptor of the composite array the final function returns. */
extern TupleDesc HuffResultDesc(FunctionCallInfo fcinfo, Oid *elemtype);

/* qsort comparator of int64 values, ascending. */
extern int Int64Cmp(const void *a, const void *b);

/* Unpacks a one-dimensional float8 array with no nulls. */
extern double *HuffFloatArray(ArrayType *a, const char *what, int *n);

/* Unpacks a one-dimensional int8 array with no nulls. */
extern int64 *HuffIntArray(ArrayType *a, const char *what, int *n);

/* A key (zone, store or grid cell) and the position it came from; sorts by key, then position. */
typedef struct KeyOrder
{
	int64		key;
	int			i;
} KeyOrder;

/* qsort comparator of KeyOrder: by key, then position (a stable order for equal keys). */
extern int KeyOrderCmp(const void *a, const void *b);

/* A zone id and the position of the zone in the batch's zone arrays, for lookups by id. */
typedef struct ZoneRef
{
	int64		zone;
	int			i;
} ZoneRef;

/* qsort comparator of ZoneRef: by zone id, then position. */
extern int ZoneRefCmp(const void *a, const void *b);

/* An array argument of the batch functions: one-dimensional, no nulls, the expected length. */
extern const void *BatchArray(FunctionCallInfo fcinfo, int arg, Oid elemtype, const char *what, int expected, int *n);

#endif
