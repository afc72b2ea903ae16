//! The provider's HTTP API: handlers that extract → call the service → respond with the JSON
//! types of `party_api::provider` (DER, digests, IDs and data as lowercase hex), the route
//! table, and the one table from [`ServiceError`] to HTTP status and code. `docs/parties.md`
//! and `GET /openapi.json` describe it.

mod download;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Json;
use crypto::Digest;
use party_api::provider::{
    AddDelegationRequest, AloneRequest, CertifiedQuery, Certifier, ContentsResponse, CrlSummary,
    CrlsResponse, DataQuery, DataResponse, DelegationList, DelegationResponse, GrantRequest,
    IdentityResponse, ItemList, ItemResponse, LedgerEntryResponse, LedgerResponse, Member,
    MembersQuery, MembersResponse, PublishRequest, ReceiptRequest, ReceiptResponse, RequestRequest,
    RequestResponse, SaResponse, VersionQuery, ViewItemResponse,
};
use pki::{CardId, Certificate, PartyId};
use protocol::{
    Challenge, ConsentError, DerCodec, DownloadError, ItemId, Operation, Policy, ProtocolError,
    Sdi, SignedObject,
};
use server_kit::{
    ApiError, ApiJson, ApiPath, ApiQuery, Counter, Db, Metrics, Operator, PartyRequest, PartyTrust,
};

use crate::issuer_link::LinkError;
use crate::registrar_crls::{CrlFetchError, CrlOrigin, RegistrarCrls};
use crate::registrar_link::RegistrarLinkError;
use crate::service::{Authorization, Caller, Provider, ServiceError, StoredDelegation};
use crate::store::{ItemRecord, ViewItem};

const MEMBER_NOTIFICATIONS: &str = "provider_member_notifications_total";
const MEMBER_NOTIFICATIONS_HELP: &str =
    "Member notifications acknowledged (S15): new members, and repeats that changed nothing.";

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub provider: Arc<Provider>,
    /// The registrars' CRLs the provider follows (held here too, so the refresh runs as long
    /// as the router lives).
    pub crls: Arc<RegistrarCrls>,
    pub db: Db,
    pub authorizations: Counter,
    pub receipts: Counter,
    /// `provider_member_notifications_total{outcome="new"}` and `{outcome="repeat"}`.
    pub members_new: Counter,
    pub members_repeat: Counter,
}

impl AppState {
    pub fn new(
        provider: Arc<Provider>,
        crls: Arc<RegistrarCrls>,
        db: Db,
        metrics: &Metrics,
    ) -> AppState {
        AppState {
            provider,
            crls,
            db,
            authorizations: metrics.counter(
                "provider_authorizations_signed_total",
                "SAs and SARs signed (STO-1, STO-2, STO-3).",
            ),
            receipts: metrics.counter(
                "provider_receipts_recorded_total",
                "Card receipts recorded in a ledger (repeats not counted).",
            ),
            members_new: metrics.labelled_counter(
                MEMBER_NOTIFICATIONS,
                MEMBER_NOTIFICATIONS_HELP,
                "outcome",
                "new",
            ),
            members_repeat: metrics.labelled_counter(
                MEMBER_NOTIFICATIONS,
                MEMBER_NOTIFICATIONS_HELP,
                "outcome",
                "repeat",
            ),
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
        state.provider.party_trust().clone()
    }
}

/// The provider's routes (method, path template, handler): the router is built from this
/// table and the OpenAPI test checks the document against it.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/v1/provider", get(identity)),
        (Method::POST, "/v1/items", post(publish)),
        (Method::GET, "/v1/items", get(list_items)),
        (Method::GET, "/v1/items/{id}", get(item)),
        (Method::GET, "/v1/items/{id}/data", get(data)),
        (Method::GET, "/v1/items/{id}/certified", get(certified)),
        (Method::POST, "/v1/authorizations/grant", post(grant)),
        (Method::POST, "/v1/authorizations/request", post(request)),
        (Method::POST, "/v1/authorizations/alone", post(alone)),
        (Method::POST, "/v1/delegations", post(add_delegation)),
        (Method::GET, "/v1/delegations", get(delegations)),
        (Method::POST, "/v1/receipts", post(receipt)),
        (Method::GET, "/v1/cards/{id}/contents", get(contents)),
        (Method::GET, "/v1/cards/{id}/ledger", get(ledger)),
        (Method::GET, "/v1/members", get(members)),
        (Method::GET, "/v1/crls", get(crls)),
        (Method::PUT, "/v1/terms", put(download::publish_terms)),
        (Method::GET, "/v1/terms", get(download::terms)),
        (Method::POST, "/v1/services", post(download::add_service)),
        (Method::GET, "/v1/services", get(download::services)),
        (Method::GET, "/v1/services/{id}", get(download::service)),
        (
            Method::GET,
            "/v1/services/{id}/members",
            get(download::service_members),
        ),
        (
            Method::PUT,
            "/v1/downloads/{op}",
            put(download::open_download),
        ),
        (
            Method::GET,
            "/v1/downloads/{op}",
            get(download::download_state),
        ),
        (
            Method::POST,
            "/v1/downloads/{op}/grant",
            post(download::download_grant),
        ),
        (Method::POST, "/v1/members", post(download::notify_member)),
        (Method::POST, "/v1/crls/refresh", post(refresh_crls)),
        (Method::GET, "/openapi.json", get(openapi)),
    ]
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The 400 code for a signed object whose body cannot be read, by the object's name.
fn unreadable_code(object: &str) -> &'static str {
    match object {
        "Sar" => "invalid_sar",
        "Delegation" => "invalid_delegation",
        _ => "invalid_body",
    }
}

/// A card receipt refused: 400 if it cannot be read, 422 `wrong_purpose` for another kind of
/// object, else 422 `invalid_receipt` (the card's key signs it: no party signer to distrust).
fn receipt_refused(error: &ConsentError, message: String) -> ApiError {
    match error {
        ConsentError::Object(
            ProtocolError::Malformed { .. } | ProtocolError::InvalidField { .. },
        ) => ApiError::bad_request("invalid_receipt", message),
        ConsentError::Object(ProtocolError::WrongPurpose { .. }) => {
            unprocessable("wrong_purpose", message)
        }
        _ => unprocessable("invalid_receipt", message),
    }
}

/// The one table from service errors to HTTP (docs/parties.md, "Wire conventions"): 400
/// unreadable input, 403 policy, 404 unknown things, 409 state conflicts, 422 signed objects
/// refused on verification (with the shared codes).
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let message = error.to_string();
        match error {
            ServiceError::UnknownItem { .. } => ApiError::not_found("unknown_item", message),
            ServiceError::UnknownCard { .. } => ApiError::not_found("unknown_card", message),
            ServiceError::UnknownAuthorization { .. } => {
                ApiError::not_found("unknown_authorization", message)
            }
            ServiceError::ItemVersionExists { .. } => {
                ApiError::conflict("item_version_exists", message)
            }
            ServiceError::DataTooLarge { .. } => ApiError::bad_request("invalid_data", message),
            ServiceError::Unreadable { object, .. } => {
                ApiError::bad_request(unreadable_code(object), message)
            }
            ServiceError::WrongPurpose { .. } => unprocessable("wrong_purpose", message),
            ServiceError::SdiMismatch { .. } => unprocessable("sdi_mismatch", message),
            // A provider's SAR is a well-formed SAR this route does not take.
            ServiceError::WrongRequesterRole { .. } => unprocessable("invalid_sar", message),
            ServiceError::Untrusted { .. } | ServiceError::UntrustedRc { .. } => {
                unprocessable("untrusted_signer", message)
            }
            ServiceError::Expired { .. } => unprocessable("authorization_expired", message),
            ServiceError::DelegationRefused { .. } => unprocessable("delegation_refused", message),
            ServiceError::InvalidReceipt { ref source } => receipt_refused(source, message),
            ServiceError::RcMismatch { .. } => unprocessable("rc_mismatch", message),
            ServiceError::Replayed { .. } => ApiError::conflict("authorization_replayed", message),
            ServiceError::CounterNotIncreasing { .. } => {
                ApiError::conflict("counter_not_increasing", message)
            }
            ServiceError::CallerNotRequester { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "caller_not_requester", message)
            }
            ServiceError::NoDelegation { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "no_delegation", message)
            }
            ServiceError::CardNotAuthorized { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "card_not_authorized", message)
            }
            ServiceError::UnknownIssuer { .. }
            | ServiceError::IssuerCall(LinkError::UnknownIssuer { .. }) => {
                unprocessable("unknown_issuer", message)
            }
            ServiceError::IssuerCall(
                LinkError::Refused { .. } | LinkError::InvalidAnswer { .. },
            )
            | ServiceError::IssuerSaRefused { .. } => {
                ApiError::bad_gateway("issuer_refused", message)
            }
            ServiceError::IssuerCall(
                LinkError::Unreachable { .. } | LinkError::UnusableUrl { .. },
            ) => ApiError::bad_gateway("issuer_unreachable", message),
            ServiceError::NoDataRegistrar => ApiError::conflict("no_data_registrar", message),
            ServiceError::RegistrarCall(
                RegistrarLinkError::Refused { .. } | RegistrarLinkError::InvalidAnswer { .. },
            )
            | ServiceError::RegistrarSdciRefused { .. } => {
                ApiError::bad_gateway("registrar_refused", message)
            }
            ServiceError::RegistrarCall(
                RegistrarLinkError::Unreachable { .. } | RegistrarLinkError::UnusableUrl { .. },
            ) => ApiError::bad_gateway("registrar_unreachable", message),
            ServiceError::InvalidTerms { .. } => ApiError::bad_request("invalid_terms", message),
            ServiceError::UnknownTerms { .. } => ApiError::not_found("unknown_terms", message),
            ServiceError::InvalidAid { .. } => ApiError::bad_request("invalid_aid", message),
            ServiceError::ServiceExists { .. } => ApiError::conflict("service_exists", message),
            ServiceError::UnknownApplication { .. } => {
                unprocessable("unknown_application", message)
            }
            ServiceError::UnknownService { .. } => ApiError::not_found("unknown_service", message),
            ServiceError::UnknownOperation { .. } => {
                ApiError::not_found("unknown_operation", message)
            }
            ServiceError::OperationConflict { .. } => {
                ApiError::conflict("operation_conflict", message)
            }
            ServiceError::AlreadyMember { .. } => ApiError::conflict("already_member", message),
            ServiceError::TermsOutdated { .. } => unprocessable("terms_outdated", message),
            ServiceError::IssuerMismatch { .. } => unprocessable("issuer_mismatch", message),
            ServiceError::CallerNotCardIssuer { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "caller_not_card_issuer", message)
            }
            ServiceError::OperationClosed { .. } => ApiError::conflict("operation_closed", message),
            ServiceError::InvalidDownloadApplication { ref source } => match source {
                DownloadError::Malformed(_) => {
                    ApiError::bad_request("invalid_download_application", message)
                }
                DownloadError::WrongPurpose { .. } => unprocessable("wrong_purpose", message),
                _ => unprocessable("invalid_download_application", message),
            },
            ServiceError::OperationMismatch { .. } => unprocessable("operation_mismatch", message),
            ServiceError::SarRcMismatch { .. } => unprocessable("rc_mismatch", message),
            ServiceError::RcNotFromIssuer { .. } => unprocessable("untrusted_signer", message),
            ServiceError::ReceiptNotForOperation { .. } => {
                unprocessable("receipt_not_for_operation", message)
            }
            ServiceError::IssuerCall(LinkError::Request { .. })
            | ServiceError::RegistrarCall(RegistrarLinkError::Request { .. })
            | ServiceError::Configuration { .. }
            | ServiceError::Store(_) => ApiError::internal(error),
        }
    }
}

/// The CRLs could not be fetched on demand: 409 when no registrar or issuer is configured, else
/// 502 naming those that failed. A registrar failing decides the code (`registrar_refused` when
/// every failing registrar answered, with a refusal or no CRL under its root;
/// `registrar_unreachable` when one did not answer); when only issuers failed, the same for
/// them (`issuer_refused`: a refusal, an IRC not trusted or a CRL not under it;
/// `issuer_unreachable`). The message names every one.
impl From<CrlFetchError> for ApiError {
    fn from(error: CrlFetchError) -> ApiError {
        let message = error.to_string();
        match &error {
            CrlFetchError::NoRegistrars => ApiError::conflict("no_registrars", message),
            CrlFetchError::Failed { failures, issuers } => {
                let code = if !failures.is_empty() {
                    if failures.iter().all(|f| f.answered()) {
                        "registrar_refused"
                    } else {
                        "registrar_unreachable"
                    }
                } else if issuers.iter().all(|f| f.answered()) {
                    "issuer_refused"
                } else {
                    "issuer_unreachable"
                };
                ApiError::bad_gateway(code, message)
            }
        }
    }
}

fn item_response(item: &ItemRecord) -> ItemResponse {
    ItemResponse {
        item_id: hex::encode(item.item_id.as_bytes()),
        version: item.version,
        size: item.size,
        data_digest: hex::encode(item.data_digest.0),
        policy: item.policy.bits(),
        published_at: item.published_at.0,
    }
}

fn view_item_response(item: &ViewItem) -> ViewItemResponse {
    ViewItemResponse {
        item_id: hex::encode(item.item_id.as_bytes()),
        version: item.version,
        size: item.size,
        data_digest: hex::encode(item.data_digest.0),
        policy: item.policy.bits(),
    }
}

// ---- parsing request fields ---------------------------------------------------------------

fn hex_field(code: &'static str, field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text).map_err(|e| ApiError::bad_request(code, format!("{field} is not hex: {e}")))
}

fn parse_item_id(text: &str) -> Result<ItemId, ApiError> {
    let bytes = hex_field("invalid_item_id", "item ID", text)?;
    ItemId::new(&bytes).map_err(|e| ApiError::bad_request("invalid_item_id", e.to_string()))
}

fn parse_card_id(text: &str) -> Result<CardId, ApiError> {
    let bytes = hex_field("invalid_card_id", "card ID", text)?;
    CardId::from_slice(&bytes).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_card_id",
            format!("card ID is {} bytes, expected 16", bytes.len()),
        )
    })
}

fn parse_digest(code: &'static str, field: &str, text: &str) -> Result<Digest, ApiError> {
    let bytes = hex_field(code, field, text)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Digest)
        .map_err(|_| {
            ApiError::bad_request(
                code,
                format!("{field} is {} bytes, expected 32", bytes.len()),
            )
        })
}

fn parse_challenge(text: &str) -> Result<Challenge, ApiError> {
    let bytes = hex_field("invalid_challenge", "challenge", text)?;
    <[u8; 16]>::try_from(bytes.as_slice())
        .map(Challenge)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_challenge",
                format!("challenge is {} bytes, expected 16", bytes.len()),
            )
        })
}

fn parse_der<T: DerCodec>(code: &'static str, field: &str, text: &str) -> Result<T, ApiError> {
    let bytes = hex_field(code, field, text)?;
    T::from_der(&bytes).map_err(|e| ApiError::bad_request(code, format!("{field}: {e}")))
}

fn parse_certificate(code: &'static str, field: &str, text: &str) -> Result<Certificate, ApiError> {
    let bytes = hex_field(code, field, text)?;
    Certificate::from_der(&bytes).map_err(|e| ApiError::bad_request(code, format!("{field}: {e}")))
}

fn parse_policy(bits: u32) -> Result<Policy, ApiError> {
    Policy::from_bits(bits).map_err(|e| ApiError::bad_request("invalid_policy", e.to_string()))
}

// ---- handlers ------------------------------------------------------------------------------

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
                    CrlOrigin::Registrar { url } | CrlOrigin::Issuer { url } => url,
                    CrlOrigin::Other => "other".to_string(),
                },
            })
            .collect(),
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
        crls = answer.crls.len(),
        "registrars' and issuers' CRLs refreshed"
    );
    Ok(Json(answer))
}

async fn identity(State(state): State<AppState>) -> Json<IdentityResponse> {
    let provider = &state.provider;
    Json(IdentityResponse {
        party_id: provider.party_id().to_string(),
        dpr: hex::encode(provider.dpr().der()),
        public_key: hex::encode(provider.dpr().public_key().to_sec1()),
    })
}

async fn publish(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<Response, ApiError> {
    let item_id = parse_item_id(&request.item_id)?;
    let data = hex_field("invalid_data", "data", &request.data)?;
    let policy = parse_policy(request.policy)?;
    let (record, new) = state
        .provider
        .publish(item_id, request.version, &data, policy)
        .await?;
    let status = if new {
        tracing::info!(
            operator = %operator.name,
            item = %hex::encode(record.item_id.as_bytes()),
            version = record.version,
            size = record.size,
            "item published"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(item_response(&record))).into_response())
}

async fn list_items(State(state): State<AppState>) -> Result<Json<ItemList>, ApiError> {
    let items = state.provider.items().await?;
    Ok(Json(ItemList {
        items: items.iter().map(item_response).collect(),
    }))
}

async fn item(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Json<ItemResponse>, ApiError> {
    let item_id = parse_item_id(&id)?;
    let record = state.provider.item(&item_id, query.version).await?;
    Ok(Json(item_response(&record)))
}

async fn data(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DataQuery>,
) -> Result<Json<DataResponse>, ApiError> {
    let item_id = parse_item_id(&id)?;
    let card = parse_card_id(&query.card)?;
    let (record, data) = state.provider.data(card, &item_id, query.version).await?;
    Ok(Json(DataResponse {
        item: item_response(&record),
        data: hex::encode(data),
        sdci: None,
    }))
}

async fn certified(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CertifiedQuery>,
) -> Result<Json<DataResponse>, ApiError> {
    let item_id = parse_item_id(&id)?;
    let card = parse_card_id(&query.card)?;
    let sdi: Sdi = parse_der("invalid_sdi", "sdi", &query.sdi)?;
    let by = Certifier::from_query(query.by.as_deref()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "by is {:?}, expected \"provider\" or \"data-registrar\"",
                query.by.as_deref().unwrap_or_default()
            ),
        )
    })?;
    let (record, data, sdci) = match by {
        Certifier::Provider => state.provider.certified(card, &item_id, &sdi).await?,
        Certifier::DataRegistrar => {
            state
                .provider
                .certified_by_registrar(card, &item_id, &sdi)
                .await?
        }
    };
    Ok(Json(DataResponse {
        item: item_response(&record),
        data: hex::encode(data),
        sdci: Some(hex::encode(sdci.to_der())),
    }))
}

/// 201 `{sa, not_after}`.
fn sa_created(state: &AppState, sa: &Authorization) -> Response {
    state.authorizations.increment();
    (
        StatusCode::CREATED,
        Json(SaResponse {
            sa: hex::encode(sa.object.to_der()),
            not_after: sa.not_after.0,
        }),
    )
        .into_response()
}

/// STO-1, party-authenticated (SEC-3): only the issuer that signed the SAR gets its SA.
async fn grant(State(state): State<AppState>, party: PartyRequest) -> Result<Response, ApiError> {
    let request: GrantRequest = party.json()?;
    let sar: SignedObject = parse_der("invalid_sar", "sar", &request.sar)?;
    let caller = Caller {
        role: party.request.caller_role,
        party: party.request.caller.clone(),
    };
    let sa = state.provider.grant(&sar, &caller).await?;
    Ok(sa_created(&state, &sa))
}

/// STO-2: the provider's SAR, sent to the card's issuer; answers both consents.
async fn request(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RequestRequest>,
) -> Result<Response, ApiError> {
    let card = parse_card_id(&request.card_id)?;
    let rc_digest = parse_digest("invalid_rc_digest", "rc_digest", &request.rc_digest)?;
    let sdi: Sdi = parse_der("invalid_sdi", "sdi", &request.sdi)?;
    let challenge = parse_challenge(&request.challenge)?;
    let issuer = PartyId::new(&request.issuer)
        .map_err(|e| ApiError::bad_request("invalid_issuer", format!("issuer: {e}")))?;
    let consents = state
        .provider
        .request(card, rc_digest, &sdi, challenge, &issuer)
        .await?;
    state.authorizations.increment();
    tracing::info!(card_id = %card, issuer = %issuer, "STO-2 consents obtained");
    Ok((
        StatusCode::CREATED,
        Json(RequestResponse {
            sar: hex::encode(consents.sar.to_der()),
            sa: hex::encode(consents.sa.to_der()),
            not_after: consents.not_after.0,
        }),
    )
        .into_response())
}

async fn alone(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AloneRequest>,
) -> Result<Response, ApiError> {
    let delegation: Option<SignedObject> = request
        .delegation
        .as_deref()
        .map(|text| parse_der("invalid_delegation", "delegation", text))
        .transpose()?;
    let sdi: Sdi = parse_der("invalid_sdi", "sdi", &request.sdi)?;
    let challenge = parse_challenge(&request.challenge)?;
    let sa = state
        .provider
        .alone(delegation.as_ref(), &sdi, challenge)
        .await?;
    Ok(sa_created(&state, &sa))
}

fn delegation_response(stored: &StoredDelegation) -> DelegationResponse {
    let d = &stored.delegation;
    DelegationResponse {
        digest: hex::encode(stored.digest.0),
        issuer: d.issuer.to_string(),
        issued_at: d.issued_at.0,
        not_after: d.not_after.0,
        operations: d
            .operations
            .to_vec()
            .into_iter()
            .map(|operation| operation_name(operation).to_string())
            .collect(),
        item_prefix: hex::encode(d.item_prefix.as_bytes()),
        max_item_size: d.max_item_size,
        card_id: d.card_id.map(|card| card.to_hex()),
        stored_at: stored.stored_at.0,
    }
}

fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Store => "store",
        Operation::Delete => "delete",
    }
}

/// STO-3 set-up: an issuer's delegation for this provider to keep (checked first).
async fn add_delegation(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<AddDelegationRequest>,
) -> Result<Response, ApiError> {
    let delegation: SignedObject =
        parse_der("invalid_delegation", "delegation", &request.delegation)?;
    let (stored, new) = state.provider.add_delegation(&delegation).await?;
    let status = if new {
        tracing::info!(
            operator = %operator.name,
            issuer = %stored.delegation.issuer,
            not_after = stored.delegation.not_after.0,
            "delegation kept"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(delegation_response(&stored))).into_response())
}

async fn delegations(State(state): State<AppState>) -> Result<Json<DelegationList>, ApiError> {
    let kept = state.provider.delegations().await?;
    Ok(Json(DelegationList {
        delegations: kept.iter().map(delegation_response).collect(),
    }))
}

async fn receipt(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ReceiptRequest>,
) -> Result<Response, ApiError> {
    let receipt: SignedObject = parse_der("invalid_receipt", "receipt", &request.receipt)?;
    let rc = parse_certificate("invalid_rc", "rc", &request.rc)?;
    let irc = parse_certificate("invalid_irc", "irc", &request.irc)?;
    let recorded = state.provider.record_receipt(&receipt, &rc, &irc).await?;
    let status = if recorded.newly_recorded {
        state.receipts.increment();
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let card_id = rc.card_id().map(|c| c.to_hex()).unwrap_or_default();
    Ok((
        status,
        Json(ReceiptResponse {
            card_id,
            seq: recorded.entry.seq,
            counter: recorded.entry.counter,
            entry: hex::encode(&recorded.entry.entry_der),
            newly_recorded: recorded.newly_recorded,
        }),
    )
        .into_response())
}

async fn contents(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContentsResponse>, ApiError> {
    let card = parse_card_id(&id)?;
    let items = state.provider.contents(card).await?;
    Ok(Json(ContentsResponse {
        card_id: card.to_hex(),
        items: items.iter().map(view_item_response).collect(),
    }))
}

async fn ledger(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LedgerResponse>, ApiError> {
    let card = parse_card_id(&id)?;
    let (rc, entries) = state.provider.ledger(card).await?;
    Ok(Json(LedgerResponse {
        card_id: card.to_hex(),
        rc: hex::encode(rc),
        entries: entries
            .into_iter()
            .map(|e| LedgerEntryResponse {
                seq: e.seq,
                counter: e.counter,
                entry: hex::encode(e.entry_der),
            })
            .collect(),
    }))
}

async fn members(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> Result<Json<MembersResponse>, ApiError> {
    let item_id = parse_item_id(&query.item)?;
    let cards = state.provider.members(&item_id).await?;
    Ok(Json(MembersResponse {
        item_id: hex::encode(item_id.as_bytes()),
        cards: cards
            .into_iter()
            .map(|(card, version)| Member {
                card_id: card.to_hex(),
                version,
            })
            .collect(),
    }))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}
