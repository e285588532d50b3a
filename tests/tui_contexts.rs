//! Contexts in the terminal UI, end to end: the demo spans two accounts and two regions; the
//! header names each context with its account and regions; the `:` command line (with Tab
//! completion) switches contexts and regions, and says what it did not understand.

mod pty;

use pty::{ENTER, TAB, Tui};

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default()
}

#[test]
fn the_command_line_switches_contexts_and_regions() {
    let mut tui = Tui::demo_all();
    // 35 rows: more than a 40-line screen shows at once, so no wait for every row read.
    let screen = tui.wait_until("both accounts listed and named", |s| {
        s.contains("Devices 35 (20 Panorama, 15 Snow)") && s.contains("210987654321 us-west-2")
    });
    let top = header(&screen);
    for part in [
        "prod",
        "123456789012 us-east-1",
        "lab",
        "210987654321 us-west-2,us-east-1",
    ] {
        assert!(top.contains(part), "header names {part}: {top}");
    }
    // One table across both accounts: a lab appliance in us-west-2 beside a prod one.
    tui.wait_row("pdx-gate-cam-01", &["us-west-2", "210987654321"]);
    tui.wait_row("sea-dock-cam-01", &["us-east-1", "123456789012"]);

    // `:ctx l` + Tab completes to the lab context; Enter switches to it alone.
    tui.send(":");
    tui.send("ctx l");
    tui.send(TAB);
    tui.wait_for(":ctx lab");
    tui.send(ENTER);
    let screen = tui.wait_until("only lab's devices", |s| {
        s.contains("Devices 12 (6 Panorama, 6 Snow)") && !s.contains("sea-dock-cam-01")
    });
    let top = header(&screen);
    assert!(
        top.contains("210987654321") && !top.contains("123456789012"),
        "{top}"
    );

    // `:region us-west-2` narrows the context to that region.
    tui.send(":");
    tui.send("region us-west-2");
    tui.send(ENTER);
    let screen = tui.wait_for("Devices 10 (6 Panorama, 4 Snow)");
    assert!(
        screen
            .lines()
            .filter(|l| l.contains(" PAN ") || l.contains(" SNOW "))
            .all(|l| l.contains("us-west-2")),
        "{screen}"
    );

    // What the command line does not know is said, and nothing changes.
    tui.send(":");
    tui.send("nope");
    tui.send(ENTER);
    tui.wait_for("unknown command :nope");
    tui.send(":");
    tui.send("profile admin");
    tui.send(ENTER);
    tui.wait_for("the demo has no AWS profiles");
    tui.wait_for("Devices 10 (6 Panorama, 4 Snow)");

    // Both contexts again, then `:q` quits.
    tui.send(":");
    tui.send("ctx prod,lab");
    tui.send(ENTER);
    tui.wait_for("Devices 35 (20 Panorama, 15 Snow)");
    tui.send(":");
    tui.send("q");
    tui.send(ENTER);
    tui.expect_exit("quit by :q");
}
