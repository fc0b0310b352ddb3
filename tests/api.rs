//! The HTTP contract: auth and scope, validation as problem+json naming the field (never a
//! 5xx), idempotent raise, forged tokens, health, OpenAPI.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::{Value, json};

async fn app() -> (TestRedis, Receiver, TestApp) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    (redis, rx, app)
}

fn flood() -> Value {
    json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"})
}

fn assert_problem(
    status: u16,
    headers: &axum::http::HeaderMap,
    body: &Value,
    want: u16,
    field: Option<&str>,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    for k in ["type", "title", "status", "detail"] {
        assert!(body.get(k).is_some(), "problem lacks {k}: {body}");
    }
    assert_eq!(body["status"], want);
    if let Some(f) = field {
        let errors = body["errors"].as_array().expect("errors[]");
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == f && !e["reason"].as_str().unwrap().is_empty()),
            "no error naming `{f}`: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes() {
    let (_r, _rx, app) = app().await;
    let body = flood().to_string();
    let (s, h, b) = app.post("/v1/incidents", None, &body).await;
    assert_problem(s, &h, &b, 401, None);
    let (s, h, b) = app.post("/v1/incidents", Some("not-a-token"), &body).await;
    assert_problem(s, &h, &b, 401, None);
    // A viewer may not raise; a township commander may not raise in another township.
    let (s, h, b) = app.post("/v1/incidents", Some("demo-viewer"), &body).await;
    assert_problem(s, &h, &b, 403, None);
    let other =
        json!({"kind": "flood", "level": 4, "region": "990102001", "title": "x"}).to_string();
    let (s, h, b) = app
        .post("/v1/incidents", Some("demo-township-commander"), &other)
        .await;
    assert_problem(s, &h, &b, 403, None);
    // The city commander may; the township commander can neither read nor stand it down.
    let (s, _, inc) = app
        .post("/v1/incidents", Some("demo-city-commander"), &other)
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap();
    let (s, _) = app
        .get(
            &format!("/v1/incidents/{id}"),
            Some("demo-township-commander"),
        )
        .await;
    assert_eq!(s, 404);
    let (s, h, b) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
    assert_problem(s, &h, &b, 404, None);
    let (s, h, b) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-viewer"),
            "",
        )
        .await;
    assert_problem(s, &h, &b, 403, None);
    let (s, _) = app.get(&format!("/v1/incidents/{id}"), None).await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_problem_json_naming_the_field() {
    let (_r, _rx, app) = app().await;
    let cases: Vec<(String, u16, &str)> = vec![
        (json!({"kind": "flood", "level": 7, "region": "990101001", "title": "x"}).to_string(), 422, "level"),
        (json!({"kind": "flood", "level": "two", "region": "990101001", "title": "x"}).to_string(), 422, "level"),
        (json!({"kind": "flood", "level": 2.5, "region": "990101001", "title": "x"}).to_string(), 422, "level"),
        (json!({"kind": "flood", "level": 4, "region": "990199001", "title": "x"}).to_string(), 422, "region"),
        (json!({"kind": "flood", "level": 4, "region": "abc", "title": "x"}).to_string(), 422, "region"),
        (json!({"kind": "volcano", "level": 4, "region": "990101001", "title": "x"}).to_string(), 422, "kind"),
        // hazmat has a plan for level 1 only
        (json!({"kind": "hazmat", "level": 3, "region": "990101001", "title": "x"}).to_string(), 422, "level"),
        (json!({"kind": "flood", "level": 4, "region": "990101001", "title": ""}).to_string(), 422, "title"),
        (json!({"kind": "flood", "level": 4, "region": "990101001"}).to_string(), 422, "title"),
        (json!({"kind": "flood", "level": 4, "region": "990101001", "title": "x", "mode": "practice"}).to_string(), 422, "mode"),
        (json!({"kind": "flood", "level": 4, "region": "990101001", "title": "x", "idempotency_key": 5}).to_string(), 422, "idempotency_key"),
        (json!({}).to_string(), 422, "kind"),
        ("{\"kind\": \"flood\", ".to_string(), 400, "body"),
        ("[1,2,3]".to_string(), 400, "body"),
        ("".to_string(), 400, "body"),
        ("\u{0}\u{1}garbage".to_string(), 400, "body"),
    ];
    for (body, want, field) in cases {
        let (s, h, b) = app.post("/v1/incidents", Some("demo-admin"), &body).await;
        assert_problem(s, &h, &b, want, Some(field));
    }
    // The server answers 413 without reading the rest and closes that connection, so the
    // oversized request goes on a client of its own: the shared pool must not reuse it.
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(200_000));
    let r = reqwest::Client::new()
        .post(app.url("/v1/incidents"))
        .bearer_auth("demo-admin")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_problem(s, &h, &b, 413, None);
    // Several problems are reported at once.
    let (s, _, b) = app
        .post(
            "/v1/incidents",
            Some("demo-admin"),
            &json!({"kind": 1, "level": 0}).to_string(),
        )
        .await;
    assert_eq!(s, 422);
    assert!(b["errors"].as_array().unwrap().len() >= 4, "{b}");
    // Unknown paths and wrong methods are problems too.
    let (s, _) = app.get("/v1/nothing", Some("demo-admin")).await;
    assert_eq!(s, 404);
    let (s, h, b) = app.post("/healthz", None, "").await;
    assert_problem(s, &h, &b, 405, None);
    let (s, b) = app
        .get("/v1/incidents?status=bogus", Some("demo-admin"))
        .await;
    assert_eq!(s, 422, "{b}");
    // Read as the document's pattern says (schemathesis sent a lone space, once).
    for q in ["+", "mustering,+filled", "%20mustering"] {
        let (s, b) = app
            .get(&format!("/v1/incidents?status={q}"), Some("demo-admin"))
            .await;
        assert_eq!(s, 422, "status={q}: {b}");
    }
    let (s, b) = app
        .get("/v1/incidents?status=mustering,filled", Some("demo-admin"))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = app
        .get("/v1/incidents/not-a-uuid", Some("demo-admin"))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_with_an_idempotency_key_is_idempotent() {
    let (_r, rx, app) = app().await;
    let mut body = flood();
    body["idempotency_key"] = json!("flood-binjiang-0623");
    let (s1, a) = app.raise("demo-township-commander", body.clone()).await;
    let (s2, b) = app.raise("demo-township-commander", body.clone()).await;
    assert_eq!((s1, s2), (201, 200), "{a} {b}");
    assert_eq!(a["id"], b["id"]);
    // Concurrent repeats all name the same incident.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = app.http.clone();
        let url = app.url("/v1/incidents");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth("demo-township-commander")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"].clone()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), a["id"]);
    }
    // The same key for a different incident is refused, naming the field.
    body["title"] = json!("另一事件");
    let (s, h, e) = app
        .post(
            "/v1/incidents",
            Some("demo-township-commander"),
            &body.to_string(),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(e["errors"][0]["field"], "idempotency_key");
    // Only one incident's worth of call-outs went out.
    let id = a["id"].as_str().unwrap().to_string();
    let called = || async {
        let inc = app.incident(&id).await;
        inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["called"].as_u64().unwrap())
            .sum::<u64>()
    };
    eventually(
        std::time::Duration::from_secs(10),
        "all call-outs delivered",
        || async {
            // Every requirement's step has finished calling out (its timer is armed), and
            // everyone it called was reached.
            let inc = app.incident(&id).await;
            let armed = inc["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["next_step_at"].is_string());
            let n = called().await;
            armed && n > 0 && rx.delivered("callout").len() as u64 == n
        },
    )
    .await;
    let called = called().await;
    assert_eq!(rx.delivered("callout").len() as u64, called);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_bad_ack_tokens_change_nothing() {
    let (_r, rx, app) = app().await;
    let (_, inc) = app.raise("demo-township-commander", flood()).await;
    let id = inc["id"].as_str().unwrap().to_string();
    eventually(std::time::Duration::from_secs(10), "call-outs", || async {
        !rx.delivered("callout").is_empty()
    })
    .await;
    let real = rx.delivered("callout")[0].token();
    let mut forged = real.clone().into_bytes();
    forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for t in [forged.as_str(), "garbage", "", &"A".repeat(500)] {
        let (s, _, b) = app
            .post(&format!("/v1/acks/{t}"), None, "{\"response\":\"accept\"}")
            .await;
        assert!(s == 404 || s == 405, "token {t:?}: {s} {b}");
    }
    let (s, _) = app.get(&format!("/a/{forged}"), None).await;
    assert_eq!(s, 404);
    let inc2 = app.incident(&id).await;
    assert!(
        inc2["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["accepted"] == 0)
    );
    // A real token with a bad answer is a 422 naming `response`; with none, a 400.
    let (s, h, b) = app
        .post(
            &format!("/v1/acks/{real}"),
            None,
            "{\"response\":\"maybe\"}",
        )
        .await;
    assert_problem(s, &h, &b, 422, Some("response"));
    let (s, h, b) = app.post(&format!("/v1/acks/{real}"), None, "").await;
    assert_problem(s, &h, &b, 400, Some("response"));
    // Arrival before accepting is a conflict; a bare POST to accept_url works.
    let (s, _) = app.ack(&real, "arrived").await;
    assert_eq!(s, 409);
    let (s, _, b) = app
        .post(&format!("/v1/acks/{real}?response=accept"), None, "")
        .await;
    assert_eq!((s, b["state"].as_str()), (200, Some("accepted")));
    // The ack page renders for the volunteer.
    let (s, page) = app.get(&format!("/a/{real}"), None).await;
    assert_eq!(s, 200);
    assert!(page.as_str().unwrap().contains("<form"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_openapi() {
    let (_r, _rx, app) = app().await;
    assert_eq!(app.get("/healthz", None).await.0, 200);
    let (s, b) = app.get("/readyz", None).await;
    assert_eq!((s, b["redis"].as_str()), (200, Some("ok")));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("muster_http_requests_total"), "{metrics}");
    assert!(!metrics.contains("quantile="), "histograms, not summaries");
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    for p in [
        "/v1/incidents",
        "/v1/incidents/{id}",
        "/v1/incidents/{id}/callouts",
        "/v1/incidents/{id}/stand-down",
        "/v1/incidents/{id}/events",
        "/v1/acks/{token}",
        "/a/{token}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/incidents/{id}/candidates",
        "/v1/incidents/{id}/level",
        "/v1/volunteers",
        "/v1/volunteers:import",
        "/v1/volunteers/{id}",
        "/v1/volunteers/{id}/schedule",
        "/v1/volunteers/{id}/unavailability",
        "/v1/teams",
        "/v1/teams/{id}",
        "/v1/teams/{id}/roster",
        "/v1/teams/{id}/overrides",
        "/v1/teams/{id}/overrides/{oid}",
        "/v1/teams/{id}/on-call",
        "/v1/on-call",
        "/v1/acks/{token}/unavailable",
        "/ical/{kind}/{id}/{file}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
    }
}

/// `/openapi.json` is generated from the routes and the body types: what it says is what
/// the handlers read and answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_says_what_the_types_say() {
    let (_r, _rx, app) = app().await;
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    // Required bodies and fields, enums, bounds, formats.
    let raise = &doc["paths"]["/v1/incidents"]["post"];
    assert_eq!(raise["requestBody"]["required"], true, "{raise}");
    let ri = schema("RaiseIncident");
    let required: Vec<&str> = ri["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["kind", "level", "region", "title"] {
        assert!(required.contains(&f), "{f} not required: {ri}");
    }
    assert_eq!(ri["additionalProperties"], false, "{ri}");
    assert_eq!(ri["properties"]["title"]["minLength"], 1, "{ri}");
    assert_eq!(ri["properties"]["title"]["maxLength"], 200, "{ri}");
    assert!(
        ri["properties"]["kind"]["enum"]
            .as_array()
            .is_some_and(|k| k.contains(&json!("flood"))),
        "the deployment's kinds: {ri}"
    );
    assert!(
        ri["properties"]["region"]["enum"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("990101001"))),
        "the deployment's regions: {ri}"
    );
    assert_eq!(schema("Level")["minimum"], 1);
    assert_eq!(schema("Level")["maximum"], 4);
    assert_eq!(schema("Mode")["enum"], json!(["live", "drill"]));
    assert_eq!(
        schema("Status")["enum"],
        json!(["mustering", "filled", "short", "stood_down", "closed"])
    );
    assert_eq!(
        schema("Response")["enum"],
        json!(["accept", "decline", "arrived", "withdraw"])
    );
    assert_eq!(
        schema("Incident")["properties"]["raised_at"]["format"],
        "date-time"
    );
    let params = doc["paths"]["/v1/incidents/{id}/callouts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let param = |n: &str| {
        params
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("no parameter {n}"))["schema"]
            .clone()
    };
    assert_eq!(param("limit")["minimum"], 1);
    assert_eq!(param("limit")["maximum"], 5000);
    assert_eq!(param("offset")["minimum"], 0);
    // Every status a route can answer, each error as problem+json.
    let codes = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    for c in ["201", "400", "401", "403", "413", "415", "422", "503"] {
        assert!(
            codes("/v1/incidents", "post").contains(&c.to_string()),
            "{c}"
        );
    }
    for c in ["404", "409", "410", "422"] {
        assert!(
            codes("/v1/volunteers/{id}", "patch").contains(&c.to_string()),
            "{c}"
        );
    }
    for c in ["404", "409", "410"] {
        assert!(
            codes("/v1/acks/{token}", "post").contains(&c.to_string()),
            "{c}"
        );
    }
    let p404 = &doc["paths"]["/v1/incidents/{id}"]["get"]["responses"]["404"];
    assert_eq!(
        p404["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    // One operation id per operation.
    let mut ids = Vec::new();
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap().to_string());
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "operation ids repeat: {ids:?}");
}

/// The body extractor: JSON only (415), an integral float is an integer, an unknown field is
/// named, a CSV whose header names no volunteer is refused as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_read_by_their_type() {
    let (_r, _rx, app) = app().await;
    let r = app
        .http
        .post(app.url("/v1/incidents"))
        .bearer_auth("demo-admin")
        .header("content-type", "text/plain")
        .body(flood().to_string())
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let b: Value = r.json().await.unwrap();
    assert_problem(s, &h, &b, 415, None);
    assert!(
        b["detail"].as_str().unwrap().contains("application/json"),
        "{b}"
    );
    let (s, b) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4.0, "region": "990101001", "title": "内涝"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["level"], 4);
    let (s, h, b) = app
        .post(
            "/v1/incidents",
            Some("demo-admin"),
            &json!({"kind": "flood", "level": 4, "region": "990101001", "title": "x", "levle": 1})
                .to_string(),
        )
        .await;
    assert_problem(s, &h, &b, 422, Some("levle"));
    // A viewer is told it may not, before anything about its body.
    let (s, h, b) = app.post("/v1/incidents", Some("demo-viewer"), "{}").await;
    assert_problem(s, &h, &b, 403, None);
    let (s, b) = app.import("demo-admin", "{}\n1,2\n".as_bytes()).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("no name column"),
        "{b}"
    );
}

/// Sends raw bytes on a fresh connection (half-closing it after them when `eof`), returns
/// status, headers and the body as JSON. Without `eof` the server is the one that closes.
async fn raw_exchange(app: &TestApp, request: Vec<u8>, eof: bool) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // Read while writing: a server that answers early (413) and closes must not reset the
    // connection under an answer not yet read.
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    });
    let _ = wr.write_all(&request).await;
    if eof {
        let _ = wr.shutdown().await;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "not an HTTP answer: {text:?} to {:?}",
            String::from_utf8_lossy(&request[..60])
        )
    });
    let status = head[9..12].parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

fn assert_raw_problem(got: &(u16, String, Value), want: u16) {
    let (status, head, body) = got;
    assert_eq!(*status, want, "{head}\n{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(body["status"], want, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_problem_json_whoever_answers_it() {
    let (_r, _rx, app) = app().await;
    // A bad query parameter is named (it was text/plain).
    let resp = app
        .http
        .get(app.url("/v1/volunteers/v0001/schedule?days=abc"))
        .bearer_auth("demo-admin")
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status().as_u16(), resp.headers().clone());
    let b: Value = resp.json().await.unwrap();
    assert_problem(s, &h, &b, 400, Some("days"));
    let (s, b) = app
        .get("/v1/incidents/x/callouts?limit=-1", Some("demo-admin"))
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["errors"][0]["field"], "limit", "{b}");
    // A body over the limit on a route that reads raw bytes (an SMS callback; was text/plain).
    // Only part of the announced body is sent: the server reads it all, answers 413 and
    // closes, with nothing unread that would make its close a reset.
    let got = raw_exchange(
        &app,
        [
            &b"POST /v1/sms/inbound/sim HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n"[..],
            &[b'a'; 70_000],
        ]
        .concat(),
        false,
    )
    .await;
    assert_raw_problem(&got, 413);
    // A URI over hyper's limit (was 414 with an empty body), headers over its buffer, and a
    // request line that is not HTTP.
    let long = format!(
        "GET /v1/incidents?x={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    assert_raw_problem(&raw_exchange(&app, long.into_bytes(), false).await, 414);
    let fat = format!(
        "GET /v1/incidents HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(500_000)
    );
    assert_raw_problem(&raw_exchange(&app, fat.into_bytes(), false).await, 431);
    assert_raw_problem(
        &raw_exchange(&app, b"GE T / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(), false).await,
        400,
    );
    // A body cut short of its Content-Length is the client's malformed request (was 413).
    let cut = "POST /v1/incidents HTTP/1.1\r\nhost: x\r\nauthorization: Bearer demo-admin\r\n\
               content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"kind\":\"flood\"";
    let got = raw_exchange(&app, cut.as_bytes().to_vec(), true).await;
    assert_raw_problem(&got, 400);
    assert_eq!(got.2["errors"][0]["field"], "body", "{}", got.2);
    // Nothing of this raised an incident.
    let (_, list) = app.get("/v1/incidents", Some("demo-admin")).await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_twice_is_refused_and_raises_nothing() {
    let (_r, _rx, app) = app().await;
    let body = r#"{"kind":"flood","level":4,"level":1,"region":"990101001","title":"x"}"#;
    let (s, h, b) = app.post("/v1/incidents", Some("demo-admin"), body).await;
    assert_problem(s, &h, &b, 400, Some("level"));
    let (s, h, b) = app
        .post(
            "/v1/volunteers",
            Some("demo-admin"),
            r#"{"name":"甲","phone":"+8613700000001","phone":"+8613700000002","teams":["t990101001-rescue"]}"#,
        )
        .await;
    assert_problem(s, &h, &b, 400, Some("phone"));
    let (_, list) = app.get("/v1/incidents", Some("demo-admin")).await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_reasons_are_for_registry_staff_and_ack_pages_are_private() {
    let (_r, rx, app) = app().await;
    let hook = "https://hooks.example.org/t/9f8e7d?key=s3cret";
    let (s, b) = app
        .json(
            "POST",
            "/v1/volunteers",
            "demo-county-coordinator",
            json!({"name": "王五", "phone": "+8613911114444", "teams": ["t990101001-rescue"], "webhook": hook}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let vid = b["id"].as_str().unwrap().to_string();
    let until = muster::clock::rfc3339(muster::clock::wall_ms() + 86_400_000);
    let (s, b) = app
        .json(
            "POST",
            &format!("/v1/volunteers/{vid}/unavailability"),
            "demo-admin",
            json!({"until": until, "reason": "住院"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for (token, full) in [
        ("demo-admin", true),
        ("demo-county-coordinator", true),
        ("demo-viewer", false),
        ("demo-county-commander", false),
    ] {
        let (s, v) = app.get(&format!("/v1/volunteers/{vid}"), Some(token)).await;
        assert_eq!(s, 200, "{token}: {v}");
        if full {
            assert_eq!(v["webhook"], hook, "{token}: {v}");
            assert_eq!(v["unavailable"][0]["reason"], "住院", "{token}: {v}");
        } else {
            assert_eq!(v["webhook"], "https://hooks.example.org/…", "{token}: {v}");
            assert!(!v.to_string().contains("s3cret"), "{token}: {v}");
            assert!(!v.to_string().contains("住院"), "{token}: {v}");
            assert!(v["unavailable"][0]["until"].is_string(), "{token}: {v}");
        }
    }
    // The call-out page and the ack endpoints: not cached, no referrer, not framed.
    let (s, inc) = app.raise("demo-admin", flood()).await;
    assert_eq!(s, 201, "{inc}");
    eventually(std::time::Duration::from_secs(20), "a call-out", || async {
        !rx.delivered("callout").is_empty()
    })
    .await;
    let token = rx.delivered("callout")[0].token();
    let check = |r: &reqwest::Response, what: &str| {
        let h = r.headers();
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(
            h["content-security-policy"], "frame-ancestors 'none'",
            "{what}"
        );
    };
    let r = app
        .http
        .get(app.url(&format!("/a/{token}")))
        .send()
        .await
        .unwrap();
    check(&r, "GET /a");
    let r = app.http.get(app.url("/a/forged")).send().await.unwrap();
    check(&r, "GET /a forged");
    let r = app
        .http
        .post(app.url(&format!("/v1/acks/{token}")))
        .json(&json!({"response": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&r, "POST /v1/acks");
    let r = app
        .http
        .post(app.url(&format!("/v1/acks/{token}/unavailable")))
        .json(&json!({"until": "x"}))
        .send()
        .await
        .unwrap();
    check(&r, "POST /v1/acks/unavailable");
}
