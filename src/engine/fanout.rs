//! The fan-out worker: runs each requirement's escalation ladder and turns
//! `incident.stood_down` into closed callouts and stand-down notices.
//!
//! - `incident.raised`: step 0 of every requirement.
//! - `requirement.step_due` (a fired timer): the next step, or `short` after the last.
//! - `incident.upgraded`: step 0 of new requirements; a raised headcount calls again at the
//!   step it reached.
//!
//! A step begins once (`step_begin.lua` marks the earlier step's unanswered callouts
//! `silent`), selects volunteers not yet called, creates their callouts in batches (each batch
//! enqueues its deliveries atomically) and arms the timer that ends its wait. A step that finds
//! nobody new hands straight on to the next. Every part is idempotent, so a re-delivered event
//! changes nothing twice.

use super::Ctx;
use super::select::{Ask, Selection, check, consider, not_called};
use super::worker::Handler;
use crate::domain::incident::{IncidentId, Mode, Status};
use crate::domain::ladder::Step;
use crate::domain::plan::Requirement;
use crate::domain::region::RegionCode;
use crate::store::bus::BusEvent;
use crate::store::callouts::NewCallout;
use crate::store::ladder::StepStart;
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError, field};
use std::collections::HashMap;
use std::sync::Arc;

/// Consumer group name.
pub const GROUP: &str = "fanout";

/// Volunteers checked for eligibility before the first callouts are created: small, so the
/// first messages leave within milliseconds of the raise.
const FIRST_CHECK: usize = 250;

/// Volunteers checked at once after the first chunk.
const CHECK: usize = 2_000;

/// Largest callout batch (one script, one delivery entry), whatever `engine.fanout_batch` says:
/// the script passes a batch's numbers to one Redis call, and Lua's stack has a limit.
const MAX_BATCH: usize = 5_000;

/// The fan-out handler.
pub struct Fanout {
    ctx: Arc<Ctx>,
}

/// What the fan-out needs of an incident.
struct Loaded {
    id: IncidentId,
    fields: HashMap<String, String>,
    region: RegionCode,
    reqs: Vec<Requirement>,
    ladder: Vec<Step>,
}

impl Fanout {
    /// A handler on `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Fanout {
        Fanout { ctx }
    }

    async fn load(&self, id: &IncidentId) -> Result<Option<Loaded>, StoreError> {
        let Some(inc) = self.ctx.store.incident_fields(id).await? else {
            return Ok(None);
        };
        if !Status::parse(&field(&inc, "status")).is_some_and(Status::is_active) {
            return Ok(None);
        }
        let corrupt =
            |what: &str, e: String| StoreError::Corrupt(format!("incident {id} {what}: {e}"));
        let region = RegionCode::parse(&field(&inc, "region")).map_err(|e| corrupt("region", e))?;
        let reqs = crate::store::incidents::requirements_of(&inc)?;
        let ladder: Vec<Step> = match inc.get("ladder") {
            Some(l) => serde_json::from_str(l).map_err(|e| corrupt("ladder", e.to_string()))?,
            None => crate::domain::ladder::default_ladder(),
        };
        Ok(Some(Loaded {
            id: *id,
            region,
            reqs,
            ladder: if ladder.is_empty() {
                crate::domain::ladder::default_ladder()
            } else {
                ladder
            },
            fields: inc,
        }))
    }

    /// Step 0 of every requirement of a freshly raised incident.
    pub async fn raise(&self, id: &IncidentId) -> Result<(), StoreError> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        for r in &l.reqs {
            self.run_step(&l, r, 0).await?;
        }
        Ok(())
    }

    /// After a level upgrade: new requirements start their ladder; raised ones call out again
    /// at the step they reached (only volunteers not yet called), re-arming its wait.
    async fn upgraded(&self, id: &IncidentId, reqs: &str) -> Result<(), StoreError> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        for rid in reqs.split(',').filter(|r| !r.is_empty()) {
            let Some(r) = l.reqs.iter().find(|r| r.id == rid) else {
                continue;
            };
            let step = self.ctx.store.step_begun(id, rid).await?.unwrap_or(0);
            self.run_step(&l, r, step).await?;
        }
        Ok(())
    }

    /// The wait of `step` ran out: the next step, or `short` after the last.
    async fn step_due(&self, id: &IncidentId, req: &str, step: usize) -> Result<(), StoreError> {
        let Some(l) = self.load(id).await? else {
            return Ok(());
        };
        let Some(r) = l.reqs.iter().find(|r| r.id == req) else {
            return Ok(());
        };
        metrics::counter!("muster_escalation_steps_due_total").increment(1);
        if step + 1 < l.ladder.len() {
            self.run_step(&l, r, step + 1).await
        } else {
            self.short(&l, r).await
        }
    }

    /// Runs step `step` of requirement `req`, and the following ones while a step finds
    /// nobody new to call.
    async fn run_step(
        &self,
        l: &Loaded,
        req: &Requirement,
        mut step: usize,
    ) -> Result<(), StoreError> {
        let ctx = &self.ctx;
        let id = &l.id;
        loop {
            let Some(st) = l.ladder.get(step) else {
                return self.short(l, req).await;
            };
            let now = ctx.clock.now_ms();
            match ctx
                .store
                .step_begin(id, &req.id, step, st.scope.as_str(), now, st.renotify)
                .await?
            {
                StepStart::Go => {}
                // A later step has begun: go on with that one. Its handler may have died after
                // beginning it and before calling out or arming its wait (several steps can
                // begin in one handler when a step finds nobody new); re-running it is
                // idempotent, and its wait is armed once.
                StepStart::Stale(current) if current > step && current < l.ladder.len() => {
                    step = current;
                    continue;
                }
                StepStart::Stale(_) | StepStart::Filled | StepStart::Closed => return Ok(()),
            }
            let ask = Ask {
                region: &l.region,
                scope: st.scope,
                pool: st.pool,
                requirement: req,
                mode: Mode::parse(&field(&l.fields, "mode")).unwrap_or_default(),
                include_deployed: field(&l.fields, "include_deployed") == "1",
                incident: &field(&l.fields, "id"),
                now_ms: now,
            };
            if self.call_out(l, req, step, &ask).await?.is_none() {
                return Ok(()); // stood down meanwhile
            }
            let called_here = ctx.store.step_callouts(id, &req.id, step).await?;
            if called_here == 0 && step + 1 < l.ladder.len() {
                step += 1; // nobody to wait for at this step
                continue;
            }
            return ctx
                .store
                .arm_timer(id, &req.id, step, now + st.wait_ms)
                .await;
        }
    }

    /// Calls out step `step` of `req`: selects in chunks and creates each chunk's callouts
    /// (in batches of `engine.fanout_batch`, each one delivery entry) before checking the
    /// next, so the first messages leave while the rest of a large pool is still being
    /// checked. Stores the whole selection at the end. `None` if the incident was stood down.
    async fn call_out(
        &self,
        l: &Loaded,
        req: &Requirement,
        step: usize,
        ask: &Ask<'_>,
    ) -> Result<Option<()>, StoreError> {
        let ctx = &self.ctx;
        let pool = consider(ctx, ask).await?;
        let tier = pool.tier.as_str();
        let batch_size = ctx.config.engine.fanout_batch.clamp(1, MAX_BATCH);
        let mut not_on_call = Vec::with_capacity(pool.not_on_call.len());
        for part in pool.not_on_call.chunks(CHECK) {
            let ids: Vec<String> = part.iter().map(|e| e.volunteer_id.clone()).collect();
            let fresh = not_called(ctx, ask, &ids).await?;
            not_on_call.extend(
                part.iter()
                    .zip(fresh)
                    .filter(|(_, f)| *f)
                    .map(|(e, _)| e.clone()),
            );
        }
        let mut sel = Selection {
            tier: pool.tier,
            region: pool.region,
            teams: pool.teams,
            candidates: Vec::with_capacity(pool.looked.len()),
            excluded: not_on_call,
        };
        let mut rest = &pool.looked[..];
        let mut chunk = FIRST_CHECK;
        while !rest.is_empty() {
            let (now_chunk, later) = rest.split_at(chunk.min(rest.len()));
            rest = later;
            chunk = CHECK;
            let (candidates, mut excluded) = check(ctx, ask, now_chunk).await?;
            for part in candidates.chunks(batch_size) {
                let batch: Vec<NewCallout> = part
                    .iter()
                    .map(|c| NewCallout {
                        volunteer_id: c.volunteer_id.clone(),
                        channel: c.channel.clone(),
                        team: c.team.clone(),
                    })
                    .collect();
                let at = ctx.clock.now_ms();
                let created = ctx
                    .store
                    .create_callouts(&l.id, at, &req.id, tier, step as u32, &batch)
                    .await?;
                let Some(n) = created else {
                    return Ok(None);
                };
                metrics::counter!("muster_callouts_created_total").increment(u64::from(n));
            }
            sel.candidates.extend(candidates);
            sel.excluded.append(&mut excluded);
        }
        tracing::debug!(incident = %l.id, requirement = %req.id, step, tier, candidates = sel.candidates.len(), excluded = sel.excluded.len(), "called out");
        ctx.store
            .save_selection(&l.id, &req.id, step as u32, &sel)
            .await?;
        Ok(Some(()))
    }

    /// The ladder is exhausted with the headcount unmet: the requirement is short, and the
    /// command centres of the incident's region and above are alerted.
    async fn short(&self, l: &Loaded, req: &Requirement) -> Result<(), StoreError> {
        let now = self.ctx.clock.now_ms();
        // Every command centre up the tree that takes alerts gets one, through the delivery
        // queue (retried until it is delivered), enqueued with the shortfall itself.
        let centres: Vec<&str> = self
            .ctx
            .seed
            .regions
            .chain(&l.region)
            .into_iter()
            .filter(|r| r.alert_webhook.is_some())
            .map(|r| r.code.as_str())
            .collect();
        let Some((needed, taken)) = self
            .ctx
            .store
            .requirement_short(&l.id, &req.id, now, &centres)
            .await?
        else {
            return Ok(());
        };
        tracing::warn!(incident = %l.id, requirement = %req.id, needed, taken, alerts = centres.len(), "requirement short: the ladder is exhausted");
        metrics::counter!("muster_requirements_short_total").increment(1);
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
            match BusEvent::parse(&e) {
                BusEvent::Raised { incident } => self.raise(&incident).await?,
                BusEvent::StoodDown { incident } => self.stand_down(&incident).await?,
                BusEvent::Upgraded {
                    incident,
                    requirements,
                } => self.upgraded(&incident, &requirements).await?,
                BusEvent::StepDue {
                    incident,
                    requirement,
                    step,
                    due,
                } => {
                    let late = (self.ctx.clock.now_ms() - due).max(0) as f64 / 1000.0;
                    metrics::histogram!("muster_escalation_timer_lateness_seconds").record(late);
                    self.step_due(&incident, &requirement, step).await?
                }
                BusEvent::Unknown { kind } => {
                    tracing::warn!(entry = %e.id, kind, "unreadable bus event acknowledged and left alone");
                }
                BusEvent::Answered { .. } | BusEvent::Short { .. } => {}
            }
            self.ctx.store.ack_entries(&stream, GROUP, &[e.id]).await?;
        }
        Ok(())
    }
}
