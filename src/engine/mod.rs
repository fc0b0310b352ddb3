//! The workers. Each consumes one partitioned stream in a consumer group, so any number of
//! instances share the work and a dead instance's entries are reclaimed by the others:
//!
//! | worker | stream | group | does |
//! | --- | --- | --- | --- |
//! | [`fanout`] | `bus` | `fanout` | on `incident.raised`: selects candidates, creates callouts in batches (each batch enqueues its deliveries atomically); on `incident.stood_down`: closes callouts and enqueues stand-down notices |
//! | [`notifier`] | `deliveries` | `notifier` | hands each message to its channel, retrying through the `delayed` set, marking `notified` / `failed` |
//! | [`projection`] | `bus` | `projection` | keeps the incident index and status (`mustering` ↔ `filled`) |
//! | [`scheduler`] | `delayed` | — | moves due retries back to `deliveries` (atomic, so once) |
//!
//! [`worker`] holds the consumer loop they share; [`select`] is the seam that decides who is
//! called.

pub mod fanout;
pub mod notifier;
pub mod projection;
pub mod scheduler;
pub mod sealer;
pub mod select;
pub mod worker;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::TokenSigner;
use crate::notify::webhook::WebhookSender;
use crate::seed::Seed;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every worker and handler shares.
pub struct Ctx {
    /// Redis.
    pub store: Store,
    /// Regions, teams, plans, templates, tokens (read-only after start).
    pub seed: Arc<Seed>,
    /// Injected time: every domain deadline comes from here.
    pub clock: Arc<dyn Clock>,
    /// Configuration.
    pub config: Arc<Config>,
    /// Signs ack tokens.
    pub signer: TokenSigner,
    /// Base URL of ack links.
    pub public_url: String,
    /// This instance's consumer name in every group.
    pub consumer: String,
    /// The webhook channel.
    pub webhook: WebhookSender,
    /// SMS gateways, in order of preference (`[[sms.gateway]]`).
    pub sms: Vec<Arc<crate::notify::sms::Gateway>>,
    /// The simulator's SMS gateway, for drills on simulated channels (`[drill]`).
    pub drill_sms: Option<Arc<crate::notify::sms::Gateway>>,
    /// Flips to `true` when the process shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Parsed rosters, refreshed by version.
    pub rosters: crate::store::teams::RosterCache,
    /// Permits for deliveries in flight (`webhook.concurrency`); shutdown waits for them.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Slots for delivery entries being worked on ([`notifier::ENTRIES_IN_FLIGHT`]); shutdown
    /// waits for them, as an entry records its outcomes after its last send.
    pub delivery_entries: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// The SMS gateway named `name`: a configured one, else the drill simulator's.
    pub fn gateway(&self, name: &str) -> Option<&Arc<crate::notify::sms::Gateway>> {
        self.sms
            .iter()
            .find(|g| g.name() == name)
            .or(self.drill_sms.as_ref().filter(|g| g.name() == name))
    }
}

/// The simulator's SMS gateway of `[drill]`, when `simulator_url` is set: a generic gateway at
/// `{url}/sms/send` whose callbacks are signed with `simulator_secret` (else the secret of the
/// configured gateway of the same name, else `webhook.secret`).
pub fn drill_gateway(config: &Config) -> Option<crate::config::SmsGateway> {
    let d = &config.drill;
    let url = d.simulator_url.as_deref()?.trim_end_matches('/');
    let same = config
        .sms
        .gateway
        .iter()
        .find(|g| g.name == d.simulator_gateway);
    let secret = if !d.simulator_secret.is_empty() {
        d.simulator_secret.clone()
    } else if let Some(g) = same {
        g.secret.clone()
    } else {
        config.webhook.secret.clone()
    };
    let mut gw: crate::config::SmsGateway = serde_json::from_value(serde_json::json!({
        "name": d.simulator_gateway,
        "kind": "generic",
        "url": format!("{url}/sms/send"),
        "key_id": "drill",
        "secret": secret,
    }))
    .ok()?;
    gw.rate_per_sec = d.simulator_rate_per_sec;
    Some(gw)
}

/// Starts every worker for every partition.
pub fn spawn_all(ctx: Arc<Ctx>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let fan = Arc::new(fanout::Fanout::new(ctx.clone()));
    let proj = Arc::new(projection::Projection::new(ctx.clone()));
    let notif = Arc::new(notifier::Notifier::new(ctx.clone()));
    for p in 0..ctx.store.keys.partitions() {
        handles.push(worker::spawn(ctx.clone(), fan.clone(), p));
        handles.push(worker::spawn(ctx.clone(), proj.clone(), p));
        handles.push(worker::spawn(ctx.clone(), notif.clone(), p));
    }
    handles.push(tokio::spawn(scheduler::run(ctx.clone())));
    handles.push(tokio::spawn(sealer::run(ctx)));
    handles
}
