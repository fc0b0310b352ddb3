//! The HTTP API (axum). One file per resource, each a set of handlers; [`router`] puts them
//! together so tests can drive it without a socket.
//!
//! - [`incidents`]: raise, list, read, stand down; [`callouts`]: an incident's callouts; [`candidates`]: who was called
//!   and who was left out, with the reason; [`level`]: upgrading an incident.
//! - [`volunteers`]: the registry and bulk import, with [`volunteer_body`] the bodies that
//!   change it; [`availability`]: unavailability and
//!   schedules; [`teams`]: teams; [`rosters`]: rosters and
//!   overrides; [`on_call`]: who is on call, and the iCal feeds.
//! - [`events`]: SSE of an incident.
//! - [`acks`]: volunteers' answers by token; [`page`]: the mobile ack page.
//! - [`health`]: liveness, readiness, metrics; [`openapi`]: the OpenAPI document.
//! - [`auth`]: bearer tokens; [`error`]: problem+json, for every error answer;
//!   [`extract`]: query and body extractors with problem+json rejections; [`listener`]:
//!   connections whose HTTP-level error answers are problem+json too.

pub mod acks;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod callouts;
pub mod candidates;
pub mod cap;
pub mod cap_proposals;
pub mod drills;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod incidents;
pub mod level;
pub mod listener;
pub mod on_call;
pub mod openapi;
pub mod page;
pub mod report;
pub mod rosters;
pub mod service;
pub mod sms;
pub mod teams;
pub mod timeline;
pub mod volunteer_body;
pub mod volunteers;

use crate::engine::Ctx;
use crate::seed::TokenDef;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The engine context (store, seed, clock, config, signer).
    pub ctx: Arc<Ctx>,
    /// Configured tokens by SHA-256.
    pub tokens: Arc<HashMap<String, TokenDef>>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// Every documented route: the handlers with the `#[utoipa::path]` that describes them, so
/// the router and `/openapi.json` come from one list.
pub fn routes() -> OpenApiRouter<AppState> {
    let import = {
        let (schemas, paths, method) = routes!(volunteers::import);
        (
            schemas,
            paths,
            method.layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
    };
    OpenApiRouter::new()
        .routes(routes!(incidents::raise, incidents::list))
        .routes(routes!(incidents::get))
        .routes(routes!(callouts::callouts))
        .routes(routes!(timeline::timeline))
        .routes(routes!(report::get))
        .routes(routes!(incidents::stand_down))
        .routes(routes!(level::upgrade))
        .routes(routes!(drills::schedule, drills::list))
        .routes(routes!(drills::get))
        .routes(routes!(drills::cancel))
        .routes({
            let (schemas, paths, method) = routes!(cap::ingest);
            (
                schemas,
                paths,
                method.layer(DefaultBodyLimit::max(crate::domain::cap::MAX_BYTES)),
            )
        })
        .routes(routes!(audit::list))
        .routes(routes!(service::of_volunteer))
        .routes(routes!(service::list))
        .routes(routes!(service::correct))
        .routes(routes!(cap_proposals::proposals))
        .routes(routes!(cap_proposals::confirm))
        .routes(routes!(cap_proposals::reject))
        .routes(routes!(events::sse))
        .routes(routes!(candidates::candidates))
        .routes(routes!(volunteers::create))
        .routes(import)
        .routes(routes!(
            volunteers::get,
            volunteers::update,
            volunteers::erase
        ))
        .routes(routes!(availability::schedule))
        .routes(routes!(availability::unavailable))
        .routes(routes!(teams::list, teams::create))
        .routes(routes!(teams::get, teams::update, teams::delete))
        .routes(routes!(rosters::roster, rosters::put_roster))
        .routes(routes!(rosters::add_override))
        .routes(routes!(rosters::delete_override))
        .routes(routes!(on_call::on_call))
        .routes(routes!(on_call::on_call_all))
        .routes(routes!(on_call::feed))
        .routes(routes!(sms::inbound))
        .routes(routes!(sms::inbound_keyed))
        .routes(routes!(sms::status))
        .routes(routes!(sms::status_keyed))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::serve))
        .merge(
            // What a volunteer opens from a call-out: the token in its URL is the credential.
            OpenApiRouter::new()
                .routes(routes!(acks::unavailable))
                .routes(routes!(acks::ack))
                .routes(routes!(page::show, page::answer))
                .route_layer(middleware::from_fn(private)),
        )
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn(error::problem_everywhere))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            audit::refusals,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), replicated))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// `redis.wait_replicas`: a 2xx answer to a change (any method but GET and HEAD) is sent only
/// once that many replicas have the write (`WAIT`); otherwise a 503 says the change was made
/// but may not survive a failover — a retry with the same idempotency key is safe.
async fn replicated(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let n = st.ctx.config.redis.wait_replicas;
    let changes = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let resp = next.run(req).await;
    if n == 0 || !changes || !resp.status().is_success() {
        return resp;
    }
    let timeout = st.ctx.config.redis.wait_timeout_ms.min(450);
    let started = Instant::now();
    let got = st.ctx.store.wait_replicas(n, timeout).await;
    metrics::histogram!("muster_wait_replicas_seconds").record(started.elapsed().as_secs_f64());
    match got {
        Ok(k) if k >= n => resp,
        Ok(k) => {
            metrics::counter!("muster_wait_replicas_short_total").increment(1);
            tracing::warn!(
                wanted = n,
                got = k,
                "a change reached fewer replicas than redis.wait_replicas"
            );
            ApiError::NotReplicated(format!(
                "the change was made, but only {k} of {n} replicas confirmed it within {timeout} ms: \
                 it could be lost if the Redis master failed now; sending it again (with the same \
                 idempotency key) is safe"
            ))
            .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn not_found() -> Response {
    ApiError::NotFound("no such path; see /openapi.json".into()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Answers reached with a token in the URL are never stored by a cache, never leak their URL
/// to another site as a referrer, and cannot be framed (clickjacking an Accept button).
async fn private(req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    resp
}

/// Counts requests and times them by route template (never by raw path: tokens live there).
async fn observe(mut req: Request, next: Next) -> Response {
    // Every request gets an id (the client's `x-request-id` when it is a sane one), which the
    // audit log records and the answer carries.
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<listener::Peer>>()
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_default();
    req.extensions_mut().insert(auth::RequestMeta {
        id: id.clone(),
        addr,
    });
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let mut resp = next.run(req).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("muster_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("muster_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    resp
}
