//! Configuration: one TOML file, every key overridable from the environment
//! as `VOXDIAL__SECTION__KEY` (e.g. `VOXDIAL__DATABASE__URL`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dialer::compliance::ComplianceConfig;
use crate::dialer::line::LineConfig;
use crate::dialer::DialerConfig;
use crate::finalize::recordings::VoiceLinks;
use crate::finalize::status::StatusRules;
use crate::finalize::webhook::WebhookConfig;
use crate::finalize::{FinalizerConfig, RecyclePolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config {path} is not valid TOML: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("environment override {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://…`, `postgres://…` or `mysql://…`.
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: "sqlite://voxdial-data/voxdial.db".into() }
    }
}

/// The FreeSWITCH this node drives over ESL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FreeswitchConfig {
    pub host: String,
    pub port: u16,
    pub password: String,
    /// Gateway used when a task's `dial_format` is empty.
    pub gateway: String,
}

impl Default for FreeswitchConfig {
    fn default() -> Self {
        FreeswitchConfig {
            host: "127.0.0.1".into(),
            port: 8021,
            password: "ClueCon".into(),
            gateway: "voxdial-sim".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
    /// `tracing` filter, e.g. `info,voxdial=debug`.
    pub level: String,
    /// Callee numbers in log fields as `138****5678`.
    pub mask_numbers: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "human".into(), level: "info".into(), mask_numbers: true }
    }
}

/// `[metrics]`: where `/metrics`, `/healthz` and `/readyz` are served.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MetricsConfig {
    /// `127.0.0.1:9464`; empty: no listener (and no metrics recorder).
    pub listen: String,
}

/// `[lifecycle]`: how the daemon stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleConfig {
    /// After SIGTERM, live calls get this long to end by themselves before
    /// they are hung up (`uuid_kill`). Keep below systemd's `TimeoutStopSec`.
    pub drain_secs: u64,
    /// After the hang-ups, how long to wait for the hangup events and the
    /// finalizer, and to flush the spool into the database.
    pub flush_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig { drain_secs: 30, flush_secs: 15 }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub database: DatabaseConfig,
    /// Absent: API-only node (no dialing).
    pub freeswitch: Option<FreeswitchConfig>,
    pub dialer: DialerConfig,
    pub compliance: ComplianceConfig,
    /// Shared caps per gateway: `[[lines]] name = "carrier1", cps = 30, max_concurrent = 100`.
    pub lines: Vec<LineConfig>,
    pub recycle: RecyclePolicy,
    pub status_rules: StatusRules,
    /// Spool and write settings of the finalizer.
    pub finalizer: FinalizerConfig,
    /// Callback delivery.
    pub webhook: WebhookConfig,
    /// Download links of recordings (`voice_url`).
    pub recordings: VoiceLinks,
    pub log: LogConfig,
    /// The REST API (`[api]`).
    pub api: crate::api::rest::ApiConfig,
    pub metrics: MetricsConfig,
    pub lifecycle: LifecycleConfig,
    /// Scale-out: node id, Redis and shared limits (see `crate::cluster`).
    pub cluster: crate::cluster::ClusterConfig,
}

impl Config {
    /// Read `path` and apply environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), source: e })?;
        Self::from_toml(&text, &path.display().to_string(), std::env::vars())
    }

    /// Parse TOML text and apply `VOXDIAL__…` overrides from `env`.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_string(), source: e })?;
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("VOXDIAL__") else { continue };
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::Env { var: k.clone(), reason: "empty path segment".into() });
            }
            let mut table = &mut value;
            for seg in &path[..path.len() - 1] {
                let entry = table.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                table = entry
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Env { var: k.clone(), reason: format!("{seg} is not a section") })?;
            }
            // Numbers and booleans keep their type; anything else is a string.
            let parsed = v
                .parse::<i64>()
                .map(toml::Value::Integer)
                .or_else(|_| v.parse::<f64>().map(toml::Value::Float))
                .or_else(|_| v.parse::<bool>().map(toml::Value::Boolean))
                .unwrap_or_else(|_| toml::Value::String(v.clone()));
            if let Some(last) = path.last() {
                table.insert(last.clone(), parsed);
            }
        }
        let mut cfg: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse { path: origin.to_string(), source: e })?;
        // `[cluster] node_id` names the node everywhere the dialer does.
        if let Some(id) = cfg.cluster.node_id.clone() {
            cfg.dialer.node_id = id;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::store::Backend::from_url(&self.database.url)
            .map_err(|e| ConfigError::Invalid(format!("[database] url: {e}")))?;
        if let Some(fs) = &self.freeswitch {
            if fs.host.is_empty() {
                return Err(ConfigError::Invalid("[freeswitch] host is empty".into()));
            }
        }
        self.compliance
            .hours()
            .map_err(|e| ConfigError::Invalid(format!("[compliance] calling_hours / timezone: {e}")))?;
        for l in &self.lines {
            if l.cps.is_nan() || l.cps <= 0.0 || l.max_concurrent < 1 {
                return Err(ConfigError::Invalid(format!(
                    "[[lines]] {}: cps must be > 0 and max_concurrent ≥ 1",
                    l.name
                )));
            }
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "[metrics] listen {:?} is not an address such as 127.0.0.1:9464",
                self.metrics.listen
            )));
        }
        if !matches!(self.log.format.as_str(), "human" | "json") {
            return Err(ConfigError::Invalid(format!("[log] format {:?}: use \"human\" or \"json\"", self.log.format)));
        }
        if self.cluster.redis_url.is_some() {
            self.cluster.validate().map_err(ConfigError::Invalid)?;
        }
        if self.dialer.claim_batch < 1 {
            return Err(ConfigError::Invalid("[dialer] claim_batch must be ≥ 1".into()));
        }
        Ok(())
    }

    /// A config for `voxdial demo`'s data directory.
    pub fn demo(data_dir: &Path, esl_port: u16) -> Config {
        let mut c = Config::default();
        c.database.url = format!("sqlite://{}", data_dir.join("voxdial.db").display());
        c.freeswitch = Some(FreeswitchConfig { port: esl_port, ..FreeswitchConfig::default() });
        c.dialer.recordings_root = data_dir.join("recordings").display().to_string();
        c.dialer.audio_root = data_dir.join("audio").display().to_string();
        c.finalizer.spool_dir = data_dir.join("spool").display().to_string();
        c
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Resolve a possibly relative data directory.
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_keep_types() {
        let env = vec![
            ("VOXDIAL__DATABASE__URL".to_string(), "postgres://localhost/test".to_string()),
            ("VOXDIAL__FREESWITCH__PORT".to_string(), "8022".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml("[freeswitch]\nhost = \"10.0.0.1\"\n", "t", env.into_iter()).expect("valid");
        assert_eq!(c.database.url, "postgres://localhost/test");
        let fs = c.freeswitch.expect("section");
        assert_eq!((fs.host.as_str(), fs.port), ("10.0.0.1", 8022));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Config::from_toml("[database]\nurl = \"oracle://x\"\n", "t", std::iter::empty()).unwrap_err();
        assert!(e.to_string().contains("[database] url"), "{e}");
        let e = Config::from_toml("[dialer\n", "voxdial.toml", std::iter::empty()).unwrap_err();
        assert!(e.to_string().contains("voxdial.toml"), "{e}");
    }
}
