-- Reads and management: history, status, KV, instance lists (simple and keyset-paged), metrics,
-- throughput, instance trees and statistics, deletion (one, tree, bulk) and pruning.
-- Conventions: docs/sql.md. DX004 = conflict with stored state (a running instance, an orphan
-- that appeared concurrently). Deletion takes the instances' advisory locks in key order first,
-- like every procedure that writes an instance (orchestration.sql).
--
-- Query plans of list_instances_page and get_throughput, checked with 100,000 instances
-- (bench/list-100k.ts seeds them: PostgreSQL 15, 60% Completed, 30% Running, 10% Failed, 20
-- orchestration names; EXPLAIN ANALYZE of the statements list_instances_page assembles, LIMIT
-- 50, no parallel workers; indexes in the baseline migration):
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

-- read_history: the events of one execution (default: the current one), ordered by event id.
-- Lock order: none (read-only).
-- Errors: DX005 for stored history that is not valid JSON (never silently shortened).
-- Returns: {executionId, events}; executionId NULL and events [] for an unknown instance.
CREATE OR REPLACE FUNCTION read_history(p_instance_id TEXT, p_execution_id BIGINT) RETURNS json
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_execution_id BIGINT := p_execution_id;
    v_events       json;
BEGIN
    IF v_execution_id IS NULL THEN
        SELECT i.current_execution_id INTO v_execution_id FROM instances i WHERE i.instance_id = p_instance_id;
        IF NOT FOUND THEN
            RETURN json_build_object('executionId', NULL, 'events', '[]'::json);
        END IF;
    END IF;
    BEGIN
        SELECT COALESCE(json_agg(h.event_data::json ORDER BY h.event_id), '[]'::json) INTO v_events
        FROM history h WHERE h.instance_id = p_instance_id AND h.execution_id = v_execution_id;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'stored history of execution % is corrupted: %', v_execution_id, SQLERRM
            USING ERRCODE = 'DX005';
    END;
    RETURN json_build_object('executionId', v_execution_id, 'events', v_events);
END;
$$;

-- get_instance_status: the client view of an instance: status of the current execution
-- (ContinuedAsNew reads as Running, a missing instance as NotFound, or as Pending while its start
-- waits for a flow permit: flow.sql), output when Completed, error
-- message and failure details when Failed, and the custom status with its version (incremented
-- once per turn that changed it).
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {status, output, error, failureDetails, customStatus, customStatusVersion}.
CREATE OR REPLACE FUNCTION get_instance_status(p_instance_id TEXT) RETURNS json
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN COALESCE(
        (SELECT json_build_object(
                    'status', CASE WHEN e.status IS NULL OR e.status = 'ContinuedAsNew' THEN 'Running'
                                   ELSE e.status END,
                    'output', CASE WHEN e.status = 'Completed' THEN e.output END,
                    'error', CASE WHEN e.status = 'Failed' THEN e.output END,
                    'failureDetails', CASE WHEN e.status = 'Failed' THEN e.failure_details::json END,
                    'customStatus', i.custom_status,
                    'customStatusVersion', i.custom_status_version)
         FROM instances i
         LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
         WHERE i.instance_id = p_instance_id),
        json_build_object('status', CASE WHEN EXISTS (SELECT 1 FROM flow_parked_starts s WHERE s.instance_id = p_instance_id)
                                         THEN 'Pending' ELSE 'NotFound' END,
                          'customStatus', NULL, 'customStatusVersion', 0));
END;
$$;

-- get_kv_value: the current value of one key: this execution's delta wins over the store, a
-- tombstone hides it.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {found, value}.
CREATE OR REPLACE FUNCTION get_kv_value(p_instance_id TEXT, p_key TEXT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(
        (SELECT json_build_object('found', d.value IS NOT NULL, 'value', d.value)
         FROM kv_delta d WHERE d.instance_id = p_instance_id AND d.key = p_key),
        (SELECT json_build_object('found', TRUE, 'value', s.value)
         FROM kv_store s WHERE s.instance_id = p_instance_id AND s.key = p_key),
        json_build_object('found', FALSE, 'value', NULL))
$$;

-- get_kv_all_values: all current keys of an instance: store overlaid by the delta, tombstones
-- removed.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {key: value}.
CREATE OR REPLACE FUNCTION get_kv_all_values(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(json_object_agg(merged.key, merged.value), '{}'::json)
    FROM (
        SELECT COALESCE(d.key, s.key) AS key,
               CASE WHEN d.key IS NOT NULL THEN d.value ELSE s.value END AS value
        FROM (SELECT key, value FROM kv_store WHERE instance_id = p_instance_id) s
        FULL OUTER JOIN (SELECT key, value FROM kv_delta WHERE instance_id = p_instance_id) d
            ON d.key = s.key
    ) merged
    WHERE merged.value IS NOT NULL
$$;

-- list_instances: instance ids, newest first; with p_status only those whose current execution
-- has it.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: json array of ids.
CREATE OR REPLACE FUNCTION list_instances(p_status TEXT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(json_agg(x.instance_id ORDER BY x.created_at_ms DESC, x.instance_id), '[]'::json)
    FROM (
        SELECT i.instance_id, i.created_at_ms
        FROM instances i
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE p_status IS NULL OR COALESCE(e.status, 'Running') = p_status
    ) x
$$;

-- list_executions: the execution ids of an instance, ascending.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: json array of ids ([] when unknown).
CREATE OR REPLACE FUNCTION list_executions(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(json_agg(e.execution_id ORDER BY e.execution_id), '[]'::json)
    FROM executions e WHERE e.instance_id = p_instance_id
$$;

-- get_instance_info: metadata of an instance with the status and output of its current execution.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {instanceId, orchestrationName, orchestrationVersion, currentExecutionId, status,
-- output, createdAt, updatedAt, parentInstanceId, priority}, or NULL when unknown.
CREATE OR REPLACE FUNCTION get_instance_info(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'instanceId', i.instance_id,
        'orchestrationName', i.orchestration_name,
        'orchestrationVersion', COALESCE(i.orchestration_version, 'unknown'),
        'currentExecutionId', i.current_execution_id,
        'status', COALESCE(e.status, 'Running'),
        'output', e.output,
        'createdAt', i.created_at_ms,
        'updatedAt', i.updated_at_ms,
        'parentInstanceId', i.parent_instance_id,
        'priority', i.priority)
    FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = p_instance_id
$$;

-- get_execution_info: metadata of one execution with its history event count.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {executionId, status, output, startedAt, completedAt, eventCount}, or NULL when unknown.
CREATE OR REPLACE FUNCTION get_execution_info(p_instance_id TEXT, p_execution_id BIGINT) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'executionId', e.execution_id,
        'status', e.status,
        'output', e.output,
        'startedAt', e.started_at_ms,
        'completedAt', e.completed_at_ms,
        'eventCount', (SELECT count(*) FROM history h
                       WHERE h.instance_id = e.instance_id AND h.execution_id = e.execution_id))
    FROM executions e
    WHERE e.instance_id = p_instance_id AND e.execution_id = p_execution_id
$$;

-- get_system_metrics: counts over the whole schema; running/completed/failed use each
-- instance's current execution (ContinuedAsNew counts as running).
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {totalInstances, totalExecutions, runningInstances, completedInstances,
-- failedInstances, totalEvents}.
CREATE OR REPLACE FUNCTION get_system_metrics() RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'totalInstances', (SELECT count(*) FROM instances),
        'totalExecutions', (SELECT count(*) FROM executions),
        'runningInstances', count(*) FILTER (WHERE COALESCE(e.status, 'Running') IN ('Running', 'ContinuedAsNew')),
        'completedInstances', count(*) FILTER (WHERE e.status = 'Completed'),
        'failedInstances', count(*) FILTER (WHERE e.status = 'Failed'),
        'totalEvents', (SELECT count(*) FROM history))
    FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
$$;

-- get_queue_depths: visible, unlocked messages per queue (rows, not instances). An orchestrator
-- message counts as locked while its instance holds an unexpired lock.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {orchestratorQueue, workerQueue, timerQueue}.
CREATE OR REPLACE FUNCTION get_queue_depths() RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'orchestratorQueue',
            (SELECT count(*) FROM orchestrator_queue q
             WHERE q.rank_ms <= internal_current_time_ms() AND q.visible_at_ms <= internal_current_time_ms()
               AND NOT EXISTS (SELECT 1 FROM instance_locks l
                               WHERE l.instance_id = q.instance_id AND l.locked_until_ms > internal_current_time_ms())),
        'workerQueue',
            (SELECT count(*) FROM worker_queue w
             WHERE w.rank_ms <= internal_current_time_ms() AND w.visible_at_ms <= internal_current_time_ms()
               AND (w.lock_token IS NULL OR w.locked_until_ms <= internal_current_time_ms())),
        'timerQueue', 0)
$$;

-- list_instances_page: one page of instances, newest first.
-- p_filter: {status?, orchestrationName?, createdFromMs?, createdToMs?, cursorCreatedAt?,
--            cursorInstanceId?, limit}; createdFromMs is inclusive, createdToMs exclusive; the
--            cursor is the (createdAt, instanceId) of the last row of the previous page.
-- The statement is assembled from fixed fragments only (values travel as parameters), so each
-- filter combination gets its own plan with the matching index (plans: top of this file).
-- Lock order: none (read-only).
-- Errors: DX003 for a limit outside 1..1000, an unknown status or a half cursor.
-- Returns: {items: [{instanceId, orchestrationName, orchestrationVersion, status,
--          currentExecutionId, createdAt, updatedAt, parentInstanceId, customStatus, error,
--          priority}], nextCursor: {createdAt, instanceId} | null}. status is the current
--          execution's status (Running when the execution row does not exist yet); error is the
--          first 500 characters of a Failed instance's message; priority the instance's level
--          (0..9, migration 0103). Starts parked behind a flow limit (flow_parked_starts, status
--          Pending in get_instance_status) are not listed: they have no instances row yet, and
--          the park has no (created_at_ms, instance_id) index to merge into this keyset order, so
--          each page would read the whole park (a backlog can hold 100,000 starts).
CREATE OR REPLACE FUNCTION list_instances_page(p_filter json) RETURNS json
LANGUAGE plpgsql STABLE
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
                    ''error'', CASE WHEN p.status = ''Failed'' THEN left(p.output, 500) END,
                    ''priority'', p.priority)
                ORDER BY p.created_at_ms DESC, p.instance_id DESC), ''[]''::json),
                count(*)::INTEGER
         FROM (SELECT i.instance_id, i.orchestration_name, i.orchestration_version,
                      COALESCE(e.status, ''Running'') AS status, i.current_execution_id,
                      i.created_at_ms, i.updated_at_ms, i.parent_instance_id, i.custom_status, e.output,
                      i.priority
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

-- get_throughput: executions started, completed and failed per time bucket since p_since_ms
-- (bucket starts are multiples of p_bucket_ms). ContinuedAsNew counts as completed work of that
-- execution.
-- Lock order: none (read-only).
-- Errors: DX003 for a bucket width below 1 second or more than 1000 buckets.
-- Returns: [{bucketStart, started, completed, failed}] ascending, every bucket up to now present.
CREATE OR REPLACE FUNCTION get_throughput(p_since_ms BIGINT, p_bucket_ms BIGINT) RETURNS json
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_now    BIGINT := internal_current_time_ms();
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

-- get_instance_tree: the instance and all its descendants.
-- Lock order: none (read-only).
-- Errors: DX002 'Instance <id> not found' for an unknown instance.
-- Returns: {rootId, allIds} (root first).
CREATE OR REPLACE FUNCTION get_instance_tree(p_instance_id TEXT) RETURNS json
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM instances WHERE instance_id = p_instance_id) THEN
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    RETURN json_build_object('rootId', p_instance_id, 'allIds', array_to_json(internal_instance_tree_ids(p_instance_id)));
END;
$$;

-- get_instance_stats: per-instance statistics. History figures cover the current execution;
-- queuePendingCount = events carried forward into it by continue-as-new (length of
-- carryForwardEvents of its OrchestrationStarted; 0 when absent or undecodable); KV figures are
-- the merged view clients read (store overridden by this execution's delta, tombstones hidden).
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {historyEventCount, historySizeBytes, queuePendingCount, kvUserKeyCount,
-- kvTotalValueBytes}, or NULL for an unknown instance.
CREATE OR REPLACE FUNCTION get_instance_stats(p_instance_id TEXT) RETURNS json
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_current BIGINT;
    v_events  BIGINT;
    v_bytes   BIGINT;
    v_pending BIGINT := 0;
    v_keys    BIGINT;
    v_kv      BIGINT;
BEGIN
    SELECT i.current_execution_id INTO v_current FROM instances i WHERE i.instance_id = p_instance_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT count(*), COALESCE(sum(octet_length(h.event_data)), 0) INTO v_events, v_bytes
    FROM history h WHERE h.instance_id = p_instance_id AND h.execution_id = v_current;
    BEGIN
        SELECT COALESCE(json_array_length((h.event_data::json) -> 'carryForwardEvents'), 0) INTO v_pending
        FROM history h
        WHERE h.instance_id = p_instance_id AND h.execution_id = v_current AND h.event_id = 1
          AND h.event_type = 'OrchestrationStarted';
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        v_pending := 0;
    END;
    SELECT count(*), COALESCE(sum(octet_length(v.value)), 0) INTO v_keys, v_kv
    FROM (
        SELECT COALESCE(d.key, s.key) AS key, CASE WHEN d.key IS NOT NULL THEN d.value ELSE s.value END AS value
        FROM (SELECT * FROM kv_store WHERE instance_id = p_instance_id) s
        FULL JOIN (SELECT * FROM kv_delta WHERE instance_id = p_instance_id) d ON d.key = s.key
    ) v
    WHERE v.value IS NOT NULL;
    RETURN json_build_object('historyEventCount', v_events, 'historySizeBytes', v_bytes,
                             'queuePendingCount', COALESCE(v_pending, 0), 'kvUserKeyCount', v_keys,
                             'kvTotalValueBytes', v_kv);
END;
$$;

-- delete_instance: deletes a root instance with its whole tree of sub-orchestrations,
-- atomically. Force-delete does not stop work in flight; its acks fail afterwards. An instance
-- that does not exist yet but whose start waits for a flow permit, or holds one, is deleted as
-- delete_instances deletes it (a parked start needs no force: nothing of it runs).
-- Lock order: as delete_instances, over the tree.
-- Errors: DX002 'Instance <id> not found'; DX003 'Cannot delete sub-orchestration <id>
-- directly. Delete the root orchestration instead.' (with or without force); unless p_force,
-- DX004 for a tree with a running instance; DX004 for a concurrent orphan (see delete_instances).
-- Returns: as delete_instances.
CREATE OR REPLACE FUNCTION delete_instance(p_instance_id TEXT, p_force BOOLEAN) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_parent TEXT;
BEGIN
    SELECT i.parent_instance_id INTO v_parent FROM instances i WHERE i.instance_id = p_instance_id;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM flow_parked_starts s WHERE s.instance_id = p_instance_id)
           OR EXISTS (SELECT 1 FROM flow_instance_permits h WHERE h.instance_id = p_instance_id) THEN
            RETURN delete_instances(json_build_array(p_instance_id), p_force);
        END IF;
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    IF v_parent IS NOT NULL THEN
        RAISE EXCEPTION 'Cannot delete sub-orchestration % directly. Delete the root orchestration instead.', p_instance_id
            USING ERRCODE = 'DX003';
    END IF;
    RETURN delete_instances(array_to_json(internal_instance_tree_ids(p_instance_id)), p_force);
END;
$$;

-- delete_instances: deletes exactly the listed instances (json array of ids) and everything they
-- own, atomically: history, executions, queued orchestrator messages and activities addressed to
-- them, instance locks, KV store and delta, and the instance rows. All or nothing. Deleting the
-- instance lock makes an in-flight turn's ack fail (DX001), so a force-deleted instance is never
-- recreated by a late ack; a late activity ack fails too because its worker_queue row is gone.
-- Sessions rows are left to cleanup_orphaned_sessions.
-- Activities and starts parked under a flow limit are deleted too; permits held by deleted
-- activities and instances are handed to the oldest parked activity or start of their key, or
-- given back (flow.sql). A listed instance that does not exist yet but holds a permit (its start
-- is queued) counts as running; one whose start is parked does not.
-- Lock order: the advisory locks of the instances in ascending key order (exclusive, waited
-- for) -> their instance_locks rows -> their instances rows (both in ascending id order) ->
-- executions, history, kv rows are deleted -> the flow_limits rows of their activities' and
-- permits' keys (ascending) -> worker_queue, flow_parked, flow_instance_permits,
-- flow_parked_starts and orchestrator_queue rows are deleted.
-- Errors: DX003 when p_instance_ids is not a json array; unless p_force, DX004 'Instance <id> is
-- still running. Use force=true or cancel first.'; DX004 'Orphan detected: ...' when, after
-- locking, an instance whose parent is listed is not listed itself (a child that appeared
-- concurrently, or a partial tree; a child whose start is parked behind a flow limit counts).
-- Returns: {instancesDeleted, executionsDeleted, eventsDeleted, queueMessagesDeleted}.
CREATE OR REPLACE FUNCTION delete_instances(p_instance_ids json, p_force BOOLEAN) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids        TEXT[];
    v_running    TEXT;
    v_orphan     RECORD;
    v_instances  INTEGER := 0;
    v_executions INTEGER := 0;
    v_events     INTEGER := 0;
    v_queue      INTEGER := 0;
    v_count      INTEGER;
    v_released   TEXT[];
    v_pending    INTEGER;
BEGIN
    IF p_instance_ids IS NULL OR json_typeof(p_instance_ids) <> 'array' THEN
        RAISE EXCEPTION 'instance ids must be a json array' USING ERRCODE = 'DX003';
    END IF;
    v_ids := ARRAY(SELECT DISTINCT x FROM json_array_elements_text(p_instance_ids) AS x ORDER BY x);
    IF array_length(v_ids, 1) IS NULL THEN
        RETURN json_build_object('instancesDeleted', 0, 'executionsDeleted', 0, 'eventsDeleted', 0,
                                 'queueMessagesDeleted', 0);
    END IF;

    PERFORM internal_lock_instances_in_key_order(v_ids, ARRAY[]::TEXT[]);
    PERFORM 1 FROM instance_locks l WHERE l.instance_id = ANY (v_ids) ORDER BY l.instance_id FOR UPDATE;
    PERFORM 1 FROM instances i WHERE i.instance_id = ANY (v_ids) ORDER BY i.instance_id FOR UPDATE;

    IF NOT COALESCE(p_force, FALSE) THEN
        SELECT i.instance_id INTO v_running
        FROM instances i
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE i.instance_id = ANY (v_ids) AND e.status = 'Running'
        ORDER BY i.instance_id LIMIT 1;
        IF NOT FOUND THEN
            SELECT h.instance_id INTO v_running
            FROM flow_instance_permits h
            WHERE h.instance_id = ANY (v_ids)
              AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = h.instance_id)
            ORDER BY h.instance_id LIMIT 1;
        END IF;
        IF FOUND THEN
            RAISE EXCEPTION 'Instance % is still running. Use force=true or cancel first.', v_running
                USING ERRCODE = 'DX004';
        END IF;
    END IF;

    SELECT c.instance_id, c.parent_instance_id INTO v_orphan
    FROM (SELECT i.instance_id, i.parent_instance_id FROM instances i WHERE i.parent_instance_id = ANY (v_ids)
          UNION ALL
          SELECT s.instance_id, s.parent_instance_id FROM flow_parked_starts s WHERE s.parent_instance_id = ANY (v_ids)) c
    WHERE NOT (c.instance_id = ANY (v_ids))
    ORDER BY c.instance_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Orphan detected: instance % has parent % in the deletion set but is not in it; delete the whole tree',
            v_orphan.instance_id, v_orphan.parent_instance_id USING ERRCODE = 'DX004';
    END IF;

    DELETE FROM instance_locks WHERE instance_id = ANY (v_ids);
    DELETE FROM executions WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_executions = ROW_COUNT;
    DELETE FROM history WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM kv_store WHERE instance_id = ANY (v_ids);
    DELETE FROM kv_delta WHERE instance_id = ANY (v_ids);
    -- Flow control (flow.sql): the permits of deleted activities go to parked ones of other
    -- instances, or back.
    IF EXISTS (SELECT 1 FROM flow_limits) THEN
        PERFORM internal_flow_lock_keys(ARRAY(
            SELECT w.flow_key FROM worker_queue w WHERE w.instance_id = ANY (v_ids) AND w.flow_key IS NOT NULL
            UNION
            SELECT p.flow_key FROM flow_parked p WHERE p.instance_id = ANY (v_ids)
            UNION
            SELECT h.flow_key FROM flow_instance_permits h WHERE h.instance_id = ANY (v_ids)
            UNION
            SELECT s.flow_key FROM flow_parked_starts s WHERE s.instance_id = ANY (v_ids)));
    END IF;
    WITH deleted AS (DELETE FROM worker_queue WHERE instance_id = ANY (v_ids) RETURNING flow_key)
    SELECT count(*), array_agg(d.flow_key) FILTER (WHERE d.flow_key IS NOT NULL) INTO v_queue, v_released
    FROM deleted d;
    DELETE FROM flow_parked WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queue := v_queue + v_count;
    DELETE FROM flow_parked_starts WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_pending = ROW_COUNT;
    -- Instance permits are handed over after the parked starts of the deleted instances are gone.
    WITH deleted AS (DELETE FROM flow_instance_permits WHERE instance_id = ANY (v_ids) RETURNING flow_key)
    SELECT COALESCE(v_released, ARRAY[]::TEXT[]) || array_agg(d.flow_key) INTO v_released FROM deleted d;
    IF cardinality(v_released) > 0 THEN
        PERFORM internal_flow_release(v_released, internal_current_time_ms());
    END IF;
    DELETE FROM orchestrator_queue WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queue := v_queue + v_count;
    DELETE FROM instances WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_instances = ROW_COUNT;
    -- A pending instance (start parked) is an instance deleted too.
    v_instances := v_instances + v_pending;

    RETURN json_build_object('instancesDeleted', v_instances, 'executionsDeleted', v_executions,
                             'eventsDeleted', v_events, 'queueMessagesDeleted', v_queue);
END;
$$;

-- delete_instance_bulk: deletes, in one atomic call, every root instance matching p_filter
-- {instanceIds?, completedBefore?, limit?} whose current execution is Completed, Failed or
-- ContinuedAsNew, each with its whole tree. Running roots are skipped silently.
-- Lock order: as delete_instances, over the union of the trees.
-- Errors: DX003 for an invalid filter; DX004 for a concurrent orphan (nothing is deleted).
-- Returns: as delete_instances.
CREATE OR REPLACE FUNCTION delete_instance_bulk(p_filter json) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_roots TEXT[] := internal_select_instances_by_filter(p_filter, ARRAY['Completed', 'Failed', 'ContinuedAsNew'], TRUE);
    v_all   TEXT[];
BEGIN
    v_all := ARRAY(SELECT DISTINCT t FROM unnest(v_roots) AS r, unnest(internal_instance_tree_ids(r)) AS t);
    RETURN delete_instances(array_to_json(v_all), TRUE);
END;
$$;

-- prune_executions: prunes the old executions of one instance (see
-- internal_prune_instance_executions): keeps the current one and the last p_keep_last, and only
-- deletes those completed before p_completed_before_ms when given.
-- Lock order: the instances row -> its executions and history rows.
-- Errors: DX002 'Instance <id> not found'; DX003 for a negative keep-last.
-- Returns: {instancesProcessed: 1, executionsDeleted, eventsDeleted}.
CREATE OR REPLACE FUNCTION prune_executions(p_instance_id TEXT, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_result json;
BEGIN
    IF p_keep_last IS NOT NULL AND p_keep_last < 0 THEN
        RAISE EXCEPTION 'keepLast must not be negative, got %', p_keep_last USING ERRCODE = 'DX003';
    END IF;
    v_result := internal_prune_instance_executions(p_instance_id, p_keep_last, p_completed_before_ms);
    IF v_result IS NULL THEN
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    RETURN json_build_object('instancesProcessed', 1,
                             'executionsDeleted', (v_result ->> 'executionsDeleted')::INTEGER,
                             'eventsDeleted', (v_result ->> 'eventsDeleted')::INTEGER);
END;
$$;

-- prune_executions_bulk: prunes, in one atomic call, every instance (any status,
-- sub-orchestrations included) matching p_filter {instanceIds?, completedBefore?, limit?}; each
-- keeps its current execution.
-- Lock order: the matching instances rows one by one in creation order -> their executions and
-- history rows.
-- Errors: DX003 for an invalid filter or a negative keep-last.
-- Returns: {instancesProcessed, executionsDeleted, eventsDeleted} summed.
CREATE OR REPLACE FUNCTION prune_executions_bulk(p_filter json, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_id         TEXT;
    v_result     json;
    v_processed  INTEGER := 0;
    v_executions INTEGER := 0;
    v_events     INTEGER := 0;
BEGIN
    IF p_keep_last IS NOT NULL AND p_keep_last < 0 THEN
        RAISE EXCEPTION 'keepLast must not be negative, got %', p_keep_last USING ERRCODE = 'DX003';
    END IF;
    FOREACH v_id IN ARRAY internal_select_instances_by_filter(p_filter, NULL, FALSE) LOOP
        v_result := internal_prune_instance_executions(v_id, p_keep_last, p_completed_before_ms);
        IF v_result IS NOT NULL THEN
            v_processed := v_processed + 1;
            v_executions := v_executions + (v_result ->> 'executionsDeleted')::INTEGER;
            v_events := v_events + (v_result ->> 'eventsDeleted')::INTEGER;
        END IF;
    END LOOP;
    RETURN json_build_object('instancesProcessed', v_processed, 'executionsDeleted', v_executions,
                             'eventsDeleted', v_events);
END;
$$;
