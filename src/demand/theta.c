/* demand/theta.c: seasonal adjustment (thetaf's test, classical multiplicative decomposition) and Theta. */
/*
 * The standard Theta method of Assimakopoulos and Nikolopoulos (2000), computed as Hyndman and Billah (2003)
 * showed it equals and as R's forecast::thetaf does: simple exponential smoothing of the seasonally adjusted
 * series plus a drift of half the least-squares slope, reseasonalised with the classical multiplicative
 * indices when the 90% autocorrelation test finds seasonality. The adjustment is shared with the M4 "Comb"
 * benchmark (forecast.c).
 */
#include "postgres.h"

#include <math.h>

#include "common/retail_mid.h"
#include "demand/forecast.h"

bool
FcSeasonalityTest(const double *y, int n, int m)
{
	double		mean = 0, den = 0, sum2 = 0, r_m = 0;
	bool		constant = true;

	if (m <= 1 || n <= 2 * m)
		return false;
	for (int t = 0; t < n; t++)
	{
		mean += y[t];
		if (y[t] != y[0])
			constant = false;
	}
	if (constant)
		return false;
	mean /= n;
	for (int t = 0; t < n; t++)
		den += (y[t] - mean) * (y[t] - mean);
	for (int k = 1; k <= m; k++)
	{
		double		num = 0, r;

		for (int t = 0; t + k < n; t++)
			num += (y[t] - mean) * (y[t + k] - mean);
		r = num / den;
		if (k < m)
			sum2 += r * r;
		else
			r_m = r;
	}
	/* qnorm(0.95), as thetaf() */
	return fabs(r_m) / sqrt((1 + 2 * sum2) / n) > 1.6448536269514722;
}

bool
FcDecomposeMult(const double *y, int n, int m, double *index)
{
	int			half = m / 2;
	double	   *sum = palloc0(sizeof(double) * m);
	int		   *cnt = palloc0(sizeof(int) * m);
	double		total = 0;
	bool		ok = true;

	if (m <= 1 || n <= 2 * m)
		return false;
	/* centred moving average (2 x m for even m, m for odd m), then the mean ratio per season position */
	for (int t = half; t < n - half; t++)
	{
		double		trend = 0;

		if (m % 2 == 0)
		{
			trend = 0.5 * (y[t - half] + y[t + half]);
			for (int k = -half + 1; k <= half - 1; k++)
				trend += y[t + k];
		}
		else
			for (int k = -half; k <= half; k++)
				trend += y[t + k];
		trend /= m;
		if (trend == 0 || !isfinite(y[t] / trend))
		{
			ok = false;
			break;
		}
		sum[t % m] += y[t] / trend;
		cnt[t % m]++;
	}
	for (int i = 0; ok && i < m; i++)
	{
		if (cnt[i] == 0)
			ok = false;
		else
		{
			index[i] = sum[i] / cnt[i];
			total += index[i];
		}
	}
	if (ok)
		for (int i = 0; i < m; i++)
		{
			index[i] /= total / m;
			if (fabs(index[i]) < 1e-4 || !isfinite(index[i]))
				ok = false;
		}
	pfree(sum);
	pfree(cnt);
	return ok;
}

bool
FcSeasonalAdjust(const double *y, int n, int m, double *x, double *index)
{
	bool		positive = true, seasonal;

	/* multiplicative indices only for positive data (thetaf() would divide by indices of any sign) */
	for (int t = 0; t < n; t++)
		if (!(y[t] > 0))
			positive = false;
	seasonal = positive && FcSeasonalityTest(y, n, m) && FcDecomposeMult(y, n, m, index);

	for (int i = 0; i < Max(m, 1); i++)
		if (!seasonal)
			index[i] = 1;
	for (int t = 0; t < n; t++)
		x[t] = seasonal ? y[t] / index[t % m] : y[t];
	return seasonal;
}

/*
 * thetaf(): ses() (ETS(A,N,N) by MSE) on the adjusted series x, plus b/2 (i + (1 - (1 - alpha)^n) / alpha) at
 * step i + 1 where b is the least-squares slope of x on 0..n-1, times the season's index. The standard deviation
 * is thetaf()'s sqrt(sigma2 (1 + i alpha^2)) on the adjusted scale, not reseasonalised (as R).
 */
void
ThetaForecast(const double *y, int n, int m, int h, int max_evals, double ftol, ThetaFit *fit, double *mean,
			  double *sd)
{
	double	   *x = palloc(sizeof(double) * n);
	double		sx = 0, st = 0, sxt = 0, stt = 0, slope, alpha;
	EtsFit		ses;
	int			mm = Max(m, 1);

	memset(fit, 0, sizeof(*fit));
	fit->index = palloc(sizeof(double) * mm);
	fit->seasonal = FcSeasonalAdjust(y, n, mm, x, fit->index);
	EtsFitModelCrit(x, n, 1, ETS_ADD, ETS_NONE, ETS_NONE, false, max_evals, ftol, true, &ses);
	if (!ses.ok)
	{
		pfree(x);
		return;
	}
	for (int t = 0; t < n; t++)
	{
		sx += x[t];
		st += t;
	}
	sx /= n;
	st /= n;
	for (int t = 0; t < n; t++)
	{
		sxt += (t - st) * (x[t] - sx);
		stt += (t - st) * (t - st);
	}
	slope = stt > 0 ? sxt / stt : 0;
	alpha = Max(ses.alpha, 1e-10);
	fit->alpha = ses.alpha;
	fit->level = ses.final[0];
	fit->l0 = ses.init[0];
	fit->drift = slope / 2;
	fit->sigma2 = ses.sigma2;
	fit->mse = ses.mse;
	for (int i = 0; i < h; i++)
	{
		mean[i] = (fit->level + fit->drift * (i + (1 - pow(1 - alpha, n)) / alpha)) * fit->index[(n + i) % mm];
		sd[i] = sqrt(ses.sigma2) * sqrt(i * alpha * alpha + 1);
	}
	fit->ok = true;
	pfree(x);
}
