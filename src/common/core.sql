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
