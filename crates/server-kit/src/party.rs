//! Party request authentication (SEC-3; docs/parties.md, "Authentication"): an issuer or
//! provider calling another party's server sends `Cardwright-Request: <hex DER SignedObject>`,
//! an `ApiRequest` signed with its IRC/DPR over the method, target, body digest, audience, time
//! and a nonce. The [`PartyRequest`] extractor verifies it with `protocol::verify_api_request`
//! against this server's [`PartyTrust`] (registrar roots, CRLs, clock) and then records the
//! nonce in the database, so no instance on that database accepts it twice.

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use pki::{Certificate, Crl, PartyId, UnixTime};
use protocol::{verify_api_request, ApiRequest, ConsentError, ExpectedRequest, SignedObject};

use crate::{on_pool, ApiError, Clock, Db, DbError};

/// The header carrying the signed request.
pub const PARTY_REQUEST_HEADER: &str = "cardwright-request";
/// The largest body a party request may carry (it is read whole to check its digest).
pub const MAX_PARTY_REQUEST_BODY: usize = 2 * 1024 * 1024;

/// What a server trusts when authenticating party requests: who it is (the audience), the two
/// registrar roots, the registrars' current CRLs, and its clock. Clones share the CRLs.
#[derive(Debug, Clone)]
pub struct PartyTrust {
    pub audience: PartyId,
    pub issuer_anchor: Certificate,
    pub data_anchor: Certificate,
    pub clock: Arc<dyn Clock>,
    pub max_skew_s: u64,
    crls: Arc<RwLock<Vec<Crl>>>,
}

impl PartyTrust {
    /// Trust with no CRLs yet and the ±300 s skew window of docs/parties.md.
    pub fn new(
        audience: PartyId,
        issuer_anchor: Certificate,
        data_anchor: Certificate,
        clock: Arc<dyn Clock>,
    ) -> PartyTrust {
        PartyTrust {
            audience,
            issuer_anchor,
            data_anchor,
            clock,
            max_skew_s: ExpectedRequest::DEFAULT_MAX_SKEW_S,
            crls: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// Replaces the CRLs used from the next request on (the server fetches them from the
    /// registrars; `verify_chain` refuses any that does not verify under its issuer).
    pub fn set_crls(&self, crls: Vec<Crl>) {
        *self.crls.write().unwrap_or_else(|p| p.into_inner()) = crls;
    }

    pub fn crls(&self) -> Vec<Crl> {
        self.crls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Db {
    /// Records that `caller` used `nonce` (kept until `expires_at`, after which the request is
    /// stale anyway); false if it had been used. Expired nonces are purged on the way.
    pub async fn accept_nonce(
        &self,
        caller: &PartyId,
        nonce: &[u8],
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, DbError> {
        let nonce = hex::encode(nonce);
        let expires_at = i64::try_from(expires_at.0).unwrap_or(i64::MAX);
        let now = i64::try_from(now.0).unwrap_or(i64::MAX);
        const PURGE: &str = "DELETE FROM party_request_nonces WHERE expires_at < $1";
        const INSERT: &str = "INSERT INTO party_request_nonces (caller, nonce, expires_at) \
                              VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        let inserted = on_pool!(self, |pool| {
            sqlx::query(PURGE).bind(now).execute(pool).await?;
            sqlx::query(INSERT)
                .bind(caller.as_str())
                .bind(&nonce)
                .bind(expires_at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted == 1)
    }
}

/// An authenticated party request: the verified [`ApiRequest`] (caller, role, …) and the body
/// bytes its digest covers (parse them with [`PartyRequest::json`]). Refusals are 401:
/// `request_stale` when `issued_at` is outside the skew window, `request_replayed` for a nonce
/// already accepted, `unauthenticated` for everything else (missing or malformed header, chain,
/// signature, method, target, body or audience mismatch); 400 `unreadable_body` /
/// 413 `body_too_large` when the body cannot be read.
#[derive(Debug, Clone)]
pub struct PartyRequest {
    pub request: ApiRequest,
    pub body: Bytes,
}

impl PartyRequest {
    /// The JSON body (the bytes the signature covers), with `ApiJson`'s codes: 400
    /// `malformed_json`, `invalid_body`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            if e.is_data() {
                ApiError::bad_request(
                    "invalid_body",
                    format!("the JSON body does not fit the request: {e}"),
                )
            } else {
                ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
            }
        })
    }
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::unauthenticated(message)
}

impl<S> FromRequest<S> for PartyRequest
where
    Db: FromRef<S>,
    PartyTrust: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<PartyRequest, ApiError> {
        let (parts, body) = request.into_parts();
        let header = parts
            .headers
            .get(PARTY_REQUEST_HEADER)
            .ok_or_else(|| unauthenticated("a party request needs a Cardwright-Request header"))?;
        let object = header
            .to_str()
            .ok()
            .and_then(|text| hex::decode(text.trim()).ok())
            .ok_or_else(|| unauthenticated("the Cardwright-Request header is not hex"))
            .and_then(|der| {
                SignedObject::from_der(&der)
                    .map_err(|e| unauthenticated(format!("the Cardwright-Request header: {e}")))
            })?;
        let declared_len = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_len.is_some_and(|len| len > MAX_PARTY_REQUEST_BODY as u64) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("party request bodies are at most {MAX_PARTY_REQUEST_BODY} bytes"),
            ));
        }
        // A body streamed without Content-Length that exceeds the limit ends up here too.
        let body = axum::body::to_bytes(body, MAX_PARTY_REQUEST_BODY)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    "unreadable_body",
                    format!("cannot read the body (at most {MAX_PARTY_REQUEST_BODY} bytes): {e}"),
                )
            })?;
        let target = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or_else(|| parts.uri.path());
        let trust = PartyTrust::from_ref(state);
        let crls = trust.crls();
        let now = trust.clock.now();
        let expected = ExpectedRequest {
            method: parts.method.as_str(),
            path: target,
            body: &body,
            audience: &trust.audience,
            issuer_anchor: &trust.issuer_anchor,
            data_anchor: &trust.data_anchor,
            crls: &crls,
            now,
            max_skew_s: trust.max_skew_s,
        };
        let request = verify_api_request(&object, &expected).map_err(|e| match e {
            ConsentError::RequestStale { .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, "request_stale", e.to_string())
            }
            other => unauthenticated(format!("party request refused: {other}")),
        })?;
        let expires_at = UnixTime(request.issued_at.0.saturating_add(trust.max_skew_s));
        let fresh = Db::from_ref(state)
            .accept_nonce(&request.caller, &request.nonce.0, expires_at, now)
            .await
            .map_err(ApiError::internal)?;
        if !fresh {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "request_replayed",
                format!("{} already used this request's nonce", request.caller),
            ));
        }
        Ok(PartyRequest { request, body })
    }
}
