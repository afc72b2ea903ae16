//! Download operations at the issuer (S8–S15): a real card's download end to end through the
//! issuer and a stub provider (open, authorize, package, install, receipt → installed +
//! outbox → notifier → member notification), every repeat idempotent (same body, same
//! answer, never applied twice), the operators' views, and every refusal of §3 with its code.
//! SQLite and PostgreSQL.

use pki::{CardId, Certificate, UnixTime};
use protocol::{Challenge, ListedItem, Sa, SaBasis, Sdi, SignedObject};
use serde_json::json;
use testkit::world::World;

use crate::downloading::*;
use crate::support::*;

async fn happy_path(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download").await else {
        return;
    };
    let w = World::new(71);
    let server = Server::start(&place, &w.pki).await;
    // Rounds are run by hand here: the background task would race the assertions.
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let token = server.token.expose();
    let (mut c, card_id, rc) = registered_card(&server, &w).await;
    let op = op(1);
    let code = code();

    // S8–S10: opened; the same request again answers the same operation (200).
    let request = download_request(&w, card_id, op);
    let application = c.sign_download_application(&request).unwrap();
    let body = json!({
        "download_application": hex::encode(application.to_der()),
        "rc": hex::encode(rc.der()),
    });
    let r = server.post("/v1/downloads", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let opened: party_api::issuer_download::DownloadOpened =
        serde_json::from_slice(&r.body).unwrap();
    assert_eq!(opened.operation_id, op.to_hex());
    assert_eq!(opened.state, "opened");
    assert_eq!(opened.free, 4096);
    assert_eq!(opened.application.size, code.len() as u32);
    let sdi = opened.sdi_value().unwrap();
    assert_eq!(
        (sdi.card_id, &sdi.item_id, sdi.version, sdi.size),
        (card_id, &aid(), 1, code.len() as u32)
    );
    assert_eq!(
        (sdi.owner.clone(), sdi.data_digest),
        (w.pki.provider.id.clone(), crypto::sha256(&code))
    );
    let again = server.post("/v1/downloads", &body).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), r.json());
    // Signed again by the card: the same bytes (deterministic), the same answer.
    let resigned = c.sign_download_application(&request).unwrap();
    assert_eq!(resigned, application);
    let status = client.download(&op).await.unwrap();
    assert_eq!(
        (
            status.state.as_str(),
            status.attempts.len(),
            status.notification
        ),
        ("opened", 0, None)
    );
    assert_eq!(status.service_id, SERVICE);

    // S11: one attempt per challenge; the same challenge again is the same attempt, and the
    // provider is not asked twice.
    let challenge = Challenge(c.get_challenge().unwrap());
    let path = format!("/v1/downloads/{}/authorizations", op.to_hex());
    let r = server
        .post(&path, &json!({"challenge": hex::encode(challenge.0)}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let authorization: party_api::issuer_download::DownloadAuthorization =
        serde_json::from_slice(&r.body).unwrap();
    assert_eq!(authorization.attempt, 1);
    let (sar, sa) = (
        authorization.sar_object().unwrap(),
        authorization.sa_object().unwrap(),
    );
    let sa_body: Sa = sa.body_unverified().unwrap();
    assert_eq!(sa_body.basis, SaBasis::Request(sar.clone()));
    assert_eq!((sa_body.sdi, sa_body.challenge), (sdi.clone(), challenge));
    assert_eq!(authorization.not_after, sa_body.not_after.0);
    let again = client.authorize_download(&op, &challenge).await.unwrap();
    assert_eq!(again, authorization);
    let r = server
        .post(&path, &json!({"challenge": hex::encode(challenge.0)}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stub.grants(&op.to_hex()), 1);

    // The package, then the card installs it.
    let package = client.package(&op).await.unwrap();
    assert_eq!(package.code_bytes().unwrap(), code);
    assert_eq!(package.digest_value().unwrap(), crypto::sha256(&code));
    assert_eq!((package.version, package.size), (1, code.len() as u32));
    let receipt = c.store(&sa, None, &code).unwrap();

    // S13–S14: installed, notification queued, in the receipt's transaction.
    let recorded = client.download_receipt(&op, &receipt).await.unwrap();
    assert!(recorded.receipt.newly_recorded && recorded.receipt.in_sync);
    assert_eq!(recorded.receipt.counter, 1);
    assert_eq!(recorded.operation.state, "installed");
    let notification = recorded.operation.notification.clone().unwrap();
    assert_eq!(
        (notification.state.as_str(), notification.attempts),
        ("pending", 0)
    );
    // Repeats: the same entry, 200, nothing twice; also through POST /v1/receipts.
    let path = format!("/v1/downloads/{}/receipt", op.to_hex());
    let r = server
        .post(&path, &json!({"receipt": hex::encode(receipt.to_der())}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["entry"].as_str(),
        Some(recorded.receipt.entry.as_str())
    );
    assert_eq!(r.json()["newly_recorded"], false);
    assert_eq!(r.json()["operation"]["state"], "installed");
    let same = client.receipt(&receipt, None).await.unwrap();
    assert_eq!(same.entry, recorded.receipt.entry);
    assert!(!same.newly_recorded);
    let summary = verified_ledger(&server, &card_id, &w, &rc).await;
    assert_eq!((summary.entries, summary.last_counter), (1, 1));

    // S15: one round delivers the member notification with the body of §4.
    let round = server.app.notifier.run_once().await.unwrap();
    assert_eq!((round.delivered, round.retried, round.stuck), (1, 0, 0));
    let seen = stub.notifications();
    assert_eq!(seen.len(), 1);
    let n = &seen[0];
    assert_eq!(n["operation_id"], op.to_hex());
    assert_eq!(n["card_id"], card_id.to_hex());
    assert_eq!(n["service_id"], SERVICE);
    assert_eq!(
        n["user"],
        json!({"user_id": "user-0001", "name": "Alice Example", "email": "alice@example.org"})
    );
    assert_eq!(n["download_application"], hex::encode(application.to_der()));
    assert_eq!(n["receipt"], hex::encode(receipt.to_der()));
    assert_eq!(n["rc"], hex::encode(rc.der()));
    assert_eq!(n["irc"], hex::encode(w.pki.issuer.cert.der()));
    // Nothing is due any more: never notified twice.
    assert_eq!(
        server.app.notifier.run_once().await.unwrap(),
        Default::default()
    );
    assert_eq!(stub.notifications().len(), 1);
    let status = client.download(&op).await.unwrap();
    assert_eq!(status.state, "installed");
    assert_eq!(status.receipt_counter, Some(1));
    assert_eq!(status.installed_at, Some(NOW.0));
    assert_eq!(status.attempts.len(), 1);
    assert_eq!(
        status.attempts[0].sa_digest.as_deref(),
        Some(hex::encode(sa.digest().0).as_str())
    );
    let delivered = status.notification.unwrap();
    assert_eq!(
        (delivered.state.as_str(), delivered.attempts),
        ("delivered", 1)
    );
    assert_eq!(delivered.delivered_at, Some(NOW.0));
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("issuer_member_notifications_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("issuer_downloads_opened_total 1"),
        "{metrics}"
    );

    // The standing now shows the application and the lower free bytes.
    let check = client.check(&card_id).await.unwrap();
    let nonce = check.nonce_value().unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let standing = client.standing(&card_id, &nonce, &listing).await.unwrap();
    assert_eq!(standing.free, 4096 - code.len() as u32);
    assert!(standing.in_sync);
    assert_eq!((standing.card_counter, standing.issuer_counter), (1, 1));
    assert_eq!(standing.applications.len(), 1);
    let app = &standing.applications[0];
    assert_eq!(
        (
            app.aid.as_str(),
            app.version,
            app.name.as_str(),
            app.provider.as_str()
        ),
        (
            hex::encode(crate::applications::AID).as_str(),
            1,
            "Transit pass",
            "provider-1"
        )
    );
    assert!(standing.open_downloads.is_empty());

    // Installed: no more attempts, no second operation for it.
    assert_refused(
        client
            .authorize_download(&op, &Challenge(c.get_challenge().unwrap()))
            .await,
        409,
        "already_installed",
    );
    let second = c
        .sign_download_application(&download_request(&w, card_id, op_2()))
        .unwrap();
    assert_refused(
        client.open_download(&second, &rc).await,
        409,
        "already_installed",
    );
    // The installed operation's own request again still answers it.
    let reopened = client.open_download(&application, &rc).await.unwrap();
    assert_eq!(reopened.state, "installed");

    // Operators: the registry, the operations, the outbox.
    let registry = client.registry(token, &card_id).await.unwrap();
    let holder = registry.holder.unwrap();
    assert_eq!(
        (
            holder.user_id.as_str(),
            holder.name.as_str(),
            holder.email.as_str()
        ),
        ("user-0001", "Alice Example", "alice@example.org")
    );
    assert_eq!(registry.status, "registered");
    assert_eq!(
        (registry.capacity, registry.free),
        (4096, 4096 - code.len() as u32)
    );
    assert_eq!(registry.last_counter, 1);
    assert_eq!(registry.applications, standing.applications);
    assert_eq!(registry.items.len(), 1);
    assert_eq!(registry.downloads.len(), 1);
    assert_eq!(registry.downloads[0].state, "installed");
    assert_eq!(
        client.downloads(token, None).await.unwrap().downloads.len(),
        1
    );
    assert_eq!(
        client
            .downloads(token, Some("installed"))
            .await
            .unwrap()
            .downloads[0],
        client.download(&op).await.unwrap()
    );
    assert!(client
        .downloads(token, Some("opened"))
        .await
        .unwrap()
        .downloads
        .is_empty());
    assert_refused(
        client.downloads(token, Some("lost")).await,
        400,
        "invalid_state",
    );
    let outbox = client
        .notifications(token, Some("delivered"))
        .await
        .unwrap();
    assert_eq!(outbox.notifications.len(), 1);
    assert_eq!(outbox.notifications[0].operation_id, op.to_hex());
    assert!(client
        .notifications(token, Some("stuck"))
        .await
        .unwrap()
        .notifications
        .is_empty());
    assert_refused(
        client.notifications(token, Some("gone")).await,
        400,
        "invalid_state",
    );
    assert_refused(
        client.retry_notification(token, &op).await,
        409,
        "already_delivered",
    );
    assert_refused(
        client.retry_notification(token, &op_2()).await,
        404,
        "unknown_notification",
    );
    for path in [
        format!("/v1/cards/{}/registry", card_id.to_hex()),
        "/v1/downloads".to_string(),
        "/v1/notifications".to_string(),
    ] {
        assert_error(&server.get(&path).await, 401, "unauthenticated");
    }
    assert_error(
        &server
            .post(
                &format!("/v1/notifications/{}/retry", op.to_hex()),
                &json!({}),
            )
            .await,
        401,
        "unauthenticated",
    );
    assert_refused(
        client.registry(token, &CardId([9; 16])).await,
        404,
        "unknown_card",
    );

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

fn op_2() -> protocol::OperationId {
    op(2)
}

#[tokio::test]
async fn happy_path_sqlite() {
    happy_path(Backend::Sqlite).await;
}

#[tokio::test]
async fn happy_path_postgres() {
    happy_path(Backend::Postgres).await;
}

/// POST /v1/downloads with `application` and `rc`, expecting a refusal.
async fn refused_open(
    server: &Server,
    application: &SignedObject,
    rc: &Certificate,
    status: u16,
    code: &str,
) {
    assert_refused(
        server.client.open_download(application, rc).await,
        status,
        code,
    );
}

async fn open_refusals(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_open").await else {
        return;
    };
    let w = World::new(72);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let card = SoftCard::new(&server, &w, 1).await;
    let other = SoftCard::new(&server, &w, 2).await;
    let request = |n: u8| download_request(&w, card.card_id, op(n));

    // Unreadable.
    for (body, code) in [
        (
            json!({"download_application": "zz", "rc": hex::encode(card.rc.der())}),
            "invalid_download_application",
        ),
        (
            json!({"download_application": "3000", "rc": hex::encode(card.rc.der())}),
            "invalid_download_application",
        ),
        (
            json!({"download_application": hex::encode(card.sign(&request(1), 0, 4096).to_der()), "rc": "30"}),
            "invalid_rc",
        ),
    ] {
        assert_error(&server.post("/v1/downloads", &body).await, 400, code);
    }
    // Not this card's signature (the other card's application with this card's RC).
    let others = other.sign(&download_request(&w, other.card_id, op(1)), 0, 4096);
    refused_open(
        &server,
        &others,
        &card.rc,
        422,
        "invalid_download_application",
    )
    .await;
    // Not a download application at all (a receipt signed by the card).
    let sdi = Sdi {
        card_id: card.card_id,
        operation: protocol::Operation::Store,
        item_id: aid(),
        version: 1,
        size: 1,
        data_digest: crypto::sha256(b"x"),
        owner: w.pki.provider.id.clone(),
        policy: protocol::Policy::NONE,
    };
    let receipt = card.receipt(&sdi, &others, 1, &[]);
    refused_open(&server, &receipt, &card.rc, 422, "wrong_purpose").await;
    // Another card's request signed by this card.
    let mut for_other = request(1);
    for_other.card_id = other.card_id;
    refused_open(
        &server,
        &card.sign(&for_other, 0, 4096),
        &card.rc,
        422,
        "card_mismatch",
    )
    .await;
    // Another issuer's.
    let mut elsewhere = request(1);
    elsewhere.issuer = pki::PartyId::new("issuer-9").unwrap();
    refused_open(
        &server,
        &card.sign(&elsewhere, 0, 4096),
        &card.rc,
        422,
        "wrong_issuer",
    )
    .await;
    // Expired.
    let mut late = request(1);
    late.not_after = UnixTime(NOW.0 - 1);
    refused_open(
        &server,
        &card.sign(&late, 0, 4096),
        &card.rc,
        422,
        "application_expired",
    )
    .await;
    // The registry's RC only.
    let foreign_rc =
        w.pki
            .issue_card_rc(card.card_id, card.key.verifying_key(), crypto::sha256(b"u"));
    refused_open(
        &server,
        &card.sign(&request(1), 0, 4096),
        &foreign_rc,
        422,
        "rc_mismatch",
    )
    .await;
    // A card not in the registry, and one not registered.
    let stranger = CardId([0x5A; 16]);
    let mut strangers = request(1);
    strangers.card_id = stranger;
    let stranger_rc = w
        .pki
        .issue_card_rc(stranger, card.key.verifying_key(), crypto::sha256(b"u"));
    refused_open(
        &server,
        &card.sign(&strangers, 0, 4096),
        &stranger_rc,
        404,
        "unknown_card",
    )
    .await;
    let r = server
        .operate("POST", "/v1/cards", &json!({"pin": "2468"}))
        .await;
    let unregistered = CardId::from_slice(&bytes_of(&r.json(), "card_id")).unwrap();
    let mut unregistereds = request(1);
    unregistereds.card_id = unregistered;
    let unregistered_rc =
        w.pki
            .issue_card_rc(unregistered, card.key.verifying_key(), crypto::sha256(b"u"));
    refused_open(
        &server,
        &card.sign(&unregistereds, 0, 4096),
        &unregistered_rc,
        409,
        "card_not_registered",
    )
    .await;

    // Against the application DB.
    let mut unknown = request(1);
    unknown.version = 9;
    refused_open(
        &server,
        &card.sign(&unknown, 0, 4096),
        &card.rc,
        404,
        "unknown_application",
    )
    .await;
    let mut bigger = request(1);
    bigger.size += 1;
    refused_open(
        &server,
        &card.sign(&bigger, 0, 4096),
        &card.rc,
        422,
        "application_mismatch",
    )
    .await;
    let mut altered = request(1);
    altered.data_digest = crypto::sha256(b"other code");
    refused_open(
        &server,
        &card.sign(&altered, 0, 4096),
        &card.rc,
        422,
        "application_mismatch",
    )
    .await;
    let mut rival = request(1);
    rival.provider = w.pki.provider_2.id.clone();
    refused_open(
        &server,
        &card.sign(&rival, 0, 4096),
        &card.rc,
        422,
        "application_mismatch",
    )
    .await;

    // The card's state.
    refused_open(
        &server,
        &card.sign(&request(1), 3, 4096),
        &card.rc,
        409,
        "registry_out_of_sync",
    )
    .await;
    let small = card.sign(&request(1), 0, 999);
    let refusal = client.open_download(&small, &card.rc).await.unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("insufficient_capacity"))
    );
    assert!(
        refusal.to_string().contains("needs 1000 bytes, 999 free"),
        "{refusal}"
    );
    server
        .allow_at(w.pki.provider.id.as_str(), 999, Some(&stub.url))
        .await;
    refused_open(
        &server,
        &card.sign(&request(1), 0, 4096),
        &card.rc,
        409,
        "quota_exceeded",
    )
    .await;
    let blocked = json!({"status": "blocked", "quota_bytes": 4096, "url": stub.url});
    let r = server
        .operate(
            "PUT",
            &format!("/v1/providers/{}", w.pki.provider.id),
            &blocked,
        )
        .await;
    assert_eq!(r.status, 200);
    refused_open(
        &server,
        &card.sign(&request(1), 0, 4096),
        &card.rc,
        403,
        "provider_not_allowed",
    )
    .await;
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&stub.url))
        .await;

    // Opened; another request under the same operation ID conflicts; another operation for
    // the same card and application is in progress (named).
    let opened = client
        .open_download(&card.sign(&request(1), 0, 4096), &card.rc)
        .await
        .unwrap();
    assert_eq!(opened.state, "opened");
    // The counter and free bytes may differ on a repeat.
    let repeat = client
        .open_download(&card.sign(&request(1), 0, 3000), &card.rc)
        .await
        .unwrap();
    assert_eq!(repeat.operation_id, opened.operation_id);
    assert_eq!(repeat.free, 3000);
    let mut changed = request(1);
    changed.terms_digest = crypto::sha256(b"other terms");
    refused_open(
        &server,
        &card.sign(&changed, 0, 4096),
        &card.rc,
        422,
        "operation_conflict",
    )
    .await;
    let refusal = client
        .open_download(&card.sign(&request(2), 0, 4096), &card.rc)
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("download_in_progress"))
    );
    assert!(refusal.to_string().contains(&op(1).to_hex()), "{refusal}");
    // The standing check would list it (open_downloads): checked in standing.rs.

    // Revoked: nothing more for the card.
    let r = server
        .operate(
            "POST",
            &format!("/v1/cards/{}/revocation", other.card_id.to_hex()),
            &json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    refused_open(
        &server,
        &other.sign(&download_request(&w, other.card_id, op(3)), 0, 4096),
        &other.rc,
        409,
        "registration_revoked",
    )
    .await;
    // Expired RCs: the clock past the RC's end (the application still valid).
    let mut far = download_request(&w, card.card_id, op(4));
    far.not_after = UnixTime(card.rc.not_after().0 + 3600);
    server.clock.set(UnixTime(card.rc.not_after().0 + 1));
    refused_open(
        &server,
        &card.sign(&far, 0, 4096),
        &card.rc,
        409,
        "registration_expired",
    )
    .await;

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn open_refusals_sqlite() {
    open_refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn open_refusals_postgres() {
    open_refusals(Backend::Postgres).await;
}

async fn authorization_refusals(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_authorize").await else {
        return;
    };
    let w = World::new(73);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let card = SoftCard::new(&server, &w, 3).await;
    let request = download_request(&w, card.card_id, op(1));
    client
        .open_download(&card.sign(&request, 0, 4096), &card.rc)
        .await
        .unwrap();
    let challenge = |n: u8| Challenge([n; 16]);

    assert_refused(
        client.authorize_download(&op(9), &challenge(1)).await,
        404,
        "unknown_operation",
    );
    let path = format!("/v1/downloads/{}/authorizations", op(1).to_hex());
    assert_error(
        &server.post(&path, &json!({"challenge": "00"})).await,
        400,
        "invalid_challenge",
    );
    assert_error(
        &server
            .post(
                "/v1/downloads/xyz/authorizations",
                &json!({"challenge": hex::encode([1; 16])}),
            )
            .await,
        400,
        "invalid_operation_id",
    );

    // The provider refuses: 502 naming it; the SAR was recorded first, so the same challenge
    // later asks again with that SAR and gets the same attempt.
    stub.answer(Answer::Refuse);
    let refusal = client
        .authorize_download(&op(1), &challenge(1))
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(502), Some("provider_refused"))
    );
    assert!(refusal.to_string().contains("sdi_mismatch"), "{refusal}");
    let pending = client.download(&op(1)).await.unwrap();
    assert_eq!(pending.attempts.len(), 1);
    assert_eq!(pending.attempts[0].sa_digest, None);
    stub.answer(Answer::Grant);
    let first = client
        .authorize_download(&op(1), &challenge(1))
        .await
        .unwrap();
    assert_eq!(first.attempt, 1);
    let sar_body: protocol::Sar = first.sar_object().unwrap().body_unverified().unwrap();
    assert_eq!(sar_body.challenge, challenge(1));
    assert_eq!(stub.grants(&op(1).to_hex()), 2);
    assert_eq!(
        client
            .authorize_download(&op(1), &challenge(1))
            .await
            .unwrap(),
        first
    );
    assert_eq!(stub.grants(&op(1).to_hex()), 2);
    // An SA by another provider is not passed on.
    stub.answer(Answer::SignAs(Box::new(w.pki.provider_2.clone())));
    assert_refused(
        client.authorize_download(&op(1), &challenge(2)).await,
        502,
        "provider_refused",
    );
    stub.answer(Answer::Grant);

    // No URL, nobody listening, blocked.
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, None)
        .await;
    assert_refused(
        client.authorize_download(&op(1), &challenge(3)).await,
        409,
        "provider_unreachable",
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&closed))
        .await;
    assert_refused(
        client.authorize_download(&op(1), &challenge(3)).await,
        502,
        "provider_unreachable",
    );
    let blocked = json!({"status": "blocked", "quota_bytes": 4096, "url": stub.url});
    server
        .operate(
            "PUT",
            &format!("/v1/providers/{}", w.pki.provider.id),
            &blocked,
        )
        .await;
    assert_refused(
        client.authorize_download(&op(1), &challenge(4)).await,
        403,
        "provider_not_allowed",
    );
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&stub.url))
        .await;

    // Eight attempts with the provider's SA at most. Challenges 2 (an SA not passed on) and 3
    // (nobody listening) have attempts without one: they count nothing, so 1 and 4..=10 are
    // the eight.
    for n in 4..=10 {
        let a = client
            .authorize_download(&op(1), &challenge(n))
            .await
            .unwrap();
        assert_eq!(a.attempt, u32::from(n));
    }
    let refusal = client
        .authorize_download(&op(1), &challenge(11))
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("too_many_attempts"))
    );
    assert!(
        refusal
            .to_string()
            .contains("8 authorization attempts with the provider's SA"),
        "{refusal}"
    );
    assert_eq!(client.download(&op(1)).await.unwrap().attempts.len(), 10);
    // An earlier challenge still answers its attempt.
    assert_eq!(
        client
            .authorize_download(&op(1), &challenge(1))
            .await
            .unwrap(),
        first
    );

    // The card's RC revoked: no more attempts.
    let second = SoftCard::new(&server, &w, 4).await;
    client
        .open_download(
            &second.sign(&download_request(&w, second.card_id, op(2)), 0, 4096),
            &second.rc,
        )
        .await
        .unwrap();
    server
        .operate(
            "POST",
            &format!("/v1/cards/{}/revocation", second.card_id.to_hex()),
            &json!({"reason": "key_compromise"}),
        )
        .await;
    assert_refused(
        client.authorize_download(&op(2), &challenge(1)).await,
        409,
        "registration_revoked",
    );

    // Attempts the provider never answers are bounded too (32), in their own words.
    let third = SoftCard::new(&server, &w, 5).await;
    client
        .open_download(
            &third.sign(&download_request(&w, third.card_id, op(3)), 0, 4096),
            &third.rc,
        )
        .await
        .unwrap();
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&closed))
        .await;
    for n in 1..=32 {
        assert_refused(
            client.authorize_download(&op(3), &challenge(n)).await,
            502,
            "provider_unreachable",
        );
    }
    let refusal = client
        .authorize_download(&op(3), &challenge(33))
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("too_many_attempts"))
    );
    assert!(
        refusal.to_string().contains("the provider did not answer"),
        "{refusal}"
    );
    assert_eq!(client.download(&op(3)).await.unwrap().attempts.len(), 32);
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&stub.url))
        .await;

    // The package and the operation: unknown operations.
    assert_refused(client.package(&op(9)).await, 404, "unknown_operation");
    assert_refused(client.download(&op(9)).await, 404, "unknown_operation");
    assert_error(
        &server.get("/v1/downloads/nothex/package").await,
        400,
        "invalid_operation_id",
    );
    assert_eq!(
        client.package(&op(1)).await.unwrap().code_bytes().unwrap(),
        code()
    );

    // Receipts: for another operation's SA, for an unknown operation.
    let attempt_sa = first.sa_object().unwrap();
    let sdi: Sdi = Sdi::from_der(
        &hex::decode(
            &client
                .open_download(&card.sign(&request, 0, 4096), &card.rc)
                .await
                .unwrap()
                .sdi,
        )
        .unwrap(),
    )
    .unwrap();
    let items = [ListedItem {
        item_id: sdi.item_id.clone(),
        version: sdi.version,
        size: sdi.size,
        data_digest: sdi.data_digest,
        owner: sdi.owner.clone(),
        policy: sdi.policy,
    }];
    let receipt = card.receipt(&sdi, &attempt_sa, 1, &items);
    assert_refused(
        client.download_receipt(&op(2), &receipt).await,
        422,
        "receipt_not_for_operation",
    );
    assert_refused(
        client.download_receipt(&op(9), &receipt).await,
        404,
        "unknown_operation",
    );
    let path = format!("/v1/downloads/{}/receipt", op(1).to_hex());
    assert_error(
        &server.post(&path, &json!({"receipt": "zz"})).await,
        400,
        "invalid_receipt",
    );
    // A gap is refused as on POST /v1/receipts, and nothing changes.
    let gap = card.receipt(&sdi, &attempt_sa, 2, &items);
    assert_refused(
        client.download_receipt(&op(1), &gap).await,
        409,
        "receipt_gap",
    );
    assert_eq!(client.download(&op(1)).await.unwrap().state, "opened");
    // This card's receipt for attempt 1: installed (POST /v1/receipts brings it too).
    let recorded = client.receipt(&receipt, None).await.unwrap();
    assert!(recorded.newly_recorded && recorded.in_sync);
    let status = client.download(&op(1)).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.receipt_counter),
        ("installed", Some(1))
    );
    assert_eq!(status.notification.unwrap().state, "pending");
    let again = client.download_receipt(&op(1), &receipt).await.unwrap();
    assert!(!again.receipt.newly_recorded);
    assert_eq!(again.operation.state, "installed");

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn authorization_refusals_sqlite() {
    authorization_refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn authorization_refusals_postgres() {
    authorization_refusals(Backend::Postgres).await;
}

/// A download application expires (30 min after the provider's request): its operation
/// authorizes nothing more (no attempt recorded, the provider not asked), is reported expired
/// and no longer listed open, and a new operation for the card and application opens in its
/// place. The card's receipt under the expired operation's SA (it installed after all) still
/// installs it and queues its member notification.
async fn expired_application(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_expired").await else {
        return;
    };
    let w = World::new(74);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let token = server.token.expose();
    let (mut c, card_id, rc) = registered_card(&server, &w).await;
    let request = download_request(&w, card_id, op(1));
    assert_eq!(request.not_after, UnixTime(NOW.0 + 1800));
    client
        .open_download(&c.sign_download_application(&request).unwrap(), &rc)
        .await
        .unwrap();
    let challenge = Challenge(c.get_challenge().unwrap());
    let first = client.authorize_download(&op(1), &challenge).await.unwrap();
    // Valid through its notAfter.
    server.clock.set(UnixTime(NOW.0 + 1800));
    assert_eq!(client.download(&op(1)).await.unwrap().state, "opened");

    // Expired: refused up front, nothing recorded, the provider not asked.
    server.clock.set(UnixTime(NOW.0 + 1801));
    let refusal = client
        .authorize_download(&op(1), &Challenge([7; 16]))
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("application_expired"))
    );
    assert!(refusal.to_string().contains("expired"), "{refusal}");
    let status = client.download(&op(1)).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.attempts.len()),
        ("expired", 1)
    );
    assert_eq!(stub.grants(&op(1).to_hex()), 1);
    // The recorded attempt's SA again (an answer lost) changes nothing.
    assert_eq!(
        client.authorize_download(&op(1), &challenge).await.unwrap(),
        first
    );
    // Not offered to continue, listed as expired to operators.
    let nonce = client.check(&card_id).await.unwrap().nonce_value().unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let standing = client.standing(&card_id, &nonce, &listing).await.unwrap();
    assert!(standing.open_downloads.is_empty(), "{standing:?}");
    let listed = |state: &'static str| async move {
        client
            .downloads(token, Some(state))
            .await
            .unwrap()
            .downloads
            .into_iter()
            .map(|d| (d.operation_id, d.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(listed("opened").await, vec![]);
    assert_eq!(
        listed("expired").await,
        vec![(op(1).to_hex(), "expired".to_string())]
    );
    let registry = client.registry(token, &card_id).await.unwrap();
    assert_eq!(registry.downloads[0].state, "expired");

    // A new operation for the card and application opens in its place.
    let mut renewed = download_request(&w, card_id, op(2));
    renewed.not_after = UnixTime(NOW.0 + 1801 + 1800);
    let opened = client
        .open_download(&c.sign_download_application(&renewed).unwrap(), &rc)
        .await
        .unwrap();
    assert_eq!(
        (opened.operation_id.as_str(), opened.state.as_str()),
        (op(2).to_hex().as_str(), "opened")
    );
    assert_eq!(
        listed("expired").await,
        vec![(op(1).to_hex(), "expired".to_string())]
    );
    assert_eq!(
        listed("opened").await,
        vec![(op(2).to_hex(), "opened".to_string())]
    );

    // The card had the first operation's SA and installs under it after all: its receipt
    // installs that operation and queues its notification.
    let receipt = c.store(&first.sa_object().unwrap(), None, &code()).unwrap();
    let recorded = client.download_receipt(&op(1), &receipt).await.unwrap();
    assert!(recorded.receipt.newly_recorded);
    assert_eq!(recorded.operation.state, "installed");
    assert_eq!(recorded.operation.notification.unwrap().state, "pending");
    assert_eq!(server.app.notifier.run_once().await.unwrap().delivered, 1);
    assert_eq!(stub.notifications()[0]["operation_id"], op(1).to_hex());
    assert_eq!(listed("expired").await, vec![]);

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn expired_application_sqlite() {
    expired_application(Backend::Sqlite).await;
}

#[tokio::test]
async fn expired_application_postgres() {
    expired_application(Backend::Postgres).await;
}

/// Two instances replacing one expired operation at once with two new ones: one opens, the
/// other is told that one is in progress.
async fn expired_replaced_once(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_replaced").await else {
        return;
    };
    let w = World::new(75);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    a.app.notifier.stop();
    b.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &a.clock, place.dir.path()).await;
    open_shop(&a, &w, &stub.url, 4096).await;
    let card = SoftCard::new(&a, &w, 6).await;
    a.client
        .open_download(
            &card.sign(&download_request(&w, card.card_id, op(1)), 0, 4096),
            &card.rc,
        )
        .await
        .unwrap();
    // Still valid: in progress.
    let renewed = |n: u8| {
        let mut request = download_request(&w, card.card_id, op(n));
        request.not_after = UnixTime(NOW.0 + 3600);
        card.sign(&request, 0, 4096)
    };
    assert_refused(
        b.client.open_download(&renewed(2), &card.rc).await,
        409,
        "download_in_progress",
    );
    for server in [&a, &b] {
        server.clock.set(UnixTime(NOW.0 + 1801));
    }
    let (second, third) = (renewed(2), renewed(3));
    let (ra, rb) = tokio::join!(
        a.client.open_download(&second, &card.rc),
        b.client.open_download(&third, &card.rc)
    );
    let (winner, loser) = match (ra, rb) {
        (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner, loser),
        other => panic!("one should open: {other:?}"),
    };
    assert_eq!(
        (loser.status(), loser.code()),
        (Some(409), Some("download_in_progress"))
    );
    assert!(loser.to_string().contains(&winner.operation_id), "{loser}");
    let token = a.token.expose();
    let states = |state: &'static str| {
        let client = &a.client;
        async move {
            client
                .downloads(token, Some(state))
                .await
                .unwrap()
                .downloads
                .into_iter()
                .map(|d| d.operation_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(states("opened").await, vec![winner.operation_id.clone()]);
    assert_eq!(states("expired").await, vec![op(1).to_hex()]);

    stub.stop().await;
    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn expired_replaced_once_sqlite() {
    expired_replaced_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn expired_replaced_once_postgres() {
    expired_replaced_once(Backend::Postgres).await;
}

/// The provider's quota counts its downloads in progress on the card: at open, the other open
/// operations of the provider there; at each authorization (the policy read again), those with
/// an attempt. Two applications each within the quota alone are not both authorized beyond
/// it; an operation whose application expired (and with no SA still valid) counts no more.
async fn quota_in_progress(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_quota").await else {
        return;
    };
    let w = World::new(76);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    // Applications of 1000 and 600 bytes; room for both.
    open_shop(&server, &w, &stub.url, 1600).await;
    add_second_application(&server, &w).await;
    let client = &server.client;
    let provider = w.pki.provider.id.as_str();

    // Both opened within the quota; then the quota is lowered to one of them: the first
    // authorization goes, the second would exceed it.
    let card = SoftCard::new(&server, &w, 7).await;
    let first = download_request(&w, card.card_id, op(1));
    let second = download_request_2(&w, card.card_id, op(2));
    for request in [&first, &second] {
        client
            .open_download(&card.sign(request, 0, 4096), &card.rc)
            .await
            .unwrap();
    }
    server.allow_at(provider, 1000, Some(&stub.url)).await;
    client
        .authorize_download(&op(1), &Challenge([1; 16]))
        .await
        .unwrap();
    let refusal = client
        .authorize_download(&op(2), &Challenge([2; 16]))
        .await
        .unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("quota_exceeded"))
    );
    assert!(
        refusal.to_string().contains("would hold 1600 bytes")
            && refusal
                .to_string()
                .contains("1000 of them by its downloads in progress")
            && refusal.to_string().contains("its quota is 1000"),
        "{refusal}"
    );
    assert!(client.download(&op(2)).await.unwrap().attempts.is_empty());
    assert_eq!(stub.grants(&op(2).to_hex()), 0);

    // At open: the other open operation of the provider counts.
    let other = SoftCard::new(&server, &w, 8).await;
    client
        .open_download(
            &other.sign(&download_request(&w, other.card_id, op(3)), 0, 4096),
            &other.rc,
        )
        .await
        .unwrap();
    let late = other.sign(&download_request_2(&w, other.card_id, op(4)), 0, 4096);
    let refusal = client.open_download(&late, &other.rc).await.unwrap_err();
    assert_eq!(
        (refusal.status(), refusal.code()),
        (Some(409), Some("quota_exceeded"))
    );
    assert!(
        refusal.to_string().contains("would hold 1600 bytes"),
        "{refusal}"
    );
    // Its application expired (no SA was given for it): it counts no more.
    server.clock.set(UnixTime(NOW.0 + 1801));
    let mut renewed = download_request_2(&w, other.card_id, op(5));
    renewed.not_after = UnixTime(NOW.0 + 3600);
    let opened = client
        .open_download(&other.sign(&renewed, 0, 4096), &other.rc)
        .await
        .unwrap();
    assert_eq!(opened.state, "opened");

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn quota_in_progress_sqlite() {
    quota_in_progress(Backend::Sqlite).await;
}

#[tokio::test]
async fn quota_in_progress_postgres() {
    quota_in_progress(Backend::Postgres).await;
}

/// An authorization whose attempt number keeps being taken (here: the operation's attempts
/// numbered 1 and 3, so the next number counted, 3, is always taken) gives up with words about
/// the attempts, not about a card's ledger; the route answers 500 `internal`.
async fn attempt_number_contention(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_download_contention").await else {
        return;
    };
    let w = World::new(77);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let card = SoftCard::new(&server, &w, 9).await;
    server
        .client
        .open_download(
            &card.sign(&download_request(&w, card.card_id, op(1)), 0, 4096),
            &card.rc,
        )
        .await
        .unwrap();
    use issuer::store::{AttemptRecord, AuthorizationRecord, Direction};
    use issuer::Store as _;
    let store = issuer::SqlStore::open(server.app.db.clone()).await.unwrap();
    let download = store.download(&op(1)).await.unwrap().unwrap();
    for n in [1u8, 3] {
        let sar_der = vec![0x30, n];
        let attempt = AttemptRecord {
            operation_id: op(1),
            attempt: u32::from(n),
            challenge: Challenge([n; 16]),
            sar_digest: crypto::sha256(&sar_der),
            sar_der: sar_der.clone(),
            sa_der: None,
            sa_digest: None,
            not_after: None,
            issued_at: NOW,
        };
        let authorization = AuthorizationRecord {
            sar_digest: attempt.sar_digest,
            direction: Direction::Request,
            card_id: card.card_id,
            provider: w.pki.provider.id.clone(),
            sdi_digest: download.sdi_digest,
            sdi_der: download.sdi_der.clone(),
            object_der: sar_der,
            issued_at: NOW,
            not_after: UnixTime(NOW.0 + 600),
        };
        store
            .insert_attempt(&attempt, &authorization)
            .await
            .unwrap();
    }
    let error = server
        .app
        .issuer
        .authorize_download(&op(1), Challenge([9; 16]))
        .await
        .unwrap_err();
    let words = error.to_string();
    assert!(
        words.contains("authorization attempt number of operation")
            && words.contains(&op(1).to_hex())
            && !words.contains("ledger"),
        "{words}"
    );
    assert_refused(
        server
            .client
            .authorize_download(&op(1), &Challenge([9; 16]))
            .await,
        500,
        "internal",
    );

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn attempt_number_contention_sqlite() {
    attempt_number_contention(Backend::Sqlite).await;
}

#[tokio::test]
async fn attempt_number_contention_postgres() {
    attempt_number_contention(Backend::Postgres).await;
}
