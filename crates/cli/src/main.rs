//! The `cardwright` binary. Only wiring: parse the command line, call the crate that does it.

mod bench;
mod card_cmd;
mod demo;
mod issuer_cmd;
mod provider_cmd;
mod registrar_cmd;
mod server_args;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cardwright",
    version,
    about = "Manage what lives on secure elements"
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// A card on this computer: create, inspect, send APDUs, serve into pcscd.
    #[command(subcommand)]
    Card(card_cmd::CardCommand),
    /// Measure throughput next to the bound that limits it.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// An issuer registrar or a data registrar (REG-1).
    #[command(subcommand)]
    Registrar(registrar_cmd::RegistrarCommand),
    /// A card issuer's server (personalisation, registration, authorizations, records).
    #[command(subcommand)]
    Issuer(server_args::PartyCommand),
    /// A service provider's server (catalog, authorizations, receipts, ledger).
    #[command(subcommand)]
    Provider(server_args::PartyCommand),
    /// Walk a card through personalisation, registration, every storing path, deletion and
    /// refusals, with in-process parties and a sealed card image in a fresh data directory.
    Demo(demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Top::Card(c) => card_cmd::run(c),
        Top::Bench(b) => bench::run(b),
        Top::Demo(d) => demo::run(d),
        Top::Registrar(r) => registrar_cmd::run(r),
        Top::Provider(p) => provider_cmd::run(p),
        Top::Issuer(i) => issuer_cmd::run(i),
    }
}
