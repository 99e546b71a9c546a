-- Prints docs/reference.md, the reference of everything the installed extension retail_mid puts in its schema, from
-- pg_catalog and the COMMENTs (so that the reference and COMMENT ON never disagree); then lists on stderr the
-- objects without a COMMENT. Run by test/docs/reference.sh; alone: psql -X -q -A -t -f test/docs/reference.sql
-- (-v srcmap=FILE: a tab-separated "name<TAB>area<TAB>file" list giving the source file of each object; without it,
-- objects are grouped by name prefix).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;

CREATE TEMP TABLE src_map (name text, area text, file text);
\if :{?srcmap}
\set copy_map '\\copy src_map FROM ' :'srcmap'
:copy_map
\endif

-- The areas in install order, and the name prefixes that place an object when the source map does not.
CREATE TEMP TABLE area_order (area text PRIMARY KEY, ord int, title text);
INSERT INTO area_order VALUES
  ('common', 1, 'Common'), ('foundation', 2, 'Foundation'), ('bitmap', 3, 'Bitmaps'), ('consumer', 4, 'Consumer'),
  ('tags', 5, 'Tags, audiences and reach'), ('demand', 6, 'Demand'), ('site', 7, 'Site and fulfilment'),
  ('governance', 8, 'Governance'), ('other', 9, 'Other');
CREATE TEMP TABLE area_prefix (pattern text, area text);
INSERT INTO area_prefix VALUES
  ('^(ods_|dwd_|dws_trade|dws_refresh|customer_key|assign_customer|refresh|build_dw|load_(online|complete|cdnow|orange|boston|report)|stage_csv|generate_synth|synth_|job_|run_logged)', 'foundation'),
  ('^(rb_|rbitmap|bsi_)', 'bitmap'),
  ('^(oneid|connected_comp|resolve_ident|rfm|clv|bgnbd|gammagamma|aipl|dws_aipl)', 'consumer'),
  ('^(tag|audience|evaluate_tags|save_audience|customer_universe|refresh_customer_universe|reach|load_media|define_campaign|behavior_)', 'tags'),
  ('^(forecast|mae$|rmse$|bias$|smape$|mase$|rmsse$|wrmsse$|pinball$|coverage$|naive_scale|ols|promo|replenish|lead_time|normal_|fill_rate|safety_stock|order_quantity|suggested_)', 'demand'),
  ('^(site|huff|great_circle|fulfilment)', 'site'),
  ('^(quality|metric|dws_metric|pii_|brand_|secure|security|customer_brand)', 'governance');

CREATE TEMP TABLE member AS
SELECT d.classid, d.objid
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
 WHERE e.extname = 'retail_mid' AND d.deptype = 'e';

CREATE FUNCTION pg_temp.area_of(n text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT area FROM src_map WHERE name = n LIMIT 1),
                  (SELECT area FROM area_prefix WHERE n ~ pattern LIMIT 1), 'other') $$;
CREATE FUNCTION pg_temp.md(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT replace(regexp_replace(t, '\s*\n\s*', ' ', 'g'), '|', '\|') $$;

-- Functions a user calls: every function, procedure and aggregate of the extension except trigger functions, the
-- input/output/send/receive functions of its types, and aggregate support functions that take or return internal.
CREATE TEMP TABLE fn AS
SELECT p.oid, p.proname::text AS name, pg_temp.area_of(p.proname) AS area,
       pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_arguments(p.oid) AS full_args,
       CASE p.prokind WHEN 'p' THEN '' ELSE pg_get_function_result(p.oid) END AS result,
       CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' WHEN 'w' THEN 'window' ELSE 'function' END AS kind,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility,
       CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END AS parallel,
       p.proisstrict AS strict, p.prosecdef AS secdef, obj_description(p.oid, 'pg_proc') AS comment
  FROM pg_proc p
 WHERE p.oid IN (SELECT objid FROM member WHERE classid = 'pg_proc'::regclass)
   AND p.prorettype <> 'trigger'::regtype
   AND NOT EXISTS (SELECT FROM pg_type t WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend))
   AND NOT (EXISTS (SELECT FROM pg_aggregate a
                     WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
                                     a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn))
            AND ('internal'::regtype = ANY (p.proargtypes::oid[]) OR p.prorettype = 'internal'::regtype));

CREATE TEMP TABLE rel AS
SELECT c.oid, c.relname::text AS name, pg_temp.area_of(c.relname) AS area,
       CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
       obj_description(c.oid, 'pg_class') AS comment,
       (SELECT string_agg(r, ', ' ORDER BY r) FROM unnest(ARRAY['retail_mid_admin', 'retail_mid_analyst', 'retail_mid_bi',
                                                                 'retail_mid_pii_reader']) r
         WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = r)
           AND (has_table_privilege(r, c.oid, 'SELECT') OR has_any_column_privilege(r, c.oid, 'SELECT'))) AS readers,
       c.relrowsecurity AS rls
  FROM pg_class c
 WHERE c.oid IN (SELECT objid FROM member WHERE classid = 'pg_class'::regclass) AND c.relkind IN ('r', 'p', 'v', 'm');

CREATE TEMP TABLE col AS
SELECT r.oid, r.name AS relname, a.attnum, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
       col_description(r.oid, a.attnum) AS comment
  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped;

CREATE TEMP TABLE typ AS
SELECT t.oid, t.typname::text AS name, pg_temp.area_of(t.typname) AS area,
       CASE t.typtype WHEN 'b' THEN 'base type' WHEN 'c' THEN 'composite type' WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                      WHEN 'r' THEN 'range type' ELSE t.typtype::text END AS kind,
       obj_description(t.oid, 'pg_type') AS comment,
       CASE t.typtype
         WHEN 'c' THEN (SELECT string_agg(format('`%s` %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                          FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
         WHEN 'e' THEN (SELECT string_agg(quote_literal(enumlabel), ', ' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid)
         WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
         ELSE format('internal length %s', CASE WHEN t.typlen < 0 THEN 'variable' ELSE t.typlen::text END) END AS detail
  FROM pg_type t
 WHERE t.oid IN (SELECT objid FROM member WHERE classid = 'pg_type'::regclass);

CREATE TEMP TABLE op AS
SELECT o.oid, o.oprname::text AS name, o.oprleft::regtype AS lefttype, o.oprright::regtype AS righttype,
       o.oprresult::regtype AS result, o.oprcode::regproc AS func,
       coalesce(obj_description(o.oid, 'pg_operator'), obj_description(o.oprcode, 'pg_proc')) AS comment
  FROM pg_operator o
 WHERE o.oid IN (SELECT objid FROM member WHERE classid = 'pg_operator'::regclass);

-- The document.
SELECT format($h$# Reference

[README](../README.md) · [installation](installation.md) · [architecture](architecture.md) · [foundation](foundation.md) · [consumer](consumer.md) · [bitmap](bitmap.md) · [tags](tags.md) · [demand](demand.md) · [site](site.md) · [governance](governance.md) · [benchmarks](benchmarks.md) · [reference](reference.md)

Generated from the catalog of an installed retail_mid %s by `bash test/docs/reference.sh` (do not edit: change the
`COMMENT ON` in `src/<area>/*.sql` and regenerate). Every object is in the schema `retail_mid`.

**Included**: every member of the extension in that schema — %s functions, procedures and aggregates (signature,
return type, volatility, parallel safety, strictness, comment), %s tables and views with every column (type,
comment) and the roles that may read them, %s types and %s operators. **Left out**, as internal: trigger
functions, the input/output/send/receive functions of the extension's types, and aggregate support functions
(transition, final, combine, serial, deserial) that take or return `internal`; other support functions are
callable and listed. Tables the metric registry generates later (`dws_metric_*`) are not members and not listed.
Objects are grouped by the area whose source file creates them (`src/<area>/`).
"*(no comment)*" marks an object without a `COMMENT`.

Contents: %s
$h$,
  (SELECT extversion FROM pg_extension WHERE extname = 'retail_mid'),
  (SELECT count(*) FROM fn), (SELECT count(*) FROM rel), (SELECT count(*) FROM typ), (SELECT count(*) FROM op),
  (SELECT string_agg(format('[%s](#%s)', title, replace(lower(regexp_replace(title, '[^A-Za-z0-9 -]', '', 'g')), ' ', '-')), ' · ' ORDER BY ord)
     FROM area_order ao WHERE EXISTS (SELECT FROM fn WHERE area = ao.area UNION ALL SELECT FROM rel WHERE area = ao.area
                                      UNION ALL SELECT FROM typ WHERE area = ao.area)));

SELECT string_agg(section, E'\n' ORDER BY ord)
  FROM (
    SELECT ao.ord, format(E'## %s\n%s%s%s', ao.title,
      -- functions
      coalesce((SELECT format(E'\n### Functions (%s)\n\n| function | returns | kind | volatility | parallel | description |\n|---|---|---|---|---|---|\n%s\n',
                              ao.title,
                              string_agg(format('| `%s(%s)` | %s | %s%s%s | %s | %s | %s |', f.name, pg_temp.md(f.full_args),
                                                CASE WHEN f.result = '' THEN '' ELSE '`' || pg_temp.md(f.result) || '`' END,
                                                f.kind, CASE WHEN f.strict THEN ', strict' ELSE '' END,
                                                CASE WHEN f.secdef THEN ', security definer' ELSE '' END,
                                                f.volatility, f.parallel,
                                                coalesce(pg_temp.md(f.comment), '*(no comment)*')), E'\n' ORDER BY f.name, f.args))
                  FROM fn f WHERE f.area = ao.area HAVING count(*) > 0), ''),
      -- types and operators
      coalesce((SELECT format(E'\n### Types (%s)\n\n| type | kind | definition | description |\n|---|---|---|---|\n%s\n', ao.title,
                              string_agg(format('| `%s` | %s | %s | %s |', t.name, t.kind, pg_temp.md(t.detail),
                                                coalesce(pg_temp.md(t.comment), '*(no comment)*')), E'\n' ORDER BY t.name))
                  FROM typ t WHERE t.area = ao.area HAVING count(*) > 0), '')
      || coalesce((SELECT format(E'\n### Operators (%s)\n\n| operator | left | right | result | function | description |\n|---|---|---|---|---|---|\n%s\n', ao.title,
                              string_agg(format('| `%s` | `%s` | `%s` | `%s` | `%s` | %s |', pg_temp.md(o.name), o.lefttype, o.righttype,
                                                o.result, o.func, coalesce(pg_temp.md(o.comment), '*(no comment)*')),
                                         E'\n' ORDER BY o.name, o.lefttype::text, o.righttype::text))
                  FROM op o WHERE pg_temp.area_of(o.func::text) = ao.area OR (ao.area = 'bitmap' AND o.lefttype::text ~ 'rbitmap') HAVING count(*) > 0), ''),
      -- relations
      coalesce((SELECT format(E'\n### Tables and views (%s)\n\n%s', ao.title,
                              string_agg(format(E'#### `retail_mid.%s`\n\n%s%s. %s\n\n| column | type | description |\n|---|---|---|\n%s\n',
                                                r.name, upper(left(r.kind, 1)) || substr(r.kind, 2),
                                                CASE WHEN r.rls THEN ', row-level security' ELSE '' END,
                                                coalesce(pg_temp.md(r.comment), '*(no comment)*')
                                                || ' Readable by: ' || coalesce(r.readers, 'the owner and superusers') || '.',
                                                (SELECT string_agg(format('| %s | `%s` | %s |', c.name, c.type,
                                                                          coalesce(pg_temp.md(c.comment), '*(no comment)*')), E'\n' ORDER BY c.attnum)
                                                   FROM col c WHERE c.oid = r.oid)), E'\n' ORDER BY r.name))
                  FROM rel r WHERE r.area = ao.area HAVING count(*) > 0), '')) AS section
      FROM area_order ao
     WHERE EXISTS (SELECT FROM fn WHERE area = ao.area UNION ALL SELECT FROM rel WHERE area = ao.area
                   UNION ALL SELECT FROM typ WHERE area = ao.area)) s;

-- Objects without a COMMENT, on stderr (the document marks them too).
\o /dev/stderr
SELECT format('objects without a COMMENT: %s functions, %s tables/views, %s columns, %s types, %s operators (total %s)',
              (SELECT count(*) FROM fn WHERE comment IS NULL), (SELECT count(*) FROM rel WHERE comment IS NULL),
              (SELECT count(*) FROM col WHERE comment IS NULL), (SELECT count(*) FROM typ WHERE comment IS NULL),
              (SELECT count(*) FROM op WHERE comment IS NULL),
              (SELECT count(*) FROM fn WHERE comment IS NULL) + (SELECT count(*) FROM rel WHERE comment IS NULL)
              + (SELECT count(*) FROM col WHERE comment IS NULL) + (SELECT count(*) FROM typ WHERE comment IS NULL)
              + (SELECT count(*) FROM op WHERE comment IS NULL));
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('no comment: %s %s(%s)  [%s]', kind, name, args, area) AS x FROM fn WHERE comment IS NULL
  UNION ALL SELECT format('no comment: %s %s  [%s]', kind, name, area) FROM rel WHERE comment IS NULL
  UNION ALL SELECT format('no comment: column %s.%s', relname, name) FROM col WHERE comment IS NULL
  UNION ALL SELECT format('no comment: type %s  [%s]', name, area) FROM typ WHERE comment IS NULL
  UNION ALL SELECT format('no comment: operator %s(%s, %s)', name, lefttype, righttype) FROM op WHERE comment IS NULL) s;
\o
