//! The operators' console framework (docs/app-download.md §6): server-rendered pages (maud, no
//! JavaScript) under `/console`, signed into with an operator token of the party's `operators`
//! table ([`crate::Operator`]'s tokens), sessions kept only in the party's database
//! (`console_sessions`), so any instance on that database serves any session.
//!
//! What the kit serves ([`router`]): `GET /console/login` (the form), `POST /console/login`
//! (token → session cookie, 303 to the first page), `POST /console/logout`, `GET /console`
//! (303 to the first page), `GET /console/style.css` (the one stylesheet). What a party adds:
//! its own pages, handlers that take a [`ConsoleOperator`] (no session: 303 to the sign-in
//! page) and answer with [`ConsoleOperator::page`]; forms that include
//! [`ConsoleOperator::csrf_field`] and are read with [`ConsoleForm`]. The pieces every
//! party's pages are made of are here too: [`badge`], [`notice`], [`capacity_bar`],
//! [`empty_panel`], [`timestamp`], [`party_id`], [`short_hex`], the words [`group_digits`],
//! [`byte_size`], [`counted`], [`sentence`], [`utc`], redirects' [`query_pair`], a card's
//! ledger of receipts checked ([`ledger_table`]) and the page saying what went wrong
//! ([`ConsoleOperator::problem`], [`ConsoleOperator::failure_words`]).
//!
//! ```text
//! // at start, once per database (with the party's own migrations):
//! server_kit::console::prepare(&db).await?;
//! // the router:
//! let console = Console::new(db.clone(), "Issuer 1", Transport::Http)
//!     .with_page("Cards", "/console/cards");
//! let pages = Router::new().route("/console/cards", get(cards).post(add_card));
//! let app = console::api_router(http::routes(), console::router(&console, pages), state, &kit);
//!
//! async fn cards(op: ConsoleOperator) -> Markup {
//!     op.page("Cards", html! { p { "…" } form method="post" { (op.csrf_field()) … } })
//! }
//! async fn add_card(op: ConsoleOperator, ConsoleForm(form): ConsoleForm<NewCard>) -> Redirect { … }
//! ```
//!
//! Security, for every route under [`router`]: the session cookie is `HttpOnly; SameSite=Strict;
//! Path=/console` (and `Secure` on [`Transport::Https`]); only the SHA-256 of the session id is
//! stored; sessions end after [`SESSION_LIFETIME_SECS`], at sign-out, or when their operator is
//! disabled; every POST except the sign-in itself must carry the session's CSRF token in the
//! form field [`CSRF_FIELD`] (URL-encoded or multipart), checked before the handler runs (the
//! sign-in form carries a token of its own, bound to a cookie); every response has
//! `Cache-Control: no-store` and [`CONTENT_SECURITY_POLICY`]; a refused sign-in is logged
//! without the token.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use pki::{Certificate, PartyId, UnixTime};
use protocol::{LedgerEntry, Operation, Receipt, ReceiptResult, SignedObject};
use serde::de::DeserializeOwned;
use sqlx::Row;

use crate::operator::to_db_time;
use crate::{
    on_pool, ApiError, Clock, Db, DbError, Kit, Migration, MigrationSet, OperatorToken, Route,
};

/// How long a console session lasts from sign-in.
pub const SESSION_LIFETIME_SECS: u64 = 8 * 60 * 60;
/// The session cookie's name before the party's (`cw_console-issuer-1`): 32 random bytes in
/// hex. Browsers keep cookies per host, not per port, so two parties on one host need two names.
pub const SESSION_COOKIE: &str = "cw_console";
/// The name before the party's of the cookie binding the sign-in form to the browser that
/// loaded it (`cw_console_signin-issuer-1`).
pub const SIGN_IN_COOKIE: &str = "cw_console_signin";

/// `prefix-party-name`: the party's name in lowercase letters and digits, runs of anything else
/// as one `-`.
fn cookie_name(prefix: &str, party_name: &str) -> String {
    let slug: Vec<String> = party_name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{prefix}-{}", slug.join("-"))
}
/// The form field every POST carries its CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";
/// The prefix of every console path; the session cookie is sent only below it.
pub const CONSOLE_PATH: &str = "/console";
pub const LOGIN_PATH: &str = "/console/login";
pub const LOGOUT_PATH: &str = "/console/logout";
pub const STYLE_PATH: &str = "/console/style.css";
/// The `Content-Security-Policy` of every console response: no scripts, no inline styles, no
/// forms to elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; form-action 'self'; frame-ancestors 'none'";
/// The largest request body a console POST may have (forms, and file uploads of applications).
pub const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// What a page says when the server itself failed (a 5xx): the cause goes to the log only.
pub const SERVER_FAILURE: &str = "The console could not do this just now. Try again in a moment; \
                                  if it keeps happening, the server's log says why.";

const SESSION_ID_LEN: usize = 32;
const CSRF_TOKEN_LEN: usize = 32;
const STYLESHEET: &str = include_str!("console.css");

/// The console's own table, `console_sessions`, as a migration set of its own (component
/// `server-kit-console`), so a party gets it by calling [`prepare`] without listing it among
/// its migrations.
pub const CONSOLE_MIGRATIONS: MigrationSet = MigrationSet {
    component: "server-kit-console",
    sqlite: &[Migration {
        version: 1,
        description: "console sessions",
        sql: include_str!("../migrations/console/sqlite/0001_console_sessions.sql"),
    }],
    postgres: &[Migration {
        version: 1,
        description: "console sessions",
        sql: include_str!("../migrations/console/postgres/0001_console_sessions.sql"),
    }],
};

/// Creates the console's table in `db` if it is not there yet (with server-kit's own tables,
/// which it refers to). Call it at start, next to the party's own migrations; safe from several
/// instances at once.
pub async fn prepare(db: &Db) -> Result<(), DbError> {
    db.migrate(&CONSOLE_MIGRATIONS).await
}

/// How browsers reach this server: decides whether the session cookie is `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP (development, or TLS ended by a proxy on the same machine).
    Http,
    /// HTTPS: cookies are sent over TLS only.
    Https,
}

/// One link of the navigation bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavLink {
    pub label: String,
    pub path: String,
}

/// A party's console: its database, the name its pages show, its navigation, how browsers
/// reach it. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<ConsoleInner>,
}

#[derive(Clone)]
struct ConsoleInner {
    db: Db,
    party_name: String,
    transport: Transport,
    clock: Arc<dyn Clock>,
    nav: Vec<NavLink>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("party_name", &self.inner.party_name)
            .field("transport", &self.inner.transport)
            .field("nav", &self.inner.nav)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console of the party whose database is `db` (already [`prepare`]d), showing
    /// `party_name` in its header, on the system clock.
    pub fn new(db: Db, party_name: impl Into<String>, transport: Transport) -> Console {
        Console {
            inner: Arc::new(ConsoleInner {
                db,
                party_name: party_name.into(),
                transport,
                clock: Arc::new(crate::SystemClock),
                nav: Vec::new(),
            }),
        }
    }

    /// The session cookie's name for this party (two parties on one host keep apart).
    pub fn session_cookie_name(&self) -> String {
        cookie_name(SESSION_COOKIE, &self.inner.party_name)
    }

    /// The sign-in form's cookie name for this party.
    pub fn sign_in_cookie_name(&self) -> String {
        cookie_name(SIGN_IN_COOKIE, &self.inner.party_name)
    }

    /// The same console reading time from `clock` (tests move a manual clock past expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Console {
        Arc::make_mut(&mut self.inner).clock = clock;
        self
    }

    /// Adds a link to the navigation bar. The first page added is where sign-in leads.
    /// `path` must be below `/console/` (the session cookie is sent only there).
    pub fn with_page(mut self, label: impl Into<String>, path: impl Into<String>) -> Console {
        Arc::make_mut(&mut self.inner).nav.push(NavLink {
            label: label.into(),
            path: path.into(),
        });
        self
    }

    pub fn party_name(&self) -> &str {
        &self.inner.party_name
    }

    pub fn nav(&self) -> &[NavLink] {
        &self.inner.nav
    }

    /// Where sign-in leads: the first page of the navigation, else `/console`.
    pub fn home(&self) -> &str {
        self.inner
            .nav
            .first()
            .map(|link| link.path.as_str())
            .unwrap_or(CONSOLE_PATH)
    }

    fn now(&self) -> pki::UnixTime {
        self.inner.clock.now()
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
        let secure = match self.inner.transport {
            Transport::Https => "; Secure",
            Transport::Http => "",
        };
        let text = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        );
        // Invariant: names, hex values and our paths are visible ASCII.
        HeaderValue::from_str(&text).expect("cookie header value")
    }

    /// The signed-in session whose id `session_id` is, if it exists, has not expired and its
    /// operator is enabled.
    async fn session(&self, session_id: &str) -> Result<Option<Session>, DbError> {
        let digest = sha256_hex(session_id);
        let now = to_db_time(self.now());
        let row = on_pool!(&self.inner.db, |pool| {
            sqlx::query(
                "SELECT s.operator, s.csrf_token, s.expires_at FROM console_sessions s \
                 JOIN operators o ON o.name = s.operator \
                 WHERE s.session_sha256 = $1 AND s.expires_at > $2 AND o.disabled_at IS NULL",
            )
            .bind(&digest)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok::<_, sqlx::Error>(Session {
                    digest: digest.clone(),
                    operator: r.try_get(0)?,
                    csrf: r.try_get(1)?,
                    expires_at: pki::UnixTime(u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0)),
                })
            })
        });
        Ok(row.transpose()?)
    }

    /// Opens a session for `operator`; returns its id (for the cookie only; the database keeps
    /// its digest). Deletes expired sessions on the way.
    async fn open_session(&self, operator: &str) -> Result<String, DbError> {
        let session_id = random_hex(SESSION_ID_LEN);
        let csrf = random_hex(CSRF_TOKEN_LEN);
        let now = self.now();
        let expires = pki::UnixTime(now.0.saturating_add(SESSION_LIFETIME_SECS));
        let digest = sha256_hex(&session_id);
        on_pool!(&self.inner.db, |pool| {
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                .bind(to_db_time(now))
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO console_sessions \
                 (session_sha256, operator, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&digest)
            .bind(operator)
            .bind(&csrf)
            .bind(to_db_time(now))
            .bind(to_db_time(expires))
            .execute(pool)
            .await
            .map(drop)?
        });
        Ok(session_id)
    }

    async fn close_session(&self, digest: &str) -> Result<(), DbError> {
        on_pool!(&self.inner.db, |pool| {
            sqlx::query("DELETE FROM console_sessions WHERE session_sha256 = $1")
                .bind(digest)
                .execute(pool)
                .await
                .map(drop)?
        });
        Ok(())
    }
}

/// A session as a request sees it. `Debug` leaves the CSRF token out.
#[derive(Clone)]
struct Session {
    digest: String,
    operator: String,
    csrf: String,
    expires_at: pki::UnixTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("operator", &self.operator)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What the console's layer hands the extractors of one request.
#[derive(Debug, Clone)]
struct ConsoleContext {
    console: Console,
    session: Option<Session>,
    path: String,
}

/// The kit's console routes and `pages` (the party's own, all below `/console/`), behind the
/// console's layer: session lookup, CSRF check of every POST, security headers. Merge the
/// result into the party's router before [`crate::finish`] (or use [`api_router`]).
pub fn router<S>(console: &Console, pages: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let kit_pages: Router<S> = Router::new()
        .route(CONSOLE_PATH, get(home))
        .route(LOGIN_PATH, get(sign_in_form).post(sign_in))
        .route(LOGOUT_PATH, post(sign_out))
        .route(STYLE_PATH, get(stylesheet))
        .with_state(console.clone());
    kit_pages
        .merge(pages)
        .layer(middleware::from_fn_with_state(console.clone(), guard))
}

/// [`crate::api_router`] with a console: the party's API `routes` and the `console` router
/// (from [`router`]) given `state`, wrapped by [`crate::finish`].
pub fn api_router<S>(routes: Vec<Route<S>>, console: Router<S>, state: S, kit: &Kit) -> Router
where
    S: Clone + Send + Sync + 'static,
{
    let api = routes
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        .merge(console)
        .with_state(state);
    crate::finish(api, kit)
}

/// The console's layer around every console route.
async fn guard(State(console): State<Console>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path == STYLE_PATH && is_safe(request.method()) {
        // The one page every visitor may load: no session to look up.
        return with_security_headers(next.run(request).await);
    }
    let session = match session_cookie(request.headers(), &console.session_cookie_name()) {
        Some(id) => match console.session(&id).await {
            Ok(session) => session,
            Err(e) => return internal(&console, "reading a console session", &e),
        },
        None => None,
    };
    let context = ConsoleContext {
        console: console.clone(),
        session: session.clone(),
        path: path.clone(),
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(context);
    let request = if is_safe(&parts.method) || path == LOGIN_PATH {
        Request::from_parts(parts, body)
    } else {
        let Some(session) = session else {
            return with_security_headers(to_sign_in());
        };
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return with_security_headers(problem(
                    Some(&console),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too large",
                    &format!(
                        "A form may send at most {} bytes.",
                        group_digits(MAX_FORM_BYTES as u64)
                    ),
                ))
            }
        };
        let submitted = csrf_token_of(&parts.headers, &bytes);
        let matches = submitted
            .as_deref()
            .is_some_and(|token| crypto::ct_eq(token.as_bytes(), session.csrf.as_bytes()));
        if !matches {
            tracing::warn!(
                operator = %session.operator,
                path = %path,
                token = if submitted.is_some() { "wrong" } else { "missing" },
                "console form refused: CSRF token"
            );
            return with_security_headers(problem(
                Some(&console),
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from a page of this console session. Go back, reload \
                 the page and send it again.",
            ));
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    with_security_headers(next.run(request).await)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CSP, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

/// The value of cookie `name` among the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// The session cookie's value, when it has the form of one (64 lowercase hex digits).
fn session_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_value(headers, name).filter(|value| is_hex_of_len(value, SESSION_ID_LEN))
}

fn is_hex_of_len(value: &str, bytes: usize) -> bool {
    value.len() == 2 * bytes
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The CSRF token a form body carries in [`CSRF_FIELD`] (URL-encoded or multipart).
fn csrf_token_of(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => form_field(body, CSRF_FIELD),
        "multipart/form-data" => {
            let boundary = content_type.split(';').skip(1).find_map(|param| {
                let (key, value) = param.trim().split_once('=')?;
                key.eq_ignore_ascii_case("boundary")
                    .then(|| value.trim_matches('"').to_string())
            })?;
            multipart_field(body, &boundary, CSRF_FIELD)
        }
        _ => None,
    }
}

/// The first value of field `name` in a URL-encoded form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The text of part `name` of a `multipart/form-data` body (RFC 7578) with `boundary`.
fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<String> {
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            return None;
        }
        let part = rest.strip_prefix(b"\r\n")?;
        let end = find(part, delimiter.as_bytes()).unwrap_or(part.len());
        let part = &part[..end];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&part[..head_end]).ok()?;
        let named = head.split("\r\n").any(|line| {
            let Some((header, value)) = line.split_once(':') else {
                return false;
            };
            header.trim().eq_ignore_ascii_case("content-disposition")
                && value.split(';').skip(1).any(|param| param.trim() == wanted)
        });
        if named {
            let content = &part[head_end + 4..];
            let content = content.strip_suffix(b"\r\n").unwrap_or(content);
            return String::from_utf8(content.to_vec()).ok();
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    crypto::Rng::fill(&mut crypto::OsRng, &mut bytes);
    hex::encode(bytes)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(crypto::sha256(text.as_bytes()).as_bytes())
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn to_sign_in() -> Response {
    see_other(LOGIN_PATH)
}

fn internal(console: &Console, doing: &str, cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(cause = %cause, "console: {doing} failed");
    with_security_headers(problem(
        Some(console),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        SERVER_FAILURE,
    ))
}

/// A page saying what went wrong, with the console's header when there is one.
fn problem(console: Option<&Console>, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        div.notice.bad { (message) }
        p { a href=(CONSOLE_PATH) { "Back to the console" } }
    };
    let markup = match console {
        Some(console) => layout(console, None, "", title, body),
        None => bare_page(title, body),
    };
    (status, markup).into_response()
}

fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body { main { h1 { (title) } (body) } }
        }
    }
}

/// The page around every console screen: header (party, navigation, who is signed in and the
/// sign-out button), the title, the content, the footer.
fn layout(
    console: &Console,
    who: Option<&Session>,
    path: &str,
    title: &str,
    content: Markup,
) -> Markup {
    let party = console.party_name();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (party) " console" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header.top {
                    div.brand {
                        span.mark { "◆" }
                        span.party { (party) }
                        span.product { "console" }
                    }
                    @if let Some(session) = who {
                        nav {
                            @for link in console.nav() {
                                @let active = path == link.path
                                    || path.starts_with(&format!("{}/", link.path));
                                a href=(link.path) class=[active.then_some("active")]
                                    aria-current=[active.then_some("page")] { (link.label) }
                            }
                        }
                        div.who {
                            span.operator { (session.operator) }
                            form.inline method="post" action=(LOGOUT_PATH) {
                                input type="hidden" name=(CSRF_FIELD) value=(session.csrf);
                                button type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (content)
                }
                footer {
                    span { "cardwright · " (party) }
                    @if let Some(session) = who {
                        span { "Signed in as " (session.operator) " until " (utc(session.expires_at)) }
                    }
                }
            }
        }
    }
}

async fn stylesheet() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}

async fn home(operator: ConsoleOperator) -> Response {
    let console = operator.console().clone();
    if console.nav().is_empty() {
        operator
            .page(
                "Console",
                html! { p { "Signed in as " (operator.name()) "." } },
            )
            .into_response()
    } else {
        see_other(console.home())
    }
}

/// The sign-in page, with `error` above the form; sets a fresh sign-in cookie its form echoes.
fn sign_in_page(console: &Console, status: StatusCode, error: Option<&str>) -> Response {
    let binding = random_hex(CSRF_TOKEN_LEN);
    let party = console.party_name();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · " (party) " console" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body.signin {
                header.top {
                    div.brand {
                        span.mark { "◆" }
                        span.party { (party) }
                        span.product { "console" }
                    }
                }
                main {
                    div.signin-card {
                        h1 { "Sign in" }
                        p.muted { "Operators of " (party) " sign in with their operator token." }
                        @if let Some(error) = error {
                            div.notice.bad id="sign-in-error" { (error) }
                        }
                        form.stacked method="post" action=(LOGIN_PATH) {
                            input type="hidden" name=(CSRF_FIELD) value=(binding);
                            label {
                                "Operator token"
                                input type="password" name="token" id="token" required
                                    autocomplete="off" spellcheck="false" placeholder="cwo_…";
                                span.hint { "Given by " code { "cardwright … operator add" } "." }
                            }
                            button type="submit" id="sign-in" { "Sign in" }
                        }
                    }
                }
                footer { span { "cardwright · " (party) } }
            }
        }
    };
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        console.cookie(&console.sign_in_cookie_name(), &binding, LOGIN_PATH, 3600),
    );
    response
}

async fn sign_in_form(
    State(console): State<Console>,
    session: Option<ConsoleOperator>,
) -> Response {
    match session {
        Some(_) => see_other(console.home()),
        None => sign_in_page(&console, StatusCode::OK, None),
    }
}

/// Why a sign-in was refused: what the log says (never the token) and what the page says.
#[derive(Debug, Clone, Copy)]
enum SignInRefusal {
    FormExpired,
    Malformed,
    Unknown,
    Disabled,
}

impl SignInRefusal {
    fn reason(self) -> &'static str {
        match self {
            SignInRefusal::FormExpired => "the sign-in form's token did not match its cookie",
            SignInRefusal::Malformed => "not an operator token",
            SignInRefusal::Unknown => "unknown operator token",
            SignInRefusal::Disabled => "operator disabled",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            SignInRefusal::FormExpired | SignInRefusal::Disabled => StatusCode::FORBIDDEN,
            SignInRefusal::Malformed | SignInRefusal::Unknown => StatusCode::UNAUTHORIZED,
        }
    }

    fn words(self, party: &str) -> String {
        match self {
            SignInRefusal::FormExpired => {
                "The sign-in form had expired. Enter your token again.".to_string()
            }
            SignInRefusal::Malformed => {
                "That is not an operator token: it looks like cwo_ followed by 32 hex digits."
                    .to_string()
            }
            SignInRefusal::Unknown => format!("That token is not an operator token of {party}."),
            SignInRefusal::Disabled => {
                format!("This operator is disabled at {party}. Ask another operator.")
            }
        }
    }
}

async fn sign_in(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let refuse = |refusal: SignInRefusal, operator: Option<&str>| {
        tracing::warn!(
            reason = refusal.reason(),
            operator = operator.unwrap_or("-"),
            "console sign-in refused"
        );
        sign_in_page(
            &console,
            refusal.status(),
            Some(&refusal.words(console.party_name())),
        )
    };
    let binding = cookie_value(&headers, &console.sign_in_cookie_name());
    let submitted = form_field(&body, CSRF_FIELD);
    let bound = match (&binding, &submitted) {
        (Some(cookie), Some(form)) => {
            is_hex_of_len(cookie, CSRF_TOKEN_LEN)
                && crypto::ct_eq(cookie.as_bytes(), form.as_bytes())
        }
        _ => false,
    };
    if !bound {
        return refuse(SignInRefusal::FormExpired, None);
    }
    let text = form_field(&body, "token").unwrap_or_default();
    let Some(token) = OperatorToken::parse(text.trim()) else {
        return refuse(SignInRefusal::Malformed, None);
    };
    let record = match console.inner.db.operator_by_token(&token).await {
        Ok(Some(record)) => record,
        Ok(None) => return refuse(SignInRefusal::Unknown, None),
        Err(e) => return internal(&console, "looking up an operator token", &e),
    };
    if record.disabled_at.is_some() {
        return refuse(SignInRefusal::Disabled, Some(&record.name));
    }
    let session_id = match console.open_session(&record.name).await {
        Ok(id) => id,
        Err(e) => return internal(&console, "opening a console session", &e),
    };
    tracing::info!(operator = %record.name, "console sign-in");
    let mut response = see_other(console.home());
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        console.cookie(
            &console.session_cookie_name(),
            &session_id,
            CONSOLE_PATH,
            SESSION_LIFETIME_SECS,
        ),
    );
    headers.append(
        SET_COOKIE,
        console.cookie(&console.sign_in_cookie_name(), "", LOGIN_PATH, 0),
    );
    response
}

async fn sign_out(operator: ConsoleOperator) -> Response {
    let console = operator.console().clone();
    if let Err(e) = console.close_session(&operator.session.digest).await {
        return internal(&console, "closing a console session", &e);
    }
    tracing::info!(operator = %operator.name(), "console sign-out");
    let mut response = to_sign_in();
    response.headers_mut().append(
        SET_COOKIE,
        console.cookie(&console.session_cookie_name(), "", CONSOLE_PATH, 0),
    );
    response
}

/// The operator signed into the console for this request: put it among a page handler's
/// arguments to require a session. Without one (none, expired, signed out, operator disabled)
/// the request is answered 303 to `/console/login`. POSTs reaching a handler have had their
/// CSRF token checked already.
#[derive(Debug, Clone)]
pub struct ConsoleOperator {
    console: Console,
    session: Session,
    path: String,
}

impl ConsoleOperator {
    /// The operator's name (the `operators` table's).
    pub fn name(&self) -> &str {
        &self.session.operator
    }

    /// When this session ends.
    pub fn session_expires_at(&self) -> pki::UnixTime {
        self.session.expires_at
    }

    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The hidden field every console form must include (`<input type=hidden name=_csrf>`).
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.session.csrf); }
    }

    /// A whole console page: the layout (party, navigation with this page's link marked, the
    /// operator and the sign-out button, footer) around `title` and `content`.
    pub fn page(&self, title: &str, content: Markup) -> Markup {
        layout(
            &self.console,
            Some(&self.session),
            &self.path,
            title,
            content,
        )
    }

    /// A page titled `title` saying what went wrong, answered with `status`: `message` in a
    /// [`Tone::Bad`] notice and a link back to the console's first page, named after it
    /// ("Back to the cards" when its label is "Cards"; "Back to the console" without one).
    pub fn problem(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let (back_path, back_name) = match self.console.nav().first() {
            Some(link) => (link.path.as_str(), link.label.to_lowercase()),
            None => (CONSOLE_PATH, "console".to_string()),
        };
        let page = self.page(
            title,
            html! {
                (notice(Tone::Bad, message))
                p { a href=(back_path) { "Back to the " (back_name) } }
            },
        );
        (status, page).into_response()
    }

    /// What a page says about a failed operation (`doing`, for the log) and with which
    /// status: the error's own message for the operator's mistakes and the state of things
    /// (4xx); for the server's own failures (5xx) [`SERVER_FAILURE`], the cause logged with
    /// the operator's name.
    pub fn failure_words(&self, doing: &str, error: &ApiError) -> (StatusCode, String) {
        if error.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(
                operator = %self.name(),
                cause = %error.message,
                "console: {doing} failed"
            );
            return (error.status, SERVER_FAILURE.to_string());
        }
        (error.status, error.message.clone())
    }
}

/// Why a console extractor refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleRejection {
    /// No valid session: 303 to the sign-in page.
    SignInRequired,
    /// The route is not behind [`router`]'s layer (a wiring bug): 500.
    NotMounted { path: String },
    /// A form body that does not fit the handler's type: 400 naming the problem.
    InvalidForm { detail: String },
}

impl IntoResponse for ConsoleRejection {
    fn into_response(self) -> Response {
        match self {
            ConsoleRejection::SignInRequired => to_sign_in(),
            ConsoleRejection::NotMounted { path } => {
                tracing::error!(path = %path, "a console page is not mounted with server_kit::console::router");
                problem(
                    None,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "This page is not part of the console.",
                )
            }
            ConsoleRejection::InvalidForm { detail } => problem(
                None,
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                &detail,
            ),
        }
    }
}

fn context(parts: &Parts) -> Result<&ConsoleContext, ConsoleRejection> {
    parts
        .extensions
        .get::<ConsoleContext>()
        .ok_or_else(|| ConsoleRejection::NotMounted {
            path: parts.uri.path().to_string(),
        })
}

impl<S> FromRequestParts<S> for ConsoleOperator
where
    S: Send + Sync,
{
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<ConsoleOperator, ConsoleRejection> {
        let context = context(parts)?;
        let session = context
            .session
            .clone()
            .ok_or(ConsoleRejection::SignInRequired)?;
        Ok(ConsoleOperator {
            console: context.console.clone(),
            session,
            path: context.path.clone(),
        })
    }
}

impl<S> axum::extract::OptionalFromRequestParts<S> for ConsoleOperator
where
    S: Send + Sync,
{
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<ConsoleOperator>, ConsoleRejection> {
        match <ConsoleOperator as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(operator) => Ok(Some(operator)),
            Err(ConsoleRejection::SignInRequired) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// A URL-encoded console form decoded as `T` (the CSRF field is checked by the console's layer
/// and ignored here). Fields `T` does not name are ignored; a missing or unreadable field is
/// 400 saying what does not fit.
#[derive(Debug, Clone)]
pub struct ConsoleForm<T>(pub T);

impl<T, S> FromRequest<S> for ConsoleForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ConsoleRejection;

    async fn from_request(request: Request, state: &S) -> Result<ConsoleForm<T>, ConsoleRejection> {
        let url_encoded = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !url_encoded {
            return Err(ConsoleRejection::InvalidForm {
                detail: "the form was not sent as application/x-www-form-urlencoded".to_string(),
            });
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            ConsoleRejection::InvalidForm {
                detail: format!("cannot read the form: {e}"),
            }
        })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(ConsoleForm)
            .map_err(|e| ConsoleRejection::InvalidForm {
                detail: format!("the form does not fit: {e}"),
            })
    }
}

/// How a badge or notice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Active, delivered, in sync.
    Good,
    /// Pending, retrying, close to a limit.
    Warning,
    /// Revoked, failed, blocked.
    Bad,
    /// Anything else.
    Neutral,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Warning => "warning",
            Tone::Bad => "bad",
            Tone::Neutral => "neutral",
        }
    }
}

/// A status badge: `<span class="badge good">active</span>`.
pub fn badge(tone: Tone, text: &str) -> Markup {
    html! { span class={ "badge " (tone.class()) } { (text) } }
}

/// A sentence about what just happened or what is wrong, in a coloured box.
pub fn notice(tone: Tone, text: &str) -> Markup {
    html! { div class={ "notice " (tone.class()) } role="status" { (text) } }
}

/// A capacity bar: how much of `capacity` bytes is used, and the words "8 192 of 32 768 bytes
/// free". Turns amber below a quarter free and red below a tenth.
pub fn capacity_bar(free: u64, capacity: u64) -> Markup {
    let free = free.min(capacity);
    let used = capacity - free;
    html! {
        div.capacity {
            meter min="0" max=(capacity) value=(used)
                low=(capacity * 3 / 4) high=(capacity * 9 / 10) optimum="0"
                title={ (group_digits(used)) " bytes used" } {}
            span.words {
                (group_digits(free)) " of " (group_digits(capacity)) " bytes free"
            }
        }
    }
}

/// `n` with its digits in groups of three: `32768` → `"32 768"`.
pub fn group_digits(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    // The leading group has 1..=3 digits, every other group 3.
    let lead = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        short => short,
    };
    let (first, rest) = digits.split_at(lead);
    let mut out: String = first.iter().collect();
    for group in rest.chunks(3) {
        out.push(' ');
        out.extend(group);
    }
    out
}

/// A time for people: `"2027-01-15 09:30 UTC"`.
pub fn utc(t: pki::UnixTime) -> String {
    let days = t.0 / 86_400;
    let seconds = t.0 % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60
    )
}

/// A time that stays on one line (in tables): [`utc`] in `<span class="num">`.
pub fn timestamp(t: UnixTime) -> Markup {
    html! { span.num { (utc(t)) } }
}

/// [`timestamp`], or a muted dash when there is none (not yet delivered, never a member).
pub fn timestamp_or_dash(t: Option<UnixTime>) -> Markup {
    match t {
        Some(t) => timestamp(t),
        None => html! { span.muted { "—" } },
    }
}

/// A party ID that stays on one line (party IDs hold hyphens).
pub fn party_id(id: &PartyId) -> Markup {
    html! { span.num { (id.as_str()) } }
}

/// A long hex identifier (an operation ID, a digest) cut to its first 12 digits and "…",
/// the whole in its `title`: `<code title="00112233445566778899">001122334455…</code>`.
pub fn short_hex(hex: &str) -> Markup {
    const SHOWN: usize = 12;
    let head: String = hex.chars().take(SHOWN).collect();
    let cut = hex.chars().nth(SHOWN).is_some();
    html! { code title=(hex) { (head) @if cut { "…" } } }
}

/// The panel standing for a list with nothing in it, saying why: `<div class="panel empty">`.
pub fn empty_panel(text: &str) -> Markup {
    html! { div.panel.empty { (text) } }
}

/// A size in words, digits grouped: `8192` → `"8 192 bytes"`.
pub fn byte_size(n: u64) -> String {
    format!("{} bytes", group_digits(n))
}

/// `n` things, digits grouped, the noun singular for one: `counted(1, "card", "cards")` →
/// `"1 card"`, `counted(12_480, "card", "cards")` → `"12 480 cards"`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", group_digits(n), if n == 1 { one } else { many })
}

/// A message (a service's, written as a clause) as a sentence: its first letter capitalised,
/// ending with a full stop: `"unknown issuer"` → `"Unknown issuer."`; `""` stays empty.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// `key=value` for the query string of a redirect after a form (`?added=…`): the value
/// percent-encoded, every byte but ASCII letters, digits and `-_.~` (RFC 3986 §2.3) as `%XX`.
pub fn query_pair(key: &str, value: &str) -> String {
    let mut out = format!("{key}=");
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A card's ledger of receipts (each entry the DER of a signed `LedgerEntry`, oldest first),
/// checked: a `#ledger-verdict` saying what [`protocol::verify_ledger`] found with the key of
/// the party keeping the ledger (`keeper_key`, named `keeper` in the verdict: "the issuer",
/// "this provider") and the card's `rc`, or the first entry that cannot be read; then the
/// `#ledger` table, a row per entry (seq, counter, operation, item, result, when recorded),
/// or an empty panel.
pub fn ledger_table<I>(
    entries: I,
    keeper_key: &crypto::VerifyingKey,
    keeper: &str,
    rc: &Certificate,
) -> Markup
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut objects = Vec::new();
    let mut unreadable = None;
    for (index, der) in entries.into_iter().enumerate() {
        match SignedObject::from_der(der.as_ref()) {
            Ok(object) => objects.push(object),
            Err(e) => {
                unreadable = Some(format!("Broken at entry {index}: it cannot be read ({e})."));
                break;
            }
        }
    }
    let verdict = match unreadable {
        Some(words) => notice(Tone::Bad, &words),
        None => match protocol::verify_ledger(&objects, keeper_key, rc) {
            Ok(summary) => notice(
                Tone::Good,
                &format!(
                    "Verified, {}: every entry signed by {keeper}, chained to the one before, \
                     each receipt signed by the card; last counter {}.",
                    counted(summary.entries as u64, "entry", "entries"),
                    group_digits(summary.last_counter)
                ),
            ),
            Err(e) => notice(Tone::Bad, &format!("Broken: {e}.")),
        },
    };
    html! {
        div #ledger-verdict { (verdict) }
        @if objects.is_empty() {
            (empty_panel("No receipts recorded for this card yet."))
        } @else {
            table #ledger {
                thead { tr {
                    th.num { "Seq" } th.num { "Counter" } th { "Operation" } th { "Item" }
                    th { "Result" } th { "Recorded" }
                } }
                tbody {
                    @for object in &objects {
                        @match LedgerRow::of(object) {
                            Some(row) => tr {
                                td.num { (row.seq) }
                                td.num { (group_digits(row.counter)) }
                                td { (row.operation) }
                                td { code { (row.item) } }
                                td { (row.result) }
                                td { (timestamp(row.recorded_at)) }
                            },
                            None => tr { td colspan="6" { "An entry that cannot be read." } },
                        }
                    }
                }
            }
        }
    }
}

/// One ledger entry as [`ledger_table`] shows it.
struct LedgerRow {
    seq: u64,
    counter: u64,
    operation: &'static str,
    item: String,
    result: &'static str,
    recorded_at: UnixTime,
}

impl LedgerRow {
    /// The row of `object`, if it holds a readable entry and receipt (their signatures are
    /// [`protocol::verify_ledger`]'s to check).
    fn of(object: &SignedObject) -> Option<LedgerRow> {
        let entry: LedgerEntry = object.body_unverified().ok()?;
        let receipt: Receipt = entry.receipt.body_unverified().ok()?;
        Some(LedgerRow {
            seq: entry.seq,
            counter: receipt.counter,
            operation: match receipt.operation {
                Operation::Store => "store",
                Operation::Delete => "delete",
            },
            item: hex::encode(receipt.item_id.as_bytes()),
            result: match receipt.result {
                ReceiptResult::Stored => "stored",
                ReceiptResult::Deleted => "deleted",
            },
            recorded_at: entry.recorded_at,
        })
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_csrf_field_of_multipart_bodies() {
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"_csrf\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\x01name=\"_csrf\"\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"_csrf\"\r\n\r\nabc123\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_field(body, "XyZ", "_csrf").as_deref(),
            Some("abc123")
        );
        assert_eq!(multipart_field(body, "XyZ", "other"), None);
        assert_eq!(multipart_field(body, "nope", "_csrf"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=\"XyZ\""),
        );
        assert_eq!(csrf_token_of(&headers, body).as_deref(), Some("abc123"));
        // Truncated or odd bodies do not panic.
        for cut in 0..body.len() {
            let _ = multipart_field(&body[..cut], "XyZ", "_csrf");
        }
    }

    #[test]
    fn finds_the_csrf_field_of_url_encoded_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            csrf_token_of(&headers, b"a=1&_csrf=f00&b=%20").as_deref(),
            Some("f00")
        );
        assert_eq!(csrf_token_of(&headers, b"a=1"), None);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(csrf_token_of(&headers, b"_csrf=f00"), None);
    }

    #[test]
    fn reads_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; cw_console=x"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&headers, "cw_console").as_deref(), Some("x"));
        assert_eq!(cookie_value(&headers, "b").as_deref(), Some("2"));
        assert_eq!(
            session_cookie(&headers, "cw_console"),
            None,
            "not 64 hex digits"
        );
        assert_eq!(
            cookie_name(SESSION_COOKIE, "Issuer <One>"),
            "cw_console-issuer-one"
        );
        assert_eq!(
            cookie_name(SIGN_IN_COOKIE, "issuer-1"),
            "cw_console_signin-issuer-1"
        );
    }

    #[test]
    fn formats_numbers_and_times() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(8192), "8 192");
        assert_eq!(group_digits(32_768), "32 768");
        assert_eq!(group_digits(1_234_567), "1 234 567");
        assert_eq!(utc(pki::UnixTime(0)), "1970-01-01 00:00 UTC");
        assert_eq!(utc(pki::UnixTime(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(utc(pki::UnixTime(1_800_000_000)), "2027-01-15 08:00 UTC");
    }

    #[test]
    fn says_sizes_counts_and_sentences() {
        assert_eq!(byte_size(0), "0 bytes");
        assert_eq!(byte_size(32_768), "32 768 bytes");
        assert_eq!(counted(0, "card", "cards"), "0 cards");
        assert_eq!(counted(1, "card", "cards"), "1 card");
        assert_eq!(counted(2, "entry", "entries"), "2 entries");
        assert_eq!(counted(12_480, "card", "cards"), "12 480 cards");
        assert_eq!(sentence("unknown issuer"), "Unknown issuer.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence("état inconnu"), "État inconnu.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn encodes_query_pairs() {
        assert_eq!(query_pair("added", "a b"), "added=a%20b");
        assert_eq!(query_pair("a", "T p (1)"), "a=T%20p%20%281%29");
        assert_eq!(query_pair("id", "Az09-_.~"), "id=Az09-_.~");
        assert_eq!(query_pair("x", "é&="), "x=%C3%A9%26%3D");
    }

    #[test]
    fn shortens_long_hex_and_keeps_the_whole_in_the_title() {
        assert_eq!(
            short_hex("00112233445566778899").into_string(),
            "<code title=\"00112233445566778899\">001122334455…</code>"
        );
        // Twelve digits or fewer are shown whole, without an ellipsis.
        assert_eq!(
            short_hex("001122334455").into_string(),
            "<code title=\"001122334455\">001122334455</code>"
        );
        assert_eq!(short_hex("").into_string(), "<code title=\"\"></code>");
    }

    #[test]
    fn times_party_ids_and_empty_lists() {
        assert_eq!(
            timestamp(pki::UnixTime(0)).into_string(),
            "<span class=\"num\">1970-01-01 00:00 UTC</span>"
        );
        assert_eq!(
            timestamp_or_dash(Some(pki::UnixTime(0))).into_string(),
            timestamp(pki::UnixTime(0)).into_string()
        );
        assert_eq!(
            timestamp_or_dash(None).into_string(),
            "<span class=\"muted\">—</span>"
        );
        let id = PartyId::new("issuer-1").unwrap();
        assert_eq!(
            party_id(&id).into_string(),
            "<span class=\"num\">issuer-1</span>"
        );
        assert_eq!(
            empty_panel("No cards <yet>.").into_string(),
            "<div class=\"panel empty\">No cards &lt;yet&gt;.</div>"
        );
    }

    /// A registered test card's RC and its receipt of one store of item A0 00.
    fn one_receipt(world: &testkit::world::World) -> (Certificate, SignedObject) {
        let (mut client, rc) = world.registered();
        let data = b"d0";
        let sdi = world.sdi(Operation::Store, &[0xA0, 0x00], 1, data);
        let challenge = protocol::Challenge(client.get_challenge().unwrap());
        let sa = world.sa(testkit::world::Path::ViaIssuer, &sdi, challenge, &rc);
        let receipt = client.store(&sa, None, data).unwrap();
        (rc, receipt)
    }

    #[test]
    fn ledger_table_shows_the_verdict_and_the_entries() {
        let world = testkit::world::World::new(7);
        let (rc, receipt) = one_receipt(&world);
        let issuer = &world.pki.issuer;
        let body: Receipt = receipt.body_unverified().unwrap();
        let entry = LedgerEntry {
            party: issuer.id.clone(),
            card_id: world.card_id,
            seq: 0,
            prev: LedgerEntry::GENESIS_PREV,
            receipt: receipt.clone(),
            view_digest: body.listing_digest,
            recorded_at: pki::UnixTime(1_800_000_000),
        }
        .sign(&issuer.key)
        .to_der();

        let text = ledger_table([&entry], &issuer.public_key(), "the issuer", &rc).into_string();
        for expected in [
            "Verified, 1 entry: every entry signed by the issuer, chained to the one before",
            &format!("last counter {}.", group_digits(body.counter)),
            "<td>store</td><td><code>a000</code></td><td>stored</td>",
            "2027-01-15 08:00 UTC",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(!text.contains("No receipts"), "{text}");

        // Checked with another party's key: broken, the entries still listed.
        let text = ledger_table(
            [&entry],
            &world.pki.provider.public_key(),
            "this provider",
            &rc,
        )
        .into_string();
        assert!(
            text.contains("notice bad") && text.contains("Broken: "),
            "{text}"
        );
        assert!(text.contains("<td>stored</td>"), "{text}");

        // An empty ledger verifies and says there is nothing yet.
        let none: [Vec<u8>; 0] = [];
        let text = ledger_table(none, &issuer.public_key(), "this provider", &rc).into_string();
        assert!(
            text.contains("Verified, 0 entries: every entry signed by this provider"),
            "{text}"
        );
        assert!(
            text.contains("No receipts recorded for this card yet."),
            "{text}"
        );

        // Bytes that are no signed object: broken at that entry, nothing listed after it.
        let text = ledger_table(
            [entry.clone(), b"not DER".to_vec()],
            &issuer.public_key(),
            "the issuer",
            &rc,
        )
        .into_string();
        assert!(
            text.contains("Broken at entry 1: it cannot be read"),
            "{text}"
        );
        assert!(text.contains("<td>stored</td>"), "{text}");
    }

    #[test]
    fn capacity_bar_says_the_numbers() {
        let text = capacity_bar(8192, 32_768).into_string();
        assert!(text.contains("8 192 of 32 768 bytes free"), "{text}");
        assert!(text.contains("value=\"24576\""), "{text}");
        // More free than the capacity reads as all free.
        assert!(capacity_bar(10, 5)
            .into_string()
            .contains("5 of 5 bytes free"));
    }
}
