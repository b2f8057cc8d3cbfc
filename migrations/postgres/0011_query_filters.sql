-- query_done_task_phones filters (issue #6).
-- A record's tags carry its task: the tags filter counts a task's tagged
-- records from this index alone (1M records, one tag on 100k of them: 316 ms
-- p99 through records → see docs/bench-store.md) instead of probing taggables
-- for every record of the task. Only records' tags (`taggable_type =
-- 'record'`) have a task_id and an entry here; detail rows, utterances and
-- branches keep NULL and cost no index entry.
ALTER TABLE taggables ADD COLUMN task_id VARCHAR(64) COLLATE "C" NULL;
UPDATE taggables tg SET task_id = r.task_id FROM records r
    WHERE tg.taggable_type = 'record' AND r.id = tg.taggable_id;
CREATE INDEX taggables_task_tag ON taggables (task_id, tag_id, taggable_id) WHERE taggable_type = 'record';

-- Records per task and talk-time second, kept by the write path in the
-- transaction that writes the records (Store::write_calls): the list's
-- unfiltered total and its `bills` total (whole seconds) are a sum over at
-- most a few thousand rows instead of an exact COUNT(*) over up to a million
-- index entries (69–71 ms p99 at 1M records).
CREATE TABLE record_counts (
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    bill_s BIGINT NOT NULL,
    records BIGINT NOT NULL,
    -- Rows are split by a hash of the call id (0–15), so nodes finalizing
    -- calls of one task at once rarely wait for each other's row lock.
    shard SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, bill_s, shard)
);
INSERT INTO record_counts (task_id, bill_s, records)
    SELECT task_id, CAST(floor(bill / 1000.0) AS BIGINT), COUNT(*) FROM records GROUP BY 1, 2;
