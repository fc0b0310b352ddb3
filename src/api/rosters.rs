//! `/v1/teams/{id}/roster` and overrides: a team's on-call schedule (应急值守), written
//! compare-and-set on its version.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError, json_body};
use super::teams::{load, load_for_change};
use crate::domain::roster::{Override, Roster, RosterDoc};
use crate::domain::text::{self, Lines};
use crate::store::teams::RosterWrite;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /v1/teams/{id}/roster`
pub async fn roster(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    load(&st, &caller, &id).await?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    Ok(Json(
        json!({"team": id, "version": ver, "roster": doc.unwrap_or_default()}),
    ))
}

/// Checks a roster against the team: every member named must be a member of the team (an
/// override's cover may come from any team in scope).
async fn check_roster(st: &AppState, id: &str, doc: RosterDoc) -> Result<Roster, ApiError> {
    let roster = Roster::new(doc).map_err(|p| {
        ApiError::Invalid(p.into_iter().map(|(f, r)| FieldError::new(f, r)).collect())
    })?;
    let members: std::collections::HashSet<String> = st
        .ctx
        .store
        .team_member_ids(id)
        .await?
        .into_iter()
        .collect();
    let mut errs = Vec::new();
    for (i, l) in roster.layers.iter().enumerate() {
        if let Err(why) = text::check(&l.spec.name, Lines::One) {
            errs.push(FieldError::new(format!("layers[{i}].name"), why));
        }
        for m in l.spec.members.iter().filter(|m| !members.contains(*m)) {
            errs.push(FieldError::new(
                format!("layers[{i}].members"),
                format!("`{m}` is not a member of team {id}"),
            ));
        }
    }
    for (i, o) in roster.overrides.iter().enumerate() {
        if let Some(Err(why)) = o.note.as_deref().map(|n| text::check(n, Lines::Many)) {
            errs.push(FieldError::new(format!("overrides[{i}].note"), why));
        }
        if st
            .ctx
            .store
            .volunteer(&o.volunteer)
            .await?
            .and_then(|s| s.volunteer)
            .is_none()
        {
            errs.push(FieldError::new(
                format!("overrides[{i}].volunteer"),
                format!("unknown volunteer `{}`", o.volunteer),
            ));
        }
    }
    if errs.is_empty() {
        Ok(roster)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

async fn write(
    st: &AppState,
    id: &str,
    expected: u64,
    roster: &Roster,
) -> Result<Json<Value>, ApiError> {
    match st.ctx.store.put_roster(id, expected, &roster.doc()).await? {
        RosterWrite::Written(v) => Ok(Json(
            json!({"team": id, "version": v, "roster": roster.doc()}),
        )),
        RosterWrite::Stale(v) => Err(ApiError::Conflict(format!(
            "the roster changed meanwhile (now version {v}); read it again"
        ))),
    }
}

/// `PUT /v1/teams/{id}/roster`: body `{layers, overrides?, version?}`. With `version`, the
/// write fails with 409 if someone changed the roster since.
pub async fn put_roster(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let mut obj = json_body(raw)?;
    let (current, _) = st.ctx.store.roster_doc(&id).await?;
    let expected = match obj.remove("version") {
        None | Some(Value::Null) => current,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid("version", "must be a whole number"))?,
    };
    let doc: RosterDoc = serde_json::from_value(Value::Object(obj)).map_err(|e| ApiError::invalid("body", format!("not a roster ({{layers: [{{id, members, on_call, shift, start, time_zone}}], overrides}}): {e}")))?;
    let roster = check_roster(&st, &id, doc).await?;
    tracing::info!(team = %id, by = %caller.name, layers = roster.layers.len(), "roster replaced");
    write(&st, &id, expected, &roster).await
}

/// `POST /v1/teams/{id}/overrides`: body `{volunteer, start, end, replaces?, note?}`.
pub async fn add_override(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let mut obj = json_body(raw)?;
    obj.insert(
        "id".into(),
        format!("o-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]).into(),
    );
    let o: Override = serde_json::from_value(Value::Object(obj)).map_err(|e| ApiError::invalid("body", format!("not an override ({{volunteer, start, end, replaces?, note?}} with RFC 3339 times): {e}")))?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    doc.overrides.push(o);
    let roster = check_roster(&st, &id, doc).await?;
    let Json(v) = write(&st, &id, ver, &roster).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /v1/teams/{id}/overrides/{oid}`
pub async fn delete_override(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, oid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    let before = doc.overrides.len();
    doc.overrides.retain(|o| o.id != oid);
    if doc.overrides.len() == before {
        return Err(ApiError::NotFound(format!(
            "no override {oid} on team {id}"
        )));
    }
    let roster = Roster::new(doc).map_err(|p| ApiError::Internal(format!("{p:?}")))?;
    write(&st, &id, ver, &roster).await
}

/// Removes a volunteer from a team's roster (erasure, leaving a team).
pub async fn drop_from_roster(st: &AppState, tid: &str, vid: &str) -> Result<(), ApiError> {
    for _ in 0..5 {
        let (ver, Some(mut doc)) = st.ctx.store.roster_doc(tid).await? else {
            return Ok(());
        };
        for l in &mut doc.layers {
            l.members.retain(|m| m != vid);
            l.on_call = l.on_call.min(l.members.len());
        }
        doc.layers.retain(|l| !l.members.is_empty());
        doc.overrides
            .retain(|o| o.volunteer != vid && o.replaces.as_deref() != Some(vid));
        if let RosterWrite::Written(_) = st.ctx.store.put_roster(tid, ver, &doc).await? {
            return Ok(());
        }
    }
    Err(ApiError::Conflict(format!(
        "the roster of {tid} kept changing; try again"
    )))
}
