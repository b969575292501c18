-- Every activity is a worker_queue insert and delete, each maintaining every index of the table.
-- No statement reads worker_queue by tag alone: fetch_work_item walks worker_queue_rank_idx and
-- tests the tag on the rows it walks (its filter is a CASE over the filter mode, which no index
-- serves), so the tag index was only written, never read.
DROP INDEX IF EXISTS worker_queue_tag_idx;
