/* demand/ets.c: the ETS state-space models of Hyndman et al. (2008), fitted as R's forecast::ets does. */
/*
 * The same recursions (etscalc), the same likelihood (n log SSE, plus 2 sum log|yhat| for multiplicative
 * errors), the same initial states (classical decomposition or a Fourier regression, then a regression on the
 * first max(10, 2m) seasonally adjusted points), the same parameter start values, usual bounds and
 * admissibility test (characteristic roots inside the unit circle), optimised with the Nelder-Mead variant of
 * R's optim() that ets() calls, under a hard limit on objective evaluations. Written from the published model
 * equations and algorithms and R's documented behaviour.
 */
#include "postgres.h"

#include <math.h>

#include "common/rm_math.h"
#include "demand/forecast.h"

#define ETS_TOL 1.0e-10
#define ETS_HUGEN 1.0e10
#define ETS_NA (-99999.0)

static const double lowerb[4] = {1e-4, 1e-4, 1e-4, 0.8};
static const double upperb[4] = {0.9999, 0.9999, 0.9999, 0.98};

/*
 * h-step point forecasts from a state: l + (phi + ... + phi^h) b for the damped trend, the textbook formula and
 * what forecast.ets returns (its class1/class2 state-space recursion). R's C forecast() adds phi^i where
 * phi^(i+1) belongs, so that its h >= 2 damped forecasts (used by the simulated paths only) differ.
 */
static void
ets_forecast_raw(double l, double b, const double *s, int m, int trend, int season, double phi, double *f, int h)
{
	double		phistar = phi;

	for (int i = 0; i < h; i++)
	{
		int			j;

		if (trend == ETS_NONE)
			f[i] = l;
		else if (trend == ETS_ADD)
			f[i] = l + phistar * b;
		else if (b < 0)
			f[i] = ETS_NA;
		else
			f[i] = l * pow(b, phistar);
		j = m - 1 - i;
		while (j < 0)
			j += m;
		if (season == ETS_ADD)
			f[i] += s[j];
		else if (season == ETS_MULT)
			f[i] *= s[j];
		if (i < h - 1)
		{
			if (fabs(phi - 1.0) < ETS_TOL)
				phistar += 1.0;
			else
				phistar += pow(phi, (double) (i + 2));
		}
	}
}

/* State update after observing y (update() in R's etscalc.c); s is rotated so s[m-1] is the oldest. */
static void
ets_update(double *l, double *b, double *s, int m, int trend, int season,
		   double alpha, double beta, double gamma, double phi, double y)
{
	double		oldl = *l, oldb = *b, q, p, phib = 0;

	if (trend == ETS_NONE)
		q = oldl;
	else if (trend == ETS_ADD)
	{
		phib = phi * oldb;
		q = oldl + phib;
	}
	else if (fabs(phi - 1.0) < ETS_TOL)
	{
		phib = oldb;
		q = oldl * oldb;
	}
	else
	{
		phib = pow(oldb, phi);
		q = oldl * phib;
	}
	if (season == ETS_NONE)
		p = y;
	else if (season == ETS_ADD)
		p = y - s[m - 1];
	else
		p = fabs(s[m - 1]) < ETS_TOL ? ETS_HUGEN : y / s[m - 1];
	*l = q + alpha * (p - q);

	if (trend > ETS_NONE)
	{
		double		r;

		if (trend == ETS_ADD)
			r = *l - oldl;
		else
			r = fabs(oldl) < ETS_TOL ? ETS_HUGEN : *l / oldl;
		*b = phib + (beta / alpha) * (r - phib);
	}

	if (season > ETS_NONE)
	{
		double		t, olds = s[m - 1];

		if (season == ETS_ADD)
			t = y - q;
		else
			t = fabs(q) < ETS_TOL ? ETS_HUGEN : y / q;
		memmove(s + 1, s, sizeof(double) * (m - 1));
		s[0] = olds + gamma * (t - olds);
	}
}

/*
 * Runs the model over y from state x (l, b, s0..s(m-1)), returning the etscalc likelihood (n log SSE, plus
 * 2 sum log|f| for multiplicative errors) or ETS_NA; leaves the final state in x and, when asked, the one-step
 * fitted values and the mean squared error.
 *
 * This is the optimiser's inner loop (about 95% of a fit), so it is compiled once per model class: the body
 * is always inlined into ets_calc's switch with constant error/trend/season, which removes the per-period
 * branches, and log|f| is summed as the log of a running product (renormalised by frexp when it leaves
 * [1e-200, 1e200]; factors outside [1e-100, 1e100], zero included, take their log directly), so a fit of a
 * multiplicative-error model computes one log per series instead of one per period.
 */
static inline __attribute__((always_inline)) double
ets_calc_body(const double *y, int n, double *x, int m, const int error, const int trend, const int season,
			  double alpha, double beta, double gamma, double phi, double *fitted, double *mse, double *sse_e)
{
	double		l = x[0], b = 0, ring[ETS_MAX_M];
	double		lik = 0, lik2 = 0, sse = 0, prod = 1;
	int			k = 1, head = 0, prod_exp = 0;

	/*
	 * The seasonal states live in a ring: s[j] = ring[(head + j) % m], s[m-1] being the state of a year ago;
	 * each update overwrites that oldest slot with the new state, which becomes s[0]. Same arithmetic as
	 * ets_forecast_raw/ets_update (trends N and A only), without shifting the states every period.
	 */
	if (trend > ETS_NONE)
		b = x[k++];
	if (season > ETS_NONE)
		memcpy(ring, x + k, sizeof(double) * m);
	for (int i = 0; i < n; i++)
	{
		int			old = head == 0 ? m - 1 : head - 1;
		double		sold = season > ETS_NONE ? ring[old] : 0;
		double		phib = trend == ETS_ADD ? phi * b : 0;
		double		q = l + phib, f, e, p, d, lnew;

		f = season == ETS_ADD ? q + sold : season == ETS_MULT ? q * sold : q;
		if (fitted)
			fitted[i] = f;
		e = y[i] - f;
		sse += e * e;
		if (error == ETS_MULT)
		{
			double		af = fabs(f);

			e /= f;
			if (af >= 1e-100 && af <= 1e100)
			{
				prod *= af;
				if (prod > 1e200 || prod < 1e-200)
				{
					int			ex;

					prod = frexp(prod, &ex);
					prod_exp += ex;
				}
			}
			else
				lik2 += log(af);
		}
		lik += e * e;

		if (season == ETS_NONE)
			p = y[i];
		else if (season == ETS_ADD)
			p = y[i] - sold;
		else
			p = fabs(sold) < ETS_TOL ? ETS_HUGEN : y[i] / sold;
		/*
		 * R's update() computes b = phib + (beta / alpha) ((lnew - l) - phib); since lnew - l - phib =
		 * alpha (p - q) that is phib + beta (p - q), which leaves the level and trend recursions each one
		 * multiply-add from the shared error instead of chaining the trend through the new level.
		 */
		d = p - q;
		lnew = q + alpha * d;
		if (trend == ETS_ADD)
			b = phib + beta * d;
		if (season > ETS_NONE)
		{
			double		t;

			if (season == ETS_ADD)
				t = y[i] - q;
			else
				t = fabs(q) < ETS_TOL ? ETS_HUGEN : y[i] / q;
			ring[old] = sold + gamma * (t - sold);
			head = old;
		}
		l = lnew;
	}
	if (sse_e)
		*sse_e = lik;
	lik = n * log(lik);
	if (error == ETS_MULT)
		lik += 2 * (lik2 + log(prod) + prod_exp * M_LN2);
	if (mse)
		*mse = sse / n;
	x[0] = l;
	k = 1;
	if (trend > ETS_NONE)
		x[k++] = b;
	if (season > ETS_NONE)
		for (int j = 0; j < m; j++)
			x[k + j] = ring[(head + j) % m];
	return lik;
}

#define ETS_CALC_CASE(E, T, S) \
	case (E) * 9 + (T) * 3 + (S): \
		return ets_calc_body(y, n, x, m, E, T, S, alpha, beta, gamma, phi, fitted, mse, sse_e)

static double
ets_calc(const double *y, int n, double *x, int m, int error, int trend, int season,
		 double alpha, double beta, double gamma, double phi, double *fitted, double *mse, double *sse_e)
{
	Assert(error != ETS_NONE && trend != ETS_MULT);
	switch (error * 9 + trend * 3 + season)
	{
			ETS_CALC_CASE(ETS_ADD, ETS_NONE, ETS_NONE);
			ETS_CALC_CASE(ETS_ADD, ETS_NONE, ETS_ADD);
			ETS_CALC_CASE(ETS_ADD, ETS_NONE, ETS_MULT);
			ETS_CALC_CASE(ETS_ADD, ETS_ADD, ETS_NONE);
			ETS_CALC_CASE(ETS_ADD, ETS_ADD, ETS_ADD);
			ETS_CALC_CASE(ETS_ADD, ETS_ADD, ETS_MULT);
			ETS_CALC_CASE(ETS_MULT, ETS_NONE, ETS_NONE);
			ETS_CALC_CASE(ETS_MULT, ETS_NONE, ETS_ADD);
			ETS_CALC_CASE(ETS_MULT, ETS_NONE, ETS_MULT);
			ETS_CALC_CASE(ETS_MULT, ETS_ADD, ETS_NONE);
			ETS_CALC_CASE(ETS_MULT, ETS_ADD, ETS_ADD);
			ETS_CALC_CASE(ETS_MULT, ETS_ADD, ETS_MULT);
	}
	elog(ERROR, "unexpected ETS model class %d/%d/%d", error, trend, season);
	return ETS_NA;
}

/*
 * Whether every root of z^d + c[1] z^(d-1) + ... + c[d] lies in the closed unit circle (up to 1e-10), by the
 * Schur-Cohn step-down recursion: the roots are inside iff every reflection coefficient has modulus below 1.
 * O(d^2) without iterations, where R finds the roots with polyroot() and checks their largest modulus.
 */
static bool
roots_in_unit_circle(const double *c, int d)
{
	double		a[ETS_MAX_M + 3], b[ETS_MAX_M + 3];

	memcpy(a, c, sizeof(double) * (d + 1));
	for (int k = d; k >= 1; k--)
	{
		double		r = a[k], den;

		if (fabs(r) > 1 + 1e-10)
			return false;
		den = 1 - r * r;
		if (den < 1e-12)
			return true;		/* a root on the unit circle: admissible within R's tolerance */
		for (int i = 1; i < k; i++)
			b[i] = (a[i] - r * a[k - i]) / den;
		for (int i = 1; i < k; i++)
			a[i] = b[i];
	}
	return true;
}

/* The admissible region of forecast::ets (admissible() in etsTargetFunction.cpp). */
static bool
ets_admissible(double alpha, double beta, double gamma, double phi, int m, bool has_beta, bool has_gamma)
{
	if (phi < 0 || phi > 1 + 1e-8)
		return false;
	if (!has_gamma)
	{
		if (alpha < 1 - 1 / phi || alpha > 1 + 1 / phi)
			return false;
		if (has_beta && (beta < alpha * (phi - 1) || beta > (1 + phi) * (2 - alpha)))
			return false;
	}
	else if (m > 1)
	{
		double		d = 1 - 1 / phi - alpha;
		double		c[ETS_MAX_M + 2];
		int			deg = 0;

		if (!has_beta)
			beta = 0;
		if (gamma < (d > 0 ? d : 0) || gamma > 1 + 1 / phi - alpha)
			return false;
		if (alpha < 1 - 1 / phi - gamma * (1 - m + phi + phi * m) / (2 * phi * m))
			return false;
		if (beta < -(1 - phi) * (gamma / m + alpha))
			return false;
		c[deg++] = 1;
		c[deg++] = alpha + beta - phi;
		for (int i = 0; i < m - 2; i++)
			c[deg++] = alpha + beta - alpha * phi;
		c[deg++] = alpha + beta - alpha * phi + gamma - 1;
		c[deg++] = phi * (1 - alpha - gamma);
		if (!roots_in_unit_circle(c, deg - 1))
			return false;
	}
	return true;
}

typedef struct EtsProblem
{
	const double *y;
	int			n, m, error, trend, season;
	bool		damped;
	double	   *x;				/* scratch state */
	int			evals;
	bool		crit_mse;		/* opt.crit = "mse" (ses/holt/thetaf) instead of the likelihood */
} EtsProblem;

/* Unpacks the optimiser's vector: alpha, [beta], [gamma], [phi], l0, [b0], s0..s(m-2). */
static int
ets_unpack(const EtsProblem *p, const double *v, double *alpha, double *beta, double *gamma, double *phi, double *x)
{
	int			k = 0, ns = 1 + (p->trend > ETS_NONE), sum_from;
	double		sum = 0;

	*alpha = v[k++];
	*beta = p->trend > ETS_NONE ? v[k++] : 0;
	*gamma = p->season > ETS_NONE ? v[k++] : 0;
	*phi = p->damped ? v[k++] : 1;
	for (int i = 0; i < ns; i++)
		x[i] = v[k++];
	if (p->season > ETS_NONE)
	{
		sum_from = ns;
		for (int i = 0; i < p->m - 1; i++)
		{
			x[ns + i] = v[k++];
			sum += x[ns + i];
		}
		/* the last seasonal state makes the indices sum to 0 (additive) or m (multiplicative) */
		x[ns + p->m - 1] = (p->season == ETS_MULT ? p->m : 0) - sum;
		(void) sum_from;
	}
	return k;
}

/* The objective of etsTargetFunction.cpp with bounds = "both": +Inf outside the usual and admissible region. */
static double
ets_objective(unsigned nv, const double *v, double *grad, void *data)
{
	EtsProblem *p = (EtsProblem *) data;
	double		alpha, beta, gamma, phi, lik;
	int			ns = 1 + (p->trend > ETS_NONE);

	p->evals++;
	ets_unpack(p, v, &alpha, &beta, &gamma, &phi, p->x);
	if (alpha < lowerb[0] || alpha > upperb[0])
		return HUGE_VAL;
	if (p->trend > ETS_NONE && (beta < lowerb[1] || beta > alpha || beta > upperb[1]))
		return HUGE_VAL;
	if (p->damped && (phi < lowerb[3] || phi > upperb[3]))
		return HUGE_VAL;
	if (p->season > ETS_NONE && (gamma < lowerb[2] || gamma > 1 - alpha || gamma > upperb[2]))
		return HUGE_VAL;
	if (!ets_admissible(alpha, beta, gamma, phi, p->m, p->trend > ETS_NONE, p->season > ETS_NONE))
		return HUGE_VAL;
	if (p->season == ETS_MULT)
		for (int i = ns; i < ns + p->m; i++)
			if (p->x[i] < 0)
				return HUGE_VAL;
	if (p->crit_mse)
	{
		double		mse = HUGE_VAL;

		lik = ets_calc(p->y, p->n, p->x, p->m, p->error, p->trend, p->season, alpha, beta, gamma, phi,
					   NULL, &mse, NULL);
		if (isnan(lik) || fabs(lik - ETS_NA) < 1e-7 || isnan(mse))
			return HUGE_VAL;
		return mse;
	}
	lik = ets_calc(p->y, p->n, p->x, p->m, p->error, p->trend, p->season, alpha, beta, gamma, phi,
				   NULL, NULL, NULL);
	if (lik < -1e10)
		lik = -1e10;			/* avoid perfect fits, as R does */
	if (isnan(lik) || fabs(lik - ETS_NA) < 1e-7)
		return HUGE_VAL;
	return lik;
}

/* Least squares of y on the columns of X (n x k, k <= 4) by the normal equations; false if singular. */
static bool
ols(const double *X, const double *y, int n, int k, double *coef)
{
	double		A[4][5];

	memset(A, 0, sizeof(A));
	for (int i = 0; i < n; i++)
		for (int a = 0; a < k; a++)
		{
			for (int b = 0; b < k; b++)
				A[a][b] += X[i * k + a] * X[i * k + b];
			A[a][k] += X[i * k + a] * y[i];
		}
	for (int c = 0; c < k; c++)
	{
		int			piv = c;

		for (int r = c + 1; r < k; r++)
			if (fabs(A[r][c]) > fabs(A[piv][c]))
				piv = r;
		if (fabs(A[piv][c]) < 1e-12)
			return false;
		for (int j = 0; j <= k; j++)
		{
			double		t = A[c][j];

			A[c][j] = A[piv][j];
			A[piv][j] = t;
		}
		for (int r = 0; r < k; r++)
			if (r != c)
			{
				double		f = A[r][c] / A[c][c];

				for (int j = c; j <= k; j++)
					A[r][j] -= f * A[c][j];
			}
	}
	for (int c = 0; c < k; c++)
		coef[c] = A[c][k] / A[c][c];
	return true;
}

/* Initial states as initstate() in ets.R; x receives l0, [b0], s0..s(m-2). Returns the number of states. */
static int
ets_initstate(const double *y, int n, int m, int trend, int season, double *x)
{
	double	   *ysa = palloc(sizeof(double) * n);
	double	   *seasonal = NULL;
	int			k = 0, maxn;

	if (season != ETS_NONE)
	{
		seasonal = palloc(sizeof(double) * n);
		if (n < 3 * m)
		{
			/* tslm(y ~ trend + fourier(y, 1)): the sine term vanishes when m = 2 */
			int			kk = m > 2 ? 4 : 3;
			double	   *X = palloc(sizeof(double) * n * kk), coef[4] = {0, 0, 0, 0};

			for (int i = 0; i < n; i++)
			{
				double		t = i + 1;

				X[i * kk] = 1;
				X[i * kk + 1] = t;
				if (m > 2)
				{
					X[i * kk + 2] = sin(2 * M_PI * t / m);
					X[i * kk + 3] = cos(2 * M_PI * t / m);
				}
				else
					X[i * kk + 2] = cos(2 * M_PI * t / m);
			}
			ols(X, y, n, kk, coef);
			for (int i = 0; i < n; i++)
			{
				double		tr = coef[0] + coef[1] * (i + 1);

				seasonal[i] = season == ETS_ADD ? y[i] - tr : y[i] / tr;
			}
			pfree(X);
		}
		else
		{
			/* decompose(): centred moving average, seasonal means of the detrended series, normalised */
			double		fig[ETS_MAX_M], cnt[ETS_MAX_M], mean = 0;
			int			half = m / 2;

			memset(fig, 0, sizeof(fig));
			memset(cnt, 0, sizeof(cnt));
			for (int i = half; i < n - half; i++)
			{
				double		tr = 0, d;

				if (m % 2 == 0)
				{
					tr = 0.5 * (y[i - half] + y[i + half]);
					for (int j = i - half + 1; j < i + half; j++)
						tr += y[j];
				}
				else
					for (int j = i - half; j <= i + half; j++)
						tr += y[j];
				tr /= m;
				d = season == ETS_ADD ? y[i] - tr : y[i] / tr;
				fig[i % m] += d;
				cnt[i % m] += 1;
			}
			for (int j = 0; j < m; j++)
			{
				fig[j] = cnt[j] > 0 ? fig[j] / cnt[j] : (season == ETS_ADD ? 0 : 1);
				mean += fig[j] / m;
			}
			for (int j = 0; j < m; j++)
				fig[j] = season == ETS_ADD ? fig[j] - mean : fig[j] / mean;
			for (int i = 0; i < n; i++)
				seasonal[i] = fig[i % m];
		}
		/* init.seas = rev(seasonal[2:m]) */
		{
			double		sum = 0;

			for (int j = 0; j < m - 1; j++)
			{
				x[1 + (trend > ETS_NONE) + j] = seasonal[m - 1 - j];
				if (season == ETS_MULT)
					x[1 + (trend > ETS_NONE) + j] = fmax(x[1 + (trend > ETS_NONE) + j], 1e-2);
				sum += x[1 + (trend > ETS_NONE) + j];
			}
			if (season == ETS_MULT && sum > m)
				for (int j = 0; j < m - 1; j++)
					x[1 + (trend > ETS_NONE) + j] /= (sum + (m - 1) * 1e-2);
		}
		for (int i = 0; i < n; i++)
			ysa[i] = season == ETS_ADD ? y[i] - seasonal[i] : y[i] / fmax(seasonal[i], 1e-2);
	}
	else
	{
		m = 1;
		memcpy(ysa, y, sizeof(double) * n);
	}

	maxn = Min(Max(10, 2 * m), n);
	if (trend == ETS_NONE)
	{
		double		s = 0;

		for (int i = 0; i < maxn; i++)
			s += ysa[i];
		x[k++] = s / maxn;
	}
	else
	{
		double		sx = 0, sy = 0, sxx = 0, sxy = 0, b0, l0;

		for (int i = 0; i < maxn; i++)
		{
			double		t = i + 1;

			sx += t;
			sy += ysa[i];
			sxx += t * t;
			sxy += t * ysa[i];
		}
		b0 = (maxn * sxy - sx * sy) / (maxn * sxx - sx * sx);
		l0 = (sy - b0 * sx) / maxn;
		if (fabs(l0 + b0) < 1e-8)
		{
			l0 *= 1 + 1e-3;
			b0 *= 1 - 1e-3;
		}
		x[k++] = l0;
		x[k++] = b0;
	}
	pfree(ysa);
	if (seasonal)
		pfree(seasonal);
	return k + (season != ETS_NONE ? m - 1 : 0);
}

/*
 * Nelder-Mead in the variant of Nash (1990, Compact Numerical Methods, Algorithm 19) that R's optim() and
 * forecast::ets use, so that the fits, and hence the AICc choices, are those of ets(): no bounds (the objective
 * is +Inf outside the region, counted as 1e35), an initial simplex with one step of 10% of the largest
 * parameter added to each coordinate in turn, reflection 1, contraction 0.5, expansion 2, shrink towards the
 * best vertex, and the stop when the spread of the simplex values is within reltol * (|f(start)| + reltol).
 * Like R it returns the vertex that was lowest at the start of the last iteration. Unlike R's "while
 * evaluations <= maxit" it never evaluates the objective more than max_evals times (with max_evals = maxit
 * the answer is R's whenever the limit is reached between two iterations, the usual case).
 */
#define NM_BIG 1.0e35

typedef struct NashNM
{
	EtsProblem *p;
	int			max_evals;
} NashNM;

static bool
nm_eval(NashNM *nm, const double *x, int n, double *f)
{
	if (nm->p->evals >= nm->max_evals)
		return false;
	*f = ets_objective(n, x, NULL, nm->p);
	if (!isfinite(*f))
		*f = NM_BIG;
	return true;
}

/* Minimises from x (n coordinates) in place; returns the minimum, HUGE_VAL when the start is infeasible. */
static double
nash_nelder_mead(EtsProblem *prob, double *x, int n, double reltol, int max_evals)
{
	NashNM		nm = {prob, max_evals};
	int			n1 = n + 1, lo = 0, hi, j, i;
	double	   *P = palloc(sizeof(double) * (n + 2) * n);	/* vertices 0..n, then the centroid */
	double	   *fv = palloc(sizeof(double) * (n + 2));
	double	   *xt = palloc(sizeof(double) * n);
	double		f0, convtol, step = 0, size = 0, oldsize, fl, fh, fr, f;
	bool		recompute = true;

#define V(j) (P + (size_t) (j) * n)
	if (!nm_eval(&nm, x, n, &f0) || f0 >= NM_BIG)
		return HUGE_VAL;
	convtol = reltol * (fabs(f0) + reltol);
	memcpy(V(0), x, sizeof(double) * n);
	fv[0] = f0;
	for (i = 0; i < n; i++)
		step = Max(step, 0.1 * fabs(x[i]));
	if (step == 0)
		step = 0.1;
	for (j = 1; j < n1; j++)
	{
		double		trystep = step;

		memcpy(V(j), x, sizeof(double) * n);
		/* a step too small to change a large coordinate is made ten times larger until it does */
		while (V(j)[j - 1] == x[j - 1])
		{
			V(j)[j - 1] = x[j - 1] + trystep;
			trystep *= 10;
		}
		size += trystep;
	}
	oldsize = size;
	for (;;)
	{
		if (recompute)
		{
			for (j = 0; j < n1; j++)
				if (j != lo && !nm_eval(&nm, V(j), n, &fv[j]))
					goto done;
			recompute = false;
		}
		fl = fh = fv[lo];
		hi = lo;
		for (j = 0; j < n1; j++)
		{
			if (j == lo)
				continue;
			if (fv[j] < fl)
			{
				lo = j;
				fl = fv[j];
			}
			if (fv[j] > fh)
			{
				hi = j;
				fh = fv[j];
			}
		}
		if (fh <= fl + convtol)
			break;
		/* centroid of all vertices but the highest */
		for (i = 0; i < n; i++)
		{
			double		c = -V(hi)[i];

			for (j = 0; j < n1; j++)
				c += V(j)[i];
			V(n1)[i] = c / n;
		}
		for (i = 0; i < n; i++)
			xt[i] = 2 * V(n1)[i] - V(hi)[i];
		if (!nm_eval(&nm, xt, n, &fr))
			break;
		if (fr < fl)
		{
			/* expansion: twice as far; the centroid slot keeps the reflected point */
			for (i = 0; i < n; i++)
			{
				double		e = 2 * xt[i] - V(n1)[i];

				V(n1)[i] = xt[i];
				xt[i] = e;
			}
			if (!nm_eval(&nm, xt, n, &f))
				break;
			if (f < fr)
			{
				memcpy(V(hi), xt, sizeof(double) * n);
				fv[hi] = f;
			}
			else
			{
				memcpy(V(hi), V(n1), sizeof(double) * n);
				fv[hi] = fr;
			}
			continue;
		}
		if (fr < fh)
		{
			memcpy(V(hi), xt, sizeof(double) * n);
			fv[hi] = fr;
		}
		/* contraction halfway between the (possibly replaced) highest vertex and the centroid */
		for (i = 0; i < n; i++)
			xt[i] = 0.5 * V(hi)[i] + 0.5 * V(n1)[i];
		if (!nm_eval(&nm, xt, n, &f))
			break;
		if (f < fv[hi])
		{
			memcpy(V(hi), xt, sizeof(double) * n);
			fv[hi] = f;
		}
		else if (fr >= fh)
		{
			/* shrink every vertex halfway towards the lowest; stop when the simplex no longer shrinks */
			size = 0;
			for (j = 0; j < n1; j++)
				if (j != lo)
					for (i = 0; i < n; i++)
					{
						V(j)[i] = 0.5 * (V(j)[i] - V(lo)[i]) + V(lo)[i];
						size += fabs(V(j)[i] - V(lo)[i]);
					}
			recompute = true;
			if (size < oldsize)
				oldsize = size;
			else
				break;
		}
	}
done:
	memcpy(x, V(lo), sizeof(double) * n);
	f = fv[lo];
#undef V
	pfree(P);
	pfree(fv);
	pfree(xt);
	return f >= NM_BIG ? HUGE_VAL : f;
}

void
EtsFitModel(const double *y, int n, int m, int error, int trend, int season, bool damped,
			int max_evals, double ftol, EtsFit *fit)
{
	EtsFitModelCrit(y, n, m, error, trend, season, damped, max_evals, ftol, false, fit);
}

/* EtsFitModel with a choice of criterion: the likelihood, or the in-sample one-step MSE (opt.crit = "mse"). */
void
EtsFitModelCrit(const double *y, int n, int m, int error, int trend, int season, bool damped,
				int max_evals, double ftol, bool crit_mse, EtsFit *fit)
{
	EtsProblem	p;
	double		v[ETS_MAX_PAR];
	double		alpha, beta = 0, gamma = 0, phi = 1, up, minf = HUGE_VAL, sse_e = 0;
	int			npar = 0, nstate, nv;
	double		x[ETS_MAX_PAR];

	memset(fit, 0, sizeof(*fit));
	fit->error = error;
	fit->trend = trend;
	fit->season = season;
	fit->damped = damped;
	fit->m = season != ETS_NONE ? m : 1;
	fit->ok = false;
	m = fit->m;

	/* initparam() of ets.R */
	alpha = lowerb[0] + 0.2 * (upperb[0] - lowerb[0]) / m;
	if (alpha > 1 || alpha < 0)
		alpha = lowerb[0] + 2e-3;
	v[npar++] = alpha;
	if (trend != ETS_NONE)
	{
		up = Min(upperb[1], alpha);
		beta = lowerb[1] + 0.1 * (up - lowerb[1]);
		if (beta < 0 || beta > alpha)
			beta = alpha - 1e-3;
		v[npar++] = beta;
	}
	if (season != ETS_NONE)
	{
		up = Min(upperb[2], 1 - alpha);
		gamma = lowerb[2] + 0.05 * (up - lowerb[2]);
		if (gamma < 0 || gamma > 1 - alpha)
			gamma = 1 - alpha - 1e-3;
		v[npar++] = gamma;
	}
	if (damped)
	{
		phi = lowerb[3] + 0.99 * (upperb[3] - lowerb[3]);
		if (phi < 0 || phi > 1)
			phi = upperb[3] - 1e-3;
		v[npar++] = phi;
	}
	nstate = ets_initstate(y, n, m, trend, season, v + npar);
	nv = npar + nstate;
	/* etsmodel(): no fit when the parameters outnumber the data */
	if (nv >= n - 1)
		return;

	p.y = y;
	p.n = n;
	p.m = m;
	p.error = error;
	p.trend = trend;
	p.season = season;
	p.damped = damped;
	p.x = x;
	p.evals = 0;
	p.crit_mse = crit_mse;

	/* smoothing parameters and initial states jointly, as etsmodel() does */
	minf = nash_nelder_mead(&p, v, nv, ftol, max_evals);
	fit->evals = p.evals;
	if (!(minf < HUGE_VAL))
		return;

	ets_unpack(&p, v, &fit->alpha, &fit->beta, &fit->gamma, &fit->phi, x);
	fit->nstate = 1 + (trend != ETS_NONE) + (season != ETS_NONE ? m : 0);
	memcpy(fit->init, x, sizeof(double) * fit->nstate);
	memcpy(fit->final, x, sizeof(double) * fit->nstate);
	fit->lik = ets_calc(y, n, fit->final, m, error, trend, season, fit->alpha, fit->beta, fit->gamma, fit->phi,
						NULL, &fit->mse, &sse_e);
	if (fabs(fit->lik - ETS_NA) < ETS_TOL || isnan(fit->lik))
		return;
	if (fit->lik < -1e10)
		fit->lik = -1e10;
	fit->np = nv + 1;
	fit->loglik = -0.5 * fit->lik;
	fit->aic = fit->lik + 2.0 * fit->np;
	fit->bic = fit->lik + log((double) n) * fit->np;
	fit->aicc = n - fit->np - 1 > 0 ? fit->aic + 2.0 * fit->np * (fit->np + 1) / (n - fit->np - 1) : HUGE_VAL;
	fit->sigma2 = sse_e / (n - nv);	/* ets.R divides by n - length(par), without the +1 of the AIC */
	fit->ok = true;
}

/*
 * Forecast means of the class-3 models (multiplicative errors and season, trend N/A/Ad) by the recursion of
 * Hyndman et al. (2008, ch. 6) that forecast.ets uses: M = x1 x2' (level/trend times seasonal states),
 * mean_h = H1 M[, m], M <- F1 rot(M) + sigma2 G1 M[, m] gamma e1'. Beyond one season the mean exceeds the
 * product of the point forecasts by the sigma2 terms. H1 = (1, phi) and F1 = ((1, phi), (0, phi)) keep the
 * damping of the first step, which R's class3() leaves out (it uses (1, 1)); the two agree for phi = 1.
 */
static void
ets_class3_mean(const EtsFit *fit, double b, int h, double *f)
{
	int			m = fit->m, p1 = fit->trend != ETS_NONE ? 2 : 1, k = p1;
	double		phi = fit->damped ? fit->phi : 1, sig2 = fit->sigma2;
	double		M[2][ETS_MAX_M], N[2][ETS_MAX_M], h1[2], g1[2];

	h1[0] = 1;
	h1[1] = phi;
	g1[0] = fit->alpha;
	g1[1] = fit->beta;
	for (int j = 0; j < m; j++)
	{
		M[0][j] = fit->final[0] * fit->final[k + j];
		M[1][j] = p1 == 2 ? b * fit->final[k + j] : 0;
	}
	for (int i = 0; i < h; i++)
	{
		double		hm = 0, c;

		/* H1 M[, m]: the level (and damped trend) times the seasonal state of this period */
		for (int r = 0; r < p1; r++)
			hm += h1[r] * M[r][m - 1];
		f[i] = hm;
		if (i == h - 1)
			break;
		/* rotate the seasonal columns, apply F1 to the rows, add the second-order term to column 1 */
		for (int r = 0; r < p1; r++)
			for (int j = 0; j < m; j++)
				N[r][j] = M[r][j == 0 ? m - 1 : j - 1];
		for (int j = 0; j < m; j++)
		{
			if (p1 == 2)
			{
				double		top = N[0][j] + phi * N[1][j];

				N[1][j] = phi * N[1][j];
				N[0][j] = top;
			}
		}
		c = sig2 * fit->gamma * hm;
		for (int r = 0; r < p1; r++)
			N[r][0] += c * g1[r];
		memcpy(M, N, sizeof(M));
	}
}

void
EtsPointForecast(const EtsFit *fit, int h, double *f)
{
	int			k = 1;
	double		b = 0;

	if (fit->trend != ETS_NONE)
		b = fit->final[k++];
	if (fit->error == ETS_MULT && fit->season == ETS_MULT && fit->trend != ETS_MULT)
		ets_class3_mean(fit, b, h, f);
	else
		ets_forecast_raw(fit->final[0], b, fit->final + k, fit->m, fit->trend, fit->season, fit->phi, f, h);
}

void
EtsFitted(const EtsFit *fit, const double *y, int n, double *fitted)
{
	double		x[ETS_MAX_PAR];

	memcpy(x, fit->init, sizeof(x));
	ets_calc(y, n, x, fit->m, fit->error, fit->trend, fit->season, fit->alpha, fit->beta, fit->gamma, fit->phi,
			 fitted, NULL, NULL);
}

bool
EtsIsClass1(const EtsFit *fit)
{
	return fit->error == ETS_ADD && fit->trend != ETS_MULT && fit->season != ETS_MULT;
}

/*
 * For a linear model y_t = w'x_{t-1} + e_t, x_t = F x_{t-1} + g e_t the h-step variance is
 * sigma2 (1 + sum_{j=1}^{h-1} c_j^2) with c_j = w'F^{j-1} g; c_j is the j-step forecast from the state g,
 * which is the state one update of the zero state by a unit error leaves.
 */
void
EtsClass1Variance(const EtsFit *fit, int h, double *var)
{
	double		l = 0, b = 0, s[ETS_MAX_M], *c = palloc(sizeof(double) * h);
	double		acc = 0;

	memset(s, 0, sizeof(s));
	ets_update(&l, &b, s, fit->m, fit->trend, fit->season, fit->alpha, fit->beta, fit->gamma, fit->phi, 1.0);
	ets_forecast_raw(l, b, s, fit->m, fit->trend, fit->season, fit->phi, c, h);
	for (int i = 0; i < h; i++)
	{
		var[i] = fit->sigma2 * (1 + acc);
		acc += c[i] * c[i];
	}
	pfree(c);
}

/* A uniform double in (0, 1) from the sequential splitmix64 stream *s (the half offset keeps it off 0 for log). */
static double
FcUniform(uint64_t *s)
{
	uint64_t	z = RmSplitMix64(*s);

	*s += UINT64_C(0x9E3779B97F4A7C15);
	return ((z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* A standard normal draw by Box-Muller from two uniforms of the stream *s. */
static double
FcNormal(uint64_t *s)
{
	double		u1 = FcUniform(s), u2 = FcUniform(s);

	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

void
EtsSimulate(const EtsFit *fit, int h, int nsim, uint64_t *rng, double *paths)
{
	double		sigma = sqrt(fit->sigma2);

	for (int r = 0; r < nsim; r++)
	{
		double		l = fit->final[0], b = 0, s[ETS_MAX_M];
		int			k = 1;

		if (fit->trend != ETS_NONE)
			b = fit->final[k++];
		if (fit->season != ETS_NONE)
			memcpy(s, fit->final + k, sizeof(double) * fit->m);
		for (int i = 0; i < h; i++)
		{
			double		f, e = sigma * FcNormal(rng), y;

			ets_forecast_raw(l, b, s, fit->m, fit->trend, fit->season, fit->phi, &f, 1);
			y = fit->error == ETS_ADD ? f + e : f * (1 + e);
			paths[(size_t) r * h + i] = y;
			ets_update(&l, &b, s, fit->m, fit->trend, fit->season, fit->alpha, fit->beta, fit->gamma, fit->phi, y);
		}
	}
}

void
EtsName(const EtsFit *fit, char *buf, int buflen)
{
	static const char *const code[] = {"N", "A", "M"};

	snprintf(buf, buflen, "ETS(%s,%s%s,%s)", code[fit->error], code[fit->trend], fit->damped ? "d" : "",
			 code[fit->season]);
}
