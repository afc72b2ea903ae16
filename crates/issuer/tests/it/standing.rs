//! The standing check (S1–S3): an issuer nonce, the real card's signed listing answering it,
//! the standing (holder, the card's capacity and free bytes, applications, in sync, open
//! operations), and every refusal with its code. SQLite and PostgreSQL.

use pki::CardId;
use serde_json::json;
use server_kit::Clock;
use testkit::world::World;

use crate::downloading::*;
use crate::support::*;

async fn standing(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_standing").await else {
        return;
    };
    let w = World::new(81);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let (mut c, card_id, _rc) = registered_card(&server, &w).await;

    // S1: a nonce for this card (16 bytes, 300 s).
    let check = client.check(&card_id).await.unwrap();
    assert_eq!(check.card_id, card_id.to_hex());
    assert_eq!(check.expires_at, NOW.0 + 300);
    let nonce = check.nonce_value().unwrap();
    assert_eq!(nonce.as_bytes().len(), 16);
    // S2–S3.
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let standing = client.standing(&card_id, &nonce, &listing).await.unwrap();
    assert_eq!(standing.status, "registered");
    assert_eq!(
        (
            standing.holder.user_id.as_str(),
            standing.holder.name.as_str()
        ),
        ("user-0001", "Alice Example")
    );
    assert_eq!((standing.capacity, standing.free), (4096, 4096));
    assert_eq!((standing.card_counter, standing.issuer_counter), (0, 0));
    assert!(standing.in_sync);
    assert!(standing.applications.is_empty() && standing.open_downloads.is_empty());
    // The e-mail stays with operators.
    let path = format!("/v1/cards/{}/checks/{}", card_id.to_hex(), check.nonce);
    let body = json!({"listing": hex::encode(listing.to_der())});
    // Single use.
    assert_error(&server.post(&path, &body).await, 409, "nonce_spent");

    // An open operation is listed (a terminal that lost its journal continues it).
    let application = c
        .sign_download_application(&download_request(&w, card_id, op(5)))
        .unwrap();
    client.open_download(&application, &_rc).await.unwrap();
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let standing = client.standing(&card_id, &nonce, &listing).await.unwrap();
    assert_eq!(standing.open_downloads, vec![op(5).to_hex()]);
    assert!(standing.in_sync);

    // Expired: 300 s.
    let late = client.check(&card_id).await.unwrap();
    let late_nonce = late.nonce_value().unwrap();
    server.clock.advance(301);
    let listing = c.listing(late_nonce.as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &late_nonce, &listing).await,
        409,
        "nonce_expired",
    );
    server.clock.set(NOW);

    // Unknown nonces: never issued, or issued for another card.
    let never = protocol::Nonce::new(&[7; 16]).unwrap();
    let listing = c.listing(never.as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &never, &listing).await,
        404,
        "unknown_nonce",
    );
    let (_, other_card) = personalised_card(&server, &w).await;
    let others = client
        .check(&other_card)
        .await
        .unwrap()
        .nonce_value()
        .unwrap();
    let listing = c.listing(others.as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &others, &listing).await,
        404,
        "unknown_nonce",
    );
    // The other card is personalised, not registered.
    assert_refused(
        client.standing(&other_card, &others, &listing).await,
        409,
        "card_not_registered",
    );

    // Listings refused: answering another nonce, not a listing, unreadable.
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let wrong = c.listing(b"another nonce").unwrap();
    assert_refused(
        client.standing(&card_id, &nonce, &wrong).await,
        422,
        "invalid_listing",
    );
    assert_refused(
        client.standing(&card_id, &nonce, &application).await,
        422,
        "wrong_purpose",
    );
    let path = format!(
        "/v1/cards/{}/checks/{}",
        card_id.to_hex(),
        hex::encode(nonce.as_bytes())
    );
    assert_error(
        &server.post(&path, &json!({"listing": "zz"})).await,
        400,
        "invalid_listing",
    );
    assert_error(
        &server
            .post(
                &format!("/v1/cards/{}/checks/xyz", card_id.to_hex()),
                &json!({"listing": "00"}),
            )
            .await,
        400,
        "invalid_nonce",
    );
    // Refused listings do not spend the nonce: the card's own still answers.
    let listing = c.listing(nonce.as_bytes()).unwrap();
    client.standing(&card_id, &nonce, &listing).await.unwrap();

    // Unknown cards get no nonce; revoked and expired RCs no standing.
    assert_refused(client.check(&CardId([3; 16])).await, 404, "unknown_card");
    assert_error(
        &server.post("/v1/cards/zz/checks", &json!({})).await,
        400,
        "invalid_card_id",
    );
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let rc = pki::Certificate::from_der(
        &hex::decode(
            client
                .card(&card_id)
                .await
                .unwrap()
                .registration
                .unwrap()
                .rc,
        )
        .unwrap(),
    )
    .unwrap();
    server.clock.set(pki::UnixTime(rc.not_after().0 + 1));
    assert_refused(
        client.standing(&card_id, &nonce, &listing).await,
        409,
        "nonce_expired",
    );
    // (The nonce expired first; a fresh one at that time meets the expired RC.)
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &nonce, &listing).await,
        409,
        "registration_expired",
    );
    server.clock.set(NOW);
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let r = server
        .operate(
            "POST",
            &format!("/v1/cards/{}/revocation", card_id.to_hex()),
            &json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let listing = c.listing(nonce.as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &nonce, &listing).await,
        409,
        "registration_revoked",
    );
    assert_eq!(server.clock.now(), NOW);

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn standing_sqlite() {
    standing(Backend::Sqlite).await;
}

#[tokio::test]
async fn standing_postgres() {
    standing(Backend::Postgres).await;
}

/// `POST /v1/cards/{id}/checks` needs no authentication, so what it keeps is bounded: at most
/// 16 nonces per card not answered and unexpired (the 17th is 429 `too_many_checks`, saying
/// when one expires; other cards are not affected), and nonces expired for a lifetime are
/// deleted (answering one is then `unknown_nonce`; just expired, still `nonce_expired`).
async fn checks_bounded(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_checks_bounded").await else {
        return;
    };
    let w = World::new(82);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let client = &server.client;
    let (mut c, card_id, _rc) = registered_card(&server, &w).await;
    let mut nonces = Vec::new();
    for _ in 0..16 {
        nonces.push(client.check(&card_id).await.unwrap().nonce_value().unwrap());
    }
    let refusal = client.check(&card_id).await.unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(429), Some("too_many_checks"))
    );
    assert!(
        refusal
            .to_string()
            .contains("16 standing-check nonces not answered yet")
            && refusal.to_string().contains(&(NOW.0 + 300).to_string()),
        "{refusal}"
    );
    assert_error(
        &server
            .post(
                &format!("/v1/cards/{}/checks", card_id.to_hex()),
                &json!({}),
            )
            .await,
        429,
        "too_many_checks",
    );
    // Per card: another card still gets one.
    let (_, other) = personalised_card(&server, &w).await;
    client.check(&other).await.unwrap();
    // An answered nonce is no longer open: one more.
    let listing = c.listing(nonces[0].as_bytes()).unwrap();
    client
        .standing(&card_id, &nonces[0], &listing)
        .await
        .unwrap();
    let last = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    assert_refused(client.check(&card_id).await, 429, "too_many_checks");

    // Expired, they are not open either; kept one more lifetime (a late answer is told
    // nonce_expired)...
    server.clock.set(pki::UnixTime(NOW.0 + 301));
    let fresh = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let listing = c.listing(nonces[1].as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &nonces[1], &listing).await,
        409,
        "nonce_expired",
    );
    // ...then deleted by the next insert, whichever card's (spent ones too).
    server.clock.set(pki::UnixTime(NOW.0 + 601));
    client.check(&other).await.unwrap();
    let listing = c.listing(nonces[1].as_bytes()).unwrap();
    assert_refused(
        client.standing(&card_id, &nonces[1], &listing).await,
        404,
        "unknown_nonce",
    );
    let store = issuer::SqlStore::open(server.app.db.clone()).await.unwrap();
    use issuer::Store as _;
    for gone in nonces.iter().chain([&last]) {
        assert_eq!(store.check(gone).await.unwrap(), None);
    }
    // The one issued at NOW + 301 is still valid and answers.
    let listing = c.listing(fresh.as_bytes()).unwrap();
    client.standing(&card_id, &fresh, &listing).await.unwrap();

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn checks_bounded_sqlite() {
    checks_bounded(Backend::Sqlite).await;
}

#[tokio::test]
async fn checks_bounded_postgres() {
    checks_bounded(Backend::Postgres).await;
}

/// Two instances on one database asked for one card's nonces at once: 16 in all, whichever
/// instance handed them out.
async fn checks_bounded_two_instances(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_checks_two").await else {
        return;
    };
    let w = World::new(83);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    let (_, card_id) = personalised_card(&a, &w).await;
    let mut asks = tokio::task::JoinSet::new();
    for n in 0..24 {
        let client = if n % 2 == 0 {
            a.client.clone()
        } else {
            b.client.clone()
        };
        asks.spawn(async move { client.check(&card_id).await });
    }
    let (mut given, mut refused) = (0, 0);
    while let Some(answer) = asks.join_next().await {
        match answer.unwrap() {
            Ok(_) => given += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("too_many_checks"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((given, refused), (16, 8));

    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn checks_bounded_two_instances_sqlite() {
    checks_bounded_two_instances(Backend::Sqlite).await;
}

#[tokio::test]
async fn checks_bounded_two_instances_postgres() {
    checks_bounded_two_instances(Backend::Postgres).await;
}
