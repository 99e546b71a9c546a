/* bitmap/bitmap.h: the rbitmap type (roaring bitmap of int4 customer keys) shared with the audience evaluator. */
#ifndef RETAIL_MID_BITMAP_H
#define RETAIL_MID_BITMAP_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

/* CRoaring's inline header code trips PostgreSQL's warning flags; it is not ours to fix. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeclaration-after-statement"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#include <roaring/roaring.h>
#pragma GCC diagnostic pop

/*
 * A CRoaring bitmap owned by a memory context. CRoaring allocates with malloc, so every bitmap we create is
 * wrapped in an RbHandle whose reset callback frees it: an ERROR thrown while the bitmap is alive therefore
 * cannot leak it. RbFree frees early (the normal path); the callback then finds nothing to do.
 */
typedef struct RbHandle
{
	roaring_bitmap_t *rb;
	MemoryContextCallback cb;
} RbHandle;

/* A handle with no bitmap yet, owned by CurrentMemoryContext; allocate first, then store the bitmap in it. */
extern RbHandle *RbHandleAlloc(void);
/* Raises out of memory when CRoaring returned NULL into h->rb. */
extern void RbCheckAlloc(RbHandle *h);
/* A new empty bitmap owned by CurrentMemoryContext. */
extern RbHandle *RbNew(void);
/* Frees the bitmap now. */
extern void RbFree(RbHandle *h);
/* Deserialises an rbitmap datum (already validated when it entered the database). */
extern RbHandle *RbFromDatum(Datum d);
/* Serialises a bitmap into a new rbitmap varlena in CurrentMemoryContext (run-optimises it first). */
extern struct varlena *RbToVarlena(roaring_bitmap_t *rb);
/* Raises ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE unless the key is a valid (non-negative) customer key. */
extern void RbCheckKey(int64 key);

#endif
