//! The issuer server (docs/parties.md, "issuer"): its card registry and personalisation
//! records (CARD-3, KEY-1), registration of cards (REG-2: the RC), storing authorizations on
//! both sides (STO-2 SA over a provider's SAR, STO-1 the issuer's own SAR), delegations
//! (STO-3), the cards' receipts into a per-card view and a signed, hash-chained ledger
//! (STO-7, REC-1), and revocation of cards' RCs with a CRL of them signed with its own key
//! (REG-3). Its key is certified by the Issuer Registrar (the IRC).
//!
//! Layout (STYLE): this file holds the configuration and wiring ([`open`], [`router`],
//! [`serve`], [`add_operator`]); `service.rs` the domain operations; `http.rs` the API;
//! `store.rs` the storage trait with one SQL implementation for SQLite and PostgreSQL
//! (`store/sql.rs`); `openapi.rs` the API document; `provider_link.rs` the issuer's calls to
//! providers' servers (STO-1); `registrar_crls.rs` the registrars' CRLs it follows over HTTP
//! (REG-3). The API's JSON types live in `party_api::issuer`, shared with the issuer's callers.

pub mod console;
pub mod download;
mod http;
pub mod notify;
mod openapi;
pub mod provider_link;
pub mod registrar_crls;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use party_api::{HttpClient, PartySigner};
use pki::{Certificate, Crl, PartyId};
use protocol::PartyRole;
use server_kit::{
    Clock, CrlSource, Db, Kit, Listening, Metrics, OperatorToken, SystemClock, TlsFiles,
};

pub use http::AppState;
pub use notify::Notifier;
pub use openapi::document as openapi_document;
pub use provider_link::{HttpProviderLink, LinkError, ProviderLink};
pub use registrar_crls::{
    CrlFetchError, CrlOrigin, FollowedRegistrar, HeldCrl, RegistrarCrls, RegistrarFailure,
    RegistrarKind,
};
pub use service::{
    Caller, CardRevocation, CardState, Consent, IrcRevocation, Issuer, IssuerIdentity,
    Reconciliation, ServiceError, Settings,
};

/// How often the registrars' CRLs are fetched by default.
pub const DEFAULT_CRL_REFRESH: Duration = Duration::from_secs(300);
pub use store::{SqlStore, Store, StoreError};

/// How to run one issuer instance. Instances sharing one database must share the key file.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub party_id: PartyId,
    /// The issuer's PKCS#8 PEM signing key (must exist: the IRC certifies it).
    pub key_file: PathBuf,
    /// The issuer's IRC, DER or PEM.
    pub irc_file: PathBuf,
    /// The Issuer Registrar's root certificate, DER or PEM.
    pub issuer_registrar_root_file: PathBuf,
    /// The Data Registrar's root certificate, DER or PEM.
    pub data_registrar_root_file: PathBuf,
    /// CRLs (DER or PEM) always in force, besides those fetched from the registrars: checked
    /// for the IRC at start (a revoked IRC stops the issuer) and for providers' DPRs on every
    /// grant, delegation and party request.
    pub crl_files: Vec<PathBuf>,
    /// The Issuer Registrar's base URL: its CRL (`GET {url}/v1/crl`, verified under its root)
    /// is fetched at start, every `crl_refresh_every` and on `POST /v1/crls/refresh`. A CRL
    /// revoking the issuer's own IRC makes it refuse to sign (503 `issuer_revoked`).
    pub issuer_registrar_url: Option<String>,
    /// The Data Registrar's base URL: its CRL revokes providers' DPRs.
    pub data_registrar_url: Option<String>,
    /// How often the registrars' CRLs are fetched (default [`DEFAULT_CRL_REFRESH`]).
    pub crl_refresh_every: Duration,
    /// PEM certificates that `https://` registrars' servers are trusted by.
    pub registrar_tls_roots_file: Option<PathBuf>,
    /// PEM certificates that `https://` providers' servers are trusted by (STO-1 forwarding);
    /// without them the issuer calls `http://` providers only.
    pub provider_tls_roots_file: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://…`.
    pub db_url: String,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
}

impl IssuerConfig {
    /// A configuration with the defaults: no TLS, default durations, the system clock.
    pub fn new(
        party_id: PartyId,
        key_file: PathBuf,
        irc_file: PathBuf,
        issuer_registrar_root_file: PathBuf,
        data_registrar_root_file: PathBuf,
        db_url: String,
        listen: SocketAddr,
    ) -> IssuerConfig {
        IssuerConfig {
            party_id,
            key_file,
            irc_file,
            issuer_registrar_root_file,
            data_registrar_root_file,
            crl_files: Vec::new(),
            issuer_registrar_url: None,
            data_registrar_url: None,
            crl_refresh_every: DEFAULT_CRL_REFRESH,
            registrar_tls_roots_file: None,
            provider_tls_roots_file: None,
            db_url,
            listen,
            tls: None,
            settings: Settings::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// An opened issuer: database migrated, key and certificates loaded and checked, the
/// registrars' CRLs followed, the member notifier running. Serve it with [`router`]. The
/// background CRL refresh and the notifier run while this value or a router made from it lives
/// (they stop when the last is dropped, so when the server stops), or until `crls.stop()` /
/// `notifier.stop()`.
#[derive(Debug, Clone)]
pub struct App {
    pub issuer: Arc<Issuer>,
    pub crls: Arc<RegistrarCrls>,
    /// Sends the outbox's member notifications (S15).
    pub notifier: Arc<Notifier>,
    /// The operators' console (its pages are in the router).
    pub console: server_kit::console::Console,
    pub db: Db,
    pub metrics: Metrics,
}

/// Reads a certificate file in DER or PEM.
pub fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    let parsed = if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8(bytes)
            .with_context(|| format!("certificate {} is not UTF-8 PEM", path.display()))?;
        Certificate::from_pem(&text)
    } else {
        Certificate::from_der(&bytes)
    };
    parsed.with_context(|| format!("parsing certificate {}", path.display()))
}

/// Reads a CRL file in DER or PEM.
pub fn read_crl(path: &Path) -> anyhow::Result<Crl> {
    let bytes = std::fs::read(path).with_context(|| format!("reading CRL {}", path.display()))?;
    let parsed = if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8(bytes)
            .with_context(|| format!("CRL {} is not UTF-8 PEM", path.display()))?;
        Crl::from_pem(&text)
    } else {
        Crl::from_der(&bytes)
    };
    parsed.with_context(|| format!("parsing CRL {}", path.display()))
}

/// The registrars the configuration names, with their roots (and TLS roots for `https://`).
/// A URL that cannot be used is a configuration error; a registrar that does not answer is
/// not (that is found out later).
fn followed_registrars(
    config: &IssuerConfig,
    identity: &IssuerIdentity,
) -> anyhow::Result<Vec<FollowedRegistrar>> {
    let tls_roots = config
        .registrar_tls_roots_file
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("reading registrar TLS roots {}", path.display()))
        })
        .transpose()?;
    let configured = [
        (
            RegistrarKind::IssuerRegistrar,
            &config.issuer_registrar_url,
            &identity.issuer_anchor,
        ),
        (
            RegistrarKind::DataRegistrar,
            &config.data_registrar_url,
            &identity.data_anchor,
        ),
    ];
    let mut registrars = Vec::new();
    for (kind, url, anchor) in configured {
        let Some(url) = url else { continue };
        let url = url.trim_end_matches('/').to_string();
        // The same check the fetch makes, now: a wrong URL must stop the start.
        match &tls_roots {
            Some(pem) => HttpClient::with_roots_pem(&url, pem).map(drop),
            None => HttpClient::new(&url).map(drop),
        }
        .with_context(|| format!("the {kind} URL"))?;
        let mut source = CrlSource::new(url, anchor.clone());
        if let Some(pem) = &tls_roots {
            source = source.with_tls_roots_pem(pem.clone());
        }
        registrars.push(FollowedRegistrar { kind, source });
    }
    Ok(registrars)
}

/// Opens the database (migrating it), loads the key, the IRC, the registrar roots and CRLs,
/// and checks the IRC certifies the key for the party ID under the Issuer Registrar root and
/// is not revoked by the CRL files. Then fetches the configured registrars' CRLs (a registrar
/// that fails is logged and skipped: the issuer starts with what it has) and keeps refreshing
/// them in the background.
pub async fn open(config: &IssuerConfig) -> anyhow::Result<App> {
    if !config.key_file.exists() {
        anyhow::bail!(
            "issuer key file {} does not exist (the IRC certifies an existing key)",
            config.key_file.display()
        );
    }
    let (key, _) = server_kit::load_or_generate_key(&config.key_file, &mut crypto::OsRng)?;
    let identity = IssuerIdentity {
        party_id: config.party_id.clone(),
        key,
        irc: read_certificate(&config.irc_file)?,
        issuer_anchor: read_certificate(&config.issuer_registrar_root_file)?,
        data_anchor: read_certificate(&config.data_registrar_root_file)?,
    };
    let crls = config
        .crl_files
        .iter()
        .map(|path| read_crl(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let registrars = followed_registrars(config, &identity)?;
    let tls_roots = config
        .provider_tls_roots_file
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("reading provider TLS roots {}", path.display()))
        })
        .transpose()?;
    let signer = PartySigner::new(
        identity.party_id.clone(),
        PartyRole::Issuer,
        identity.key.clone(),
        identity.irc.clone(),
    );
    let link = HttpProviderLink::new(signer, tls_roots);
    let db = Db::open(&config.db_url)
        .await
        .context("opening the issuer database")?;
    let store = SqlStore::open(db.clone())
        .await
        .context("migrating the issuer database")?;
    server_kit::console::prepare(&db)
        .await
        .context("preparing the console's table")?;
    let issuer = Arc::new(
        Issuer::new(
            identity,
            crls.clone(),
            Arc::new(store),
            Arc::new(link),
            config.clock.clone(),
            Box::new(crypto::OsRng),
            config.settings,
        )
        .context("starting the issuer")?,
    );
    let followed = RegistrarCrls::new(issuer.clone(), registrars, crls);
    if !followed.registrars().is_empty() {
        // A registrar being down must not keep the issuer down: it starts with the CRLs it
        // has (files, and any registrar that answered) and the refresh keeps trying.
        if let Err(CrlFetchError::Failed { failures }) = followed.fetch().await {
            for failure in &failures {
                tracing::warn!(
                    registrar = %failure.registrar,
                    kind = %failure.kind,
                    error = %failure.source,
                    "could not fetch the registrar's CRL at start; continuing without it (the refresh keeps trying)"
                );
            }
        }
        followed.follow(config.crl_refresh_every);
    }
    let metrics = Metrics::new();
    let notifier = Notifier::new(issuer.clone(), &metrics);
    notifier.start();
    let transport = match config.tls {
        Some(_) => server_kit::console::Transport::Https,
        None => server_kit::console::Transport::Http,
    };
    Ok(App {
        console: console::console(&issuer, db.clone(), transport),
        issuer,
        crls: followed,
        notifier,
        db,
        metrics,
    })
}

/// The issuer's full router: its API (see [`routes`]) and its operators' console (`console.rs`)
/// with server-kit's routes and layers.
pub fn router(app: &App) -> Router {
    let state = AppState::new(
        app.issuer.clone(),
        app.crls.clone(),
        app.notifier.clone(),
        app.db.clone(),
        &app.metrics,
    );
    server_kit::console::api_router(
        http::routes(),
        console::router(&app.console),
        state,
        &Kit {
            db: app.db.clone(),
            metrics: app.metrics.clone(),
        },
    )
}

/// Every (method, path template) the router serves, the kit's included.
pub fn routes() -> Vec<(String, &'static str)> {
    server_kit::route_table(http::routes())
}

/// Runs an issuer until Ctrl-C or SIGTERM: JSON logs, open, listen (TLS if configured),
/// serve, shut down gracefully.
pub async fn serve(config: IssuerConfig) -> anyhow::Result<()> {
    let who = Listening {
        server: "issuer",
        role: None,
        party_id: &config.party_id,
        db_url: &config.db_url,
    };
    server_kit::serve_app(who, config.listen, config.tls.as_ref(), async {
        let app = open(&config).await?;
        Ok((app.db.clone(), router(&app)))
    })
    .await
}

/// Adds an operator to the issuer database at `db_url` (migrating it first) and returns the
/// token to hand over; for `cardwright issuer operator add`.
pub async fn add_operator(db_url: &str, name: &str) -> anyhow::Result<OperatorToken> {
    server_kit::add_operator(db_url, &store::MIGRATIONS, name).await
}
