//! The store conformance suite over `&dyn Store`: the same checks on SQLite and PostgreSQL.

use crypto::{sha256, Digest};
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, OperationId, Policy, ServiceId};
use provider::store::{
    ConsentKind, ConsentRecord, DelegationRecord, DownloadGrantRecord, DownloadRecord,
    DownloadStage, EntrySigner, GrantOutcome, ItemRecord, MemberOutcome, MemberRecord,
    MemberUserRecord, NewDownloadGrant, NewReceipt, OpenOutcome, PublishOutcome, ReceiptOutcome,
    RegistrarSdciRecord, ServiceOutcome, ServiceRecord, TermsOutcome, ViewChange, ViewItem,
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

fn service(id: &str, name: &str) -> ServiceRecord {
    ServiceRecord {
        service_id: ServiceId::new(id).unwrap(),
        name: name.to_string(),
        description: "d".to_string(),
        issuer: PartyId::new("issuer-1").unwrap(),
        aid: ItemId::new(&[0xA0, 0, 0, 0, 1]).unwrap(),
        version: 1,
        size: 10,
        digest: sha256(b"code"),
        policy: Policy::NONE,
        application_name: "App".to_string(),
        created_at: UnixTime(100),
    }
}

fn download(n: u8, card: CardId, service_id: &str) -> DownloadRecord {
    DownloadRecord {
        operation_id: OperationId([n; 16]),
        card_id: card,
        issuer: PartyId::new("issuer-1").unwrap(),
        service_id: ServiceId::new(service_id).unwrap(),
        terms_digest: sha256(b"terms"),
        request_der: vec![n; 3],
        not_after: UnixTime(1900),
        stage: DownloadStage::Requested,
        created_at: UnixTime(100),
    }
}

fn download_grant(n: u8, sar: &[u8], card: CardId) -> NewDownloadGrant {
    NewDownloadGrant {
        grant: DownloadGrantRecord {
            sar_digest: sha256(sar),
            operation_id: OperationId([n; 16]),
            sa_digest: sha256(&[sar, b" sa"].concat()),
            sa_der: [sar, b" sa"].concat(),
            not_after: UnixTime(700),
            granted_at: UnixTime(100),
        },
        consent: ConsentRecord {
            consent_digest: sha256(sar),
            kind: ConsentKind::Download,
            card_id: card,
            item_id: ItemId::new(&[0xA0, 0, 0, 0, 1]).unwrap(),
            version: 1,
            sdi_digest: sha256(b"download sdi"),
            sdi_der: b"download sdi".to_vec(),
            signed_der: [sar, b" sa"].concat(),
            created_at: UnixTime(100),
        },
    }
}

fn member(n: u8, card: CardId, service_id: &str, since: u64) -> MemberRecord {
    MemberRecord {
        operation_id: OperationId([n; 16]),
        service_id: ServiceId::new(service_id).unwrap(),
        card_id: card,
        user: MemberUserRecord {
            user_id: format!("u{n}"),
            name: "Name".to_string(),
            email: "n@example.org".to_string(),
        },
        state: "active".to_string(),
        download_application_der: vec![n; 4],
        receipt_der: vec![n; 5],
        member_since: UnixTime(since),
    }
}

/// The download state (`DownloadStore`): terms versions, services, operations, grants (one per
/// SAR, a SAR spent on STO-1 refused), members with their ledger entry (one per operation).
async fn download_suite(store: &dyn Store) {
    assert_eq!(store.terms(None).await.unwrap(), None);
    let TermsOutcome::Published(v1) = store
        .publish_terms("one", &sha256(b"one"), UnixTime(10))
        .await
        .unwrap()
    else {
        panic!("first terms not published")
    };
    assert_eq!((v1.version, v1.text.as_str()), (1, "one"));
    assert_eq!(
        store
            .publish_terms("one", &sha256(b"one"), UnixTime(11))
            .await
            .unwrap(),
        TermsOutcome::Unchanged(v1.clone())
    );
    let TermsOutcome::Published(v2) = store
        .publish_terms("two", &sha256(b"two"), UnixTime(12))
        .await
        .unwrap()
    else {
        panic!("second terms not published")
    };
    assert_eq!(v2.version, 2);
    // The first text again is a third version (the latest is "two").
    assert!(matches!(
        store.publish_terms("one", &sha256(b"one"), UnixTime(13)).await.unwrap(),
        TermsOutcome::Published(t) if t.version == 3
    ));
    assert_eq!(store.terms(Some(1)).await.unwrap(), Some(v1));
    assert_eq!(store.terms(None).await.unwrap().unwrap().version, 3);
    assert_eq!(store.terms(Some(9)).await.unwrap(), None);

    let s = service("svc", "Service");
    assert_eq!(
        store.insert_service(&s).await.unwrap(),
        ServiceOutcome::Added
    );
    assert_eq!(
        store
            .insert_service(&service("svc", "Other"))
            .await
            .unwrap(),
        ServiceOutcome::Exists(s.clone())
    );
    store.insert_service(&service("a-svc", "A")).await.unwrap();
    let ids: Vec<String> = store
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.service_id.to_string())
        .collect();
    assert_eq!(ids, ["a-svc", "svc"]);
    assert_eq!(store.service(&s.service_id).await.unwrap(), Some(s.clone()));

    let card = CardId([0x21; 16]);
    let d1 = download(1, card, "svc");
    assert_eq!(store.open_download(&d1).await.unwrap(), OpenOutcome::Opened);
    let mut other = download(1, CardId([0x22; 16]), "svc");
    other.created_at = UnixTime(101);
    assert_eq!(
        store.open_download(&other).await.unwrap(),
        OpenOutcome::Exists(d1.clone())
    );
    assert_eq!(
        store.download(&d1.operation_id).await.unwrap(),
        Some(d1.clone())
    );

    let g = download_grant(1, b"sar one", card);
    assert_eq!(
        store.record_download_grant(&g).await.unwrap(),
        GrantOutcome::Granted
    );
    assert_eq!(
        store.record_download_grant(&g).await.unwrap(),
        GrantOutcome::Exists(g.grant.clone())
    );
    assert_eq!(
        store
            .download(&d1.operation_id)
            .await
            .unwrap()
            .unwrap()
            .stage,
        DownloadStage::Granted
    );
    assert_eq!(
        store
            .download_grant_for_sa(&d1.operation_id, &g.grant.sa_digest)
            .await
            .unwrap(),
        Some(g.grant.clone())
    );
    assert_eq!(
        store
            .download_grant_for_sa(&OperationId([9; 16]), &g.grant.sa_digest)
            .await
            .unwrap(),
        None
    );
    // A SAR whose consent exists already (granted on STO-1): nothing recorded.
    let spent = download_grant(1, b"sar spent", card);
    let mut sto1 = spent.consent.clone();
    sto1.kind = ConsentKind::Grant;
    assert!(store.insert_consent(&sto1).await.unwrap());
    assert_eq!(
        store.record_download_grant(&spent).await.unwrap(),
        GrantOutcome::SarSpent
    );
    assert_eq!(
        store.download_grant(&spent.grant.sar_digest).await.unwrap(),
        None
    );
    assert!(store
        .consent_for_sdi(&card, &sha256(b"download sdi"))
        .await
        .unwrap()
        .is_some());

    // Members: the receipt and the member in one transaction; once per operation.
    let stored = ViewChange::Stored(view(0xA0));
    let m1 = member(1, card, "svc", 300);
    let outcome = store
        .record_member(&receipt(card, 1, stored.clone()), &FakeSigner, &m1)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, MemberOutcome::Recorded { member, entry } if member == &m1 && entry.seq == 0)
    );
    let mut later = m1.clone();
    later.member_since = UnixTime(400);
    assert_eq!(
        store
            .record_member(&receipt(card, 1, stored.clone()), &FakeSigner, &later)
            .await
            .unwrap(),
        MemberOutcome::Repeated(m1.clone())
    );
    assert_eq!(store.ledger(&card).await.unwrap().len(), 1);
    assert_eq!(
        store.member(&m1.operation_id).await.unwrap(),
        Some(m1.clone())
    );
    assert_eq!(
        store
            .download(&d1.operation_id)
            .await
            .unwrap()
            .unwrap()
            .stage,
        DownloadStage::Member
    );
    assert!(store.is_member(&card, &s.service_id).await.unwrap());
    assert!(!store
        .is_member(&CardId([0x22; 16]), &s.service_id)
        .await
        .unwrap());
    // A receipt the ledger refuses records no member.
    let d2 = download(2, card, "svc");
    store.open_download(&d2).await.unwrap();
    assert_eq!(
        store
            .record_member(
                &receipt(card, 0, stored.clone()),
                &FakeSigner,
                &member(2, card, "svc", 500)
            )
            .await
            .unwrap(),
        MemberOutcome::ReceiptRefused(ReceiptOutcome::CounterNotIncreasing { last: 1 })
    );
    assert_eq!(store.member(&d2.operation_id).await.unwrap(), None);
    assert_eq!(
        store
            .download(&d2.operation_id)
            .await
            .unwrap()
            .unwrap()
            .stage,
        DownloadStage::Requested
    );
    let members = store.members_of(&s.service_id).await.unwrap();
    assert_eq!(members, vec![m1]);
}

async fn conformance(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_conformance").await else {
        return;
    };
    let db = server_kit::Db::open(&place.db_url).await.unwrap();
    let store = SqlStore::open(db.clone()).await.unwrap();
    suite(&store).await;
    download_suite(&store).await;
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
