-- Dialer compliance: every dial the rules held back, with its reason; and the
-- index the per-callee limiter counts with.
CREATE TABLE blocked_dials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    number_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    rule TEXT NOT NULL,          -- blocked_prefix | callee_limit | calling_hours
    reason TEXT NOT NULL,
    retry_at TEXT NULL,          -- when the number becomes due again; NULL = final
    created_at TEXT NOT NULL
);
CREATE INDEX blocked_dials_task ON blocked_dials (task_id, created_at);
CREATE INDEX dial_ledger_number ON dial_ledger (number, created_at);
