//! Two issuer instances on one database serve one card's flow half each: a challenge from one
//! is spent by a registration at the other, a SAR granted by one is refused as replayed by the
//! other, and the same receipt posted to both at once is recorded once.

use protocol::{Challenge, Operation};
use serde_json::json;
use testkit::world::World;

use crate::support::*;

async fn two_instances(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_two_instances").await else {
        return;
    };
    let w = World::new(34);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    let provider = w.pki.provider.id.clone();
    a.allow(provider.as_str(), 1000).await;

    // Personalised at A; challenge from A, registration at B, replay at A.
    let (mut c, card_id) = personalised_card(&a, &w).await;
    let card_path = format!("/v1/cards/{}", card_id.to_hex());
    let r = a.post(&format!("{card_path}/challenge"), &json!({})).await;
    let challenge: [u8; 16] = bytes_of(&r.json(), "challenge").try_into().unwrap();
    let registration = c.register(&w.user, &challenge).unwrap();
    let body = json!({"registration": hex::encode(registration.to_der())});
    let r = b.post(&format!("{card_path}/registration"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let rc = pki::Certificate::from_der(&bytes_of(&r.json(), "rc")).unwrap();
    c.register_complete(&rc, &w.pki.issuer.cert).unwrap();
    assert_error(
        &a.post(&format!("{card_path}/registration"), &body).await,
        409,
        "challenge_spent",
    );

    // Granted at B (policy set at A), replayed at A.
    let stored = sdi(card_id, Operation::Store, b"item", b"data", &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    let sar = provider_sar(&w, &stored, ch, &rc);
    let granted = grant_as(&b, &w.pki.provider, &sar).await.unwrap();
    assert_refused(
        grant_as(&a, &w.pki.provider, &sar).await,
        409,
        "authorization_replayed",
    );
    let sa = granted.sa_object().unwrap();
    let receipt = c.store(&sa, None, b"data").unwrap();

    // The same receipt at both instances at once: one ledger entry.
    let body = json!({"receipt": hex::encode(receipt.to_der())});
    let (ra, rb) = tokio::join!(a.post("/v1/receipts", &body), b.post("/v1/receipts", &body));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", ra.text(), rb.text());
    assert_eq!(ra.json()["entry"], rb.json()["entry"]);
    let summary = verified_ledger(&b, &card_id, &w, &rc).await;
    assert_eq!((summary.entries, summary.last_counter), (1, 1));
    assert_eq!(
        a.get(&format!("{card_path}/contents")).await.json()["last_counter"],
        1
    );

    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn two_instances_sqlite() {
    two_instances(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_instances_postgres() {
    two_instances(Backend::Postgres).await;
}
