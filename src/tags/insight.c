/* tags/insight.c: audience insight (profile by tag value, TGI) and lookalike scoring on the tag bitmaps. */
/*
 * Both walk the features of the requested tags: each value of a boolean/enumerated tag (the OR of the
 * tag_bitmap rows the caller may read, or of the brand's rows in a brand context) and each quantile bucket of a
 * numeric tag (ranges of its bit-sliced indexes, the boundaries being quantiles of the base's values found by a
 * walk down the slices). A feature is a bitmap; the profile intersects it with the audience and the base, the
 * lookalike weighs it by the log-odds of seed against the other base customers and adds the weight to every
 * candidate holding it. No tag_value row is read.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "bitmap/bitmap.h"
#include "bitmap/bsi.h"
#include "common/retail_mid.h"

#define INSIGHT_MAX_BUCKETS 20

/* One feature handed to a visitor: a value of a tag, or a bucket [lo, hi) of scaled values of a numeric tag. */
typedef struct InsightFeature
{
	const char *tag;
	const char *value;			/* enumerated/boolean value, or NULL for a bucket */
	int			bucket;			/* 1.. for a numeric bucket, 0 otherwise */
	bool		has_lo;
	int64		lo;				/* inclusive, scaled */
	bool		has_hi;
	int64		hi;				/* exclusive, scaled */
	int			scale;
	const roaring_bitmap_t *customers;
} InsightFeature;

typedef void (*InsightVisit) (void *arg, const InsightFeature *f);

/* Customers of every opened index with lo <= v <= hi (inclusive scaled bounds), OR-ed. */
static RbHandle *
InsightRange(Bsi *idx, int n, bool has_lo, int64 lo, bool has_hi, int64 hi)
{
	RbHandle   *out = BsiRangeOpen(&idx[0], has_lo, lo, has_hi, hi);

	for (int i = 1; i < n; i++)
	{
		RbHandle   *p = BsiRangeOpen(&idx[i], has_lo, lo, has_hi, hi);

		roaring_bitmap_or_inplace(out->rb, p->rb);
		RbFree(p);
	}
	return out;
}

/*
 * The k-th smallest of the base customers' values. One index: a walk down its slices. Several (a brand tag seen
 * in several brands, a shared group tag with its brand copies): a customer counts by its smallest visible value,
 * found by bisection on "base customers with some value <= x".
 */
static int64
InsightKth(Bsi *idx, int n, const roaring_bitmap_t *base, uint64 k)
{
	int64		lo = idx[0].min,
				hi = idx[0].max;

	if (n == 1)
	{
		int64		v;

		if (!BsiKth(&idx[0], base, k, &v))
			elog(ERROR, "quantile rank out of range");
		return v;
	}
	for (int i = 1; i < n; i++)
	{
		lo = Min(lo, idx[i].min);
		hi = Max(hi, idx[i].max);
	}
	while (lo < hi)
	{
		int64		mid = (int64) ((uint64) lo + ((uint64) hi - (uint64) lo) / 2);
		RbHandle   *r = InsightRange(idx, n, false, 0, true, mid);
		uint64		c = roaring_bitmap_and_cardinality(r->rb, base);

		RbFree(r);
		if (c >= k)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Visits the quantile buckets of a numeric tag (its readable indexes are the rows of the SPI result). */
static void
InsightNumeric(const char *tag, SPITupleTable *rows, uint64 nrows, const roaring_bitmap_t *base, int nbuckets,
			   InsightVisit visit, void *arg)
{
	Bsi		   *idx = palloc0(sizeof(Bsi) * nrows);
	int			n = 0;
	int			scale = -1;
	RbHandle   *exist;
	uint64		total;
	int64		bounds[INSIGHT_MAX_BUCKETS];
	int			nb = 0;

	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		int			s = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		Datum		d = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);

		if (isnull)
			continue;
		if (scale >= 0 && s != scale)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the bit-sliced indexes of tag \"%s\" have different scales", tag),
					 errhint("Evaluate the tag again: SELECT retail_mid.evaluate_tags(ARRAY['%s']).", tag)));
		scale = s;
		BsiOpen(d, &idx[n++]);
	}
	if (n == 0)
		return;
	exist = RbHandleAlloc();
	exist->rb = roaring_bitmap_copy(idx[0].exist->rb);
	RbCheckAlloc(exist);
	for (int i = 1; i < n; i++)
		roaring_bitmap_or_inplace(exist->rb, idx[i].exist->rb);
	total = roaring_bitmap_and_cardinality(exist->rb, base);
	RbFree(exist);

	/* boundaries: the ceil(j N / n)-th smallest base value, j = 1 .. n - 1, without repeats */
	if (total > 0)
		for (int j = 1; j < nbuckets; j++)
		{
			uint64		k = ((uint64) j * total + (uint64) nbuckets - 1) / (uint64) nbuckets;
			int64		v = InsightKth(idx, n, base, Max(k, 1));

			if (nb == 0 || v > bounds[nb - 1])
				bounds[nb++] = v;
		}
	/* bucket b (1..nb+1) is bounds[b-2] <= v < bounds[b-1]; the first and last are open */
	if (n == 1)
	{
		/* one index: bucket = (v < upper bound) minus the buckets below, one comparison per boundary */
		RbHandle   *below = RbNew();

		for (int b = 0; b <= nb; b++)
		{
			InsightFeature f = {tag, NULL, b + 1, b > 0, b > 0 ? bounds[b - 1] : 0, b < nb, b < nb ? bounds[b] : 0, scale, NULL};
			RbHandle   *upto;
			RbHandle   *r = RbHandleAlloc();

			if (f.has_hi && f.hi == PG_INT64_MIN)
				continue;		/* v < the smallest int8: empty */
			upto = f.has_hi ? BsiRangeOpen(&idx[0], false, 0, true, f.hi - 1) : BsiRangeOpen(&idx[0], false, 0, false, 0);
			r->rb = roaring_bitmap_andnot(upto->rb, below->rb);
			RbCheckAlloc(r);
			f.customers = r->rb;
			visit(arg, &f);
			RbFree(r);
			RbFree(below);
			below = upto;
		}
		RbFree(below);
		BsiClose(&idx[0]);
		return;
	}
	for (int b = 0; b <= nb; b++)
	{
		InsightFeature f = {tag, NULL, b + 1, b > 0, b > 0 ? bounds[b - 1] : 0, b < nb, b < nb ? bounds[b] : 0, scale, NULL};
		RbHandle   *r;

		if (f.has_hi && f.hi == PG_INT64_MIN)
			continue;			/* v < the smallest int8: empty */
		r = InsightRange(idx, n, f.has_lo, f.lo, f.has_hi, f.has_hi ? f.hi - 1 : 0);

		f.customers = r->rb;
		visit(arg, &f);
		RbFree(r);
	}
	for (int i = 0; i < n; i++)
		BsiClose(&idx[i]);
}

/* The three queries of InsightTag, prepared once per call (planning them per tag costs more than the counting). */
static SPIPlanPtr insight_plans[3];

static void
InsightPrepare(void)
{
	static const char *const sql[3] = {
		"SELECT value_type FROM retail_mid.tag_definition WHERE tag_name = $1",
		"SELECT b.scale, b.bsi FROM retail_mid.tag_definition d "
		"JOIN retail_mid.tag_bsi b ON b.tag_name = d.tag_name "
		"AND ($2::text IS NULL OR d.scope <> 'brand' OR b.brand = $2) "
		"WHERE d.tag_name = $1 ORDER BY b.brand",
		/* the rows of one value (several brands) are OR-ed in C: no re-serialisation as rb_or_agg would do */
		"SELECT b.tag_value, b.bitmap FROM retail_mid.tag_definition d "
		"JOIN retail_mid.tag_bitmap b ON b.tag_name = d.tag_name "
		"AND ($2::text IS NULL OR d.scope <> 'brand' OR b.brand = $2) "
		"WHERE d.tag_name = $1 ORDER BY b.tag_value COLLATE \"C\", b.brand"};
	Oid			types[2] = {TEXTOID, TEXTOID};

	for (int i = 0; i < 3; i++)
	{
		insight_plans[i] = SPI_prepare(sql[i], i == 0 ? 1 : 2, types);
		if (insight_plans[i] == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}
}

/*
 * Visits the features of one tag as the caller may read them (row-level security on tag_bitmap and tag_bsi);
 * in a brand context a brand tag is read with that brand's rows only, as the evaluator does. Caller is in SPI.
 */
static void
InsightTag(const char *tag, text *brand, const roaring_bitmap_t *base, int nbuckets, InsightVisit visit, void *arg)
{
	Datum		values[2] = {CStringGetTextDatum(tag), PointerGetDatum(brand)};
	char		nulls[2] = {' ', brand == NULL ? 'n' : ' '};
	bool		isnull;
	char		type;
	int			rc;
	SPITupleTable *rows;
	uint64		nrows;

	rc = SPI_execute_plan(insight_plans[0], values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tag lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("tag \"%s\" does not exist", tag)));
	type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)[0];
	if (type == 'n')
	{
		rc = SPI_execute_plan(insight_plans[1], values, nulls, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "numeric tag query failed: %s", SPI_result_code_string(rc));
		InsightNumeric(tag, SPI_tuptable, SPI_processed, base, nbuckets, visit, arg);
		return;
	}
	rc = SPI_execute_plan(insight_plans[2], values, nulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tag bitmap query failed: %s", SPI_result_code_string(rc));
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows;)
	{
		char	   *value = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
		InsightFeature f = {tag, value, 0, false, 0, false, 0, 0, NULL};
		RbHandle   *h = RbFromDatum(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));

		CHECK_FOR_INTERRUPTS();
		for (i++; i < nrows; i++)
		{
			char	   *next = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
			RbHandle   *more;

			if (strcmp(next, value) != 0)
				break;
			more = RbFromDatum(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
			roaring_bitmap_or_inplace(h->rb, more->rb);
			RbFree(more);
		}
		f.customers = h->rb;
		visit(arg, &f);
		RbFree(h);
	}
}

/* The tag names of a text[] (validated by the SQL wrappers: no NULL element). */
static char **
InsightTagNames(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tag names must not be NULL")));
		out[i] = TextDatumGetCString(elems[i]);
	}
	return out;
}

static int
InsightBuckets(int b)
{
	if (b < 2 || b > INSIGHT_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("buckets must be between 2 and %d", INSIGHT_MAX_BUCKETS)));
	return b;
}

/* ---------- profile ---------- */

typedef struct ProfileState
{
	Tuplestorestate *store;
	TupleDesc	desc;
	const roaring_bitmap_t *members;
	const roaring_bitmap_t *base;
} ProfileState;

static void
ProfileVisit(void *arg, const InsightFeature *f)
{
	ProfileState *ps = (ProfileState *) arg;
	Datum		v[8];
	bool		n[8] = {false};
	uint64		m = roaring_bitmap_and_cardinality(f->customers, ps->members);
	uint64		b = roaring_bitmap_and_cardinality(f->customers, ps->base);

	if (m == 0 && b == 0)
		return;
	v[0] = CStringGetTextDatum(f->tag);
	if (f->value != NULL)
	{
		v[1] = CStringGetTextDatum(f->value);
		n[2] = n[3] = n[4] = n[5] = true;
		v[2] = v[3] = v[4] = v[5] = (Datum) 0;
	}
	else
	{
		n[1] = true;
		v[1] = (Datum) 0;
		v[2] = Int32GetDatum(f->bucket);
		v[3] = Int64GetDatum(f->lo);
		n[3] = !f->has_lo;
		v[4] = Int64GetDatum(f->hi);
		n[4] = !f->has_hi;
		v[5] = Int32GetDatum(f->scale);
	}
	v[6] = Int64GetDatum((int64) m);
	v[7] = Int64GetDatum((int64) b);
	tuplestore_putvalues(ps->store, ps->desc, v, n);
}

PG_FUNCTION_INFO_V1(audience_profile_counts);

/*
 * audience_profile_counts(members, base, tags, brand, buckets): per feature of the tags, the members and base
 * customers holding it (rows with neither are left out). Numeric buckets come back as scaled bounds.
 */
Datum
audience_profile_counts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProfileState ps;
	RbHandle   *members,
			   *base;
	char	  **tags;
	int			ntags;
	int			nbuckets;
	text	   *brand;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("members, base, tags and buckets must not be NULL")));
	nbuckets = InsightBuckets(PG_GETARG_INT32(4));
	brand = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_P_COPY(3);
	InitMaterializedSRF(fcinfo, 0);
	ps.store = rsinfo->setResult;
	ps.desc = rsinfo->setDesc;
	members = RbFromDatum(PG_GETARG_DATUM(0));
	base = RbFromDatum(PG_GETARG_DATUM(1));
	ps.members = members->rb;
	ps.base = base->rb;
	tags = InsightTagNames(PG_GETARG_ARRAYTYPE_P(2), &ntags);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	InsightPrepare();
	for (int i = 0; i < ntags; i++)
		InsightTag(tags[i], brand, base->rb, nbuckets, ProfileVisit, &ps);
	SPI_finish();
	RbFree(members);
	RbFree(base);
	return (Datum) 0;
}

/* ---------- lookalike ---------- */

typedef struct LookalikeState
{
	const roaring_bitmap_t *seed;
	const roaring_bitmap_t *cand;	/* base customers not in the seed */
	uint32	   *keys;			/* the candidates, ascending */
	double	   *score;			/* per candidate */
	uint64		ncand;
	uint64		nseed;
	double		prior;			/* smoothing added to each count */
	int64		features;
} LookalikeState;

/* Index of key in the sorted candidate array (it is there: the key comes from a subset of the candidates). */
static uint64
LookalikeFind(const LookalikeState *ls, uint32 key)
{
	uint64		lo = 0,
				hi = ls->ncand;

	while (lo < hi)
	{
		uint64		mid = lo + (hi - lo) / 2;

		if (ls->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Weight of a feature: log-odds of holding it among the seed minus among the other base customers, each count
 * smoothed by prior (so a feature no candidate or no seed customer holds gets a finite weight); added to the
 * score of every candidate holding it.
 */
static void
LookalikeVisit(void *arg, const InsightFeature *f)
{
	LookalikeState *ls = (LookalikeState *) arg;
	double		s = (double) roaring_bitmap_and_cardinality(f->customers, ls->seed);
	roaring_bitmap_t *held = roaring_bitmap_and(f->customers, ls->cand);
	double		c;
	double		w;
	roaring_uint32_iterator_t it;

	if (held == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	c = (double) roaring_bitmap_get_cardinality(held);
	w = log((s + ls->prior) / ((double) ls->nseed - s + ls->prior))
		- log((c + ls->prior) / ((double) ls->ncand - c + ls->prior));
	ls->features++;
	roaring_init_iterator(held, &it);
	while (it.has_value)
	{
		ls->score[LookalikeFind(ls, it.current_value)] += w;
		roaring_advance_uint32_iterator(&it);
	}
	roaring_bitmap_free(held);
}

typedef struct LookalikeRanked
{
	uint32		key;
	double		score;
} LookalikeRanked;

static int
LookalikeCmp(const void *a, const void *b)
{
	const LookalikeRanked *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->key < y->key ? -1 : (x->key > y->key ? 1 : 0);
}

PG_FUNCTION_INFO_V1(audience_lookalike_scores);

/*
 * audience_lookalike_scores(seed, base, tags, brand, size, buckets): the size base customers outside the seed
 * with the highest sum of feature weights (ties by key), with score and rank.
 */
Datum
audience_lookalike_scores(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LookalikeState ls;
	RbHandle   *seed,
			   *base,
			   *cand;
	char	  **tags;
	int			ntags;
	int			nbuckets;
	int64		size;
	text	   *brand;
	LookalikeRanked *ranked;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("seed, base, tags, size and buckets must not be NULL")));
	size = PG_GETARG_INT32(4);
	if (size < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("size must be positive")));
	nbuckets = InsightBuckets(PG_GETARG_INT32(5));
	brand = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_P_COPY(3);
	InitMaterializedSRF(fcinfo, 0);
	seed = RbFromDatum(PG_GETARG_DATUM(0));
	base = RbFromDatum(PG_GETARG_DATUM(1));
	cand = RbHandleAlloc();
	cand->rb = roaring_bitmap_andnot(base->rb, seed->rb);
	RbCheckAlloc(cand);
	memset(&ls, 0, sizeof(ls));
	ls.seed = seed->rb;
	ls.cand = cand->rb;
	ls.nseed = roaring_bitmap_get_cardinality(seed->rb);
	ls.ncand = roaring_bitmap_get_cardinality(cand->rb);
	ls.prior = 0.5;
	if (ls.ncand > MaxAllocHugeSize / sizeof(LookalikeRanked))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many candidates")));
	ls.keys = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(ls.ncand, 1));
	ls.score = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(ls.ncand, 1));
	memset(ls.score, 0, sizeof(double) * Max(ls.ncand, 1));
	roaring_bitmap_to_uint32_array(cand->rb, ls.keys);
	tags = InsightTagNames(PG_GETARG_ARRAYTYPE_P(2), &ntags);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	InsightPrepare();
	for (int i = 0; i < ntags; i++)
		InsightTag(tags[i], brand, base->rb, nbuckets, LookalikeVisit, &ls);
	SPI_finish();

	ranked = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(LookalikeRanked) * Max(ls.ncand, 1));
	for (uint64 i = 0; i < ls.ncand; i++)
	{
		ranked[i].key = ls.keys[i];
		ranked[i].score = ls.score[i];
	}
	qsort(ranked, ls.ncand, sizeof(LookalikeRanked), LookalikeCmp);
	for (uint64 i = 0; i < ls.ncand && (int64) i < size; i++)
	{
		Datum		v[3];
		bool		n[3] = {false, false, false};

		v[0] = Int32GetDatum((int32) ranked[i].key);
		v[1] = Float8GetDatum(ranked[i].score);
		v[2] = Int64GetDatum((int64) i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	RbFree(seed);
	RbFree(base);
	RbFree(cand);
	return (Datum) 0;
}
