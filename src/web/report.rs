//! `/incidents/{id}/report`: the after-action report (a drill's report) as a printable page —
//! the API's own report ([`crate::api::report`]) laid out for people, in the page's language.

use super::lang::{Lang, team_kind};
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::report::IncidentReport;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

/// Seconds as `m:ss` (or `h:mm:ss`), `—` when absent.
pub fn duration(s: &Option<f64>) -> String {
    match *s {
        None => "—".into(),
        Some(s) => {
            let s = s.max(0.0).round() as u64;
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            }
        }
    }
}

/// Seconds after the raise, as `m:ss`.
pub fn at(s: &f64) -> String {
    duration(&Some(*s))
}

/// How `now` compares with `before` (seconds): `快 0:40` / `0:40 faster`, `慢 …` / `… slower`,
/// `持平` / `the same`, `—` when either is absent.
pub fn delta(now: &Option<f64>, before: &Option<f64>, lang: super::lang::Lang) -> String {
    match (now, before) {
        (Some(n), Some(b)) => {
            let d = n - b;
            let mag = duration(&Some(d.abs()));
            let en = lang == super::lang::Lang::En;
            match (d.abs() < 0.5, d < 0.0, en) {
                (true, _, false) => "持平".into(),
                (true, _, true) => "the same".into(),
                (_, true, false) => format!("快 {mag}"),
                (_, true, true) => format!("{mag} faster"),
                (_, false, false) => format!("慢 {mag}"),
                (_, false, true) => format!("{mag} slower"),
            }
        }
        _ => "—".into(),
    }
}

/// A rate as a percentage with one decimal, `—` when absent.
pub fn percent(r: &Option<f64>) -> String {
    r.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

#[derive(Template)]
#[template(path = "report.html", config = "src/web/askama.toml")]
struct ReportPage {
    who: Option<Who>,
    lang: Lang,
    r: IncidentReport,
    /// Team kind names, per requirement, in order.
    kinds: Vec<String>,
    /// Team names, per team row, in order.
    teams: Vec<String>,
    region: String,
    /// The kind and the level, by name.
    kind: String,
    level: String,
}

/// `GET /incidents/{id}/report`: the report, printable (404 outside the scope).
pub async fn show(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (iid, v) = crate::api::incidents::visible(&st, &signed.caller, &id).await?;
    let r = crate::api::report::of(&st, &signed.caller, &iid, &v).await?;
    let ids: Vec<String> = r.teams.iter().filter_map(|t| t.team_id.clone()).collect();
    let names = crate::api::teams::names(&st, &ids).await?;
    let lang = signed.lang;
    let words = st.ctx.seed.templates.words(
        lang.locale(),
        &crate::domain::template::MessageVars {
            kind: &v.kind,
            level: v.level,
            ..Default::default()
        },
    );
    Ok(html(&ReportPage {
        kind: words.kind,
        level: format!(
            "{} · {}",
            words.level,
            super::incidents::colour_words(v.level, lang)
        ),
        who: Some(signed.who(&st)),
        lang,
        kinds: r
            .requirements
            .iter()
            .map(|q| team_kind(&st.ctx.seed, lang, &q.team_kind))
            .collect(),
        teams: r
            .teams
            .iter()
            .map(|t| match &t.team_id {
                Some(id) => names.get(id).map_or_else(|| id.clone(), |n| n.0.clone()),
                None => lang.t("未记录", "not recorded").to_string(),
            })
            .collect(),
        region: st.ctx.seed.regions.name_of(&v.region),
        r,
    }))
}

/// `GET /incidents/{id}/report.csv`: the report's rows, one per callout, for the session
/// (the API's `?format=csv` wants a bearer token).
pub async fn csv(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (iid, _) = crate::api::incidents::visible(&st, &signed.caller, &id).await?;
    let callouts = crate::api::callouts::page(&st, &signed.caller, &iid, 0, u32::MAX)
        .await?
        .callouts;
    Ok(crate::api::report::csv_response(&callouts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_read_as_people_write_them() {
        assert_eq!(duration(&None), "—");
        use super::super::lang::Lang;
        assert_eq!(delta(&Some(20.0), &Some(60.0), Lang::Zh), "快 0:40");
        assert_eq!(delta(&Some(90.0), &Some(60.0), Lang::En), "0:30 slower");
        assert_eq!(delta(&Some(60.2), &Some(60.0), Lang::En), "the same");
        assert_eq!(delta(&None, &Some(60.0), Lang::Zh), "—");
        assert_eq!(duration(&Some(59.6)), "1:00");
        assert_eq!(at(&150.0), "2:30");
        assert_eq!(duration(&Some(3725.0)), "1:02:05");
        assert_eq!(percent(&Some(1.0 / 7.0)), "14.3%");
        assert_eq!(percent(&None), "—");
    }
}
