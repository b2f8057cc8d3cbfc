-- Webhook delivery log; outbox times may carry milliseconds.
ALTER TABLE webhook_outbox ALTER COLUMN next_attempt_at TYPE VARCHAR(23) COLLATE "C";
ALTER TABLE webhook_outbox ALTER COLUMN created_at TYPE VARCHAR(23) COLLATE "C";
ALTER TABLE webhook_outbox ALTER COLUMN delivered_at TYPE VARCHAR(23) COLLATE "C";
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    callid VARCHAR(64) COLLATE "C" NULL,
    kind VARCHAR(32) COLLATE "C" NOT NULL,
    idempotency_key VARCHAR(191) COLLATE "C" NOT NULL,
    attempt BIGINT NOT NULL,
    url TEXT NOT NULL,
    status_code BIGINT NULL,
    error TEXT NULL,
    outcome VARCHAR(16) COLLATE "C" NOT NULL,
    duration_ms BIGINT NOT NULL,
    attempted_at VARCHAR(23) COLLATE "C" NOT NULL
);
CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id, id);
CREATE INDEX webhook_deliveries_outbox ON webhook_deliveries (outbox_id);
