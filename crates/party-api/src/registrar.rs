//! The registrar's API as a caller sees it (docs/parties.md, "Registrar"): the JSON types of
//! every route (the registrar serialises the same types).

use serde::{Deserialize, Serialize};

/// `GET /v1/root`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootResponse {
    pub party_id: String,
    /// `issuer_registrar` or `data_registrar`.
    pub role: String,
    pub serial: u64,
    pub not_before: u64,
    pub not_after: u64,
    /// DER, hex.
    pub certificate: String,
    pub pem: String,
}

/// `POST /v1/certificates`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The issuer's or provider's party ID.
    pub subject: String,
    /// Its P-256 public key, SEC1 (uncompressed or compressed), hex.
    pub public_key: String,
    /// Unix seconds; default: three years from now (capped at the root's end).
    #[serde(default)]
    pub not_after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevocationBody {
    pub reason: String,
    pub revoked_at: u64,
}

/// A certificate issued here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateResponse {
    pub serial: u64,
    pub subject: String,
    /// `issuer` (IRC) or `provider` (DPR).
    pub role: String,
    pub not_before: u64,
    pub not_after: u64,
    pub issued_at: u64,
    /// DER, hex.
    pub certificate: String,
    pub pem: String,
    pub revocation: Option<RevocationBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateList {
    pub certificates: Vec<CertificateResponse>,
}

/// The query of `GET /v1/certificates`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub subject: Option<String>,
}

/// `POST /v1/revocations`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub serial: u64,
    /// One of `unspecified`, `key_compromise`, `affiliation_changed`, `superseded`,
    /// `cessation_of_operation`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevokeResponse {
    pub serial: u64,
    pub reason: String,
    pub revoked_at: u64,
    /// False when the certificate had been revoked before (the original reason and time are
    /// reported).
    pub newly_revoked: bool,
    /// A CRL number that lists the certificate.
    pub crl_number: u64,
}

/// `GET /v1/crl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlResponse {
    pub number: u64,
    pub this_update: u64,
    pub next_update: u64,
    /// DER, hex.
    pub crl: String,
    pub pem: String,
}
