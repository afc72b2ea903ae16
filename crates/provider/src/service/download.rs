//! Adding an application over the Internet, the provider's part (docs/app-download.md §1 S4–S6,
//! S11, S15–S16; §3 "Provider"; §4): membership terms, the services catalog (APP-2), download
//! operations keyed by the terminal's operation ID, the download grant the card's issuer asks
//! for, and the member notification that makes the card's holder a member. Free of HTTP and
//! SQL like the rest of the service.
//!
//! The provider believes the card, not the issuer's word: the grant checks the card-signed
//! download application under the card's RC (which must chain through the issuer's IRC to the
//! Issuer Registrar root with the CRLs held, REG-3), holding exactly the request this provider
//! gave out; the member notification carries the application and the card's receipt, which
//! must name an SA granted here for that operation.

use crypto::Digest;
use pki::{CardId, Certificate, PartyId, UnixTime};
use protocol::{
    verify_download_application, DownloadApplication, DownloadError, DownloadRequest,
    ExpectedDownload, ItemId, Operation, OperationId, PartyRole, ReceiptResult, Sa, SaBasis, Sar,
    Sdi, ServiceId, SignedObject,
};

use super::{Caller, LedgerSigning, Provider, ServiceError};
use crate::issuer_link::LinkError;
use crate::store::{
    ConsentKind, ConsentRecord, DownloadGrantRecord, DownloadRecord, DownloadStage, GrantOutcome,
    MemberOutcome, MemberRecord, MemberUserRecord, NewDownloadGrant, NewReceipt, OpenOutcome,
    ReceiptOutcome, ServiceOutcome, ServiceRecord, StoreError, TermsOutcome, TermsRecord,
    ViewChange, ViewItem,
};

/// How long a `DownloadRequest` (and so the card-signed application) is valid, in seconds.
pub const DOWNLOAD_VALIDITY_S: u64 = 1800;

/// The longest membership terms text accepted, in bytes.
pub const MAX_TERMS_LEN: usize = 64 * 1024;

/// An application ID's length in bytes (ISO 7816-5 AID).
pub const AID_LEN: std::ops::RangeInclusive<usize> = 5..=16;

/// What an operator asks for on `POST /v1/services`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    pub service_id: ServiceId,
    pub name: String,
    pub description: String,
    pub aid: ItemId,
    pub version: u32,
    pub issuer: PartyId,
}

/// What the terminal sends on `PUT /v1/downloads/{op}` (S5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadChoice {
    pub card_id: CardId,
    pub issuer: PartyId,
    pub service_id: ServiceId,
    pub terms_digest: Digest,
}

/// A provider download operation and, once recorded, when its member joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadStatus {
    pub download: DownloadRecord,
    pub member_since: Option<UnixTime>,
}

/// The SA granted on a download operation; `new` is false when it was granted before (the
/// same SAR again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadGrant {
    pub sa: SignedObject,
    pub not_after: UnixTime,
    pub new: bool,
}

/// The member notification (S15), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberNotice {
    pub operation_id: OperationId,
    pub card_id: CardId,
    pub service_id: ServiceId,
    pub user: MemberUserRecord,
    pub download_application: SignedObject,
    pub receipt: SignedObject,
    pub rc: Certificate,
    pub irc: Certificate,
}

/// A member as recorded; `newly_recorded` is false on a repeated notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMember {
    pub member: MemberRecord,
    pub newly_recorded: bool,
}

fn corrupt(what: &'static str) -> impl FnOnce(String) -> ServiceError {
    move |value| ServiceError::Store(StoreError::Corrupt { what, value })
}

fn refused_application(source: DownloadError) -> ServiceError {
    ServiceError::InvalidDownloadApplication { source }
}

impl Provider {
    // ---- terms --------------------------------------------------------------------------

    /// Publishes `text` as the next version of the membership terms (older versions are kept:
    /// a download binds one by digest); `false` when the latest version has this text already.
    pub async fn publish_terms(&self, text: &str) -> Result<(TermsRecord, bool), ServiceError> {
        if text.trim().is_empty() {
            return Err(ServiceError::InvalidTerms {
                detail: "the text is empty".into(),
            });
        }
        if text.len() > MAX_TERMS_LEN {
            return Err(ServiceError::InvalidTerms {
                detail: format!("the text is {} bytes, at most {MAX_TERMS_LEN}", text.len()),
            });
        }
        let digest = crypto::sha256(text.as_bytes());
        match self
            .store
            .publish_terms(text, &digest, self.clock.now())
            .await?
        {
            TermsOutcome::Published(terms) => Ok((terms, true)),
            TermsOutcome::Unchanged(terms) => Ok((terms, false)),
        }
    }

    /// One version of the terms, or the latest.
    pub async fn terms(&self, version: Option<u32>) -> Result<TermsRecord, ServiceError> {
        self.store
            .terms(version)
            .await?
            .ok_or(ServiceError::UnknownTerms { version })
    }

    // ---- services (APP-2) ---------------------------------------------------------------

    /// Adds a service for the application `aid` version `version` of `issuer`'s application
    /// DB, pinning its size, digest and policy as the issuer describes it (which must name
    /// this provider as its owner). The same service again answers it as it is (`false`),
    /// without asking the issuer; another with its ID is refused.
    pub async fn add_service(
        &self,
        new: &NewService,
    ) -> Result<(ServiceRecord, bool), ServiceError> {
        if !AID_LEN.contains(&new.aid.as_bytes().len()) {
            return Err(ServiceError::InvalidAid {
                len: new.aid.as_bytes().len(),
            });
        }
        if let Some(existing) = self.store.service(&new.service_id).await? {
            return Self::same_service(existing, new).map(|s| (s, false));
        }
        if !self.issuers.knows(&new.issuer) {
            return Err(ServiceError::UnknownIssuer {
                issuer: new.issuer.clone(),
            });
        }
        let unknown = |detail: String| ServiceError::UnknownApplication {
            issuer: new.issuer.clone(),
            aid: hex::encode(new.aid.as_bytes()),
            version: new.version,
            detail,
        };
        let application = match self
            .issuers
            .application(&new.issuer, &new.aid, new.version)
            .await
        {
            Ok(application) => application,
            Err(LinkError::Refused {
                status: 404,
                code,
                message,
                ..
            }) => return Err(unknown(format!("the issuer answered {code}: {message}"))),
            Err(e) => return Err(e.into()),
        };
        if application.aid != new.aid || application.version != new.version {
            return Err(ServiceError::IssuerCall(LinkError::InvalidAnswer {
                issuer: new.issuer.clone(),
                detail: format!(
                    "asked for application {} version {}, it described {} version {}",
                    hex::encode(new.aid.as_bytes()),
                    new.version,
                    hex::encode(application.aid.as_bytes()),
                    application.version
                ),
            }));
        }
        if application.provider != self.party_id {
            return Err(unknown(format!(
                "it belongs to provider {}, not to this provider ({})",
                application.provider, self.party_id
            )));
        }
        let record = ServiceRecord {
            service_id: new.service_id.clone(),
            name: new.name.clone(),
            description: new.description.clone(),
            issuer: new.issuer.clone(),
            aid: new.aid.clone(),
            version: new.version,
            size: application.size,
            digest: application.digest,
            policy: application.policy,
            application_name: application.name,
            created_at: self.clock.now(),
        };
        match self.store.insert_service(&record).await? {
            ServiceOutcome::Added => Ok((record, true)),
            ServiceOutcome::Exists(existing) => {
                Self::same_service(existing, new).map(|s| (s, false))
            }
        }
    }

    /// `existing` if it is what `new` asks for, else 409 `service_exists`.
    fn same_service(
        existing: ServiceRecord,
        new: &NewService,
    ) -> Result<ServiceRecord, ServiceError> {
        let same = existing.name == new.name
            && existing.description == new.description
            && existing.issuer == new.issuer
            && existing.aid == new.aid
            && existing.version == new.version;
        if same {
            Ok(existing)
        } else {
            Err(ServiceError::ServiceExists {
                service_id: new.service_id.to_string(),
            })
        }
    }

    pub async fn services(&self) -> Result<Vec<ServiceRecord>, ServiceError> {
        Ok(self.store.services().await?)
    }

    pub async fn service(&self, service_id: &ServiceId) -> Result<ServiceRecord, ServiceError> {
        self.store
            .service(service_id)
            .await?
            .ok_or_else(|| ServiceError::UnknownService {
                service_id: service_id.to_string(),
            })
    }

    /// The members of a service (personal information: the route is for operators).
    pub async fn service_members(
        &self,
        service_id: &ServiceId,
    ) -> Result<Vec<MemberRecord>, ServiceError> {
        self.service(service_id).await?;
        Ok(self.store.members_of(service_id).await?)
    }

    // ---- download operations (S5–S6) ----------------------------------------------------

    /// Opens the download operation `operation_id` for the user's choice (S5) and answers the
    /// `DownloadRequest` the card is to sign (S6), valid [`DOWNLOAD_VALIDITY_S`]. The same
    /// choice again answers the operation as it is (`false`); another choice under the same
    /// ID is refused. The terms accepted must be the latest; the card must not be a member of
    /// the service already.
    pub async fn open_download(
        &self,
        operation_id: OperationId,
        choice: &DownloadChoice,
    ) -> Result<(DownloadRecord, bool), ServiceError> {
        if let Some(existing) = self.store.download(&operation_id).await? {
            return Self::same_download(existing, choice).map(|d| (d, false));
        }
        let service = self.service(&choice.service_id).await?;
        if !self.issuers.knows(&choice.issuer) {
            return Err(ServiceError::UnknownIssuer {
                issuer: choice.issuer.clone(),
            });
        }
        Self::require_service_issuer(&service, &choice.issuer)?;
        match self.store.terms(None).await? {
            None => {
                return Err(ServiceError::TermsOutdated {
                    detail: "this provider has published no terms yet".into(),
                })
            }
            Some(terms) if terms.digest != choice.terms_digest => {
                return Err(ServiceError::TermsOutdated {
                    detail: format!(
                        "the terms accepted ({}) are not the current version {} ({})",
                        hex::encode(choice.terms_digest.0),
                        terms.version,
                        hex::encode(terms.digest.0)
                    ),
                })
            }
            Some(_) => {}
        }
        if self
            .store
            .is_member(&choice.card_id, &choice.service_id)
            .await?
        {
            return Err(ServiceError::AlreadyMember {
                card: choice.card_id,
                service_id: choice.service_id.to_string(),
            });
        }
        let now = self.clock.now();
        let not_after = UnixTime(now.0.saturating_add(DOWNLOAD_VALIDITY_S));
        let request = DownloadRequest {
            operation_id,
            card_id: choice.card_id,
            issuer: choice.issuer.clone(),
            provider: self.party_id.clone(),
            service_id: choice.service_id.clone(),
            item_id: service.aid.clone(),
            version: service.version,
            size: service.size,
            data_digest: service.digest,
            terms_digest: choice.terms_digest,
            not_after,
        };
        let record = DownloadRecord {
            operation_id,
            card_id: choice.card_id,
            issuer: choice.issuer.clone(),
            service_id: choice.service_id.clone(),
            terms_digest: choice.terms_digest,
            request_der: request.to_der(),
            not_after,
            stage: DownloadStage::Requested,
            created_at: now,
        };
        match self.store.open_download(&record).await? {
            OpenOutcome::Opened => Ok((record, true)),
            OpenOutcome::Exists(existing) => {
                Self::same_download(existing, choice).map(|d| (d, false))
            }
        }
    }

    fn same_download(
        existing: DownloadRecord,
        choice: &DownloadChoice,
    ) -> Result<DownloadRecord, ServiceError> {
        let same = existing.card_id == choice.card_id
            && existing.issuer == choice.issuer
            && existing.service_id == choice.service_id
            && existing.terms_digest == choice.terms_digest;
        if same {
            Ok(existing)
        } else {
            Err(ServiceError::OperationConflict {
                operation_id: existing.operation_id,
            })
        }
    }

    async fn known_download(
        &self,
        operation_id: &OperationId,
    ) -> Result<DownloadRecord, ServiceError> {
        self.store
            .download(operation_id)
            .await?
            .ok_or(ServiceError::UnknownOperation {
                operation_id: *operation_id,
            })
    }

    /// Where the operation stands (screen (i)).
    pub async fn download_status(
        &self,
        operation_id: &OperationId,
    ) -> Result<DownloadStatus, ServiceError> {
        let download = self.known_download(operation_id).await?;
        let member_since = match download.stage {
            DownloadStage::Member => self
                .store
                .member(operation_id)
                .await?
                .map(|m| m.member_since),
            _ => None,
        };
        Ok(DownloadStatus {
            download,
            member_since,
        })
    }

    /// The service's application was pinned from `service.issuer`'s application DB: only a
    /// card of that issuer may download it (the issuer installs and accounts for it).
    fn require_service_issuer(
        service: &ServiceRecord,
        card_issuer: &PartyId,
    ) -> Result<(), ServiceError> {
        if &service.issuer != card_issuer {
            return Err(ServiceError::IssuerMismatch {
                service_id: service.service_id.to_string(),
                service_issuer: service.issuer.clone(),
                card_issuer: card_issuer.clone(),
            });
        }
        Ok(())
    }

    /// Only the card's issuer named in the operation speaks for it.
    fn require_card_issuer(caller: &Caller, download: &DownloadRecord) -> Result<(), ServiceError> {
        if caller.role != PartyRole::Issuer || caller.party != download.issuer {
            return Err(ServiceError::CallerNotCardIssuer {
                caller: caller.party.clone(),
                caller_role: caller.role,
                issuer: download.issuer.clone(),
            });
        }
        Ok(())
    }

    /// The card-signed application under `rc`, addressed to the operation's issuer, holding
    /// exactly the request given out for the operation. `now` is the expiry floor.
    fn check_application(
        download: &DownloadRecord,
        application: &SignedObject,
        rc: &Certificate,
        now: UnixTime,
    ) -> Result<DownloadApplication, ServiceError> {
        let expected = ExpectedDownload {
            issuer: download.issuer.clone(),
            now,
        };
        let verified =
            verify_download_application(application, rc, &expected).map_err(refused_application)?;
        if verified.request.to_der() != download.request_der {
            return Err(ServiceError::OperationMismatch {
                operation_id: download.operation_id,
                detail: "the card signed another request than the one given out for this \
                         operation"
                    .into(),
            });
        }
        Ok(verified)
    }

    /// The SDI of the issuer's SAR must be the service's pinned application for the
    /// operation's card, owned by this provider; and the operation's issuer (the caller, who
    /// signed the SAR) must be the issuer the service's application was pinned from.
    fn check_download_sdi(
        &self,
        sdi: &Sdi,
        download: &DownloadRecord,
        service: &ServiceRecord,
    ) -> Result<(), ServiceError> {
        Self::require_service_issuer(service, &download.issuer)?;
        let mismatch = |detail: String| Err(ServiceError::SdiMismatch { detail });
        if sdi.card_id != download.card_id {
            return mismatch(format!(
                "the SDI is for card {}, the operation for card {}",
                sdi.card_id, download.card_id
            ));
        }
        if sdi.operation != Operation::Store {
            return mismatch("a download stores: the SDI deletes".into());
        }
        if sdi.owner != self.party_id {
            return mismatch(format!(
                "the owner is {}, not this provider ({})",
                sdi.owner, self.party_id
            ));
        }
        let pinned = (
            service.aid.as_bytes(),
            service.version,
            service.size,
            service.digest,
            service.policy,
        );
        let named = (
            sdi.item_id.as_bytes(),
            sdi.version,
            sdi.size,
            sdi.data_digest,
            sdi.policy,
        );
        if named != pinned {
            return mismatch(format!(
                "the SDI names application {} version {} ({} bytes, digest {}, policy {}); \
                 service {} pins {} version {} ({} bytes, digest {}, policy {})",
                hex::encode(sdi.item_id.as_bytes()),
                sdi.version,
                sdi.size,
                hex::encode(sdi.data_digest.0),
                sdi.policy.bits(),
                service.service_id,
                hex::encode(service.aid.as_bytes()),
                service.version,
                service.size,
                hex::encode(service.digest.0),
                service.policy.bits()
            ));
        }
        Ok(())
    }

    // ---- the download grant (S11) -------------------------------------------------------

    /// The provider's SA over the card's issuer's SAR on operation `operation_id`, asked by
    /// `caller` (the operation's issuer, who signed the SAR): the card-signed application
    /// under `rc` must hold the operation's request, `rc` must chain through the SAR signer's
    /// IRC to the Issuer Registrar root with the CRLs held and be the RC the SAR names, the
    /// SAR's SDI must be the service's pinned application. Idempotent: the same SAR again
    /// answers the SA recorded for it (one per SAR, across instances).
    pub async fn download_grant(
        &self,
        operation_id: OperationId,
        sar_object: &SignedObject,
        application: &SignedObject,
        rc: &Certificate,
        caller: &Caller,
    ) -> Result<DownloadGrant, ServiceError> {
        let now = self.clock.now();
        let download = self.known_download(&operation_id).await?;
        Self::require_card_issuer(caller, &download)?;
        let sar_digest = sar_object.digest();
        if let Some(recorded) = self.store.download_grant(&sar_digest).await? {
            return Self::recorded_grant(recorded, operation_id);
        }
        if download.stage == DownloadStage::Member {
            return Err(ServiceError::OperationClosed {
                operation_id,
                reason: "its member is recorded already".into(),
            });
        }
        if now > download.not_after {
            return Err(ServiceError::OperationClosed {
                operation_id,
                reason: format!("it expired at {} (now {})", download.not_after.0, now.0),
            });
        }
        // A provider's SAR is never granted here: say so before trying its chain.
        if let Ok(claimed) = sar_object.body_unverified::<Sar>() {
            if claimed.requester_role != PartyRole::Issuer {
                return Err(ServiceError::WrongRequesterRole {
                    found: claimed.requester_role,
                });
            }
        }
        let (sar, _) =
            self.open_issuer_signed::<Sar>(sar_object, "Sar", |sar| sar.requester.clone(), now)?;
        if caller.party != sar.requester {
            return Err(ServiceError::CallerNotRequester {
                caller: caller.party.clone(),
                caller_role: caller.role,
                requester: sar.requester,
            });
        }
        Self::check_validity("Sar", sar.issued_at, sar.not_after, now)?;
        // The SAR's chain verified: its leaf is the requester's IRC, through which the RC
        // must chain.
        let irc = sar_object
            .signer_chain()
            .first()
            .map(|der| Certificate::from_der(der))
            .transpose()
            .map_err(|e| corrupt("verified SAR chain")(e.to_string()))?
            .ok_or_else(|| corrupt("verified SAR chain")("empty".into()))?;
        self.check_rc(rc, &irc, now)?;
        if sar.rc_digest != rc.digest() {
            return Err(ServiceError::SarRcMismatch {
                card: download.card_id,
            });
        }
        Self::check_application(&download, application, rc, now)?;
        let service = self.service(&download.service_id).await?;
        self.check_download_sdi(&sar.sdi, &download, &service)?;
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
        let sa_der = sa.to_der();
        let grant = NewDownloadGrant {
            grant: DownloadGrantRecord {
                sar_digest,
                operation_id,
                sa_digest: crypto::sha256(&sa_der),
                sa_der: sa_der.clone(),
                not_after,
                granted_at: now,
            },
            consent: ConsentRecord {
                consent_digest: sar_digest,
                kind: ConsentKind::Download,
                card_id: sar.sdi.card_id,
                item_id: sar.sdi.item_id.clone(),
                version: sar.sdi.version,
                sdi_digest: sar.sdi.digest(),
                sdi_der: sar.sdi.to_der(),
                signed_der: sa_der,
                created_at: now,
            },
        };
        match self.store.record_download_grant(&grant).await? {
            GrantOutcome::Granted => Ok(DownloadGrant {
                sa,
                not_after,
                new: true,
            }),
            GrantOutcome::Exists(recorded) => Self::recorded_grant(recorded, operation_id),
            GrantOutcome::SarSpent => Err(ServiceError::Replayed { sar_digest }),
        }
    }

    /// A grant recorded before for the same SAR: answered again if it is this operation's.
    fn recorded_grant(
        recorded: DownloadGrantRecord,
        operation_id: OperationId,
    ) -> Result<DownloadGrant, ServiceError> {
        if recorded.operation_id != operation_id {
            return Err(ServiceError::OperationMismatch {
                operation_id,
                detail: format!(
                    "this SAR was granted on operation {}",
                    recorded.operation_id
                ),
            });
        }
        let sa = SignedObject::from_der(&recorded.sa_der)
            .map_err(|e| corrupt("recorded download SA")(e.to_string()))?;
        Ok(DownloadGrant {
            sa,
            not_after: recorded.not_after,
            new: false,
        })
    }

    // ---- the member notification (S15–S16) ----------------------------------------------

    /// Records the member the card's issuer notifies (S15) after checking the card's own
    /// proof: the RC chains through the IRC (the operation's issuer's) to the Issuer
    /// Registrar root with the CRLs held, the application verifies under it and holds the
    /// operation's request, the receipt verifies under it, stores, and names an SA granted
    /// here for this operation. The receipt goes into the card's ledger and the member is
    /// recorded `active` in one transaction keyed by the operation ID: a repeated
    /// notification changes nothing and is acknowledged (`newly_recorded: false`).
    pub async fn record_member(
        &self,
        notice: &MemberNotice,
        caller: &Caller,
    ) -> Result<RecordedMember, ServiceError> {
        let now = self.clock.now();
        let operation_id = notice.operation_id;
        let download = self.known_download(&operation_id).await?;
        Self::require_card_issuer(caller, &download)?;
        if let Some(member) = self.store.member(&operation_id).await? {
            return Ok(RecordedMember {
                member,
                newly_recorded: false,
            });
        }
        let mismatch = |detail: String| ServiceError::OperationMismatch {
            operation_id,
            detail,
        };
        if notice.card_id != download.card_id {
            return Err(mismatch(format!(
                "the notification is for card {}, the operation for card {}",
                notice.card_id, download.card_id
            )));
        }
        if notice.service_id != download.service_id {
            return Err(mismatch(format!(
                "the notification is for service {}, the operation for {}",
                notice.service_id, download.service_id
            )));
        }
        self.check_rc(&notice.rc, &notice.irc, now)?;
        if notice.irc.subject_id() != &download.issuer {
            return Err(ServiceError::RcNotFromIssuer {
                issuer: download.issuer.clone(),
                found: notice.irc.subject_id().clone(),
            });
        }
        if notice.rc.card_id() != Some(download.card_id) {
            return Err(mismatch(format!(
                "the RC is not card {}'s",
                download.card_id
            )));
        }
        // The application's expiry was judged when the SA was granted; the notification may
        // come much later (retried until acknowledged): judge it as of the operation's start.
        Self::check_application(
            &download,
            &notice.download_application,
            &notice.rc,
            download.created_at,
        )?;
        let receipt = protocol::verify_receipt(&notice.receipt, &notice.rc).map_err(|source| {
            ServiceError::InvalidReceipt {
                source: Box::new(source),
            }
        })?;
        let not_for_operation = |detail: String| ServiceError::ReceiptNotForOperation {
            operation_id,
            detail,
        };
        let grant = self
            .store
            .download_grant_for_sa(&operation_id, &receipt.authorization_digest)
            .await?
            .ok_or_else(|| {
                not_for_operation(format!(
                    "its authorization {} is no SA granted on this operation",
                    hex::encode(receipt.authorization_digest.0)
                ))
            })?;
        let sdi = SignedObject::from_der(&grant.sa_der)
            .and_then(|sa| sa.body_unverified::<Sa>())
            .map(|sa| sa.sdi)
            .map_err(|e| corrupt("recorded download SA")(e.to_string()))?;
        if receipt.result != ReceiptResult::Stored
            || receipt.operation != Operation::Store
            || receipt.sdi_digest != sdi.digest()
            || receipt.item_id != sdi.item_id
        {
            return Err(not_for_operation(
                "it does not confirm storing the SA's application".into(),
            ));
        }
        let member = MemberRecord {
            operation_id,
            service_id: download.service_id.clone(),
            card_id: download.card_id,
            user: notice.user.clone(),
            state: "active".into(),
            download_application_der: notice.download_application.to_der(),
            receipt_der: notice.receipt.to_der(),
            member_since: now,
        };
        let signer = LedgerSigning {
            key: &self.key,
            party: &self.party_id,
            card: download.card_id,
            receipt: &notice.receipt,
            now,
        };
        let new_receipt = NewReceipt {
            card_id: download.card_id,
            rc_der: notice.rc.der().to_vec(),
            receipt_der: notice.receipt.to_der(),
            counter: receipt.counter,
            change: ViewChange::Stored(ViewItem {
                item_id: sdi.item_id.clone(),
                version: sdi.version,
                size: sdi.size,
                data_digest: sdi.data_digest,
                policy: sdi.policy,
            }),
            recorded_at: now,
        };
        match self
            .store
            .record_member(&new_receipt, &signer, &member)
            .await?
        {
            MemberOutcome::Recorded { member, .. } => Ok(RecordedMember {
                member,
                newly_recorded: true,
            }),
            MemberOutcome::Repeated(member) => Ok(RecordedMember {
                member,
                newly_recorded: false,
            }),
            MemberOutcome::ReceiptRefused(ReceiptOutcome::CounterNotIncreasing { last }) => {
                Err(ServiceError::CounterNotIncreasing {
                    card: download.card_id,
                    last,
                    found: receipt.counter,
                })
            }
            MemberOutcome::ReceiptRefused(ReceiptOutcome::RcMismatch) => {
                Err(ServiceError::RcMismatch {
                    card: download.card_id,
                })
            }
            MemberOutcome::ReceiptRefused(other) => {
                Err(corrupt("member receipt outcome")(format!("{other:?}")))
            }
        }
    }
}
