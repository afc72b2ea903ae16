//! The local server's security, over plain HTTP/1.1 to a portal on port 0: loopback only, the
//! start link and its cookie, the Host check, CSRF on every POST, and the headers of every
//! answer.

use std::net::SocketAddr;

use party_api::issuer::IssuerClient;
use party_api::provider::ProviderClient;
use party_api::HttpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::{CardClient, InProcessCard, Personalisation};

/// A personalised in-process card (testkit's world, rebuilt with this crate's types).
fn personalised_card() -> Box<dyn CardChannel + Send> {
    let world = testkit::world::World::new(41);
    let p = world.personalisation();
    let ours = Personalisation {
        card_id: p.card_id,
        sk: p.sk,
        sk_version: p.sk_version,
        issuer_anchor: p.issuer_anchor,
        data_anchor: p.data_anchor,
        issuer: p.issuer,
        pin: p.pin,
        pin_salt: p.pin_salt,
        pin_try_limit: p.pin_try_limit,
        issuer_authenticator: p.issuer_authenticator,
        capacity: p.capacity,
        time_floor: p.time_floor,
    };
    let rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(41);
    let mut card = CardClient::new(InProcessCard::new(world.blank_card(), Box::new(rng)));
    card.select_card_manager().unwrap();
    card.personalise(&ours).unwrap();
    Box::new(card.into_channel())
}

fn config(listen: &str, reader: Box<dyn CardReader>) -> PortalConfig {
    // Nothing listens there: these tests never reach a party.
    let nowhere = "http://127.0.0.1:9";
    PortalConfig {
        listen: listen.parse().unwrap(),
        reader,
        parties: Parties {
            issuer: IssuerClient::new(HttpClient::new(nowhere).unwrap()),
            provider: ProviderClient::new(HttpClient::new(nowhere).unwrap()),
            provider_id: pki::PartyId::new("provider-1").unwrap(),
        },
        journal_dir: std::env::temp_dir().join("cardwright-portal-unit-tests"),
        issuer_name: "Kanto Card Issuer".into(),
        provider_name: "Tram & Co".into(),
    }
}

async fn portal_with_card() -> RunningPortal {
    let reader = OneCard::new("Test reader", personalised_card());
    serve(config("127.0.0.1:0", Box::new(reader)))
        .await
        .unwrap()
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn assert_hardened(&self) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(
            self.header("content-security-policy"),
            Some("default-src 'self'; form-action 'self'; frame-ancestors 'none'"),
            "{self:?}"
        );
    }
}

/// Sends one request with exactly the given header lines (no Host unless given) and reads the
/// whole answer (`Connection: close`).
async fn send(addr: SocketAddr, head: &str, headers: &[&str], body: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{head} HTTP/1.1\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    if !body.is_empty() || head.starts_with("POST") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn host(addr: SocketAddr) -> String {
    format!("Host: 127.0.0.1:{}", addr.port())
}

fn start_path(portal: &RunningPortal) -> String {
    let url = portal.url();
    let path = &url[url.find("/start").unwrap()..];
    path.to_string()
}

/// Opens the start link and returns the `Cookie:` header line it earned.
async fn session_cookie(portal: &RunningPortal) -> String {
    let addr = portal.addr();
    let answer = send(
        addr,
        &format!("GET {}", start_path(portal)),
        &[&host(addr)],
        "",
    )
    .await;
    assert_eq!(answer.status, 303, "{answer:?}");
    let set = answer.header("set-cookie").unwrap();
    let pair = set.split(';').next().unwrap();
    format!("Cookie: {pair}")
}

fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = page.find(marker).expect("a form with the CSRF token") + marker.len();
    page[at..at + 64].to_string()
}

#[tokio::test]
async fn a_non_loopback_address_is_refused_with_the_reason() {
    for listen in ["0.0.0.0:0", "192.0.2.1:7610", "[::]:0"] {
        let reader = OneCard::new("Test reader", personalised_card());
        let Err(e) = serve(config(listen, Box::new(reader))).await else {
            panic!("{listen} was served");
        };
        assert!(matches!(e, PortalError::NotLoopback { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("the portal serves this computer only: use 127.0.0.1"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn the_start_link_sets_a_strict_http_only_cookie_and_a_wrong_key_does_not() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let url = portal.url().to_string();
    assert!(url.starts_with(&format!("http://127.0.0.1:{}/start?key=", addr.port())));
    let key = url.rsplit('=').next().unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));

    let answer = send(
        addr,
        &format!("GET {}", start_path(&portal)),
        &[&host(addr)],
        "",
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), Some("/"));
    let cookie = answer.header("set-cookie").unwrap();
    assert!(cookie.starts_with("cardwright_portal="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{cookie}");
    }
    let value = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_ne!(value, key, "the cookie is not the printed key");
    answer.assert_hardened();

    let mut wrong = key.to_string();
    wrong.replace_range(0..1, if key.starts_with('0') { "1" } else { "0" });
    for path in [
        format!("/start?key={wrong}"),
        "/start".to_string(),
        "/start?key=".to_string(),
    ] {
        let answer = send(addr, &format!("GET {path}"), &[&host(addr)], "").await;
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
        assert_eq!(answer.header("set-cookie"), None);
        answer.assert_hardened();
    }
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn every_page_needs_the_session_cookie() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    for path in ["/", "/style.css", "/problem", "/terms", "/no-such-page"] {
        let answer = send(addr, &format!("GET {path}"), &[&host(addr)], "").await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains("start link"), "{}", answer.body);
        answer.assert_hardened();
        let answer = send(
            addr,
            &format!("GET {path}"),
            &[&host(addr), "Cookie: cardwright_portal=00112233"],
            "",
        )
        .await;
        assert_eq!(answer.status, 403, "{path} with a wrong cookie");
    }
    let answer = send(addr, "GET /", &[&host(addr), &cookie], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("Insert your card"));
    assert!(answer.body.contains("Tram &amp; Co"));
    assert!(answer.body.contains("Test reader"));
    answer.assert_hardened();
    let answer = send(addr, "GET /style.css", &[&host(addr), &cookie], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_host_is_refused_even_with_the_cookie() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    let port = addr.port();
    for bad in [
        "Host: evil.example".to_string(),
        format!("Host: evil.example:{port}"),
        format!("Host: 127.0.0.1:{}", port.wrapping_add(1)),
        format!("Host: 127.0.0.2:{port}"),
    ] {
        let answer = send(addr, "GET /", &[&bad, &cookie], "").await;
        assert_eq!(answer.status, 421, "{bad}: {answer:?}");
        answer.assert_hardened();
        let answer = send(addr, &format!("GET {}", start_path(&portal)), &[&bad], "").await;
        assert_eq!(answer.status, 421, "{bad} on the start link");
        assert_eq!(answer.header("set-cookie"), None);
    }
    let answer = send(addr, "GET /", &[&cookie], "").await;
    assert_eq!(answer.status, 421, "no Host at all");
    let answer = send(
        addr,
        "GET /",
        &[&format!("Host: localhost:{port}"), &cookie],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "localhost is this computer");
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn every_post_needs_the_csrf_token_and_a_same_origin() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    let page = send(addr, "GET /", &[&host(addr), &cookie], "").await;
    assert!(page.body.contains("Card "), "{}", page.body);
    let csrf = csrf_of(&page.body);
    let form = "Content-Type: application/x-www-form-urlencoded";
    let origin = format!("Origin: http://127.0.0.1:{}", addr.port());

    let refused: [(&[&str], String); 6] = [
        (&[form], String::new()),
        (&[form], "csrf=".to_string()),
        (&[form], format!("csrf={}", "0".repeat(64))),
        (&[form], format!("other={csrf}")),
        (&["Content-Type: application/json"], format!("csrf={csrf}")),
        (
            &[form, "Origin: http://evil.example"],
            format!("csrf={csrf}"),
        ),
    ];
    for (extra, body) in refused {
        let mut headers = vec![host(addr), cookie.clone()];
        headers.extend(extra.iter().map(|h| h.to_string()));
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let answer = send(addr, "POST /finish", &headers, &body).await;
        assert_eq!(answer.status, 403, "{extra:?} {body}: {answer:?}");
        answer.assert_hardened();
    }
    let answer = send(
        addr,
        "POST /finish",
        &[&host(addr), &cookie, form],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/"));
    answer.assert_hardened();
    let answer = send(
        addr,
        "POST /finish",
        &[&host(addr), &cookie, form, &origin],
        &format!("csrf={csrf}&agree=yes"),
    )
    .await;
    assert_eq!(answer.status, 303, "same origin: {answer:?}");
    // Without the cookie the token alone is not enough.
    let answer = send(
        addr,
        "POST /finish",
        &[&host(addr), form],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status, 403);
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn other_methods_are_refused() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    let answer = send(addr, "PUT /", &[&host(addr), &cookie], "x").await;
    assert_eq!(answer.status, 405);
    answer.assert_hardened();
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn no_card_in_the_reader_keeps_the_first_page_waiting() {
    let reader = OpenWith::new("Empty reader", || {
        Err(ChannelError::Transport {
            detail: "no card in the reader".into(),
        })
    });
    let portal = serve(config("127.0.0.1:0", Box::new(reader)))
        .await
        .unwrap();
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    let answer = send(addr, "GET /", &[&host(addr), &cookie], "").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("Waiting for a card"),
        "{}",
        answer.body
    );
    assert!(answer
        .body
        .contains(r#"<meta http-equiv="refresh" content="1">"#));
    assert!(!answer.body.contains(r#"action="/card""#));
    portal.stop().await.unwrap();
}

#[tokio::test]
async fn a_page_out_of_turn_leads_back_to_the_sessions_screen() {
    let portal = portal_with_card().await;
    let addr = portal.addr();
    let cookie = session_cookie(&portal).await;
    for path in [
        "/terms",
        "/checking",
        "/services",
        "/application",
        "/sign",
        "/signing",
        "/progress",
        "/done",
        "/problem",
    ] {
        let answer = send(addr, &format!("GET {path}"), &[&host(addr), &cookie], "").await;
        assert_eq!(answer.status, 303, "{path}: {answer:?}");
        assert_eq!(answer.header("location"), Some("/"), "{path}");
        answer.assert_hardened();
    }
    let page = send(addr, "GET /", &[&host(addr), &cookie], "").await;
    let csrf = csrf_of(&page.body);
    let form = "Content-Type: application/x-www-form-urlencoded";
    for path in ["/terms", "/services", "/application", "/sign", "/resume"] {
        let answer = send(
            addr,
            &format!("POST {path}"),
            &[&host(addr), &cookie, form],
            &format!("csrf={csrf}&agree=yes&service=transit&pin=2468"),
        )
        .await;
        assert_eq!(answer.status, 303, "{path}: {answer:?}");
        assert_eq!(answer.header("location"), Some("/"), "{path}");
    }
    // The card in the reader moves (a) on to (b).
    let answer = send(
        addr,
        "POST /card",
        &[&host(addr), &cookie, form],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.header("location"), Some("/terms"));
    let answer = send(addr, "GET /", &[&host(addr), &cookie], "").await;
    assert_eq!(answer.header("location"), Some("/terms"));
    portal.stop().await.unwrap();
}
