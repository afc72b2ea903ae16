//! How the provider reaches its Data Registrar for SDCI' (SPEC STO-5: data certified by the
//! Data Registrar, served by the provider as is): the [`DataRegistrarLink`] the service calls,
//! and its implementation over HTTP ([`HttpDataRegistrar`]) with `party_api`'s
//! `RegistrarClient::certify_data`, each call a party request signed with the provider's key
//! and DPR for the registrar as audience. It only carries objects; verifying the SDCI' that
//! comes back is the service's.

use std::time::Duration;

use async_trait::async_trait;
use party_api::registrar::RegistrarClient;
use party_api::{CallFailure, HttpClient, PartySigner};
use pki::{PartyId, UnixTime};
use protocol::{Sdi, SignedObject};

/// How long one call to the data registrar may take (connect, request, answer).
pub const REGISTRAR_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to the data registrar gave no SDCI'.
#[derive(Debug, thiserror::Error)]
pub enum RegistrarLinkError {
    /// The configured URL cannot be called from here at all (e.g. `https://` without TLS
    /// roots); found when the link is made, so a provider never starts with one.
    #[error("data registrar {registrar} at {url} cannot be called: {detail}")]
    UnusableUrl {
        registrar: PartyId,
        url: String,
        detail: String,
    },

    /// No answer: connection refused, timeout, TLS failure.
    #[error("data registrar {registrar} at {url} cannot be reached: {detail}")]
    Unreachable {
        registrar: PartyId,
        url: String,
        detail: String,
    },

    /// The registrar answered with an error of its own.
    #[error("data registrar {registrar} refused: {status} {code}: {message}")]
    Refused {
        registrar: PartyId,
        status: u16,
        code: String,
        message: String,
    },

    /// The registrar answered 2xx with something that is not an SDCI'.
    #[error("data registrar {registrar} answered with no readable SDCI': {detail}")]
    InvalidAnswer { registrar: PartyId, detail: String },

    /// The request could not be built or signed (a bug here, not the registrar's).
    #[error("cannot build the request to data registrar {registrar}: {detail}")]
    Request { registrar: PartyId, detail: String },
}

/// The provider's way to its data registrar. A trait so the service stays free of HTTP.
#[async_trait]
pub trait DataRegistrarLink: Send + Sync + std::fmt::Debug {
    /// The data registrar's party ID.
    fn registrar(&self) -> &PartyId;

    /// STO-5: asks the registrar to certify `data` as the data `sdi` describes, in a party
    /// request signed at `now`. Returns the SDCI' as received: the caller verifies it.
    async fn certify(
        &self,
        sdi: &Sdi,
        data: &[u8],
        now: UnixTime,
    ) -> Result<SignedObject, RegistrarLinkError>;
}

/// [`DataRegistrarLink`] over HTTP(S): one kept-alive client; an `https://` registrar is
/// trusted by the PEM roots given.
pub struct HttpDataRegistrar {
    signer: PartySigner,
    registrar: PartyId,
    client: RegistrarClient,
}

impl std::fmt::Debug for HttpDataRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDataRegistrar")
            .field("signer", &self.signer)
            .field("registrar", &self.registrar.as_str())
            .field("url", &self.client.http().base_url())
            .finish()
    }
}

impl HttpDataRegistrar {
    /// A link signing as `signer` (the provider, its key and DPR) to `registrar` at `url`;
    /// `tls_roots_pem` are the certificates an `https://` registrar is trusted by (without
    /// them only `http://` works). A URL that cannot be called is refused here.
    pub fn new(
        signer: PartySigner,
        registrar: PartyId,
        url: &str,
        tls_roots_pem: Option<&[u8]>,
    ) -> Result<HttpDataRegistrar, RegistrarLinkError> {
        let http = HttpClient::with_optional_roots(url, tls_roots_pem)
            .map_err(|e| RegistrarLinkError::UnusableUrl {
                registrar: registrar.clone(),
                url: url.to_string(),
                detail: e.into_url_detail(),
            })?
            .with_timeout(REGISTRAR_CALL_TIMEOUT);
        Ok(HttpDataRegistrar {
            signer,
            registrar,
            client: RegistrarClient::new(http),
        })
    }
}

#[async_trait]
impl DataRegistrarLink for HttpDataRegistrar {
    fn registrar(&self) -> &PartyId {
        &self.registrar
    }

    async fn certify(
        &self,
        sdi: &Sdi,
        data: &[u8],
        now: UnixTime,
    ) -> Result<SignedObject, RegistrarLinkError> {
        let registrar = || self.registrar.clone();
        self.client
            .certify_data(&self.signer, &self.registrar, now, sdi, data)
            .await
            .map_err(|e| match e.into_call_failure() {
                CallFailure::Refused {
                    status,
                    code,
                    message,
                } => RegistrarLinkError::Refused {
                    registrar: registrar(),
                    status,
                    code,
                    message,
                },
                CallFailure::InvalidAnswer { detail } => RegistrarLinkError::InvalidAnswer {
                    registrar: registrar(),
                    detail,
                },
                CallFailure::Request { detail } => RegistrarLinkError::Request {
                    registrar: registrar(),
                    detail,
                },
                CallFailure::Unreachable { detail } => RegistrarLinkError::Unreachable {
                    registrar: registrar(),
                    url: self.client.http().base_url().to_string(),
                    detail,
                },
            })
    }
}
