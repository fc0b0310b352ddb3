//! `GET /v1/incidents/{id}/candidates`: per requirement and escalation step, who was called
//! (and how they answered) and who was left out, with the reason.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::incidents::visible;
use crate::domain::access::Role;
use crate::domain::callout::CalloutState;
use crate::domain::region::Tier;
use crate::domain::volunteer::mask_name;
use crate::engine::select::Selection;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

/// Who was considered for an incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct Candidates {
    /// The incident.
    #[schema(format = Uuid)]
    pub incident: String,
    /// One entry per requirement and escalation step.
    pub requirements: Vec<StepCandidates>,
}

/// Who one step of one requirement called, and who it left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepCandidates {
    /// The requirement.
    pub requirement_id: String,
    /// The step (0 = first).
    pub step: u32,
    /// Its tier.
    pub tier: Tier,
    /// The region it searched.
    pub region: Option<String>,
    /// The teams it searched.
    pub teams: Vec<String>,
    /// Who it called.
    pub called: Vec<Called>,
    /// Who it left out, and why.
    pub excluded: Vec<Left>,
}

/// A volunteer a step called.
#[derive(Debug, Serialize, ToSchema)]
pub struct Called {
    /// The volunteer.
    pub volunteer_id: String,
    /// Masked for viewers.
    pub volunteer_name: String,
    /// The team they were called through.
    pub team: String,
    /// The layer or override that put them on call.
    pub via: String,
    /// `webhook` or `sms:GATEWAY`.
    pub channel: String,
    /// How their callout stands now.
    pub state: Option<CalloutState>,
}

/// A volunteer a step left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct Left {
    /// The volunteer.
    pub volunteer_id: String,
    /// Masked for viewers.
    pub volunteer_name: String,
    /// The team.
    pub team: String,
    /// Why: `not_on_call`, `status`, `qualification_missing`, `qualification_expired`,
    /// `insurance_missing`, `insurance_expired`, `unavailable`, `resting`, `engaged`,
    /// `no_channel`.
    pub reason: String,
    /// The reason in words.
    pub detail: String,
}

/// Per requirement and step: who was called (with their answer) and who was left out, with
/// the reason.
#[utoipa::path(get, path = "/v1/incidents/{id}/candidates", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident")),
    responses(
        (status = 200, description = "the candidates", body = Candidates),
        (status = 404, description = "no such incident in this token's scope"),
    ))]
pub async fn candidates(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Candidates>, ApiError> {
    let (iid, _) = visible(&st, &caller, &id).await?;
    of(&st, &caller, &iid).await.map(Json)
}

/// Who was considered for an incident the caller can see, names masked per role (the API's
/// answer and the command centre's candidates page).
pub async fn of(
    st: &AppState,
    caller: &Caller,
    iid: &crate::domain::incident::IncidentId,
) -> Result<Candidates, ApiError> {
    let sels: Vec<(String, Selection)> = st.ctx.store.selections(iid).await?;
    let mut vids: Vec<String> = Vec::new();
    for (_, s) in &sels {
        vids.extend(s.candidates.iter().map(|c| c.volunteer_id.clone()));
        vids.extend(s.excluded.iter().map(|e| e.volunteer_id.clone()));
    }
    vids.sort();
    vids.dedup();
    let names: HashMap<String, String> = vids
        .iter()
        .cloned()
        .zip(st.ctx.store.volunteer_contacts(&vids).await?)
        .map(|(v, (n, _))| (v, n.unwrap_or_default()))
        .collect();
    let states = st.ctx.store.called_states(iid).await?;
    let show = |v: &str| {
        let n = names.get(v).cloned().unwrap_or_default();
        if caller.role == Role::Viewer {
            mask_name(&n)
        } else {
            n
        }
    };
    let requirements = sels
        .into_iter()
        .map(|(key, s)| {
            let (req, step) = key.rsplit_once(':').unwrap_or((&key, "0"));
            StepCandidates {
                requirement_id: req.to_string(),
                step: step.parse::<u32>().unwrap_or(0),
                tier: s.tier,
                region: s.region,
                teams: s.teams,
                called: s
                    .candidates
                    .into_iter()
                    .map(|c| Called {
                        volunteer_name: show(&c.volunteer_id),
                        state: states
                            .get(&c.volunteer_id)
                            .and_then(|x| CalloutState::parse(x)),
                        volunteer_id: c.volunteer_id,
                        team: c.team,
                        via: c.via,
                        channel: c.channel,
                    })
                    .collect(),
                excluded: s
                    .excluded
                    .into_iter()
                    .map(|e| Left {
                        volunteer_name: show(&e.volunteer_id),
                        volunteer_id: e.volunteer_id,
                        team: e.team,
                        reason: e.reason,
                        detail: e.detail,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Candidates {
        incident: iid.to_string(),
        requirements,
    })
}
