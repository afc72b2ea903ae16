//! The issuer's persistence boundary: the [`Store`] trait, the records it keeps, and its error.
//! Every multi-row change is one transaction; single-use things (registration challenges,
//! SARs, ledger positions, receipts) are enforced by keys in the database, so several instances
//! on one PostgreSQL never both accept one; RC revocations and the CRLs listing them are
//! numbered through a single-row counter every writer updates first (REG-3). The
//! implementation for both backends is `store/sql.rs`.

mod sql;

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, PartyId, PkiError, UnixTime};
use protocol::{Challenge, ItemId, ListedItem, Nonce, OperationId, Policy, ServiceId};

pub use sql::{SqlStore, MIGRATIONS};

/// One card in the registry, as personalised (CARD-3, KEY-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    pub card_id: CardId,
    /// `Sk` wrapped under the issuer's wrapping key (see `service::SkWrapping`).
    pub sk_wrapped: Vec<u8>,
    pub sk_version: u8,
    pub pin_salt: [u8; 16],
    pub pin_try_limit: u8,
    pub issuer_authenticator: Vec<u8>,
    /// Content capacity written to the card, in bytes.
    pub capacity: u32,
    /// When the record was made; also the card's initial time floor.
    pub personalised_at: UnixTime,
    /// The operator who asked for it.
    pub personalised_by: String,
}

/// A REG-2 challenge handed out for one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub challenge: Challenge,
    pub card_id: CardId,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Set when a registration consumed it.
    pub spent_at: Option<UnixTime>,
}

/// A card's registration: the RC this issuer signed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRecord {
    pub card_id: CardId,
    pub serial: u64,
    /// The challenge the registration answered (consumed by [`Store::register`]).
    pub challenge: Challenge,
    pub rc_der: Vec<u8>,
    pub rc_digest: Digest,
    pub user_id: String,
    /// The holder's name and e-mail from the registration information (APP-1's personal
    /// information; empty for cards registered before they were kept).
    pub user_name: String,
    pub user_email: String,
    pub registered_at: UnixTime,
}

/// What [`Store::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    Registered,
    /// The challenge was consumed before (or is not this card's): nothing changed.
    ChallengeSpent,
    /// The card has an RC already: nothing changed.
    AlreadyRegistered,
}

pub use pki::RevocationReason;

/// The revocation of one card's RC (REG-3: a lost or stolen card).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcRevocation {
    pub card_id: CardId,
    /// The RC's serial (what the CRL lists).
    pub serial: u64,
    pub reason: RevocationReason,
    pub revoked_at: UnixTime,
    /// The operator who revoked it.
    pub revoked_by: String,
}

/// One CRL of the issuer's RCs, as signed and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub number: u64,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub der: Vec<u8>,
}

/// Signs the CRL numbered `number` revoking `revoked` (serials, ascending): the store calls it
/// inside the transaction that took the number, so numbers are never reused and each CRL
/// covers every revocation committed before it.
pub trait CrlSigner: Sync {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, PkiError>;
}

/// What [`Store::revoke_rc`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now (`revocation` as recorded); `crl` is the CRL that first lists it.
    Revoked {
        revocation: RcRevocation,
        crl: CrlRecord,
    },
    /// Revoked before: nothing changed.
    AlreadyRevoked { existing: RcRevocation },
    /// The card has no RC: nothing changed.
    NotRegistered,
}

/// Whether the issuer consents to a provider's items on its cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    Allowed,
    Blocked,
}

impl ProviderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Allowed => "allowed",
            ProviderStatus::Blocked => "blocked",
        }
    }

    pub fn parse(text: &str) -> Option<ProviderStatus> {
        match text {
            "allowed" => Some(ProviderStatus::Allowed),
            "blocked" => Some(ProviderStatus::Blocked),
            _ => None,
        }
    }
}

/// The issuer's policy for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPolicy {
    pub provider: PartyId,
    pub status: ProviderStatus,
    /// The most bytes this provider's items may occupy on one card (the issuer's view).
    pub quota_bytes: u32,
    pub updated_at: UnixTime,
    /// Where the provider's server listens (STO-1: the issuer forwards its SARs there).
    pub url: Option<ProviderUrl>,
}

/// A provider server's base URL: `http://` or `https://`, a host, an optional port and path;
/// no user information, query, fragment or whitespace; at most [`ProviderUrl::MAX_LEN`] bytes.
/// Whether it can be reached is found out when the issuer calls it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderUrl(String);

impl ProviderUrl {
    pub const MAX_LEN: usize = 512;

    /// The URL without a trailing `/`, or why it is not one.
    pub fn parse(text: &str) -> Result<ProviderUrl, &'static str> {
        if text.len() > Self::MAX_LEN {
            return Err("longer than 512 bytes");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters");
        }
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or("must start with http:// or https://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.starts_with(':') {
            return Err("has no host");
        }
        if authority.contains('@') {
            return Err("carries user information");
        }
        if rest.contains(['?', '#']) {
            return Err("a base URL has no query or fragment");
        }
        Ok(ProviderUrl(text.trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which side of a consent the issuer signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// STO-2: the provider's SAR, answered with the issuer's SA.
    Grant,
    /// STO-1: the issuer's own SAR.
    Request,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Grant => "grant",
            Direction::Request => "request",
        }
    }
}

/// A storing authorization the issuer signed (an SA on a provider's SAR, or its own SAR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRecord {
    /// SHA-256 of the SAR SignedObject's DER: single-use key.
    pub sar_digest: Digest,
    pub direction: Direction,
    pub card_id: CardId,
    pub provider: PartyId,
    pub sdi_digest: Digest,
    pub sdi_der: Vec<u8>,
    /// The SA (grant) or SAR (request) the issuer signed, DER.
    pub object_der: Vec<u8>,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
}

/// A delegation the issuer signed (STO-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    pub digest: Digest,
    pub provider: PartyId,
    pub card_id: Option<CardId>,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
    pub der: Vec<u8>,
}

/// The issuer's view of one registered card: the last receipt counter, its ledger's length
/// and head, and the items it believes are stored (ascending item ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub card_id: CardId,
    pub last_counter: u64,
    pub ledger_len: u64,
    /// SHA-256 of the last ledger entry's DER; zero for an empty ledger.
    pub head: Digest,
    pub items: Vec<ListedItem>,
}

/// What one receipt does to the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    /// Stored (inserted or replacing the same item ID).
    Put(ListedItem),
    Remove(ItemId),
}

/// One receipt to append: the new ledger entry and the view change, applied together only if
/// the ledger still has `expected_len` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptAppend {
    pub card_id: CardId,
    pub expected_len: u64,
    pub counter: u64,
    pub receipt_digest: Digest,
    /// The signed entry (its seq is `expected_len`).
    pub entry_der: Vec<u8>,
    pub recorded_at: UnixTime,
    pub change: ItemChange,
    /// Set when the receipt's SA is a download attempt's (S14): the operation (open or
    /// expired) becomes installed and its member notification is queued, in the same
    /// transaction.
    pub completes: Option<DownloadCompletion>,
}

/// What a receipt for a download attempt completes (S14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadCompletion {
    pub operation_id: OperationId,
    /// The outbox row to insert (one per operation: a second insert changes nothing).
    pub notification: NotificationRecord,
}

/// What [`Store::append_receipt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended,
    /// Another writer moved the ledger (or recorded this receipt) first: nothing changed; read
    /// again and retry.
    Conflict,
}

/// A ledger entry found by its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub card_id: CardId,
    pub seq: u64,
    pub counter: u64,
    pub entry_der: Vec<u8>,
}

/// One installable application of the application DB (APP-1), without its code. Immutable
/// per (AID, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub aid: ItemId,
    pub version: u32,
    /// Bytes of the code.
    pub size: u32,
    /// SHA-256 of the code.
    pub digest: Digest,
    /// The provider whose service it is (the owner of the item on the card).
    pub provider: PartyId,
    pub name: String,
    pub description: String,
    pub policy: Policy,
    pub added_at: UnixTime,
    /// The operator who added it.
    pub added_by: String,
}

impl Application {
    /// Whether `other` describes the same application (who added it and when aside).
    pub fn same_content(&self, other: &Application) -> bool {
        (
            &self.aid,
            self.version,
            self.size,
            &self.digest,
            &self.provider,
            &self.name,
            &self.description,
            self.policy,
        ) == (
            &other.aid,
            other.version,
            other.size,
            &other.digest,
            &other.provider,
            &other.name,
            &other.description,
            other.policy,
        )
    }
}

/// A standing-check nonce handed out for one card (S1): the card's signed listing must answer
/// it, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub nonce: Nonce,
    pub card_id: CardId,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub spent_at: Option<UnixTime>,
}

/// What [`Store::insert_check`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInsert {
    Inserted,
    /// The card has `open` nonces unspent and unexpired already, the most allowed: nothing
    /// was inserted. The first of them expires at `next_expiry`.
    TooMany {
        open: u32,
        next_expiry: UnixTime,
    },
}

/// Where a download operation stands at the issuer (REC-2, T5 and T9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// The card's download application was accepted; attempts may follow.
    Opened,
    /// The card's receipt for one of its attempts was recorded.
    Installed,
    /// Its download application expired while it was open, and another operation was opened
    /// for the card and application in its place. A receipt for one of its attempts still
    /// installs it (the card may have installed under an SA it had).
    Expired,
}

impl DownloadState {
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadState::Opened => "opened",
            DownloadState::Installed => "installed",
            DownloadState::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<DownloadState> {
        match text {
            "opened" => Some(DownloadState::Opened),
            "installed" => Some(DownloadState::Installed),
            "expired" => Some(DownloadState::Expired),
            _ => None,
        }
    }
}

/// One download operation (S8–S14), keyed by the terminal's operation ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRecord {
    pub operation_id: OperationId,
    pub card_id: CardId,
    pub provider: PartyId,
    pub service_id: ServiceId,
    pub aid: ItemId,
    pub version: u32,
    /// The provider's `DownloadRequest` inside the card's application, DER.
    pub request_der: Vec<u8>,
    /// The card-signed `DownloadApplication` (SignedObject DER) first accepted.
    pub application_der: Vec<u8>,
    /// The SDI every attempt's SAR is over (owner = the provider).
    pub sdi_der: Vec<u8>,
    pub sdi_digest: Digest,
    pub state: DownloadState,
    pub opened_at: UnixTime,
    pub installed_at: Option<UnixTime>,
    /// The counter of the receipt that installed it.
    pub receipt_counter: Option<u64>,
}

/// What [`Store::open_download`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened,
    /// The operation ID is taken: the recorded operation (the caller compares).
    Exists(Box<DownloadRecord>),
    /// Another operation is open for this card and application.
    InProgress(OperationId),
}

/// One authorization attempt of a download (S11): the issuer's SAR over the card's challenge,
/// then the provider's SA over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub operation_id: OperationId,
    /// 1, 2, … per operation.
    pub attempt: u32,
    pub challenge: Challenge,
    pub sar_digest: Digest,
    pub sar_der: Vec<u8>,
    /// The provider's SA (SignedObject DER), once it answered.
    pub sa_der: Option<Vec<u8>>,
    pub sa_digest: Option<Digest>,
    /// The SA's `not_after`.
    pub not_after: Option<UnixTime>,
    pub issued_at: UnixTime,
}

/// What [`Store::insert_attempt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Inserted,
    /// This challenge has an attempt already (this one's or another instance's).
    SameChallenge(AttemptRecord),
    /// Another attempt took the number first: count again.
    NumberTaken,
}

/// Where a member notification stands (S15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationState {
    /// Not yet acknowledged; retried with backoff.
    Pending,
    /// Acknowledged by the provider (2xx).
    Delivered,
    /// Refused by the provider (4xx): retried every 300 s and shown to operators.
    Stuck,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Stuck => "stuck",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationState> {
        match text {
            "pending" => Some(NotificationState::Pending),
            "delivered" => Some(NotificationState::Delivered),
            "stuck" => Some(NotificationState::Stuck),
            _ => None,
        }
    }
}

/// One row of the member-notification outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub operation_id: OperationId,
    pub provider: PartyId,
    /// The JSON body, as sent on every attempt.
    pub body: Vec<u8>,
    pub state: NotificationState,
    /// Sending attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: UnixTime,
    pub lease_holder: Option<String>,
    pub lease_until: Option<UnixTime>,
    pub last_error: Option<String>,
    pub created_at: UnixTime,
    pub delivered_at: Option<UnixTime>,
}

/// How one sending attempt of a claimed notification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Delivered {
        at: UnixTime,
    },
    /// Not acknowledged: `state` is pending (no answer, 5xx) or stuck (4xx).
    Failed {
        state: NotificationState,
        next_attempt_at: UnixTime,
        error: String,
    },
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

    #[error("card {card_id} is already in the registry")]
    DuplicateCard { card_id: CardId },

    #[error("challenge {challenge:?} was handed out before")]
    DuplicateChallenge { challenge: Challenge },

    #[error("a delegation with digest {digest:?} is already recorded")]
    DuplicateDelegation { digest: Digest },

    /// A write that names a card not in the registry.
    #[error("card {card_id} is not in the registry")]
    UnknownCard { card_id: CardId },

    #[error("nonce {nonce:?} was handed out before")]
    DuplicateNonce { nonce: Nonce },

    #[error("signing CRL number {number} failed: {source}")]
    CrlSigning {
        number: u64,
        #[source]
        source: PkiError,
    },
}

/// The issuer's state. Implementations make each method atomic and safe to call concurrently
/// from several processes on one database.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn insert_card(&self, card: &CardRecord) -> Result<(), StoreError>;

    async fn card(&self, card_id: &CardId) -> Result<Option<CardRecord>, StoreError>;

    /// Records a fresh challenge for a card in the registry.
    async fn insert_challenge(&self, challenge: &ChallengeRecord) -> Result<(), StoreError>;

    async fn challenge(&self, challenge: &Challenge)
        -> Result<Option<ChallengeRecord>, StoreError>;

    /// An RC serial never returned before (1, 2, …).
    async fn next_rc_serial(&self) -> Result<u64, StoreError>;

    /// In one transaction: consumes the registration's challenge (unspent, this card's), records
    /// the RC, and opens the card's empty view and ledger.
    async fn register(
        &self,
        registration: &RegistrationRecord,
    ) -> Result<RegisterOutcome, StoreError>;

    async fn registration(
        &self,
        card_id: &CardId,
    ) -> Result<Option<RegistrationRecord>, StoreError>;

    /// Creates or replaces the policy for `policy.provider`.
    async fn put_provider(&self, policy: &ProviderPolicy) -> Result<(), StoreError>;

    async fn provider(&self, provider: &PartyId) -> Result<Option<ProviderPolicy>, StoreError>;

    /// Records an authorization; false (and nothing changed) if its SAR was recorded before.
    async fn insert_authorization(
        &self,
        authorization: &AuthorizationRecord,
    ) -> Result<bool, StoreError>;

    /// The DER of an SDI this issuer saw in an authorization, by its digest.
    async fn sdi_by_digest(&self, sdi_digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;

    async fn insert_delegation(&self, delegation: &DelegationRecord) -> Result<(), StoreError>;

    /// The view of a registered card; `None` if the card is not registered.
    async fn card_view(&self, card_id: &CardId) -> Result<Option<CardView>, StoreError>;

    async fn ledger_entry_by_receipt(
        &self,
        receipt_digest: &Digest,
    ) -> Result<Option<LedgerRecord>, StoreError>;

    /// In one transaction, if the card's ledger still has `expected_len` entries: appends the
    /// entry, moves the head and last counter, and applies the item change.
    async fn append_receipt(&self, append: &ReceiptAppend) -> Result<AppendOutcome, StoreError>;

    /// The card's ledger entries (DER) in order.
    async fn ledger(&self, card_id: &CardId) -> Result<Vec<Vec<u8>>, StoreError>;

    /// In one transaction: takes the next CRL number, records the revocation of `card_id`'s
    /// RC (serial from its registration) and records the CRL `signer` signs over every revoked
    /// serial. A card revoked before or not registered changes nothing (the number is not
    /// used).
    async fn revoke_rc(
        &self,
        card_id: &CardId,
        reason: RevocationReason,
        revoked_at: UnixTime,
        revoked_by: &str,
        signer: &dyn CrlSigner,
    ) -> Result<RevokeOutcome, StoreError>;

    /// The revocation of the card's RC, if it is revoked.
    async fn rc_revocation(&self, card_id: &CardId) -> Result<Option<RcRevocation>, StoreError>;

    /// The CRL with the highest number; `None` before the first.
    async fn current_crl(&self) -> Result<Option<CrlRecord>, StoreError>;

    /// Signs and records the next CRL over every revoked serial if the newest CRL is still
    /// number `replacing` (0: none yet); otherwise another writer got there first and its CRL
    /// is returned. Either way the answer is the newest CRL.
    async fn reissue_crl(
        &self,
        replacing: u64,
        signer: &dyn CrlSigner,
    ) -> Result<CrlRecord, StoreError>;

    // ---- the application DB, checks, downloads and the outbox (issue 4) ---------------------

    /// Records an application with its code; if (AID, version) is taken, changes nothing and
    /// returns the recorded one.
    async fn insert_application(
        &self,
        application: &Application,
        code: &[u8],
    ) -> Result<Option<Application>, StoreError>;

    /// One version of an application, or the highest when `version` is `None`.
    async fn application(
        &self,
        aid: &ItemId,
        version: Option<u32>,
    ) -> Result<Option<Application>, StoreError>;

    /// Every application, by AID then version.
    async fn applications(&self) -> Result<Vec<Application>, StoreError>;

    async fn application_code(
        &self,
        aid: &ItemId,
        version: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// In one transaction, one at a time per card: deletes nonces (of any card, a bounded
    /// number per call) that expired before `purge_before`, then records a fresh
    /// standing-check nonce for a card in the registry unless the card has `max_open` nonces
    /// unspent and unexpired at `check.issued_at` already.
    async fn insert_check(
        &self,
        check: &CheckRecord,
        max_open: u32,
        purge_before: UnixTime,
    ) -> Result<CheckInsert, StoreError>;

    async fn check(&self, nonce: &Nonce) -> Result<Option<CheckRecord>, StoreError>;

    /// Spends an unspent nonce of `card_id`; false (nothing changed) if spent before.
    async fn spend_check(
        &self,
        nonce: &Nonce,
        card_id: &CardId,
        at: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Records a new open operation unless its ID is taken or another operation is open for
    /// the card and application. `expiring` is an open operation of the same card and
    /// application whose download application expired: in the same transaction, it is marked
    /// expired first if it is still open (a conditional update: of two instances replacing it,
    /// one opens its operation and the other finds that one open).
    async fn open_download(
        &self,
        download: &DownloadRecord,
        expiring: Option<&OperationId>,
    ) -> Result<OpenOutcome, StoreError>;

    async fn download(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<DownloadRecord>, StoreError>;

    /// Operations of one card (`Some`) or every card, in one state or all, oldest first.
    async fn downloads(
        &self,
        card_id: Option<&CardId>,
        state: Option<DownloadState>,
    ) -> Result<Vec<DownloadRecord>, StoreError>;

    /// In one transaction: records the attempt and its SAR among the authorizations.
    async fn insert_attempt(
        &self,
        attempt: &AttemptRecord,
        authorization: &AuthorizationRecord,
    ) -> Result<AttemptOutcome, StoreError>;

    /// The attempts of an operation, by number.
    async fn attempts(&self, operation_id: &OperationId) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Records the provider's SA of an attempt that has none yet; returns the attempt as
    /// recorded after (the first SA recorded wins).
    async fn set_attempt_sa(
        &self,
        operation_id: &OperationId,
        attempt: u32,
        sa_der: &[u8],
        sa_digest: &Digest,
        not_after: UnixTime,
    ) -> Result<Option<AttemptRecord>, StoreError>;

    /// The attempt whose SA has this digest (a receipt's authorization digest).
    async fn attempt_by_sa(&self, sa_digest: &Digest) -> Result<Option<AttemptRecord>, StoreError>;

    async fn notification(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<NotificationRecord>, StoreError>;

    /// The outbox, in one state or all, oldest first.
    async fn notifications(
        &self,
        state: Option<NotificationState>,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Up to `limit` undelivered rows due at `now` and not leased at `now`, earliest first;
    /// a row is not due while an undelivered row to the same provider for the same card has a
    /// lower receipt counter (`downloads.receipt_counter`): each card's notifications reach a
    /// provider in counter order.
    async fn due_notifications(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<OperationId>, StoreError>;

    /// Takes the lease of a row for `holder` until `lease_until`, only if it is undelivered,
    /// due (in counter order, as [`Store::due_notifications`]) and not leased at `now` (a
    /// conditional update: of two notifiers, one wins). Returns the row if taken.
    async fn claim_notification(
        &self,
        operation_id: &OperationId,
        holder: &str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> Result<Option<NotificationRecord>, StoreError>;

    /// Records how `holder`'s attempt ended and releases its lease; false (nothing changed)
    /// when `holder` no longer holds it.
    async fn finish_notification(
        &self,
        operation_id: &OperationId,
        holder: &str,
        outcome: &SendOutcome,
    ) -> Result<bool, StoreError>;

    /// Makes an undelivered row due at `now` (an operator's "retry now"); returns the row.
    async fn retry_notification(
        &self,
        operation_id: &OperationId,
        now: UnixTime,
    ) -> Result<Option<NotificationRecord>, StoreError>;

    // ---- the operators' console (docs/app-download.md §6) ------------------------------------

    /// Every card of the registry with its registration, view and last ledger entry, oldest
    /// personalisation first.
    async fn card_summaries(&self) -> Result<Vec<CardSummary>, StoreError>;

    /// Every provider policy, by provider ID.
    async fn providers(&self) -> Result<Vec<ProviderPolicy>, StoreError>;
}

/// One card as the console's card list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub card_id: CardId,
    pub capacity: u32,
    pub personalised_at: UnixTime,
    /// The holder's user ID and name, once registered.
    pub holder: Option<(String, String)>,
    pub registered_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    /// The view's last receipt counter (registered cards).
    pub last_counter: Option<u64>,
    pub ledger_len: u64,
    /// Items in the view, and the bytes they take.
    pub items: u64,
    pub used: u64,
    /// The view's items the application DB describes (same AID and version).
    pub applications: u64,
    /// The DER of the ledger's last entry, if any.
    pub last_entry_der: Option<Vec<u8>>,
}
