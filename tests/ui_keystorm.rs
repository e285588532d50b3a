//! Random key sequences, interleaved with worker news, at random terminal sizes down to 1×1:
//! neither `update` nor `draw` may panic.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::app::{self, App, Msg};
use fleetdeck::aws::{ApiError, Connection, ErrorKind};
use fleetdeck::fleet::{Device, Operation, Service};
use fleetdeck::ops::{OpState, OpUpdate, Progress};
use fleetdeck::protocol::{Command, Event, Resumable};
use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn fleet(n: usize) -> Vec<Device> {
    (0..n)
        .map(|i| {
            let service = if i % 3 == 0 {
                Service::Snow
            } else {
                Service::Panorama
            };
            let mut d = Device::new(service, format!("dev-{i}"));
            d.status = ["LOCKED", "UNLOCKED", "ONLINE", "UPDATE_NEEDED", "OFFLINE"][i % 5].into();
            d.current_software = Some(format!("{}.0.{}", 4 + i % 2, i).into());
            d.available_software = Some("5.0.21".into());
            d.tags = [("site".to_string(), format!("s{}", i % 4))].into();
            d
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Step {
    Key(KeyEvent),
    Resize(u16, u16),
    Devices(usize),
    Listed(usize),
    Op(usize, u8),
    /// The worker started a plan: rows with Snow task ids.
    Started(usize),
    /// The journal offers an unfinished plan.
    Unfinished,
    Tick(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let chars = prop::sample::select(vec![
        'j', 'k', 'g', 'G', 's', 'S', ' ', 'a', 'A', 'o', 'b', 'u', 'c', 'y', 'n', '/', '?', 'R',
        '1', '0', ';', 'x', '=', 'q', 'r', 'd', '!',
    ]);
    let codes = prop::sample::select(vec![
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Backspace,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::Delete,
    ]);
    prop_oneof![
        8 => chars.prop_map(|c| Step::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))),
        4 => codes.prop_map(|c| Step::Key(KeyEvent::new(c, KeyModifiers::NONE))),
        1 => (1u16..200, 1u16..60).prop_map(|(w, h)| Step::Resize(w, h)),
        1 => (0usize..40).prop_map(Step::Devices),
        1 => (0usize..40).prop_map(Step::Listed),
        2 => (0usize..30, 0u8..4).prop_map(|(id, s)| Step::Op(id, s)),
        1 => (1usize..12).prop_map(Step::Started),
        1 => Just(Step::Unfinished),
        1 => (0u64..10_000).prop_map(Step::Tick),
    ]
}

fn apply(app: &mut App, step: Step, t0: Instant) -> Vec<Command> {
    let msg = match step {
        Step::Started(n) => {
            let ops = fleet(n)
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.key()))
                .collect();
            Msg::Worker(Box::new(Event::PlanStarted {
                plan: "p".into(),
                operation: Operation::Reboot,
                ops,
                resumed: false,
            }))
        }
        Step::Unfinished => Msg::Worker(Box::new(Event::Unfinished(Resumable {
            plan: "old".into(),
            at: 0,
            operation: Operation::Reboot,
            pending: fleet(3).iter().map(Device::key).collect(),
            paused: true,
            total: 5,
            running: 1,
        }))),
        Step::Key(k) => Msg::Key(k),
        Step::Resize(w, h) => Msg::Resize(w, h),
        Step::Devices(n) => Msg::Worker(Box::new(Event::DevicesPage(Service::Panorama, fleet(n)))),
        Step::Listed(n) => {
            let ids: Vec<String> = fleet(n).into_iter().map(|d| d.id.into()).collect();
            Msg::Worker(Box::new(Event::ListingDone(
                String::new(),
                Service::Snow,
                ids,
            )))
        }
        Step::Op(id, s) => {
            let state = [
                OpState::Sent,
                OpState::Running(Progress::InProgress),
                OpState::Succeeded,
                OpState::Failed,
            ][s as usize];
            let error = (state == OpState::Failed)
                .then(|| ApiError::new(ErrorKind::Conflict, "ConflictException", "busy"));
            Msg::Worker(Box::new(Event::Op(
                id,
                OpUpdate {
                    state,
                    resource_id: Some(format!("task-{id}")),
                    error,
                },
            )))
        }
        Step::Tick(ms) => Msg::Tick(t0 + Duration::from_millis(ms)),
    };
    app::update(app, msg)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn key_storms_at_any_size_never_panic(
        steps in prop::collection::vec(step(), 0..150),
        w in 1u16..160,
        h in 1u16..50,
        read_only in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut app = App::new(vec![connection()], true, t0);
        app.read_only = read_only;
        app::update(&mut app, Msg::Worker(Box::new(Event::DevicesPage(Service::Snow, fleet(12)))));
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        for step in steps {
            apply(&mut app, step, t0);
            terminal.draw(|f| fleetdeck::ui::draw(&app, f)).unwrap();
        }
    }

    #[test]
    fn read_only_never_asks_for_a_change(steps in prop::collection::vec(step(), 0..200)) {
        let t0 = Instant::now();
        let mut app = App::new(vec![connection()], true, t0);
        app.read_only = true;
        app::update(&mut app, Msg::Worker(Box::new(Event::DevicesPage(Service::Snow, fleet(12)))));
        for step in steps {
            for command in apply(&mut app, step, t0) {
                prop_assert!(
                    !matches!(
                        command,
                        Command::Dispatch(_)
                            | Command::Resume { .. }
                            | Command::Discard { .. }
                            | Command::CancelTask { .. }
                    ),
                    "read-only asked for {command:?}"
                );
            }
        }
    }
}

fn connection() -> Connection {
    Connection {
        profile: "demo".into(),
        region: "us-east-1".into(),
        panorama_endpoint: "http://127.0.0.1:1".into(),
        snow_endpoint: "http://127.0.0.1:1".into(),
        demo: true,
        context: "prod".into(),
        account: Some("123456789012".into()),
        ..Connection::default()
    }
}
