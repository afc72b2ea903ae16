//! `cardwright provider …`: run a service provider's server (STO-1…7 provider side), with the
//! arguments every party server shares plus the provider's own: the issuers it forwards STO-2
//! to, the data registrar it asks for SDCI' (STO-5), the registrars whose CRLs it follows
//! (REG-3) and the TLS roots of the servers it calls.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pki::PartyId;
use provider::ProviderConfig;

use crate::server_args::{print_token, runtime, OperatorCommand, PartyCommand, PartyServeArgs};

/// The subcommands of a provider server.
#[derive(Subcommand)]
// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ProviderCommand {
    /// Serve the provider's API until Ctrl-C or SIGTERM.
    Serve(ProviderServeArgs),
    /// Manage the people who may act for this provider.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

/// What a provider server needs to start.
#[derive(Args)]
pub struct ProviderServeArgs {
    #[command(flatten)]
    pub party: PartyServeArgs,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// The provider's own arguments.
#[derive(Args)]
pub struct ProviderArgs {
    /// An issuer it works with, as ID=URL (repeatable): STO-2 requests naming that issuer are
    /// sent to its server at URL.
    #[arg(long = "issuer", value_name = "ID=URL")]
    pub issuers: Vec<String>,
    /// PEM certificates that https:// issuers' servers are trusted by; without them only
    /// http:// issuer URLs can be called.
    #[arg(long = "issuer-tls-roots", value_name = "FILE")]
    pub issuer_tls_roots: Option<PathBuf>,
    /// The Data Registrar, as ID=URL (ID: the subject of --data-registrar-root): asked for
    /// SDCI' (GET /v1/items/{id}/certified?by=data-registrar); its CRL is followed.
    #[arg(long = "data-registrar", value_name = "ID=URL")]
    pub data_registrar: Option<String>,
    /// The Issuer Registrar's base URL: its CRL (revoking issuers, so their SARs, delegations
    /// and cards' RCs) is fetched at start, every --crl-refresh-seconds and on
    /// POST /v1/crls/refresh.
    #[arg(long, value_name = "URL")]
    pub issuer_registrar_url: Option<String>,
    /// How often the registrars' CRLs are fetched.
    #[arg(long, value_name = "N", default_value_t = provider::DEFAULT_CRL_REFRESH.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub crl_refresh_seconds: u64,
    /// PEM certificates that https:// registrars' servers are trusted by.
    #[arg(long = "registrar-tls-roots", value_name = "FILE")]
    pub registrar_tls_roots: Option<PathBuf>,
}

impl Default for ProviderArgs {
    fn default() -> ProviderArgs {
        ProviderArgs {
            issuers: Vec::new(),
            issuer_tls_roots: None,
            data_registrar: None,
            issuer_registrar_url: None,
            crl_refresh_seconds: provider::DEFAULT_CRL_REFRESH.as_secs(),
            registrar_tls_roots: None,
        }
    }
}

/// The shared party subcommands, with the provider's own arguments at their defaults.
impl From<PartyCommand> for ProviderCommand {
    fn from(cmd: PartyCommand) -> ProviderCommand {
        match cmd {
            PartyCommand::Serve(party) => ProviderCommand::Serve(ProviderServeArgs {
                party,
                provider: ProviderArgs::default(),
            }),
            PartyCommand::Operator(operator) => ProviderCommand::Operator(operator),
        }
    }
}

impl ProviderServeArgs {
    /// The provider's configuration from the command line.
    pub fn config(self) -> anyhow::Result<ProviderConfig> {
        let ProviderServeArgs { party: a, provider } = self;
        let mut config = ProviderConfig::new(
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
        config.issuers = provider
            .issuers
            .iter()
            .map(|text| parse_id_url("--issuer", text))
            .collect::<anyhow::Result<_>>()?;
        config.issuer_tls_roots_file = provider.issuer_tls_roots;
        config.data_registrar = provider
            .data_registrar
            .as_deref()
            .map(|text| parse_id_url("--data-registrar", text))
            .transpose()?;
        config.issuer_registrar_url = provider.issuer_registrar_url;
        config.crl_refresh_every = Duration::from_secs(provider.crl_refresh_seconds);
        config.registrar_tls_roots_file = provider.registrar_tls_roots;
        Ok(config)
    }
}

pub fn run(cmd: impl Into<ProviderCommand>) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match cmd.into() {
        ProviderCommand::Serve(args) => {
            let config = args.config()?;
            server_kit::init_logging();
            runtime.block_on(provider::serve(config))
        }
        ProviderCommand::Operator(OperatorCommand::Add { db, name }) => {
            print_token(
                &name,
                &runtime.block_on(provider::add_operator(&db, &name))?,
            );
            Ok(())
        }
    }
}

/// `--issuer ID=URL`, `--data-registrar ID=URL`: a party ID and its server's base URL.
fn parse_id_url(flag: &str, text: &str) -> anyhow::Result<(PartyId, String)> {
    let (id, url) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("{flag} {text:?}: expected ID=URL"))?;
    let id = PartyId::new(id).with_context(|| format!("{flag} {text:?}: the party ID"))?;
    if url.is_empty() {
        anyhow::bail!("{flag} {text:?}: the URL is empty");
    }
    Ok((id, url.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{parse_id_url, ProviderCommand};

    #[test]
    fn ids_and_urls_parse_as_id_equals_url() {
        let (id, url) = parse_id_url("--issuer", "issuer-1=http://127.0.0.1:8081").unwrap();
        assert_eq!(
            (id.as_str(), url.as_str()),
            ("issuer-1", "http://127.0.0.1:8081")
        );
        for bad in ["issuer-1", "=http://x", "issuer-1=", "bad id=http://x"] {
            let error = parse_id_url("--data-registrar", bad).unwrap_err();
            assert!(
                format!("{error:#}").starts_with("--data-registrar"),
                "{bad}: {error:#}"
            );
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ProviderCommand,
    }

    const SHARED: &[&str] = &[
        "cardwright-provider",
        "serve",
        "--id",
        "provider-1",
        "--db",
        "sqlite:p.db",
        "--listen",
        "127.0.0.1:8082",
        "--key",
        "k.pem",
        "--certificate",
        "dpr.pem",
        "--issuer-registrar-root",
        "ir.pem",
        "--data-registrar-root",
        "dr.pem",
    ];

    fn parsed(extra: &[&str]) -> anyhow::Result<provider::ProviderConfig> {
        let args = SHARED.iter().chain(extra);
        match Cli::try_parse_from(args)?.command {
            ProviderCommand::Serve(serve) => serve.config(),
            ProviderCommand::Operator(_) => unreachable!("parsed serve"),
        }
    }

    #[test]
    fn the_provider_flags_reach_its_configuration() {
        let config = parsed(&[
            "--issuer",
            "issuer-1=http://127.0.0.1:8081",
            "--issuer",
            "issuer-2=https://issuer-2.example",
            "--issuer-tls-roots",
            "issuers.pem",
            "--data-registrar",
            "data-registrar=http://127.0.0.1:8080",
            "--issuer-registrar-url",
            "http://127.0.0.1:8079",
            "--crl-refresh-seconds",
            "60",
            "--registrar-tls-roots",
            "registrars.pem",
        ])
        .unwrap();
        let issuers: Vec<(&str, &str)> = config
            .issuers
            .iter()
            .map(|(id, url)| (id.as_str(), url.as_str()))
            .collect();
        assert_eq!(
            issuers,
            [
                ("issuer-1", "http://127.0.0.1:8081"),
                ("issuer-2", "https://issuer-2.example")
            ]
        );
        assert_eq!(
            config.issuer_tls_roots_file.as_deref(),
            Some(std::path::Path::new("issuers.pem"))
        );
        let (registrar, url) = config.data_registrar.as_ref().unwrap();
        assert_eq!(
            (registrar.as_str(), url.as_str()),
            ("data-registrar", "http://127.0.0.1:8080")
        );
        assert_eq!(
            config.issuer_registrar_url.as_deref(),
            Some("http://127.0.0.1:8079")
        );
        assert_eq!(config.crl_refresh_every.as_secs(), 60);
        assert_eq!(
            config.registrar_tls_roots_file.as_deref(),
            Some(std::path::Path::new("registrars.pem"))
        );
    }

    #[test]
    fn without_the_provider_flags_the_defaults() {
        let config = parsed(&[]).unwrap();
        assert!(config.issuers.is_empty());
        assert!(config.data_registrar.is_none());
        assert!(config.issuer_registrar_url.is_none());
        assert_eq!(config.crl_refresh_every, provider::DEFAULT_CRL_REFRESH);
        assert!(config.issuer_tls_roots_file.is_none());
        assert!(config.registrar_tls_roots_file.is_none());
        assert!(parsed(&["--crl-refresh-seconds", "0"]).is_err());
        assert!(parsed(&["--data-registrar", "data-registrar"]).is_err());
    }
}
