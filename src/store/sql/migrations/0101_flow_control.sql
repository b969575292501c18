-- Flow control: concurrency limits per flow key, as permits handed over inside the procedures
-- (src/store/sql/procedures/flow.sql). A limited activity either takes a permit when it is
-- enqueued (its worker_queue row then carries flow_key) or waits in flow_parked, a separate
-- table, so the rows the hot fetch walks never include parked work.

-- One row per limited key. active = the worker_queue rows carrying this flow_key (permits held);
-- max_active NULL = no concurrency limit. rate_per_s/burst: a token bucket on the database clock
-- (NULL = no rate limit), tokens as of refilled_ms.
CREATE TABLE IF NOT EXISTS flow_limits (
    flow_key      TEXT PRIMARY KEY,
    max_active    INTEGER NULL CHECK (max_active IS NULL OR max_active >= 0),
    active        INTEGER NOT NULL DEFAULT 0,
    rate_per_s    DOUBLE PRECISION NULL CHECK (rate_per_s IS NULL OR rate_per_s > 0),
    burst         DOUBLE PRECISION NULL CHECK (burst IS NULL OR burst >= 1),
    tokens        DOUBLE PRECISION NULL,
    refilled_ms   BIGINT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- The key whose permit the row holds; NULL for work admitted without a limit. The index serves
-- the counts of a new limit and the rate limiter's look-ups of a key's waiting rows.
ALTER TABLE worker_queue ADD COLUMN IF NOT EXISTS flow_key TEXT NULL;
CREATE INDEX IF NOT EXISTS worker_queue_flow_key_idx ON worker_queue (flow_key, visible_at_ms) WHERE flow_key IS NOT NULL;

-- Activities waiting for a permit. id is drawn from worker_queue's sequence and kept when the
-- row is admitted, so an admitted activity keeps its place in the FIFO order of the queue.
CREATE TABLE IF NOT EXISTS flow_parked (
    id            BIGINT PRIMARY KEY,
    flow_key      TEXT NOT NULL,
    work_item     TEXT NOT NULL,
    instance_id   TEXT NOT NULL,
    execution_id  BIGINT NOT NULL,
    activity_id   BIGINT NOT NULL,
    tag           TEXT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_parked_next_idx ON flow_parked (flow_key, id);
CREATE INDEX IF NOT EXISTS flow_parked_activity_idx ON flow_parked (instance_id, execution_id, activity_id);
