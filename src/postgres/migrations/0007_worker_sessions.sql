-- Worker sessions (runtime-and-api.md section 1.8) and the batch fetch of activity work items.
-- Conventions (json results, DX error codes, pinned search_path, database clock) are described at
-- the top of 0002_orchestration_procedures.sql. These procedures replace the worker-queue
-- procedures of 0003 with session-aware bodies.
-- Lock order of every worker-queue procedure: worker_queue rows first (ascending id), then the
-- sessions row(s). cleanup_orphaned_sessions locks only sessions rows and reads worker_queue
-- without locks, so no cycle is possible.

-- The session an activity is pinned to, read from the stored ActivityExecute JSON. A generated
-- column keeps every writer of worker_queue (enqueue, orchestration ack) unchanged.
ALTER TABLE worker_queue
    ADD COLUMN IF NOT EXISTS session_id TEXT GENERATED ALWAYS AS ((work_item::json) ->> 'sessionId') STORED;
CREATE INDEX IF NOT EXISTS worker_queue_session_idx ON worker_queue (session_id) WHERE session_id IS NOT NULL;

-- One row per pinned session: which worker identity owns it and until when. An expired row is
-- claimable by any worker; an unexpired one only by its owner.
CREATE TABLE IF NOT EXISTS sessions (
    session_id          TEXT PRIMARY KEY,
    worker_id           TEXT NOT NULL,
    locked_until_ms     BIGINT NOT NULL,
    last_activity_at_ms BIGINT NOT NULL,
    created_at_ms       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_worker_idx ON sessions (worker_id);

DROP FUNCTION IF EXISTS fetch_work_item(BIGINT, TEXT, json);

-- Locks up to p_max_items (default 1) of the oldest visible work items that are unlocked (or whose
-- lease expired) and match the tag filter and the session rule, each under its own lock token.
-- Tag filter: defaultOnly = untagged, any = everything, none = nothing, tags = tag in p_tags,
-- defaultAnd = untagged or tag in p_tags.
-- Session rule: without p_owner_id only items without a session are eligible. With an owner, an
-- item is eligible when it has no session, or its session is owned by p_owner_id, or its session
-- is unowned or expired (only when p_claim_new_sessions is not FALSE: a runtime at its session
-- capacity still serves the sessions it owns); fetching a session item claims (or refreshes) the session for the owner
-- until now + p_session_lock_timeout_ms (p_lock_timeout_ms when NULL) and stamps its activity.
-- Guarantees: FOR UPDATE SKIP LOCKED, so concurrent workers never get the same row and never wait
-- for each other; a session is never owned by two identities at once (the claim is an upsert
-- that only overwrites an expired or self-owned row); a lost session claim (another owner won
-- the race) gives the row back untouched and the loop tries the next candidate instead of
-- returning nothing (postgres-provider.md 6.3); each delivery increments attempt_count; a
-- re-delivery after an expired lease gets a new token, so the old holder's ack and renew fail.
-- Result: json array (possibly empty) of {workItem, lockToken, attemptCount, orchestrationName,
-- orchestrationVersion, sessionId, nowMs}, oldest first.
CREATE OR REPLACE FUNCTION fetch_work_item(p_lock_timeout_ms BIGINT, p_tag_mode TEXT, p_tags json,
                                           p_owner_id TEXT, p_session_lock_timeout_ms BIGINT,
                                           p_max_items INTEGER, p_claim_new_sessions BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now        BIGINT := current_time_ms();
    v_max        INTEGER := COALESCE(p_max_items, 1);
    v_session_ms BIGINT := COALESCE(p_session_lock_timeout_ms, p_lock_timeout_ms);
    v_tags       TEXT[];
    v_skipped    BIGINT[] := ARRAY[]::BIGINT[];
    v_leases     json[] := ARRAY[]::json[];
    v_id         BIGINT;
    v_session    TEXT;
    v_claimed    INTEGER;
    v_row        worker_queue%ROWTYPE;
    v_name       TEXT;
    v_version    TEXT;
BEGIN
    IF p_lock_timeout_ms IS NULL OR p_lock_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'lock timeout must be a positive number of milliseconds, got %', p_lock_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;
    IF v_session_ms <= 0 THEN
        RAISE EXCEPTION 'session lock timeout must be a positive number of milliseconds, got %', v_session_ms
            USING ERRCODE = 'DX003';
    END IF;
    IF v_max < 1 OR v_max > 1000 THEN
        RAISE EXCEPTION 'max items must be between 1 and 1000, got %', v_max USING ERRCODE = 'DX003';
    END IF;
    IF p_owner_id IS NOT NULL AND (length(p_owner_id) = 0 OR octet_length(p_owner_id) > 512) THEN
        RAISE EXCEPTION 'session owner id must be 1 to 512 bytes, got % bytes', octet_length(p_owner_id)
            USING ERRCODE = 'DX003';
    END IF;
    IF p_tag_mode IS NULL OR p_tag_mode NOT IN ('defaultOnly', 'any', 'none', 'tags', 'defaultAnd') THEN
        RAISE EXCEPTION 'unknown tag filter mode %', p_tag_mode USING ERRCODE = 'DX003';
    END IF;
    IF p_tag_mode = 'none' THEN
        RETURN '[]'::json;
    END IF;
    v_tags := ARRAY(SELECT json_array_elements_text(COALESCE(p_tags, '[]'::json)));

    WHILE COALESCE(array_length(v_leases, 1), 0) < v_max LOOP
        SELECT w.id, w.session_id INTO v_id, v_session
        FROM worker_queue w
        LEFT JOIN sessions s ON s.session_id = w.session_id AND s.locked_until_ms > v_now
        WHERE w.visible_at_ms <= v_now
          AND (w.lock_token IS NULL OR w.locked_until_ms <= v_now)
          AND w.id <> ALL (v_skipped)
          AND CASE p_tag_mode
                  WHEN 'defaultOnly' THEN w.tag IS NULL
                  WHEN 'any' THEN TRUE
                  WHEN 'tags' THEN w.tag = ANY (v_tags)
                  ELSE w.tag IS NULL OR w.tag = ANY (v_tags)
              END
          AND (w.session_id IS NULL
               OR (p_owner_id IS NOT NULL
                   AND ((s.session_id IS NULL AND COALESCE(p_claim_new_sessions, TRUE)) OR s.worker_id = p_owner_id)))
        ORDER BY w.id
        LIMIT 1
        FOR UPDATE OF w SKIP LOCKED;
        EXIT WHEN NOT FOUND;

        IF v_session IS NOT NULL THEN
            -- Claim or refresh the session; only an expired or self-owned row is overwritten.
            INSERT INTO sessions (session_id, worker_id, locked_until_ms, last_activity_at_ms, created_at_ms)
            VALUES (v_session, p_owner_id, v_now + v_session_ms, v_now, v_now)
            ON CONFLICT (session_id) DO UPDATE
                SET worker_id = EXCLUDED.worker_id,
                    locked_until_ms = EXCLUDED.locked_until_ms,
                    last_activity_at_ms = EXCLUDED.last_activity_at_ms
                WHERE sessions.locked_until_ms <= v_now OR sessions.worker_id = EXCLUDED.worker_id;
            GET DIAGNOSTICS v_claimed = ROW_COUNT;
            IF v_claimed = 0 THEN
                -- Another owner won the session: leave this row alone and try the next candidate.
                v_skipped := v_skipped || v_id;
                CONTINUE;
            END IF;
        END IF;

        UPDATE worker_queue
        SET lock_token = gen_random_uuid()::TEXT,
            locked_until_ms = v_now + p_lock_timeout_ms,
            attempt_count = attempt_count + 1
        WHERE id = v_id
        RETURNING * INTO v_row;
        v_skipped := v_skipped || v_id;

        SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
        FROM instances i WHERE i.instance_id = v_row.instance_id;

        v_leases := v_leases || json_build_object(
            'workItem', v_row.work_item::json,
            'lockToken', v_row.lock_token,
            'attemptCount', v_row.attempt_count,
            'orchestrationName', COALESCE(v_name, 'unknown'),
            'orchestrationVersion', COALESCE(v_version, 'unknown'),
            'sessionId', v_row.session_id,
            'nowMs', v_now);
    END LOOP;

    RETURN array_to_json(v_leases);
END;
$$;

-- Deletes a locked work item and, when p_work_item is given, enqueues its completion for
-- p_instance_id, atomically; stamps the activity of the item's session (if still owned).
-- Guarantees: refuses (DX001) a token that is unknown, already acknowledged, withdrawn by a
-- cancellation, taken over after expiry, or whose lease has expired even if nobody took it. An
-- expired session does not block the ack of an item whose own lease is valid.
-- Locks: the worker_queue row (DELETE), then the sessions row; the completion is a plain insert.
CREATE OR REPLACE FUNCTION ack_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      BIGINT := current_time_ms();
    v_instance TEXT;
    v_session  TEXT;
BEGIN
    DELETE FROM worker_queue
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING instance_id, session_id INTO v_instance, v_session;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown, expired, cancelled or already acknowledged'
            USING ERRCODE = 'DX001';
    END IF;
    IF p_work_item IS NOT NULL THEN
        INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms)
        VALUES (p_instance_id, p_kind, p_work_item, v_now, 0, v_now);
    END IF;
    IF v_session IS NOT NULL THEN
        UPDATE sessions SET last_activity_at_ms = v_now
        WHERE session_id = v_session AND locked_until_ms > v_now;
    END IF;
    RETURN json_build_object('instanceId', v_instance);
END;
$$;

-- Extends an unexpired work-item lease to now + p_extend_ms and stamps the activity of the item's
-- session. Failure (DX001) is how a worker learns that its activity was cancelled (row deleted)
-- or its lease lost.
-- Locks: the worker_queue row, then the sessions row.
CREATE OR REPLACE FUNCTION renew_work_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now          BIGINT := current_time_ms();
    v_locked_until BIGINT;
    v_session      TEXT;
BEGIN
    IF p_extend_ms IS NULL OR p_extend_ms <= 0 THEN
        RAISE EXCEPTION 'lock extension must be a positive number of milliseconds, got %', p_extend_ms
            USING ERRCODE = 'DX003';
    END IF;
    UPDATE worker_queue
    SET locked_until_ms = v_now + p_extend_ms
    WHERE lock_token = p_lock_token AND locked_until_ms > v_now
    RETURNING locked_until_ms, session_id INTO v_locked_until, v_session;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown, expired, cancelled or already acknowledged'
            USING ERRCODE = 'DX001';
    END IF;
    IF v_session IS NOT NULL THEN
        UPDATE sessions SET last_activity_at_ms = v_now
        WHERE session_id = v_session AND locked_until_ms > v_now;
    END IF;
    RETURN json_build_object('lockedUntilMs', v_locked_until);
END;
$$;

-- Extends to now + p_extend_ms every session owned by one of p_owner_ids (json array of text)
-- that is still locked and not idle (activity within p_idle_timeout_ms). Idle and expired
-- sessions are deliberately left to lapse, so an idle session unpins and is never revived here.
-- Locks: the matching sessions rows. Result: {renewed}.
CREATE OR REPLACE FUNCTION renew_session_locks(p_owner_ids json, p_extend_ms BIGINT, p_idle_timeout_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     BIGINT := current_time_ms();
    v_renewed INTEGER;
BEGIN
    IF p_extend_ms IS NULL OR p_extend_ms <= 0 THEN
        RAISE EXCEPTION 'session lock extension must be a positive number of milliseconds, got %', p_extend_ms
            USING ERRCODE = 'DX003';
    END IF;
    IF p_idle_timeout_ms IS NULL OR p_idle_timeout_ms <= 0 THEN
        RAISE EXCEPTION 'session idle timeout must be a positive number of milliseconds, got %', p_idle_timeout_ms
            USING ERRCODE = 'DX003';
    END IF;
    UPDATE sessions
    SET locked_until_ms = v_now + p_extend_ms
    WHERE worker_id IN (SELECT json_array_elements_text(COALESCE(p_owner_ids, '[]'::json)))
      AND locked_until_ms > v_now
      AND last_activity_at_ms > v_now - p_idle_timeout_ms;
    GET DIAGNOSTICS v_renewed = ROW_COUNT;
    RETURN json_build_object('renewed', v_renewed);
END;
$$;

-- Deletes expired sessions that no work item references any more (queued, locked or delayed).
-- A session with pending items is kept, so its items stay pinned until it is claimed again.
-- Locks: the deleted sessions rows; worker_queue is only read. Result: {removed}.
CREATE OR REPLACE FUNCTION cleanup_orphaned_sessions() RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     BIGINT := current_time_ms();
    v_removed INTEGER;
BEGIN
    DELETE FROM sessions s
    WHERE s.locked_until_ms <= v_now
      AND NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.session_id = s.session_id);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN json_build_object('removed', v_removed);
END;
$$;
