/* common/rm_math.h: the standard normal distribution and the splitmix64 mixer, shared by several domains. */
/*
 * Free of PostgreSQL headers, so that any file of the extension can use it.
 *
 * Free of PostgreSQL headers, so that any file of the extension can use it.
 */
#ifndef RETAIL_MID_RM_MATH_H
#define RETAIL_MID_RM_MATH_H

#include <stdint.h>

/* Standard normal CDF Phi(x). */
extern double RmNormCdf(double x);

/* Inverse standard normal CDF (z of a service level): -Inf for p <= 0, +Inf for p >= 1. */
extern double RmNormQuantile(double p);

/*
 * splitmix64: the golden-ratio increment followed by the finaliser, a bijective 64-bit mix. Used as a
 * sequential generator (state += increment, output the mix) and as a counter-based hash (mix the counter).
 */
static inline uint64_t
RmSplitMix64(uint64_t x)
{
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

#endif
