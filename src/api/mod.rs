//! The HTTP API (axum). One file per resource, each a set of handlers; [`router`] puts them
//! together so tests can drive it without a socket.
//!
//! - [`incidents`]: raise, list, read, callouts, stand down; [`candidates`]: who was called
//!   and who was left out, with the reason; [`level`]: upgrading an incident.
//! - [`volunteers`]: the registry and bulk import; [`availability`]: unavailability and
//!   schedules; [`teams`]: teams; [`rosters`]: rosters and
//!   overrides; [`on_call`]: who is on call, and the iCal feeds.
//! - [`events`]: SSE of an incident.
//! - [`acks`]: volunteers' answers by token; [`page`]: the mobile ack page.
//! - [`health`]: liveness, readiness, metrics; [`openapi`]: the OpenAPI document.
//! - [`auth`]: bearer tokens; [`error`]: problem+json, for every error answer;
//!   [`extract`]: query and body extractors with problem+json rejections; [`listener`]:
//!   connections whose HTTP-level error answers are problem+json too.

pub mod acks;
pub mod auth;
pub mod availability;
pub mod candidates;
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
pub mod rosters;
pub mod sms;
pub mod teams;
pub mod volunteers;

use crate::engine::Ctx;
use crate::seed::TokenDef;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

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

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/incidents", post(incidents::raise).get(incidents::list))
        .route("/v1/incidents/{id}", get(incidents::get))
        .route("/v1/incidents/{id}/callouts", get(incidents::callouts))
        .route("/v1/incidents/{id}/stand-down", post(incidents::stand_down))
        .route("/v1/incidents/{id}/level", post(level::upgrade))
        .route("/v1/incidents/{id}/events", get(events::sse))
        .route("/v1/incidents/{id}/candidates", get(candidates::candidates))
        .route("/v1/volunteers", post(volunteers::create))
        .route(
            "/v1/volunteers:import",
            post(volunteers::import).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route(
            "/v1/volunteers/{id}",
            get(volunteers::get)
                .patch(volunteers::update)
                .delete(volunteers::erase),
        )
        .route("/v1/volunteers/{id}/schedule", get(availability::schedule))
        .route(
            "/v1/volunteers/{id}/unavailability",
            post(availability::unavailable),
        )
        .route("/v1/teams", get(teams::list).post(teams::create))
        .route(
            "/v1/teams/{id}",
            get(teams::get).patch(teams::update).delete(teams::delete),
        )
        .route(
            "/v1/teams/{id}/roster",
            get(rosters::roster).put(rosters::put_roster),
        )
        .route("/v1/teams/{id}/overrides", post(rosters::add_override))
        .route(
            "/v1/teams/{id}/overrides/{oid}",
            axum::routing::delete(rosters::delete_override),
        )
        .route("/v1/teams/{id}/on-call", get(on_call::on_call))
        .route("/v1/on-call", get(on_call::on_call_all))
        .route("/ical/{kind}/{id}/{file}", get(on_call::feed))
        .route("/v1/sms/inbound/{gateway}", post(sms::inbound))
        .route("/v1/sms/inbound/{gateway}/{key}", post(sms::inbound))
        .route("/v1/sms/status/{gateway}", post(sms::status))
        .route("/v1/sms/status/{gateway}/{key}", post(sms::status))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .merge(
            // What a volunteer opens from a call-out: the token in its URL is the credential.
            Router::new()
                .route("/v1/acks/{token}/unavailable", post(acks::unavailable))
                .route("/v1/acks/{token}", post(acks::ack))
                .route("/a/{token}", get(page::show).post(page::answer))
                .route_layer(middleware::from_fn(private)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn(error::problem_everywhere))
        .layer(middleware::from_fn(observe))
        .with_state(state)
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
async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("muster_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("muster_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    resp
}
