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
		return (RfmState *) PG_GETARG_POINTER(0);
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
	for (int32 st = 2; st <= s->k; st++)
	{
		/* c = ceil((st - 1) n / k), 1-based; at least 1 because st >= 2 and n >= 1 */
		int64		c = ((int64) (st - 1) * n + s->k - 1) / s->k;

		out[st - 2] = Float8GetDatum(s->descending ? v[n - c] : v[c - 1]);
	}
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
	double	   *b;
	int32		score = 1;

	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("breaks must be a one-dimensional float8 array without NULLs")));
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value must not be NaN")));
	nb = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	b = (double *) ARR_DATA_PTR(a);
	for (int i = 0; i < nb; i++)
		score += desc ? (v < b[i]) : (v > b[i]);
	PG_RETURN_INT32(score);
}
