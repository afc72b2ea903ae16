//! What every server's router gets around its own routes ([`finish`]): `/health`, `/metrics`,
//! JSON 404/405 fallbacks, request ids (`x-request-id`, kept if the client sent one), a request
//! span per request, per-route metrics, and the one place where a 5xx body is replaced by
//! `{"code":"internal","request_id"}` and its cause logged.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::{InternalCause, InternalErrorBody};
use crate::metrics::UNMATCHED_ROUTE;
use crate::{ApiError, Db, Metrics};

/// The request id header, set on every request and echoed on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the kit's own routes and layers need: the server's database and metrics.
#[derive(Debug, Clone)]
pub struct Kit {
    pub db: Db,
    pub metrics: Metrics,
}

/// Wraps a server's routes (already given their state) with the kit's routes and layers.
pub fn finish(api: Router, kit: &Kit) -> Router {
    let kit_routes = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(kit.clone());
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    api.merge(kit_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(conceal_internal))
        .layer(middleware::from_fn_with_state(
            kit.metrics.clone(),
            count_request,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
}

/// The routes [`finish`] adds, for servers' OpenAPI documents and their route checks.
pub const KIT_ROUTES: &[(&str, &str)] = &[("GET", "/health"), ("GET", "/metrics")];

/// Health as `docs/parties.md` specifies: 200 `{"status":"ok","db":"ok"}` when the database
/// answers a trivial query, else 503 with `"db":"error"` (the cause is logged).
async fn health(State(kit): State<Kit>) -> Response {
    match kit.db.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok", "db": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "db": "error"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(kit): State<Kit>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        kit.metrics.render(),
    )
        .into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

fn request_id_of(request: &Request) -> Option<String> {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Replaces a 5xx body with the opaque one and logs the cause under the request id.
async fn conceal_internal(request: Request, next: Next) -> Response {
    let request_id = request_id_of(&request);
    let mut response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), cause = %cause, "internal error");
        let status = response.status();
        return (
            status,
            Json(InternalErrorBody {
                code: "internal".to_string(),
                request_id,
            }),
        )
            .into_response();
    }
    response
}

/// Methods we label by name; anything else is `other`, so odd methods cannot grow the metrics.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn count_request(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    let method = method_label(request.method());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// The span of one request: method, route template, path and request id; never headers
/// (they carry tokens) nor query strings.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or(UNMATCHED_ROUTE);
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = request.uri().path(),
        request_id = request_id_of(request).as_deref().unwrap_or("-"),
    )
}

/// Request ids: 8 random bytes in hex.
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 8];
        crypto::Rng::fill(&mut crypto::OsRng, &mut bytes);
        HeaderValue::from_str(&hex::encode(bytes))
            .ok()
            .map(RequestId::new)
    }
}
