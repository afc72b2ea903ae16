//! The terminal's flows (SPEC REG-2, STO-1…7, REC-1): it relays between a card and the
//! parties' servers, and checks what it can check so the user hears about a problem where it
//! happens. It is untrusted (STYLE rule 7): every effect on the card needs an object a party or
//! the card signed, every record a party keeps is fed by the card's signed receipt, and the
//! terminal never sees a secret in clear (the personalisation record is the issuer facility's,
//! see [`personalise`]).
//!
//! Each flow reports its steps through a [`Progress`] callback (OPS-5).

use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::provider::{Certifier, ProviderClient};
use pki::{CardId, Certificate, PartyId};
use protocol::{
    verify_listing, verify_receipt, Challenge, ItemId, Nonce, Operation, Receipt, ReceiptResult,
    Sdi, SignedObject, UserInfo,
};

use crate::{CardChannel, CardClient, Personalisation};

/// Where a flow failed and why.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The card refused or could not be reached.
    #[error("{step}: the card: {source}")]
    Card {
        step: &'static str,
        #[source]
        source: crate::ClientError,
    },
    /// A party's server refused or could not be reached.
    #[error("{step}: {source}")]
    Party {
        step: &'static str,
        #[source]
        source: party_api::ClientError,
    },
    /// Something a party or the card sent does not verify or does not make sense.
    #[error("{step}: {detail}")]
    Invalid { step: &'static str, detail: String },
    /// The flow was told to stop after `step` (a test's stand-in for a killed terminal).
    #[error("stopped after the step \"{step}\"")]
    Interrupted { step: &'static str },
}

impl FlowError {
    /// The server's error code when a party refused.
    pub fn party_code(&self) -> Option<&str> {
        match self {
            FlowError::Party { source, .. } => source.code(),
            _ => None,
        }
    }

    /// The card's status word when the card refused.
    pub fn card_status(&self) -> Option<apdu::Status> {
        match self {
            FlowError::Card { source, .. } => source.status(),
            _ => None,
        }
    }
}

pub(crate) fn card_step(step: &'static str) -> impl Fn(crate::ClientError) -> FlowError {
    move |source| FlowError::Card { step, source }
}

pub(crate) fn party_step(step: &'static str) -> impl Fn(party_api::ClientError) -> FlowError {
    move |source| FlowError::Party { step, source }
}

pub(crate) fn invalid(step: &'static str, detail: impl std::fmt::Display) -> FlowError {
    FlowError::Invalid {
        step,
        detail: detail.to_string(),
    }
}

/// Maps a party's answer field that does not decode (party-api's own decoders) into the step.
pub(crate) fn field(step: &'static str) -> impl Fn(party_api::issuer::FieldError) -> FlowError {
    move |e| invalid(step, e)
}

/// Receives each step's description as the flow reaches it.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// The parties a terminal talks to.
#[derive(Debug, Clone)]
pub struct Parties {
    pub issuer: IssuerClient,
    pub provider: ProviderClient,
    /// The provider's party ID (the owner named in SDIs for its items).
    pub provider_id: PartyId,
}

/// What the card says about itself and its registration.
#[derive(Debug, Clone)]
pub struct CardIdentity {
    pub card_id: CardId,
    pub rc: Certificate,
    pub irc: Certificate,
}

/// Reads the card's ID, RC and its issuer's IRC (a registered card).
pub fn identity<C: CardChannel>(card: &mut CardClient<C>) -> Result<CardIdentity, FlowError> {
    const STEP: &str = "reading the card's registration";
    card.select_card_manager().map_err(card_step(STEP))?;
    let card_id = card.card_id().map_err(card_step(STEP))?;
    let rc = card.get_data(card::wire::TAG_RC).map_err(card_step(STEP))?;
    let rc =
        Certificate::from_der(&rc).map_err(|e| invalid(STEP, format!("the card's RC: {e}")))?;
    let irc = card
        .get_data(card::wire::TAG_IRC)
        .map_err(card_step(STEP))?;
    let irc =
        Certificate::from_der(&irc).map_err(|e| invalid(STEP, format!("the card's IRC: {e}")))?;
    Ok(CardIdentity { card_id, rc, irc })
}

/// Personalises a blank card from a new issuer record (CARD-3). This runs at the issuer's
/// personalisation facility: the record carries `Sk` and the PIN, and the operator token
/// authorises asking for it. Returns the new card's ID.
pub async fn personalise<C: CardChannel>(
    card: &mut CardClient<C>,
    issuer: &IssuerClient,
    operator_token: &str,
    order: &PersonaliseRequest,
    progress: Progress<'_>,
) -> Result<CardId, FlowError> {
    const STEP: &str = "personalising the card";
    progress("asking the issuer for a personalisation record");
    let record = issuer
        .personalise(operator_token, order)
        .await
        .map_err(party_step(STEP))?;
    let personalisation = Personalisation::from_record(&record).map_err(|e| invalid(STEP, e))?;
    progress("writing the record into the card (STORE DATA)");
    card.select_card_manager().map_err(card_step(STEP))?;
    card.personalise(&personalisation)
        .map_err(card_step(STEP))?;
    Ok(personalisation.card_id)
}

/// What registration produced.
#[derive(Debug, Clone)]
pub struct Registered {
    pub card_id: CardId,
    pub rc: Certificate,
}

/// REG-2: the card signs its registration information over the issuer's challenge, the issuer
/// certifies it (RC), the card checks RC and IRC against its anchor and keeps them.
pub async fn register<C: CardChannel>(
    card: &mut CardClient<C>,
    issuer: &IssuerClient,
    pin: &str,
    user: &UserInfo,
    progress: Progress<'_>,
) -> Result<Registered, FlowError> {
    const STEP: &str = "registering the card";
    card.select_card_manager().map_err(card_step(STEP))?;
    let card_id = card.card_id().map_err(card_step(STEP))?;
    progress("verifying the holder's PIN");
    card.verify_pin(pin)
        .map_err(card_step("verifying the PIN"))?;
    progress("asking the issuer for a registration challenge");
    let challenge = issuer.challenge(&card_id).await.map_err(party_step(STEP))?;
    let challenge = challenge.challenge_value().map_err(field(STEP))?;
    progress("the card signs its registration information");
    let registration = card.register(user, &challenge.0).map_err(card_step(STEP))?;
    progress("the issuer certifies the card (RC)");
    let answer = issuer
        .register(&card_id, &registration)
        .await
        .map_err(party_step(STEP))?;
    let rc = answer.rc_certificate().map_err(field(STEP))?;
    let irc = answer.irc_certificate().map_err(field(STEP))?;
    progress("the card checks RC and IRC and keeps them");
    card.register_complete(&rc, &irc).map_err(card_step(STEP))?;
    Ok(Registered { card_id, rc })
}

/// Which consent path a store or delete takes (SPEC STO-1…3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoringPath {
    /// STO-1: the issuer signs the SAR, the provider the SA (asked by the issuer).
    ViaIssuer,
    /// STO-2: the provider signs the SAR, the issuer the SA (asked by the provider).
    ViaProvider,
    /// STO-3: the provider alone, under the issuer's delegation.
    ProviderOnly,
}

/// Whether the data comes with a certification the card checks (STO-4/5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certification {
    /// Plain data, checked by the card against the SDI's digest.
    None,
    /// STO-4: the provider's SDCI over data + SDI.
    Provider,
    /// STO-5: the Data Registrar's SDCI', served by the provider as is.
    Registrar,
}

/// One store or delete.
#[derive(Debug, Clone)]
pub struct StoringOrder {
    pub operation: Operation,
    pub path: StoringPath,
    pub item: ItemId,
    /// The catalog's highest version when absent (store); for a delete, the version on the card.
    pub version: Option<u32>,
    pub certification: Certification,
    pub pin: String,
}

/// What a store or delete produced: the card's verified receipt and both parties' records of
/// it.
#[derive(Debug, Clone)]
pub struct StoringOutcome {
    pub sdi: Sdi,
    pub receipt: Receipt,
    /// The issuer's ledger sequence number for this receipt.
    pub issuer_seq: u64,
    /// Whether the issuer's view now equals the card's contents as the receipt states them.
    pub issuer_in_sync: bool,
    pub provider_seq: u64,
}

/// The SDI storing `item` (the catalog's `version`, or its highest) on `card_id`, with the
/// item's details as the provider's catalog publishes them.
pub async fn store_sdi(
    parties: &Parties,
    card_id: CardId,
    item: &ItemId,
    version: Option<u32>,
) -> Result<Sdi, FlowError> {
    const STEP: &str = "describing the item (SDI)";
    let listed = parties
        .provider
        .item(item, version)
        .await
        .map_err(party_step(STEP))?;
    Ok(Sdi {
        card_id,
        operation: Operation::Store,
        item_id: item.clone(),
        version: listed.version,
        size: listed.size,
        data_digest: listed.data_digest_value().map_err(field(STEP))?,
        owner: parties.provider_id.clone(),
        policy: listed.policy_value().map_err(field(STEP))?,
    })
}

/// The SDI for `order` on this card: a store takes the item's details from the provider's
/// catalog; a delete names the item as the card lists it.
async fn sdi_for<C: CardChannel>(
    card: &mut CardClient<C>,
    card_identity: &CardIdentity,
    parties: &Parties,
    order: &StoringOrder,
) -> Result<Sdi, FlowError> {
    const STEP: &str = "describing the item (SDI)";
    if order.operation == Operation::Store {
        return store_sdi(parties, card_identity.card_id, &order.item, order.version).await;
    }
    let listing = signed_listing(card, card_identity, STEP)?.listing;
    let listed = listing
        .contents
        .items()
        .iter()
        .find(|i| i.item_id == order.item && order.version.is_none_or(|v| v == i.version))
        .cloned()
        .ok_or_else(|| {
            invalid(
                STEP,
                format!(
                    "the card holds no item {}",
                    hex::encode(order.item.as_bytes())
                ),
            )
        })?;
    Ok(Sdi {
        card_id: card_identity.card_id,
        operation: Operation::Delete,
        item_id: listed.item_id,
        version: listed.version,
        size: listed.size,
        data_digest: listed.data_digest,
        owner: listed.owner,
        policy: listed.policy,
    })
}

/// The card's signed listing over a fresh nonce, verified under its RC: the signed object
/// (for a party's reconciliation), what it says, and the nonce it answers.
pub(crate) struct SignedListing {
    pub(crate) object: SignedObject,
    pub(crate) listing: protocol::Listing,
    pub(crate) nonce: Nonce,
}

/// The card's signed listing over a fresh nonce of the terminal's own.
pub(crate) fn signed_listing<C: CardChannel>(
    card: &mut CardClient<C>,
    card_identity: &CardIdentity,
    step: &'static str,
) -> Result<SignedListing, FlowError> {
    let mut nonce = [0u8; 16];
    crypto::Rng::fill(&mut crypto::OsRng, &mut nonce);
    // Invariant: 16 bytes is within a nonce's 0..=32.
    let nonce = Nonce::new(&nonce).expect("16-byte nonce");
    signed_listing_over(card, card_identity, nonce, step)
}

/// The card's signed listing over `nonce` (a party's, when that party must see it fresh).
pub(crate) fn signed_listing_over<C: CardChannel>(
    card: &mut CardClient<C>,
    card_identity: &CardIdentity,
    nonce: Nonce,
    step: &'static str,
) -> Result<SignedListing, FlowError> {
    let object = card.listing(nonce.as_bytes()).map_err(card_step(step))?;
    let listing = verify_listing(&object, &card_identity.rc, &nonce)
        .map_err(|e| invalid(step, format!("the card's listing: {e}")))?;
    Ok(SignedListing {
        object,
        listing,
        nonce,
    })
}

/// A store or a delete on one of the three paths (STO-1…6), then the receipt to both parties
/// (STO-7).
pub async fn store_or_delete<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
    order: &StoringOrder,
    progress: Progress<'_>,
) -> Result<StoringOutcome, FlowError> {
    let card_identity = identity(card)?;
    let card_id = card_identity.card_id;
    progress("verifying the holder's PIN");
    card.verify_pin(&order.pin)
        .map_err(card_step("verifying the PIN"))?;
    progress("describing the item (SDI)");
    let sdi = sdi_for(card, &card_identity, parties, order).await?;
    const CONSENT: &str = "obtaining both consents";
    let challenge = Challenge(card.get_challenge().map_err(card_step(CONSENT))?);
    let sa = match order.path {
        StoringPath::ViaIssuer => {
            progress("the issuer signs a SAR and obtains the provider's SA (STO-1)");
            let answer = parties
                .issuer
                .request(&card_id, &sdi, &challenge)
                .await
                .map_err(party_step(CONSENT))?;
            answer.sa_object().map_err(field(CONSENT))?
        }
        StoringPath::ViaProvider => {
            progress("the provider signs a SAR and obtains the issuer's SA (STO-2)");
            let answer = parties
                .provider
                .request(
                    &card_id,
                    &card_identity.rc.digest(),
                    &sdi,
                    &challenge,
                    card_identity.irc.subject_id(),
                )
                .await
                .map_err(party_step(CONSENT))?;
            answer.sa_object().map_err(field(CONSENT))?
        }
        StoringPath::ProviderOnly => {
            progress("the provider signs alone under the issuer's delegation (STO-3)");
            let answer = parties
                .provider
                .alone(&sdi, &challenge, None)
                .await
                .map_err(party_step(CONSENT))?;
            answer.sa_object().map_err(field(CONSENT))?
        }
    };
    const CARD: &str = "the card stores or deletes";
    let receipt_object = match order.operation {
        Operation::Store => {
            const DATA: &str = "fetching the data";
            let (data, certified) = match order.certification {
                Certification::None => {
                    progress("fetching the data from the provider");
                    let answer = parties
                        .provider
                        .data(&sdi.item_id, &card_id, Some(sdi.version))
                        .await
                        .map_err(party_step(DATA))?;
                    (answer.data_bytes().map_err(field(DATA))?, None)
                }
                Certification::Provider | Certification::Registrar => {
                    let by_registrar = order.certification == Certification::Registrar;
                    progress(if by_registrar {
                        "fetching the data with the Data Registrar's certification (SDCI')"
                    } else {
                        "fetching the data with the provider's certification (SDCI)"
                    });
                    let certifier = if by_registrar {
                        Certifier::DataRegistrar
                    } else {
                        Certifier::Provider
                    };
                    let answer = parties
                        .provider
                        .certified(&sdi.item_id, &card_id, &sdi, certifier)
                        .await
                        .map_err(party_step(DATA))?;
                    (
                        answer.data_bytes().map_err(field(DATA))?,
                        Some(answer.sdci_object().map_err(field(DATA))?),
                    )
                }
            };
            if crypto::sha256(&data) != sdi.data_digest {
                return Err(invalid(
                    DATA,
                    "the provider's data does not match the SDI's digest",
                ));
            }
            progress("the card verifies the SA (and certification), loads and checks the data");
            card.store(&sa, certified.as_ref(), &data)
                .map_err(card_step(CARD))?
        }
        Operation::Delete => {
            progress("the card verifies the SA and deletes");
            card.delete(&sa).map_err(card_step(CARD))?
        }
    };
    const RECEIPT: &str = "recording the card's receipt";
    let receipt = verify_receipt(&receipt_object, &card_identity.rc)
        .map_err(|e| invalid(RECEIPT, format!("the card's receipt: {e}")))?;
    let expected = match order.operation {
        Operation::Store => ReceiptResult::Stored,
        Operation::Delete => ReceiptResult::Deleted,
    };
    if receipt.result != expected || receipt.sdi_digest != sdi.digest() {
        return Err(invalid(
            RECEIPT,
            format!("the receipt is not for this SDI: {receipt:?}"),
        ));
    }
    progress("the receipt goes to the issuer and the provider (STO-7)");
    let at_issuer = parties
        .issuer
        .receipt(&receipt_object, Some(&sdi))
        .await
        .map_err(party_step(RECEIPT))?;
    let at_provider = parties
        .provider
        .receipt(&receipt_object, &card_identity.rc, &card_identity.irc)
        .await
        .map_err(party_step(RECEIPT))?;
    Ok(StoringOutcome {
        sdi,
        receipt,
        issuer_seq: at_issuer.seq,
        issuer_in_sync: at_issuer.in_sync,
        provider_seq: at_provider.seq,
    })
}

/// The card's contents and whether both parties' records agree with them (STO-7, REC-1).
#[derive(Debug, Clone)]
pub struct Comparison {
    pub card_id: CardId,
    pub listing: protocol::Listing,
    /// The issuer's reconciliation of its view with the signed listing.
    pub issuer_in_sync: bool,
    pub issuer_counter: u64,
    /// The provider's view equals the listed items it owns.
    pub provider_in_sync: bool,
    pub provider_items: usize,
}

impl Comparison {
    pub fn in_sync(&self) -> bool {
        self.issuer_in_sync && self.provider_in_sync
    }
}

/// Reads the card's signed listing and compares it with the issuer's and provider's records.
pub async fn compare<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
) -> Result<Comparison, FlowError> {
    const STEP: &str = "comparing the records with the card";
    let card_identity = identity(card)?;
    let card_id = card_identity.card_id;
    let SignedListing {
        object,
        listing,
        nonce,
    } = signed_listing(card, &card_identity, STEP)?;
    let reconciliation = parties
        .issuer
        .reconcile(&card_id, &object, &nonce)
        .await
        .map_err(party_step(STEP))?;
    let provider_view = parties
        .provider
        .contents(&card_id)
        .await
        .map_err(party_step(STEP));
    let (provider_in_sync, provider_items) = match provider_view {
        Ok(view) => {
            let mut theirs: Vec<(String, u32, String)> = view
                .items
                .iter()
                .map(|i| (i.item_id.clone(), i.version, i.data_digest.clone()))
                .collect();
            let mut ours: Vec<(String, u32, String)> = listing
                .contents
                .items()
                .iter()
                .filter(|i| i.owner == parties.provider_id)
                .map(|i| {
                    (
                        hex::encode(i.item_id.as_bytes()),
                        i.version,
                        hex::encode(i.data_digest.0),
                    )
                })
                .collect();
            theirs.sort();
            ours.sort();
            (theirs == ours, theirs.len())
        }
        // A provider that never saw a receipt for this card does not know it.
        Err(FlowError::Party { ref source, .. }) if source.code() == Some("unknown_card") => {
            let none_listed = !listing
                .contents
                .items()
                .iter()
                .any(|i| i.owner == parties.provider_id);
            (none_listed, 0)
        }
        Err(e) => return Err(e),
    };
    Ok(Comparison {
        card_id,
        listing,
        issuer_in_sync: reconciliation.in_sync,
        issuer_counter: reconciliation.issuer_counter,
        provider_in_sync,
        provider_items,
    })
}
