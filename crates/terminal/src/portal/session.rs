//! The portal's one session: which screen the user is on, what the card and the parties said so
//! far, and the background job (one at a time). Handlers read it to build a page's view and
//! move it on; every POST ends in `303 See Other` to the screen the session is now on, and a GET
//! for another screen than the session's is redirected there, so the browser's back button or a
//! stale tab cannot skip a step.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use super::messages::Problem;
use super::pages::{self, Frame, InsertCardView, ReaderState, Refresh, Stage};
use super::{CardReader, PortalConfig};
use crate::flows::Parties;
use crate::CardClient;

/// The screens, one path each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Insert,
    // Entered when a job fails; the jobs come with the download flow.
    #[allow(dead_code)]
    Problem,
}

impl Screen {
    pub fn path(self) -> &'static str {
        match self {
            Screen::Insert => "/",
            Screen::Problem => "/problem",
        }
    }
}

/// Where the session is.
pub struct Session {
    pub screen: Screen,
    /// The stage the problem happened at (for the step indicator of `/problem`).
    pub problem: Option<(Stage, Problem)>,
}

impl Session {
    fn new() -> Session {
        Session {
            screen: Screen::Insert,
            problem: None,
        }
    }
}

struct Inner {
    reader: Box<dyn CardReader>,
    #[allow(dead_code)]
    parties: Parties,
    #[allow(dead_code)]
    journal_dir: PathBuf,
    #[allow(dead_code)]
    issuer_name: String,
    provider_name: String,
    csrf: String,
    session: Mutex<Session>,
    /// Held by whatever talks to the card: one piece of card work at a time.
    card: tokio::sync::Mutex<()>,
}

/// The handlers' state.
#[derive(Clone)]
pub struct Portal(Arc<Inner>);

impl Portal {
    pub fn new(config: PortalConfig, csrf: String) -> Portal {
        Portal(Arc::new(Inner {
            reader: config.reader,
            parties: config.parties,
            journal_dir: config.journal_dir,
            issuer_name: config.issuer_name,
            provider_name: config.provider_name,
            csrf,
            session: Mutex::new(Session::new()),
            card: tokio::sync::Mutex::new(()),
        }))
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        // A handler that panicked while holding the lock left a session that may be half
        // updated; the pages still render from it (every field is valid on its own).
        self.0
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn frame(&self, stage: Stage, refresh: Refresh) -> Frame<'_> {
        Frame {
            provider: &self.0.provider_name,
            stage,
            refresh,
            csrf: &self.0.csrf,
        }
    }

    /// What the reader holds now, unless card work is going on.
    fn probe(&self) -> ReaderState {
        let Ok(_card) = self.0.card.try_lock() else {
            return ReaderState::Busy;
        };
        let channel = match self.0.reader.open() {
            Ok(c) => c,
            Err(e) => {
                return ReaderState::NoCard {
                    detail: e.to_string(),
                }
            }
        };
        let mut card = CardClient::new(channel);
        let read = card
            .select_card_manager()
            .and_then(|_| card.card_id())
            .and_then(|id| card.status().map(|s| (id, s)));
        match read {
            Ok((id, status)) => ReaderState::Card {
                card_id: id.to_hex(),
                capacity: status.capacity,
                free: status.free,
                pin_tries: status.pin_tries_left,
            },
            Err(e) => ReaderState::NoCard {
                detail: e.to_string(),
            },
        }
    }
}

fn see_other(path: &'static str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(path));
    response
}

fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// The session's routes.
pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(insert_card))
        .route("/problem", get(problem))
        .route("/finish", post(finish))
        // Answered by the guard (it sets the cookie); listed so the guard runs for it.
        .route("/start", get(not_found))
        .fallback(not_found)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::refused("Not found", "There is no such page in the portal.").into_string()),
    )
        .into_response()
}

async fn insert_card(State(portal): State<Portal>) -> Response {
    let screen = portal.session().screen;
    if screen != Screen::Insert {
        return see_other(screen.path());
    }
    let state = portal.probe();
    let refresh = match state {
        ReaderState::Card { .. } => Refresh::Off,
        ReaderState::NoCard { .. } | ReaderState::Busy => Refresh::EverySecond,
    };
    let view = InsertCardView {
        reader: portal.0.reader.name(),
        state,
        unfinished: None,
    };
    page(pages::insert_card(
        &portal.frame(Stage::Card, refresh),
        &view,
    ))
}

async fn problem(State(portal): State<Portal>) -> Response {
    let session = portal.session();
    match (&session.screen, &session.problem) {
        (Screen::Problem, Some((stage, problem))) => {
            page(pages::problem(&portal.frame(*stage, Refresh::Off), problem))
        }
        (screen, _) => see_other(screen.path()),
    }
}

/// Start over: back to (a), keeping nothing of the last download but the journal.
async fn finish(State(portal): State<Portal>) -> Response {
    *portal.session() = Session::new();
    see_other(Screen::Insert.path())
}
