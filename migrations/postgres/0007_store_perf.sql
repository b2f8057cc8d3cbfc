-- Store performance (issue #3).
-- records_api_list (task_id, calldate, score, bill, rounds, id) covers every
-- query records_task_calldate served: one index less on each record insert.
DROP INDEX records_task_calldate;
-- Tag filters probe (tag_id, taggable_type, taggable_id) from the index
-- alone; it also serves every query taggables_tag served.
CREATE INDEX taggables_tag_target ON taggables (tag_id, taggable_type, taggable_id);
DROP INDEX taggables_tag;
-- Only a count of a task's detail rows used it; that count goes through
-- records now. One index less on each of the ten detail rows per call.
DROP INDEX record_details_task;
