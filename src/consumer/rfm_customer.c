/* consumer/rfm_customer.c: recency, frequency and monetary value per customer as parallel-safe aggregates. */
/*
 * Over order lines or over daily customer rows; order ids of the window are distinct-counted through 64-bit
 * hashes, and money is summed exactly in 1/10000 units so that any combine order agrees.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/date.h"
#include "utils/lsyscache.h"

#include "common/rm_agg.h"
#include "consumer/rfm_internal.h"

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

int64
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
int64
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
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_agg");
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
		MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_agg");

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
		MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_agg");

		PG_RETURN_POINTER(RfmGetState(fcinfo, aggcxt));
	}
	return RfmLineCommon(fcinfo, (uint64) PG_GETARG_INT64(2), is_numeric);
}

PG_FUNCTION_INFO_V1(rfm_lines_trans_text);
Datum
rfm_lines_trans_text(PG_FUNCTION_ARGS)
{
	return RfmLinesText(fcinfo, false);
}

PG_FUNCTION_INFO_V1(rfm_lines_trans_text_num);
Datum
rfm_lines_trans_text_num(PG_FUNCTION_ARGS)
{
	return RfmLinesText(fcinfo, true);
}

PG_FUNCTION_INFO_V1(rfm_lines_trans_int8);
Datum
rfm_lines_trans_int8(PG_FUNCTION_ARGS)
{
	return RfmLinesInt8(fcinfo, false);
}

PG_FUNCTION_INFO_V1(rfm_lines_trans_int8_num);
Datum
rfm_lines_trans_int8_num(PG_FUNCTION_ARGS)
{
	return RfmLinesInt8(fcinfo, true);
}

/* rfm_agg_daily(dt, orders, amount, as_of, window_days): one row per customer and day. */
static Datum
RfmDaily(FunctionCallInfo fcinfo, bool is_numeric)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_agg_daily");
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

PG_FUNCTION_INFO_V1(rfm_daily_trans);
Datum
rfm_daily_trans(PG_FUNCTION_ARGS)
{
	return RfmDaily(fcinfo, false);
}

PG_FUNCTION_INFO_V1(rfm_daily_trans_num);
Datum
rfm_daily_trans_num(PG_FUNCTION_ARGS)
{
	return RfmDaily(fcinfo, true);
}

PG_FUNCTION_INFO_V1(rfm_combine);
Datum
rfm_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_combine");
	RfmState   *a = PG_ARGISNULL(0) ? NULL : (RfmState *) PG_GETARG_POINTER(0);
	RfmState   *b = PG_ARGISNULL(1) ? NULL : (RfmState *) PG_GETARG_POINTER(1);
	int32		need;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
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

PG_FUNCTION_INFO_V1(rfm_serial);
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

PG_FUNCTION_INFO_V1(rfm_deserial);
Datum
rfm_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_deserial");
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
PG_FUNCTION_INFO_V1(rfm_final);
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
