//! Two provider instances on one database: a SAR granted on both at once is granted once, and
//! a receipt posted to both at once is recorded once (single-use and idempotence hold across
//! instances, as docs/parties.md requires).

use pki::UnixTime;
use protocol::{Challenge, Operation, PartyRole, Policy, Sar, SignedObject};
use serde_json::json;
use testkit::test_pki::TestPki;
use testkit::world::World;

use crate::support::{Backend, Place, Server};

const ITEM: [u8; 2] = [0xC0, 0x01];
const DATA: &[u8] = b"shared by two instances";

async fn two_instances(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_two_instances").await else {
        return;
    };
    let w = World::new(41);
    let a = Server::start_with_operator(&place, &w, "alice").await;
    let b = Server::start_with_operator(&place, &w, "bob").await;
    let published = a
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(ITEM), "version": 1, "data": hex::encode(DATA), "policy": Policy::NONE.bits()}),
            Some(&a.bearer()),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text());
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, &ITEM, 1, DATA);
    let sar = |challenge: Challenge| {
        Sar {
            requester_role: PartyRole::Issuer,
            requester: w.pki.issuer.id.clone(),
            rc_digest: rc.digest(),
            sdi: sdi.clone(),
            challenge,
            issued_at: TestPki::NOW,
            not_after: UnixTime(TestPki::NOW.0 + 600),
        }
        .sign(&w.pki.issuer.key, vec![w.pki.issuer.cert.der().to_vec()])
    };
    let grant = |sar: &SignedObject| json!({"sar": hex::encode(sar.to_der())});

    for k in 0..8u8 {
        let body = grant(&sar(Challenge([k; 16])));
        let (x, y) = tokio::join!(
            a.post_party("/v1/authorizations/grant", &body, &a.issuer),
            b.post_party("/v1/authorizations/grant", &body, &b.issuer)
        );
        let mut statuses = [x.status, y.status];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{} / {}", x.text(), y.text());
    }

    // A real receipt, posted to both at once: one ledger entry.
    let body = grant(&sar(Challenge(c.get_challenge().unwrap())));
    let granted = a
        .post_party("/v1/authorizations/grant", &body, &a.issuer)
        .await;
    assert_eq!(granted.status, 201, "{}", granted.text());
    let sa = SignedObject::from_der(&hex::decode(granted.json()["sa"].as_str().unwrap()).unwrap())
        .unwrap();
    let receipt = c.store(&sa, None, DATA).unwrap();
    let body = json!({
        "receipt": hex::encode(receipt.to_der()),
        "rc": hex::encode(rc.der()),
        "irc": hex::encode(w.pki.issuer.cert.der()),
    });
    let (x, y) = tokio::join!(
        a.post("/v1/receipts", &body, None),
        b.post("/v1/receipts", &body, None)
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", x.text(), y.text());
    assert_eq!(x.json()["entry"], y.json()["entry"]);
    let ledger = b
        .get(&format!("/v1/cards/{}/ledger", w.card_id.to_hex()))
        .await
        .json();
    assert_eq!(ledger["entries"].as_array().unwrap().len(), 1);

    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sqlite() {
    two_instances(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_postgres() {
    two_instances(Backend::Postgres).await;
}
