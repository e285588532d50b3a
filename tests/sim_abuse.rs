//! The simulator under abuse: slow and idle clients, requests signed the way AWS refuses,
//! oversized bodies, and input it must refuse. Raw HTTP over loopback for what no SDK would
//! send; the official SDKs, their signer and the botocore presigner for what they do send.

mod common;

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_panorama::config::{BehaviorVersion, Region};
use aws_sdk_panorama::types::JobType;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use common::{code, message};
use fleetdeck::sim::{SimConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short limits, so a test sees them act in seconds.
fn strict() -> SimConfig {
    SimConfig {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        ..common::config()
    }
}

fn amz_date(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap()
}

/// What a signed request needs beside its own headers: the `x-amz-date` it was signed at
/// and the `Authorization` header, as the SDKs' signer makes them.
struct Signed {
    date: String,
    authorization: String,
}

/// Signs `method path` with `headers` (host and x-amz-date are added) and `body` with the
/// simulator's default key, for `service`.
fn sign_request(h: &SimHandle, method: &str, path: &str, body: &[u8], service: &str) -> Signed {
    let now = SystemTime::now();
    let date = amz_date(now);
    let host = h.addr.to_string();
    let identity: Identity =
        Credentials::new(&h.access_key_id, &h.secret_access_key, None, None, "t").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let headers = [("host", host.as_str()), ("x-amz-date", date.as_str())];
    let signable = SignableRequest::new(
        method,
        format!("http://{host}{path}"),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
    let authorization = instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string())
        .unwrap();
    Signed {
        date,
        authorization,
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection; the answer's status, headers and body.
async fn raw(h: &SimHandle, request: &str) -> (u16, String, serde_json::Value) {
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> (u16, String, serde_json::Value) {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes));
    read.await.expect("an answer").expect("readable");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, head.to_string(), body)
}

/// A signed Snow ListDevices as raw text, with `extra` header lines and `signed_headers`
/// in place of what the signer listed.
fn list_devices(h: &SimHandle, signed_headers: Option<&str>, extra: &str) -> String {
    let s = sign_request(h, "GET", "/managed-devices", b"", "snow-device-management");
    let authorization = match signed_headers {
        Some(list) => s.authorization.replace(
            "SignedHeaders=host;x-amz-date",
            &format!("SignedHeaders={list}"),
        ),
        None => s.authorization,
    };
    format!(
        "GET /managed-devices HTTP/1.1\r\nhost: {}\r\nx-amz-date: {}\r\nauthorization: {authorization}\r\n{extra}connection: close\r\n\r\n",
        h.addr, s.date
    )
}

fn error_type(head: &str) -> &str {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("x-amzn-errortype")
                .then_some(value)
        })
        .unwrap_or("")
}

/// Whether the server has closed `stream`: a read that ends (0 bytes or a reset) rather
/// than one that would wait.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

/// Whether each connection is still open, checked all at once.
async fn still_open(streams: Vec<TcpStream>) -> (usize, Vec<TcpStream>) {
    let mut checks = tokio::task::JoinSet::new();
    for mut s in streams {
        checks.spawn(async move {
            let open = !closed(&mut s).await;
            (open, s)
        });
    }
    let mut open = 0;
    let mut back = Vec::new();
    while let Some(done) = checks.join_next().await {
        let (is_open, s) = done.unwrap();
        open += usize::from(is_open);
        back.push(s);
    }
    (open, back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_do_not_starve_a_signed_call_and_are_cut_off() {
    let h = common::start(SimConfig {
        header_timeout: Duration::from_secs(3),
        ..common::config()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(h.addr).await.unwrap());
    }
    // Slow lorises: a header line started, then a byte every 200 ms, for ever.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(h.addr).await.unwrap();
        s.write_all(b"GET /managed-devices HTTP/1.1\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut drips = Vec::new();
    for mut s in slow {
        let mut stop = stop.subscribe();
        drips.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return s,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if s.write_all(b"a").await.is_err() {
                            return s;
                        }
                    }
                }
            }
        }));
    }
    let devices = common::snow(&h).list_devices().send().await.unwrap();
    assert_eq!(devices.devices().len(), 9);
    // Answered while the idle connections were still open: it waited for none of them.
    let (open, idle) = still_open(idle).await;
    assert_eq!(
        open, 300,
        "the idle connections were open when the call was answered"
    );

    // Past the header timeout the server has closed them all, the slow ones included.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop.send(true);
    let mut slow = Vec::new();
    for drip in drips {
        slow.push(drip.await.unwrap());
    }
    let (idle_open, _) = still_open(idle).await;
    let (slow_open, _) = still_open(slow).await;
    assert_eq!(
        (idle_open, slow_open),
        (0, 0),
        "connections outlived the header timeout"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_in_the_services_shape() {
    let h = common::start(strict()).await;
    let body = br#"{"targets":["smd-ybj6e3wtfq4o4ejpe"],"command":{"reboot":{}}}"#;
    let s = sign_request(&h, "POST", "/task", body, "snow-device-management");
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /task HTTP/1.1\r\nhost: {}\r\nx-amz-date: {}\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        h.addr,
        s.date,
        s.authorization,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    let (status, head, answer) = read_answer(&mut stream).await;
    assert_eq!(status, 408, "{head}");
    assert_eq!(error_type(&head), "RequestTimeoutException");
    assert!(
        answer["message"].as_str().unwrap().contains("2 seconds"),
        "{answer}"
    );
    assert!(h.ledger().is_empty(), "nothing was created");
}

/// `fleetdeck sim` with `args`, its stderr read line by line on a thread.
struct SimProcess {
    child: std::process::Child,
    endpoint: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl SimProcess {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
            .arg("sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fleetdeck sim starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let endpoint = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no endpoint in {first:?}"))
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let (tx, stderr) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            endpoint,
            stderr,
        }
    }

    fn wait_for_line(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {what:?} on stderr"),
            }
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn snow_at(endpoint: &str) -> aws_sdk_snowdevicemanagement::Client {
    let config = aws_sdk_snowdevicemanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            fleetdeck::sim::DEFAULT_ACCESS_KEY_ID,
            fleetdeck::sim::DEFAULT_SECRET_ACCESS_KEY,
            None,
            None,
            "t",
        ))
        .retry_config(aws_sdk_panorama::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_snowdevicemanagement::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_are_closed_with_a_log_line_until_idle_ones_end() {
    let sim = SimProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "20",
        "--header-timeout-secs",
        "2",
        "--quotas",
        "off",
    ]);
    let addr = sim.endpoint.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Give the server a moment to take all twenty before the one too many.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let line = sim.wait_for_line("connections are open");
    assert!(line.contains("20 connections"), "{line}");
    assert!(line.contains("--max-connections"), "{line}");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection over the cap was closed: {read:?}"
    );
    // The idle ones are closed by the header timeout, and a signed call gets through.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let devices = snow_at(&sim.endpoint).list_devices().send().await.unwrap();
    assert!(!devices.devices().is_empty());
    drop(idle);
}

#[tokio::test]
async fn every_header_named_as_signed_must_be_present() {
    let h = common::start(common::config()).await;
    // The same signature, claimed over one header more than it covers.
    let (status, head, body) =
        raw(&h, &list_devices(&h, Some("host;x-amz-date;x-missing"), "")).await;
    assert_eq!(status, 403, "{head}");
    assert_eq!(error_type(&head), "IncompleteSignatureException");
    assert!(
        body["message"].as_str().unwrap().contains("x-missing"),
        "{body}"
    );
    // Unchanged, it is a good signature: the refusal above was for the missing header.
    let (status, head, _) = raw(&h, &list_devices(&h, None, "")).await;
    assert_eq!(status, 200, "{head}");
}

#[tokio::test]
async fn a_second_date_or_authorization_header_is_refused() {
    let h = common::start(common::config()).await;
    let other_date = amz_date(SystemTime::now() - Duration::from_secs(60));
    for extra in [
        format!("x-amz-date: {other_date}\r\n"),
        "authorization: AWS4-HMAC-SHA256 Credential=AKIDX/20260101/us-east-1/snow-device-management/aws4_request, SignedHeaders=host, Signature=00\r\n".to_string(),
    ] {
        let (status, head, body) = raw(&h, &list_devices(&h, None, &extra)).await;
        assert_eq!(status, 403, "{extra}: {head}");
        assert_eq!(error_type(&head), "IncompleteSignatureException", "{extra}");
        assert!(body["message"].as_str().unwrap().contains("exactly one"), "{body}");
    }
}

fn panorama_with_token(h: &SimHandle, token: Option<&str>) -> aws_sdk_panorama::Client {
    let config = aws_sdk_panorama::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&h.endpoint)
        .credentials_provider(Credentials::new(
            &h.access_key_id,
            &h.secret_access_key,
            token.map(str::to_string),
            None,
            "t",
        ))
        .retry_config(aws_sdk_panorama::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_panorama::Client::from_conf(config)
}

#[tokio::test]
async fn a_session_token_is_taken_only_where_the_simulator_was_given_one() {
    let long_term = common::start(common::config()).await;
    let err = panorama_with_token(&long_term, Some("FwoGZXIvYXdzE"))
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException", "{err:?}");
    panorama_with_token(&long_term, None)
        .list_devices()
        .send()
        .await
        .unwrap();

    let temporary = common::start(SimConfig {
        session_token: Some("FwoGZXIvYXdzE-the-token".into()),
        ..common::config()
    })
    .await;
    panorama_with_token(&temporary, Some("FwoGZXIvYXdzE-the-token"))
        .list_devices()
        .send()
        .await
        .unwrap();
    for wrong in [None, Some("FwoGZXIvYXdzE-another")] {
        let err = panorama_with_token(&temporary, wrong)
            .list_devices()
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "UnrecognizedClientException", "{wrong:?}");
    }
}

/// A presigned Panorama ListDevices URL, made by the official SDK's signer (aws-sigv4 in
/// query-string mode), valid for `expires` from `at`.
fn presigned(h: &SimHandle, query: &str, at: SystemTime, expires: Duration) -> String {
    let host = h.addr.to_string();
    let identity: Identity =
        Credentials::new(&h.access_key_id, &h.secret_access_key, None, None, "t").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("panorama")
        .time(at)
        .settings(settings)
        .build()
        .unwrap();
    let url = format!("http://{host}/devices?{query}");
    let signable = SignableRequest::new(
        "GET",
        &url,
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(b""),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
    let mut request = http::Request::get(&url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request.uri().to_string()
}

async fn get(url: &str) -> (u16, String, serde_json::Value) {
    let uri: http::Uri = url.parse().unwrap();
    let mut stream = TcpStream::connect(uri.authority().unwrap().as_str())
        .await
        .unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        uri.path_and_query().unwrap(),
        uri.authority().unwrap()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut stream).await
}

#[tokio::test]
async fn presigned_urls_are_verified_not_refused_as_unsigned() {
    let h = common::start(common::config()).await;
    let now = SystemTime::now();
    let url = presigned(&h, "MaxResults=3", now, Duration::from_secs(300));
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, head, body) = get(&url).await;
    assert_eq!(status, 200, "{head} {body}");
    assert_eq!(body["Devices"].as_array().unwrap().len(), 3, "{body}");

    // Changed after signing: asks for 10 where the signature said 3.
    let (status, head, _) = get(&url.replace("MaxResults=3", "MaxResults=10")).await;
    assert_eq!(status, 403);
    assert_eq!(error_type(&head), "InvalidSignatureException");

    // Signed ten minutes ago for one minute: expired.
    let old = presigned(
        &h,
        "MaxResults=3",
        now - Duration::from_secs(600),
        Duration::from_secs(60),
    );
    let (status, head, body) = get(&old).await;
    assert_eq!(status, 403, "{head}");
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // A presigned URL sent with an Authorization header too: one mechanism only.
    let uri: http::Uri = url.parse().unwrap();
    let both = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nauthorization: AWS4-HMAC-SHA256 Credential=x/y/z/panorama/aws4_request, SignedHeaders=host, Signature=0\r\nconnection: close\r\n\r\n",
        uri.path_and_query().unwrap(),
        h.addr
    );
    let (status, _, body) = raw(&h, &both).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_url_presigned_by_botocore_lists_the_devices() {
    let h = common::start(common::config()).await;
    let script = r#"
import sys, botocore.session
s = botocore.session.get_session()
c = s.create_client("panorama", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
print(c.generate_presigned_url("list_devices", Params={"MaxResults": 2}, ExpiresIn=120))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &h.endpoint,
            &h.access_key_id,
            &h.secret_access_key,
        ])
        .output()
        .expect("python3 runs (botocore comes with the aws CLI)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, head, body) = get(&url).await;
    assert_eq!(status, 200, "{head} {body}");
    assert_eq!(body["Devices"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn an_oversized_body_gets_413_in_each_services_own_shape() {
    let h = common::start(common::config()).await;
    let huge = "5".repeat(2 << 20);
    let err = common::panorama(&h)
        .create_job_for_devices()
        .device_ids("device-ktsxfvy6plp4rf9tast6m01s12")
        .job_type(JobType::Ota)
        .device_job_config(
            aws_sdk_panorama::types::DeviceJobConfig::builder()
                .ota_job_config(
                    aws_sdk_panorama::types::OtaJobConfig::builder()
                        .image_version(&huge)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 413);
    assert_eq!(code(&err), "RequestEntityTooLargeException");
    // Panorama's message member is `Message`: the SDK read it.
    assert!(message(&err).contains("1 MiB"), "{err:?}");

    let err = common::snow(&h)
        .create_task()
        .targets("smd-ybj6e3wtfq4o4ejpe")
        .command(aws_sdk_snowdevicemanagement::types::Command::Reboot(
            aws_sdk_snowdevicemanagement::types::Reboot::builder().build(),
        ))
        .description(&huge)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 413);
    let meta = aws_sdk_snowdevicemanagement::error::ProvideErrorMetadata::meta(&err);
    assert_eq!(meta.code(), Some("RequestEntityTooLargeException"));
    // Snow's is `message`.
    assert!(meta.message().unwrap_or("").contains("1 MiB"), "{err:?}");
    let raw_body =
        std::str::from_utf8(err.raw_response().unwrap().body().bytes().unwrap()).unwrap();
    assert!(raw_body.contains("\"message\""), "{raw_body}");
    assert!(h.ledger().is_empty());
}

#[tokio::test]
async fn an_unsigned_huge_body_is_refused_for_its_signature_before_it_is_read() {
    let h = common::start(strict()).await;
    // 100 MB announced, not a byte of it sent: an answer now means the body was never read.
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /task HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\nconnection: close\r\n\r\n",
        h.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = read_answer(&mut stream).await;
    assert_eq!(status, 403, "{head}");
    assert_eq!(
        error_type(&head),
        "MissingAuthenticationTokenException",
        "{body}"
    );

    // Signed, but announcing more than 1 MiB: 413 before the body, in Snow's shape.
    let s = sign_request(&h, "POST", "/task", b"", "snow-device-management");
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /task HTTP/1.1\r\nhost: {}\r\nx-amz-date: {}\r\nauthorization: {}\r\ncontent-length: 100000000\r\nconnection: close\r\n\r\n",
        h.addr, s.date, s.authorization
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = read_answer(&mut stream).await;
    assert_eq!(status, 413, "{head}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn clock_advances_that_are_not_finite_and_positive_are_refused() {
    let h = common::start(common::config()).await;
    for seconds in ["inf", "1e20", "0", "-5", "NaN", "x"] {
        let request = format!(
            "POST /_fleetdeck/clock/advance?seconds={seconds} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            h.addr
        );
        let (status, _, body) = raw(&h, &request).await;
        assert_eq!(status, 400, "{seconds}: {body}");
    }
    assert!(h.advance_clock(f64::INFINITY).is_err());
    // Timestamps are still there to read.
    let device = common::snow(&h)
        .describe_device()
        .managed_device_id("smd-ybj6e3wtfq4o4ejpe")
        .send()
        .await
        .unwrap();
    assert!(device.last_reached_out_at().is_some());
    let request = format!(
        "POST /_fleetdeck/clock/advance?seconds=60 HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        h.addr
    );
    assert_eq!(raw(&h, &request).await.0, 200);
}

#[tokio::test]
async fn tags_outside_the_aws_rules_are_refused_by_create_task() {
    let h = common::start(common::config()).await;
    let snow = common::snow(&h);
    let many: Vec<(String, String)> = (0..60).map(|i| (format!("k{i}"), "v".into())).collect();
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (vec![("aws:owner".into(), "ops".into())], "aws: prefix"),
        (
            vec![("k".repeat(300), "v".into())],
            "less than or equal to 128",
        ),
        (
            vec![("k".into(), "v".repeat(300))],
            "less than or equal to 256",
        ),
        (vec![("ticket#".into(), "1".into())], "only letters"),
        (many, "less than or equal to 50"),
    ];
    for (tags, says) in cases {
        let mut call = snow.create_task().targets("smd-ybj6e3wtfq4o4ejpe").command(
            aws_sdk_snowdevicemanagement::types::Command::Reboot(
                aws_sdk_snowdevicemanagement::types::Reboot::builder().build(),
            ),
        );
        for (k, v) in &tags {
            call = call.tags(k, v);
        }
        let err = call.send().await.unwrap_err();
        let meta = aws_sdk_snowdevicemanagement::error::ProvideErrorMetadata::meta(&err);
        assert_eq!(meta.code(), Some("ValidationException"), "{says}");
        assert!(
            meta.message().unwrap_or("").contains(says),
            "{says}: {meta:?}"
        );
    }
    assert!(h.ledger().is_empty());
}

#[tokio::test]
async fn a_forged_page_token_is_refused_not_overflowed() {
    let h = common::start(common::config()).await;
    // The offset at the end of usize, under a fingerprint that is not this query's.
    let forged = hex::encode(format!("{}:0", usize::MAX));
    let err = common::snow(&h)
        .list_tasks()
        .next_token(&forged)
        .send()
        .await
        .unwrap_err();
    let meta = aws_sdk_snowdevicemanagement::error::ProvideErrorMetadata::meta(&err);
    assert_eq!(meta.code(), Some("ValidationException"));
    // The simulator still answers.
    common::snow(&h).list_tasks().send().await.unwrap();
}

/// `fleetdeck` with `args`, ended (it must not hang); its exit status and stderr.
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(!status.success(), "{args:?} was accepted: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fleet_file(body: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("fleetdeck-abuse-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn the_simulator_refuses_what_it_cannot_honestly_run() {
    for (args, says) in [
        (vec!["sim", "--speed", "inf"], "at most"),
        (vec!["sim", "--speed", "0"], "above 0"),
        (vec!["sim", "--speed", "NaN"], "above 0"),
        (vec!["--demo", "--demo-speed", "inf"], "at most"),
        (vec!["sim", "--regions", ""], "not a region name"),
        (
            vec!["sim", "--regions", "bogus region"],
            "not a region name",
        ),
        (vec!["sim", "--regions", "us-east-1,"], "not a region name"),
        (vec!["sim", "--fleet", "/dev/zero"], "not a regular file"),
        (
            vec!["sim", "--max-connections", "0"],
            "number of connections",
        ),
    ] {
        let err = refused(&args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn a_fleet_file_with_bad_ids_or_tags_is_refused_with_the_device_named() {
    let head = "[panorama]\nimages = [\"5.0.21\"]\n";
    let cases = [
        (
            format!(
                "{head}[[panorama.devices]]\nname = \"cam-1\"\nsoftware = \"5.0.21\"\nid = \"device-é\"\n"
            ),
            "device-é",
        ),
        (
            format!("{head}[[panorama.devices]]\nname = \"cam 1\"\nsoftware = \"5.0.21\"\n"),
            "cam 1",
        ),
        (
            format!(
                "{head}[[snow.devices]]\nid = \"smd-1\"\nsoftware = \"7.1.0\"\n[[snow.devices]]\nid = \"smd-1\"\nsoftware = \"7.1.0\"\n"
            ),
            "given twice",
        ),
        (
            format!(
                "{head}[[panorama.devices]]\nname = \"a\"\nsoftware = \"5.0.21\"\nid = \"device-1\"\n[[panorama.devices]]\nname = \"b\"\nsoftware = \"5.0.21\"\nid = \"device-1\"\n"
            ),
            "given twice",
        ),
        (
            format!(
                "{head}[[snow.devices]]\nid = \"smd-2\"\nsoftware = \"7.1.0\"\ntags = {{ \"aws:x\" = \"1\" }}\n"
            ),
            "aws: prefix",
        ),
        (format!("account_id = \"12\"\n{head}"), "12 digits"),
    ];
    for (body, says) in cases {
        let path = fleet_file(&body);
        let err = refused(&["sim", "--fleet", path.to_str().unwrap()]);
        assert!(err.contains(says), "{body}\n{err}");
        let _ = std::fs::remove_file(path);
    }
}
