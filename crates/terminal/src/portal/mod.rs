//! The user's portal (SPEC APP-4; docs/app-download.md §6): a web server on this computer's
//! loopback that walks the card holder through adding an application to the card in the reader,
//! one screen per step of seed 003's figure 5 — (a) insert card, (b) membership terms, (c) the
//! issuer checks the card, (d) card verified with its capacity and the services, (e)(f) the
//! provider's download application, (g)(h) the card signs, the installation's progress, and
//! (i) the service has started — with every failure on `/problem` in words and a next action.
//!
//! Server-rendered pages (maud), one embedded stylesheet, no JavaScript at all: each action is a
//! form POST answered `303 See Other` → GET, card work runs in a background job (one at a time)
//! and pages refresh themselves once a second while it runs. The PIN goes from the form to the
//! card's VERIFY and is never stored or logged. [`security`] keeps other programs and other web
//! sites out.
//!
//! [`serve`] starts it; the CLI (`cardwright terminal portal`) prints [`RunningPortal::url`].

pub mod messages;
pub mod pages;
mod security;
mod session;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::flows::Parties;
use crate::{CardChannel, ChannelError};

pub use messages::{explain, Action, OnCard, Problem, Situation};

/// Where the portal finds the card. It is opened afresh for each piece of card work, so a card
/// taken out and put back (or another card) is seen as the reader sees it.
pub trait CardReader: Send + Sync {
    /// The reader's name as the user knows it.
    fn name(&self) -> String;
    /// A channel to the card in the reader now, or why there is none.
    fn open(&self) -> Result<Box<dyn CardChannel + Send>, ChannelError>;
}

/// A reader whose card is opened by a function (a card image opened at each use, a PC/SC
/// reader connected at each use).
pub struct OpenWith<F> {
    name: String,
    open: F,
}

impl<F> OpenWith<F>
where
    F: Fn() -> Result<Box<dyn CardChannel + Send>, ChannelError> + Send + Sync,
{
    pub fn new(name: impl Into<String>, open: F) -> Self {
        OpenWith {
            name: name.into(),
            open,
        }
    }
}

impl<F> CardReader for OpenWith<F>
where
    F: Fn() -> Result<Box<dyn CardChannel + Send>, ChannelError> + Send + Sync,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&self) -> Result<Box<dyn CardChannel + Send>, ChannelError> {
        (self.open)()
    }
}

/// A reader holding one card channel for the portal's whole life (an in-process card): every
/// open hands out the same channel.
pub struct OneCard {
    name: String,
    channel: Arc<Mutex<Box<dyn CardChannel + Send>>>,
}

impl OneCard {
    pub fn new(name: impl Into<String>, channel: Box<dyn CardChannel + Send>) -> Self {
        OneCard {
            name: name.into(),
            channel: Arc::new(Mutex::new(channel)),
        }
    }
}

struct SharedChannel(Arc<Mutex<Box<dyn CardChannel + Send>>>);

impl CardChannel for SharedChannel {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut channel = self.0.lock().map_err(|_| ChannelError::Transport {
            detail: "the card channel failed in another task".into(),
        })?;
        channel.transmit(command)
    }
}

impl CardReader for OneCard {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&self) -> Result<Box<dyn CardChannel + Send>, ChannelError> {
        Ok(Box::new(SharedChannel(self.channel.clone())))
    }
}

/// What the portal needs to run.
pub struct PortalConfig {
    /// A loopback address; port 0 picks a free one.
    pub listen: SocketAddr,
    pub reader: Box<dyn CardReader>,
    pub parties: Parties,
    /// The terminal's download journal directory (`DIR/terminal/downloads`).
    pub journal_dir: PathBuf,
    /// The card issuer's name as the user knows it.
    pub issuer_name: String,
    /// The provider's name as the user knows it (it heads every page).
    pub provider_name: String,
}

/// Why the portal did not start.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal serves this computer only: use 127.0.0.1 (not {addr})")]
    NotLoopback { addr: SocketAddr },
    #[error(transparent)]
    Worker(#[from] worker::WorkerError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A portal serving in the background.
pub struct RunningPortal {
    addr: SocketAddr,
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningPortal {
    /// The start link, `http://127.0.0.1:PORT/start?key=<32 hex>`: the one way in.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts the portal on `config.listen` (loopback only).
pub async fn serve(config: PortalConfig) -> Result<RunningPortal, PortalError> {
    if !config.listen.ip().is_loopback() {
        return Err(PortalError::NotLoopback {
            addr: config.listen,
        });
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| PortalError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| PortalError::Listen {
            addr: config.listen,
            source,
        })?;
    let guard = Arc::new(security::Guard::new(addr, &mut crypto::OsRng));
    let url = guard.start_url(addr);
    let app = router(guard, config, worker::Worker::start()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningPortal {
        addr,
        url,
        stop,
        task,
    })
}

const STYLE: &str = include_str!("style.css");

async fn style() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE,
    )
}

fn router(guard: Arc<security::Guard>, config: PortalConfig, worker: worker::Worker) -> Router {
    let portal = session::Portal::new(config, guard.csrf().to_string(), worker);
    session::routes()
        .route("/style.css", get(style))
        .with_state(portal)
        .layer(axum::middleware::from_fn_with_state(guard, security::guard))
}

#[cfg(test)]
mod tests;
