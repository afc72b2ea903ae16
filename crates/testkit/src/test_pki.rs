//! A complete, deterministic test PKI: both registrar roots, an issuer, two providers, an
//! unrelated rogue hierarchy for wrong-signer tests, and helpers for card RCs, an expired DPR
//! and CRLs. Everything is derived from one seed with `InsecureSeededRng`, so the same seed
//! gives byte-identical keys and certificates. Insecure by construction: tests only.
//!
//! | field | role | party ID | issued by | serial |
//! |---|---|---|---|---|
//! | `issuer_registrar` | IssuerRegistrar | `issuer-registrar` | itself | 1 |
//! | `data_registrar` | DataRegistrar | `data-registrar` | itself | 2 |
//! | `issuer` | Issuer (IRC) | `issuer-1` | `issuer-registrar` | 10 |
//! | `provider` | Provider (DPR) | `provider-1` | `data-registrar` | 20 |
//! | `provider_2` | Provider (DPR) | `provider-2` | `data-registrar` | 21 |
//! | `rogue_root` | IssuerRegistrar | `rogue-issuer-registrar` | itself | 901 |
//! | `rogue_data_root` | DataRegistrar | `rogue-data-registrar` | itself | 902 |
//! | `rogue_issuer` | Issuer | `rogue-issuer` | `rogue-issuer-registrar` | 910 |
//! | `rogue_provider` | Provider | `rogue-provider` | `rogue-data-registrar` | 920 |
//!
//! All are valid from [`TestPki::NOT_BEFORE`] to [`TestPki::NOT_AFTER`] around
//! [`TestPki::NOW`]. The rogue parties are well-formed but chain to roots nobody trusts.

use crypto::{Digest, InsecureSeededRng, SigningKey, VerifyingKey};
use pki::{
    issue, issue_crl, issue_root, CardId, Certificate, CertificateRequest, Crl, PartyId, Role,
    UnixTime,
};

const DAY: u64 = 86_400;

/// One party of the test PKI: its ID, its private key and its certificate.
#[derive(Debug, Clone)]
pub struct TestParty {
    pub id: PartyId,
    pub key: SigningKey,
    pub cert: Certificate,
}

impl TestParty {
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

/// The test PKI (see the module table).
#[derive(Debug, Clone)]
pub struct TestPki {
    pub issuer_registrar: TestParty,
    pub data_registrar: TestParty,
    /// `issuer-1`, certified by the Issuer Registrar; signs card RCs.
    pub issuer: TestParty,
    /// `provider-1`, certified by the Data Registrar.
    pub provider: TestParty,
    /// `provider-2`, certified by the Data Registrar.
    pub provider_2: TestParty,
    /// An Issuer Registrar root nobody trusts (`rogue-issuer-registrar`).
    pub rogue_root: TestParty,
    /// A Data Registrar root nobody trusts (`rogue-data-registrar`); a root holds one role, so
    /// the rogue provider needs its own.
    pub rogue_data_root: TestParty,
    /// `rogue-issuer`, certified by `rogue_root`.
    pub rogue_issuer: TestParty,
    /// `rogue-provider`, certified by `rogue_data_root`.
    pub rogue_provider: TestParty,
}

fn id(s: &str) -> PartyId {
    // Invariant: every ID used here is a literal of [a-z0-9-].
    PartyId::new(s).expect("test party IDs are valid")
}

fn root(rng: &mut InsecureSeededRng, role: Role, name: &str, serial: u64) -> TestParty {
    let key = SigningKey::generate(rng);
    let id = id(name);
    // Invariant: registrar roles, a positive serial and a non-empty validity always issue.
    let cert = issue_root(
        role,
        &id,
        &key,
        serial,
        TestPki::NOT_BEFORE,
        TestPki::NOT_AFTER,
    )
    .expect("test root issues");
    TestParty { id, key, cert }
}

fn certified(
    rng: &mut InsecureSeededRng,
    role: Role,
    name: &str,
    serial: u64,
    by: &TestParty,
) -> TestParty {
    let key = SigningKey::generate(rng);
    let id = id(name);
    let request = CertificateRequest::party(
        role,
        id.clone(),
        key.verifying_key(),
        serial,
        TestPki::NOT_BEFORE,
        TestPki::NOT_AFTER,
    );
    // Invariant: callers pass an issuer whose role may certify `role`.
    let cert = issue(&request, &by.cert, &by.key).expect("test certificate issues");
    TestParty { id, key, cert }
}

fn crl(by: &TestParty, number: u64, revoked: &[u64]) -> Crl {
    // Invariant: `by` is a registrar or issuer and the CRL window is non-empty.
    issue_crl(
        &by.cert,
        &by.key,
        number,
        TestPki::CRL_THIS_UPDATE,
        TestPki::CRL_NEXT_UPDATE,
        revoked,
    )
    .expect("test CRL issues")
}

impl TestPki {
    /// The time tests run at (2027-01-15T08:00:00Z).
    pub const NOW: UnixTime = UnixTime(1_800_000_000);
    /// Every certificate's first valid second: NOW - 30 days.
    pub const NOT_BEFORE: UnixTime = UnixTime(Self::NOW.0 - 30 * DAY);
    /// Every certificate's last valid second: NOW + 365 days.
    pub const NOT_AFTER: UnixTime = UnixTime(Self::NOW.0 + 365 * DAY);
    /// CRLs from the helpers: thisUpdate NOW - 1 day, nextUpdate NOW + 7 days.
    pub const CRL_THIS_UPDATE: UnixTime = UnixTime(Self::NOW.0 - DAY);
    pub const CRL_NEXT_UPDATE: UnixTime = UnixTime(Self::NOW.0 + 7 * DAY);
    /// Serial of the certificate [`TestPki::expired_provider`] returns.
    pub const EXPIRED_PROVIDER_SERIAL: u64 = 29;

    /// The PKI for `seed`; the same seed always gives the same keys and certificates.
    pub fn new(seed: u64) -> TestPki {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(seed);
        let issuer_registrar = root(&mut rng, Role::IssuerRegistrar, "issuer-registrar", 1);
        let data_registrar = root(&mut rng, Role::DataRegistrar, "data-registrar", 2);
        let issuer = certified(&mut rng, Role::Issuer, "issuer-1", 10, &issuer_registrar);
        let provider = certified(&mut rng, Role::Provider, "provider-1", 20, &data_registrar);
        let provider_2 = certified(&mut rng, Role::Provider, "provider-2", 21, &data_registrar);
        let rogue_root = root(
            &mut rng,
            Role::IssuerRegistrar,
            "rogue-issuer-registrar",
            901,
        );
        let rogue_data_root = root(&mut rng, Role::DataRegistrar, "rogue-data-registrar", 902);
        let rogue_issuer = certified(&mut rng, Role::Issuer, "rogue-issuer", 910, &rogue_root);
        let rogue_provider = certified(
            &mut rng,
            Role::Provider,
            "rogue-provider",
            920,
            &rogue_data_root,
        );
        TestPki {
            issuer_registrar,
            data_registrar,
            issuer,
            provider,
            provider_2,
            rogue_root,
            rogue_data_root,
            rogue_issuer,
            rogue_provider,
        }
    }

    /// The Issuer Registrar root: the trust anchor for issuers (IRC) and cards (RC).
    pub fn issuer_anchor(&self) -> Certificate {
        self.issuer_registrar.cert.clone()
    }

    /// The Data Registrar root: the trust anchor for providers (DPR).
    pub fn data_anchor(&self) -> Certificate {
        self.data_registrar.cert.clone()
    }

    /// Both registrar roots, for `pki::verify_chain`'s `anchors`.
    pub fn anchors(&self) -> Vec<Certificate> {
        vec![self.issuer_anchor(), self.data_anchor()]
    }

    /// The serial [`TestPki::issue_card_rc`] gives the RC of `card_id`: the card ID's last
    /// 8 bytes big-endian (at least 1), so each card's serial is fixed and distinct in practice.
    pub fn card_serial(card_id: &CardId) -> u64 {
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&card_id.0[8..]);
        u64::from_be_bytes(tail).max(1)
    }

    /// A card's registration certificate (RC, REG-2) signed by `issuer-1`, valid
    /// [`TestPki::NOT_BEFORE`]..=[`TestPki::NOT_AFTER`], serial [`TestPki::card_serial`].
    /// Verify it with the chain `[rc, pki.issuer.cert]`.
    pub fn issue_card_rc(
        &self,
        card_id: CardId,
        card_public_key: VerifyingKey,
        user_info_digest: Digest,
    ) -> Certificate {
        let request = CertificateRequest::card(
            card_id,
            card_public_key,
            user_info_digest,
            Self::card_serial(&card_id),
            Self::NOT_BEFORE,
            Self::NOT_AFTER,
        );
        // Invariant: issuer-1 may certify cards and the request is well-formed.
        issue(&request, &self.issuer.cert, &self.issuer.key).expect("test RC issues")
    }

    /// `provider-1` with the same key but a DPR that expired a day before [`TestPki::NOW`]
    /// (serial [`TestPki::EXPIRED_PROVIDER_SERIAL`]): what a provider presents after its
    /// certificate lapsed.
    pub fn expired_provider(&self) -> TestParty {
        let request = CertificateRequest::party(
            Role::Provider,
            self.provider.id.clone(),
            self.provider.public_key(),
            Self::EXPIRED_PROVIDER_SERIAL,
            Self::NOT_BEFORE,
            UnixTime(Self::NOW.0 - DAY),
        );
        // Invariant: the Data Registrar may certify providers.
        let cert = issue(
            &request,
            &self.data_registrar.cert,
            &self.data_registrar.key,
        )
        .expect("test DPR issues");
        TestParty {
            id: self.provider.id.clone(),
            key: self.provider.key.clone(),
            cert,
        }
    }

    /// A Data Registrar CRL (number 1) revoking the DPR with `serial` (20 is `provider-1`).
    pub fn crl_revoking_provider(&self, serial: u64) -> Crl {
        self.data_registrar_crl(&[serial])
    }

    /// A CRL (number 1) of the Issuer Registrar revoking `revoked` (IRC serials).
    pub fn issuer_registrar_crl(&self, revoked: &[u64]) -> Crl {
        crl(&self.issuer_registrar, 1, revoked)
    }

    /// A CRL (number 1) of the Data Registrar revoking `revoked` (DPR serials).
    pub fn data_registrar_crl(&self, revoked: &[u64]) -> Crl {
        crl(&self.data_registrar, 1, revoked)
    }

    /// A CRL (number 1) of `issuer-1` revoking `revoked` (card RC serials).
    pub fn issuer_crl(&self, revoked: &[u64]) -> Crl {
        crl(&self.issuer, 1, revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pki::{verify_chain, PkiError};

    #[test]
    fn deterministic_per_seed() {
        let a = TestPki::new(1);
        let b = TestPki::new(1);
        let c = TestPki::new(2);
        assert_eq!(a.issuer.cert, b.issuer.cert);
        assert_eq!(a.provider_2.cert, b.provider_2.cert);
        assert_ne!(a.issuer.cert, c.issuer.cert);
    }

    #[test]
    fn every_party_verifies_under_its_anchor_and_rogues_do_not() {
        let pki = TestPki::new(3);
        let anchors = pki.anchors();
        let now = TestPki::NOW;
        verify_chain(
            std::slice::from_ref(&pki.issuer.cert),
            &anchors,
            &[],
            now,
            Role::Issuer,
        )
        .unwrap();
        for p in [&pki.provider, &pki.provider_2] {
            verify_chain(
                std::slice::from_ref(&p.cert),
                &anchors,
                &[],
                now,
                Role::Provider,
            )
            .unwrap();
        }
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&pki.rogue_issuer.cert),
                &anchors,
                &[],
                now,
                Role::Issuer
            ),
            Err(PkiError::UnknownIssuer { .. })
        ));
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&pki.rogue_provider.cert),
                &anchors,
                &[],
                now,
                Role::Provider
            ),
            Err(PkiError::UnknownIssuer { .. })
        ));
        verify_chain(
            std::slice::from_ref(&pki.rogue_issuer.cert),
            std::slice::from_ref(&pki.rogue_root.cert),
            &[],
            now,
            Role::Issuer,
        )
        .unwrap();
        verify_chain(
            std::slice::from_ref(&pki.rogue_provider.cert),
            std::slice::from_ref(&pki.rogue_data_root.cert),
            &[],
            now,
            Role::Provider,
        )
        .unwrap();
    }

    #[test]
    fn helpers() {
        let pki = TestPki::new(4);
        let card_id = CardId([0x11; 16]);
        let card_key = SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(9));
        let digest = crypto::sha256(b"user info");
        let rc = pki.issue_card_rc(card_id, card_key.verifying_key(), digest);
        let chain = [rc.clone(), pki.issuer.cert.clone()];
        let v = verify_chain(&chain, &pki.anchors(), &[], TestPki::NOW, Role::Card).unwrap();
        assert_eq!(v.leaf_card_id, Some(card_id));
        assert_eq!(v.leaf_user_info_digest, Some(digest));
        assert_eq!(rc.serial(), TestPki::card_serial(&card_id));

        let revoked = pki.issuer_crl(&[rc.serial()]);
        assert!(matches!(
            verify_chain(&chain, &pki.anchors(), &[revoked], TestPki::NOW, Role::Card),
            Err(PkiError::CertificateRevoked { .. })
        ));

        let expired = pki.expired_provider();
        assert_eq!(expired.public_key(), pki.provider.public_key());
        assert!(matches!(
            verify_chain(
                &[expired.cert],
                &pki.anchors(),
                &[],
                TestPki::NOW,
                Role::Provider
            ),
            Err(PkiError::CertificateExpired { .. })
        ));

        let crl = pki.crl_revoking_provider(pki.provider.cert.serial());
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&pki.provider.cert),
                &pki.anchors(),
                &[crl],
                TestPki::NOW,
                Role::Provider
            ),
            Err(PkiError::CertificateRevoked { serial: 20, .. })
        ));
        let crl = pki.issuer_registrar_crl(&[pki.issuer.cert.serial()]);
        assert!(matches!(
            verify_chain(&chain, &pki.anchors(), &[crl], TestPki::NOW, Role::Card),
            Err(PkiError::CertificateRevoked { serial: 10, .. })
        ));
        let crl = pki.data_registrar_crl(&[]);
        verify_chain(
            std::slice::from_ref(&pki.provider_2.cert),
            &[pki.data_anchor()],
            &[crl],
            TestPki::NOW,
            Role::Provider,
        )
        .unwrap();
        assert_eq!(pki.issuer_anchor().role(), Role::IssuerRegistrar);
    }
}
