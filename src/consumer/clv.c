/* consumer/clv.c: customer lifetime value: BG/NBD and Gamma-Gamma fitted by maximum likelihood in aggregates. */
/*
 * BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") and the Gamma-Gamma spend model
 * (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999) are fitted by maximum likelihood with NLopt
 * inside parallel-safe aggregates; also the per-customer predictions, and the calibration/holdout summary
 * aggregate that turns a transaction log into (x, t_x, T).
 */
#include "postgres.h"

#include <math.h>
#include <nlopt.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "common/retail_mid.h"
#include "common/rm_agg.h"

PG_FUNCTION_INFO_V1(clv_points_bgnbd_trans);
PG_FUNCTION_INFO_V1(clv_points_gg_trans);
PG_FUNCTION_INFO_V1(clv_points_combine);
PG_FUNCTION_INFO_V1(clv_points_serial);
PG_FUNCTION_INFO_V1(clv_points_deserial);
PG_FUNCTION_INFO_V1(bgnbd_fit_final);
PG_FUNCTION_INFO_V1(gammagamma_fit_final);
PG_FUNCTION_INFO_V1(bgnbd_loglik);
PG_FUNCTION_INFO_V1(bgnbd_expected_purchases);
PG_FUNCTION_INFO_V1(bgnbd_expectation);
PG_FUNCTION_INFO_V1(bgnbd_p_alive);
PG_FUNCTION_INFO_V1(gammagamma_expected_spend);
PG_FUNCTION_INFO_V1(clv_value);
PG_FUNCTION_INFO_V1(clv_summary_trans);
PG_FUNCTION_INFO_V1(clv_summary_combine);
PG_FUNCTION_INFO_V1(clv_summary_serial);
PG_FUNCTION_INFO_V1(clv_summary_deserial);
PG_FUNCTION_INFO_V1(clv_summary_final);

#define CLV_SERIAL_VERSION 1
#define BGNBD_WIDTH 3			/* x, t_x, T */
#define GG_WIDTH 2				/* x, mean spend */
#define FIT_MAX_EVAL 20000
#define FIT_MAX_SECONDS 300.0
#define HYP2F1_MAX_TERMS 2000000

/* ---------------------------------------------------------------------------------------------------------
 * Aggregate state of the fits: the data points themselves, so that partial states combine exactly.
 */
typedef struct ClvPoints
{
	int32		width;			/* doubles per point */
	int64		n;				/* points */
	int64		cap;
	double	   *v;				/* n * width doubles */
} ClvPoints;

static ClvPoints *
ClvPointsNew(MemoryContext cxt, int width)
{
	ClvPoints  *s = MemoryContextAllocZero(cxt, sizeof(ClvPoints));

	s->width = width;
	s->cap = 64;
	s->v = MemoryContextAlloc(cxt, sizeof(double) * width * s->cap);
	return s;
}

static void
ClvPointsReserve(ClvPoints *s, int64 extra)
{
	if (s->n + extra > s->cap)
	{
		int64		cap = Max(s->cap * 2, s->n + extra);

		if ((Size) cap * s->width * sizeof(double) > MaxAllocHugeSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many customers for one lifetime value fit")));
		s->v = repalloc_huge(s->v, (Size) cap * s->width * sizeof(double));
		s->cap = cap;
	}
}

static void
ClvCheckInput(double v, const char *what)
{
	if (isnan(v) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what)));
}

/* x must be a non-negative whole number, 0 <= t_x <= T. */
static void
ClvCheckCustomer(double x, double tx, double T)
{
	ClvCheckInput(x, "x");
	ClvCheckInput(tx, "t_x");
	ClvCheckInput(T, "T");
	if (x < 0 || x != floor(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must be a non-negative whole number of repeat transactions"),
				 errdetail("Got x = %g.", x)));
	if (tx < 0 || T < 0 || tx > T)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t_x and T must satisfy 0 <= t_x <= T"),
				 errdetail("Got t_x = %g and T = %g.", tx, T)));
}

/* bgnbd_fit(x, t_x, T) transition: rows with a NULL are skipped. */
Datum
clv_points_bgnbd_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_points_bgnbd_trans");
	ClvPoints  *s = PG_ARGISNULL(0) ? NULL : (ClvPoints *) PG_GETARG_POINTER(0);
	double		x, tx, T;

	if (s == NULL)
		s = ClvPointsNew(aggcxt, BGNBD_WIDTH);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(s);
	x = PG_GETARG_FLOAT8(1);
	tx = PG_GETARG_FLOAT8(2);
	T = PG_GETARG_FLOAT8(3);
	ClvCheckCustomer(x, tx, T);
	if (x == 0)
		tx = 0;					/* t_x carries no information without repeats */
	ClvPointsReserve(s, 1);
	s->v[s->n * 3] = x;
	s->v[s->n * 3 + 1] = tx;
	s->v[s->n * 3 + 2] = T;
	s->n++;
	PG_RETURN_POINTER(s);
}

/* gammagamma_fit(x, mean_spend) transition: customers without repeats (x = 0) and NULL rows are skipped. */
Datum
clv_points_gg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_points_gg_trans");
	ClvPoints  *s = PG_ARGISNULL(0) ? NULL : (ClvPoints *) PG_GETARG_POINTER(0);
	double		x, m;

	if (s == NULL)
		s = ClvPointsNew(aggcxt, GG_WIDTH);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	x = PG_GETARG_FLOAT8(1);
	m = PG_GETARG_FLOAT8(2);
	ClvCheckInput(x, "x");
	ClvCheckInput(m, "mean_spend");
	if (x < 0 || x != floor(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must be a non-negative whole number of repeat transactions"),
				 errdetail("Got x = %g.", x)));
	if (x == 0)
		PG_RETURN_POINTER(s);
	if (m <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mean_spend must be positive for the gamma-gamma model"),
				 errdetail("Got mean_spend = %g with x = %g.", m, x),
				 errhint("Leave out customers whose returns cancel their purchases.")));
	ClvPointsReserve(s, 1);
	s->v[s->n * 2] = x;
	s->v[s->n * 2 + 1] = m;
	s->n++;
	PG_RETURN_POINTER(s);
}

Datum
clv_points_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_points_combine");
	ClvPoints  *a = PG_ARGISNULL(0) ? NULL : (ClvPoints *) PG_GETARG_POINTER(0);
	ClvPoints  *b = PG_ARGISNULL(1) ? NULL : (ClvPoints *) PG_GETARG_POINTER(1);
	MemoryContext old;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		/* copy into the aggregate context: b may live in a shorter-lived one */
		a = ClvPointsNew(aggcxt, b->width);
	}
	if (a->width != b->width)
		elog(ERROR, "clv_points_combine: mismatched states");
	old = MemoryContextSwitchTo(aggcxt);
	ClvPointsReserve(a, b->n);
	MemoryContextSwitchTo(old);
	memcpy(a->v + a->n * a->width, b->v, sizeof(double) * b->n * b->width);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

Datum
clv_points_serial(PG_FUNCTION_ARGS)
{
	ClvPoints  *s = (ClvPoints *) PG_GETARG_POINTER(0);
	Size		len = VARHDRSZ + 2 * sizeof(int32) + sizeof(int64) + sizeof(double) * s->n * s->width;
	bytea	   *out = palloc(len);
	char	   *p = VARDATA(out);
	int32		version = CLV_SERIAL_VERSION;

	SET_VARSIZE(out, len);
	memcpy(p, &version, sizeof(int32));
	memcpy(p + 4, &s->width, sizeof(int32));
	memcpy(p + 8, &s->n, sizeof(int64));
	memcpy(p + 16, s->v, sizeof(double) * s->n * s->width);
	PG_RETURN_BYTEA_P(out);
}

Datum
clv_points_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_points_deserial");
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *p = VARDATA_ANY(in);
	int32		version, width;
	int64		n;
	ClvPoints  *s;

	if (len < 16)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid lifetime value fit state: too short")));
	memcpy(&version, p, 4);
	memcpy(&width, p + 4, 4);
	memcpy(&n, p + 8, 8);
	if (version != CLV_SERIAL_VERSION || (width != BGNBD_WIDTH && width != GG_WIDTH) || n < 0 ||
		(Size) n > (len - 16) / sizeof(double) || len != 16 + sizeof(double) * (Size) n * width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid lifetime value fit state")));
	s = ClvPointsNew(aggcxt, width);
	ClvPointsReserve(s, n);
	memcpy(s->v, p + 16, sizeof(double) * n * width);
	s->n = n;
	PG_RETURN_POINTER(s);
}

/* ---------------------------------------------------------------------------------------------------------
 * Likelihoods. Points are compressed into (point, weight) pairs first: weekly summaries repeat a lot.
 */
typedef struct FitData
{
	int			width;
	int64		n;				/* distinct points */
	double	   *v;				/* n * width */
	double	   *w;				/* weights */
	int			evals;
	bool		interrupted;
	nlopt_opt	opt;
} FitData;

static int	clv_cmp_width;
static int
ClvCmpPoints(const void *a, const void *b)
{
	const double *x = a, *y = b;

	for (int i = 0; i < clv_cmp_width; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

/* Sorted, deduplicated copy of the state (the state itself stays untouched: the final function may rerun). */
static void
FitDataBuild(FitData *d, ClvPoints *s)
{
	int			w = s->width;
	double	   *tmp = palloc_extended(sizeof(double) * Max(s->n, 1) * w, MCXT_ALLOC_HUGE);
	int64		k = -1;

	memcpy(tmp, s->v, sizeof(double) * s->n * w);
	clv_cmp_width = w;
	qsort(tmp, s->n, sizeof(double) * w, ClvCmpPoints);
	d->width = w;
	d->v = palloc_extended(sizeof(double) * Max(s->n, 1) * w, MCXT_ALLOC_HUGE);
	d->w = palloc_extended(sizeof(double) * Max(s->n, 1), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < s->n; i++)
	{
		if (k >= 0 && ClvCmpPoints(tmp + i * w, d->v + k * w) == 0)
			d->w[k] += 1;
		else
		{
			k++;
			memcpy(d->v + k * w, tmp + i * w, sizeof(double) * w);
			d->w[k] = 1;
		}
	}
	d->n = k + 1;
	d->evals = 0;
	d->interrupted = false;
	pfree(tmp);
}

static inline double
LogSumExp(double a, double b)
{
	double		m = Max(a, b);

	return m + log(exp(a - m) + exp(b - m));
}

/* BG/NBD log-likelihood of one customer (FHL 2005 eq. 6, in log space). */
static double
BgnbdLL1(double r, double alpha, double a, double b, double x, double tx, double T)
{
	double		a1 = lgamma(r + x) - lgamma(r) + r * log(alpha);
	double		a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
	double		a3 = -(r + x) * log(alpha + T);

	if (x > 0)
	{
		double		a4 = log(a) - log(b + x - 1) - (r + x) * log(alpha + tx);

		return a1 + a2 + LogSumExp(a3, a4);
	}
	return a1 + a2 + a3;
}

/* Gamma-Gamma log-likelihood of one customer's mean spend m over x transactions (BTYD spend.LL). */
static double
GgLL1(double p, double q, double g, double x, double m)
{
	return lgamma(p * x + q) - lgamma(p * x) - lgamma(q) + q * log(g) + (p * x - 1) * log(m)
		+ (p * x) * log(x) - (p * x + q) * log(g + m * x);
}

static double
FitObjective(unsigned n, const double *lp, double *grad, void *data)
{
	FitData    *d = data;
	double		ll = 0;

	d->evals++;
	/*
	 * Only a cancel or termination stops the fit (InterruptPending alone is also set by harmless parallel
	 * messages); the error is raised after NLopt returned, never by longjmp through it.
	 */
	if (QueryCancelPending || ProcDiePending)
	{
		d->interrupted = true;
		nlopt_force_stop(d->opt);
		return HUGE_VAL;
	}
	if (d->width == BGNBD_WIDTH)
	{
		double		r = exp(lp[0]), alpha = exp(lp[1]), a = exp(lp[2]), b = exp(lp[3]);

		for (int64 i = 0; i < d->n; i++)
			ll += d->w[i] * BgnbdLL1(r, alpha, a, b, d->v[3 * i], d->v[3 * i + 1], d->v[3 * i + 2]);
	}
	else
	{
		double		p = exp(lp[0]), q = exp(lp[1]), g = exp(lp[2]);

		for (int64 i = 0; i < d->n; i++)
			ll += d->w[i] * GgLL1(p, q, g, d->v[2 * i], d->v[2 * i + 1]);
	}
	if (isnan(ll))
		return HUGE_VAL;
	return -ll;
}

/*
 * Maximises the likelihood over log-parameters with bounded Nelder-Mead, restarted once from its own
 * optimum (the usual guard against a simplex that collapsed early). Errors when it does not converge.
 */
static double
FitRun(FitData *d, int np, double *lp, const char *model)
{
	double		lb[4], ub[4], minf = HUGE_VAL;
	nlopt_result res = NLOPT_SUCCESS;

	for (int i = 0; i < np; i++)
	{
		lb[i] = log(1e-8);
		ub[i] = log(1e8);
	}
	for (int pass = 0; pass < 2; pass++)
	{
		nlopt_opt opt;

		/* NLopt's random numbers are seeded from the clock otherwise: fixed, so that fits are repeatable */
		nlopt_srand(20050101);
		opt = nlopt_create(NLOPT_LN_NELDERMEAD, np);

		if (opt == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the optimiser")));
		nlopt_set_lower_bounds(opt, lb);
		nlopt_set_upper_bounds(opt, ub);
		nlopt_set_min_objective(opt, FitObjective, d);
		nlopt_set_xtol_rel(opt, 1e-10);
		nlopt_set_ftol_abs(opt, 1e-10);
		nlopt_set_maxeval(opt, FIT_MAX_EVAL);
		nlopt_set_maxtime(opt, FIT_MAX_SECONDS);
		nlopt_set_initial_step1(opt, pass == 0 ? 0.5 : 0.05);
		d->opt = opt;
		res = nlopt_optimize(opt, lp, &minf);
		nlopt_destroy(opt);
		d->opt = NULL;
		if (d->interrupted)
		{
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("%s fit interrupted", model)));
		}
		if (res < 0 || res == NLOPT_MAXEVAL_REACHED || res == NLOPT_MAXTIME_REACHED)
			break;
	}
	if (res == NLOPT_MAXEVAL_REACHED || res == NLOPT_MAXTIME_REACHED)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s fit did not converge", model),
				 errdetail("The optimiser reached its limit of %s after %d likelihood evaluations.",
						   res == NLOPT_MAXEVAL_REACHED ? "20000 evaluations" : "300 seconds", d->evals),
				 errhint("Check that the summaries are in consistent time units and that enough customers repeat.")));
	if (res < 0 || !isfinite(minf))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s fit did not converge", model),
				 errdetail("The optimiser stopped with code %d after %d likelihood evaluations.", (int) res, d->evals),
				 errhint("Check that the summaries are in consistent time units and that enough customers repeat.")));
	for (int i = 0; i < np; i++)
		if (lp[i] <= lb[i] + 1e-6 || lp[i] >= ub[i] - 1e-6)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s fit did not converge", model),
					 errdetail("Parameter %d ran to its bound (%g): the likelihood has no interior maximum on these data.",
							   i + 1, exp(lp[i])),
					 errhint("Check that the summaries are in consistent time units and that enough customers repeat.")));
	return -minf;
}

static Datum
FitResult(FunctionCallInfo fcinfo, int np, const double *lp, double ll, int64 n, int evals)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	for (int i = 0; i < np; i++)
		values[i] = Float8GetDatum(exp(lp[i]));
	values[np] = Float8GetDatum(ll);
	values[np + 1] = Int64GetDatum(n);
	values[np + 2] = Int32GetDatum(evals);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* Final function of bgnbd_fit: NULL for an empty group; the state is only read. */
Datum
bgnbd_fit_final(PG_FUNCTION_ARGS)
{
	ClvPoints  *s = PG_ARGISNULL(0) ? NULL : (ClvPoints *) PG_GETARG_POINTER(0);
	FitData		d;
	double		lp[4] = {0, 0, 0, 0};
	double		ll;
	bool		repeat = false;

	if (s == NULL || s->n == 0)
		PG_RETURN_NULL();
	for (int64 i = 0; i < s->n && !repeat; i++)
		repeat = s->v[3 * i] > 0;
	if (!repeat)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bg/nbd needs at least one customer with a repeat transaction")));
	FitDataBuild(&d, s);
	ll = FitRun(&d, 4, lp, "bg/nbd");
	return FitResult(fcinfo, 4, lp, ll, s->n, d.evals);
}

Datum
gammagamma_fit_final(PG_FUNCTION_ARGS)
{
	ClvPoints  *s = PG_ARGISNULL(0) ? NULL : (ClvPoints *) PG_GETARG_POINTER(0);
	FitData		d;
	double		lp[3] = {0, 0, 0};
	double		ll;

	if (s == NULL || s->n == 0)
		PG_RETURN_NULL();
	FitDataBuild(&d, s);
	ll = FitRun(&d, 3, lp, "gamma-gamma");
	return FitResult(fcinfo, 3, lp, ll, s->n, d.evals);
}

/* ---------------------------------------------------------------------------------------------------------
 * Per-customer predictions. Parameters come as the composite the fit returns.
 */
static void
ClvGetParams(HeapTupleHeader t, int np, double *out, const char *model)
{
	static const char *names[2][4] = {{"r", "alpha", "a", "b"}, {"p", "q", "gamma", ""}};

	for (int i = 0; i < np; i++)
	{
		bool		isnull;
		Datum		d = GetAttributeByNum(t, i + 1, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s parameter %s is null", model, names[np == 4 ? 0 : 1][i])));
		out[i] = DatumGetFloat8(d);
		if (!(out[i] > 0) || isinf(out[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s parameter %s must be a positive finite number", model, names[np == 4 ? 0 : 1][i])));
	}
}

/*
 * Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1 by its power series, summed until the terms are
 * decreasing and below 1e-15 of the sum; a bounded number of terms, error past that.
 */
static double
Hyp2F1(double a, double b, double c, double z)
{
	double		term = 1, sum = 1;

	if (z == 0)
		return 1;
	for (int j = 0; j < HYP2F1_MAX_TERMS; j++)
	{
		double		ratio = (a + j) * (b + j) / ((c + j) * (j + 1)) * z;

		term *= ratio;
		sum += term;
		if (fabs(ratio) < 1 && fabs(term) <= 1e-15 * fabs(sum))
			return sum;
		if (!isfinite(sum))
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("hypergeometric series did not converge"),
			 errdetail("2F1(%g, %g; %g; %g) needs more than %d terms.", a, b, c, z, HYP2F1_MAX_TERMS),
			 errhint("Use a shorter horizon relative to the time unit of the model.")));
	return 0;					/* keep the compiler quiet */
}

static void
ClvCheckA(double a)
{
	if (fabs(a - 1) < 1e-12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bg/nbd expectations are undefined at a = 1")));
}

/* E[X(t)] for a new customer (FHL 2005 eq. 7). */
static double
BgnbdExpectation(const double *pr, double t)
{
	double		r = pr[0], alpha = pr[1], a = pr[2], b = pr[3];
	double		z = t / (alpha + t);

	ClvCheckA(a);
	return (a + b - 1) / (a - 1) *
		(1 - exp(r * log(alpha / (alpha + t))) * Hyp2F1(r, b, a + b - 1, z));
}

static double
BgnbdPAlive(const double *pr, double x, double tx, double T)
{
	double		r = pr[0], alpha = pr[1], a = pr[2], b = pr[3];

	if (x == 0)
		return 1;
	return 1 / (1 + exp(log(a) - log(b + x - 1) + (r + x) * log((alpha + T) / (alpha + tx))));
}

/* E[Y(t) | x, t_x, T] (FHL 2005 eq. 10). */
static double
BgnbdConditional(const double *pr, double t, double x, double tx, double T)
{
	double		r = pr[0], alpha = pr[1], a = pr[2], b = pr[3];
	double		z = t / (alpha + T + t);
	double		head, bracket;

	ClvCheckA(a);
	if (t == 0)
		return 0;
	head = (a + b + x - 1) / (a - 1);
	bracket = 1 - exp((r + x) * log((alpha + T) / (alpha + T + t))) * Hyp2F1(r + x, b + x, a + b + x - 1, z);
	return head * bracket * BgnbdPAlive(pr, x, tx, T);
}

static void
ClvCheckHorizon(double t)
{
	ClvCheckInput(t, "t");
	if (t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t must not be negative")));
}

Datum
bgnbd_loglik(PG_FUNCTION_ARGS)
{
	double		pr[4];
	double		x = PG_GETARG_FLOAT8(1), tx = PG_GETARG_FLOAT8(2), T = PG_GETARG_FLOAT8(3);

	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 4, pr, "bg/nbd");
	ClvCheckCustomer(x, tx, T);
	PG_RETURN_FLOAT8(BgnbdLL1(pr[0], pr[1], pr[2], pr[3], x, x == 0 ? 0 : tx, T));
}

Datum
bgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	double		pr[4];
	double		t = PG_GETARG_FLOAT8(1), x = PG_GETARG_FLOAT8(2), tx = PG_GETARG_FLOAT8(3), T = PG_GETARG_FLOAT8(4);

	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 4, pr, "bg/nbd");
	ClvCheckHorizon(t);
	ClvCheckCustomer(x, tx, T);
	PG_RETURN_FLOAT8(BgnbdConditional(pr, t, x, tx, T));
}

Datum
bgnbd_expectation(PG_FUNCTION_ARGS)
{
	double		pr[4];
	double		t = PG_GETARG_FLOAT8(1);

	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 4, pr, "bg/nbd");
	ClvCheckHorizon(t);
	PG_RETURN_FLOAT8(BgnbdExpectation(pr, t));
}

Datum
bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	double		pr[4];
	double		x = PG_GETARG_FLOAT8(1), tx = PG_GETARG_FLOAT8(2), T = PG_GETARG_FLOAT8(3);

	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 4, pr, "bg/nbd");
	ClvCheckCustomer(x, tx, T);
	PG_RETURN_FLOAT8(BgnbdPAlive(pr, x, tx, T));
}

/* E[M | x, m_x] = p (gamma + x m_x) / (p x + q - 1); the population mean p gamma / (q - 1) when x = 0. */
static double
GgExpectedSpend(const double *pg, double x, double m, bool m_null)
{
	double		p = pg[0], q = pg[1], g = pg[2];

	if (q <= 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gamma-gamma expected spend needs q > 1"),
				 errdetail("Got q = %g: the mean spend has no finite expectation.", q)));
	if (x == 0 || m_null)
		return p * g / (q - 1);
	return p * (g + x * m) / (p * x + q - 1);
}

static void
ClvCheckSpendInput(double x, double m, bool m_null)
{
	ClvCheckInput(x, "x");
	if (x < 0 || x != floor(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must be a non-negative whole number of repeat transactions"),
				 errdetail("Got x = %g.", x)));
	if (!m_null && x > 0)
	{
		ClvCheckInput(m, "mean_spend");
		if (m <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mean_spend must be positive for the gamma-gamma model"),
					 errdetail("Got mean_spend = %g with x = %g.", m, x)));
	}
}

/* gammagamma_expected_spend(params, x, mean_spend): not strict in mean_spend (NULL when x = 0). */
Datum
gammagamma_expected_spend(PG_FUNCTION_ARGS)
{
	double		pg[3];
	double		x, m;
	bool		m_null = PG_ARGISNULL(2);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 3, pg, "gamma-gamma");
	x = PG_GETARG_FLOAT8(1);
	m = m_null ? 0 : PG_GETARG_FLOAT8(2);
	ClvCheckSpendInput(x, m, m_null);
	PG_RETURN_FLOAT8(GgExpectedSpend(pg, x, m, m_null));
}

/*
 * clv(bg, gg, x, t_x, T, mean_spend, horizon, discount_rate, period_length):
 *   E[M] * sum_{k=1..horizon} (E[Y(k L)] - E[Y((k-1) L)]) / (1 + d)^k
 * with L = period_length in model time units and d the discount rate per period.
 */
Datum
clv_value(PG_FUNCTION_ARGS)
{
	double		pr[4], pg[3];
	double		x, tx, T, m, d, L, spend, prev = 0, total = 0;
	int32		horizon;
	bool		m_null = PG_ARGISNULL(5);

	for (int i = 0; i < 9; i++)
		if (i != 5 && PG_ARGISNULL(i))
			PG_RETURN_NULL();
	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(0), 4, pr, "bg/nbd");
	ClvGetParams(PG_GETARG_HEAPTUPLEHEADER(1), 3, pg, "gamma-gamma");
	x = PG_GETARG_FLOAT8(2);
	tx = PG_GETARG_FLOAT8(3);
	T = PG_GETARG_FLOAT8(4);
	m = m_null ? 0 : PG_GETARG_FLOAT8(5);
	horizon = PG_GETARG_INT32(6);
	d = PG_GETARG_FLOAT8(7);
	L = PG_GETARG_FLOAT8(8);
	ClvCheckCustomer(x, tx, T);
	ClvCheckSpendInput(x, m, m_null);
	ClvCheckInput(d, "discount_rate");
	ClvCheckInput(L, "period_length");
	if (horizon < 0 || horizon > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be between 0 and 100000 periods")));
	if (d <= -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("discount_rate must be greater than -1")));
	if (L <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period_length must be positive")));
	spend = GgExpectedSpend(pg, x, m, m_null);
	for (int k = 1; k <= horizon; k++)
	{
		double		e = BgnbdConditional(pr, k * L, x, tx, T);

		total += (e - prev) / pow(1 + d, k);
		prev = e;
	}
	PG_RETURN_FLOAT8(spend * total);
}

/* ---------------------------------------------------------------------------------------------------------
 * clv_summary(event_date, amount, calibration_end, holdout_end, period_days): one customer's transaction log
 * to its calibration/holdout summary, same-day transactions merged (BTYD's dc.MergeTransactionsOnSameDate).
 */
typedef struct ClvEvent
{
	int32		day;			/* DateADT */
	double		amount;
} ClvEvent;

typedef struct ClvSummaryState
{
	int32		cal_end;
	int32		hold_end;		/* = cal_end when there is no holdout */
	double		period;
	int64		n, cap;
	ClvEvent   *ev;
} ClvSummaryState;

Datum
clv_summary_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_summary_trans");
	ClvSummaryState *s = PG_ARGISNULL(0) ? NULL : (ClvSummaryState *) PG_GETARG_POINTER(0);
	DateADT		day;
	double		amount;

	if (s == NULL)
	{
		DateADT		cal, hold;
		double		period;

		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("calibration_end must not be null")));
		cal = PG_GETARG_DATEADT(3);
		hold = PG_ARGISNULL(4) ? cal : PG_GETARG_DATEADT(4);
		period = PG_ARGISNULL(5) ? 7.0 : PG_GETARG_FLOAT8(5);
		if (DATE_NOT_FINITE(cal) || DATE_NOT_FINITE(hold))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("calibration_end and holdout_end must be finite dates")));
		if (hold < cal)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("holdout_end must not be before calibration_end")));
		if (!(period > 0) || isinf(period))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("period_days must be a positive finite number")));
		s = MemoryContextAllocZero(aggcxt, sizeof(ClvSummaryState));
		s->cal_end = cal;
		s->hold_end = hold;
		s->period = period;
		s->cap = 8;
		s->ev = MemoryContextAlloc(aggcxt, sizeof(ClvEvent) * s->cap);
	}
	else if (PG_ARGISNULL(3) || PG_GETARG_DATEADT(3) != s->cal_end ||
			 (PG_ARGISNULL(4) ? s->cal_end : PG_GETARG_DATEADT(4)) != s->hold_end ||
			 (PG_ARGISNULL(5) ? 7.0 : PG_GETARG_FLOAT8(5)) != s->period)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration_end, holdout_end and period_days must be the same for every row of a group")));
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	day = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transaction dates must be finite")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("amount must not be null"),
				 errhint("Use 0 for transactions of unknown value.")));
	amount = PG_GETARG_FLOAT8(2);
	ClvCheckInput(amount, "amount");
	if (day > s->hold_end)
		PG_RETURN_POINTER(s);	/* after the observation window: not part of the summary */
	if (s->n == s->cap)
	{
		s->cap *= 2;
		s->ev = repalloc_huge(s->ev, sizeof(ClvEvent) * s->cap);
	}
	s->ev[s->n].day = day;
	s->ev[s->n].amount = amount;
	s->n++;
	PG_RETURN_POINTER(s);
}

Datum
clv_summary_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_summary_combine");
	ClvSummaryState *a = PG_ARGISNULL(0) ? NULL : (ClvSummaryState *) PG_GETARG_POINTER(0);
	ClvSummaryState *b = PG_ARGISNULL(1) ? NULL : (ClvSummaryState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* no rows on either side: the state stays SQL NULL */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = MemoryContextAllocZero(aggcxt, sizeof(ClvSummaryState));
		*a = *b;
		a->cap = Max(b->n, 8);
		a->ev = MemoryContextAlloc(aggcxt, sizeof(ClvEvent) * a->cap);
		memcpy(a->ev, b->ev, sizeof(ClvEvent) * b->n);
		PG_RETURN_POINTER(a);
	}
	if (a->n + b->n > a->cap)
	{
		a->cap = a->n + b->n;
		a->ev = repalloc_huge(a->ev, sizeof(ClvEvent) * a->cap);
	}
	memcpy(a->ev + a->n, b->ev, sizeof(ClvEvent) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

Datum
clv_summary_serial(PG_FUNCTION_ARGS)
{
	ClvSummaryState *s = (ClvSummaryState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, CLV_SERIAL_VERSION);
	pq_sendint32(&buf, s->cal_end);
	pq_sendint32(&buf, s->hold_end);
	pq_sendfloat8(&buf, s->period);
	pq_sendint64(&buf, s->n);
	for (int64 i = 0; i < s->n; i++)
	{
		pq_sendint32(&buf, s->ev[i].day);
		pq_sendfloat8(&buf, s->ev[i].amount);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
clv_summary_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt = RmAggContext(fcinfo, "clv_summary_deserial");
	Size		len = VARSIZE_ANY_EXHDR(in);
	StringInfoData buf;
	ClvSummaryState *s;
	int64		n;

	if (len < 28)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid clv_summary state: too short")));
	buf.data = VARDATA_ANY(in);
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 0;
	if (pq_getmsgint(&buf, 4) != CLV_SERIAL_VERSION)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid clv_summary state: unknown version")));
	s = MemoryContextAllocZero(aggcxt, sizeof(ClvSummaryState));
	s->cal_end = pq_getmsgint(&buf, 4);
	s->hold_end = pq_getmsgint(&buf, 4);
	s->period = pq_getmsgfloat8(&buf);
	n = pq_getmsgint64(&buf);
	if (n < 0 || (Size) n != (len - 28) / 12 || len != 28 + 12 * (Size) n || s->hold_end < s->cal_end)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid clv_summary state")));
	s->n = n;
	s->cap = Max(n, 8);
	s->ev = MemoryContextAlloc(aggcxt, sizeof(ClvEvent) * s->cap);
	for (int64 i = 0; i < n; i++)
	{
		s->ev[i].day = pq_getmsgint(&buf, 4);
		s->ev[i].amount = pq_getmsgfloat8(&buf);
	}
	PG_RETURN_POINTER(s);
}

static int
ClvCmpEvent(const void *a, const void *b)
{
	const ClvEvent *x = a, *y = b;

	return x->day < y->day ? -1 : x->day > y->day ? 1 : 0;
}

/*
 * Final: NULL when the customer has no transaction on or before calibration_end (not in the cohort).
 * Sorting a copy keeps the state unchanged, so the function can be called again (window use).
 */
Datum
clv_summary_final(PG_FUNCTION_ARGS)
{
	ClvSummaryState *s = PG_ARGISNULL(0) ? NULL : (ClvSummaryState *) PG_GETARG_POINTER(0);
	ClvEvent   *ev;
	int32		birth, last_rep = 0;
	int64		x = 0, xh = 0;
	double		first_spend = 0, rep_spend = 0, hold_spend = 0;
	TupleDesc	tupdesc;
	Datum		values[10];
	bool		nulls[10] = {0};

	if (s == NULL || s->n == 0)
		PG_RETURN_NULL();
	ev = palloc(sizeof(ClvEvent) * s->n);
	memcpy(ev, s->ev, sizeof(ClvEvent) * s->n);
	qsort(ev, s->n, sizeof(ClvEvent), ClvCmpEvent);
	birth = ev[0].day;
	if (birth > s->cal_end)
		PG_RETURN_NULL();
	for (int64 i = 0; i < s->n; i++)
	{
		bool		new_day = (i == 0 || ev[i].day != ev[i - 1].day);

		if (ev[i].day == birth)
			first_spend += ev[i].amount;
		else if (ev[i].day <= s->cal_end)
		{
			x += new_day;
			rep_spend += ev[i].amount;
			last_rep = ev[i].day;
		}
		else
		{
			xh += new_day;
			hold_spend += ev[i].amount;
		}
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = DateADTGetDatum(birth);
	values[1] = Int32GetDatum((int32) x);
	values[2] = Float8GetDatum(x > 0 ? (last_rep - birth) / s->period : 0.0);
	values[3] = Float8GetDatum((s->cal_end - birth) / s->period);
	values[4] = Float8GetDatum(first_spend);
	values[5] = Float8GetDatum(x > 0 ? rep_spend / x : 0.0);
	nulls[5] = (x == 0);
	values[6] = Float8GetDatum(rep_spend);
	values[7] = Int32GetDatum((int32) xh);
	values[8] = Float8GetDatum(hold_spend);
	values[9] = Float8GetDatum((s->hold_end - s->cal_end) / s->period);
	pfree(ev);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}
