//! The `cardwright` binary. Only wiring: parse the command line, call the crate that does it.

mod bench;
mod card_cmd;
mod demo;
mod issuer_cmd;
mod provider_cmd;
mod registrar_cmd;
mod server_args;
mod terminal_cmd;
mod up;

use clap::{Parser, Subcommand};
/// Manage what lives on secure elements
#[derive(Parser)]
#[command(name = "cardwright", version)]
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
    Issuer(issuer_cmd::IssuerCommand),
    /// A service provider's server (catalog, authorizations, receipts, ledger).
    #[command(subcommand)]
    Provider(provider_cmd::ProviderCommand),
    /// The user's terminal: a card on this computer and the parties' servers.
    #[command(subcommand)]
    Terminal(terminal_cmd::TerminalCommand),
    /// Run every party on loopback (SQLite in a data directory) until Ctrl-C.
    Up(up::UpArgs),
    /// Bring every party up in a fresh directory and walk a card through every flow.
    Demo(demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Top::Card(c) => card_cmd::run(c),
        Top::Bench(b) => bench::run(b),
        Top::Demo(d) => demo::run(d),
        Top::Up(u) => up::run(u),
        Top::Terminal(t) => terminal_cmd::run(t),
        Top::Registrar(r) => registrar_cmd::run(r),
        Top::Provider(p) => provider_cmd::run(p),
        Top::Issuer(i) => issuer_cmd::run(i),
    }
}
