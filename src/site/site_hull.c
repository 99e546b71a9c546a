/* site/site_hull.c: site_trade_area_hulls, each candidate's trade area as the convex hull of its zones (EWKB). */
#include "postgres.h"

#include <string.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"

#include "site/site_internal.h"

/* Appends an EWKB double (little endian, as the header says) to buf. */
static void
EwkbDouble(StringInfo buf, double v)
{
	uint64		bits;
	unsigned char b[8];

	memcpy(&bits, &v, 8);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char) (bits >> (8 * i));
	appendBinaryStringInfo(buf, (char *) b, 8);
}

static void
EwkbUint32(StringInfo buf, uint32 v)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	appendBinaryStringInfo(buf, (char *) b, 4);
}

typedef struct XY
{
	double		x;
	double		y;
} XY;

static int
XYCmp(const void *a, const void *b)
{
	const XY   *p = a;
	const XY   *q = b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return 0;
}

static inline double
XYCross(XY o, XY a, XY b)
{
	return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/*
 * The convex hull of points as EWKB (SRID 4326), the types ST_ConvexHull(ST_Collect(points)) gives: a point for
 * one distinct point, a line between the extremes when all are collinear, else a polygon (collinear boundary
 * points dropped). Planar in degrees, like the SQL it replaces.
 */
static bytea *
PointHullEwkb(XY *pts, int n)
{
	StringInfoData buf;
	XY		   *hull;
	int			k = 0,
				u = 0;
	bytea	   *out;

	qsort(pts, n, sizeof(XY), XYCmp);
	for (int i = 0; i < n; i++)		/* distinct points */
		if (u == 0 || XYCmp(&pts[i], &pts[u - 1]) != 0)
			pts[u++] = pts[i];
	n = u;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, 1);	/* little endian */
	if (n == 1)
	{
		EwkbUint32(&buf, 0x20000001);	/* point with SRID */
		EwkbUint32(&buf, 4326);
		EwkbDouble(&buf, pts[0].x);
		EwkbDouble(&buf, pts[0].y);
	}
	else
	{
		/* Andrew's monotone chain: lower then upper hull, counter-clockwise */
		hull = palloc(sizeof(XY) * (2 * n + 1));
		for (int i = 0; i < n; i++)
		{
			while (k >= 2 && XYCross(hull[k - 2], hull[k - 1], pts[i]) <= 0)
				k--;
			hull[k++] = pts[i];
		}
		for (int i = n - 2, t = k + 1; i >= 0; i--)
		{
			while (k >= t && XYCross(hull[k - 2], hull[k - 1], pts[i]) <= 0)
				k--;
			hull[k++] = pts[i];
		}
		/* hull[k - 1] == hull[0]: a closed ring of k - 1 distinct vertices */
		if (k - 1 < 3)
		{
			/* collinear: the line between the extremes (the first and last in sorted order) */
			EwkbUint32(&buf, 0x20000002);
			EwkbUint32(&buf, 4326);
			EwkbUint32(&buf, 2);
			EwkbDouble(&buf, pts[0].x);
			EwkbDouble(&buf, pts[0].y);
			EwkbDouble(&buf, pts[n - 1].x);
			EwkbDouble(&buf, pts[n - 1].y);
		}
		else
		{
			EwkbUint32(&buf, 0x20000003);
			EwkbUint32(&buf, 4326);
			EwkbUint32(&buf, 1);
			EwkbUint32(&buf, k);
			for (int i = 0; i < k; i++)
			{
				EwkbDouble(&buf, hull[i].x);
				EwkbDouble(&buf, hull[i].y);
			}
		}
	}
	out = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(out, VARHDRSZ + buf.len);
	memcpy(VARDATA(out), buf.data, buf.len);
	return out;
}

typedef struct CandZone
{
	int64		candidate;
	int64		zone;
} CandZone;

static int
CandZoneCmp(const void *a, const void *b)
{
	const CandZone *x = a;
	const CandZone *y = b;

	if (x->candidate != y->candidate)
		return x->candidate < y->candidate ? -1 : 1;
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	return 0;
}

/*
 * site_trade_area_hulls(zone_id int8[], zone_lon float8[], zone_lat float8[], zone_is_point bool[],
 *                       pair_candidate int8[], pair_zone int8[])
 * -> SETOF (candidate_id, zones, polygon_zones, zone_ids int8[], hull bytea)
 * Per candidate, its trade-area zones (the pairs), how many are polygons, and the EWKB convex hull of the
 * point zones (null when there are none); the caller unions polygon zones with PostGIS.
 */
PG_FUNCTION_INFO_V1(site_trade_area_hulls);
Datum
site_trade_area_hulls(PG_FUNCTION_ARGS)
{
	int			nz,
				n,
				np;
	const int64 *zid = BatchArray(fcinfo, 0, INT8OID, "zone_id", -1, &nz);
	const double *zlon = BatchArray(fcinfo, 1, FLOAT8OID, "zone_lon", nz, &n);
	const double *zlat = BatchArray(fcinfo, 2, FLOAT8OID, "zone_lat", nz, &n);
	const bool *zpoint = BatchArray(fcinfo, 3, BOOLOID, "zone_is_point", nz, &n);
	const int64 *pc = BatchArray(fcinfo, 4, INT8OID, "pair_candidate", -1, &np);
	const int64 *pz = BatchArray(fcinfo, 5, INT8OID, "pair_zone", np, &n);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ZoneRef    *zones = palloc(sizeof(ZoneRef) * (nz > 0 ? nz : 1));
	CandZone   *pairs = palloc(sizeof(CandZone) * (np > 0 ? np : 1));
	XY		   *pts = palloc(sizeof(XY) * (np > 0 ? np : 1));
	Datum	   *ids = palloc(sizeof(Datum) * (np > 0 ? np : 1));

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < nz; i++)
	{
		zones[i].zone = zid[i];
		zones[i].i = i;
	}
	qsort(zones, nz, sizeof(ZoneRef), ZoneRefCmp);
	for (int i = 0; i < np; i++)
	{
		pairs[i].candidate = pc[i];
		pairs[i].zone = pz[i];
	}
	qsort(pairs, np, sizeof(CandZone), CandZoneCmp);
	for (int k = 0; k < np;)
	{
		int64		cand = pairs[k].candidate;
		int			nzones = 0,
					npoly = 0,
					npts = 0;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		for (; k < np && pairs[k].candidate == cand; k++)
		{
			ZoneRef		key;
			ZoneRef    *hit;

			if (nzones > 0 && DatumGetInt64(ids[nzones - 1]) == pairs[k].zone)
				continue;		/* the same zone twice */
			key.zone = pairs[k].zone;
			key.i = 0;
			hit = bsearch(&key, zones, nz, sizeof(ZoneRef), ZoneRefCmp);
			if (hit == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("zone " INT64_FORMAT " of candidate " INT64_FORMAT " is not among the zones", pairs[k].zone, cand)));
			ids[nzones++] = Int64GetDatum(pairs[k].zone);
			if (zpoint[hit->i])
			{
				pts[npts].x = zlon[hit->i];
				pts[npts].y = zlat[hit->i];
				npts++;
			}
			else
				npoly++;
		}
		values[0] = Int64GetDatum(cand);
		values[1] = Int32GetDatum(nzones);
		values[2] = Int32GetDatum(npoly);
		values[3] = PointerGetDatum(construct_array(ids, nzones, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (npts > 0)
			values[4] = PointerGetDatum(PointHullEwkb(pts, npts));
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
