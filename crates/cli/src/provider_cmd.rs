//! `cardwright provider …`: run a service provider's server (STO-1…7 provider side).

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
