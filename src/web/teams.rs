//! `/teams` and `/teams/{id}`: the registry for coordinators — the teams of the scope; a team's
//! members with their qualifications and insurance (expired, and expiring within 30 days,
//! flagged), who is on call now and the next hand-off; uploading a CSV/GBK registry file with
//! its import report (coordinators). Other roles read the same pages with names and phones
//! masked as the API masks them. Built from the API's own functions and models.

use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::domain::access::Team;
use crate::domain::volunteer::{Volunteer, VolunteerStatus, mask_name};
use crate::import::Report;
use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Days ahead an expiry is flagged.
pub const EXPIRING_DAYS: i64 = 30;

/// One team in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its kind, by name.
    pub kind: String,
    /// Its region, by name.
    pub region: String,
    /// Active, suspended, retired.
    pub status: &'static str,
    /// Members.
    pub members: usize,
}

/// How a date stands: `expired`, `soon` (within [`EXPIRING_DAYS`]), `ok`, or `none`.
pub fn standing(date: Option<Date>, today: Date) -> &'static str {
    match date {
        None => "none",
        Some(d) if d < today => "expired",
        Some(d) if d <= today.saturating_add(jiff::Span::new().days(EXPIRING_DAYS)) => "soon",
        Some(_) => "ok",
    }
}

/// One member row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The volunteer's id, for registry staff (their certificate link); empty otherwise.
    pub id: String,
    /// Name (masked unless the role may see personal data).
    pub name: String,
    /// Phone (the same).
    pub phone: String,
    /// Registry status in words.
    pub status: &'static str,
    /// On call now.
    pub on_call: bool,
    /// (qualification, valid until, standing).
    pub qualifications: Vec<(String, String, &'static str)>,
    /// Insurance valid until, or "".
    pub insurance: String,
    /// Its standing.
    pub insurance_standing: &'static str,
}

/// A team's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDetail {
    /// The team as listed.
    pub team: TeamRow,
    /// It has a roster.
    pub has_roster: bool,
    /// Its members, the ones needing attention (expired, then expiring) first.
    pub members: Vec<MemberRow>,
    /// Names on call now.
    pub on_call_now: Vec<String>,
    /// The next hand-off: when (local time) and who is on call from then.
    pub next: Option<(String, Vec<String>)>,
    /// Members with something expired.
    pub expired: usize,
    /// Members with something expiring within [`EXPIRING_DAYS`].
    pub expiring: usize,
}

fn status_words(s: VolunteerStatus, l: Lang) -> &'static str {
    match s {
        VolunteerStatus::Active => l.t("在册", "active"),
        VolunteerStatus::Suspended => l.t("暂停", "suspended"),
        VolunteerStatus::Retired => l.t("退出", "retired"),
        VolunteerStatus::Erased => l.t("已删除", "erased"),
    }
}

fn row(st: &AppState, t: &Team, members: usize, l: Lang) -> TeamRow {
    TeamRow {
        id: t.id.clone(),
        name: t.name.clone(),
        kind: super::lang::team_kind(&st.ctx.seed, l, &t.kind),
        region: st.ctx.seed.regions.name_of(t.region.as_str()),
        status: status_words(t.status, l),
        members,
    }
}

/// The member rows of a team, masked unless `personal`, most urgent first.
pub fn member_rows(
    vols: &[Volunteer],
    on_call: &[String],
    today: Date,
    personal: bool,
    l: Lang,
) -> Vec<MemberRow> {
    let mut rows: Vec<(u8, MemberRow)> = vols
        .iter()
        .map(|v| {
            let quals: Vec<(String, String, &'static str)> = v
                .qualifications
                .iter()
                .map(|(q, d)| (q.clone(), d.to_string(), standing(Some(*d), today)))
                .collect();
            let ins = standing(v.insurance_valid_until, today);
            let all: Vec<&str> = quals.iter().map(|q| q.2).chain([ins]).collect();
            let urgency = if all.iter().any(|s| *s == "expired" || *s == "none") {
                0
            } else if all.contains(&"soon") {
                1
            } else {
                2
            };
            let m = MemberRow {
                id: if personal {
                    v.id.clone()
                } else {
                    String::new()
                },
                name: if personal {
                    v.name.clone()
                } else {
                    mask_name(&v.name)
                },
                phone: if personal {
                    v.phone.expose().to_string()
                } else {
                    v.phone.masked()
                },
                status: status_words(v.status, l),
                on_call: on_call.contains(&v.id),
                qualifications: quals,
                insurance: v
                    .insurance_valid_until
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                insurance_standing: ins,
            };
            (urgency, m)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    rows.into_iter().map(|(_, m)| m).collect()
}

#[derive(Template)]
#[template(path = "teams.html", config = "src/web/askama.toml")]
struct TeamsPage {
    who: Option<Who>,
    lang: Lang,
    teams: Vec<TeamRow>,
    coordinator: bool,
    csrf: String,
    report: Option<Report>,
    problem: Option<String>,
}

async fn list_page(
    st: &AppState,
    signed: &Signed,
    report: Option<Report>,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let teams = crate::api::teams::in_scope(st, &signed.caller).await?;
    let ids: Vec<String> = teams.iter().map(|t| t.id.clone()).collect();
    let counts = st.ctx.store.members_of(&ids).await?;
    let rows = teams
        .iter()
        .zip(counts)
        .map(|(t, m)| row(st, t, m.len(), signed.lang))
        .collect();
    Ok(html(&TeamsPage {
        who: Some(signed.who(st)),
        lang: signed.lang,
        teams: rows,
        coordinator: signed.caller.role.may_see_personal_data(),
        csrf: signed.csrf.clone(),
        report,
        problem,
    }))
}

/// `GET /teams`: the scope's teams, and (coordinators) the registry upload.
pub async fn list(State(st): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    list_page(&st, &signed, None, None).await
}

/// `POST /teams/import` (coordinators; multipart: `csrf`, then `file`): imports the file as
/// the API's import does and shows its report on the teams page.
pub async fn import(
    State(st): State<AppState>,
    signed: Signed,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let bad = |why: &str| ApiError::invalid("file", why.to_string());
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(&format!("the upload did not arrive whole: {e}")))?
    {
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => {
                file = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| bad(&format!("the file did not arrive whole: {e}")))?,
                )
            }
            _ => {}
        }
    }
    signed.check_csrf(&csrf)?;
    signed.caller.require_coordinator()?;
    let bytes = file.unwrap_or_default();
    match crate::api::volunteers::import_by(&st, &signed.caller, &bytes).await {
        Ok(report) => list_page(&st, &signed, Some(report), None).await,
        Err(ApiError::Invalid(errs)) | Err(ApiError::Malformed(errs)) => {
            let why = errs
                .iter()
                .map(|e| e.reason.clone())
                .collect::<Vec<_>>()
                .join("; ");
            list_page(&st, &signed, None, Some(why)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "team.html", config = "src/web/askama.toml")]
struct TeamPage {
    who: Option<Who>,
    lang: Lang,
    t: TeamDetail,
}

/// `GET /teams/{id}`: one team (404 outside the scope, as the API).
pub async fn show(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = signed.lang;
    let team = crate::api::teams::load(&st, &signed.caller, &id).await?;
    let vols = crate::api::teams::members(&st, &team.id).await?;
    let now = jiff::Timestamp::from_millisecond(st.ctx.clock.now_ms())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let watch = crate::api::on_call::watch(&st, &team.id, now).await?;
    let tz = TimeZone::get(&st.ctx.config.eligibility.time_zone).unwrap_or(TimeZone::UTC);
    let today = tz.to_datetime(now).date();
    let personal = signed.caller.role.may_see_personal_data();
    let members = member_rows(&vols, &watch.now, today, personal, lang);
    let name_of = |vid: &String| {
        vols.iter()
            .find(|v| &v.id == vid)
            .map(|v| {
                if personal {
                    v.name.clone()
                } else {
                    mask_name(&v.name)
                }
            })
            .unwrap_or_else(|| vid.clone())
    };
    let count = |s: &str| {
        members
            .iter()
            .filter(|m| m.insurance_standing == s || m.qualifications.iter().any(|q| q.2 == s))
            .count()
    };
    let t = TeamDetail {
        team: row(&st, &team, vols.len(), lang),
        has_roster: watch.has_roster,
        expired: count("expired"),
        expiring: count("soon"),
        on_call_now: watch.now.iter().map(name_of).collect(),
        next: watch.next.as_ref().map(|(at, who)| {
            (
                tz.to_datetime(*at).strftime("%Y-%m-%d %H:%M").to_string(),
                who.iter().map(name_of).collect(),
            )
        }),
        members,
    };
    Ok(html(&TeamPage {
        who: Some(signed.who(&st)),
        lang,
        t,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::volunteer::Phone;

    fn vol(id: &str, ins: Option<Date>, quals: Vec<(String, Date)>) -> Volunteer {
        Volunteer {
            id: id.into(),
            name: format!("张{id}"),
            phone: Phone::parse("+8613800001234").unwrap(),
            locale: "zh-CN".into(),
            webhook: None,
            teams: vec!["t1".into()],
            home_region: None,
            status: VolunteerStatus::Active,
            insurance_valid_until: ins,
            qualifications: quals,
        }
    }

    #[test]
    fn expiries_are_flagged_and_come_first() {
        let today = jiff::civil::date(2026, 11, 29);
        assert_eq!(
            standing(Some(jiff::civil::date(2026, 11, 28)), today),
            "expired"
        );
        assert_eq!(standing(Some(today), today), "soon");
        assert_eq!(
            standing(Some(jiff::civil::date(2026, 12, 29)), today),
            "soon"
        );
        assert_eq!(standing(Some(jiff::civil::date(2026, 12, 30)), today), "ok");
        assert_eq!(standing(None, today), "none");
        let vols = vec![
            vol("a", Some(jiff::civil::date(2027, 6, 1)), vec![]),
            vol(
                "b",
                Some(jiff::civil::date(2027, 6, 1)),
                vec![("water_rescue".into(), jiff::civil::date(2026, 12, 10))],
            ),
            vol("c", Some(jiff::civil::date(2026, 1, 1)), vec![]),
        ];
        let rows = member_rows(&vols, &["a".into()], today, false, Lang::Zh);
        let order: Vec<&str> = rows.iter().map(|r| r.insurance.as_str()).collect();
        assert_eq!(order, ["2026-01-01", "2027-06-01", "2027-06-01"]);
        assert_eq!(rows[0].insurance_standing, "expired");
        assert_eq!(rows[1].qualifications[0].2, "soon");
        assert!(rows[2].on_call);
        assert!(
            rows.iter().all(|r| r.name.contains('*')),
            "masked: {rows:?}"
        );
        assert!(
            rows.iter().all(|r| !r.phone.contains("0000123")),
            "masked: {rows:?}"
        );
        let full = member_rows(&vols, &[], today, true, Lang::Zh);
        assert!(
            full.iter()
                .any(|r| r.name == "张a" && r.phone == "+8613800001234")
        );
    }
}
