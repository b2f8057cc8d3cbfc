-- Dialer compliance: every dial the rules held back, with its reason.
CREATE TABLE blocked_dials (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) NOT NULL,
    rule VARCHAR(32) NOT NULL,
    reason TEXT NOT NULL,
    retry_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    INDEX blocked_dials_task (task_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX dial_ledger_number ON dial_ledger (number, created_at);
