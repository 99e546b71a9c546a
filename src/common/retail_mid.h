/* common/retail_mid.h: declarations shared by the domains of the retail_mid extension. */

/*
 * The Makefile force-includes this header first into every C file (-include), so the two coexistence rules below
 * hold in every file whatever it includes itself (docs/coexistence.md).
 */
#ifndef RETAIL_MID_H
#define RETAIL_MID_H

#include "postgres.h"

#include "fmgr.h"

/*
 * Export rule. The library is compiled with -fvisibility=hidden and PGDLLEXPORT meaning default visibility,
 * which PostgreSQL 15 puts on Pg_magic_func and on each pg_finfo_X but not on the function X itself
 * (PostgreSQL 16 does): this is PostgreSQL 16's PG_FUNCTION_INFO_V1, so that X is exported too.
 */
#if PG_VERSION_NUM < 160000
#undef PG_FUNCTION_INFO_V1
#define PG_FUNCTION_INFO_V1(funcname) \
extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
extern PGDLLEXPORT const Pg_finfo_record * CppConcat(pg_finfo_,funcname)(void); \
const Pg_finfo_record * \
CppConcat(pg_finfo_,funcname) (void) \
{ \
	static const Pg_finfo_record my_finfo = { 1 }; \
	return &my_finfo; \
} \
extern int no_such_variable
#endif

/* Called by PostgreSQL when the library is loaded: binds CRoaring (below). */
extern PGDLLEXPORT void _PG_init(void);

/* Raise ERRCODE_INVALID_PARAMETER_VALUE unless the float8 is finite. */
extern void RetailMidCheckFinite(double value, const char *what);

/*
 * CRoaring binding rule. Another library in the backend (pg_roaringbitmap) may export CRoaring's names from
 * another CRoaring version, and PostgreSQL loads libraries with RTLD_GLOBAL, so a plain link against Debian's
 * libroaring would let whichever was loaded first answer both. retail_mid is therefore not linked against
 * libroaring: _PG_init opens it privately (RTLD_LOCAL | RTLD_DEEPBIND) and every CRoaring function we call is
 * reached through a pointer that dlsym took from that handle. The macros below rename each call; the types come
 * from Debian's header, included here once before the renaming.
 */
#ifndef RETAIL_MID_ROARING_LIB
#define RETAIL_MID_ROARING_LIB "libroaring.so.0"
#endif

/* CRoaring's inline header code trips PostgreSQL's warning flags; it is not ours to fix. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeclaration-after-statement"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#include <roaring/roaring.h>
#pragma GCC diagnostic pop

/* Every out-of-line CRoaring function retail_mid calls; the TAP test t/coexistence.t checks none is missed. */
#define RETAIL_MID_ROARING_FUNCTIONS(X) \
	X(roaring_advance_uint32_iterator) X(roaring_bitmap_add) X(roaring_bitmap_add_many) \
	X(roaring_bitmap_add_range_closed) X(roaring_bitmap_and) X(roaring_bitmap_and_cardinality) \
	X(roaring_bitmap_and_inplace) X(roaring_bitmap_andnot) X(roaring_bitmap_andnot_cardinality) \
	X(roaring_bitmap_andnot_inplace) X(roaring_bitmap_clear) X(roaring_bitmap_copy) X(roaring_bitmap_create) \
	X(roaring_bitmap_equals) X(roaring_bitmap_free) X(roaring_bitmap_get_cardinality) X(roaring_bitmap_intersect) \
	X(roaring_bitmap_is_empty) X(roaring_bitmap_is_subset) X(roaring_bitmap_maximum) X(roaring_bitmap_minimum) \
	X(roaring_bitmap_of_ptr) X(roaring_bitmap_or_cardinality) X(roaring_bitmap_or_inplace) \
	X(roaring_bitmap_portable_deserialize_safe) X(roaring_bitmap_portable_serialize) \
	X(roaring_bitmap_portable_size_in_bytes) X(roaring_bitmap_remove) X(roaring_bitmap_run_optimize) \
	X(roaring_bitmap_to_uint32_array) X(roaring_bitmap_xor_cardinality) X(roaring_bitmap_xor_inplace) \
	X(roaring_init_iterator)

#define RETAIL_MID_ROARING_DECLARE(f) extern __typeof__(f) *RetailMidRoaring_##f;
RETAIL_MID_ROARING_FUNCTIONS(RETAIL_MID_ROARING_DECLARE)
#undef RETAIL_MID_ROARING_DECLARE

#define roaring_advance_uint32_iterator RetailMidRoaring_roaring_advance_uint32_iterator
#define roaring_bitmap_add RetailMidRoaring_roaring_bitmap_add
#define roaring_bitmap_add_many RetailMidRoaring_roaring_bitmap_add_many
#define roaring_bitmap_add_range_closed RetailMidRoaring_roaring_bitmap_add_range_closed
#define roaring_bitmap_and RetailMidRoaring_roaring_bitmap_and
#define roaring_bitmap_and_cardinality RetailMidRoaring_roaring_bitmap_and_cardinality
#define roaring_bitmap_and_inplace RetailMidRoaring_roaring_bitmap_and_inplace
#define roaring_bitmap_andnot RetailMidRoaring_roaring_bitmap_andnot
#define roaring_bitmap_andnot_cardinality RetailMidRoaring_roaring_bitmap_andnot_cardinality
#define roaring_bitmap_andnot_inplace RetailMidRoaring_roaring_bitmap_andnot_inplace
#define roaring_bitmap_clear RetailMidRoaring_roaring_bitmap_clear
#define roaring_bitmap_copy RetailMidRoaring_roaring_bitmap_copy
#define roaring_bitmap_create RetailMidRoaring_roaring_bitmap_create
#define roaring_bitmap_equals RetailMidRoaring_roaring_bitmap_equals
#define roaring_bitmap_free RetailMidRoaring_roaring_bitmap_free
#define roaring_bitmap_get_cardinality RetailMidRoaring_roaring_bitmap_get_cardinality
#define roaring_bitmap_intersect RetailMidRoaring_roaring_bitmap_intersect
#define roaring_bitmap_is_empty RetailMidRoaring_roaring_bitmap_is_empty
#define roaring_bitmap_is_subset RetailMidRoaring_roaring_bitmap_is_subset
#define roaring_bitmap_maximum RetailMidRoaring_roaring_bitmap_maximum
#define roaring_bitmap_minimum RetailMidRoaring_roaring_bitmap_minimum
#define roaring_bitmap_of_ptr RetailMidRoaring_roaring_bitmap_of_ptr
#define roaring_bitmap_or_cardinality RetailMidRoaring_roaring_bitmap_or_cardinality
#define roaring_bitmap_or_inplace RetailMidRoaring_roaring_bitmap_or_inplace
#define roaring_bitmap_portable_deserialize_safe RetailMidRoaring_roaring_bitmap_portable_deserialize_safe
#define roaring_bitmap_portable_serialize RetailMidRoaring_roaring_bitmap_portable_serialize
#define roaring_bitmap_portable_size_in_bytes RetailMidRoaring_roaring_bitmap_portable_size_in_bytes
#define roaring_bitmap_remove RetailMidRoaring_roaring_bitmap_remove
#define roaring_bitmap_run_optimize RetailMidRoaring_roaring_bitmap_run_optimize
#define roaring_bitmap_to_uint32_array RetailMidRoaring_roaring_bitmap_to_uint32_array
#define roaring_bitmap_xor_cardinality RetailMidRoaring_roaring_bitmap_xor_cardinality
#define roaring_bitmap_xor_inplace RetailMidRoaring_roaring_bitmap_xor_inplace
#define roaring_init_iterator RetailMidRoaring_roaring_init_iterator

#endif
