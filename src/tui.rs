//! The terminal program: one `select!` over terminal events, worker events, a tick and exit
//! signals; `app::update` for every message, `ui::draw` after it. Nothing here awaits the
//! network: the worker does that.

use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::app::{self, App, Msg};
use crate::aws::{self, Connection};
use crate::cli::TuiArgs;
use crate::contexts::{self, Catalog, ConfigFile, Flags};
use crate::journal;
use crate::ops::Tally;
use crate::protocol::{Command, Event, Settings, Source};
use crate::sim::{self, SimConfig};
use crate::ui;
use crate::worker;
use tokio::sync::mpsc;

/// Set in the environment, makes the program panic right after its first frame.
pub const PANIC_FOR_TESTS: &str = "FLEETDECK_TEST_PANIC";

/// What both front ends, the terminal UI and `fleetdeck run`, start from.
pub struct Session {
    pub source: Source,
    /// What the header can say before configuration is loaded.
    pub connections: Vec<Connection>,
    pub catalog: Catalog,
    pub settings: Settings,
    /// The demo's simulator, kept alive for the session.
    pub sim: Option<sim::SimHandle>,
    /// What a rollout's gate watches besides its devices, from flags and contexts.
    pub watch: crate::ops::rollout::Watch,
}

/// The gate's watch from the flags, then the contexts in use: each window is parsed here so
/// a wrong one is refused before anything is listed.
fn watch_of(
    args: &crate::cli::WatchArgs,
    catalog: &Catalog,
    flags: &Flags,
) -> anyhow::Result<crate::ops::rollout::Watch> {
    use crate::ops::rollout::{WINDOW_TAG, Watch, parse_duration};
    let defaults = catalog.watch_defaults(flags).map_err(anyhow::Error::msg)?;
    let (alarms, window, tag) = (defaults.alarms, defaults.window, defaults.window_tag);
    let watch = Watch {
        app_health: !args.no_app_health,
        alarms: if args.alarms.is_empty() {
            alarms
        } else {
            args.alarms.clone()
        },
        alarm_strict: args.alarm_strict,
        window: args.window.clone().or(window),
        window_tag: args
            .window_tag
            .clone()
            .or(tag)
            .unwrap_or_else(|| WINDOW_TAG.into()),
        window_timeout_secs: match &args.window_timeout {
            Some(t) => Some(
                parse_duration(t)
                    .map_err(|e| anyhow::anyhow!("--window-timeout: {e}"))?
                    .as_secs(),
            ),
            None => None,
        },
        device_windows: Default::default(),
    };
    if let Some(w) = &watch.window {
        crate::ops::watch::Windows::parse(w).map_err(|e| anyhow::anyhow!("--window: {e}"))?;
    }
    for name in &watch.alarms {
        crate::fleet::validate::alarm_name(name)
            .map_err(|e| anyhow::anyhow!("--abort-on-alarm: {e}"))?;
    }
    Ok(watch)
}

/// The demo's simulator: two regions, two accounts (each its own key pair and fleet), named
/// as contexts so the header, `:ctx` and the Region and Account columns have something to show.
async fn start_demo(speed: f64) -> anyhow::Result<(sim::SimHandle, Catalog)> {
    let handle = sim::start(SimConfig {
        speed,
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        accounts: vec![sim::SimAccount {
            access_key_id: sim::DEMO_LAB_ACCESS_KEY_ID.into(),
            secret_access_key: sim::DEMO_LAB_SECRET_ACCESS_KEY.into(),
            fleet: sim::FleetSource::Toml(sim::DEMO_FLEET_LAB.into()),
            account_id: None,
        }],
        ..SimConfig::default()
    })
    .await
    .context("the demo simulator did not start")?;
    let file = contexts::parse(DEMO_CONTEXTS).map_err(anyhow::Error::msg)?;
    let keys = handle
        .accounts
        .iter()
        .zip(["prod", "lab"])
        .map(|(a, name)| {
            (
                name.to_string(),
                (a.access_key_id.clone(), a.secret_access_key.clone()),
            )
        })
        .collect();
    let catalog = Catalog {
        file,
        demo: Some(contexts::Demo {
            endpoint: handle.endpoint.clone(),
            keys,
        }),
        ..Catalog::default()
    };
    Ok((handle, catalog))
}

/// The demo's contexts: its two accounts, as a config file would name them.
const DEMO_CONTEXTS: &str = r#"
current = ["prod", "lab"]

[contexts.prod]
regions = ["us-east-1"]
label = "prod"
colour = "red"

[contexts.lab]
regions = ["us-west-2", "us-east-1"]
label = "lab"
colour = "cyan"
"#;

impl Session {
    pub async fn prepare(args: &TuiArgs) -> anyhow::Result<Self> {
        let health_timeout = crate::ops::rollout::parse_duration(&args.watch.health_timeout)
            .map_err(|e| anyhow::anyhow!("--health-timeout: {e}"))?;
        let settings = Settings {
            health_timeout,
            concurrency: usize::from(args.concurrency),
            read_only: args.read_only,
            journal: args.journal.clone().or_else(journal::default_path),
            refresh_every: Some(Duration::from_secs(args.refresh_secs.max(1))),
            ..Settings::default()
        };
        let flags = flags_of(args);
        // The demo's simulator starts in-process on loopback before the first frame: it is
        // local and quick, and its endpoint belongs in that frame's header.
        let (mut catalog, sim) = if args.demo {
            let (handle, catalog) = start_demo(args.demo_speed).await?;
            (catalog, Some(handle))
        } else {
            let path = args.config.clone().or_else(contexts::default_path);
            let file = match &path {
                Some(p) => contexts::read_file(p)?,
                None => ConfigFile::default(),
            };
            let catalog = Catalog {
                file,
                env: contexts::Env::read(),
                profiles: contexts::aws_profiles(),
                ..Catalog::default()
            };
            (catalog, None)
        };
        let targets = catalog.targets(&flags).map_err(anyhow::Error::msg)?;
        let mut settings = settings;
        settings.team = catalog
            .team(&flags, args.team.as_deref())
            .map_err(anyhow::Error::msg)?
            .map(|t| t.overridden(args.team_profile.clone(), args.team_region.clone()));
        let watch = watch_of(&args.watch, &catalog, &flags)?;
        // Alarms are read from the first context's account and region, through aws-config
        // (AWS_ENDPOINT_URL_CLOUDWATCH); the demo's simulator has none to read.
        let cloudwatch_here = std::env::var_os("AWS_ENDPOINT_URL_CLOUDWATCH").is_some();
        if args.demo && !cloudwatch_here && !watch.alarms.is_empty() {
            anyhow::bail!(
                "--abort-on-alarm reads CloudWatch, which the demo's simulator does not serve: set AWS_ENDPOINT_URL_CLOUDWATCH to a CloudWatch you run locally, or leave the alarms out"
            );
        }
        // The demo never reaches AWS: without a local CloudWatch, alarms typed in its form
        // stop their plan instead.
        if !args.demo || cloudwatch_here {
            settings.alarms_from = targets
                .first()
                .map(|t| crate::aws::cloudwatch::AlarmSource {
                    profile: t.profile.clone(),
                    region: t.region.clone(),
                    demo_key: t.demo_key.clone(),
                });
        }
        catalog.flags = flags;
        let connections = targets.iter().map(aws::config::first_guess).collect();
        Ok(Self {
            source: Source(targets),
            connections,
            catalog,
            settings,
            sim,
            watch,
        })
    }
}

/// Team mode's table for these flags, without starting anything: `--team` or FLEETDECK_TEAM,
/// else the `team` of the contexts in use.
pub fn team_config(args: &TuiArgs) -> anyhow::Result<Option<crate::team::TeamConfig>> {
    let file = if args.demo {
        contexts::parse(DEMO_CONTEXTS).map_err(anyhow::Error::msg)?
    } else {
        match args.config.clone().or_else(contexts::default_path) {
            Some(p) => contexts::read_file(&p)?,
            None => ConfigFile::default(),
        }
    };
    let catalog = Catalog {
        file,
        env: contexts::Env::read(),
        ..Catalog::default()
    };
    Ok(catalog
        .team(&flags_of(args), args.team.as_deref())
        .map_err(anyhow::Error::msg)?
        .map(|t| t.overridden(args.team_profile.clone(), args.team_region.clone())))
}

fn flags_of(args: &TuiArgs) -> Flags {
    Flags {
        ctx: args.ctx.clone(),
        profiles: args.profiles.clone(),
        regions: args.regions.clone(),
        endpoint_url: args.endpoint_url.clone(),
        read_only: args.read_only,
    }
}

/// Runs the terminal UI; the exit status is 3 when work was left for a resume.
pub async fn run(args: TuiArgs) -> anyhow::Result<i32> {
    let Session {
        source,
        connections,
        catalog,
        settings,
        sim,
        watch,
    } = Session::prepare(&args).await?;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(connections, color, Instant::now());
    app.danger = crate::fleet::filter::Danger::new(&catalog.file.danger());
    app.catalog = catalog;
    app.watch = watch;
    app.read_only = args.read_only;
    app.operator = journal::control::operator("the terminal UI");
    app.journal_path = settings.journal.as_ref().map(|p| p.display().to_string());
    app.log_path = crate::log::path().map(|p| p.display().to_string());

    let mut terminal = match open_terminal() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            return Err(e).context("cannot set up the terminal");
        }
    };
    // The terminal is restored before a panic of the UI's thread is reported. A panic on
    // another thread (a worker task) does not bring the process down: tokio catches it and
    // the worker fails the rows it carried, so the screen is left alone for it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            ratatui::restore();
            default_hook(info);
        }
    }));
    let journal = settings.journal.clone();
    let demo = sim.is_some();
    let (commands, events) = worker::spawn(source, settings);
    let result = event_loop(&mut terminal, app, &commands, events).await;
    ratatui::restore();
    // The terminal first, then the journal. Every way out — a quit, a signal, a dropped SSH
    // session — stops dispatch the same way: calls under way finish, what was not sent is
    // recorded as paused, and the next start offers to resume it.
    let tally = stop(&commands).await;
    let code = summary(tally.as_ref(), journal.as_deref(), demo);
    result.map(|()| code)
}

/// Stops the worker's dispatch; says so when calls are still under way. `None` when the stop
/// could not be seen through (the worker is gone, it took over a minute, or a second Ctrl-C).
async fn stop(commands: &mpsc::UnboundedSender<Command>) -> Option<Tally> {
    let (done, mut wait) = tokio::sync::oneshot::channel();
    commands.send(Command::Shutdown(done)).ok()?;
    let quick = tokio::time::timeout(Duration::from_millis(300), &mut wait).await;
    if let Ok(answer) = quick {
        return answer.ok();
    }
    eprintln!(
        "fleetdeck: stopping — waiting for the calls under way to answer (Ctrl-C again exits at once)"
    );
    tokio::select! {
        answer = tokio::time::timeout(Duration::from_secs(60), wait) => answer.ok().and_then(Result::ok),
        _ = tokio::signal::ctrl_c() => None,
    }
}

/// What was left, on the terminal after it is restored; the exit status to go with it.
fn summary(t: Option<&Tally>, journal: Option<&std::path::Path>, demo: bool) -> i32 {
    let path = journal.map_or_else(String::new, |p| format!(" in the journal {}", p.display()));
    let Some(t) = t else {
        eprintln!(
            "fleetdeck: stopped before every call under way had answered. What was sent is recorded{path}; start fleetdeck again to resume what was not."
        );
        return 3;
    };
    let total = t.running + t.left() + t.succeeded + t.not_done;
    if total == 0 {
        return 0;
    }
    eprintln!(
        "fleetdeck: {} succeeded, {} failed or skipped, {} sent and still running, {} not yet sent, {} unconfirmed.",
        t.succeeded, t.not_done, t.running, t.unsent, t.unconfirmed
    );
    if t.left() == 0 {
        return 0;
    }
    if demo {
        eprintln!(
            "The plan is recorded as paused{path}; the demo's simulator ended with this process, so it cannot be resumed."
        );
        return 3;
    }
    eprintln!(
        "The plan is kept{path}: start fleetdeck again to resume it, or run `fleetdeck run --resume`."
    );
    3
}

/// How long worker news may be taken in before a frame is drawn: what is still queued then
/// waits for the next frame, so a key is never answered later than this behind a burst.
pub const NEWS_PER_FRAME: Duration = Duration::from_millis(8);

/// One turn of the event loop before its frame is drawn: the message, then — unless it is a
/// key, whose frame goes out at once — the worker news queued behind it for at most
/// `NEWS_PER_FRAME` (one poll answers for many rows: a frame per row would starve the keys,
/// and a whole refresh at once would stall them), then what is in view. The benchmark runs
/// the same turn. Returns the commands for the worker.
pub fn turn(app: &mut App, msg: Msg, mut news: impl FnMut() -> Option<Event>) -> Vec<Command> {
    let mut out = app::update(app, Msg::Tick(Instant::now()));
    let key = matches!(msg, Msg::Key(_));
    out.extend(app::update(app, msg));
    if !key {
        let until = Instant::now() + NEWS_PER_FRAME;
        while Instant::now() < until {
            let Some(event) = news() else { break };
            out.extend(app::update(app, Msg::Worker(Box::new(event))));
        }
    }
    out.extend(app::look(app));
    out
}

type Term = Terminal<CrosstermBackend<Quiet<std::io::Stdout>>>;

/// Raw mode, the alternate screen, and a terminal whose frames go out through [`Quiet`].
fn open_terminal() -> std::io::Result<Term> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    Terminal::new(CrosstermBackend::new(Quiet::new(std::io::stdout())))
}

/// Holds a frame's bytes until it is flushed, and drops a frame that is byte for byte the
/// one before it. ratatui writes only the cells that changed, but every frame also resets
/// the colours and sets the cursor; over SSH an idle screen should cost nothing. Dropping is
/// safe because a frame's bytes place every cell they write absolutely, so writing the same
/// frame twice leaves the screen as writing it once.
pub struct Quiet<W: std::io::Write> {
    inner: W,
    frame: Vec<u8>,
    last: Vec<u8>,
    /// Bytes that reached the terminal, for the benchmark and the tests.
    pub written: u64,
}

impl<W: std::io::Write> Quiet<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            frame: Vec::new(),
            last: Vec::new(),
            written: 0,
        }
    }
}

impl<W: std::io::Write> std::io::Write for Quiet<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.frame.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.frame.is_empty() {
            return self.inner.flush();
        }
        if self.frame != self.last {
            self.inner.write_all(&self.frame)?;
            self.written += self.frame.len() as u64;
            self.inner.flush()?;
            std::mem::swap(&mut self.frame, &mut self.last);
        }
        self.frame.clear();
        Ok(())
    }
}

/// Runs until the operator quits, a signal comes (SIGTERM, SIGHUP) or the terminal goes away;
/// every way out then stops dispatch the same way.
async fn event_loop(
    terminal: &mut Term,
    mut app: App,
    commands: &mpsc::UnboundedSender<Command>,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<()> {
    let mut terminal_events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    if let Ok(size) = terminal.size() {
        app::update(&mut app, Msg::Resize(size.width, size.height));
    }
    terminal.draw(|f| ui::draw(&app, f))?;
    // For tests/tui_exit.rs: proves that a panic restores the terminal.
    if std::env::var_os(PANIC_FOR_TESTS).is_some() {
        panic!("{PANIC_FOR_TESTS} is set");
    }
    loop {
        // The operator's keys first: under a flood of news a key waits for the turn under way
        // and no longer.
        let msg = tokio::select! {
            biased;
            event = terminal_events.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => Msg::Key(key),
                Some(Ok(TermEvent::Resize(w, h))) => Msg::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("reading the terminal failed"),
                None => return Ok(()),
            },
            event = events.recv() => match event {
                Some(event) => Msg::Worker(Box::new(event)),
                // The worker is gone (it panicked): nothing more can be sent or followed.
                None => anyhow::bail!("the background worker stopped; what was sent is in the journal"),
            },
            _ = tick.tick() => Msg::Tick(Instant::now()),
            _ = term.recv() => return Ok(()),
            _ = hangup.recv() => return Ok(()),
        };
        let out = turn(&mut app, msg, || events.try_recv().ok());
        for command in out {
            let _ = commands.send(command);
        }
        if app.quit {
            return Ok(());
        }
        terminal.draw(|f| ui::draw(&app, f))?;
    }
}

#[cfg(test)]
mod tests {
    use super::Quiet;
    use std::io::Write;

    #[test]
    fn a_frame_like_the_one_before_is_not_written() {
        let mut q = Quiet::new(Vec::new());
        for frame in [
            &b"\x1b[1;1Hab\x1b[?25l"[..],
            b"\x1b[1;1Hab\x1b[?25l",
            b"\x1b[?25l",
        ] {
            q.write_all(frame).unwrap();
            q.flush().unwrap();
        }
        assert_eq!(q.inner, b"\x1b[1;1Hab\x1b[?25l\x1b[?25l");
        assert_eq!(q.written, q.inner.len() as u64);
        // Nothing held back: an empty flush writes nothing, the next different frame goes out.
        q.flush().unwrap();
        q.write_all(b"\x1b[1;1Hab\x1b[?25l").unwrap();
        q.flush().unwrap();
        assert!(q.inner.ends_with(b"\x1b[?25l\x1b[1;1Hab\x1b[?25l"));
    }
}
