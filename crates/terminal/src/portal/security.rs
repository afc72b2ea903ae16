//! The local server's guard (docs/app-download.md §6). A web server on 127.0.0.1 is reachable by
//! every program on the computer and, through the user's browser, by every web page the user
//! opens. So:
//!
//! - only a loopback address is served (checked in [`super::serve`]);
//! - the printed start link `/start?key=<32 hex>` is the one way in: it sets the session cookie
//!   (`HttpOnly; SameSite=Strict`), and every other request without that cookie is refused;
//! - the `Host` header must be `127.0.0.1:<port>` or `localhost:<port>` (`[::1]:<port>` on IPv6),
//!   so a DNS-rebound name cannot read the pages even in the user's browser;
//! - every POST carries the session's CSRF token, and an `Origin` header, when sent, must be
//!   this server's own;
//! - every answer, refusals included, says `Cache-Control: no-store` and the CSP
//!   `default-src 'self'; form-action 'self'; frame-ancestors 'none'`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use crypto::{ct_eq, Rng};

use super::pages;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "cardwright_portal";
/// The form field every POST carries.
pub const CSRF_FIELD: &str = "csrf";
/// The CSP of every answer.
pub const CSP: &str = "default-src 'self'; form-action 'self'; frame-ancestors 'none'";
/// The largest form body accepted (the forms carry a token, a choice, a PIN).
const FORM_LIMIT_BYTES: usize = 16 * 1024;

/// The secrets of one running portal. Made once at start; never written anywhere but the
/// printed link (the start key) and the browser's cookie jar (the session).
pub struct Guard {
    start_key: String,
    session: String,
    csrf: String,
    hosts: Vec<String>,
}

fn random_hex<const N: usize>(rng: &mut dyn Rng) -> String {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes);
    hex::encode(bytes)
}

impl Guard {
    /// New secrets for a portal listening on `addr`.
    pub fn new(addr: SocketAddr, rng: &mut dyn Rng) -> Guard {
        let port = addr.port();
        let mut hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        if addr.is_ipv6() {
            hosts.push(format!("[::1]:{port}"));
        }
        Guard {
            start_key: random_hex::<16>(rng),
            session: random_hex::<32>(rng),
            csrf: random_hex::<32>(rng),
            hosts,
        }
    }

    /// The link the user opens first.
    pub fn start_url(&self, addr: SocketAddr) -> String {
        let host = if addr.is_ipv6() {
            format!("[::1]:{}", addr.port())
        } else {
            format!("127.0.0.1:{}", addr.port())
        };
        format!("http://{host}/start?key={}", self.start_key)
    }

    /// The token the pages put into their forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let mut hosts = headers.get_all(HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(host), None) => host
                .to_str()
                .is_ok_and(|h| self.hosts.iter().any(|allowed| allowed == h)),
            _ => false,
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match headers.get(ORIGIN) {
            None => true,
            Some(origin) => origin.to_str().is_ok_and(|o| {
                o.strip_prefix("http://")
                    .is_some_and(|h| self.hosts.iter().any(|allowed| allowed == h))
            }),
        }
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| {
                name == COOKIE_NAME && ct_eq(value.as_bytes(), self.session.as_bytes())
            })
    }

    fn start_key_matches(&self, query: Option<&str>) -> bool {
        query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| {
                name == "key" && ct_eq(value.as_bytes(), self.start_key.as_bytes())
            })
    }

    fn csrf_matches(&self, form: &[u8]) -> bool {
        let Ok(form) = std::str::from_utf8(form) else {
            return false;
        };
        // The token is hex: no percent-encoding to undo.
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| {
                name == CSRF_FIELD && ct_eq(value.as_bytes(), self.csrf.as_bytes())
            })
    }
}

fn refusal(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(pages::refused(title, message).into_string())).into_response()
}

/// The middleware in front of every route: headers on every answer, then the checks in order
/// (host, start link, session, CSRF on POST).
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = check(&guard, request, next).await;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn check(guard: &Guard, request: Request, next: Next) -> Response {
    if !guard.host_allowed(request.headers()) {
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong address",
            "The portal answers only at 127.0.0.1 or localhost with its own port.",
        );
    }
    if request.uri().path() == "/start" {
        if request.method() != Method::GET || !guard.start_key_matches(request.uri().query()) {
            return refusal(
                StatusCode::FORBIDDEN,
                "This start link is not valid",
                "Open the link the portal printed when it started.",
            );
        }
        let cookie = format!(
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/",
            guard.session
        );
        let mut response = StatusCode::SEE_OTHER.into_response();
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/"));
        match HeaderValue::from_str(&cookie) {
            Ok(value) => {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            // Invariant: the cookie is ASCII (hex and fixed words); never taken.
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
        return response;
    }
    if !guard.has_session(request.headers()) {
        return refusal(
            StatusCode::FORBIDDEN,
            "Open the portal from its start link",
            "This browser has not opened the portal's start link yet. Use the link the portal printed when it started.",
        );
    }
    if request.method() == Method::POST {
        if !guard.origin_allowed(request.headers()) {
            return refusal(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site.",
            );
        }
        let is_form = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let (parts, body) = request.into_parts();
        let Ok(form) = to_bytes(body, FORM_LIMIT_BYTES).await else {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Refused",
                "The form is larger than any of the portal's forms.",
            );
        };
        if !is_form || !guard.csrf_matches(&form) {
            return refusal(
                StatusCode::FORBIDDEN,
                "This page has expired",
                "Go back to the portal's start page and try again.",
            );
        }
        return next.run(Request::from_parts(parts, Body::from(form))).await;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "Refused",
            "Only GET and POST.",
        );
    }
    next.run(request).await
}
