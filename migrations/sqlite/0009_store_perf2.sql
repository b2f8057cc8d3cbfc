-- Store performance, round 2 (issue #3).
-- records_api_list without its trailing id: the COUNT(*) of
-- query_done_task_phones is an index-only scan over every entry of the
-- calldate window, and an entry without the 36-character id is ~30 % smaller
-- (fewer pages to read and keep cached). The page's ORDER BY calldate DESC,
-- id DESC is still served in calldate order (ties on calldate are sorted on
-- the id of the few rows read from the heap anyway).
DROP INDEX records_api_list;
CREATE INDEX records_api_list ON records (task_id, calldate, score, bill, rounds);
