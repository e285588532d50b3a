use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};

use fleetdeck::cli::{
    self, Cli, Command, JournalArgs, JournalCommand, Output, Quotas, SimArgs, TeamArgs, TeamCommand,
};
use fleetdeck::sim::{self, FleetSource, QuotaMode, SimAccount, SimConfig};

/// Errors are printed as their message and its causes; the backtrace a set RUST_BACKTRACE
/// would add only with `-v`.
fn main() {
    let verbose = std::env::args()
        .skip(1)
        .any(|a| a == "-v" || a == "--verbose");
    if let Err(e) = real_main() {
        // `fleetdeck man | head`: the reader went away, which is not an error of ours.
        let closed = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if closed {
            std::process::exit(0);
        }
        if verbose {
            eprintln!("Error: {e:?}");
        } else {
            eprintln!("Error: {e:#}");
        }
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let journal = fleetdeck::journal::default_path().map_or_else(
        || "(no state directory found: pass --journal)".to_string(),
        |p| p.display().to_string(),
    );
    let log = fleetdeck::log::default_path(None).map_or_else(
        || "(no state directory found: pass --log-file)".to_string(),
        |p| p.display().to_string(),
    );
    let matches = Cli::command()
        .after_help(format!("Dispatch journal: {journal}\nLog file: {log}"))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    // Only what works on a fleet logs; reading the journal or printing help writes nothing.
    match &cli.command {
        Some(Command::Completions { shell }) => return print_completions(*shell),
        Some(Command::Man { dir }) => return print_man(dir.as_deref()),
        Some(Command::Journal(_)) => {}
        Some(Command::Team(_)) => {
            fleetdeck::log::init(cli.log_level, cli.log_file.clone(), None)?;
        }
        Some(Command::Sim(_)) => {
            fleetdeck::log::init(cli.log_level, cli.log_file.clone(), None)?;
        }
        Some(Command::Run(args)) => {
            let journal = args.session.journal.as_deref();
            fleetdeck::log::init(cli.log_level, cli.log_file.clone(), journal)?;
        }
        None => {
            let journal = cli.tui.journal.as_deref();
            fleetdeck::log::init(cli.log_level, cli.log_file.clone(), journal)?;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Completions { .. } | Command::Man { .. }) => Ok(()),
        Some(Command::Sim(args)) => runtime.block_on(run_sim(*args)),
        Some(Command::Journal(args)) => read_journal(args),
        Some(Command::Team(args)) => runtime.block_on(team(args, &cli.tui)),
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

fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    // Into memory first: clap_complete panics on a failed write, and a reader that goes
    // away (`| head`) must end the program quietly, as it does for `man`.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fleetdeck", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}

/// The pages clap_mangen makes of the flags, and the files and variables they leave unsaid.
fn print_man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        out.write_all(MAN_FILES.as_bytes())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot make the directory {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
    let root = dir.join("fleetdeck.1");
    let mut page = std::fs::OpenOptions::new().append(true).open(&root)?;
    page.write_all(MAN_FILES.as_bytes())?;
    eprintln!("manual pages written to {}", dir.display());
    Ok(())
}

const MAN_FILES: &str = r#".SH FILES
.TP
\fI$XDG_CONFIG_HOME/fleetdeck/config.toml\fR
Named contexts: a profile, its regions, an endpoint, read_only, a label and colour; \fBcurrent\fR names the one used by default; \fBdanger\fR lists the filters whose devices are drawn and counted as dangerous (default env=prod).
.TP
\fI$XDG_STATE_HOME/fleetdeck/journal.jsonl\fR
The dispatch journal: every intent before its call and every outcome after it; what resume, discard and retry read.
.TP
\fI$XDG_STATE_HOME/fleetdeck/fleetdeck.log\fR
The log file (see \fB\-\-log\-level\fR); moved aside to fleetdeck.log.1 when it passes 10 MiB.
.SH ENVIRONMENT
.TP
\fBFLEETDECK_CONFIG\fR, \fBFLEETDECK_CONTEXT\fR, \fBFLEETDECK_JOURNAL\fR, \fBFLEETDECK_LOG\fR, \fBFLEETDECK_LOG_LEVEL\fR
The config file, the contexts in use, the journal, the log file and its level.
.TP
\fBAWS_PROFILE\fR, \fBAWS_REGION\fR, \fBAWS_ENDPOINT_URL\fR, \fBAWS_ENDPOINT_URL_PANORAMA\fR, \fBAWS_ENDPOINT_URL_SNOW_DEVICE_MANAGEMENT\fR
As for the AWS CLI and SDKs.
"#;

/// `fleetdeck team …`: the table from `--team` (or FLEETDECK_TEAM, or the contexts' `team`).
async fn team(args: TeamArgs, tui: &cli::TuiArgs) -> anyhow::Result<()> {
    use fleetdeck::team::cmd;
    let flag = args.team.as_deref().or(tui.team.as_deref());
    let catalog_team = {
        let path = tui
            .config
            .clone()
            .or_else(fleetdeck::contexts::default_path);
        let file = match &path {
            Some(p) => fleetdeck::contexts::read_file(p)?,
            None => fleetdeck::contexts::ConfigFile::default(),
        };
        let catalog = fleetdeck::contexts::Catalog {
            file,
            env: fleetdeck::contexts::Env::read(),
            ..Default::default()
        };
        let flags = fleetdeck::contexts::Flags {
            ctx: tui.ctx.clone(),
            profiles: tui.profiles.clone(),
            regions: tui.regions.clone(),
            ..Default::default()
        };
        catalog.team(&flags, flag).map_err(anyhow::Error::msg)?
    };
    let Some(config) = catalog_team else {
        anyhow::bail!(
            "name the team's table: --team TABLE (or FLEETDECK_TEAM, or `team` in a context of the config file)"
        );
    };
    let config = config.overridden(
        args.team_profile.clone().or(tui.team_profile.clone()),
        args.team_region.clone().or(tui.team_region.clone()),
    );
    let mut out = std::io::stdout().lock();
    match args.what {
        TeamCommand::Init {
            lease,
            require_approval,
        } => cmd::init(&config, &lease, require_approval.as_deref(), &mut out).await,
        TeamCommand::Plans { output } => {
            cmd::plans(&config, output == Output::Json, &mut out).await
        }
        TeamCommand::Leases { output } => {
            cmd::leases(&config, output == Output::Json, &mut out).await
        }
        TeamCommand::Approve { plan } => cmd::approve(&config, &plan, &mut out).await,
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

/// The largest fleet file read: far above any real fleet's (100,000 devices take about
/// 10 MiB), and a bound on what a wrong path (/dev/zero, a disk image) can make us read.
const MAX_FLEET_FILE: u64 = 64 << 20;

fn read_fleet(path: &std::path::Path) -> anyhow::Result<FleetSource> {
    use std::io::Read;
    let cannot = || format!("cannot read the fleet file {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let meta = file.metadata().with_context(cannot)?;
    anyhow::ensure!(
        meta.is_file(),
        "the fleet file {} is not a regular file: give a TOML file (see assets/demo-fleet.toml)",
        path.display()
    );
    let mut bytes = Vec::new();
    file.take(MAX_FLEET_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_FLEET_FILE,
        "the fleet file {} is larger than {} MiB: is it the right file?",
        path.display(),
        MAX_FLEET_FILE >> 20
    );
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the fleet file {} is not UTF-8 text (byte {} is not): give a TOML file",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(FleetSource::Toml(text))
}

fn sim_config(args: SimArgs) -> anyhow::Result<SimConfig> {
    let fleet = match (&args.fleet, args.devices) {
        (Some(path), _) => read_fleet(path)?,
        (None, Some(n)) => FleetSource::Generated {
            panorama: n,
            snow: n,
        },
        (None, None) => FleetSource::Toml(sim::DEMO_FLEET.to_string()),
    };
    let mut accounts = Vec::new();
    for (i, account) in args.accounts.into_iter().enumerate() {
        // A fleet file names its own account; a generated fleet gets one by its place.
        let (fleet, account_id) = match &account.fleet {
            Some(path) => (read_fleet(path)?, None),
            None => {
                let n = args.devices.unwrap_or(cli::ACCOUNT_DEVICES);
                let generated = FleetSource::Generated {
                    panorama: n,
                    snow: n,
                };
                (generated, Some(format!("2{:011}", i + 1)))
            }
        };
        accounts.push(SimAccount {
            access_key_id: account.access_key_id,
            secret_access_key: account.secret_access_key,
            fleet,
            account_id,
        });
    }
    Ok(SimConfig {
        listen: args.listen,
        fleet,
        regions: args.regions,
        speed: args.speed,
        seed: args.seed,
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
        accounts,
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
        session_token: args.session_token,
        header_timeout: Duration::from_secs(args.header_timeout_secs),
        body_timeout: Duration::from_secs(args.body_timeout_secs),
        max_connections: args.max_connections,
        unhealthy_after_ota: args.unhealthy_after_ota,
    })
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let token = args.session_token.clone();
    let handle = sim::start(sim_config(args)?).await?;
    if let Some(warning) = sim::exposure_warning(handle.addr) {
        eprintln!("{warning}");
    }
    let endpoint = &handle.endpoint;
    let region = &handle.regions[0];
    let mut banner = vec![
        format!("fleetdeck sim: AWS Panorama and AWS Snow Device Management on {endpoint}"),
        format!("  regions: {}", handle.regions.join(", ")),
        format!(
            "  sign requests with these credentials (account {}):",
            handle.account_id
        ),
        format!("    export AWS_ACCESS_KEY_ID={}", handle.access_key_id),
        format!(
            "    export AWS_SECRET_ACCESS_KEY={}",
            handle.secret_access_key
        ),
        format!("    export AWS_REGION={region} AWS_DEFAULT_REGION={region}"),
    ];
    if let Some(token) = &token {
        banner.push(format!("    export AWS_SESSION_TOKEN={token}"));
    }
    // Every account on one line each, the default first, when there is more than one.
    if handle.accounts.len() > 1 {
        banner.push("  accounts, each with its own fleet:".to_string());
        banner.extend(handle.accounts.iter().map(|a| {
            format!(
                "    export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}  # account {}",
                a.access_key_id, a.secret_access_key, a.account_id
            )
        }));
    }
    banner.extend([
        "  then, for example:".to_string(),
        format!("    aws panorama list-devices --endpoint-url {endpoint}"),
        format!("    aws snow-device-management list-devices --endpoint-url {endpoint}"),
        format!("  test ledger: GET {endpoint}/_fleetdeck/ledger"),
        "Ctrl-C stops.".to_string(),
    ]);
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
