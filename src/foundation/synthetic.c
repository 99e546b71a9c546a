/* foundation/synthetic.c: the counter-based random numbers behind the deterministic synthetic data generator. */
#include "postgres.h"

#include <math.h>

#include "common/retail_mid.h"
#include "common/rm_math.h"

/*
 * A uniform double in [0, 1) from the hash of (seed, stream, i); the top 53 bits fill a double's mantissa.
 * Hashing (seed, stream, index) instead of advancing a state makes every value independent of evaluation
 * order, so the generator gives the same rows under any plan.
 */
static inline double
SynthUniform(uint64 seed, uint32 stream, uint64 i)
{
	uint64		h = RmSplitMix64(RmSplitMix64(RmSplitMix64(seed) ^ (uint64) stream) ^ i);

	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

PG_FUNCTION_INFO_V1(synth_uniform);

/* synth_uniform(seed, stream, i): a uniform double in [0, 1), a pure function of its arguments. */
Datum
synth_uniform(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(SynthUniform((uint64) PG_GETARG_INT64(0), (uint32) PG_GETARG_INT32(1), (uint64) PG_GETARG_INT64(2)));
}

PG_FUNCTION_INFO_V1(synth_customer);

/*
 * synth_customer(seed, stream, i, customers): the customer order i draws, NULL for an anonymous order (15%).
 * Of the rest, 35% come from the top 5% of customers and 35% from the next 20%, so that spend is Pareto-like
 * (a quarter of the customers make 70% of the identified orders) and no single customer dominates.
 */
Datum
synth_customer(PG_FUNCTION_ARGS)
{
	uint64		seed = (uint64) PG_GETARG_INT64(0);
	uint32		stream = (uint32) PG_GETARG_INT32(1);
	uint64		i = (uint64) PG_GETARG_INT64(2);
	int32		customers = PG_GETARG_INT32(3);
	double		v = SynthUniform(seed, stream, i);
	double		u = SynthUniform(seed, stream + 1000, i);
	double		x;

	if (customers < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customers must be positive")));
	if (v < 0.15)
		PG_RETURN_NULL();
	if (v < 0.45)
		x = u * 0.05;
	else if (v < 0.75)
		x = 0.05 + u * 0.20;
	else
		x = 0.25 + u * 0.75;
	PG_RETURN_INT32(1 + Min((int32) (x * customers), customers - 1));
}

PG_FUNCTION_INFO_V1(synth_is_active);

/*
 * synth_is_active(seed, c, d, days): whether customer c is a customer on day d of a period of the given days.
 * 60% exist from day 0, 40% are acquired at a uniform day of the first half; 45% churn at a uniform day between
 * their start and the end. This gives recency, churn and lifetime-value models something real to find.
 */
Datum
synth_is_active(PG_FUNCTION_ARGS)
{
	uint64		seed = (uint64) PG_GETARG_INT64(0);
	uint64		c = (uint64) (uint32) PG_GETARG_INT32(1);
	int32		d = PG_GETARG_INT32(2);
	int32		days = PG_GETARG_INT32(3);
	int32		first_day = 0;
	int32		last_day = days;

	if (SynthUniform(seed, 90, c) < 0.4)
		first_day = (int32) (days * 0.5 * SynthUniform(seed, 91, c));
	if (SynthUniform(seed, 92, c) < 0.45)
		last_day = first_day + (int32) ((days - first_day) * SynthUniform(seed, 93, c));
	PG_RETURN_BOOL(d >= first_day && d <= last_day);
}
