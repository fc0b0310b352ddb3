//! The bodies of `POST /v1/volunteers` and `PATCH /v1/volunteers/{id}`, and how a checked
//! body is applied over a volunteer: what only the deployment can say (phone syntax, locales,
//! regions, teams and the caller's scope) is checked there, every problem named.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::{Check, nullable, text_field};
use crate::domain::region::RegionCode;
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{Phone, Volunteer, VolunteerStatus};
use crate::seed::check_webhook;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A qualification and its last valid day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// The code (`first_aid`, `rope_rescue`, …).
    #[schema(min_length = 1)]
    pub code: String,
    /// The last day it is valid.
    #[schema(value_type = String, format = Date)]
    pub valid_until: Date,
}

/// A registry status a coordinator may set (erasure is `DELETE`).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettableStatus {
    /// Can be called.
    Active,
    /// Temporarily not called.
    Suspended,
    /// No longer serving.
    Retired,
}

impl From<SettableStatus> for VolunteerStatus {
    fn from(s: SettableStatus) -> VolunteerStatus {
        match s {
            SettableStatus::Active => VolunteerStatus::Active,
            SettableStatus::Suspended => VolunteerStatus::Suspended,
            SettableStatus::Retired => VolunteerStatus::Retired,
        }
    }
}

/// Body of `POST /v1/volunteers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVolunteer {
    /// Their name, as colleagues know it.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// E.164: `+`, then 8 to 15 digits.
    #[schema(example = "+8613800138000", pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub phone: String,
    /// Ids of the teams they serve in (in the token's scope).
    #[schema(min_items = 1)]
    pub teams: Vec<String>,
    /// Locale of their messages (`zh-CN` by default).
    #[serde(default)]
    pub locale: Option<String>,
    /// An https URL that receives their call-outs, instead of SMS.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Their qualifications.
    #[serde(default)]
    pub qualifications: Option<Vec<Qualification>>,
    /// Last day of their insurance.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub insurance_valid_until: Option<Date>,
    /// Their home township (in the token's scope).
    #[serde(default)]
    pub home_region: Option<String>,
    /// `active` by default.
    #[serde(default)]
    pub status: Option<SettableStatus>,
    /// Ignored: the id is assigned.
    #[serde(default)]
    #[schema(read_only)]
    pub id: Option<String>,
}

/// Body of `PATCH /v1/volunteers/{id}`: only the fields it names change; `null` clears an
/// optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerPatch {
    /// Their name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// E.164 phone.
    #[serde(default)]
    #[schema(pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub phone: Option<String>,
    /// Ids of their teams (the whole list).
    #[serde(default)]
    #[schema(min_items = 1)]
    pub teams: Option<Vec<String>>,
    /// Locale; `null` sets the default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    /// Webhook; `null` or `""` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub webhook: Option<Option<String>>,
    /// Qualifications (the whole list).
    #[serde(default)]
    pub qualifications: Option<Vec<Qualification>>,
    /// Last day of their insurance; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    pub insurance_valid_until: Option<Option<Date>>,
    /// Home township; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub home_region: Option<Option<String>>,
    /// Suspend, retire or reactivate.
    #[serde(default)]
    pub status: Option<SettableStatus>,
    /// Ignored: the id is the path's.
    #[serde(default)]
    #[schema(read_only)]
    pub id: Option<String>,
}

impl From<NewVolunteer> for VolunteerPatch {
    fn from(n: NewVolunteer) -> VolunteerPatch {
        VolunteerPatch {
            name: Some(n.name),
            phone: Some(n.phone),
            teams: Some(n.teams),
            locale: n.locale.map(Some),
            webhook: n.webhook.map(Some),
            qualifications: n.qualifications,
            insurance_valid_until: n.insurance_valid_until.map(Some),
            home_region: n.home_region.map(Some),
            status: n.status,
            id: n.id,
        }
    }
}

impl Check for NewVolunteer {
    fn check(&self, errs: &mut Vec<FieldError>) {
        text_field(errs, "name", &self.name, Lines::One, 1, 100);
        check_phone(errs, &self.phone);
        check_lists(errs, Some(&self.teams), self.qualifications.as_deref());
    }
}

impl Check for VolunteerPatch {
    fn check(&self, errs: &mut Vec<FieldError>) {
        if let Some(n) = &self.name {
            text_field(errs, "name", n, Lines::One, 1, 100);
        }
        if let Some(p) = &self.phone {
            check_phone(errs, p);
        }
        check_lists(errs, self.teams.as_deref(), self.qualifications.as_deref());
    }
}

/// A phone number must be E.164 before anything is looked up by it.
fn check_phone(errs: &mut Vec<FieldError>, p: &str) {
    if let Err(e) = Phone::parse(p.trim()) {
        errs.push(FieldError::new("phone", e));
    }
}

fn check_lists(errs: &mut Vec<FieldError>, teams: Option<&[String]>, qs: Option<&[Qualification]>) {
    if teams.is_some_and(<[String]>::is_empty) {
        errs.push(FieldError::new(
            "teams",
            "must be a non-empty list of team ids",
        ));
    }
    for (i, q) in qs.unwrap_or_default().iter().enumerate() {
        let code = q.code.trim();
        if code.is_empty() || code.contains([':', ';']) || text::check(code, Lines::One).is_err() {
            errs.push(FieldError::new(
                format!("qualifications[{i}].code"),
                "must be a non-empty code without : ; or control characters",
            ));
        }
    }
}

/// Applies a checked body over `base`: what needs the deployment (phone syntax, locales,
/// regions, teams and the caller's scope) is checked here, every problem named.
pub(super) async fn apply(
    st: &AppState,
    caller: &Caller,
    b: VolunteerPatch,
    base: Volunteer,
) -> Result<Volunteer, ApiError> {
    let mut errs = Vec::new();
    let mut v = base;
    if let Some(n) = b.name {
        v.name = n.trim().to_string();
    }
    if let Some(p) = b.phone {
        match Phone::parse(p.trim()) {
            Ok(p) => v.phone = p,
            Err(e) => errs.push(FieldError::new("phone", e)),
        }
    }
    if let Some(l) = b.locale {
        let l = l.unwrap_or_else(|| crate::domain::template::DEFAULT_LOCALE.into());
        if st.ctx.seed.templates.locale(&l).is_some() {
            v.locale = l;
        } else {
            errs.push(FieldError::new(
                "locale",
                format!("no templates for locale `{l}`"),
            ));
        }
    }
    if let Some(w) = b.webhook {
        match w.map(|w| w.trim().to_string()).filter(|w| !w.is_empty()) {
            Some(w) => match check_webhook(&w) {
                Ok(()) => v.webhook = Some(w),
                Err(e) => errs.push(FieldError::new("webhook", e)),
            },
            None => v.webhook = None,
        }
    }
    if let Some(i) = b.insurance_valid_until {
        v.insurance_valid_until = i;
    }
    if let Some(h) = b.home_region {
        v.home_region = h.and_then(|h| home_region(st, caller, h.trim(), &mut errs));
    }
    if let Some(s) = b.status {
        v.status = s.into();
    }
    if let Some(qs) = b.qualifications {
        v.qualifications = qs
            .into_iter()
            .map(|q| (q.code.trim().to_string(), q.valid_until))
            .collect();
    }
    if let Some(ids) = b.teams {
        let found = st.ctx.store.teams_by_id(&ids).await?;
        for (id, t) in ids.iter().zip(found) {
            match t {
                None => errs.push(FieldError::new("teams", format!("unknown team `{id}`"))),
                Some(t) => caller.require_scope(st, &t.region)?,
            }
        }
        let mut dedup = ids;
        dedup.dedup();
        v.teams = dedup;
    }
    if errs.is_empty() {
        Ok(v)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

/// A home township this caller may give, or why not.
fn home_region(
    st: &AppState,
    caller: &Caller,
    h: &str,
    errs: &mut Vec<FieldError>,
) -> Option<RegionCode> {
    match st.ctx.seed.regions.lookup(h) {
        Some(r) if !caller.sees(st, r.code.as_str()) => {
            errs.push(FieldError::new(
                "home_region",
                format!(
                    "region {} is outside this token's scope {}",
                    r.code, caller.scope
                ),
            ));
            None
        }
        Some(r) => Some(r.code.clone()),
        None => {
            errs.push(FieldError::new(
                "home_region",
                format!("unknown region `{h}`"),
            ));
            None
        }
    }
}
