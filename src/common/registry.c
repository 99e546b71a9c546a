/* common/registry.c: running SQL stored in the registries with no more rights than its author's. */
/*
 * Tag rules, metric expressions and quality expressions are SQL text written by administrators and executed by
 * the jobs, which typically run as a superuser. registry_enter switches the current user to a role with no more
 * rights than the fragment's author (the same security-restricted operation PostgreSQL uses for VACUUM, REFRESH
 * MATERIALIZED VIEW and index expressions: SET ROLE, SET SESSION AUTHORIZATION and creating temporary tables
 * are refused inside), and opens a GUC nest level so that a fragment's set_config() does not outlive it;
 * registry_leave closes both. Between them the caller executes the fragment. An error in between is rolled back
 * by the (sub)transaction abort, which restores the user, the security context and the settings by itself.
 * registry_check_sql parses a fragment inside the text it will be embedded in and accepts exactly one SELECT of
 * the expected shape, so that no fragment can close its parenthesis and append a statement.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "common/retail_mid.h"

PG_FUNCTION_INFO_V1(registry_enter);
PG_FUNCTION_INFO_V1(registry_leave);
PG_FUNCTION_INFO_V1(registry_check_sql);

/* The open section: who to return to, and the token registry_leave must present. */
static bool section_open = false;
static Oid	section_prev_user = InvalidOid;
static int	section_prev_context = 0;
static int	section_nestlevel = 0;
static int64 section_token = 0;

/* registry_enter(role regrole) -> int8: becomes role, restricted, and returns the token that ends the section. */
Datum
registry_enter(PG_FUNCTION_ARGS)
{
	Oid			role;
	Oid			cur_user;
	int			cur_context;
	int64		token = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("role must not be NULL")));
	role = PG_GETARG_OID(0);
	GetUserIdAndSecContext(&cur_user, &cur_context);
	if (cur_context & SECURITY_RESTRICTED_OPERATION)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot run registry SQL within a security-restricted operation"),
				 errdetail("Registry SQL is already running with the rights of its author.")));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role with OID %u does not exist", role)));
	/* only ever lose rights: the current user must hold every privilege of the role */
	if (!has_privs_of_role(cur_user, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot run registry SQL as role \"%s\"", GetUserNameFromId(role, false)),
				 errdetail("The current user \"%s\" does not have the privileges of that role.", GetUserNameFromId(cur_user, false))));
	while (token == 0)
	{
		if (!pg_strong_random(&token, sizeof(token)))
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random token")));
	}
	section_prev_user = cur_user;
	section_prev_context = cur_context;
	section_token = token;
	section_open = true;
	SetUserIdAndSecContext(role, cur_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	section_nestlevel = NewGUCNestLevel();
	PG_RETURN_INT64(token);
}

/* registry_leave(token int8): discards the section's settings and returns to the user that entered it. */
Datum
registry_leave(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || !section_open || PG_GETARG_INT64(0) != section_token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no registry section with this token is open")));
	section_open = false;
	section_token = 0;
	AtEOXact_GUC(false, section_nestlevel);
	SetUserIdAndSecContext(section_prev_user, section_prev_context);
	PG_RETURN_VOID();
}

/* Whether a parsed SELECT has nothing but a target list and (when from_items >= 0) that many FROM items. */
static bool
plain_select(Node *stmt, int targets, int from_items)
{
	SelectStmt *s;

	if (stmt == NULL || !IsA(stmt, SelectStmt))
		return false;
	s = (SelectStmt *) stmt;
	return s->op == SETOP_NONE && s->intoClause == NULL && s->distinctClause == NIL &&
		list_length(s->targetList) == targets && list_length(s->fromClause) == from_items &&
		s->whereClause == NULL && s->groupClause == NIL && s->havingClause == NULL && s->windowClause == NIL &&
		s->valuesLists == NIL && s->sortClause == NIL && s->limitOffset == NULL && s->limitCount == NULL &&
		s->lockingClause == NIL && s->withClause == NULL;
}

/* Whether a SELECT (of any shape) writes nothing through its WITH clauses or an INTO, at any set operation. */
static bool
read_only_select(Node *node)
{
	SelectStmt *s;
	ListCell   *lc;

	if (node == NULL || !IsA(node, SelectStmt))
		return false;
	s = (SelectStmt *) node;
	if (s->intoClause != NULL)
		return false;
	if (s->withClause != NULL)
	{
		foreach(lc, s->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!read_only_select(cte->ctequery))
				return false;
		}
	}
	if (s->op != SETOP_NONE)
		return read_only_select((Node *) s->larg) && read_only_select((Node *) s->rarg);
	return true;
}

/*
 * registry_check_sql(fragment text, kind text, what text) -> text: the fragment, when it is one piece of the
 * kind: 'expression' (a scalar expression, embedded as (fragment)), 'relation' (a table or view name or a
 * parenthesised SELECT, embedded as fragment AS s) or 'query' (a SELECT, embedded as (fragment) AS s); else
 * 42601 naming what.
 */
Datum
registry_check_sql(PG_FUNCTION_ARGS)
{
	text	   *frag_t;
	char	   *frag;
	char	   *kind;
	char	   *what;
	char	   *wrapped;
	const char *shape;
	List	   *parsed = NIL;
	bool		ok = false;
	char	   *why = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	/* no SQL, nothing to check (not STRICT: a NULL kind or what must not skip the check) */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("kind of registry SQL must not be NULL")));
	frag_t = PG_GETARG_TEXT_PP(0);
	frag = text_to_cstring(frag_t);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	what = PG_ARGISNULL(2) ? "registry SQL" : text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (strcmp(kind, "expression") == 0)
	{
		wrapped = psprintf("SELECT (\n%s\n)", frag);
		shape = "a single SQL expression";
	}
	else if (strcmp(kind, "relation") == 0)
	{
		wrapped = psprintf("SELECT 1 FROM \n%s\n AS s", frag);
		shape = "a single table or view name or a parenthesised SELECT";
	}
	else if (strcmp(kind, "query") == 0)
	{
		wrapped = psprintf("SELECT 1 FROM (\n%s\n) AS s", frag);
		shape = "a single SELECT statement";
	}
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown kind of registry SQL \"%s\"", kind),
						errhint("Use expression, relation or query.")));

	if (strlen(frag) == 0 || strspn(frag, " \t\r\n\f") == strlen(frag))
		why = pstrdup("It is empty.");
	else
	{
		PG_TRY();
		{
			parsed = raw_parser(wrapped, RAW_PARSE_DEFAULT);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			why = psprintf("The parser says: %s.", edata->message);
			parsed = NIL;
		}
		PG_END_TRY();
	}
	if (why == NULL)
	{
		if (list_length(parsed) != 1)
			why = psprintf("It makes %d statements.", list_length(parsed));
		else
		{
			Node	   *stmt = ((RawStmt *) linitial(parsed))->stmt;

			if (strcmp(kind, "expression") == 0)
				ok = plain_select(stmt, 1, 0);
			else if (strcmp(kind, "relation") == 0)
				ok = plain_select(stmt, 1, 1);
			else
			{
				ok = plain_select(stmt, 1, 1) &&
					IsA(linitial(((SelectStmt *) stmt)->fromClause), RangeSubselect);
				if (ok)
				{
					Node	   *sub = ((RangeSubselect *) linitial(((SelectStmt *) stmt)->fromClause))->subquery;

					ok = read_only_select(sub);
				}
			}
			if (!ok)
				why = pstrdup("It adds clauses or statements around the place it is embedded in.");
		}
	}
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be %s", what, shape),
				 errdetail("%s", why),
				 errhint("Stored SQL is one expression or one SELECT: no semicolons, no unbalanced parentheses or quotes.")));
	PG_RETURN_TEXT_P(frag_t);
}
