//! Registrar integration tests: the API on port 0, the store conformance suite, and several
//! instances on one database. SQLite always; PostgreSQL when `TEST_POSTGRES_URL` is set
//! (scripts/test.sh sets it; otherwise each PostgreSQL test says it was skipped).

mod api;
mod certified_data;
mod client;
mod concurrency;
mod conformance;
mod crl_refresh;
mod support;
