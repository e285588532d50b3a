//! The log file: what fleetdeck did and heard, for reading after the fact. Never the screen —
//! the terminal UI owns it, and `fleetdeck run` keeps stderr for its own words. The journal
//! stays the record of what was sent; the log is for finding out why something happened.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

use crate::ops::Book;
use crate::protocol::Event;

/// Names the log file instead of the default one.
pub const PATH_VARIABLE: &str = "FLEETDECK_LOG";

/// A log bigger than this when fleetdeck starts is moved aside to `fleetdeck.log.1` (the one
/// before that is dropped), so that the file never grows without bound.
pub const ROTATE_BYTES: u64 = 10 * 1024 * 1024;

static IN_USE: OnceLock<PathBuf> = OnceLock::new();

/// The log file being written, once `init` opened one.
pub fn path() -> Option<&'static Path> {
    IN_USE.get().map(PathBuf::as_path)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// No log file at all.
    Off,
    Error,
    Warn,
    /// Plans, every operation's changes of state, failures, contexts in use.
    #[default]
    Info,
    /// Also every command the UI gives and every page of devices read; the AWS SDK's own
    /// information.
    Debug,
    /// Everything, the SDK's and HTTP client's details included.
    Trace,
}

impl LogLevel {
    /// The filter: fleetdeck's own records at the level asked for; the SDK's (which say a lot)
    /// only at debug and trace.
    pub fn directives(self) -> Option<&'static str> {
        match self {
            Self::Off => None,
            Self::Error => Some("error"),
            Self::Warn => Some("warn"),
            Self::Info => Some("warn,fleetdeck=info"),
            Self::Debug => Some("info,fleetdeck=debug"),
            Self::Trace => Some("trace"),
        }
    }
}

/// `$FLEETDECK_LOG`, else `fleetdeck.log` beside the journal: the one named (`--journal`,
/// `$FLEETDECK_JOURNAL`), else the default one in the XDG state directory
/// (`$XDG_STATE_HOME/fleetdeck`, by default `~/.local/state/fleetdeck`). A journal kept apart
/// keeps its log with it, so two fleets' records never mix.
pub fn default_path(journal: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PATH_VARIABLE).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let journal = journal
        .map(Path::to_path_buf)
        .or_else(crate::journal::default_path)?;
    let dir = journal.parent().unwrap_or_else(|| Path::new(""));
    Some(dir.join("fleetdeck.log"))
}

/// Starts logging to `path` (or the default) at `level`; returns the file written to. A log
/// that cannot be opened is an error naming it and the ways around it: a run that cannot
/// record what it did should not start unnoticed. Where there is no state directory (no
/// home) and no path is given, nothing is logged.
pub fn init(
    level: LogLevel,
    path: Option<PathBuf>,
    journal: Option<&Path>,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(directives) = level.directives() else {
        return Ok(None);
    };
    // No home and no state directory: nothing to log to unless asked for by name.
    let Some(path) = path.or_else(|| default_path(journal)) else {
        return Ok(None);
    };
    let file = open(&path).with_context(|| {
        format!(
            "cannot open the log file {}: pass --log-file PATH, or --log-level off",
            path.display()
        )
    })?;
    let installed = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init();
    // A second init (tests that run several commands in one process) keeps the first.
    if installed.is_ok() {
        let _ = IN_USE.set(path.clone());
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            args = ?std::env::args().skip(1).collect::<Vec<_>>(),
            "fleetdeck started"
        );
    }
    Ok(Some(path))
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    rotate(path)?;
    OpenOptions::new().create(true).append(true).open(path)
}

fn rotate(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() > ROTATE_BYTES => {
            let mut old = path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(path, old)
        }
        _ => Ok(()),
    }
}

/// One line per event the worker sends, at the level its meaning has; the operation's device
/// comes from the book, since an event names only the operation.
pub fn event(event: &Event, book: &Book) {
    match event {
        Event::Connected(connections) => {
            for c in connections {
                tracing::info!(
                    context = %c.context,
                    region = %c.region,
                    panorama = %c.panorama_endpoint,
                    snow = %c.snow_endpoint,
                    read_only = c.read_only,
                    "scope in use"
                );
            }
        }
        Event::ListingStarted(scope, service) => {
            tracing::debug!(%scope, service = service.label(), "listing")
        }
        Event::DevicesPage(service, devices) => {
            tracing::debug!(service = service.label(), n = devices.len(), "devices read")
        }
        Event::ListingDone(scope, service, ids) => {
            tracing::info!(%scope, service = service.label(), devices = ids.len(), "listed")
        }
        Event::ListingFailed(scope, service, error) => {
            tracing::warn!(%scope, service = service.label(), %error, "listing failed")
        }
        Event::DescribeFailed(key, error) => {
            tracing::debug!(device = %key, %error, "DescribeDevice failed")
        }
        Event::PlanStarted {
            plan,
            operation,
            ops,
            resumed,
        } => tracing::info!(
            %plan,
            operation = ?operation,
            devices = ops.len(),
            resumed,
            "plan started"
        ),
        Event::PlanRefused(refusal) => {
            tracing::warn!(error = %refusal.error, overlaps = ?refusal.overlaps, "plan refused")
        }
        Event::Op(id, update) => {
            let op = book.get(*id);
            let device = op.map_or_else(|| format!("op {id}"), |op| op.key.to_string());
            let plan = op.map_or("", |op| op.plan.as_str());
            match &update.error {
                Some(error) => tracing::warn!(
                    %plan, %device, state = ?update.state, resource = ?update.resource_id,
                    %error, "operation"
                ),
                None => tracing::info!(
                    %plan, %device, state = ?update.state, resource = ?update.resource_id,
                    "operation"
                ),
            }
        }
        Event::Rollout(view) => tracing::info!(
            plan = %view.plan,
            wave = view.wave + 1,
            waves = view.waves.len(),
            phase = ?view.phase,
            "rollout"
        ),
        Event::Health(id, health) => tracing::info!(op = id, health = ?health, "health"),
        Event::Unfinished(r) => tracing::info!(plan = %r.plan, "unfinished plan found"),
        Event::Answered {
            plan,
            control,
            by,
            applied,
            detail,
        } => tracing::info!(
            %plan,
            word = control.word(),
            by = %by.text(),
            applied,
            %detail,
            "a word to a rollout"
        ),
        Event::Team { plan, standing, .. } => tracing::info!(%plan, %standing, "team"),
        Event::Leases(held) => tracing::debug!(held = held.len(), "team leases read"),
        Event::TeamJoined(Ok(j)) => {
            tracing::info!(table = %j.table, who = %j.who, "team table reached")
        }
        Event::TeamPlans(plans) => tracing::debug!(plans = plans.len(), "team plans read"),
        Event::TeamJoined(Err(why)) => tracing::warn!(%why, "team table refused"),
        Event::Notice(text) | Event::QuotaShared { text, .. } => tracing::info!("{text}"),
        Event::Failure(text) => tracing::warn!("{text}"),
        Event::DeviceUpdated(_) | Event::Details { .. } | Event::Inspected { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_but_off_has_a_filter_that_parses() {
        assert_eq!(LogLevel::Off.directives(), None);
        for level in LogLevel::value_variants() {
            if let Some(d) = level.directives() {
                assert!(EnvFilter::try_new(d).is_ok(), "{d}");
            }
        }
    }

    #[test]
    fn a_big_log_is_moved_aside_and_a_small_one_kept() {
        let dir = std::env::temp_dir().join(format!("fleetdeck-log-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("fleetdeck.log");
        // A missing directory is made.
        drop(open(&path).unwrap());
        std::fs::write(&path, "small\n").unwrap();
        drop(open(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "small\n");
        std::fs::write(&path, vec![b'x'; ROTATE_BYTES as usize + 1]).unwrap();
        drop(open(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let old = dir.join("nested").join("fleetdeck.log.1");
        assert_eq!(
            std::fs::metadata(old).unwrap().len(),
            ROTATE_BYTES + 1,
            "the big log is kept as .1"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
