//! The provider's domain operations (docs/parties.md, "provider"), free of HTTP and SQL: the
//! catalog, the consents it signs (SA over an issuer's SAR on STO-1, its own SAR on STO-2, a
//! lone SA under an issuer's delegation on STO-3), data served plain or with an SDCI, and
//! card receipts turned into its per-card view and signed ledger (STO-7, REC-1).
//!
//! Every signed object from another party is verified the way the card verifies it: purpose,
//! the signer's chain `[IRC]` to the Issuer Registrar root at the provider's clock, the leaf
//! naming the party the body names, the signature, with the registrars' CRLs the provider was
//! given ([`Provider::set_crls`]; `registrar_crls.rs` fetches them from the registrars and
//! from the issuers, whose CRLs revoke their cards' RCs).

mod download;

use std::slice;
use std::sync::Arc;

use crypto::{Digest, SigningKey};
use pki::{CardId, Certificate, Crl, PartyId, PkiError, Role, UnixTime, VerifiedChain};
use protocol::{
    CertifiedData, Challenge, ConsentError, Delegation, DownloadError, ItemId, LedgerEntry,
    ListedItem, Operation, OperationId, PartyRole, Policy, ProtocolError, Purpose, ReceiptResult,
    Sa, SaBasis, Sar, Sdi, Signed, SignedObject,
};
use server_kit::{Clock, PartyTrust};

pub use download::{
    DownloadChoice, DownloadGrant, DownloadStatus, MemberNotice, NewService, RecordedMember,
    AID_LEN, DOWNLOAD_VALIDITY_S, MAX_TERMS_LEN,
};

use crate::issuer_link::{IssuerLink, LinkError, NoIssuers};
use crate::registrar_link::{DataRegistrarLink, RegistrarLinkError};
use crate::store::{
    ConsentKind, ConsentRecord, DelegationRecord, EntrySigner, ItemRecord, LedgerRecord,
    NewReceipt, PublishOutcome, ReceiptOutcome, RegistrarSdciRecord, Store, StoreError, ViewChange,
    ViewItem,
};

/// How long the authorizations this provider signs are valid, in seconds (SA, SAR).
pub const AUTHORIZATION_VALIDITY_S: u64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("item {item} {} is not in the catalog", version.map(|v| format!("version {v}")).unwrap_or_default())]
    UnknownItem { item: String, version: Option<u32> },

    #[error("item {item} version {version} is already published with other data or policy")]
    ItemVersionExists { item: String, version: u32 },

    #[error("the data is {len} bytes, more than an item can hold ({max})")]
    DataTooLarge { len: usize, max: u32 },

    #[error("expected a {expected:?} object, got {found:?}")]
    WrongPurpose { expected: Purpose, found: Purpose },

    #[error("the SDI does not match this provider's catalog: {detail}")]
    SdiMismatch { detail: String },

    #[error("the SAR was signed by a {found:?}; only an issuer's SAR can be granted here")]
    WrongRequesterRole { found: PartyRole },

    #[error("{caller} ({caller_role:?}) is not the SAR's requester {requester}: an issuer asks only for its own SARs")]
    CallerNotRequester {
        caller: PartyId,
        caller_role: PartyRole,
        requester: PartyId,
    },

    /// A signed object whose body cannot be read as the object it claims to be.
    #[error("{object} cannot be read: {source}")]
    Unreadable {
        object: &'static str,
        #[source]
        source: ProtocolError,
    },

    #[error("{object} is not trusted: {source}")]
    Untrusted {
        object: &'static str,
        #[source]
        source: Box<ConsentError>,
    },

    #[error("{object} is not valid now ({now}): issued at {issued_at}, not after {not_after}")]
    Expired {
        object: &'static str,
        issued_at: u64,
        not_after: u64,
        now: u64,
    },

    #[error("the SAR {sar_digest:?} was already granted: an SAR is single-use")]
    Replayed { sar_digest: Digest },

    #[error("the delegation does not cover this authorization: {detail}")]
    DelegationRefused { detail: String },

    #[error(
        "card {card} holds no authorization of this provider for item {item} version {version}"
    )]
    CardNotAuthorized {
        card: CardId,
        item: String,
        version: u32,
    },

    #[error("the registration certificate is not trusted: {source}")]
    UntrustedRc {
        #[source]
        source: PkiError,
    },

    #[error("the receipt does not verify: {source}")]
    InvalidReceipt {
        #[source]
        source: Box<ConsentError>,
    },

    #[error("card {card} has no authorization of this provider for the SDI {sdi_digest:?}")]
    UnknownAuthorization { card: CardId, sdi_digest: Digest },

    #[error("receipt counter {found} of card {card} is not above the last recorded, {last}")]
    CounterNotIncreasing { card: CardId, last: u64, found: u64 },

    #[error("card {card}'s receipts are recorded under another registration certificate")]
    RcMismatch { card: CardId },

    #[error("no receipt of card {card} was recorded here")]
    UnknownCard { card: CardId },

    #[error("no kept delegation covers item {item} on card {card}: {reasons}")]
    NoDelegation {
        card: CardId,
        item: String,
        reasons: String,
    },

    #[error("issuer {issuer} is not one this provider works with (configure it with --issuer)")]
    UnknownIssuer { issuer: PartyId },

    /// Asking the issuer for its SA failed (no answer, or its refusal).
    #[error(transparent)]
    IssuerCall(#[from] LinkError),

    /// The issuer answered with an SA that does not verify or does not answer our SAR.
    #[error("the SA issuer {issuer} answered with is refused: {reason}")]
    IssuerSaRefused { issuer: PartyId, reason: String },

    /// SDCI' asked for (`by=data-registrar`) but no data registrar is configured.
    #[error(
        "this provider has no data registrar to certify data (configure it with --data-registrar)"
    )]
    NoDataRegistrar,

    /// Asking the data registrar for an SDCI' failed (no answer, or its refusal).
    #[error(transparent)]
    RegistrarCall(#[from] RegistrarLinkError),

    /// The data registrar answered with an SDCI' a card would not accept for this SDI.
    #[error("the SDCI' data registrar {registrar} answered with is refused: {reason}")]
    RegistrarSdciRefused { registrar: PartyId, reason: String },

    // ---- adding an application over the Internet (service/download.rs) ----
    #[error("the terms are refused: {detail}")]
    InvalidTerms { detail: String },

    #[error("{}", match version { Some(v) => format!("terms version {v} is not published"), None => "no terms are published yet".to_string() })]
    UnknownTerms { version: Option<u32> },

    #[error("an AID is 5..=16 bytes, this one {len}")]
    InvalidAid { len: usize },

    #[error("service {service_id} exists with other content")]
    ServiceExists { service_id: String },

    #[error("issuer {issuer} has no usable application {aid} version {version}: {detail}")]
    UnknownApplication {
        issuer: PartyId,
        aid: String,
        version: u32,
        detail: String,
    },

    #[error("service {service_id} is not in the catalog")]
    UnknownService { service_id: String },

    #[error("no download operation {operation_id}")]
    UnknownOperation { operation_id: OperationId },

    #[error("download operation {operation_id} exists for another card, issuer, service or terms")]
    OperationConflict { operation_id: OperationId },

    #[error("card {card} is a member of service {service_id} already")]
    AlreadyMember { card: CardId, service_id: String },

    #[error("the terms are outdated: {detail}")]
    TermsOutdated { detail: String },

    #[error("{caller} ({caller_role:?}) is not the card's issuer {issuer} named in the operation")]
    CallerNotCardIssuer {
        caller: PartyId,
        caller_role: PartyRole,
        issuer: PartyId,
    },

    /// A service installs an application of one issuer's application DB: only that issuer's
    /// cards may download it.
    #[error("service {service_id} installs an application of {service_issuer}; this card's issuer is {card_issuer}")]
    IssuerMismatch {
        service_id: String,
        service_issuer: PartyId,
        card_issuer: PartyId,
    },

    #[error("download operation {operation_id} is closed: {reason}")]
    OperationClosed {
        operation_id: OperationId,
        reason: String,
    },

    #[error("the download application is refused: {source}")]
    InvalidDownloadApplication {
        #[source]
        source: DownloadError,
    },

    #[error("not download operation {operation_id}'s: {detail}")]
    OperationMismatch {
        operation_id: OperationId,
        detail: String,
    },

    #[error("the SAR names another registration certificate than card {card}'s RC sent along")]
    SarRcMismatch { card: CardId },

    #[error("the RC is issued by {found}, not by the operation's issuer {issuer}")]
    RcNotFromIssuer { issuer: PartyId, found: PartyId },

    #[error("the receipt is not download operation {operation_id}'s: {detail}")]
    ReceiptNotForOperation {
        operation_id: OperationId,
        detail: String,
    },

    /// The configured key, DPR and roots do not fit together.
    #[error("provider configuration: {detail}")]
    Configuration { detail: String },

    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The party that called, as party request authentication established it (SEC-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: PartyRole,
    pub party: PartyId,
}

/// STO-2's two consents: this provider's SAR and the issuer's SA over it (verified as the card
/// will), with the SA's last valid second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consents {
    pub sar: SignedObject,
    pub sa: SignedObject,
    pub not_after: UnixTime,
}

/// A consent this provider signed (SA or SAR) and its last valid second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub object: SignedObject,
    pub not_after: UnixTime,
}

/// A delegation this provider keeps for STO-3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelegation {
    /// SHA-256 of the signed delegation's DER.
    pub digest: Digest,
    pub delegation: Delegation,
    pub stored_at: UnixTime,
}

/// A kept delegation's signed object and body (verified when it was stored).
fn stored_delegation(
    record: &DelegationRecord,
) -> Result<(SignedObject, Delegation), ServiceError> {
    let corrupt = |e: ProtocolError| {
        ServiceError::Store(StoreError::Corrupt {
            what: "kept delegation",
            value: e.to_string(),
        })
    };
    let object = SignedObject::from_der(&record.delegation_der).map_err(corrupt)?;
    let delegation = object.body_unverified::<Delegation>().map_err(corrupt)?;
    Ok((object, delegation))
}

/// A receipt as recorded: its ledger entry, and whether this request recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedReceipt {
    pub entry: LedgerRecord,
    pub newly_recorded: bool,
}

/// The provider: its identity and keys, trust anchors, clock and store.
#[derive(Debug)]
pub struct Provider {
    store: Arc<dyn Store>,
    party_id: PartyId,
    key: SigningKey,
    dpr: Certificate,
    issuer_root: Certificate,
    data_root: Certificate,
    /// Whom the provider trusts for party signatures: the registrar roots, the registrars' CRLs
    /// (the one copy every chain check reads) and the clock; also what authenticates party
    /// requests to its API, with the provider's party ID as their audience.
    trust: PartyTrust,
    clock: Arc<dyn Clock>,
    /// The issuers this provider asks for SAs on STO-2.
    issuers: Arc<dyn IssuerLink>,
    /// The Data Registrar this provider asks for SDCI' (STO-5), if configured.
    data_registrar: Option<Arc<dyn DataRegistrarLink>>,
}

fn untrusted(object: &'static str) -> impl FnOnce(ConsentError) -> ServiceError {
    move |source| ServiceError::Untrusted {
        object,
        source: Box::new(source),
    }
}

fn item_hex(item: &ItemId) -> String {
    hex::encode(item.as_bytes())
}

impl Provider {
    /// The provider `party_id` with `key`, certified by `dpr` under the Data Registrar's
    /// `data_root`; checks that they fit together now (subject, role, key, chain).
    pub fn new(
        store: Arc<dyn Store>,
        party_id: PartyId,
        key: SigningKey,
        dpr: Certificate,
        issuer_root: Certificate,
        data_root: Certificate,
        clock: Arc<dyn Clock>,
    ) -> Result<Provider, ServiceError> {
        let bad = |detail: String| ServiceError::Configuration { detail };
        if dpr.subject_id() != &party_id {
            return Err(bad(format!(
                "the DPR certifies {}, not the configured party {party_id}",
                dpr.subject_id()
            )));
        }
        if dpr.public_key() != key.verifying_key() {
            return Err(bad(
                "the key file's key is not the one the DPR certifies".into()
            ));
        }
        pki::verify_chain(
            slice::from_ref(&dpr),
            slice::from_ref(&data_root),
            &[],
            clock.now(),
            Role::Provider,
        )
        .map_err(|e| {
            bad(format!(
                "the DPR does not verify under the Data Registrar root: {e}"
            ))
        })?;
        if issuer_root.role() != Role::IssuerRegistrar {
            return Err(bad(format!(
                "the issuer registrar root has role {:?}",
                issuer_root.role()
            )));
        }
        let trust = PartyTrust::new(
            party_id.clone(),
            issuer_root.clone(),
            data_root.clone(),
            clock.clone(),
        );
        Ok(Provider {
            store,
            party_id,
            key,
            dpr,
            issuer_root,
            data_root,
            trust,
            clock,
            issuers: Arc::new(NoIssuers),
            data_registrar: None,
        })
    }

    /// The same provider asking `issuers` for their SAs on STO-2 (without: no issuer is known).
    pub fn with_issuer_link(mut self, issuers: Arc<dyn IssuerLink>) -> Provider {
        self.issuers = issuers;
        self
    }

    /// The same provider asking `registrar` for SDCI' (STO-5; without: `by=data-registrar` is
    /// refused). The registrar must be the one whose root the provider holds: its SDCI' are
    /// checked under that root.
    pub fn with_data_registrar(
        mut self,
        registrar: Arc<dyn DataRegistrarLink>,
    ) -> Result<Provider, ServiceError> {
        if registrar.registrar() != self.data_root.subject_id() {
            return Err(ServiceError::Configuration {
                detail: format!(
                    "the data registrar {} is not the one whose root this provider holds ({})",
                    registrar.registrar(),
                    self.data_root.subject_id()
                ),
            });
        }
        self.data_registrar = Some(registrar);
        Ok(self)
    }

    /// Replaces the CRLs every chain check uses (IRCs in SARs and delegations, the IRC and RC
    /// of receipts, the chains of party requests). A CRL that claims a registrar as issuer and
    /// does not verify under it makes the checks against that registrar fail
    /// (pki::verify_chain), never silently pass.
    pub fn set_crls(&self, crls: Vec<Crl>) {
        self.trust.set_crls(crls);
    }

    pub fn crls(&self) -> Vec<Crl> {
        self.trust.crls()
    }

    /// Checks an issuer's IRC as every chain check here does: to the Issuer Registrar root at
    /// the provider's clock with the CRLs held (REG-3: the provider trusts an issuer's CRL of
    /// RCs only under an IRC it would trust the issuer's signatures under).
    pub fn check_irc(&self, irc: &Certificate) -> Result<VerifiedChain, PkiError> {
        pki::verify_chain(
            slice::from_ref(irc),
            slice::from_ref(&self.issuer_root),
            &self.crls(),
            self.clock.now(),
            Role::Issuer,
        )
    }

    /// What authenticates party requests to the provider (`server_kit::PartyRequest`):
    /// audience this provider, the registrar roots, the CRLs held, the provider's clock. Clones
    /// share the CRLs with the provider.
    pub fn party_trust(&self) -> &PartyTrust {
        &self.trust
    }

    pub fn party_id(&self) -> &PartyId {
        &self.party_id
    }

    pub fn dpr(&self) -> &Certificate {
        &self.dpr
    }

    pub fn data_root(&self) -> &Certificate {
        &self.data_root
    }

    pub fn issuer_root(&self) -> &Certificate {
        &self.issuer_root
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.dpr.der().to_vec()]
    }

    // ---- catalog ------------------------------------------------------------------------

    /// Publishes `data` as `item_id` version `version` with `policy`; size and digest are
    /// computed here. Idempotent for identical content.
    pub async fn publish(
        &self,
        item_id: ItemId,
        version: u32,
        data: &[u8],
        policy: Policy,
    ) -> Result<(ItemRecord, bool), ServiceError> {
        let size = u32::try_from(data.len()).map_err(|_| ServiceError::DataTooLarge {
            len: data.len(),
            max: u32::MAX,
        })?;
        let record = ItemRecord {
            item_id,
            version,
            size,
            data_digest: crypto::sha256(data),
            policy,
            published_at: self.clock.now(),
        };
        match self.store.publish_item(&record, data).await? {
            PublishOutcome::Published => Ok((record, true)),
            PublishOutcome::AlreadyPublished { existing } => Ok((existing, false)),
            PublishOutcome::Conflict { existing } => Err(ServiceError::ItemVersionExists {
                item: item_hex(&existing.item_id),
                version: existing.version,
            }),
        }
    }

    pub async fn items(&self) -> Result<Vec<ItemRecord>, ServiceError> {
        Ok(self.store.items().await?)
    }

    /// One version of an item, or its latest.
    pub async fn item(
        &self,
        item_id: &ItemId,
        version: Option<u32>,
    ) -> Result<ItemRecord, ServiceError> {
        self.store
            .item(item_id, version)
            .await?
            .ok_or_else(|| ServiceError::UnknownItem {
                item: item_hex(item_id),
                version,
            })
    }

    /// The data of an item version (latest if `None`) for a card this provider consented to
    /// store it on.
    pub async fn data(
        &self,
        card: CardId,
        item_id: &ItemId,
        version: Option<u32>,
    ) -> Result<(ItemRecord, Vec<u8>), ServiceError> {
        let item = self.item(item_id, version).await?;
        self.require_consent(card, &item).await?;
        let data = self.item_bytes(&item).await?;
        Ok((item, data))
    }

    /// The data the SDI describes with an SDCI over that SDI (STO-4), for a card this provider
    /// consented to store it on. The SDI must name `card`, `item_id` and this provider, be a
    /// store, and match the catalog.
    pub async fn certified(
        &self,
        card: CardId,
        item_id: &ItemId,
        sdi: &Sdi,
    ) -> Result<(ItemRecord, Vec<u8>, SignedObject), ServiceError> {
        let (item, data) = self.certifiable(card, item_id, sdi).await?;
        let sdci = CertifiedData::for_sdi(sdi).sign(&self.key, self.chain());
        Ok((item, data, sdci))
    }

    /// Like [`Provider::certified`] with the Data Registrar's SDCI' (STO-5) instead of the
    /// provider's own: the one kept for this SDI if it still verifies, else one asked of the
    /// registrar now, verified as a card holding the registrar's root will verify it, and kept.
    pub async fn certified_by_registrar(
        &self,
        card: CardId,
        item_id: &ItemId,
        sdi: &Sdi,
    ) -> Result<(ItemRecord, Vec<u8>, SignedObject), ServiceError> {
        let registrar = self
            .data_registrar
            .as_ref()
            .ok_or(ServiceError::NoDataRegistrar)?;
        let (item, data) = self.certifiable(card, item_id, sdi).await?;
        let sdi_digest = sdi.digest();
        if let Some(kept) = self.store.registrar_sdci(&sdi_digest).await? {
            // A kept one that no longer verifies (the root expired or was replaced) is not
            // served: a fresh one replaces it.
            if let Ok(sdci) = SignedObject::from_der(&kept.sdci_der) {
                if self.check_registrar_sdci(&sdci, sdi).is_ok() {
                    return Ok((item, data, sdci));
                }
            }
        }
        let now = self.clock.now();
        let sdci = registrar.certify(sdi, &data, now).await?;
        self.check_registrar_sdci(&sdci, sdi).map_err(|reason| {
            ServiceError::RegistrarSdciRefused {
                registrar: registrar.registrar().clone(),
                reason,
            }
        })?;
        self.store
            .put_registrar_sdci(&RegistrarSdciRecord {
                sdi_digest,
                registrar: registrar.registrar().clone(),
                sdci_der: sdci.to_der(),
                obtained_at: now,
            })
            .await?;
        Ok((item, data, sdci))
    }

    /// The checks before data is served certified: the SDI names `card`, `item_id` and this
    /// provider, is a store, matches the catalog, and the provider consented to the card
    /// holding that item version. Returns the item and its data.
    async fn certifiable(
        &self,
        card: CardId,
        item_id: &ItemId,
        sdi: &Sdi,
    ) -> Result<(ItemRecord, Vec<u8>), ServiceError> {
        if sdi.card_id != card {
            return Err(ServiceError::SdiMismatch {
                detail: format!("the SDI is for card {}, not {card}", sdi.card_id),
            });
        }
        if &sdi.item_id != item_id {
            return Err(ServiceError::SdiMismatch {
                detail: format!(
                    "the SDI is for item {}, not {}",
                    item_hex(&sdi.item_id),
                    item_hex(item_id)
                ),
            });
        }
        if sdi.operation != Operation::Store {
            return Err(ServiceError::SdiMismatch {
                detail: "only a store's data is certified".into(),
            });
        }
        let item = self.check_sdi(sdi).await?;
        self.require_consent(card, &item).await?;
        let data = self.item_bytes(&item).await?;
        Ok((item, data))
    }

    /// Whether `sdci` is an SDCI' a card holding the Data Registrar root this provider holds
    /// accepts for `sdi` (as `protocol::verify_certified_data` checks it): purpose
    /// `RegistrarCertifiedData`, no chain or the root itself, the root valid now under the
    /// CRLs held, signed by the root's key, over this SDI's digest and its data digest. (The
    /// SDI's data digest is the catalog's: `check_sdi`.)
    fn check_registrar_sdci(&self, sdci: &SignedObject, sdi: &Sdi) -> Result<(), String> {
        match sdci.signer_chain() {
            [] => {}
            [root] if root.as_slice() == self.data_root.der() => {}
            _ => return Err("its signer chain is not the Data Registrar root".into()),
        }
        pki::verify_chain(
            slice::from_ref(&self.data_root),
            slice::from_ref(&self.data_root),
            &self.trust.crls(),
            self.clock.now(),
            Role::DataRegistrar,
        )
        .map_err(|e| format!("the Data Registrar root is not valid: {e}"))?;
        let body = sdci
            .verify(
                &self.data_root.public_key(),
                Purpose::RegistrarCertifiedData,
            )
            .map_err(|e| e.to_string())
            .and_then(|der| CertifiedData::from_der(der).map_err(|e| e.to_string()))?;
        let sdi_digest = sdi.digest();
        if body.sdi_digest != sdi_digest {
            return Err(format!(
                "it certifies the SDI {:?}, not {sdi_digest:?}",
                body.sdi_digest
            ));
        }
        if body.data_digest != sdi.data_digest {
            return Err(format!(
                "it certifies data {:?}, not {:?}",
                body.data_digest, sdi.data_digest
            ));
        }
        Ok(())
    }

    async fn item_bytes(&self, item: &ItemRecord) -> Result<Vec<u8>, ServiceError> {
        self.store
            .item_data(&item.item_id, item.version)
            .await?
            .ok_or_else(|| ServiceError::UnknownItem {
                item: item_hex(&item.item_id),
                version: Some(item.version),
            })
    }

    async fn require_consent(&self, card: CardId, item: &ItemRecord) -> Result<(), ServiceError> {
        if self
            .store
            .has_consent_for_item(&card, &item.item_id, item.version)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::CardNotAuthorized {
                card,
                item: item_hex(&item.item_id),
                version: item.version,
            })
        }
    }

    /// The SDI is this provider's, for an item version in the catalog, with its size, digest
    /// and policy.
    async fn check_sdi(&self, sdi: &Sdi) -> Result<ItemRecord, ServiceError> {
        let mismatch = |detail: String| ServiceError::SdiMismatch { detail };
        if sdi.owner != self.party_id {
            return Err(mismatch(format!(
                "the owner is {}, not this provider ({})",
                sdi.owner, self.party_id
            )));
        }
        let item = self
            .store
            .item(&sdi.item_id, Some(sdi.version))
            .await?
            .ok_or_else(|| {
                mismatch(format!(
                    "item {} version {} is not in the catalog",
                    item_hex(&sdi.item_id),
                    sdi.version
                ))
            })?;
        if sdi.size != item.size {
            return Err(mismatch(format!(
                "size {} but the catalog says {}",
                sdi.size, item.size
            )));
        }
        if sdi.data_digest != item.data_digest {
            return Err(mismatch(format!(
                "data digest {:?} but the catalog says {:?}",
                sdi.data_digest, item.data_digest
            )));
        }
        if sdi.policy != item.policy {
            return Err(mismatch(format!(
                "policy {:?} but the catalog says {:?}",
                sdi.policy, item.policy
            )));
        }
        Ok(item)
    }

    // ---- consents -----------------------------------------------------------------------

    /// Opens a `T` signed by an issuer (chain `[IRC]`) as the card would: purpose, chain to the
    /// Issuer Registrar root at `now`, the leaf is the issuer the body names, signature.
    fn open_issuer_signed<T: Signed>(
        &self,
        object: &SignedObject,
        name: &'static str,
        issuer_of: impl FnOnce(&T) -> PartyId,
        now: UnixTime,
    ) -> Result<(T, VerifiedChain), ServiceError> {
        if object.purpose() != T::PURPOSE {
            return Err(ServiceError::WrongPurpose {
                expected: T::PURPOSE,
                found: object.purpose(),
            });
        }
        let claimed: T = object
            .body_unverified()
            .map_err(|source| ServiceError::Unreadable {
                object: name,
                source,
            })?;
        let claimed_issuer = issuer_of(&claimed);
        if object.signer_chain().is_empty() {
            return Err(untrusted(name)(ConsentError::MissingChain { object: name }));
        }
        let certificate = |source| ConsentError::Certificate {
            object: name,
            source,
        };
        let chain = object
            .signer_chain()
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| untrusted(name)(certificate(e)))?;
        let verified = pki::verify_chain(
            &chain,
            slice::from_ref(&self.issuer_root),
            &self.crls(),
            now,
            Role::Issuer,
        )
        .map_err(|e| untrusted(name)(certificate(e)))?;
        if verified.leaf_subject != claimed_issuer {
            return Err(untrusted(name)(ConsentError::WrongSigner {
                object: name,
                expected: claimed_issuer,
                found: verified.leaf_subject,
            }));
        }
        let body = object
            .open::<T>(&verified.leaf_key)
            .map_err(|e| untrusted(name)(e.into()))?;
        Ok((body, verified))
    }

    fn check_validity(
        object: &'static str,
        issued_at: UnixTime,
        not_after: UnixTime,
        now: UnixTime,
    ) -> Result<(), ServiceError> {
        if issued_at > not_after || not_after < now {
            return Err(ServiceError::Expired {
                object,
                issued_at: issued_at.0,
                not_after: not_after.0,
                now: now.0,
            });
        }
        Ok(())
    }

    fn not_after(now: UnixTime) -> UnixTime {
        UnixTime(now.0.saturating_add(AUTHORIZATION_VALIDITY_S))
    }

    async fn record_consent(
        &self,
        kind: ConsentKind,
        consent_digest: Digest,
        sdi: &Sdi,
        signed: &SignedObject,
        now: UnixTime,
    ) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .insert_consent(&ConsentRecord {
                consent_digest,
                kind,
                card_id: sdi.card_id,
                item_id: sdi.item_id.clone(),
                version: sdi.version,
                sdi_digest: sdi.digest(),
                sdi_der: sdi.to_der(),
                signed_der: signed.to_der(),
                created_at: now,
            })
            .await?)
    }

    /// STO-1, grant side: the SA over an issuer's SAR for one of this provider's items, asked
    /// by `caller`, which must be the issuer that signed the SAR. Single-use: a SAR is granted
    /// once (409 on a replay, across instances).
    pub async fn grant(
        &self,
        sar_object: &SignedObject,
        caller: &Caller,
    ) -> Result<Authorization, ServiceError> {
        let now = self.clock.now();
        // A provider's SAR is answered by the issuer, never here: say so before trying its
        // chain against the Issuer Registrar (nothing is granted on the unverified claim).
        if let Ok(claimed) = sar_object.body_unverified::<Sar>() {
            if claimed.requester_role != PartyRole::Issuer {
                return Err(ServiceError::WrongRequesterRole {
                    found: claimed.requester_role,
                });
            }
        }
        let (sar, _) =
            self.open_issuer_signed::<Sar>(sar_object, "Sar", |sar| sar.requester.clone(), now)?;
        if sar.requester_role != PartyRole::Issuer {
            return Err(ServiceError::WrongRequesterRole {
                found: sar.requester_role,
            });
        }
        // The verified leaf is the requester: only that issuer may ask for this SAR's SA.
        if caller.role != PartyRole::Issuer || caller.party != sar.requester {
            return Err(ServiceError::CallerNotRequester {
                caller: caller.party.clone(),
                caller_role: caller.role,
                requester: sar.requester,
            });
        }
        Self::check_validity("Sar", sar.issued_at, sar.not_after, now)?;
        self.check_sdi(&sar.sdi).await?;
        let not_after = Self::not_after(now);
        let sa = Sa::new(
            SaBasis::Request(sar_object.clone()),
            PartyRole::Provider,
            self.party_id.clone(),
            sar.sdi.clone(),
            sar.challenge,
            now,
            not_after,
        )
        .sign(&self.key, self.chain());
        let sar_digest = sar_object.digest();
        if !self
            .record_consent(ConsentKind::Grant, sar_digest, &sar.sdi, &sa, now)
            .await?
        {
            return Err(ServiceError::Replayed { sar_digest });
        }
        Ok(Authorization {
            object: sa,
            not_after,
        })
    }

    /// STO-2: this provider's SAR for `sdi` on `card_id` (whose RC has digest `rc_digest`),
    /// answering the card's `challenge`, sent to the card's `issuer` (one this provider was
    /// configured with) for its SA, which must verify as the card will verify it: chain `[IRC]`
    /// to the Issuer Registrar root with the CRLs held, signed by that issuer, over exactly this
    /// SAR, unexpired. The consent is recorded only once the SA is in hand.
    pub async fn request(
        &self,
        card_id: CardId,
        rc_digest: Digest,
        sdi: &Sdi,
        challenge: Challenge,
        issuer: &PartyId,
    ) -> Result<Consents, ServiceError> {
        let now = self.clock.now();
        if !self.issuers.knows(issuer) {
            return Err(ServiceError::UnknownIssuer {
                issuer: issuer.clone(),
            });
        }
        if sdi.card_id != card_id {
            return Err(ServiceError::SdiMismatch {
                detail: format!("the SDI is for card {}, not {card_id}", sdi.card_id),
            });
        }
        self.check_sdi(sdi).await?;
        let sar = Sar {
            requester_role: PartyRole::Provider,
            requester: self.party_id.clone(),
            rc_digest,
            sdi: sdi.clone(),
            challenge,
            issued_at: now,
            not_after: Self::not_after(now),
        }
        .sign(&self.key, self.chain());
        let sa_object = self.issuers.grant(issuer, &sar, now).await?;
        let sa = self.verify_issuer_sa(&sa_object, issuer, &sar, sdi, challenge, now)?;
        // Signatures are deterministic: the same request at the same second is the same SAR;
        // its consent is already recorded then (the issuer would have refused the replay).
        self.record_consent(ConsentKind::Request, sar.digest(), sdi, &sar, now)
            .await?;
        Ok(Consents {
            sar,
            sa: sa_object,
            not_after: sa.not_after,
        })
    }

    /// The issuer's SA over our `sar`, checked as the card will check it.
    fn verify_issuer_sa(
        &self,
        sa_object: &SignedObject,
        issuer: &PartyId,
        sar: &SignedObject,
        sdi: &Sdi,
        challenge: Challenge,
        now: UnixTime,
    ) -> Result<Sa, ServiceError> {
        let refused = |reason: String| ServiceError::IssuerSaRefused {
            issuer: issuer.clone(),
            reason,
        };
        let (sa, _) = self
            .open_issuer_signed::<Sa>(sa_object, "Sa", |sa| sa.grantor.clone(), now)
            .map_err(|e| refused(e.to_string()))?;
        if sa.grantor_role != PartyRole::Issuer {
            return Err(refused(format!("it is granted as a {:?}", sa.grantor_role)));
        }
        if &sa.grantor != issuer {
            return Err(refused(format!(
                "it is signed by {}, not by {issuer}",
                sa.grantor
            )));
        }
        if !matches!(&sa.basis, SaBasis::Request(basis) if basis == sar) {
            return Err(refused("it does not rest on the SAR just signed".into()));
        }
        if &sa.sdi != sdi || sa.sdi_digest != sdi.digest() || sa.card_id != sdi.card_id {
            return Err(refused("its SDI is not the SAR's".into()));
        }
        if sa.challenge != challenge {
            return Err(refused("it answers another challenge".into()));
        }
        Self::check_validity("Sa", sa.issued_at, sa.not_after, now)
            .map_err(|e| refused(e.to_string()))?;
        Ok(sa)
    }

    /// A delegation an issuer signed for this provider, checked as the card will check it
    /// apart from what it covers: chain `[IRC]` to the Issuer Registrar root with the CRLs
    /// held, names this provider, pins its DPR's digest, valid at `now`.
    fn check_delegation(
        &self,
        delegation_object: &SignedObject,
        now: UnixTime,
    ) -> Result<Delegation, ServiceError> {
        let (delegation, _) = self.open_issuer_signed::<Delegation>(
            delegation_object,
            "Delegation",
            |d| d.issuer.clone(),
            now,
        )?;
        let refused = |detail: String| ServiceError::DelegationRefused { detail };
        if delegation.provider != self.party_id {
            return Err(refused(format!(
                "it delegates to {}, not to this provider",
                delegation.provider
            )));
        }
        if delegation.provider_key_digest != self.dpr.digest() {
            return Err(refused("it pins another DPR than this provider's".into()));
        }
        Self::check_validity(
            "Delegation",
            delegation.issued_at,
            delegation.not_after,
            now,
        )?;
        Ok(delegation)
    }

    /// Whether `delegation` covers `sdi`: the operation, the item ID under its prefix, the
    /// size, the card.
    fn check_covers(delegation: &Delegation, sdi: &Sdi) -> Result<(), ServiceError> {
        let refused = |detail: String| ServiceError::DelegationRefused { detail };
        if !delegation.operations.contains(sdi.operation) {
            return Err(refused(format!("{:?} is not delegated", sdi.operation)));
        }
        if !sdi.item_id.starts_with(&delegation.item_prefix) {
            return Err(refused(format!(
                "item {} is outside the prefix {}",
                item_hex(&sdi.item_id),
                hex::encode(delegation.item_prefix.as_bytes())
            )));
        }
        if sdi.size > delegation.max_item_size {
            return Err(refused(format!(
                "size {} exceeds the delegated {}",
                sdi.size, delegation.max_item_size
            )));
        }
        if let Some(card) = delegation.card_id {
            if card != sdi.card_id {
                return Err(refused(format!(
                    "it is for card {card}, not {}",
                    sdi.card_id
                )));
            }
        }
        Ok(())
    }

    /// Keeps an issuer's delegation for STO-3 after checking it ([`Provider::check_delegation`]);
    /// `false` when it was kept already.
    pub async fn add_delegation(
        &self,
        delegation_object: &SignedObject,
    ) -> Result<(StoredDelegation, bool), ServiceError> {
        let now = self.clock.now();
        let delegation = self.check_delegation(delegation_object, now)?;
        let record = DelegationRecord {
            digest: delegation_object.digest(),
            issuer: delegation.issuer.clone(),
            card_id: delegation.card_id,
            not_after: delegation.not_after,
            delegation_der: delegation_object.to_der(),
            stored_at: now,
        };
        let new = self.store.insert_delegation(&record).await?;
        Ok((
            StoredDelegation {
                digest: record.digest,
                delegation,
                stored_at: now,
            },
            new,
        ))
    }

    /// Every delegation kept, by the time it was stored (expired ones too: they are history).
    pub async fn delegations(&self) -> Result<Vec<StoredDelegation>, ServiceError> {
        self.store
            .delegations()
            .await?
            .into_iter()
            .map(|record| {
                let (_, delegation) = stored_delegation(&record)?;
                Ok(StoredDelegation {
                    digest: record.digest,
                    delegation,
                    stored_at: record.stored_at,
                })
            })
            .collect()
    }

    /// A kept delegation that covers `sdi` now and still verifies (an IRC revoked since it was
    /// kept disqualifies it): one naming the card first, then the longest-lived. When a
    /// receipt of the card was recorded, only its RC's issuer's delegations count (a card
    /// accepts only its own issuer's).
    async fn kept_delegation_for(
        &self,
        sdi: &Sdi,
        now: UnixTime,
    ) -> Result<SignedObject, ServiceError> {
        let card_issuer = match self.store.card_rc(&sdi.card_id).await? {
            Some(der) => Certificate::from_der(&der)
                .map(|rc| Some(rc.issuer_id().clone()))
                .map_err(|e| {
                    ServiceError::Store(StoreError::Corrupt {
                        what: "card RC",
                        value: e.to_string(),
                    })
                })?,
            None => None,
        };
        let candidates = self.store.delegations_for_card(&sdi.card_id, now).await?;
        let mut reasons = Vec::new();
        for record in &candidates {
            if card_issuer.as_ref().is_some_and(|i| i != &record.issuer) {
                continue;
            }
            let (object, _) = stored_delegation(record)?;
            let usable = self
                .check_delegation(&object, now)
                .and_then(|d| Self::check_covers(&d, sdi));
            match usable {
                Ok(()) => return Ok(object),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Err(ServiceError::NoDelegation {
            card: sdi.card_id,
            item: item_hex(&sdi.item_id),
            reasons: if reasons.is_empty() {
                "none is kept for this card".into()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// STO-3: the lone SA for `sdi` under an issuer's delegation: the one given, or else a
    /// kept one that covers it (403 `no_delegation` if none). The delegation must name this
    /// provider and its DPR, allow the operation, cover the item ID and size and the card, and
    /// be valid now.
    pub async fn alone(
        &self,
        delegation_object: Option<&SignedObject>,
        sdi: &Sdi,
        challenge: Challenge,
    ) -> Result<Authorization, ServiceError> {
        let now = self.clock.now();
        let delegation_object = match delegation_object {
            Some(object) => {
                let delegation = self.check_delegation(object, now)?;
                Self::check_covers(&delegation, sdi)?;
                object.clone()
            }
            None => self.kept_delegation_for(sdi, now).await?,
        };
        self.check_sdi(sdi).await?;
        let not_after = Self::not_after(now);
        let sa = Sa::new(
            SaBasis::Delegation(delegation_object),
            PartyRole::Provider,
            self.party_id.clone(),
            sdi.clone(),
            challenge,
            now,
            not_after,
        )
        .sign(&self.key, self.chain());
        self.record_consent(ConsentKind::Alone, sa.digest(), sdi, &sa, now)
            .await?;
        Ok(Authorization {
            object: sa,
            not_after,
        })
    }

    // ---- receipts and records -----------------------------------------------------------

    /// A card's RC: chains through `irc` to the Issuer Registrar root at `now` with the CRLs
    /// held (the issuer's CRL of RCs included).
    fn check_rc(
        &self,
        rc: &Certificate,
        irc: &Certificate,
        now: UnixTime,
    ) -> Result<(), ServiceError> {
        pki::verify_chain(
            &[rc.clone(), irc.clone()],
            slice::from_ref(&self.issuer_root),
            &self.crls(),
            now,
            Role::Card,
        )
        .map(|_| ())
        .map_err(|source| ServiceError::UntrustedRc { source })
    }

    /// STO-7, REC-1: verifies a card receipt under its RC (which must chain through `irc` to
    /// the Issuer Registrar root now), matches it to an SDI this provider consented to for the
    /// card, and records it: counter strictly above the last, view updated, ledger entry
    /// appended, in one transaction. A repeated receipt returns its entry unchanged.
    pub async fn record_receipt(
        &self,
        receipt_object: &SignedObject,
        rc: &Certificate,
        irc: &Certificate,
    ) -> Result<RecordedReceipt, ServiceError> {
        let now = self.clock.now();
        self.check_rc(rc, irc, now)?;
        let receipt = protocol::verify_receipt(receipt_object, rc).map_err(|source| {
            ServiceError::InvalidReceipt {
                source: Box::new(source),
            }
        })?;
        let card = receipt.card_id;
        let consent = self
            .store
            .consent_for_sdi(&card, &receipt.sdi_digest)
            .await?
            .ok_or(ServiceError::UnknownAuthorization {
                card,
                sdi_digest: receipt.sdi_digest,
            })?;
        let sdi = Sdi::from_der(&consent.sdi_der).map_err(|e| {
            ServiceError::Store(StoreError::Corrupt {
                what: "consent SDI",
                value: e.to_string(),
            })
        })?;
        if sdi.item_id != receipt.item_id || sdi.operation != receipt.operation {
            return Err(ServiceError::InvalidReceipt {
                source: Box::new(ConsentError::SdiDigestMismatch {
                    object: "Receipt",
                    declared: receipt.sdi_digest,
                    computed: sdi.digest(),
                }),
            });
        }
        let change = match receipt.result {
            ReceiptResult::Stored => ViewChange::Stored(ViewItem {
                item_id: sdi.item_id.clone(),
                version: sdi.version,
                size: sdi.size,
                data_digest: sdi.data_digest,
                policy: sdi.policy,
            }),
            ReceiptResult::Deleted => ViewChange::Deleted(sdi.item_id.clone()),
        };
        let signer = LedgerSigning {
            key: &self.key,
            party: &self.party_id,
            card,
            receipt: receipt_object,
            now,
        };
        let outcome = self
            .store
            .record_receipt(
                &NewReceipt {
                    card_id: card,
                    rc_der: rc.der().to_vec(),
                    receipt_der: receipt_object.to_der(),
                    counter: receipt.counter,
                    change,
                    recorded_at: now,
                },
                &signer,
            )
            .await?;
        match outcome {
            ReceiptOutcome::Recorded(entry) => Ok(RecordedReceipt {
                entry,
                newly_recorded: true,
            }),
            ReceiptOutcome::Repeated(entry) => Ok(RecordedReceipt {
                entry,
                newly_recorded: false,
            }),
            ReceiptOutcome::CounterNotIncreasing { last } => {
                Err(ServiceError::CounterNotIncreasing {
                    card,
                    last,
                    found: receipt.counter,
                })
            }
            ReceiptOutcome::RcMismatch => Err(ServiceError::RcMismatch { card }),
        }
    }

    /// The provider's view of `card`: its items there.
    pub async fn contents(&self, card: CardId) -> Result<Vec<ViewItem>, ServiceError> {
        if self.store.card_rc(&card).await?.is_none() {
            return Err(ServiceError::UnknownCard { card });
        }
        Ok(self.store.contents(&card).await?)
    }

    /// The card's RC DER and its ledger.
    pub async fn ledger(&self, card: CardId) -> Result<(Vec<u8>, Vec<LedgerRecord>), ServiceError> {
        let rc = self
            .store
            .card_rc(&card)
            .await?
            .ok_or(ServiceError::UnknownCard { card })?;
        Ok((rc, self.store.ledger(&card).await?))
    }

    /// Cards holding `item_id` in this provider's view.
    pub async fn members(&self, item_id: &ItemId) -> Result<Vec<(CardId, u32)>, ServiceError> {
        Ok(self.store.members(item_id).await?)
    }

    /// The digest a ledger entry carries for `view`: the [`protocol::ListingBody`] digest of
    /// this provider's items with capacity and free space 0 (the provider does not know the
    /// card's), so it is this provider's claim, not comparable with the card's own digest.
    pub fn view_digest(&self, view: &[ViewItem]) -> Result<Digest, ServiceError> {
        view_digest(&self.party_id, view)
            .map_err(|reason| ServiceError::Store(StoreError::EntrySigning { seq: 0, reason }))
    }
}

fn view_digest(party: &PartyId, view: &[ViewItem]) -> Result<Digest, String> {
    let items: Vec<ListedItem> = view
        .iter()
        .map(|v| ListedItem {
            item_id: v.item_id.clone(),
            version: v.version,
            size: v.size,
            data_digest: v.data_digest,
            owner: party.clone(),
            policy: v.policy,
        })
        .collect();
    protocol::listing_digest(&items, 0, 0).map_err(|e| e.to_string())
}

/// Signs one ledger entry inside the receipt's transaction.
struct LedgerSigning<'a> {
    key: &'a SigningKey,
    party: &'a PartyId,
    card: CardId,
    receipt: &'a SignedObject,
    now: UnixTime,
}

impl EntrySigner for LedgerSigning<'_> {
    fn sign(&self, seq: u64, prev: Digest, view: &[ViewItem]) -> Result<Vec<u8>, StoreError> {
        let view_digest = view_digest(self.party, view)
            .map_err(|reason| StoreError::EntrySigning { seq, reason })?;
        Ok(LedgerEntry {
            party: self.party.clone(),
            card_id: self.card,
            seq,
            prev,
            receipt: self.receipt.clone(),
            view_digest,
            recorded_at: self.now,
        }
        .sign(self.key)
        .to_der())
    }
}
