//! `voxdial check --config FILE`: what an operator runs before `systemctl
//! start` — the config parses and validates, FreeSWITCH accepts the password
//! and answers `api status`, the database is reachable at a schema this
//! binary can run, and Redis answers `PING` when `[cluster] redis_url` is
//! set. Each finding is one plain sentence.

use std::path::Path;
use std::time::Duration;

use voxdial_esl::{ClientConfig, EslClient, EslError};

use crate::config::Config;
use crate::store::{Backend, Store};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// `config`, `freeswitch`, `database`, `redis`, `spool`.
    pub what: &'static str,
    pub detail: String,
}

impl Finding {
    fn ok(what: &'static str, detail: impl Into<String>) -> Finding {
        Finding { ok: true, what, detail: detail.into() }
    }
    fn fail(what: &'static str, detail: impl Into<String>) -> Finding {
        Finding { ok: false, what, detail: detail.into() }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<4} {:<10} {}", if self.ok { "ok" } else { "FAIL" }, self.what, self.detail)
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Run every check; the report is in order and never stops early past the
/// config (a wrong password and a dead database are both worth knowing).
pub async fn run(path: &Path) -> Vec<Finding> {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![Finding::fail("config", e.to_string())],
    };
    let mut out = vec![Finding::ok("config", format!("{} is valid", path.display()))];
    out.push(match &cfg.freeswitch {
        Some(fs) => freeswitch(&fs.host, fs.port, &fs.password).await,
        None => Finding::ok("freeswitch", "no [freeswitch] section: API-only node, nothing to dial"),
    });
    out.push(database(&cfg.database.url).await);
    if let Some(url) = &cfg.cluster.redis_url {
        out.push(redis_ping(url).await);
    }
    if !cfg.finalizer.spool_dir.is_empty() {
        out.push(match std::fs::create_dir_all(&cfg.finalizer.spool_dir) {
            Ok(()) => Finding::ok("spool", format!("{} is usable", cfg.finalizer.spool_dir)),
            Err(e) => {
                Finding::fail("spool", format!("cannot create [finalizer] spool_dir {}: {e}", cfg.finalizer.spool_dir))
            }
        });
    }
    out
}

async fn freeswitch(host: &str, port: u16, password: &str) -> Finding {
    let addr = format!("{host}:{port}");
    let mut cc = ClientConfig::new(addr.clone(), password);
    cc.events = vec!["HEARTBEAT".into()];
    cc.connect_timeout = Duration::from_secs(5);
    let client = match EslClient::connect(cc).await {
        Ok(c) => c,
        Err(EslError::AuthFailed { .. }) => {
            return Finding::fail(
                "freeswitch",
                format!("FreeSWITCH at {addr} refused the password: check [freeswitch] password against event_socket.conf.xml"),
            )
        }
        Err(e) => {
            return Finding::fail(
                "freeswitch",
                format!("cannot reach FreeSWITCH's event socket at {addr}: {e} (is FreeSWITCH running with mod_event_socket listening there?)"),
            )
        }
    };
    let r = match tokio::time::timeout(TIMEOUT, client.api("status")).await {
        Ok(Ok(body)) if !body.starts_with("-ERR") => {
            let first = body.lines().next().unwrap_or_default().trim().to_string();
            Finding::ok("freeswitch", format!("{addr}: authenticated; {first}"))
        }
        Ok(Ok(body)) => Finding::fail("freeswitch", format!("{addr}: `api status` answered {}", body.trim())),
        Ok(Err(e)) => Finding::fail("freeswitch", format!("{addr}: `api status` failed: {e}")),
        Err(_) => Finding::fail("freeswitch", format!("{addr}: no answer to `api status` within {TIMEOUT:?}")),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
    r
}

/// Redact the password of a URL for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn database(url: &str) -> Finding {
    let shown = redact(url);
    if let Ok(Backend::Sqlite) = Backend::from_url(url) {
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if !Path::new(path).exists() {
            let parent = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            return if parent.is_dir() {
                Finding::ok("database", format!("{shown} does not exist yet; `voxdial serve` creates it"))
            } else {
                Finding::fail("database", format!("{shown}: directory {} does not exist", parent.display()))
            };
        }
    }
    // The pool retries a refused connection until its own timeout; a plain
    // TCP connect says at once that nothing listens there.
    if let Some(hp) = host_port(url) {
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&hp)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Finding::fail(
                    "database",
                    format!("cannot connect to the database {shown}: nothing answers at {hp} ({e})"),
                )
            }
            Err(_) => {
                return Finding::fail(
                    "database",
                    format!("cannot connect to the database {shown}: {hp} does not answer"),
                )
            }
        }
    }
    let store = match tokio::time::timeout(TIMEOUT, Store::connect(url)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Finding::fail("database", format!("cannot connect to the database {shown}: {e}")),
        Err(_) => return Finding::fail("database", format!("no answer from the database {shown} within {TIMEOUT:?}")),
    };
    let known = store.schema_version_known();
    let r = match tokio::time::timeout(TIMEOUT, store.schema_version()).await {
        Ok(Ok(None)) => Finding::ok(
            "database",
            format!("{shown}: reachable, empty; `voxdial serve` creates the schema (version {known})"),
        ),
        Ok(Ok(Some(v))) if v > known => Finding::fail(
            "database",
            format!("{shown}: schema version {v} is newer than this voxdial knows ({known}); upgrade voxdial"),
        ),
        Ok(Ok(Some(v))) if v < known => Finding::ok(
            "database",
            format!("{shown}: reachable, schema version {v}; `voxdial serve` migrates it to {known}"),
        ),
        Ok(Ok(Some(v))) => Finding::ok("database", format!("{shown}: reachable, schema version {v} (current)")),
        Ok(Err(e)) => Finding::fail("database", format!("{shown}: reading the schema version failed: {e}")),
        Err(_) => Finding::fail("database", format!("{shown}: no answer within {TIMEOUT:?}")),
    };
    store.pool().close().await;
    r
}

/// `host:port` of a PostgreSQL / MySQL URL (default ports filled in).
fn host_port(url: &str) -> Option<String> {
    let default = match Backend::from_url(url).ok()? {
        Backend::Postgres => 5432,
        Backend::MySql => 3306,
        Backend::Sqlite => return None,
    };
    let rest = &url[url.find("://")? + 3..];
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    if hostport.is_empty() {
        return None;
    }
    if hostport.starts_with('[') {
        return Some(if hostport.contains("]:") { hostport.to_string() } else { format!("{hostport}:{default}") });
    }
    Some(if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:{default}") })
}

async fn redis_ping(url: &str) -> Finding {
    let shown = redact(url);
    let u = url.to_string();
    let res = tokio::task::spawn_blocking(move || -> Result<String, redis::RedisError> {
        let client = redis::Client::open(u.as_str())?;
        let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
        redis::cmd("PING").query::<String>(&mut con)
    })
    .await;
    match res {
        Ok(Ok(pong)) if pong == "PONG" => Finding::ok("redis", format!("{shown}: PING answered PONG")),
        Ok(Ok(other)) => Finding::fail("redis", format!("{shown}: PING answered {other:?}")),
        Ok(Err(e)) => Finding::fail("redis", format!("cannot use Redis at {shown}: {e}")),
        Err(e) => Finding::fail("redis", format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://vox:secret@db:5432/vox"), "postgres://vox:***@db:5432/vox");
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact("sqlite:///var/lib/voxdial/voxdial.db"), "sqlite:///var/lib/voxdial/voxdial.db");
        assert_eq!(host_port("postgres://a:b@db/x").as_deref(), Some("db:5432"));
        assert_eq!(host_port("mysql://root@127.0.0.1:3307/x?ssl=false").as_deref(), Some("127.0.0.1:3307"));
        assert_eq!(host_port("sqlite://x.db"), None);
    }
}
