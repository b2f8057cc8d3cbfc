-- Store performance, round 2 (issue #3).
-- records_api_list without its trailing id, as on PostgreSQL and SQLite (the
-- COUNT(*) of query_done_task_phones scans every entry of the calldate
-- window, and smaller entries mean fewer pages). InnoDB appends the primary
-- key to every secondary index anyway, so here the index keeps the same
-- entries; the definition stays the same on all three backends.
ALTER TABLE records DROP INDEX records_api_list,
    ADD INDEX records_api_list (task_id, calldate, score, bill, rounds);
