-- Records per task and score / rounds value, and per task and tag (issue
-- #6), kept by the write path in the records' transaction like record_counts
-- (0011): the list's `levels` total (score ranges), `rounds` total and one
-- tag's total are a sum over at most a few thousand rows instead of an exact
-- COUNT(*) over hundreds of thousands of index entries (levels with two
-- ranges over 600k of 1M records: 87 ms p50 through the HTTP API,
-- docs/bench-api.md).
-- facet: 1 = records.score, 2 = records.rounds; facet_value: that column's value.
CREATE TABLE record_facet_counts (
    task_id VARCHAR(64) NOT NULL,
    facet SMALLINT NOT NULL,
    facet_value BIGINT NOT NULL,
    -- 0–15, a hash of the call id, as in record_counts.
    shard SMALLINT NOT NULL DEFAULT 0,
    records BIGINT NOT NULL,
    PRIMARY KEY (task_id, facet, facet_value, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO record_facet_counts (task_id, facet, facet_value, records)
    SELECT task_id, 1, score, COUNT(*) FROM records GROUP BY task_id, score;
INSERT INTO record_facet_counts (task_id, facet, facet_value, records)
    SELECT task_id, 2, rounds, COUNT(*) FROM records GROUP BY task_id, rounds;

-- Records per task and tag: one tag's total (100k tagged of 1M records:
-- 27 ms p50, 129 ms p99 counting taggables_task_tag at load ~3).
CREATE TABLE record_tag_counts (
    task_id VARCHAR(64) NOT NULL,
    tag_id VARCHAR(100) NOT NULL,
    shard SMALLINT NOT NULL DEFAULT 0,
    records BIGINT NOT NULL,
    PRIMARY KEY (task_id, tag_id, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO record_tag_counts (task_id, tag_id, records)
    SELECT task_id, tag_id, COUNT(*) FROM taggables
    WHERE taggable_type = 'record' AND task_id IS NOT NULL GROUP BY task_id, tag_id;
