-- Cluster nodes: one row per `voxdial serve` node, its heartbeat and what it
-- publishes (live calls, achieved CPS per gateway, Redis state). A node whose
-- expires_at passed is dead: live nodes take over its claims and, after
-- [cluster] orphan_after_secs, its open ledger attempts (src/cluster/nodes.rs).
CREATE TABLE cluster_nodes (
    node_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    live_calls INTEGER NOT NULL DEFAULT 0,
    redis_ok INTEGER NOT NULL DEFAULT 0,
    info TEXT NOT NULL
);
CREATE INDEX cluster_nodes_expires ON cluster_nodes (expires_at);
CREATE INDEX dial_ledger_number_id ON dial_ledger (number_id);
