-- query_done_task_phones, `tags` filter (issue #6): a record's tag rows carry
-- the record's calldate, so one tag's newest records can be read from the
-- task's tag index in date order (see the PostgreSQL migration).
ALTER TABLE taggables ADD COLUMN calldate VARCHAR(19) NULL,
    DROP INDEX taggables_task_tag,
    ADD INDEX taggables_task_tag (task_id, tag_id, taggable_type, calldate, taggable_id);
UPDATE taggables tg JOIN records r ON r.id = tg.taggable_id SET tg.calldate = r.calldate
    WHERE tg.taggable_type = 'record';
