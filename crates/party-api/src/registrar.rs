//! The registrar's API as a caller sees it (docs/parties.md, "Registrar"): the JSON types of
//! every route (the registrar serialises the same types) and [`RegistrarClient`], which calls
//! them and, where asked, turns the hex DER answers into `pki` and `protocol` values.

use crypto::VerifyingKey;
use pki::{Certificate, Crl, PartyId, UnixTime};
use protocol::{Sdi, SignedObject};
use serde::{Deserialize, Serialize};

use crate::{Auth, ClientError, HttpClient, Method, PartySigner};

// ---- API types --------------------------------------------------------------------------

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

/// `POST /v1/certified-data` (data registrar; a party request from the item's provider).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertifyDataRequest {
    /// DER of the `Sdi` (a store), hex.
    pub sdi: String,
    /// The item's data, hex.
    pub data: String,
}

/// The answer to `POST /v1/certified-data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertifiedDataResponse {
    /// SDCI': DER of a `SignedObject` (purpose `RegistrarCertifiedData`), hex.
    pub sdci: String,
}

// ---- client -------------------------------------------------------------------------------

/// A client of one registrar (either role).
#[derive(Debug, Clone)]
pub struct RegistrarClient {
    http: HttpClient,
}

impl RegistrarClient {
    pub fn new(http: HttpClient) -> RegistrarClient {
        RegistrarClient { http }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `GET /v1/root`.
    pub async fn root(&self) -> Result<RootResponse, ClientError> {
        self.get("/v1/root").await
    }

    /// The registrar's root certificate, parsed: the trust anchor for what it issues. Whether
    /// it is the root the caller expects is the caller's decision (compare it with one it got
    /// out of band).
    pub async fn root_certificate(&self) -> Result<Certificate, ClientError> {
        let root = self.root().await?;
        self.decode(
            Method::Get,
            "/v1/root",
            200,
            "certificate",
            &root.certificate,
            Certificate::from_der,
        )
    }

    /// `POST /v1/certificates` as operator `token`: certifies `public_key` as `subject` (an
    /// IRC or a DPR, by the registrar's role).
    pub async fn issue(
        &self,
        token: &str,
        subject: &PartyId,
        public_key: &VerifyingKey,
        not_after: Option<UnixTime>,
    ) -> Result<CertificateResponse, ClientError> {
        let request = IssueRequest {
            subject: subject.to_string(),
            public_key: hex::encode(public_key.to_sec1()),
            not_after: not_after.map(|t| t.0),
        };
        self.http
            .call(
                Method::Post,
                "/v1/certificates",
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/certificates/{serial}`.
    pub async fn certificate(&self, serial: u64) -> Result<CertificateResponse, ClientError> {
        self.get(&format!("/v1/certificates/{serial}")).await
    }

    /// `GET /v1/certificates[?subject=]`: all certificates issued, or those of `subject`.
    pub async fn certificates(
        &self,
        subject: Option<&PartyId>,
    ) -> Result<CertificateList, ClientError> {
        // Party IDs are [A-Za-z0-9._-]: nothing to escape in a query.
        match subject {
            Some(subject) => {
                self.get(&format!("/v1/certificates?subject={subject}"))
                    .await
            }
            None => self.get("/v1/certificates").await,
        }
    }

    /// `POST /v1/revocations` as operator `token`; `reason` is one of the names
    /// [`RevokeRequest::reason`] lists. Repeating a revocation succeeds with the first one.
    pub async fn revoke(
        &self,
        token: &str,
        serial: u64,
        reason: &str,
    ) -> Result<RevokeResponse, ClientError> {
        let request = RevokeRequest {
            serial,
            reason: reason.to_string(),
        };
        self.http
            .call(
                Method::Post,
                "/v1/revocations",
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/crl`.
    pub async fn crl(&self) -> Result<CrlResponse, ClientError> {
        self.get("/v1/crl").await
    }

    /// The current CRL, parsed, its number checked against the answer's. Its signature is
    /// not checked here: verify it under the registrar's root (`Crl::verify_signed_by`).
    pub async fn current_crl(&self) -> Result<Crl, ClientError> {
        const PATH: &str = "/v1/crl";
        let answer = self.crl().await?;
        let crl = self.decode(Method::Get, PATH, 200, "crl", &answer.crl, Crl::from_der)?;
        if crl.number() != answer.number {
            return Err(self.invalid(
                Method::Get,
                PATH,
                200,
                format!(
                    "number {} is not the CRL's own number {}",
                    answer.number,
                    crl.number()
                ),
            ));
        }
        Ok(crl)
    }

    /// `POST /v1/certified-data` (SPEC STO-5): the Data Registrar `registrar` certifies `data`
    /// as the data `sdi` describes, for the provider `signer` (which must own the item). The
    /// answer is SDCI' (purpose `RegistrarCertifiedData`, signed by the registrar's root key),
    /// to be served as is; `protocol::verify_certified_data` checks it as a card does.
    pub async fn certify_data(
        &self,
        signer: &PartySigner,
        registrar: &PartyId,
        now: UnixTime,
        sdi: &Sdi,
        data: &[u8],
    ) -> Result<SignedObject, ClientError> {
        const PATH: &str = "/v1/certified-data";
        let request = CertifyDataRequest {
            sdi: hex::encode(sdi.to_der()),
            data: hex::encode(data),
        };
        let answer: CertifiedDataResponse = self
            .http
            .call(
                Method::Post,
                PATH,
                Some(&request),
                Auth::Party {
                    signer,
                    audience: registrar,
                    now,
                },
            )
            .await?;
        self.decode(
            Method::Post,
            PATH,
            201,
            "sdci",
            &answer.sdci,
            SignedObject::from_der,
        )
    }

    async fn get<R: serde::de::DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.http
            .call::<(), R>(Method::Get, path, None, Auth::None)
            .await
    }

    /// Decodes the hex DER `field` of the `status` answer to `method path` with `parse`.
    fn decode<T, E: std::fmt::Display>(
        &self,
        method: Method,
        path: &str,
        status: u16,
        field: &str,
        text: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, ClientError> {
        let der = hex::decode(text)
            .map_err(|e| self.invalid(method, path, status, format!("{field} is not hex: {e}")))?;
        parse(&der).map_err(|e| self.invalid(method, path, status, format!("{field}: {e}")))
    }

    /// A 2xx answer whose content is not what the API promises.
    fn invalid(&self, method: Method, path: &str, status: u16, detail: String) -> ClientError {
        ClientError::InvalidResponse {
            method: method.as_str().to_string(),
            url: format!("{}{path}", self.http.base_url()),
            status,
            detail,
        }
    }
}
