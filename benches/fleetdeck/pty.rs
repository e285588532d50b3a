//! The release binary in a pseudo-terminal: time to the first frame, bytes written idle
//! and in flight, key to changed screen.

use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::OPS_IN_FLIGHT;
use crate::report::{Report, ms, percentile, secs};

pub(crate) struct Pty {
    pub(crate) child: Box<dyn portable_pty::Child + Send + Sync>,
    pub(crate) screen: Arc<Mutex<vt100::Parser>>,
    /// Kept open: the terminal lives as long as its master side.
    pub(crate) _master: Box<dyn portable_pty::MasterPty + Send>,
    pub(crate) writer: Box<dyn std::io::Write + Send>,
    /// What the screen is waited for, and when the reader first saw it.
    pub(crate) watch: Arc<Mutex<Watch>>,
    /// Every byte the program wrote to the terminal.
    pub(crate) bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Text the screen should come to contain (or, with `present` false, to lose), and the moment
/// the bytes read back first made it so.
pub(crate) struct Watch {
    pub(crate) text: String,
    pub(crate) present: bool,
    pub(crate) at: Option<Instant>,
}

impl Watch {
    pub(crate) fn check(&mut self, contents: &str) {
        if self.at.is_none()
            && !self.text.is_empty()
            && contents.contains(&self.text) == self.present
        {
            self.at = Some(Instant::now());
        }
    }
}

impl Pty {
    pub(crate) fn spawn(
        args: &[&str],
        env: &[(&str, &str)],
        size: (u16, u16),
        watch: &str,
    ) -> anyhow::Result<Self> {
        let (cols, rows) = size;
        let pair = native_pty_system().openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_fleetdeck"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).context("rows")?,
            NonZeroU16::new(cols).context("cols")?,
            0,
        )));
        let watch = Arc::new(Mutex::new(Watch {
            text: watch.to_string(),
            present: true,
            at: None,
        }));
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (feed, mark, count) = (screen.clone(), watch.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                let mut parser = feed.lock().unwrap_or_else(|e| e.into_inner());
                parser.process(&buf[..n]);
                let contents = parser.screen().contents();
                drop(parser);
                mark.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .check(&contents);
            }
        });
        Ok(Self {
            child,
            screen,
            _master: pair.master,
            writer,
            watch,
            bytes,
        })
    }

    pub(crate) fn contents(&self) -> String {
        self.screen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .screen()
            .contents()
    }

    pub(crate) fn seen(&self) -> Option<Instant> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner()).at
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn send(&mut self, keys: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        self.writer.write_all(keys)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Writes `keys` and returns how long until the screen read back shows (or, with
    /// `present` false, no longer shows) `text`.
    pub(crate) fn press(
        &mut self,
        keys: &[u8],
        text: &str,
        present: bool,
    ) -> anyhow::Result<Duration> {
        let contents = self.contents();
        {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            *w = Watch {
                text: text.to_string(),
                present,
                at: None,
            };
            anyhow::ensure!(
                contents.contains(text) != present,
                "the screen already shows what {keys:?} should bring ({text:?})"
            );
        }
        let pressed = Instant::now();
        self.send(keys)?;
        let deadline = pressed + Duration::from_secs(5);
        loop {
            if let Some(at) = self.seen() {
                return Ok(at.duration_since(pressed));
            }
            if Instant::now() > deadline {
                bail!(
                    "the screen did not answer {keys:?} with {text:?} within 5 s:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    pub(crate) fn wait(
        &self,
        what: &str,
        limit: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !ok(&self.contents()) {
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what}; the screen:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn first_frame(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let journal = scratch.join("first-frame.jsonl");
    let journal = journal.to_string_lossy().to_string();
    let mut samples = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let pty = Pty::spawn(
            &["--demo"],
            &[("FLEETDECK_JOURNAL", &journal)],
            (120, 40),
            " fleetdeck ",
        )?;
        pty.wait("the first frame", Duration::from_secs(20), |s| {
            s.contains(" fleetdeck ")
        })?;
        let seen = pty.seen().context("the first frame was not timed")?;
        samples.push(seen.duration_since(started));
    }
    let p50 = percentile(&mut samples, 50.0);
    let worst = percentile(&mut samples, 100.0);
    report.add(
        "ui",
        "time to the first frame of `fleetdeck --demo`: median / worst of 15",
        format!("{} / {}", ms(p50), ms(worst)),
        format!("{:.2}× the 50 ms goal (median)", p50.as_secs_f64() / 0.05),
        "≤ 50 ms",
    );
    report.note(
        "First frame: the release binary spawned in a 120×40 pseudo-terminal, timed from the \
         spawn to the moment the bytes read back from the terminal, fed through a vt100 parser, \
         show the status bar.",
    );
    Ok(())
}

/// Snow devices listed for the end-to-end terminal figures, and how many are rebooted.
pub(crate) const PTY_FLEET: usize = 2000;

/// The release binary in a 120×40 pseudo-terminal against the simulator: bytes written while
/// idle and with 1,000 operations in flight, and key to frame through the terminal.
pub(crate) async fn terminal_end_to_end(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    // Every device reachable, so the plan takes every marked row and 1,000 are in flight (a
    // generated fleet leaves 1 in 20 unreachable, which the preflight leaves out).
    let mut fleet = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..PTY_FLEET {
        let state = if i % 2 == 0 { "LOCKED" } else { "UNLOCKED" };
        fleet.push_str(&format!(
            "[[snow.devices]]\nstate = \"{state}\"\nsoftware = \"7.1.0\"\n"
        ));
    }
    let h = sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet),
        quotas: QuotaMode::Off,
        // Executions take about 70 s: the rows stay in flight while they are measured.
        speed: 0.5,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("pty.jsonl").to_string_lossy().to_string();
    let endpoint = h.endpoint.clone();
    let (key, secret) = (h.access_key_id.clone(), h.secret_access_key.clone());
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<PtyFigures> {
        let mut pty = Pty::spawn(
            &["--endpoint-url", &endpoint, "--region", "us-east-1"],
            &[
                ("FLEETDECK_JOURNAL", &journal),
                ("AWS_ACCESS_KEY_ID", &key),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                ("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml"),
            ],
            (120, 40),
            "",
        )?;
        let idle = idle_bytes(&mut pty)?;
        let results = reboot_marked(&mut pty)?;
        // Every task created (100 calls at 8 at a time): the rows are in flight.
        std::thread::sleep(Duration::from_secs(5));
        let flight_window = Duration::from_secs(20);
        let before = pty.bytes();
        std::thread::sleep(flight_window);
        let in_flight = pty.bytes() - before;
        let samples = type_a_filter(&mut pty)?;
        let still = pty.contents();
        Ok(PtyFigures {
            idle,
            in_flight,
            flight_window,
            samples,
            in_flight_at_end: still.contains(&results),
        })
    })
    .await??;
    h.stop().await;
    anyhow::ensure!(figures.in_flight_at_end, "the results pane left the screen");
    write_terminal_figures(report, figures);
    Ok(())
}

/// Bytes written while nothing is pressed, once the fleet is listed and the rows in view
/// described; and what they drew.
fn idle_bytes(pty: &mut Pty) -> anyhow::Result<Idle> {
    let listed = format!("Devices {PTY_FLEET} (0 Panorama, {PTY_FLEET} Snow)");
    pty.wait("every device listed", Duration::from_secs(60), |s| {
        s.contains(&listed) && !s.contains("loading")
    })?;
    // The rows in view are described after the listing: let that settle.
    std::thread::sleep(Duration::from_secs(3));
    let window = Duration::from_secs(31);
    let (before, shown) = (pty.bytes(), pty.contents());
    std::thread::sleep(window);
    let bytes = pty.bytes() - before;
    let after = pty.contents();
    let (changed, place) = what_changed(&shown, &after);
    Ok(Idle {
        bytes,
        window,
        changed,
        place,
    })
}

/// The rows whose text is not what it was (a Seen cell turning a minute is a change; a
/// spinner come and gone is not), and where on them, against where the Seen column is.
fn what_changed(shown: &str, after: &str) -> (usize, String) {
    let changed = shown
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .count();
    let mut band: Option<(usize, usize)> = None;
    for (a, b) in shown.lines().zip(after.lines()).filter(|(a, b)| a != b) {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let differs = |i: &usize| a.get(*i) != b.get(*i);
        let all = 0..a.len().max(b.len());
        if let (Some(lo), Some(hi)) = (all.clone().find(differs), all.rev().find(differs)) {
            band = Some(band.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
        }
    }
    let seen_at = shown
        .lines()
        .find_map(|l| l.find(" Seen ").map(|b| l[..b].chars().count() + 1));
    let place = match (band, seen_at) {
        (Some((lo, hi)), Some(at)) => format!(
            ", differing in columns {}–{} (the Seen column starts at {})",
            lo + 1,
            hi + 1,
            at + 1
        ),
        _ => String::new(),
    };
    (changed, place)
}

/// 1,000 marked with Space (which moves on a row), rebooted, the count typed; the results
/// pane's title once they are in it.
fn reboot_marked(pty: &mut Pty) -> anyhow::Result<String> {
    pty.send(&[b' '; OPS_IN_FLIGHT])?;
    let marked = format!("{OPS_IN_FLIGHT} marked");
    pty.wait("the marks", Duration::from_secs(30), |s| {
        s.contains(&marked)
    })?;
    pty.send(b"b")?;
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"\r")?;
    // The count typed is the one the confirmation asks for: every marked row.
    pty.wait("the confirmation", Duration::from_secs(10), |s| {
        confirm_count(s).is_some()
    })?;
    let screen = pty.contents();
    let asked = confirm_count(&screen)
        .ok_or_else(|| anyhow::anyhow!("no count to type on the confirmation:\n{screen}"))?;
    anyhow::ensure!(
        asked == OPS_IN_FLIGHT,
        "the plan holds {asked} devices, not the {OPS_IN_FLIGHT} marked:\n{screen}"
    );
    pty.send(asked.to_string().as_bytes())?;
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"\r")?;
    let results = format!(" Results {asked} ");
    pty.wait("the results", Duration::from_secs(30), |s| {
        s.contains(&results)
    })?;
    Ok(results)
}

/// A filter typed and erased, a key at a time, each timed to its answer on screen.
fn type_a_filter(pty: &mut Pty) -> anyhow::Result<Vec<Duration>> {
    pty.send(b"/")?;
    std::thread::sleep(Duration::from_millis(300));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let typed = "smd-1";
    let mut samples = Vec::new();
    for _ in 0..40 {
        for n in 1..=typed.len() {
            let shown = format!("filter \"{}\"", &typed[..n]);
            samples.push(pty.press(&typed.as_bytes()[n - 1..n], &shown, true)?);
            std::thread::sleep(Duration::from_millis(rng.random_range(10..40)));
        }
        for n in (0..typed.len()).rev() {
            let took = if n == 0 {
                pty.press(&[0x7f], "· filter \"", false)?
            } else {
                pty.press(&[0x7f], &format!("filter \"{}\"", &typed[..n]), true)?
            };
            samples.push(took);
            std::thread::sleep(Duration::from_millis(rng.random_range(10..40)));
        }
    }
    Ok(samples)
}

fn write_terminal_figures(report: &mut Report, figures: PtyFigures) {
    let PtyFigures {
        idle,
        in_flight,
        flight_window,
        mut samples,
        ..
    } = figures;
    let per_sec = |b: u64, w: Duration| b as f64 / w.as_secs_f64();
    report.add(
        "ui",
        format!("bytes written to the terminal while idle, {PTY_FLEET} devices, 120×40"),
        format!("{:.1} B/s", per_sec(idle.bytes, idle.window)),
        format!(
            "{} bytes in {} (a background refresh included); {} lines on screen changed{}",
            idle.bytes,
            secs(idle.window),
            idle.changed,
            idle.place
        ),
        "0",
    );
    let rate = per_sec(in_flight, flight_window);
    report.add(
        "ui",
        format!("bytes written to the terminal, {OPS_IN_FLIGHT} operations in flight, 120×40"),
        format!("{:.0} B/s", rate),
        format!(
            "{:.2}× the 4 KB/s goal; {in_flight} bytes in {}",
            rate / 4000.0,
            secs(flight_window)
        ),
        "≤ 4 KB/s",
    );
    let p99 = percentile(&mut samples, 99.0);
    report.add(
        "ui",
        format!(
            "key to frame through a pseudo-terminal, {OPS_IN_FLIGHT} in flight, typing a filter: p50 / p99 (n = {})",
            samples.len()
        ),
        format!("{} / {}", ms(percentile(&mut samples, 50.0)), ms(p99)),
        format!("{:.2}× the 16 ms goal (p99)", p99.as_secs_f64() / 0.016),
        "p99 ≤ 16 ms",
    );
    report.note(format!(
        "Terminal end to end: the release binary in a 120×40 pseudo-terminal against a simulator \
         of {PTY_FLEET} Snow devices (quotas off, simulated time at half speed so executions \
         last about 70 s). Bytes are every byte read from the terminal's master side. Idle: \
         the fleet listed and the rows in view described, then {} with no key pressed, which \
         includes a background refresh. In flight: {OPS_IN_FLIGHT} devices marked with Space, \
         rebooted with `b`, Enter, the count typed and Enter; counted over {} once every task \
         was created, the polls moving the rows. Key to frame: with those {OPS_IN_FLIGHT} in \
         flight, `/` then `smd-1` typed and erased with Backspace, 40 times, 10–40 ms between \
         keys; each sample runs from the key written to the master to the moment the bytes read \
         back, fed through a vt100 parser, show the filter as typed in the devices pane's title.",
        secs(idle.window),
        secs(flight_window)
    ));
}

/// The count a confirmation asks to be typed: "Type N (the number of devices) to confirm".
pub(crate) fn confirm_count(screen: &str) -> Option<usize> {
    screen.match_indices("Type ").find_map(|(at, t)| {
        let digits: String = screen[at + t.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

pub(crate) struct PtyFigures {
    pub(crate) idle: Idle,
    pub(crate) in_flight: u64,
    pub(crate) flight_window: Duration,
    pub(crate) samples: Vec<Duration>,
    pub(crate) in_flight_at_end: bool,
}

/// What the terminal got while nothing was pressed.
pub(crate) struct Idle {
    pub(crate) bytes: u64,
    pub(crate) window: Duration,
    /// Lines on screen whose text changed, and where on them.
    pub(crate) changed: usize,
    pub(crate) place: String,
}
