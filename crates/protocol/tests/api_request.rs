//! SEC-3: a server's check of a party request (`verify_api_request`) accepts a request signed by
//! a certified issuer or provider for exactly this method, target, body, audience and time, and
//! refuses each field changed, a stale or future request, a chain of the wrong role, a rogue
//! root, a revoked or expired certificate, a signer that is not the caller, and another purpose.

use crypto::sha256;
use pki::{Crl, PartyId, PkiError, Role, UnixTime};
use protocol::{
    verify_api_request, ApiRequest, CertifiedData, Challenge, ConsentError, Digest,
    ExpectedRequest, HttpMethod, PartyRole, ProtocolError, Purpose, RequestPath, SignedObject,
};
use testkit::test_pki::{TestParty, TestPki};

const NOW: UnixTime = TestPki::NOW;
const SKEW_S: u64 = ExpectedRequest::DEFAULT_MAX_SKEW_S;
const METHOD: &str = "POST";
const PATH: &str = "/v1/authorizations?card=43";
const BODY: &[u8] = br#"{"sar":"3082"}"#;
const NONCE: Challenge = Challenge([0x4E; 16]);

fn chain(party: &TestParty) -> Vec<Vec<u8>> {
    vec![party.cert.der().to_vec()]
}

/// provider-1's request to issuer-1's server, issued at NOW.
fn request(pki: &TestPki) -> ApiRequest {
    ApiRequest {
        method: HttpMethod::new(METHOD).unwrap(),
        path: RequestPath::new(PATH).unwrap(),
        body_digest: sha256(BODY),
        audience: pki.issuer.id.clone(),
        caller_role: PartyRole::Provider,
        caller: pki.provider.id.clone(),
        issued_at: NOW,
        nonce: NONCE,
    }
}

/// What issuer-1's server received and knows, at NOW, with `crls`.
fn expected<'a>(pki: &'a TestPki, crls: &'a [Crl]) -> ExpectedRequest<'a> {
    ExpectedRequest {
        method: METHOD,
        path: PATH,
        body: BODY,
        audience: &pki.issuer.id,
        issuer_anchor: &pki.issuer_registrar.cert,
        data_anchor: &pki.data_registrar.cert,
        crls,
        now: NOW,
        max_skew_s: SKEW_S,
    }
}

/// `edit` applied to provider-1's request, signed by provider-1 with its DPR.
fn signed(pki: &TestPki, edit: impl FnOnce(&mut ApiRequest)) -> SignedObject {
    let mut r = request(pki);
    edit(&mut r);
    r.sign(&pki.provider.key, chain(&pki.provider))
}

fn certificate_error(result: Result<ApiRequest, ConsentError>) -> PkiError {
    match result {
        Err(ConsentError::Certificate {
            object: "ApiRequest",
            source,
        }) => source,
        other => panic!("expected a certificate refusal, got {other:?}"),
    }
}

#[test]
fn a_providers_request_verifies_and_survives_the_wire() {
    let pki = TestPki::new(1);
    let obj = signed(&pki, |_| {});
    let obj = SignedObject::from_der(&obj.to_der()).unwrap();
    assert_eq!(obj.purpose(), Purpose::ApiRequest);
    assert_eq!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Ok(request(&pki))
    );
}

#[test]
fn an_issuers_request_verifies_under_the_issuer_registrar() {
    let pki = TestPki::new(2);
    let mut r = request(&pki);
    r.caller_role = PartyRole::Issuer;
    r.caller = pki.issuer.id.clone();
    r.audience = pki.provider.id.clone();
    let obj = r.sign(&pki.issuer.key, chain(&pki.issuer));
    let mut expect = expected(&pki, &[]);
    expect.audience = &pki.provider.id;
    assert_eq!(verify_api_request(&obj, &expect), Ok(r));
}

#[test]
fn an_empty_body_is_bound_as_the_digest_of_nothing() {
    let pki = TestPki::new(3);
    let obj = signed(&pki, |r| {
        r.method = HttpMethod::new("GET").unwrap();
        r.body_digest = sha256(b"");
    });
    let mut expect = expected(&pki, &[]);
    expect.method = "GET";
    expect.body = b"";
    assert!(verify_api_request(&obj, &expect).is_ok());
    // The same request with a body smuggled in.
    expect.body = b"x";
    assert_eq!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::BodyDigestMismatch {
            expected: sha256(b"x"),
            found: sha256(b""),
        })
    );
}

#[test]
fn each_received_field_must_match_the_signed_one() {
    let pki = TestPki::new(4);
    let obj = signed(&pki, |_| {});

    let mut expect = expected(&pki, &[]);
    expect.method = "PUT";
    assert_eq!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::MethodMismatch {
            expected: "PUT".into(),
            found: METHOD.into(),
        })
    );

    let mut expect = expected(&pki, &[]);
    expect.path = "/v1/authorizations?card=44";
    assert_eq!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::PathMismatch {
            expected: "/v1/authorizations?card=44".into(),
            found: PATH.into(),
        })
    );

    let mut expect = expected(&pki, &[]);
    expect.body = br#"{"sar":"3083"}"#;
    assert_eq!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::BodyDigestMismatch {
            expected: sha256(br#"{"sar":"3083"}"#),
            found: sha256(BODY),
        })
    );

    // Sent to issuer-1, replayed at provider-2's server.
    let mut expect = expected(&pki, &[]);
    expect.audience = &pki.provider_2.id;
    assert_eq!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::WrongAudience {
            expected: pki.provider_2.id.clone(),
            found: pki.issuer.id.clone(),
        })
    );
}

#[test]
fn requests_outside_the_skew_window_are_stale() {
    let pki = TestPki::new(5);
    for (issued_at, fresh) in [
        (NOW.0 - SKEW_S, true),
        (NOW.0 + SKEW_S, true),
        (NOW.0 - SKEW_S - 1, false),
        (NOW.0 + SKEW_S + 1, false),
        (0, false),
        (u64::MAX, false),
    ] {
        let obj = signed(&pki, |r| r.issued_at = UnixTime(issued_at));
        let result = verify_api_request(&obj, &expected(&pki, &[]));
        if fresh {
            assert!(result.is_ok(), "{issued_at}: {result:?}");
        } else {
            assert_eq!(
                result,
                Err(ConsentError::RequestStale {
                    issued_at: UnixTime(issued_at),
                    now: NOW,
                    max_skew_s: SKEW_S,
                }),
                "{issued_at}"
            );
        }
    }
    // A server with a tighter window.
    let obj = signed(&pki, |r| r.issued_at = UnixTime(NOW.0 - 10));
    let mut expect = expected(&pki, &[]);
    expect.max_skew_s = 5;
    assert!(matches!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::RequestStale { max_skew_s: 5, .. })
    ));
}

#[test]
fn a_chain_of_the_other_role_is_refused() {
    let pki = TestPki::new(6);
    // provider-1 claims to call as an issuer: its DPR does not chain to the Issuer Registrar.
    let obj = signed(&pki, |r| r.caller_role = PartyRole::Issuer);
    let e = certificate_error(verify_api_request(&obj, &expected(&pki, &[])));
    assert!(
        matches!(
            e,
            PkiError::UnexpectedRole {
                expected: Role::Issuer,
                found: Role::Provider,
                ..
            }
        ),
        "{e:?}"
    );

    // issuer-1 claims to call as a provider, with its IRC.
    let mut r = request(&pki);
    r.caller = pki.issuer.id.clone();
    let obj = r.sign(&pki.issuer.key, chain(&pki.issuer));
    let e = certificate_error(verify_api_request(&obj, &expected(&pki, &[])));
    assert!(
        matches!(
            e,
            PkiError::UnexpectedRole {
                expected: Role::Provider,
                found: Role::Issuer,
                ..
            }
        ),
        "{e:?}"
    );

    // Each role's chain is checked against that role's anchor only: with the server's anchors
    // swapped, provider-1's DPR no longer verifies.
    let mut expect = expected(&pki, &[]);
    std::mem::swap(&mut expect.issuer_anchor, &mut expect.data_anchor);
    let e = certificate_error(verify_api_request(&signed(&pki, |_| {}), &expect));
    assert!(matches!(e, PkiError::UnknownIssuer { .. }), "{e:?}");
}

#[test]
fn a_rogue_root_is_refused() {
    let pki = TestPki::new(7);
    let mut r = request(&pki);
    r.caller = pki.rogue_provider.id.clone();
    let obj = r.sign(&pki.rogue_provider.key, chain(&pki.rogue_provider));
    let e = certificate_error(verify_api_request(&obj, &expected(&pki, &[])));
    assert!(matches!(e, PkiError::UnknownIssuer { .. }), "{e:?}");

    // The rogue root itself sent along does not help: anchors are the server's.
    let obj = r.sign(
        &pki.rogue_provider.key,
        vec![
            pki.rogue_provider.cert.der().to_vec(),
            pki.rogue_data_root.cert.der().to_vec(),
        ],
    );
    assert!(matches!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::Certificate { .. })
    ));
}

#[test]
fn a_revoked_dpr_is_refused() {
    let pki = TestPki::new(8);
    let obj = signed(&pki, |_| {});
    let crls = [pki.crl_revoking_provider(pki.provider.cert.serial())];
    let e = certificate_error(verify_api_request(&obj, &expected(&pki, &crls)));
    assert!(
        matches!(e, PkiError::CertificateRevoked { serial: 20, .. }),
        "{e:?}"
    );
    // Another provider's revocation does not touch it.
    let crls = [pki.crl_revoking_provider(pki.provider_2.cert.serial())];
    assert!(verify_api_request(&obj, &expected(&pki, &crls)).is_ok());
}

#[test]
fn a_revoked_irc_is_refused() {
    let pki = TestPki::new(9);
    let mut r = request(&pki);
    r.caller_role = PartyRole::Issuer;
    r.caller = pki.issuer.id.clone();
    r.audience = pki.provider.id.clone();
    let obj = r.sign(&pki.issuer.key, chain(&pki.issuer));
    let crls = [pki.issuer_registrar_crl(&[pki.issuer.cert.serial()])];
    let mut expect = expected(&pki, &crls);
    expect.audience = &pki.provider.id;
    let e = certificate_error(verify_api_request(&obj, &expect));
    assert!(matches!(e, PkiError::CertificateRevoked { .. }), "{e:?}");
}

#[test]
fn an_expired_dpr_is_refused_at_the_servers_time() {
    let pki = TestPki::new(10);
    let expired = pki.expired_provider();
    let obj = request(&pki).sign(&expired.key, chain(&expired));
    let e = certificate_error(verify_api_request(&obj, &expected(&pki, &[])));
    assert!(matches!(e, PkiError::CertificateExpired { .. }), "{e:?}");
    // The request's own issued_at cannot move the check back into the validity.
    let obj = signed(&pki, |r| r.issued_at = UnixTime(NOW.0 - 2 * 86_400));
    let mut expect = expected(&pki, &[]);
    expect.max_skew_s = u64::MAX;
    assert!(verify_api_request(&obj, &expect).is_ok());
    let obj = {
        let mut r = request(&pki);
        r.issued_at = UnixTime(NOW.0 - 2 * 86_400);
        r.sign(&expired.key, chain(&expired))
    };
    assert!(matches!(
        verify_api_request(&obj, &expect),
        Err(ConsentError::Certificate {
            source: PkiError::CertificateExpired { .. },
            ..
        })
    ));
}

#[test]
fn the_signer_must_be_the_caller_and_hold_the_key() {
    let pki = TestPki::new(11);
    // provider-2 signs with its own DPR but names provider-1 as the caller.
    let obj = request(&pki).sign(&pki.provider_2.key, chain(&pki.provider_2));
    assert_eq!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::WrongSigner {
            object: "ApiRequest",
            expected: pki.provider.id.clone(),
            found: pki.provider_2.id.clone(),
        })
    );
    // provider-1's DPR presented, but signed by another key.
    let obj = request(&pki).sign(&pki.provider_2.key, chain(&pki.provider));
    assert_eq!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::ApiRequest
        }))
    );
    // No chain at all.
    let obj = request(&pki).sign(&pki.provider.key, Vec::new());
    assert_eq!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::MissingChain {
            object: "ApiRequest"
        })
    );
    // A certificate that is not DER.
    let obj = request(&pki).sign(&pki.provider.key, vec![vec![0x30, 0x00]]);
    assert!(matches!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::Certificate { .. })
    ));
}

#[test]
fn a_signature_for_another_purpose_is_refused() {
    let pki = TestPki::new(12);
    // The request's very bytes, signed by provider-1 under another purpose.
    let body = request(&pki).to_der();
    let obj = SignedObject::sign(
        Purpose::CertifiedData,
        &body,
        &pki.provider.key,
        chain(&pki.provider),
    )
    .unwrap();
    assert_eq!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::Object(ProtocolError::WrongPurpose {
            expected: Purpose::ApiRequest,
            found: Purpose::CertifiedData,
        }))
    );
    // And an object of another type altogether, relabelled: its body is not an ApiRequest.
    let other = CertifiedData {
        sdi_digest: Digest([1; 32]),
        data_digest: Digest([2; 32]),
    };
    let obj = SignedObject::sign(
        Purpose::ApiRequest,
        &other.to_der(),
        &pki.provider.key,
        chain(&pki.provider),
    )
    .unwrap();
    assert!(matches!(
        verify_api_request(&obj, &expected(&pki, &[])),
        Err(ConsentError::Object(ProtocolError::Malformed {
            object: "ApiRequest",
            ..
        }))
    ));
}

#[test]
fn the_nonce_and_caller_come_back_for_the_servers_nonce_store() {
    let pki = TestPki::new(13);
    let nonce = Challenge::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(2));
    let obj = signed(&pki, |r| r.nonce = nonce);
    let r = verify_api_request(&obj, &expected(&pki, &[])).unwrap();
    assert_eq!(
        (r.caller_role, &r.caller, r.nonce, r.issued_at),
        (
            PartyRole::Provider,
            &PartyId::new("provider-1").unwrap(),
            nonce,
            NOW
        )
    );
    // Verification is pure: the same request verifies twice; refusing the replay is the
    // server's nonce store.
    assert!(verify_api_request(&obj, &expected(&pki, &[])).is_ok());
}
