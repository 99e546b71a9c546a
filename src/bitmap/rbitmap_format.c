/* bitmap/rbitmap_format.c: validation of CRoaring's portable serialization, free of backend calls. */
/*
 * Kept free of PostgreSQL headers so that test/fuzz can fuzz it (and CRoaring's deserialiser behind it)
 * outside the server.
 */
#include <stdbool.h>
#include <string.h>

#include "bitmap/rbitmap_format.h"

#define RB_COOKIE_NO_RUN 12346
#define RB_COOKIE_RUN 12347
#define RB_NO_OFFSET_THRESHOLD 4
#define RB_MAX_ARRAY 4096
#define RB_BITSET_BYTES 8192
#define RB_MAX_KEY 0x7FFF		/* high 16 bits of INT32_MAX: keeps every value a non-negative int4 */

static inline uint16_t
rb_read_u16(const char *p)
{
	uint16_t		v;

	memcpy(&v, p, sizeof(v));	/* the format is little-endian, as are the platforms CRoaring 0.2 supports */
	return v;
}

static inline uint32_t
rb_read_u32(const char *p)
{
	uint32_t		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Checks that buf[0..len) is exactly one well-formed, canonical portable serialization of a bitmap whose
 * values fit a non-negative int4. Returns NULL when it is, otherwise a sentence describing the first problem.
 */
const char *
rb_validate_portable(const char *buf, size_t len)
{
	size_t		pos;
	uint32_t		cookie;
	uint32_t		size;
	bool		hasrun;
	bool		hasoffsets;
	bool		anyrun = false;
	const char *runflags = NULL;
	const char *keys;
	const char *offsets = NULL;
	int32_t		prevkey = -1;

	if (len < 4)
		return "The data is too short to hold a roaring bitmap header.";
	cookie = rb_read_u32(buf);
	pos = 4;
	if ((cookie & 0xFFFF) == RB_COOKIE_RUN)
	{
		size_t		nbytes;

		hasrun = true;
		size = (cookie >> 16) + 1;
		nbytes = (size + 7) / 8;
		if (len - pos < nbytes)
			return "The data ends inside the run-container flags.";
		runflags = buf + pos;
		/* padding bits after the last container must be zero */
		if ((size % 8) != 0 && ((uint8_t) runflags[nbytes - 1] >> (size % 8)) != 0)
			return "The run-container flags have bits set past the last container.";
		pos += nbytes;
	}
	else if (cookie == RB_COOKIE_NO_RUN)
	{
		hasrun = false;
		if (len - pos < 4)
			return "The data ends inside the container count.";
		size = rb_read_u32(buf + pos);
		pos += 4;
	}
	else
		return "The data does not start with a roaring bitmap cookie.";

	if (size > RB_MAX_KEY + 1)
		return "The bitmap has more containers than non-negative int4 values allow.";
	if ((len - pos) / 4 < size)
		return "The data ends inside the container descriptions.";
	keys = buf + pos;
	pos += (size_t) size * 4;
	hasoffsets = !hasrun || size >= RB_NO_OFFSET_THRESHOLD;
	if (hasoffsets)
	{
		if ((len - pos) / 4 < size)
			return "The data ends inside the container offsets.";
		offsets = buf + pos;
		pos += (size_t) size * 4;
	}

	for (uint32_t i = 0; i < size; i++)
	{
		uint16_t		key = rb_read_u16(keys + 4 * i);
		uint32_t		card = (uint32_t) rb_read_u16(keys + 4 * i + 2) + 1;
		bool		isrun = hasrun && ((((uint8_t) runflags[i / 8]) >> (i % 8)) & 1);

		if ((int32_t) key <= prevkey)
			return "The container keys are not strictly increasing.";
		if (key > RB_MAX_KEY)
			return "The bitmap holds values above 2147483647, which are not valid customer keys.";
		prevkey = key;
		if (hasoffsets && rb_read_u32(offsets + 4 * i) != pos)
			return "A container offset does not match the container's position.";

		if (isrun)
		{
			uint32_t		nruns;
			uint32_t		total = 0;
			int32_t		prevend = -2;

			anyrun = true;
			if (len - pos < 2)
				return "The data ends inside a run container.";
			nruns = rb_read_u16(buf + pos);
			pos += 2;
			if (nruns == 0)
				return "A run container is empty.";
			if ((len - pos) / 4 < nruns)
				return "The data ends inside a run container.";
			for (uint32_t j = 0; j < nruns; j++)
			{
				int32_t		start = rb_read_u16(buf + pos + 4 * j);
				int32_t		end = start + rb_read_u16(buf + pos + 4 * j + 2);

				if (end > 0xFFFF)
					return "A run extends past the end of its container.";
				if (start <= prevend + 1)
					return "The runs of a run container overlap, touch or are not sorted.";
				total += (uint32_t) (end - start + 1);
				prevend = end;
			}
			if (total != card)
				return "A run container's cardinality does not match its runs.";
			pos += (size_t) nruns * 4;
		}
		else if (card > RB_MAX_ARRAY)
		{
			uint64_t		words[RB_BITSET_BYTES / 8];
			uint32_t		bits = 0;

			if (len - pos < RB_BITSET_BYTES)
				return "The data ends inside a bitset container.";
			memcpy(words, buf + pos, RB_BITSET_BYTES);
			for (int w = 0; w < RB_BITSET_BYTES / 8; w++)
				bits += (uint32_t) __builtin_popcountll(words[w]);
			if (bits != card)
				return "A bitset container's cardinality does not match its bits.";
			pos += RB_BITSET_BYTES;
		}
		else
		{
			int32_t		prev = -1;

			if ((len - pos) / 2 < card)
				return "The data ends inside an array container.";
			for (uint32_t j = 0; j < card; j++)
			{
				int32_t		v = rb_read_u16(buf + pos + 2 * j);

				if (v <= prev)
					return "The values of an array container are not strictly increasing.";
				prev = v;
			}
			pos += (size_t) card * 2;
		}
	}
	if (hasrun && !anyrun)
		return "The header announces run containers but there are none.";
	if (pos != len)
		return "There are trailing bytes after the bitmap.";
	return NULL;
}

