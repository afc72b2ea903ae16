//! The provider's routes for adding an application over the Internet (issue 4,
//! docs/app-download.md §3 "Provider", §4): membership terms, the services catalog (APP-2),
//! download operations (S5–S6), the download grant the card's issuer asks for (S11, a party
//! request) and the member notification it sends once the card's receipt is recorded (S15, a
//! party request), and the members of a service. The JSON types (the provider serialises the
//! same) and the [`ProviderClient`] methods that call them. Binary values are lowercase hex;
//! signed objects hex of `SignedObject` DER.

use crypto::Digest;
use pki::{CardId, Certificate, PartyId, UnixTime};
use protocol::{OperationId, ServiceId, SignedObject};
use serde::{Deserialize, Serialize};

pub use crate::answers::FieldError;
use crate::answers::{digest_field, get, hex_field, object_field};
use crate::provider::{ProviderClient, SaResponse};
use crate::{Auth, ClientError, Method, PartySigner};

/// `PUT /v1/terms` (operator): publishes a new version of the membership terms.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PublishTermsRequest {
    /// The terms as the user reads them (UTF-8, not empty).
    pub text: String,
}

/// One version of the membership terms (`GET /v1/terms`: the latest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TermsResponse {
    /// 1, 2, … in publication order.
    pub version: u32,
    pub text: String,
    /// SHA-256 of the text's UTF-8 bytes, hex: what a download application binds
    /// (`termsDigest`).
    pub digest: String,
    pub published_at: u64,
}

/// `POST /v1/services` (operator): a service offering one application of an issuer's
/// application DB; the provider pins its size, digest and policy from
/// `GET {issuer}/v1/applications/{aid}?version=`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddServiceRequest {
    /// 1..64 of `A-Z a-z 0-9 . _ -`.
    pub service_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The application's AID (5..16 bytes), hex.
    pub aid: String,
    pub version: u32,
    /// The issuer (party ID) whose application DB holds it: one this provider works with.
    pub issuer: String,
}

/// The application a service installs, as pinned from the issuer's application DB.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceApplication {
    /// AID, hex.
    pub aid: String,
    pub version: u32,
    /// Bytes of the code package.
    pub size: u32,
    /// The application's name in the issuer's DB.
    pub name: String,
    /// SHA-256 of the code, hex.
    pub digest: String,
    /// Policy bits (protocol::Policy).
    pub policy: u32,
}

/// One service of the catalog (`GET /v1/services[/{id}]`, `POST /v1/services`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceResponse {
    pub service_id: String,
    pub name: String,
    pub description: String,
    /// The issuer whose application DB the application was pinned from.
    pub issuer: String,
    pub application: ServiceApplication,
    pub created_at: u64,
}

/// `GET /v1/services`: the catalog, by service ID.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceList {
    pub services: Vec<ServiceResponse>,
}

/// `PUT /v1/downloads/{operation_id}` (S5): the service the user chose for a card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenDownloadRequest {
    /// 32 hex digits.
    pub card_id: String,
    /// The card's issuer (party ID): one this provider works with.
    pub issuer: String,
    pub service_id: String,
    /// SHA-256 of the terms text the user accepted, hex: must be the latest terms' digest.
    pub terms_digest: String,
}

/// `PUT /v1/downloads/{operation_id}` (S6): what the card is asked to sign.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadOpened {
    /// 16 bytes, hex.
    pub operation_id: String,
    /// The `DownloadRequest`, hex DER: give it to the card (SIGN DOWNLOAD APPLICATION).
    pub request: String,
    pub not_after: u64,
    /// `requested` (or later, on a repeat after the op moved on).
    pub state: String,
}

/// `GET /v1/downloads/{operation_id}` (screen (i)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadState {
    pub operation_id: String,
    /// `requested`, `granted` or `member`.
    pub state: String,
    /// Present once the member is recorded (`member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_since: Option<u64>,
}

/// The states of a provider download operation, as `DownloadState::state` spells them.
pub mod download_states {
    pub const REQUESTED: &str = "requested";
    pub const GRANTED: &str = "granted";
    pub const MEMBER: &str = "member";
}

/// `POST /v1/downloads/{operation_id}/grant` (S11), a party request of the card's issuer.
/// The answer is [`SaResponse`] `{sa, not_after}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DownloadGrantRequest {
    /// The issuer's SAR over the application's SDI, hex DER SignedObject.
    pub sar: String,
    /// The card-signed `DownloadApplication`, hex DER SignedObject.
    pub download_application: String,
    /// The card's RC, hex DER.
    pub rc: String,
}

/// The member's personal information, from the issuer's registry (SEC-1: sent only to the
/// provider the card-signed application names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberUser {
    pub user_id: String,
    pub name: String,
    pub email: String,
}

/// `POST /v1/members` (S15), a party request of the card's issuer once the card's receipt
/// for the operation is recorded: the new member, with the card's own proof.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberNotification {
    /// 16 bytes, hex.
    pub operation_id: String,
    /// 32 hex digits.
    pub card_id: String,
    pub service_id: String,
    pub user: MemberUser,
    /// The card-signed `DownloadApplication`, hex DER SignedObject.
    pub download_application: String,
    /// The card's receipt of the install, hex DER SignedObject.
    pub receipt: String,
    /// The card's RC, hex DER.
    pub rc: String,
    /// The IRC of the issuer that signed the RC, hex DER.
    pub irc: String,
}

/// `POST /v1/members`: the acknowledgement (201 the first time, 200 on a repeat).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberAcknowledgement {
    pub operation_id: String,
    pub member_since: u64,
    /// False when this operation's member had been recorded before (nothing changed).
    pub newly_recorded: bool,
}

/// One member of a service (`GET /v1/services/{id}/members`, operators only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceMember {
    pub card_id: String,
    pub user: MemberUser,
    pub member_since: u64,
    pub operation_id: String,
}

/// `GET /v1/services/{id}/members`: by membership time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceMembers {
    pub service_id: String,
    pub members: Vec<ServiceMember>,
}

impl TermsResponse {
    /// The digest a download names as `terms_digest`.
    pub fn digest_value(&self) -> Result<Digest, FieldError> {
        digest_field("digest", &self.digest)
    }
}

impl ServiceApplication {
    pub fn aid_bytes(&self) -> Result<Vec<u8>, FieldError> {
        hex_field("aid", "hex", &self.aid)
    }

    pub fn digest_value(&self) -> Result<Digest, FieldError> {
        digest_field("digest", &self.digest)
    }
}

impl DownloadOpened {
    /// The `DownloadRequest`'s DER, for the card.
    pub fn request_der(&self) -> Result<Vec<u8>, FieldError> {
        hex_field("request", "a hex DER DownloadRequest", &self.request)
    }
}

impl ServiceMember {
    pub fn card_id_value(&self) -> Result<CardId, FieldError> {
        const EXPECTED: &str = "16 bytes of hex";
        let bytes = hex_field("card_id", EXPECTED, &self.card_id)?;
        CardId::from_slice(&bytes).ok_or(FieldError {
            field: "card_id",
            expected: EXPECTED,
            detail: format!("{} bytes", bytes.len()),
        })
    }
}

fn download_path(operation_id: &OperationId, rest: &str) -> String {
    format!("/v1/downloads/{}{rest}", operation_id.to_hex())
}

impl ProviderClient {
    /// `PUT /v1/terms` as operator `token`: publishes `text` as the next version of the
    /// membership terms (older versions are kept: a download binds one by digest).
    pub async fn publish_terms(
        &self,
        token: &str,
        text: &str,
    ) -> Result<TermsResponse, ClientError> {
        let request = PublishTermsRequest {
            text: text.to_string(),
        };
        self.http()
            .call(
                Method::Put,
                "/v1/terms",
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/terms`: the latest membership terms (404 `unknown_terms` before any).
    pub async fn terms(&self) -> Result<TermsResponse, ClientError> {
        get(self.http(), "/v1/terms").await
    }

    /// `GET /v1/terms?version=`: one version of the terms (404 `unknown_terms`).
    pub async fn terms_version(&self, version: u32) -> Result<TermsResponse, ClientError> {
        get(self.http(), &format!("/v1/terms?version={version}")).await
    }

    /// `POST /v1/services` as operator `token`: adds a service; the provider pins the
    /// application's size, digest and policy from the issuer's application DB.
    pub async fn add_service(
        &self,
        token: &str,
        service: &AddServiceRequest,
    ) -> Result<ServiceResponse, ClientError> {
        self.http()
            .call(
                Method::Post,
                "/v1/services",
                Some(service),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/services`: the catalog (S4).
    pub async fn services(&self) -> Result<ServiceList, ClientError> {
        get(self.http(), "/v1/services").await
    }

    /// `GET /v1/services/{service_id}`.
    pub async fn service(&self, service_id: &ServiceId) -> Result<ServiceResponse, ClientError> {
        get(self.http(), &format!("/v1/services/{service_id}")).await
    }

    /// `PUT /v1/downloads/{operation_id}` (S5–S6): opens (or, the same body again, answers
    /// again) the provider's download operation for `card_id` of `issuer` on `service_id`
    /// under the terms with `terms_digest`; the answer holds the `DownloadRequest` for the card.
    pub async fn open_download(
        &self,
        operation_id: &OperationId,
        card_id: &CardId,
        issuer: &PartyId,
        service_id: &ServiceId,
        terms_digest: &Digest,
    ) -> Result<DownloadOpened, ClientError> {
        let request = OpenDownloadRequest {
            card_id: card_id.to_hex(),
            issuer: issuer.to_string(),
            service_id: service_id.to_string(),
            terms_digest: hex::encode(terms_digest.0),
        };
        self.http()
            .call(
                Method::Put,
                &download_path(operation_id, ""),
                Some(&request),
                Auth::None,
            )
            .await
    }

    /// `GET /v1/downloads/{operation_id}`: `requested`, `granted` or `member` (with
    /// `member_since`).
    pub async fn download(&self, operation_id: &OperationId) -> Result<DownloadState, ClientError> {
        get(self.http(), &download_path(operation_id, "")).await
    }

    /// `POST /v1/downloads/{operation_id}/grant` (S11) as a party request of the card's
    /// issuer `signer` at `now`: the provider's SA over the issuer's `sar` for the card-signed
    /// `download_application` under the card's `rc`. The same SAR again answers the recorded
    /// SA.
    pub async fn download_grant(
        &self,
        signer: &PartySigner,
        now: UnixTime,
        operation_id: &OperationId,
        sar: &SignedObject,
        download_application: &SignedObject,
        rc: &Certificate,
    ) -> Result<SaResponse, ClientError> {
        let audience = self.party_id().await?;
        let request = DownloadGrantRequest {
            sar: hex::encode(sar.to_der()),
            download_application: hex::encode(download_application.to_der()),
            rc: hex::encode(rc.der()),
        };
        self.http()
            .call(
                Method::Post,
                &download_path(operation_id, "/grant"),
                Some(&request),
                Auth::Party {
                    signer,
                    audience: &audience,
                    now,
                },
            )
            .await
    }

    /// `POST /v1/members` (S15) as a party request of the card's issuer `signer` at `now`:
    /// the new member. Acknowledged either way: `newly_recorded` is false on a repeat.
    pub async fn notify_member(
        &self,
        signer: &PartySigner,
        now: UnixTime,
        notification: &MemberNotification,
    ) -> Result<MemberAcknowledgement, ClientError> {
        let audience = self.party_id().await?;
        self.http()
            .call(
                Method::Post,
                "/v1/members",
                Some(notification),
                Auth::Party {
                    signer,
                    audience: &audience,
                    now,
                },
            )
            .await
    }

    /// `GET /v1/services/{service_id}/members` as operator `token` (personal information).
    pub async fn service_members(
        &self,
        token: &str,
        service_id: &ServiceId,
    ) -> Result<ServiceMembers, ClientError> {
        self.http()
            .call::<(), _>(
                Method::Get,
                &format!("/v1/services/{service_id}/members"),
                None,
                Auth::Operator(token),
            )
            .await
    }
}

/// Decodes the hex SignedObject fields of a notification (for the provider and tests).
impl MemberNotification {
    pub fn download_application_object(&self) -> Result<SignedObject, FieldError> {
        object_field("download_application", &self.download_application)
    }

    pub fn receipt_object(&self) -> Result<SignedObject, FieldError> {
        object_field("receipt", &self.receipt)
    }
}
