//! The provider's routes for adding an application over the Internet (docs/app-download.md §3
//! "Provider"): terms, services, download operations, the download grant and the member
//! notification (both party requests of the card's issuer), the members of a service. JSON
//! types from `party_api::provider_download`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use party_api::provider::{SaResponse, VersionQuery};
use party_api::provider_download::{
    AddServiceRequest, DownloadGrantRequest, DownloadOpened, DownloadState, MemberAcknowledgement,
    MemberNotification, MemberUser, OpenDownloadRequest, PublishTermsRequest, ServiceApplication,
    ServiceList, ServiceMember, ServiceMembers, ServiceResponse, TermsResponse,
};
use pki::PartyId;
use protocol::{ItemId, OperationId, ServiceId, SignedObject};
use server_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Operator, PartyRequest};

use super::{hex_field, parse_card_id, parse_certificate, parse_der, parse_digest, AppState};
use crate::service::{Caller, DownloadChoice, MemberNotice, NewService};
use crate::store::{DownloadRecord, MemberRecord, MemberUserRecord, ServiceRecord, TermsRecord};

fn created_or_ok(new: bool) -> StatusCode {
    if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

fn parse_service_id(text: &str) -> Result<ServiceId, ApiError> {
    ServiceId::new(text).map_err(|e| ApiError::bad_request("invalid_service_id", e.to_string()))
}

fn parse_operation_id(text: &str) -> Result<OperationId, ApiError> {
    OperationId::from_hex(text)
        .map_err(|e| ApiError::bad_request("invalid_operation_id", e.to_string()))
}

fn parse_issuer(text: &str) -> Result<PartyId, ApiError> {
    PartyId::new(text).map_err(|e| ApiError::bad_request("invalid_issuer", format!("issuer: {e}")))
}

fn parse_aid(text: &str) -> Result<ItemId, ApiError> {
    let bytes = hex_field("invalid_aid", "aid", text)?;
    ItemId::new(&bytes).map_err(|e| ApiError::bad_request("invalid_aid", e.to_string()))
}

fn caller_of(party: &PartyRequest) -> Caller {
    Caller {
        role: party.request.caller_role,
        party: party.request.caller.clone(),
    }
}

fn terms_response(terms: &TermsRecord) -> TermsResponse {
    TermsResponse {
        version: terms.version,
        text: terms.text.clone(),
        digest: hex::encode(terms.digest.0),
        published_at: terms.published_at.0,
    }
}

fn service_response(service: &ServiceRecord) -> ServiceResponse {
    ServiceResponse {
        service_id: service.service_id.to_string(),
        name: service.name.clone(),
        description: service.description.clone(),
        issuer: service.issuer.to_string(),
        application: ServiceApplication {
            aid: hex::encode(service.aid.as_bytes()),
            version: service.version,
            size: service.size,
            name: service.application_name.clone(),
            digest: hex::encode(service.digest.0),
            policy: service.policy.bits(),
        },
        created_at: service.created_at.0,
    }
}

fn opened_response(download: &DownloadRecord) -> DownloadOpened {
    DownloadOpened {
        operation_id: download.operation_id.to_hex(),
        request: hex::encode(&download.request_der),
        not_after: download.not_after.0,
        state: download.stage.as_str().to_string(),
    }
}

fn member_user(user: &MemberUserRecord) -> MemberUser {
    MemberUser {
        user_id: user.user_id.clone(),
        name: user.name.clone(),
        email: user.email.clone(),
    }
}

fn member_response(member: &MemberRecord) -> ServiceMember {
    ServiceMember {
        card_id: member.card_id.to_hex(),
        user: member_user(&member.user),
        member_since: member.member_since.0,
        operation_id: member.operation_id.to_hex(),
    }
}

/// `PUT /v1/terms` (operator).
pub(super) async fn publish_terms(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<PublishTermsRequest>,
) -> Result<Response, ApiError> {
    let (terms, new) = state.provider.publish_terms(&request.text).await?;
    if new {
        tracing::info!(
            operator = %operator.name,
            version = terms.version,
            digest = %hex::encode(terms.digest.0),
            "membership terms published"
        );
    }
    Ok((created_or_ok(new), Json(terms_response(&terms))).into_response())
}

/// `GET /v1/terms[?version=]`.
pub(super) async fn terms(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Json<TermsResponse>, ApiError> {
    let terms = state.provider.terms(query.version).await?;
    Ok(Json(terms_response(&terms)))
}

/// `POST /v1/services` (operator, APP-2).
pub(super) async fn add_service(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(request): ApiJson<AddServiceRequest>,
) -> Result<Response, ApiError> {
    let service_id = parse_service_id(&request.service_id)?;
    let aid = parse_aid(&request.aid)?;
    let issuer = parse_issuer(&request.issuer)?;
    if request.name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the service's name is empty",
        ));
    }
    let new = NewService {
        service_id,
        name: request.name,
        description: request.description,
        aid,
        version: request.version,
        issuer,
    };
    let (service, added) = state.provider.add_service(&new).await?;
    if added {
        tracing::info!(
            operator = %operator.name,
            service = %service.service_id,
            aid = %hex::encode(service.aid.as_bytes()),
            version = service.version,
            size = service.size,
            "service added"
        );
    }
    Ok((created_or_ok(added), Json(service_response(&service))).into_response())
}

/// `GET /v1/services`: the catalog (S4).
pub(super) async fn services(State(state): State<AppState>) -> Result<Json<ServiceList>, ApiError> {
    let services = state.provider.services().await?;
    Ok(Json(ServiceList {
        services: services.iter().map(service_response).collect(),
    }))
}

/// `GET /v1/services/{id}`.
pub(super) async fn service(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ServiceResponse>, ApiError> {
    let service_id = parse_service_id(&id)?;
    let service = state.provider.service(&service_id).await?;
    Ok(Json(service_response(&service)))
}

/// `GET /v1/services/{id}/members` (operator: personal information).
pub(super) async fn service_members(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ServiceMembers>, ApiError> {
    let service_id = parse_service_id(&id)?;
    let members = state.provider.service_members(&service_id).await?;
    Ok(Json(ServiceMembers {
        service_id: service_id.to_string(),
        members: members.iter().map(member_response).collect(),
    }))
}

/// `PUT /v1/downloads/{op}` (S5–S6).
pub(super) async fn open_download(
    State(state): State<AppState>,
    ApiPath(op): ApiPath<String>,
    ApiJson(request): ApiJson<OpenDownloadRequest>,
) -> Result<Response, ApiError> {
    let operation_id = parse_operation_id(&op)?;
    let choice = DownloadChoice {
        card_id: parse_card_id(&request.card_id)?,
        issuer: parse_issuer(&request.issuer)?,
        service_id: parse_service_id(&request.service_id)?,
        terms_digest: parse_digest(
            "invalid_terms_digest",
            "terms_digest",
            &request.terms_digest,
        )?,
    };
    let (download, new) = state.provider.open_download(operation_id, &choice).await?;
    if new {
        tracing::info!(
            operation = %operation_id,
            card_id = %choice.card_id,
            service = %choice.service_id,
            "download requested"
        );
    }
    Ok((created_or_ok(new), Json(opened_response(&download))).into_response())
}

/// `GET /v1/downloads/{op}` (screen (i)).
pub(super) async fn download_state(
    State(state): State<AppState>,
    ApiPath(op): ApiPath<String>,
) -> Result<Json<DownloadState>, ApiError> {
    let operation_id = parse_operation_id(&op)?;
    let status = state.provider.download_status(&operation_id).await?;
    Ok(Json(DownloadState {
        operation_id: operation_id.to_hex(),
        state: status.download.stage.as_str().to_string(),
        member_since: status.member_since.map(|t| t.0),
    }))
}

/// `POST /v1/downloads/{op}/grant` (S11), a party request of the card's issuer.
pub(super) async fn download_grant(
    State(state): State<AppState>,
    ApiPath(op): ApiPath<String>,
    party: PartyRequest,
) -> Result<Response, ApiError> {
    let operation_id = parse_operation_id(&op)?;
    let request: DownloadGrantRequest = party.json()?;
    let sar: SignedObject = parse_der("invalid_sar", "sar", &request.sar)?;
    let application: SignedObject = parse_der(
        "invalid_download_application",
        "download_application",
        &request.download_application,
    )?;
    let rc = parse_certificate("invalid_rc", "rc", &request.rc)?;
    let grant = state
        .provider
        .download_grant(operation_id, &sar, &application, &rc, &caller_of(&party))
        .await?;
    if grant.new {
        state.authorizations.increment();
        tracing::info!(operation = %operation_id, caller = %party.request.caller, "download granted");
    }
    Ok((
        created_or_ok(grant.new),
        Json(SaResponse {
            sa: hex::encode(grant.sa.to_der()),
            not_after: grant.not_after.0,
        }),
    )
        .into_response())
}

/// `POST /v1/members` (S15–S16), a party request of the card's issuer.
pub(super) async fn notify_member(
    State(state): State<AppState>,
    party: PartyRequest,
) -> Result<Response, ApiError> {
    let request: MemberNotification = party.json()?;
    let notice = MemberNotice {
        operation_id: parse_operation_id(&request.operation_id)?,
        card_id: parse_card_id(&request.card_id)?,
        service_id: parse_service_id(&request.service_id)?,
        user: MemberUserRecord {
            user_id: request.user.user_id,
            name: request.user.name,
            email: request.user.email,
        },
        download_application: parse_der(
            "invalid_download_application",
            "download_application",
            &request.download_application,
        )?,
        receipt: parse_der("invalid_receipt", "receipt", &request.receipt)?,
        rc: parse_certificate("invalid_rc", "rc", &request.rc)?,
        irc: parse_certificate("invalid_irc", "irc", &request.irc)?,
    };
    let recorded = state
        .provider
        .record_member(&notice, &caller_of(&party))
        .await?;
    if recorded.newly_recorded {
        state.members_new.increment();
        tracing::info!(
            operation = %notice.operation_id,
            service = %recorded.member.service_id,
            card_id = %recorded.member.card_id,
            "member recorded"
        );
    } else {
        state.members_repeat.increment();
    }
    Ok((
        created_or_ok(recorded.newly_recorded),
        Json(MemberAcknowledgement {
            operation_id: notice.operation_id.to_hex(),
            member_since: recorded.member.member_since.0,
            newly_recorded: recorded.newly_recorded,
        }),
    )
        .into_response())
}
