-- Store performance, round 2 (issue #3): only PostgreSQL's records_task_callee
-- changes (back to a plain (task_id, callee) index, which this backend has
-- had all along). Kept so the version numbers match on every backend.
SELECT 1;
