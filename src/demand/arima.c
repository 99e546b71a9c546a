/* demand/arima.c: seasonal ARIMA by exact Gaussian likelihood and the automatic order search of auto.arima. */
/*
 * ARIMA(p,d,q)(P,D,Q)m as R's stats::arima fits it (method "CSS-ML"): the series is differenced
 * (w = (1-B)^d (1-B^m)^D y), the ARMA on w (with a mean, which is the intercept when d + D = 0 and the drift
 * times the differencing's gain when d + D = 1) is first fitted by conditional sum of squares, then by the
 * exact Gaussian likelihood of a Kalman filter in Harvey's state-space form started from the stationary state
 * covariance (computed exactly from the autocovariances, O(r^2) after one (p+1)-square solve). R's diffuse
 * prior on the differenced states gives the same likelihood up to its kappa = 1e6 approximation.
 * AR and MA polynomials (non-seasonal and seasonal) are optimised through the partial-autocorrelation (tanh)
 * transform, so every fitted model is stationary and invertible; NLopt's BOBYQA does the optimisation.
 * The order search is forecast::auto.arima's stepwise Hyndman-Khandakar search by AICc: D from a seasonal
 * strength test (classical additive decomposition instead of auto.arima's STL: strength > 0.64), d from
 * the KPSS test at 5% (urca's ur.kpss, type mu, lag trunc(3 sqrt(n) / 13)), models with a root within
 * 1.01 of the unit circle rejected, up to 94 models. Forecasts are the Kalman predictions integrated back;
 * their variances are sigma2 times the sum of squared psi-weights of the full (differenced) model.
 */
#include "postgres.h"

#include <math.h>
#include <nlopt.h>

#include "common/retail_mid.h"
#include "demand/forecast.h"

#define AR_MAXPOLY (ARIMA_MAX_P + ARIMA_MAX_SP * ARIMA_MAX_M + 1)

/* ---------- polynomials ---------- */

/* R's partrans: tanh then Durbin-Levinson, the p raw values to AR coefficients of a stationary polynomial */
static void
pacf_to_ar(const double *raw, int p, double *out)
{
	double		work[ARIMA_MAX_P + 1], nw[ARIMA_MAX_P + 1];

	for (int j = 0; j < p; j++)
		work[j] = nw[j] = tanh(raw[j]);
	for (int j = 1; j < p; j++)
	{
		double		a = nw[j];

		for (int k = 0; k < j; k++)
			work[k] -= a * nw[j - k - 1];
		for (int k = 0; k < j; k++)
			nw[k] = work[k];
	}
	memcpy(out, nw, sizeof(double) * p);
}

/* Whether 1 - sum c_k z^k has all its roots outside radius rho (step-down / Schur-Cohn). */
static bool
ar_roots_outside(const double *c, int p, double rho)
{
	double		a[AR_MAXPOLY + 1], b[AR_MAXPOLY + 1], s = 1;

	for (int k = 0; k < p; k++)
	{
		s *= rho;
		a[k] = c[k] * s;
	}
	for (int k = p; k >= 1; k--)
	{
		double		kk = a[k - 1];

		if (fabs(kk) >= 1 || !isfinite(kk))
			return false;
		for (int j = 0; j < k - 1; j++)
			b[j] = (a[j] + kk * a[k - 2 - j]) / (1 - kk * kk);
		memcpy(a, b, sizeof(double) * (k - 1));
	}
	return true;
}

/* (1 - sum a_i B^i)(1 - sum A_j B^{jm}) as 1 - sum out_k B^k; returns the degree. sign -1 for MA (1 + ...). */
static int
expand_poly(const double *a, int p, const double *A, int P, int m, double sign, double *out)
{
	int			deg = p + P * m;
	double		c1[AR_MAXPOLY + 1], c2[AR_MAXPOLY + 1], prod[AR_MAXPOLY + 1];

	memset(c1, 0, sizeof(c1));
	memset(c2, 0, sizeof(c2));
	memset(prod, 0, sizeof(prod));
	c1[0] = c2[0] = 1;
	for (int i = 0; i < p; i++)
		c1[i + 1] = -sign * a[i];
	for (int j = 0; j < P; j++)
		c2[(j + 1) * m] = -sign * A[j];
	for (int i = 0; i <= p; i++)
		for (int j = 0; j <= P * m; j++)
			prod[i + j] += c1[i] * c2[j];
	for (int k = 1; k <= deg; k++)
		out[k - 1] = -sign * prod[k];
	return deg;
}

/* ---------- the ARMA likelihood ---------- */

typedef struct ArmaWork
{
	const double *w;			/* the differenced, scaled series */
	int			n;
	int			p, q, P, Q, m;
	bool		constant;
	bool		css;
	int			r;
	double	   *P0, *Pm, *TP, *a, *an;	/* r x r and r work areas */
	double		phi[AR_MAXPOLY], theta[AR_MAXPOLY];
	int			np, nq;			/* expanded degrees */
	double		ssq, sumlog;
	int			nu;
	int			evals;
} ArmaWork;

/* Raw parameters to the expanded polynomials and the mean. */
static double
unpack(ArmaWork *W, const double *x)
{
	double		ar[ARIMA_MAX_P], sar[ARIMA_MAX_SP], ma[ARIMA_MAX_P], sma[ARIMA_MAX_SP];
	int			o = 0;

	pacf_to_ar(x + o, W->p, ar);
	o += W->p;
	pacf_to_ar(x + o, W->P, sar);
	o += W->P;
	pacf_to_ar(x + o, W->q, ma);
	o += W->q;
	pacf_to_ar(x + o, W->Q, sma);
	o += W->Q;
	/* MA coefficients: 1 + theta B is invertible iff 1 - (-theta) B is stationary */
	for (int i = 0; i < W->q; i++)
		ma[i] = -ma[i];
	for (int i = 0; i < W->Q; i++)
		sma[i] = -sma[i];
	W->np = expand_poly(ar, W->p, sar, W->P, W->m, 1, W->phi);
	W->nq = expand_poly(ma, W->q, sma, W->Q, W->m, -1, W->theta);
	return W->constant ? x[o] : 0;
}

/* Autocovariances g[0..r] (unit innovation variance) and psi[0..r] of the ARMA(phi, theta). */
static bool
arma_acov(const double *phi, int p, const double *theta, int q, int r, double *g, double *psi)
{
	int			np1 = p + 1;
	double	   *A = palloc0(sizeof(double) * np1 * np1), *b = palloc0(sizeof(double) * np1);
	double		th[AR_MAXPOLY + 1];

	th[0] = 1;
	for (int j = 1; j <= q; j++)
		th[j] = theta[j - 1];
	psi[0] = 1;
	for (int j = 1; j <= Max(r, q); j++)
	{
		double		s = j <= q ? theta[j - 1] : 0;

		for (int i = 1; i <= Min(j, p); i++)
			s += phi[i - 1] * psi[j - i];
		psi[j] = s;
	}
	/* gamma(k) - sum_j phi_j gamma(|k-j|) = sum_{j=k}^{q} th_j psi_{j-k}, k = 0..p */
	for (int k = 0; k <= p; k++)
	{
		A[k * np1 + k] += 1;
		for (int j = 1; j <= p; j++)
			A[k * np1 + abs(k - j)] -= phi[j - 1];
		for (int j = k; j <= q; j++)
			b[k] += th[j] * psi[j - k];
	}
	/* Gaussian elimination with partial pivoting */
	for (int c = 0; c < np1; c++)
	{
		int			piv = c;

		for (int i = c + 1; i < np1; i++)
			if (fabs(A[i * np1 + c]) > fabs(A[piv * np1 + c]))
				piv = i;
		if (fabs(A[piv * np1 + c]) < 1e-12)
			return false;
		if (piv != c)
		{
			for (int j = 0; j < np1; j++)
			{
				double		t = A[c * np1 + j];

				A[c * np1 + j] = A[piv * np1 + j];
				A[piv * np1 + j] = t;
			}
			{
				double		t = b[c];

				b[c] = b[piv];
				b[piv] = t;
			}
		}
		for (int i = c + 1; i < np1; i++)
		{
			double		f = A[i * np1 + c] / A[c * np1 + c];

			if (f == 0)
				continue;
			for (int j = c; j < np1; j++)
				A[i * np1 + j] -= f * A[c * np1 + j];
			b[i] -= f * b[c];
		}
	}
	for (int i = np1 - 1; i >= 0; i--)
	{
		double		s = b[i];

		for (int j = i + 1; j < np1; j++)
			s -= A[i * np1 + j] * g[j];
		g[i] = s / A[i * np1 + i];
	}
	for (int k = p + 1; k <= r; k++)
	{
		double		s = 0;

		for (int j = 1; j <= p; j++)
			s += phi[j - 1] * g[k - j];
		for (int j = k; j <= q; j++)
			s += th[j] * psi[j - k];
		g[k] = s;
	}
	pfree(A);
	pfree(b);
	return g[0] > 0 && isfinite(g[0]);
}

/*
 * The Kalman filter of R's ARIMA_Like for d = 0: state a_t (r = max(p, q + 1)), T = [phi | I; 0],
 * R = (1, theta). Accumulates ssq = sum v^2 / F, sumlog = sum log F over the n observations of w - mu.
 * When a_out is not NULL, leaves the filtered state a_{n|n} there.
 */
static bool
arma_kalman(ArmaWork *W, double mu, double *a_out)
{
	int			r = W->r, p = W->np, q = W->nq;
	double		g[AR_MAXPOLY + 2], psi[AR_MAXPOLY + 2], ph[AR_MAXPOLY + 1], th[AR_MAXPOLY + 1];
	double	   *P = W->P0, *Pn = W->Pm, *TP = W->TP, *a = W->a, *an = W->an;

	for (int i = 0; i < r; i++)
	{
		ph[i] = i < p ? W->phi[i] : 0;
		th[i] = i == 0 ? 1 : (i <= q ? W->theta[i - 1] : 0);
	}
	ph[r] = 0;
	if (!arma_acov(W->phi, p, W->theta, q, r, g, psi))
		return false;
	/* stationary P: P[0][k] from the autocovariances, the rest by P = T P T' + R R' from the bottom up */
	{
		double		p0[AR_MAXPOLY + 2];

		for (int k = 0; k < r; k++)
		{
			double		s = 0;

			if (k == 0)
				s = g[0];
			else
				for (int j = k; j < r; j++)
					s += ph[j] * g[1 + j - k] + th[j] * psi[j - k];
			p0[k] = s;
		}
		p0[r] = 0;
		for (int i = r - 1; i >= 0; i--)
			for (int k = r - 1; k >= i; k--)
			{
				double		v;

				if (i == 0)
					v = p0[k];
				else
					v = ph[i] * ph[k] * g[0] + ph[i] * p0[k + 1] + ph[k] * p0[i + 1]
						+ (i + 1 < r && k + 1 < r ? P[(i + 1) * r + k + 1] : 0) + th[i] * th[k];
				P[i * r + k] = P[k * r + i] = v;
			}
	}
	memset(a, 0, sizeof(double) * r);
	W->ssq = W->sumlog = 0;
	W->nu = 0;
	for (int t = 0; t < W->n; t++)
	{
		double		v, F;

		if (t > 0)
		{
			/* an = T a; Pn = T P T' + R R' */
			for (int i = 0; i < r; i++)
				an[i] = ph[i] * a[0] + (i + 1 < r ? a[i + 1] : 0);
			for (int i = 0; i < r; i++)
				for (int b = 0; b < r; b++)
					TP[i * r + b] = ph[i] * P[b] + (i + 1 < r ? P[(i + 1) * r + b] : 0);
			for (int i = 0; i < r; i++)
				for (int k = i; k < r; k++)
				{
					double		s = TP[i * r] * ph[k] + (k + 1 < r ? TP[i * r + k + 1] : 0) + th[i] * th[k];

					Pn[i * r + k] = Pn[k * r + i] = s;
				}
		}
		else
		{
			memcpy(an, a, sizeof(double) * r);
			memcpy(Pn, P, sizeof(double) * r * r);
		}
		F = Pn[0];
		if (!(F > 0) || !isfinite(F))
			return false;
		v = W->w[t] - mu - an[0];
		W->ssq += v * v / F;
		W->sumlog += log(F);
		W->nu++;
		for (int i = 0; i < r; i++)
			a[i] = an[i] + Pn[i] * v / F;
		for (int i = 0; i < r; i++)
			for (int k = i; k < r; k++)
				P[i * r + k] = P[k * r + i] = Pn[i * r + k] - Pn[i] * Pn[k] / F;
	}
	if (a_out)
		memcpy(a_out, a, sizeof(double) * r);
	return true;
}

/* CSS residual sum of squares, conditioning on the first p + Pm values */
static void
arma_css(ArmaWork *W, double mu)
{
	int			nc = W->np, n = W->n;
	double	   *e = W->an;			/* n-sized scratch in the css case */

	W->ssq = 0;
	W->nu = 0;
	for (int t = 0; t < n; t++)
	{
		double		v;

		if (t < nc)
		{
			e[t] = 0;
			continue;
		}
		v = W->w[t] - mu;
		for (int i = 0; i < W->np; i++)
			v -= W->phi[i] * (W->w[t - i - 1] - mu);
		for (int j = 0; j < W->nq && j < t; j++)
			v -= W->theta[j] * e[t - j - 1];
		e[t] = v;
		W->ssq += v * v;
		W->nu++;
	}
}

static double
arma_objective(unsigned npar, const double *x, double *grad, void *data)
{
	ArmaWork   *W = data;
	double		mu = unpack(W, x);

	(void) npar;
	(void) grad;
	W->evals++;
	if (W->css)
	{
		arma_css(W, mu);
		if (W->nu <= 0 || !(W->ssq > 0))
			return 1e10;
		return 0.5 * log(W->ssq / W->nu);
	}
	if (!arma_kalman(W, mu, NULL) || !(W->ssq > 0))
		return 1e10;
	return 0.5 * (log(W->ssq / W->nu) + W->sumlog / W->nu);
}

/* ---------- differencing ---------- */

/* Coefficients of (1-B)^d (1-B^m)^D as 1 - sum delta_i B^i; returns the degree. */
static int
diff_poly(int d, int D, int m, double *delta)
{
	double		c[AR_MAXPOLY * 2 + 3];
	int			deg = 0;

	memset(c, 0, sizeof(c));
	c[0] = 1;
	for (int k = 0; k < d + D; k++)
	{
		int			lag = k < d ? 1 : m;

		for (int i = deg + lag; i >= lag; i--)
			c[i] -= c[i - lag];
		deg += lag;
	}
	for (int i = 1; i <= deg; i++)
		delta[i - 1] = -c[i];
	return deg;
}

/* w = differenced y (n - deg values) */
static int
difference(const double *y, int n, int d, int D, int m, double *w)
{
	double		delta[2 * ARIMA_MAX_M + 4];
	int			deg = diff_poly(d, D, m, delta);

	for (int t = deg; t < n; t++)
	{
		double		v = y[t];

		for (int i = 0; i < deg; i++)
			v -= delta[i] * y[t - i - 1];
		w[t - deg] = v;
	}
	return n - deg;
}

/* ---------- fitting one order ---------- */

void
ArimaFitOrder(const double *y, int n, int m, int p, int d, int q, int P, int D, int Q, bool constant,
			  ArimaFit *fit)
{
	ArmaWork	W;
	int			nw, npar, o;
	double	   *w, mean = 0, sd = 0, sc;
	double		x[2 * ARIMA_MAX_P + 2 * ARIMA_MAX_SP + 1], lo[2 * ARIMA_MAX_P + 2 * ARIMA_MAX_SP + 1],
				hi[2 * ARIMA_MAX_P + 2 * ARIMA_MAX_SP + 1], minf;
	nlopt_opt	opt;

	memset(fit, 0, sizeof(*fit));
	fit->p = p;
	fit->d = d;
	fit->q = q;
	fit->P = P;
	fit->D = D;
	fit->Q = Q;
	fit->m = m;
	fit->constant = constant;
	fit->aicc = fit->aic = fit->bic = HUGE_VAL;
	if (m <= 1)
		P = D = Q = fit->P = fit->D = fit->Q = 0;
	if (p > ARIMA_MAX_P || q > ARIMA_MAX_P || P > ARIMA_MAX_SP || Q > ARIMA_MAX_SP || d > 2 || D > 1 ||
		(m > ARIMA_MAX_M && (P + D + Q) > 0))
		return;
	w = palloc(sizeof(double) * n);
	nw = difference(y, n, d, D, m, w);
	npar = p + q + P + Q + (constant ? 1 : 0);
	if (nw < 2 || nw <= p + P * m || nw < npar + 1)
	{
		pfree(w);
		return;
	}
	for (int t = 0; t < nw; t++)
		mean += w[t];
	mean /= nw;
	for (int t = 0; t < nw; t++)
		sd += (w[t] - mean) * (w[t] - mean);
	sd = sqrt(sd / nw);
	sc = sd > 0 ? sd : (fabs(mean) > 0 ? fabs(mean) : 1);
	for (int t = 0; t < nw; t++)
		w[t] /= sc;

	memset(&W, 0, sizeof(W));
	W.w = w;
	W.n = nw;
	W.p = p;
	W.q = q;
	W.P = P;
	W.Q = Q;
	W.m = m;
	W.constant = constant;
	W.r = Max(p + P * m, q + Q * m + 1);
	W.P0 = palloc(sizeof(double) * W.r * W.r);
	W.Pm = palloc(sizeof(double) * W.r * W.r);
	W.TP = palloc(sizeof(double) * W.r * W.r);
	W.a = palloc(sizeof(double) * W.r);
	W.an = palloc(sizeof(double) * Max(W.r, nw));

	for (o = 0; o < npar; o++)
	{
		x[o] = 0;
		lo[o] = -8;
		hi[o] = 8;
	}
	if (constant)
	{
		x[npar - 1] = mean / sc;
		lo[npar - 1] = mean / sc - 10;
		hi[npar - 1] = mean / sc + 10;
	}
	if (npar > 0)
	{
		/* CSS first (as CSS-ML), then the exact likelihood from there */
		for (int pass = 0; pass < 2; pass++)
		{
			W.css = pass == 0;
			if (W.css && p + P + q + Q == 0)
				continue;
			opt = nlopt_create(NLOPT_LN_BOBYQA, npar);
			nlopt_set_lower_bounds(opt, lo);
			nlopt_set_upper_bounds(opt, hi);
			nlopt_set_min_objective(opt, arma_objective, &W);
			nlopt_set_ftol_rel(opt, 1e-10);
			nlopt_set_xtol_rel(opt, 1e-8);
			nlopt_set_maxeval(opt, 200 * (npar + 1));
			nlopt_set_initial_step1(opt, 0.2);
			if (nlopt_optimize(opt, x, &minf) < 0 && W.evals == 0)
			{
				nlopt_destroy(opt);
				goto fail;
			}
			nlopt_destroy(opt);
			/* CSS drives MA roots to the unit circle, where the tanh transform is flat: start ML inside */
			for (o = 0; pass == 0 && o < p + P + q + Q; o++)
				x[o] = Max(-2, Min(2, x[o]));
		}
	}
	/* the final values at the optimum */
	W.css = false;
	{
		double		mu = unpack(&W, x);

		if (!arma_kalman(&W, mu, NULL) || !(W.ssq > 0))
			goto fail;
		fit->mu = mu * sc;
	}
	o = 0;
	pacf_to_ar(x + o, p, fit->ar);
	o += p;
	pacf_to_ar(x + o, P, fit->sar);
	o += P;
	pacf_to_ar(x + o, q, fit->ma);
	o += q;
	pacf_to_ar(x + o, Q, fit->sma);
	for (int i = 0; i < q; i++)
		fit->ma[i] = -fit->ma[i];
	for (int i = 0; i < Q; i++)
		fit->sma[i] = -fit->sma[i];
	fit->nobs = W.nu;
	/* forecast::Arima's estimate (the one its intervals use): residual sum of squares / (n - coefficients) */
	fit->sigma2 = W.ssq / (W.nu - npar > 0 ? W.nu - npar : W.nu) * sc * sc;
	fit->loglik = -0.5 * (W.nu * (log(2 * M_PI) + 1 + log(W.ssq / W.nu)) + W.sumlog) - W.nu * log(sc);
	fit->npar = npar + 1;
	fit->aic = -2 * fit->loglik + 2 * fit->npar;
	fit->aicc = W.nu - fit->npar - 1 > 0 ?
		fit->aic + 2.0 * fit->npar * (fit->npar + 1) / (W.nu - fit->npar - 1) : HUGE_VAL;
	fit->bic = fit->aic + fit->npar * (log((double) W.nu) - 2);
	fit->evals = W.evals;
	/* auto.arima rejects models with a root within 1.01 of the unit circle */
	fit->near_unit = !ar_roots_outside(W.phi, W.np, 1.01);
	{
		double		negth[AR_MAXPOLY];

		for (int i = 0; i < W.nq; i++)
			negth[i] = -W.theta[i];
		if (!ar_roots_outside(negth, W.nq, 1.01))
			fit->near_unit = true;
	}
	fit->ok = isfinite(fit->loglik);
fail:
	pfree(w);
	pfree(W.P0);
	pfree(W.Pm);
	pfree(W.TP);
	pfree(W.a);
	pfree(W.an);
}

/* ---------- forecasting ---------- */

void
ArimaForecast(const ArimaFit *fit, const double *y, int n, int h, double *mean, double *sd)
{
	ArmaWork	W;
	double	   *w = palloc(sizeof(double) * n), *ext, *psi;
	double		delta[2 * ARIMA_MAX_M + 4], full_ar[AR_MAXPOLY * 2 + 4], c[AR_MAXPOLY * 2 + 4];
	int			nw = difference(y, n, fit->d, fit->D, fit->m, w), deg, r, nfa;
	double		a[AR_MAXPOLY + 2];

	memset(&W, 0, sizeof(W));
	W.w = w;
	W.n = nw;
	W.m = fit->m;
	W.np = expand_poly(fit->ar, fit->p, fit->sar, fit->P, fit->m, 1, W.phi);
	W.nq = expand_poly(fit->ma, fit->q, fit->sma, fit->Q, fit->m, -1, W.theta);
	r = W.r = Max(W.np, W.nq + 1);
	W.P0 = palloc(sizeof(double) * r * r);
	W.Pm = palloc(sizeof(double) * r * r);
	W.TP = palloc(sizeof(double) * r * r);
	W.a = palloc(sizeof(double) * r);
	W.an = palloc(sizeof(double) * r);
	memset(a, 0, sizeof(a));
	if (!arma_kalman(&W, fit->mu, a))
		memset(a, 0, sizeof(a));
	/* w forecasts from the state, then integrated: y_t = w_t + sum delta_i y_{t-i} */
	deg = diff_poly(fit->d, fit->D, fit->m, delta);
	ext = palloc(sizeof(double) * (n + h));
	memcpy(ext, y, sizeof(double) * n);
	for (int k = 0; k < h; k++)
	{
		double		an[AR_MAXPOLY + 2], v;

		for (int i = 0; i < r; i++)
			an[i] = (i < W.np ? W.phi[i] : 0) * a[0] + (i + 1 < r ? a[i + 1] : 0);
		memcpy(a, an, sizeof(double) * r);
		v = fit->mu + a[0];
		for (int i = 0; i < deg; i++)
			v += delta[i] * ext[n + k - i - 1];
		ext[n + k] = v;
		mean[k] = v;
	}
	/* psi-weights of phi(B) Phi(B^m) (1-B)^d (1-B^m)^D against theta(B) Theta(B^m) */
	memset(c, 0, sizeof(c));
	c[0] = 1;
	for (int i = 0; i < W.np; i++)
		c[i + 1] = -W.phi[i];
	nfa = W.np;
	for (int k = 0; k < fit->d + fit->D; k++)
	{
		int			lag = k < fit->d ? 1 : fit->m;

		for (int i = nfa + lag; i >= lag; i--)
			c[i] -= c[i - lag];
		nfa += lag;
	}
	for (int i = 1; i <= nfa; i++)
		full_ar[i - 1] = -c[i];
	psi = palloc(sizeof(double) * h);
	{
		double		cum = 0;

		for (int j = 0; j < h; j++)
		{
			double		s = j == 0 ? 1 : (j <= W.nq ? W.theta[j - 1] : 0);

			for (int i = 1; i <= Min(j, nfa); i++)
				s += full_ar[i - 1] * psi[j - i];
			psi[j] = s;
			cum += s * s;
			sd[j] = sqrt(fit->sigma2 * cum);
		}
	}
	pfree(w);
	pfree(ext);
	pfree(psi);
	pfree(W.P0);
	pfree(W.Pm);
	pfree(W.TP);
	pfree(W.a);
	pfree(W.an);
}

/* ---------- unit-root tests ---------- */

static bool
is_constant(const double *x, int n)
{
	for (int t = 1; t < n; t++)
		if (x[t] != x[0])
			return false;
	return true;
}

/* KPSS level-stationarity statistic (urca's ur.kpss, type "mu", lag trunc(3 sqrt(n) / 13)) */
double
ArimaKpss(const double *x, int n)
{
	int			l = (int) trunc(3 * sqrt((double) n) / 13);
	double		mean = 0, s = 0, eta = 0, s2 = 0;

	for (int t = 0; t < n; t++)
		mean += x[t];
	mean /= n;
	for (int t = 0; t < n; t++)
	{
		double		e = x[t] - mean;

		s += e;
		eta += s * s;
		s2 += e * e;
	}
	eta /= (double) n * n;
	for (int i = 1; i <= l; i++)
	{
		double		acc = 0;

		for (int t = i; t < n; t++)
			acc += (x[t] - mean) * (x[t - i] - mean);
		s2 += 2 * (1 - (double) i / (l + 1)) * acc;
	}
	s2 /= n;
	return s2 > 0 ? eta / s2 : 0;
}

int
ArimaNdiffs(const double *y, int n, int max_d)
{
	double	   *x = palloc(sizeof(double) * n);
	int			d = 0;

	memcpy(x, y, sizeof(double) * n);
	if (n < 3 || is_constant(x, n))
		return 0;
	while (d < max_d && ArimaKpss(x, n) > 0.463)	/* 5% critical value of the mu test */
	{
		for (int t = 0; t < n - 1; t++)
			x[t] = x[t + 1] - x[t];
		n--;
		d++;
		if (n < 3 || is_constant(x, n))
			break;
	}
	pfree(x);
	return d;
}

/* Seasonal strength max(0, 1 - var(remainder) / var(seasonal + remainder)) of a classical additive decomposition. */
double
ArimaSeasonalStrength(const double *x, int n, int m)
{
	double	   *trend, idx[ARIMA_MAX_M * 8 + 1], cnt[ARIMA_MAX_M * 8 + 1], mi = 0;
	double		r1 = 0, r2 = 0, s1 = 0, s2 = 0;
	int			k = 0, half = m / 2;

	if (m <= 1 || n < 2 * m + 1 || m > ARIMA_MAX_M * 8)
		return 0;
	trend = palloc(sizeof(double) * n);
	for (int t = 0; t < n; t++)
	{
		double		s = 0;

		trend[t] = NAN;
		if (t - half < 0 || t + half >= n)
			continue;
		if (m % 2)
		{
			for (int j = -half; j <= half; j++)
				s += x[t + j];
			trend[t] = s / m;
		}
		else
		{
			for (int j = -half; j <= half; j++)
				s += (j == -half || j == half ? 0.5 : 1) * x[t + j];
			trend[t] = s / m;
		}
	}
	memset(idx, 0, sizeof(idx));
	memset(cnt, 0, sizeof(cnt));
	for (int t = 0; t < n; t++)
		if (!isnan(trend[t]))
		{
			idx[t % m] += x[t] - trend[t];
			cnt[t % m]++;
		}
	for (int j = 0; j < m; j++)
	{
		idx[j] = cnt[j] > 0 ? idx[j] / cnt[j] : 0;
		mi += idx[j] / m;
	}
	for (int t = 0; t < n; t++)
		if (!isnan(trend[t]))
		{
			double		sea = idx[t % m] - mi, rem = x[t] - trend[t] - sea;

			r1 += rem;
			r2 += rem * rem;
			s1 += rem + sea;
			s2 += (rem + sea) * (rem + sea);
			k++;
		}
	pfree(trend);
	if (k < 2)
		return 0;
	{
		double		vr = (r2 - r1 * r1 / k) / (k - 1), vs = (s2 - s1 * s1 / k) / (k - 1);

		if (!(vs > 0))
			return 0;
		return Max(0, Min(1, 1 - vr / vs));
	}
}

/* ---------- auto.arima ---------- */

typedef struct Tried
{
	int			p, q, P, Q;
	bool		c;
} Tried;

static bool
try_model(const double *y, int n, int m, int p, int d, int q, int P, int D, int Q, bool c, Tried *tried, int *k,
		  int nmax, ArimaFit *best, bool *improved)
{
	ArimaFit	f;

	for (int i = 0; i < *k; i++)
		if (tried[i].p == p && tried[i].q == q && tried[i].P == P && tried[i].Q == Q && tried[i].c == c)
			return false;
	if (*k >= nmax)
		return false;
	tried[*k].p = p;
	tried[*k].q = q;
	tried[*k].P = P;
	tried[*k].Q = Q;
	tried[*k].c = c;
	(*k)++;
	ArimaFitOrder(y, n, m, p, d, q, P, D, Q, c, &f);
	if (f.ok && !f.near_unit && f.aicc < best->aicc)
	{
		*best = f;
		*improved = true;
		return true;
	}
	return false;
}

bool
ArimaAuto(const double *y, int n, int m, ArimaFit *best, int *ntried)
{
	int			d, D = 0, nw, max_p = 5, max_q = 5, max_P = 2, max_Q = 2, k = 0, startk;
	int			p, q, P, Q;
	bool		constant, c, dummy = false;
	Tried		tried[94];
	double	   *x = palloc(sizeof(double) * n);

	memset(best, 0, sizeof(*best));
	best->aicc = HUGE_VAL;
	*ntried = 0;
	if (m > ARIMA_MAX_M || m < 1)
		m = 1;
	max_p = Min(max_p, n / 3);
	max_q = Min(max_q, n / 3);
	max_P = m > 1 ? Min(max_P, n / 3 / m) : 0;
	max_Q = m > 1 ? Min(max_Q, n / 3 / m) : 0;
	if (m > 1 && n > 2 * m && ArimaSeasonalStrength(y, n, m) > 0.64)
		D = 1;
	nw = difference(y, n, 0, D, m, x);
	if (nw < 3 || is_constant(x, nw))
		d = 0;
	else
		d = ArimaNdiffs(x, nw, 2);
	{
		/* as auto.arima: when the differenced series is constant, ARIMA(0,d,0)(0,D,0) with its mean as the
		 * drift (d + D = 1) or none, and a zero innovation variance */
		int			nd = difference(y, n, d, D, m, x);

		if (nd >= 1 && is_constant(x, nd))
		{
			best->ok = true;
			best->m = m;
			best->d = d;
			best->D = D;
			best->constant = d + D == 1 && x[0] != 0;
			best->mu = best->constant ? x[0] : 0;
			best->sigma2 = best->constant ? 0 : x[0] * x[0];
			best->loglik = best->aic = best->aicc = best->bic = NAN;
			best->nobs = nd;
			best->npar = 1 + best->constant;
			*ntried = 0;
			pfree(x);
			return true;
		}
	}
	if (m > 1)
	{
		if (max_P > 0)
			max_p = Min(max_p, m - 1);
		if (max_Q > 0)
			max_q = Min(max_q, m - 1);
	}
	if (m == 1)
		max_P = max_Q = 0;
	constant = d + D <= 1;
	c = constant;
	p = Min(n < 10 ? 1 : 2, max_p);
	q = Min(n < 10 ? 1 : 2, max_q);
	P = Min(n < 10 ? 0 : 1, max_P);
	Q = Min(n < 10 ? 0 : 1, max_Q);
	{
		int			sp = p, sq = q, sP = P, sQ = Q;

		dummy = false;
		try_model(y, n, m, sp, d, sq, sP, D, sQ, constant, tried, &k, 94, best, &dummy);
		if (try_model(y, n, m, 0, d, 0, 0, D, 0, constant, tried, &k, 94, best, &dummy))
			p = q = P = Q = 0;
		if (max_p > 0 || max_P > 0)
			if (try_model(y, n, m, max_p > 0, d, 0, m > 1 && max_P > 0, D, 0, constant, tried, &k, 94, best, &dummy))
			{
				p = max_p > 0;
				P = m > 1 && max_P > 0;
				q = Q = 0;
			}
		if (max_q > 0 || max_Q > 0)
			if (try_model(y, n, m, 0, d, max_q > 0, 0, D, m > 1 && max_Q > 0, constant, tried, &k, 94, best, &dummy))
			{
				p = P = 0;
				q = max_q > 0;
				Q = m > 1 && max_Q > 0;
			}
		if (constant)
			if (try_model(y, n, m, 0, d, 0, 0, D, 0, false, tried, &k, 94, best, &dummy))
				p = q = P = Q = 0;
	}
	/* the neighbours of the best, in auto.arima's order, restarting from each improvement */
	startk = -1;
	while (startk < k && k < 94)
	{
		static const int moves[16][4] = {
			{0, 0, -1, 0}, {0, 0, 0, -1}, {0, 0, 1, 0}, {0, 0, 0, 1},
			{0, 0, -1, -1}, {0, 0, -1, 1}, {0, 0, 1, -1}, {0, 0, 1, 1},
			{-1, 0, 0, 0}, {0, -1, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0},
			{-1, -1, 0, 0}, {-1, 1, 0, 0}, {1, -1, 0, 0}, {1, 1, 0, 0}};
		bool		moved = false;

		startk = k;
		for (int i = 0; i < 16 && !moved; i++)
		{
			int			np = p + moves[i][0], nq = q + moves[i][1], nP = P + moves[i][2], nQ = Q + moves[i][3];

			if (np < 0 || nq < 0 || nP < 0 || nQ < 0 || np > max_p || nq > max_q || nP > max_P || nQ > max_Q)
				continue;
			if (try_model(y, n, m, np, d, nq, nP, D, nQ, c, tried, &k, 94, best, &dummy))
			{
				moved = true;
				p = np;
				q = nq;
				P = nP;
				Q = nQ;
			}
		}
		if (!moved && (d + D <= 1))
			if (try_model(y, n, m, p, d, q, P, D, Q, !c, tried, &k, 94, best, &dummy))
				c = !c;
	}
	*ntried = k;
	pfree(x);
	if (!best->ok)
	{
		/* nothing acceptable: the differencing alone (a random walk / seasonal random walk) */
		ArimaFitOrder(y, n, m, 0, d, 0, 0, D, 0, false, best);
	}
	return best->ok;
}

void
ArimaName(const ArimaFit *fit, char *buf, int buflen)
{
	if (fit->m > 1 && fit->P + fit->D + fit->Q > 0)
		snprintf(buf, buflen, "ARIMA(%d,%d,%d)(%d,%d,%d)[%d]%s", fit->p, fit->d, fit->q, fit->P, fit->D, fit->Q,
				 fit->m, fit->constant ? (fit->d + fit->D == 1 ? " with drift" : " with mean") : "");
	else
		snprintf(buf, buflen, "ARIMA(%d,%d,%d)%s", fit->p, fit->d, fit->q,
				 fit->constant ? (fit->d + fit->D == 1 ? " with drift" : " with mean") : "");
}

