//! The provider against real registrars on port 0 (crates/registrar, in process): the Data
//! Registrar certifies the provider's data for it (SDCI', SPEC STO-5) and an in-process card
//! holding that registrar's root stores the item with it; the provider follows both registrars'
//! CRLs (REG-3). The world's issuer and provider keep their keys but hold an IRC and a DPR from
//! these registrars, and the card trusts these registrars' roots.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use crypto::InsecureSeededRng;
use party_api::provider::{Certifier, CrlsResponse, ProviderClient};
use party_api::registrar::RegistrarClient;
use party_api::{ClientError, HttpClient};
use pki::{Certificate, PartyId, UnixTime};
use protocol::{Challenge, ItemId, Operation, Policy, Purpose, Sar, Sdi, SignedObject};
use provider::ProviderConfig;
use registrar::{RegistrarConfig, RegistrarRole};
use serde_json::json;
use server_kit::testing::ServerForTests;
use server_kit::{Clock, ManualClock, OperatorToken};
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::{TestClient, World};

use crate::support::{assert_refused, issuer_signer, Backend, Place, Server};

const DAY: u64 = 86_400;
const NOW: UnixTime = TestPki::NOW;
const DATA: &[u8] = b"boarding pass: gate 12, seat 3A";
const ISSUER_REGISTRAR: &str = "issuer-registrar";
const DATA_REGISTRAR: &str = "data-registrar";

/// A registrar served on port 0 over its own SQLite file, with operator `alice`.
pub struct Registrar {
    pub app: registrar::App,
    pub running: ServerForTests,
    pub token: OperatorToken,
    pub clock: ManualClock,
    pub client: RegistrarClient,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Registrar {
    /// A registrar of `role` named `id`, its clock (and so its root's start) a day before
    /// [`NOW`], so its root is valid at a test card's time floor.
    pub async fn start(role: RegistrarRole, id: &str) -> Registrar {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(UnixTime(NOW.0 - DAY));
        let mut config = RegistrarConfig::new(
            role,
            PartyId::new(id).unwrap(),
            dir.path().to_path_buf(),
            format!("sqlite:{}", dir.path().join("registrar.db").display()),
            "127.0.0.1:0".parse().unwrap(),
        );
        config.clock = Arc::new(clock.clone());
        let app = registrar::open(&config).await.unwrap();
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(id.len() as u64);
        let token = app
            .db
            .add_operator("alice", clock.now(), &mut rng)
            .await
            .unwrap();
        let running = ServerForTests::serve(registrar::router(&app)).await;
        let url = format!("http://{}", running.addr);
        let client = RegistrarClient::new(HttpClient::new(&url).unwrap());
        Registrar {
            app,
            running,
            token,
            clock,
            client,
            url,
            _dir: dir,
        }
    }

    pub fn root(&self) -> &Certificate {
        self.app.registrar.root()
    }

    /// `party` with the same key, certified by this registrar (IRC or DPR by its role).
    pub async fn certify(&self, party: &TestParty) -> TestParty {
        let issued = self
            .client
            .issue(self.token.expose(), &party.id, &party.public_key(), None)
            .await
            .unwrap();
        TestParty {
            id: party.id.clone(),
            key: party.key.clone(),
            cert: Certificate::from_pem(&issued.pem).unwrap(),
        }
    }

    /// How many SDCI' this registrar signed (its metric).
    pub async fn certified_count(&self) -> u64 {
        let metrics = self.running.get("/metrics").await.text();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("registrar_data_certified_total "))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0)
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.app.db.close().await;
    }
}

/// Both registrars, and a world whose issuer and provider are certified by them (a day before
/// [`NOW`]; both registrars' clocks then at [`NOW`]) and whose card trusts their roots.
pub struct Registrars {
    pub world: World,
    pub issuer_registrar: Registrar,
    pub data_registrar: Registrar,
}

impl Registrars {
    pub async fn start(seed: u64) -> Registrars {
        let mut world = World::new(seed);
        let issuer_registrar =
            Registrar::start(RegistrarRole::IssuerRegistrar, ISSUER_REGISTRAR).await;
        let data_registrar = Registrar::start(RegistrarRole::DataRegistrar, DATA_REGISTRAR).await;
        world.pki.issuer = issuer_registrar.certify(&world.pki.issuer).await;
        world.pki.provider = data_registrar.certify(&world.pki.provider).await;
        // Only the roots' certificates are used from here on (the registrars sign for real).
        world.pki.issuer_registrar.cert = issuer_registrar.root().clone();
        world.pki.data_registrar.cert = data_registrar.root().clone();
        issuer_registrar.clock.advance(DAY);
        data_registrar.clock.advance(DAY);
        Registrars {
            world,
            issuer_registrar,
            data_registrar,
        }
    }

    pub fn data_registrar_id(&self) -> PartyId {
        PartyId::new(DATA_REGISTRAR).unwrap()
    }

    pub async fn stop(self) {
        self.issuer_registrar.stop().await;
        self.data_registrar.stop().await;
    }
}

/// The issuer's SAR (STO-1) for `sdi` on the card with RC `rc`, answering `challenge`.
pub fn issuer_sar(
    issuer: &TestParty,
    sdi: &Sdi,
    challenge: Challenge,
    rc: &Certificate,
) -> SignedObject {
    Sar {
        requester_role: protocol::PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&issuer.key, vec![issuer.cert.der().to_vec()])
}

/// A base URL nothing listens on.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A "data registrar" that answers every certification with `sdci`, unasked and unchecked.
async fn lying_registrar(sdci: &SignedObject) -> ServerForTests {
    let body = json!({"sdci": hex::encode(sdci.to_der())});
    let router = Router::new().route(
        "/v1/certified-data",
        post(move || {
            let body = body.clone();
            async move { (axum::http::StatusCode::CREATED, Json(body)) }
        }),
    );
    ServerForTests::serve(router).await
}

/// The card consents: a challenge, the issuer's SAR, the provider's SA (STO-1 grant).
async fn grant(
    client: &ProviderClient,
    w: &World,
    card: &mut TestClient,
    sdi: &Sdi,
    rc: &Certificate,
) -> SignedObject {
    let challenge = Challenge(card.get_challenge().unwrap());
    let sar = issuer_sar(&w.pki.issuer, sdi, challenge, rc);
    client
        .grant(&issuer_signer(&w.pki.issuer), NOW, &sar)
        .await
        .unwrap()
        .sa_object()
        .unwrap()
}

async fn sdci_prime(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_sdci_prime").await else {
        return;
    };
    let fx = Registrars::start(41).await;
    let w = &fx.world;
    let data_registrar = fx.data_registrar_id();
    let server = Server::start_configured(&place, w, "alice", |config| {
        config.data_registrar = Some((data_registrar.clone(), fx.data_registrar.url.clone()));
    })
    .await;
    let client = server.provider_client();
    let token = server.token.expose().to_string();
    let item = ItemId::new(b"pass-12").unwrap();
    client
        .publish(&token, &item, 1, DATA, Policy::CERTIFIED_DATA_REQUIRED)
        .await
        .unwrap();
    let sdi = w.sdi_with(
        Operation::Store,
        item.as_bytes(),
        1,
        DATA,
        &w.pki.provider.id,
        Policy::CERTIFIED_DATA_REQUIRED,
    );
    let (mut card, rc) = w.registered();

    // Same consent rule as the provider's own SDCI: nothing before the provider consented.
    assert_refused(
        client
            .certified(&item, &w.card_id, &sdi, Certifier::DataRegistrar)
            .await,
        403,
        "card_not_authorized",
    );
    assert_eq!(fx.data_registrar.certified_count().await, 0);

    // The card stores the item (its policy requires certified data) with the SDCI' served.
    let sa = grant(&client, w, &mut card, &sdi, &rc).await;
    let served = client
        .certified(&item, &w.card_id, &sdi, Certifier::DataRegistrar)
        .await
        .unwrap();
    assert_eq!(served.data_bytes().unwrap(), DATA);
    let sdci = served.sdci_object().unwrap();
    assert_eq!(sdci.purpose(), Purpose::RegistrarCertifiedData);
    assert_eq!(fx.data_registrar.certified_count().await, 1);
    card.store(&sa, Some(&sdci), DATA)
        .expect("the card accepts the Data Registrar's SDCI'");

    // Kept per SDI: asked again, the same SDCI', the registrar not asked again; the provider's
    // own SDCI is still there, another object.
    let again = client
        .certified(&item, &w.card_id, &sdi, Certifier::DataRegistrar)
        .await
        .unwrap();
    assert_eq!(again.sdci_object().unwrap(), sdci);
    assert_eq!(fx.data_registrar.certified_count().await, 1);
    let own = client
        .certified(&item, &w.card_id, &sdi, Certifier::Provider)
        .await
        .unwrap()
        .sdci_object()
        .unwrap();
    assert_eq!(own.purpose(), Purpose::CertifiedData);

    // SDI checks as for the provider's SDCI.
    let wrong_size = Sdi {
        size: 3,
        ..sdi.clone()
    };
    assert_refused(
        client
            .certified(&item, &w.card_id, &wrong_size, Certifier::DataRegistrar)
            .await,
        422,
        "sdi_mismatch",
    );

    // A second item the provider consented to, for the refusals (nothing kept for it yet).
    let item_2 = ItemId::new(b"pass-13").unwrap();
    let data_2 = b"boarding pass: gate 13, seat 4C";
    client
        .publish(&token, &item_2, 1, data_2, Policy::CERTIFIED_DATA_REQUIRED)
        .await
        .unwrap();
    let sdi_2 = w.sdi_with(
        Operation::Store,
        item_2.as_bytes(),
        1,
        data_2,
        &w.pki.provider.id,
        Policy::CERTIFIED_DATA_REQUIRED,
    );
    grant(&client, w, &mut card, &sdi_2, &rc).await;

    // The same provider (same database) configured with a registrar that is not running.
    let unreachable = Server::start_configured(&place, w, "bob", |config| {
        config.data_registrar = Some((data_registrar.clone(), dead_url()));
    })
    .await;
    assert_refused(
        unreachable
            .provider_client()
            .certified(&item_2, &w.card_id, &sdi_2, Certifier::DataRegistrar)
            .await,
        502,
        "registrar_unreachable",
    );
    unreachable.stop().await;

    // One that answers with an SDCI' a card would refuse: signed by testkit's Data Registrar
    // (same name, another key), or by the right root over another SDI (item 1's): refused, not
    // kept.
    for (operator, wrong) in [("carolyn", w.sdci_prime(&sdi_2)), ("dave", sdci.clone())] {
        let liar = lying_registrar(&wrong).await;
        let lied_to = Server::start_configured(&place, w, operator, |config| {
            config.data_registrar = Some((data_registrar.clone(), format!("http://{}", liar.addr)));
        })
        .await;
        assert_refused(
            lied_to
                .provider_client()
                .certified(&item_2, &w.card_id, &sdi_2, Certifier::DataRegistrar)
                .await,
            502,
            "registrar_refused",
        );
        lied_to.stop().await;
        liar.stop().await;
    }

    // The real registrar refuses a provider whose DPR it revoked: 502 naming it, its status
    // and code.
    fx.data_registrar
        .client
        .revoke(
            fx.data_registrar.token.expose(),
            w.pki.provider.cert.serial(),
            "key_compromise",
        )
        .await
        .unwrap();
    match client
        .certified(&item_2, &w.card_id, &sdi_2, Certifier::DataRegistrar)
        .await
    {
        Err(ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (502, "registrar_refused"),
                "{message}"
            );
            assert!(message.contains(DATA_REGISTRAR), "{message}");
            assert!(message.contains("401 unauthenticated"), "{message}");
        }
        other => panic!("expected 502 registrar_refused, got {other:?}"),
    }
    assert_eq!(fx.data_registrar.certified_count().await, 1);

    server.stop().await;
    fx.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn sdci_prime_sqlite() {
    sdci_prime(Backend::Sqlite).await;
}

#[tokio::test]
async fn sdci_prime_postgres() {
    sdci_prime(Backend::Postgres).await;
}

/// The CRL of `registrar` among those `crls` lists: (number, revoked, source).
fn held_from(crls: &CrlsResponse, registrar: &str) -> Option<(u64, u64, String)> {
    crls.crls
        .iter()
        .find(|crl| crl.issuer == registrar)
        .map(|crl| (crl.number, crl.revoked, crl.source.clone()))
}

async fn crl_refresh(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_crl_refresh").await else {
        return;
    };
    let fx = Registrars::start(42).await;
    let w = &fx.world;
    let (ir, dr) = (&fx.issuer_registrar, &fx.data_registrar);
    let follow = |every: Duration| {
        let (ir_url, dr_url) = (ir.url.clone(), dr.url.clone());
        let data_registrar = fx.data_registrar_id();
        move |config: &mut ProviderConfig| {
            config.issuer_registrar_url = Some(ir_url);
            config.data_registrar = Some((data_registrar, dr_url));
            config.crl_refresh_every = every;
        }
    };
    // One instance refreshing only on demand (within the test), one every 20 ms: same database.
    let server =
        Server::start_configured(&place, w, "alice", follow(Duration::from_secs(3600))).await;
    let eager = Server::start_configured(&place, w, "bob", follow(Duration::from_millis(20))).await;
    assert!(server.app.crls.is_following());
    let client = server.provider_client();
    let token = server.token.expose().to_string();

    // At start: each registrar's current CRL, revoking nothing.
    let at_start = client.crls().await.unwrap();
    assert_eq!(at_start.crls.len(), 2, "{at_start:?}");
    let (number, revoked, source) = held_from(&at_start, ISSUER_REGISTRAR).unwrap();
    assert_eq!((revoked, source.as_str()), (0, ir.url.as_str()));
    assert_eq!(held_from(&at_start, DATA_REGISTRAR).unwrap().2, dr.url);

    // Before the revocation: the issuer's SAR is granted, the card's receipt under its RC
    // recorded, and its delegation lets the provider authorize alone.
    let (mut card, rc) = w.registered();
    let publish = |item: &'static [u8], data: &'static [u8]| {
        let client = client.clone();
        let token = token.clone();
        async move {
            let item = ItemId::new(item).unwrap();
            client
                .publish(&token, &item, 1, data, Policy::NONE)
                .await
                .unwrap();
            w.sdi(Operation::Store, item.as_bytes(), 1, data)
        }
    };
    let sdi_a = publish(b"\xA0item-a", b"item a").await;
    let sdi_b = publish(b"\xA0item-b", b"item b").await;
    let sdi_c = publish(b"\xA0item-c", b"item c").await;
    let sa = grant(&client, w, &mut card, &sdi_a, &rc).await;
    let receipt_a = card.store(&sa, None, b"item a").unwrap();
    let recorded = client
        .receipt(&receipt_a, &rc, &w.pki.issuer.cert)
        .await
        .unwrap();
    assert!(recorded.newly_recorded);
    let sa = grant(&client, w, &mut card, &sdi_b, &rc).await;
    let receipt_b = card.store(&sa, None, b"item b").unwrap();
    let delegation = w.delegation(&w.pki.provider, &[0xA0], 4096);
    client
        .alone(&sdi_c, &Challenge([1; 16]), Some(&delegation))
        .await
        .unwrap();
    let sar_c = issuer_sar(&w.pki.issuer, &sdi_c, Challenge([2; 16]), &rc);

    // The Issuer Registrar revokes the issuer's IRC; the provider fetches its CRL now.
    ir.client
        .revoke(
            ir.token.expose(),
            w.pki.issuer.cert.serial(),
            "key_compromise",
        )
        .await
        .unwrap();
    let refreshed = client.refresh_crls(&token).await.unwrap();
    let (newer, revoked, _) = held_from(&refreshed, ISSUER_REGISTRAR).unwrap();
    assert!(newer > number, "{refreshed:?}");
    assert_eq!(revoked, 1);
    assert_eq!(client.crls().await.unwrap(), refreshed);

    // That issuer is refused: its party request (so its SAR) at grant, its delegation, and a
    // receipt under an RC it signed.
    match client
        .grant(&issuer_signer(&w.pki.issuer), NOW, &sar_c)
        .await
    {
        Err(ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthenticated"),
                "{message}"
            );
            assert!(message.contains("revoked"), "{message}");
        }
        other => panic!("expected 401 unauthenticated, got {other:?}"),
    }
    assert_refused(
        client
            .alone(&sdi_c, &Challenge([3; 16]), Some(&delegation))
            .await,
        422,
        "untrusted_signer",
    );
    assert_refused(
        client.receipt(&receipt_b, &rc, &w.pki.issuer.cert).await,
        422,
        "untrusted_signer",
    );

    // The other instance took the new CRL by itself.
    let eager_client = eager.provider_client();
    let mut waited = 0;
    loop {
        let held = eager_client.crls().await.unwrap();
        if held_from(&held, ISSUER_REGISTRAR).unwrap().1 == 1 {
            break;
        }
        assert!(waited < 10_000, "no refresh within 10 s: {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 20;
    }
    assert_refused(
        eager_client
            .alone(&sdi_c, &Challenge([4; 16]), Some(&delegation))
            .await,
        422,
        "untrusted_signer",
    );
    eager.app.crls.stop();
    assert!(!eager.app.crls.is_following());

    // Operator only; no registrars; a registrar that is not running (the provider starts all
    // the same, with the other's CRL).
    let anonymous = ProviderClient::new(server.client.clone());
    assert_refused(
        anonymous.refresh_crls("cwo_nope").await,
        401,
        "unauthenticated",
    );
    let alone = Server::start_with_operator(&place, w, "carolyn").await;
    assert_refused(
        alone
            .provider_client()
            .refresh_crls(alone.token.expose())
            .await,
        409,
        "no_registrars",
    );
    assert_eq!(alone.provider_client().crls().await.unwrap().crls, []);
    alone.stop().await;
    let dead = dead_url();
    let cut_off = Server::start_configured(&place, w, "dave", |config| {
        config.issuer_registrar_url = Some(dead);
        config.data_registrar = Some((fx.data_registrar_id(), dr.url.clone()));
    })
    .await;
    let held = cut_off.provider_client().crls().await.unwrap();
    assert_eq!(held.crls.len(), 1, "{held:?}");
    assert!(held_from(&held, DATA_REGISTRAR).is_some());
    match cut_off
        .provider_client()
        .refresh_crls(cut_off.token.expose())
        .await
    {
        Err(ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (502, "registrar_unreachable"),
                "{message}"
            );
            assert!(message.contains(ISSUER_REGISTRAR), "{message}");
        }
        other => panic!("expected 502 registrar_unreachable, got {other:?}"),
    }
    cut_off.stop().await;

    eager.stop().await;
    server.stop().await;
    fx.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn crl_refresh_sqlite() {
    crl_refresh(Backend::Sqlite).await;
}

#[tokio::test]
async fn crl_refresh_postgres() {
    crl_refresh(Backend::Postgres).await;
}
