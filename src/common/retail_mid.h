/* common/retail_mid.h: declarations shared by the domains of the retail_mid extension. */
#ifndef RETAIL_MID_H
#define RETAIL_MID_H

#include "postgres.h"

#include "fmgr.h"

/* Raise ERRCODE_INVALID_PARAMETER_VALUE unless the float8 is finite. */
extern void RetailMidCheckFinite(double value, const char *what);

#endif
