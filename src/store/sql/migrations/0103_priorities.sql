-- Priorities (procedures: orchestration.sql, worker.sql, flow.sql; design: README "Priorities").
-- A priority is a level 0..9 (0, the default, is the lowest). Both queues and the parked
-- activities order by a rank: the time the row became fetchable minus a head start of one minute
-- per level, so higher levels go first, FIFO within a level, and an item is overtaken only by
-- items of a level d higher that became fetchable less than d minutes after it (the starvation
-- bound). The step is part of the stored rank: changing it takes a new migration.
--
-- The rank is a generated column, so every writer of visible_at_ms (abandon with a delay, rate
-- deferrals) keeps it right without knowing about it. The rank indexes replace the visibility
-- indexes: rank_ms <= visible_at_ms for every row (levels are never negative), so a fetch bounds
-- its scan with rank_ms <= now and walks exactly the rows the visibility index walked when every
-- row has the default level (a timer's rank is its fire time); a row of level p is walked, and
-- skipped inside the index by its visible_at_ms, only in the last p minutes before it is due.
-- The worker queue is fetched in rank order now, no longer by id: an activity admitted from
-- flow_parked (0101) ranks from the time it was admitted.

ALTER TABLE instances ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);

ALTER TABLE orchestrator_queue ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);
ALTER TABLE orchestrator_queue ADD COLUMN IF NOT EXISTS rank_ms BIGINT
    GENERATED ALWAYS AS (visible_at_ms - priority * 60000::BIGINT) STORED;
DROP INDEX IF EXISTS orchestrator_queue_visible_idx;
CREATE INDEX IF NOT EXISTS orchestrator_queue_rank_idx ON orchestrator_queue (rank_ms, visible_at_ms, id);

ALTER TABLE worker_queue ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);
ALTER TABLE worker_queue ADD COLUMN IF NOT EXISTS rank_ms BIGINT
    GENERATED ALWAYS AS (visible_at_ms - priority * 60000::BIGINT) STORED;
DROP INDEX IF EXISTS worker_queue_visible_idx;
CREATE INDEX IF NOT EXISTS worker_queue_rank_idx ON worker_queue (rank_ms, visible_at_ms, id);

-- A parked activity waits since it was enqueued: its rank is its enqueue time minus the head start.
ALTER TABLE flow_parked ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);
ALTER TABLE flow_parked ADD COLUMN IF NOT EXISTS rank_ms BIGINT
    GENERATED ALWAYS AS (created_at_ms - priority * 60000::BIGINT) STORED;
DROP INDEX IF EXISTS flow_parked_next_idx;
CREATE INDEX IF NOT EXISTS flow_parked_rank_idx ON flow_parked (flow_key, rank_ms, id);
