//! The provider's operators' console (`provider::console`, docs/app-download.md §6) over a
//! real socket, as a browser drives it: every page needs a session (303 to the sign-in page);
//! terms published and a service added through the forms (and refused in words); a card's
//! download through the API, then the members of the service, the downloads and the card's
//! verified ledger shown; forms without the session's CSRF token refused. SQLite and
//! PostgreSQL.

use std::net::SocketAddr;

use party_api::provider::ProviderClient;
use party_api::provider_download::{MemberNotification, MemberUser};
use pki::{CardId, Certificate, UnixTime};
use protocol::{
    Challenge, DownloadApplication, DownloadRequest, ItemId, Operation, OperationId, PartyRole,
    Policy, Receipt, ReceiptResult, Sar, Sdi, ServiceId,
};
use server_kit::testing::{request_for_tests, ResponseForTests};
use server_kit::Clock as _;
use testkit::test_pki::TestPki;
use testkit::world::World;

use crate::support::{Backend, Place, Server};

const NOW: UnixTime = TestPki::NOW;
const AID: &str = "a00000066209";
const CODE: &[u8] = b"the museum pass application, version 1";

/// A browser's view of one console: its address and the cookies it was given.
struct Browser {
    addr: SocketAddr,
    cookies: Vec<(String, String)>,
}

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
    async fn send(&mut self, method: &str, path: &str, form: Option<&str>) -> ResponseForTests {
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
        if form.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let response =
            request_for_tests(self.addr, method, path, &headers, form.map(str::as_bytes))
                .await
                .unwrap();
        for (name, value) in &response.headers {
            if name == "set-cookie" {
                let pair = value.split(';').next().unwrap_or_default();
                let (key, val) = pair.split_once('=').unwrap();
                self.cookies.retain(|(k, _)| k != key);
                if !value.contains("Max-Age=0") {
                    self.cookies.push((key.to_string(), val.to_string()));
                }
            }
        }
        response
    }

    async fn get(&mut self, path: &str) -> ResponseForTests {
        self.send("GET", path, None).await
    }

    /// GET `path`, which must answer 200 with an HTML page; its text.
    async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        r.text()
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> ResponseForTests {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(&body)).await
    }

    async fn sign_in(&mut self, token: &str) -> String {
        let form = self.get("/console/login").await;
        let csrf = csrf_of(&form.text());
        let r = self
            .post("/console/login", &[("_csrf", &csrf), ("token", token)])
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        r.header("location").unwrap().to_string()
    }
}

/// POSTs `fields` with the session's CSRF token.
async fn post_with(
    browser: &mut Browser,
    path: &str,
    fields: &[(&str, &str)],
    csrf: &str,
) -> ResponseForTests {
    let mut all = fields.to_vec();
    all.push(("_csrf", csrf));
    browser.post(path, &all).await
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn assert_has(page: &str, expected: &[&str]) {
    for e in expected {
        assert!(page.contains(e), "{e:?} not in {page}");
    }
}

fn assert_to_sign_in(response: &ResponseForTests, what: &str) {
    assert_eq!(response.status, 303, "{what}: {}", response.text());
    assert_eq!(
        response.header("location"),
        Some("/console/login"),
        "{what}"
    );
}

/// A card of the test's own key with an RC the world's issuer signed: it signs its download
/// application and its receipt as a card does.
struct Card {
    card_id: CardId,
    key: crypto::SigningKey,
    rc: Certificate,
}

/// The whole download of `service` by a new card through the provider's API, as the terminal
/// and the issuer would drive it: request (S5–S6), the issuer's grant (S11), the member
/// notification with the card's receipt (S15). Returns the card and the operation.
async fn member_through_api(server: &Server, w: &World, service: &str) -> (Card, OperationId) {
    let card_id = CardId([0x5C; 16]);
    let key =
        crypto::SigningKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(5));
    let rc = w
        .pki
        .issue_card_rc(card_id, key.verifying_key(), crypto::sha256(b"user"));
    let card = Card { card_id, key, rc };
    let client = ProviderClient::with_party_id(server.client.clone(), server.party_id());
    let op = OperationId([0x0B; 16]);
    let terms = client.terms().await.unwrap().digest_value().unwrap();
    let service_id = ServiceId::new(service).unwrap();
    let opened = client
        .open_download(&op, &card.card_id, &w.pki.issuer.id, &service_id, &terms)
        .await
        .unwrap();
    let application = DownloadApplication {
        request: DownloadRequest::from_der(&opened.request_der().unwrap()).unwrap(),
        counter: 0,
        free: 32_768,
    }
    .sign(&card.key);
    let sdi = Sdi {
        card_id,
        operation: Operation::Store,
        item_id: ItemId::new(&hex::decode(AID).unwrap()).unwrap(),
        version: 1,
        size: CODE.len() as u32,
        data_digest: crypto::sha256(CODE),
        owner: server.party_id(),
        policy: Policy::NONE,
    };
    let issuer = &w.pki.issuer;
    let sar = Sar {
        requester_role: PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: card.rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([7; 16]),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&issuer.key, vec![issuer.cert.der().to_vec()]);
    let granted = client
        .download_grant(
            &server.issuer,
            server.clock.now(),
            &op,
            &sar,
            &application,
            &card.rc,
        )
        .await
        .unwrap();
    let sa = protocol::SignedObject::from_der(&hex::decode(&granted.sa).unwrap()).unwrap();
    let receipt = Receipt {
        card_id,
        counter: 1,
        operation: Operation::Store,
        item_id: sdi.item_id.clone(),
        sdi_digest: sdi.digest(),
        authorization_digest: sa.digest(),
        result: ReceiptResult::Stored,
        listing_digest: crypto::Digest([0x11; 32]),
    }
    .sign(&card.key);
    let notification = MemberNotification {
        operation_id: op.to_hex(),
        card_id: card_id.to_hex(),
        service_id: service.to_string(),
        user: MemberUser {
            user_id: "user-0042".into(),
            name: "Hanako Yamada".into(),
            email: "hanako@example.org".into(),
        },
        download_application: hex::encode(application.to_der()),
        receipt: hex::encode(receipt.to_der()),
        rc: hex::encode(card.rc.der()),
        irc: hex::encode(issuer.cert.der()),
    };
    let ack = client
        .notify_member(&server.issuer, server.clock.now(), &notification)
        .await
        .unwrap();
    assert!(ack.newly_recorded);
    (card, op)
}

const PAGES: [&str; 5] = [
    "/console/services",
    "/console/terms",
    "/console/members",
    "/console/downloads",
    "/console/ledgers",
];

async fn console_pages(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_console").await else {
        return;
    };
    let w = World::new(141);
    let (server, stub) = Server::start_with_stub_issuer(&place, &w).await;
    stub.add_application(
        &hex::decode(AID).unwrap(),
        1,
        CODE,
        w.pki.provider.id.as_str(),
        0,
    );
    let mut browser = Browser {
        addr: server.running.addr,
        cookies: Vec::new(),
    };
    let some_card = CardId([0x5C; 16]).to_hex();

    // No session: every page and form leads to the sign-in page.
    for path in PAGES.iter().map(|p| p.to_string()).chain([
        "/console/members/museum".to_string(),
        format!("/console/ledgers/{some_card}"),
    ]) {
        assert_to_sign_in(&browser.get(&path).await, &path);
    }
    for path in ["/console/services", "/console/terms"] {
        assert_to_sign_in(&browser.post(path, &[("text", "x")]).await, path);
    }

    // Signed in: the services first; every page there, empty.
    assert_eq!(
        browser.sign_in(server.token.expose()).await,
        "/console/services"
    );
    let empty = [
        ("/console/services", "No services yet"),
        ("/console/terms", "No terms published yet"),
        ("/console/members", "No services yet, so no members"),
        ("/console/downloads", "No downloads yet"),
        ("/console/ledgers", "No members yet"),
    ];
    for (path, words) in empty {
        assert_has(
            &browser.page(path).await,
            &[words, "provider-1", "alice", "Sign out"],
        );
    }

    // Terms: refused without the CSRF token; published with it; the same again changes nothing.
    let page = browser.page("/console/terms").await;
    let csrf = csrf_of(&page);
    let text = "Museum membership terms\r\n1. Be kind to the exhibits.";
    let refused = browser.post("/console/terms", &[("text", text)]).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let r = browser
        .post("/console/terms", &[("_csrf", &csrf), ("text", text)])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/console/terms?published=1"));
    let stored = "Museum membership terms\n1. Be kind to the exhibits.";
    let digest = hex::encode(crypto::sha256(stored.as_bytes()).0);
    assert_has(
        &browser.page("/console/terms?published=1").await,
        &["Version 1 published", &digest, "Be kind to the exhibits."],
    );
    let client = ProviderClient::with_party_id(server.client.clone(), server.party_id());
    let terms = client.terms().await.unwrap();
    assert_eq!((terms.version, terms.text.as_str()), (1, stored));
    let r = browser
        .post("/console/terms", &[("_csrf", &csrf), ("text", text)])
        .await;
    assert_eq!(r.header("location"), Some("/console/terms?unchanged=1"));
    let r = browser
        .post("/console/terms", &[("_csrf", &csrf), ("text", "  ")])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_has(&r.text(), &["Nothing was published.", "empty"]);

    // Services: refused without the CSRF token; refusals in words; added.
    let service = |id: &'static str, aid: &'static str, issuer: &'static str| {
        vec![
            ("service_id", id),
            ("name", "Museum Pass"),
            ("description", "Free entry to the city's museums."),
            ("aid", aid),
            ("version", "1"),
            ("issuer", issuer),
        ]
    };
    let r = browser
        .post("/console/services", &service("museum", AID, "issuer-1"))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let cases = [
        (service("museum", AID, "issuer-9"), 422, "issuer-9"),
        (
            service("museum", "a000000662ff", "issuer-1"),
            422,
            "a000000662ff",
        ),
        (
            service("museum", "xyz", "issuer-1"),
            400,
            "is not 1 to 16 bytes in hex",
        ),
        (service("mu seum", AID, "issuer-1"), 400, "is not one"),
    ];
    for (fields, status, words) in cases {
        let r = post_with(&mut browser, "/console/services", &fields, &csrf).await;
        assert_eq!(r.status, status, "{words}: {}", r.text());
        assert_has(
            &r.text(),
            &["The service was not added.", words, "value=\"Museum Pass\""],
        );
    }
    assert!(client.services().await.unwrap().services.is_empty());
    let fields = service("museum", AID, "issuer-1");
    let r = post_with(&mut browser, "/console/services", &fields, &csrf).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/console/services?added=museum"));
    assert_has(
        &browser.page("/console/services?added=museum").await,
        &[
            "Service museum added.",
            "Museum Pass",
            AID,
            &format!("{} bytes", CODE.len()),
            "issuer-1",
        ],
    );
    let mut other = service("museum", AID, "issuer-1");
    other[1] = ("name", "Another name");
    let r = post_with(&mut browser, "/console/services", &other, &csrf).await;
    assert_eq!(r.status, 409, "{}", r.text());

    // A member through the API: its service, download and ledger on the pages.
    let (card, op) = member_through_api(&server, &w, "museum").await;
    let card_hex = card.card_id.to_hex();
    assert_has(
        &browser.page("/console/members").await,
        &["Museum Pass", "/console/members/museum", "2027-"],
    );
    let members = browser.page("/console/members/museum").await;
    assert_has(
        &members,
        &[
            "Members of museum",
            &card_hex,
            "Hanako Yamada",
            "user-0042",
            "hanako@example.org",
            &op.to_hex()[..12],
            "active",
        ],
    );
    assert_has(
        &browser.page("/console/downloads").await,
        &[
            &op.to_hex()[..12],
            &card_hex[..12],
            "museum",
            "member",
            "issuer-1",
        ],
    );
    let ledger = browser.page(&format!("/console/ledgers/{card_hex}")).await;
    assert_has(
        &ledger,
        &[
            "Verified, 1 entry",
            "store",
            "stored",
            AID,
            &card.rc.serial().to_string(),
        ],
    );
    assert_has(&browser.page("/console/ledgers").await, &[&card_hex]);
    let r = browser
        .get(&format!("/console/ledgers?card={card_hex}"))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/console/ledgers/{card_hex}").as_str())
    );
    let r = browser.get("/console/ledgers?card=nope").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("is not a card ID"));
    let unknown = browser
        .get(&format!("/console/ledgers/{}", CardId([1; 16]).to_hex()))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(browser.get("/console/members/nope").await.status, 404);

    stub.stop().await;
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
