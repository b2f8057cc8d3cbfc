-- REST API (SQLite; applies after 0001–0003): task progress counts attempts
-- per task, and a main account's sub-accounts and tokens are looked up by owner.
CREATE INDEX dial_ledger_task ON dial_ledger (task_id, created_at);
CREATE INDEX users_parent ON users (parent_id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
