//! The UI in process: frame time and key-to-frame with 100,000 devices and 1,000
//! operations in flight, while refreshes arrive, while typing a filter and sorting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::app::{App, Msg};
use fleetdeck::aws::Connection;
use fleetdeck::fleet::{Device, DeviceKey, Service};
use fleetdeck::ops::{OpState, OpUpdate, Progress};
use fleetdeck::protocol::{Command, Event, Settings};
use fleetdeck::{app, tui, ui};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, TestBackend};

use crate::report::{Report, mean, ms, percentile, secs};
use crate::{BIG_FLEET, OPS_IN_FLIGHT};

pub(crate) fn connection() -> Connection {
    Connection {
        profile: "bench".into(),
        region: "us-east-1".into(),
        panorama_endpoint: "http://127.0.0.1:4580".into(),
        snow_endpoint: "http://127.0.0.1:4580".into(),
        demo: true,
        context: "prod".into(),
        account: Some("123456789012".into()),
        ..Connection::default()
    }
}

/// A device as the worker would report it, with every column filled.
pub(crate) fn device(i: usize) -> Device {
    if i < 50 {
        let mut d = Device::new(Service::Panorama, format!("device-{i:026}"));
        d.name = Some(format!("site-{:03}-cam-{i:02}", i % 7).into());
        d.status = "UPDATE_NEEDED".into();
        d.connection = Some("ONLINE".into());
        d.current_software = Some("5.0.10".into());
        d.available_software = Some("5.0.21".into());
        d.latest = Some("OTA COMPLETED".into());
        d.tags.insert("site", format!("site-{:03}", i % 7));
        d
    } else {
        let mut d = Device::new(Service::Snow, format!("smd-{i:017}"));
        d.status = if i.is_multiple_of(3) {
            "UNLOCKED"
        } else {
            "LOCKED"
        }
        .into();
        d.connection = Some("2026-11-23T10:00:00Z".into());
        d.current_software = Some("1.4.2".into());
        d.latest = Some("reboot SUCCEEDED".into());
        d.tags.insert("site", format!("site-{:03}", i % 211));
        d
    }
}

pub(crate) fn big_app(n: usize, width: u16, height: u16) -> App {
    let mut app = App::new(vec![connection()], true, Instant::now());
    app::update(&mut app, Msg::Resize(width, height));
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let page = chunk.iter().map(|&i| device(i)).collect();
        let event = Event::DevicesPage(Service::Snow, page);
        app::update(&mut app, Msg::Worker(Box::new(event)));
    }
    app
}

pub(crate) fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(crate) fn frames(report: &mut Report) -> anyhow::Result<()> {
    let built = Instant::now();
    let mut app = big_app(BIG_FLEET, 200, 60);
    let load = built.elapsed();
    for (w, h) in [(200u16, 60u16), (80, 24)] {
        app::update(&mut app, Msg::Resize(w, h));
        let mut terminal = Terminal::new(TestBackend::new(w, h))?;
        let mut samples = Vec::new();
        for i in 0..2000 {
            // Move through the list so each frame shows different rows.
            let code = if i % 400 < 200 {
                KeyCode::PageDown
            } else {
                KeyCode::PageUp
            };
            app::update(&mut app, key(code));
            let t = Instant::now();
            terminal.draw(|f| ui::draw(&app, f))?;
            samples.push(t.elapsed());
        }
        let p99 = percentile(&mut samples, 99.0);
        report.add(
            "ui",
            format!("frame, {BIG_FLEET} devices, {w}×{h}: mean / p99"),
            format!("{} / {}", ms(mean(&samples)), ms(p99)),
            format!("{:.2}× the 2 ms goal (p99)", p99.as_secs_f64() / 0.002),
            "≤ 2 ms",
        );
    }
    report.note(format!(
        "Frames: `ui::draw` of an App holding {BIG_FLEET} devices into ratatui's TestBackend, \
         2,000 frames per size while paging through the list (terminal output not included). \
         Loading the {BIG_FLEET} devices as 1,000 pages of 100 took {} in all.",
        secs(load)
    ));
    Ok(())
}

/// 100,000 devices sorted by Status with 1,000 Snow rows in flight (marked and rebooted with
/// the operator's keys), 200×60.
pub(crate) fn app_in_flight() -> anyhow::Result<(App, Vec<usize>)> {
    let mut app = big_app(BIG_FLEET, 200, 60);
    // Service, Name, Region, Account, Status: a page of news then reorders rows.
    for _ in 0..5 {
        app::update(&mut app, key(KeyCode::Char('s')));
    }
    anyhow::ensure!(
        app.devices.sort == Some(app::SortColumn::Status),
        "not sorted by Status: {:?}",
        app.devices.sort
    );
    for _ in 0..100 {
        app::update(&mut app, key(KeyCode::Down));
    }
    for _ in 0..OPS_IN_FLIGHT {
        app::update(&mut app, key(KeyCode::Char(' ')));
    }
    app::update(&mut app, key(KeyCode::Char('b')));
    app::update(&mut app, key(KeyCode::Enter));
    for c in OPS_IN_FLIGHT.to_string().chars() {
        app::update(&mut app, key(KeyCode::Char(c)));
    }
    let commands = app::update(&mut app, key(KeyCode::Enter));
    let Some(Command::Dispatch(plan)) = commands.into_iter().next() else {
        bail!("the reboot of {OPS_IN_FLIGHT} devices was not dispatched");
    };
    // The engine's answer, as the worker would give it: one operation per target.
    let started: Vec<(usize, DeviceKey)> = plan.targets.iter().cloned().enumerate().collect();
    let ops: Vec<usize> = started.iter().map(|(op, _)| *op).collect();
    app::update(
        &mut app,
        Msg::Worker(Box::new(Event::PlanStarted {
            plan: "bench".into(),
            operation: plan.operation.clone(),
            ops: started,
            resumed: false,
        })),
    );
    anyhow::ensure!(ops.len() == OPS_IN_FLIGHT, "{} rows in flight", ops.len());
    Ok((app, ops))
}

/// A poll's news: every row in flight moves on a step.
pub(crate) fn poll_news(ops: &[usize], round: usize) -> Vec<Event> {
    let states = [
        OpState::Sending,
        OpState::Sent,
        OpState::Running(Progress::Queued),
        OpState::Running(Progress::InProgress),
    ];
    ops.iter()
        .map(|&op| {
            let update = OpUpdate {
                state: states[(round + op) % states.len()],
                resource_id: Some(format!("task-{}", op / 10)),
                error: None,
            };
            Event::Op(op, update)
        })
        .collect()
}

/// A full refresh: the whole fleet again as 1,000 pages of 100, a third of the Snow devices
/// having changed lock state, so under the Status sort they move.
pub(crate) fn refresh_news(round: usize) -> Vec<Event> {
    (0..BIG_FLEET)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| {
            let page = chunk
                .iter()
                .map(|&i| {
                    let mut d = device(i);
                    if d.service == Service::Snow && (i + round).is_multiple_of(3) {
                        d.status = if d.status == "LOCKED" {
                            "UNLOCKED"
                        } else {
                            "LOCKED"
                        }
                        .into();
                    }
                    d
                })
                .collect();
            Event::DevicesPage(Service::Snow, page)
        })
        .collect()
}

pub(crate) type BenchTerm = Terminal<CrosstermBackend<tui::Quiet<std::io::Sink>>>;

/// The event loop as `tui::event_loop` runs it — keys first, then worker news, one
/// `tui::turn` and one frame written through crossterm — while a producer thread (the
/// worker's place) keeps news queued and another presses `keys` at random moments 4–30 ms
/// apart. Each sample is one key's time from the moment it was pressed to the end of the frame
/// that answers it, so a turn under way when it came is counted.
pub(crate) fn drive(
    app: &mut App,
    terminal: &mut BenchTerm,
    keys: impl IntoIterator<Item = KeyCode> + Send + 'static,
    gap: std::ops::Range<u64>,
    news: impl FnMut(usize) -> Vec<Event> + Send + 'static,
) -> anyhow::Result<Vec<Duration>> {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, KeyCode)>();
    let presser = std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for code in keys {
            std::thread::sleep(Duration::from_millis(rng.random_range(gap.clone())));
            if tx.send((Instant::now(), code)).is_err() {
                return;
            }
        }
    });
    // Bounded, so the producer stays ahead of the loop without holding every round at once.
    let (news_tx, news_rx) = std::sync::mpsc::sync_channel::<Event>(4096);
    let producer = std::thread::spawn(move || {
        let mut news = news;
        for round in 0.. {
            let batch = news(round);
            if batch.is_empty() {
                return;
            }
            for e in batch {
                if news_tx.send(e).is_err() {
                    return;
                }
            }
        }
    });
    let mut samples = Vec::new();
    loop {
        let (msg, pressed) = match rx.try_recv() {
            Ok((at, code)) => (key(code), Some(at)),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            Err(std::sync::mpsc::TryRecvError::Empty) => match news_rx.try_recv() {
                Ok(e) => (Msg::Worker(Box::new(e)), None),
                // Nothing queued: wait for the next key, as the loop would.
                Err(_) => match rx.recv_timeout(Duration::from_millis(1)) {
                    Ok((at, code)) => (key(code), Some(at)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                },
            },
        };
        let code = match &msg {
            Msg::Key(k) => Some(k.code),
            _ => None,
        };
        let t0 = Instant::now();
        let _ = tui::turn(app, msg, || news_rx.try_recv().ok());
        let t1 = Instant::now();
        terminal.draw(|f| ui::draw(app, f))?;
        if let Some(at) = pressed {
            samples.push(at.elapsed());
            if std::env::var_os("FLEETDECK_BENCH_TRACE").is_some() {
                eprintln!("{code:?} turn {:?} draw {:?}", t1 - t0, t1.elapsed());
            }
        }
    }
    drop(news_rx);
    presser
        .join()
        .map_err(|_| anyhow::anyhow!("the key thread panicked"))?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the news thread panicked"))?;
    Ok(samples)
}

/// Key to frame with 100,000 devices and 1,000 rows in flight: a key alone, behind a poll's
/// news, during full refreshes, while typing a filter, and on sorts.
/// A 200×60 terminal drawing to nothing. A fixed viewport: the backend never asks the
/// (absent) terminal for its size.
pub(crate) fn bench_terminal() -> anyhow::Result<BenchTerm> {
    Ok(Terminal::with_options(
        CrosstermBackend::new(tui::Quiet::new(std::io::sink())),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 200, 60)),
        },
    )?)
}

pub(crate) fn key_to_frame(report: &mut Report) -> anyhow::Result<()> {
    let (mut app, ops) = app_in_flight()?;
    let mut terminal = bench_terminal()?;
    let moves = [KeyCode::Down, KeyCode::Up, KeyCode::Tab, KeyCode::PageDown];
    let moving = |n: usize| (0..n).map(|i| moves[i % moves.len()]).collect::<Vec<_>>();
    let goal = key_goal;
    let mut alone = drive(&mut app, &mut terminal, moving(300), 4..30, |_| Vec::new())?;
    goal(report, "a key alone", &mut alone);
    let polls = |ops: &Vec<usize>| {
        let ops = ops.clone();
        move |round| poll_news(&ops, round)
    };
    // As the worker sends them: a poll's news for every row every 2 s.
    let paced = |ops: &Vec<usize>| {
        let ops = ops.clone();
        move |round| {
            if round > 0 {
                std::thread::sleep(Settings::default().poll_every);
            }
            poll_news(&ops, round)
        }
    };
    let mut polled = drive(&mut app, &mut terminal, moving(300), 4..30, polls(&ops))?;
    goal(
        report,
        "polls' news for every row queued all along",
        &mut polled,
    );

    // Full refreshes back to back, a poll's news between them.
    let refreshes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, in_flight) = (refreshes.clone(), ops.clone());
    let mut refreshing = drive(&mut app, &mut terminal, moving(600), 4..30, move |round| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut news = refresh_news(round);
        news.extend(poll_news(&in_flight, round));
        news
    })?;
    goal(
        report,
        "full refreshes arriving (1,000 pages each)",
        &mut refreshing,
    );
    anyhow::ensure!(
        app.devices.len() == BIG_FLEET,
        "{} devices after the refreshes",
        app.devices.len()
    );

    let mut typed = drive(&mut app, &mut terminal, typing(), 4..30, paced(&ops))?;
    goal(report, "typing a filter", &mut typed);
    // A sort is looked at before the next: 150–400 ms between keys.
    let mut sorted = drive(&mut app, &mut terminal, sorting(), 150..400, paced(&ops))?;
    goal(report, "sorting by each column and reversing", &mut sorted);
    anyhow::ensure!(
        app.results.in_flight() == OPS_IN_FLIGHT,
        "rows in flight: {}",
        app.results.in_flight()
    );
    key_note(report, refreshes.load(std::sync::atomic::Ordering::Relaxed));
    Ok(())
}

fn key_goal(report: &mut Report, what: &str, samples: &mut [Duration]) {
    let p99 = percentile(samples, 99.0);
    report.add(
        "ui",
        format!(
            "key to frame, {BIG_FLEET} devices, {OPS_IN_FLIGHT} in flight, {what}: p50 / p99 (n = {})",
            samples.len()
        ),
        format!("{} / {}", ms(percentile(samples, 50.0)), ms(p99)),
        format!("{:.2}× the 16 ms goal (p99)", p99.as_secs_f64() / 0.016),
        "p99 ≤ 16 ms",
    );
}

/// `/`, then a filter typed, edited and cleared, over and over.
fn typing() -> Vec<KeyCode> {
    let mut typing = Vec::new();
    for _ in 0..40 {
        typing.push(KeyCode::Char('/'));
        typing.extend("site-01".chars().map(KeyCode::Char));
        typing.extend([KeyCode::Backspace, KeyCode::Backspace]);
        typing.extend("2 lock".chars().map(KeyCode::Char));
        typing.push(KeyCode::Esc);
        typing.push(KeyCode::Esc);
    }
    typing
}

/// `s` through every column, and reversing.
fn sorting() -> Vec<KeyCode> {
    (0..100)
        .map(|i| {
            if i % 10 == 9 {
                KeyCode::Char('S')
            } else {
                KeyCode::Char('s')
            }
        })
        .collect()
}

fn key_note(report: &mut Report, refreshes: usize) {
    report.note(format!(
        "Key to frame (in process): {BIG_FLEET} devices sorted by Status and {OPS_IN_FLIGHT} \
         result rows in flight (marked and rebooted with the operator's keys), 200×60. The \
         bench runs the event loop's own turn (`tui::turn`: keys first; a key's frame goes out \
         at once; otherwise worker news for at most {} ms, then the in-view report) and writes \
         each frame through crossterm into a sink, while a second thread presses keys 4–30 ms \
         apart (150–400 ms for sorts, each looked at before the next); a sample runs from the press to the end of the answering frame, so the turn \
         under way when the key came is included. A producer thread keeps news queued (up to 4,096 events \
         ahead), faster than any worker sends it: a poll's {OPS_IN_FLIGHT} row updates at a time, \
         or {} full refreshes of 1,000 pages of 100 devices (a third of the Snow devices changing lock \
         state, so rows move under the sort). While typing and sorting the news is what the \
         worker sends: a poll's {OPS_IN_FLIGHT} row updates every 2 s. The filter typed is \
         `site-01`, two backspaces, `2 lock`, Esc twice, 40 times; the sort keys are `s` nine \
         times then `S`, 10 times. \
         Reading the key from a terminal is not included (the pseudo-terminal figure is).",
        tui::NEWS_PER_FRAME.as_millis(),
        refreshes
    ));
}
