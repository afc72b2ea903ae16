//! The store conformance suite for issue 4 over `&dyn Store` (SQLite always, PostgreSQL when
//! `TEST_POSTGRES_URL` is set): applications, standing-check nonces, download operations (one
//! open per card and application), attempts (one per challenge, the first SA recorded wins),
//! a receipt that installs an operation and queues its notification in its transaction, and
//! the outbox's leases.

use crypto::sha256;
use issuer::store::{
    AppendOutcome, Application, AttemptOutcome, AttemptRecord, AuthorizationRecord, CardRecord,
    ChallengeRecord, CheckInsert, CheckRecord, Direction, DownloadCompletion, DownloadRecord,
    DownloadState, ItemChange, NotificationRecord, NotificationState, OpenOutcome, ReceiptAppend,
    RegisterOutcome, RegistrationRecord, SendOutcome,
};
use issuer::{SqlStore, Store, StoreError};
use pki::{CardId, PartyId, UnixTime};
use protocol::{Challenge, ItemId, ListedItem, Nonce, OperationId, Policy, ServiceId};
use server_kit::Db;

use crate::support::{Backend, Place, NOW};

fn provider() -> PartyId {
    PartyId::new("provider-1").unwrap()
}

fn aid(n: u8) -> ItemId {
    ItemId::new(&[0xA0, 0, 0, 0, n]).unwrap()
}

fn application(n: u8, version: u32, code: &[u8]) -> Application {
    Application {
        aid: aid(n),
        version,
        size: code.len() as u32,
        digest: sha256(code),
        provider: provider(),
        name: format!("app {n}"),
        description: String::new(),
        policy: Policy::NONE,
        added_at: NOW,
        added_by: "olga".into(),
    }
}

async fn registered_card(store: &dyn Store, n: u8) -> CardId {
    let card_id = CardId([n; 16]);
    store
        .insert_card(&CardRecord {
            card_id,
            sk_wrapped: vec![n; 60],
            sk_version: 1,
            pin_salt: [n; 16],
            pin_try_limit: 3,
            issuer_authenticator: vec![n],
            capacity: 4096,
            personalised_at: NOW,
            personalised_by: "olga".into(),
        })
        .await
        .unwrap();
    store
        .insert_challenge(&ChallengeRecord {
            challenge: Challenge([n; 16]),
            card_id,
            issued_at: NOW,
            expires_at: UnixTime(NOW.0 + 600),
            spent_at: None,
        })
        .await
        .unwrap();
    let outcome = store
        .register(&RegistrationRecord {
            card_id,
            serial: u64::from(n),
            challenge: Challenge([n; 16]),
            rc_der: vec![0x30, n],
            rc_digest: sha256(&[n]),
            user_id: format!("user-{n}"),
            user_name: "Alice".into(),
            user_email: "alice@example.org".into(),
            registered_at: NOW,
        })
        .await
        .unwrap();
    assert_eq!(outcome, RegisterOutcome::Registered);
    card_id
}

fn download(card_id: CardId, op: u8, app: u8) -> DownloadRecord {
    DownloadRecord {
        operation_id: OperationId([op; 16]),
        card_id,
        provider: provider(),
        service_id: ServiceId::new("svc").unwrap(),
        aid: aid(app),
        version: 1,
        request_der: vec![0x30, op],
        application_der: vec![0x30, op, 1],
        sdi_der: vec![0x30, app],
        sdi_digest: sha256(&[app]),
        state: DownloadState::Opened,
        opened_at: NOW,
        installed_at: None,
        receipt_counter: None,
    }
}

fn attempt(op: u8, n: u32, challenge: u8) -> AttemptRecord {
    AttemptRecord {
        operation_id: OperationId([op; 16]),
        attempt: n,
        challenge: Challenge([challenge; 16]),
        sar_digest: sha256(&[op, challenge]),
        sar_der: vec![0x30, op, challenge],
        sa_der: None,
        sa_digest: None,
        not_after: None,
        issued_at: NOW,
    }
}

fn sar_record(card_id: CardId, a: &AttemptRecord, app: u8) -> AuthorizationRecord {
    AuthorizationRecord {
        sar_digest: a.sar_digest,
        direction: Direction::Request,
        card_id,
        provider: provider(),
        sdi_digest: sha256(&[app]),
        sdi_der: vec![0x30, app],
        object_der: a.sar_der.clone(),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
}

fn notification(op: u8) -> NotificationRecord {
    NotificationRecord {
        operation_id: OperationId([op; 16]),
        provider: provider(),
        body: format!("{{\"operation\":{op}}}").into_bytes(),
        state: NotificationState::Pending,
        attempts: 0,
        next_attempt_at: NOW,
        lease_holder: None,
        lease_until: None,
        last_error: None,
        created_at: NOW,
        delivered_at: None,
    }
}

async fn applications(store: &dyn Store) {
    assert_eq!(
        store
            .insert_application(&application(1, 1, b"one"), b"one")
            .await
            .unwrap(),
        None
    );
    store
        .insert_application(&application(1, 3, b"three"), b"three")
        .await
        .unwrap();
    store
        .insert_application(&application(2, 1, b"other"), b"other")
        .await
        .unwrap();
    // Taken: nothing changes, the recorded one is returned.
    let again = store
        .insert_application(&application(1, 1, b"changed"), b"changed")
        .await
        .unwrap();
    assert_eq!(again, Some(application(1, 1, b"one")));
    assert_eq!(
        store.application(&aid(1), Some(1)).await.unwrap(),
        Some(application(1, 1, b"one"))
    );
    assert_eq!(
        store.application(&aid(1), None).await.unwrap(),
        Some(application(1, 3, b"three"))
    );
    assert_eq!(store.application(&aid(1), Some(2)).await.unwrap(), None);
    assert_eq!(store.application(&aid(9), None).await.unwrap(), None);
    let all = store.applications().await.unwrap();
    let keys: Vec<(ItemId, u32)> = all.iter().map(|a| (a.aid.clone(), a.version)).collect();
    assert_eq!(keys, vec![(aid(1), 1), (aid(1), 3), (aid(2), 1)]);
    assert_eq!(
        store.application_code(&aid(1), 3).await.unwrap(),
        Some(b"three".to_vec())
    );
    assert_eq!(store.application_code(&aid(1), 2).await.unwrap(), None);
}

async fn checks(store: &dyn Store, card_id: CardId) {
    let check = CheckRecord {
        nonce: Nonce::new(&[5; 16]).unwrap(),
        card_id,
        issued_at: NOW,
        expires_at: UnixTime(NOW.0 + 300),
        spent_at: None,
    };
    assert_eq!(
        store.insert_check(&check, 16, NOW).await.unwrap(),
        CheckInsert::Inserted
    );
    let err = store.insert_check(&check, 16, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateNonce { .. }), "{err}");
    let err = store
        .insert_check(
            &CheckRecord {
                nonce: Nonce::new(&[6; 16]).unwrap(),
                card_id: CardId([0xEE; 16]),
                ..check.clone()
            },
            16,
            NOW,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCard { .. }), "{err}");
    assert_eq!(
        store.check(&check.nonce).await.unwrap(),
        Some(check.clone())
    );
    // Only for its card, once.
    let other = CardId([0xEE; 16]);
    assert!(!store.spend_check(&check.nonce, &other, NOW).await.unwrap());
    assert!(store
        .spend_check(&check.nonce, &card_id, NOW)
        .await
        .unwrap());
    assert!(!store
        .spend_check(&check.nonce, &card_id, NOW)
        .await
        .unwrap());
    assert_eq!(
        store.check(&check.nonce).await.unwrap().unwrap().spent_at,
        Some(NOW)
    );
}

async fn downloads_and_attempts(store: &dyn Store, card_id: CardId) {
    let first = download(card_id, 1, 1);
    assert_eq!(
        store.open_download(&first, None).await.unwrap(),
        OpenOutcome::Opened
    );
    assert_eq!(
        store.open_download(&first, None).await.unwrap(),
        OpenOutcome::Exists(Box::new(first.clone()))
    );
    // One open operation per card and application.
    assert_eq!(
        store
            .open_download(&download(card_id, 2, 1), None)
            .await
            .unwrap(),
        OpenOutcome::InProgress(first.operation_id)
    );
    assert_eq!(
        store
            .open_download(&download(card_id, 3, 2), None)
            .await
            .unwrap(),
        OpenOutcome::Opened
    );
    assert_eq!(
        store.download(&first.operation_id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.download(&OperationId([9; 16])).await.unwrap(), None);
    let open = store
        .downloads(Some(&card_id), Some(DownloadState::Opened))
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    assert!(store
        .downloads(None, Some(DownloadState::Installed))
        .await
        .unwrap()
        .is_empty());

    // Attempts: one per challenge; a number taken by another challenge says so.
    let one = attempt(1, 1, 0x21);
    assert_eq!(
        store
            .insert_attempt(&one, &sar_record(card_id, &one, 1))
            .await
            .unwrap(),
        AttemptOutcome::Inserted
    );
    let same_challenge = AttemptRecord {
        attempt: 2,
        sar_digest: sha256(b"another SAR"),
        ..one.clone()
    };
    assert_eq!(
        store
            .insert_attempt(&same_challenge, &sar_record(card_id, &same_challenge, 1))
            .await
            .unwrap(),
        AttemptOutcome::SameChallenge(one.clone())
    );
    let same_number = attempt(1, 1, 0x22);
    assert_eq!(
        store
            .insert_attempt(&same_number, &sar_record(card_id, &same_number, 1))
            .await
            .unwrap(),
        AttemptOutcome::NumberTaken
    );
    let two = attempt(1, 2, 0x22);
    store
        .insert_attempt(&two, &sar_record(card_id, &two, 1))
        .await
        .unwrap();
    assert_eq!(
        store.attempts(&first.operation_id).await.unwrap(),
        vec![one.clone(), two.clone()]
    );
    // The SAR's SDI is known for receipts.
    assert_eq!(
        store.sdi_by_digest(&sha256(&[1])).await.unwrap(),
        Some(vec![0x30, 1])
    );
    // The first SA recorded wins.
    let sa = sha256(b"sa 1");
    let recorded = store
        .set_attempt_sa(
            &first.operation_id,
            1,
            b"sa one",
            &sa,
            UnixTime(NOW.0 + 600),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.sa_der.as_deref(), recorded.sa_digest),
        (Some(&b"sa one"[..]), Some(sa))
    );
    let again = store
        .set_attempt_sa(&first.operation_id, 1, b"sa other", &sha256(b"other"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, recorded);
    assert_eq!(store.attempt_by_sa(&sa).await.unwrap(), Some(recorded));
    assert_eq!(store.attempt_by_sa(&sha256(b"none")).await.unwrap(), None);
    assert_eq!(
        store
            .set_attempt_sa(&first.operation_id, 7, b"x", &sha256(b"x"), NOW)
            .await
            .unwrap(),
        None
    );
}

async fn receipt_installs(store: &dyn Store, card_id: CardId) {
    let op = OperationId([1; 16]);
    let item = ListedItem {
        item_id: aid(1),
        version: 1,
        size: 3,
        data_digest: sha256(b"one"),
        owner: provider(),
        policy: Policy::NONE,
    };
    let append = |counter: u64, expected_len: u64, completes| ReceiptAppend {
        card_id,
        expected_len,
        counter,
        receipt_digest: sha256(&[0xCC, counter as u8]),
        entry_der: vec![0x30, counter as u8],
        recorded_at: UnixTime(NOW.0 + counter),
        change: ItemChange::Put(item.clone()),
        completes,
    };
    let completion = DownloadCompletion {
        operation_id: op,
        notification: notification(1),
    };
    // A conflicting append changes nothing: no installation, no outbox row.
    assert_eq!(
        store
            .append_receipt(&append(1, 5, Some(completion.clone())))
            .await
            .unwrap(),
        AppendOutcome::Conflict
    );
    assert_eq!(store.notification(&op).await.unwrap(), None);
    assert_eq!(
        store.download(&op).await.unwrap().unwrap().state,
        DownloadState::Opened
    );
    assert_eq!(
        store
            .append_receipt(&append(1, 0, Some(completion.clone())))
            .await
            .unwrap(),
        AppendOutcome::Appended
    );
    let installed = store.download(&op).await.unwrap().unwrap();
    assert_eq!(
        (
            installed.state,
            installed.receipt_counter,
            installed.installed_at
        ),
        (DownloadState::Installed, Some(1), Some(UnixTime(NOW.0 + 1)))
    );
    assert_eq!(
        store.notification(&op).await.unwrap(),
        Some(notification(1))
    );
    // Another receipt naming the same operation: one row, the first installation stands.
    let mut second = notification(1);
    second.body = b"{}".to_vec();
    store
        .append_receipt(&append(
            2,
            1,
            Some(DownloadCompletion {
                operation_id: op,
                notification: second,
            }),
        ))
        .await
        .unwrap();
    assert_eq!(
        store.notification(&op).await.unwrap(),
        Some(notification(1))
    );
    assert_eq!(
        store.download(&op).await.unwrap().unwrap().receipt_counter,
        Some(1)
    );
    // Installed, the card and application may open another operation.
    assert_eq!(
        store
            .open_download(&download(card_id, 4, 1), None)
            .await
            .unwrap(),
        OpenOutcome::Opened
    );
}

async fn outbox_leases(store: &dyn Store) {
    let op = OperationId([1; 16]);
    let lease = UnixTime(NOW.0 + 30);
    assert_eq!(store.due_notifications(NOW, 10).await.unwrap(), vec![op]);
    assert_eq!(
        store
            .due_notifications(UnixTime(NOW.0 - 1), 10)
            .await
            .unwrap(),
        Vec::<OperationId>::new()
    );
    // Two claims at once: one wins.
    let (a, b) = tokio::join!(
        store.claim_notification(&op, "a", NOW, lease),
        store.claim_notification(&op, "b", NOW, lease)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "{a:?} {b:?}");
    let (winner, loser) = if a.is_some() { ("a", "b") } else { ("b", "a") };
    let claimed = store.notification(&op).await.unwrap().unwrap();
    assert_eq!(
        (claimed.lease_holder.as_deref(), claimed.lease_until),
        (Some(winner), Some(lease))
    );
    assert!(store.due_notifications(NOW, 10).await.unwrap().is_empty());
    // The lease ends: the other takes it; the first's late outcome is refused.
    let later = UnixTime(lease.0 + 1);
    assert!(store
        .claim_notification(&op, loser, later, UnixTime(later.0 + 30))
        .await
        .unwrap()
        .is_some());
    let failed = SendOutcome::Failed {
        state: NotificationState::Pending,
        next_attempt_at: UnixTime(later.0 + 2),
        error: "no answer".into(),
    };
    assert!(!store
        .finish_notification(&op, winner, &failed)
        .await
        .unwrap());
    assert!(store
        .finish_notification(&op, loser, &failed)
        .await
        .unwrap());
    let row = store.notification(&op).await.unwrap().unwrap();
    assert_eq!(
        (
            row.state,
            row.attempts,
            row.next_attempt_at,
            row.lease_holder.clone()
        ),
        (NotificationState::Pending, 1, UnixTime(later.0 + 2), None)
    );
    assert_eq!(row.last_error.as_deref(), Some("no answer"));
    // Not due before its time; an operator's retry makes it due.
    assert!(store.due_notifications(later, 10).await.unwrap().is_empty());
    assert!(store
        .claim_notification(&op, "a", later, lease)
        .await
        .unwrap()
        .is_none());
    let retried = store.retry_notification(&op, later).await.unwrap().unwrap();
    assert_eq!(retried.next_attempt_at, later);
    assert!(store
        .claim_notification(&op, "a", later, UnixTime(later.0 + 30))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .finish_notification(&op, "a", &SendOutcome::Delivered { at: later })
        .await
        .unwrap());
    let row = store.notification(&op).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.delivered_at, row.last_error),
        (NotificationState::Delivered, 2, Some(later), None)
    );
    // Delivered: never due, never claimed, no retry.
    let far = UnixTime(later.0 + 100_000);
    assert!(store.due_notifications(far, 10).await.unwrap().is_empty());
    assert!(store
        .claim_notification(&op, "b", far, UnixTime(far.0 + 30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.retry_notification(&op, far).await.unwrap(), None);
    assert_eq!(
        store
            .notifications(Some(NotificationState::Delivered))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .notifications(Some(NotificationState::Stuck))
        .await
        .unwrap()
        .is_empty());
}

/// An open operation whose download application expired is marked expired in the
/// transaction that opens its replacement (once: a second replacer finds the first's open),
/// and a receipt for it still installs it and queues its notification.
async fn expired_replaced(store: &dyn Store, card_id: CardId) {
    // Operation 3 is open for application 2.
    let expired = OperationId([3; 16]);
    let replacement = download(card_id, 10, 2);
    assert_eq!(
        store
            .open_download(&replacement, Some(&expired))
            .await
            .unwrap(),
        OpenOutcome::Opened
    );
    assert_eq!(
        store.download(&expired).await.unwrap().unwrap().state,
        DownloadState::Expired
    );
    // A second replacer of the same operation: the replacement is open, nothing changes.
    assert_eq!(
        store
            .open_download(&download(card_id, 11, 2), Some(&expired))
            .await
            .unwrap(),
        OpenOutcome::InProgress(replacement.operation_id)
    );
    assert_eq!(store.download(&OperationId([11; 16])).await.unwrap(), None);
    // Naming an operation of another application expires nothing; refused, nothing changes.
    let of_application_1 = OperationId([4; 16]);
    let before = store.download(&of_application_1).await.unwrap();
    assert_eq!(
        before.as_ref().map(|d| d.state),
        Some(DownloadState::Opened)
    );
    assert_eq!(
        store
            .open_download(&download(card_id, 12, 2), Some(&of_application_1))
            .await
            .unwrap(),
        OpenOutcome::InProgress(replacement.operation_id)
    );
    assert_eq!(store.download(&of_application_1).await.unwrap(), before);
    assert_eq!(
        store
            .downloads(Some(&card_id), Some(DownloadState::Expired))
            .await
            .unwrap()
            .len(),
        1
    );
    // The card installed under one of its attempts after all: installed, notification queued.
    let view = store.card_view(&card_id).await.unwrap().unwrap();
    let counter = view.last_counter + 1;
    let appended = store
        .append_receipt(&ReceiptAppend {
            card_id,
            expected_len: view.ledger_len,
            counter,
            receipt_digest: sha256(b"receipt of the expired operation"),
            entry_der: vec![0x30, 0x33],
            recorded_at: UnixTime(NOW.0 + 60),
            change: ItemChange::Put(ListedItem {
                item_id: aid(2),
                version: 1,
                size: 3,
                data_digest: sha256(b"two"),
                owner: provider(),
                policy: Policy::NONE,
            }),
            completes: Some(DownloadCompletion {
                operation_id: expired,
                notification: notification(3),
            }),
        })
        .await
        .unwrap();
    assert_eq!(appended, AppendOutcome::Appended);
    let installed = store.download(&expired).await.unwrap().unwrap();
    assert_eq!(
        (installed.state, installed.receipt_counter),
        (DownloadState::Installed, Some(counter))
    );
    assert_eq!(
        store.notification(&expired).await.unwrap(),
        Some(notification(3))
    );
}

/// At most `max_open` nonces unspent and unexpired per card (spent and expired ones do not
/// count); each insert deletes nonces of any card expired before `purge_before`.
async fn checks_bounded(store: &dyn Store) {
    let card_id = registered_card(store, 7).await;
    let check = |n: u8, at: u64| CheckRecord {
        nonce: Nonce::new(&[0x70 + n; 16]).unwrap(),
        card_id,
        issued_at: UnixTime(NOW.0 + at),
        expires_at: UnixTime(NOW.0 + at + 300),
        spent_at: None,
    };
    let long_ago = UnixTime(0);
    for n in 0..3 {
        assert_eq!(
            store
                .insert_check(&check(n, u64::from(n)), 3, long_ago)
                .await
                .unwrap(),
            CheckInsert::Inserted
        );
    }
    assert_eq!(
        store.insert_check(&check(3, 3), 3, long_ago).await.unwrap(),
        CheckInsert::TooMany {
            open: 3,
            next_expiry: UnixTime(NOW.0 + 300)
        }
    );
    assert_eq!(store.check(&check(3, 3).nonce).await.unwrap(), None);
    // A spent nonce is not open.
    assert!(store
        .spend_check(&check(0, 0).nonce, &card_id, NOW)
        .await
        .unwrap());
    assert_eq!(
        store.insert_check(&check(3, 3), 3, long_ago).await.unwrap(),
        CheckInsert::Inserted
    );
    // Nor is an expired one: at NOW + 302, nonce 1 (until NOW + 301) is expired.
    assert_eq!(
        store
            .insert_check(&check(4, 302), 3, long_ago)
            .await
            .unwrap(),
        CheckInsert::Inserted
    );
    // The purge: every card's nonces expired before the bound go (card 1's [5; 16] too, spent
    // or not); the others stay.
    assert!(store
        .check(&Nonce::new(&[5; 16]).unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .insert_check(&check(5, 700), 3, UnixTime(NOW.0 + 302))
            .await
            .unwrap(),
        CheckInsert::Inserted
    );
    for gone in [
        check(0, 0).nonce,
        check(1, 1).nonce,
        Nonce::new(&[5; 16]).unwrap(),
    ] {
        assert_eq!(store.check(&gone).await.unwrap(), None, "{gone:?}");
    }
    for kept in [check(2, 2), check(3, 3), check(4, 302), check(5, 700)] {
        assert_eq!(store.check(&kept.nonce).await.unwrap(), Some(kept));
    }
}

async fn suite(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_conformance_download").await else {
        return;
    };
    let db = Db::open(&place.db_url).await.unwrap();
    let store = SqlStore::open(db.clone()).await.unwrap();
    let store: &dyn Store = &store;
    applications(store).await;
    let card_id = registered_card(store, 1).await;
    assert_eq!(
        store
            .registration(&card_id)
            .await
            .unwrap()
            .unwrap()
            .user_email,
        "alice@example.org"
    );
    checks(store, card_id).await;
    downloads_and_attempts(store, card_id).await;
    receipt_installs(store, card_id).await;
    outbox_leases(store).await;
    expired_replaced(store, card_id).await;
    checks_bounded(store).await;
    db.close().await;
    place.finish().await;
}

#[tokio::test]
async fn conformance_download_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn conformance_download_postgres() {
    suite(Backend::Postgres).await;
}
