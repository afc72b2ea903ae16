//! Issuer integration tests: the API on port 0 with a real card, the store conformance
//! suite, two instances on one database, the registrars' CRLs followed over HTTP, the
//! issuer's own REG-3 (expired and revoked RCs, its CRL), and issue 4 (the application DB,
//! the standing check, download operations, the member notifier). SQLite always; PostgreSQL when
//! `TEST_POSTGRES_URL` is set (scripts/test.sh sets it; otherwise each PostgreSQL test says it
//! was skipped).

mod api;
mod applications;
mod client;
mod concurrency;
mod conformance;
mod conformance_download;
mod console;
mod downloading;
mod downloads;
mod forwarding;
mod notifier;
mod registrars;
mod revocation;
mod standing;
mod stub_provider;
mod support;
