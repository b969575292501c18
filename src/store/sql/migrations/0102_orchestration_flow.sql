-- Flow keys of orchestrations: a start given a flowKey takes a permit of that key for the life of
-- its instance (continue-as-new included) or waits in flow_parked_starts, a table the hot fetch
-- never reads (src/store/sql/procedures/flow.sql).

-- One row per instance holding a permit (flow_limits.active counts these rows besides the
-- worker_queue rows carrying the key). Keyed by instance, not by message: the permit outlives the
-- start message and every execution of the instance, and is given back when the instance ends or
-- is deleted. The key index serves the count of a new limit.
CREATE TABLE IF NOT EXISTS flow_instance_permits (
    instance_id   TEXT PRIMARY KEY,
    flow_key      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_instance_permits_key_idx ON flow_instance_permits (flow_key);

-- Starts waiting for a permit, at most one per instance (a repeated start while parked is the same
-- start). id is drawn from worker_queue's sequence, as flow_parked's, so the activities and the
-- starts parked under one key are admitted in one FIFO order.
CREATE TABLE IF NOT EXISTS flow_parked_starts (
    id            BIGINT PRIMARY KEY,
    flow_key      TEXT NOT NULL,
    instance_id   TEXT NOT NULL UNIQUE,
    work_item     TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_parked_starts_next_idx ON flow_parked_starts (flow_key, id);
