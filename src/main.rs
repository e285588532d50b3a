use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use fleetdeck::cli::{Cli, Command, Quotas, SimArgs};
use fleetdeck::sim::{self, FleetSource, QuotaMode, SimConfig};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Sim(args) => runtime.block_on(run_sim(args)),
    }
}

fn sim_config(args: SimArgs) -> anyhow::Result<SimConfig> {
    let fleet = match (args.fleet, args.devices) {
        (Some(path), _) => FleetSource::Toml(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the fleet file {}", path.display()))?,
        ),
        (None, Some(n)) => FleetSource::Generated {
            panorama: n,
            snow: n,
        },
        (None, None) => FleetSource::Toml(sim::DEMO_FLEET.to_string()),
    };
    Ok(SimConfig {
        listen: args.listen,
        fleet,
        regions: args.regions,
        speed: args.speed,
        seed: args.seed,
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        quotas: match args.quotas {
            Quotas::Aws => QuotaMode::Aws,
            Quotas::Off => QuotaMode::Off,
        },
        verbose: args.verbose,
    })
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let handle = sim::start(sim_config(args)?).await?;
    println!(
        "fleetdeck sim: AWS Panorama and AWS Snow Device Management on {}",
        handle.endpoint
    );
    println!("  regions: {}", handle.regions.join(", "));
    println!("  sign requests with these credentials:");
    println!("    export AWS_ACCESS_KEY_ID={}", handle.access_key_id);
    println!(
        "    export AWS_SECRET_ACCESS_KEY={}",
        handle.secret_access_key
    );
    println!("    export AWS_REGION={}", handle.regions[0]);
    println!("  then, for example:");
    println!(
        "    aws panorama list-devices --endpoint-url {}",
        handle.endpoint
    );
    println!(
        "    aws snow-device-management list-devices --endpoint-url {}",
        handle.endpoint
    );
    println!("  test ledger: GET {}/_fleetdeck/ledger", handle.endpoint);
    println!("Ctrl-C stops.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    handle.stop().await;
    Ok(())
}
