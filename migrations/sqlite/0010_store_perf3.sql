-- Store performance, round 3 (issue #3): only PostgreSQL changes
-- (record_details' primary key becomes (record_id, sequence); the ledger's
-- state index becomes a partial index of the open dials). Here the detail id
-- stays the primary key (SQLite would have to rebuild the table). Kept so
-- the version numbers match on every backend.
SELECT 1;
