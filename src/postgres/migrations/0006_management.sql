-- Management reads for operators (the durox CLI and the dashboard): a filtered, keyset-paged
-- instance list and a throughput-over-time aggregate. Conventions (json results, DX error codes,
-- pinned search_path) are at the top of 0002_orchestration_procedures.sql. Both are read-only.
--
-- Query plans checked with 100,000 instances (bench/list-100k.ts seeds them: PostgreSQL 15,
-- 60% Completed, 30% Running, 10% Failed, 20 orchestration names; EXPLAIN ANALYZE of the
-- statements list_instances_page assembles, LIMIT 50, no parallel workers):
--
-- * no filter / later pages:
--     Limit -> Index Scan using instances_page_idx on instances i
--              Index Cond: (ROW(created_at_ms, instance_id) < ROW($5, $6))      (cursor pages)
--     (+ Nested Loop Left Join -> Index Scan using executions_pkey, one probe per row)  0.06 ms
-- * orchestration name:
--     Limit -> Index Scan using instances_name_page_idx  Index Cond: (orchestration_name = $2)
--                                                                                   0.07 ms
-- * status = 'Failed' (10%):
--     Limit -> Nested Loop -> Index Scan using instances_page_idx (491 rows)
--                          -> Index Scan using executions_pkey  Filter: (status = 'Failed')
--                                                                                   1.3 ms
-- * status that is rare or absent ('ContinuedAsNew', 0 rows):
--     Limit -> Sort -> Nested Loop -> Index Only Scan Backward using executions_status_idx
--                                     Index Cond: (status = 'ContinuedAsNew')
--                                  -> Index Scan using instances_pkey                0.04 ms
--   (with COALESCE(e.status, 'Running') = $1 instead, the planner walked all 100,000 instances:
--    105 ms; that is why non-Running statuses use a plain equality.)
-- * status = 'Running': Nested Loop Left Join over instances_page_idx, Filter on e.status  0.4 ms
-- * created time range: Index Cond on created_at_ms in instances_page_idx.
-- Client.listInstancesPage end to end (median of 20, one pool connection): first page 1.3 ms,
-- page 201 1.5 ms, Failed 2.8 ms, absent status 0.7 ms, name 1.3 ms, 1000 rows 13 ms;
-- get_throughput over the last hour in 1-minute buckets 3 ms (executions_started_idx and
-- executions_completed_idx read only the window).

-- Keyset order of the list: newest first, instance id breaking ties (both descending, so a
-- row comparison against the cursor is one index condition).
CREATE INDEX IF NOT EXISTS instances_page_idx ON instances (created_at_ms DESC, instance_id DESC);
CREATE INDEX IF NOT EXISTS instances_name_page_idx
    ON instances (orchestration_name, created_at_ms DESC, instance_id DESC);
CREATE INDEX IF NOT EXISTS executions_status_idx ON executions (status, instance_id, execution_id);
CREATE INDEX IF NOT EXISTS executions_started_idx ON executions (started_at_ms);
CREATE INDEX IF NOT EXISTS executions_completed_idx ON executions (completed_at_ms)
    WHERE completed_at_ms IS NOT NULL;

-- One page of instances, newest first.
-- p_filter: {status?, orchestrationName?, createdFromMs?, createdToMs?, cursorCreatedAt?,
--            cursorInstanceId?, limit}; createdFromMs is inclusive, createdToMs exclusive; the
--            cursor is the (createdAt, instanceId) of the last row of the previous page.
-- Result: {items: [{instanceId, orchestrationName, orchestrationVersion, status,
--          currentExecutionId, createdAt, updatedAt, parentInstanceId, customStatus, error}],
--          nextCursor: {createdAt, instanceId} | null}. status is the current execution's status
--          (Running when the execution row does not exist yet); error is the first 500 characters
--          of a Failed instance's message.
-- Guarantees: DX003 for a limit outside 1..1000, an unknown status or a half cursor.
-- The statement is assembled from fixed fragments only (values travel as parameters), so each
-- filter combination gets its own plan with the matching index.
CREATE OR REPLACE FUNCTION list_instances_page(p_filter json) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
-- A page is at most 1000 index-ordered rows: starting parallel workers costs more than it saves.
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_status      TEXT   := p_filter->>'status';
    v_name        TEXT   := p_filter->>'orchestrationName';
    v_from        BIGINT := (p_filter->>'createdFromMs')::BIGINT;
    v_to          BIGINT := (p_filter->>'createdToMs')::BIGINT;
    v_cursor_at   BIGINT := (p_filter->>'cursorCreatedAt')::BIGINT;
    v_cursor_id   TEXT   := p_filter->>'cursorInstanceId';
    v_limit       INTEGER := COALESCE((p_filter->>'limit')::INTEGER, 50);
    v_where       TEXT   := 'TRUE';
    v_items       json;
    v_count       INTEGER;
    v_next        json;
BEGIN
    IF v_limit < 1 OR v_limit > 1000 THEN
        RAISE EXCEPTION 'list_instances_page: limit must be between 1 and 1000, got %', v_limit USING ERRCODE = 'DX003';
    END IF;
    IF v_status IS NOT NULL AND v_status NOT IN ('Running', 'Completed', 'Failed', 'ContinuedAsNew') THEN
        RAISE EXCEPTION 'list_instances_page: unknown status %', v_status USING ERRCODE = 'DX003';
    END IF;
    IF (v_cursor_at IS NULL) <> (v_cursor_id IS NULL) THEN
        RAISE EXCEPTION 'list_instances_page: a cursor needs both createdAt and instanceId' USING ERRCODE = 'DX003';
    END IF;
    -- A plain equality on e.status lets the planner start from executions_status_idx when the
    -- status is rare; Running also covers an instance whose first execution row is not written yet.
    IF v_status = 'Running' THEN v_where := v_where || ' AND (e.status = $1 OR e.status IS NULL)';
    ELSIF v_status IS NOT NULL THEN v_where := v_where || ' AND e.status = $1';
    END IF;
    IF v_name IS NOT NULL THEN v_where := v_where || ' AND i.orchestration_name = $2'; END IF;
    IF v_from IS NOT NULL THEN v_where := v_where || ' AND i.created_at_ms >= $3'; END IF;
    IF v_to IS NOT NULL THEN v_where := v_where || ' AND i.created_at_ms < $4'; END IF;
    IF v_cursor_at IS NOT NULL THEN v_where := v_where || ' AND (i.created_at_ms, i.instance_id) < ($5, $6)'; END IF;

    EXECUTE
        'SELECT COALESCE(json_agg(json_build_object(
                    ''instanceId'', p.instance_id,
                    ''orchestrationName'', p.orchestration_name,
                    ''orchestrationVersion'', COALESCE(p.orchestration_version, ''unknown''),
                    ''status'', p.status,
                    ''currentExecutionId'', p.current_execution_id,
                    ''createdAt'', p.created_at_ms,
                    ''updatedAt'', p.updated_at_ms,
                    ''parentInstanceId'', p.parent_instance_id,
                    ''customStatus'', p.custom_status,
                    ''error'', CASE WHEN p.status = ''Failed'' THEN left(p.output, 500) END)
                ORDER BY p.created_at_ms DESC, p.instance_id DESC), ''[]''::json),
                count(*)::INTEGER
         FROM (SELECT i.instance_id, i.orchestration_name, i.orchestration_version,
                      COALESCE(e.status, ''Running'') AS status, i.current_execution_id,
                      i.created_at_ms, i.updated_at_ms, i.parent_instance_id, i.custom_status, e.output
               FROM instances i
               LEFT JOIN executions e
                      ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
               WHERE ' || v_where || '
               ORDER BY i.created_at_ms DESC, i.instance_id DESC
               LIMIT $7) p'
    INTO v_items, v_count
    USING v_status, v_name, v_from, v_to, v_cursor_at, v_cursor_id, v_limit;

    IF v_count = v_limit THEN
        v_next := json_build_object(
            'createdAt', (v_items->(v_count - 1))->'createdAt',
            'instanceId', (v_items->(v_count - 1))->'instanceId');
    END IF;
    RETURN json_build_object('items', v_items, 'nextCursor', v_next);
END;
$$;

-- Executions started, completed and failed per time bucket since p_since_ms (bucket starts are
-- multiples of p_bucket_ms). ContinuedAsNew counts as completed work of that execution.
-- Result: [{bucketStart, started, completed, failed}] ascending, every bucket up to now present.
-- Guarantees: DX003 for a bucket width below 1 second or more than 1000 buckets.
CREATE OR REPLACE FUNCTION get_throughput(p_since_ms BIGINT, p_bucket_ms BIGINT) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    BIGINT := current_time_ms();
    v_first  BIGINT;
    v_result json;
BEGIN
    IF p_bucket_ms IS NULL OR p_bucket_ms < 1000 THEN
        RAISE EXCEPTION 'get_throughput: bucket width must be at least 1000 ms, got %', p_bucket_ms USING ERRCODE = 'DX003';
    END IF;
    IF p_since_ms IS NULL OR p_since_ms > v_now OR (v_now - p_since_ms) / p_bucket_ms > 1000 THEN
        RAISE EXCEPTION 'get_throughput: the window must start in the past and span at most 1000 buckets'
            USING ERRCODE = 'DX003';
    END IF;
    v_first := (p_since_ms / p_bucket_ms) * p_bucket_ms;
    SELECT json_agg(json_build_object(
               'bucketStart', b.bucket_start,
               'started', COALESCE(s.n, 0),
               'completed', COALESCE(c.completed, 0),
               'failed', COALESCE(c.failed, 0)) ORDER BY b.bucket_start)
    INTO v_result
    FROM generate_series(v_first, v_now, p_bucket_ms) AS b(bucket_start)
    LEFT JOIN (SELECT (e.started_at_ms / p_bucket_ms) * p_bucket_ms AS bucket_start, count(*) AS n
               FROM executions e WHERE e.started_at_ms >= v_first
               GROUP BY 1) s ON s.bucket_start = b.bucket_start
    LEFT JOIN (SELECT (e.completed_at_ms / p_bucket_ms) * p_bucket_ms AS bucket_start,
                      count(*) FILTER (WHERE e.status <> 'Failed') AS completed,
                      count(*) FILTER (WHERE e.status = 'Failed') AS failed
               FROM executions e WHERE e.completed_at_ms >= v_first
               GROUP BY 1) c ON c.bucket_start = b.bucket_start;
    RETURN COALESCE(v_result, '[]'::json);
END;
$$;
