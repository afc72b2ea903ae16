//! `cardwright registrar …`: run an issuer registrar or a data registrar (REG-1).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use pki::PartyId;
use registrar::{RegistrarConfig, RegistrarRole};
use server_kit::TlsFiles;

#[derive(Subcommand)]
pub enum RegistrarCommand {
    /// Serve the registrar's API until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Manage the people who may act for this registrar.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Certifies issuers (IRC).
    Issuer,
    /// Certifies providers (DPR) and data (SDCI').
    Data,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Which registrar this is.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// This registrar's party ID.
    #[arg(long)]
    id: String,
    /// Database: sqlite:PATH or postgres://…
    #[arg(long)]
    db: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7301")]
    listen: SocketAddr,
    /// Directory for the root key (generated on first start, mode 0600).
    #[arg(long)]
    data_dir: PathBuf,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its bearer token (shown once).
    Add {
        /// Database of the registrar the operator acts for.
        #[arg(long)]
        db: String,
        /// The operator's name.
        name: String,
    },
}

pub fn run(cmd: RegistrarCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cmd {
        RegistrarCommand::Serve(a) => {
            let role = match a.role {
                RoleArg::Issuer => RegistrarRole::IssuerRegistrar,
                RoleArg::Data => RegistrarRole::DataRegistrar,
            };
            let id = PartyId::new(&a.id)?;
            let mut config = RegistrarConfig::new(role, id, a.data_dir, a.db, a.listen);
            config.tls = a.tls_cert.zip(a.tls_key).map(|(c, k)| TlsFiles {
                certificate_chain: c,
                private_key: k,
            });
            server_kit::init_logging();
            runtime.block_on(registrar::serve(config))
        }
        RegistrarCommand::Operator(OperatorCommand::Add { db, name }) => {
            let token = runtime.block_on(registrar::add_operator(&db, &name))?;
            println!("operator {name:?} added; its token (shown once, keep it secret):");
            println!("{}", token.expose());
            Ok(())
        }
    }
}
