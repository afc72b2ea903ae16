//! Chain verification: is this leaf certificate, with these intermediates, acceptable for this
//! role at this time, from these trust anchors, given these CRLs? The algorithm and its errors
//! are in `docs/pki.md` ("Chain verification"); it is RFC 5280 §6 narrowed to our profiles.

use crypto::{Digest, VerifyingKey};

use crate::{CardId, Certificate, Crl, PartyId, PkiError, Role, UnixTime};

/// The most certificates a chain may hold (leaf first, anchor included if the caller put it
/// there): card RC, IRC, Issuer Registrar root. Longer chains are refused before any work.
pub const MAX_CHAIN_LEN: usize = 3;

/// What [`verify_chain`] established about the leaf. Everything here was signed by the
/// anchor's chain and was valid and unrevoked at the `now` given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    pub leaf_role: Role,
    /// The leaf's party ID (for a card, its hex card ID).
    pub leaf_subject: PartyId,
    pub leaf_key: VerifyingKey,
    pub leaf_serial: u64,
    /// SHA-256 of the leaf certificate's DER.
    pub leaf_digest: Digest,
    /// Who certified the leaf (for an RC, the issuer; for a root, the root itself).
    pub leaf_issuer: PartyId,
    /// For card certificates: the card ID and the user information digest.
    pub leaf_card_id: Option<CardId>,
    pub leaf_user_info_digest: Option<Digest>,
    /// The earliest `not_after` on the path, anchor included: the chain verifies until then
    /// (revocation aside).
    pub valid_until: UnixTime,
    /// The trust anchor the chain ends at.
    pub anchor_subject: PartyId,
    pub anchor_digest: Digest,
}

/// Verifies `chain` (leaf first, then its issuers; trust anchors need not be included) up to one
/// of `anchors` at time `now`, for a leaf of role `expected_leaf_role`:
///
/// 1. the chain is non-empty and at most [`MAX_CHAIN_LEN`] long; the leaf has the expected role;
/// 2. the path is built: a certificate whose name and key are an anchor's *is* that anchor
///    (so a registrar root can be the leaf); otherwise its issuer is the next certificate, or,
///    after the last, the anchor with the issuer's name (and key identifier, when several share
///    the name). No anchor by that name: [`PkiError::UnknownIssuer`]. Certificates after the
///    anchor: [`PkiError::TrailingCertificates`];
/// 3. for each non-anchor certificate, leaf first: valid at `now`; linked to its issuer by name
///    and key identifier; the issuer is a CA whose role may certify this role; the issuer's
///    pathLenConstraint holds; the signature verifies ([`Certificate::verify_signed_by`]);
///    not revoked: every CRL in `crls` whose issuer name and key identifier are the issuer's
///    must verify under the issuer ([`PkiError::BadCrlSignature`] if not — a CRL that claims to
///    be from the issuer and is not is an error, never silently ignored) and must not list the
///    serial. CRLs are used whatever their thisUpdate/nextUpdate: a listed serial is revoked;
///    deciding whether a CRL is fresh enough is the caller's policy;
/// 4. the anchor is valid at `now` (anchors are trusted, not signature-checked or revoked).
pub fn verify_chain(
    chain: &[Certificate],
    anchors: &[Certificate],
    crls: &[Crl],
    now: UnixTime,
    expected_leaf_role: Role,
) -> Result<VerifiedChain, PkiError> {
    let first = chain.first().ok_or(PkiError::EmptyChain)?;
    if chain.len() > MAX_CHAIN_LEN {
        return Err(PkiError::PathTooLong {
            len: chain.len(),
            max: MAX_CHAIN_LEN,
        });
    }
    check_role(first, expected_leaf_role)?;

    // Path building: `path` holds the non-anchor certificates, leaf first.
    let mut path: Vec<&Certificate> = Vec::with_capacity(chain.len());
    let mut remaining = chain.iter();
    let anchor = loop {
        let Some(current) = remaining.next() else {
            // `chain` is non-empty, so `path` is too by now: its last certificate's issuer
            // must be an anchor.
            let last = path.last().ok_or(PkiError::EmptyChain)?;
            break issuing_anchor(last, anchors)?;
        };
        if let Some(anchor) = anchor_for(current, anchors) {
            break anchor;
        }
        path.push(current);
    };
    let trailing = remaining.count();
    if trailing > 0 {
        return Err(PkiError::TrailingCertificates {
            anchor: anchor.subject_id().to_string(),
            count: trailing,
        });
    }
    let leaf = path.first().copied().unwrap_or(anchor);
    check_role(leaf, expected_leaf_role)?;

    let mut valid_until = anchor.not_after();
    for (index, cert) in path.iter().enumerate() {
        let issuer = path.get(index + 1).copied().unwrap_or(anchor);
        cert.check_valid_at(now)?;
        cert.verify_signed_by(issuer)?;
        // Intermediates below `issuer` on this path: path[1..=index].
        if let Some(max) = issuer.path_len() {
            if index > usize::from(max) {
                return Err(PkiError::PathTooLong {
                    len: index,
                    max: usize::from(max),
                });
            }
        }
        check_not_revoked(cert, issuer, crls)?;
        valid_until = valid_until.min(cert.not_after());
    }
    anchor.check_valid_at(now)?;

    Ok(VerifiedChain {
        leaf_role: leaf.role(),
        leaf_subject: leaf.subject_id().clone(),
        leaf_key: leaf.public_key(),
        leaf_serial: leaf.serial(),
        leaf_digest: leaf.digest(),
        leaf_issuer: leaf.issuer_id().clone(),
        leaf_card_id: leaf.card_id(),
        leaf_user_info_digest: leaf.user_info_digest(),
        valid_until,
        anchor_subject: anchor.subject_id().clone(),
        anchor_digest: anchor.digest(),
    })
}

fn check_role(cert: &Certificate, expected: Role) -> Result<(), PkiError> {
    if cert.role() == expected {
        Ok(())
    } else {
        Err(PkiError::UnexpectedRole {
            subject: cert.subject_id().to_string(),
            expected,
            found: cert.role(),
        })
    }
}

/// The anchor that `cert` is (same subject name, same key).
fn anchor_for<'a>(cert: &Certificate, anchors: &'a [Certificate]) -> Option<&'a Certificate> {
    anchors
        .iter()
        .find(|a| a.subject_id() == cert.subject_id() && a.public_key() == cert.public_key())
}

/// The anchor named as `cert`'s issuer, preferring the one whose key identifier `cert` names.
fn issuing_anchor<'a>(
    cert: &Certificate,
    anchors: &'a [Certificate],
) -> Result<&'a Certificate, PkiError> {
    let mut named = anchors
        .iter()
        .filter(|a| a.subject_id() == cert.issuer_id())
        .peekable();
    let first = named.peek().copied().ok_or(PkiError::UnknownIssuer {
        issuer: cert.issuer_id().to_string(),
    })?;
    Ok(named
        .find(|a| a.subject_key_id() == cert.authority_key_id())
        .unwrap_or(first))
}

fn check_not_revoked(
    cert: &Certificate,
    issuer: &Certificate,
    crls: &[Crl],
) -> Result<(), PkiError> {
    let from_issuer = crls.iter().filter(|crl| {
        crl.issuer_id() == issuer.subject_id() && crl.authority_key_id() == issuer.subject_key_id()
    });
    for crl in from_issuer {
        crl.verify_signed_by(issuer)?;
        if crl.is_revoked(cert.serial()) {
            return Err(PkiError::CertificateRevoked {
                subject: cert.subject_id().to_string(),
                serial: cert.serial(),
                crl_number: crl.number(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! What `issue` would refuse to make, forged with the internal signer, must not verify.
    use super::*;
    use crate::certificate::{sign_certificate, TbsFields};
    use crate::{issue, issue_root, CertificateRequest};
    use crypto::{InsecureSeededRng, SigningKey};

    const NOW: UnixTime = UnixTime(1_800_000_000);
    const FROM: UnixTime = UnixTime(1_700_000_000);
    const UNTIL: UnixTime = UnixTime(1_900_000_000);

    fn id(s: &str) -> PartyId {
        PartyId::new(s).unwrap()
    }

    struct Setup {
        anchors: Vec<Certificate>,
        irc: Certificate,
        dpr: Certificate,
        ir_key: SigningKey,
        provider_key: SigningKey,
        card_key: SigningKey,
    }

    fn setup() -> Setup {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(5);
        let ir_key = SigningKey::generate(&mut rng);
        let ir = issue_root(Role::IssuerRegistrar, &id("ir"), &ir_key, 1, FROM, UNTIL).unwrap();
        let dr_key = SigningKey::generate(&mut rng);
        let dr = issue_root(Role::DataRegistrar, &id("dr"), &dr_key, 1, FROM, UNTIL).unwrap();
        let issuer_key = SigningKey::generate(&mut rng);
        let irc = issue(
            &CertificateRequest::party(
                Role::Issuer,
                id("issuer-1"),
                issuer_key.verifying_key(),
                2,
                FROM,
                UNTIL,
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
                3,
                FROM,
                UNTIL,
            ),
            &dr,
            &dr_key,
        )
        .unwrap();
        Setup {
            anchors: vec![ir, dr],
            irc,
            dpr,
            ir_key,
            provider_key,
            card_key: SigningKey::generate(&mut rng),
        }
    }

    fn forged_rc(s: &Setup, issuer: &Certificate) -> Certificate {
        let card_id = CardId([9; 16]);
        sign_certificate(
            &TbsFields {
                role: Role::Card,
                subject: &PartyId::for_card(&card_id),
                issuer: issuer.subject_id(),
                public_key: &s.card_key.verifying_key(),
                serial: 99,
                not_before: FROM,
                not_after: UNTIL,
                authority_key_id: *issuer.subject_key_id(),
                card: Some((card_id, crypto::sha256(b"user"))),
            },
            &s.provider_key,
        )
        .unwrap()
    }

    #[test]
    fn a_card_certificate_signed_by_a_provider_is_refused() {
        let s = setup();
        let rc = forged_rc(&s, &s.dpr);
        assert_eq!(
            verify_chain(&[rc, s.dpr.clone()], &s.anchors, &[], NOW, Role::Card),
            Err(PkiError::NotACa {
                subject: "provider-1".into(),
                serial: 3
            })
        );
    }

    #[test]
    fn a_provider_signing_in_an_issuers_name_is_refused() {
        let s = setup();
        let rc = forged_rc(&s, &s.irc);
        assert_eq!(
            verify_chain(&[rc, s.irc.clone()], &s.anchors, &[], NOW, Role::Card),
            Err(PkiError::BadSignature {
                subject: CardId([9; 16]).to_hex(),
                serial: 99
            })
        );
    }

    #[test]
    fn a_provider_certifying_a_provider_is_refused() {
        let s = setup();
        let other = sign_certificate(
            &TbsFields {
                role: Role::Provider,
                subject: &id("provider-2"),
                issuer: s.dpr.subject_id(),
                public_key: &s.card_key.verifying_key(),
                serial: 5,
                not_before: FROM,
                not_after: UNTIL,
                authority_key_id: *s.dpr.subject_key_id(),
                card: None,
            },
            &s.provider_key,
        )
        .unwrap();
        assert!(matches!(
            verify_chain(
                &[other, s.dpr.clone()],
                &s.anchors,
                &[],
                NOW,
                Role::Provider
            ),
            Err(PkiError::NotACa { .. })
        ));
    }

    #[test]
    fn a_registrar_certifying_outside_its_role_is_refused() {
        let s = setup();
        let ir = &s.anchors[0];
        let dpr = sign_certificate(
            &TbsFields {
                role: Role::Provider,
                subject: &id("provider-9"),
                issuer: ir.subject_id(),
                public_key: &s.card_key.verifying_key(),
                serial: 6,
                not_before: FROM,
                not_after: UNTIL,
                authority_key_id: *ir.subject_key_id(),
                card: None,
            },
            &s.ir_key,
        )
        .unwrap();
        assert_eq!(
            verify_chain(&[dpr], &s.anchors, &[], NOW, Role::Provider),
            Err(PkiError::IssuanceNotAllowed {
                issuer_role: Role::IssuerRegistrar,
                subject_role: Role::Provider
            })
        );
    }
}
