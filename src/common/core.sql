-- common/core.sql: the job log every long-running retail_mid job writes to, and its progress helpers.

CREATE TABLE retail_mid.job_log (
    job_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text        NOT NULL,
    arguments   jsonb       NOT NULL DEFAULT '{}',
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    duration    interval GENERATED ALWAYS AS (finished_at - started_at) STORED,
    rows_written bigint,
    outcome     text        NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
    detail      jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE retail_mid.job_log IS 'One row per run of a long retail_mid job (refresh, loads, tag evaluation, forecasting): what ran, when, how long, rows written, outcome.';
COMMENT ON COLUMN retail_mid.job_log.job IS 'Name of the job, e.g. refresh or load_online_retail.';
COMMENT ON COLUMN retail_mid.job_log.arguments IS 'The arguments the job was called with.';
COMMENT ON COLUMN retail_mid.job_log.duration IS 'Wall-clock time from start to finish.';
COMMENT ON COLUMN retail_mid.job_log.rows_written IS 'Rows the job inserted or replaced, over all its steps.';
COMMENT ON COLUMN retail_mid.job_log.outcome IS 'running, ok or failed.';
COMMENT ON COLUMN retail_mid.job_log.detail IS 'Per-step counts and, for failures, the error.';
COMMENT ON COLUMN retail_mid.job_log.job_id IS 'Identifier of the run; other tables refer to it (e.g. quality_result.run_id).';
COMMENT ON COLUMN retail_mid.job_log.started_at IS 'When the run started (clock time).';
COMMENT ON COLUMN retail_mid.job_log.finished_at IS 'When the run ended; NULL while it runs or when it died without writing its outcome.';
-- pg_dump keeps the job log (and where its ids continue); see "Backup and restore" in docs/installation.md.
SELECT pg_catalog.pg_extension_config_dump('retail_mid.job_log', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.job_log_job_id_seq', '');

-- Backup and restore. pg_dump writes CREATE EXTENSION and then the rows of every table registered with
-- pg_extension_config_dump; pg_restore (or psql running a plain dump) loads them with COPY ... FROM stdin into
-- the tables CREATE EXTENSION has just made, with the extension's triggers in place. The triggers that derive
-- rows, reset columns or would collide with the installed default rows ask restoring() first, so that a restore
-- brings back the rows exactly as they were dumped.
-- Only a superuser session restores: CREATE EXTENSION retail_mid (superuser = true in the control file) is the
-- first statement of every dump, so a restore runs as a superuser anyway. A non-superuser's COPY ... FROM STDIN
-- (an administrator loading tag rules or quality rules that way) is an ordinary insert and passes every check,
-- so it cannot plant rows the checks would refuse (issue 13 security review; test/sql/security_escalation.sql).
-- Both the current and the session user must be superusers: a SECURITY DEFINER function owned by a superuser
-- does not make its caller's COPY a restore, nor does a superuser's SET ROLE to a plain role.
CREATE FUNCTION retail_mid.restoring()
RETURNS boolean LANGUAGE sql VOLATILE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT pg_catalog.current_query() OPERATOR(pg_catalog.~*) '^\s*COPY\s+\S+(\s*\([^)]*\))?\s+FROM\s+STDIN\M'
       AND (SELECT bool_and(r.rolsuper) FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[CURRENT_USER, SESSION_USER]::pg_catalog.name[]))
       IS TRUE;
END;
COMMENT ON FUNCTION retail_mid.restoring() IS 'True while a superuser session (current and session user both superusers) runs COPY ... FROM STDIN, the way pg_restore and plain dumps load the rows of the extension''s tables: the extension''s triggers then keep the rows as dumped instead of deriving, resetting or re-checking them. A non-superuser''s COPY is an ordinary, fully checked insert.';

-- Tables that CREATE EXTENSION fills with default rows (segment maps, templates, taxonomy, ...) are dumped whole,
-- so that the user's changes to those rows survive too. On restore the installed default row with the same
-- primary key is already there: this BEFORE INSERT trigger replaces it by the dumped row (an UPDATE, only when
-- they differ) instead of failing the whole COPY on the duplicate key. Outside a restore it does nothing.
CREATE FUNCTION retail_mid.restore_merge()
RETURNS trigger LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE pk_cols text; pk_vals text; all_cols text; all_vals text; old_row text;
BEGIN
    IF NOT retail_mid.restoring() THEN
        RETURN NEW;
    END IF;
    SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.n), string_agg(format('($1).%I', a.attname), ', ' ORDER BY k.n)
      INTO pk_cols, pk_vals
      FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = TG_RELID AND i.indisprimary;
    IF pk_cols IS NULL THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT t::text FROM %s AS t WHERE ROW(%s) = ROW(%s)', TG_RELID::regclass, pk_cols, pk_vals)
       INTO old_row USING NEW;
    IF old_row IS NULL THEN
        RETURN NEW;                                  -- not an installed default: the user's own row
    END IF;
    IF old_row IS DISTINCT FROM NEW::text THEN      -- a default row the user had changed
        SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum), string_agg(format('($1).%I', a.attname), ', ' ORDER BY a.attnum)
          INTO all_cols, all_vals
          FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        EXECUTE format('UPDATE %s AS t SET (%s) = ROW(%s) WHERE ROW(%s) = ROW(%s)', TG_RELID::regclass, all_cols, all_vals, pk_cols, pk_vals)
          USING NEW;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.restore_merge() IS 'Trigger (BEFORE INSERT) of the tables shipped with default rows: during a restore (restoring()) a dumped row whose primary key is already installed replaces the installed row instead of failing the COPY; otherwise nothing.';

-- Opens a job_log row. The row is part of the caller's transaction, so a job that fails and is rolled back
-- leaves no half-done state and no row either; retail_mid.run_logged records failed runs as well.
CREATE FUNCTION retail_mid.job_start(job text, arguments jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO retail_mid.job_log (job, arguments) VALUES (job, arguments) RETURNING job_id;
END;
COMMENT ON FUNCTION retail_mid.job_start(text, jsonb) IS 'Opens a job_log row and returns its id.';

CREATE FUNCTION retail_mid.job_finish(job_id bigint, rows_written bigint, detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    UPDATE retail_mid.job_log l
       SET finished_at = clock_timestamp(), rows_written = job_finish.rows_written,
           outcome = 'ok', detail = l.detail || job_finish.detail
     WHERE l.job_id = job_finish.job_id;
END;
COMMENT ON FUNCTION retail_mid.job_finish(bigint, bigint, jsonb) IS 'Closes a job_log row as successful.';

-- Runs one SQL statement (normally SELECT retail_mid.refresh(...) or a loader) as a job whose failure is
-- recorded too: the work is rolled back, the failed job_log row is committed, then the error is re-raised.
-- (No SET search_path here: a procedure with SET clauses may not COMMIT. Every name in it is qualified.)
CREATE PROCEDURE retail_mid.run_logged(job text, statement text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text; v_message text; v_detail text; v_id bigint;
BEGIN
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    IF v_state IS NOT NULL THEN
        INSERT INTO retail_mid.job_log (job, arguments, finished_at, outcome, detail)
        VALUES (job, jsonb_build_object('statement', statement), clock_timestamp(), 'failed',
                jsonb_build_object('sqlstate', v_state, 'error', v_message, 'error_detail', v_detail))
        RETURNING job_id INTO v_id;
        COMMIT;
        RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_message,
            DETAIL = coalesce(v_detail, ''), HINT = format('The failure is recorded as job_log row %s.', v_id);
    END IF;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_logged(text, text) IS 'Runs a statement as a job: on failure its work is rolled back, a failed job_log row is committed and the error re-raised.';
