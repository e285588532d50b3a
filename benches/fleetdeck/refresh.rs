//! DescribeDevice for what is in view, and the calls of a full refresh.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossterm::event::KeyCode;
use fleetdeck::app::{App, Msg};
use fleetdeck::aws::Connection;
use fleetdeck::fleet::Service;
use fleetdeck::protocol::{Command, Event};
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};
use fleetdeck::{app, sim};

use crate::REFRESH_APPLIANCES;
use crate::frames::{connection, key};
use crate::harness::{ceil_div, connect, diff, named, panorama_calls};
use crate::report::Report;

/// A full refresh of more appliances than one page, with a terminal's worth in view.
pub(crate) async fn refresh(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: REFRESH_APPLIANCES,
            snow: 0,
        },
        quotas: QuotaMode::Off,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect(&h, scratch.join("refresh.jsonl")).await?;
    // What the UI reports in view on a 200×60 terminal with the cursor on the first row; the
    // app knows the worker's scope (context "sim"), or it would drop every row as not its own.
    let sim = Connection {
        context: "sim".into(),
        ..connection()
    };
    let mut app = App::new(vec![sim], true, Instant::now());
    app::update(&mut app, Msg::Resize(200, 60));
    let page = Event::DevicesPage(Service::Panorama, s.devices.clone());
    app::update(&mut app, Msg::Worker(Box::new(page)));
    let in_view = app::in_view(&app);
    anyhow::ensure!(!in_view.is_empty(), "the app shows none of the listed rows");
    let before = panorama_calls(&h);
    s.commands.send(Command::Look(in_view.clone()))?;
    let mut described = 0;
    while described < in_view.len() {
        if let Event::DeviceUpdated(_) = s.events.recv().await.context("the worker stopped")? {
            described += 1;
        }
    }
    let viewed = diff(&before, &panorama_calls(&h));
    // The cursor mid-list: what comes into view there is described, once each.
    for _ in 0..REFRESH_APPLIANCES / 2 {
        app::update(&mut app, key(KeyCode::Down));
    }
    let mid = app::in_view(&app);
    let fresh = mid.iter().filter(|k| !in_view.contains(k)).count();
    let before = panorama_calls(&h);
    s.commands.send(Command::Look(mid.clone()))?;
    let mut described = 0;
    while described < fresh {
        if let Event::DeviceUpdated(_) = s.events.recv().await.context("the worker stopped")? {
            described += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mid_viewed = diff(&before, &panorama_calls(&h));
    let before = panorama_calls(&h);
    s.commands.send(Command::Refresh)?;
    loop {
        match s.events.recv().await.context("the worker stopped")? {
            Event::ListingDone(_, Service::Panorama, _) => break,
            Event::ListingFailed(_, _, e) => bail!("{e}"),
            _ => {}
        }
    }
    // Let any describes a refresh might start arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refreshed = diff(&before, &panorama_calls(&h));
    let total: u64 = refreshed.values().sum();
    report.add(
        "status",
        format!(
            "{REFRESH_APPLIANCES} appliances, {} in view (200×60): first view",
            in_view.len()
        ),
        named(&viewed),
        "DescribeDevice only for what is in view",
        "≤ ceil(N/25) + in view",
    );
    report.add(
        "status",
        format!(
            "{REFRESH_APPLIANCES} appliances, cursor on row {}: {} in view, {fresh} not yet read",
            REFRESH_APPLIANCES / 2,
            mid.len()
        ),
        named(&mid_viewed),
        format!("{fresh} newly in view"),
        "≤ in view",
    );
    report.add(
        "status",
        format!("{REFRESH_APPLIANCES} appliances: calls per full refresh"),
        total.to_string(),
        format!(
            "goal ceil(N/25) = {}: {}",
            ceil_div(REFRESH_APPLIANCES, 25),
            named(&refreshed)
        ),
        "≤ ceil(N/25) + in view",
    );
    report.note(
        "Status: API calls counted by the simulator per operation (`GET /_fleetdeck/calls`). A \
         poll or refresh walks ListDevices (25 per page), whose LatestDeviceJob carries each \
         job's state; DescribeDevice goes only to the devices the UI reports in view (a \
         terminal's height either side of the cursor), once per appliance; a Snow device in view \
         is described again after each full refresh, since its lock state is only in \
         DescribeDevice.",
    );
    drop(s);
    h.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The UI: `update` and `draw` as the event loop calls them, into ratatui's TestBackend
