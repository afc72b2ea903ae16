//! SPEC §4 (STO-1…6): what is to be stored or deleted (SDI), the two consents over it (SAR and
//! SA), the issuer's delegation that lets a provider consent alone (STO-3), and certified data
//! (SDCI by the owning provider, SDCI' by the Data Registrar).

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::{Enumerated, Sequence};

use crate::codec::der_codec;
use crate::error::ProtocolError;
use crate::field::{
    self, invalid, octets, utf8, Challenge, ItemId, ItemPrefix, Operation, OperationSet, Policy,
};
use crate::signed::{Purpose, Signed, SignedObject, SignedObjectWire};
use crypto::{Digest, SigningKey};
use pki::{CardId, PartyId, Role, UnixTime};

/// Which side of a consent a party signs as. One consent of every pair is the card's issuer's,
/// the other a provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enumerated)]
#[repr(u32)]
pub enum PartyRole {
    Issuer = 0,
    Provider = 1,
}

impl PartyRole {
    /// The certificate role that certifies a party in this role (IRC for issuers, DPR for
    /// providers).
    pub fn certificate_role(self) -> Role {
        match self {
            PartyRole::Issuer => Role::Issuer,
            PartyRole::Provider => Role::Provider,
        }
    }
}

/// Storing data information (SDI, SPEC §4): exactly what one store or delete does on one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdi {
    pub card_id: CardId,
    pub operation: Operation,
    pub item_id: ItemId,
    pub version: u32,
    /// The item's size in bytes.
    pub size: u32,
    /// SHA-256 of the item's data.
    pub data_digest: Digest,
    /// The provider the item belongs to.
    pub owner: PartyId,
    pub policy: Policy,
}

#[derive(Sequence)]
pub(crate) struct SdiWire<'a> {
    card_id: OctetStringRef<'a>,
    operation: Operation,
    item_id: OctetStringRef<'a>,
    version: u32,
    size: u32,
    data_digest: OctetStringRef<'a>,
    owner: Utf8StringRef<'a>,
    policy: u32,
}

impl Sdi {
    pub(crate) fn to_wire(&self) -> der::Result<SdiWire<'_>> {
        Ok(SdiWire {
            card_id: octets(&self.card_id.0)?,
            operation: self.operation,
            item_id: octets(self.item_id.as_bytes())?,
            version: self.version,
            size: self.size,
            data_digest: octets(&self.data_digest.0)?,
            owner: utf8(self.owner.as_str())?,
            policy: self.policy.bits(),
        })
    }

    pub(crate) fn from_wire(wire: SdiWire<'_>) -> Result<Sdi, ProtocolError> {
        const OBJECT: &str = "Sdi";
        Ok(Sdi {
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            operation: wire.operation,
            item_id: field::item_id(OBJECT, "itemId", wire.item_id)?,
            version: wire.version,
            size: wire.size,
            data_digest: field::digest(OBJECT, "dataDigest", wire.data_digest)?,
            owner: field::party(OBJECT, "owner", wire.owner)?,
            policy: field::policy(OBJECT, "policy", wire.policy)?,
        })
    }
}

der_codec!(Sdi, SdiWire, "Sdi");

/// Storing authorization request (SAR): the first party's consent to an SDI on one card,
/// signed by the requester with its chain (`[IRC]` or `[DPR]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sar {
    pub requester_role: PartyRole,
    pub requester: PartyId,
    /// SHA-256 of the card's registration certificate (RC) DER.
    pub rc_digest: Digest,
    pub sdi: Sdi,
    /// The card's outstanding single-use challenge.
    pub challenge: Challenge,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct SarWire<'a> {
    requester_role: PartyRole,
    requester: Utf8StringRef<'a>,
    rc_digest: OctetStringRef<'a>,
    sdi: SdiWire<'a>,
    challenge: OctetStringRef<'a>,
    issued_at: u64,
    not_after: u64,
}

impl Sar {
    fn to_wire(&self) -> der::Result<SarWire<'_>> {
        Ok(SarWire {
            requester_role: self.requester_role,
            requester: utf8(self.requester.as_str())?,
            rc_digest: octets(&self.rc_digest.0)?,
            sdi: self.sdi.to_wire()?,
            challenge: octets(&self.challenge.0)?,
            issued_at: self.issued_at.0,
            not_after: self.not_after.0,
        })
    }

    fn from_wire(wire: SarWire<'_>) -> Result<Sar, ProtocolError> {
        const OBJECT: &str = "Sar";
        Ok(Sar {
            requester_role: wire.requester_role,
            requester: field::party(OBJECT, "requester", wire.requester)?,
            rc_digest: field::digest(OBJECT, "rcDigest", wire.rc_digest)?,
            sdi: Sdi::from_wire(wire.sdi)?,
            challenge: field::challenge(OBJECT, "challenge", wire.challenge)?,
            issued_at: UnixTime(wire.issued_at),
            not_after: UnixTime(wire.not_after),
        })
    }

    /// Signs this request (chain: the requester's `[IRC]` or `[DPR]`).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }
}

der_codec!(Sar, SarWire, "Sar");

impl Signed for Sar {
    const PURPOSE: Purpose = Purpose::StoringAuthorizationRequest;
}

/// What an SA's consent rests on besides its own signature: the other party's request
/// (STO-1, STO-2) or, on the provider-only path (STO-3), the issuer's delegation. Exactly one,
/// by construction; on the wire `[0]` or `[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaBasis {
    /// The other party's signed [`Sar`].
    Request(SignedObject),
    /// The card's issuer's signed [`Delegation`] (STO-3).
    Delegation(SignedObject),
}

/// Storing authorization (SA): the second party's consent, signed by the grantor with its chain.
/// The SDI and challenge are repeated beside the embedded SAR so that every path (including
/// STO-3, which has no SAR) reads them from the same place; the verifier checks they agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sa {
    pub basis: SaBasis,
    pub grantor_role: PartyRole,
    pub grantor: PartyId,
    pub sdi: Sdi,
    /// SHA-256 of `sdi`'s DER.
    pub sdi_digest: Digest,
    pub card_id: CardId,
    pub challenge: Challenge,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct SaWire<'a> {
    #[asn1(context_specific = "0", optional = "true")]
    sar: Option<SignedObjectWire<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    delegation: Option<SignedObjectWire<'a>>,
    grantor_role: PartyRole,
    grantor: Utf8StringRef<'a>,
    sdi: SdiWire<'a>,
    sdi_digest: OctetStringRef<'a>,
    card_id: OctetStringRef<'a>,
    challenge: OctetStringRef<'a>,
    issued_at: u64,
    not_after: u64,
}

impl Sa {
    /// An SA on `basis` for `sdi`; `sdi_digest` and `card_id` are taken from `sdi`.
    pub fn new(
        basis: SaBasis,
        grantor_role: PartyRole,
        grantor: PartyId,
        sdi: Sdi,
        challenge: Challenge,
        issued_at: UnixTime,
        not_after: UnixTime,
    ) -> Sa {
        Sa {
            basis,
            grantor_role,
            grantor,
            sdi_digest: sdi.digest(),
            card_id: sdi.card_id,
            sdi,
            challenge,
            issued_at,
            not_after,
        }
    }

    fn to_wire(&self) -> der::Result<SaWire<'_>> {
        let (sar, delegation) = match &self.basis {
            SaBasis::Request(sar) => (Some(sar.to_wire()?), None),
            SaBasis::Delegation(delegation) => (None, Some(delegation.to_wire()?)),
        };
        Ok(SaWire {
            sar,
            delegation,
            grantor_role: self.grantor_role,
            grantor: utf8(self.grantor.as_str())?,
            sdi: self.sdi.to_wire()?,
            sdi_digest: octets(&self.sdi_digest.0)?,
            card_id: octets(&self.card_id.0)?,
            challenge: octets(&self.challenge.0)?,
            issued_at: self.issued_at.0,
            not_after: self.not_after.0,
        })
    }

    fn from_wire(wire: SaWire<'_>) -> Result<Sa, ProtocolError> {
        const OBJECT: &str = "Sa";
        let basis = match (wire.sar, wire.delegation) {
            (Some(sar), None) => SaBasis::Request(SignedObject::from_wire(sar)?),
            (None, Some(delegation)) => SaBasis::Delegation(SignedObject::from_wire(delegation)?),
            (sar, delegation) => {
                return Err(invalid(
                    OBJECT,
                    "sar/delegation",
                    format!(
                        "exactly one must be present (sar {}, delegation {})",
                        presence(sar.is_some()),
                        presence(delegation.is_some())
                    ),
                ))
            }
        };
        Ok(Sa {
            basis,
            grantor_role: wire.grantor_role,
            grantor: field::party(OBJECT, "grantor", wire.grantor)?,
            sdi: Sdi::from_wire(wire.sdi)?,
            sdi_digest: field::digest(OBJECT, "sdiDigest", wire.sdi_digest)?,
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            challenge: field::challenge(OBJECT, "challenge", wire.challenge)?,
            issued_at: UnixTime(wire.issued_at),
            not_after: UnixTime(wire.not_after),
        })
    }

    /// Signs this authorization (chain: the grantor's `[IRC]` or `[DPR]`).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }
}

fn presence(present: bool) -> &'static str {
    if present {
        "present"
    } else {
        "absent"
    }
}

der_codec!(Sa, SaWire, "Sa");

impl Signed for Sa {
    const PURPOSE: Purpose = Purpose::StoringAuthorization;
}

/// An issuer's delegation (STO-3): the named provider, holding the pinned DPR, may authorize
/// the listed operations alone, for item IDs under `item_prefix` of at most `max_item_size`
/// bytes, on `card_id` (or on any card of this issuer when absent), until `not_after`.
/// Signed by the issuer with chain `[IRC]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub issuer: PartyId,
    pub provider: PartyId,
    /// SHA-256 of the provider's DPR certificate DER: the delegation is to that certificate
    /// (and so that key), not to whoever holds the provider's name later.
    pub provider_key_digest: Digest,
    pub operations: OperationSet,
    pub item_prefix: ItemPrefix,
    pub max_item_size: u32,
    pub card_id: Option<CardId>,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct DelegationWire<'a> {
    issuer: Utf8StringRef<'a>,
    provider: Utf8StringRef<'a>,
    provider_key_digest: OctetStringRef<'a>,
    operations: Vec<Operation>,
    item_prefix: OctetStringRef<'a>,
    max_item_size: u32,
    card_id: Option<OctetStringRef<'a>>,
    issued_at: u64,
    not_after: u64,
}

impl Delegation {
    fn to_wire(&self) -> der::Result<DelegationWire<'_>> {
        Ok(DelegationWire {
            issuer: utf8(self.issuer.as_str())?,
            provider: utf8(self.provider.as_str())?,
            provider_key_digest: octets(&self.provider_key_digest.0)?,
            operations: self.operations.to_vec(),
            item_prefix: octets(self.item_prefix.as_bytes())?,
            max_item_size: self.max_item_size,
            card_id: self.card_id.as_ref().map(|c| octets(&c.0)).transpose()?,
            issued_at: self.issued_at.0,
            not_after: self.not_after.0,
        })
    }

    fn from_wire(wire: DelegationWire<'_>) -> Result<Delegation, ProtocolError> {
        const OBJECT: &str = "Delegation";
        Ok(Delegation {
            issuer: field::party(OBJECT, "issuer", wire.issuer)?,
            provider: field::party(OBJECT, "provider", wire.provider)?,
            provider_key_digest: field::digest(
                OBJECT,
                "providerKeyDigest",
                wire.provider_key_digest,
            )?,
            operations: field::operations(OBJECT, "operations", &wire.operations)?,
            item_prefix: field::item_prefix(OBJECT, "itemPrefix", wire.item_prefix)?,
            max_item_size: wire.max_item_size,
            card_id: wire
                .card_id
                .map(|c| field::card_id(OBJECT, "cardId", c))
                .transpose()?,
            issued_at: UnixTime(wire.issued_at),
            not_after: UnixTime(wire.not_after),
        })
    }

    /// Signs this delegation (chain: the issuer's `[IRC]`).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }
}

der_codec!(Delegation, DelegationWire, "Delegation");

impl Signed for Delegation {
    const PURPOSE: Purpose = Purpose::Delegation;
}

/// Certified data (STO-4/5): binds the data's digest to one SDI. Signed by the owning provider
/// under [`Purpose::CertifiedData`] (SDCI, chain `[DPR]`), or by the Data Registrar root under
/// [`Purpose::RegistrarCertifiedData`] (SDCI', chain empty or `[root]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedData {
    /// SHA-256 of the SDI's DER.
    pub sdi_digest: Digest,
    /// SHA-256 of the data.
    pub data_digest: Digest,
}

#[derive(Sequence)]
pub(crate) struct CertifiedDataWire<'a> {
    sdi_digest: OctetStringRef<'a>,
    data_digest: OctetStringRef<'a>,
}

impl CertifiedData {
    /// The certification of `sdi`'s data as `sdi` itself describes it.
    pub fn for_sdi(sdi: &Sdi) -> CertifiedData {
        CertifiedData {
            sdi_digest: sdi.digest(),
            data_digest: sdi.data_digest,
        }
    }

    fn to_wire(&self) -> der::Result<CertifiedDataWire<'_>> {
        Ok(CertifiedDataWire {
            sdi_digest: octets(&self.sdi_digest.0)?,
            data_digest: octets(&self.data_digest.0)?,
        })
    }

    fn from_wire(wire: CertifiedDataWire<'_>) -> Result<CertifiedData, ProtocolError> {
        const OBJECT: &str = "CertifiedData";
        Ok(CertifiedData {
            sdi_digest: field::digest(OBJECT, "sdiDigest", wire.sdi_digest)?,
            data_digest: field::digest(OBJECT, "dataDigest", wire.data_digest)?,
        })
    }

    /// SDCI: signed by the owning provider (chain `[DPR]`).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }

    /// SDCI': signed by the Data Registrar root key, with no chain (verifiers hold the root).
    pub fn sign_as_registrar(&self, root_key: &SigningKey) -> SignedObject {
        SignedObject::sign_typed(Purpose::RegistrarCertifiedData, self, root_key, Vec::new())
    }
}

der_codec!(CertifiedData, CertifiedDataWire, "CertifiedData");

impl Signed for CertifiedData {
    const PURPOSE: Purpose = Purpose::CertifiedData;
}
