//! The portal's one session: which screen the user is on, what the card and the parties said so
//! far, and whether a card job runs. Handlers build a page's view from it and move it on; every
//! POST ends in `303 See Other` to the screen the session is now on, and a GET for another
//! screen is redirected there (except going back where that is harmless), so the browser's back
//! button or a stale tab cannot skip a step.
//!
//! Card work (and the party calls between card commands) runs as a job on the card
//! [`Worker`](super::worker::Worker), one at a time; a job moves the session to its next screen
//! or to `/problem` when it ends. The PIN is moved from the form into the job and dropped when
//! the job ends: it is never in the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;

use super::messages::{self, OnCard, Problem, Situation};
use super::pages::{
    self, ApplicationLine, ApplicationView, CheckItem, CheckingView, DoneView, Fit, Frame,
    InsertCardView, Mark, ProgressView, ReaderState, Refresh, ServiceChoice, ServicesView,
    SignView, Stage, TermsView,
};
use super::worker::Worker;
use super::{CardReader, PortalConfig};
use crate::download::{self, Download, Finished, Offer, Standing, Step};
use crate::flows::Parties;
use crate::journal::Journal;
use crate::{CardChannel, CardClient};
use card::wire::{INS_GET_STATUS, INS_INSTALL, INS_LOAD};

/// Whether the card has nothing left to sign for `download`: it signed the application, or the
/// download was adopted from the issuer ([`download::adopt`]: neither request nor terms are
/// journalled; the issuer holds the application the card signed elsewhere).
fn past_signing(download: &Download) -> bool {
    download.application().is_some()
        || (download.request().is_none() && download.entry.terms_digest.is_empty())
}

/// The screens, one path each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Insert,
    Terms,
    Checking,
    Services,
    Application,
    Sign,
    Signing,
    Progress,
    Done,
    Problem,
}

impl Screen {
    pub fn path(self) -> &'static str {
        match self {
            Screen::Insert => "/",
            Screen::Terms => "/terms",
            Screen::Checking => "/checking",
            Screen::Services => "/services",
            Screen::Application => "/application",
            Screen::Sign => "/sign",
            Screen::Signing => "/signing",
            Screen::Progress => "/progress",
            Screen::Done => "/done",
            Screen::Problem => "/problem",
        }
    }

    fn stage(self) -> Stage {
        match self {
            Screen::Insert => Stage::Card,
            Screen::Terms => Stage::Terms,
            Screen::Checking => Stage::Check,
            Screen::Services => Stage::Choose,
            Screen::Application => Stage::Apply,
            Screen::Sign | Screen::Signing => Stage::Sign,
            Screen::Progress | Screen::Problem => Stage::Install,
            Screen::Done => Stage::Done,
        }
    }
}

/// The membership terms as shown to the user, with the digest a download binds.
#[derive(Debug, Clone)]
struct Terms {
    version: u32,
    text: String,
    digest: [u8; 32],
}

/// How far [`download::finish`] got, for the progress checklist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    #[default]
    Nothing,
    Opened,
    Sent,
    Installed,
    Recorded,
    Notified,
}

/// Where the session is.
struct Session {
    screen: Screen,
    /// A card job runs: pages refresh, and no other job starts.
    busy: bool,
    problem: Option<(Stage, Problem)>,
    terms_shown: Option<Terms>,
    terms_accepted: Option<Terms>,
    /// The user pressed Continue on (b) without ticking "I agree".
    unticked: bool,
    /// (c)'s sub-steps.
    checked: [Mark; 3],
    standing: Option<Standing>,
    offers: Vec<Offer>,
    download: Option<Download>,
    /// A line over the PIN field (why the PIN is asked again, or that it was malformed).
    pin_notice: Option<&'static str>,
    reached: Reached,
    attempt: Option<u32>,
    /// The LOAD block the card is being sent, and how many there are.
    loading: Option<(u32, u32)>,
    /// How many LOAD blocks the application takes (set when the installation starts).
    load_blocks: u32,
    finished: Option<Finished>,
    /// The standing after the installation (screen (i)).
    after: Option<Standing>,
}

impl Session {
    fn new() -> Session {
        Session {
            screen: Screen::Insert,
            busy: false,
            problem: None,
            terms_shown: None,
            terms_accepted: None,
            unticked: false,
            checked: [Mark::Waiting; 3],
            standing: None,
            offers: Vec::new(),
            download: None,
            pin_notice: None,
            reached: Reached::Nothing,
            attempt: None,
            loading: None,
            load_blocks: 0,
            finished: None,
            after: None,
        }
    }

    fn offer(&self) -> Option<&Offer> {
        let chosen = &self.download.as_ref()?.entry.service_id;
        self.offers.iter().find(|o| &o.service.service_id == chosen)
    }

    /// The service's name for the pages (its ID when the catalog is not at hand).
    fn service_name(&self) -> String {
        match (self.offer(), &self.download) {
            (Some(o), _) => o.service.name.clone(),
            (None, Some(d)) => d.entry.service_id.clone(),
            (None, None) => "the service".to_string(),
        }
    }
}

struct Inner {
    reader: Box<dyn CardReader>,
    parties: Parties,
    journal: Journal,
    issuer_name: String,
    provider_name: String,
    csrf: String,
    session: Mutex<Session>,
    /// Held by whatever talks to the card: the worker's jobs and (a)'s probe.
    card: tokio::sync::Mutex<()>,
    worker: Worker,
}

/// The handlers' state.
#[derive(Clone)]
pub struct Portal(Arc<Inner>);

impl Portal {
    pub fn new(config: PortalConfig, csrf: String, worker: Worker) -> Portal {
        Portal(Arc::new(Inner {
            reader: config.reader,
            parties: config.parties,
            journal: Journal::new(config.journal_dir),
            issuer_name: config.issuer_name,
            provider_name: config.provider_name,
            csrf,
            session: Mutex::new(Session::new()),
            card: tokio::sync::Mutex::new(()),
            worker,
        }))
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        // A handler that panicked while holding the lock left a session whose fields are each
        // still valid; the pages go on rendering from it.
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

    fn situation<'a>(&'a self, session: &'a Session) -> Situation<'a> {
        let offer = session.offer();
        Situation {
            issuer: &self.0.issuer_name,
            provider: &self.0.provider_name,
            issuer_url: self.0.parties.issuer.http().base_url(),
            provider_url: self.0.parties.provider.http().base_url(),
            application: offer.map(|o| o.service.application.name.as_str()),
            needs: offer.map(|o| o.service.application.size),
            free: session.standing.as_ref().map(|s| s.free),
            on_card: if session.reached >= Reached::Installed {
                OnCard::Installed
            } else {
                OnCard::NotYet
            },
        }
    }

    /// Moves the session to `/problem` with the words for `error`.
    fn fail(&self, session: &mut Session, stage: Stage, problem: Problem) {
        session.problem = Some((stage, problem));
        session.screen = Screen::Problem;
        session.busy = false;
    }

    fn fail_with(&self, error: &crate::flows::FlowError) {
        let mut session = self.session();
        let stage = session.screen.stage();
        let problem = messages::explain(error, &self.situation(&session));
        self.fail(&mut session, stage, problem);
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

    /// Starts `job` on the card worker unless one runs; the session shows `screen` meanwhile.
    /// False when a job was already running.
    fn start(
        &self,
        screen: Screen,
        job: fn(Portal, Option<String>) -> JobFuture,
        pin: Option<String>,
    ) -> bool {
        {
            let mut session = self.session();
            if session.busy {
                return false;
            }
            session.busy = true;
            session.screen = screen;
        }
        let portal = self.clone();
        let started = self.0.worker.run(Box::new(move || job(portal, pin)));
        if !started {
            let mut session = self.session();
            session.busy = false;
        }
        started
    }

    /// Opens the card in the reader for a job, holding the card lock.
    async fn open_card(
        &self,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            CardClient<Box<dyn CardChannel + Send>>,
        ),
        Problem,
    > {
        let lock = self.0.card.lock().await;
        match self.0.reader.open() {
            Ok(channel) => Ok((
                lock,
                CardClient::new(Box::new(Watched {
                    channel,
                    portal: self.clone(),
                    sent: 0,
                    listing: false,
                })),
            )),
            Err(e) => {
                let session = self.session();
                Err(messages::card_removed(
                    &self.situation(&session),
                    e.to_string(),
                ))
            }
        }
    }
}

/// The bytes per LOAD command [`CardClient::load`] sends (its block size).
const LOAD_BLOCK_BYTES: u32 = crate::client::LOAD_BLOCK as u32;
/// The proprietary class the card manager's GlobalPlatform commands use.
const CLA_GP: u8 = 0x80;
/// GET STATUS with P1 0x40: the card's signed listing, S1's proof.
const P1_LISTING: u8 = 0x40;
/// LOAD's P1 bit: last block.
const P1_LAST_BLOCK: u8 = 0x80;

/// A job's card channel, watched for the moments the pages show: the card's signed listing
/// done ((c)'s first sub-step) and the LOAD blocks going to the card ("block b of n" on the
/// progress page). It only looks at headers and status words; nothing is changed or kept.
struct Watched {
    channel: Box<dyn CardChannel + Send>,
    portal: Portal,
    sent: u32,
    /// A listing was asked for and its answer (perhaps over GET RESPONSE) has not ended yet.
    listing: bool,
}

impl CardChannel for Watched {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, crate::ChannelError> {
        match command {
            [CLA_GP, INS_INSTALL, ..] => self.sent = 0,
            [CLA_GP, INS_LOAD, p1, ..] => {
                self.sent += 1;
                let mut session = self.portal.session();
                let of = if p1 & P1_LAST_BLOCK != 0 {
                    self.sent
                } else {
                    session.load_blocks.max(self.sent)
                };
                session.loading = Some((self.sent, of));
            }
            [CLA_GP, INS_GET_STATUS, P1_LISTING, ..] => self.listing = true,
            _ => {}
        }
        let answer = self.channel.transmit(command)?;
        if self.listing {
            match answer.as_slice() {
                // More of the listing to come (ISO 7816-4 61xx: GET RESPONSE).
                [.., 0x61, _] => {}
                [.., 0x90, 0x00] => {
                    self.listing = false;
                    let mut session = self.portal.session();
                    if session.screen == Screen::Checking {
                        session.checked = [Mark::Done, Mark::Running, Mark::Waiting];
                    }
                }
                _ => self.listing = false,
            }
        }
        Ok(answer)
    }
}

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

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

fn refresh(session: &Session) -> Refresh {
    if session.busy {
        Refresh::EverySecond
    } else {
        Refresh::Off
    }
}

/// The session's routes.
pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(insert_card))
        .route("/card", post(card_inserted))
        .route("/terms", get(terms).post(terms_answered))
        .route("/checking", get(checking))
        .route("/services", get(services).post(service_chosen))
        .route("/application", get(application).post(applied))
        .route("/sign", get(sign).post(pin_entered))
        .route("/signing", get(signing))
        .route("/progress", get(progress))
        .route("/done", get(done))
        .route("/problem", get(problem))
        .route("/resume", post(resume))
        .route("/finish", post(finish))
        // Answered by the guard (it sets the cookie); routed so the guard runs for it.
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

/// Redirects to the session's screen unless it is `here`.
fn elsewhere(session: &Session, here: Screen) -> Option<Response> {
    (session.screen != here).then(|| see_other(session.screen.path()))
}

/// (a) insert card. Refreshes until a card answers.
async fn insert_card(State(portal): State<Portal>) -> Response {
    if let Some(r) = elsewhere(&portal.session(), Screen::Insert) {
        return r;
    }
    let state = portal.probe();
    let unfinished = match &state {
        ReaderState::Card { card_id, .. } => {
            pki::CardId::from_slice(&hex::decode(card_id).unwrap_or_default())
                .and_then(|id| download::resume(&portal.0.journal, id).ok().flatten())
                .map(|d| d.entry.service_id)
        }
        _ => None,
    };
    let refresh = match state {
        ReaderState::Card { .. } => Refresh::Off,
        ReaderState::NoCard { .. } | ReaderState::Busy => Refresh::EverySecond,
    };
    let view = InsertCardView {
        reader: portal.0.reader.name(),
        state,
        unfinished,
    };
    page(pages::insert_card(
        &portal.frame(Stage::Card, refresh),
        &view,
    ))
}

async fn card_inserted(State(portal): State<Portal>) -> Response {
    if let Some(r) = elsewhere(&portal.session(), Screen::Insert) {
        return r;
    }
    if matches!(portal.probe(), ReaderState::Card { .. }) {
        portal.session().screen = Screen::Terms;
    }
    see_other(portal.session().screen.path())
}

/// (b) the provider's membership terms, read afresh each time they are shown.
async fn terms(State(portal): State<Portal>) -> Response {
    {
        let mut session = portal.session();
        let back = session.screen == Screen::Problem && !session.busy;
        if back {
            session.screen = Screen::Terms;
        }
        if let Some(r) = elsewhere(&session, Screen::Terms) {
            return r;
        }
    }
    match download::terms(&portal.0.parties).await {
        Ok(answer) => {
            let shown = Terms {
                version: answer.version,
                digest: crypto::sha256(answer.text.as_bytes()).0,
                text: answer.text,
            };
            let mut session = portal.session();
            let view = TermsView {
                version: shown.version,
                text: shown.text.clone(),
                unticked: session.unticked,
            };
            session.terms_shown = Some(shown);
            page(pages::terms(
                &portal.frame(Stage::Terms, Refresh::Off),
                &view,
            ))
        }
        Err(e) => {
            portal.fail_with(&e);
            see_other(Screen::Problem.path())
        }
    }
}

async fn terms_answered(
    State(portal): State<Portal>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    {
        let mut session = portal.session();
        if let Some(r) = elsewhere(&session, Screen::Terms) {
            return r;
        }
        if form.get("agree").map(String::as_str) != Some("yes") {
            session.unticked = true;
            return see_other(Screen::Terms.path());
        }
        let Some(shown) = session.terms_shown.clone() else {
            return see_other(Screen::Terms.path());
        };
        session.unticked = false;
        session.terms_accepted = Some(shown);
        session.checked = [Mark::Running, Mark::Waiting, Mark::Waiting];
    }
    portal.start(Screen::Checking, |p, _| Box::pin(check_job(p)), None);
    see_other(portal.session().screen.path())
}

/// S1–S4 on the worker: the card's signed listing to the issuer, its standing, the catalog.
async fn check_job(portal: Portal) {
    let (_lock, mut card) = match portal.open_card().await {
        Ok(c) => c,
        Err(problem) => {
            let mut session = portal.session();
            portal.fail(&mut session, Stage::Check, problem);
            return;
        }
    };
    let standing = match download::check(&mut card, &portal.0.parties).await {
        Ok(s) => s,
        Err(e) => {
            portal.session().checked = [Mark::Failed, Mark::Waiting, Mark::Waiting];
            return portal.fail_with(&e);
        }
    };
    portal.session().checked = [Mark::Done, Mark::Done, Mark::Running];
    let offers = match download::offers(&portal.0.parties, &standing).await {
        Ok(o) => o,
        Err(e) => return portal.fail_with(&e),
    };
    let mut session = portal.session();
    session.checked = [Mark::Done; 3];
    session.standing = Some(standing);
    session.offers = offers;
    session.busy = false;
    session.screen = match &session.download {
        Some(d) if past_signing(d) => {
            session.pin_notice = Some("Enter your PIN to continue the download.");
            Screen::Sign
        }
        Some(d) if d.request().is_some() => Screen::Application,
        _ => Screen::Services,
    };
}

/// (c) checking.
async fn checking(State(portal): State<Portal>) -> Response {
    let session = portal.session();
    if let Some(r) = elsewhere(&session, Screen::Checking) {
        return r;
    }
    let issuer = &portal.0.issuer_name;
    let labels = [
        format!("Your card proves who it is to {issuer}"),
        format!("{issuer} checks the registration and the room on your card"),
        format!("Card status and services from {}", portal.0.provider_name),
    ];
    let view = CheckingView {
        issuer: issuer.clone(),
        steps: labels
            .into_iter()
            .zip(session.checked)
            .map(|(label, mark)| CheckItem {
                label,
                note: None,
                mark,
            })
            .collect(),
    };
    page(pages::checking(
        &portal.frame(Stage::Check, refresh(&session)),
        &view,
    ))
}

fn fit(offer: &Offer) -> Fit {
    match offer.fit {
        download::Fit::Fits => Fit::Fits,
        download::Fit::Installed => Fit::Installed,
        download::Fit::TooLarge { needs, free } => Fit::TooLarge { needs, free },
    }
}

fn lines(standing: &Standing) -> Vec<ApplicationLine> {
    standing
        .applications
        .iter()
        .map(|a| ApplicationLine {
            name: a.name.clone(),
            version: a.version,
            size: a.size,
        })
        .collect()
}

/// (d) card verified: capacity, applications, services.
async fn services(State(portal): State<Portal>) -> Response {
    let mut session = portal.session();
    let may_go_back = !session.busy
        && session.standing.is_some()
        && matches!(
            session.screen,
            Screen::Application | Screen::Sign | Screen::Problem
        )
        && session
            .download
            .as_ref()
            .is_none_or(|d| d.application().is_none());
    if may_go_back {
        session.screen = Screen::Services;
    }
    if let Some(r) = elsewhere(&session, Screen::Services) {
        return r;
    }
    let Some(standing) = &session.standing else {
        return see_other(Screen::Insert.path());
    };
    let mut choices: Vec<ServiceChoice> = session
        .offers
        .iter()
        .map(|o| ServiceChoice {
            service_id: o.service.service_id.clone(),
            name: o.service.name.clone(),
            description: o.service.description.clone(),
            application: o.service.application.name.clone(),
            size: o.service.application.size,
            fit: fit(o),
        })
        .collect();
    // What can be chosen first, then what is on the card, then what does not fit.
    choices.sort_by_key(|c| match c.fit {
        Fit::Fits => 0,
        Fit::Installed => 1,
        Fit::TooLarge { .. } => 2,
    });
    let view = ServicesView {
        issuer: portal.0.issuer_name.clone(),
        holder: standing.holder.clone(),
        card_id: standing.card_id.to_hex(),
        capacity: standing.capacity,
        free: standing.free,
        applications: lines(standing),
        services: choices,
        chosen: session
            .download
            .as_ref()
            .map(|d| d.entry.service_id.clone()),
        unfinished: session.download.is_none() && !standing.open_downloads.is_empty(),
    };
    page(pages::services(
        &portal.frame(Stage::Choose, Refresh::Off),
        &view,
    ))
}

async fn service_chosen(
    State(portal): State<Portal>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    {
        let mut session = portal.session();
        if let Some(r) = elsewhere(&session, Screen::Services) {
            return r;
        }
        let Some(chosen) = form.get("service") else {
            return see_other(Screen::Services.path());
        };
        let Some(offer) = session
            .offers
            .iter()
            .find(|o| &o.service.service_id == chosen)
            .cloned()
        else {
            return see_other(Screen::Services.path());
        };
        let (Some(standing), Some(terms)) = (&session.standing, &session.terms_accepted) else {
            return see_other(Screen::Insert.path());
        };
        let situation = Situation {
            application: Some(&offer.service.application.name),
            needs: Some(offer.service.application.size),
            free: Some(standing.free),
            ..portal.situation(&session)
        };
        // The form is not trusted to have respected a disabled choice.
        let refusal = match offer.fit {
            download::Fit::Fits => None,
            download::Fit::TooLarge { .. } => {
                Some(messages::not_enough_room(&situation, String::new()))
            }
            download::Fit::Installed => Some(messages::already_on_card(&situation, String::new())),
        };
        if let Some(problem) = refusal {
            portal.fail(&mut session, Stage::Choose, problem);
            return see_other(Screen::Problem.path());
        }
        match download::begin(&portal.0.journal, standing.card_id, terms.digest, chosen) {
            Ok(d) => session.download = Some(d),
            Err(e) => {
                drop(session);
                portal.fail_with(&e);
                return see_other(Screen::Problem.path());
            }
        }
    }
    portal.start(Screen::Application, |p, _| Box::pin(request_job(p)), None);
    see_other(portal.session().screen.path())
}

/// S5–S6 on the worker: the choice to the provider, its DownloadRequest back (journalled).
async fn request_job(portal: Portal) {
    let (download, issuer) = {
        let session = portal.session();
        match (&session.download, &session.standing) {
            (Some(d), Some(s)) => (d.clone(), s.issuer.clone()),
            _ => {
                drop(session);
                let mut session = portal.session();
                session.busy = false;
                session.screen = Screen::Insert;
                return;
            }
        }
    };
    let mut download = download;
    let result =
        download::request(&portal.0.parties, &portal.0.journal, &issuer, &mut download).await;
    match result {
        Ok(_) => {
            let mut session = portal.session();
            session.download = Some(download);
            session.busy = false;
            session.screen = Screen::Application;
        }
        Err(e) => portal.fail_with(&e),
    }
}

/// (e)(f) the download application, or a wait while the provider answers.
async fn application(State(portal): State<Portal>) -> Response {
    let mut session = portal.session();
    let back = !session.busy
        && session.screen == Screen::Sign
        && session
            .download
            .as_ref()
            .is_some_and(|d| d.application().is_none());
    if back {
        session.screen = Screen::Application;
    }
    if let Some(r) = elsewhere(&session, Screen::Application) {
        return r;
    }
    let frame = portal.frame(Stage::Apply, refresh(&session));
    let request = session.download.as_ref().and_then(Download::request);
    let (Some(request), false) = (request, session.busy) else {
        return page(pages::waiting(
            &frame,
            &format!(
                "Asking {} for the download application…",
                portal.0.provider_name
            ),
            "This takes a moment.",
        ));
    };
    let offer = session.offer();
    let view = ApplicationView {
        provider: portal.0.provider_name.clone(),
        issuer: portal.0.issuer_name.clone(),
        service: session.service_name(),
        application: offer
            .map(|o| o.service.application.name.clone())
            .unwrap_or_default(),
        aid: hex::encode_upper(request.item_id.as_bytes()),
        version: request.version,
        size: request.size,
        valid_until: pages::utc(request.not_after.0),
    };
    page(pages::application(&frame, &view))
}

async fn applied(State(portal): State<Portal>) -> Response {
    let mut session = portal.session();
    if let Some(r) = elsewhere(&session, Screen::Application) {
        return r;
    }
    if !session.busy
        && session
            .download
            .as_ref()
            .is_some_and(|d| d.request().is_some())
    {
        session.pin_notice = None;
        session.screen = Screen::Sign;
    }
    see_other(session.screen.path())
}

/// (g) the PIN.
async fn sign(State(portal): State<Portal>) -> Response {
    {
        let mut session = portal.session();
        let back = !session.busy
            && session.screen == Screen::Problem
            && session
                .download
                .as_ref()
                .is_some_and(|d| d.request().is_some());
        if back {
            session.screen = Screen::Sign;
        }
        if let Some(r) = elsewhere(&session, Screen::Sign) {
            return r;
        }
    }
    let tries_left = match portal.probe() {
        ReaderState::Card { pin_tries, .. } => Some(pin_tries),
        _ => None,
    };
    let session = portal.session();
    let view = SignView {
        service: session.service_name(),
        tries_left,
        notice: session.pin_notice.map(str::to_string),
    };
    page(pages::sign(&portal.frame(Stage::Sign, Refresh::Off), &view))
}

fn pin_is_well_formed(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

async fn pin_entered(
    State(portal): State<Portal>,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    let pin = form.remove("pin").unwrap_or_default();
    drop(form);
    {
        let mut session = portal.session();
        if let Some(r) = elsewhere(&session, Screen::Sign) {
            return r;
        }
        if !pin_is_well_formed(&pin) {
            session.pin_notice = Some("A PIN is 4 to 12 digits.");
            return see_other(Screen::Sign.path());
        }
        session.pin_notice = None;
    }
    portal.start(
        Screen::Signing,
        |p, pin| Box::pin(sign_and_finish_job(p, pin.unwrap_or_default())),
        Some(pin),
    );
    see_other(portal.session().screen.path())
}

/// S7–S16 on the worker: VERIFY and SIGN DOWNLOAD APPLICATION (unless the card signed it
/// already), then the resumable finish; afterwards the card's standing once more for (i).
async fn sign_and_finish_job(portal: Portal, pin: String) {
    let (_lock, mut card) = match portal.open_card().await {
        Ok(c) => c,
        Err(problem) => {
            let mut session = portal.session();
            portal.fail(&mut session, Stage::Sign, problem);
            return;
        }
    };
    let Some(mut download) = portal.session().download.clone() else {
        let mut session = portal.session();
        session.busy = false;
        session.screen = Screen::Insert;
        return;
    };
    if !past_signing(&download) {
        if let Err(e) = download::sign(&mut card, &portal.0.journal, &pin, &mut download) {
            return portal.fail_with(&e);
        }
    }
    {
        let mut session = portal.session();
        session.load_blocks = download
            .request()
            .map_or(1, |r| r.size.div_ceil(LOAD_BLOCK_BYTES).max(1));
        session.loading = None;
        session.download = Some(download.clone());
        session.screen = Screen::Progress;
    }
    let reporter = portal.clone();
    let mut steps = move |step: Step| {
        let mut session = reporter.session();
        let reached = match step {
            Step::Opened => Reached::Opened,
            Step::Authorized { attempt } => {
                session.attempt = Some(attempt);
                Reached::Opened
            }
            Step::PackageFetched => Reached::Sent,
            Step::Installed => Reached::Installed,
            Step::Recorded => Reached::Recorded,
            Step::Notified => Reached::Notified,
        };
        session.reached = session.reached.max(reached);
        download::Control::Continue
    };
    let finished = download::finish(
        &mut card,
        &portal.0.parties,
        &portal.0.journal,
        &pin,
        &mut download,
        &mut steps,
    )
    .await;
    drop(pin);
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            portal.session().download = Some(download);
            return portal.fail_with(&e);
        }
    };
    // The standing after the installation; if the issuer cannot be asked now, (i) shows the
    // installation without it.
    let after = download::check(&mut card, &portal.0.parties).await.ok();
    let mut session = portal.session();
    session.reached = Reached::Notified;
    session.download = Some(download);
    session.finished = Some(finished);
    session.after = after;
    session.busy = false;
    session.screen = Screen::Done;
}

/// (h) signing.
async fn signing(State(portal): State<Portal>) -> Response {
    let session = portal.session();
    if let Some(r) = elsewhere(&session, Screen::Signing) {
        return r;
    }
    page(pages::signing(
        &portal.frame(Stage::Sign, refresh(&session)),
    ))
}

/// S8–S15 progress.
async fn progress(State(portal): State<Portal>) -> Response {
    let session = portal.session();
    if let Some(r) = elsewhere(&session, Screen::Progress) {
        return r;
    }
    let issuer = &portal.0.issuer_name;
    let provider = &portal.0.provider_name;
    let items: [(Reached, String, Option<String>); 5] = [
        (
            Reached::Opened,
            format!("Your card's signature verified by {issuer}"),
            None,
        ),
        (
            Reached::Sent,
            "Application sent".to_string(),
            session
                .attempt
                .filter(|a| *a > 1)
                .map(|a| format!("attempt {a}")),
        ),
        (
            Reached::Installed,
            "Installing on your card".to_string(),
            session
                .loading
                .filter(|_| session.reached < Reached::Installed)
                .map(|(block, of)| format!("block {block} of {of}")),
        ),
        (
            Reached::Recorded,
            format!("Confirmation recorded by {issuer}"),
            None,
        ),
        (Reached::Notified, format!("{provider} notified"), None),
    ];
    let mut running_shown = false;
    let steps = items
        .into_iter()
        .map(|(at, label, note)| {
            let mark = if session.reached >= at {
                Mark::Done
            } else if !running_shown && session.busy {
                running_shown = true;
                Mark::Running
            } else {
                Mark::Waiting
            };
            CheckItem { label, note, mark }
        })
        .collect();
    let view = ProgressView {
        service: session.service_name(),
        steps,
    };
    page(pages::progress(
        &portal.frame(Stage::Install, refresh(&session)),
        &view,
    ))
}

/// (i) the service has started.
async fn done(State(portal): State<Portal>) -> Response {
    let session = portal.session();
    if let Some(r) = elsewhere(&session, Screen::Done) {
        return r;
    }
    let standing = session.after.as_ref().or(session.standing.as_ref());
    let view = DoneView {
        service: session.service_name(),
        provider: portal.0.provider_name.clone(),
        member_since: session
            .finished
            .as_ref()
            .map(|f| pages::utc(f.member_since)),
        applications: standing.map(lines).unwrap_or_default(),
        capacity: standing.map(|s| s.capacity).unwrap_or_default(),
        free: standing.map(|s| s.free).unwrap_or_default(),
    };
    page(pages::done(&portal.frame(Stage::Done, Refresh::Off), &view))
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

/// Continue: where the download stopped — the session's, the journal's for the card in the
/// reader, or one the issuer holds open for the card ([`download::adopt`]) — after checking the
/// card again when its standing is not at hand.
async fn resume(State(portal): State<Portal>) -> Response {
    let (has_download, open) = {
        let session = portal.session();
        if session.busy
            || !matches!(
                session.screen,
                Screen::Insert | Screen::Problem | Screen::Services
            )
        {
            return see_other(session.screen.path());
        }
        let open = session
            .standing
            .as_ref()
            .and_then(|s| Some((s.card_id, s.open_downloads.first()?.clone())));
        (session.download.is_some(), open)
    };
    if !has_download {
        let journalled = match portal.probe() {
            ReaderState::Card { card_id, .. } => {
                pki::CardId::from_slice(&hex::decode(card_id).unwrap_or_default())
                    .and_then(|id| download::resume(&portal.0.journal, id).ok().flatten())
            }
            _ => None,
        };
        let found = match (journalled, open) {
            (Some(d), _) => Some(d),
            (None, Some((card_id, op))) => {
                let adopted = match protocol::OperationId::from_hex(&op) {
                    Ok(op) => {
                        download::adopt(&portal.0.parties, &portal.0.journal, card_id, op).await
                    }
                    Err(e) => Err(crate::flows::FlowError::Invalid {
                        step: "taking up the download the issuer holds open",
                        detail: e.to_string(),
                    }),
                };
                match adopted {
                    Ok(d) => Some(d),
                    Err(e) => {
                        portal.fail_with(&e);
                        return see_other(Screen::Problem.path());
                    }
                }
            }
            (None, None) => None,
        };
        portal.session().download = found;
    }
    {
        let mut session = portal.session();
        session.problem = None;
        let next = match (&session.standing, &session.download) {
            (Some(_), Some(d)) if past_signing(d) => {
                session.pin_notice = Some("Enter your PIN to continue the download.");
                Some(Screen::Sign)
            }
            (Some(_), Some(d)) if d.request().is_some() => Some(Screen::Application),
            (Some(_), Some(_)) => None,
            (Some(_), None) => Some(Screen::Services),
            (None, Some(_)) => None,
            (None, None) if session.terms_accepted.is_some() => None,
            (None, None) => Some(Screen::Insert),
        };
        if let Some(screen) = next {
            session.screen = screen;
            return see_other(screen.path());
        }
    }
    let has_standing = portal.session().standing.is_some();
    if has_standing {
        portal.start(Screen::Application, |p, _| Box::pin(request_job(p)), None);
    } else {
        portal.session().checked = [Mark::Running, Mark::Waiting, Mark::Waiting];
        portal.start(Screen::Checking, |p, _| Box::pin(check_job(p)), None);
    }
    see_other(portal.session().screen.path())
}

/// Start over: back to (a). The journal keeps an unfinished download for the card, except one
/// the problem shown says can never complete ([`Action::StartAfresh`](messages::Action): the
/// card refused to sign its request, or the issuer found the signed application expired): that
/// entry is removed first, so (a) does not offer to continue it and the choice at (d) begins a
/// new operation ([`download::begin`]).
async fn finish(State(portal): State<Portal>) -> Response {
    let mut session = portal.session();
    if session.busy {
        return see_other(session.screen.path());
    }
    let dead = match (&session.screen, &session.problem, &session.download) {
        (Screen::Problem, Some((_, problem)), Some(download))
            if problem.action == messages::Action::StartAfresh =>
        {
            Some(download.clone())
        }
        _ => None,
    };
    if let Some(download) = dead {
        if let Err(e) = download::forget(&portal.0.journal, &download) {
            let stage = session.screen.stage();
            let problem = messages::explain(&e, &portal.situation(&session));
            portal.fail(&mut session, stage, problem);
            return see_other(Screen::Problem.path());
        }
    }
    *session = Session::new();
    see_other(Screen::Insert.path())
}

#[cfg(test)]
mod tests {
    use party_api::issuer::IssuerClient;
    use party_api::provider::ProviderClient;
    use party_api::HttpClient;

    use super::*;
    use crate::flows::FlowError;
    use crate::journal::JournalEntry;
    use crate::ChannelError;

    const CARD: pki::CardId = pki::CardId([0x7A; 16]);

    /// A portal whose journal is in `dir`, with an empty reader and parties nobody answers at:
    /// these tests drive the session's handlers directly.
    fn portal(dir: &std::path::Path) -> Portal {
        let nowhere = "http://127.0.0.1:9";
        let reader = super::super::OpenWith::new("Empty reader", || {
            Err(ChannelError::Transport {
                detail: "no card".into(),
            })
        });
        let config = PortalConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            reader: Box::new(reader),
            parties: Parties {
                issuer: IssuerClient::new(HttpClient::new(nowhere).unwrap()),
                provider: ProviderClient::new(HttpClient::new(nowhere).unwrap()),
                provider_id: pki::PartyId::new("provider-1").unwrap(),
            },
            journal_dir: dir.to_path_buf(),
            issuer_name: "Kanto Card Issuer".into(),
            provider_name: "Tram & Co".into(),
        };
        Portal::new(config, "csrf".into(), Worker::start().unwrap())
    }

    /// The card refused to sign the journalled request with `sw`.
    fn signing_refused(sw: u16) -> FlowError {
        FlowError::Card {
            step: download::SIGN_STEP,
            source: crate::ClientError::Refused {
                command: "SIGN DOWNLOAD APPLICATION",
                status: apdu::Status(sw),
                meaning: crate::meaning(apdu::Status(sw)),
            },
        }
    }

    /// A download journalled for the card with the provider's request, the session on
    /// `/problem` with the words for `error`.
    fn failed_download(portal: &Portal, error: &FlowError) -> Download {
        let mut download =
            download::begin(&portal.0.journal, CARD, [3; 32], "transit.pass").unwrap();
        download.entry.request = Some("3000".into());
        portal.0.journal.write(&download.entry).unwrap();
        portal.session().download = Some(download.clone());
        portal.fail_with(error);
        assert_eq!(portal.session().screen, Screen::Problem);
        download
    }

    async fn start_over(portal: &Portal) {
        let answer = finish(State(portal.clone())).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        assert_eq!(answer.headers()[LOCATION], "/");
        let session = portal.session();
        assert_eq!(session.screen, Screen::Insert);
        assert!(session.download.is_none() && session.problem.is_none());
    }

    #[tokio::test]
    async fn start_over_after_a_refused_signature_forgets_the_journalled_operation() {
        for sw in [0x6984, 0x6A80] {
            let dir = tempfile::tempdir().unwrap();
            let portal = portal(dir.path());
            failed_download(&portal, &signing_refused(sw));
            let shown = portal.session().problem.clone().unwrap().1;
            assert_eq!(shown.action, messages::Action::StartAfresh, "{sw:04X}");
            start_over(&portal).await;
            // Nothing left to continue: (a) offers "Continue" to (b), and the choice at (d)
            // begins a new operation.
            assert!(portal.0.journal.read(&CARD).unwrap().is_none(), "{sw:04X}");
            assert!(download::resume(&portal.0.journal, CARD).unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn start_over_keeps_a_download_that_can_still_finish() {
        let dir = tempfile::tempdir().unwrap();
        let portal = portal(dir.path());
        // The card pulled out while installing: Continue picks it up; Start over keeps it too.
        let pulled = FlowError::Card {
            step: download::INSTALL_STEP,
            source: crate::ClientError::Transport {
                command: "LOAD",
                source: apdu::chaining::TransceiveError::Transport(ChannelError::Transport {
                    detail: "no card".into(),
                }),
            },
        };
        let download = failed_download(&portal, &pulled);
        start_over(&portal).await;
        let kept = portal.0.journal.read(&CARD).unwrap().unwrap();
        assert_eq!(kept.operation_id, download.entry.operation_id);
    }

    #[tokio::test]
    async fn start_over_leaves_a_newer_operation_of_the_card_alone() {
        let dir = tempfile::tempdir().unwrap();
        let portal = portal(dir.path());
        failed_download(&portal, &signing_refused(0x6984));
        // Meanwhile the card's journal moved on to another operation (another portal).
        let newer = JournalEntry::new([9; 16], CARD, "transit.pass", [3; 32]);
        portal.0.journal.write(&newer).unwrap();
        start_over(&portal).await;
        assert_eq!(portal.0.journal.read(&CARD).unwrap(), Some(newer));
    }
}
