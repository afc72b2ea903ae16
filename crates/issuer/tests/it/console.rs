//! The issuer's operators' console (`issuer::console`, docs/app-download.md §6) over a real
//! socket, as a browser drives it: every page needs a session (303 to the sign-in page), each
//! shows its data and its empty state, the add-application form with a multipart upload adds
//! an application (and says in words why when it does not), "retry now" makes a stuck member
//! notification due, and forms without the session's CSRF token are refused. SQLite and
//! PostgreSQL.

use std::net::SocketAddr;

use pki::CardId;
use server_kit::testing::{request_for_tests, ResponseForTests, ServerForTests};
use testkit::world::World;

use crate::downloading::*;
use crate::support::*;

/// A browser's view of one console: its address and the cookies it was given.
pub struct Browser {
    addr: SocketAddr,
    cookies: Vec<(String, String)>,
}

/// Percent-encodes a form value (`application/x-www-form-urlencoded`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            cookies: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> ResponseForTests {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = Vec::new();
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        let response = request_for_tests(self.addr, method, path, &headers, body)
            .await
            .unwrap();
        for (name, value) in &response.headers {
            if name != "set-cookie" {
                continue;
            }
            let pair = value.split(';').next().unwrap_or_default();
            let (key, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != key);
            if !value.contains("Max-Age=0") {
                self.cookies.push((key.to_string(), val.to_string()));
            }
        }
        response
    }

    pub async fn get(&mut self, path: &str) -> ResponseForTests {
        self.send("GET", path, None, None).await
    }

    /// GET `path`, which must answer 200 with an HTML page; its text.
    pub async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        r.text()
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> ResponseForTests {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            Some(body.as_bytes()),
        )
        .await
    }

    /// POSTs `multipart/form-data`: (name, file name for a file, content).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> ResponseForTests {
        let boundary = "----cardwright-test-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, file, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(file) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.send("POST", path, Some(&content_type), Some(&body))
            .await
    }

    /// Signs in with `token` through the sign-in form; the page it leads to.
    pub async fn sign_in(&mut self, token: &str) -> String {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{}", form.text());
        let csrf = csrf_of(&form.text());
        let r = self
            .post_form("/console/login", &[("_csrf", &csrf), ("token", token)])
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        r.header("location").unwrap().to_string()
    }
}

/// The hidden CSRF field's value on a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub fn assert_to_sign_in(response: &ResponseForTests, what: &str) {
    assert_eq!(response.status, 303, "{what}: {}", response.text());
    assert_eq!(
        response.header("location"),
        Some("/console/login"),
        "{what}"
    );
}

pub fn assert_has(page: &str, expected: &[&str]) {
    for e in expected {
        assert!(page.contains(e), "{e:?} not in {page}");
    }
}

const PAGES: [&str; 5] = [
    "/console/cards",
    "/console/applications",
    "/console/downloads",
    "/console/notifications",
    "/console/providers",
];

const NEW_AID: &str = "a0000002479901";

/// The add-application form as a browser sends it (the code as a file).
struct NewApplication {
    csrf: Option<String>,
    name: String,
    aid: String,
    provider: String,
    code: Vec<u8>,
}

impl NewApplication {
    async fn send(&self, browser: &mut Browser) -> ResponseForTests {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = Vec::new();
        if let Some(csrf) = &self.csrf {
            parts.push(("_csrf", None, csrf.as_bytes()));
        }
        parts.extend([
            ("name", None, self.name.as_bytes()),
            ("aid", None, self.aid.as_bytes()),
            ("version", None, b"1".as_slice()),
            ("provider", None, self.provider.as_bytes()),
            ("description", None, b"Points at the bakery".as_slice()),
            ("code", Some("loyalty.cap"), self.code.as_slice()),
        ]);
        browser
            .post_multipart("/console/applications", &parts)
            .await
    }
}

async fn console_pages(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_console").await else {
        return;
    };
    let w = World::new(131);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let console = ServerForTests::serve(issuer::router(&server.app)).await;
    let mut browser = Browser::new(console.addr);
    let unknown_card = CardId([0x42; 16]).to_hex();

    // No session: every page and form leads to the sign-in page.
    for path in PAGES
        .iter()
        .map(|p| p.to_string())
        .chain([format!("/console/cards/{unknown_card}")])
    {
        assert_to_sign_in(&browser.get(&path).await, &path);
    }
    let retry = format!("/console/notifications/{}/retry", op(1).to_hex());
    assert_to_sign_in(&browser.post_form(&retry, &[]).await, "retry");
    assert_to_sign_in(
        &browser
            .post_multipart("/console/applications", &[("aid", None, b"a0000002479901")])
            .await,
        "add application",
    );
    assert_eq!(
        browser.get("/console").await.header("location"),
        Some("/console/login")
    );

    // Signed in: the first page is the cards; every page is there, empty.
    assert_eq!(
        browser.sign_in(server.token.expose()).await,
        "/console/cards"
    );
    let empty = [
        ("/console/cards", "No cards yet"),
        ("/console/applications", "No applications yet"),
        ("/console/downloads", "No downloads yet"),
        ("/console/notifications", "Nothing waiting"),
        ("/console/providers", "No providers yet"),
    ];
    for (path, words) in empty {
        let page = browser.page(path).await;
        assert_has(&page, &[words, "issuer-1", "olga", "Sign out"]);
    }
    let missing = browser.get(&format!("/console/cards/{unknown_card}")).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing.text().contains("is not in this issuer"),
        "{}",
        missing.text()
    );
    assert_eq!(browser.get("/console/cards/xyz").await.status, 404);

    // Data: a provider with an application; a personalised card, a registered one, and a
    // card whose download was installed and whose member notification the provider refused.
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let (_blank, personalised) = personalised_card(&server, &w).await;
    let (_card, registered, _rc) = registered_card(&server, &w).await;
    let soft = SoftCard::new(&server, &w, 13).await;
    let receipt = installed_soft(&server, &w, &soft, op(1)).await;
    server
        .client
        .download_receipt(&op(1), &receipt)
        .await
        .unwrap();
    stub.answer_members(MemberAnswer::Refuse);
    assert_eq!(server.app.notifier.run_once().await.unwrap().stuck, 1);

    let cards = browser.page("/console/cards").await;
    assert_has(
        &cards,
        &[
            "3 cards · 2 registered · 0 revoked",
            &personalised.to_hex(),
            &registered.to_hex(),
            &soft.card_id.to_hex(),
            "personalised",
            "registered",
            "Alice Example",
            "3 096 of 4 096 bytes free",
            "4 096 of 4 096 bytes free",
            "in sync",
            "no receipts yet",
            "not registered",
        ],
    );
    let card = browser
        .page(&format!("/console/cards/{}", soft.card_id.to_hex()))
        .await;
    assert_has(
        &card,
        &[
            "Alice Example",
            "alice@example.org",
            "user-0001",
            "Transit pass",
            &hex::encode(crate::applications::AID),
            "1 000 bytes",
            "3 096 of 4 096 bytes free",
            "installed",
            "transit-pass",
            "stuck",
            "Verified, 1 entry",
            "store",
            "stored",
            "2027-",
        ],
    );
    let bare = browser
        .page(&format!("/console/cards/{}", personalised.to_hex()))
        .await;
    assert_has(
        &bare,
        &[
            "personalised",
            "No applications on this card yet",
            "No downloads for this card yet",
            "not registered: it has no ledger yet",
        ],
    );
    let applications = browser.page("/console/applications").await;
    assert_has(
        &applications,
        &[
            "Transit pass",
            "Rides on the city",
            "1 000 bytes",
            "provider-1",
            "by olga",
        ],
    );
    let downloads = browser.page("/console/downloads").await;
    assert_has(
        &downloads,
        &[&op(1).to_hex()[..12], "installed", "transit-pass", "stuck"],
    );
    assert_has(
        &browser.page("/console/downloads?state=opened").await,
        &["No download is open"],
    );
    assert_has(
        &browser.page("/console/downloads?state=installed").await,
        &["installed"],
    );
    assert_has(
        &browser.page("/console/downloads?state=expired").await,
        &["No download has expired"],
    );
    let bogus = browser.get("/console/downloads?state=lost").await;
    assert_eq!(bogus.status, 400);
    assert!(bogus.text().contains("opened, installed or expired"));
    let providers = browser.page("/console/providers").await;
    assert_has(
        &providers,
        &["provider-1", "allowed", "4 096 bytes", &stub.url],
    );

    // Notifications: the stuck one with its error and a retry button.
    let notifications = browser.page("/console/notifications").await;
    assert_has(
        &notifications,
        &[
            "stuck",
            "operation_mismatch",
            "Retry now",
            "No notification delivered yet",
        ],
    );
    let stuck = server
        .client
        .notifications(server.token.expose(), Some("stuck"))
        .await
        .unwrap()
        .notifications;
    assert_eq!(stuck.len(), 1);
    assert!(stuck[0].next_attempt_at > NOW.0);

    // A form without the session's CSRF token, or with another, is refused; nothing changes.
    let refused = browser.post_form(&retry, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("This form has expired"));
    let forged = browser
        .post_form(&retry, &[("_csrf", &"0".repeat(64))])
        .await;
    assert_eq!(forged.status, 403);
    let unchanged = server
        .client
        .notifications(server.token.expose(), Some("stuck"))
        .await
        .unwrap()
        .notifications;
    assert_eq!(unchanged, stuck);

    // Retry now: due at once, and the notifier delivers it.
    let csrf = csrf_of(&notifications);
    let r = browser.post_form(&retry, &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let next = r.header("location").unwrap().to_string();
    assert_eq!(
        next,
        format!("/console/notifications?retried={}", op(1).to_hex())
    );
    assert_has(&browser.page(&next).await, &["is due now"]);
    let due = server
        .client
        .notifications(server.token.expose(), Some("stuck"))
        .await
        .unwrap()
        .notifications;
    assert_eq!(due[0].next_attempt_at, NOW.0);
    stub.answer_members(MemberAnswer::Ack);
    assert_eq!(server.app.notifier.run_once().await.unwrap().delivered, 1);
    assert_has(
        &browser.page("/console/notifications").await,
        &["Nothing waiting", "delivered"],
    );
    // Retrying a delivered one says so.
    let again = browser.post_form(&retry, &[("_csrf", &csrf)]).await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.text().contains("delivered"), "{}", again.text());
    let bad_op = browser
        .post_form("/console/notifications/nothex/retry", &[("_csrf", &csrf)])
        .await;
    assert_eq!(bad_op.status, 404);

    // The add-application form: the code uploaded as a file.
    let page = browser.page("/console/applications").await;
    assert_has(
        &page,
        &[
            "enctype=\"multipart/form-data\"",
            "name=\"code\"",
            "<option value=\"provider-1\">",
        ],
    );
    let csrf = csrf_of(&page);
    let code: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let loyalty = |aid: &str, provider: &str, code: &[u8]| NewApplication {
        csrf: Some(csrf.clone()),
        name: "Loyalty card".into(),
        aid: aid.into(),
        provider: provider.into(),
        code: code.to_vec(),
    };
    // Without the CSRF field: refused, nothing added.
    let r = NewApplication {
        csrf: None,
        ..loyalty(NEW_AID, "provider-1", &code)
    }
    .send(&mut browser)
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(server.app.issuer.applications().await.unwrap().len(), 1);

    let r = loyalty(NEW_AID, "provider-1", &code)
        .send(&mut browser)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let next = r.header("location").unwrap().to_string();
    assert!(next.starts_with("/console/applications?added="), "{next}");
    assert_has(
        &browser.page(&next).await,
        &[
            "Added Loyalty card (AID a0000002479901, version 1, 3 000 bytes).",
            "Points at the bakery",
            "3 000 bytes",
        ],
    );
    let aid = protocol::ItemId::new(&hex::decode(NEW_AID).unwrap()).unwrap();
    let added = server.client.application(&aid, Some(1)).await.unwrap();
    assert_eq!((added.size, added.version), (3000, 1));
    assert_eq!(added.digest, hex::encode(crypto::sha256(&code).0));
    assert_eq!(added.description, "Points at the bakery");
    assert_eq!(added.provider, "provider-1");
    // The same again changes nothing and says so.
    let r = loyalty(NEW_AID, "provider-1", &code)
        .send(&mut browser)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let next = r.header("location").unwrap().to_string();
    assert!(
        next.starts_with("/console/applications?unchanged="),
        "{next}"
    );
    assert_has(&browser.page(&next).await, &["nothing changed"]);

    // Refusals, in words, with the form as it was sent.
    let cases = [
        (
            loyalty(NEW_AID, "provider-1", b"other code"),
            409,
            "exists with other content",
        ),
        (
            loyalty("a0000002479902", "provider-7", &code),
            422,
            "Provider provider-7 has no policy at this issuer",
        ),
        (
            loyalty("zz", "provider-1", &code),
            400,
            "The AID &quot;zz&quot; is not hex",
        ),
        (
            loyalty("a00000", "provider-1", &code),
            400,
            "AID a00000 is 3 bytes; an AID has 5 to 16",
        ),
        (
            loyalty("a0000002479903", "provider-1", b""),
            400,
            "Choose the application's code file",
        ),
        (
            NewApplication {
                name: String::new(),
                ..loyalty("a0000002479903", "provider-1", &code)
            },
            400,
            "The application's name is empty",
        ),
    ];
    for (form, status, words) in cases {
        let r = form.send(&mut browser).await;
        assert_eq!(r.status, status, "{words}: {}", r.text());
        assert_has(
            &r.text(),
            &[
                "The application was not added.",
                words,
                "value=\"1\"",
                "value=\"Points at the bakery\"",
            ],
        );
    }
    let names: Vec<String> = server
        .app
        .issuer
        .applications()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Transit pass", "Loyalty card"]);
    // A body that is not multipart is refused in words.
    let r = browser
        .post_form(
            "/console/applications",
            &[("_csrf", &csrf), ("aid", NEW_AID)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not sent as multipart/form-data"));

    stub.stop().await;
    console.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn console_pages_sqlite() {
    console_pages(Backend::Sqlite).await;
}

#[tokio::test]
async fn console_pages_postgres() {
    console_pages(Backend::Postgres).await;
}
