/* bitmap/rbitmap_format.h: checks the roaring portable serialization before CRoaring reads it (no backend calls). */
#ifndef RETAIL_MID_RBITMAP_FORMAT_H
#define RETAIL_MID_RBITMAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns NULL when buf[0..len) is exactly one well-formed, canonical portable serialization of a bitmap whose
 * values are all non-negative int4; otherwise a sentence describing the first problem found.
 */
extern const char *rb_validate_portable(const char *buf, size_t len);

#endif
