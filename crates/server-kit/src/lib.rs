//! What every cardwright server shares (docs/parties.md): the database ([`Db`]: SQLite or
//! PostgreSQL from one URL, migrations per backend), errors as HTTP ([`ApiError`], one JSON
//! shape), the kit's routes and layers ([`finish`]: `/health`, `/metrics`, request ids, request
//! spans, opaque 5xx), operator tokens ([`Operator`]), party request authentication
//! ([`PartyRequest`]), JSON logs ([`init_logging`]), the listener with optional TLS ([`bind`],
//! [`TlsFiles`]), the run of a server from logging to shutdown ([`serve_app`], [`api_router`]),
//! clocks and key files. It knows no party's domain.

mod clock;
pub mod console;
mod crl_refresh;
mod db;
mod error;
mod key_file;
mod listener;
mod metrics;
pub mod openapi;
mod operator;
mod party;
mod router;
mod serve;
pub mod testing;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crl_refresh::{
    fetch_crl, fetch_crls_once, spawn_crl_refresh, CrlRefresh, CrlRefreshError, CrlSource,
    FollowedRegistrar, HeldCrls, HeldOrigin, RegistrarFailure, RegistrarKind,
};
pub use db::{create_postgres_database, redact_url, Db, DbError, Migration, MigrationSet};
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, InternalErrorBody};
pub use key_file::{load_or_generate_key, KeyOrigin};
pub use listener::{bind, shutdown_signal, BoundListener, TlsFiles};
pub use metrics::{Counter, Metrics, UNMATCHED_ROUTE};
pub use operator::{Operator, OperatorRecord, OperatorToken};
pub use party::{PartyRequest, PartyTrust, MAX_PARTY_REQUEST_BODY, PARTY_REQUEST_HEADER};
pub use router::{finish, Kit, KIT_ROUTES, REQUEST_ID_HEADER};
pub use serve::{add_operator, api_router, route_table, serve_app, Listening, Route};

/// What can go wrong setting a server up outside the database.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("TLS file {file}: {reason}")]
    Tls { file: PathBuf, reason: String },

    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
}

/// Sends `tracing` events to stdout as JSON lines, filtered by `RUST_LOG` (default `info`).
/// Calling it again, or after another subscriber was installed, does nothing.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .try_init();
}
