//! `GET /v1/audit`: the audit log, newest first — every command action, registry change,
//! sign-in and refusal, with who, what, from where and how it ended. Admins read every entry;
//! other roles the entries of their scope. `?format=csv` for a spreadsheet.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::Query;
use crate::domain::access::Role;
use crate::domain::audit::id_cmp;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most entries one answer holds.
const MAX_LIMIT: usize = 5000;

/// One audit entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Its id in its chain (a stream id: milliseconds and a sequence).
    pub id: String,
    /// The chain it belongs to.
    pub chain: String,
    /// Sealed: its HMAC is in the chain (a few hundred milliseconds after it was written).
    pub sealed: bool,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
    /// Who: the token's (or CAP sender's) name, role and scope.
    pub actor: String,
    pub role: String,
    pub scope: String,
    /// What: `incident.raise`, `incident.upgrade`, `incident.stand_down`, `drill.schedule`,
    /// `drill.cancel`, `cap.alert`, `cap.confirm`, `cap.reject`, `volunteer.create`,
    /// `volunteer.update`, `volunteer.erase`, `volunteer.import`, `team.create`, `team.update`,
    /// `team.delete`, `roster.put`, `override.add`, `override.delete`, `session.sign_in`,
    /// `session.sign_out`, `auth.refused`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The region of the target.
    pub region: String,
    /// The request's id (`x-request-id`) and the client's address.
    pub request: String,
    pub addr: String,
    /// `ok`, or why not.
    pub outcome: String,
    /// More, in words; for registry changes the fields before → after, personal ones masked.
    pub detail: String,
}

/// The audit log's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditView>,
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only this action, or actions starting with it (`incident.` for every incident action).
    pub action: Option<String>,
    /// Only this actor (a token's name).
    pub actor: Option<String>,
    /// At most this many (default 500, at most 5000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
    /// `csv` for a spreadsheet; JSON otherwise.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// The entries `caller` may read that pass `q`, newest first.
pub async fn entries(
    st: &AppState,
    caller: &Caller,
    q: &AuditQuery,
) -> Result<Vec<AuditView>, ApiError> {
    // Read exactly as the document says: an empty `since` is not a time.
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<jiff::Timestamp>()
                .map_err(|_| ApiError::invalid("since", "must be an RFC 3339 time"))?
                .as_millisecond(),
        ),
    };
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let store = &st.ctx.store;
    let mut out = Vec::new();
    for chain in store.keys.audit_chains() {
        let head: Option<String> = store.audit_chain_head(&chain).await?.map(|h| h.last_id);
        // Readers filter, so read more than the limit from each chain.
        for e in store
            .audit_recent(&chain, limit.saturating_mul(4).min(20_000))
            .await?
        {
            let f = |k: &str| e.fields.get(k).cloned().unwrap_or_default();
            let at: i64 = f("at").parse().unwrap_or(0);
            if since.is_some_and(|s| at < s) {
                continue;
            }
            if let Some(a) = q.action.as_deref().filter(|a| !a.is_empty())
                && !f("action").starts_with(a)
            {
                continue;
            }
            if let Some(a) = q.actor.as_deref().filter(|a| !a.is_empty())
                && f("actor") != a
            {
                continue;
            }
            let region = f("region");
            let visible =
                caller.role == Role::Admin || (!region.is_empty() && caller.sees(st, &region));
            if !visible {
                continue;
            }
            out.push(AuditView {
                sealed: head
                    .as_deref()
                    .is_some_and(|h| id_cmp(&e.id, h) != std::cmp::Ordering::Greater),
                chain: chain.clone(),
                at: crate::clock::rfc3339(at),
                actor: f("actor"),
                role: f("role"),
                scope: f("scope"),
                action: f("action"),
                target: f("target"),
                region,
                request: f("request"),
                addr: f("addr"),
                outcome: f("outcome"),
                detail: f("detail"),
                id: e.id,
            });
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| id_cmp(&b.id, &a.id)));
    out.truncate(limit);
    Ok(out)
}

/// The audit log, newest first (admins: everything; others: their scope).
#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "entries, newest first; with `?format=csv`, as CSV",
            content((AuditList = "application/json"), (String = "text/csv"))),
        (status = 422, description = "a filter is wrong"),
    ))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown format `{other}`; use json or csv"),
            ));
        }
    };
    let es = entries(&st, &caller, &q).await?;
    if !csv {
        return Ok(axum::Json(AuditList { entries: es }).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        to_csv(&es),
    )
        .into_response())
}

/// Entries as CSV (a cell a spreadsheet would run as a formula is quoted as text).
pub fn to_csv(es: &[AuditView]) -> String {
    let mut w = csv::Writer::from_writer(vec![]);
    let _ = w.write_record([
        "at", "actor", "role", "scope", "action", "target", "region", "outcome", "detail",
        "request", "addr", "chain", "id", "sealed",
    ]);
    let safe = |s: &str| {
        if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        }
    };
    for e in es {
        let _ = w.write_record([
            e.at.clone(),
            safe(&e.actor),
            e.role.clone(),
            e.scope.clone(),
            e.action.clone(),
            safe(&e.target),
            e.region.clone(),
            safe(&e.outcome),
            safe(&e.detail),
            e.request.clone(),
            e.addr.clone(),
            e.chain.clone(),
            e.id.clone(),
            if e.sealed { "yes" } else { "no" }.to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Every refused request (401, 403) is audited: the first from an address in a minute is an
/// entry `auth.refused` naming the route and who the token was (if any), the rest are counted
/// ([`crate::store::Store::audit_refusal`]). Refusals are read by admins only.
pub async fn refusals(
    State(st): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let meta = req
        .extensions()
        .get::<super::auth::RequestMeta>()
        .cloned()
        .unwrap_or_default();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    // Only the header is kept: the token is looked up after a refusal, not on every request.
    let auth = req.headers().get(header::AUTHORIZATION).cloned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if matches!(status, 401 | 403) {
        let (actor, role, scope) = auth
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .and_then(|t| st.tokens.get(&super::auth::token_hash(t.trim())))
            .map(|d| {
                (
                    d.name.clone(),
                    d.role.as_str().to_string(),
                    d.scope.to_string(),
                )
            })
            .unwrap_or_else(|| ("unknown".into(), String::new(), String::new()));
        let e = crate::store::audit::AuditEntry {
            at: st.ctx.clock.now_ms(),
            actor,
            role,
            scope,
            action: "auth.refused".into(),
            target: format!("{method} {route}"),
            region: String::new(),
            request: meta.id,
            addr: meta.addr.clone(),
            detail: format!("{status}"),
        };
        metrics::counter!("muster_auth_refused_total", "status" => status.to_string()).increment(1);
        if let Err(err) = st.ctx.store.audit_refusal(&meta.addr, &e).await {
            tracing::warn!(error = %err, "a refusal could not be audited");
        }
    }
    resp
}
