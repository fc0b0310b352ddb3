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

    /// Reads the inbound messages of a (verified) callback.
    pub fn inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, CallbackError> {
        match self.cfg.kind {
            SmsGatewayKind::Generic => {
                let v: Value = json(body)?;
                Ok(vec![Inbound {
                    from: need(&v, "from")?,
                    text: need(&v, "text")?,
                    id: need(&v, "id")?,
                }])
            }
            SmsGatewayKind::Twilio => {
                let f: BTreeMap<String, String> = form_decode(body).into_iter().collect();
                let get = |k: &str| {
                    f.get(k)
                        .cloned()
                        .ok_or_else(|| CallbackError::Body(format!("`{k}` missing")))
                };
                Ok(vec![Inbound {
                    from: get("From")?,
                    text: get("Body")?,
                    id: get("MessageSid")?,
                }])
            }
            SmsGatewayKind::Aliyun => items(body)?
                .iter()
                .map(|v| {
                    Ok(Inbound {
                        from: need(v, "phone_number")?,
                        text: need(v, "content")?,
                        id: need(v, "sequence_id")?,
                    })
                })
                .collect(),
        }
    }

    /// Reads the delivery receipts of a (verified) callback. Statuses muster does not track
    /// (`queued`, `accepted`, …) are left out.
    pub fn receipts(&self, body: &[u8]) -> Result<Vec<Receipt>, CallbackError> {
        let status = |s: &str| match s {
            "sent" => Some(ReceiptStatus::Sent),
            "delivered" => Some(ReceiptStatus::Delivered),
            "undelivered" | "failed" => Some(ReceiptStatus::Undelivered),
            _ => None,
        };
        match self.cfg.kind {
            SmsGatewayKind::Generic => {
                let v: Value = json(body)?;
                let id = need(&v, "id")?;
                Ok(status(&need(&v, "status")?)
                    .map(|status| Receipt { id, status })
                    .into_iter()
                    .collect())
            }
            SmsGatewayKind::Twilio => {
                let f: BTreeMap<String, String> = form_decode(body).into_iter().collect();
                let (Some(id), Some(st)) = (f.get("MessageSid"), f.get("MessageStatus")) else {
                    return Err(CallbackError::Body(
                        "`MessageSid` or `MessageStatus` missing".into(),
                    ));
                };
                Ok(status(st)
                    .map(|status| Receipt {
                        id: id.clone(),
                        status,
                    })
                    .into_iter()
                    .collect())
            }
            SmsGatewayKind::Aliyun => items(body)?
                .iter()
                .map(|v| {
                    let ok = v.get("success").and_then(Value::as_bool).ok_or_else(|| {
                        CallbackError::Body("`success` missing or not a boolean".into())
                    })?;
                    Ok(Receipt {
                        id: need(v, "biz_id")?,
                        status: if ok {
                            ReceiptStatus::Delivered
                        } else {
                            ReceiptStatus::Undelivered
                        },
                    })
                })
                .collect(),
        }
    }
}

fn json(body: &[u8]) -> Result<Value, CallbackError> {
    serde_json::from_slice(body).map_err(|e| CallbackError::Body(e.to_string()))
}

fn items(body: &[u8]) -> Result<Vec<Value>, CallbackError> {
    match json(body)? {
        Value::Array(a) => Ok(a),
        v @ Value::Object(_) => Ok(vec![v]),
        _ => Err(CallbackError::Body("expected a JSON array".into())),
    }
}

fn need(v: &Value, k: &str) -> Result<String, CallbackError> {
    match v.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(CallbackError::Body(format!("`{k}` missing"))),
    }
}

/// RFC 3986 percent-encoding (unreserved characters kept), as Aliyun's signature and form
/// bodies need.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space); bad escapes are kept
/// as they are.
pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|b| *b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Twilio's request signature: base64 HMAC-SHA1 of the URL followed by every form field's
/// name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes()).expect("any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The longest value of an Aliyun template variable (characters).
pub const ALIYUN_VAR_MAX: usize = 35;

/// A number as Aliyun takes it: mainland numbers without `+86`, others with their country
/// code and no `+`.
pub fn aliyun_number(to: &str) -> &str {
    to.strip_prefix("+86")
        .or_else(|| to.strip_prefix('+'))
        .unwrap_or(to)
}

/// The template code and variables of one Aliyun message (see the module): the kind's code
/// (`{kind}_drill` for a drill where configured, else the title marked 【演练】), variables
/// shortened to [`ALIYUN_VAR_MAX`] characters, empty ones left out.
pub fn aliyun_message(cfg: &SmsGateway, m: &Outgoing<'_>) -> (String, BTreeMap<String, String>) {
    let code = |k: &str| cfg.templates.get(k).cloned();
    let drill_code = m
        .drill
        .then(|| code(&format!("{}_drill", m.kind)))
        .flatten();
    let template = drill_code
        .clone()
        .or_else(|| code(m.kind))
        .or_else(|| {
            m.kind
                .starts_with("reply_")
                .then(|| code("reply"))
                .flatten()
        })
        .or_else(|| code("callout"))
        .unwrap_or_default();
    let mut vars = BTreeMap::new();
    for (k, v) in m.params {
        let mut v = v.trim().to_string();
        if *k == "title" && m.drill && drill_code.is_none() && !v.starts_with("【演练】") {
            v = format!("【演练】{v}");
        }
        if v.is_empty() {
            continue;
        }
        if v.chars().count() > ALIYUN_VAR_MAX {
            v = v.chars().take(ALIYUN_VAR_MAX - 1).chain(['…']).collect();
        }
        vars.insert(k.to_string(), v);
    }
    (template, vars)
}

/// The signed form body of an Aliyun `SendSms` call (RPC signature version 1.0).
pub fn aliyun_request(
    cfg: &SmsGateway,
    to: &str,
    template: &str,
    params: &str,
    out_id: &str,
    now_ms: i64,
    nonce: &str,
) -> String {
    let timestamp = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let phone = aliyun_number(to);
    let mut fields: Vec<(&str, &str)> = vec![
        ("AccessKeyId", &cfg.key_id),
        ("Action", "SendSms"),
        ("Format", "JSON"),
        ("OutId", out_id),
        ("PhoneNumbers", phone),
        ("SignName", &cfg.sign_name),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("TemplateCode", template),
        ("TemplateParam", params),
        ("Timestamp", &timestamp),
        ("Version", "2017-05-25"),
    ];
    fields.sort();
    let canonical = form_encode(&fields);
    let to_sign = format!(
        "POST&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical)
    );
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(format!("{}&", cfg.secret).as_bytes())
            .expect("any key");
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    format!("Signature={}&{canonical}", percent_encode(&signature))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(kind: SmsGatewayKind) -> SmsGateway {
        SmsGateway {
            name: "g".into(),
            kind,
            url: "http://127.0.0.1:1".into(),
            from: "+15005550006".into(),
            key_id: "AC123".into(),
            secret: "12345".into(),
            callback_secret: String::new(),
            sign_name: "应急召集".into(),
            templates: BTreeMap::new(),
            rate_per_sec: 10.0,
            concurrency: 1,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn form_bodies_round_trip() {
        let body = form_encode(&[("Body", "23Y 是 & = + %"), ("From", "+8613800000000")]);
        assert_eq!(
            form_decode(body.as_bytes()),
            vec![
                ("Body".to_string(), "23Y 是 & = + %".to_string()),
                ("From".to_string(), "+8613800000000".to_string())
            ]
        );
        assert_eq!(
            form_decode(b"a=b+c&d=%E5%A5%BD&bad=%zz&t=%"),
            vec![
                ("a".to_string(), "b c".to_string()),
                ("d".to_string(), "好".to_string()),
                ("bad".to_string(), "%zz".to_string()),
                ("t".to_string(), "%".to_string())
            ]
        );
    }

    /// A vector of Twilio's own request-validator tests (twilio-ruby, voice request).
    #[test]
    fn twilio_signature_matches_twilios_test_vector() {
        let fields: Vec<(String, String)> = [
            ("ToState", "California"),
            ("CalledState", "California"),
            ("Direction", "inbound"),
            ("FromState", "CA"),
            ("AccountSid", "ACba8bc05eacf94afdae398e642c9cc32d"),
            ("Caller", "+14153595711"),
            ("CallerZip", "94108"),
            ("CallerCountry", "US"),
            ("From", "+14153595711"),
            ("FromCity", "SAN FRANCISCO"),
            ("CallerCity", "SAN FRANCISCO"),
            ("To", "+14157669926"),
            ("FromZip", "94108"),
            ("FromCountry", "US"),
            ("ToCity", ""),
            ("CallStatus", "ringing"),
            ("CalledCity", ""),
            ("CallerState", "CA"),
            ("CalledZip", ""),
            ("ToZip", ""),
            ("ToCountry", "US"),
            ("CallSid", "CA136d09cd59a3c0ec8dbff44da5c03f31"),
            ("CalledCountry", "US"),
            ("Called", "+14157669926"),
            ("ApiVersion", "2010-04-01"),
            ("ApplicationSid", "AP44efecad51364e80b133bb7c07eb8204"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            twilio_signature(
                "2bd9e9638872de601313dc77410d3b23",
                "http://twiliotests.heroku.com/validate/voice",
                &fields
            ),
            "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="
        );
    }

    #[test]
    fn twilio_callbacks_are_verified_and_read() {
        let g = Gateway::new(gw(SmsGatewayKind::Twilio));
        let url = "http://127.0.0.1:8080/v1/sms/inbound/g";
        let body = form_encode(&[
            ("From", "+8613800000001"),
            ("Body", "23Y"),
            ("MessageSid", "SM1"),
        ]);
        let sig = twilio_signature("12345", url, &form_decode(body.as_bytes()));
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-twilio-signature", sig.parse().unwrap());
        assert!(g.verify(url, &h, body.as_bytes(), None));
        assert!(!g.verify(
            url,
            &h,
            b"From=%2B8613800000001&Body=23N&MessageSid=SM1",
            None
        ));
        assert!(!g.verify(url, &axum::http::HeaderMap::new(), body.as_bytes(), None));
        // A Twilio gateway never takes a path secret instead of its signature.
        assert!(!g.verify(
            url,
            &axum::http::HeaderMap::new(),
            body.as_bytes(),
            Some("12345")
        ));
        assert_eq!(
            g.inbound(body.as_bytes()).unwrap(),
            vec![Inbound {
                from: "+8613800000001".into(),
                text: "23Y".into(),
                id: "SM1".into()
            }]
        );
        let r = form_encode(&[("MessageSid", "SM9"), ("MessageStatus", "delivered")]);
        assert_eq!(
            g.receipts(r.as_bytes()).unwrap(),
            vec![Receipt {
                id: "SM9".into(),
                status: ReceiptStatus::Delivered
            }]
        );
    }

    #[test]
    fn aliyun_requests_are_signed_over_the_sorted_fields() {
        let mut c = gw(SmsGatewayKind::Aliyun);
        c.secret = "testsecret".into();
        c.key_id = "testid".into();
        let body = aliyun_request(
            &c,
            "+8615300000001",
            "SMS_1",
            r#"{"code":"23"}"#,
            "msg_1",
            0,
            "nonce",
        );
        let f = form_decode(body.as_bytes());
        let get = |k: &str| f.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("PhoneNumbers"), "15300000001");
        assert_eq!(get("TemplateParam"), r#"{"code":"23"}"#);
        assert_eq!(get("Timestamp"), "1970-01-01T00:00:00Z");
        // Recompute the signature from the other fields.
        let mut rest: Vec<(&str, &str)> = f
            .iter()
            .filter(|(k, _)| k != "Signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        rest.sort();
        let to_sign = format!("POST&%2F&{}", percent_encode(&form_encode(&rest)));
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(b"testsecret&").unwrap();
        mac.update(to_sign.as_bytes());
        assert_eq!(
            get("Signature"),
            STANDARD.encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn aliyun_messages_are_in_the_volunteers_words_bounded_and_never_empty() {
        let mut c = gw(SmsGatewayKind::Aliyun);
        c.templates = [
            ("callout".to_string(), "SMS_1".to_string()),
            ("stand_down".to_string(), "SMS_5".to_string()),
            ("reply".to_string(), "SMS_6".to_string()),
        ]
        .into();
        let params: BTreeMap<&'static str, String> = [
            ("code", String::new()),
            ("title", "河".repeat(200)),
            ("kind", "洪涝".to_string()),
            ("level", "Ⅳ级一般".to_string()),
            ("team_kind", "救援".to_string()),
        ]
        .into();
        let m = |kind, drill| Outgoing {
            to: "+8613800000001",
            text: "",
            msg_id: "m",
            kind,
            params: &params,
            status_url: "",
            drill,
        };
        let (t, v) = aliyun_message(&c, &m("stand_down", false));
        assert_eq!(t, "SMS_5");
        assert!(!v.contains_key("code"), "no empty variable: {v:?}");
        assert!(
            v.values()
                .all(|x| !x.is_empty() && x.chars().count() <= ALIYUN_VAR_MAX),
            "{v:?}"
        );
        assert!(v["title"].ends_with('…'));
        assert_eq!(
            (v["kind"].as_str(), v["team_kind"].as_str()),
            ("洪涝", "救援")
        );
        // A drill without a drill template: the title says so, within the limit.
        let (t, v) = aliyun_message(&c, &m("callout", true));
        assert_eq!(t, "SMS_1");
        assert!(v["title"].starts_with("【演练】"), "{v:?}");
        assert_eq!(v["title"].chars().count(), ALIYUN_VAR_MAX);
        // With one, the drill template.
        c.templates.insert("callout_drill".into(), "SMS_9".into());
        let (t, v) = aliyun_message(&c, &m("callout", true));
        assert_eq!(t, "SMS_9");
        assert!(!v["title"].starts_with("【演练】"));
        // A reply kind without its own template takes `reply`.
        assert_eq!(aliyun_message(&c, &m("reply_accepted", false)).0, "SMS_6");
        assert_eq!(aliyun_number("+8613800000001"), "13800000001");
        assert_eq!(aliyun_number("+85291234567"), "85291234567");
        assert_eq!(aliyun_number("+14155550100"), "14155550100");
    }

    #[test]
    fn aliyun_takes_its_secret_in_the_path_and_vendors_get_their_answers() {
        let mut c = gw(SmsGatewayKind::Aliyun);
        c.callback_secret = "path-secret-0123".into();
        let g = Gateway::new(c);
        let h = axum::http::HeaderMap::new();
        assert!(g.verify(
            "http://x/v1/sms/inbound/a/path-secret-0123",
            &h,
            b"[]",
            Some("path-secret-0123")
        ));
        assert!(!g.verify("http://x", &h, b"[]", Some("path-secret-0124")));
        assert!(
            !g.verify("http://x", &h, b"[]", None),
            "no headers, no path secret"
        );
        let r = g.answer(true, serde_json::json!({"messages": []}));
        assert_eq!(r.status(), 200);
        let t = Gateway::new(gw(SmsGatewayKind::Twilio));
        let r = t.answer(true, serde_json::json!({}));
        assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
    }

    #[test]
    fn aliyun_and_generic_callbacks_are_read() {
        let a = Gateway::new(gw(SmsGatewayKind::Aliyun));
        let up = br#"[{"phone_number":"13800000001","content":"23Y","sequence_id":1234}]"#;
        assert_eq!(
            a.inbound(up).unwrap(),
            vec![Inbound {
                from: "13800000001".into(),
                text: "23Y".into(),
                id: "1234".into()
            }]
        );
        let rep = br#"[{"biz_id":"b1","success":false,"err_code":"MOBILE_NOT_ON_SERVICE"}]"#;
        assert_eq!(
            a.receipts(rep).unwrap()[0].status,
            ReceiptStatus::Undelivered
        );
        assert!(a.inbound(b"not json").is_err());
        let g = Gateway::new(gw(SmsGatewayKind::Generic));
        assert!(g.inbound(br#"{"from":"+1"}"#).is_err());
        assert_eq!(
            g.receipts(br#"{"id":"x","status":"queued"}"#).unwrap(),
            vec![]
        );
    }
}
