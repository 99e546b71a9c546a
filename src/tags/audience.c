/* tags/audience.c: evaluates tag expressions against the bitmap tables of audience.sql. */
/*
 * Leaves are retail_mid.tag_bitmap for boolean/enumerated tags, the bit-sliced index of a numeric tag
 * (retail_mid.tag_bsi, bitmap/bsi.c) for its comparisons, saved audience snapshots, and the customer universe
 * for NOT. Set algebra happens in CRoaring, in memory; SQL is only used to fetch the leaf bitmaps.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "bitmap/bitmap.h"
#include "bitmap/bsi.h"
#include "common/retail_mid.h"
#include "tags/tagexpr.h"

typedef struct TeEval
{
	const char *src;			/* the expression, for error positions */
	RbHandle   *universe;		/* fetched on the first NOT */
	text	   *brand;			/* brand context (audience(expr, brand)): brand tags read this brand's rows; or NULL */
} TeEval;

static void *
te_palloc(void *ctx, size_t size)
{
	return palloc0(size);
}

/* Character position (1-based) of a byte offset, for messages. */
static int
te_charpos(const char *src, int bytepos)
{
	return pg_mbstrlen_with_len(src, bytepos) + 1;
}

/*
 * The expression with a caret under the given byte offset (shown as the error's hint). Long expressions are
 * cut to a window of about 70 characters around the position; newlines and tabs print as spaces.
 */
static char *
te_caret(const char *src, int bytepos)
{
	StringInfoData buf;
	int			len = strlen(src);
	int			pos = te_charpos(src, bytepos) - 1;
	int			first = Max(0, pos - 40);
	int			ch = 0;
	int			col = 0;
	const char *p = src;

	initStringInfo(&buf);
	/* on its own lines, so the caret lines up whatever prefix the client prints before the hint */
	appendStringInfoString(&buf, "The error is marked with ^ below.\n");
	appendStringInfoString(&buf, first > 0 ? "  ..." : "  ");
	while (p < src + len && ch < first + 70)
	{
		int			l = pg_mblen(p);

		if (ch >= first)
		{
			if (*p == '\n' || *p == '\t' || *p == '\r')
				appendStringInfoChar(&buf, ' ');
			else
				appendBinaryStringInfo(&buf, p, Min(l, (int) (src + len - p)));
			if (ch < pos)
				col += Max(pg_dsplen(p), 1);	/* CJK characters are two columns wide */
		}
		p += l;
		ch++;
	}
	if (p < src + len)
		appendStringInfoString(&buf, "...");
	appendStringInfoString(&buf, first > 0 ? "\n     " : "\n  ");
	for (int i = 0; i < col; i++)
		appendStringInfoChar(&buf, ' ');
	appendStringInfoChar(&buf, '^');
	return buf.data;
}

#define te_error(code, src, bytepos, ...) \
	ereport(ERROR, \
			(errcode(code), \
			 errmsg(__VA_ARGS__), \
			 errdetail("The error is at position %d of the tag expression.", te_charpos((src), (bytepos))), \
			 errhint("%s", te_caret((src), (bytepos)))))

/* Parses or raises ERRCODE_SYNTAX_ERROR (or PROGRAM_LIMIT_EXCEEDED for nesting) with the position. */
static TagExprNode *
te_parse_text(text *t, char **src_out)
{
	char	   *src = text_to_cstring(t);
	TagExprError err;
	TagExprNode *n;

	n = tagexpr_parse(src, strlen(src), te_palloc, NULL, &err);
	if (n == NULL)
	{
		if (err.code == TE_ERR_TOO_DEEP)
			te_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, src, err.pos, "tag expression too complex: %s", err.message);
		te_error(ERRCODE_SYNTAX_ERROR, src, err.pos, "syntax error in tag expression at position %d: %s",
				 te_charpos(src, err.pos), err.message);
	}
	*src_out = src;
	return n;
}

/*
 * The evaluator's queries, prepared once per backend and kept: parsing and planning them on every call cost more
 * than the set algebra of a short expression (docs/benchmarks.md, "Audience latency"). The plan cache re-plans a
 * kept plan after DDL on what it reads and when the current role changes (row-level security), so keeping them
 * does not let one role's plan serve another.
 */
typedef enum TeQuery
{
	TE_Q_TAG_TYPE,
	TE_Q_ENUM,
	TE_Q_ENUM_NOT,
	TE_Q_NUMERIC,
	TE_Q_UNIVERSE,
	TE_Q_UNIVERSE_BRAND,
	TE_Q_AUDIENCE,
	TE_Q_BRAND_VISIBLE,
	TE_NQUERIES
} TeQuery;

static const struct
{
	const char *sql;
	int			nargs;
	Oid			types[3];
}			te_queries[TE_NQUERIES] = {
	[TE_Q_TAG_TYPE] = {"SELECT value_type, scope = 'brand', "
		"scope = 'group' AND NOT shared_with_brands AND NOT retail_mid.brand_visible('*') "
	"FROM retail_mid.tag_definition WHERE tag_name = $1", 1, {TEXTOID}},
	/* the rows of the values (several brands) are OR-ed in C: rb_or_agg would serialise the union once more */
	[TE_Q_ENUM] = {"SELECT bitmap FROM retail_mid.tag_bitmap WHERE tag_name = $1 AND tag_value = ANY ($2) "
	"AND ($3::text IS NULL OR brand = $3)", 3, {TEXTOID, TEXTARRAYOID, TEXTOID}},
	[TE_Q_ENUM_NOT] = {"SELECT bitmap FROM retail_mid.tag_bitmap WHERE tag_name = $1 AND tag_value <> ALL ($2) "
	"AND ($3::text IS NULL OR brand = $3)", 3, {TEXTOID, TEXTARRAYOID, TEXTOID}},
	[TE_Q_NUMERIC] = {"SELECT b.scale, b.bsi FROM retail_mid.tag_definition d "
		"LEFT JOIN retail_mid.tag_bsi b ON b.tag_name = d.tag_name "
		"AND ($2::text IS NULL OR d.scope <> 'brand' OR b.brand = $2) "
	"WHERE d.tag_name = $1 AND d.value_type = 'numeric'", 2, {TEXTOID, TEXTOID}},
	/* the body of retail_mid.customer_universe(): the cache plus the dictionary keys added since, else built */
	[TE_Q_UNIVERSE] = {"SELECT coalesce(retail_mid.rb_or(u.bitmap, coalesce((SELECT retail_mid.rb_build_agg(k.customer_key) "
		"FROM retail_mid.customer_key k WHERE k.customer_key > u.max_key), '{}')), "
		"(SELECT retail_mid.rb_build_agg(x.customer_key) FROM (SELECT k.customer_key FROM retail_mid.customer_key k "
		"UNION ALL SELECT v.customer_key FROM retail_mid.tag_value v WHERE v.valid_to IS NULL) x), '{}') "
	"FROM (SELECT 1) one LEFT JOIN retail_mid.customer_universe u ON true", 0, {InvalidOid}},
	[TE_Q_UNIVERSE_BRAND] = {"SELECT retail_mid.rb_build_agg(customer_key) FROM retail_mid.customer_brand "
	"WHERE brand = $1", 1, {TEXTOID}},
	[TE_Q_AUDIENCE] = {"SELECT DISTINCT ON (brand) snapshot, brand FROM retail_mid.audience_package "
		"WHERE name = $1 AND ($2 IS NULL OR brand = $2) "
	"ORDER BY brand, version DESC LIMIT 2", 2, {TEXTOID, TEXTOID}},
	[TE_Q_BRAND_VISIBLE] = {"SELECT retail_mid.brand_visible($1)", 1, {TEXTOID}},
};
static SPIPlanPtr te_plans[TE_NQUERIES];

/* Runs one of the evaluator's queries (caller is in SPI); the rows are in SPI_tuptable. */
static uint64
te_run(TeQuery q, Datum *values, const char *nulls, long limit)
{
	int			rc;

	if (te_plans[q] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(te_queries[q].sql, te_queries[q].nargs, (Oid *) te_queries[q].types);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		te_plans[q] = plan;
	}
	rc = SPI_execute_plan(te_plans[q], values, nulls, true, limit);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tag expression query failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* The union of the rbitmaps in the first column of the rows of the last query (NULLs ignored). */
static RbHandle *
te_union_of_rows(void)
{
	SPITupleTable *rows = SPI_tuptable;
	uint64		nrows = SPI_processed;
	RbHandle   *result = NULL;

	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull);
		RbHandle   *part;

		if (isnull)
			continue;
		part = RbFromDatum(d);
		if (result == NULL)
			result = part;
		else
		{
			roaring_bitmap_or_inplace(result->rb, part->rb);
			RbFree(part);
		}
	}
	return result != NULL ? result : RbNew();
}

/*
 * value_type of a tag, or an error pointing at the tag when it is not defined, or when it is a group tag that
 * is not shared with brands and the caller may not read group-wide rows (an empty answer would look like "no
 * customer matches"). *by_brand: the tag is of scope brand.
 */
static char
te_tag_type(TeEval *ev, const TagExprNode *n, bool *by_brand)
{
	Datum		values[1] = {CStringGetTextDatum(n->tag)};
	char	   *t;
	bool		isnull;

	if (te_run(TE_Q_TAG_TYPE, values, NULL, 1) == 0)
		te_error(ERRCODE_UNDEFINED_OBJECT, ev->src, n->pos, "tag \"%s\" does not exist", n->tag);
	t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*by_brand = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tag \"%s\" is group-wide and not shared with brands", n->tag),
				 errdetail("Its values are computed from the data of every brand; only administrators read them."),
				 errhint("An administrator can share it: UPDATE retail_mid.tag_definition SET shared_with_brands = true WHERE tag_name = '%s'.",
						 n->tag)));
	return t[0];				/* b(oolean), e(num), n(umeric) */
}

/* Normalises a boolean literal to 'true'/'false' as evaluate_tags stores it. */
static const char *
te_bool_text(TeEval *ev, const TagExprNode *n, const TagExprValue *v)
{
	bool		b;

	if (!parse_bool(v->text, &b))
		te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
				 "tag \"%s\" is boolean but \"%s\" is not a boolean value", n->tag, v->text);
	return b ? "true" : "false";
}

/*
 * Bitmap of customers whose enumerated/boolean tag has one of the values (negated: a value other than all of them):
 * the OR of the rows the caller may read (row-level security), or, in a brand context for a brand tag, of that
 * brand's rows. A predicate holds when one of the customer's visible values satisfies it (see te_eval).
 */
static RbHandle *
te_enum(TeEval *ev, const TagExprNode *n, char type, bool by_brand, const TagExprValue *vals, int nvals,
		bool negated)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', by_brand && ev->brand != NULL ? ' ' : 'n'};
	Datum	   *elems;

	values[0] = CStringGetTextDatum(n->tag);
	values[2] = PointerGetDatum(ev->brand);
	elems = palloc(sizeof(Datum) * Max(nvals, 1));
	for (int i = 0; i < nvals; i++)
		elems[i] = CStringGetTextDatum(type == 'b' ? te_bool_text(ev, n, &vals[i]) : vals[i].text);
	values[1] = PointerGetDatum(construct_array(elems, nvals, TEXTOID, -1, false, TYPALIGN_INT));
	te_run(negated ? TE_Q_ENUM_NOT : TE_Q_ENUM, values, nulls, 0);
	return te_union_of_rows();
}

/*
 * Customers whose numeric tag lies in the range (NULL bound = unbounded), from the tag's bit-sliced index: the
 * numeric bounds become inclusive bounds on the values scaled by 10^numeric_scale (rounded inwards, so the
 * answer is exact for the stored values), then O'Neil-Quass range evaluation on the slices. Caller is in SPI.
 */
static RbHandle *
TagNumericRange(const char *tag, text *brand, Numeric lo, bool lo_incl, Numeric hi, bool hi_incl)
{
	Datum		values[2] = {CStringGetTextDatum(tag), PointerGetDatum(brand)};
	char		nulls[2] = {' ', brand == NULL ? 'n' : ' '};
	RbHandle   *result = RbNew();
	SPITupleTable *rows;
	uint64		nrows;

	/*
	 * One index per brand row the caller may read (row-level security): the group-wide one of a group tag for
	 * admins, the entitled brands' own for analysts; the answer is the union of their ranges. In a brand context
	 * ($2 not NULL) a brand tag reads that brand's index only.
	 */
	if (te_run(TE_Q_NUMERIC, values, nulls, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("numeric tag \"%s\" does not exist", tag)));
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		int			scale;
		Datum		bsi;
		int64		ilo = 0, ihi = 0;
		int			clo = 1, chi = 1;

		/* the index's own scale: the definition's may have changed since it was built */
		scale = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		if (isnull)
			scale = 0;			/* no index yet: the bounds are still checked (NaN), the answer is empty */
		if (lo != NULL)
			clo = BsiScaleBound(lo, scale, true, lo_incl, &ilo);
		if (hi != NULL)
			chi = BsiScaleBound(hi, scale, false, hi_incl, &ihi);
		bsi = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
		if (isnull || clo < 0 || chi < 0)
			continue;			/* no values yet, or a bound excluding everything */
		{
			RbHandle   *part = BsiRange(bsi, clo == 0, ilo, chi == 0, ihi, true);

			roaring_bitmap_or_inplace(result->rb, part->rb);
			RbFree(part);
		}
	}
	return result;
}

/* A numeric literal of the expression as a Numeric, or an error at the term. */
static Numeric
te_number(TeEval *ev, const TagExprNode *n, const TagExprValue *b)
{
	if (b == NULL)
		return NULL;
	if (!b->is_number)
		te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
				 "tag \"%s\" is numeric but '%s' is not a number", n->tag, b->text);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(b->text),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/* Bitmap of customers whose numeric tag lies in the range (NULL bound = unbounded); exact at the bounds. */
static RbHandle *
te_numeric(TeEval *ev, const TagExprNode *n, const TagExprValue *lo, bool lo_incl,
		   const TagExprValue *hi, bool hi_incl)
{
	return TagNumericRange(n->tag, ev->brand, te_number(ev, n, lo), lo_incl, te_number(ev, n, hi), hi_incl);
}

/* a := a | b, freeing b */
static RbHandle *
te_union(RbHandle *a, RbHandle *b)
{
	roaring_bitmap_or_inplace(a->rb, b->rb);
	RbFree(b);
	return a;
}

static int
te_numeric_cmp(const void *a, const void *b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(*(Numeric const *) a),
											 NumericGetDatum(*(Numeric const *) b)));
}

/*
 * Customers with a value outside the list (NOT IN): the open intervals between the sorted values, each answered
 * from the index, so that with several visible indexes (brands) it holds when one of the customer's values is
 * outside the list, as for every other predicate.
 */
static RbHandle *
te_numeric_not_in(TeEval *ev, const TagExprNode *n)
{
	Numeric    *v = palloc(sizeof(Numeric) * n->nvalues);
	RbHandle   *result;

	for (int i = 0; i < n->nvalues; i++)
		v[i] = te_number(ev, n, &n->values[i]);
	qsort(v, n->nvalues, sizeof(Numeric), te_numeric_cmp);
	result = TagNumericRange(n->tag, ev->brand, NULL, false, v[0], false);
	for (int i = 1; i < n->nvalues; i++)
		if (te_numeric_cmp(&v[i - 1], &v[i]) < 0)
			result = te_union(result, TagNumericRange(n->tag, ev->brand, v[i - 1], false, v[i], false));
	return te_union(result, TagNumericRange(n->tag, ev->brand, v[n->nvalues - 1], false, NULL, false));
}

PG_FUNCTION_INFO_V1(tag_numeric_range);

/* tag_numeric_range(tag, lo, lo_inclusive, hi, hi_inclusive): the evaluator's numeric leaf, callable from SQL. */
Datum
tag_numeric_range(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *tag;
	RbHandle   *h;
	struct varlena *out;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	tag = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	h = TagNumericRange(tag, NULL, PG_ARGISNULL(1) ? NULL : PG_GETARG_NUMERIC(1), PG_GETARG_BOOL(2),
						PG_ARGISNULL(3) ? NULL : PG_GETARG_NUMERIC(3), PG_GETARG_BOOL(4));
	MemoryContextSwitchTo(outer);
	out = RbToVarlena(h->rb);
	SPI_finish();
	PG_RETURN_POINTER(out);
}

/*
 * The set NOT is relative to: in a brand context the brand's customers (retail_mid.customer_brand), so that
 * "NOT x" in brand A never returns customers of other brands; otherwise every known customer the caller may see.
 * Fetched once per evaluation.
 */
static RbHandle *
te_universe(TeEval *ev)
{
	if (ev->universe == NULL)
	{
		Datum		values[1] = {PointerGetDatum(ev->brand)};

		te_run(ev->brand != NULL ? TE_Q_UNIVERSE_BRAND : TE_Q_UNIVERSE, values, NULL, 1);
		ev->universe = te_union_of_rows();
	}
	return ev->universe;
}

PG_FUNCTION_INFO_V1(customer_universe);

/* customer_universe(): the set NOT is relative to outside a brand context (see te_universe). */
Datum
customer_universe(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	TeEval		ev = {NULL, NULL, NULL};
	struct varlena *out;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	te_universe(&ev);
	MemoryContextSwitchTo(outer);
	out = RbToVarlena(ev.universe->rb);
	SPI_finish();
	PG_RETURN_POINTER(out);
}

static RbHandle *
te_universe_copy(TeEval *ev)
{
	RbHandle   *h = RbHandleAlloc();

	h->rb = roaring_bitmap_copy(te_universe(ev)->rb);
	RbCheckAlloc(h);
	return h;
}

/* a := a - b, freeing b */
static RbHandle *
te_minus(RbHandle *a, RbHandle *b)
{
	roaring_bitmap_andnot_inplace(a->rb, b->rb);
	RbFree(b);
	return a;
}

/* a := a AND universe (not copied) */
static RbHandle *
te_within_universe(TeEval *ev, RbHandle *a)
{
	roaring_bitmap_and_inplace(a->rb, te_universe(ev)->rb);
	return a;
}

static RbHandle *
te_eval(TeEval *ev, const TagExprNode *n)
{
	RbHandle   *l;
	RbHandle   *r;
	char		type;
	bool		by_brand;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	switch (n->kind)
	{
		case TE_AND:
			{
				/*
				 * a AND NOT b = (a - b) AND universe: no copy of the universe, and the difference works on a, which
				 * is usually far smaller than the universe. When both sides are NOT, the left one is a complement
				 * already (within the universe).
				 */
				bool		rneg = n->right->kind == TE_NOT;
				bool		lneg = n->left->kind == TE_NOT && !rneg;

				l = te_eval(ev, lneg ? n->left->left : n->left);
				r = te_eval(ev, rneg ? n->right->left : n->right);
				if (lneg)
					return te_within_universe(ev, te_minus(r, l));
				if (rneg)
					return te_within_universe(ev, te_minus(l, r));
				roaring_bitmap_and_inplace(l->rb, r->rb);
				RbFree(r);
				return l;
			}
		case TE_OR:
			l = te_eval(ev, n->left);
			r = te_eval(ev, n->right);
			roaring_bitmap_or_inplace(l->rb, r->rb);
			RbFree(r);
			return l;
		case TE_NOT:
			l = te_eval(ev, n->left);
			return te_minus(te_universe_copy(ev), l);
		case TE_AUDIENCE:
			{
				/*
				 * The latest version of each brand's audience of that name that the caller may read (row-level
				 * security on audience_package); @brand/name picks the brand, a bare name must be unambiguous.
				 */
				Datum		values[2] = {CStringGetTextDatum(n->tag),
				n->brand ? CStringGetTextDatum(n->brand) : (Datum) 0};
				char		nulls[2] = {' ', n->brand ? ' ' : 'n'};
				bool		isnull;
				Datum		d;

				if (te_run(TE_Q_AUDIENCE, values, nulls, 2) == 0)
				{
					if (n->brand)
						te_error(ERRCODE_UNDEFINED_OBJECT, ev->src, n->pos, "saved audience \"%s\" of brand \"%s\" does not exist",
								 n->tag, n->brand);
					te_error(ERRCODE_UNDEFINED_OBJECT, ev->src, n->pos, "saved audience \"%s\" does not exist", n->tag);
				}
				if (SPI_processed > 1)
					ereport(ERROR,
							(errcode(ERRCODE_AMBIGUOUS_ALIAS),
							 errmsg("saved audience \"%s\" is ambiguous: it exists for several brands", n->tag),
							 errdetail("The error is at position %d of the tag expression.", te_charpos(ev->src, n->pos)),
							 errhint("Name the brand as in @\"%s\"/\"%s\".",
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), n->tag)));
				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
				return isnull ? RbNew() : RbFromDatum(d);
			}
		default:
			break;
	}

	/* predicates */
	type = te_tag_type(ev, n, &by_brand);
	if (type == 'n')
	{
		const TagExprValue *v = n->values;

		switch (n->kind)
		{
			case TE_BOOL:
				te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
						 "tag \"%s\" is numeric and needs a comparison", n->tag);
				break;
			case TE_CMP:
				switch (n->op)
				{
					case TE_EQ:
						return te_numeric(ev, n, v, true, v, true);
					case TE_NE:
						return te_union(te_numeric(ev, n, NULL, false, v, false),
										te_numeric(ev, n, v, false, NULL, false));
					case TE_LT:
						return te_numeric(ev, n, NULL, false, v, false);
					case TE_LE:
						return te_numeric(ev, n, NULL, false, v, true);
					case TE_GT:
						return te_numeric(ev, n, v, false, NULL, false);
					case TE_GE:
						return te_numeric(ev, n, v, true, NULL, false);
				}
				break;
			case TE_BETWEEN:
				if (n->negated)
					return te_union(te_numeric(ev, n, NULL, false, &v[0], false),
									te_numeric(ev, n, &v[1], false, NULL, false));
				return te_numeric(ev, n, &v[0], true, &v[1], true);
			case TE_IN:
				if (n->negated)
					return te_numeric_not_in(ev, n);
				l = RbNew();
				for (int i = 0; i < n->nvalues; i++)
					l = te_union(l, te_numeric(ev, n, &v[i], true, &v[i], true));
				return l;
			default:
				break;
		}
		elog(ERROR, "unexpected tag expression node %d", (int) n->kind);
	}

	/* boolean and enumerated tags */
	switch (n->kind)
	{
		case TE_BOOL:
			if (type != 'b')
				te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
						 "tag \"%s\" is not boolean; compare it with a value", n->tag);
			{
				TagExprValue t = {"true", false, false};

				return te_enum(ev, n, type, by_brand, &t, 1, false);
			}
		case TE_CMP:
			if (n->op != TE_EQ && n->op != TE_NE)
				te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
						 "tag \"%s\" is not numeric; use = <> or IN", n->tag);
			return te_enum(ev, n, type, by_brand, n->values, 1, n->op == TE_NE);
		case TE_IN:
			return te_enum(ev, n, type, by_brand, n->values, n->nvalues, n->negated);
		case TE_BETWEEN:
			te_error(ERRCODE_DATATYPE_MISMATCH, ev->src, n->pos,
					 "tag \"%s\" is not numeric; BETWEEN needs a numeric tag", n->tag);
			break;
		default:
			break;
	}
	elog(ERROR, "unexpected tag expression node %d", (int) n->kind);
	return NULL;
}

/*
 * Evaluates the expression (in the context of a brand when brand is not NULL); the result is serialised in the
 * caller's memory context.
 */
static struct varlena *
te_audience(text *expr, text *brand, int64 *count)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *src;
	TagExprNode *tree = te_parse_text(expr, &src);
	TeEval		ev = {src, NULL, brand};
	RbHandle   *result;
	struct varlena *out = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (brand != NULL)
	{
		Datum		values[1] = {PointerGetDatum(brand)};
		bool		isnull;

		if (te_run(TE_Q_BRAND_VISIBLE, values, NULL, 1) != 1)
			elog(ERROR, "brand visibility check returned no row");
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("brand \"%s\" is not visible to the current user", text_to_cstring(brand))));
	}
	result = te_eval(&ev, tree);
	if (count != NULL)
		*count = (int64) roaring_bitmap_get_cardinality(result->rb);
	else
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		out = RbToVarlena(result->rb);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();				/* frees every bitmap fetched above */
	return out;
}

PG_FUNCTION_INFO_V1(audience);
Datum
audience(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(te_audience(PG_GETARG_TEXT_PP(0), NULL, NULL));
}

PG_FUNCTION_INFO_V1(audience_count);
Datum
audience_count(PG_FUNCTION_ARGS)
{
	int64		c;

	te_audience(PG_GETARG_TEXT_PP(0), NULL, &c);
	PG_RETURN_INT64(c);
}

PG_FUNCTION_INFO_V1(audience_in_brand);
/* audience(expression, brand): brand tags answer with that brand's values; group tags as without a brand. */
Datum
audience_in_brand(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(te_audience(PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_P_COPY(1), NULL));
}

PG_FUNCTION_INFO_V1(audience_count_in_brand);
Datum
audience_count_in_brand(PG_FUNCTION_ARGS)
{
	int64		c;

	te_audience(PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_P_COPY(1), &c);
	PG_RETURN_INT64(c);
}

PG_FUNCTION_INFO_V1(audience_parse);
/* The canonical text of an expression (syntax check without evaluation). */
Datum
audience_parse(PG_FUNCTION_ARGS)
{
	char	   *src;
	TagExprNode *tree = te_parse_text(PG_GETARG_TEXT_PP(0), &src);
	size_t		len = tagexpr_deparse(tree, NULL);
	char	   *buf = palloc(len + 1);

	tagexpr_deparse(tree, buf);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf, (int) len));
}
