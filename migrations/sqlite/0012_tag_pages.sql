-- query_done_task_phones, `tags` filter (issue #6): a record's tag rows carry
-- the record's calldate, so one tag's newest records can be read from the
-- task's tag index in date order (see the PostgreSQL migration).
ALTER TABLE taggables ADD COLUMN calldate TEXT NULL;
UPDATE taggables SET calldate = (SELECT r.calldate FROM records r WHERE r.id = taggables.taggable_id)
    WHERE taggable_type = 'record';
DROP INDEX taggables_task_tag;
CREATE INDEX taggables_task_tag ON taggables (task_id, tag_id, calldate, taggable_id) WHERE taggable_type = 'record';
