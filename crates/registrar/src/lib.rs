//! The registrar server (docs/parties.md): one program, two roles — the Issuer Registrar
//! certifies issuers (IRC), the Data Registrar certifies providers (DPR) — each instance with
//! its own root key and database. It self-issues its root on first start, issues certificates
//! and revokes them on its operators' requests, and publishes signed CRLs.
//!
//! Layout (STYLE): this file holds the configuration and wiring ([`open`], [`router`],
//! [`serve`]); `service.rs` the domain operations; `http.rs` the API; `store.rs` the storage
//! trait with one SQL implementation for SQLite and PostgreSQL (`store/sql.rs`);
//! `openapi.rs` the API document.

mod http;
mod openapi;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use pki::PartyId;
use server_kit::{Clock, Db, Kit, Listening, Metrics, OperatorToken, SystemClock, TlsFiles};

pub use http::AppState;
pub use openapi::document as openapi_document;
/// The API types live in `party_api::registrar`, shared with the callers.
pub use party_api::registrar::{
    CertificateList, CertificateResponse, CrlResponse, IssueRequest, RevocationBody, RevokeRequest,
    RevokeResponse, RootResponse,
};
pub use service::{Registrar, RegistrarRole, RevocationReason, ServiceError, Validity};
pub use store::{SqlStore, Store, StoreError};

/// The file name of the root key inside the data directory, unless configured otherwise.
pub const ROOT_KEY_FILE: &str = "root-key.pem";

/// How to run one registrar instance.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub role: RegistrarRole,
    pub party_id: PartyId,
    /// Where the root key lives unless `root_key_file` says otherwise.
    pub data_dir: PathBuf,
    /// PKCS#8 PEM; generated (mode 0600) on first start if absent. Instances sharing one
    /// database must share this key.
    pub root_key_file: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://…`.
    pub db_url: String,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub validity: Validity,
    pub clock: Arc<dyn Clock>,
}

impl RegistrarConfig {
    /// A configuration with the defaults: root key in `data_dir`, no TLS, docs/pki.md validity
    /// periods, the system clock.
    pub fn new(
        role: RegistrarRole,
        party_id: PartyId,
        data_dir: PathBuf,
        db_url: String,
        listen: SocketAddr,
    ) -> RegistrarConfig {
        RegistrarConfig {
            role,
            party_id,
            data_dir,
            root_key_file: None,
            db_url,
            listen,
            tls: None,
            validity: Validity::default(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn root_key_path(&self) -> PathBuf {
        self.root_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(ROOT_KEY_FILE))
    }
}

/// An opened registrar: database migrated, key loaded, root in place. Serve it with
/// [`router`].
#[derive(Debug, Clone)]
pub struct App {
    pub registrar: Arc<Registrar>,
    pub db: Db,
    pub metrics: Metrics,
}

/// Opens the database (migrating it), loads or generates the root key, and starts the
/// registrar (self-issuing the root on an empty database).
pub async fn open(config: &RegistrarConfig) -> anyhow::Result<App> {
    let db = Db::open(&config.db_url)
        .await
        .context("opening the registrar database")?;
    let store = SqlStore::open(db.clone())
        .await
        .context("migrating the registrar database")?;
    let key_path = config.root_key_path();
    let (key, origin) = server_kit::load_or_generate_key(&key_path, &mut crypto::OsRng)?;
    if origin == server_kit::KeyOrigin::Generated {
        tracing::info!(path = %key_path.display(), "generated a new root key");
    }
    let registrar = Registrar::start(
        Arc::new(store),
        config.role,
        config.party_id.clone(),
        key,
        config.clock.clone(),
        config.validity,
    )
    .await
    .context("starting the registrar")?;
    Ok(App {
        registrar: Arc::new(registrar),
        db,
        metrics: Metrics::new(),
    })
}

/// The registrar's full router: its API (see [`routes`]) with server-kit's routes and layers.
pub fn router(app: &App) -> Router {
    let state = AppState::new(app.registrar.clone(), app.db.clone(), &app.metrics);
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

/// Runs a registrar until Ctrl-C or SIGTERM: JSON logs, open, listen (TLS if configured),
/// serve, shut down gracefully.
pub async fn serve(config: RegistrarConfig) -> anyhow::Result<()> {
    let who = Listening {
        server: "registrar",
        role: Some(config.role.as_str()),
        party_id: &config.party_id,
        db_url: &config.db_url,
    };
    server_kit::serve_app(who, config.listen, config.tls.as_ref(), async {
        let app = open(&config).await?;
        Ok((app.db.clone(), router(&app)))
    })
    .await
}

/// Adds an operator to the registrar database at `db_url` (migrating it first) and returns the
/// token to hand over; for `cardwright registrar operator add`.
pub async fn add_operator(db_url: &str, name: &str) -> anyhow::Result<OperatorToken> {
    server_kit::add_operator(db_url, &store::MIGRATIONS, name).await
}
