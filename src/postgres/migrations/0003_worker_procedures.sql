-- Activity work-item procedures. Conventions (json results, DX error codes, pinned search_path,
-- database clock) are described at the top of 0002_orchestration_procedures.sql.
-- Lock order: a worker_queue row is the only row these procedures lock, except ack_work_item,
-- which then inserts into orchestrator_queue (a plain insert, no lock on existing rows).

-- Enqueues an activity, visible at once and unlocked.
CREATE OR REPLACE FUNCTION enqueue_worker_work(p_instance_id TEXT, p_execution_id BIGINT, p_activity_id BIGINT,
                                               p_tag TEXT, p_work_item TEXT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now BIGINT := current_time_ms();
    v_id  BIGINT;
BEGIN
    INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag,
                              visible_at_ms, attempt_count, created_at_ms)
    VALUES (p_work_item, p_instance_id, p_execution_id, p_activity_id, p_tag, v_now, 0, v_now)
    RETURNING id INTO v_id;
    RETURN json_build_object('id', v_id);
END;
$$;

-- Locks the oldest visible work item that is unlocked (or whose lease expired) and matches the
-- tag filter: defaultOnly = untagged, any = everything, none = nothing, tags = tag in p_tags,
-- defaultAnd = untagged or tag in p_tags.
-- Guarantees: FOR UPDATE SKIP LOCKED, so concurrent workers never get the same row and never
-- wait for each other; each delivery increments attempt_count; a re-delivery after an expired
-- lease gets a new token, so the old holder's ack and renew fail.
-- Also returns the scheduling orchestration's name and version ('unknown' when the instance row
-- is absent) so the worker needs no further read.
-- Result: {workItem, lockToken, attemptCount, orchestrationName, orchestrationVersion, nowMs} or NULL.
CREATE OR REPLACE FUNCTION fetch_work_item(p_lock_timeout_ms BIGINT, p_tag_mode TEXT, p_tags json) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now       BIGINT := current_time_ms();
    v_tags      TEXT[];
    v_id        BIGINT;
    v_row       worker_queue%ROWTYPE;
    v_name      TEXT;
    v_version   TEXT;
BEGIN
    IF p_lock_timeout_ms IS NULL OR p_lock_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'lock timeout must be a positive number of milliseconds, got %', p_lock_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;
    IF p_tag_mode IS NULL OR p_tag_mode NOT IN ('defaultOnly', 'any', 'none', 'tags', 'defaultAnd') THEN
        RAISE EXCEPTION 'unknown tag filter mode %', p_tag_mode USING ERRCODE = 'DX003';
    END IF;
    IF p_tag_mode = 'none' THEN
        RETURN NULL;
    END IF;
    v_tags := ARRAY(SELECT json_array_elements_text(COALESCE(p_tags, '[]'::json)));

    SELECT w.id INTO v_id
    FROM worker_queue w
    WHERE w.visible_at_ms <= v_now
      AND (w.lock_token IS NULL OR w.locked_until_ms <= v_now)
      AND CASE p_tag_mode
              WHEN 'defaultOnly' THEN w.tag IS NULL
              WHEN 'any' THEN TRUE
              WHEN 'tags' THEN w.tag = ANY (v_tags)
              ELSE w.tag IS NULL OR w.tag = ANY (v_tags)
          END
    ORDER BY w.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    UPDATE worker_queue
    SET lock_token = gen_random_uuid()::TEXT,
        locked_until_ms = v_now + p_lock_timeout_ms,
        attempt_count = attempt_count + 1
    WHERE id = v_id
    RETURNING * INTO v_row;

    SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
    FROM instances i WHERE i.instance_id = v_row.instance_id;

    RETURN json_build_object(
        'workItem', v_row.work_item::json,
        'lockToken', v_row.lock_token,
        'attemptCount', v_row.attempt_count,
        'orchestrationName', COALESCE(v_name, 'unknown'),
        'orchestrationVersion', COALESCE(v_version, 'unknown'),
        'nowMs', v_now);
END;
$$;

-- Deletes a locked work item and, when p_work_item is given, enqueues its completion for
-- p_instance_id, atomically.
-- Guarantees: refuses (DX001) a token that is unknown, already acknowledged, withdrawn by a
-- cancellation, taken over after expiry, or whose lease has expired even if nobody took it.
CREATE OR REPLACE FUNCTION ack_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      BIGINT := current_time_ms();
    v_instance TEXT;
BEGIN
    DELETE FROM worker_queue
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING instance_id INTO v_instance;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown, expired, cancelled or already acknowledged'
            USING ERRCODE = 'DX001';
    END IF;
    IF p_work_item IS NOT NULL THEN
        INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms)
        VALUES (p_instance_id, p_kind, p_work_item, v_now, 0, v_now);
    END IF;
    RETURN json_build_object('instanceId', v_instance);
END;
$$;

-- Extends an unexpired work-item lease to now + p_extend_ms. Failure (DX001) is how a worker
-- learns that its activity was cancelled (row deleted) or its lease lost.
CREATE OR REPLACE FUNCTION renew_work_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now          BIGINT := current_time_ms();
    v_locked_until BIGINT;
BEGIN
    IF p_extend_ms IS NULL OR p_extend_ms <= 0 THEN
        RAISE EXCEPTION 'lock extension must be a positive number of milliseconds, got %', p_extend_ms
            USING ERRCODE = 'DX003';
    END IF;
    UPDATE worker_queue
    SET locked_until_ms = v_now + p_extend_ms
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING locked_until_ms INTO v_locked_until;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown, expired, cancelled or already acknowledged'
            USING ERRCODE = 'DX001';
    END IF;
    RETURN json_build_object('lockedUntilMs', v_locked_until);
END;
$$;

-- Unlocks a work item; it becomes visible at now + p_delay_ms (now without a delay).
-- p_ignore_attempt gives back the delivery counted by the fetch, never below 0.
CREATE OR REPLACE FUNCTION abandon_work_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now BIGINT := current_time_ms();
    v_id  BIGINT;
BEGIN
    UPDATE worker_queue
    SET lock_token = NULL,
        locked_until_ms = NULL,
        visible_at_ms = v_now + GREATEST(COALESCE(p_delay_ms, 0), 0),
        attempt_count = CASE WHEN COALESCE(p_ignore_attempt, FALSE) THEN GREATEST(0, attempt_count - 1)
                             ELSE attempt_count END
    WHERE lock_token = p_lock_token
    RETURNING id INTO v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown or already acknowledged' USING ERRCODE = 'DX001';
    END IF;
    RETURN json_build_object('id', v_id);
END;
$$;
