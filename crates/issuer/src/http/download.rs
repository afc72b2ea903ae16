//! The issuer's routes of issue 4 (docs/app-download.md §3): the application DB, the standing
//! check, download operations and the operators' registry, operations and outbox. Extract →
//! `download.rs`'s service → `party_api::issuer_download`'s JSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use party_api::issuer::ReceiptResponse;
use party_api::issuer_download::{
    ApplicationDescriptor, ApplicationRequest, ApplicationsResponse, AttemptSummary, CheckResponse,
    DownloadAuthorization, DownloadAuthorizationRequest, DownloadOpened, DownloadReceiptRequest,
    DownloadReceiptResponse, DownloadResponse, DownloadsResponse, Holder, InstalledApplication,
    NotificationRow, NotificationSummary, NotificationsResponse, OpenDownloadRequest,
    OperationProgress, PackageResponse, PersonalInformation, RegistryResponse, StandingRequest,
    StandingResponse,
};
use pki::{Certificate, PartyId};
use protocol::{ItemId, ListedItem, Nonce, OperationId};
use serde::Deserialize;
use server_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Operator};

use super::{
    created, item_body, parse_card_id, parse_challenge, parse_hex, parse_object, parse_party,
    AppState,
};
use crate::download::{ApplicationOrder, DownloadStatus};
use crate::service::Ingested;
use crate::store::{
    Application, DownloadRecord, DownloadState, NotificationRecord, NotificationState,
};

fn parse_aid(text: &str) -> Result<ItemId, ApiError> {
    let bytes = parse_hex("invalid_aid", "aid", text)?;
    ItemId::new(&bytes).map_err(|e| ApiError::bad_request("invalid_aid", format!("aid: {e}")))
}

fn parse_operation(text: &str) -> Result<OperationId, ApiError> {
    OperationId::from_hex(text)
        .map_err(|e| ApiError::bad_request("invalid_operation_id", format!("operation ID: {e}")))
}

fn parse_nonce(text: &str) -> Result<Nonce, ApiError> {
    parse_hex("invalid_nonce", "nonce", text).and_then(|b| {
        Nonce::new(&b).map_err(|e| ApiError::bad_request("invalid_nonce", e.to_string()))
    })
}

pub(super) fn descriptor(a: &Application) -> ApplicationDescriptor {
    ApplicationDescriptor {
        aid: hex::encode(a.aid.as_bytes()),
        version: a.version,
        size: a.size,
        digest: hex::encode(a.digest.0),
        provider: a.provider.to_string(),
        name: a.name.clone(),
        description: a.description.clone(),
        policy: a.policy.bits(),
        added_at: a.added_at.0,
    }
}

fn installed(applications: &[(ListedItem, Application)]) -> Vec<InstalledApplication> {
    applications
        .iter()
        .map(|(item, application)| InstalledApplication {
            aid: hex::encode(item.item_id.as_bytes()),
            version: item.version,
            name: application.name.clone(),
            provider: application.provider.to_string(),
            size: item.size,
        })
        .collect()
}

fn notification_summary(n: &NotificationRecord) -> NotificationSummary {
    NotificationSummary {
        state: n.state.as_str().to_string(),
        attempts: n.attempts,
        last_error: n.last_error.clone(),
        delivered_at: n.delivered_at.map(|t| t.0),
    }
}

fn notification_row(n: &NotificationRecord) -> NotificationRow {
    NotificationRow {
        operation_id: n.operation_id.to_hex(),
        provider: n.provider.to_string(),
        state: n.state.as_str().to_string(),
        attempts: n.attempts,
        next_attempt_at: n.next_attempt_at.0,
        lease_until: n.lease_until.map(|t| t.0),
        last_error: n.last_error.clone(),
        created_at: n.created_at.0,
        delivered_at: n.delivered_at.map(|t| t.0),
    }
}

fn download_response(
    d: &DownloadRecord,
    attempts: &[crate::store::AttemptRecord],
    notification: Option<&NotificationRecord>,
) -> DownloadResponse {
    DownloadResponse {
        operation_id: d.operation_id.to_hex(),
        card_id: d.card_id.to_hex(),
        provider: d.provider.to_string(),
        service_id: d.service_id.to_string(),
        aid: hex::encode(d.aid.as_bytes()),
        version: d.version,
        state: d.state.as_str().to_string(),
        opened_at: d.opened_at.0,
        installed_at: d.installed_at.map(|t| t.0),
        attempts: attempts
            .iter()
            .map(|a| AttemptSummary {
                attempt: a.attempt,
                sa_digest: a.sa_digest.map(|d| hex::encode(d.0)),
                issued_at: a.issued_at.0,
            })
            .collect(),
        receipt_counter: d.receipt_counter,
        notification: notification.map(notification_summary),
    }
}

fn status_response(s: &DownloadStatus) -> DownloadResponse {
    download_response(&s.download, &s.attempts, s.notification.as_ref())
}

fn receipt_response(i: &Ingested) -> ReceiptResponse {
    ReceiptResponse {
        card_id: i.card_id.to_hex(),
        seq: i.seq,
        counter: i.counter,
        entry: hex::encode(i.entry.to_der()),
        newly_recorded: i.newly_recorded,
        in_sync: i.in_sync,
    }
}

fn created_or_ok<T: serde::Serialize>(newly: bool, body: T) -> Response {
    if newly {
        created(body)
    } else {
        (StatusCode::OK, Json(body)).into_response()
    }
}

// ---- the application DB (APP-1) -------------------------------------------------------------

pub(super) async fn add_application(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<ApplicationRequest>,
) -> Result<Response, ApiError> {
    let aid = parse_aid(&request.aid)?;
    let provider: PartyId = parse_party("invalid_provider", &request.provider)?;
    let code = parse_hex("invalid_code", "code", &request.code)?;
    let (application, newly) = state
        .issuer
        .add_application(
            ApplicationOrder {
                aid,
                version: request.version,
                provider,
                name: request.name,
                description: request.description.unwrap_or_default(),
                code,
                policy_bits: request.policy.unwrap_or(0),
            },
            &operator.name,
        )
        .await?;
    if newly {
        tracing::info!(
            operator = %operator.name,
            aid = %hex::encode(application.aid.as_bytes()),
            version = application.version,
            provider = %application.provider,
            size = application.size,
            "application added"
        );
    }
    Ok(created_or_ok(newly, descriptor(&application)))
}

pub(super) async fn applications(
    State(state): State<AppState>,
) -> Result<Json<ApplicationsResponse>, ApiError> {
    let applications = state.issuer.applications().await?;
    Ok(Json(ApplicationsResponse {
        applications: applications.iter().map(descriptor).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionQuery {
    #[serde(default)]
    version: Option<u32>,
}

pub(super) async fn application(
    State(state): State<AppState>,
    ApiPath(aid): ApiPath<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Json<ApplicationDescriptor>, ApiError> {
    let aid = parse_aid(&aid)?;
    let application = state.issuer.application(&aid, query.version).await?;
    Ok(Json(descriptor(&application)))
}

// ---- the standing check (S1–S3) -------------------------------------------------------------

pub(super) async fn check(
    State(state): State<AppState>,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let record = state.issuer.check_nonce(&card_id).await?;
    Ok(created(CheckResponse {
        card_id: card_id.to_hex(),
        nonce: hex::encode(record.nonce.as_bytes()),
        expires_at: record.expires_at.0,
    }))
}

pub(super) async fn standing(
    State(state): State<AppState>,
    ApiPath((card_id, nonce)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<StandingRequest>,
) -> Result<Json<StandingResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let nonce = parse_nonce(&nonce)?;
    let listing = parse_object("invalid_listing", "listing", &request.listing)?;
    let s = state.issuer.standing(&card_id, &nonce, &listing).await?;
    if !s.in_sync {
        tracing::warn!(
            card_id = %card_id,
            card_counter = s.card_counter,
            issuer_counter = s.issuer_counter,
            "standing check: the registry differs from the card's listing"
        );
    }
    Ok(Json(StandingResponse {
        card_id: card_id.to_hex(),
        status: "registered".to_string(),
        holder: Holder {
            user_id: s.registration.user_id.clone(),
            name: s.registration.user_name.clone(),
        },
        capacity: s.capacity,
        free: s.free,
        card_counter: s.card_counter,
        issuer_counter: s.issuer_counter,
        in_sync: s.in_sync,
        applications: installed(&s.applications),
        open_downloads: s.open_downloads.iter().map(OperationId::to_hex).collect(),
    }))
}

// ---- downloads (S8–S14) ---------------------------------------------------------------------

pub(super) async fn open_download(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OpenDownloadRequest>,
) -> Result<Response, ApiError> {
    let application = parse_object(
        "invalid_download_application",
        "download_application",
        &request.download_application,
    )?;
    let rc = parse_hex("invalid_rc", "rc", &request.rc).and_then(|der| {
        Certificate::from_der(&der)
            .map_err(|e| ApiError::bad_request("invalid_rc", format!("rc: {e}")))
    })?;
    let opened = state.issuer.open_download(&application, &rc).await?;
    let d = &opened.download;
    if opened.newly_opened {
        state.downloads_opened.increment();
        tracing::info!(
            operation_id = %d.operation_id,
            card_id = %d.card_id,
            provider = %d.provider,
            aid = %hex::encode(d.aid.as_bytes()),
            version = d.version,
            "download opened"
        );
    }
    Ok(created_or_ok(
        opened.newly_opened,
        DownloadOpened {
            operation_id: d.operation_id.to_hex(),
            state: d.state.as_str().to_string(),
            application: descriptor(&opened.application),
            sdi: hex::encode(&d.sdi_der),
            free: opened.free,
        },
    ))
}

pub(super) async fn authorize_download(
    State(state): State<AppState>,
    ApiPath(operation_id): ApiPath<String>,
    ApiJson(request): ApiJson<DownloadAuthorizationRequest>,
) -> Result<Response, ApiError> {
    let operation_id = parse_operation(&operation_id)?;
    let challenge = parse_challenge(&request.challenge)?;
    let a = state
        .issuer
        .authorize_download(&operation_id, challenge)
        .await?;
    if a.newly_authorized {
        state.authorizations_signed.increment();
        tracing::info!(operation_id = %operation_id, attempt = a.attempt.attempt, "download attempt authorized");
    }
    Ok(created_or_ok(
        a.newly_authorized,
        DownloadAuthorization {
            attempt: a.attempt.attempt,
            sar: hex::encode(&a.attempt.sar_der),
            sa: hex::encode(a.sa.to_der()),
            not_after: a.attempt.not_after.map_or(0, |t| t.0),
        },
    ))
}

pub(super) async fn package(
    State(state): State<AppState>,
    ApiPath(operation_id): ApiPath<String>,
) -> Result<Json<PackageResponse>, ApiError> {
    let operation_id = parse_operation(&operation_id)?;
    let (application, code) = state.issuer.package(&operation_id).await?;
    Ok(Json(PackageResponse {
        aid: hex::encode(application.aid.as_bytes()),
        version: application.version,
        size: application.size,
        digest: hex::encode(application.digest.0),
        code: hex::encode(code),
    }))
}

pub(super) async fn download_receipt(
    State(state): State<AppState>,
    ApiPath(operation_id): ApiPath<String>,
    ApiJson(request): ApiJson<DownloadReceiptRequest>,
) -> Result<Response, ApiError> {
    let operation_id = parse_operation(&operation_id)?;
    let receipt = parse_object("invalid_receipt", "receipt", &request.receipt)?;
    let (ingested, status) = state
        .issuer
        .download_receipt(&operation_id, &receipt)
        .await?;
    state.receipt_recorded(&ingested);
    Ok(created_or_ok(
        ingested.newly_recorded,
        DownloadReceiptResponse {
            receipt: receipt_response(&ingested),
            operation: OperationProgress {
                state: status.download.state.as_str().to_string(),
                notification: status.notification.as_ref().map(notification_summary),
            },
        },
    ))
}

pub(super) async fn download(
    State(state): State<AppState>,
    ApiPath(operation_id): ApiPath<String>,
) -> Result<Json<DownloadResponse>, ApiError> {
    let operation_id = parse_operation(&operation_id)?;
    let status = state.issuer.download_status(&operation_id).await?;
    Ok(Json(status_response(&status)))
}

// ---- operators: registry, operations, outbox ------------------------------------------------

pub(super) async fn registry(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Json<RegistryResponse>, ApiError> {
    let card_id = parse_card_id(&card_id)?;
    let r = state.issuer.registry(&card_id).await?;
    let capacity = r.card.card.capacity;
    let items = r.view.as_ref().map(|v| v.items.clone()).unwrap_or_default();
    let mut downloads = Vec::new();
    for d in &r.downloads {
        let status = state.issuer.download_status(&d.operation_id).await?;
        downloads.push(status_response(&status));
    }
    let status = match (&r.card.registration, &r.card.revocation) {
        (None, _) => "personalised",
        (Some(_), None) => "registered",
        (Some(_), Some(_)) => "revoked",
    };
    Ok(Json(RegistryResponse {
        card_id: card_id.to_hex(),
        status: status.to_string(),
        holder: r.card.registration.as_ref().map(|reg| PersonalInformation {
            user_id: reg.user_id.clone(),
            name: reg.user_name.clone(),
            email: reg.user_email.clone(),
        }),
        capacity,
        free: crate::service::free_of(&items, capacity),
        last_counter: r.view.as_ref().map_or(0, |v| v.last_counter),
        applications: installed(&r.applications),
        items: items.iter().map(item_body).collect(),
        downloads,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateQuery {
    #[serde(default)]
    state: Option<String>,
}

pub(super) async fn downloads(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(query): ApiQuery<StateQuery>,
) -> Result<Json<DownloadsResponse>, ApiError> {
    let wanted = query
        .state
        .as_deref()
        .map(|s| {
            DownloadState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state {s:?} is not opened, installed or expired"),
                )
            })
        })
        .transpose()?;
    let mut downloads = Vec::new();
    for d in state.issuer.downloads(wanted).await? {
        let status = state.issuer.download_status(&d.operation_id).await?;
        downloads.push(status_response(&status));
    }
    Ok(Json(DownloadsResponse { downloads }))
}

pub(super) async fn notifications(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(query): ApiQuery<StateQuery>,
) -> Result<Json<NotificationsResponse>, ApiError> {
    let wanted = query
        .state
        .as_deref()
        .map(|s| {
            NotificationState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state {s:?} is not pending, delivered or stuck"),
                )
            })
        })
        .transpose()?;
    let rows = state.issuer.notifications(wanted).await?;
    Ok(Json(NotificationsResponse {
        notifications: rows.iter().map(notification_row).collect(),
    }))
}

pub(super) async fn retry_notification(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(operation_id): ApiPath<String>,
) -> Result<Json<NotificationRow>, ApiError> {
    let operation_id = parse_operation(&operation_id)?;
    let row = state.issuer.retry_notification(&operation_id).await?;
    tracing::info!(operator = %operator.name, operation_id = %operation_id, "member notification retried now");
    state.notifier.wake();
    Ok(Json(notification_row(&row)))
}
