-- Eager dispatch and ordered wake-ups (performance issue 7).
-- Conventions (json results, DX error codes, pinned search_path, database clock) are described at
-- the top of 0002_orchestration_procedures.sql.
--
-- 1. Eager dispatch. A turn's ack may lock, for its caller, activities the turn schedules, and an
--    activity's ack may lock, for its caller, the turn its completion makes ready. The runtime asks
--    only when an idle slot of its own can run the item at once, so the item skips the
--    notification and the fetch (one notification delay and one round trip fewer per step).
--    Everything not claimed is queued and announced exactly as before.
--
-- 2. No lost wake-up when a message arrives while its instance's turn is being acknowledged.
--    Before, the ack's lock-release trigger could look for waiting messages before a concurrent
--    enqueue committed, while the enqueue's notification could arrive before the ack committed:
--    the woken fetch found the instance still locked and nobody announced the message again (a
--    stall until the runtime's safety fetch). Now every writer of an instance's orchestrator queue
--    holds that instance's advisory lock until it commits: an ack or abandon that releases the
--    instance lock holds it exclusively, an enqueue holds it shared. Either the enqueue commits
--    first and the release sees its message, or it waits for the release and its own
--    notification finds the instance free.
--
-- 3. Notifications of one transaction never merge. PostgreSQL delivers identical payloads sent in
--    one transaction once; two statements announcing 'o:1:' (say, a child's start and the
--    release of the parent's own waiting message) became one wake-up for two instances. Every
--    payload now ends with a sequence number unique within its transaction.
--
-- Lock order, extending 0002: advisory locks of instances first, in ascending key order
-- (instance_advisory_key; exclusive for an instance whose lock is released, shared for instances
-- only written to) -> instance_locks row -> instances -> executions -> history -> kv ->
-- worker_queue rows -> orchestrator_queue rows. A procedure that already holds advisory locks
-- only ever TRIES another one (fetch, claims), so waits cannot form a cycle.
--
-- Procedures whose bodies do not change keep them: the old function is renamed to an internal
-- step and a wrapper with the public name takes the advisory locks first and then calls it. Each
-- rename runs only once, so the migration can be re-applied (as every migration can).

-- --- Renaming once --------------------------------------------------------------------------

-- Renames function p_signature to p_new_name, unless p_new_name exists already (the migration ran
-- before): keeps this migration re-runnable. Dropped at the end of this migration.
CREATE OR REPLACE FUNCTION rename_function_once(p_signature TEXT, p_new_name TEXT) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace AND p.proname = p_new_name) THEN
        EXECUTE format('ALTER FUNCTION %s RENAME TO %I', p_signature::regprocedure, p_new_name);
    END IF;
END;
$$;

-- --- Advisory locks ---------------------------------------------------------------------------

-- The advisory lock key of an instance (the same key fetch and delete_instances have used since
-- 0002/0008). Keys are 32-bit hashes: two instances may share one, which only serialises them.
CREATE OR REPLACE FUNCTION instance_advisory_key(p_instance_id TEXT) RETURNS BIGINT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT hashtext(current_schema() || ':' || p_instance_id)::BIGINT
$$;

-- Takes the transaction advisory locks of p_exclusive (exclusive) and p_shared (shared) in
-- ascending key order, waiting for each; a key in both lists is taken exclusively once.
CREATE OR REPLACE FUNCTION lock_instances_in_key_order(p_exclusive TEXT[], p_shared TEXT[]) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_lock RECORD;
BEGIN
    FOR v_lock IN
        SELECT k.key, bool_or(k.exclusive) AS exclusive
        FROM (SELECT instance_advisory_key(x) AS key, TRUE AS exclusive FROM unnest(p_exclusive) AS x
              UNION ALL
              SELECT instance_advisory_key(x), FALSE FROM unnest(p_shared) AS x) k
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

-- --- Notifications ------------------------------------------------------------------------------

-- Sends '<queue>:<ready>:<dueInMs>:<n>' on this schema's channel, n counting the notifications of
-- the current transaction (so none is merged with an identical one, see 3. above).
CREATE OR REPLACE FUNCTION send_queue_wakeup(p_queue TEXT, p_ready BIGINT, p_due_in_ms BIGINT) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_sequence INTEGER := COALESCE(NULLIF(current_setting('durox.wakeup_sequence', TRUE), ''), '0')::INTEGER + 1;
BEGIN
    PERFORM set_config('durox.wakeup_sequence', v_sequence::TEXT, TRUE);
    PERFORM pg_notify(wakeup_channel(),
                      p_queue || ':' || p_ready || ':' || COALESCE(p_due_in_ms::TEXT, '') || ':' || v_sequence);
END;
$$;

-- Announces the unlocked rows a statement inserted into or updated in a queue (transition table
-- `new_rows`): TG_ARGV[0] = 'o' counts instances (one turn each), 'w' counts work items. Replaces
-- 0005's notify_orchestrator_rows and notify_worker_rows, which differed only in that.
CREATE OR REPLACE FUNCTION notify_queue_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now       BIGINT := current_time_ms();
    v_instances BIGINT;
    v_items     BIGINT;
    v_due       BIGINT;
BEGIN
    SELECT count(DISTINCT n.instance_id) FILTER (WHERE n.visible_at_ms <= v_now),
           count(*) FILTER (WHERE n.visible_at_ms <= v_now),
           min(n.visible_at_ms) FILTER (WHERE n.visible_at_ms > v_now)
    INTO v_instances, v_items, v_due
    FROM new_rows n WHERE n.lock_token IS NULL;
    IF v_items > 0 OR v_due IS NOT NULL THEN
        PERFORM send_queue_wakeup(TG_ARGV[0], CASE WHEN TG_ARGV[0] = 'o' THEN v_instances ELSE v_items END, v_due - v_now);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER orchestrator_queue_wakeup_insert
    AFTER INSERT ON orchestrator_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_queue_rows('o');
CREATE OR REPLACE TRIGGER orchestrator_queue_wakeup_update
    AFTER UPDATE ON orchestrator_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_queue_rows('o');
CREATE OR REPLACE TRIGGER worker_queue_wakeup_insert
    AFTER INSERT ON worker_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_queue_rows('w');
CREATE OR REPLACE TRIGGER worker_queue_wakeup_update
    AFTER UPDATE ON worker_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_queue_rows('w');
DROP FUNCTION IF EXISTS notify_orchestrator_rows();
DROP FUNCTION IF EXISTS notify_worker_rows();

-- 0005's release trigger, unchanged except that it sends through send_queue_wakeup.
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
        PERFORM send_queue_wakeup('o', v_ready, v_due - v_now);
    END IF;
    RETURN NULL;
END;
$$;

-- --- Locking one instance's batch ---------------------------------------------------------------

-- Locks the visible batch of p_instance_id for a turn and returns it as fetch_orchestration_item
-- does, or NULL when the instance cannot be taken now: its advisory lock is busy (never waited
-- for), its instance lock is held, its pinned version is outside [p_min, p_max], it does not
-- exist and its batch holds no start (QueueMessages alone for a never-created instance are
-- deleted: the orphan rule), or a concurrent ack emptied the batch.
-- Locks: pg_try_advisory_xact_lock(instance), the instance_locks row FOR UPDATE, the instance's
-- visible queue rows (tagged with the new token), then the instance_locks row is written.
CREATE OR REPLACE FUNCTION lock_orchestration_batch(p_instance_id TEXT, p_lock_timeout_ms BIGINT,
                                                    p_min INTEGER[], p_max INTEGER[], p_now BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
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
    v_history       json := '[]'::json;
    v_history_error TEXT;
    v_kv            json;
BEGIN
    IF NOT pg_try_advisory_xact_lock(instance_advisory_key(p_instance_id)) THEN
        RETURN NULL;
    END IF;

    SELECT l.locked_until_ms INTO v_locked_until
    FROM instance_locks l WHERE l.instance_id = p_instance_id
    FOR UPDATE;
    IF FOUND AND v_locked_until > p_now THEN
        RETURN NULL;
    END IF;
    IF p_min IS NOT NULL AND NOT version_in_range(p_instance_id, p_min, p_max) THEN
        RETURN NULL;
    END IF;

    SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id, i.custom_status
    INTO v_name, v_version, v_execution_id, v_custom_status
    FROM instances i WHERE i.instance_id = p_instance_id;
    v_exists := FOUND;

    IF NOT v_exists AND NOT EXISTS (
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

    -- Tag every visible message, including those of an expired previous holder (and a message
    -- its caller inserted pre-tagged). The caller's peek ran without locks, so the previous
    -- holder may have acknowledged the whole batch since: then there is nothing to hand out.
    v_lock_token := gen_random_uuid()::TEXT;
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

    SELECT json_agg(q.work_item::json ORDER BY q.id), max(q.attempt_count)
    INTO v_messages, v_attempt_count
    FROM orchestrator_queue q WHERE q.lock_token = v_lock_token;

    IF v_exists THEN
        BEGIN
            SELECT COALESCE(json_agg(h.event_data::json ORDER BY h.event_id), '[]'::json)
            INTO v_history
            FROM history h
            WHERE h.instance_id = p_instance_id AND h.execution_id = v_execution_id;
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
    FROM kv_store k WHERE k.instance_id = p_instance_id;

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
        'nowMs', p_now);
END;
$$;

-- Parses the version range of a fetch or claim: both bounds or neither ('major.minor.patch').
CREATE OR REPLACE FUNCTION parse_version_range(p_min_version TEXT, p_max_version TEXT,
                                               OUT out_min INTEGER[], OUT out_max INTEGER[])
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF (p_min_version IS NULL) <> (p_max_version IS NULL) THEN
        RAISE EXCEPTION 'a version range needs both a minimum and a maximum' USING ERRCODE = 'DX003';
    END IF;
    IF p_min_version IS NOT NULL THEN
        out_min := parse_semver(p_min_version, 'minimum version');
        out_max := parse_semver(p_max_version, 'maximum version');
    END IF;
END;
$$;

-- Locks up to p_max_items instances, each the oldest visible message's instance that is not
-- locked, and returns their batches (see lock_orchestration_batch) as a json array, oldest
-- first, each under its own lock token; an empty array means no eligible work, never "lost a
-- race": a candidate that cannot be taken is skipped and the next one tried. The capability
-- filter and the start and orphan rules are those of 0008's fetch_orchestration_item.
-- Locks: per instance as lock_orchestration_batch, one instance after the other, each only
-- TRIED (a busy instance is skipped), so batches never wait for each other.
CREATE OR REPLACE FUNCTION fetch_orchestration_items(p_lock_timeout_ms BIGINT, p_min_version TEXT,
                                                     p_max_version TEXT, p_max_items INTEGER)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now         BIGINT := current_time_ms();
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
    SELECT * INTO v_range FROM parse_version_range(p_min_version, p_max_version);

    WHILE COALESCE(array_length(v_items, 1), 0) < p_max_items LOOP
        -- Peek without row locks. The start rule's EXISTS tests are ORed, so PostgreSQL cannot
        -- turn them into joins and would hash each subquery over the WHOLE queue on every fetch
        -- (2.8 ms with 5,000 queued starts). OFFSET 0 keeps them per candidate row, on the
        -- (instance_id, kind) index (0.18 ms), and the oldest candidate is almost always eligible.
        SELECT q.instance_id INTO v_instance_id
        FROM orchestrator_queue q
        WHERE q.visible_at_ms <= v_now
          AND q.instance_id <> ALL (v_skipped)
          AND (v_range.out_min IS NULL OR version_in_range(q.instance_id, v_range.out_min, v_range.out_max))
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

        v_item := lock_orchestration_batch(v_instance_id, p_lock_timeout_ms, v_range.out_min, v_range.out_max, v_now);
        IF v_item IS NOT NULL THEN
            v_items := v_items || v_item;
        END IF;
        v_skipped := v_skipped || v_instance_id;
    END LOOP;
    RETURN array_to_json(v_items);
END;
$$;

-- One batch (fetch_orchestration_items with p_max_items 1), or NULL: the contract of 0008.
CREATE OR REPLACE FUNCTION fetch_orchestration_item(p_lock_timeout_ms BIGINT, p_min_version TEXT DEFAULT NULL,
                                                    p_max_version TEXT DEFAULT NULL) RETURNS json
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT fetch_orchestration_items(p_lock_timeout_ms, p_min_version, p_max_version, 1) -> 0
$$;

-- --- Orchestration ack with claimed activities ---------------------------------------------------

SELECT rename_function_once('ack_orchestration_item(text, json)', 'commit_orchestration_turn');

-- Commits a turn exactly as 0002's ack_orchestration_item (now commit_orchestration_turn) did,
-- after taking the advisory locks of the instance (exclusive) and of every instance it sends a
-- message to (shared). With p_claim = {workerItems, lockTimeoutMs}, the activities in
-- p_claim.workerItems (same shape as p_ack.workerItems, which must not repeat them; none pinned
-- to a session) are queued already locked for the caller, each under its own token, unless the
-- same turn cancels them; they are never announced.
-- Result: {instanceId, nowMs, claimedWorkItems: [lease as fetch_work_item returns it]}.
-- Locks: advisory locks in key order, then as commit_orchestration_turn; the claimed rows are
-- new rows.
CREATE OR REPLACE FUNCTION ack_orchestration_item(p_lock_token TEXT, p_ack json, p_claim json DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now         BIGINT := current_time_ms();
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

    -- The token's instance, read without a lock: commit_orchestration_turn checks it under one.
    SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
    IF FOUND THEN
        PERFORM lock_instances_in_key_order(
            ARRAY[v_instance_id],
            ARRAY(SELECT o->>'targetInstance'
                  FROM json_array_elements(COALESCE(p_ack->'orchestratorItems', '[]'::json)) AS o));
    END IF;

    PERFORM commit_orchestration_turn(p_lock_token, p_ack);
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

-- --- Abandon and enqueue take the advisory lock ---------------------------------------------------

SELECT rename_function_once('abandon_orchestration_item(text, bigint, boolean)', 'release_orchestration_item');

-- abandon_orchestration_item of 0002 (now release_orchestration_item), under the instance's
-- exclusive advisory lock, since releasing the lock may make waiting messages fetchable.
CREATE OR REPLACE FUNCTION abandon_orchestration_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_instance_id TEXT;
BEGIN
    SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
    IF FOUND THEN
        PERFORM pg_advisory_xact_lock(instance_advisory_key(v_instance_id));
    END IF;
    RETURN release_orchestration_item(p_lock_token, p_delay_ms, p_ignore_attempt);
END;
$$;

SELECT rename_function_once('enqueue_orchestrator_work(text, text, text, bigint, bigint)', 'insert_orchestrator_message');

-- enqueue_orchestrator_work of 0002 (now insert_orchestrator_message), under the target
-- instance's shared advisory lock (see 2. above).
CREATE OR REPLACE FUNCTION enqueue_orchestrator_work(p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                     p_delay_ms BIGINT, p_fire_at_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(instance_advisory_key(p_instance_id));
    RETURN insert_orchestrator_message(p_instance_id, p_kind, p_work_item, p_delay_ms, p_fire_at_ms);
END;
$$;

-- --- Activity ack with a claimed turn ----------------------------------------------------------

SELECT rename_function_once('ack_work_item(text, text, text, text)', 'finish_work_item');

-- Acknowledges a work item as 0007's ack_work_item (now finish_work_item) did: deletes the locked
-- item and, when p_work_item is given, enqueues its completion for p_instance_id, atomically.
-- With p_claim_turn = {lockTimeoutMs, minVersion?, maxVersion?} and a completion, the turn the
-- completion makes ready is locked for the caller in the same transaction when the instance is
-- free now (not locked, no other writer in progress, pinned version in range) and returned as
-- fetch_orchestration_item returns it; the completion is then never announced.
-- Result: {instanceId, claimedTurn: item or NULL}.
-- Locks: the advisory lock of p_instance_id (exclusive when a claim is attempted and it is free
-- now, else shared, waiting), then as finish_work_item (worker_queue row, sessions row), then
-- the claimed batch as lock_orchestration_batch.
CREATE OR REPLACE FUNCTION ack_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                         p_claim_turn json DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      BIGINT := current_time_ms();
    v_lock_ms  BIGINT := (p_claim_turn->>'lockTimeoutMs')::BIGINT;
    v_range    RECORD;
    v_claiming BOOLEAN := FALSE;
    v_result   json;
    v_id       BIGINT;
    v_turn     json;
BEGIN
    IF p_work_item IS NULL THEN
        RETURN finish_work_item(p_lock_token, NULL, NULL, NULL);
    END IF;
    IF p_claim_turn IS NOT NULL THEN
        IF v_lock_ms IS NULL OR v_lock_ms <= 0 THEN
            RAISE EXCEPTION 'claim lock timeout must be a positive number of milliseconds, got %', v_lock_ms
                USING ERRCODE = 'DX003';
        END IF;
        SELECT * INTO v_range FROM parse_version_range(p_claim_turn->>'minVersion', p_claim_turn->>'maxVersion');
        IF pg_try_advisory_xact_lock(instance_advisory_key(p_instance_id)) THEN
            v_claiming := NOT EXISTS (SELECT 1 FROM instance_locks l
                                      WHERE l.instance_id = p_instance_id AND l.locked_until_ms > v_now);
        END IF;
    END IF;
    IF NOT v_claiming THEN
        PERFORM pg_advisory_xact_lock_shared(instance_advisory_key(p_instance_id));
        v_result := finish_work_item(p_lock_token, p_instance_id, p_kind, p_work_item);
        RETURN json_build_object('instanceId', v_result->>'instanceId', 'claimedTurn', NULL);
    END IF;

    v_result := finish_work_item(p_lock_token, NULL, NULL, NULL);
    -- Inserted pre-tagged, so its insert announces nothing; lock_orchestration_batch re-tags it.
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, lock_token)
    VALUES (p_instance_id, p_kind, p_work_item, v_now, 0, v_now, 'claim:' || p_lock_token)
    RETURNING id INTO v_id;
    v_turn := lock_orchestration_batch(p_instance_id, v_lock_ms, v_range.out_min, v_range.out_max, v_now);
    IF v_turn IS NULL THEN
        -- Not claimable after all (version filter, emptied batch): queue it like any completion.
        UPDATE orchestrator_queue SET lock_token = NULL WHERE id = v_id;
    END IF;
    RETURN json_build_object('instanceId', v_result->>'instanceId', 'claimedTurn', v_turn);
END;
$$;

-- Acknowledges several work items in one call (group commit): each element of p_acks,
-- {lockToken, instanceId, kind, workItem, claimTurn}, is handled exactly as ack_work_item handles
-- it, in its own subtransaction, so one item refused (lock lost, invalid, even a deadlock) leaves
-- the others committed; its SQLSTATE is reported so the caller can tell retryable from permanent.
-- Result: json array in input order of {ok: true, claimedTurn} or {ok: false, code, message}.
-- Locks: first the advisory locks of every completion's instance in ascending key order (TRIED
-- exclusively where a claim is asked for, else shared and waited for), then item by item as
-- ack_work_item (whose own advisory locks are then already held).
CREATE OR REPLACE FUNCTION ack_work_items(p_acks json) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_lock    RECORD;
    v_ack     json;
    v_result  json;
    v_results json[] := ARRAY[]::json[];
BEGIN
    IF p_acks IS NULL OR json_typeof(p_acks) <> 'array' OR json_array_length(p_acks) > 1000 THEN
        RAISE EXCEPTION 'acks must be a json array of at most 1000 elements' USING ERRCODE = 'DX003';
    END IF;

    FOR v_lock IN
        SELECT instance_advisory_key(a->>'instanceId') AS key,
               bool_or(COALESCE(json_typeof(a->'claimTurn'), 'null') = 'object') AS claim
        FROM json_array_elements(p_acks) AS a
        WHERE a->>'workItem' IS NOT NULL
        GROUP BY 1
        ORDER BY 1
    LOOP
        IF v_lock.claim THEN
            IF NOT pg_try_advisory_xact_lock(v_lock.key) THEN
                PERFORM pg_advisory_xact_lock_shared(v_lock.key);
            END IF;
        ELSE
            PERFORM pg_advisory_xact_lock_shared(v_lock.key);
        END IF;
    END LOOP;

    FOR v_ack IN SELECT a FROM json_array_elements(p_acks) AS a LOOP
        BEGIN
            v_result := ack_work_item(v_ack->>'lockToken', v_ack->>'instanceId', v_ack->>'kind', v_ack->>'workItem',
                                      CASE WHEN json_typeof(v_ack->'claimTurn') = 'object' THEN v_ack->'claimTurn' END);
            v_results := v_results || json_build_object('ok', TRUE, 'claimedTurn', v_result->'claimedTurn');
        EXCEPTION WHEN OTHERS THEN
            v_results := v_results || json_build_object('ok', FALSE, 'code', SQLSTATE, 'message', SQLERRM);
        END;
    END LOOP;
    RETURN array_to_json(v_results);
END;
$$;

-- Commits several turns in one call (group commit): each element of p_acks, {lockToken, ack,
-- claim}, is committed exactly as ack_orchestration_item commits it, in its own subtransaction,
-- so one turn refused (lock lost, invalid, duplicate event) leaves the others committed.
-- Result: json array in input order of {ok: true, claimedWorkItems} or {ok: false, code, message}.
-- Locks: first the advisory locks of every element in ascending key order (exclusive: the
-- instances whose locks are released; shared: the instances they send messages to), then element
-- by element as ack_orchestration_item (whose own advisory locks are then already held).
CREATE OR REPLACE FUNCTION ack_orchestration_items(p_acks json) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_element json;
    v_result  json;
    v_results json[] := ARRAY[]::json[];
BEGIN
    IF p_acks IS NULL OR json_typeof(p_acks) <> 'array' OR json_array_length(p_acks) > 100 THEN
        RAISE EXCEPTION 'acks must be a json array of at most 100 elements' USING ERRCODE = 'DX003';
    END IF;

    PERFORM lock_instances_in_key_order(
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

-- --- Deletion in key order ----------------------------------------------------------------------

SELECT rename_function_once('delete_instances(json, boolean)', 'remove_instances');

-- delete_instances of 0008 (now remove_instances), taking the advisory locks in key order first,
-- like every other procedure; remove_instances then re-takes them (already held, no wait).
CREATE OR REPLACE FUNCTION delete_instances(p_instance_ids json, p_force BOOLEAN) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_instance_ids IS NOT NULL AND json_typeof(p_instance_ids) = 'array' THEN
        PERFORM lock_instances_in_key_order(ARRAY(SELECT json_array_elements_text(p_instance_ids)), ARRAY[]::TEXT[]);
    END IF;
    RETURN remove_instances(p_instance_ids, p_force);
END;
$$;

DROP FUNCTION rename_function_once(TEXT, TEXT);
