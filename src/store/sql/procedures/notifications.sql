-- Push wake-ups: LISTEN/NOTIFY on one channel per schema, so idle runtimes and waiting clients
-- sleep instead of polling. Conventions: docs/sql.md.
--
-- Every notification is a hint, never a source of truth: a receiver still fetches through the
-- normal procedures, so a lost, duplicated or early notification costs at most one empty fetch.
-- Payloads (short ASCII, well under the 8000-byte NOTIFY limit):
--   'o:<ready>:<dueInMs>:<n>'  orchestrator messages: <ready> instances with messages visible
--                              now, <dueInMs> ms until the earliest delayed one becomes visible
--                              (empty if none)
--   'w:<ready>:<dueInMs>:<n>'  activity work items, counted per item
--   's:<instanceId>'           the instance reached Completed/Failed or changed its custom status
-- <n> numbers the notifications of one transaction: PostgreSQL delivers identical payloads sent
-- in one transaction once, so without it two announcements (say, a child's start and the
-- release of the parent's own waiting message) would merge into one wake-up for two instances.
-- Delays are relative to the database clock so receivers with skewed clocks still wake on time.
-- Queue rows are announced by the procedure statement that makes them fetchable (an insert of
-- unlocked rows, an abandon that unlocks them), right after it, through internal_announce_queue:
-- one notification per such statement, never per row, and none for a statement that only tags,
-- renews or inserts rows already locked for the caller (fetch, renew, claims). A release of an
-- instance lock announces the instance's waiting messages, and a turn's commit its status change,
-- the same way. Every writer of the queues is a procedure of these files and there are no
-- notification triggers: a statement added later must announce what it makes fetchable.
-- Only listen_for_wakeups is public; the helpers are internal_*.

-- The channel of this schema: 'durox_<schema>', or 'durox_<md5>' when that would exceed the
-- 63-byte identifier limit.
CREATE OR REPLACE FUNCTION internal_wakeup_channel() RETURNS TEXT
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN octet_length('durox_' || current_schema()) <= 63 THEN 'durox_' || current_schema()
                ELSE 'durox_' || md5(current_schema()) END
$$;

-- Sends '<queue>:<ready>:<dueInMs>:<n>' on this schema's channel, n counting the notifications of
-- the current transaction (so none is merged with an identical one, see the top of this file).
CREATE OR REPLACE FUNCTION internal_send_queue_wakeup(p_queue TEXT, p_ready BIGINT, p_due_in_ms BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_sequence INTEGER := COALESCE(NULLIF(current_setting('durox.wakeup_sequence', TRUE), ''), '0')::INTEGER + 1;
BEGIN
    PERFORM set_config('durox.wakeup_sequence', v_sequence::TEXT, TRUE);
    PERFORM pg_notify(internal_wakeup_channel(),
                      p_queue || ':' || p_ready || ':' || COALESCE(p_due_in_ms::TEXT, '') || ':' || v_sequence);
END;
$$;

-- listen_for_wakeups: starts listening on this schema's channel (effective when the calling
-- transaction commits) and reports what is already waiting, so a (re)connected listener knows
-- about work and timers queued while it was not listening.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: {channel, orchestratorReady, orchestratorDueInMs: [ms], workerReady, workerDueInMs: [ms]}:
-- every delayed item's time (the soonest 1,000 per queue), not only the soonest, so a listener
-- that (re)connects can wake for each.
CREATE OR REPLACE FUNCTION listen_for_wakeups() RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
    v_channel TEXT := internal_wakeup_channel();
    v_o_ready BIGINT;
    v_w_ready BIGINT;
BEGIN
    EXECUTE format('LISTEN %I', v_channel);
    SELECT count(DISTINCT q.instance_id) INTO v_o_ready
    FROM orchestrator_queue q WHERE q.lock_token IS NULL AND q.rank_ms <= v_now AND q.visible_at_ms <= v_now;
    SELECT count(*) INTO v_w_ready
    FROM worker_queue w WHERE w.lock_token IS NULL AND w.rank_ms <= v_now AND w.visible_at_ms <= v_now;
    RETURN json_build_object(
        'channel', v_channel,
        'orchestratorReady', v_o_ready,
        'orchestratorDueInMs', COALESCE((SELECT json_agg(d.due ORDER BY d.due) FROM (
            SELECT DISTINCT q.visible_at_ms - v_now AS due FROM orchestrator_queue q
            WHERE q.lock_token IS NULL AND q.visible_at_ms > v_now
            ORDER BY 1 LIMIT 1000) d), '[]'::json),
        'workerReady', v_w_ready,
        'workerDueInMs', COALESCE((SELECT json_agg(d.due ORDER BY d.due) FROM (
            SELECT DISTINCT w.visible_at_ms - v_now AS due FROM worker_queue w
            WHERE w.lock_token IS NULL AND w.visible_at_ms > v_now
            ORDER BY 1 LIMIT 1000) d), '[]'::json));
END;
$$;

-- Announces queue rows that one statement made fetchable: p_queue 'o' with p_ready = instances
-- with messages visible now, 'w' with p_ready = work items visible now; p_earliest_delayed_ms =
-- the earliest visible_at_ms of its rows still delayed at p_now (NULL if none). Sends nothing when
-- there is nothing to announce.
CREATE OR REPLACE FUNCTION internal_announce_queue(p_queue TEXT, p_ready BIGINT, p_earliest_delayed_ms BIGINT, p_now BIGINT)
RETURNS VOID
LANGUAGE plpgsql
AS $$
BEGIN
    IF COALESCE(p_ready, 0) > 0 OR p_earliest_delayed_ms IS NOT NULL THEN
        PERFORM internal_send_queue_wakeup(p_queue, COALESCE(p_ready, 0), p_earliest_delayed_ms - p_now);
    END IF;
END;
$$;

-- Announces, when a procedure releases the instance lock of p_instance_id, the instance's
-- unlocked messages waiting visible or delayed (arrived during the turn, or sent by the turn to
-- itself), so a message that arrived during a turn is not left asleep. The releasing procedure
-- holds the instance's advisory lock exclusively, and every enqueue takes it shared: a message
-- committed after this query announces itself and finds the instance free.
CREATE OR REPLACE FUNCTION internal_announce_released_instance(p_instance_id TEXT, p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_ready    BIGINT;
    v_earliest BIGINT;
BEGIN
    -- One instance: 1 when any message is visible (no DISTINCT aggregate, which sorts).
    SELECT CASE WHEN bool_or(q.visible_at_ms <= p_now) THEN 1 ELSE 0 END,
           min(q.visible_at_ms) FILTER (WHERE q.visible_at_ms > p_now)
    INTO v_ready, v_earliest
    FROM orchestrator_queue q
    WHERE q.instance_id = p_instance_id AND q.lock_token IS NULL;
    PERFORM internal_announce_queue('o', v_ready, v_earliest, p_now);
END;
$$;

-- 's:<id>' when an execution becomes Completed or Failed (what waitForOrchestration waits for) or
-- the instance's custom status changes (what waitForStatusChange waits for). Both happen only in
-- a turn's commit (internal_commit_orchestration_turn), which calls this once.
CREATE OR REPLACE FUNCTION internal_announce_status(p_instance_id TEXT) RETURNS VOID
LANGUAGE sql
AS $$
    SELECT pg_notify(internal_wakeup_channel(), 's:' || p_instance_id)
$$;

-- Stores migrated by an earlier build announced with statement-level triggers (every statement on
-- the queues, tagging and renewals included, ran one; every turn ran three more); the procedures
-- announce what they change themselves now.
DROP TRIGGER IF EXISTS orchestrator_queue_wakeup_insert ON orchestrator_queue;
DROP TRIGGER IF EXISTS orchestrator_queue_wakeup_update ON orchestrator_queue;
DROP TRIGGER IF EXISTS worker_queue_wakeup_insert ON worker_queue;
DROP TRIGGER IF EXISTS worker_queue_wakeup_update ON worker_queue;
DROP TRIGGER IF EXISTS instance_locks_wakeup_release ON instance_locks;
DROP TRIGGER IF EXISTS executions_wakeup_terminal ON executions;
DROP TRIGGER IF EXISTS instances_wakeup_custom_status_insert ON instances;
DROP TRIGGER IF EXISTS instances_wakeup_custom_status_update ON instances;
