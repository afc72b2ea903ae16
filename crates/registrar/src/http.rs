//! The registrar's HTTP API: handlers that extract → call the service → respond with the JSON
//! types of `party_api::registrar` (DER as lowercase hex), the route table, and the one table
//! from [`ServiceError`] to HTTP status and code. `docs/parties.md` and `GET /openapi.json`
//! describe it.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use crypto::VerifyingKey;
use party_api::registrar::{
    CertificateList, CertificateResponse, CertifiedDataResponse, CertifyDataRequest, CrlResponse,
    IssueRequest, ListQuery, RevocationBody, RevokeRequest, RevokeResponse, RootResponse,
};
use pki::{PartyId, Role, UnixTime};
use protocol::Sdi;
use serde::de::DeserializeOwned;
use server_kit::{
    ApiError, ApiJson, ApiPath, ApiQuery, Counter, Db, Metrics, Operator, PartyRequest, PartyTrust,
};

use crate::service::{Registrar, RegistrarRole, RevocationReason, RevocationResult, ServiceError};
use crate::store::{CertificateRecord, CrlRecord, RevocationRecord};

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registrar: Arc<Registrar>,
    pub db: Db,
    pub issued: Counter,
    pub revoked: Counter,
    pub certified: Counter,
}

impl AppState {
    pub fn new(registrar: Arc<Registrar>, db: Db, metrics: &Metrics) -> AppState {
        AppState {
            registrar,
            db,
            issued: metrics.counter(
                "registrar_certificates_issued_total",
                "Certificates (IRC or DPR) issued.",
            ),
            revoked: metrics.counter(
                "registrar_revocations_total",
                "Certificates revoked (repeated requests not counted).",
            ),
            certified: metrics.counter(
                "registrar_data_certified_total",
                "SDCI' signed for providers (data registrar).",
            ),
        }
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

/// The registrar's routes (method, path template, handler): the router is built from this
/// table and the OpenAPI test checks the document against it.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/v1/root", get(root)),
        (Method::POST, "/v1/certificates", post(issue)),
        (Method::GET, "/v1/certificates", get(list)),
        (Method::GET, "/v1/certificates/{serial}", get(certificate)),
        (Method::POST, "/v1/revocations", post(revoke)),
        (Method::GET, "/v1/crl", get(crl)),
        (Method::POST, "/v1/certified-data", post(certify_data)),
        (Method::GET, "/openapi.json", get(openapi)),
    ]
}

/// The one table from service errors to HTTP.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::UnknownCertificate { .. } => {
                ApiError::not_found("unknown_certificate", error.to_string())
            }
            ServiceError::InvalidNotAfter { .. } => {
                ApiError::bad_request("invalid_not_after", error.to_string())
            }
            ServiceError::SubjectIsRegistrar { .. } => {
                ApiError::bad_request("invalid_subject", error.to_string())
            }
            ServiceError::NotADataRegistrar { .. } => {
                ApiError::not_found("not_a_data_registrar", error.to_string())
            }
            ServiceError::CallerNotProvider { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                "caller_not_provider",
                error.to_string(),
            ),
            ServiceError::CallerNotOwner { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "caller_not_owner", error.to_string())
            }
            ServiceError::NotAStore { .. } | ServiceError::DataMismatch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sdi_mismatch",
                error.to_string(),
            ),
            ServiceError::Store(_)
            | ServiceError::Pki(_)
            | ServiceError::IdentityMismatch { .. }
            | ServiceError::RootKeyMismatch { .. } => ApiError::internal(error),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Issuer => "issuer",
        Role::Provider => "provider",
        Role::IssuerRegistrar => "issuer_registrar",
        Role::DataRegistrar => "data_registrar",
        Role::Card => "card",
    }
}

/// Stored DER is re-parsed for its PEM: one PEM writer (pki's), and a corrupt row shows up as
/// a logged 500 instead of being served.
fn certificate_response(c: &CertificateRecord) -> Result<CertificateResponse, ApiError> {
    let pem = pki::Certificate::from_der(&c.der)
        .map_err(|e| ApiError::internal(format!("stored certificate {}: {e}", c.serial)))?
        .to_pem();
    Ok(CertificateResponse {
        serial: c.serial,
        subject: c.subject.to_string(),
        role: role_name(c.role).to_string(),
        not_before: c.not_before.0,
        not_after: c.not_after.0,
        issued_at: c.issued_at.0,
        certificate: hex::encode(&c.der),
        pem,
        revocation: c.revocation.map(|r: RevocationRecord| RevocationBody {
            reason: r.reason.as_str().to_string(),
            revoked_at: r.revoked_at.0,
        }),
    })
}

fn crl_response(c: &CrlRecord) -> Result<CrlResponse, ApiError> {
    let pem = pki::Crl::from_der(&c.der)
        .map_err(|e| ApiError::internal(format!("stored CRL {}: {e}", c.number)))?
        .to_pem();
    Ok(CrlResponse {
        number: c.number,
        this_update: c.this_update.0,
        next_update: c.next_update.0,
        crl: hex::encode(&c.der),
        pem,
    })
}

// ---- parsing request fields ---------------------------------------------------------------

fn parse_subject(text: &str) -> Result<PartyId, ApiError> {
    PartyId::new(text).map_err(|_| {
        ApiError::bad_request(
            "invalid_subject",
            format!("subject {text:?} is not a party ID (1..=64 of [A-Za-z0-9._-])"),
        )
    })
}

fn parse_public_key(text: &str) -> Result<VerifyingKey, ApiError> {
    let bytes = hex::decode(text).map_err(|e| {
        ApiError::bad_request("invalid_public_key", format!("public_key is not hex: {e}"))
    })?;
    VerifyingKey::from_sec1(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_public_key", format!("public_key: {e}")))
}

fn parse_serial(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|s| *s > 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_serial",
                format!("serial {text:?} is not a positive decimal integer"),
            )
        })
}

fn parse_reason(text: &str) -> Result<RevocationReason, ApiError> {
    RevocationReason::parse(text).ok_or_else(|| {
        let known: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.as_str()).collect();
        ApiError::bad_request(
            "invalid_reason",
            format!("reason {text:?} is not one of {}", known.join(", ")),
        )
    })
}

/// A JSON body read by an extractor that kept the raw bytes (a party request's body is signed
/// as sent): the same codes as `ApiJson`.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "invalid_body",
            format!("the JSON body does not fit the request: {e}"),
        ),
        _ => ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")),
    })
}

fn parse_sdi(text: &str) -> Result<Sdi, ApiError> {
    let der = hex::decode(text)
        .map_err(|e| ApiError::bad_request("invalid_sdi", format!("sdi is not hex: {e}")))?;
    Sdi::from_der(&der).map_err(|e| ApiError::bad_request("invalid_sdi", format!("sdi: {e}")))
}

fn parse_data(text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text)
        .map_err(|e| ApiError::bad_request("invalid_data", format!("data is not hex: {e}")))
}

/// What a party request to this registrar is authenticated against: providers chain to this
/// registrar's own root (it knows no other), checked with the CRL it last published. Built per
/// request, so a revocation committed by any instance counts at once; the issuer anchor is the
/// same root, so an issuer's request (IRC from the Issuer Registrar) cannot authenticate here.
#[derive(Clone)]
struct CallerTrust {
    db: Db,
    trust: PartyTrust,
}

impl FromRef<CallerTrust> for Db {
    fn from_ref(state: &CallerTrust) -> Db {
        state.db.clone()
    }
}

impl FromRef<CallerTrust> for PartyTrust {
    fn from_ref(state: &CallerTrust) -> PartyTrust {
        state.trust.clone()
    }
}

impl CallerTrust {
    async fn of(state: &AppState) -> Result<CallerTrust, ApiError> {
        let registrar = &state.registrar;
        let root = registrar.root().clone();
        let trust = PartyTrust::new(
            registrar.party_id().clone(),
            root.clone(),
            root,
            registrar.clock().clone(),
        );
        trust.set_crls(vec![registrar.published_crl().await?]);
        Ok(CallerTrust {
            db: state.db.clone(),
            trust,
        })
    }
}

// ---- handlers ------------------------------------------------------------------------------

async fn root(State(state): State<AppState>) -> Json<RootResponse> {
    let registrar = &state.registrar;
    let root = registrar.root();
    Json(RootResponse {
        party_id: registrar.party_id().to_string(),
        role: registrar.role().as_str().to_string(),
        serial: root.serial(),
        not_before: root.not_before().0,
        not_after: root.not_after().0,
        certificate: hex::encode(root.der()),
        pem: root.to_pem(),
    })
}

async fn issue(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    let subject = parse_subject(&request.subject)?;
    let public_key = parse_public_key(&request.public_key)?;
    let record = state
        .registrar
        .issue(subject, public_key, request.not_after.map(UnixTime))
        .await?;
    state.issued.increment();
    tracing::info!(
        operator = %operator.name,
        serial = record.serial,
        subject = %record.subject,
        not_after = record.not_after.0,
        "certificate issued"
    );
    Ok((StatusCode::CREATED, Json(certificate_response(&record)?)).into_response())
}

async fn certificate(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
) -> Result<Json<CertificateResponse>, ApiError> {
    let serial = parse_serial(&serial)?;
    let record = state.registrar.certificate(serial).await?;
    Ok(Json(certificate_response(&record)?))
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<CertificateList>, ApiError> {
    let subject = query.subject.as_deref().map(parse_subject).transpose()?;
    let records = state.registrar.certificates(subject.as_ref()).await?;
    Ok(Json(CertificateList {
        certificates: records
            .iter()
            .map(certificate_response)
            .collect::<Result<_, _>>()?,
    }))
}

async fn revoke(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<RevokeRequest>,
) -> Result<Response, ApiError> {
    let reason = parse_reason(&request.reason)?;
    let result: RevocationResult = state.registrar.revoke(request.serial, reason).await?;
    let status = if result.newly_revoked {
        state.revoked.increment();
        tracing::info!(
            operator = %operator.name,
            serial = result.serial,
            reason = reason.as_str(),
            crl_number = result.crl_number,
            "certificate revoked"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(RevokeResponse {
            serial: result.serial,
            reason: result.revocation.reason.as_str().to_string(),
            revoked_at: result.revocation.revoked_at.0,
            newly_revoked: result.newly_revoked,
            crl_number: result.crl_number,
        }),
    )
        .into_response())
}

async fn crl(State(state): State<AppState>) -> Result<Json<CrlResponse>, ApiError> {
    let crl = state.registrar.crl().await?;
    Ok(Json(crl_response(&crl)?))
}

/// SDCI' (SPEC STO-5). The role is checked before authentication: an issuer registrar has no
/// such resource, whoever asks.
async fn certify_data(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let registrar = &state.registrar;
    if registrar.role() != RegistrarRole::DataRegistrar {
        return Err(ServiceError::NotADataRegistrar {
            party: registrar.party_id().clone(),
        }
        .into());
    }
    let party = PartyRequest::from_request(request, &CallerTrust::of(&state).await?).await?;
    let body: CertifyDataRequest = parse_json(&party.body)?;
    let sdi = parse_sdi(&body.sdi)?;
    let data = parse_data(&body.data)?;
    let caller = &party.request.caller;
    let sdci = registrar
        .certify_data(party.request.caller_role, caller, &sdi, &data)
        .await?;
    state.certified.increment();
    tracing::info!(
        provider = %caller,
        item = %hex::encode(sdi.item_id.as_bytes()),
        version = sdi.version,
        size = sdi.size,
        "data certified (SDCI')"
    );
    Ok((
        StatusCode::CREATED,
        Json(CertifiedDataResponse {
            sdci: hex::encode(sdci.to_der()),
        }),
    )
        .into_response())
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_decimals() {
        assert_eq!(parse_serial("42").unwrap(), 42);
        for bad in ["0", "-1", "+1", "x", "", "18446744073709551616", "0x10"] {
            assert_eq!(
                parse_serial(bad).unwrap_err().code,
                "invalid_serial",
                "{bad}"
            );
        }
    }
}
