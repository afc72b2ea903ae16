//! The verification the card runs before it stores, deletes or obeys anything (and the servers
//! reuse): dual consent (STO-1/2/6), provider-only consent under an issuer's delegation (STO-3),
//! certified data (STO-4/5), issuer commands; and the parties' checks of the card's receipts
//! and listings (STO-7, REC-1).
//!
//! Time: a card has no clock, only its *time floor* (design/objects.md). An object is refused
//! when its `not_after` is before the floor. Its signer's chain is verified at
//! `max(time_floor, object.issued_at)`: never earlier than the floor (so expiry is at least as
//! strict), and late enough that a certificate issued after the card last raised its floor is
//! not refused as "not yet valid" — a clockless verifier can refuse an expired certificate but
//! has no ground to refuse a new one. Objects without `issued_at` are checked at the floor.

use std::slice;

use crate::command::IssuerCommand;
use crate::error::{ConsentError, ProtocolError};
use crate::field::Challenge;
use crate::record::{Listing, Receipt};
use crate::signed::{Purpose, Signed, SignedObject};
use crate::storing::{CertifiedData, Delegation, PartyRole, Sa, SaBasis, Sar, Sdi};
use crate::Nonce;
use crypto::Digest;
use pki::{CardId, Certificate, Crl, PartyId, Role, UnixTime, VerifiedChain};

/// What a card knows when it verifies: who it is, whom it trusts, what time it is at least,
/// and which challenge it has outstanding.
#[derive(Debug, Clone, Copy)]
pub struct CardContext<'a> {
    pub card_id: CardId,
    /// The card's own registration certificate (RC); `None` before registration (issuer
    /// commands are still verifiable then; storing authorizations are not).
    pub rc: Option<&'a Certificate>,
    /// The card's issuer (the RC's issuer, the subject of the issuer's IRC).
    pub issuer: &'a PartyId,
    /// The Issuer Registrar root: anchor for issuers' IRCs.
    pub issuer_anchor: &'a Certificate,
    /// The Data Registrar root: anchor for providers' DPRs and signer of SDCI'.
    pub data_anchor: &'a Certificate,
    /// The revocation lists the card holds.
    pub crls: &'a [Crl],
    /// The latest issuer- or registrar-signed time the card has accepted.
    pub time_floor: UnixTime,
    /// The card's outstanding single-use challenge, if any.
    pub challenge: Option<Challenge>,
}

/// Which SPEC path an authorization took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentPath {
    /// STO-1: the issuer signed the SAR, the item's provider the SA.
    IssuerRequested,
    /// STO-2: the item's provider signed the SAR, the issuer the SA.
    ProviderRequested,
    /// STO-3: the provider signed the SA alone, under the issuer's delegation.
    ProviderOnly,
}

/// What a verified SA lets the card do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The exact store or delete both consents cover.
    pub sdi: Sdi,
    /// SHA-256 of the SDI's DER (what the receipt binds).
    pub sdi_digest: Digest,
    /// SHA-256 of the SA SignedObject's DER (what the receipt binds).
    pub authorization_digest: Digest,
    pub grantor: PartyId,
    pub grantor_role: PartyRole,
    /// The SAR's signer; `None` on STO-3.
    pub requester: Option<PartyId>,
    pub path: ConsentPath,
    /// The `issued_at` of the issuer-signed object in this consent (the SAR on STO-1, the SA on
    /// STO-2, the delegation on STO-3): the time the card may raise its floor to once it
    /// commits the operation. Provider-signed times never move the floor, so a provider cannot
    /// push a card's floor past its issuer's objects.
    pub newest_issued_at: UnixTime,
}

/// Who certified data (STO-4/5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertifiedBy {
    /// SDCI: the owning provider.
    Provider(PartyId),
    /// SDCI': the Data Registrar.
    DataRegistrar,
}

/// Verifies a storing authorization as the card does (STO-1/2/3/6, STO-8, SEC-1):
///
/// - a challenge is outstanding and both the SA and the SAR answer it;
/// - purposes: SA, SAR, delegation;
/// - each signer's chain verifies to the anchor of its role (Issuer Registrar for the issuer's
///   IRC, Data Registrar for a provider's DPR) with the card's CRLs, the leaf names the party
///   the object names, and each signature verifies under that leaf;
/// - one side is the card's issuer and the other the provider that owns the item, never the
///   same role twice;
/// - SA, SDI and SAR name this card; the SAR binds this card's RC; the SAR's SDI is the SA's;
///   the SA's SDI digest is the digest of its SDI;
/// - `issued_at <= not_after` and `not_after >= time_floor` for SA, SAR and delegation;
/// - STO-3: the delegation is the card's issuer's, for the SA's provider and its DPR, allows
///   the operation, covers the item ID prefix and size, and this card if it names one.
///
/// Spending the challenge is the caller's: the card clears it whatever the outcome.
pub fn verify_storing_authorization(
    sa_object: &SignedObject,
    ctx: &CardContext<'_>,
) -> Result<Authorized, ConsentError> {
    if ctx.challenge.is_none() {
        return Err(ConsentError::NoChallengeOutstanding);
    }
    let (sa, sa_chain) = open_signed::<Sa>(sa_object, "Sa", ctx, |sa| {
        (sa.grantor_role, sa.grantor.clone(), sa.issued_at)
    })?;
    check_party("Sa", sa.grantor_role, &sa.grantor, &sa.sdi, ctx)?;
    check_card("Sa", sa.card_id, ctx)?;
    check_card("Sdi", sa.sdi.card_id, ctx)?;
    let sdi_digest = sa.sdi.digest();
    if sa.sdi_digest != sdi_digest {
        return Err(ConsentError::SdiDigestMismatch {
            object: "Sa",
            declared: sa.sdi_digest,
            computed: sdi_digest,
        });
    }
    check_challenge("Sa", sa.challenge, ctx)?;
    check_validity("Sa", sa.issued_at, sa.not_after, ctx)?;

    let (path, requester, newest_issued_at) = match &sa.basis {
        SaBasis::Request(sar_object) => {
            let sar = verify_request(sar_object, &sa, sdi_digest, ctx)?;
            let (path, newest_issued_at) = match sar.requester_role {
                PartyRole::Issuer => (ConsentPath::IssuerRequested, sar.issued_at),
                PartyRole::Provider => (ConsentPath::ProviderRequested, sa.issued_at),
            };
            (path, Some(sar.requester), newest_issued_at)
        }
        SaBasis::Delegation(delegation_object) => {
            let delegation = verify_delegation(delegation_object, &sa, &sa_chain, ctx)?;
            (ConsentPath::ProviderOnly, None, delegation.issued_at)
        }
    };

    Ok(Authorized {
        sdi_digest,
        authorization_digest: sa_object.digest(),
        grantor: sa.grantor,
        grantor_role: sa.grantor_role,
        requester,
        path,
        newest_issued_at,
        sdi: sa.sdi,
    })
}

/// The SAR embedded in `sa` (STO-1/2): signed by the other role, over the same SDI, this card's
/// RC and the same challenge.
fn verify_request(
    sar_object: &SignedObject,
    sa: &Sa,
    sa_sdi_digest: Digest,
    ctx: &CardContext<'_>,
) -> Result<Sar, ConsentError> {
    let (sar, _) = open_signed::<Sar>(sar_object, "Sar", ctx, |sar| {
        (sar.requester_role, sar.requester.clone(), sar.issued_at)
    })?;
    if sar.requester_role == sa.grantor_role {
        return Err(ConsentError::SameRoleTwice {
            role: sar.requester_role,
        });
    }
    if sar.sdi != sa.sdi {
        return Err(ConsentError::SdiMismatch {
            sar: sar.sdi.digest(),
            sa: sa_sdi_digest,
        });
    }
    check_party("Sar", sar.requester_role, &sar.requester, &sar.sdi, ctx)?;
    let rc_digest = ctx.rc.ok_or(ConsentError::NotRegistered)?.digest();
    if sar.rc_digest != rc_digest {
        return Err(ConsentError::RcMismatch {
            expected: rc_digest,
            found: sar.rc_digest,
        });
    }
    check_challenge("Sar", sar.challenge, ctx)?;
    check_validity("Sar", sar.issued_at, sar.not_after, ctx)?;
    Ok(sar)
}

/// The issuer's delegation embedded in `sa` (STO-3): the provider alone may authorize this
/// operation on this item.
fn verify_delegation(
    delegation_object: &SignedObject,
    sa: &Sa,
    sa_chain: &VerifiedChain,
    ctx: &CardContext<'_>,
) -> Result<Delegation, ConsentError> {
    if sa.grantor_role != PartyRole::Provider {
        return Err(ConsentError::WrongRole {
            object: "Sa",
            expected: PartyRole::Provider,
            found: sa.grantor_role,
        });
    }
    let (delegation, _) = open_signed::<Delegation>(delegation_object, "Delegation", ctx, |d| {
        (PartyRole::Issuer, d.issuer.clone(), d.issued_at)
    })?;
    check_party(
        "Delegation",
        PartyRole::Issuer,
        &delegation.issuer,
        &sa.sdi,
        ctx,
    )?;
    check_validity(
        "Delegation",
        delegation.issued_at,
        delegation.not_after,
        ctx,
    )?;
    if delegation.provider != sa.grantor {
        return Err(ConsentError::DelegationWrongProvider {
            delegated: delegation.provider,
            grantor: sa.grantor.clone(),
        });
    }
    if delegation.provider_key_digest != sa_chain.leaf_digest {
        return Err(ConsentError::DelegationKeyMismatch {
            delegated: delegation.provider_key_digest,
            presented: sa_chain.leaf_digest,
        });
    }
    if let Some(card_id) = delegation.card_id {
        check_card("Delegation", card_id, ctx)?;
    }
    let sdi = &sa.sdi;
    if !delegation.operations.contains(sdi.operation) {
        return Err(ConsentError::OperationNotDelegated {
            operation: sdi.operation,
        });
    }
    if !sdi.item_id.starts_with(&delegation.item_prefix) {
        return Err(ConsentError::ItemOutsidePrefix {
            item_id: sdi.item_id.clone(),
            prefix: delegation.item_prefix,
        });
    }
    if sdi.size > delegation.max_item_size {
        return Err(ConsentError::ItemTooLarge {
            size: sdi.size,
            max: delegation.max_item_size,
        });
    }
    Ok(delegation)
}

/// Verifies certified data for `sdi` (an SDI the card has already authorized) and the data's
/// digest `data_digest` (STO-4/5): an SDCI by the item's owner (chain `[DPR]`) or an SDCI' by
/// the Data Registrar (chain empty or `[root]`), over this SDI and this data, which must also
/// be the data the SDI describes. Checked at the context's time floor: a card should pass the
/// floor raised to the authorization's [`Authorized::newest_issued_at`].
pub fn verify_certified_data(
    sdci: &SignedObject,
    sdi: &Sdi,
    data_digest: &Digest,
    ctx: &CardContext<'_>,
) -> Result<CertifiedBy, ConsentError> {
    const OBJECT: &str = "CertifiedData";
    check_card("Sdi", sdi.card_id, ctx)?;
    let (body, certified_by) = match sdci.purpose() {
        Purpose::CertifiedData => {
            let chain = verify_signer_chain(
                sdci,
                OBJECT,
                PartyRole::Provider,
                ctx.time_floor,
                ctx.trust(),
            )?;
            if chain.leaf_subject != sdi.owner {
                return Err(ConsentError::NotItemOwner {
                    object: OBJECT,
                    owner: sdi.owner.clone(),
                    found: chain.leaf_subject,
                });
            }
            let body: CertifiedData = sdci.open(&chain.leaf_key)?;
            (body, CertifiedBy::Provider(chain.leaf_subject))
        }
        Purpose::RegistrarCertifiedData => {
            match sdci.signer_chain() {
                [] => {}
                [root] if root.as_slice() == ctx.data_anchor.der() => {}
                _ => return Err(ConsentError::NotTheRegistrar { object: OBJECT }),
            }
            // The root is an anchor: only its validity at the floor is checked.
            pki::verify_chain(
                slice::from_ref(ctx.data_anchor),
                slice::from_ref(ctx.data_anchor),
                ctx.crls,
                ctx.time_floor,
                Role::DataRegistrar,
            )
            .map_err(|source| ConsentError::Certificate {
                object: OBJECT,
                source,
            })?;
            let key = ctx.data_anchor.public_key();
            let body =
                CertifiedData::from_der(sdci.verify(&key, Purpose::RegistrarCertifiedData)?)?;
            (body, CertifiedBy::DataRegistrar)
        }
        found => {
            return Err(ProtocolError::WrongPurpose {
                expected: Purpose::CertifiedData,
                found,
            }
            .into())
        }
    };
    let sdi_digest = sdi.digest();
    if body.sdi_digest != sdi_digest {
        return Err(ConsentError::SdiDigestMismatch {
            object: OBJECT,
            declared: body.sdi_digest,
            computed: sdi_digest,
        });
    }
    if body.data_digest != *data_digest {
        return Err(ConsentError::DataDigestMismatch {
            object: OBJECT,
            expected: *data_digest,
            found: body.data_digest,
        });
    }
    if sdi.data_digest != *data_digest {
        return Err(ConsentError::DataDigestMismatch {
            object: "Sdi",
            expected: sdi.data_digest,
            found: *data_digest,
        });
    }
    Ok(certified_by)
}

/// Verifies an issuer command as the card does: a challenge is outstanding and answered, the
/// chain `[IRC]` verifies to the Issuer Registrar and names the card's issuer, the signature,
/// this card, `issued_at <= not_after >= time_floor`. Returns the command (its `issued_at` is
/// an issuer-signed time the card may raise its floor to).
pub fn verify_issuer_command(
    command: &SignedObject,
    ctx: &CardContext<'_>,
) -> Result<IssuerCommand, ConsentError> {
    const OBJECT: &str = "IssuerCommand";
    if ctx.challenge.is_none() {
        return Err(ConsentError::NoChallengeOutstanding);
    }
    let (body, _) = open_signed::<IssuerCommand>(command, OBJECT, ctx, |c| {
        (PartyRole::Issuer, ctx.issuer.clone(), c.issued_at)
    })?;
    check_card(OBJECT, body.card_id, ctx)?;
    check_challenge(OBJECT, body.challenge, ctx)?;
    check_validity(OBJECT, body.issued_at, body.not_after, ctx)?;
    Ok(body)
}

/// A party's check of a card's receipt (STO-7): purpose and signature under the key `rc`
/// certifies, and the receipt names the RC's card. The caller has verified `rc` itself (pki)
/// and checks the counter against its ledger.
pub fn verify_receipt(receipt: &SignedObject, rc: &Certificate) -> Result<Receipt, ConsentError> {
    const OBJECT: &str = "Receipt";
    let card_id = rc_card_id(rc, OBJECT)?;
    let body: Receipt = receipt.open(&rc.public_key())?;
    if body.card_id != card_id {
        return Err(ConsentError::WrongCard {
            object: OBJECT,
            expected: card_id,
            found: body.card_id,
        });
    }
    Ok(body)
}

/// A party's check of a card's listing (REC-1): purpose and signature under the key `rc`
/// certifies, the RC's card, and that it answers the party's `nonce`.
pub fn verify_listing(
    listing: &SignedObject,
    rc: &Certificate,
    nonce: &Nonce,
) -> Result<Listing, ConsentError> {
    const OBJECT: &str = "Listing";
    let card_id = rc_card_id(rc, OBJECT)?;
    let body: Listing = listing.open(&rc.public_key())?;
    if body.card_id != card_id {
        return Err(ConsentError::WrongCard {
            object: OBJECT,
            expected: card_id,
            found: body.card_id,
        });
    }
    if body.nonce != *nonce {
        return Err(ConsentError::NonceMismatch {
            expected: nonce.clone(),
            found: body.nonce,
        });
    }
    Ok(body)
}

/// The card ID `rc` certifies, refusing a certificate that is not a card's RC.
pub(crate) fn rc_card_id(rc: &Certificate, object: &'static str) -> Result<CardId, ConsentError> {
    match rc.card_id() {
        Some(card_id) if rc.role() == Role::Card => Ok(card_id),
        _ => Err(ConsentError::Certificate {
            object,
            source: pki::PkiError::UnexpectedRole {
                subject: rc.subject_id().to_string(),
                expected: Role::Card,
                found: rc.role(),
            },
        }),
    }
}

/// Opens a signed `T` whose signer is identified by the body itself, as the card does: the
/// chain is verified at `max(time_floor, issued_at)` (see [`open_certified`]).
fn open_signed<T: Signed>(
    object: &SignedObject,
    name: &'static str,
    ctx: &CardContext<'_>,
    claim: impl FnOnce(&T) -> (PartyRole, PartyId, UnixTime),
) -> Result<(T, VerifiedChain), ConsentError> {
    open_certified(object, name, ctx.trust(), |claimed: &T| {
        let (role, party, issued_at) = claim(claimed);
        (role, party, ctx.time_floor.max(issued_at))
    })
}

/// Opens a signed `T` whose signer is identified by the body itself: checks the purpose, reads
/// the claimed role, party and the time to check the chain at from the unverified body
/// (`claim`), verifies the chain to the anchor of that role at that time, checks that the leaf
/// is the claimed party, then verifies the signature and decodes the body.
pub(crate) fn open_certified<T: Signed>(
    object: &SignedObject,
    name: &'static str,
    trust: Trust<'_>,
    claim: impl FnOnce(&T) -> (PartyRole, PartyId, UnixTime),
) -> Result<(T, VerifiedChain), ConsentError> {
    if object.purpose() != T::PURPOSE {
        return Err(ProtocolError::WrongPurpose {
            expected: T::PURPOSE,
            found: object.purpose(),
        }
        .into());
    }
    let claimed: T = object.body_unverified()?;
    let (role, party, at) = claim(&claimed);
    let chain = verify_signer_chain(object, name, role, at, trust)?;
    if chain.leaf_subject != party {
        return Err(ConsentError::WrongSigner {
            object: name,
            expected: party,
            found: chain.leaf_subject,
        });
    }
    let body = object.open::<T>(&chain.leaf_key)?;
    Ok((body, chain))
}

/// Whom a verifier trusts for party signatures: the two registrar roots and the revocation
/// lists it holds. The card takes them from its [`CardContext`]; a server from its
/// configuration (see `crate::api_request`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trust<'a> {
    pub(crate) issuer_anchor: &'a Certificate,
    pub(crate) data_anchor: &'a Certificate,
    pub(crate) crls: &'a [Crl],
}

impl CardContext<'_> {
    fn trust(&self) -> Trust<'_> {
        Trust {
            issuer_anchor: self.issuer_anchor,
            data_anchor: self.data_anchor,
            crls: self.crls,
        }
    }
}

/// Parses the object's signer chain and verifies it to the anchor of `role` at `at`: the
/// Issuer Registrar for an issuer's IRC, the Data Registrar for a provider's DPR, with the
/// verifier's CRLs, the leaf in the certificate role of `role`.
fn verify_signer_chain(
    object: &SignedObject,
    name: &'static str,
    role: PartyRole,
    at: UnixTime,
    trust: Trust<'_>,
) -> Result<VerifiedChain, ConsentError> {
    if object.signer_chain().is_empty() {
        return Err(ConsentError::MissingChain { object: name });
    }
    let refused = |source| ConsentError::Certificate {
        object: name,
        source,
    };
    let chain = object
        .signer_chain()
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refused)?;
    let anchor = match role {
        PartyRole::Issuer => trust.issuer_anchor,
        PartyRole::Provider => trust.data_anchor,
    };
    pki::verify_chain(
        &chain,
        slice::from_ref(anchor),
        trust.crls,
        at,
        role.certificate_role(),
    )
    .map_err(refused)
}

/// The party in `role` is the one the card accepts for it: its own issuer, or the item's owner.
fn check_party(
    object: &'static str,
    role: PartyRole,
    party: &PartyId,
    sdi: &Sdi,
    ctx: &CardContext<'_>,
) -> Result<(), ConsentError> {
    match role {
        PartyRole::Issuer if party != ctx.issuer => Err(ConsentError::NotCardIssuer {
            object,
            expected: ctx.issuer.clone(),
            found: party.clone(),
        }),
        PartyRole::Provider if *party != sdi.owner => Err(ConsentError::NotItemOwner {
            object,
            owner: sdi.owner.clone(),
            found: party.clone(),
        }),
        _ => Ok(()),
    }
}

fn check_card(
    object: &'static str,
    found: CardId,
    ctx: &CardContext<'_>,
) -> Result<(), ConsentError> {
    if found != ctx.card_id {
        return Err(ConsentError::WrongCard {
            object,
            expected: ctx.card_id,
            found,
        });
    }
    Ok(())
}

fn check_challenge(
    object: &'static str,
    found: Challenge,
    ctx: &CardContext<'_>,
) -> Result<(), ConsentError> {
    let expected = ctx.challenge.ok_or(ConsentError::NoChallengeOutstanding)?;
    if !crypto::ct_eq(&expected.0, &found.0) {
        return Err(ConsentError::ChallengeMismatch {
            object,
            expected,
            found,
        });
    }
    Ok(())
}

fn check_validity(
    object: &'static str,
    issued_at: UnixTime,
    not_after: UnixTime,
    ctx: &CardContext<'_>,
) -> Result<(), ConsentError> {
    if issued_at > not_after {
        return Err(ConsentError::InvalidValidity {
            object,
            issued_at,
            not_after,
        });
    }
    if not_after < ctx.time_floor {
        return Err(ConsentError::Expired {
            object,
            not_after,
            time_floor: ctx.time_floor,
        });
    }
    Ok(())
}
