//! Party-to-party HTTP request authentication (SPEC SEC-1, SEC-3; docs/parties.md,
//! "Authentication"): the [`ApiRequest`] a calling issuer or provider signs over one request
//! (method, target, body digest, audience, time, nonce), and the server's check of it,
//! [`verify_api_request`]. What needs state — refusing a nonce seen before — is the server's
//! (its database); what needs a clock enters as [`ExpectedRequest::now`].

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::Sequence;

use crate::codec::der_codec;
use crate::consent::{open_certified, Trust};
use crate::error::{ConsentError, ProtocolError};
use crate::field::{self, invalid, octets, rename, utf8, Challenge};
use crate::signed::{Purpose, Signed, SignedObject};
use crate::storing::PartyRole;
use crypto::{Digest, SigningKey};
use pki::{Certificate, Crl, PartyId, UnixTime};

/// An HTTP request method (RFC 9110 §9) as signed: 1..=10 uppercase ASCII letters (`GET`,
/// `POST`, `PUT`, `DELETE`…). Methods are case-sensitive, so one spelling is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpMethod(String);

impl HttpMethod {
    pub const MAX_LEN: usize = 10;

    pub fn new(method: &str) -> Result<HttpMethod, ProtocolError> {
        let ok = (1..=Self::MAX_LEN).contains(&method.len())
            && method.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            return Err(invalid(
                "HttpMethod",
                "method",
                format!(
                    "{method:?} is not 1..={} uppercase ASCII letters",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(HttpMethod(method.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request target in origin form (RFC 9112 §3.2.1): the path and the query, if any,
/// exactly as sent. 1..=512 visible ASCII characters (`!`..=`~`: no space, no control), starting
/// with `/`. Binding the query too means a signed `GET /v1/x?a=1` cannot be replayed as `?a=2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestPath(String);

impl RequestPath {
    pub const MAX_LEN: usize = 512;

    pub fn new(path: &str) -> Result<RequestPath, ProtocolError> {
        let ok = (1..=Self::MAX_LEN).contains(&path.len())
            && path.starts_with('/')
            && path.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            let shown: String = path.chars().take(64).collect();
            return Err(invalid(
                "RequestPath",
                "path",
                format!(
                    "{shown:?} ({} bytes) is not 1..={} visible ASCII characters starting with '/'",
                    path.len(),
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(RequestPath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One authenticated party-to-party HTTP request (SEC-3), signed by the caller with its chain
/// (`[IRC]` as issuer, `[DPR]` as provider) and carried in the `Cardwright-Request` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: HttpMethod,
    pub path: RequestPath,
    /// SHA-256 of the exact request body bytes (of the empty string when there is no body).
    pub body_digest: Digest,
    /// The party whose server the request is for.
    pub audience: PartyId,
    pub caller_role: PartyRole,
    pub caller: PartyId,
    /// The caller's clock when it signed; the server refuses it outside its skew window.
    pub issued_at: UnixTime,
    /// 16 random bytes; the server refuses a nonce it has already accepted.
    pub nonce: Challenge,
}

#[derive(Sequence)]
pub(crate) struct ApiRequestWire<'a> {
    method: Utf8StringRef<'a>,
    path: Utf8StringRef<'a>,
    body_digest: OctetStringRef<'a>,
    audience: Utf8StringRef<'a>,
    caller_role: PartyRole,
    caller: Utf8StringRef<'a>,
    issued_at: u64,
    nonce: OctetStringRef<'a>,
}

impl ApiRequest {
    fn to_wire(&self) -> der::Result<ApiRequestWire<'_>> {
        Ok(ApiRequestWire {
            method: utf8(self.method.as_str())?,
            path: utf8(self.path.as_str())?,
            body_digest: octets(&self.body_digest.0)?,
            audience: utf8(self.audience.as_str())?,
            caller_role: self.caller_role,
            caller: utf8(self.caller.as_str())?,
            issued_at: self.issued_at.0,
            nonce: octets(&self.nonce.0)?,
        })
    }

    fn from_wire(wire: ApiRequestWire<'_>) -> Result<ApiRequest, ProtocolError> {
        const OBJECT: &str = "ApiRequest";
        Ok(ApiRequest {
            method: HttpMethod::new(wire.method.as_str())
                .map_err(|e| rename(e, OBJECT, "method"))?,
            path: RequestPath::new(wire.path.as_str()).map_err(|e| rename(e, OBJECT, "path"))?,
            body_digest: field::digest(OBJECT, "bodyDigest", wire.body_digest)?,
            audience: field::party(OBJECT, "audience", wire.audience)?,
            caller_role: wire.caller_role,
            caller: field::party(OBJECT, "caller", wire.caller)?,
            issued_at: UnixTime(wire.issued_at),
            nonce: field::challenge(OBJECT, "nonce", wire.nonce)?,
        })
    }

    /// Signs this request (chain: the caller's `[IRC]` as issuer or `[DPR]` as provider).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }
}

der_codec!(ApiRequest, ApiRequestWire, "ApiRequest");

impl Signed for ApiRequest {
    const PURPOSE: Purpose = Purpose::ApiRequest;
}

/// What the receiving server knows about the request it is authenticating: what actually
/// arrived, who it is, whom it trusts, and its own clock.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedRequest<'a> {
    /// The method received.
    pub method: &'a str,
    /// The request target received (path and query, as sent).
    pub path: &'a str,
    /// The exact body bytes received.
    pub body: &'a [u8],
    /// This server's party.
    pub audience: &'a PartyId,
    /// The Issuer Registrar root: anchor for callers in role issuer.
    pub issuer_anchor: &'a Certificate,
    /// The Data Registrar root: anchor for callers in role provider.
    pub data_anchor: &'a Certificate,
    /// The server's current revocation lists.
    pub crls: &'a [Crl],
    /// The server's clock.
    pub now: UnixTime,
    /// How far `issued_at` may lie from `now`, either way, in seconds.
    pub max_skew_s: u64,
}

impl ExpectedRequest<'_> {
    /// The skew window docs/parties.md fixes for the parties' servers (±300 s).
    pub const DEFAULT_MAX_SKEW_S: u64 = 300;
}

/// The server's check of a party request (SEC-1, SEC-3). Refuses, in this order:
///
/// 1. another purpose (`Object(WrongPurpose)`);
/// 2. a chain that does not verify at `now` to the anchor of the claimed `caller_role` — Issuer
///    Registrar for `[IRC]`, Data Registrar for `[DPR]` — with `crls` (`MissingChain`,
///    `Certificate { source }`: unknown root, wrong certificate role, expired, revoked);
/// 3. a leaf that is not `caller` (`WrongSigner`); a bad signature (`Object(BadSignature)`,
///    canonical low-S only);
/// 4. another method, target, body or audience than the server's (`MethodMismatch`,
///    `PathMismatch`, `BodyDigestMismatch`, `WrongAudience`), checked only once the request is
///    authentic, so an unauthenticated sender learns nothing from them;
/// 5. `|issued_at − now| > max_skew_s` (`RequestStale`).
///
/// Returns the request. The caller MUST then refuse a nonce it has accepted before (store
/// `(caller, nonce)` at least until `issued_at + max_skew_s` has passed; past that the request
/// is stale anyway): this function is pure and cannot.
pub fn verify_api_request(
    obj: &SignedObject,
    expect: &ExpectedRequest<'_>,
) -> Result<ApiRequest, ConsentError> {
    let trust = Trust {
        issuer_anchor: expect.issuer_anchor,
        data_anchor: expect.data_anchor,
        crls: expect.crls,
    };
    let (request, _) = open_certified::<ApiRequest>(obj, "ApiRequest", trust, |claimed| {
        (claimed.caller_role, claimed.caller.clone(), expect.now)
    })?;
    if request.method.as_str() != expect.method {
        return Err(ConsentError::MethodMismatch {
            expected: expect.method.to_string(),
            found: request.method.as_str().to_string(),
        });
    }
    if request.path.as_str() != expect.path {
        return Err(ConsentError::PathMismatch {
            expected: expect.path.to_string(),
            found: request.path.as_str().to_string(),
        });
    }
    let body_digest = crypto::sha256(expect.body);
    if request.body_digest != body_digest {
        return Err(ConsentError::BodyDigestMismatch {
            expected: body_digest,
            found: request.body_digest,
        });
    }
    if request.audience != *expect.audience {
        return Err(ConsentError::WrongAudience {
            expected: expect.audience.clone(),
            found: request.audience,
        });
    }
    if request.issued_at.0.abs_diff(expect.now.0) > expect.max_skew_s {
        return Err(ConsentError::RequestStale {
            issued_at: request.issued_at,
            now: expect.now,
            max_skew_s: expect.max_skew_s,
        });
    }
    Ok(request)
}
