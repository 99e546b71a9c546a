/* tags/tagexpr.h: the tag-expression language of audiences, parsed without any backend call. */
/*
 * The same parser is fuzzed outside the server (test/fuzz). Memory comes from a caller-supplied allocator
 * (palloc0 in the server, an arena in the fuzzer); errors are returned, never thrown.
 *
 *   expr      := and_expr ( OR and_expr )*
 *   and_expr  := unary ( AND unary )*
 *   unary     := NOT unary | '(' expr ')' | '@' [ brand '/' ] name | AUDIENCE '(' 'string' ')' | predicate
 *   predicate := tag ( '=' | '<>' | '!=' | '<' | '<=' | '>' | '>=' ) value
 *              | tag [NOT] IN '(' value ( ',' value )* ')'
 *              | tag [NOT] BETWEEN number AND number
 *              | tag                                   -- boolean tag that is true
 *   tag, name, brand := identifier | "quoted identifier"
 *   value     := 'string' | number | bare word
 * Keywords are case-insensitive. Identifiers may contain UTF-8 letters (tag names are often Chinese).
 */
#ifndef RETAIL_MID_TAGEXPR_H
#define RETAIL_MID_TAGEXPR_H

#include <stdbool.h>
#include <stddef.h>

#define TAGEXPR_MAX_DEPTH 200		/* nesting of parentheses and NOTs (parser recursion) */
#define TAGEXPR_MAX_HEIGHT 1000	/* height of the tree (recursion of deparse and evaluation) */

typedef enum TagExprKind
{
	TE_AND,
	TE_OR,
	TE_NOT,
	TE_CMP,						/* tag op value */
	TE_IN,						/* tag [NOT] IN (values) */
	TE_BETWEEN,					/* tag [NOT] BETWEEN values[0] AND values[1] */
	TE_BOOL,					/* bare tag: the boolean tag is true */
	TE_AUDIENCE					/* reference to a saved audience; name in tag, brand (if given) in brand */
} TagExprKind;

typedef enum TagExprOp
{
	TE_EQ,
	TE_NE,
	TE_LT,
	TE_LE,
	TE_GT,
	TE_GE
} TagExprOp;

typedef struct TagExprValue
{
	char	   *text;			/* NUL-terminated, unescaped */
	bool		is_number;		/* written as a numeric literal */
	bool		is_string;		/* written in single quotes (else number or bare word) */
} TagExprValue;

typedef struct TagExprNode
{
	TagExprKind kind;
	int			pos;			/* byte offset of the node's first token in the source */
	int			height;			/* 1 for leaves */
	struct TagExprNode *left;	/* AND, OR, NOT */
	struct TagExprNode *right;	/* AND, OR */
	char	   *tag;			/* tag name, or audience name */
	char	   *brand;			/* audience: the brand of @brand/name, else NULL */
	TagExprOp	op;
	bool		negated;		/* NOT IN, NOT BETWEEN */
	int			nvalues;
	TagExprValue *values;
} TagExprNode;

typedef enum TagExprErrorCode
{
	TE_OK = 0,
	TE_ERR_SYNTAX,
	TE_ERR_TOO_DEEP,
	TE_ERR_NO_MEMORY
} TagExprErrorCode;

typedef struct TagExprError
{
	TagExprErrorCode code;
	int			pos;			/* byte offset of the offending token */
	char		message[160];
} TagExprError;

/* Returns zeroed memory or NULL. Memory is never freed individually; the caller owns the whole arena. */
typedef void *(*TagExprAlloc) (void *ctx, size_t size);

/* Parses src[0..len); returns the tree, or NULL with *err filled in. */
extern TagExprNode *tagexpr_parse(const char *src, size_t len, TagExprAlloc alloc, void *ctx, TagExprError *err);

/*
 * Writes the canonical text of a tree (fully parenthesised, identifiers double-quoted, strings single-quoted)
 * into buf when buf is not NULL; returns its length without the terminating NUL either way.
 */
extern size_t tagexpr_deparse(const TagExprNode *node, char *buf);

#endif
