//! Team mode's tests run against a real DynamoDB and STS: the moto server on loopback, one per
//! test on a free port. moto 5.2.6 or later with its server extra is needed (older ones answer
//! the Rust SDK's CloudWatch with 404); when the machine's Python has an older one, a virtual
//! environment with a newer one is made once under the target directory, under a file lock so
//! that test binaries running at once make it once.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WANTED: (u32, u32, u32) = (5, 2, 6);

/// The Python that has moto ≥ 5.2.6 with its server extra: the machine's, else one made for
/// the tests.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let system = PathBuf::from("python3");
        if moto_fits(&system) {
            return system;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
        let python = dir.join("bin/python3");
        std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).expect("the target's tmp dir");
        let lock = std::fs::File::create(dir.with_extension("lock")).expect("a lock file");
        lock.lock().expect("the venv's lock");
        if !moto_fits(&python) {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .expect("python3 -m venv runs");
            assert!(made.success(), "python3 -m venv {} failed", dir.display());
            let got = Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "moto[server]>=5.2.6"])
                .status()
                .expect("pip runs");
            assert!(got.success(), "pip install moto[server]>=5.2.6 failed");
            assert!(
                moto_fits(&python),
                "moto ≥ 5.2.6 was installed but does not import"
            );
        }
        drop(lock);
        python
    })
}

fn moto_fits(python: &Path) -> bool {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, moto.server, flask; print(m.version('moto'))",
        ])
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text
        .trim()
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    out.status.success() && v.len() >= 3 && (v[0], v[1], v[2]) >= WANTED
}

/// moto's own server (`python -m moto.server`), its werkzeug server made to serve one request
/// at a time. Its connections then close after each answer (HTTP/1.0), so no client holds it.
const SERIAL_MOTO: &str = "import sys, moto.server as s\n\
serve = s.run_simple\n\
s.run_simple = lambda *a, **k: serve(*a, **{**k, 'threaded': False})\n\
sys.argv[0] = 'moto_server'\n\
s.main()\n";

/// A moto server of the test's own on loopback.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Self {
        let mut m = Self {
            child: None,
            port: 0,
            endpoint: String::new(),
        };
        m.restart();
        m
    }

    /// Starts a new, empty server (after `kill`), on a port of its own: the old one may be
    /// another test's by now.
    pub fn restart(&mut self) {
        self.port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        self.endpoint = format!("http://127.0.0.1:{}", self.port);
        // One request at a time: moto applies a transaction item by item and, when one item's
        // condition fails, puts back a copy of the whole table taken before it began, undoing
        // whatever another request wrote meanwhile. DynamoDB's transactions are serializable;
        // serving requests one after another makes moto's so too.
        let child = Command::new(python())
            .args(["-c", SERIAL_MOTO, "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto's server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 60s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server: the table is gone with it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new IAM user with an access key: a second identity for STS.
    pub fn user(&self, name: &str) -> (String, String) {
        let script = format!(
            "import boto3\n\
             iam = boto3.client('iam', endpoint_url='{}', region_name='us-east-1',\n\
               aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             iam.create_user(UserName='{name}')\n\
             k = iam.create_access_key(UserName='{name}')['AccessKey']\n\
             print(k['AccessKeyId'], k['SecretAccessKey'])\n",
            self.endpoint
        );
        let out = Command::new(python())
            .args(["-c", &script])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "creating IAM user {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut parts = text.split_whitespace();
        (
            parts.next().expect("a key id").to_string(),
            parts.next().expect("a secret").to_string(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A credentials file naming each identity as a profile.
pub fn credentials(users: &[(&str, (String, String))]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("fleetdeck-team-creds-{}", uuid::Uuid::new_v4()));
    let mut f = std::fs::File::create(&path).expect("a credentials file");
    for (name, (id, secret)) in users {
        writeln!(
            f,
            "[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        )
        .expect("written");
    }
    path
}
