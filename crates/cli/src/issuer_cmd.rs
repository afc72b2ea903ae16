//! `cardwright issuer …`: run a card issuer's server (personalisation, REG-2, STO-1…7 issuer side),
//! with the arguments every party server shares plus the issuer's own: the registrars whose
//! CRLs it follows (REG-3) and the TLS roots of the providers and registrars it calls.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use issuer::IssuerConfig;
use pki::PartyId;

use crate::server_args::{print_token, runtime, OperatorCommand, PartyCommand, PartyServeArgs};

/// The subcommands of an issuer server.
#[derive(Subcommand)]
// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum IssuerCommand {
    /// Serve the issuer's API until Ctrl-C or SIGTERM.
    Serve(IssuerServeArgs),
    /// Manage the people who may act for this issuer.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

/// What an issuer server needs to start.
#[derive(Args)]
pub struct IssuerServeArgs {
    #[command(flatten)]
    pub party: PartyServeArgs,
    #[command(flatten)]
    pub issuer: IssuerArgs,
}

/// The issuer's own arguments.
#[derive(Args)]
pub struct IssuerArgs {
    /// The Issuer Registrar's base URL: its CRL (which can revoke this issuer's IRC) is fetched
    /// at start, every --crl-refresh-seconds and on POST /v1/crls/refresh.
    #[arg(long, value_name = "URL")]
    pub issuer_registrar_url: Option<String>,
    /// The Data Registrar's base URL: its CRL revokes providers' DPRs.
    #[arg(long, value_name = "URL")]
    pub data_registrar_url: Option<String>,
    /// How often the registrars' CRLs are fetched.
    #[arg(long, value_name = "N", default_value_t = issuer::DEFAULT_CRL_REFRESH.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub crl_refresh_seconds: u64,
    /// PEM certificates that https:// registrars' servers are trusted by.
    #[arg(long = "registrar-tls-roots", value_name = "FILE")]
    pub registrar_tls_roots: Option<PathBuf>,
    /// PEM certificates that https:// providers' servers are trusted by (STO-1 forwarding);
    /// without them only http:// provider URLs can be set.
    #[arg(long = "provider-tls-roots", value_name = "FILE")]
    pub provider_tls_roots: Option<PathBuf>,
}

impl Default for IssuerArgs {
    fn default() -> IssuerArgs {
        IssuerArgs {
            issuer_registrar_url: None,
            data_registrar_url: None,
            crl_refresh_seconds: issuer::DEFAULT_CRL_REFRESH.as_secs(),
            registrar_tls_roots: None,
            provider_tls_roots: None,
        }
    }
}

/// The shared party subcommands, with the issuer's own arguments at their defaults.
impl From<PartyCommand> for IssuerCommand {
    fn from(cmd: PartyCommand) -> IssuerCommand {
        match cmd {
            PartyCommand::Serve(party) => IssuerCommand::Serve(IssuerServeArgs {
                party,
                issuer: IssuerArgs::default(),
            }),
            PartyCommand::Operator(operator) => IssuerCommand::Operator(operator),
        }
    }
}

impl IssuerServeArgs {
    /// The issuer's configuration from the command line.
    pub fn config(self) -> anyhow::Result<IssuerConfig> {
        let IssuerServeArgs { party: a, issuer } = self;
        let mut config = IssuerConfig::new(
            PartyId::new(&a.id)?,
            a.key,
            a.certificate,
            a.issuer_registrar_root,
            a.data_registrar_root,
            a.db,
            a.listen,
        );
        config.tls = a.tls.files();
        config.crl_files = a.crls;
        config.issuer_registrar_url = issuer.issuer_registrar_url;
        config.data_registrar_url = issuer.data_registrar_url;
        config.crl_refresh_every = Duration::from_secs(issuer.crl_refresh_seconds);
        config.registrar_tls_roots_file = issuer.registrar_tls_roots;
        config.provider_tls_roots_file = issuer.provider_tls_roots;
        Ok(config)
    }
}

pub fn run(cmd: impl Into<IssuerCommand>) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match cmd.into() {
        IssuerCommand::Serve(args) => {
            let config = args.config()?;
            server_kit::init_logging();
            runtime.block_on(issuer::serve(config))
        }
        IssuerCommand::Operator(OperatorCommand::Add { db, name }) => {
            print_token(&name, &runtime.block_on(issuer::add_operator(&db, &name))?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        issuer: IssuerCommand,
    }

    const SHARED: &[&str] = &[
        "cardwright",
        "serve",
        "--id",
        "issuer-1",
        "--db",
        "sqlite:issuer.db",
        "--listen",
        "127.0.0.1:8443",
        "--key",
        "key.pem",
        "--certificate",
        "irc.pem",
        "--issuer-registrar-root",
        "ir.pem",
        "--data-registrar-root",
        "dr.pem",
    ];

    fn config(extra: &[&str]) -> Result<IssuerConfig, clap::Error> {
        let args = SHARED.iter().chain(extra);
        match Cli::try_parse_from(args)?.issuer {
            IssuerCommand::Serve(a) => Ok(a.config().unwrap()),
            IssuerCommand::Operator(_) => panic!("serve expected"),
        }
    }

    #[test]
    fn issuer_flags_reach_the_configuration() {
        let c = config(&[
            "--issuer-registrar-url",
            "http://127.0.0.1:8001",
            "--data-registrar-url",
            "https://dr.example",
            "--crl-refresh-seconds",
            "60",
            "--registrar-tls-roots",
            "registrars.pem",
            "--provider-tls-roots",
            "providers.pem",
            "--crl",
            "a.crl",
        ])
        .unwrap();
        assert_eq!(
            c.issuer_registrar_url.as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(c.data_registrar_url.as_deref(), Some("https://dr.example"));
        assert_eq!(c.crl_refresh_every, Duration::from_secs(60));
        assert_eq!(
            c.registrar_tls_roots_file,
            Some(PathBuf::from("registrars.pem"))
        );
        assert_eq!(
            c.provider_tls_roots_file,
            Some(PathBuf::from("providers.pem"))
        );
        assert_eq!(c.crl_files, vec![PathBuf::from("a.crl")]);
    }

    #[test]
    fn defaults_follow_no_registrar() {
        let c = config(&[]).unwrap();
        assert_eq!(c.issuer_registrar_url, None);
        assert_eq!(c.data_registrar_url, None);
        assert_eq!(c.crl_refresh_every, issuer::DEFAULT_CRL_REFRESH);
        assert_eq!(c.provider_tls_roots_file, None);
        assert!(config(&["--crl-refresh-seconds", "0"]).is_err());
    }

    #[test]
    fn the_shared_party_command_converts_with_defaults() {
        #[derive(Parser)]
        struct Shared {
            #[command(subcommand)]
            party: PartyCommand,
        }
        let shared = Shared::try_parse_from(SHARED).unwrap().party;
        match IssuerCommand::from(shared) {
            IssuerCommand::Serve(a) => {
                let c = a.config().unwrap();
                assert_eq!(c.crl_refresh_every, issuer::DEFAULT_CRL_REFRESH);
                assert_eq!(c.data_registrar_url, None);
            }
            IssuerCommand::Operator(_) => panic!("serve expected"),
        }
    }
}
