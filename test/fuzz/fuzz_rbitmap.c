/*
 * fuzz_rbitmap.c: libFuzzer harness for the rbitmap binary-input validator (src/bitmap/rbitmap_format.c) together
 * with CRoaring's deserialiser, i.e. what rbitmap_recv/rb_from_bytea run on untrusted bytes.
 *  1. The input as serialized bytes: when the validator accepts them, CRoaring must read them, report the
 *     same size, hold only values <= INT32_MAX, and serialise back to exactly the same bytes.
 *  2. The input as a list of keys: CRoaring's own serialization of them (with and without run containers)
 *     must be accepted by the validator (no false rejections).
 */
#include <roaring/roaring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap/rbitmap_format.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_roundtrip(const char *buf, size_t len)
{
	roaring_bitmap_t *rb = roaring_bitmap_portable_deserialize_safe(buf, len);
	char	   *out;

	if (rb == NULL)
	{
		fprintf(stderr, "validator accepted bytes CRoaring rejects\n");
		abort();
	}
	if (roaring_bitmap_portable_size_in_bytes(rb) != len)
		abort();
	if (!roaring_bitmap_is_empty(rb) && roaring_bitmap_maximum(rb) > INT32_MAX)
		abort();
	out = malloc(len ? len : 1);
	if (roaring_bitmap_portable_serialize(rb, out) != len || memcmp(out, buf, len) != 0)
	{
		fprintf(stderr, "accepted bytes are not canonical\n");
		abort();
	}
	free(out);
	roaring_bitmap_free(rb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *copy = malloc(size ? size : 1);
	roaring_bitmap_t *rb;
	size_t		n;
	char	   *ser;

	/* 1. untrusted bytes (an exact-size copy so ASan sees any over-read) */
	memcpy(copy, data, size);
	if (rb_validate_portable(copy, size) == NULL)
		check_roundtrip(copy, size);
	free(copy);

	/* 2. keys: 3 bytes each, spread so that arrays, bitsets and runs all occur */
	rb = roaring_bitmap_create();
	for (size_t i = 0; i + 3 <= size && i < 3 * 20000; i += 3)
	{
		uint32_t	v = (uint32_t) data[i] | (uint32_t) data[i + 1] << 8 | (uint32_t) data[i + 2] << 16;

		if (data[i] & 1)
			roaring_bitmap_add_range(rb, v, v + (data[i + 1] & 0x3F) * 97);	/* a run */
		else
			roaring_bitmap_add(rb, (v * 2654435761u) & 0x7FFFFFFF);
	}
	if (size > 0 && (data[0] & 2))
		roaring_bitmap_run_optimize(rb);
	n = roaring_bitmap_portable_size_in_bytes(rb);
	ser = malloc(n);
	roaring_bitmap_portable_serialize(rb, ser);
	if (rb_validate_portable(ser, n) != NULL)
	{
		fprintf(stderr, "validator rejects CRoaring output: %s\n", rb_validate_portable(ser, n));
		abort();
	}
	check_roundtrip(ser, n);
	free(ser);
	roaring_bitmap_free(rb);
	return 0;
}
