//! Extractors whose rejections are ours: a bad query string or an unreadable body answers
//! problem+json naming the field, like every other 4xx (axum's own rejections are plain text).

use super::error::{ApiError, FieldError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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
