//! How every server is put together and run, so the servers only say what differs: the full
//! router from a server's route table ([`api_router`], [`route_table`]), the run from logging
//! to graceful shutdown ([`serve_app`]), and adding an operator offline ([`add_operator`]).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;
use pki::PartyId;

use crate::{Clock, Db, Kit, MigrationSet, OperatorToken, SystemClock, TlsFiles, KIT_ROUTES};

/// One route of a server: method, path template, handler.
pub type Route<S> = (Method, &'static str, MethodRouter<S>);

/// A server's full router: its `routes` given `state`, wrapped by [`crate::finish`] with the
/// kit's routes and layers.
pub fn api_router<S>(routes: Vec<Route<S>>, state: S, kit: &Kit) -> Router
where
    S: Clone + Send + Sync + 'static,
{
    let api = routes
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        .with_state(state);
    crate::finish(api, kit)
}

/// Every (method, path template) a router from [`api_router`] serves, the kit's included: what
/// a server's OpenAPI document must list.
pub fn route_table<S>(routes: Vec<Route<S>>) -> Vec<(String, &'static str)> {
    routes
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path))
        .chain(
            KIT_ROUTES
                .iter()
                .map(|(method, path)| (method.to_string(), *path)),
        )
        .collect()
}

/// Who is starting, for the log line that says where it listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening<'a> {
    /// The program: `"registrar"`, `"issuer"`, `"provider"`.
    pub server: &'static str,
    /// The role, for programs that have more than one.
    pub role: Option<&'a str>,
    pub party_id: &'a PartyId,
    /// Logged redacted.
    pub db_url: &'a str,
}

/// Runs a server until Ctrl-C or SIGTERM: JSON logs, `open` (awaited after logging starts, so
/// what it logs is seen; it yields the database and the router), listen on `listen` (TLS if
/// `tls`), serve, shut down gracefully, close the database.
pub async fn serve_app<F>(
    who: Listening<'_>,
    listen: SocketAddr,
    tls: Option<&TlsFiles>,
    open: F,
) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<(Db, Router)>>,
{
    crate::init_logging();
    let (db, router) = open.await?;
    let listener = crate::bind(listen, tls).await?;
    tracing::info!(
        role = who.role,
        party_id = %who.party_id,
        db = %crate::redact_url(who.db_url),
        backend = db.backend(),
        "{} listening on {}://{}",
        who.server,
        listener.scheme(),
        listener.local_addr()
    );
    listener
        .serve(router, crate::shutdown_signal())
        .await
        .context("serving HTTP")?;
    db.close().await;
    Ok(())
}

/// Adds an operator to the database at `db_url` (applying `migrations` first) and returns the
/// token to hand over; for `cardwright <server> operator add`.
pub async fn add_operator(
    db_url: &str,
    migrations: &MigrationSet,
    name: &str,
) -> anyhow::Result<OperatorToken> {
    let db = Db::open(db_url).await?;
    db.migrate(migrations).await?;
    let now = SystemClock.now();
    let token = db.add_operator(name, now, &mut crypto::OsRng).await?;
    db.close().await;
    Ok(token)
}
