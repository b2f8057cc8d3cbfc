-- Store performance, round 5 (issue #3): fewer index entries per finalized
-- call (PostgreSQL: 32 -> 24, with the HOT ledger update below).
-- Since 0013 the list's `rounds` total comes from record_facet_counts and
-- its `bills` total from record_counts; its pages read records_api_list
-- (task_id, calldate, score, bill, rounds, id) backwards, which checks both
-- ranges from the index. What used records_task_bill / records_task_rounds
-- was a count of a rare combination without a date window (e.g. one
-- talk-time second and a score range: 3 -> 135 ms at 1M records), which
-- records_api_list answers as well, more slowly. records_task_score stays:
-- a narrow score range with other filters pages through it (0.9 ms; 94-124
-- ms through records_api_list). See docs/bench-store.md, round 5.
DROP INDEX records_task_bill;
DROP INDEX records_task_rounds;
-- The tags probe (`tg.tag_id IN (...) AND tg.taggable_id = r.id`) uses the
-- primary key (taggable_id, tag_id); the tags filter alone reads
-- taggables_task_tag. No query reads taggables by tag first.
DROP INDEX taggables_tag_target;

-- The open dials (issue #3): a row per attempt not over yet, written with
-- its dial_ledger row (Store::ledger_begin) and deleted in the transaction
-- that finalizes the call (Store::write_calls) or fails the attempt. Crash
-- reconciliation, take-over and the node list find a node's open dials
-- here. dial_ledger_open (0010) named `state` in its predicate, which made
-- every finalizing UPDATE of dial_ledger a non-HOT update: a new entry in
-- each of the ledger's five other indexes per call. No index names `state`
-- now, and the ledger's pages keep room for the new row versions, so that
-- UPDATE stays on its page without index entries (HOT).
DROP INDEX dial_ledger_open;
CREATE TABLE open_dials (
    origination_uuid VARCHAR(64) COLLATE "C" PRIMARY KEY,
    node_id VARCHAR(100) COLLATE "C" NOT NULL,
    number_id BIGINT NOT NULL,
    -- dial_ledger.id: a node's open dials in the order they were dialled.
    ledger_id BIGINT NOT NULL
);
CREATE INDEX open_dials_node ON open_dials (node_id, ledger_id);
INSERT INTO open_dials (origination_uuid, node_id, number_id, ledger_id)
    SELECT origination_uuid, node_id, number_id, id FROM dial_ledger
    WHERE state NOT IN ('finalized', 'failed');
-- Half of each new ledger page stays free: every row is updated once more
-- (finalized or failed; a take-over adds one), and a HOT update needs room
-- on the row's own page. At 70 only 46 % of the bench's finalizing updates
-- were HOT (rows written seconds earlier, old versions not yet prunable),
-- at 50 all of them. The cost: new ledger pages hold half as many rows.
ALTER TABLE dial_ledger SET (fillfactor = 50);
