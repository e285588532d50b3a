//! End to end: the real `fleetdeck --demo` binary in a pseudo-terminal, keys typed as a user
//! types them, the screen read back through a terminal emulator. Each test waits for screen
//! text with a deadline rather than sleeping, and starts its own demo.

mod pty;

use pty::{ENTER, ESC, TAB, Tui};

#[test]
fn ota_three_appliances_to_completion_and_see_the_new_version() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("status:UPDATE_NEEDED");
    tui.send(ENTER);
    tui.wait_for("filter \"status:UPDATE_NEEDED\"");
    // The first three with an update: sea-dock-cam-02, sea-lobby-cam-01 (a major bump),
    // pdx-line1-cam-01.
    tui.send(" ");
    tui.send(" ");
    tui.send(" ");
    tui.wait_for("3 marked");
    tui.send("o");
    let form = tui.wait_for("OTA update");
    // Without AllowMajorVersionUpdate preflight leaves the major bump out, saying why.
    assert!(
        form.contains("Left out (certain to fail): sea-lobby-cam-01"),
        "{form}"
    );
    tui.send(TAB);
    tui.send(" ");
    tui.wait_for("[x] yes");
    tui.send(ENTER);
    let confirm = tui.wait_for("Confirm: 3 devices");
    assert!(confirm.contains("3 CreateJobForDevices"), "{confirm}");
    tui.send("y");
    tui.wait_results(&[("COMPLETED", 3)]);
    tui.send(ESC); // clear the filter: the updated appliances no longer need an update
    for device in ["sea-dock-cam-02", "sea-lobby-cam-01", "pdx-line1-cam-01"] {
        let row = tui.wait_row(device, &["ONLINE", "OTA COMPLETED"]);
        assert!(row.contains("5.0.21"), "{row}");
        assert!(!row.contains("5.0.10") && !row.contains("4.3.93"), "{row}");
    }
    tui.quit();
}

#[test]
fn unlock_two_locked_snow_devices() {
    let mut tui = Tui::demo();
    tui.ready();
    for id in ["ybj6e3", "hrdslj"] {
        tui.send("/");
        tui.send(ESC); // clears the filter typed before
        tui.send("/");
        tui.send(id);
        tui.send(ENTER);
        tui.wait_for(&format!("filter \"{id}\""));
        tui.send(" ");
    }
    tui.wait_for("2 marked");
    tui.send(ESC);
    tui.send("u");
    tui.wait_for("Unlock");
    tui.send("Site visit");
    tui.send(ENTER);
    tui.wait_for("Confirm: 2 devices");
    tui.send("y");
    tui.wait_results(&[("SUCCEEDED", 2)]);
    tui.wait_row("smd-ybj6e3wtfq4o4", &["UNLOCKED"]);
    tui.wait_row("smd-hrdslj0if9xa9", &["UNLOCKED"]);
    tui.quit();
}

#[test]
fn reboot_a_mixed_selection_in_one_go() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("seattle");
    tui.send(ENTER);
    tui.send("a");
    tui.wait_for("6 marked");
    tui.send("b");
    tui.wait_for("Reboot");
    tui.send(ENTER);
    let confirm = tui.wait_for("Confirm: 6 devices");
    assert!(confirm.contains("4 CreateJobForDevices"), "{confirm}");
    assert!(confirm.contains("1 CreateTask"), "{confirm}");
    tui.send("y");
    tui.wait_results(&[("COMPLETED", 4), ("SUCCEEDED", 2)]);
    tui.quit();
}

#[test]
fn a_snow_form_with_a_bad_description_refuses_to_submit() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("ybj6e3");
    tui.send(ENTER);
    tui.send("u");
    tui.wait_for("Unlock");
    tui.send("Open; now");
    tui.send(ENTER);
    let screen = tui.wait_for("Cannot submit");
    assert!(screen.contains("not ';'"), "{screen}");
    tui.send(ESC);
    let screen = tui.wait_until("the form to close", |s| !s.contains("Cannot submit"));
    assert!(
        !screen.contains("Results"),
        "nothing was dispatched:\n{screen}"
    );
    tui.quit();
}
