//! Signed voice keys for `download_voice` / `voice` links (seed 001): the key
//! carries the file path and an expiry under an HMAC, so the download endpoint
//! needs no token and cannot be pointed at any other file.
//!
//! TODO(lead): the finalizer branch ships `sign_voice_key` / `verify_voice_key`
//! for its webhook payloads; once merged, point [`VoiceKeys::sign`] and
//! [`VoiceKeys::verify`] at them so one key format serves both.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceKeyError {
    #[error("key is malformed")]
    Malformed,
    #[error("key signature does not match")]
    BadSignature,
    #[error("key expired")]
    Expired,
}

/// Signs and checks voice keys with one secret.
#[derive(Clone)]
pub struct VoiceKeys {
    /// Keyed once; `None` only if HMAC refused the key, which it never does.
    base: Option<HmacSha256>,
}

impl std::fmt::Debug for VoiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceKeys(..)")
    }
}

impl VoiceKeys {
    /// An empty secret draws a random one (links then die with the process).
    pub fn new(secret: &str) -> VoiceKeys {
        let secret = if secret.is_empty() {
            format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()).into_bytes()
        } else {
            secret.as_bytes().to_vec()
        };
        VoiceKeys { base: <HmacSha256 as KeyInit>::new_from_slice(&secret).ok() }
    }

    fn mac(&self, expires: i64, path: &str) -> Option<HmacSha256> {
        let mut m = self.base.clone()?;
        m.update(&expires.to_be_bytes());
        m.update(path.as_bytes());
        Some(m)
    }

    /// A key for `path`, valid `ttl_secs`.
    pub fn sign(&self, path: &str, ttl_secs: u64) -> String {
        let expires = chrono::Utc::now().timestamp().saturating_add(ttl_secs.min(i64::MAX as u64) as i64);
        let Some(mac) = self.mac(expires, path) else { return String::new() };
        let tag = mac.finalize().into_bytes();
        let mut raw = Vec::with_capacity(8 + tag.len() + path.len());
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&tag);
        raw.extend_from_slice(path.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The path a key stands for, if it is genuine and not expired.
    pub fn verify(&self, key: &str) -> Result<String, VoiceKeyError> {
        let raw = URL_SAFE_NO_PAD.decode(key.trim().trim_end_matches('=')).map_err(|_| VoiceKeyError::Malformed)?;
        if raw.len() < 8 + 32 {
            return Err(VoiceKeyError::Malformed);
        }
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&raw[..8]);
        let expires = i64::from_be_bytes(exp);
        let path = std::str::from_utf8(&raw[40..]).map_err(|_| VoiceKeyError::Malformed)?;
        self.mac(expires, path)
            .ok_or(VoiceKeyError::BadSignature)?
            .verify_slice(&raw[8..40])
            .map_err(|_| VoiceKeyError::BadSignature)?;
        if chrono::Utc::now().timestamp() > expires {
            return Err(VoiceKeyError::Expired);
        }
        Ok(path.to_string())
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
        assert_eq!(VoiceKeys::new("other").verify(&key), Err(VoiceKeyError::BadSignature));
        let mut raw = URL_SAFE_NO_PAD.decode(&key).unwrap();
        let last = raw.len() - 1;
        raw[last] = b'x';
        assert_eq!(k.verify(&URL_SAFE_NO_PAD.encode(raw)), Err(VoiceKeyError::BadSignature));
        assert_eq!(k.verify("!!"), Err(VoiceKeyError::Malformed));
    }
}
