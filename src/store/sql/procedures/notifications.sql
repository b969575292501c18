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
-- renews or inserts rows already locked for the caller (fetch, renew, claims). Every writer of
-- the queues is a procedure of these files; there are no queue triggers, so a statement added
-- later must announce its own rows. Instance-lock releases and status changes are announced by
-- statement-level triggers with transition tables (below).
-- Only listen_for_wakeups is public; the trigger functions and helpers are internal_*.

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
    FROM orchestrator_queue q WHERE q.lock_token IS NULL AND q.visible_at_ms <= v_now;
    SELECT count(*) INTO v_w_ready
    FROM worker_queue w WHERE w.lock_token IS NULL AND w.visible_at_ms <= v_now;
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

-- Announces, when instance locks are released (transition table `old_rows`), the instances whose
-- messages wait visible or delayed, so a message that arrived during a turn is not left asleep.
CREATE OR REPLACE FUNCTION internal_notify_released_instances() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_now   BIGINT := internal_current_time_ms();
    v_ready BIGINT;
    v_due   BIGINT;
BEGIN
    SELECT count(DISTINCT q.instance_id) FILTER (WHERE q.visible_at_ms <= v_now),
           min(q.visible_at_ms) FILTER (WHERE q.visible_at_ms > v_now)
    INTO v_ready, v_due
    FROM old_rows o
    JOIN orchestrator_queue q ON q.instance_id = o.instance_id
    WHERE q.lock_token IS NULL;
    IF v_ready > 0 OR v_due IS NOT NULL THEN
        PERFORM internal_send_queue_wakeup('o', v_ready, v_due - v_now);
    END IF;
    RETURN NULL;
END;
$$;

-- 's:<id>' when an execution becomes Completed or Failed (what waitForOrchestration waits for).
CREATE OR REPLACE FUNCTION internal_notify_terminal_executions() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify(internal_wakeup_channel(), 's:' || t.instance_id)
    FROM (SELECT DISTINCT n.instance_id FROM new_rows n WHERE n.status IN ('Completed', 'Failed')) t;
    RETURN NULL;
END;
$$;

-- 's:<id>' when a custom status changes (what waitForStatusChange waits for).
CREATE OR REPLACE FUNCTION internal_notify_custom_status_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify(internal_wakeup_channel(), 's:' || n.instance_id)
    FROM new_rows n WHERE n.custom_status_version > 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION internal_notify_custom_status_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify(internal_wakeup_channel(), 's:' || n.instance_id)
    FROM new_rows n JOIN old_rows o ON o.instance_id = n.instance_id
    WHERE n.custom_status_version <> o.custom_status_version;
    RETURN NULL;
END;
$$;

-- --- Triggers ---------------------------------------------------------------------------------
-- Statement-level, with transition tables: one notification per statement, not per row.

-- Stores migrated by an earlier build announced queue rows with triggers (every statement on the
-- queues, tagging and renewals included, ran one); the procedures announce them now.
DROP TRIGGER IF EXISTS orchestrator_queue_wakeup_insert ON orchestrator_queue;
DROP TRIGGER IF EXISTS orchestrator_queue_wakeup_update ON orchestrator_queue;
DROP TRIGGER IF EXISTS worker_queue_wakeup_insert ON worker_queue;
DROP TRIGGER IF EXISTS worker_queue_wakeup_update ON worker_queue;

CREATE OR REPLACE TRIGGER instance_locks_wakeup_release
    AFTER DELETE ON instance_locks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION internal_notify_released_instances();
CREATE OR REPLACE TRIGGER executions_wakeup_terminal
    AFTER UPDATE ON executions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION internal_notify_terminal_executions();
CREATE OR REPLACE TRIGGER instances_wakeup_custom_status_insert
    AFTER INSERT ON instances REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION internal_notify_custom_status_insert();
CREATE OR REPLACE TRIGGER instances_wakeup_custom_status_update
    AFTER UPDATE ON instances REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION internal_notify_custom_status_update();
