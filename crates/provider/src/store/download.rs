//! What the provider keeps for adding an application over the Internet (docs/app-download.md
//! §3 "Provider", §4, §5): membership terms, services (APP-2), download operations, the SAs
//! granted on them and the members, with the [`DownloadStore`] trait every [`super::Store`]
//! implements. The SQL is `store/sql_download.rs`.

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, OperationId, Policy, ServiceId};

use super::{EntrySigner, LedgerRecord, NewReceipt, ReceiptOutcome, StoreError};

/// One version of the membership terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsRecord {
    pub version: u32,
    pub text: String,
    /// SHA-256 of the text's UTF-8 bytes.
    pub digest: Digest,
    pub published_at: UnixTime,
}

/// What [`DownloadStore::publish_terms`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermsOutcome {
    /// A new version.
    Published(TermsRecord),
    /// The latest version has this text already: nothing changed.
    Unchanged(TermsRecord),
}

/// A service of the catalog: one application of an issuer's application DB, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub service_id: ServiceId,
    pub name: String,
    pub description: String,
    /// The issuer whose application DB the application was pinned from.
    pub issuer: PartyId,
    pub aid: ItemId,
    pub version: u32,
    pub size: u32,
    /// SHA-256 of the code.
    pub digest: Digest,
    pub policy: Policy,
    /// The application's name in the issuer's DB.
    pub application_name: String,
    pub created_at: UnixTime,
}

/// What [`DownloadStore::insert_service`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceOutcome {
    Added,
    /// A service with this ID exists (as it is returned): nothing changed.
    Exists(ServiceRecord),
}

/// Where a provider download operation stands (`GET /v1/downloads/{op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadStage {
    /// The `DownloadRequest` was given out (S6).
    Requested,
    /// At least one SA was granted (S11).
    Granted,
    /// The member was recorded (S16).
    Member,
}

impl DownloadStage {
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadStage::Requested => "requested",
            DownloadStage::Granted => "granted",
            DownloadStage::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<DownloadStage> {
        [
            DownloadStage::Requested,
            DownloadStage::Granted,
            DownloadStage::Member,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A provider download operation, keyed by the terminal's operation ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRecord {
    pub operation_id: OperationId,
    pub card_id: CardId,
    pub issuer: PartyId,
    pub service_id: ServiceId,
    pub terms_digest: Digest,
    /// The `DownloadRequest` given out, DER: the card-signed application must hold exactly it.
    pub request_der: Vec<u8>,
    pub not_after: UnixTime,
    pub stage: DownloadStage,
    pub created_at: UnixTime,
}

/// What [`DownloadStore::open_download`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened,
    /// An operation with this ID exists (as it is returned): nothing changed.
    Exists(DownloadRecord),
}

/// An SA this provider granted on a download operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadGrantRecord {
    /// SHA-256 of the issuer's SAR DER: the key (the same SAR again answers this SA).
    pub sar_digest: Digest,
    pub operation_id: OperationId,
    /// SHA-256 of the SA DER: what the card's receipt names as `authorizationDigest`.
    pub sa_digest: Digest,
    pub sa_der: Vec<u8>,
    pub not_after: UnixTime,
    pub granted_at: UnixTime,
}

/// A grant to record, with the consent row that lets the card's receipt for its SDI count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDownloadGrant {
    pub grant: DownloadGrantRecord,
    pub consent: super::ConsentRecord,
}

/// What [`DownloadStore::record_download_grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    Granted,
    /// This SAR was granted on this provider's download before (the recorded grant).
    Exists(DownloadGrantRecord),
    /// This SAR was granted on another route (STO-1): nothing changed.
    SarSpent,
}

/// The member's personal information as the issuer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberUserRecord {
    pub user_id: String,
    pub name: String,
    pub email: String,
}

/// A member of a service: one per download operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub operation_id: OperationId,
    pub service_id: ServiceId,
    pub card_id: CardId,
    pub user: MemberUserRecord,
    /// `active`.
    pub state: String,
    pub download_application_der: Vec<u8>,
    pub receipt_der: Vec<u8>,
    pub member_since: UnixTime,
}

/// What [`DownloadStore::record_member`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOutcome {
    /// The member and the receipt (its ledger entry, new or recorded before through
    /// `POST /v1/receipts`) are recorded.
    Recorded {
        member: MemberRecord,
        entry: LedgerRecord,
    },
    /// This operation's member was recorded before: nothing changed.
    Repeated(MemberRecord),
    /// The receipt cannot be recorded (counter not increasing, another RC): nothing changed.
    ReceiptRefused(ReceiptOutcome),
}

/// The provider's download state. Each method is atomic and safe across instances.
#[async_trait]
pub trait DownloadStore: Send + Sync {
    /// Publishes `text` (SHA-256 `digest`) as the next terms version unless the latest has
    /// this digest.
    async fn publish_terms(
        &self,
        text: &str,
        digest: &Digest,
        now: UnixTime,
    ) -> Result<TermsOutcome, StoreError>;

    /// One terms version, or the latest when `version` is `None`.
    async fn terms(&self, version: Option<u32>) -> Result<Option<TermsRecord>, StoreError>;

    async fn insert_service(&self, service: &ServiceRecord) -> Result<ServiceOutcome, StoreError>;

    async fn service(&self, service_id: &ServiceId) -> Result<Option<ServiceRecord>, StoreError>;

    /// Every service, by service ID.
    async fn services(&self) -> Result<Vec<ServiceRecord>, StoreError>;

    async fn open_download(&self, download: &DownloadRecord) -> Result<OpenOutcome, StoreError>;

    async fn download(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<DownloadRecord>, StoreError>;

    /// Records a grant with its consent and moves the operation to `granted`, in one
    /// transaction.
    async fn record_download_grant(
        &self,
        grant: &NewDownloadGrant,
    ) -> Result<GrantOutcome, StoreError>;

    async fn download_grant(
        &self,
        sar_digest: &Digest,
    ) -> Result<Option<DownloadGrantRecord>, StoreError>;

    /// The grant on `operation_id` whose SA has digest `sa_digest`.
    async fn download_grant_for_sa(
        &self,
        operation_id: &OperationId,
        sa_digest: &Digest,
    ) -> Result<Option<DownloadGrantRecord>, StoreError>;

    /// In one transaction keyed by the operation ID: the receipt in the card's ledger (as
    /// [`super::Store::record_receipt`]; one recorded before counts), the member, the
    /// operation moved to `member`.
    async fn record_member(
        &self,
        receipt: &NewReceipt,
        signer: &dyn EntrySigner,
        member: &MemberRecord,
    ) -> Result<MemberOutcome, StoreError>;

    async fn member(&self, operation_id: &OperationId) -> Result<Option<MemberRecord>, StoreError>;

    /// Whether `card_id` is a member of `service_id` (through any operation).
    async fn is_member(&self, card_id: &CardId, service_id: &ServiceId)
        -> Result<bool, StoreError>;

    /// The members of `service_id`, by membership time then operation ID.
    async fn members_of(&self, service_id: &ServiceId) -> Result<Vec<MemberRecord>, StoreError>;

    /// Every download operation, newest first (the operators' console).
    async fn downloads(&self) -> Result<Vec<DownloadRecord>, StoreError>;
}
