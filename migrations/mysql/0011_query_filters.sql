-- query_done_task_phones filters (issue #6).
-- A record's tags carry its task: the tags filter counts a task's tagged
-- records from this index alone instead of probing taggables for every
-- record of the task. Only records' tags (`taggable_type = 'record'`) have a
-- task_id; detail rows, utterances and branches keep NULL (MariaDB has no
-- partial indexes, so theirs are NULL entries at the index's start).
ALTER TABLE taggables ADD COLUMN task_id VARCHAR(64) NULL,
    ADD INDEX taggables_task_tag (task_id, tag_id, taggable_type, taggable_id);
UPDATE taggables tg JOIN records r ON r.id = tg.taggable_id SET tg.task_id = r.task_id
    WHERE tg.taggable_type = 'record';

-- Records per task and talk-time second, kept by the write path in the
-- transaction that writes the records (Store::write_calls): the list's
-- unfiltered total and its `bills` total (whole seconds) are a sum over at
-- most a few thousand rows instead of a COUNT(*) over the task's records.
CREATE TABLE record_counts (
    task_id VARCHAR(64) NOT NULL,
    bill_s BIGINT NOT NULL,
    records BIGINT NOT NULL,
    -- Rows are split by a hash of the call id (0–15), so nodes finalizing
    -- calls of one task at once rarely wait for each other's row lock.
    shard SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, bill_s, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO record_counts (task_id, bill_s, records)
    SELECT task_id, FLOOR(bill / 1000), COUNT(*) FROM records GROUP BY task_id, FLOOR(bill / 1000);
