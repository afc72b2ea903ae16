//! The issuer's HTTP API: handlers that extract → call the service → respond with the JSON
//! types of `party_api::issuer` (DER objects and binary values as lowercase hex), the route
//! table, and the one table from [`ServiceError`] to HTTP status and code. `docs/parties.md`
//! and `GET /openapi.json` describe it. Issue 4's routes are in `http/download.rs`.

mod download;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Json;
use party_api::issuer::{
    CardResponse, ChallengeResponse, ContentsResponse, CrlResponse, CrlSummary, CrlsResponse,
    DelegationRequest, DelegationResponse, GrantRequest, GrantResponse, IdentityResponse, ItemBody,
    LedgerResponse, PersonalisationResponse, PersonaliseRequest, ProviderRequest, ProviderResponse,
    ReceiptRequest, ReceiptResponse, ReconcileRequest, ReconcileResponse, RegistrationRequest,
    RegistrationResponse, RegistrationSummary, RequestRequest, RequestResponse, RevocationSummary,
    RevokeCardRequest, RevokeCardResponse,
};
use pki::{CardId, Certificate, Crl, PartyId, UnixTime};
use protocol::{
    Challenge, ConsentError, ItemPrefix, ListedItem, Operation, OperationSet, ProtocolError, Sdi,
    SignedObject,
};
use serde::Serialize;
use server_kit::{
    ApiError, ApiJson, ApiPath, Counter, Db, Metrics, Operator, PartyRequest, PartyTrust,
};

use crate::notify::Notifier;
use crate::provider_link::LinkError;
use crate::registrar_crls::{CrlFetchError, CrlOrigin, RegistrarCrls};
use crate::service::{
    Caller, DelegationOrder, Ingested, Issuer, PersonalisationOrder, ServiceError,
};
use crate::store::{ProviderPolicy, ProviderStatus, ProviderUrl, RevocationReason};

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub issuer: Arc<Issuer>,
    /// The registrars' CRLs; the router holding it keeps their background refresh running.
    pub crls: Arc<RegistrarCrls>,
    /// The member notifier; the router holding it keeps it running.
    pub notifier: Arc<Notifier>,
    pub db: Db,
    pub cards_personalised: Counter,
    pub cards_registered: Counter,
    pub authorizations_signed: Counter,
    pub receipts_ingested: Counter,
    pub cards_revoked: Counter,
    pub downloads_opened: Counter,
}

impl AppState {
    pub fn new(
        issuer: Arc<Issuer>,
        crls: Arc<RegistrarCrls>,
        notifier: Arc<Notifier>,
        db: Db,
        metrics: &Metrics,
    ) -> AppState {
        AppState {
            issuer,
            crls,
            notifier,
            db,
            cards_personalised: metrics.counter(
                "issuer_cards_personalised_total",
                "Personalisation records made.",
            ),
            cards_registered: metrics
                .counter("issuer_cards_registered_total", "RCs issued (REG-2)."),
            authorizations_signed: metrics.counter(
                "issuer_authorizations_signed_total",
                "SAs (STO-2) and SARs (STO-1) signed.",
            ),
            receipts_ingested: metrics.counter(
                "issuer_receipts_ingested_total",
                "Card receipts recorded in a ledger (repeats not counted).",
            ),
            cards_revoked: metrics.counter(
                "issuer_cards_revoked_total",
                "Cards' RCs revoked (REG-3; repeats not counted).",
            ),
            downloads_opened: metrics.counter(
                "issuer_downloads_opened_total",
                "Download operations opened (S10; repeats not counted).",
            ),
        }
    }

    /// Counts a receipt recorded now and, when it installed a download, wakes the notifier
    /// for its member notification.
    fn receipt_recorded(&self, ingested: &Ingested) {
        if ingested.newly_recorded {
            self.receipts_ingested.increment();
            if ingested.operation.is_some() {
                self.notifier.wake();
            }
        }
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

impl FromRef<AppState> for PartyTrust {
    fn from_ref(state: &AppState) -> PartyTrust {
        state.issuer.party_trust().clone()
    }
}

/// The issuer's routes (method, path template, handler): the router is built from this table
/// and the OpenAPI test checks the document against it.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/v1/issuer", get(identity)),
        (Method::POST, "/v1/cards", post(personalise)),
        (Method::GET, "/v1/cards/{card_id}", get(card)),
        (
            Method::POST,
            "/v1/cards/{card_id}/challenge",
            post(challenge),
        ),
        (
            Method::POST,
            "/v1/cards/{card_id}/registration",
            post(register),
        ),
        (Method::GET, "/v1/cards/{card_id}/contents", get(contents)),
        (Method::GET, "/v1/cards/{card_id}/ledger", get(ledger)),
        (
            Method::POST,
            "/v1/cards/{card_id}/reconcile",
            post(reconcile),
        ),
        (
            Method::POST,
            "/v1/cards/{card_id}/revocation",
            post(revoke_card),
        ),
        (Method::GET, "/v1/crl", get(crl)),
        (Method::PUT, "/v1/providers/{provider}", put(put_provider)),
        (Method::GET, "/v1/providers/{provider}", get(provider)),
        (Method::POST, "/v1/authorizations/grant", post(grant)),
        (Method::POST, "/v1/authorizations/request", post(request)),
        (Method::POST, "/v1/delegations", post(delegate)),
        (Method::POST, "/v1/receipts", post(receipt)),
        (Method::GET, "/v1/crls", get(crls)),
        (Method::POST, "/v1/crls/refresh", post(refresh_crls)),
        (
            Method::POST,
            "/v1/applications",
            // The code travels as hex: up to 2 MiB of it, and the other fields.
            post(download::add_application).layer(DefaultBodyLimit::max(
                2 * crate::download::MAX_CODE_LEN + 64 * 1024,
            )),
        ),
        (Method::GET, "/v1/applications", get(download::applications)),
        (
            Method::GET,
            "/v1/applications/{aid}",
            get(download::application),
        ),
        (
            Method::POST,
            "/v1/cards/{card_id}/checks",
            post(download::check),
        ),
        (
            Method::POST,
            "/v1/cards/{card_id}/checks/{nonce}",
            post(download::standing),
        ),
        (
            Method::GET,
            "/v1/cards/{card_id}/registry",
            get(download::registry),
        ),
        (Method::POST, "/v1/downloads", post(download::open_download)),
        (Method::GET, "/v1/downloads", get(download::downloads)),
        (
            Method::GET,
            "/v1/downloads/{operation_id}",
            get(download::download),
        ),
        (
            Method::POST,
            "/v1/downloads/{operation_id}/authorizations",
            post(download::authorize_download),
        ),
        (
            Method::GET,
            "/v1/downloads/{operation_id}/package",
            get(download::package),
        ),
        (
            Method::POST,
            "/v1/downloads/{operation_id}/receipt",
            post(download::download_receipt),
        ),
        (
            Method::GET,
            "/v1/notifications",
            get(download::notifications),
        ),
        (
            Method::POST,
            "/v1/notifications/{operation_id}/retry",
            post(download::retry_notification),
        ),
        (Method::GET, "/openapi.json", get(openapi)),
    ]
}

/// Whether a refused signed object could not even be read (400) rather than read and refused
/// on verification (422).
fn unreadable(error: &ConsentError) -> bool {
    matches!(
        error,
        ConsentError::Object(ProtocolError::Malformed { .. } | ProtocolError::InvalidField { .. })
    )
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// A party-signed consent (a provider's SAR or SA) refused: 400 `object_code` if unreadable,
/// else 422 with the shared code saying why (docs/parties.md, "Wire conventions").
fn consent_refused(error: &ConsentError, object_code: &'static str, message: String) -> ApiError {
    if unreadable(error) {
        return ApiError::bad_request(object_code, message);
    }
    let code = match error {
        ConsentError::Object(ProtocolError::WrongPurpose { .. }) => "wrong_purpose",
        ConsentError::Object(
            ProtocolError::BadSignature { .. } | ProtocolError::UnsupportedAlgorithm { .. },
        )
        | ConsentError::Certificate { .. }
        | ConsentError::MissingChain { .. }
        | ConsentError::NotTheRegistrar { .. }
        | ConsentError::WrongSigner { .. } => "untrusted_signer",
        ConsentError::Expired { .. } | ConsentError::InvalidValidity { .. } => {
            "authorization_expired"
        }
        ConsentError::RcMismatch { .. } => "rc_mismatch",
        ConsentError::SdiMismatch { .. } | ConsentError::SdiDigestMismatch { .. } => "sdi_mismatch",
        _ => object_code,
    };
    unprocessable(code, message)
}

/// A card-signed object (registration information, receipt, listing) refused: 400 if
/// unreadable, 422 `wrong_purpose` for another kind of object, else 422 `object_code` (the
/// card's own key signs it: there is no party signer to distrust).
fn card_object_refused(
    error: &ConsentError,
    object_code: &'static str,
    message: String,
) -> ApiError {
    match error {
        e if unreadable(e) => ApiError::bad_request(object_code, message),
        ConsentError::Object(ProtocolError::WrongPurpose { .. }) => {
            unprocessable("wrong_purpose", message)
        }
        _ => unprocessable(object_code, message),
    }
}

/// A card-signed download application refused (docs/app-download.md §3): 400 if it cannot be
/// read, else 422 with the code naming why.
fn download_application_refused(error: &protocol::DownloadError, message: String) -> ApiError {
    use protocol::DownloadError;
    let code = match error {
        DownloadError::Malformed(
            ProtocolError::Malformed { .. } | ProtocolError::InvalidField { .. },
        ) => return ApiError::bad_request("invalid_download_application", message),
        DownloadError::NotCardCertificate { .. } => {
            return ApiError::bad_request("invalid_rc", message)
        }
        DownloadError::WrongPurpose { .. } => "wrong_purpose",
        DownloadError::WrongCard { .. } => "card_mismatch",
        DownloadError::WrongIssuer { .. } => "wrong_issuer",
        DownloadError::Expired { .. } => "application_expired",
        DownloadError::BadSignature | DownloadError::Malformed(_) => "invalid_download_application",
    };
    unprocessable(code, message)
}

/// The one table from service errors to HTTP: 400 unreadable input, 403 policy, 404 unknown
/// things, 409 state conflicts, 422 signed objects refused on verification.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let message = error.to_string();
        let conflict = |code| ApiError::conflict(code, message.clone());
        let bad = |code| ApiError::bad_request(code, message.clone());
        let refused = |code| unprocessable(code, message.clone());
        match error {
            ServiceError::UnknownCard { .. } => ApiError::not_found("unknown_card", message),
            ServiceError::UnknownChallenge { .. } => {
                ApiError::not_found("unknown_challenge", message)
            }
            ServiceError::UnknownSdi { .. } => ApiError::not_found("unknown_sdi", message),
            ServiceError::CardNotRegistered { .. } => conflict("card_not_registered"),
            ServiceError::AlreadyRegistered { .. } => conflict("already_registered"),
            ServiceError::RegistrationExpired { .. } => conflict("registration_expired"),
            ServiceError::RegistrationRevoked { .. } => conflict("registration_revoked"),
            ServiceError::InvalidPin { .. } => bad("invalid_pin"),
            ServiceError::InvalidPinTryLimit { .. } => bad("invalid_pin_try_limit"),
            ServiceError::InvalidNotAfter { .. } => bad("invalid_not_after"),
            // The request's SDI (a plain field) names another card than the request.
            ServiceError::CardMismatch { object: "Sdi", .. } => bad("card_mismatch"),
            // The card's signed registration answers another card's challenge or names
            // another card than the path.
            ServiceError::ChallengeForOtherCard { .. } | ServiceError::CardMismatch { .. } => {
                refused("card_mismatch")
            }
            ServiceError::ChallengeSpent { .. } => conflict("challenge_spent"),
            ServiceError::ChallengeExpired { .. } => conflict("challenge_expired"),
            ServiceError::InvalidRegistration(e) => {
                card_object_refused(&e, "invalid_registration", message)
            }
            ServiceError::InvalidReceipt(e) => card_object_refused(&e, "invalid_receipt", message),
            ServiceError::InvalidListing(e) => card_object_refused(&e, "invalid_listing", message),
            ServiceError::InvalidSar(e) => consent_refused(&e, "invalid_sar", message),
            ServiceError::SarNotAcceptable { .. } => refused("invalid_sar"),
            ServiceError::Expired { .. } => refused("authorization_expired"),
            ServiceError::RcMismatch { .. } => refused("rc_mismatch"),
            ServiceError::SdiMismatch { .. } => refused("sdi_mismatch"),
            ServiceError::ProviderCertificateRefused { .. } => refused("untrusted_signer"),
            ServiceError::ProviderCertificateMismatch { .. } => {
                refused("invalid_provider_certificate")
            }
            ServiceError::InvalidProviderUrl { .. } => bad("invalid_url"),
            ServiceError::ProviderUrlMissing { .. } => conflict("provider_unreachable"),
            ServiceError::ProviderCall(
                LinkError::Refused { .. } | LinkError::InvalidAnswer { .. },
            )
            | ServiceError::ProviderSaRefused { .. }
            | ServiceError::ProviderSaNotOurs { .. } => {
                ApiError::bad_gateway("provider_refused", message)
            }
            ServiceError::ProviderCall(
                LinkError::Unreachable { .. } | LinkError::UnusableUrl { .. },
            ) => ApiError::bad_gateway("provider_unreachable", message),
            ServiceError::ProviderCall(LinkError::Request { .. }) => ApiError::internal(error),
            ServiceError::CallerNotRequester { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "caller_not_requester", message)
            }
            ServiceError::ProviderNotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "provider_not_allowed", message)
            }
            ServiceError::QuotaExceeded { .. } => conflict("quota_exceeded"),
            ServiceError::AuthorizationReplayed { .. } => conflict("authorization_replayed"),
            ServiceError::ReceiptGap { .. } => conflict("receipt_gap"),
            ServiceError::ReceiptOutOfOrder { .. } => conflict("receipt_out_of_order"),
            // Readable: the caller must learn the issuer's IRC is revoked; it is no secret.
            ServiceError::IssuerRevoked { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "issuer_revoked", message).readable()
            }
            ServiceError::InvalidAid { .. } => bad("invalid_aid"),
            ServiceError::InvalidCode { .. } => bad("invalid_code"),
            ServiceError::InvalidPolicy { .. } => bad("invalid_policy"),
            ServiceError::InvalidApplicationText { field: "name", .. } => bad("invalid_name"),
            ServiceError::InvalidApplicationText { .. } => bad("invalid_description"),
            ServiceError::UnknownProvider { .. } => refused("unknown_provider"),
            ServiceError::ApplicationVersionExists { .. } => conflict("application_version_exists"),
            ServiceError::UnknownApplication { .. } => {
                ApiError::not_found("unknown_application", message)
            }
            ServiceError::UnknownNonce { .. } => ApiError::not_found("unknown_nonce", message),
            ServiceError::NonceSpent { .. } => conflict("nonce_spent"),
            ServiceError::TooManyChecks { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_checks", message)
            }
            ServiceError::NonceExpired { .. } => conflict("nonce_expired"),
            ServiceError::InvalidDownloadApplication(e) => {
                download_application_refused(&e, message)
            }
            ServiceError::RcNotRegistered { .. } => refused("rc_mismatch"),
            ServiceError::ApplicationMismatch { .. } => refused("application_mismatch"),
            ServiceError::OperationConflict { .. } => refused("operation_conflict"),
            ServiceError::RegistryOutOfSync { .. } => conflict("registry_out_of_sync"),
            ServiceError::AlreadyInstalled { .. } | ServiceError::OperationInstalled { .. } => {
                conflict("already_installed")
            }
            ServiceError::DownloadInProgress { .. } => conflict("download_in_progress"),
            ServiceError::InsufficientCapacity { .. } => conflict("insufficient_capacity"),
            ServiceError::UnknownOperation { .. } => {
                ApiError::not_found("unknown_operation", message)
            }
            ServiceError::TooManyAttempts { .. }
            | ServiceError::TooManyUnansweredAttempts { .. } => conflict("too_many_attempts"),
            ServiceError::DownloadApplicationExpired { .. } => conflict("application_expired"),
            ServiceError::ReceiptNotForOperation { .. } => refused("receipt_not_for_operation"),
            ServiceError::UnknownNotification { .. } => {
                ApiError::not_found("unknown_notification", message)
            }
            ServiceError::NotificationDelivered { .. } => conflict("already_delivered"),
            ServiceError::IdentityMismatch { .. }
            | ServiceError::Contention { .. }
            | ServiceError::AttemptContention { .. }
            | ServiceError::Store(_)
            | ServiceError::Pki(_)
            | ServiceError::StoredObject(_) => ApiError::internal(error),
        }
    }
}

/// 409 without registrars to ask; 502 naming the registrars that failed (unreachable when
/// one did not answer at all, else refused).
impl From<CrlFetchError> for ApiError {
    fn from(error: CrlFetchError) -> ApiError {
        let message = error.to_string();
        match &error {
            CrlFetchError::NoRegistrars => ApiError::conflict("no_registrars", message),
            CrlFetchError::Failed { failures } => {
                let code = if failures.iter().all(|f| f.answered()) {
                    "registrar_refused"
                } else {
                    "registrar_unreachable"
                };
                ApiError::bad_gateway(code, message)
            }
        }
    }
}

// ---- parsing request fields ---------------------------------------------------------------

fn parse_hex(code: &'static str, field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text).map_err(|e| ApiError::bad_request(code, format!("{field} is not hex: {e}")))
}

fn parse_card_id(text: &str) -> Result<CardId, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| CardId::from_slice(&b))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_card_id",
                format!("card ID {text:?} is not 16 bytes of hex"),
            )
        })
}

fn parse_party(code: &'static str, text: &str) -> Result<PartyId, ApiError> {
    PartyId::new(text).map_err(|_| {
        ApiError::bad_request(
            code,
            format!("{text:?} is not a party ID (1..=64 of [A-Za-z0-9._-])"),
        )
    })
}

fn parse_object(code: &'static str, field: &str, text: &str) -> Result<SignedObject, ApiError> {
    let der = parse_hex(code, field, text)?;
    SignedObject::from_der(&der)
        .map_err(|e| ApiError::bad_request(code, format!("{field} is not a signed object: {e}")))
}

fn parse_sdi(text: &str) -> Result<Sdi, ApiError> {
    let der = parse_hex("invalid_sdi", "sdi", text)?;
    Sdi::from_der(&der).map_err(|e| ApiError::bad_request("invalid_sdi", format!("sdi: {e}")))
}

fn parse_challenge(text: &str) -> Result<Challenge, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(Challenge)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_challenge",
                format!("challenge {text:?} is not 16 bytes of hex"),
            )
        })
}

fn parse_operations(names: &[String]) -> Result<OperationSet, ApiError> {
    let invalid = |m: String| ApiError::bad_request("invalid_operations", m);
    let operations = names
        .iter()
        .map(|n| match n.as_str() {
            "store" => Ok(Operation::Store),
            "delete" => Ok(Operation::Delete),
            other => Err(invalid(format!(
                "operation {other:?} is not store or delete"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    OperationSet::from_slice(&operations).map_err(|e| invalid(e.to_string()))
}

fn item_body(item: &ListedItem) -> ItemBody {
    ItemBody {
        item_id: hex::encode(item.item_id.as_bytes()),
        version: item.version,
        size: item.size,
        data_digest: hex::encode(item.data_digest.0),
        owner: item.owner.to_string(),
        policy: item.policy.bits(),
    }
}

fn provider_response(p: &ProviderPolicy) -> ProviderResponse {
    ProviderResponse {
        provider: p.provider.to_string(),
        status: p.status.as_str().to_string(),
        quota_bytes: p.quota_bytes,
        updated_at: p.updated_at.0,
        url: p.url.as_ref().map(|u| u.to_string()),
    }
}

fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

// ---- handlers ------------------------------------------------------------------------------

async fn identity(State(state): State<AppState>) -> Json<IdentityResponse> {
    Json(IdentityResponse {
        party_id: state.issuer.party_id().to_string(),
        irc: hex::encode(state.issuer.irc().der()),
        public_key: hex::encode(state.issuer.public_key().to_sec1()),
    })
}

async fn personalise(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<PersonaliseRequest>,
) -> Result<Response, ApiError> {
    let order = PersonalisationOrder {
        pin: request.pin,
        pin_try_limit: request.pin_try_limit.unwrap_or(3),
        capacity: request.capacity.unwrap_or(32 * 1024),
    };
    let p = state.issuer.personalise(order, &operator.name).await?;
    state.cards_personalised.increment();
    // Never log Sk, the PIN or its salt.
    tracing::info!(operator = %operator.name, card_id = %p.card.card_id, "card personalisation record made");
    Ok(created(PersonalisationResponse {
        card_id: p.card.card_id.to_hex(),
        sk: hex::encode(p.sk.expose_bytes()),
        sk_version: p.card.sk_version,
        issuer_anchor: hex::encode(p.issuer_anchor.der()),
        data_anchor: hex::encode(p.data_anchor.der()),
        issuer: p.issuer.to_string(),
        pin: p.pin,
        pin_salt: hex::encode(p.card.pin_salt),
        pin_try_limit: p.card.pin_try_limit,
        issuer_authenticator: hex::encode(&p.card.issuer_authenticator),
        capacity: p.card.capacity,
        time_floor: p.card.personalised_at.0,
    }))
}

async fn card(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Json<CardResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let found = state.issuer.card(&card_id).await?;
    let card = found.card;
    let registration = match found.registration {
        None => None,
        Some(r) => {
            let rc = Certificate::from_der(&r.rc_der).map_err(ServiceError::from)?;
            Some(RegistrationSummary {
                serial: r.serial,
                user_id: r.user_id,
                registered_at: r.registered_at.0,
                rc: hex::encode(&r.rc_der),
                not_after: rc.not_after().0,
                revocation: found.revocation.map(|v| RevocationSummary {
                    reason: v.reason.as_str().to_string(),
                    revoked_at: v.revoked_at.0,
                }),
            })
        }
    };
    Ok(Json(CardResponse {
        card_id: card.card_id.to_hex(),
        status: if registration.is_some() {
            "registered"
        } else {
            "personalised"
        }
        .to_string(),
        capacity: card.capacity,
        personalised_at: card.personalised_at.0,
        registration,
    }))
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

/// REG-3: revokes the card's RC (a lost or stolen card); 201 when revoked now, 200 when it
/// was revoked before.
async fn revoke_card(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(card_id): ApiPath<String>,
    ApiJson(request): ApiJson<RevokeCardRequest>,
) -> Result<Response, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let reason = parse_reason(&request.reason)?;
    let result = state
        .issuer
        .revoke_card(&card_id, reason, &operator.name)
        .await?;
    let status = if result.newly_revoked {
        state.cards_revoked.increment();
        tracing::warn!(
            operator = %operator.name,
            card_id = %card_id,
            serial = result.revocation.serial,
            reason = reason.as_str(),
            crl_number = result.crl_number,
            "card's RC revoked"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let revocation = result.revocation;
    Ok((
        status,
        Json(RevokeCardResponse {
            card_id: card_id.to_hex(),
            serial: revocation.serial,
            reason: revocation.reason.as_str().to_string(),
            revoked_at: revocation.revoked_at.0,
            crl_number: result.crl_number,
            newly_revoked: result.newly_revoked,
        }),
    )
        .into_response())
}

/// The current CRL of the issuer's RCs, signed with its key (REG-3).
async fn crl(State(state): State<AppState>) -> Result<Json<CrlResponse>, ApiError> {
    let record = state.issuer.crl().await?;
    let crl = Crl::from_der(&record.der).map_err(ServiceError::from)?;
    Ok(Json(CrlResponse {
        number: record.number,
        this_update: record.this_update.0,
        next_update: record.next_update.0,
        crl: hex::encode(&record.der),
        pem: crl.to_pem(),
    }))
}

async fn challenge(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let record = state.issuer.registration_challenge(&card_id).await?;
    Ok(created(ChallengeResponse {
        card_id: card_id.to_hex(),
        challenge: hex::encode(record.challenge.0),
        expires_at: record.expires_at.0,
    }))
}

async fn register(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
    ApiJson(request): ApiJson<RegistrationRequest>,
) -> Result<Response, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let registration = parse_object(
        "invalid_registration",
        "registration",
        &request.registration,
    )?;
    let rc = state.issuer.register(&card_id, &registration).await?;
    state.cards_registered.increment();
    tracing::info!(card_id = %card_id, serial = rc.serial(), "card registered");
    Ok(created(RegistrationResponse {
        rc: hex::encode(rc.der()),
        irc: hex::encode(state.issuer.irc().der()),
        serial: rc.serial(),
        not_before: rc.not_before().0,
        not_after: rc.not_after().0,
    }))
}

async fn contents(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Json<ContentsResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let (view, capacity) = state.issuer.contents(&card_id).await?;
    let free = crate::service::free_of(&view.items, capacity);
    let view_digest = crate::service::view_digest(&view.items, capacity)?;
    Ok(Json(ContentsResponse {
        card_id: card_id.to_hex(),
        last_counter: view.last_counter,
        capacity,
        free,
        items: view.items.iter().map(item_body).collect(),
        view_digest: hex::encode(view_digest.0),
    }))
}

async fn ledger(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Json<LedgerResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let (registration, entries) = state.issuer.ledger(&card_id).await?;
    Ok(Json(LedgerResponse {
        card_id: card_id.to_hex(),
        rc: hex::encode(&registration.rc_der),
        entries: entries.iter().map(hex::encode).collect(),
    }))
}

async fn reconcile(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
    ApiJson(request): ApiJson<ReconcileRequest>,
) -> Result<Json<ReconcileResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let listing = parse_object("invalid_listing", "listing", &request.listing)?;
    let nonce = parse_hex("invalid_nonce", "nonce", &request.nonce).and_then(|b| {
        protocol::Nonce::new(&b).map_err(|e| ApiError::bad_request("invalid_nonce", e.to_string()))
    })?;
    let r = state.issuer.reconcile(&card_id, &listing, &nonce).await?;
    if !r.in_sync {
        tracing::warn!(
            card_id = %card_id,
            card_counter = r.card_counter,
            issuer_counter = r.issuer_counter,
            "the issuer's view differs from the card's listing"
        );
    }
    let items = |items: &[ListedItem]| items.iter().map(item_body).collect();
    Ok(Json(ReconcileResponse {
        card_id: card_id.to_hex(),
        in_sync: r.in_sync,
        card_counter: r.card_counter,
        issuer_counter: r.issuer_counter,
        only_on_card: items(&r.only_on_card),
        only_in_view: items(&r.only_in_view),
        differing: items(&r.differing),
    }))
}

async fn put_provider(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(provider): ApiPath<String>,
    ApiJson(request): ApiJson<ProviderRequest>,
) -> Result<Json<ProviderResponse>, ApiError> {
    let provider = parse_party("invalid_provider", &provider)?;
    let status = ProviderStatus::parse(&request.status).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_status",
            format!("status {:?} is not allowed or blocked", request.status),
        )
    })?;
    let url = request
        .url
        .as_deref()
        .map(|text| {
            ProviderUrl::parse(text).map_err(|reason| {
                ApiError::bad_request("invalid_url", format!("url {text:?} {reason}"))
            })
        })
        .transpose()?;
    let policy = state
        .issuer
        .put_provider(provider, status, request.quota_bytes, url)
        .await?;
    tracing::info!(
        operator = %operator.name,
        provider = %policy.provider,
        status = policy.status.as_str(),
        quota_bytes = policy.quota_bytes,
        url = policy.url.as_ref().map(|u| u.as_str()),
        "provider policy set"
    );
    Ok(Json(provider_response(&policy)))
}

async fn provider(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
) -> Result<Json<ProviderResponse>, ApiError> {
    let provider = parse_party("invalid_provider", &provider)?;
    Ok(Json(provider_response(
        &state.issuer.provider(&provider).await?,
    )))
}

fn not_after_of<T: protocol::Signed>(object: &SignedObject, read: impl Fn(&T) -> UnixTime) -> u64 {
    object
        .body_unverified::<T>()
        .map(|body| read(&body).0)
        .unwrap_or(0)
}

/// STO-2, party-authenticated: only the provider that signed the SAR may ask for its SA.
async fn grant(State(state): State<AppState>, party: PartyRequest) -> Result<Response, ApiError> {
    let request: GrantRequest = party.json()?;
    let sar = parse_object("invalid_sar", "sar", &request.sar)?;
    let caller = Caller {
        role: party.request.caller_role,
        party: party.request.caller.clone(),
    };
    let sa = state.issuer.grant(&sar, &caller).await?;
    state.authorizations_signed.increment();
    Ok(created(GrantResponse {
        sa: hex::encode(sa.to_der()),
        not_after: not_after_of(&sa, |sa: &protocol::Sa| sa.not_after),
    }))
}

/// STO-1: the issuer's SAR, forwarded to the item's provider; answers both consents.
async fn request(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RequestRequest>,
) -> Result<Response, ApiError> {
    let card_id = parse_card_id(&request.card_id)?;
    let sdi = parse_sdi(&request.sdi)?;
    let challenge = parse_challenge(&request.challenge)?;
    let provider = sdi.owner.clone();
    let consent = state.issuer.request(&card_id, sdi, challenge).await?;
    state.authorizations_signed.increment();
    tracing::info!(card_id = %card_id, provider = %provider, "STO-1 consent obtained");
    Ok(created(RequestResponse {
        sar: hex::encode(consent.sar.to_der()),
        sa: hex::encode(consent.sa.to_der()),
        not_after: consent.not_after.0,
    }))
}

async fn delegate(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<DelegationRequest>,
) -> Result<Response, ApiError> {
    let provider = parse_party("invalid_provider", &request.provider)?;
    let der = parse_hex(
        "invalid_provider_certificate",
        "provider_certificate",
        &request.provider_certificate,
    )?;
    let provider_certificate = Certificate::from_der(&der).map_err(|e| {
        ApiError::bad_request(
            "invalid_provider_certificate",
            format!("provider_certificate: {e}"),
        )
    })?;
    let operations = parse_operations(&request.operations)?;
    let prefix = parse_hex("invalid_item_prefix", "item_prefix", &request.item_prefix)?;
    let item_prefix = ItemPrefix::new(&prefix)
        .map_err(|e| ApiError::bad_request("invalid_item_prefix", e.to_string()))?;
    let card_id = request.card_id.as_deref().map(parse_card_id).transpose()?;
    let delegation = state
        .issuer
        .delegate(DelegationOrder {
            provider,
            provider_certificate,
            operations,
            item_prefix,
            max_item_size: request.max_item_size,
            card_id,
            not_after: request.not_after.map(UnixTime),
        })
        .await?;
    let not_after = not_after_of(&delegation, |d: &protocol::Delegation| d.not_after);
    tracing::info!(operator = %operator.name, provider = %request.provider, "delegation signed");
    Ok(created(DelegationResponse {
        delegation: hex::encode(delegation.to_der()),
        not_after,
    }))
}

async fn receipt(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ReceiptRequest>,
) -> Result<Response, ApiError> {
    let receipt = parse_object("invalid_receipt", "receipt", &request.receipt)?;
    let sdi = request.sdi.as_deref().map(parse_sdi).transpose()?;
    let ingested = state.issuer.ingest_receipt(&receipt, sdi).await?;
    state.receipt_recorded(&ingested);
    let status = if ingested.newly_recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ReceiptResponse {
            card_id: ingested.card_id.to_hex(),
            seq: ingested.seq,
            counter: ingested.counter,
            entry: hex::encode(ingested.entry.to_der()),
            newly_recorded: ingested.newly_recorded,
            in_sync: ingested.in_sync,
        }),
    )
        .into_response())
}

fn crls_response(state: &AppState) -> CrlsResponse {
    CrlsResponse {
        crls: state
            .crls
            .held()
            .into_iter()
            .map(|held| CrlSummary {
                issuer: held.crl.issuer_id().to_string(),
                number: held.crl.number(),
                this_update: held.crl.this_update().0,
                next_update: held.crl.next_update().0,
                revoked: held.crl.revoked().len() as u64,
                source: match held.origin {
                    CrlOrigin::File => "file".to_string(),
                    CrlOrigin::Registrar { url } => url,
                    CrlOrigin::Other => "other".to_string(),
                },
            })
            .collect(),
        irc_revoked: state.issuer.irc_revocation().is_some(),
    }
}

async fn crls(State(state): State<AppState>) -> Json<CrlsResponse> {
    Json(crls_response(&state))
}

/// Fetches the registrars' CRLs now: operators (and tests, which must not wait for the
/// periodic refresh) call it right after a revocation.
async fn refresh_crls(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<CrlsResponse>, ApiError> {
    state.crls.fetch().await?;
    let answer = crls_response(&state);
    tracing::info!(
        operator = %operator.name,
        crls = ?answer.crls.iter().map(|c| (c.issuer.as_str(), c.number)).collect::<Vec<_>>(),
        "CRLs refreshed from the registrars"
    );
    Ok(Json(answer))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_ids_are_32_hex_digits() {
        assert_eq!(parse_card_id(&"ab".repeat(16)).unwrap(), CardId([0xab; 16]));
        for bad in ["", "ab", &"ab".repeat(17), &"zz".repeat(16)] {
            assert_eq!(parse_card_id(bad).unwrap_err().code, "invalid_card_id");
        }
    }

    #[test]
    fn operations_parse_to_a_set() {
        assert_eq!(
            parse_operations(&["store".into()]).unwrap(),
            OperationSet::STORE
        );
        assert_eq!(
            parse_operations(&["bogus".into()]).unwrap_err().code,
            "invalid_operations"
        );
        assert_eq!(
            parse_operations(&[]).unwrap_err().code,
            "invalid_operations"
        );
    }
}
