//! Identities and certificates of every party: registrar roots, issuers (IRC), providers (DPR)
//! and cards (RC); revocation lists; chain verification against trust anchors at a given time.
//! No IO: time enters as a [`UnixTime`] value.
//!
//! Certificates are X.509 v3 (RFC 5280) signed with ECDSA P-256/SHA-256 through the `crypto`
//! crate; they verify with `openssl verify`. The profiles, the CRL profile and the chain
//! algorithm are written down in `docs/pki.md`.
//!
//! - [`issue_root`], [`issue`] and [`issue_crl`] make certificates and CRLs;
//! - [`Certificate::from_der`] and [`Crl::from_der`] parse them strictly (our profile only,
//!   canonical DER only);
//! - [`verify_chain`] decides whether a chain is acceptable for a role at a time.

mod certificate;
mod chain;
mod crl;
mod ids;
mod name;
mod oid;
mod profile;
mod time;

pub use certificate::{issue, issue_root, Certificate, CertificateRequest};
pub use chain::{verify_chain, VerifiedChain, MAX_CHAIN_LEN};
pub use crl::{issue_crl, Crl, RevocationReason};
pub use ids::{CardId, PartyId, Role, UnixTime};
pub use oid::CARDWRIGHT_ARC;
pub use profile::KEY_IDENTIFIER_LEN;

/// What went wrong with an identity, a certificate, a CRL or a chain. Variants carry the
/// offending values; `subject`/`issuer` strings are party IDs (for cards, the hex card ID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("party ID {id:?} is not 1..=64 characters of [A-Za-z0-9._-]")]
    InvalidPartyId { id: String },

    /// The bytes are not a certificate or CRL of our profile; `what` names the part.
    #[error("malformed certificate or CRL: {what}")]
    Malformed { what: &'static str },

    /// Encoding a certificate or CRL failed (a value outside what DER/X.509 can carry).
    #[error("cannot encode {what}")]
    Encoding { what: &'static str },

    #[error("certificate of {subject} (serial {serial}) expired at {not_after}, now is {now}")]
    CertificateExpired {
        subject: String,
        serial: u64,
        not_after: UnixTime,
        now: UnixTime,
    },

    #[error("certificate of {subject} (serial {serial}) is valid from {not_before}, now is {now}")]
    CertificateNotYetValid {
        subject: String,
        serial: u64,
        not_before: UnixTime,
        now: UnixTime,
    },

    #[error("certificate of {subject} (serial {serial}) is revoked by CRL number {crl_number}")]
    CertificateRevoked {
        subject: String,
        serial: u64,
        crl_number: u64,
    },

    #[error("certificate of {subject} has role {found:?}, expected {expected:?}")]
    UnexpectedRole {
        subject: String,
        expected: Role,
        found: Role,
    },

    /// No certificate in the chain or among the anchors is named as this issuer.
    #[error("no certificate or trust anchor for issuer {issuer}")]
    UnknownIssuer { issuer: String },

    /// A candidate issuer's name or key identifier is not the one the certificate (or CRL)
    /// names.
    #[error("{subject} names issuer {issuer} (key {issuer_key_id}), not {candidate}")]
    IssuerMismatch {
        subject: String,
        issuer: String,
        issuer_key_id: String,
        candidate: String,
    },

    #[error("signature on the certificate of {subject} (serial {serial}) does not verify")]
    BadSignature { subject: String, serial: u64 },

    #[error("signature on CRL number {crl_number} of {issuer} does not verify")]
    BadCrlSignature { issuer: String, crl_number: u64 },

    /// The profiles do not let a certificate of `issuer_role` certify `subject_role`.
    #[error("a {issuer_role:?} may not issue a certificate for a {subject_role:?}")]
    IssuanceNotAllowed {
        issuer_role: Role,
        subject_role: Role,
    },

    /// Only registrars and issuers sign CRLs.
    #[error("a {issuer_role:?} may not sign a CRL")]
    CrlNotAllowed { issuer_role: Role },

    /// The certificate presented as an issuer is not a CA certificate.
    #[error("certificate of {subject} (serial {serial}) is not a CA certificate")]
    NotACa { subject: String, serial: u64 },

    /// More certificates below a CA than its pathLenConstraint allows, or a chain longer than
    /// [`MAX_CHAIN_LEN`].
    #[error("path of {len} certificates exceeds the limit of {max}")]
    PathTooLong { len: usize, max: usize },

    #[error("empty certificate chain")]
    EmptyChain,

    /// Certificates follow the trust anchor in the chain: the chain is not what it claims.
    #[error("{count} certificate(s) follow the trust anchor {anchor} in the chain")]
    TrailingCertificates { anchor: String, count: usize },

    /// Serial numbers are positive (RFC 5280 §4.1.2.2).
    #[error("serial number {serial} is not positive")]
    InvalidSerial { serial: u64 },

    /// A validity period (or CRL thisUpdate/nextUpdate) that ends before it starts.
    #[error("validity from {not_before} to {not_after} is empty")]
    InvalidValidity {
        not_before: UnixTime,
        not_after: UnixTime,
    },

    /// The request's fields do not fit its role (card fields on a non-card, subject not the
    /// card ID, …).
    #[error("certificate request does not fit its role: {what}")]
    InvalidRequest { what: &'static str },

    /// The signing key given is not the key the issuer's certificate certifies.
    #[error("the signing key is not the key certified for {issuer}")]
    KeyMismatch { issuer: String },
}

impl PkiError {
    /// Shorthand for [`PkiError::Malformed`]: parsers have many rules and one error per rule.
    pub(crate) fn malformed(what: &'static str) -> PkiError {
        PkiError::Malformed { what }
    }
}
