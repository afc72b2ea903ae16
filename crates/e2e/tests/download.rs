//! End to end (issue 4): adding an application to a card over the Internet (APP-1…3) through
//! real servers and real card images, and every interruption REC-2 names — the terminal
//! killed, the issuer or the provider restarted, the card pulled out — at every step, each
//! ending with one installation, one registry entry and one member notification. Then the
//! refusals: a package or an SA altered on the way (the card), a download application signed
//! by another card (the issuer), no room on the card.

use deployment::sample::{LOUNGE, TRANSIT};
use deployment::{Databases, Deployment, DeploymentConfig, Role};
use e2e::Hosted;
use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::HttpClient;
use protocol::UserInfo;
use server_kit::testing::fresh_postgres_for_tests;
use terminal::download::{self, Control, Download, Fit, Step};
use terminal::flows::{self, FlowError, Parties};
use terminal::journal::Journal;
use terminal::{CardChannel, CardClient, ChannelError};

const PIN: &str = "2468";

struct Place {
    _dir: tempfile::TempDir,
    deployment: Deployment,
}

async fn deploy(postgres: bool, label: &str) -> Option<Place> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DeploymentConfig::new(dir.path().join("deployment"));
    if postgres {
        let mut urls = Vec::new();
        for party in ["ir", "dr", "issuer", "provider"] {
            urls.push(
                fresh_postgres_for_tests(&format!("{label}_{party}"))
                    .await?
                    .url,
            );
        }
        config.databases = Databases::Urls {
            issuer_registrar: urls[0].clone(),
            data_registrar: urls[1].clone(),
            issuer: urls[2].clone(),
            provider: urls[3].clone(),
        };
    }
    let deployment = Deployment::start(config).await.unwrap();
    deployment.publish_sample_catalog().await.unwrap();
    Some(Place {
        _dir: dir,
        deployment,
    })
}

/// A card channel that can be "pulled out": after `fail_after` more commands every command
/// fails, as a reader does when the card leaves it. `lose_answer` lets the failing command reach
/// the card first (its answer is lost on the way back).
struct Removable {
    card: Hosted,
    fail_after: Option<usize>,
    lose_answer: bool,
}

impl CardChannel for Removable {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        match self.fail_after {
            Some(0) => {
                if self.lose_answer {
                    self.lose_answer = false;
                    let _ = self.card.transmit(command);
                }
                Err(ChannelError::Transport {
                    detail: "the card was removed from the reader".into(),
                })
            }
            Some(ref mut n) => {
                *n -= 1;
                self.card.transmit(command)
            }
            None => self.card.transmit(command),
        }
    }
}

fn card_dir(dep: &Deployment, name: &str) -> std::path::PathBuf {
    dep.dir.join("cards").join(name)
}

/// A registered card (capacity 4 096 bytes) in its own image.
async fn new_card(dep: &Deployment, name: &str) -> CardClient<Removable> {
    let issuer = IssuerClient::new(HttpClient::new(&dep.issuer.url).unwrap());
    let mut card = CardClient::new(Hosted::create(&card_dir(dep, name)).unwrap());
    flows::personalise(
        &mut card,
        &issuer,
        &dep.issuer.operator_token,
        &PersonaliseRequest {
            pin: PIN.into(),
            pin_try_limit: None,
            capacity: Some(4096),
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let user = UserInfo::new(
        name,
        &format!("Holder {name}"),
        &format!("{name}@example.org"),
    )
    .unwrap();
    flows::register(&mut card, &issuer, PIN, &user, &mut |_| {})
        .await
        .unwrap();
    drop(card);
    reinsert(dep, name)
}

/// The card read again from its image: what a power-up after a removal sees (RAM lost).
fn reinsert(dep: &Deployment, name: &str) -> CardClient<Removable> {
    CardClient::new(Removable {
        card: Hosted::open(&card_dir(dep, name)).unwrap(),
        fail_after: None,
        lose_answer: false,
    })
}

/// Runs the whole flow for TRANSIT from the start, with `steps` hearing `finish`'s steps.
async fn begin_and_sign(
    card: &mut CardClient<Removable>,
    parties: &Parties,
    journal: &Journal,
) -> Download {
    let standing = download::check(card, parties).await.unwrap();
    let terms = download::terms(parties).await.unwrap();
    let digest = crypto::sha256(terms.text.as_bytes()).0;
    let mut d = download::begin(journal, standing.card_id, digest, TRANSIT.service_id).unwrap();
    download::request(parties, journal, &standing.issuer, &mut d)
        .await
        .unwrap();
    download::sign(card, journal, PIN, &mut d).unwrap();
    d
}

/// What every finished download must leave behind: the card holds the application once; the
/// issuer's registry lists it once with the free bytes lowered once; the provider has one
/// member for the card; the issuer's outbox delivered one notification; both ledgers verify.
async fn assert_installed_once(
    dep: &Deployment,
    parties: &Parties,
    card: &mut CardClient<Removable>,
    op: &protocol::OperationId,
) {
    let who = flows::identity(card).unwrap();
    let comparison = flows::compare(card, parties).await.unwrap();
    let on_card: Vec<_> = comparison
        .listing
        .contents
        .items()
        .iter()
        .filter(|i| hex::encode(i.item_id.as_bytes()) == TRANSIT.aid)
        .collect();
    assert_eq!(on_card.len(), 1, "the card holds the application once");
    assert!(
        comparison.in_sync(),
        "records equal the card: {comparison:?}"
    );

    let registry = parties
        .issuer
        .registry(&dep.issuer.operator_token, &who.card_id)
        .await
        .unwrap();
    let listed: Vec<_> = registry
        .applications
        .iter()
        .filter(|a| a.aid == TRANSIT.aid)
        .collect();
    assert_eq!(listed.len(), 1, "registry: {registry:?}");
    assert_eq!(registry.free, 4096 - TRANSIT.size, "registry: {registry:?}");

    let members = parties
        .provider
        .service_members(
            &dep.provider.operator_token,
            &protocol::ServiceId::new(TRANSIT.service_id).unwrap(),
        )
        .await
        .unwrap();
    let mine: Vec<_> = members
        .members
        .iter()
        .filter(|m| m.card_id == who.card_id.to_hex())
        .collect();
    assert_eq!(mine.len(), 1, "members: {members:?}");
    assert_eq!(mine[0].operation_id, op.to_hex());

    let state = parties.issuer.download(op).await.unwrap();
    assert_eq!(state.state, "installed");
    let notification = state.notification.clone().expect("a notification row");
    assert_eq!(notification.state, "delivered", "{notification:?}");
    assert!(
        state.attempts.iter().any(|a| a.sa_digest.is_some()),
        "{state:?}"
    );

    e2e::verify_ledgers(dep, parties, card).await.unwrap();
}

async fn happy_path(postgres: bool) {
    let Some(place) = deploy(postgres, "download_happy").await else {
        return;
    };
    let dep = &place.deployment;
    let parties = e2e::parties(dep).unwrap();
    let journal = Journal::new(dep.dir.join("terminal").join("downloads"));
    let mut card = new_card(dep, "alice").await;

    let standing = download::check(&mut card, &parties).await.unwrap();
    assert_eq!(standing.holder, "Holder alice");
    assert_eq!((standing.capacity, standing.free), (4096, 4096));
    assert!(standing.applications.is_empty() && standing.in_sync);
    let offers = download::offers(&parties, &standing).await.unwrap();
    let fit = |id: &str| {
        offers
            .iter()
            .find(|o| o.service.service_id == id)
            .unwrap()
            .fit
    };
    assert_eq!(fit(TRANSIT.service_id), Fit::Fits);
    assert_eq!(
        fit(LOUNGE.service_id),
        Fit::TooLarge {
            needs: LOUNGE.size,
            free: 4096
        }
    );

    let mut d = begin_and_sign(&mut card, &parties, &journal).await;
    let mut seen = Vec::new();
    let finished = download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |s| {
        seen.push(s);
        Control::Continue
    })
    .await
    .unwrap();
    assert!(finished.installed_now);
    assert_eq!(
        seen,
        [
            Step::Opened,
            Step::Authorized { attempt: 1 },
            Step::PackageFetched,
            Step::Installed,
            Step::Recorded,
            Step::Notified
        ]
    );
    assert_installed_once(dep, &parties, &mut card, &d.operation_id).await;
    assert!(
        journal.read(&d.card_id).unwrap().is_none(),
        "journal cleared"
    );

    // Afterwards the standing shows it, and the service is marked installed.
    let standing = download::check(&mut card, &parties).await.unwrap();
    assert_eq!(standing.free, 4096 - TRANSIT.size);
    assert_eq!(standing.applications.len(), 1);
    let offers = download::offers(&parties, &standing).await.unwrap();
    let transit = offers
        .iter()
        .find(|o| o.service.service_id == TRANSIT.service_id)
        .unwrap();
    assert_eq!(transit.fit, Fit::Installed);
    place.deployment.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_happy_path_on_sqlite() {
    happy_path(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_happy_path_on_postgres() {
    happy_path(true).await;
}

/// How a download is interrupted.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The terminal process dies: the flow stops, the journal stays.
    KillTerminal,
    /// The issuer's server is restarted at that point.
    RestartIssuer,
    /// The provider's server is restarted at that point.
    RestartProvider,
    /// Both registrars' servers are restarted at that point (the parties refresh CRLs).
    RestartRegistrars,
}

/// (The card pulled out is driven at every card command instead: [`removed_at_command`].)
const CUTS: [Cut; 4] = [
    Cut::KillTerminal,
    Cut::RestartIssuer,
    Cut::RestartProvider,
    Cut::RestartRegistrars,
];

/// Before `finish`: after begin (journal holds only the op), after request, after sign.
#[derive(Debug, Clone, Copy)]
enum Early {
    Begun,
    Requested,
    Signed,
}

async fn interrupted(place: &mut Place, name: &str, cut: Cut, at: Step) {
    let parties = e2e::parties(&place.deployment).unwrap();
    let journal = Journal::new(place.deployment.dir.join("terminal").join(name));
    let mut card = new_card(&place.deployment, name).await;
    let mut d = begin_and_sign(&mut card, &parties, &journal).await;
    let op = d.operation_id;
    let result = download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |s| {
        if s == at {
            Control::Abort
        } else {
            Control::Continue
        }
    })
    .await;
    assert!(
        matches!(result, Err(FlowError::Interrupted { .. })),
        "{cut:?} at {at:?}: {result:?}"
    );
    match cut {
        Cut::KillTerminal => {}
        Cut::RestartIssuer => place.deployment.restart(Role::Issuer).await.unwrap(),
        Cut::RestartProvider => place.deployment.restart(Role::Provider).await.unwrap(),
        Cut::RestartRegistrars => {
            place
                .deployment
                .restart(Role::IssuerRegistrar)
                .await
                .unwrap();
            place.deployment.restart(Role::DataRegistrar).await.unwrap();
        }
    }
    // The terminal starts again: the card from its image, the download from the journal.
    drop(card);
    let mut card = reinsert(&place.deployment, name);
    let who = flows::identity(&mut card).unwrap();
    let mut d = download::resume(&journal, who.card_id)
        .unwrap()
        .expect("the journal keeps the download");
    assert_eq!(d.operation_id, op);
    download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
        Control::Continue
    })
    .await
    .unwrap_or_else(|e| panic!("{cut:?} at {at:?}: resuming: {e}"));
    assert_installed_once(&place.deployment, &parties, &mut card, &op).await;
}

/// The card pulled out at the `n`th command of `finish` (counting from its first), the answer
/// of that command lost or not: then re-inserted and the download resumed.
async fn removed_at_command(place: &Place, name: &str, n: usize, lose_answer: bool) -> bool {
    let parties = e2e::parties(&place.deployment).unwrap();
    let journal = Journal::new(place.deployment.dir.join("terminal").join(name));
    let mut card = new_card(&place.deployment, name).await;
    let mut d = begin_and_sign(&mut card, &parties, &journal).await;
    let op = d.operation_id;
    card.channel().fail_after = Some(n);
    card.channel().lose_answer = lose_answer;
    let first = download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
        Control::Continue
    })
    .await;
    let completed_first = first.is_ok();
    drop(card);
    let mut card = reinsert(&place.deployment, name);
    if let Some(mut d) = download::resume(&journal, d.card_id).unwrap() {
        download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
            Control::Continue
        })
        .await
        .unwrap_or_else(|e| panic!("removed at command {n} (lost answer {lose_answer}): {e}"));
    }
    assert_installed_once(&place.deployment, &parties, &mut card, &op).await;
    completed_first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interruption_resumes_to_one_installation() {
    let mut place = deploy(false, "download_cuts").await.unwrap();
    let steps = [
        Step::Opened,
        Step::Authorized { attempt: 1 },
        Step::PackageFetched,
        Step::Installed,
        Step::Recorded,
    ];
    let mut n = 0;
    for cut in CUTS {
        for at in steps {
            n += 1;
            interrupted(&mut place, &format!("cut{n}"), cut, at).await;
        }
    }

    // Before finish: the terminal killed after each early step resumes from its journal.
    for early in [Early::Begun, Early::Requested, Early::Signed] {
        let name = format!("early-{early:?}");
        let parties = e2e::parties(&place.deployment).unwrap();
        let journal = Journal::new(place.deployment.dir.join("terminal").join(&name));
        let mut card = new_card(&place.deployment, &name).await;
        let standing = download::check(&mut card, &parties).await.unwrap();
        let terms = download::terms(&parties).await.unwrap();
        let digest = crypto::sha256(terms.text.as_bytes()).0;
        let mut d =
            download::begin(&journal, standing.card_id, digest, TRANSIT.service_id).unwrap();
        if !matches!(early, Early::Begun) {
            download::request(&parties, &journal, &standing.issuer, &mut d)
                .await
                .unwrap();
        }
        if matches!(early, Early::Signed) {
            download::sign(&mut card, &journal, PIN, &mut d).unwrap();
        }
        // Killed: a new terminal process, the card re-inserted.
        drop(card);
        let mut card = reinsert(&place.deployment, &name);
        let mut d = download::resume(&journal, standing.card_id)
            .unwrap()
            .expect("journalled");
        download::request(&parties, &journal, &standing.issuer, &mut d)
            .await
            .unwrap();
        if d.application().is_none() {
            download::sign(&mut card, &journal, PIN, &mut d).unwrap();
        }
        let op = d.operation_id;
        download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
            Control::Continue
        })
        .await
        .unwrap();
        assert_installed_once(&place.deployment, &parties, &mut card, &op).await;
    }

    // The card pulled out at every command of finish, and with the answer of each lost.
    let mut k = 0;
    for lose_answer in [false, true] {
        for at in 0.. {
            k += 1;
            let done = removed_at_command(&place, &format!("pull{k}"), at, lose_answer).await;
            if done {
                // Past the card's last command: every earlier one was cut once.
                assert!(at > 10, "finish sent only {at} card commands");
                break;
            }
        }
    }
    eprintln!("{k} card removals, each resumed to one installation");
    place.deployment.stop().await.unwrap();
}

/// What the card and the issuer refuse on the way, each leaving nothing behind: a package
/// altered in transit (the card, 6A80; a new attempt then installs it), an SA altered (the card,
/// 6984), a download application signed by another card (the issuer, 422), a request for
/// another card (that card refuses to sign it, 6A80), a service larger than the card's room
/// (the card refuses to sign, 6A84, and nothing is opened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_nothing_behind() {
    let place = deploy(false, "download_refusals").await.unwrap();
    let dep = &place.deployment;
    let parties = e2e::parties(dep).unwrap();
    let journal = Journal::new(dep.dir.join("terminal").join("refusals"));
    let mut card = new_card(dep, "erin").await;
    let mut other = new_card(dep, "frank").await;
    let mut d = begin_and_sign(&mut card, &parties, &journal).await;
    let op = d.operation_id;
    let who = flows::identity(&mut card).unwrap();
    let application = d.application().unwrap();

    // Another card's signature on this card's application: the issuer refuses it.
    let frank = flows::identity(&mut other).unwrap();
    let mut f = begin_and_sign(&mut other, &parties, &journal).await;
    let frank_application = f.application().unwrap();
    let refused = parties
        .issuer
        .open_download(&frank_application, &who.rc)
        .await;
    assert_eq!(
        refused.as_ref().err().and_then(|e| e.code()),
        Some("invalid_download_application"),
        "{refused:?}"
    );
    // And a card will not sign a request naming another card.
    other.verify_pin(PIN).unwrap();
    let r = other.sign_download_application(&d.request().unwrap());
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(apdu::Status::INCORRECT_DATA),
        "frank signed erin's request"
    );

    // The issuer opens the real one; an attempt's package arrives altered.
    parties
        .issuer
        .open_download(&application, &who.rc)
        .await
        .unwrap();
    card.verify_pin(PIN).unwrap();
    let challenge = protocol::Challenge(card.get_challenge().unwrap());
    let auth = parties
        .issuer
        .authorize_download(&op, &challenge)
        .await
        .unwrap();
    let sa = auth.sa_object().unwrap();
    let mut code = parties
        .issuer
        .package(&op)
        .await
        .unwrap()
        .code_bytes()
        .unwrap();
    code[100] ^= 0x01;
    let r = card.store(&sa, None, &code);
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(apdu::Status::INCORRECT_DATA),
        "altered package"
    );
    // An altered SA on a fresh challenge.
    let challenge = protocol::Challenge(card.get_challenge().unwrap());
    let auth = parties
        .issuer
        .authorize_download(&op, &challenge)
        .await
        .unwrap();
    let altered =
        protocol::SignedObject::from_der(&e2e::altered(&auth.sa_object().unwrap())).unwrap();
    let package = parties.issuer.package(&op).await.unwrap();
    let r = card.store(&altered, None, &package.code_bytes().unwrap());
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(apdu::Status::REFERENCE_DATA_NOT_USABLE),
        "altered SA"
    );
    // Nothing was stored: the listing and the registry are as before.
    let cmp = flows::compare(&mut card, &parties).await.unwrap();
    assert!(cmp.listing.contents.items().is_empty() && cmp.in_sync());
    // The download then finishes with a new attempt.
    download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
        Control::Continue
    })
    .await
    .unwrap();
    assert_installed_once(dep, &parties, &mut card, &op).await;

    // A service larger than the card's room: the card refuses to sign; nothing is opened.
    let standing = download::check(&mut other, &parties).await.unwrap();
    let terms = download::terms(&parties).await.unwrap();
    journal.remove(&frank.card_id).unwrap();
    f = download::begin(
        &journal,
        frank.card_id,
        crypto::sha256(terms.text.as_bytes()).0,
        LOUNGE.service_id,
    )
    .unwrap();
    download::request(&parties, &journal, &standing.issuer, &mut f)
        .await
        .unwrap();
    let r = download::sign(&mut other, &journal, PIN, &mut f);
    assert_eq!(
        r.err().and_then(|e| e.card_status()),
        Some(apdu::Status::NOT_ENOUGH_MEMORY),
        "too large"
    );
    let opened = parties.issuer.download(&f.operation_id).await;
    assert_eq!(
        opened
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some("unknown_operation")
    );
    place.deployment.stop().await.unwrap();
}

/// The journal lost (the user moved to another computer) after the issuer opened the download,
/// and again after the card installed it: the card's standing lists the open download, the new
/// terminal adopts it and finishes it — still one installation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_journal_is_replaced_by_the_issuers_open_download() {
    let place = deploy(false, "download_lost_journal").await.unwrap();
    let dep = &place.deployment;
    let parties = e2e::parties(dep).unwrap();
    for (name, at) in [
        ("gina", Step::Authorized { attempt: 1 }),
        ("hugo", Step::Installed),
    ] {
        let first = Journal::new(dep.dir.join("terminal").join(format!("{name}-first")));
        let mut card = new_card(dep, name).await;
        let mut d = begin_and_sign(&mut card, &parties, &first).await;
        let op = d.operation_id;
        let r = download::finish(&mut card, &parties, &first, PIN, &mut d, &mut |s| {
            if s == at {
                Control::Abort
            } else {
                Control::Continue
            }
        })
        .await;
        assert!(matches!(r, Err(FlowError::Interrupted { .. })), "{r:?}");
        drop(card);

        // Another computer: no journal; the card and the issuer know.
        let second = Journal::new(dep.dir.join("terminal").join(format!("{name}-second")));
        let mut card = reinsert(dep, name);
        let standing = download::check(&mut card, &parties).await.unwrap();
        assert_eq!(standing.open_downloads, vec![op.to_hex()], "{name}");
        assert!(download::resume(&second, standing.card_id)
            .unwrap()
            .is_none());
        let mut d = download::adopt(&parties, &second, standing.card_id, op)
            .await
            .unwrap();
        download::finish(&mut card, &parties, &second, PIN, &mut d, &mut |_| {
            Control::Continue
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_installed_once(dep, &parties, &mut card, &op).await;
        let standing = download::check(&mut card, &parties).await.unwrap();
        assert!(standing.open_downloads.is_empty(), "{name}");
    }
    place.deployment.stop().await.unwrap();
}
