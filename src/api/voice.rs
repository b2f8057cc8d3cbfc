//! Signed voice keys for `download_voice` / `voice` links (seed 001): the key
//! carries the file path and an expiry under an HMAC, so the download endpoint
//! needs no token and cannot be pointed at any other file. The key format is
//! the finalizer's ([`crate::finalize::recordings::sign_voice_key`]), so
//! links in callbacks and in API answers are served by the same endpoint.

pub use crate::finalize::recordings::VoiceKeyError;
use crate::finalize::recordings::{sign_voice_key, verify_voice_key};

/// Signs and checks voice keys with one secret.
#[derive(Clone)]
pub struct VoiceKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for VoiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceKeys(..)")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl VoiceKeys {
    /// An empty secret draws a random one (links then die with the process).
    pub fn new(secret: &str) -> VoiceKeys {
        let secret = if secret.is_empty() {
            format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()).into_bytes()
        } else {
            secret.as_bytes().to_vec()
        };
        VoiceKeys { secret }
    }

    /// A key for `path`, valid `ttl_secs`.
    pub fn sign(&self, path: &str, ttl_secs: u64) -> String {
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
        sign_voice_key(path, now().saturating_add(ttl), &self.secret)
    }

    /// The path a key stands for, if it is genuine, not expired and free of `..`.
    pub fn verify(&self, key: &str) -> Result<String, VoiceKeyError> {
        verify_voice_key(key.trim(), now(), &self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = VoiceKeys::new("s3cret");
        let key = k.sign("/rec/a.wav", 60);
        assert_eq!(k.verify(&key).unwrap(), "/rec/a.wav");
        assert_eq!(k.verify(&format!(" {key}\n")).unwrap(), "/rec/a.wav");
        assert_eq!(VoiceKeys::new("other").verify(&key), Err(VoiceKeyError::BadSignature));
        assert_eq!(k.verify("!!"), Err(VoiceKeyError::Malformed));
        // The finalizer's links verify here: one format.
        let theirs = sign_voice_key("/rec/b.wav", now() + 60, b"s3cret");
        assert_eq!(k.verify(&theirs).unwrap(), "/rec/b.wav");
        let old = sign_voice_key("/rec/c.wav", now() - 10, b"s3cret");
        assert!(matches!(k.verify(&old), Err(VoiceKeyError::Expired(_))));
    }
}
