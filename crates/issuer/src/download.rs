//! Issue 4 at the issuer (docs/app-download.md): the application DB (APP-1), the standing check
//! (S1–S3: a nonce, then the card's signed listing answering it, verified under the card's RC
//! and compared with the view), and download operations (S8–S14): the card-signed download
//! application opens one, each card challenge gets one attempt (the issuer's SAR over the SDI
//! of the application DB's row, the provider's SA from its download grant), the package is the
//! application DB's code, and the card's receipt for an attempt's SA installs the operation and
//! queues the member notification in the receipt's transaction (REC-2: every step idempotent
//! on its key). Domain only: no HTTP, no SQL.

use party_api::provider_download::{MemberNotification, MemberUser};
use pki::{CardId, Certificate, PartyId, UnixTime};
use protocol::{
    Challenge, DownloadApplication, DownloadRequest, ExpectedDownload, ItemId, ListedItem, Nonce,
    Operation, OperationId, PartyRole, Policy, Receipt, Sar, Sdi, SignedObject,
};

use crate::provider_link::DownloadGrant;
use crate::service::{free_of, Issuer, ServiceError};
use crate::store::{
    Application, AttemptOutcome, AttemptRecord, AuthorizationRecord, CheckInsert, CheckRecord,
    Direction, DownloadCompletion, DownloadRecord, DownloadState, NotificationRecord,
    NotificationState, OpenOutcome, ProviderStatus, RegistrationRecord, StoreError,
};

/// The largest code an application may have (docs/app-download.md §3).
pub const MAX_CODE_LEN: usize = 1024 * 1024;
/// The shortest AID (ISO 7816-5: RID of 5 bytes).
pub const MIN_AID_LEN: usize = 5;
/// The longest name and description of an application, in characters.
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// What an operator adds to the application DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationOrder {
    pub aid: ItemId,
    pub version: u32,
    pub provider: PartyId,
    pub name: String,
    pub description: String,
    pub code: Vec<u8>,
    pub policy_bits: u32,
}

/// A card's standing (S2–S3), from its signed listing checked against the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub card_id: CardId,
    pub registration: RegistrationRecord,
    /// The card's capacity and free bytes as its signed listing says.
    pub capacity: u32,
    pub free: u32,
    pub card_counter: u64,
    pub issuer_counter: u64,
    /// The listing's counter and contents are the view's.
    pub in_sync: bool,
    /// What the card holds that the application DB describes, with that description.
    pub applications: Vec<(ListedItem, Application)>,
    /// Operations open for the card (a terminal that lost its journal continues one).
    pub open_downloads: Vec<OperationId>,
}

/// An operation as opened (S8–S10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub download: DownloadRecord,
    pub application: Application,
    /// The free bytes counted for it: the smaller of the view's and the card's.
    pub free: u32,
    /// False when the same request had opened it before.
    pub newly_opened: bool,
}

/// One authorization attempt with the provider's SA (S11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub attempt: AttemptRecord,
    pub sa: SignedObject,
    /// False when this challenge had its attempt before.
    pub newly_authorized: bool,
}

/// An operation with its attempts and its member notification (`GET /v1/downloads/{op}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadStatus {
    pub download: DownloadRecord,
    pub attempts: Vec<AttemptRecord>,
    pub notification: Option<NotificationRecord>,
}

/// APP-1's personal-information registry of one card (operators only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub card: crate::service::CardState,
    pub view: Option<crate::store::CardView>,
    /// The view's items the application DB describes.
    pub applications: Vec<(ListedItem, Application)>,
    pub downloads: Vec<DownloadRecord>,
}

fn aid_text(aid: &ItemId) -> String {
    hex::encode(aid.as_bytes())
}

fn check_text(field: &'static str, text: &str, min: usize, max: usize) -> Result<(), ServiceError> {
    let chars = text.chars().count();
    let reason = if chars < min {
        Some("is empty".to_string())
    } else if chars > max {
        Some(format!("has {chars} characters, at most {max}"))
    } else if text.chars().any(char::is_control) {
        Some("contains control characters".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ServiceError::InvalidApplicationText { field, reason }),
        None => Ok(()),
    }
}

/// When the operation's download application (the card-signed request) stops being valid.
fn application_not_after(download: &DownloadRecord) -> Result<UnixTime, ServiceError> {
    DownloadRequest::from_der(&download.request_der)
        .map(|request| request.not_after)
        .map_err(ServiceError::StoredObject)
}

/// Whether `download` is open with a download application that expired before `now` (valid
/// through its `notAfter`, as `verify_download_application` counts it).
fn open_but_expired(download: &DownloadRecord, now: UnixTime) -> Result<bool, ServiceError> {
    Ok(download.state == DownloadState::Opened && application_not_after(download)? < now)
}

/// The operation as it stands at `now`: an open one whose download application expired is
/// `expired` (it is marked so in the store when another opens for its card and application;
/// until then it is reported so, and blocks nothing).
fn as_of(mut download: DownloadRecord, now: UnixTime) -> Result<DownloadRecord, ServiceError> {
    if open_but_expired(&download, now)? {
        download.state = DownloadState::Expired;
    }
    Ok(download)
}

/// Free bytes of `items` on a card of `capacity` (as the card counts them).
impl Issuer {
    // ---- the application DB (APP-1) -------------------------------------------------------

    /// Adds an application (its code kept for every download of it); the same application
    /// again changes nothing. Returns it and whether it was added now.
    pub async fn add_application(
        &self,
        order: ApplicationOrder,
        operator: &str,
    ) -> Result<(Application, bool), ServiceError> {
        let len = order.aid.as_bytes().len();
        if len < MIN_AID_LEN {
            return Err(ServiceError::InvalidAid {
                aid: aid_text(&order.aid),
                len,
            });
        }
        if order.code.is_empty() || order.code.len() > MAX_CODE_LEN {
            return Err(ServiceError::InvalidCode {
                reason: format!(
                    "has {} bytes; it must have 1 to {MAX_CODE_LEN}",
                    order.code.len()
                ),
            });
        }
        let policy =
            Policy::from_bits(order.policy_bits).map_err(|e| ServiceError::InvalidPolicy {
                bits: order.policy_bits,
                reason: e.to_string(),
            })?;
        if policy.contains(Policy::CERTIFIED_DATA_REQUIRED) {
            return Err(ServiceError::InvalidPolicy {
                bits: order.policy_bits,
                reason: "a download carries no certified data (SDCI), so a card would refuse it"
                    .into(),
            });
        }
        check_text("name", &order.name, 1, MAX_NAME_CHARS)?;
        check_text("description", &order.description, 0, MAX_DESCRIPTION_CHARS)?;
        if self.store.provider(&order.provider).await?.is_none() {
            return Err(ServiceError::UnknownProvider {
                provider: order.provider,
            });
        }
        let application = Application {
            aid: order.aid,
            version: order.version,
            // At most MAX_CODE_LEN (1 MiB) bytes, checked above: it fits.
            size: u32::try_from(order.code.len()).unwrap_or(u32::MAX),
            digest: crypto::sha256(&order.code),
            provider: order.provider,
            name: order.name,
            description: order.description,
            policy,
            added_at: self.clock.now(),
            added_by: operator.to_string(),
        };
        match self
            .store
            .insert_application(&application, &order.code)
            .await?
        {
            None => Ok((application, true)),
            Some(existing) if existing.same_content(&application) => Ok((existing, false)),
            Some(existing) => Err(ServiceError::ApplicationVersionExists {
                aid: aid_text(&existing.aid),
                version: existing.version,
            }),
        }
    }

    /// One version of an application (the highest when `version` is `None`).
    pub async fn application(
        &self,
        aid: &ItemId,
        version: Option<u32>,
    ) -> Result<Application, ServiceError> {
        self.store.application(aid, version).await?.ok_or_else(|| {
            ServiceError::UnknownApplication {
                aid: aid_text(aid),
                version,
            }
        })
    }

    pub async fn applications(&self) -> Result<Vec<Application>, ServiceError> {
        Ok(self.store.applications().await?)
    }

    /// The items of `items` the application DB describes (same AID and version).
    async fn described(
        &self,
        items: &[ListedItem],
    ) -> Result<Vec<(ListedItem, Application)>, ServiceError> {
        let mut described = Vec::new();
        for item in items {
            if let Some(application) = self
                .store
                .application(&item.item_id, Some(item.version))
                .await?
            {
                described.push((item.clone(), application));
            }
        }
        Ok(described)
    }

    // ---- the standing check (S1–S3) ---------------------------------------------------------

    /// S1: a fresh single-use nonce for the card's signed listing. The route needs no
    /// authentication, so the nonces stay bounded: at most `max_open_checks` unanswered and
    /// unexpired per card, and each insert deletes nonces (of any card) expired for a lifetime
    /// (kept that long so that a listing answering one just late is told `nonce_expired`).
    pub async fn check_nonce(&self, card_id: &CardId) -> Result<CheckRecord, ServiceError> {
        self.known_card(card_id).await?;
        let now = self.clock.now();
        let purge_before = UnixTime(now.0.saturating_sub(self.settings.check_ttl_s));
        loop {
            let record = CheckRecord {
                // Invariant: 16 bytes is within a listing nonce's 0..=32.
                nonce: Nonce::new(&self.random::<16>()).expect("16-byte nonce"),
                card_id: *card_id,
                issued_at: now,
                expires_at: UnixTime(now.0.saturating_add(self.settings.check_ttl_s)),
                spent_at: None,
            };
            match self
                .store
                .insert_check(&record, self.settings.max_open_checks, purge_before)
                .await
            {
                Ok(CheckInsert::Inserted) => return Ok(record),
                Ok(CheckInsert::TooMany { open, next_expiry }) => {
                    return Err(ServiceError::TooManyChecks {
                        card_id: *card_id,
                        open,
                        next_expiry,
                    })
                }
                Err(StoreError::DuplicateNonce { .. }) => continue,
                Err(StoreError::UnknownCard { card_id }) => {
                    return Err(ServiceError::UnknownCard { card_id })
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// S2–S3: the card's signed listing answering `nonce` (issued for this card, unspent,
    /// unexpired), verified under the card's RC, which must be in force; compared with the
    /// view. Spends the nonce.
    pub async fn standing(
        &self,
        card_id: &CardId,
        nonce: &Nonce,
        listing: &SignedObject,
    ) -> Result<Standing, ServiceError> {
        let nonce_text = hex::encode(nonce.as_bytes());
        let check = self
            .store
            .check(nonce)
            .await?
            .filter(|c| c.card_id == *card_id)
            .ok_or_else(|| ServiceError::UnknownNonce {
                nonce: nonce_text.clone(),
                card_id: *card_id,
            })?;
        if check.spent_at.is_some() {
            return Err(ServiceError::NonceSpent {
                nonce: nonce_text,
                spent_at: check.spent_at,
            });
        }
        let now = self.clock.now();
        if now > check.expires_at {
            return Err(ServiceError::NonceExpired {
                nonce: nonce_text,
                expires_at: check.expires_at,
                now,
            });
        }
        let registration = self.registration_in_force(card_id).await?;
        let rc = Certificate::from_der(&registration.rc_der)?;
        let listing =
            protocol::verify_listing(listing, &rc, nonce).map_err(ServiceError::InvalidListing)?;
        if !self.store.spend_check(nonce, card_id, now).await? {
            return Err(ServiceError::NonceSpent {
                nonce: nonce_text,
                spent_at: None,
            });
        }
        let (view, capacity) = self.contents(card_id).await?;
        let in_sync = listing.counter == view.last_counter
            && crate::service::view_digest(&view.items, capacity)? == listing.contents.digest();
        let applications = self.described(listing.contents.items()).await?;
        let mut open_downloads = Vec::new();
        for download in self
            .store
            .downloads(Some(card_id), Some(DownloadState::Opened))
            .await?
        {
            // One whose application expired cannot be continued: the card signs a new one.
            if !open_but_expired(&download, now)? {
                open_downloads.push(download.operation_id);
            }
        }
        Ok(Standing {
            card_id: *card_id,
            registration,
            capacity: listing.contents.capacity(),
            free: listing.contents.free(),
            card_counter: listing.counter,
            issuer_counter: view.last_counter,
            in_sync,
            applications,
            open_downloads,
        })
    }

    // ---- downloads (S8–S14) ------------------------------------------------------------------

    /// S8–S10: the card's signed download application, with its RC (which must be the
    /// registry's): verified, the application picked from the application DB (size, digest
    /// and provider as the card signed), the policy, registry sync, capacity and quota
    /// checked, and the operation opened with its SDI (owner = the provider). The same request
    /// again (the card's counter and free bytes may differ) answers the operation as opened.
    pub async fn open_download(
        &self,
        signed: &SignedObject,
        rc: &Certificate,
    ) -> Result<Opened, ServiceError> {
        let invalid = |e: protocol::DownloadError| ServiceError::InvalidDownloadApplication(e);
        let card_id = rc.card_id().ok_or_else(|| {
            invalid(protocol::DownloadError::NotCardCertificate {
                subject: rc.subject_id().to_string(),
                role: rc.role(),
            })
        })?;
        let registration = self.registered(&card_id).await?;
        if registration.rc_der != rc.der() {
            return Err(ServiceError::RcNotRegistered { card_id });
        }
        let now = self.clock.now();
        let application = protocol::verify_download_application(
            signed,
            rc,
            &ExpectedDownload {
                issuer: self.identity.party_id.clone(),
                now,
            },
        )
        .map_err(invalid)?;
        let request = &application.request;
        let request_der = request.to_der();
        if let Some(existing) = self.store.download(&request.operation_id).await? {
            return self.reopened(existing, &request_der, &application).await;
        }
        self.registration_in_force(&card_id).await?;
        let described = self
            .application(&request.item_id, Some(request.version))
            .await?;
        check_matches(request, &described)?;
        let sdi = Sdi {
            card_id,
            operation: Operation::Store,
            item_id: described.aid.clone(),
            version: described.version,
            size: described.size,
            data_digest: described.digest,
            owner: described.provider.clone(),
            policy: described.policy,
        };
        // Allowed and within quota: the view's items of the provider (this one replacing an
        // older version of itself) and its other downloads in progress on the card.
        let pending = self
            .pending_bytes(&card_id, &sdi.owner, &sdi.item_id, None, false, now)
            .await?;
        self.check_policy_with(&sdi, pending).await?;
        let (view, capacity) = self.contents(&card_id).await?;
        if let Some(on_card) = view.items.iter().find(|i| i.item_id == described.aid) {
            if on_card.version >= described.version {
                return Err(ServiceError::AlreadyInstalled {
                    card_id,
                    aid: aid_text(&described.aid),
                    version: on_card.version,
                });
            }
        }
        if application.counter != view.last_counter {
            return Err(ServiceError::RegistryOutOfSync {
                card_counter: application.counter,
                issuer_counter: view.last_counter,
            });
        }
        let free = free_of(&view.items, capacity).min(application.free);
        if described.size > free {
            return Err(ServiceError::InsufficientCapacity {
                card_id,
                aid: aid_text(&described.aid),
                needs: described.size,
                free,
            });
        }
        let download = DownloadRecord {
            operation_id: request.operation_id,
            card_id,
            provider: described.provider.clone(),
            service_id: request.service_id.clone(),
            aid: described.aid.clone(),
            version: described.version,
            request_der: request_der.clone(),
            application_der: signed.to_der(),
            sdi_der: sdi.to_der(),
            sdi_digest: sdi.digest(),
            state: DownloadState::Opened,
            opened_at: now,
            installed_at: None,
            receipt_counter: None,
        };
        // An open operation of the card and application whose download application expired
        // is replaced: marked expired in the transaction that opens this one.
        let mut expiring: Option<OperationId> = None;
        const TRIES: u32 = 3;
        for _ in 0..TRIES {
            let in_progress = match self
                .store
                .open_download(&download, expiring.as_ref())
                .await?
            {
                OpenOutcome::Opened => {
                    if let Some(expired) = expiring {
                        tracing::info!(
                            operation_id = %expired,
                            replaced_by = %download.operation_id,
                            card_id = %card_id,
                            "open download expired and replaced"
                        );
                    }
                    return Ok(Opened {
                        download,
                        application: described,
                        free,
                        newly_opened: true,
                    });
                }
                OpenOutcome::Exists(existing) => {
                    return self.reopened(*existing, &request_der, &application).await
                }
                OpenOutcome::InProgress(operation_id) => operation_id,
            };
            let replaceable = match self.store.download(&in_progress).await? {
                Some(open) => open_but_expired(&open, now)?,
                // Installed or replaced in between: try again.
                None => true,
            };
            if !replaceable || expiring == Some(in_progress) {
                return Err(ServiceError::DownloadInProgress {
                    operation_id: in_progress,
                    card_id,
                    aid: aid_text(&described.aid),
                });
            }
            expiring = Some(in_progress);
        }
        Err(ServiceError::DownloadInProgress {
            operation_id: expiring.unwrap_or(download.operation_id),
            card_id,
            aid: aid_text(&described.aid),
        })
    }

    /// The answer to a download application whose operation ID is taken: the recorded
    /// operation if the request is the same, else a conflict.
    async fn reopened(
        &self,
        existing: DownloadRecord,
        request_der: &[u8],
        application: &DownloadApplication,
    ) -> Result<Opened, ServiceError> {
        if existing.request_der != request_der {
            return Err(ServiceError::OperationConflict {
                operation_id: existing.operation_id,
            });
        }
        let described = self
            .application(&existing.aid, Some(existing.version))
            .await?;
        let (view, capacity) = self.contents(&existing.card_id).await?;
        let free = free_of(&view.items, capacity).min(application.free);
        Ok(Opened {
            download: existing,
            application: described,
            free,
            newly_opened: false,
        })
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

    /// S11: the attempt for the card's `challenge`: the issuer's SAR over the operation's SDI
    /// (recorded before the provider is asked), the provider's SA from its download grant,
    /// verified as the card will. The same challenge again answers the same attempt (asking
    /// the provider again with the recorded SAR if its SA was not recorded).
    pub async fn authorize_download(
        &self,
        operation_id: &OperationId,
        challenge: Challenge,
    ) -> Result<Authorization, ServiceError> {
        let download = self.known_download(operation_id).await?;
        if download.state == DownloadState::Installed {
            return Err(ServiceError::OperationInstalled {
                operation_id: *operation_id,
                counter: download.receipt_counter,
            });
        }
        // An expired download application authorizes nothing more (the provider would refuse
        // it too): refused before any attempt is recorded or the provider asked.
        let not_after = application_not_after(&download)?;
        let now = self.clock.now();
        let expired = download.state == DownloadState::Expired || not_after < now;
        let application_expired = || ServiceError::DownloadApplicationExpired {
            operation_id: *operation_id,
            not_after,
            now,
        };
        let sdi = Sdi::from_der(&download.sdi_der).map_err(ServiceError::StoredObject)?;
        const RACES: u32 = 5;
        for _ in 0..RACES {
            let recorded = self.store.attempts(operation_id).await?;
            let number = u32::try_from(recorded.len()).unwrap_or(u32::MAX);
            // Only attempts the provider answered (with its SA) count toward the limit: an
            // unreachable or refusing provider burns none.
            let answered = recorded.iter().filter(|a| a.sa_der.is_some()).count();
            let answered = u32::try_from(answered).unwrap_or(u32::MAX);
            let unanswered = number.saturating_sub(answered);
            if let Some(existing) = recorded.into_iter().find(|a| a.challenge == challenge) {
                // This challenge's SA again (an answer lost) changes nothing, expired or not.
                if expired && existing.sa_der.is_none() {
                    return Err(application_expired());
                }
                return self
                    .complete_attempt(&download, &sdi, existing, false)
                    .await;
            }
            if expired {
                return Err(application_expired());
            }
            if answered >= self.settings.max_download_attempts {
                return Err(ServiceError::TooManyAttempts {
                    operation_id: *operation_id,
                    attempts: answered,
                });
            }
            if unanswered >= self.settings.max_unanswered_attempts {
                return Err(ServiceError::TooManyUnansweredAttempts {
                    operation_id: *operation_id,
                    attempts: unanswered,
                });
            }
            self.ensure_may_sign()?;
            let registration = self.registration_in_force(&download.card_id).await?;
            self.allowed_with_url(&download.provider).await?;
            // The policy again, as it is now (it may have changed since the operation opened),
            // counting what the provider's other operations on the card were authorized for.
            let pending = self
                .pending_bytes(
                    &download.card_id,
                    &download.provider,
                    &download.aid,
                    Some(operation_id),
                    true,
                    now,
                )
                .await?;
            self.check_policy_with(&sdi, pending).await?;
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
            let attempt = AttemptRecord {
                operation_id: *operation_id,
                attempt: number.saturating_add(1),
                challenge,
                sar_digest: sar.digest(),
                sar_der: sar.to_der(),
                sa_der: None,
                sa_digest: None,
                not_after: None,
                issued_at: now,
            };
            let authorization = AuthorizationRecord {
                sar_digest: attempt.sar_digest,
                direction: Direction::Request,
                card_id: download.card_id,
                provider: download.provider.clone(),
                sdi_digest: download.sdi_digest,
                sdi_der: download.sdi_der.clone(),
                object_der: attempt.sar_der.clone(),
                issued_at: now,
                not_after,
            };
            match self.store.insert_attempt(&attempt, &authorization).await? {
                AttemptOutcome::Inserted => {
                    return self.complete_attempt(&download, &sdi, attempt, true).await
                }
                AttemptOutcome::SameChallenge(existing) => {
                    return self
                        .complete_attempt(&download, &sdi, existing, false)
                        .await
                }
                AttemptOutcome::NumberTaken => continue,
            }
        }
        Err(ServiceError::AttemptContention {
            operation_id: *operation_id,
            tries: RACES,
        })
    }

    /// The bytes `provider`'s other operations on the card may still install (each its
    /// application's size): open ones whose download application is valid, and any with an
    /// SA still valid (the card may install under it, even after its application expired).
    /// With `authorized_only`, only operations with an attempt (a SAR signed) count. `except_aid`
    /// (the application being checked, which replaces itself) and `except_operation` are left
    /// out.
    async fn pending_bytes(
        &self,
        card_id: &CardId,
        provider: &PartyId,
        except_aid: &ItemId,
        except_operation: Option<&OperationId>,
        authorized_only: bool,
        now: UnixTime,
    ) -> Result<u64, ServiceError> {
        let mut pending = 0u64;
        for state in [DownloadState::Opened, DownloadState::Expired] {
            for download in self.store.downloads(Some(card_id), Some(state)).await? {
                if download.provider != *provider
                    || download.aid == *except_aid
                    || Some(&download.operation_id) == except_operation
                {
                    continue;
                }
                let application_valid = download.state == DownloadState::Opened
                    && application_not_after(&download)? >= now;
                let attempts = if authorized_only || !application_valid {
                    self.store.attempts(&download.operation_id).await?
                } else {
                    Vec::new()
                };
                let sa_valid = attempts
                    .iter()
                    .any(|a| a.not_after.is_some_and(|not_after| not_after >= now));
                let counts = if authorized_only {
                    !attempts.is_empty() && (application_valid || sa_valid)
                } else {
                    application_valid || sa_valid
                };
                if counts {
                    let sdi =
                        Sdi::from_der(&download.sdi_der).map_err(ServiceError::StoredObject)?;
                    pending = pending.saturating_add(u64::from(sdi.size));
                }
            }
        }
        Ok(pending)
    }

    /// The provider `provider`'s URL if its policy allows it and names one.
    async fn allowed_with_url(
        &self,
        provider: &PartyId,
    ) -> Result<crate::store::ProviderUrl, ServiceError> {
        let policy = self.provider(provider).await?;
        if policy.status != ProviderStatus::Allowed {
            return Err(ServiceError::ProviderNotAllowed {
                provider: provider.clone(),
            });
        }
        policy.url.ok_or_else(|| ServiceError::ProviderUrlMissing {
            provider: provider.clone(),
        })
    }

    /// An attempt with its SA: the recorded one, or the provider's answer to the attempt's
    /// recorded SAR (verified, then recorded; the first recorded wins).
    async fn complete_attempt(
        &self,
        download: &DownloadRecord,
        sdi: &Sdi,
        attempt: AttemptRecord,
        newly: bool,
    ) -> Result<Authorization, ServiceError> {
        if let Some(sa_der) = &attempt.sa_der {
            let sa = SignedObject::from_der(sa_der).map_err(ServiceError::StoredObject)?;
            return Ok(Authorization {
                attempt,
                sa,
                newly_authorized: false,
            });
        }
        let registration = self.registration_in_force(&download.card_id).await?;
        let url = self.allowed_with_url(&download.provider).await?;
        let sar = SignedObject::from_der(&attempt.sar_der).map_err(ServiceError::StoredObject)?;
        let application = SignedObject::from_der(&download.application_der)
            .map_err(ServiceError::StoredObject)?;
        let rc = Certificate::from_der(&registration.rc_der)?;
        let sa = self
            .link
            .download_grant(
                &download.provider,
                &url,
                &DownloadGrant {
                    operation_id: &download.operation_id,
                    sar: &sar,
                    download_application: &application,
                    rc: &rc,
                },
                self.clock.now(),
            )
            .await
            .map_err(ServiceError::ProviderCall)?;
        let granted = self.check_provider_sa(&sa, &sar, &registration, sdi, attempt.challenge)?;
        let recorded = self
            .store
            .set_attempt_sa(
                &download.operation_id,
                attempt.attempt,
                &sa.to_der(),
                &sa.digest(),
                granted.not_after,
            )
            .await?
            .ok_or(ServiceError::UnknownOperation {
                operation_id: download.operation_id,
            })?;
        let sa = match &recorded.sa_der {
            Some(der) => SignedObject::from_der(der).map_err(ServiceError::StoredObject)?,
            None => sa,
        };
        Ok(Authorization {
            attempt: recorded,
            sa,
            newly_authorized: newly,
        })
    }

    /// The operation's package: its application's code (kept with the application DB).
    pub async fn package(
        &self,
        operation_id: &OperationId,
    ) -> Result<(Application, Vec<u8>), ServiceError> {
        let download = self.known_download(operation_id).await?;
        let application = self
            .application(&download.aid, Some(download.version))
            .await?;
        let code = self
            .store
            .application_code(&download.aid, download.version)
            .await?
            .ok_or_else(|| ServiceError::UnknownApplication {
                aid: aid_text(&download.aid),
                version: Some(download.version),
            })?;
        Ok((application, code))
    }

    /// S13: the card's receipt for one of the operation's attempts (its SA): recorded as on
    /// `POST /v1/receipts`, which installs the operation in the same transaction.
    pub async fn download_receipt(
        &self,
        operation_id: &OperationId,
        receipt: &SignedObject,
    ) -> Result<(crate::service::Ingested, DownloadStatus), ServiceError> {
        self.known_download(operation_id).await?;
        let claimed: Receipt = receipt
            .body_unverified()
            .map_err(|e| ServiceError::InvalidReceipt(e.into()))?;
        let attempts = self.store.attempts(operation_id).await?;
        if !attempts
            .iter()
            .any(|a| a.sa_digest == Some(claimed.authorization_digest))
        {
            return Err(ServiceError::ReceiptNotForOperation {
                operation_id: *operation_id,
                authorization_digest: claimed.authorization_digest,
            });
        }
        let ingested = self.ingest_receipt(receipt, None).await?;
        let status = self.download_status(operation_id).await?;
        Ok((ingested, status))
    }

    /// The completion a verified receipt brings (S14), if its SA is a download attempt's:
    /// the operation and its member notification, whose body is fixed now.
    pub(crate) async fn download_completion(
        &self,
        receipt_object: &SignedObject,
        receipt: &Receipt,
        registration: &RegistrationRecord,
    ) -> Result<Option<DownloadCompletion>, ServiceError> {
        let Some(attempt) = self
            .store
            .attempt_by_sa(&receipt.authorization_digest)
            .await?
        else {
            return Ok(None);
        };
        let download = self.known_download(&attempt.operation_id).await?;
        let now = self.clock.now();
        let notification = MemberNotification {
            operation_id: download.operation_id.to_hex(),
            card_id: download.card_id.to_hex(),
            service_id: download.service_id.to_string(),
            user: MemberUser {
                user_id: registration.user_id.clone(),
                name: registration.user_name.clone(),
                email: registration.user_email.clone(),
            },
            download_application: hex::encode(&download.application_der),
            receipt: hex::encode(receipt_object.to_der()),
            rc: hex::encode(&registration.rc_der),
            irc: hex::encode(self.identity.irc.der()),
        };
        // Fixed now: every attempt sends these bytes' notification.
        let body = serde_json::to_vec(&notification).map_err(|e| {
            ServiceError::Store(StoreError::Corrupt {
                what: "member notification body",
                value: e.to_string(),
            })
        })?;
        Ok(Some(DownloadCompletion {
            operation_id: download.operation_id,
            notification: NotificationRecord {
                operation_id: download.operation_id,
                provider: download.provider,
                body,
                state: NotificationState::Pending,
                attempts: 0,
                next_attempt_at: now,
                lease_holder: None,
                lease_until: None,
                last_error: None,
                created_at: now,
                delivered_at: None,
            },
        }))
    }

    /// An operation with its attempts and member notification.
    pub async fn download_status(
        &self,
        operation_id: &OperationId,
    ) -> Result<DownloadStatus, ServiceError> {
        let download = as_of(self.known_download(operation_id).await?, self.clock.now())?;
        let attempts = self.store.attempts(operation_id).await?;
        let notification = self.store.notification(operation_id).await?;
        Ok(DownloadStatus {
            download,
            attempts,
            notification,
        })
    }

    /// Operations in one state or all (operators), as they stand now: an open operation whose
    /// download application expired is listed as expired.
    pub async fn downloads(
        &self,
        state: Option<DownloadState>,
    ) -> Result<Vec<DownloadRecord>, ServiceError> {
        let now = self.clock.now();
        let stored = match state {
            None | Some(DownloadState::Installed) => self.store.downloads(None, state).await?,
            // Open ones may be expired now, expired ones are expired.
            Some(DownloadState::Opened | DownloadState::Expired) => {
                let mut both = self
                    .store
                    .downloads(None, Some(DownloadState::Opened))
                    .await?;
                if state == Some(DownloadState::Expired) {
                    both.extend(
                        self.store
                            .downloads(None, Some(DownloadState::Expired))
                            .await?,
                    );
                    both.sort_by(|a, b| {
                        (a.opened_at, a.operation_id.0).cmp(&(b.opened_at, b.operation_id.0))
                    });
                }
                both
            }
        };
        let mut listed = Vec::with_capacity(stored.len());
        for download in stored {
            let download = as_of(download, now)?;
            if !matches!(state, Some(wanted) if wanted != download.state) {
                listed.push(download);
            }
        }
        Ok(listed)
    }

    /// The outbox in one state or all (operators).
    pub async fn notifications(
        &self,
        state: Option<NotificationState>,
    ) -> Result<Vec<NotificationRecord>, ServiceError> {
        Ok(self.store.notifications(state).await?)
    }

    /// Makes an undelivered member notification due now (an operator's "retry now").
    pub async fn retry_notification(
        &self,
        operation_id: &OperationId,
    ) -> Result<NotificationRecord, ServiceError> {
        let existing = self.store.notification(operation_id).await?.ok_or(
            ServiceError::UnknownNotification {
                operation_id: *operation_id,
            },
        )?;
        if existing.state == NotificationState::Delivered {
            return Err(ServiceError::NotificationDelivered {
                operation_id: *operation_id,
                delivered_at: existing.delivered_at,
            });
        }
        match self
            .store
            .retry_notification(operation_id, self.clock.now())
            .await?
        {
            Some(row) => Ok(row),
            // Delivered in between.
            None => Err(ServiceError::NotificationDelivered {
                operation_id: *operation_id,
                delivered_at: None,
            }),
        }
    }

    /// APP-1: the card's personal information, view, applications and operations.
    pub async fn registry(&self, card_id: &CardId) -> Result<Registry, ServiceError> {
        let card = self.card(card_id).await?;
        let view = self.store.card_view(card_id).await?;
        let applications = match &view {
            Some(view) => self.described(&view.items).await?,
            None => Vec::new(),
        };
        let now = self.clock.now();
        let downloads = self
            .store
            .downloads(Some(card_id), None)
            .await?
            .into_iter()
            .map(|d| as_of(d, now))
            .collect::<Result<_, _>>()?;
        Ok(Registry {
            card,
            view,
            applications,
            downloads,
        })
    }
}

/// The request's application must be the application DB's: size, digest and provider.
fn check_matches(request: &DownloadRequest, described: &Application) -> Result<(), ServiceError> {
    let mut differing = Vec::new();
    if request.size != described.size {
        differing.push(format!(
            "size {} (the DB's {})",
            request.size, described.size
        ));
    }
    if request.data_digest != described.digest {
        differing.push("the code digest".to_string());
    }
    if request.provider != described.provider {
        differing.push(format!(
            "provider {} (the DB's {})",
            request.provider, described.provider
        ));
    }
    if differing.is_empty() {
        return Ok(());
    }
    Err(ServiceError::ApplicationMismatch {
        aid: aid_text(&described.aid),
        version: described.version,
        reason: differing.join(", "),
    })
}
