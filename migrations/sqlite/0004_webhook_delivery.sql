-- voxdial schema v2 (SQLite): webhook events written atomically with their
-- call, and a log of every delivery attempt.
--
-- The finalizer stages a call's webhook events in `webhook_staged` before the
-- call's transaction; the trigger below moves them into `webhook_outbox`
-- inside that transaction (the INSERT of the call-history row), so an event
-- exists exactly when its call's rows exist. A call that fails to write or is
-- a duplicate leaves its staged rows behind; the finalizer removes them.
--
-- `webhook_outbox.next_attempt_at` holds milliseconds ('YYYY-MM-DD HH:MM:SS.mmm')
-- so short retry delays work; the strings still sort with second-only ones.

CREATE TABLE webhook_staged (
    idempotency_key TEXT PRIMARY KEY,
    callid TEXT NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_staged_callid ON webhook_staged (callid);

CREATE TRIGGER webhook_outbox_promote AFTER INSERT ON auto_call_histories
BEGIN
    INSERT INTO webhook_outbox (task_id, callid, kind, url, payload, idempotency_key, state, attempts, next_attempt_at, created_at)
    SELECT s.task_id, s.callid, s.kind, s.url, s.payload, s.idempotency_key, 'pending', 0, s.created_at, s.created_at
    FROM webhook_staged s
    WHERE s.callid = NEW.call_id
      AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.idempotency_key = s.idempotency_key);
    DELETE FROM webhook_staged WHERE callid = NEW.call_id;
END;

CREATE TABLE webhook_deliveries (       -- one row per HTTP attempt
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    callid TEXT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,              -- 1-based
    url TEXT NOT NULL,
    status_code INTEGER NULL,              -- null: no HTTP response (connect error, timeout)
    error TEXT NULL,
    outcome TEXT NOT NULL,                 -- delivered | retry | dead
    duration_ms INTEGER NOT NULL,
    attempted_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id, id);
CREATE INDEX webhook_deliveries_outbox ON webhook_deliveries (outbox_id);
