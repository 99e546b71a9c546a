/* bitmap/bitmap.c: rbitmap, the roaring bitmap of int4 customer keys, on Debian's CRoaring. */
/*
 * The datum is a varlena holding CRoaring's portable serialization (the RoaringFormatSpec format shared with
 * the Java/Go/Python libraries), so rb_to_bytea/rb_from_bytea exchange bitmaps with other systems. Values are
 * customer keys: 0 .. 2147483647; negative keys are rejected.
 *
 * Everything that enters from outside (text, binary recv, bytea, aggregate deserialisation) is validated
 * byte by byte before CRoaring sees it, because CRoaring 0.2.66's "safe" deserialiser only checks bounds:
 * unsorted keys, wrong cardinalities or overlapping runs would be accepted and give wrong answers later.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "bitmap/bitmap.h"
#include "bitmap/rbitmap_format.h"
#include "common/retail_mid.h"
#include "common/rm_agg.h"


#define RB_AGG_STATE_VERSION 1

#define PG_GETARG_RB(n) RbFromDatum(PG_GETARG_DATUM(n))

/* ---------- handles: CRoaring memory tied to a PostgreSQL memory context ---------- */

static void
rb_handle_release(void *arg)
{
	RbHandle   *h = (RbHandle *) arg;

	if (h->rb != NULL)
	{
		roaring_bitmap_free(h->rb);
		h->rb = NULL;
	}
}

RbHandle *
RbHandleAlloc(void)
{
	RbHandle   *h = (RbHandle *) palloc0(sizeof(RbHandle));

	h->cb.func = rb_handle_release;
	h->cb.arg = h;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &h->cb);
	return h;
}

void
RbCheckAlloc(RbHandle *h)
{
	if (h->rb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("The roaring bitmap library could not allocate memory.")));
}

RbHandle *
RbNew(void)
{
	RbHandle   *h = RbHandleAlloc();

	h->rb = roaring_bitmap_create();
	RbCheckAlloc(h);
	return h;
}

void
RbFree(RbHandle *h)
{
	if (h != NULL)
		rb_handle_release(h);
}

void
RbCheckKey(int64 key)
{
	if (key < 0 || key > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("customer key " INT64_FORMAT " is out of range for type rbitmap", key),
				 errdetail("An rbitmap holds customer keys from 0 to 2147483647."),
				 errhint("Map identifiers to keys with retail_mid.customer_key_of().")));
}

/* Validates and deserialises untrusted bytes; errcode is the SQLSTATE to raise when they are malformed. */
static RbHandle *
rb_from_untrusted(const char *buf, size_t len, int errcode_bad)
{
	const char *problem = rb_validate_portable(buf, len);
	RbHandle   *h;

	if (problem != NULL)
		ereport(ERROR,
				(errcode(errcode_bad),
				 errmsg("invalid roaring bitmap data"),
				 errdetail_internal("%s", problem)));
	h = RbHandleAlloc();
	h->rb = roaring_bitmap_portable_deserialize_safe(buf, len);
	if (h->rb == NULL)
		ereport(ERROR,
				(errcode(errcode_bad),
				 errmsg("invalid roaring bitmap data"),
				 errdetail("The roaring bitmap library rejected the data.")));
	if (roaring_bitmap_portable_size_in_bytes(h->rb) != len)
		ereport(ERROR,
				(errcode(errcode_bad),
				 errmsg("invalid roaring bitmap data"),
				 errdetail("The bitmap reads back with a different size than its %zu input bytes.", len)));
	return h;
}

RbHandle *
RbFromDatum(Datum d)
{
	struct varlena *v = PG_DETOAST_DATUM(d);
	RbHandle   *h = RbHandleAlloc();

	/* Stored values were validated when they entered; the bounded deserialiser guards against corruption. */
	h->rb = roaring_bitmap_portable_deserialize_safe(VARDATA(v), VARSIZE(v) - VARHDRSZ);
	if (h->rb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupted rbitmap value")));
	return h;
}

struct varlena *
RbToVarlena(roaring_bitmap_t *rb)
{
	size_t		size;
	struct varlena *v;

	roaring_bitmap_run_optimize(rb);
	size = roaring_bitmap_portable_size_in_bytes(rb);
	if (size > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rbitmap of %zu bytes exceeds the maximum value size", size)));
	v = (struct varlena *) palloc(size + VARHDRSZ);
	if (roaring_bitmap_portable_serialize(rb, VARDATA(v)) != size)
		elog(ERROR, "roaring bitmap serialised to an unexpected size");
	SET_VARSIZE(v, size + VARHDRSZ);
	return v;
}

/* Returns the handle's bitmap as an rbitmap datum and frees the bitmap. */
static Datum
rb_return(RbHandle *h)
{
	struct varlena *v = RbToVarlena(h->rb);

	RbFree(h);
	return PointerGetDatum(v);
}

/* ---------- text and binary I/O ---------- */

PG_FUNCTION_INFO_V1(rbitmap_in);
/* Text input: {1,2,3} (any order, duplicates allowed), {} for the empty bitmap. */
Datum
rbitmap_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	char	   *p = str;
	RbHandle   *h;

	while (isspace((unsigned char) *p))
		p++;
	if (*p != '{')
		goto syntax;
	p++;
	h = RbNew();
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			char	   *end;
			long long	val;

			while (isspace((unsigned char) *p))
				p++;
			if (*p != '-' && *p != '+' && !isdigit((unsigned char) *p))
				goto syntax;
			errno = 0;
			val = strtoll(p, &end, 10);
			if (end == p)
				goto syntax;
			if (errno == ERANGE)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("customer key \"%.*s\" is out of range for type rbitmap", (int) (end - p), p),
						 errdetail("An rbitmap holds customer keys from 0 to 2147483647.")));
			RbCheckKey((int64) val);
			roaring_bitmap_add(h->rb, (uint32) val);
			p = end;
			while (isspace((unsigned char) *p))
				p++;
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == '}')
			{
				p++;
				break;
			}
			goto syntax;
		}
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		goto syntax;
	PG_RETURN_DATUM(rb_return(h));

syntax:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type rbitmap: \"%s\"", str),
			 errdetail("Character %d is unexpected.", (int) (p - str) + 1),
			 errhint("Write the keys in braces, e.g. {1,2,3}, or {} for the empty bitmap.")));
	PG_RETURN_NULL();
}

/* Copies the bitmap's values, ascending, into a new palloc'd array; *n receives the count. */
static uint32 *
rb_values(roaring_bitmap_t *rb, uint64 *n)
{
	uint64		card = roaring_bitmap_get_cardinality(rb);
	uint32	   *vals;

	if (card > MaxAllocSize / sizeof(uint32))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rbitmap of " UINT64_FORMAT " keys is too large to print", card),
				 errhint("Use retail_mid.rb_iterate() to expand it to rows.")));
	vals = (uint32 *) palloc(Max(card, 1) * sizeof(uint32));
	roaring_bitmap_to_uint32_array(rb, vals);
	*n = card;
	return vals;
}

PG_FUNCTION_INFO_V1(rbitmap_out);
Datum
rbitmap_out(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	uint64		n;
	uint32	   *vals = rb_values(h->rb, &n);
	StringInfoData buf;

	RbFree(h);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (uint64 i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "%u", vals[i]);
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(rbitmap_recv);
/* Binary input: the portable serialization, validated completely (it is untrusted). */
Datum
rbitmap_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			len = buf->len - buf->cursor;
	const char *data = pq_getmsgbytes(buf, len);

	PG_RETURN_DATUM(rb_return(rb_from_untrusted(data, len, ERRCODE_INVALID_BINARY_REPRESENTATION)));
}

PG_FUNCTION_INFO_V1(rbitmap_send);
Datum
rbitmap_send(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA(v), VARSIZE(v) - VARHDRSZ);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(rb_from_bytea);
/* The portable serialization as bytea -> rbitmap (validated, so it is the way to import foreign bitmaps). */
Datum
rb_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_DATUM(rb_return(rb_from_untrusted(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b),
												ERRCODE_INVALID_BINARY_REPRESENTATION)));
}

PG_FUNCTION_INFO_V1(rb_to_bytea);
Datum
rb_to_bytea(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(0));

	PG_RETURN_BYTEA_P((bytea *) v);
}

/* ---------- construction and expansion ---------- */

PG_FUNCTION_INFO_V1(rb_build);
/* int4[] -> rbitmap; NULL elements are skipped, negative keys rejected. */
Datum
rb_build(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	int			n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	int32	   *data = (int32 *) ARR_DATA_PTR(a);
	bits8	   *nulls = ARR_NULLBITMAP(a);
	uint32	   *vals = (uint32 *) palloc(Max(n, 1) * sizeof(uint32));
	int			m = 0;
	RbHandle   *h;

	if (ARR_ELEMTYPE(a) != INT4OID)
		elog(ERROR, "rb_build expects int4[]");
	for (int i = 0; i < n; i++)
	{
		if (nulls != NULL && !(nulls[i / 8] & (1 << (i % 8))))
			continue;
		RbCheckKey(*data);
		vals[m++] = (uint32) *data;
		data++;
	}
	h = RbNew();
	roaring_bitmap_add_many(h->rb, m, vals);
	PG_RETURN_DATUM(rb_return(h));
}

PG_FUNCTION_INFO_V1(rb_range);
/* All keys lo <= k < hi. */
Datum
rb_range(PG_FUNCTION_ARGS)
{
	int32		lo = PG_GETARG_INT32(0);
	int32		hi = PG_GETARG_INT32(1);
	RbHandle   *h;

	RbCheckKey(lo);
	RbCheckKey(hi);
	h = RbNew();
	if (hi > lo)
		roaring_bitmap_add_range_closed(h->rb, (uint32) lo, (uint32) hi - 1);
	PG_RETURN_DATUM(rb_return(h));
}

PG_FUNCTION_INFO_V1(rb_to_array);
Datum
rb_to_array(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	uint64		card = roaring_bitmap_get_cardinality(h->rb);
	Size		nbytes;
	ArrayType  *a;

	if (card > (MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(int32))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rbitmap of " UINT64_FORMAT " keys is too large for an array", card),
				 errhint("Use retail_mid.rb_iterate() to expand it to rows.")));
	nbytes = ARR_OVERHEAD_NONULLS(1) + card * sizeof(int32);
	a = (ArrayType *) palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = card > 0 ? 1 : 0;
	a->dataoffset = 0;
	a->elemtype = INT4OID;
	if (card > 0)
	{
		ARR_DIMS(a)[0] = (int) card;
		ARR_LBOUND(a)[0] = 1;
		roaring_bitmap_to_uint32_array(h->rb, (uint32 *) ARR_DATA_PTR(a));
	}
	else
		SET_VARSIZE(a, ARR_OVERHEAD_NONULLS(0));
	RbFree(h);
	PG_RETURN_ARRAYTYPE_P(a);
}

typedef struct RbIterState
{
	RbHandle   *h;				/* owned by the multi-call context, freed with it */
	roaring_uint32_iterator_t it;
} RbIterState;

PG_FUNCTION_INFO_V1(rb_iterate);
/* Expands the bitmap to rows, ascending; streams, so even 2^31 keys need no large buffer. */
Datum
rb_iterate(PG_FUNCTION_ARGS)
{
	FuncCallContext *fc;
	RbIterState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;

		fc = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(fc->multi_call_memory_ctx);
		st = (RbIterState *) palloc0(sizeof(RbIterState));
		st->h = PG_GETARG_RB(0);
		roaring_init_iterator(st->h->rb, &st->it);
		fc->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	fc = SRF_PERCALL_SETUP();
	st = (RbIterState *) fc->user_fctx;
	if (st->it.has_value)
	{
		int32		v = (int32) st->it.current_value;

		roaring_advance_uint32_iterator(&st->it);
		SRF_RETURN_NEXT(fc, Int32GetDatum(v));
	}
	RbFree(st->h);
	SRF_RETURN_DONE(fc);
}

/* ---------- scalar functions ---------- */

PG_FUNCTION_INFO_V1(rb_cardinality);
Datum
rb_cardinality(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	int64		c = (int64) roaring_bitmap_get_cardinality(h->rb);

	RbFree(h);
	PG_RETURN_INT64(c);
}

PG_FUNCTION_INFO_V1(rb_is_empty);
Datum
rb_is_empty(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	bool		e = roaring_bitmap_is_empty(h->rb);

	RbFree(h);
	PG_RETURN_BOOL(e);
}

PG_FUNCTION_INFO_V1(rb_min);
Datum
rb_min(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	bool		e = roaring_bitmap_is_empty(h->rb);
	uint32		v = e ? 0 : roaring_bitmap_minimum(h->rb);

	RbFree(h);
	if (e)
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) v);
}

PG_FUNCTION_INFO_V1(rb_max);
Datum
rb_max(PG_FUNCTION_ARGS)
{
	RbHandle   *h = PG_GETARG_RB(0);
	bool		e = roaring_bitmap_is_empty(h->rb);
	uint32		v = e ? 0 : roaring_bitmap_maximum(h->rb);

	RbFree(h);
	if (e)
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) v);
}

PG_FUNCTION_INFO_V1(rb_contains_key);
/* bitmap @> key; a negative key is simply absent. */
Datum
rb_contains_key(PG_FUNCTION_ARGS)
{
	int32		k = PG_GETARG_INT32(1);
	RbHandle   *h;
	bool		r;

	if (k < 0)
		PG_RETURN_BOOL(false);
	h = PG_GETARG_RB(0);
	r = roaring_bitmap_contains(h->rb, (uint32) k);
	RbFree(h);
	PG_RETURN_BOOL(r);
}

PG_FUNCTION_INFO_V1(rb_key_contained);
/* key <@ bitmap. */
Datum
rb_key_contained(PG_FUNCTION_ARGS)
{
	int32		k = PG_GETARG_INT32(0);
	RbHandle   *h;
	bool		r;

	if (k < 0)
		PG_RETURN_BOOL(false);
	h = PG_GETARG_RB(1);
	r = roaring_bitmap_contains(h->rb, (uint32) k);
	RbFree(h);
	PG_RETURN_BOOL(r);
}

PG_FUNCTION_INFO_V1(rb_add);
Datum
rb_add(PG_FUNCTION_ARGS)
{
	int32		k = PG_GETARG_INT32(1);
	RbHandle   *h;

	RbCheckKey(k);
	h = PG_GETARG_RB(0);
	roaring_bitmap_add(h->rb, (uint32) k);
	PG_RETURN_DATUM(rb_return(h));
}

PG_FUNCTION_INFO_V1(rb_remove);
Datum
rb_remove(PG_FUNCTION_ARGS)
{
	int32		k = PG_GETARG_INT32(1);
	RbHandle   *h = PG_GETARG_RB(0);

	if (k >= 0)
		roaring_bitmap_remove(h->rb, (uint32) k);
	PG_RETURN_DATUM(rb_return(h));
}

/* Binary operations: the two operands, deserialised. */
#define RB_BINARY_ARGS \
	RbHandle   *a = PG_GETARG_RB(0); \
	RbHandle   *b = PG_GETARG_RB(1)

#define RB_SET_OP(fname, inplace) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	RB_BINARY_ARGS; \
	inplace(a->rb, b->rb); \
	RbFree(b); \
	PG_RETURN_DATUM(rb_return(a)); \
}

RB_SET_OP(rb_and, roaring_bitmap_and_inplace)
RB_SET_OP(rb_or, roaring_bitmap_or_inplace)
RB_SET_OP(rb_andnot, roaring_bitmap_andnot_inplace)
RB_SET_OP(rb_xor, roaring_bitmap_xor_inplace)

#define RB_CARD_OP(fname, op) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	RB_BINARY_ARGS; \
	int64		c = (int64) op(a->rb, b->rb); \
	RbFree(a); \
	RbFree(b); \
	PG_RETURN_INT64(c); \
}

RB_CARD_OP(rb_and_cardinality, roaring_bitmap_and_cardinality)
RB_CARD_OP(rb_or_cardinality, roaring_bitmap_or_cardinality)
RB_CARD_OP(rb_andnot_cardinality, roaring_bitmap_andnot_cardinality)
RB_CARD_OP(rb_xor_cardinality, roaring_bitmap_xor_cardinality)

#define RB_PRED_OP(fname, expr) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	RB_BINARY_ARGS; \
	bool		r = (expr); \
	RbFree(a); \
	RbFree(b); \
	PG_RETURN_BOOL(r); \
}

RB_PRED_OP(rb_contains, roaring_bitmap_is_subset(b->rb, a->rb))
RB_PRED_OP(rb_contained, roaring_bitmap_is_subset(a->rb, b->rb))
RB_PRED_OP(rb_intersect, roaring_bitmap_intersect(a->rb, b->rb))
RB_PRED_OP(rb_equals, roaring_bitmap_equals(a->rb, b->rb))
RB_PRED_OP(rb_not_equals, !roaring_bitmap_equals(a->rb, b->rb))

/* ---------- aggregates ---------- */

/*
 * The state of every rbitmap aggregate. rb stays NULL until the first non-NULL input, which is what lets
 * rb_and_agg tell "no input yet" (the identity, all keys) from "empty intersection".
 */
typedef struct RbAggState
{
	RbHandle	h;
} RbAggState;

/* A new state in the aggregate context; its bitmap is freed when that context goes away. */
static RbAggState *
rb_agg_state_new(MemoryContext aggctx)
{
	RbAggState *st = (RbAggState *) MemoryContextAllocZero(aggctx, sizeof(RbAggState));

	st->h.cb.func = rb_handle_release;
	st->h.cb.arg = &st->h;
	MemoryContextRegisterResetCallback(aggctx, &st->h.cb);
	return st;
}

static RbAggState *
rb_agg_state_get(FunctionCallInfo fcinfo, MemoryContext aggctx)
{
	if (PG_ARGISNULL(0))
		return rb_agg_state_new(aggctx);
	return (RbAggState *) PG_GETARG_POINTER(0);
}

PG_FUNCTION_INFO_V1(rb_build_agg_trans);
Datum
rb_build_agg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = RmAggContext(fcinfo, "rb_build_agg_trans");
	RbAggState *st;
	int32		k;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k = PG_GETARG_INT32(1);
	RbCheckKey(k);
	st = rb_agg_state_get(fcinfo, aggctx);
	if (st->h.rb == NULL)
	{
		st->h.rb = roaring_bitmap_create();
		RbCheckAlloc(&st->h);
	}
	roaring_bitmap_add(st->h.rb, (uint32) k);
	PG_RETURN_POINTER(st);
}

/* Shared body of rb_or_agg/rb_and_agg/rb_xor_agg transitions. */
static Datum
rb_setop_agg_trans(FunctionCallInfo fcinfo, const char *fname, char op)
{
	MemoryContext aggctx = RmAggContext(fcinfo, fname);
	RbAggState *st;
	RbHandle   *in;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	st = rb_agg_state_get(fcinfo, aggctx);
	if (st->h.rb == NULL)
	{
		/* the first input becomes the state: deserialise it straight into the aggregate context's care */
		struct varlena *v = PG_DETOAST_DATUM(PG_GETARG_DATUM(1));

		st->h.rb = roaring_bitmap_portable_deserialize_safe(VARDATA(v), VARSIZE(v) - VARHDRSZ);
		if (st->h.rb == NULL)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("corrupted rbitmap value")));
		PG_RETURN_POINTER(st);
	}
	in = PG_GETARG_RB(1);
	if (op == '|')
		roaring_bitmap_or_inplace(st->h.rb, in->rb);
	else if (op == '&')
		roaring_bitmap_and_inplace(st->h.rb, in->rb);
	else
		roaring_bitmap_xor_inplace(st->h.rb, in->rb);
	RbFree(in);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(rb_or_agg_trans);
Datum
rb_or_agg_trans(PG_FUNCTION_ARGS)
{
	return rb_setop_agg_trans(fcinfo, "rb_or_agg_trans", '|');
}

PG_FUNCTION_INFO_V1(rb_and_agg_trans);
Datum
rb_and_agg_trans(PG_FUNCTION_ARGS)
{
	return rb_setop_agg_trans(fcinfo, "rb_and_agg_trans", '&');
}

PG_FUNCTION_INFO_V1(rb_xor_agg_trans);
Datum
rb_xor_agg_trans(PG_FUNCTION_ARGS)
{
	return rb_setop_agg_trans(fcinfo, "rb_xor_agg_trans", '^');
}

/* Shared body of the combine functions: merges state 2 into state 1 (allocating state 1 when absent). */
static Datum
rb_agg_combine(FunctionCallInfo fcinfo, const char *fname, char op)
{
	MemoryContext aggctx = RmAggContext(fcinfo, fname);
	RbAggState *s1 = PG_ARGISNULL(0) ? NULL : (RbAggState *) PG_GETARG_POINTER(0);
	RbAggState *s2 = PG_ARGISNULL(1) ? NULL : (RbAggState *) PG_GETARG_POINTER(1);

	if (s2 == NULL || s2->h.rb == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
		s1 = rb_agg_state_new(aggctx);
	if (s1->h.rb == NULL)
	{
		s1->h.rb = roaring_bitmap_copy(s2->h.rb);
		RbCheckAlloc(&s1->h);
	}
	else if (op == '|')
		roaring_bitmap_or_inplace(s1->h.rb, s2->h.rb);
	else if (op == '&')
		roaring_bitmap_and_inplace(s1->h.rb, s2->h.rb);
	else
		roaring_bitmap_xor_inplace(s1->h.rb, s2->h.rb);
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(rb_or_agg_combine);
Datum
rb_or_agg_combine(PG_FUNCTION_ARGS)
{
	return rb_agg_combine(fcinfo, "rb_or_agg_combine", '|');
}

PG_FUNCTION_INFO_V1(rb_and_agg_combine);
Datum
rb_and_agg_combine(PG_FUNCTION_ARGS)
{
	return rb_agg_combine(fcinfo, "rb_and_agg_combine", '&');
}

PG_FUNCTION_INFO_V1(rb_xor_agg_combine);
Datum
rb_xor_agg_combine(PG_FUNCTION_ARGS)
{
	return rb_agg_combine(fcinfo, "rb_xor_agg_combine", '^');
}

PG_FUNCTION_INFO_V1(rb_agg_serialize);
/* State -> bytea: one version byte, one flag byte (1 = has a bitmap), then the portable serialization. */
Datum
rb_agg_serialize(PG_FUNCTION_ARGS)
{
	RbAggState *st;
	bytea	   *out;
	size_t		size = 0;

	RmAggContext(fcinfo, "rb_agg_serialize");
	st = (RbAggState *) PG_GETARG_POINTER(0);
	if (st->h.rb != NULL)
		size = roaring_bitmap_portable_size_in_bytes(st->h.rb);
	if (size > MaxAllocSize - VARHDRSZ - 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rbitmap aggregate state of %zu bytes exceeds the maximum value size", size)));
	out = (bytea *) palloc(VARHDRSZ + 2 + size);
	SET_VARSIZE(out, VARHDRSZ + 2 + size);
	VARDATA(out)[0] = RB_AGG_STATE_VERSION;
	VARDATA(out)[1] = st->h.rb != NULL ? 1 : 0;
	if (st->h.rb != NULL)
		roaring_bitmap_portable_serialize(st->h.rb, VARDATA(out) + 2);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(rb_agg_deserialize);
/* bytea -> state; the bytes are checked like any untrusted input (ERRCODE_DATA_EXCEPTION). */
Datum
rb_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = RmAggContext(fcinfo, "rb_agg_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	const char *data = VARDATA_ANY(b);
	size_t		len = VARSIZE_ANY_EXHDR(b);
	RbAggState *st;

	if (len < 2 || data[0] != RB_AGG_STATE_VERSION || (data[1] != 0 && data[1] != 1) ||
		(data[1] == 0 && len != 2))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid rbitmap aggregate state"),
				 errdetail("The serialised state has a wrong version, flag or length.")));
	st = rb_agg_state_new(aggctx);
	if (data[1] == 1)
	{
		/* validate in the current context, then move the bitmap under the state's callback */
		RbHandle   *h = rb_from_untrusted(data + 2, len - 2, ERRCODE_DATA_EXCEPTION);

		st->h.rb = h->rb;
		h->rb = NULL;
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(rb_agg_final);
/* The aggregated bitmap; NULL when there was no non-NULL input. Leaves the state intact (window use). */
Datum
rb_agg_final(PG_FUNCTION_ARGS)
{
	RbAggState *st;
	roaring_bitmap_t *copy;
	struct varlena *v;
	RbHandle   *h;

	RmAggContext(fcinfo, "rb_agg_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (RbAggState *) PG_GETARG_POINTER(0);
	if (st->h.rb == NULL)
		PG_RETURN_NULL();
	/* serialise a run-optimised copy so the state itself is not modified */
	h = RbHandleAlloc();
	copy = roaring_bitmap_copy(st->h.rb);
	h->rb = copy;
	RbCheckAlloc(h);
	v = RbToVarlena(h->rb);
	RbFree(h);
	PG_RETURN_POINTER(v);
}

PG_FUNCTION_INFO_V1(rb_agg_cardinality_final);
/* The cardinality of the aggregated bitmap; 0 when there was no non-NULL input. */
Datum
rb_agg_cardinality_final(PG_FUNCTION_ARGS)
{
	RbAggState *st;

	RmAggContext(fcinfo, "rb_agg_cardinality_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_INT64(0);
	st = (RbAggState *) PG_GETARG_POINTER(0);
	if (st->h.rb == NULL)
		PG_RETURN_INT64(0);
	PG_RETURN_INT64((int64) roaring_bitmap_get_cardinality(st->h.rb));
}
