//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated from the routes
//! ([`super::routes`], each handler's `#[utoipa::path]`) and the Rust types of its bodies
//! (`ToSchema`) — never written by hand.
//!
//! What every route shares is said once, in [`complete`], from the shape of the operation, so
//! it cannot drift from the mechanism that answers it: every error is problem+json; a bearer
//! route may answer 401; a route with a JSON body may answer 400 (not JSON), 413, 415 and 422;
//! a query string may answer 400; anything that reads Redis may answer 503.

use super::AppState;
use super::error::Problem;
use crate::seed::Seed;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "muster",
        description = "Emergency volunteer mobilization dispatcher. Every 4xx and 5xx answer is \
                       application/problem+json (RFC 9457)."
    ),
    components(schemas(Problem)),
    tags(
        (name = "incidents", description = "Raising, following and standing down incidents"),
        (name = "drills", description = "Scheduled drills on simulated or real channels"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "records", description = "Service records (服务记录) and certificates"),
        (name = "cap", description = "OASIS CAP 1.2 alerts in, and the proposals they wait as"),
        (name = "volunteers", description = "The registry"),
        (name = "teams", description = "Teams, rosters and who is on call"),
        (name = "volunteer links", description = "What a volunteer opens from a call-out; the token in the URL is the credential"),
        (name = "gateways", description = "Callbacks of SMS gateways"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct Doc;

/// The document as the types and routes say it, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Doc::openapi();
        doc.merge(super::routes().into_openapi());
        let mut v = serde_json::to_value(&doc).expect("an OpenAPI document serialises");
        complete(&mut v);
        v
    })
}

/// The document of this deployment: where a field takes one of the deployment's own names
/// (an incident kind its plans cover, a region of its tree, a team kind, a locale with
/// templates), the schema lists them, so a client knows the choices before it is told 422.
pub fn for_deployment(seed: &Seed) -> Value {
    let mut doc = document().clone();
    let mut kinds: Vec<&str> = seed
        .plans
        .iter()
        .flat_map(|p| p.kinds.iter().map(String::as_str))
        .collect();
    let mut regions: Vec<&str> = seed.regions.iter().map(|r| r.code.as_str()).collect();
    let mut locales: Vec<&str> = seed.templates.locales.keys().map(String::as_str).collect();
    let mut team_kinds: Vec<&str> = seed.team_kinds.iter().map(String::as_str).collect();
    for list in [&mut kinds, &mut regions, &mut locales, &mut team_kinds] {
        list.sort_unstable();
        list.dedup();
    }
    let fields: [(&str, &str, &[&str]); 10] = [
        ("RaiseIncident", "kind", &kinds),
        ("RaiseIncident", "region", &regions),
        ("ScheduleDrill", "kind", &kinds),
        ("ScheduleDrill", "region", &regions),
        ("NewTeam", "kind", &team_kinds),
        ("NewTeam", "region", &regions),
        ("NewVolunteer", "home_region", &regions),
        ("VolunteerPatch", "home_region", &regions),
        ("NewVolunteer", "locale", &locales),
        ("VolunteerPatch", "locale", &locales),
    ];
    for (schema, field, values) in fields {
        let prop = &mut doc["components"]["schemas"][schema]["properties"][field];
        if !prop.is_object() {
            continue;
        }
        let mut choices: Vec<Value> = values.iter().map(|v| json!(v)).collect();
        if prop["type"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("null")))
        {
            choices.push(Value::Null);
        }
        prop["enum"] = Value::Array(choices);
        if let Some(p) = prop.as_object_mut() {
            p.remove("pattern");
        }
    }
    doc
}

/// Routes that never touch Redis (they cannot answer 503).
const WITHOUT_STORE: [&str; 3] = ["/healthz", "/metrics", "/openapi.json"];

/// Adds what every operation shares; see the module text.
pub fn complete(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http", "scheme": "bearer",
        "description": "A token from the deployment's configuration; its role and region scope decide what it may do"
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, op) in item.iter_mut() {
            let mut add: Vec<(&str, &str)> = Vec::new();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                add.push((
                    "401",
                    "no bearer token, or one this deployment does not know",
                ));
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                add.push((
                    "400",
                    "the body is not well-formed (not JSON, a key named twice, cut short)",
                ));
                add.push(("413", "the body is larger than this route accepts"));
                if content.contains_key("application/json") {
                    add.push(("415", "the body is not sent as application/json"));
                }
                add.push((
                    "422",
                    "a field is missing, unknown or invalid; `errors` names each",
                ));
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "query") {
                add.push(("400", "a query parameter is not of its type"));
            }
            if !WITHOUT_STORE.contains(&path.as_str()) {
                add.push((
                    "503",
                    "Redis is unreachable; nothing was changed, retry (Retry-After)",
                ));
            }
            let responses = op["responses"].as_object_mut();
            let Some(responses) = responses else { continue };
            for (code, why) in add {
                responses
                    .entry(code)
                    .or_insert_with(|| json!({ "description": why }));
            }
            for (code, resp) in responses.iter_mut() {
                let error = code.starts_with('4') || code.starts_with('5');
                if error && resp.get("content").is_none() {
                    resp["content"] = json!({"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}});
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn serve(State(st): State<AppState>) -> Response {
    let text = for_deployment(&st.ctx.seed).to_string();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
