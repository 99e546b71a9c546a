/* site/site_calibrate.c: calibration of the Huff model against observed sales (huff_calibrate, huff_fit). */
/*
 * huff_calibrate fits alpha and beta by least squares on store totals; huff_fit by maximum likelihood or
 * least squares, optionally with a free attractiveness multiplier per store, on store totals or zone-level
 * flows.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <nlopt.h>
#include <string.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "site/site_internal.h"

/* Calibration data: pairs sorted by zone, each store mapped to its observation (or -1). */
typedef struct CalibData
{
	int			npairs;
	double	   *log_a;
	double	   *log_d;
	double	   *demand;
	int64	   *zone;
	int		   *obs_index;		/* per pair: index into observed, -1 when the store has no observation */
	int			nobs;
	double	   *observed;
	double	   *predicted;		/* scratch, per observation */
	double	   *util;			/* scratch, per pair */
	double		min_distance;
	double		scale;			/* least-squares scale of the last evaluation */
	double		sse;
	int			evaluations;
} CalibData;

/* Sum of squared errors of the scaled Huff prediction at (alpha, beta); the scale is solved exactly. */
static double
CalibSSE(const double *x, CalibData *cd)
{
	double		alpha = x[0],
				beta = x[1];
	double		sop = 0.0,
				spp = 0.0,
				sse = 0.0;
	int			start = 0;

	cd->evaluations++;
	memset(cd->predicted, 0, sizeof(double) * cd->nobs);
	while (start < cd->npairs)
	{
		int			end = start;
		double		total = 0.0;
		double		top = -INFINITY;

		while (end < cd->npairs && cd->zone[end] == cd->zone[start])
			end++;
		/* shift by the largest exponent: the shares are unchanged and nothing under- or overflows */
		for (int i = start; i < end; i++)
		{
			cd->util[i] = alpha * cd->log_a[i] - beta * cd->log_d[i];
			if (cd->util[i] > top)
				top = cd->util[i];
		}
		for (int i = start; i < end; i++)
		{
			cd->util[i] = exp(cd->util[i] - top);
			total += cd->util[i];
		}
		for (int i = start; i < end; i++)
			if (cd->obs_index[i] >= 0)
				cd->predicted[cd->obs_index[i]] += cd->demand[i] * cd->util[i] / total;
		start = end;
	}
	for (int j = 0; j < cd->nobs; j++)
	{
		sop += cd->observed[j] * cd->predicted[j];
		spp += cd->predicted[j] * cd->predicted[j];
	}
	cd->scale = spp > 0.0 ? sop / spp : 0.0;
	for (int j = 0; j < cd->nobs; j++)
	{
		double		e = cd->observed[j] - cd->scale * cd->predicted[j];

		sse += e * e;
	}
	cd->sse = sse;
	return sse;
}

static double
CalibObjective(unsigned n, const double *x, double *grad, void *data)
{
	return CalibSSE(x, (CalibData *) data);
}

int
KeyOrderCmp(const void *a, const void *b)
{
	const KeyOrder *x = a;
	const KeyOrder *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->i - y->i;
}

static int
StoreKeyCmp(const void *a, const void *b)
{
	int64		x = ((const KeyOrder *) a)->key;
	int64		y = ((const KeyOrder *) b)->key;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * huff_calibrate(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[], demand float8[],
 *                observed_store_id int8[], observed_sales float8[], alpha0, beta0, min_distance)
 * -> (alpha, beta, scale, sse, rmse, r_squared, stores, evaluations)
 * Least squares: observed_j ~ scale * HuffSales_j(alpha, beta), scale solved in closed form, (alpha, beta)
 * by NLopt's BOBYQA within [0, 10] x [0, 10].
 */
PG_FUNCTION_INFO_V1(huff_calibrate);
Datum
huff_calibrate(PG_FUNCTION_ARGS)
{
	int			nz,
				ns,
				na,
				nd,
				ndm,
				nos,
				nov;
	int64	   *zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(0), "zone_id", &nz);
	int64	   *store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(1), "store_id", &ns);
	double	   *attr = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(2), "attractiveness", &na);
	double	   *dist = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(3), "distance", &nd);
	double	   *demand = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(4), "demand", &ndm);
	int64	   *obs_store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(5), "observed_store_id", &nos);
	double	   *observed = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(6), "observed_sales", &nov);
	HuffParams	p;
	CalibData	cd;
	KeyOrder   *order;
	KeyOrder   *sorted_obs;
	double		x[2],
				lb[2] = {0.0, 0.0},
				ub[2] = {HUFF_ALPHA_MAX, HUFF_BETA_MAX},
				minf;
	double		mean = 0.0,
				sst = 0.0;
	nlopt_opt	opt;
	nlopt_result res;
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	p.alpha = PG_GETARG_FLOAT8(7);
	p.beta = PG_GETARG_FLOAT8(8);
	p.min_distance = PG_GETARG_FLOAT8(9);
	p.threshold = 0.0;
	p.cutoff = 0.0;
	HuffCheckParams(&p);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "huff_calibrate must return a composite type");
	if (ns != nz || na != nz || nd != nz || ndm != nz)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("zone_id, store_id, attractiveness, distance and demand arrays must have the same length")));
	if (nos != nov)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("observed_store_id and observed_sales arrays must have the same length")));
	if (nos < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration needs observed sales of at least 3 stores"),
				 errdetail("%d stores have observed sales.", nos)));

	/* observations: unique store ids, finite non-negative sales */
	sorted_obs = palloc(sizeof(KeyOrder) * nos);
	for (int j = 0; j < nos; j++)
	{
		sorted_obs[j].key = obs_store[j];
		sorted_obs[j].i = j;
	}
	qsort(sorted_obs, nos, sizeof(KeyOrder), KeyOrderCmp);
	for (int j = 1; j < nos; j++)
		if (sorted_obs[j].key == sorted_obs[j - 1].key)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("store " INT64_FORMAT " has more than one observed sales figure", sorted_obs[j].key)));
	for (int j = 0; j < nos; j++)
	{
		if (isnan(observed[j]) || isinf(observed[j]) || observed[j] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("observed sales must be non-negative finite numbers"),
					 errdetail("Store " INT64_FORMAT " has %g.", obs_store[j], observed[j])));
		mean += observed[j];
	}
	mean /= nos;
	for (int j = 0; j < nos; j++)
		sst += (observed[j] - mean) * (observed[j] - mean);

	memset(&cd, 0, sizeof(cd));
	cd.npairs = nz;
	cd.nobs = nos;
	cd.observed = observed;
	cd.min_distance = p.min_distance;
	cd.log_a = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.log_d = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.demand = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.zone = palloc(sizeof(int64) * (nz > 0 ? nz : 1));
	cd.obs_index = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	cd.util = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	cd.predicted = palloc(sizeof(double) * nos);
	order = palloc(sizeof(KeyOrder) * (nz > 0 ? nz : 1));
	for (int i = 0; i < nz; i++)
	{
		HuffCheckRow(store[i], attr[i], dist[i], demand[i]);
		order[i].key = zone[i];
		order[i].i = i;
	}
	qsort(order, nz, sizeof(KeyOrder), KeyOrderCmp);
	for (int k = 0; k < nz; k++)
	{
		int			i = order[k].i;
		KeyOrder	key;
		KeyOrder   *hit;
		double		d = dist[i] < p.min_distance ? p.min_distance : dist[i];

		cd.zone[k] = zone[i];
		cd.log_a[k] = log(attr[i]);
		cd.log_d[k] = log(d);
		cd.demand[k] = demand[i];
		key.key = store[i];
		key.i = 0;
		hit = bsearch(&key, sorted_obs, nos, sizeof(KeyOrder), StoreKeyCmp);
		cd.obs_index[k] = hit ? hit->i : -1;
	}

	x[0] = p.alpha;
	x[1] = p.beta;
	opt = nlopt_create(NLOPT_LN_BOBYQA, 2);
	if (opt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
	nlopt_set_lower_bounds(opt, lb);
	nlopt_set_upper_bounds(opt, ub);
	nlopt_set_min_objective(opt, CalibObjective, &cd);
	nlopt_set_xtol_rel(opt, 1e-10);
	nlopt_set_ftol_rel(opt, 1e-14);
	nlopt_set_maxeval(opt, 5000);
	res = nlopt_optimize(opt, x, &minf);
	nlopt_destroy(opt);
	if (res < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Huff calibration failed"),
				 errdetail("NLopt returned code %d.", (int) res)));
	/* re-evaluate at the optimum so scale and sse belong to the returned point */
	CalibSSE(x, &cd);

	values[0] = Float8GetDatum(x[0]);
	values[1] = Float8GetDatum(x[1]);
	values[2] = Float8GetDatum(cd.scale);
	values[3] = Float8GetDatum(cd.sse);
	values[4] = Float8GetDatum(sqrt(cd.sse / nos));
	if (sst > 0.0)
		values[5] = Float8GetDatum(1.0 - cd.sse / sst);
	else
		nulls[5] = true;
	values[6] = Int32GetDatum(nos);
	values[7] = Int32GetDatum(cd.evaluations);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Maximum-likelihood (and least-squares) fit of the Huff model with analytic gradients, optionally with a free
 * attractiveness multiplier per store.
 *
 * Observations are either store totals (observed sales per store) or zone-level flows (customers or sales of
 * zone z at store j). Each observation o has a model value m_o(theta) = sum over its pairs of D_z * P_zj, and
 * the fitted value is scale * m_o.
 *   ml: observations ~ Poisson(scale * m_o); the scale is profiled out (scale = sum y / sum m), which leaves
 *       the multinomial log-likelihood  sum y_o log(m_o / sum m): the fit does not depend on the unit of y.
 *   ls: least squares, scale solved in closed form (as huff_calibrate).
 * Gradient: with P_zj = u_zj / sum_k u_zk and log u_zj = alpha log A_j + gamma_j - beta log d_zj,
 *   d m_o / d theta = sum over its pairs D_z P_zj (g_zj - sum_k P_zk g_zk),  g = (log A, -log d, e_j),
 * and d f / d theta = sum_o w_o d m_o / d theta with w_o = d f / d m_o (for ls by the envelope theorem).
 * A free multiplier per store makes alpha unidentifiable (alpha log A_j + gamma_j is one free number per store),
 * so alpha is then held at alpha0 and one store is the reference (multiplier 1).
 */
#define FIT_GAMMA_BOUND 6.907755278982137	/* ln 1000: multipliers within [1/1000, 1000] */

typedef struct FitData
{
	int			npairs;
	int64	   *zone;			/* per pair, sorted by zone */
	double	   *log_a;
	double	   *log_d;
	double	   *demand;
	int		   *gamma;			/* per pair: index of the store's free multiplier, -1 when none */
	int		   *obs;			/* per pair: observation it contributes to, -1 when none */
	double	   *prob;			/* scratch per pair: P_zj of the last evaluation */
	int			nobs;
	double	   *y;
	double	   *m;				/* scratch per observation: model value */
	double	   *w;				/* scratch per observation: d f / d m */
	int			ngamma;
	bool		ml;
	bool		fit_alpha;		/* false when multipliers are fitted */
	double		alpha_fixed;
	double		scale;
	int			evaluations;
	nlopt_opt	opt;
} FitData;

/* Unpacks x into alpha, beta and the multipliers' gamma (log utility factors). */
static inline void
FitUnpack(const FitData *fd, const double *x, double *alpha, double *beta, const double **gamma)
{
	if (fd->fit_alpha)
	{
		*alpha = x[0];
		*beta = x[1];
		*gamma = NULL;
	}
	else
	{
		*alpha = fd->alpha_fixed;
		*beta = x[0];
		*gamma = x + 1;
	}
}

/* Model values m_o and the probabilities P_zj at x. */
static void
FitPredict(FitData *fd, const double *x)
{
	double		alpha,
				beta;
	const double *gamma;
	int			start = 0;

	FitUnpack(fd, x, &alpha, &beta, &gamma);
	memset(fd->m, 0, sizeof(double) * fd->nobs);
	while (start < fd->npairs)
	{
		int			end = start;
		double		top = -INFINITY,
					total = 0.0;

		while (end < fd->npairs && fd->zone[end] == fd->zone[start])
			end++;
		for (int i = start; i < end; i++)
		{
			double		e = alpha * fd->log_a[i] - beta * fd->log_d[i];

			if (gamma && fd->gamma[i] >= 0)
				e += gamma[fd->gamma[i]];
			fd->prob[i] = e;
			if (e > top)
				top = e;
		}
		for (int i = start; i < end; i++)
		{
			fd->prob[i] = exp(fd->prob[i] - top);
			total += fd->prob[i];
		}
		for (int i = start; i < end; i++)
		{
			fd->prob[i] /= total;
			if (fd->obs[i] >= 0)
				fd->m[fd->obs[i]] += fd->demand[i] * fd->prob[i];
		}
		start = end;
	}
}

/* NLopt objective: negative profiled log-likelihood (ml) or SSE (ls), with its gradient. */
static double
FitObjective(unsigned n, const double *x, double *grad, void *data)
{
	FitData    *fd = (FitData *) data;
	double		f = 0.0;
	double		sum_y = 0.0,
				sum_m = 0.0;
	int			start = 0;

	/* no ereport from inside NLopt: a pending cancel stops the optimiser, and is served after it returns */
	if (InterruptPending && fd->opt != NULL)
		nlopt_force_stop(fd->opt);
	fd->evaluations++;
	FitPredict(fd, x);
	if (fd->ml)
	{
		for (int o = 0; o < fd->nobs; o++)
		{
			sum_y += fd->y[o];
			sum_m += fd->m[o];
		}
		if (!(sum_m > 0.0))
			sum_m = DBL_MIN;
		for (int o = 0; o < fd->nobs; o++)
		{
			double		mo = fd->m[o] > DBL_MIN ? fd->m[o] : DBL_MIN;	/* only under extreme parameters */

			if (fd->y[o] > 0.0)
				f -= fd->y[o] * log(mo);
			fd->w[o] = -fd->y[o] / mo + sum_y / sum_m;
		}
		f += sum_y * log(sum_m);
		fd->scale = sum_y / sum_m;
	}
	else
	{
		double		sym = 0.0,
					smm = 0.0;

		for (int o = 0; o < fd->nobs; o++)
		{
			sym += fd->y[o] * fd->m[o];
			smm += fd->m[o] * fd->m[o];
		}
		fd->scale = smm > 0.0 ? sym / smm : 0.0;
		for (int o = 0; o < fd->nobs; o++)
		{
			double		e = fd->y[o] - fd->scale * fd->m[o];

			f += e * e;
			fd->w[o] = -2.0 * fd->scale * e;
		}
	}
	if (grad == NULL)
		return f;

	memset(grad, 0, sizeof(double) * n);
	while (start < fd->npairs)
	{
		int			end = start;
		double		wz = 0.0,	/* sum_j w_j P_zj */
					wa = 0.0,	/* sum_j w_j P_zj log A_j */
					wl = 0.0,	/* sum_j w_j P_zj log d_zj */
					pa = 0.0,	/* sum_j P_zj log A_j */
					pl = 0.0;	/* sum_j P_zj log d_zj */
		double		demand = fd->demand[start];

		while (end < fd->npairs && fd->zone[end] == fd->zone[start])
			end++;
		for (int i = start; i < end; i++)
		{
			double		p = fd->prob[i];
			double		wp = fd->obs[i] >= 0 ? fd->w[fd->obs[i]] * p : 0.0;

			wz += wp;
			wa += wp * fd->log_a[i];
			wl += wp * fd->log_d[i];
			pa += p * fd->log_a[i];
			pl += p * fd->log_d[i];
		}
		if (fd->fit_alpha)
		{
			grad[0] += demand * (wa - wz * pa);
			grad[1] -= demand * (wl - wz * pl);
		}
		else
		{
			grad[0] -= demand * (wl - wz * pl);
			for (int i = start; i < end; i++)
				if (fd->gamma[i] >= 0)
				{
					double		wi = fd->obs[i] >= 0 ? fd->w[fd->obs[i]] : 0.0;

					grad[1 + fd->gamma[i]] += demand * fd->prob[i] * (wi - wz);
				}
		}
		start = end;
	}
	return f;
}

/* A (zone, store) key and the position it came from; zone 0 stands for store totals. */
typedef struct ZoneStoreKey
{
	int64		zone;
	int64		store;
	int			i;
} ZoneStoreKey;

/* qsort and bsearch comparator of ZoneStoreKey: by zone, then store (the position does not count). */
static int
ZoneStoreKeyCmp(const void *a, const void *b)
{
	const ZoneStoreKey *x = a;
	const ZoneStoreKey *y = b;

	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	if (x->store != y->store)
		return x->store < y->store ? -1 : 1;
	return 0;
}

/* NLopt's result code as the word huff_fit reports in its status column. */
static const char *
FitStatusName(nlopt_result r)
{
	switch (r)
	{
		case NLOPT_SUCCESS:
			return "success";
		case NLOPT_STOPVAL_REACHED:
			return "stopval reached";
		case NLOPT_FTOL_REACHED:
			return "ftol reached";
		case NLOPT_XTOL_REACHED:
			return "xtol reached";
		case NLOPT_MAXEVAL_REACHED:
			return "max evaluations reached";
		case NLOPT_MAXTIME_REACHED:
			return "max time reached";
		case NLOPT_ROUNDOFF_LIMITED:
			return "roundoff limited";
		case NLOPT_FAILURE:
			return "failure";
		default:
			return "error";
	}
}

/* The arguments of huff_fit, unpacked and validated once. */
typedef struct FitArgs
{
	int			nz;				/* pairs */
	int64	   *zone;
	int64	   *store;
	double	   *attr;
	double	   *dist;
	double	   *demand;
	int			nos;			/* observations */
	int64	   *obs_zone;		/* empty (NULL use) when cell_level is false */
	int64	   *obs_store;
	double	   *observed;
	double		sum_y;			/* sum of the observations, positive */
	bool		ml;
	bool		fit_attr;
	bool		cell_level;		/* zone-level flows rather than store totals */
	bool		have_ref;
	int64		ref_store;
	int			max_eval;
	HuffParams	p;
	TupleDesc	desc;
} FitArgs;

/* Goodness of fit at the returned point, in the units huff_fit reports. */
typedef struct FitStats
{
	double		sse,
				sst,
				ll,
				ll0,
				dev,
				dev0,
				ape;
	int			nape;
	bool		ll_finite;
} FitStats;

/*
 * Unpacks and validates huff_fit's arguments in the order the errors have always been raised, so that a call
 * with several faults reports the same one.
 */
static void
FitReadArgs(FunctionCallInfo fcinfo, FitArgs *a)
{
	int			ns,
				na,
				nd,
				ndm,
				noz,
				nov;
	char	   *method;

	memset(a, 0, sizeof(*a));
	HuffRequireNotNull(fcinfo, 0, 9);
	HuffRequireNotNull(fcinfo, 11, 14);
	a->zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(0), "zone_id", &a->nz);
	a->store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(1), "store_id", &ns);
	a->attr = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(2), "attractiveness", &na);
	a->dist = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(3), "distance", &nd);
	a->demand = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(4), "demand", &ndm);
	a->obs_zone = HuffIntArray(PG_GETARG_ARRAYTYPE_P(5), "obs_zone_id", &noz);
	a->obs_store = HuffIntArray(PG_GETARG_ARRAYTYPE_P(6), "obs_store_id", &a->nos);
	a->observed = HuffFloatArray(PG_GETARG_ARRAYTYPE_P(7), "observed", &nov);
	method = text_to_cstring(PG_GETARG_TEXT_PP(8));
	a->fit_attr = PG_GETARG_BOOL(9);
	a->have_ref = !PG_ARGISNULL(10);
	if (a->have_ref)
		a->ref_store = PG_GETARG_INT64(10);
	a->p.alpha = PG_GETARG_FLOAT8(11);
	a->p.beta = PG_GETARG_FLOAT8(12);
	a->p.min_distance = PG_GETARG_FLOAT8(13);
	a->p.threshold = 0.0;
	a->p.cutoff = 0.0;
	a->max_eval = PG_GETARG_INT32(14);
	HuffCheckParams(&a->p);
	if (get_call_result_type(fcinfo, NULL, &a->desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "huff_fit must return a composite type");

	if (strcmp(method, "ml") == 0)
		a->ml = true;
	else if (strcmp(method, "ls") == 0)
		a->ml = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown calibration method \"%s\"", method),
				 errhint("Use ml (maximum likelihood) or ls (least squares).")));
	if (a->max_eval < 1 || a->max_eval > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_evaluations must be between 1 and 1000000"),
				 errdetail("max_evaluations is %d.", a->max_eval)));
	if (ns != a->nz || na != a->nz || nd != a->nz || ndm != a->nz)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("zone_id, store_id, attractiveness, distance and demand arrays must have the same length")));
	if (nov != a->nos)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("obs_store_id and observed arrays must have the same length")));
	a->cell_level = noz > 0;
	if (a->cell_level && noz != a->nos)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("obs_zone_id must be empty (store totals) or as long as obs_store_id (zone-level flows)")));
	if (a->nos < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration needs at least 3 observations"),
				 errdetail("%d observations were given.", a->nos)));
	if (a->fit_attr && !a->cell_level)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per-store attractiveness needs zone-level observations"),
				 errdetail("With store totals, one free multiplier per store and the scale fit every store exactly, whatever alpha and beta are."),
				 errhint("Pass flows per zone and store (site_observed_flow), or fit alpha and beta only.")));
	if (a->fit_attr && !(a->p.alpha > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha0 must be positive when per-store attractiveness is fitted"),
				 errdetail("alpha is held at alpha0 and the multipliers scale attractiveness A to the power alpha.")));
	for (int o = 0; o < a->nos; o++)
	{
		if (isnan(a->observed[o]) || isinf(a->observed[o]) || a->observed[o] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("observed sales must be non-negative finite numbers"),
					 errdetail("Store " INT64_FORMAT " has %g.", a->obs_store[o], a->observed[o])));
		a->sum_y += a->observed[o];
	}
	if (!(a->sum_y > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observed sales are all zero"),
				 errdetail("There is nothing to fit.")));
}

/* The observations sorted by (zone, store), zone 0 for store totals; a repeated key is an error. */
static ZoneStoreKey *
FitObservationKeys(const FitArgs *a)
{
	ZoneStoreKey *okeys = palloc(sizeof(ZoneStoreKey) * a->nos);

	for (int o = 0; o < a->nos; o++)
	{
		okeys[o].zone = a->cell_level ? a->obs_zone[o] : 0;
		okeys[o].store = a->obs_store[o];
		okeys[o].i = o;
	}
	qsort(okeys, a->nos, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
	for (int o = 1; o < a->nos; o++)
		if (ZoneStoreKeyCmp(&okeys[o], &okeys[o - 1]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 a->cell_level ? errmsg("zone " INT64_FORMAT " and store " INT64_FORMAT " have more than one observation",
											okeys[o].zone, okeys[o].store)
					 : errmsg("store " INT64_FORMAT " has more than one observed sales figure", okeys[o].store)));
	return okeys;
}

/*
 * The distinct observed stores, sorted (they carry the free multipliers), into *nstores; with per-store
 * attractiveness also settles the reference store (default: the lowest id), whose multiplier stays 1.
 */
static int64 *
FitObservedStores(FitArgs *a, int *nstores)
{
	int64	   *sorted = palloc(sizeof(int64) * a->nos);
	int			n = 0;

	for (int o = 0; o < a->nos; o++)
		sorted[o] = a->obs_store[o];
	qsort(sorted, a->nos, sizeof(int64), Int64Cmp);
	for (int o = 0; o < a->nos; o++)
		if (n == 0 || sorted[o] != sorted[n - 1])
			sorted[n++] = sorted[o];
	if (a->fit_attr)
	{
		if (!a->have_ref)
			a->ref_store = sorted[0];
		else if (!bsearch(&a->ref_store, sorted, n, sizeof(int64), Int64Cmp))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reference store " INT64_FORMAT " has no observation", a->ref_store),
					 errhint("The reference store must be one of the observed stores.")));
		if (n < 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per-store attractiveness needs observations of at least 2 stores")));
	}
	*nstores = n;
	return sorted;
}

/*
 * Fills fd with the pairs sorted by (zone, store), each tied to its observation and multiplier, after
 * checking every row; a positive observation no pair can produce is an error under maximum likelihood.
 */
static void
FitLoadPairs(FitData *fd, const FitArgs *a, const ZoneStoreKey *okeys, const int64 *gamma_store)
{
	int			nz = a->nz;
	int		   *pairs_per_obs = palloc0(sizeof(int) * a->nos);
	ZoneStoreKey *order = palloc(sizeof(ZoneStoreKey) * (nz > 0 ? nz : 1));

	fd->zone = palloc(sizeof(int64) * (nz > 0 ? nz : 1));
	fd->log_a = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd->log_d = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd->demand = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	fd->gamma = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	fd->obs = palloc(sizeof(int) * (nz > 0 ? nz : 1));
	fd->prob = palloc(sizeof(double) * (nz > 0 ? nz : 1));
	for (int i = 0; i < nz; i++)
	{
		HuffCheckRow(a->store[i], a->attr[i], a->dist[i], a->demand[i]);
		order[i].zone = a->zone[i];
		order[i].store = a->store[i];
		order[i].i = i;
	}
	qsort(order, nz, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
	for (int k = 0; k < nz; k++)
	{
		int			i = order[k].i;
		ZoneStoreKey key;
		ZoneStoreKey *hit;
		int64	   *g;
		double		d = a->dist[i] < a->p.min_distance ? a->p.min_distance : a->dist[i];

		if (k > 0 && order[k].zone == order[k - 1].zone && order[k].store == order[k - 1].store)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("site " INT64_FORMAT " appears more than once in zone " INT64_FORMAT, a->store[i], a->zone[i])));
		if (k > 0 && order[k].zone == order[k - 1].zone && a->demand[i] != fd->demand[k - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("demand differs between rows of zone " INT64_FORMAT, a->zone[i])));
		fd->zone[k] = a->zone[i];
		fd->log_a[k] = log(a->attr[i]);
		fd->log_d[k] = log(d);
		fd->demand[k] = a->demand[i];
		key.zone = a->cell_level ? a->zone[i] : 0;
		key.store = a->store[i];
		key.i = 0;
		hit = bsearch(&key, okeys, a->nos, sizeof(ZoneStoreKey), ZoneStoreKeyCmp);
		fd->obs[k] = hit ? hit->i : -1;
		if (hit)
			pairs_per_obs[hit->i]++;
		g = fd->ngamma > 0 ? bsearch(&a->store[i], gamma_store, fd->ngamma, sizeof(int64), Int64Cmp) : NULL;
		fd->gamma[k] = g ? (int) (g - gamma_store) : -1;
	}
	/* a positive observation the model cannot produce makes the likelihood zero whatever the parameters */
	for (int o = 0; o < a->nos; o++)
		if (a->ml && pairs_per_obs[o] == 0 && a->observed[o] > 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 a->cell_level ? errmsg("zone " INT64_FORMAT " has observed sales at store " INT64_FORMAT " but is not within its reach",
											a->obs_zone[o], a->obs_store[o])
					 : errmsg("store " INT64_FORMAT " has observed sales but no zone within reach", a->obs_store[o]),
					 errhint("Raise the cut-off, or leave the observation out.")));
}

/*
 * Minimises the objective over (alpha, beta), or over beta and the log multipliers, from the start values
 * and within the bounds; x (nparams long) receives the optimum. Returns NLopt's status.
 */
static nlopt_result
FitOptimise(FitData *fd, const FitArgs *a, int nparams, double *x)
{
	double	   *lb = palloc(sizeof(double) * nparams);
	double	   *ub = palloc(sizeof(double) * nparams);
	double		minf;
	nlopt_opt	opt;
	nlopt_result res;

	if (fd->fit_alpha)
	{
		x[0] = a->p.alpha;
		x[1] = a->p.beta;
		lb[0] = 0.0;
		ub[0] = HUFF_ALPHA_MAX;
		lb[1] = 0.0;
		ub[1] = HUFF_BETA_MAX;
	}
	else
	{
		x[0] = a->p.beta;
		lb[0] = 0.0;
		ub[0] = HUFF_BETA_MAX;
		for (int k = 0; k < fd->ngamma; k++)
		{
			x[1 + k] = 0.0;
			lb[1 + k] = -FIT_GAMMA_BOUND * a->p.alpha;
			ub[1 + k] = FIT_GAMMA_BOUND * a->p.alpha;
		}
	}
	opt = nlopt_create(NLOPT_LD_LBFGS, nparams);
	if (opt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
	nlopt_set_lower_bounds(opt, lb);
	nlopt_set_upper_bounds(opt, ub);
	nlopt_set_min_objective(opt, FitObjective, fd);
	nlopt_set_ftol_rel(opt, 1e-13);
	nlopt_set_xtol_rel(opt, 1e-10);
	nlopt_set_maxeval(opt, a->max_eval);
	fd->opt = opt;
	res = nlopt_optimize(opt, x, &minf);
	nlopt_destroy(opt);
	fd->opt = NULL;
	CHECK_FOR_INTERRUPTS();		/* a cancel only stopped the optimiser (see FitObjective) */
	if (res == NLOPT_INVALID_ARGS || res == NLOPT_OUT_OF_MEMORY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Huff calibration failed"),
				 errdetail("NLopt returned code %d.", (int) res)));
	return res;
}

/*
 * Goodness of fit of the scaled predictions fd->scale * fd->m against the observations: squared errors,
 * Poisson log likelihood and deviance, each also for the constant model (the mean), and the mean absolute
 * percentage error over the positive observations.
 */
static void
FitGoodness(const FitData *fd, const FitArgs *a, FitStats *st)
{
	double		mean_y = a->sum_y / a->nos;

	memset(st, 0, sizeof(*st));
	st->ll_finite = true;
	for (int o = 0; o < a->nos; o++)
	{
		double		yo = a->observed[o];
		double		mu = fd->scale * fd->m[o];
		double		e = yo - mu;

		st->sse += e * e;
		st->sst += (yo - mean_y) * (yo - mean_y);
		if (yo > 0.0)
		{
			st->ape += fabs(e) / yo;
			st->nape++;
			if (mu > 0.0)
			{
				st->ll += yo * log(mu);
				st->dev += 2.0 * (yo * log(yo / mu) - e);
			}
			else
				st->ll_finite = false;
			st->ll0 += yo * log(mean_y);
			st->dev0 += 2.0 * (yo * log(yo / mean_y) - (yo - mean_y));
		}
		else
		{
			st->dev += 2.0 * mu;
			st->dev0 += 2.0 * mean_y;
		}
		st->ll -= mu + lgamma(yo + 1.0);
		st->ll0 -= mean_y + lgamma(yo + 1.0);
	}
}

/*
 * huff_fit(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[], demand float8[],
 *          obs_zone_id int8[], obs_store_id int8[], observed float8[], method text, fit_attractiveness bool,
 *          reference_store int8, alpha0, beta0, min_distance, max_evaluations)
 * obs_zone_id empty: store totals; otherwise zone-level flows, one per (zone, store).
 */
PG_FUNCTION_INFO_V1(huff_fit);
Datum
huff_fit(PG_FUNCTION_ARGS)
{
	FitArgs		a;
	FitData		fd;
	FitStats	st;
	ZoneStoreKey *okeys;
	int64	   *obs_stores_sorted;
	int			nobs_stores = 0;
	int64	   *gamma_store;
	int			nparams;
	double	   *x;
	nlopt_result res;
	Datum		values[17];
	bool		nulls[17];

	FitReadArgs(fcinfo, &a);
	okeys = FitObservationKeys(&a);
	obs_stores_sorted = FitObservedStores(&a, &nobs_stores);

	memset(&fd, 0, sizeof(fd));
	fd.npairs = a.nz;
	fd.nobs = a.nos;
	fd.ml = a.ml;
	fd.fit_alpha = !a.fit_attr;
	fd.alpha_fixed = a.p.alpha;
	fd.y = a.observed;
	fd.m = palloc0(sizeof(double) * a.nos);
	fd.w = palloc0(sizeof(double) * a.nos);
	gamma_store = palloc(sizeof(int64) * nobs_stores);
	fd.ngamma = 0;
	if (a.fit_attr)
		for (int k = 0; k < nobs_stores; k++)
			if (obs_stores_sorted[k] != a.ref_store)
				gamma_store[fd.ngamma++] = obs_stores_sorted[k];
	FitLoadPairs(&fd, &a, okeys, gamma_store);

	nparams = fd.fit_alpha ? 2 : 1 + fd.ngamma;
	x = palloc(sizeof(double) * nparams);
	res = FitOptimise(&fd, &a, nparams, x);

	/* goodness of fit at the returned point (not counted as an evaluation of the optimiser) */
	(void) FitObjective(nparams, x, NULL, &fd);
	fd.evaluations--;
	FitGoodness(&fd, &a, &st);

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(a.ml ? "ml" : "ls");
	values[1] = Float8GetDatum(fd.fit_alpha ? x[0] : a.p.alpha);
	values[2] = Float8GetDatum(fd.fit_alpha ? x[1] : x[0]);
	values[3] = Float8GetDatum(fd.scale);
	values[4] = Float8GetDatum(st.ll);
	nulls[4] = !st.ll_finite;
	values[5] = Float8GetDatum(st.ll0);
	values[6] = Float8GetDatum(1.0 - st.dev / st.dev0);
	nulls[6] = !st.ll_finite || !(st.dev0 > 0.0);
	values[7] = Float8GetDatum(1.0 - st.sse / st.sst);
	nulls[7] = !(st.sst > 0.0);
	values[8] = Float8GetDatum(sqrt(st.sse / a.nos));
	values[9] = Float8GetDatum(100.0 * st.ape / (st.nape > 0 ? st.nape : 1));
	nulls[9] = st.nape == 0;
	values[10] = Int32GetDatum(a.nos);
	values[11] = Int32GetDatum(nparams + 1);	/* and the scale */
	values[12] = Int32GetDatum(fd.evaluations);
	values[13] = BoolGetDatum(res == NLOPT_SUCCESS || res == NLOPT_FTOL_REACHED || res == NLOPT_XTOL_REACHED ||
							  res == NLOPT_STOPVAL_REACHED);
	values[14] = CStringGetTextDatum(FitStatusName(res));
	if (a.fit_attr)
	{
		Datum	   *ids = palloc(sizeof(Datum) * nobs_stores);
		Datum	   *factors = palloc(sizeof(Datum) * nobs_stores);

		for (int k = 0; k < nobs_stores; k++)
		{
			int64	   *g = bsearch(&obs_stores_sorted[k], gamma_store, fd.ngamma, sizeof(int64), Int64Cmp);

			ids[k] = Int64GetDatum(obs_stores_sorted[k]);
			factors[k] = Float8GetDatum(g ? exp(x[1 + (g - gamma_store)] / a.p.alpha) : 1.0);
		}
		values[15] = PointerGetDatum(construct_array(ids, nobs_stores, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[16] = PointerGetDatum(construct_array(factors, nobs_stores, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	else
	{
		nulls[15] = true;
		nulls[16] = true;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(a.desc), values, nulls)));
}
