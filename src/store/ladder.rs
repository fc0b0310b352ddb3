//! Escalation in Redis: beginning a step once, declaring a requirement short, and the timers
//! that end each step's wait.
//!
//! A step's deadline is a member `incident|requirement|step` of its partition's `timers`
//! sorted set, scored by the due time on the injected clock. [`Store::fire_timers`] moves due
//! members to the partition's bus as `requirement.step_due` events in one script, so exactly
//! one instance fires each, and the fan-out group handles the event once. In-process sleeps are
//! only how often instances look.

use super::{Result, Store, retrying};
use crate::domain::incident::IncidentId;

/// What beginning a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStart {
    /// Go on: select and call out.
    Go,
    /// A later step has begun already: this one.
    Stale(usize),
    /// The requirement has its headcount.
    Filled,
    /// The incident is stood down.
    Closed,
}

/// A command-centre alert about a short requirement, as its delivery entry carries it.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The delivery entry.
    pub entry: String,
    pub id: IncidentId,
    pub requirement: String,
    /// The region whose command centre is alerted.
    pub region: String,
    /// Headcount needed and taken (accepted or arrived) when the requirement went short.
    pub needed: u32,
    pub taken: u32,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What one attempt of an alert came to.
#[derive(Debug, Clone)]
pub enum AlertOutcome {
    Delivered,
    /// Try again at `at` (ms).
    Retry {
        at: i64,
        error: String,
    },
    Failed {
        error: String,
    },
}

impl Store {
    /// Begins step `step` of requirement `req` (see `step_begin.lua`).
    pub async fn step_begin(
        &self,
        id: &IncidentId,
        req: &str,
        step: usize,
        tier: &str,
        now: i64,
        renotify: bool,
    ) -> Result<StepStart> {
        let idt = id.to_string();
        let r: String = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().step_begin, id);
            inv.arg(req)
                .arg(step)
                .arg(tier)
                .arg(now)
                .arg(if renotify { "1" } else { "0" })
                .arg(&idt);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(match r.as_str() {
            "go" => StepStart::Go,
            s if s.starts_with("stale:") => {
                StepStart::Stale(s["stale:".len()..].parse().unwrap_or(usize::MAX))
            }
            "filled" => StepStart::Filled,
            _ => StepStart::Closed,
        })
    }

    /// Declares requirement `req` short and enqueues one alert to each of `alert_regions`
    /// (their command centres); `Some((needed, taken))` the first time only.
    pub async fn requirement_short(
        &self,
        id: &IncidentId,
        req: &str,
        now: i64,
        alert_regions: &[&str],
    ) -> Result<Option<(u32, u32)>> {
        let idt = id.to_string();
        let r: Vec<u32> = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().requirement_short, id);
            inv.arg(req).arg(now).arg(&idt);
            for r in alert_regions {
                inv.arg(*r);
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(match r.as_slice() {
            [needed, taken] => Some((*needed, *taken)),
            _ => None,
        })
    }

    /// Marks alert entry `entry` as being sent; `false` if it was claimed before (its first
    /// sender stopped before recording the outcome, so this send may repeat it).
    pub async fn claim_alert(&self, alert: &Alert) -> Result<bool> {
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(self.keys.claims(&alert.id))
            .arg(&alert.entry)
            .arg(alert.attempt);
        let fresh: i64 = self.cmd(&cmd).await?;
        Ok(fresh == 1)
    }

    /// Records the outcome of one attempt of a command-centre alert and acknowledges its
    /// entry, atomically: a retry is scheduled through the partition's delayed set as a new
    /// entry; every outcome is an event of the incident.
    pub async fn alert_done(
        &self,
        alert: &Alert,
        group: &str,
        now: i64,
        outcome: &AlertOutcome,
    ) -> Result<()> {
        let p = self.keys.partition_of(&alert.id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let (kind, detail, retry) = match outcome {
            AlertOutcome::Delivered => ("alert.delivered", "", None),
            AlertOutcome::Retry { at, error } => {
                let fields: Vec<(String, String)> = [
                    ("i", alert.id.to_string()),
                    ("k", "alert".into()),
                    ("r", alert.requirement.clone()),
                    ("g", alert.region.clone()),
                    ("nd", alert.needed.to_string()),
                    ("tk", alert.taken.to_string()),
                    ("a", (alert.attempt + 1).to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                ("alert.retry", error.as_str(), Some((*at, fields)))
            }
            AlertOutcome::Failed { error } => ("alert.failed", error.as_str(), None),
        };
        pipe.cmd("XADD")
            .arg(self.keys.events(&alert.id))
            .arg("*")
            .arg("type")
            .arg(kind)
            .arg("at")
            .arg(now)
            .arg("requirement")
            .arg(&alert.requirement)
            .arg("region")
            .arg(&alert.region)
            .arg("attempt")
            .arg(alert.attempt)
            .arg("error")
            .arg(detail)
            .ignore();
        let retry = retry.as_ref().map(|(at, f)| (*at, f.as_slice()));
        self.push_finish(&mut pipe, p, group, &alert.entry, retry);
        // Not retried: the event is an `XADD *`, which a retry after a lost answer would add
        // twice. A failure leaves the entry pending; it is reclaimed and the alert sent again
        // with the same webhook-id (a counted re-send).
        self.pipe_once(&pipe).await
    }

    /// Arms the end of step `step`'s wait, once: a re-armed timer keeps its first time, and a
    /// timer that has fired is never armed again (the step's `due@STEP` mark says it was armed).
    pub async fn arm_timer(&self, id: &IncidentId, req: &str, step: usize, due: i64) -> Result<()> {
        let timers = self.keys.timers(self.keys.partition_of(id));
        let counts = self.keys.counts(id);
        let member = format!("{id}|{req}|{step}");
        let field = format!("{req}:due@{step}");
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().arm_timer.prepare_invoke();
            inv.key(&timers)
                .key(&counts)
                .arg(&field)
                .arg(due)
                .arg(&member);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Fires the due timers of partition `p`; returns how many fired.
    pub async fn fire_timers(&self, p: u16, now: i64, limit: usize) -> Result<u32> {
        let timers = self.keys.timers(p);
        let bus = self.keys.bus(p);
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().timers_due.prepare_invoke();
            inv.key(&timers).key(&bus).arg(now).arg(limit);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Timers armed in partition `p` (for tests and the benchmark).
    pub async fn armed_timers(&self, p: u16) -> Result<u64> {
        self.cmd(redis::cmd("ZCARD").arg(self.keys.timers(p))).await
    }

    /// Applies a level upgrade (see `upgrade.lua`): `merged` is the full requirement list,
    /// `changed` the added or raised requirements with their new headcount. Answers `ok`,
    /// `closed` or `moved`.
    #[allow(clippy::too_many_arguments)]
    pub async fn upgrade(
        &self,
        id: &IncidentId,
        expected: u8,
        level: u8,
        plan_id: &str,
        merged: &str,
        changed: &str,
        now: i64,
        audit: &crate::store::audit::AuditEntry,
    ) -> Result<String> {
        let json = audit.json();
        let idt = id.to_string();
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().upgrade, id);
            inv.arg(expected)
                .arg(level)
                .arg(plan_id)
                .arg(merged)
                .arg(changed)
                .arg(now)
                .arg(&idt)
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// The step requirement `req` has begun, if any.
    pub async fn step_begun(&self, id: &IncidentId, req: &str) -> Result<Option<usize>> {
        self.cmd(
            redis::cmd("HGET")
                .arg(self.keys.counts(id))
                .arg(format!("{req}:begun")),
        )
        .await
    }

    /// How many callouts step `step` of requirement `req` created.
    pub async fn step_callouts(&self, id: &IncidentId, req: &str, step: usize) -> Result<u64> {
        let v: Option<u64> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.counts(id))
                    .arg(format!("{req}:called@{step}")),
            )
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// The callout number of each volunteer this incident called, in order (`None`: not
    /// called). Reads just those fields, so a step of a large incident does not read everyone
    /// it called.
    pub async fn called_numbers(
        &self,
        id: &IncidentId,
        vids: &[String],
    ) -> Result<Vec<Option<u32>>> {
        self.cmd(redis::cmd("HMGET").arg(self.keys.called(id)).arg(vids))
            .await
    }
}
