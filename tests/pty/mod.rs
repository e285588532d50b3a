//! A pseudo-terminal harness: the real `fleetdeck` binary, keys typed as a user types them,
//! the screen read back through a terminal emulator.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};

pub const ENTER: &str = "\r";
pub const ESC: &str = "\x1b";
pub const TAB: &str = "\t";
pub const WAIT: Duration = Duration::from_secs(90);
/// The quiet after a lone Esc that makes it a key of its own.
const ESC_GAP: Duration = Duration::from_millis(60);

pub struct Tui {
    /// The journal this run writes, in a directory of its own.
    pub journal: std::path::PathBuf,
    pub master: Box<dyn portable_pty::MasterPty + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Every byte read from the terminal so far.
    read: Arc<AtomicU64>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
}

impl Tui {
    /// The demo's prod account (us-east-1), with simulated time fast enough that an OTA
    /// takes a couple of seconds.
    pub fn demo() -> Self {
        Self::start(&["--demo", "--demo-speed", "300", "--ctx", "prod"])
    }

    /// The whole demo: both accounts, both regions.
    pub fn demo_all() -> Self {
        Self::start(&["--demo", "--demo-speed", "300"])
    }

    pub fn start(args: &[&str]) -> Self {
        let journal = std::env::temp_dir()
            .join(format!("fleetdeck-pty-{}", std::process::id()))
            .join(format!("{}.jsonl", uuid::Uuid::new_v4()));
        Self::start_with(args, &[], journal)
    }

    /// With environment variables of its own and a given journal (to restart on the same one).
    pub fn start_with(args: &[&str], env: &[(&str, &str)], journal: std::path::PathBuf) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_fleetdeck"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("FLEETDECK_JOURNAL", &journal);
        // Nothing from the machine's own fleetdeck configuration.
        cmd.env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml");
        cmd.env_remove("FLEETDECK_CONTEXT");
        // A backtrace the machine's environment asks for would scroll a panic's own words
        // off the 40 rows the screen holds.
        cmd.env_remove("RUST_BACKTRACE");
        for (k, v) in env {
            cmd.env(k, v);
        }
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
        let read = Arc::new(AtomicU64::new(0));
        let counted = read.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // On screen first, then counted: a count that stopped growing means what it
                // counts is all on screen.
                feed.lock().unwrap().process(&buf[..n]);
                counted.fetch_add(n as u64, Ordering::Release);
            }
        });
        Self {
            journal,
            master: pty.master,
            screen,
            read,
            writer,
            child,
        }
    }

    /// How many bytes the program has written to the terminal so far.
    pub fn bytes(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    pub fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        // A terminal tells a lone Esc from the start of an escape sequence (Alt+key, an
        // arrow) only by the gap after it: keys written next must not follow it at once.
        // Nothing is waited for here; the tests wait on the screen.
        if keys.ends_with('\x1b') {
            std::thread::sleep(ESC_GAP);
        }
    }

    /// The screen once the program's output has paused: a frame can reach the terminal in
    /// several reads, and a screen read between them is half of one.
    fn settled(&self) -> String {
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut last = self.bytes();
        loop {
            std::thread::sleep(Duration::from_millis(15));
            let now = self.bytes();
            if now == last || Instant::now() > deadline {
                return self.contents();
            }
            last = now;
        }
    }

    /// Waits until the screen, read whole, satisfies `ok`.
    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.settled();
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

    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the results pane's title counts exactly these states (as "Results 6
    /// COMPLETED 4 SUCCEEDED 2"): read from the title alone, since a row's state and its
    /// elapsed time ("COMPLETED 4s") would read as a count too.
    pub fn wait_results(&self, states: &[(&str, usize)]) -> String {
        let total: usize = states.iter().map(|(_, n)| n).sum();
        let mut want = format!("Results {total} ");
        for (state, n) in states {
            want.push_str(&format!("{state} {n} "));
        }
        self.wait_until(&format!("the results title {want:?}"), |s| {
            s.lines()
                .find(|l| l.contains("┌ Results "))
                .is_some_and(|l| l.contains(&want))
        })
    }

    /// Waits until the screen line naming `device` contains every one of `parts`.
    pub fn wait_row(&self, device: &str, parts: &[&str]) -> String {
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

    /// Waits for the demo fleet to be listed and every device described: each appliance's
    /// Avail cell (a version, or — for none) and each Snow device's Status cell filled.
    pub fn ready(&self) {
        self.wait_for("Devices ");
        self.wait_until("every device described", |s| {
            let Some(header) = s.lines().find(|l| l.contains(" Software ")) else {
                return false;
            };
            let column = |name: &str| header.find(name).map(|at| header[..at].chars().count());
            let (Some(seen), Some(software)) = (column("Seen"), column("Software")) else {
                return false;
            };
            let cell =
                |row: &str, at: usize, n: usize| row.chars().skip(at).take(n).collect::<String>();
            let rows: Vec<&str> = s
                .lines()
                .filter(|l| l.contains(" PAN ") || l.contains(" SNOW "))
                .collect();
            // Every device the title counts is on screen and read.
            let listed = s
                .split_once("Devices ")
                .and_then(|(_, rest)| rest.split_once(' '))
                .and_then(|(n, _)| n.parse::<usize>().ok());
            Some(rows.len()) == listed
                && s.lines().all(|l| !l.contains("loading"))
                && rows.iter().all(|row| {
                    // An appliance is described once its offered version is known (✓ or →);
                    // a Snow device once when it last reached out is.
                    if row.contains(" PAN ") {
                        let text = cell(row, software, 16);
                        text.contains('✓') || text.contains('→')
                    } else {
                        !cell(row, seen, 4).trim().is_empty()
                    }
                })
        });
    }

    /// Ends the program as a crash or `kill -9` would: no chance to write anything.
    pub fn crash(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
            .expect("the process is killed");
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("a process id")
    }

    /// Waits for the program to exit, then checks the terminal it leaves: the main screen,
    /// and line editing and echo back on (cooked mode).
    pub fn expect_exit(self, how: &str) {
        self.expect_exit_with(how, true);
    }

    fn alternate(&self) -> bool {
        self.screen.lock().unwrap().screen().alternate_screen()
    }

    /// Waits for the exit, checks its status and the terminal left behind, and returns the
    /// screen as the program left it (what it printed after restoring the terminal).
    pub fn expect_exit_with(mut self, how: &str, success: bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(
                    status.success(),
                    success,
                    "fleetdeck exited with {status:?} on {how}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fleetdeck did not exit on {how}:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The reader takes in what the program wrote last: wait for the main screen, then for
        // the text on it to stop changing.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.alternate() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !self.alternate(),
            "{how} left the terminal on the alternate screen"
        );
        let mut last = self.contents();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.contents();
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let termios = self.master.get_termios().expect("the terminal's modes");
        let cooked = nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO;
        assert!(
            termios.local_flags.contains(cooked),
            "{how} left the terminal in raw mode"
        );
        last
    }

    pub fn quit(mut self) {
        self.send("q");
        self.expect_exit("q");
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The environment that points fleetdeck at a simulator's default account with its key,
/// and away from any real AWS configuration on the machine.
pub fn sim_env(sim: &fleetdeck::sim::SimHandle) -> [(&'static str, &str); 6] {
    [
        ("AWS_ACCESS_KEY_ID", sim.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", sim.secret_access_key.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}
