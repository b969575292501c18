-- Fetch scans read the clock after their snapshot; listeners learn every delayed item.
--
-- current_time_ms() is the transaction's start time. A fetch scans in a snapshot taken later,
-- when its statement runs; a message committed in between (announced already, so the woken
-- runtime considers the announcement answered by this fetch) carries its own, later transaction
-- time and was filtered out by `visible_at_ms <= v_now`: the fetch came back empty or short and
-- the message waited for the runtime's safety fetch (~10 s), about one orchestration in two
-- hundred under a burst on two cores.
--
-- Also: listen_for_wakeups reports every delayed item's time, not only the soonest, so that a
-- listener that (re)connects can wake for each (see its definition at the end).
--
-- Rule: a fetch filters visibility with wall_clock_ms(), read in the scanning statement itself
-- (an InitPlan, evaluated once after the statement's snapshot, still an index condition), so
-- every message committed before the scan's snapshot (its visible_at_ms is at most its commit
-- time) is visible to it. Everything that writes rows keeps current_time_ms(), the transaction
-- clock: one time for all rows of a transaction, so a notification trigger that compares
-- visible_at_ms with the transaction time sees exactly the rows it inserted as ready.

-- The database clock read now (clock_timestamp, not the transaction's start) plus the test
-- offset, in epoch ms. Only fetch scans use it (see above).
CREATE OR REPLACE FUNCTION wall_clock_ms() RETURNS BIGINT
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000))::BIGINT + c.offset_ms
    FROM test_clock c
$$;

-- As in 0010, except for the clock of the scan.
CREATE OR REPLACE FUNCTION fetch_orchestration_items(p_lock_timeout_ms BIGINT, p_min_version TEXT,
                                                     p_max_version TEXT, p_max_items INTEGER)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now         BIGINT;
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
        WHERE q.visible_at_ms <= (SELECT wall_clock_ms())
          AND q.instance_id <> ALL (v_skipped)
          AND (v_range.out_min IS NULL OR version_in_range(q.instance_id, v_range.out_min, v_range.out_max))
          AND NOT EXISTS (SELECT 1 FROM instance_locks l
                          WHERE l.instance_id = q.instance_id AND l.locked_until_ms > (SELECT wall_clock_ms()))
          AND (EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id OFFSET 0)
               OR EXISTS (SELECT 1 FROM orchestrator_queue s
                          WHERE s.instance_id = q.instance_id AND s.visible_at_ms <= (SELECT wall_clock_ms())
                            AND s.kind IN ('StartOrchestration', 'ContinueAsNew') OFFSET 0)
               OR NOT EXISTS (SELECT 1 FROM orchestrator_queue o
                              WHERE o.instance_id = q.instance_id AND o.visible_at_ms <= (SELECT wall_clock_ms())
                                AND o.kind <> 'QueueMessage' OFFSET 0))
        ORDER BY q.visible_at_ms, q.id
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        -- Read after the scan, so the batch holds every message the scan could see.
        v_now := wall_clock_ms();

        v_item := lock_orchestration_batch(v_instance_id, p_lock_timeout_ms, v_range.out_min, v_range.out_max, v_now);
        IF v_item IS NOT NULL THEN
            v_items := v_items || v_item;
        END IF;
        v_skipped := v_skipped || v_instance_id;
    END LOOP;
    RETURN array_to_json(v_items);
END;
$$;

-- As in 0007, except for the clock of the scan and the lease's sessionTakenOver flag.
CREATE OR REPLACE FUNCTION fetch_work_item(p_lock_timeout_ms BIGINT, p_tag_mode TEXT, p_tags json,
                                           p_owner_id TEXT, p_session_lock_timeout_ms BIGINT,
                                           p_max_items INTEGER, p_claim_new_sessions BOOLEAN)
RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
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
        v_now := wall_clock_ms();
        SELECT w.id, w.session_id INTO v_id, v_session
        FROM worker_queue w
        LEFT JOIN sessions s ON s.session_id = w.session_id AND s.locked_until_ms > v_now
        WHERE w.visible_at_ms <= (SELECT wall_clock_ms())
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

        SELECT i.orchestration_name, i.orchestration_version INTO v_name, v_version
        FROM instances i WHERE i.instance_id = v_row.instance_id;

        v_leases := v_leases || json_build_object(
            'workItem', v_row.work_item::json,
            'lockToken', v_row.lock_token,
            'attemptCount', v_row.attempt_count,
            'orchestrationName', COALESCE(v_name, 'unknown'),
            'orchestrationVersion', COALESCE(v_version, 'unknown'),
            'sessionId', v_row.session_id,
            'sessionTakenOver', v_taken_over,
            'nowMs', v_now);
    END LOOP;

    RETURN array_to_json(v_leases);
END;
$$;

-- As in 0005, except that it reports every delayed item's time (soonest 1,000 per queue), not
-- only the soonest: a listener that (re)connects learns all timers and retries queued while it was
-- not listening, not just the first of them.
-- Result: {channel, orchestratorReady, orchestratorDueInMs: [ms], workerReady, workerDueInMs: [ms]}.
CREATE OR REPLACE FUNCTION listen_for_wakeups() RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     BIGINT := current_time_ms();
    v_channel TEXT := wakeup_channel();
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
