//! REG-3 end to end: a revoked or expired IRC or DPR is refused by every verifier — the
//! servers (after they fetch the registrars' CRLs, or at their clock) and the card (after the
//! terminal hands it the new CRL). On SQLite; the servers' own suites cover PostgreSQL.

use std::sync::Arc;

use deployment::{Deployment, DeploymentConfig};
use e2e::{Catalog, Hosted};
use party_api::issuer::PersonaliseRequest;
use party_api::registrar::RegistrarClient;
use party_api::HttpClient;
use protocol::{Operation, UserInfo};
use server_kit::ManualClock;
use terminal::flows::{self, Certification, Parties, StoringOrder, StoringPath};
use terminal::CardClient;

const PIN: &str = "2468";

struct Place {
    _dir: tempfile::TempDir,
    dep: Deployment,
    parties: Parties,
    catalog: Catalog,
    card: CardClient<Hosted>,
}

async fn place(clock: Option<ManualClock>) -> Place {
    place_with(clock, |_| {}).await
}

async fn place_with(
    clock: Option<ManualClock>,
    tweak: impl FnOnce(&mut DeploymentConfig),
) -> Place {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DeploymentConfig::new(dir.path().join("d"));
    if let Some(clock) = clock {
        config.clock = Arc::new(clock);
    }
    tweak(&mut config);
    let dep = Deployment::start(config).await.unwrap();
    let parties = e2e::parties(&dep).unwrap();
    let catalog = e2e::publish_catalog(&dep).await.unwrap();
    e2e::delegate(&dep).await.unwrap();
    let mut card = CardClient::new(Hosted::create(&dep.dir.join("cards/alice")).unwrap());
    flows::personalise(
        &mut card,
        &parties.issuer,
        &dep.issuer.operator_token,
        &PersonaliseRequest {
            pin: PIN.into(),
            pin_try_limit: None,
            capacity: Some(4096),
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let user = UserInfo::new("alice", "Alice", "").unwrap();
    flows::register(&mut card, &parties.issuer, PIN, &user, &mut |_| {})
        .await
        .unwrap();
    Place {
        _dir: dir,
        dep,
        parties,
        catalog,
        card,
    }
}

fn store(path: StoringPath, item: &protocol::ItemId) -> StoringOrder {
    StoringOrder {
        operation: Operation::Store,
        path,
        item: item.clone(),
        version: None,
        certification: Certification::None,
        pin: PIN.into(),
    }
}

async fn refresh_everyone(p: &Place) {
    p.parties
        .issuer
        .refresh_crls(&p.dep.issuer.operator_token)
        .await
        .unwrap();
    // The provider also follows the issuer's own CRL of RCs; once the issuer's IRC is revoked
    // that one cannot be taken (502 issuer_refused) while the registrars' CRLs are.
    match p
        .parties
        .provider
        .refresh_crls(&p.dep.provider.operator_token)
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("issuer_refused") => {}
        Err(e) => panic!("the provider's CRL refresh: {e}"),
    }
}

async fn refused_code(p: &mut Place, path: StoringPath) -> String {
    let item = p.catalog.coupon.clone();
    let err = flows::store_or_delete(&mut p.card, &p.parties, &store(path, &item), &mut |_| {})
        .await
        .expect_err("a store after the revocation must be refused");
    err.party_code()
        .unwrap_or_else(|| panic!("refused by a party, not: {err}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_dpr_is_refused_by_issuer_and_card() {
    let mut p = place(None).await;
    // An SA obtained before the revocation, to show the card later.
    let before = e2e::obtain(&mut p.card, &p.parties, &p.catalog.ticket, PIN)
        .await
        .unwrap();

    let registrar = RegistrarClient::new(HttpClient::new(&p.dep.data_registrar.url).unwrap());
    registrar
        .revoke(
            &p.dep.data_registrar.operator_token,
            p.dep.dpr.serial(),
            "key_compromise",
        )
        .await
        .unwrap();
    refresh_everyone(&p).await;

    // STO-1: the issuer refuses the SA the revoked provider signs.
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaIssuer).await,
        "provider_refused"
    );
    // STO-2: the issuer refuses the revoked provider's party request.
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaProvider).await,
        "issuer_refused"
    );
    // STO-3: the provider's delegation is pinned to its revoked DPR; a new one is refused too.
    let fresh_delegation = e2e::delegate(&p.dep).await;
    assert!(fresh_delegation.is_err(), "{fresh_delegation:?}");

    // The card, given the new CRL, refuses the SA signed before.
    let crl = registrar.current_crl().await.unwrap();
    p.card.load_crl(&crl).unwrap();
    p.card.verify_pin(PIN).unwrap();
    let refused = p.card.store(&before.sa, None, &before.data);
    let status = refused.expect_err("the card must refuse an SA by a revoked DPR");
    assert!(status.status().is_some(), "{status}");
    p.dep.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_irc_is_refused_by_provider_and_card() {
    let mut p = place(None).await;
    let before = e2e::obtain(&mut p.card, &p.parties, &p.catalog.ticket, PIN)
        .await
        .unwrap();
    let registrar = RegistrarClient::new(HttpClient::new(&p.dep.issuer_registrar.url).unwrap());
    registrar
        .revoke(
            &p.dep.issuer_registrar.operator_token,
            p.dep.irc.serial(),
            "key_compromise",
        )
        .await
        .unwrap();
    refresh_everyone(&p).await;

    // The issuer learns its own IRC is revoked and stops signing; the provider refuses it.
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaIssuer).await,
        "issuer_revoked"
    );
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaProvider).await,
        "issuer_refused"
    );

    let crl = registrar.current_crl().await.unwrap();
    p.card.load_crl(&crl).unwrap();
    p.card.verify_pin(PIN).unwrap();
    let refused = p.card.store(&before.sa, None, &before.data);
    assert!(refused.expect_err("revoked IRC").status().is_some());
    p.dep.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_ircs_and_dprs_are_refused() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = ManualClock::new(pki::UnixTime(now));
    let mut p = place(Some(clock.clone())).await;
    // Everything works today…
    let item = p.catalog.ticket.clone();
    flows::store_or_delete(
        &mut p.card,
        &p.parties,
        &store(StoringPath::ViaIssuer, &item),
        &mut |_| {},
    )
    .await
    .unwrap();
    let sar = e2e::obtain(&mut p.card, &p.parties, &p.catalog.points, PIN)
        .await
        .unwrap()
        .sar;
    // …and nothing once the IRC and DPR (three years) have expired.
    clock.set(pki::UnixTime(
        p.dep.irc.not_after().0.max(p.dep.dpr.not_after().0) + 1,
    ));
    // The RC ends with the IRC at the latest, so the issuer refuses the card first.
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaIssuer).await,
        "registration_expired"
    );
    // On STO-2 the issuer refuses the provider's request signed under its expired DPR.
    let err = flows::store_or_delete(
        &mut p.card,
        &p.parties,
        &store(StoringPath::ViaProvider, &p.catalog.coupon),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(err.party_code(), Some("issuer_refused"), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("certificate of provider-1") && said.contains("expired"),
        "{said}"
    );
    // The provider refuses a party request signed under the issuer's expired IRC.
    let signer = e2e::issuer_signer(&p.dep).unwrap();
    let refused = p
        .parties
        .provider
        .grant(&signer, pki::UnixTime(p.dep.irc.not_after().0 + 1), &sar)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("unauthenticated"), "{refused}");
    let said = refused.to_string();
    assert!(
        said.contains("certificate of issuer-1") && said.contains("expired"),
        "{said}"
    );
    p.dep.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_rc_is_refused_by_issuer_and_provider() {
    let mut p = place(None).await;
    let item = p.catalog.ticket.clone();
    let stored = flows::store_or_delete(
        &mut p.card,
        &p.parties,
        &store(StoringPath::ViaIssuer, &item),
        &mut |_| {},
    )
    .await
    .unwrap();
    let card_id = stored.sdi.card_id;
    // Obtained before the revocation: its receipt will be handed in after it.
    let before = e2e::obtain(&mut p.card, &p.parties, &p.catalog.coupon, PIN)
        .await
        .unwrap();
    p.parties
        .issuer
        .revoke_card(&p.dep.issuer.operator_token, &card_id, "key_compromise")
        .await
        .unwrap();
    refresh_everyone(&p).await;
    // The card does not know of the revocation and stores; the provider no longer takes
    // receipts under the revoked RC.
    let receipt = p.card.store(&before.sa, None, &before.data).unwrap();
    let identity = flows::identity(&mut p.card).unwrap();
    let at_provider = p
        .parties
        .provider
        .receipt(&receipt, &identity.rc, &identity.irc)
        .await;
    assert_eq!(at_provider.unwrap_err().code(), Some("untrusted_signer"));
    // And no party authorizes anything more for the card.
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaIssuer).await,
        "registration_revoked"
    );
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaProvider).await,
        "issuer_refused"
    );
    p.dep.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_rc_is_refused() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = ManualClock::new(pki::UnixTime(now));
    let mut p = place_with(Some(clock.clone()), |c| {
        c.issuer_settings.rc_validity_s = 24 * 60 * 60;
    })
    .await;
    let identity = flows::identity(&mut p.card).unwrap();
    // The RC ends within a day; the IRC and DPR have years left.
    clock.set(pki::UnixTime(identity.rc.not_after().0 + 1));
    assert!(p.dep.irc.not_after() > identity.rc.not_after());
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaIssuer).await,
        "registration_expired"
    );
    assert_eq!(
        refused_code(&mut p, StoringPath::ViaProvider).await,
        "issuer_refused"
    );
    p.dep.stop().await.unwrap();
}
