//! `GET /v1/incidents/{id}/callouts`: an incident's callouts, a page at a time, with names
//! and phones masked as the caller's role requires.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::Query;
use super::incidents::visible;
use crate::domain::callout::CalloutState;
use crate::domain::incident::IncidentId;
use crate::domain::region::Tier;
use crate::domain::volunteer::{mask_name, mask_phone};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /v1/incidents/{id}/callouts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many to skip.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 4294967295_u64)]
    offset: Option<u32>,
    /// How many to answer (1 to 5000; 1000 by default).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

/// One callout: one volunteer called for one requirement.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalloutView {
    /// `INCIDENT.N`.
    pub id: String,
    /// The volunteer.
    pub volunteer_id: String,
    /// Masked for viewers.
    pub volunteer_name: String,
    /// Masked unless the role may see personal data.
    pub phone: String,
    /// The requirement it fills.
    pub requirement_id: String,
    /// The team they were called through (absent on callouts made before muster recorded it).
    pub team_id: Option<String>,
    /// The tier of the step that called.
    pub tier: Option<Tier>,
    /// The step that called (0 = first).
    pub step: u32,
    /// `webhook` or `sms:GATEWAY`.
    pub channel: String,
    /// Where it is.
    pub state: Option<CalloutState>,
    /// When it was made.
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// When a channel took it.
    #[schema(format = DateTime)]
    pub notified_at: Option<String>,
    /// When it was answered.
    #[schema(format = DateTime)]
    pub answered_at: Option<String>,
    /// When the volunteer checked in on site.
    #[schema(format = DateTime)]
    pub arrived_at: Option<String>,
    /// When they withdrew.
    #[schema(format = DateTime)]
    pub withdrawn_at: Option<String>,
    /// When standby became accepted.
    #[schema(format = DateTime)]
    pub promoted_at: Option<String>,
    /// When the stand-down closed it.
    #[schema(format = DateTime)]
    pub stood_down_at: Option<String>,
    /// The state it was in when the stand-down closed it.
    pub stood_down_from: Option<CalloutState>,
    /// Why no channel could deliver, if so.
    pub delivery_error: Option<String>,
    /// The SMS gateway's delivery report: `sent`, `delivered` or `undelivered`.
    pub sms_delivery: Option<String>,
    /// When that report came.
    #[schema(format = DateTime)]
    pub sms_delivery_at: Option<String>,
}

impl CalloutView {
    /// What the callout came to: its state, or, once the stand-down closed it, the state it
    /// was in then (what boards and reports count).
    pub fn outcome(&self) -> Option<CalloutState> {
        match self.state {
            Some(CalloutState::StoodDown) => self.stood_down_from.or(self.state),
            s => s,
        }
    }
}

/// A page of an incident's callouts.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalloutPage {
    /// The callouts, in the order they were made.
    pub callouts: Vec<CalloutView>,
    /// How many there are in all.
    pub total: u32,
    /// As asked.
    pub offset: u32,
    /// As asked.
    pub limit: u32,
}

/// An incident's callouts, in the order they were made, a page at a time.
#[utoipa::path(get, path = "/v1/incidents/{id}/callouts", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident"), PageQuery),
    responses(
        (status = 200, description = "a page of callouts", body = CalloutPage),
        (status = 404, description = "no such incident in this token's scope"),
        (status = 422, description = "`limit` outside 1 to 5000"),
    ))]
pub async fn callouts(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<CalloutPage>, ApiError> {
    let (iid, _) = visible(&st, &caller, &id).await?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 5000"));
    }
    page(&st, &caller, &iid, q.offset.unwrap_or(0), limit)
        .await
        .map(Json)
}

/// The callout fields the API's listing reads.
pub const LISTED: &[&str] = &[
    "v", "r", "tm", "tier", "step", "ch", "st", "ca", "na", "aa", "da", "ra", "wa", "pa", "sa",
    "was", "err", "dl", "dl_at",
];

/// The callout fields a board reads of every callout: what its counts, rows and sorting use.
pub const BOARD: &[&str] = &[
    "v", "r", "tm", "tier", "ch", "st", "was", "na", "aa", "da", "ra", "ca", "dl", "err",
];

/// A page of an incident's callouts as `caller` may see them (names and phones masked per
/// role): what the API answers and the command centre's board shows.
pub async fn page(
    st: &AppState,
    caller: &Caller,
    iid: &IncidentId,
    offset: u32,
    limit: u32,
) -> Result<CalloutPage, ApiError> {
    page_of(st, caller, iid, offset, limit, true, LISTED).await
}

/// [`page`] with only `fields` read ([`LISTED`], or [`BOARD`]: absent ones are `None`), names
/// and phones left empty unless `named` (a board of 10,000 callouts names only the rows it
/// shows: [`contacts`]).
pub async fn page_of(
    st: &AppState,
    caller: &Caller,
    iid: &IncidentId,
    offset: u32,
    limit: u32,
    named: bool,
    fields: &'static [&'static str],
) -> Result<CalloutPage, ApiError> {
    let total = st.ctx.store.callout_count(iid).await?;
    let first = offset.saturating_add(1);
    let last = (offset.saturating_add(limit)).min(total);
    let recs = st.ctx.store.callout_rows(iid, first, last, fields).await?;
    let contacts = if named {
        let vids: Vec<String> = recs.iter().map(|r| r.get("v").to_string()).collect();
        contacts(st, caller, &vids).await?
    } else {
        vec![(String::new(), String::new()); recs.len()]
    };
    let callouts = recs
        .into_iter()
        .zip(contacts)
        .map(|(mut r, (name, phone))| CalloutView {
            id: format!("{iid}.{}", r.n),
            volunteer_name: name,
            phone,
            tier: Tier::parse(r.get("tier")),
            step: r.get("step").parse::<u32>().unwrap_or(0),
            state: CalloutState::parse(r.get("st")),
            created_at: r.time("ca"),
            notified_at: r.time("na"),
            answered_at: r.time("aa").or_else(|| r.time("da")),
            arrived_at: r.time("ra"),
            withdrawn_at: r.time("wa"),
            promoted_at: r.time("pa"),
            stood_down_at: r.time("sa"),
            stood_down_from: CalloutState::parse(r.get("was")),
            sms_delivery_at: r.time("dl_at"),
            volunteer_id: r.take("v").unwrap_or_default(),
            requirement_id: r.take("r").unwrap_or_default(),
            team_id: r.take("tm"),
            channel: r.take("ch").unwrap_or_default(),
            delivery_error: r.take("err"),
            sms_delivery: r.take("dl"),
        })
        .collect();
    Ok(CalloutPage {
        callouts,
        total,
        offset,
        limit,
    })
}

/// Names and phones of volunteers, in order, as `caller` may see them: full for registry
/// staff; names but masked phones for commanders; both masked for viewers.
pub async fn contacts(
    st: &AppState,
    caller: &Caller,
    vids: &[String],
) -> Result<Vec<(String, String)>, ApiError> {
    let full = caller.role.may_see_personal_data();
    let names_ok = caller.role != crate::domain::access::Role::Viewer;
    Ok(st
        .ctx
        .store
        .volunteer_contacts(vids)
        .await?
        .into_iter()
        .map(|(name, phone)| {
            let name = name.unwrap_or_default();
            let phone = phone.unwrap_or_default();
            (
                if full || names_ok {
                    name
                } else {
                    mask_name(&name)
                },
                if full || phone.is_empty() {
                    phone
                } else {
                    mask_phone(&phone)
                },
            )
        })
        .collect())
}
