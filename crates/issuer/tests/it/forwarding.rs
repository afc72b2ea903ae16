//! STO-1 through the issuer: `POST /v1/authorizations/request` signs the SAR, forwards it to
//! the item's provider (a stub on port 0 that authenticates the issuer's party request and
//! signs a real SA), verifies the SA and answers both; a real card stores with it. And every
//! way that can fail: no URL (409), the provider unreachable or refusing, an SA the issuer
//! does not accept (502), URLs the policy refuses (400).

use pki::CardId;
use protocol::{Challenge, Operation, Sa, SaBasis, SignedObject};
use serde_json::json;
use testkit::world::{TestClient, World};

use crate::support::*;

/// A registered card and an SDI of provider-1 for it, over a fresh challenge.
struct Ready {
    card: TestClient,
    card_id: CardId,
    body: serde_json::Value,
}

async fn ready(server: &Server, w: &World, item: &[u8]) -> Ready {
    let (mut card, card_id) = personalised_card(server, w).await;
    register(server, w, &mut card, &card_id).await;
    let sdi = sdi(card_id, Operation::Store, item, b"bee", &w.pki.provider.id);
    let challenge = Challenge(card.get_challenge().unwrap());
    let body = json!({
        "card_id": card_id.to_hex(),
        "sdi": hex::encode(sdi.to_der()),
        "challenge": hex::encode(challenge.0),
    });
    Ready {
        card,
        card_id,
        body,
    }
}

async fn forwarding(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_forwarding").await else {
        return;
    };
    let w = World::new(41);
    let server = Server::start(&place, &w.pki).await;
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    let provider = w.pki.provider.id.as_str();

    // No URL in the policy: nothing to forward to.
    server.allow(provider, 1000).await;
    let mut r = ready(&server, &w, b"item-b").await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_error(&answer, 409, "provider_unreachable");
    assert!(answer.text().contains("url"), "{}", answer.text());

    // With the stub's URL: SAR and SA, and the card stores with the SA.
    server.allow_at(provider, 1000, Some(&stub.url)).await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let answer = answer.json();
    let sar = object_of(&answer, "sar");
    let sa = object_of(&answer, "sa");
    let body: Sa = sa.body_unverified().unwrap();
    assert_eq!(body.basis, SaBasis::Request(sar));
    assert_eq!(body.grantor, w.pki.provider.id);
    assert_eq!(answer["not_after"], body.not_after.0);
    let receipt = r.card.store(&sa, None, b"bee").unwrap();
    let recorded = server
        .post(
            "/v1/receipts",
            &json!({"receipt": hex::encode(receipt.to_der())}),
        )
        .await;
    assert_eq!(recorded.status, 201, "{}", recorded.text());
    assert_eq!(recorded.json()["in_sync"], true);
    let contents = server
        .get(&format!("/v1/cards/{}/contents", r.card_id.to_hex()))
        .await
        .json();
    assert_eq!(contents["items"][0]["item_id"], hex::encode(b"item-b"));

    // The provider refuses: 502 naming it, its status and code.
    stub.answer(Answer::Refuse);
    let r = ready(&server, &w, b"item-c").await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_error(&answer, 502, "provider_refused");
    let message = answer.json()["message"].as_str().unwrap().to_string();
    for part in ["provider-1", "422", "sdi_mismatch", "catalog"] {
        assert!(message.contains(part), "{part} not in {message}");
    }

    // An SA signed by another provider than the item's: the issuer does not pass it on.
    stub.answer(Answer::SignAs(Box::new(w.pki.provider_2.clone())));
    let r = ready(&server, &w, b"item-d").await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_error(&answer, 502, "provider_refused");
    assert!(answer.text().contains("provider-2"), "{}", answer.text());

    // An SA from a provider outside the Data Registrar's PKI.
    stub.answer(Answer::SignAs(Box::new(w.pki.rogue_provider.clone())));
    let r = ready(&server, &w, b"item-e").await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_error(&answer, 502, "provider_refused");

    // Nobody listening at the URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    server.allow_at(provider, 1000, Some(&closed)).await;
    let r = ready(&server, &w, b"item-f").await;
    let answer = server.post("/v1/authorizations/request", &r.body).await;
    assert_error(&answer, 502, "provider_unreachable");
    assert!(answer.text().contains(&closed), "{}", answer.text());

    // The policy refuses URLs it could never call.
    for url in [
        "ftp://x",
        "http://",
        "http://a b",
        "http://x/?q",
        "https://x",
    ] {
        let r = server
            .operate(
                "PUT",
                &format!("/v1/providers/{provider}"),
                &json!({"status": "allowed", "quota_bytes": 1, "url": url}),
            )
            .await;
        assert_error(&r, 400, "invalid_url");
    }

    stub.stop().await;
    server.stop().await;
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

/// The SAR-only service function (no provider involved) still signs the issuer's half.
#[tokio::test]
async fn request_sar_signs_without_forwarding() {
    let place = Place::new(Backend::Sqlite, "issuer_request_sar")
        .await
        .unwrap();
    let w = World::new(42);
    let server = Server::start(&place, &w.pki).await;
    server.allow(w.pki.provider.id.as_str(), 1000).await;
    let (mut card, card_id) = personalised_card(&server, &w).await;
    let (rc, _) = register(&server, &w, &mut card, &card_id).await;
    let item = sdi(card_id, Operation::Store, b"item", b"x", &w.pki.provider.id);
    let challenge = Challenge(card.get_challenge().unwrap());
    let sar: SignedObject = server
        .app
        .issuer
        .request_sar(&card_id, item.clone(), challenge)
        .await
        .unwrap();
    let body: protocol::Sar = sar.body_unverified().unwrap();
    assert_eq!((body.sdi, body.rc_digest), (item, rc.digest()));
    server.stop().await;
    place.finish().await;
}
