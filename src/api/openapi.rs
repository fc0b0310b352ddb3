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
            "declined": {"type": "integer"}, "pending": {"type": "integer", "description": "called, not yet sent"}, "notified": {"type": "integer", "description": "sent, not yet answered"}, "silent": {"type": "integer"},
            "arrived": {"type": "integer"}, "withdrawn": {"type": "integer"}, "failed": {"type": "integer"},
            "stood_down": {"type": "integer"}, "called": {"type": "integer"},
            "step": {"type": "integer"}, "tier": {"type": "string", "enum": ["township", "county", "city"]},
            "next_step_at": {"type": "string", "format": "date-time", "description": "when the current step's wait runs out"},
            "short": {"type": "boolean", "description": "the ladder ran out with the headcount unmet"}}},
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
            "channel": {"type": "string", "description": "webhook or sms:GATEWAY"},
            "sms_delivery": {"type": ["string", "null"], "enum": ["sent", "undelivered", "delivered", null]},
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
        "/v1/sms/inbound/{gateway}": {"post": {"summary": "An inbound SMS from a gateway (generic: JSON from, text, id; Twilio: form From, Body, MessageSid; Aliyun: JSON array of phone_number, content, sequence_id), signed per gateway",
                  "parameters": [{"name": "gateway", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "what each message did: answered, which, closed, stop, duplicate, unknown_number, unknown_code, not_understood, …"}, "401": problem(), "404": problem(), "422": problem()}}},
        "/v1/sms/status/{gateway}": {"post": {"summary": "Delivery receipts from a gateway (generic: JSON id, status; Twilio: form MessageSid, MessageStatus; Aliyun: JSON array of biz_id, success), signed per gateway",
                  "parameters": [{"name": "gateway", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "how many receipts changed a callout"}, "401": problem(), "404": problem(), "422": problem()}}},
        "/v1/sms/inbound/{gateway}/{key}": {"post": {"summary": "An inbound SMS from a gateway that cannot sign (Aliyun), authenticated by its callback_secret in the path; answered {code: 0, msg: 成功}",
                  "parameters": [{"name": "gateway", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{code: 0, msg, messages}"}, "401": problem(), "404": problem(), "413": problem(), "422": problem()}}},
        "/v1/sms/status/{gateway}/{key}": {"post": {"summary": "Delivery reports from a gateway that cannot sign (Aliyun), authenticated by its callback_secret in the path",
                  "parameters": [{"name": "gateway", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{code: 0, msg, applied}"}, "401": problem(), "404": problem(), "413": problem(), "422": problem()}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}},
        "/readyz": {"get": {"summary": "Readiness: Redis answers", "responses": {"200": {"description": "ready"}, "503": {"description": "Redis unreachable"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "application/json"}}}}
      }
    })
}

/// Paths of the registry, rosters and candidates.
fn registry_paths() -> Value {
    let bearer = json!([{"bearer": []}]);
    let obj = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object"}}}});
    let p = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let q = |name: &str, d: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}, "description": d});
    let errs = |ok: Value| json!({"200": ok, "400": problem(), "401": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()});
    json!({
      "/v1/incidents/{id}/level": {"post": {"summary": "Upgrade to a more severe level (commander): {level}. The new plan is merged in (requirements added, headcounts raised, nothing lost); standby volunteers are promoted first, then only the difference is called out", "security": bearer, "parameters": [id_param()], "responses": errs(obj("the incident"))}},
      "/v1/incidents/{id}/candidates": {"get": {"summary": "Per requirement and step: who was called (with their answer) and who was excluded, with reason codes not_on_call, status, qualification_missing, qualification_expired, insurance_missing, insurance_expired, unavailable, resting, engaged, no_channel", "security": bearer, "parameters": [id_param()], "responses": errs(obj("candidates"))}},
      "/v1/volunteers": {"post": {"summary": "Register a volunteer (coordinator). Body: name, phone (E.164), teams, locale?, webhook?, qualifications? [{code, valid_until}], insurance_valid_until?, home_region?, status?", "security": bearer,
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "phone", "teams"]}}}},
          "responses": {"201": obj("the volunteer (name and phone masked unless the role may see them)"), "400": problem(), "401": problem(), "403": problem(), "409": problem(), "422": problem()}}},
      "/v1/volunteers:import": {"post": {"summary": "Bulk import (coordinator): a CSV body in UTF-8 or GBK, headers in English or Chinese; idempotent on phone", "security": bearer,
          "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string"}}}},
          "responses": errs(obj("report: encoding, rows, created, updated, unchanged, rejected [{line, reason}], ignored_columns"))}},
      "/v1/volunteers/{id}": {
          "get": {"summary": "A volunteer (viewer), with current deployments", "security": bearer, "parameters": [p("id")], "responses": errs(obj("volunteer"))},
          "patch": {"summary": "Update, suspend, retire or reactivate (coordinator)", "security": bearer, "parameters": [p("id")], "responses": errs(obj("volunteer"))},
          "delete": {"summary": "Erase personal data; anonymised service records stay (coordinator)", "security": bearer, "parameters": [p("id")], "responses": errs(obj("{id, status: erased, erased_at}"))}},
      "/v1/volunteers/{id}/schedule": {"get": {"summary": "Coming on-call shifts over all their teams, unavailability, and the iCal feed URL", "security": bearer,
          "parameters": [p("id"), q("from", "RFC 3339; now by default"), q("days", "1-90; 14 by default")], "responses": errs(obj("schedule"))}},
      "/v1/volunteers/{id}/unavailability": {"post": {"summary": "Mark unavailable: {until, from?, reason?} (coordinator)", "security": bearer, "parameters": [p("id")], "responses": errs(obj("{id, unavailable}"))}},
      "/v1/teams": {"get": {"summary": "Teams in scope", "security": bearer, "parameters": [q("region", "region code"), q("kind", "team kind")], "responses": errs(obj("{teams}"))},
                    "post": {"summary": "Create a team: {id, name, kind, region} (coordinator)", "security": bearer, "responses": errs(obj("team"))}},
      "/v1/teams/{id}": {
          "get": {"summary": "A team with its members and iCal feed URL", "security": bearer, "parameters": [p("id")], "responses": errs(obj("team"))},
          "patch": {"summary": "Rename, suspend, retire or reactivate: {name?, status?} (coordinator)", "security": bearer, "parameters": [p("id")], "responses": errs(obj("team"))},
          "delete": {"summary": "Delete the team, its roster and memberships (coordinator)", "security": bearer, "parameters": [p("id")], "responses": {"204": {"description": "deleted"}, "401": problem(), "403": problem(), "404": problem()}}},
      "/v1/teams/{id}/roster": {
          "get": {"summary": "The roster: layers and overrides, with its version", "security": bearer, "parameters": [p("id")], "responses": errs(obj("{team, version, roster}"))},
          "put": {"summary": "Replace the roster: {layers: [{id, name?, members, on_call, shift (8h, 12h, 1d, 1w), start (local date-time), time_zone}], overrides?, version?}; a stale version is 409", "security": bearer, "parameters": [p("id")], "responses": errs(obj("{team, version, roster}"))}},
      "/v1/teams/{id}/overrides": {"post": {"summary": "Add an override: {volunteer, start, end, replaces?, note?}", "security": bearer, "parameters": [p("id")], "responses": errs(obj("{team, version, roster}"))}},
      "/v1/teams/{id}/overrides/{oid}": {"delete": {"summary": "Remove an override", "security": bearer, "parameters": [p("id"), p("oid")], "responses": errs(obj("{team, version, roster}"))}},
      "/v1/teams/{id}/on-call": {"get": {"summary": "Who is on call at an instant, with the layer or override that put them there and any unavailability", "security": bearer, "parameters": [p("id"), q("at", "RFC 3339; now by default")], "responses": errs(obj("on-call"))}},
      "/v1/on-call": {"get": {"summary": "Who is on call in every team in scope", "security": bearer, "parameters": [q("at", "RFC 3339; now by default")], "responses": errs(obj("{at, teams}"))}},
      "/v1/acks/{token}/unavailable": {"post": {"summary": "A volunteer marks themself unavailable through their call-out link: {until, from?, reason?}", "parameters": [token_param()], "responses": {"200": obj("{unavailable}"), "400": problem(), "404": problem(), "410": problem(), "422": problem()}}},
      "/ical/{kind}/{id}/{file}": {"get": {"summary": "iCalendar feed of a volunteer (kind v) or team (kind t); file is TAG.ics, the unguessable credential from calendar_url", "parameters": [p("kind"), p("id"), p("file")], "responses": {"200": {"description": "text/calendar"}, "404": problem()}}}
    })
}

/// `GET /openapi.json`
pub async fn serve() -> Json<Value> {
    let mut doc = document();
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), registry_paths()) {
        paths.extend(more);
    }
    Json(doc)
}
