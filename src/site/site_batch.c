/* site/site_batch.c: the batch scorers huff_impact_batch and site_catchment_batch. */
/*
 * Every zone, store and candidate is passed as arrays; pairs are pruned on an in-memory grid index, then
 * measured exactly.
 */
#include "postgres.h"

#include <math.h>
#include <string.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "site/site_internal.h"

int
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
const void *
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
