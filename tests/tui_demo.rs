//! End to end: the real `fleetdeck --demo` binary in a pseudo-terminal, keys typed as a user
//! types them, the screen read back through a terminal emulator. Each test waits for screen
//! text with a deadline rather than sleeping, and starts its own demo.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};

const ENTER: &str = "\r";
const ESC: &str = "\x1b";
const TAB: &str = "\t";
const WAIT: Duration = Duration::from_secs(90);

struct Tui {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
}

impl Tui {
    fn demo() -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_fleetdeck"));
        // Fast simulated time keeps each OTA to a couple of seconds.
        cmd.args(["--demo", "--demo-speed", "300"]);
        cmd.env("TERM", "xterm-256color");
        let child = pty.slave.spawn_command(cmd).expect("fleetdeck starts");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("a reader");
        let writer = pty.master.take_writer().expect("a writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(40).unwrap(),
            NonZeroU16::new(120).unwrap(),
            0,
        )));
        let feed = screen.clone();
        std::thread::spawn(move || {
            let _master = pty.master;
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                feed.lock().unwrap().process(&buf[..n]);
            }
        });
        Self {
            screen,
            writer,
            child,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        // Let the program read each burst as keys, not as one escape sequence.
        std::thread::sleep(Duration::from_millis(60));
    }

    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.contents();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the screen line naming `device` contains every one of `parts`.
    fn wait_row(&self, device: &str, parts: &[&str]) -> String {
        let screen = self.wait_until(&format!("{device} to show {parts:?}"), |s| {
            s.lines().any(|l| {
                l.contains(device) && !l.contains("Results") && parts.iter().all(|p| l.contains(p))
            })
        });
        screen
            .lines()
            .find(|l| l.contains(device) && parts.iter().all(|p| l.contains(p)))
            .unwrap_or_default()
            .to_string()
    }

    /// Waits for the demo fleet to be listed and described.
    fn ready(&self) {
        self.wait_for("Devices 23 (14 Panorama, 9 Snow)");
        self.wait_row("chi-wh-cam-01", &["5.0.21"]);
        self.wait_row("smd-jnxpwtyzcl05e66", &["LOCKED"]);
    }

    fn quit(mut self) {
        self.send("q");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "fleetdeck exited with {status:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fleetdeck did not quit on q:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The reader drains what the program wrote last; then the screen must be the main one.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !self.screen.lock().unwrap().screen().alternate_screen(),
            "the terminal was left on the alternate screen"
        );
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn ota_three_appliances_to_completion_and_see_the_new_version() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("UPDATE_NEEDED");
    tui.send(ENTER);
    tui.wait_for("filter \"UPDATE_NEEDED\"");
    // The first three with an update: sea-dock-cam-02, sea-lobby-cam-01 (a major bump),
    // pdx-line1-cam-01.
    tui.send(" ");
    tui.send(" ");
    tui.send(" ");
    tui.wait_for("3 marked");
    tui.send("o");
    let form = tui.wait_for("OTA update");
    assert!(
        form.contains("Major version update needed by: sea-lobby-cam-01"),
        "{form}"
    );
    tui.send(TAB);
    tui.send(" ");
    tui.wait_for("[x] yes");
    tui.send(ENTER);
    let confirm = tui.wait_for("Confirm: 3 devices");
    assert!(confirm.contains("3 CreateJobForDevices"), "{confirm}");
    tui.send("y");
    tui.wait_for("COMPLETED 3");
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
    tui.wait_for("SUCCEEDED 2");
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
    tui.wait_until("4 COMPLETED and 2 SUCCEEDED", |s| {
        s.contains("COMPLETED 4") && s.contains("SUCCEEDED 2")
    });
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
