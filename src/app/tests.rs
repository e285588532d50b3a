use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::fleet::Operation;
use compact_str::CompactString;

use crate::ops::{OpId, OpState, OpUpdate};
use crate::protocol::RolloutView;

/// The worker's answer to a dispatch: the plan journaled, one operation per target.
fn start(app: &mut App, commands: &[Command]) {
    let [Command::Dispatch(plan)] = commands else {
        panic!("one dispatch: {commands:?}")
    };
    let ops = plan.targets.iter().cloned().enumerate().collect();
    let event = Event::PlanStarted {
        plan: "plan-1".into(),
        operation: plan.operation.clone(),
        ops,
        resumed: false,
    };
    update(app, Msg::Worker(Box::new(event)));
}

fn op(app: &mut App, id: OpId, update_: OpUpdate) {
    update(app, Msg::Worker(Box::new(Event::Op(id, update_))));
}

fn connection() -> Connection {
    Connection {
        profile: "demo".into(),
        region: "us-east-1".into(),
        panorama_endpoint: "http://127.0.0.1:1".into(),
        snow_endpoint: "http://127.0.0.1:1".into(),
        demo: true,
        context: "prod".into(),
        ..Connection::default()
    }
}

fn app_with_fleet() -> App {
    let mut app = App::new(vec![connection()], false, Instant::now());
    let mut devices = Vec::new();
    for (id, current, available, status) in [
        ("p1", "5.0.10", "5.0.21", "UPDATE_NEEDED"),
        ("p2", "4.3.93", "5.0.21", "UPDATE_NEEDED"),
        ("p3", "5.0.21", "5.0.21", "ONLINE"),
    ] {
        let mut d = Device::new(Service::Panorama, id);
        d.name = Some(format!("cam-{id}").into());
        d.current_software = Some(current.into());
        d.available_software = Some(available.into());
        d.status = status.into();
        devices.push(d);
    }
    for (id, state) in [("s1", "LOCKED"), ("s2", "UNLOCKED")] {
        let mut d = Device::new(Service::Snow, id);
        d.status = state.into();
        devices.push(d);
    }
    update(
        &mut app,
        Msg::Worker(Box::new(Event::DevicesPage(Service::Panorama, devices))),
    );
    app
}

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typing(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn marking_three_and_pressing_o_runs_an_ota_after_confirmation() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.devices.marks.len(), 3);
    press(&mut app, KeyCode::Char('o'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the OTA form opens")
    };
    assert_eq!(form.image_version.value(), "5.0.21");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char(' ')); // allow the major bump of p2
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("the confirmation opens")
    };
    // p3 is already on 5.0.21: named and skipped.
    assert_eq!(confirm.plan.panorama().count(), 2);
    assert_eq!(confirm.plan.skipped.len(), 1);
    let commands = press(&mut app, KeyCode::Char('y'));
    let [Command::Dispatch(plan)] = commands.as_slice() else {
        panic!("one dispatch: {commands:?}")
    };
    assert_eq!(plan.device_count(), 2);
    assert_eq!(
        plan.operation,
        Operation::Ota {
            image_version: "5.0.21".into(),
            allow_major: true
        }
    );
    start(&mut app, &commands);
    assert_eq!(app.results.rows.len(), 2);
    assert!(app.results.rows.iter().all(|r| r.state == OpState::Queued));
    assert!(app.devices.marks.is_empty());
    assert_eq!(app.focus, Pane::Results);
}

#[test]
fn worker_updates_move_result_rows_to_their_end() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Enter);
    start(&mut app, &commands);
    assert_eq!(app.results.in_flight(), 1);
    op(&mut app, 0, OpUpdate::new(OpState::Sent).with_id("job-1"));
    assert_eq!(app.results.rows[0].resource_id.as_deref(), Some("job-1"));
    op(&mut app, 0, OpUpdate::new(OpState::Succeeded));
    assert_eq!(app.results.in_flight(), 0);
    assert_eq!(app.results.rows[0].resource_id.as_deref(), Some("job-1"));
    // A late, stale update cannot move a finished row back.
    op(
        &mut app,
        0,
        OpUpdate::new(OpState::Running(crate::ops::Progress::Rebooting)),
    );
    assert_eq!(app.results.rows[0].state, OpState::Succeeded);
}

#[test]
fn an_unconfirmed_row_is_still_work_left() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Enter);
    start(&mut app, &commands);
    op(&mut app, 0, OpUpdate::new(OpState::Unconfirmed));
    assert_eq!(app.results.in_flight(), 1);
    assert!(work_left(&app));
    press(&mut app, KeyCode::Char('q'));
    assert!(matches!(app.overlay, Some(Overlay::Quit)), "q asks first");
}

#[test]
fn a_refused_plan_is_an_error_naming_the_plan_to_resume() {
    let mut app = app_with_fleet();
    let refusal = crate::protocol::Refusal {
        error: crate::aws::ApiError::new(
            crate::aws::ErrorKind::Conflict,
            "OverlapsUnfinishedPlan",
            "p1 is in the unfinished plan old-1",
        ),
        overlaps: Some("old-1".into()),
    };
    update(
        &mut app,
        Msg::Worker(Box::new(Event::PlanRefused(refusal.clone()))),
    );
    update(&mut app, Msg::Worker(Box::new(Event::PlanRefused(refusal))));
    assert_eq!(app.errors.len(), 1, "the same error is folded");
    assert_eq!(app.errors[0].count, 2);
    assert!(app.errors[0].message.contains("--resume old-1"));
    assert!(app.results.rows.is_empty(), "no row for a refused plan");
    press(&mut app, KeyCode::Char('!'));
    assert!(matches!(app.overlay, Some(Overlay::ErrorLog { .. })));
}

#[test]
fn quitting_with_work_in_flight_asks_first_and_ctrl_c_does_not() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Enter);
    start(&mut app, &commands);
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.quit);
    assert!(matches!(app.overlay, Some(Overlay::Quit)));
    press(&mut app, KeyCode::Char('n'));
    assert!(!app.quit && app.overlay.is_none());
    let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    // The first Ctrl-C asks too; the second forces.
    update(&mut app, ctrl_c());
    assert!(!app.quit);
    assert!(matches!(app.overlay, Some(Overlay::Quit)));
    update(&mut app, ctrl_c());
    assert!(app.quit);
}

#[test]
fn ctrl_c_with_nothing_left_quits_at_once() {
    let mut app = app_with_fleet();
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
}

#[test]
fn filter_narrows_and_escape_clears() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('/'));
    typing(&mut app, "lock:locked");
    assert_eq!(app.devices.shown(), 1, "LOCKED, not UNLOCKED");
    press(&mut app, KeyCode::Enter);
    assert!(app.filter_input.is_none());
    assert_eq!(app.devices.filter, "lock:locked");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.devices.shown(), 5);
}

#[test]
fn unlock_on_panorama_only_opens_no_form() {
    let mut app = app_with_fleet();
    assert!(press(&mut app, KeyCode::Char('u')).is_empty());
    assert!(app.overlay.is_none(), "no empty form");
    assert!(
        app.notice()
            .unwrap()
            .contains("the selection is 1 Panorama appliance")
    );
}

#[test]
fn enter_opens_details_and_asks_the_worker() {
    let mut app = app_with_fleet();
    let commands = press(&mut app, KeyCode::Enter);
    assert!(matches!(commands.as_slice(), [Command::Describe(k)] if k.id == "p1"));
    assert!(matches!(app.overlay, Some(Overlay::Details(_))));
    press(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
}

#[test]
fn cancel_applies_to_snow_rows_with_a_task() {
    let mut app = app_with_fleet();
    app.devices.move_by(3); // s1
    press(&mut app, KeyCode::Char('u'));
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Enter);
    start(&mut app, &commands);
    assert!(
        press(&mut app, KeyCode::Char('c')).is_empty(),
        "no task id yet"
    );
    op(&mut app, 0, OpUpdate::new(OpState::Sent).with_id("task-1"));
    // A confirmation first, naming the task and its devices; nothing sent yet.
    assert!(press(&mut app, KeyCode::Char('c')).is_empty());
    let Some(Overlay::Cancel { task, devices }) = &app.overlay else {
        panic!("the cancel confirmation opens")
    };
    assert_eq!(task, "task-1");
    assert_eq!(devices.len(), 1);
    let commands = press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(commands.as_slice(), [Command::CancelTask { task_id }] if task_id == "task-1")
    );
}

#[test]
fn read_only_opens_no_form_and_sends_nothing() {
    let mut app = app_with_fleet();
    app.read_only = true;
    for key in ['o', 'b', 'u'] {
        assert!(press(&mut app, KeyCode::Char(key)).is_empty());
        assert!(app.overlay.is_none(), "{key} opened a form");
    }
    assert!(app.notice().unwrap().contains("Read-only"));
    // Looking still works.
    assert!(matches!(
        press(&mut app, KeyCode::Enter).as_slice(),
        [Command::Describe(_)]
    ));
}

#[test]
fn only_the_rows_around_the_cursor_are_reported_in_view() {
    let mut app = App::new(vec![connection()], false, Instant::now());
    update(&mut app, Msg::Resize(80, 10));
    let devices = (0..100)
        .map(|i| Device::new(Service::Snow, format!("smd-{i:03}")))
        .collect();
    update(
        &mut app,
        Msg::Worker(Box::new(Event::DevicesPage(Service::Snow, devices))),
    );
    let ids = |c: Option<Command>| match c {
        Some(Command::Look(keys)) => keys.into_iter().map(|k| k.id).collect::<Vec<_>>(),
        other => panic!("expected Look, got {other:?}"),
    };
    let first = ids(look(&mut app));
    assert_eq!(first.len(), 10);
    assert_eq!(first[0], "smd-000");
    // Nothing changed: nothing is sent again.
    assert!(look(&mut app).is_none());

    for _ in 0..50 {
        press(&mut app, KeyCode::Down);
    }
    let around = ids(look(&mut app));
    assert_eq!(around.first().map(CompactString::as_str), Some("smd-040"));
    assert_eq!(around.last().map(CompactString::as_str), Some("smd-059"));
}

fn view(app: &App, phase: crate::ops::rollout::Phase) -> RolloutView {
    let plan = &app.results.rows[0].plan;
    RolloutView {
        plan: plan.clone(),
        operation: Operation::Reboot,
        snow: Default::default(),
        sizes: crate::ops::rollout::parse_waves("1,rest").unwrap(),
        gate: Some(Default::default()),
        waves: vec![vec![0], (1..app.results.rows.len()).collect()],
        wave: 0,
        outcome: phase
            .is_end()
            .then_some(crate::ops::rollout::Outcome::Aborted),
        phase,
        figures: Default::default(),
        decisions: Vec::new(),
        left_out: Vec::new(),
        waiting: Vec::new(),
        watch: Default::default(),
        alarms: Vec::new(),
    }
}

#[test]
fn the_form_stages_a_rollout_and_the_confirmation_shows_each_wave() {
    let mut app = app_with_fleet();
    for _ in 0..3 {
        press(&mut app, KeyCode::Char(' '));
    }
    let commands = press(&mut app, KeyCode::Char('b'));
    // The targets are described for preflight.
    assert!(
        matches!(commands.as_slice(), [Command::Look(keys)] if keys.len() >= 3),
        "{commands:?}"
    );
    // Waves: Space cycles the presets, from all at once to a canary then the rest.
    press(&mut app, KeyCode::Char(' '));
    for _ in 0..4 {
        press(&mut app, KeyCode::Tab);
    }
    press(&mut app, KeyCode::Char(' ')); // approve each wave
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    typing(&mut app, "p3"); // canary
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!(
            "the confirmation opens: {:?}",
            app.overlay.as_ref().map(|_| ())
        )
    };
    assert_eq!(confirm.waves.len(), 2);
    assert_eq!(confirm.waves[0][0].labels, vec!["cam-p3".to_string()]);
    assert_eq!(confirm.waves[1][0].labels.len(), 2);
    // Scrolling moves the list and types nothing.
    press(&mut app, KeyCode::Down);
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("still confirming")
    };
    assert_eq!(confirm.scroll, 1);
    let commands = press(&mut app, KeyCode::Char('y'));
    let [Command::Dispatch(plan)] = commands.as_slice() else {
        panic!("one dispatch: {commands:?}")
    };
    assert_eq!(plan.targets[0].id, "p3", "the canary goes first");
    assert_eq!(plan.waves().len(), 2);
    let gate = plan.rollout.gate.expect("a gate between two waves");
    assert!(gate.approve);
}

#[test]
fn rollout_keys_pause_promote_abort_and_retry_the_rest() {
    use crate::ops::rollout::Phase;
    let mut app = app_with_fleet();
    for _ in 0..3 {
        press(&mut app, KeyCode::Char(' '));
    }
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Char('y'));
    start(&mut app, &commands);
    let plan = app.results.rows[0].plan.clone();
    let sending = view(&app, Phase::Sending);
    update(&mut app, Msg::Worker(Box::new(Event::Rollout(sending))));
    assert_eq!(app.focus, Pane::Results);
    assert!(matches!(
        press(&mut app, KeyCode::Char('p')).as_slice(),
        [Command::Pause { plan: p, by }] if *p == plan && *by == app.operator
    ));
    assert!(matches!(
        press(&mut app, KeyCode::Char('P')).as_slice(),
        [Command::Promote { plan: p, by }] if *p == plan && *by == app.operator
    ));
    // Abort asks first, naming what was never sent.
    assert!(press(&mut app, KeyCode::Char('X')).is_empty());
    assert!(matches!(
        app.overlay,
        Some(Overlay::Abort { unsent: 3, .. })
    ));
    assert!(matches!(
        press(&mut app, KeyCode::Char('y')).as_slice(),
        [Command::Abort { plan: p, by }] if *p == plan && *by == app.operator
    ));
    // Retry the rest only once it has ended: then a plan of what did not succeed.
    press(&mut app, KeyCode::Char('r'));
    assert!(app.overlay.is_none());
    op(&mut app, 0, OpUpdate::new(OpState::Sent).with_id("job-1"));
    op(&mut app, 0, OpUpdate::new(OpState::Succeeded));
    for id in 1..3 {
        op(&mut app, id, OpUpdate::new(OpState::Skipped));
    }
    let ended = view(&app, Phase::Aborted { why: "test".into() });
    update(&mut app, Msg::Worker(Box::new(Event::Rollout(ended))));
    assert!(
        press(&mut app, KeyCode::Char('p')).is_empty(),
        "it has ended"
    );
    press(&mut app, KeyCode::Char('r'));
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("retry opens a confirmation")
    };
    let first = app.results.rows[0].key.clone();
    assert_eq!(confirm.plan.device_count(), 2);
    assert!(
        !confirm.plan.targets.contains(&first),
        "the success is not sent again"
    );
}

fn with_contexts(app: &mut App) {
    app.catalog = crate::contexts::Catalog {
        file: crate::contexts::parse(
            "[contexts.prod]\nregions=[\"us-east-1\"]\n[contexts.lab]\nprofile=\"lab\"\nregions=[\"us-west-2\"]\n",
        )
        .unwrap(),
        flags: crate::contexts::Flags {
            ctx: vec!["prod".into()],
            ..Default::default()
        },
        ..Default::default()
    };
}

fn command_line(app: &mut App, line: &str) -> Vec<Command> {
    press(app, KeyCode::Char(':'));
    typing(app, line);
    press(app, KeyCode::Enter)
}

#[test]
fn the_command_line_switches_contexts_unless_a_plan_is_under_way() {
    let mut app = app_with_fleet();
    with_contexts(&mut app);
    let commands = command_line(&mut app, "ctx lab");
    let [Command::Use(targets)] = commands.as_slice() else {
        panic!("a switch: {commands:?}")
    };
    assert_eq!(targets.len(), 1);
    assert_eq!(
        (
            targets[0].context.as_str(),
            targets[0].profile.as_deref(),
            targets[0].region.as_deref()
        ),
        ("lab", Some("lab"), Some("us-west-2"))
    );
    assert_eq!(app.catalog.flags.ctx, ["lab"]);
    // With a plan under way the switch is refused and says why.
    let mut app = app_with_fleet();
    with_contexts(&mut app);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Enter);
    let go = press(&mut app, KeyCode::Char('y'));
    start(&mut app, &go);
    assert!(command_line(&mut app, "region us-west-2").is_empty());
    assert!(
        app.errors
            .iter()
            .any(|e| e.message.contains("Contexts were not switched")),
        "{:?}",
        app.errors
    );
    assert_eq!(app.catalog.flags.regions, Vec::<String>::new());
}

#[test]
fn a_new_set_of_scopes_drops_the_devices_of_the_old_ones() {
    let mut app = App::new(vec![connection()], false, Instant::now());
    let mut east = Device::new(Service::Panorama, "east");
    east.scope = "prod/us-east-1".into();
    let mut west = Device::new(Service::Panorama, "west");
    west.scope = "prod/us-west-2".into();
    let mut both = connection();
    both.region = "us-west-2".into();
    let event = Event::Connected(vec![connection(), both.clone()]);
    update(&mut app, Msg::Worker(Box::new(event)));
    let page = Event::DevicesPage(Service::Panorama, vec![east, west]);
    update(&mut app, Msg::Worker(Box::new(page)));
    assert_eq!(app.devices.len(), 2);
    // Only us-west-2 now; a late page from us-east-1 is not let back in.
    update(
        &mut app,
        Msg::Worker(Box::new(Event::Connected(vec![both]))),
    );
    assert_eq!(app.devices.len(), 1);
    assert_eq!(app.devices.row(0).map(|d| d.id.as_str()), Some("west"));
    let mut late = Device::new(Service::Panorama, "east");
    late.scope = "prod/us-east-1".into();
    let page = Event::DevicesPage(Service::Panorama, vec![late]);
    update(&mut app, Msg::Worker(Box::new(page)));
    assert_eq!(app.devices.len(), 1);
}

#[test]
fn after_a_failed_listing_r_loads_configuration_again() {
    let mut app = app_with_fleet();
    with_contexts(&mut app);
    assert!(matches!(
        press(&mut app, KeyCode::Char('R')).as_slice(),
        [Command::Refresh]
    ));
    let failed = Event::ListingFailed(
        "prod/us-east-1".into(),
        Service::Snow,
        crate::aws::ApiError::new(
            crate::aws::ErrorKind::Auth,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
    );
    update(&mut app, Msg::Worker(Box::new(failed)));
    let line = &app.errors.last().expect("an error line").message;
    assert!(line.starts_with("prod/us-east-1: "), "{line}");
    assert!(line.contains("R retries"), "{line}");
    let commands = press(&mut app, KeyCode::Char('R'));
    assert!(
        matches!(commands.as_slice(), [Command::Use(t)] if t.len() == 1 && t[0].context == "prod"),
        "{commands:?}"
    );
}

#[test]
fn an_answer_to_the_operator_shows_above_older_errors() {
    let start = Instant::now();
    let mut app = App::new(vec![connection()], false, start);
    app.fail("DescribeDevice failed: ThrottlingException");
    assert_eq!(app.fresh_notice(), None);
    app.now = start + Duration::from_millis(10);
    app.tell("the demo has no AWS profiles");
    assert_eq!(app.fresh_notice(), Some("the demo has no AWS profiles"));
    // An error after the notice takes the line back.
    app.now = start + Duration::from_millis(20);
    app.fail("ListDevices failed");
    assert_eq!(app.fresh_notice(), None);
}

fn ctrl(app: &mut App, c: char) {
    update(
        app,
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
    );
}

#[test]
fn an_action_that_applies_to_none_of_the_selection_says_why() {
    let mut app = app_with_fleet();
    // The cursor is on an appliance: unlock is Snow's.
    let commands = press(&mut app, KeyCode::Char('u'));
    assert!(commands.is_empty() && app.overlay.is_none());
    assert!(
        app.notice()
            .unwrap()
            .contains("Unlock applies to Snow devices only"),
        "{:?}",
        app.notice()
    );
    // OTA on Snow devices only, likewise.
    press(&mut app, KeyCode::Char('/'));
    typing(&mut app, "svc:snow");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('o'));
    assert!(app.overlay.is_none());
    assert!(app.notice().unwrap().contains("Panorama appliances only"));
}

#[test]
fn marks_hidden_by_the_filter_are_asked_about() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('a')); // all five marked
    press(&mut app, KeyCode::Char('/'));
    typing(&mut app, "svc:pan");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.devices.hidden_marks(), 2);
    press(&mut app, KeyCode::Char('b'));
    assert!(matches!(
        app.overlay,
        Some(Overlay::HiddenMarks { hidden: 2, .. })
    ));
    // n: only the three shown.
    press(&mut app, KeyCode::Char('n'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form opens: {:?}", app.overlay.is_some())
    };
    assert_eq!(form.targets.len(), 3);
    press(&mut app, KeyCode::Esc);
    // y: all five.
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Char('y'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form opens")
    };
    assert_eq!(form.targets.len(), 5);
}

#[test]
fn focus_never_goes_to_an_empty_results_pane() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Pane::Devices);
    assert!(app.notice().unwrap().contains("No results yet"));
}

#[test]
fn control_keys_edit_text_fields() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('/'));
    typing(&mut app, "site austin");
    ctrl(&mut app, 'w');
    assert_eq!(app.devices.filter, "site ");
    ctrl(&mut app, 'u');
    assert_eq!(app.devices.filter, "");
    press(&mut app, KeyCode::Esc);
    // In a form: the Snow description field of a reboot.
    press(&mut app, KeyCode::Char('G'));
    press(&mut app, KeyCode::Char('b'));
    let Some(Overlay::Form(_)) = &app.overlay else {
        panic!("the form opens")
    };
    typing(&mut app, "first second");
    ctrl(&mut app, 'a');
    typing(&mut app, "X");
    ctrl(&mut app, 'e');
    typing(&mut app, "Y");
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form stays")
    };
    assert_eq!(form.description.value(), "Xfirst secondY");
    ctrl(&mut app, 'w');
    ctrl(&mut app, 'u');
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form stays")
    };
    assert_eq!(form.description.value(), "", "Ctrl-W then Ctrl-U clear it");
}

#[test]
fn the_drift_key_marks_every_appliance_behind_and_opens_the_ota_form() {
    let mut app = app_with_fleet();
    press(&mut app, KeyCode::Char('D'));
    assert!(matches!(app.overlay, Some(Overlay::Drift)));
    press(&mut app, KeyCode::Char('m'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the OTA form opens")
    };
    let mut names: Vec<&str> = form.targets.iter().map(|d| d.label()).collect();
    names.sort();
    assert_eq!(names, ["cam-p1", "cam-p2"], "behind 5.0.21");
    assert_eq!(app.devices.marks.len(), 2);
}

#[test]
fn results_group_per_plan_follow_new_rows_and_clear_when_finished() {
    let mut app = app_with_fleet();
    let keys: Vec<DeviceKey> = (0..2)
        .filter_map(|i| app.devices.row(i))
        .map(Device::key)
        .collect();
    let started = |plan: &str, ids: &[OpId]| Event::PlanStarted {
        plan: plan.into(),
        operation: Operation::Reboot,
        ops: ids.iter().copied().zip(keys.iter().cloned()).collect(),
        resumed: false,
    };
    update(&mut app, Msg::Worker(Box::new(started("a", &[1, 2]))));
    update(&mut app, Msg::Worker(Box::new(started("b", &[3, 4]))));
    assert_eq!(app.results.cursor, 2, "the view follows the new plan");
    // A resume of plan a adds to its group, not after b.
    update(&mut app, Msg::Worker(Box::new(started("a", &[5]))));
    let plans: Vec<&str> = app.results.rows.iter().map(|r| r.plan.as_str()).collect();
    assert_eq!(plans, ["a", "a", "a", "b", "b"]);
    for id in [1, 2, 5] {
        op(&mut app, id, OpUpdate::new(OpState::Sent).with_id("job"));
        op(&mut app, id, OpUpdate::new(OpState::Succeeded));
    }
    assert_eq!(app.focus, Pane::Results, "a plan's start shows its rows");
    press(&mut app, KeyCode::Char('C'));
    let plans: Vec<&str> = app.results.rows.iter().map(|r| r.plan.as_str()).collect();
    assert_eq!(
        plans,
        ["b", "b"],
        "the finished plan is cleared, the running one kept"
    );
}

/// `/` in the results pane filters the devices: the keys typed next go to the filter, not
/// to the results' own keys (`c` cancels, `p` pauses there).
#[test]
fn slash_in_the_results_pane_filters_the_devices() {
    let mut app = app_with_fleet();
    app.focus = Pane::Results;
    press(&mut app, KeyCode::Char('/'));
    assert_eq!(app.focus, Pane::Devices);
    typing(&mut app, "svc:snow");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.devices.filter, "svc:snow");
    assert!(
        app.overlay.is_none(),
        "no cancel asked: {:?}",
        app.overlay.is_some()
    );
}

#[test]
fn enter_on_a_result_reads_its_job() {
    let mut app = app_with_fleet();
    let key = app.devices.row(0).unwrap().key();
    update(
        &mut app,
        Msg::Worker(Box::new(Event::PlanStarted {
            plan: "a".into(),
            operation: Operation::Reboot,
            ops: vec![(1, key.clone())],
            resumed: false,
        })),
    );
    // No job yet: said, nothing read.
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    op(&mut app, 1, OpUpdate::new(OpState::Sent).with_id("job-1"));
    let commands = press(&mut app, KeyCode::Enter);
    assert!(matches!(
        &commands[..],
        [Command::Inspect { resource, .. }] if resource == "job-1"
    ));
    update(
        &mut app,
        Msg::Worker(Box::new(Event::Inspected {
            key,
            resource: "job-1".into(),
            fields: Ok(vec![("Status".into(), "SUCCEEDED".into())]),
        })),
    );
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Inspect { fields: Some(Ok(f)), .. }) if f[0].1 == "SUCCEEDED"
    ));
}

#[test]
fn the_quota_shared_with_other_plans_is_kept_per_scope_and_told() {
    let mut app = app_with_fleet();
    let shared = |scope: &str, others: usize| {
        Msg::Worker(Box::new(Event::QuotaShared {
            scope: scope.into(),
            others,
            text: format!("{scope}: {others}"),
        }))
    };
    update(&mut app, shared("123456789012#us-east-1", 1));
    update(&mut app, shared("123456789012#us-west-2", 2));
    assert_eq!(app.quota_shared.values().max(), Some(&2));
    assert_eq!(
        app.notice.as_ref().map(|(t, _)| t.as_str()),
        Some("123456789012#us-west-2: 2")
    );
    update(&mut app, shared("123456789012#us-west-2", 0));
    update(&mut app, shared("123456789012#us-east-1", 0));
    assert!(app.quota_shared.is_empty(), "alone again everywhere");
}
