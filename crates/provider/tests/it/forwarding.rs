//! STO-2 through the provider: it signs the SAR, asks the card's issuer for its SA in a party
//! request (a stub issuer that authenticates it for real and signs a real SA), verifies the SA
//! as the card will, and answers both; a real card accepts the SA. The ways it fails: an
//! unknown issuer, an issuer refusing, unreachable, or answering with an SA that is not its
//! own, not over our SAR, not an SA at all, or signed under a revoked IRC.

use protocol::{Challenge, Operation, PartyRole, Policy, Sar, SignedObject};
use serde_json::json;
use server_kit::testing::ResponseForTests;
use server_kit::ManualClock;
use testkit::test_pki::TestPki;
use testkit::world::World;

use crate::stub_issuer::{Answer, StubIssuer};
use crate::support::{assert_error, hex_of, second_issuer, Backend, Place, Server};

const ITEM: [u8; 3] = [0xD0, 0x00, 0x01];
const DATA: &[u8] = b"requested by the provider, granted by the issuer";

async fn request(
    server: &Server,
    w: &World,
    rc: &pki::Certificate,
    challenge: Challenge,
    issuer: &str,
) -> ResponseForTests {
    let sdi = w.sdi(Operation::Store, &ITEM, 1, DATA);
    server
        .post(
            "/v1/authorizations/request",
            &json!({
                "card_id": w.card_id.to_hex(),
                "rc_digest": hex::encode(rc.digest().0),
                "sdi": hex::encode(sdi.to_der()),
                "challenge": hex::encode(challenge.0),
                "issuer": issuer,
            }),
            None,
        )
        .await
}

/// Asserts a 502 with `code` whose message contains every one of `mentions`.
fn assert_bad_gateway(response: &ResponseForTests, code: &str, mentions: &[&str]) {
    assert_error(response, 502, code);
    let message = response.json()["message"].as_str().unwrap().to_string();
    for mention in mentions {
        assert!(message.contains(mention), "{mention:?} not in {message:?}");
    }
}

async fn forwarding(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_forwarding").await else {
        return;
    };
    let w = World::new(51);
    let issuer_clock = ManualClock::new(TestPki::NOW);
    let issuer = StubIssuer::start(&w.pki.issuer, &w.pki, &issuer_clock, place.dir.path()).await;
    // issuer-2 is configured at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let issuer_2 = second_issuer(&w.pki);
    let server = Server::start_with_issuers(
        &place,
        &w,
        "alice",
        vec![
            (w.pki.issuer.id.clone(), issuer.url.clone()),
            (issuer_2.id.clone(), closed_url.clone()),
        ],
    )
    .await;
    let published = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(ITEM), "version": 1, "data": hex::encode(DATA), "policy": Policy::NONE.bits()}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text());
    let (mut c, rc) = w.registered();
    let issuer_id = w.pki.issuer.id.as_str();
    let data_path = format!(
        "/v1/items/{}/data?card={}",
        hex::encode(ITEM),
        w.card_id.to_hex()
    );

    // Failures first: nothing is recorded, so the data stays closed to the card.
    let ch = Challenge([1; 16]);
    assert_error(
        &request(&server, &w, &rc, ch, "issuer-9").await,
        422,
        "unknown_issuer",
    );
    issuer.answer(Answer::Refuse);
    assert_bad_gateway(
        &request(&server, &w, &rc, ch, issuer_id).await,
        "issuer_refused",
        &[issuer_id, "409", "quota_exceeded", "quota"],
    );
    issuer.answer(Answer::SignAs(Box::new(issuer_2.clone())));
    assert_bad_gateway(
        &request(&server, &w, &rc, Challenge([2; 16]), issuer_id).await,
        "issuer_refused",
        &[issuer_id, "issuer-2"],
    );
    issuer.answer(Answer::OtherSar);
    assert_bad_gateway(
        &request(&server, &w, &rc, Challenge([3; 16]), issuer_id).await,
        "issuer_refused",
        &["SAR just signed"],
    );
    issuer.answer(Answer::Garbage);
    assert_bad_gateway(
        &request(&server, &w, &rc, Challenge([4; 16]), issuer_id).await,
        "issuer_refused",
        &[issuer_id],
    );
    assert_bad_gateway(
        &request(&server, &w, &rc, Challenge([5; 16]), issuer_2.id.as_str()).await,
        "issuer_unreachable",
        &["issuer-2", &closed_url],
    );
    // The issuer's IRC revoked: its SA no longer verifies (the stub does not know).
    issuer.answer(Answer::Grant);
    server
        .app
        .provider
        .set_crls(vec![w.pki.issuer_registrar_crl(&[w
            .pki
            .issuer
            .cert
            .serial()])]);
    assert_bad_gateway(
        &request(&server, &w, &rc, Challenge([6; 16]), issuer_id).await,
        "issuer_refused",
        &["revoked"],
    );
    server.app.provider.set_crls(Vec::new());
    assert_error(&server.get(&data_path).await, 403, "card_not_authorized");

    // The issuer grants: the SA is over our SAR, and the card accepts it.
    let ch = Challenge(c.get_challenge().unwrap());
    let response = request(&server, &w, &rc, ch, issuer_id).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let body = response.json();
    assert_eq!(body["not_after"], TestPki::NOW.0 + 600);
    let sar = SignedObject::from_der(&hex_of(&body, "sar")).unwrap();
    let claimed: Sar = sar.body_unverified().unwrap();
    assert_eq!(claimed.requester_role, PartyRole::Provider);
    assert_eq!(claimed.requester, w.pki.provider.id);
    let sa = SignedObject::from_der(&hex_of(&body, "sa")).unwrap();
    let served = server.get(&data_path).await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(hex_of(&served.json(), "data"), DATA);
    let receipt = c.store(&sa, None, DATA).expect("the card accepts STO-2");
    let recorded = server
        .post(
            "/v1/receipts",
            &json!({
                "receipt": hex::encode(receipt.to_der()),
                "rc": hex::encode(rc.der()),
                "irc": hex::encode(w.pki.issuer.cert.der()),
            }),
            None,
        )
        .await;
    assert_eq!(recorded.status, 201, "{}", recorded.text());

    server.stop().await;
    issuer.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn forwarding_sqlite() {
    forwarding(Backend::Sqlite).await;
}

#[tokio::test]
async fn forwarding_postgres() {
    forwarding(Backend::Postgres).await;
}
