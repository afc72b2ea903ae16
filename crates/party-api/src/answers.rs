//! What the typed clients of the issuer and the provider share: decoding an answer's hex
//! fields ([`FieldError`] when one does not hold what the API promises) and the unauthenticated
//! `GET`/`POST` every route without a token or party signature goes through.

use pki::Certificate;
use protocol::SignedObject;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Auth, ClientError, HttpClient, Method};

/// A field of an answer that does not hold what the API promises (hex of the right object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the answer's {field} is not {expected}: {detail}")]
pub struct FieldError {
    pub field: &'static str,
    pub expected: &'static str,
    pub detail: String,
}

/// A SHA-256 digest answered as hex.
pub(crate) fn digest_field(field: &'static str, text: &str) -> Result<crypto::Digest, FieldError> {
    const EXPECTED: &str = "a hex SHA-256 digest";
    let bytes = hex_field(field, EXPECTED, text)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(crypto::Digest)
        .map_err(|_| FieldError {
            field,
            expected: EXPECTED,
            detail: format!("{} bytes", bytes.len()),
        })
}

pub(crate) fn hex_field(
    field: &'static str,
    expected: &'static str,
    text: &str,
) -> Result<Vec<u8>, FieldError> {
    hex::decode(text).map_err(|e| FieldError {
        field,
        expected,
        detail: e.to_string(),
    })
}

pub(crate) fn object_field(field: &'static str, text: &str) -> Result<SignedObject, FieldError> {
    const EXPECTED: &str = "a hex DER signed object";
    SignedObject::from_der(&hex_field(field, EXPECTED, text)?).map_err(|e| FieldError {
        field,
        expected: EXPECTED,
        detail: e.to_string(),
    })
}

pub(crate) fn certificate_field(
    field: &'static str,
    text: &str,
) -> Result<Certificate, FieldError> {
    const EXPECTED: &str = "a hex DER certificate";
    Certificate::from_der(&hex_field(field, EXPECTED, text)?).map_err(|e| FieldError {
        field,
        expected: EXPECTED,
        detail: e.to_string(),
    })
}

/// `GET path` without authentication, its answer parsed as `R`.
pub(crate) async fn get<R: DeserializeOwned>(
    http: &HttpClient,
    path: &str,
) -> Result<R, ClientError> {
    http.call::<(), R>(Method::Get, path, None, Auth::None)
        .await
}

/// `POST path` with a JSON `body` without authentication, its answer parsed as `R`.
pub(crate) async fn post<B: Serialize, R: DeserializeOwned>(
    http: &HttpClient,
    path: &str,
    body: &B,
) -> Result<R, ClientError> {
    http.call(Method::Post, path, Some(body), Auth::None).await
}
