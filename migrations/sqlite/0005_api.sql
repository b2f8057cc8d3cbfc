-- REST API (SQLite; applies after 0001–0003): task progress counts attempts
-- per task, and a main account's sub-accounts and tokens are looked up by owner.
CREATE INDEX dial_ledger_task ON dial_ledger (task_id, created_at);
CREATE INDEX users_parent ON users (parent_id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
-- The record list (query_done_task_phones): counts and pages over a task's
-- records by date, score, talk time and rounds are read from this index alone.
CREATE INDEX records_api_list ON records (task_id, calldate, score, bill, rounds, id);
