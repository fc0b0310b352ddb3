//! The notifier: hands queued messages (call-outs; standby, promoted and stand-down notices)
//! to the volunteers' channels, a batch at a time.
//!
//! One delivery entry names one message kind for many callouts of one incident (a fan-out
//! batch is one entry). Its callouts go out in chunks of [`CHUNK`]: the chunk's send permits
//! are taken first, then one script claims the chunk (`deliveries_begin`: one claim mark per
//! chunk; a fan-out batch's first claim reads nothing back, any other claim skips what is no
//! longer needed), one pipeline reads the volunteers' contacts, and each message is rendered,
//! signed and POSTed as its own task. Outcomes are recorded many per script
//! (`deliveries_done`) as they come in; after the last one the entry is acknowledged. While an
//! entry is worked on its idle time is refreshed, so other instances reclaim it only if this
//! one dies or stalls. A failed attempt is re-queued through the partition's `delayed` set
//! with exponential backoff and jitter (or the receiver's `Retry-After`) as an entry of its
//! own; after the last attempt the callout is `failed`.
//!
//! On shutdown an entry stops claiming, lets its sends finish, and hands what it never got to
//! back to the queue as a new entry (atomically with acknowledging the old one). If this
//! instance dies mid-entry, the entry is reclaimed by another; callouts with a recorded
//! outcome are skipped, and a chunk claimed before tells the next attempt that its messages'
//! first outcome is unknown: those re-sends are the only possible duplicates and are counted
//! in `muster_delivery_resends_total`.

use super::Ctx;
use super::worker::Handler;
use crate::domain::incident::IncidentId;
use crate::domain::template::MessageVars;
use crate::domain::token::AckToken;
use crate::notify::sms::{Gateway, Outgoing};
use crate::notify::webhook::SendError;
use crate::store::callouts::{Claim, DeliveryOutcome, Finish};
use crate::store::ladder::{Alert, AlertOutcome};
use crate::store::queue::{Entry, parse_ns};
use crate::store::registry::Contact;
use crate::store::sms::callout_ref;
use crate::store::{Keys, StoreError, field};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

/// Consumer group name.
pub const GROUP: &str = "notifier";

/// How long incident details stay cached: they never change except status, which the claim
/// script checks in Redis anyway.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// Callouts claimed at once: small enough that a claim is soon followed by its sends (so a
/// crash leaves few messages whose outcome is unknown), large enough to amortise the script.
/// Fixed, whatever the configuration, because an entry reclaimed by another instance must be
/// cut into the same chunks for their claim marks to match.
const CHUNK: usize = 64;

/// The claim mark of chunk `ns` of entry `entry`.
fn chunk_mark(entry: &str, ns: &[u32]) -> String {
    format!("{entry}:{}", ns.first().copied().unwrap_or(0))
}

/// Delivery entries one instance works on at once; each runs its chunks concurrently with the
/// others, all bounded by the shared send permits.
pub const ENTRIES_IN_FLIGHT: usize = 16;

/// Attempts at a command-centre alert: the webhook retry schedule, then its last wait again
/// and again, so a command centre unreachable for most of an hour still gets the alert.
const ALERT_ATTEMPTS: u32 = 30;

/// Outcomes recorded per script at most.
const FLUSH_MAX: usize = 512;

/// What a message needs to know about its incident.
#[derive(Debug, Clone)]
struct IncidentInfo {
    kind: String,
    level: u8,
    region: String,
    region_name: String,
    title: String,
    mode: String,
    raised_at: i64,
    /// Requirement id → team kind.
    team_kinds: HashMap<String, String>,
}

/// The notifier handler: a cheap handle on its shared state, so each entry runs as its own
/// task.
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    /// Send permits (`webhook.concurrency`), shared with shutdown, which waits for them.
    permits: Arc<Semaphore>,
    /// Entry slots ([`ENTRIES_IN_FLIGHT`]): the read side's backpressure.
    entries: Arc<Semaphore>,
    cache: Mutex<HashMap<Uuid, (Instant, Arc<IncidentInfo>)>>,
}

/// One delivery entry, parsed.
struct Job {
    p: u16,
    entry: String,
    id: IncidentId,
    kind: String,
    attempt: u32,
    ns: Vec<u32>,
    /// Volunteer ids of `ns`, in order, and their requirement, when the entry carries them.
    known: Option<(Vec<String>, String)>,
}

/// The outcome of one send, on its way to the collector.
struct Sent {
    n: u32,
    outcome: DeliveryOutcome,
    secs: f64,
}

/// The webhook body (`api.md`), serialised straight from borrowed parts.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    callout_id: String,
    incident: PayloadIncident<'a>,
    team_kind: &'a str,
    requirement_id: &'a str,
    message: String,
    drill: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<PayloadAck>,
}

#[derive(Serialize)]
struct PayloadIncident<'a> {
    id: String,
    kind: &'a str,
    level: u8,
    region: &'a str,
    title: &'a str,
    mode: &'a str,
}

/// The body of a shortfall alert to a command centre.
#[derive(Serialize)]
struct ShortfallBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    incident: PayloadIncident<'a>,
    requirement_id: &'a str,
    team_kind: &'a str,
    /// The command centre's region.
    region: &'a str,
    needed: u32,
    accepted: u32,
    short_by: u32,
}

#[derive(Serialize)]
struct PayloadAck {
    token: String,
    accept_url: String,
    decline_url: String,
    page_url: String,
}

impl Notifier {
    /// A handler on `ctx`, with at most `webhook.concurrency` sends in flight.
    pub fn new(ctx: Arc<Ctx>) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                permits: ctx.in_flight.clone(),
                entries: ctx.delivery_entries.clone(),
                ctx,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Inner {
    async fn incident_info(
        &self,
        id: &IncidentId,
    ) -> Result<Option<Arc<IncidentInfo>>, StoreError> {
        if let Some((at, info)) = self.cache.lock().expect("cache lock").get(&id.0)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(info.clone()));
        }
        let Some(inc) = self.ctx.store.incident_fields(id).await? else {
            return Ok(None);
        };
        let region = field(&inc, "region");
        let region_name = self
            .ctx
            .seed
            .regions
            .lookup(&region)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| region.clone());
        let info = Arc::new(IncidentInfo {
            kind: field(&inc, "kind"),
            level: field(&inc, "level").parse().unwrap_or(4),
            region,
            region_name,
            title: field(&inc, "title"),
            mode: field(&inc, "mode"),
            raised_at: field(&inc, "raised_at").parse().unwrap_or(0),
            team_kinds: crate::store::incidents::requirements_of(&inc)
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.id, r.team_kind))
                .collect(),
        });
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        }
        cache.insert(id.0, (Instant::now(), info.clone()));
        Ok(Some(info))
    }

    /// Parses an entry; `None` (after acknowledging it) if it is malformed.
    async fn job(&self, p: u16, e: Entry) -> Result<Option<Job>, StoreError> {
        let ns = match e.fields.get("ns") {
            Some(spec) => parse_ns(spec),
            None => parse_ns(e.get("n")), // entries written before batching
        };
        let parsed = (IncidentId::parse(e.get("i")), ns, e.get("k"));
        let (Some(id), Some(ns), kind) = parsed else {
            tracing::warn!(entry = %e.id, "malformed delivery entry dropped");
            let stream = self.ctx.store.keys.deliveries(p);
            self.ctx
                .store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&e.id))
                .await?;
            return Ok(None);
        };
        let vs: Vec<String> = e
            .get("vs")
            .split(',')
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        let known =
            (vs.len() == ns.len() && !e.get("r").is_empty()).then(|| (vs, e.get("r").to_string()));
        Ok(Some(Job {
            p,
            known,
            id,
            kind: kind.to_string(),
            attempt: e.get("a").parse::<u32>().unwrap_or(1).max(1),
            ns,
            entry: e.id,
        }))
    }

    /// Delivers every message of one entry, then finishes it.
    async fn run(self: &Arc<Self>, job: Job) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let Some(info) = self.incident_info(&job.id).await? else {
            let stream = store.keys.deliveries(job.p);
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&job.entry))
                .await;
        };
        let (tx, rx) = mpsc::unbounded_channel::<Sent>();
        let failed = AtomicBool::new(false);
        let work = async {
            tokio::join!(
                self.produce(&job, &info, tx, &failed),
                self.collect(&job, rx, &failed)
            )
        };
        tokio::pin!(work);
        // While the entry is worked on, its idle time is reset regularly, so other instances
        // reclaim it only if this one stops (dies or stalls), not because a batch is long.
        let beat = Duration::from_millis((self.ctx.config.engine.reclaim_idle_ms / 3).max(100));
        let stream = store.keys.deliveries(job.p);
        let (produced, collected) = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(beat) => {
                    if let Err(e) = store.touch_entry(&stream, GROUP, &self.ctx.consumer, &job.entry).await {
                        tracing::debug!(entry = job.entry, error = %e, "could not refresh the entry's claim");
                    }
                }
            }
        };
        collected?;
        let rest = produced?;
        let now = self.ctx.clock.now_ms();
        let finish = Finish {
            entry: &job.entry,
            group: GROUP,
            rest: &rest,
            attempt: job.attempt,
        };
        store
            .deliveries_done(&job.id, &job.kind, now, &[], Some(&finish))
            .await?;
        Ok(())
    }

    /// Claims and sends the entry's messages chunk by chunk. Returns the callouts it never got
    /// to because the process is shutting down.
    async fn produce(
        self: &Arc<Self>,
        job: &Job,
        info: &Arc<IncidentInfo>,
        tx: mpsc::UnboundedSender<Sent>,
        failed: &AtomicBool,
    ) -> Result<Vec<u32>, StoreError> {
        let store = &self.ctx.store;
        let concurrency = self.ctx.config.webhook.concurrency.max(1);
        for (i, ns) in job.ns.chunks(CHUNK).enumerate() {
            if failed.load(Ordering::Relaxed) {
                return Ok(vec![]); // the collector failed: the entry stays pending
            }
            // The chunk's permits come first, so a claimed chunk is a chunk being sent (a crash
            // then leaves few messages whose outcome is unknown).
            let mut permits = self
                .permits
                .clone()
                .acquire_many_owned(ns.len().min(concurrency) as u32)
                .await
                .expect("semaphore is never closed");
            if *self.ctx.shutdown.borrow() {
                return Ok(job.ns[i * CHUNK..].to_vec());
            }
            let known = job.known.as_ref().map(|(vs, r)| {
                let at = i * CHUNK;
                (&vs[at..at + ns.len()], r.as_str())
            });
            let claims = store
                .deliveries_begin(
                    &job.id,
                    &job.kind,
                    job.attempt,
                    &chunk_mark(&job.entry, ns),
                    ns,
                    known,
                )
                .await?;
            let sending: Vec<&Claim> = claims.iter().filter(|c| c.skip.is_none()).collect();
            let vids: Vec<String> = sending.iter().map(|c| c.volunteer_id.clone()).collect();
            let contacts = store
                .delivery_contacts(&vids, !self.ctx.sms.is_empty())
                .await?;
            let mut unsent = Vec::new();
            let mut resends = 0;
            for (c, contact) in sending.into_iter().zip(contacts) {
                let permit = match permits.split(1) {
                    Some(p) => p,
                    // Fewer permits than a chunk (`webhook.concurrency` < CHUNK): wait per
                    // message, and stop sending if the process is going away meanwhile.
                    None => {
                        let p = self
                            .permits
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("semaphore is never closed");
                        if *self.ctx.shutdown.borrow() {
                            unsent.push(c.n);
                            continue;
                        }
                        p
                    }
                };
                resends += u64::from(c.resend);
                let me = self.clone();
                let tx = tx.clone();
                let (info, id, kind, attempt) =
                    (info.clone(), job.id, job.kind.clone(), job.attempt);
                let (n, requirement) = (c.n, c.requirement.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = me
                        .send(&id, n, &kind, attempt, &requirement, &info, &contact)
                        .await;
                    let secs = started.elapsed().as_secs_f64();
                    let _ = tx.send(Sent { n, outcome, secs });
                    drop(permit);
                });
            }
            if resends > 0 {
                metrics::counter!("muster_delivery_resends_total", "kind" => job.kind.clone())
                    .increment(resends);
                tracing::warn!(incident = %job.id, kind = job.kind, resends, first = ns[0], "re-sending messages whose first outcome is unknown (their worker stopped mid-send)");
            }
            if !unsent.is_empty() {
                unsent.extend_from_slice(&job.ns[((i + 1) * CHUNK).min(job.ns.len())..]);
                return Ok(unsent);
            }
        }
        Ok(vec![])
    }

    /// Records outcomes as they come in, many per script, until every send has reported.
    async fn collect(
        &self,
        job: &Job,
        mut rx: mpsc::UnboundedReceiver<Sent>,
        failed: &AtomicBool,
    ) -> Result<(), StoreError> {
        let mut batch: Vec<(u32, DeliveryOutcome)> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut sent = vec![first];
            while sent.len() < FLUSH_MAX {
                match rx.try_recv() {
                    Ok(s) => sent.push(s),
                    Err(_) => break,
                }
            }
            let mut tally: HashMap<&'static str, u64> = HashMap::new();
            for s in sent {
                metrics::histogram!("muster_delivery_duration_seconds", "channel" => "webhook")
                    .record(s.secs);
                let label = match &s.outcome {
                    DeliveryOutcome::Delivered { .. } => "delivered",
                    DeliveryOutcome::Retry { .. } => "retry",
                    DeliveryOutcome::Failed { error } => {
                        tracing::warn!(incident = %job.id, n = s.n, kind = job.kind, error, "delivery failed for good");
                        "failed"
                    }
                };
                *tally.entry(label).or_default() += 1;
                batch.push((s.n, s.outcome));
            }
            for (label, k) in tally {
                metrics::counter!("muster_deliveries_total", "kind" => job.kind.clone(), "outcome" => label)
                    .increment(k);
            }
            let now = self.ctx.clock.now_ms();
            if let Err(e) = self
                .ctx
                .store
                .deliveries_done(&job.id, &job.kind, now, &batch, None)
                .await
            {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
            batch.clear();
        }
        Ok(())
    }

    /// Sends one attempt of one message over the channel its attempt number falls on (see
    /// [`Channel`]); the outcome says what to record.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        id: &IncidentId,
        n: u32,
        kind: &str,
        attempt: u32,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> DeliveryOutcome {
        if kind == "callout" && n == 1 && attempt == 1 {
            let secs = (self.ctx.clock.now_ms() - info.raised_at).max(0) as f64 / 1000.0;
            metrics::histogram!("muster_raise_to_first_handoff_seconds").record(secs);
        }
        let plan = self.channels(contact);
        let Some((channel, nth, tries, next)) = locate(&plan, attempt) else {
            let why = if plan.is_empty() {
                match (&contact.sms_off, self.ctx.sms.is_empty()) {
                    (Some(_), _) => "no channel: no webhook, and the number opted out of SMS",
                    (None, true) => "no channel: no webhook, and no SMS gateway is configured",
                    (None, false) => "no channel: no webhook and no phone number",
                }
                .to_string()
            } else {
                format!("every channel failed (after {} attempts)", attempt - 1)
            };
            return DeliveryOutcome::Failed { error: why };
        };
        let msg_id = format!("msg_{}_{}_{}", id.0.simple(), n, kind);
        let sent = match &channel.via {
            Via::Webhook(url) => {
                let body = self.payload(id, n, kind, requirement, info, contact);
                self.ctx
                    .webhook
                    .send(url, &msg_id, body)
                    .await
                    .map(|()| "webhook".to_string())
            }
            Via::Sms(gw) => {
                // Where an `undelivered` receipt for this message hands it on: the next
                // channel's first attempt (0: there is none).
                let onward = next.map_or(0, |_| attempt - nth + 1 + tries);
                let sent = SentSms {
                    kind,
                    msg_id: &msg_id,
                    onward,
                };
                self.send_sms(gw, id, n, &sent, requirement, info, contact)
                    .await
            }
        };
        match sent {
            Ok(channel) => DeliveryOutcome::Delivered { channel },
            Err(err) if nth < tries => DeliveryOutcome::Retry {
                at: self.retry_at(channel.backoff[nth as usize - 1], &err),
                attempt: attempt + 1,
                error: err.to_string(),
            },
            Err(err) => match next.map(Channel::name) {
                Some(next) => {
                    metrics::counter!("muster_delivery_failovers_total", "to" => next.clone())
                        .increment(1);
                    DeliveryOutcome::Retry {
                        at: self.ctx.clock.now_ms(),
                        attempt: attempt + 1,
                        error: format!("{err}; failing over to {next}"),
                    }
                }
                None => DeliveryOutcome::Failed {
                    error: format!("{err} (after {attempt} attempts)"),
                },
            },
        }
    }

    /// The channels of a volunteer in order: the webhook where they have one, then each SMS
    /// gateway (unless the number opted out).
    fn channels<'a>(&'a self, contact: &'a Contact) -> Vec<Channel<'a>> {
        let mut plan = Vec::new();
        if let Some(url) = contact.webhook.as_deref().filter(|w| !w.is_empty()) {
            plan.push(Channel {
                via: Via::Webhook(url),
                backoff: &self.ctx.config.webhook.retry_backoff_ms,
            });
        }
        if contact.phone.as_deref().is_some_and(|p| !p.is_empty()) && contact.sms_off.is_none() {
            for gw in &self.ctx.sms {
                plan.push(Channel {
                    via: Via::Sms(gw),
                    backoff: &self.ctx.config.sms.retry_backoff_ms,
                });
            }
        }
        plan
    }

    /// Renders and sends one SMS through `gw`, after its shared rate allows; the channel name
    /// (`sms:GATEWAY`) on success.
    #[allow(clippy::too_many_arguments)]
    async fn send_sms(
        &self,
        gw: &Gateway,
        id: &IncidentId,
        n: u32,
        sent: &SentSms<'_>,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> Result<String, SendError> {
        let (kind, msg_id) = (sent.kind, sent.msg_id);
        let store = &self.ctx.store;
        let phone = contact.phone.as_deref().unwrap_or_default();
        let cref = callout_ref(id, n);
        let redis = |e: StoreError| SendError::Transport(format!("redis: {e}"));
        // Messages a volunteer may answer carry the callout's reply code.
        let code = if kind == "stand_down" {
            String::new()
        } else {
            store
                .sms_code(phone, &cref, self.ctx.clock.now_ms())
                .await
                .map_err(redis)?
        };
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let template = self.template_of(locale, kind).1;
        let team_kind = info
            .team_kinds
            .get(requirement)
            .map(String::as_str)
            .unwrap_or(requirement);
        let vars = MessageVars {
            title: &info.title,
            kind: &info.kind,
            level: info.level,
            region: &info.region_name,
            team_kind,
            link: "",
            code: &code,
            codes: "",
            name: contact.name.as_deref().unwrap_or(""),
            drill: info.mode == "drill",
        };
        let text = self.ctx.seed.templates.render_sms(
            locale,
            template,
            &vars,
            self.ctx.config.sms.max_segments,
        );
        // Template variables (templated gateways) in the volunteer's words: 洪涝, 救援, Ⅳ级…
        let words = self.ctx.seed.templates.words(locale, &vars);
        let params: std::collections::BTreeMap<&'static str, String> = [
            ("code", code.clone()),
            ("title", info.title.clone()),
            ("region", info.region_name.clone()),
            ("kind", words.kind),
            ("level", words.level),
            ("team_kind", words.team_kind),
        ]
        .into();
        self.wait_turn(gw).await.map_err(redis)?;
        let status_url = format!("{}/v1/sms/status/{}", self.ctx.public_url, gw.name());
        let out = Outgoing {
            to: phone,
            text: &text,
            msg_id,
            kind: template,
            params: &params,
            status_url: &status_url,
            drill: info.mode == "drill",
        };
        let started = Instant::now();
        let result = gw.send(&out).await;
        let label = match &result {
            Ok(_) => "sent",
            Err(SendError::Status { status: 429, .. }) => "throttled",
            Err(_) => "error",
        };
        metrics::counter!("muster_sms_sends_total", "gateway" => gw.name().to_string(), "outcome" => label).increment(1);
        metrics::histogram!("muster_delivery_duration_seconds", "channel" => "sms")
            .record(started.elapsed().as_secs_f64());
        let gw_id = result?;
        if let Err(e) = store
            .sms_sent(gw.name(), &gw_id, &cref, kind, sent.onward)
            .await
        {
            tracing::warn!(gateway = gw.name(), error = %e, "could not remember the gateway's message id; its receipts will be ignored");
        }
        Ok(format!("sms:{}", gw.name()))
    }

    /// Waits for this message's turn at gateway `gw`, whose rate every instance shares.
    async fn wait_turn(&self, gw: &Gateway) -> Result<(), StoreError> {
        let burst = (gw.cfg.rate_per_sec / 10.0).ceil().max(1.0) as u32;
        loop {
            let wait = self
                .ctx
                .store
                .sms_rate(
                    gw.name(),
                    gw.cfg.rate_per_sec,
                    burst,
                    crate::clock::wall_ms(),
                )
                .await?;
            if wait == 0 {
                return Ok(());
            }
            metrics::counter!("muster_sms_throttled_total", "gateway" => gw.name().to_string(), "by" => "muster").increment(1);
            tokio::time::sleep(Duration::from_millis(wait.min(5_000))).await;
        }
    }

    /// Sends one SMS note (the answer to a volunteer's reply, see `api::sms`) and finishes its
    /// entry: done, another attempt later through the delayed set, or given up after the
    /// SMS retry schedule.
    async fn note(&self, p: u16, e: Entry) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let attempt: u32 = e.get("a").parse::<u32>().unwrap_or(1).max(1);
        let contact = store
            .delivery_contacts(&[e.get("v").to_string()], true)
            .await?
            .pop();
        let gw = self
            .ctx
            .sms
            .iter()
            .find(|g| g.name() == e.get("g"))
            .or_else(|| self.ctx.sms.first());
        let phone = contact.as_ref().and_then(|c| c.phone.clone());
        let (Some(contact), Some(gw), Some(phone)) = (contact, gw, phone) else {
            tracing::warn!(entry = %e.id, "SMS note dropped: its volunteer (erased?) or gateway is gone");
            return store.finish_entry(p, GROUP, &e.id, None).await;
        };
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let vars = MessageVars {
            code: e.get("c"),
            codes: e.get("cs"),
            ..Default::default()
        };
        let text = self.ctx.seed.templates.render_sms(
            locale,
            e.get("t"),
            &vars,
            self.ctx.config.sms.max_segments,
        );
        // A templated gateway takes the reply's own template (`reply_accepted`, …) where it has
        // one, else its `reply` template with the answer as `result`.
        let params: std::collections::BTreeMap<&'static str, String> = [
            ("code", e.get("c").to_string()),
            ("codes", e.get("cs").to_string()),
            ("result", text.clone()),
        ]
        .into();
        self.wait_turn(gw).await?;
        let status_url = format!("{}/v1/sms/status/{}", self.ctx.public_url, gw.name());
        let out = Outgoing {
            to: &phone,
            text: &text,
            msg_id: e.get("m"),
            kind: e.get("t"),
            params: &params,
            status_url: &status_url,
            drill: false,
        };
        let backoff = &self.ctx.config.sms.retry_backoff_ms;
        let (label, retry) = match gw.send(&out).await {
            Ok(_) => ("sent", None),
            Err(err) => match backoff.get(attempt as usize - 1) {
                Some(base) => {
                    let mut fields: Vec<(String, String)> = e
                        .fields
                        .iter()
                        .filter(|(k, _)| k.as_str() != "a")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    fields.push(("a".into(), (attempt + 1).to_string()));
                    ("retry", Some((self.retry_at(*base, &err), fields)))
                }
                None => {
                    tracing::warn!(entry = %e.id, gateway = gw.name(), attempt, error = %err, "SMS note failed for good");
                    ("failed", None)
                }
            },
        };
        metrics::counter!("muster_sms_notes_total", "outcome" => label).increment(1);
        let retry = retry.as_ref().map(|(at, f)| (*at, f.as_slice()));
        store.finish_entry(p, GROUP, &e.id, retry).await
    }

    /// The message kind as sent and the template it is rendered from: a re-sent call-out
    /// (`recall:STEP`) is a call-out, in the `recall` template where the locale has one; a
    /// call-out handed to the next channel after an `undelivered` receipt (`failover`) is the
    /// call-out again.
    fn template_of<'k>(&self, locale: &str, kind: &'k str) -> (&'k str, &'k str) {
        if kind == "failover" {
            return ("callout", "callout");
        }
        match kind.strip_prefix("recall:") {
            Some(_) if self.ctx.seed.templates.has(locale, "recall") => ("callout", "recall"),
            Some(_) => ("callout", "callout"),
            None => (kind, kind),
        }
    }

    /// When to try again after waiting about `base` ms (±20 % jitter), or longer if the
    /// receiver asked with `Retry-After` (up to `webhook.max_retry_after_ms`).
    fn retry_at(&self, base: u64, err: &SendError) -> i64 {
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        let mut wait = (base as f64 * jitter) as u64;
        if let Some(ra) = err.retry_after() {
            let cap = self.ctx.config.webhook.max_retry_after_ms;
            wait = wait.max((ra.as_millis() as u64).min(cap));
        }
        self.ctx.clock.now_ms() + wait as i64
    }

    /// Parses an alert entry; `None` (after acknowledging it) if it is malformed.
    async fn alert_entry(&self, p: u16, e: Entry) -> Result<Option<Alert>, StoreError> {
        let num = |k: &str| e.get(k).parse::<u32>().ok();
        let alert = match (IncidentId::parse(e.get("i")), num("nd"), num("tk")) {
            (Some(id), Some(needed), Some(taken))
                if !e.get("r").is_empty() && !e.get("g").is_empty() =>
            {
                Some(Alert {
                    id,
                    requirement: e.get("r").to_string(),
                    region: e.get("g").to_string(),
                    needed,
                    taken,
                    attempt: num("a").unwrap_or(1).max(1),
                    entry: e.id.clone(),
                })
            }
            _ => None,
        };
        if alert.is_none() {
            tracing::warn!(entry = %e.id, "malformed alert entry dropped");
            let stream = self.ctx.store.keys.deliveries(p);
            self.ctx
                .store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&e.id))
                .await?;
        }
        Ok(alert)
    }

    /// Sends one attempt of a shortfall alert to a command centre and records its outcome:
    /// delivered, another attempt later, or failed after [`ALERT_ATTEMPTS`].
    async fn alert(&self, a: Alert) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let url = self
            .ctx
            .seed
            .regions
            .lookup(&a.region)
            .and_then(|r| r.alert_webhook.clone());
        let (Some(info), Some(url)) = (self.incident_info(&a.id).await?, url) else {
            tracing::warn!(incident = %a.id, region = a.region, "alert dropped: its incident or the region's alert_webhook is gone");
            let stream = store.keys.deliveries(store.keys.partition_of(&a.id));
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&a.entry))
                .await;
        };
        if !store.claim_alert(&a).await? {
            metrics::counter!("muster_delivery_resends_total", "kind" => "alert").increment(1);
        }
        let team_kind = info
            .team_kinds
            .get(&a.requirement)
            .map(String::as_str)
            .unwrap_or(&a.requirement);
        let body = ShortfallBody {
            kind: "shortfall",
            incident: PayloadIncident {
                id: a.id.to_string(),
                kind: &info.kind,
                level: info.level,
                region: &info.region,
                title: &info.title,
                mode: &info.mode,
            },
            requirement_id: &a.requirement,
            team_kind,
            region: &a.region,
            needed: a.needed,
            accepted: a.taken,
            short_by: a.needed.saturating_sub(a.taken),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // The same id on every attempt, so a command centre can drop a repeat.
        let msg_id = format!(
            "msg_{}_short_{}_{}",
            a.id.0.simple(),
            a.requirement,
            a.region
        );
        let outcome = match self.ctx.webhook.send(&url, &msg_id, body).await {
            Ok(()) => AlertOutcome::Delivered,
            Err(err) if a.attempt < ALERT_ATTEMPTS => {
                let schedule = &self.ctx.config.webhook.retry_backoff_ms;
                let i = (a.attempt as usize - 1).min(schedule.len().saturating_sub(1));
                let base = schedule.get(i).copied().unwrap_or(60_000);
                tracing::warn!(incident = %a.id, region = a.region, attempt = a.attempt, error = %err, "shortfall alert failed; trying again");
                AlertOutcome::Retry {
                    at: self.retry_at(base, &err),
                    error: err.to_string(),
                }
            }
            Err(err) => {
                tracing::error!(incident = %a.id, region = a.region, attempt = a.attempt, error = %err, "shortfall alert failed for good");
                AlertOutcome::Failed {
                    error: format!("{err} (after {} attempts)", a.attempt),
                }
            }
        };
        let label = match outcome {
            AlertOutcome::Delivered => "delivered",
            AlertOutcome::Retry { .. } => "retry",
            AlertOutcome::Failed { .. } => "failed",
        };
        metrics::counter!("muster_shortfall_alerts_total", "outcome" => label).increment(1);
        let now = self.ctx.clock.now_ms();
        store.alert_done(&a, GROUP, now, &outcome).await
    }

    fn payload(
        &self,
        id: &IncidentId,
        n: u32,
        kind: &str,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> Vec<u8> {
        let token = self.ctx.signer.sign(AckToken { incident: *id, n });
        let base = &self.ctx.public_url;
        let link = format!("{base}/a/{token}");
        let team_kind = info
            .team_kinds
            .get(requirement)
            .map(String::as_str)
            .unwrap_or(requirement);
        let drill = info.mode == "drill";
        let vars = MessageVars {
            title: &info.title,
            kind: &info.kind,
            level: info.level,
            region: &info.region_name,
            team_kind,
            link: &link,
            code: "",
            codes: "",
            name: contact.name.as_deref().unwrap_or(""),
            drill,
        };
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let (kind, template) = self.template_of(locale, kind);
        let message = self.ctx.seed.templates.render(locale, template, &vars);
        let ack = (kind != "stand_down").then(|| PayloadAck {
            accept_url: format!("{base}/v1/acks/{token}?response=accept"),
            decline_url: format!("{base}/v1/acks/{token}?response=decline"),
            page_url: link.clone(),
            token,
        });
        let body = Payload {
            kind,
            callout_id: format!("{id}.{n}"),
            incident: PayloadIncident {
                id: id.to_string(),
                kind: &info.kind,
                level: info.level,
                region: &info.region,
                title: &info.title,
                mode: &info.mode,
            },
            team_kind,
            requirement_id: requirement,
            message,
            drill,
            ack,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// How a message goes out.
enum Via<'a> {
    Webhook(&'a str),
    Sms(&'a Arc<Gateway>),
}

/// One SMS being sent: its message kind, id, and the attempt an `undelivered` receipt for it
/// hands the message on to (the next channel's first; 0 when none).
struct SentSms<'a> {
    kind: &'a str,
    msg_id: &'a str,
    onward: u32,
}

/// One channel of a volunteer's plan: its attempts are one plus its backoff's length.
struct Channel<'a> {
    via: Via<'a>,
    backoff: &'a [u64],
}

impl Channel<'_> {
    fn tries(&self) -> u32 {
        self.backoff.len() as u32 + 1
    }

    fn name(&self) -> String {
        match &self.via {
            Via::Webhook(_) => "webhook".into(),
            Via::Sms(gw) => format!("sms:{}", gw.name()),
        }
    }
}

/// The channel attempt `attempt` (1-based, counted over the whole plan) falls on: the
/// channel, which of its tries this is (1-based), its number of tries, and the next channel. Attempts run through each channel's tries in turn, so the attempt number a retry
/// carries is all it takes to know where it goes.
fn locate<'p, 'a>(
    plan: &'p [Channel<'a>],
    attempt: u32,
) -> Option<(&'p Channel<'a>, u32, u32, Option<&'p Channel<'a>>)> {
    let mut left = attempt.max(1);
    for (i, c) in plan.iter().enumerate() {
        if left <= c.tries() {
            return Some((c, left, c.tries(), plan.get(i + 1)));
        }
        left -= c.tries();
    }
    None
}

impl Handler for Notifier {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn stream(&self, keys: &Keys, p: u16) -> String {
        keys.deliveries(p)
    }

    fn capacity(&self) -> usize {
        self.inner.entries.available_permits().max(1)
    }

    async fn handle(&self, p: u16, entries: Vec<Entry>) -> Result<(), StoreError> {
        for e in entries {
            let slot = self
                .inner
                .entries
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let me = self.inner.clone();
            // A command-centre alert, or a batch of messages to volunteers: each runs as its
            // own task holding its entry slot.
            let work: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                if e.get("k") == "sms_note" {
                    let entry = e.id.clone();
                    Box::pin(async move { (entry, me.note(p, e).await) })
                } else if e.get("k") == "alert" {
                    let Some(alert) = self.inner.alert_entry(p, e).await? else {
                        continue;
                    };
                    let entry = alert.entry.clone();
                    Box::pin(async move { (entry, me.alert(alert).await) })
                } else {
                    let Some(job) = self.inner.job(p, e).await? else {
                        continue;
                    };
                    let entry = job.entry.clone();
                    Box::pin(async move { (entry, me.run(job).await) })
                };
            tokio::spawn(async move {
                if let (entry, Err(err)) = work.await {
                    tracing::warn!(entry, error = %err, "delivery interrupted; it will be reclaimed");
                }
                drop(slot);
            });
        }
        Ok(())
    }
}
