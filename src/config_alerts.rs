//! `[drill]` and `[cap]`: where simulated drills go, and how CAP alerts come in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[drill]`: drills.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Drill {
    /// Where a drill on simulated channels sends every message (`muster sim`): webhooks to
    /// `{url}/hooks/{volunteer}`, SMS to `{url}/sms/send` as the generic gateway
    /// `simulator_gateway`. Unset: simulated drills are refused (422), never sent for real.
    pub simulator_url: Option<String>,
    /// The name the simulated SMS gateway goes by: its receipts and replies come to
    /// `/v1/sms/status/{name}` and `/v1/sms/inbound/{name}`. Default `sim` (what `muster
    /// sim` answers as).
    pub simulator_gateway: String,
    /// The Standard Webhooks secret its callbacks are signed with. Empty (the default): the
    /// secret of the `[[sms.gateway]]` of that name, else `webhook.secret`.
    pub simulator_secret: String,
    /// Messages per second to the simulator's SMS gateway. Default 200.
    pub simulator_rate_per_sec: f64,
}

impl Default for Drill {
    fn default() -> Self {
        Drill {
            simulator_url: None,
            simulator_gateway: "sim".into(),
            simulator_secret: String::new(),
            simulator_rate_per_sec: 200.0,
        }
    }
}

/// `[retention]`: how long what is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Days after its stand-down a closed incident keeps its per-callout keys; then only its
    /// final report, counts, service records and audit entries stay. Default 365.
    pub incident_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { incident_days: 365 }
    }
}

/// `[audit]`: the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Audit {
    /// The HMAC key that seals the audit chain (any string; 32 random bytes as `whsec_…` or
    /// hex are good). Kept in config, never in Redis: without it nobody can make an entry that
    /// verifies. Required.
    pub key: String,
}

impl Audit {
    /// The key's bytes (a `whsec_` value decoded, anything else as written).
    pub fn key_bytes(&self) -> Vec<u8> {
        if self.key.starts_with("whsec_") {
            crate::notify::webhook::decode_secret(&self.key)
        } else {
            self.key.as_bytes().to_vec()
        }
    }
}

/// `[cap]`: CAP 1.2 alerts in (`POST /v1/cap`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Cap {
    /// An `Actual` alert raises at once; `false`: it waits as a proposal a commander confirms.
    /// Default `true`.
    pub auto_raise: bool,
    /// `<event>` or `<category>` (matched whole, case- and width-insensitive) → incident kind.
    /// Merged over the built-in table of the demo's kinds (see [`default_kinds`]).
    pub kinds: BTreeMap<String, String>,
    /// Senders that post alerts with their own secret instead of a commander token.
    pub sender: Vec<CapSender>,
}

impl Default for Cap {
    fn default() -> Self {
        Cap {
            auto_raise: true,
            kinds: BTreeMap::new(),
            sender: vec![],
        }
    }
}

/// `[[cap.sender]]`: a warning system allowed to post CAP alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapSender {
    /// Its name: the `webhook-id` … headers are checked with its secret when the request names
    /// it in `?sender=` or in the header `cap-sender`; also who "raised" its incidents.
    pub name: String,
    /// Standard Webhooks secret (`whsec_…`) its requests are signed with.
    pub secret: String,
    /// The region code it may raise in (and everything below it).
    pub scope: String,
}

/// The built-in event and category table: the demo's kinds in English and Chinese, and the
/// CAP categories that name one kind. Keys are compared folded (see [`fold`]).
pub fn default_kinds() -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = &[
        ("flood", "flood"),
        ("flooding", "flood"),
        ("flash flood", "flood"),
        ("flood warning", "flood"),
        ("heavy rain", "flood"),
        ("rainstorm", "flood"),
        ("洪水", "flood"),
        ("洪涝", "flood"),
        ("内涝", "flood"),
        ("暴雨", "flood"),
        ("山洪", "flood"),
        ("earthquake", "earthquake"),
        ("地震", "earthquake"),
        ("fire", "fire"),
        ("wildfire", "fire"),
        ("forest fire", "fire"),
        ("火灾", "fire"),
        ("森林火灾", "fire"),
        ("public health", "public_health"),
        ("epidemic", "public_health"),
        ("突发公共卫生事件", "public_health"),
        ("公共卫生", "public_health"),
        ("疫情", "public_health"),
        // Categories (CAP 1.2 `<category>`) that mean one of the demo's kinds.
        ("Fire", "fire"),
        ("Health", "public_health"),
    ];
    pairs
        .iter()
        .map(|(k, v)| (fold(k), v.to_string()))
        .collect()
}

/// A key of the kinds table as compared: trimmed, full-width folded to ASCII, lower case,
/// inner runs of white space one space.
pub fn fold(s: &str) -> String {
    let wide: String = s
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect();
    wide.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
