-- Dialer compliance: every dial the rules held back, with its reason.
CREATE TABLE blocked_dials (
    id BIGSERIAL PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) NOT NULL,
    rule VARCHAR(32) NOT NULL,
    reason TEXT NOT NULL,
    retry_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL
);
CREATE INDEX blocked_dials_task ON blocked_dials (task_id, created_at);
CREATE INDEX dial_ledger_number ON dial_ledger (number, created_at);
