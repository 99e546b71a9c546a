/* common/rm_agg.c: the aggregate-context check shared by every aggregate support function of the extension. */
#include "postgres.h"

#include "common/rm_agg.h"

/*
 * The aggregate's memory context. Called outside an aggregate (a direct SQL call of a support function) it
 * raises feature_not_supported rather than an internal error, since a user can get there.
 */
MemoryContext
RmAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in non-aggregate context", fname)));
	return aggcxt;
}
