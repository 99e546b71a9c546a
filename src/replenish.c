/*
 * replenish.c: the two numeric kernels of replenishment that are too slow or too fiddly in SQL:
 *  - the distribution of lead-time demand when the lead time itself varies (a mixture over lead-time days of
 *    normal demand sums), and its service-level quantile;
 *  - the day-by-day simulation of an (s, S) periodic-review policy with lost sales, for the service-level
 *    backtest.
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

#include "retail_mid.h"

#define LTD_MAX_STEPS 10000

/* Standard normal CDF. */
static double
NormCdf(double x)
{
	return 0.5 * erfc(-x / M_SQRT2);
}

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
	ArrayType  *am = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *as = PG_GETARG_ARRAYTYPE_P(1);
	double		L = PG_GETARG_FLOAT8(2);
	double		sdL = PG_GETARG_FLOAT8(3);
	double		p = PG_GETARG_FLOAT8(4);
	int			n,
				ns;
	bool		null_m,
				null_s;
	double	   *m,
			   *s;
	double	   *w,
			   *cm,
			   *cv;
	int			kmax;
	double		mean = 0,
				second = 0,
				lo,
				hi,
				q;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

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
	if (!(p > 0 && p < 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("service level must be strictly between 0 and 1")));

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
			double		a = (k == 0) ? 0.0 : NormCdf((k - 0.5 - L) / sdL);
			double		b = (k == kmax) ? 1.0 : NormCdf((k + 0.5 - L) / sdL);

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

	/* bisection on the mixture CDF between bounds that enclose every component's quantile */
	lo = INFINITY;
	hi = -INFINITY;
	for (int k = 0; k <= kmax; k++)
	{
		if (w[k] <= 0)
			continue;
		lo = Min(lo, cm[k] - 40 * sqrt(cv[k]));
		hi = Max(hi, cm[k] + 40 * sqrt(cv[k]));
	}
	lo -= 1e-9;
	hi += 1e-9;
	for (int it = 0; it < 200 && hi - lo > 1e-10 * Max(1.0, fabs(hi)); it++)
	{
		double		x = 0.5 * (lo + hi);
		double		F = 0;

		for (int k = 0; k <= kmax; k++)
		{
			if (w[k] <= 0)
				continue;
			if (cv[k] > 0)
				F += w[k] * NormCdf((x - cm[k]) / sqrt(cv[k]));
			else if (x >= cm[k])
				F += w[k];
		}
		if (F < p)
			lo = x;
		else
			hi = x;
	}
	/* F(hi) >= p throughout; a point mass (zero variance) inside the final bracket is the exact answer */
	q = hi;
	for (int k = 0; k <= kmax; k++)
		if (w[k] > 0 && cv[k] == 0 && cm[k] >= lo && cm[k] <= hi)
			q = cm[k];
	q = Max(0.0, q);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Float8GetDatum(mean);
	values[1] = Float8GetDatum(sqrt(Max(second - mean * mean, 0.0)));
	values[2] = Float8GetDatum(q);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Order quantity of the (s, S) rule with packs and a minimum order: the same arithmetic as order_quantity(). */
static double
PolicyOrder(double position, double s, double S, double pack, double moq)
{
	double		q;

	if (position > s)
		return 0;
	q = ceil((S - position) / pack - 1e-9) * pack;
	if (q < moq)
		q = ceil(moq / pack - 1e-9) * pack;
	return Max(q, 0.0);
}

/*
 * replenish_simulate(demand, reorder_point, order_up_to, lead_time, initial_on_hand, pack_size, min_order_qty)
 *
 * One SKU x store, day by day over the days of demand[]. A day: (1) orders due that day arrive; (2) on a review
 * day (reorder_point[d] not NULL) the inventory position (on hand + on order) is compared with the reorder point
 * and an order up to order_up_to[d] (whole packs, at least the minimum order) is placed, to arrive lead_time days
 * later (0: before that day's demand); (3) demand is served from stock, what cannot be served is lost (lost sales,
 * no backorders). Returns the totals behind fill rate, days out of stock and average inventory.
 */
PG_FUNCTION_INFO_V1(replenish_simulate);
Datum
replenish_simulate(PG_FUNCTION_ARGS)
{
	int			n,
				nr,
				nS;
	bool		null_d,
				null_r,
				null_S;
	double	   *d,
			   *rop,
			   *S;
	int			lead;
	double		on_hand,
				pack,
				moq;
	double	   *arrive;
	double		on_order = 0,
				demand = 0,
				sold = 0,
				lost = 0,
				sum_on_hand = 0,
				units_ordered = 0;
	int			days_oos = 0,
				days_lost = 0,
				orders = 0;
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11] = {false};

	for (int i = 0; i < 7; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("replenish_simulate arguments must not be null")));
	d = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(0), "demand", &n, &null_d);
	rop = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(1), "reorder points", &nr, &null_r);
	S = ReadFloatArray(PG_GETARG_ARRAYTYPE_P(2), "order-up-to levels", &nS, &null_S);
	lead = PG_GETARG_INT32(3);
	on_hand = PG_GETARG_FLOAT8(4);
	pack = PG_GETARG_FLOAT8(5);
	moq = PG_GETARG_FLOAT8(6);
	if (null_d)
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("demand must not contain nulls"),
						errhint("Days without sales have demand 0.")));
	if (n == 0 || nr != n || nS != n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("demand, reorder points and order-up-to levels must be non-empty arrays of the same length"),
						errdetail("Got %d, %d and %d elements.", n, nr, nS)));
	if (lead < 0 || lead > 3660)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lead time must be between 0 and 3660 days")));
	RetailMidCheckFinite(on_hand, "initial on hand");
	RetailMidCheckFinite(pack, "pack size");
	RetailMidCheckFinite(moq, "minimum order quantity");
	if (on_hand < 0 || moq < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("initial on hand and minimum order quantity must not be negative")));
	if (pack <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pack size must be positive")));
	for (int t = 0; t < n; t++)
	{
		if (d[t] < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("demand must not be negative")));
		if ((bool) isnan(rop[t]) != (bool) isnan(S[t]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("reorder point and order-up-to level must be both null or both set on each day")));
		if (!isnan(rop[t]) && (rop[t] < 0 || S[t] < rop[t]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("order-up-to level must not be below the reorder point, nor the reorder point below 0")));
	}

	arrive = palloc0(sizeof(double) * (n + lead + 1));
	for (int t = 0; t < n; t++)
	{
		double		served;

		on_hand += arrive[t];
		on_order -= arrive[t];
		if (!isnan(rop[t]))
		{
			double		q = PolicyOrder(on_hand + on_order, rop[t], S[t], pack, moq);

			if (q > 0)
			{
				orders++;
				units_ordered += q;
				if (lead == 0)
					on_hand += q;
				else
				{
					arrive[t + lead] += q;
					on_order += q;
				}
			}
		}
		served = Min(on_hand, d[t]);
		on_hand -= served;
		demand += d[t];
		sold += served;
		lost += d[t] - served;
		if (d[t] - served > 0)
			days_lost++;
		if (on_hand <= 0)
			days_oos++;
		sum_on_hand += on_hand;
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
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
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
