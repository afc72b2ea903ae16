//! Issuer integration tests: the API on port 0 with a real card, the store conformance
//! suite, two instances on one database, and the registrars' CRLs followed over HTTP. SQLite always; PostgreSQL when
//! `TEST_POSTGRES_URL` is set (scripts/test.sh sets it; otherwise each PostgreSQL test says it
//! was skipped).

mod api;
mod client;
mod concurrency;
mod conformance;
mod forwarding;
mod registrars;
mod stub_provider;
mod support;
