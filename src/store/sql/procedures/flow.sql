-- Flow control: concurrency limits per flow key (tables: migration 0101_flow_control.sql).
-- Conventions: docs/sql.md.
--
-- A limit is a number of permits per key. Permits are handed over inside the procedures that
-- enqueue and finish activities, never counted at fetch time:
-- * enqueue (a turn's commit, enqueue_worker_work): an activity whose key has a limit takes a
--   permit when one is free (its worker_queue row then carries flow_key) or is parked in
--   flow_parked, a separate table the fetch never reads;
-- * release (an activity's ack, success or failure; its cancellation, also while a worker holds
--   it; the deletion of its instance): the permit goes to the best parked activity of the key
--   (highest priority level, oldest within a level, with the head start of migration 0103: a
--   parked activity's rank is its enqueue time minus one minute per level), which moves to
--   worker_queue and is announced (internal_announce_queue), or is given back.
-- Rate limits are a token bucket per key (rate_per_s, burst) on the database clock, spent at
-- dispatch: the fetch of an activity that carries a rated key takes a token, or, when none is
-- left, spaces the key's fetchable activities out one token interval apart from the next token's
-- time and announces that time (internal_flow_defer), so no runtime polls for it; each dispatch
-- announces the key's next deferred activity. Fetches of other activities read nothing more.
-- An expired lease keeps its permit: the row stays in worker_queue and is fetched again (the
-- holder's late ack fails and releases nothing). flow_limits.active always equals the number of
-- worker_queue rows carrying the key (test/postgres/flow-limits.test.ts checks it).
-- A deployment without limits pays one read of the empty flow_limits table per enqueue and ack.
--
-- Orchestration flow keys (tables: migration 0102_orchestration_flow.sql): a start whose work
-- item carries a flowKey (client.startOrchestration(..., { flowKey }), or a start a turn sends)
-- takes a permit of that key when it is enqueued (internal_flow_start, called by
-- enqueue_orchestrator_work, start_orchestration_claimed and the turn commit), and the instance
-- holds it in flow_instance_permits, one row per instance, for its whole life, across
-- continue-as-new; or the start waits in flow_parked_starts, a table the fetch never reads. The
-- turn commit that ends the instance Completed or Failed (cancellation ends it Failed) and its
-- deletion hand the permit (internal_flow_pump) to the best parked activity or start of the key
-- (one order: rank, enqueue time minus one minute per level, then id; parked starts draw their id
-- from worker_queue's sequence and keep their level in a column, migration 0104), which is queued and
-- announced in the same transaction. An instance lock that expires, or a runtime that dies, leaves
-- the permit with the instance. flow_limits.active counts these permits besides the worker_queue
-- rows. A cancellation of a parked instance queues its start without a permit ahead of the
-- cancellation, so its first turn ends it Failed ("canceled"): it is never seen Running outside
-- its limit, and its parent and waiters hear of it as of any cancelled instance. A deletion
-- removes it from the park.
-- Orchestration keys take maxActive only: a start under a key with a rate limit is refused
-- (DX004), because spacing starts out would need a token check in the orchestration fetch (the
-- hottest path) for what a rate on the activities the instances call already does. Only starts
-- whose text holds "flowKey" are parsed; an instance's end probes flow_instance_permits once.
--
-- Lock order: flow_limits rows in ascending key order (internal_flow_lock_keys: a procedure that
-- will enqueue or release under several keys locks them all at once, first) after the advisory
-- locks of instances and before any worker_queue, flow_parked, flow_parked_starts or
-- orchestrator_queue row; parked rows last. A flow_instance_permits row belongs to its instance
-- (written under that instance's advisory lock, or inserted for a start just taken out of the park,
-- which nobody else can hold). Admitting a parked start writes the orchestrator queue of an
-- instance whose advisory lock the admitting procedure does not hold: a parked instance has no
-- turn in flight to release (its only start is parked, and a repeated start while it is parked is
-- the same parked start), so its announcement cannot be lost to a release.
-- Rows of one instance (instance_locks, instances, ...) are only ever contended under that
-- instance's advisory lock, so where they are taken relative to flow_limits rows cannot close a
-- cycle. Two exceptions take a worker_queue row first: the ack of one activity deletes its own
-- row, then locks its key (so an ack without a limit reads nothing more); the only procedures
-- that lock the key first and then that row are its instance's turn commit (cancellation) and
-- deletion, which hold the instance's advisory lock exclusively while an ack with a completion
-- holds it shared (an ack without a completion, which the runtime never sends, takes no
-- advisory lock: racing a cancellation of the same row, it can deadlock, and PostgreSQL aborts
-- one of the two). A batch of acks locks all its keys first, in order. And the fetch of a rated
-- activity locks its key after the row (see fetch_work_item).

-- The flow key of an activity's work item (JSON text): its explicit flowKey, else
-- 'activity:<name>'.
CREATE OR REPLACE FUNCTION internal_flow_key(p_work_item TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE
AS $$
    SELECT COALESCE(j->>'flowKey', 'activity:' || (j->>'name')) FROM (SELECT p_work_item::json AS j) w
$$;

-- The flowKey of a StartOrchestration work item (JSON text), NULL when it has none. Callers
-- call it only when the text holds "flowKey" at all (strpos, inlined in the caller), so the
-- starts without a key (nearly all) are neither parsed nor pay a function call.
CREATE OR REPLACE FUNCTION internal_flow_start_key(p_work_item TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE
AS $$
    SELECT p_work_item::json->>'flowKey'
$$;

-- Locks the flow_limits rows of p_keys (keys without a limit are ignored) in ascending key
-- order, waiting for each. A row the transaction already holds is not waited for.
CREATE OR REPLACE FUNCTION internal_flow_lock_keys(p_keys TEXT[]) RETURNS VOID
LANGUAGE plpgsql
AS $$
BEGIN
    IF COALESCE(array_length(p_keys, 1), 0) > 0 THEN
        PERFORM 1 FROM flow_limits f WHERE f.flow_key = ANY (p_keys) ORDER BY f.flow_key FOR UPDATE;
    END IF;
END;
$$;

-- The flow keys a turn's ack (and its claim) may take or release permits of: the keys of the
-- activities it schedules and of the queued or parked activities it cancels, of the starts it
-- sends with a flowKey and of the parked starts it cancels, and the key of the instance's own
-- permit when the turn ends it. Read without locks;
-- the caller locks them with internal_flow_lock_keys before writing.
DROP FUNCTION IF EXISTS internal_flow_turn_keys(json, json);
CREATE OR REPLACE FUNCTION internal_flow_turn_keys(p_ack jsonb, p_claim jsonb) RETURNS TEXT[]
LANGUAGE sql STABLE
AS $$
    WITH cancelled AS (
        SELECT c.item->>'instance' AS instance_id, (c.item->>'executionId')::BIGINT AS execution_id,
               (c.item->>'activityId')::BIGINT AS activity_id
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_ack->'cancelledActivities') = 'array'
                                      THEN p_ack->'cancelledActivities' ELSE '[]'::jsonb END) AS c(item))
    SELECT ARRAY(
        SELECT DISTINCT k FROM (
            SELECT internal_flow_key(w->>'workItem') AS k
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_ack->'workerItems') = 'array'
                                          THEN p_ack->'workerItems' ELSE '[]'::jsonb END) AS w
            UNION ALL
            SELECT internal_flow_key(w->>'workItem')
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_claim->'workerItems') = 'array'
                                          THEN p_claim->'workerItems' ELSE '[]'::jsonb END) AS w
            UNION ALL
            SELECT wq.flow_key FROM worker_queue wq JOIN cancelled c
                ON wq.instance_id = c.instance_id AND wq.execution_id = c.execution_id AND wq.activity_id = c.activity_id
            WHERE wq.flow_key IS NOT NULL
            UNION ALL
            SELECT fp.flow_key FROM flow_parked fp JOIN cancelled c
                ON fp.instance_id = c.instance_id AND fp.execution_id = c.execution_id AND fp.activity_id = c.activity_id
            UNION ALL
            -- The keys of the starts it sends with a flowKey, and of the parked starts it cancels.
            SELECT internal_flow_start_key(o->>'workItem')
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_ack->'orchestratorItems') = 'array'
                                          THEN p_ack->'orchestratorItems' ELSE '[]'::jsonb END) AS o
            WHERE o->>'kind' = 'StartOrchestration' AND strpos(o->>'workItem', '"flowKey"') > 0
            UNION ALL
            SELECT s.flow_key FROM flow_parked_starts s
            JOIN jsonb_array_elements(CASE WHEN jsonb_typeof(p_ack->'orchestratorItems') = 'array'
                                          THEN p_ack->'orchestratorItems' ELSE '[]'::jsonb END) AS o
                ON s.instance_id = o->>'targetInstance' AND o->>'kind' = 'CancelInstance'
            UNION ALL
            -- The permit the instance gives back when the turn ends it.
            SELECT h.flow_key FROM flow_instance_permits h
            WHERE p_ack->>'status' IN ('Completed', 'Failed') AND h.instance_id = p_ack->>'instanceId'
        ) keys
        ORDER BY k)
$$;

-- The flow keys of the turns of a group call's elements (ack_work_items_with_turns,
-- start_orchestrations_with_turns): internal_flow_turn_keys of each element's turn {ack, claim},
-- elements without a turn ack skipped. Read without locks, like internal_flow_turn_keys.
CREATE OR REPLACE FUNCTION internal_flow_group_turn_keys(p_elements jsonb) RETURNS TEXT[]
LANGUAGE sql STABLE
AS $$
    SELECT ARRAY(
        SELECT DISTINCT unnest(internal_flow_turn_keys(a->'turn'->'ack',
                                                       CASE WHEN jsonb_typeof(a->'turn'->'claim') = 'object'
                                                            THEN a->'turn'->'claim' END))
        FROM jsonb_array_elements(p_elements) AS a
        WHERE jsonb_typeof(a->'turn'->'ack') = 'object');
$$;

-- Enqueues activities (p_items: jsonb array of {instanceId, executionId, activityId, tag,
-- workItem, priority?, claimIndex?}, in order) at p_now, at their priority levels (default 0): an
-- activity whose key has no limit is queued as before; one whose key has a limit takes a free
-- permit (queued, carrying flow_key) or is parked, the free permits going to the highest levels
-- first, then in the order of p_items. With p_claim_token, the activities that get a permit are
-- queued already locked for the caller, under p_claim_token || ':' || claimIndex until p_now +
-- p_claim_lock_ms (an ack's claim: the same tokens ack_orchestration_item gives the activities
-- it claims), and are not announced; except those of a rated key, which must take a token when
-- fetched, so they are queued unlocked. Announces the unlocked queued rows. Locks the limited keys
-- itself (ascending order; no wait when the caller locked them already). Returns the number of
-- activities parked.
DROP FUNCTION IF EXISTS internal_flow_enqueue(json, BIGINT, TEXT, BIGINT);
CREATE OR REPLACE FUNCTION internal_flow_enqueue(p_items jsonb, p_now BIGINT, p_claim_token TEXT DEFAULT NULL,
                                                 p_claim_lock_ms BIGINT DEFAULT NULL) RETURNS INTEGER
LANGUAGE plpgsql
AS $$
DECLARE
    v_keys     TEXT[];
    v_ready    INTEGER;
    v_parked   INTEGER;
    v_admitted TEXT[];
BEGIN
    v_keys := ARRAY(SELECT DISTINCT internal_flow_key(w->>'workItem') FROM jsonb_array_elements(p_items) AS w);
    PERFORM internal_flow_lock_keys(v_keys);

    -- One statement decides every item against the counters just locked, so an item is either
    -- queued or parked, never both, even if a limit is created or deleted meanwhile.
    WITH items AS (
        SELECT w, n, internal_flow_key(w->>'workItem') AS key
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(w, n)),
    decided AS (
        SELECT i.w, i.n, i.key, f.flow_key IS NOT NULL AS limited,
               p_claim_token IS NOT NULL AND f.rate_per_s IS NULL AS claimed,
               f.flow_key IS NULL OR f.max_active IS NULL
               OR row_number() OVER (PARTITION BY i.key ORDER BY COALESCE(internal_json_priority(i.w), 0) DESC, i.n)
                  <= GREATEST(f.max_active - f.active, 0) AS admit
        FROM items i LEFT JOIN flow_limits f ON f.flow_key = i.key),
    queued AS (
        INSERT INTO worker_queue (work_item, instance_id, execution_id, activity_id, tag,
                                  visible_at_ms, attempt_count, created_at_ms, flow_key, lock_token, locked_until_ms,
                                  priority)
        SELECT d.w->>'workItem', d.w->>'instanceId', (d.w->>'executionId')::BIGINT, (d.w->>'activityId')::BIGINT,
               d.w->>'tag', p_now, CASE WHEN d.claimed THEN 1 ELSE 0 END, p_now,
               CASE WHEN d.limited THEN d.key END,
               CASE WHEN d.claimed THEN p_claim_token || ':' || (d.w->>'claimIndex') END,
               CASE WHEN d.claimed THEN p_now + p_claim_lock_ms END,
               COALESCE(internal_json_priority(d.w), 0)
        FROM decided d WHERE d.admit
        ORDER BY d.n
        RETURNING flow_key, lock_token),
    parked AS (
        INSERT INTO flow_parked (id, flow_key, work_item, instance_id, execution_id, activity_id, tag, created_at_ms,
                                 priority)
        SELECT nextval('worker_queue_id_seq'), o.key, o.w->>'workItem', o.w->>'instanceId',
               (o.w->>'executionId')::BIGINT, (o.w->>'activityId')::BIGINT, o.w->>'tag', p_now,
               COALESCE(internal_json_priority(o.w), 0)
        FROM (SELECT d.* FROM decided d WHERE NOT d.admit ORDER BY d.n) o
        RETURNING id)
    SELECT (SELECT count(*) FROM queued q WHERE q.lock_token IS NULL),
           (SELECT array_agg(q.flow_key) FROM queued q WHERE q.flow_key IS NOT NULL),
           (SELECT count(*) FROM parked)
    INTO v_ready, v_admitted, v_parked;

    IF v_admitted IS NOT NULL THEN
        UPDATE flow_limits f SET active = f.active + a.taken, updated_at_ms = p_now
        FROM (SELECT k, count(*) AS taken FROM unnest(v_admitted) AS k GROUP BY k) a
        WHERE f.flow_key = a.k;
    END IF;
    PERFORM internal_announce_queue('w', v_ready, NULL, p_now);
    RETURN v_parked;
END;
$$;

-- Moves up to p_max (NULL: all) of the best parked activities and starts of p_key to worker_queue
-- and orchestrator_queue, visible at p_now, and announces them. Best: by rank (enqueue time minus
-- one minute per priority level, then id; migrations 0103 and 0104), one order for activities and
-- starts, each park walked in its rank index (flow_parked_rank_idx, flow_parked_starts_rank_idx);
-- an admitted start is queued at its level. The activities carry
-- p_mark as their flow_key and the started instances get a permit row of p_mark (none when p_mark is
-- NULL: the key has no limit any more). A parked start whose instance exists or holds a permit
-- already (it was started again under another key or none) is a repeat: it leaves the park
-- without taking a permit, and the next one is taken instead. The caller holds the key's
-- flow_limits row (or it has none). Returns the number moved (permits taken).
CREATE OR REPLACE FUNCTION internal_flow_admit_parked(p_key TEXT, p_max BIGINT, p_mark TEXT, p_now BIGINT)
RETURNS INTEGER
LANGUAGE plpgsql
AS $$
DECLARE
    v_moved      INTEGER := 0;
    v_picked     BIGINT[];
    v_activities INTEGER;
    v_starts     INTEGER;
    v_repeats    INTEGER;
BEGIN
    LOOP
        v_picked := ARRAY(
            SELECT c.id FROM (
                (SELECT p.id, p.rank_ms FROM flow_parked p WHERE p.flow_key = p_key
                 ORDER BY p.rank_ms, p.id LIMIT p_max - v_moved)
                UNION ALL
                (SELECT s.id, s.rank_ms FROM flow_parked_starts s WHERE s.flow_key = p_key
                 ORDER BY s.rank_ms, s.id LIMIT p_max - v_moved)) c
            ORDER BY c.rank_ms, c.id LIMIT p_max - v_moved);
        EXIT WHEN cardinality(v_picked) = 0;

        WITH moved AS (
            DELETE FROM flow_parked p WHERE p.id = ANY (v_picked)
            RETURNING p.id, p.work_item, p.instance_id, p.execution_id, p.activity_id, p.tag, p.created_at_ms,
                      p.priority, p.rank_ms)
        INSERT INTO worker_queue (id, work_item, instance_id, execution_id, activity_id, tag,
                                  visible_at_ms, attempt_count, created_at_ms, flow_key, priority)
        SELECT m.id, m.work_item, m.instance_id, m.execution_id, m.activity_id, m.tag, p_now, 0, m.created_at_ms, p_mark,
               m.priority
        FROM moved m
        ORDER BY m.rank_ms, m.id;
        GET DIAGNOSTICS v_activities = ROW_COUNT;
        PERFORM internal_announce_queue('w', v_activities, NULL, p_now);

        DELETE FROM flow_parked_starts s
        WHERE s.id = ANY (v_picked)
          AND (EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = s.instance_id)
               OR EXISTS (SELECT 1 FROM flow_instance_permits h WHERE h.instance_id = s.instance_id));
        GET DIAGNOSTICS v_repeats = ROW_COUNT;
        WITH moved AS (
            DELETE FROM flow_parked_starts s WHERE s.id = ANY (v_picked)
            RETURNING s.id, s.instance_id, s.work_item, s.priority, s.rank_ms),
        permits AS (
            INSERT INTO flow_instance_permits (instance_id, flow_key, created_at_ms)
            SELECT m.instance_id, p_mark, p_now FROM moved m WHERE p_mark IS NOT NULL)
        INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms,
                                        priority)
        SELECT m.instance_id, 'StartOrchestration', m.work_item, p_now, 0, p_now, m.priority
        FROM moved m
        ORDER BY m.rank_ms, m.id;
        GET DIAGNOSTICS v_starts = ROW_COUNT;
        PERFORM internal_announce_queue('o', v_starts, NULL, p_now);

        v_moved := v_moved + v_activities + v_starts;
        EXIT WHEN v_repeats = 0 OR v_moved >= p_max;
    END LOOP;
    RETURN v_moved;
END;
$$;

-- Gives back p_released permits of p_key and fills the key's free permits from its parked
-- activities, best first (a permit given back while activities wait is handed to the best).
-- Locks the key's flow_limits row (no wait when the caller holds it). A key whose limit was
-- deleted has nothing to count: whatever is still parked under it is queued without a limit.
CREATE OR REPLACE FUNCTION internal_flow_pump(p_key TEXT, p_released INTEGER, p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_max    INTEGER;
    v_active INTEGER;
    v_before INTEGER;
BEGIN
    SELECT f.max_active, f.active INTO v_max, v_before FROM flow_limits f WHERE f.flow_key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM internal_flow_admit_parked(p_key, NULL, NULL, p_now);
        RETURN;
    END IF;
    v_active := GREATEST(v_before - p_released, 0);
    IF v_max IS NULL OR v_active < v_max THEN
        v_active := v_active + internal_flow_admit_parked(p_key, CASE WHEN v_max IS NOT NULL THEN v_max - v_active END,
                                                          p_key, p_now);
    END IF;
    IF v_active <> v_before THEN
        UPDATE flow_limits SET active = v_active, updated_at_ms = p_now WHERE flow_key = p_key;
    END IF;
END;
$$;

-- Releases one permit per element of p_keys (NULL elements, rows admitted without a limit, are
-- skipped), key by key in ascending order.
CREATE OR REPLACE FUNCTION internal_flow_release(p_keys TEXT[], p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_release RECORD;
BEGIN
    FOR v_release IN
        SELECT k AS key, count(*)::INTEGER AS permits FROM unnest(p_keys) AS k WHERE k IS NOT NULL GROUP BY k ORDER BY k
    LOOP
        PERFORM internal_flow_pump(v_release.key, v_release.permits, p_now);
    END LOOP;
END;
$$;

-- Decides the start p_work_item of p_instance_id under flow key p_key at p_now: 'queued' when
-- the caller is to queue it (a permit was taken; or the key has no limit; or it repeats a start
-- whose instance exists or holds a permit already, and so collapses in the turn like any repeated
-- start), 'parked' when it waits in flow_parked_starts (or already waited there: a repeat). The
-- caller holds p_instance_id's advisory lock (shared at least), so no turn of it commits meanwhile.
-- Locks: the key's flow_limits row (ascending order is trivial: one key), then the permit or
-- parked row it inserts.
-- Errors: DX003 for a key that is empty or over 512 bytes; DX004 for a key with a rate limit
-- (orchestration keys take maxActive only, see the top of this file).
CREATE OR REPLACE FUNCTION internal_flow_start(p_instance_id TEXT, p_key TEXT, p_work_item TEXT, p_now BIGINT)
RETURNS TEXT
LANGUAGE plpgsql
AS $$
DECLARE
    v_max    INTEGER;
    v_active INTEGER;
    v_rate   DOUBLE PRECISION;
BEGIN
    IF length(p_key) = 0 OR octet_length(p_key) > 512 THEN
        RAISE EXCEPTION 'flow key must be 1 to 512 bytes' USING ERRCODE = 'DX003';
    END IF;
    SELECT f.max_active, f.active, f.rate_per_s INTO v_max, v_active, v_rate
    FROM flow_limits f WHERE f.flow_key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'queued';
    END IF;
    IF v_rate IS NOT NULL THEN
        RAISE EXCEPTION 'flow key % has a rate limit (perSecond): an orchestration flow key takes maxActive only', p_key
            USING ERRCODE = 'DX004';
    END IF;
    -- Read after the key's lock, so a repeat racing the first start under the same key sees it.
    IF EXISTS (SELECT 1 FROM flow_instance_permits h WHERE h.instance_id = p_instance_id)
       OR EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = p_instance_id) THEN
        RETURN 'queued';
    END IF;
    IF EXISTS (SELECT 1 FROM flow_parked_starts s WHERE s.instance_id = p_instance_id) THEN
        RETURN 'parked';
    END IF;
    IF v_max IS NULL OR v_active < v_max THEN
        INSERT INTO flow_instance_permits (instance_id, flow_key, created_at_ms) VALUES (p_instance_id, p_key, p_now);
        UPDATE flow_limits SET active = active + 1, updated_at_ms = p_now WHERE flow_key = p_key;
        RETURN 'queued';
    END IF;
    -- At the start's level (its work item's, as the queue row it would have had), ranked against
    -- the key's parked activities by internal_flow_admit_parked.
    -- A child's parent is kept for the deletion of the parent's tree (migration 0106).
    INSERT INTO flow_parked_starts (id, flow_key, instance_id, work_item, created_at_ms, priority, parent_instance_id)
    VALUES (nextval('worker_queue_id_seq'), p_key, p_instance_id, p_work_item, p_now,
            COALESCE(internal_item_priority(p_work_item), 0), p_work_item::json->>'parentInstance');
    RETURN 'parked';
END;
$$;

-- A cancellation of p_instance_id while its start is parked: queues that start at p_now without a
-- permit (the cancellation, queued by the caller right after, ends the instance in its first turn)
-- and announces it. Returns whether a parked start was found. The caller holds the instance's
-- advisory lock. Locks: the start's flow_limits row, then its parked row.
CREATE OR REPLACE FUNCTION internal_flow_unpark_cancelled(p_instance_id TEXT, p_now BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql
AS $$
DECLARE
    v_key TEXT;
BEGIN
    SELECT s.flow_key INTO v_key FROM flow_parked_starts s WHERE s.instance_id = p_instance_id;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM internal_flow_lock_keys(ARRAY[v_key]);
    WITH moved AS (DELETE FROM flow_parked_starts s WHERE s.instance_id = p_instance_id
                   RETURNING s.work_item, s.priority)
    INSERT INTO orchestrator_queue (instance_id, kind, work_item, visible_at_ms, attempt_count, created_at_ms, priority)
    SELECT p_instance_id, 'StartOrchestration', m.work_item, p_now, 0, p_now, m.priority
    FROM moved m;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM internal_announce_queue('o', 1, NULL, p_now);
    RETURN TRUE;
END;
$$;

-- Takes a token of p_key's bucket for a dispatch now. Returns NULL when the key has no rate
-- limit (read without a lock), 0 when a token was taken, else the time (database clock, ms) the
-- next token is due. The clock is read after the key's row is locked (internal_wall_clock_ms),
-- and the row stays locked until the dispatch commits: the next taker reads a later time, so
-- the times the bucket counts are in the order, and within the spans, of the real dispatches
-- (a time read before waiting for the lock could lag its dispatch by that wait, and two
-- dispatches a token interval apart on the bucket's clock could then land together).
-- Locks: the key's flow_limits row, only for a rated key.
CREATE OR REPLACE FUNCTION internal_flow_take_token(p_key TEXT) RETURNS BIGINT
LANGUAGE plpgsql
AS $$
DECLARE
    v_rate     DOUBLE PRECISION;
    v_burst    DOUBLE PRECISION;
    v_tokens   DOUBLE PRECISION;
    v_refilled BIGINT;
    v_at       BIGINT;
    v_avail    DOUBLE PRECISION;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM flow_limits f WHERE f.flow_key = p_key AND f.rate_per_s IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    SELECT f.rate_per_s, f.burst, f.tokens, f.refilled_ms INTO v_rate, v_burst, v_tokens, v_refilled
    FROM flow_limits f WHERE f.flow_key = p_key FOR UPDATE;
    IF v_rate IS NULL THEN
        RETURN NULL;
    END IF;
    v_at := GREATEST(v_refilled, internal_wall_clock_ms());
    v_avail := LEAST(v_burst, v_tokens + (v_at - v_refilled) * v_rate / 1000.0);
    IF v_avail >= 1 THEN
        UPDATE flow_limits SET tokens = v_avail - 1, refilled_ms = v_at WHERE flow_key = p_key;
        RETURN 0;
    END IF;
    RETURN v_at + GREATEST(ceil((1 - v_avail) * 1000.0 / v_rate), 1)::BIGINT;
END;
$$;

-- Defers the activities of rated key p_key that are fetchable at p_now (the fetch's candidate
-- among them, at most 1,000, oldest first) to one token interval apart from p_due, the next
-- token's time, and announces p_due. Activities deferred earlier keep their times: when two
-- become fetchable at one token time, one is dispatched and the other deferred again to the next
-- token, which keeps each activity within about one interval of its turn (appending after the
-- last deferred activity instead would send an activity fetched a moment early to the back).
-- Rows locked by other transactions are left alone.
CREATE OR REPLACE FUNCTION internal_flow_defer(p_key TEXT, p_due BIGINT, p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_interval DOUBLE PRECISION;
BEGIN
    SELECT 1000.0 / f.rate_per_s INTO v_interval FROM flow_limits f WHERE f.flow_key = p_key;
    WITH picked AS (
        SELECT w.id FROM worker_queue w
        WHERE w.flow_key = p_key AND w.visible_at_ms <= p_now
          AND (w.lock_token IS NULL OR w.locked_until_ms <= p_now)
        ORDER BY w.id LIMIT 1000
        FOR UPDATE SKIP LOCKED),
    spaced AS (SELECT p.id, row_number() OVER (ORDER BY p.id) AS n FROM picked p)
    UPDATE worker_queue w SET visible_at_ms = p_due + floor((s.n - 1) * v_interval)::BIGINT
    FROM spaced s WHERE w.id = s.id;
    PERFORM internal_announce_queue('w', 0, p_due, p_now);
END;
$$;

-- Announces the next deferred activity of rated key p_key (after a dispatch took a token), so a
-- runtime wakes for it at its time.
CREATE OR REPLACE FUNCTION internal_flow_announce_next(p_key TEXT, p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_next BIGINT;
BEGIN
    SELECT min(w.visible_at_ms) INTO v_next
    FROM worker_queue w WHERE w.flow_key = p_key AND w.visible_at_ms > p_now AND w.lock_token IS NULL;
    PERFORM internal_announce_queue('w', 0, v_next, p_now);
END;
$$;

-- Makes the deferred activities of p_key fetchable now (its rate limit was lifted or changed)
-- and announces them.
CREATE OR REPLACE FUNCTION internal_flow_undefer(p_key TEXT, p_now BIGINT) RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    v_moved INTEGER;
BEGIN
    UPDATE worker_queue w SET visible_at_ms = p_now
    WHERE w.flow_key = p_key AND w.visible_at_ms > p_now AND w.lock_token IS NULL;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    PERFORM internal_announce_queue('w', v_moved, NULL, p_now);
END;
$$;

-- set_flow_limit: creates or changes the limit of p_key. p_limit = {maxActive, perSecond, burst}:
-- maxActive = the number of activities of the key queued or running at once plus the number of
-- instances started under the key that have not ended (0 pauses the key; null: no concurrency
-- limit); perSecond = dispatches per second, on average (null: no rate
-- limit), with at most burst (>= 1, default 1) at once: in any window of W seconds at most
-- burst + perSecond x W activities of the key are fetched. A new limit counts the activities
-- already queued under the key from an earlier limit and the instances holding its permits;
-- activities queued without a limit are not counted (nor rated). Raising maxActive admits parked activities at once (announced); lowering
-- it admits none until enough permits are given back. A new bucket starts full; a changed rate
-- keeps the tokens (up to the new burst) and makes the key's deferred activities fetchable now.
-- Lock order: the key's flow_limits row -> its worker_queue rows (deferred ones) -> its
-- flow_parked and flow_parked_starts rows.
-- Errors: DX003 for an empty key or one over 512 bytes, a maxActive that is not a non-negative
-- integer, a perSecond that is not a positive number, a burst below 1 or without perSecond, or a
-- p_limit that is not an object; DX004 for a perSecond on a key that instances hold or wait for
-- (orchestration keys take maxActive only, see the top of this file). Nothing is written then.
-- Returns: the limit as get_flow_limits reports it.
CREATE OR REPLACE FUNCTION set_flow_limit(p_key TEXT, p_limit json) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now   BIGINT := internal_current_time_ms();
    v_max   INTEGER;
    v_rate  DOUBLE PRECISION;
    v_burst DOUBLE PRECISION;
BEGIN
    IF p_key IS NULL OR length(p_key) = 0 OR octet_length(p_key) > 512 THEN
        RAISE EXCEPTION 'flow key must be 1 to 512 bytes' USING ERRCODE = 'DX003';
    END IF;
    IF p_limit IS NULL OR json_typeof(p_limit) <> 'object' THEN
        RAISE EXCEPTION 'flow limit must be a json object' USING ERRCODE = 'DX003';
    END IF;
    IF COALESCE(json_typeof(p_limit->'maxActive'), 'null') <> 'null' THEN
        IF json_typeof(p_limit->'maxActive') <> 'number' OR (p_limit->>'maxActive') !~ '^\d{1,9}$' THEN
            RAISE EXCEPTION 'maxActive must be a non-negative integer, got %', p_limit->>'maxActive'
                USING ERRCODE = 'DX003';
        END IF;
        v_max := (p_limit->>'maxActive')::INTEGER;
    END IF;
    IF COALESCE(json_typeof(p_limit->'perSecond'), 'null') <> 'null' THEN
        IF json_typeof(p_limit->'perSecond') <> 'number' OR (p_limit->>'perSecond')::DOUBLE PRECISION <= 0 THEN
            RAISE EXCEPTION 'perSecond must be a positive number, got %', p_limit->>'perSecond' USING ERRCODE = 'DX003';
        END IF;
        v_rate := (p_limit->>'perSecond')::DOUBLE PRECISION;
    END IF;
    IF COALESCE(json_typeof(p_limit->'burst'), 'null') <> 'null' THEN
        IF v_rate IS NULL OR json_typeof(p_limit->'burst') <> 'number' OR (p_limit->>'burst')::DOUBLE PRECISION < 1 THEN
            RAISE EXCEPTION 'burst must be a number >= 1 and comes with perSecond, got %', p_limit->>'burst'
                USING ERRCODE = 'DX003';
        END IF;
        v_burst := (p_limit->>'burst')::DOUBLE PRECISION;
    ELSIF v_rate IS NOT NULL THEN
        v_burst := 1;
    END IF;

    INSERT INTO flow_limits AS f (flow_key, max_active, active, rate_per_s, burst, tokens, refilled_ms,
                                  created_at_ms, updated_at_ms)
    VALUES (p_key, v_max, (SELECT count(*) FROM worker_queue w WHERE w.flow_key = p_key)
                          + (SELECT count(*) FROM flow_instance_permits h WHERE h.flow_key = p_key), v_rate, v_burst,
            v_burst, CASE WHEN v_rate IS NOT NULL THEN v_now END, v_now, v_now)
    ON CONFLICT (flow_key) DO UPDATE
        SET max_active = EXCLUDED.max_active,
            rate_per_s = EXCLUDED.rate_per_s,
            burst = EXCLUDED.burst,
            tokens = LEAST(COALESCE(f.tokens, EXCLUDED.tokens), EXCLUDED.burst),
            refilled_ms = CASE WHEN EXCLUDED.rate_per_s IS NOT NULL THEN COALESCE(f.refilled_ms, EXCLUDED.refilled_ms) END,
            updated_at_ms = EXCLUDED.updated_at_ms;
    -- Checked under the key's row lock just taken, so no start slips in between.
    IF v_rate IS NOT NULL AND (EXISTS (SELECT 1 FROM flow_instance_permits h WHERE h.flow_key = p_key)
                               OR EXISTS (SELECT 1 FROM flow_parked_starts s WHERE s.flow_key = p_key)) THEN
        RAISE EXCEPTION 'flow key % is held by orchestration instances: an orchestration flow key takes maxActive only, not perSecond', p_key
            USING ERRCODE = 'DX004';
    END IF;
    PERFORM internal_flow_undefer(p_key, v_now);
    PERFORM internal_flow_pump(p_key, 0, v_now);
    RETURN (SELECT l FROM json_array_elements(get_flow_limits(p_key)) AS l);
END;
$$;

-- get_flow_limits: every limit (or only p_key's) with its permits in use and what waits for one.
-- Lock order: none (read-only).
-- Errors: none.
-- Returns: json array, by key, of {flowKey, maxActive, active, parked, activeInstances,
-- parkedInstances, perSecond, burst, createdAtMs, updatedAtMs}: active counts every permit in use
-- (activities queued or running, and instances that hold one), parked every activity and start
-- waiting; activeInstances and parkedInstances are the instances' share of each.
DROP FUNCTION IF EXISTS get_flow_limits();
CREATE OR REPLACE FUNCTION get_flow_limits(p_key TEXT DEFAULT NULL) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(json_agg(json_build_object(
               'flowKey', f.flow_key, 'maxActive', f.max_active, 'active', f.active,
               'parked', COALESCE(p.parked, 0) + COALESCE(ps.parked, 0),
               'activeInstances', COALESCE(h.held, 0), 'parkedInstances', COALESCE(ps.parked, 0),
               'perSecond', f.rate_per_s, 'burst', f.burst,
               'createdAtMs', f.created_at_ms, 'updatedAtMs', f.updated_at_ms)
           ORDER BY f.flow_key), '[]'::json)
    FROM flow_limits f
    LEFT JOIN (SELECT fp.flow_key, count(*) AS parked FROM flow_parked fp GROUP BY fp.flow_key) p
        ON p.flow_key = f.flow_key
    LEFT JOIN (SELECT s.flow_key, count(*) AS parked FROM flow_parked_starts s GROUP BY s.flow_key) ps
        ON ps.flow_key = f.flow_key
    LEFT JOIN (SELECT fh.flow_key, count(*) AS held FROM flow_instance_permits fh GROUP BY fh.flow_key) h
        ON h.flow_key = f.flow_key
    WHERE p_key IS NULL OR f.flow_key = p_key
$$;

-- delete_flow_limit: removes the limit of p_key; its parked activities and starts are queued and
-- its deferred activities made fetchable at once (announced), and new ones are no longer counted.
-- Instances holding a permit of the key keep their row (a limit created again counts them) until
-- they end.
-- Lock order: the key's flow_limits row (DELETE) -> its flow_parked and flow_parked_starts rows.
-- Errors: none (an unknown key is reported, not refused).
-- Returns: {deleted: whether a limit existed, released: the parked activities and starts queued}.
CREATE OR REPLACE FUNCTION delete_flow_limit(p_key TEXT) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_now   BIGINT := internal_current_time_ms();
    v_moved INTEGER := 0;
BEGIN
    DELETE FROM flow_limits WHERE flow_key = p_key;
    IF NOT FOUND THEN
        RETURN json_build_object('deleted', FALSE, 'released', 0);
    END IF;
    v_moved := internal_flow_admit_parked(p_key, NULL, NULL, v_now);
    PERFORM internal_flow_undefer(p_key, v_now);
    RETURN json_build_object('deleted', TRUE, 'released', v_moved);
END;
$$;
