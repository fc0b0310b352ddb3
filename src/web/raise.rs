//! `/incidents/new`: raising an incident from the command centre (commanders). The form
//! offers the plans' kinds, the four levels, and the regions of the caller's scope as a tree by
//! name; "preview" shows the plan that will run — its requirements, headcounts and ladder —
//! before anything is raised, and "raise" sends it with an idempotency key made when the form
//! was drawn, so a double click (or a resent form) raises one incident. It works without
//! JavaScript. The raise itself is the API's ([`crate::api::incidents::raise_by`]).

use super::incidents::kinds;
use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::Check;
use crate::api::incidents::{RaiseIncident, plan_for, raise_by};
use crate::domain::incident::{Level, Mode};
use crate::domain::ladder::Pool;
use crate::domain::plan::Plan;
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The form's fields, as typed (a GET to preview, a POST to raise).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RaiseForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    include_deployed: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    csrf: String,
}

/// The plan a preview shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The plan's name and id.
    pub plan: String,
    /// (team kind by name, headcount, qualification) per requirement.
    pub requirements: Vec<(String, u32, String)>,
    /// One line per ladder step: (tier, who, wait in minutes, told again).
    pub ladder: Vec<(&'static str, &'static str, i64, bool)>,
}

/// The plan in words.
pub fn preview(seed: &Seed, plan: &Plan, lang: Lang) -> Preview {
    let team_kind = |k: &str| super::lang::team_kind(seed, lang, k);
    Preview {
        plan: format!("{} ({})", plan.name, plan.id),
        requirements: plan
            .requirements
            .iter()
            .map(|r| {
                (
                    team_kind(&r.team_kind),
                    r.needed,
                    r.qualification.clone().unwrap_or_default(),
                )
            })
            .collect(),
        ladder: plan
            .ladder
            .iter()
            .map(|s| {
                (
                    super::board_view::tier_words(Some(s.scope), lang),
                    match s.pool {
                        Pool::OnCall => lang.t("值班人员", "on call"),
                        Pool::All => lang.t("全部队员", "all members"),
                    },
                    s.wait_ms / 60_000,
                    s.renotify,
                )
            })
            .collect(),
    }
}

/// The four levels as (number, name · colour), most severe first.
pub fn levels(seed: &Seed, lang: Lang) -> Vec<(String, String)> {
    (1..=4u8)
        .map(|l| {
            let w = seed.templates.words(
                lang.locale(),
                &MessageVars {
                    level: l,
                    ..Default::default()
                },
            );
            (
                l.to_string(),
                format!("{} · {}", w.level, super::incidents::colour_words(l, lang)),
            )
        })
        .collect()
}

/// The regions of a scope as a tree: (code, name indented by depth).
pub fn region_tree(
    seed: &Seed,
    scope: &crate::domain::region::RegionCode,
) -> Vec<(String, String)> {
    let top = seed.regions.chain(scope).len();
    seed.regions
        .subtree(scope)
        .into_iter()
        .map(|r| {
            let depth = seed.regions.chain(&r.code).len().saturating_sub(top);
            (
                r.code.to_string(),
                format!("{}{}", "　".repeat(depth), r.name),
            )
        })
        .collect()
}

#[derive(Template)]
#[template(path = "raise.html", config = "src/web/askama.toml")]
struct RaisePage {
    who: Option<Who>,
    lang: Lang,
    f: RaiseForm,
    kinds: Vec<(String, String)>,
    levels: Vec<(String, String)>,
    regions: Vec<(String, String)>,
    preview: Option<Preview>,
    problems: Vec<FieldError>,
    key: String,
    csrf: String,
    /// A trainer: drills only (the live choice is not offered).
    drills_only: bool,
}

impl RaiseForm {
    /// The API's body for these fields: what a person typed, read as the API reads JSON.
    fn body(&self) -> Result<RaiseIncident, ApiError> {
        let level = self
            .level
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("level", "choose a level"))
            .and_then(|l| Level::new(l).map_err(|e| ApiError::invalid("level", e)))?;
        let mode = if self.mode == "drill" {
            Mode::Drill
        } else {
            Mode::Live
        };
        let location = self.location.trim();
        let b = RaiseIncident {
            kind: self.kind.clone(),
            level,
            region: self.region.clone(),
            title: self.title.clone(),
            mode,
            location: (!location.is_empty())
                .then(|| serde_json::Value::String(location.to_string())),
            idempotency_key: (!self.idempotency_key.is_empty())
                .then(|| self.idempotency_key.clone()),
            include_deployed: mode == Mode::Drill && self.include_deployed == "yes",
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

fn page(
    st: &AppState,
    signed: &Signed,
    f: RaiseForm,
    preview: Option<Preview>,
    problems: Vec<FieldError>,
) -> Response {
    let lang = signed.lang;
    let seed = &st.ctx.seed;
    let key = if f.idempotency_key.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        f.idempotency_key.clone()
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = html(&RaisePage {
        who: Some(signed.who(st)),
        lang,
        kinds: kinds(seed, lang),
        levels: levels(seed, lang),
        regions: region_tree(seed, &signed.caller.scope),
        f,
        preview,
        problems,
        key,
        csrf: signed.csrf.clone(),
        drills_only: !signed.caller.role.may_command(),
    });
    *resp.status_mut() = status;
    resp
}

fn may_raise(signed: &Signed) -> Result<(), PageError> {
    if signed.caller.role.may_drill() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{} may not raise incidents (commanders; trainers for drills)",
            signed.caller.name
        ))
        .into())
    }
}

/// A trainer's form raises drills only, whatever it says.
fn drills_only(signed: &Signed, f: &mut RaiseForm) {
    if !signed.caller.role.may_command() {
        f.mode = "drill".into();
    }
}

/// The field errors of a refusal, or the refusal itself when it is not about fields.
fn problems_of(e: ApiError) -> Result<Vec<FieldError>, PageError> {
    match e {
        ApiError::Invalid(errs) | ApiError::Malformed(errs) => Ok(errs),
        other => Err(other.into()),
    }
}

/// `GET /incidents/new`: the form; with kind, level and region filled in, the plan that will
/// run, and the button that raises it.
pub async fn form(
    State(st): State<AppState>,
    signed: Signed,
    Query(mut f): Query<RaiseForm>,
) -> Result<Response, PageError> {
    may_raise(&signed)?;
    drills_only(&signed, &mut f);
    if f.kind.is_empty() && f.level.is_empty() && f.region.is_empty() {
        return Ok(page(&st, &signed, f, None, vec![]));
    }
    let checked = f.body().and_then(|b| {
        let (plan, region) = plan_for(&st.ctx, &b.kind, b.level, &b.region)?;
        signed.caller.require_scope(&st, &region)?;
        Ok(preview(&st.ctx.seed, plan, signed.lang))
    });
    Ok(match checked {
        Ok(p) => page(&st, &signed, f, Some(p), vec![]),
        Err(e) => page(&st, &signed, f, None, problems_of(e)?),
    })
}

/// `POST /incidents/new`: raises it (once per form: the key) and opens its board.
pub async fn raise(
    State(st): State<AppState>,
    signed: Signed,
    Form(mut f): Form<RaiseForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    may_raise(&signed)?;
    drills_only(&signed, &mut f);
    if f.idempotency_key.is_empty() {
        return Err(
            ApiError::invalid("idempotency_key", "the form lost its key; draw it again").into(),
        );
    }
    match f.body() {
        Ok(b) => match raise_by(&st, &signed.caller, b).await {
            Ok((_, v)) => Ok(Redirect::to(&format!("/incidents/{}", v.id)).into_response()),
            Err(e) => Ok(page(&st, &signed, f, None, problems_of(e)?)),
        },
        Err(e) => Ok(page(&st, &signed, f, None, problems_of(e)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_preview_says_the_plan_in_words() {
        let seed = Seed::load(Path::new("config/demo")).unwrap();
        let plan = seed.plans.iter().find(|p| p.id == "flood").unwrap();
        let p = preview(&seed, plan, Lang::Zh);
        assert!(p.plan.ends_with("(flood)"), "{}", p.plan);
        assert_eq!(p.requirements.len(), plan.requirements.len());
        assert_eq!(p.requirements[0].1, plan.requirements[0].needed);
        assert_eq!(p.ladder.len(), plan.ladder.len());
        assert_eq!(p.ladder[0].0, "乡镇");
        assert_eq!(p.ladder[0].2, plan.ladder[0].wait_ms / 60_000);
    }

    #[test]
    fn the_region_picker_is_the_scopes_tree() {
        let seed = Seed::load(Path::new("config/demo")).unwrap();
        let county = crate::domain::region::RegionCode::parse("990101").unwrap();
        let tree = region_tree(&seed, &county);
        assert_eq!(tree[0].0, "990101", "the scope itself first");
        assert!(!tree[0].1.starts_with('　'));
        assert!(tree.len() > 1);
        assert!(
            tree[1..]
                .iter()
                .all(|(c, n)| c.starts_with("990101") && n.starts_with('　'))
        );
    }

    #[test]
    fn the_form_reads_as_the_api_reads() {
        let f = RaiseForm {
            kind: "flood".into(),
            level: "4".into(),
            region: "990101001".into(),
            title: "东门内涝".into(),
            mode: "drill".into(),
            include_deployed: "yes".into(),
            location: "东门桥".into(),
            idempotency_key: "k1".into(),
            ..Default::default()
        };
        let b = f.body().unwrap();
        assert_eq!((b.mode, b.include_deployed), (Mode::Drill, true));
        assert_eq!(b.location, Some(serde_json::json!("东门桥")));
        let live = RaiseForm {
            mode: "live".into(),
            ..f.clone()
        };
        assert!(!live.body().unwrap().include_deployed, "only a drill");
        let untitled = RaiseForm {
            title: " ".into(),
            ..f.clone()
        };
        assert!(matches!(untitled.body(), Err(ApiError::Invalid(e)) if e[0].field == "title"));
        let nolevel = RaiseForm {
            level: String::new(),
            ..f
        };
        assert!(matches!(nolevel.body(), Err(ApiError::Invalid(e)) if e[0].field == "level"));
    }
}
