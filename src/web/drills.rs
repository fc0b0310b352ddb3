//! `/drills`: the drills of the scope — scheduled, running and past — and, for trainers (and
//! commanders), the form that schedules one now or later, on simulated or real channels, with
//! its objectives; a scheduled drill can be cancelled. Everything goes through the API's own
//! functions ([`crate::api::drills`]).

use super::lang::Lang;
use super::raise::{levels, region_tree};
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::drills::{Channels, DrillView, ScheduleDrill, cancel_by, in_scope, schedule_by};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::Check;
use crate::domain::incident::Level;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The schedule form's fields, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DrillForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    title: String,
    /// `YYYY-MM-DDTHH:MM` in the deployment's time zone (a `datetime-local`); empty: now.
    #[serde(default)]
    at: String,
    #[serde(default)]
    channels: String,
    #[serde(default)]
    objectives: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    csrf: String,
}

/// One drill as a row.
pub struct Row {
    pub d: DrillView,
    /// Region by name.
    pub region: String,
    /// When, in the deployment's time zone (`YYYY-MM-DD HH:MM`).
    pub at: String,
    /// Status in words.
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "drills.html", config = "src/web/askama.toml")]
struct DrillsPage {
    who: Option<Who>,
    lang: Lang,
    rows: Vec<Row>,
    /// The form, for a role that may schedule drills.
    may_schedule: bool,
    f: DrillForm,
    kinds: Vec<(String, String)>,
    levels: Vec<(String, String)>,
    regions: Vec<(String, String)>,
    problems: Vec<FieldError>,
    /// Whether simulated channels are available (`[drill] simulator_url`).
    simulator: bool,
    /// The time zone `at` is read in.
    tz: String,
    key: String,
    csrf: String,
}

fn status_words(status: &str, lang: Lang) -> &'static str {
    match status {
        "scheduled" => lang.t("待开始", "scheduled"),
        "starting" => lang.t("启动中", "starting"),
        "running" => lang.t("进行中", "running"),
        "finished" => lang.t("已结束", "finished"),
        "cancelled" => lang.t("已取消", "cancelled"),
        _ => lang.t("未能发起", "failed"),
    }
}

fn tz(st: &AppState) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&st.ctx.config.eligibility.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

impl DrillForm {
    /// The API's body: `at` read in the deployment's time zone.
    fn body(&self, zone: &jiff::tz::TimeZone) -> Result<ScheduleDrill, ApiError> {
        let level = self
            .level
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("level", "choose a level"))
            .and_then(|l| Level::new(l).map_err(|e| ApiError::invalid("level", e)))?;
        let at = match self.at.trim() {
            "" => None,
            t => Some(
                t.parse::<jiff::civil::DateTime>()
                    .ok()
                    .and_then(|dt| zone.to_timestamp(dt).ok())
                    .map(|t| t.to_string())
                    .ok_or_else(|| {
                        ApiError::invalid("at", "a date and time, e.g. 2026-12-01T09:30")
                    })?,
            ),
        };
        let objectives = self.objectives.replace("\r\n", "\n");
        let b = ScheduleDrill {
            kind: self.kind.clone(),
            level,
            region: self.region.clone(),
            title: self.title.clone(),
            at,
            channels: if self.channels == "real" {
                Channels::Real
            } else {
                Channels::Simulated
            },
            objectives: (!objectives.trim().is_empty()).then_some(objectives),
            location: None,
            include_deployed: false,
            idempotency_key: (!self.idempotency_key.is_empty())
                .then(|| self.idempotency_key.clone()),
        };
        let mut errs = Vec::new();
        b.check(&mut errs);
        if errs.is_empty() {
            Ok(b)
        } else {
            Err(ApiError::Invalid(errs))
        }
    }
}

async fn page(
    st: &AppState,
    signed: &Signed,
    f: DrillForm,
    problems: Vec<FieldError>,
) -> Result<Response, PageError> {
    let lang = signed.lang;
    let seed = &st.ctx.seed;
    let zone = tz(st);
    let rows = in_scope(st, &signed.caller)
        .await?
        .into_iter()
        .map(|d| Row {
            region: seed.regions.name_of(&d.region),
            at: d
                .at
                .parse::<jiff::Timestamp>()
                .map(|t| zone.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            status: status_words(&d.status, lang),
            d,
        })
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = html(&DrillsPage {
        who: Some(signed.who(st)),
        lang,
        rows,
        may_schedule: signed.caller.role.may_drill(),
        kinds: super::incidents::kinds(seed, lang),
        levels: levels(seed, lang),
        regions: region_tree(seed, &signed.caller.scope),
        problems,
        simulator: st.ctx.drill_sms.is_some(),
        tz: st.ctx.config.eligibility.time_zone.clone(),
        key: uuid::Uuid::new_v4().to_string(),
        csrf: signed.csrf.clone(),
        f,
    });
    *resp.status_mut() = status;
    Ok(resp)
}

/// `GET /drills`: the drills of the scope, and the schedule form.
pub async fn list(State(st): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    page(&st, &signed, DrillForm::default(), vec![]).await
}

fn may_drill(signed: &Signed) -> Result<(), PageError> {
    if signed.caller.role.may_drill() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{} may not schedule drills (trainers and commanders)",
            signed.caller.name
        ))
        .into())
    }
}

/// `POST /drills`: schedules it (once per form: the key), then back to the list.
pub async fn schedule(
    State(st): State<AppState>,
    signed: Signed,
    Form(f): Form<DrillForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    may_drill(&signed)?;
    let done = match f.body(&tz(&st)) {
        Ok(b) => schedule_by(&st, &signed.caller, b).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => Ok(Redirect::to("/drills").into_response()),
        Err(ApiError::Invalid(errs) | ApiError::Malformed(errs)) => {
            page(&st, &signed, f, errs).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The cancel form's fields.
#[derive(Debug, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /cap/proposals/{id}/confirm`: a commander confirms a CAP proposal and opens the
/// board of the incident it raised.
pub async fn confirm_proposal(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<CancelForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    let (_, v) = crate::api::cap_proposals::decide(&st, &signed.caller, &id, true).await?;
    let to = v.map_or_else(|| "/".to_string(), |v| format!("/incidents/{}", v.id));
    Ok(Redirect::to(&to).into_response())
}

/// `POST /cap/proposals/{id}/reject`: a commander rejects a CAP proposal.
pub async fn reject_proposal(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<CancelForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    crate::api::cap_proposals::decide(&st, &signed.caller, &id, false).await?;
    Ok(Redirect::to("/").into_response())
}

/// `POST /drills/{id}/cancel`: cancels a scheduled drill, then back to the list.
pub async fn cancel(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<CancelForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    may_drill(&signed)?;
    cancel_by(&st, &signed.caller, &id).await?;
    Ok(Redirect::to("/drills").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_its_time_in_the_deployments_zone() {
        let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let f = DrillForm {
            kind: "flood".into(),
            level: "4".into(),
            region: "990101001".into(),
            title: "夜间演练".into(),
            at: "2026-12-01T09:30".into(),
            channels: "real".into(),
            objectives: "10 分钟内集结\r\n全部到达".into(),
            ..Default::default()
        };
        let b = f.body(&zone).unwrap();
        assert_eq!(b.at.as_deref(), Some("2026-12-01T01:30:00Z"));
        assert_eq!(b.channels, Channels::Real);
        assert_eq!(b.objectives.as_deref(), Some("10 分钟内集结\n全部到达"));
        let now = DrillForm {
            at: String::new(),
            channels: String::new(),
            ..f.clone()
        };
        let b = now.body(&zone).unwrap();
        assert_eq!((b.at, b.channels), (None, Channels::Simulated));
        let bad = DrillForm {
            at: "next tuesday".into(),
            ..f
        };
        assert!(matches!(bad.body(&zone), Err(ApiError::Invalid(e)) if e[0].field == "at"));
    }
}
