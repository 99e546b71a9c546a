/* demand/reconcile.c: retail_mid.forecast_reconcile_arrays, coherent forecasts for a hierarchy of series. */
/*
 * Base forecasts made independently for every node of a hierarchy (SKU x store -> SKU -> category -> total,
 * store -> region ...) do not add up. This file makes them coherent by
 *   - bottom_up: the leaves' base forecasts, summed upwards;
 *   - top_down: the root's base forecast split by forecast proportions (Athanasopoulos, Ahmed & Hyndman 2009):
 *     leaf share = product over the path of base(child) / sum of base(its siblings incl. itself);
 *   - the linear projections of Wickramasuriya, Athanasopoulos & Hyndman (2019), y~ = S (S'W^-1 S)^-1 S'W^-1 y^,
 *     with W = I (ols), diag(number of leaves under a node) (wls_struct), diag of the residual variances
 *     (wls_var), the sample covariance of the one-step in-sample residuals (mint_sample) or that covariance
 *     shrunk towards its diagonal with the Schafer-Strimmer intensity as R's hts::shrink.estim (mint_shrink).
 *
 * The projection is computed in its zero-constraint form, y~ = y^ - W U (U'W U)^-1 U' y^, where each column of
 * U states "aggregate node = sum of its leaves". Only a (k x k) system is solved, k = number of aggregate nodes,
 * and W is never formed: for MinT, W U = lambda D U + (1 - lambda) R'(R U) / T from the T x n residuals R. The
 * shrinkage intensity is computed from T x T cross-products, so the cost is O(T n k + T^2 n + k^3).
 * Aggregates are finally reset to the sum of their reconciled leaves, so the result adds up to rounding of
 * that one summation.
 *
 * Hierarchies are directed acyclic graphs of (child, parent) edges: a node may have several parents (grouped
 * structures: a SKU x store series belongs to its SKU and to its store), as long as every aggregate's children
 * cover each of its leaves the same number of times.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "common/retail_mid.h"

PG_FUNCTION_INFO_V1(forecast_reconcile_arrays);

typedef enum
{
	REC_BOTTOM_UP, REC_TOP_DOWN, REC_OLS, REC_WLS_STRUCT, REC_WLS_VAR, REC_MINT_SHRINK, REC_MINT_SAMPLE
} RecMethod;

typedef struct RecHier
{
	int			n;				/* nodes */
	char	  **names;			/* sorted, unique */
	int		   *npar;			/* parents per node */
	int		   *par_off, *par;	/* CSR lists */
	int		   *nchild;
	int		   *ch_off, *ch;
	int		   *topo;			/* children before parents */
	int			m;				/* leaves */
	int		   *leaf_of;		/* node -> leaf index or -1 */
	int		   *leaf_node;		/* leaf index -> node */
	int		   *nleaf;			/* leaves under each node */
	int		  **leaves;			/* node -> sorted leaf indexes */
} RecHier;

/* Allocation that may exceed 1 GB for large hierarchies, zeroed. */
static void *
rec_alloc(Size count, Size size)
{
	Size		bytes;

	if (count != 0 && size > MaxAllocHugeSize / count)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("hierarchy too large to reconcile")));
	bytes = count * size;
	return MemoryContextAllocExtended(CurrentMemoryContext, bytes > 0 ? bytes : 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a, y = *(const int *) b;

	return x < y ? -1 : x > y;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a, y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/* Index of a node name, -1 when absent. */
static int
rec_lookup(const RecHier *h, const char *name)
{
	char	  **hit = bsearch(&name, h->names, h->n, sizeof(char *), cmp_cstr);

	return hit ? (int) (hit - h->names) : -1;
}

/* Deconstructs a one-dimensional array argument; NULL elements are rejected with 22004. */
static int
rec_array(FunctionCallInfo fcinfo, int argno, Oid elemtype, const char *what, Datum **values)
{
	ArrayType  *a;
	bool	   *nulls;
	int			nelem;
	int16		typlen;
	bool		byval;
	char		align;

	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s must not be null", what)));
	a = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &byval, &align);
	deconstruct_array(a, elemtype, typlen, byval, align, values, &nulls, &nelem);
	for (int i = 0; i < nelem; i++)
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("%s must not contain nulls", what)));
	return nelem;
}

static void
rec_same_length(int a, int b, const char *what)
{
	if (a != b)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("%s arrays must have the same length", what)));
}

/* Builds the node set, the edge lists, a topological order (rejecting cycles) and every node's leaf set. */
static void
RecBuildHierarchy(RecHier *h, Datum *child, Datum *parent, bool *parent_null, int ne)
{
	char	  **all = rec_alloc(2 * (Size) ne, sizeof(char *));
	int			na = 0, n;
	int		   *ec = rec_alloc(ne, sizeof(int)), *ep = rec_alloc(ne, sizeof(int));
	int		   *fill, *queue, qh = 0, qt = 0, *pending;

	for (int i = 0; i < ne; i++)
	{
		all[na++] = text_to_cstring(DatumGetTextPP(child[i]));
		if (!parent_null[i])
			all[na++] = text_to_cstring(DatumGetTextPP(parent[i]));
	}
	qsort(all, na, sizeof(char *), cmp_cstr);
	n = 0;
	for (int i = 0; i < na; i++)
		if (n == 0 || strcmp(all[n - 1], all[i]) != 0)
			all[n++] = all[i];
	h->n = n;
	h->names = all;

	h->npar = rec_alloc(n, sizeof(int));
	h->nchild = rec_alloc(n, sizeof(int));
	for (int i = 0; i < ne; i++)
	{
		ec[i] = rec_lookup(h, text_to_cstring(DatumGetTextPP(child[i])));
		ep[i] = parent_null[i] ? -1 : rec_lookup(h, text_to_cstring(DatumGetTextPP(parent[i])));
		if (ep[i] == ec[i])
			ereport(ERROR, (errcode(ERRCODE_INVALID_RECURSION),
							errmsg("hierarchy has a cycle"),
							errdetail("Node \"%s\" is its own parent.", h->names[ec[i]])));
		if (ep[i] >= 0)
		{
			h->npar[ec[i]]++;
			h->nchild[ep[i]]++;
		}
	}
	h->par_off = rec_alloc(n + 1, sizeof(int));
	h->ch_off = rec_alloc(n + 1, sizeof(int));
	for (int i = 0; i < n; i++)
	{
		h->par_off[i + 1] = h->par_off[i] + h->npar[i];
		h->ch_off[i + 1] = h->ch_off[i] + h->nchild[i];
	}
	h->par = rec_alloc(h->par_off[n] + 1, sizeof(int));
	h->ch = rec_alloc(h->ch_off[n] + 1, sizeof(int));
	fill = rec_alloc(n, sizeof(int));
	for (int i = 0; i < ne; i++)
		if (ep[i] >= 0)
			h->par[h->par_off[ec[i]] + fill[ec[i]]++] = ep[i];
	memset(fill, 0, sizeof(int) * n);
	for (int i = 0; i < ne; i++)
		if (ep[i] >= 0)
			h->ch[h->ch_off[ep[i]] + fill[ep[i]]++] = ec[i];
	for (int v = 0; v < n; v++)
	{
		int		   *c = h->ch + h->ch_off[v];

		qsort(c, h->nchild[v], sizeof(int), cmp_int);
		for (int j = 1; j < h->nchild[v]; j++)
			if (c[j] == c[j - 1])
				ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION),
								errmsg("duplicate hierarchy edge"),
								errdetail("Node \"%s\" is listed twice as a child of \"%s\".",
										  h->names[c[j]], h->names[v])));
	}

	/* Kahn's order from the leaves up; nodes left over lie on a cycle */
	h->topo = rec_alloc(n, sizeof(int));
	queue = h->topo;
	pending = rec_alloc(n, sizeof(int));
	for (int v = 0; v < n; v++)
	{
		pending[v] = h->nchild[v];
		if (pending[v] == 0)
			queue[qt++] = v;
	}
	while (qh < qt)
	{
		int			v = queue[qh++];

		for (int j = h->par_off[v]; j < h->par_off[v + 1]; j++)
			if (--pending[h->par[j]] == 0)
				queue[qt++] = h->par[j];
	}
	if (qt < n)
	{
		int			bad = 0;

		while (pending[bad] == 0)
			bad++;
		ereport(ERROR, (errcode(ERRCODE_INVALID_RECURSION),
						errmsg("hierarchy has a cycle"),
						errdetail("Node \"%s\" is its own ancestor or lies above a cycle.", h->names[bad])));
	}

	/* leaves and leaf sets */
	h->leaf_of = rec_alloc(n, sizeof(int));
	h->leaf_node = rec_alloc(n, sizeof(int));
	h->m = 0;
	for (int v = 0; v < n; v++)
	{
		h->leaf_of[v] = -1;
		if (h->nchild[v] == 0)
		{
			h->leaf_of[v] = h->m;
			h->leaf_node[h->m++] = v;
		}
	}
	h->nleaf = rec_alloc(n, sizeof(int));
	h->leaves = rec_alloc(n, sizeof(int *));
	for (int q = 0; q < n; q++)
	{
		int			v = h->topo[q], tot = 0, mult = 0, cnt, nl = 0;
		int		   *buf;

		CHECK_FOR_INTERRUPTS();
		if (h->nchild[v] == 0)
		{
			h->leaves[v] = rec_alloc(1, sizeof(int));
			h->leaves[v][0] = h->leaf_of[v];
			h->nleaf[v] = 1;
			continue;
		}
		for (int j = h->ch_off[v]; j < h->ch_off[v + 1]; j++)
			tot += h->nleaf[h->ch[j]];
		buf = rec_alloc(tot, sizeof(int));
		tot = 0;
		for (int j = h->ch_off[v]; j < h->ch_off[v + 1]; j++)
		{
			memcpy(buf + tot, h->leaves[h->ch[j]], sizeof(int) * h->nleaf[h->ch[j]]);
			tot += h->nleaf[h->ch[j]];
		}
		qsort(buf, tot, sizeof(int), cmp_int);
		for (int i = 0; i < tot; i += cnt)
		{
			cnt = 1;
			while (i + cnt < tot && buf[i + cnt] == buf[i])
				cnt++;
			if (mult == 0)
				mult = cnt;
			else if (cnt != mult)
				ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION),
								errmsg("hierarchy is not coherent"),
								errdetail("The children of node \"%s\" count leaf \"%s\" %d times but other leaves %d times.",
										  h->names[v], h->names[h->leaf_node[buf[i]]], cnt, mult),
								errhint("Every child set of an aggregate must partition its leaves (a grouped structure may partition them several times, by each grouping).")));
			buf[nl++] = buf[i];
		}
		h->leaves[v] = buf;
		h->nleaf[v] = nl;
	}
}

/* Reads (node, period, value) triples into a nodes x periods matrix, every cell required once. */
static double *
RecReadMatrix(const RecHier *h, Datum *node, Datum *period, bool period_int8, Datum *value, int len,
			  const char *what, int64 **periods_out, int *np_out)
{
	int64	   *p = rec_alloc(len, sizeof(int64));
	int			np = 0;
	double	   *x;
	bool	   *seen;

	for (int i = 0; i < len; i++)
		p[i] = period_int8 ? DatumGetInt64(period[i]) : (int64) DatumGetInt32(period[i]);
	qsort(p, len, sizeof(int64), cmp_int64);
	for (int i = 0; i < len; i++)
		if (np == 0 || p[np - 1] != p[i])
			p[np++] = p[i];
	x = rec_alloc((Size) h->n * np, sizeof(double));
	seen = rec_alloc((Size) h->n * np, sizeof(bool));
	for (int i = 0; i < len; i++)
	{
		char	   *name = text_to_cstring(DatumGetTextPP(node[i]));
		int			v = rec_lookup(h, name);
		int64		t = period_int8 ? DatumGetInt64(period[i]) : (int64) DatumGetInt32(period[i]);
		int64	   *hit = bsearch(&t, p, np, sizeof(int64), cmp_int64);
		int			k = (int) (hit - p);
		double		val = DatumGetFloat8(value[i]);

		if (v < 0)
			ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
							errmsg("%s for node \"%s\", which is not in the hierarchy", what, name)));
		if (!isfinite(val))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s must be finite", what),
							errdetail("Node \"%s\", period " INT64_FORMAT " has %g.", name, t, val)));
		if (seen[(Size) v * np + k])
			ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION),
							errmsg("duplicate %s", what),
							errdetail("Node \"%s\", period " INT64_FORMAT " appears twice.", name, t)));
		seen[(Size) v * np + k] = true;
		x[(Size) v * np + k] = val;
	}
	for (int v = 0; v < h->n; v++)
		for (int k = 0; k < np; k++)
			if (!seen[(Size) v * np + k])
				ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
								errmsg("missing %s", what),
								errdetail("Node \"%s\" has none for period " INT64_FORMAT ".", h->names[v], p[k]),
								errhint("Give a value for every node of the hierarchy and every period.")));
	*periods_out = p;
	*np_out = np;
	return x;
}

/* Sets every aggregate to the sum of its leaves' values (column k of an n x H matrix). */
static void
RecSumUp(const RecHier *h, double *y, int H)
{
	for (int v = 0; v < h->n; v++)
	{
		if (h->nchild[v] == 0)
			continue;
		for (int k = 0; k < H; k++)
		{
			double		s = 0;

			for (int j = 0; j < h->nleaf[v]; j++)
				s += y[(Size) h->leaf_node[h->leaves[v][j]] * H + k];
			y[(Size) v * H + k] = s;
		}
	}
}

/* Top-down by forecast proportions; needs a tree with one root. */
static void
RecTopDown(const RecHier *h, const double *yhat, double *y, int H)
{
	int			root = -1;
	double	   *chsum;

	for (int v = 0; v < h->n; v++)
	{
		if (h->npar[v] > 1)
			ereport(ERROR, (errcode(ERRCODE_CARDINALITY_VIOLATION),
							errmsg("top-down reconciliation needs a tree"),
							errdetail("Node \"%s\" has %d parents.", h->names[v], h->npar[v]),
							errhint("Use bottom_up or one of the projections (ols, wls_struct, wls_var, mint_shrink, mint_sample) for grouped structures.")));
		if (h->npar[v] == 0)
		{
			if (root >= 0)
				ereport(ERROR, (errcode(ERRCODE_CARDINALITY_VIOLATION),
								errmsg("top-down reconciliation needs a tree"),
								errdetail("Nodes \"%s\" and \"%s\" both have no parent.", h->names[root], h->names[v]),
								errhint("Add a common total node.")));
			root = v;
		}
	}
	chsum = rec_alloc(h->n, sizeof(double));
	for (int k = 0; k < H; k++)
	{
		/* sum of the children's base forecasts of every node, once per step */
		for (int p = 0; p < h->n; p++)
		{
			double		s = 0;

			for (int j = h->ch_off[p]; j < h->ch_off[p + 1]; j++)
				s += yhat[(Size) h->ch[j] * H + k];
			chsum[p] = s;
		}
		for (int l = 0; l < h->m; l++)
		{
			int			v = h->leaf_node[l];
			double		share = 1;

			while (h->npar[v] == 1)
			{
				int			p = h->par[h->par_off[v]];

				share *= chsum[p] != 0 ? yhat[(Size) v * H + k] / chsum[p] : 1.0 / h->nchild[p];
				v = p;
			}
			y[(Size) h->leaf_node[l] * H + k] = share * yhat[(Size) root * H + k];
		}
	}
	pfree(chsum);
	RecSumUp(h, y, H);
}

/* In-place Cholesky of a k x k symmetric matrix (lower triangle); false when not positive definite. */
static bool
RecCholesky(double *a, int k)
{
	double		scale = 0;

	for (int i = 0; i < k; i++)
		scale = Max(scale, fabs(a[(Size) i * k + i]));
	for (int j = 0; j < k; j++)
	{
		double		d = a[(Size) j * k + j];

		CHECK_FOR_INTERRUPTS();
		for (int p = 0; p < j; p++)
			d -= a[(Size) j * k + p] * a[(Size) j * k + p];
		if (!(d > 1e-12 * scale))
			return false;
		d = sqrt(d);
		a[(Size) j * k + j] = d;
		for (int i = j + 1; i < k; i++)
		{
			double		s = a[(Size) i * k + j];

			for (int p = 0; p < j; p++)
				s -= a[(Size) i * k + p] * a[(Size) j * k + p];
			a[(Size) i * k + j] = s / d;
		}
	}
	return true;
}

/* Solves L L' z = b in place. */
static void
RecCholSolve(const double *l, int k, double *b)
{
	for (int i = 0; i < k; i++)
	{
		double		s = b[i];

		for (int p = 0; p < i; p++)
			s -= l[(Size) i * k + p] * b[p];
		b[i] = s / l[(Size) i * k + i];
	}
	for (int i = k - 1; i >= 0; i--)
	{
		double		s = b[i];

		for (int p = i + 1; p < k; p++)
			s -= l[(Size) p * k + i] * b[p];
		b[i] = s / l[(Size) i * k + i];
	}
}

/*
 * Schafer-Strimmer shrinkage intensity towards the diagonal, as hts::shrink.estim computes it on the uncentred
 * residuals: lambda = sum_{i!=j} Var(r_ij) / sum_{i!=j} r_ij^2, clipped to [0, 1]. xs (T x n) holds the
 * residuals scaled to mean square 1; the double sums are taken through the T x T Gram matrix.
 */
static double
RecShrinkLambda(const double *xs, int T, int n)
{
	double		sum_q2 = 0, sum_x4 = 0, sum_g2 = 0, sum_v, sum_d;

	for (int t = 0; t < T; t++)
	{
		double		q = 0;

		for (int i = 0; i < n; i++)
		{
			double		x2 = xs[(Size) t * n + i] * xs[(Size) t * n + i];

			q += x2;
			sum_x4 += x2 * x2;
		}
		sum_q2 += q * q;
	}
	for (int t = 0; t < T; t++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int s = 0; s < T; s++)
		{
			double		g = 0;

			for (int i = 0; i < n; i++)
				g += xs[(Size) t * n + i] * xs[(Size) s * n + i];
			sum_g2 += g * g;
		}
	}
	/* sum over i != j of (sum_t x_ti x_tj)^2: the diagonal terms are (sum_t x_ti^2)^2 = T^2 each */
	sum_g2 -= (double) n * T * T;
	sum_v = ((sum_q2 - sum_x4) - sum_g2 / T) / ((double) T * (T - 1));
	sum_d = sum_g2 / ((double) T * T);
	if (!(sum_d > 0))
		return 1.0;
	return Min(1.0, Max(0.0, sum_v / sum_d));
}

/* The projection y~ = y^ - W U (U'W U)^-1 U'y^ for the diagonal or MinT choice of W. */
static void
RecProject(const RecHier *h, RecMethod method, const double *yhat, int H, const double *res, int T,
		   double *y, double *lambda_out)
{
	int			n = h->n, k = n - h->m;
	int		   *agg = rec_alloc(k + 1, sizeof(int));
	double	   *w = rec_alloc(n, sizeof(double));	/* diagonal of W */
	double	   *wu = rec_alloc((Size) n * k, sizeof(double));	/* column j at wu + j*n */
	double	   *mat = rec_alloc((Size) k * k + 1, sizeof(double));
	double	   *c = rec_alloc(k + 1, sizeof(double));
	double		lambda = 0;
	bool		full = (method == REC_MINT_SHRINK || method == REC_MINT_SAMPLE);
	int			na = 0;

	for (int v = 0; v < n; v++)
		if (h->nchild[v] > 0)
			agg[na++] = v;

	for (int v = 0; v < n; v++)
	{
		switch (method)
		{
			case REC_OLS:
				w[v] = 1;
				break;
			case REC_WLS_STRUCT:
				w[v] = h->nleaf[v];
				break;
			default:
				{
					double		s = 0;

					for (int t = 0; t < T; t++)
						s += res[(Size) t * n + v] * res[(Size) t * n + v];
					w[v] = s / T;
					if (!(w[v] > 0))
						ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
										errmsg("covariance matrix of the residuals is singular"),
										errdetail("The residuals of node \"%s\" are all zero.", h->names[v]),
										errhint("Use wls_struct or ols, or leave the perfectly fitted series out.")));
				}
		}
	}
	if (method == REC_MINT_SHRINK)
	{
		double	   *xs = rec_alloc((Size) T * n, sizeof(double));

		for (int t = 0; t < T; t++)
			for (int v = 0; v < n; v++)
				xs[(Size) t * n + v] = res[(Size) t * n + v] / sqrt(w[v]);
		lambda = RecShrinkLambda(xs, T, n);
		pfree(xs);
	}

	/* W U, column by column */
	for (int j = 0; j < k; j++)
	{
		int			a = agg[j];
		double	   *col = wu + (Size) j * n;
		double		dscale = full ? lambda : 1.0;

		CHECK_FOR_INTERRUPTS();
		col[a] += dscale * w[a];
		for (int l = 0; l < h->nleaf[a]; l++)
		{
			int			v = h->leaf_node[h->leaves[a][l]];

			col[v] -= dscale * w[v];
		}
		if (full && lambda < 1)
		{
			for (int t = 0; t < T; t++)
			{
				const double *r = res + (Size) t * n;
				double		ru = r[a];

				for (int l = 0; l < h->nleaf[a]; l++)
					ru -= r[h->leaf_node[h->leaves[a][l]]];
				ru *= (1 - lambda) / T;
				for (int v = 0; v < n; v++)
					col[v] += r[v] * ru;
			}
		}
	}
	/* U'W U */
	for (int i = 0; i < k; i++)
	{
		int			a = agg[i];

		for (int j = 0; j < k; j++)
		{
			const double *col = wu + (Size) j * n;
			double		s = col[a];

			for (int l = 0; l < h->nleaf[a]; l++)
				s -= col[h->leaf_node[h->leaves[a][l]]];
			mat[(Size) i * k + j] = s;
		}
	}
	for (int i = 0; i < k; i++)
		for (int j = 0; j < i; j++)
			mat[(Size) i * k + j] = mat[(Size) j * k + i] = 0.5 * (mat[(Size) i * k + j] + mat[(Size) j * k + i]);
	if (!RecCholesky(mat, k))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("covariance matrix of the residuals is singular"),
						errdetail("The aggregation constraints have no positive definite weight matrix (%d residual periods for %d nodes).", T, n),
						errhint("Use mint_shrink rather than mint_sample, or give more residual periods.")));
	for (int hh = 0; hh < H; hh++)
	{
		for (int i = 0; i < k; i++)
		{
			int			a = agg[i];
			double		s = yhat[(Size) a * H + hh];

			for (int l = 0; l < h->nleaf[a]; l++)
				s -= yhat[(Size) h->leaf_node[h->leaves[a][l]] * H + hh];
			c[i] = s;
		}
		RecCholSolve(mat, k, c);
		for (int v = 0; v < n; v++)
		{
			double		s = yhat[(Size) v * H + hh];

			for (int j = 0; j < k; j++)
				s -= wu[(Size) j * n + v] * c[j];
			y[(Size) v * H + hh] = s;
		}
	}
	RecSumUp(h, y, H);
	*lambda_out = method == REC_MINT_SHRINK ? lambda : (method == REC_MINT_SAMPLE ? 0 : NAN);
}

/*
 * forecast_reconcile_arrays(child text[], parent text[], node text[], step int4[], forecast float8[],
 *   method text, res_node text[], res_t int8[], res_value float8[])
 *   -> TABLE (node text, step int4, base float8, reconciled float8, lambda float8)
 */
Datum
forecast_reconcile_arrays(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *child, *parent, *fnode, *fstep, *fval;
	bool	   *parent_null;
	int			ne, nf;
	RecHier		h;
	RecMethod	method = REC_MINT_SHRINK;
	const char *mname = "mint_shrink";
	int64	   *steps;
	int			H;
	double	   *yhat, *y, *res = NULL, lambda = NAN;
	int			T = 0;

	/* the hierarchy: parent may be NULL (a root given explicitly) */
	ne = rec_array(fcinfo, 0, TEXTOID, "hierarchy child", &child);
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("hierarchy parent must not be null")));
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
		int			np;

		if (ARR_NDIM(a) > 1)
			ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
							errmsg("hierarchy parent must be a one-dimensional array")));
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &parent, &parent_null, &np);
		rec_same_length(ne, np, "hierarchy child and parent");
	}
	if (ne == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("hierarchy is empty")));
	nf = rec_array(fcinfo, 2, TEXTOID, "forecast node", &fnode);
	rec_same_length(nf, rec_array(fcinfo, 3, INT4OID, "forecast step", &fstep), "forecast node, step and value");
	rec_same_length(nf, rec_array(fcinfo, 4, FLOAT8OID, "forecast value", &fval), "forecast node, step and value");
	if (nf == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no base forecasts")));
	if (!PG_ARGISNULL(5))
	{
		mname = text_to_cstring(PG_GETARG_TEXT_PP(5));
		if (strcmp(mname, "bottom_up") == 0)
			method = REC_BOTTOM_UP;
		else if (strcmp(mname, "top_down") == 0)
			method = REC_TOP_DOWN;
		else if (strcmp(mname, "ols") == 0)
			method = REC_OLS;
		else if (strcmp(mname, "wls_struct") == 0)
			method = REC_WLS_STRUCT;
		else if (strcmp(mname, "wls_var") == 0)
			method = REC_WLS_VAR;
		else if (strcmp(mname, "mint_shrink") == 0)
			method = REC_MINT_SHRINK;
		else if (strcmp(mname, "mint_sample") == 0)
			method = REC_MINT_SAMPLE;
		else
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("unknown reconciliation method \"%s\"", mname),
							errhint("Use bottom_up, top_down, ols, wls_struct, wls_var, mint_shrink or mint_sample.")));
	}

	RecBuildHierarchy(&h, child, parent, parent_null, ne);
	yhat = RecReadMatrix(&h, fnode, fstep, false, fval, nf, "base forecast", &steps, &H);

	if (method == REC_WLS_VAR || method == REC_MINT_SHRINK || method == REC_MINT_SAMPLE)
	{
		Datum	   *rnode, *rt, *rval;
		int			nr;
		int64	   *periods;
		double	   *byrow;

		if (PG_ARGISNULL(6) || PG_ARGISNULL(7) || PG_ARGISNULL(8))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("method %s needs the in-sample residuals of every node", mname),
							errhint("Pass one-step in-sample forecast errors (node, period, residual), or use ols or wls_struct.")));
		nr = rec_array(fcinfo, 6, TEXTOID, "residual node", &rnode);
		rec_same_length(nr, rec_array(fcinfo, 7, INT8OID, "residual period", &rt), "residual node, period and value");
		rec_same_length(nr, rec_array(fcinfo, 8, FLOAT8OID, "residual value", &rval), "residual node, period and value");
		if (nr == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no residuals")));
		byrow = RecReadMatrix(&h, rnode, rt, true, rval, nr, "residual", &periods, &T);
		if (T < 2)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("method %s needs residuals for at least 2 periods", mname)));
		/* to T x n, period-major */
		res = rec_alloc((Size) T * h.n, sizeof(double));
		for (int v = 0; v < h.n; v++)
			for (int t = 0; t < T; t++)
				res[(Size) t * h.n + v] = byrow[(Size) v * T + t];
		pfree(byrow);
	}

	y = rec_alloc((Size) h.n * H, sizeof(double));
	switch (method)
	{
		case REC_BOTTOM_UP:
			memcpy(y, yhat, sizeof(double) * h.n * H);
			RecSumUp(&h, y, H);
			break;
		case REC_TOP_DOWN:
			RecTopDown(&h, yhat, y, H);
			break;
		default:
			if (h.m == h.n)
				memcpy(y, yhat, sizeof(double) * h.n * H);	/* nothing to reconcile */
			else
				RecProject(&h, method, yhat, H, res, T, y, &lambda);
			if (method == REC_MINT_SAMPLE)
				lambda = 0;
			break;
	}

	InitMaterializedSRF(fcinfo, 0);
	for (int v = 0; v < h.n; v++)
		for (int k = 0; k < H; k++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = CStringGetTextDatum(h.names[v]);
			values[1] = Int32GetDatum((int32) steps[k]);
			values[2] = Float8GetDatum(yhat[(Size) v * H + k]);
			values[3] = Float8GetDatum(y[(Size) v * H + k]);
			values[4] = Float8GetDatum(lambda);
			nulls[4] = isnan(lambda);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	return (Datum) 0;
}
