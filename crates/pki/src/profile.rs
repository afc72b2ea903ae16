//! The certificate profile of each [`Role`]: basic constraints, key usage, who may certify whom,
//! who may sign CRLs, the role's code in our role extension, and key identifiers.
//! `docs/pki.md` has the same table for people.

use der::flagset::FlagSet;
use der::Enumerated;
use x509_cert::ext::pkix::KeyUsages;

use crate::Role;

/// Key identifiers are the leftmost 160 bits of SHA-256 of the subjectPublicKey bits
/// (RFC 7093 §2 method 1; RFC 5280 §4.2.1.2 allows any method, and `crypto` has no SHA-1).
pub const KEY_IDENTIFIER_LEN: usize = 20;

/// The key identifier of `key` (the SKI of its certificate, the AKI of what it signs).
pub(crate) fn key_identifier(key: &crypto::VerifyingKey) -> [u8; KEY_IDENTIFIER_LEN] {
    let digest = crypto::sha256(&key.to_sec1());
    let mut id = [0u8; KEY_IDENTIFIER_LEN];
    id.copy_from_slice(&digest.0[..KEY_IDENTIFIER_LEN]);
    id
}

/// What a role's certificate says about CA-ness and key use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u8>,
    pub(crate) key_usage: FlagSet<KeyUsages>,
}

pub(crate) fn profile(role: Role) -> Profile {
    use KeyUsages::{CRLSign, DigitalSignature, KeyCertSign};
    match role {
        // Registrars also sign protocol objects (the Data Registrar's SDCI', signed times),
        // hence digitalSignature beside keyCertSign and cRLSign. pathLen: the Issuer
        // Registrar's paths hold one CA (the IRC) below it, the Data Registrar's none.
        Role::IssuerRegistrar => Profile {
            ca: true,
            path_len: Some(1),
            key_usage: KeyCertSign | CRLSign | DigitalSignature,
        },
        Role::DataRegistrar => Profile {
            ca: true,
            path_len: Some(0),
            key_usage: KeyCertSign | CRLSign | DigitalSignature,
        },
        Role::Issuer => Profile {
            ca: true,
            path_len: Some(0),
            key_usage: KeyCertSign | CRLSign | DigitalSignature,
        },
        Role::Provider | Role::Card => Profile {
            ca: false,
            path_len: None,
            key_usage: DigitalSignature.into(),
        },
    }
}

impl Role {
    /// Registrars are the roots: their certificates are self-signed trust anchors.
    pub fn is_registrar(self) -> bool {
        matches!(self, Role::IssuerRegistrar | Role::DataRegistrar)
    }

    /// Whether a certificate of this role may certify a `subject` of another role: the Issuer
    /// Registrar certifies issuers, the Data Registrar providers, an issuer its cards (SPEC §1,
    /// REG-1, REG-2). Registrars certify themselves only (self-signed roots).
    pub fn may_issue(self, subject: Role) -> bool {
        matches!(
            (self, subject),
            (Role::IssuerRegistrar, Role::Issuer)
                | (Role::DataRegistrar, Role::Provider)
                | (Role::Issuer, Role::Card)
        )
    }

    /// Whether this role signs CRLs: registrars for what they certified, issuers for their
    /// cards.
    pub fn may_sign_crl(self) -> bool {
        matches!(
            self,
            Role::IssuerRegistrar | Role::DataRegistrar | Role::Issuer
        )
    }
}

/// The role as it is written in the role extension (`CARDWRIGHT_ARC.1`):
/// `Role ::= ENUMERATED { issuerRegistrar(1), dataRegistrar(2), issuer(3), provider(4), card(5) }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enumerated)]
#[repr(u8)]
pub(crate) enum RoleCode {
    IssuerRegistrar = 1,
    DataRegistrar = 2,
    Issuer = 3,
    Provider = 4,
    Card = 5,
}

impl From<Role> for RoleCode {
    fn from(role: Role) -> RoleCode {
        match role {
            Role::IssuerRegistrar => RoleCode::IssuerRegistrar,
            Role::DataRegistrar => RoleCode::DataRegistrar,
            Role::Issuer => RoleCode::Issuer,
            Role::Provider => RoleCode::Provider,
            Role::Card => RoleCode::Card,
        }
    }
}

impl From<RoleCode> for Role {
    fn from(code: RoleCode) -> Role {
        match code {
            RoleCode::IssuerRegistrar => Role::IssuerRegistrar,
            RoleCode::DataRegistrar => Role::DataRegistrar,
            RoleCode::Issuer => Role::Issuer,
            RoleCode::Provider => Role::Provider,
            RoleCode::Card => Role::Card,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    const ROLES: [Role; 5] = [
        Role::IssuerRegistrar,
        Role::DataRegistrar,
        Role::Issuer,
        Role::Provider,
        Role::Card,
    ];

    #[test]
    fn role_codes_round_trip_as_enumerated() {
        for role in ROLES {
            let der = RoleCode::from(role).to_der().unwrap();
            assert_eq!(der[0], 0x0a, "ENUMERATED tag");
            assert_eq!(Role::from(RoleCode::from_der(&der).unwrap()), role);
        }
        assert!(RoleCode::from_der(&[0x0a, 0x01, 0x06]).is_err());
        assert!(RoleCode::from_der(&[0x0a, 0x01, 0x00]).is_err());
    }

    #[test]
    fn only_cas_issue_and_nobody_issues_a_registrar() {
        for issuer in ROLES {
            for subject in ROLES {
                if issuer.may_issue(subject) {
                    assert!(profile(issuer).ca);
                    assert!(!subject.is_registrar());
                }
            }
            assert_eq!(issuer.may_sign_crl(), profile(issuer).ca);
        }
    }
}
