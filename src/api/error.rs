//! API errors: every 4xx and 5xx is `application/problem+json` (RFC 9457) with `type`,
//! `title`, `status`, `detail` and, for validation, `errors: [{field, reason}]`. Internal
//! causes are logged once here and never shown to the client.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path (`level`, `location.lat`, `body`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or not the right shape.
    #[error("malformed request")]
    Malformed(Vec<FieldError>),
    /// 422: well-formed but invalid.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// 401.
    #[error("missing or unknown bearer token")]
    Unauthorized,
    /// 401 for a callback whose signature does not verify (the detail names the gateway).
    #[error("bad callback signature: {0}")]
    BadSignature(String),
    /// 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: it existed but is over (a stood-down incident's token).
    #[error("gone: {0}")]
    Gone(String),
    /// 413.
    #[error("body too large")]
    TooLarge,
    /// 415: the body is not in the media type the route reads (the detail names it).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 503: Redis is unreachable; try again.
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// 503: the change was made, but fewer replicas than `redis.wait_replicas` confirmed it.
    #[error("not confirmed by replicas: {0}")]
    NotReplicated(String),
    /// 500: a bug or corrupt data; details only in the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A single-field 422.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldError::new(field, reason)])
    }

    /// The status and title of this error (the command centre's error page shows them).
    pub fn status_and_title(&self) -> (StatusCode, &'static str) {
        let (status, _, title) = self.parts();
        (status, title)
    }

    /// What went wrong, for a person (the `detail` of the problem).
    pub fn describe(&self) -> String {
        self.detail()
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed", "Malformed request"),
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::BadSignature(_) => (
                StatusCode::UNAUTHORIZED,
                "bad-signature",
                "Callback signature does not verify",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone", "Gone"),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
            ),
            ApiError::NotReplicated(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not-replicated",
                "Not confirmed by replicas",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Malformed(e) | ApiError::Invalid(e) => e
                .iter()
                .map(|f| format!("{}: {}", f.field, f.reason))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Unauthorized => {
                "send `Authorization: Bearer <token>` with a token this deployment knows".into()
            }
            ApiError::Forbidden(d)
            | ApiError::BadSignature(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::Gone(d)
            | ApiError::NotReplicated(d)
            | ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::MethodNotAllowed => "this path does not take that method".into(),
            ApiError::TooLarge => "the body is larger than this endpoint accepts".into(),
            ApiError::Unavailable(_) => {
                "the data store is unreachable; nothing was changed, retry shortly".into()
            }
            ApiError::Internal(_) => "an internal error occurred; it has been logged".into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_unavailable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(cause, "store unavailable"),
            _ => {}
        }
        let errors = match &self {
            ApiError::Malformed(e) | ApiError::Invalid(e) => Some(e.as_slice()),
            _ => None,
        };
        let mut resp = (
            status,
            problem_body(status, slug, title, &self.detail(), errors),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unavailable(_) | ApiError::NotReplicated(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

/// An error answer (RFC 9457 problem details), `application/problem+json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:muster:problem:SLUG`, one per kind of error.
    #[serde(rename = "type")]
    #[schema(example = "urn:muster:problem:validation")]
    pub kind: String,
    /// The kind in words.
    pub title: &'a str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: &'a str,
    /// For a 400 or 422: each field that is wrong, by its JSON path (`body` for the whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a [FieldError]>,
}

/// The problem+json text of one answer: the single place its shape is written.
pub fn problem_body(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    errors: Option<&[FieldError]>,
) -> String {
    let p = Problem {
        kind: format!("urn:muster:problem:{slug}"),
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    serde_json::to_string(&p).expect("a problem serialises")
}

/// The slug and title of an error status that no [`ApiError`] produced (a layer's or a
/// framework's own answer).
fn generic_parts(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("malformed", "Malformed request"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        408 => ("timeout", "Request timeout"),
        411 => ("length-required", "Length required"),
        413 => ("too-large", "Request body too large"),
        414 => ("uri-too-long", "URI too long"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        422 => ("validation", "Invalid request"),
        431 => ("headers-too-large", "Request headers too large"),
        503 => ("unavailable", "Temporarily unavailable"),
        s if s >= 500 => ("internal", "Internal error"),
        _ => ("error", "Request refused"),
    }
}

/// A problem+json answer for a bare status, with `detail`.
pub fn problem_for_status(status: StatusCode, detail: &str) -> Response {
    let (slug, title) = generic_parts(status);
    let mut resp = (status, problem_body(status, slug, title, detail, None)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// The one mechanism that makes every error answer problem+json: an error a handler did not
/// build itself (an extractor's rejection, a body limit, a fallback of the framework) arrives
/// here as plain text or nothing, and leaves as problem+json with the same status, its text
/// as `detail`. Pages for people (`text/html`) and answers already in problem+json pass as
/// they are; 5xx texts are not shown (they are logged).
pub async fn problem_everywhere(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/problem+json") || ct.starts_with("text/html") {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let allow = resp.headers().get(header::ALLOW).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge.detail()
    } else if status.is_server_error() {
        if !text.is_empty() {
            tracing::error!(status = status.as_u16(), cause = %text, "error answer from a layer");
        }
        generic_parts(status).1.to_string()
    } else if text.is_empty() {
        generic_parts(status).1.to_string()
    } else {
        text
    };
    let mut out = problem_for_status(status, &detail);
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(v) = allow {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

/// What a body that could not be read means: over the limit is 413; a body that ended before
/// its `Content-Length` (or a broken chunked encoding) is the client's malformed request, 400.
pub fn body_rejection(r: axum::extract::rejection::BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::Malformed(vec![FieldError::new(
            "body",
            "the body could not be read: it ended before its Content-Length, or its encoding is broken",
        )])
    }
}

/// A JSON object body, or 413 when it was too large to read (400 when it was cut short).
pub fn json_body(
    raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    json_object(&raw.map_err(body_rejection)?)
}

/// Parses a request body as a JSON object, or says why not (400 naming `body`).
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match json_value(body)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )])),
    }
}

/// Parses a request body as JSON strictly (a key named twice is refused), or says why not
/// (400 naming `body`, or the key named twice).
pub fn json_value(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "the body is empty; send a JSON object",
        )]));
    }
    match serde_json::from_slice::<Strict>(body).map(|s| s.0) {
        Ok(v) => Ok(v),
        Err(e) => {
            let text = e.to_string();
            // A duplicate key names the key: it is that field the client must fix.
            let dup = text
                .strip_prefix("the key `")
                .and_then(|t| t.split_once("` appears twice"));
            Err(ApiError::Malformed(vec![match dup {
                Some((key, _)) => FieldError::new(key, format!("{text}; send each key once")),
                None => FieldError::new("body", format!("not valid JSON: {text}")),
            }]))
        }
    }
}

/// A JSON value read strictly: an object naming one key twice is refused, at any depth
/// (`{"level":4,"level":1}` is ambiguous — parsers disagree on which one wins — so it is
/// nobody's incident).
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut a: A,
    ) -> Result<serde_json::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(x)) = a.next_element()? {
            v.push(x);
        }
        Ok(serde_json::Value::Array(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut a: A,
    ) -> Result<serde_json::Value, A::Error> {
        let mut m = serde_json::Map::new();
        while let Some(k) = a.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{k}` appears twice in one object"
                )));
            }
            let Strict(v) = a.next_value()?;
            m.insert(k, v);
        }
        Ok(serde_json::Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match json_object(body.as_bytes()) {
            Err(ApiError::Malformed(e)) => e[0].reason.clone(),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        assert!(reason(r#"{"level":4,"level":1}"#).contains("`level` appears twice"));
        match json_object(br#"{"title":"a","level":4,"level":1}"#) {
            Err(ApiError::Malformed(e)) => assert_eq!(e[0].field, "level"),
            other => panic!("{other:?}"),
        }
        assert!(reason(r#"{"a":[{"x":1,"x":1}]}"#).contains("`x` appears twice"));
        assert!(reason(r#"{"a":{"b":{"c":1,"c":2}}}"#).contains("`c` appears twice"));
    }

    #[test]
    fn strict_reading_keeps_every_value_as_it_was() {
        let text = r#"{"a":1,"b":-2,"c":1.5,"d":"x\u0000y","e":[true,null,{"f":18446744073709551615}],"g":{}}"#;
        let strict = json_object(text.as_bytes()).unwrap();
        let plain: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap();
        assert_eq!(strict, plain);
    }
}
