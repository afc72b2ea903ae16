//! Issuer integration tests: the API on port 0 with a real card, the store conformance
//! suite, two instances on one database, the registrars' CRLs followed over HTTP, and the
//! issuer's own REG-3 (expired and revoked RCs, its CRL). SQLite always; PostgreSQL when
//! `TEST_POSTGRES_URL` is set (scripts/test.sh sets it; otherwise each PostgreSQL test says it
//! was skipped).

mod api;
mod applications;
mod client;
mod concurrency;
mod conformance;
mod forwarding;
mod registrars;
mod revocation;
mod stub_provider;
mod support;
