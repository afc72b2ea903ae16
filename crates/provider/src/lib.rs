//! The provider server (docs/parties.md, "provider"): a party certified by the Data Registrar
//! (DPR) that publishes data items, consents to storing them on cards (SA on STO-1, SAR on
//! STO-2, a lone SA under an issuer's delegation on STO-3), serves their data plain or
//! certified (SDCI), and turns the cards' receipts into its per-card view and signed,
//! hash-chained ledger (STO-7, REC-1). For adding an application over the Internet
//! (docs/app-download.md) it publishes membership terms, a catalog of services pinned from its
//! issuers' application DBs (APP-2), answers the user's choice with a download request for the
//! card to sign, grants the card's issuer its SA on that download and records the members the
//! issuer notifies (S4–S6, S11, S15–S16).
//!
//! Layout (STYLE): this file holds the configuration and wiring ([`open`], [`router`],
//! [`serve`]); `service.rs` the domain operations; `http.rs` the API; `issuer_link.rs` the calls
//! to issuers (STO-2); `registrar_link.rs` the calls to the Data Registrar for SDCI' (STO-5);
//! `registrar_crls.rs` the registrars' and issuers' CRLs it follows (REG-3); `store.rs` the storage
//! trait with one SQL implementation for SQLite and PostgreSQL (`store/sql.rs`); `openapi.rs`
//! the API document; the download part of each is in its `download` submodule
//! (`service/download.rs`, `http/download.rs`, `store/download.rs` + `store/sql_download.rs`,
//! `openapi/download.rs`). The API's JSON types live in `party_api::provider` and
//! `party_api::provider_download`, shared with callers.

pub mod console;
mod http;
pub mod issuer_link;
mod openapi;
pub mod registrar_crls;
pub mod registrar_link;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use issuer_link::HttpIssuerLink;
use party_api::issuer::IssuerClient;
use party_api::{HttpClient, PartySigner};
use pki::{Certificate, PartyId};
use protocol::PartyRole;
use registrar_crls::{FollowedIssuer, FollowedRegistrar, RegistrarCrls, RegistrarKind};
use registrar_link::HttpDataRegistrar;
use server_kit::{
    Clock, CrlSource, Db, Kit, Listening, Metrics, OperatorToken, SystemClock, TlsFiles,
};

pub use http::AppState;
pub use openapi::document as openapi_document;
pub use service::{
    Authorization, Caller, Consents, Provider, RecordedReceipt, ServiceError, StoredDelegation,
    AUTHORIZATION_VALIDITY_S,
};
pub use store::{SqlStore, Store, StoreError};

/// How often the registrars' CRLs are fetched unless configured otherwise.
pub const DEFAULT_CRL_REFRESH: Duration = Duration::from_secs(300);

/// How to run one provider instance.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub party_id: PartyId,
    /// The provider's PKCS#8 PEM key, the one its DPR certifies. Never generated: a new key
    /// would need a new DPR.
    pub key_file: PathBuf,
    /// The provider's DPR (PEM or DER).
    pub dpr_file: PathBuf,
    /// The Issuer Registrar's root (PEM or DER): anchor for issuers' IRCs and cards' RCs.
    pub issuer_registrar_root_file: PathBuf,
    /// The Data Registrar's root (PEM or DER): anchor for the DPR.
    pub data_registrar_root_file: PathBuf,
    /// `sqlite:PATH` or `postgres://…`.
    pub db_url: String,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// The registrars' CRLs (PEM or DER files), loaded at start and always in force, besides
    /// those fetched from the registrars.
    pub crl_files: Vec<PathBuf>,
    /// The Issuer Registrar's server (base URL): its CRL is fetched at start, every
    /// `crl_refresh_every` and on `POST /v1/crls/refresh` (REG-3). The data registrar's
    /// (`data_registrar`) is followed the same way.
    pub issuer_registrar_url: Option<String>,
    /// How often the registrars' CRLs are fetched (default 300 s).
    pub crl_refresh_every: Duration,
    /// The issuers this provider works with, by party ID, with their servers' base URLs: STO-2
    /// requests naming one are sent there for its SA, and the CRL of the RCs each revoked
    /// (`GET {url}/v1/crl`, under the IRC of `GET {url}/v1/issuer`) is followed like the
    /// registrars' (REG-3).
    pub issuers: Vec<(PartyId, String)>,
    /// PEM certificates `https://` issuers are trusted by (without: only `http://` issuers).
    pub issuer_tls_roots_file: Option<PathBuf>,
    /// The Data Registrar (its party ID, the subject of the data registrar root, and its
    /// server's base URL): asked for SDCI' on `GET /v1/items/{id}/certified?by=data-registrar`
    /// (STO-5). Without: such requests are refused (409 `no_data_registrar`).
    pub data_registrar: Option<(PartyId, String)>,
    /// PEM certificates an `https://` registrar is trusted by (without: only `http://`).
    pub registrar_tls_roots_file: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
}

impl ProviderConfig {
    /// A configuration with no TLS, no CRLs, no issuers, no registrar to call (so no CRLs to
    /// follow) and the system clock.
    pub fn new(
        party_id: PartyId,
        key_file: PathBuf,
        dpr_file: PathBuf,
        issuer_registrar_root_file: PathBuf,
        data_registrar_root_file: PathBuf,
        db_url: String,
        listen: SocketAddr,
    ) -> ProviderConfig {
        ProviderConfig {
            party_id,
            key_file,
            dpr_file,
            issuer_registrar_root_file,
            data_registrar_root_file,
            db_url,
            listen,
            tls: None,
            crl_files: Vec::new(),
            issuer_registrar_url: None,
            crl_refresh_every: DEFAULT_CRL_REFRESH,
            issuers: Vec::new(),
            issuer_tls_roots_file: None,
            data_registrar: None,
            registrar_tls_roots_file: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// An opened provider: database migrated, key and certificates loaded and checked, the
/// registrars' CRLs fetched and followed. Serve it with [`router`]. The CRL refresh runs until
/// [`RegistrarCrls::stop`] or until this and the router are dropped.
#[derive(Debug, Clone)]
pub struct App {
    pub provider: Arc<Provider>,
    pub crls: Arc<RegistrarCrls>,
    /// The operators' console (its pages are in the router).
    pub console: server_kit::console::Console,
    pub db: Db,
    pub metrics: Metrics,
}

/// Reads a PEM or DER file and parses it with `from_pem` or `from_der`.
fn read_pem_or_der<T>(
    path: &Path,
    what: &str,
    from_pem: fn(&str) -> Result<T, pki::PkiError>,
    from_der: fn(&[u8]) -> Result<T, pki::PkiError>,
) -> anyhow::Result<T> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => from_pem(text),
        _ => from_der(&bytes),
    };
    parsed.with_context(|| format!("the {what} in {}", path.display()))
}

fn read_certificate(path: &Path, what: &str) -> anyhow::Result<Certificate> {
    read_pem_or_der(path, what, Certificate::from_pem, Certificate::from_der)
}

/// The PEM TLS roots in `path`, if configured.
fn read_tls_roots(path: Option<&Path>, whose: &str) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|path| {
        std::fs::read(path)
            .with_context(|| format!("reading the {whose} TLS roots from {}", path.display()))
    })
    .transpose()
}

/// Opens the database (migrating it), loads the key and certificates, and checks they fit
/// together (the DPR certifies the configured party and key under the Data Registrar root);
/// fetches the configured registrars' CRLs (one that cannot be fetched is logged: the CRL
/// files and the others' CRLs are in force) and starts following them.
pub async fn open(config: &ProviderConfig) -> anyhow::Result<App> {
    if !config.key_file.exists() {
        anyhow::bail!(
            "the provider key file {} does not exist (the key must be the one the DPR certifies)",
            config.key_file.display()
        );
    }
    let (key, _) = server_kit::load_or_generate_key(&config.key_file, &mut crypto::OsRng)
        .context("loading the provider key")?;
    let dpr = read_certificate(&config.dpr_file, "DPR")?;
    let issuer_root =
        read_certificate(&config.issuer_registrar_root_file, "issuer registrar root")?;
    let data_root = read_certificate(&config.data_registrar_root_file, "data registrar root")?;
    let crl_files = config
        .crl_files
        .iter()
        .map(|path| read_pem_or_der(path, "CRL", pki::Crl::from_pem, pki::Crl::from_der))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tls_roots = read_tls_roots(config.issuer_tls_roots_file.as_deref(), "issuers'")?;
    let registrar_tls_roots =
        read_tls_roots(config.registrar_tls_roots_file.as_deref(), "registrars'")?;
    let signer = PartySigner::new(
        config.party_id.clone(),
        PartyRole::Provider,
        key.clone(),
        dpr.clone(),
    );
    let link = HttpIssuerLink::new(signer.clone(), &config.issuers, tls_roots.as_deref())
        .context("the configured issuers")?;
    let data_registrar = config
        .data_registrar
        .as_ref()
        .map(|(registrar, url)| {
            HttpDataRegistrar::new(
                signer.clone(),
                registrar.clone(),
                url,
                registrar_tls_roots.as_deref(),
            )
            .context("the configured data registrar")
        })
        .transpose()?;
    let db = Db::open(&config.db_url)
        .await
        .context("opening the provider database")?;
    let store = SqlStore::open(db.clone())
        .await
        .context("migrating the provider database")?;
    let provider = Provider::new(
        Arc::new(store),
        config.party_id.clone(),
        key,
        dpr,
        issuer_root,
        data_root,
        config.clock.clone(),
    )
    .context("starting the provider")?
    .with_issuer_link(Arc::new(link));
    let provider = match data_registrar {
        Some(registrar) => provider
            .with_data_registrar(Arc::new(registrar))
            .context("the configured data registrar")?,
        None => provider,
    };
    let registrars = followed_registrars(config, &provider, registrar_tls_roots.as_deref());
    let issuers = followed_issuers(config, tls_roots.as_deref())?;
    let provider = Arc::new(provider);
    let crls = RegistrarCrls::new(provider.clone(), registrars, issuers, crl_files);
    // No registrar or issuer configured is no failure here: the files' CRLs are all there is.
    if let Err(registrar_crls::CrlFetchError::Failed { failures, issuers }) = crls.fetch().await {
        for failure in failures {
            tracing::warn!(
                registrar = %failure.registrar,
                kind = %failure.kind,
                error = %failure.source,
                "cannot fetch the registrar's CRL at start; continuing with the CRL files \
                 (the periodic refresh keeps trying)"
            );
        }
        for failure in issuers {
            tracing::warn!(
                issuer = %failure.issuer,
                error = %failure.source,
                "cannot fetch the issuer's CRL of RCs at start; continuing without it \
                 (the periodic refresh keeps trying)"
            );
        }
    }
    crls.follow(config.crl_refresh_every);
    server_kit::console::prepare(&db)
        .await
        .context("preparing the console's table")?;
    let transport = match config.tls {
        Some(_) => server_kit::console::Transport::Https,
        None => server_kit::console::Transport::Http,
    };
    Ok(App {
        console: console::console(&provider, db.clone(), transport),
        provider,
        crls,
        db,
        metrics: Metrics::new(),
    })
}

/// The registrars whose CRLs the provider follows: the Issuer Registrar at
/// `issuer_registrar_url`, the data registrar at its configured URL, each under the root the
/// provider holds for it.
fn followed_registrars(
    config: &ProviderConfig,
    provider: &Provider,
    tls_roots_pem: Option<&[u8]>,
) -> Vec<FollowedRegistrar> {
    let source = |url: &str, anchor: &Certificate| {
        let source = CrlSource::new(url, anchor.clone());
        match tls_roots_pem {
            Some(pem) => source.with_tls_roots_pem(pem.to_vec()),
            None => source,
        }
    };
    let mut registrars = Vec::new();
    if let Some(url) = &config.issuer_registrar_url {
        registrars.push(FollowedRegistrar {
            kind: RegistrarKind::IssuerRegistrar,
            source: source(url, provider.issuer_root()),
        });
    }
    if let Some((_, url)) = &config.data_registrar {
        registrars.push(FollowedRegistrar {
            kind: RegistrarKind::DataRegistrar,
            source: source(url, provider.data_root()),
        });
    }
    registrars
}

/// The issuers whose CRLs of RCs the provider follows: every configured issuer, one kept-alive
/// client each (their URLs were checked with the issuer link's).
fn followed_issuers(
    config: &ProviderConfig,
    tls_roots_pem: Option<&[u8]>,
) -> anyhow::Result<Vec<FollowedIssuer>> {
    config
        .issuers
        .iter()
        .map(|(party_id, url)| {
            let http = match tls_roots_pem {
                Some(pem) => HttpClient::with_roots_pem(url, pem),
                None => HttpClient::new(url),
            }
            .with_context(|| format!("issuer {party_id} at {url}"))?
            .with_timeout(issuer_link::ISSUER_CALL_TIMEOUT);
            Ok(FollowedIssuer {
                party_id: party_id.clone(),
                client: IssuerClient::with_party_id(http, party_id.clone()),
            })
        })
        .collect()
}

/// The provider's full router: its API (see [`routes`]) and its operators' console
/// (`console.rs`) with server-kit's routes and layers.
pub fn router(app: &App) -> Router {
    let state = AppState::new(
        app.provider.clone(),
        app.crls.clone(),
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

/// Runs a provider until Ctrl-C or SIGTERM: JSON logs, open, listen (TLS if configured),
/// serve, shut down gracefully.
pub async fn serve(config: ProviderConfig) -> anyhow::Result<()> {
    let who = Listening {
        server: "provider",
        role: None,
        party_id: &config.party_id,
        db_url: &config.db_url,
    };
    let crls = Mutex::new(None);
    let served = server_kit::serve_app(who, config.listen, config.tls.as_ref(), async {
        let app = open(&config).await?;
        *crls.lock().unwrap_or_else(|p| p.into_inner()) = Some(app.crls.clone());
        Ok((app.db.clone(), router(&app)))
    })
    .await;
    // The server stopped: so does the CRL refresh (not left to whoever holds the last
    // reference).
    if let Some(crls) = crls.lock().unwrap_or_else(|p| p.into_inner()).take() {
        crls.stop();
    }
    served
}

/// Adds an operator to the provider database at `db_url` (migrating it first) and returns the
/// token to hand over; for `cardwright provider operator add`.
pub async fn add_operator(db_url: &str, name: &str) -> anyhow::Result<OperatorToken> {
    server_kit::add_operator(db_url, &store::MIGRATIONS, name).await
}
