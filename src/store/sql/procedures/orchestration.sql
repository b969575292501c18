-- Orchestration turns: fetch, ack (single and group commit), abandon, renew, enqueue.
-- Conventions (json results, DX error codes, pinned search_path, database clock): docs/sql.md.
--
-- Lock order of every procedure, to avoid deadlocks (as DurableTask.SqlServer documents its own):
-- advisory locks of instances first, in ascending key order (internal_instance_advisory_key;
-- exclusive for an instance whose lock is released, shared for instances only written to) ->
-- instance_locks row -> instances -> executions -> history -> kv tables -> worker_queue rows ->
-- orchestrator_queue rows. A procedure that already holds advisory locks only ever TRIES another
-- one (fetch, claims), so waits cannot form a cycle. Every writer of an instance's orchestrator
-- queue holds that instance's advisory lock until it commits: an ack or abandon that releases
-- the instance lock holds it exclusively, an enqueue shared. Either the enqueue commits first and
-- the release sees its message, or it waits for the release and its own notification finds the
-- instance free (no lost wake-up).

-- fetch_orchestration_items: locks up to p_max_items (1..100) instances for a turn, each the
-- best-ranked visible message's instance that is not locked, and returns their batches with
-- history and KV snapshot, best first, each under its own lock token. Rank (migration 0103): the
-- time a message became visible minus one minute per priority level, so higher levels first and
-- FIFO within a level; the scan is bounded by rank_ms <= now (levels are never negative), so it
-- walks no timer of the default level. An empty array means no eligible work, never "lost a
-- race": a candidate that cannot be taken is skipped and the next one tried.
-- Capability filter: with a version range only instances whose pinned version is inside it (or
-- unpinned). Start rule: an instance that does not exist yet is eligible only when its visible
-- batch holds a StartOrchestration or ContinueAsNew; QueueMessages alone for a never-created
-- instance are deleted (orphan rule); other early messages wait for their start. Corrupted
-- history is reported in historyError while the lock is held.
-- Clock: visibility is filtered with internal_wall_clock_ms(), read by the scan after its
-- snapshot, so every message committed before the scan is seen (see internal.sql).
-- Lock order: per candidate, as internal_lock_orchestration_batch: the instance's advisory lock
-- (only TRIED: a busy instance is skipped, never waited for) -> its instance_locks row ->
-- its visible orchestrator_queue rows; one instance after the other, so fetches never wait.
-- Announcements: an instance skipped because writers hold its advisory lock (shared) is
-- announced again, since a completion they commit may go unannounced (see the loop); taking over
-- an instance whose lock ran out announces one more (internal_lock_orchestration_batch), since
-- the fetch may have been woken for another instance.
-- Errors: DX003 for a lock timeout <= 0, max items outside 1..100, a half or malformed version range.
-- Returns: json array of {instanceId, orchestrationName, orchestrationVersion, executionId,
-- history, historyError, messages, lockToken, attemptCount, kvSnapshot, customStatus, waitedMs,
-- nowMs}; name/version/executionId are NULL for an instance that does not exist yet; waitedMs is
-- how long the batch's oldest message had been visible.
CREATE OR REPLACE FUNCTION fetch_orchestration_items(p_lock_timeout_ms BIGINT, p_min_version TEXT,
                                                     p_max_version TEXT, p_max_items INTEGER)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now         BIGINT;
    v_skipped     TEXT[] := ARRAY[]::TEXT[];
    v_items       json[] := ARRAY[]::json[];
    v_instance_id TEXT;
    v_key         BIGINT;
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
        -- Peek without row locks. The version filter (only with a range) is inlined, not a function
        -- call per candidate row. The start rule's EXISTS tests are ORed, so PostgreSQL cannot
        -- turn them into joins and would hash each subquery over the WHOLE queue on every fetch
        -- (2.8 ms with 5,000 queued starts; the version filter would hash instances x executions).
        -- OFFSET 0 keeps them per candidate row, on the (instance_id, kind) index and the primary
        -- keys (0.18 ms), and the oldest candidate is almost always eligible.
        -- The clock is read once for both bounds of the rank index (two scalar subqueries would
        -- each call the function), by the statement itself, after its snapshot.
        WITH clock AS MATERIALIZED (SELECT internal_wall_clock_ms() AS now_ms)
        SELECT q.instance_id INTO v_instance_id
        FROM orchestrator_queue q
        WHERE q.rank_ms <= (SELECT c.now_ms FROM clock c)
          AND q.visible_at_ms <= (SELECT c.now_ms FROM clock c)
          AND q.instance_id <> ALL (v_skipped)
          AND (v_range.out_min IS NULL OR NOT EXISTS (
                   SELECT 1 FROM instances i
                   JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
                   WHERE i.instance_id = q.instance_id
                     AND (ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) < ROW(v_range.out_min[1], v_range.out_min[2], v_range.out_min[3])
                          OR ROW(e.pinned_major, e.pinned_minor, e.pinned_patch) > ROW(v_range.out_max[1], v_range.out_max[2], v_range.out_max[3]))
                   OFFSET 0))
          AND NOT EXISTS (SELECT 1 FROM instance_locks l
                          WHERE l.instance_id = q.instance_id AND l.locked_until_ms > (SELECT internal_wall_clock_ms()))
          AND (EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id OFFSET 0)
               OR EXISTS (SELECT 1 FROM orchestrator_queue s
                          WHERE s.instance_id = q.instance_id AND s.visible_at_ms <= (SELECT internal_wall_clock_ms())
                            AND s.kind IN ('StartOrchestration', 'ContinueAsNew') OFFSET 0)
               OR NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                              WHERE o.instance_id = q.instance_id AND o.visible_at_ms <= (SELECT internal_wall_clock_ms())
                                AND o.kind <> 'QueueMessage' OFFSET 0))
        ORDER BY q.rank_ms, q.visible_at_ms, q.id
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        -- Read after the scan, so the batch holds every message the scan could see.
        v_now := internal_wall_clock_ms();

        v_key := internal_instance_advisory_key(v_instance_id);
        IF pg_try_advisory_xact_lock(v_key) THEN
            v_item := internal_lock_orchestration_batch(v_instance_id, v_key, p_lock_timeout_ms,
                                                        v_range.out_min, v_range.out_max, v_now);
            IF v_item IS NOT NULL THEN
                v_items := v_items || v_item;
            END IF;
        ELSIF pg_try_advisory_lock_shared(v_key) THEN
            -- Busy with writers only (acks of completions and enqueues hold the key shared). A
            -- completion is not announced when another message of its instance already waits
            -- (internal_finish_work_item), and this empty answer may be the one that message's
            -- announcement gets: announce the instance again. Held exclusively instead, the
            -- instance is being taken (by a fetch or a claiming ack) or released, which announces.
            PERFORM pg_advisory_unlock_shared(v_key);
            PERFORM internal_announce_queue('o', 1, NULL, v_now);
        END IF;
        v_skipped := v_skipped || v_instance_id;
    END LOOP;
    RETURN array_to_json(v_items);
END;
$$;

-- fetch_orchestration_item: one batch, as fetch_orchestration_items with p_max_items = 1.
-- Lock order: as fetch_orchestration_items.
-- Errors: as fetch_orchestration_items (DX003).
-- Returns: the batch object, or NULL when no instance is eligible.
-- PL/pgSQL, not a SQL wrapper: a public procedure runs SECURITY DEFINER (admin.sql), which the
-- planner never inlines, so a SQL body would be parsed and planned again on every call.
CREATE OR REPLACE FUNCTION fetch_orchestration_item(p_lock_timeout_ms BIGINT, p_min_version TEXT DEFAULT NULL,
                                                    p_max_version TEXT DEFAULT NULL) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN fetch_orchestration_items(p_lock_timeout_ms, p_min_version, p_max_version, 1) -> 0;
END;
$$;

-- ack_orchestration_item: commits one orchestration turn atomically (history, execution status,
-- custom status, KV, activities scheduled and cancelled, messages to other instances; see
-- internal_commit_orchestration_turn for p_ack) and releases the instance lock. With p_claim =
-- {workerItems, lockTimeoutMs}, the activities in p_claim.workerItems (same shape as
-- p_ack.workerItems, which must not repeat them; none pinned to a session) are queued already
-- locked for the caller, each under its own token, unless the same turn cancels them; they are
-- never announced.
-- Repeats: the claimed items' tokens derive from p_lock_token (internal_ack_token(p_lock_token)
-- || ':' || n), so a repeat of an ack that committed (its reply lost, e.g. in a failover) is
-- recognised: it finds the token's instance lock gone but the items it claimed still held,
-- re-extends their leases and returns them as the first call would have, instead of leaving them
-- locked until their lease ends.
-- Flow control (flow.sql): activities whose key has a limit take a permit or are parked; a claimed
-- one is claimed only with a permit and never for a rated key; cancelled ones give theirs on; a
-- turn that completes or fails the instance gives the instance's own permit (its start's flowKey)
-- to the oldest parked start or activity of that key.
-- Lock order: advisory locks in ascending key order (internal_lock_instances_in_key_order:
-- the instance exclusively, every instance it sends a message to shared) -> the flow_limits rows
-- of the keys the turn and claim touch, the instance's permit key included (ascending) ->
-- instance_locks row -> instances -> executions -> history -> kv rows -> worker_queue rows ->
-- flow_parked rows -> the instance's flow_instance_permits row -> flow_parked_starts rows ->
-- orchestrator_queue rows.
-- Errors: DX001 for a lock token that is unknown, released or expired (nothing is written);
-- DX003 for an invalid ack or claim; unique_violation (23505) for a duplicate event id.
-- Returns: {instanceId, nowMs, claimedWorkItems: [lease as fetch_work_item returns it],
-- committedStatus}; committedStatus is get_instance_status read after the commit when the turn
-- ended the execution Completed or Failed (so a waiting client in this process needs no read),
-- else NULL.
CREATE OR REPLACE FUNCTION ack_orchestration_item(p_lock_token TEXT, p_ack json, p_claim json DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN internal_ack_orchestration_item(p_lock_token, p_ack::jsonb, p_claim::jsonb);
END;
$$;

-- ack_orchestration_item's body, on the ack and claim parsed once (jsonb): a field read of a json
-- value parses its whole text again, and a turn's commit reads some thirty fields of its ack.
-- Also called by ack_orchestration_items and ack_work_item_with_turn, which parse their own input.
-- p_direct: ack_work_item_with_turn's direct commit of a turn that holds no instance lock
-- (internal_commit_orchestration_turn); the caller holds the instance's advisory lock exclusively
-- and the turn sends messages only to its own instance. p_lock_token then only names the claimed
-- activities' tokens, so that a repeat of the call finds them. p_now: the calling procedure's
-- clock when it has read it (one time per call), else read here. p_flow: whether flow limits
-- exist, when the calling procedure has read it (one time per call), else read here.
DROP FUNCTION IF EXISTS internal_ack_orchestration_item(TEXT, jsonb, jsonb);
DROP FUNCTION IF EXISTS internal_ack_orchestration_item(TEXT, jsonb, jsonb, BOOLEAN);
DROP FUNCTION IF EXISTS internal_ack_orchestration_item(TEXT, jsonb, jsonb, BOOLEAN, BIGINT);
CREATE OR REPLACE FUNCTION internal_ack_orchestration_item(p_lock_token TEXT, p_ack jsonb, p_claim jsonb,
                                                           p_direct BOOLEAN DEFAULT FALSE, p_now BIGINT DEFAULT NULL,
                                                           p_flow BOOLEAN DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now            BIGINT := COALESCE(p_now, internal_current_time_ms());
    v_instance_id    TEXT;
    v_lock_ms        BIGINT := (p_claim->>'lockTimeoutMs')::BIGINT;
    v_name           TEXT;
    v_version        TEXT;
    v_leases         json;
    v_turn           json;
    v_committed      json;
    v_pinned         BOOLEAN;
    v_flow           BOOLEAN;
    v_limited        TEXT[] := ARRAY[]::TEXT[];
    -- Claim positions (1-based) of the activities under a limit, queued by internal_flow_enqueue.
    v_limited_at     BIGINT[] := ARRAY[]::BIGINT[];
    -- Claim positions of the activities the turn also cancels.
    v_cancelled_at   BIGINT[] := ARRAY[]::BIGINT[];
    v_position       BIGINT;
    v_lease          jsonb;
    v_limited_leases jsonb;
BEGIN
    IF p_claim IS NOT NULL THEN
        IF v_lock_ms IS NULL OR v_lock_ms <= 0 THEN
            RAISE EXCEPTION 'claim lock timeout must be a positive number of milliseconds, got %', v_lock_ms
                USING ERRCODE = 'DX003';
        END IF;
        -- An activity pinned to a session is refused below, once claimed: its worker_queue row's
        -- session_id is the parsed sessionId (a generated column), and the error undoes the ack.
        -- Under a flow limit it is refused before it is queued (a parked one would not show).
    END IF;

    IF p_direct THEN
        v_instance_id := p_ack->>'instanceId';
    ELSE
        -- The token's instance, read without a lock: internal_commit_orchestration_turn checks it under one.
        SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
        IF NOT FOUND AND p_claim IS NOT NULL THEN
            -- A repeat of an ack that committed: hand back the activities it claimed, still unfetched.
            SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
            FROM instances i WHERE i.instance_id = p_ack->>'instanceId';
            WITH reclaimed AS (
                UPDATE worker_queue w SET locked_until_ms = v_now + v_lock_ms
                WHERE w.lock_token = ANY (ARRAY(
                    SELECT internal_ack_token(p_lock_token) || ':' || n
                    FROM generate_series(1, jsonb_array_length(COALESCE(p_claim->'workerItems', '[]'::jsonb))) AS n))
                RETURNING w.id, w.work_item, w.lock_token, w.attempt_count, w.session_id)
            SELECT json_agg(internal_work_item_lease(c.work_item, c.lock_token, c.attempt_count, c.session_id,
                                                     v_name, v_version, FALSE, 0, v_now) ORDER BY c.id)
            INTO v_leases
            FROM reclaimed c;
            IF v_leases IS NOT NULL THEN
                RETURN json_build_object('instanceId', p_ack->>'instanceId', 'nowMs', v_now, 'claimedWorkItems', v_leases);
            END IF;
        ELSIF FOUND AND COALESCE(jsonb_array_length(p_ack->'orchestratorItems'), 0) = 0 THEN
            -- The usual turn sends no message: one advisory lock, no ordering to work out.
            PERFORM pg_advisory_xact_lock(internal_instance_advisory_key(v_instance_id));
        ELSIF FOUND THEN
            PERFORM internal_lock_instances_in_key_order(
                ARRAY[v_instance_id],
                ARRAY(SELECT o->>'targetInstance' FROM jsonb_array_elements(p_ack->'orchestratorItems') AS o));
        END IF;
    END IF;

    -- Flow control (flow.sql): the keys the turn and its claim take or release permits of, in key order.
    IF p_flow IS NULL THEN
        v_flow := EXISTS (SELECT 1 FROM flow_limits);
    ELSE
        v_flow := p_flow; -- a plain assignment: no statement
    END IF;
    IF v_flow THEN
        PERFORM internal_flow_lock_keys(internal_flow_turn_keys(p_ack, p_claim));
        -- An activity under a flow limit is claimed only with a permit: it takes a free one
        -- (claimed, under the token the claim below would give it) or is parked like any other,
        -- so a claim never bypasses the limit; one of a rated key is never claimed (its token is
        -- taken when it is fetched). Queued before the turn's own activities (a claim
        -- holds the first ones the turn schedules), so admission follows the order of
        -- scheduling; the turn's cancellations apply to it (a cancelled one gives its permit on).
        v_limited := ARRAY(SELECT f.flow_key FROM flow_limits f
                           WHERE f.flow_key = ANY (internal_flow_turn_keys(NULL, p_claim)));
        IF array_length(v_limited, 1) IS NOT NULL THEN
            IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_claim->'workerItems') AS w
                       WHERE (w->>'workItem')::json->>'sessionId' IS NOT NULL) THEN
                RAISE EXCEPTION 'activities pinned to a session cannot be claimed by an ack' USING ERRCODE = 'DX003';
            END IF;
            v_limited_at := ARRAY(SELECT n FROM jsonb_array_elements(p_claim->'workerItems') WITH ORDINALITY AS t(w, n)
                                  WHERE internal_flow_key(w->>'workItem') = ANY (v_limited));
            PERFORM internal_flow_enqueue(
                (SELECT jsonb_agg(jsonb_build_object(
                            'instanceId', w->>'instanceId', 'executionId', w->'executionId',
                            'activityId', w->'activityId', 'tag', w->>'tag', 'workItem', w->>'workItem',
                            'priority', w->'priority', 'claimIndex', n) ORDER BY n)
                 FROM jsonb_array_elements(p_claim->'workerItems') WITH ORDINALITY AS t(w, n)
                 WHERE n = ANY (v_limited_at)),
                v_now, internal_ack_token(p_lock_token), v_lock_ms);
        END IF;
    END IF;
    -- Assignments, not PERFORM or SELECT: an expression runs without a statement of its own.
    v_turn := internal_commit_orchestration_turn(p_lock_token, p_ack, v_now, p_direct, v_flow);
    IF p_ack->>'status' IN ('Completed', 'Failed') THEN
        v_committed := get_instance_status(v_instance_id);
    END IF;
    IF p_claim IS NULL THEN
        RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now, 'claimedWorkItems', '[]'::json,
                                 'committedStatus', v_committed);
    END IF;
    v_name := v_turn->>'orchestrationName';
    v_version := v_turn->>'orchestrationVersion';

    -- An activity the turn schedules and cancels is not claimed (nor left queued: the commit
    -- deleted what it queued). Worked out only when the turn cancels something, so that the claim
    -- below is a plain insert of the claimed positions.
    IF jsonb_array_length(COALESCE(p_ack->'cancelledActivities', '[]'::jsonb)) > 0 THEN
        v_cancelled_at := ARRAY(
            SELECT n FROM jsonb_array_elements(p_claim->'workerItems') WITH ORDINALITY AS t(w, n)
            WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(p_ack->'cancelledActivities') AS c(item)
                          WHERE c.item->>'instance' = w->>'instanceId'
                            AND (c.item->>'executionId')::BIGINT = (w->>'executionId')::BIGINT
                            AND (c.item->>'activityId')::BIGINT = (w->>'activityId')::BIGINT));
    END IF;
    -- No branch here depends on whether limits apply or the turn cancels (the arrays are empty
    -- then): a statement whose custom plan could fold such a branch away looks cheaper custom
    -- than generic, and PostgreSQL then plans it anew on every call (docs/sql.md, "Plans").
    WITH claimed AS (
        INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag, visible_at_ms,
                                  attempt_count, created_at_ms, lock_token, locked_until_ms, priority)
        SELECT w->>'workItem', w->>'instanceId', (w->>'executionId')::BIGINT, (w->>'activityId')::BIGINT,
               w->>'tag', v_now, 1, v_now, internal_ack_token(p_lock_token) || ':' || n, v_now + v_lock_ms,
               COALESCE(internal_json_priority(w), 0)
        FROM jsonb_array_elements(p_claim->'workerItems') WITH ORDINALITY AS t(w, n)
        WHERE n <> ALL (v_limited_at) AND n <> ALL (v_cancelled_at)
        ORDER BY n
        RETURNING id, work_item, lock_token, attempt_count, session_id)
    SELECT json_agg(internal_work_item_lease(c.work_item, c.lock_token, c.attempt_count, c.session_id,
                                             v_name, v_version, FALSE, 0, v_now) ORDER BY c.id),
           bool_or(c.session_id IS NOT NULL)
    INTO v_leases, v_pinned
    FROM claimed c;
    IF array_length(v_limited_at, 1) IS NOT NULL THEN
        -- The limited activities claimed with a permit before the commit (still there unless the
        -- turn cancelled them), first: queued earlier in this call, their ids are the lower ones.
        -- Looked up token by token, apart from the claim above, which then never reads
        -- worker_queue (docs/sql.md, "Plans": a lookup of a list of keys planned on a young
        -- table scans the whole table, on every call of that connection).
        v_limited_leases := '[]'::jsonb;
        FOREACH v_position IN ARRAY v_limited_at LOOP
            SELECT internal_work_item_lease(w.work_item, w.lock_token, w.attempt_count, w.session_id,
                                            v_name, v_version, FALSE, 0, v_now)::jsonb
            INTO v_lease
            FROM worker_queue w
            WHERE w.lock_token = internal_ack_token(p_lock_token) || ':' || v_position;
            IF FOUND THEN
                v_limited_leases := v_limited_leases || jsonb_build_array(v_lease);
            END IF;
        END LOOP;
        v_leases := (v_limited_leases || COALESCE(v_leases::jsonb, '[]'::jsonb))::json;
    END IF;
    IF v_pinned THEN
        RAISE EXCEPTION 'activities pinned to a session cannot be claimed by an ack' USING ERRCODE = 'DX003';
    END IF;

    RETURN json_build_object('instanceId', v_instance_id, 'nowMs', v_now,
                             'claimedWorkItems', COALESCE(v_leases, '[]'::json), 'committedStatus', v_committed);
END;
$$;

-- ack_orchestration_items: commits several turns in one call (group commit). Each element of
-- p_acks (at most 100), {lockToken, ack, claim}, is committed exactly as ack_orchestration_item
-- commits it, in its own subtransaction, so one turn refused (lock lost, invalid, duplicate
-- event) leaves the others committed.
-- Lock order: first the advisory locks of every element in ascending key order (exclusive: the
-- instances whose locks are released; shared: the instances they send messages to), then the
-- flow_limits rows every element touches (ascending), then element by element as
-- ack_orchestration_item (whose own advisory and flow locks are then already held).
-- Errors: DX003 when p_acks is not an array of at most 100 elements; per element, its SQLSTATE
-- (DX001, DX003, 23505, ...) is reported in the result instead of raised.
-- Returns: json array in input order of {ok: true, instanceId, claimedWorkItems, committedStatus}
-- (as ack_orchestration_item returns them) or {ok: false, code, message}.
CREATE OR REPLACE FUNCTION ack_orchestration_items(p_acks json) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_acks    jsonb := p_acks;
    v_element jsonb;
    v_flow    BOOLEAN;
    v_result  json;
    v_results json[] := ARRAY[]::json[];
BEGIN
    IF v_acks IS NULL OR jsonb_typeof(v_acks) <> 'array' OR jsonb_array_length(v_acks) > 100 THEN
        RAISE EXCEPTION 'acks must be a json array of at most 100 elements' USING ERRCODE = 'DX003';
    END IF;

    PERFORM internal_lock_instances_in_key_order(
        ARRAY(SELECT l.instance_id FROM jsonb_array_elements(v_acks) AS e
              JOIN instance_locks l ON l.lock_token = e->>'lockToken'),
        ARRAY(SELECT o->>'targetInstance' FROM jsonb_array_elements(v_acks) AS e,
                     jsonb_array_elements(COALESCE(e->'ack'->'orchestratorItems', '[]'::jsonb)) AS o));
    -- Flow control (flow.sql): every element's keys at once, in key order; read once for the call.
    v_flow := EXISTS (SELECT 1 FROM flow_limits);
    IF v_flow THEN
        PERFORM internal_flow_lock_keys(ARRAY(
            SELECT DISTINCT k FROM jsonb_array_elements(v_acks) AS e,
                   unnest(internal_flow_turn_keys(e->'ack', CASE WHEN jsonb_typeof(e->'claim') = 'object' THEN e->'claim' END)) AS k));
    END IF;

    FOR v_element IN SELECT e FROM jsonb_array_elements(v_acks) AS e LOOP
        BEGIN
            v_result := internal_ack_orchestration_item(v_element->>'lockToken', v_element->'ack',
                                                        CASE WHEN jsonb_typeof(v_element->'claim') = 'object' THEN v_element->'claim' END,
                                                        p_flow => v_flow);
            v_results := v_results || json_build_object('ok', TRUE, 'instanceId', v_result->'instanceId',
                                                        'claimedWorkItems', v_result->'claimedWorkItems',
                                                        'committedStatus', v_result->'committedStatus');
        EXCEPTION WHEN OTHERS THEN
            v_results := v_results || json_build_object('ok', FALSE, 'code', SQLSTATE, 'message', SQLERRM);
        END;
    END LOOP;
    RETURN array_to_json(v_results);
END;
$$;

-- abandon_orchestration_item: releases an instance lock without committing anything. The batch
-- becomes fetchable again; with p_delay_ms > 0 it becomes visible only after the delay, without
-- a delay visibility is left exactly as it was (never pushed later); p_ignore_attempt gives back
-- the delivery counted by the fetch, never below 0.
-- Lock order: the instance's advisory lock (exclusive, waited for: releasing the lock may make
-- waiting messages fetchable, see notifications.sql) -> instance_locks row (DELETE) -> the
-- tagged orchestrator_queue rows.
-- Errors: DX001 for a lock token that is unknown, released or taken over.
-- Returns: {instanceId}.
CREATE OR REPLACE FUNCTION abandon_orchestration_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now         BIGINT := internal_current_time_ms();
    v_instance_id TEXT;
    v_ready       BIGINT;
    v_earliest    BIGINT;
BEGIN
    -- The token's instance, read without a lock, then its advisory lock before the release.
    SELECT l.instance_id INTO v_instance_id FROM instance_locks l WHERE l.lock_token = p_lock_token;
    IF FOUND THEN
        PERFORM pg_advisory_xact_lock(internal_instance_advisory_key(v_instance_id));
    END IF;

    DELETE FROM instance_locks WHERE lock_token = p_lock_token RETURNING instance_id INTO v_instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: unknown or already released' USING ERRCODE = 'DX001';
    END IF;
    -- Messages that arrived during the turn (the batch, still tagged, is announced below).
    PERFORM internal_announce_released_instance(v_instance_id, v_now);

    WITH released AS (
        UPDATE orchestrator_queue
        SET lock_token = NULL,
            visible_at_ms = CASE WHEN COALESCE(p_delay_ms, 0) > 0 THEN v_now + p_delay_ms ELSE visible_at_ms END,
            attempt_count = CASE WHEN COALESCE(p_ignore_attempt, FALSE) THEN GREATEST(0, attempt_count - 1)
                                 ELSE attempt_count END
        WHERE lock_token = p_lock_token
        RETURNING instance_id, visible_at_ms)
    SELECT count(DISTINCT r.instance_id) FILTER (WHERE r.visible_at_ms <= v_now),
           min(r.visible_at_ms) FILTER (WHERE r.visible_at_ms > v_now)
    INTO v_ready, v_earliest
    FROM released r;
    PERFORM internal_announce_queue('o', v_ready, v_earliest, v_now);

    RETURN json_build_object('instanceId', v_instance_id);
END;
$$;

-- renew_orchestration_item_lock: extends a held, unexpired instance lock to now + p_extend_ms
-- (milliseconds, no truncation). An expired, released or taken-over lock is never revived.
-- Lock order: the instance_locks row.
-- Errors: DX001 for a lock that is unknown, released, taken over or expired; DX003 for p_extend_ms <= 0.
-- Returns: {instanceId, lockedUntilMs}.
CREATE OR REPLACE FUNCTION renew_orchestration_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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

-- enqueue_orchestrator_work: enqueues one message for an orchestration (never creates the
-- instance: only an ack does). Visible at now + p_delay_ms; a TimerFired (p_fire_at_ms > 0) is
-- visible at its fire time, or at the later of fire time and now + delay when a delay is given.
-- Flow control (flow.sql): a StartOrchestration whose work item carries a flowKey takes a permit
-- of that key or is parked instead of queued (then id is NULL); a CancelInstance of a parked
-- instance queues its start without a permit first, so the first turn ends it cancelled.
-- Priority (migration 0103): a start's comes from its work item ("priority", default 0); any
-- other message takes its instance's (0 for an instance that does not exist yet).
-- Lock order: the target instance's advisory lock, shared (waits for an ack or abandon releasing
-- that instance, so either its release sees this message or this message's notification finds
-- the instance free) -> for a start with a flowKey or a cancellation of a parked start, the
-- key's flow_limits row -> its permit or parked row; no lock on existing queue rows (plain insert).
-- Errors: DX003 for a flowKey that is empty or over 512 bytes, or a priority outside 0..9; DX004
-- for a flowKey with a rate limit (nothing is written).
-- Returns: {id, visibleAtMs, parked}.
CREATE OR REPLACE FUNCTION enqueue_orchestrator_work(p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                   p_delay_ms BIGINT, p_fire_at_ms BIGINT)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
    v_visible  BIGINT := v_now + GREATEST(COALESCE(p_delay_ms, 0), 0);
    v_id       BIGINT;
    v_flow_key TEXT;
    v_priority SMALLINT := internal_item_priority(p_work_item);
BEGIN
    PERFORM pg_advisory_xact_lock_shared(internal_instance_advisory_key(p_instance_id));
    IF p_kind = 'StartOrchestration' AND strpos(p_work_item, '"flowKey"') > 0 THEN
        v_flow_key := internal_flow_start_key(p_work_item);
        IF v_flow_key IS NOT NULL AND internal_flow_start(p_instance_id, v_flow_key, p_work_item, v_now) = 'parked' THEN
            RETURN json_build_object('id', NULL, 'visibleAtMs', NULL, 'parked', TRUE);
        END IF;
    END IF;
    IF p_kind = 'CancelInstance' THEN
        PERFORM internal_flow_unpark_cancelled(p_instance_id, v_now);
    END IF;
    IF p_fire_at_ms IS NOT NULL AND p_fire_at_ms > 0 THEN
        v_visible := CASE WHEN COALESCE(p_delay_ms, 0) > 0 THEN GREATEST(p_fire_at_ms, v_visible)
                          ELSE p_fire_at_ms END;
    END IF;
    IF v_priority IS NULL AND p_kind <> 'StartOrchestration' THEN
        SELECT i.priority INTO v_priority FROM instances i WHERE i.instance_id = p_instance_id;
    END IF;
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, priority)
    VALUES (p_instance_id, p_kind, p_work_item, v_visible, 0, v_now, COALESCE(v_priority, 0))
    RETURNING id INTO v_id;
    PERFORM internal_announce_queue('o', CASE WHEN v_visible <= v_now THEN 1 ELSE 0 END,
                                    CASE WHEN v_visible > v_now THEN v_visible END, v_now);
    RETURN json_build_object('id', v_id, 'visibleAtMs', v_visible, 'parked', FALSE);
END;
$$;

-- start_orchestration_claimed: enqueues the StartOrchestration message p_work_item of
-- p_instance_id and, when the instance is free now (no other writer in progress, not locked,
-- pinned version in range), locks its first turn for the caller in the same transaction (eager
-- start: a client whose process runs a turn worker with nothing to do saves the notification and
-- the fetch). p_claim_turn = {lockTimeoutMs, minVersion?, maxVersion?} as ack_work_item's.
-- Otherwise the message is queued and announced exactly as enqueue_orchestrator_work queues it
-- (at the work item's priority). A start with a flowKey takes its permit first (flow.sql) or is
-- parked, and then claims nothing.
-- Lock order: the advisory lock of p_instance_id (TRIED exclusively; when busy, taken shared and
-- waited for, as enqueue_orchestrator_work) -> for a start with a flowKey, the key's flow_limits
-- row -> its permit or parked row -> the claimed batch as internal_lock_orchestration_batch.
-- Errors: DX003 for an invalid claim, flowKey or a priority outside 0..9; DX004 for a flowKey
-- with a rate limit.
-- Returns: {claimedTurn: batch as fetch_orchestration_item returns it, or NULL}.
CREATE OR REPLACE FUNCTION start_orchestration_claimed(p_instance_id TEXT, p_work_item TEXT, p_claim_turn json)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
    v_lock_ms BIGINT := (p_claim_turn->>'lockTimeoutMs')::BIGINT;
    v_range   RECORD;
    v_key     BIGINT := internal_instance_advisory_key(p_instance_id);
    v_id       BIGINT;
    v_turn     json;
    v_flow_key TEXT;
    v_priority SMALLINT := COALESCE(internal_item_priority(p_work_item), 0);
BEGIN
    IF v_lock_ms IS NULL OR v_lock_ms <= 0 THEN
        RAISE EXCEPTION 'claim lock timeout must be a positive number of milliseconds, got %', v_lock_ms
            USING ERRCODE = 'DX003';
    END IF;
    SELECT * INTO v_range FROM internal_parse_version_range(p_claim_turn->>'minVersion', p_claim_turn->>'maxVersion');
    IF strpos(p_work_item, '"flowKey"') > 0 THEN
        v_flow_key := internal_flow_start_key(p_work_item);
    END IF;
    IF NOT pg_try_advisory_xact_lock(v_key)
       OR EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = p_instance_id AND l.locked_until_ms > v_now) THEN
        PERFORM pg_advisory_xact_lock_shared(v_key);
        IF v_flow_key IS NOT NULL AND internal_flow_start(p_instance_id, v_flow_key, p_work_item, v_now) = 'parked' THEN
            RETURN json_build_object('claimedTurn', NULL);
        END IF;
        INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, priority)
        VALUES (p_instance_id, 'StartOrchestration', p_work_item, v_now, 0, v_now, v_priority);
        PERFORM internal_announce_queue('o', 1, NULL, v_now);
        RETURN json_build_object('claimedTurn', NULL);
    END IF;
    IF v_flow_key IS NOT NULL AND internal_flow_start(p_instance_id, v_flow_key, p_work_item, v_now) = 'parked' THEN
        RETURN json_build_object('claimedTurn', NULL);
    END IF;
    -- Inserted pre-tagged and not announced; internal_lock_orchestration_batch re-tags it.
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, lock_token, priority)
    VALUES (p_instance_id, 'StartOrchestration', p_work_item, v_now, 0, v_now, 'claim:' || gen_random_uuid(), v_priority)
    RETURNING id INTO v_id;
    v_turn := internal_lock_orchestration_batch(p_instance_id, v_key, v_lock_ms, v_range.out_min, v_range.out_max, v_now);
    IF v_turn IS NULL THEN
        -- Not claimable after all (version filter): queue and announce it like any start.
        UPDATE orchestrator_queue SET lock_token = NULL WHERE id = v_id;
        PERFORM internal_announce_queue('o', 1, NULL, v_now);
    END IF;
    RETURN json_build_object('claimedTurn', v_turn);
END;
$$;

-- start_orchestration_with_turn: fused start. Starts p_instance_id with the StartOrchestration
-- message p_work_item and, in the same transaction, commits its first turn, which the caller ran
-- in-process on an empty history with that message alone. p_turn = {nowMs, ack, claim}: the
-- store clock the turn ran at as the caller estimated it, and ack_orchestration_item's p_ack and
-- p_claim (claim may be null). The turn is committed only when it is exactly the turn a fetch
-- would hand out: under the instance's advisory lock, taken exclusively, the instance has no row,
-- no message queued (visible or not), no instance_locks row and no parked start; and when nowMs
-- is at most 2 s behind this call's clock and 100 ms ahead of it (the estimate lags by about a
-- round trip; further off, the turn's events and timers would be dated by a stale clock, as after
-- a test clock moved). The start message is then never queued and no instance lock is written
-- (a direct commit, as ack_work_item_with_turn's). Otherwise the turn is dropped and the start is
-- queued and announced as enqueue_orchestrator_work queues it (the caller's runtime runs the turn
-- again on a fetch; a repeated start of an existing instance is ignored by its turn, as always).
-- A start with a flowKey is never fused: its permit is taken by enqueue_orchestrator_work.
-- Repeats: a repeat of a call that committed, its reply lost, finds the instance and queues the
-- start again (ignored by the turn); the activities the first call claimed run when their lease
-- expires, as those of any ack whose reply was lost.
-- Lock order: the instance's advisory lock (TRIED exclusively; when busy, taken shared and waited
-- for, as enqueue_orchestrator_work) -> then as ack_orchestration_item's direct commit: the
-- flow_limits rows of the keys the turn touches (ascending) -> instances -> executions (insert)
-- -> history -> kv rows -> worker_queue rows (insert) -> orchestrator_queue rows (insert,
-- messages to itself only).
-- Errors: DX003 for a missing turn, a work item that is not this instance's start of execution 1
-- or carries a flowKey, an ack of another instance or execution or whose history does not start
-- with OrchestrationStarted, a turn that sends messages to another instance; as
-- ack_orchestration_item for the turn (DX003, 23505), in which case nothing is written.
-- Returns: {instanceId, fused: true, claimedWorkItems, committedStatus, nowMs} when the turn was
-- committed (as ack_orchestration_item returns them), else {instanceId, fused: false, nowMs}; nowMs
-- is this call's clock, for the caller to date its next fused start by.
CREATE OR REPLACE FUNCTION start_orchestration_with_turn(p_instance_id TEXT, p_work_item TEXT, p_turn json)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_key       BIGINT := internal_instance_advisory_key(p_instance_id);
    v_exclusive BOOLEAN := pg_try_advisory_xact_lock(v_key);
BEGIN
    IF NOT v_exclusive THEN
        PERFORM pg_advisory_xact_lock_shared(v_key);
    END IF;
    RETURN internal_start_orchestration_with_turn(p_instance_id, p_work_item, p_turn::jsonb, v_exclusive,
                                                  EXISTS (SELECT 1 FROM flow_limits));
END;
$$;

-- start_orchestrations_with_turns: several fused starts in one call (group commit). Each element
-- of p_starts (at most 100), {instanceId, workItem, turn}, is handled exactly as
-- start_orchestration_with_turn handles its arguments, in its own subtransaction, so one element
-- refused (invalid, a duplicate event id, even a deadlock) leaves the others committed. Elements
-- run in input order; a second start of one instance finds the first's and is queued.
-- Lock order: first the advisory locks of every element's instance in ascending key order (TRIED
-- exclusively, else shared and waited for), then the flow_limits rows of every key the elements'
-- turns and claims touch (ascending), then element by element as start_orchestration_with_turn
-- (whose advisory and flow locks are then already held).
-- Errors: DX003 when p_starts is not an array of at most 100 elements; per element, its SQLSTATE
-- is reported in the result instead of raised, so the caller can tell retryable from permanent.
-- Returns: json array in input order of start_orchestration_with_turn's result with ok: true, or
-- {ok: false, code, message}.
CREATE OR REPLACE FUNCTION start_orchestrations_with_turns(p_starts json) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_starts    jsonb := p_starts; -- parsed once: each field read of a json value parses it all again
    v_exclusive BIGINT[];
    v_flow      BOOLEAN;
    v_start     jsonb;
    v_result    json;
    v_results   json[] := ARRAY[]::json[];
BEGIN
    IF v_starts IS NULL OR jsonb_typeof(v_starts) <> 'array' OR jsonb_array_length(v_starts) > 100 THEN
        RAISE EXCEPTION 'starts must be a json array of at most 100 elements' USING ERRCODE = 'DX003';
    END IF;

    v_exclusive := internal_try_instance_locks_in_key_order(
        ARRAY(SELECT a->>'instanceId' FROM jsonb_array_elements(v_starts) AS a));
    -- Flow control (flow.sql): every key an element's turn would lock, at once and in key order;
    -- read once for the call.
    v_flow := EXISTS (SELECT 1 FROM flow_limits);
    IF v_flow THEN
        PERFORM internal_flow_lock_keys(internal_flow_group_turn_keys(v_starts));
    END IF;

    FOR v_start IN SELECT a FROM jsonb_array_elements(v_starts) AS a LOOP
        BEGIN
            v_result := internal_start_orchestration_with_turn(
                v_start->>'instanceId', v_start->>'workItem',
                CASE WHEN jsonb_typeof(v_start->'turn') = 'object' THEN v_start->'turn' END,
                internal_instance_advisory_key(v_start->>'instanceId') = ANY (v_exclusive), v_flow);
            v_results := v_results || (v_result::jsonb || '{"ok": true}'::jsonb)::json;
        EXCEPTION WHEN OTHERS THEN
            v_results := v_results || json_build_object('ok', FALSE, 'code', SQLSTATE, 'message', SQLERRM);
        END;
    END LOOP;
    RETURN array_to_json(v_results);
END;
$$;

-- The body of start_orchestration_with_turn, for a caller that holds the instance's advisory
-- lock: exclusively (p_exclusive, the turn may be committed) or shared (the start is queued).
-- p_flow: whether flow limits exist, read once by the calling procedure for its whole call.
DROP FUNCTION IF EXISTS internal_start_orchestration_with_turn(TEXT, TEXT, jsonb, BOOLEAN);
CREATE OR REPLACE FUNCTION internal_start_orchestration_with_turn(p_instance_id TEXT, p_work_item TEXT, p_turn jsonb,
                                                                  p_exclusive BOOLEAN, p_flow BOOLEAN)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_item     json := p_work_item::json;
    v_now      BIGINT;
    v_priority SMALLINT := COALESCE(internal_item_priority(p_work_item), 0);
    v_commit   json;
BEGIN
    IF p_turn IS NULL OR jsonb_typeof(p_turn->'ack') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'a fused start needs the turn run on it' USING ERRCODE = 'DX003';
    END IF;
    IF v_item->>'type' IS DISTINCT FROM 'StartOrchestration'
       OR v_item->>'instance' IS DISTINCT FROM p_instance_id
       OR (v_item->>'executionId')::BIGINT IS DISTINCT FROM 1
       OR strpos(p_work_item, '"flowKey"') > 0 THEN
        RAISE EXCEPTION 'a fused start takes the start of execution 1 of its instance, without a flowKey'
            USING ERRCODE = 'DX003';
    END IF;
    -- The commit inserts the executions row of a turn that appends OrchestrationStarted.
    IF p_turn->'ack'->>'instanceId' IS DISTINCT FROM p_instance_id
       OR (p_turn->'ack'->>'executionId')::BIGINT IS DISTINCT FROM 1
       OR p_turn->'ack'->'history'->0->>'eventType' IS DISTINCT FROM 'OrchestrationStarted' THEN
        RAISE EXCEPTION 'a fused start commits the first turn of execution 1 of its own instance, which starts with OrchestrationStarted'
            USING ERRCODE = 'DX003';
    END IF;
    -- Nested IFs: a turn that sends nothing (most) runs no statement for the check.
    IF COALESCE(p_turn->'ack'->'orchestratorItems', '[]'::jsonb) <> '[]'::jsonb THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_turn->'ack'->'orchestratorItems') AS o
                   WHERE o->>'targetInstance' IS DISTINCT FROM p_instance_id) THEN
            RAISE EXCEPTION 'a fused start''s turn may send messages only to its own instance' USING ERRCODE = 'DX003';
        END IF;
    END IF;

    v_now := internal_current_time_ms();
    IF p_exclusive
       AND (p_turn->>'nowMs')::BIGINT BETWEEN v_now - 2000 AND v_now + 100
       AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = p_instance_id)
       AND NOT EXISTS (SELECT 1 FROM orchestrator_queue q WHERE q.instance_id = p_instance_id)
       AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = p_instance_id)
       AND NOT EXISTS (SELECT 1 FROM flow_parked_starts s WHERE s.instance_id = p_instance_id) THEN
        v_commit := internal_ack_orchestration_item('start:' || gen_random_uuid(), p_turn->'ack',
                                                    CASE WHEN jsonb_typeof(p_turn->'claim') = 'object'
                                                         THEN p_turn->'claim' END,
                                                    TRUE, v_now, p_flow);
        RETURN json_build_object('instanceId', p_instance_id, 'fused', TRUE,
                                 'claimedWorkItems', v_commit->'claimedWorkItems',
                                 'committedStatus', v_commit->'committedStatus', 'nowMs', v_now);
    END IF;
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, priority)
    VALUES (p_instance_id, 'StartOrchestration', p_work_item, v_now, 0, v_now, v_priority);
    PERFORM internal_announce_queue('o', 1, NULL, v_now);
    RETURN json_build_object('instanceId', p_instance_id, 'fused', FALSE, 'nowMs', v_now);
END;
$$;
