//! The store conformance suite: one set of checks over `&dyn Store`, run on SQLite always and
//! on PostgreSQL when `TEST_POSTGRES_URL` is set (each run on a fresh database).

use crypto::{sha256, Digest};
use issuer::store::{
    AppendOutcome, AuthorizationRecord, CardRecord, ChallengeRecord, CrlRecord, CrlSigner,
    DelegationRecord, Direction, ItemChange, ProviderPolicy, ProviderStatus, ProviderUrl,
    RcRevocation, ReceiptAppend, RegisterOutcome, RegistrationRecord, RevocationReason,
    RevokeOutcome,
};
use issuer::{SqlStore, Store, StoreError};
use pki::{CardId, PartyId, UnixTime};
use protocol::{Challenge, ItemId, LedgerEntry, ListedItem, Policy};
use server_kit::Db;

use crate::support::{Backend, Place, NOW};

fn card(n: u8) -> CardRecord {
    CardRecord {
        card_id: CardId([n; 16]),
        sk_wrapped: vec![n; 60],
        sk_version: 1,
        pin_salt: [n; 16],
        pin_try_limit: 3,
        issuer_authenticator: vec![0xA0, n],
        capacity: 4096,
        personalised_at: NOW,
        personalised_by: "olga".into(),
    }
}

fn challenge(card: u8, n: u8) -> ChallengeRecord {
    ChallengeRecord {
        challenge: Challenge([n; 16]),
        card_id: CardId([card; 16]),
        issued_at: NOW,
        expires_at: UnixTime(NOW.0 + 600),
        spent_at: None,
    }
}

fn registration(card: u8, challenge: u8, serial: u64) -> RegistrationRecord {
    RegistrationRecord {
        card_id: CardId([card; 16]),
        serial,
        challenge: Challenge([challenge; 16]),
        rc_der: vec![0x30, card, challenge],
        rc_digest: sha256(&[card, challenge]),
        user_id: "user-1".into(),
        user_name: "Alice".into(),
        user_email: "alice@example.org".into(),
        registered_at: UnixTime(NOW.0 + 5),
    }
}

fn item(id: &[u8], size: u32) -> ListedItem {
    ListedItem {
        item_id: ItemId::new(id).unwrap(),
        version: 2,
        size,
        data_digest: sha256(id),
        owner: PartyId::new("provider-1").unwrap(),
        policy: Policy::NOT_DELETABLE,
    }
}

fn append(card: u8, expected_len: u64, counter: u64, change: ItemChange) -> ReceiptAppend {
    ReceiptAppend {
        card_id: CardId([card; 16]),
        expected_len,
        counter,
        receipt_digest: sha256(&[card, counter as u8]),
        entry_der: vec![0x30, card, expected_len as u8],
        recorded_at: NOW,
        change,
        completes: None,
    }
}

async fn registry(store: &dyn Store) {
    store.insert_card(&card(1)).await.unwrap();
    store.insert_card(&card(2)).await.unwrap();
    let err = store.insert_card(&card(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateCard { .. }), "{err}");
    assert_eq!(store.card(&CardId([1; 16])).await.unwrap(), Some(card(1)));
    assert_eq!(store.card(&CardId([9; 16])).await.unwrap(), None);

    store.insert_challenge(&challenge(1, 0x11)).await.unwrap();
    store.insert_challenge(&challenge(1, 0x12)).await.unwrap();
    let err = store
        .insert_challenge(&challenge(2, 0x11))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateChallenge { .. }),
        "{err}"
    );
    let err = store
        .insert_challenge(&challenge(9, 0x13))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCard { .. }), "{err}");
    assert_eq!(
        store.challenge(&Challenge([0x11; 16])).await.unwrap(),
        Some(challenge(1, 0x11))
    );
}

async fn registration_spends_its_challenge(store: &dyn Store) {
    let serials = [
        store.next_rc_serial().await.unwrap(),
        store.next_rc_serial().await.unwrap(),
    ];
    assert_eq!(serials, [1, 2]);
    // Another card's challenge: nothing happens.
    assert_eq!(
        store.register(&registration(2, 0x11, 1)).await.unwrap(),
        RegisterOutcome::ChallengeSpent
    );
    assert_eq!(store.registration(&CardId([2; 16])).await.unwrap(), None);
    assert_eq!(
        store.register(&registration(1, 0x11, 1)).await.unwrap(),
        RegisterOutcome::Registered
    );
    assert_eq!(
        store.registration(&CardId([1; 16])).await.unwrap(),
        Some(registration(1, 0x11, 1))
    );
    let spent = store
        .challenge(&Challenge([0x11; 16]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spent.spent_at, Some(UnixTime(NOW.0 + 5)));
    // The same challenge again; a fresh challenge for a registered card: nothing changes.
    assert_eq!(
        store.register(&registration(1, 0x11, 2)).await.unwrap(),
        RegisterOutcome::ChallengeSpent
    );
    assert_eq!(
        store.register(&registration(1, 0x12, 2)).await.unwrap(),
        RegisterOutcome::AlreadyRegistered
    );
    // ... and the rolled-back attempt left the second challenge unspent.
    let unspent = store
        .challenge(&Challenge([0x12; 16]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unspent.spent_at, None);
    // A registered card has an empty view.
    let view = store.card_view(&CardId([1; 16])).await.unwrap().unwrap();
    assert_eq!(
        (
            view.last_counter,
            view.ledger_len,
            view.head,
            view.items.len()
        ),
        (0, 0, LedgerEntry::GENESIS_PREV, 0)
    );
    assert_eq!(store.card_view(&CardId([2; 16])).await.unwrap(), None);
}

async fn providers_and_authorizations(store: &dyn Store) {
    let provider = PartyId::new("provider-1").unwrap();
    assert_eq!(store.provider(&provider).await.unwrap(), None);
    let mut policy = ProviderPolicy {
        provider: provider.clone(),
        status: ProviderStatus::Allowed,
        quota_bytes: 100,
        updated_at: NOW,
        url: Some(ProviderUrl::parse("http://127.0.0.1:8443/api").unwrap()),
    };
    store.put_provider(&policy).await.unwrap();
    assert_eq!(
        store.provider(&provider).await.unwrap().as_ref(),
        Some(&policy)
    );
    // Replaced whole, the URL included.
    policy.status = ProviderStatus::Blocked;
    policy.quota_bytes = 7;
    policy.url = None;
    store.put_provider(&policy).await.unwrap();
    assert_eq!(store.provider(&provider).await.unwrap(), Some(policy));

    let authorization = AuthorizationRecord {
        sar_digest: sha256(b"sar"),
        direction: Direction::Grant,
        card_id: CardId([1; 16]),
        provider: provider.clone(),
        sdi_digest: sha256(b"sdi"),
        sdi_der: b"sdi der".to_vec(),
        object_der: b"sa der".to_vec(),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    };
    assert!(store.insert_authorization(&authorization).await.unwrap());
    // Single-use: the same SAR again, whatever else differs.
    let again = AuthorizationRecord {
        direction: Direction::Request,
        object_der: b"other".to_vec(),
        ..authorization.clone()
    };
    assert!(!store.insert_authorization(&again).await.unwrap());
    assert_eq!(
        store.sdi_by_digest(&sha256(b"sdi")).await.unwrap(),
        Some(b"sdi der".to_vec())
    );
    assert_eq!(store.sdi_by_digest(&Digest([0; 32])).await.unwrap(), None);

    let delegation = DelegationRecord {
        digest: sha256(b"delegation"),
        provider,
        card_id: None,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 10),
        der: b"delegation der".to_vec(),
    };
    store.insert_delegation(&delegation).await.unwrap();
    let err = store.insert_delegation(&delegation).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateDelegation { .. }),
        "{err}"
    );
}

async fn receipts_append_once_in_order(store: &dyn Store) {
    let card_id = CardId([1; 16]);
    let first = append(1, 0, 1, ItemChange::Put(item(b"a", 10)));
    assert_eq!(
        store.append_receipt(&first).await.unwrap(),
        AppendOutcome::Appended
    );
    // A writer that read the old length loses and changes nothing.
    let stale = append(1, 0, 2, ItemChange::Put(item(b"b", 20)));
    assert_eq!(
        store.append_receipt(&stale).await.unwrap(),
        AppendOutcome::Conflict
    );
    // The same receipt at the next position: refused by its digest, rolled back.
    let duplicate = ReceiptAppend {
        expected_len: 1,
        counter: 2,
        ..first.clone()
    };
    assert_eq!(
        store.append_receipt(&duplicate).await.unwrap(),
        AppendOutcome::Conflict
    );
    let second = append(1, 1, 2, ItemChange::Put(item(b"b", 20)));
    assert_eq!(
        store.append_receipt(&second).await.unwrap(),
        AppendOutcome::Appended
    );
    let replace = append(1, 2, 3, ItemChange::Put(item(b"a", 5)));
    assert_eq!(
        store.append_receipt(&replace).await.unwrap(),
        AppendOutcome::Appended
    );
    let remove = append(1, 3, 5, ItemChange::Remove(ItemId::new(b"b").unwrap()));
    assert_eq!(
        store.append_receipt(&remove).await.unwrap(),
        AppendOutcome::Appended
    );

    let view = store.card_view(&card_id).await.unwrap().unwrap();
    assert_eq!((view.last_counter, view.ledger_len), (5, 4));
    assert_eq!(view.head, sha256(&remove.entry_der));
    assert_eq!(view.items, vec![item(b"a", 5)]);
    assert_eq!(
        store.ledger(&card_id).await.unwrap(),
        vec![
            first.entry_der.clone(),
            second.entry_der.clone(),
            replace.entry_der.clone(),
            remove.entry_der.clone()
        ]
    );
    let found = store
        .ledger_entry_by_receipt(&second.receipt_digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.card_id, found.seq, found.counter), (card_id, 1, 2));
    assert_eq!(found.entry_der, second.entry_der);
    assert_eq!(
        store
            .ledger_entry_by_receipt(&Digest([0; 32]))
            .await
            .unwrap(),
        None
    );
    // An unregistered card has no view to move.
    let elsewhere = append(2, 0, 1, ItemChange::Put(item(b"a", 1)));
    assert_eq!(
        store.append_receipt(&elsewhere).await.unwrap(),
        AppendOutcome::Conflict
    );
    assert!(store.ledger(&CardId([2; 16])).await.unwrap().is_empty());
}

/// A stand-in CRL signer: the "DER" names the number and the serials, so what the store
/// recorded can be compared with what it was asked to sign.
struct ListingSigner;

impl CrlSigner for ListingSigner {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, pki::PkiError> {
        Ok(CrlRecord {
            number,
            this_update: UnixTime(NOW.0 + number),
            next_update: UnixTime(NOW.0 + number + 100),
            der: format!("{number}:{revoked:?}").into_bytes(),
        })
    }
}

/// A signer that numbers CRLs itself: the store must refuse what it signs.
struct RenumberingSigner;

impl CrlSigner for RenumberingSigner {
    fn sign(&self, number: u64, _revoked: &[u64]) -> Result<CrlRecord, pki::PkiError> {
        Ok(CrlRecord {
            number: number + 10,
            this_update: NOW,
            next_update: NOW,
            der: Vec::new(),
        })
    }
}

/// Runs after `registration_spends_its_challenge`: card 1 is registered with serial 1, card 2
/// is in the registry without an RC.
async fn revocations_and_crls(store: &dyn Store) {
    let one = CardId([1; 16]);
    assert_eq!(store.current_crl().await.unwrap(), None);
    assert_eq!(store.rc_revocation(&one).await.unwrap(), None);
    // The first CRL, on demand (nothing replaced yet); a second caller that saw none gets it.
    let first = store.reissue_crl(0, &ListingSigner).await.unwrap();
    assert_eq!(
        (first.number, first.der.as_slice()),
        (1, b"1:[]".as_slice())
    );
    assert_eq!(store.reissue_crl(0, &ListingSigner).await.unwrap(), first);
    assert_eq!(store.current_crl().await.unwrap(), Some(first.clone()));

    // Unregistered: nothing happens, no number is used.
    assert_eq!(
        store
            .revoke_rc(
                &CardId([2; 16]),
                RevocationReason::KeyCompromise,
                NOW,
                "olga",
                &ListingSigner
            )
            .await
            .unwrap(),
        RevokeOutcome::NotRegistered
    );
    let revocation = RcRevocation {
        card_id: one,
        serial: 1,
        reason: RevocationReason::KeyCompromise,
        revoked_at: UnixTime(NOW.0 + 9),
        revoked_by: "olga".into(),
    };
    let outcome = store
        .revoke_rc(
            &one,
            RevocationReason::KeyCompromise,
            UnixTime(NOW.0 + 9),
            "olga",
            &ListingSigner,
        )
        .await
        .unwrap();
    let RevokeOutcome::Revoked {
        revocation: got,
        crl,
    } = outcome
    else {
        panic!("expected a revocation, got {outcome:?}");
    };
    assert_eq!(got, revocation);
    assert_eq!((crl.number, crl.der.as_slice()), (2, b"2:[1]".as_slice()));
    assert_eq!(store.current_crl().await.unwrap(), Some(crl.clone()));
    assert_eq!(
        store.rc_revocation(&one).await.unwrap(),
        Some(revocation.clone())
    );
    // Again, whatever the reason: the first revocation stands, no CRL is signed.
    assert_eq!(
        store
            .revoke_rc(
                &one,
                RevocationReason::Superseded,
                NOW,
                "oskar",
                &ListingSigner
            )
            .await
            .unwrap(),
        RevokeOutcome::AlreadyRevoked {
            existing: revocation
        }
    );
    assert_eq!(store.current_crl().await.unwrap(), Some(crl.clone()));
    // Re-signing from a stale number returns the newest; from the newest signs the next.
    assert_eq!(store.reissue_crl(1, &ListingSigner).await.unwrap(), crl);
    let third = store.reissue_crl(2, &ListingSigner).await.unwrap();
    assert_eq!(
        (third.number, third.der.as_slice()),
        (3, b"3:[1]".as_slice())
    );
    // A signer that numbers CRLs itself is refused and nothing is recorded.
    assert!(store.reissue_crl(3, &RenumberingSigner).await.is_err());
    assert_eq!(store.current_crl().await.unwrap(), Some(third));
}

async fn suite(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_conformance").await else {
        return;
    };
    let db = Db::open(&place.db_url).await.unwrap();
    let store = SqlStore::open(db.clone()).await.unwrap();
    let store: &dyn Store = &store;
    registry(store).await;
    registration_spends_its_challenge(store).await;
    revocations_and_crls(store).await;
    providers_and_authorizations(store).await;
    receipts_append_once_in_order(store).await;
    db.close().await;
    place.finish().await;
}

#[tokio::test]
async fn conformance_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn conformance_postgres() {
    suite(Backend::Postgres).await;
}
