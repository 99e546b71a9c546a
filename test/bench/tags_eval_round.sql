-- One round of re-evaluation on unchanged data for test/bench/tags_eval.sql (included with \ir).
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.evaluate_tags(ARRAY(SELECT 'bench_g' || i FROM generate_series(1, 50) i)) AS written \gset
INSERT INTO timing SELECT 'one scan per source', 're-evaluation, unchanged', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                          (SELECT (detail ->> 'source_scans')::int FROM retail_mid.job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1);
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.evaluate_tags(ARRAY(SELECT 'bench_p' || i FROM generate_series(1, 50) i)) AS written \gset
INSERT INTO timing SELECT 'one query per tag', 're-evaluation, unchanged', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                          (SELECT (detail ->> 'source_scans')::int FROM retail_mid.job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1);
