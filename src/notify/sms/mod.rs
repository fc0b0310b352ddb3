//! SMS gateways: sending one message, and reading a gateway's callbacks (inbound replies and
//! delivery receipts) after checking their signature.
//!
//! | kind | sends | callbacks signed with |
//! | --- | --- | --- |
//! | `generic` | `POST url` JSON `{to, text, id, from}`, `Authorization: Bearer key_id`; answers `{id}` | Standard Webhooks headers, key `secret` |
//! | `twilio` | `POST url/2010-04-01/Accounts/{key_id}/Messages.json` form `To, From, Body, StatusCallback`, basic auth `key_id:secret`; answers `{sid}` | `X-Twilio-Signature`: HMAC-SHA1 (`secret`) of the URL and the sorted form fields |
//! | `aliyun` | `POST url` form `Action=SendSms, PhoneNumbers, SignName, TemplateCode, TemplateParam, OutId` signed HMAC-SHA1 (`secret`); answers `{Code, BizId}` | Aliyun cannot sign its pushes: `callback_secret` in the callback URL's path (`/v1/sms/inbound/{name}/{callback_secret}`), or Standard Webhooks headers with that key |
//!
//! Answers to callbacks are what each vendor expects: Twilio an empty TwiML `<Response/>`
//! (inbound) or an empty 200 (status), Aliyun `{"code":0,"msg":"成功"}`, generic JSON.
//!
//! Aliyun sends templates, not texts: the template code of the message kind (`callout_drill`,
//! … for a drill where configured; otherwise the `title` variable starts with 【演练】, so a
//! drill always shows as one), and variables in the volunteer's words (洪涝, 救援, Ⅳ级…),
//! each at most [`ALIYUN_VAR_MAX`] characters (shortened with "…"), never empty (an empty one
//! is left out). Mainland numbers go without `+86`; others lose only the `+`.
//!
//! Callback bodies: generic `{from, text, id}` and `{id, status}`; Twilio forms (`From, Body,
//! MessageSid` and `MessageSid, MessageStatus`); Aliyun JSON arrays of `SmsUp`
//! (`phone_number, content, sequence_id`) and `SmsReport` (`biz_id, success, err_code`).

use crate::config::{SmsGateway, SmsGatewayKind};
use crate::notify::webhook::{SendError, decode_secret, redact, retry_after};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// E.164 number.
    pub to: &'a str,
    /// The rendered text (generic, Twilio).
    pub text: &'a str,
    /// muster's message id: the same on every attempt, so a gateway can drop a repeat.
    pub msg_id: &'a str,
    /// Message kind (`callout`, …, `reply`): picks an Aliyun template.
    pub kind: &'a str,
    /// Template parameters (Aliyun), in the volunteer's words.
    pub params: &'a BTreeMap<&'static str, String>,
    /// Whether the message is a drill's (Aliyun picks a drill template, or marks the title).
    pub drill: bool,
    /// Where the gateway should post delivery receipts.
    pub status_url: &'a str,
}

/// A delivery receipt's news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Undelivered,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Undelivered => "undelivered",
        }
    }
}

/// An inbound SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub from: String,
    pub text: String,
    /// The gateway's id of the message (duplicate callbacks carry the same).
    pub id: String,
}

/// A delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The gateway's message id, as it answered the send.
    pub id: String,
    pub status: ReceiptStatus,
}

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("missing or invalid signature")]
    Signature,
    #[error("malformed body: {0}")]
    Body(String),
}

/// A configured gateway.
pub struct Gateway {
    pub cfg: SmsGateway,
    client: reqwest::Client,
    /// Sends in flight (`concurrency`).
    pub permits: tokio::sync::Semaphore,
}

impl Gateway {
    pub fn new(cfg: SmsGateway) -> Gateway {
        let timeout = Duration::from_millis(cfg.timeout_ms.max(100));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client builds with static settings");
        Gateway {
            permits: tokio::sync::Semaphore::new(cfg.concurrency.max(1)),
            cfg,
            client,
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Sends one message; the gateway's id for it on success.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<String, SendError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let req = match self.cfg.kind {
            SmsGatewayKind::Generic => self
                .client
                .post(&self.cfg.url)
                .bearer_auth(&self.cfg.key_id)
                .json(&serde_json::json!({
                    "to": m.to, "text": m.text, "id": m.msg_id, "from": self.cfg.from,
                    "status_url": m.status_url,
                })),
            SmsGatewayKind::Twilio => {
                let url = format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    self.cfg.url.trim_end_matches('/'),
                    self.cfg.key_id
                );
                let body = form_encode(&[
                    ("To", m.to),
                    ("From", &self.cfg.from),
                    ("Body", m.text),
                    ("StatusCallback", m.status_url),
                ]);
                self.client
                    .post(url)
                    .basic_auth(&self.cfg.key_id, Some(&self.cfg.secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            SmsGatewayKind::Aliyun => {
                let (template, params) = aliyun_message(&self.cfg, m);
                let params = serde_json::to_string(&params).unwrap_or_default();
                let body = aliyun_request(
                    &self.cfg,
                    m.to,
                    &template,
                    &params,
                    m.msg_id,
                    crate::clock::wall_ms(),
                    &uuid::Uuid::new_v4().to_string(),
                );
                self.client
                    .post(&self.cfg.url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| SendError::Transport(redact(e)))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        if !status.is_success() {
            return Err(SendError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
        match self.cfg.kind {
            SmsGatewayKind::Generic => Ok(text("id").unwrap_or_else(|| m.msg_id.to_string())),
            SmsGatewayKind::Twilio => Ok(text("sid").unwrap_or_else(|| m.msg_id.to_string())),
            // Aliyun answers 200 with a code; throttling is a code too.
            SmsGatewayKind::Aliyun => match text("Code").as_deref() {
                Some("OK") => Ok(text("BizId").unwrap_or_else(|| m.msg_id.to_string())),
                Some(c) if c.contains("LIMIT_CONTROL") || c.contains("Throttling") => {
                    Err(SendError::Status {
                        status: 429,
                        retry_after,
                    })
                }
                other => Err(SendError::Transport(format!(
                    "gateway refused: {}",
                    other.unwrap_or("no code")
                ))),
            },
        }
    }

    /// Checks a callback's signature. `url` is the full public URL it was posted to, query
    /// string included (Twilio signs it whole); `path_key` the secret in its path, if any
    /// (Aliyun, which cannot sign).
    pub fn verify(
        &self,
        url: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        path_key: Option<&str>,
    ) -> bool {
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        if let Some(key) = path_key {
            let own = &self.cfg.callback_secret;
            return self.cfg.kind == SmsGatewayKind::Aliyun
                && !own.is_empty()
                && constant_time_eq(key.as_bytes(), own.as_bytes());
        }
        match self.cfg.kind {
            SmsGatewayKind::Twilio => {
                let fields = form_decode(body);
                let expected = twilio_signature(&self.cfg.secret, url, &fields);
                let given = h("x-twilio-signature");
                !given.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
            }
            SmsGatewayKind::Generic | SmsGatewayKind::Aliyun => {
                let secret = match self.cfg.kind {
                    SmsGatewayKind::Aliyun => &self.cfg.callback_secret,
                    _ => &self.cfg.secret,
                };
                if secret.is_empty() {
                    return false;
                }
                let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
                let now = crate::clock::wall_ms() / 1000;
                (now - ts).abs() <= 300
                    && crate::notify::webhook::verify(
                        &decode_secret(secret),
                        h("webhook-id"),
                        ts,
                        body,
                        h("webhook-signature"),
                    )
            }
        }
    }

    /// What the gateway expects as the answer to a callback (`inbound` or `status`) it posted;
    /// `results` is muster's own account of it (kept for the generic gateway and, beside the
    /// code Aliyun reads, for Aliyun).
    pub fn answer(&self, inbound: bool, results: Value) -> axum::response::Response {
        use axum::http::header::CONTENT_TYPE;
        use axum::response::IntoResponse;
        match self.cfg.kind {
            SmsGatewayKind::Twilio if inbound => (
                [(CONTENT_TYPE, "text/xml; charset=utf-8")],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
            )
                .into_response(),
            SmsGatewayKind::Twilio => axum::http::StatusCode::OK.into_response(),
            SmsGatewayKind::Aliyun => {
                let mut v = serde_json::json!({"code": 0, "msg": "成功"});
                if let (Some(o), Value::Object(r)) = (v.as_object_mut(), results) {
                    o.extend(r);
                }
                axum::Json(v).into_response()
            }
            SmsGatewayKind::Generic => axum::Json(results).into_response(),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

mod callbacks;
#[cfg(test)]
mod tests;
mod wire;

pub use wire::{
    ALIYUN_VAR_MAX, aliyun_message, aliyun_number, aliyun_request, form_decode, form_encode,
    percent_encode, twilio_signature,
};
