//! Configuration: built-in defaults → `config/default.toml` → the `--config` file →
//! `MUSTER__SECTION__KEY` environment variables (double underscore between levels).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// Everything muster can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP listener.
    pub http: Http,
    /// Where Redis is.
    pub redis: Redis,
    /// Where the embedded Redis keeps its files (AOF, socket). Default `var`.
    pub data_dir: PathBuf,
    /// Seed data.
    pub seed: Seed,
    /// Stream workers.
    pub engine: Engine,
    /// Webhook channel.
    pub webhook: Webhook,
    /// Secrets.
    pub security: Security,
    /// Logging.
    pub log: Log,
    /// The simulator (`muster sim`).
    pub sim: Sim,
    /// Who may be called out.
    pub eligibility: Eligibility,
    /// SMS channel.
    pub sms: Sms,
    /// Drills: where simulated ones send.
    pub drill: Drill,
    /// CAP alerts in.
    pub cap: Cap,
    /// The audit log.
    pub audit: Audit,
    /// Retention.
    pub retention: Retention,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: Http::default(),
            redis: Redis::default(),
            data_dir: PathBuf::from("var"),
            seed: Seed::default(),
            engine: Engine::default(),
            webhook: Webhook::default(),
            security: Security::default(),
            log: Log::default(),
            sim: Sim::default(),
            eligibility: Eligibility::default(),
            sms: Sms::default(),
            drill: Drill::default(),
            cap: Cap::default(),
            audit: Audit::default(),
            retention: Retention::default(),
        }
    }
}

#[path = "config_alerts.rs"]
mod alerts;
#[path = "config_sms.rs"]
mod sms;
pub use alerts::{Audit, Cap, CapSender, Drill, Retention, default_kinds, fold};
pub use sms::{Sms, SmsGateway, SmsGatewayKind};

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Http {
    /// Listen address. Default `127.0.0.1:8080`; port 0 picks a free one.
    pub addr: String,
    /// The base URL volunteers reach muster at, used in ack links. Default: `http://` + `addr`.
    pub public_url: Option<String>,
    /// How long a command-centre sign-in lasts (hours). Default 12.
    pub session_hours: u32,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            addr: "127.0.0.1:8080".into(),
            public_url: None,
            session_hours: 12,
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// Unset: muster runs its own `redis-server` child under `data_dir`. Set: `redis://`,
    /// `rediss://` or `redis+unix://` URL to connect to.
    pub url: Option<String>,
    /// Prefix of every key. Default `muster`.
    pub prefix: String,
    /// The `redis-server` binary used for the embedded server. Default: found on `PATH`.
    pub server_bin: String,
    /// `appendfsync` of the embedded server: `always`, `everysec` (default) or `no`.
    pub appendfsync: String,
    /// With a replicated Redis: every 2xx answer to a change waits until this many replicas
    /// have the write (`WAIT`); fewer within `wait_timeout_ms` is a 503. Default 0.
    pub wait_replicas: u32,
    /// How long a change waits for its replicas (ms; below the connection's 500 ms response
    /// timeout). Default 400.
    pub wait_timeout_ms: u64,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: None,
            prefix: "muster".into(),
            server_bin: "redis-server".into(),
            appendfsync: "everysec".into(),
            wait_replicas: 0,
            wait_timeout_ms: 400,
        }
    }
}

impl Config {
    /// What is wrong with the configuration itself (the seed is checked separately), for
    /// `muster check` and for refusing to start.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.webhook.secret.trim().is_empty() {
            out.push(
                "webhook.secret is not set (MUSTER__WEBHOOK__SECRET): receivers could not verify call-outs"
                    .to_string(),
            );
        }
        if jiff::tz::TimeZone::get(&self.eligibility.time_zone).is_err() {
            out.push(format!(
                "eligibility.time_zone `{}` is not an IANA time zone",
                self.eligibility.time_zone
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, g) in self.sms.gateway.iter().enumerate() {
            let at = format!("sms.gateway[{i}] `{}`", g.name);
            let name_ok = !g.name.is_empty()
                && g.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                out.push(format!("{at}: name must be letters, digits, `_` or `-`"));
            }
            if !names.insert(g.name.as_str()) {
                out.push(format!("{at}: name used twice"));
            }
            if !(g.url.starts_with("http://") || g.url.starts_with("https://")) {
                out.push(format!("{at}: url must be http:// or https://"));
            }
            if g.rate_per_sec.is_nan() || g.rate_per_sec <= 0.0 {
                out.push(format!("{at}: rate_per_sec must be above 0"));
            }
            let need: &[(&str, &str)] = match g.kind {
                SmsGatewayKind::Generic => &[("secret", &g.secret)],
                SmsGatewayKind::Twilio => &[
                    ("key_id", &g.key_id),
                    ("secret", &g.secret),
                    ("from", &g.from),
                ],
                SmsGatewayKind::Aliyun => &[
                    ("key_id", &g.key_id),
                    ("secret", &g.secret),
                    ("sign_name", &g.sign_name),
                    ("callback_secret", &g.callback_secret),
                ],
            };
            for (k, v) in need {
                if v.trim().is_empty() {
                    out.push(format!("{at}: `{k}` is required for kind {:?}", g.kind));
                }
            }
            if g.kind == SmsGatewayKind::Aliyun && !g.templates.contains_key("callout") {
                out.push(format!(
                    "{at}: templates.callout (a template code) is required"
                ));
            }
        }
        if self.sms.max_segments == 0 {
            out.push("sms.max_segments must be at least 1".into());
        }
        if let Some(u) = &self.drill.simulator_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            out.push(format!(
                "drill.simulator_url `{u}` must be http:// or https://"
            ));
        }
        if self.drill.simulator_rate_per_sec.is_nan() || self.drill.simulator_rate_per_sec <= 0.0 {
            out.push("drill.simulator_rate_per_sec must be above 0".into());
        }
        if self.audit.key.trim().len() < 16 {
            out.push(
                "audit.key is not set or shorter than 16 characters (MUSTER__AUDIT__KEY): the audit log could not be sealed"
                    .to_string(),
            );
        }
        let mut senders = std::collections::HashSet::new();
        for (i, s) in self.cap.sender.iter().enumerate() {
            let at = format!("cap.sender[{i}] `{}`", s.name);
            if s.name.trim().is_empty() || !senders.insert(s.name.as_str()) {
                out.push(format!("{at}: name must be set and unique"));
            }
            if s.secret.trim().is_empty() {
                out.push(format!("{at}: secret is required"));
            }
            if crate::domain::region::RegionCode::parse(&s.scope).is_err() {
                out.push(format!("{at}: scope `{}` is not a region code", s.scope));
            }
        }
        out
    }
}

/// `[eligibility]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Eligibility {
    /// Hours a volunteer rests after a live deployment ends before they are called again.
    /// Default 12.
    pub rest_hours: u32,
    /// The time zone whose calendar day qualifications and insurance are checked against.
    /// Default `Asia/Shanghai`.
    pub time_zone: String,
}

impl Default for Eligibility {
    fn default() -> Self {
        Eligibility {
            rest_hours: 12,
            time_zone: "Asia/Shanghai".into(),
        }
    }
}

/// `[seed]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// Directory with regions, teams, plans, templates, tokens and the seed registry.
    pub dir: PathBuf,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            dir: PathBuf::from("config/demo"),
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Engine {
    /// Number of stream partitions of a new deployment. Fixed once a deployment has started:
    /// the value stored in Redis wins. Default 8.
    pub partitions: u16,
    /// An unacknowledged stream entry idle this long (ms) is reclaimed by another consumer.
    /// Must exceed the longest a handler takes (webhook timeout plus margin). Default 30000.
    pub reclaim_idle_ms: u64,
    /// How often (ms) each worker looks for entries to reclaim. Default 5000.
    pub reclaim_interval_ms: u64,
    /// How often (ms) due retries are moved from the delayed set to the queue. Default 100.
    pub scheduler_tick_ms: u64,
    /// Callouts created per Redis script call during fan-out. Default 500.
    pub fanout_batch: usize,
    /// The consumer name of this instance in every group. Default: a random one per process.
    pub consumer: Option<String>,
    /// For tests of several real processes only: muster's clock is the wall clock plus the
    /// milliseconds written in this file (re-read every 5 ms), so a test moves every
    /// process's time at once instead of sleeping. Unset (the default) in any deployment.
    pub clock_offset_file: Option<std::path::PathBuf>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            partitions: 8,
            reclaim_idle_ms: 30_000,
            reclaim_interval_ms: 5_000,
            scheduler_tick_ms: 100,
            fanout_batch: 500,
            consumer: None,
            clock_offset_file: None,
        }
    }
}

/// `[webhook]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Webhook {
    /// Standard Webhooks signing secret, `whsec_` + base64. Receivers verify with it.
    pub secret: String,
    /// Timeout of one delivery attempt (ms). Default 5000.
    pub timeout_ms: u64,
    /// Waits (ms) before each retry; one more attempt than entries. Jittered by ±20%.
    pub retry_backoff_ms: Vec<u64>,
    /// The longest `Retry-After` honoured (ms). Default 600000.
    pub max_retry_after_ms: u64,
    /// Deliveries in flight per instance. Default 256.
    pub concurrency: usize,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            secret: String::new(),
            timeout_ms: 5_000,
            retry_backoff_ms: vec![2_000, 10_000, 30_000, 120_000],
            max_retry_after_ms: 600_000,
            concurrency: 256,
        }
    }
}

/// `[security]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Security {
    /// Secret that signs ack tokens. Unset: generated once and kept in Redis, shared by all
    /// instances.
    pub token_secret: Option<String>,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    /// `text` (default) or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info,muster=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// `[sim]`: the simulated volunteer population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Sim {
    /// Where the simulator listens. Default `127.0.0.1:8081`.
    pub addr: String,
    /// Probability that a volunteer accepts. Default 0.55.
    pub accept: f64,
    /// Probability that a volunteer declines. Default 0.2. The rest stay silent.
    pub decline: f64,
    /// Shortest answer delay (ms). Default 1000.
    pub delay_min_ms: u64,
    /// Longest answer delay (ms). Default 8000.
    pub delay_max_ms: u64,
    /// Probability that an accepted volunteer later reports arrival. Default 0.8.
    pub arrive: f64,
    /// Seed of the simulator's random choices; unset: random.
    pub seed: Option<u64>,
    /// Where muster is, for SMS replies and receipts. Default `http://127.0.0.1:8080`.
    pub muster_url: String,
    /// The `[[sms.gateway]]` the simulator plays (its `secret` signs the callbacks). Default
    /// `sim`.
    pub sms_gateway: String,
    /// Messages per second the simulated gateway takes; more get 429 with `Retry-After: 1`.
    /// Default 200.
    pub sms_rate_per_sec: f64,
    /// Share of messages the simulated gateway refuses with 503. Default 0.02.
    pub sms_fail: f64,
}

impl Default for Sim {
    fn default() -> Self {
        Sim {
            addr: "127.0.0.1:8081".into(),
            accept: 0.55,
            decline: 0.2,
            delay_min_ms: 1_000,
            delay_max_ms: 8_000,
            arrive: 0.8,
            seed: None,
            muster_url: "http://127.0.0.1:8080".into(),
            sms_gateway: "sim".into(),
            sms_rate_per_sec: 200.0,
            sms_fail: 0.02,
        }
    }
}

impl Config {
    /// Loads defaults, `config/default.toml` (if present), `file` (if given) and the
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let default = Path::new(DEFAULT_CONFIG);
        if default.exists() {
            fig = fig.merge(Toml::file(default));
        }
        if let Some(f) = file {
            if !f.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    f.display()
                ))));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig.merge(Env::prefixed("MUSTER__").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self, bound: &str) -> String {
        self.http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string()
    }
}
