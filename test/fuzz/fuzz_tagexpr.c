/*
 * fuzz_tagexpr.c: libFuzzer harness for the tag-expression parser (src/tags/tagexpr_parse.c), built outside the
 * server with ASan and UBSan by run.sh. Besides "no crash, no leak, no hang" it checks a property: whatever
 * parses deparses to a canonical text that parses again to the same canonical text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tags/tagexpr.h"

/* Arena: every allocation is chained and freed after the input, as a memory context would be. */
typedef struct Chunk
{
	struct Chunk *next;
	size_t		size;
} Chunk;

typedef struct Arena
{
	Chunk	   *head;
	size_t		total;
} Arena;

#define ARENA_LIMIT (64u * 1024 * 1024)	/* beyond this the allocator fails, exercising the NULL paths */

static void *
arena_alloc(void *ctx, size_t size)
{
	Arena	   *a = ctx;
	Chunk	   *c;

	if (size > ARENA_LIMIT || a->total + size > ARENA_LIMIT)
		return NULL;
	c = calloc(1, sizeof(Chunk) + size);
	if (c == NULL)
		return NULL;
	c->next = a->head;
	c->size = size;
	a->head = c;
	a->total += size;
	return c + 1;
}

static void
arena_free(Arena *a)
{
	while (a->head)
	{
		Chunk	   *n = a->head->next;

		free(a->head);
		a->head = n;
	}
	a->total = 0;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Arena		arena = {NULL, 0};
	TagExprError err;
	TagExprNode *tree;
	/* an exact-size copy, so ASan catches any read past the end of the input */
	char	   *src = malloc(size ? size : 1);

	memcpy(src, data, size);
	tree = tagexpr_parse(src, size, arena_alloc, &arena, &err);
	if (tree == NULL)
	{
		if (err.code == TE_OK || err.pos < 0 || (size_t) err.pos > size || err.message[0] == '\0')
			abort();			/* a failure must say what and where */
	}
	else
	{
		size_t		n1 = tagexpr_deparse(tree, NULL);
		char	   *d1 = malloc(n1 + 1);
		size_t		n2;
		char	   *d2;
		TagExprNode *again;

		if (tagexpr_deparse(tree, d1) != n1 || strlen(d1) != n1)
			abort();
		again = tagexpr_parse(d1, n1, arena_alloc, &arena, &err);
		if (again == NULL)
		{
			/* the only acceptable failure: the canonical text is deeper than the limits allow */
			if (err.code != TE_ERR_TOO_DEEP && err.code != TE_ERR_NO_MEMORY)
			{
				fprintf(stderr, "canonical text does not parse: %s at %d\n%s\n", err.message, err.pos, d1);
				abort();
			}
		}
		else
		{
			n2 = tagexpr_deparse(again, NULL);
			d2 = malloc(n2 + 1);
			tagexpr_deparse(again, d2);
			if (n1 != n2 || memcmp(d1, d2, n1) != 0)
			{
				fprintf(stderr, "deparse is not a fixed point:\n%s\n%s\n", d1, d2);
				abort();
			}
			free(d2);
		}
		free(d1);
	}
	arena_free(&arena);
	free(src);
	return 0;
}
