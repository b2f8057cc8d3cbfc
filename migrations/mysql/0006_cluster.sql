-- Cluster nodes: one row per `voxdial serve` node, its heartbeat and what it
-- publishes (live calls, achieved CPS per gateway, Redis state). A node whose
-- expires_at passed is dead: live nodes take over its claims and, after
-- [cluster] orphan_after_secs, its open ledger attempts (src/cluster/nodes.rs).
CREATE TABLE cluster_nodes (
    node_id VARCHAR(100) NOT NULL PRIMARY KEY,
    started_at VARCHAR(19) NOT NULL,
    heartbeat_at VARCHAR(19) NOT NULL,
    expires_at VARCHAR(19) NOT NULL,
    live_calls BIGINT NOT NULL DEFAULT 0,
    redis_ok BIGINT NOT NULL DEFAULT 0,
    info TEXT NOT NULL,
    INDEX cluster_nodes_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX dial_ledger_number_id ON dial_ledger (number_id);
