/* consumer/rfm_breaks.c: exact quantile breakpoints of RFM values (a parallel aggregate) and the scores they give. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"

#include "common/rm_agg.h"
#include "consumer/rfm_internal.h"

/* ---------------------------------------------------------------------------------------------------------
 * Quantile breakpoints. With the n values sorted ascending x(1) <= ... <= x(n), the score of v is
 *   1 + floor(k * #{x < v} / n)      (ascending: frequency, monetary)
 *   1 + floor(k * #{x > v} / n)      (descending: recency, where fewer days is better)
 * so equal values always share a score and the lowest (resp. highest) value scores 1. Equivalently, with
 * c_s = ceil((s - 1) n / k) for s = 2..k, the score is 1 + #{s : v > x(c_s)} (ascending) or
 * 1 + #{s : v < x(n + 1 - c_s)} (descending). rfm_breaks returns those k - 1 breakpoints, computed with
 * integer arithmetic so no rounding can move a customer across a boundary.
 */
typedef struct RfmBreaks
{
	int32		k;
	bool		descending;
	int64		n, cap;
	double	   *v;
} RfmBreaks;

static RfmBreaks *
RfmBreaksNew(MemoryContext cxt, int32 k, bool descending)
{
	RfmBreaks  *s = MemoryContextAlloc(cxt, sizeof(RfmBreaks));

	s->k = k;
	s->descending = descending;
	s->n = 0;
	s->cap = 256;
	s->v = MemoryContextAlloc(cxt, sizeof(double) * s->cap);
	return s;
}

static void
RfmBreaksReserve(RfmBreaks *s, int64 extra)
{
	if (s->n + extra > s->cap)
	{
		int64		cap = Max(s->cap * 2, s->n + extra);

		if ((Size) cap * sizeof(double) > MaxAllocHugeSize)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many values for rfm_breaks")));
		s->v = repalloc_huge(s->v, (Size) cap * sizeof(double));
		s->cap = cap;
	}
}

/* rfm_breaks(value, k, descending): NULL values are skipped. */
PG_FUNCTION_INFO_V1(rfm_breaks_trans);
Datum
rfm_breaks_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_breaks");
	RfmBreaks  *s = PG_ARGISNULL(0) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(0);
	double		v;

	if (s == NULL)
	{
		int32		k;

		if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("k and descending must not be null")));
		k = PG_GETARG_INT32(2);
		if (k < 2 || k > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k must be between 2 and 100"),
					 errdetail("Got %d.", k)));
		s = RfmBreaksNew(aggcxt, k, PG_GETARG_BOOL(3));
	}
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm_breaks values must not be NaN")));
	if (s->n == s->cap)
		RfmBreaksReserve(s, 1);
	s->v[s->n++] = v;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(rfm_breaks_combine);
Datum
rfm_breaks_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_breaks_combine");
	RfmBreaks  *a = PG_ARGISNULL(0) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(0);
	RfmBreaks  *b = PG_ARGISNULL(1) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = RfmBreaksNew(aggcxt, b->k, b->descending);
	RfmBreaksReserve(a, b->n);
	memcpy(a->v + a->n, b->v, sizeof(double) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(rfm_breaks_serial);
Datum
rfm_breaks_serial(PG_FUNCTION_ARGS)
{
	RfmBreaks  *s = (RfmBreaks *) PG_GETARG_POINTER(0);
	Size		len = VARHDRSZ + 16 + sizeof(double) * s->n;
	bytea	   *out = palloc_extended(len, MCXT_ALLOC_HUGE);
	char	   *p = VARDATA(out);
	int32		head[2] = {RFM_SERIAL_VERSION, s->k * (s->descending ? -1 : 1)};

	SET_VARSIZE(out, len);
	memcpy(p, head, 8);
	memcpy(p + 8, &s->n, 8);
	memcpy(p + 16, s->v, sizeof(double) * s->n);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(rfm_breaks_deserial);
Datum
rfm_breaks_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_breaks_deserial");
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *p = VARDATA_ANY(in);
	int32		head[2];
	int64		n;
	RfmBreaks  *s;

	if (len < 16)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm_breaks state: too short")));
	memcpy(head, p, 8);
	memcpy(&n, p + 8, 8);
	if (head[0] != RFM_SERIAL_VERSION || abs(head[1]) < 2 || abs(head[1]) > 100 || n < 0 ||
		(Size) n > (len - 16) / sizeof(double) || len != 16 + sizeof(double) * (Size) n)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm_breaks state")));
	s = RfmBreaksNew(aggcxt, abs(head[1]), head[1] < 0);
	RfmBreaksReserve(s, n);
	memcpy(s->v, p + 16, sizeof(double) * n);
	s->n = n;
	PG_RETURN_POINTER(s);
}

static int
RfmCmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The k - 1 breakpoints (see above) of n >= 1 values sorted ascending, as float8 Datums. */
static void
RfmBreaksOfSorted(const double *v, int64 n, int32 k, bool descending, Datum *out)
{
	for (int32 st = 2; st <= k; st++)
	{
		/* c = ceil((st - 1) n / k), 1-based; at least 1 because st >= 2 and n >= 1 */
		int64		c = ((int64) (st - 1) * n + k - 1) / k;

		out[st - 2] = Float8GetDatum(descending ? v[n - c] : v[c - 1]);
	}
}

/* 1 + the number of breaks v exceeds (descending: is below). */
int32
RfmScoreOf(double v, const double *b, int nb, bool descending)
{
	int32		score = 1;

	for (int i = 0; i < nb; i++)
		score += descending ? (v < b[i]) : (v > b[i]);
	return score;
}

/* Final: the k - 1 breakpoints (see above), NULL when there are no values. Sorts a copy of the state. */
PG_FUNCTION_INFO_V1(rfm_breaks_final);
Datum
rfm_breaks_final(PG_FUNCTION_ARGS)
{
	RfmBreaks  *s = PG_ARGISNULL(0) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(0);
	double	   *v;
	Datum	   *out;
	int64		n;

	if (s == NULL || s->n == 0)
		PG_RETURN_NULL();
	n = s->n;
	v = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	memcpy(v, s->v, sizeof(double) * n);
	qsort(v, n, sizeof(double), RfmCmpDouble);
	out = palloc(sizeof(Datum) * (s->k - 1));
	RfmBreaksOfSorted(v, n, s->k, s->descending, out);
	pfree(v);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, s->k - 1, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* rfm_quantile_score(value, breaks, descending): 1 + #{b : value > b} (ascending) or #{b : value < b}. */
PG_FUNCTION_INFO_V1(rfm_quantile_score);
Datum
rfm_quantile_score(PG_FUNCTION_ARGS)
{
	double		v = PG_GETARG_FLOAT8(0);
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
	bool		desc = PG_GETARG_BOOL(2);
	int			nb;

	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("breaks must be a one-dimensional float8 array without NULLs")));
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value must not be NaN")));
	nb = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	PG_RETURN_INT32(RfmScoreOf(v, (double *) ARR_DATA_PTR(a), nb, desc));
}
