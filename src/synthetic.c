/* synthetic.c: the counter-based random numbers behind the deterministic synthetic data generator. */
#include "retail_mid.h"

#include <math.h>

PG_FUNCTION_INFO_V1(synth_uniform);

/*
 * splitmix64 finaliser: a bijective 64-bit mix. Hashing (seed, stream, index) instead of advancing a state makes
 * every value independent of evaluation order, so the generator gives the same rows under any plan.
 */
static inline uint64
SplitMix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

/* synth_uniform(seed, stream, i): a uniform double in [0, 1), a pure function of its arguments. */
Datum
synth_uniform(PG_FUNCTION_ARGS)
{
	uint64		seed = (uint64) PG_GETARG_INT64(0);
	uint64		stream = (uint64) (uint32) PG_GETARG_INT32(1);
	uint64		i = (uint64) PG_GETARG_INT64(2);
	uint64		h = SplitMix64(SplitMix64(SplitMix64(seed) ^ stream) ^ i);

	/* the top 53 bits fill a double's mantissa exactly */
	PG_RETURN_FLOAT8((double) (h >> 11) * (1.0 / 9007199254740992.0));
}
