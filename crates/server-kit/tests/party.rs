//! Party request authentication (SEC-3) through a real socket: a route guarded by
//! `PartyRequest`, called with requests signed by testkit's issuer and providers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::post;
use axum::Router;
use pki::{PartyId, UnixTime};
use protocol::{ApiRequest, Challenge, HttpMethod, PartyRole, RequestPath};
use server_kit::testing::{fresh_postgres_for_tests, request_for_tests, ResponseForTests};
use server_kit::{Db, Kit, ManualClock, Metrics, PartyRequest, PartyTrust};
use testkit::test_pki::{TestParty, TestPki};

const NOW: UnixTime = TestPki::NOW;
const AUDIENCE: &str = "provider-1";

#[derive(Clone)]
struct State {
    db: Db,
    trust: PartyTrust,
}

impl FromRef<State> for Db {
    fn from_ref(state: &State) -> Db {
        state.db.clone()
    }
}

impl FromRef<State> for PartyTrust {
    fn from_ref(state: &State) -> PartyTrust {
        state.trust.clone()
    }
}

async fn echo(party: PartyRequest) -> String {
    format!(
        "{}:{}",
        party.request.caller,
        String::from_utf8_lossy(&party.body)
    )
}

struct Fixture {
    pki: TestPki,
    trust: PartyTrust,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let pki = TestPki::new(1);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&format!("sqlite:{}", dir.path().join("p.db").display()))
        .await
        .unwrap();
    db.migrate(&server_kit::MigrationSet {
        component: "party-test",
        sqlite: &[],
        postgres: &[],
    })
    .await
    .unwrap();
    let trust = PartyTrust::new(
        PartyId::new(AUDIENCE).unwrap(),
        pki.issuer_anchor(),
        pki.data_anchor(),
        Arc::new(ManualClock::new(NOW)),
    );
    let api = Router::new()
        .route("/v1/echo", post(echo))
        .with_state(State {
            db: db.clone(),
            trust: trust.clone(),
        });
    let router = server_kit::finish(
        api,
        &Kit {
            db,
            metrics: Metrics::new(),
        },
    );
    let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let addr = listener.local_addr();
    tokio::spawn(listener.serve(router, std::future::pending()));
    Fixture {
        pki,
        trust,
        addr,
        _dir: dir,
    }
}

struct Signing<'a> {
    party: &'a TestParty,
    role: PartyRole,
    method: &'a str,
    path: &'a str,
    body: &'a [u8],
    audience: &'a str,
    issued_at: UnixTime,
    nonce: u8,
}

impl<'a> Signing<'a> {
    fn new(party: &'a TestParty, role: PartyRole, body: &'a [u8]) -> Signing<'a> {
        Signing {
            party,
            role,
            method: "POST",
            path: "/v1/echo?x=1",
            body,
            audience: AUDIENCE,
            issued_at: NOW,
            nonce: 1,
        }
    }

    fn header(&self) -> String {
        let request = ApiRequest {
            method: HttpMethod::new(self.method).unwrap(),
            path: RequestPath::new(self.path).unwrap(),
            body_digest: crypto::sha256(self.body),
            audience: PartyId::new(self.audience).unwrap(),
            caller_role: self.role,
            caller: self.party.id.clone(),
            issued_at: self.issued_at,
            nonce: Challenge([self.nonce; 16]),
        };
        hex::encode(
            request
                .sign(&self.party.key, vec![self.party.cert.der().to_vec()])
                .to_der(),
        )
    }
}

async fn send(addr: SocketAddr, path: &str, header: Option<&str>, body: &[u8]) -> ResponseForTests {
    let mut headers = vec![];
    if let Some(header) = header {
        headers.push(("Cardwright-Request", header));
    }
    request_for_tests(addr, "POST", path, &headers, Some(body))
        .await
        .unwrap()
}

fn assert_refused(response: &ResponseForTests, code: &str, says: &str) {
    assert_eq!(response.status, 401, "{}", response.text());
    let body = response.json();
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(says),
        "{message:?} does not mention {says:?}"
    );
}

#[tokio::test]
async fn accepts_signed_requests_once() {
    let f = fixture().await;
    let body = br#"{"item":"x"}"#;
    let header = Signing::new(&f.pki.issuer, PartyRole::Issuer, body).header();
    let ok = send(f.addr, "/v1/echo?x=1", Some(&header), body).await;
    assert_eq!(
        (ok.status, ok.text()),
        (200, format!("issuer-1:{}", String::from_utf8_lossy(body)))
    );
    assert_refused(
        &send(f.addr, "/v1/echo?x=1", Some(&header), body).await,
        "request_replayed",
        "issuer-1",
    );

    let provider = Signing {
        nonce: 2,
        ..Signing::new(&f.pki.provider_2, PartyRole::Provider, b"")
    };
    let ok = send(f.addr, "/v1/echo?x=1", Some(&provider.header()), b"").await;
    assert_eq!((ok.status, ok.text().as_str()), (200, "provider-2:"));
}

#[tokio::test]
async fn refuses_what_does_not_match_or_verify() {
    let f = fixture().await;
    let body: &[u8] = b"{}";
    let base = Signing::new(&f.pki.issuer, PartyRole::Issuer, body);

    assert_refused(
        &send(f.addr, "/v1/echo?x=1", None, body).await,
        "unauthenticated",
        "Cardwright-Request",
    );
    assert_refused(
        &send(f.addr, "/v1/echo?x=1", Some("zz"), body).await,
        "unauthenticated",
        "hex",
    );
    assert_refused(
        &send(f.addr, "/v1/echo?x=1", Some("3000"), body).await,
        "unauthenticated",
        "Cardwright-Request",
    );

    let cases: Vec<(Signing, &str, &[u8], &str, &str)> = vec![
        (
            Signing { nonce: 3, ..base },
            "/v1/echo?x=1",
            b"{ }",
            "unauthenticated",
            "body",
        ),
        (
            Signing { nonce: 4, ..base },
            "/v1/echo?x=2",
            body,
            "unauthenticated",
            "x=2",
        ),
        (
            Signing {
                nonce: 5,
                method: "PUT",
                ..base
            },
            "/v1/echo?x=1",
            body,
            "unauthenticated",
            "PUT",
        ),
        (
            Signing {
                nonce: 6,
                audience: "provider-2",
                ..base
            },
            "/v1/echo?x=1",
            body,
            "unauthenticated",
            "provider-2",
        ),
        (
            Signing {
                nonce: 7,
                issued_at: UnixTime(NOW.0 - 301),
                ..base
            },
            "/v1/echo?x=1",
            body,
            "request_stale",
            "300",
        ),
        (
            Signing {
                nonce: 8,
                issued_at: UnixTime(NOW.0 + 301),
                ..base
            },
            "/v1/echo?x=1",
            body,
            "request_stale",
            "300",
        ),
        // An issuer's IRC presented as a provider's certificate.
        (
            Signing {
                nonce: 9,
                role: PartyRole::Provider,
                ..base
            },
            "/v1/echo?x=1",
            body,
            "unauthenticated",
            "refused",
        ),
        (
            Signing {
                nonce: 10,
                ..Signing::new(&f.pki.rogue_issuer, PartyRole::Issuer, body)
            },
            "/v1/echo?x=1",
            body,
            "unauthenticated",
            "refused",
        ),
    ];
    for (signing, path, sent_body, code, says) in cases {
        assert_refused(
            &send(f.addr, path, Some(&signing.header()), sent_body).await,
            code,
            says,
        );
    }
    // The skew window is inclusive: 300 s off is still fine.
    let edge = Signing {
        nonce: 11,
        issued_at: UnixTime(NOW.0 - 300),
        ..base
    };
    assert_eq!(
        send(f.addr, "/v1/echo?x=1", Some(&edge.header()), body)
            .await
            .status,
        200
    );

    // Once the Issuer Registrar's CRL revokes the IRC, its requests are refused.
    f.trust.set_crls(vec![f.pki.issuer_registrar_crl(&[f
        .pki
        .issuer
        .cert
        .serial()])]);
    let revoked = Signing { nonce: 12, ..base };
    assert_refused(
        &send(f.addr, "/v1/echo?x=1", Some(&revoked.header()), body).await,
        "unauthenticated",
        "revoked",
    );
}

async fn nonces_once_across_instances(db_a: &Db, db_b: &Db) {
    let caller = PartyId::new("issuer-1").unwrap();
    let other = PartyId::new("issuer-2").unwrap();
    let expires = UnixTime(NOW.0 + 300);
    let (a, b) = tokio::join!(
        db_a.accept_nonce(&caller, &[1; 16], expires, NOW),
        db_b.accept_nonce(&caller, &[1; 16], expires, NOW)
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
    // Nonces are per caller.
    assert!(db_b
        .accept_nonce(&other, &[1; 16], expires, NOW)
        .await
        .unwrap());
    // Past its expiry a nonce is purged (its request is stale by then).
    assert!(db_a
        .accept_nonce(
            &caller,
            &[1; 16],
            UnixTime(NOW.0 + 900),
            UnixTime(NOW.0 + 301)
        )
        .await
        .unwrap());
}

#[tokio::test]
async fn nonces_are_accepted_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("n.db").display());
    let set = server_kit::MigrationSet {
        component: "party-test",
        sqlite: &[],
        postgres: &[],
    };
    let a = Db::open(&url).await.unwrap();
    a.migrate(&set).await.unwrap();
    let b = Db::open(&url).await.unwrap();
    nonces_once_across_instances(&a, &b).await;
}

#[tokio::test]
async fn nonces_are_accepted_once_on_postgres() {
    let Some(pg) = fresh_postgres_for_tests("party_nonces").await else {
        return;
    };
    let set = server_kit::MigrationSet {
        component: "party-test",
        sqlite: &[],
        postgres: &[],
    };
    let a = Db::open(&pg.url).await.unwrap();
    a.migrate(&set).await.unwrap();
    let b = Db::open(&pg.url).await.unwrap();
    nonces_once_across_instances(&a, &b).await;
    a.close().await;
    b.close().await;
    pg.drop_database().await;
}
