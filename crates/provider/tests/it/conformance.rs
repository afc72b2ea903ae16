//! The store conformance suite over `&dyn Store`: the same checks on SQLite and PostgreSQL.

use crypto::{sha256, Digest};
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, Policy};
use provider::store::{
    ConsentKind, ConsentRecord, DelegationRecord, EntrySigner, ItemRecord, NewReceipt,
    PublishOutcome, ReceiptOutcome, RegistrarSdciRecord, ViewChange, ViewItem,
};
use provider::{SqlStore, Store, StoreError};

use crate::support::{Backend, Place};

/// Signs nothing: entries are `seq || prev || view length`, enough to check what the store
/// passes and keeps.
struct FakeSigner;

impl EntrySigner for FakeSigner {
    fn sign(&self, seq: u64, prev: Digest, view: &[ViewItem]) -> Result<Vec<u8>, StoreError> {
        let mut entry = seq.to_be_bytes().to_vec();
        entry.extend_from_slice(&prev.0);
        entry.push(view.len() as u8);
        Ok(entry)
    }
}

fn item(id: u8, data: &[u8]) -> ItemRecord {
    ItemRecord {
        item_id: ItemId::new(&[id]).unwrap(),
        version: 1,
        size: data.len() as u32,
        data_digest: sha256(data),
        policy: Policy::NONE,
        published_at: UnixTime(100),
    }
}

fn view(id: u8) -> ViewItem {
    let i = item(id, &[id]);
    ViewItem {
        item_id: i.item_id,
        version: i.version,
        size: i.size,
        data_digest: i.data_digest,
        policy: i.policy,
    }
}

fn receipt(card: CardId, counter: u64, change: ViewChange) -> NewReceipt {
    NewReceipt {
        card_id: card,
        rc_der: b"rc".to_vec(),
        receipt_der: counter.to_be_bytes().to_vec(),
        counter,
        change,
        recorded_at: UnixTime(200),
    }
}

async fn suite(store: &dyn Store) {
    // Catalog: publish, idempotent repeat, conflicting repeat, latest version.
    assert_eq!(
        store.publish_item(&item(1, b"one"), b"one").await.unwrap(),
        PublishOutcome::Published
    );
    assert!(matches!(
        store.publish_item(&item(1, b"one"), b"one").await.unwrap(),
        PublishOutcome::AlreadyPublished { .. }
    ));
    assert!(matches!(
        store.publish_item(&item(1, b"uno"), b"uno").await.unwrap(),
        PublishOutcome::Conflict { .. }
    ));
    let mut v2 = item(1, b"two");
    v2.version = 2;
    store.publish_item(&v2, b"two").await.unwrap();
    let id = ItemId::new(&[1]).unwrap();
    assert_eq!(store.item(&id, None).await.unwrap(), Some(v2.clone()));
    assert_eq!(
        store.item(&id, Some(1)).await.unwrap(),
        Some(item(1, b"one"))
    );
    assert_eq!(
        store.item_data(&id, 2).await.unwrap(),
        Some(b"two".to_vec())
    );
    assert_eq!(store.items().await.unwrap().len(), 2);
    assert_eq!(
        store.item(&ItemId::new(&[9]).unwrap(), None).await.unwrap(),
        None
    );

    // Consents: single-use on their digest.
    let card = CardId([7; 16]);
    let consent = ConsentRecord {
        consent_digest: sha256(b"sar"),
        kind: ConsentKind::Grant,
        card_id: card,
        item_id: id.clone(),
        version: 1,
        sdi_digest: sha256(b"sdi"),
        sdi_der: b"sdi".to_vec(),
        signed_der: b"sa".to_vec(),
        created_at: UnixTime(150),
    };
    assert!(store.insert_consent(&consent).await.unwrap());
    assert!(!store.insert_consent(&consent).await.unwrap());
    assert_eq!(
        store.consent_for_sdi(&card, &sha256(b"sdi")).await.unwrap(),
        Some(consent.clone())
    );
    assert_eq!(
        store
            .consent_for_sdi(&CardId([8; 16]), &sha256(b"sdi"))
            .await
            .unwrap(),
        None
    );
    assert!(store.has_consent_for_item(&card, &id, 1).await.unwrap());
    assert!(!store.has_consent_for_item(&card, &id, 2).await.unwrap());

    // Receipts: counters strictly increase (gaps allowed), repeats are idempotent, the view
    // follows, the ledger chains.
    assert_eq!(store.card_rc(&card).await.unwrap(), None);
    let first = store
        .record_receipt(&receipt(card, 3, ViewChange::Stored(view(1))), &FakeSigner)
        .await
        .unwrap();
    let ReceiptOutcome::Recorded(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!((first.seq, first.counter), (0, 3));
    assert_eq!(&first.entry_der[8..40], &[0u8; 32]);
    assert_eq!(
        store
            .record_receipt(&receipt(card, 3, ViewChange::Stored(view(1))), &FakeSigner)
            .await
            .unwrap(),
        ReceiptOutcome::Repeated(first.clone())
    );
    assert_eq!(
        store
            .record_receipt(&receipt(card, 2, ViewChange::Stored(view(2))), &FakeSigner)
            .await
            .unwrap(),
        ReceiptOutcome::CounterNotIncreasing { last: 3 }
    );
    let mut other_rc = receipt(card, 9, ViewChange::Stored(view(2)));
    other_rc.rc_der = b"another rc".to_vec();
    assert_eq!(
        store.record_receipt(&other_rc, &FakeSigner).await.unwrap(),
        ReceiptOutcome::RcMismatch
    );
    let ReceiptOutcome::Recorded(second) = store
        .record_receipt(&receipt(card, 7, ViewChange::Stored(view(2))), &FakeSigner)
        .await
        .unwrap()
    else {
        panic!("second receipt not recorded")
    };
    assert_eq!(second.seq, 1);
    assert_eq!(&second.entry_der[8..40], &sha256(&first.entry_der).0);
    assert_eq!(second.entry_der[40], 2);
    assert_eq!(store.contents(&card).await.unwrap(), vec![view(1), view(2)]);
    assert_eq!(
        store.members(&ItemId::new(&[2]).unwrap()).await.unwrap(),
        vec![(card, 1)]
    );
    store
        .record_receipt(
            &receipt(card, 8, ViewChange::Deleted(ItemId::new(&[1]).unwrap())),
            &FakeSigner,
        )
        .await
        .unwrap();
    assert_eq!(store.contents(&card).await.unwrap(), vec![view(2)]);
    assert_eq!(store.members(&id).await.unwrap(), vec![]);
    let ledger = store.ledger(&card).await.unwrap();
    assert_eq!(
        ledger
            .iter()
            .map(|e| (e.seq, e.counter))
            .collect::<Vec<_>>(),
        [(0, 3), (1, 7), (2, 8)]
    );
    assert_eq!(store.card_rc(&card).await.unwrap(), Some(b"rc".to_vec()));

    // Delegations: kept once per digest; those for a card are the card's own first, then any
    // card's, longest-lived first, unexpired only.
    let issuer = PartyId::new("issuer-1").unwrap();
    let delegation = |name: &[u8], card_id: Option<CardId>, not_after: u64| DelegationRecord {
        digest: sha256(name),
        issuer: issuer.clone(),
        card_id,
        not_after: UnixTime(not_after),
        delegation_der: name.to_vec(),
        stored_at: UnixTime(not_after / 10),
    };
    let any_short = delegation(b"any, short", None, 1_000);
    let any_long = delegation(b"any, long", None, 5_000);
    let own = delegation(b"own", Some(card), 2_000);
    let other = delegation(b"other card", Some(CardId([8; 16])), 9_000);
    let expired = delegation(b"expired", Some(card), 400);
    for d in [&any_short, &any_long, &own, &other, &expired] {
        assert!(store.insert_delegation(d).await.unwrap());
    }
    assert!(!store.insert_delegation(&own).await.unwrap());
    assert_eq!(
        store.delegations().await.unwrap(),
        vec![
            expired.clone(),
            any_short.clone(),
            own.clone(),
            any_long.clone(),
            other.clone()
        ]
    );
    assert_eq!(
        store
            .delegations_for_card(&card, UnixTime(500))
            .await
            .unwrap(),
        vec![own.clone(), any_long.clone(), any_short.clone()]
    );
    assert_eq!(
        store
            .delegations_for_card(&card, UnixTime(1_001))
            .await
            .unwrap(),
        vec![own, any_long]
    );
    assert_eq!(
        store
            .delegations_for_card(&CardId([9; 16]), UnixTime(0))
            .await
            .unwrap(),
        vec![delegation(b"any, long", None, 5_000), any_short]
    );

    // SDCI's: one per SDI digest, the last put wins.
    let registrar = PartyId::new("data-registrar").unwrap();
    let sdci = |sdi: &[u8], der: &[u8], at: u64| RegistrarSdciRecord {
        sdi_digest: sha256(sdi),
        registrar: registrar.clone(),
        sdci_der: der.to_vec(),
        obtained_at: UnixTime(at),
    };
    assert_eq!(store.registrar_sdci(&sha256(b"sdi a")).await.unwrap(), None);
    store
        .put_registrar_sdci(&sdci(b"sdi a", b"first", 10))
        .await
        .unwrap();
    store
        .put_registrar_sdci(&sdci(b"sdi b", b"other", 11))
        .await
        .unwrap();
    assert_eq!(
        store.registrar_sdci(&sha256(b"sdi a")).await.unwrap(),
        Some(sdci(b"sdi a", b"first", 10))
    );
    store
        .put_registrar_sdci(&sdci(b"sdi a", b"second", 12))
        .await
        .unwrap();
    assert_eq!(
        store.registrar_sdci(&sha256(b"sdi a")).await.unwrap(),
        Some(sdci(b"sdi a", b"second", 12))
    );
    assert_eq!(
        store.registrar_sdci(&sha256(b"sdi b")).await.unwrap(),
        Some(sdci(b"sdi b", b"other", 11))
    );
}

async fn conformance(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_conformance").await else {
        return;
    };
    let db = server_kit::Db::open(&place.db_url).await.unwrap();
    let store = SqlStore::open(db.clone()).await.unwrap();
    suite(&store).await;
    // Reopening migrates nothing and keeps the state.
    let again = SqlStore::open(db.clone()).await.unwrap();
    assert_eq!(again.ledger(&CardId([7; 16])).await.unwrap().len(), 3);
    db.close().await;
    place.finish().await;
}

#[tokio::test]
async fn conformance_sqlite() {
    conformance(Backend::Sqlite).await;
}

#[tokio::test]
async fn conformance_postgres() {
    conformance(Backend::Postgres).await;
}
