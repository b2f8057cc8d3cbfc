-- Webhook delivery log; outbox times may carry milliseconds.
ALTER TABLE webhook_outbox
    MODIFY next_attempt_at VARCHAR(23) NOT NULL,
    MODIFY created_at VARCHAR(23) NOT NULL,
    MODIFY delivered_at VARCHAR(23) NULL;
CREATE TABLE webhook_deliveries (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    task_id VARCHAR(64) NOT NULL,
    callid VARCHAR(64) NULL,
    kind VARCHAR(32) NOT NULL,
    idempotency_key VARCHAR(191) NOT NULL,
    attempt BIGINT NOT NULL,
    url TEXT NOT NULL,
    status_code BIGINT NULL,
    error TEXT NULL,
    outcome VARCHAR(16) NOT NULL,
    duration_ms BIGINT NOT NULL,
    attempted_at VARCHAR(23) NOT NULL,
    INDEX webhook_deliveries_task (task_id, id),
    INDEX webhook_deliveries_outbox (outbox_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
