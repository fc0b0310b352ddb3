//! Signing in to the command centre: a token typed once at `/login` becomes a session cookie
//! (`muster_session`: HttpOnly, SameSite=Strict, `Secure` behind https), the session itself in
//! Redis ([`crate::store::sessions`]) for `http.session_hours`. Every form carries the
//! session's CSRF secret (the sign-in form a cookie-bound one of its own), and a POST without
//! it is 403. Failed sign-ins are limited per client address: after [`MAX_FAILURES`] in
//! [`FAILURE_WINDOW_SECS`], 429 until the window ends.

use super::html;
use super::lang::Lang;
use crate::api::AppState;
use crate::api::auth::{Caller, token_hash};
use crate::api::error::ApiError;
use crate::api::listener::Peer;
use crate::store::sessions::Session;
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The session cookie.
const COOKIE: &str = "muster_session";
/// The sign-in form's own CSRF cookie (there is no session yet).
const LOGIN_COOKIE: &str = "muster_login";
/// Failed sign-ins allowed per address and window.
pub const MAX_FAILURES: u64 = 10;
/// The window failed sign-ins are counted in.
pub const FAILURE_WINDOW_SECS: u64 = 15 * 60;

/// Who is signed in, as the header shows them.
#[derive(Debug, Clone)]
pub struct Who {
    /// The token's name.
    pub name: String,
    /// Its role, in words.
    pub role: &'static str,
    /// May raise (a commander; a trainer, drills only): the raise link.
    pub commander: bool,
    /// May keep the registry (the teams link).
    pub coordinator: bool,
    /// Its scope region, by name.
    pub scope: String,
    /// The session's CSRF secret, for the forms of the page.
    pub csrf: String,
    /// The page language.
    pub lang: Lang,
}

/// A signed-in caller: the same [`Caller`] the API's bearer tokens give, plus the session.
/// Without a valid session a page answers 303 to `/login`.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The caller, with the API's role and scope.
    pub caller: Caller,
    /// The session's CSRF secret.
    pub csrf: String,
    /// The SHA-256 of the session cookie (the session's key).
    pub id_hash: String,
    /// The page language chosen.
    pub lang: Lang,
}

impl Signed {
    /// The header's view of the caller.
    pub fn who(&self, st: &AppState) -> Who {
        Who {
            name: self.caller.name.clone(),
            role: role_words(self.caller.role, self.lang),
            commander: self.caller.role.may_drill(),
            coordinator: self.caller.role.may_see_personal_data(),
            scope: st.ctx.seed.regions.name_of(self.caller.scope.as_str()),
            csrf: self.csrf.clone(),
            lang: self.lang,
        }
    }

    /// 403 unless `csrf` is the session's secret.
    pub fn check_csrf(&self, csrf: &str) -> Result<(), ApiError> {
        if same(csrf, &self.csrf) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this form is not from this session (CSRF); reload the page".into(),
            ))
        }
    }
}

fn role_words(r: crate::domain::access::Role, l: Lang) -> &'static str {
    use crate::domain::access::Role::*;
    match r {
        Viewer => l.t("查看", "viewer"),
        Commander => l.t("指挥", "commander"),
        Coordinator => l.t("协调", "coordinator"),
        Trainer => l.t("演练", "trainer"),
        Admin => l.t("管理", "admin"),
    }
}

/// Where a page sends someone who is not signed in.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Signed, Response> {
        let Some(cookie) = cookie(&parts.headers, COOKIE) else {
            return Err(ToLogin.into_response());
        };
        let id_hash = token_hash(&cookie);
        let session = st
            .ctx
            .store
            .session(&id_hash)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let Some(Session { token_hash, csrf }) = session else {
            return Err(ToLogin.into_response());
        };
        // The token must still be configured: removing it ends its sessions.
        let Some(def) = st.tokens.get(&token_hash) else {
            return Err(ToLogin.into_response());
        };
        Ok(Signed {
            caller: Caller {
                name: def.name.clone(),
                role: def.role,
                scope: def.scope.clone(),
                request: parts
                    .extensions
                    .get::<crate::api::auth::RequestMeta>()
                    .cloned()
                    .unwrap_or_default(),
            },
            csrf,
            id_hash,
            lang: Lang::of(&parts.headers),
        })
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A fresh unguessable value (244 random bits).
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares secrets without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `Set-Cookie` for `name`: HttpOnly, SameSite=Strict, path `/`, `Secure` behind https.
fn set_cookie(st: &AppState, name: &str, value: &str, max_age: u64) -> String {
    let secure = if st.ctx.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

#[derive(Template)]
#[template(path = "login.html", config = "src/web/askama.toml")]
struct LoginPage<'a> {
    who: Option<Who>,
    lang: Lang,
    csrf: &'a str,
    message: Option<&'a str>,
}

/// `GET /login`: the sign-in form, with a CSRF secret bound to a cookie of its own.
pub async fn login_form(State(st): State<AppState>, lang: Lang) -> Response {
    login_page(&st, lang, StatusCode::OK, None)
}

fn login_page(st: &AppState, lang: Lang, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = secret();
    let mut resp = html(&LoginPage {
        who: None,
        lang,
        csrf: &csrf,
        message,
    });
    *resp.status_mut() = status;
    if let Ok(v) = set_cookie(st, LOGIN_COOKIE, &csrf, 3600).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: a known token starts a session and goes to `/`; anything else is the form
/// again, saying why (a failure counted against the address).
pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    meta: Option<axum::Extension<crate::api::auth::RequestMeta>>,
    lang: Lang,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let bound = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if f.csrf.is_empty() || !same(&f.csrf, &bound) {
        return ApiError::Forbidden("this sign-in form is not from this browser (CSRF)".into())
            .into_response();
    }
    let addr = peer.ip().to_string();
    let store = &st.ctx.store;
    match store.login_failures(&addr).await {
        Ok(n) if n >= MAX_FAILURES => {
            return login_page(
                &st,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                Some(lang.t(
                    "登录失败次数过多，请 15 分钟后再试。",
                    "Too many failed sign-ins; try again in 15 minutes.",
                )),
            );
        }
        Ok(_) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let hash = token_hash(f.token.trim());
    let Some(def) = st.tokens.get(&hash) else {
        if let Err(e) = store.login_failure(&addr, FAILURE_WINDOW_SECS).await {
            return ApiError::from(e).into_response();
        }
        // The refusal is audited by the API's refusal layer (this answer is a 401).
        tracing::info!(%addr, "command-centre sign-in refused: unknown token");
        return login_page(
            &st,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(lang.t("令牌无效。", "That token is not known here.")),
        );
    };
    let id = secret();
    let ttl = u64::from(st.ctx.config.http.session_hours.max(1)) * 3600;
    let session = Session {
        token_hash: hash,
        csrf: secret(),
    };
    let now = st.ctx.clock.now_ms();
    let request = meta.map(|m| m.0).unwrap_or_default();
    let audit = crate::store::audit::AuditEntry {
        at: now,
        actor: def.name.clone(),
        role: def.role.as_str().into(),
        scope: def.scope.to_string(),
        action: "session.sign_in".into(),
        region: def.scope.to_string(),
        request: request.id,
        addr: addr.clone(),
        ..Default::default()
    };
    if let Err(e) = store
        .session_create(&token_hash(&id), &session, ttl, &audit)
        .await
    {
        return ApiError::from(e).into_response();
    }
    tracing::info!(token = %def.name, "command-centre sign-in");
    let mut resp = Redirect::to("/").into_response();
    for c in [
        set_cookie(&st, COOKIE, &id, ttl),
        set_cookie(&st, LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = c.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A form that carries only the CSRF secret.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (in Redis: every instance forgets it) and goes to `/login`.
pub async fn logout(
    State(st): State<AppState>,
    signed: Signed,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let c = &signed.caller;
    let audit = c.audit(
        st.ctx.clock.now_ms(),
        "session.sign_out",
        "",
        c.scope.as_str(),
    );
    st.ctx.store.session_end(&signed.id_hash, &audit).await?;
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&st, COOKIE, "", 0).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; muster_session=abc".parse().unwrap());
        h.append(header::COOKIE, "muster_login=xyz".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "other"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_ne!(secret(), secret());
        assert_eq!(secret().len(), 64);
    }
}
