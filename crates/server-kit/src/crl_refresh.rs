//! Keeping the registrars' CRLs current in a running server (docs/parties.md, "server-kit"):
//! fetch `GET {registrar}/v1/crl` from each registrar, keep a CRL only if it parses, verifies
//! under that registrar's root and is not older (by CRL number) than the one last taken from
//! it, and hand the whole current set to the server whenever it changes. A registrar that is
//! unreachable or answers garbage changes nothing: its last good CRL stays in force, the
//! failure is logged. [`fetch_crls_once`] is the strict variant for start-up. [`HeldCrls`] keeps
//! the newest CRL per signer next to the files' CRLs, for servers that take CRLs several ways.

use std::time::Duration;

use party_api::registrar::RegistrarClient;
use party_api::{ClientError, HttpClient};
use pki::{Certificate, Crl, PartyId, PkiError};

/// One registrar whose CRLs a server follows.
#[derive(Debug, Clone)]
pub struct CrlSource {
    /// The registrar's base URL (`http://host:port` or `https://…`).
    pub url: String,
    /// That registrar's root: its CRLs must verify under it.
    pub anchor: Certificate,
    /// For an `https://` URL: the PEM certificates to trust for the registrar's TLS server
    /// (there is no default trust store).
    pub tls_roots_pem: Option<Vec<u8>>,
}

impl CrlSource {
    pub fn new(url: impl Into<String>, anchor: Certificate) -> CrlSource {
        CrlSource {
            url: url.into(),
            anchor,
            tls_roots_pem: None,
        }
    }

    pub fn with_tls_roots_pem(mut self, pem: Vec<u8>) -> CrlSource {
        self.tls_roots_pem = Some(pem);
        self
    }

    fn client(&self) -> Result<RegistrarClient, ClientError> {
        let http = HttpClient::with_optional_roots(&self.url, self.tls_roots_pem.as_deref())?;
        Ok(RegistrarClient::new(http))
    }
}

/// Why a registrar's CRL could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CrlRefreshError {
    /// Unreachable, refused, or an answer that is not a CRL.
    #[error("fetching the CRL of {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: ClientError,
    },

    /// A CRL that its registrar's root did not sign.
    #[error("CRL {number} from {url} does not verify under the root of {registrar}: {source}")]
    Unverified {
        url: String,
        number: u64,
        registrar: PartyId,
        #[source]
        source: PkiError,
    },
}

/// Fetches the current CRL of `source` and verifies it under the source's root.
pub async fn fetch_crl(source: &CrlSource) -> Result<Crl, CrlRefreshError> {
    let fetch = |source_error| CrlRefreshError::Fetch {
        url: source.url.clone(),
        source: source_error,
    };
    let crl = source
        .client()
        .map_err(fetch)?
        .current_crl()
        .await
        .map_err(fetch)?;
    crl.verify_signed_by(&source.anchor)
        .map_err(|e| CrlRefreshError::Unverified {
            url: source.url.clone(),
            number: crl.number(),
            registrar: source.anchor.subject_id().clone(),
            source: e,
        })?;
    Ok(crl)
}

/// Fetches every source's CRL once, in order; the first failure fails it all. For start-up,
/// where a server should rather not run without its registrars' revocations.
pub async fn fetch_crls_once(sources: &[CrlSource]) -> Result<Vec<Crl>, CrlRefreshError> {
    let mut crls = Vec::with_capacity(sources.len());
    for source in sources {
        crls.push(fetch_crl(source).await?);
    }
    Ok(crls)
}

/// The state of a refresh: the last CRL taken from each source.
#[derive(Debug, Clone)]
pub struct CrlRefresh {
    sources: Vec<CrlSource>,
    taken: Vec<Option<Crl>>,
}

impl CrlRefresh {
    /// A refresh that has taken nothing yet.
    pub fn new(sources: Vec<CrlSource>) -> CrlRefresh {
        let taken = vec![None; sources.len()];
        CrlRefresh { sources, taken }
    }

    /// The CRLs taken so far, one per source that ever answered well, in source order.
    pub fn current(&self) -> Vec<Crl> {
        self.taken.iter().flatten().cloned().collect()
    }

    /// Fetches every source once. Returns the new full set when a source published a newer CRL
    /// (or its first), `None` when nothing changed. Failures and CRLs older than the one taken
    /// are logged and leave that source's CRL as it was.
    pub async fn refresh(&mut self) -> Option<Vec<Crl>> {
        let mut changed = false;
        for (source, taken) in self.sources.iter().zip(self.taken.iter_mut()) {
            let crl = match fetch_crl(source).await {
                Ok(crl) => crl,
                Err(error) => {
                    tracing::warn!(
                        url = %source.url,
                        error = %error,
                        "CRL refresh failed; the last good CRL stays in force"
                    );
                    continue;
                }
            };
            match taken {
                Some(old) if crl.number() < old.number() => {
                    tracing::warn!(
                        url = %source.url,
                        number = crl.number(),
                        held = old.number(),
                        "the registrar served an older CRL than the one held; ignored"
                    );
                }
                Some(old) if crl.number() == old.number() => {}
                _ => {
                    tracing::info!(
                        url = %source.url,
                        number = crl.number(),
                        revoked = crl.revoked().len(),
                        "new CRL taken"
                    );
                    *taken = Some(crl);
                    changed = true;
                }
            }
        }
        changed.then(|| self.current())
    }
}

/// Refreshes the CRLs of `sources` now and then every `every`, calling `apply` with the full
/// current set (one CRL per source that has answered well, in source order) whenever it
/// changes. Never panics and never ends on its own: abort the handle to stop it. Typically
/// `apply` is `move |crls| trust.set_crls(crls)` (plus any CRLs the server holds from files).
pub fn spawn_crl_refresh(
    sources: Vec<CrlSource>,
    every: Duration,
    apply: impl Fn(Vec<Crl>) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut refresh = CrlRefresh::new(sources);
        // A zero period would make `interval` panic; a millisecond is as eager as it gets.
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Some(crls) = refresh.refresh().await {
                apply(crls);
            }
        }
    })
}

impl CrlRefreshError {
    /// Whether the source answered at all (with a refusal, or with something that is not a CRL
    /// under its root), as opposed to not being reachable.
    pub fn answered(&self) -> bool {
        match self {
            CrlRefreshError::Fetch { source, .. } => matches!(
                source,
                ClientError::Refused { .. } | ClientError::InvalidResponse { .. }
            ),
            CrlRefreshError::Unverified { .. } => true,
        }
    }
}

/// Which of the two registrars a followed one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrarKind {
    /// Certifies issuers (IRCs): its CRL revokes issuers, and so their SARs, delegations and
    /// the RCs they signed.
    IssuerRegistrar,
    /// Certifies providers (DPRs).
    DataRegistrar,
}

impl std::fmt::Display for RegistrarKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegistrarKind::IssuerRegistrar => "Issuer Registrar",
            RegistrarKind::DataRegistrar => "Data Registrar",
        })
    }
}

/// A registrar a server follows: which one, and where and under which root its CRLs are.
#[derive(Debug, Clone)]
pub struct FollowedRegistrar {
    pub kind: RegistrarKind,
    pub source: CrlSource,
}

impl FollowedRegistrar {
    /// The registrar's party ID (its root's subject).
    pub fn party_id(&self) -> &PartyId {
        self.source.anchor.subject_id()
    }

    /// Whether this registrar's root signed `crl` (by name and key identifier; the signature
    /// was checked when the CRL was fetched).
    pub fn signed(&self, crl: &Crl) -> bool {
        crl.issuer_id() == self.source.anchor.subject_id()
            && crl.authority_key_id() == self.source.anchor.subject_key_id()
    }
}

/// One registrar whose CRL could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("the {kind} {registrar}: {source}")]
pub struct RegistrarFailure {
    pub kind: RegistrarKind,
    pub registrar: PartyId,
    #[source]
    pub source: CrlRefreshError,
}

impl RegistrarFailure {
    /// Whether the registrar answered at all (with a refusal, or with something that is not a
    /// CRL under its root), as opposed to not being reachable.
    pub fn answered(&self) -> bool {
        self.source.answered()
    }
}

/// Where a CRL in force at a server stands among those [`HeldCrls`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldOrigin {
    /// One of the configured CRL files.
    File,
    /// The newest taken from its signer (the server says which source that is).
    Taken,
    /// Neither: set on the server some other way.
    Other,
}

/// The CRLs a server holds: those of its configured files, always in force, and the newest one
/// (by CRL number) taken from each signer. [`HeldCrls::take`] hands files + newest to the
/// server under one lock, so two takers (a background refresh and an operator's) can never
/// put an older CRL back in force, and a source failing once never drops what it gave before.
#[derive(Debug)]
pub struct HeldCrls {
    files: Vec<Crl>,
    newest: std::sync::Mutex<Vec<Crl>>,
}

impl HeldCrls {
    /// Holds `files` (the CRLs of the configured files) and nothing taken yet.
    pub fn new(files: Vec<Crl>) -> HeldCrls {
        HeldCrls {
            files,
            newest: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The CRLs of the configured files.
    pub fn files(&self) -> &[Crl] {
        &self.files
    }

    /// Takes CRLs fetched (and verified): each replaces the one held from its signer (by name
    /// and key identifier) only if its number is higher. When anything changed, calls `apply`
    /// with the files' CRLs and the newest of each signer, still under the lock. Returns
    /// whether anything changed.
    pub fn take(&self, crls: Vec<Crl>, apply: impl FnOnce(Vec<Crl>)) -> bool {
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        for crl in crls {
            let same_signer = |held: &Crl| {
                held.issuer_id() == crl.issuer_id()
                    && held.authority_key_id() == crl.authority_key_id()
            };
            match newest.iter_mut().find(|held| same_signer(held)) {
                Some(held) if held.number() >= crl.number() => {}
                Some(held) => {
                    *held = crl;
                    changed = true;
                }
                None => {
                    newest.push(crl);
                    changed = true;
                }
            }
        }
        if changed {
            // Under the lock: two takers cannot set their sets in the wrong order.
            let mut all = self.files.clone();
            all.extend(newest.iter().cloned());
            apply(all);
        }
        changed
    }

    /// Says for each CRL in force (as the server lists them) whether it is a file's, the newest
    /// taken from its signer, or neither, against one snapshot of what is held.
    pub fn classify(&self, in_force: Vec<Crl>) -> Vec<(Crl, HeldOrigin)> {
        let newest = self
            .newest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        in_force
            .into_iter()
            .map(|crl| {
                let origin = if self.files.contains(&crl) {
                    HeldOrigin::File
                } else if newest.contains(&crl) {
                    HeldOrigin::Taken
                } else {
                    HeldOrigin::Other
                };
                (crl, origin)
            })
            .collect()
    }
}
