/* demand/replenish.c: the numeric kernels of replenishment that are too slow or too fiddly in SQL. */
/*
 * Three kinds of work:
 *  - the distribution of lead-time demand when the lead time itself varies (a mixture over lead-time days of
 *    normal demand sums), and its service-level quantile;
 *  - the day-by-day simulation of an (s, S) periodic-review policy with lost sales, for the service-level
 *    backtest;
 *  - the normal-distribution functions of safety stocks (normal_quantile, normal_loss, fill-rate factor).
 * Everything else (parameters, forecasts, snapshots, transfers) is SQL in replenish.sql.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "common/retail_mid.h"
#include "common/rm_math.h"

#define LTD_MAX_STEPS 10000

/*
 * Reads a one-dimensional float8 array argument into a palloc'd C array; NULL elements are returned as NaN
 * with *has_null set (the caller decides whether they are allowed).
 */
static double *
ReadFloatArray(ArrayType *a, const char *what, int *n, bool *has_null)
{
	Datum	   *elems;
	bool	   *nulls;
	double	   *out;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, n);
	out = palloc(sizeof(double) * Max(*n, 1));
	*has_null = false;
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
		{
			*has_null = true;
			out[i] = NAN;
			continue;
		}
		out[i] = DatumGetFloat8(elems[i]);
		RetailMidCheckFinite(out[i], what);
	}
	return out;
}

/* Standard normal density. */
static double
NormPdf(double x)
{
	return exp(-0.5 * x * x) / sqrt(2 * M_PI);
}

/* The standard normal loss function G(k) = E[(Z - k)+] = phi(k) - k (1 - Phi(k)). */
static double
NormLoss(double k)
{
	return NormPdf(k) - k * 0.5 * erfc(k / M_SQRT2);
}

/*
 * Lead-time demand as a mixture of normals over whole lead-time days: component k (0..kmax) has weight w[k],
 * mean cm[k] and variance cv[k]. Built from the daily forecast means and sigmas after checking the arguments.
 */
typedef struct LtdMixture
{
	int			kmax;
	double	   *w,
			   *cm,
			   *cv;
	double		mean,
				sd,
				lo,				/* bounds enclosing every component's mass */
				hi;
} LtdMixture;

static void
BuildMixture(ArrayType *am, ArrayType *as, double L, double sdL, LtdMixture *mx)
{
	int			n,
				ns;
	bool		null_m,
				null_s;
	double	   *m,
			   *s;
	int			kmax;
	double	   *w,
			   *cm,
			   *cv;
	double		mean = 0,
				second = 0;

	m = ReadFloatArray(am, "forecast means", &n, &null_m);
	s = ReadFloatArray(as, "forecast sigmas", &ns, &null_s);
	if (null_m || null_s)
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("forecast means and sigmas must not contain nulls")));
	if (n == 0 || n != ns)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("forecast means and sigmas must be non-empty arrays of the same length"),
						errdetail("Got %d means and %d sigmas.", n, ns)));
	if (n > LTD_MAX_STEPS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("lead-time demand takes at most %d forecast steps", LTD_MAX_STEPS)));
	for (int i = 0; i < n; i++)
		if (s[i] < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("forecast sigmas must not be negative")));
	RetailMidCheckFinite(L, "lead time");
	RetailMidCheckFinite(sdL, "lead time standard deviation");
	if (L < 0 || sdL < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lead time and its standard deviation must not be negative")));
	if (L > n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lead time %g exceeds the forecast horizon %d", L, n),
						errhint("Forecast at least as many periods as the lead time.")));

	/* mixture components k = 0 .. kmax: weight, cumulative mean and variance */
	kmax = (sdL > 0) ? n : (int) ceil(L);
	w = palloc0(sizeof(double) * (kmax + 1));
	cm = palloc0(sizeof(double) * (kmax + 1));
	cv = palloc0(sizeof(double) * (kmax + 1));
	for (int k = 1; k <= kmax; k++)
	{
		cm[k] = cm[k - 1] + m[k - 1];
		cv[k] = cv[k - 1] + s[k - 1] * s[k - 1];
	}
	if (sdL > 0)
	{
		for (int k = 0; k <= kmax; k++)
		{
			double		a = (k == 0) ? 0.0 : RmNormCdf((k - 0.5 - L) / sdL);
			double		b = (k == kmax) ? 1.0 : RmNormCdf((k + 0.5 - L) / sdL);

			w[k] = Max(b - a, 0.0);
		}
	}
	else
	{
		/* one component: the fractional day is folded into component kmax */
		int			f = (int) floor(L);
		double		frac = L - f;

		if (frac > 0)
		{
			cm[kmax] = cm[f] + frac * m[f];
			cv[kmax] = cv[f] + frac * s[f] * s[f];
		}
		w[kmax] = 1.0;
	}
	for (int k = 0; k <= kmax; k++)
	{
		mean += w[k] * cm[k];
		second += w[k] * (cv[k] + cm[k] * cm[k]);
	}
	mx->lo = INFINITY;
	mx->hi = -INFINITY;
	for (int k = 0; k <= kmax; k++)
	{
		if (w[k] <= 0)
			continue;
		mx->lo = Min(mx->lo, cm[k] - 40 * sqrt(cv[k]));
		mx->hi = Max(mx->hi, cm[k] + 40 * sqrt(cv[k]));
	}
	mx->lo -= 1e-9;
	mx->hi += 1e-9;
	mx->kmax = kmax;
	mx->w = w;
	mx->cm = cm;
	mx->cv = cv;
	mx->mean = mean;
	mx->sd = sqrt(Max(second - mean * mean, 0.0));
}

/* Mixture CDF at x. */
static double
MixtureCdf(const LtdMixture *mx, double x)
{
	double		F = 0;

	for (int k = 0; k <= mx->kmax; k++)
	{
		if (mx->w[k] <= 0)
			continue;
		if (mx->cv[k] > 0)
			F += mx->w[k] * RmNormCdf((x - mx->cm[k]) / sqrt(mx->cv[k]));
		else if (x >= mx->cm[k])
			F += mx->w[k];
	}
	return F;
}

/* Expected shortage E[(X - x)+] of the mixture: sum of w_k sigma_k G((x - mu_k) / sigma_k). */
static double
MixtureLoss(const LtdMixture *mx, double x)
{
	double		E = 0;

	for (int k = 0; k <= mx->kmax; k++)
	{
		if (mx->w[k] <= 0)
			continue;
		if (mx->cv[k] > 0)
		{
			double		sd = sqrt(mx->cv[k]);

			E += mx->w[k] * sd * NormLoss((x - mx->cm[k]) / sd);
		}
		else
			E += mx->w[k] * Max(mx->cm[k] - x, 0.0);
	}
	return E;
}

static Datum
MixtureResult(FunctionCallInfo fcinfo, int nvalues, Datum *values)
{
	TupleDesc	tupdesc;
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	Assert(tupdesc->natts == nvalues);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * lead_time_demand_mixture(means, sigmas, lead_time_mean, lead_time_sd, service_level)
 *   -> (mean float8, sd float8, quantile float8)
 *
 * Demand on day h of the horizon is taken as Normal(means[h], sigmas[h]^2), days independent. With a fixed lead
 * time L (sd = 0) the lead-time demand is the sum over days 1..floor(L) plus the fraction L - floor(L) of the
 * next day (mean and variance scaled by the fraction). With sd > 0 the lead time K is a whole number of days
 * with P(K = k) = Phi((k + 0.5 - L) / sd) - Phi((k - 0.5 - L) / sd), the mass below 0.5 put on k = 0 and the
 * mass above the horizon put on the horizon; lead-time demand is then a mixture of normals over k, and its
 * quantile is found by bisection on the mixture CDF. The quantile is clipped at 0 (demand is not negative).
 */
PG_FUNCTION_INFO_V1(lead_time_demand_mixture);
Datum
lead_time_demand_mixture(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(4);
	LtdMixture	mx;
	double		lo,
				hi,
				q;
	Datum		values[3];

	BuildMixture(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3), &mx);
	if (!(p > 0 && p < 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("service level must be strictly between 0 and 1")));

	/* bisection on the mixture CDF between bounds that enclose every component's quantile */
	lo = mx.lo;
	hi = mx.hi;
	for (int it = 0; it < 200 && hi - lo > 1e-10 * Max(1.0, fabs(hi)); it++)
	{
		double		x = 0.5 * (lo + hi);

		if (MixtureCdf(&mx, x) < p)
			lo = x;
		else
			hi = x;
	}
	/* F(hi) >= p throughout; a point mass (zero variance) inside the final bracket is the exact answer */
	q = hi;
	for (int k = 0; k <= mx.kmax; k++)
		if (mx.w[k] > 0 && mx.cv[k] == 0 && mx.cm[k] >= lo && mx.cm[k] <= hi)
			q = mx.cm[k];
	q = Max(0.0, q);

	values[0] = Float8GetDatum(mx.mean);
	values[1] = Float8GetDatum(mx.sd);
	values[2] = Float8GetDatum(q);
	return MixtureResult(fcinfo, 3, values);
}

/* The allowed expected shortage per cycle for a fill rate with lost sales: (1 - beta) / beta * Q. */
static double
AllowedShortage(double fill_rate, double order_quantity)
{
	RetailMidCheckFinite(fill_rate, "fill rate");
	RetailMidCheckFinite(order_quantity, "order quantity");
	if (!(fill_rate > 0 && fill_rate < 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("fill rate must be strictly between 0 and 1")));
	if (order_quantity < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("order quantity must not be negative")));
	return (1 - fill_rate) / fill_rate * order_quantity;
}

/*
 * lead_time_demand_fill_rate(means, sigmas, lead_time_mean, lead_time_sd, fill_rate, order_quantity)
 *   -> (mean float8, sd float8, level float8, expected_shortage float8)
 *
 * The same lead-time demand mixture as lead_time_demand_mixture(); instead of a quantile, the smallest level
 * x >= 0 whose expected shortage per cycle E[(X - x)+] is at most (1 - fill_rate) / fill_rate * order_quantity
 * (the loss-function method for a fill rate with lost sales, Silver, Pyke & Peterson; with backorders it would be
 * (1 - fill_rate) * order_quantity). E[(X - x)+] = sum_k w_k sd_k G((x - mean_k) / sd_k), G the normal loss
 * function; x by bisection (the loss decreases in x). Returns that x and its expected shortage.
 */
PG_FUNCTION_INFO_V1(lead_time_demand_fill_rate);
Datum
lead_time_demand_fill_rate(PG_FUNCTION_ARGS)
{
	LtdMixture	mx;
	double		target,
				lo,
				hi;
	Datum		values[4];

	BuildMixture(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3), &mx);
	target = AllowedShortage(PG_GETARG_FLOAT8(4), PG_GETARG_FLOAT8(5));

	lo = Max(0.0, mx.lo);
	hi = Max(lo, mx.hi);
	if (MixtureLoss(&mx, lo) <= target)
		hi = lo;				/* no stock at all already meets the target */
	for (int it = 0; it < 200 && hi - lo > 1e-10 * Max(1.0, fabs(hi)); it++)
	{
		double		x = 0.5 * (lo + hi);

		if (MixtureLoss(&mx, x) > target)
			lo = x;
		else
			hi = x;
	}
	values[0] = Float8GetDatum(mx.mean);
	values[1] = Float8GetDatum(mx.sd);
	values[2] = Float8GetDatum(hi);
	values[3] = Float8GetDatum(MixtureLoss(&mx, hi));
	return MixtureResult(fcinfo, 4, values);
}

/* normal_quantile(p): inverse standard normal CDF, for service levels (z of a safety stock). */
PG_FUNCTION_INFO_V1(normal_quantile);
Datum
normal_quantile(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(0);

	if (!(p > 0 && p < 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("probability must be strictly between 0 and 1")));
	PG_RETURN_FLOAT8(RmNormQuantile(p));
}

/* normal_loss(k): the standard normal loss function G(k) = E[(Z - k)+] = phi(k) - k (1 - Phi(k)). */
PG_FUNCTION_INFO_V1(normal_loss);
Datum
normal_loss(PG_FUNCTION_ARGS)
{
	double		k = PG_GETARG_FLOAT8(0);

	RetailMidCheckFinite(k, "safety factor");
	PG_RETURN_FLOAT8(NormLoss(k));
}

/*
 * fill_rate_safety_factor(fill_rate, sigma, order_quantity): the safety factor k with sigma G(k) =
 * (1 - fill_rate) / fill_rate * order_quantity (fill rate with lost sales, normal demand over the protection
 * interval with sd sigma, Q units per cycle); safety stock = k sigma. k can be negative (large Q); 0 when sigma
 * is 0 (no uncertainty, no safety stock); with Q = 0 (no demand expected per cycle) the fill rate is undefined
 * and the cycle-service-level factor z(fill_rate) is returned.
 */
PG_FUNCTION_INFO_V1(fill_rate_safety_factor);
Datum
fill_rate_safety_factor(PG_FUNCTION_ARGS)
{
	double		sigma = PG_GETARG_FLOAT8(1);
	double		g,
				lo,
				hi;

	g = AllowedShortage(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(2));
	RetailMidCheckFinite(sigma, "sigma");
	if (sigma < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("sigma must not be negative")));
	if (sigma == 0)
		PG_RETURN_FLOAT8(0);
	g /= sigma;
	/* G decreases from +Inf to 0 and G(k) > -k: the root lies in [-g - 1, 40] (G(40) underflows to 0) */
	lo = -g - 1;
	hi = 40;
	if (g <= 0)
		PG_RETURN_FLOAT8(RmNormQuantile(PG_GETARG_FLOAT8(0)));	/* Q = 0: no fill rate to speak of, use z(beta) */
	for (int it = 0; it < 300 && hi - lo > 1e-12 * Max(1.0, fabs(hi)); it++)
	{
		double		k = 0.5 * (lo + hi);

		if (NormLoss(k) > g)
			lo = k;
		else
			hi = k;
	}
	PG_RETURN_FLOAT8(0.5 * (lo + hi));
}

/* Order quantity of the (s, S) rule with packs and a minimum order: the same arithmetic as order_quantity(). */
static double
PolicyOrder(double position, double s, double S, double pack, double moq)
{
	double		q;

	if (position > s || position >= S)
		return 0;				/* with s = S (base stock) a position at S needs nothing, not a minimum order */
	q = ceil((S - position) / pack - 1e-9) * pack;
	if (q < moq)
		q = ceil(moq / pack - 1e-9) * pack;
	return Max(q, 0.0);
}

/*
 * The day-by-day (s, S) simulation shared by both replenish_simulate() variants. One SKU x store over the days of
 * d[]. A day: (1) orders due that day arrive; (2) on a review day (rop[t] not NaN) the inventory position (on hand +
 * on order) is compared with the reorder point and an order up to S[t] (whole packs, at least the minimum order) is
 * placed, to arrive lt[t] days later (0: before that day's demand); lead times may differ from order to order, so
 * a later order can arrive first (orders cross); (3) demand is served from stock, what cannot be served is lost
 * (lost sales, no backorders).
 * A replenishment cycle runs from one arrival day (or the first day) to the day before the next arrival day; it is
 * a stock-out cycle when demand was lost in it. The last cycle, not closed by an arrival inside the window, is
 * censored and not counted. Fills values[0..13].
 */
static void
SimulateCore(int n, const double *d, const double *rop, const double *S, const int *lt, int maxlead,
			 double on_hand, double pack, double moq, Datum *values, bool *nulls)
{
	double	   *arrive;
	double		on_order = 0,
				demand = 0,
				sold = 0,
				lost = 0,
				sum_on_hand = 0,
				units_ordered = 0;
	int			days_oos = 0,
				days_lost = 0,
				orders = 0,
				cycles = 0,
				stockout_cycles = 0;
	bool		cycle_lost = false;

	arrive = palloc0(sizeof(double) * (n + maxlead + 1));
	for (int t = 0; t < n; t++)
	{
		double		served;
		bool		arrival = arrive[t] > 0;

		on_hand += arrive[t];
		on_order -= arrive[t];
		if (!isnan(rop[t]))
		{
			double		q = PolicyOrder(on_hand + on_order, rop[t], S[t], pack, moq);

			if (q > 0)
			{
				orders++;
				units_ordered += q;
				if (lt[t] == 0)
				{
					on_hand += q;
					arrival = true;
				}
				else
				{
					arrive[t + lt[t]] += q;
					on_order += q;
				}
			}
		}
		if (arrival && t > 0)
		{
			cycles++;
			if (cycle_lost)
				stockout_cycles++;
			cycle_lost = false;
		}
		served = Min(on_hand, d[t]);
		on_hand -= served;
		demand += d[t];
		sold += served;
		lost += d[t] - served;
		if (d[t] - served > 0)
		{
			days_lost++;
			cycle_lost = true;
		}
		if (on_hand <= 0)
			days_oos++;
		sum_on_hand += on_hand;
	}

	values[0] = Int32GetDatum(n);
	values[1] = Float8GetDatum(demand);
	values[2] = Float8GetDatum(sold);
	values[3] = Float8GetDatum(lost);
	if (demand > 0)
		values[4] = Float8GetDatum(sold / demand);
	else
		nulls[4] = true;
	values[5] = Int32GetDatum(days_oos);
	values[6] = Int32GetDatum(days_lost);
	values[7] = Float8GetDatum(sum_on_hand / n);
	values[8] = Int32GetDatum(orders);
	values[9] = Float8GetDatum(units_ordered);
	values[10] = Float8GetDatum(on_hand);
	values[11] = Int32GetDatum(cycles);
	values[12] = Int32GetDatum(stockout_cycles);
	if (cycles > 0)
		values[13] = Float8GetDatum(1.0 - (double) stockout_cycles / cycles);
	else
		nulls[13] = true;
}

#define SIM_MAX_LEAD 3660
#define SIM_NCOLS 14

/*
 * Reads and checks the arguments common to both replenish_simulate() variants (all but the lead time, argument 3).
 */
static void
SimulateArgs(FunctionCallInfo fcinfo, int *n, double **d, double **rop, double **S, double *on_hand, double *pack,
			 double *moq)
{
	int			nr,
				nS;
	bool		null_d,
				null_r,
				null_S;

	for (int i = 0; i < 7; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("replenish_simulate arguments must not be null")));
	*d = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(0), "demand", n, &null_d);
	*rop = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(1), "reorder points", &nr, &null_r);
	*S = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(2), "order-up-to levels", &nS, &null_S);
	*on_hand = PG_GETARG_FLOAT8(4);
	*pack = PG_GETARG_FLOAT8(5);
	*moq = PG_GETARG_FLOAT8(6);
	if (null_d)
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("demand must not contain nulls"),
						errhint("Days without sales have demand 0.")));
	if (*n == 0 || nr != *n || nS != *n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("demand, reorder points and order-up-to levels must be non-empty arrays of the same length"),
						errdetail("Got %d, %d and %d elements.", *n, nr, nS)));
	RetailMidCheckFinite(*on_hand, "initial on hand");
	RetailMidCheckFinite(*pack, "pack size");
	RetailMidCheckFinite(*moq, "minimum order quantity");
	if (*on_hand < 0 || *moq < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("initial on hand and minimum order quantity must not be negative")));
	if (*pack <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pack size must be positive")));
	for (int t = 0; t < *n; t++)
	{
		if ((*d)[t] < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("demand must not be negative")));
		if ((bool) isnan((*rop)[t]) != (bool) isnan((*S)[t]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("reorder point and order-up-to level must be both null or both set on each day")));
		if (!isnan((*rop)[t]) && ((*rop)[t] < 0 || (*S)[t] < (*rop)[t]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("order-up-to level must not be below the reorder point, nor the reorder point below 0")));
	}
}

static Datum
SimulateResult(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * replenish_simulate(demand, reorder_point, order_up_to, lead_time int4, initial_on_hand, pack_size, min_order_qty)
 *
 * Every order arrives lead_time days after it is placed (see SimulateCore). Returns the totals behind fill rate,
 * days out of stock, average inventory and the cycle service level.
 */
PG_FUNCTION_INFO_V1(replenish_simulate);
Datum
replenish_simulate(PG_FUNCTION_ARGS)
{
	int			n;
	double	   *d,
			   *rop,
			   *S,
				on_hand,
				pack,
				moq;
	int			lead;
	int		   *lt;
	Datum		values[SIM_NCOLS];
	bool		nulls[SIM_NCOLS] = {false};

	SimulateArgs(fcinfo, &n, &d, &rop, &S, &on_hand, &pack, &moq);
	lead = PG_GETARG_INT32(3);
	if (lead < 0 || lead > SIM_MAX_LEAD)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lead time must be between 0 and %d days", SIM_MAX_LEAD)));
	lt = palloc(sizeof(int) * n);
	for (int t = 0; t < n; t++)
		lt[t] = lead;
	SimulateCore(n, d, rop, S, lt, lead, on_hand, pack, moq, values, nulls);
	return SimulateResult(fcinfo, values, nulls);
}

/*
 * replenish_simulate(demand, reorder_point, order_up_to, lead_times int4[], initial_on_hand, pack_size, min_order_qty)
 *
 * The same with one lead time per day: an order placed on day t arrives lead_times[t] days later, so orders can
 * cross. lead_times[t] may be NULL only on days without a review (reorder_point[t] NULL).
 */
PG_FUNCTION_INFO_V1(replenish_simulate_lead_times);
Datum
replenish_simulate_lead_times(PG_FUNCTION_ARGS)
{
	int			n,
				nl,
				maxlead = 0;
	double	   *d,
			   *rop,
			   *S,
				on_hand,
				pack,
				moq;
	ArrayType  *la;
	Datum	   *elems;
	bool	   *lnulls;
	int		   *lt;
	Datum		values[SIM_NCOLS];
	bool		nulls[SIM_NCOLS] = {false};

	SimulateArgs(fcinfo, &n, &d, &rop, &S, &on_hand, &pack, &moq);
	la = PG_GETARG_ARRAYTYPE_P(3);
	if (ARR_NDIM(la) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("lead times must be a one-dimensional array")));
	deconstruct_array(la, INT4OID, 4, true, TYPALIGN_INT, &elems, &lnulls, &nl);
	if (nl != n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lead times must have one element per day of demand"),
						errdetail("Got %d lead times for %d days.", nl, n)));
	lt = palloc(sizeof(int) * n);
	for (int t = 0; t < n; t++)
	{
		if (lnulls[t])
		{
			if (!isnan(rop[t]))
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								errmsg("lead time must not be null on a review day"),
								errdetail("Day %d has a reorder point but no lead time.", t + 1)));
			lt[t] = 0;			/* never used: no order on that day */
			continue;
		}
		lt[t] = DatumGetInt32(elems[t]);
		if (lt[t] < 0 || lt[t] > SIM_MAX_LEAD)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("lead time must be between 0 and %d days", SIM_MAX_LEAD),
							errdetail("Day %d has lead time %d.", t + 1, lt[t])));
		maxlead = Max(maxlead, lt[t]);
	}
	SimulateCore(n, d, rop, S, lt, maxlead, on_hand, pack, moq, values, nulls);
	return SimulateResult(fcinfo, values, nulls);
}
