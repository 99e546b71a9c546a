/* site/site_huff_agg.c: the Huff aggregates' state, transition, combine, serial and deserial functions. */
/*
 * Transition functions for sales, impact, impact by coordinates and impact by grid cells.
 *
 * Geometry stays in SQL and PostGIS (h3_postgis habit); these functions receive plain numbers: zone and site
 * ids, lon/lat (distances on PostGIS's sphere, same formula), attractiveness, distance (or any travel cost)
 * and demand, and do the probability arithmetic:
 *
 *   P(zone z -> store j) = A_j^alpha * max(d_zj, d_min)^-beta / sum over the stores k in reach of z
 *
 * d_min (min_distance) is the documented floor that keeps a zone centroid lying on a store finite.
 *
 * Geometry stays in SQL and PostGIS (h3_postgis habit); these functions receive plain numbers: zone and site
 * ids, lon/lat (distances on PostGIS's sphere, same formula), attractiveness, distance (or any travel cost)
 * and demand, and do the probability arithmetic:
 *
 *   P(zone z -> store j) = A_j^alpha * max(d_zj, d_min)^-beta / sum over the stores k in reach of z
 *
 * d_min (min_distance) is the documented floor that keeps a zone centroid lying on a store finite.
 */
#include "postgres.h"

#include <math.h>
#include <string.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"

#include "common/rm_agg.h"
#include "site/site_internal.h"

/* Validates alpha, beta, the distance floor and the trade-area threshold, with one error per case. */
void
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
void
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
double
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

void
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

void
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
	*aggcontext = RmAggContext(fcinfo, "Huff transition function");
	if (PG_ARGISNULL(0))
		return HuffStateCreate(*aggcontext);
	return (HuffState *) PG_GETARG_POINTER(0);
}

/*
 * huff_sales_transfn(state, zone_id, store_id, attractiveness, distance, demand, alpha, beta, min_distance)
 */
PG_FUNCTION_INFO_V1(huff_sales_transfn);
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
PG_FUNCTION_INFO_V1(huff_impact_transfn);
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
 * huff_impact_geo_transfn(state, zone_id, zone_lon, zone_lat, demand, site_id, role, site_lon, site_lat,
 * attractiveness, alpha, beta, min_distance, threshold, cutoff)
 * Like huff_impact, but takes coordinates: SQL prunes with a bounding box on the GiST index, and the exact
 * great-circle distance and the cut-off are applied here (pairs beyond it are skipped).
 */
PG_FUNCTION_INFO_V1(huff_impact_geo_transfn);
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
const void *
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
PG_FUNCTION_INFO_V1(huff_impact_cell_transfn);
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
PG_FUNCTION_INFO_V1(huff_combinefn);
Datum
huff_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	HuffState  *a;
	HuffState  *b;

	aggcontext = RmAggContext(fcinfo, "Huff combine function");
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

PG_FUNCTION_INFO_V1(huff_serialfn);
Datum
huff_serialfn(PG_FUNCTION_ARGS)
{
	HuffState  *state = (HuffState *) PG_GETARG_POINTER(0);
	HuffStateHeader h;
	Size		len = sizeof(HuffStateHeader) + sizeof(HuffRow) * (Size) state->n;
	bytea	   *out;

	(void) RmAggContext(fcinfo, "Huff serial function");
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
PG_FUNCTION_INFO_V1(huff_deserialfn);
Datum
huff_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *data = VARDATA_ANY(in);
	HuffStateHeader h;
	MemoryContext aggcontext;
	HuffState  *state;

	aggcontext = RmAggContext(fcinfo, "Huff deserial function");
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
