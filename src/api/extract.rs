//! Extractors whose rejections are ours: a bad query string or an unreadable body answers
//! problem+json naming the field, like every other 4xx (axum's own rejections are plain text).
//!
//! [`Body`] is how every JSON request body is read: the media type is checked (415), the text
//! is parsed strictly (a key named twice is a 400), it is deserialised into its Rust type
//! (a missing, unknown or mistyped field is a 422 naming it by its JSON path), and then the
//! type's own [`Check`] runs (free-text rules, lengths), so a handler only ever sees a body
//! that is whole.

use super::error::{ApiError, FieldError, body_rejection, json_value};
use crate::domain::text::{self, Lines};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::PartialSchema;

/// What a body type checks beyond its shape: rules serde cannot say (text without control
/// characters, lengths in characters, ranges). Each problem is one [`FieldError`].
pub trait Check {
    /// Pushes what is wrong onto `errs`; leaves it as it was when all is well.
    fn check(&self, errs: &mut Vec<FieldError>);
}

/// A JSON request body of type `T`, read strictly and checked; see the module text.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Check + PartialSchema, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &S) -> Result<Body<T>, ApiError> {
        require_json(req.headers().get(CONTENT_TYPE))?;
        let bytes = Bytes::from_request(req, st).await.map_err(body_rejection)?;
        typed(&bytes).map(Body)
    }
}

/// Fails with 415 unless the content type is JSON (`application/json` or `…+json`).
pub fn require_json(ct: Option<&axum::http::HeaderValue>) -> Result<(), ApiError> {
    let ct = ct.and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(if ct.is_empty() {
            "send the body as JSON, with `Content-Type: application/json`".into()
        } else {
            format!(
                "`{ct}` is not read here: send the body as JSON, with `Content-Type: application/json`"
            )
        }))
    }
}

/// Reads `bytes` into `T`: strict JSON (400), the type's shape (422 naming every field that
/// is missing, unknown or mistyped), then its [`Check`] (422 naming every field that fails).
pub fn typed<T: DeserializeOwned + Check + PartialSchema>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = json_value(bytes)?;
    let serde_json::Value::Object(mut obj) = value else {
        return Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    obj.values_mut().for_each(whole_numbers);
    let value = serde_json::Value::Object(obj);
    let t: T = match serde_path_to_error::deserialize(&value) {
        Ok(t) => t,
        Err(e) => {
            let serde_json::Value::Object(obj) = value else {
                unreachable!("built as an object above")
            };
            return Err(ApiError::Invalid(shape_errors::<T>(obj, e)));
        }
    };
    let mut errs = Vec::new();
    t.check(&mut errs);
    if errs.is_empty() {
        Ok(t)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

/// Writes a number with no fraction (`1.0`, `2e3`) as the integer it is: JSON has one number
/// type, and JSON Schema's `integer` admits `1.0`, so an integer field must too.
fn whole_numbers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *v = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(m) => m.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Every shape problem of a body, not just serde's first: the fields the type's schema
/// requires and the body lacks, then each mistyped or unknown field in turn (serde reads the
/// fields in order and stops at the first bad one; without it, the next one shows).
fn shape_errors<T: DeserializeOwned + PartialSchema>(
    mut obj: serde_json::Map<String, serde_json::Value>,
    mut e: serde_path_to_error::Error<serde_json::Error>,
) -> Vec<FieldError> {
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    let mut errs: Vec<FieldError> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .filter(|r| !obj.contains_key(*r))
        .map(|r| FieldError::new(r, "is required"))
        .collect();
    for _ in 0..64 {
        let path = e.path().to_string();
        let err = shape_error(&path, &e.into_inner().to_string());
        let top = err.field.split(['.', '[']).next().unwrap_or("").to_string();
        if !errs.iter().any(|x| x.field == err.field) {
            errs.push(err);
        }
        // A missing field ends the search: the rest of the body read cleanly.
        if obj.remove(&top).is_none() {
            break;
        }
        let value = serde_json::Value::Object(obj);
        let next = serde_path_to_error::deserialize::<_, T>(&value);
        let serde_json::Value::Object(back) = value else {
            unreachable!("built as an object above")
        };
        obj = back;
        match next {
            Ok(_) => break,
            Err(next) => e = next,
        }
    }
    errs
}

/// A serde error at `path`, said the way the rest of the API says it: a missing field is
/// named and "is required", an unknown one is named, anything else keeps serde's words.
fn shape_error(path: &str, msg: &str) -> FieldError {
    let at = |name: &str| match path {
        "." | "" => name.to_string(),
        p => format!("{p}.{name}"),
    };
    let quoted = |rest: &str| rest.split('`').nth(1).map(str::to_string);
    if let Some(name) = msg.strip_prefix("missing field ").and_then(quoted) {
        return FieldError::new(at(&name), "is required");
    }
    if let Some(name) = msg.strip_prefix("unknown field ").and_then(quoted) {
        let known = msg.split_once(", expected ").map(|(_, k)| k).unwrap_or("");
        // serde_path_to_error's path already ends at the unknown key.
        let field = if path.ends_with(name.as_str()) {
            path.to_string()
        } else {
            at(&name)
        };
        return FieldError::new(field, format!("unknown field; expected {known}"));
    }
    let field = match path {
        "." | "" => "body".to_string(),
        p => p.to_string(),
    };
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    FieldError::new(field, msg)
}

/// Checks free text `s` of field `name`: no control characters (a newline only where `lines`
/// allows it) and `min..=max` characters after trimming.
pub fn text_field(
    errs: &mut Vec<FieldError>,
    name: &str,
    s: &str,
    lines: Lines,
    min: usize,
    max: usize,
) {
    if let Err(why) = text::check(s, lines) {
        errs.push(FieldError::new(name, why));
    } else if !(min..=max).contains(&s.trim().chars().count()) {
        errs.push(FieldError::new(
            name,
            if min == 0 {
                format!("must be at most {max} characters")
            } else {
                format!("must be {min} to {max} characters")
            },
        ));
    }
}

/// Deserialises a field that tells "absent" (`None`) from "null" (`Some(None)`): what a PATCH
/// needs to say "leave it" apart from "clear it". Use with `#[serde(default)]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The query string, deserialised into `T`; a bad parameter is a 400 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query<T>, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Parses a query string into `T`, naming the parameter that is wrong.
pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." || p.is_empty() => "query".to_string(),
            p => p,
        };
        ApiError::Malformed(vec![FieldError::new(field, e.into_inner().to_string())])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Q {
        days: Option<u32>,
        #[allow(dead_code)]
        at: Option<String>,
    }

    #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        name: String,
        level: u8,
        tags: Vec<Tag>,
    }

    #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tag {
        code: String,
    }

    impl Check for B {
        fn check(&self, errs: &mut Vec<FieldError>) {
            text_field(errs, "name", &self.name, Lines::One, 1, 3);
        }
    }

    fn fields(body: &str) -> Vec<(String, String)> {
        match typed::<B>(body.as_bytes()) {
            Err(ApiError::Invalid(e)) | Err(ApiError::Malformed(e)) => {
                e.into_iter().map(|f| (f.field, f.reason)).collect()
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn every_shape_problem_is_named_at_once() {
        let got = fields(r#"{"level": "x", "tags": [{"code": 1}], "extra": true}"#);
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert!(names.contains(&"name"), "{got:?}");
        assert!(names.contains(&"level"), "{got:?}");
        assert!(names.contains(&"tags[0].code"), "{got:?}");
        assert!(names.contains(&"extra"), "{got:?}");
        assert!(got.iter().any(|(f, r)| f == "name" && r == "is required"));
        // Shape first; the type's own checks once the shape is whole.
        assert_eq!(
            fields(r#"{"name": "long name", "level": 2.0, "tags": []}"#),
            vec![("name".to_string(), "must be 1 to 3 characters".to_string())]
        );
        assert_eq!(fields("[1]")[0].0, "body");
        assert!(typed::<B>(br#"{"name": "ok", "level": 2.0, "tags": []}"#).is_ok());
    }

    #[test]
    fn a_bad_parameter_is_named() {
        match parse_query::<Q>("at=now&days=abc") {
            Err(ApiError::Malformed(e)) => {
                assert_eq!(e[0].field, "days");
                assert!(e[0].reason.contains("invalid digit"), "{}", e[0].reason);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_query::<Q>("days=3").unwrap().days, Some(3));
        assert_eq!(parse_query::<Q>("").unwrap().days, None);
    }
}
