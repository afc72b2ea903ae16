//! The test fixture of the verification tests: testkit's [`TestPki`] (seed 1) plus what these
//! tests need beyond it — a second legitimate issuer, a lookalike root that shares the Data
//! Registrar's name, a card with its RC — and builders for the signed objects of one store.
//! Insecure by construction (seeded keys): tests only.

#![allow(dead_code)] // each test binary uses a different part

use std::ops::Deref;

use crypto::{InsecureSeededRng, SigningKey};
use pki::{
    issue, issue_root, CardId, Certificate, CertificateRequest, Crl, PartyId, Role, UnixTime,
};
use protocol::{
    CardContext, Challenge, Delegation, ItemId, ItemPrefix, Operation, OperationSet, PartyRole,
    Policy, Sa, SaBasis, Sar, Sdi, SignedObject, UserInfo,
};
pub use testkit::test_pki::{TestParty, TestPki};

pub const NOW: UnixTime = TestPki::NOW;
pub const DAY: i64 = 86_400;
pub const CHALLENGE: Challenge = Challenge([0xC4; 16]);
pub const CARD: CardId = CardId([0x11; 16]);
pub const OTHER_CARD: CardId = CardId([0x22; 16]);

pub fn key(seed: u64) -> SigningKey {
    SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(seed))
}

pub fn id(s: &str) -> PartyId {
    PartyId::new(s).unwrap()
}

pub fn at(offset: i64) -> UnixTime {
    UnixTime(NOW.0.checked_add_signed(offset).unwrap())
}

/// A signer chain of one certificate.
pub trait Chain {
    fn chain(&self) -> Vec<Vec<u8>>;
}

impl Chain for TestParty {
    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.cert.der().to_vec()]
    }
}

pub fn party_cert(
    parent: &TestParty,
    role: Role,
    name: &str,
    key: &SigningKey,
    serial: u64,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Certificate {
    let request = CertificateRequest::party(
        role,
        id(name),
        key.verifying_key(),
        serial,
        not_before,
        not_after,
    );
    issue(&request, &parent.cert, &parent.key).unwrap()
}

fn party(parent: &TestParty, role: Role, name: &str, seed: u64, serial: u64) -> TestParty {
    let key = key(seed);
    let cert = party_cert(
        parent,
        role,
        name,
        &key,
        serial,
        TestPki::NOT_BEFORE,
        TestPki::NOT_AFTER,
    );
    TestParty {
        id: id(name),
        key,
        cert,
    }
}

pub struct Fixture {
    pub pki: TestPki,
    /// Another properly certified issuer (not the card's).
    pub issuer2: TestParty,
    /// A root nobody trusts that carries the Data Registrar's name, and a "provider-1" under it.
    pub lookalike_root: TestParty,
    pub impostor: TestParty,
    pub card_key: SigningKey,
    pub user_info: UserInfo,
    /// The card's RC, by issuer-1.
    pub rc: Certificate,
}

impl Deref for Fixture {
    type Target = TestPki;

    fn deref(&self) -> &TestPki {
        &self.pki
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let pki = TestPki::new(1);
        let issuer2 = party(&pki.issuer_registrar, Role::Issuer, "issuer-2", 4, 11);
        let lookalike_key = key(7);
        let lookalike_root = TestParty {
            id: id("data-registrar"),
            cert: issue_root(
                Role::DataRegistrar,
                &id("data-registrar"),
                &lookalike_key,
                2,
                TestPki::NOT_BEFORE,
                TestPki::NOT_AFTER,
            )
            .unwrap(),
            key: lookalike_key,
        };
        let impostor = party(&lookalike_root, Role::Provider, "provider-1", 8, 20);
        let card_key = key(9);
        let user_info = UserInfo::new("alice", "Alice Example", "alice@example.org").unwrap();
        let rc = pki.issue_card_rc(CARD, card_key.verifying_key(), user_info.digest());
        Fixture {
            pki,
            issuer2,
            lookalike_root,
            impostor,
            card_key,
            user_info,
            rc,
        }
    }

    /// The card's context at NOW with [`CHALLENGE`] outstanding and no CRLs.
    pub fn ctx<'a>(&'a self, crls: &'a [Crl]) -> CardContext<'a> {
        CardContext {
            card_id: CARD,
            rc: Some(&self.rc),
            issuer: &self.issuer.id,
            issuer_anchor: &self.issuer_registrar.cert,
            data_anchor: &self.data_registrar.cert,
            crls,
            time_floor: NOW,
            challenge: Some(CHALLENGE),
        }
    }

    /// `party`'s certificate re-issued by `parent` with the validity given.
    pub fn reissued(
        &self,
        parent: &TestParty,
        party: &TestParty,
        role: Role,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> Vec<Vec<u8>> {
        vec![party_cert(
            parent,
            role,
            party.id.as_str(),
            &party.key,
            99,
            not_before,
            not_after,
        )
        .der()
        .to_vec()]
    }

    /// A store of 100 bytes of item 0xA0 00 01 for provider-1 on CARD.
    pub fn sdi(&self) -> Sdi {
        Sdi {
            card_id: CARD,
            operation: Operation::Store,
            item_id: ItemId::new(&[0xA0, 0x00, 0x01]).unwrap(),
            version: 1,
            size: 100,
            data_digest: crypto::sha256(&[0x5A; 100]),
            owner: self.provider.id.clone(),
            policy: Policy::NONE,
        }
    }

    pub fn sar(&self, role: PartyRole, requester: &TestParty, sdi: &Sdi) -> Sar {
        Sar {
            requester_role: role,
            requester: requester.id.clone(),
            rc_digest: self.rc.digest(),
            sdi: sdi.clone(),
            challenge: CHALLENGE,
            issued_at: at(-60),
            not_after: at(600),
        }
    }

    pub fn sa(&self, basis: SaBasis, role: PartyRole, grantor: &TestParty, sdi: &Sdi) -> Sa {
        Sa::new(
            basis,
            role,
            grantor.id.clone(),
            sdi.clone(),
            CHALLENGE,
            at(-30),
            at(600),
        )
    }

    /// STO-1: SAR by the issuer, SA by provider-1, both over `sdi`.
    pub fn sto1(&self, sdi: &Sdi) -> SignedObject {
        self.sto1_with(sdi, |_| {})
    }

    /// STO-1 with `edit` applied to the bodies and signers before signing; the SA always
    /// embeds the SAR as signed.
    pub fn sto1_with<'a>(&'a self, sdi: &Sdi, edit: impl FnOnce(&mut Sto1<'a>)) -> SignedObject {
        let sar = self.sar(PartyRole::Issuer, &self.issuer, sdi);
        let placeholder = sar.sign(&self.issuer.key, Vec::new());
        let mut sto1 = Sto1 {
            sar,
            sar_key: &self.issuer.key,
            sar_chain: self.issuer.chain(),
            sa: self.sa(
                SaBasis::Request(placeholder),
                PartyRole::Provider,
                &self.provider,
                sdi,
            ),
            sa_key: &self.provider.key,
            sa_chain: self.provider.chain(),
        };
        edit(&mut sto1);
        sto1.sa.basis = SaBasis::Request(sto1.sar.sign(sto1.sar_key, sto1.sar_chain));
        sto1.sa.sign(sto1.sa_key, sto1.sa_chain)
    }

    /// STO-2: SAR by provider-1, SA by the issuer.
    pub fn sto2(&self, sdi: &Sdi) -> SignedObject {
        let sar = self
            .sar(PartyRole::Provider, &self.provider, sdi)
            .sign(&self.provider.key, self.provider.chain());
        self.sa(SaBasis::Request(sar), PartyRole::Issuer, &self.issuer, sdi)
            .sign(&self.issuer.key, self.issuer.chain())
    }

    /// The issuer's delegation to provider-1 (its DPR) for store and delete of items under
    /// 0xA0, up to 1000 bytes, on CARD.
    pub fn delegation(&self) -> Delegation {
        Delegation {
            issuer: self.issuer.id.clone(),
            provider: self.provider.id.clone(),
            provider_key_digest: self.provider.cert.digest(),
            operations: OperationSet::STORE_AND_DELETE,
            item_prefix: ItemPrefix::new(&[0xA0]).unwrap(),
            max_item_size: 1000,
            card_id: Some(CARD),
            issued_at: at(-DAY),
            not_after: at(30 * DAY),
        }
    }

    /// STO-3: provider-1's SA alone under `delegation` signed by the issuer.
    pub fn sto3(&self, delegation: &Delegation, sdi: &Sdi) -> SignedObject {
        let signed = delegation.sign(&self.issuer.key, self.issuer.chain());
        self.sa(
            SaBasis::Delegation(signed),
            PartyRole::Provider,
            &self.provider,
            sdi,
        )
        .sign(&self.provider.key, self.provider.chain())
    }
}

/// The parts of an STO-1 consent, for tests to edit before they are signed.
pub struct Sto1<'a> {
    pub sar: Sar,
    pub sar_key: &'a SigningKey,
    pub sar_chain: Vec<Vec<u8>>,
    /// Its basis is replaced by the signed `sar`.
    pub sa: Sa,
    pub sa_key: &'a SigningKey,
    pub sa_chain: Vec<Vec<u8>>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

/// A SignedObject's DER from its parts, bypassing the builders.
pub fn envelope(tbs: &[u8], algorithm: &str, signature: &[u8], chain: &[Vec<u8>]) -> Vec<u8> {
    use der::asn1::{ObjectIdentifier, OctetStringRef};
    use der::Encode;
    #[derive(der::Sequence)]
    struct Wire<'a> {
        tbs: OctetStringRef<'a>,
        alg: ObjectIdentifier,
        sig: OctetStringRef<'a>,
        chain: Vec<OctetStringRef<'a>>,
    }
    Wire {
        tbs: OctetStringRef::new(tbs).unwrap(),
        alg: ObjectIdentifier::new(algorithm).unwrap(),
        sig: OctetStringRef::new(signature).unwrap(),
        chain: chain
            .iter()
            .map(|c| OctetStringRef::new(c).unwrap())
            .collect(),
    }
    .to_der()
    .unwrap()
}
