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
-- here instead of in dial_ledger_state (state, node_id), which took an entry
-- for every dial ever made and moved it at every state change. (On
-- PostgreSQL the point is that no index names `state`: the finalizing
-- UPDATE of dial_ledger stays HOT.)
DROP INDEX dial_ledger_state;
CREATE TABLE open_dials (
    origination_uuid TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    number_id INTEGER NOT NULL,
    -- dial_ledger.id: a node's open dials in the order they were dialled.
    ledger_id INTEGER NOT NULL
);
CREATE INDEX open_dials_node ON open_dials (node_id, ledger_id);
INSERT INTO open_dials (origination_uuid, node_id, number_id, ledger_id)
    SELECT origination_uuid, node_id, number_id, id FROM dial_ledger
    WHERE state NOT IN ('finalized', 'failed');
