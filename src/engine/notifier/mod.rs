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
use crate::domain::incident::{IncidentId, Mode};
use crate::domain::template::MessageVars;
use crate::domain::token::AckToken;
use crate::notify::sms::{Gateway, Outgoing};
use crate::notify::webhook::SendError;
use crate::store::callouts::{Claim, DeliveryOutcome, Finish};
use crate::store::delivery::DeliveryEntry;
use crate::store::ladder::{Alert, AlertOutcome};
use crate::store::queue::Entry;
use crate::store::registry::Contact;
use crate::store::sms::callout_ref;
use crate::store::{Keys, StoreError, field};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

mod alert;
mod batch;
mod channel;
mod note;
mod payload;

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
    mode: Mode,
    /// A drill on simulated channels: every message goes to the simulator.
    simulated: bool,
    raised_at: i64,
    /// Requirement id → team kind.
    team_kinds: HashMap<String, String>,
}

impl IncidentInfo {
    /// The team kind of a requirement (its id when unknown).
    fn team_kind<'a>(&'a self, requirement: &'a str) -> &'a str {
        self.team_kinds
            .get(requirement)
            .map(String::as_str)
            .unwrap_or(requirement)
    }

    /// The template variables of one message of this incident to `contact`.
    fn vars<'a>(
        &'a self,
        requirement: &'a str,
        contact: &'a Contact,
        link: &'a str,
        code: &'a str,
    ) -> MessageVars<'a> {
        MessageVars {
            title: &self.title,
            kind: &self.kind,
            level: self.level,
            region: &self.region_name,
            team_kind: self.team_kind(requirement),
            link,
            code,
            codes: "",
            name: contact.name.as_deref().unwrap_or(""),
            drill: self.mode == Mode::Drill,
        }
    }
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
    /// Entries this process is working on now. An entry of ours that a reclaim hands back
    /// (its heartbeat was late: the machine stalled longer than `reclaim_idle_ms`) is still
    /// alive here, so it is not started a second time. Keyed by partition and entry id: two
    /// partitions' streams can hand out the same id (same millisecond), above all on a Cluster.
    running: Mutex<HashSet<(u16, String)>>,
}

/// An entry marked running in [`Inner::running`] until this is dropped (its task ended,
/// however it ended).
struct Running(Arc<Inner>, (u16, String));

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut r) = self.0.running.lock() {
            r.remove(&self.1);
        }
    }
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

impl Notifier {
    /// A handler on `ctx`, with at most `webhook.concurrency` sends in flight.
    pub fn new(ctx: Arc<Ctx>) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                permits: ctx.in_flight.clone(),
                entries: ctx.delivery_entries.clone(),
                ctx,
                cache: Mutex::new(HashMap::new()),
                running: Mutex::new(HashSet::new()),
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
        let region_name = self.ctx.seed.regions.name_of(&region);
        let info = Arc::new(IncidentInfo {
            kind: field(&inc, "kind"),
            level: field(&inc, "level").parse().unwrap_or(4),
            region,
            region_name,
            title: field(&inc, "title"),
            mode: Mode::parse(&field(&inc, "mode")).unwrap_or(Mode::Live),
            simulated: field(&inc, "channels") == "simulated",
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
            if !self
                .inner
                .running
                .lock()
                .expect("running lock")
                .insert((p, e.id.clone()))
            {
                continue; // ours, and still being worked on
            }
            let slot = self
                .inner
                .entries
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let me = self.inner.clone();
            // A command-centre alert, an SMS note, or a batch of messages to volunteers: each
            // runs as its own task holding its entry slot.
            let entry = e.id.clone();
            let work: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                match DeliveryEntry::parse(&e) {
                    DeliveryEntry::Note(note) => {
                        Box::pin(async move { (entry.clone(), me.note(p, &entry, note).await) })
                    }
                    DeliveryEntry::Alert(a) => {
                        let alert = Alert {
                            entry: entry.clone(),
                            id: a.incident,
                            requirement: a.requirement,
                            region: a.region,
                            needed: a.needed,
                            taken: a.taken,
                            attempt: a.attempt,
                        };
                        Box::pin(async move { (entry, me.alert(alert).await) })
                    }
                    DeliveryEntry::Batch(b) => {
                        let job = Job {
                            p,
                            entry: entry.clone(),
                            id: b.incident,
                            known: b.known(),
                            kind: b.kind,
                            attempt: b.attempt,
                            ns: b.ns,
                        };
                        Box::pin(async move { (entry, me.run(job).await) })
                    }
                    DeliveryEntry::Malformed(why) => {
                        tracing::warn!(entry, why, "malformed delivery entry dropped");
                        self.inner
                            .running
                            .lock()
                            .expect("running lock")
                            .remove(&(p, entry.clone()));
                        self.inner
                            .ctx
                            .store
                            .finish_entry(p, GROUP, &entry, None)
                            .await?;
                        continue;
                    }
                };
            let running = Running(self.inner.clone(), (p, e.id));
            tokio::spawn(async move {
                if let (entry, Err(err)) = work.await {
                    tracing::warn!(entry, error = %err, "delivery interrupted; it will be reclaimed");
                }
                drop((slot, running));
            });
        }
        Ok(())
    }
}
