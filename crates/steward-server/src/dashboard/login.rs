//! `/ui/login` and `/ui/logout`: a key typed once, a session cookie after.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::html::{esc, form_fields};
use super::session;
use super::{html_response, same_origin};
use crate::body::read_limited;
use crate::AppState;

/// Where to go after logging in: a path on this server, never another site
/// (`//evil.example` or `/\evil.example` would leave it).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && !n.contains(['\r', '\n']) => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in · Steward</title><link rel=\"icon\" href=\"/ui/assets/icon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head>\
         <body class=\"login\"><main><form class=\"card login-form\" method=\"post\" action=\"/ui/login\">\
         <h1>Steward</h1><p>This server asks for an API key. Paste one to open Mission Control \
         (create one with <code>steward keys new</code>).</p>{error}\
         <label for=\"key\">API key</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <button type=\"submit\">Log in</button></form></main></body></html>\n",
        esc(next)
    );
    html_response(status, body)
}

/// `GET /ui/login?next=/ui/home`
pub async fn form(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let next = safe_next(query.get("next").map(String::as_str));
    if !state.settings.api_keys.is_enabled() {
        return Redirect::to(&next).into_response();
    }
    login_page(StatusCode::OK, &next, None)
}

/// `POST /ui/login` with the form: a session cookie and a redirect when the
/// key is one of the configured ones, the form again with 401 when not.
pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let keys = &state.settings.api_keys;
    // A login form posted from another site would log the browser into an
    // account the attacker chose.
    if headers.contains_key(header::ORIGIN) && !same_origin(&headers) {
        return login_page(StatusCode::FORBIDDEN, "/", Some("This form must be sent from this server's own page."));
    }
    let bytes = match read_limited(&headers, body, state.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let fields = form_fields(&String::from_utf8_lossy(&bytes));
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let next = safe_next(field("next"));
    if !keys.is_enabled() {
        return Redirect::to(&next).into_response();
    }
    let key = field("key").map(str::trim).unwrap_or("");
    if key.is_empty() || !keys.accepts(key) {
        tracing::info!("dashboard login refused: the key matches no configured key");
        return login_page(StatusCode::UNAUTHORIZED, &next, Some("That key is not one of this server's API keys."));
    }
    let actor = format!("user:{}", &crate::auth::digest_hex(key)[..8]);
    tracing::info!(actor = %actor, "dashboard login");
    let token = state.sessions.create(actor);
    let mut response = Redirect::to(&next).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&token)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET` or `POST /ui/logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers) {
        state.sessions.remove(&token);
    }
    let target = if state.settings.api_keys.is_enabled() { "/ui/login" } else { "/" };
    let mut response = Redirect::to(target).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/ui/home?q=x")), "/ui/home?q=x");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
