//! Every way out leaves the terminal as it was: cooked mode, main screen.

mod pty;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pty::{ENTER, Tui};

fn signal(tui: &Tui, sig: Signal) {
    kill(Pid::from_raw(tui.pid() as i32), sig).expect("the signal is delivered");
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("\x03");
    tui.expect_exit("Ctrl-C");
}

#[test]
fn sigterm_restores_the_terminal() {
    let tui = Tui::demo();
    tui.ready();
    signal(&tui, Signal::SIGTERM);
    tui.expect_exit("SIGTERM");
}

#[test]
fn sighup_from_a_dropped_session_restores_the_terminal() {
    let tui = Tui::demo();
    tui.ready();
    signal(&tui, Signal::SIGHUP);
    tui.expect_exit("SIGHUP");
}

#[test]
fn quitting_with_work_in_flight_asks_first() {
    // Real-time speed: the reboot is certainly still running when q is pressed.
    let mut tui = Tui::start(&["--demo", "--demo-speed", "1", "--ctx", "prod"]);
    tui.ready();
    tui.send("b");
    tui.wait_for("Reboot");
    tui.send(ENTER);
    tui.wait_for("Confirm: 1 device");
    tui.send("y");
    tui.wait_for("Results 1");
    tui.send("q");
    tui.wait_for("1 sent and not yet done, 0 not yet sent");
    tui.send("y");
    let journal = tui.journal.clone();
    tui.expect_exit("q, then y");
    // The journal says what was running when the operator left, and closes the plan: it was
    // all sent, so nothing is left to resume.
    let records = fleetdeck::journal::read(&journal).unwrap();
    let running: Vec<&String> = records
        .iter()
        .filter_map(|r| match r {
            fleetdeck::journal::Record::Paused { running, .. } => Some(running),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        running,
        vec!["panorama:device-ptgz4jfebz9sdo78xrlgqnbqrm"],
        "{records:?}"
    );
    assert!(fleetdeck::journal::unfinished(&records).is_empty());
}

#[test]
fn read_only_shows_itself_and_disables_changes() {
    let mut tui = Tui::start(&["--demo", "--read-only", "--ctx", "prod"]);
    tui.ready();
    let screen = tui.wait_for("READ-ONLY");
    assert!(
        !screen.contains(" o OTA"),
        "the OTA key is not offered:\n{screen}"
    );
    tui.send("o");
    tui.wait_for("Read-only mode");
    tui.send("?");
    tui.wait_for("(off: read-only)");
    tui.send("\x1b");
    tui.quit();
}

#[test]
fn a_panic_restores_the_terminal() {
    let journal =
        std::env::temp_dir().join(format!("fleetdeck-panic-{}.jsonl", uuid::Uuid::new_v4()));
    let tui = Tui::start_with(
        &["--demo"],
        &[(fleetdeck::tui::PANIC_FOR_TESTS, "1")],
        journal,
    );
    tui.wait_for("panicked");
    tui.expect_exit_with("a panic", false);
}
