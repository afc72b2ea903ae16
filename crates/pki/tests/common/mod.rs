//! A small deterministic PKI for pki's own tests (testkit depends on pki, so pki's tests build
//! their fixtures here): both registrar roots, an issuer with its IRC, a provider with its DPR
//! and a card with its RC, all valid from NOW - 30 days to NOW + 365 days.
#![allow(dead_code)] // each test file uses a different part

use crypto::{Digest, InsecureSeededRng, SigningKey};
use pki::{issue, issue_root, CardId, Certificate, CertificateRequest, PartyId, Role, UnixTime};

pub const NOW: UnixTime = UnixTime(1_800_000_000);
pub const DAY: u64 = 86_400;
pub const NOT_BEFORE: UnixTime = UnixTime(NOW.0 - 30 * DAY);
pub const NOT_AFTER: UnixTime = UnixTime(NOW.0 + 365 * DAY);

pub fn id(s: &str) -> PartyId {
    PartyId::new(s).unwrap()
}

pub struct Fixture {
    pub rng: InsecureSeededRng,
    pub ir_key: SigningKey,
    pub ir: Certificate,
    pub dr_key: SigningKey,
    pub dr: Certificate,
    pub issuer_key: SigningKey,
    pub irc: Certificate,
    pub provider_key: SigningKey,
    pub dpr: Certificate,
    pub card_key: SigningKey,
    pub card_id: CardId,
    pub user_info_digest: Digest,
    pub rc: Certificate,
}

impl Fixture {
    pub fn new(seed: u64) -> Fixture {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(seed);
        let ir_key = SigningKey::generate(&mut rng);
        let ir = issue_root(
            Role::IssuerRegistrar,
            &id("issuer-registrar"),
            &ir_key,
            1,
            NOT_BEFORE,
            NOT_AFTER,
        )
        .unwrap();
        let dr_key = SigningKey::generate(&mut rng);
        let dr = issue_root(
            Role::DataRegistrar,
            &id("data-registrar"),
            &dr_key,
            1,
            NOT_BEFORE,
            NOT_AFTER,
        )
        .unwrap();
        let issuer_key = SigningKey::generate(&mut rng);
        let irc = issue(
            &CertificateRequest::party(
                Role::Issuer,
                id("issuer-1"),
                issuer_key.verifying_key(),
                10,
                NOT_BEFORE,
                NOT_AFTER,
            ),
            &ir,
            &ir_key,
        )
        .unwrap();
        let provider_key = SigningKey::generate(&mut rng);
        let dpr = issue(
            &CertificateRequest::party(
                Role::Provider,
                id("provider-1"),
                provider_key.verifying_key(),
                20,
                NOT_BEFORE,
                NOT_AFTER,
            ),
            &dr,
            &dr_key,
        )
        .unwrap();
        let card_key = SigningKey::generate(&mut rng);
        let card_id = CardId([0xc4; 16]);
        let user_info_digest = crypto::sha256(b"user information DER");
        let rc = issue(
            &CertificateRequest::card(
                card_id,
                card_key.verifying_key(),
                user_info_digest,
                1000,
                NOT_BEFORE,
                NOT_AFTER,
            ),
            &irc,
            &issuer_key,
        )
        .unwrap();
        Fixture {
            rng,
            ir_key,
            ir,
            dr_key,
            dr,
            issuer_key,
            irc,
            provider_key,
            dpr,
            card_key,
            card_id,
            user_info_digest,
            rc,
        }
    }

    pub fn anchors(&self) -> Vec<Certificate> {
        vec![self.ir.clone(), self.dr.clone()]
    }

    /// A card RC from issuer-1 with the given serial and validity.
    pub fn card_rc(
        &mut self,
        serial: u64,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> Certificate {
        let key = SigningKey::generate(&mut self.rng);
        issue(
            &CertificateRequest::card(
                CardId([serial as u8; 16]),
                key.verifying_key(),
                crypto::sha256(b"someone"),
                serial,
                not_before,
                not_after,
            ),
            &self.irc,
            &self.issuer_key,
        )
        .unwrap()
    }
}

/// `der` with its last byte flipped: the last byte of the signature's S integer, so the DER
/// stays well-formed and only the signature breaks.
pub fn with_last_byte_flipped(der: &[u8]) -> Vec<u8> {
    let mut out = der.to_vec();
    let last = out.len() - 1;
    out[last] ^= 0x01;
    out
}
