//! The two error boundaries of this crate: [`ProtocolError`] for one object on its own (its
//! encoding, its signature), [`ConsentError`] for what a verifier concludes from several objects
//! together (audience, freshness, expiry, signer, the two consents agreeing). Variants carry the
//! offending values so a log line says what was wrong without a debugger.

use crypto::Digest;
use pki::{CardId, PartyId, PkiError, UnixTime};

use crate::field::{Challenge, ItemId, ItemPrefix, Nonce, Operation};
use crate::signed::Purpose;
use crate::storing::PartyRole;

/// What is wrong with one object: its DER, a field's value, its purpose or its signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not canonical DER of the expected ASN.1 type (docs/protocol.asn), or trailing bytes.
    #[error("{object} is not valid DER: {detail}")]
    Malformed {
        object: &'static str,
        detail: String,
    },
    /// Well-formed DER whose field value breaks the type's constraints.
    #[error("{object}.{field} is invalid: {reason}")]
    InvalidField {
        object: &'static str,
        field: &'static str,
        reason: String,
    },
    /// A signed object made for one purpose presented as another.
    #[error("signed object has purpose {found:?}, expected {expected:?}")]
    WrongPurpose { expected: Purpose, found: Purpose },
    /// The signature algorithm named in a signed object is not one we verify.
    #[error("signature algorithm {oid} is not supported (only ecdsa-with-SHA256)")]
    UnsupportedAlgorithm { oid: String },
    /// The signature does not verify under the key the verifier holds for the signer.
    #[error("signature on the {purpose:?} object does not verify")]
    BadSignature { purpose: Purpose },
}

/// Why a verifier refuses a set of signed objects (SPEC SEC-1, STO-8, design/objects.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// One object is malformed, has the wrong purpose or a bad signature.
    #[error(transparent)]
    Object(#[from] ProtocolError),
    /// The signer's certificate chain is malformed, untrusted, expired or revoked.
    #[error("certificate chain of the {object} signer is refused: {source}")]
    Certificate {
        object: &'static str,
        #[source]
        source: PkiError,
    },
    /// The object carries no certificate chain but its signer can only be known from one.
    #[error("{object} carries no signer certificate chain")]
    MissingChain { object: &'static str },
    /// The chain of an object signed by a registrar root is not that root.
    #[error("{object} must be signed by the registrar root; its chain names another certificate")]
    NotTheRegistrar { object: &'static str },
    /// The certified signer is not the party the object names.
    #[error("{object} names signer {expected} but its certificate is {found}'s")]
    WrongSigner {
        object: &'static str,
        expected: PartyId,
        found: PartyId,
    },
    /// The issuer side of a consent is not this card's issuer.
    #[error("{object} is signed by issuer {found}, but the card belongs to {expected}")]
    NotCardIssuer {
        object: &'static str,
        expected: PartyId,
        found: PartyId,
    },
    /// The provider side of a consent is not the provider that owns the item.
    #[error("{object} is signed by provider {found}, but the item belongs to {owner}")]
    NotItemOwner {
        object: &'static str,
        owner: PartyId,
        found: PartyId,
    },
    /// Both consents come from the same role: one of them must be the issuer, the other a provider.
    #[error("request and authorization are both signed by a party in role {role:?}")]
    SameRoleTwice { role: PartyRole },
    /// An object names a role that its place in the flow does not allow.
    #[error("{object} is signed in role {found:?}, expected {expected:?}")]
    WrongRole {
        object: &'static str,
        expected: PartyRole,
        found: PartyRole,
    },
    /// The object is for another card.
    #[error("{object} is for card {found}, this is card {expected}")]
    WrongCard {
        object: &'static str,
        expected: CardId,
        found: CardId,
    },
    /// The card holds no registration certificate yet, so no request can be bound to it.
    #[error("the card is not registered: no RC to bind the request to")]
    NotRegistered,
    /// The request names a registration certificate other than the card's.
    #[error("request binds RC digest {found:?}, the card's RC has {expected:?}")]
    RcMismatch { expected: Digest, found: Digest },
    /// The card has no outstanding challenge (none issued, or already spent).
    #[error("no challenge is outstanding on the card")]
    NoChallengeOutstanding,
    /// The object answers another challenge than the one the verifier issued.
    #[error("{object} answers challenge {found:?}, expected {expected:?}")]
    ChallengeMismatch {
        object: &'static str,
        expected: Challenge,
        found: Challenge,
    },
    /// The listing answers another nonce than the one the requester sent.
    #[error("listing answers nonce {found:?}, expected {expected:?}")]
    NonceMismatch { expected: Nonce, found: Nonce },
    /// `not_after` lies before the verifier's time floor.
    #[error("{object} expired: not_after {not_after} is before the time floor {time_floor}")]
    Expired {
        object: &'static str,
        not_after: UnixTime,
        time_floor: UnixTime,
    },
    /// `issued_at` lies after `not_after`: the object was never valid.
    #[error("{object} is issued at {issued_at}, after its not_after {not_after}")]
    InvalidValidity {
        object: &'static str,
        issued_at: UnixTime,
        not_after: UnixTime,
    },
    /// The request and the authorization describe different SDIs.
    #[error("request SDI (digest {sar:?}) differs from authorization SDI (digest {sa:?})")]
    SdiMismatch { sar: Digest, sa: Digest },
    /// An object's declared SDI digest is not the digest of the SDI it is checked against.
    #[error("{object} declares SDI digest {declared:?}, the SDI hashes to {computed:?}")]
    SdiDigestMismatch {
        object: &'static str,
        declared: Digest,
        computed: Digest,
    },
    /// Certified data's digest is not the digest of the data, or not the SDI's.
    #[error("{object} data digest {found:?} differs from the expected {expected:?}")]
    DataDigestMismatch {
        object: &'static str,
        expected: Digest,
        found: Digest,
    },
    /// STO-3: the delegation is for another provider than the one that granted the SA.
    #[error("delegation is for provider {delegated}, the authorization is granted by {grantor}")]
    DelegationWrongProvider {
        delegated: PartyId,
        grantor: PartyId,
    },
    /// STO-3: the delegation pins another provider certificate than the one that signed the SA.
    #[error("delegation pins DPR digest {delegated:?}, the SA signer's DPR is {presented:?}")]
    DelegationKeyMismatch {
        delegated: Digest,
        presented: Digest,
    },
    /// STO-3: the delegation does not allow this operation.
    #[error("delegation does not allow the {operation:?} operation")]
    OperationNotDelegated { operation: Operation },
    /// STO-3: the item ID is outside the delegated range.
    #[error("item {item_id:?} is outside the delegated prefix {prefix:?}")]
    ItemOutsidePrefix { item_id: ItemId, prefix: ItemPrefix },
    /// STO-3: the item is larger than the delegation allows.
    #[error("item size {size} exceeds the delegated maximum {max}")]
    ItemTooLarge { size: u32, max: u32 },
    /// SEC-3: the party request was signed for another HTTP method than the one received.
    #[error("request is signed for method {found:?}, the server received {expected:?}")]
    MethodMismatch { expected: String, found: String },
    /// SEC-3: the party request was signed for another request target than the one received.
    #[error("request is signed for path {found:?}, the server received {expected:?}")]
    PathMismatch { expected: String, found: String },
    /// SEC-3: the body received is not the body the party request was signed over.
    #[error(
        "request is signed over body digest {found:?}, the body received hashes to {expected:?}"
    )]
    BodyDigestMismatch { expected: Digest, found: Digest },
    /// SEC-3: the party request is addressed to another party than this server's.
    #[error("request is addressed to {found}, this server is {expected}")]
    WrongAudience { expected: PartyId, found: PartyId },
    /// SEC-3: the party request's `issued_at` is further from the server's clock than allowed.
    #[error(
        "request issued at {issued_at} is more than {max_skew_s} s from the server's time {now}"
    )]
    RequestStale {
        issued_at: UnixTime,
        now: UnixTime,
        max_skew_s: u64,
    },
    /// REC-1: a party's ledger is broken at entry `index` (0-based); the entries before it hold.
    #[error("ledger broken at entry {index}: {reason}")]
    LedgerBroken { index: usize, reason: LedgerBreak },
}

/// Why one entry of a party's ledger (REC-1) does not continue the entries before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerBreak {
    /// The entry is malformed, has another purpose, or is not signed by the party's key.
    #[error("the entry is refused: {0}")]
    Entry(#[source] ProtocolError),
    /// The entry names another party than the ledger's first entry.
    #[error("the entry is {found}'s, the ledger is {expected}'s")]
    WrongParty { expected: PartyId, found: PartyId },
    /// The entry names another card than the RC the ledger is checked with.
    #[error("the entry is for card {found}, the ledger is card {expected}'s")]
    WrongCard { expected: CardId, found: CardId },
    /// `seq` does not continue 0, 1, 2…: an entry is missing, repeated or moved.
    #[error("the entry has seq {found}, expected {expected}")]
    Sequence { expected: u64, found: u64 },
    /// `prev` is not the digest of the previous entry (or zero for the first).
    #[error("the entry's prev is {found:?}, expected {expected:?}")]
    Prev { expected: Digest, found: Digest },
    /// The embedded receipt is malformed, has another purpose, or is not signed by the RC's key.
    #[error("the embedded receipt is refused: {0}")]
    Receipt(#[source] ProtocolError),
    /// The embedded receipt, signed by the card, names another card than its RC (a card fault).
    #[error("the embedded receipt is for card {found}, the RC is card {expected}'s")]
    ReceiptWrongCard { expected: CardId, found: CardId },
    /// The receipt's counter does not exceed the previous entry's: a receipt recorded twice or
    /// out of order (gaps are allowed: a party does not see every receipt of a card).
    #[error("receipt counter {found} does not exceed the previous entry's {previous}")]
    CounterNotIncreasing { previous: u64, found: u64 },
}
