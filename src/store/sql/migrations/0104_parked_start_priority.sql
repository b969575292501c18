-- Parked starts ranked by priority (procedures: flow.sql, internal_flow_start and
-- internal_flow_admit_parked). A start parked behind a flow limit (0102) keeps its level in a
-- column and ranks like a parked activity (0103): its enqueue time minus a head start of one
-- minute per level. The admission of a freed permit walks both parks by rank, so one rule orders
-- activities and starts of a key alike; before this, parked starts were taken in arrival order
-- (their level was read from the work item and not indexed).

ALTER TABLE flow_parked_starts ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);
-- Starts parked by an earlier build carry their level in their work item only (checked 0..9 when
-- they were enqueued).
UPDATE flow_parked_starts SET priority = (work_item::json->>'priority')::SMALLINT
WHERE strpos(work_item, '"priority"') > 0 AND (work_item::json->>'priority') ~ '^[0-9]$';
ALTER TABLE flow_parked_starts ADD COLUMN IF NOT EXISTS rank_ms BIGINT
    GENERATED ALWAYS AS (created_at_ms - priority * 60000::BIGINT) STORED;
DROP INDEX IF EXISTS flow_parked_starts_next_idx;
CREATE INDEX IF NOT EXISTS flow_parked_starts_rank_idx ON flow_parked_starts (flow_key, rank_ms, id);
