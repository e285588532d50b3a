//! Contexts in the terminal UI, end to end: the demo spans two accounts and two regions; the
//! header names each context with its account and regions; the `:` command line (with Tab
//! completion) switches contexts and regions, and says what it did not understand.

mod pty;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use pty::{ENTER, TAB, Tui};

/// How many calls the demo's simulator throttled, per operation (its unsigned admin endpoint).
fn throttled(endpoint: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client: HttpClient<_, Empty<Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build_http();
        let url = format!("{endpoint}/_fleetdeck/calls").parse().unwrap();
        let response = client.get(url).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let calls: serde_json::Value = serde_json::from_slice(&body).unwrap();
        calls["throttled"].clone()
    })
}

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
    let endpoint = top
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("the header names the simulator's endpoint: {top}"))
        .to_string();

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
    // Scopes loaded again by each switch pace their calls as one caller with the scopes
    // they replace: the service throttled none of them.
    assert_eq!(throttled(&endpoint), serde_json::json!({}));
    tui.send(":");
    tui.send("q");
    tui.send(ENTER);
    tui.expect_exit("quit by :q");
}
