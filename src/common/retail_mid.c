/* common/retail_mid.c: module entry point and helpers shared by every domain. */
#include "postgres.h"

#include <math.h>

#include "common/retail_mid.h"

PG_MODULE_MAGIC;

void
RetailMidCheckFinite(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what)));
}
