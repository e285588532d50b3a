//! AWS Snow Device Management's device, task and execution operations, from the 2021-08-04
//! API model.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::check::{ApiRequest, Checker, serialization};
use super::state::{Ctx, LedgerEntry, Page, Timeline, jitter, random_id};
use super::wire::{ApiError, ApiResult, Service, epoch, object, opt_str};

static TOKEN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[!-~]+$").expect("static pattern"));
static DESCRIPTION_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9 _.,!#]*$").expect("static pattern"));
static NEXT_TOKEN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9+/=]*$").expect("static pattern"));

const TASK_STATES: &[&str] = &["IN_PROGRESS", "CANCELED", "COMPLETED"];
const EXECUTION_STATES: &[&str] = &[
    "QUEUED",
    "IN_PROGRESS",
    "CANCELED",
    "FAILED",
    "SUCCEEDED",
    "REJECTED",
    "TIMED_OUT",
];
const COMMANDS: &[&str] = &["reboot", "unlock"];
const PAGE_SIZE: i64 = 100;

/// Nominal lengths in simulated seconds; each execution's are spread by ±20%.
const QUEUED_FOR: f64 = 5.0;
const RUNS_FOR: f64 = 30.0;
/// How long an execution waits for an unreachable device before it times out.
const TIMEOUT_AFTER: f64 = 120.0;

#[derive(Debug, Clone)]
pub struct Capacity {
    pub name: String,
    pub unit: String,
    pub total: i64,
    pub used: i64,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub arn: String,
    pub device_type: String,
    /// LOCKED or UNLOCKED; UNLOCKING is derived from a running unlock execution.
    pub state: String,
    pub reachable: bool,
    pub software: String,
    pub job: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub capacities: Vec<Capacity>,
    pub ip: String,
    pub mac: String,
    pub last_reached_out: f64,
    pub last_updated: f64,
    /// The task and execution this device is busy with, until that execution ends.
    current: Option<(usize, usize)>,
}

impl Device {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        arn: String,
        device_type: String,
        state: String,
        reachable: bool,
        software: String,
        job: Option<String>,
        tags: BTreeMap<String, String>,
        capacities: Vec<Capacity>,
        ip: String,
        mac: String,
        last_reached_out: f64,
    ) -> Self {
        Self {
            id,
            arn,
            device_type,
            state,
            reachable,
            software,
            job,
            tags,
            capacities,
            ip,
            mac,
            last_reached_out,
            last_updated: last_reached_out,
            current: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Execution {
    id: String,
    device: usize,
    timeline: Timeline,
    applied: bool,
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    arn: String,
    command: &'static str,
    description: Option<String>,
    tags: BTreeMap<String, String>,
    targets: Vec<String>,
    created: f64,
    fingerprint: u64,
    executions: Vec<Execution>,
}

impl Task {
    fn ended_at(&self, t: f64) -> bool {
        self.executions.iter().all(|e| e.timeline.ended_at(t))
    }

    fn state_at(&self, t: f64) -> &'static str {
        if !self.ended_at(t) {
            "IN_PROGRESS"
        } else if self
            .executions
            .iter()
            .any(|e| e.timeline.final_state() == "CANCELED")
        {
            "CANCELED"
        } else {
            "COMPLETED"
        }
    }

    fn completed_at(&self, t: f64) -> Option<f64> {
        self.ended_at(t).then(|| {
            self.executions
                .iter()
                .map(|e| e.timeline.end())
                .fold(self.created, f64::max)
        })
    }

    fn last_updated_at(&self, t: f64) -> f64 {
        self.executions
            .iter()
            .map(|e| e.timeline.changed_at(t))
            .fold(self.created, f64::max)
    }
}

/// One account's managed Snow devices and tasks in one region.
#[derive(Debug)]
pub struct Snow {
    account: String,
    devices: Vec<Device>,
    by_id: HashMap<String, usize>,
    tasks: Vec<Task>,
    task_by_id: HashMap<String, usize>,
    by_token: HashMap<String, usize>,
    /// Tasks with executions whose end has not been applied to their device yet.
    active: Vec<usize>,
}

impl Snow {
    pub fn new(account: String, devices: Vec<Device>) -> Self {
        let by_id = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Self {
            account,
            devices,
            by_id,
            tasks: Vec::new(),
            task_by_id: HashMap::new(),
            by_token: HashMap::new(),
            active: Vec::new(),
        }
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub fn device_ids(&self) -> impl Iterator<Item = &str> {
        self.devices.iter().map(|d| d.id.as_str())
    }

    /// Applies every execution that has ended by `now` to its device.
    pub fn advance(&mut self, now: f64) {
        let tasks = &mut self.tasks;
        let devices = &mut self.devices;
        self.active.retain(|&t| {
            let task = &mut tasks[t];
            for (e, exec) in task.executions.iter_mut().enumerate() {
                if exec.applied || !exec.timeline.ended_at(now) {
                    continue;
                }
                exec.applied = true;
                let device = &mut devices[exec.device];
                if device.current == Some((t, e)) {
                    device.current = None;
                }
                if exec.timeline.final_state() == "SUCCEEDED" {
                    device.last_reached_out = exec.timeline.end();
                    device.last_updated = exec.timeline.end();
                    if task.command == "unlock" {
                        device.state = "UNLOCKED".into();
                    }
                }
            }
            !task.executions.iter().all(|e| e.applied)
        });
    }

    fn device_state(&self, d: &Device, now: f64) -> String {
        match d.current {
            Some((t, e))
                if self.tasks[t].command == "unlock"
                    && self.tasks[t].executions[e].timeline.state_at(now) == "IN_PROGRESS" =>
            {
                "UNLOCKING".into()
            }
            _ => d.state.clone(),
        }
    }

    fn device(&self, id: &str) -> ApiResult<usize> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::not_found(format!("Managed device {id} not found")))
    }

    fn task(&self, id: &str) -> ApiResult<usize> {
        self.task_by_id
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::not_found(format!("Task {id} not found")))
    }

    pub fn list_devices(&self, req: &ApiRequest) -> ApiResult {
        let job = req.query("jobId");
        let max = req.query_int("maxResults")?;
        let token = req.query("nextToken");
        let mut c = Checker::default();
        if let Some(j) = job {
            c.length("jobId", j, 1, 64);
        }
        check_paging(&mut c, max, token);
        c.finish(Service::Snow)?;
        let rows: Vec<&Device> = self
            .devices
            .iter()
            .filter(|d| job.is_none_or(|j| d.job.as_deref() == Some(j)))
            .collect();
        let page = Page::new(("ListDevices", job), token, page_size(max))?;
        let (rows, next) = page.cut(rows)?;
        let devices: Vec<Value> = rows
            .iter()
            .map(|d| {
                object([
                    ("associatedWithJob", opt_str(&d.job)),
                    ("managedDeviceArn", d.arn.clone().into()),
                    ("managedDeviceId", d.id.clone().into()),
                    ("tags", json!(d.tags)),
                ])
            })
            .collect();
        Ok(object([
            ("devices", devices.into()),
            ("nextToken", next.into()),
        ]))
    }

    pub fn describe_device(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        c.length("managedDeviceId", id, 1, 64);
        c.finish(Service::Snow)?;
        let d = &self.devices[self.device(id)?];
        let capacities: Vec<Value> = d
            .capacities
            .iter()
            .map(|c| {
                json!({ "name": c.name, "unit": c.unit, "total": c.total, "used": c.used, "available": c.total - c.used })
            })
            .collect();
        Ok(object([
            ("associatedWithJob", opt_str(&d.job)),
            ("deviceCapacities", capacities.into()),
            ("deviceState", self.device_state(d, now).into()),
            ("deviceType", d.device_type.clone().into()),
            ("lastReachedOutAt", epoch(d.last_reached_out)),
            ("lastUpdatedAt", epoch(d.last_updated)),
            ("managedDeviceArn", d.arn.clone().into()),
            ("managedDeviceId", d.id.clone().into()),
            (
                "physicalNetworkInterfaces",
                json!([{
                    "physicalNetworkInterfaceId": format!("s.ni-{}", d.id.get(4..).unwrap_or_default()),
                    "physicalConnectorType": "RJ45",
                    "ipAddressAssignment": "DHCP",
                    "ipAddress": d.ip,
                    "netmask": "255.255.255.0",
                    "defaultGateway": gateway(&d.ip),
                    "macAddress": d.mac,
                }]),
            ),
            (
                "software",
                json!({ "installState": "INSTALLED", "installedVersion": d.software }),
            ),
            ("tags", json!(d.tags)),
        ]))
    }

    pub fn create_task(&mut self, req: &ApiRequest, ctx: &mut Ctx) -> ApiResult {
        let TaskInput {
            token,
            description,
            targets,
            tags,
            verb,
        } = TaskInput::read(req)?;
        let fingerprint = {
            let mut h = DefaultHasher::new();
            (verb, &description, &tags, &targets).hash(&mut h);
            h.finish()
        };
        if let Some(t) = &token
            && let Some(&existing) = self.by_token.get(t)
        {
            let task = &self.tasks[existing];
            if task.fingerprint != fingerprint {
                return Err(ApiError::validation(format!(
                    "clientToken {t} was already used for task {} with different parameters",
                    task.id
                )));
            }
            return Ok(json!({ "taskId": task.id, "taskArn": task.arn }));
        }
        let devices = targets
            .iter()
            .map(|id| self.device(id))
            .collect::<ApiResult<Vec<_>>>()?;

        let task_index = self.tasks.len();
        let task_id = random_id(ctx.rng, "task-", 20);
        let arn = format!(
            "arn:aws:snow-device-management:{}:{}:task/{task_id}",
            ctx.region, self.account
        );
        let mut executions = Vec::with_capacity(devices.len());
        for (e, &d) in devices.iter().enumerate() {
            executions.push(self.start_execution(ctx, (task_index, e), d));
            ctx.ledger.record(LedgerEntry {
                seq: 0,
                account: ctx.account.to_string(),
                region: ctx.region.to_string(),
                service: Service::Snow,
                operation: "CreateTask",
                device_id: self.devices[d].id.clone(),
                resource_id: task_id.clone(),
                action: verb.to_string(),
                client_token: token.clone(),
                at: ctx.now,
            });
        }
        self.tasks.push(Task {
            id: task_id.clone(),
            arn: arn.clone(),
            command: verb,
            description,
            tags,
            targets,
            created: ctx.now,
            fingerprint,
            executions,
        });
        self.task_by_id.insert(task_id.clone(), task_index);
        if let Some(t) = token {
            self.by_token.insert(t, task_index);
        }
        self.active.push(task_index);
        Ok(json!({ "taskId": task_id, "taskArn": arn }))
    }

    /// Device `d`'s execution of a new task: REJECTED at once while its execution of another
    /// task has not ended, QUEUED until it times out when the device is unreachable, else
    /// QUEUED, IN_PROGRESS, SUCCEEDED.
    fn start_execution(&mut self, ctx: &mut Ctx, at: (usize, usize), d: usize) -> Execution {
        let now = ctx.now;
        let busy = self.devices[d]
            .current
            .is_some_and(|(t, x)| !self.tasks[t].executions[x].timeline.ended_at(now));
        let timeline = if busy {
            Timeline::build(now, "REJECTED", &[])
        } else if !self.devices[d].reachable {
            Timeline::build(now, "QUEUED", &[("TIMED_OUT", TIMEOUT_AFTER)])
        } else {
            let queued = jitter(ctx.rng, QUEUED_FOR);
            let runs = jitter(ctx.rng, RUNS_FOR);
            Timeline::build(
                now,
                "QUEUED",
                &[("IN_PROGRESS", queued), ("SUCCEEDED", runs)],
            )
        };
        if !busy {
            self.devices[d].current = Some(at);
        }
        Execution {
            id: random_id(ctx.rng, "execution-", 20),
            device: d,
            timeline,
            applied: false,
        }
    }

    pub fn describe_task(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        c.length("taskId", id, 1, 64);
        c.finish(Service::Snow)?;
        let task = &self.tasks[self.task(id)?];
        Ok(object([
            (
                "completedAt",
                task.completed_at(now).map_or(Value::Null, epoch),
            ),
            ("createdAt", epoch(task.created)),
            ("description", opt_str(&task.description)),
            ("lastUpdatedAt", epoch(task.last_updated_at(now))),
            ("state", task.state_at(now).into()),
            ("tags", json!(task.tags)),
            ("targets", json!(task.targets)),
            ("taskArn", task.arn.clone().into()),
            ("taskId", task.id.clone().into()),
        ]))
    }

    pub fn list_tasks(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let state = req.query("state");
        let max = req.query_int("maxResults")?;
        let token = req.query("nextToken");
        let mut c = Checker::default();
        if let Some(s) = state {
            c.one_of("state", s, TASK_STATES);
        }
        check_paging(&mut c, max, token);
        c.finish(Service::Snow)?;
        let rows: Vec<&Task> = self
            .tasks
            .iter()
            .filter(|t| state.is_none_or(|s| t.state_at(now) == s))
            .collect();
        let page = Page::new(("ListTasks", state), token, page_size(max))?;
        let (rows, next) = page.cut(rows)?;
        let tasks: Vec<Value> = rows
            .iter()
            .map(|t| json!({ "state": t.state_at(now), "tags": t.tags, "taskArn": t.arn, "taskId": t.id }))
            .collect();
        Ok(object([
            ("tasks", tasks.into()),
            ("nextToken", next.into()),
        ]))
    }

    pub fn list_executions(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let task_id = req.query("taskId");
        let state = req.query("state");
        let max = req.query_int("maxResults")?;
        let token = req.query("nextToken");
        let mut c = Checker::default();
        c.required("taskId", &task_id);
        if let Some(t) = task_id {
            c.length("taskId", t, 1, 64);
        }
        if let Some(s) = state {
            c.one_of("state", s, EXECUTION_STATES);
        }
        check_paging(&mut c, max, token);
        c.finish(Service::Snow)?;
        let Some(task_id) = task_id else {
            return Err(ApiError::internal());
        };
        let task = &self.tasks[self.task(task_id)?];
        let rows: Vec<&Execution> = task
            .executions
            .iter()
            .filter(|e| state.is_none_or(|s| e.timeline.state_at(now) == s))
            .collect();
        let page = Page::new(("ListExecutions", task_id, state), token, page_size(max))?;
        let (rows, next) = page.cut(rows)?;
        let executions: Vec<Value> = rows
            .iter()
            .map(|e| {
                json!({
                    "executionId": e.id,
                    "managedDeviceId": self.devices[e.device].id,
                    "state": e.timeline.state_at(now),
                    "taskId": task.id,
                })
            })
            .collect();
        Ok(object([
            ("executions", executions.into()),
            ("nextToken", next.into()),
        ]))
    }

    pub fn describe_execution(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let (task_id, device_id) = (&req.path[0], &req.path[1]);
        let mut c = Checker::default();
        c.length("taskId", task_id, 1, 64);
        c.length("managedDeviceId", device_id, 1, 64);
        c.finish(Service::Snow)?;
        let task = &self.tasks[self.task(task_id)?];
        let exec = task
            .executions
            .iter()
            .find(|e| &self.devices[e.device].id == device_id)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Task {task_id} has no execution on managed device {device_id}"
                ))
            })?;
        Ok(object([
            ("executionId", exec.id.clone().into()),
            ("lastUpdatedAt", epoch(exec.timeline.changed_at(now))),
            ("managedDeviceId", device_id.clone().into()),
            (
                "startedAt",
                exec.timeline
                    .entered("IN_PROGRESS", now)
                    .map_or(Value::Null, epoch),
            ),
            ("state", exec.timeline.state_at(now).into()),
            ("taskId", task.id.clone().into()),
        ]))
    }

    pub fn cancel_task(&mut self, req: &ApiRequest, ctx: &mut Ctx) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        c.length("taskId", id, 1, 64);
        c.finish(Service::Snow)?;
        let t = self.task(id)?;
        let now = ctx.now;
        let task = &mut self.tasks[t];
        let mut canceled = 0;
        for exec in task
            .executions
            .iter_mut()
            .filter(|e| e.timeline.state_at(now) == "QUEUED")
        {
            exec.timeline.cut(now, "CANCELED");
            canceled += 1;
            ctx.ledger.record(LedgerEntry {
                seq: 0,
                account: ctx.account.to_string(),
                region: ctx.region.to_string(),
                service: Service::Snow,
                operation: "CancelTask",
                device_id: self.devices[exec.device].id.clone(),
                resource_id: task.id.clone(),
                action: "cancel".into(),
                client_token: None,
                at: now,
            });
        }
        if canceled == 0 {
            return Err(ApiError::validation(format!(
                "Task {id} has no queued executions to cancel (task state {})",
                task.state_at(now)
            )));
        }
        Ok(json!({ "taskId": task.id }))
    }
}

fn page_size(max: Option<i64>) -> usize {
    max.map_or(PAGE_SIZE as usize, |m| m.max(1) as usize)
}

fn check_paging(c: &mut Checker, max: Option<i64>, token: Option<&str>) {
    if let Some(m) = max {
        c.range("maxResults", m, 1, 100);
    }
    if let Some(t) = token {
        c.length("nextToken", t, 1, 1024);
        c.pattern("nextToken", t, &NEXT_TOKEN_RE, "[a-zA-Z0-9+/=]*");
    }
}

fn gateway(ip: &str) -> String {
    match ip.rsplit_once('.') {
        Some((net, _)) => format!("{net}.1"),
        None => ip.to_string(),
    }
}

/// A CreateTask request, read and checked against the model's constraints.
struct TaskInput {
    token: Option<String>,
    description: Option<String>,
    targets: Vec<String>,
    tags: BTreeMap<String, String>,
    verb: &'static str,
}

impl TaskInput {
    fn read(req: &ApiRequest) -> ApiResult<Self> {
        let token = req.body_str("clientToken")?;
        let description = req.body_str("description")?;
        let targets = req.body_list_of_str("targets")?;
        let tags = req.body_map_of_str("tags")?;
        let command = req.body_object("command")?;

        let mut c = Checker::default();
        if let Some(t) = &token {
            c.length("clientToken", t, 1, 64);
            c.pattern("clientToken", t, &TOKEN_RE, "[!-~]+");
        }
        if let Some(d) = &description {
            c.length("description", d, 1, 128);
            c.pattern("description", d, &DESCRIPTION_RE, "[A-Za-z0-9 _.,!#]*");
        }
        c.required("targets", &targets);
        if let Some(t) = &targets {
            c.count("targets", t.len(), 1, 10);
            let mut seen = std::collections::HashSet::new();
            if t.iter().any(|id| !seen.insert(id)) {
                c.rule("targets", "Value at 'targets' failed to satisfy constraint: Member must not contain duplicates");
            }
        }
        if let Some(t) = &tags {
            c.tags("tags", t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        c.required("command", &command);
        let verb = match command {
            Some(cmd) => command_verb(cmd, &mut c)?,
            None => None,
        };
        c.finish(Service::Snow)?;
        let (Some(targets), Some(verb)) = (targets, verb) else {
            return Err(ApiError::internal());
        };
        Ok(Self {
            token,
            description,
            targets,
            tags: tags.unwrap_or_default().into_iter().collect(),
            verb,
        })
    }
}

/// The one command a task's `command` union sets, or the rule it breaks.
fn command_verb(
    cmd: &serde_json::Map<String, serde_json::Value>,
    c: &mut Checker,
) -> ApiResult<Option<&'static str>> {
    let set: Vec<&String> = cmd
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
        .collect();
    match set.as_slice() {
        [one] if COMMANDS.contains(&one.as_str()) => {
            if !cmd[one.as_str()].is_object() {
                return Err(serialization(&format!(
                    "'command.{one}' must be a structure"
                )));
            }
            Ok(COMMANDS.iter().copied().find(|v| *v == one.as_str()))
        }
        [one] => {
            c.rule(
                "command",
                &format!("Value at 'command' failed to satisfy constraint: '{one}' is not a member of the union: [reboot, unlock]"),
            );
            Ok(None)
        }
        _ => {
            c.rule(
                "command",
                &format!("Value at 'command' failed to satisfy constraint: Union must have exactly one member set, found {}", set.len()),
            );
            Ok(None)
        }
    }
}
