-- A child parked behind a flow limit (0102) has no instances row yet, but belongs to its parent's
-- tree: deleting the parent's tree deletes its parked start too (internal_instance_tree_ids), and a
-- partial tree that leaves it out is refused as an orphan (delete_instances). Its parent is kept
-- in a column for that lookup (NULL for a root or detached start).
ALTER TABLE flow_parked_starts ADD COLUMN IF NOT EXISTS parent_instance_id TEXT;
-- Starts parked by an earlier build carry their parent in their work item only.
UPDATE flow_parked_starts SET parent_instance_id = work_item::json->>'parentInstance'
WHERE strpos(work_item, '"parentInstance"') > 0;
CREATE INDEX IF NOT EXISTS flow_parked_starts_parent_idx ON flow_parked_starts (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;
