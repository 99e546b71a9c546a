/*
 * decoy.c: a stand-in for pg_roaringbitmap in test/t/coexistence.t, built at test time with `cc -shared -fPIC`
 * and default visibility. Like pg_roaringbitmap it exports SQL functions named rb_* and CRoaring's roaring_*
 * names from a CRoaring that is not Debian's; these ones answer deliberately wrong values without touching
 * their arguments, so a library bound to them gives wrong answers (and the server stays up).
 */
#include "postgres.h"
#include "fmgr.h"

#include <stdint.h>

PG_MODULE_MAGIC;

/* CRoaring names with wrong behaviour: whoever is bound to these sees impossible cardinalities. */
uint64_t	roaring_bitmap_get_cardinality(const void *r);
uint64_t	roaring_bitmap_and_cardinality(const void *a, const void *b);
uint64_t	roaring_bitmap_or_cardinality(const void *a, const void *b);
uint64_t	roaring_bitmap_xor_cardinality(const void *a, const void *b);
uint64_t	roaring_bitmap_andnot_cardinality(const void *a, const void *b);
void	   *roaring_bitmap_create_with_capacity(uint32_t cap);

uint64_t roaring_bitmap_get_cardinality(const void *r) { return 4242; }
uint64_t roaring_bitmap_and_cardinality(const void *a, const void *b) { return 4243; }
uint64_t roaring_bitmap_or_cardinality(const void *a, const void *b) { return 4244; }
uint64_t roaring_bitmap_xor_cardinality(const void *a, const void *b) { return 4245; }
uint64_t roaring_bitmap_andnot_cardinality(const void *a, const void *b) { return 4246; }

/* Not called by retail_mid: the decoy's own probe uses it to see whose CRoaring its calls reach. */
static char decoy_sentinel;
void *roaring_bitmap_create_with_capacity(uint32_t cap) { return &decoy_sentinel; }

/* decoy_probe(): true when the decoy's call to its own CRoaring name reached the decoy (not another library). */
PG_FUNCTION_INFO_V1(decoy_probe);
Datum
decoy_probe(PG_FUNCTION_ARGS)
{
	/* if another library's CRoaring answers, its bitmap is leaked on purpose: freeing it could bind anywhere */
	PG_RETURN_BOOL(roaring_bitmap_create_with_capacity(0) == (void *) &decoy_sentinel);
}

/* SQL function names pg_roaringbitmap and retail_mid share; the decoy's all answer -1. */
#define DECOY_RB(name) \
	PG_FUNCTION_INFO_V1(name); \
	Datum name(PG_FUNCTION_ARGS) { PG_RETURN_INT64(-1); }

DECOY_RB(rb_build)
DECOY_RB(rb_cardinality)
DECOY_RB(rb_or)
DECOY_RB(rb_and)
DECOY_RB(rb_andnot)
DECOY_RB(rb_xor)
DECOY_RB(rb_or_cardinality)
DECOY_RB(rb_and_cardinality)
DECOY_RB(rb_xor_cardinality)
DECOY_RB(rb_andnot_cardinality)
DECOY_RB(rb_is_empty)
DECOY_RB(rb_min)
DECOY_RB(rb_max)
DECOY_RB(rb_to_array)
DECOY_RB(rb_iterate)
DECOY_RB(rb_range)
DECOY_RB(rb_add)
DECOY_RB(rb_remove)
DECOY_RB(rb_contains)
DECOY_RB(rb_intersect)
DECOY_RB(rb_equals)
DECOY_RB(rb_build_trans)
DECOY_RB(rb_or_trans)
DECOY_RB(rb_and_trans)
DECOY_RB(rb_serialize)
DECOY_RB(rb_deserialize)
DECOY_RB(rb_cardinality_final)
