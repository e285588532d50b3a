//! The listener: hyper serves HTTP/1.1; each request is authenticated, routed by the SigV4
//! scope's service and its method and path, metered, exposed to the configured faults (random
//! rates and targeted rules) and handed to the service's handler under the world lock.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rand::RngExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};

use super::check::{ApiRequest, serialization};
use super::faults::{self, FaultStatus, TargetedFault};
use super::routes::{Route, find_route};
use super::state::Ctx;
use super::wire::{ApiError, ApiResult, Service, json_response};
use super::{QuotaMode, Shared, SimConfig, World, auth};

const MAX_BODY: usize = 1 << 20;

pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let open = Arc::new(Semaphore::new(config.max_connections));
    // Said once per burst: a flood must not become a flood of log lines too.
    let mut full_since: Option<Instant> = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: back off rather than spin.
                Err(e) => {
                    warn_once(&mut full_since, &format!("cannot accept a connection ({e}); retrying"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            warn_once(
                &mut full_since,
                &format!(
                    "{} connections are open, the most allowed (--max-connections): new ones \
                     are closed until some end (idle ones close after {}s)",
                    config.max_connections,
                    config.header_timeout.as_secs()
                ),
            );
            drop(stream);
            continue;
        };
        if open.available_permits() > config.max_connections / 10 {
            full_since = None;
        }
        let shared = shared.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A handler that must drop its connection (a simulated network fault) says so here.
            let kill = Arc::new(Notify::new());
            let header_timeout = shared.config.header_timeout;
            let activity = Arc::new(Activity::new());
            let stream = Watched {
                inner: stream,
                activity: activity.clone(),
            };
            let service = {
                let kill = kill.clone();
                let activity = activity.clone();
                service_fn(move |req| {
                    let busy = activity.busy();
                    let answer = handle(shared.clone(), kill.clone(), req);
                    async move {
                        let _busy = busy;
                        answer.await
                    }
                })
            };
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // The header timer also runs while a kept-alive connection waits for its next
            // request, so it is the idle timeout too.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = activity.idle_for(header_timeout) => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// When a connection last moved a byte, and how many of its requests are being answered:
/// hyper's header timer starts only with a request's first byte, so a connection that never
/// sends one (or sits idle between requests) is closed by [`Activity::idle_for`] instead.
struct Activity {
    born: Instant,
    /// Milliseconds after `born` of the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Counts a request as being answered until the guard is dropped (answered or abandoned):
    /// a call held by a delay fault is not idle, however long it is quiet.
    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Ends once the connection has been idle for `limit` with no request being answered.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = self.born.elapsed().saturating_sub(last);
            if quiet >= limit && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            let left = limit.saturating_sub(quiet).max(Duration::from_millis(100));
            tokio::time::sleep(left).await;
        }
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A connection that notes its traffic in an [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A line on stderr, unless one was written in the last minute of the same trouble.
fn warn_once(since: &mut Option<Instant>, line: &str) {
    if since.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *since = Some(Instant::now());
    let _ = writeln!(std::io::stderr(), "fleetdeck sim: {line}");
}

/// What the faults decided for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// 500 before the call takes effect.
    FailBefore,
    /// 500 after the call took effect: the client cannot tell which of the two it got.
    FailAfter,
    /// The call takes effect, then the connection is closed without an answer.
    Drop,
}

async fn handle(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let config = &shared.config;
    if parts.uri.path().starts_with("/_fleetdeck/") {
        return Ok(match read_body(body, config.body_timeout).await {
            Ok(body) => admin(&shared, &parts, &body, &request_id),
            Err(e) => e.into_response(None, &request_id),
        });
    }
    let label = format!("{} {}", parts.method, parts.uri.path());
    // Who is calling, before a byte of the body is read: an unsigned 100 MB upload is told
    // about its signature, and nobody unsigned makes the simulator buffer anything.
    let pending = match auth::authenticate(&parts, &shared.keyring, SystemTime::now()) {
        Ok(pending) => pending,
        Err(e) => return Ok(refuse(&shared, &label, e, None, &request_id, started)),
    };
    let service = pending.service();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        let e = too_large();
        return Ok(refuse(
            &shared,
            &label,
            e,
            Some(service),
            &request_id,
            started,
        ));
    }
    let body = match read_body(body, config.body_timeout).await {
        Ok(body) => body,
        Err(e) => {
            return Ok(refuse(
                &shared,
                &label,
                e,
                Some(service),
                &request_id,
                started,
            ));
        }
    };
    let scope = match pending.verify(&parts, &body) {
        Ok(scope) => scope,
        Err(e) => return Ok(refuse(&shared, &label, e, None, &request_id, started)),
    };

    let delay = config.latency + config.jitter.mul_f64(roll(&shared));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    match call(shared, &parts, scope, body, &request_id, started).await {
        Outcome::Answer(response) => Ok(response),
        Outcome::Drop => {
            kill.notify_one();
            std::future::pending().await
        }
    }
}

/// 413, in the shape of the service the request was signed for.
fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        format!("The request body is larger than the {MAX_BODY} bytes (1 MiB) a call may send."),
    )
}

/// The body, at most `MAX_BODY` bytes of it, read within `limit`: a client that sends a
/// byte a second does not hold the simulator's attention (or a buffer) for long.
async fn read_body(body: Incoming, limit: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(limit, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(serialization("the request body could not be read")),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            format!(
                "The request body did not arrive within {} seconds.",
                limit.as_secs_f64()
            ),
        )),
    }
}

/// An answer to a call refused before it was admitted, logged like any other.
fn refuse(
    shared: &Shared,
    label: &str,
    e: ApiError,
    service: Option<Service>,
    request_id: &str,
    started: Instant,
) -> Response<Full<Bytes>> {
    let response = e.into_response(service, request_id);
    log(shared, label, response.status().as_str(), started);
    response
}

enum Outcome {
    Answer(Response<Full<Bytes>>),
    Drop,
}

impl Outcome {
    fn status(&self) -> String {
        match self {
            Outcome::Answer(r) => r.status().as_str().to_string(),
            Outcome::Drop => "dropped".to_string(),
        }
    }
}

/// A call that passed authentication, routing and the quotas, with the faults it drew.
struct Admitted {
    label: String,
    /// The signer's account, as an index into the world's accounts.
    account: usize,
    region: String,
    service: Service,
    operation: &'static str,
    params: Vec<String>,
    fault: Fault,
    /// How long a targeted fault holds the call before it takes effect.
    hold: Duration,
}

/// What admission made of a call.
enum Admission {
    Admitted(Admitted),
    /// Refused before any fault was drawn: a label for the log and the answer.
    Refused(String, Outcome),
}

/// Runs one API call and logs it.
async fn call(
    shared: Arc<Shared>,
    parts: &http::request::Parts,
    scope: auth::Scope,
    body: Bytes,
    request_id: &str,
    started: Instant,
) -> Outcome {
    let admitted = match admit(&shared, parts, scope, request_id) {
        Admission::Admitted(admitted) => admitted,
        Admission::Refused(label, outcome) => {
            log(&shared, &label, &outcome.status(), started);
            return outcome;
        }
    };
    let query = parts.uri.query().map(str::to_string);
    if admitted.hold.is_zero() {
        return execute(
            &shared,
            admitted,
            query.as_deref(),
            &body,
            request_id,
            started,
        );
    }
    // A client that gives up on a held call closes its connection and hyper drops this
    // future; the call must land anyway, as at a real service, so it waits on its own task.
    // The world lock is not held while it waits.
    let service = admitted.service;
    let id = request_id.to_string();
    let held = tokio::spawn(async move {
        tokio::time::sleep(admitted.hold).await;
        execute(&shared, admitted, query.as_deref(), &body, &id, started)
    });
    held.await.unwrap_or_else(|_| {
        Outcome::Answer(ApiError::internal().into_response(Some(service), request_id))
    })
}

/// With `--verbose`, one line per call: service, region, operation, status, latency.
fn log(shared: &Shared, label: &str, status: &str, started: Instant) {
    if !shared.config.verbose {
        return;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // A closed stdout must not take the server down with it.
    let _ = writeln!(std::io::stdout(), "{label} {status} {ms:.1}ms");
}

/// Routes an authenticated call, meters it and draws the faults.
fn admit(
    shared: &Shared,
    parts: &http::request::Parts,
    scope: auth::Scope,
    request_id: &str,
) -> Admission {
    let config = &shared.config;
    let mut label = format!("{} {}", parts.method, parts.uri.path());
    let fail = |e: ApiError, service: Option<Service>| {
        Outcome::Answer(e.into_response(service, request_id))
    };

    let service = scope.service;
    label = format!("{} {} {}", service.signing_name(), scope.region, label);
    if !config.regions.contains(&scope.region) {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            format!(
                "This simulator serves {}; the request was signed for {}.",
                config.regions.join(", "),
                scope.region
            ),
        );
        return Admission::Refused(label, fail(e, Some(service)));
    }
    let Some((route, params)) = find_route(service, &parts.method, parts.uri.path()) else {
        return Admission::Refused(label, fail(ApiError::unknown_operation(), Some(service)));
    };
    label = format!(
        "{} {} {}",
        service.signing_name(),
        scope.region,
        route.operation
    );
    *shared
        .calls()
        .entry(format!("{}:{}", service.signing_name(), route.operation))
        .or_default() += 1;

    if service == Service::Panorama && config.quotas == QuotaMode::Aws {
        let admitted = shared
            .quotas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(
                shared.account_id(scope.account),
                &scope.region,
                route.operation == "CreateJobForDevices",
                Instant::now(),
            );
        if !admitted {
            *shared
                .throttled()
                .entry(format!("{}:{}", service.signing_name(), route.operation))
                .or_default() += 1;
            return Admission::Refused(label, fail(ApiError::throttled(), Some(service)));
        }
    }

    // Targeted rules count only from here on: a throttled call must not shift their count.
    let (fault, hold) = decide_fault(shared, service, route);
    Admission::Admitted(Admitted {
        label,
        account: scope.account,
        region: scope.region,
        service,
        operation: route.operation,
        params,
        fault,
        hold,
    })
}

/// Carries out an admitted call under the world lock, with its fault, and logs it.
fn execute(
    shared: &Shared,
    call: Admitted,
    query: Option<&str>,
    body: &[u8],
    request_id: &str,
    started: Instant,
) -> Outcome {
    let outcome = carry_out(shared, &call, query, body, request_id);
    log(shared, &call.label, &outcome.status(), started);
    outcome
}

fn carry_out(
    shared: &Shared,
    call: &Admitted,
    query: Option<&str>,
    body: &[u8],
    request_id: &str,
) -> Outcome {
    let service = call.service;
    let fail = |e: ApiError| Outcome::Answer(e.into_response(Some(service), request_id));
    if call.fault == Fault::FailBefore {
        return fail(ApiError::internal());
    }
    let request = match ApiRequest::parse(call.params.clone(), query, body) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let result = {
        let mut world = shared.world();
        run(
            &mut world,
            &shared.config,
            call.account,
            &call.region,
            service,
            call.operation,
            &request,
        )
    };
    match (result, call.fault) {
        (_, Fault::Drop) => Outcome::Drop,
        (Ok(_), Fault::FailAfter) => fail(ApiError::internal()),
        (Ok(value), _) => Outcome::Answer(json_response(StatusCode::OK, &value, request_id)),
        (Err(e), _) => fail(e),
    }
}

fn roll(shared: &Shared) -> f64 {
    shared
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .random::<f64>()
}

/// The random faults' roll, then the targeted rules, which take precedence; the roll is made
/// either way so that adding a rule leaves the random faults of other calls unchanged.
fn decide_fault(shared: &Shared, service: Service, route: &Route) -> (Fault, Duration) {
    let random = random_fault(shared, route.mutating);
    let drawn = shared.targeted().on_call(service, route.operation);
    let fault = match drawn.outcome {
        Some(TargetedFault::FailBefore) => Fault::FailBefore,
        Some(TargetedFault::FailAfter) => Fault::FailAfter,
        Some(TargetedFault::DropAfter) => Fault::Drop,
        Some(TargetedFault::Delay(_)) | None => random,
    };
    (fault, drawn.delay)
}

fn random_fault(shared: &Shared, mutating: bool) -> Fault {
    let config = &shared.config;
    let mut rng = shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
    if config.error_rate > 0.0 && rng.random::<f64>() < config.error_rate {
        // Half of the failures of a mutating call happen after it took effect.
        return if mutating && rng.random_bool(0.5) {
            Fault::FailAfter
        } else {
            Fault::FailBefore
        };
    }
    if config.drop_rate > 0.0 && rng.random::<f64>() < config.drop_rate {
        return Fault::Drop;
    }
    Fault::None
}

fn run(
    world: &mut World,
    config: &SimConfig,
    account: usize,
    region: &str,
    service: Service,
    operation: &str,
    req: &ApiRequest,
) -> ApiResult {
    let now = world.clock.now();
    let World {
        rng,
        ledger,
        accounts,
        ..
    } = world;
    let Some(account) = accounts.get_mut(account) else {
        return Err(ApiError::internal());
    };
    let Some(fleet) = account.regions.get_mut(region) else {
        return Err(ApiError::internal());
    };
    fleet.panorama.advance(now);
    fleet.snow.advance(now);
    let mut ctx = Ctx {
        now,
        account: &account.id,
        region,
        rng,
        ledger,
        busy_conflicts: config.busy_conflicts,
    };
    match (service, operation) {
        (Service::Panorama, "ListDevices") => {
            fleet
                .panorama
                .list_devices(req, now, config.stale_reads.as_secs_f64())
        }
        (Service::Panorama, "DescribeDevice") => fleet.panorama.describe_device(req, now),
        (Service::Panorama, "CreateJobForDevices") => fleet.panorama.create_job(req, &mut ctx),
        (Service::Panorama, "ListDevicesJobs") => fleet.panorama.list_jobs(req),
        (Service::Panorama, "DescribeDeviceJob") => fleet.panorama.describe_job(req, now),
        (Service::Panorama, "ListApplicationInstances") => {
            fleet.apps.list(&fleet.panorama, req, now)
        }
        (Service::Panorama, "DescribeApplicationInstance") => {
            fleet.apps.describe(&fleet.panorama, req, now)
        }
        (Service::Snow, "ListDevices") => fleet.snow.list_devices(req),
        (Service::Snow, "DescribeDevice") => fleet.snow.describe_device(req, now),
        (Service::Snow, "CreateTask") => fleet.snow.create_task(req, &mut ctx),
        (Service::Snow, "DescribeTask") => fleet.snow.describe_task(req, now),
        (Service::Snow, "ListTasks") => fleet.snow.list_tasks(req, now),
        (Service::Snow, "ListExecutions") => fleet.snow.list_executions(req, now),
        (Service::Snow, "DescribeExecution") => fleet.snow.describe_execution(req, now),
        (Service::Snow, "CancelTask") => fleet.snow.cancel_task(req, &mut ctx),
        _ => Err(ApiError::unknown_operation()),
    }
}

/// Test and operator endpoints, plainly outside the AWS APIs and unsigned.
fn admin(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Response<Full<Bytes>> {
    let (method, path) = (&parts.method, parts.uri.path());
    match (method, path) {
        (&Method::GET, "/_fleetdeck/ledger") => {
            let world = shared.world();
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "entries": world.ledger.entries() }),
                request_id,
            )
        }
        (&Method::GET, "/_fleetdeck/calls") => json_response(
            StatusCode::OK,
            &serde_json::json!({ "calls": *shared.calls(), "throttled": *shared.throttled() }),
            request_id,
        ),
        (&Method::GET, "/_fleetdeck/faults") => {
            let faults: Vec<serde_json::Value> = shared
                .targeted()
                .statuses()
                .iter()
                .map(faults::to_json)
                .collect();
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "faults": faults }),
                request_id,
            )
        }
        (&Method::POST, "/_fleetdeck/faults") => match faults::from_json(body) {
            Ok(rule) => {
                let shown = faults::to_json(&FaultStatus {
                    rule: rule.clone(),
                    hit: false,
                });
                shared.targeted().add(rule);
                json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "fault": shown }),
                    request_id,
                )
            }
            Err(message) => ApiError::validation(message).into_response(None, request_id),
        },
        (&Method::POST, "/_fleetdeck/clock/advance") => {
            let seconds = parts
                .uri
                .query()
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "seconds"))
                .and_then(|(_, v)| v.parse::<f64>().ok());
            let Some(seconds) = seconds else {
                return ApiError::validation(
                    "give ?seconds=N, a positive number of simulated seconds",
                )
                .into_response(None, request_id);
            };
            let mut world = shared.world();
            if let Err(e) = world.clock.advance(seconds) {
                return ApiError::validation(e).into_response(None, request_id);
            }
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "now": world.clock.now() }),
                request_id,
            )
        }
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no such endpoint: {method} {path}"),
        )
        .into_response(None, request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_service_method_and_path() {
        let (r, p) =
            find_route(Service::Snow, &Method::POST, "/task/task-1/execution/smd-2").unwrap();
        assert_eq!(r.operation, "DescribeExecution");
        assert_eq!(p, vec!["task-1", "smd-2"]);
        let (r, _) = find_route(Service::Snow, &Method::POST, "/task/task-1/cancel").unwrap();
        assert_eq!(r.operation, "CancelTask");
        let (r, p) = find_route(Service::Panorama, &Method::GET, "/devices/device-a%2Db").unwrap();
        assert_eq!(r.operation, "DescribeDevice");
        assert_eq!(p, vec!["device-a-b"]);
        // The same path belongs to one service only.
        assert!(find_route(Service::Snow, &Method::GET, "/devices").is_none());
        assert!(find_route(Service::Panorama, &Method::DELETE, "/jobs").is_none());
    }
}
