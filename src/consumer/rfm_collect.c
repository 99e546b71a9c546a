/* consumer/rfm_collect.c: rfm_collect, the whole-population aggregate that summarises every customer for scoring. */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/int.h"
#include "funcapi.h"
#include "utils/date.h"

#include "common/rm_agg.h"
#include "consumer/rfm_internal.h"

/* ---------------------------------------------------------------------------------------------------------
 * Whole-population collection for full scoring. rfm_collect is one aggregate over all of a brand's rows (no
 * GROUP BY): it keeps every customer in one hash table and the (customer, order) pairs in another, so a full
 * RFM run pays one transition call per row and no per-group executor state. Its result is an opaque bytea
 * (the "summary": every customer's first/last sale day, exact money and order count, sorted by customer key)
 * that rfm_score_summary turns into scores and segments in one pass. Three row forms feed it: order lines
 * (distinct orders counted through the pair set), daily customer rows (orders added) and to-date customer rows
 * (one row per customer, lifetime window).
 */

/* The row form feeding the collection (see above). */
typedef enum RfmKind
{
	RFM_KIND_LINES = 1,
	RFM_KIND_DAILY = 2,
	RFM_KIND_TODATE = 3
} RfmKind;

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

/* A (customer, order) pair of the order-line form: an order counts once per customer. */
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

/* The collection aggregate's state: the customers so far, and the order pairs seen by the order-line form. */
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
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_collect");
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

void
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
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_collect_combine");
	RfmPop	   *a = PG_ARGISNULL(0) ? NULL : (RfmPop *) PG_GETARG_POINTER(0);
	RfmPop	   *b = PG_ARGISNULL(1) ? NULL : (RfmPop *) PG_GETARG_POINTER(1);
	RfmCust    *entries;
	int64		n;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
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
	MemoryContext aggcxt = RmAggContext(fcinfo, "rfm_collect_deserial");
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
