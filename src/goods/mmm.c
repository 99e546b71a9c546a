/* goods/mmm.c: marketing mix model: adstock + Hill saturation per channel, fitted with NLopt; budget allocation. */
/*
 * Weekly sales y_t = sum_c beta_c * hill(adstock_c,t) + sum_p gamma_p * z_p,t + e_t, with the geometric adstock
 * a_t = x_t + decay * a_{t-1} (a_0 = x_0) and hill(a) = a^S / (a^S + K^S). Given the nonlinear parameters
 * (decay, K, S) of every channel the model is linear in beta and gamma, which are solved exactly by least squares
 * (variable projection); NLopt's BOBYQA searches the nonlinear parameters within bounds from several starts.
 * K is searched relative to the channel's mean adstocked spend (so that its bounds mean the same for any scale)
 * and reported in spend units. ROI intervals come from a residual bootstrap (each replicate refitted from the
 * point estimate).
 */
#include "postgres.h"

#include <math.h>
#include <nlopt.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "common/retail_mid.h"
#include "common/rm_math.h"

PG_FUNCTION_INFO_V1(mmm_fit_core);
PG_FUNCTION_INFO_V1(mmm_allocate);

#define MMM_MAX_CHANNELS 32
#define MMM_MAX_CONTROLS 32
#define MMM_MAX_WEEKS 5000

typedef struct MmmData
{
	int			T;				/* weeks */
	int			C;				/* channels */
	int			P;				/* controls (including the intercept column) */
	const double *x;			/* C x T spend */
	const double *z;			/* P x T controls */
	double	   *y;				/* T sales (replaced by the bootstrap) */
	const double *lb;			/* 3C lower bounds: decay, relative K, slope */
	const double *ub;			/* 3C upper bounds */
	double	   *design;			/* T x (C + P), column-major */
	double	   *coef;			/* C + P */
	double	   *work;			/* T */
	double	   *adstock;		/* C x T */
	double	   *kabs;			/* C absolute half-saturation points */
	int			evals;
} MmmData;

/* Adstock of one channel's spend. */
static void
MmmAdstock(const double *x, int T, double decay, double *a)
{
	double		carry = 0.0;

	for (int t = 0; t < T; t++)
	{
		carry = x[t] + decay * carry;
		a[t] = carry;
	}
}

/* Hill saturation of an adstocked spend. */
static inline double
MmmHill(double a, double k, double s)
{
	if (a <= 0.0)
		return 0.0;
	return 1.0 / (1.0 + pow(k / a, s));
}

/*
 * Least squares of y on the design (T x n, column-major, overwritten) by Householder QR; the coefficients go to
 * coef. Returns the residual sum of squares, or +Inf when the design is (numerically) rank deficient.
 */
static double
MmmLeastSquares(double *A, int T, int n, const double *y, double *coef, double *r)
{
	double		rss = 0.0;
	double		norm0[MMM_MAX_CHANNELS + MMM_MAX_CONTROLS];

	memcpy(r, y, sizeof(double) * T);
	for (int j = 0; j < n; j++)
	{
		double		s = 0.0;

		for (int i = 0; i < T; i++)
			s += A[(size_t) j * T + i] * A[(size_t) j * T + i];
		norm0[j] = sqrt(s);
		if (!(norm0[j] > 0.0) || !isfinite(norm0[j]))
			return INFINITY;
	}
	for (int j = 0; j < n; j++)
	{
		double	   *col = A + (size_t) j * T;
		double		norm = 0.0;

		for (int i = j; i < T; i++)
			norm += col[i] * col[i];
		norm = sqrt(norm);
		/* what is left of the column after the earlier ones is (numerically) nothing: rank deficient */
		if (!(norm > 1e-9 * norm0[j]))
			return INFINITY;
		{
			double		alpha = col[j] > 0 ? -norm : norm;
			double		vnorm2;

			col[j] -= alpha;
			vnorm2 = 0.0;
			for (int i = j; i < T; i++)
				vnorm2 += col[i] * col[i];
			if (vnorm2 <= 0.0)
				return INFINITY;
			/* apply H = I - 2vv'/v'v to the remaining columns and to r */
			for (int k = j + 1; k < n; k++)
			{
				double	   *ck = A + (size_t) k * T;
				double		dot = 0.0;

				for (int i = j; i < T; i++)
					dot += col[i] * ck[i];
				dot = 2.0 * dot / vnorm2;
				for (int i = j; i < T; i++)
					ck[i] -= dot * col[i];
			}
			{
				double		dot = 0.0;

				for (int i = j; i < T; i++)
					dot += col[i] * r[i];
				dot = 2.0 * dot / vnorm2;
				for (int i = j; i < T; i++)
					r[i] -= dot * col[i];
			}
			/* the diagonal of R is alpha; keep it in col[j] after the reflector is no longer needed */
			col[j] = alpha;
		}
	}
	/* back substitution: R is the upper triangle (diagonal in col[j], above it the transformed entries) */
	for (int j = n - 1; j >= 0; j--)
	{
		double		s = r[j];

		for (int k = j + 1; k < n; k++)
			s -= A[(size_t) k * T + j] * coef[k];
		coef[j] = s / A[(size_t) j * T + j];
	}
	for (int i = n; i < T; i++)
		rss += r[i] * r[i];
	return rss;
}

/* Maps the unit-box point u to (decay, K absolute, slope) per channel and fills the design; returns the RSS. */
static double
MmmEvaluate(MmmData *d, const double *u)
{
	int			T = d->T,
				C = d->C,
				P = d->P;

	for (int c = 0; c < C; c++)
	{
		double		decay = d->lb[3 * c] + u[3 * c] * (d->ub[3 * c] - d->lb[3 * c]);
		double		krel = d->lb[3 * c + 1] + u[3 * c + 1] * (d->ub[3 * c + 1] - d->lb[3 * c + 1]);
		double		slope = d->lb[3 * c + 2] + u[3 * c + 2] * (d->ub[3 * c + 2] - d->lb[3 * c + 2]);
		double	   *a = d->adstock + (size_t) c * T;
		double		mean = 0.0;

		MmmAdstock(d->x + (size_t) c * T, T, decay, a);
		for (int t = 0; t < T; t++)
			mean += a[t];
		mean /= T;
		d->kabs[c] = krel * mean;
		for (int t = 0; t < T; t++)
			d->design[(size_t) c * T + t] = MmmHill(a[t], d->kabs[c], slope);
	}
	memcpy(d->design + (size_t) C * T, d->z, sizeof(double) * P * T);
	return MmmLeastSquares(d->design, T, C + P, d->y, d->coef, d->work);
}

/* NLopt objective: the residual sum of squares (a huge finite value for a singular design). */
static double
MmmObjective(unsigned n, const double *u, double *grad, void *data)
{
	MmmData    *d = (MmmData *) data;
	double		rss;

	d->evals++;
	if ((d->evals & 255) == 0)
		CHECK_FOR_INTERRUPTS();
	rss = MmmEvaluate(d, u);
	return isfinite(rss) ? rss : 1e300;
}

/* One BOBYQA run from u (updated in place); returns the objective reached. */
static double
MmmRun(MmmData *d, double *u, int maxeval)
{
	int			n = 3 * d->C;
	double	   *lo = palloc(sizeof(double) * n),
			   *hi = palloc(sizeof(double) * n);
	double		minf = HUGE_VAL;
	nlopt_opt	opt = nlopt_create(NLOPT_LN_BOBYQA, n);

	if (opt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
	for (int i = 0; i < n; i++)
	{
		lo[i] = 0.0;
		hi[i] = 1.0;
	}
	nlopt_set_lower_bounds(opt, lo);
	nlopt_set_upper_bounds(opt, hi);
	nlopt_set_min_objective(opt, MmmObjective, d);
	nlopt_set_xtol_rel(opt, 1e-9);
	nlopt_set_ftol_rel(opt, 1e-12);
	nlopt_set_maxeval(opt, maxeval);
	nlopt_set_initial_step1(opt, 0.15);
	if (nlopt_optimize(opt, u, &minf) < 0)
		minf = MmmObjective(n, u, NULL, d);
	nlopt_destroy(opt);
	pfree(lo);
	pfree(hi);
	return minf;
}

/* Reads a float8 array with no NULLs and no NaN/Inf, of the given number of dimensions (0 = any). */
static double *
MmmArray(ArrayType *arr, const char *what, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	double	   *out;

	if (ARR_ELEMTYPE(arr) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("%s must be a float8 array", what)));
	deconstruct_array(arr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &count);
	out = palloc(sizeof(double) * (count > 0 ? count : 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not contain NULL", what)));
		out[i] = DatumGetFloat8(elems[i]);
		if (!isfinite(out[i]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must be finite", what)));
	}
	*n = count;
	return out;
}

static Datum
MmmFloatArray(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n > 0 ? n : 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
MmmFloatMatrix(const double *v, int rows, int cols)
{
	Datum	   *d = palloc(sizeof(Datum) * (rows * cols > 0 ? rows * cols : 1));
	int			dims[2] = {rows, cols},
				lbs[2] = {1, 1};

	for (int i = 0; i < rows * cols; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_md_array(d, NULL, 2, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * mmm_fit_core(y, spend C x T, controls P x T, lower 3C, upper 3C, starts, bootstrap, seed): the fit. Returns
 * decay, half_saturation, slope, beta (per channel), gamma (per control), fitted (per week), contribution (C x T),
 * control_contribution (P x T), rss, roi_boot (bootstrap x C).
 */
Datum
mmm_fit_core(PG_FUNCTION_ARGS)
{
	ArrayType  *ya = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *xa = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *za = PG_GETARG_ARRAYTYPE_P(2);
	int			starts = PG_GETARG_INT32(5);
	int			boot = PG_GETARG_INT32(6);
	uint64		seed = (uint64) PG_GETARG_INT64(7);
	int			T, nx, nz, nlb, nub, C, P, n;
	double	   *y, *x, *z, *lb, *ub;
	MmmData		d;
	double	   *u, *best, bestf = HUGE_VAL;
	double	   *fitted, *contrib, *ccontrib, *roi_boot, *decay, *kabs, *slope, *beta, *gamma, *resid, *spendsum;
	TupleDesc	tupdesc;
	Datum		values[10];
	bool		nulls[10] = {0};

	y = MmmArray(ya, "sales", &T);
	x = MmmArray(xa, "spend", &nx);
	z = MmmArray(za, "controls", &nz);
	lb = MmmArray(PG_GETARG_ARRAYTYPE_P(3), "lower bounds", &nlb);
	ub = MmmArray(PG_GETARG_ARRAYTYPE_P(4), "upper bounds", &nub);
	if (T < 1 || T > MMM_MAX_WEEKS || nx % T != 0 || nz % T != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("spend and controls must have one value per week"),
						errdetail("%d weeks, %d spend values, %d control values.", T, nx, nz)));
	C = nx / T;
	P = nz / T;
	if (C < 1 || C > MMM_MAX_CHANNELS || P > MMM_MAX_CONTROLS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("between 1 and %d channels and at most %d controls are supported", MMM_MAX_CHANNELS, MMM_MAX_CONTROLS)));
	if (nlb != 3 * C || nub != 3 * C)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("bounds need three values per channel")));
	for (int i = 0; i < 3 * C; i++)
		if (!(lb[i] <= ub[i]) || lb[i] < 0 || ((i % 3) == 0 && ub[i] >= 1) || ((i % 3) != 0 && lb[i] <= 0))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid bounds"),
							errdetail("Decay must lie in [0, 1), half-saturation and slope must be positive, and every lower bound at most its upper bound.")));
	for (int i = 0; i < nx; i++)
		if (x[i] < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("spend must not be negative")));
	n = C + P;
	if (T <= n + 3 * C)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("too few weeks for the model"),
						errdetail("%d weeks for %d parameters.", T, n + 3 * C),
						errhint("Widen the window or use fewer channels or controls.")));
	if (starts < 1 || starts > 1000 || boot < 0 || boot > 10000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("starts must be between 1 and 1000 and bootstrap between 0 and 10000")));

	d.T = T; d.C = C; d.P = P; d.x = x; d.z = z; d.y = y; d.lb = lb; d.ub = ub; d.evals = 0;
	d.design = palloc(sizeof(double) * T * n);
	d.coef = palloc(sizeof(double) * n);
	d.work = palloc(sizeof(double) * T);
	d.adstock = palloc(sizeof(double) * C * T);
	d.kabs = palloc(sizeof(double) * C);
	u = palloc(sizeof(double) * 3 * C);
	best = palloc(sizeof(double) * 3 * C);

	/* multistart: the centre of the box, then deterministic pseudo-random points */
	for (int s = 0; s < starts; s++)
	{
		double		f;

		for (int i = 0; i < 3 * C; i++)
			u[i] = s == 0 ? 0.5 : 0.05 + 0.9 * ((double) (RmSplitMix64(seed + (uint64) s * 1000003 + i) >> 11) / 9007199254740992.0);
		f = MmmRun(&d, u, 3000);
		if (f < bestf)
		{
			bestf = f;
			memcpy(best, u, sizeof(double) * 3 * C);
		}
	}
	/* polish the best point */
	memcpy(u, best, sizeof(double) * 3 * C);
	if (MmmRun(&d, u, 3000) < bestf)
		memcpy(best, u, sizeof(double) * 3 * C);
	bestf = MmmEvaluate(&d, best);
	if (!isfinite(bestf))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the media and control series are collinear"),
						errhint("Drop a channel or control that never varies or duplicates another.")));

	decay = palloc(sizeof(double) * C);
	kabs = palloc(sizeof(double) * C);
	slope = palloc(sizeof(double) * C);
	beta = palloc(sizeof(double) * C);
	gamma = palloc(sizeof(double) * (P > 0 ? P : 1));
	fitted = palloc0(sizeof(double) * T);
	contrib = palloc(sizeof(double) * C * T);
	ccontrib = palloc(sizeof(double) * (P > 0 ? P * T : 1));
	resid = palloc(sizeof(double) * T);
	spendsum = palloc0(sizeof(double) * C);
	for (int c = 0; c < C; c++)
	{
		decay[c] = lb[3 * c] + best[3 * c] * (ub[3 * c] - lb[3 * c]);
		slope[c] = lb[3 * c + 2] + best[3 * c + 2] * (ub[3 * c + 2] - lb[3 * c + 2]);
		kabs[c] = d.kabs[c];
		beta[c] = d.coef[c];
		for (int t = 0; t < T; t++)
		{
			contrib[c * T + t] = beta[c] * MmmHill(d.adstock[c * T + t], kabs[c], slope[c]);
			spendsum[c] += x[c * T + t];
		}
	}
	for (int p = 0; p < P; p++)
	{
		gamma[p] = d.coef[C + p];
		for (int t = 0; t < T; t++)
			ccontrib[p * T + t] = gamma[p] * z[p * T + t];
	}
	for (int t = 0; t < T; t++)
	{
		for (int c = 0; c < C; c++)
			fitted[t] += contrib[c * T + t];
		for (int p = 0; p < P; p++)
			fitted[t] += ccontrib[p * T + t];
		resid[t] = y[t] - fitted[t];
	}

	/* residual bootstrap of the ROI: each replicate refitted from the point estimate */
	roi_boot = palloc(sizeof(double) * (boot > 0 ? boot * C : 1));
	if (boot > 0)
	{
		double	   *ystar = palloc(sizeof(double) * T);

		d.y = ystar;
		for (int b = 0; b < boot; b++)
		{
			for (int t = 0; t < T; t++)
			{
				uint64		r = RmSplitMix64((seed ^ (UINT64_C(0x5851F42D4C957F2D) * (uint64) (b + 1))) + (uint64) t);

				ystar[t] = fitted[t] + resid[r % (uint64) T];
			}
			memcpy(u, best, sizeof(double) * 3 * C);
			MmmRun(&d, u, 1500);
			if (!isfinite(MmmEvaluate(&d, u)))
			{
				for (int c = 0; c < C; c++)
					roi_boot[b * C + c] = NAN;
				continue;
			}
			for (int c = 0; c < C; c++)
			{
				double		sl = lb[3 * c + 2] + u[3 * c + 2] * (ub[3 * c + 2] - lb[3 * c + 2]);
				double		tot = 0.0;

				for (int t = 0; t < T; t++)
					tot += d.coef[c] * MmmHill(d.adstock[c * T + t], d.kabs[c], sl);
				roi_boot[b * C + c] = spendsum[c] > 0 ? tot / spendsum[c] : NAN;
			}
		}
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mmm_fit_core must return a record");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = MmmFloatArray(decay, C);
	values[1] = MmmFloatArray(kabs, C);
	values[2] = MmmFloatArray(slope, C);
	values[3] = MmmFloatArray(beta, C);
	values[4] = MmmFloatArray(gamma, P);
	values[5] = MmmFloatArray(fitted, T);
	values[6] = MmmFloatMatrix(contrib, C, T);
	if (P > 0)
		values[7] = MmmFloatMatrix(ccontrib, P, T);
	else
		nulls[7] = true;
	values[8] = Float8GetDatum(bestf);
	if (boot > 0)
		values[9] = MmmFloatMatrix(roi_boot, boot, C);
	else
		nulls[9] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

typedef struct MmmAlloc
{
	int			C;
	double		total;
	const double *decay, *k, *s, *beta;
	double	   *x;
} MmmAlloc;

/* Spend per channel from the simplex weights v: x_c = total * v_c / sum v. */
static void
MmmAllocSpend(MmmAlloc *a, const double *v)
{
	double		sum = 0.0;

	for (int c = 0; c < a->C; c++)
		sum += v[c];
	for (int c = 0; c < a->C; c++)
		a->x[c] = sum > 0 ? a->total * v[c] / sum : a->total / a->C;
}

/* Steady-state weekly GMV of a split, negated for minimisation. */
static double
MmmAllocObjective(unsigned n, const double *v, double *grad, void *data)
{
	MmmAlloc   *a = (MmmAlloc *) data;
	double		g = 0.0;

	MmmAllocSpend(a, v);
	for (int c = 0; c < a->C; c++)
		g += a->beta[c] * MmmHill(a->x[c] / (1.0 - a->decay[c]), a->k[c], a->s[c]);
	return -g;
}

/*
 * mmm_allocate(total, decay, half_saturation, slope, beta): the weekly split of total across channels that
 * maximises the steady-state response sum_c beta_c * hill(x_c / (1 - decay_c)), by BOBYQA on simplex weights from
 * the equal split and from every single-channel corner.
 */
Datum
mmm_allocate(PG_FUNCTION_ARGS)
{
	double		total = PG_GETARG_FLOAT8(0);
	int			C, n1, n2, n3;
	double	   *decay, *k, *s, *beta, *v, *bestv, bestf = HUGE_VAL, *lo, *hi;
	MmmAlloc	a;

	decay = MmmArray(PG_GETARG_ARRAYTYPE_P(1), "decay", &C);
	k = MmmArray(PG_GETARG_ARRAYTYPE_P(2), "half_saturation", &n1);
	s = MmmArray(PG_GETARG_ARRAYTYPE_P(3), "slope", &n2);
	beta = MmmArray(PG_GETARG_ARRAYTYPE_P(4), "beta", &n3);
	if (!isfinite(total) || total < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("total budget must be a finite non-negative number")));
	if (C < 1 || C > MMM_MAX_CHANNELS || n1 != C || n2 != C || n3 != C)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("one decay, half-saturation, slope and beta per channel are needed")));
	for (int c = 0; c < C; c++)
		if (decay[c] < 0 || decay[c] >= 1 || k[c] <= 0 || s[c] <= 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid response curve for channel %d", c + 1)));
	a.C = C; a.total = total; a.decay = decay; a.k = k; a.s = s; a.beta = beta;
	a.x = palloc(sizeof(double) * C);
	v = palloc(sizeof(double) * C);
	bestv = palloc(sizeof(double) * C);
	lo = palloc(sizeof(double) * C);
	hi = palloc(sizeof(double) * C);
	for (int c = 0; c < C; c++)
	{
		lo[c] = 0.0;
		hi[c] = 1.0;
		bestv[c] = 1.0;
	}
	if (total > 0 && C > 1)
	{
		for (int start = -1; start < C; start++)
		{
			nlopt_opt	opt = nlopt_create(NLOPT_LN_BOBYQA, C);
			double		f = HUGE_VAL;

			if (opt == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create the NLopt optimiser")));
			for (int c = 0; c < C; c++)
				v[c] = start < 0 ? 0.5 : (c == start ? 0.9 : 0.05);
			nlopt_set_lower_bounds(opt, lo);
			nlopt_set_upper_bounds(opt, hi);
			nlopt_set_min_objective(opt, MmmAllocObjective, &a);
			nlopt_set_xtol_rel(opt, 1e-10);
			nlopt_set_maxeval(opt, 20000);
			nlopt_set_initial_step1(opt, 0.1);
			if (nlopt_optimize(opt, v, &f) < 0)
				f = MmmAllocObjective(C, v, NULL, &a);
			nlopt_destroy(opt);
			if (f < bestf)
			{
				bestf = f;
				memcpy(bestv, v, sizeof(double) * C);
			}
			/* the corner itself (all on one channel) */
			if (start >= 0)
			{
				for (int c = 0; c < C; c++)
					v[c] = c == start ? 1.0 : 0.0;
				f = MmmAllocObjective(C, v, NULL, &a);
				if (f < bestf)
				{
					bestf = f;
					memcpy(bestv, v, sizeof(double) * C);
				}
			}
		}
	}
	MmmAllocSpend(&a, bestv);
	PG_RETURN_DATUM(MmmFloatArray(a.x, C));
}
