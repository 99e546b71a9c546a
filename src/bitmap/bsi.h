/* bitmap/bsi.h: bit-sliced indexes of numeric tags, shared with the audience evaluator. */
/*
 * A BSI (O'Neil & Quass 1997) stores int8 values (a numeric tag's value times 10^numeric_scale) as offsets
 * from the smallest value, one roaring bitmap per bit of the offset, plus the existence bitmap of customers
 * having a value.
 */
#ifndef RETAIL_MID_BSI_H
#define RETAIL_MID_BSI_H

#include "utils/numeric.h"

#include "bitmap/bitmap.h"

/* A deserialised index: existence bitmap and the slices (slice 0 = least significant bit of v - min). */
typedef struct Bsi
{
	int64		min;
	int64		max;
	int			slices;
	RbHandle   *exist;
	RbHandle   *slice[64];
} Bsi;

/* Reads an index of retail_mid.tag_bsi (memory-safe, without the subset checks), for several queries. */
extern void BsiOpen(Datum d, Bsi *b);
extern void BsiClose(Bsi *b);
/* Customers of an opened index with lo <= v <= hi (a missing bound is open). */
extern RbHandle *BsiRangeOpen(Bsi *b, bool has_lo, int64 lo, bool has_hi, int64 hi);
/*
 * The k-th smallest value (k from 1) among the customers of filter having a value, by one walk down the slices
 * (two cardinalities per slice); false when fewer than k of them have a value.
 */
extern bool BsiKth(Bsi *b, const roaring_bitmap_t *filter, uint64 k, int64 *out);

/*
 * Customers whose value v satisfies lo <= v <= hi (a missing bound is open). The BSI datum is always read
 * memory-safely; trusted skips the check that slices lie within the existence bitmap (for retail_mid.tag_bsi).
 */
extern RbHandle *BsiRange(Datum bsi, bool has_lo, int64 lo, bool has_hi, int64 hi, bool trusted);

/*
 * Turns a numeric bound into an inclusive bound on values scaled by 10^scale, rounding inwards, so that the
 * integer predicate selects exactly the stored values the numeric predicate selects. is_lower: the bound is a
 * lower one (>= or >); inclusive: >= or <=. Returns 0 with *out set, -1 when the bound excludes everything,
 * +1 when it excludes nothing (beyond the int8 range). NaN raises 22023.
 */
extern int	BsiScaleBound(Numeric bound, int scale, bool is_lower, bool inclusive, int64 *out);

#endif
