//! Logs: `tracing` to stderr, human or JSON (journald and log shippers take
//! either), with callee numbers masked by default — logs travel further than
//! the database (tickets, chat, log stores) and numbers are personal data.

use std::sync::atomic::{AtomicBool, Ordering};

static MASK: AtomicBool = AtomicBool::new(true);

/// `[log] mask_numbers`; on unless the config turns it off.
pub fn set_mask_numbers(on: bool) {
    MASK.store(on, Ordering::Relaxed);
}

/// A number as it may appear in logs: `13812345678` → `138****5678`.
/// Short numbers keep only their last two digits.
pub fn mask_number(n: &str) -> String {
    if !MASK.load(Ordering::Relaxed) {
        return n.to_string();
    }
    mask(n)
}

fn mask(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    let len = chars.len();
    if len >= 8 {
        let mut s: String = chars[..3].iter().collect();
        s.push_str(&"*".repeat(len - 7));
        s.extend(&chars[len - 4..]);
        s
    } else {
        let keep = len.min(2);
        let mut s = "*".repeat(len - keep);
        s.extend(&chars[len - keep..]);
        s
    }
}

/// Install the global subscriber: `format` `json` or anything else for
/// human-readable lines; `level` a `tracing` filter unless `RUST_LOG` is set.
pub fn init(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_the_ops_team_expects() {
        assert_eq!(mask("13812345678"), "138****5678");
        assert_eq!(mask("02160001234"), "021****1234");
        assert_eq!(mask("8613812345678"), "861******5678");
        assert_eq!(mask("12345"), "***45");
        assert_eq!(mask("1"), "1");
        assert_eq!(mask(""), "");
    }
}
