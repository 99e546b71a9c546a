/* site/site_huff_final.c: the Huff aggregates' final functions and the one-zone array form huff_probabilities. */
#include "postgres.h"

#include <string.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "site/site_internal.h"

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
TupleDesc
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
PG_FUNCTION_INFO_V1(huff_sales_finalfn);
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

int
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
PG_FUNCTION_INFO_V1(huff_impact_finalfn);
Datum
huff_impact_finalfn(PG_FUNCTION_ARGS)
{
	HuffState  *state = PG_ARGISNULL(0) ? NULL : (HuffState *) PG_GETARG_POINTER(0);
	Oid			elemtype;
	TupleDesc	desc = HuffResultDesc(fcinfo, &elemtype);

	PG_RETURN_DATUM(HuffImpactCompute(state, NULL, desc, elemtype));
}

/* The work of huff_impact_finalfn, shared with huff_impact_batch: huff_impact[] from a state's pairs. */
Datum
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
double *
HuffFloatArray(ArrayType *a, const char *what, int *n)
{
	Datum	   *d = HuffArrayElements(a, FLOAT8OID, what, n);
	double	   *out = palloc(sizeof(double) * (*n > 0 ? *n : 1));

	for (int i = 0; i < *n; i++)
		out[i] = DatumGetFloat8(d[i]);
	return out;
}

/* Unpacks a one-dimensional int8 array with no nulls. */
int64 *
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
PG_FUNCTION_INFO_V1(huff_probabilities);
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
