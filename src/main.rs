use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};

use fleetdeck::cli::{Cli, Command, JournalArgs, JournalCommand, Quotas, SimArgs};
use fleetdeck::sim::{self, FleetSource, QuotaMode, SimConfig};

fn main() -> anyhow::Result<()> {
    let journal = fleetdeck::journal::default_path().map_or_else(
        || "(no state directory found: pass --journal)".to_string(),
        |p| p.display().to_string(),
    );
    let matches = Cli::command()
        .after_help(format!("Dispatch journal: {journal}"))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Sim(args)) => runtime.block_on(run_sim(args)),
        Some(Command::Journal(args)) => read_journal(args),
        Some(Command::Run(args)) => {
            let end = runtime.block_on(fleetdeck::run::run(*args))?;
            if end.code() != 0 {
                std::process::exit(end.code());
            }
            Ok(())
        }
        None => {
            let code = runtime.block_on(fleetdeck::tui::run(cli.tui))?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
    }
}

fn read_journal(args: JournalArgs) -> anyhow::Result<()> {
    use fleetdeck::journal::cmd;
    let path = args
        .journal
        .or_else(fleetdeck::journal::default_path)
        .context("no place for the journal was found: pass --journal PATH")?;
    let mut out = std::io::stdout().lock();
    let result = match args.what {
        JournalCommand::List => cmd::list(&path, &mut out),
        JournalCommand::Show { plan } => cmd::show(&path, &plan, &mut out),
        JournalCommand::Export { plan } => cmd::export(&path, plan.as_deref(), &mut out),
    };
    // A reader that stopped reading (`| head`) is not an error.
    match result {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
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
        faults: args.faults,
        busy_conflicts: !args.allow_concurrent_jobs,
        stale_reads: Duration::from_secs(args.stale_secs),
        quotas: match args.quotas {
            Quotas::Aws => QuotaMode::Aws,
            Quotas::Off => QuotaMode::Off,
        },
        verbose: args.verbose,
    })
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let handle = sim::start(sim_config(args)?).await?;
    let endpoint = &handle.endpoint;
    let region = &handle.regions[0];
    let banner = [
        format!("fleetdeck sim: AWS Panorama and AWS Snow Device Management on {endpoint}"),
        format!("  regions: {}", handle.regions.join(", ")),
        "  sign requests with these credentials:".to_string(),
        format!("    export AWS_ACCESS_KEY_ID={}", handle.access_key_id),
        format!(
            "    export AWS_SECRET_ACCESS_KEY={}",
            handle.secret_access_key
        ),
        format!("    export AWS_REGION={region} AWS_DEFAULT_REGION={region}"),
        "  then, for example:".to_string(),
        format!("    aws panorama list-devices --endpoint-url {endpoint}"),
        format!("    aws snow-device-management list-devices --endpoint-url {endpoint}"),
        format!("  test ledger: GET {endpoint}/_fleetdeck/ledger"),
        "Ctrl-C stops.".to_string(),
    ];
    // Written, not printed: a closed stdout (`fleetdeck sim | head`) must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", banner.join("\n")).and_then(|()| out.flush());
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    handle.stop().await;
    Ok(())
}
