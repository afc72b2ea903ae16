//! The store conformance suite: one set of checks over `&dyn Store`, run on SQLite always and
//! on PostgreSQL when `TEST_POSTGRES_URL` is set (each run on a fresh database).

use std::sync::Mutex;

use pki::{PartyId, PkiError, Role, UnixTime};
use registrar::store::{
    CertificateRecord, Certification, CrlRecord, CrlSigner, Identity, Revocation, RevocationRecord,
    RevokeOutcome,
};
use registrar::{RegistrarRole, RevocationReason, SqlStore, Store, StoreError};

use crate::support::{Backend, Place, NOW};

/// Records what it was asked to sign; its "DER" spells out number and serials.
#[derive(Default)]
struct FakeSigner {
    calls: Mutex<Vec<(u64, Vec<u64>)>>,
}

impl CrlSigner for FakeSigner {
    fn sign(&self, number: u64, revoked: &[u64]) -> Result<CrlRecord, PkiError> {
        self.calls.lock().unwrap().push((number, revoked.to_vec()));
        Ok(CrlRecord {
            number,
            this_update: NOW,
            next_update: UnixTime(NOW.0 + 10),
            der: format!("crl {number} {revoked:?}").into_bytes(),
        })
    }
}

impl FakeSigner {
    fn calls(&self) -> Vec<(u64, Vec<u64>)> {
        self.calls.lock().unwrap().clone()
    }
}

struct FailingSigner;

impl CrlSigner for FailingSigner {
    fn sign(&self, _number: u64, _revoked: &[u64]) -> Result<CrlRecord, PkiError> {
        Err(PkiError::InvalidSerial { serial: 0 })
    }
}

fn identity(party: &str) -> Identity {
    Identity {
        role: RegistrarRole::DataRegistrar,
        party_id: PartyId::new(party).unwrap(),
        root_der: vec![0x30, 0x01, 0x02],
    }
}

fn record(serial: u64, subject: &str) -> CertificateRecord {
    CertificateRecord {
        serial,
        subject: PartyId::new(subject).unwrap(),
        role: Role::Provider,
        not_before: NOW,
        not_after: UnixTime(NOW.0 + 100),
        issued_at: NOW,
        der: vec![serial as u8; 3],
        revocation: None,
    }
}

fn revocation(serial: u64, reason: RevocationReason, at: u64) -> Revocation {
    Revocation {
        serial,
        reason,
        revoked_at: UnixTime(at),
    }
}

async fn before_initialise(store: &dyn Store) {
    assert_eq!(store.identity().await.unwrap(), None);
    assert!(matches!(
        store.current_crl().await,
        Err(StoreError::NotInitialised)
    ));
    let signer = FakeSigner::default();
    let err = store
        .revoke(&revocation(2, RevocationReason::Unspecified, 0), &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotInitialised), "{err}");
    assert!(signer.calls().is_empty());
}

async fn initialise_once(store: &dyn Store) {
    let signer = FakeSigner::default();
    assert_eq!(
        store
            .initialise(&identity("data-registrar"), &signer)
            .await
            .unwrap(),
        identity("data-registrar")
    );
    assert_eq!(signer.calls(), [(1, vec![])]);
    // A second initialise (another instance starting) keeps the first identity, signs nothing.
    let late = FakeSigner::default();
    assert_eq!(
        store
            .initialise(&identity("latecomer"), &late)
            .await
            .unwrap(),
        identity("data-registrar")
    );
    assert!(late.calls().is_empty());
    assert_eq!(
        store.identity().await.unwrap(),
        Some(identity("data-registrar"))
    );
    let crl = store.current_crl().await.unwrap();
    assert_eq!((crl.number, crl.der.as_slice()), (1, &b"crl 1 []"[..]));
}

async fn serials_and_certificates(store: &dyn Store) {
    let serials = [
        store.next_serial().await.unwrap(),
        store.next_serial().await.unwrap(),
        store.next_serial().await.unwrap(),
    ];
    assert_eq!(serials, [2, 3, 4]);
    store
        .insert_certificate(&record(2, "provider-a"))
        .await
        .unwrap();
    store
        .insert_certificate(&record(4, "provider-a"))
        .await
        .unwrap();
    store
        .insert_certificate(&record(3, "provider-b"))
        .await
        .unwrap();
    let err = store
        .insert_certificate(&record(3, "provider-c"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSerial { serial: 3 }),
        "{err}"
    );

    assert_eq!(
        store.certificate(2).await.unwrap(),
        Some(record(2, "provider-a"))
    );
    assert_eq!(store.certificate(5).await.unwrap(), None);
    assert_eq!(store.certificate(u64::MAX).await.unwrap(), None);
    let a = PartyId::new("provider-a").unwrap();
    let of_a: Vec<u64> = store
        .certificates(Some(&a))
        .await
        .unwrap()
        .iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(of_a, [2, 4]);
    let all: Vec<u64> = store
        .certificates(None)
        .await
        .unwrap()
        .iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(all, [2, 3, 4]);
    let nobody = PartyId::new("nobody").unwrap();
    assert!(store.certificates(Some(&nobody)).await.unwrap().is_empty());
}

async fn revocations_and_crls(store: &dyn Store) {
    let signer = FakeSigner::default();
    assert_eq!(
        store
            .revoke(
                &revocation(9, RevocationReason::Unspecified, NOW.0),
                &signer
            )
            .await
            .unwrap(),
        RevokeOutcome::UnknownCertificate
    );
    assert_eq!(
        store
            .revoke(
                &revocation(u64::MAX, RevocationReason::Unspecified, NOW.0),
                &signer
            )
            .await
            .unwrap(),
        RevokeOutcome::UnknownCertificate
    );
    let outcome = store
        .revoke(
            &revocation(4, RevocationReason::KeyCompromise, NOW.0 + 1),
            &signer,
        )
        .await
        .unwrap();
    let RevokeOutcome::Revoked { crl } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(crl.number, 2);
    let outcome = store
        .revoke(
            &revocation(2, RevocationReason::Superseded, NOW.0 + 2),
            &signer,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            RevokeOutcome::Revoked {
                crl: CrlRecord { number: 3, .. }
            }
        ),
        "{outcome:?}"
    );
    // Repeats change nothing, whatever the reason given.
    let outcome = store
        .revoke(
            &revocation(4, RevocationReason::Unspecified, NOW.0 + 3),
            &signer,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RevokeOutcome::AlreadyRevoked {
            existing: RevocationRecord {
                reason: RevocationReason::KeyCompromise,
                revoked_at: UnixTime(NOW.0 + 1)
            }
        }
    );
    // The failed attempts (unknown, repeated) used no CRL number; each CRL lists every
    // revocation so far, ascending.
    assert_eq!(signer.calls(), [(2, vec![4]), (3, vec![2, 4])]);
    assert_eq!(store.current_crl().await.unwrap().number, 3);
    let four = store.certificate(4).await.unwrap().unwrap();
    assert_eq!(
        four.revocation,
        Some(RevocationRecord {
            reason: RevocationReason::KeyCompromise,
            revoked_at: UnixTime(NOW.0 + 1)
        })
    );

    // A failing signer leaves nothing behind.
    let err = store
        .revoke(
            &revocation(3, RevocationReason::Unspecified, NOW.0),
            &FailingSigner,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CrlSigning { number: 4, .. }),
        "{err}"
    );
    assert_eq!(
        store.certificate(3).await.unwrap().unwrap().revocation,
        None
    );
    assert_eq!(store.current_crl().await.unwrap().number, 3);

    // Re-signing: only from the current number; a stale caller gets the current CRL.
    let resign = FakeSigner::default();
    let crl = store.reissue_crl(3, &resign).await.unwrap();
    assert_eq!(crl.number, 4);
    assert_eq!(resign.calls(), [(4, vec![2, 4])]);
    let stale = FakeSigner::default();
    assert_eq!(store.reissue_crl(3, &stale).await.unwrap(), crl);
    assert!(stale.calls().is_empty());
    assert_eq!(store.current_crl().await.unwrap(), crl);
}

fn certification(sdi: u8, provider: &str, at: u64) -> Certification {
    Certification {
        sdi_digest: crypto::Digest([sdi; 32]),
        provider: PartyId::new(provider).unwrap(),
        data_digest: crypto::Digest([sdi ^ 0xFF; 32]),
        certified_at: UnixTime(at),
    }
}

async fn certifications_log(store: &dyn Store) {
    assert!(store.certifications(None).await.unwrap().is_empty());
    let log = [
        certification(1, "provider-a", NOW.0),
        certification(2, "provider-b", NOW.0 + 1),
        // The same certification again is recorded again.
        certification(1, "provider-a", NOW.0),
        certification(3, "provider-a", NOW.0 + 2),
    ];
    for c in &log {
        store.record_certification(c).await.unwrap();
    }
    assert_eq!(store.certifications(None).await.unwrap(), log);
    let a = PartyId::new("provider-a").unwrap();
    assert_eq!(
        store.certifications(Some(&a)).await.unwrap(),
        [log[0].clone(), log[2].clone(), log[3].clone()]
    );
    let nobody = PartyId::new("nobody").unwrap();
    assert!(store
        .certifications(Some(&nobody))
        .await
        .unwrap()
        .is_empty());
    let err = store
        .record_certification(&certification(4, "provider-a", u64::MAX))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    assert_eq!(store.certifications(None).await.unwrap().len(), 4);
}

async fn conformance(backend: Backend) {
    let Some(place) = Place::new(backend, "store_conformance").await else {
        return;
    };
    let db = server_kit::Db::open(&place.db_url).await.unwrap();
    let store = SqlStore::open(db.clone()).await.unwrap();
    let store: &dyn Store = &store;
    before_initialise(store).await;
    initialise_once(store).await;
    serials_and_certificates(store).await;
    revocations_and_crls(store).await;
    certifications_log(store).await;
    // Reopening (migrations again) keeps everything.
    let reopened = SqlStore::open(db.clone()).await.unwrap();
    assert_eq!(reopened.current_crl().await.unwrap().number, 4);
    db.close().await;
    place.finish().await;
}

#[tokio::test]
async fn store_conformance_on_sqlite() {
    conformance(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_conformance_on_postgres() {
    conformance(Backend::Postgres).await;
}
