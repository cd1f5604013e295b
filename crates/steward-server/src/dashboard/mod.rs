//! Mission Control: the web dashboard `steward serve` answers at `/`.
//!
//! Pages are HTML written here with `write!` and [`esc`]; a little
//! hand-written JavaScript and CSS (under `assets/`) is compiled into the
//! binary, so the dashboard works offline and has no build step. Every page
//! is served with a strict Content-Security-Policy: scripts only from this
//! server's own files, no inline script, no inline style.
//!
//! The pages read the engine directly; what changes the world goes through
//! the same JSON API any client uses (the page's scripts call it), so the
//! policy, approvals and audit see no difference.
//!
//! With API keys configured, a browser logs in once with a key and gets a
//! session cookie ([`session`]); [`crate::auth::require_key`] accepts that
//! cookie for the JSON API too, with a CSRF check on anything that is not a
//! read.

mod activity;
mod approvals;
mod audit;
mod chat;
mod home;
mod html;
mod login;
pub mod session;
mod snapshots;
mod tasks;
mod usage;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub use html::esc;

/// The policy every dashboard page is served with.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The header the dashboard's scripts send with every request that changes
/// something; a page of another site cannot send it (see [`csrf_ok`]).
pub const DASHBOARD_HEADER: &str = "x-steward-dashboard";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// The dashboard's routes; none of them go through the JSON API's 401:
/// a page without a session answers with the login page instead.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(chat::page))
        .route("/ui", get(|| async { Redirect::to("/") }))
        .route("/ui/activity", get(activity::page))
        .route("/ui/approvals", get(approvals::page))
        .route("/ui/tasks", get(tasks::page))
        .route("/ui/home", get(home::page))
        .route("/ui/usage", get(usage::page))
        .route("/ui/audit", get(audit::page))
        .route("/ui/snapshots", get(snapshots::page))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", get(login::logout).post(login::logout))
        .route("/ui/assets/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/ui/assets/app.css", get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }))
        .route("/ui/assets/icon.svg", get(|| async { asset(ICON_SVG, "image/svg+xml") }))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    response
}

/// An HTML response with the dashboard's security headers.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it a browser sends `Origin: null` on the
    // login form, which the CSRF check must then refuse.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages show live state and, behind a login, private data.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Who is looking at a page, or the redirect to the login page when keys
/// are configured and the request carries no session (or bearer key).
pub(crate) fn viewer(state: &AppState, headers: &HeaderMap, path_and_query: &str) -> Result<Viewer, Redirect> {
    let keys = &state.settings.api_keys;
    if !keys.is_enabled() {
        return Ok(Viewer { logged_in: false });
    }
    if state.sessions.actor_of(headers).is_some() {
        return Ok(Viewer { logged_in: true });
    }
    if crate::auth::bearer_actor(keys, headers).is_some() {
        return Ok(Viewer { logged_in: false });
    }
    let next = html::url_encode(path_and_query);
    Err(Redirect::to(&format!("/ui/login?next={next}")))
}

/// The person a page is rendered for.
pub(crate) struct Viewer {
    /// Whether they came with a session cookie (and so can log out).
    pub logged_in: bool,
}

/// Whether a cookie-authenticated request may go on: reads always; a
/// change only with the dashboard's header, or from a page whose `Origin`
/// is this server. A form or script on another site can do neither, so it
/// cannot act with the person's session.
pub fn csrf_ok(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if headers.get(DASHBOARD_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) == Some("1") {
        return true;
    }
    same_origin(headers)
}

/// Whether the `Origin` header names the host the request was sent to.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
            rest.is_some_and(|r| r.eq_ignore_ascii_case(host))
        }
        _ => false,
    }
}

/// The views, in the order of the navigation bar: (path, label).
const VIEWS: [(&str, &str); 8] = [
    ("/", "Chat"),
    ("/ui/activity", "Activity"),
    ("/ui/approvals", "Approvals"),
    ("/ui/tasks", "Tasks"),
    ("/ui/home", "Home"),
    ("/ui/usage", "Usage"),
    ("/ui/audit", "Audit"),
    ("/ui/snapshots", "Snapshots"),
];

/// A whole page: head, navigation bar and `body` (already HTML).
pub(crate) fn layout(viewer: &Viewer, active: &str, title: &str, body: &str) -> Response {
    use std::fmt::Write;
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Steward</title><link rel=\"icon\" href=\"/ui/assets/icon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/ui/assets/app.css\"><script src=\"/ui/assets/app.js\" defer></script>\
         </head><body data-view=\"{}\"><header class=\"top\"><a class=\"brand\" href=\"/\">Steward</a>\
         <nav aria-label=\"Views\">",
        esc(title),
        esc(active)
    );
    for (path, label) in VIEWS {
        let current = if path == active { " aria-current=\"page\"" } else { "" };
        let _ = write!(out, "<a href=\"{path}\"{current}>{label}</a>");
    }
    out.push_str("</nav>");
    if viewer.logged_in {
        out.push_str(
            "<form class=\"logout\" method=\"post\" action=\"/ui/logout\"><button type=\"submit\">Log out</button></form>",
        );
    }
    let _ = writeln!(out, "</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>", esc(title));
    html_response(StatusCode::OK, out)
}
