//! The command centre (指挥台): HTML for command staff, served by the same binary as the API,
//! with the same roles and scopes. Pages are askama templates compiled in, over view models
//! built from the same typed models the JSON API answers with (never from Redis directly).
//!
//! - [`session`]: sign-in with a token, the session cookie (HttpOnly, SameSite=Strict, kept in
//!   Redis), CSRF on every form, failed sign-ins limited per address.
//! - [`incidents`]: `/`, the incidents of the scope, and `/wall`, the same for a wall screen;
//!   [`board`]: `/incidents/{id}`, one incident's board.
//!
//! Every page is sent with a Content-Security-Policy allowing no inline script, and is never
//! cached.

pub mod audit;
pub mod board;
pub mod board_view;
pub mod certificate;
pub mod drills;
pub mod incidents;
pub mod lang;
pub mod raise;
pub mod report;
pub mod session;
pub mod teams;

use crate::api::AppState;
use crate::api::error::ApiError;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The command centre's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(incidents::home))
        .route("/wall", get(incidents::wall))
        .route("/wall/cards", get(incidents::wall_fragment))
        .route("/lang", get(lang::switch))
        .route("/incidents/new", get(raise::form).post(raise::raise))
        .route("/incidents/{id}", get(board::show))
        .route("/incidents/{id}/events", get(board::events))
        .route("/incidents/{id}/details", get(board::details))
        .route("/incidents/{id}/level", post(board::upgrade))
        .route("/incidents/{id}/stand-down", post(board::stand_down))
        .route("/incidents/{id}/candidates", get(board::candidates))
        .route("/incidents/{id}/report", get(report::show))
        .route("/incidents/{id}/report.csv", get(report::csv))
        .route("/drills", get(drills::list).post(drills::schedule))
        .route("/drills/{id}/cancel", post(drills::cancel))
        .route(
            "/cap/proposals/{id}/confirm",
            post(drills::confirm_proposal),
        )
        .route("/cap/proposals/{id}/reject", post(drills::reject_proposal))
        .route("/audit", get(audit::show))
        .route("/audit.csv", get(audit::csv))
        .route("/volunteers/{id}/certificate", get(certificate::issue))
        .route("/verify/{code}", get(certificate::verify))
        .route("/teams", get(teams::list))
        .route(
            "/teams/import",
            post(teams::import).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route("/teams/{id}", get(teams::show))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/{file}", get(asset))
        .route_layer(middleware::from_fn(page_headers))
}

const JS: &str = "text/javascript; charset=utf-8";

/// The stylesheet and the scripts, compiled in.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("static/app.css"), "text/css; charset=utf-8"),
        "board.js" => (include_str!("static/board.js"), JS),
        "wall.js" => (include_str!("static/wall.js"), JS),
        "raise.js" => (include_str!("static/raise.js"), JS),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Pages are never cached (they show who is signed in), cannot be framed, load nothing but
/// muster's own files, and run no inline script. Each says how long the server took
/// (`Server-Timing: app;dur=MS`), which `make bench` reads.
async fn page_headers(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={took:.1}")) {
        h.insert("server-timing", v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// What a page answers when something is refused: the same status as the API would answer,
/// as an HTML page for a person (the API's problem+json is for programs).
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> PageError {
        PageError(e.into())
    }
}

#[derive(askama::Template)]
#[template(path = "error.html", config = "src/web/askama.toml")]
struct ErrorPage<'a> {
    who: Option<session::Who>,
    lang: lang::Lang,
    status: u16,
    title: &'a str,
    heading: &'a str,
    detail: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = self.0.status_and_title();
        if status.is_server_error() {
            // Logged, and the 503's Retry-After kept, by the API's own answer.
            return self.0.into_response();
        }
        let heading = match status.as_u16() {
            403 => "无权操作",
            404 => "未找到",
            409 => "状态已变化",
            410 => "已结束",
            422 => "请检查输入",
            _ => "无法完成",
        };
        let mut resp = html(&ErrorPage {
            who: None,
            lang: lang::Lang::Zh,
            status: status.as_u16(),
            title,
            heading,
            detail: self.0.describe(),
        });
        *resp.status_mut() = status;
        resp
    }
}

/// An HTML page from a template, or a plain 500 when it cannot render (logged).
pub(crate) fn html(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}
