//! Several instances on one database (ARCHITECTURE rule 5): they start together, issue and
//! revoke concurrently, and never hand out a serial or a CRL number twice.

use std::collections::BTreeSet;

use pki::{Certificate, Crl};
use registrar::RegistrarRole;
use serde_json::json;

use crate::support::{der_of, public_key_hex, Backend, Place, Server, NOW};

const CERTIFICATES: u64 = 24;

async fn two_instances(backend: Backend) {
    let Some(place) = Place::new(backend, "two_instances").await else {
        return;
    };
    let clock = server_kit::ManualClock::new(NOW);
    // Both start at once on the empty database, sharing the key file: one root results.
    let config = place.config(RegistrarRole::IssuerRegistrar, "issuer-registrar", &clock);
    let key = crate::support::signing_key(7);
    std::fs::write(place.key_file(), key.to_pkcs8_pem().as_bytes()).unwrap();
    let (a, b) = tokio::join!(registrar::open(&config), registrar::open(&config));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.registrar.root(), b.registrar.root());
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(8);
    let token = a.db.add_operator("alice", NOW, &mut rng).await.unwrap();
    let a = Server::serve(a, token.clone(), clock.clone()).await;
    let b = Server::serve(b, token, clock.clone()).await;
    let servers = [&a, &b];
    let endpoints = [(a.addr, a.bearer()), (b.addr, b.bearer())];

    // Issue concurrently through both: serials are unique.
    let issued = futures_join_all((0..CERTIFICATES).map(|i| {
        let (addr, bearer) = endpoints[(i % 2) as usize].clone();
        async move {
            let body =
                json!({"subject": format!("issuer-{i}"), "public_key": public_key_hex(100 + i)});
            let response = post(addr, "/v1/certificates", &body, &bearer).await;
            assert_eq!(response.status, 201, "{}", response.text());
            response.json()["serial"].as_u64().unwrap()
        }
    }))
    .await;
    let serials: BTreeSet<u64> = issued.iter().copied().collect();
    assert_eq!(serials, (2..2 + CERTIFICATES).collect());

    // Revoke every certificate concurrently, each serial through both instances at once.
    let results = futures_join_all(serials.iter().flat_map(|&serial| {
        endpoints
            .clone()
            .into_iter()
            .map(move |(addr, bearer)| async move {
                let body = json!({"serial": serial, "reason": "cessation_of_operation"});
                let response = post(addr, "/v1/revocations", &body, &bearer).await;
                assert!([200, 201].contains(&response.status), "{}", response.text());
                response.json()
            })
    }))
    .await;
    // Exactly one of the two requests per serial revoked it; the CRL numbers of the new
    // revocations are distinct and are exactly 2..=CERTIFICATES+1 (CRL 1 was the empty one).
    let new: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["newly_revoked"] == true)
        .collect();
    assert_eq!(new.len() as u64, CERTIFICATES);
    let numbers: BTreeSet<u64> = new
        .iter()
        .map(|r| r["crl_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (2..=CERTIFICATES + 1).collect());

    // The published CRL (from either instance) lists them all, signed by the shared root.
    let root =
        Certificate::from_der(&der_of(&a.get("/v1/root").await.json(), "certificate")).unwrap();
    for server in servers {
        let crl = server.get("/v1/crl").await.json();
        assert_eq!(crl["number"], CERTIFICATES + 1);
        let crl = Crl::from_der(&der_of(&crl, "crl")).unwrap();
        crl.verify_signed_by(&root).unwrap();
        assert_eq!(
            crl.revoked().iter().copied().collect::<BTreeSet<u64>>(),
            serials
        );
    }

    a.stop().await;
    b.stop().await;
    place.finish().await;
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
    bearer: &str,
) -> server_kit::testing::ResponseForTests {
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer),
    ];
    server_kit::testing::request_for_tests(
        addr,
        "POST",
        path,
        &headers,
        Some(body.to_string().as_bytes()),
    )
    .await
    .unwrap()
}

/// Runs futures concurrently as tasks and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_never_reuse_numbers() {
    two_instances(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_sqlite_file_never_reuse_numbers() {
    two_instances(Backend::Sqlite).await;
}
