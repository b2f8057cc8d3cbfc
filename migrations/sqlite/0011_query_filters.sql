-- query_done_task_phones filters (issue #6).
-- A record's tags carry its task: the tags filter counts a task's tagged
-- records from this index alone instead of probing taggables for every
-- record of the task. Only records' tags (`taggable_type = 'record'`) have a
-- task_id and an entry here; detail rows, utterances and branches keep NULL.
ALTER TABLE taggables ADD COLUMN task_id TEXT NULL;
UPDATE taggables SET task_id = (SELECT r.task_id FROM records r WHERE r.id = taggables.taggable_id)
    WHERE taggable_type = 'record';
CREATE INDEX taggables_task_tag ON taggables (task_id, tag_id, taggable_id) WHERE taggable_type = 'record';

-- Records per task and talk-time second, kept by the write path in the
-- transaction that writes the records (Store::write_calls): the list's
-- unfiltered total and its `bills` total (whole seconds) are a sum over at
-- most a few thousand rows instead of a COUNT(*) over the task's records.
CREATE TABLE record_counts (
    task_id TEXT NOT NULL,
    bill_s INTEGER NOT NULL,
    records INTEGER NOT NULL,
    -- Rows are split by a hash of the call id (0–15), so nodes finalizing
    -- calls of one task at once rarely wait for each other's row lock.
    shard INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, bill_s, shard)
);
INSERT INTO record_counts (task_id, bill_s, records)
    SELECT task_id, CASE WHEN bill >= 0 THEN bill / 1000 ELSE -((999 - bill) / 1000) END AS s, COUNT(*)
    FROM records GROUP BY task_id, s;
