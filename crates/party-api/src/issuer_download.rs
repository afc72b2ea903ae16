//! The issuer's routes of issue 4 (docs/app-download.md §3, "Issuer") as a caller sees them:
//! the application DB (APP-1), the standing check (S1–S3), download operations (S8–S14) and
//! the operators' views of the registry, the operations and the member-notification outbox.
//! The JSON types (the issuer serialises them too) and [`IssuerClient`]'s methods for them.
//! Binary values are lowercase hex; signed objects are hex of `SignedObject` DER; operation
//! IDs are 32 hex characters.

use pki::{CardId, Certificate};
use protocol::{Challenge, ItemId, Nonce, OperationId, SignedObject};
use serde::{Deserialize, Serialize};

use crate::answers::{digest_field, get, hex_field, object_field, post, FieldError};
use crate::issuer::{IssuerClient, ReceiptResponse};
use crate::{Auth, ClientError, Method};

/// `POST /v1/applications` (operator): adds one version of an application to the issuer's
/// application DB.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// The AID, hex (5..=16 bytes).
    pub aid: String,
    pub version: u32,
    /// The provider whose service it is (it must have a policy at the issuer).
    pub provider: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The code package, hex (1 byte .. 1 MiB).
    pub code: String,
    /// Item policy bits (default 0; certified-data-required is refused).
    #[serde(default)]
    pub policy: Option<u32>,
}

/// One application of the application DB, without its code (`GET /v1/applications/{aid}`):
/// what a provider pins a service to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApplicationDescriptor {
    /// Hex.
    pub aid: String,
    pub version: u32,
    /// Bytes of the code.
    pub size: u32,
    /// SHA-256 of the code, hex.
    pub digest: String,
    pub provider: String,
    pub name: String,
    pub description: String,
    pub policy: u32,
    pub added_at: u64,
}

/// `GET /v1/applications`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApplicationsResponse {
    /// By AID, then version.
    pub applications: Vec<ApplicationDescriptor>,
}

/// `POST /v1/cards/{card_id}/checks` (S1): the nonce the card's signed listing must answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckResponse {
    pub card_id: String,
    /// 16 bytes, hex: give it to the card's GET STATUS.
    pub nonce: String,
    pub expires_at: u64,
}

/// `POST /v1/cards/{card_id}/checks/{nonce}` (S2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StandingRequest {
    /// The card's signed listing answering the nonce (SignedObject DER), hex.
    pub listing: String,
}

/// The card's holder as the standing shows it (no e-mail: that stays with operators).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub user_id: String,
    pub name: String,
}

/// An application on the card that the application DB describes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstalledApplication {
    /// Hex.
    pub aid: String,
    pub version: u32,
    pub name: String,
    pub provider: String,
    pub size: u32,
}

/// The card's standing (S3, screen (d)): registered, capacity and free bytes as its signed
/// listing says, its applications, whether the registry is in sync, open operations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StandingResponse {
    pub card_id: String,
    /// `registered`.
    pub status: String,
    pub holder: Holder,
    pub capacity: u32,
    pub free: u32,
    pub card_counter: u64,
    pub issuer_counter: u64,
    pub in_sync: bool,
    pub applications: Vec<InstalledApplication>,
    /// Operation IDs open for the card (continue one after losing the journal).
    pub open_downloads: Vec<String>,
}

/// `POST /v1/downloads` (S8).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenDownloadRequest {
    /// The card-signed DownloadApplication (SignedObject DER), hex.
    pub download_application: String,
    /// The card's RC, DER hex (it must be the registry's).
    pub rc: String,
}

/// The operation as opened (S10).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadOpened {
    pub operation_id: String,
    /// `opened` (or `installed` when an installed operation's request is sent again).
    pub state: String,
    pub application: ApplicationDescriptor,
    /// The SDI every attempt's SAR is over (DER hex; owner = the provider).
    pub sdi: String,
    /// Free bytes counted for the card: the smaller of the registry's and the card's.
    pub free: u32,
}

/// `POST /v1/downloads/{op}/authorizations` (S11).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DownloadAuthorizationRequest {
    /// The card's current challenge (16 bytes), hex.
    pub challenge: String,
}

/// One attempt's consents: the issuer's SAR and the provider's SA over it (verified by the
/// issuer): give the SA to the card's INSTALL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadAuthorization {
    pub attempt: u32,
    /// The issuer's SAR (SignedObject DER), hex.
    pub sar: String,
    /// The provider's SA (SignedObject DER), hex.
    pub sa: String,
    /// The SA's `not_after`.
    pub not_after: u64,
}

/// `GET /v1/downloads/{op}/package`: the code to LOAD.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageResponse {
    pub aid: String,
    pub version: u32,
    pub size: u32,
    /// SHA-256 of the code, hex (the SDI's data digest).
    pub digest: String,
    /// The code, hex.
    pub code: String,
}

/// `POST /v1/downloads/{op}/receipt` (S13).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DownloadReceiptRequest {
    /// The card's signed receipt (SignedObject DER), hex.
    pub receipt: String,
}

/// The member notification of an installed operation (S15).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotificationSummary {
    /// `pending`, `delivered` or `stuck`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered_at: Option<u64>,
}

/// Where an operation stands after a receipt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OperationProgress {
    /// `opened` or `installed`.
    pub state: String,
    pub notification: Option<NotificationSummary>,
}

/// The answer to `POST /v1/downloads/{op}/receipt`: `POST /v1/receipts`'s, plus the operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadReceiptResponse {
    #[serde(flatten)]
    pub receipt: ReceiptResponse,
    pub operation: OperationProgress,
}

/// One authorization attempt of an operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptSummary {
    pub attempt: u32,
    /// SHA-256 of the provider's SA (what the card's receipt names), hex; none while the
    /// provider has not answered.
    pub sa_digest: Option<String>,
    pub issued_at: u64,
}

/// `GET /v1/downloads/{op}` (and each of `GET /v1/downloads`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadResponse {
    pub operation_id: String,
    pub card_id: String,
    pub provider: String,
    pub service_id: String,
    pub aid: String,
    pub version: u32,
    /// `opened` or `installed`.
    pub state: String,
    pub opened_at: u64,
    pub installed_at: Option<u64>,
    pub attempts: Vec<AttemptSummary>,
    /// The counter of the receipt that installed it.
    pub receipt_counter: Option<u64>,
    pub notification: Option<NotificationSummary>,
}

/// `GET /v1/downloads?state=` (operator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadsResponse {
    /// Oldest first.
    pub downloads: Vec<DownloadResponse>,
}

/// One row of the member-notification outbox (operator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotificationRow {
    pub operation_id: String,
    pub provider: String,
    /// `pending`, `delivered` or `stuck`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: u64,
    /// Until when a notifier holds it (an attempt in flight).
    pub lease_until: Option<u64>,
    pub last_error: Option<String>,
    pub created_at: u64,
    pub delivered_at: Option<u64>,
}

/// `GET /v1/notifications?state=` (operator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotificationsResponse {
    /// Oldest first.
    pub notifications: Vec<NotificationRow>,
}

/// The holder's personal information (APP-1; operators only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PersonalInformation {
    pub user_id: String,
    pub name: String,
    pub email: String,
}

/// `GET /v1/cards/{card_id}/registry` (operator): APP-1's personal-information registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistryResponse {
    pub card_id: String,
    /// `personalised`, `registered` or `revoked`.
    pub status: String,
    /// Absent before registration.
    pub holder: Option<PersonalInformation>,
    pub capacity: u32,
    /// Free bytes by the registry's view (receipts recorded).
    pub free: u32,
    pub last_counter: u64,
    pub applications: Vec<InstalledApplication>,
    /// Every item of the view (applications and stored data).
    pub items: Vec<crate::issuer::ItemBody>,
    pub downloads: Vec<DownloadResponse>,
}

impl ApplicationDescriptor {
    /// The AID.
    pub fn aid_value(&self) -> Result<ItemId, FieldError> {
        const EXPECTED: &str = "a hex AID of 1..=16 bytes";
        ItemId::new(&hex_field("aid", EXPECTED, &self.aid)?).map_err(|e| FieldError {
            field: "aid",
            expected: EXPECTED,
            detail: e.to_string(),
        })
    }

    /// The SHA-256 of the code.
    pub fn digest_value(&self) -> Result<crypto::Digest, FieldError> {
        digest_field("digest", &self.digest)
    }
}

impl CheckResponse {
    /// The nonce to give the card's GET STATUS.
    pub fn nonce_value(&self) -> Result<Nonce, FieldError> {
        const EXPECTED: &str = "a hex nonce of 0..=32 bytes";
        Nonce::new(&hex_field("nonce", EXPECTED, &self.nonce)?).map_err(|e| FieldError {
            field: "nonce",
            expected: EXPECTED,
            detail: e.to_string(),
        })
    }
}

impl DownloadOpened {
    pub fn operation_id_value(&self) -> Result<OperationId, FieldError> {
        operation_field("operation_id", &self.operation_id)
    }

    /// The SDI the attempts' SARs are over.
    pub fn sdi_value(&self) -> Result<protocol::Sdi, FieldError> {
        const EXPECTED: &str = "a hex DER SDI";
        protocol::Sdi::from_der(&hex_field("sdi", EXPECTED, &self.sdi)?).map_err(|e| FieldError {
            field: "sdi",
            expected: EXPECTED,
            detail: e.to_string(),
        })
    }
}

impl DownloadAuthorization {
    pub fn sar_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sar", &self.sar)
    }

    /// The provider's SA, for the card's INSTALL.
    pub fn sa_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sa", &self.sa)
    }
}

impl PackageResponse {
    /// The code to LOAD.
    pub fn code_bytes(&self) -> Result<Vec<u8>, FieldError> {
        hex_field("code", "hex bytes", &self.code)
    }

    pub fn digest_value(&self) -> Result<crypto::Digest, FieldError> {
        digest_field("digest", &self.digest)
    }
}

fn operation_field(field: &'static str, text: &str) -> Result<OperationId, FieldError> {
    OperationId::from_hex(text).map_err(|e| FieldError {
        field,
        expected: "32 hex characters",
        detail: e.to_string(),
    })
}

fn download_path(operation_id: &OperationId, rest: &str) -> String {
    format!("/v1/downloads/{}{rest}", operation_id.to_hex())
}

/// `?state=` when given (states are plain words: nothing to escape).
fn state_query(path: &str, state: Option<&str>) -> String {
    match state {
        Some(state) => format!("{path}?state={state}"),
        None => path.to_string(),
    }
}

impl IssuerClient {
    /// `POST /v1/applications` as operator `token`: adds an application version (the same
    /// again answers it; other content under a taken version is 409
    /// `application_version_exists`).
    pub async fn add_application(
        &self,
        token: &str,
        application: &ApplicationRequest,
    ) -> Result<ApplicationDescriptor, ClientError> {
        self.http()
            .call(
                Method::Post,
                "/v1/applications",
                Some(application),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/applications`: the application DB, without code.
    pub async fn applications(&self) -> Result<ApplicationsResponse, ClientError> {
        get(self.http(), "/v1/applications").await
    }

    /// `GET /v1/applications/{aid}?version=`: one version (the highest when `None`); 404
    /// `unknown_application`.
    pub async fn application(
        &self,
        aid: &ItemId,
        version: Option<u32>,
    ) -> Result<ApplicationDescriptor, ClientError> {
        let mut path = format!("/v1/applications/{}", hex::encode(aid.as_bytes()));
        if let Some(version) = version {
            path.push_str(&format!("?version={version}"));
        }
        get(self.http(), &path).await
    }

    /// `POST /v1/cards/{card_id}/checks` (S1): a nonce for the card's signed listing.
    pub async fn check(&self, card_id: &CardId) -> Result<CheckResponse, ClientError> {
        post(
            self.http(),
            &format!("/v1/cards/{}/checks", card_id.to_hex()),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /v1/cards/{card_id}/checks/{nonce}` (S2–S3): the card's signed `listing`
    /// answering `nonce`; the card's standing.
    pub async fn standing(
        &self,
        card_id: &CardId,
        nonce: &Nonce,
        listing: &SignedObject,
    ) -> Result<StandingResponse, ClientError> {
        let request = StandingRequest {
            listing: hex::encode(listing.to_der()),
        };
        let path = format!(
            "/v1/cards/{}/checks/{}",
            card_id.to_hex(),
            hex::encode(nonce.as_bytes())
        );
        post(self.http(), &path, &request).await
    }

    /// `POST /v1/downloads` (S8–S10): the card-signed download application with its RC.
    /// Idempotent on the operation ID (the same request again answers the operation).
    pub async fn open_download(
        &self,
        download_application: &SignedObject,
        rc: &Certificate,
    ) -> Result<DownloadOpened, ClientError> {
        let request = OpenDownloadRequest {
            download_application: hex::encode(download_application.to_der()),
            rc: hex::encode(rc.der()),
        };
        post(self.http(), "/v1/downloads", &request).await
    }

    /// `POST /v1/downloads/{op}/authorizations` (S11): the attempt for the card's `challenge`
    /// (the same challenge again answers the same attempt).
    pub async fn authorize_download(
        &self,
        operation_id: &OperationId,
        challenge: &Challenge,
    ) -> Result<DownloadAuthorization, ClientError> {
        let request = DownloadAuthorizationRequest {
            challenge: hex::encode(challenge.0),
        };
        post(
            self.http(),
            &download_path(operation_id, "/authorizations"),
            &request,
        )
        .await
    }

    /// `GET /v1/downloads/{op}/package`: the code to LOAD.
    pub async fn package(
        &self,
        operation_id: &OperationId,
    ) -> Result<PackageResponse, ClientError> {
        get(self.http(), &download_path(operation_id, "/package")).await
    }

    /// `POST /v1/downloads/{op}/receipt` (S13–S14): the card's receipt for one of the
    /// operation's attempts. Idempotent: the same receipt answers the first entry.
    pub async fn download_receipt(
        &self,
        operation_id: &OperationId,
        receipt: &SignedObject,
    ) -> Result<DownloadReceiptResponse, ClientError> {
        let request = DownloadReceiptRequest {
            receipt: hex::encode(receipt.to_der()),
        };
        post(
            self.http(),
            &download_path(operation_id, "/receipt"),
            &request,
        )
        .await
    }

    /// `GET /v1/downloads/{op}`: where the operation stands (the resume rule asks it first).
    pub async fn download(
        &self,
        operation_id: &OperationId,
    ) -> Result<DownloadResponse, ClientError> {
        get(self.http(), &download_path(operation_id, "")).await
    }

    /// `GET /v1/cards/{card_id}/registry` as operator `token`: APP-1's personal information.
    pub async fn registry(
        &self,
        token: &str,
        card_id: &CardId,
    ) -> Result<RegistryResponse, ClientError> {
        self.http()
            .call::<(), _>(
                Method::Get,
                &format!("/v1/cards/{}/registry", card_id.to_hex()),
                None,
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/downloads?state=` as operator `token` (`opened`, `installed` or all).
    pub async fn downloads(
        &self,
        token: &str,
        state: Option<&str>,
    ) -> Result<DownloadsResponse, ClientError> {
        self.http()
            .call::<(), _>(
                Method::Get,
                &state_query("/v1/downloads", state),
                None,
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/notifications?state=` as operator `token` (`pending`, `delivered`, `stuck`
    /// or all).
    pub async fn notifications(
        &self,
        token: &str,
        state: Option<&str>,
    ) -> Result<NotificationsResponse, ClientError> {
        self.http()
            .call::<(), _>(
                Method::Get,
                &state_query("/v1/notifications", state),
                None,
                Auth::Operator(token),
            )
            .await
    }

    /// `POST /v1/notifications/{op}/retry` as operator `token`: the notification is due now.
    pub async fn retry_notification(
        &self,
        token: &str,
        operation_id: &OperationId,
    ) -> Result<NotificationRow, ClientError> {
        self.http()
            .call::<(), _>(
                Method::Post,
                &format!("/v1/notifications/{}/retry", operation_id.to_hex()),
                None,
                Auth::Operator(token),
            )
            .await
    }
}
