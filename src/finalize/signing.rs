//! HMAC-SHA256 for webhook signatures and voice keys.

use hmac::digest::Key;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

pub type HmacSha256 = hmac::Hmac<Sha256>;

/// Header carrying the body signature: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Voxdial-Signature";

/// An HMAC keyed with `secret`, built infallibly: RFC 2104 pads a key up to
/// the block size and hashes a longer one first, which is done here so the
/// fixed-size constructor applies (the slice one returns a `Result` that can
/// never be an error).
pub fn hmac_sha256(secret: &[u8]) -> HmacSha256 {
    let mut key = Key::<HmacSha256>::default();
    if secret.len() > key.len() {
        let h = Sha256::digest(secret);
        key[..h.len()].copy_from_slice(&h);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&key)
}

/// The `X-Voxdial-Signature` value for `body`.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let mut m = hmac_sha256(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// What a receiver does: recompute and compare in constant time.
pub fn verify_webhook_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut m = hmac_sha256(secret);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_vectors() {
        // RFC 4231 test case 2 (short key) and 6 (key longer than a block).
        let mut m = hmac_sha256(b"Jefe");
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut m = hmac_sha256(&[0xaa; 131]);
        m.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_verify_and_reject() {
        let s = webhook_signature(b"k", b"{\"a\":1}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert!(verify_webhook_signature(b"k", b"{\"a\":1}", &s));
        assert!(!verify_webhook_signature(b"k", b"{\"a\":2}", &s));
        assert!(!verify_webhook_signature(b"j", b"{\"a\":1}", &s));
        assert!(!verify_webhook_signature(b"k", b"{\"a\":1}", "sha1=00"));
        assert!(!verify_webhook_signature(b"k", b"{\"a\":1}", "sha256=zz"));
    }
}
