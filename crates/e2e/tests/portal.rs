//! The user's portal in a real browser (APP-4; docs/app-download.md §6–7): headless Chromium
//! driven over WebDriver through every screen of seed 003's figure 5, against real servers of
//! every party and a real card image. Each screen is checked for what it tells the user and
//! photographed: into `$CARGO_TARGET_TMPDIR/portal/`, or into the directory named by
//! `CARDWRIGHT_SCREENSHOTS` (`scripts/portal-screenshots.sh` refreshes `docs/portal/`).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use deployment::sample::{LOUNGE, TRANSIT};
use deployment::{Deployment, DeploymentConfig};
use e2e::webdriver::{Browser, WebDriverError};
use e2e::Hosted;
use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::provider::ProviderClient;
use party_api::HttpClient;
use protocol::{ServiceId, UserInfo};
use terminal::flows;
use terminal::portal::{serve, OneCard, PortalConfig, RunningPortal};
use terminal::{CardChannel, CardClient, ChannelError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PIN: &str = "2468";
const HOLDER: &str = "Alice Example";
/// A new card's room: the transit pass fits, the lounge membership does not.
const CAPACITY: u32 = 4096;
const WAIT: Duration = Duration::from_secs(30);
/// GlobalPlatform LOAD (GP CS §11.6): the application goes to the card in 240-byte blocks
/// numbered in P2.
const INS_LOAD: u8 = 0xE8;

/// Where the card's commands may go: a test holds a job at a command to photograph the screen
/// the user sees meanwhile, then lets it go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Nothing,
    Everything,
    /// One command: INS and P2 (LOAD's block number).
    Command {
        ins: u8,
        p2: u8,
    },
}

#[derive(Default)]
struct GateState {
    hold: Option<Hold>,
    /// A command waits at the gate.
    held: bool,
    /// The card is pulled out at this command (INS, P2): the command fails and the card comes
    /// back from its image, as after a power loss (once).
    pull_at: Option<(u8, u8)>,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    moved: Condvar,
}

impl Gate {
    fn hold(&self, hold: Hold) {
        self.state.lock().unwrap().hold = Some(hold);
        self.moved.notify_all();
    }

    fn release(&self) {
        self.hold(Hold::Nothing);
    }

    /// Waits (on a blocking thread) until a command waits at the gate.
    async fn held(self: &Arc<Self>) {
        let gate = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = gate.state.lock().unwrap();
            while !state.held {
                state = gate.moved.wait(state).unwrap();
            }
        })
        .await
        .unwrap();
    }
}

fn blocks(hold: Option<Hold>, command: &[u8]) -> bool {
    match hold {
        None | Some(Hold::Nothing) => false,
        Some(Hold::Everything) => true,
        Some(Hold::Command { ins, p2 }) => {
            command.get(1) == Some(&ins) && command.get(3) == Some(&p2)
        }
    }
}

/// The card image behind a [`Gate`]. The portal's card jobs run on their own thread, so a held
/// command blocks only the job.
struct GatedCard {
    /// `None` only while the card is being put back.
    card: Option<Hosted>,
    dir: PathBuf,
    gate: Arc<Gate>,
}

impl CardChannel for GatedCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut state = self.gate.state.lock().unwrap();
        while blocks(state.hold, command) {
            state.held = true;
            self.gate.moved.notify_all();
            state = self.gate.moved.wait(state).unwrap();
        }
        state.held = false;
        let pulled = state
            .pull_at
            .is_some_and(|(ins, p2)| command.get(1) == Some(&ins) && command.get(3) == Some(&p2));
        if pulled {
            state.pull_at = None;
            drop(state);
            // The image is locked while open: the old card goes before the new one boots.
            drop(self.card.take());
            self.card = Some(Hosted::open(&self.dir).unwrap());
            return Err(ChannelError::Transport {
                detail: "the card was pulled out of the reader".into(),
            });
        }
        drop(state);
        match &mut self.card {
            Some(card) => card.transmit(command),
            None => Err(ChannelError::Transport {
                detail: "no card".into(),
            }),
        }
    }
}

/// Saves the browser's screen as `NN-name.png`.
struct Camera {
    dir: PathBuf,
}

impl Camera {
    fn new() -> Camera {
        let dir = match std::env::var_os("CARDWRIGHT_SCREENSHOTS") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    // Relative to the workspace, as scripts/portal-screenshots.sh names it.
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../..")
                        .join(dir)
                }
            }
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal"),
        };
        Camera { dir }
    }

    async fn shoot(&self, browser: &Browser, name: &str) {
        let path = self.dir.join(format!("{name}.png"));
        browser.screenshot(&path).await.unwrap();
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    }
}

/// Numbers as the portal prints them: thousands grouped by a space (WebDriver reads the no-break
/// space as a plain one).
fn grouped(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

struct World {
    dir: tempfile::TempDir,
    deployment: Deployment,
    card_id: pki::CardId,
    gate: Arc<Gate>,
    portal: RunningPortal,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Box::pin(Deployment::start(DeploymentConfig::new(
        dir.path().join("deployment"),
    )))
    .await
    .unwrap();
    deployment.publish_sample_catalog().await.unwrap();
    let issuer = IssuerClient::new(HttpClient::new(&deployment.issuer.url).unwrap());
    let card_dir = dir.path().join("card");
    let mut card = CardClient::new(Hosted::create(&card_dir).unwrap());
    flows::personalise(
        &mut card,
        &issuer,
        &deployment.issuer.operator_token,
        &PersonaliseRequest {
            pin: PIN.into(),
            pin_try_limit: None,
            capacity: Some(CAPACITY),
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let user = UserInfo::new("alice", HOLDER, "alice@example.org").unwrap();
    let registered = flows::register(&mut card, &issuer, PIN, &user, &mut |_| {})
        .await
        .unwrap();
    drop(card);
    let gate = Arc::new(Gate::default());
    let portal = start_portal(&deployment, dir.path(), &gate).await;
    World {
        dir,
        deployment,
        card_id: registered.card_id,
        gate,
        portal,
    }
}

/// A portal (the terminal) for the card in `dir/card`, journalling in `dir/terminal`.
async fn start_portal(
    deployment: &Deployment,
    dir: &std::path::Path,
    gate: &Arc<Gate>,
) -> RunningPortal {
    let card_dir = dir.join("card");
    let gated = GatedCard {
        card: Some(Hosted::open(&card_dir).unwrap()),
        dir: card_dir,
        gate: gate.clone(),
    };
    serve(PortalConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        reader: Box::new(OneCard::new("Test reader", Box::new(gated))),
        parties: e2e::parties(deployment).unwrap(),
        journal_dir: dir.join("terminal").join("downloads"),
        issuer_name: deployment.issuer.id.as_str().to_string(),
        provider_name: deployment.provider.id.as_str().to_string(),
    })
    .await
    .unwrap()
}

/// Waits until the page shows `needle` and returns its text. A page replacing itself (the
/// one-second refresh while a job runs) can make Chromium answer that the element read is no
/// longer in the document: that is read again.
async fn see(browser: &Browser, needle: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        match browser.wait_for_text(needle, WAIT).await {
            Ok(text) => return text,
            Err(WebDriverError::Refused { message, .. })
                if message.contains("does not belong to the document")
                    && start.elapsed() < WAIT => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

fn assert_shows(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "the page should show {w:?}:\n{text}");
    }
}

/// Runs a scenario on a runtime whose driving thread has room for it: polling the whole
/// deployment's start from one test body needs more than a test thread's 2 MiB in debug builds.
fn run<F, Fut>(scenario: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let driver = std::thread::Builder::new()
        .name("scenario".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario());
        })
        .unwrap();
    if let Err(panic) = driver.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_user_adds_a_service_through_every_screen() {
    run(every_screen);
}

async fn every_screen() {
    let w = Box::pin(world()).await;
    let issuer_id = w.deployment.issuer.id.as_str().to_string();
    let provider_id = w.deployment.provider.id.as_str().to_string();
    let camera = Camera::new();
    let browser = Box::pin(Browser::start()).await.unwrap();

    // (a) insert card: the card in the reader answers.
    browser.goto(w.portal.url()).await.unwrap();
    let text = see(&browser, "Insert your card").await;
    let room = format!("{} of {} bytes free", grouped(CAPACITY), grouped(CAPACITY));
    assert_shows(&text, &[&provider_id, "Test reader", &room]);
    camera.shoot(&browser, "01-insert-card").await;
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // (b) terms: Continue without ticking is refused in words.
    let text = see(&browser, "Please read the terms.").await;
    assert_shows(
        &text,
        &["Version 1", "The service is provided to the holder"],
    );
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = see(&browser, "Tick 'I agree' to continue.").await;
    assert!(!text.contains("Checking your card"));
    camera.shoot(&browser, "02-terms").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    w.gate.hold(Hold::Everything);
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // (c) checking: held at the card's first command.
    let text = see(&browser, &format!("Checking your card with {issuer_id}")).await;
    assert_shows(&text, &["proves who it is"]);
    w.gate.held().await;
    assert_eq!(
        browser
            .find_all(".checklist li.running")
            .await
            .unwrap()
            .len(),
        1,
        "the card is proving itself; the issuer has nothing yet"
    );
    camera.shoot(&browser, "03-checking").await;
    w.gate.release();

    // (d) verified: holder, capacity, what fits and what does not.
    let text = see(&browser, "Card verified").await;
    assert_shows(
        &text,
        &[
            &format!("Holder: {HOLDER}"),
            &room,
            "No applications on your card yet.",
            TRANSIT.name,
            LOUNGE.name,
            &format!(
                "Needs {} bytes; your card has {} bytes free.",
                grouped(LOUNGE.size),
                grouped(CAPACITY)
            ),
        ],
    );
    let lounge = browser.find("#service-lounge").await.unwrap();
    assert!(
        !lounge.is_enabled().await.unwrap(),
        "a service that does not fit is disabled"
    );
    camera.shoot(&browser, "04-services").await;
    browser
        .find("#service-transit")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find("#choose")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // (e)(f) the download application the card will sign.
    let text = see(
        &browser,
        &format!("{provider_id} asks you to apply for {}", TRANSIT.name),
    )
    .await;
    assert_shows(
        &text,
        &[
            TRANSIT.application,
            &TRANSIT.aid.to_uppercase(),
            &format!("{} bytes", grouped(TRANSIT.size)),
            &issuer_id,
            "Valid until",
        ],
    );
    camera.shoot(&browser, "05-application").await;
    browser.find("#apply").await.unwrap().click().await.unwrap();

    // (g) PIN.
    let text = see(&browser, "Sign with your card").await;
    assert_shows(&text, &["3 tries left"]);
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    camera.shoot(&browser, "06-sign").await;
    w.gate.hold(Hold::Everything);
    browser.find("#sign").await.unwrap().click().await.unwrap();

    // (h) signing, held at the card's first command.
    see(&browser, "Your card is signing the application").await;
    w.gate.held().await;
    camera.shoot(&browser, "07-signing").await;
    {
        // Let the first command go and hold the job at the fifth of the application's blocks.
        let mut state = w.gate.state.lock().unwrap();
        state.held = false;
        state.hold = Some(Hold::Command {
            ins: INS_LOAD,
            p2: 4,
        });
        w.gate.moved.notify_all();
    }

    // Progress, held while the card receives the application.
    w.gate.held().await;
    let progress = format!("http://127.0.0.1:{}/progress", w.portal.addr().port());
    browser.goto(&progress).await.unwrap();
    let text = see(&browser, "Installing on your card").await;
    assert_eq!(
        browser.find_all(".checklist li.done").await.unwrap().len(),
        2,
        "verified and sent, not yet installed:\n{text}"
    );
    assert_shows(
        &text,
        &[
            &format!("Your card's signature verified by {issuer_id}"),
            "Application sent",
            &format!("block 5 of {}", TRANSIT.size.div_ceil(240)),
            &format!("{provider_id} notified"),
        ],
    );
    camera.shoot(&browser, "08-progress").await;
    w.gate.release();

    // (i) the service has started.
    let free_after = CAPACITY - TRANSIT.size;
    let text = see(&browser, &format!("{} has started", TRANSIT.name)).await;
    assert_shows(
        &text,
        &[
            &format!("Member of {provider_id} since"),
            TRANSIT.application,
            &format!(
                "{} of {} bytes free",
                grouped(free_after),
                grouped(CAPACITY)
            ),
        ],
    );
    camera.shoot(&browser, "09-done").await;
    browser
        .find("#finish")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Insert your card").await;
    browser.quit().await.unwrap();

    // The parties' records say the same.
    let issuer = IssuerClient::new(HttpClient::new(&w.deployment.issuer.url).unwrap());
    let registry = issuer
        .registry(&w.deployment.issuer.operator_token, &w.card_id)
        .await
        .unwrap();
    assert_eq!(registry.free, free_after);
    assert!(registry
        .applications
        .iter()
        .any(|a| a.aid.eq_ignore_ascii_case(TRANSIT.aid) && a.name == TRANSIT.application));
    let provider = ProviderClient::new(HttpClient::new(&w.deployment.provider.url).unwrap());
    let members = provider
        .service_members(
            &w.deployment.provider.operator_token,
            &ServiceId::new(TRANSIT.service_id).unwrap(),
        )
        .await
        .unwrap();
    let member: Vec<_> = members
        .members
        .iter()
        .filter(|m| m.card_id == w.card_id.to_hex())
        .collect();
    assert_eq!(member.len(), 1, "{members:?}");
    assert_eq!(member[0].user.name, HOLDER);
    w.portal.stop().await.unwrap();
    w.deployment.stop().await.unwrap();
}

/// One plain HTTP/1.1 exchange with the portal (`Connection: close`): status, headers, body.
async fn http(
    portal: &RunningPortal,
    head: &str,
    headers: &[String],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(portal.addr()).await.unwrap();
    let mut request = format!(
        "{head} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
        portal.addr().port()
    );
    for h in headers {
        request.push_str(&format!("{h}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

#[test]
fn a_service_that_does_not_fit_is_refused_with_both_numbers() {
    run(does_not_fit);
}

async fn does_not_fit() {
    let w = Box::pin(world()).await;
    let camera = Camera::new();
    let browser = Box::pin(Browser::start()).await.unwrap();
    browser.goto(w.portal.url()).await.unwrap();
    see(&browser, "Insert your card").await;
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Please read the terms.").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Card verified").await;

    // The page does not let the user pick it ...
    let lounge = browser.find("#service-lounge").await.unwrap();
    assert!(!lounge.is_enabled().await.unwrap());
    browser
        .find("label[for=service-lounge]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(!browser
        .find("#service-lounge")
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap());

    // ... so pick it as a forged form would, in the same session (the start link's cookie and
    // the page's CSRF token), and see the refusal the portal answers.
    let start = &w.portal.url()[w.portal.url().find("/start").unwrap()..];
    let (status, head, _) = http(&w.portal, &format!("GET {start}"), &[], "").await;
    assert_eq!(status, 303);
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cookie = format!("Cookie: {cookie}");
    let (status, _, page) = http(
        &w.portal,
        "GET /services",
        std::slice::from_ref(&cookie),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let marker = r#"name="csrf" value=""#;
    let at = page.find(marker).unwrap() + marker.len();
    let csrf = &page[at..at + 64];
    let (status, head, _) = http(
        &w.portal,
        "POST /services",
        &[
            cookie.clone(),
            "Content-Type: application/x-www-form-urlencoded".to_string(),
        ],
        &format!("csrf={csrf}&service={}", LOUNGE.service_id),
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        head.to_ascii_lowercase().contains("location: /problem"),
        "{head}"
    );

    browser.goto(w.portal.url()).await.unwrap();
    let text = see(&browser, "Not enough room on your card.").await;
    assert_shows(
        &text,
        &[
            &format!(
                "{} needs {} bytes; your card has {} bytes free.",
                LOUNGE.application,
                grouped(LOUNGE.size),
                grouped(CAPACITY)
            ),
            "Remove an application you no longer use, or choose another service.",
        ],
    );
    camera.shoot(&browser, "10-does-not-fit").await;
    browser.find("#next").await.unwrap().click().await.unwrap();
    see(&browser, "Card verified").await;
    browser.quit().await.unwrap();
    w.portal.stop().await.unwrap();
    w.deployment.stop().await.unwrap();
}

#[test]
fn a_wrong_pin_is_said_with_the_tries_left_and_the_right_one_goes_on() {
    run(wrong_pin_then_right);
}

async fn wrong_pin_then_right() {
    let w = Box::pin(world()).await;
    let camera = Camera::new();
    let browser = Box::pin(Browser::start()).await.unwrap();
    browser.goto(w.portal.url()).await.unwrap();
    see(&browser, "Insert your card").await;
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Please read the terms.").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Card verified").await;
    browser
        .find("#service-transit")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find("#choose")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "asks you to apply for").await;
    browser.find("#apply").await.unwrap().click().await.unwrap();
    see(&browser, "3 tries left").await;
    browser
        .find("#pin")
        .await
        .unwrap()
        .fill("1357")
        .await
        .unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();

    let text = see(&browser, "That PIN is not correct.").await;
    assert_shows(
        &text,
        &["That PIN is not correct. 2 tries left before the card is blocked."],
    );
    camera.shoot(&browser, "11-wrong-pin").await;
    browser.find("#next").await.unwrap().click().await.unwrap();
    // The problem page also says "2 tries left": wait for the PIN page's own words.
    let text = see(&browser, "Enter your card's PIN").await;
    assert_shows(&text, &["2 tries left"]);
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();
    see(&browser, &format!("{} has started", TRANSIT.name)).await;
    browser.quit().await.unwrap();
    w.portal.stop().await.unwrap();
    w.deployment.stop().await.unwrap();
}

#[test]
fn a_card_pulled_out_while_installing_is_put_back_and_the_download_goes_on() {
    run(card_pulled_out);
}

async fn card_pulled_out() {
    let w = Box::pin(world()).await;
    let camera = Camera::new();
    let browser = Box::pin(Browser::start()).await.unwrap();
    browser.goto(w.portal.url()).await.unwrap();
    see(&browser, "Insert your card").await;
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Please read the terms.").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Card verified").await;
    browser
        .find("#service-transit")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find("#choose")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "asks you to apply for").await;
    browser.find("#apply").await.unwrap().click().await.unwrap();
    see(&browser, "3 tries left").await;
    w.gate.state.lock().unwrap().pull_at = Some((INS_LOAD, 3));
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();

    let text = see(&browser, "Your card was removed.").await;
    assert_shows(
        &text,
        &[
            "Your card was removed. Nothing was lost.",
            "Put it back in the reader and press Continue: the download picks up where it stopped.",
        ],
    );
    camera.shoot(&browser, "12-card-removed").await;
    browser.find("#next").await.unwrap().click().await.unwrap();
    // The card lost power: the PIN again, then a new attempt from the first block.
    let text = see(&browser, "Enter your PIN to continue the download.").await;
    assert_shows(&text, &["3 tries left"]);
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();
    let text = see(&browser, &format!("{} has started", TRANSIT.name)).await;
    assert_shows(
        &text,
        &[&format!(
            "{} of {} bytes free",
            grouped(CAPACITY - TRANSIT.size),
            grouped(CAPACITY)
        )],
    );
    browser.quit().await.unwrap();

    // Installed once, counted once.
    let issuer = IssuerClient::new(HttpClient::new(&w.deployment.issuer.url).unwrap());
    let registry = issuer
        .registry(&w.deployment.issuer.operator_token, &w.card_id)
        .await
        .unwrap();
    assert_eq!(registry.free, CAPACITY - TRANSIT.size);
    assert_eq!(registry.applications.len(), 1, "{registry:?}");
    w.portal.stop().await.unwrap();
    w.deployment.stop().await.unwrap();
}

#[test]
fn a_download_left_open_on_another_computer_is_finished_from_the_issuers_standing() {
    run(journal_lost);
}

/// Walks (a)-(d) and chooses the transit pass.
async fn up_to_the_application(browser: &Browser, portal: &RunningPortal) {
    browser.goto(portal.url()).await.unwrap();
    see(browser, "Insert your card").await;
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(browser, "Please read the terms.").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(browser, "Card verified").await;
    browser
        .find("#service-transit")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find("#choose")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(browser, "asks you to apply for").await;
    browser.find("#apply").await.unwrap().click().await.unwrap();
    see(browser, "3 tries left").await;
}

async fn journal_lost() {
    let mut w = Box::pin(world()).await;
    let browser = Box::pin(Browser::start()).await.unwrap();
    up_to_the_application(&browser, &w.portal).await;
    // The card is pulled out during the installation; then this computer is gone with its
    // journal.
    w.gate.state.lock().unwrap().pull_at = Some((INS_LOAD, 2));
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();
    see(&browser, "Your card was removed.").await;
    w.portal.stop().await.unwrap();
    std::fs::remove_dir_all(w.dir.path().join("terminal")).unwrap();

    // Another terminal: the issuer's standing lists the open download.
    w.portal = start_portal(&w.deployment, w.dir.path(), &w.gate).await;
    browser.goto(w.portal.url()).await.unwrap();
    let text = see(&browser, "Insert your card").await;
    assert!(!text.contains("did not finish"), "no journal here:\n{text}");
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Please read the terms.").await;
    browser.find("#agree").await.unwrap().click().await.unwrap();
    browser
        .find("#continue")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = see(&browser, "Card verified").await;
    assert_shows(
        &text,
        &["A download to this card was started and has not finished."],
    );
    browser
        .find("#unfinished button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&browser, "Enter your PIN to continue the download.").await;
    browser.find("#pin").await.unwrap().fill(PIN).await.unwrap();
    browser.find("#sign").await.unwrap().click().await.unwrap();
    see(&browser, &format!("{} has started", TRANSIT.name)).await;
    browser.quit().await.unwrap();

    let issuer = IssuerClient::new(HttpClient::new(&w.deployment.issuer.url).unwrap());
    let registry = issuer
        .registry(&w.deployment.issuer.operator_token, &w.card_id)
        .await
        .unwrap();
    assert_eq!(registry.free, CAPACITY - TRANSIT.size);
    assert_eq!(registry.applications.len(), 1, "{registry:?}");
    w.portal.stop().await.unwrap();
    w.deployment.stop().await.unwrap();
}
