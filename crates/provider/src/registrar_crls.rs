//! The CRLs the provider follows (SPEC REG-3: a revoked IRC, DPR or RC is refused by every
//! verifier): the CRLs of the configured files, plus the current CRL of each registrar whose
//! URL is configured (the Issuer Registrar's, and the Data Registrar's the provider also asks
//! for SDCI') and of each configured issuer (the CRL of the RCs it revoked, signed under its
//! IRC), fetched at start, every `crl_refresh_every` in the background and when an operator
//! asks (`POST /v1/crls/refresh`). Whichever way a CRL arrives, the newest one per signer (by
//! CRL number) is kept and files + newest are handed to [`Provider::set_crls`] (which its
//! `PartyTrust` shares), in one place under one lock: the background task and an operator's
//! refresh can never put an older CRL back in force, and a registrar or issuer failing once
//! never drops the CRL taken from it before.
//!
//! A registrar's CRL must verify under its root (server-kit's `fetch_crl`). An issuer's CRL
//! must verify under its IRC, which the provider asks the issuer for (`GET {url}/v1/issuer`)
//! on every fetch and accepts only for that issuer's party ID and chaining to the Issuer
//! Registrar root with the CRLs held; `pki::verify_chain` then applies it to RC chains like any
//! CA's CRL (it matches CRLs to the certificate's issuer by name and key identifier, so an
//! IRC's CRL revokes that issuer's RCs and nothing else).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use party_api::issuer::IssuerClient;
use party_api::ClientError;
use pki::{Crl, PartyId, PkiError};
pub use server_kit::{FollowedRegistrar, RegistrarFailure, RegistrarKind};
use server_kit::{HeldCrls, HeldOrigin};
use tokio::task::JoinHandle;

use crate::service::Provider;

/// An issuer whose CRL of revoked RCs the provider follows: one of the configured issuers, with
/// a client of its server (the URL was checked when the provider was configured).
#[derive(Debug, Clone)]
pub struct FollowedIssuer {
    pub party_id: PartyId,
    pub client: IssuerClient,
}

impl FollowedIssuer {
    pub fn url(&self) -> &str {
        self.client.http().base_url()
    }
}

/// Where a CRL the provider holds came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlOrigin {
    /// One of the configured CRL files.
    File,
    /// Fetched from the registrar at this base URL.
    Registrar { url: String },
    /// Fetched from the issuer at this base URL (its RCs' revocations).
    Issuer { url: String },
    /// Set by a caller of [`Provider::set_crls`] directly.
    Other,
}

/// A CRL in force at the provider, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCrl {
    pub crl: Crl,
    pub origin: CrlOrigin,
}

/// Why an issuer's CRL could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum IssuerCrlError {
    /// Unreachable, refused, or an answer that does not parse.
    #[error("asking {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: ClientError,
    },

    /// `GET /v1/issuer` answered with an `irc` that is not a certificate.
    #[error("its IRC (GET /v1/issuer) cannot be read: {detail}")]
    UnreadableIrc { detail: String },

    #[error("the IRC it presents is {subject}'s")]
    IrcOfAnother { subject: PartyId },

    /// The IRC does not chain to the Issuer Registrar root now (expired, revoked, another
    /// root): neither it nor a CRL under it is trusted.
    #[error("its IRC is not trusted: {source}")]
    UntrustedIrc {
        #[source]
        source: PkiError,
    },

    #[error("its CRL number {number} does not verify under its IRC: {source}")]
    Unverified {
        number: u64,
        #[source]
        source: PkiError,
    },
}

/// One issuer whose CRL could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("issuer {issuer}: {source}")]
pub struct IssuerFailure {
    pub issuer: PartyId,
    #[source]
    pub source: IssuerCrlError,
}

impl IssuerFailure {
    /// Whether the issuer answered at all (a refusal, or an IRC or CRL not accepted), as
    /// opposed to not being reachable.
    pub fn answered(&self) -> bool {
        match &self.source {
            IssuerCrlError::Fetch { source, .. } => matches!(
                source,
                ClientError::Refused { .. } | ClientError::InvalidResponse { .. }
            ),
            _ => true,
        }
    }
}

/// Why fetching the CRLs on demand failed.
#[derive(Debug, thiserror::Error)]
pub enum CrlFetchError {
    #[error(
        "no registrar URLs (issuer registrar URL, data registrar) and no issuers are configured: this provider holds only the CRLs of its files"
    )]
    NoRegistrars,

    /// Some registrars or issuers failed; the CRLs of the others were taken.
    #[error("{}", describe(.failures, .issuers))]
    Failed {
        failures: Vec<RegistrarFailure>,
        issuers: Vec<IssuerFailure>,
    },
}

fn describe(failures: &[RegistrarFailure], issuers: &[IssuerFailure]) -> String {
    let each: Vec<String> = failures
        .iter()
        .map(ToString::to_string)
        .chain(issuers.iter().map(ToString::to_string))
        .collect();
    format!(
        "{} (the CRLs held from it stay in force; the others' were taken)",
        each.join("; ")
    )
}

/// The CRLs the provider follows. Dropping the last reference (the [`crate::App`] and the
/// router's state hold one each) stops the background refresh.
#[derive(Debug)]
pub struct RegistrarCrls {
    provider: Arc<Provider>,
    registrars: Vec<FollowedRegistrar>,
    issuers: Vec<FollowedIssuer>,
    /// The CRLs of the configured files, always in force, and the newest taken from each
    /// signer.
    held: HeldCrls,
    refresh: OnceLock<JoinHandle<()>>,
    /// Set by [`RegistrarCrls::stop`]: an aborted task finishes only when the runtime next
    /// polls it.
    stopped: AtomicBool,
}

impl RegistrarCrls {
    /// Follows `registrars` and `issuers` for `provider`, putting `files` (the CRLs of the
    /// configured files) in force now.
    pub fn new(
        provider: Arc<Provider>,
        registrars: Vec<FollowedRegistrar>,
        issuers: Vec<FollowedIssuer>,
        files: Vec<Crl>,
    ) -> Arc<RegistrarCrls> {
        provider.set_crls(files.clone());
        Arc::new(RegistrarCrls {
            provider,
            registrars,
            issuers,
            held: HeldCrls::new(files),
            refresh: OnceLock::new(),
            stopped: AtomicBool::new(false),
        })
    }

    pub fn registrars(&self) -> &[FollowedRegistrar] {
        &self.registrars
    }

    pub fn issuers(&self) -> &[FollowedIssuer] {
        &self.issuers
    }

    /// Fetches every registrar's current CRL now (each verified under that registrar's root),
    /// then every issuer's (each verified under its IRC, itself checked with the registrars'
    /// CRLs just taken), and puts the ones newer than held in force. Those that fail keep their
    /// last CRL in force; the error names them (the others' CRLs are taken all the same).
    pub async fn fetch(&self) -> Result<Vec<HeldCrl>, CrlFetchError> {
        if self.registrars.is_empty() && self.issuers.is_empty() {
            return Err(CrlFetchError::NoRegistrars);
        }
        let mut fetched = Vec::new();
        let mut failures = Vec::new();
        for registrar in &self.registrars {
            match server_kit::fetch_crl(&registrar.source).await {
                Ok(crl) => fetched.push(crl),
                Err(source) => failures.push(RegistrarFailure {
                    kind: registrar.kind,
                    registrar: registrar.party_id().clone(),
                    source,
                }),
            }
        }
        // The registrars' news first: an IRC revoked there must not vouch for its CRL.
        self.take(fetched);
        let mut fetched = Vec::new();
        let mut issuers = Vec::new();
        for issuer in &self.issuers {
            match self.fetch_issuer_crl(issuer).await {
                Ok(crl) => fetched.push(crl),
                Err(source) => issuers.push(IssuerFailure {
                    issuer: issuer.party_id.clone(),
                    source,
                }),
            }
        }
        self.take(fetched);
        if failures.is_empty() && issuers.is_empty() {
            Ok(self.held())
        } else {
            Err(CrlFetchError::Failed { failures, issuers })
        }
    }

    /// The issuer's current CRL of revoked RCs, verified under its IRC, which must be the
    /// issuer's and chain to the Issuer Registrar root now with the CRLs held.
    async fn fetch_issuer_crl(&self, issuer: &FollowedIssuer) -> Result<Crl, IssuerCrlError> {
        let fetch = |source| IssuerCrlError::Fetch {
            url: issuer.url().to_string(),
            source,
        };
        let identity = issuer.client.identity().await.map_err(fetch)?;
        let irc = identity
            .irc_certificate()
            .map_err(|e| IssuerCrlError::UnreadableIrc {
                detail: e.to_string(),
            })?;
        if irc.subject_id() != &issuer.party_id {
            return Err(IssuerCrlError::IrcOfAnother {
                subject: irc.subject_id().clone(),
            });
        }
        self.provider
            .check_irc(&irc)
            .map_err(|source| IssuerCrlError::UntrustedIrc { source })?;
        let crl = issuer.client.current_crl().await.map_err(fetch)?;
        crl.verify_signed_by(&irc)
            .map_err(|source| IssuerCrlError::Unverified {
                number: crl.number(),
                source,
            })?;
        Ok(crl)
    }

    /// Takes CRLs fetched (and verified) from the registrars or issuers: each replaces the one
    /// held from its signer only if its number is higher. When anything changed, the provider gets
    /// the files' CRLs and the newest of each registrar. Returns whether anything changed.
    fn take(&self, crls: Vec<Crl>) -> bool {
        self.held.take(crls, |all| self.provider.set_crls(all))
    }

    /// The CRLs in force at the provider now, with where each came from.
    pub fn held(&self) -> Vec<HeldCrl> {
        self.held
            .classify(self.provider.crls())
            .into_iter()
            .map(|(crl, held)| {
                let origin = match held {
                    HeldOrigin::File => CrlOrigin::File,
                    HeldOrigin::Taken => {
                        let registrar = self.registrars.iter().find(|r| r.signed(&crl));
                        let issuer = self.issuers.iter().find(|i| &i.party_id == crl.issuer_id());
                        match (registrar, issuer) {
                            (Some(r), _) => CrlOrigin::Registrar {
                                url: r.source.url.clone(),
                            },
                            (None, Some(i)) => CrlOrigin::Issuer {
                                url: i.url().to_string(),
                            },
                            (None, None) => CrlOrigin::Other,
                        }
                    }
                    HeldOrigin::Other => CrlOrigin::Other,
                };
                HeldCrl { crl, origin }
            })
            .collect()
    }

    /// Starts refreshing from the registrars and issuers every `every` in the background
    /// (first round now), until [`RegistrarCrls::stop`] or the last reference is dropped.
    /// Without registrars or issuers, when already started, or once stopped, does nothing.
    /// Each round is a [`RegistrarCrls::fetch`] (not server-kit's `spawn_crl_refresh`, whose
    /// sources are fixed: an issuer's CRL verifies under the IRC the issuer presents, asked
    /// for on every round).
    pub fn follow(self: &Arc<Self>, every: Duration) {
        if (self.registrars.is_empty() && self.issuers.is_empty())
            || self.refresh.get().is_some()
            || self.stopped.load(Ordering::SeqCst)
        {
            return;
        }
        // The task holds only a weak reference between rounds: it must not keep the provider
        // alive itself.
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            // A zero period would make `interval` panic; a millisecond is as eager as it gets.
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(error) = this.fetch().await {
                    tracing::warn!(
                        error = %error,
                        "CRL refresh failed; the last good CRLs stay in force"
                    );
                }
            }
        });
        if let Err(second) = self.refresh.set(task) {
            second.abort();
        }
    }

    /// Stops the background refresh (the CRLs held stay in force).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(task) = self.refresh.get() {
            task.abort();
        }
    }

    /// Whether the background refresh runs.
    pub fn is_following(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst)
            && self.refresh.get().is_some_and(|task| !task.is_finished())
    }
}

impl Drop for RegistrarCrls {
    fn drop(&mut self) {
        self.stop();
    }
}
