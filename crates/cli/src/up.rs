//! `cardwright up`: a complete local deployment (both registrars, an issuer, a provider) on
//! loopback with SQLite in a data directory, kept running until Ctrl-C, printing where each
//! party listens and how to drive it with `cardwright terminal …`.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use deployment::{Deployment, DeploymentConfig};

#[derive(Args)]
pub struct UpArgs {
    /// Data directory (created if absent; reused if present: keys, databases, certificates).
    #[arg(long, default_value = "cardwright-data")]
    dir: PathBuf,
    /// Address every party listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// First of four consecutive ports (issuer registrar, data registrar, provider, issuer);
    /// 0 for any free ports.
    #[arg(long, default_value_t = 7600)]
    port: u16,
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    server_kit::init_logging();
    let runtime = crate::server_args::runtime()?;
    runtime.block_on(async {
        let mut config = DeploymentConfig::new(args.dir.clone());
        config.host = args.host;
        config.base_port = args.port;
        let deployment = Deployment::start(config)
            .await
            .with_context(|| format!("bringing the deployment up in {}", args.dir.display()))?;
        // Something to store, and STO-3's delegation, so the terminal commands work at once.
        let catalog = e2e::publish_catalog(&deployment)
            .await
            .context("publishing the sample catalog")?;
        e2e::delegate(&deployment)
            .await
            .context("the issuer's delegation to the provider")?;
        // Applications and services to download (APP-1, APP-2).
        deployment
            .publish_sample_catalog()
            .await
            .context("publishing the sample applications and services")?;
        print_where(&deployment);
        println!("sample catalog at the provider: {}", catalog.describe());
        server_kit::shutdown_signal().await;
        println!("stopping…");
        deployment.stop().await
    })
}

fn print_where(d: &Deployment) {
    println!("cardwright is up (data in {})", d.dir.display());
    println!();
    for (role, party) in [
        ("issuer registrar", &d.issuer_registrar),
        ("data registrar", &d.data_registrar),
        ("issuer", &d.issuer),
        ("provider", &d.provider),
    ] {
        println!("  {role:<17} {:<16} {}", party.id.as_str(), party.url);
        println!(
            "  {:<17} {:<16} operator token in {}",
            "",
            "",
            party.dir.join("operator-token").display()
        );
    }
    let dir = d.dir.display();
    println!();
    println!("try, in another shell:");
    println!("  cardwright terminal personalise --dir {dir} --card {dir}/cards/alice --pin 2468");
    println!("  cardwright terminal register    --dir {dir} --card {dir}/cards/alice --pin 2468 --user-id alice --name 'Alice Example'");
    println!("  cardwright terminal store       --dir {dir} --card {dir}/cards/alice --pin 2468 --item 7469636b6574 --path via-issuer");
    println!("  cardwright terminal list        --dir {dir} --card {dir}/cards/alice");
    println!("  cardwright terminal download    --dir {dir} --card {dir}/cards/alice --pin 2468 --service transit --accept-terms");
    println!("  cardwright terminal portal      --dir {dir} --card {dir}/cards/alice");
    println!();
    println!("Ctrl-C stops every party.");
}
