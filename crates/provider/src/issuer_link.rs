//! How the provider reaches the issuers it works with (STO-2: the provider signs the SAR, the
//! card's issuer answers with its SA): the [`IssuerLink`] the service calls, and its
//! implementation over HTTP ([`HttpIssuerLink`]) with `party_api`'s client, each call a party
//! request signed with the provider's key and DPR for the issuer as audience. The issuers and
//! their base URLs are configured (`--issuer ID=URL`); one kept-alive client per issuer. It only
//! carries objects; verifying the SA that comes back is the service's.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use crypto::Digest;
use party_api::issuer_download::ApplicationDescriptor as WireApplication;
use party_api::provider::{GrantRequest, SaResponse};
use party_api::{Auth, CallFailure, ClientError, HttpClient, Method, PartySigner};
use pki::{PartyId, UnixTime};
use protocol::{ItemId, Policy, SignedObject};

/// The issuer's route the provider calls on STO-2.
pub const GRANT_PATH: &str = "/v1/authorizations/grant";
/// The issuer's application DB (APP-1), read when a service is added (APP-2).
pub const APPLICATIONS_PATH: &str = "/v1/applications";
/// How long one call to an issuer may take (connect, request, answer).
pub const ISSUER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to an issuer gave no SA.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The configured URL cannot be called from here at all (e.g. `https://` without TLS
    /// roots); found when the link is made, so a provider never starts with one.
    #[error("issuer {issuer} at {url} cannot be called: {detail}")]
    UnusableUrl {
        issuer: PartyId,
        url: String,
        detail: String,
    },

    /// No answer: connection refused, timeout, TLS failure.
    #[error("issuer {issuer} at {url} cannot be reached: {detail}")]
    Unreachable {
        issuer: PartyId,
        url: String,
        detail: String,
    },

    /// The issuer answered with an error of its own.
    #[error("issuer {issuer} refused: {status} {code}: {message}")]
    Refused {
        issuer: PartyId,
        status: u16,
        code: String,
        message: String,
    },

    /// The issuer answered 2xx with something that is not what was asked (an SA, an
    /// application descriptor).
    #[error("issuer {issuer} answered with nothing readable: {detail}")]
    InvalidAnswer { issuer: PartyId, detail: String },

    /// The request could not be built or signed (a bug here, not the issuer's).
    #[error("cannot build the request to issuer {issuer}: {detail}")]
    Request { issuer: PartyId, detail: String },

    /// The issuer is not one this provider was configured with.
    #[error("issuer {issuer} is not one this provider works with")]
    UnknownIssuer { issuer: PartyId },
}

/// An application of an issuer's application DB, as `GET {issuer}/v1/applications/{aid}
/// ?version=` describes it (without its code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationDescriptor {
    pub aid: ItemId,
    pub version: u32,
    pub size: u32,
    /// SHA-256 of the code.
    pub digest: Digest,
    /// The provider the application belongs to (the SDI's owner).
    pub provider: PartyId,
    pub name: String,
    pub description: String,
    pub policy: Policy,
}

/// The issuer's answer (`party_api::issuer_download`'s type) as a descriptor.
fn descriptor(answer: WireApplication) -> Result<ApplicationDescriptor, String> {
    let aid = hex::decode(&answer.aid)
        .map_err(|e| format!("aid is not hex: {e}"))
        .and_then(|bytes| ItemId::new(&bytes).map_err(|e| format!("aid: {e}")))?;
    let digest = hex::decode(&answer.digest)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .map(Digest)
        .ok_or_else(|| format!("digest {:?} is not 32 bytes of hex", answer.digest))?;
    Ok(ApplicationDescriptor {
        aid,
        version: answer.version,
        size: answer.size,
        digest,
        provider: PartyId::new(&answer.provider).map_err(|e| format!("provider: {e}"))?,
        name: answer.name,
        description: answer.description,
        policy: Policy::from_bits(answer.policy).map_err(|e| format!("policy: {e}"))?,
    })
}

/// The provider's way to its issuers' servers. A trait so the service stays free of HTTP.
#[async_trait]
pub trait IssuerLink: Send + Sync + std::fmt::Debug {
    /// Whether `issuer` is one this provider works with (was configured).
    fn knows(&self, issuer: &PartyId) -> bool;

    /// STO-2: asks `issuer` for its SA over the provider's `sar`, in a party request signed
    /// at `now`. Returns the SA as received: the caller verifies it.
    async fn grant(
        &self,
        issuer: &PartyId,
        sar: &SignedObject,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError>;

    /// APP-2: the application `aid` version `version` of `issuer`'s application DB (a public
    /// read). An issuer's 404 is [`LinkError::Refused`] with its code
    /// (`unknown_application`).
    async fn application(
        &self,
        issuer: &PartyId,
        aid: &ItemId,
        version: u32,
    ) -> Result<ApplicationDescriptor, LinkError>;
}

/// A link to no issuer (a provider configured with none): every STO-2 request is refused as
/// naming an unknown issuer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIssuers;

#[async_trait]
impl IssuerLink for NoIssuers {
    fn knows(&self, _issuer: &PartyId) -> bool {
        false
    }

    async fn grant(
        &self,
        issuer: &PartyId,
        _sar: &SignedObject,
        _now: UnixTime,
    ) -> Result<SignedObject, LinkError> {
        Err(LinkError::UnknownIssuer {
            issuer: issuer.clone(),
        })
    }

    async fn application(
        &self,
        issuer: &PartyId,
        _aid: &ItemId,
        _version: u32,
    ) -> Result<ApplicationDescriptor, LinkError> {
        Err(LinkError::UnknownIssuer {
            issuer: issuer.clone(),
        })
    }
}

/// [`IssuerLink`] over HTTP(S): one kept-alive `HttpClient` per configured issuer, so repeated
/// calls reuse connections; `https://` issuers are trusted by the PEM roots given.
pub struct HttpIssuerLink {
    signer: PartySigner,
    clients: HashMap<PartyId, HttpClient>,
}

impl std::fmt::Debug for HttpIssuerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut issuers: Vec<(&str, &str)> = self
            .clients
            .iter()
            .map(|(id, client)| (id.as_str(), client.base_url()))
            .collect();
        issuers.sort();
        f.debug_struct("HttpIssuerLink")
            .field("signer", &self.signer)
            .field("issuers", &issuers)
            .finish()
    }
}

impl HttpIssuerLink {
    /// A link signing as `signer` (the provider, its key and DPR) to `issuers` (party ID, base
    /// URL); `tls_roots_pem` are the certificates `https://` issuers are trusted by (without
    /// them only `http://` works). A URL that cannot be called is refused here.
    pub fn new(
        signer: PartySigner,
        issuers: &[(PartyId, String)],
        tls_roots_pem: Option<&[u8]>,
    ) -> Result<HttpIssuerLink, LinkError> {
        let mut clients = HashMap::new();
        for (issuer, url) in issuers {
            let client = HttpClient::with_optional_roots(url, tls_roots_pem)
                .map_err(|e| LinkError::UnusableUrl {
                    issuer: issuer.clone(),
                    url: url.clone(),
                    detail: e.into_url_detail(),
                })?
                .with_timeout(ISSUER_CALL_TIMEOUT);
            clients.insert(issuer.clone(), client);
        }
        Ok(HttpIssuerLink { signer, clients })
    }
}

#[async_trait]
impl IssuerLink for HttpIssuerLink {
    fn knows(&self, issuer: &PartyId) -> bool {
        self.clients.contains_key(issuer)
    }

    async fn grant(
        &self,
        issuer: &PartyId,
        sar: &SignedObject,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError> {
        let client = self.client(issuer)?;
        let body = GrantRequest {
            sar: hex::encode(sar.to_der()),
        };
        let auth = Auth::Party {
            signer: &self.signer,
            audience: issuer,
            now,
        };
        let answer: SaResponse = client
            .call(Method::Post, GRANT_PATH, Some(&body), auth)
            .await
            .map_err(|e| link_error(issuer, client, e))?;
        let invalid = |detail: String| LinkError::InvalidAnswer {
            issuer: issuer.clone(),
            detail,
        };
        let der = hex::decode(&answer.sa).map_err(|e| invalid(format!("sa is not hex: {e}")))?;
        SignedObject::from_der(&der).map_err(|e| invalid(format!("sa: {e}")))
    }

    async fn application(
        &self,
        issuer: &PartyId,
        aid: &ItemId,
        version: u32,
    ) -> Result<ApplicationDescriptor, LinkError> {
        let client = self.client(issuer)?;
        let path = format!(
            "{APPLICATIONS_PATH}/{}?version={version}",
            hex::encode(aid.as_bytes())
        );
        let answer: WireApplication = client
            .call::<(), _>(Method::Get, &path, None, Auth::None)
            .await
            .map_err(|e| link_error(issuer, client, e))?;
        descriptor(answer).map_err(|detail| LinkError::InvalidAnswer {
            issuer: issuer.clone(),
            detail,
        })
    }
}

impl HttpIssuerLink {
    fn client(&self, issuer: &PartyId) -> Result<&HttpClient, LinkError> {
        self.clients
            .get(issuer)
            .ok_or_else(|| LinkError::UnknownIssuer {
                issuer: issuer.clone(),
            })
    }
}

/// A failed call to `issuer` (at `client`) as a [`LinkError`].
fn link_error(issuer: &PartyId, client: &HttpClient, error: ClientError) -> LinkError {
    match error.into_call_failure() {
        CallFailure::Refused {
            status,
            code,
            message,
        } => LinkError::Refused {
            issuer: issuer.clone(),
            status,
            code,
            message,
        },
        CallFailure::InvalidAnswer { detail } => LinkError::InvalidAnswer {
            issuer: issuer.clone(),
            detail,
        },
        CallFailure::Request { detail } => LinkError::Request {
            issuer: issuer.clone(),
            detail,
        },
        CallFailure::Unreachable { detail } => LinkError::Unreachable {
            issuer: issuer.clone(),
            url: client.base_url().to_string(),
            detail,
        },
    }
}
