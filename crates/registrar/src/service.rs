//! The registrar's domain operations, free of HTTP and SQL: start-up (self-issue the root once,
//! then insist the database and key agree with the configuration), certify issuers (IRC) or
//! providers (DPR), look certificates up, revoke, and publish CRLs (docs/pki.md profiles); a
//! data registrar also certifies its providers' data (SDCI', SPEC STO-5).

use std::sync::Arc;

use crypto::{Digest, SigningKey, VerifyingKey};
use pki::{Certificate, CertificateRequest, Crl, PartyId, PkiError, Role, UnixTime};
use protocol::{CertifiedData, Operation, PartyRole, Sdi, SignedObject};
use server_kit::Clock;

use crate::store::{
    CertificateRecord, Certification, CrlRecord, CrlSigner, Identity, Revocation, RevocationRecord,
    RevokeOutcome, Store, StoreError,
};

/// The root certificate's serial; issued certificates get 2, 3, … from the store.
pub const ROOT_SERIAL: u64 = 1;

const DAY: u64 = 24 * 60 * 60;
const YEAR: u64 = 365 * DAY;

/// Which registrar this is (SPEC §1): the Issuer Registrar certifies issuers, the Data
/// Registrar providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrarRole {
    IssuerRegistrar,
    DataRegistrar,
}

impl RegistrarRole {
    /// The role of this registrar's root certificate.
    pub fn root_role(self) -> Role {
        match self {
            RegistrarRole::IssuerRegistrar => Role::IssuerRegistrar,
            RegistrarRole::DataRegistrar => Role::DataRegistrar,
        }
    }

    /// The role of the certificates it issues: IRC (issuer) or DPR (provider).
    pub fn subject_role(self) -> Role {
        match self {
            RegistrarRole::IssuerRegistrar => Role::Issuer,
            RegistrarRole::DataRegistrar => Role::Provider,
        }
    }

    /// `issuer_registrar` or `data_registrar` (API and database spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrarRole::IssuerRegistrar => "issuer_registrar",
            RegistrarRole::DataRegistrar => "data_registrar",
        }
    }

    pub fn parse(text: &str) -> Option<RegistrarRole> {
        match text {
            "issuer_registrar" => Some(RegistrarRole::IssuerRegistrar),
            "data_registrar" => Some(RegistrarRole::DataRegistrar),
            _ => None,
        }
    }
}

pub use pki::RevocationReason;

/// Validity periods the registrar applies (docs/pki.md's suggestions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub root_secs: u64,
    /// Default lifetime of an IRC/DPR when the request names no `not_after`.
    pub certificate_secs: u64,
    /// thisUpdate → nextUpdate of each CRL; a CRL is re-signed (next number) once half of it
    /// has passed, so relying parties always find a fresh one.
    pub crl_secs: u64,
}

impl Default for Validity {
    fn default() -> Validity {
        Validity {
            root_secs: 20 * YEAR,
            certificate_secs: 3 * YEAR,
            crl_secs: 7 * DAY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("certificate or CRL operation failed: {0}")]
    Pki(#[from] PkiError),

    /// The database belongs to another registrar (role or party ID differ).
    #[error(
        "the database belongs to {stored_role} {stored_party}, not {configured_role} {configured_party}"
    )]
    IdentityMismatch {
        stored_role: &'static str,
        stored_party: PartyId,
        configured_role: &'static str,
        configured_party: PartyId,
    },

    /// The root in the database certifies another key than the configured key file's.
    #[error("the root certificate of {party} in the database is not for the configured root key")]
    RootKeyMismatch { party: PartyId },

    #[error("no certificate with serial {serial} was issued here")]
    UnknownCertificate { serial: u64 },

    /// `not_after` must be after now and no later than the root's.
    #[error("not_after {not_after} is outside ({now}, {root_not_after}]")]
    InvalidNotAfter {
        not_after: UnixTime,
        now: UnixTime,
        root_not_after: UnixTime,
    },

    /// A registrar does not certify a party under its own name: chains would be ambiguous.
    #[error("subject {subject} is the registrar's own party ID")]
    SubjectIsRegistrar { subject: PartyId },

    /// Only the Data Registrar certifies data (SDCI').
    #[error("{party} is an issuer registrar: only a data registrar certifies data")]
    NotADataRegistrar { party: PartyId },

    /// Data is certified for providers only (an issuer's request cannot even be authenticated
    /// here; this guards the rule itself).
    #[error("{caller} calls as an issuer: only providers have data certified")]
    CallerNotProvider { caller: PartyId },

    /// A provider has only its own items certified.
    #[error("the SDI names {owner} as the item's owner, not the caller {caller}")]
    CallerNotOwner { caller: PartyId, owner: PartyId },

    /// A delete carries no data to certify.
    #[error("the SDI is a {operation:?}: only a store carries data to certify")]
    NotAStore { operation: Operation },

    /// The data is not what the SDI describes.
    #[error(
        "the data ({size} bytes, SHA-256 {digest}) is not what the SDI describes \
         ({expected_size} bytes, SHA-256 {expected_digest})"
    )]
    DataMismatch {
        size: usize,
        digest: String,
        expected_size: u32,
        expected_digest: String,
    },
}

/// What a revocation request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationResult {
    pub serial: u64,
    /// The revocation as recorded: this request's, or the earlier one's when repeated.
    pub revocation: RevocationRecord,
    /// Whether this request revoked it (false: it was already revoked).
    pub newly_revoked: bool,
    /// The CRL number that lists the certificate (the current one when repeated).
    pub crl_number: u64,
}

/// A running registrar: its identity, key and store.
pub struct Registrar {
    store: Arc<dyn Store>,
    role: RegistrarRole,
    party_id: PartyId,
    key: SigningKey,
    root: Certificate,
    clock: Arc<dyn Clock>,
    validity: Validity,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("role", &self.role)
            .field("party_id", &self.party_id)
            .field("root_serial", &self.root.serial())
            .finish_non_exhaustive()
    }
}

/// Signs CRLs with the root key at one instant.
struct RootCrlSigner<'a> {
    root: &'a Certificate,
    key: &'a SigningKey,
    now: UnixTime,
    validity_secs: u64,
}

impl CrlSigner for RootCrlSigner<'_> {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, PkiError> {
        let next_update = UnixTime(self.now.0.saturating_add(self.validity_secs));
        let crl = pki::issue_crl(self.root, self.key, number, self.now, next_update, revoked)?;
        Ok(CrlRecord {
            number,
            this_update: self.now,
            next_update,
            der: crl.der().to_vec(),
        })
    }
}

impl Registrar {
    /// Starts the registrar on `store`: on an empty database, self-issues the root with `key`
    /// and publishes CRL 1; otherwise checks that the stored identity is `role`/`party_id` and
    /// the stored root certifies `key`. Several instances may start at once.
    pub async fn start(
        store: Arc<dyn Store>,
        role: RegistrarRole,
        party_id: PartyId,
        key: SigningKey,
        clock: Arc<dyn Clock>,
        validity: Validity,
    ) -> Result<Registrar, ServiceError> {
        let now = clock.now();
        let identity = match store.identity().await? {
            Some(identity) => identity,
            None => {
                let not_after = UnixTime(now.0.saturating_add(validity.root_secs));
                let root = pki::issue_root(
                    role.root_role(),
                    &party_id,
                    &key,
                    ROOT_SERIAL,
                    now,
                    not_after,
                )?;
                let signer = RootCrlSigner {
                    root: &root,
                    key: &key,
                    now,
                    validity_secs: validity.crl_secs,
                };
                let ours = Identity {
                    role,
                    party_id: party_id.clone(),
                    root_der: root.der().to_vec(),
                };
                store.initialise(&ours, &signer).await?
            }
        };
        if identity.role != role || identity.party_id != party_id {
            return Err(ServiceError::IdentityMismatch {
                stored_role: identity.role.as_str(),
                stored_party: identity.party_id,
                configured_role: role.as_str(),
                configured_party: party_id,
            });
        }
        let root = Certificate::from_der(&identity.root_der)?;
        if root.public_key() != key.verifying_key() {
            return Err(ServiceError::RootKeyMismatch { party: party_id });
        }
        Ok(Registrar {
            store,
            role,
            party_id,
            key,
            root,
            clock,
            validity,
        })
    }

    pub fn role(&self) -> RegistrarRole {
        self.role
    }

    pub fn party_id(&self) -> &PartyId {
        &self.party_id
    }

    /// The self-issued root certificate: the trust anchor for what this registrar issues.
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn crl_signer(&self, now: UnixTime) -> RootCrlSigner<'_> {
        RootCrlSigner {
            root: &self.root,
            key: &self.key,
            now,
            validity_secs: self.validity.crl_secs,
        }
    }

    /// Certifies `public_key` as `subject` (an IRC or a DPR, by this registrar's role), valid
    /// from now until `not_after` (default: now + [`Validity::certificate_secs`], capped at the
    /// root's end), under a fresh serial.
    pub async fn issue(
        &self,
        subject: PartyId,
        public_key: VerifyingKey,
        not_after: Option<UnixTime>,
    ) -> Result<CertificateRecord, ServiceError> {
        if subject == self.party_id {
            return Err(ServiceError::SubjectIsRegistrar { subject });
        }
        let now = self.clock.now();
        let root_not_after = self.root.not_after();
        let not_after = not_after.unwrap_or_else(|| {
            UnixTime(now.0.saturating_add(self.validity.certificate_secs)).min(root_not_after)
        });
        if not_after <= now || not_after > root_not_after {
            return Err(ServiceError::InvalidNotAfter {
                not_after,
                now,
                root_not_after,
            });
        }
        let serial = self.store.next_serial().await?;
        let request = CertificateRequest::party(
            self.role.subject_role(),
            subject.clone(),
            public_key,
            serial,
            now,
            not_after,
        );
        let certificate = pki::issue(&request, &self.root, &self.key)?;
        let record = CertificateRecord {
            serial,
            subject,
            role: self.role.subject_role(),
            not_before: now,
            not_after,
            issued_at: now,
            der: certificate.der().to_vec(),
            revocation: None,
        };
        self.store.insert_certificate(&record).await?;
        Ok(record)
    }

    pub async fn certificate(&self, serial: u64) -> Result<CertificateRecord, ServiceError> {
        self.store
            .certificate(serial)
            .await?
            .ok_or(ServiceError::UnknownCertificate { serial })
    }

    pub async fn certificates(
        &self,
        subject: Option<&PartyId>,
    ) -> Result<Vec<CertificateRecord>, ServiceError> {
        Ok(self.store.certificates(subject).await?)
    }

    /// Revokes certificate `serial` and publishes a CRL listing it; repeating it changes
    /// nothing and reports the first revocation.
    pub async fn revoke(
        &self,
        serial: u64,
        reason: RevocationReason,
    ) -> Result<RevocationResult, ServiceError> {
        let now = self.clock.now();
        let revocation = Revocation {
            serial,
            reason,
            revoked_at: now,
        };
        match self
            .store
            .revoke(&revocation, &self.crl_signer(now))
            .await?
        {
            RevokeOutcome::Revoked { crl } => Ok(RevocationResult {
                serial,
                revocation: RevocationRecord {
                    reason,
                    revoked_at: now,
                },
                newly_revoked: true,
                crl_number: crl.number,
            }),
            RevokeOutcome::AlreadyRevoked { existing } => Ok(RevocationResult {
                serial,
                revocation: existing,
                newly_revoked: false,
                crl_number: self.store.current_crl().await?.number,
            }),
            RevokeOutcome::UnknownCertificate => Err(ServiceError::UnknownCertificate { serial }),
        }
    }

    /// The current CRL, re-signed under the next number first when half its validity has
    /// passed.
    pub async fn crl(&self) -> Result<CrlRecord, ServiceError> {
        let now = self.clock.now();
        let current = self.store.current_crl().await?;
        let refresh_at = current
            .this_update
            .0
            .saturating_add(self.validity.crl_secs / 2);
        if now.0 < refresh_at {
            return Ok(current);
        }
        Ok(self
            .store
            .reissue_crl(current.number, &self.crl_signer(now))
            .await?)
    }

    /// The latest CRL published, as it was published (never re-signed here): what party
    /// requests to this registrar are checked against, so a revocation committed by any
    /// instance refuses the certificate's requests from then on.
    pub async fn published_crl(&self) -> Result<Crl, ServiceError> {
        Ok(Crl::from_der(&self.store.current_crl().await?.der)?)
    }

    /// SDCI' (SPEC STO-5): certifies that `data` is the data `sdi` describes, for the provider
    /// `caller` whose party request (authenticated by its DPR from this registrar) asked. The
    /// SDI must be a store of an item `caller` owns, and `data` must have the SDI's size and
    /// SHA-256. Signed by the root key under purpose `RegistrarCertifiedData` with no chain
    /// (cards hold the root as their data anchor) and recorded.
    pub async fn certify_data(
        &self,
        caller_role: PartyRole,
        caller: &PartyId,
        sdi: &Sdi,
        data: &[u8],
    ) -> Result<SignedObject, ServiceError> {
        if self.role != RegistrarRole::DataRegistrar {
            return Err(ServiceError::NotADataRegistrar {
                party: self.party_id.clone(),
            });
        }
        if caller_role != PartyRole::Provider {
            return Err(ServiceError::CallerNotProvider {
                caller: caller.clone(),
            });
        }
        if sdi.owner != *caller {
            return Err(ServiceError::CallerNotOwner {
                caller: caller.clone(),
                owner: sdi.owner.clone(),
            });
        }
        if sdi.operation != Operation::Store {
            return Err(ServiceError::NotAStore {
                operation: sdi.operation,
            });
        }
        let digest = crypto::sha256(data);
        let size_matches = u32::try_from(data.len()).is_ok_and(|size| size == sdi.size);
        if !size_matches || digest != sdi.data_digest {
            return Err(ServiceError::DataMismatch {
                size: data.len(),
                digest: hex_digest(&digest),
                expected_size: sdi.size,
                expected_digest: hex_digest(&sdi.data_digest),
            });
        }
        let certified = CertifiedData::for_sdi(sdi);
        let sdci = certified.sign_as_registrar(&self.key);
        self.store
            .record_certification(&Certification {
                sdi_digest: certified.sdi_digest,
                provider: caller.clone(),
                data_digest: certified.data_digest,
                certified_at: self.clock.now(),
            })
            .await?;
        Ok(sdci)
    }
}

fn hex_digest(digest: &Digest) -> String {
    hex::encode(digest.0)
}
