/*
 * rfm.c: recency, frequency and monetary value per customer as parallel-safe aggregates (over order lines or
 * over daily customer rows), and tie-safe quantile scoring (exact breakpoints from a parallel aggregate).
 */
#include "retail_mid.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(rfm_lines_trans_text);
PG_FUNCTION_INFO_V1(rfm_lines_trans_text_num);
PG_FUNCTION_INFO_V1(rfm_lines_trans_int8_num);
PG_FUNCTION_INFO_V1(rfm_daily_trans_num);
PG_FUNCTION_INFO_V1(rfm_lines_trans_int8);
PG_FUNCTION_INFO_V1(rfm_daily_trans);
PG_FUNCTION_INFO_V1(rfm_combine);
PG_FUNCTION_INFO_V1(rfm_serial);
PG_FUNCTION_INFO_V1(rfm_deserial);
PG_FUNCTION_INFO_V1(rfm_final);
PG_FUNCTION_INFO_V1(rfm_breaks_trans);
PG_FUNCTION_INFO_V1(rfm_breaks_combine);
PG_FUNCTION_INFO_V1(rfm_breaks_serial);
PG_FUNCTION_INFO_V1(rfm_breaks_deserial);
PG_FUNCTION_INFO_V1(rfm_breaks_final);
PG_FUNCTION_INFO_V1(rfm_quantile_score);

#define RFM_SERIAL_VERSION 1
#define RFM_MONEY_SCALE 10000.0	/* amounts are summed exactly in 1/10000 of the currency unit */

/*
 * One customer's state. Order ids of the window are kept as 64-bit hashes (distinct-counted in the final
 * function); the daily form adds its order counts to n_daily instead.
 */
typedef struct RfmState
{
	DateADT		as_of;
	int32		window_days;
	DateADT		first;			/* first sale date on or before as_of; DATEVAL_NOEND when none */
	DateADT		last;			/* last sale date on or before as_of; DATEVAL_NOBEGIN when none */
	int64		money;			/* window sum in 1/10000 units, exact so that any combine order agrees */
	int64		n_daily;		/* orders counted by the daily form */
	int32		n, cap;			/* order hashes */
	uint64	   *ids;
} RfmState;

static RfmState *
RfmStateNew(MemoryContext cxt, DateADT as_of, int32 window_days)
{
	RfmState   *s = MemoryContextAlloc(cxt, sizeof(RfmState));

	s->as_of = as_of;
	s->window_days = window_days;
	s->first = DATEVAL_NOEND;
	s->last = DATEVAL_NOBEGIN;
	s->money = 0;
	s->n_daily = 0;
	s->n = 0;
	s->cap = 0;
	s->ids = NULL;
	return s;
}

static MemoryContext
RfmAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcxt;
}

/* Creates the state on the first row, validating as_of and window_days (arguments 3 and 4) once. */
static RfmState *
RfmGetState(FunctionCallInfo fcinfo, MemoryContext aggcxt)
{
	DateADT		as_of;
	int32		window_days;

	if (!PG_ARGISNULL(0))
	{
		RfmState   *s = (RfmState *) PG_GETARG_POINTER(0);

		/* the parameters are per group: a column that varies inside a group is a mistake */
		if (PG_ARGISNULL(4) || PG_ARGISNULL(5) || PG_GETARG_DATEADT(4) != s->as_of ||
			PG_GETARG_INT32(5) != s->window_days)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of and window_days must be the same for every row of a group")));
		return s;
	}
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of and window_days must not be null")));
	as_of = PG_GETARG_DATEADT(4);
	window_days = PG_GETARG_INT32(5);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite date")));
	if (window_days <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_days must be positive"),
				 errdetail("Got %d.", window_days)));
	return RfmStateNew(aggcxt, as_of, window_days);
}

static int64
RfmMoney(double amount)
{
	double		scaled;

	if (isnan(amount) || isinf(amount))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("amount must be a finite number")));
	scaled = rint(amount * RFM_MONEY_SCALE);
	if (fabs(scaled) > 9.0e17)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount %g is out of range", amount)));
	return (int64) scaled;
}

/*
 * numeric amount in 1/10000 units, rounded half away from zero (as round(x, 4)). Reads the numeric's digits
 * directly: the on-disk format (base-10000 digits, short and long headers) is fixed because pg_upgrade keeps
 * numeric data as it is, and going through float8 or numeric arithmetic would cost more than the whole
 * aggregate. One base-10000 digit is exactly the 1/10000 unit.
 */
static int64
RfmMoneyNumeric(Datum d)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	const char *p = VARDATA_ANY(v);
	Size		len = VARSIZE_ANY_EXHDR(v);
	uint16		h;
	int			weight, ndigits, last_e = 0;
	bool		neg, consumed = false;
	const char *digits;
	int64		acc = 0;

	if (len < 2)
		elog(ERROR, "invalid numeric datum");
	memcpy(&h, p, 2);
	if ((h & 0xC000) == 0xC000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("amount must be a finite number")));
	if ((h & 0xC000) == 0x8000)
	{
		/* short header: sign bit 0x2000, weight in 7 bits with sign 0x0040 */
		neg = (h & 0x2000) != 0;
		weight = (h & 0x0040) ? (int) (~0x003F | (h & 0x003F)) : (int) (h & 0x003F);
		digits = p + 2;
		ndigits = (len - 2) / 2;
	}
	else
	{
		int16		w;

		if (len < 4)
			elog(ERROR, "invalid numeric datum");
		neg = (h & 0xC000) == 0x4000;
		memcpy(&w, p + 2, 2);
		weight = w;
		digits = p + 4;
		ndigits = (len - 4) / 2;
	}
	for (int i = 0; i < ndigits; i++)
	{
		int16		dg;
		int			e = weight + 1 - i;		/* power of 10000 of this digit in the scaled value */

		memcpy(&dg, digits + 2 * i, 2);
		if (e < 0)
		{
			if (e == -1 && dg >= 5000)
				acc += 1;		/* cannot overflow: acc was multiplied by 10000 up to here */
			break;
		}
		if (pg_mul_s64_overflow(acc, 10000, &acc) || pg_add_s64_overflow(acc, dg, &acc))
			goto overflow;
		consumed = true;
		last_e = e;
	}
	/* trailing zero digits are not stored */
	for (int e = consumed ? last_e : 0; consumed && e > 0; e--)
		if (pg_mul_s64_overflow(acc, 10000, &acc))
			goto overflow;
	if (acc > (int64) 9.0e17)
		goto overflow;
	return neg ? -acc : acc;
overflow:
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("amount is out of range")));
	return 0;
}

static inline void
RfmAddMoney(RfmState *s, int64 m)
{
	if (pg_add_s64_overflow(s->money, m, &s->money))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("monetary sum is out of range")));
}

/* A sale on day: first/last dates. */
static inline void
RfmSeeSale(RfmState *s, DateADT day)
{
	if (day < s->first)
		s->first = day;
	if (day > s->last)
		s->last = day;
}

static inline bool
RfmInWindow(RfmState *s, DateADT day)
{
	return day > s->as_of - s->window_days;
}

/* Common part of the two order-line transition functions; id is the 64-bit key of the order. */
static Datum
RfmLineCommon(FunctionCallInfo fcinfo, uint64 id, bool is_numeric)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_agg");
	RfmState   *s = RfmGetState(fcinfo, aggcxt);
	DateADT		day;
	int64		m;

	day = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order_date must be a finite date")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("amount must not be null")));
	m = is_numeric ? RfmMoneyNumeric(PG_GETARG_DATUM(3)) : RfmMoney(PG_GETARG_FLOAT8(3));
	if (day > s->as_of)
		PG_RETURN_POINTER(s);	/* after the as-of date: not yet happened */
	if (m >= 0)
		RfmSeeSale(s, day);
	if (!RfmInWindow(s, day))
		PG_RETURN_POINTER(s);
	RfmAddMoney(s, m);
	if (m < 0)
		PG_RETURN_POINTER(s);	/* a return line adds no order */
	/* lines of one order usually arrive together: skip the repeat of the last id */
	if (s->n > 0 && s->ids[s->n - 1] == id)
		PG_RETURN_POINTER(s);
	if (s->n == s->cap)
	{
		if (s->cap >= (int32) (MaxAllocSize / sizeof(uint64) / 2))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many orders for one customer")));
		s->cap = s->cap == 0 ? 4 : s->cap * 2;
		s->ids = s->ids == NULL ? MemoryContextAlloc(aggcxt, sizeof(uint64) * s->cap)
			: repalloc(s->ids, sizeof(uint64) * s->cap);
	}
	s->ids[s->n++] = id;
	PG_RETURN_POINTER(s);
}

/* rfm_agg(order_date, order_id text, amount, as_of, window_days): NULL order_date or order_id rows are skipped. */
static Datum
RfmLinesText(FunctionCallInfo fcinfo, bool is_numeric)
{
	text	   *t;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_agg");

		PG_RETURN_POINTER(RfmGetState(fcinfo, aggcxt));
	}
	t = PG_GETARG_TEXT_PP(2);
	return RfmLineCommon(fcinfo, hash_bytes_extended((const unsigned char *) VARDATA_ANY(t),
													 VARSIZE_ANY_EXHDR(t), 0x52464d), is_numeric);
}

static Datum
RfmLinesInt8(FunctionCallInfo fcinfo, bool is_numeric)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_agg");

		PG_RETURN_POINTER(RfmGetState(fcinfo, aggcxt));
	}
	return RfmLineCommon(fcinfo, (uint64) PG_GETARG_INT64(2), is_numeric);
}

Datum
rfm_lines_trans_text(PG_FUNCTION_ARGS)
{
	return RfmLinesText(fcinfo, false);
}

Datum
rfm_lines_trans_text_num(PG_FUNCTION_ARGS)
{
	return RfmLinesText(fcinfo, true);
}

Datum
rfm_lines_trans_int8(PG_FUNCTION_ARGS)
{
	return RfmLinesInt8(fcinfo, false);
}

Datum
rfm_lines_trans_int8_num(PG_FUNCTION_ARGS)
{
	return RfmLinesInt8(fcinfo, true);
}

/* rfm_agg_daily(dt, orders, amount, as_of, window_days): one row per customer and day. */
static Datum
RfmDaily(FunctionCallInfo fcinfo, bool is_numeric)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_agg_daily");
	RfmState   *s = RfmGetState(fcinfo, aggcxt);
	DateADT		day;
	int64		orders, m;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	day = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dt must be a finite date")));
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("orders and amount must not be null")));
	orders = PG_GETARG_INT64(2);
	if (orders < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("orders must not be negative"),
				 errdetail("Got %lld.", (long long) orders)));
	m = is_numeric ? RfmMoneyNumeric(PG_GETARG_DATUM(3)) : RfmMoney(PG_GETARG_FLOAT8(3));
	if (day > s->as_of)
		PG_RETURN_POINTER(s);
	if (orders > 0)
		RfmSeeSale(s, day);
	if (!RfmInWindow(s, day))
		PG_RETURN_POINTER(s);
	RfmAddMoney(s, m);
	s->n_daily += orders;
	PG_RETURN_POINTER(s);
}

Datum
rfm_daily_trans(PG_FUNCTION_ARGS)
{
	return RfmDaily(fcinfo, false);
}

Datum
rfm_daily_trans_num(PG_FUNCTION_ARGS)
{
	return RfmDaily(fcinfo, true);
}

Datum
rfm_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_combine");
	RfmState   *a = PG_ARGISNULL(0) ? NULL : (RfmState *) PG_GETARG_POINTER(0);
	RfmState   *b = PG_ARGISNULL(1) ? NULL : (RfmState *) PG_GETARG_POINTER(1);
	int32		need;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
		a = RfmStateNew(aggcxt, b->as_of, b->window_days);
	if (a->as_of != b->as_of || a->window_days != b->window_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of and window_days must be the same for every row of a group")));
	a->first = Min(a->first, b->first);
	a->last = Max(a->last, b->last);
	RfmAddMoney(a, b->money);
	a->n_daily += b->n_daily;
	need = a->n + b->n;
	if (need > a->cap)
	{
		a->cap = Max(need, 4);
		a->ids = a->ids == NULL ? MemoryContextAlloc(aggcxt, sizeof(uint64) * a->cap)
			: repalloc(a->ids, sizeof(uint64) * a->cap);
	}
	if (b->n > 0)
		memcpy(a->ids + a->n, b->ids, sizeof(uint64) * b->n);
	a->n = need;
	PG_RETURN_POINTER(a);
}

Datum
rfm_serial(PG_FUNCTION_ARGS)
{
	RfmState   *s = (RfmState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, RFM_SERIAL_VERSION);
	pq_sendint32(&buf, s->as_of);
	pq_sendint32(&buf, s->window_days);
	pq_sendint32(&buf, s->first);
	pq_sendint32(&buf, s->last);
	pq_sendint64(&buf, s->money);
	pq_sendint64(&buf, s->n_daily);
	pq_sendint32(&buf, s->n);
	for (int32 i = 0; i < s->n; i++)
		pq_sendint64(&buf, (int64) s->ids[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

#define RFM_SERIAL_HEADER (6 * 4 + 2 * 8)

Datum
rfm_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_deserial");
	Size		len = VARSIZE_ANY_EXHDR(in);
	StringInfoData buf;
	RfmState   *s;
	int32		n;

	if (len < RFM_SERIAL_HEADER)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm state: too short")));
	buf.data = VARDATA_ANY(in);
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 0;
	if (pq_getmsgint(&buf, 4) != RFM_SERIAL_VERSION)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm state: unknown version")));
	s = RfmStateNew(aggcxt, 0, 1);
	s->as_of = pq_getmsgint(&buf, 4);
	s->window_days = pq_getmsgint(&buf, 4);
	s->first = pq_getmsgint(&buf, 4);
	s->last = pq_getmsgint(&buf, 4);
	s->money = pq_getmsgint64(&buf);
	s->n_daily = pq_getmsgint64(&buf);
	n = pq_getmsgint(&buf, 4);
	if (n < 0 || s->window_days <= 0 || (Size) n != (len - RFM_SERIAL_HEADER) / 8 ||
		len != RFM_SERIAL_HEADER + 8 * (Size) n)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm state")));
	if (n > 0)
	{
		s->ids = MemoryContextAlloc(aggcxt, sizeof(uint64) * n);
		for (int32 i = 0; i < n; i++)
			s->ids[i] = (uint64) pq_getmsgint64(&buf);
	}
	s->n = s->cap = n;
	PG_RETURN_POINTER(s);
}

static int
RfmCmpU64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a, y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Final function: (recency_days, frequency, monetary, first_order_date, last_order_date); NULL when the
 * customer has no sale on or before as_of. Counts distinct orders on a sorted copy (the state is kept as it is,
 * so the function can run again in a window).
 */
Datum
rfm_final(PG_FUNCTION_ARGS)
{
	RfmState   *s = PG_ARGISNULL(0) ? NULL : (RfmState *) PG_GETARG_POINTER(0);
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};
	int64		freq = 0;

	if (s == NULL || s->last == DATEVAL_NOBEGIN)
		PG_RETURN_NULL();
	if (s->n > 0)
	{
		uint64	   *ids = palloc(sizeof(uint64) * s->n);

		memcpy(ids, s->ids, sizeof(uint64) * s->n);
		qsort(ids, s->n, sizeof(uint64), RfmCmpU64);
		freq = 1;
		for (int32 i = 1; i < s->n; i++)
			freq += ids[i] != ids[i - 1];
		pfree(ids);
	}
	freq += s->n_daily;
	if (freq > PG_INT32_MAX)
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("frequency is out of range")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int32GetDatum(s->as_of - s->last);
	values[1] = Int32GetDatum((int32) freq);
	values[2] = Float8GetDatum(s->money / RFM_MONEY_SCALE);
	values[3] = DateADTGetDatum(s->first);
	values[4] = DateADTGetDatum(s->last);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

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
Datum
rfm_breaks_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_breaks");
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

Datum
rfm_breaks_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_breaks_combine");
	RfmBreaks  *a = PG_ARGISNULL(0) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(0);
	RfmBreaks  *b = PG_ARGISNULL(1) ? NULL : (RfmBreaks *) PG_GETARG_POINTER(1);

	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
		a = RfmBreaksNew(aggcxt, b->k, b->descending);
	RfmBreaksReserve(a, b->n);
	memcpy(a->v + a->n, b->v, sizeof(double) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

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

Datum
rfm_breaks_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_breaks_deserial");
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
static inline int32
RfmScoreOf(double v, const double *b, int nb, bool descending)
{
	int32		score = 1;

	for (int i = 0; i < nb; i++)
		score += descending ? (v < b[i]) : (v > b[i]);
	return score;
}

/* Final: the k - 1 breakpoints (see above), NULL when there are no values. Sorts a copy of the state. */
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

/* ---------------------------------------------------------------------------------------------------------
 * Whole-population collection for full scoring. rfm_collect is one aggregate over all of a brand's rows (no
 * GROUP BY): it keeps every customer in one hash table and the (customer, order) pairs in another, so a full
 * RFM run pays one transition call per row and no per-group executor state. Its result is an opaque bytea
 * (the "summary": every customer's first/last sale day, exact money and order count, sorted by customer key)
 * that rfm_score_summary turns into scores and segments in one pass. Three row forms feed it: order lines
 * (distinct orders counted through the pair set), daily customer rows (orders added) and to-date customer rows
 * (one row per customer, lifetime window).
 */
typedef enum RfmKind
{
	RFM_KIND_LINES = 1,
	RFM_KIND_DAILY = 2,
	RFM_KIND_TODATE = 3
} RfmKind;

typedef struct RfmCust
{
	int32		key;
	char		status;			/* simplehash's slot status */
	DateADT		first;
	DateADT		last;
	int64		money;
	int64		orders;
} RfmCust;

#define SH_PREFIX rfmcust
#define SH_ELEMENT_TYPE RfmCust
#define SH_KEY_TYPE int32
#define SH_KEY key
#define SH_HASH_KEY(tb, k) murmurhash32((uint32) (k))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct RfmOrderKey
{
	uint64		order_hash;
	int32		cust;
} RfmOrderKey;

typedef struct RfmOrder
{
	RfmOrderKey k;
	char		status;
} RfmOrder;

#define SH_PREFIX rfmord
#define SH_ELEMENT_TYPE RfmOrder
#define SH_KEY_TYPE RfmOrderKey
#define SH_KEY k
#define SH_HASH_KEY(tb, key) ((uint32) ((key).order_hash ^ ((key).order_hash >> 32)) ^ murmurhash32((uint32) (key).cust))
#define SH_EQUAL(tb, a, b) ((a).order_hash == (b).order_hash && (a).cust == (b).cust)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct RfmPop
{
	int32		kind;
	DateADT		as_of;
	int32		window_days;	/* 0 for the to-date form: the window is the whole history */
	rfmcust_hash *custs;		/* order-line and daily forms: customers merged as rows arrive */
	RfmCust    *list;			/* to-date form: rows appended (one per customer, so a hash would only add
								 * cache misses), merged by the final sort */
	int64		nlist, caplist;
	rfmord_hash *orders;		/* order-line form only */
	int32		last_cust;		/* the previous line's pair, to skip the set for the other lines of an order */
	uint64		last_hash;
	bool		have_last;
} RfmPop;

#define RFM_SUMMARY_VERSION 1
#define RFM_SUMMARY_HEADER 16	/* version, as_of, window_days, n */
#define RFM_SUMMARY_ENTRY 28	/* key, first, last, money, orders */

static RfmPop *
RfmPopNew(MemoryContext cxt, int32 kind, DateADT as_of, int32 window_days)
{
	RfmPop	   *p = MemoryContextAllocZero(cxt, sizeof(RfmPop));

	p->kind = kind;
	p->as_of = as_of;
	p->window_days = window_days;
	if (kind == RFM_KIND_TODATE)
	{
		p->caplist = 1024;
		p->list = MemoryContextAllocHuge(cxt, sizeof(RfmCust) * p->caplist);
	}
	else
		p->custs = rfmcust_create(cxt, 1024, NULL);
	if (kind == RFM_KIND_LINES)
		p->orders = rfmord_create(cxt, 1024, NULL);
	return p;
}

static RfmCust *
RfmPopCustomer(RfmPop *p, int32 key)
{
	bool		found;
	RfmCust    *c = rfmcust_insert(p->custs, key, &found);

	if (!found)
	{
		c->first = DATEVAL_NOEND;
		c->last = DATEVAL_NOBEGIN;
		c->money = 0;
		c->orders = 0;
	}
	return c;
}

static void RfmPopMergeCustomer(RfmPop *a, const RfmCust *b, bool add_orders);

static void
RfmCustAddMoney(RfmCust *c, int64 m)
{
	if (pg_add_s64_overflow(c->money, m, &c->money))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("monetary sum is out of range")));
}

/* A sale day of the customer: widens first/last. */
static inline void
RfmCustSeeSale(RfmCust *c, DateADT day)
{
	c->first = Min(c->first, day);
	c->last = Max(c->last, day);
}

/* Adds one partial record of a customer to another (orders too unless they are counted from order pairs). */
static void
RfmCustMerge(RfmCust *c, const RfmCust *b, bool add_orders)
{
	c->first = Min(c->first, b->first);
	c->last = Max(c->last, b->last);
	RfmCustAddMoney(c, b->money);
	if (add_orders)
		c->orders += b->orders;
}

/*
 * The state on the first row; afterwards checks that as_of and window_days stay the same. Their argument
 * positions differ by form; window_arg < 0 means the to-date form, which has no window.
 */
static RfmPop *
RfmPopGet(FunctionCallInfo fcinfo, int32 kind, int as_of_arg, int window_arg)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_collect");
	DateADT		as_of;
	int32		window_days = 0;

	if (PG_ARGISNULL(as_of_arg) || (window_arg >= 0 && PG_ARGISNULL(window_arg)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of and window_days must not be null")));
	as_of = PG_GETARG_DATEADT(as_of_arg);
	if (window_arg >= 0)
		window_days = PG_GETARG_INT32(window_arg);
	if (!PG_ARGISNULL(0))
	{
		RfmPop	   *p = (RfmPop *) PG_GETARG_POINTER(0);

		if (as_of != p->as_of || window_days != p->window_days)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of and window_days must be the same for every row")));
		return p;
	}
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite date")));
	if (window_arg >= 0 && window_days <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_days must be positive"),
				 errdetail("Got %d.", window_days)));
	return RfmPopNew(aggcxt, kind, as_of, window_days);
}

static inline bool
RfmPopInWindow(RfmPop *p, DateADT day)
{
	return p->window_days == 0 || day > p->as_of - p->window_days;
}

static DateADT
RfmFiniteDay(FunctionCallInfo fcinfo, int arg, const char *name)
{
	DateADT		day = PG_GETARG_DATEADT(arg);

	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite date", name)));
	return day;
}

/*
 * rfm_collect(customer_key, order_date, order_id, amount, as_of, window_days): the order-line form, same rules
 * as rfm_agg. Rows with a NULL customer, date or order id are skipped; a NULL amount is an error.
 */
static Datum
RfmCollectLine(FunctionCallInfo fcinfo, bool text_id, bool is_numeric)
{
	RfmPop	   *p = RfmPopGet(fcinfo, RFM_KIND_LINES, 5, 6);
	int32		key;
	DateADT		day;
	uint64		id;
	int64		m;
	RfmCust    *c;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(p);
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("amount must not be null")));
	key = PG_GETARG_INT32(1);
	day = RfmFiniteDay(fcinfo, 2, "order_date");
	m = is_numeric ? RfmMoneyNumeric(PG_GETARG_DATUM(4)) : RfmMoney(PG_GETARG_FLOAT8(4));
	if (day > p->as_of)
		PG_RETURN_POINTER(p);
	if (text_id)
	{
		text	   *t = PG_GETARG_TEXT_PP(3);

		id = hash_bytes_extended((const unsigned char *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 0x52464d);
	}
	else
		id = (uint64) PG_GETARG_INT64(3);
	c = RfmPopCustomer(p, key);
	if (m >= 0)
		RfmCustSeeSale(c, day);
	if (!RfmPopInWindow(p, day))
		PG_RETURN_POINTER(p);
	RfmCustAddMoney(c, m);
	if (m < 0 || (p->have_last && p->last_cust == key && p->last_hash == id))
		PG_RETURN_POINTER(p);	/* a return adds no order; the other lines of an order usually follow it */
	{
		RfmOrderKey ok = {.order_hash = id,.cust = key};
		bool		found;

		rfmord_insert(p->orders, ok, &found);
		if (!found)
			c->orders++;
	}
	p->have_last = true;
	p->last_cust = key;
	p->last_hash = id;
	PG_RETURN_POINTER(p);
}

PG_FUNCTION_INFO_V1(rfm_collect_text_num);
Datum
rfm_collect_text_num(PG_FUNCTION_ARGS)
{
	return RfmCollectLine(fcinfo, true, true);
}

PG_FUNCTION_INFO_V1(rfm_collect_text);
Datum
rfm_collect_text(PG_FUNCTION_ARGS)
{
	return RfmCollectLine(fcinfo, true, false);
}

PG_FUNCTION_INFO_V1(rfm_collect_int8_num);
Datum
rfm_collect_int8_num(PG_FUNCTION_ARGS)
{
	return RfmCollectLine(fcinfo, false, true);
}

PG_FUNCTION_INFO_V1(rfm_collect_int8);
Datum
rfm_collect_int8(PG_FUNCTION_ARGS)
{
	return RfmCollectLine(fcinfo, false, false);
}

static int64
RfmOrdersArg(FunctionCallInfo fcinfo, int arg)
{
	int64		orders = PG_GETARG_INT64(arg);

	if (orders < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("orders must not be negative"),
				 errdetail("Got %lld.", (long long) orders)));
	return orders;
}

/* rfm_collect_daily(customer_key, dt, orders, amount, as_of, window_days): rules of rfm_agg_daily. */
static Datum
RfmCollectDaily(FunctionCallInfo fcinfo, bool is_numeric)
{
	RfmPop	   *p = RfmPopGet(fcinfo, RFM_KIND_DAILY, 5, 6);
	DateADT		day;
	int64		orders, m;
	RfmCust    *c;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(p);
	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("orders and amount must not be null")));
	day = RfmFiniteDay(fcinfo, 2, "dt");
	orders = RfmOrdersArg(fcinfo, 3);
	m = is_numeric ? RfmMoneyNumeric(PG_GETARG_DATUM(4)) : RfmMoney(PG_GETARG_FLOAT8(4));
	if (day > p->as_of)
		PG_RETURN_POINTER(p);
	c = RfmPopCustomer(p, PG_GETARG_INT32(1));
	if (orders > 0)
		RfmCustSeeSale(c, day);
	if (!RfmPopInWindow(p, day))
		PG_RETURN_POINTER(p);
	RfmCustAddMoney(c, m);
	c->orders += orders;
	PG_RETURN_POINTER(p);
}

PG_FUNCTION_INFO_V1(rfm_collect_daily_num);
Datum
rfm_collect_daily_num(PG_FUNCTION_ARGS)
{
	return RfmCollectDaily(fcinfo, true);
}

PG_FUNCTION_INFO_V1(rfm_collect_daily);
Datum
rfm_collect_daily(PG_FUNCTION_ARGS)
{
	return RfmCollectDaily(fcinfo, false);
}

/*
 * rfm_collect_td(customer_key, first_order_date, last_order_date, orders, amount, as_of): to-date rows
 * (dws_trade_customer_td), one per customer, the window being the whole history. A row whose last order lies
 * after as_of is an error: totals to date cannot be wound back.
 */
PG_FUNCTION_INFO_V1(rfm_collect_td);
Datum
rfm_collect_td(PG_FUNCTION_ARGS)
{
	RfmPop	   *p = RfmPopGet(fcinfo, RFM_KIND_TODATE, 6, -1);
	DateADT		first, last;
	int64		orders;
	RfmCust		row;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(p);
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("orders and amount must not be null")));
	first = RfmFiniteDay(fcinfo, 2, "first_order_date");
	last = RfmFiniteDay(fcinfo, 3, "last_order_date");
	orders = RfmOrdersArg(fcinfo, 4);
	if (first > last)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("first_order_date must not be after last_order_date")));
	if (last > p->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to-date rows reach past as_of"),
				 errhint("Totals to date hold every sale up to the last refresh; use as_of on or after it, or a daily source.")));
	row.key = PG_GETARG_INT32(1);
	row.first = orders > 0 ? first : DATEVAL_NOEND;
	row.last = orders > 0 ? last : DATEVAL_NOBEGIN;
	row.money = RfmMoneyNumeric(PG_GETARG_DATUM(5));
	row.orders = orders;
	RfmPopMergeCustomer(p, &row, true);
	PG_RETURN_POINTER(p);
}

static void
RfmPopMergeCustomer(RfmPop *a, const RfmCust *b, bool add_orders)
{
	if (a->list)
	{
		if (a->nlist == a->caplist)
		{
			if ((Size) a->caplist * 2 * sizeof(RfmCust) > MaxAllocHugeSize)
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many customers for rfm_collect_td")));
			a->caplist *= 2;
			a->list = repalloc_huge(a->list, sizeof(RfmCust) * a->caplist);
		}
		a->list[a->nlist++] = *b;
		return;
	}
	RfmCustMerge(RfmPopCustomer(a, b->key), b, add_orders);
}

static void
RfmPopAddOrder(RfmPop *p, RfmOrderKey ok)
{
	bool		found;

	rfmord_insert(p->orders, ok, &found);
	if (!found)
	{
		RfmCust    *c = rfmcust_lookup(p->custs, ok.cust);

		if (c == NULL)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm_collect state: order of an unknown customer")));
		c->orders++;
	}
}

/* One customer in the serialised state and in the summary: key, first, last, money, orders (28 bytes). */
static inline void
RfmWriteEntry(char *w, const RfmCust *c)
{
	memcpy(w, &c->key, 4);
	memcpy(w + 4, &c->first, 4);
	memcpy(w + 8, &c->last, 4);
	memcpy(w + 12, &c->money, 8);
	memcpy(w + 20, &c->orders, 8);
}

static inline void
RfmReadEntry(const char *r, RfmCust *c)
{
	memcpy(&c->key, r, 4);
	memcpy(&c->first, r + 4, 4);
	memcpy(&c->last, r + 8, 4);
	memcpy(&c->money, r + 12, 8);
	memcpy(&c->orders, r + 20, 8);
}

/* Every customer entry of a state: the to-date list itself, or the hash's entries copied into an array. */
static RfmCust *
RfmPopEntries(RfmPop *p, int64 *n)
{
	rfmcust_iterator ci;
	RfmCust    *c, *all;

	if (p->list)
	{
		*n = p->nlist;
		return p->list;
	}
	all = palloc_extended(sizeof(RfmCust) * Max(p->custs->members, 1), MCXT_ALLOC_HUGE);
	*n = 0;
	rfmcust_start_iterate(p->custs, &ci);
	while ((c = rfmcust_iterate(p->custs, &ci)) != NULL)
		all[(*n)++] = *c;
	return all;
}

/* Order-line states merge their order pairs (an order split between workers counts once); the others add. */
PG_FUNCTION_INFO_V1(rfm_collect_combine);
Datum
rfm_collect_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_collect_combine");
	RfmPop	   *a = PG_ARGISNULL(0) ? NULL : (RfmPop *) PG_GETARG_POINTER(0);
	RfmPop	   *b = PG_ARGISNULL(1) ? NULL : (RfmPop *) PG_GETARG_POINTER(1);
	RfmCust    *entries;
	int64		n;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
		a = RfmPopNew(aggcxt, b->kind, b->as_of, b->window_days);
	if (a->kind != b->kind || a->as_of != b->as_of || a->window_days != b->window_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of and window_days must be the same for every row")));
	entries = RfmPopEntries(b, &n);
	for (int64 i = 0; i < n; i++)
		RfmPopMergeCustomer(a, &entries[i], a->kind != RFM_KIND_LINES);
	if (a->kind == RFM_KIND_LINES)
	{
		rfmord_iterator oi;
		RfmOrder   *o;

		rfmord_start_iterate(b->orders, &oi);
		while ((o = rfmord_iterate(b->orders, &oi)) != NULL)
			RfmPopAddOrder(a, o->k);
		a->have_last = false;
	}
	PG_RETURN_POINTER(a);
}

/* Serialised state: kind, as_of, window_days, customer count, order count, customers, order pairs. */
PG_FUNCTION_INFO_V1(rfm_collect_serial);
Datum
rfm_collect_serial(PG_FUNCTION_ARGS)
{
	RfmPop	   *p = (RfmPop *) PG_GETARG_POINTER(0);
	uint64		norders = p->orders ? p->orders->members : 0;
	int64		n;
	RfmCust    *entries = RfmPopEntries(p, &n);
	Size		len = 24 + (Size) n * RFM_SUMMARY_ENTRY + norders * 12;
	bytea	   *out;
	char	   *w;
	int32		head[4] = {RFM_SUMMARY_VERSION * 16 + p->kind, p->as_of, p->window_days, (int32) n};

	if (n > PG_INT32_MAX || len > MaxAllocHugeSize - VARHDRSZ)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("rfm_collect state too large to pass between processes")));
	out = palloc_extended(VARHDRSZ + len, MCXT_ALLOC_HUGE);
	w = VARDATA(out);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(w, head, 16);
	memcpy(w + 16, &norders, 8);
	w += 24;
	for (int64 i = 0; i < n; i++, w += RFM_SUMMARY_ENTRY)
		RfmWriteEntry(w, &entries[i]);
	if (p->orders)
	{
		rfmord_iterator oi;
		RfmOrder   *o;

		rfmord_start_iterate(p->orders, &oi);
		while ((o = rfmord_iterate(p->orders, &oi)) != NULL)
		{
			memcpy(w, &o->k.order_hash, 8);
			memcpy(w + 8, &o->k.cust, 4);
			w += 12;
		}
	}
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(rfm_collect_deserial);
Datum
rfm_collect_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RfmAggContext(fcinfo, "rfm_collect_deserial");
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *r = VARDATA_ANY(in);
	int32		head[4];
	uint64		norders;
	int32		kind;
	RfmPop	   *p;

	if (len < 24)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm_collect state: too short")));
	memcpy(head, r, 16);
	memcpy(&norders, r + 16, 8);
	kind = head[0] - RFM_SUMMARY_VERSION * 16;
	if (kind < RFM_KIND_LINES || kind > RFM_KIND_TODATE || head[2] < 0 || head[3] < 0 ||
		(kind != RFM_KIND_LINES && norders != 0) || norders > len / 12 ||
		len != 24 + (Size) head[3] * RFM_SUMMARY_ENTRY + norders * 12)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm_collect state")));
	p = RfmPopNew(aggcxt, kind, head[1], head[2]);
	r += 24;
	for (int32 i = 0; i < head[3]; i++, r += RFM_SUMMARY_ENTRY)
	{
		RfmCust		c;

		RfmReadEntry(r, &c);
		RfmPopMergeCustomer(p, &c, true);
	}
	for (uint64 i = 0; i < norders; i++, r += 12)
	{
		RfmOrderKey ok;
		bool		found;

		memcpy(&ok.order_hash, r, 8);
		memcpy(&ok.cust, r + 8, 4);
		rfmord_insert(p->orders, ok, &found);
	}
	PG_RETURN_POINTER(p);
}

static int
RfmCmpCustKey(const void *a, const void *b)
{
	int32		x = ((const RfmCust *) a)->key, y = ((const RfmCust *) b)->key;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Final: the summary bytea (version, as_of, window_days, n, then n entries sorted by customer key); customers
 * without a sale on or before as_of are left out. NULL when no row was aggregated.
 */
PG_FUNCTION_INFO_V1(rfm_collect_final);
Datum
rfm_collect_final(PG_FUNCTION_ARGS)
{
	RfmPop	   *p = PG_ARGISNULL(0) ? NULL : (RfmPop *) PG_GETARG_POINTER(0);
	RfmCust    *all;
	int64		n, kept = 0;
	bytea	   *out;
	char	   *w;
	int32		head[4];

	if (p == NULL)
		PG_RETURN_NULL();
	/* the to-date list is sorted in place (rfm_collect_td has FINALFUNC_MODIFY = READ_WRITE); a hash is copied */
	all = RfmPopEntries(p, &n);
	qsort(all, n, sizeof(RfmCust), RfmCmpCustKey);
	/* to-date rows of one customer merge here; then customers without a sale on or before as_of drop out */
	for (int64 i = 0; i < n; i++)
	{
		if (kept > 0 && all[kept - 1].key == all[i].key)
			RfmCustMerge(&all[kept - 1], &all[i], true);
		else
			all[kept++] = all[i];
	}
	n = 0;
	for (int64 i = 0; i < kept; i++)
		if (all[i].last != DATEVAL_NOBEGIN)
			all[n++] = all[i];
	out = palloc_extended(VARHDRSZ + RFM_SUMMARY_HEADER + n * RFM_SUMMARY_ENTRY, MCXT_ALLOC_HUGE);
	SET_VARSIZE(out, VARHDRSZ + RFM_SUMMARY_HEADER + n * RFM_SUMMARY_ENTRY);
	head[0] = RFM_SUMMARY_VERSION;
	head[1] = p->as_of;
	head[2] = p->window_days;
	head[3] = (int32) n;
	w = VARDATA(out);
	memcpy(w, head, RFM_SUMMARY_HEADER);
	w += RFM_SUMMARY_HEADER;
	for (int64 i = 0; i < n; i++, w += RFM_SUMMARY_ENTRY)
	{
		if (all[i].orders > PG_INT32_MAX)
			ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("frequency is out of range")));
		RfmWriteEntry(w, &all[i]);
	}
	if (all != p->list)
		pfree(all);
	PG_RETURN_BYTEA_P(out);
}

/* Thresholds of the threshold method: a one-dimensional float8 array of k - 1 values without NULLs. */
static double *
RfmThresholds(ArrayType *a, int32 k, const char *name)
{
	if (a == NULL || ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID || ARR_DIMS(a)[0] != k - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be %d float8 values without NULLs for the threshold method", name, k - 1)));
	return (double *) ARR_DATA_PTR(a);
}

static inline void
RfmSwap(int64 *a, int64 *b)
{
	int64		t = *a;

	*a = *b;
	*b = t;
}

/*
 * Moves to each position of pos[0..npos) (ascending, inside [lo, hi]) the value a full sort would put there:
 * quickselect for several positions at once, with a three-way partition because RFM values tie a lot
 * (frequency takes few distinct values). Linear on average, where a sort would be n log n.
 */
static void
RfmSelect(int64 *v, int64 lo, int64 hi, const int64 *pos, int npos)
{
	while (npos > 0 && hi - lo > 16)
	{
		int64		a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
		int64		pivot = Max(Min(a, b), Min(Max(a, b), c));	/* median of three */
		int64		lt = lo, i = lo, gt = hi;
		int			left = 0, mid;

		while (i <= gt)
		{
			if (v[i] < pivot)
				RfmSwap(&v[lt++], &v[i++]);
			else if (v[i] > pivot)
				RfmSwap(&v[i], &v[gt--]);
			else
				i++;
		}
		/* [lo, lt) < pivot, [lt, gt] = pivot, (gt, hi] > pivot */
		while (left < npos && pos[left] < lt)
			left++;
		mid = left;
		while (mid < npos && pos[mid] <= gt)
			mid++;
		RfmSelect(v, lo, lt - 1, pos, left);
		pos += mid;
		npos -= mid;
		lo = gt + 1;
	}
	if (npos > 0)
		for (int64 i = lo + 1; i <= hi; i++)
			for (int64 j = i; j > lo && v[j - 1] > v[j]; j--)
				RfmSwap(&v[j - 1], &v[j]);
}

/*
 * Quantile breaks of one dimension over int64 values (money in 1/10000 units is scaled back by unit): the
 * breakpoints of RfmBreaksOfSorted, found by selection instead of sorting. vals is reordered.
 */
static void
RfmBreaksOfInt64(int64 *vals, int64 n, int32 k, bool descending, double unit, double *breaks)
{
	int64	   *pos = palloc(sizeof(int64) * (k - 1));
	int64	   *sorted_pos = palloc(sizeof(int64) * (k - 1));
	int			npos = 0;

	for (int32 st = 2; st <= k; st++)
	{
		int64		c = ((int64) (st - 1) * n + k - 1) / k;	/* as in RfmBreaksOfSorted */

		pos[st - 2] = descending ? n - c : c - 1;
	}
	/* the positions ascend (descending: descend); select wants them ascending and distinct */
	for (int32 i = 0; i < k - 1; i++)
	{
		int64		p = descending ? pos[k - 2 - i] : pos[i];

		if (npos == 0 || sorted_pos[npos - 1] != p)
			sorted_pos[npos++] = p;
	}
	RfmSelect(vals, 0, n - 1, sorted_pos, npos);
	for (int32 i = 0; i < k - 1; i++)
		breaks[i] = vals[pos[i]] / unit;
	pfree(pos);
	pfree(sorted_pos);
}

/*
 * How one summary is scored, decided on the first call; every row's scores are then computed as it is
 * returned (k - 1 comparisons per dimension), so no per-customer arrays beyond one selection buffer.
 */
typedef enum RfmMethod
{
	RFM_QUANTILE,
	RFM_THRESHOLD,
	RFM_AVERAGE
} RfmMethod;

typedef struct RfmScored
{
	RfmMethod	method;
	int32		k;
	int32		as_of;
	const char *entries;		/* the summary's customer entries */
	double	   *rb, *fb, *mb;	/* quantile breaks or thresholds, k - 1 each (money in currency units) */
	int64		n;				/* average: customers and the exact sums of their values */
	int128		sr, sf, sm;
	Datum	   *segments;		/* k^3 cells, (r - 1) k^2 + (f - 1) k + (m - 1) */
	bool	   *segment_null;
} RfmScored;

static void
RfmScoreRow(const RfmScored *sc, const RfmCust *c, int32 *r, int32 *f, int32 *m)
{
	int64		recency = (int64) sc->as_of - c->last;
	double		money = c->money / RFM_MONEY_SCALE;

	switch (sc->method)
	{
		case RFM_QUANTILE:
			*r = RfmScoreOf((double) recency, sc->rb, sc->k - 1, true);
			*f = RfmScoreOf((double) c->orders, sc->fb, sc->k - 1, false);
			*m = RfmScoreOf(money, sc->mb, sc->k - 1, false);
			break;
		case RFM_THRESHOLD:
			*r = sc->k;
			*f = *m = 1;
			for (int32 t = 0; t < sc->k - 1; t++)
			{
				*r -= recency > sc->rb[t];
				*f += c->orders >= sc->fb[t];
				*m += money >= sc->mb[t];
			}
			break;
		case RFM_AVERAGE:
			/* better than the mean, exactly: the value times n against the sum, in 128 bits */
			*r = (int128) recency * sc->n < sc->sr ? 2 : 1;
			*f = (int128) c->orders * sc->n > sc->sf ? 2 : 1;
			*m = (int128) c->money * sc->n > sc->sm ? 2 : 1;
			break;
	}
}

/* The per-summary part of scoring: quantile breaks (by selection) or the population sums. */
static void
RfmPrepareScoring(RfmScored *sc)
{
	int64		n = sc->n;
	int64	   *buf;

	if (sc->method == RFM_THRESHOLD || n == 0)
		return;
	if (sc->method == RFM_AVERAGE)
	{
		for (int64 i = 0; i < n; i++)
		{
			RfmCust		c;

			RfmReadEntry(sc->entries + i * RFM_SUMMARY_ENTRY, &c);
			sc->sr += (int64) sc->as_of - c.last;
			sc->sf += c.orders;
			sc->sm += c.money;
		}
		return;
	}
	buf = palloc_extended(sizeof(int64) * n, MCXT_ALLOC_HUGE);
	sc->rb = palloc(sizeof(double) * sc->k);
	sc->fb = palloc(sizeof(double) * sc->k);
	sc->mb = palloc(sizeof(double) * sc->k);
	for (int dim = 0; dim < 3; dim++)
	{
		for (int64 i = 0; i < n; i++)
		{
			RfmCust		c;

			RfmReadEntry(sc->entries + i * RFM_SUMMARY_ENTRY, &c);
			buf[i] = dim == 0 ? (int64) sc->as_of - c.last : dim == 1 ? c.orders : c.money;
		}
		RfmBreaksOfInt64(buf, n, sc->k, dim == 0, dim == 2 ? RFM_MONEY_SCALE : 1.0,
						 dim == 0 ? sc->rb : dim == 1 ? sc->fb : sc->mb);
	}
	pfree(buf);
}

/* Thresholds of the threshold method as doubles. */
static double *
RfmThresholdArg(FunctionCallInfo fcinfo, int arg, int32 k, const char *name)
{
	return RfmThresholds(PG_ARGISNULL(arg) ? NULL : PG_GETARG_ARRAYTYPE_P(arg), k, name);
}

/*
 * rfm_score_summary(summary, k, method, r_thresholds, f_thresholds, m_thresholds, segments): one row per
 * customer of an rfm_collect summary with its raw values, R/F/M scores by the method (the rules of rfm_config)
 * and its segment, segments[(r - 1) k^2 + (f - 1) k + m] (NULL cells: no segment).
 */
PG_FUNCTION_INFO_V1(rfm_score_summary);
Datum
rfm_score_summary(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RfmScored  *sc;
	bytea	   *in;
	Size		len;
	int32		head[4], k;
	char	   *method;
	ArrayType  *segs;
	int			nseg;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k, method and segments must not be null")));
	k = PG_GETARG_INT32(1);
	method = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (k < 2 || k > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 2 and 100"),
				 errdetail("Got %d.", k)));
	segs = PG_GETARG_ARRAYTYPE_P(6);
	if (ARR_NDIM(segs) != 1 || ARR_ELEMTYPE(segs) != TEXTOID || ARR_DIMS(segs)[0] != k * k * k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segments must be a one-dimensional text array of k^3 = %d cells", k * k * k)));
	sc = palloc0(sizeof(RfmScored));
	sc->k = k;
	deconstruct_array(segs, TEXTOID, -1, false, TYPALIGN_INT, &sc->segments, &sc->segment_null, &nseg);
	if (strcmp(method, "quantile") == 0)
		sc->method = RFM_QUANTILE;
	else if (strcmp(method, "threshold") == 0)
	{
		sc->method = RFM_THRESHOLD;
		sc->rb = RfmThresholdArg(fcinfo, 3, k, "r_thresholds");
		sc->fb = RfmThresholdArg(fcinfo, 4, k, "f_thresholds");
		sc->mb = RfmThresholdArg(fcinfo, 5, k, "m_thresholds");
	}
	else if (strcmp(method, "average") == 0)
	{
		sc->method = RFM_AVERAGE;
		if (k != 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the average method scores 1..2, so k must be 2")));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rfm scoring method \"%s\"", method),
				 errhint("Use quantile, threshold or average.")));
	/* materialised: the rows go straight into the caller's tuple store, with no per-row heap tuple */
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	in = PG_GETARG_BYTEA_P(0);
	len = VARSIZE(in) - VARHDRSZ;
	if (len >= RFM_SUMMARY_HEADER)
		memcpy(head, VARDATA(in), RFM_SUMMARY_HEADER);
	if (len < RFM_SUMMARY_HEADER || head[0] != RFM_SUMMARY_VERSION || head[3] < 0 ||
		len != RFM_SUMMARY_HEADER + (Size) head[3] * RFM_SUMMARY_ENTRY)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid rfm summary"),
				 errhint("Pass the result of retail_mid.rfm_collect, rfm_collect_daily or rfm_collect_td.")));
	sc->as_of = head[1];
	sc->n = head[3];
	sc->entries = VARDATA(in) + RFM_SUMMARY_HEADER;
	for (int64 i = 0; i < sc->n; i++)
	{
		RfmCust		c;

		RfmReadEntry(sc->entries + i * RFM_SUMMARY_ENTRY, &c);
		if (c.last > sc->as_of || c.first > c.last || c.orders < 0 || c.orders > PG_INT32_MAX)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid rfm summary")));
	}
	RfmPrepareScoring(sc);
	for (int64 i = 0; i < sc->n; i++)
	{
		RfmCust		c;
		int32		r = 1, f = 1, m = 1;
		int			cell;
		Datum		values[10];
		bool		nulls[10] = {0};

		RfmReadEntry(sc->entries + i * RFM_SUMMARY_ENTRY, &c);
		RfmScoreRow(sc, &c, &r, &f, &m);
		values[0] = Int32GetDatum(c.key);
		values[1] = Int32GetDatum(sc->as_of - c.last);
		values[2] = Int32GetDatum((int32) c.orders);
		values[3] = Float8GetDatum(c.money / RFM_MONEY_SCALE);
		values[4] = DateADTGetDatum(c.first);
		values[5] = DateADTGetDatum(c.last);
		values[6] = Int32GetDatum(r);
		values[7] = Int32GetDatum(f);
		values[8] = Int32GetDatum(m);
		cell = ((r - 1) * sc->k + f - 1) * sc->k + m - 1;
		values[9] = sc->segments[cell];
		nulls[9] = sc->segment_null[cell];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}
