//! `/healthz` (the process is up), `/readyz` (Redis answers), `/metrics` (Prometheus text).

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{status: ok}`", body = Object)))]
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Readiness: 200 when Redis answers a PING within a second, 503 otherwise. The answer also
/// says the node's role and its connected replicas beside `redis.wait_replicas`
/// (`replicas_ok: false`: changes are made but answered 503 until a replica is back).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`{status: ready, redis: ok}`", body = Object),
        (status = 503, description = "`{status: not ready, redis}`", content_type = "application/json", body = Object),
    ))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    if st.ctx.store.is_cluster() {
        return cluster_ready(&st).await;
    }
    match st.ctx.store.ping().await {
        Ok(()) => {
            let wanted = st.ctx.config.redis.wait_replicas;
            let (role, replicas) = st.ctx.store.replication().await.unwrap_or_default();
            axum::Json(json!({
                "status": "ready",
                "redis": "ok",
                "role": role,
                "replicas": replicas,
                "wait_replicas": wanted,
                "replicas_ok": replicas >= wanted,
            }))
            .into_response()
        }
        Err(e) => not_ready(json!({"status": "not ready", "redis": e.to_string()})),
    }
}

/// Readiness on a Cluster: ready when the cluster says `ok` and serves all 16384 slots; the
/// answer names each master with its replica count beside `redis.wait_replicas`.
async fn cluster_ready(st: &AppState) -> Response {
    let wanted = st.ctx.config.redis.wait_replicas;
    match st.ctx.store.cluster_state().await {
        Ok(c) => {
            let ready = c.state == "ok" && c.slots_ok == 16384;
            let body = json!({
                "status": if ready { "ready" } else { "not ready" },
                "redis": "cluster",
                "cluster_state": c.state,
                "slots_ok": c.slots_ok,
                "slots_failing": c.slots_fail,
                "known_nodes": c.known_nodes,
                "masters": c.masters.iter().map(|(addr, replicas)| json!({
                    "addr": addr, "replicas": replicas,
                })).collect::<Vec<_>>(),
                "wait_replicas": wanted,
                "replicas_ok": !c.masters.is_empty() && c.masters.iter().all(|(_, r)| *r >= wanted),
            });
            if ready {
                axum::Json(body).into_response()
            } else {
                not_ready(body)
            }
        }
        Err(e) => not_ready(json!({"status": "not ready", "redis": e.to_string()})),
    }
}

/// A 503 with `Retry-After: 1` and `body`.
fn not_ready(body: serde_json::Value) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(body),
    )
        .into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}
