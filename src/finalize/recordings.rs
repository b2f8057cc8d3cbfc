//! Recordings: signed download keys (seed 001's `download_voice`, seed 002's
//! `voice_url`) and the retention sweep over `recordings-layout.md`'s tree.
//!
//! A key is `base64url(expires_be_u64 ‖ HMAC-SHA256(secret, expires ‖ path) ‖ path)`:
//! self-contained, so the API layer can serve a file without a database
//! lookup, and unforgeable and expiring, so links in callbacks can be shared
//! with a CRM without exposing the whole recordings tree.

use std::path::{Component, Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;

use super::signing::{hmac_sha256, HmacSha256};

/// Why a voice key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VoiceKeyError {
    #[error("voice key is malformed")]
    Malformed,
    #[error("voice key signature does not match")]
    BadSignature,
    #[error("voice key expired at {0}")]
    Expired(i64),
    #[error("voice key names an unsafe path")]
    UnsafePath,
}

fn mac(secret: &[u8], expires: i64, path: &str) -> HmacSha256 {
    let mut m = hmac_sha256(secret);
    m.update(&expires.to_be_bytes());
    m.update(path.as_bytes());
    m
}

/// A download key for `path`, valid until `expires` (unix seconds).
pub fn sign_voice_key(path: &str, expires: i64, secret: &[u8]) -> String {
    let tag = mac(secret, expires, path).finalize().into_bytes();
    let mut raw = Vec::with_capacity(8 + tag.len() + path.len());
    raw.extend_from_slice(&expires.to_be_bytes());
    raw.extend_from_slice(&tag);
    raw.extend_from_slice(path.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Check a key at `now` (unix seconds) and return the path it grants.
/// Paths with `..` are refused even when signed, so a leaked secret cannot
/// reach outside the recordings tree through a crafted key.
pub fn verify_voice_key(key: &str, now: i64, secret: &[u8]) -> Result<String, VoiceKeyError> {
    let raw = URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')).map_err(|_| VoiceKeyError::Malformed)?;
    if raw.len() < 8 + 32 {
        return Err(VoiceKeyError::Malformed);
    }
    let (exp, rest) = raw.split_at(8);
    let (tag, path) = rest.split_at(32);
    let mut eb = [0u8; 8];
    eb.copy_from_slice(exp);
    let expires = i64::from_be_bytes(eb);
    let path = std::str::from_utf8(path).map_err(|_| VoiceKeyError::Malformed)?;
    mac(secret, expires, path).verify_slice(tag).map_err(|_| VoiceKeyError::BadSignature)?;
    if now > expires {
        return Err(VoiceKeyError::Expired(expires));
    }
    if Path::new(path).components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(VoiceKeyError::UnsafePath);
    }
    Ok(path.to_string())
}

/// How download URLs are formed (the `[recordings]` config section).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VoiceLinks {
    /// Prefix of the download endpoint, e.g.
    /// `https://voxdial.example.com/api/agent-api/download-voice`.
    pub download_url: String,
    /// Signing secret; empty: no URLs are issued.
    pub secret: String,
    /// How long an issued URL stays valid.
    pub ttl_secs: i64,
}

impl Default for VoiceLinks {
    fn default() -> Self {
        VoiceLinks { download_url: "/api/agent-api/download-voice".into(), secret: String::new(), ttl_secs: 7 * 86_400 }
    }
}

impl VoiceLinks {
    /// `<download_url>?key=<signed key>` for a recording, valid for
    /// `ttl_secs` from `now`; `None` without a secret or a path.
    pub fn voice_url(&self, path: Option<&str>, now: i64) -> Option<String> {
        let path = path.filter(|p| !p.is_empty())?;
        if self.secret.is_empty() {
            return None;
        }
        let key = sign_voice_key(path, now.saturating_add(self.ttl_secs), self.secret.as_bytes());
        let sep = if self.download_url.contains('?') { '&' } else { '?' };
        Some(format!("{}{sep}key={key}", self.download_url))
    }
}

/// How the ESL transport gets each customer sentence's audio
/// (`record_details.voice`, seed 001 `voice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentenceAudio {
    /// voxdial records the caller's stream (`RECORD_READ_ONLY`) with
    /// `uuid_record` from `begin-speaking` to the final result, into
    /// [`customer_sentence_path`]. Works with any recognizer.
    #[default]
    UuidRecord,
    /// The ASR module records the sentence itself and names the file in a
    /// header of its final-result event (`[dialer] asr_record_header`).
    Header,
    Off,
}

/// The directory of a call's per-sentence audio: beside the call's own
/// recording, `<root>/<YYYY-MM-DD>/<callid>/` (`recordings-layout.md`), so
/// the day's retention sweep removes both.
pub fn sentence_dir(call_record_path: &str, callid: &str) -> String {
    match Path::new(call_record_path).parent() {
        Some(day) => day.join(callid).display().to_string(),
        None => callid.to_string(),
    }
}

/// `<sentence_dir>/<n>.customer.wav`: the customer's `n`-th sentence (1-based).
pub fn customer_sentence_path(sentence_dir: &str, n: u32) -> String {
    format!("{}/{n}.customer.wav", sentence_dir.trim_end_matches('/'))
}

/// What a retention sweep did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    /// Day directories (`YYYY-MM-DD`) removed, oldest first.
    pub days_removed: Vec<String>,
    pub files_removed: u64,
    pub bytes_freed: u64,
    pub days_kept: u64,
    /// Entries of the root that are not day directories: never touched.
    pub skipped: Vec<String>,
    /// Paths that could not be removed, with the reason.
    pub errors: Vec<String>,
}

/// Remove every day directory of `root` older than `older_than_days` days
/// (by the date in its name, which is the originate date; file times can be
/// touched by backups). The cutoff is today minus `older_than_days`: with 30,
/// a day directory 31 days old goes, one 30 days old stays.
pub fn prune_recordings(root: &Path, older_than_days: u32, dry_run: bool) -> std::io::Result<PruneReport> {
    prune_recordings_at(root, older_than_days, dry_run, chrono::Local::now().date_naive())
}

/// [`prune_recordings`] with an explicit "today", for tests.
pub fn prune_recordings_at(
    root: &Path,
    older_than_days: u32,
    dry_run: bool,
    today: chrono::NaiveDate,
) -> std::io::Result<PruneReport> {
    let cutoff = today - chrono::Duration::days(i64::from(older_than_days));
    let mut report = PruneReport { dry_run, ..PruneReport::default() };
    let mut days: Vec<(chrono::NaiveDate, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        match chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d") {
            Ok(d) if is_dir && name.len() == 10 => days.push((d, name, entry.path())),
            _ => report.skipped.push(name),
        }
    }
    days.sort();
    report.skipped.sort();
    for (date, name, path) in days {
        if date >= cutoff {
            report.days_kept += 1;
            continue;
        }
        let (files, bytes) = tally(&path, &mut report.errors);
        if !dry_run {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                report.errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        }
        report.files_removed += files;
        report.bytes_freed += bytes;
        report.days_removed.push(name);
    }
    Ok(report)
}

/// Files and bytes below `dir` (recordings sit at most two levels deep: the
/// call files and the per-call sentence directories).
fn tally(dir: &Path, errors: &mut Vec<String>) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) => {
                errors.push(format!("{}: {e}", d.display()));
                continue;
            }
        };
        for entry in rd.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => {
                    files += 1;
                    bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                }
                Err(e) => errors.push(format!("{}: {e}", entry.path().display())),
            }
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";

    #[test]
    fn voice_keys_round_trip_and_refuse_tampering() {
        let p = "/var/lib/voxdial/recordings/2019-05-08/18810495721.299.19-03-27.d6a577d4.wav";
        let k = sign_voice_key(p, 1_000, SECRET);
        assert_eq!(verify_voice_key(&k, 999, SECRET).as_deref(), Ok(p));
        assert_eq!(verify_voice_key(&k, 1_000, SECRET).as_deref(), Ok(p));
        assert_eq!(verify_voice_key(&k, 1_001, SECRET), Err(VoiceKeyError::Expired(1_000)));
        assert_eq!(verify_voice_key(&k, 0, b"other"), Err(VoiceKeyError::BadSignature));
        // Extending the expiry or swapping the path breaks the signature.
        let mut raw = URL_SAFE_NO_PAD.decode(&k).expect("b64");
        raw[7] ^= 1;
        assert_eq!(verify_voice_key(&URL_SAFE_NO_PAD.encode(&raw), 0, SECRET), Err(VoiceKeyError::BadSignature));
        let mut raw = URL_SAFE_NO_PAD.decode(&k).expect("b64");
        let last = raw.len() - 1;
        raw[last] = b'x';
        assert_eq!(verify_voice_key(&URL_SAFE_NO_PAD.encode(&raw), 0, SECRET), Err(VoiceKeyError::BadSignature));
        assert_eq!(verify_voice_key("!!", 0, SECRET), Err(VoiceKeyError::Malformed));
        assert_eq!(verify_voice_key("AAAA", 0, SECRET), Err(VoiceKeyError::Malformed));
        let evil = sign_voice_key("/rec/../../etc/passwd", 10, SECRET);
        assert_eq!(verify_voice_key(&evil, 0, SECRET), Err(VoiceKeyError::UnsafePath));
    }

    #[test]
    fn voice_url_needs_a_secret_and_a_path() {
        let mut l =
            VoiceLinks { download_url: "http://h/api/agent-api/download-voice".into(), ..VoiceLinks::default() };
        assert_eq!(l.voice_url(Some("/r/a.wav"), 0), None);
        l.secret = "k".into();
        assert_eq!(l.voice_url(None, 0), None);
        let u = l.voice_url(Some("/r/a.wav"), 100).expect("url");
        let key = u.strip_prefix("http://h/api/agent-api/download-voice?key=").expect("prefix");
        assert_eq!(verify_voice_key(key, 100 + l.ttl_secs, b"k").as_deref(), Ok("/r/a.wav"));
    }

    #[test]
    fn sentence_paths_sit_beside_the_call() {
        let call = "/rec/2024-05-08/18810495721.299.19-03-27.d6a5.wav";
        let dir = sentence_dir(call, "d6a5");
        assert_eq!(dir, "/rec/2024-05-08/d6a5");
        assert_eq!(customer_sentence_path(&dir, 3), "/rec/2024-05-08/d6a5/3.customer.wav");
    }

    #[test]
    fn prune_removes_old_day_directories_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        for day in ["2024-01-01", "2024-01-30", "2024-01-31", "2024-02-10"] {
            let d = root.join(day);
            std::fs::create_dir_all(d.join("callid-1")).expect("mkdir");
            std::fs::write(d.join("138.1.10-00-00.callid-1.wav"), vec![0u8; 100]).expect("write");
            std::fs::write(d.join("callid-1").join("1.customer.wav"), vec![0u8; 10]).expect("write");
        }
        std::fs::write(root.join("README"), b"keep").expect("write");
        std::fs::create_dir(root.join("2024-13-01")).expect("mkdir");
        let today = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).expect("date");
        // Cutoff 2024-01-31: the two older days go.
        let dry = prune_recordings_at(root, 30, true, today).expect("dry");
        assert_eq!(dry.days_removed, vec!["2024-01-01", "2024-01-30"]);
        assert_eq!((dry.files_removed, dry.bytes_freed, dry.days_kept), (4, 220, 2));
        assert_eq!(dry.skipped, vec!["2024-13-01", "README"]);
        assert!(root.join("2024-01-01").exists(), "dry run removes nothing");
        let real = prune_recordings_at(root, 30, false, today).expect("prune");
        assert_eq!(real.days_removed, dry.days_removed);
        assert!(real.errors.is_empty(), "{:?}", real.errors);
        assert!(!root.join("2024-01-01").exists() && !root.join("2024-01-30").exists());
        assert!(root.join("2024-01-31").exists() && root.join("README").exists());
    }
}
