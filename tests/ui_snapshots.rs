//! Every pane and dialog rendered through ratatui's TestBackend at 80×24 and 120×40, compared
//! with the committed snapshots in tests/snapshots/.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::app::{self, App, Details, Msg, Overlay};
use fleetdeck::aws::{ApiError, Connection, ErrorKind};
use fleetdeck::fleet::Operation;
use fleetdeck::fleet::{Device, Service};
use fleetdeck::ops::rollout::{Figures, Gate, Phase, parse_waves};
use fleetdeck::ops::{OpState, OpUpdate};
use fleetdeck::protocol::{Command, Event, RolloutView};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];
/// Narrow enough that columns compete for room.
const NARROW: [(u16, u16); 1] = [(60, 15)];

fn connection() -> Connection {
    Connection {
        profile: "demo".into(),
        region: "us-east-1".into(),
        panorama_endpoint: "http://127.0.0.1:4580".into(),
        snow_endpoint: "http://127.0.0.1:4580".into(),
        demo: true,
        context: "prod".into(),
        account: Some("123456789012".into()),
        ..Connection::default()
    }
}

/// The prod context in two regions: appliances in us-east-1, Snow devices in us-west-2.
fn connections() -> Vec<Connection> {
    let mut west = connection();
    west.region = "us-west-2".into();
    vec![connection(), west]
}

fn appliance(name: &str, status: &str, current: &str, latest: Option<&str>, site: &str) -> Device {
    let mut d = Device::new(Service::Panorama, format!("device-{name}"));
    d.name = Some(name.into());
    d.scope = "prod/us-east-1".into();
    d.region = "us-east-1".into();
    d.account = Some("123456789012".into());
    d.status = status.into();
    d.current_software = Some(current.into());
    d.available_software = Some("5.0.21".into());
    d.latest = latest.map(Into::into);
    d.tags = [
        ("site".to_string(), site.to_string()),
        ("env".to_string(), "prod".to_string()),
    ]
    .into();
    d
}

fn snow(id: &str, state: &str, seen: &str, site: &str) -> Device {
    let mut d = Device::new(Service::Snow, id);
    d.status = state.into();
    d.scope = "prod/us-west-2".into();
    d.region = "us-west-2".into();
    d.account = Some("123456789012".into());
    d.connection = Some(format!("seen {seen} ago").into());
    d.current_software = Some("7.1.0".into());
    d.tags = [("site".to_string(), site.to_string())].into();
    d
}

fn fleet() -> Vec<Device> {
    vec![
        appliance(
            "sea-dock-cam-01",
            "ONLINE",
            "5.0.21",
            Some("OTA COMPLETED"),
            "seattle",
        ),
        appliance(
            "sea-dock-cam-02",
            "UPDATE_NEEDED",
            "5.0.10",
            None,
            "seattle",
        ),
        appliance(
            "sea-lobby-cam-01",
            "UPDATE_NEEDED",
            "4.3.93",
            Some("REBOOT COMPLETED"),
            "seattle",
        ),
        appliance("pdx-yard-cam-01", "OFFLINE", "4.3.93", None, "portland"),
        appliance(
            "pdx-line1-cam-01",
            "REBOOTING",
            "5.0.10",
            Some("REBOOT REBOOTING"),
            "portland",
        ),
        snow("smd-ybj6e3wtfq4o4ejpe", "LOCKED", "2m", "seattle"),
        snow("smd-tidkz98qb7pkgncuf", "UNLOCKED", "40s", "seattle"),
        snow("smd-d1brbtjfkhaoo9a48", "LOCKED", "3d", "portland"),
    ]
}

struct Fixture {
    app: App,
    t0: Instant,
}

impl Fixture {
    fn new() -> Self {
        let t0 = Instant::now();
        let mut app = App::new(connections(), false, t0);
        app::update(
            &mut app,
            Msg::Worker(Box::new(Event::DevicesPage(Service::Panorama, fleet()))),
        );
        Self { app, t0 }
    }

    fn key(&mut self, code: KeyCode) -> &mut Self {
        let commands = app::update(
            &mut self.app,
            Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        );
        // The engine's answer to a dispatch: one operation per target.
        for command in commands {
            if let Command::Dispatch(plan) = command {
                self.worker(Event::PlanStarted {
                    plan: "plan-1".into(),
                    operation: plan.operation.clone(),
                    ops: plan.targets.iter().cloned().enumerate().collect(),
                    resumed: false,
                });
            }
        }
        self
    }

    fn keys(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
        self
    }

    fn at(&mut self, seconds: u64) -> &mut Self {
        app::update(
            &mut self.app,
            Msg::Tick(self.t0 + Duration::from_secs(seconds)),
        );
        self
    }

    fn worker(&mut self, event: Event) -> &mut Self {
        app::update(&mut self.app, Msg::Worker(Box::new(event)));
        self
    }

    fn op(
        &mut self,
        id: usize,
        state: &str,
        resource: Option<&str>,
        error: Option<ApiError>,
    ) -> &mut Self {
        let state = match state {
            "SENT" => OpState::Sent,
            other => OpState::from_service(other).expect("a service state"),
        };
        self.worker(Event::Op(
            id,
            OpUpdate {
                state,
                resource_id: resource.map(str::to_string),
                error,
            },
        ))
    }

    fn snapshot(&self, name: &str) {
        self.snapshot_at(name, &SIZES);
    }

    fn snapshot_at(&self, name: &str, sizes: &[(u16, u16)]) {
        for &(w, h) in sizes {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal
                .draw(|f| fleetdeck::ui::draw(&self.app, f))
                .unwrap();
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
        }
    }
}

#[test]
fn devices_pane() {
    let mut f = Fixture::new();
    f.key(KeyCode::Down).keys(" ").key(KeyCode::Down).keys(" ");
    f.snapshot("devices");
    f.snapshot_at("devices", &NARROW);
}

#[test]
fn devices_pane_filtered_and_sorted() {
    let mut f = Fixture::new();
    f.keys("/seattle").key(KeyCode::Enter).keys("ss");
    f.snapshot("devices_filtered_sorted");
}

#[test]
fn devices_pane_while_loading() {
    let t0 = Instant::now();
    let mut app = App::new(connections(), false, t0);
    app::update(
        &mut app,
        Msg::Worker(Box::new(Event::ListingStarted(
            "prod/us-east-1".into(),
            Service::Panorama,
        ))),
    );
    let f = Fixture { app, t0 };
    f.snapshot("devices_loading");
}

#[test]
fn results_pane() {
    let mut f = Fixture::new();
    // Reboot a mixed selection: 2 appliances and 2 Snow devices.
    f.keys(" ")
        .key(KeyCode::Down)
        .keys(" ")
        .key(KeyCode::End)
        .keys(" ")
        .key(KeyCode::Up)
        .key(KeyCode::Up)
        .keys(" ");
    f.keys("b").key(KeyCode::Enter).keys("y");
    f.at(3)
        .op(0, "SENT", Some("job-3ye7lamgciu1p9iln26apd0z75"), None)
        .op(0, "REBOOTING", None, None);
    let conflict = ApiError::new(
        ErrorKind::Conflict,
        "ConflictException",
        "Device device-sea-dock-cam-02 already has a job in progress",
    );
    f.op(1, "FAILED", None, Some(conflict));
    f.op(2, "SENT", Some("task-8y54ga1u7ytgpwxpd0ga"), None)
        .op(3, "SENT", Some("task-8y54ga1u7ytgpwxpd0ga"), None)
        .at(14)
        .op(2, "SUCCEEDED", None, None)
        .op(3, "IN_PROGRESS", None, None)
        .at(20);
    // Staged in two waves; the first failure broke the gate, which pauses.
    let why = "the gate was breached: 1 failed of 2 finished, more than the 0 allowed";
    f.worker(Event::Rollout(RolloutView {
        plan: "plan-1".into(),
        operation: Operation::Reboot,
        snow: Default::default(),
        sizes: parse_waves("2,rest").unwrap(),
        gate: Some(Gate::default()),
        waves: vec![vec![0, 1], vec![2, 3]],
        wave: 1,
        phase: Phase::Paused { why: why.into() },
        figures: Figures {
            finished: 2,
            failed: 1,
        },
        decisions: Vec::new(),
        outcome: None,
        left_out: Vec::new(),
        waiting: Vec::new(),
        watch: Default::default(),
        alarms: Vec::new(),
    }));
    f.snapshot("results");
    // Where column priorities decide what is left: the least-needed columns go first.
    f.snapshot_at("results", &NARROW);
}

#[test]
fn help_overlay() {
    let mut f = Fixture::new();
    f.keys("?");
    f.snapshot("help");
}

#[test]
fn ota_form_warns_of_major_bumps_and_skips() {
    let mut f = Fixture::new();
    f.keys("   ").keys("o");
    f.snapshot("ota_form");
}

#[test]
fn snow_form_refuses_a_bad_description() {
    let mut f = Fixture::new();
    f.key(KeyCode::End)
        .key(KeyCode::Up)
        .key(KeyCode::Up)
        .keys("u");
    f.keys("Unlock; now").key(KeyCode::Enter);
    f.snapshot("snow_form_error");
}

#[test]
fn confirm_dialog() {
    let mut f = Fixture::new();
    f.key(KeyCode::End)
        .key(KeyCode::Up)
        .key(KeyCode::Up)
        .keys("u");
    f.keys("Site visit")
        .key(KeyCode::Tab)
        .keys("ticket=OPS-7")
        .key(KeyCode::Enter);
    f.snapshot("confirm");
}

/// A reboot of both services: the Calls line wraps, and the prompt still shows below it.
#[test]
fn confirm_dialog_for_both_services_keeps_its_prompt() {
    let mut f = Fixture::new();
    f.keys("ab").key(KeyCode::Enter);
    f.snapshot("confirm_both");
    for (w, h) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|fr| fleetdeck::ui::draw(&f.app, fr)).unwrap();
        let screen = format!("{}", terminal.backend());
        assert!(screen.contains("y / Enter go"), "{w}x{h}:\n{screen}");
    }
}

#[test]
fn confirm_dialog_for_ten_or_more_asks_for_the_number() {
    let t0 = Instant::now();
    let mut app = App::new(connections(), false, t0);
    let many: Vec<Device> = (0..12)
        .map(|i| {
            appliance(
                &format!("store-cam-{i:02}"),
                "UPDATE_NEEDED",
                "5.0.10",
                None,
                "austin",
            )
        })
        .collect();
    app::update(
        &mut app,
        Msg::Worker(Box::new(Event::DevicesPage(Service::Panorama, many))),
    );
    let mut f = Fixture { app, t0 };
    f.keys("ab").key(KeyCode::Enter).keys("1");
    f.snapshot("confirm_typed");
}

#[test]
fn details_overlay() {
    let mut f = Fixture::new();
    f.key(KeyCode::Down).key(KeyCode::Down).key(KeyCode::Enter);
    let Some(Overlay::Details(Details { key, device, .. })) = &f.app.overlay else {
        panic!("details open")
    };
    let (key, device) = (key.clone(), device.clone().unwrap());
    f.worker(Event::Details {
        key,
        device: Ok(device),
        history: Ok(vec![
            "job-3ye7lamgciu1p9iln26apd0z75  REBOOT COMPLETED".into(),
            "job-tgpwxpd0ga8y54ga1u7ytgpwxp  OTA    FAILED      5.0.21".into(),
        ]),
        apps: Ok(vec![
            fleetdeck::fleet::AppInstance {
                id: "applicationInstance-0a1b2c3d4e5f".into(),
                name: "people-counter".into(),
                health: "RUNNING".into(),
                status: "DEPLOYMENT_SUCCEEDED".into(),
                detail: None,
            },
            fleetdeck::fleet::AppInstance {
                id: "applicationInstance-6a7b8c9d0e1f".into(),
                name: "ppe-check".into(),
                health: "ERROR".into(),
                status: "DEPLOYMENT_SUCCEEDED".into(),
                detail: Some("The application failed to start.".into()),
            },
        ]),
    });
    f.snapshot("details");
}

#[test]
fn sticky_error_and_quit_dialog() {
    let mut f = Fixture::new();
    f.worker(Event::Failure(
        "Listing Snow devices failed: UnrecognizedClientException: The security token included in the request is invalid."
            .into(),
    ));
    f.keys("b").key(KeyCode::Enter).keys("y").keys("q");
    f.snapshot("quit_with_error");
}

#[test]
fn resume_offer() {
    let mut f = Fixture::new();
    // A fixed clock: the plan was confirmed 12 minutes before.
    f.app.now_epoch = 1_800_000_000;
    f.worker(Event::Unfinished(fleetdeck::protocol::Resumable {
        plan: "29ef771b-2353-4c26-a3fe-b84d5e4c6674".into(),
        at: 1_800_000_000 - 720,
        operation: fleetdeck::fleet::Operation::Reboot,
        paused: false,
        total: 14,
        running: 3,
        pending: vec![
            fleetdeck::fleet::DeviceKey::new(Service::Panorama, "device-sea-dock-cam-02"),
            fleetdeck::fleet::DeviceKey::new(Service::Snow, "smd-ybj6e3wtfq4o4ejpe"),
        ],
    }));
    f.snapshot("resume");
}

/// Three contexts in five scopes: at 80 columns the header says less of each rather than run
/// off the edge, and at 120 it has room for the accounts.
#[test]
fn header_with_three_contexts_fits() {
    let t0 = Instant::now();
    let scope = |context: &str, label: &str, region: &str, account: &str| Connection {
        context: context.into(),
        label: Some(label.into()),
        region: region.into(),
        account: Some(account.into()),
        ..connection()
    };
    let connections = vec![
        scope("prod", "prod", "us-east-1", "123456789012"),
        scope("prod", "prod", "us-west-2", "123456789012"),
        scope("lab", "lab", "us-west-2", "210987654321"),
        scope("lab", "lab", "eu-west-1", "210987654321"),
        scope("edge", "edge sites", "ap-southeast-2", "345678901234"),
    ];
    let app = App::new(connections, false, t0);
    let f = Fixture { app, t0 };
    f.snapshot("header_three_contexts");
    for (w, h) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|fr| fleetdeck::ui::draw(&f.app, fr)).unwrap();
        let screen = format!("{}", terminal.backend());
        let header = screen.lines().next().unwrap_or_default();
        for label in ["prod", "lab", "edge sites"] {
            assert!(header.contains(label), "{w}x{h}: {header}");
        }
    }
}

/// A plan sent all at once: the plan's own line has its gauge, and the rollout's banner does
/// not say it again.
#[test]
fn a_single_wave_rollout_has_one_gauge() {
    let mut f = Fixture::new();
    f.keys(" ").key(KeyCode::Down).keys(" ");
    f.keys("b").key(KeyCode::Enter).keys("y");
    f.at(3)
        .op(0, "SENT", Some("job-3ye7lamgciu1p9iln26apd0z75"), None)
        .op(1, "SENT", Some("job-tgpwxpd0ga8y54ga1u7ytgpwxp"), None)
        .at(9)
        .op(0, "COMPLETED", None, None);
    f.worker(Event::Rollout(RolloutView {
        plan: "plan-1".into(),
        operation: Operation::Reboot,
        snow: Default::default(),
        sizes: parse_waves("rest").unwrap(),
        gate: None,
        waves: vec![vec![0, 1]],
        wave: 0,
        phase: Phase::Sending,
        figures: Figures::default(),
        decisions: Vec::new(),
        outcome: None,
        left_out: Vec::new(),
        waiting: Vec::new(),
        watch: Default::default(),
        alarms: Vec::new(),
    }));
    f.snapshot("results_one_wave");
    for (w, h) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|fr| fleetdeck::ui::draw(&f.app, fr)).unwrap();
        let screen = format!("{}", terminal.backend());
        assert_eq!(
            screen.matches("1/2").count() + screen.matches("1 of 2").count(),
            1,
            "{w}x{h}:\n{screen}"
        );
    }
}

/// Team mode: the header names the table and identity, another plan's devices say who holds
/// them, and `T` lists every member's plans; a word asks first and names this identity.
#[test]
fn team_pane_lists_every_members_plans_and_asks_before_a_word() {
    use fleetdeck::ops::rollout::{Cause, Control};
    use fleetdeck::protocol::TeamJoin;
    use fleetdeck::team::PlanRow;
    let mut f = Fixture::new();
    let alice = "arn:aws:iam::123456789012:user/alice";
    let bob = "arn:aws:iam::123456789012:user/bob";
    f.worker(Event::TeamJoined(Ok(TeamJoin {
        table: "fleet-team".into(),
        arn: alice.into(),
        host: "jump-1".into(),
        who: format!("{alice} on jump-1 (process 7)"),
    })));
    let first = fleet()[0].key();
    f.worker(Event::Leases(vec![(
        first.clone(),
        format!(
            "held by {bob} on jump-2 (plan 3f2a9c1e-…, OTA 5.0.21, since 2026-12-06 10:04:05 UTC)"
        ),
    )]));
    let opened = app::update(
        &mut f.app,
        Msg::Key(KeyEvent::new(KeyCode::Char('T'), KeyModifiers::NONE)),
    );
    assert!(
        opened.iter().any(|c| matches!(c, Command::ReadTeam)),
        "{opened:?}"
    );
    let now = f.app.now_epoch;
    let row = |plan: &str, by: &str| PlanRow {
        plan: plan.into(),
        owner_arn: by.into(),
        owner_host: if by == alice { "jump-1" } else { "jump-2" }.into(),
        owner_pid: 4242,
        epoch: 1,
        created_by: by.into(),
        renewed_at: now - 3,
        operation: "reboot".into(),
        devices: 4,
        phase: "sending".into(),
        waves: 1,
        ..PlanRow::default()
    };
    let plans = vec![
        PlanRow {
            created_at: 30,
            operation: "OTA 5.0.21".into(),
            devices: 12,
            finals: 5,
            failed: 1,
            wave: 1,
            waves: 3,
            phase: "baking".into(),
            needs_approval: true,
            approvals: vec![alice.into()],
            ..row("3f2a9c1e-0b7d-4c55-9e2f-5a1d2c3b4a59", bob)
        },
        PlanRow {
            created_at: 20,
            needs_approval: true,
            ..row("77c0de12-5f3e-4a9b-8d1c-2e4f6a8b0c1d", alice)
        },
        PlanRow {
            created_at: 10,
            finals: 4,
            outcome: Some("SUCCEEDED".into()),
            ..row("0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d", bob)
        },
    ];
    f.worker(Event::TeamPlans(plans.clone()));
    f.snapshot("team_pane");

    let key = |f: &mut Fixture, c: char| {
        app::update(
            &mut f.app,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        )
    };
    // Its creator cannot approve the second plan; the ended one takes no word.
    key(&mut f, 'j');
    assert!(key(&mut f, 'a').is_empty());
    let told = f
        .app
        .errors
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(told.contains("made by you"), "{told}");
    key(&mut f, 'j');
    assert!(key(&mut f, 'X').is_empty());
    let told = f
        .app
        .errors
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(told.contains("has ended (SUCCEEDED)"), "{told}");
    // An abort of bob's plan asks, then goes as this identity's word.
    key(&mut f, 'k');
    key(&mut f, 'k');
    assert!(key(&mut f, 'X').is_empty(), "asks first");
    f.snapshot_at("team_pane_asking", &[(80, 24)]);
    // A plan begun meanwhile sorts first: the word still goes to the plan it was asked for.
    let mut reread = plans;
    reread.push(PlanRow {
        created_at: 40,
        ..row("9f9f9f9f-0000-4000-8000-000000000000", bob)
    });
    f.worker(Event::TeamPlans(reread));
    let sent = key(&mut f, 'y');
    let [
        Command::TeamWord {
            plan,
            control: Control::Abort,
            by: Cause::Operator { user, host, .. },
        },
    ] = sent.as_slice()
    else {
        panic!("one abort: {sent:?}")
    };
    assert_eq!(plan, "3f2a9c1e-0b7d-4c55-9e2f-5a1d2c3b4a59");
    assert_eq!((user.as_str(), host.as_str()), (alice, "jump-1"));
}
