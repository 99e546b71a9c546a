-- common/registry.sql: SQL stored in the registries (tag rules, metric and quality expressions) runs as its author.
--
-- Every registry row carries the role that wrote its SQL (column author). The jobs that execute stored SQL
-- (evaluate_tags, metric_generate/metric_refresh, quality_evaluate) check each fragment's shape with
-- registry_check_sql, choose the role it runs as with registry_role, and run it between registry_enter and
-- registry_leave (src/common/registry.c): as that role, in a security-restricted operation, so a rule written by
-- an administrator never runs with the rights of the superuser who schedules the jobs.

CREATE FUNCTION retail_mid.registry_check_sql(fragment text, kind text, what text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'registry_check_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.registry_check_sql(text, text, text) IS 'Returns the stored SQL fragment when it is one piece of its kind: expression (a scalar expression), relation (a table or view name or a parenthesised SELECT) or query (one SELECT); parsed inside the text it is embedded in, so a semicolon, a second statement or an unbalanced parenthesis is error 42601 naming what. NULL gives NULL.';

CREATE FUNCTION retail_mid.registry_enter(role regrole) RETURNS int8
    AS 'MODULE_PATHNAME', 'registry_enter' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION retail_mid.registry_enter(regrole) IS 'Internal to the jobs: becomes role (whose privileges the current user must hold) in a security-restricted operation (no SET ROLE, no SET SESSION AUTHORIZATION, no new temporary tables) with its own settings, and returns the token registry_leave needs. Errors in between are undone by the (sub)transaction abort.';

CREATE FUNCTION retail_mid.registry_leave(token int8) RETURNS void
    AS 'MODULE_PATHNAME', 'registry_leave' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION retail_mid.registry_leave(int8) IS 'Internal to the jobs: ends the section registry_enter opened (discarding the settings changed inside) and returns to the previous user; a wrong token is error 42501.';

-- The role stored SQL of the given authors runs as, when the current user runs it. Every author must still exist
-- and be a member of retail_mid_admin (42501 otherwise); NULL stands for "no particular author" (definitions from
-- before authorship was recorded): the role retail_mid_admin itself. Superuser authors (the shipped definitions)
-- restrict nothing. One remaining author whose privileges the current user holds: that author; the current user
-- when none remains; otherwise retail_mid_admin, whose privileges every author holds.
CREATE FUNCTION retail_mid.registry_role(authors regrole[], what text) RETURNS regrole
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a regrole;
    lesser regrole[] := '{}';
    me regrole := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)::regrole;
BEGIN
    IF authors IS NULL OR cardinality(authors) = 0 THEN
        RAISE EXCEPTION 'registry_role needs the authors of %', coalesce(what, 'the SQL') USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH a IN ARRAY authors LOOP
        IF a IS NULL THEN
            a := 'retail_mid_admin'::regrole;
        ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = a) THEN
            RAISE EXCEPTION '% was written by a role that no longer exists', coalesce(what, 'stored SQL')
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('The author''s role OID is %s.', a::oid),
                      HINT = 'An administrator who reviews it saves it again (UPDATE ... SET author = DEFAULT) and becomes its author.';
        ELSIF NOT pg_catalog.pg_has_role(a::oid, 'retail_mid_admin', 'MEMBER') THEN
            RAISE EXCEPTION '% was written by %, who is not a member of retail_mid_admin', coalesce(what, 'stored SQL'), a
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Only administrators'' SQL runs in the jobs: an administrator who reviews it saves it again and becomes its author.';
        END IF;
        IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = a) AND a <> ALL (lesser) THEN
            lesser := lesser || a;
        END IF;
    END LOOP;
    IF cardinality(lesser) = 0 THEN
        RETURN me;
    ELSIF cardinality(lesser) = 1 AND pg_catalog.pg_has_role(current_user, lesser[1]::oid, 'USAGE') THEN
        RETURN lesser[1];
    ELSIF pg_catalog.pg_has_role(current_user, 'retail_mid_admin', 'USAGE') THEN
        RETURN 'retail_mid_admin'::regrole;
    END IF;
    RAISE EXCEPTION 'cannot run % as an administrator', coalesce(what, 'stored SQL') USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Its authors are %s; the current user %s does not have their privileges nor those of retail_mid_admin.',
                        array_to_string(authors::text[], ', '), current_user),
        HINT = 'Run the jobs as a superuser or as a member of retail_mid_admin.';
END;
$$;
COMMENT ON FUNCTION retail_mid.registry_role(regrole[], text) IS 'The role stored SQL written by authors runs as: 42501 when an author no longer exists or is not a member of retail_mid_admin; NULL authors count as retail_mid_admin, superusers restrict nothing; then the one remaining author (when the current user holds its privileges), the current user (none remains), or retail_mid_admin.';

-- Trigger of every registry table: who wrote the SQL of a row. author defaults to the current user; it may be set
-- only to NULL or a role the current user is a member of (nobody can attribute SQL to a more powerful role), and a
-- change of the row's SQL columns (the trigger's arguments after the first, the key column) makes the current user
-- its author.
CREATE FUNCTION retail_mid.registry_author_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me regrole := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)::regrole;
    col text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.author IS NOT DISTINCT FROM OLD.author THEN
        FOREACH col IN ARRAY TG_ARGV[1:] LOOP
            IF (to_jsonb(NEW) -> col) IS DISTINCT FROM (to_jsonb(OLD) -> col) THEN
                NEW.author := me;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF NEW.author IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.author IS DISTINCT FROM OLD.author)
       AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = NEW.author)
                AND pg_catalog.pg_has_role(current_user, NEW.author::oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'cannot record % as the author of % %', NEW.author, TG_TABLE_NAME, to_jsonb(NEW) -> TG_ARGV[0]
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The current user %s is not a member of %s.', current_user, NEW.author),
                  HINT = 'Leave author at its default (the current user).';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.registry_author_check() IS 'Trigger of the registry tables: the author of a row''s SQL is the current user by default, may be set only to NULL or a role the current user is a member of (42501), and becomes the current user when the SQL columns named by the trigger''s arguments (after the key column) change.';
