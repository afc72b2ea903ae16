//! `cardwright issuer …`: run a card issuer's server (personalisation, REG-2, STO-1…7 issuer side).

use issuer::IssuerConfig;
use pki::PartyId;

use crate::server_args::{print_token, runtime, OperatorCommand, PartyCommand};

pub fn run(cmd: PartyCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match cmd {
        PartyCommand::Serve(a) => {
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
            server_kit::init_logging();
            runtime.block_on(issuer::serve(config))
        }
        PartyCommand::Operator(OperatorCommand::Add { db, name }) => {
            print_token(&name, &runtime.block_on(issuer::add_operator(&db, &name))?);
            Ok(())
        }
    }
}
