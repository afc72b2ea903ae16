//! The issuer's domain operations, free of HTTP and SQL: personalisation records (CARD-3,
//! KEY-1), registration (REG-2: challenge, RC), storing authorizations on both sides (STO-2:
//! the issuer's SA over a provider's SAR; STO-1: the issuer's own SAR), delegations (STO-3),
//! and receipts into the per-card view and the signed, hash-chained ledger (STO-7, REC-1);
//! revocation of cards' RCs and the CRLs listing them, signed with the issuer's key (REG-3).
//! Every party object is checked with the same `protocol`/`pki` functions the card runs.

use std::sync::{Arc, Mutex, RwLock};

use crypto::{Digest, SigningKey, SymmetricKey};
use pki::{CardId, Certificate, CertificateRequest, Crl, PartyId, PkiError, Role, UnixTime};
use protocol::{
    CardContext, ConsentError, ConsentPath, Delegation, ItemPrefix, LedgerEntry, ListedItem,
    Operation, OperationSet, PartyRole, ProtocolError, Receipt, ReceiptResult, Sa, SaBasis, Sar,
    Sdi, SignedObject,
};
use protocol::{Challenge, OperationId};
use server_kit::{Clock, PartyTrust};

use crate::provider_link::{LinkError, ProviderLink};
use crate::store::{
    AppendOutcome, AuthorizationRecord, CardRecord, CardView, ChallengeRecord, CrlRecord,
    CrlSigner, DelegationRecord, Direction, ItemChange, LedgerRecord, ProviderPolicy,
    ProviderStatus, ProviderUrl, RcRevocation, ReceiptAppend, RegisterOutcome, RegistrationRecord,
    RevocationReason, RevokeOutcome, Store, StoreError,
};

const YEAR_S: u64 = 365 * 24 * 60 * 60;

/// Durations the issuer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a registration challenge may be answered.
    pub challenge_ttl_s: u64,
    /// How long an SA or SAR the issuer signs is valid (short: they are single-use anyway).
    pub authorization_validity_s: u64,
    /// RC validity (capped at the IRC's end).
    pub rc_validity_s: u64,
    /// Default delegation validity.
    pub delegation_validity_s: u64,
    /// thisUpdate → nextUpdate of the CRLs of the issuer's RCs; a CRL is re-signed (next
    /// number) once half of it has passed, so a verifier always finds a fresh one.
    pub crl_validity_s: u64,
    /// How long a standing-check nonce may be answered (S1).
    pub check_ttl_s: u64,
    /// The most standing-check nonces one card may have unanswered and unexpired (S1 needs
    /// no authentication: this bounds what a caller can make the issuer keep).
    pub max_open_checks: u32,
    /// The most authorization attempts the provider answered (with its SA) one download may
    /// have (S11).
    pub max_download_attempts: u32,
    /// The most attempts the provider did not answer (unreachable, refused) one download may
    /// have: they burn none of `max_download_attempts`, and this bounds the rows a caller can
    /// add while the provider is down.
    pub max_unanswered_attempts: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            challenge_ttl_s: 600,
            authorization_validity_s: 600,
            rc_validity_s: 5 * YEAR_S,
            delegation_validity_s: 30 * 24 * 60 * 60,
            crl_validity_s: 7 * 24 * 60 * 60,
            check_ttl_s: 300,
            max_open_checks: 16,
            max_download_attempts: 8,
            max_unanswered_attempts: 32,
        }
    }
}

/// Who the issuer is: its party ID, signing key, IRC, and the two registrar roots.
#[derive(Debug, Clone)]
pub struct IssuerIdentity {
    pub party_id: PartyId,
    pub key: SigningKey,
    pub irc: Certificate,
    pub issuer_anchor: Certificate,
    pub data_anchor: Certificate,
}

fn symmetric_key(bytes: [u8; 32]) -> SymmetricKey {
    // Invariant: `from_bytes` accepts exactly 32 bytes, which an array of 32 always is.
    SymmetricKey::from_bytes(&bytes).expect("32-byte symmetric key")
}

/// The key `Sk` records are wrapped under: HMAC-SHA256 of the issuer's signing key scalar
/// with a fixed label, so the database alone never yields an `Sk` (the key file is needed).
/// Replacing the issuer key makes stored `Sk`s unreadable: a separate key-encryption key with
/// rotation is KEY-5's (not built).
#[derive(Clone)]
pub struct SkWrapping(SymmetricKey);

impl std::fmt::Debug for SkWrapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SkWrapping(..)")
    }
}

impl SkWrapping {
    const LABEL: &'static [u8] = b"cardwright/issuer/sk-wrapping/v1";

    pub fn from_issuer_key(key: &SigningKey) -> SkWrapping {
        let derived = crypto::hmac_sha256(key.to_scalar_bytes().as_slice(), Self::LABEL);
        SkWrapping(symmetric_key(derived))
    }

    fn binding(card_id: &CardId, version: u8) -> Vec<u8> {
        let mut binding = b"Sk".to_vec();
        binding.extend_from_slice(&card_id.0);
        binding.push(version);
        binding
    }

    pub fn wrap(
        &self,
        card_id: &CardId,
        version: u8,
        sk: &SymmetricKey,
        rng: &mut dyn crypto::Rng,
    ) -> Vec<u8> {
        self.0
            .wrap(&Self::binding(card_id, version), sk.expose_bytes(), rng)
    }

    pub fn unwrap(
        &self,
        card_id: &CardId,
        version: u8,
        wrapped: &[u8],
    ) -> Result<SymmetricKey, crypto::CryptoError> {
        let bytes = self.0.unwrap(&Self::binding(card_id, version), wrapped)?;
        SymmetricKey::from_bytes(&bytes)
    }
}

/// What the operator asks a personalisation record for. `Debug` leaves the PIN out.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalisationOrder {
    /// The holder's initial PIN: 4..=12 ASCII digits (the card's rule). Returned in the
    /// record, never stored.
    pub pin: String,
    pub pin_try_limit: u8,
    pub capacity: u32,
}

/// A personalisation record (`terminal::Personalisation`'s fields): for the issuer's facility.
/// `Debug` leaves the PIN out (and `Sk` prints as `<secret>`).
#[derive(Clone)]
pub struct Personalised {
    pub card: CardRecord,
    pub sk: SymmetricKey,
    pub pin: String,
    pub issuer: PartyId,
    pub issuer_anchor: Certificate,
    pub data_anchor: Certificate,
}

impl std::fmt::Debug for PersonalisationOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalisationOrder")
            .field("pin_try_limit", &self.pin_try_limit)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Personalised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Personalised")
            .field("card", &self.card)
            .field("sk", &self.sk)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// What an operator asks a delegation for (STO-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationOrder {
    pub provider: PartyId,
    /// The provider's DPR: the delegation is pinned to it.
    pub provider_certificate: Certificate,
    pub operations: OperationSet,
    pub item_prefix: ItemPrefix,
    pub max_item_size: u32,
    pub card_id: Option<CardId>,
    pub not_after: Option<UnixTime>,
}

/// STO-1's outcome: the issuer's SAR and the provider's SA over it, verified as the card will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub sar: SignedObject,
    pub sa: SignedObject,
    /// The SA's `not_after`.
    pub not_after: UnixTime,
}

/// The party that called, as party request authentication established it (SEC-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: PartyRole,
    pub party: PartyId,
}

/// What ingesting a receipt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub card_id: CardId,
    pub seq: u64,
    pub counter: u64,
    pub entry: SignedObject,
    /// False when the receipt had been recorded before (the earlier entry is returned).
    pub newly_recorded: bool,
    /// Whether the issuer's view after the receipt hashes to the receipt's listing digest.
    pub in_sync: bool,
    /// The download operation the receipt's SA belongs to, if any (S14: recording the receipt
    /// installed it and queued its member notification).
    pub operation: Option<OperationId>,
}

/// How the issuer's view of a card compares with the card's signed listing (REC-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub card_id: CardId,
    /// The listing's confirmation counter and the last one the issuer recorded.
    pub card_counter: u64,
    pub issuer_counter: u64,
    /// Same counter and the view hashes to the listing's contents.
    pub in_sync: bool,
    /// Items the card holds and the view lacks.
    pub only_on_card: Vec<ListedItem>,
    /// Items the view holds and the card does not.
    pub only_in_view: Vec<ListedItem>,
    /// Items on both whose version, size, digest, owner or policy differ (the card's).
    pub differing: Vec<ListedItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("card {card_id} is not in this issuer's registry")]
    UnknownCard { card_id: CardId },

    #[error("card {card_id} is not registered (no RC yet)")]
    CardNotRegistered { card_id: CardId },

    #[error("card {card_id} is registered already")]
    AlreadyRegistered { card_id: CardId },

    #[error(
        "card {card_id}'s RC (serial {serial}) expired at {not_after} (now {now}): the issuer signs nothing more for it"
    )]
    RegistrationExpired {
        card_id: CardId,
        serial: u64,
        not_after: UnixTime,
        now: UnixTime,
    },

    #[error(
        "card {card_id}'s RC (serial {serial}) was revoked at {revoked_at} ({reason}): the issuer signs nothing more for it"
    )]
    RegistrationRevoked {
        card_id: CardId,
        serial: u64,
        reason: RevocationReason,
        revoked_at: UnixTime,
    },

    #[error("the PIN must be 4 to 12 digits ({len} characters given)")]
    InvalidPin { len: usize },

    #[error("pin_try_limit {limit} is outside 1..=15")]
    InvalidPinTryLimit { limit: u8 },

    #[error("challenge {challenge:?} was not issued by this issuer")]
    UnknownChallenge { challenge: Challenge },

    #[error("challenge {challenge:?} was issued for card {expected}, not {found}")]
    ChallengeForOtherCard {
        challenge: Challenge,
        expected: CardId,
        found: CardId,
    },

    #[error("challenge {challenge:?} was spent at {spent_at:?}")]
    ChallengeSpent {
        challenge: Challenge,
        spent_at: Option<UnixTime>,
    },

    #[error("challenge {challenge:?} expired at {expires_at:?} (now {now:?})")]
    ChallengeExpired {
        challenge: Challenge,
        expires_at: UnixTime,
        now: UnixTime,
    },

    #[error("registration information refused: {0}")]
    InvalidRegistration(ConsentError),

    #[error("{object} names card {found}, expected {expected}")]
    CardMismatch {
        object: &'static str,
        expected: CardId,
        found: CardId,
    },

    #[error("SAR refused: {0}")]
    InvalidSar(ConsentError),

    #[error("SAR refused: {reason}")]
    SarNotAcceptable { reason: String },

    #[error("{object} expired at {not_after:?} (now {now:?})")]
    Expired {
        object: &'static str,
        not_after: UnixTime,
        now: UnixTime,
    },

    #[error("the SAR is bound to RC {found:?}, card {card_id}'s RC is {expected:?}")]
    RcMismatch {
        card_id: CardId,
        expected: Digest,
        found: Digest,
    },

    #[error("{caller} ({caller_role:?}) is not the SAR's requester {requester}: a provider asks only for its own SARs")]
    CallerNotRequester {
        caller: PartyId,
        caller_role: PartyRole,
        requester: PartyId,
    },

    #[error("provider URL {url:?} refused: {reason}")]
    InvalidProviderUrl { url: String, reason: String },

    #[error(
        "provider {provider} has no url in this issuer's policy: set it (PUT /v1/providers/{provider} with \"url\") so the issuer can forward its SAR"
    )]
    ProviderUrlMissing { provider: PartyId },

    #[error(transparent)]
    ProviderCall(LinkError),

    #[error("provider {provider}'s SA does not verify: {source}")]
    ProviderSaRefused {
        provider: PartyId,
        #[source]
        source: Box<ConsentError>,
    },

    #[error("provider {provider}'s SA is not the answer to the SAR just signed: {reason}")]
    ProviderSaNotOurs {
        provider: PartyId,
        reason: &'static str,
    },

    #[error("provider {provider} is not allowed on this issuer's cards")]
    ProviderNotAllowed { provider: PartyId },

    #[error(
        "provider {provider} would hold {would_use} bytes on card {card_id}{}, its quota is {quota}",
        in_progress(*.pending)
    )]
    QuotaExceeded {
        provider: PartyId,
        card_id: CardId,
        would_use: u64,
        /// Of `would_use`, the bytes of the provider's downloads in progress on the card.
        pending: u64,
        quota: u32,
    },

    #[error("this SAR ({sar_digest:?}) was authorized before; every authorization is single-use")]
    AuthorizationReplayed { sar_digest: Digest },

    #[error("the certificate given for provider {provider} does not verify: {source}")]
    ProviderCertificateRefused {
        provider: PartyId,
        #[source]
        source: PkiError,
    },

    #[error("the certificate given for provider {provider} is {subject}'s")]
    ProviderCertificateMismatch { provider: PartyId, subject: PartyId },

    #[error("delegation not_after {not_after:?} is not after now ({now:?})")]
    InvalidNotAfter { not_after: UnixTime, now: UnixTime },

    #[error("receipt refused: {0}")]
    InvalidReceipt(ConsentError),

    #[error(
        "receipt counter {found} on card {card_id}: expected {expected}; reconcile with the card's signed listing"
    )]
    ReceiptGap {
        card_id: CardId,
        expected: u64,
        found: u64,
    },

    #[error("receipt counter {found} on card {card_id} is not after the last recorded {last}")]
    ReceiptOutOfOrder {
        card_id: CardId,
        last: u64,
        found: u64,
    },

    #[error(
        "the SDI of receipt's digest {sdi_digest:?} is unknown here: send it with the receipt"
    )]
    UnknownSdi { sdi_digest: Digest },

    #[error("the SDI does not match the receipt: {reason}")]
    SdiMismatch { reason: String },

    #[error("listing refused: {0}")]
    InvalidListing(ConsentError),

    #[error("the IRC does not fit the configuration: {reason}")]
    IdentityMismatch { reason: String },

    #[error(
        "this issuer's IRC (serial {serial}) is revoked by {registrar}'s CRL number {crl_number}: it signs nothing any more (RCs, SAs, SARs, delegations); reads still work"
    )]
    IssuerRevoked {
        serial: u64,
        registrar: PartyId,
        crl_number: u64,
    },

    // ---- the application DB, checks and downloads (issue 4) -------------------------------
    #[error("AID {aid} is {len} bytes; an AID has 5 to 16 (ISO 7816-5)")]
    InvalidAid { aid: String, len: usize },

    #[error("the application's code {reason}")]
    InvalidCode { reason: String },

    #[error("policy {bits:#x} refused: {reason}")]
    InvalidPolicy { bits: u32, reason: String },

    #[error("the application's {field} {reason}")]
    InvalidApplicationText { field: &'static str, reason: String },

    #[error("provider {provider} has no policy at this issuer: set it first (PUT /v1/providers/{provider})")]
    UnknownProvider { provider: PartyId },

    #[error(
        "application {aid} version {version} exists with other content; versions are immutable"
    )]
    ApplicationVersionExists { aid: String, version: u32 },

    #[error("application {aid}{} is not in the application DB", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownApplication { aid: String, version: Option<u32> },

    #[error("nonce {nonce} was not issued by this issuer for card {card_id}")]
    UnknownNonce { nonce: String, card_id: CardId },

    #[error("card {card_id} has {open} standing-check nonces not answered yet, the most allowed: answer one with the card's signed listing, or ask again after {next_expiry}, when the first of them expires")]
    TooManyChecks {
        card_id: CardId,
        open: u32,
        next_expiry: UnixTime,
    },

    #[error("nonce {nonce} was used at {spent_at:?}; ask for a new one")]
    NonceSpent {
        nonce: String,
        spent_at: Option<UnixTime>,
    },

    #[error("nonce {nonce} expired at {expires_at} (now {now}); ask for a new one")]
    NonceExpired {
        nonce: String,
        expires_at: UnixTime,
        now: UnixTime,
    },

    #[error("download application refused: {0}")]
    InvalidDownloadApplication(protocol::DownloadError),

    #[error("the RC sent is not card {card_id}'s RC in the registry")]
    RcNotRegistered { card_id: CardId },

    #[error("the download application does not match application {aid} version {version} in the application DB: {reason}")]
    ApplicationMismatch {
        aid: String,
        version: u32,
        reason: String,
    },

    #[error("operation {operation_id} was opened with another download request")]
    OperationConflict { operation_id: OperationId },

    #[error("the card's receipt counter is {card_counter}, the registry's {issuer_counter}: post the missing receipts (or reconcile) first")]
    RegistryOutOfSync {
        card_counter: u64,
        issuer_counter: u64,
    },

    #[error("application {aid} version {version} is on card {card_id} already")]
    AlreadyInstalled {
        card_id: CardId,
        aid: String,
        version: u32,
    },

    #[error("operation {operation_id} is open for application {aid} on card {card_id}: continue it (or let it finish) first")]
    DownloadInProgress {
        operation_id: OperationId,
        card_id: CardId,
        aid: String,
    },

    #[error("not enough room on card {card_id}: {aid} needs {needs} bytes, {free} free")]
    InsufficientCapacity {
        card_id: CardId,
        aid: String,
        needs: u32,
        free: u32,
    },

    #[error("operation {operation_id} is not known here")]
    UnknownOperation { operation_id: OperationId },

    #[error("operation {operation_id} was installed (receipt counter {counter:?})")]
    OperationInstalled {
        operation_id: OperationId,
        counter: Option<u64>,
    },

    #[error("operation {operation_id} had {attempts} authorization attempts with the provider's SA, the most allowed: the card signs a new download application for a new operation")]
    TooManyAttempts {
        operation_id: OperationId,
        attempts: u32,
    },

    #[error("operation {operation_id} had {attempts} authorization attempts the provider did not answer, the most allowed: try again with a new operation once the provider answers")]
    TooManyUnansweredAttempts {
        operation_id: OperationId,
        attempts: u32,
    },

    #[error("operation {operation_id}'s download application expired at {not_after} (now {now}): it authorizes nothing more; the card signs a new one for a new operation")]
    DownloadApplicationExpired {
        operation_id: OperationId,
        not_after: UnixTime,
        now: UnixTime,
    },

    #[error("the receipt's authorization {authorization_digest:?} is none of operation {operation_id}'s SAs")]
    ReceiptNotForOperation {
        operation_id: OperationId,
        authorization_digest: Digest,
    },

    #[error("operation {operation_id} has no member notification (it is not installed)")]
    UnknownNotification { operation_id: OperationId },

    #[error("operation {operation_id}'s member notification was delivered at {delivered_at:?}")]
    NotificationDelivered {
        operation_id: OperationId,
        delivered_at: Option<UnixTime>,
    },

    #[error("the ledger of card {card_id} kept moving; gave up after {attempts} attempts")]
    Contention { card_id: CardId, attempts: u32 },

    #[error("concurrent requests kept taking the next authorization attempt number of operation {operation_id}; gave up after {tries} tries: ask again with the card's challenge")]
    AttemptContention {
        operation_id: OperationId,
        tries: u32,
    },

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Pki(#[from] PkiError),

    #[error("stored object is unreadable: {0}")]
    StoredObject(ProtocolError),
}

/// " (N of them by its downloads in progress)" when there are some.
fn in_progress(pending: u64) -> String {
    if pending == 0 {
        String::new()
    } else {
        format!(" ({pending} of them by its downloads in progress)")
    }
}

/// What revoking a card's RC did (REG-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRevocation {
    /// The revocation as recorded: this request's, or the earlier one's when repeated.
    pub revocation: RcRevocation,
    /// Whether this request revoked it (false: it was revoked before).
    pub newly_revoked: bool,
    /// A CRL number that lists the RC (the current one when repeated).
    pub crl_number: u64,
}

/// A card as the registry holds it: its record, its registration (RC) if any, and the RC's
/// revocation if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardState {
    pub card: CardRecord,
    pub registration: Option<RegistrationRecord>,
    pub revocation: Option<RcRevocation>,
}

/// Signs CRLs of the issuer's RCs with its key under its IRC (the RCs' CA) at one instant.
struct IssuerCrlSigner<'a> {
    irc: &'a Certificate,
    key: &'a SigningKey,
    now: UnixTime,
    validity_s: u64,
}

impl CrlSigner for IssuerCrlSigner<'_> {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, PkiError> {
        let next_update = UnixTime(self.now.0.saturating_add(self.validity_s));
        let crl = pki::issue_crl(self.irc, self.key, number, self.now, next_update, revoked)?;
        Ok(CrlRecord {
            number,
            this_update: self.now,
            next_update,
            der: crl.der().to_vec(),
        })
    }
}

/// The issuer's own IRC found revoked in a CRL its Issuer Registrar published (REG-3): the
/// issuer keeps serving reads and refuses to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcRevocation {
    pub serial: u64,
    pub registrar: PartyId,
    pub crl_number: u64,
}

/// The issuer.
pub struct Issuer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) identity: IssuerIdentity,
    pub(crate) sk_wrapping: SkWrapping,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Mutex<Box<dyn crypto::Rng + Send>>,
    /// Whom the issuer trusts for party signatures: the registrar roots, the registrars' CRLs
    /// (the one copy every chain check reads) and the clock; also what authenticates party
    /// requests to its API, with the issuer's party ID as their audience.
    pub(crate) trust: PartyTrust,
    /// How the issuer reaches providers' servers (STO-1).
    pub(crate) link: Arc<dyn ProviderLink>,
    pub(crate) settings: Settings,
    /// Set when CRLs given after start revoke the issuer's own IRC (re-checked on every
    /// [`Issuer::set_crls`]).
    pub(crate) irc_revocation: RwLock<Option<IrcRevocation>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("party_id", &self.identity.party_id)
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn party_chain_error(source: PkiError) -> ConsentError {
    ConsentError::Certificate {
        object: "Sar",
        source,
    }
}

impl Issuer {
    /// Checks that the IRC certifies `identity.key` for `identity.party_id` under the Issuer
    /// Registrar root at the clock's now and is not revoked by `crls` (the registrars' CRLs,
    /// also used for providers' chains), and returns the issuer; it reaches providers through
    /// `link`.
    pub fn new(
        identity: IssuerIdentity,
        crls: Vec<Crl>,
        store: Arc<dyn Store>,
        link: Arc<dyn ProviderLink>,
        clock: Arc<dyn Clock>,
        rng: Box<dyn crypto::Rng + Send>,
        settings: Settings,
    ) -> Result<Issuer, ServiceError> {
        let mismatch = |reason: String| ServiceError::IdentityMismatch { reason };
        if identity.irc.public_key() != identity.key.verifying_key() {
            return Err(mismatch(
                "the IRC certifies another key than the key file's".into(),
            ));
        }
        if identity.irc.subject_id() != &identity.party_id {
            return Err(mismatch(format!(
                "the IRC is for {}, the configured party ID is {}",
                identity.irc.subject_id(),
                identity.party_id
            )));
        }
        pki::verify_chain(
            std::slice::from_ref(&identity.irc),
            std::slice::from_ref(&identity.issuer_anchor),
            &crls,
            clock.now(),
            Role::Issuer,
        )
        .map_err(|e| {
            mismatch(format!(
                "the IRC does not verify under the issuer registrar root: {e}"
            ))
        })?;
        let trust = PartyTrust::new(
            identity.party_id.clone(),
            identity.issuer_anchor.clone(),
            identity.data_anchor.clone(),
            clock.clone(),
        );
        trust.set_crls(crls);
        Ok(Issuer {
            store,
            sk_wrapping: SkWrapping::from_issuer_key(&identity.key),
            identity,
            clock,
            rng: Mutex::new(rng),
            trust,
            link,
            settings,
            irc_revocation: RwLock::new(None),
        })
    }

    pub fn party_id(&self) -> &PartyId {
        &self.identity.party_id
    }

    pub fn irc(&self) -> &Certificate {
        &self.identity.irc
    }

    pub fn public_key(&self) -> crypto::VerifyingKey {
        self.identity.key.verifying_key()
    }

    pub fn sk_wrapping(&self) -> &SkWrapping {
        &self.sk_wrapping
    }

    /// Replaces the registrars' CRLs used when checking providers' chains and authenticating
    /// party requests, and re-checks the issuer's own IRC against them: once a CRL of the
    /// Issuer Registrar revokes it, the issuer refuses to sign ([`ServiceError::IssuerRevoked`])
    /// and says so loudly in the log; reads keep working. (At start, [`Issuer::new`] refuses a
    /// revoked IRC outright.)
    pub fn set_crls(&self, crls: Vec<Crl>) {
        let revocation = match pki::verify_chain(
            std::slice::from_ref(&self.identity.irc),
            std::slice::from_ref(&self.identity.issuer_anchor),
            &crls,
            self.clock.now(),
            Role::Issuer,
        ) {
            Err(PkiError::CertificateRevoked {
                serial, crl_number, ..
            }) => Some(IrcRevocation {
                serial,
                registrar: self.identity.issuer_anchor.subject_id().clone(),
                crl_number,
            }),
            // Expiry and the like are not news from a CRL; only a revocation changes here.
            _ => None,
        };
        self.trust.set_crls(crls);
        let mut held = self
            .irc_revocation
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(r) = &revocation {
            if held.is_none() {
                tracing::error!(
                    irc_serial = r.serial,
                    registrar = %r.registrar,
                    crl_number = r.crl_number,
                    "THIS ISSUER'S IRC IS REVOKED: it no longer signs RCs, SAs, SARs or delegations (503 issuer_revoked); reads keep working"
                );
            }
        } else if held.is_some() {
            tracing::warn!("the CRLs held no longer revoke this issuer's IRC: signing again");
        }
        *held = revocation;
    }

    /// The registrars' CRLs held now (from files and fetched from the registrars).
    pub fn crls(&self) -> Vec<Crl> {
        self.trust.crls()
    }

    /// Whether (and by which CRL) the issuer's own IRC is revoked.
    pub fn irc_revocation(&self) -> Option<IrcRevocation> {
        self.irc_revocation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Refuses to sign once the issuer's IRC is revoked: whatever it signed would chain to a
    /// revoked certificate (REG-3), so it is better not made at all.
    pub(crate) fn ensure_may_sign(&self) -> Result<(), ServiceError> {
        match self.irc_revocation() {
            Some(r) => Err(ServiceError::IssuerRevoked {
                serial: r.serial,
                registrar: r.registrar,
                crl_number: r.crl_number,
            }),
            None => Ok(()),
        }
    }

    /// What authenticates party requests to the issuer (`server_kit::PartyRequest`): audience
    /// this issuer, the registrar roots, the CRLs held, the issuer's clock. Clones share the
    /// CRLs with the issuer.
    pub fn party_trust(&self) -> &PartyTrust {
        &self.trust
    }

    pub(crate) fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill(&mut out);
        out
    }

    pub(crate) fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.identity.irc.der().to_vec()]
    }

    // ---- registry and personalisation (CARD-3, KEY-1) -----------------------------------

    /// Allocates a card ID, generates `Sk` and a PIN salt, records them (Sk wrapped), and
    /// returns the personalisation record.
    pub async fn personalise(
        &self,
        order: PersonalisationOrder,
        operator: &str,
    ) -> Result<Personalised, ServiceError> {
        if !(4..=12).contains(&order.pin.len()) || !order.pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ServiceError::InvalidPin {
                len: order.pin.chars().count(),
            });
        }
        if !(1..=15).contains(&order.pin_try_limit) {
            return Err(ServiceError::InvalidPinTryLimit {
                limit: order.pin_try_limit,
            });
        }
        let now = self.clock.now();
        let sk_version = 1;
        loop {
            let card_id = CardId(self.random::<16>());
            let sk = symmetric_key(self.random::<32>());
            let sk_wrapped = {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                self.sk_wrapping.wrap(&card_id, sk_version, &sk, &mut **rng)
            };
            let card = CardRecord {
                card_id,
                sk_wrapped,
                sk_version,
                pin_salt: self.random::<16>(),
                pin_try_limit: order.pin_try_limit,
                issuer_authenticator: self.random::<16>().to_vec(),
                capacity: order.capacity,
                personalised_at: now,
                personalised_by: operator.to_string(),
            };
            match self.store.insert_card(&card).await {
                // 2^-128 per card; retried rather than trusted never to happen.
                Err(StoreError::DuplicateCard { .. }) => continue,
                other => other?,
            }
            return Ok(Personalised {
                card,
                sk,
                pin: order.pin,
                issuer: self.identity.party_id.clone(),
                issuer_anchor: self.identity.issuer_anchor.clone(),
                data_anchor: self.identity.data_anchor.clone(),
            });
        }
    }

    pub async fn card(&self, card_id: &CardId) -> Result<CardState, ServiceError> {
        let card = self.known_card(card_id).await?;
        let registration = self.store.registration(card_id).await?;
        let revocation = match registration {
            Some(_) => self.store.rc_revocation(card_id).await?,
            None => None,
        };
        Ok(CardState {
            card,
            registration,
            revocation,
        })
    }

    pub(crate) async fn known_card(&self, card_id: &CardId) -> Result<CardRecord, ServiceError> {
        self.store
            .card(card_id)
            .await?
            .ok_or(ServiceError::UnknownCard { card_id: *card_id })
    }

    pub(crate) async fn registered(
        &self,
        card_id: &CardId,
    ) -> Result<RegistrationRecord, ServiceError> {
        self.known_card(card_id).await?;
        self.store
            .registration(card_id)
            .await?
            .ok_or(ServiceError::CardNotRegistered { card_id: *card_id })
    }

    /// The card's registration, if its RC is in force at the issuer's clock (REG-3): the card
    /// is registered here, its RC is not revoked and has not expired. Everything the issuer
    /// signs for one card (its SAR, its SA, a delegation naming it) passes here first: a card
    /// whose RC no verifier accepts any more gets nothing new.
    pub(crate) async fn registration_in_force(
        &self,
        card_id: &CardId,
    ) -> Result<RegistrationRecord, ServiceError> {
        let registration = self.registered(card_id).await?;
        if let Some(revocation) = self.store.rc_revocation(card_id).await? {
            return Err(ServiceError::RegistrationRevoked {
                card_id: *card_id,
                serial: revocation.serial,
                reason: revocation.reason,
                revoked_at: revocation.revoked_at,
            });
        }
        let rc = Certificate::from_der(&registration.rc_der)?;
        let now = self.clock.now();
        if now > rc.not_after() {
            return Err(ServiceError::RegistrationExpired {
                card_id: *card_id,
                serial: registration.serial,
                not_after: rc.not_after(),
                now,
            });
        }
        Ok(registration)
    }

    // ---- revocation of RCs (REG-3) -------------------------------------------------------

    fn crl_signer(&self, now: UnixTime) -> IssuerCrlSigner<'_> {
        IssuerCrlSigner {
            irc: &self.identity.irc,
            key: &self.identity.key,
            now,
            validity_s: self.settings.crl_validity_s,
        }
    }

    /// Revokes the card's RC (a lost or stolen card) and publishes a CRL listing it, signed
    /// with the issuer's key; from then on nothing is signed for the card. Repeating it changes
    /// nothing and reports the first revocation. Like every signature, refused once the
    /// issuer's own IRC is revoked (its RCs are then refused by every verifier anyway).
    pub async fn revoke_card(
        &self,
        card_id: &CardId,
        reason: RevocationReason,
        operator: &str,
    ) -> Result<CardRevocation, ServiceError> {
        self.ensure_may_sign()?;
        self.known_card(card_id).await?;
        let now = self.clock.now();
        match self
            .store
            .revoke_rc(card_id, reason, now, operator, &self.crl_signer(now))
            .await?
        {
            RevokeOutcome::Revoked { revocation, crl } => Ok(CardRevocation {
                revocation,
                newly_revoked: true,
                crl_number: crl.number,
            }),
            RevokeOutcome::AlreadyRevoked { existing } => Ok(CardRevocation {
                revocation: existing,
                newly_revoked: false,
                crl_number: self.crl().await?.number,
            }),
            RevokeOutcome::NotRegistered => {
                Err(ServiceError::CardNotRegistered { card_id: *card_id })
            }
        }
    }

    /// The current CRL of the issuer's RCs (the first is signed on first demand), re-signed
    /// under the next number first when half its validity has passed. Once the issuer's IRC is
    /// revoked it signs no new one and serves the last as it is.
    pub async fn crl(&self) -> Result<CrlRecord, ServiceError> {
        let now = self.clock.now();
        let current = self.store.current_crl().await?;
        if let Some(current) = &current {
            let refresh_at = current
                .this_update
                .0
                .saturating_add(self.settings.crl_validity_s / 2);
            if now.0 < refresh_at || self.irc_revocation().is_some() {
                return Ok(current.clone());
            }
        }
        self.ensure_may_sign()?;
        let replacing = current.map_or(0, |c| c.number);
        Ok(self
            .store
            .reissue_crl(replacing, &self.crl_signer(now))
            .await?)
    }

    // ---- registration (REG-2) -----------------------------------------------------------

    /// A fresh single-use registration challenge for a card in the registry.
    pub async fn registration_challenge(
        &self,
        card_id: &CardId,
    ) -> Result<ChallengeRecord, ServiceError> {
        self.known_card(card_id).await?;
        if self.store.registration(card_id).await?.is_some() {
            return Err(ServiceError::AlreadyRegistered { card_id: *card_id });
        }
        let now = self.clock.now();
        loop {
            let record = ChallengeRecord {
                challenge: Challenge(self.random::<16>()),
                card_id: *card_id,
                issued_at: now,
                expires_at: UnixTime(now.0.saturating_add(self.settings.challenge_ttl_s)),
                spent_at: None,
            };
            match self.store.insert_challenge(&record).await {
                Err(StoreError::DuplicateChallenge { .. }) => continue,
                Err(StoreError::UnknownCard { card_id }) => {
                    return Err(ServiceError::UnknownCard { card_id })
                }
                other => other?,
            }
            return Ok(record);
        }
    }

    /// REG-2: checks the card's signed registration information against the stored challenge
    /// and the registry, issues the RC and records it (spending the challenge).
    pub async fn register(
        &self,
        card_id: &CardId,
        registration: &SignedObject,
    ) -> Result<Certificate, ServiceError> {
        self.ensure_may_sign()?;
        let card = self.known_card(card_id).await?;
        let claimed: protocol::RegistrationInfo = registration
            .body_unverified()
            .map_err(|e| ServiceError::InvalidRegistration(e.into()))?;
        let challenge = self.store.challenge(&claimed.challenge).await?.ok_or(
            ServiceError::UnknownChallenge {
                challenge: claimed.challenge,
            },
        )?;
        if challenge.card_id != *card_id {
            return Err(ServiceError::ChallengeForOtherCard {
                challenge: challenge.challenge,
                expected: challenge.card_id,
                found: *card_id,
            });
        }
        if challenge.spent_at.is_some() {
            return Err(ServiceError::ChallengeSpent {
                challenge: challenge.challenge,
                spent_at: challenge.spent_at,
            });
        }
        let now = self.clock.now();
        if now > challenge.expires_at {
            return Err(ServiceError::ChallengeExpired {
                challenge: challenge.challenge,
                expires_at: challenge.expires_at,
                now,
            });
        }
        let info = protocol::verify_registration_info(registration, &challenge.challenge)
            .map_err(ServiceError::InvalidRegistration)?;
        if info.card_id != *card_id {
            return Err(ServiceError::CardMismatch {
                object: "RegistrationInfo",
                expected: *card_id,
                found: info.card_id,
            });
        }
        if self.store.registration(card_id).await?.is_some() {
            return Err(ServiceError::AlreadyRegistered { card_id: *card_id });
        }
        let serial = self.store.next_rc_serial().await?;
        // The card checks its RC at its time floor, which it got at personalisation: the RC
        // is valid from then (never later than now), so a card that has seen no newer signed
        // time accepts it.
        let not_before = card.personalised_at.min(now);
        let not_after = UnixTime(now.0.saturating_add(self.settings.rc_validity_s))
            .min(self.identity.irc.not_after());
        let request = CertificateRequest::card(
            *card_id,
            info.public_key,
            info.user_info.digest(),
            serial,
            not_before,
            not_after,
        );
        let rc = pki::issue(&request, &self.identity.irc, &self.identity.key)?;
        let record = RegistrationRecord {
            card_id: *card_id,
            serial,
            challenge: challenge.challenge,
            rc_der: rc.der().to_vec(),
            rc_digest: rc.digest(),
            user_id: info.user_info.user_id().to_string(),
            user_name: info.user_info.name().to_string(),
            user_email: info.user_info.email().to_string(),
            registered_at: now,
        };
        match self.store.register(&record).await? {
            RegisterOutcome::Registered => Ok(rc),
            RegisterOutcome::ChallengeSpent => Err(ServiceError::ChallengeSpent {
                challenge: challenge.challenge,
                spent_at: None,
            }),
            RegisterOutcome::AlreadyRegistered => {
                Err(ServiceError::AlreadyRegistered { card_id: *card_id })
            }
        }
    }

    // ---- provider policy -------------------------------------------------------------------

    /// Sets the policy for `provider` (replacing it whole); a `url` must be one this issuer
    /// can call (e.g. `https://` needs TLS roots configured).
    pub async fn put_provider(
        &self,
        provider: PartyId,
        status: ProviderStatus,
        quota_bytes: u32,
        url: Option<ProviderUrl>,
    ) -> Result<ProviderPolicy, ServiceError> {
        if let Some(url) = &url {
            self.link
                .check(url)
                .map_err(|e| ServiceError::InvalidProviderUrl {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
        }
        let policy = ProviderPolicy {
            provider,
            status,
            quota_bytes,
            updated_at: self.clock.now(),
            url,
        };
        self.store.put_provider(&policy).await?;
        Ok(policy)
    }

    /// The policy for `provider`; an unknown provider is blocked with quota 0.
    pub async fn provider(&self, provider: &PartyId) -> Result<ProviderPolicy, ServiceError> {
        Ok(self
            .store
            .provider(provider)
            .await?
            .unwrap_or(ProviderPolicy {
                provider: provider.clone(),
                status: ProviderStatus::Blocked,
                quota_bytes: 0,
                updated_at: UnixTime(0),
                url: None,
            }))
    }

    /// The issuer's policy on `sdi` for its owner: allowed, and (for a store) within quota in
    /// the issuer's view of the card. Returns the owner's policy.
    pub(crate) async fn check_policy(&self, sdi: &Sdi) -> Result<ProviderPolicy, ServiceError> {
        self.check_policy_with(sdi, 0).await
    }

    /// [`Issuer::check_policy`], counting `pending` bytes more of the owner's on the card
    /// (its downloads in progress there).
    pub(crate) async fn check_policy_with(
        &self,
        sdi: &Sdi,
        pending: u64,
    ) -> Result<ProviderPolicy, ServiceError> {
        let policy = self.provider(&sdi.owner).await?;
        if policy.status != ProviderStatus::Allowed {
            return Err(ServiceError::ProviderNotAllowed {
                provider: sdi.owner.clone(),
            });
        }
        if sdi.operation == Operation::Store {
            let view = self.store.card_view(&sdi.card_id).await?.ok_or(
                ServiceError::CardNotRegistered {
                    card_id: sdi.card_id,
                },
            )?;
            let held: u64 = view
                .items
                .iter()
                .filter(|i| i.owner == sdi.owner && i.item_id != sdi.item_id)
                .map(|i| u64::from(i.size))
                .sum();
            let would_use = held
                .saturating_add(pending)
                .saturating_add(u64::from(sdi.size));
            if would_use > u64::from(policy.quota_bytes) {
                return Err(ServiceError::QuotaExceeded {
                    provider: sdi.owner.clone(),
                    card_id: sdi.card_id,
                    would_use,
                    pending,
                    quota: policy.quota_bytes,
                });
            }
        }
        Ok(policy)
    }

    // ---- storing authorizations (STO-1, STO-2) --------------------------------------------

    /// Verifies a provider-signed SAR: purpose, the DPR chain to the Data Registrar root at
    /// now with the CRLs held, the leaf is the requester, the signature.
    fn open_provider_sar(&self, object: &SignedObject, now: UnixTime) -> Result<Sar, ServiceError> {
        let invalid = |e: ConsentError| ServiceError::InvalidSar(e);
        if object.purpose() != protocol::Purpose::StoringAuthorizationRequest {
            return Err(invalid(
                ProtocolError::WrongPurpose {
                    expected: protocol::Purpose::StoringAuthorizationRequest,
                    found: object.purpose(),
                }
                .into(),
            ));
        }
        let claimed: Sar = object.body_unverified().map_err(|e| invalid(e.into()))?;
        if claimed.requester_role != PartyRole::Provider {
            return Err(ServiceError::SarNotAcceptable {
                reason: "the requester must be a provider (the issuer grants)".into(),
            });
        }
        if object.signer_chain().is_empty() {
            return Err(invalid(ConsentError::MissingChain { object: "Sar" }));
        }
        let chain = object
            .signer_chain()
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(party_chain_error(e)))?;
        let verified = pki::verify_chain(
            &chain,
            std::slice::from_ref(&self.identity.data_anchor),
            &self.crls(),
            now,
            Role::Provider,
        )
        .map_err(|e| invalid(party_chain_error(e)))?;
        if verified.leaf_subject != claimed.requester {
            return Err(invalid(ConsentError::WrongSigner {
                object: "Sar",
                expected: claimed.requester,
                found: verified.leaf_subject,
            }));
        }
        object
            .open::<Sar>(&verified.leaf_key)
            .map_err(|e| invalid(e.into()))
    }

    /// STO-2: the issuer's SA over a provider's SAR, asked for by `caller` (the party whose
    /// request was authenticated). The SAR must verify and be the caller's own, name a
    /// registered card of this issuer and bind its RC, come from the item's owner, be
    /// unexpired, and the owner must be allowed (and within quota); each SAR is granted once.
    pub async fn grant(
        &self,
        sar_object: &SignedObject,
        caller: &Caller,
    ) -> Result<SignedObject, ServiceError> {
        self.ensure_may_sign()?;
        let now = self.clock.now();
        let sar = self.open_provider_sar(sar_object, now)?;
        // The chain's leaf is the requester (checked above): only that provider may ask, so a
        // SAR seen in transit cannot be turned into an SA by anyone else.
        if caller.role != PartyRole::Provider || caller.party != sar.requester {
            return Err(ServiceError::CallerNotRequester {
                caller: caller.party.clone(),
                caller_role: caller.role,
                requester: sar.requester,
            });
        }
        if sar.requester != sar.sdi.owner {
            return Err(ServiceError::SarNotAcceptable {
                reason: format!(
                    "the requester {} does not own the item (owner {})",
                    sar.requester, sar.sdi.owner
                ),
            });
        }
        if sar.not_after < now || sar.issued_at > sar.not_after {
            return Err(ServiceError::Expired {
                object: "Sar",
                not_after: sar.not_after,
                now,
            });
        }
        let registration = self.registration_in_force(&sar.sdi.card_id).await?;
        if sar.rc_digest != registration.rc_digest {
            return Err(ServiceError::RcMismatch {
                card_id: sar.sdi.card_id,
                expected: registration.rc_digest,
                found: sar.rc_digest,
            });
        }
        self.check_policy(&sar.sdi).await?;
        let not_after = UnixTime(now.0.saturating_add(self.settings.authorization_validity_s));
        let sa = Sa::new(
            SaBasis::Request(sar_object.clone()),
            PartyRole::Issuer,
            self.identity.party_id.clone(),
            sar.sdi.clone(),
            sar.challenge,
            now,
            not_after,
        )
        .sign(&self.identity.key, self.chain());
        let sar_digest = sar_object.digest();
        let recorded = self
            .store
            .insert_authorization(&AuthorizationRecord {
                sar_digest,
                direction: Direction::Grant,
                card_id: sar.sdi.card_id,
                provider: sar.requester.clone(),
                sdi_digest: sar.sdi.digest(),
                sdi_der: sar.sdi.to_der(),
                object_der: sa.to_der(),
                issued_at: now,
                not_after,
            })
            .await?;
        if !recorded {
            return Err(ServiceError::AuthorizationReplayed { sar_digest });
        }
        Ok(sa)
    }

    /// STO-1, the whole exchange: the issuer's SAR for `sdi` on its registered card over the
    /// card's `challenge` (after the policy checks), sent to the item's provider at the URL
    /// its policy names; the SA that comes back must verify as the card will verify it (DPR
    /// chain to the Data Registrar root with the CRLs held, signed by that provider, over
    /// exactly this SAR, unexpired).
    pub async fn request(
        &self,
        card_id: &CardId,
        sdi: Sdi,
        challenge: Challenge,
    ) -> Result<Consent, ServiceError> {
        let (registration, policy) = self.check_request(card_id, &sdi).await?;
        let provider = sdi.owner.clone();
        let url = policy.url.ok_or_else(|| ServiceError::ProviderUrlMissing {
            provider: provider.clone(),
        })?;
        let sar = self.sign_sar(&registration, &sdi, challenge).await?;
        let sa = self
            .link
            .grant(&provider, &url, &sar, self.clock.now())
            .await
            .map_err(ServiceError::ProviderCall)?;
        let granted = self.check_provider_sa(&sa, &sar, &registration, &sdi, challenge)?;
        Ok(Consent {
            sar,
            sa,
            not_after: granted.not_after,
        })
    }

    /// STO-1's first half only: the issuer's SAR, signed and recorded after the same checks as
    /// [`Issuer::request`], not sent anywhere (tests, and a caller that relays it itself).
    pub async fn request_sar(
        &self,
        card_id: &CardId,
        sdi: Sdi,
        challenge: Challenge,
    ) -> Result<SignedObject, ServiceError> {
        let (registration, _) = self.check_request(card_id, &sdi).await?;
        self.sign_sar(&registration, &sdi, challenge).await
    }

    /// The checks before the issuer asks for a store or delete on its card: the issuer may
    /// still sign, the SDI is for that card, the card is registered and its RC in force (not
    /// revoked, not expired), the item's provider is allowed (and within quota).
    async fn check_request(
        &self,
        card_id: &CardId,
        sdi: &Sdi,
    ) -> Result<(RegistrationRecord, ProviderPolicy), ServiceError> {
        self.ensure_may_sign()?;
        if sdi.card_id != *card_id {
            return Err(ServiceError::CardMismatch {
                object: "Sdi",
                expected: *card_id,
                found: sdi.card_id,
            });
        }
        let registration = self.registration_in_force(card_id).await?;
        let policy = self.check_policy(sdi).await?;
        Ok((registration, policy))
    }

    /// Signs and records the issuer's SAR (single-use like every authorization).
    async fn sign_sar(
        &self,
        registration: &RegistrationRecord,
        sdi: &Sdi,
        challenge: Challenge,
    ) -> Result<SignedObject, ServiceError> {
        let now = self.clock.now();
        let not_after = UnixTime(now.0.saturating_add(self.settings.authorization_validity_s));
        let sar = Sar {
            requester_role: PartyRole::Issuer,
            requester: self.identity.party_id.clone(),
            rc_digest: registration.rc_digest,
            sdi: sdi.clone(),
            challenge,
            issued_at: now,
            not_after,
        }
        .sign(&self.identity.key, self.chain());
        let sar_digest = sar.digest();
        let recorded = self
            .store
            .insert_authorization(&AuthorizationRecord {
                sar_digest,
                direction: Direction::Request,
                card_id: sdi.card_id,
                provider: sdi.owner.clone(),
                sdi_digest: sdi.digest(),
                sdi_der: sdi.to_der(),
                object_der: sar.to_der(),
                issued_at: now,
                not_after,
            })
            .await?;
        if !recorded {
            // Same SDI, challenge and second as an earlier request: deterministic signatures
            // made the same SAR; it is single-use like any other.
            return Err(ServiceError::AuthorizationReplayed { sar_digest });
        }
        Ok(sar)
    }

    /// The provider's SA over the issuer's `sar`, checked with the card's own verification
    /// (`verify_storing_authorization` in the card's place: its RC, this issuer, the registrar
    /// roots, the CRLs held, the issuer's clock as time floor, the challenge outstanding), then
    /// that it is the item's provider's answer to exactly this SAR. The card checks all of it
    /// again; checking here names the provider at fault instead of a card refusing later.
    pub(crate) fn check_provider_sa(
        &self,
        sa_object: &SignedObject,
        sar: &SignedObject,
        registration: &RegistrationRecord,
        sdi: &Sdi,
        challenge: Challenge,
    ) -> Result<Sa, ServiceError> {
        let provider = &sdi.owner;
        let not_ours = |reason| ServiceError::ProviderSaNotOurs {
            provider: provider.clone(),
            reason,
        };
        let rc = Certificate::from_der(&registration.rc_der)?;
        let crls = self.crls();
        let context = CardContext {
            card_id: sdi.card_id,
            rc: Some(&rc),
            issuer: &self.identity.party_id,
            issuer_anchor: &self.identity.issuer_anchor,
            data_anchor: &self.identity.data_anchor,
            crls: &crls,
            time_floor: self.clock.now(),
            challenge: Some(challenge),
        };
        let authorized =
            protocol::verify_storing_authorization(sa_object, &context).map_err(|source| {
                ServiceError::ProviderSaRefused {
                    provider: provider.clone(),
                    source: Box::new(source),
                }
            })?;
        if authorized.path != ConsentPath::IssuerRequested || &authorized.grantor != provider {
            return Err(not_ours(
                "it is not the item's provider's consent to an issuer's SAR",
            ));
        }
        let sa: Sa = sa_object
            .body_unverified()
            .map_err(|_| not_ours("its body cannot be read"))?;
        if sa.basis != SaBasis::Request(sar.clone()) {
            return Err(not_ours("it rests on another SAR"));
        }
        Ok(sa)
    }

    // ---- delegations (STO-3) -----------------------------------------------------------------

    pub async fn delegate(&self, order: DelegationOrder) -> Result<SignedObject, ServiceError> {
        self.ensure_may_sign()?;
        let now = self.clock.now();
        let verified = pki::verify_chain(
            std::slice::from_ref(&order.provider_certificate),
            std::slice::from_ref(&self.identity.data_anchor),
            &self.crls(),
            now,
            Role::Provider,
        )
        .map_err(|source| ServiceError::ProviderCertificateRefused {
            provider: order.provider.clone(),
            source,
        })?;
        if verified.leaf_subject != order.provider {
            return Err(ServiceError::ProviderCertificateMismatch {
                provider: order.provider,
                subject: verified.leaf_subject,
            });
        }
        let policy = self.provider(&order.provider).await?;
        if policy.status != ProviderStatus::Allowed {
            return Err(ServiceError::ProviderNotAllowed {
                provider: order.provider,
            });
        }
        if let Some(card_id) = &order.card_id {
            self.registration_in_force(card_id).await?;
        }
        let not_after = order.not_after.unwrap_or(UnixTime(
            now.0.saturating_add(self.settings.delegation_validity_s),
        ));
        if not_after <= now {
            return Err(ServiceError::InvalidNotAfter { not_after, now });
        }
        let delegation = Delegation {
            issuer: self.identity.party_id.clone(),
            provider: order.provider.clone(),
            provider_key_digest: order.provider_certificate.digest(),
            operations: order.operations,
            item_prefix: order.item_prefix,
            max_item_size: order.max_item_size,
            card_id: order.card_id,
            issued_at: now,
            not_after,
        }
        .sign(&self.identity.key, self.chain());
        self.store
            .insert_delegation(&DelegationRecord {
                digest: delegation.digest(),
                provider: order.provider,
                card_id: order.card_id,
                issued_at: now,
                not_after,
                der: delegation.to_der(),
            })
            .await?;
        Ok(delegation)
    }

    // ---- receipts and the ledger (STO-7, REC-1) ----------------------------------------------

    /// Records a card receipt: verified under the card's RC, counter exactly one past the last
    /// recorded, its SDI known (sent along, or from an authorization signed here); updates the
    /// view and appends a signed ledger entry in one transaction. The same receipt again
    /// returns the entry recorded the first time.
    pub async fn ingest_receipt(
        &self,
        receipt_object: &SignedObject,
        sdi: Option<Sdi>,
    ) -> Result<Ingested, ServiceError> {
        let claimed: Receipt = receipt_object
            .body_unverified()
            .map_err(|e| ServiceError::InvalidReceipt(e.into()))?;
        let card_id = claimed.card_id;
        let card = self.known_card(&card_id).await?;
        let registration = self.registered(&card_id).await?;
        let rc = Certificate::from_der(&registration.rc_der)?;
        let receipt =
            protocol::verify_receipt(receipt_object, &rc).map_err(ServiceError::InvalidReceipt)?;
        let receipt_digest = receipt_object.digest();
        let sdi = self.receipt_sdi(&receipt, sdi).await?;
        // S14: a receipt for a download attempt's SA installs that operation, whichever route
        // brought it.
        let completes = self
            .download_completion(receipt_object, &receipt, &registration)
            .await?;
        let operation = completes.as_ref().map(|c| c.operation_id);
        const ATTEMPTS: u32 = 5;
        for _ in 0..ATTEMPTS {
            let view = self
                .store
                .card_view(&card_id)
                .await?
                .ok_or(ServiceError::CardNotRegistered { card_id })?;
            let expected = view.last_counter.saturating_add(1);
            if receipt.counter < expected {
                // Read after the view: the entry and the view commit together, so a receipt
                // the view already covers is either recorded (a repeat) or out of order.
                if let Some(existing) = self.store.ledger_entry_by_receipt(&receipt_digest).await? {
                    return self.recorded_before(card_id, &receipt, existing, operation);
                }
                return Err(ServiceError::ReceiptOutOfOrder {
                    card_id,
                    last: view.last_counter,
                    found: receipt.counter,
                });
            }
            if receipt.counter > expected {
                return Err(ServiceError::ReceiptGap {
                    card_id,
                    expected,
                    found: receipt.counter,
                });
            }
            let change = match receipt.result {
                ReceiptResult::Stored => ItemChange::Put(ListedItem {
                    item_id: sdi.item_id.clone(),
                    version: sdi.version,
                    size: sdi.size,
                    data_digest: sdi.data_digest,
                    owner: sdi.owner.clone(),
                    policy: sdi.policy,
                }),
                ReceiptResult::Deleted => ItemChange::Remove(sdi.item_id.clone()),
            };
            let view_digest = view_after(&view, &change, card.capacity)?;
            let now = self.clock.now();
            let entry = LedgerEntry {
                party: self.identity.party_id.clone(),
                card_id,
                seq: view.ledger_len,
                prev: view.head,
                receipt: receipt_object.clone(),
                view_digest,
                recorded_at: now,
            }
            .sign(&self.identity.key);
            let append = ReceiptAppend {
                card_id,
                expected_len: view.ledger_len,
                counter: receipt.counter,
                receipt_digest,
                entry_der: entry.to_der(),
                recorded_at: now,
                change,
                completes: completes.clone(),
            };
            match self.store.append_receipt(&append).await? {
                AppendOutcome::Appended => {
                    return Ok(Ingested {
                        card_id,
                        seq: view.ledger_len,
                        counter: receipt.counter,
                        entry,
                        newly_recorded: true,
                        in_sync: view_digest == receipt.listing_digest,
                        operation,
                    })
                }
                AppendOutcome::Conflict => continue,
            }
        }
        Err(ServiceError::Contention {
            card_id,
            attempts: ATTEMPTS,
        })
    }

    fn recorded_before(
        &self,
        card_id: CardId,
        receipt: &Receipt,
        existing: LedgerRecord,
        operation: Option<OperationId>,
    ) -> Result<Ingested, ServiceError> {
        let entry =
            SignedObject::from_der(&existing.entry_der).map_err(ServiceError::StoredObject)?;
        let body: LedgerEntry = entry
            .body_unverified()
            .map_err(ServiceError::StoredObject)?;
        Ok(Ingested {
            card_id,
            seq: existing.seq,
            counter: existing.counter,
            entry,
            newly_recorded: false,
            in_sync: body.view_digest == receipt.listing_digest,
            operation,
        })
    }

    async fn receipt_sdi(
        &self,
        receipt: &Receipt,
        given: Option<Sdi>,
    ) -> Result<Sdi, ServiceError> {
        let sdi = match given {
            Some(sdi) => sdi,
            None => {
                let der = self.store.sdi_by_digest(&receipt.sdi_digest).await?.ok_or(
                    ServiceError::UnknownSdi {
                        sdi_digest: receipt.sdi_digest,
                    },
                )?;
                Sdi::from_der(&der).map_err(ServiceError::StoredObject)?
            }
        };
        let mismatch = |reason: String| Err(ServiceError::SdiMismatch { reason });
        if sdi.digest() != receipt.sdi_digest {
            return mismatch(format!(
                "its digest is {:?}, the receipt's {:?}",
                sdi.digest(),
                receipt.sdi_digest
            ));
        }
        // The card signs a receipt only for the SDI it executed; these hold for any genuine
        // receipt and catch a mismatched SDI sent along with it.
        if sdi.card_id != receipt.card_id || sdi.item_id != receipt.item_id {
            return mismatch("card or item ID differs".into());
        }
        let result_fits = matches!(
            (sdi.operation, receipt.result),
            (Operation::Store, ReceiptResult::Stored) | (Operation::Delete, ReceiptResult::Deleted)
        );
        if sdi.operation != receipt.operation || !result_fits {
            return mismatch("operation differs".into());
        }
        Ok(sdi)
    }

    /// REC-1: compares the view with the card's signed listing (verified under the card's RC,
    /// answering `nonce`). Changes nothing: a drift is reported for an operator (or a later
    /// repair) to act on.
    pub async fn reconcile(
        &self,
        card_id: &CardId,
        listing: &SignedObject,
        nonce: &protocol::Nonce,
    ) -> Result<Reconciliation, ServiceError> {
        let registration = self.registered(card_id).await?;
        let rc = Certificate::from_der(&registration.rc_der)?;
        let listing =
            protocol::verify_listing(listing, &rc, nonce).map_err(ServiceError::InvalidListing)?;
        let (view, capacity) = self.contents(card_id).await?;
        let on_card = listing.contents.items();
        let find = |items: &[ListedItem], id: &protocol::ItemId| {
            items.iter().find(|i| &i.item_id == id).cloned()
        };
        let only_on_card = on_card
            .iter()
            .filter(|i| find(&view.items, &i.item_id).is_none())
            .cloned()
            .collect();
        let only_in_view = view
            .items
            .iter()
            .filter(|i| find(on_card, &i.item_id).is_none())
            .cloned()
            .collect();
        let differing = on_card
            .iter()
            .filter(|i| find(&view.items, &i.item_id).is_some_and(|v| &v != *i))
            .cloned()
            .collect();
        let in_sync = listing.counter == view.last_counter
            && view_digest(&view.items, capacity)? == listing.contents.digest();
        Ok(Reconciliation {
            card_id: *card_id,
            card_counter: listing.counter,
            issuer_counter: view.last_counter,
            in_sync,
            only_on_card,
            only_in_view,
            differing,
        })
    }

    /// The issuer's view of a registered card, with the card's capacity.
    pub async fn contents(&self, card_id: &CardId) -> Result<(CardView, u32), ServiceError> {
        let card = self.known_card(card_id).await?;
        let view = self
            .store
            .card_view(card_id)
            .await?
            .ok_or(ServiceError::CardNotRegistered { card_id: *card_id })?;
        Ok((view, card.capacity))
    }

    /// The card's ledger (entries' DER, in order) and its RC.
    pub async fn ledger(
        &self,
        card_id: &CardId,
    ) -> Result<(RegistrationRecord, Vec<Vec<u8>>), ServiceError> {
        let registration = self.registered(card_id).await?;
        let entries = self.store.ledger(card_id).await?;
        Ok((registration, entries))
    }
}

/// The listing digest of `view` after `change`, on a card of `capacity` (free = capacity
/// minus the items' sizes, as the card counts it).
pub fn view_after(
    view: &CardView,
    change: &ItemChange,
    capacity: u32,
) -> Result<Digest, ServiceError> {
    let mut items: Vec<ListedItem> = view.items.clone();
    match change {
        ItemChange::Put(item) => {
            items.retain(|i| i.item_id != item.item_id);
            items.push(item.clone());
        }
        ItemChange::Remove(item_id) => items.retain(|i| &i.item_id != item_id),
    }
    view_digest(&items, capacity)
}

/// The free bytes of a card of `capacity` holding `items` (`free <= capacity` fits u32).
pub(crate) fn free_of(items: &[ListedItem], capacity: u32) -> u32 {
    let used: u64 = items.iter().map(|i| u64::from(i.size)).sum();
    u32::try_from(u64::from(capacity).saturating_sub(used)).unwrap_or(0)
}

/// The listing digest of `items` on a card of `capacity` (item IDs are unique in a view: its
/// primary key).
pub fn view_digest(items: &[ListedItem], capacity: u32) -> Result<Digest, ServiceError> {
    protocol::listing_digest(items, capacity, free_of(items, capacity))
        .map_err(ServiceError::StoredObject)
}
