/* governance/quality.c: the two aggregates behind retail_mid's data quality rules. */
/*
 * quality_profile(row_id tid, VARIADIC "any") profiles a table in one scan for all its column rules: every
 * boolean argument is one rule's violation flag (true = the row violates it), every numeric argument is a
 * measure (for stability rules: mean, extremes, null count). The evaluator generates one call per table, so
 * all rules share the scan and the per-row cost is one function call instead of one aggregate per rule.
 * The state keeps, per flag, the violation count and the smallest row ids of violating rows (a sample that is
 * the same whether the plan is serial or parallel).
 *
 * quality_duplicates(skip_nulls, VARIADIC "any") counts rows whose key (the variadic arguments) equals an
 * earlier row's key, through 64-bit hashes that are radix-sorted at the end: zero hash duplicates proves zero
 * key duplicates, so the usual clean case is answered exactly in the same scan; otherwise it returns the
 * duplicated hashes, and the evaluator confirms them exactly with a GROUP BY ... HAVING query restricted to
 * the rows with those hashes (quality_key_hash), which also yields the sample of duplicated keys.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "common/retail_mid.h"
#include "common/rm_agg.h"

#define QP_VERSION 1
#define QP_SAMPLE 5
#define QD_VERSION 1

/* ---------------------------------------------------------------- quality_profile */

typedef enum QpKind
{
	QP_FLAG = 1,
	QP_MEASURE = 2
} QpKind;

/* One argument's running profile; fixed size so that the serial form is a plain copy. */
typedef struct QpArg
{
	int32		kind;			/* QpKind */
	int32		nsample;		/* flags: sample row ids held, ascending */
	int64		count;			/* flags: violations; measures: finite values */
	int64		nulls;			/* NULL arguments */
	int64		nonfinite;		/* measures: NaN or +-Infinity (kept out of mean/min/max) */
	double		mean;			/* measures: running mean and sum of squared deviations (Welford/Chan) */
	double		m2;
	double		min;
	double		max;
	ItemPointerData sample[QP_SAMPLE];
} QpArg;

typedef struct QpState
{
	int32		version;
	int32		nargs;
	int64		rows;
	QpArg		args[FLEXIBLE_ARRAY_MEMBER];
} QpState;

#define QP_SIZE(n) (offsetof(QpState, args) + sizeof(QpArg) * (n))

/* Kind of the i-th variadic argument from its declared type, or an error for unsupported types. */
static QpKind
QpKindOf(FunctionCallInfo fcinfo, int argno)
{
	Oid			t = get_fn_expr_argtype(fcinfo->flinfo, argno);

	switch (t)
	{
		case BOOLOID:
			return QP_FLAG;
		case FLOAT8OID:
		case FLOAT4OID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
			return QP_MEASURE;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("quality_profile arguments must be boolean violation flags or numeric measures"),
					 errdetail("Argument %d has type %s.", argno, OidIsValid(t) ? format_type_be(t) : "unknown"),
					 errhint("Cast measures to double precision.")));
	}
	return QP_FLAG;				/* keep compiler quiet */
}

static double
QpToDouble(FunctionCallInfo fcinfo, int argno)
{
	Datum		d = PG_GETARG_DATUM(argno);

	switch (get_fn_expr_argtype(fcinfo->flinfo, argno))
	{
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case FLOAT4OID:
			return (double) DatumGetFloat4(d);
		case INT2OID:
			return (double) DatumGetInt16(d);
		case INT4OID:
			return (double) DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
}

/* Keeps the QP_SAMPLE smallest row ids, ascending. */
static void
QpAddSample(QpArg *a, ItemPointer tid)
{
	int			i;

	if (a->nsample == QP_SAMPLE && ItemPointerCompare(tid, &a->sample[QP_SAMPLE - 1]) >= 0)
		return;
	i = (a->nsample < QP_SAMPLE) ? a->nsample++ : QP_SAMPLE - 1;
	while (i > 0 && ItemPointerCompare(tid, &a->sample[i - 1]) < 0)
	{
		a->sample[i] = a->sample[i - 1];
		i--;
	}
	a->sample[i] = *tid;
}

static QpState *
QpNew(MemoryContext cxt, int nargs)
{
	QpState    *s = MemoryContextAllocZero(cxt, QP_SIZE(nargs));
	int			i;

	s->version = QP_VERSION;
	s->nargs = nargs;
	for (i = 0; i < nargs; i++)
	{
		s->args[i].min = get_float8_infinity();
		s->args[i].max = -get_float8_infinity();
	}
	return s;
}

PG_FUNCTION_INFO_V1(quality_profile_transfn);
/* Transition: one row, all rules of the table. */
Datum
quality_profile_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	QpState    *s;
	int			nargs = PG_NARGS() - 2;
	ItemPointer tid = PG_ARGISNULL(1) ? NULL : (ItemPointer) PG_GETARG_POINTER(1);
	int			i;

	aggcxt = RmAggContext(fcinfo, "quality_profile_transfn");

	if (PG_ARGISNULL(0))
	{
		s = QpNew(aggcxt, nargs);
		for (i = 0; i < nargs; i++)
			s->args[i].kind = QpKindOf(fcinfo, i + 2);
	}
	else
		s = (QpState *) PG_GETARG_POINTER(0);

	s->rows++;
	for (i = 0; i < nargs; i++)
	{
		QpArg	   *a = &s->args[i];

		if (PG_ARGISNULL(i + 2))
		{
			a->nulls++;
			continue;
		}
		if (a->kind == QP_FLAG)
		{
			if (PG_GETARG_BOOL(i + 2))
			{
				a->count++;
				if (tid)
					QpAddSample(a, tid);
			}
		}
		else
		{
			double		x = QpToDouble(fcinfo, i + 2);
			double		delta;

			if (isnan(x) || isinf(x))
			{
				a->nonfinite++;
				continue;
			}
			a->count++;
			delta = x - a->mean;
			a->mean += delta / a->count;
			a->m2 += delta * (x - a->mean);
			if (x < a->min)
				a->min = x;
			if (x > a->max)
				a->max = x;
		}
	}
	PG_RETURN_POINTER(s);
}

/* Merges src into dst (same shape). */
static void
QpMerge(QpState *dst, const QpState *src)
{
	int			i,
				j;

	if (dst->nargs != src->nargs)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot combine quality profiles of %d and %d arguments", dst->nargs, src->nargs)));
	dst->rows += src->rows;
	for (i = 0; i < dst->nargs; i++)
	{
		QpArg	   *a = &dst->args[i];
		const QpArg *b = &src->args[i];

		if (a->kind != b->kind)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("cannot combine quality profiles with different argument kinds")));
		a->nulls += b->nulls;
		a->nonfinite += b->nonfinite;
		if (a->kind == QP_FLAG)
		{
			a->count += b->count;
			for (j = 0; j < b->nsample; j++)
				QpAddSample(a, (ItemPointer) &b->sample[j]);
		}
		else if (b->count > 0)
		{
			/* Chan et al.: pairwise update of mean and squared deviations */
			double		n = (double) a->count + (double) b->count;
			double		delta = b->mean - a->mean;

			a->m2 = a->m2 + b->m2 + delta * delta * ((double) a->count * (double) b->count / n);
			a->mean = a->mean + delta * ((double) b->count / n);
			a->count += b->count;
			if (b->min < a->min)
				a->min = b->min;
			if (b->max > a->max)
				a->max = b->max;
		}
	}
}

PG_FUNCTION_INFO_V1(quality_profile_combinefn);
/* Combine for parallel and partial aggregation. */
Datum
quality_profile_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	QpState    *a = PG_ARGISNULL(0) ? NULL : (QpState *) PG_GETARG_POINTER(0);
	QpState    *b = PG_ARGISNULL(1) ? NULL : (QpState *) PG_GETARG_POINTER(1);

	aggcxt = RmAggContext(fcinfo, "quality_profile_combinefn");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = MemoryContextAlloc(aggcxt, QP_SIZE(b->nargs));
		memcpy(a, b, QP_SIZE(b->nargs));
		PG_RETURN_POINTER(a);
	}
	QpMerge(a, b);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(quality_profile_serialfn);
/* The state is fixed-size per argument, so its serial form is the struct itself. */
Datum
quality_profile_serialfn(PG_FUNCTION_ARGS)
{
	QpState    *s = (QpState *) PG_GETARG_POINTER(0);
	Size		len = QP_SIZE(s->nargs);
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), s, len);
	PG_RETURN_BYTEA_P(out);
}

/* Validates length, version and every counter before trusting the bytes. */
static QpState *
QpDeserialize(bytea *in)
{
	Size		len = VARSIZE_ANY_EXHDR(in);
	QpState		head;
	QpState    *s;
	int			i,
				j;

	if (len < offsetof(QpState, args))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid quality profile state: too short")));
	memcpy(&head, VARDATA_ANY(in), offsetof(QpState, args));
	if (head.version != QP_VERSION)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("invalid quality profile state: unsupported version %d", head.version)));
	if (head.nargs < 0 || head.nargs > FUNC_MAX_ARGS || len != QP_SIZE(head.nargs) || head.rows < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid quality profile state: bad length")));
	s = palloc(len);
	memcpy(s, VARDATA_ANY(in), len);
	for (i = 0; i < s->nargs; i++)
	{
		QpArg	   *a = &s->args[i];
		bool		ok = (a->kind == QP_FLAG || a->kind == QP_MEASURE) &&
			a->nsample >= 0 && a->nsample <= QP_SAMPLE && a->count >= 0 && a->nulls >= 0 &&
			a->nonfinite >= 0 && a->count <= s->rows && a->nulls <= s->rows &&
			(a->kind == QP_MEASURE || a->nsample <= a->count);

		for (j = 1; ok && j < a->nsample; j++)
			ok = ItemPointerCompare(&a->sample[j - 1], &a->sample[j]) < 0;
		if (!ok)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("invalid quality profile state: inconsistent counters")));
	}
	return s;
}

PG_FUNCTION_INFO_V1(quality_profile_deserialfn);
Datum
quality_profile_deserialfn(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(QpDeserialize(PG_GETARG_BYTEA_PP(0)));
}

PG_FUNCTION_INFO_V1(quality_profile_state_rows);
/* SQL-callable check of a serialized profile state (the deserializer's validation): its row count. */
Datum
quality_profile_state_rows(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(QpDeserialize(PG_GETARG_BYTEA_PP(0))->rows);
}

static void
QpAppendDouble(StringInfo buf, double x)
{
	char	   *s = float8out_internal(x);

	appendStringInfoString(buf, s);
	pfree(s);
}

PG_FUNCTION_INFO_V1(quality_profile_finalfn);
/*
 * Final: jsonb {"rows": n, "columns": [...]}, one entry per variadic argument. Reads the state only, so it
 * is safe to call repeatedly; with no rows the argument types (FINALFUNC_EXTRA) still give every entry.
 */
Datum
quality_profile_finalfn(PG_FUNCTION_ARGS)
{
	QpState    *s = PG_ARGISNULL(0) ? NULL : (QpState *) PG_GETARG_POINTER(0);
	int			nargs = PG_NARGS() - 2;
	StringInfoData buf;
	int			i,
				j;

	if (s == NULL)
	{
		s = QpNew(CurrentMemoryContext, nargs);
		for (i = 0; i < nargs; i++)
			s->args[i].kind = QpKindOf(fcinfo, i + 2);
	}
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"rows\": " INT64_FORMAT ", \"columns\": [", s->rows);
	for (i = 0; i < s->nargs; i++)
	{
		QpArg	   *a = &s->args[i];

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (a->kind == QP_FLAG)
		{
			appendStringInfo(&buf, "{\"kind\": \"flag\", \"violations\": " INT64_FORMAT ", \"nulls\": " INT64_FORMAT ", \"sample\": [",
							 a->count, a->nulls);
			for (j = 0; j < a->nsample; j++)
				appendStringInfo(&buf, "%s\"(%u,%u)\"", j ? ", " : "",
								 ItemPointerGetBlockNumberNoCheck(&a->sample[j]),
								 (unsigned) ItemPointerGetOffsetNumberNoCheck(&a->sample[j]));
			appendStringInfoString(&buf, "]}");
		}
		else
		{
			appendStringInfo(&buf, "{\"kind\": \"measure\", \"n\": " INT64_FORMAT ", \"nulls\": " INT64_FORMAT ", \"nonfinite\": " INT64_FORMAT,
							 a->count, a->nulls, a->nonfinite);
			if (a->count > 0)
			{
				appendStringInfoString(&buf, ", \"sum\": ");
				QpAppendDouble(&buf, a->mean * (double) a->count);
				appendStringInfoString(&buf, ", \"mean\": ");
				QpAppendDouble(&buf, a->mean);
				appendStringInfoString(&buf, ", \"stddev\": ");
				if (a->count > 1)
					QpAppendDouble(&buf, sqrt(a->m2 / (double) (a->count - 1)));
				else
					appendStringInfoString(&buf, "null");
				appendStringInfoString(&buf, ", \"min\": ");
				QpAppendDouble(&buf, a->min);
				appendStringInfoString(&buf, ", \"max\": ");
				QpAppendDouble(&buf, a->max);
			}
			else
				appendStringInfoString(&buf, ", \"sum\": null, \"mean\": null, \"stddev\": null, \"min\": null, \"max\": null");
			appendStringInfoChar(&buf, '}');
		}
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* ---------------------------------------------------------------- quality_duplicates */

/* Per-argument extended hash functions of a key, looked up once per aggregate or call site. */
typedef struct QdKeyHasher
{
	int			nkeys;
	Oid			collation;
	FmgrInfo	finfo[FLEXIBLE_ARRAY_MEMBER];
} QdKeyHasher;

static QdKeyHasher *
QdHasherNew(FunctionCallInfo fcinfo, int first, MemoryContext cxt)
{
	int			nkeys = PG_NARGS() - first;
	QdKeyHasher *k;
	int			i;

	if (nkeys < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a key needs at least one column")));
	k = MemoryContextAllocZero(cxt, offsetof(QdKeyHasher, finfo) + nkeys * sizeof(FmgrInfo));
	k->nkeys = nkeys;
	k->collation = PG_GET_COLLATION();
	for (i = 0; i < nkeys; i++)
	{
		Oid			t = get_fn_expr_argtype(fcinfo->flinfo, first + i);
		TypeCacheEntry *tc = lookup_type_cache(t, TYPECACHE_HASH_EXTENDED_PROC);
		Oid			proc = tc->hash_extended_proc;

		/* the type cache offers no hash for anonymous records (ROW(a, b)): their fields are checked at run time */
		if (t == RECORDOID)
			proc = F_HASH_RECORD_EXTENDED;
		if (!OidIsValid(proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an extended hash function for type %s", format_type_be(t)),
					 errhint("Check uniqueness of such keys with GROUP BY ... HAVING count(*) > 1.")));
		fmgr_info_cxt(proc, &k->finfo[i], cxt);
	}
	return k;
}

/* Combined 64-bit hash of args first..; a NULL part hashes to a constant and is reported. */
static uint64
QdHashKey(QdKeyHasher *k, FunctionCallInfo fcinfo, int first, bool *has_null)
{
	uint64		h = 0;
	int			i;

	*has_null = false;
	for (i = 0; i < k->nkeys; i++)
	{
		uint64		x;

		if (PG_ARGISNULL(first + i))
		{
			*has_null = true;
			x = UINT64CONST(0x9E3779B97F4A7C15);
		}
		else
			x = DatumGetUInt64(FunctionCall2Coll(&k->finfo[i], k->collation, PG_GETARG_DATUM(first + i), Int64GetDatum(0)));
		h = (i == 0) ? x : hash_combine64(h, x);
	}
	return h;
}

typedef struct QdState
{
	int64		n;
	int64		cap;
	uint64	   *h;
	QdKeyHasher *hasher;		/* transition side only */
} QdState;

#define QD_HEADER (2 * sizeof(int32) + sizeof(int64))
#define QD_MAX_SERIAL ((int64) ((MaxAllocSize - VARHDRSZ - QD_HEADER) / sizeof(uint64)))
#define QD_MAX_CANDIDATES 1000

static QdState *
QdNew(MemoryContext cxt)
{
	QdState    *s = MemoryContextAllocZero(cxt, sizeof(QdState));

	s->cap = 1024;
	s->h = MemoryContextAllocHuge(cxt, s->cap * sizeof(uint64));
	return s;
}

static void
QdReserve(QdState *s, int64 extra)
{
	if (s->n + extra > s->cap)
	{
		int64		cap = s->cap;

		while (cap < s->n + extra)
			cap *= 2;
		s->h = repalloc_huge(s->h, cap * sizeof(uint64));
		s->cap = cap;
	}
}

PG_FUNCTION_INFO_V1(quality_duplicates_transfn);
/* Transition: appends the 64-bit hash of the key (args 2..n); skips keys with a NULL part when asked to. */
Datum
quality_duplicates_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	QdState    *s;
	bool		skip_nulls = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
	bool		has_null;
	uint64		h;

	aggcxt = RmAggContext(fcinfo, "quality_duplicates_transfn");
	s = PG_ARGISNULL(0) ? QdNew(aggcxt) : (QdState *) PG_GETARG_POINTER(0);
	if (s->hasher == NULL)
		s->hasher = QdHasherNew(fcinfo, 2, aggcxt);
	h = QdHashKey(s->hasher, fcinfo, 2, &has_null);
	if (has_null && skip_nulls)
		PG_RETURN_POINTER(s);
	QdReserve(s, 1);
	s->h[s->n++] = h;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(quality_key_hash);
/* The key hash quality_duplicates uses, so that a confirmation query can pick out the candidate rows. */
Datum
quality_key_hash(PG_FUNCTION_ARGS)
{
	QdKeyHasher *hasher = (QdKeyHasher *) fcinfo->flinfo->fn_extra;
	bool		has_null;

	if (hasher == NULL)
	{
		hasher = QdHasherNew(fcinfo, 0, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = hasher;
	}
	PG_RETURN_INT64((int64) QdHashKey(hasher, fcinfo, 0, &has_null));
}

PG_FUNCTION_INFO_V1(quality_duplicates_combinefn);
Datum
quality_duplicates_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	QdState    *a = PG_ARGISNULL(0) ? NULL : (QdState *) PG_GETARG_POINTER(0);
	QdState    *b = PG_ARGISNULL(1) ? NULL : (QdState *) PG_GETARG_POINTER(1);
	MemoryContext old;

	aggcxt = RmAggContext(fcinfo, "quality_duplicates_combinefn");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = QdNew(aggcxt);
	old = MemoryContextSwitchTo(aggcxt);
	QdReserve(a, b->n);
	MemoryContextSwitchTo(old);
	memcpy(a->h + a->n, b->h, b->n * sizeof(uint64));
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(quality_duplicates_serialfn);
/* Serial form: version, reserved, count, then the hashes. */
Datum
quality_duplicates_serialfn(PG_FUNCTION_ARGS)
{
	QdState    *s = (QdState *) PG_GETARG_POINTER(0);
	int32		v[2] = {QD_VERSION, 0};
	bytea	   *out;
	char	   *p;

	if (s->n > QD_MAX_SERIAL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many keys for a parallel uniqueness check: " INT64_FORMAT, s->n),
				 errhint("Set max_parallel_workers_per_gather = 0 for this check.")));
	out = palloc(VARHDRSZ + QD_HEADER + s->n * sizeof(uint64));
	SET_VARSIZE(out, VARHDRSZ + QD_HEADER + s->n * sizeof(uint64));
	p = VARDATA(out);
	memcpy(p, v, sizeof(v));
	memcpy(p + sizeof(v), &s->n, sizeof(int64));
	memcpy(p + QD_HEADER, s->h, s->n * sizeof(uint64));
	PG_RETURN_BYTEA_P(out);
}

/* Validates version and length before trusting the bytes. */
static QdState *
QdDeserialize(bytea *in)
{
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *p = VARDATA_ANY(in);
	int32		v[2];
	int64		n;
	QdState    *s;

	if (len < QD_HEADER)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid quality duplicates state: too short")));
	memcpy(v, p, sizeof(v));
	memcpy(&n, p + sizeof(v), sizeof(int64));
	if (v[0] != QD_VERSION || v[1] != 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("invalid quality duplicates state: unsupported version %d", v[0])));
	if (n < 0 || n > QD_MAX_SERIAL || len != QD_HEADER + (Size) n * sizeof(uint64))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("invalid quality duplicates state: bad length")));
	s = palloc0(sizeof(QdState));
	s->n = s->cap = n;
	s->h = palloc_extended(Max(n, 1) * sizeof(uint64), MCXT_ALLOC_HUGE);
	memcpy(s->h, p + QD_HEADER, n * sizeof(uint64));
	return s;
}

PG_FUNCTION_INFO_V1(quality_duplicates_deserialfn);
Datum
quality_duplicates_deserialfn(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(QdDeserialize(PG_GETARG_BYTEA_PP(0)));
}

PG_FUNCTION_INFO_V1(quality_duplicates_state_keys);
/* SQL-callable check of a serialized duplicates state (the deserializer's validation): its key count. */
Datum
quality_duplicates_state_keys(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(QdDeserialize(PG_GETARG_BYTEA_PP(0))->n);
}

/* LSD radix sort, 11 bits per pass (6 passes), of uniformly spread hashes. */
static void
QdRadixSort(uint64 *a, int64 n)
{
	uint64	   *tmp,
			   *src = a,
			   *dst;
	int			pass;

	if (n < 2)
		return;
	tmp = palloc_extended(n * sizeof(uint64), MCXT_ALLOC_HUGE);
	dst = tmp;
	for (pass = 0; pass < 6; pass++)
	{
		int			shift = pass * 11;
		int64		count[2048] = {0};
		int64		i,
					sum = 0;
		uint64	   *t;

		for (i = 0; i < n; i++)
			count[(src[i] >> shift) & 2047]++;
		for (i = 0; i < 2048; i++)
		{
			int64		c = count[i];

			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 2047]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	/* six passes: the sorted data is back in a */
	Assert(src == a);
	pfree(tmp);
}

PG_FUNCTION_INFO_V1(quality_duplicates_finalfn);
/*
 * Final: jsonb {"duplicates": rows whose key hash equals an earlier row's, "keys": distinct hashes seen more
 * than once, "hashes": those hashes (up to 1000, else null)}. Sorting in place leaves the multiset of hashes
 * unchanged, so a repeated call gives the same answer (declared READ_WRITE all the same).
 */
Datum
quality_duplicates_finalfn(PG_FUNCTION_ARGS)
{
	QdState    *s = PG_ARGISNULL(0) ? NULL : (QdState *) PG_GETARG_POINTER(0);
	int64		dup = 0,
				keys = 0,
				i;
	StringInfoData buf;
	StringInfoData hashes;

	initStringInfo(&buf);
	initStringInfo(&hashes);
	if (s != NULL)
	{
		QdRadixSort(s->h, s->n);
		for (i = 1; i < s->n; i++)
		{
			if (s->h[i] != s->h[i - 1])
				continue;
			dup++;
			if (i >= 2 && s->h[i - 1] == s->h[i - 2])
				continue;
			if (keys < QD_MAX_CANDIDATES)
				appendStringInfo(&hashes, "%s" INT64_FORMAT, keys ? ", " : "", (int64) s->h[i]);
			keys++;
		}
	}
	appendStringInfo(&buf, "{\"duplicates\": " INT64_FORMAT ", \"keys\": " INT64_FORMAT ", \"hashes\": %s%s%s}",
					 dup, keys, keys <= QD_MAX_CANDIDATES ? "[" : "null",
					 keys <= QD_MAX_CANDIDATES ? hashes.data : "", keys <= QD_MAX_CANDIDATES ? "]" : "");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
