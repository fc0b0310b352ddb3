//! The fan-out worker: turns `incident.raised` into callouts and `incident.stood_down` into
//! closed callouts and stand-down notices.
//!
//! Both are idempotent, so a re-delivered event (after a crash) changes nothing twice:
//! creating callouts skips volunteers the incident already called, and each batch enqueues
//! its deliveries in the same script that creates it.

use super::Ctx;
use super::select::{Ask, select};
use super::worker::Handler;
use crate::domain::incident::{IncidentId, Mode};
use crate::domain::region::RegionCode;
use crate::store::callouts::NewCallout;
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError, field};
use std::sync::Arc;

/// Consumer group name.
pub const GROUP: &str = "fanout";

/// The fan-out handler.
pub struct Fanout {
    ctx: Arc<Ctx>,
}

#[derive(serde::Deserialize)]
struct StoredReq {
    id: String,
    team_kind: String,
    qualification: Option<String>,
    needed: u32,
}

impl Fanout {
    /// A handler on `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Fanout {
        Fanout { ctx }
    }

    /// Calls out every requirement of a freshly raised incident.
    pub async fn raise(&self, id: &IncidentId) -> Result<(), StoreError> {
        let ctx = &self.ctx;
        let Some(inc) = ctx.store.incident_fields(id).await? else {
            return Ok(());
        };
        if !matches!(
            field(&inc, "status").as_str(),
            "mustering" | "filled" | "short"
        ) {
            return Ok(());
        }
        let Ok(region) = RegionCode::parse(&field(&inc, "region")) else {
            return Err(StoreError::Corrupt(format!("incident {id} region")));
        };
        let reqs: Vec<StoredReq> = serde_json::from_str(&field(&inc, "reqs"))
            .map_err(|e| StoreError::Corrupt(format!("incident {id} reqs: {e}")))?;
        let batch = ctx.config.engine.fanout_batch.max(1);
        for r in reqs {
            let req = crate::domain::plan::Requirement {
                id: r.id,
                team_kind: r.team_kind,
                qualification: r.qualification,
                needed: r.needed,
            };
            let ask = Ask {
                region: &region,
                requirement: &req,
                mode: Mode::parse(&field(&inc, "mode")).unwrap_or_default(),
                include_deployed: field(&inc, "include_deployed") == "1",
                incident: &field(&inc, "id"),
                now_ms: ctx.clock.now_ms(),
            };
            let sel = select(ctx, &ask).await?;
            ctx.store.save_selection(id, &req.id, 0, &sel).await?;
            let tier = sel.tier.as_str();
            tracing::debug!(incident = %id, requirement = %req.id, tier, candidates = sel.candidates.len(), excluded = sel.excluded.len(), "selected");
            for chunk in sel.candidates.chunks(batch) {
                let batch: Vec<NewCallout> = chunk
                    .iter()
                    .map(|c| NewCallout {
                        volunteer_id: c.volunteer_id.clone(),
                        channel: c.channel.clone(),
                    })
                    .collect();
                let now = ctx.clock.now_ms();
                match ctx
                    .store
                    .create_callouts(id, now, &req.id, tier, 0, &batch)
                    .await?
                {
                    Some(n) => {
                        metrics::counter!("muster_callouts_created_total").increment(u64::from(n))
                    }
                    None => return Ok(()), // stood down meanwhile
                }
            }
        }
        Ok(())
    }

    /// Closes every callout of a stood-down incident and enqueues the notices.
    pub async fn stand_down(&self, id: &IncidentId) -> Result<(), StoreError> {
        let last = self.ctx.store.callout_count(id).await?;
        let mut first = 1;
        let mut notices = 0;
        while first <= last {
            let upto = (first + 999).min(last);
            let now = self.ctx.clock.now_ms();
            notices += self
                .ctx
                .store
                .stand_down_sweep(id, now, first, upto)
                .await?;
            first = upto + 1;
        }
        tracing::info!(incident = %id, callouts = last, notices, "stood down");
        Ok(())
    }
}

impl Handler for Fanout {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn stream(&self, keys: &Keys, p: u16) -> String {
        keys.bus(p)
    }

    fn capacity(&self) -> usize {
        16
    }

    async fn handle(&self, p: u16, entries: Vec<Entry>) -> Result<(), StoreError> {
        let stream = self.ctx.store.keys.bus(p);
        for e in entries {
            let id = IncidentId::parse(e.get("incident"));
            match (e.get("type"), id) {
                ("incident.raised", Some(id)) => self.raise(&id).await?,
                ("incident.stood_down", Some(id)) => self.stand_down(&id).await?,
                _ => {}
            }
            self.ctx.store.ack_entries(&stream, GROUP, &[e.id]).await?;
        }
        Ok(())
    }
}
