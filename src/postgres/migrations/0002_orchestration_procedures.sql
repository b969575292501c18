-- Orchestration-turn procedures: fetch, ack, abandon, renew, enqueue.
--
-- Conventions of every Durox procedure:
-- * One provider operation = one call = one implicit transaction, so each procedure is atomic.
-- * Each returns ONE value of type json (json_build_object / json_agg), or NULL for "nothing":
--   no RETURNS TABLE, so output names can never be ambiguous with table columns.
-- * json, not jsonb, wherever user payloads travel: payload columns are TEXT holding JSON text
--   from TypeScript, passed inside json arguments as JSON strings and cast back with ::json.
-- * Time comes only from current_time_ms() (database clock + test offset).
-- * Errors use our own SQLSTATEs so the client maps them without parsing text:
--   DX001 lock lost, DX002 not found, DX003 invalid argument, DX005 corrupted stored data.
-- * Lock order, to avoid deadlocks (as DurableTask.SqlServer documents its own):
--   advisory lock of the instance -> instance_locks row -> instances row -> executions ->
--   history -> kv tables -> worker_queue rows -> orchestrator_queue rows.
--   Inserts into other instances' queues take no row locks on existing rows.
-- * search_path is pinned with SET search_path FROM CURRENT (the schema the migration ran in).

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
-- Result: {instanceId, orchestrationName, orchestrationVersion, executionId, history,
-- historyError, messages, lockToken, attemptCount, kvSnapshot, customStatus, nowMs};
-- name/version/executionId are NULL for an instance that does not exist yet.
CREATE OR REPLACE FUNCTION fetch_orchestration_item(p_lock_timeout_ms BIGINT) RETURNS json
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
BEGIN
    IF p_lock_timeout_ms IS NULL OR p_lock_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'lock timeout must be a positive number of milliseconds, got %', p_lock_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;

    LOOP
        -- Phase 1: peek without row locks.
        SELECT q.instance_id INTO v_instance_id
        FROM orchestrator_queue q
        WHERE q.visible_at_ms <= v_now
          AND q.instance_id <> ALL (v_skipped)
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

-- Commits one orchestration turn atomically and releases the instance lock.
-- p_ack (built by TypeScript, payloads as JSON strings):
--   {instanceId, executionId, orchestrationName, orchestrationVersion, parentInstanceId,
--    status, output, failureDetails,
--    history: [{eventId, eventType, eventData}],
--    customStatusChanged, customStatus,
--    kv: {clearAll, entries: [{key, value|null, lastUpdatedAtMs}]}   (one entry per key),
--    workerItems: [{instanceId, executionId, activityId, tag, workItem}],
--    cancelledActivities: [{instance, executionId, activityId}],
--    orchestratorItems: [{targetInstance, kind, visibleAtMs|null, workItem}]}
-- Guarantees: refuses an unknown, released or expired lock (DX001) and then writes nothing; a
-- duplicate event id raises unique_violation and the whole turn rolls back with the lock still
-- held; worker items are inserted BEFORE cancelled activities are deleted, so an activity
-- scheduled and cancelled in one turn is gone; cancelled activities are deleted even while a
-- worker holds them (lock stealing); only the batch tagged by the fetch is consumed, messages
-- that arrived during the turn stay for the next one; terminal statuses (ContinuedAsNew
-- included) get completed_at_ms and merge kv_delta into kv_store.
-- Locks: the instance_locks row FOR UPDATE first (a concurrent takeover fetch waits or makes this
-- ack fail), then instances, executions, history, kv rows, worker_queue rows of this instance,
-- then the tagged orchestrator_queue rows.
CREATE OR REPLACE FUNCTION ack_orchestration_item(p_lock_token TEXT, p_ack json) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now            BIGINT := current_time_ms();
    v_instance_id    TEXT;
    v_execution_id   BIGINT := (p_ack->>'executionId')::BIGINT;
    v_status         TEXT := p_ack->>'status';
    v_status_changed BOOLEAN := COALESCE((p_ack->>'customStatusChanged')::BOOLEAN, FALSE);
BEGIN
    SELECT l.instance_id INTO v_instance_id
    FROM instance_locks l
    WHERE l.lock_token = p_lock_token AND l.locked_until_ms > v_now
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: unknown, expired or already released'
            USING ERRCODE = 'DX001';
    END IF;
    IF v_instance_id IS DISTINCT FROM p_ack->>'instanceId' THEN
        RAISE EXCEPTION 'lock token belongs to instance %, not to %', v_instance_id, p_ack->>'instanceId'
            USING ERRCODE = 'DX003';
    END IF;
    IF v_execution_id IS NULL OR v_execution_id <= 0 THEN
        RAISE EXCEPTION 'execution id must be positive, got %', v_execution_id USING ERRCODE = 'DX003';
    END IF;

    INSERT INTO instances (instance_id, orchestration_name, orchestration_version, current_execution_id,
                           parent_instance_id, custom_status, custom_status_version,
                           created_at_ms, updated_at_ms)
    VALUES (v_instance_id, p_ack->>'orchestrationName', p_ack->>'orchestrationVersion', v_execution_id,
            p_ack->>'parentInstanceId',
            CASE WHEN v_status_changed THEN p_ack->>'customStatus' END,
            CASE WHEN v_status_changed THEN 1 ELSE 0 END,
            v_now, v_now)
    ON CONFLICT (instance_id) DO UPDATE
        SET orchestration_name = EXCLUDED.orchestration_name,
            orchestration_version = COALESCE(EXCLUDED.orchestration_version, instances.orchestration_version),
            current_execution_id = GREATEST(instances.current_execution_id, EXCLUDED.current_execution_id),
            parent_instance_id = COALESCE(instances.parent_instance_id, EXCLUDED.parent_instance_id),
            custom_status = CASE WHEN v_status_changed THEN EXCLUDED.custom_status
                                 ELSE instances.custom_status END,
            custom_status_version = instances.custom_status_version
                                    + CASE WHEN v_status_changed THEN 1 ELSE 0 END,
            updated_at_ms = v_now;

    INSERT INTO executions (instance_id, execution_id, status, started_at_ms)
    VALUES (v_instance_id, v_execution_id, 'Running', v_now)
    ON CONFLICT (instance_id, execution_id) DO NOTHING;

    -- No ON CONFLICT: a duplicate event id must fail the whole turn.
    INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at_ms)
    SELECT v_instance_id, v_execution_id, (e->>'eventId')::BIGINT, e->>'eventType', e->>'eventData', v_now
    FROM json_array_elements(p_ack->'history') AS e;

    IF v_status IS NOT NULL THEN
        UPDATE executions
        SET status = v_status,
            output = p_ack->>'output',
            failure_details = p_ack->>'failureDetails',
            completed_at_ms = CASE WHEN v_status = 'Running' THEN NULL ELSE v_now END
        WHERE instance_id = v_instance_id AND execution_id = v_execution_id;
    END IF;

    -- Key-value mutations of this execution go to kv_delta (NULL value = tombstone).
    IF COALESCE((p_ack->'kv'->>'clearAll')::BOOLEAN, FALSE) THEN
        UPDATE kv_delta SET value = NULL, last_updated_at_ms = v_now WHERE instance_id = v_instance_id;
        INSERT INTO kv_delta (instance_id, key, value, last_updated_at_ms)
        SELECT s.instance_id, s.key, NULL, v_now FROM kv_store s WHERE s.instance_id = v_instance_id
        ON CONFLICT (instance_id, key) DO NOTHING;
    END IF;
    INSERT INTO kv_delta (instance_id, key, value, last_updated_at_ms)
    SELECT v_instance_id, e->>'key', e->>'value', COALESCE((e->>'lastUpdatedAtMs')::BIGINT, v_now)
    FROM json_array_elements(COALESCE(p_ack->'kv'->'entries', '[]'::json)) AS e
    ON CONFLICT (instance_id, key) DO UPDATE
        SET value = EXCLUDED.value, last_updated_at_ms = EXCLUDED.last_updated_at_ms;

    -- At the end of an execution the delta becomes the store seen by the next fetch snapshots.
    IF v_status IN ('Completed', 'Failed', 'ContinuedAsNew') THEN
        DELETE FROM kv_store s USING kv_delta d
        WHERE d.instance_id = v_instance_id AND d.value IS NULL
          AND s.instance_id = d.instance_id AND s.key = d.key;
        INSERT INTO kv_store (instance_id, key, value, last_updated_at_ms)
        SELECT d.instance_id, d.key, d.value, d.last_updated_at_ms
        FROM kv_delta d WHERE d.instance_id = v_instance_id AND d.value IS NOT NULL
        ON CONFLICT (instance_id, key) DO UPDATE
            SET value = EXCLUDED.value, last_updated_at_ms = EXCLUDED.last_updated_at_ms;
        DELETE FROM kv_delta WHERE instance_id = v_instance_id;
    END IF;

    -- Insert first, then cancel: schedule-and-cancel in one turn leaves nothing queued.
    INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag,
                              visible_at_ms, attempt_count, created_at_ms)
    SELECT w->>'workItem', w->>'instanceId', (w->>'executionId')::BIGINT, (w->>'activityId')::BIGINT,
           w->>'tag', v_now, 0, v_now
    FROM json_array_elements(COALESCE(p_ack->'workerItems', '[]'::json)) WITH ORDINALITY AS t(w, n)
    ORDER BY n;

    DELETE FROM worker_queue wq
    USING json_array_elements(COALESCE(p_ack->'cancelledActivities', '[]'::json)) AS c(item)
    WHERE wq.instance_id = c.item->>'instance'
      AND wq.execution_id = (c.item->>'executionId')::BIGINT
      AND wq.activity_id = (c.item->>'activityId')::BIGINT;

    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms)
    SELECT o->>'targetInstance', o->>'kind', o->>'workItem',
           COALESCE((o->>'visibleAtMs')::BIGINT, v_now), 0, v_now
    FROM json_array_elements(COALESCE(p_ack->'orchestratorItems', '[]'::json)) WITH ORDINALITY AS t(o, n)
    ORDER BY n;

    DELETE FROM orchestrator_queue WHERE lock_token = p_lock_token;
    DELETE FROM instance_locks WHERE lock_token = p_lock_token;

    RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now);
END;
$$;

-- Releases an instance lock without committing anything.
-- Guarantees: the batch becomes fetchable again; with p_delay_ms > 0 it becomes visible only after
-- the delay, without a delay visibility is left exactly as it was (never pushed later);
-- p_ignore_attempt gives back the delivery counted by the fetch, never below 0. A token that is
-- unknown or was taken over raises DX001.
-- Locks: the instance_locks row (DELETE), then the tagged orchestrator_queue rows.
CREATE OR REPLACE FUNCTION abandon_orchestration_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now         BIGINT := current_time_ms();
    v_instance_id TEXT;
BEGIN
    DELETE FROM instance_locks WHERE lock_token = p_lock_token RETURNING instance_id INTO v_instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: unknown or already released' USING ERRCODE = 'DX001';
    END IF;

    UPDATE orchestrator_queue
    SET lock_token = NULL,
        visible_at_ms = CASE WHEN COALESCE(p_delay_ms, 0) > 0 THEN v_now + p_delay_ms ELSE visible_at_ms END,
        attempt_count = CASE WHEN COALESCE(p_ignore_attempt, FALSE) THEN GREATEST(0, attempt_count - 1)
                             ELSE attempt_count END
    WHERE lock_token = p_lock_token;

    RETURN json_build_object('instanceId', v_instance_id);
END;
$$;

-- Extends a held, unexpired instance lock to now + p_extend_ms (milliseconds, no truncation).
-- Guarantees: an expired, released or taken-over lock is never revived (DX001).
-- Locks: the instance_locks row.
CREATE OR REPLACE FUNCTION renew_orchestration_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now          BIGINT := current_time_ms();
    v_instance_id  TEXT;
    v_locked_until BIGINT;
BEGIN
    IF p_extend_ms IS NULL OR p_extend_ms <= 0 THEN
        RAISE EXCEPTION 'lock extension must be a positive number of milliseconds, got %', p_extend_ms
            USING ERRCODE = 'DX003';
    END IF;
    UPDATE instance_locks
    SET locked_until_ms = v_now + p_extend_ms
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING instance_id, locked_until_ms INTO v_instance_id, v_locked_until;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: unknown, expired or already released' USING ERRCODE = 'DX001';
    END IF;
    RETURN json_build_object('instanceId', v_instance_id, 'lockedUntilMs', v_locked_until);
END;
$$;

-- Enqueues one message for an orchestration. Never creates the instance (only ack does).
-- Visibility: now + p_delay_ms; a TimerFired (p_fire_at_ms > 0) is visible at its fire time, or
-- at the later of fire time and now + delay when a delay is given.
-- Locks: none on existing rows (plain insert).
CREATE OR REPLACE FUNCTION enqueue_orchestrator_work(p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                     p_delay_ms BIGINT, p_fire_at_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     BIGINT := current_time_ms();
    v_visible BIGINT := v_now + GREATEST(COALESCE(p_delay_ms, 0), 0);
    v_id      BIGINT;
BEGIN
    IF p_fire_at_ms IS NOT NULL AND p_fire_at_ms > 0 THEN
        v_visible := CASE WHEN COALESCE(p_delay_ms, 0) > 0 THEN GREATEST(p_fire_at_ms, v_visible)
                          ELSE p_fire_at_ms END;
    END IF;
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms)
    VALUES (p_instance_id, p_kind, p_work_item, v_visible, 0, v_now)
    RETURNING id INTO v_id;
    RETURN json_build_object('id', v_id, 'visibleAtMs', v_visible);
END;
$$;
