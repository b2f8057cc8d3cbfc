-- Store performance, round 3 (issue #3).
-- Nothing looks a detail row up by its id (the API reads a record's rows by
-- record_id in sequence order; detail tags point at the id from taggables),
-- yet its primary-key index took one entry for each of the ten detail rows
-- of every call. (record_id, sequence), unique already, becomes the primary
-- key; id stays a NOT NULL column (a UUID v7, unique by construction).
ALTER TABLE record_details
    DROP CONSTRAINT record_details_pkey,
    DROP CONSTRAINT record_details_record_id_sequence_key,
    ADD CONSTRAINT record_details_pkey PRIMARY KEY (record_id, sequence);
-- Every query on a ledger state looks for a node's dials that are not over
-- (`node_id = ? AND state NOT IN ('finalized', 'failed')`), which
-- (state, node_id) could not serve as a range: the planner read the whole
-- index or the table (both grow with every dial ever made), and every
-- finalized row took an entry in it. The partial index holds only the open
-- dials.
DROP INDEX dial_ledger_state;
CREATE INDEX dial_ledger_open ON dial_ledger (node_id) WHERE state NOT IN ('finalized', 'failed');
