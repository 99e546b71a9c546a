/* bitmap/bsi.c: bit-sliced indexes of numeric tags over roaring bitmaps (bsi_build_agg, bsi_range). */
/*
 * After O'Neil & Quass, "Improved query performance with variant indexes" (1997): bsi_range() answers
 * lo <= value <= hi with about 2 bitmap operations per slice and never reads the detail rows.
 *
 * Serialised form (bytea, native byte order like the rest of the on-disk data):
 *   uint32 magic 'BSI1', int64 min, int64 max, uint32 slices, then 1 + slices bitmaps (existence first, then
 *   slice 0 = least significant bit), each as uint32 length + CRoaring portable bytes.
 * A value v is stored as the offset u = v - min (as uint64), so negative values need no sign slice.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "bitmap/bsi.h"
#include "common/retail_mid.h"
#include "common/rm_agg.h"

#define BSI_MAGIC 0x31495342	/* "BSI1" */
#define BSI_STATE_VERSION 1
#define BSI_HEADER (4 + 8 + 8 + 4)

/* ---------- reading ---------- */

static void BsiRangeInto(Bsi *b, RbHandle *out, bool has_lo, int64 lo, bool has_hi, int64 hi);

static void
BsiCorrupt(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("invalid bit-sliced index data"),
			 errdetail("%s", detail)));
}

/*
 * Deserialises and validates a BSI (it may come from any bytea a user passes). CRoaring's bounded deserialiser
 * keeps any input memory-safe; check_subsets adds the semantic check that every slice lies within the existence
 * bitmap (an and-not per slice), skipped for indexes read from retail_mid.tag_bsi, which evaluate_tags builds.
 */
static void
BsiRead(Datum d, Bsi *b, bool check_subsets)
{
	bytea	   *v = DatumGetByteaPP(d);
	const char *p = VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	size_t		at = BSI_HEADER;
	uint32		magic, slices;
	uint64		range;

	if (len < BSI_HEADER)
		BsiCorrupt("The data is shorter than the header.");
	memcpy(&magic, p, 4);
	memcpy(&b->min, p + 4, 8);
	memcpy(&b->max, p + 12, 8);
	memcpy(&slices, p + 20, 4);
	if (magic != BSI_MAGIC)
		BsiCorrupt("The data does not start with the BSI1 signature.");
	if (b->min > b->max)
		BsiCorrupt("The smallest value exceeds the largest.");
	range = (uint64) b->max - (uint64) b->min;
	if (slices != (range == 0 ? 0 : 64 - __builtin_clzll(range)))
		BsiCorrupt("The number of slices does not match the value range.");
	b->slices = (int) slices;
	for (int i = -1; i < (int) slices; i++)
	{
		uint32		blen;
		RbHandle   *h;

		if (len - at < 4)
			BsiCorrupt("A bitmap length is missing.");
		memcpy(&blen, p + at, 4);
		at += 4;
		if (blen > len - at)
			BsiCorrupt("A bitmap runs past the end of the data.");
		h = RbHandleAlloc();
		h->rb = roaring_bitmap_portable_deserialize_safe(p + at, blen);
		if (h->rb == NULL || roaring_bitmap_portable_size_in_bytes(h->rb) != blen)
			BsiCorrupt("A bitmap is malformed.");
		at += blen;
		if (i < 0)
			b->exist = h;
		else
		{
			/* every slice is a subset of the existence bitmap (and-not: CRoaring 0.2's is_subset is slow on runs) */
			if (check_subsets && roaring_bitmap_andnot_cardinality(h->rb, b->exist->rb) != 0)
				BsiCorrupt("A slice holds a customer without a value.");
			b->slice[i] = h;
		}
	}
	if (at != len)
		BsiCorrupt("There are bytes after the last bitmap.");
}

static void
BsiReleaseSlices(Bsi *b)
{
	for (int i = 0; i < b->slices; i++)
		RbFree(b->slice[i]);
}

/*
 * Offsets u >= c (ge) or u <= c (!ge) among the existing customers, by the O'Neil-Quass walk from the most
 * significant slice down: eq holds the customers equal to c on the bits seen so far; a customer leaves eq
 * into the result the first time its bit is on the right side of c's.
 */
static roaring_bitmap_t *
BsiCompare(Bsi *b, uint64 c, bool ge)
{
	roaring_bitmap_t *eq = roaring_bitmap_copy(b->exist->rb);
	roaring_bitmap_t *res = roaring_bitmap_create();

	if (eq == NULL || res == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	for (int i = b->slices - 1; i >= 0; i--)
	{
		roaring_bitmap_t *s = b->slice[i]->rb;
		bool		bit = (c >> i) & 1;

		CHECK_FOR_INTERRUPTS();
		if (ge && !bit)
		{
			roaring_bitmap_t *t = roaring_bitmap_and(eq, s);

			roaring_bitmap_or_inplace(res, t);
			roaring_bitmap_free(t);
			roaring_bitmap_andnot_inplace(eq, s);
		}
		else if (!ge && bit)
		{
			roaring_bitmap_t *t = roaring_bitmap_andnot(eq, s);

			roaring_bitmap_or_inplace(res, t);
			roaring_bitmap_free(t);
			roaring_bitmap_and_inplace(eq, s);
		}
		else if (bit)
			roaring_bitmap_and_inplace(eq, s);
		else
			roaring_bitmap_andnot_inplace(eq, s);
	}
	roaring_bitmap_or_inplace(res, eq);
	roaring_bitmap_free(eq);
	return res;
}

/* Offsets exactly c. */
static roaring_bitmap_t *
BsiEqual(Bsi *b, uint64 c)
{
	roaring_bitmap_t *eq = roaring_bitmap_copy(b->exist->rb);

	if (eq == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	for (int i = b->slices - 1; i >= 0 && !roaring_bitmap_is_empty(eq); i--)
	{
		if ((c >> i) & 1)
			roaring_bitmap_and_inplace(eq, b->slice[i]->rb);
		else
			roaring_bitmap_andnot_inplace(eq, b->slice[i]->rb);
	}
	return eq;
}

RbHandle *
BsiRange(Datum d, bool has_lo, int64 lo, bool has_hi, int64 hi, bool trusted)
{
	Bsi			b;
	RbHandle   *out;

	memset(&b, 0, sizeof(b));
	BsiRead(d, &b, !trusted);
	out = b.exist;
	BsiRangeInto(&b, out, has_lo, lo, has_hi, hi);
	BsiReleaseSlices(&b);
	return out;
}

void
BsiOpen(Datum d, Bsi *b)
{
	memset(b, 0, sizeof(*b));
	BsiRead(d, b, false);
}

void
BsiClose(Bsi *b)
{
	BsiReleaseSlices(b);
	RbFree(b->exist);
}

RbHandle *
BsiRangeOpen(Bsi *b, bool has_lo, int64 lo, bool has_hi, int64 hi)
{
	RbHandle   *out = RbHandleAlloc();

	out->rb = roaring_bitmap_copy(b->exist->rb);
	RbCheckAlloc(out);
	BsiRangeInto(b, out, has_lo, lo, has_hi, hi);
	return out;
}

bool
BsiKth(Bsi *b, const roaring_bitmap_t *filter, uint64 k, int64 *out)
{
	roaring_bitmap_t *e = roaring_bitmap_and(b->exist->rb, filter);
	uint64		u = 0;

	if (e == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (k < 1 || k > roaring_bitmap_get_cardinality(e))
	{
		roaring_bitmap_free(e);
		return false;
	}
	/* from the most significant slice down: the k-th smallest has bit i off iff at least k candidates do */
	for (int i = b->slices - 1; i >= 0; i--)
	{
		uint64		zeros = roaring_bitmap_andnot_cardinality(e, b->slice[i]->rb);

		CHECK_FOR_INTERRUPTS();
		if (k <= zeros)
			roaring_bitmap_andnot_inplace(e, b->slice[i]->rb);
		else
		{
			k -= zeros;
			u |= (uint64) 1 << i;
			roaring_bitmap_and_inplace(e, b->slice[i]->rb);
		}
	}
	roaring_bitmap_free(e);
	*out = (int64) ((uint64) b->min + u);
	return true;
}

/* out (a copy of the existence bitmap) := the customers with lo <= v <= hi. */
static void
BsiRangeInto(Bsi *b, RbHandle *out, bool has_lo, int64 lo, bool has_hi, int64 hi)
{
	/* bounds outside [min, max] constrain nothing or exclude everything */
	if (has_lo && lo <= b->min)
		has_lo = false;
	if (has_hi && hi >= b->max)
		has_hi = false;
	if ((has_lo && lo > b->max) || (has_hi && hi < b->min) || (has_lo && has_hi && lo > hi))
	{
		roaring_bitmap_clear(out->rb);
		return;
	}
	if (has_lo && has_hi && lo == hi)
	{
		roaring_bitmap_t *r = BsiEqual(b, (uint64) lo - (uint64) b->min);

		roaring_bitmap_free(out->rb);
		out->rb = r;
	}
	else
	{
		if (has_lo)
		{
			roaring_bitmap_t *r = BsiCompare(b, (uint64) lo - (uint64) b->min, true);

			roaring_bitmap_free(out->rb);
			out->rb = r;
		}
		if (has_hi)
		{
			roaring_bitmap_t *r = BsiCompare(b, (uint64) hi - (uint64) b->min, false);

			roaring_bitmap_and_inplace(out->rb, r);
			roaring_bitmap_free(r);
		}
	}
}

int
BsiScaleBound(Numeric bound, int scale, bool is_lower, bool inclusive, int64 *out)
{
	Datum		n,
				pow10 = NumericGetDatum(int64_to_numeric(1));
	static const char *const int8_min = "-9223372036854775808";
	static const char *const int8_max = "9223372036854775807";

	if (numeric_is_nan(bound))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("NaN is not a valid bound for a numeric tag")));
	if (numeric_is_inf(bound))
		return (DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(bound),
												 NumericGetDatum(int64_to_numeric(0)))) == is_lower) ? -1 : 1;
	for (int i = 0; i < scale; i++)
		pow10 = DirectFunctionCall2(numeric_mul, pow10, NumericGetDatum(int64_to_numeric(10)));
	n = DirectFunctionCall2(numeric_mul, NumericGetDatum(bound), pow10);
	/* inwards: >= x -> ceil, > x -> floor + 1, <= x -> floor, < x -> ceil - 1 */
	if (is_lower == inclusive)
		n = DirectFunctionCall1(numeric_ceil, n);
	else
		n = DirectFunctionCall1(numeric_floor, n);
	if (!inclusive)
		n = DirectFunctionCall2(numeric_add, n, NumericGetDatum(int64_to_numeric(is_lower ? 1 : -1)));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, n,
										  DirectFunctionCall3(numeric_in, CStringGetDatum(int8_max),
															  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))) > 0)
		return is_lower ? -1 : 1;
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, n,
										  DirectFunctionCall3(numeric_in, CStringGetDatum(int8_min),
															  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))) < 0)
		return is_lower ? 1 : -1;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, n));
	return 0;
}

PG_FUNCTION_INFO_V1(bsi_range);

/* bsi_range(bsi, lo, hi): customers with lo <= value <= hi; a NULL bound is open. */
Datum
bsi_range(PG_FUNCTION_ARGS)
{
	RbHandle   *h;
	struct varlena *v;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	h = BsiRange(PG_GETARG_DATUM(0), !PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
				 !PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2), false);
	v = RbToVarlena(h->rb);
	RbFree(h);
	PG_RETURN_POINTER(v);
}

PG_FUNCTION_INFO_V1(bsi_cardinality);

/* Customers having a value. */
Datum
bsi_cardinality(PG_FUNCTION_ARGS)
{
	RbHandle   *h = BsiRange(PG_GETARG_DATUM(0), false, 0, false, 0, false);
	int64		c = (int64) roaring_bitmap_get_cardinality(h->rb);

	RbFree(h);
	PG_RETURN_INT64(c);
}

/* ---------- building: aggregate over (customer_key, value) ---------- */

typedef struct BsiPair
{
	int32		key;
	int64		value;
} BsiPair;

typedef struct BsiState
{
	int64		n;
	int64		cap;
	BsiPair    *pairs;
} BsiState;

static BsiState *
BsiStateNew(MemoryContext cxt, int64 cap)
{
	BsiState   *s = MemoryContextAllocZero(cxt, sizeof(BsiState));

	s->cap = Max(cap, 64);
	s->pairs = MemoryContextAllocHuge(cxt, sizeof(BsiPair) * s->cap);
	return s;
}

static void
BsiStateReserve(BsiState *s, int64 more)
{
	int64		need = s->n + more;

	if (need <= s->cap)
		return;
	if (need > (int64) (MaxAllocHugeSize / (2 * sizeof(BsiPair))))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("bit-sliced index too large: more than %lld values",
						(long long) (MaxAllocHugeSize / (2 * sizeof(BsiPair))))));
	while (s->cap < need)
		s->cap *= 2;
	s->pairs = repalloc_huge(s->pairs, sizeof(BsiPair) * s->cap);
}

PG_FUNCTION_INFO_V1(bsi_build_trans);

/* Adds (customer_key, value); rows with a NULL key or value are skipped (no value). */
Datum
bsi_build_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "bsi_build_trans");
	BsiState   *s = PG_ARGISNULL(0) ? NULL : (BsiState *) PG_GETARG_POINTER(0);

	if (s == NULL)
		s = BsiStateNew(aggcxt, 1024);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	RbCheckKey(PG_GETARG_INT32(1));
	BsiStateReserve(s, 1);
	s->pairs[s->n].key = PG_GETARG_INT32(1);
	s->pairs[s->n].value = PG_GETARG_INT64(2);
	s->n++;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(bsi_build_combine);

Datum
bsi_build_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "bsi_build_combine");
	BsiState   *a = PG_ARGISNULL(0) ? NULL : (BsiState *) PG_GETARG_POINTER(0);
	BsiState   *b = PG_ARGISNULL(1) ? NULL : (BsiState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = BsiStateNew(aggcxt, b->n);
	BsiStateReserve(a, b->n);
	memcpy(a->pairs + a->n, b->pairs, sizeof(BsiPair) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(bsi_build_serial);

/* Layout: version (int32), n (int64), then n (int32 key, int64 value) in network order. */
Datum
bsi_build_serial(PG_FUNCTION_ARGS)
{
	BsiState   *s = (BsiState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, BSI_STATE_VERSION);
	pq_sendint64(&buf, s->n);
	for (int64 i = 0; i < s->n; i++)
	{
		pq_sendint32(&buf, s->pairs[i].key);
		pq_sendint64(&buf, s->pairs[i].value);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(bsi_build_deserial);

Datum
bsi_build_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "bsi_build_deserial");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	BsiState   *s;
	int64		n;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (buf.len < 12 || pq_getmsgint(&buf, 4) != BSI_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid bit-sliced index state: bad header")));
	n = pq_getmsgint64(&buf);
	if (n < 0 || (buf.len - 12) % 12 != 0 || (buf.len - 12) / 12 != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid bit-sliced index state: %lld values do not match %d bytes",
						(long long) n, buf.len)));
	s = BsiStateNew(aggcxt, n);
	for (int64 i = 0; i < n; i++)
	{
		s->pairs[i].key = (int32) pq_getmsgint(&buf, 4);
		s->pairs[i].value = pq_getmsgint64(&buf);
		if (s->pairs[i].key < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("invalid bit-sliced index state: negative key")));
	}
	s->n = n;
	PG_RETURN_POINTER(s);
}

static int
ComparePairKey(const void *a, const void *b)
{
	int32		x = ((const BsiPair *) a)->key;
	int32		y = ((const BsiPair *) b)->key;

	return (x > y) - (x < y);
}

/* Appends uint32 length + portable bytes of rb. */
static void
AppendBitmap(StringInfo buf, roaring_bitmap_t *rb)
{
	size_t		size;
	uint32		len;

	roaring_bitmap_run_optimize(rb);
	size = roaring_bitmap_portable_size_in_bytes(rb);
	if (size > MaxAllocSize / 2 || (size_t) buf->len + size + 4 > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("bit-sliced index exceeds the maximum value size")));
	len = (uint32) size;
	appendBinaryStringInfo(buf, (char *) &len, 4);
	enlargeStringInfo(buf, (int) size);
	if (roaring_bitmap_portable_serialize(rb, buf->data + buf->len) != size)
		elog(ERROR, "roaring bitmap serialised to an unexpected size");
	buf->len += (int) size;
	buf->data[buf->len] = '\0';
}

PG_FUNCTION_INFO_V1(bsi_build_final);

/*
 * Sorts a copy of the pairs by key (a key twice is an error: a customer has one value), then builds the
 * existence bitmap and one bitmap per bit of value - min from the sorted keys (appending in key order is
 * CRoaring's fast path). NULL when there is no value. The state is left as it was (window use).
 */
Datum
bsi_build_final(PG_FUNCTION_ARGS)
{
	BsiState   *s = PG_ARGISNULL(0) ? NULL : (BsiState *) PG_GETARG_POINTER(0);
	BsiPair    *p;
	uint32	   *keys;
	int64		min, max;
	uint64		range;
	uint32		slices, magic = BSI_MAGIC;
	StringInfoData buf;
	RbHandle   *h;
	bytea	   *out;

	if (s == NULL || s->n == 0)
		PG_RETURN_NULL();
	p = palloc_extended(sizeof(BsiPair) * s->n, MCXT_ALLOC_HUGE);
	memcpy(p, s->pairs, sizeof(BsiPair) * s->n);
	qsort(p, s->n, sizeof(BsiPair), ComparePairKey);
	min = max = p[0].value;
	for (int64 i = 0; i < s->n; i++)
	{
		if (i > 0 && p[i].key == p[i - 1].key)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("customer key %d has more than one value", p[i].key),
					 errdetail("A bit-sliced index holds one value per customer.")));
		min = Min(min, p[i].value);
		max = Max(max, p[i].value);
	}
	range = (uint64) max - (uint64) min;
	slices = range == 0 ? 0 : 64 - __builtin_clzll(range);

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &magic, 4);
	appendBinaryStringInfo(&buf, (char *) &min, 8);
	appendBinaryStringInfo(&buf, (char *) &max, 8);
	appendBinaryStringInfo(&buf, (char *) &slices, 4);
	keys = palloc_extended(sizeof(uint32) * s->n, MCXT_ALLOC_HUGE);
	for (int i = -1; i < (int) slices; i++)
	{
		int64		k = 0;

		for (int64 j = 0; j < s->n; j++)
			if (i < 0 || ((((uint64) p[j].value - (uint64) min) >> i) & 1))
				keys[k++] = (uint32) p[j].key;
		h = RbHandleAlloc();
		h->rb = roaring_bitmap_of_ptr((size_t) k, keys);
		RbCheckAlloc(h);
		AppendBitmap(&buf, h->rb);
		RbFree(h);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(keys);
	pfree(p);
	out = (bytea *) palloc(buf.len + VARHDRSZ);
	memcpy(VARDATA(out), buf.data, buf.len);
	SET_VARSIZE(out, buf.len + VARHDRSZ);
	pfree(buf.data);
	PG_RETURN_BYTEA_P(out);
}

/* Constants of tag_numeric_value for one scale, cached per call site. */
typedef struct TagValueCache
{
	int			scale;
	Datum		pow10;			/* 10^scale */
	Datum		int8max;		/* 9223372036854775807 */
	Datum		int8min;
} TagValueCache;

PG_FUNCTION_INFO_V1(tag_numeric_value);

/*
 * tag_numeric_value(value, scale, tag): the value of a numeric tag as stored, rounded to scale decimals, after
 * checking that the bit-sliced index can hold it (value * 10^scale within int8). NaN is 22000, infinities and
 * values out of range are 22003, both naming the tag; evaluate_tags then fails that tag alone.
 */
Datum
tag_numeric_value(PG_FUNCTION_ARGS)
{
	Numeric		v = PG_GETARG_NUMERIC(0);
	int			scale = PG_GETARG_INT32(1);
	TagValueCache *c = (TagValueCache *) fcinfo->flinfo->fn_extra;
	Datum		r, scaled;

	if (scale < 0 || scale > 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("numeric tag scale must be between 0 and 12")));
	if (numeric_is_nan(v))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rule of numeric tag %s returns NaN", text_to_cstring(PG_GETARG_TEXT_PP(2)))));
	if (numeric_is_inf(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rule of numeric tag %s returns an infinite value", text_to_cstring(PG_GETARG_TEXT_PP(2)))));
	if (c == NULL || c->scale != scale)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		c = palloc(sizeof(TagValueCache));
		c->scale = scale;
		c->pow10 = NumericGetDatum(int64_to_numeric(1));
		for (int i = 0; i < scale; i++)
			c->pow10 = DirectFunctionCall2(numeric_mul, c->pow10, NumericGetDatum(int64_to_numeric(10)));
		c->int8max = NumericGetDatum(int64_to_numeric(PG_INT64_MAX));
		c->int8min = NumericGetDatum(int64_to_numeric(PG_INT64_MIN));
		fcinfo->flinfo->fn_extra = c;
		MemoryContextSwitchTo(old);
	}
	r = DirectFunctionCall2(numeric_round, NumericGetDatum(v), Int32GetDatum(scale));
	scaled = DirectFunctionCall2(numeric_mul, r, c->pow10);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, scaled, c->int8max)) > 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, scaled, c->int8min)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rule of numeric tag %s returns values too large for its scale", text_to_cstring(PG_GETARG_TEXT_PP(2))),
				 errdetail("Values times 10^numeric_scale must fit in int8 (numeric_scale is %d).", scale)));
	PG_RETURN_DATUM(r);
}
