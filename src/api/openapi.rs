//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API. Written by hand next to the
//! handlers; `tests/api.rs` checks that every routed path appears here.

use axum::Json;
use serde_json::{Value, json};

fn problem() -> Value {
    json!({"description": "problem+json", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok(schema: &str) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

fn token_param() -> Value {
    json!({"name": "token", "in": "path", "required": true, "schema": {"type": "string"}})
}

/// The document.
pub fn document() -> Value {
    let bearer = json!([{"bearer": []}]);
    json!({
      "openapi": "3.1.0",
      "info": {"title": "muster", "version": env!("CARGO_PKG_VERSION"),
               "description": "Emergency volunteer mobilization dispatcher. Every 4xx/5xx is application/problem+json."},
      "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
          "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}}}},
          "RaiseIncident": {"type": "object", "required": ["kind", "level", "region", "title"], "properties": {
            "kind": {"type": "string", "examples": ["flood"]},
            "level": {"type": "integer", "minimum": 1, "maximum": 4},
            "region": {"type": "string", "pattern": "^[0-9]{6}([0-9]{3})?$"},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "mode": {"type": "string", "enum": ["live", "drill"], "default": "live"},
            "location": {},
            "idempotency_key": {"type": "string", "maxLength": 200}}},
          "Requirement": {"type": "object", "properties": {
            "id": {"type": "string"}, "team_kind": {"type": "string"}, "qualification": {"type": ["string", "null"]},
            "needed": {"type": "integer"}, "accepted": {"type": "integer"}, "standby": {"type": "integer"},
            "declined": {"type": "integer"}, "pending": {"type": "integer"}, "silent": {"type": "integer"},
            "arrived": {"type": "integer"}, "withdrawn": {"type": "integer"}, "failed": {"type": "integer"},
            "stood_down": {"type": "integer"}, "called": {"type": "integer"},
            "step": {"type": "integer"}, "tier": {"type": "string", "enum": ["township", "county", "city"]}}},
          "Incident": {"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"}, "kind": {"type": "string"}, "level": {"type": "integer"},
            "region": {"type": "string"}, "title": {"type": "string"}, "mode": {"type": "string", "enum": ["live", "drill"]},
            "status": {"type": "string", "enum": ["mustering", "filled", "short", "stood_down", "closed"]},
            "plan_id": {"type": "string"}, "raised_at": {"type": "string", "format": "date-time"},
            "raised_by": {"type": "string"}, "location": {}, "filled_at": {"type": "string", "format": "date-time"},
            "stood_down_at": {"type": "string", "format": "date-time"},
            "requirements": {"type": "array", "items": {"$ref": "#/components/schemas/Requirement"}}}},
          "IncidentList": {"type": "object", "properties": {"incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}}}},
          "Callout": {"type": "object", "properties": {
            "id": {"type": "string"}, "volunteer_id": {"type": "string"}, "volunteer_name": {"type": "string"},
            "phone": {"type": "string", "description": "masked unless the role may see personal data"},
            "requirement_id": {"type": "string"}, "tier": {"type": "string"}, "step": {"type": "integer"},
            "channel": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "notified", "accepted", "standby", "declined", "silent", "withdrawn", "arrived", "stood_down", "failed"]},
            "created_at": {"type": "string"}, "notified_at": {"type": ["string", "null"]},
            "answered_at": {"type": ["string", "null"]}, "arrived_at": {"type": ["string", "null"]}}},
          "CalloutPage": {"type": "object", "properties": {
            "callouts": {"type": "array", "items": {"$ref": "#/components/schemas/Callout"}},
            "total": {"type": "integer"}, "offset": {"type": "integer"}, "limit": {"type": "integer"}}},
          "Ack": {"type": "object", "required": ["response"], "properties": {"response": {"type": "string", "enum": ["accept", "decline", "arrived", "withdraw"]}}},
          "AckResult": {"type": "object", "properties": {"callout_id": {"type": "string"}, "state": {"type": "string"}, "changed": {"type": "boolean"}}}
        }
      },
      "paths": {
        "/v1/incidents": {
          "post": {"summary": "Raise an incident (commander)", "security": bearer,
                   "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RaiseIncident"}}}},
                   "responses": {"201": ok("Incident"), "200": ok("Incident"), "400": problem(), "401": problem(), "403": problem(), "422": problem(), "503": problem()}},
          "get": {"summary": "Active incidents in scope", "security": bearer,
                  "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}, "description": "comma-separated statuses, or `all`"}],
                  "responses": {"200": ok("IncidentList"), "401": problem()}}},
        "/v1/incidents/{id}": {"get": {"summary": "An incident with its progress", "security": bearer, "parameters": [id_param()],
                  "responses": {"200": ok("Incident"), "401": problem(), "404": problem()}}},
        "/v1/incidents/{id}/callouts": {"get": {"summary": "Its callouts", "security": bearer,
                  "parameters": [id_param(), {"name": "offset", "in": "query", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 5000}}],
                  "responses": {"200": ok("CalloutPage"), "401": problem(), "404": problem()}}},
        "/v1/incidents/{id}/stand-down": {"post": {"summary": "Stand down (commander)", "security": bearer, "parameters": [id_param()],
                  "responses": {"200": ok("Incident"), "401": problem(), "403": problem(), "404": problem()}}},
        "/v1/incidents/{id}/events": {"get": {"summary": "Server-Sent Events of every change", "security": bearer, "parameters": [id_param()],
                  "responses": {"200": {"description": "text/event-stream: snapshot, then one event per change and progress events"}, "401": problem(), "404": problem()}}},
        "/v1/acks/{token}": {"post": {"summary": "A volunteer's answer; the token is the credential", "parameters": [token_param(),
                  {"name": "response", "in": "query", "schema": {"type": "string"}, "description": "alternative to the body"}],
                  "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}}},
                  "responses": {"200": ok("AckResult"), "400": problem(), "404": problem(), "409": problem(), "410": problem(), "422": problem()}}},
        "/a/{token}": {"get": {"summary": "Mobile page with Accept / Decline", "parameters": [token_param()], "responses": {"200": {"description": "text/html"}, "404": {"description": "text/html"}, "410": {"description": "text/html"}}},
                       "post": {"summary": "The page's form answer", "parameters": [token_param()], "responses": {"200": {"description": "text/html"}}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}},
        "/readyz": {"get": {"summary": "Readiness: Redis answers", "responses": {"200": {"description": "ready"}, "503": {"description": "Redis unreachable"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "application/json"}}}}
      }
    })
}

/// `GET /openapi.json`
pub async fn serve() -> Json<Value> {
    Json(document())
}
