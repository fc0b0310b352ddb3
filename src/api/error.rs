//! API errors: every 4xx and 5xx is `application/problem+json` (RFC 9457) with `type`,
//! `title`, `status`, `detail` and, for validation, `errors: [{field, reason}]`. Internal
//! causes are logged once here and never shown to the client.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// One invalid field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
    /// 503: Redis is unreachable; try again.
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// 500: a bug or corrupt data; details only in the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A single-field 422.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldError::new(field, reason)])
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
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
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
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::Gone(d) => d.clone(),
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
        let mut body = json!({
            "type": format!("urn:muster:problem:{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        if let ApiError::Malformed(e) | ApiError::Invalid(e) = &self {
            body["errors"] = json!(e);
        }
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unavailable(_) => {
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

/// A JSON object body, or 413 when it was too large to read.
pub fn json_body(
    raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    json_object(&raw.map_err(|_| ApiError::TooLarge)?)
}

/// Parses a request body as a JSON object, or says why not (400 naming `body`).
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "the body is empty; send a JSON object",
        )]));
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )])),
        Err(e) => Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            format!("not valid JSON: {e}"),
        )])),
    }
}
