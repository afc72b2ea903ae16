//! Errors as HTTP responses (docs/parties.md, "Wire conventions"): a 4xx carries
//! `{"code", "message"}` with a stable snake_case code; a 5xx carries only
//! `{"code": "internal", "request_id"}` while its cause goes to the log under that request id
//! (the rewriting happens in `router::conceal_internal`, the one place that sees both), unless
//! the 5xx was built readable ([`ApiError::bad_gateway`], [`ApiError::readable`]). Also the
//! JSON, query and path extractors whose rejections take that shape.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An error a handler returns. Servers build it from their service error in one `From` impl
/// (their one table from error to status). For 5xx, `message` is the cause: logged, never sent,
/// unless the error was made [`ApiError::readable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A 5xx whose body keeps the 4xx shape `{code, message}` instead of being made opaque.
    readable: bool,
}

/// The body of every 4xx response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// The body of every 5xx response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InternalErrorBody {
    pub code: String,
    pub request_id: Option<String>,
}

/// Marks a 5xx response whose body still has to be replaced; carries the cause to log.
#[derive(Debug, Clone)]
pub(crate) struct InternalCause(pub(crate) String);

impl ApiError {
    /// A 4xx (or 5xx) error with a stable `code` and a human `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            readable: false,
        }
    }

    /// 502 with `code` naming the other party and how its call failed (`<party>_refused`,
    /// `<party>_unreachable`). Readable: the caller must learn which party failed, its status
    /// and code, and those are no secret of this server's.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, code, message).readable()
    }

    /// This error with a body of the 4xx shape `{code, message}` even when it is a 5xx (which is
    /// otherwise made opaque): for causes the caller must learn and that are no secret.
    pub fn readable(mut self) -> ApiError {
        self.readable = true;
        self
    }

    /// 400 with `code` naming what was wrong (e.g. `invalid_public_key`).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with `code` naming what was not found (e.g. `unknown_certificate`).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 with `code` naming the conflict.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 401 `unauthenticated`: no credentials, or credentials this server does not know.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`: known credentials that may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 `internal`: `cause` is logged with the request id, the client sees neither.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            cause.to_string(),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.readable {
            if self.status == StatusCode::BAD_GATEWAY {
                tracing::warn!(code = self.code, message = %self.message, "a call to another party failed");
            } else {
                tracing::error!(code = self.code, message = %self.message, "a server error shown to the caller");
            }
        } else if self.status.is_server_error() {
            let mut response = (
                self.status,
                Json(InternalErrorBody {
                    code: "internal".to_string(),
                    request_id: None,
                }),
            )
                .into_response();
            response
                .extensions_mut()
                .insert(InternalCause(self.message));
            return response;
        }
        let mut response = (
            self.status,
            Json(ErrorBody {
                code: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s: 415 `unsupported_media_type` without a
/// JSON content type, 400 `malformed_json` for bad syntax, 400 `invalid_body` when the JSON
/// does not fit the request type (the message names the field), 400 `unreadable_body`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("malformed JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_body",
            format!("the JSON body does not fit the request: {}", e.body_text()),
        ),
        other => ApiError::bad_request(
            "unreadable_body",
            format!("cannot read the request body: {}", other.body_text()),
        ),
    }
}

/// `axum::extract::Query` whose rejection is 400 `invalid_query` naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection: QueryRejection| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("bad query string: {}", rejection.body_text()),
                )
            })
    }
}

/// `axum::extract::Path` whose rejection is 400 `invalid_path` naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request(
                    "invalid_path",
                    format!("bad path parameter: {}", rejection.body_text()),
                )
            })
    }
}
