//! `cardwright provider …`: run a service provider's server (STO-1…7 provider side).

use anyhow::Context as _;
use pki::PartyId;
use provider::ProviderConfig;

use crate::server_args::{print_token, runtime, OperatorCommand, PartyCommand};

pub fn run(cmd: PartyCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match cmd {
        PartyCommand::Serve(a) => {
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
            config.issuers = a
                .issuers
                .iter()
                .map(|text| parse_issuer(text))
                .collect::<anyhow::Result<_>>()?;
            server_kit::init_logging();
            runtime.block_on(provider::serve(config))
        }
        PartyCommand::Operator(OperatorCommand::Add { db, name }) => {
            print_token(
                &name,
                &runtime.block_on(provider::add_operator(&db, &name))?,
            );
            Ok(())
        }
    }
}

/// `--issuer ID=URL`: an issuer's party ID and its server's base URL.
fn parse_issuer(text: &str) -> anyhow::Result<(PartyId, String)> {
    let (id, url) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--issuer {text:?}: expected ID=URL"))?;
    let id = PartyId::new(id).with_context(|| format!("--issuer {text:?}: the party ID"))?;
    if url.is_empty() {
        anyhow::bail!("--issuer {text:?}: the URL is empty");
    }
    Ok((id, url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_issuer;

    #[test]
    fn issuers_parse_as_id_equals_url() {
        let (id, url) = parse_issuer("issuer-1=http://127.0.0.1:8081").unwrap();
        assert_eq!(
            (id.as_str(), url.as_str()),
            ("issuer-1", "http://127.0.0.1:8081")
        );
        for bad in ["issuer-1", "=http://x", "issuer-1=", "bad id=http://x"] {
            assert!(parse_issuer(bad).is_err(), "{bad}");
        }
    }
}
