//! The registrars' CRLs as the issuer follows them (SPEC REG-3: a revoked IRC, DPR or RC is
//! refused by every verifier): the CRLs of the configured files, plus the current CRL of each
//! registrar whose URL is configured, fetched at start, every `crl_refresh_every` in the
//! background (`server_kit::spawn_crl_refresh`) and when an operator asks
//! (`POST /v1/crls/refresh`). Whichever way a CRL arrives, the issuer keeps per registrar the
//! newest one (by CRL number) and hands files + newest to [`Issuer::set_crls`], in one place
//! under one lock: the background task and an operator's refresh can never put an older CRL
//! back in force. The fetching itself is server-kit's (through party_api's client).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pki::Crl;
pub use server_kit::{FollowedRegistrar, RegistrarFailure, RegistrarKind};
use server_kit::{HeldCrls, HeldOrigin};
use tokio::task::JoinHandle;

use crate::service::Issuer;

/// Where a CRL the issuer holds came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlOrigin {
    /// One of the configured CRL files.
    File,
    /// Fetched from the registrar at this base URL.
    Registrar { url: String },
    /// Set by a caller of [`Issuer::set_crls`] directly.
    Other,
}

/// A CRL in force at the issuer, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCrl {
    pub crl: Crl,
    pub origin: CrlOrigin,
}

/// Why fetching the registrars' CRLs on demand failed.
#[derive(Debug, thiserror::Error)]
pub enum CrlFetchError {
    #[error(
        "no registrar URLs are configured (issuer registrar URL, data registrar URL): this issuer holds only the CRLs of its files"
    )]
    NoRegistrars,

    /// Some registrars failed; the CRLs of the others were taken.
    #[error("{}", describe(.failures))]
    Failed { failures: Vec<RegistrarFailure> },
}

fn describe(failures: &[RegistrarFailure]) -> String {
    let each: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!(
        "{} (the CRLs held from it stay in force; any other registrar's were taken)",
        each.join("; ")
    )
}

/// The CRLs the issuer follows. Dropping the last reference (the [`crate::App`] and the
/// router's state hold one each) stops the background refresh.
#[derive(Debug)]
pub struct RegistrarCrls {
    issuer: Arc<Issuer>,
    registrars: Vec<FollowedRegistrar>,
    /// The CRLs of the configured files, always in force, and the newest taken from each
    /// signer.
    held: HeldCrls,
    refresh: OnceLock<JoinHandle<()>>,
}

impl RegistrarCrls {
    /// Follows `registrars` for `issuer`, which holds `files` already (its CRLs at start).
    pub fn new(
        issuer: Arc<Issuer>,
        registrars: Vec<FollowedRegistrar>,
        files: Vec<Crl>,
    ) -> Arc<RegistrarCrls> {
        Arc::new(RegistrarCrls {
            issuer,
            registrars,
            held: HeldCrls::new(files),
            refresh: OnceLock::new(),
        })
    }

    pub fn registrars(&self) -> &[FollowedRegistrar] {
        &self.registrars
    }

    /// Fetches every registrar's current CRL now (each verified under that registrar's root)
    /// and puts the ones newer than held in force. Registrars that fail keep their last CRL in
    /// force; the error names them (the others' CRLs are taken all the same).
    pub async fn fetch(&self) -> Result<Vec<HeldCrl>, CrlFetchError> {
        if self.registrars.is_empty() {
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
        self.take(fetched);
        if failures.is_empty() {
            Ok(self.held())
        } else {
            Err(CrlFetchError::Failed { failures })
        }
    }

    /// Takes CRLs fetched (and verified) from the registrars: each replaces the one held from
    /// its registrar only if its number is higher. When anything changed, the issuer gets the
    /// files' CRLs and the newest of each registrar. Returns whether anything changed.
    fn take(&self, crls: Vec<Crl>) -> bool {
        self.held.take(crls, |all| self.issuer.set_crls(all))
    }

    /// The CRLs in force at the issuer now, with where each came from.
    pub fn held(&self) -> Vec<HeldCrl> {
        self.held
            .classify(self.issuer.crls())
            .into_iter()
            .map(|(crl, held)| {
                let origin = match held {
                    HeldOrigin::File => CrlOrigin::File,
                    HeldOrigin::Taken => match self.registrars.iter().find(|r| r.signed(&crl)) {
                        Some(r) => CrlOrigin::Registrar {
                            url: r.source.url.clone(),
                        },
                        None => CrlOrigin::Other,
                    },
                    HeldOrigin::Other => CrlOrigin::Other,
                };
                HeldCrl { crl, origin }
            })
            .collect()
    }

    /// Starts refreshing from the registrars every `every` in the background (first round
    /// now), until [`RegistrarCrls::stop`] or the last reference is dropped. Without
    /// registrars, or when already started, does nothing.
    pub fn follow(self: &Arc<Self>, every: Duration) {
        if self.registrars.is_empty() || self.refresh.get().is_some() {
            return;
        }
        // The task holds only a weak reference: it must not keep the issuer alive itself.
        let weak = Arc::downgrade(self);
        let sources = self.registrars.iter().map(|r| r.source.clone()).collect();
        let task = server_kit::spawn_crl_refresh(sources, every, move |crls| {
            if let Some(this) = weak.upgrade() {
                this.take(crls);
            }
        });
        if let Err(second) = self.refresh.set(task) {
            second.abort();
        }
    }

    /// Stops the background refresh (the CRLs held stay in force).
    pub fn stop(&self) {
        if let Some(task) = self.refresh.get() {
            task.abort();
        }
    }

    /// Whether the background refresh runs.
    pub fn is_following(&self) -> bool {
        self.refresh.get().is_some_and(|task| !task.is_finished())
    }
}

impl Drop for RegistrarCrls {
    fn drop(&mut self) {
        self.stop();
    }
}
