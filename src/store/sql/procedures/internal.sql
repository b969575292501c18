-- Internal helpers: every function here is named internal_*, runs with its caller's rights
-- (always a public procedure, as the schema owner) and is NOT executable by the application
-- role (see admin.sql). Calling one directly would skip the advisory-lock order of the procedure
-- that wraps it. Conventions: docs/sql.md.

-- The database clock: transaction time in epoch ms plus the test offset. Every procedure reads
-- time here, never from the application, so workers with skewed clocks agree.
-- PL/pgSQL, not SQL: a SQL function that reads a table is not inlined, and PostgreSQL 15 plans its
-- query on every call (0.16 ms, ten calls per orchestration); PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION internal_current_time_ms() RETURNS BIGINT
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT (floor(extract(epoch FROM transaction_timestamp()) * 1000))::BIGINT + c.offset_ms FROM test_clock c);
END;
$$;

-- The database clock read NOW (clock_timestamp, not the transaction's start) plus the test
-- offset, in epoch ms. Only fetch scans use it, read in the scanning statement itself (an
-- InitPlan, evaluated once after the statement's snapshot, still an index condition): a message
-- committed after the fetch's transaction started but before its scan's snapshot carries a later
-- transaction time, and filtering it with the transaction clock would leave it (already
-- announced) for the safety fetch. Everything that writes rows keeps
-- internal_current_time_ms(), read once per procedure call and passed to the helpers it calls:
-- one time for all rows of a transaction, so an announcement that compares visible_at_ms with it
-- counts exactly the rows the call inserted as ready.
CREATE OR REPLACE FUNCTION internal_wall_clock_ms() RETURNS BIGINT
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN (SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000))::BIGINT + c.offset_ms FROM test_clock c);
END;
$$;

-- The advisory lock key of an instance, taken by every procedure that writes the instance's
-- queue or turn. Keys are 32-bit hashes: two instances may share one, which only serialises them.
CREATE OR REPLACE FUNCTION internal_instance_advisory_key(p_instance_id TEXT) RETURNS BIGINT
LANGUAGE sql STABLE
AS $$
    SELECT hashtext(current_schema() || ':' || p_instance_id)::BIGINT
$$;

-- The token of what an ack claims for its own caller: the turn an activity's ack claims is
-- locked under internal_ack_token(activity token), the activities a turn's ack claims under
-- internal_ack_token(turn token) || ':' || n. Derived, not random, so that a repeat of an ack
-- whose reply was lost recognises what the first attempt claimed; hashed, so that a chain of
-- claims (activity -> turn -> activity ...) does not lengthen the token by each step's prefix.
CREATE OR REPLACE FUNCTION internal_ack_token(p_lock_token TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE
AS $$
    SELECT 'ack:' || md5(p_lock_token)
$$;

-- Takes the transaction advisory locks of p_exclusive (exclusive) and p_shared (shared) in
-- ascending key order, waiting for each; a key in both lists is taken exclusively once.
CREATE OR REPLACE FUNCTION internal_lock_instances_in_key_order(p_exclusive TEXT[], p_shared TEXT[]) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_lock RECORD;
BEGIN
    FOR v_lock IN
        SELECT k.key, bool_or(k.exclusive) AS exclusive
        FROM (SELECT internal_instance_advisory_key(x) AS key, TRUE AS exclusive FROM unnest(p_exclusive) AS x
              UNION ALL
              SELECT internal_instance_advisory_key(x), FALSE FROM unnest(p_shared) AS x) k
        GROUP BY k.key
        ORDER BY k.key
    LOOP
        IF v_lock.exclusive THEN
            PERFORM pg_advisory_xact_lock(v_lock.key);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(v_lock.key);
        END IF;
    END LOOP;
END;
$$;

-- The group calls of fused work (ack_work_items_with_turns, start_orchestrations_with_turns): the
-- advisory locks of p_instance_ids in ascending key order, each TRIED exclusively (what an element
-- commits alone needs its instance to itself) and else taken shared and waited for (it then falls
-- back as it would alone). Returns the keys held exclusively.
CREATE OR REPLACE FUNCTION internal_try_instance_locks_in_key_order(p_instance_ids TEXT[]) RETURNS BIGINT[]
LANGUAGE plpgsql
AS $$
DECLARE
    v_key       BIGINT;
    v_exclusive BIGINT[] := ARRAY[]::BIGINT[];
BEGIN
    FOR v_key IN
        SELECT DISTINCT internal_instance_advisory_key(x) FROM unnest(p_instance_ids) AS x WHERE x IS NOT NULL ORDER BY 1
    LOOP
        IF pg_try_advisory_xact_lock(v_key) THEN
            v_exclusive := v_exclusive || v_key;
        ELSE
            PERFORM pg_advisory_xact_lock_shared(v_key);
        END IF;
    END LOOP;
    RETURN v_exclusive;
END;
$$;

-- The priority level a work item's JSON text carries ("priority", written by TypeScript for
-- starts and activities above the default level), or NULL when it carries none. The text is
-- parsed only when it holds '"priority"': payloads are JSON strings inside the item, where a
-- quote is always escaped, so that text appears only as a key (or a plain string value) of the
-- item itself. Levels are 0..9 (migration 0103); anything else is refused with DX003 before the
-- caller writes.
CREATE OR REPLACE FUNCTION internal_item_priority(p_work_item TEXT) RETURNS SMALLINT
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_text TEXT;
BEGIN
    IF p_work_item IS NULL OR strpos(p_work_item, '"priority"') = 0 THEN
        RETURN NULL;
    END IF;
    v_text := p_work_item::json->>'priority';
    IF v_text IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_text !~ '^[0-9]$' THEN
        RAISE EXCEPTION 'priority must be an integer from 0 to 9, got %', v_text USING ERRCODE = 'DX003';
    END IF;
    RETURN v_text::SMALLINT;
END;
$$;

-- The priority level of a JSON element an ack carries (the ack itself, a workerItems or an
-- orchestratorItems element: "priority", present only above the default level), or NULL. The
-- provider checks the range before the call (a table CHECK backs it up). Inlined by the planner
-- (one SQL expression).
DROP FUNCTION IF EXISTS internal_json_priority(json);
CREATE OR REPLACE FUNCTION internal_json_priority(p_element jsonb) RETURNS SMALLINT
LANGUAGE sql IMMUTABLE
AS $$
    SELECT (p_element->>'priority')::SMALLINT
$$;

-- Parses the version range of a fetch or claim: both bounds or neither, each 'major.minor.patch'
-- (pre-release/build suffixes ignored), into INTEGER[3] bounds; DX003 otherwise. Called once per
-- procedure call; the bounds are then compared with the pinned version columns inline (a NULL
-- range skips the check).
CREATE OR REPLACE FUNCTION internal_parse_version_range(p_min_version TEXT, p_max_version TEXT,
                                               OUT out_min INTEGER[], OUT out_max INTEGER[])
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF (p_min_version IS NULL) <> (p_max_version IS NULL) THEN
        RAISE EXCEPTION 'a version range needs both a minimum and a maximum' USING ERRCODE = 'DX003';
    END IF;
    IF p_min_version IS NULL THEN
        RETURN;
    END IF;
    -- A match test and a split, not regexp_match: that costs 15-30 us a call, these about 3 us.
    IF p_min_version !~ '^\d{1,9}\.\d{1,9}\.\d{1,9}(?:[-+].*)?$' THEN
        RAISE EXCEPTION 'minimum version must be a semantic version major.minor.patch, got %', quote_nullable(p_min_version)
            USING ERRCODE = 'DX003';
    END IF;
    IF p_max_version !~ '^\d{1,9}\.\d{1,9}\.\d{1,9}(?:[-+].*)?$' THEN
        RAISE EXCEPTION 'maximum version must be a semantic version major.minor.patch, got %', quote_nullable(p_max_version)
            USING ERRCODE = 'DX003';
    END IF;
    out_min := string_to_array(split_part(split_part(p_min_version, '+', 1), '-', 1), '.')::INTEGER[];
    out_max := string_to_array(split_part(split_part(p_max_version, '+', 1), '-', 1), '.')::INTEGER[];
END;
$$;

-- Whether a turn's history delta starts an execution, and the Durox version that pins it: the
-- duroxVersion of its OrchestrationStarted event (the first of every execution) as INTEGER[3]
-- (major, minor, patch). out_pin is NULL when the delta has no such event, or when its data is not
-- JSON or carries no semantic version (the execution then stays unpinned instead of the ack
-- failing). The turn commit writes the pin with the executions row it inserts, so the pinned
-- version never changes for the life of the execution; a continue-as-new execution gets its own
-- from its own OrchestrationStarted. Called as an expression (no statement): an AFTER trigger on
-- history did this before, at the cost of a trigger call and a second executions row version
-- per execution.
CREATE OR REPLACE FUNCTION internal_started_version(p_history jsonb, OUT out_started BOOLEAN, OUT out_pin INTEGER[])
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_data TEXT := jsonb_path_query_first(p_history, '$[*] ? (@.eventType == "OrchestrationStarted").eventData')
                   #>> '{}';
BEGIN
    out_started := v_data IS NOT NULL;
    IF out_started THEN
        BEGIN
            out_pin := regexp_match(v_data::json ->> 'duroxVersion', '^(\d{1,9})\.(\d{1,9})\.(\d{1,9})')::INTEGER[];
        EXCEPTION WHEN invalid_text_representation THEN
            out_pin := NULL;
        END;
    END IF;
END;
$$;

-- One activity lease as every procedure that hands out work items returns it (fetch_work_item,
-- and the activities an ack claims): {workItem, lockToken, attemptCount, orchestrationName,
-- orchestrationVersion ('unknown' for a deleted instance), sessionId, sessionTakenOver, waitedMs,
-- nowMs}. A claimed activity waited 0 ms and took over no session. STABLE like its body
-- (json_build_object): labelled IMMUTABLE, the planner would not inline it and would plan it anew
-- on every call.
CREATE OR REPLACE FUNCTION internal_work_item_lease(p_work_item TEXT, p_lock_token TEXT, p_attempt_count INTEGER,
                                                    p_session_id TEXT, p_name TEXT, p_version TEXT,
                                                    p_session_taken_over BOOLEAN, p_waited_ms BIGINT, p_now BIGINT)
RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'workItem', p_work_item::json,
        'lockToken', p_lock_token,
        'attemptCount', p_attempt_count,
        'orchestrationName', COALESCE(p_name, 'unknown'),
        'orchestrationVersion', COALESCE(p_version, 'unknown'),
        'sessionId', p_session_id,
        'sessionTakenOver', p_session_taken_over,
        'waitedMs', p_waited_ms,
        'nowMs', p_now)
$$;

-- The state a turn replays on: the history of execution p_execution_id of p_instance_id (none
-- when NULL: the instance does not exist yet) and the instance's KV snapshot (kv_store only:
-- this execution's own writes are rebuilt by replay). A history that is not valid JSON is
-- reported in out_history_error with an empty out_history. Locks: none (the caller holds the
-- instance's lock).
CREATE OR REPLACE FUNCTION internal_read_batch_state(p_instance_id TEXT, p_execution_id BIGINT,
                                                     OUT out_history json, OUT out_history_error TEXT, OUT out_kv json)
LANGUAGE plpgsql
AS $$
BEGIN
    out_history := '[]'::json;
    IF p_execution_id IS NOT NULL THEN
        BEGIN
            SELECT COALESCE(json_agg(h.event_data::json ORDER BY h.event_id), '[]'::json)
            INTO out_history
            FROM history h
            WHERE h.instance_id = p_instance_id AND h.execution_id = p_execution_id;
        EXCEPTION WHEN invalid_text_representation THEN
            out_history := '[]'::json;
            out_history_error := 'stored history of execution ' || p_execution_id
                || ' is not valid JSON: ' || SQLERRM;
        END;
    END IF;
    SELECT COALESCE(json_object_agg(k.key, json_build_object(
               'value', k.value, 'lastUpdatedAtMs', k.last_updated_at_ms)), '{}'::json)
    INTO out_kv
    FROM kv_store k WHERE k.instance_id = p_instance_id;
END;
$$;

-- Completes a batch that internal_lock_orchestration_batch returned without its state
-- (p_with_state FALSE) with the history and KV snapshot, as a full claim returns them.
-- Locks: none (the caller holds the batch's lock).
CREATE OR REPLACE FUNCTION internal_add_batch_state(p_batch json) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_state RECORD;
BEGIN
    SELECT * INTO v_state
    FROM internal_read_batch_state(p_batch->>'instanceId',
                                   CASE WHEN p_batch->>'orchestrationName' IS NOT NULL
                                        THEN (p_batch->>'executionId')::BIGINT END);
    RETURN (p_batch::jsonb || jsonb_build_object('history', v_state.out_history,
                                                 'historyError', v_state.out_history_error,
                                                 'kvSnapshot', v_state.out_kv))::json;
END;
$$;

-- Locks the visible batch of p_instance_id for a turn and returns it as fetch_orchestration_item
-- does, or NULL when the instance cannot be taken now: its advisory lock (p_advisory_key, the
-- instance's internal_instance_advisory_key computed once by the caller) is busy (never waited
-- for), its instance lock is held, its pinned version is outside [p_min, p_max] (INTEGER[3]
-- each, inclusive; NULL bounds admit every version), it does not exist and its batch holds no
-- start (QueueMessages alone for a never-created instance are deleted: the orphan rule), or a
-- concurrent ack emptied the batch. An instance refused for its version is announced again (see
-- below).
-- The lock token is new, or p_lock_token when the caller derives it (a claim by an ack, so that
-- a repeat of that ack can find what it claimed). With p_with_state FALSE the batch leaves out
-- the history and KV snapshot (history and kvSnapshot NULL): a fused ack that commits the turn it
-- already ran needs neither, and reading them is most of a claim's cost on a long history; it
-- reads them with internal_add_batch_state only when it falls back to handing the turn out.
-- Announcements: taking over an instance whose lock ran out announces one more instance ('o'):
-- the caller may have been woken for another one, which it then no longer looks for.
-- Locks: pg_try_advisory_xact_lock(instance), the instance_locks row FOR UPDATE, the instance's
-- visible queue rows (tagged with the new token), then the instance_locks row is written.
DROP FUNCTION IF EXISTS internal_lock_orchestration_batch(TEXT, BIGINT, INTEGER[], INTEGER[], BIGINT);
DROP FUNCTION IF EXISTS internal_lock_orchestration_batch(TEXT, BIGINT, BIGINT, INTEGER[], INTEGER[], BIGINT);
CREATE OR REPLACE FUNCTION internal_lock_orchestration_batch(p_instance_id TEXT, p_advisory_key BIGINT, p_lock_timeout_ms BIGINT,
                                                    p_min INTEGER[], p_max INTEGER[], p_now BIGINT,
                                                    p_lock_token TEXT DEFAULT NULL, p_with_state BOOLEAN DEFAULT TRUE)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_locked_until  BIGINT;
    v_exists        BOOLEAN;
    v_name          TEXT;
    v_version       TEXT;
    v_execution_id  BIGINT;
    v_custom_status TEXT;
    v_lock_token    TEXT;
    v_messages      json;
    v_attempt_count INTEGER;
    v_visible_since BIGINT;
    v_history       json := '[]'::json;
    v_history_error TEXT;
    v_kv            json;
    v_out_of_range  BOOLEAN;
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_advisory_key) THEN
        RETURN NULL;
    END IF;

    SELECT l.locked_until_ms INTO v_locked_until
    FROM instance_locks l WHERE l.instance_id = p_instance_id
    FOR UPDATE;
    IF FOUND AND v_locked_until > p_now THEN
        RETURN NULL;
    END IF;
    IF FOUND THEN
        -- A lock that ran out is taken over, and nothing announced that: the caller may have been
        -- woken for another instance, which it then no longer looks for (one announcement wakes
        -- one fetch). Announce one more (delivered at commit); at worst a fetch finds nothing.
        PERFORM internal_announce_queue('o', 1, NULL, p_now);
    END IF;

    SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id, i.custom_status,
           ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) < ROW(p_min[1], p_min[2], p_min[3])
           OR ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) > ROW(p_max[1], p_max[2], p_max[3])
    INTO v_name, v_version, v_execution_id, v_custom_status, v_out_of_range
    FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = p_instance_id;
    v_exists := FOUND;
    -- Unpinned (NULL comparison) or no range given (NULL bounds): in range. Out of range, the
    -- instance is announced again: a runtime that can run it may have skipped it as busy while
    -- this transaction held its advisory lock (pinned after the caller's peek), and the
    -- notification is delivered at commit, once the lock is released.
    IF COALESCE(v_out_of_range, FALSE) THEN
        PERFORM internal_announce_queue('o', 1, NULL, p_now);
        RETURN NULL;
    END IF;

    -- Nested, not ANDed: a condition on v_exists inside the statement would let a custom plan
    -- fold it away, and PostgreSQL would then re-plan the statement on every call (docs/sql.md).
    IF NOT v_exists THEN
        IF NOT EXISTS (
            SELECT 1 FROM orchestrator_queue s
            WHERE s.instance_id = p_instance_id AND s.visible_at_ms <= p_now
              AND s.kind IN ('StartOrchestration', 'ContinueAsNew')) THEN
            IF NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                           WHERE o.instance_id = p_instance_id AND o.visible_at_ms <= p_now
                             AND o.kind <> 'QueueMessage') THEN
                DELETE FROM orchestrator_queue
                WHERE instance_id = p_instance_id AND visible_at_ms <= p_now AND kind = 'QueueMessage';
            END IF;
            RETURN NULL;
        END IF;
    END IF;

    -- Tag every visible message, including those of an expired previous holder (and a message
    -- its caller inserted pre-tagged). The caller's peek ran without locks, so the previous
    -- holder may have acknowledged the whole batch since: then there is nothing to hand out.
    v_lock_token := COALESCE(p_lock_token, gen_random_uuid()::TEXT);
    UPDATE orchestrator_queue
    SET lock_token = v_lock_token, attempt_count = attempt_count + 1
    WHERE instance_id = p_instance_id AND visible_at_ms <= p_now;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO instance_locks (instance_id, lock_token, locked_until_ms, locked_at_ms)
    VALUES (p_instance_id, v_lock_token, p_now + p_lock_timeout_ms, p_now)
    ON CONFLICT (instance_id) DO UPDATE
        SET lock_token = EXCLUDED.lock_token,
            locked_until_ms = EXCLUDED.locked_until_ms,
            locked_at_ms = EXCLUDED.locked_at_ms;

    SELECT json_agg(q.work_item::json ORDER BY q.id), max(q.attempt_count), min(q.visible_at_ms)
    INTO v_messages, v_attempt_count, v_visible_since
    FROM orchestrator_queue q WHERE q.lock_token = v_lock_token;

    IF p_with_state THEN
        SELECT s.out_history, s.out_history_error, s.out_kv INTO v_history, v_history_error, v_kv
        FROM internal_read_batch_state(p_instance_id, CASE WHEN v_exists THEN v_execution_id END) s;
    ELSE
        v_history := NULL;
    END IF;

    RETURN json_build_object(
        'instanceId', p_instance_id,
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
        'waitedMs', GREATEST(p_now - v_visible_since, 0),
        'nowMs', p_now);
END;
$$;

-- Commits one orchestration turn atomically at the caller's clock p_now (one clock read per
-- procedure call) and releases the instance lock; announces the queue rows it inserts, the
-- instance's messages still waiting, and a terminal status or custom status change ('s:').
-- p_ack (built by TypeScript, payloads as JSON strings):
--   {instanceId, executionId, orchestrationName, orchestrationVersion, parentInstanceId, priority,
--    status, output, failureDetails,
--    history: [{eventId, eventType, eventData}],
--    customStatusChanged, customStatus,
--    kv: {clearAll, entries: [{key, value|null, lastUpdatedAtMs}]}   (one entry per key),
--    workerItems: [{instanceId, executionId, activityId, tag, workItem, priority?}],
--    cancelledActivities: [{instance, executionId, activityId}],
--    orchestratorItems: [{targetInstance, kind, visibleAtMs|null, workItem, priority?}]}
-- priority: the instance's level (0..9, migration 0103; absent keeps the stored one); an item's
-- own level when it has one (activities, starts), else its target instance's.
-- Guarantees: refuses an unknown, released or expired lock (DX001) and then writes nothing; a
-- duplicate event id raises unique_violation and the whole turn rolls back with the lock still
-- held; worker items are inserted BEFORE cancelled activities are deleted, so an activity
-- scheduled and cancelled in one turn is gone; cancelled activities are deleted even while a
-- worker holds them (lock stealing); only the batch tagged by the fetch is consumed, messages
-- that arrived during the turn stay for the next one; terminal statuses (ContinuedAsNew
-- included) get completed_at_ms and merge kv_delta into kv_store; a turn that appends the
-- execution's OrchestrationStarted pins the execution to its duroxVersion
-- (internal_started_version).
-- Flow control (flow.sql): activities of a limited key take a permit or are parked; cancelled
-- ones give their permits on; starts it sends with a flowKey take a permit or are parked, and
-- its cancellations of parked instances queue their starts; a turn that ends the instance
-- (Completed or Failed, not ContinuedAsNew) gives on the permit the instance was started with.
-- Locks: the instance_locks row FOR UPDATE first (a concurrent takeover fetch waits or makes this
-- ack fail), then instances, executions, history, kv rows, the flow_limits rows of the keys the
-- turn touches (ascending; usually already held by ack_orchestration_item), worker_queue rows of
-- this instance, flow_parked rows, the instance's permit row and the parked rows of its key, then
-- the tagged orchestrator_queue rows.
-- Direct commit (p_direct, ack_work_item_with_turn): the turn of an instance that holds no lock
-- and has no message waiting, run on the completion the same call acknowledges, which is never
-- queued. The caller holds the instance's advisory lock exclusively since it checked that (so no
-- message can arrive meanwhile: every enqueue takes it shared) and that the execution exists,
-- or is started by this turn (start_orchestration_with_turn, whose turn appends the
-- OrchestrationStarted): no instance_locks row is read or written, no queue row is consumed, no
-- executions row inserted unless the turn starts the execution, and there is nothing that
-- arrived during the turn to announce.
-- p_flow: whether flow limits exist, as the caller read it once for its whole call (a limit
-- created after that read is one created after this call, as for any turn committed before it).
-- Returns: {instanceId, nowMs, orchestrationName, orchestrationVersion} (the instance's name and
-- version as stored after the commit, which a claim's leases carry).
DROP FUNCTION IF EXISTS internal_commit_orchestration_turn(TEXT, json);
DROP FUNCTION IF EXISTS internal_commit_orchestration_turn(TEXT, json, BIGINT);
DROP FUNCTION IF EXISTS internal_commit_orchestration_turn(TEXT, jsonb, BIGINT);
DROP FUNCTION IF EXISTS internal_commit_orchestration_turn(TEXT, jsonb, BIGINT, BOOLEAN);
CREATE OR REPLACE FUNCTION internal_commit_orchestration_turn(p_lock_token TEXT, p_ack jsonb, p_now BIGINT,
                                                              p_direct BOOLEAN, p_flow BOOLEAN) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now            BIGINT := p_now;
    v_instance_id    TEXT;
    v_worker_items   jsonb := p_ack->'workerItems';
    v_orch_items     jsonb := p_ack->'orchestratorItems';
    v_ready          BIGINT;
    v_earliest       BIGINT;
    v_execution_id   BIGINT := (p_ack->>'executionId')::BIGINT;
    v_status         TEXT := p_ack->>'status';
    v_name           TEXT;
    v_version        TEXT;
    v_status_changed BOOLEAN := COALESCE((p_ack->>'customStatusChanged')::BOOLEAN, FALSE);
    v_released       TEXT[];
    v_permit         TEXT;
    v_flow_item      RECORD;
    v_parked_starts  BIGINT[] := ARRAY[]::BIGINT[];
    -- The instance's priority level: the ack's (the turn reads it from OrchestrationStarted),
    -- then the stored one after the upsert below.
    v_priority       SMALLINT := internal_json_priority(p_ack);
    -- Whether the turn starts its execution, and the version that pins it.
    v_start          RECORD := internal_started_version(p_ack->'history');
    v_instance_written BOOLEAN := FALSE;
BEGIN
    IF p_direct THEN
        v_instance_id := p_ack->>'instanceId';
    ELSE
        SELECT l.instance_id INTO v_instance_id
        FROM instance_locks l
        WHERE l.lock_token = p_lock_token AND l.locked_until_ms > v_now
        FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Invalid lock token: unknown, expired or already released'
                USING ERRCODE = 'DX001';
        END IF;
    END IF;
    IF v_instance_id IS DISTINCT FROM p_ack->>'instanceId' THEN
        RAISE EXCEPTION 'lock token belongs to instance %, not to %', v_instance_id, p_ack->>'instanceId'
            USING ERRCODE = 'DX003';
    END IF;
    IF v_execution_id IS NULL OR v_execution_id <= 0 THEN
        RAISE EXCEPTION 'execution id must be positive, got %', v_execution_id USING ERRCODE = 'DX003';
    END IF;

    -- The instance row: a direct commit of a running execution updates the row its caller read
    -- under the advisory lock (a plain UPDATE: no speculative insertion); any other turn may
    -- create it. Both set the same values.
    IF p_direct AND NOT v_start.out_started THEN
        UPDATE instances AS i
        SET priority = COALESCE(v_priority, i.priority),
            orchestration_name = p_ack->>'orchestrationName',
            orchestration_version = COALESCE(p_ack->>'orchestrationVersion', i.orchestration_version),
            current_execution_id = GREATEST(i.current_execution_id, v_execution_id),
            parent_instance_id = COALESCE(i.parent_instance_id, p_ack->>'parentInstanceId'),
            custom_status = CASE WHEN v_status_changed THEN p_ack->>'customStatus' ELSE i.custom_status END,
            custom_status_version = i.custom_status_version + CASE WHEN v_status_changed THEN 1 ELSE 0 END,
            updated_at_ms = v_now
        WHERE i.instance_id = v_instance_id
        RETURNING i.priority, i.orchestration_name, i.orchestration_version INTO v_priority, v_name, v_version;
        v_instance_written := FOUND;
    END IF;
    IF NOT v_instance_written THEN
        INSERT INTO instances AS i (instance_id, orchestration_name, orchestration_version, current_execution_id,
                                    parent_instance_id, custom_status, custom_status_version,
                                    created_at_ms, updated_at_ms, priority)
        VALUES (v_instance_id, p_ack->>'orchestrationName', p_ack->>'orchestrationVersion', v_execution_id,
                p_ack->>'parentInstanceId',
                CASE WHEN v_status_changed THEN p_ack->>'customStatus' END,
                CASE WHEN v_status_changed THEN 1 ELSE 0 END,
                v_now, v_now, COALESCE(v_priority, 0))
        ON CONFLICT (instance_id) DO UPDATE
            SET priority = COALESCE(v_priority, i.priority),
                orchestration_name = EXCLUDED.orchestration_name,
                orchestration_version = COALESCE(EXCLUDED.orchestration_version, i.orchestration_version),
                current_execution_id = GREATEST(i.current_execution_id, EXCLUDED.current_execution_id),
                parent_instance_id = COALESCE(i.parent_instance_id, EXCLUDED.parent_instance_id),
                custom_status = CASE WHEN v_status_changed THEN EXCLUDED.custom_status
                                     ELSE i.custom_status END,
                custom_status_version = i.custom_status_version
                                        + CASE WHEN v_status_changed THEN 1 ELSE 0 END,
                updated_at_ms = v_now
        RETURNING i.priority, i.orchestration_name, i.orchestration_version INTO v_priority, v_name, v_version;
    END IF;

    -- A direct commit's execution exists, unless its turn starts it (a fused start).
    IF NOT p_direct OR v_start.out_started THEN
        INSERT INTO executions (instance_id, execution_id, status, started_at_ms,
                                pinned_major, pinned_minor, pinned_patch)
        VALUES (v_instance_id, v_execution_id, 'Running', v_now, v_start.out_pin[1], v_start.out_pin[2], v_start.out_pin[3])
        ON CONFLICT (instance_id, execution_id) DO NOTHING;
        IF NOT FOUND AND v_start.out_pin IS NOT NULL THEN
            -- An OrchestrationStarted appended to an execution that has a row pins it all the same.
            UPDATE executions
            SET pinned_major = v_start.out_pin[1], pinned_minor = v_start.out_pin[2], pinned_patch = v_start.out_pin[3]
            WHERE instance_id = v_instance_id AND execution_id = v_execution_id;
        END IF;
    END IF;

    -- No ON CONFLICT: a duplicate event id must fail the whole turn.
    INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at_ms)
    SELECT v_instance_id, v_execution_id, (e->>'eventId')::BIGINT, e->>'eventType', e->>'eventData', v_now
    FROM jsonb_array_elements(p_ack->'history') AS e;

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
    IF jsonb_typeof(p_ack->'kv'->'entries') = 'array' AND jsonb_array_length(p_ack->'kv'->'entries') > 0 THEN
        INSERT INTO kv_delta (instance_id, key, value, last_updated_at_ms)
        SELECT v_instance_id, e->>'key', e->>'value', COALESCE((e->>'lastUpdatedAtMs')::BIGINT, v_now)
        FROM jsonb_array_elements(p_ack->'kv'->'entries') AS e
        ON CONFLICT (instance_id, key) DO UPDATE
            SET value = EXCLUDED.value, last_updated_at_ms = EXCLUDED.last_updated_at_ms;
    END IF;

    -- At the end of an execution the delta becomes the store seen by the next fetch snapshots.
    -- Nested IFs: the outer test is a plain expression (no statement on most turns), the inner
    -- one probe where three statements would find nothing (most executions write no key).
    IF v_status IN ('Completed', 'Failed', 'ContinuedAsNew') THEN
        IF EXISTS (SELECT 1 FROM kv_delta d WHERE d.instance_id = v_instance_id) THEN
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
    END IF;

    -- Insert first, then cancel: schedule-and-cancel in one turn leaves nothing queued. Each
    -- queue insert announces its rows itself (notifications.sql); an empty list runs no statement.
    -- With flow limits (flow.sql) the keys this turn takes or releases permits of are locked
    -- first, in key order; ack_orchestration_item has usually locked them already.
    IF p_flow THEN
        PERFORM internal_flow_lock_keys(internal_flow_turn_keys(p_ack, NULL));
    END IF;
    IF jsonb_typeof(v_worker_items) = 'array' AND jsonb_array_length(v_worker_items) > 0 THEN
        IF p_flow THEN
            PERFORM internal_flow_enqueue(v_worker_items, v_now);
        ELSE
            INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag,
                                      visible_at_ms, attempt_count, created_at_ms, priority)
            SELECT w->>'workItem', w->>'instanceId', (w->>'executionId')::BIGINT, (w->>'activityId')::BIGINT,
                   w->>'tag', v_now, 0, v_now, COALESCE(internal_json_priority(w), 0)
            FROM jsonb_array_elements(v_worker_items) WITH ORDINALITY AS t(w, n)
            ORDER BY n;
            GET DIAGNOSTICS v_ready = ROW_COUNT;
            PERFORM internal_announce_queue('w', v_ready, NULL, v_now);
        END IF;
    END IF;

    IF jsonb_typeof(p_ack->'cancelledActivities') = 'array' AND jsonb_array_length(p_ack->'cancelledActivities') > 0 THEN
        -- A cancelled activity gives back its permit (also while a worker holds it: the worker's
        -- renew and ack then fail); a parked one just leaves the line.
        WITH cancelled AS (
            DELETE FROM worker_queue wq
            USING jsonb_array_elements(p_ack->'cancelledActivities') AS c(item)
            WHERE wq.instance_id = c.item->>'instance'
              AND wq.execution_id = (c.item->>'executionId')::BIGINT
              AND wq.activity_id = (c.item->>'activityId')::BIGINT
            RETURNING wq.flow_key)
        SELECT array_agg(d.flow_key) FILTER (WHERE d.flow_key IS NOT NULL) INTO v_released FROM cancelled d;
        DELETE FROM flow_parked fp
        USING jsonb_array_elements(p_ack->'cancelledActivities') AS c(item)
        WHERE fp.instance_id = c.item->>'instance'
          AND fp.execution_id = (c.item->>'executionId')::BIGINT
          AND fp.activity_id = (c.item->>'activityId')::BIGINT;
        IF v_released IS NOT NULL THEN
            PERFORM internal_flow_release(v_released, v_now);
        END IF;
    END IF;

    IF jsonb_typeof(v_orch_items) = 'array' AND jsonb_array_length(v_orch_items) > 0 THEN
        -- With flow limits (flow.sql), in the order of the items: a start carrying a flowKey (a
        -- child's or a detached one) takes a permit or is parked instead of queued, and a
        -- cancellation of a parked instance queues its start first. Their keys are locked above.
        IF p_flow THEN
            FOR v_flow_item IN
                SELECT t.o, t.n FROM jsonb_array_elements(v_orch_items) WITH ORDINALITY AS t(o, n)
                WHERE (t.o->>'kind' = 'StartOrchestration' AND strpos(t.o->>'workItem', '"flowKey"') > 0)
                   OR t.o->>'kind' = 'CancelInstance'
                ORDER BY t.n
            LOOP
                IF v_flow_item.o->>'kind' = 'CancelInstance' THEN
                    PERFORM internal_flow_unpark_cancelled(v_flow_item.o->>'targetInstance', v_now);
                ELSIF internal_flow_start_key(v_flow_item.o->>'workItem') IS NOT NULL
                      AND internal_flow_start(v_flow_item.o->>'targetInstance', internal_flow_start_key(v_flow_item.o->>'workItem'),
                                              v_flow_item.o->>'workItem', v_now) = 'parked' THEN
                    v_parked_starts := v_parked_starts || v_flow_item.n;
                END IF;
            END LOOP;
        END IF;
        WITH inserted AS (
            INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms,
                                            priority)
            SELECT o->>'targetInstance', o->>'kind', o->>'workItem',
                   COALESCE((o->>'visibleAtMs')::BIGINT, v_now), 0, v_now,
                   -- A start carries its level; a message to this instance takes the instance's,
                   -- one to another instance that instance's (0 when it does not exist yet).
                   COALESCE(internal_json_priority(o),
                            CASE WHEN o->>'targetInstance' = v_instance_id THEN v_priority END,
                            (SELECT i.priority FROM instances i WHERE i.instance_id = o->>'targetInstance'), 0)
            FROM jsonb_array_elements(v_orch_items) WITH ORDINALITY AS t(o, n)
            WHERE NOT (n = ANY (v_parked_starts))
            ORDER BY n
            RETURNING instance_id, visible_at_ms)
        SELECT count(DISTINCT r.instance_id) FILTER (WHERE r.visible_at_ms <= v_now),
               min(r.visible_at_ms) FILTER (WHERE r.visible_at_ms > v_now)
        INTO v_ready, v_earliest
        FROM inserted r;
        PERFORM internal_announce_queue('o', v_ready, v_earliest, v_now);
    END IF;

    -- Read even without limits (a permit outlives the deletion of its key's limit); one probe of
    -- flow_instance_permits, inlined: the end of every instance runs it.
    IF v_status IN ('Completed', 'Failed') THEN
        DELETE FROM flow_instance_permits WHERE instance_id = v_instance_id RETURNING flow_key INTO v_permit;
        IF FOUND THEN
            PERFORM internal_flow_pump(v_permit, 1, v_now);
        END IF;
    END IF;

    IF NOT p_direct THEN
        DELETE FROM orchestrator_queue WHERE lock_token = p_lock_token;
        DELETE FROM instance_locks WHERE lock_token = p_lock_token;
        PERFORM internal_announce_released_instance(v_instance_id, v_now);
    END IF;
    IF v_status_changed OR v_status IN ('Completed', 'Failed') THEN
        PERFORM internal_announce_status(v_instance_id);
    END IF;

    RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now,
                             'orchestrationName', v_name, 'orchestrationVersion', v_version);
END;
$$;

-- Deletes a locked work item and, when p_work_item is given, enqueues its completion for
-- p_instance_id (announced unless a turn holds the instance), atomically, at the caller's clock
-- p_now; stamps the activity of the item's session (if still owned). The caller holds the
-- instance's advisory lock (shared or exclusive).
-- Guarantees: refuses (DX001) a token that is unknown, already acknowledged, withdrawn by a
-- cancellation, taken over after expiry, or whose lease has expired even if nobody took it. An
-- expired session does not block the ack of an item whose own lease is valid.
-- Flow control: an item that holds a permit gives it to the best parked activity of its key, or
-- back (flow.sql).
-- Priority: the completion's turn runs at the activity's level (the instance's, unless the
-- activity was given its own with withPriority), read from the deleted row at no extra cost.
-- Locks: the worker_queue row (DELETE), the item's flow_limits row (when it holds a permit) and
-- the key's parked rows, then the sessions row; the completion is a plain insert.
DROP FUNCTION IF EXISTS internal_finish_work_item(TEXT, TEXT, TEXT, TEXT);
CREATE OR REPLACE FUNCTION internal_finish_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                     p_now BIGINT)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now      BIGINT := p_now;
    v_instance TEXT;
    v_session  TEXT;
    v_flow_key TEXT;
    v_priority SMALLINT;
    v_message_id   BIGINT;
    v_locked_until BIGINT;
BEGIN
    -- The item's own row first, then its key's row (flow.sql explains why this order is safe
    -- here); an item without a permit costs nothing more.
    DELETE FROM worker_queue
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING instance_id, session_id, flow_key, priority INTO v_instance, v_session, v_flow_key, v_priority;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown, expired, cancelled or already acknowledged'
            USING ERRCODE = 'DX001';
    END IF;
    IF v_flow_key IS NOT NULL THEN
        PERFORM internal_flow_pump(v_flow_key, 1, v_now);
    END IF;
    IF p_work_item IS NOT NULL THEN
        INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms,
                                        priority)
        VALUES (p_instance_id, p_kind, p_work_item, v_now, 0, v_now, v_priority)
        RETURNING id INTO v_message_id;
        -- Announced only when this message is the instance's news (in a fan-out, one wake-up per
        -- instance instead of one empty fetch per completion). Sound because the caller holds the
        -- instance's advisory lock (shared): whoever takes the instance takes it after this commit
        -- and sees this message.
        -- - A turn holds the instance: its release announces the instance's waiting messages.
        -- - Another message already waits, visible and unlocked: it was announced (or is found by
        --   its due-time wake-up), and the fetch that answers it takes this one too. A fetch that
        --   tries the instance while this call holds the advisory lock announces the instance
        --   again (fetch_orchestration_items), so its empty answer spends no wake-up for good.
        -- - A turn's lock ran out (its holder died): announced, so another runtime takes over now
        --   rather than at its safety fetch.
        SELECT l.locked_until_ms INTO v_locked_until FROM instance_locks l WHERE l.instance_id = p_instance_id;
        IF v_locked_until IS NULL THEN
            IF NOT EXISTS (SELECT 1 FROM orchestrator_queue q
                           WHERE q.instance_id = p_instance_id AND q.id <> v_message_id
                             AND q.lock_token IS NULL AND q.visible_at_ms <= v_now) THEN
                PERFORM internal_announce_queue('o', 1, NULL, v_now);
            END IF;
        ELSIF v_locked_until <= v_now THEN
            PERFORM internal_announce_queue('o', 1, NULL, v_now);
        END IF;
    END IF;
    IF v_session IS NOT NULL THEN
        UPDATE sessions SET last_activity_at_ms = v_now
        WHERE session_id = v_session AND locked_until_ms > v_now;
    END IF;
    RETURN json_build_object('instanceId', v_instance, 'priority', v_priority);
END;
$$;

-- The instance and all its descendants through parent links (no lock), children whose start is
-- parked behind a flow limit included (flow_parked_starts.parent_instance_id, migration 0106).
-- Result: TEXT[], root first.
CREATE OR REPLACE FUNCTION internal_instance_tree_ids(p_instance_id TEXT) RETURNS TEXT[]
LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE tree(instance_id, depth) AS (
        SELECT p_instance_id, 0
        UNION
        SELECT c.instance_id, t.depth + 1
        FROM instances c JOIN tree t ON c.parent_instance_id = t.instance_id
        WHERE t.depth < 10000
    )
    SELECT array_agg(m.instance_id ORDER BY m.depth, m.instance_id)
    FROM (SELECT t.instance_id, t.depth FROM tree t
          UNION ALL
          -- Children whose start is parked behind a flow limit: no instances row yet, no children.
          SELECT s.instance_id, t.depth + 1
          FROM flow_parked_starts s JOIN tree t ON s.parent_instance_id = t.instance_id
          WHERE NOT EXISTS (SELECT 1 FROM tree o WHERE o.instance_id = s.instance_id)) m
$$;

-- Root instances selected by a filter json {instanceIds?, completedBefore?, limit?} whose current
-- execution has one of p_statuses (NULL = any status), oldest first. instanceIds present but empty
-- selects nothing; limit defaults to 1000.
CREATE OR REPLACE FUNCTION internal_select_instances_by_filter(p_filter json, p_statuses TEXT[], p_roots_only BOOLEAN)
RETURNS TEXT[]
LANGUAGE plpgsql STABLE
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

-- Deletes old executions of one instance (history and execution rows): never the current one,
-- never a Running one; only those completed before p_completed_before_ms when given, and not among
-- the p_keep_last newest execution ids when given (NULL, 0 and 1 all keep just the current one).
-- KV data is instance-scoped and never touched. Locks the instances row first (serialises with
-- the ack of a turn and with deletion), then executions and history. NULL when the instance is
-- unknown. Result: {executionsDeleted, eventsDeleted}.
CREATE OR REPLACE FUNCTION internal_prune_instance_executions(p_instance_id TEXT, p_keep_last INTEGER, p_completed_before_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
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
