//! AWS Panorama's device and job operations, from the 2019-07-24 API model.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde_json::{Value, json};

use super::check::{ApiRequest, Checker, object_member, serialization};
use super::state::{Ctx, LedgerEntry, Page, Timeline, jitter, major, random_id, version_key};
use super::wire::{ApiError, ApiResult, Service, epoch, object, opt_str};

const ID_PATTERN: &str = "^[a-zA-Z0-9\\-\\_]+$";
static ID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9\-_]+$").expect("static pattern"));
static NON_EMPTY_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^.+$").expect("static pattern"));

const AGGREGATED_STATUSES: &[&str] = &[
    "ERROR",
    "AWAITING_PROVISIONING",
    "PENDING",
    "FAILED",
    "DELETING",
    "ONLINE",
    "OFFLINE",
    "LEASE_EXPIRED",
    "UPDATE_NEEDED",
    "REBOOTING",
];
const SORT_BY: &[&str] = &[
    "DEVICE_ID",
    "CREATED_TIME",
    "NAME",
    "DEVICE_AGGREGATED_STATUS",
];
const SORT_ORDER: &[&str] = &["ASCENDING", "DESCENDING"];
const JOB_TYPES: &[&str] = &["OTA", "REBOOT"];
const PAGE_SIZE: i64 = 25;

/// Nominal stage lengths in simulated seconds; each job's are spread by ±20%.
const OTA_STAGES: &[(&str, f64)] = &[
    ("DOWNLOADING", 15.0),
    ("VERIFYING", 180.0),
    ("IN_PROGRESS", 45.0),
    ("REBOOTING", 240.0),
    ("COMPLETED", 120.0),
];
const REBOOT_STAGES: &[(&str, f64)] = &[("REBOOTING", 15.0), ("COMPLETED", 105.0)];
/// How long a job sits PENDING before an offline device or a refused major bump fails it.
const FAIL_AFTER_PENDING: f64 = 15.0;
/// How long the download of an image the service does not know runs before it fails.
const FAIL_DOWNLOAD_AFTER: f64 = 30.0;

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub brand: String,
    pub device_type: String,
    pub serial: String,
    pub created: f64,
    pub last_updated: f64,
    pub current_software: String,
    pub online: bool,
    pub provisioning: String,
    pub tags: BTreeMap<String, String>,
    pub ip: String,
    /// Every OTA job on this appliance fails while installing (a fleet file's `ota_fails`).
    pub ota_fails: bool,
    latest_job: Option<usize>,
    /// Unfinished jobs, oldest first: at most one unless busy conflicts are off.
    active_jobs: Vec<usize>,
    /// Every job it has had, oldest first: its applications' health follows them.
    history: Vec<usize>,
}

impl Device {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        name: String,
        arn: String,
        description: Option<String>,
        brand: String,
        device_type: String,
        serial: String,
        created: f64,
        current_software: String,
        online: bool,
        tags: BTreeMap<String, String>,
        ip: String,
    ) -> Self {
        Self {
            id,
            name,
            arn,
            description,
            brand,
            device_type,
            serial,
            created,
            last_updated: created,
            current_software,
            online,
            provisioning: "SUCCEEDED".into(),
            tags,
            ip,
            ota_fails: false,
            latest_job: None,
            active_jobs: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// What ListDevices shows of an appliance's changing state at one moment.
#[derive(Debug, Clone)]
struct Seen {
    status: &'static str,
    software: String,
    last_updated: f64,
    /// The newest job and its state at that moment.
    latest_job: Option<(usize, &'static str)>,
}

/// Every appliance as ListDevices saw it at `taken` (simulated time), for stale reads.
#[derive(Debug)]
struct Snapshot {
    taken: f64,
    seen: Vec<Seen>,
}

#[derive(Debug, Clone)]
struct Job {
    id: String,
    device: usize,
    job_type: &'static str,
    image_version: Option<String>,
    created: f64,
    timeline: Timeline,
}

/// One account's Panorama appliances and jobs in one region.
#[derive(Debug)]
pub struct Panorama {
    devices: Vec<Device>,
    by_id: HashMap<String, usize>,
    images: Vec<String>,
    /// Offered images that fail to install.
    failing: Vec<String>,
    latest: String,
    jobs: Vec<Job>,
    job_by_id: HashMap<String, usize>,
    /// Jobs whose end has not been applied to their device yet.
    active: Vec<usize>,
    /// The view stale ListDevices answers come from, when they are on.
    snapshot: Option<Snapshot>,
}

impl Panorama {
    pub fn new(devices: Vec<Device>, mut images: Vec<String>) -> Self {
        images.sort_by_key(|v| version_key(v));
        let latest = images.last().cloned().unwrap_or_default();
        let by_id = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Self {
            devices,
            by_id,
            images,
            failing: Vec::new(),
            latest,
            jobs: Vec::new(),
            job_by_id: HashMap::new(),
            active: Vec::new(),
            snapshot: None,
        }
    }

    pub fn job_end(&self, id: &str) -> Option<f64> {
        let j = *self.job_by_id.get(id)?;
        Some(self.jobs[j].timeline.end())
    }

    pub fn with_failing(mut self, failing: Vec<String>) -> Self {
        self.failing = failing;
        self
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub fn device_ids(&self) -> impl Iterator<Item = &str> {
        self.devices.iter().map(|d| d.id.as_str())
    }

    pub(super) fn device_at(&self, index: usize) -> &Device {
        &self.devices[index]
    }

    pub(super) fn device_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The appliances whose name or id is `name`: names need not be unique.
    pub(super) fn find(&self, name: &str) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| self.devices[i].name == name || self.devices[i].id == name)
            .collect()
    }

    /// An appliance's jobs, oldest first: (job type, image version, timeline).
    pub(super) fn jobs_on(
        &self,
        device: usize,
    ) -> impl Iterator<Item = (&'static str, Option<&str>, &Timeline)> {
        self.devices[device].history.iter().map(|&j| {
            let job = &self.jobs[j];
            (job.job_type, job.image_version.as_deref(), &job.timeline)
        })
    }

    /// Applies every job that has ended by `now` to its device.
    pub fn advance(&mut self, now: f64) {
        let jobs = &self.jobs;
        let mut ended = Vec::new();
        self.active.retain(|&j| {
            let done = jobs[j].timeline.ended_at(now);
            if done {
                ended.push(j);
            }
            !done
        });
        // In the order they ended: of two jobs on one appliance, the later end has the last word.
        ended.sort_by(|&a, &b| jobs[a].timeline.end().total_cmp(&jobs[b].timeline.end()));
        for j in ended {
            let job = &self.jobs[j];
            let device = &mut self.devices[job.device];
            if job.timeline.final_state() == "COMPLETED"
                && let Some(v) = &job.image_version
            {
                device.current_software = v.clone();
            }
            device.last_updated = job.timeline.end();
            device.active_jobs.retain(|&a| a != j);
        }
    }

    fn aggregated_status(&self, d: &Device, now: f64) -> &'static str {
        if d.provisioning != "SUCCEEDED" {
            return "ERROR";
        }
        if !d.online {
            return "OFFLINE";
        }
        // With concurrent jobs, any of them rebooting the appliance makes it REBOOTING.
        if d.active_jobs
            .iter()
            .any(|&j| self.jobs[j].timeline.state_at(now) == "REBOOTING")
        {
            return "REBOOTING";
        }
        if d.current_software != self.latest {
            return "UPDATE_NEEDED";
        }
        "ONLINE"
    }

    fn seen(&self, d: &Device, now: f64) -> Seen {
        Seen {
            status: self.aggregated_status(d, now),
            software: d.current_software.clone(),
            last_updated: d.last_updated,
            latest_job: d
                .latest_job
                .map(|j| (j, self.jobs[j].timeline.state_at(now))),
        }
    }

    fn latest_job_json(&self, seen: &Seen) -> Value {
        seen.latest_job.map_or(Value::Null, |(j, state)| {
            let job = &self.jobs[j];
            object([
                ("ImageVersion", opt_str(&job.image_version)),
                ("JobType", job.job_type.into()),
                ("Status", state.into()),
            ])
        })
    }

    fn device_summary(&self, d: &Device, seen: &Seen) -> Value {
        object([
            ("Brand", d.brand.clone().into()),
            ("CreatedTime", epoch(d.created)),
            ("CurrentSoftware", seen.software.clone().into()),
            ("Description", opt_str(&d.description)),
            ("DeviceAggregatedStatus", seen.status.into()),
            ("DeviceId", d.id.clone().into()),
            ("LastUpdatedTime", epoch(seen.last_updated)),
            ("LatestDeviceJob", self.latest_job_json(seen)),
            ("Name", d.name.clone().into()),
            ("ProvisioningStatus", d.provisioning.clone().into()),
            ("Tags", json!(d.tags)),
            ("Type", d.device_type.clone().into()),
        ])
    }

    fn device(&self, id: &str) -> ApiResult<usize> {
        self.by_id.get(id).copied().ok_or_else(|| {
            ApiError::not_found(format!("Device {id} not found"))
                .with("ResourceId", id)
                .with("ResourceType", "device")
        })
    }

    /// `stale` > 0 answers from a snapshot taken at most that many simulated seconds ago:
    /// the first call takes one, and it is renewed by the first call after it has aged.
    pub fn list_devices(&mut self, req: &ApiRequest, now: f64, stale: f64) -> ApiResult {
        let status = req.query("DeviceAggregatedStatusFilter");
        let name = req.query("NameFilter");
        let sort_by = req.query("SortBy").unwrap_or("CREATED_TIME");
        let order = req.query("SortOrder").unwrap_or("ASCENDING");
        let max = req.query_int("MaxResults")?;
        let token = req.query("NextToken");
        let mut c = Checker::default();
        if let Some(s) = status {
            c.one_of("deviceAggregatedStatusFilter", s, AGGREGATED_STATUSES);
        }
        c.one_of("sortBy", sort_by, SORT_BY);
        c.one_of("sortOrder", order, SORT_ORDER);
        if let Some(m) = max {
            c.range("maxResults", m, 0, 25);
        }
        check_token(&mut c, token);
        c.finish(Service::Panorama)?;

        if stale > 0.0
            && self
                .snapshot
                .as_ref()
                .is_none_or(|s| now - s.taken >= stale)
        {
            let seen = self.devices.iter().map(|d| self.seen(d, now)).collect();
            self.snapshot = Some(Snapshot { taken: now, seen });
        }
        let snapshot = self.snapshot.as_ref().filter(|_| stale > 0.0);
        let status_of = |i: usize| match snapshot {
            Some(s) => s.seen[i].status,
            None => self.aggregated_status(&self.devices[i], now),
        };

        let mut rows: Vec<(usize, &'static str)> = (0..self.devices.len())
            .map(|i| (i, status_of(i)))
            .filter(|&(i, s)| {
                status.is_none_or(|f| f == s)
                    && name.is_none_or(|n| self.devices[i].name.starts_with(n))
            })
            .collect();
        rows.sort_by(|&(a, sa), &(b, sb)| {
            let (a, b) = (&self.devices[a], &self.devices[b]);
            let primary = match sort_by {
                "DEVICE_ID" => a.id.cmp(&b.id),
                "NAME" => a.name.cmp(&b.name),
                "DEVICE_AGGREGATED_STATUS" => sa.cmp(sb),
                _ => a.created.total_cmp(&b.created),
            };
            primary.then_with(|| a.id.cmp(&b.id))
        });
        if order == "DESCENDING" {
            rows.reverse();
        }
        let page = Page::new(
            ("ListDevices", status, name, sort_by, order),
            token,
            page_size(max),
        )?;
        let (rows, next) = page.cut(rows)?;
        let devices: Vec<Value> = rows
            .iter()
            .map(|&(i, _)| {
                let d = &self.devices[i];
                match snapshot {
                    Some(s) => self.device_summary(d, &s.seen[i]),
                    None => self.device_summary(d, &self.seen(d, now)),
                }
            })
            .collect();
        Ok(object([
            ("Devices", devices.into()),
            ("NextToken", next.into()),
        ]))
    }

    pub fn describe_device(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        check_id(&mut c, "deviceId", id);
        c.finish(Service::Panorama)?;
        let d = &self.devices[self.device(id)?];
        let seen = self.seen(d, now);
        // A rebooting appliance is not connected until it is back.
        let connection = if d.online && seen.status != "REBOOTING" {
            "ONLINE"
        } else {
            "OFFLINE"
        };
        let link = if d.online {
            "CONNECTED"
        } else {
            "NOT_CONNECTED"
        };
        let mut out = self.device_summary(d, &seen);
        // Every image newer than the installed one, other than the latest, is on offer too.
        let alternates: Vec<Value> = self
            .images
            .iter()
            .filter(|v| **v != self.latest)
            .filter(|v| version_key(v) > version_key(&d.current_software))
            .map(|v| json!({ "Version": v }))
            .collect();
        let extra = object([
            ("AlternateSoftwares", Value::Array(alternates)),
            ("Arn", d.arn.clone().into()),
            (
                "CurrentNetworkingStatus",
                json!({
                    "Ethernet0Status": { "ConnectionStatus": link, "IpAddress": d.ip, "HwAddress": hw_address(&d.serial) },
                    "Ethernet1Status": { "ConnectionStatus": "NOT_CONNECTED" },
                    "LastUpdatedTime": epoch(d.last_updated),
                    "NtpStatus": { "ConnectionStatus": link, "NtpServerName": "0.pool.ntp.org" },
                }),
            ),
            ("DeviceConnectionStatus", connection.into()),
            ("LatestSoftware", self.latest.clone().into()),
            (
                "NetworkingConfiguration",
                json!({ "Ethernet0": { "ConnectionType": "DHCP" }, "Ethernet1": { "ConnectionType": "DHCP" } }),
            ),
            ("SerialNumber", d.serial.clone().into()),
        ]);
        if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
            out.extend(extra);
            // ListDevices' Device has no LeaseExpirationTime for appliances; neither does this.
        }
        Ok(out)
    }

    pub fn create_job(&mut self, req: &ApiRequest, ctx: &mut Ctx) -> ApiResult {
        let ids = req.body_list_of_str("DeviceIds")?;
        let job_type = req.body_str("JobType")?;
        let config = req.body_object("DeviceJobConfig")?;
        let ota = config
            .map(|c| object_member(c, "OTAJobConfig"))
            .transpose()?
            .flatten();
        let image = match ota.and_then(|o| o.get("ImageVersion")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(serialization("'ImageVersion' must be a string")),
        };
        let allow_major = match ota.and_then(|o| o.get("AllowMajorVersionUpdate")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(serialization("'AllowMajorVersionUpdate' must be a boolean")),
        };

        let mut c = Checker::default();
        c.required("deviceIds", &ids);
        if let Some(ids) = &ids {
            c.count("deviceIds", ids.len(), 1, 1);
            for (i, id) in ids.iter().enumerate() {
                check_id(&mut c, &format!("deviceIds.{}.member", i + 1), id);
            }
        }
        c.required("jobType", &job_type);
        if let Some(t) = &job_type {
            c.one_of("jobType", t, JOB_TYPES);
        }
        if ota.is_some() {
            c.required("deviceJobConfig.oTAJobConfig.imageVersion", &image);
        }
        if let Some(v) = &image {
            c.length("deviceJobConfig.oTAJobConfig.imageVersion", v, 1, 255);
            c.pattern(
                "deviceJobConfig.oTAJobConfig.imageVersion",
                v,
                &NON_EMPTY_RE,
                "^.+$",
            );
        }
        if job_type.as_deref() == Some("OTA") && image.is_none() && ota.is_none() {
            c.rule(
                "deviceJobConfig.oTAJobConfig",
                "An OTA job requires DeviceJobConfig.OTAJobConfig with an ImageVersion",
            );
        }
        c.finish(Service::Panorama)?;
        let (Some(ids), Some(job_type)) = (ids, job_type) else {
            return Err(ApiError::internal());
        };

        let device_index = self.device(&ids[0])?;
        let device = &self.devices[device_index];
        if ctx.busy_conflicts
            && let Some(&active) = device.active_jobs.last()
        {
            let job = &self.jobs[active];
            return Err(ApiError::conflict(format!(
                "Device {} already has a job in progress: {} ({}, {})",
                device.id,
                job.id,
                job.job_type,
                job.timeline.state_at(ctx.now)
            ))
            .with("ResourceId", device.id.clone())
            .with("ResourceType", "device"));
        }

        let (job_type, image) = if job_type == "OTA" {
            ("OTA", image)
        } else {
            ("REBOOT", None)
        };
        let timeline = self.plan_job(device, job_type, image.as_deref(), allow_major, ctx);
        let job_id = random_id(ctx.rng, "job-", 26);
        let job = self.jobs.len();
        self.jobs.push(Job {
            id: job_id.clone(),
            device: device_index,
            job_type,
            image_version: image.clone(),
            created: ctx.now,
            timeline,
        });
        self.job_by_id.insert(job_id.clone(), job);
        self.active.push(job);
        let device = &mut self.devices[device_index];
        device.latest_job = Some(job);
        device.active_jobs.push(job);
        device.history.push(job);
        ctx.ledger.record(LedgerEntry {
            seq: 0,
            account: ctx.account.to_string(),
            region: ctx.region.to_string(),
            service: Service::Panorama,
            operation: "CreateJobForDevices",
            device_id: device.id.clone(),
            resource_id: job_id.clone(),
            action: job_type.to_string(),
            client_token: None,
            at: ctx.now,
        });
        Ok(json!({ "Jobs": [{ "DeviceId": device.id, "JobId": job_id }] }))
    }

    /// The rules a job follows; the README's simulator section states them.
    fn plan_job(
        &self,
        d: &Device,
        job_type: &str,
        image: Option<&str>,
        allow_major: bool,
        ctx: &mut Ctx,
    ) -> Timeline {
        let now = ctx.now;
        let fail_pending = || Timeline::build(now, "PENDING", &[("FAILED", FAIL_AFTER_PENDING)]);
        if !d.online {
            return fail_pending();
        }
        let stages = if job_type == "REBOOT" {
            REBOOT_STAGES
        } else {
            OTA_STAGES
        };
        let Some(image) = image else {
            return spread(now, stages, ctx.rng);
        };
        if major(image) > major(&d.current_software) && !allow_major {
            return fail_pending();
        }
        if !self.images.iter().any(|v| v == image) {
            let pending = jitter(ctx.rng, OTA_STAGES[0].1);
            return Timeline::build(
                now,
                "PENDING",
                &[("DOWNLOADING", pending), ("FAILED", FAIL_DOWNLOAD_AFTER)],
            );
        }
        if d.ota_fails || self.failing.iter().any(|v| v == image) {
            // Downloaded and verified, then the install fails: the appliance keeps its image.
            let mut failing = OTA_STAGES[..3].to_vec();
            failing.push(("FAILED", OTA_STAGES[2].1));
            return spread(now, &failing, ctx.rng);
        }
        spread(now, stages, ctx.rng)
    }

    pub fn list_jobs(&self, req: &ApiRequest) -> ApiResult {
        let device = req.query("DeviceId");
        let max = req.query_int("MaxResults")?;
        let token = req.query("NextToken");
        let mut c = Checker::default();
        if let Some(d) = device {
            check_id(&mut c, "deviceId", d);
        }
        if let Some(m) = max {
            c.range("maxResults", m, 0, 25);
        }
        check_token(&mut c, token);
        c.finish(Service::Panorama)?;
        let only = device.map(|d| self.device(d)).transpose()?;
        // Oldest first: new jobs append, so a token taken earlier still points at the same rows.
        let jobs: Vec<&Job> = self
            .jobs
            .iter()
            .filter(|j| only.is_none_or(|d| j.device == d))
            .collect();
        let page = Page::new(("ListDevicesJobs", device), token, page_size(max))?;
        let (jobs, next) = page.cut(jobs)?;
        let rows: Vec<Value> = jobs
            .iter()
            .map(|j| {
                let d = &self.devices[j.device];
                json!({
                    "CreatedTime": epoch(j.created),
                    "DeviceId": d.id,
                    "DeviceName": d.name,
                    "JobId": j.id,
                    "JobType": j.job_type,
                })
            })
            .collect();
        Ok(object([
            ("DeviceJobs", rows.into()),
            ("NextToken", next.into()),
        ]))
    }

    pub fn describe_job(&self, req: &ApiRequest, now: f64) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        check_id(&mut c, "jobId", id);
        c.finish(Service::Panorama)?;
        let job = self
            .job_by_id
            .get(id)
            .map(|&j| &self.jobs[j])
            .ok_or_else(|| {
                ApiError::not_found(format!("Job {id} not found"))
                    .with("ResourceId", id.clone())
                    .with("ResourceType", "job")
            })?;
        let d = &self.devices[job.device];
        Ok(object([
            ("CreatedTime", epoch(job.created)),
            ("DeviceArn", d.arn.clone().into()),
            ("DeviceId", d.id.clone().into()),
            ("DeviceName", d.name.clone().into()),
            ("DeviceType", d.device_type.clone().into()),
            ("ImageVersion", opt_str(&job.image_version)),
            ("JobId", job.id.clone().into()),
            ("JobType", job.job_type.into()),
            ("Status", job.timeline.state_at(now).into()),
        ]))
    }
}

fn spread(now: f64, stages: &[(&'static str, f64)], rng: &mut ChaCha8Rng) -> Timeline {
    let stages: Vec<(&'static str, f64)> =
        stages.iter().map(|&(s, d)| (s, jitter(rng, d))).collect();
    Timeline::build(now, "PENDING", &stages)
}

pub(super) fn page_size(max: Option<i64>) -> usize {
    // MaxResults may be 0 by the model; 0 asks for the default page rather than an empty one.
    match max {
        Some(m) if m > 0 => m as usize,
        _ => PAGE_SIZE as usize,
    }
}

pub(super) fn check_id(c: &mut Checker, field: &str, id: &str) {
    c.length(field, id, 1, 255);
    c.pattern(field, id, &ID_RE, ID_PATTERN);
}

pub(super) fn check_token(c: &mut Checker, token: Option<&str>) {
    if let Some(t) = token {
        c.length("nextToken", t, 1, 4096);
    }
}

fn hw_address(serial: &str) -> String {
    let digits: Vec<char> = format!("{serial:0>12}").chars().rev().take(12).collect();
    digits
        .chunks(2)
        .map(|p| p.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}
