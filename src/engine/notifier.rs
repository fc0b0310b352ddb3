//! The notifier: hands each queued message (a call-out, a standby / promoted / stand-down
//! notice) to the volunteer's channel.
//!
//! Per message: claim it (`delivery_begin`: skips what is no longer needed and marks it in
//! flight), render it in the volunteer's locale, POST the signed webhook, then record the
//! outcome and acknowledge the queue entry in one script (`delivery_done`). A failed attempt
//! is re-queued through the partition's `delayed` set with exponential backoff and jitter
//! (or the receiver's `Retry-After`); after the last one the callout is `failed`. If this
//! instance dies mid-send, the entry is reclaimed and the in-flight mark tells the next
//! attempt that the first outcome is unknown: that re-send is the only possible duplicate and
//! is counted in `muster_delivery_resends_total`.

use super::Ctx;
use super::worker::Handler;
use crate::domain::incident::IncidentId;
use crate::domain::template::MessageVars;
use crate::domain::token::AckToken;
use crate::notify::webhook::SendError;
use crate::store::callouts::{DeliveryClaim, DeliveryOutcome};
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError, field};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Consumer group name.
pub const GROUP: &str = "notifier";

/// How long incident details stay cached: they never change except status, which the claim
/// script checks in Redis anyway.
const CACHE_TTL: Duration = Duration::from_secs(5);

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

/// The notifier handler: a cheap handle on its shared state, so each delivery runs as its own
/// task.
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    permits: Arc<Semaphore>,
    cache: Mutex<HashMap<Uuid, (Instant, Arc<IncidentInfo>)>>,
}

impl Notifier {
    /// A handler on `ctx`, with at most `webhook.concurrency` deliveries in flight.
    pub fn new(ctx: Arc<Ctx>) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                permits: ctx.in_flight.clone(),
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

    async fn deliver(&self, p: u16, e: &Entry) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let stream = store.keys.deliveries(p);
        let (Some(id), Ok(n), kind, attempt) = (
            IncidentId::parse(e.get("i")),
            e.get("n").parse::<u32>(),
            e.get("k").to_string(),
            e.get("a").parse::<u32>().unwrap_or(1),
        ) else {
            tracing::warn!(entry = %e.id, "malformed delivery entry dropped");
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&e.id))
                .await;
        };
        let claim = store.delivery_begin(&id, n, &kind).await?;
        let DeliveryClaim::Send {
            volunteer_id,
            requirement,
            resend,
            ..
        } = claim
        else {
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&e.id))
                .await;
        };
        if resend {
            metrics::counter!("muster_delivery_resends_total", "kind" => kind.clone()).increment(1);
            tracing::warn!(incident = %id, n, kind, "re-sending a message whose first outcome is unknown");
        }
        let Some(info) = self.incident_info(&id).await? else {
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&e.id))
                .await;
        };
        let now = self.ctx.clock.now_ms();
        if kind == "callout" && n == 1 && attempt == 1 {
            let secs = (now - info.raised_at).max(0) as f64 / 1000.0;
            metrics::histogram!("muster_raise_to_first_handoff_seconds").record(secs);
        }
        let vol = store.volunteer_fields(&volunteer_id).await?;
        let outcome = match vol.get("webhook").filter(|w| !w.is_empty()) {
            Some(url) => {
                let body = self.payload(&id, n, &kind, &requirement, &info, &vol);
                let msg_id = format!("msg_{}_{}_{}", id.0.simple(), n, kind);
                let started = Instant::now();
                let r = self.ctx.webhook.send(url, &msg_id, body).await;
                metrics::histogram!("muster_delivery_duration_seconds", "channel" => "webhook")
                    .record(started.elapsed().as_secs_f64());
                match r {
                    Ok(()) => DeliveryOutcome::Delivered {
                        channel: "webhook".into(),
                    },
                    Err(err) => self.retry_or_fail(attempt, &err),
                }
            }
            None => DeliveryOutcome::Failed {
                error: "no channel: the volunteer has no webhook".into(),
            },
        };
        let label = match &outcome {
            DeliveryOutcome::Delivered { .. } => "delivered",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Failed { .. } => "failed",
        };
        metrics::counter!("muster_deliveries_total", "kind" => kind.clone(), "outcome" => label)
            .increment(1);
        if let DeliveryOutcome::Failed { error } = &outcome {
            tracing::warn!(incident = %id, n, kind, error, "delivery failed for good");
        }
        let now = self.ctx.clock.now_ms();
        store
            .delivery_done(&id, n, &kind, &outcome, now, &e.id, GROUP)
            .await
    }

    fn retry_or_fail(&self, attempt: u32, err: &SendError) -> DeliveryOutcome {
        let cfg = &self.ctx.config.webhook;
        let schedule = &cfg.retry_backoff_ms;
        let Some(base) = schedule.get(attempt.saturating_sub(1) as usize) else {
            return DeliveryOutcome::Failed {
                error: format!("{err} (after {attempt} attempts)"),
            };
        };
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        let mut wait = (*base as f64 * jitter) as u64;
        if let Some(ra) = err.retry_after() {
            wait = wait.max((ra.as_millis() as u64).min(cfg.max_retry_after_ms));
        }
        DeliveryOutcome::Retry {
            at: self.ctx.clock.now_ms() + wait as i64,
            attempt: attempt + 1,
            error: err.to_string(),
        }
    }

    fn payload(
        &self,
        id: &IncidentId,
        n: u32,
        kind: &str,
        requirement: &str,
        info: &IncidentInfo,
        vol: &HashMap<String, String>,
    ) -> Vec<u8> {
        let token = self.ctx.signer.sign(AckToken { incident: *id, n });
        let base = &self.ctx.public_url;
        let link = format!("{base}/a/{token}");
        let team_kind = info
            .team_kinds
            .get(requirement)
            .cloned()
            .unwrap_or_else(|| requirement.to_string());
        let drill = info.mode == "drill";
        let locale = vol.get("locale").map(String::as_str).unwrap_or("zh-CN");
        let vars = MessageVars {
            title: &info.title,
            kind: &info.kind,
            level: info.level,
            region: &info.region_name,
            team_kind: &team_kind,
            link: &link,
            code: "",
            name: vol.get("name").map(String::as_str).unwrap_or(""),
            drill,
        };
        let message = self.ctx.seed.templates.render(locale, kind, &vars);
        let mut body = json!({
            "type": kind,
            "callout_id": format!("{id}.{n}"),
            "incident": {
                "id": id.to_string(),
                "kind": info.kind,
                "level": info.level,
                "region": info.region,
                "title": info.title,
                "mode": info.mode,
            },
            "team_kind": team_kind,
            "requirement_id": requirement,
            "message": message,
            "drill": drill,
        });
        if kind != "stand_down" {
            body["ack"] = json!({
                "token": token,
                "accept_url": format!("{base}/v1/acks/{token}?response=accept"),
                "decline_url": format!("{base}/v1/acks/{token}?response=decline"),
                "page_url": link,
            });
        }
        serde_json::to_vec(&body).unwrap_or_default()
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
        self.inner.permits.available_permits().clamp(1, 256)
    }

    async fn handle(&self, p: u16, entries: Vec<Entry>) -> Result<(), StoreError> {
        for e in entries {
            let permit = self
                .inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let me = self.inner.clone();
            tokio::spawn(async move {
                if let Err(err) = me.deliver(p, &e).await {
                    tracing::warn!(entry = %e.id, error = %err, "delivery interrupted; it will be reclaimed");
                }
                drop(permit);
            });
        }
        Ok(())
    }
}
