//! Ack tokens: the credential inside every call-out link.
//!
//! A token names one callout (incident id + the callout's number in that incident) and carries
//! a truncated HMAC-SHA256 tag over it under the deployment's secret. It is unguessable (96-bit
//! tag), needs no lookup table, and routes straight to the incident's keys. It dies when the
//! incident is stood down: the store refuses answers to an incident that is no longer active.

use super::incident::IncidentId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

const TAG_LEN: usize = 12;
const BODY_LEN: usize = 16 + 4;

/// What a valid token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    /// The incident.
    pub incident: IncidentId,
    /// The callout's number inside the incident (1-based).
    pub n: u32,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    /// A signer for this secret (any length; at least 32 random bytes in production).
    pub fn new(secret: &[u8]) -> TokenSigner {
        TokenSigner {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(b"muster-ack-v1");
        mac.update(body);
        mac
    }

    /// An unguessable URL-safe tag naming `what` (e.g. a calendar feed), 128 bits long.
    pub fn feed_tag(&self, what: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(b"muster-feed-v1:");
        mac.update(what.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `tag` is the feed tag of `what` (constant-time).
    pub fn check_feed_tag(&self, what: &str, tag: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(b"muster-feed-v1:");
        mac.update(what.as_bytes());
        mac.verify_truncated_left(&bytes).is_ok() && bytes.len() == 16
    }

    /// The URL-safe token text for a callout.
    pub fn sign(&self, t: AckToken) -> String {
        let mut buf = Vec::with_capacity(BODY_LEN + TAG_LEN);
        buf.extend_from_slice(t.incident.0.as_bytes());
        buf.extend_from_slice(&t.n.to_be_bytes());
        let tag = self.mac(&buf).finalize().into_bytes();
        buf.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// The callout a token names, or `None` if it is malformed or its tag is wrong.
    pub fn verify(&self, text: &str) -> Option<AckToken> {
        if text.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        if raw.len() != BODY_LEN + TAG_LEN {
            return None;
        }
        let (body, tag) = raw.split_at(BODY_LEN);
        self.mac(body).verify_truncated_left(tag).ok()?;
        let incident = IncidentId(Uuid::from_slice(&body[..16]).ok()?);
        let n = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
        Some(AckToken { incident, n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_forgeries() {
        let s = TokenSigner::new(b"secret");
        let t = AckToken {
            incident: IncidentId::random(),
            n: 42,
        };
        let text = s.sign(t);
        assert_eq!(s.verify(&text), Some(t));
        assert_eq!(TokenSigner::new(b"other").verify(&text), None);
        let mut forged = text.clone().into_bytes();
        forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.verify(std::str::from_utf8(&forged).unwrap()), None);
        assert_eq!(s.verify(""), None);
        assert_eq!(s.verify("not a token at all!"), None);
    }
}
