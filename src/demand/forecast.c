/* demand/forecast.c: retail_mid.forecast / forecast_series: one series per group, forecast in the final function. */
/*
 * Parallel aggregates collect one series per group; the final function forecasts it: automatic ETS (ets.c),
 * Croston, SBA, TSB, ADIDA, naive and seasonal naive, with an automatic choice by demand class
 * (Syntetos-Boylan: ADI >= 1.32, CV^2 >= 0.49) and fit. The result is jsonb: model, parameters, fit
 * statistics, point forecasts, 80%/95% intervals and requested quantiles.
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "common/retail_mid.h"
#include "common/rm_agg.h"
#include "common/rm_math.h"
#include "demand/forecast.h"

PG_FUNCTION_INFO_V1(forecast_date_trans);
PG_FUNCTION_INFO_V1(forecast_index_trans);
PG_FUNCTION_INFO_V1(forecast_combine);
PG_FUNCTION_INFO_V1(forecast_serial);
PG_FUNCTION_INFO_V1(forecast_deserial);
PG_FUNCTION_INFO_V1(forecast_final);

#define FC_MAGIC 0x46435354		/* "FCST" */
#define FC_VERSION 3			/* 2: model components in the options, 3: ARIMA orders (issue 18) */
#define FC_MAX_HORIZON 10000
#define FC_MAX_QUANT 32
#define FC_MAX_PERIODS 10000000	/* a series longer than this is almost surely a date typo */
#define FC_MAX_COMP 8			/* components of a combination */
#define FC_AUTO_COMBO_DEFAULT 1	/* see docs/demand.md: the M1 and car parts figures decided it */

enum
{
	FREQ_DAY, FREQ_WEEK, FREQ_MONTH, FREQ_QUARTER, FREQ_YEAR, FREQ_INDEX
};
static const char *const freq_names[] = {"day", "week", "month", "quarter", "year", "index"};

enum
{
	M_AUTO, M_ETS, M_CROSTON, M_SBA, M_TSB, M_ADIDA, M_NAIVE, M_SNAIVE,
	M_THETA, M_COMB, M_SES, M_HOLT, M_DAMPED, M_MEAN, M_MEDIAN, M_SELECT, M_WEIGHTED, M_ARIMA, M_COUNT
};
static const char *const model_names[] = {"auto", "ets", "croston", "sba", "tsb", "adida", "naive", "snaive",
"theta", "comb", "ses", "holt", "damped", "mean", "median", "select", "weighted", "arima"};

/* the models a combination (mean, median, select) may take as components */
#define IS_COMPONENT(k) ((k) == M_ETS || (k) == M_NAIVE || (k) == M_SNAIVE || ((k) >= M_THETA && (k) <= M_DAMPED) || \
						 (k) == M_ARIMA)
/* the default components: ETS, Theta and the M4 Comb (SES, Holt, damped on the adjusted series) */
static const int default_components[] = {M_ETS, M_THETA, M_COMB};

/* Options, validated once when a group's state is created; fixed size so that it serialises as is. */
typedef struct FcConfig
{
	int32		horizon;
	int32		freq;
	int32		season_length;
	int32		gaps_zero;		/* 1: missing periods are zero demand; 0: they are an error */
	int32		model;
	char		ets_spec[5];	/* e.g. ZZZ, AAdN, MNM */
	int32		max_evals;
	double		tolerance;		/* relative change of the likelihood at which the optimiser stops */
	int32		nsim;
	int64		seed;
	double		alpha;			/* Croston/SBA/TSB demand smoothing */
	double		beta;			/* TSB probability smoothing */
	int32		nquant;
	double		quant[FC_MAX_QUANT];
	int32		ncomp;			/* components of mean/median/select (0: the default ones) */
	int32		comp[FC_MAX_COMP];
	int32		origins;		/* rolling origins of select */
	int32		auto_combo;		/* auto on smooth/erratic series: 1 = combination, 0 = ETS alone */
	int32		arima_order[6];	/* p, d, q, P, D, Q of a fixed ARIMA order; arima_order[0] < 0: automatic */
	int32		arima_constant;	/* -1: as auto.arima decides (d + D <= 1), 0: none, 1: mean or drift */
} FcConfig;

typedef struct FcState
{
	FcConfig	cfg;
	int64		n, cap;
	int64	   *key;			/* date (days since 2000-01-01) or period index */
	double	   *val;
} FcState;

/* ---------- options ---------- */

static double
jbv_number(JsonbValue *v, const char *key)
{
	if (v->type != jbvNumeric)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("forecast option \"%s\" must be a number", key)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

static char *
jbv_string(JsonbValue *v, const char *key)
{
	if (v->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("forecast option \"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static int
jbv_int(JsonbValue *v, const char *key, int lo, int hi)
{
	double		d = jbv_number(v, key);

	if (d != floor(d) || d < lo || d > hi)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("forecast option \"%s\" must be an integer between %d and %d", key, lo, hi)));
	return (int) d;
}

static void
parse_ets_spec(const char *s, FcConfig *cfg)
{
	size_t		len = strlen(s);
	bool		ok = (len == 3 || (len == 4 && s[2] == 'd'));

	if (ok)
	{
		ok = strchr("AMZ", s[0]) != NULL && strchr("NAZ", s[1]) != NULL && strchr("NAMZ", s[len - 1]) != NULL;
		if (len == 4 && s[1] != 'A' && s[1] != 'Z')
			ok = false;
	}
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid ets model \"%s\"", s),
						errdetail("The model is three letters (error A/M/Z, trend N/A/Ad/Z, season N/A/M/Z), e.g. ZZZ, AAdN or MNM; multiplicative trends are not supported.")));
	strlcpy(cfg->ets_spec, s, sizeof(cfg->ets_spec));
}

static void
config_init(FcConfig *cfg, int horizon, bool is_date, int season_length, Jsonb *opts)
{
	memset(cfg, 0, sizeof(*cfg));
	if (horizon <= 0 || horizon > FC_MAX_HORIZON)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("forecast horizon must be between 1 and %d", FC_MAX_HORIZON)));
	cfg->horizon = horizon;
	cfg->freq = is_date ? FREQ_DAY : FREQ_INDEX;
	cfg->season_length = season_length;
	cfg->gaps_zero = 1;
	cfg->model = M_AUTO;
	strcpy(cfg->ets_spec, "ZZZ");
	cfg->max_evals = 2000;
	cfg->tolerance = 1.4901161193847656e-08;	/* sqrt(DBL_EPSILON), the reltol ets() passes */
	cfg->nsim = 1000;
	cfg->seed = 42;
	cfg->alpha = 0.1;
	cfg->beta = 0.1;
	cfg->origins = 2;
	cfg->auto_combo = FC_AUTO_COMBO_DEFAULT;
	cfg->arima_order[0] = -1;
	cfg->arima_constant = -1;

	if (opts != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken r;
		bool		season_given = false;

		if (!JB_ROOT_IS_OBJECT(opts))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("forecast options must be a json object")));
		it = JsonbIteratorInit(&opts->root);
		r = JsonbIteratorNext(&it, &v, true);
		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *key;

			if (r != WJB_KEY)
				continue;
			key = pnstrdup(v.val.string.val, v.val.string.len);
			r = JsonbIteratorNext(&it, &v, true);
			if (strcmp(key, "model") == 0)
			{
				char	   *s = jbv_string(&v, key);
				int			i;

				for (i = 0; i < M_COUNT; i++)
					if (strcmp(s, model_names[i]) == 0)
						break;
				if (i == M_COUNT)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("unknown forecast model \"%s\"", s),
									errhint("Use auto, ets, arima, theta, comb, ses, holt, damped, mean, median, select, weighted, croston, sba, tsb, adida, naive or snaive.")));
				cfg->model = i;
			}
			else if (strcmp(key, "ets") == 0)
				parse_ets_spec(jbv_string(&v, key), cfg);
			else if (strcmp(key, "frequency") == 0)
			{
				char	   *s = jbv_string(&v, key);
				int			i;

				if (!is_date)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"frequency\" applies to date series only")));
				for (i = 0; i < FREQ_INDEX; i++)
					if (strcmp(s, freq_names[i]) == 0)
						break;
				if (i == FREQ_INDEX)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("unknown forecast frequency \"%s\"", s),
									errhint("Use day, week, month, quarter or year.")));
				cfg->freq = i;
			}
			else if (strcmp(key, "season_length") == 0)
			{
				cfg->season_length = jbv_int(&v, key, 1, 1000);
				season_given = true;
			}
			else if (strcmp(key, "gaps") == 0)
			{
				char	   *s = jbv_string(&v, key);

				if (strcmp(s, "zero") == 0)
					cfg->gaps_zero = 1;
				else if (strcmp(s, "error") == 0)
					cfg->gaps_zero = 0;
				else
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"gaps\" must be \"zero\" or \"error\"")));
			}
			else if (strcmp(key, "max_evals") == 0)
				cfg->max_evals = jbv_int(&v, key, 1, 1000000);
			else if (strcmp(key, "tolerance") == 0)
			{
				double		d = jbv_number(&v, key);

				if (!(d >= 1e-14 && d <= 0.1))
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"tolerance\" must be between 1e-14 and 0.1")));
				cfg->tolerance = d;
			}
			else if (strcmp(key, "nsim") == 0)
				cfg->nsim = jbv_int(&v, key, 100, 100000);
			else if (strcmp(key, "seed") == 0)
				cfg->seed = jbv_int(&v, key, 0, INT_MAX);
			else if (strcmp(key, "alpha") == 0 || strcmp(key, "beta") == 0)
			{
				double		d = jbv_number(&v, key);

				if (!(d > 0 && d <= 1))
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"%s\" must be in (0, 1]", key)));
				if (key[0] == 'a')
					cfg->alpha = d;
				else
					cfg->beta = d;
			}
			else if (strcmp(key, "components") == 0)
			{
				JsonbIterator *it2;
				JsonbValue	e;

				if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"components\" must be an array of model names")));
				it2 = JsonbIteratorInit(v.val.binary.data);
				while ((r = JsonbIteratorNext(&it2, &e, true)) != WJB_DONE)
				{
					char	   *c;
					int			i;

					if (r != WJB_ELEM)
						continue;
					c = jbv_string(&e, key);
					for (i = 0; i < M_COUNT; i++)
						if (strcmp(c, model_names[i]) == 0)
							break;
					if (i == M_COUNT || !IS_COMPONENT(i))
						ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
										errmsg("invalid forecast component \"%s\"", c),
										errhint("Components may be ets, arima, theta, comb, ses, holt, damped, naive and snaive.")));
					for (int j = 0; j < cfg->ncomp; j++)
						if (cfg->comp[j] == i)
							ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
											errmsg("forecast component \"%s\" is listed twice", c)));
					if (cfg->ncomp >= FC_MAX_COMP)
						ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
										errmsg("at most %d forecast components may be combined", FC_MAX_COMP)));
					cfg->comp[cfg->ncomp++] = i;
				}
				if (cfg->ncomp == 0)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"components\" must not be empty")));
			}
			else if (strcmp(key, "order") == 0 || strcmp(key, "seasonal_order") == 0)
			{
				/* a fixed ARIMA order: [p, d, q] and [P, D, Q] */
				JsonbIterator *it2;
				JsonbValue	e;
				int			k = 0, base = strcmp(key, "order") == 0 ? 0 : 3;
				static const int lim[6] = {ARIMA_MAX_P, 2, ARIMA_MAX_P, ARIMA_MAX_SP, 1, ARIMA_MAX_SP};

				if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"%s\" must be an array of three integers", key)));
				if (cfg->arima_order[0] < 0)
					memset(cfg->arima_order, 0, sizeof(cfg->arima_order));
				it2 = JsonbIteratorInit(v.val.binary.data);
				while ((r = JsonbIteratorNext(&it2, &e, true)) != WJB_DONE)
				{
					if (r != WJB_ELEM)
						continue;
					if (k >= 3)
						ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
										errmsg("forecast option \"%s\" must be an array of three integers", key)));
					cfg->arima_order[base + k] = jbv_int(&e, key, 0, lim[base + k]);
					k++;
				}
				if (k != 3)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"%s\" must be an array of three integers", key)));
			}
			else if (strcmp(key, "constant") == 0)
			{
				if (v.type != jbvBool)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"constant\" must be true or false")));
				cfg->arima_constant = v.val.boolean ? 1 : 0;
			}
			else if (strcmp(key, "auto_model") == 0)
			{
				char	   *c = jbv_string(&v, key);

				if (strcmp(c, "combination") == 0)
					cfg->auto_combo = 1;
				else if (strcmp(c, "ets") == 0)
					cfg->auto_combo = 0;
				else
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"auto_model\" must be \"combination\" or \"ets\"")));
			}
			else if (strcmp(key, "origins") == 0)
				cfg->origins = jbv_int(&v, key, 1, 20);
			else if (strcmp(key, "quantiles") == 0)
			{
				JsonbIterator *it2;
				JsonbValue	e;

				if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("forecast option \"quantiles\" must be an array of numbers")));
				it2 = JsonbIteratorInit(v.val.binary.data);
				while ((r = JsonbIteratorNext(&it2, &e, true)) != WJB_DONE)
				{
					double		q;

					if (r != WJB_ELEM)
						continue;
					q = jbv_number(&e, key);
					if (!(q > 0 && q < 1))
						ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
										errmsg("forecast quantiles must be strictly between 0 and 1")));
					if (cfg->nquant >= FC_MAX_QUANT)
						ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
										errmsg("at most %d forecast quantiles may be requested", FC_MAX_QUANT)));
					cfg->quant[cfg->nquant++] = q;
				}
			}
			else
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("unknown forecast option \"%s\"", key),
								errhint("Valid options: model, ets, order, seasonal_order, constant, auto_model, components, origins, frequency, season_length, gaps, max_evals, tolerance, nsim, seed, alpha, beta, quantiles.")));
		}
		if (!season_given && is_date)
			cfg->season_length = 0;
		if (cfg->ncomp > 0 && cfg->model != M_MEAN && cfg->model != M_MEDIAN && cfg->model != M_SELECT &&
			cfg->model != M_WEIGHTED)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("forecast option \"components\" applies to the models mean, median, select and weighted only")));
	}
	else if (is_date)
		cfg->season_length = 0;
	/* default season length by frequency: a week of days, a year of months or quarters */
	if (cfg->season_length == 0)
	{
		static const int def[] = {7, 52, 12, 4, 1, 1};

		cfg->season_length = def[cfg->freq];
	}
}

/* ---------- aggregate state ---------- */

static FcState *
state_new(MemoryContext ctx)
{
	FcState    *st = MemoryContextAllocZero(ctx, sizeof(FcState));

	st->cap = 64;
	st->key = MemoryContextAlloc(ctx, sizeof(int64) * st->cap);
	st->val = MemoryContextAlloc(ctx, sizeof(double) * st->cap);
	return st;
}

static void
state_add(FcState *st, int64 key, double val)
{
	if (st->n == st->cap)
	{
		if (st->cap >= FC_MAX_PERIODS)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("a forecast series may have at most %d points", FC_MAX_PERIODS)));
		st->cap *= 2;
		st->key = repalloc(st->key, sizeof(int64) * st->cap);
		st->val = repalloc(st->val, sizeof(double) * st->cap);
	}
	st->key[st->n] = key;
	st->val[st->n] = val;
	st->n++;
}

/* forecast(day date, qty float8, horizon int [, options jsonb]) */
Datum
forecast_date_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = RmAggContext(fcinfo, "forecast_date_trans");
	FcState    *st = PG_ARGISNULL(0) ? NULL : (FcState *) PG_GETARG_POINTER(0);
	double		qty;

	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("forecast dates must not be null")));
	if (st == NULL)
	{
		MemoryContext old;

		if (PG_ARGISNULL(3))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("forecast horizon must not be null")));
		st = state_new(ctx);
		old = MemoryContextSwitchTo(ctx);
		config_init(&st->cfg, PG_GETARG_INT32(3), true, 0,
					PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_JSONB_P(4) : NULL);
		MemoryContextSwitchTo(old);
	}
	if (PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);	/* a missing quantity is a missing period */
	qty = PG_GETARG_FLOAT8(2);
	RetailMidCheckFinite(qty, "forecast quantity");
	{
		DateADT		d = PG_GETARG_DATEADT(1);

		if (DATE_NOT_FINITE(d))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("forecast dates must be finite")));
		state_add(st, (int64) d, qty);
	}
	PG_RETURN_POINTER(st);
}

/* forecast_series(t bigint, value float8, horizon int, season_length int [, options jsonb]) */
Datum
forecast_index_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = RmAggContext(fcinfo, "forecast_index_trans");
	FcState    *st = PG_ARGISNULL(0) ? NULL : (FcState *) PG_GETARG_POINTER(0);
	double		v;

	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("forecast periods must not be null")));
	if (st == NULL)
	{
		MemoryContext old;
		int			m;

		if (PG_ARGISNULL(3))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("forecast horizon must not be null")));
		if (PG_ARGISNULL(4) || PG_GETARG_INT32(4) < 1 || PG_GETARG_INT32(4) > 1000)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("season length must be between 1 and 1000")));
		m = PG_GETARG_INT32(4);
		st = state_new(ctx);
		old = MemoryContextSwitchTo(ctx);
		config_init(&st->cfg, PG_GETARG_INT32(3), false, m,
					PG_NARGS() > 5 && !PG_ARGISNULL(5) ? PG_GETARG_JSONB_P(5) : NULL);
		MemoryContextSwitchTo(old);
	}
	if (PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);
	v = PG_GETARG_FLOAT8(2);
	RetailMidCheckFinite(v, "forecast value");
	state_add(st, PG_GETARG_INT64(1), v);
	PG_RETURN_POINTER(st);
}

Datum
forecast_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = RmAggContext(fcinfo, "forecast_combine");
	FcState    *a = PG_ARGISNULL(0) ? NULL : (FcState *) PG_GETARG_POINTER(0);
	FcState    *b = PG_ARGISNULL(1) ? NULL : (FcState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = state_new(ctx);
		a->cfg = b->cfg;
	}
	for (int64 i = 0; i < b->n; i++)
		state_add(a, b->key[i], b->val[i]);
	PG_RETURN_POINTER(a);
}

Datum
forecast_serial(PG_FUNCTION_ARGS)
{
	FcState    *st = (FcState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) RmAggContext(fcinfo, "forecast_serial");
	pq_begintypsend(&buf);
	pq_sendint32(&buf, FC_MAGIC);
	pq_sendint32(&buf, FC_VERSION);
	pq_sendbytes(&buf, (const char *) &st->cfg, sizeof(FcConfig));
	pq_sendint64(&buf, st->n);
	pq_sendbytes(&buf, (const char *) st->key, sizeof(int64) * st->n);
	pq_sendbytes(&buf, (const char *) st->val, sizeof(double) * st->n);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
forecast_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = RmAggContext(fcinfo, "forecast_deserial");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(b);
	Size		len = VARSIZE_ANY_EXHDR(b);
	FcState    *st;
	int32		magic, version;
	int64		n;
	Size		head = 8 + sizeof(FcConfig) + 8;

	if (len < head)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: too short")));
	memcpy(&magic, p, 4);
	memcpy(&version, p + 4, 4);
	magic = pg_ntoh32(magic);
	version = pg_ntoh32(version);
	if (magic != FC_MAGIC || version != FC_VERSION)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: bad magic or version")));
	memcpy(&n, p + 8 + sizeof(FcConfig), 8);
	n = pg_ntoh64(n);
	if (n < 0 || n > FC_MAX_PERIODS || len != head + (Size) n * 16)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: bad length")));
	st = MemoryContextAllocZero(ctx, sizeof(FcState));
	memcpy(&st->cfg, p + 8, sizeof(FcConfig));
	if (st->cfg.horizon < 1 || st->cfg.horizon > FC_MAX_HORIZON || st->cfg.freq < 0 || st->cfg.freq > FREQ_INDEX ||
		st->cfg.model < 0 || st->cfg.model >= M_COUNT || st->cfg.nquant < 0 || st->cfg.nquant > FC_MAX_QUANT ||
		st->cfg.season_length < 1 || st->cfg.season_length > 1000 || st->cfg.max_evals < 1 ||
		st->cfg.nsim < 100 || !(st->cfg.tolerance >= 1e-14 && st->cfg.tolerance <= 0.1) || st->cfg.nsim > 100000 || memchr(st->cfg.ets_spec, 0, sizeof(st->cfg.ets_spec)) == NULL ||
		st->cfg.ncomp < 0 || st->cfg.ncomp > FC_MAX_COMP || st->cfg.origins < 1 || st->cfg.origins > 20 ||
		(st->cfg.auto_combo != 0 && st->cfg.auto_combo != 1))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: bad options")));
	for (int i = 0; i < st->cfg.ncomp; i++)
		if (st->cfg.comp[i] < 0 || st->cfg.comp[i] >= M_COUNT || !IS_COMPONENT(st->cfg.comp[i]))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: bad options")));
	st->n = n;
	st->cap = Max(n, 1);
	st->key = MemoryContextAlloc(ctx, sizeof(int64) * st->cap);
	st->val = MemoryContextAlloc(ctx, sizeof(double) * st->cap);
	memcpy(st->key, p + head, sizeof(int64) * n);
	memcpy(st->val, p + head + sizeof(int64) * n, sizeof(double) * n);
	for (int64 i = 0; i < n; i++)
		if (isnan(st->val[i]) || isinf(st->val[i]))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid forecast state: non-finite value")));
	PG_RETURN_POINTER(st);
}

/* ---------- models ---------- */

/* The predictive distribution of each step, from which intervals and quantiles are read. */
typedef enum
{
	D_NORMAL,					/* mean + z sd */
	D_PATHS,					/* sorted simulated values per step */
	D_EMPIRICAL,				/* mean + empirical quantile of in-sample residuals */
	D_COMBO						/* mean / median / weighted mean of the components' quantiles */
} DistKind;

typedef struct FcResult
{
	char		model[160];
	const char *method;
	const char *note;
	StringInfoData params;		/* json object body */
	StringInfoData stats;		/* json object body */
	double	   *mean;
	DistKind	kind;
	double	   *sd;				/* D_NORMAL; NULL means no interval can be given */
	double	   *paths;			/* D_PATHS: h columns of nsim sorted values */
	int			nsim;
	double	   *resid;			/* D_EMPIRICAL: sorted */
	int			nres;
	struct FcResult *comp;		/* D_COMBO: the components */
	int			ncomp;
	bool		median;			/* D_COMBO: median instead of (weighted) mean */
	double	   *weight;			/* D_COMBO: weights of the mean, summing to 1 */
	bool		clip0;
} FcResult;

/* pg_qsort's algorithm specialised for doubles: the sample paths are sorted once per horizon step */
#define ST_SORT sort_doubles
#define ST_ELEMENT_TYPE double
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* Quantile of a sorted sample, R's type 7. */
static double
sorted_quantile(const double *x, int k, double p)
{
	double		hh = (k - 1) * p;
	int			lo = (int) floor(hh);

	if (lo >= k - 1)
		return x[k - 1];
	return x[lo] + (hh - lo) * (x[lo + 1] - x[lo]);
}

static double result_quantile(const FcResult *r, int step, double p);

/* Mean (weighted) or median of the components' values at one step: their means when p is NAN, else their
 * p-quantiles (quantile averaging, "Vincentization", for the mean; the median of the quantiles otherwise). */
static double
combo_value(const FcResult *r, int step, double p)
{
	double		v[FC_MAX_COMP], acc = 0;
	int			k = r->ncomp;

	for (int c = 0; c < k; c++)
	{
		v[c] = isnan(p) ? r->comp[c].mean[step] : result_quantile(&r->comp[c], step, p);
		if (isnan(v[c]))
			return NAN;
		acc += r->weight[c] * v[c];
	}
	if (!r->median)
		return acc;
	sort_doubles(v, k);
	return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

static double
result_quantile(const FcResult *r, int step, double p)
{
	double		q;

	switch (r->kind)
	{
		case D_NORMAL:
			if (r->sd == NULL)
				return NAN;
			q = r->mean[step] + RmNormQuantile(p) * r->sd[step];
			break;
		case D_PATHS:
			q = sorted_quantile(r->paths + (size_t) step * r->nsim, r->nsim, p);
			break;
		case D_COMBO:
			q = combo_value(r, step, p);
			break;
		default:
			if (r->nres == 0)
				return NAN;
			q = r->mean[step] + sorted_quantile(r->resid, r->nres, p);
			break;
	}
	if (r->clip0 && q < 0)
		q = 0;
	return q;
}

static void
json_num(StringInfo s, double v)
{
	if (isnan(v) || isinf(v))
		appendStringInfoString(s, "null");
	else
	{
		char	   *t = float8out_internal(v);

		appendStringInfoString(s, t);
		pfree(t);
	}
}

static void
kv_num(StringInfo s, const char *key, double v)
{
	if (s->len > 0)
		appendStringInfoString(s, ", ");
	appendStringInfo(s, "\"%s\": ", key);
	json_num(s, v);
}

static void
result_init(FcResult *r, int h)
{
	memset(r, 0, sizeof(*r));
	initStringInfo(&r->params);
	initStringInfo(&r->stats);
	r->mean = palloc0(sizeof(double) * h);
	r->kind = D_NORMAL;
}

static void
fit_naive(FcResult *r, const double *y, int n, int h, int m)
{
	double		ss = 0;
	int			k = 0;
	bool		seasonal = m > 1 && n >= m + 1;

	if (!seasonal)
		m = 1;
	strcpy(r->model, seasonal ? "SNAIVE" : "NAIVE");
	r->method = seasonal ? "snaive" : "naive";
	for (int t = m; t < n; t++)
	{
		ss += (y[t] - y[t - m]) * (y[t] - y[t - m]);
		k++;
	}
	if (k > 0)
		r->sd = palloc(sizeof(double) * h);
	for (int i = 0; i < h; i++)
	{
		r->mean[i] = y[n - m + (i % m)];
		if (k > 0)
			r->sd[i] = sqrt(ss / k) * sqrt((double) (i / m + 1));
	}
	kv_num(&r->params, "season_length", m);
	kv_num(&r->stats, "mse", k > 0 ? ss / k : NAN);
}

/* Residual-based intervals for the intermittent methods; resid[] holds y - fitted where defined. */
static void
set_empirical(FcResult *r, double *resid, int nres)
{
	sort_doubles(resid, nres);
	r->kind = D_EMPIRICAL;
	r->resid = resid;
	r->nres = nres;
	r->clip0 = true;
}

/*
 * Croston (1972) as forecast::croston: SES with alpha over the non-zero demand sizes and over the intervals
 * between them (the first interval counts from the start), both started at their first value; the forecast
 * is size / interval, times (1 - alpha/2) for SBA (Syntetos and Boylan 2005). Returns the in-sample MSE.
 */
static double
fit_croston(FcResult *r, const double *y, int n, int h, double alpha, bool sba, double *fitted)
{
	double		z = 0, p = 0, ss = 0, f = 0, factor = sba ? 1 - alpha / 2 : 1;
	double	   *resid = palloc(sizeof(double) * n);
	int			last = -1, nd = 0, nres = 0;

	strcpy(r->model, sba ? "SBA" : "CROSTON");
	r->method = sba ? "sba" : "croston";
	for (int t = 0; t < n; t++)
	{
		fitted[t] = nd > 0 ? factor * z / p : NAN;
		if (nd > 0)
		{
			resid[nres++] = y[t] - fitted[t];
			ss += (y[t] - fitted[t]) * (y[t] - fitted[t]);
		}
		if (y[t] > 0)
		{
			double		tt = t - last;

			if (nd == 0)
			{
				z = y[t];
				p = tt;
			}
			else
			{
				z += alpha * (y[t] - z);
				p += alpha * (tt - p);
			}
			nd++;
			last = t;
		}
	}
	f = nd > 0 ? factor * z / p : 0;
	for (int i = 0; i < h; i++)
		r->mean[i] = f;
	kv_num(&r->params, "alpha", alpha);
	kv_num(&r->params, "size", z);
	kv_num(&r->params, "interval", p);
	set_empirical(r, resid, nres);
	kv_num(&r->stats, "mse", nres > 0 ? ss / nres : NAN);
	return nres > 0 ? ss / nres : HUGE_VAL;
}

/*
 * TSB (Teunter, Syntetos and Babai 2011): the demand probability is updated every period (towards 1 after a
 * demand, towards 0 otherwise) with beta, the size only after demands with alpha; forecast = probability x size.
 * Started at the share of periods with demand and the mean non-zero size.
 */
static double
fit_tsb(FcResult *r, const double *y, int n, int h, double alpha, double beta, double *fitted)
{
	double		z = 0, p = 0, ss = 0;
	double	   *resid = palloc(sizeof(double) * n);
	int			nd = 0, nres = 0;

	for (int t = 0; t < n; t++)
		if (y[t] > 0)
		{
			z += y[t];
			nd++;
		}
	z = nd > 0 ? z / nd : 0;
	p = (double) nd / n;
	strcpy(r->model, "TSB");
	r->method = "tsb";
	for (int t = 0; t < n; t++)
	{
		fitted[t] = p * z;
		resid[nres++] = y[t] - fitted[t];
		ss += (y[t] - fitted[t]) * (y[t] - fitted[t]);
		if (y[t] > 0)
		{
			p += beta * (1 - p);
			z += alpha * (y[t] - z);
		}
		else
			p -= beta * p;
	}
	for (int i = 0; i < h; i++)
		r->mean[i] = p * z;
	kv_num(&r->params, "alpha", alpha);
	kv_num(&r->params, "beta", beta);
	kv_num(&r->params, "probability", p);
	kv_num(&r->params, "size", z);
	set_empirical(r, resid, nres);
	kv_num(&r->stats, "mse", ss / n);
	return ss / n;
}

/* SES started at the first value, alpha on a 0.01 grid by least squares; returns the final level. */
static double
ses_grid(const double *a, int k, double *alpha_out, double *fit_out)
{
	double		best = HUGE_VAL, best_alpha = 0.1, level = a[0];

	for (int g = 1; g <= 99; g++)
	{
		double		al = g / 100.0, l = a[0], ss = 0;

		for (int j = 1; j < k; j++)
		{
			ss += (a[j] - l) * (a[j] - l);
			l += al * (a[j] - l);
		}
		if (ss < best)
		{
			best = ss;
			best_alpha = al;
		}
	}
	level = a[0];
	for (int j = 0; j < k; j++)
	{
		if (fit_out)
			fit_out[j] = j == 0 ? NAN : level;
		if (j > 0)
			level += best_alpha * (a[j] - level);
	}
	*alpha_out = best_alpha;
	return level;
}

/*
 * ADIDA (Nikolopoulos et al. 2011): sum the series into non-overlapping buckets of the mean inter-demand
 * interval (aligned to the end), forecast the buckets with SES, spread the forecast evenly over the bucket.
 */
static double
fit_adida(FcResult *r, const double *y, int n, int h, double *fitted)
{
	int			nd = 0, k, nb, off, nres = 0;
	double	   *a, *af, level, alpha = 0, ss = 0;
	double	   *resid = palloc(sizeof(double) * n);

	for (int t = 0; t < n; t++)
		nd += y[t] > 0;
	k = nd > 0 ? (int) rint((double) n / nd) : 1;
	k = Max(k, 1);
	nb = n / k;
	if (nb < 2)
	{
		k = 1;
		nb = n;
	}
	off = n - nb * k;
	a = palloc0(sizeof(double) * nb);
	af = palloc(sizeof(double) * nb);
	for (int j = 0; j < nb; j++)
		for (int t = 0; t < k; t++)
			a[j] += y[off + j * k + t];
	level = ses_grid(a, nb, &alpha, af);
	strcpy(r->model, "ADIDA");
	r->method = "adida";
	for (int t = 0; t < n; t++)
	{
		int			j = t < off ? -1 : (t - off) / k;

		fitted[t] = j >= 1 ? af[j] / k : NAN;
		if (j >= 1)
		{
			resid[nres++] = y[t] - fitted[t];
			ss += (y[t] - fitted[t]) * (y[t] - fitted[t]);
		}
	}
	for (int i = 0; i < h; i++)
		r->mean[i] = level / k;
	kv_num(&r->params, "aggregation", k);
	kv_num(&r->params, "alpha", alpha);
	set_empirical(r, resid, nres);
	kv_num(&r->stats, "mse", nres > 0 ? ss / nres : NAN);
	return nres > 0 ? ss / nres : HUGE_VAL;
}

/* Fits the ETS models the spec allows (as forecast::ets with restrict = TRUE, no multiplicative trend) and
 * keeps the one with the lowest AICc. Returns false when none could be fitted. */
static bool
ets_auto(const double *y, int n, int m, const char *spec, int max_evals, double ftol, EtsFit *best, int *tried)
{
	bool		positive = true;
	int			len = strlen(spec);
	char		e = spec[0], t = spec[1], s = spec[len - 1];
	bool		damped_fixed = (len == 4);
	bool		found = false;

	for (int i = 0; i < n; i++)
		if (y[i] <= 0)
			positive = false;
	if ((e == 'M' || s == 'M') && !positive)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("multiplicative ETS models need strictly positive data")));
	/* like ets(): no seasonality for m = 1, m > 24 or series no longer than a season */
	if (m <= 1 || m > ETS_MAX_M || n <= m)
	{
		if (s == 'A' || s == 'M')
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("seasonal ETS needs a season length between 2 and %d and more than one season of data",
								   ETS_MAX_M)));
		s = 'N';
	}
	*tried = 0;
	for (int ei = 1; ei <= 2; ei++)
		for (int ti = 0; ti <= 1; ti++)
			for (int di = 0; di <= 1; di++)
				for (int si = 0; si <= 2; si++)
				{
					EtsFit		fit;

					if ((e == 'A' && ei != 1) || (e == 'M' && ei != 2) || (ei == 2 && !positive))
						continue;
					if ((t == 'N' && ti != 0) || (t == 'A' && ti != 1))
						continue;
					if (ti == 0 && di == 1)
						continue;
					if (damped_fixed ? di != 1 : (t == 'A' && len == 3 && di == 1 && spec[1] != 'Z'))
						continue;
					if ((s == 'N' && si != 0) || (s == 'A' && si != 1) || (s == 'M' && si != 2))
						continue;
					if (si == 2 && !positive)
						continue;
					if (ei == 1 && si == 2)
						continue;	/* restrict = TRUE: additive errors with multiplicative season are unstable */
					EtsFitModel(y, n, m, ei, ti, si, di == 1, max_evals, ftol, &fit);
					(*tried)++;
					if (fit.ok && (!found || fit.aicc < best->aicc))
					{
						*best = fit;
						found = true;
					}
				}
	return found;
}

static void
fill_ets(FcResult *r, const EtsFit *fit, int h, int nsim, uint64 seed, bool clip0)
{
	EtsName(fit, r->model, sizeof(r->model));
	r->method = "ets";
	EtsPointForecast(fit, h, r->mean);
	kv_num(&r->params, "alpha", fit->alpha);
	if (fit->trend)
		kv_num(&r->params, "beta", fit->beta);
	if (fit->season)
		kv_num(&r->params, "gamma", fit->gamma);
	if (fit->damped)
		kv_num(&r->params, "phi", fit->phi);
	kv_num(&r->params, "l0", fit->init[0]);
	if (fit->trend)
		kv_num(&r->params, "b0", fit->init[1]);
	if (fit->season)
	{
		appendStringInfoString(&r->params, ", \"s0\": [");
		for (int j = 0; j < fit->m; j++)
		{
			if (j)
				appendStringInfoString(&r->params, ", ");
			json_num(&r->params, fit->init[1 + (fit->trend != 0) + j]);
		}
		appendStringInfoChar(&r->params, ']');
	}
	kv_num(&r->stats, "loglik", fit->loglik);
	kv_num(&r->stats, "aic", fit->aic);
	kv_num(&r->stats, "aicc", fit->aicc);
	kv_num(&r->stats, "bic", fit->bic);
	kv_num(&r->stats, "sigma2", fit->sigma2);
	kv_num(&r->stats, "mse", fit->mse);
	kv_num(&r->stats, "evals", fit->evals);
	r->clip0 = clip0;
	if (EtsIsClass1(fit))
	{
		double	   *var = palloc(sizeof(double) * h);

		r->sd = palloc(sizeof(double) * h);
		EtsClass1Variance(fit, h, var);
		for (int i = 0; i < h; i++)
			r->sd[i] = sqrt(var[i]);
		r->kind = D_NORMAL;
	}
	else
	{
		double	   *paths = palloc(sizeof(double) * nsim * h);
		uint64_t	rng = seed;

		EtsSimulate(fit, h, nsim, &rng, paths);
		/* transpose to one sorted column per step */
		r->paths = palloc(sizeof(double) * nsim * h);
		for (int i = 0; i < h; i++)
		{
			for (int k = 0; k < nsim; k++)
				r->paths[(size_t) i * nsim + k] = paths[(size_t) k * h + i];
			sort_doubles(r->paths + (size_t) i * nsim, nsim);
		}
		pfree(paths);
		r->nsim = nsim;
		r->kind = D_PATHS;
	}
}

/* ---------- Theta, the M4 Comb benchmark and combinations (issue 18) ---------- */

/* ETS(A,N,N), (A,A,N) or (A,Ad,N) by MSE on the seasonally adjusted x, as ses()/holt() in the M4 benchmarks;
 * the means and standard deviations are multiplied by the seasonal index of each step. */
static bool
fit_adjusted_ets(FcResult *r, const double *x, const double *index, int n, int m, int h, int trend, bool damped,
				 const FcConfig *cfg, const char *name, const char *method)
{
	EtsFit		fit;
	double	   *var;

	EtsFitModelCrit(x, n, 1, ETS_ADD, trend, ETS_NONE, damped, cfg->max_evals, cfg->tolerance, true, &fit);
	if (!fit.ok)
		return false;
	strcpy(r->model, name);
	r->method = method;
	EtsPointForecast(&fit, h, r->mean);
	var = palloc(sizeof(double) * h);
	EtsClass1Variance(&fit, h, var);
	r->sd = palloc(sizeof(double) * h);
	for (int i = 0; i < h; i++)
	{
		double		s = index[(n + i) % m];

		r->mean[i] *= s;
		r->sd[i] = sqrt(var[i]) * s;
	}
	r->kind = D_NORMAL;
	kv_num(&r->params, "alpha", fit.alpha);
	if (trend)
		kv_num(&r->params, "beta", fit.beta);
	if (damped)
		kv_num(&r->params, "phi", fit.phi);
	kv_num(&r->params, "l0", fit.init[0]);
	if (trend)
		kv_num(&r->params, "b0", fit.init[1]);
	kv_num(&r->stats, "sigma2", fit.sigma2);
	kv_num(&r->stats, "mse", fit.mse);
	return true;
}

static void
append_index(FcResult *r, bool seasonal, const double *index, int m)
{
	appendStringInfo(&r->params, "%s\"seasonal\": %s", r->params.len ? ", " : "", seasonal ? "true" : "false");
	if (seasonal)
	{
		appendStringInfoString(&r->params, ", \"season_index\": [");
		for (int j = 0; j < m; j++)
		{
			if (j)
				appendStringInfoString(&r->params, ", ");
			json_num(&r->params, index[j]);
		}
		appendStringInfoChar(&r->params, ']');
	}
}

/* Turns r into the combination of comp[0..k): the (weighted) mean or the median, of the means and quantiles. */
static void
make_combo(FcResult *r, FcResult *comp, int k, bool median, const double *weight, int h, const char *label)
{
	StringInfoData name;

	r->kind = D_COMBO;
	r->comp = comp;
	r->ncomp = k;
	r->median = median;
	r->weight = palloc(sizeof(double) * k);
	for (int c = 0; c < k; c++)
		r->weight[c] = weight ? weight[c] : 1.0 / k;
	for (int i = 0; i < h; i++)
		r->mean[i] = combo_value(r, i, NAN);
	initStringInfo(&name);
	appendStringInfo(&name, "%s(", label);
	appendStringInfoString(&r->params, "\"components\": [");
	for (int c = 0; c < k; c++)
	{
		appendStringInfo(&name, "%s%s", c ? "," : "", comp[c].model);
		appendStringInfo(&r->params, "%s{\"model\": \"%s\", \"weight\": ", c ? ", " : "", comp[c].model);
		json_num(&r->params, r->weight[c]);
		if (comp[c].params.len)
			appendStringInfo(&r->params, ", \"params\": {%s}", comp[c].params.data);
		appendStringInfoChar(&r->params, '}');
	}
	appendStringInfoChar(&r->params, ']');
	appendStringInfoChar(&name, ')');
	strlcpy(r->model, name.data, sizeof(r->model));
}

/* The M4 "Comb" benchmark: the mean of SES, Holt and damped Holt on the seasonally adjusted series. */
static bool
fit_comb(FcResult *r, const double *y, int n, int m, int h, const FcConfig *cfg)
{
	int			mm = Max(m, 1), k = 0;
	double	   *x = palloc(sizeof(double) * n), *index = palloc(sizeof(double) * mm);
	FcResult   *comp = palloc(sizeof(FcResult) * 3);
	bool		seasonal = FcSeasonalAdjust(y, n, mm, x, index);

	result_init(&comp[k], h);
	if (fit_adjusted_ets(&comp[k], x, index, n, mm, h, ETS_NONE, false, cfg, "SES", "ses"))
		result_init(&comp[++k], h);
	if (fit_adjusted_ets(&comp[k], x, index, n, mm, h, ETS_ADD, false, cfg, "HOLT", "holt"))
		result_init(&comp[++k], h);
	if (fit_adjusted_ets(&comp[k], x, index, n, mm, h, ETS_ADD, true, cfg, "DAMPED", "damped"))
		k++;
	if (k == 0)
		return false;
	make_combo(r, comp, k, false, NULL, h, "COMB");
	strcpy(r->model, "COMB");
	r->method = "comb";
	append_index(r, seasonal, index, mm);
	return true;
}

/* One of SES, Holt, damped Holt on the seasonally adjusted series. */
static bool
fit_single_adjusted(FcResult *r, const double *y, int n, int m, int h, const FcConfig *cfg, int model)
{
	int			mm = Max(m, 1);
	double	   *x = palloc(sizeof(double) * n), *index = palloc(sizeof(double) * mm);
	bool		seasonal = FcSeasonalAdjust(y, n, mm, x, index), ok;

	if (model == M_SES)
		ok = fit_adjusted_ets(r, x, index, n, mm, h, ETS_NONE, false, cfg, "SES", "ses");
	else if (model == M_HOLT)
		ok = fit_adjusted_ets(r, x, index, n, mm, h, ETS_ADD, false, cfg, "HOLT", "holt");
	else
		ok = fit_adjusted_ets(r, x, index, n, mm, h, ETS_ADD, true, cfg, "DAMPED", "damped");
	if (ok)
		append_index(r, seasonal, index, mm);
	return ok;
}

static bool
fit_theta(FcResult *r, const double *y, int n, int m, int h, const FcConfig *cfg)
{
	ThetaFit	fit;

	r->sd = palloc(sizeof(double) * h);
	ThetaForecast(y, n, m, h, cfg->max_evals, cfg->tolerance, &fit, r->mean, r->sd);
	if (!fit.ok)
		return false;
	strcpy(r->model, "THETA");
	r->method = "theta";
	r->kind = D_NORMAL;
	kv_num(&r->params, "alpha", fit.alpha);
	kv_num(&r->params, "l0", fit.l0);
	kv_num(&r->params, "level", fit.level);
	kv_num(&r->params, "drift", fit.drift);
	append_index(r, fit.seasonal, fit.index, Max(m, 1));
	kv_num(&r->stats, "sigma2", fit.sigma2);
	kv_num(&r->stats, "mse", fit.mse);
	return true;
}

static bool ets_auto(const double *y, int n, int m, const char *spec, int max_evals, double ftol, EtsFit *best,
					 int *tried);
static void fill_ets(FcResult *r, const EtsFit *fit, int h, int nsim, uint64 seed, bool clip0);

static void
kv_array(StringInfo s, const char *key, const double *v, int k)
{
	appendStringInfo(s, "%s\"%s\": [", s->len ? ", " : "", key);
	for (int i = 0; i < k; i++)
	{
		if (i)
			appendStringInfoString(s, ", ");
		json_num(s, v[i]);
	}
	appendStringInfoChar(s, ']');
}

/* ARIMA: the fixed order of the options, or auto.arima's stepwise search (arima.c) */
static bool
fit_arima(FcResult *r, const double *y, int n, int m, int h, const FcConfig *cfg)
{
	ArimaFit	fit;
	int			tried = 1;
	const int32 *o = cfg->arima_order;

	bool		flat = true;

	for (int t = 1; t < n; t++)
		if (y[t] != y[0])
			flat = false;
	if (flat && n > 0)
	{
		/* as auto.arima: a constant series is ARIMA(0,0,0) with its mean, and zero-width intervals */
		fit_naive(r, y, n, h, 1);
		strcpy(r->model, "ARIMA(0,0,0) with mean");
		r->method = "arima";
		r->note = "constant series";
		return true;
	}
	if (o[0] >= 0)
	{
		bool		c = cfg->arima_constant >= 0 ? cfg->arima_constant == 1 : (o[1] + o[4] <= 1);

		if (m <= 1 && o[3] + o[4] + o[5] > 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("a seasonal ARIMA order needs a season length above 1")));
		if (m > ARIMA_MAX_M && o[3] + o[4] + o[5] > 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("seasonal ARIMA terms are supported for season lengths up to %d, not %d",
								   ARIMA_MAX_M, m)));
		if (c && o[1] + o[4] > 1)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("an ARIMA model with %d differences cannot have a constant", o[1] + o[4])));
		ArimaFitOrder(y, n, m, o[0], o[1], o[2], o[3], o[4], o[5], c, &fit);
	}
	else if (!ArimaAuto(y, n, m, &fit, &tried))
		return false;
	if (!fit.ok)
		return false;
	ArimaName(&fit, r->model, sizeof(r->model));
	r->method = "arima";
	r->sd = palloc(sizeof(double) * h);
	ArimaForecast(&fit, y, n, h, r->mean, r->sd);
	r->kind = D_NORMAL;
	appendStringInfo(&r->params, "\"order\": [%d, %d, %d], \"seasonal_order\": [%d, %d, %d], \"period\": %d",
					 fit.p, fit.d, fit.q, fit.P, fit.D, fit.Q, fit.m);
	kv_array(&r->params, "ar", fit.ar, fit.p);
	kv_array(&r->params, "ma", fit.ma, fit.q);
	kv_array(&r->params, "sar", fit.sar, fit.P);
	kv_array(&r->params, "sma", fit.sma, fit.Q);
	if (fit.constant)
		kv_num(&r->params, fit.d + fit.D == 0 ? "intercept" : "drift",
			   fit.d + fit.D == 0 ? fit.mu : fit.mu / (fit.D ? fit.m : 1));
	kv_num(&r->stats, "loglik", fit.loglik);
	kv_num(&r->stats, "aic", fit.aic);
	kv_num(&r->stats, "aicc", fit.aicc);
	kv_num(&r->stats, "bic", fit.bic);
	kv_num(&r->stats, "sigma2", fit.sigma2);
	kv_num(&r->stats, "nobs", fit.nobs);
	kv_num(&r->stats, "models_tried", tried);
	return true;
}

/* Fits one component model; false when it cannot be fitted to this series. */
static bool
fit_component(FcResult *r, int model, const FcConfig *cfg, const double *y, int n, int h, bool clip0)
{
	int			m = cfg->season_length;
	EtsFit		fit;
	int			tried = 0;

	r->clip0 = clip0;
	switch (model)
	{
		case M_ETS:
			if (n < 3 || !ets_auto(y, n, m, cfg->ets_spec, cfg->max_evals, cfg->tolerance, &fit, &tried))
				return false;
			fill_ets(r, &fit, h, cfg->nsim, cfg->seed, clip0);
			kv_num(&r->stats, "models_tried", tried);
			return true;
		case M_THETA:
			return fit_theta(r, y, n, m, h, cfg);
		case M_ARIMA:
			return fit_arima(r, y, n, m, h, cfg);
		case M_COMB:
			return fit_comb(r, y, n, m, h, cfg);
		case M_SES:
		case M_HOLT:
		case M_DAMPED:
			return fit_single_adjusted(r, y, n, m, h, cfg, model);
		case M_NAIVE:
		case M_SNAIVE:
			/* as the model alone: naive intervals are not clipped */
			fit_naive(r, y, n, h, model == M_NAIVE ? 1 : m);
			r->clip0 = false;
			return true;
	}
	return false;
}

/* The components a combination uses: the option's or the default ones. */
static int
combo_components(const FcConfig *cfg, int *comp)
{
	if (cfg->ncomp > 0)
	{
		memcpy(comp, cfg->comp, sizeof(int) * cfg->ncomp);
		return cfg->ncomp;
	}
	memcpy(comp, default_components, sizeof(default_components));
	return lengthof(default_components);
}

/* Mean or median of the components that can be fitted; false when none can. */
static bool
fit_combination(FcResult *r, const FcConfig *cfg, const double *y, int n, int h, bool median, bool clip0)
{
	int			want[FC_MAX_COMP], nw = combo_components(cfg, want), k = 0;
	FcResult   *comp = palloc(sizeof(FcResult) * nw);

	for (int c = 0; c < nw; c++)
	{
		result_init(&comp[k], h);
		if (fit_component(&comp[k], want[c], cfg, y, n, h, clip0))
			k++;
	}
	if (k == 0)
		return false;
	make_combo(r, comp, k, median, NULL, h, median ? "MEDIAN" : "MEAN");
	r->method = median ? "median" : "mean";
	r->clip0 = clip0;
	return true;
}

/*
 * select: the component, the mean or the median with the lowest mean absolute error over a rolling-origin
 * check inside the sample (origins n-H-(k-1)s, H = min(horizon, n/3), stride s = max(1, H/2)), refitted on
 * the whole series. Falls back to the mean when the series is too short for one origin of at least 7 points.
 * weighted: instead, the mean of all components with weights proportional to 1 / their MAE in the same check.
 */
static bool
fit_select(FcResult *r, const FcConfig *cfg, const double *y, int n, int h, bool clip0, bool weighted)
{
	int			want[FC_MAX_COMP], nw = combo_components(cfg, want);
	int			H = Min(h, Max(1, n / 3)), stride = Max(1, H / 2), norig = 0, best = nw;
	double		err[FC_MAX_COMP + 2], v[FC_MAX_COMP];
	const char *label[FC_MAX_COMP + 2];
	int			cnt = 0;

	memset(err, 0, sizeof(err));
	for (int o = cfg->origins - 1; o >= 0; o--)
	{
		int			cut = n - H - o * stride;
		FcResult	c[FC_MAX_COMP];
		bool		all = true;

		if (cut < 7)
			continue;
		for (int j = 0; j < nw && all; j++)
		{
			result_init(&c[j], H);
			all = fit_component(&c[j], want[j], cfg, y, cut, H, clip0);
		}
		if (!all)
			continue;			/* an origin counts only when every candidate could be fitted */
		norig++;
		for (int i = 0; i < H; i++)
		{
			double		mean = 0, med;

			for (int j = 0; j < nw; j++)
			{
				v[j] = c[j].mean[i];
				mean += v[j] / nw;
				err[j] += fabs(y[cut + i] - v[j]);
			}
			sort_doubles(v, nw);
			med = nw % 2 ? v[nw / 2] : 0.5 * (v[nw / 2 - 1] + v[nw / 2]);
			err[nw] += fabs(y[cut + i] - mean);
			err[nw + 1] += fabs(y[cut + i] - med);
			cnt++;
		}
	}
	if (weighted)
	{
		/* weights proportional to 1 / MAE of each component (equal without a usable origin) */
		FcResult   *comp = palloc(sizeof(FcResult) * nw);
		double		w[FC_MAX_COMP], tot = 0;
		int			k = 0;

		for (int j = 0; j < nw; j++)
		{
			result_init(&comp[k], h);
			if (!fit_component(&comp[k], want[j], cfg, y, n, h, clip0))
				continue;
			w[k] = norig > 0 ? 1.0 / Max(err[j] / cnt, 1e-12) : 1.0;
			tot += w[k];
			k++;
		}
		if (k == 0)
			return false;
		for (int j = 0; j < k; j++)
			w[j] /= tot;
		make_combo(r, comp, k, false, w, h, "WEIGHTED");
		r->method = "weighted";
		r->clip0 = clip0;
		appendStringInfo(&r->params, ", \"origins\": %d, \"holdout\": %d, \"selection_mae\": {", norig, H);
		for (int j = 0; j < nw; j++)
		{
			appendStringInfo(&r->params, "%s\"%s\": ", j ? ", " : "", model_names[want[j]]);
			json_num(&r->params, cnt > 0 ? err[j] / cnt : NAN);
		}
		appendStringInfoChar(&r->params, '}');
		return true;
	}
	if (norig > 0)
	{
		best = 0;
		for (int j = 1; j < nw + 2; j++)
			if (err[j] < err[best])
				best = j;
	}
	if (best < nw)
	{
		if (!fit_component(r, want[best], cfg, y, n, h, clip0))
			return fit_combination(r, cfg, y, n, h, false, clip0);
	}
	else if (!fit_combination(r, cfg, y, n, h, best == nw + 1, clip0))
		return false;
	for (int j = 0; j < nw; j++)
		label[j] = model_names[want[j]];
	label[nw] = "mean";
	label[nw + 1] = "median";
	appendStringInfo(&r->params, "%s\"selected\": \"%s\", \"origins\": %d, \"holdout\": %d, \"selection_mae\": {",
					 r->params.len ? ", " : "", label[best], norig, H);
	for (int j = 0; j < nw + 2; j++)
	{
		appendStringInfo(&r->params, "%s\"%s\": ", j ? ", " : "", label[j]);
		json_num(&r->params, cnt > 0 ? err[j] / cnt : NAN);
	}
	appendStringInfoChar(&r->params, '}');
	return true;
}

static double
window_mse(const double *y, const double *fitted, int from, int n)
{
	double		ss = 0;
	int			k = 0;

	for (int t = from; t < n; t++)
		if (!isnan(fitted[t]))
		{
			ss += (y[t] - fitted[t]) * (y[t] - fitted[t]);
			k++;
		}
	return k > 0 ? ss / k : HUGE_VAL;
}

/* Runs the configured (or automatically chosen) model on y. */
static void
run_model(FcResult *r, const FcConfig *cfg, const double *y, int n, const char **dclass, double *adi, double *cv2)
{
	int			h = cfg->horizon, nd = 0, first = -1, model = cfg->model;
	double		mn = HUGE_VAL, mx = -HUGE_VAL, ssum = 0, ssq = 0;
	bool		has_negative;
	double	   *fitted = palloc(sizeof(double) * n);
	EtsFit		fit;
	int			tried = 0;

	for (int t = 0; t < n; t++)
	{
		mn = Min(mn, y[t]);
		mx = Max(mx, y[t]);
		if (y[t] > 0)
		{
			nd++;
			ssum += y[t];
			ssq += y[t] * y[t];
			if (first < 0)
				first = t;
		}
	}
	has_negative = mn < 0;
	*adi = nd > 0 ? (double) n / nd : NAN;
	if (nd >= 2)
	{
		double		mean = ssum / nd, var = (ssq - nd * mean * mean) / (nd - 1);

		*cv2 = Max(var, 0) / (mean * mean);
	}
	else
		*cv2 = nd == 1 ? 0 : NAN;
	if (nd == 0)
		*dclass = "none";
	else if (*adi < 1.32)
		*dclass = *cv2 < 0.49 ? "smooth" : "erratic";
	else
		*dclass = *cv2 < 0.49 ? "intermittent" : "lumpy";

	if ((model == M_CROSTON || model == M_SBA || model == M_TSB || model == M_ADIDA) && has_negative)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("intermittent-demand models need non-negative demand"),
						errdetail("Negative quantities (returns) are allowed only for the additive ETS models, naive and snaive.")));

	if (model == M_AUTO)
	{
		if (mn == mx)
		{
			/* constant (including all-zero) series: the constant, with zero-width intervals */
			fit_naive(r, y, n, h, 1);
			strcpy(r->model, mx == 0 ? "ZERO" : "CONSTANT");
			r->method = "constant";
			r->note = "constant series";
			return;
		}
		if (n < 7)
		{
			fit_naive(r, y, n, h, 1);
			r->note = "fewer than 7 observations: naive fallback";
			return;
		}
		if (!has_negative && *adi >= 1.32)
		{
			/* intermittent or lumpy: the candidate with the lowest one-step in-sample MSE after the first demand */
			FcResult	cand[5];
			double		mse[5];
			int			best = 0;

			for (int c = 0; c < 5; c++)
				result_init(&cand[c], h);
			fit_croston(&cand[0], y, n, h, cfg->alpha, false, fitted);
			mse[0] = window_mse(y, fitted, first + 1, n);
			fit_croston(&cand[1], y, n, h, cfg->alpha, true, fitted);
			mse[1] = window_mse(y, fitted, first + 1, n);
			fit_tsb(&cand[2], y, n, h, cfg->alpha, cfg->beta, fitted);
			mse[2] = window_mse(y, fitted, first + 1, n);
			fit_adida(&cand[3], y, n, h, fitted);
			mse[3] = window_mse(y, fitted, first + 1, n);
			mse[4] = HUGE_VAL;
			EtsFitModel(y, n, 1, ETS_ADD, ETS_NONE, ETS_NONE, false, cfg->max_evals, cfg->tolerance, &fit);
			if (fit.ok)
			{
				fill_ets(&cand[4], &fit, h, cfg->nsim, cfg->seed, true);
				EtsFitted(&fit, y, n, fitted);
				mse[4] = window_mse(y, fitted, first + 1, n);
			}
			for (int c = 1; c < 5; c++)
				if (mse[c] < mse[best])
					best = c;
			*r = cand[best];
			return;
		}
		if (ets_auto(y, n, cfg->season_length, "ZZZ", cfg->max_evals, cfg->tolerance, &fit, &tried))
		{
			FcResult   *comp;

			if (!cfg->auto_combo)
			{
				fill_ets(r, &fit, h, cfg->nsim, cfg->seed, mn >= 0);
				kv_num(&r->stats, "models_tried", tried);
				return;
			}
			/* the mean of the AICc-best ETS and Theta (seasonal periods) or damped Holt (m = 1) */
			comp = palloc(sizeof(FcResult) * 2);
			result_init(&comp[0], h);
			result_init(&comp[1], h);
			fill_ets(&comp[0], &fit, h, cfg->nsim, cfg->seed, mn >= 0);
			if (fit_component(&comp[1], cfg->season_length > 1 ? M_THETA : M_DAMPED, cfg, y, n, h, mn >= 0))
			{
				make_combo(r, comp, 2, false, NULL, h, "MEAN");
				r->method = "mean";
				r->clip0 = mn >= 0;
			}
			else
				*r = comp[0];
			kv_num(&r->stats, "models_tried", tried);
			return;
		}
		fit_naive(r, y, n, h, cfg->season_length);
		r->note = "no ETS model could be fitted: naive fallback";
		return;
	}
	switch (model)
	{
		case M_ETS:
			if (n < 3)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("ETS needs at least 3 observations, the series has %d", n)));
			if (!ets_auto(y, n, cfg->season_length, cfg->ets_spec, cfg->max_evals, cfg->tolerance, &fit, &tried))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("ETS model %s cannot be fitted to a series of %d observations",
									   cfg->ets_spec, n),
								errhint("Shorter series need fewer parameters: use model auto, which falls back to naive.")));
			fill_ets(r, &fit, h, cfg->nsim, cfg->seed, mn >= 0);
			kv_num(&r->stats, "models_tried", tried);
			break;
		case M_CROSTON:
		case M_SBA:
			fit_croston(r, y, n, h, cfg->alpha, model == M_SBA, fitted);
			break;
		case M_TSB:
			fit_tsb(r, y, n, h, cfg->alpha, cfg->beta, fitted);
			break;
		case M_ADIDA:
			fit_adida(r, y, n, h, fitted);
			break;
		case M_NAIVE:
			fit_naive(r, y, n, h, 1);
			break;
		case M_SNAIVE:
			fit_naive(r, y, n, h, cfg->season_length);
			break;
		case M_THETA:
		case M_ARIMA:
		case M_COMB:
		case M_SES:
		case M_HOLT:
		case M_DAMPED:
			if (!fit_component(r, model, cfg, y, n, h, mn >= 0))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("forecast model %s cannot be fitted to a series of %d observations",
									   model_names[model], n),
								errhint("Shorter series need fewer parameters: use model auto, which falls back to naive.")));
			r->clip0 = mn >= 0;
			break;
		default:
			if (!(model == M_SELECT || model == M_WEIGHTED ? fit_select(r, cfg, y, n, h, mn >= 0, model == M_WEIGHTED)
				  : fit_combination(r, cfg, y, n, h, model == M_MEDIAN, mn >= 0)))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("no component of the forecast %s can be fitted to a series of %d observations",
									   model_names[model], n),
								errhint("Shorter series need fewer parameters: use model auto, which falls back to naive.")));
			break;
	}
}

/* ---------- periods and output ---------- */

static int64
period_of(int64 key, int freq)
{
	int			y, m, d;

	if (freq == FREQ_DAY || freq == FREQ_INDEX || freq == FREQ_WEEK)
		return key;
	j2date((int) key + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (freq == FREQ_MONTH)
		return (int64) y * 12 + (m - 1);
	if (freq == FREQ_QUARTER)
		return (int64) y * 4 + (m - 1) / 3;
	return y;
}

/* The date of a period index (months, quarters, years: their first day). */
static void
append_period_date(StringInfo s, int64 idx, int freq)
{
	int			y, m, d;

	switch (freq)
	{
		case FREQ_DAY:
		case FREQ_WEEK:
			j2date((int) idx + POSTGRES_EPOCH_JDATE, &y, &m, &d);
			break;
		case FREQ_MONTH:
			y = (int) (idx >= 0 ? idx / 12 : (idx - 11) / 12);
			m = (int) (idx - (int64) y * 12) + 1;
			d = 1;
			break;
		case FREQ_QUARTER:
			y = (int) (idx >= 0 ? idx / 4 : (idx - 3) / 4);
			m = (int) (idx - (int64) y * 4) * 3 + 1;
			d = 1;
			break;
		default:
			y = (int) idx;
			m = 1;
			d = 1;
			break;
	}
	appendStringInfo(s, "\"%04d-%02d-%02d\"", y, m, d);
}

typedef struct KeyVal
{
	int64		key;
	double		val;
} KeyVal;

static int
cmp_keyval(const void *a, const void *b)
{
	int64		x = ((const KeyVal *) a)->key, y = ((const KeyVal *) b)->key;

	return x < y ? -1 : x > y ? 1 : 0;
}

static void
append_array(StringInfo s, const char *key, const double *v, int h)
{
	appendStringInfo(s, ", \"%s\": [", key);
	for (int i = 0; i < h; i++)
	{
		if (i)
			appendStringInfoString(s, ", ");
		json_num(s, v[i]);
	}
	appendStringInfoChar(s, ']');
}

/* Fits the model to the complete series y (span periods, the last one "last") and renders the jsonb result. */
static Datum
forecast_render(const FcConfig *cfg, const double *y, int64 span, int64 last, int64 step)
{
	FcResult	r;
	StringInfoData out;
	const char *dclass;
	double		adi, cv2, *tmp;
	int			h = cfg->horizon;
	static const double lv[4] = {0.1, 0.9, 0.025, 0.975};
	static const char *const lvname[4] = {"lo80", "hi80", "lo95", "hi95"};

	result_init(&r, h);
	run_model(&r, cfg, y, (int) span, &dclass, &adi, &cv2);

	initStringInfo(&out);
	appendStringInfo(&out, "{\"model\": \"%s\", \"method\": \"%s\", \"demand_class\": \"%s\"",
					 r.model, r.method, dclass);
	if (r.note)
		appendStringInfo(&out, ", \"note\": \"%s\"", r.note);
	appendStringInfo(&out, ", \"n\": %lld, \"horizon\": %d, \"frequency\": \"%s\", \"season_length\": %d",
					 (long long) span, h, freq_names[cfg->freq], cfg->season_length);
	appendStringInfoString(&out, ", \"adi\": ");
	json_num(&out, adi);
	appendStringInfoString(&out, ", \"cv2\": ");
	json_num(&out, cv2);
	appendStringInfo(&out, ", \"params\": {%s}, \"stats\": {%s}", r.params.data, r.stats.data);
	if (cfg->freq == FREQ_INDEX)
		appendStringInfo(&out, ", \"last_period\": %lld", (long long) last);
	else
	{
		appendStringInfoString(&out, ", \"dates\": [");
		for (int i = 0; i < h; i++)
		{
			if (i)
				appendStringInfoString(&out, ", ");
			append_period_date(&out, last + (int64) (i + 1) * step, cfg->freq);
		}
		appendStringInfoChar(&out, ']');
	}
	append_array(&out, "mean", r.mean, h);
	tmp = palloc(sizeof(double) * h);
	for (int k = 0; k < 4; k++)
	{
		for (int i = 0; i < h; i++)
			tmp[i] = result_quantile(&r, i, lv[k]);
		append_array(&out, lvname[k], tmp, h);
	}
	appendStringInfoString(&out, ", \"quantiles\": {");
	for (int q = 0; q < cfg->nquant; q++)
	{
		char	   *t = float8out_internal(cfg->quant[q]);

		for (int i = 0; i < h; i++)
			tmp[i] = result_quantile(&r, i, cfg->quant[q]);
		appendStringInfo(&out, "%s\"%s\": [", q ? ", " : "", t);
		for (int i = 0; i < h; i++)
		{
			if (i)
				appendStringInfoString(&out, ", ");
			json_num(&out, tmp[i]);
		}
		appendStringInfoChar(&out, ']');
	}
	appendStringInfoString(&out, "}}");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
}

Datum
forecast_final(PG_FUNCTION_ARGS)
{
	FcState    *st;
	FcConfig   *cfg;
	KeyVal	   *kv;
	int64		n, first, last, span, step;
	double	   *y;

	(void) RmAggContext(fcinfo, "forecast_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (FcState *) PG_GETARG_POINTER(0);
	cfg = &st->cfg;
	if (st->n == 0)
		PG_RETURN_NULL();

	/* sort a copy: the state stays untouched so the final function can run again (window use) */
	n = st->n;
	kv = palloc(sizeof(KeyVal) * n);
	for (int64 i = 0; i < n; i++)
	{
		kv[i].key = period_of(st->key[i], cfg->freq);
		kv[i].val = st->val[i];
	}
	qsort(kv, n, sizeof(KeyVal), cmp_keyval);
	step = cfg->freq == FREQ_WEEK ? 7 : 1;
	for (int64 i = 1; i < n; i++)
	{
		if (kv[i].key == kv[i - 1].key)
			ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION),
							errmsg("duplicate period in forecast series"),
							errdetail("Two rows fall in the same %s (%s %lld).", freq_names[cfg->freq],
									  cfg->freq == FREQ_INDEX ? "index" : "period",
									  (long long) kv[i].key),
							errhint("Aggregate the series to one row per period first.")));
		if ((kv[i].key - kv[0].key) % step != 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("weekly forecast dates must be whole weeks apart")));
		if (kv[i].key - kv[i - 1].key != step && !cfg->gaps_zero)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("forecast series has missing periods"),
							errhint("Use the option {\"gaps\": \"zero\"} to treat missing periods as zero demand.")));
	}
	first = kv[0].key;
	last = kv[n - 1].key;
	span = (last - first) / step + 1;
	if (span > FC_MAX_PERIODS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a forecast series may span at most %d periods", FC_MAX_PERIODS)));
	y = palloc0(sizeof(double) * span);
	for (int64 i = 0; i < n; i++)
		y[(kv[i].key - first) / step] = kv[i].val;

	PG_RETURN_DATUM(forecast_render(cfg, y, span, last, step));
}

/* forecast_array(y float8[], horizon int, season_length int, options jsonb): one series as an array, for use in
 * parallel scans (an aggregate's final function always runs in the leader; a function in the target list of a
 * parallel scan runs in the workers). */
PG_FUNCTION_INFO_V1(forecast_array);
Datum
forecast_array(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	FcConfig	cfg;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	double	   *y;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("forecast horizon must not be null")));
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 1 || PG_GETARG_INT32(2) > 1000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("season length must be between 1 and 1000")));
	config_init(&cfg, PG_GETARG_INT32(1), false, PG_GETARG_INT32(2), PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("forecast_array needs a one-dimensional array")));
	deconstruct_array(arr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n == 0)
		PG_RETURN_NULL();
	if (n > FC_MAX_PERIODS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a forecast series may span at most %d periods", FC_MAX_PERIODS)));
	y = palloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("forecast_array elements must not be null"),
							errhint("Replace missing periods by 0 (coalesce) or use the forecast_series aggregate.")));
		y[i] = DatumGetFloat8(elems[i]);
		RetailMidCheckFinite(y[i], "forecast value");
	}
	PG_RETURN_DATUM(forecast_render(&cfg, y, n, n, 1));
}
