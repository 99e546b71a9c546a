/* site/fulfilment.c: choosing the locations that ship an order. */
/*
 * SQL locks the stock rows, measures distances and computes available-to-promise (ATP); this function gets
 * plain numbers and decides: the nearest location that can ship every line alone, else the fewest locations
 * that together can (exact search up to exact_limit candidate locations, greedy set cover above), ties broken
 * by total distance. Quantities of a line may be split between the chosen locations.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "common/retail_mid.h"

PG_FUNCTION_INFO_V1(fulfilment_plan);

#define FUL_EPS 1e-9

typedef struct FulProblem
{
	int			nloc;
	int			nline;
	const double *atp;			/* nloc x nline, row-major */
	const double *qty;
	const double *dist;
	double	   *remaining;		/* scratch */
} FulProblem;

/* Can the locations in sel[0..k) together ship every line? */
static bool
FulCovers(const FulProblem *p, const int *sel, int k)
{
	for (int l = 0; l < p->nline; l++)
	{
		double		have = 0.0;

		for (int i = 0; i < k; i++)
			have += p->atp[sel[i] * p->nline + l];
		if (have + FUL_EPS < p->qty[l])
			return false;
	}
	return true;
}

/* Enumerates the k-subsets of [start, nloc) in lexicographic order; keeps the one with least total distance. */
static void
FulSearch(const FulProblem *p, int *cur, int depth, int k, int start, double dsum, int *best, double *best_dist)
{
	CHECK_FOR_INTERRUPTS();
	if (depth == k)
	{
		if (dsum < *best_dist && FulCovers(p, cur, k))
		{
			*best_dist = dsum;
			memcpy(best, cur, sizeof(int) * k);
		}
		return;
	}
	for (int i = start; i <= p->nloc - (k - depth); i++)
	{
		if (dsum + p->dist[i] >= *best_dist)
			continue;
		cur[depth] = i;
		FulSearch(p, cur, depth + 1, k, i + 1, dsum + p->dist[i], best, best_dist);
	}
}

/*
 * fulfilment_plan(atp float8[] (locations x lines, row-major), quantity float8[], distance float8[],
 *                 exact_limit int) -> int4[]
 * The 1-based indexes of the chosen locations, nearest first; empty when even all locations together
 * cannot ship the order.
 */
Datum
fulfilment_plan(PG_FUNCTION_ARGS)
{
	ArrayType  *atp_a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *qty_a = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *dist_a = PG_GETARG_ARRAYTYPE_P(2);
	int32		exact_limit = PG_GETARG_INT32(3);
	FulProblem	p;
	int		   *best;
	int		   *cur;
	int			nbest = 0;
	Datum	   *out;
	int			natp;

	if (ARR_NDIM(atp_a) > 1 || ARR_NDIM(qty_a) > 1 || ARR_NDIM(dist_a) > 1 ||
		array_contains_nulls(atp_a) || array_contains_nulls(qty_a) || array_contains_nulls(dist_a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fulfilment_plan needs one-dimensional arrays without nulls")));
	if (exact_limit < 0 || exact_limit > 30)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("exact_limit must be between 0 and 30")));
	natp = ArrayGetNItems(ARR_NDIM(atp_a), ARR_DIMS(atp_a));
	p.nline = ArrayGetNItems(ARR_NDIM(qty_a), ARR_DIMS(qty_a));
	p.nloc = ArrayGetNItems(ARR_NDIM(dist_a), ARR_DIMS(dist_a));
	if (p.nline == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an order needs at least one line")));
	if ((int64) p.nloc * p.nline != natp)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("atp must have one element per location and line"),
				 errdetail("Expected %d x %d elements, got %d.", p.nloc, p.nline, natp)));
	p.atp = (const double *) ARR_DATA_PTR(atp_a);
	p.qty = (const double *) ARR_DATA_PTR(qty_a);
	p.dist = (const double *) ARR_DATA_PTR(dist_a);
	for (int i = 0; i < natp; i++)
		if (!(p.atp[i] >= 0.0) || isinf(p.atp[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("available-to-promise must be a non-negative finite number")));
	for (int l = 0; l < p.nline; l++)
		if (!(p.qty[l] > 0.0) || isinf(p.qty[l]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("order quantities must be positive finite numbers")));
	for (int i = 0; i < p.nloc; i++)
		if (!(p.dist[i] >= 0.0) || isinf(p.dist[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("distances must be non-negative finite numbers")));

	best = palloc(sizeof(int) * (p.nloc > 0 ? p.nloc : 1));
	cur = palloc(sizeof(int) * (p.nloc > 0 ? p.nloc : 1));
	for (int i = 0; i < p.nloc; i++)
		cur[i] = i;
	if (p.nloc > 0 && FulCovers(&p, cur, p.nloc))
	{
		if (p.nloc <= exact_limit)
		{
			/* smallest k first; within a k the least total distance */
			for (int k = 1; k <= p.nloc && nbest == 0; k++)
			{
				double		best_dist = INFINITY;

				FulSearch(&p, cur, 0, k, 0, 0.0, best, &best_dist);
				if (best_dist < INFINITY)
					nbest = k;
			}
		}
		else
		{
			/* a single location, if any, first (nearest); else greedy cover by share of the order covered */
			double		best_dist = INFINITY;

			FulSearch(&p, cur, 0, 1, 0, 0.0, best, &best_dist);
			if (best_dist < INFINITY)
				nbest = 1;
			else
			{
				bool	   *used = palloc0(sizeof(bool) * p.nloc);

				p.remaining = palloc(sizeof(double) * p.nline);
				memcpy(p.remaining, p.qty, sizeof(double) * p.nline);
				for (;;)
				{
					int			pick = -1;
					double		pick_gain = 0.0;
					bool		done = true;

					for (int l = 0; l < p.nline; l++)
						if (p.remaining[l] > FUL_EPS)
							done = false;
					if (done)
						break;
					for (int i = 0; i < p.nloc; i++)
					{
						double		gain = 0.0;

						if (used[i])
							continue;
						for (int l = 0; l < p.nline; l++)
						{
							double		a = p.atp[i * p.nline + l];
							double		r = p.remaining[l];

							if (r > FUL_EPS)
								gain += (a < r ? a : r) / p.qty[l];
						}
						if (gain > pick_gain + FUL_EPS ||
							(pick >= 0 && fabs(gain - pick_gain) <= FUL_EPS && gain > 0.0 && p.dist[i] < p.dist[pick]))
						{
							pick = i;
							pick_gain = gain;
						}
					}
					if (pick < 0)
						elog(ERROR, "greedy cover found no location although the order is coverable");
					used[pick] = true;
					best[nbest++] = pick;
					for (int l = 0; l < p.nline; l++)
					{
						double		a = p.atp[pick * p.nline + l];

						p.remaining[l] -= a < p.remaining[l] ? a : p.remaining[l];
					}
				}
			}
		}
	}
	/* nearest first, so the SQL side allocates each line from the nearest chosen location */
	for (int i = 1; i < nbest; i++)
		for (int j = i; j > 0 && (p.dist[best[j]] < p.dist[best[j - 1]] ||
								  (p.dist[best[j]] == p.dist[best[j - 1]] && best[j] < best[j - 1])); j--)
		{
			int			t = best[j];

			best[j] = best[j - 1];
			best[j - 1] = t;
		}
	out = palloc(sizeof(Datum) * (nbest > 0 ? nbest : 1));
	for (int i = 0; i < nbest; i++)
		out[i] = Int32GetDatum(best[i] + 1);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, nbest, INT4OID, 4, true, TYPALIGN_INT));
}
