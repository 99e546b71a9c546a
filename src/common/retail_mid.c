/* common/retail_mid.c: module entry point and helpers shared by every domain. */
#include "postgres.h"

#include <dlfcn.h>
#include <math.h>

#include "common/retail_mid.h"

PG_MODULE_MAGIC;

/* The CRoaring entry points, taken from our private handle of Debian's libroaring (retail_mid.h). */
#define RETAIL_MID_ROARING_DEFINE(f) __typeof__(RetailMidRoaring_##f) RetailMidRoaring_##f;
RETAIL_MID_ROARING_FUNCTIONS(RETAIL_MID_ROARING_DEFINE)
#undef RETAIL_MID_ROARING_DEFINE

/*
 * Opens libroaring for retail_mid alone: RTLD_LOCAL keeps its names out of the backend's global scope (so a
 * library loaded later, e.g. pg_roaringbitmap with its own CRoaring, is not bound to ours), RTLD_DEEPBIND makes
 * libroaring's calls to itself prefer its own definitions over same-named ones loaded earlier, and dlsym on the
 * handle gives us its functions whatever else the backend has loaded.
 */
static void
RetailMidBindRoaring(void)
{
	void	   *lib;
	const char *missing = NULL;
	int			flags = RTLD_NOW | RTLD_LOCAL;

#if defined(RTLD_DEEPBIND) && !defined(__SANITIZE_ADDRESS__)
	flags |= RTLD_DEEPBIND;		/* AddressSanitizer cannot run with RTLD_DEEPBIND */
#endif
	lib = dlopen(RETAIL_MID_ROARING_LIB, flags);
	if (lib == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load library \"%s\" needed by retail_mid", RETAIL_MID_ROARING_LIB),
				 errdetail("%s", dlerror()),
				 errhint("Install the CRoaring library retail_mid was built against (Debian 12: libroaring0).")));
#define RETAIL_MID_ROARING_LOOKUP(f) \
	if ((RetailMidRoaring_##f = (__typeof__(RetailMidRoaring_##f)) dlsym(lib, #f)) == NULL && missing == NULL) \
		missing = #f;
	RETAIL_MID_ROARING_FUNCTIONS(RETAIL_MID_ROARING_LOOKUP)
#undef RETAIL_MID_ROARING_LOOKUP
	if (missing != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("library \"%s\" has no function %s", RETAIL_MID_ROARING_LIB, missing),
				 errhint("Install the CRoaring version retail_mid was built against (Debian 12: libroaring0 0.2.66).")));
	/* the handle stays open for the life of the backend, as PostgreSQL keeps retail_mid itself */
}

/* Library load: bind CRoaring before any SQL function can run. */
void
_PG_init(void)
{
	RetailMidBindRoaring();
}

void
RetailMidCheckFinite(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what)));
}
