//! Provider integration tests: the API on port 0 with a real (in-process) card from
//! `testkit::world::World`, the store conformance suite, and the registrars' and issuers' CRLs
//! followed over HTTP. SQLite always; PostgreSQL when
//! `TEST_POSTGRES_URL` is set (scripts/test.sh sets it; otherwise each PostgreSQL test says it
//! was skipped).

mod api;
mod client;
mod concurrency;
mod conformance;
mod console;
mod delegations;
mod downloads;
mod forwarding;
mod issuer_crls;
mod registrars;
mod stub_issuer;
mod support;
