//! STO-2 through the provider: it signs the SAR, asks the card's issuer for its SA in a party
//! request (a stub issuer that authenticates it for real and signs a real SA), verifies the SA
//! as the card will, and answers both; a real card accepts the SA. The ways it fails: an
//! unknown issuer, an issuer refusing, unreachable, or answering with an SA that is not its
//! own, not over our SAR, not an SA at all, or signed under a revoked IRC.

use party_api::provider::{ProviderClient, RequestResponse};
use party_api::ClientError;
use pki::PartyId;
use protocol::{Challenge, ItemId, Operation, PartyRole, Policy, Sar};
use server_kit::ManualClock;
use testkit::test_pki::TestPki;
use testkit::world::World;

use crate::stub_issuer::{Answer, StubIssuer};
use crate::support::{assert_refused, second_issuer, Backend, Place, Server};

const ITEM: [u8; 3] = [0xD0, 0x00, 0x01];
const DATA: &[u8] = b"requested by the provider, granted by the issuer";

/// STO-2 for `w`'s card through party_api's provider client.
async fn request(
    client: &ProviderClient,
    w: &World,
    rc: &pki::Certificate,
    challenge: Challenge,
    issuer: &PartyId,
) -> Result<RequestResponse, ClientError> {
    let sdi = w.sdi(Operation::Store, &ITEM, 1, DATA);
    client
        .request(&w.card_id, &rc.digest(), &sdi, &challenge, issuer)
        .await
}

/// Asserts a 502 with `code` whose message contains every one of `mentions`.
fn assert_bad_gateway(result: Result<RequestResponse, ClientError>, code: &str, mentions: &[&str]) {
    let Err(ClientError::Refused {
        status,
        code: found,
        message,
        ..
    }) = result
    else {
        panic!("expected 502 {code}, got {result:?}")
    };
    assert_eq!((status, found.as_str()), (502, code), "{message}");
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
    let client = server.provider_client();
    let item = ItemId::new(&ITEM).unwrap();
    client
        .publish(server.token.expose(), &item, 1, DATA, Policy::NONE)
        .await
        .unwrap();
    let (mut c, rc) = w.registered();
    let issuer_id = &w.pki.issuer.id;
    let named = issuer_id.as_str();

    // Failures first: nothing is recorded, so the data stays closed to the card.
    let ch = Challenge([1; 16]);
    let unknown = PartyId::new("issuer-9").unwrap();
    assert_refused(
        request(&client, &w, &rc, ch, &unknown).await,
        422,
        "unknown_issuer",
    );
    issuer.answer(Answer::Refuse);
    assert_bad_gateway(
        request(&client, &w, &rc, ch, issuer_id).await,
        "issuer_refused",
        &[named, "409", "quota_exceeded", "quota"],
    );
    issuer.answer(Answer::SignAs(Box::new(issuer_2.clone())));
    assert_bad_gateway(
        request(&client, &w, &rc, Challenge([2; 16]), issuer_id).await,
        "issuer_refused",
        &[named, "issuer-2"],
    );
    issuer.answer(Answer::OtherSar);
    assert_bad_gateway(
        request(&client, &w, &rc, Challenge([3; 16]), issuer_id).await,
        "issuer_refused",
        &["SAR just signed"],
    );
    issuer.answer(Answer::Garbage);
    assert_bad_gateway(
        request(&client, &w, &rc, Challenge([4; 16]), issuer_id).await,
        "issuer_refused",
        &[named],
    );
    assert_bad_gateway(
        request(&client, &w, &rc, Challenge([5; 16]), &issuer_2.id).await,
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
        request(&client, &w, &rc, Challenge([6; 16]), issuer_id).await,
        "issuer_refused",
        &["revoked"],
    );
    server.app.provider.set_crls(Vec::new());
    assert_refused(
        client.data(&item, &w.card_id, None).await,
        403,
        "card_not_authorized",
    );

    // The issuer grants: the SA is over our SAR, and the card accepts it.
    let ch = Challenge(c.get_challenge().unwrap());
    let answer = request(&client, &w, &rc, ch, issuer_id).await.unwrap();
    assert_eq!(answer.not_after, TestPki::NOW.0 + 600);
    let claimed: Sar = answer.sar_object().unwrap().body_unverified().unwrap();
    assert_eq!(claimed.requester_role, PartyRole::Provider);
    assert_eq!(claimed.requester, w.pki.provider.id);
    let served = client.data(&item, &w.card_id, Some(1)).await.unwrap();
    assert_eq!(served.data_bytes().unwrap(), DATA);
    let receipt = c
        .store(&answer.sa_object().unwrap(), None, DATA)
        .expect("the card accepts STO-2");
    let recorded = client
        .receipt(&receipt, &rc, &w.pki.issuer.cert)
        .await
        .unwrap();
    assert!(recorded.newly_recorded);

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
