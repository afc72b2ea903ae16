//! The registrar's persistence boundary: the [`Store`] trait, the records it keeps, and its
//! error. Every multi-row change is one transaction; serials and CRL numbers are allocated
//! inside the database so several instances on one PostgreSQL never reuse one.
//! The implementation for both backends is `store/sql.rs`.

mod sql;

use async_trait::async_trait;
use crypto::Digest;
use pki::{PartyId, PkiError, Role, UnixTime};

use crate::service::{RegistrarRole, RevocationReason};

pub use sql::{SqlStore, MIGRATIONS};

/// Who this registrar is: written once, on the first start against an empty database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub role: RegistrarRole,
    pub party_id: PartyId,
    /// DER of the self-issued root certificate.
    pub root_der: Vec<u8>,
}

/// A certificate the registrar issued, with its revocation if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    pub serial: u64,
    pub subject: PartyId,
    /// `Issuer` (IRC) or `Provider` (DPR).
    pub role: Role,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub issued_at: UnixTime,
    pub der: Vec<u8>,
    /// Ignored by [`Store::insert_certificate`]: revocations are recorded by [`Store::revoke`].
    pub revocation: Option<RevocationRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationRecord {
    pub reason: RevocationReason,
    pub revoked_at: UnixTime,
}

/// A revocation to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub serial: u64,
    pub reason: RevocationReason,
    pub revoked_at: UnixTime,
}

/// A published CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub number: u64,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub der: Vec<u8>,
}

/// One SDCI' signed (SPEC STO-5): for which SDI and data, at whose request, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    /// SHA-256 of the SDI's DER.
    pub sdi_digest: Digest,
    /// The provider that asked (the SDI's owner).
    pub provider: PartyId,
    /// SHA-256 of the data certified.
    pub data_digest: Digest,
    pub certified_at: UnixTime,
}

/// What [`Store::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Recorded now; `crl` is the CRL published in the same transaction.
    Revoked { crl: CrlRecord },
    /// The certificate was revoked before; nothing changed.
    AlreadyRevoked { existing: RevocationRecord },
    /// No certificate with that serial was issued here; nothing changed.
    UnknownCertificate,
}

/// Signs CRL `number` over `revoked` (every revoked serial, ascending). Called by the store
/// inside the transaction that allocated `number`, so what it returns is exactly what gets
/// published under that number.
pub trait CrlSigner: Send + Sync {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, PkiError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A value read from the database is not one we write: a hand edit or another program.
    #[error("stored {what} is invalid: {value:?}")]
    Corrupt { what: &'static str, value: String },

    /// A number too large for the database's signed 64-bit integers.
    #[error("{what} {value} does not fit the database")]
    OutOfRange { what: &'static str, value: u64 },

    #[error("a certificate with serial {serial} is already recorded")]
    DuplicateSerial { serial: u64 },

    /// CRLs or serials were asked for before [`Store::initialise`].
    #[error("the registrar's database has no identity yet")]
    NotInitialised,

    #[error("signing CRL {number} failed: {source}")]
    CrlSigning {
        number: u64,
        #[source]
        source: PkiError,
    },
}

/// The registrar's state. Implementations must make each method atomic and safe to call
/// concurrently from several processes on one database.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The identity, once [`Store::initialise`] has run.
    async fn identity(&self) -> Result<Option<Identity>, StoreError>;

    /// Records `identity` and CRL 1 (empty, from `signer`) unless an identity is already
    /// there; returns the stored identity either way (the caller checks it is its own).
    async fn initialise(
        &self,
        identity: &Identity,
        signer: &dyn CrlSigner,
    ) -> Result<Identity, StoreError>;

    /// A serial never returned before (2, 3, …; 1 is the root's).
    async fn next_serial(&self) -> Result<u64, StoreError>;

    /// Records an issued certificate; its serial must come from [`Store::next_serial`].
    async fn insert_certificate(&self, certificate: &CertificateRecord) -> Result<(), StoreError>;

    async fn certificate(&self, serial: u64) -> Result<Option<CertificateRecord>, StoreError>;

    /// Certificates by ascending serial, all or those of `subject`.
    async fn certificates(
        &self,
        subject: Option<&PartyId>,
    ) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Records `revocation` and publishes the next CRL in one transaction; idempotent.
    async fn revoke(
        &self,
        revocation: &Revocation,
        signer: &dyn CrlSigner,
    ) -> Result<RevokeOutcome, StoreError>;

    /// The CRL with the highest number.
    async fn current_crl(&self) -> Result<CrlRecord, StoreError>;

    /// Publishes CRL `replacing + 1` (same revocations, fresh times) if `replacing` is still
    /// the current number; otherwise someone else already did and the current CRL is returned.
    async fn reissue_crl(
        &self,
        replacing: u64,
        signer: &dyn CrlSigner,
    ) -> Result<CrlRecord, StoreError>;

    /// Appends `certification` to the log of SDCI's signed; repeats are recorded again.
    async fn record_certification(&self, certification: &Certification) -> Result<(), StoreError>;

    /// The certifications recorded, oldest first: all, or those `provider` asked for.
    async fn certifications(
        &self,
        provider: Option<&PartyId>,
    ) -> Result<Vec<Certification>, StoreError>;
}
