//! The HTTP API on port 0: every endpoint, every 4xx, chains and CRLs checked with `pki`.

use pki::{Certificate, Crl, PkiError, Role, UnixTime};
use registrar::RegistrarRole;
use serde_json::json;

use crate::support::{
    assert_error, der_of, public_key_hex, signing_key, Backend, Place, Server, NOW,
};

/// The whole life of an issuer registrar: root, issue, look up, list, revoke (twice), CRL,
/// chain verification before and after, metrics.
async fn issue_look_up_revoke(backend: Backend) {
    let Some(place) = Place::new(backend, "api_flow").await else {
        return;
    };
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;

    let root_json = server.get("/v1/root").await;
    assert_eq!(root_json.status, 200);
    let root_json = root_json.json();
    assert_eq!(root_json["role"], "issuer_registrar");
    assert_eq!(root_json["party_id"], "issuer-registrar");
    assert_eq!(root_json["serial"], 1);
    assert_eq!(root_json["not_before"], NOW.0);
    let root = Certificate::from_der(&der_of(&root_json, "certificate")).unwrap();
    assert_eq!(root.role(), Role::IssuerRegistrar);
    assert_eq!(root_json["pem"], root.to_pem());
    assert_eq!(
        Certificate::from_pem(root_json["pem"].as_str().unwrap()).unwrap(),
        root
    );

    let a = server.issue("issuer-a", 11).await;
    assert_eq!(
        (
            a["serial"].as_u64(),
            a["subject"].as_str(),
            a["role"].as_str()
        ),
        (Some(2), Some("issuer-a"), Some("issuer"))
    );
    assert_eq!(a["not_before"], NOW.0);
    assert_eq!(a["not_after"], NOW.0 + 3 * 365 * 86_400);
    assert_eq!(a["revocation"], serde_json::Value::Null);
    let irc_a = Certificate::from_der(&der_of(&a, "certificate")).unwrap();
    assert_eq!(a["pem"], irc_a.to_pem());
    let verified = pki::verify_chain(
        std::slice::from_ref(&irc_a),
        std::slice::from_ref(&root),
        &[],
        NOW,
        Role::Issuer,
    )
    .unwrap();
    assert_eq!(verified.leaf_subject.as_str(), "issuer-a");
    assert_eq!(verified.leaf_key, signing_key(11).verifying_key());
    assert_eq!(verified.leaf_serial, 2);

    let b = server
        .post(
            "/v1/certificates",
            &json!({"subject": "issuer-b", "public_key": public_key_hex(12), "not_after": NOW.0 + 1000}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(b.status, 201, "{}", b.text());
    let b = b.json();
    assert_eq!(
        (b["serial"].as_u64(), b["not_after"].as_u64()),
        (Some(3), Some(NOW.0 + 1000))
    );
    let irc_b = Certificate::from_der(&der_of(&b, "certificate")).unwrap();
    let a_again = server.issue("issuer-a", 13).await; // a key rotation: same subject, new serial
    assert_eq!(a_again["serial"], 4);

    let got = server.get("/v1/certificates/2").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), a);
    let listed = server.get("/v1/certificates?subject=issuer-a").await.json();
    let serials: Vec<u64> = listed["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, [2, 4]);
    let all = server.get("/v1/certificates").await.json();
    assert_eq!(all["certificates"].as_array().unwrap().len(), 3);
    let none = server.get("/v1/certificates?subject=nobody").await.json();
    assert_eq!(none, json!({"certificates": []}));

    let crl1 = server.get("/v1/crl").await.json();
    assert_eq!(
        (crl1["number"].as_u64(), crl1["this_update"].as_u64()),
        (Some(1), Some(NOW.0))
    );
    assert_eq!(crl1["next_update"], NOW.0 + 7 * 86_400);
    let crl1 = Crl::from_der(&der_of(&crl1, "crl")).unwrap();
    crl1.verify_signed_by(&root).unwrap();
    assert!(crl1.revoked().is_empty());

    server.clock.advance(60);
    let revoked = server
        .post(
            "/v1/revocations",
            &json!({"serial": 2, "reason": "key_compromise"}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(revoked.status, 201, "{}", revoked.text());
    assert_eq!(
        revoked.json(),
        json!({"serial": 2, "reason": "key_compromise", "revoked_at": NOW.0 + 60, "newly_revoked": true, "crl_number": 2})
    );
    server.clock.advance(60);
    let again = server
        .post(
            "/v1/revocations",
            &json!({"serial": 2, "reason": "superseded"}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.json(),
        json!({"serial": 2, "reason": "key_compromise", "revoked_at": NOW.0 + 60, "newly_revoked": false, "crl_number": 2})
    );

    let crl_json = server.get("/v1/crl").await.json();
    assert_eq!(crl_json["number"], 2);
    let crl2 = Crl::from_der(&der_of(&crl_json, "crl")).unwrap();
    assert_eq!(
        Crl::from_pem(crl_json["pem"].as_str().unwrap()).unwrap(),
        crl2
    );
    crl2.verify_signed_by(&root).unwrap();
    assert_eq!(crl2.revoked(), [2]);
    let now = UnixTime(NOW.0 + 120);
    let err = pki::verify_chain(
        &[irc_a],
        std::slice::from_ref(&root),
        std::slice::from_ref(&crl2),
        now,
        Role::Issuer,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::CertificateRevoked {
                serial: 2,
                crl_number: 2,
                ..
            }
        ),
        "{err}"
    );
    pki::verify_chain(
        &[irc_b],
        std::slice::from_ref(&root),
        &[crl2],
        now,
        Role::Issuer,
    )
    .unwrap();

    let a_now = server.get("/v1/certificates/2").await.json();
    assert_eq!(
        a_now["revocation"],
        json!({"reason": "key_compromise", "revoked_at": NOW.0 + 60})
    );

    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("registrar_certificates_issued_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("registrar_revocations_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/certificates/{serial}",status="200"} 2"#),
        "{metrics}"
    );
    let health = server.get("/health").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok", "db": "ok"}))
    );

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn issue_look_up_revoke_on_sqlite() {
    issue_look_up_revoke(Backend::Sqlite).await;
}

#[tokio::test]
async fn issue_look_up_revoke_on_postgres() {
    issue_look_up_revoke(Backend::Postgres).await;
}

#[tokio::test]
async fn data_registrar_issues_dprs() {
    let place = Place::new(Backend::Sqlite, "dpr").await.unwrap();
    let server = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let root = server.get("/v1/root").await.json();
    assert_eq!(root["role"], "data_registrar");
    let root = Certificate::from_der(&der_of(&root, "certificate")).unwrap();
    let dpr = server.issue("provider-1", 21).await;
    assert_eq!(dpr["role"], "provider");
    let dpr = Certificate::from_der(&der_of(&dpr, "certificate")).unwrap();
    pki::verify_chain(
        std::slice::from_ref(&dpr),
        std::slice::from_ref(&root),
        &[],
        NOW,
        Role::Provider,
    )
    .unwrap();
    // A DPR is not an IRC.
    let err = pki::verify_chain(&[dpr], &[root], &[], NOW, Role::Issuer).unwrap_err();
    assert!(matches!(err, PkiError::UnexpectedRole { .. }), "{err}");
    server.stop().await;
}

async fn errors(backend: Backend) {
    let Some(place) = Place::new(backend, "api_errors").await else {
        return;
    };
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;
    let other_place = Place::new(Backend::Sqlite, "other").await.unwrap();
    let other = Server::start(
        &other_place,
        RegistrarRole::IssuerRegistrar,
        "other-registrar",
    )
    .await;
    let good = json!({"subject": "issuer-a", "public_key": public_key_hex(1)});
    let bearer = server.bearer();
    let auth = Some(bearer.as_str());

    // Authentication, on both operator routes.
    for (path, body) in [
        ("/v1/certificates", good.clone()),
        (
            "/v1/revocations",
            json!({"serial": 2, "reason": "unspecified"}),
        ),
    ] {
        assert_error(
            &server.post(path, &body, None).await,
            401,
            "unauthenticated",
        );
        assert_error(
            &server.post(path, &body, Some("Bearer cwo_nope")).await,
            401,
            "unauthenticated",
        );
        assert_error(
            &server
                .post(
                    path,
                    &body,
                    Some(&format!("Token {}", server.token.expose())),
                )
                .await,
            401,
            "unauthenticated",
        );
        // An operator of another registrar is unknown here.
        assert_error(
            &server.post(path, &body, Some(&other.bearer())).await,
            401,
            "unauthenticated",
        );
    }
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(99);
    let gone = server
        .app
        .db
        .add_operator("gone", NOW, &mut rng)
        .await
        .unwrap();
    server.app.db.disable_operator("gone", NOW).await.unwrap();
    assert_error(
        &server
            .post(
                "/v1/certificates",
                &good,
                Some(&format!("Bearer {}", gone.expose())),
            )
            .await,
        403,
        "forbidden",
    );

    // Bodies.
    let bad = |v: serde_json::Value| v;
    for (body, code, names) in [
        (
            bad(json!({"subject": "issuer a", "public_key": public_key_hex(1)})),
            "invalid_subject",
            "subject",
        ),
        (
            bad(json!({"subject": "", "public_key": public_key_hex(1)})),
            "invalid_subject",
            "subject",
        ),
        (
            bad(json!({"subject": "issuer-registrar", "public_key": public_key_hex(1)})),
            "invalid_subject",
            "subject",
        ),
        (
            bad(json!({"subject": "issuer-a", "public_key": "zz"})),
            "invalid_public_key",
            "public_key",
        ),
        (
            bad(json!({"subject": "issuer-a", "public_key": "04abcd"})),
            "invalid_public_key",
            "public_key",
        ),
        (
            bad(json!({"subject": "issuer-a", "public_key": format!("04{}", "11".repeat(64))})),
            "invalid_public_key",
            "public_key",
        ),
        (
            bad(
                json!({"subject": "issuer-a", "public_key": public_key_hex(1), "not_after": NOW.0}),
            ),
            "invalid_not_after",
            "not_after",
        ),
        (
            bad(
                json!({"subject": "issuer-a", "public_key": public_key_hex(1), "not_after": NOW.0 + 21 * 365 * 86_400}),
            ),
            "invalid_not_after",
            "not_after",
        ),
        (
            bad(json!({"public_key": public_key_hex(1)})),
            "invalid_body",
            "subject",
        ),
        (
            bad(json!({"subject": "issuer-a", "public_key": public_key_hex(1), "color": "red"})),
            "invalid_body",
            "color",
        ),
        (
            bad(json!({"subject": 5, "public_key": public_key_hex(1)})),
            "invalid_body",
            "subject",
        ),
    ] {
        let response = server.post("/v1/certificates", &body, auth).await;
        assert_error(&response, 400, code);
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(names), "{code}: {message}");
    }
    assert_error(
        &server
            .post_raw("/v1/certificates", b"{\"subject\":", auth)
            .await,
        400,
        "malformed_json",
    );
    let no_type = server_kit::testing::request_for_tests(
        server.addr,
        "POST",
        "/v1/certificates",
        &[("Authorization", &bearer)],
        Some(good.to_string().as_bytes()),
    )
    .await
    .unwrap();
    assert_error(&no_type, 415, "unsupported_media_type");

    // Look-ups.
    for path in [
        "/v1/certificates/abc",
        "/v1/certificates/0",
        "/v1/certificates/-2",
        "/v1/certificates/99999999999999999999",
    ] {
        assert_error(&server.get(path).await, 400, "invalid_serial");
    }
    assert_error(
        &server.get("/v1/certificates/77").await,
        404,
        "unknown_certificate",
    );
    assert_error(
        &server.get("/v1/certificates?subject=a%20b").await,
        400,
        "invalid_subject",
    );
    assert_error(
        &server.get("/v1/certificates?sort=asc").await,
        400,
        "invalid_query",
    );
    assert_error(&server.get("/v1/nothing").await, 404, "not_found");
    assert_error(
        &server_kit::testing::request_for_tests(server.addr, "DELETE", "/v1/crl", &[], None)
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    );

    // Revocations.
    assert_error(
        &server
            .post(
                "/v1/revocations",
                &json!({"serial": 77, "reason": "unspecified"}),
                auth,
            )
            .await,
        404,
        "unknown_certificate",
    );
    assert_error(
        &server
            .post(
                "/v1/revocations",
                &json!({"serial": 2, "reason": "boredom"}),
                auth,
            )
            .await,
        400,
        "invalid_reason",
    );
    assert_error(
        &server
            .post(
                "/v1/revocations",
                &json!({"serial": "2", "reason": "unspecified"}),
                auth,
            )
            .await,
        400,
        "invalid_body",
    );
    assert_error(
        &server
            .post(
                "/v1/revocations",
                &json!({"serial": -1, "reason": "unspecified"}),
                auth,
            )
            .await,
        400,
        "invalid_body",
    );

    // Nothing above changed anything.
    assert_eq!(
        server.get("/v1/certificates").await.json(),
        json!({"certificates": []})
    );
    assert_eq!(server.get("/v1/crl").await.json()["number"], 1);

    other.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn every_bad_request_gets_its_code_on_sqlite() {
    errors(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_bad_request_gets_its_code_on_postgres() {
    errors(Backend::Postgres).await;
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let place = Place::new(Backend::Sqlite, "openapi").await.unwrap();
    // A data registrar: it serves every route (an issuer registrar's certified-data is 404).
    let server = Server::start(&place, RegistrarRole::DataRegistrar, "data-registrar").await;
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status, 200);
    let doc = response.json();
    assert_eq!(doc, registrar::openapi_document());
    assert_eq!(doc["openapi"], "3.1.0");
    server_kit::testing::assert_openapi_documents_routes(
        &server.running,
        &doc,
        &registrar::routes(),
        |path| path.replace("{serial}", "1"),
        "unknown_certificate",
    )
    .await;
    server.stop().await;
}

/// CRLs are re-signed under the next number once half their validity has passed.
#[tokio::test]
async fn stale_crls_are_resigned() {
    let place = Place::new(Backend::Sqlite, "crl_refresh").await.unwrap();
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;
    server.issue("issuer-a", 1).await;
    server
        .post(
            "/v1/revocations",
            &json!({"serial": 2, "reason": "superseded"}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(server.get("/v1/crl").await.json()["number"], 2);
    server.clock.advance(3 * 86_400);
    assert_eq!(server.get("/v1/crl").await.json()["number"], 2);
    server.clock.advance(86_400);
    let fresh = server.get("/v1/crl").await.json();
    assert_eq!(
        (fresh["number"].as_u64(), fresh["this_update"].as_u64()),
        (Some(3), Some(NOW.0 + 4 * 86_400))
    );
    assert_eq!(
        Crl::from_der(&der_of(&fresh, "crl")).unwrap().revoked(),
        [2]
    );
    assert_eq!(server.get("/v1/crl").await.json()["number"], 3);
    server.stop().await;
}

/// Restarting finds the same root; the database refuses another identity or key.
#[tokio::test]
async fn restart_keeps_the_root_and_refuses_other_identities() {
    let place = Place::new(Backend::Sqlite, "restart").await.unwrap();
    let clock = server_kit::ManualClock::new(NOW);
    let config = place.config(RegistrarRole::IssuerRegistrar, "issuer-registrar", &clock);
    let first = registrar::open(&config).await.unwrap();
    let root = first.registrar.root().clone();
    first.db.close().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(place.key_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    clock.advance(1000);
    let again = registrar::open(&config).await.unwrap();
    assert_eq!(again.registrar.root(), &root);
    again.db.close().await;

    let other_party = place.config(RegistrarRole::IssuerRegistrar, "someone-else", &clock);
    let err = registrar::open(&other_party).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("belongs to issuer_registrar issuer-registrar"),
        "{err:#}"
    );
    let other_role = place.config(RegistrarRole::DataRegistrar, "issuer-registrar", &clock);
    assert!(registrar::open(&other_role).await.is_err());

    let mut other_key = config.clone();
    other_key.root_key_file = Some(place.dir.path().join("another-key.pem"));
    let err = registrar::open(&other_key).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("not for the configured root key"),
        "{err:#}"
    );

    let mut bad_url = config.clone();
    bad_url.db_url = "mysql://x".to_string();
    let err = registrar::open(&bad_url).await.unwrap_err();
    assert!(format!("{err:#}").contains("sqlite:PATH"), "{err:#}");
}

/// `add_operator` (for the CLI) makes a token the server then accepts.
#[tokio::test]
async fn operators_added_offline_are_accepted() {
    let place = Place::new(Backend::Sqlite, "add_operator").await.unwrap();
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;
    let token = registrar::add_operator(&place.db_url, "bob").await.unwrap();
    let response = server
        .post(
            "/v1/certificates",
            &json!({"subject": "issuer-a", "public_key": public_key_hex(5)}),
            Some(&format!("Bearer {}", token.expose())),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let err = registrar::add_operator(&place.db_url, "bob")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    server.stop().await;
}
