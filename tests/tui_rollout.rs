//! A staged rollout in the real terminal UI: the wave picker in the form, every wave in the
//! confirmation, the rollout waiting for approval after its first wave with a gauge per wave,
//! and `P` promoting it to the end.

mod pty;

use pty::{ENTER, TAB, Tui};

#[test]
fn a_canary_wave_waits_for_approval_and_p_promotes_the_rest() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("status:UPDATE_NEEDED");
    tui.send(ENTER);
    tui.wait_for("filter \"status:UPDATE_NEEDED\"");
    // sea-dock-cam-02, sea-lobby-cam-01, pdx-line1-cam-01: all online, rebooted in two waves.
    tui.send(" ");
    tui.send(" ");
    tui.send(" ");
    tui.wait_for("3 marked");
    tui.send("b");
    tui.wait_for("Waves (Space: presets)");
    // Space cycles the presets: a canary, then the rest.
    tui.send(" ");
    tui.wait_for("(canary 1, then the rest)");
    for _ in 0..4 {
        tui.send(TAB);
    }
    tui.send(" ");
    tui.wait_until("approval on", |s| {
        s.lines()
            .any(|l| l.contains("Approve each wave") && l.contains("[x] yes"))
    });
    tui.send(ENTER);
    let confirm = tui.wait_for("Wave 2/2");
    assert!(confirm.contains("Wave 1/2 · 1 device"), "{confirm}");
    assert!(
        confirm.contains("approval"),
        "the gate is stated: {confirm}"
    );
    tui.send("y");
    let waiting = tui.wait_for("waiting for approval");
    // The first wave is done and healthy; the second has not been sent.
    assert!(waiting.contains("W1 ████ 1/1"), "{waiting}");
    assert!(waiting.contains("W2 ░░░░ 0/2"), "{waiting}");
    // In the results pane (the devices' Latest column says it too).
    let planned = waiting
        .lines()
        .filter(|l| l.contains("reboot PLANNED") && !l.contains("UPDATE_NEEDED"))
        .count();
    assert_eq!(planned, 2, "{waiting}");
    assert!(waiting.contains("✓ healthy"), "{waiting}");
    tui.send("P");
    let done = tui.wait_until("the rollout to succeed", |s| {
        s.lines()
            .any(|l| l.contains("Rollout") && l.contains("SUCCEEDED"))
    });
    assert!(done.contains("W2 ████ 2/2"), "{done}");
    tui.quit();
}
