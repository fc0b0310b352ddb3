//! The command centre's language: zh-CN first, English on request. The choice is a cookie
//! (`muster_lang`), set by `GET /lang?to=en` from the switch in every page's header; pages
//! put each text through [`Lang::t`] with both words side by side in the template, so a
//! page reads whole in one language. Names of regions, teams and kinds stay Chinese.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::convert::Infallible;

/// The language cookie.
pub const COOKIE: &str = "muster_lang";

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文, the default.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The message templates' locale (`zh-CN`, `en`), also the page's `lang`.
    pub fn locale(self) -> &'static str {
        self.t("zh-CN", "en")
    }

    /// The other language, which the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The switch's label: the other language in its own words.
    pub fn switch_label(self) -> &'static str {
        self.t("English", "中文")
    }

    /// The language of a request (its cookie; zh-CN without one).
    pub fn of(headers: &HeaderMap) -> Lang {
        let en = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k == COOKIE && v == "en");
        if en { Lang::En } else { Lang::Zh }
    }
}

/// A team kind (`rescue`) by name in the page's language (救援), from the message templates.
pub fn team_kind(seed: &crate::seed::Seed, lang: Lang, kind: &str) -> String {
    seed.templates
        .words(
            lang.locale(),
            &crate::domain::template::MessageVars {
                team_kind: kind,
                ..Default::default()
            },
        )
        .team_kind
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Infallible> {
        Ok(Lang::of(&parts.headers))
    }
}

/// `GET /lang` query: the language.
#[derive(Debug, Deserialize)]
pub struct Switch {
    to: String,
}

/// `GET /lang?to=en`: remembers the language for a year and goes back to the page it was
/// chosen on (the path of the `Referer`, so only ever a page of this site).
pub async fn switch(Query(s): Query<Switch>, headers: HeaderMap) -> Response {
    let value = if s.to == "en" { "en" } else { "zh-CN" };
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(back_path)
        .unwrap_or_else(|| "/".into());
    let mut resp = Redirect::to(&back).into_response();
    if let Ok(v) = format!("{COOKIE}={value}; Path=/; SameSite=Lax; Max-Age=31536000").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The path (and query) of a referring URL: `http://host/incidents/x?a=1` → `/incidents/x?a=1`.
fn back_path(referer: &str) -> Option<String> {
    let rest = referer.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    (!path.starts_with("//") && !path.starts_with("/lang")).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_chooses() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.append(header::COOKIE, "a=1; muster_lang=en".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::En);
        assert_eq!(Lang::En.t("事件", "Incidents"), "Incidents");
        assert_eq!(Lang::Zh.other(), Lang::En);
        assert_eq!(Lang::En.locale(), "en");
        assert_eq!(
            back_path("http://127.0.0.1:8080/incidents/a?x=1").as_deref(),
            Some("/incidents/a?x=1")
        );
        assert_eq!(back_path("http://h"), None);
        assert_eq!(back_path("http://h//evil.example/"), None);
    }
}
