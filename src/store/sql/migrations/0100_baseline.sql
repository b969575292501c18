-- Durox storage baseline: every table and index of the store (what migrations 0001-0010 of the
-- earlier layout built, folded into one file). Storage migrations create or alter tables,
-- indexes and types only, never functions: the procedures live in ../procedures/ and are
-- re-applied by the migration runner whenever their text changes (see docs/sql.md).
--
-- Numbered 0100, not 0001: stores of the earlier layout recorded versions 1-11, so a build from
-- before this layout refuses a store it cannot understand ("migrated by a newer build") instead
-- of re-applying its own migrations on top, and this build recognises those stores (version
-- below 100) and upgrades them in place (src/store/migrations.ts).
--
-- The migration runner sets search_path to the target schema (then pg_catalog, pg_temp) for the
-- transaction that runs this file, so every name here is unqualified and lands in that schema.
-- All times are BIGINT epoch milliseconds read from the database clock (internal_current_time_ms,
-- one clock for every worker). Payload columns (work items, event data, outputs, KV values) are
-- TEXT holding the JSON text produced by TypeScript: jsonb would reject "\u0000" escapes and
-- reorder keys. There are no foreign keys: orphan completions (for a deleted instance) must stay
-- storable.

-- One-row table holding the offset added to the database clock. Always 0 in production; the
-- documented test hook set_test_clock_offset() moves it so tests can expire locks without sleeping.
CREATE TABLE IF NOT EXISTS test_clock (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    offset_ms BIGINT NOT NULL DEFAULT 0
);
INSERT INTO test_clock (singleton, offset_ms) VALUES (TRUE, 0) ON CONFLICT (singleton) DO NOTHING;

CREATE TABLE IF NOT EXISTS instances (
    instance_id           TEXT PRIMARY KEY,
    orchestration_name    TEXT NOT NULL,
    orchestration_version TEXT NULL,
    current_execution_id  BIGINT NOT NULL,
    parent_instance_id    TEXT NULL,
    custom_status         TEXT NULL,
    custom_status_version INTEGER NOT NULL DEFAULT 0,
    created_at_ms         BIGINT NOT NULL,
    updated_at_ms         BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_parent_idx ON instances (parent_instance_id);
CREATE INDEX IF NOT EXISTS instances_created_idx ON instances (created_at_ms DESC, instance_id);
-- Keyset order of list_instances_page: newest first, instance id breaking ties (both descending,
-- so a row comparison against the cursor is one index condition). Plans: management.sql.
CREATE INDEX IF NOT EXISTS instances_page_idx ON instances (created_at_ms DESC, instance_id DESC);
CREATE INDEX IF NOT EXISTS instances_name_page_idx
    ON instances (orchestration_name, created_at_ms DESC, instance_id DESC);

CREATE TABLE IF NOT EXISTS executions (
    instance_id     TEXT NOT NULL,
    execution_id    BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'Running'
                    CHECK (status IN ('Running', 'Completed', 'Failed', 'ContinuedAsNew')),
    -- Result (Completed), error display message (Failed) or next input (ContinuedAsNew).
    output          TEXT NULL,
    -- ErrorDetails JSON text of a Failed execution.
    failure_details TEXT NULL,
    started_at_ms   BIGINT NOT NULL,
    -- Set for every terminal status, ContinuedAsNew included (the reference left it NULL).
    completed_at_ms BIGINT NULL,
    -- The Durox version that started the execution, from the duroxVersion stamped on its
    -- OrchestrationStarted event (set by the history_pin_execution_version trigger). NULL =
    -- unpinned (always compatible). Three integers, so no component is limited to 999.
    pinned_major    INTEGER NULL,
    pinned_minor    INTEGER NULL,
    pinned_patch    INTEGER NULL,
    PRIMARY KEY (instance_id, execution_id)
);
CREATE INDEX IF NOT EXISTS executions_status_idx ON executions (status, instance_id, execution_id);
CREATE INDEX IF NOT EXISTS executions_started_idx ON executions (started_at_ms);
CREATE INDEX IF NOT EXISTS executions_completed_idx ON executions (completed_at_ms)
    WHERE completed_at_ms IS NOT NULL;

CREATE TABLE IF NOT EXISTS history (
    instance_id   TEXT NOT NULL,
    execution_id  BIGINT NOT NULL,
    event_id      BIGINT NOT NULL CHECK (event_id > 0),
    -- The event's real kind (e.g. 'ActivityScheduled'), not a constant.
    event_type    TEXT NOT NULL,
    event_data    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
);

CREATE TABLE IF NOT EXISTS orchestrator_queue (
    id            BIGSERIAL PRIMARY KEY,
    -- Routing target: the parent for SubOrchCompleted/SubOrchFailed, else the item's instance.
    instance_id   TEXT NOT NULL,
    -- The work item's type, so fetch can find start messages without parsing JSON.
    kind          TEXT NOT NULL,
    work_item     TEXT NOT NULL,
    visible_at_ms BIGINT NOT NULL,
    -- Token of the fetch that delivered this message (the batch an ack consumes).
    lock_token    TEXT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS orchestrator_queue_visible_idx ON orchestrator_queue (visible_at_ms, id);
CREATE INDEX IF NOT EXISTS orchestrator_queue_instance_idx ON orchestrator_queue (instance_id, kind);
CREATE INDEX IF NOT EXISTS orchestrator_queue_lock_idx ON orchestrator_queue (lock_token);

-- The authoritative per-instance lease of an orchestration turn.
CREATE TABLE IF NOT EXISTS instance_locks (
    instance_id     TEXT PRIMARY KEY,
    lock_token      TEXT NOT NULL UNIQUE,
    locked_until_ms BIGINT NOT NULL,
    locked_at_ms    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS worker_queue (
    id              BIGSERIAL PRIMARY KEY,
    work_item       TEXT NOT NULL,
    instance_id     TEXT NOT NULL,
    execution_id    BIGINT NOT NULL,
    activity_id     BIGINT NOT NULL,
    -- NULL = the default (untagged) pool.
    tag             TEXT NULL,
    visible_at_ms   BIGINT NOT NULL,
    lock_token      TEXT NULL UNIQUE,
    locked_until_ms BIGINT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    created_at_ms   BIGINT NOT NULL,
    -- The session an activity is pinned to, read from the stored ActivityExecute JSON. A generated
    -- column keeps every writer of worker_queue unchanged.
    session_id      TEXT GENERATED ALWAYS AS ((work_item::json) ->> 'sessionId') STORED
);
CREATE INDEX IF NOT EXISTS worker_queue_visible_idx ON worker_queue (visible_at_ms, id);
CREATE INDEX IF NOT EXISTS worker_queue_activity_idx ON worker_queue (instance_id, execution_id, activity_id);
CREATE INDEX IF NOT EXISTS worker_queue_tag_idx ON worker_queue (tag);
CREATE INDEX IF NOT EXISTS worker_queue_session_idx ON worker_queue (session_id) WHERE session_id IS NOT NULL;

-- One row per pinned worker session: which worker identity owns it and until when. An expired
-- row is claimable by any worker; an unexpired one only by its owner.
CREATE TABLE IF NOT EXISTS sessions (
    session_id          TEXT PRIMARY KEY,
    worker_id           TEXT NOT NULL,
    locked_until_ms     BIGINT NOT NULL,
    last_activity_at_ms BIGINT NOT NULL,
    created_at_ms       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_worker_idx ON sessions (worker_id);

-- Key-value state as of the last terminal execution boundary (what fetch snapshots show).
CREATE TABLE IF NOT EXISTS kv_store (
    instance_id        TEXT NOT NULL,
    key                TEXT NOT NULL,
    value              TEXT NOT NULL,
    last_updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (instance_id, key)
);

-- Mutations of the current, not yet terminal execution; value NULL is a tombstone.
CREATE TABLE IF NOT EXISTS kv_delta (
    instance_id        TEXT NOT NULL,
    key                TEXT NOT NULL,
    value              TEXT NULL,
    last_updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (instance_id, key)
);
