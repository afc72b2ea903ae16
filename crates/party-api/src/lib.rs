//! The parties' HTTP APIs as a caller sees them (docs/parties.md): the JSON types of every
//! route (the servers serialise the same types), a small HTTP/1.1 client with optional TLS and
//! kept-alive connections ([`HttpClient`]), the signing of party-to-party requests
//! ([`PartySigner`], the `Cardwright-Request` header), and one typed client per server
//! ([`registrar::RegistrarClient`], [`issuer::IssuerClient`], [`provider::ProviderClient`]).
//!
//! It holds no secret but a calling party's own signing key, and knows no server's internals:
//! the terminal, the CLI, the e2e tests and the servers' calls to each other all use it.

mod answers;
mod error;
pub mod issuer;
pub mod issuer_download;
pub mod provider;
pub mod provider_download;
pub mod registrar;
mod signer;
mod transport;

pub use error::{CallFailure, ClientError};
pub use signer::{PartySigner, PARTY_REQUEST_HEADER};
pub use transport::{Auth, HttpClient, Method};
