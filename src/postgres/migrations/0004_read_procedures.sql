-- Read-only procedures: history, status, key-value reads and management views. Conventions
-- (json results, DX error codes, pinned search_path) are at the top of
-- 0002_orchestration_procedures.sql. None of them takes a row lock: each runs on one snapshot.

-- Events of one execution (default: the current one), ordered by event id.
-- Result: {executionId, events}; executionId NULL and events [] for an unknown instance.
-- Guarantees: corrupted stored history raises DX005; it is never silently shortened.
CREATE OR REPLACE FUNCTION read_history(p_instance_id TEXT, p_execution_id BIGINT) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
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

-- Client view of an instance: status of the current execution (ContinuedAsNew reads as Running,
-- a missing instance as NotFound), output when Completed, error message and failure details when
-- Failed, and the custom status with its version (incremented once per turn that changed it).
CREATE OR REPLACE FUNCTION get_instance_status(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT COALESCE(
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
        json_build_object('status', 'NotFound', 'customStatus', NULL, 'customStatusVersion', 0))
$$;

-- Current value of one key: this execution's delta wins over the store, a tombstone hides it.
-- Result: {found, value}.
CREATE OR REPLACE FUNCTION get_kv_value(p_instance_id TEXT, p_key TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT COALESCE(
        (SELECT json_build_object('found', d.value IS NOT NULL, 'value', d.value)
         FROM kv_delta d WHERE d.instance_id = p_instance_id AND d.key = p_key),
        (SELECT json_build_object('found', TRUE, 'value', s.value)
         FROM kv_store s WHERE s.instance_id = p_instance_id AND s.key = p_key),
        json_build_object('found', FALSE, 'value', NULL))
$$;

-- All current keys of an instance as {key: value}: store overlaid by the delta, tombstones removed.
CREATE OR REPLACE FUNCTION get_kv_all_values(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
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

-- Instance ids, newest first; with p_status only those whose current execution has it.
CREATE OR REPLACE FUNCTION list_instances(p_status TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT COALESCE(json_agg(x.instance_id ORDER BY x.created_at_ms DESC, x.instance_id), '[]'::json)
    FROM (
        SELECT i.instance_id, i.created_at_ms
        FROM instances i
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE p_status IS NULL OR COALESCE(e.status, 'Running') = p_status
    ) x
$$;

-- Execution ids of an instance, ascending ([] when unknown).
CREATE OR REPLACE FUNCTION list_executions(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT COALESCE(json_agg(e.execution_id ORDER BY e.execution_id), '[]'::json)
    FROM executions e WHERE e.instance_id = p_instance_id
$$;

-- Metadata of an instance with the status and output of its current execution; NULL when unknown.
CREATE OR REPLACE FUNCTION get_instance_info(p_instance_id TEXT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
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
        'parentInstanceId', i.parent_instance_id)
    FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = p_instance_id
$$;

-- Metadata of one execution with its history event count; NULL when unknown.
CREATE OR REPLACE FUNCTION get_execution_info(p_instance_id TEXT, p_execution_id BIGINT) RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
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

-- Counts over the whole schema; running/completed/failed use each instance's current execution
-- (ContinuedAsNew counts as running).
CREATE OR REPLACE FUNCTION get_system_metrics() RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
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

-- Visible, unlocked messages per queue (rows, not instances). An orchestrator message counts as
-- locked while its instance holds an unexpired lock.
CREATE OR REPLACE FUNCTION get_queue_depths() RETURNS json
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT json_build_object(
        'orchestratorQueue',
            (SELECT count(*) FROM orchestrator_queue q
             WHERE q.visible_at_ms <= current_time_ms()
               AND NOT EXISTS (SELECT 1 FROM instance_locks l
                               WHERE l.instance_id = q.instance_id AND l.locked_until_ms > current_time_ms())),
        'workerQueue',
            (SELECT count(*) FROM worker_queue w
             WHERE w.visible_at_ms <= current_time_ms()
               AND (w.lock_token IS NULL OR w.locked_until_ms <= current_time_ms())),
        'timerQueue', 0)
$$;
