-- Webhook delivery log: one row per HTTP attempt of an outbox event.
-- `webhook_outbox.next_attempt_at` / `created_at` / `delivered_at` may hold
-- milliseconds ('YYYY-MM-DD HH:MM:SS.mmm') so short retry delays work; the
-- strings still sort with second-only ones.
CREATE TABLE webhook_deliveries (
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
