//! `/healthz` (the process is up), `/readyz` (Redis answers), `/metrics` (Prometheus text).

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `GET /healthz`
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when Redis answers a PING within a second, 503 otherwise.
pub async fn readyz(State(st): State<AppState>) -> Response {
    match st.ctx.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready", "redis": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            axum::Json(json!({"status": "not ready", "redis": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /metrics`
pub async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}
