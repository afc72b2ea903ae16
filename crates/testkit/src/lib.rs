//! Test support shared by every crate's tests: seeded randomness, a manual clock, a test PKI,
//! a fault-injecting NVM with an exhaustive tear harness, and an APDU transcript runner.
//! Everything here is for tests and benchmarks only; nothing in it is secure.

pub mod fault;
pub mod tear;
pub mod test_pki;
pub mod transcript;
pub mod world;
