//! The member notifier (S15, docs/app-download.md §4) against a stub provider that counts what
//! it receives: backoff after no answer or a 5xx, stuck after a 4xx (retried every 300 s and
//! at once on an operator's retry), no URL, the lease (a row another notifier holds is left
//! alone until its lease ends), and two issuer instances on one database: one operation
//! opened once, its receipt recorded once, its notification delivered once — by rounds racing
//! each other, and by both instances' running notifiers. SQLite and PostgreSQL.

use std::time::Duration;

use issuer::notify::Round;
use issuer::store::{NotificationState, SendOutcome};
use issuer::Store as _;
use pki::UnixTime;
use serde_json::json;
use server_kit::Clock;
use testkit::world::World;

use crate::downloading::*;
use crate::support::*;

async fn backoff_stuck_retry(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_notifier").await else {
        return;
    };
    let w = World::new(91);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let token = server.token.expose();
    let notifier = &server.app.notifier;
    let card = SoftCard::new(&server, &w, 11).await;
    let receipt = installed_soft(&server, &w, &card, op(1)).await;
    client.download_receipt(&op(1), &receipt).await.unwrap();
    let row = |state: &'static str| async move {
        let rows = client.notifications(token, Some(state)).await.unwrap();
        assert_eq!(rows.notifications.len(), 1, "{state}: {rows:?}");
        rows.notifications[0].clone()
    };
    assert_eq!(row("pending").await.attempts, 0);

    // 5xx: pending, due after 2^1 s.
    stub.answer_members(MemberAnswer::Unavailable);
    let round = notifier.run_once().await.unwrap();
    assert_eq!(
        round,
        Round {
            retried: 1,
            ..Round::default()
        }
    );
    let pending = row("pending").await;
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.next_attempt_at, NOW.0 + 2);
    assert_eq!(pending.lease_until, None);
    assert!(
        pending.last_error.as_deref().unwrap().contains("503"),
        "{pending:?}"
    );
    // Not due yet: nothing sent.
    assert_eq!(notifier.run_once().await.unwrap(), Round::default());
    assert_eq!(stub.notifications().len(), 1);
    server.clock.advance(2);
    assert_eq!(notifier.run_once().await.unwrap().retried, 1);
    let pending = row("pending").await;
    assert_eq!(pending.attempts, 2);
    assert!(
        (NOW.0 + 2 + 4..=NOW.0 + 2 + 5).contains(&pending.next_attempt_at),
        "{pending:?}"
    );

    // 4xx: stuck, tried again every 300 s.
    stub.answer_members(MemberAnswer::Refuse);
    server.clock.set(UnixTime(pending.next_attempt_at));
    assert_eq!(notifier.run_once().await.unwrap().stuck, 1);
    let stuck = row("stuck").await;
    assert_eq!(stuck.attempts, 3);
    assert_eq!(stuck.next_attempt_at, pending.next_attempt_at + 300);
    let error = stuck.last_error.clone().unwrap();
    assert!(
        error.contains("422") && error.contains("operation_mismatch"),
        "{error}"
    );
    server.clock.advance(299);
    assert_eq!(notifier.run_once().await.unwrap(), Round::default());
    // The operator's retry makes it due now (still stuck until it goes through).
    let retried = client.retry_notification(token, &op(1)).await.unwrap();
    assert_eq!(
        (retried.state.as_str(), retried.next_attempt_at),
        ("stuck", server.clock.now().0)
    );
    stub.answer_members(MemberAnswer::Ack);
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);
    let delivered = row("delivered").await;
    assert_eq!(delivered.attempts, 4);
    assert_eq!(delivered.last_error, None);
    // Every attempt sent the same body.
    let seen = stub.notifications();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|n| n == &seen[0]));
    let metrics = server.get("/metrics").await.text();
    for line in [
        "issuer_member_notifications_total{outcome=\"delivered\"} 1",
        "issuer_member_notifications_total{outcome=\"retried\"} 2",
        "issuer_member_notifications_total{outcome=\"stuck\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }

    // Nobody listening: pending, the error naming the URL; no URL at all: stuck.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let second = SoftCard::new(&server, &w, 12).await;
    let receipt = installed_soft(&server, &w, &second, op(2)).await;
    client.download_receipt(&op(2), &receipt).await.unwrap();
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&closed))
        .await;
    assert_eq!(notifier.run_once().await.unwrap().retried, 1);
    let unreachable = row("pending").await;
    assert!(unreachable.last_error.unwrap().contains(&closed));
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, None)
        .await;
    server.clock.advance(10);
    assert_eq!(notifier.run_once().await.unwrap().stuck, 1);
    assert!(row("stuck").await.last_error.unwrap().contains("no url"));
    server
        .allow_at(w.pki.provider.id.as_str(), 4096, Some(&stub.url))
        .await;
    client.retry_notification(token, &op(2)).await.unwrap();
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);

    // A row another notifier holds is left alone until its lease ends; that holder's late
    // outcome is then refused (the row is no longer its).
    let third = SoftCard::new(&server, &w, 13).await;
    let receipt = installed_soft(&server, &w, &third, op(3)).await;
    client.download_receipt(&op(3), &receipt).await.unwrap();
    let store = issuer::SqlStore::open(server.app.db.clone()).await.unwrap();
    let now = server.clock.now();
    let claimed = store
        .claim_notification(&op(3), "elsewhere", now, UnixTime(now.0 + 30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.lease_holder.as_deref(), Some("elsewhere"));
    assert!(store
        .claim_notification(&op(3), notifier.holder(), now, UnixTime(now.0 + 30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(notifier.run_once().await.unwrap(), Round::default());
    server.clock.advance(31);
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);
    let late = SendOutcome::Failed {
        state: NotificationState::Pending,
        next_attempt_at: now,
        error: "late".into(),
    };
    assert!(!store
        .finish_notification(&op(3), "elsewhere", &late)
        .await
        .unwrap());
    assert_eq!(
        store.notification(&op(3)).await.unwrap().unwrap().state,
        NotificationState::Delivered
    );
    // op 1: four attempts; op 2: the one that reached it; op 3: one.
    assert_eq!(stub.notifications().len(), 4 + 1 + 1);

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn backoff_stuck_retry_sqlite() {
    backoff_stuck_retry(Backend::Sqlite).await;
}

#[tokio::test]
async fn backoff_stuck_retry_postgres() {
    backoff_stuck_retry(Backend::Postgres).await;
}

/// Two instances on one database, notifiers driven by hand: an application opened at both at
/// once is opened once, its receipt at both at once recorded once, and rounds of both at once
/// deliver each notification once.
async fn two_instances_once(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_two_notifiers").await else {
        return;
    };
    let w = World::new(92);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    a.app.notifier.stop();
    b.app.notifier.stop();
    assert_ne!(a.app.notifier.holder(), b.app.notifier.holder());
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &a.clock, place.dir.path()).await;
    open_shop(&a, &w, &stub.url, 4096).await;

    let cards = [
        SoftCard::new(&a, &w, 21).await,
        SoftCard::new(&b, &w, 22).await,
        SoftCard::new(&a, &w, 23).await,
    ];
    for (n, card) in cards.iter().enumerate() {
        let op = op(n as u8 + 1);
        let application = card.sign(&download_request(&w, card.card_id, op), 0, 4096);
        let body = json!({
            "download_application": hex::encode(application.to_der()),
            "rc": hex::encode(card.rc.der()),
        });
        let (ra, rb) = tokio::join!(
            a.post("/v1/downloads", &body),
            b.post("/v1/downloads", &body)
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [200, 201], "{} / {}", ra.text(), rb.text());
        assert_eq!(ra.json(), rb.json());
        let opened: party_api::issuer_download::DownloadOpened =
            serde_json::from_slice(&ra.body).unwrap();
        let sdi = opened.sdi_value().unwrap();
        // The same challenge at both at once: one attempt.
        let challenge = protocol::Challenge([n as u8 + 1; 16]);
        let (xa, xb) = tokio::join!(
            a.client.authorize_download(&op, &challenge),
            b.client.authorize_download(&op, &challenge)
        );
        let (xa, xb) = (xa.unwrap(), xb.unwrap());
        assert_eq!(xa.sar, xb.sar);
        assert_eq!(xa.attempt, 1);
        let status = a.client.download(&op).await.unwrap();
        assert_eq!(status.attempts.len(), 1);
        // Both answers carry the attempt's recorded SA (the first recorded wins).
        let recorded = status.attempts[0].sa_digest.clone().unwrap();
        let sa = if hex::encode(xa.sa_object().unwrap().digest().0) == recorded {
            xa.sa_object().unwrap()
        } else {
            xb.sa_object().unwrap()
        };
        assert_eq!(hex::encode(xb.sa_object().unwrap().digest().0), recorded);
        let receipt = card.receipt(&sdi, &sa, 1, &[listed(&sdi)]);
        let (ra, rb) = tokio::join!(
            a.client.download_receipt(&op, &receipt),
            b.client.receipt(&receipt, None)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_ne!(ra.receipt.newly_recorded, rb.newly_recorded);
        assert_eq!(ra.receipt.entry, rb.entry);
        assert_eq!(ra.operation.state, "installed");
    }
    let outbox = a
        .client
        .notifications(a.token.expose(), None)
        .await
        .unwrap();
    assert_eq!(outbox.notifications.len(), 3);

    // Both notifiers' rounds at once: each row delivered by exactly one.
    let (ra, rb) = tokio::join!(a.app.notifier.run_once(), b.app.notifier.run_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.delivered + rb.delivered, 3, "{ra:?} {rb:?}");
    assert_eq!(stub.notifications().len(), 3);
    let (ra, rb) = tokio::join!(a.app.notifier.run_once(), b.app.notifier.run_once());
    assert_eq!(
        (ra.unwrap(), rb.unwrap()),
        (Round::default(), Round::default())
    );
    assert_eq!(stub.notifications().len(), 3);
    let delivered = b
        .client
        .notifications(b.token.expose(), Some("delivered"))
        .await
        .unwrap();
    assert_eq!(delivered.notifications.len(), 3);
    assert!(delivered.notifications.iter().all(|n| n.attempts == 1));

    stub.stop().await;
    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn two_instances_once_sqlite() {
    two_instances_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_instances_once_postgres() {
    two_instances_once(Backend::Postgres).await;
}

/// Two instances whose notifiers run in the background (as `serve` starts them): the receipt
/// at one wakes its notifier, the notification is delivered once, and neither sends it again.
async fn running_notifiers(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_running_notifiers").await else {
        return;
    };
    let w = World::new(93);
    let a = Server::start_as(&place, &w.pki, "olga").await;
    let b = Server::start_as(&place, &w.pki, "oskar").await;
    assert!(a.app.notifier.is_running() && b.app.notifier.is_running());
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &a.clock, place.dir.path()).await;
    open_shop(&a, &w, &stub.url, 4096).await;
    let card = SoftCard::new(&a, &w, 31).await;
    let receipt = installed_soft(&a, &w, &card, op(1)).await;
    b.client.download_receipt(&op(1), &receipt).await.unwrap();

    // Waiting for a background task's effect: bounded, then asserted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = a.client.download(&op(1)).await.unwrap();
        if status
            .notification
            .as_ref()
            .is_some_and(|n| n.state == "delivered")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give both tasks further ticks; then rounds by hand find nothing due.
    tokio::time::sleep(issuer::notify::TICK + Duration::from_millis(300)).await;
    let (ra, rb) = tokio::join!(a.app.notifier.run_once(), b.app.notifier.run_once());
    assert_eq!(
        (ra.unwrap(), rb.unwrap()),
        (Round::default(), Round::default())
    );
    assert_eq!(stub.notifications().len(), 1);
    let status = a.client.download(&op(1)).await.unwrap();
    assert_eq!(status.notification.unwrap().attempts, 1);

    // stop() ends the task.
    a.app.notifier.stop();
    tokio::task::yield_now().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.app.notifier.is_running() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    stub.stop().await;
    a.stop().await;
    b.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn running_notifiers_sqlite() {
    running_notifiers(Backend::Sqlite).await;
}

#[tokio::test]
async fn running_notifiers_postgres() {
    running_notifiers(Backend::Postgres).await;
}

/// The provider refuses a card's receipt counter that does not increase, so one card's
/// notifications to one provider go in receipt-counter order: a later one waits while an
/// earlier one is undelivered (backing off after a 503 here). Another card's is not held up.
async fn counter_order(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_notifier_order").await else {
        return;
    };
    let w = World::new(94);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    add_second_application(&server, &w).await;
    let client = &server.client;
    let notifier = &server.app.notifier;
    let card = SoftCard::new(&server, &w, 41).await;
    let other = SoftCard::new(&server, &w, 42).await;

    // Two operations of one card and provider, installed at counters 1 and 2.
    let (sdi_a, sa_a) = opened_and_authorized(
        &server,
        &card,
        &download_request(&w, card.card_id, op(1)),
        0,
    )
    .await;
    let (sdi_b, sa_b) = opened_and_authorized(
        &server,
        &card,
        &download_request_2(&w, card.card_id, op(2)),
        0,
    )
    .await;
    let receipt_a = card.receipt(&sdi_a, &sa_a, 1, &[listed(&sdi_a)]);
    let receipt_b = card.receipt(&sdi_b, &sa_b, 2, &[listed(&sdi_a), listed(&sdi_b)]);
    client.download_receipt(&op(1), &receipt_a).await.unwrap();
    let recorded = client.download_receipt(&op(2), &receipt_b).await.unwrap();
    assert_eq!(recorded.receipt.counter, 2);
    let other_receipt = installed_soft(&server, &w, &other, op(3)).await;
    client
        .download_receipt(&op(3), &other_receipt)
        .await
        .unwrap();

    // The first is not acknowledged: it backs off, the second waits for it; the other
    // card's goes.
    stub.answer_members_for(&op(1).to_hex(), MemberAnswer::Unavailable);
    let round = notifier.run_once().await.unwrap();
    assert_eq!(
        round,
        Round {
            delivered: 1,
            retried: 1,
            ..Round::default()
        }
    );
    let sent = |stub: &StubProvider| -> Vec<String> {
        stub.notifications()
            .iter()
            .map(|n| n["operation_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(sent(&stub), vec![op(1).to_hex(), op(3).to_hex()]);
    let waiting = client.download(&op(2)).await.unwrap().notification.unwrap();
    assert_eq!((waiting.state.as_str(), waiting.attempts), ("pending", 0));
    let backing_off = client.download(&op(1)).await.unwrap().notification.unwrap();
    assert_eq!(backing_off.attempts, 1);
    // Due but held: still nothing for the second, however often the notifier looks.
    let store = issuer::SqlStore::open(server.app.db.clone()).await.unwrap();
    let now = server.clock.now();
    assert!(store.due_notifications(now, 10).await.unwrap().is_empty());
    assert!(store
        .claim_notification(&op(2), "elsewhere", now, UnixTime(now.0 + 30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(notifier.run_once().await.unwrap(), Round::default());

    // The first goes through after its backoff; then the second.
    stub.answer_members_for(&op(1).to_hex(), MemberAnswer::Ack);
    server.clock.advance(notify_backoff(&op(1), 1));
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);
    assert_eq!(notifier.run_once().await.unwrap(), Round::default());
    for n in [1, 2, 3] {
        let status = client.download(&op(n)).await.unwrap();
        assert_eq!(status.notification.unwrap().state, "delivered", "op {n}");
    }
    assert_eq!(
        sent(&stub),
        vec![
            op(1).to_hex(),
            op(3).to_hex(),
            op(1).to_hex(),
            op(2).to_hex()
        ]
    );

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

fn notify_backoff(operation_id: &protocol::OperationId, attempts: u32) -> u64 {
    issuer::notify::backoff_s(operation_id, attempts)
}

#[tokio::test]
async fn counter_order_sqlite() {
    counter_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn counter_order_postgres() {
    counter_order(Backend::Postgres).await;
}

/// Personal information goes only to a provider the issuer's policy allows when it is sent: a
/// blocked provider's notification is not sent but stuck (retried as stuck rows are), and
/// delivered once the provider is allowed again.
async fn blocked_provider(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_notifier_blocked").await else {
        return;
    };
    let w = World::new(95);
    let server = Server::start(&place, &w.pki).await;
    server.app.notifier.stop();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    open_shop(&server, &w, &stub.url, 4096).await;
    let client = &server.client;
    let token = server.token.expose();
    let notifier = &server.app.notifier;
    let card = SoftCard::new(&server, &w, 51).await;
    let receipt = installed_soft(&server, &w, &card, op(1)).await;
    client.download_receipt(&op(1), &receipt).await.unwrap();

    let provider = w.pki.provider.id.as_str();
    let blocked = json!({"status": "blocked", "quota_bytes": 4096, "url": stub.url});
    let r = server
        .operate("PUT", &format!("/v1/providers/{provider}"), &blocked)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        notifier.run_once().await.unwrap(),
        Round {
            stuck: 1,
            ..Round::default()
        }
    );
    assert!(stub.notifications().is_empty());
    let stuck = |attempts: u32| async move {
        let rows = client.notifications(token, Some("stuck")).await.unwrap();
        assert_eq!(rows.notifications.len(), 1, "{rows:?}");
        let row = rows.notifications[0].clone();
        assert_eq!(row.attempts, attempts);
        assert_eq!(
            row.last_error.as_deref(),
            Some("provider not allowed by the issuer's policy")
        );
        row
    };
    let row = stuck(1).await;
    assert_eq!(row.next_attempt_at, NOW.0 + 300);
    // Tried again as stuck rows are: still not sent.
    server.clock.advance(300);
    assert_eq!(notifier.run_once().await.unwrap().stuck, 1);
    stuck(2).await;
    assert!(stub.notifications().is_empty());

    // Allowed again: the operator's retry (or the next 300 s) delivers it.
    server.allow_at(provider, 4096, Some(&stub.url)).await;
    client.retry_notification(token, &op(1)).await.unwrap();
    assert_eq!(notifier.run_once().await.unwrap().delivered, 1);
    assert_eq!(stub.notifications().len(), 1);
    let status = client.download(&op(1)).await.unwrap();
    assert_eq!(status.notification.unwrap().state, "delivered");

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn blocked_provider_sqlite() {
    blocked_provider(Backend::Sqlite).await;
}

#[tokio::test]
async fn blocked_provider_postgres() {
    blocked_provider(Backend::Postgres).await;
}
