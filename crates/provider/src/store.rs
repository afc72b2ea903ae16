//! The provider's persistence boundary: the [`Store`] trait, the records it keeps, and its
//! error. Every multi-row change is one transaction; single-use consents are enforced by a
//! unique key, so several instances on one PostgreSQL never accept one SAR twice.
//! The implementation for both backends is `store/sql.rs`.

mod download;
mod sql;
mod sql_download;

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, Policy};

pub use download::{
    DownloadGrantRecord, DownloadRecord, DownloadStage, DownloadStore, GrantOutcome, MemberOutcome,
    MemberRecord, MemberUserRecord, NewDownloadGrant, OpenOutcome, ServiceOutcome, ServiceRecord,
    TermsOutcome, TermsRecord,
};
pub use sql::{SqlStore, MIGRATIONS};

/// One published version of a catalog item (without its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub item_id: ItemId,
    pub version: u32,
    pub size: u32,
    /// SHA-256 of the data.
    pub data_digest: Digest,
    pub policy: Policy,
    pub published_at: UnixTime,
}

/// What [`Store::publish_item`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    Published,
    /// The same item, version and data were published before: nothing changed.
    AlreadyPublished {
        existing: ItemRecord,
    },
    /// This item version exists with other data or policy: nothing changed.
    Conflict {
        existing: ItemRecord,
    },
}

/// Which consent the provider signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    /// STO-1: an SA over the issuer's SAR.
    Grant,
    /// STO-2: our own SAR.
    Request,
    /// STO-3: a lone SA under the issuer's delegation.
    Alone,
    /// Issue 4, S11: an SA over the card's issuer's SAR on a download operation.
    Download,
}

impl ConsentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::Grant => "grant",
            ConsentKind::Request => "request",
            ConsentKind::Alone => "alone",
            ConsentKind::Download => "download",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentKind> {
        [
            ConsentKind::Grant,
            ConsentKind::Request,
            ConsentKind::Alone,
            ConsentKind::Download,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A consent the provider signed, kept so receipts can be matched to what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The single-use key: SHA-256 of the issuer's SAR (grant, download), of our SAR (request)
    /// or of our SA (alone).
    pub consent_digest: Digest,
    pub kind: ConsentKind,
    pub card_id: CardId,
    pub item_id: ItemId,
    pub version: u32,
    pub sdi_digest: Digest,
    pub sdi_der: Vec<u8>,
    /// The DER of what we signed (the SA or the SAR).
    pub signed_der: Vec<u8>,
    pub created_at: UnixTime,
}

/// An issuer's delegation kept for STO-3 (verified before it is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    /// SHA-256 of the delegation's DER: its key.
    pub digest: Digest,
    pub issuer: PartyId,
    /// The card it is limited to; `None`: any card of its issuer.
    pub card_id: Option<CardId>,
    pub not_after: UnixTime,
    /// The signed delegation (SignedObject DER).
    pub delegation_der: Vec<u8>,
    pub stored_at: UnixTime,
}

/// An SDCI' the Data Registrar certified for this provider (STO-5), kept per SDI so serving
/// the same certified data again does not ask the registrar again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarSdciRecord {
    /// SHA-256 of the SDI's DER: the key.
    pub sdi_digest: Digest,
    /// The data registrar that signed it.
    pub registrar: PartyId,
    /// The SDCI' as received (SignedObject DER), served as is.
    pub sdci_der: Vec<u8>,
    pub obtained_at: UnixTime,
}

/// One of this provider's items as the provider believes a card holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewItem {
    pub item_id: ItemId,
    pub version: u32,
    pub size: u32,
    pub data_digest: Digest,
    pub policy: Policy,
}

/// What a verified receipt does to the provider's view of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewChange {
    Stored(ViewItem),
    Deleted(ItemId),
}

/// A verified card receipt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    pub card_id: CardId,
    /// The card's RC the receipt verified under (recorded with the card's first receipt).
    pub rc_der: Vec<u8>,
    pub receipt_der: Vec<u8>,
    pub counter: u64,
    pub change: ViewChange,
    pub recorded_at: UnixTime,
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub seq: u64,
    pub counter: u64,
    /// DER of the signed `LedgerEntry`.
    pub entry_der: Vec<u8>,
}

/// What [`Store::record_receipt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    Recorded(LedgerRecord),
    /// This exact receipt was recorded before: nothing changed.
    Repeated(LedgerRecord),
    /// The counter is not above the last one recorded for the card: nothing changed.
    CounterNotIncreasing {
        last: u64,
    },
    /// The card's receipts were recorded under another RC: nothing changed.
    RcMismatch,
}

/// Signs the ledger entry `seq` (after `prev`, the digest of the previous entry's DER) for the
/// receipt being recorded, with `view` the provider's view of the card after it. Called by the
/// store inside the receipt's transaction, so the entry signed is exactly the one stored.
pub trait EntrySigner: Send + Sync {
    fn sign(&self, seq: u64, prev: Digest, view: &[ViewItem]) -> Result<Vec<u8>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A value read from the database is not one we write: a hand edit or another program.
    #[error("stored {what} is invalid: {value:?}")]
    Corrupt { what: &'static str, value: String },

    /// A number too large for the database's signed 64-bit integers.
    #[error("{what} {value} does not fit the database")]
    OutOfRange { what: &'static str, value: u64 },

    #[error("signing ledger entry {seq} failed: {reason}")]
    EntrySigning { seq: u64, reason: String },
}

/// The provider's state. Implementations make each method atomic and safe to call
/// concurrently from several processes on one database.
#[async_trait]
pub trait Store: DownloadStore + Send + Sync + std::fmt::Debug {
    /// Publishes `item` with `data`; idempotent for identical content.
    async fn publish_item(
        &self,
        item: &ItemRecord,
        data: &[u8],
    ) -> Result<PublishOutcome, StoreError>;

    /// One version of an item, or its highest version when `version` is `None`.
    async fn item(
        &self,
        item_id: &ItemId,
        version: Option<u32>,
    ) -> Result<Option<ItemRecord>, StoreError>;

    /// Every item version, by item ID then version.
    async fn items(&self) -> Result<Vec<ItemRecord>, StoreError>;

    async fn item_data(
        &self,
        item_id: &ItemId,
        version: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a consent; `false` (nothing changed) if one with its digest exists.
    async fn insert_consent(&self, consent: &ConsentRecord) -> Result<bool, StoreError>;

    /// A consent we signed for `card_id` over the SDI with digest `sdi_digest`.
    async fn consent_for_sdi(
        &self,
        card_id: &CardId,
        sdi_digest: &Digest,
    ) -> Result<Option<ConsentRecord>, StoreError>;

    /// Whether we signed any consent for `card_id` over this item version.
    async fn has_consent_for_item(
        &self,
        card_id: &CardId,
        item_id: &ItemId,
        version: u32,
    ) -> Result<bool, StoreError>;

    /// Records a receipt in one transaction: the card's counter, its view, a ledger entry
    /// signed by `signer`. Idempotent on the receipt's DER.
    async fn record_receipt(
        &self,
        receipt: &NewReceipt,
        signer: &dyn EntrySigner,
    ) -> Result<ReceiptOutcome, StoreError>;

    /// The RC a card's receipts are recorded under, if any receipt was.
    async fn card_rc(&self, card_id: &CardId) -> Result<Option<Vec<u8>>, StoreError>;

    /// The provider's view of the card: its items there, ascending by item ID.
    async fn contents(&self, card_id: &CardId) -> Result<Vec<ViewItem>, StoreError>;

    /// The card's ledger, by ascending seq.
    async fn ledger(&self, card_id: &CardId) -> Result<Vec<LedgerRecord>, StoreError>;

    /// Cards whose view holds `item_id` (any version), ascending by card ID.
    async fn members(&self, item_id: &ItemId) -> Result<Vec<(CardId, u32)>, StoreError>;

    /// Keeps a delegation; `false` (nothing changed) if one with its digest is kept already.
    async fn insert_delegation(&self, delegation: &DelegationRecord) -> Result<bool, StoreError>;

    /// Every delegation kept, by the time it was stored, then digest.
    async fn delegations(&self) -> Result<Vec<DelegationRecord>, StoreError>;

    /// The delegations that may cover `card_id` at `now`: limited to that card or to none,
    /// `not_after` at or after `now`; those naming the card first, then the longest-lived.
    async fn delegations_for_card(
        &self,
        card_id: &CardId,
        now: UnixTime,
    ) -> Result<Vec<DelegationRecord>, StoreError>;

    /// The SDCI' kept for the SDI with digest `sdi_digest`, if any.
    async fn registrar_sdci(
        &self,
        sdi_digest: &Digest,
    ) -> Result<Option<RegistrarSdciRecord>, StoreError>;

    /// Keeps an SDCI', replacing the one kept for its SDI (concurrent callers: the last
    /// one wins, and each kept one verified).
    async fn put_registrar_sdci(&self, sdci: &RegistrarSdciRecord) -> Result<(), StoreError>;
}
