//! Errors of the ESL layer. Each says what was wrong so an operator can act.

use std::time::Duration;

/// The byte stream could not be decoded. The connection must be closed: after
/// a bad frame we no longer know where the next one starts.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("ESL header block exceeds {limit} bytes without a blank line")]
    HeaderTooLarge { limit: usize },
    #[error("ESL body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge { len: usize, limit: usize },
    #[error("bad ESL header line {line}: {reason}")]
    BadHeaderLine { line: usize, reason: &'static str },
    #[error("bad Content-Length {value:?}: not a decimal byte count")]
    BadContentLength { value: String },
    #[error("event body: {0}")]
    BadEvent(String),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors seen by callers of the client.
#[derive(Debug, thiserror::Error)]
pub enum EslError {
    #[error("cannot connect to FreeSWITCH at {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("FreeSWITCH rejected the ESL password ({reply})")]
    AuthFailed { reply: String },
    #[error("unexpected ESL frame during {stage}: {detail}")]
    Handshake { stage: &'static str, detail: String },
    #[error("ESL protocol error: {0}")]
    Decode(#[from] DecodeError),
    #[error("ESL connection closed{}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed { reason: Option<String> },
    #[error("ESL command timed out after {0:?}")]
    Timeout(Duration),
    #[error("invalid ESL command: {0}")]
    InvalidCommand(String),
    #[error("FreeSWITCH answered {0}")]
    CommandFailed(String),
}
