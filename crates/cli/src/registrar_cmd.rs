//! `cardwright registrar …`: run an issuer registrar or a data registrar (REG-1).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use pki::PartyId;
use registrar::{RegistrarConfig, RegistrarRole};

use crate::server_args::{print_token, runtime, OperatorCommand, TlsArgs};

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
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn run(cmd: RegistrarCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match cmd {
        RegistrarCommand::Serve(a) => {
            let role = match a.role {
                RoleArg::Issuer => RegistrarRole::IssuerRegistrar,
                RoleArg::Data => RegistrarRole::DataRegistrar,
            };
            let id = PartyId::new(&a.id)?;
            let mut config = RegistrarConfig::new(role, id, a.data_dir, a.db, a.listen);
            config.tls = a.tls.files();
            server_kit::init_logging();
            runtime.block_on(registrar::serve(config))
        }
        RegistrarCommand::Operator(OperatorCommand::Add { db, name }) => {
            let token = runtime.block_on(registrar::add_operator(&db, &name))?;
            print_token(&name, &token);
            Ok(())
        }
    }
}
