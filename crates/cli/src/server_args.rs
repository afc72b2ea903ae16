//! Command-line pieces every server subcommand shares: TLS files and operator management.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use server_kit::{OperatorToken, TlsFiles};

#[derive(Args)]
pub struct TlsArgs {
    /// PEM certificate chain for TLS (with --tls-key); without both, plain HTTP.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn files(self) -> Option<TlsFiles> {
        self.tls_cert.zip(self.tls_key).map(|(c, k)| TlsFiles {
            certificate_chain: c,
            private_key: k,
        })
    }
}

/// The subcommands of an issuer or provider server, without either's own arguments (each
/// server's command converts from it, its own arguments at their defaults).
#[derive(Subcommand)]
pub enum PartyCommand {
    /// Serve the party's API until Ctrl-C or SIGTERM.
    Serve(PartyServeArgs),
    /// Manage the people who may act for this party.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its bearer token (shown once).
    Add {
        /// Database of the party the operator acts for.
        #[arg(long)]
        db: String,
        /// The operator's name.
        name: String,
    },
}

pub fn print_token(name: &str, token: &OperatorToken) {
    println!("operator {name:?} added; its token (shown once, keep it secret):");
    println!("{}", token.expose());
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// What an issuer or a provider server needs to start: its identity (key + certificate from its
/// registrar), the registrars' roots and CRLs, its database and where to listen. Each server
/// flattens it with its own arguments (`issuer_cmd::IssuerArgs`, `provider_cmd::ProviderArgs`).
#[derive(Args)]
pub struct PartyServeArgs {
    /// This party's ID (the subject of its certificate).
    #[arg(long)]
    pub id: String,
    /// Database: sqlite:PATH or postgres://…
    #[arg(long)]
    pub db: String,
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The party's private key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// Its certificate from its registrar: the IRC of an issuer, the DPR of a provider (DER or
    /// PEM).
    #[arg(long)]
    pub certificate: PathBuf,
    /// The Issuer Registrar's root certificate.
    #[arg(long)]
    pub issuer_registrar_root: PathBuf,
    /// The Data Registrar's root certificate.
    #[arg(long)]
    pub data_registrar_root: PathBuf,
    /// Revocation lists to honour (repeatable).
    #[arg(long = "crl")]
    pub crls: Vec<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
}
