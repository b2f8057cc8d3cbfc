//! Node liveness in the database (`cluster_nodes`), the takeover of what a
//! dead node left behind, and the cluster's live state.
//!
//! **Takeover rule.** A node is dead when its database heartbeat expired
//! (`expires_at` in the past) and, when Redis is up, its `node:<id>` key is
//! gone too. Any live node then:
//! 1. releases the dead node's claims on numbers that have no open ledger
//!    attempt (claimed but certainly never dialled) — they return to the
//!    pool at once instead of after the 10-minute claim lease;
//! 2. leaves its open ledger attempts alone until they are older than
//!    `orphan_after_secs`: we cannot see the dead node's FreeSWITCH, so we
//!    cannot know whether a call is still up. Past that age voxdial's own
//!    `max_call_secs` cap and the originate timeout mean the call ended, so
//!    the attempt is finalized as call loss (status 12, the ledger rule of a
//!    restart) and its number is never re-dialled blindly — only through the
//!    recycle policy, like any call loss. Each row is first moved to the
//!    taking node by one conditional UPDATE, so two live nodes never settle
//!    one attempt twice. If the dead node restarts first, it reconciles its
//!    own attempts against its own FreeSWITCH (adopting live calls) as
//!    before, and its fresh heartbeat stops any takeover.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Cluster, ClusterConfig, ClusterError, CoordStats, RedisMode};
use crate::finalize::Finalizer;
use crate::store::{in_secs, now_str, Store, StoreError};

/// What a node publishes with each heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub live_calls: i64,
    pub redis: RedisMode,
    /// Originates per second over the last 10 s, by gateway.
    pub cps: BTreeMap<String, f64>,
    pub coordination: CoordStats,
}

impl NodeInfo {
    pub(crate) fn of(c: &Cluster) -> NodeInfo {
        NodeInfo { live_calls: c.live_calls(), redis: c.mode(), cps: c.achieved_cps(), coordination: c.stats() }
    }
}

/// Upsert this node's row.
pub(crate) async fn heartbeat(c: &Cluster) -> Result<(), StoreError> {
    let store = c.store();
    let info = NodeInfo::of(c);
    let now = now_str();
    let expires = in_secs(c.config().lease_secs as i64);
    let json = serde_json::to_string(&info).unwrap_or_default();
    let up = sqlx::query(store.sql(
        "UPDATE cluster_nodes SET heartbeat_at = ?, expires_at = ?, live_calls = ?, redis_ok = ?, info = ? WHERE node_id = ?",
    ))
    .bind(&now)
    .bind(&expires)
    .bind(info.live_calls)
    .bind(i64::from(info.redis == RedisMode::Up))
    .bind(&json)
    .bind(c.node_id())
    .execute(store.pool())
    .await?;
    if up.rows_affected() == 0 {
        let q = format!(
            "{} INTO cluster_nodes (node_id, started_at, heartbeat_at, expires_at, live_calls, redis_ok, info) VALUES (?, ?, ?, ?, ?, ?, ?){}",
            store.insert_ignore(),
            store.on_conflict_nothing()
        );
        sqlx::query(store.sql(&q))
            .bind(c.node_id())
            .bind(&now)
            .bind(&now)
            .bind(&expires)
            .bind(info.live_calls)
            .bind(i64::from(info.redis == RedisMode::Up))
            .bind(&json)
            .execute(store.pool())
            .await?;
    }
    Ok(())
}

/// A clean stop: the node row expires now (live calls have finished).
pub(crate) async fn leave(c: &Cluster) {
    let store = c.store();
    let now = now_str();
    let _ = sqlx::query(
        store.sql("UPDATE cluster_nodes SET expires_at = ?, heartbeat_at = ?, live_calls = 0 WHERE node_id = ?"),
    )
    .bind(&now)
    .bind(&now)
    .bind(c.node_id())
    .execute(store.pool())
    .await;
}

/// What one takeover pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Takeover {
    pub dead: Vec<String>,
    pub released: u64,
    pub finalized: u64,
}

/// One pass of the takeover rule (module docs).
pub(crate) async fn take_over(c: &Cluster, finalizer: &Finalizer) -> Result<Takeover, ClusterError> {
    let store = c.store();
    let now = now_str();
    let rows = sqlx::query(store.sql("SELECT node_id FROM cluster_nodes WHERE expires_at < ? AND node_id <> ?"))
        .bind(&now)
        .bind(c.node_id())
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?;
    let mut out = Takeover::default();
    for r in rows {
        let node: String = r.try_get("node_id").map_err(StoreError::from)?;
        if c.redis_node_alive(&node).await == Some(true) {
            continue;
        }
        let released = sqlx::query(store.sql(
            "UPDATE autodialer_number SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = ? AND status = 0 AND NOT EXISTS (SELECT 1 FROM open_dials o WHERE o.number_id = autodialer_number.id AND o.node_id = ?)",
        ))
        .bind(&node)
        .bind(&node)
        .execute(store.pool())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        out.released += released;
        let old = in_secs(-c.config().orphan_after_secs);
        let open = sqlx::query(store.sql(
            "SELECT o.origination_uuid FROM open_dials o JOIN dial_ledger l ON l.id = o.ledger_id WHERE o.node_id = ? AND l.state NOT IN ('finalized', 'failed') AND l.created_at < ? ORDER BY o.ledger_id",
        ))
        .bind(&node)
        .bind(&old)
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?;
        for row in open {
            let uuid: String = row.try_get("origination_uuid").map_err(StoreError::from)?;
            // Move the attempt to us first: only one live node wins it (the
            // ledger row and its open_dials row move together).
            let mut tx = store.begin_write().await?;
            let moved =
                sqlx::query(store.sql("UPDATE open_dials SET node_id = ? WHERE origination_uuid = ? AND node_id = ?"))
                    .bind(c.node_id())
                    .bind(&uuid)
                    .bind(&node)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?
                    .rows_affected();
            let won = if moved == 1 {
                sqlx::query(store.sql(
                    "UPDATE dial_ledger SET node_id = ?, state = 'taken_over', updated_at = ? WHERE origination_uuid = ? AND node_id = ? AND state NOT IN ('finalized', 'failed')",
                ))
                .bind(c.node_id())
                .bind(now_str())
                .bind(&uuid)
                .bind(&node)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .rows_affected()
            } else {
                0
            };
            if won == 1 {
                tx.commit().await.map_err(StoreError::from)?;
            } else {
                tx.rollback().await.map_err(StoreError::from)?;
            }
            if won == 1 {
                crate::dialer::reconcile::finalize_lost(store, finalizer, &uuid).await.map_err(|e| match e {
                    crate::dialer::DialerError::Store(s) => ClusterError::Store(s),
                    other => ClusterError::Config(other.to_string()),
                })?;
                out.finalized += 1;
            }
        }
        if released > 0 || out.finalized > 0 {
            out.dead.push(node);
        }
    }
    Ok(out)
}

/// One node as [`status`] shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeStatus {
    pub node_id: String,
    pub alive: bool,
    pub started_at: String,
    pub heartbeat_at: String,
    pub live_calls: i64,
    /// Attempts in the ledger not yet finalized.
    pub open_attempts: i64,
    pub info: Option<NodeInfo>,
}

/// The cluster's live state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterStatus {
    /// `Some(true)` when Redis answered, `None` when none is configured.
    pub redis_reachable: Option<bool>,
    pub nodes: Vec<NodeStatus>,
    /// Live calls on live nodes.
    pub live_calls: i64,
    /// Achieved originates per second by gateway, summed over live nodes.
    pub cps_by_gateway: BTreeMap<String, f64>,
}

/// Read the cluster's live state from the database, and from Redis when
/// `cfg.redis_url` is set (a node whose Redis key is present is alive even
/// if its database heartbeat lags, e.g. while PostgreSQL is down).
pub async fn status(store: &Store, cfg: &ClusterConfig) -> Result<ClusterStatus, ClusterError> {
    let now = now_str();
    let rows = sqlx::query(store.sql(
        "SELECT node_id, started_at, heartbeat_at, expires_at, live_calls, info FROM cluster_nodes ORDER BY node_id",
    ))
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?;
    let mut redis_conn = None;
    let mut redis_reachable = None;
    if let Some(url) = &cfg.redis_url {
        let conn = async {
            let client = redis::Client::open(url.as_str())?;
            client.get_multiplexed_async_connection().await
        };
        match tokio::time::timeout(std::time::Duration::from_millis(cfg.redis_timeout_ms.max(100) * 2), conn).await {
            Ok(Ok(c)) => {
                redis_conn = Some(c);
                redis_reachable = Some(true);
            }
            _ => redis_reachable = Some(false),
        }
    }
    let mut out = ClusterStatus { redis_reachable, nodes: vec![], live_calls: 0, cps_by_gateway: BTreeMap::new() };
    for r in rows {
        let node_id: String = r.try_get("node_id").map_err(StoreError::from)?;
        let expires: String = r.try_get("expires_at").map_err(StoreError::from)?;
        let mut info: Option<NodeInfo> =
            serde_json::from_str(&r.try_get::<String, _>("info").map_err(StoreError::from)?).ok();
        let mut alive = expires >= now;
        if let Some(conn) = redis_conn.as_mut() {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("{}:node:{node_id}", cfg.key_prefix))
                .query_async(conn)
                .await
                .ok()
                .flatten();
            if let Some(v) = v {
                alive = true;
                info = serde_json::from_str(&v).ok().or(info);
            }
        }
        let open = sqlx::query(store.sql("SELECT COUNT(*) AS n FROM open_dials WHERE node_id = ?"))
            .bind(&node_id)
            .fetch_one(store.pool())
            .await
            .map_err(StoreError::from)?
            .try_get("n")
            .map_err(StoreError::from)?;
        let live_calls = if alive {
            info.as_ref().map_or(r.try_get("live_calls").map_err(StoreError::from)?, |i| i.live_calls)
        } else {
            0
        };
        if alive {
            out.live_calls += live_calls;
            if let Some(i) = &info {
                for (gw, cps) in &i.cps {
                    *out.cps_by_gateway.entry(gw.clone()).or_default() += cps;
                }
            }
        }
        out.nodes.push(NodeStatus {
            node_id,
            alive,
            started_at: r.try_get("started_at").map_err(StoreError::from)?,
            heartbeat_at: r.try_get("heartbeat_at").map_err(StoreError::from)?,
            live_calls,
            open_attempts: open,
            info,
        });
    }
    Ok(out)
}
