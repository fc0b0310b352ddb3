//! Shortfall alerts to command centres: a signed webhook per alerted region, retried with the
//! webhook backoff then every last wait, for [`ALERT_ATTEMPTS`] attempts.

use super::payload::PayloadIncident;
use super::*;

/// Attempts at a command-centre alert: the webhook retry schedule, then its last wait again
/// and again, so a command centre unreachable for most of an hour still gets the alert.
const ALERT_ATTEMPTS: u32 = 30;

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

impl Inner {
    /// Sends one attempt of a shortfall alert to a command centre and records its outcome:
    /// delivered, another attempt later, or failed after [`ALERT_ATTEMPTS`].
    pub(super) async fn alert(&self, a: Alert) -> Result<(), StoreError> {
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
        let team_kind = info.team_kind(&a.requirement);
        let body = ShortfallBody {
            kind: "shortfall",
            incident: PayloadIncident {
                id: a.id.to_string(),
                kind: &info.kind,
                level: info.level,
                region: &info.region,
                title: &info.title,
                mode: info.mode.as_str(),
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
}
