-- Store performance, round 2 (issue #3).
-- keyword (被叫号码) filters send a prefix as a range, `callee >= '138' AND
-- callee < '138~'`, and varchar_pattern_ops serves only the pattern
-- operators (~>=~, LIKE), not `>=` / `<`: the range scanned the task's
-- records (450 ms at 1M). callee is COLLATE "C", so a plain index serves the
-- range, `callee = ?` and `LIKE '138%'` alike (count at 1M: 1.7 ms).
DROP INDEX records_task_callee;
CREATE INDEX records_task_callee ON records (task_id, callee);
