//! The webhook channel: a JSON POST signed per the Standard Webhooks scheme.
//!
//! Headers `webhook-id` (stable across retries of one message, so receivers can de-duplicate),
//! `webhook-timestamp` (Unix seconds, wall clock — receivers compare it with theirs) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. A 2xx answer
//! means delivered; anything else is an error the notifier retries with backoff.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The receiver answered with a non-2xx status.
    #[error("receiver answered {status}")]
    Status {
        /// The status code.
        status: u16,
        /// Its `Retry-After`, if it sent one (seconds form).
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, timeout, TLS…
    #[error("transport: {0}")]
    Transport(String),
}

impl SendError {
    /// The wait the receiver asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Status { retry_after, .. } => *retry_after,
            SendError::Transport(_) => None,
        }
    }
}

/// Decodes a `whsec_<base64>` secret (a bare base64 or raw text key is accepted too).
pub fn decode_secret(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(b64)
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

/// The HMAC-SHA256 of `"{msg_id}.{timestamp}.{body}"`.
fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1,<signature>` value for a message.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Checks a `webhook-signature` header (space-separated `v1,` signatures) in constant time.
pub fn verify(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let mac = mac(key, msg_id, timestamp, body);
    header.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|raw| mac.clone().verify_slice(&raw).is_ok())
    })
}

/// Sends signed webhooks.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    key: Vec<u8>,
}

impl WebhookSender {
    /// A sender signing with `secret`, each attempt timing out after `timeout`, keeping up to
    /// `pool` idle connections per receiver host (the send concurrency, so a busy fan-out to
    /// one host reuses its connections instead of opening new ones).
    pub fn new(secret: &str, timeout: Duration, pool: usize) -> WebhookSender {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(pool)
            .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client builds with static settings");
        WebhookSender {
            client,
            key: decode_secret(secret),
        }
    }

    /// POSTs `body` to `url` once.
    pub async fn send(&self, url: &str, msg_id: &str, body: Vec<u8>) -> Result<(), SendError> {
        let ts = crate::clock::wall_ms() / 1000;
        let sig = sign(&self.key, msg_id, ts, &body);
        let resp = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transport(redact(e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(SendError::Status {
            status: status.as_u16(),
            retry_after: retry_after(resp.headers()),
        })
    }
}

/// Error text without the URL (ack links in bodies never reach it, but URLs may carry
/// credentials) and without chained noise.
/// A `Retry-After` header in seconds, if the answer has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A transport error's kind and text, without the URL (a volunteer's webhook may carry a
/// secret in its path).
pub(crate) fn redact(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let text: String = e.without_url().to_string().chars().take(160).collect();
    format!("{kind}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &sig
        ));
        assert!(!verify(&key, "msg_other", 1614265330, body, &sig));
    }
}
