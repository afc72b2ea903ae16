//! The issuer server (docs/parties.md, "issuer"): its card registry and personalisation
//! records (CARD-3, KEY-1), registration of cards (REG-2: the RC), storing authorizations on
//! both sides (STO-2 SA over a provider's SAR, STO-1 the issuer's own SAR), delegations
//! (STO-3), and the cards' receipts into a per-card view and a signed, hash-chained ledger
//! (STO-7, REC-1). Its key is certified by the Issuer Registrar (the IRC).
//!
//! Layout (STYLE): this file holds the configuration and wiring ([`open`], [`router`],
//! [`serve`], [`add_operator`]); `service.rs` the domain operations; `http.rs` the API;
//! `store.rs` the storage trait with one SQL implementation for SQLite and PostgreSQL
//! (`store/sql.rs`); `openapi.rs` the API document; `provider_link.rs` the issuer's calls to
//! providers' servers (STO-1). The API's JSON types live in
//! `party_api::issuer`, shared with the issuer's callers.

mod http;
mod openapi;
pub mod provider_link;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use party_api::PartySigner;
use pki::{Certificate, Crl, PartyId};
use protocol::PartyRole;
use server_kit::{Clock, Db, Kit, Listening, Metrics, OperatorToken, SystemClock, TlsFiles};

pub use http::AppState;
pub use openapi::document as openapi_document;
pub use provider_link::{HttpProviderLink, LinkError, ProviderLink};
pub use service::{
    Caller, Consent, Issuer, IssuerIdentity, Reconciliation, ServiceError, Settings,
};
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
    /// The registrars' CRLs (DER or PEM), checked for the IRC at start and for providers'
    /// DPRs on every grant and delegation. Fetching them from the registrars is not built.
    pub crl_files: Vec<PathBuf>,
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
            provider_tls_roots_file: None,
            db_url,
            listen,
            tls: None,
            settings: Settings::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// An opened issuer: database migrated, key and certificates loaded and checked. Serve it
/// with [`router`].
#[derive(Debug, Clone)]
pub struct App {
    pub issuer: Arc<Issuer>,
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

/// Opens the database (migrating it), loads the key, the IRC, the registrar roots and CRLs,
/// and checks the IRC certifies the key for the party ID under the Issuer Registrar root and
/// is not revoked.
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
    let issuer = Issuer::new(
        identity,
        crls,
        Arc::new(store),
        Arc::new(link),
        config.clock.clone(),
        Box::new(crypto::OsRng),
        config.settings,
    )
    .context("starting the issuer")?;
    Ok(App {
        issuer: Arc::new(issuer),
        db,
        metrics: Metrics::new(),
    })
}

/// The issuer's full router: its API (see [`routes`]) with server-kit's routes and layers.
pub fn router(app: &App) -> Router {
    let state = AppState::new(app.issuer.clone(), app.db.clone(), &app.metrics);
    server_kit::api_router(
        http::routes(),
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
