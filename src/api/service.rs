//! Service records (服务记录): what a volunteer served, written when someone who accepted is
//! stood down or withdraws after arriving. `GET /v1/volunteers/{id}/service-records` (records
//! and totals), `GET /v1/service-records` (a scope and period; `?format=csv` with Chinese
//! headers, UTF-8 with a BOM or `&encoding=gbk` for Excel), and a coordinator's correction
//! with a reason (`PATCH /v1/service-records/{id}`, audited).

use super::AppState;
use super::auth::{Caller, Coordinator};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, Query, text_field};
use crate::domain::text::Lines;
use crate::store::service::{Correction, Stored};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// One service record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceRecordView {
    /// `INCIDENT.N`.
    pub id: String,
    pub volunteer_id: String,
    /// The volunteer's name (absent once erased: the record stays, anonymised).
    pub volunteer_name: Option<String>,
    pub incident_id: String,
    /// The incident's title, kind and region (code and name).
    pub title: String,
    pub kind: String,
    pub region: String,
    pub region_name: String,
    /// `live`, or `drill` (training hours, counted apart).
    pub mode: String,
    pub requirement: String,
    pub team_id: String,
    pub team_name: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub accepted_at: Option<String>,
    #[schema(format = DateTime)]
    pub arrived_at: Option<String>,
    /// When the counted service began and ended.
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub ended_at: String,
    /// `stood_down` or `withdrawn`.
    pub ended: String,
    /// `arrival` (checked in on site) or `acceptance` (nobody checked them in).
    pub basis: String,
    /// The hours that count (a correction's when there is one).
    pub hours: f64,
    /// The hours as recorded.
    pub recorded_hours: f64,
    /// A coordinator's correction.
    pub correction: Option<Correction>,
    /// The recording unit: the command centre of the incident's region.
    pub recorded_by: String,
}

/// Hours by kind of service.
#[derive(Debug, Clone, Serialize, ToSchema, Default, PartialEq)]
pub struct Totals {
    pub records: u32,
    /// Live service.
    pub live_hours: f64,
    /// Drills: training hours.
    pub training_hours: f64,
}

/// A volunteer's records and totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolunteerService {
    pub records: Vec<ServiceRecordView>,
    pub totals: Totals,
}

/// Records of a scope and period.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceList {
    pub records: Vec<ServiceRecordView>,
    pub totals: Totals,
}

/// The command centre of a region: the unit that records and certifies.
pub fn unit_of(st: &AppState, region: &str) -> String {
    format!("{}应急指挥中心", st.ctx.seed.regions.name_of(region))
}

fn at(ms: &str) -> Option<String> {
    Stored::ms(ms).map(crate::clock::rfc3339)
}

/// Records as the API shows them, with names and team names.
pub async fn views(st: &AppState, recs: Vec<Stored>) -> Result<Vec<ServiceRecordView>, ApiError> {
    let mut vids: Vec<String> = recs.iter().map(|r| r.volunteer.clone()).collect();
    vids.sort();
    vids.dedup();
    let names = st.ctx.store.volunteer_names(&vids).await?;
    let mut tids: Vec<String> = recs
        .iter()
        .map(|r| r.team.clone())
        .filter(|t| !t.is_empty())
        .collect();
    tids.sort();
    tids.dedup();
    let teams = super::teams::names(st, &tids).await?;
    Ok(recs
        .into_iter()
        .map(|r| ServiceRecordView {
            volunteer_name: names.get(&r.volunteer).cloned(),
            hours: r.hours(),
            recorded_hours: r.recorded_hours(),
            region_name: st.ctx.seed.regions.name_of(&r.region),
            recorded_by: unit_of(st, &r.region),
            team_name: teams.get(&r.team).map(|t| t.0.clone()).unwrap_or_default(),
            accepted_at: at(&r.accepted_at),
            arrived_at: at(&r.arrived_at),
            start: at(&r.start).unwrap_or_default(),
            ended_at: at(&r.ended_at).unwrap_or_default(),
            id: r.id,
            volunteer_id: r.volunteer,
            incident_id: r.incident,
            title: r.title,
            kind: r.kind,
            region: r.region,
            mode: r.mode,
            requirement: r.requirement,
            team_id: r.team,
            ended: r.ended,
            basis: r.basis,
            correction: r.correction,
        })
        .collect())
}

/// Totals of `records`.
pub fn totals(records: &[ServiceRecordView]) -> Totals {
    let mut t = Totals::default();
    for r in records {
        t.records += 1;
        if r.mode == "drill" {
            t.training_hours += r.hours;
        } else {
            t.live_hours += r.hours;
        }
    }
    t.live_hours = (t.live_hours * 100.0).round() / 100.0;
    t.training_hours = (t.training_hours * 100.0).round() / 100.0;
    t
}

/// A volunteer's service records and totals (coordinator, in scope).
#[utoipa::path(get, path = "/v1/volunteers/{id}/service-records", operation_id = "volunteer_service_records", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer")),
    responses(
        (status = 200, description = "records, oldest first, and totals", body = VolunteerService),
        (status = 403, description = "not a coordinator"),
        (status = 404, description = "no such volunteer in this token's scope"),
    ))]
pub async fn of_volunteer(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
) -> Result<Json<VolunteerService>, ApiError> {
    Ok(Json(volunteer_service(&st, &caller, &id).await?))
}

/// A volunteer's records and totals for `caller` (the API's and the certificate's).
pub async fn volunteer_service(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<VolunteerService, ApiError> {
    super::volunteers::load_visible(st, caller, id).await?;
    let records = views(st, st.ctx.store.service_records_of(id).await?).await?;
    Ok(VolunteerService {
        totals: totals(&records),
        records,
    })
}

/// Filters of `GET /v1/service-records`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    /// From this time (RFC 3339; the beginning when absent).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Until this time (RFC 3339; now when absent).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only this team.
    pub team: Option<String>,
    /// `csv` for Excel; JSON otherwise.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// The CSV's encoding: `utf-8` (with a BOM, the default) or `gbk`.
    #[param(pattern = "^(utf-8|gbk)$")]
    pub encoding: Option<String>,
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref() {
        None => Ok(None),
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map(|t| Some(t.as_millisecond()))
            .map_err(|_| ApiError::invalid(name, "must be an RFC 3339 time")),
    }
}

/// Service records of the scope that ended in a period (coordinator); `?format=csv`.
#[utoipa::path(get, path = "/v1/service-records", operation_id = "list_service_records", tag = "records", security(("bearer" = [])),
    params(ServiceQuery),
    responses(
        (status = 200, description = "records and totals; with `?format=csv`, a CSV with Chinese headers",
            content((ServiceList = "application/json"), (String = "text/csv"))),
        (status = 403, description = "not a coordinator"),
        (status = 422, description = "a filter is wrong"),
    ))]
pub async fn list(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Query(q): Query<ServiceQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(o) => return Err(ApiError::invalid("format", format!("unknown format `{o}`"))),
    };
    let gbk = match q.encoding.as_deref() {
        None | Some("utf-8") => false,
        Some("gbk") => true,
        Some(o) => {
            return Err(ApiError::invalid(
                "encoding",
                format!("unknown encoding `{o}`; use utf-8 or gbk"),
            ));
        }
    };
    let from = time_param("from", &q.from)?.unwrap_or(0);
    let to = time_param("to", &q.to)?.unwrap_or_else(|| st.ctx.clock.now_ms());
    let recs = st.ctx.store.service_records_between(from, to).await?;
    let mut records = views(&st, recs).await?;
    let tids: Vec<String> = records.iter().map(|r| r.team_id.clone()).collect();
    let team_regions: HashMap<String, String> = st
        .ctx
        .store
        .teams_by_id(&tids)
        .await?
        .into_iter()
        .flatten()
        .map(|t| (t.id, t.region.to_string()))
        .collect();
    records.retain(|r| {
        let region = team_regions.get(&r.team_id).unwrap_or(&r.region);
        caller.sees(&st, region)
            && q.team
                .as_deref()
                .is_none_or(|t| t.is_empty() || t == r.team_id)
    });
    if !csv {
        return Ok(Json(ServiceList {
            totals: totals(&records),
            records,
        })
        .into_response());
    }
    Ok(csv_response(&records, gbk, "service-records.csv"))
}

/// Records as a CSV for Excel: Chinese headers, UTF-8 with a BOM or GBK.
pub fn csv_response(records: &[ServiceRecordView], gbk: bool, file: &str) -> Response {
    let mut w = csv::Writer::from_writer(vec![]);
    let _ = w.write_record([
        "记录编号",
        "志愿者编号",
        "志愿者姓名",
        "服务项目",
        "服务类型",
        "服务地点",
        "所属队伍",
        "服务开始时间",
        "服务结束时间",
        "服务时长（小时）",
        "计时依据",
        "记录单位",
        "备注",
    ]);
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: &str| {
        t.parse::<jiff::Timestamp>()
            .map(|t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let safe = |s: &str| {
        if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        }
    };
    for r in records {
        let _ = w.write_record([
            r.id.clone(),
            r.volunteer_id.clone(),
            safe(r.volunteer_name.as_deref().unwrap_or("（已注销）")),
            safe(&r.title),
            if r.mode == "drill" {
                "演练培训"
            } else {
                "应急服务"
            }
            .to_string(),
            r.region_name.clone(),
            safe(&r.team_name),
            local(&r.start),
            local(&r.ended_at),
            format!("{:.2}", r.hours),
            if r.basis == "arrival" {
                "到达签到"
            } else {
                "接受呼叫（未签到）"
            }
            .to_string(),
            r.recorded_by.clone(),
            r.correction
                .as_ref()
                .map(|c| {
                    safe(&format!(
                        "已更正（原 {:.2} 小时）：{}",
                        r.recorded_hours, c.reason
                    ))
                })
                .unwrap_or_default(),
        ]);
    }
    let text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    let (body, charset) = if gbk {
        (encoding_rs::GBK.encode(&text).0.into_owned(), "gbk")
    } else {
        let mut b = "\u{feff}".as_bytes().to_vec();
        b.extend_from_slice(text.as_bytes());
        (b, "utf-8")
    };
    (
        [
            (header::CONTENT_TYPE, format!("text/csv; charset={charset}")),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Body of `PATCH /v1/service-records/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCorrection {
    /// The hours that count.
    #[schema(minimum = 0, maximum = 720)]
    pub hours: f64,
    /// Why (kept with the record and in the audit log).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

impl Check for ServiceCorrection {
    fn check(&self, errs: &mut Vec<FieldError>) {
        if !(0.0..=720.0).contains(&self.hours) || self.hours.is_nan() {
            errs.push(FieldError::new("hours", "must be 0 to 720"));
        }
        text_field(errs, "reason", &self.reason, Lines::Many, 1, 500);
    }
}

/// Correct a record's hours, with a reason (coordinator, in scope; audited).
#[utoipa::path(patch, path = "/v1/service-records/{id}", operation_id = "correct_service_record", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "the record (`INCIDENT.N`)")),
    request_body = ServiceCorrection,
    responses(
        (status = 200, description = "the record, corrected", body = ServiceRecordView),
        (status = 403, description = "not a coordinator"),
        (status = 404, description = "no such record in this token's scope"),
    ))]
pub async fn correct(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<ServiceCorrection>,
) -> Result<Json<ServiceRecordView>, ApiError> {
    let not_found =
        || ApiError::NotFound(format!("no service record `{id}` in this token's scope"));
    let rec = st
        .ctx
        .store
        .service_record(&id)
        .await?
        .ok_or_else(not_found)?;
    if !caller.sees(&st, &rec.region) {
        return Err(not_found());
    }
    let now = st.ctx.clock.now_ms();
    let c = Correction {
        hours: (b.hours * 100.0).round() / 100.0,
        reason: b.reason.trim().to_string(),
        by: caller.name.clone(),
        at: now,
    };
    let mut audit = caller.audit(now, "service.correct", &id, &rec.region);
    audit.detail = format!(
        "volunteer {}: {:.2} → {:.2} hours ({})",
        rec.volunteer,
        rec.hours(),
        c.hours,
        c.reason
    );
    st.ctx.store.service_correct(&id, &c, &audit).await?;
    let rec = st
        .ctx
        .store
        .service_record(&id)
        .await?
        .ok_or_else(not_found)?;
    views(&st, vec![rec])
        .await?
        .pop()
        .map(Json)
        .ok_or_else(not_found)
}
