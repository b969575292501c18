-- Worker sessions: lease renewal and cleanup. Conventions: docs/sql.md.
-- cleanup_orphaned_sessions locks only sessions rows and reads worker_queue without locks, so no
-- cycle with the worker-queue procedures (worker_queue rows -> sessions rows) is possible.

-- renew_session_locks: extends to now + p_extend_ms every session owned by one of p_owner_ids
-- (json array of text) that is still locked and not idle (activity within p_idle_timeout_ms).
-- Idle and expired sessions are deliberately left to lapse, so an idle session unpins and is
-- never revived here.
-- Lock order: the matching sessions rows.
-- Errors: DX003 for invalid owner ids or durations.
-- Returns: {renewed}.
CREATE OR REPLACE FUNCTION renew_session_locks(p_owner_ids json, p_extend_ms BIGINT, p_idle_timeout_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
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

-- cleanup_orphaned_sessions: deletes expired sessions that no work item references any more
-- (queued, locked or delayed). A session with pending items is kept, so its items stay pinned
-- until it is claimed again.
-- Lock order: the deleted sessions rows; worker_queue is only read.
-- Errors: none.
-- Returns: {removed}.
CREATE OR REPLACE FUNCTION cleanup_orphaned_sessions() RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
    v_removed INTEGER;
BEGIN
    DELETE FROM sessions s
    WHERE s.locked_until_ms <= v_now
      AND NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.session_id = s.session_id);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN json_build_object('removed', v_removed);
END;
$$;
