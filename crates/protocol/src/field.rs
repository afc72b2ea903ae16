//! The small value types that appear inside several objects (challenge, nonce, item ID, item
//! prefix, operation, policy flags) with their bounds, and the DER conversions of the shared
//! identifiers that live in `pki` (card ID, party ID, time) and of SHA-256 digests.

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::Enumerated;

use crate::error::ProtocolError;
use crypto::Digest;
use pki::{CardId, PartyId};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A verifier's single-use 16-byte challenge (the card's GET CHALLENGE, the issuer's REG-2 challenge).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge(pub [u8; 16]);

impl Challenge {
    pub const LEN: usize = 16;

    /// A fresh challenge from `rng`.
    pub fn generate(rng: &mut dyn crypto::Rng) -> Challenge {
        let mut bytes = [0u8; 16];
        rng.fill(&mut bytes);
        Challenge(bytes)
    }
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Challenge({})", hex(&self.0))
    }
}

/// A requester's nonce echoed in a listing: 0..=32 bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    pub const MAX_LEN: usize = 32;

    pub fn new(bytes: &[u8]) -> Result<Nonce, ProtocolError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(invalid(
                "Nonce",
                "nonce",
                format!("{} bytes, at most {}", bytes.len(), Self::MAX_LEN),
            ));
        }
        Ok(Nonce(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", hex(&self.0))
    }
}

/// What is stored or deleted: an application ID (AID, ISO 7816-4 §8.2.1.2) or a data ID,
/// 1..=16 bytes. Ordered bytewise, which is the order of items in a listing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(Vec<u8>);

impl ItemId {
    pub const MAX_LEN: usize = 16;

    pub fn new(bytes: &[u8]) -> Result<ItemId, ProtocolError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(invalid(
                "ItemId",
                "itemId",
                format!("{} bytes, expected 1..={}", bytes.len(), Self::MAX_LEN),
            ));
        }
        Ok(ItemId(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this item ID lies in the range `prefix` delegates (STO-3).
    pub fn starts_with(&self, prefix: &ItemPrefix) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl std::fmt::Debug for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ItemId({})", hex(&self.0))
    }
}

/// A range of item IDs given by their common first bytes, 0..=16 bytes (empty = every item).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ItemPrefix(Vec<u8>);

impl ItemPrefix {
    pub const MAX_LEN: usize = 16;

    pub fn new(bytes: &[u8]) -> Result<ItemPrefix, ProtocolError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(invalid(
                "ItemPrefix",
                "itemPrefix",
                format!("{} bytes, at most {}", bytes.len(), Self::MAX_LEN),
            ));
        }
        Ok(ItemPrefix(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ItemPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ItemPrefix({})", hex(&self.0))
    }
}

/// What an SDI asks the card to do with the item (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enumerated)]
#[repr(u32)]
pub enum Operation {
    Store = 0,
    Delete = 1,
}

/// A non-empty set of operations (what a delegation allows). Encoded as a SEQUENCE OF
/// Operation in ascending order without repeats, so each set has exactly one encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OperationSet {
    store: bool,
    delete: bool,
}

impl OperationSet {
    pub const STORE: OperationSet = OperationSet {
        store: true,
        delete: false,
    };
    pub const DELETE: OperationSet = OperationSet {
        store: false,
        delete: true,
    };
    pub const STORE_AND_DELETE: OperationSet = OperationSet {
        store: true,
        delete: true,
    };

    pub fn contains(&self, operation: Operation) -> bool {
        match operation {
            Operation::Store => self.store,
            Operation::Delete => self.delete,
        }
    }

    /// The operations in ascending order (the DER order).
    pub fn to_vec(&self) -> Vec<Operation> {
        let mut out = Vec::with_capacity(2);
        if self.store {
            out.push(Operation::Store);
        }
        if self.delete {
            out.push(Operation::Delete);
        }
        out
    }

    /// The set of `operations`, which must be non-empty, ascending and without repeats (DER).
    pub fn from_slice(operations: &[Operation]) -> Result<OperationSet, ProtocolError> {
        let ascending = operations.windows(2).all(|w| w[0] < w[1]);
        if operations.is_empty() || !ascending {
            return Err(invalid(
                "OperationSet",
                "operations",
                format!("{operations:?} is not a non-empty ascending set"),
            ));
        }
        Ok(OperationSet {
            store: operations.contains(&Operation::Store),
            delete: operations.contains(&Operation::Delete),
        })
    }
}

/// Policy rules of a stored item (POL-1), an INTEGER used as a bit set so that later rules are
/// new bits. A decoder refuses bits it does not know: a rule the card cannot enforce must not
/// be silently dropped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Policy(u32);

impl Policy {
    /// No rules.
    pub const NONE: Policy = Policy(0);
    /// The item must arrive with certified data (SDCI or SDCI', STO-4/5).
    pub const CERTIFIED_DATA_REQUIRED: Policy = Policy(1 << 0);
    /// The item may not be deleted once stored.
    pub const NOT_DELETABLE: Policy = Policy(1 << 1);
    /// The item is deleted when its application or the card is disabled.
    pub const DELETE_WHEN_DISABLED: Policy = Policy(1 << 2);
    /// Every bit this version knows.
    pub const KNOWN: Policy = Policy(0b111);

    pub fn from_bits(bits: u32) -> Result<Policy, ProtocolError> {
        if bits & !Self::KNOWN.0 != 0 {
            return Err(invalid(
                "Policy",
                "policy",
                format!("unknown policy bits {:#x}", bits & !Self::KNOWN.0),
            ));
        }
        Ok(Policy(bits))
    }

    pub fn bits(&self) -> u32 {
        self.0
    }

    pub fn contains(&self, other: Policy) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Policy) -> Policy {
        Policy(self.0 | other.0)
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names = Vec::new();
        if self.contains(Policy::CERTIFIED_DATA_REQUIRED) {
            names.push("certifiedDataRequired");
        }
        if self.contains(Policy::NOT_DELETABLE) {
            names.push("notDeletable");
        }
        if self.contains(Policy::DELETE_WHEN_DISABLED) {
            names.push("deleteWhenDisabled");
        }
        write!(f, "Policy({})", names.join("|"))
    }
}

// ---- conversions between domain values and their DER wire forms ----

pub(crate) fn invalid(object: &'static str, field: &'static str, reason: String) -> ProtocolError {
    ProtocolError::InvalidField {
        object,
        field,
        reason,
    }
}

pub(crate) fn octets(bytes: &[u8]) -> der::Result<OctetStringRef<'_>> {
    OctetStringRef::new(bytes)
}

pub(crate) fn utf8(text: &str) -> der::Result<Utf8StringRef<'_>> {
    Utf8StringRef::new(text)
}

pub(crate) fn fixed<const N: usize>(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<[u8; N], ProtocolError> {
    value.as_bytes().try_into().map_err(|_| {
        invalid(
            object,
            field,
            format!("{} bytes, expected {N}", value.as_bytes().len()),
        )
    })
}

pub(crate) fn card_id(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<CardId, ProtocolError> {
    fixed::<16>(object, field, value).map(CardId)
}

pub(crate) fn digest(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<Digest, ProtocolError> {
    fixed::<32>(object, field, value).map(Digest)
}

pub(crate) fn challenge(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<Challenge, ProtocolError> {
    fixed::<16>(object, field, value).map(Challenge)
}

pub(crate) fn party(
    object: &'static str,
    field: &'static str,
    value: Utf8StringRef<'_>,
) -> Result<PartyId, ProtocolError> {
    PartyId::new(value.as_str()).map_err(|e| invalid(object, field, e.to_string()))
}

pub(crate) fn item_id(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<ItemId, ProtocolError> {
    ItemId::new(value.as_bytes()).map_err(|e| rename(e, object, field))
}

pub(crate) fn item_prefix(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<ItemPrefix, ProtocolError> {
    ItemPrefix::new(value.as_bytes()).map_err(|e| rename(e, object, field))
}

pub(crate) fn nonce(
    object: &'static str,
    field: &'static str,
    value: OctetStringRef<'_>,
) -> Result<Nonce, ProtocolError> {
    Nonce::new(value.as_bytes()).map_err(|e| rename(e, object, field))
}

pub(crate) fn policy(
    object: &'static str,
    field: &'static str,
    bits: u32,
) -> Result<Policy, ProtocolError> {
    Policy::from_bits(bits).map_err(|e| rename(e, object, field))
}

pub(crate) fn operations(
    object: &'static str,
    field: &'static str,
    operations: &[Operation],
) -> Result<OperationSet, ProtocolError> {
    OperationSet::from_slice(operations).map_err(|e| rename(e, object, field))
}

/// Re-labels a field error raised by a value type's constructor with the object it was found in.
pub(crate) fn rename(
    error: ProtocolError,
    object: &'static str,
    field: &'static str,
) -> ProtocolError {
    match error {
        ProtocolError::InvalidField { reason, .. } => ProtocolError::InvalidField {
            object,
            field,
            reason,
        },
        other => other,
    }
}
