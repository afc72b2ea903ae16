//! End to end over real servers (issue 3): registration (REG-2), every storing path (STO-1…5)
//! and deletion on every path (STO-6) with real card images; after every flow the issuer's and
//! the provider's records equal the card's signed listing and both ledgers verify (STO-7,
//! REC-1); the refusals the issue lists; two issuer instances on one database serving one flow
//! half each. Each on SQLite and, with TEST_POSTGRES_URL, on PostgreSQL.

use deployment::{Databases, Deployment, DeploymentConfig};
use e2e::{Catalog, Hosted};
use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::HttpClient;
use protocol::{Operation, UserInfo};
use server_kit::testing::fresh_postgres_for_tests;
use terminal::flows::{self, Certification, Parties, StoringOrder, StoringPath};
use terminal::CardClient;

const PIN: &str = "2468";

/// A deployment in a temporary directory, on SQLite or on four fresh PostgreSQL databases.
struct Place {
    _dir: tempfile::TempDir,
    deployment: Deployment,
}

async fn deploy(
    postgres: bool,
    label: &str,
    tweak: impl FnOnce(&mut DeploymentConfig),
) -> Option<Place> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DeploymentConfig::new(dir.path().join("deployment"));
    if postgres {
        let mut urls = Vec::new();
        for party in ["ir", "dr", "issuer", "provider"] {
            urls.push(
                fresh_postgres_for_tests(&format!("{label}_{party}"))
                    .await?
                    .url,
            );
        }
        config.databases = Databases::Urls {
            issuer_registrar: urls[0].clone(),
            data_registrar: urls[1].clone(),
            issuer: urls[2].clone(),
            provider: urls[3].clone(),
        };
    }
    tweak(&mut config);
    let deployment = Deployment::start(config).await.unwrap();
    Some(Place {
        _dir: dir,
        deployment,
    })
}

async fn new_card(dep: &Deployment, issuer: &IssuerClient, name: &str) -> CardClient<Hosted> {
    let mut card = CardClient::new(Hosted::create(&dep.dir.join("cards").join(name)).unwrap());
    flows::personalise(
        &mut card,
        issuer,
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
    let user = UserInfo::new(name, name, "").unwrap();
    flows::register(&mut card, issuer, PIN, &user, &mut |_| {})
        .await
        .unwrap();
    card
}

fn order(
    operation: Operation,
    path: StoringPath,
    item: &protocol::ItemId,
    certification: Certification,
) -> StoringOrder {
    StoringOrder {
        operation,
        path,
        item: item.clone(),
        version: None,
        certification,
        pin: PIN.into(),
    }
}

async fn every_path(postgres: bool) {
    let Some(place) = deploy(postgres, "every_path", |_| {}).await else {
        return;
    };
    let dep = &place.deployment;
    let parties = e2e::parties(dep).unwrap();
    let c: Catalog = e2e::publish_catalog(dep).await.unwrap();
    e2e::delegate(dep).await.unwrap();
    let mut card = new_card(dep, &parties.issuer, "alice").await;
    let steps = [
        order(
            Operation::Store,
            StoringPath::ViaIssuer,
            &c.ticket,
            Certification::None,
        ),
        order(
            Operation::Store,
            StoringPath::ViaProvider,
            &c.coupon,
            Certification::None,
        ),
        order(
            Operation::Store,
            StoringPath::ProviderOnly,
            &c.points,
            Certification::None,
        ),
        order(
            Operation::Store,
            StoringPath::ViaIssuer,
            &c.pass,
            Certification::Provider,
        ),
        order(
            Operation::Store,
            StoringPath::ProviderOnly,
            &c.member_id,
            Certification::Registrar,
        ),
        order(
            Operation::Delete,
            StoringPath::ViaProvider,
            &c.coupon,
            Certification::None,
        ),
        order(
            Operation::Delete,
            StoringPath::ProviderOnly,
            &c.points,
            Certification::None,
        ),
        order(
            Operation::Delete,
            StoringPath::ViaIssuer,
            &c.ticket,
            Certification::None,
        ),
    ];
    for (n, step) in steps.iter().enumerate() {
        let outcome = flows::store_or_delete(&mut card, &parties, step, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("step {n} ({:?} {:?}): {e}", step.operation, step.path));
        assert_eq!(outcome.receipt.counter, n as u64 + 1);
        assert!(outcome.issuer_in_sync, "step {n}");
        let cmp = flows::compare(&mut card, &parties).await.unwrap();
        assert!(cmp.in_sync(), "step {n}: {cmp:?}");
        let ledgers = e2e::verify_ledgers(dep, &parties, &mut card).await.unwrap();
        assert!(
            ledgers.starts_with(&format!("issuer {} entries", n + 1)),
            "step {n}: {ledgers}"
        );
    }
    // Two items remain (pass, member-id), both the provider's.
    let cmp = flows::compare(&mut card, &parties).await.unwrap();
    assert_eq!(cmp.listing.contents.items().len(), 2);
    assert_eq!(cmp.provider_items, 2);
    place.deployment.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_on_sqlite() {
    every_path(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_on_postgres() {
    every_path(true).await;
}

async fn refusals(postgres: bool) {
    let Some(place) = deploy(postgres, "refusals", |_| {}).await else {
        return;
    };
    let dep = &place.deployment;
    let parties: Parties = e2e::parties(dep).unwrap();
    let c = e2e::publish_catalog(dep).await.unwrap();
    e2e::delegate(dep).await.unwrap();
    let mut alice = new_card(dep, &parties.issuer, "alice").await;
    let mut bob = new_card(dep, &parties.issuer, "bob").await;
    let results = e2e::refusals(dep, &parties, &mut alice, &mut bob, &c, PIN).await;
    assert!(results.len() >= 7, "{}", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e:#}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for (what, r) in &results {
        let how = r.as_ref().unwrap();
        if what.contains("card and server") {
            assert!(
                how.contains("card: ") && how.contains("server: "),
                "{what}: {how}"
            );
        }
    }
    // After the refusals the records still equal the cards' listings.
    for card in [&mut alice, &mut bob] {
        let cmp = flows::compare(card, &parties).await.unwrap();
        assert!(cmp.in_sync(), "{cmp:?}");
    }
    place.deployment.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_on_sqlite() {
    refusals(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_on_postgres() {
    refusals(true).await;
}

/// Two issuer instances on one database: registration starts on one and finishes on the
/// other; a store is authorized by one and its receipt recorded by the other.
async fn two_issuers(postgres: bool) {
    let Some(place) = deploy(postgres, "two_issuers", |c| c.issuer_instances = 2).await else {
        return;
    };
    let dep = &place.deployment;
    assert_eq!(dep.issuer.urls.len(), 2);
    let first = IssuerClient::new(HttpClient::new(&dep.issuer.urls[0]).unwrap());
    let second = IssuerClient::new(HttpClient::new(&dep.issuer.urls[1]).unwrap());
    let c = e2e::publish_catalog(dep).await.unwrap();

    let mut card = CardClient::new(Hosted::create(&dep.dir.join("cards/carol")).unwrap());
    flows::personalise(
        &mut card,
        &first,
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
    // REG-2 by hand: the challenge from the first instance, the registration at the second.
    let card_id = card.card_id().unwrap();
    card.verify_pin(PIN).unwrap();
    let challenge = first.challenge(&card_id).await.unwrap();
    let challenge: [u8; 16] = hex::decode(&challenge.challenge)
        .unwrap()
        .try_into()
        .unwrap();
    let user = UserInfo::new("carol", "Carol", "").unwrap();
    let registration = card.register(&user, &challenge).unwrap();
    let answer = second.register(&card_id, &registration).await.unwrap();
    let rc = pki::Certificate::from_der(&hex::decode(&answer.rc).unwrap()).unwrap();
    let irc = pki::Certificate::from_der(&hex::decode(&answer.irc).unwrap()).unwrap();
    card.register_complete(&rc, &irc).unwrap();
    // The same registration again, at the first instance: spent.
    let again = first.register(&card_id, &registration).await;
    assert_eq!(again.unwrap_err().code(), Some("challenge_spent"));

    // STO-1 authorized by the second instance, the receipt to the first.
    let via_second = Parties {
        issuer: second.clone(),
        ..e2e::parties(dep).unwrap()
    };
    let outcome = flows::store_or_delete(
        &mut card,
        &via_second,
        &order(
            Operation::Store,
            StoringPath::ViaIssuer,
            &c.ticket,
            Certification::None,
        ),
        &mut |_| {},
    )
    .await
    .unwrap();
    // The flow posted the receipt to the second; the first sees it as already recorded.
    let receipt = {
        let identity = flows::identity(&mut card).unwrap();
        let ledger = first.ledger(&identity.card_id).await.unwrap();
        assert_eq!(ledger.entries.len(), 1);
        outcome.receipt
    };
    assert_eq!(receipt.counter, 1);
    let via_first = Parties {
        issuer: first.clone(),
        ..e2e::parties(dep).unwrap()
    };
    let cmp = flows::compare(&mut card, &via_first).await.unwrap();
    assert!(cmp.in_sync(), "{cmp:?}");
    place.deployment.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuer_instances_on_sqlite() {
    two_issuers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuer_instances_on_postgres() {
    two_issuers(true).await;
}
