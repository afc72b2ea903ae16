//! A ready-made world for card tests: the test PKI, one card on a RAM NVM driven by a seeded
//! RNG, and builders for every signed object the parties send to it (SAR/SA on every STO path,
//! delegations, certified data, issuer commands). Deterministic from its seed.

use card::nvm::MemNvm;
use card::Card;
use crypto::{sha256, InsecureSeededRng, SymmetricKey};
use pki::{CardId, Certificate, PartyId, UnixTime};
use protocol::{
    CertifiedData, Challenge, Delegation, IssuerAction, IssuerCommand, ItemId, ItemPrefix,
    Operation, OperationSet, PartyRole, Policy, Sa, SaBasis, Sar, Sdi, SignedObject, UserInfo,
};
use terminal::{CardClient, InProcessCard, Personalisation};

use crate::test_pki::{TestParty, TestPki};

/// The holder's PIN in every test world.
pub const PIN: &str = "2468";
/// PIN try limit written at personalisation.
pub const PIN_TRY_LIMIT: u8 = 3;
/// Content capacity of test cards, in bytes.
pub const CAPACITY: u32 = 4096;
/// State image capacity of test cards, in bytes.
pub const IMAGE_CAPACITY: usize = 16 * 1024;
/// The time floor a test card starts with: an hour before [`TestPki::NOW`].
pub const INITIAL_TIME_FLOOR: UnixTime = UnixTime(TestPki::NOW.0 - 3600);
/// How long test authorizations are valid.
pub const VALIDITY_S: u64 = 600;

/// A client for an in-process test card.
pub type TestClient = CardClient<InProcessCard<MemNvm>>;

/// Which consent path an authorization takes (SPEC STO-1/2/3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// STO-1: the issuer requests (SAR), the provider authorizes (SA).
    ViaIssuer,
    /// STO-2: the provider requests, the issuer authorizes.
    ViaProvider,
    /// STO-3: the provider alone, under the issuer's delegation.
    ProviderOnly,
}

pub struct World {
    pub pki: TestPki,
    pub card_id: CardId,
    pub sk: SymmetricKey,
    pub user: UserInfo,
    seed: u64,
    /// Clients made so far: each gets its own RNG stream, so a rebooted card never repeats a
    /// challenge (as a real card's generator would not).
    clients: std::cell::Cell<u64>,
}

impl World {
    pub fn new(seed: u64) -> World {
        let pki = TestPki::new(seed);
        let mut card_id = [0u8; 16];
        card_id[..8].copy_from_slice(b"CWTEST00");
        card_id[8..].copy_from_slice(&seed.to_be_bytes());
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(seed ^ 0x5eed);
        World {
            pki,
            card_id: CardId(card_id),
            sk: SymmetricKey::generate(&mut rng),
            // Invariant: constant, valid user information.
            user: UserInfo::new("user-0001", "Alice Example", "alice@example.org")
                .expect("valid user info"),
            seed,
            clients: std::cell::Cell::new(0),
        }
    }

    /// The issuer's personalisation record for this world's card.
    pub fn personalisation(&self) -> Personalisation {
        Personalisation {
            card_id: self.card_id,
            sk: self.sk.clone(),
            sk_version: 1,
            issuer_anchor: self.pki.issuer_anchor(),
            data_anchor: self.pki.data_anchor(),
            issuer: self.pki.issuer.id.clone(),
            pin: PIN.to_string(),
            pin_salt: [0x5A; 16],
            pin_try_limit: PIN_TRY_LIMIT,
            issuer_authenticator: b"issuer-1 authenticator".to_vec(),
            capacity: CAPACITY,
            time_floor: INITIAL_TIME_FLOOR,
        }
    }

    /// A blank card (MANUFACTURED) on a fresh RAM NVM.
    pub fn blank_card(&self) -> Card<MemNvm> {
        let nvm = MemNvm::new(Card::<MemNvm>::nvm_size_for(IMAGE_CAPACITY));
        // Invariant: a fresh NVM of the right size always formats.
        Card::manufacture(nvm, IMAGE_CAPACITY).expect("manufacture a test card")
    }

    /// A client for `card`, driven by this world's seeded RNG.
    pub fn client(&self, card: Card<MemNvm>) -> TestClient {
        let n = self.clients.get();
        self.clients.set(n + 1);
        let rng = InsecureSeededRng::insecure_seeded_for_tests(self.seed ^ 0xC4AD ^ (n << 32));
        CardClient::new(InProcessCard::new(card, Box::new(rng)))
    }

    /// Power-cycles the card behind `client`: RAM state is lost, the card boots from its NVM
    /// (running recovery), and the card manager is selected again.
    pub fn reboot(&self, client: TestClient) -> TestClient {
        let nvm = client.into_channel().into_card().into_nvm();
        // Invariant: a test card's NVM always boots (power loss is recovered).
        let mut c = self.client(Card::boot(nvm).expect("boot"));
        c.select_card_manager().expect("select");
        c
    }

    /// A personalised card (PERSONALISED), card manager selected.
    pub fn personalised(&self) -> TestClient {
        let mut c = self.client(self.blank_card());
        // Invariant: the test world's personalisation is complete and valid.
        c.select_card_manager().expect("select");
        c.personalise(&self.personalisation()).expect("personalise");
        c
    }

    /// The issuer's side of REG-2 for this world: the RC over `registration` (which must be
    /// the card's signed registration information answering `challenge`).
    pub fn issue_rc(&self, registration: &SignedObject, challenge: &Challenge) -> Certificate {
        // Invariant: test registration information comes from the card and verifies.
        let info = protocol::verify_registration_info(registration, challenge)
            .expect("registration info verifies");
        assert_eq!(
            info.card_id, self.card_id,
            "registration names the world's card"
        );
        self.pki.issue_card_rc(
            self.card_id,
            info.public_key,
            sha256(&info.user_info.to_der()),
        )
    }

    /// A registered card (IN USE) with the PIN verified.
    pub fn registered(&self) -> (TestClient, Certificate) {
        let mut c = self.personalised();
        // Invariant: the test world's registration is valid.
        c.verify_pin(PIN).expect("verify PIN");
        let challenge = Challenge([0x11; 16]);
        let reg = c.register(&self.user, &challenge.0).expect("register");
        let rc = self.issue_rc(&reg, &challenge);
        c.register_complete(&rc, &self.pki.issuer.cert)
            .expect("register complete");
        (c, rc)
    }

    /// An SDI for this world's card.
    pub fn sdi(&self, operation: Operation, item: &[u8], version: u32, data: &[u8]) -> Sdi {
        self.sdi_with(
            operation,
            item,
            version,
            data,
            &self.pki.provider.id,
            Policy::NONE,
        )
    }

    pub fn sdi_with(
        &self,
        operation: Operation,
        item: &[u8],
        version: u32,
        data: &[u8],
        owner: &PartyId,
        policy: Policy,
    ) -> Sdi {
        Sdi {
            card_id: self.card_id,
            operation,
            // Invariant: test item IDs are 1..=16 bytes.
            item_id: ItemId::new(item).expect("valid item id"),
            version,
            size: data.len() as u32,
            data_digest: sha256(data),
            owner: owner.clone(),
            policy,
        }
    }

    /// The SA for `sdi` on `path`, answering `challenge`, bound to `rc`, issued at
    /// [`TestPki::NOW`].
    pub fn sa(
        &self,
        path: Path,
        sdi: &Sdi,
        challenge: Challenge,
        rc: &Certificate,
    ) -> SignedObject {
        let p = SaParams::new(self, path, sdi.clone(), challenge, rc);
        p.sign()
    }

    /// An issuer-signed delegation letting `provider` store and delete items under `prefix`.
    pub fn delegation(
        &self,
        provider: &TestParty,
        prefix: &[u8],
        max_item_size: u32,
    ) -> SignedObject {
        Delegation {
            issuer: self.pki.issuer.id.clone(),
            provider: provider.id.clone(),
            provider_key_digest: provider.cert.digest(),
            // Invariant: a fixed, valid operation set.
            operations: OperationSet::from_slice(&[Operation::Store, Operation::Delete])
                .expect("operation set"),
            // Invariant: test prefixes are at most 16 bytes.
            item_prefix: ItemPrefix::new(prefix).expect("item prefix"),
            max_item_size,
            card_id: Some(self.card_id),
            issued_at: TestPki::NOW,
            not_after: UnixTime(TestPki::NOW.0 + 86_400),
        }
        .sign(
            &self.pki.issuer.key,
            vec![self.pki.issuer.cert.der().to_vec()],
        )
    }

    /// SDCI: the owning provider certifies `sdi`'s data.
    pub fn sdci(&self, sdi: &Sdi) -> SignedObject {
        CertifiedData::for_sdi(sdi).sign(
            &self.pki.provider.key,
            vec![self.pki.provider.cert.der().to_vec()],
        )
    }

    /// SDCI': the Data Registrar certifies `sdi`'s data.
    pub fn sdci_prime(&self, sdi: &Sdi) -> SignedObject {
        CertifiedData::for_sdi(sdi).sign_as_registrar(&self.pki.data_registrar.key)
    }

    /// An issuer command answering `challenge`.
    pub fn issuer_command(&self, action: IssuerAction, challenge: Challenge) -> SignedObject {
        IssuerCommand {
            card_id: self.card_id,
            challenge,
            action,
            issued_at: TestPki::NOW,
            not_after: UnixTime(TestPki::NOW.0 + VALIDITY_S),
        }
        .sign(
            &self.pki.issuer.key,
            vec![self.pki.issuer.cert.der().to_vec()],
        )
    }
}

/// Every knob of an SA, so refusal tests can turn one at a time.
pub struct SaParams<'a> {
    pub world: &'a World,
    pub path: Path,
    pub sdi: Sdi,
    pub challenge: Challenge,
    pub rc_digest: crypto::Digest,
    pub issuer: &'a TestParty,
    pub provider: &'a TestParty,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
    pub delegation: Option<SignedObject>,
}

impl<'a> SaParams<'a> {
    pub fn new(
        world: &'a World,
        path: Path,
        sdi: Sdi,
        challenge: Challenge,
        rc: &Certificate,
    ) -> SaParams<'a> {
        SaParams {
            world,
            path,
            sdi,
            challenge,
            rc_digest: rc.digest(),
            issuer: &world.pki.issuer,
            provider: &world.pki.provider,
            issued_at: TestPki::NOW,
            not_after: UnixTime(TestPki::NOW.0 + VALIDITY_S),
            delegation: None,
        }
    }

    pub fn sign(&self) -> SignedObject {
        let (requester, requester_role, grantor, grantor_role) = match self.path {
            Path::ViaIssuer => (
                self.issuer,
                PartyRole::Issuer,
                self.provider,
                PartyRole::Provider,
            ),
            Path::ViaProvider | Path::ProviderOnly => (
                self.provider,
                PartyRole::Provider,
                self.issuer,
                PartyRole::Issuer,
            ),
        };
        let basis = match self.path {
            Path::ProviderOnly => SaBasis::Delegation(
                self.delegation
                    .clone()
                    .unwrap_or_else(|| self.world.delegation(self.provider, &[], 16 * 1024)),
            ),
            _ => {
                let sar = Sar {
                    requester_role,
                    requester: requester.id.clone(),
                    rc_digest: self.rc_digest,
                    sdi: self.sdi.clone(),
                    challenge: self.challenge,
                    issued_at: self.issued_at,
                    not_after: self.not_after,
                };
                SaBasis::Request(sar.sign(&requester.key, vec![requester.cert.der().to_vec()]))
            }
        };
        let (signer, role) = match self.path {
            Path::ProviderOnly => (self.provider, PartyRole::Provider),
            _ => (grantor, grantor_role),
        };
        Sa::new(
            basis,
            role,
            signer.id.clone(),
            self.sdi.clone(),
            self.challenge,
            self.issued_at,
            self.not_after,
        )
        .sign(&signer.key, vec![signer.cert.der().to_vec()])
    }
}
