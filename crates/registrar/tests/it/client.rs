//! `party_api::registrar::RegistrarClient` against a real registrar on port 0: every call, the
//! parsed conveniences, and refusals surfacing as `ClientError::Refused` with the server's code.

use party_api::registrar::RegistrarClient;
use party_api::{ClientError, HttpClient};
use pki::{PartyId, Role, UnixTime};
use registrar::RegistrarRole;

use crate::support::{signing_key, Backend, Place, Server, NOW};

pub fn client_of(server: &Server) -> RegistrarClient {
    RegistrarClient::new(HttpClient::new(&format!("http://{}", server.addr)).unwrap())
}

#[tokio::test]
async fn every_call_of_the_client() {
    let place = Place::new(Backend::Sqlite, "client").await.unwrap();
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;
    let client = client_of(&server);
    let token = server.token.expose().to_string();

    let root = client.root().await.unwrap();
    assert_eq!(
        (root.party_id.as_str(), root.role.as_str(), root.serial),
        ("issuer-registrar", "issuer_registrar", 1)
    );
    let anchor = client.root_certificate().await.unwrap();
    assert_eq!(&anchor, server.app.registrar.root());

    let subject = PartyId::new("issuer-a").unwrap();
    let key = signing_key(7).verifying_key();
    let issued = client
        .issue(&token, &subject, &key, Some(UnixTime(NOW.0 + 5000)))
        .await
        .unwrap();
    assert_eq!(
        (issued.serial, issued.subject.as_str(), issued.not_after),
        (2, "issuer-a", NOW.0 + 5000)
    );
    let irc = pki::Certificate::from_pem(&issued.pem).unwrap();
    assert_eq!((irc.role(), irc.public_key()), (Role::Issuer, key));
    client.issue(&token, &subject, &key, None).await.unwrap();
    client
        .issue(&token, &PartyId::new("issuer-b").unwrap(), &key, None)
        .await
        .unwrap();

    assert_eq!(client.certificate(2).await.unwrap(), issued);
    let mine = client.certificates(Some(&subject)).await.unwrap();
    let serials: Vec<u64> = mine.certificates.iter().map(|c| c.serial).collect();
    assert_eq!(serials, [2, 3]);
    assert_eq!(
        client.certificates(None).await.unwrap().certificates.len(),
        3
    );

    let revoked = client.revoke(&token, 2, "superseded").await.unwrap();
    assert!(revoked.newly_revoked);
    let again = client.revoke(&token, 2, "key_compromise").await.unwrap();
    assert_eq!(
        (again.newly_revoked, again.reason.as_str()),
        (false, "superseded")
    );
    let crl_json = client.crl().await.unwrap();
    assert_eq!(crl_json.number, revoked.crl_number);
    let crl = client.current_crl().await.unwrap();
    assert_eq!((crl.number(), crl.revoked()), (crl_json.number, &[2][..]));
    crl.verify_signed_by(&anchor).unwrap();

    // Refusals carry the server's status and code.
    let err = client.certificate(99).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("unknown_certificate"))
    );
    let err = client
        .issue("cwo_wrong", &subject, &key, None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some("unauthenticated"))
    );
    let err = client.revoke(&token, 3, "boredom").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_reason"));
    let err = client
        .issue(&token, &subject, &key, Some(NOW))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_not_after"));

    server.stop().await;
    // Nobody listens any more.
    let err = client.root().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
}

/// A server whose 2xx answers are not what the API promises: the parsed conveniences say so
/// with `InvalidResponse` instead of handing out garbage.
#[tokio::test]
async fn answers_that_do_not_parse_are_invalid_responses() {
    use axum::routing::get;
    use axum::Json;
    use serde_json::json;

    let place = Place::new(Backend::Sqlite, "client_garbage").await.unwrap();
    let server = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    // A real CRL, served under a number it does not carry.
    let mut crl = server.get("/v1/crl").await.json();
    crl["number"] = json!(7);
    let fake = axum::Router::new()
        .route(
            "/v1/root",
            get(|| async {
                Json(
                    json!({"party_id": "x", "role": "data_registrar", "serial": 1,
                    "not_before": 0, "not_after": 1, "certificate": "3000", "pem": ""}),
                )
            }),
        )
        .route("/v1/crl", get(move || async move { Json(crl) }));
    let fake = server_kit::testing::ServerForTests::serve(fake).await;
    let client = RegistrarClient::new(HttpClient::new(&format!("http://{}", fake.addr)).unwrap());
    let err = client.root_certificate().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::InvalidResponse { status: 200, detail, .. } if detail.starts_with("certificate: ")),
        "{err}"
    );
    let err = client.current_crl().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::InvalidResponse { detail, .. } if detail.contains("number 7")),
        "{err}"
    );
    fake.stop().await;
    server.stop().await;
}
