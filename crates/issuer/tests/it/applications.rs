//! APP-1's application DB: `POST /v1/applications` (operator) and `GET /v1/applications[/{aid}]`
//! through party_api's client and raw HTTP, every refusal with its code. SQLite and PostgreSQL.

use party_api::issuer_download::ApplicationRequest;
use protocol::ItemId;
use serde_json::json;
use testkit::world::World;

use crate::support::*;

pub const AID: &[u8] = b"\xA0\x00\x00\x02\x47\x10\x01";

/// provider-1's application `AID` version `version` with `code`.
pub fn application(w: &World, version: u32, code: &[u8]) -> ApplicationRequest {
    ApplicationRequest {
        aid: hex::encode(AID),
        version,
        provider: w.pki.provider.id.to_string(),
        name: "Transit pass".into(),
        description: Some("Rides on the city's trams".into()),
        code: hex::encode(code),
        policy: None,
    }
}

async fn application_db(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_applications").await else {
        return;
    };
    let w = World::new(61);
    let server = Server::start(&place, &w.pki).await;
    let token = server.token.expose();
    let client = &server.client;
    let aid = ItemId::new(AID).unwrap();

    // The provider needs a policy first.
    assert_refused(
        client
            .add_application(token, &application(&w, 1, b"code-1"))
            .await,
        422,
        "unknown_provider",
    );
    server.allow(w.pki.provider.id.as_str(), 4096).await;

    let added = client
        .add_application(token, &application(&w, 1, b"code-1"))
        .await
        .unwrap();
    assert_eq!(added.aid, hex::encode(AID));
    assert_eq!((added.version, added.size), (1, 6));
    assert_eq!(added.digest_value().unwrap(), crypto::sha256(b"code-1"));
    assert_eq!(added.provider, "provider-1");
    assert_eq!(added.added_at, NOW.0);
    assert_eq!(added.aid_value().unwrap(), aid);
    // The same again: 200, the first one.
    let r = server
        .operate(
            "POST",
            "/v1/applications",
            &serde_json::to_value(application(&w, 1, b"code-1")).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::to_value(&added).unwrap());
    // Other content under the same version: immutable.
    assert_refused(
        client
            .add_application(token, &application(&w, 1, b"code-X"))
            .await,
        409,
        "application_version_exists",
    );
    let mut renamed = application(&w, 1, b"code-1");
    renamed.name = "Other".into();
    assert_refused(
        client.add_application(token, &renamed).await,
        409,
        "application_version_exists",
    );
    let v2 = client
        .add_application(token, &application(&w, 2, b"code-two"))
        .await
        .unwrap();

    // Reads: all, one version, the highest.
    let all = client.applications().await.unwrap().applications;
    assert_eq!(all, vec![added.clone(), v2.clone()]);
    assert_eq!(client.application(&aid, Some(1)).await.unwrap(), added);
    assert_eq!(client.application(&aid, None).await.unwrap(), v2);
    assert_refused(
        client.application(&aid, Some(3)).await,
        404,
        "unknown_application",
    );
    let other = ItemId::new(b"\xA0\x00\x00\x00\x01").unwrap();
    assert_refused(
        client.application(&other, None).await,
        404,
        "unknown_application",
    );
    assert_error(&server.get("/v1/applications/zz").await, 400, "invalid_aid");
    assert_error(
        &server
            .get(&format!("/v1/applications/{}?version=x", hex::encode(AID)))
            .await,
        400,
        "invalid_query",
    );

    // Refusals, each with its code.
    let refused = |code: &'static str, status: u16, request: ApplicationRequest| async move {
        assert_refused(client.add_application(token, &request).await, status, code);
    };
    let mut short = application(&w, 5, b"x");
    short.aid = "a00000".into();
    refused("invalid_aid", 400, short).await;
    let mut long = application(&w, 5, b"x");
    long.aid = "a0".repeat(17);
    refused("invalid_aid", 400, long).await;
    refused("invalid_code", 400, application(&w, 5, b"")).await;
    refused(
        "invalid_code",
        400,
        application(&w, 5, &vec![0u8; 1024 * 1024 + 1]),
    )
    .await;
    let mut not_hex = application(&w, 5, b"x");
    not_hex.code = "xyz".into();
    refused("invalid_code", 400, not_hex).await;
    let mut unknown_bit = application(&w, 5, b"x");
    unknown_bit.policy = Some(1 << 9);
    refused("invalid_policy", 400, unknown_bit).await;
    let mut certified = application(&w, 5, b"x");
    certified.policy = Some(protocol::Policy::CERTIFIED_DATA_REQUIRED.bits());
    refused("invalid_policy", 400, certified).await;
    let mut unnamed = application(&w, 5, b"x");
    unnamed.name = String::new();
    refused("invalid_name", 400, unnamed).await;
    let mut bad_provider = application(&w, 5, b"x");
    bad_provider.provider = "no spaces".into();
    refused("invalid_provider", 400, bad_provider).await;
    let mut blocked_unknown = application(&w, 5, b"x");
    blocked_unknown.provider = "provider-9".into();
    refused("unknown_provider", 422, blocked_unknown).await;
    // A policy bit the card knows is kept.
    let mut kept = application(&w, 6, b"x");
    kept.policy = Some(protocol::Policy::NOT_DELETABLE.bits());
    assert_eq!(
        client.add_application(token, &kept).await.unwrap().policy,
        protocol::Policy::NOT_DELETABLE.bits()
    );

    // The largest code there may be.
    let largest = client
        .add_application(token, &application(&w, 8, &vec![7u8; 1024 * 1024]))
        .await
        .unwrap();
    assert_eq!(largest.size, 1024 * 1024);

    // Operators only; unknown fields refused.
    let body = serde_json::to_value(application(&w, 7, b"x")).unwrap();
    assert_error(
        &server.post("/v1/applications", &body).await,
        401,
        "unauthenticated",
    );
    let mut extra = body.clone();
    extra["size"] = json!(1);
    assert_error(
        &server.operate("POST", "/v1/applications", &extra).await,
        400,
        "invalid_body",
    );
    assert_eq!(client.applications().await.unwrap().applications.len(), 4);

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn application_db_sqlite() {
    application_db(Backend::Sqlite).await;
}

#[tokio::test]
async fn application_db_postgres() {
    application_db(Backend::Postgres).await;
}
