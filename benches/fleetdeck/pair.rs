//! Two runs in one account at once, on different appliances, against what one run would
//! need for all of them. Without team mode each paces itself at the account's quota, so
//! together they ask twice what the service allows and its throttling is what slows them. In
//! team mode (two `fleetdeck run` processes, a moto DynamoDB) they share the quota through the
//! team's table and take turns on the account's create grid.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleetdeck::fleet::{Device, Operation, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::PANORAMA_JOBS;
use crate::harness::{connect, dispatch, throttled};
use crate::report::{Report, secs};

pub(crate) async fn pair(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let mut a = connect(&h, scratch.join("pair-a.jsonl")).await?;
    let mut b = connect(&h, scratch.join("pair-b.jsonl")).await?;
    let all: Vec<&Device> = a.devices.iter().collect();
    let whole = Plan::new(Operation::Reboot, SnowOptions::default(), &all);
    let sent: Vec<&Device> = all
        .iter()
        .copied()
        .filter(|d| whole.targets.contains(&d.key()))
        .collect();
    let half = |odd: usize| -> Plan {
        let devices: Vec<&Device> = sent.iter().copied().skip(odd).step_by(2).collect();
        Plan::new(Operation::Reboot, SnowOptions::default(), &devices)
    };
    let (pa, pb) = (half(0), half(1));
    let jobs = pa.device_count() + pb.device_count();
    let before = throttled(&h);
    let ((ta, fa), (tb, fb)) = tokio::try_join!(dispatch(&mut a, pa), dispatch(&mut b, pb))?;
    let took = ta.max(tb);
    let bound = Duration::from_secs(jobs as u64 - 1);
    let creates = h
        .ledger()
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .count();
    report.add(
        "dispatch",
        format!("two runs in one account at once, {jobs} Panorama REBOOT jobs between them (different appliances), AWS quotas on"),
        secs(took),
        format!(
            "{:.3}× what one run needs for all of them, the (N − 1) × 1 s bound ({}); {creates} creates, {} failed, {} calls throttled",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound),
            fa + fb,
            throttled(&h) - before,
        ),
        "≤ 1.05× one run's bound",
    );
    report.note(
        "Two runs in one account: two workers (two processes' engines, each with its own journal) against one simulator with AWS quotas on, each sent half of the online appliances at the same moment; timed until both have every job id. Neither knows of the other: each starts at the account's quota, and the service's throttling slows each (its pace drops to 70% on a throttle and wins a twentieth back per call that goes through). Team mode's shared budget is not used here.",
    );
    h.stop().await;
    pair_in_team(report, scratch).await
}

/// The same pair as two `fleetdeck run` processes in team mode: the span from the first
/// create to the last, read off the simulator's ledger as it fills.
async fn pair_in_team(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        quotas: QuotaMode::Aws,
        speed: 60.0,
        ..SimConfig::default()
    })
    .await?;
    let s = connect(&h, scratch.join("pair-team-list.jsonl")).await?;
    let all: Vec<&Device> = s.devices.iter().collect();
    let whole = Plan::new(Operation::Reboot, SnowOptions::default(), &all);
    let ids: Vec<String> = all
        .iter()
        .filter(|d| whole.targets.contains(&d.key()))
        .map(|d| d.id.to_string())
        .collect();
    drop(s);
    let moto = crate::team::Moto::start();
    let creds =
        crate::team::credentials(&[("alice", moto.user("alice")), ("bob", moto.user("bob"))]);
    let fleetdeck = |who: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
        c.env("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
            .env("AWS_ENDPOINT_URL_STS", &moto.endpoint)
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
            .env("FLEETDECK_TEAM", "bench")
            .env("FLEETDECK_TEAM_PROFILE", who)
            .env("XDG_STATE_HOME", scratch.join(format!("state-{who}")))
            .stdin(Stdio::null());
        c
    };
    let made = fleetdeck("alice").args(["team", "init"]).output()?;
    anyhow::ensure!(
        made.status.success(),
        "team init: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let run = |who: &str, odd: usize| {
        let devices: Vec<&str> = ids
            .iter()
            .skip(odd)
            .step_by(2)
            .map(String::as_str)
            .collect();
        let mut c = fleetdeck(who);
        c.arg("run")
            .args(["--endpoint-url", &h.endpoint])
            .args(["--action", "reboot", "--yes", "--output", "json"])
            .arg("--devices")
            .arg(devices.join(","))
            .env("AWS_ACCESS_KEY_ID", &h.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &h.secret_access_key)
            .env(
                "FLEETDECK_JOURNAL",
                scratch.join(format!("pair-{who}.jsonl")),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn()
    };
    let before = throttled(&h);
    let creates = || {
        h.ledger()
            .iter()
            .filter(|e| e.operation == "CreateJobForDevices")
            .count()
    };
    let (mut a, mut b) = (run("alice", 0)?, run("bob", 1)?);
    let (mut first, mut last, mut seen) = (None, None, 0);
    while a.try_wait()?.is_none() || b.try_wait()?.is_none() {
        let n = creates();
        if n > seen {
            first.get_or_insert_with(Instant::now);
            last = Some(Instant::now());
            seen = n;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
    let told = [&a, &b]
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("shared with 1 other plan"))
        .count();
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    let (Some(first), Some(last)) = (first, last) else {
        anyhow::bail!("no creates: {}", String::from_utf8_lossy(&a.stderr));
    };
    let took = last - first;
    let bound = Duration::from_secs(ids.len() as u64 - 1);
    report.add(
        "dispatch",
        format!("two `fleetdeck run` processes in team mode in one account at once, {} Panorama REBOOT jobs between them (different appliances), AWS quotas on", ids.len()),
        secs(took),
        format!(
            "{:.3}× what one run needs for all of them, the (N − 1) × 1 s bound ({}), first create to last; {seen} creates, {} calls throttled, {told} of 2 runs told they share, {ok} of 2 exited 0",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound),
            throttled(&h) - before,
        ),
        "≤ 1.05× one run's bound",
    );
    report.note(
        "Two runs in team mode: two release `fleetdeck run` processes (identities alice and bob) on one team table in a moto server, each given half of the online appliances, started together; the span is from the first CreateJobForDevices to the last, as the simulator's ledger recorded them. Each plan writes its part of the account's quota to the table before its first send and renews it every few seconds; each host then sends creates only on its turns of a grid of the wall clock (one turn per quota period, dealt round the sending plans) and reads at its share of 5 requests/s.",
    );
    h.stop().await;
    Ok(())
}
