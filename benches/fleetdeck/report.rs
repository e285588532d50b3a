//! The report: the machine, the commit, the journal's filesystem, and the table of
//! figures BENCHMARKS.md is made of; how durations and percentiles are written.

use std::path::Path;
use std::time::Duration;

/// The filesystem a directory is on, and its device, as `stat -f` and `df` name them.
pub(crate) fn filesystem(dir: &Path) -> String {
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .arg(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let kind = run("stat", &["-f", "-c", "%T"]).unwrap_or_else(|| "unknown".into());
    let device = run("df", &["--output=source"])
        .and_then(|s| s.lines().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown device".into());
    format!("{kind} on {device}")
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
    /// Where the journals were written.
    pub(crate) filesystem: String,
}

pub(crate) struct Row {
    pub(crate) section: &'static str,
    pub(crate) what: String,
    pub(crate) figure: String,
    pub(crate) against: String,
    pub(crate) goal: String,
}

impl Report {
    pub(crate) fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        figure: impl Into<String>,
        against: impl Into<String>,
        goal: impl Into<String>,
    ) {
        let row = Row {
            section,
            what: what.into(),
            figure: figure.into(),
            against: against.into(),
            goal: goal.into(),
        };
        eprintln!(
            "{:<9} {:<58} {:>14}  {}  [{}]",
            row.section, row.what, row.figure, row.against, row.goal
        );
        self.rows.push(row);
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("note: {text}");
        self.notes.push(text);
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::from(
            "# Benchmarks\n\n\
             Written by `cargo bench --bench fleetdeck` (benches/fleetdeck/); run it again to \
             regenerate this file (`cargo bench --bench fleetdeck -- keys pty` runs some sections \
             and prints them without writing it). It takes about thirteen minutes with its build and needs the `aws` \
             CLI and Python's boto3 on PATH for the baselines. Everything runs on loopback: the simulator binds 127.0.0.1.\n\n",
        );
        out.push_str(&format!("Machine: {}\n\n", machine()));
        out.push_str(&format!("Run: {}\n\n", revision()));
        out.push_str(&format!(
            "Journals (fsynced on every intent and outcome): the working directory's disk, {}\n\n",
            self.filesystem
        ));
        out.push_str("| Section | Measure | Figure | Against the bound / baseline | Goal |\n");
        out.push_str("|---|---|---|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.section, r.what, r.figure, r.against, r.goal
            ));
        }
        if !self.notes.is_empty() {
            out.push_str("\n## How each figure is taken\n\n");
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kib_field(&s, "MemTotal:"))
        .map_or("unknown memory".into(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown kernel".into(), |s| s.trim().to_string());
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory}, Linux {kernel}, {rustc}, bench profile (release)")
}

/// The commit measured and the day, so a figure can be traced to the code it came from.
pub(crate) fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // This file's own last output does not count as a change to what is measured.
    let changes = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!BENCHMARKS.md",
    ];
    let dirty = git(&changes).is_some_and(|s| !s.is_empty());
    let day = time::OffsetDateTime::now_utc().date();
    format!(
        "commit {commit}{}, {day}",
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    )
}

pub(crate) fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The p-th percentile (0..=100) of the samples, nearest rank.
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

pub(crate) fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len().max(1) as u32
}

// ---------------------------------------------------------------------------------------------
// The worker against the simulator
