//! Signing party-to-party requests (SEC-3; docs/parties.md, "Authentication"): the caller signs
//! an `ApiRequest` over method, target, body digest, audience, time and a fresh nonce with its
//! certified key, and sends it hex-encoded in the `Cardwright-Request` header.

use crypto::{Rng, SigningKey};
use pki::{Certificate, PartyId, UnixTime};
use protocol::{ApiRequest, Challenge, HttpMethod, PartyRole, RequestPath};

use crate::ClientError;

/// The header carrying the signed request (server-kit's extractor reads the same name).
pub const PARTY_REQUEST_HEADER: &str = "cardwright-request";

/// A party that signs its requests: its ID and role, its key and the certificate that
/// certifies that key (IRC for an issuer, DPR for a provider).
#[derive(Clone)]
pub struct PartySigner {
    party: PartyId,
    role: PartyRole,
    key: SigningKey,
    certificate: Certificate,
}

impl std::fmt::Debug for PartySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is deliberately left out.
        f.debug_struct("PartySigner")
            .field("party", &self.party)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl PartySigner {
    pub fn new(
        party: PartyId,
        role: PartyRole,
        key: SigningKey,
        certificate: Certificate,
    ) -> PartySigner {
        PartySigner {
            party,
            role,
            key,
            certificate,
        }
    }

    pub fn party(&self) -> &PartyId {
        &self.party
    }

    /// The header value for one request: hex DER of the signed `ApiRequest`.
    pub fn sign_request(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        audience: &PartyId,
        now: UnixTime,
        rng: &mut dyn Rng,
    ) -> Result<String, ClientError> {
        let invalid = |e: protocol::ProtocolError| ClientError::InvalidRequest {
            detail: e.to_string(),
        };
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        let request = ApiRequest {
            method: HttpMethod::new(method).map_err(invalid)?,
            path: RequestPath::new(target).map_err(invalid)?,
            body_digest: crypto::sha256(body),
            audience: audience.clone(),
            caller_role: self.role,
            caller: self.party.clone(),
            issued_at: now,
            nonce: Challenge(nonce),
        };
        let signed = request.sign(&self.key, vec![self.certificate.der().to_vec()]);
        Ok(hex::encode(signed.to_der()))
    }
}
