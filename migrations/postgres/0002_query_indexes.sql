-- voxdial schema v2 (PostgreSQL): indexes for the seeds' queries (docs/schema.md).

-- query_done_task_phones (seed 000) filters by task + calldate range and
-- orders by calldate DESC; score, bill and rounds ride along in the index so
-- the range filters and the COUNT(*) are answered from the index alone.
DROP INDEX records_task_calldate;
CREATE INDEX records_task_calldate ON records (task_id, calldate, score, bill, rounds);
-- keyword (被叫号码): varchar_pattern_ops serves `callee = ?` and the prefix
-- form `callee LIKE '138%'` whatever the database collation.
DROP INDEX records_task_callee;
CREATE INDEX records_task_callee ON records (task_id, callee varchar_pattern_ops);
-- detail rows of a task (summaries, exports)
CREATE INDEX record_details_task ON record_details (task_id);
-- tasks of a user, running tasks (the dialer's poll)
CREATE INDEX autodialer_task_user ON autodialer_task (user_id);
CREATE INDEX autodialer_task_start ON autodialer_task (start);
-- script groups of a user, levels of a group
CREATE INDEX script_groups_user ON script_groups (user_id);
CREATE INDEX levels_group ON levels (group_id);
