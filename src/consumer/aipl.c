/* consumer/aipl.c: AIPL in C: one rule's daily holders as roaring bitmaps, from the rule's daily signals. */
/*
 * aipl_window_agg(customer_key, dt, n, amount, from_date, to_date, lookback_days, min_count, min_amount) collects
 * the daily signals of one rule (one row per customer and day) and returns, for every day d of
 * [from_date, to_date], the bitmap of the customers whose signals in the window (d - lookback_days, d] reach
 * min_count and min_amount. The state is the list of signals (combine appends, so the aggregate runs in parallel
 * workers); the final function sorts it by customer and day and sweeps each customer's window once: the window
 * sums change only where a signal enters (its day) or leaves (its day + lookback), so a customer costs
 * O(signals) plus one bitmap append per held day. Customers are visited in ascending key order, so every day's
 * bitmap is appended to at its end, CRoaring's fast path. Amounts are summed exactly in units of 1/10000.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"

#include "bitmap/bitmap.h"
#include "common/retail_mid.h"
#include "common/rm_agg.h"

#define AIPL_STATE_VERSION 1
#define AIPL_MAX_SPAN 36600			/* days between from_date and to_date, as aipl_refresh allows */
#define AIPL_MAX_LOOKBACK 3660		/* as the aipl_rule check allows */
#define AIPL_AMOUNT_SCALE 10000.0	/* amounts are numeric(.., 4): summed exactly as integers */
#define AIPL_MAX_AMOUNT 9.0e14		/* |amount| above this cannot be scaled exactly */

/* One customer-day of signals. */
typedef struct AiplSignal
{
	int32		key;
	int32		day;			/* DateADT */
	int64		n;
	int64		amount;			/* x 10000 */
} AiplSignal;

/* The aggregate state: the parameters (the same on every row) and the signals inside the horizon. */
typedef struct AiplState
{
	int32		from_day;
	int32		to_day;
	int32		lookback;
	int64		min_count;
	int64		min_amount;		/* x 10000 */
	int64		nsig;
	int64		cap;
	AiplSignal *sig;
} AiplState;

/* Converts an amount to exact 1/10000 units; a specific error for NaN, infinity and out-of-range values. */
static int64
AiplScaleAmount(double x, const char *what)
{
	if (isnan(x) || isinf(x) || fabs(x) > AIPL_MAX_AMOUNT)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("aipl_window_agg %s %g is out of range", what, x),
				 errdetail("Amounts must be finite and at most 9e14 in absolute value.")));
	return (int64) llround(x * AIPL_AMOUNT_SCALE);
}

/* Checks the parameters once, when the state is created or deserialised. */
static void
AiplCheckParams(int32 from_day, int32 to_day, int32 lookback, int64 min_count, int64 min_amount, int errc)
{
	if (DATE_NOT_FINITE(from_day) || DATE_NOT_FINITE(to_day) || from_day > to_day ||
		(int64) to_day - from_day > AIPL_MAX_SPAN)
		ereport(ERROR,
				(errcode(errc),
				 errmsg("aipl_window_agg range must run forwards and span at most 100 years")));
	if (lookback < 1 || lookback > AIPL_MAX_LOOKBACK)
		ereport(ERROR,
				(errcode(errc),
				 errmsg("aipl_window_agg lookback_days must be between 1 and %d", AIPL_MAX_LOOKBACK)));
	if (min_count < 1)
		ereport(ERROR, (errcode(errc), errmsg("aipl_window_agg min_count must be at least 1")));
	if (min_amount < 0)
		ereport(ERROR, (errcode(errc), errmsg("aipl_window_agg min_amount must not be negative")));
}

/* A new empty state in the aggregate context. */
static AiplState *
AiplStateNew(MemoryContext aggctx, int32 from_day, int32 to_day, int32 lookback, int64 min_count, int64 min_amount)
{
	AiplState  *st = (AiplState *) MemoryContextAllocZero(aggctx, sizeof(AiplState));

	st->from_day = from_day;
	st->to_day = to_day;
	st->lookback = lookback;
	st->min_count = min_count;
	st->min_amount = min_amount;
	st->cap = 1024;
	st->sig = (AiplSignal *) MemoryContextAllocHuge(aggctx, st->cap * sizeof(AiplSignal));
	return st;
}

/* Room for extra more signals (the array lives in the state's context, which may exceed 1 GB). */
static void
AiplReserve(AiplState *st, int64 extra)
{
	int64		need = st->nsig + extra;

	if (need <= st->cap)
		return;
	while (st->cap < need)
		st->cap *= 2;
	st->sig = (AiplSignal *) repalloc_huge(st->sig, st->cap * sizeof(AiplSignal));
}

PG_FUNCTION_INFO_V1(aipl_window_agg_trans);
/* Adds one customer-day of signals; rows outside the horizon (from - lookback, to] are dropped at once. */
Datum
aipl_window_agg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = RmAggContext(fcinfo, "aipl_window_agg_trans");
	AiplState  *st = PG_ARGISNULL(0) ? NULL : (AiplState *) PG_GETARG_POINTER(0);
	int32		from_day, to_day, lookback, key, day;
	int64		min_count, min_amount, n;
	AiplSignal *s;
	int			i;

	for (i = 5; i <= 9; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("aipl_window_agg parameters must not be null")));
	from_day = PG_GETARG_DATEADT(5);
	to_day = PG_GETARG_DATEADT(6);
	lookback = PG_GETARG_INT32(7);
	min_count = PG_GETARG_INT64(8);
	min_amount = AiplScaleAmount(PG_GETARG_FLOAT8(9), "min_amount");
	if (st == NULL)
	{
		AiplCheckParams(from_day, to_day, lookback, min_count, min_amount, ERRCODE_INVALID_PARAMETER_VALUE);
		st = AiplStateNew(aggctx, from_day, to_day, lookback, min_count, min_amount);
	}
	else if (st->from_day != from_day || st->to_day != to_day || st->lookback != lookback ||
			 st->min_count != min_count || st->min_amount != min_amount)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aipl_window_agg parameters must be the same on every row of a group")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(st);
	key = PG_GETARG_INT32(1);
	RbCheckKey(key);
	day = PG_GETARG_DATEADT(2);
	if (DATE_NOT_FINITE(day) || day > st->to_day || (int64) day + st->lookback <= st->from_day)
		PG_RETURN_POINTER(st);
	n = PG_GETARG_INT64(3);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aipl_window_agg signal count must not be negative")));
	AiplReserve(st, 1);
	s = &st->sig[st->nsig++];
	s->key = key;
	s->day = day;
	s->n = n;
	s->amount = PG_ARGISNULL(4) ? 0 : AiplScaleAmount(PG_GETARG_FLOAT8(4), "amount");
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(aipl_window_agg_combine);
/* Appends the signals of state 2 to state 1; both must have the same parameters. */
Datum
aipl_window_agg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = RmAggContext(fcinfo, "aipl_window_agg_combine");
	AiplState  *s1 = PG_ARGISNULL(0) ? NULL : (AiplState *) PG_GETARG_POINTER(0);
	AiplState  *s2 = PG_ARGISNULL(1) ? NULL : (AiplState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
		s1 = AiplStateNew(aggctx, s2->from_day, s2->to_day, s2->lookback, s2->min_count, s2->min_amount);
	else if (s1->from_day != s2->from_day || s1->to_day != s2->to_day || s1->lookback != s2->lookback ||
			 s1->min_count != s2->min_count || s1->min_amount != s2->min_amount)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aipl_window_agg parameters must be the same on every row of a group")));
	AiplReserve(s1, s2->nsig);
	memcpy(s1->sig + s1->nsig, s2->sig, s2->nsig * sizeof(AiplSignal));
	s1->nsig += s2->nsig;
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(aipl_window_agg_serialize);
/* State -> bytea: version, the parameters, the signal count, then the signals (network byte order). */
Datum
aipl_window_agg_serialize(PG_FUNCTION_ARGS)
{
	AiplState  *st;
	StringInfoData buf;
	int64		i;

	RmAggContext(fcinfo, "aipl_window_agg_serialize");
	st = (AiplState *) PG_GETARG_POINTER(0);
	if ((double) st->nsig * 24.0 + 64.0 > (double) MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("aipl_window_agg state of %lld signals is too large to pass between parallel workers",
						(long long) st->nsig),
				 errhint("Run the aggregate without parallel workers (max_parallel_workers_per_gather = 0).")));
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, AIPL_STATE_VERSION);
	pq_sendint32(&buf, st->from_day);
	pq_sendint32(&buf, st->to_day);
	pq_sendint32(&buf, st->lookback);
	pq_sendint64(&buf, st->min_count);
	pq_sendint64(&buf, st->min_amount);
	pq_sendint64(&buf, st->nsig);
	for (i = 0; i < st->nsig; i++)
	{
		pq_sendint32(&buf, st->sig[i].key);
		pq_sendint32(&buf, st->sig[i].day);
		pq_sendint64(&buf, st->sig[i].n);
		pq_sendint64(&buf, st->sig[i].amount);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(aipl_window_agg_deserialize);
/* bytea -> state; the bytes are checked like untrusted input (ERRCODE_DATA_EXCEPTION). */
Datum
aipl_window_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = RmAggContext(fcinfo, "aipl_window_agg_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	AiplState  *st;
	int32		from_day, to_day, lookback;
	int64		min_count, min_amount, nsig, i;
	size_t		len = VARSIZE_ANY_EXHDR(b);

	if (len < 1 + 12 + 24 || ((const unsigned char *) VARDATA_ANY(b))[0] != AIPL_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid aipl_window_agg state"),
				 errdetail("The serialised state has a wrong version or length.")));
	buf.data = VARDATA_ANY(b);
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 1;
	from_day = pq_getmsgint(&buf, 4);
	to_day = pq_getmsgint(&buf, 4);
	lookback = pq_getmsgint(&buf, 4);
	min_count = pq_getmsgint64(&buf);
	min_amount = pq_getmsgint64(&buf);
	nsig = pq_getmsgint64(&buf);
	if (nsig < 0 || (size_t) nsig != (len - 37) / 24 || (len - 37) % 24 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid aipl_window_agg state"),
				 errdetail("The signal count does not match the length.")));
	AiplCheckParams(from_day, to_day, lookback, min_count, min_amount, ERRCODE_DATA_EXCEPTION);
	st = AiplStateNew(aggctx, from_day, to_day, lookback, min_count, min_amount);
	AiplReserve(st, nsig);
	for (i = 0; i < nsig; i++)
	{
		AiplSignal *s = &st->sig[i];

		s->key = pq_getmsgint(&buf, 4);
		s->day = pq_getmsgint(&buf, 4);
		s->n = pq_getmsgint64(&buf);
		s->amount = pq_getmsgint64(&buf);
		if (s->key < 0 || s->n < 0 || DATE_NOT_FINITE(s->day))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("invalid aipl_window_agg state"),
					 errdetail("A signal has a negative key or count or an infinite day.")));
	}
	st->nsig = nsig;
	PG_RETURN_POINTER(st);
}

static int
AiplSignalCmp(const void *a, const void *b)
{
	const AiplSignal *x = (const AiplSignal *) a;
	const AiplSignal *y = (const AiplSignal *) b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return 0;
}

/*
 * The holders of each day while they are collected: keys arrive in ascending order, so each day's keys are buffered
 * and appended to its bitmap in bulk (roaring_bitmap_add_many), far cheaper than one insertion per key.
 */
#define AIPL_FLUSH 4096
typedef struct AiplDays
{
	int32		ndays;
	RbHandle  **rb;				/* per day, bitmap created on first flush */
	uint32	  **buf;			/* per day, AIPL_FLUSH keys, allocated on first use */
	int		   *len;
} AiplDays;

/* Appends a day's buffered keys to its bitmap. */
static void
AiplFlush(AiplDays *d, int i)
{
	if (d->len[i] == 0)
		return;
	if (d->rb[i]->rb == NULL)
	{
		d->rb[i]->rb = roaring_bitmap_create();
		RbCheckAlloc(d->rb[i]);
	}
	roaring_bitmap_add_many(d->rb[i]->rb, d->len[i], d->buf[i]);
	d->len[i] = 0;
}

/* Adds key to the days [d0, d1] (clipped to the range) where the rule holds. */
static void
AiplMark(AiplState *st, AiplDays *d, int32 key, int64 d0, int64 d1)
{
	int64		day;

	if (d0 < st->from_day)
		d0 = st->from_day;
	if (d1 > st->to_day)
		d1 = st->to_day;
	for (day = d0; day <= d1; day++)
	{
		int			i = (int) (day - st->from_day);

		if (d->buf[i] == NULL)
			d->buf[i] = (uint32 *) palloc(AIPL_FLUSH * sizeof(uint32));
		d->buf[i][d->len[i]++] = (uint32) key;
		if (d->len[i] == AIPL_FLUSH)
			AiplFlush(d, i);
	}
}

PG_FUNCTION_INFO_V1(aipl_window_agg_final);
/*
 * The holders of each day of [from_date, to_date] as rbitmap[] (element i = from_date + i - 1; empty bitmaps
 * for days without holders); NULL without input. Sorts the state's signals in place: they stay a valid state.
 */
Datum
aipl_window_agg_final(PG_FUNCTION_ARGS)
{
	AiplState  *st;
	int			ndays, i;
	int64		a, b;
	AiplDays	days;
	Datum	   *elems;
	Oid			rettype, elemtype;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ArrayType  *result;

	RmAggContext(fcinfo, "aipl_window_agg_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (AiplState *) PG_GETARG_POINTER(0);
	rettype = get_fn_expr_rettype(fcinfo->flinfo);
	elemtype = OidIsValid(rettype) ? get_element_type(rettype) : InvalidOid;
	if (!OidIsValid(elemtype))
		elog(ERROR, "aipl_window_agg_final: cannot determine its result type");
	ndays = st->to_day - st->from_day + 1;
	days.ndays = ndays;
	days.rb = (RbHandle **) palloc(ndays * sizeof(RbHandle *));
	days.buf = (uint32 **) palloc0(ndays * sizeof(uint32 *));
	days.len = (int *) palloc0(ndays * sizeof(int));
	for (i = 0; i < ndays; i++)
		days.rb[i] = RbHandleAlloc();

	if (st->nsig > 1)
		qsort(st->sig, st->nsig, sizeof(AiplSignal), AiplSignalCmp);
	/* one customer [a, b) at a time; e = next signal to enter, l = next to leave the window */
	for (a = 0; a < st->nsig; a = b)
	{
		int64		e, l, cnt = 0, amt = 0;
		int32		key = st->sig[a].key;

		for (b = a; b < st->nsig && st->sig[b].key == key; b++)
			CHECK_FOR_INTERRUPTS();
		e = l = a;
		while (e < b || l < b)
		{
			int64		at, next;

			/* the next change point: the earlier of the next entering day and the next leaving day */
			at = (e < b) ? st->sig[e].day : PG_INT64_MAX;
			if (l < b && (int64) st->sig[l].day + st->lookback < at)
				at = (int64) st->sig[l].day + st->lookback;
			while (e < b && st->sig[e].day == at)
			{
				cnt += st->sig[e].n;
				amt += st->sig[e].amount;
				e++;
			}
			while (l < b && (int64) st->sig[l].day + st->lookback == at)
			{
				cnt -= st->sig[l].n;
				amt -= st->sig[l].amount;
				l++;
			}
			next = (e < b) ? st->sig[e].day : PG_INT64_MAX;
			if (l < b && (int64) st->sig[l].day + st->lookback < next)
				next = (int64) st->sig[l].day + st->lookback;
			if (cnt >= st->min_count && amt >= st->min_amount && e > l)
				AiplMark(st, &days, key, at, next - 1);
		}
	}

	elems = (Datum *) palloc(ndays * sizeof(Datum));
	for (i = 0; i < ndays; i++)
	{
		AiplFlush(&days, i);
		if (days.rb[i]->rb == NULL)
		{
			days.rb[i]->rb = roaring_bitmap_create();
			RbCheckAlloc(days.rb[i]);
		}
		elems[i] = PointerGetDatum(RbToVarlena(days.rb[i]->rb));
		RbFree(days.rb[i]);
		if (days.buf[i] != NULL)
			pfree(days.buf[i]);
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	result = construct_array(elems, ndays, elemtype, typlen, typbyval, typalign);
	PG_RETURN_ARRAYTYPE_P(result);
}
