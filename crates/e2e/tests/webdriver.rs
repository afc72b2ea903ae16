//! The WebDriver client (`e2e::webdriver`) against Debian's headless Chromium: a tiny form
//! site served on port 0, then a server-kit console logged into as an operator would.

use std::time::Duration;

use std::sync::Arc;

use axum::extract::RawForm;
use axum::http::Method;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::Router;
use e2e::webdriver::{Browser, WebDriverError};
use maud::html;
use server_kit::console::{
    self, badge, capacity_bar, notice, Console, ConsoleForm, ConsoleOperator, Tone, Transport,
};
use server_kit::testing::{Backend, PlaceForTests, ServerForTests};
use server_kit::{Db, Kit, ManualClock, Metrics};

/// A greeting form: GET / shows it, POST /greet answers 303 to /hello?name=…, which greets.
fn form_site() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                Html(
                    "<!doctype html><html><head><title>Form</title></head><body>\
                     <h1 id=heading>Tell us your name</h1>\
                     <form method=post action=/greet>\
                     <label>Name <input name=name id=name value=placeholder></label>\
                     <label><input type=checkbox name=agree id=agree value=yes> I agree</label>\
                     <button type=submit id=send data-kind=primary>Send</button>\
                     </form></body></html>",
                )
            }),
        )
        .route(
            "/greet",
            post(|RawForm(body): RawForm| async move {
                let pairs: Vec<(String, String)> = form_pairs(&body).unwrap_or_default();
                let name = pairs
                    .iter()
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let agreed = pairs.iter().any(|(k, v)| k == "agree" && v == "yes");
                let name = hex::encode(name.as_bytes());
                Redirect::to(&format!("/hello?name={name}&agreed={agreed}"))
            }),
        )
        .route(
            "/hello",
            get(
                |axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| async move {
                    let get = |key: &str| {
                        q.iter()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let name = String::from_utf8(hex::decode(get("name")).unwrap_or_default())
                        .unwrap_or_default();
                    let page = maud::html! {
                        (maud::DOCTYPE)
                        html { head { title { "Hello" } } body {
                            p #greeting { "Hello, " (name) "!" }
                            p #agreed { "agreed: " (get("agreed")) }
                        } }
                    };
                    Html(page.into_string())
                },
            ),
        )
}

/// `application/x-www-form-urlencoded` pairs, decoded by hand (the test needs no form crate).
fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn screenshot_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("webdriver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_a_form_follows_the_redirect_and_takes_a_screenshot() {
    let site = ServerForTests::serve(form_site()).await;
    let base = format!("http://{}", site.addr);
    let browser = Browser::start().await.expect("start the browser");

    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Form");
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/"));
    let heading = browser.find("#heading").await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Tell us your name");
    let send = browser.find("#send").await.unwrap();
    assert_eq!(
        send.attribute("data-kind").await.unwrap().as_deref(),
        Some("primary")
    );
    assert_eq!(send.attribute("data-missing").await.unwrap(), None);
    assert!(send.is_enabled().await.unwrap());

    let name = browser.find("#name").await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("Ada ").await.unwrap();
    name.send_keys("Lovelace & <co>").await.unwrap();
    let agree = browser.find("#agree").await.unwrap();
    assert!(!agree.is_selected().await.unwrap());
    agree.click().await.unwrap();
    assert!(agree.is_selected().await.unwrap());
    assert_eq!(browser.find_all("label").await.unwrap().len(), 2);
    assert!(browser.find_all("table").await.unwrap().is_empty());
    send.click().await.unwrap();

    let text = browser
        .wait_for_text("Hello,", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        text.contains("Hello, Ada Lovelace & <co>!"),
        "the next page shows what was typed, escaped: {text}"
    );
    assert!(text.contains("agreed: true"), "{text}");
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .starts_with(&format!("{base}/hello?")));
    assert!(browser.page_source().await.unwrap().contains("&lt;co&gt;"));

    // An element that is not there: WebDriver's own error code, carried.
    let missing = browser.find("#nowhere").await.unwrap_err();
    assert_eq!(missing.code(), Some("no such element"), "{missing}");
    assert!(matches!(
        missing,
        WebDriverError::Refused { status: 404, .. }
    ));
    // An element of a page that is gone.
    let stale = heading.text().await.unwrap_err();
    assert_eq!(stale.code(), Some("stale element reference"), "{stale}");

    let png = browser.screenshot_png().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = screenshot_dir().join("form-hello.png");
    browser.screenshot(&path).await.unwrap();
    let saved = std::fs::read(&path).unwrap();
    assert_eq!(&saved[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height of the 1280×900 window.
    let width = u32::from_be_bytes(saved[16..20].try_into().unwrap());
    assert_eq!(width, 1280);

    browser.quit().await.unwrap();
    site.stop().await;
}

#[tokio::test]
async fn a_missing_chromedriver_says_how_to_install_it() {
    let options = e2e::webdriver::BrowserOptions {
        chromedriver: "/nonexistent/chromedriver".into(),
        ..Default::default()
    };
    let err = Browser::start_with(&options).await.unwrap_err();
    assert!(matches!(err, WebDriverError::NotInstalled { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("apt-get install -y chromium chromium-driver"),
        "{err}"
    );
}

#[derive(serde::Deserialize)]
struct Note {
    text: String,
}

/// A console page with a table, the kit's components and a form.
async fn cards_page(op: ConsoleOperator) -> maud::Markup {
    op.page(
        "Cards",
        html! {
            (notice(Tone::Good, "2 cards, all in sync with their listings."))
            table {
                thead { tr { th { "Card" } th { "Status" } th { "Free" } th.num { "Applications" } } }
                tbody {
                    tr {
                        td.mono { "3f9a1c0e5b7d2a4c" }
                        td { (badge(Tone::Good, "registered")) }
                        td { (capacity_bar(8192, 32_768)) }
                        td.num { "3" }
                    }
                    tr {
                        td.mono { "77e0b1d2c3a49f18" }
                        td { (badge(Tone::Bad, "revoked")) }
                        td { (capacity_bar(30_000, 32_768)) }
                        td.num { "0" }
                    }
                }
            }
            h2 { "Leave a note" }
            div.panel {
                form.stacked method="post" action="/console/notes" {
                    (op.csrf_field())
                    label { "Note" input type="text" name="text" id="note"; }
                    button type="submit" id="save" { "Save note" }
                }
            }
        },
    )
}

async fn save_note(op: ConsoleOperator, ConsoleForm(note): ConsoleForm<Note>) -> maud::Markup {
    op.page(
        "Note saved",
        html! { (notice(Tone::Good, &format!("{} wrote: {}", op.name(), note.text))) },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_into_a_console_in_the_browser() {
    let place = PlaceForTests::new(Backend::Sqlite, "console_browser", "console.db")
        .await
        .unwrap();
    let db = Db::open(&place.db_url).await.unwrap();
    console::prepare(&db).await.unwrap();
    let now = pki::UnixTime(1_800_000_000);
    let token = db
        .add_operator("carol", now, &mut crypto::OsRng)
        .await
        .unwrap();
    let console = Console::new(db.clone(), "Issuer One", Transport::Http)
        .with_clock(Arc::new(ManualClock::new(now)))
        .with_page("Cards", "/console/cards")
        .with_page("Notes", "/console/notes");
    let pages = Router::new()
        .route("/console/cards", get(cards_page))
        .route("/console/notes", post(save_note));
    let router = console::api_router(
        vec![(Method::GET, "/v1/ping", get(|| async { "pong" }))],
        console::router(&console, pages),
        (),
        &Kit {
            db: db.clone(),
            metrics: Metrics::new(),
        },
    );
    let server = ServerForTests::serve(router).await;
    let base = format!("http://{}", server.addr);
    let shots = screenshot_dir();
    let browser = Browser::start().await.expect("start the browser");

    // A page without a session leads to the sign-in form.
    browser
        .goto(&format!("{base}/console/cards"))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap(),
        format!("{base}/console/login")
    );
    assert_eq!(
        browser.title().await.unwrap(),
        "Sign in · Issuer One console"
    );
    browser
        .screenshot(&shots.join("console-sign-in.png"))
        .await
        .unwrap();

    // A wrong token: the form again, saying so.
    browser
        .find("#token")
        .await
        .unwrap()
        .send_keys("cwo_00112233445566778899aabbccddeeff")
        .await
        .unwrap();
    browser
        .find("#sign-in")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = browser
        .find("#sign-in-error")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(error, "That token is not an operator token of Issuer One.");

    // The right one: the first page, with the party, the operator and the components.
    browser
        .find("#token")
        .await
        .unwrap()
        .fill(token.expose())
        .await
        .unwrap();
    browser
        .find("#sign-in")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = browser
        .wait_for_text("Leave a note", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap(),
        format!("{base}/console/cards")
    );
    for expected in [
        "Issuer One",
        "carol",
        "Cards",
        "registered",
        "revoked",
        "8 192 of 32 768 bytes free",
        "Signed in as carol until 2027-01-15 16:00 UTC",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let active = browser.find("header nav a.active").await.unwrap();
    assert_eq!(active.text().await.unwrap(), "Cards");
    browser
        .screenshot(&shots.join("console-cards.png"))
        .await
        .unwrap();

    // A form: the browser sends the CSRF field, the handler gets the rest.
    browser
        .find("#note")
        .await
        .unwrap()
        .send_keys("checked <all> cards")
        .await
        .unwrap();
    browser.find("#save").await.unwrap().click().await.unwrap();
    let text = browser
        .wait_for_text("Note saved", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(text.contains("carol wrote: checked <all> cards"), "{text}");

    // Sign out: back to the sign-in form, and the pages lead there again.
    browser
        .find("#sign-out")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("Operator token", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap(),
        format!("{base}/console/login")
    );
    browser
        .goto(&format!("{base}/console/cards"))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap(),
        format!("{base}/console/login")
    );

    browser.quit().await.unwrap();
    server.stop().await;
    db.close().await;
    place.finish().await;
}
