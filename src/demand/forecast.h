/* demand/forecast.h: the model engines behind retail_mid.forecast (ETS in ets.c, the rest in forecast.c). */
#ifndef RETAIL_MID_FORECAST_H
#define RETAIL_MID_FORECAST_H

#include <stdbool.h>
#include <stdint.h>

#define ETS_NONE 0
#define ETS_ADD 1
#define ETS_MULT 2
#define ETS_MAX_M 24			/* like forecast::ets, seasonal ETS only for periods up to 24 */
#define ETS_MAX_PAR (4 + 2 + ETS_MAX_M)

/* One fitted ETS model: the parameters, initial and final states, and the fit statistics of forecast::ets. */
typedef struct EtsFit
{
	int			error, trend, season;
	bool		damped;
	int			m;				/* season length used (1 when season is NONE) */
	double		alpha, beta, gamma, phi;
	int			nstate;			/* 1 + (trend) + (season ? m : 0), the last seasonal state implied */
	double		init[ETS_MAX_PAR];	/* l0, b0, s0 .. s(m-1) */
	double		final[ETS_MAX_PAR];
	int			np;				/* estimated parameters + initial states + 1 (for sigma), as in ets.R */
	double		lik;			/* -2 log likelihood up to a constant, as etscalc returns it */
	double		loglik, aic, aicc, bic, sigma2, mse;
	int			evals;			/* objective evaluations the optimiser used */
	bool		ok;
} EtsFit;

/* Fits one ETS model by maximum likelihood (bounded Nelder-Mead); fit->ok is false when it cannot be fitted. */
extern void EtsFitModel(const double *y, int n, int m, int error, int trend, int season, bool damped,
						int max_evals, double ftol, EtsFit *fit);

/* The same with opt.crit = "mse" when crit_mse (as R's ses(), holt() and thetaf() fit). */
extern void EtsFitModelCrit(const double *y, int n, int m, int error, int trend, int season, bool damped,
							int max_evals, double ftol, bool crit_mse, EtsFit *fit);

/* Point forecasts for h steps from the fit's final state. */
extern void EtsPointForecast(const EtsFit *fit, int h, double *f);

/* One-step fitted values of the fit over y (for in-sample comparisons). */
extern void EtsFitted(const EtsFit *fit, const double *y, int n, double *fitted);

/* Whether the model is linear with additive errors (class 1 of Hyndman et al. 2008: analytic variances). */
extern bool EtsIsClass1(const EtsFit *fit);

/* Forecast variances for class-1 models: sigma2 * (1 + sum_{j<h} c_j^2). */
extern void EtsClass1Variance(const EtsFit *fit, int h, double *var);

/* Sample paths (nsim x h, row major) from the fitted model with Gaussian innovations. */
extern void EtsSimulate(const EtsFit *fit, int h, int nsim, uint64_t *rng, double *paths);

/* Model name like ETS(M,Ad,N). */
extern void EtsName(const EtsFit *fit, char *buf, int buflen);

/* ---------- theta.c: seasonal adjustment, Theta and the M4 Comb benchmark ---------- */

/* thetaf()'s 90% seasonality test: |r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n), for m > 1 and n > 2m. */
extern bool FcSeasonalityTest(const double *y, int n, int m);

/* Classical multiplicative decomposition (R's decompose()): the m seasonal indices (mean 1), for a series
 * starting at the first season position; false when they cannot be formed or some index is below 1e-4. */
extern bool FcDecomposeMult(const double *y, int n, int m, double *index);

/* Seasonal adjustment as thetaf() and the M4 benchmarks do it: index[] (m values) set to 1 when the test
 * fails; x = y / index. Returns whether the series was adjusted. */
extern bool FcSeasonalAdjust(const double *y, int n, int m, double *x, double *index);

/* The standard Theta method as forecast::thetaf: mean and standard deviation of h steps. */
typedef struct ThetaFit
{
	bool		ok, seasonal;
	double		alpha, level, l0, drift, sigma2, mse;
	double	   *index;			/* m seasonal indices (all 1 when not seasonal) */
} ThetaFit;

extern void ThetaForecast(const double *y, int n, int m, int h, int max_evals, double ftol,
						  ThetaFit *fit, double *mean, double *sd);

/* ---------- arima.c: seasonal ARIMA by exact likelihood and auto.arima's stepwise search ---------- */

#define ARIMA_MAX_P 5			/* p and q of the search (and of a fixed order) */
#define ARIMA_MAX_SP 2			/* P and Q */
#define ARIMA_MAX_M 24			/* seasonal terms only for periods up to 24, as ETS */

typedef struct ArimaFit
{
	bool		ok;
	bool		near_unit;		/* a root within 1.01 of the unit circle: auto.arima rejects the model */
	bool		constant;		/* intercept (d + D = 0) or drift (d + D = 1) */
	int			p, d, q, P, D, Q, m;
	double		ar[ARIMA_MAX_P], ma[ARIMA_MAX_P], sar[ARIMA_MAX_SP], sma[ARIMA_MAX_SP];
	double		mu;				/* mean of the differenced series */
	double		sigma2, loglik, aic, aicc, bic;
	int			nobs, npar, evals;
} ArimaFit;

/* Fits ARIMA(p,d,q)(P,D,Q)m (CSS, then exact ML); fit->ok is false when it cannot be fitted. */
extern void ArimaFitOrder(const double *y, int n, int m, int p, int d, int q, int P, int D, int Q, bool constant,
						  ArimaFit *fit);

/* auto.arima's stepwise search by AICc; *ntried = models fitted. */
extern bool ArimaAuto(const double *y, int n, int m, ArimaFit *best, int *ntried);

/* Point forecasts and their standard deviations (psi-weights) for h steps after y. */
extern void ArimaForecast(const ArimaFit *fit, const double *y, int n, int h, double *mean, double *sd);

extern double ArimaKpss(const double *x, int n);
extern int	ArimaNdiffs(const double *y, int n, int max_d);
extern double ArimaSeasonalStrength(const double *x, int n, int m);
extern void ArimaName(const ArimaFit *fit, char *buf, int buflen);

#endif
