//! AWS Panorama's application instances, from the 2019-07-24 API model: each appliance runs a
//! few computer-vision applications, listed by ListApplicationInstances and read one at a time
//! by DescribeApplicationInstance. Their health follows the appliance's jobs, so a client that
//! updates an appliance can tell whether its applications came back.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::bail;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::Account;
use super::check::{ApiRequest, Checker};
use super::panorama::{Panorama, check_id, check_token, page_size};
use super::state::Page;
use super::wire::{ApiError, ApiResult, Service, epoch, object};

/// Simulated seconds an appliance's applications take to start once it is back: a client
/// that waits only for the appliance to be ONLINE still sees them NOT_AVAILABLE a while.
pub const START_UP: f64 = 20.0;

/// Job states in which the appliance's applications are stopped: an OTA installs, then
/// reboots; a REBOOT reboots.
const DOWN: &[&str] = &["IN_PROGRESS", "REBOOTING"];

/// The model's StatusFilter values.
const STATUS_FILTERS: &[&str] = &[
    "DEPLOYMENT_SUCCEEDED",
    "DEPLOYMENT_ERROR",
    "REMOVAL_SUCCEEDED",
    "REMOVAL_FAILED",
    "PROCESSING_DEPLOYMENT",
    "PROCESSING_REMOVAL",
    "DEPLOYMENT_FAILED",
];

/// Every simulated instance was deployed and stays so: jobs change only its health.
const STATUS: &str = "DEPLOYMENT_SUCCEEDED";

/// The applications generated appliances draw from, with their descriptions; a fleet file
/// may name others.
pub const CATALOG: &[(&str, &str)] = &[
    ("people-counter", "Counts people crossing the entrance line"),
    (
        "ppe-check",
        "Flags people without a hard hat or high-visibility vest",
    ),
    ("queue-length", "Measures checkout queue length and wait"),
    ("occupancy-heatmap", "Builds an hourly floor occupancy map"),
    (
        "forklift-proximity",
        "Warns when people walk close to a moving forklift",
    ),
    ("shelf-gap-detector", "Finds empty shelf facings to restock"),
    ("spill-detection", "Spots liquid spills on the floor"),
    ("dwell-time", "Measures how long visitors stay in each zone"),
    ("defect-detection", "Flags defective parts on the line"),
    ("label-verification", "Checks package labels against orders"),
    ("license-plate-reader", "Reads plates of trucks at the gate"),
];

#[derive(Debug)]
struct Instance {
    id: String,
    name: String,
    description: String,
    arn: String,
    role_arn: String,
    /// The appliance's index in its region's Panorama fleet.
    device: usize,
    created: f64,
    tags: BTreeMap<String, String>,
}

/// One account's application instances in one region, in appliance order.
#[derive(Debug, Default)]
pub struct Apps {
    instances: Vec<Instance>,
    by_id: HashMap<String, usize>,
    /// Appliances whose applications fail to start after their next completed OTA.
    fail_after_ota: HashSet<usize>,
}

/// What an appliance's applications report at one moment.
struct Report {
    health: &'static str,
    /// The runtime context's DeviceReportedStatus.
    reported: &'static str,
    /// When this began; a RUNNING instance reports no earlier than its creation.
    since: f64,
    description: String,
}

impl Report {
    fn new(health: &'static str, reported: &'static str, since: f64, text: String) -> Self {
        Self {
            health,
            reported,
            since,
            description: text,
        }
    }
}

/// One to three different applications from the catalog, for a generated appliance.
pub fn pick(rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut names: Vec<&str> = CATALOG.iter().map(|&(n, _)| n).collect();
    let n = rng.random_range(1..=3usize);
    (0..n)
        .map(|i| {
            let j = rng.random_range(i..names.len());
            names.swap(i, j);
            names[i].to_string()
        })
        .collect()
}

fn description_of(name: &str) -> String {
    CATALOG.iter().find(|&&(n, _)| n == name).map_or_else(
        || format!("Computer vision application {name}"),
        |&(_, d)| d.into(),
    )
}

impl Apps {
    /// The instances of a region's appliances: `names[i]` are appliance i's applications.
    /// Ids and times come from `rng`, a stream of their own, so device ids and job timings
    /// are what they were before appliances had applications.
    pub fn build(
        panorama: &Panorama,
        names: &[Vec<String>],
        (region, account): (&str, &str),
        rng: &mut ChaCha8Rng,
        now: f64,
    ) -> Self {
        let mut apps = Self::default();
        for (device, names) in names.iter().enumerate() {
            let d = panorama.device_at(device);
            for name in names {
                let tail: String = (0..12)
                    .map(|_| format!("{:02x}", rng.random_range(0..=255u8)))
                    .collect();
                let id = format!("applicationInstance-{tail}");
                // Deployed some time after the appliance was registered.
                let age = (now - d.created).max(0.0);
                let created = d.created + age * rng.random_range(0.2..0.9);
                apps.by_id.insert(id.clone(), apps.instances.len());
                apps.instances.push(Instance {
                    arn: format!("arn:aws:panorama:{region}:{account}:applicationInstance/{id}"),
                    role_arn: format!("arn:aws:iam::{account}:role/PanoramaApplicationRole"),
                    id,
                    name: name.clone(),
                    description: description_of(name),
                    device,
                    created,
                    tags: BTreeMap::from([("application".to_string(), name.clone())]),
                });
            }
        }
        apps
    }

    fn count_on(&self, device: usize) -> usize {
        self.instances.iter().filter(|i| i.device == device).count()
    }

    /// The health of an appliance's applications at `now`, from its jobs: NOT_AVAILABLE while
    /// offline, installing or rebooting and for [`START_UP`] after; ERROR once an OTA has
    /// completed on an appliance marked to fail after one, until another OTA completes.
    fn report(&self, p: &Panorama, device: usize, now: f64) -> Report {
        let d = p.device_at(device);
        if !d.online {
            let text = "The appliance is offline: the application's health is not available.";
            return Report::new("NOT_AVAILABLE", "STOPPED", d.last_updated, text.into());
        }
        let mut down = None;
        let mut starting: Option<f64> = None;
        let mut settled = f64::NEG_INFINITY;
        let mut updates: Vec<(f64, &str)> = Vec::new();
        for (job_type, image, timeline) in p.jobs_on(device) {
            if let Some(v) = image
                && job_type == "OTA"
                && timeline.final_state() == "COMPLETED"
                && timeline.end() <= now
            {
                updates.push((timeline.end(), v));
            }
            let Some((start, end)) = timeline.window(DOWN) else {
                continue;
            };
            if now < start {
                continue;
            }
            if now < end {
                let doing = match (job_type, timeline.state_at(now), image) {
                    ("OTA", "IN_PROGRESS", Some(v)) => format!("is installing software {v}"),
                    ("OTA", _, Some(v)) => format!("is rebooting to finish installing {v}"),
                    _ => "is rebooting".to_string(),
                };
                down = Some((start, doing));
            } else if now < end + START_UP {
                starting = Some(starting.map_or(end, |s| s.max(end)));
            } else {
                settled = settled.max(end + START_UP);
            }
        }
        if let Some((since, doing)) = down {
            let text = format!(
                "The appliance {doing}: the application's health is not available until it starts again."
            );
            return Report::new("NOT_AVAILABLE", "STOPPED", since, text);
        }
        if let Some(since) = starting {
            let text = "The appliance is back online; the application is starting.";
            return Report::new("NOT_AVAILABLE", "STARTING", since, text.into());
        }
        updates.sort_by(|a, b| a.0.total_cmp(&b.0));
        // The first completed OTA breaks the applications; the next one installs them anew.
        if let [(_, version)] = updates[..]
            && self.fail_after_ota.contains(&device)
        {
            let text =
                format!("The application failed to start after the software update to {version}.");
            return Report::new("ERROR", "LAUNCH_ERROR", settled, text);
        }
        let text = "The application is deployed and running.";
        Report::new("RUNNING", "RUNNING", settled, text.into())
    }

    fn to_json(&self, i: &Instance, p: &Panorama, now: f64, full: bool) -> Value {
        let d = p.device_at(i.device);
        let r = self.report(p, i.device, now);
        let reported = r.since.max(i.created);
        let mut out = object([
            ("ApplicationInstanceId", i.id.clone().into()),
            ("Arn", i.arn.clone().into()),
            ("CreatedTime", epoch(i.created)),
            ("DefaultRuntimeContextDevice", d.id.clone().into()),
            ("DefaultRuntimeContextDeviceName", d.name.clone().into()),
            ("Description", i.description.clone().into()),
            ("HealthStatus", r.health.into()),
            ("Name", i.name.clone().into()),
            (
                "RuntimeContextStates",
                json!([{
                    "DesiredState": "RUNNING",
                    "DeviceReportedStatus": r.reported,
                    "DeviceReportedTime": epoch(reported),
                    "RuntimeContextName": d.name,
                }]),
            ),
            ("Status", STATUS.into()),
            ("StatusDescription", r.description.into()),
            ("Tags", json!(i.tags)),
        ]);
        if full && let Value::Object(map) = &mut out {
            map.insert("LastUpdatedTime".into(), epoch(reported));
            map.insert("RuntimeRoleArn".into(), i.role_arn.clone().into());
        }
        out
    }

    /// ListApplicationInstances. The model gives it no ResourceNotFoundException, so an
    /// unknown appliance simply has no instances.
    pub fn list(&self, p: &Panorama, req: &ApiRequest, now: f64) -> ApiResult {
        let device = req.query("deviceId");
        let status = req.query("statusFilter");
        let max = req.query_int("maxResults")?;
        let token = req.query("nextToken");
        let mut c = Checker::default();
        if let Some(d) = device {
            check_id(&mut c, "deviceId", d);
        }
        if let Some(s) = status {
            c.one_of("statusFilter", s, STATUS_FILTERS);
        }
        if let Some(m) = max {
            c.range("maxResults", m, 0, 25);
        }
        check_token(&mut c, token);
        c.finish(Service::Panorama)?;
        let only = device.map(|d| p.device_index(d));
        // Instances never come or go, so a token's offset keeps pointing at the same rows.
        let rows: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| only.is_none_or(|d| d == Some(i.device)))
            .filter(|_| status.is_none_or(|s| s == STATUS))
            .collect();
        let page = Page::new(
            ("ListApplicationInstances", device, status),
            token,
            page_size(max),
        )?;
        let (rows, next) = page.cut(rows)?;
        let items: Vec<Value> = rows
            .iter()
            .map(|i| self.to_json(i, p, now, false))
            .collect();
        Ok(object([
            ("ApplicationInstances", items.into()),
            ("NextToken", next.into()),
        ]))
    }

    pub fn describe(&self, p: &Panorama, req: &ApiRequest, now: f64) -> ApiResult {
        let id = &req.path[0];
        let mut c = Checker::default();
        check_id(&mut c, "applicationInstanceId", id);
        c.finish(Service::Panorama)?;
        let instance = self
            .by_id
            .get(id)
            .map(|&i| &self.instances[i])
            .ok_or_else(|| {
                ApiError::not_found(format!("Application instance {id} not found"))
                    .with("ResourceId", id.clone())
                    .with("ResourceType", "applicationInstance")
            })?;
        Ok(self.to_json(instance, p, now, true))
    }
}

/// Marks each appliance named (by name or id, in any account and region) so that its
/// applications fail to start after its next completed OTA. A name no appliance has, or
/// whose appliances run no applications, is refused: that fault could never show.
pub(super) fn arm_failures(accounts: &mut [Account], names: &[String]) -> anyhow::Result<()> {
    for name in names {
        let (mut armed, mut idle) = (0, 0);
        for region in accounts.iter_mut().flat_map(|a| a.regions.values_mut()) {
            for device in region.panorama.find(name) {
                if region.apps.count_on(device) == 0 {
                    idle += 1;
                } else {
                    region.apps.fail_after_ota.insert(device);
                    armed += 1;
                }
            }
        }
        if armed == 0 && idle == 0 {
            bail!(
                "--unhealthy-after-ota {name}: no simulated Panorama appliance has that name or id"
            );
        }
        if armed == 0 {
            bail!(
                "--unhealthy-after-ota {name}: that appliance runs no applications, so none can fail \
                 (list some under `applications` in its fleet file)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_generated_appliance_runs_one_to_three_different_applications() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let names = pick(&mut rng);
            assert!((1..=3).contains(&names.len()), "{names:?}");
            let distinct: HashSet<&String> = names.iter().collect();
            assert_eq!(distinct.len(), names.len(), "{names:?}");
        }
        assert_eq!(
            pick(&mut ChaCha8Rng::seed_from_u64(9)),
            pick(&mut ChaCha8Rng::seed_from_u64(9))
        );
    }

    #[test]
    fn an_unknown_name_has_the_catalog_shape_of_description() {
        assert_eq!(description_of("ppe-check"), CATALOG[1].1);
        assert!(description_of("my-app").contains("my-app"));
    }
}
