-- Capability parity with duroxide: pinned runtime versions and capability filtering, deletion
-- (tree, bulk), pruning (one instance, bulk), instance trees and per-instance statistics.
-- Conventions (json results, DX error codes, pinned search_path, database clock, lock order) are
-- described at the top of 0002_orchestration_procedures.sql. DX004 = conflict with stored state
-- (a running instance, an orphan that appeared concurrently).

-- --- Pinned runtime version ------------------------------------------------------------------

-- The Durox version that started an execution, from the duroxVersion stamped on its
-- OrchestrationStarted event. NULL = unpinned (always compatible). Three integers, not a packed
-- number, so no component is limited to 999 (postgres-provider.md 6.3).
ALTER TABLE executions ADD COLUMN IF NOT EXISTS pinned_major INTEGER NULL;
ALTER TABLE executions ADD COLUMN IF NOT EXISTS pinned_minor INTEGER NULL;
ALTER TABLE executions ADD COLUMN IF NOT EXISTS pinned_patch INTEGER NULL;

-- Stores the pinned version carried by the OrchestrationStarted event an ack appends, in the same
-- transaction as the ack (the executions row is written before the history rows). Every later
-- ack appends other events, so the pinned version never changes for the life of the execution;
-- a continue-as-new execution gets its own from its own OrchestrationStarted. Event data that is
-- not JSON or carries no semver leaves the execution unpinned instead of failing the ack.
CREATE OR REPLACE FUNCTION pin_execution_version() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_parts TEXT[];
BEGIN
    BEGIN
        v_parts := regexp_match((NEW.event_data::json) ->> 'duroxVersion', '^(\d{1,9})\.(\d{1,9})\.(\d{1,9})');
    EXCEPTION WHEN invalid_text_representation THEN
        v_parts := NULL;
    END;
    IF v_parts IS NOT NULL THEN
        UPDATE executions
        SET pinned_major = v_parts[1]::INTEGER, pinned_minor = v_parts[2]::INTEGER, pinned_patch = v_parts[3]::INTEGER
        WHERE instance_id = NEW.instance_id AND execution_id = NEW.execution_id;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS history_pin_execution_version ON history;
CREATE TRIGGER history_pin_execution_version
    AFTER INSERT ON history
    FOR EACH ROW WHEN (NEW.event_type = 'OrchestrationStarted')
    EXECUTE FUNCTION pin_execution_version();

-- Parses 'major.minor.patch' (pre-release/build suffixes ignored) into an INTEGER[3]; DX003 otherwise.
CREATE OR REPLACE FUNCTION parse_semver(p_version TEXT, p_what TEXT) RETURNS INTEGER[]
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_parts TEXT[] := regexp_match(p_version, '^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+].*)?$');
BEGIN
    IF v_parts IS NULL THEN
        RAISE EXCEPTION '% must be a semantic version major.minor.patch, got %', p_what, quote_nullable(p_version)
            USING ERRCODE = 'DX003';
    END IF;
    RETURN ARRAY[v_parts[1]::INTEGER, v_parts[2]::INTEGER, v_parts[3]::INTEGER];
END;
$$;

-- --- Capability filtering ------------------------------------------------------------------

-- True when the current execution of the instance is unpinned (or the instance does not exist
-- yet) or pinned to a version within [p_min, p_max] (INTEGER[3] each, inclusive). No locks.
CREATE OR REPLACE FUNCTION version_in_range(p_instance_id TEXT, p_min INTEGER[], p_max INTEGER[]) RETURNS BOOLEAN
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT NOT EXISTS (
        SELECT 1
        FROM instances i
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE i.instance_id = p_instance_id
          AND e.pinned_major IS NOT NULL
          AND (ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) < ROW(p_min[1], p_min[2], p_min[3])
               OR ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) > ROW(p_max[1], p_max[2], p_max[3])))
$$;

-- fetch_orchestration_item as defined in 0002, plus the capability filter. The signature
-- changes (two optional range arguments), so the old function is dropped first; one-argument
-- calls keep working through the defaults.
DROP FUNCTION IF EXISTS fetch_orchestration_item(BIGINT);

-- Locks the instance of the oldest visible message whose instance is not locked and returns the
-- whole visible batch of that instance with the current execution's history.
-- Guarantees: NULL means no eligible work, never "lost a race" (the loop tries the next
-- candidate); no instance is ever handed to two holders (advisory lock + instance_locks row);
-- an expired lock is taken over with a new token, so the old holder's ack fails.
-- Start rule: an instance that does not exist yet is eligible only when its visible batch holds a
-- StartOrchestration or ContinueAsNew. A batch made only of QueueMessages for a never-created
-- instance is deleted here (orphan rule, no executions row is written) and the loop goes on;
-- other early messages (CancelInstance, ExternalRaised) wait for their start.
-- Corrupted history (not JSON) is reported in historyError while the lock is held, so the
-- runtime can abandon or poison the batch.
-- Locks: pg_try_advisory_xact_lock(instance) (a busy instance is skipped, never waited for),
-- then the instance_locks row FOR UPDATE (when one exists), then the instance's queue rows, then
-- the instance_locks row is written. A batch emptied by a concurrent ack is skipped, never
-- returned empty.
-- Capability filter (0008): with p_min_version/p_max_version ('major.minor.patch', both or
-- neither), only instances whose current execution is unpinned (NULL) or pinned to a Durox
-- version inside the inclusive range are eligible. The filter runs in the peek, before any lock
-- or history read, so skipped instances are never locked nor decoded, and is checked again under
-- the lock (a concurrent continue-as-new may have re-pinned the instance).
-- Result: {instanceId, orchestrationName, orchestrationVersion, executionId, history,
-- historyError, messages, lockToken, attemptCount, kvSnapshot, customStatus, nowMs};
-- name/version/executionId are NULL for an instance that does not exist yet.
CREATE OR REPLACE FUNCTION fetch_orchestration_item(p_lock_timeout_ms BIGINT, p_min_version TEXT DEFAULT NULL,
                                                    p_max_version TEXT DEFAULT NULL) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now           BIGINT := current_time_ms();
    v_skipped       TEXT[] := ARRAY[]::TEXT[];
    v_instance_id   TEXT;
    v_locked_until  BIGINT;
    v_exists        BOOLEAN;
    v_name          TEXT;
    v_version       TEXT;
    v_execution_id  BIGINT;
    v_custom_status TEXT;
    v_lock_token    TEXT;
    v_messages      json;
    v_attempt_count INTEGER;
    v_history       json := '[]'::json;
    v_history_error TEXT;
    v_kv            json;
    v_min           INTEGER[];
    v_max           INTEGER[];
BEGIN
    IF p_lock_timeout_ms IS NULL OR p_lock_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'lock timeout must be a positive number of milliseconds, got %', p_lock_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;

    IF (p_min_version IS NULL) <> (p_max_version IS NULL) THEN
        RAISE EXCEPTION 'a version range needs both a minimum and a maximum' USING ERRCODE = 'DX003';
    END IF;
    IF p_min_version IS NOT NULL THEN
        v_min := parse_semver(p_min_version, 'minimum version');
        v_max := parse_semver(p_max_version, 'maximum version');
    END IF;

    LOOP
        -- Phase 1: peek without row locks.
        SELECT q.instance_id INTO v_instance_id
        FROM orchestrator_queue q
        WHERE q.visible_at_ms <= v_now
          AND q.instance_id <> ALL (v_skipped)
          AND (v_min IS NULL OR version_in_range(q.instance_id, v_min, v_max))
          AND NOT EXISTS (SELECT 1 FROM instance_locks l
                          WHERE l.instance_id = q.instance_id AND l.locked_until_ms > v_now)
          AND (EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)
               OR EXISTS (SELECT 1 FROM orchestrator_queue s
                          WHERE s.instance_id = q.instance_id AND s.visible_at_ms <= v_now
                            AND s.kind IN ('StartOrchestration', 'ContinueAsNew'))
               OR NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                              WHERE o.instance_id = q.instance_id AND o.visible_at_ms <= v_now
                                AND o.kind <> 'QueueMessage'))
        ORDER BY q.visible_at_ms, q.id
        LIMIT 1;

        IF NOT FOUND THEN
            RETURN NULL;
        END IF;

        -- Phase 2: serialise with other fetchers of this instance; a busy instance is skipped.
        IF NOT pg_try_advisory_xact_lock(hashtext(current_schema() || ':' || v_instance_id)) THEN
            v_skipped := v_skipped || v_instance_id;
            CONTINUE;
        END IF;

        SELECT l.locked_until_ms INTO v_locked_until
        FROM instance_locks l WHERE l.instance_id = v_instance_id
        FOR UPDATE;
        IF FOUND AND v_locked_until > v_now THEN
            v_skipped := v_skipped || v_instance_id;
            CONTINUE;
        END IF;
        IF v_min IS NOT NULL AND NOT version_in_range(v_instance_id, v_min, v_max) THEN
            v_skipped := v_skipped || v_instance_id;
            CONTINUE;
        END IF;

        SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id, i.custom_status
        INTO v_name, v_version, v_execution_id, v_custom_status
        FROM instances i WHERE i.instance_id = v_instance_id;
        v_exists := FOUND;

        IF NOT v_exists AND NOT EXISTS (
            SELECT 1 FROM orchestrator_queue s
            WHERE s.instance_id = v_instance_id AND s.visible_at_ms <= v_now
              AND s.kind IN ('StartOrchestration', 'ContinueAsNew')) THEN
            -- Orphan rule: QueueMessages alone for a never-created instance are dropped.
            IF NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                           WHERE o.instance_id = v_instance_id AND o.visible_at_ms <= v_now
                             AND o.kind <> 'QueueMessage') THEN
                DELETE FROM orchestrator_queue
                WHERE instance_id = v_instance_id AND visible_at_ms <= v_now AND kind = 'QueueMessage';
            END IF;
            v_skipped := v_skipped || v_instance_id;
            CONTINUE;
        END IF;

        -- Tag the batch: every visible message, including those of an expired previous holder.
        -- The peek ran without locks, so the previous holder may have acknowledged (and deleted)
        -- the whole batch since: then there is nothing to hand out and the loop moves on.
        v_lock_token := gen_random_uuid()::TEXT;
        UPDATE orchestrator_queue
        SET lock_token = v_lock_token, attempt_count = attempt_count + 1
        WHERE instance_id = v_instance_id AND visible_at_ms <= v_now;
        IF NOT FOUND THEN
            v_skipped := v_skipped || v_instance_id;
            CONTINUE;
        END IF;

        INSERT INTO instance_locks (instance_id, lock_token, locked_until_ms, locked_at_ms)
        VALUES (v_instance_id, v_lock_token, v_now + p_lock_timeout_ms, v_now)
        ON CONFLICT (instance_id) DO UPDATE
            SET lock_token = EXCLUDED.lock_token,
                locked_until_ms = EXCLUDED.locked_until_ms,
                locked_at_ms = EXCLUDED.locked_at_ms;

        SELECT json_agg(q.work_item::json ORDER BY q.id), max(q.attempt_count)
        INTO v_messages, v_attempt_count
        FROM orchestrator_queue q WHERE q.lock_token = v_lock_token;

        IF v_exists THEN
            BEGIN
                SELECT COALESCE(json_agg(h.event_data::json ORDER BY h.event_id), '[]'::json)
                INTO v_history
                FROM history h
                WHERE h.instance_id = v_instance_id AND h.execution_id = v_execution_id;
            EXCEPTION WHEN invalid_text_representation THEN
                v_history := '[]'::json;
                v_history_error := 'stored history of execution ' || v_execution_id
                    || ' is not valid JSON: ' || SQLERRM;
            END;
        END IF;

        -- Snapshot of kv_store only: this execution's own writes are rebuilt by replay.
        SELECT COALESCE(json_object_agg(k.key, json_build_object(
                   'value', k.value, 'lastUpdatedAtMs', k.last_updated_at_ms)), '{}'::json)
        INTO v_kv
        FROM kv_store k WHERE k.instance_id = v_instance_id;

        RETURN json_build_object(
            'instanceId', v_instance_id,
            'orchestrationName', v_name,
            'orchestrationVersion', v_version,
            'executionId', v_execution_id,
            'history', v_history,
            'historyError', v_history_error,
            'messages', v_messages,
            'lockToken', v_lock_token,
            'attemptCount', v_attempt_count,
            'kvSnapshot', v_kv,
            'customStatus', v_custom_status,
            'nowMs', v_now);
    END LOOP;
END;
$$;

-- --- Deletion ----------------------------------------------------------------------------------

-- Deletes exactly the listed instances (json array of ids) and everything they own, atomically:
-- history, executions, queued orchestrator messages and activities addressed to them, instance
-- locks, KV store and delta, and the instance rows.
-- Guarantees: all or nothing. Unless p_force, any listed instance whose current execution is
-- Running refuses the whole call (DX004 'Instance <id> is still running. Use force=true or cancel
-- first.'). After locking, an instance whose parent is listed but which is not listed itself
-- (a child that appeared concurrently, or a partial tree) refuses the whole call (DX004 'Orphan
-- detected: ...'). Deleting the instance lock makes an in-flight turn's ack fail (DX001), so a
-- force-deleted instance is never recreated by a late ack; a late activity ack fails too because
-- its worker_queue row is gone. Sessions rows are left to cleanup_orphaned_sessions.
-- Locks, in ascending instance id order: advisory lock of each instance (as fetch uses), its
-- instance_locks row, its instances row; then executions, history, kv, worker_queue,
-- orchestrator_queue rows are deleted.
-- Result: {instancesDeleted, executionsDeleted, eventsDeleted, queueMessagesDeleted}.
CREATE OR REPLACE FUNCTION delete_instances(p_instance_ids json, p_force BOOLEAN) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids        TEXT[];
    v_id         TEXT;
    v_running    TEXT;
    v_orphan     RECORD;
    v_instances  INTEGER := 0;
    v_executions INTEGER := 0;
    v_events     INTEGER := 0;
    v_queue      INTEGER := 0;
    v_count      INTEGER;
BEGIN
    IF p_instance_ids IS NULL OR json_typeof(p_instance_ids) <> 'array' THEN
        RAISE EXCEPTION 'instance ids must be a json array' USING ERRCODE = 'DX003';
    END IF;
    v_ids := ARRAY(SELECT DISTINCT x FROM json_array_elements_text(p_instance_ids) AS x ORDER BY x);
    IF array_length(v_ids, 1) IS NULL THEN
        RETURN json_build_object('instancesDeleted', 0, 'executionsDeleted', 0, 'eventsDeleted', 0,
                                 'queueMessagesDeleted', 0);
    END IF;

    FOREACH v_id IN ARRAY v_ids LOOP
        PERFORM pg_advisory_xact_lock(hashtext(current_schema() || ':' || v_id));
    END LOOP;
    PERFORM 1 FROM instance_locks l WHERE l.instance_id = ANY (v_ids) ORDER BY l.instance_id FOR UPDATE;
    PERFORM 1 FROM instances i WHERE i.instance_id = ANY (v_ids) ORDER BY i.instance_id FOR UPDATE;

    IF NOT COALESCE(p_force, FALSE) THEN
        SELECT i.instance_id INTO v_running
        FROM instances i
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE i.instance_id = ANY (v_ids) AND e.status = 'Running'
        ORDER BY i.instance_id LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'Instance % is still running. Use force=true or cancel first.', v_running
                USING ERRCODE = 'DX004';
        END IF;
    END IF;

    SELECT c.instance_id, c.parent_instance_id INTO v_orphan
    FROM instances c
    WHERE c.parent_instance_id = ANY (v_ids) AND NOT (c.instance_id = ANY (v_ids))
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
    DELETE FROM worker_queue WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_queue = ROW_COUNT;
    DELETE FROM orchestrator_queue WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queue := v_queue + v_count;
    DELETE FROM instances WHERE instance_id = ANY (v_ids);
    GET DIAGNOSTICS v_instances = ROW_COUNT;

    RETURN json_build_object('instancesDeleted', v_instances, 'executionsDeleted', v_executions,
                             'eventsDeleted', v_events, 'queueMessagesDeleted', v_queue);
END;
$$;

-- The instance and all its descendants through parent links (no lock). Result: TEXT[], root first.
CREATE OR REPLACE FUNCTION instance_tree_ids(p_instance_id TEXT) RETURNS TEXT[]
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH RECURSIVE tree(instance_id, depth) AS (
        SELECT p_instance_id, 0
        UNION
        SELECT c.instance_id, t.depth + 1
        FROM instances c JOIN tree t ON c.parent_instance_id = t.instance_id
        WHERE t.depth < 10000
    )
    SELECT array_agg(instance_id ORDER BY depth, instance_id) FROM tree
$$;

-- Deletes a root instance with its whole tree of sub-orchestrations, atomically (one call).
-- Refuses: an unknown instance (DX002 'Instance <id> not found'); a sub-orchestration (DX003
-- 'Cannot delete sub-orchestration <id> directly. Delete the root orchestration instead.'), with
-- or without force; and, unless p_force, a tree with a running instance (DX004, see
-- delete_instances). Force-delete does not stop work in flight; its acks fail afterwards.
-- Locks: as delete_instances. Result: as delete_instances.
CREATE OR REPLACE FUNCTION delete_instance(p_instance_id TEXT, p_force BOOLEAN) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_parent TEXT;
BEGIN
    SELECT i.parent_instance_id INTO v_parent FROM instances i WHERE i.instance_id = p_instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    IF v_parent IS NOT NULL THEN
        RAISE EXCEPTION 'Cannot delete sub-orchestration % directly. Delete the root orchestration instead.', p_instance_id
            USING ERRCODE = 'DX003';
    END IF;
    RETURN delete_instances(array_to_json(instance_tree_ids(p_instance_id)), p_force);
END;
$$;

-- Root instances selected by a filter json {instanceIds?, completedBefore?, limit?} whose current
-- execution has one of p_statuses (NULL = any status), oldest first. instanceIds present but empty
-- selects nothing; limit defaults to 1000.
CREATE OR REPLACE FUNCTION select_instances_by_filter(p_filter json, p_statuses TEXT[], p_roots_only BOOLEAN)
RETURNS TEXT[]
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_filter    json := COALESCE(p_filter, '{}'::json);
    v_ids       TEXT[];
    v_before    BIGINT;
    v_limit     BIGINT;
BEGIN
    IF json_typeof(v_filter) <> 'object' THEN
        RAISE EXCEPTION 'filter must be a json object' USING ERRCODE = 'DX003';
    END IF;
    IF json_typeof(v_filter -> 'instanceIds') = 'array' THEN
        v_ids := ARRAY(SELECT json_array_elements_text(v_filter -> 'instanceIds'));
    END IF;
    v_before := (v_filter ->> 'completedBefore')::BIGINT;
    v_limit := COALESCE((v_filter ->> 'limit')::BIGINT, 1000);
    IF v_limit < 0 THEN
        RAISE EXCEPTION 'limit must not be negative, got %', v_limit USING ERRCODE = 'DX003';
    END IF;
    RETURN ARRAY(
        SELECT i.instance_id
        FROM instances i
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE (NOT p_roots_only OR i.parent_instance_id IS NULL)
          AND (p_statuses IS NULL OR e.status = ANY (p_statuses))
          AND (v_ids IS NULL OR i.instance_id = ANY (v_ids))
          AND (v_before IS NULL OR e.completed_at_ms < v_before)
        ORDER BY i.created_at_ms, i.instance_id
        LIMIT v_limit);
END;
$$;

-- Deletes, in one atomic call, every root instance matching p_filter {instanceIds?,
-- completedBefore?, limit?} whose current execution is Completed, Failed or ContinuedAsNew,
-- each with its whole tree. Running roots are skipped silently; a concurrent orphan refuses the
-- whole call (DX004) and nothing is deleted.
-- Locks: as delete_instances, over the union of the trees. Result: as delete_instances.
CREATE OR REPLACE FUNCTION delete_instance_bulk(p_filter json) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_roots TEXT[] := select_instances_by_filter(p_filter, ARRAY['Completed', 'Failed', 'ContinuedAsNew'], TRUE);
    v_all   TEXT[];
BEGIN
    v_all := ARRAY(SELECT DISTINCT t FROM unnest(v_roots) AS r, unnest(instance_tree_ids(r)) AS t);
    RETURN delete_instances(array_to_json(v_all), TRUE);
END;
$$;

-- The instance and all its descendants. DX002 'Instance <id> not found' for an unknown instance.
-- Result: {rootId, allIds} (root first). No locks.
CREATE OR REPLACE FUNCTION get_instance_tree(p_instance_id TEXT) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM instances WHERE instance_id = p_instance_id) THEN
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    RETURN json_build_object('rootId', p_instance_id, 'allIds', array_to_json(instance_tree_ids(p_instance_id)));
END;
$$;

-- --- Pruning -------------------------------------------------------------------------------------

-- Deletes old executions of one instance (history and execution rows): never the current one,
-- never a Running one; only those completed before p_completed_before_ms when given, and not among
-- the p_keep_last newest execution ids when given (NULL, 0 and 1 all keep just the current one).
-- KV data is instance-scoped and never touched. Locks the instances row first (serialises with
-- the ack of a turn and with deletion), then executions and history. NULL when the instance is
-- unknown. Result: {executionsDeleted, eventsDeleted}.
CREATE OR REPLACE FUNCTION prune_instance_executions(p_instance_id TEXT, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_current    BIGINT;
    v_candidates BIGINT[];
    v_executions INTEGER;
    v_events     INTEGER;
BEGIN
    SELECT i.current_execution_id INTO v_current FROM instances i WHERE i.instance_id = p_instance_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_candidates := ARRAY(
        SELECT e.execution_id FROM executions e
        WHERE e.instance_id = p_instance_id
          AND e.execution_id <> v_current
          AND e.status <> 'Running'
          AND (p_completed_before_ms IS NULL OR e.completed_at_ms < p_completed_before_ms)
          AND (COALESCE(p_keep_last, 0) <= 1 OR e.execution_id NOT IN (
                  SELECT k.execution_id FROM executions k WHERE k.instance_id = p_instance_id
                  ORDER BY k.execution_id DESC LIMIT p_keep_last)));
    DELETE FROM history WHERE instance_id = p_instance_id AND execution_id = ANY (v_candidates);
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM executions WHERE instance_id = p_instance_id AND execution_id = ANY (v_candidates);
    GET DIAGNOSTICS v_executions = ROW_COUNT;
    RETURN json_build_object('executionsDeleted', v_executions, 'eventsDeleted', v_events);
END;
$$;

-- Prunes one instance (see prune_instance_executions). DX002 'Instance <id> not found' for an
-- unknown instance; DX003 for a negative keep-last. Result: {instancesProcessed: 1,
-- executionsDeleted, eventsDeleted}.
CREATE OR REPLACE FUNCTION prune_executions(p_instance_id TEXT, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_result json;
BEGIN
    IF p_keep_last IS NOT NULL AND p_keep_last < 0 THEN
        RAISE EXCEPTION 'keepLast must not be negative, got %', p_keep_last USING ERRCODE = 'DX003';
    END IF;
    v_result := prune_instance_executions(p_instance_id, p_keep_last, p_completed_before_ms);
    IF v_result IS NULL THEN
        RAISE EXCEPTION 'Instance % not found', p_instance_id USING ERRCODE = 'DX002';
    END IF;
    RETURN json_build_object('instancesProcessed', 1,
                             'executionsDeleted', (v_result ->> 'executionsDeleted')::INTEGER,
                             'eventsDeleted', (v_result ->> 'eventsDeleted')::INTEGER);
END;
$$;

-- Prunes, in one atomic call, every instance (any status, sub-orchestrations included) matching
-- p_filter {instanceIds?, completedBefore?, limit?}; each keeps its current execution.
-- Locks: the matching instances rows one by one in creation order, then their executions and
-- history. Result: {instancesProcessed, executionsDeleted, eventsDeleted} summed.
CREATE OR REPLACE FUNCTION prune_executions_bulk(p_filter json, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
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
    FOREACH v_id IN ARRAY select_instances_by_filter(p_filter, NULL, FALSE) LOOP
        v_result := prune_instance_executions(v_id, p_keep_last, p_completed_before_ms);
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

-- --- Statistics ----------------------------------------------------------------------------------

-- Per-instance statistics, or NULL for an unknown instance. History figures cover the current
-- execution; queuePendingCount = events carried forward into it by continue-as-new (length of
-- carryForwardEvents of its OrchestrationStarted; 0 when absent or undecodable); KV figures are
-- the merged view clients read (store overridden by this execution's delta, tombstones hidden).
-- No locks. Result: {historyEventCount, historySizeBytes, queuePendingCount, kvUserKeyCount,
-- kvTotalValueBytes}.
CREATE OR REPLACE FUNCTION get_instance_stats(p_instance_id TEXT) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
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
