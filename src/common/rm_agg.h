/* common/rm_agg.h: the aggregate-context check every transition, combine and (de)serial function opens with. */
#ifndef RETAIL_MID_RM_AGG_H
#define RETAIL_MID_RM_AGG_H

#include "postgres.h"

#include "fmgr.h"

/*
 * The aggregate's memory context, where a state that outlives one call must be allocated; an error when the
 * function is called directly instead of by an aggregate (fname names it in the message).
 */
extern MemoryContext RmAggContext(FunctionCallInfo fcinfo, const char *fname);

#endif
