/* demand/promo.c: retail_mid.ols(y, x[]), a parallel least-squares aggregate for promotion attribution. */
/*
 * The sufficient statistics X'X, X'y, y'y, n are summed, so partial states combine exactly. Used for
 * log-log demand models of units on own price, deal and feature, whose coefficients are elasticities and uplifts.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"

#include "common/retail_mid.h"
#include "common/rm_agg.h"

PG_FUNCTION_INFO_V1(ols_trans);
PG_FUNCTION_INFO_V1(ols_combine);
PG_FUNCTION_INFO_V1(ols_serial);
PG_FUNCTION_INFO_V1(ols_deserial);
PG_FUNCTION_INFO_V1(ols_final);

#define OLS_MAX_K 32
#define OLS_MAGIC 0x4F4C5331	/* "OLS1" */

typedef struct OlsState
{
	int32		k;
	int64		n;
	double		yy;
	double		x0sum;			/* sum of the first regressor: n when it is the intercept */
	double		xy[OLS_MAX_K];
	double		xx[OLS_MAX_K * OLS_MAX_K];
} OlsState;

/* ols(y float8, x float8[]): rows with a NULL y or x are skipped; a NULL element or a non-finite value is an error */
Datum
ols_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx;
	OlsState   *st = PG_ARGISNULL(0) ? NULL : (OlsState *) PG_GETARG_POINTER(0);
	ArrayType  *arr;
	Datum	   *el;
	bool	   *nulls;
	int			k;
	double		y, x[OLS_MAX_K];

	ctx = RmAggContext(fcinfo, "ols_trans");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		/*
		 * A row without response or regressors does not enter the fit. Before the first complete row there is
		 * no state yet: it must stay SQL NULL, not become a non-NULL null pointer that the final, serial and
		 * combine functions would dereference.
		 */
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	y = PG_GETARG_FLOAT8(1);
	RetailMidCheckFinite(y, "ols response");
	arr = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("ols regressors must be a one-dimensional array")));
	deconstruct_array(arr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &el, &nulls, &k);
	if (k < 1 || k > OLS_MAX_K)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("ols needs between 1 and %d regressors", OLS_MAX_K)));
	for (int i = 0; i < k; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("ols regressors must not be null")));
		x[i] = DatumGetFloat8(el[i]);
		RetailMidCheckFinite(x[i], "ols regressor");
	}
	if (st == NULL)
	{
		st = MemoryContextAllocZero(ctx, sizeof(OlsState));
		st->k = k;
	}
	else if (st->k != k)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("ols regressor arrays differ in length (%d and %d)", st->k, k)));
	st->n++;
	st->yy += y * y;
	st->x0sum += x[0];
	for (int a = 0; a < k; a++)
	{
		st->xy[a] += x[a] * y;
		for (int b = 0; b < k; b++)
			st->xx[a * OLS_MAX_K + b] += x[a] * x[b];
	}
	PG_RETURN_POINTER(st);
}

Datum
ols_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx;
	OlsState   *a = PG_ARGISNULL(0) ? NULL : (OlsState *) PG_GETARG_POINTER(0);
	OlsState   *b = PG_ARGISNULL(1) ? NULL : (OlsState *) PG_GETARG_POINTER(1);

	ctx = RmAggContext(fcinfo, "ols_combine");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = MemoryContextAlloc(ctx, sizeof(OlsState));
		memcpy(a, b, sizeof(OlsState));
		PG_RETURN_POINTER(a);
	}
	if (a->k != b->k)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("ols regressor arrays differ in length (%d and %d)", a->k, b->k)));
	a->n += b->n;
	a->yy += b->yy;
	a->x0sum += b->x0sum;
	for (int i = 0; i < OLS_MAX_K; i++)
		a->xy[i] += b->xy[i];
	for (int i = 0; i < OLS_MAX_K * OLS_MAX_K; i++)
		a->xx[i] += b->xx[i];
	PG_RETURN_POINTER(a);
}

Datum
ols_serial(PG_FUNCTION_ARGS)
{
	OlsState   *st = (OlsState *) PG_GETARG_POINTER(0);
	bytea	   *out = palloc(VARHDRSZ + 4 + sizeof(OlsState));
	int32		magic = OLS_MAGIC;

	SET_VARSIZE(out, VARHDRSZ + 4 + sizeof(OlsState));
	memcpy(VARDATA(out), &magic, 4);
	memcpy(VARDATA(out) + 4, st, sizeof(OlsState));
	PG_RETURN_BYTEA_P(out);
}

Datum
ols_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext ctx;
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	OlsState   *st;
	int32		magic;

	ctx = RmAggContext(fcinfo, "ols_deserial");
	if (VARSIZE_ANY_EXHDR(b) != 4 + sizeof(OlsState))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid ols state: bad length")));
	memcpy(&magic, VARDATA_ANY(b), 4);
	if (magic != OLS_MAGIC)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid ols state: bad magic")));
	st = MemoryContextAlloc(ctx, sizeof(OlsState));
	memcpy(st, VARDATA_ANY(b) + 4, sizeof(OlsState));
	if (st->k < 1 || st->k > OLS_MAX_K || st->n < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid ols state: bad dimensions")));
	PG_RETURN_POINTER(st);
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

/*
 * Solves X'X b = X'y by Gauss-Jordan with partial pivoting on a copy (the state is not modified, so the
 * final function may run repeatedly), and returns jsonb {n, k, coef[], se[], r2, sigma}; NULL when X'X is
 * singular (e.g. a regressor that never varies) or there are no more rows than regressors.
 */
Datum
ols_final(PG_FUNCTION_ARGS)
{
	OlsState   *st;
	int			k;
	double		A[OLS_MAX_K][2 * OLS_MAX_K + 1];
	double		coef[OLS_MAX_K], sse, sst, ymean, sigma2, scale = 0;
	StringInfoData out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (OlsState *) PG_GETARG_POINTER(0);
	k = st->k;
	if (st->n <= k)
		PG_RETURN_NULL();
	for (int a = 0; a < k; a++)
	{
		scale = fmax(scale, fabs(st->xx[a * OLS_MAX_K + a]));
		for (int b = 0; b < k; b++)
			A[a][b] = st->xx[a * OLS_MAX_K + b];
		for (int b = 0; b < k; b++)
			A[a][k + b] = a == b ? 1 : 0;
		A[a][2 * k] = st->xy[a];
	}
	for (int c = 0; c < k; c++)
	{
		int			piv = c;

		for (int r = c + 1; r < k; r++)
			if (fabs(A[r][c]) > fabs(A[piv][c]))
				piv = r;
		if (fabs(A[piv][c]) <= 1e-12 * scale)
			PG_RETURN_NULL();
		if (piv != c)
			for (int j = 0; j <= 2 * k; j++)
			{
				double		t = A[c][j];

				A[c][j] = A[piv][j];
				A[piv][j] = t;
			}
		for (int r = 0; r < k; r++)
			if (r != c)
			{
				double		f = A[r][c] / A[c][c];

				for (int j = c; j <= 2 * k; j++)
					A[r][j] -= f * A[c][j];
			}
	}
	for (int c = 0; c < k; c++)
		coef[c] = A[c][2 * k] / A[c][c];
	/* SSE = y'y - 2 b'X'y + b'X'X b */
	sse = st->yy;
	for (int a = 0; a < k; a++)
	{
		sse -= 2 * coef[a] * st->xy[a];
		for (int b = 0; b < k; b++)
			sse += coef[a] * coef[b] * st->xx[a * OLS_MAX_K + b];
	}
	sse = fmax(sse, 0);
	sigma2 = sse / (st->n - k);
	/* centred R^2 needs sum(y): available when the first regressor is the constant 1 (X'y[0] = sum y) */
	initStringInfo(&out);
	appendStringInfo(&out, "{\"n\": %lld, \"k\": %d, \"coef\": [", (long long) st->n, k);
	for (int c = 0; c < k; c++)
	{
		if (c)
			appendStringInfoString(&out, ", ");
		json_num(&out, coef[c]);
	}
	appendStringInfoString(&out, "], \"se\": [");
	for (int c = 0; c < k; c++)
	{
		if (c)
			appendStringInfoString(&out, ", ");
		json_num(&out, sqrt(sigma2 * A[c][k + c] / A[c][c]));
	}
	appendStringInfoString(&out, "], \"sigma\": ");
	json_num(&out, sqrt(sigma2));
	appendStringInfoString(&out, ", \"r2\": ");
	if (fabs(st->xx[0] - st->n) < 1e-9 * st->n && fabs(st->x0sum - st->n) < 1e-9 * st->n)
	{
		ymean = st->xy[0] / st->n;
		sst = st->yy - st->n * ymean * ymean;
		json_num(&out, sst > 0 ? 1 - sse / sst : NAN);
	}
	else
		appendStringInfoString(&out, "null");
	appendStringInfoChar(&out, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
