//! The issuer following real registrars' CRLs over HTTP (REG-3): a registrar pair on port 0
//! certifies the issuer (IRC) and two providers (DPRs); the issuer is configured with their
//! URLs. A DPR revoked at the Data Registrar is refused (grant, party requests, delegations)
//! once `POST /v1/crls/refresh` has fetched it, or once the background refresh has; an IRC
//! revoked at the Issuer Registrar makes the issuer refuse to sign (503 `issuer_revoked`) and
//! keep serving reads; a registrar down at start does not stop the issuer; without registrar
//! URLs a refresh is 409.

use std::sync::Arc;
use std::time::Duration;

use party_api::issuer::{CrlsResponse, DelegationRequest};
use party_api::registrar::RegistrarClient;
use party_api::{ClientError, HttpClient};
use pki::{CardId, Certificate, PartyId};
use protocol::{Challenge, Operation, SignedObject};
use registrar::RegistrarRole;
use server_kit::testing::{PlaceForTests, ServerForTests};
use server_kit::ManualClock;
use testkit::test_pki::{TestParty, TestPki};

use crate::support::*;

/// One registrar on port 0 with its operator.
struct Registrar {
    place: PlaceForTests,
    app: registrar::App,
    token: String,
    running: ServerForTests,
    client: RegistrarClient,
    url: String,
}

impl Registrar {
    async fn start(backend: Backend, role: RegistrarRole, party: &str) -> Option<Registrar> {
        let label = format!("issuer_{}", party.replace('-', "_"));
        let place = PlaceForTests::new(backend, &label, "registrar.db").await?;
        let clock = ManualClock::new(NOW);
        let mut config = registrar::RegistrarConfig::new(
            role,
            PartyId::new(party).unwrap(),
            place.dir.path().to_path_buf(),
            place.db_url.clone(),
            "127.0.0.1:0".parse().unwrap(),
        );
        config.clock = Arc::new(clock);
        let app = registrar::open(&config).await.unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(party.len() as u64);
        let token = app.db.add_operator("rita", NOW, &mut rng).await.unwrap();
        let running = ServerForTests::serve(registrar::router(&app)).await;
        let url = format!("http://{}", running.addr);
        Some(Registrar {
            place,
            app,
            token: token.expose().to_string(),
            running,
            client: RegistrarClient::new(HttpClient::new(&url).unwrap()),
            url,
        })
    }

    fn root(&self) -> Certificate {
        self.app.registrar.root().clone()
    }

    /// `party` re-certified by this registrar (same ID and key).
    async fn certify(&self, party: &TestParty) -> TestParty {
        let issued = self
            .client
            .issue(&self.token, &party.id, &party.public_key(), None)
            .await
            .unwrap();
        TestParty {
            id: party.id.clone(),
            key: party.key.clone(),
            cert: Certificate::from_der(&hex::decode(&issued.certificate).unwrap()).unwrap(),
        }
    }

    async fn revoke(&self, certificate: &Certificate) {
        let revoked = self
            .client
            .revoke(&self.token, certificate.serial(), "key_compromise")
            .await
            .unwrap();
        assert!(revoked.newly_revoked);
    }

    async fn stop(self) {
        self.running.stop().await;
        self.app.db.close().await;
        self.place.finish().await;
    }
}

/// The registrar pair and the test PKI as they certified it: the registrars' roots, the
/// issuer's IRC and the providers' DPRs are theirs (keys and IDs testkit's).
struct Registrars {
    ir: Registrar,
    dr: Registrar,
    pki: TestPki,
}

impl Registrars {
    async fn start(backend: Backend, seed: u64) -> Option<Registrars> {
        let ir = Registrar::start(backend, RegistrarRole::IssuerRegistrar, "ir-crl").await?;
        let dr = Registrar::start(backend, RegistrarRole::DataRegistrar, "dr-crl").await?;
        let mut pki = TestPki::new(seed);
        pki.issuer_registrar.cert = ir.root();
        pki.data_registrar.cert = dr.root();
        pki.issuer = ir.certify(&pki.issuer).await;
        pki.provider = dr.certify(&pki.provider).await;
        pki.provider_2 = dr.certify(&pki.provider_2).await;
        Some(Registrars { ir, dr, pki })
    }

    /// An issuer following both registrars (refreshing every `every`).
    async fn issuer(&self, place: &Place, operator: &str, every: Duration) -> Server {
        let (ir, dr) = (self.ir.url.clone(), self.dr.url.clone());
        Server::start_with(place, &self.pki, operator, move |config| {
            config.issuer_registrar_url = Some(ir);
            config.data_registrar_url = Some(format!("{dr}/"));
            config.crl_refresh_every = every;
        })
        .await
    }

    async fn stop(self) {
        self.ir.stop().await;
        self.dr.stop().await;
    }
}

/// Longer than any test: the background refresh stays out of the way.
const RARELY: Duration = Duration::from_secs(3600);

/// The summary of `registrar`'s CRL in `crls`.
fn crl_of<'a>(crls: &'a CrlsResponse, registrar: &str) -> &'a party_api::issuer::CrlSummary {
    crls.crls
        .iter()
        .find(|c| c.issuer == registrar)
        .unwrap_or_else(|| panic!("no CRL of {registrar} in {crls:?}"))
}

fn delegation_for(provider: &TestParty) -> DelegationRequest {
    DelegationRequest {
        provider: provider.id.to_string(),
        provider_certificate: hex::encode(provider.cert.der()),
        operations: vec!["store".into()],
        item_prefix: String::new(),
        max_item_size: 100,
        card_id: None,
        not_after: None,
    }
}

/// `owner`'s SAR for an item on a card this issuer does not know (the SAR's own checks come
/// first, so what a grant answers shows whether the issuer still trusts the SAR's signer).
fn sar_for_unknown_card(owner: &TestParty) -> SignedObject {
    let item = sdi(
        CardId([7; 16]),
        Operation::Store,
        b"item",
        b"data",
        &owner.id,
    );
    // Only the RC's digest goes into the SAR: any certificate does for an unknown card.
    sar_of(owner, &owner.key, &item, Challenge([1; 16]), &owner.cert)
}

fn assert_refused_naming<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    status: u16,
    code: &str,
    words: &[&str],
) {
    let message = match &result {
        Err(ClientError::Refused { message, .. }) => message.clone(),
        other => panic!("expected {status} {code}, got {other:?}"),
    };
    assert_refused(result, status, code);
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
}

async fn revoked_dpr(backend: Backend) {
    let Some(registrars) = Registrars::start(backend, 81).await else {
        return;
    };
    let place = Place::new(backend, "issuer_registrar_crls").await.unwrap();
    let server = registrars.issuer(&place, "olga", RARELY).await;
    let pki = &registrars.pki;
    let (p1, p2) = (&pki.provider, &pki.provider_2);
    server.allow(p1.id.as_str(), 1000).await;
    let token = server.token.expose();

    // At start: both registrars' first CRLs, empty, fetched from their URLs.
    let held = server.client.crls().await.unwrap();
    assert!(!held.irc_revoked);
    assert_eq!(held.crls.len(), 2, "{held:?}");
    for (registrar, url) in [
        ("ir-crl", &registrars.ir.url),
        ("dr-crl", &registrars.dr.url),
    ] {
        let crl = crl_of(&held, registrar);
        assert_eq!((crl.number, crl.revoked), (1, 0));
        assert_eq!(&crl.source, url);
        assert!(crl.next_update > crl.this_update);
    }

    // provider-1 is trusted: its SAR verifies (then the card is unknown), whoever passes it
    // on (then the caller is not its requester), and a delegation to it is signed.
    let sar = sar_for_unknown_card(p1);
    assert_refused(grant_as(&server, p1, &sar).await, 404, "unknown_card");
    assert_refused(
        grant_as(&server, p2, &sar).await,
        403,
        "caller_not_requester",
    );
    server
        .client
        .delegate(token, &delegation_for(p1))
        .await
        .unwrap();

    // The Data Registrar revokes provider-1's DPR; the operator refreshes right away.
    registrars.dr.revoke(&p1.cert).await;
    let refreshed = server.client.refresh_crls(token).await.unwrap();
    let dr_crl = crl_of(&refreshed, "dr-crl");
    assert_eq!((dr_crl.number, dr_crl.revoked), (2, 1));
    assert_eq!(crl_of(&refreshed, "ir-crl").number, 1);
    assert!(!refreshed.irc_revoked);
    assert_eq!(server.client.crls().await.unwrap(), refreshed);

    // Its party requests are refused before anything else...
    assert_refused_naming(
        grant_as(&server, p1, &sar).await,
        401,
        "unauthenticated",
        &["revoked"],
    );
    // ...its SAR, whoever passes it on...
    assert_refused_naming(
        grant_as(&server, p2, &sar).await,
        422,
        "untrusted_signer",
        &["revoked", "provider-1"],
    );
    // ...and a delegation for its DPR.
    assert_refused_naming(
        server.client.delegate(token, &delegation_for(p1)).await,
        422,
        "untrusted_signer",
        &["revoked"],
    );
    // provider-2 is still trusted.
    let sar_2 = sar_for_unknown_card(p2);
    assert_refused(grant_as(&server, p2, &sar_2).await, 404, "unknown_card");

    // Refreshing again changes nothing; an older CRL never comes back.
    let again = server.client.refresh_crls(token).await.unwrap();
    assert_eq!(again, refreshed);

    // Only operators refresh.
    let r = server
        .send("POST", "/v1/crls/refresh", &serde_json::json!({}), None)
        .await;
    assert_error(&r, 401, "unauthenticated");
    assert_refused(
        server
            .client
            .refresh_crls("cwo_00000000000000000000000000000000")
            .await,
        401,
        "unauthenticated",
    );

    server.stop().await;
    place.finish().await;
    registrars.stop().await;
}

#[tokio::test]
async fn revoked_dpr_is_refused_after_a_refresh_sqlite() {
    revoked_dpr(Backend::Sqlite).await;
}

#[tokio::test]
async fn revoked_dpr_is_refused_after_a_refresh_postgres() {
    revoked_dpr(Backend::Postgres).await;
}

async fn revoked_irc(backend: Backend) {
    let Some(registrars) = Registrars::start(backend, 82).await else {
        return;
    };
    let place = Place::new(backend, "issuer_revoked_irc").await.unwrap();
    let server = registrars.issuer(&place, "olga", RARELY).await;
    let pki = &registrars.pki;
    let token = server.token.expose();
    server.allow(pki.provider.id.as_str(), 1000).await;

    registrars.ir.revoke(&pki.issuer.cert).await;
    let refreshed = server.client.refresh_crls(token).await.unwrap();
    assert!(refreshed.irc_revoked);
    assert_eq!(crl_of(&refreshed, "ir-crl").revoked, 1);
    let revocation = server.app.issuer.irc_revocation().unwrap();
    assert_eq!(revocation.serial, pki.issuer.cert.serial());
    assert_eq!(revocation.crl_number, 2);

    // Nothing is signed any more: delegations, SAs (STO-2), SARs (STO-1), RCs (REG-2)...
    assert_refused_naming(
        server
            .client
            .delegate(token, &delegation_for(&pki.provider))
            .await,
        503,
        "issuer_revoked",
        &["revoked", "ir-crl"],
    );
    let sar = sar_for_unknown_card(&pki.provider);
    assert_refused(
        grant_as(&server, &pki.provider, &sar).await,
        503,
        "issuer_revoked",
    );
    let item = sdi(
        CardId([7; 16]),
        Operation::Store,
        b"item",
        b"data",
        &pki.provider.id,
    );
    assert_refused(
        server
            .client
            .request(&CardId([7; 16]), &item, &Challenge([1; 16]))
            .await,
        503,
        "issuer_revoked",
    );
    // (Any readable signed object reaches the service, which refuses before reading it.)
    let r = server
        .post(
            &format!("/v1/cards/{}/registration", CardId([7; 16]).to_hex()),
            &serde_json::json!({"registration": hex::encode(sar.to_der())}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "issuer_revoked");
    // ...while reads keep working.
    server.client.identity().await.unwrap();
    assert!(server.client.crls().await.unwrap().irc_revoked);
    server.client.provider(&pki.provider.id).await.unwrap();

    // A second instance started now comes up the same way: serving reads, signing nothing.
    let second = registrars.issuer(&place, "oscar", RARELY).await;
    assert!(second.client.crls().await.unwrap().irc_revoked);
    assert_refused(
        second
            .client
            .delegate(second.token.expose(), &delegation_for(&pki.provider))
            .await,
        503,
        "issuer_revoked",
    );

    second.stop().await;
    server.stop().await;
    place.finish().await;
    registrars.stop().await;
}

#[tokio::test]
async fn revoked_irc_stops_signing_sqlite() {
    revoked_irc(Backend::Sqlite).await;
}

#[tokio::test]
async fn revoked_irc_stops_signing_postgres() {
    revoked_irc(Backend::Postgres).await;
}

/// A loopback URL nobody listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_registrar_down_at_start_does_not_stop_the_issuer() {
    let registrars = Registrars::start(Backend::Sqlite, 83).await.unwrap();
    let place = Place::new(Backend::Sqlite, "issuer_registrar_down")
        .await
        .unwrap();
    let ir = registrars.ir.url.clone();
    let dead = dead_url();
    let dead_in_config = dead.clone();
    let server = Server::start_with(&place, &registrars.pki, "olga", move |config| {
        config.issuer_registrar_url = Some(ir);
        config.data_registrar_url = Some(dead_in_config);
        config.crl_refresh_every = RARELY;
    })
    .await;

    // It serves, with the CRL of the registrar that answered.
    let held = server.client.crls().await.unwrap();
    assert_eq!(held.crls.len(), 1, "{held:?}");
    assert_eq!(crl_of(&held, "ir-crl").source, registrars.ir.url);
    let r = server
        .operate("POST", "/v1/cards", &serde_json::json!({"pin": "1234"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // A refresh names the registrar that is down, and still takes the other's news.
    registrars.ir.revoke(&registrars.pki.issuer.cert).await;
    let refused = server.client.refresh_crls(server.token.expose()).await;
    assert_refused_naming(
        refused,
        502,
        "registrar_unreachable",
        &["Data Registrar", "dr-crl", &dead],
    );
    let held = server.client.crls().await.unwrap();
    assert_eq!(crl_of(&held, "ir-crl").number, 2);
    assert!(held.irc_revoked);

    server.stop().await;
    place.finish().await;
    registrars.stop().await;
}

#[tokio::test]
async fn a_registrar_url_that_cannot_be_used_stops_the_start() {
    let place = Place::new(Backend::Sqlite, "issuer_registrar_bad_url")
        .await
        .unwrap();
    let pki = TestPki::new(84);
    let clock = ManualClock::new(NOW);
    let mut config = place.config(&pki, &clock);
    config.data_registrar_url = Some("ftp://registrar.example".into());
    let err = issuer::open(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("Data Registrar URL"), "{err:#}");
    config.data_registrar_url = Some("https://registrar.example".into());
    let err = issuer::open(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("roots"), "{err:#}");
    config.data_registrar_url = None;
    config.registrar_tls_roots_file = Some(place.dir.path().join("absent.pem"));
    config.issuer_registrar_url = Some("https://registrar.example".into());
    let err = issuer::open(&config).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("registrar TLS roots"),
        "{err:#}"
    );
    place.finish().await;
}

#[tokio::test]
async fn without_registrars_a_refresh_is_409() {
    let place = Place::new(Backend::Sqlite, "issuer_no_registrars")
        .await
        .unwrap();
    let pki = TestPki::new(85);
    let crl_path = place.dir.path().join("dr.pem");
    std::fs::write(&crl_path, pki.data_registrar_crl(&[20]).to_pem()).unwrap();
    let server = Server::start_with(&place, &pki, "olga", |config| {
        config.crl_files = vec![crl_path];
    })
    .await;
    assert!(!server.app.crls.is_following());
    assert_refused(
        server.client.refresh_crls(server.token.expose()).await,
        409,
        "no_registrars",
    );
    // The file's CRL is held.
    let held = server.client.crls().await.unwrap();
    assert_eq!(held.crls.len(), 1);
    let crl = &held.crls[0];
    assert_eq!((crl.source.as_str(), crl.revoked), ("file", 1));
    assert_eq!(crl.issuer, pki.data_registrar.id.to_string());
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn the_background_refresh_takes_a_revocation_and_stops_with_the_server() {
    let registrars = Registrars::start(Backend::Sqlite, 86).await.unwrap();
    let place = Place::new(Backend::Sqlite, "issuer_crl_background")
        .await
        .unwrap();
    let server = registrars
        .issuer(&place, "olga", Duration::from_millis(20))
        .await;
    assert!(server.app.crls.is_following());
    let pki = &registrars.pki;
    registrars.dr.revoke(&pki.provider.cert).await;

    // Nobody asks: the periodic refresh brings the revocation (polled, bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = server.client.crls().await.unwrap();
        if crl_of(&held, "dr-crl").number == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation never arrived: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_refused(
        grant_as(
            &server,
            &pki.provider_2,
            &sar_for_unknown_card(&pki.provider),
        )
        .await,
        422,
        "untrusted_signer",
    );

    // The refresh task holds no reference that would outlive the server: once the server
    // and its App are gone, so is the follower, whose drop aborts the task.
    let follower = Arc::downgrade(&server.app.crls);
    server.stop().await;
    assert!(
        follower.upgrade().is_none(),
        "the CRL follower outlived the server"
    );
    place.finish().await;
    registrars.stop().await;
}

#[tokio::test]
async fn stop_ends_the_background_refresh() {
    let registrars = Registrars::start(Backend::Sqlite, 87).await.unwrap();
    let place = Place::new(Backend::Sqlite, "issuer_crl_stop")
        .await
        .unwrap();
    let server = registrars
        .issuer(&place, "olga", Duration::from_millis(20))
        .await;
    assert!(server.app.crls.is_following());
    server.app.crls.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.app.crls.is_following() {
        assert!(std::time::Instant::now() < deadline, "still following");
        tokio::task::yield_now().await;
    }
    // An operator's refresh still works without the background task.
    registrars.dr.revoke(&registrars.pki.provider.cert).await;
    let held = server
        .client
        .refresh_crls(server.token.expose())
        .await
        .unwrap();
    assert_eq!(crl_of(&held, "dr-crl").number, 2);
    server.stop().await;
    place.finish().await;
    registrars.stop().await;
}
