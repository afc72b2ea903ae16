//! How the issuer reaches a provider's server (STO-1: the issuer signs the SAR, the item's
//! provider answers with its SA; issue 4: the download grant, S11, and the member notification,
//! S15): the [`ProviderLink`] the service calls, and its implementation over HTTP
//! ([`HttpProviderLink`]) with `party_api`'s client, each call a party request signed with the
//! issuer's key and IRC for the provider as audience. It only carries objects; verifying the SA
//! that comes back is the service's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use party_api::provider_download::{DownloadGrantRequest, MemberNotification};
use party_api::{Auth, CallFailure, HttpClient, Method, PartySigner};
use pki::{Certificate, PartyId, UnixTime};
use protocol::{OperationId, SignedObject};
use serde::{Deserialize, Serialize};

use crate::store::ProviderUrl;

/// The provider's route the issuer calls on STO-1.
pub const GRANT_PATH: &str = "/v1/authorizations/grant";
/// The provider's route a member notification goes to (S15).
pub const MEMBERS_PATH: &str = "/v1/members";

/// The provider's download grant route for one operation (S11).
pub fn download_grant_path(operation_id: &OperationId) -> String {
    format!("/v1/downloads/{operation_id}/grant")
}
/// How long one call to a provider may take (connect, request, answer).
pub const PROVIDER_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients kept (one per provider URL); past this the cache starts over.
const MAX_CLIENTS: usize = 256;

/// Why a call to a provider gave no SA.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The URL cannot be called from here at all (e.g. `https://` without TLS roots).
    #[error("{url} cannot be called: {detail}")]
    UnusableUrl { url: ProviderUrl, detail: String },

    /// No answer: connection refused, timeout, TLS failure.
    #[error("provider {provider} at {url} cannot be reached: {detail}")]
    Unreachable {
        provider: PartyId,
        url: ProviderUrl,
        detail: String,
    },

    /// The provider answered with an error of its own.
    #[error("provider {provider} refused: {status} {code}: {message}")]
    Refused {
        provider: PartyId,
        status: u16,
        code: String,
        message: String,
    },

    /// The provider answered 2xx with something that is not an SA.
    #[error("provider {provider} answered with no readable SA: {detail}")]
    InvalidAnswer { provider: PartyId, detail: String },

    /// The request could not be built or signed (a bug here, not the provider's).
    #[error("cannot build the request to provider {provider}: {detail}")]
    Request { provider: PartyId, detail: String },
}

/// The issuer's way to its providers' servers. A trait so the service stays free of HTTP.
#[async_trait]
pub trait ProviderLink: Send + Sync + std::fmt::Debug {
    /// Whether `url` can be called from this issuer at all (scheme, TLS roots); says nothing
    /// about whether a server answers there.
    fn check(&self, url: &ProviderUrl) -> Result<(), LinkError>;

    /// STO-1: asks `provider` at `url` for its SA over the issuer's `sar`, in a party request
    /// signed at `now`. Returns the SA as received: the caller verifies it.
    async fn grant(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        sar: &SignedObject,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError>;

    /// S11: asks `provider` at `url` for its SA over the issuer's `sar` on download
    /// `operation_id`, sending the card's signed application and RC along (the provider checks
    /// them itself). Returns the SA as received: the caller verifies it.
    async fn download_grant(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        grant: &DownloadGrant<'_>,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError>;

    /// S15: sends the member `notification` (the same on every attempt) to `provider` at
    /// `url`. `Ok` is its acknowledgment (any 2xx).
    async fn notify_member(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        notification: &MemberNotification,
        now: UnixTime,
    ) -> Result<(), LinkError>;
}

/// What the issuer sends on a download grant (S11).
#[derive(Debug, Clone, Copy)]
pub struct DownloadGrant<'a> {
    pub operation_id: &'a OperationId,
    pub sar: &'a SignedObject,
    pub download_application: &'a SignedObject,
    pub rc: &'a Certificate,
}

/// `POST /v1/authorizations/grant` at a provider: the body.
#[derive(Debug, Serialize)]
struct GrantBody {
    /// The issuer's SAR, hex DER SignedObject.
    sar: String,
}

/// The provider's answer (`{sa, not_after}`); only the SA is read, its own `not_after` counts.
#[derive(Debug, Deserialize)]
struct GrantAnswer {
    /// The provider's SA, hex DER SignedObject.
    sa: String,
}

/// [`ProviderLink`] over HTTP(S): one kept-alive `HttpClient` per provider URL, so repeated
/// calls reuse connections; `https://` providers are trusted by the PEM roots given.
pub struct HttpProviderLink {
    signer: PartySigner,
    tls_roots_pem: Option<Vec<u8>>,
    timeout: Duration,
    clients: Mutex<HashMap<ProviderUrl, HttpClient>>,
}

impl std::fmt::Debug for HttpProviderLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProviderLink")
            .field("signer", &self.signer)
            .field("tls_roots", &self.tls_roots_pem.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpProviderLink {
    /// A link signing as `signer` (the issuer, its key and IRC); `tls_roots_pem` are the
    /// certificates `https://` providers are trusted by (without them only `http://` works).
    pub fn new(signer: PartySigner, tls_roots_pem: Option<Vec<u8>>) -> HttpProviderLink {
        HttpProviderLink {
            signer,
            tls_roots_pem,
            timeout: PROVIDER_CALL_TIMEOUT,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The same link with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpProviderLink {
        self.timeout = timeout;
        self
    }

    /// The cached client of `url`, made on first use.
    fn client(&self, url: &ProviderUrl) -> Result<HttpClient, LinkError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(url) {
            return Ok(client.clone());
        }
        let made = HttpClient::with_optional_roots(url.as_str(), self.tls_roots_pem.as_deref())
            .map_err(|e| LinkError::UnusableUrl {
                url: url.clone(),
                detail: e.into_url_detail(),
            })?
            .with_timeout(self.timeout);
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(url.clone(), made.clone());
        Ok(made)
    }
}

#[async_trait]
impl ProviderLink for HttpProviderLink {
    fn check(&self, url: &ProviderUrl) -> Result<(), LinkError> {
        self.client(url).map(|_| ())
    }

    async fn grant(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        sar: &SignedObject,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError> {
        let body = GrantBody {
            sar: hex::encode(sar.to_der()),
        };
        let answer: GrantAnswer = self.call(provider, url, GRANT_PATH, &body, now).await?;
        sa_of(provider, &answer)
    }

    async fn download_grant(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        grant: &DownloadGrant<'_>,
        now: UnixTime,
    ) -> Result<SignedObject, LinkError> {
        let body = DownloadGrantRequest {
            sar: hex::encode(grant.sar.to_der()),
            download_application: hex::encode(grant.download_application.to_der()),
            rc: hex::encode(grant.rc.der()),
        };
        let path = download_grant_path(grant.operation_id);
        let answer: GrantAnswer = self.call(provider, url, &path, &body, now).await?;
        sa_of(provider, &answer)
    }

    async fn notify_member(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        notification: &MemberNotification,
        now: UnixTime,
    ) -> Result<(), LinkError> {
        // Any 2xx is the acknowledgment: what it says beyond that is the provider's business.
        self.call_raw(provider, url, MEMBERS_PATH, notification, now)
            .await
            .map(drop)
    }
}

impl HttpProviderLink {
    /// `POST path` at `provider`'s `url` as a party request at `now`, the 2xx answer raw.
    async fn call_raw<B: Serialize + Sync>(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        path: &str,
        body: &B,
        now: UnixTime,
    ) -> Result<Vec<u8>, LinkError> {
        let client = self.client(url).map_err(|e| LinkError::Unreachable {
            provider: provider.clone(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let auth = Auth::Party {
            signer: &self.signer,
            audience: provider,
            now,
        };
        client
            .call_raw(Method::Post, path, Some(body), auth)
            .await
            .map(|(_, bytes)| bytes)
            .map_err(|e| link_error(provider, url, e.into_call_failure()))
    }

    /// [`HttpProviderLink::call_raw`] with the answer read as `R`.
    async fn call<B: Serialize + Sync, R: serde::de::DeserializeOwned>(
        &self,
        provider: &PartyId,
        url: &ProviderUrl,
        path: &str,
        body: &B,
        now: UnixTime,
    ) -> Result<R, LinkError> {
        let bytes = self.call_raw(provider, url, path, body, now).await?;
        serde_json::from_slice(&bytes).map_err(|e| LinkError::InvalidAnswer {
            provider: provider.clone(),
            detail: e.to_string(),
        })
    }
}

/// A failed call to `provider` as the issuer reports it.
fn link_error(provider: &PartyId, url: &ProviderUrl, failure: CallFailure) -> LinkError {
    match failure {
        CallFailure::Refused {
            status,
            code,
            message,
        } => LinkError::Refused {
            provider: provider.clone(),
            status,
            code,
            message,
        },
        CallFailure::InvalidAnswer { detail } => LinkError::InvalidAnswer {
            provider: provider.clone(),
            detail,
        },
        CallFailure::Request { detail } => LinkError::Request {
            provider: provider.clone(),
            detail,
        },
        CallFailure::Unreachable { detail } => LinkError::Unreachable {
            provider: provider.clone(),
            url: url.clone(),
            detail,
        },
    }
}

/// The SA in a provider's grant answer.
fn sa_of(provider: &PartyId, answer: &GrantAnswer) -> Result<SignedObject, LinkError> {
    let invalid = |detail: String| LinkError::InvalidAnswer {
        provider: provider.clone(),
        detail,
    };
    let der = hex::decode(&answer.sa).map_err(|e| invalid(format!("sa is not hex: {e}")))?;
    SignedObject::from_der(&der).map_err(|e| invalid(format!("sa: {e}")))
}
