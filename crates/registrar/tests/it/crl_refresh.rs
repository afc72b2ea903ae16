//! `server_kit::crl_refresh` against real registrars on port 0: a revocation reaches the CRLs
//! handed to the server; a registrar that answers garbage, an older CRL, a CRL its root did not
//! sign, or nothing at all leaves the last good CRL in force.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use pki::Crl;
use registrar::RegistrarRole;
use serde_json::{json, Value};
use server_kit::testing::ServerForTests;
use server_kit::{fetch_crls_once, spawn_crl_refresh, CrlRefresh, CrlRefreshError, CrlSource};

use crate::support::{Backend, Place, Server};

fn url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

fn source(server: &Server) -> CrlSource {
    CrlSource::new(url(server.addr), server.app.registrar.root().clone())
}

async fn revoke(server: &Server, serial: u64) {
    let response = server
        .post(
            "/v1/revocations",
            &json!({"serial": serial, "reason": "key_compromise"}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
}

fn numbers(crls: &[Crl]) -> Vec<(String, u64)> {
    crls.iter()
        .map(|c| (c.issuer_id().to_string(), c.number()))
        .collect()
}

/// A registrar stand-in at a fixed address whose `GET /v1/crl` answers whatever the test sets.
struct Stand {
    answer: Arc<Mutex<(StatusCode, String)>>,
    running: ServerForTests,
}

impl Stand {
    async fn start() -> Stand {
        let answer = Arc::new(Mutex::new((StatusCode::OK, String::new())));
        let shared = answer.clone();
        let router = axum::Router::new().route(
            "/v1/crl",
            get(move || {
                let (status, body) = shared.lock().unwrap().clone();
                async move {
                    (
                        status,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        );
        Stand {
            answer,
            running: ServerForTests::serve(router).await,
        }
    }

    fn answer(&self, status: StatusCode, body: impl Into<String>) {
        *self.answer.lock().unwrap() = (status, body.into());
    }
}

#[tokio::test]
async fn refresh_follows_revocations_and_keeps_the_last_good_crl() {
    let place = Place::new(Backend::Sqlite, "crl_refresh_data")
        .await
        .unwrap();
    let data = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let other_place = Place::new(Backend::Sqlite, "crl_refresh_issuer")
        .await
        .unwrap();
    let issuer = Server::start(
        &other_place,
        RegistrarRole::IssuerRegistrar,
        "issuer-registrar",
    )
    .await;
    let sources = vec![source(&data), source(&issuer)];

    // At start: both CRLs, strictly.
    let first = fetch_crls_once(&sources).await.unwrap();
    assert_eq!(
        numbers(&first),
        [
            ("data-registrar".to_string(), 1),
            ("issuer-registrar".to_string(), 1)
        ]
    );

    let mut refresh = CrlRefresh::new(sources.clone());
    assert_eq!(refresh.refresh().await.unwrap(), first);
    assert_eq!(refresh.refresh().await, None, "nothing changed");

    // A revocation at the data registrar: the next refresh hands over its new CRL.
    let dpr = data.issue("provider-1", 41).await;
    let serial = dpr["serial"].as_u64().unwrap();
    revoke(&data, serial).await;
    let after = refresh.refresh().await.unwrap();
    assert_eq!(
        numbers(&after),
        [
            ("data-registrar".to_string(), 2),
            ("issuer-registrar".to_string(), 1)
        ]
    );
    assert!(after[0].is_revoked(serial));

    // The issuer registrar goes away: its last good CRL stays.
    issuer.stop().await;
    assert_eq!(refresh.refresh().await, None);
    assert_eq!(refresh.current(), after);
    let err = fetch_crls_once(&sources).await.unwrap_err();
    assert!(
        matches!(&err, CrlRefreshError::Fetch { url, .. } if *url == sources[1].url),
        "{err}"
    );

    data.stop().await;
    place.finish().await;
    other_place.finish().await;
}

#[tokio::test]
async fn garbage_older_and_foreign_crls_are_not_taken() {
    let place = Place::new(Backend::Sqlite, "crl_refresh_garbage")
        .await
        .unwrap();
    let data = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let crl_1: Value = data.get("/v1/crl").await.json();
    data.issue("provider-1", 42).await;
    revoke(&data, 2).await;
    let crl_2: Value = data.get("/v1/crl").await.json();
    let other_place = Place::new(Backend::Sqlite, "crl_refresh_foreign")
        .await
        .unwrap();
    let foreign = Server::start(&other_place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let foreign_crl: Value = foreign.get("/v1/crl").await.json();
    foreign.stop().await;

    // A stand-in for the data registrar, trusted under the real root.
    let stand = Stand::start().await;
    let source = CrlSource::new(url(stand.running.addr), data.app.registrar.root().clone());
    let mut refresh = CrlRefresh::new(vec![source.clone()]);
    stand.answer(StatusCode::OK, crl_2.to_string());
    let taken = refresh.refresh().await.unwrap();
    assert_eq!((taken[0].number(), taken[0].revoked()), (2, &[2][..]));

    let mut not_json = crl_2.clone();
    not_json["crl"] = json!("zz");
    for (status, body) in [
        // An older CRL, properly signed.
        (StatusCode::OK, crl_1.to_string()),
        // Same name, another registrar's key.
        (StatusCode::OK, foreign_crl.to_string()),
        (StatusCode::OK, not_json.to_string()),
        (StatusCode::OK, "<html>gateway</html>".to_string()),
        (StatusCode::OK, json!({"number": 3}).to_string()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": "internal", "request_id": null}).to_string(),
        ),
    ] {
        stand.answer(status, body.clone());
        assert_eq!(refresh.refresh().await, None, "{status} {body}");
        assert_eq!(refresh.current(), taken);
    }
    // fetch_crls_once says why.
    stand.answer(StatusCode::OK, foreign_crl.to_string());
    let err = fetch_crls_once(std::slice::from_ref(&source))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CrlRefreshError::Unverified { number: 1, .. }),
        "{err}"
    );
    // Nobody there at all.
    stand.running.stop().await;
    assert_eq!(refresh.refresh().await, None);
    assert_eq!(refresh.current(), taken);

    data.stop().await;
    place.finish().await;
    other_place.finish().await;
}

async fn next(applied: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<Crl>>) -> Vec<Crl> {
    tokio::time::timeout(Duration::from_secs(30), applied.recv())
        .await
        .expect("the refresh applied nothing within 30 s")
        .expect("the refresh task ended")
}

/// The spawned task: it applies the first set at once, then again only when a registrar
/// publishes a newer CRL (waits are for events; the timeouts only bound a failure).
#[tokio::test]
async fn the_spawned_refresh_applies_every_change() {
    let place = Place::new(Backend::Sqlite, "crl_refresh_task")
        .await
        .unwrap();
    let data = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let (sender, mut applied) = tokio::sync::mpsc::unbounded_channel::<Vec<Crl>>();
    let task = spawn_crl_refresh(
        vec![source(&data)],
        Duration::from_millis(20),
        move |crls| {
            let _ = sender.send(crls);
        },
    );
    let first = next(&mut applied).await;
    assert_eq!(numbers(&first), [("data-registrar".to_string(), 1)]);

    data.issue("provider-1", 43).await;
    revoke(&data, 2).await;
    let second = next(&mut applied).await;
    assert_eq!((second[0].number(), second[0].revoked()), (2, &[2][..]));

    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    data.stop().await;
    place.finish().await;
}
