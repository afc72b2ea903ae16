//! STO-1 through the issuer: `POST /v1/authorizations/request` signs the SAR, forwards it to
//! the item's provider (a stub on port 0 that authenticates the issuer's party request and
//! signs a real SA), verifies the SA and answers both; a real card stores with it. And every
//! way that can fail: no URL (409), the provider unreachable or refusing, an SA the issuer
//! does not accept (502), URLs the policy refuses (400).

use party_api::issuer::ProviderRequest;
use party_api::ClientError;
use pki::{CardId, PartyId};
use protocol::{Challenge, Operation, Sa, SaBasis, Sdi, SignedObject};
use testkit::world::{TestClient, World};

use crate::support::*;

/// A registered card and an SDI of provider-1 for it, over a fresh challenge.
struct Ready {
    card: TestClient,
    card_id: CardId,
    sdi: Sdi,
    challenge: Challenge,
}

impl Ready {
    async fn new(server: &Server, w: &World, item: &[u8]) -> Ready {
        let (mut card, card_id) = personalised_card(server, w).await;
        register(server, w, &mut card, &card_id).await;
        let sdi = sdi(card_id, Operation::Store, item, b"bee", &w.pki.provider.id);
        let challenge = Challenge(card.get_challenge().unwrap());
        Ready {
            card,
            card_id,
            sdi,
            challenge,
        }
    }

    /// STO-1 through the issuer, with party_api's client.
    async fn request(
        &self,
        server: &Server,
    ) -> Result<party_api::issuer::RequestResponse, ClientError> {
        server
            .client
            .request(&self.card_id, &self.sdi, &self.challenge)
            .await
    }
}

/// Sets provider-1's policy: allowed, with its server at `url`.
async fn policy(server: &Server, provider: &PartyId, url: Option<&str>) -> Result<(), ClientError> {
    let policy = ProviderRequest {
        status: "allowed".into(),
        quota_bytes: 1000,
        url: url.map(str::to_string),
    };
    let set = server
        .client
        .put_provider(server.token.expose(), provider, &policy)
        .await?;
    assert_eq!(set.url.as_deref(), url);
    assert_eq!(server.client.provider(provider).await?, set);
    Ok(())
}

async fn forwarding(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_forwarding").await else {
        return;
    };
    let w = World::new(41);
    let server = Server::start(&place, &w.pki).await;
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    let provider = &w.pki.provider.id;

    // No URL in the policy: nothing to forward to.
    policy(&server, provider, None).await.unwrap();
    let mut r = Ready::new(&server, &w, b"item-b").await;
    let refused = r.request(&server).await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(409), Some("provider_unreachable"))
    );
    assert!(refused.to_string().contains("url"), "{refused}");

    // With the stub's URL: SAR and SA, and the card stores with the SA.
    policy(&server, provider, Some(&stub.url)).await.unwrap();
    let answer = r.request(&server).await.unwrap();
    let (sar, sa) = (answer.sar_object().unwrap(), answer.sa_object().unwrap());
    let body: Sa = sa.body_unverified().unwrap();
    assert_eq!(body.basis, SaBasis::Request(sar));
    assert_eq!(body.grantor, *provider);
    assert_eq!(answer.not_after, body.not_after.0);
    let receipt = r.card.store(&sa, None, b"bee").unwrap();
    let recorded = server.client.receipt(&receipt, None).await.unwrap();
    assert!(recorded.newly_recorded && recorded.in_sync);
    let contents = server.client.contents(&r.card_id).await.unwrap();
    assert_eq!(contents.items[0].item_id, hex::encode(b"item-b"));

    // The provider refuses: 502 naming it, its status and code.
    stub.answer(Answer::Refuse);
    let r = Ready::new(&server, &w, b"item-c").await;
    let refused = r.request(&server).await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(502), Some("provider_refused"))
    );
    let message = refused.to_string();
    for part in ["provider-1", "422", "sdi_mismatch", "catalog"] {
        assert!(message.contains(part), "{part} not in {message}");
    }

    // An SA signed by another provider than the item's: the issuer does not pass it on.
    stub.answer(Answer::SignAs(Box::new(w.pki.provider_2.clone())));
    let r = Ready::new(&server, &w, b"item-d").await;
    let refused = r.request(&server).await.unwrap_err();
    assert_eq!(refused.code(), Some("provider_refused"), "{refused}");
    assert!(refused.to_string().contains("provider-2"), "{refused}");

    // An SA from a provider outside the Data Registrar's PKI.
    stub.answer(Answer::SignAs(Box::new(w.pki.rogue_provider.clone())));
    let r = Ready::new(&server, &w, b"item-e").await;
    assert_refused(r.request(&server).await, 502, "provider_refused");

    // Nobody listening at the URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    policy(&server, provider, Some(&closed)).await.unwrap();
    let r = Ready::new(&server, &w, b"item-f").await;
    let refused = r.request(&server).await.unwrap_err();
    assert_eq!(refused.code(), Some("provider_unreachable"), "{refused}");
    assert_eq!(refused.status(), Some(502));
    assert!(refused.to_string().contains(&closed), "{refused}");

    // The policy refuses URLs it could never call (https: this issuer has no TLS roots).
    for url in [
        "ftp://x",
        "http://",
        "http://a b",
        "http://x/?q",
        "https://x",
    ] {
        assert_refused(
            policy(&server, provider, Some(url)).await,
            400,
            "invalid_url",
        );
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
