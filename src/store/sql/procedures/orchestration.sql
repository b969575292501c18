-- @@ fetch_orchestration_items (from 0010_eager_dispatch.sql)
-- Locks up to p_max_items instances, each the oldest visible message's instance that is not
-- locked, and returns their batches (see internal_lock_orchestration_batch) as a json array, oldest
-- first, each under its own lock token; an empty array means no eligible work, never "lost a
-- race": a candidate that cannot be taken is skipped and the next one tried. The capability
-- filter and the start and orphan rules are those of 0008's fetch_orchestration_item.
-- Locks: per instance as internal_lock_orchestration_batch, one instance after the other, each only
-- TRIED (a busy instance is skipped), so batches never wait for each other.
CREATE OR REPLACE FUNCTION fetch_orchestration_items(p_lock_timeout_ms BIGINT, p_min_version TEXT,
                                                     p_max_version TEXT, p_max_items INTEGER)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now         BIGINT := internal_current_time_ms();
    v_skipped     TEXT[] := ARRAY[]::TEXT[];
    v_items       json[] := ARRAY[]::json[];
    v_instance_id TEXT;
    v_range       RECORD;
    v_item        json;
BEGIN
    IF p_lock_timeout_ms IS NULL OR p_lock_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'lock timeout must be a positive number of milliseconds, got %', p_lock_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;
    IF p_max_items IS NULL OR p_max_items < 1 OR p_max_items > 100 THEN
        RAISE EXCEPTION 'max items must be between 1 and 100, got %', p_max_items USING ERRCODE = 'DX003';
    END IF;
    SELECT * INTO v_range FROM internal_parse_version_range(p_min_version, p_max_version);

    WHILE COALESCE(array_length(v_items, 1), 0) < p_max_items LOOP
        -- Peek without row locks. The start rule's EXISTS tests are ORed, so PostgreSQL cannot
        -- turn them into joins and would hash each subquery over the WHOLE queue on every fetch
        -- (2.8 ms with 5,000 queued starts). OFFSET 0 keeps them per candidate row, on the
        -- (instance_id, kind) index (0.18 ms), and the oldest candidate is almost always eligible.
        SELECT q.instance_id INTO v_instance_id
        FROM orchestrator_queue q
        WHERE q.visible_at_ms <= v_now
          AND q.instance_id <> ALL (v_skipped)
          AND (v_range.out_min IS NULL OR internal_version_in_range(q.instance_id, v_range.out_min, v_range.out_max))
          AND NOT EXISTS (SELECT 1 FROM instance_locks l
                          WHERE l.instance_id = q.instance_id AND l.locked_until_ms > v_now)
          AND (EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id OFFSET 0)
               OR EXISTS (SELECT 1 FROM orchestrator_queue s
                          WHERE s.instance_id = q.instance_id AND s.visible_at_ms <= v_now
                            AND s.kind IN ('StartOrchestration', 'ContinueAsNew') OFFSET 0)
               OR NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                              WHERE o.instance_id = q.instance_id AND o.visible_at_ms <= v_now
                                AND o.kind <> 'QueueMessage' OFFSET 0))
        ORDER BY q.visible_at_ms, q.id
        LIMIT 1;
        EXIT WHEN NOT FOUND;

        v_item := internal_lock_orchestration_batch(v_instance_id, p_lock_timeout_ms, v_range.out_min, v_range.out_max, v_now);
        IF v_item IS NOT NULL THEN
            v_items := v_items || v_item;
        END IF;
        v_skipped := v_skipped || v_instance_id;
    END LOOP;
    RETURN array_to_json(v_items);
END;
$$;

-- @@ fetch_orchestration_item (from 0010_eager_dispatch.sql)
-- One batch (fetch_orchestration_items with p_max_items 1), or NULL: the contract of 0008.
CREATE OR REPLACE FUNCTION fetch_orchestration_item(p_lock_timeout_ms BIGINT, p_min_version TEXT DEFAULT NULL,
                                                    p_max_version TEXT DEFAULT NULL) RETURNS json
LANGUAGE sql
AS $$
    SELECT fetch_orchestration_items(p_lock_timeout_ms, p_min_version, p_max_version, 1) -> 0
$$;

-- @@ ack_orchestration_item (from 0010_eager_dispatch.sql)
-- Commits a turn exactly as 0002's ack_orchestration_item (now internal_commit_orchestration_turn) did,
-- after taking the advisory locks of the instance (exclusive) and of every instance it sends a
-- message to (shared). With p_claim = {workerItems, lockTimeoutMs}, the activities in
-- p_claim.workerItems (same shape as p_ack.workerItems, which must not repeat them; none pinned
-- to a session) are queued already locked for the caller, each under its own token, unless the
-- same turn cancels them; they are never announced.
-- Result: {instanceId, nowMs, claimedWorkItems: [lease as fetch_work_item returns it]}.
-- Locks: advisory locks in key order, then as internal_commit_orchestration_turn; the claimed rows are
-- new rows.
CREATE OR REPLACE FUNCTION ack_orchestration_item(p_lock_token TEXT, p_ack json, p_claim json DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now         BIGINT := internal_current_time_ms();
    v_instance_id TEXT;
    v_lock_ms     BIGINT := (p_claim->>'lockTimeoutMs')::BIGINT;
    v_name        TEXT;
    v_version     TEXT;
    v_leases      json;
BEGIN
    IF p_claim IS NOT NULL THEN
        IF v_lock_ms IS NULL OR v_lock_ms <= 0 THEN
            RAISE EXCEPTION 'claim lock timeout must be a positive number of milliseconds, got %', v_lock_ms
                USING ERRCODE = 'DX003';
        END IF;
        IF EXISTS (SELECT 1 FROM json_array_elements(COALESCE(p_claim->'workerItems', '[]'::json)) AS w
                   WHERE (w->>'workItem')::json->>'sessionId' IS NOT NULL) THEN
            RAISE EXCEPTION 'activities pinned to a session cannot be claimed by an ack' USING ERRCODE = 'DX003';
        END IF;
    END IF;

    -- The token's instance, read without a lock: internal_commit_orchestration_turn checks it under one.
    SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
    IF FOUND THEN
        PERFORM internal_lock_instances_in_key_order(
            ARRAY[v_instance_id],
            ARRAY(SELECT o->>'targetInstance'
                  FROM json_array_elements(COALESCE(p_ack->'orchestratorItems', '[]'::json)) AS o));
    END IF;

    PERFORM internal_commit_orchestration_turn(p_lock_token, p_ack);
    IF p_claim IS NULL THEN
        RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now, 'claimedWorkItems', '[]'::json);
    END IF;

    SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
    FROM instances i WHERE i.instance_id = v_instance_id;

    WITH claimed AS (
        INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag, visible_at_ms,
                                  attempt_count, created_at_ms, lock_token, locked_until_ms)
        SELECT w->>'workItem', w->>'instanceId', (w->>'executionId')::BIGINT, (w->>'activityId')::BIGINT,
               w->>'tag', v_now, 1, v_now, gen_random_uuid()::TEXT, v_now + v_lock_ms
        FROM json_array_elements(p_claim->'workerItems') WITH ORDINALITY AS t(w, n)
        WHERE NOT EXISTS (
            SELECT 1 FROM json_array_elements(COALESCE(p_ack->'cancelledActivities', '[]'::json)) AS c(item)
            WHERE c.item->>'instance' = w->>'instanceId'
              AND (c.item->>'executionId')::BIGINT = (w->>'executionId')::BIGINT
              AND (c.item->>'activityId')::BIGINT = (w->>'activityId')::BIGINT)
        ORDER BY n
        RETURNING id, work_item, lock_token, attempt_count, session_id)
    SELECT json_agg(json_build_object(
               'workItem', c.work_item::json,
               'lockToken', c.lock_token,
               'attemptCount', c.attempt_count,
               'orchestrationName', COALESCE(v_name, 'unknown'),
               'orchestrationVersion', COALESCE(v_version, 'unknown'),
               'sessionId', c.session_id,
               'nowMs', v_now) ORDER BY c.id)
    INTO v_leases
    FROM claimed c;

    RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now,
                             'claimedWorkItems', COALESCE(v_leases, '[]'::json));
END;
$$;

-- @@ ack_orchestration_items (from 0010_eager_dispatch.sql)
-- Commits several turns in one call (group commit): each element of p_acks, {lockToken, ack,
-- claim}, is committed exactly as ack_orchestration_item commits it, in its own subtransaction,
-- so one turn refused (lock lost, invalid, duplicate event) leaves the others committed.
-- Result: json array in input order of {ok: true, claimedWorkItems} or {ok: false, code, message}.
-- Locks: first the advisory locks of every element in ascending key order (exclusive: the
-- instances whose locks are released; shared: the instances they send messages to), then element
-- by element as ack_orchestration_item (whose own advisory locks are then already held).
CREATE OR REPLACE FUNCTION ack_orchestration_items(p_acks json) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_element json;
    v_result  json;
    v_results json[] := ARRAY[]::json[];
BEGIN
    IF p_acks IS NULL OR json_typeof(p_acks) <> 'array' OR json_array_length(p_acks) > 100 THEN
        RAISE EXCEPTION 'acks must be a json array of at most 100 elements' USING ERRCODE = 'DX003';
    END IF;

    PERFORM internal_lock_instances_in_key_order(
        ARRAY(SELECT l.instance_id FROM json_array_elements(p_acks) AS e
              JOIN instance_locks l ON l.lock_token = e->>'lockToken'),
        ARRAY(SELECT o->>'targetInstance' FROM json_array_elements(p_acks) AS e,
                     json_array_elements(COALESCE(e->'ack'->'orchestratorItems', '[]'::json)) AS o));

    FOR v_element IN SELECT e FROM json_array_elements(p_acks) AS e LOOP
        BEGIN
            v_result := ack_orchestration_item(v_element->>'lockToken', v_element->'ack',
                                               CASE WHEN json_typeof(v_element->'claim') = 'object' THEN v_element->'claim' END);
            v_results := v_results || json_build_object('ok', TRUE, 'claimedWorkItems', v_result->'claimedWorkItems');
        EXCEPTION WHEN OTHERS THEN
            v_results := v_results || json_build_object('ok', FALSE, 'code', SQLSTATE, 'message', SQLERRM);
        END;
    END LOOP;
    RETURN array_to_json(v_results);
END;
$$;

-- @@ abandon_orchestration_item (from 0010_eager_dispatch.sql)
-- abandon_orchestration_item of 0002 (now internal_release_orchestration_item), under the instance's
-- exclusive advisory lock, since releasing the lock may make waiting messages fetchable.
CREATE OR REPLACE FUNCTION abandon_orchestration_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_instance_id TEXT;
BEGIN
    SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
    IF FOUND THEN
        PERFORM pg_advisory_xact_lock(internal_instance_advisory_key(v_instance_id));
    END IF;
    RETURN internal_release_orchestration_item(p_lock_token, p_delay_ms, p_ignore_attempt);
END;
$$;

-- @@ renew_orchestration_item_lock (from 0002_orchestration_procedures.sql)
-- Extends a held, unexpired instance lock to now + p_extend_ms (milliseconds, no truncation).
-- Guarantees: an expired, released or taken-over lock is never revived (DX001).
-- Locks: the instance_locks row.
CREATE OR REPLACE FUNCTION renew_orchestration_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now          BIGINT := internal_current_time_ms();
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

-- @@ enqueue_orchestrator_work (from 0010_eager_dispatch.sql)
-- enqueue_orchestrator_work of 0002 (now internal_insert_orchestrator_message), under the target
-- instance's shared advisory lock (see 2. above).
CREATE OR REPLACE FUNCTION enqueue_orchestrator_work(p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                     p_delay_ms BIGINT, p_fire_at_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(internal_instance_advisory_key(p_instance_id));
    RETURN internal_insert_orchestrator_message(p_instance_id, p_kind, p_work_item, p_delay_ms, p_fire_at_ms);
END;
$$;

