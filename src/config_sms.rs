//! `[sms]` and its `[[sms.gateway]]`s.

use serde::{Deserialize, Serialize};

/// `[sms]`: the SMS channel and its gateways.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Sms {
    /// Gateways in order of preference: the first is used, the next after its last attempt.
    /// None: no SMS (volunteers without a webhook cannot be reached).
    pub gateway: Vec<SmsGateway>,
    /// Waits (ms) before each retry on one gateway (±20 % jitter; a longer `Retry-After`
    /// wins); after them, the next gateway. Default `[2000, 10000, 30000]`.
    pub retry_backoff_ms: Vec<u64>,
    /// Longest message in SMS segments: `muster check` rejects templates that need more, and a
    /// long incident title is shortened to fit. Default 2.
    pub max_segments: u32,
}

impl Default for Sms {
    fn default() -> Self {
        Sms {
            gateway: vec![],
            retry_backoff_ms: vec![2_000, 10_000, 30_000],
            max_segments: 2,
        }
    }
}

/// The kind of API an SMS gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsGatewayKind {
    /// JSON `{to, text, id, from}` with a bearer token; callbacks signed like muster's webhooks.
    Generic,
    /// Twilio's Messages REST API (basic auth); callbacks signed with `X-Twilio-Signature`.
    Twilio,
    /// Aliyun's SendSms (template code, parameters and sign name; HMAC-SHA1 signed request).
    Aliyun,
}

/// `[[sms.gateway]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsGateway {
    /// Name in URLs (`/v1/sms/inbound/{name}`), metrics and callouts.
    pub name: String,
    pub kind: SmsGatewayKind,
    /// Where messages are sent: the full endpoint (generic), the API base
    /// (`https://api.twilio.com`), or the SendSms endpoint (`https://dysmsapi.aliyuncs.com/`).
    pub url: String,
    /// Sender: a number, short code or sender id (generic, Twilio).
    #[serde(default)]
    pub from: String,
    /// Generic: bearer token for sending. Twilio: the Account SID. Aliyun: AccessKey id.
    #[serde(default)]
    pub key_id: String,
    /// Generic: the Standard Webhooks secret (`whsec_…`) its callbacks are signed with.
    /// Twilio: the auth token (sending and `X-Twilio-Signature`). Aliyun: AccessKey secret
    /// (request signing); its callbacks are signed like generic ones with `callback_secret`.
    #[serde(default)]
    pub secret: String,
    /// Aliyun: the secret of its callbacks. Aliyun cannot sign its pushes, so configure them
    /// at `/v1/sms/inbound/{name}/{callback_secret}` and `/v1/sms/status/{name}/{callback_secret}`
    /// (a long random string); Standard Webhooks headers with this key are accepted too.
    #[serde(default)]
    pub callback_secret: String,
    /// Aliyun: 签名 (sign name).
    #[serde(default)]
    pub sign_name: String,
    /// Aliyun: template code per message kind (`callout`, `recall`, `standby`, `promoted`,
    /// `stand_down`; replies `reply_accepted`, … or one `reply` with a `result` variable), and
    /// for drills `KIND_drill` (`callout_drill`, …); a drill without one has its `title`
    /// variable start with 【演练】. Variables: `title`, `region`, `kind`, `level`,
    /// `team_kind` (in the volunteer's words), `code`; never empty, at most 35 characters.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    /// Messages per second across all muster instances (shared through Redis). Default 20.
    #[serde(default = "default_sms_rate")]
    pub rate_per_sec: f64,
    /// Sends in flight per instance. Default 16.
    #[serde(default = "default_sms_concurrency")]
    pub concurrency: usize,
    /// Timeout of one send (ms). Default 5000.
    #[serde(default = "default_sms_timeout")]
    pub timeout_ms: u64,
}

fn default_sms_rate() -> f64 {
    20.0
}

fn default_sms_concurrency() -> usize {
    16
}

fn default_sms_timeout() -> u64 {
    5_000
}
