-- Push wake-ups: LISTEN/NOTIFY on one channel per schema, so idle runtimes and waiting clients
-- sleep instead of polling.
--
-- Every notification is a hint, never a source of truth: a receiver still fetches through the
-- normal procedures, so a lost, duplicated or early notification costs at most one empty fetch.
-- Payloads (short ASCII, well under the 8000-byte NOTIFY limit):
--   'o:<ready>:<dueInMs>'  orchestrator messages: <ready> instances with messages visible now,
--                          <dueInMs> ms until the earliest delayed one becomes visible (empty if none)
--   'w:<ready>:<dueInMs>'  activity work items, counted per item
--   's:<instanceId>'       the instance reached Completed/Failed or changed its custom status
-- Delays are relative to the database clock so receivers with skewed clocks still wake on time.
-- Triggers are statement-level with transition tables: one notification per statement, not per row.
-- Rows still locked by a fetch (lock_token set) never notify: fetch and renew stay silent.

-- The channel of this schema: 'durox_<schema>', or 'durox_<md5>' when that would exceed the
-- 63-byte identifier limit.
CREATE OR REPLACE FUNCTION wakeup_channel() RETURNS TEXT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN octet_length('durox_' || current_schema()) <= 63 THEN 'durox_' || current_schema()
                ELSE 'durox_' || md5(current_schema()) END
$$;

-- Starts listening on this schema's channel (effective when the calling transaction commits) and
-- reports what is already waiting, so a (re)connected listener knows about work and timers
-- queued while it was not listening.
-- Result: {channel, orchestratorReady, orchestratorDueInMs, workerReady, workerDueInMs}.
CREATE OR REPLACE FUNCTION listen_for_wakeups() RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     BIGINT := current_time_ms();
    v_channel TEXT := wakeup_channel();
    v_o_ready BIGINT;
    v_o_due   BIGINT;
    v_w_ready BIGINT;
    v_w_due   BIGINT;
BEGIN
    EXECUTE format('LISTEN %I', v_channel);
    SELECT count(DISTINCT q.instance_id) FILTER (WHERE q.visible_at_ms <= v_now),
           min(q.visible_at_ms) FILTER (WHERE q.visible_at_ms > v_now)
    INTO v_o_ready, v_o_due
    FROM orchestrator_queue q WHERE q.lock_token IS NULL;
    SELECT count(*) FILTER (WHERE w.visible_at_ms <= v_now),
           min(w.visible_at_ms) FILTER (WHERE w.visible_at_ms > v_now)
    INTO v_w_ready, v_w_due
    FROM worker_queue w WHERE w.lock_token IS NULL;
    RETURN json_build_object('channel', v_channel,
                             'orchestratorReady', v_o_ready, 'orchestratorDueInMs', v_o_due - v_now,
                             'workerReady', v_w_ready, 'workerDueInMs', v_w_due - v_now);
END;
$$;

-- Sends 'o:'/'w:' for the unlocked rows of a statement's transition table `new_rows`.
CREATE OR REPLACE FUNCTION notify_orchestrator_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   BIGINT := current_time_ms();
    v_ready BIGINT;
    v_due   BIGINT;
BEGIN
    SELECT count(DISTINCT n.instance_id) FILTER (WHERE n.visible_at_ms <= v_now),
           min(n.visible_at_ms) FILTER (WHERE n.visible_at_ms > v_now)
    INTO v_ready, v_due
    FROM new_rows n WHERE n.lock_token IS NULL;
    IF v_ready > 0 OR v_due IS NOT NULL THEN
        PERFORM pg_notify(wakeup_channel(), 'o:' || v_ready || ':' || COALESCE((v_due - v_now)::TEXT, ''));
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION notify_worker_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   BIGINT := current_time_ms();
    v_ready BIGINT;
    v_due   BIGINT;
BEGIN
    SELECT count(*) FILTER (WHERE n.visible_at_ms <= v_now),
           min(n.visible_at_ms) FILTER (WHERE n.visible_at_ms > v_now)
    INTO v_ready, v_due
    FROM new_rows n WHERE n.lock_token IS NULL;
    IF v_ready > 0 OR v_due IS NOT NULL THEN
        PERFORM pg_notify(wakeup_channel(), 'w:' || v_ready || ':' || COALESCE((v_due - v_now)::TEXT, ''));
    END IF;
    RETURN NULL;
END;
$$;

-- A released instance lock (ack or abandon) makes messages that arrived during the turn
-- fetchable; their insert notification found the instance locked, so announce them again.
-- The batch being abandoned still carries the old token here and is announced by the
-- orchestrator_queue update trigger instead (with its delay).
CREATE OR REPLACE FUNCTION notify_released_instances() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   BIGINT := current_time_ms();
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
        PERFORM pg_notify(wakeup_channel(), 'o:' || v_ready || ':' || COALESCE((v_due - v_now)::TEXT, ''));
    END IF;
    RETURN NULL;
END;
$$;

-- 's:<id>' when an execution becomes Completed or Failed (what waitForOrchestration waits for).
CREATE OR REPLACE FUNCTION notify_terminal_executions() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_notify(wakeup_channel(), 's:' || t.instance_id)
    FROM (SELECT DISTINCT n.instance_id FROM new_rows n WHERE n.status IN ('Completed', 'Failed')) t;
    RETURN NULL;
END;
$$;

-- 's:<id>' when a custom status changes (what waitForStatusChange waits for).
CREATE OR REPLACE FUNCTION notify_custom_status_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_notify(wakeup_channel(), 's:' || n.instance_id)
    FROM new_rows n WHERE n.custom_status_version > 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION notify_custom_status_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_notify(wakeup_channel(), 's:' || n.instance_id)
    FROM new_rows n JOIN old_rows o ON o.instance_id = n.instance_id
    WHERE n.custom_status_version <> o.custom_status_version;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER orchestrator_queue_wakeup_insert
    AFTER INSERT ON orchestrator_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_orchestrator_rows();
CREATE OR REPLACE TRIGGER orchestrator_queue_wakeup_update
    AFTER UPDATE ON orchestrator_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_orchestrator_rows();
CREATE OR REPLACE TRIGGER worker_queue_wakeup_insert
    AFTER INSERT ON worker_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_worker_rows();
CREATE OR REPLACE TRIGGER worker_queue_wakeup_update
    AFTER UPDATE ON worker_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_worker_rows();
CREATE OR REPLACE TRIGGER instance_locks_wakeup_release
    AFTER DELETE ON instance_locks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_released_instances();
CREATE OR REPLACE TRIGGER executions_wakeup_terminal
    AFTER UPDATE ON executions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_terminal_executions();
CREATE OR REPLACE TRIGGER instances_wakeup_custom_status_insert
    AFTER INSERT ON instances REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_custom_status_insert();
CREATE OR REPLACE TRIGGER instances_wakeup_custom_status_update
    AFTER UPDATE ON instances REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_custom_status_update();
