//! `GET /v1/incidents/{id}/candidates`: per requirement and escalation step, who was called
//! (and how they answered) and who was left out, with the reason.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::incidents::visible;
use crate::domain::access::Role;
use crate::domain::volunteer::mask_name;
use crate::engine::select::Selection;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `GET /v1/incidents/{id}/candidates`
pub async fn candidates(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (iid, _) = visible(&st, &caller, &id).await?;
    let sels: Vec<(String, Selection)> = st.ctx.store.selections(&iid).await?;
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
    let states = st.ctx.store.called_states(&iid).await?;
    let show = |v: &str| {
        let n = names.get(v).cloned().unwrap_or_default();
        if caller.role == Role::Viewer {
            mask_name(&n)
        } else {
            n
        }
    };
    let reqs: Vec<Value> = sels
        .iter()
        .map(|(key, s)| {
            let (req, step) = key.rsplit_once(':').unwrap_or((key, "0"));
            json!({
                "requirement_id": req,
                "step": step.parse::<u32>().unwrap_or(0),
                "tier": s.tier,
                "region": s.region,
                "teams": s.teams,
                "called": s.candidates.iter().map(|c| json!({
                    "volunteer_id": c.volunteer_id,
                    "volunteer_name": show(&c.volunteer_id),
                    "team": c.team,
                    "via": c.via,
                    "channel": c.channel,
                    "state": states.get(&c.volunteer_id),
                })).collect::<Vec<_>>(),
                "excluded": s.excluded.iter().map(|e| json!({
                    "volunteer_id": e.volunteer_id,
                    "volunteer_name": show(&e.volunteer_id),
                    "team": e.team,
                    "reason": e.reason,
                    "detail": e.detail,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "incident": iid.to_string(), "requirements": reqs }),
    ))
}
