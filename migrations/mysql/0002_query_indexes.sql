-- voxdial schema v2 (MySQL / MariaDB): indexes for the seeds' queries (docs/schema.md).

-- query_done_task_phones (seed 000) filters by task + calldate range and
-- orders by calldate DESC; score, bill and rounds ride along in the index so
-- the range filters and the COUNT(*) are answered from the index alone.
-- (records_task_callee (task_id, callee) already serves `callee = ?` and the
-- prefix form `callee LIKE '138%'` under utf8mb4_bin.)
ALTER TABLE records DROP INDEX records_task_calldate,
    ADD INDEX records_task_calldate (task_id, calldate, score, bill, rounds);
-- detail rows of a task (summaries, exports)
ALTER TABLE record_details ADD INDEX record_details_task (task_id);
-- tasks of a user, running tasks (the dialer's poll)
ALTER TABLE autodialer_task ADD INDEX autodialer_task_user (user_id), ADD INDEX autodialer_task_start (start);
-- script groups of a user, levels of a group
ALTER TABLE script_groups ADD INDEX script_groups_user (user_id);
ALTER TABLE levels ADD INDEX levels_group (group_id);
