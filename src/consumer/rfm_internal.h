/* consumer/rfm_internal.h: what the RFM files share: money units, serial version, the population summary entry. */
#ifndef RETAIL_MID_RFM_INTERNAL_H
#define RETAIL_MID_RFM_INTERNAL_H

#include "fmgr.h"
#include "utils/date.h"

#define RFM_SERIAL_VERSION 1
#define RFM_MONEY_SCALE 10000.0	/* amounts are summed exactly in 1/10000 of the currency unit */

/* One customer of a population summary: first and last sale day, exact money, order count. */
typedef struct RfmCust
{
	int32		key;
	char		status;			/* simplehash's slot status */
	DateADT		first;
	DateADT		last;
	int64		money;
	int64		orders;
} RfmCust;

#define RFM_SUMMARY_VERSION 1
#define RFM_SUMMARY_HEADER 16	/* version, as_of, window_days, n */
#define RFM_SUMMARY_ENTRY 28	/* key, first, last, money, orders */

/* A float8 amount in exact 1/10000 units; NaN, infinities and amounts beyond int64 range are errors. */
extern int64 RfmMoney(double amount);

/*
 * numeric amount in 1/10000 units, rounded half away from zero (as round(x, 4)). Reads the numeric's digits
 * directly: the on-disk format (base-10000 digits, short and long headers) is fixed because pg_upgrade keeps
 * numeric data as it is, and going through float8 or numeric arithmetic would cost more than the whole
 * aggregate. One base-10000 digit is exactly the 1/10000 unit.
 */
extern int64 RfmMoneyNumeric(Datum d);

/* 1 + the number of breaks v exceeds (descending: is below). */
extern int32 RfmScoreOf(double v, const double *b, int nb, bool descending);

/* Reads one customer entry of a summary (RFM_SUMMARY_ENTRY bytes, as RfmWriteEntry wrote it) into c. */
extern void RfmReadEntry(const char *r, RfmCust *c);

#endif
