/* consumer/oneid.c: connected components of the identity graph (customer keys seen together), by union-find. */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "common/retail_mid.h"
#include "common/rm_agg.h"

#define ONEID_STATE_VERSION 1

/*
 * The aggregate state is the edge list itself: appending is the cheapest transition, partial states of parallel
 * workers combine by concatenation, and the union-find runs once, in the final function, over all edges.
 */
typedef struct OneidEdges
{
	int64		n;
	int64		cap;
	int32	   *ends;			/* 2 * n keys: ends[2i], ends[2i + 1] */
} OneidEdges;

static OneidEdges *
OneidEdgesNew(MemoryContext cxt, int64 cap)
{
	OneidEdges *e = MemoryContextAllocZero(cxt, sizeof(OneidEdges));

	e->cap = Max(cap, 64);
	e->ends = MemoryContextAllocHuge(cxt, sizeof(int32) * 2 * e->cap);
	return e;
}

static void
OneidEdgesReserve(OneidEdges *e, int64 more)
{
	int64		need = e->n + more;

	if (need <= e->cap)
		return;
	if (need > (int64) (MaxAllocHugeSize / (2 * sizeof(int32))) - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("identity graph too large: more than %lld edges",
						(long long) (MaxAllocHugeSize / (2 * sizeof(int32))))));
	while (e->cap < need)
		e->cap *= 2;
	e->ends = repalloc_huge(e->ends, sizeof(int32) * 2 * e->cap);
}

PG_FUNCTION_INFO_V1(oneid_edges_trans);

/* Adds one edge; NULL ends are skipped (an identifier seen alone links nothing), negative keys are errors. */
Datum
oneid_edges_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "oneid_edges_trans");
	OneidEdges *e = PG_ARGISNULL(0) ? NULL : (OneidEdges *) PG_GETARG_POINTER(0);
	int32		a, b;

	if (e == NULL)
		e = OneidEdgesNew(aggcxt, 1024);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(e);
	a = PG_GETARG_INT32(1);
	b = PG_GETARG_INT32(2);
	if (a < 0 || b < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("identity graph keys must not be negative"),
				 errdetail("Got the edge (%d, %d).", a, b)));
	OneidEdgesReserve(e, 1);
	e->ends[2 * e->n] = a;
	e->ends[2 * e->n + 1] = b;
	e->n++;
	PG_RETURN_POINTER(e);
}

PG_FUNCTION_INFO_V1(oneid_edges_combine);

Datum
oneid_edges_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "oneid_edges_combine");
	OneidEdges *a = PG_ARGISNULL(0) ? NULL : (OneidEdges *) PG_GETARG_POINTER(0);
	OneidEdges *b = PG_ARGISNULL(1) ? NULL : (OneidEdges *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = OneidEdgesNew(aggcxt, b->n);
	OneidEdgesReserve(a, b->n);
	memcpy(a->ends + 2 * a->n, b->ends, sizeof(int32) * 2 * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(oneid_edges_serial);

/* Layout: version (int32), n (int64), then 2n int32 keys in network order. */
Datum
oneid_edges_serial(PG_FUNCTION_ARGS)
{
	OneidEdges *e = (OneidEdges *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, ONEID_STATE_VERSION);
	pq_sendint64(&buf, e->n);
	for (int64 i = 0; i < 2 * e->n; i++)
		pq_sendint32(&buf, e->ends[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(oneid_edges_deserial);

Datum
oneid_edges_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "oneid_edges_deserial");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	OneidEdges *e;
	int64		n;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (buf.len < 12 || pq_getmsgint(&buf, 4) != ONEID_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid identity graph state: bad header")));
	n = pq_getmsgint64(&buf);
	if (n < 0 || (buf.len - 12) / 8 != n || (buf.len - 12) % 8 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid identity graph state: %lld edges do not match %d bytes",
						(long long) n, buf.len)));
	e = OneidEdgesNew(aggcxt, n);
	for (int64 i = 0; i < 2 * n; i++)
	{
		int32		k = (int32) pq_getmsgint(&buf, 4);

		if (k < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("invalid identity graph state: negative key")));
		e->ends[i] = k;
	}
	e->n = n;
	PG_RETURN_POINTER(e);
}

static int
CompareInt32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Index of key in the sorted, distinct nodes (it is always there). */
static inline int64
NodeIndex(const int32 *nodes, int64 count, int32 key)
{
	int64		lo = 0, hi = count - 1;

	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (nodes[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Root of x with path halving. Both forests below link the larger root under the smaller one, so parent[x] <= x
 * always holds and a root is the smallest member of its tree.
 */
static inline int32
FindRoot(int32 *parent, int32 x)
{
	while (parent[x] != x)
	{
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

static inline void
Union(int32 *parent, int32 a, int32 b)
{
	int32		ra = FindRoot(parent, a);
	int32		rb = FindRoot(parent, b);

	if (ra < rb)
		parent[rb] = ra;
	else if (rb < ra)
		parent[ra] = rb;
}

/* An int4[] of count elements, allocated whole so that the caller fills ARR_DATA_PTR directly. */
static ArrayType *
Int4ArrayAlloc(int64 count)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int32) * count;
	ArrayType  *a = palloc(nbytes);

	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = INT4OID;
	ARR_DIMS(a)[0] = (int) count;
	ARR_LBOUND(a)[0] = 1;
	return a;
}

/*
 * Dense keys (the customer-key dictionary hands them out consecutively): the union-find forest is indexed by
 * key - minkey directly, so there is no sort and no lookup; absent keys are marked -1. A final ascending sweep
 * points every node at its root (its parent is already final, being smaller) and writes both arrays.
 */
static void
LabelDense(const OneidEdges *e, int32 minkey, int64 range, ArrayType **nodes_out, ArrayType **labels_out)
{
	int32	   *parent = palloc_extended(sizeof(int32) * range, MCXT_ALLOC_HUGE);
	int64		count = 0;
	int32	   *nodes, *labels;
	ArrayType  *na, *la;

	memset(parent, 0xFF, sizeof(int32) * range);
	for (int64 i = 0; i < 2 * e->n; i++)
	{
		int32		x = e->ends[i] - minkey;

		if (parent[x] < 0)
		{
			parent[x] = x;
			count++;
		}
	}
	for (int64 i = 0; i < e->n; i++)
	{
		Union(parent, e->ends[2 * i] - minkey, e->ends[2 * i + 1] - minkey);
		if ((i & 0xFFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	if (count > (int64) ((MaxAllocSize - 64) / (2 * sizeof(int32))))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("identity graph too large for one result: %lld nodes", (long long) count)));
	na = Int4ArrayAlloc(count);
	la = Int4ArrayAlloc(count);
	nodes = (int32 *) ARR_DATA_PTR(na);
	labels = (int32 *) ARR_DATA_PTR(la);
	count = 0;
	for (int64 x = 0; x < range; x++)
	{
		if (parent[x] < 0)
			continue;
		parent[x] = parent[parent[x]];
		nodes[count] = (int32) x + minkey;
		labels[count] = parent[x] + minkey;
		count++;
	}
	pfree(parent);
	*nodes_out = na;
	*labels_out = la;
}

/* Sparse keys: sort the distinct keys and find each end's index by binary search. */
static void
LabelSorted(const OneidEdges *e, ArrayType **nodes_out, ArrayType **labels_out)
{
	int32	   *sorted = palloc_extended(sizeof(int32) * 2 * e->n, MCXT_ALLOC_HUGE);
	int32	   *parent;
	int64		count = 0;
	ArrayType  *na, *la;
	int32	   *labels;

	memcpy(sorted, e->ends, sizeof(int32) * 2 * e->n);
	qsort(sorted, 2 * e->n, sizeof(int32), CompareInt32);
	for (int64 i = 0; i < 2 * e->n; i++)
		if (i == 0 || sorted[i] != sorted[count - 1])
			sorted[count++] = sorted[i];
	if (count > (int64) ((MaxAllocSize - 64) / (2 * sizeof(int32))))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("identity graph too large for one result: %lld nodes", (long long) count)));

	parent = palloc_extended(sizeof(int32) * count, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < count; i++)
		parent[i] = (int32) i;
	for (int64 i = 0; i < e->n; i++)
	{
		Union(parent, (int32) NodeIndex(sorted, count, e->ends[2 * i]),
			  (int32) NodeIndex(sorted, count, e->ends[2 * i + 1]));
		if ((i & 0xFFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	na = Int4ArrayAlloc(count);
	la = Int4ArrayAlloc(count);
	memcpy(ARR_DATA_PTR(na), sorted, sizeof(int32) * count);
	labels = (int32 *) ARR_DATA_PTR(la);
	for (int64 i = 0; i < count; i++)
	{
		parent[i] = parent[parent[i]];
		labels[i] = sorted[parent[i]];
	}
	pfree(sorted);
	pfree(parent);
	*nodes_out = na;
	*labels_out = la;
}

PG_FUNCTION_INFO_V1(oneid_components_final);

/*
 * Runs union-find over all edges and returns (nodes int4[], components int4[]): every key that appears in an
 * edge, ascending, with the smallest key of its connected component as the component's label. The label is a
 * function of the component alone, so any plan, serial or parallel, gives the same answer.
 * Leaves the state untouched, so the final function can run again (window use).
 */
Datum
oneid_components_final(PG_FUNCTION_ARGS)
{
	OneidEdges *e = PG_ARGISNULL(0) ? NULL : (OneidEdges *) PG_GETARG_POINTER(0);
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	ArrayType  *na, *la;
	int32		minkey, maxkey;
	int64		range;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "oneid_components_final must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (e == NULL || e->n == 0)
		PG_RETURN_NULL();

	minkey = maxkey = e->ends[0];
	for (int64 i = 1; i < 2 * e->n; i++)
	{
		minkey = Min(minkey, e->ends[i]);
		maxkey = Max(maxkey, e->ends[i]);
	}
	range = (int64) maxkey - minkey + 1;
	/* direct indexing when the key range costs no more memory than sorting would (16 bytes an edge) */
	if (range <= 4 * e->n + (1 << 20))
		LabelDense(e, minkey, range, &na, &la);
	else
		LabelSorted(e, &na, &la);
	values[0] = PointerGetDatum(na);
	values[1] = PointerGetDatum(la);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
