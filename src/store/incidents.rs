//! Incidents in Redis: raising, reading with progress, listing, standing down, and the status
//! projection.

use super::{Result, Store, StoreError, field, retrying};
use crate::clock::{Millis, rfc3339};
use crate::domain::callout::{ALL_STATES, CalloutState};
use crate::domain::incident::{IncidentId, Mode, Status};
use crate::domain::plan::Requirement;
use crate::domain::region::Tier;
use serde::Serialize;
use std::collections::HashMap;

/// What the API sends to raise an incident, already validated.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Its id (random, or derived from the idempotency key).
    pub id: IncidentId,
    /// Incident kind.
    pub kind: String,
    /// Level 1–4.
    pub level: u8,
    /// Region code.
    pub region: String,
    /// Title.
    pub title: String,
    /// Live or drill.
    pub mode: Mode,
    /// Free-form location, as JSON.
    pub location: Option<serde_json::Value>,
    /// A drill that may call volunteers already accepted on a live incident.
    pub include_deployed: bool,
    /// The plan's escalation ladder, fixed for the incident's life.
    pub ladder: Vec<crate::domain::ladder::Step>,
    /// The plan chosen.
    pub plan_id: String,
    /// Its requirements.
    pub requirements: Vec<Requirement>,
    /// Name of the raising token.
    pub raised_by: String,
    /// When.
    pub now: Millis,
    /// Where it came from and how a drill runs (all empty for a plain raise).
    pub origin: Origin,
    /// Its audit entry (written with it).
    pub audit: crate::store::audit::AuditEntry,
}

/// Where an incident came from, beyond who raised it: a scheduled drill, a CAP alert.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// A drill's channels: `simulated` (every message to the simulator) or `real`.
    pub channels: Option<String>,
    /// A drill's objectives, for its report.
    pub objectives: Option<String>,
    /// The scheduled drill that raised it.
    pub drill_id: Option<String>,
    /// The CAP alert that raised it: `sender,identifier,sent`.
    pub cap: Option<String>,
}

impl NewIncident {
    /// What makes two raises with one idempotency key "the same request".
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.kind,
            self.level,
            self.region,
            self.mode.as_str(),
            self.title
        )
    }
}

/// The outcome of a raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raised {
    /// A new incident.
    Created,
    /// The idempotency key named an existing incident raised with the same request.
    Existing,
    /// The idempotency key was used for a different request.
    KeyReused,
}

/// Progress of one requirement, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequirementProgress {
    /// Requirement id.
    pub id: String,
    /// Team kind.
    pub team_kind: String,
    /// Qualification required, if any.
    pub qualification: Option<String>,
    /// Headcount.
    pub needed: u32,
    /// Accepted (including those who arrived).
    pub accepted: u32,
    /// On standby.
    pub standby: u32,
    /// Declined.
    pub declined: u32,
    /// Called, not yet sent to any channel (the callout state `pending`).
    pub pending: u32,
    /// Sent (handed to a channel), not yet answered (the callout state `notified`).
    pub notified: u32,
    /// Unanswered after their step's wait.
    pub silent: u32,
    /// Checked in on site.
    pub arrived: u32,
    /// Withdrew after accepting.
    pub withdrawn: u32,
    /// No channel could deliver.
    pub failed: u32,
    /// Closed by the stand-down.
    pub stood_down: u32,
    /// Callouts made in all.
    pub called: u32,
    /// Escalation step reached (0 = first).
    pub step: u32,
    /// Scope of that step.
    pub tier: Tier,
    /// When that step's wait runs out and the call widens (unset once filled or short, or
    /// before the step has finished calling out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub next_step_at: Option<String>,
    /// The ladder ran out with the headcount unmet (it may still fill from late answers).
    pub short: bool,
}

/// An incident with its progress, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Incident)]
pub struct IncidentView {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Level: 1 = 特别重大 (most severe) … 4 = 一般.
    #[schema(minimum = 1, maximum = 4)]
    pub level: u8,
    /// Region code.
    pub region: String,
    /// Title.
    pub title: String,
    /// Live or drill.
    pub mode: Mode,
    /// Status.
    pub status: Status,
    /// The plan in force.
    pub plan_id: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub raised_at: String,
    /// Who raised it.
    pub raised_by: String,
    /// Location as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<serde_json::Value>,
    /// When every requirement first had its headcount.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub filled_at: Option<String>,
    /// When it was stood down.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub stood_down_at: Option<String>,
    /// Per-requirement progress.
    pub requirements: Vec<RequirementProgress>,
    /// A drill's channels: `simulated` (every message went to the simulator) or `real`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<String>,
    /// A drill's objectives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objectives: Option<String>,
    /// The scheduled drill that raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
    /// The CAP alerts that raised and changed it, as `sender,identifier,sent`, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap: Vec<String>,
}

impl IncidentView {
    /// The status (an `Option` for the callers that read it so).
    pub fn status(&self) -> Option<Status> {
        Some(self.status)
    }
}

/// The requirements an incident carries (its `reqs` field), as raised or upgraded.
pub fn requirements_of(inc: &HashMap<String, String>) -> Result<Vec<Requirement>> {
    serde_json::from_str(&field(inc, "reqs"))
        .map_err(|e| StoreError::Corrupt(format!("incident reqs: {e}")))
}

impl Store {
    /// Raises an incident atomically; see [`Raised`].
    pub async fn raise(&self, n: &NewIncident) -> Result<Raised> {
        // Every value is a string: Lua's cjson would turn large numbers into floats.
        let fields = serde_json::json!({
            "id": n.id.to_string(),
            "kind": n.kind,
            "level": n.level.to_string(),
            "region": n.region,
            "title": n.title,
            "mode": n.mode.as_str(),
            "status": Status::Mustering.as_str(),
            "plan_id": n.plan_id,
            "raised_at": n.now.to_string(),
            "raised_by": n.raised_by,
            "location": n.location.as_ref().map(|l| l.to_string()).unwrap_or_default(),
            "include_deployed": if n.include_deployed { "1" } else { "0" },
            "ladder": serde_json::to_string(&n.ladder).unwrap_or_else(|_| "[]".into()),
            "reqs": serde_json::to_string(&n.requirements).unwrap_or_else(|_| "[]".into()),
            "seq": "0",
        });
        let mut fields = fields;
        let o = &n.origin;
        for (k, v) in [
            ("channels", o.channels.clone()),
            ("objectives", o.objectives.clone()),
            ("drill_id", o.drill_id.clone()),
            (
                "cap",
                o.cap.as_ref().map(|c| serde_json::json!([c]).to_string()),
            ),
        ] {
            if let Some(v) = v {
                fields[k] = v.into();
            }
        }
        let mut counts = serde_json::Map::new();
        for r in &n.requirements {
            counts.insert(format!("{}:needed", r.id), r.needed.to_string().into());
        }
        let fp = n.fingerprint();
        let id = n.id.to_string();
        let fields = fields.to_string();
        let counts = serde_json::Value::Object(counts).to_string();
        let now = n.now.to_string();
        let audit = n.audit.json();
        let (created, existing_fp): (i64, String) = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().raise, &n.id);
            inv.arg(&id)
                .arg(&fp)
                .arg(&now)
                .arg(&fields)
                .arg(&counts)
                .arg(&audit);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        self.index_incident(&n.id, n.now).await?;
        Ok(if created == 1 {
            Raised::Created
        } else if existing_fp == fp {
            Raised::Existing
        } else {
            Raised::KeyReused
        })
    }

    /// Adds an incident to the listing index (idempotent).
    pub async fn index_incident(&self, id: &IncidentId, raised_at: Millis) -> Result<()> {
        let key = self.keys.incident_index();
        let id = id.to_string();
        retrying(|| {
            let mut c = self.conn();
            let (key, id) = (key.clone(), id.clone());
            async move {
                redis::cmd("ZADD")
                    .arg(key)
                    .arg(raised_at)
                    .arg(id)
                    .query_async::<()>(&mut c)
                    .await
            }
        })
        .await
    }

    /// One field of an incident.
    pub async fn incident_field(&self, id: &IncidentId, name: &str) -> Result<Option<String>> {
        self.cmd(redis::cmd("HGET").arg(self.keys.incident(id)).arg(name))
            .await
    }

    /// The raw incident hash, or `None`.
    pub async fn incident_fields(
        &self,
        id: &IncidentId,
    ) -> Result<Option<HashMap<String, String>>> {
        let base = self.keys.incident(id);
        let map: HashMap<String, String> = retrying(|| {
            let mut c = self.conn();
            let base = base.clone();
            async move { redis::cmd("HGETALL").arg(base).query_async(&mut c).await }
        })
        .await?;
        Ok(if map.is_empty() { None } else { Some(map) })
    }

    /// The incident with its progress, or `None`.
    pub async fn incident(&self, id: &IncidentId) -> Result<Option<IncidentView>> {
        let base = self.keys.incident(id);
        let counts = self.keys.counts(id);
        let (inc, cnt): (HashMap<String, String>, HashMap<String, String>) = retrying(|| {
            let mut c = self.conn();
            let mut p = redis::pipe();
            p.cmd("HGETALL").arg(&base).cmd("HGETALL").arg(&counts);
            async move { p.query_async(&mut c).await }
        })
        .await?;
        if inc.is_empty() {
            return Ok(None);
        }
        view(&inc, &cnt).map(Some)
    }

    /// Incidents in the index, newest first, at most `limit`, as views.
    pub async fn list_incidents(&self, limit: usize) -> Result<Vec<IncidentView>> {
        let key = self.keys.incident_index();
        let ids: Vec<String> = retrying(|| {
            let mut c = self.conn();
            let key = key.clone();
            async move {
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(limit.saturating_sub(1) as i64)
                    .arg("REV")
                    .query_async(&mut c)
                    .await
            }
        })
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids.iter().filter_map(|s| IncidentId::parse(s)) {
            if let Some(v) = self.incident(&id).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Recomputes an incident's status from its counters; returns the status.
    pub async fn project_status(&self, id: &IncidentId, now: Millis) -> Result<String> {
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().project_status, id);
            inv.arg(now);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }
}

fn num(map: &HashMap<String, String>, k: &str) -> u32 {
    map.get(k)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0) as u32
}

fn ms_text(map: &HashMap<String, String>, k: &str) -> Option<String> {
    map.get(k)
        .and_then(|v| v.parse::<Millis>().ok())
        .map(rfc3339)
}

/// Builds the API view from the incident and counts hashes.
pub(crate) fn view(
    inc: &HashMap<String, String>,
    cnt: &HashMap<String, String>,
) -> Result<IncidentView> {
    let requirements = requirements_of(inc)?
        .into_iter()
        .map(|r| {
            use CalloutState::*;
            let c = |s: CalloutState| num(cnt, &format!("{}:{}", r.id, s.as_str()));
            let step = num(cnt, &format!("{}:step", r.id));
            let accepted = c(Accepted) + c(Arrived);
            RequirementProgress {
                needed: r.needed,
                accepted,
                standby: c(Standby),
                declined: c(Declined),
                pending: c(Pending),
                notified: c(Notified),
                silent: c(Silent),
                arrived: c(Arrived),
                withdrawn: c(Withdrawn),
                failed: c(Failed),
                stood_down: c(StoodDown),
                called: ALL_STATES.iter().map(|s| c(*s)).sum(),
                step,
                next_step_at: cnt
                    .get(&format!("{}:due@{}", r.id, step))
                    .and_then(|d| d.parse().ok())
                    .filter(|_| {
                        accepted < r.needed && !cnt.contains_key(&format!("{}:short", r.id))
                    })
                    .map(crate::clock::rfc3339),
                short: cnt.contains_key(&format!("{}:short", r.id)) && accepted < r.needed,
                tier: cnt
                    .get(&format!("{}:tier", r.id))
                    .and_then(|t| Tier::parse(t))
                    .unwrap_or(Tier::Township),
                id: r.id,
                team_kind: r.team_kind,
                qualification: r.qualification,
            }
        })
        .collect();
    let location = inc
        .get("location")
        .filter(|s| !s.is_empty())
        .and_then(|s| serde_json::from_str(s).ok());
    Ok(IncidentView {
        id: field(inc, "id"),
        kind: field(inc, "kind"),
        level: num(inc, "level") as u8,
        region: field(inc, "region"),
        title: field(inc, "title"),
        mode: Mode::parse(&field(inc, "mode")).ok_or_else(|| {
            StoreError::Corrupt(format!("incident mode `{}`", field(inc, "mode")))
        })?,
        status: Status::parse(&field(inc, "status")).ok_or_else(|| {
            StoreError::Corrupt(format!("incident status `{}`", field(inc, "status")))
        })?,
        plan_id: field(inc, "plan_id"),
        raised_at: ms_text(inc, "raised_at").unwrap_or_default(),
        raised_by: field(inc, "raised_by"),
        location,
        filled_at: ms_text(inc, "filled_at"),
        stood_down_at: ms_text(inc, "stood_down_at"),
        requirements,
        channels: inc.get("channels").filter(|s| !s.is_empty()).cloned(),
        objectives: inc.get("objectives").filter(|s| !s.is_empty()).cloned(),
        drill_id: inc.get("drill_id").filter(|s| !s.is_empty()).cloned(),
        cap: inc
            .get("cap")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
    })
}
