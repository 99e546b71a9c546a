-- Prints the README's column reference of the ODS, DWD and DWS tables and views as markdown, from the
-- catalog comments (so that the manual and COMMENT ON never disagree).   psql -X -q -A -t -f test/docs/columns.sql
SELECT string_agg(section, E'\n' ORDER BY relname)
  FROM (SELECT c.relname,
               format(E'#### `retail_mid.%s`\n%s\n\n| column | type | meaning |\n|---|---|---|\n%s\n', c.relname,
                      coalesce(obj_description(c.oid, 'pg_class'), ''),
                      string_agg(format('| %s | %s | %s |', a.attname, format_type(a.atttypid, a.atttypmod),
                                        coalesce(col_description(c.oid, a.attnum), '')), E'\n' ORDER BY a.attnum)) AS section
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'v', 'p')
           AND c.relname ~ '^(ods|dwd|dws)_'
         GROUP BY c.oid, c.relname) s;
