//! The operators' consoles (APP-4; docs/app-download.md §6) in a real browser: a deployment
//! of every party with the sample catalog, a real card image that downloads the transit
//! service through `terminal::download`, then headless Chromium over WebDriver signs into the
//! issuer's console (cards → the card: its application, capacity and verified ledger) and the
//! provider's (members of "transit": the card). Every console page is photographed: into
//! `$CARGO_TARGET_TMPDIR/consoles/`, or as `console-*.png` into the directory named by
//! `CARDWRIGHT_SCREENSHOTS` (e.g. `docs/portal`).

use std::path::PathBuf;
use std::time::Duration;

use deployment::sample::TRANSIT;
use deployment::{Deployment, DeploymentConfig};
use e2e::webdriver::Browser;
use e2e::Hosted;
use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::HttpClient;
use protocol::UserInfo;
use terminal::download::{self, Control};
use terminal::flows;
use terminal::journal::Journal;
use terminal::CardClient;

const PIN: &str = "2468";
const WAIT: Duration = Duration::from_secs(10);

/// Saves the browser's screen as `console-NAME.png`.
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
                    // Relative to the workspace, like scripts/portal-screenshots.sh names it.
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../..")
                        .join(dir)
                }
            }
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consoles"),
        };
        Camera { dir }
    }

    async fn shoot(&self, browser: &Browser, name: &str) {
        let path = self.dir.join(format!("console-{name}.png"));
        browser.screenshot(&path).await.unwrap();
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    }
}

/// A registered card (4 096 bytes) in its own image that has downloaded the transit service.
async fn card_with_transit(dep: &Deployment) -> pki::CardId {
    let issuer = IssuerClient::new(HttpClient::new(&dep.issuer.url).unwrap());
    let dir = dep.dir.join("cards").join("alice");
    let mut card = CardClient::new(Hosted::create(&dir).unwrap());
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
    let user = UserInfo::new("alice", "Alice Liddell", "alice@example.org").unwrap();
    flows::register(&mut card, &issuer, PIN, &user, &mut |_| {})
        .await
        .unwrap();

    let parties = e2e::parties(dep).unwrap();
    let journal = Journal::new(dep.dir.join("terminal").join("downloads"));
    let standing = download::check(&mut card, &parties).await.unwrap();
    let terms = download::terms(&parties).await.unwrap();
    let digest = crypto::sha256(terms.text.as_bytes()).0;
    let mut d = download::begin(&journal, standing.card_id, digest, TRANSIT.service_id).unwrap();
    download::request(&parties, &journal, &standing.issuer, &mut d)
        .await
        .unwrap();
    download::sign(&mut card, &journal, PIN, &mut d).unwrap();
    let finished = download::finish(&mut card, &parties, &journal, PIN, &mut d, &mut |_| {
        Control::Continue
    })
    .await
    .unwrap();
    assert!(finished.installed_now);
    standing.card_id
}

/// Opens `url`, which leads to the sign-in page, and signs in with `token`; waits for `first`
/// on the page it leads to.
async fn sign_in(browser: &Browser, camera: &Camera, url: &str, token: &str, who: &str) {
    browser.goto(url).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .ends_with("/console/login"),
        "no session: the sign-in page"
    );
    browser.wait_for_text("Operator token", WAIT).await.unwrap();
    camera.shoot(browser, &format!("{who}-sign-in")).await;
    browser
        .find("#token")
        .await
        .unwrap()
        .fill(token)
        .await
        .unwrap();
    browser
        .find("#sign-in")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn assert_shows(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "{e:?} not on the page: {text}");
    }
}

/// Follows the navigation link `label`, waits for its page and the page's `expected` words,
/// photographs it; the page's text.
async fn visit(
    browser: &Browser,
    camera: &Camera,
    label: &str,
    expected: &str,
    shot: &str,
) -> String {
    let mut href = None;
    for link in browser.find_all("header nav a").await.unwrap() {
        if link.text().await.unwrap() == label {
            href = link.attribute("href").await.unwrap();
            link.click().await.unwrap();
            break;
        }
    }
    let href = href.unwrap_or_else(|| panic!("a navigation link {label:?}"));
    let deadline = std::time::Instant::now() + WAIT;
    while !browser.current_url().await.unwrap().ends_with(&href) {
        assert!(
            std::time::Instant::now() < deadline,
            "{label} leads to {href}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = browser.wait_for_text(expected, WAIT).await.unwrap();
    let active = browser.find("header nav a.active").await.unwrap();
    assert_eq!(active.text().await.unwrap(), label);
    camera.shoot(browser, shot).await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_the_download_in_both_consoles() {
    let dir = tempfile::tempdir().unwrap();
    let dep = Box::pin(Deployment::start(DeploymentConfig::new(
        dir.path().join("deployment"),
    )))
    .await
    .unwrap();
    dep.publish_sample_catalog().await.unwrap();
    let card_id = card_with_transit(&dep).await;
    let card_hex = card_id.to_hex();
    let camera = Camera::new();
    let browser = Browser::start().await.expect("start the browser");

    // The issuer's console: cards, then the card.
    let issuer = &dep.issuer.url;
    sign_in(
        &browser,
        &camera,
        &format!("{issuer}/console/cards"),
        &dep.issuer.operator_token,
        "issuer",
    )
    .await;
    let text = browser.wait_for_text("In sync", WAIT).await.unwrap();
    assert_eq!(
        browser.current_url().await.unwrap(),
        format!("{issuer}/console/cards")
    );
    assert_shows(
        &text,
        &[
            "issuer-1",
            "1 card · 1 registered · 0 revoked",
            &card_hex,
            "Alice Liddell",
            "registered",
            "1 696 of 4 096 bytes free",
            "in sync",
        ],
    );
    camera.shoot(&browser, "issuer-cards").await;
    browser
        .find(&format!("a[href=\"/console/cards/{card_hex}\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = browser
        .wait_for_text("Ledger of receipts", WAIT)
        .await
        .unwrap();
    assert_shows(
        &text,
        &[
            &format!("Card {card_hex}"),
            "Alice Liddell",
            "alice@example.org",
            TRANSIT.application,
            TRANSIT.aid,
            "2 400 bytes",
            "provider-1",
            "1 696 of 4 096 bytes free",
            "installed",
            "delivered",
            "Verified, 1 entry",
        ],
    );
    let application = browser
        .find("#applications tbody tr")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        application.contains(TRANSIT.application) && application.contains("2 400 bytes"),
        "{application}"
    );
    camera.shoot(&browser, "issuer-card").await;
    // The same page scrolled to its ledger.
    let card_url = browser.current_url().await.unwrap();
    browser
        .goto(&format!("{card_url}#downloads-heading"))
        .await
        .unwrap();
    camera.shoot(&browser, "issuer-card-ledger").await;
    let text = visit(
        &browser,
        &camera,
        "Applications",
        "Add an application",
        "issuer-applications",
    )
    .await;
    assert_shows(&text, &[TRANSIT.application, "Lounge Key", "12 480 bytes"]);
    let text = visit(
        &browser,
        &camera,
        "Downloads",
        "installed",
        "issuer-downloads",
    )
    .await;
    assert_shows(&text, &["installed", TRANSIT.service_id, "delivered"]);
    let text = visit(
        &browser,
        &camera,
        "Notifications",
        "Delivered",
        "issuer-notifications",
    )
    .await;
    assert_shows(&text, &["Nothing waiting", "provider-1"]);
    let text = visit(
        &browser,
        &camera,
        "Providers",
        "allowed",
        "issuer-providers",
    )
    .await;
    assert_shows(&text, &["provider-1", "allowed"]);

    // The provider's console: the members of the transit service list the card.
    let provider = &dep.provider.url;
    sign_in(
        &browser,
        &camera,
        &format!("{provider}/console/services"),
        &dep.provider.operator_token,
        "provider",
    )
    .await;
    let text = browser.wait_for_text("Add a service", WAIT).await.unwrap();
    assert_shows(
        &text,
        &["provider-1", TRANSIT.name, TRANSIT.aid, "2 400 bytes"],
    );
    camera.shoot(&browser, "provider-services").await;
    let text = visit(
        &browser,
        &camera,
        "Members",
        TRANSIT.name,
        "provider-member-counts",
    )
    .await;
    assert_shows(&text, &[TRANSIT.name]);
    browser
        .find(&format!(
            "a[href=\"/console/members/{}\"]",
            TRANSIT.service_id
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = browser
        .wait_for_text(&format!("Members of {}", TRANSIT.service_id), WAIT)
        .await
        .unwrap();
    assert_shows(
        &text,
        &[
            &card_hex,
            "Alice Liddell",
            "alice@example.org",
            "active",
            "1 member",
        ],
    );
    camera.shoot(&browser, "provider-members").await;
    browser
        .find(&format!("a[href=\"/console/ledgers/{card_hex}\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = browser
        .wait_for_text("Verified, 1 entry", WAIT)
        .await
        .unwrap();
    assert_shows(&text, &[&card_hex, "stored", TRANSIT.aid]);
    camera.shoot(&browser, "provider-ledger").await;
    let text = visit(
        &browser,
        &camera,
        "Terms",
        "Publish a new version",
        "provider-terms",
    )
    .await;
    assert_shows(&text, &["Membership terms of provider-1", "Version"]);
    let text = visit(
        &browser,
        &camera,
        "Downloads",
        "issuer-1",
        "provider-downloads",
    )
    .await;
    assert_shows(&text, &["member", TRANSIT.service_id, "issuer-1"]);

    // Both consoles stay signed in side by side: browsers keep cookies per host, not per
    // port, so each party's session cookie has its own name.
    browser
        .goto(&format!("{issuer}/console/cards"))
        .await
        .unwrap();
    let text = browser.wait_for_text("In sync", WAIT).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .ends_with("/console/cards"),
        "signed out of the issuer's console: {text}"
    );

    browser.quit().await.unwrap();
    dep.stop().await.unwrap();
}
