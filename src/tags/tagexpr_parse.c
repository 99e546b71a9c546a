/* tags/tagexpr_parse.c: tokenizer, recursive-descent parser and deparser of tag expressions (see tagexpr.h). */
/*
 * Plain C without backend calls, so test/fuzz builds it with libFuzzer; recursion is bounded by
 * TAGEXPR_MAX_DEPTH and every read is bounded by the input length (the input need not be NUL-terminated).
 */
#include <stdio.h>
#include <string.h>

#include "tags/tagexpr.h"

typedef enum TokKind
{
	TK_END,
	TK_IDENT,					/* bare identifier or keyword candidate */
	TK_QIDENT,					/* "quoted identifier" */
	TK_STRING,					/* 'string' */
	TK_NUMBER,
	TK_LPAREN,
	TK_RPAREN,
	TK_COMMA,
	TK_AT,
	TK_OP,						/* comparison operator; op in tok_op */
	TK_BAD						/* a character that starts no token */
} TokKind;

typedef struct Parser
{
	const char *src;
	size_t		len;
	size_t		pos;			/* scanning position */
	/* current token */
	TokKind		tok;
	size_t		tok_start;
	size_t		tok_len;
	TagExprOp	tok_op;
	int			depth;
	TagExprAlloc alloc;
	void	   *ctx;
	TagExprError *err;
} Parser;

static TagExprNode *parse_or(Parser *p);

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
is_ident_char(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Records the first error only; returns NULL so callers can write "return fail(...)". */
static void *
fail(Parser *p, TagExprErrorCode code, size_t pos, const char *fmt, const char *arg)
{
	if (p->err->code == TE_OK)
	{
		p->err->code = code;
		p->err->pos = (int) pos;
		snprintf(p->err->message, sizeof(p->err->message), fmt, arg ? arg : "");
	}
	return NULL;
}

static void *
alloc_or_fail(Parser *p, size_t size)
{
	void	   *r = p->alloc(p->ctx, size);

	if (r == NULL)
		fail(p, TE_ERR_NO_MEMORY, p->tok_start, "out of memory", NULL);
	return r;
}

/* Describes the current token for error messages. */
static const char *
tok_name(Parser *p)
{
	switch (p->tok)
	{
		case TK_END:
			return "end of expression";
		case TK_IDENT:
			return "word";
		case TK_QIDENT:
			return "quoted name";
		case TK_STRING:
			return "string";
		case TK_NUMBER:
			return "number";
		case TK_LPAREN:
			return "\"(\"";
		case TK_RPAREN:
			return "\")\"";
		case TK_COMMA:
			return "\",\"";
		case TK_AT:
			return "\"@\"";
		case TK_OP:
			return "comparison operator";
		case TK_BAD:
			return "unexpected character";
	}
	return "token";
}

/* Scans a quoted token starting at p->pos (the quote); false when unterminated. */
static bool
scan_quoted(Parser *p, char quote)
{
	size_t		i = p->pos + 1;

	while (i < p->len)
	{
		if (p->src[i] == quote)
		{
			if (i + 1 < p->len && p->src[i + 1] == quote)
			{
				i += 2;
				continue;
			}
			p->tok_len = i + 1 - p->tok_start;
			p->pos = i + 1;
			return true;
		}
		i++;
	}
	return false;
}

/* Advances to the next token; false (with the error set) on a lexical error. */
static bool
next(Parser *p)
{
	unsigned char c;

	while (p->pos < p->len && is_space((unsigned char) p->src[p->pos]))
		p->pos++;
	p->tok_start = p->pos;
	p->tok_len = 0;
	if (p->pos >= p->len)
	{
		p->tok = TK_END;
		return true;
	}
	c = (unsigned char) p->src[p->pos];
	if (is_ident_start(c))
	{
		size_t		i = p->pos;

		while (i < p->len && is_ident_char((unsigned char) p->src[i]))
			i++;
		p->tok = TK_IDENT;
		p->tok_len = i - p->pos;
		p->pos = i;
		return true;
	}
	if (is_digit(c) || ((c == '-' || c == '.') && p->pos + 1 < p->len && is_digit((unsigned char) p->src[p->pos + 1])))
	{
		size_t		i = p->pos;

		if (p->src[i] == '-')
			i++;
		while (i < p->len && is_digit((unsigned char) p->src[i]))
			i++;
		if (i < p->len && p->src[i] == '.')
		{
			i++;
			while (i < p->len && is_digit((unsigned char) p->src[i]))
				i++;
		}
		if (i < p->len && (p->src[i] == 'e' || p->src[i] == 'E'))
		{
			size_t		j = i + 1;

			if (j < p->len && (p->src[j] == '+' || p->src[j] == '-'))
				j++;
			if (j < p->len && is_digit((unsigned char) p->src[j]))
			{
				while (j < p->len && is_digit((unsigned char) p->src[j]))
					j++;
				i = j;
			}
		}
		/* "12abc" is not a number followed by a word */
		if (i < p->len && is_ident_char((unsigned char) p->src[i]))
		{
			fail(p, TE_ERR_SYNTAX, p->pos, "malformed number", NULL);
			return false;
		}
		p->tok = TK_NUMBER;
		p->tok_len = i - p->pos;
		p->pos = i;
		return true;
	}
	if (c == '\'' || c == '"')
	{
		if (!scan_quoted(p, (char) c))
		{
			fail(p, TE_ERR_SYNTAX, p->pos, c == '\'' ? "unterminated string" : "unterminated quoted name", NULL);
			return false;
		}
		p->tok = c == '\'' ? TK_STRING : TK_QIDENT;
		return true;
	}
	p->tok_len = 1;
	p->pos++;
	switch (c)
	{
		case '(':
			p->tok = TK_LPAREN;
			return true;
		case ')':
			p->tok = TK_RPAREN;
			return true;
		case ',':
			p->tok = TK_COMMA;
			return true;
		case '@':
			p->tok = TK_AT;
			return true;
		case '=':
			p->tok = TK_OP;
			p->tok_op = TE_EQ;
			return true;
		case '<':
		case '>':
		case '!':
			{
				bool		eq = p->pos < p->len && p->src[p->pos] == '=';

				p->tok = TK_OP;
				if (c == '<' && p->pos < p->len && p->src[p->pos] == '>')
				{
					p->tok_op = TE_NE;
					p->pos++;
				}
				else if (c == '!')
				{
					if (!eq)
					{
						p->tok = TK_BAD;
						return true;
					}
					p->tok_op = TE_NE;
					p->pos++;
				}
				else if (eq)
				{
					p->tok_op = c == '<' ? TE_LE : TE_GE;
					p->pos++;
				}
				else
					p->tok_op = c == '<' ? TE_LT : TE_GT;
				p->tok_len = p->pos - p->tok_start;
				return true;
			}
		default:
			p->tok = TK_BAD;
			return true;
	}
}

/* True when the current token is the (case-insensitive) keyword kw. */
static bool
is_kw(Parser *p, const char *kw)
{
	size_t		n = strlen(kw);

	if (p->tok != TK_IDENT || p->tok_len != n)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = p->src[p->tok_start + i];

		if (c >= 'a' && c <= 'z')
			c = (char) (c - 'a' + 'A');
		if (c != kw[i])
			return false;
	}
	return true;
}

static bool
is_reserved(Parser *p)
{
	return is_kw(p, "AND") || is_kw(p, "OR") || is_kw(p, "NOT") || is_kw(p, "IN") || is_kw(p, "BETWEEN");
}

/* Copies the current token's text, unquoting quoted tokens. */
static char *
tok_text(Parser *p)
{
	const char *s = p->src + p->tok_start;
	size_t		n = p->tok_len;
	char	   *out;
	size_t		j = 0;

	if (p->tok == TK_STRING || p->tok == TK_QIDENT)
	{
		char		q = s[0];

		out = alloc_or_fail(p, n);
		if (out == NULL)
			return NULL;
		for (size_t i = 1; i + 1 < n; i++)
		{
			out[j++] = s[i];
			if (s[i] == q)
				i++;			/* doubled quote */
		}
		out[j] = '\0';
		return out;
	}
	out = alloc_or_fail(p, n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static TagExprNode *
new_node(Parser *p, TagExprKind kind, size_t pos)
{
	TagExprNode *n = alloc_or_fail(p, sizeof(TagExprNode));

	if (n != NULL)
	{
		n->kind = kind;
		n->pos = (int) pos;
		n->height = 1;
	}
	return n;
}

/* A name: identifier (not a keyword) or quoted identifier; NUL bytes and empty names are refused. */
static char *
parse_name(Parser *p, const char *what)
{
	char	   *name;

	if (!((p->tok == TK_IDENT && !is_reserved(p)) || p->tok == TK_QIDENT))
		return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected %s", what);
	if (memchr(p->src + p->tok_start, '\0', p->tok_len) != NULL || p->tok_len == 2 * (p->tok == TK_QIDENT))
		return fail(p, TE_ERR_SYNTAX, p->tok_start, "%s must not be empty or contain NUL", what);
	name = tok_text(p);
	if (name == NULL)
		return NULL;
	if (!next(p))
		return NULL;
	return name;
}

/* A value: string, number or bare word. */
static bool
parse_value(Parser *p, TagExprValue *v, bool need_number)
{
	if (p->tok == TK_NUMBER)
		v->is_number = true;
	else if (p->tok == TK_STRING)
		v->is_string = true;
	else if (p->tok != TK_IDENT || is_reserved(p))
	{
		fail(p, TE_ERR_SYNTAX, p->tok_start, need_number ? "expected a number" : "expected a value", NULL);
		return false;
	}
	if (need_number && !v->is_number)
	{
		fail(p, TE_ERR_SYNTAX, p->tok_start, "expected a number", NULL);
		return false;
	}
	if (memchr(p->src + p->tok_start, '\0', p->tok_len) != NULL)
	{
		fail(p, TE_ERR_SYNTAX, p->tok_start, "a value must not contain NUL", NULL);
		return false;
	}
	v->text = tok_text(p);
	if (v->text == NULL)
		return false;
	return next(p);
}

static TagExprNode *
parse_predicate(Parser *p)
{
	size_t		start = p->tok_start;
	char	   *tag = parse_name(p, "a tag name, \"(\", NOT or @audience");
	TagExprNode *n;
	bool		negated = false;

	if (tag == NULL)
		return NULL;
	if (is_kw(p, "NOT"))
	{
		negated = true;
		if (!next(p))
			return NULL;
		if (!is_kw(p, "IN") && !is_kw(p, "BETWEEN"))
			return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected IN or BETWEEN after NOT", NULL);
	}
	if (p->tok == TK_OP)
	{
		n = new_node(p, TE_CMP, start);
		if (n == NULL)
			return NULL;
		n->tag = tag;
		n->op = p->tok_op;
		n->nvalues = 1;
		n->values = alloc_or_fail(p, sizeof(TagExprValue));
		if (n->values == NULL || !next(p))
			return NULL;
		if (!parse_value(p, &n->values[0], n->op != TE_EQ && n->op != TE_NE))
			return NULL;
		return n;
	}
	if (is_kw(p, "IN"))
	{
		int			cap = 4;

		n = new_node(p, TE_IN, start);
		if (n == NULL)
			return NULL;
		n->tag = tag;
		n->negated = negated;
		n->values = alloc_or_fail(p, cap * sizeof(TagExprValue));
		if (n->values == NULL || !next(p))
			return NULL;
		if (p->tok != TK_LPAREN)
			return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected \"(\" after IN", NULL);
		if (!next(p))
			return NULL;
		for (;;)
		{
			if (n->nvalues == cap)
			{
				TagExprValue *bigger;

				if (cap > (1 << 24))
					return fail(p, TE_ERR_TOO_DEEP, p->tok_start, "too many values in IN list", NULL);
				bigger = alloc_or_fail(p, 2 * cap * sizeof(TagExprValue));
				if (bigger == NULL)
					return NULL;
				memcpy(bigger, n->values, cap * sizeof(TagExprValue));
				n->values = bigger;
				cap *= 2;
			}
			if (!parse_value(p, &n->values[n->nvalues], false))
				return NULL;
			n->nvalues++;
			if (p->tok == TK_COMMA)
			{
				if (!next(p))
					return NULL;
				continue;
			}
			if (p->tok == TK_RPAREN)
				break;
			return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected \",\" or \")\" in IN list", NULL);
		}
		if (!next(p))
			return NULL;
		return n;
	}
	if (is_kw(p, "BETWEEN"))
	{
		n = new_node(p, TE_BETWEEN, start);
		if (n == NULL)
			return NULL;
		n->tag = tag;
		n->negated = negated;
		n->nvalues = 2;
		n->values = alloc_or_fail(p, 2 * sizeof(TagExprValue));
		if (n->values == NULL || !next(p))
			return NULL;
		if (!parse_value(p, &n->values[0], true))
			return NULL;
		if (!is_kw(p, "AND"))
			return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected AND in BETWEEN", NULL);
		if (!next(p))
			return NULL;
		if (!parse_value(p, &n->values[1], true))
			return NULL;
		return n;
	}
	/* a bare boolean tag */
	n = new_node(p, TE_BOOL, start);
	if (n != NULL)
		n->tag = tag;
	return n;
}

static TagExprNode *
parse_unary(Parser *p)
{
	size_t		start = p->tok_start;
	TagExprNode *n;

	if (++p->depth > TAGEXPR_MAX_DEPTH)
		return fail(p, TE_ERR_TOO_DEEP, p->tok_start, "expression is nested too deeply", NULL);
	if (is_kw(p, "NOT"))
	{
		n = new_node(p, TE_NOT, start);
		if (n == NULL || !next(p))
			return NULL;
		n->left = parse_unary(p);
		if (n->left == NULL)
			return NULL;
		n->height = n->left->height + 1;
	}
	else if (p->tok == TK_LPAREN)
	{
		if (!next(p))
			return NULL;
		n = parse_or(p);
		if (n == NULL)
			return NULL;
		if (p->tok != TK_RPAREN)
			return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected \")\" but found %s", tok_name(p));
		if (!next(p))
			return NULL;
	}
	else if (p->tok == TK_AT)
	{
		if (!next(p))
			return NULL;
		n = new_node(p, TE_AUDIENCE, start);
		if (n == NULL)
			return NULL;
		n->tag = parse_name(p, "an audience name after \"@\"");
		if (n->tag == NULL)
			return NULL;
		/* @brand/name: the audience saved for that brand */
		if (p->tok == TK_BAD && p->src[p->tok_start] == '/')
		{
			if (!next(p))
				return NULL;
			n->brand = n->tag;
			n->tag = parse_name(p, "an audience name after \"@brand/\"");
			if (n->tag == NULL)
				return NULL;
		}
	}
	else if (is_kw(p, "AUDIENCE") && p->pos < p->len)
	{
		/* audience('name') unless "audience" is itself a tag name (not followed by "(") */
		size_t		save_pos = p->pos;
		size_t		save_start = p->tok_start,
					save_len = p->tok_len;
		TokKind		save_tok = p->tok;

		if (!next(p))
			return NULL;
		if (p->tok == TK_LPAREN)
		{
			n = new_node(p, TE_AUDIENCE, start);
			if (n == NULL || !next(p))
				return NULL;
			if (p->tok == TK_STRING)
			{
				if (p->tok_len == 2 || memchr(p->src + p->tok_start, '\0', p->tok_len) != NULL)
					return fail(p, TE_ERR_SYNTAX, p->tok_start, "an audience name must not be empty or contain NUL", NULL);
				n->tag = tok_text(p);
				if (n->tag == NULL || !next(p))
					return NULL;
			}
			else
			{
				n->tag = parse_name(p, "an audience name in audience(...)");
				if (n->tag == NULL)
					return NULL;
			}
			if (p->tok != TK_RPAREN)
				return fail(p, TE_ERR_SYNTAX, p->tok_start, "expected \")\" after the audience name", NULL);
			if (!next(p))
				return NULL;
		}
		else
		{
			p->pos = save_pos;
			p->tok_start = save_start;
			p->tok_len = save_len;
			p->tok = save_tok;
			n = parse_predicate(p);
		}
	}
	else
		n = parse_predicate(p);
	p->depth--;
	if (n != NULL && n->height > TAGEXPR_MAX_HEIGHT)
		return fail(p, TE_ERR_TOO_DEEP, start, "expression has too many terms in a row (%s)", "at most 1000 levels of AND/OR/NOT");
	return n;
}

static TagExprNode *
parse_and(Parser *p)
{
	TagExprNode *left = parse_unary(p);

	while (left != NULL && is_kw(p, "AND"))
	{
		TagExprNode *n = new_node(p, TE_AND, left->pos);

		if (n == NULL || !next(p))
			return NULL;
		n->left = left;
		n->right = parse_unary(p);
		if (n->right == NULL)
			return NULL;
		n->height = 1 + (n->left->height > n->right->height ? n->left->height : n->right->height);
		if (n->height > TAGEXPR_MAX_HEIGHT)
			return fail(p, TE_ERR_TOO_DEEP, n->right->pos, "expression has too many terms in a row (%s)", "at most 1000 levels of AND/OR/NOT");
		left = n;
	}
	return left;
}

static TagExprNode *
parse_or(Parser *p)
{
	TagExprNode *left;

	/* recursion comes back here only through parse_unary, which counts the depth */
	left = parse_and(p);
	while (left != NULL && is_kw(p, "OR"))
	{
		TagExprNode *n = new_node(p, TE_OR, left->pos);

		if (n == NULL || !next(p))
			return NULL;
		n->left = left;
		n->right = parse_and(p);
		if (n->right == NULL)
			return NULL;
		n->height = 1 + (n->left->height > n->right->height ? n->left->height : n->right->height);
		if (n->height > TAGEXPR_MAX_HEIGHT)
			return fail(p, TE_ERR_TOO_DEEP, n->right->pos, "expression has too many terms in a row (%s)", "at most 1000 levels of AND/OR/NOT");
		left = n;
	}
	return left;
}

TagExprNode *
tagexpr_parse(const char *src, size_t len, TagExprAlloc alloc, void *ctx, TagExprError *err)
{
	Parser		p;
	TagExprNode *n;

	memset(&p, 0, sizeof(p));
	memset(err, 0, sizeof(*err));
	p.src = src;
	p.len = len;
	p.alloc = alloc;
	p.ctx = ctx;
	p.err = err;
	if (!next(&p))
		return NULL;
	if (p.tok == TK_END)
		return fail(&p, TE_ERR_SYNTAX, 0, "the expression is empty", NULL);
	n = parse_or(&p);
	if (n == NULL)
	{
		if (err->code == TE_OK)
			fail(&p, TE_ERR_SYNTAX, p.tok_start, "unexpected %s", tok_name(&p));
		return NULL;
	}
	if (p.tok != TK_END)
		return fail(&p, TE_ERR_SYNTAX, p.tok_start, "unexpected %s after the end of the expression", tok_name(&p));
	return n;
}

/* ---------- deparse ---------- */

static size_t
put(char *buf, size_t at, const char *s, size_t n)
{
	if (buf != NULL)
		memcpy(buf + at, s, n);
	return n;
}

static size_t
put_quoted(char *buf, size_t at, const char *s, char q)
{
	size_t		n = 0;

	n += put(buf, at + n, &q, 1);
	for (; *s; s++)
	{
		n += put(buf, at + n, s, 1);
		if (*s == q)
			n += put(buf, at + n, &q, 1);
	}
	n += put(buf, at + n, &q, 1);
	return n;
}

static size_t
put_value(char *buf, size_t at, const TagExprValue *v)
{
	if (v->is_number)
		return put(buf, at, v->text, strlen(v->text));
	return put_quoted(buf, at, v->text, '\'');
}

static size_t
deparse(const TagExprNode *node, char *buf, size_t at)
{
	static const char *const ops[] = {" = ", " <> ", " < ", " <= ", " > ", " >= "};
	size_t		n = 0;

	switch (node->kind)
	{
		case TE_AND:
		case TE_OR:
			n += put(buf, at + n, "(", 1);
			n += deparse(node->left, buf, at + n);
			n += node->kind == TE_AND ? put(buf, at + n, " AND ", 5) : put(buf, at + n, " OR ", 4);
			n += deparse(node->right, buf, at + n);
			n += put(buf, at + n, ")", 1);
			break;
		case TE_NOT:
			n += put(buf, at + n, "NOT ", 4);
			n += deparse(node->left, buf, at + n);
			break;
		case TE_CMP:
			n += put_quoted(buf, at + n, node->tag, '"');
			n += put(buf, at + n, ops[node->op], strlen(ops[node->op]));
			n += put_value(buf, at + n, &node->values[0]);
			break;
		case TE_IN:
			n += put_quoted(buf, at + n, node->tag, '"');
			n += node->negated ? put(buf, at + n, " NOT IN (", 9) : put(buf, at + n, " IN (", 5);
			for (int i = 0; i < node->nvalues; i++)
			{
				if (i > 0)
					n += put(buf, at + n, ", ", 2);
				n += put_value(buf, at + n, &node->values[i]);
			}
			n += put(buf, at + n, ")", 1);
			break;
		case TE_BETWEEN:
			n += put_quoted(buf, at + n, node->tag, '"');
			n += node->negated ? put(buf, at + n, " NOT BETWEEN ", 13) : put(buf, at + n, " BETWEEN ", 9);
			n += put_value(buf, at + n, &node->values[0]);
			n += put(buf, at + n, " AND ", 5);
			n += put_value(buf, at + n, &node->values[1]);
			break;
		case TE_BOOL:
			n += put_quoted(buf, at + n, node->tag, '"');
			break;
		case TE_AUDIENCE:
			n += put(buf, at + n, "@", 1);
			if (node->brand != NULL)
			{
				n += put_quoted(buf, at + n, node->brand, '"');
				n += put(buf, at + n, "/", 1);
			}
			n += put_quoted(buf, at + n, node->tag, '"');
			break;
	}
	return n;
}

size_t
tagexpr_deparse(const TagExprNode *node, char *buf)
{
	size_t		n = deparse(node, buf, 0);

	if (buf != NULL)
		buf[n] = '\0';
	return n;
}
