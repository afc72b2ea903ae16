//! REG-3 for cards' RCs at the provider: it follows the CRL each configured issuer publishes of
//! the RCs it revoked (`GET {url}/v1/crl`, verified under the IRC of `GET {url}/v1/issuer`),
//! at start, on `POST /v1/crls/refresh` and in the background; a receipt under a revoked RC is
//! then refused (422 `untrusted_signer`). The issuer is a [`StubIssuer`] signing real CRLs with
//! the world's issuer key.

use std::time::Duration;

use party_api::provider::{CrlsResponse, ProviderClient};
use pki::{Certificate, UnixTime};
use protocol::{Challenge, Operation, PartyRole, Policy, Sar, Sdi, SignedObject};
use serde_json::json;
use server_kit::Clock;
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::World;

use crate::stub_issuer::StubIssuer;
use crate::support::{assert_refused, second_issuer, Backend, Place, Server};

const NOW: UnixTime = TestPki::NOW;

/// The issuer's SAR (STO-1) for `sdi`, signed by `issuer` with its IRC.
fn issuer_sar(issuer: &TestParty, sdi: &Sdi, ch: Challenge, rc: &Certificate) -> SignedObject {
    Sar {
        requester_role: PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge: ch,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&issuer.key, vec![issuer.cert.der().to_vec()])
}

/// `item` published, granted to the card on STO-1 and stored: the card's receipt.
async fn stored(
    server: &Server,
    w: &World,
    c: &mut testkit::world::TestClient,
    rc: &Certificate,
    item: &[u8],
) -> SignedObject {
    let client = server.provider_client();
    let data = item.repeat(3);
    let published = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(item), "version": 1, "data": hex::encode(&data), "policy": Policy::NONE.bits()}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text());
    let sdi = w.sdi(Operation::Store, item, 1, &data);
    let sar = issuer_sar(
        &w.pki.issuer,
        &sdi,
        Challenge(c.get_challenge().unwrap()),
        rc,
    );
    let granted = client
        .grant(&server.issuer, server.clock.now(), &sar)
        .await
        .unwrap();
    c.store(&granted.sa_object().unwrap(), None, &data).unwrap()
}

/// The issuer's CRL among those held: (number, how many revoked, source).
fn issuer_crl(held: &CrlsResponse, w: &World) -> Option<(u64, u64, String)> {
    held.crls
        .iter()
        .find(|c| c.issuer == w.pki.issuer.id.as_str())
        .map(|c| (c.number, c.revoked, c.source.clone()))
}

async fn receipts_under_a_revoked_rc(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_issuer_crls").await else {
        return;
    };
    let w = World::new(61);
    let (server, issuer) = Server::start_with_stub_issuer(&place, &w).await;
    let token = server.token.expose();
    let client = server.provider_client();
    // An instance on the same database refreshing by itself every 20 ms.
    let eager = Server::start_configured(&place, &w, "bob", |config| {
        config.issuers = vec![(w.pki.issuer.id.clone(), issuer.url.clone())];
        config.crl_refresh_every = Duration::from_millis(20);
    })
    .await;
    assert!(eager.app.crls.is_following());

    // At start the provider took the issuer's CRL: nothing revoked yet.
    let held = client.crls().await.unwrap();
    assert_eq!(
        issuer_crl(&held, &w),
        Some((1, 0, issuer.url.clone())),
        "{held:?}"
    );
    let (mut c, rc) = w.registered();
    let first = stored(&server, &w, &mut c, &rc, b"\xA1").await;
    let irc = &w.pki.issuer.cert;
    let recorded = client.receipt(&first, &rc, irc).await.unwrap();
    assert!(recorded.newly_recorded);

    // The card is lost: its issuer revokes the RC. A receipt signed before the provider hears
    // of it is refused once it has.
    let second = stored(&server, &w, &mut c, &rc, b"\xA2").await;
    issuer.revoke(rc.serial());
    let refreshed = client.refresh_crls(token).await.unwrap();
    assert_eq!(
        issuer_crl(&refreshed, &w),
        Some((2, 1, issuer.url.clone())),
        "{refreshed:?}"
    );
    assert_eq!(client.crls().await.unwrap(), refreshed);
    let refused = client.receipt(&second, &rc, irc).await;
    assert_refused(refused, 422, "untrusted_signer");
    match client.receipt(&second, &rc, irc).await {
        Err(party_api::ClientError::Refused { message, .. }) => {
            assert!(message.contains("revoked"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Nothing was recorded for it.
    let ledger = client.ledger(&w.card_id).await.unwrap();
    assert_eq!(ledger.entries.len(), 1);

    // The other instance took the CRL by itself.
    let eager_client = eager.provider_client();
    let mut waited = 0;
    loop {
        let held = eager_client.crls().await.unwrap();
        if issuer_crl(&held, &w).is_some_and(|(number, ..)| number == 2) {
            break;
        }
        assert!(waited < 10_000, "no refresh within 10 s: {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 20;
    }
    assert_refused(
        eager_client.receipt(&second, &rc, irc).await,
        422,
        "untrusted_signer",
    );
    eager.app.crls.stop();

    // A CRL the issuer's IRC did not sign is refused (502 issuer_refused) and the one held
    // stays in force.
    issuer.sign_crls_as(second_issuer(&w.pki));
    let refused = client.refresh_crls(token).await;
    assert_refused(refused, 502, "issuer_refused");
    assert_eq!(
        issuer_crl(&client.crls().await.unwrap(), &w),
        Some((2, 1, issuer.url.clone()))
    );
    assert_refused(
        client.receipt(&second, &rc, irc).await,
        422,
        "untrusted_signer",
    );

    // An issuer that does not answer: 502 issuer_unreachable, the CRL held stays.
    issuer.stop().await;
    assert_refused(client.refresh_crls(token).await, 502, "issuer_unreachable");
    assert_eq!(
        issuer_crl(&client.crls().await.unwrap(), &w).map(|(n, r, _)| (n, r)),
        Some((2, 1))
    );

    eager.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn receipts_under_a_revoked_rc_sqlite() {
    receipts_under_a_revoked_rc(Backend::Sqlite).await;
}

#[tokio::test]
async fn receipts_under_a_revoked_rc_postgres() {
    receipts_under_a_revoked_rc(Backend::Postgres).await;
}

/// An issuer whose IRC the provider does not trust (here: it presents another issuer's IRC)
/// gets no CRL taken; a provider without registrars or issuers has nothing to refresh.
#[tokio::test]
async fn an_issuer_crl_needs_the_issuer_own_trusted_irc() {
    let place = Place::new(Backend::Sqlite, "provider_issuer_irc")
        .await
        .unwrap();
    let w = World::new(62);
    let clock = server_kit::ManualClock::new(NOW);
    // A stub answering as issuer-2 (its IRC, its CRLs) configured as issuer-1.
    let impostor =
        StubIssuer::start(&second_issuer(&w.pki), &w.pki, &clock, place.dir.path()).await;
    let server = Server::start_configured(&place, &w, "alice", |config| {
        config.issuers = vec![(w.pki.issuer.id.clone(), impostor.url.clone())];
    })
    .await;
    let client = server.provider_client();
    assert_eq!(issuer_crl(&client.crls().await.unwrap(), &w), None);
    match client.refresh_crls(server.token.expose()).await {
        Err(party_api::ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (502, "issuer_refused"),
                "{message}"
            );
            assert!(message.contains("issuer-2"), "{message}");
        }
        other => panic!("expected 502 issuer_refused, got {other:?}"),
    }
    assert!(client.crls().await.unwrap().crls.is_empty());

    let alone = Server::start_with_operator(&place, &w, "carolyn").await;
    assert_refused(
        ProviderClient::new(alone.client.clone())
            .refresh_crls(alone.token.expose())
            .await,
        409,
        "no_registrars",
    );

    impostor.stop().await;
    alone.stop().await;
    server.stop().await;
    place.finish().await;
}
