-- Activity work items: enqueue, fetch (tags, sessions, batches, group fetch), ack (single and group commit,
-- with an optional claim of the turn the completion makes ready, or fused with that turn), renew,
-- abandon.
-- Conventions: docs/sql.md. Lock order of every worker-queue procedure: the advisory lock of the
-- completion's instance (ack only) -> worker_queue rows (ascending id) -> the sessions row(s).

-- enqueue_worker_work: enqueues an activity, visible at once and unlocked, at the priority level
-- its work item carries (default 0); under a flow limit (flow.sql) it takes a permit or is parked.
-- Lock order: the key's flow_limits row when it has a limit; no existing queue row.
-- Errors: DX003 for a priority outside 0..9 (nothing is written).
-- Returns: {id} (null for a parked activity).
CREATE OR REPLACE FUNCTION enqueue_worker_work(p_instance_id TEXT, p_execution_id BIGINT, p_activity_id BIGINT,
                                               p_tag TEXT, p_work_item TEXT)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now      BIGINT := internal_current_time_ms();
    v_id       BIGINT;
    v_priority SMALLINT := internal_item_priority(p_work_item);
BEGIN
    IF EXISTS (SELECT 1 FROM flow_limits) THEN
        IF internal_flow_enqueue(jsonb_build_array(jsonb_build_object(
               'instanceId', p_instance_id, 'executionId', p_execution_id, 'activityId', p_activity_id,
               'tag', p_tag, 'workItem', p_work_item, 'priority', v_priority)), v_now) = 0 THEN
            SELECT max(w.id) INTO v_id FROM worker_queue w
            WHERE w.instance_id = p_instance_id AND w.execution_id = p_execution_id AND w.activity_id = p_activity_id;
        END IF;
        RETURN json_build_object('id', v_id);
    END IF;
    INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag,
                              visible_at_ms, attempt_count, created_at_ms, priority)
    VALUES (p_work_item, p_instance_id, p_execution_id, p_activity_id, p_tag, v_now, 0, v_now, COALESCE(v_priority, 0))
    RETURNING id INTO v_id;
    PERFORM internal_announce_queue('w', 1, NULL, v_now);
    RETURN json_build_object('id', v_id);
END;
$$;

-- fetch_work_item: locks up to p_max_items (default 1) of the best-ranked visible work items that
-- are unlocked (or whose lease expired) and match the tag filter and the session rule, each under
-- its own lock token (rank, migration 0103: the time the item became visible minus one minute
-- per priority level, so higher levels first and FIFO within a level; the scan is bounded by
-- rank_ms <= now); each delivery increments attempt_count, and a re-delivery after an expired
-- lease gets a new token, so the old holder's ack and renew fail.
-- Tag filter: defaultOnly = untagged, any = everything, none = nothing, tags = tag in p_tags,
-- defaultAnd = untagged or tag in p_tags.
-- Session rule: without p_owner_id only items without a session are eligible. With an owner, an
-- item is eligible when it has no session, or its session is owned by p_owner_id, or its session
-- is unowned or expired (only when p_claim_new_sessions is not FALSE: a runtime at its session
-- capacity still serves the sessions it owns); fetching a session item claims (or refreshes) the
-- session for the owner until now + p_session_lock_timeout_ms (p_lock_timeout_ms when NULL) and
-- stamps its activity. A session is never owned by two identities at once (the claim is an
-- upsert that only overwrites an expired or self-owned row); a lost session claim gives the row
-- back untouched and the loop tries the next candidate instead of returning nothing.
-- Clock: visibility is filtered with internal_wall_clock_ms(), read by the scan after its
-- snapshot, so every item committed before the scan is seen (see internal.sql).
-- Rate limits (flow.sql): an item of a rated key is fetched only with a token of its key's
-- bucket; without one, the key's fetchable items are deferred to the next token times (announced
-- with their due time) and the next candidate is tried.
-- Announcements: taking over an item whose lease ran out announces one more item ('w'), since
-- the fetch may have been woken for another one that its caller then no longer looks for.
-- Lock order: worker_queue rows (FOR UPDATE SKIP LOCKED: concurrent workers never get the same
-- row and never wait for each other) -> the flow_limits row of a rated key (waited for; the one
-- place a flow_limits row is taken after a worker_queue row: a cycle needs a release or a
-- cancellation of the very row being fetched, and PostgreSQL breaks it) -> the key's other
-- fetchable rows (SKIP LOCKED) -> the sessions row.
-- Errors: DX003 for a lock timeout <= 0, an unknown tag mode, bad tags or max items.
-- Returns: json array (possibly empty) of {workItem, lockToken, attemptCount,
-- orchestrationName, orchestrationVersion, sessionId, sessionTakenOver, waitedMs, nowMs}, best
-- first; waitedMs is how long the item had been visible; sessionTakenOver is true when the item's session was another owner's whose lock lapsed (no
-- statement announces that, so the caller knows a departed owner blocked it).
CREATE OR REPLACE FUNCTION fetch_work_item(p_lock_timeout_ms BIGINT, p_tag_mode TEXT, p_tags json,
                                           p_owner_id TEXT, p_session_lock_timeout_ms BIGINT,
                                           p_max_items INTEGER, p_claim_new_sessions BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now        BIGINT;
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
    v_taken_over BOOLEAN;
    v_flow_key   TEXT;
    v_due        BIGINT;
    v_lapsed     BOOLEAN;
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
        v_now := internal_wall_clock_ms();
        -- One clock read for both bounds of the rank index, after the statement's snapshot.
        WITH clock AS MATERIALIZED (SELECT internal_wall_clock_ms() AS now_ms)
        SELECT w.id, w.session_id, w.flow_key, w.lock_token IS NOT NULL INTO v_id, v_session, v_flow_key, v_lapsed
        FROM worker_queue w
        LEFT JOIN sessions s ON s.session_id = w.session_id AND s.locked_until_ms > v_now
        WHERE w.rank_ms <= (SELECT c.now_ms FROM clock c)
          AND w.visible_at_ms <= (SELECT c.now_ms FROM clock c)
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
        ORDER BY w.rank_ms, w.visible_at_ms, w.id
        LIMIT 1
        FOR UPDATE OF w SKIP LOCKED;
        EXIT WHEN NOT FOUND;

        -- Rate limit (flow.sql): an activity of a rated key needs a token; without one, the key's
        -- fetchable activities are deferred to the next token times (announced) and the next
        -- candidate is tried. Other activities read nothing more. The token is taken before the
        -- session claim below: a lost session race spends it (never more dispatches than tokens).
        IF v_flow_key IS NOT NULL THEN
            v_due := internal_flow_take_token(v_flow_key);
            IF v_due > 0 THEN
                PERFORM internal_flow_defer(v_flow_key, v_due, v_now);
                v_skipped := v_skipped || v_id;
                CONTINUE;
            ELSIF v_due = 0 THEN
                PERFORM internal_flow_announce_next(v_flow_key, v_now);
            END IF;
        END IF;

        v_taken_over := FALSE;
        IF v_session IS NOT NULL THEN
            -- Whether the session was another owner's, whose lock lapsed: no statement announced
            -- that, so the caller knows this item was blocked by a dead or departed owner.
            SELECT s.worker_id IS DISTINCT FROM p_owner_id INTO v_taken_over
            FROM sessions s WHERE s.session_id = v_session;
            v_taken_over := COALESCE(v_taken_over, FALSE);
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
        IF v_lapsed THEN
            -- A lease that ran out is taken over, and nothing announced it: this fetch may have
            -- been woken for another item, which the caller then no longer looks for (one
            -- announcement wakes one fetch). Announce one more, so that item is not left to the
            -- safety fetch; at worst a fetch finds nothing.
            PERFORM internal_announce_queue('w', 1, NULL, v_now);
        END IF;

        SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
        FROM instances i WHERE i.instance_id = v_row.instance_id;

        v_leases := v_leases || internal_work_item_lease(v_row.work_item, v_row.lock_token, v_row.attempt_count,
                                                         v_row.session_id, v_name, v_version, v_taken_over,
                                                         GREATEST(v_now - v_row.visible_at_ms, 0), v_now);
    END LOOP;

    RETURN array_to_json(v_leases);
END;
$$;

-- fetch_work_item_group: the fetches of several workers in one call (group fetch). Each element of
-- p_requests, {lockTimeoutMs, tagMode, tags, ownerId, sessionLockTimeoutMs, claimNewSessions}
-- (fetch_work_item's arguments), is served in order exactly as fetch_work_item serves it alone
-- with p_max_items = 1: its own tag filter and session rule, its own lock token. A later request
-- never gets an item an earlier one got (the earlier lease is visible to the later scan), so the
-- best-ranked items go to the first requests.
-- Lock order: as fetch_work_item, request after request.
-- Errors: DX003 when p_requests is not an array of 1 to 1000 requests, or for a request
-- fetch_work_item refuses (nothing is leased then).
-- Returns: json array in input order of a lease (as fetch_work_item's elements) or null.
CREATE OR REPLACE FUNCTION fetch_work_item_group(p_requests json) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_leases  json[] := ARRAY[]::json[];
    v_request json;
BEGIN
    IF p_requests IS NULL OR json_typeof(p_requests) <> 'array'
       OR json_array_length(p_requests) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'fetch requests must be an array of 1 to 1000 requests' USING ERRCODE = 'DX003';
    END IF;
    FOR v_request IN SELECT r FROM json_array_elements(p_requests) AS r LOOP
        v_leases := v_leases || (fetch_work_item((v_request->>'lockTimeoutMs')::BIGINT, v_request->>'tagMode',
                                                 v_request->'tags', v_request->>'ownerId',
                                                 (v_request->>'sessionLockTimeoutMs')::BIGINT, 1,
                                                 (v_request->>'claimNewSessions')::BOOLEAN) -> 0);
    END LOOP;
    RETURN array_to_json(v_leases);
END;
$$;

-- ack_work_item's body. With p_with_state FALSE a claimed turn comes without its history and KV
-- snapshot (internal_lock_orchestration_batch): ack_work_item_with_turn reads them only when it
-- hands the turn out instead of committing the one it was given.
CREATE OR REPLACE FUNCTION internal_ack_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                  p_claim_turn json, p_with_state BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now      BIGINT := internal_current_time_ms();
    v_lock_ms  BIGINT := (p_claim_turn->>'lockTimeoutMs')::BIGINT;
    v_range    RECORD;
    v_key      BIGINT;
    v_claiming BOOLEAN := FALSE;
    v_result   json;
    v_id       BIGINT;
    v_turn     json;
BEGIN
    IF p_work_item IS NULL THEN
        RETURN internal_finish_work_item(p_lock_token, NULL, NULL, NULL, v_now);
    END IF;
    v_key := internal_instance_advisory_key(p_instance_id);
    IF p_claim_turn IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.lock_token = p_lock_token)
           AND EXISTS (SELECT 1 FROM instance_locks l WHERE l.lock_token = internal_ack_token(p_lock_token))
           AND pg_try_advisory_xact_lock(v_key) THEN
            -- A repeat of an ack that committed: give back the turn it claimed.
            PERFORM abandon_orchestration_item(internal_ack_token(p_lock_token), 0, TRUE);
            RETURN json_build_object('instanceId', p_instance_id, 'claimedTurn', NULL);
        END IF;
        IF v_lock_ms IS NULL OR v_lock_ms <= 0 THEN
            RAISE EXCEPTION 'claim lock timeout must be a positive number of milliseconds, got %', v_lock_ms
                USING ERRCODE = 'DX003';
        END IF;
        SELECT * INTO v_range FROM internal_parse_version_range(p_claim_turn->>'minVersion', p_claim_turn->>'maxVersion');
        IF pg_try_advisory_xact_lock(v_key) THEN
            v_claiming := NOT EXISTS (SELECT 1 FROM instance_locks l
                                      WHERE l.instance_id = p_instance_id AND l.locked_until_ms > v_now);
        END IF;
    END IF;
    IF NOT v_claiming THEN
        PERFORM pg_advisory_xact_lock_shared(v_key);
        v_result := internal_finish_work_item(p_lock_token, p_instance_id, p_kind, p_work_item, v_now);
        RETURN json_build_object('instanceId', v_result->>'instanceId', 'claimedTurn', NULL);
    END IF;

    v_result := internal_finish_work_item(p_lock_token, NULL, NULL, NULL, v_now);
    -- Inserted pre-tagged and not announced; internal_lock_orchestration_batch re-tags it.
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, lock_token,
                                    priority)
    VALUES (p_instance_id, p_kind, p_work_item, v_now, 0, v_now, 'claim:' || p_lock_token,
            (v_result->>'priority')::SMALLINT)
    RETURNING id INTO v_id;
    v_turn := internal_lock_orchestration_batch(p_instance_id, v_key, v_lock_ms, v_range.out_min, v_range.out_max, v_now,
                                                internal_ack_token(p_lock_token), p_with_state);
    IF v_turn IS NULL THEN
        -- Not claimable after all (version filter, emptied batch): queue and announce it like any completion.
        UPDATE orchestrator_queue SET lock_token = NULL WHERE id = v_id;
        PERFORM internal_announce_queue('o', 1, NULL, v_now);
    END IF;
    RETURN json_build_object('instanceId', v_result->>'instanceId', 'claimedTurn', v_turn);
END;
$$;

-- ack_work_item: deletes a locked work item and, when p_work_item is given, enqueues its
-- completion for p_instance_id, atomically (internal_finish_work_item). With p_claim_turn =
-- {lockTimeoutMs, minVersion?, maxVersion?} and a completion, the turn the completion makes
-- ready is locked for the caller in the same transaction when the instance is free now (not
-- locked, no other writer in progress, pinned version in range) and returned as
-- fetch_orchestration_item returns it; the completion is then never announced.
-- Lock order: the advisory lock of p_instance_id (TRIED exclusively when a claim is asked for,
-- else shared and waited for) -> worker_queue row (DELETE) -> sessions row -> the claimed
-- batch as internal_lock_orchestration_batch.
-- Repeats: a claimed turn is locked under internal_ack_token(p_lock_token), so a repeat of an ack that
-- committed (its reply lost, e.g. in a failover) is recognised: it finds its work item gone but
-- the turn it claimed still locked, and releases that turn (announced like any release) instead
-- of leaving it locked for nobody until the lock runs out; it returns claimedTurn NULL.
-- Errors: DX001 for a token that is unknown, already acknowledged, withdrawn by a cancellation,
-- taken over or expired; DX003 for an invalid claim.
-- Returns: {instanceId, claimedTurn: batch or NULL}.
CREATE OR REPLACE FUNCTION ack_work_item(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                         p_claim_turn json DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql -- not SQL: see fetch_orchestration_item
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN internal_ack_work_item(p_lock_token, p_instance_id, p_kind, p_work_item, p_claim_turn, TRUE);
END;
$$;

-- ack_work_items: acknowledges several work items in one call (group commit). Each element of
-- p_acks (at most 1000), {lockToken, instanceId, kind, workItem, claimTurn}, is handled exactly
-- as ack_work_item handles it, in its own subtransaction, so one item refused (lock lost,
-- invalid, even a deadlock) leaves the others committed.
-- Lock order: first the advisory locks of every completion's instance in ascending key order
-- (TRIED exclusively where a claim is asked for, else shared and waited for), then the
-- flow_limits rows of the permits the items hold (ascending), then item by item as ack_work_item
-- (whose own advisory and flow locks are then already held).
-- Errors: DX003 when p_acks is not an array of at most 1000 elements; per element, its SQLSTATE
-- is reported in the result instead of raised, so the caller can tell retryable from permanent.
-- Returns: json array in input order of {ok: true, claimedTurn} or {ok: false, code, message}.
CREATE OR REPLACE FUNCTION ack_work_items(p_acks json) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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
        SELECT internal_instance_advisory_key(a->>'instanceId') AS key,
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
    -- Flow control (flow.sql): the keys of the permits these items give back, in key order.
    IF EXISTS (SELECT 1 FROM flow_limits) THEN
        PERFORM internal_flow_lock_keys(ARRAY(
            SELECT w.flow_key FROM worker_queue w
            WHERE w.lock_token IN (SELECT a->>'lockToken' FROM json_array_elements(p_acks) AS a)
              AND w.flow_key IS NOT NULL));
    END IF;

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

-- Whether ack_work_item_with_turn may commit its turn directly (internal_commit_orchestration_turn,
-- p_direct): the instance's advisory lock is taken exclusively (tried: FALSE when busy) and then,
-- under it, the instance has no instance_locks row (held or expired), no message visible at
-- p_now, a current execution p_ran.executionId that exists and whose pinned version is in the
-- claim's range, and p_ran.lastEventId as its last event; and the work item p_lock_token and those
-- of p_ran.alsoCompleted are still leased (else the usual path reports it, or recognises a
-- repeat). The turn the caller ran on these completions alone is then exactly the turn a claim
-- would hand out. Writes nothing; the lock,
-- once taken, is held to the end of the transaction either way (the usual path takes it too).
-- Errors: DX003 for an invalid version range (as a claim).
DROP FUNCTION IF EXISTS internal_fused_turn_is_direct(TEXT, json, jsonb, BIGINT);
CREATE OR REPLACE FUNCTION internal_fused_turn_is_direct(p_lock_token TEXT, p_instance_id TEXT, p_claim_turn json,
                                                         p_ran jsonb, p_now BIGINT)
RETURNS BOOLEAN
LANGUAGE plpgsql
AS $$
DECLARE
    v_range  RECORD;
    v_min    INTEGER[];
    v_max    INTEGER[];
    v_direct BOOLEAN;
BEGIN
    IF p_claim_turn->>'minVersion' IS NOT NULL OR p_claim_turn->>'maxVersion' IS NOT NULL THEN
        -- An assignment, not SELECT ... FROM: evaluated as an expression, without a statement.
        v_range := internal_parse_version_range(p_claim_turn->>'minVersion', p_claim_turn->>'maxVersion');
        v_min := v_range.out_min;
        v_max := v_range.out_max;
    END IF;
    IF COALESCE((p_claim_turn->>'lockTimeoutMs')::BIGINT, 0) <= 0
       OR NOT pg_try_advisory_xact_lock(internal_instance_advisory_key(p_instance_id)) THEN
        RETURN FALSE; -- the usual path reports an invalid claim, or finds the instance busy
    END IF;
    SELECT e.execution_id IS NOT NULL
           AND NOT COALESCE(ROW(e.pinned_major, e.pinned_minor, e.pinned_patch)
                                < ROW(v_min[1], v_min[2], v_min[3])
                            OR ROW(e.pinned_major, e.pinned_minor, e.pinned_patch)
                                > ROW(v_max[1], v_max[2], v_max[3]), FALSE)
           AND EXISTS (SELECT 1 FROM worker_queue w WHERE w.lock_token = p_lock_token AND w.locked_until_ms > p_now)
           AND (p_ran->'alsoCompleted' IS NULL
                OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_ran->'alsoCompleted') AS a
                               WHERE NOT EXISTS (SELECT 1 FROM worker_queue w
                                                 WHERE w.lock_token = a->>'lockToken' AND w.locked_until_ms > p_now)))
           AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = p_instance_id)
           AND NOT EXISTS (SELECT 1 FROM orchestrator_queue q
                           WHERE q.instance_id = p_instance_id AND q.visible_at_ms <= p_now)
           AND (SELECT max(h.event_id) FROM history h
                WHERE h.instance_id = p_instance_id AND h.execution_id = e.execution_id)
               IS NOT DISTINCT FROM (p_ran->>'lastEventId')::BIGINT
    INTO v_direct
    FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = p_instance_id AND i.current_execution_id = (p_ran->>'executionId')::BIGINT;
    RETURN COALESCE(v_direct, FALSE);
END;
$$;

-- ack_work_item_with_turn: fused completion. Acknowledges a work item as ack_work_item does
-- with p_claim_turn, and when the claimed turn is exactly the one the caller already ran
-- in-process, commits that turn in the same transaction. p_turn = {executionId, lastEventId,
-- fallback, ack, claim, alsoCompleted?}: the turn was replayed on the history of execution executionId up to event lastEventId
-- with this completion as its only message; ack and claim are ack_orchestration_item's p_ack and
-- p_claim. Fan-in: alsoCompleted = [{lockToken, kind, workItem}] names other work items of the
-- same instance whose completions the turn also ran on (after this one, in order); they are
-- acknowledged by the same call, with the turn when it is committed directly, else each as a
-- plain ack_work_item before this one (so the claimed batch holds them all and the call falls
-- back); one of them refused (DX001) refuses the whole call, and nothing is written; at most 99.
-- The turn is committed only when the claimed batch holds this completion alone, the
-- instance's current execution is executionId and its last event is lastEventId (nobody
-- committed a turn since the caller's history); otherwise the claimed turn (or none) is returned
-- as ack_work_item returns it, for the caller to run as usual (the fallback, in the same call);
-- with fallback 'release' (the caller has no free turn worker) the claimed turn is released
-- instead, announced like any release, and none is returned.
-- Direct commit: when the instance is free and has nothing else waiting
-- (internal_fused_turn_is_direct), the turn is committed without queueing the completion or
-- locking the instance (internal_commit_orchestration_turn, p_direct): per step, the queue row's
-- insert, tagging and delete and the instance_locks row's insert and delete are not written.
-- Cost: the stored history and KV snapshot are read only for that fallback; a committed fused
-- turn rests on the history the caller holds, which the last event id proves current (a stored
-- history that is not valid JSON shows on the next fetch, whose turn worker reports it).
-- p_turn.ack may send messages only to its own instance (its advisory lock is the one held).
-- Lock order: as ack_work_item (the instance's advisory lock TRIED exclusively -> worker_queue row
-- -> sessions row -> the claimed batch), then as ack_orchestration_item for the same instance
-- (advisory lock already held -> instance_locks row -> instances -> executions -> history -> kv
-- rows -> worker_queue rows -> orchestrator_queue rows). A direct commit: the instance's advisory
-- lock TRIED exclusively -> worker_queue row (DELETE) -> sessions row -> instances -> history ->
-- kv rows -> worker_queue rows (no instance_locks or orchestrator_queue row).
-- Repeats: a repeat of a fused ack that committed, whose turn claimed activities, gets those
-- activities back (fused, the same leases renewed), as a repeated ack_orchestration_item does.
-- Errors: as ack_work_item (DX001, DX003); DX003 for a missing completion, claim or turn, a
-- turn that sends messages to another instance, or more than 99 alsoCompleted; as ack_orchestration_item for the turn (DX003,
-- 23505), in which case nothing is written.
-- Returns: {instanceId, fused: true, claimedWorkItems, committedStatus} when the turn was
-- committed (as ack_orchestration_item returns them), else {instanceId, fused: false, claimedTurn}.
CREATE OR REPLACE FUNCTION ack_work_item_with_turn(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT, p_work_item TEXT,
                                                   p_claim_turn json, p_turn json)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- p_turn parsed once (jsonb): each field read of a json value parses it all again.
    RETURN internal_ack_work_item_with_turn(p_lock_token, p_instance_id, p_kind, p_work_item, p_claim_turn,
                                            p_turn::jsonb, EXISTS (SELECT 1 FROM flow_limits));
END;
$$;

-- ack_work_items_with_turns: several fused completions in one call (group commit). Each element
-- of p_acks (at most 100), {lockToken, instanceId, kind, workItem, claimTurn, turn}, is handled
-- exactly as ack_work_item_with_turn handles its arguments, in its own subtransaction, so one
-- element refused (lock lost, invalid, a duplicate event id, even a deadlock) leaves the others
-- committed. Elements run in input order; two of one instance see each other's writes (the
-- second's turn then no longer rests on the instance's last event, and it falls back).
-- Lock order: first the advisory locks of every element's instance in ascending key order (TRIED
-- exclusively, else shared and waited for: what a fused ack tries, it still tries under its own
-- shared lock), then the flow_limits rows of every key the elements touch (their items' permits,
-- their turns' and claims' keys; ascending), then element by element as ack_work_item_with_turn
-- (whose own advisory and flow locks are then already held).
-- Errors: DX003 when p_acks is not an array of at most 100 elements; per element, its SQLSTATE is
-- reported in the result instead of raised, so the caller can tell retryable from permanent.
-- Returns: json array in input order of ack_work_item_with_turn's result with ok: true, or
-- {ok: false, code, message}.
CREATE OR REPLACE FUNCTION ack_work_items_with_turns(p_acks json) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_acks    jsonb := p_acks; -- parsed once, as p_turn above
    v_ack     jsonb;
    v_flow    BOOLEAN;
    v_result  json;
    v_results json[] := ARRAY[]::json[];
BEGIN
    IF v_acks IS NULL OR jsonb_typeof(v_acks) <> 'array' OR jsonb_array_length(v_acks) > 100 THEN
        RAISE EXCEPTION 'acks must be a json array of at most 100 elements' USING ERRCODE = 'DX003';
    END IF;

    PERFORM internal_try_instance_locks_in_key_order(
        ARRAY(SELECT a->>'instanceId' FROM jsonb_array_elements(v_acks) AS a));
    -- Flow control (flow.sql): every key an element would lock, at once and in key order.
    v_flow := EXISTS (SELECT 1 FROM flow_limits);
    IF v_flow THEN
        PERFORM internal_flow_lock_keys(ARRAY(
            SELECT w.flow_key FROM worker_queue w
            WHERE w.lock_token IN (SELECT a->>'lockToken' FROM jsonb_array_elements(v_acks) AS a
                                   UNION ALL
                                   SELECT c->>'lockToken'
                                   FROM jsonb_array_elements(v_acks) AS a,
                                        jsonb_array_elements(COALESCE(a->'turn'->'alsoCompleted', '[]'::jsonb)) AS c)
              AND w.flow_key IS NOT NULL
            UNION
            SELECT unnest(internal_flow_group_turn_keys(v_acks))));
    END IF;

    FOR v_ack IN SELECT a FROM jsonb_array_elements(v_acks) AS a LOOP
        BEGIN
            v_result := internal_ack_work_item_with_turn(
                v_ack->>'lockToken', v_ack->>'instanceId', v_ack->>'kind', v_ack->>'workItem',
                CASE WHEN jsonb_typeof(v_ack->'claimTurn') = 'object' THEN (v_ack->'claimTurn')::json END,
                CASE WHEN jsonb_typeof(v_ack->'turn') = 'object' THEN v_ack->'turn' END, v_flow);
            v_results := v_results || (v_result::jsonb || '{"ok": true}'::jsonb)::json;
        EXCEPTION WHEN OTHERS THEN
            v_results := v_results || json_build_object('ok', FALSE, 'code', SQLSTATE, 'message', SQLERRM);
        END;
    END LOOP;
    RETURN array_to_json(v_results);
END;
$$;

-- ack_work_item_with_turn's body, on the turn parsed once (jsonb); also called per element by
-- ack_work_items_with_turns. p_flow: whether flow limits exist, read once by the calling
-- procedure for its whole call.
DROP FUNCTION IF EXISTS internal_ack_work_item_with_turn(TEXT, TEXT, TEXT, TEXT, json, jsonb);
CREATE OR REPLACE FUNCTION internal_ack_work_item_with_turn(p_lock_token TEXT, p_instance_id TEXT, p_kind TEXT,
                                                            p_work_item TEXT, p_claim_turn json, p_turn jsonb,
                                                            p_flow BOOLEAN)
RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_ran        jsonb := p_turn;
    v_also       jsonb := COALESCE(p_turn->'alsoCompleted', '[]'::jsonb);
    v_other      jsonb;
    v_now        BIGINT;
    v_result     json;
    v_turn       json;
    v_last_event BIGINT;
    v_commit     json;
    v_finished   json;
BEGIN
    IF p_work_item IS NULL OR p_claim_turn IS NULL OR v_ran IS NULL OR jsonb_typeof(v_ran->'ack') <> 'object' THEN
        RAISE EXCEPTION 'a fused ack needs a completion, a turn claim and the turn run on it' USING ERRCODE = 'DX003';
    END IF;
    IF jsonb_typeof(v_also) <> 'array' OR jsonb_array_length(v_also) >= 100 THEN
        RAISE EXCEPTION 'a fused turn runs on at most 100 completions' USING ERRCODE = 'DX003';
    END IF;
    -- Nested IFs: the outer test is a plain expression, so a turn that sends nothing (most) runs
    -- no statement for the check.
    IF COALESCE(v_ran->'ack'->'orchestratorItems', '[]'::jsonb) <> '[]'::jsonb THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_ran->'ack'->'orchestratorItems') AS o
                   WHERE o->>'targetInstance' IS DISTINCT FROM p_instance_id) THEN
            RAISE EXCEPTION 'a fused turn may send messages only to its own instance' USING ERRCODE = 'DX003';
        END IF;
    END IF;

    -- Flow control (flow.sql): the item's permit and every key the turn may touch, in key order.
    IF p_flow THEN
        PERFORM internal_lock_instances_in_key_order(ARRAY[]::TEXT[], ARRAY[p_instance_id]);
        PERFORM internal_flow_lock_keys(ARRAY(
            SELECT w.flow_key FROM worker_queue w
            WHERE w.lock_token IN (SELECT p_lock_token
                                   UNION ALL
                                   SELECT a->>'lockToken' FROM jsonb_array_elements(v_also) AS a)
              AND w.flow_key IS NOT NULL
            UNION
            SELECT unnest(internal_flow_turn_keys(v_ran->'ack',
                                                  CASE WHEN jsonb_typeof(v_ran->'claim') = 'object' THEN v_ran->'claim' END))));
    END IF;
    v_now := internal_current_time_ms();
    IF internal_fused_turn_is_direct(p_lock_token, p_instance_id, p_claim_turn, v_ran, v_now) THEN
        -- Guarded: a FOR over an empty array still runs its query, and most turns have no fan-in.
        IF jsonb_array_length(v_also) > 0 THEN
            FOR v_other IN SELECT a FROM jsonb_array_elements(v_also) AS a LOOP
                v_finished := internal_finish_work_item(v_other->>'lockToken', NULL, NULL, NULL, v_now);
            END LOOP;
        END IF;
        v_finished := internal_finish_work_item(p_lock_token, NULL, NULL, NULL, v_now);
        v_commit := internal_ack_orchestration_item(internal_ack_token(p_lock_token), v_ran->'ack',
                                                    CASE WHEN jsonb_typeof(v_ran->'claim') = 'object' THEN v_ran->'claim' END,
                                                    TRUE, v_now, p_flow);
        RETURN json_build_object('instanceId', p_instance_id, 'fused', TRUE,
                                 'claimedWorkItems', v_commit->'claimedWorkItems',
                                 'committedStatus', v_commit->'committedStatus');
    END IF;
    IF jsonb_typeof(v_ran->'claim') = 'object'
       AND NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.lock_token = p_lock_token)
       AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.lock_token = internal_ack_token(p_lock_token)) THEN
        -- Perhaps a repeat of a fused ack that committed (its reply lost, e.g. in a failover): its
        -- turn's lock token was internal_ack_token(p_lock_token), and ack_orchestration_item's repeat path
        -- hands back the activities that turn claimed, still unfetched, instead of leaving them
        -- locked for nobody until their lease runs out. Otherwise it finds no lock (DX001) and
        -- the ack goes on as usual (and is refused: its work item is gone). A repeat of an ack
        -- that fell back and claimed its turn still holds that lock: it must never commit the
        -- turn run here (it was refused), so it goes on to ack_work_item's repeat path, which
        -- releases the claimed turn.
        BEGIN
            v_commit := internal_ack_orchestration_item(internal_ack_token(p_lock_token), v_ran->'ack', v_ran->'claim',
                                                        FALSE, v_now, p_flow);
            RETURN json_build_object('instanceId', p_instance_id, 'fused', TRUE,
                                     'claimedWorkItems', v_commit->'claimedWorkItems', 'committedStatus', NULL);
        EXCEPTION WHEN SQLSTATE 'DX001' THEN
            NULL;
        END;
    END IF;

    -- Fan-in that cannot be committed directly: the other completions are queued first, as plain
    -- acks, so the batch claimed below holds them all and the turn run on them falls back.
    IF jsonb_array_length(v_also) > 0 THEN
        FOR v_other IN SELECT a FROM jsonb_array_elements(v_also) AS a LOOP
            PERFORM internal_ack_work_item(v_other->>'lockToken', p_instance_id, v_other->>'kind',
                                           v_other->>'workItem', NULL, FALSE);
        END LOOP;
    END IF;
    -- The turn is claimed without its history and KV: they are read only for the fallback.
    v_result := internal_ack_work_item(p_lock_token, p_instance_id, p_kind, p_work_item, p_claim_turn, FALSE);
    v_turn := v_result->'claimedTurn';
    IF v_turn IS NULL OR json_typeof(v_turn) = 'null' THEN
        RETURN json_build_object('instanceId', v_result->'instanceId', 'fused', FALSE, 'claimedTurn', NULL);
    END IF;

    SELECT max(h.event_id) INTO v_last_event
    FROM history h
    WHERE h.instance_id = p_instance_id AND h.execution_id = (v_turn->>'executionId')::BIGINT;
    IF (v_turn->>'executionId')::BIGINT IS DISTINCT FROM (v_ran->>'executionId')::BIGINT
       OR v_last_event IS DISTINCT FROM (v_ran->>'lastEventId')::BIGINT
       OR json_array_length(v_turn->'messages') <> 1 THEN
        IF v_ran->>'fallback' = 'release' THEN
            -- The caller has no turn worker for it: queued and announced as a plain ack queues it.
            PERFORM abandon_orchestration_item(v_turn->>'lockToken', 0, TRUE);
            RETURN json_build_object('instanceId', v_result->'instanceId', 'fused', FALSE, 'claimedTurn', NULL);
        END IF;
        RETURN json_build_object('instanceId', v_result->'instanceId', 'fused', FALSE,
                                 'claimedTurn', internal_add_batch_state(v_turn));
    END IF;

    v_commit := internal_ack_orchestration_item(v_turn->>'lockToken', v_ran->'ack',
                                                CASE WHEN jsonb_typeof(v_ran->'claim') = 'object' THEN v_ran->'claim' END,
                                                FALSE, v_now, p_flow);
    RETURN json_build_object('instanceId', v_result->'instanceId', 'fused', TRUE,
                             'claimedWorkItems', v_commit->'claimedWorkItems',
                             'committedStatus', v_commit->'committedStatus');
END;
$$;

-- renew_work_item_lock: extends an unexpired work-item lease to now + p_extend_ms and stamps the
-- activity of the item's session. Failure is how a worker learns that its activity was
-- cancelled (row deleted) or its lease lost.
-- Lock order: the worker_queue row -> the sessions row.
-- Errors: DX001 for a lease that is unknown, deleted, taken over or expired; DX003 for p_extend_ms <= 0.
-- Returns: {lockedUntilMs}.
CREATE OR REPLACE FUNCTION renew_work_item_lock(p_lock_token TEXT, p_extend_ms BIGINT) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now          BIGINT := internal_current_time_ms();
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

-- abandon_work_item: unlocks a work item; it becomes visible at now + p_delay_ms (now without a
-- delay). p_ignore_attempt gives back the delivery counted by the fetch, never below 0.
-- Lock order: the worker_queue row.
-- Errors: DX001 for a lease that is unknown or taken over.
-- Returns: {id}.
CREATE OR REPLACE FUNCTION abandon_work_item(p_lock_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     BIGINT := internal_current_time_ms();
    v_visible BIGINT := v_now + GREATEST(COALESCE(p_delay_ms, 0), 0);
    v_id      BIGINT;
BEGIN
    UPDATE worker_queue
    SET lock_token = NULL,
        locked_until_ms = NULL,
        visible_at_ms = v_visible,
        attempt_count = CASE WHEN COALESCE(p_ignore_attempt, FALSE) THEN GREATEST(0, attempt_count - 1)
                             ELSE attempt_count END
    WHERE lock_token = p_lock_token
    RETURNING id INTO v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token: work item unknown or already acknowledged' USING ERRCODE = 'DX001';
    END IF;
    PERFORM internal_announce_queue('w', CASE WHEN v_visible <= v_now THEN 1 ELSE 0 END,
                                    CASE WHEN v_visible > v_now THEN v_visible END, v_now);
    RETURN json_build_object('id', v_id);
END;
$$;
