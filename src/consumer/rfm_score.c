/* consumer/rfm_score.c: rfm_score_summary: the scores and segments of every customer of a population summary. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"

#include "consumer/rfm_internal.h"

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
