//! REG-3 at the issuer: an RC that expired at the issuer's clock or that the issuer revoked
//! gets nothing signed for its card any more (STO-1 request, STO-2 grant, a delegation naming
//! it: 409 `registration_expired` / `registration_revoked`), and the issuer publishes a CRL of
//! the RCs it revoked, signed with its key, numbered across instances on one database.

use party_api::issuer::RevokeCardResponse;
use pki::{CardId, Certificate, Crl, PkiError, Role, UnixTime};
use protocol::{Challenge, Operation, PartyRole, Sar, Sdi, SignedObject};
use serde_json::json;
use server_kit::Clock;
use testkit::world::World;

use crate::support::*;

/// `provider-1`'s SAR for `sdi` bound to `rc`, issued at `at` and valid 600 s.
fn sar_at(w: &World, sdi: &Sdi, rc: &Certificate, at: UnixTime) -> SignedObject {
    let p = &w.pki.provider;
    Sar {
        requester_role: PartyRole::Provider,
        requester: p.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([0x5A; 16]),
        issued_at: at,
        not_after: UnixTime(at.0 + 600),
    }
    .sign(&p.key, vec![p.cert.der().to_vec()])
}

/// `POST /v1/authorizations/request` (STO-1) for `sdi` on its card.
async fn request(server: &Server, sdi: &Sdi) -> server_kit::testing::ResponseForTests {
    server
        .post(
            "/v1/authorizations/request",
            &json!({
                "card_id": sdi.card_id.to_hex(),
                "sdi": hex::encode(sdi.to_der()),
                "challenge": hex::encode([0x5A; 16]),
            }),
        )
        .await
}

/// `POST /v1/delegations` for `provider-1`, limited to `card_id` if given.
async fn delegate(
    server: &Server,
    w: &World,
    card_id: Option<&CardId>,
) -> server_kit::testing::ResponseForTests {
    server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({
                "provider": w.pki.provider.id.as_str(),
                "provider_certificate": hex::encode(w.pki.provider.cert.der()),
                "operations": ["store"],
                "max_item_size": 64,
                "card_id": card_id.map(CardId::to_hex),
            }),
        )
        .await
}

/// A card personalised and registered at `server`: its client, ID and RC.
async fn registered_card(
    server: &Server,
    w: &World,
) -> (testkit::world::TestClient, CardId, Certificate) {
    let (mut c, card_id) = personalised_card(server, w).await;
    let (rc, _) = register(server, w, &mut c, &card_id).await;
    (c, card_id, rc)
}

async fn expired_rc(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_expired_rc").await else {
        return;
    };
    let w = World::new(51);
    let server = Server::start_with(&place, &w.pki, "olga", |config| {
        config.settings.rc_validity_s = 3600;
    })
    .await;
    let provider = w.pki.provider.id.clone();
    server.allow(provider.as_str(), 1000).await;
    let (_c, card_id, rc) = registered_card(&server, &w).await;
    assert_eq!(rc.not_after(), UnixTime(NOW.0 + 3600));
    let card = server.client.card(&card_id).await.unwrap();
    let registration = card.registration.unwrap();
    assert_eq!(
        (registration.not_after, registration.revocation),
        (NOW.0 + 3600, None)
    );

    // In force: granted, delegated (up to and including the last second of the RC).
    let first = sdi(card_id, Operation::Store, b"item-a", b"aa", &provider);
    grant_as(&server, &w.pki.provider, &sar_at(&w, &first, &rc, NOW))
        .await
        .unwrap();
    server.clock.set(rc.not_after());
    let last_second = sdi(card_id, Operation::Store, b"item-b", b"bb", &provider);
    let sar = sar_at(&w, &last_second, &rc, server.clock.now());
    grant_as(&server, &w.pki.provider, &sar).await.unwrap();

    // One second later the RC has expired: nothing more is signed for the card.
    server.clock.advance(1);
    let now = server.clock.now();
    let later = sdi(card_id, Operation::Store, b"item-c", b"cc", &provider);
    let expired = |r: &server_kit::testing::ResponseForTests| {
        assert_error(r, 409, "registration_expired");
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&rc.not_after().to_string()) && message.contains(&now.to_string()),
            "{message}"
        );
    };
    expired(&request(&server, &later).await);
    let sar = sar_at(&w, &later, &rc, now);
    let refused = grant_as(&server, &w.pki.provider, &sar).await;
    assert_refused(refused, 409, "registration_expired");
    expired(&delegate(&server, &w, Some(&card_id)).await);
    // The STO-2 refusal spent nothing: the same SAR is refused the same way, not replayed.
    assert_refused(
        grant_as(&server, &w.pki.provider, &sar).await,
        409,
        "registration_expired",
    );
    // A delegation for every card is not about this card.
    let all = delegate(&server, &w, None).await;
    assert_eq!(all.status, 201, "{}", all.text());

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn expired_rc_sqlite() {
    expired_rc(Backend::Sqlite).await;
}

#[tokio::test]
async fn expired_rc_postgres() {
    expired_rc(Backend::Postgres).await;
}

/// The CRL in a `GET /v1/crl` answer, checked: the fields agree with the DER and the PEM, and
/// it verifies under the issuer's IRC.
fn verified_crl(body: &serde_json::Value, w: &World) -> Crl {
    let crl = Crl::from_der(&bytes_of(body, "crl")).unwrap();
    assert_eq!(Crl::from_pem(body["pem"].as_str().unwrap()).unwrap(), crl);
    assert_eq!(body["number"], crl.number());
    assert_eq!(body["this_update"], crl.this_update().0);
    assert_eq!(body["next_update"], crl.next_update().0);
    crl.verify_signed_by(&w.pki.issuer.cert).unwrap();
    assert_eq!(crl.issuer_id(), &w.pki.issuer.id);
    crl
}

/// The RC's chain as every verifier checks it: through the IRC to the Issuer Registrar root,
/// with `crls`.
fn verify_rc(w: &World, rc: &Certificate, crls: &[Crl], now: UnixTime) -> Result<(), PkiError> {
    pki::verify_chain(
        &[rc.clone(), w.pki.issuer.cert.clone()],
        std::slice::from_ref(&w.pki.issuer_registrar.cert),
        crls,
        now,
        Role::Card,
    )
    .map(drop)
}

async fn revocation(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_revocation").await else {
        return;
    };
    let w = World::new(52);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    let token = a.token.expose();
    let provider = w.pki.provider.id.clone();
    a.allow(provider.as_str(), 1000).await;
    let (_c1, one, rc1) = registered_card(&a, &w).await;
    let (_c2, two, rc2) = registered_card(&b, &w).await;
    let (_c3, three, rc3) = registered_card(&a, &w).await;
    let (_c4, unregistered) = personalised_card(&a, &w).await;

    // Before any revocation: CRL 1, signed on demand, empty; the same at both instances.
    let first = a.get("/v1/crl").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let crl = verified_crl(&first.json(), &w);
    assert_eq!((crl.number(), crl.revoked()), (1, &[][..]));
    assert_eq!(b.get("/v1/crl").await.json(), first.json());
    assert_eq!(b.client.current_crl().await.unwrap(), crl);

    // Refusals: operator only, a known reason, a card of the registry that has an RC.
    let path = |card: &CardId| format!("/v1/cards/{}/revocation", card.to_hex());
    let body = json!({"reason": "key_compromise"});
    assert_error(
        &a.send("POST", &path(&one), &body, None).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &a.operate("POST", &path(&one), &json!({"reason": "lost"}))
            .await,
        400,
        "invalid_reason",
    );
    assert_error(
        &a.operate("POST", &path(&CardId([9; 16])), &body).await,
        404,
        "unknown_card",
    );
    assert_error(
        &a.operate("POST", &path(&unregistered), &body).await,
        409,
        "card_not_registered",
    );
    assert_error(
        &a.operate("POST", "/v1/cards/zz/revocation", &body).await,
        400,
        "invalid_card_id",
    );

    // Card one is lost: revoked at A (201), the same again at B (200, the first revocation).
    let revoked = a.operate("POST", &path(&one), &body).await;
    assert_eq!(revoked.status, 201, "{}", revoked.text());
    let revoked: RevokeCardResponse = serde_json::from_value(revoked.json()).unwrap();
    assert_eq!(
        revoked,
        RevokeCardResponse {
            card_id: one.to_hex(),
            serial: rc1.serial(),
            reason: "key_compromise".into(),
            revoked_at: NOW.0,
            crl_number: 2,
            newly_revoked: true,
        }
    );
    let again = b
        .client
        .revoke_card(b.token.expose(), &one, "superseded")
        .await
        .unwrap();
    assert_eq!(
        again,
        RevokeCardResponse {
            newly_revoked: false,
            ..revoked.clone()
        }
    );
    let card = b.client.card(&one).await.unwrap();
    let revocation = card.registration.unwrap().revocation.unwrap();
    assert_eq!(
        (revocation.reason.as_str(), revocation.revoked_at),
        ("key_compromise", NOW.0)
    );
    assert_eq!(
        b.client
            .card(&two)
            .await
            .unwrap()
            .registration
            .unwrap()
            .revocation,
        None
    );

    // The CRL lists it and every verifier holding it refuses the RC; the others still verify.
    let crl = verified_crl(&b.get("/v1/crl").await.json(), &w);
    assert_eq!((crl.number(), crl.revoked()), (2, &[rc1.serial()][..]));
    let crls = [crl];
    assert!(
        matches!(
            verify_rc(&w, &rc1, &crls, NOW),
            Err(PkiError::CertificateRevoked { serial, crl_number: 2, .. }) if serial == rc1.serial()
        ),
        "{:?}",
        verify_rc(&w, &rc1, &crls, NOW)
    );
    verify_rc(&w, &rc2, &crls, NOW).unwrap();

    // Nothing more is signed for card one, on either instance.
    let stored = sdi(one, Operation::Store, b"item", b"data", &provider);
    assert_error(&request(&b, &stored).await, 409, "registration_revoked");
    assert_refused(
        grant_as(&a, &w.pki.provider, &sar_at(&w, &stored, &rc1, NOW)).await,
        409,
        "registration_revoked",
    );
    assert_error(
        &delegate(&b, &w, Some(&one)).await,
        409,
        "registration_revoked",
    );
    // Card two is not affected.
    let other = sdi(two, Operation::Store, b"item", b"data", &provider);
    grant_as(&b, &w.pki.provider, &sar_at(&w, &other, &rc2, NOW))
        .await
        .unwrap();

    // Two revocations at once on the two instances: distinct CRL numbers, and the CRL after
    // both lists every serial.
    let (r2, r3) = tokio::join!(
        a.client.revoke_card(token, &two, "cessation_of_operation"),
        b.client
            .revoke_card(b.token.expose(), &three, "affiliation_changed"),
    );
    let (r2, r3) = (r2.unwrap(), r3.unwrap());
    assert!(r2.newly_revoked && r3.newly_revoked);
    let mut numbers = [r2.crl_number, r3.crl_number];
    numbers.sort();
    assert_eq!(numbers, [3, 4], "{r2:?} {r3:?}");
    let crl = verified_crl(&a.get("/v1/crl").await.json(), &w);
    let mut serials = vec![rc1.serial(), rc2.serial(), rc3.serial()];
    serials.sort();
    assert_eq!((crl.number(), crl.revoked()), (4, serials.as_slice()));

    // Half the CRL's validity later it is re-signed, once, under the next number.
    let half = issuer::Settings::default().crl_validity_s / 2;
    a.clock.advance(half);
    b.clock.advance(half);
    let (ra, rb) = tokio::join!(a.client.crl(), b.client.crl());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra, rb);
    let resigned = ra.crl_value().unwrap();
    resigned.verify_signed_by(&w.pki.issuer.cert).unwrap();
    assert_eq!(
        (
            resigned.number(),
            resigned.revoked(),
            resigned.this_update()
        ),
        (5, serials.as_slice(), UnixTime(NOW.0 + half))
    );

    let metrics = a.get("/metrics").await.text();
    assert!(
        metrics.contains("issuer_cards_revoked_total 2"),
        "{metrics}"
    );

    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn revocation_sqlite() {
    revocation(Backend::Sqlite).await;
}

#[tokio::test]
async fn revocation_postgres() {
    revocation(Backend::Postgres).await;
}
