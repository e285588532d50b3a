//! The fleet a simulator starts with: read from a TOML file a person can edit
//! (`assets/demo-fleet.toml` by default), or generated for scale work.
//!
//! Panorama appliances run application instances. A fleet file lists them per appliance,
//! `applications = ["people-counter", "ppe-check"]`; an appliance without that key runs
//! none, so a file says all there is. A generated appliance runs one to three from
//! [`apps::CATALOG`]. Both draw their ids from a stream of their own, so every device id
//! and serial is what it was before appliances had applications.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::apps::{self, Apps};
use super::check;
use super::panorama::{self, Panorama};
use super::snow::{self, Capacity, Snow};
use super::state::random_id;

/// The demo fleet, built into the binary so `fleetdeck sim` and `--demo` need no files.
pub const DEMO_FLEET: &str = include_str!("../../assets/demo-fleet.toml");

/// A second account's demo fleet (account 210987654321), over us-east-1 and us-west-2.
pub const DEMO_FLEET_LAB: &str = include_str!("../../assets/demo-fleet-lab.toml");

/// AWS's default quota: 50 Panorama appliances per account and region.
pub const PANORAMA_DEVICES_PER_REGION: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    #[serde(default = "default_account")]
    account_id: String,
    panorama: PanoramaSection,
    #[serde(default)]
    snow: SnowSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PanoramaSection {
    images: Vec<String>,
    /// Images the service offers that fail to install, on every appliance.
    #[serde(default)]
    failing_images: Vec<String>,
    #[serde(default)]
    devices: Vec<PanoramaEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PanoramaEntry {
    name: String,
    software: String,
    id: Option<String>,
    region: Option<String>,
    #[serde(default = "yes")]
    online: bool,
    #[serde(rename = "type", default = "default_panorama_type")]
    device_type: String,
    #[serde(default = "default_brand")]
    brand: String,
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Every OTA job on this appliance fails while installing.
    #[serde(default)]
    ota_fails: bool,
    /// The names of the application instances it runs; none when left out.
    #[serde(default)]
    applications: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnowSection {
    #[serde(default)]
    devices: Vec<SnowEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnowEntry {
    id: Option<String>,
    region: Option<String>,
    #[serde(rename = "type", default = "default_snow_type")]
    device_type: String,
    #[serde(default = "default_lock")]
    state: String,
    #[serde(default = "yes")]
    reachable: bool,
    software: String,
    job: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn default_account() -> String {
    "123456789012".into()
}
fn yes() -> bool {
    true
}
fn default_panorama_type() -> String {
    "PANORAMA_APPLIANCE".into()
}
fn default_brand() -> String {
    "AWS_PANORAMA".into()
}
fn default_snow_type() -> String {
    "SNOWCONE".into()
}
fn default_lock() -> String {
    "LOCKED".into()
}

/// Both services' fleets in one region.
#[derive(Debug)]
pub struct Region {
    pub panorama: Panorama,
    /// The Panorama appliances' application instances.
    pub apps: Apps,
    pub snow: Snow,
}

/// The application instances' stream is the fleet seed's, moved far from the others.
const APPS_STREAM: u64 = 0x6170_7073_0000_0001;

/// What to start with.
#[derive(Debug, Clone)]
pub enum FleetSource {
    /// A fleet file's text (the demo fleet, or `--fleet FILE` read by the caller).
    Toml(String),
    /// Generated devices for each region: this many of each service.
    Generated { panorama: usize, snow: usize },
}

pub struct Built {
    pub account_id: String,
    pub regions: BTreeMap<String, Region>,
}

/// Builds one account's fleet in every region. `account_id`, when given, replaces the
/// fleet's own; `cap_panorama` enforces the 50-appliance quota.
pub fn build(
    source: &FleetSource,
    account_id: Option<&str>,
    regions: &[String],
    seed: u64,
    now: f64,
    cap_panorama: bool,
) -> anyhow::Result<Built> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut app_rng = ChaCha8Rng::seed_from_u64(seed ^ APPS_STREAM);
    let rngs = (&mut rng, &mut app_rng);
    let built = match source {
        FleetSource::Toml(text) => from_file(text, account_id, regions, rngs, now)?,
        FleetSource::Generated { panorama, snow } => {
            let account = account_id.map_or_else(default_account, str::to_string);
            generate(&account, (*panorama, *snow), regions, rngs, now)
        }
    };
    if cap_panorama {
        for (region, r) in &built.regions {
            let n = r.panorama.device_count();
            if n > PANORAMA_DEVICES_PER_REGION {
                bail!(
                    "{n} Panorama appliances in {region} for account {}: AWS allows at most {PANORAMA_DEVICES_PER_REGION} per account and region \
                     (spread them over more --regions, or lift the quotas with --quotas off)",
                    built.account_id
                );
            }
        }
    }
    Ok(built)
}

/// `rngs`: the fleet's stream, and the application instances'.
fn from_file(
    text: &str,
    account_id: Option<&str>,
    regions: &[String],
    (rng, app_rng): (&mut ChaCha8Rng, &mut ChaCha8Rng),
    now: f64,
) -> anyhow::Result<Built> {
    let mut file: FleetFile = toml::from_str(text).context("the fleet file is not valid")?;
    if let Some(account) = account_id {
        file.account_id = account.to_string();
    }
    check_file(&file)?;
    if file.panorama.images.is_empty() {
        bail!(
            "the fleet file's [panorama] images list is empty: name the image versions the OTA service knows"
        );
    }
    let region_of = |named: &Option<String>, what: &str| -> anyhow::Result<String> {
        match named {
            None => Ok(regions[0].clone()),
            Some(r) if regions.contains(r) => Ok(r.clone()),
            Some(r) => bail!(
                "{what} is in region {r}, which is not among the simulated regions {regions:?}"
            ),
        }
    };
    let mut pan: BTreeMap<String, Vec<(panorama::Device, Vec<String>)>> = BTreeMap::new();
    for (i, e) in file.panorama.devices.into_iter().enumerate() {
        let region = region_of(&e.region, &format!("Panorama appliance {}", e.name))?;
        let id = e.id.unwrap_or_else(|| random_id(rng, "device-", 26));
        let arn = format!("arn:aws:panorama:{region}:{}:device/{id}", file.account_id);
        let created = now - 86_400.0 * (400 - i as i64 * 7) as f64;
        let ota_fails = e.ota_fails;
        let mut device = panorama::Device::new(
            id,
            e.name,
            arn,
            e.description,
            e.brand,
            e.device_type,
            serial(rng),
            created,
            e.software,
            e.online,
            e.tags,
            format!("10.20.{}.{}", 1 + i / 200, 10 + i % 200),
        );
        device.ota_fails = ota_fails;
        pan.entry(region)
            .or_default()
            .push((device, e.applications));
    }
    let mut images = file.panorama.images.clone();
    images.extend(file.panorama.failing_images.iter().cloned());
    let mut snowd: BTreeMap<String, Vec<snow::Device>> = BTreeMap::new();
    for (i, e) in file.snow.devices.into_iter().enumerate() {
        let id = e.id.unwrap_or_else(|| random_id(rng, "smd-", 17));
        let region = region_of(&e.region, &format!("Snow device {id}"))?;
        if !["LOCKED", "UNLOCKED"].contains(&e.state.as_str()) {
            bail!(
                "Snow device {id}: state must be LOCKED or UNLOCKED, not {}",
                e.state
            );
        }
        let arn = format!(
            "arn:aws:snow-device-management:{region}:{}:managed-device/{id}",
            file.account_id
        );
        snowd.entry(region).or_default().push(snow::Device::new(
            id,
            arn,
            e.device_type.clone(),
            e.state,
            e.reachable,
            e.software,
            e.job,
            e.tags,
            capacities(&e.device_type, rng),
            format!("10.30.{}.{}", 1 + i / 200, 10 + i % 200),
            mac(rng),
            last_seen(e.reachable, now, rng),
        ));
    }
    let regions = regions
        .iter()
        .map(|r| {
            let (devices, names): (Vec<_>, Vec<_>) =
                pan.remove(r).unwrap_or_default().into_iter().unzip();
            let panorama = Panorama::new(devices, images.clone())
                .with_failing(file.panorama.failing_images.clone());
            let place = (r.as_str(), file.account_id.as_str());
            let region = Region {
                apps: Apps::build(&panorama, &names, place, app_rng, now),
                panorama,
                snow: Snow::new(file.account_id.clone(), snowd.remove(r).unwrap_or_default()),
            };
            (r.clone(), region)
        })
        .collect();
    Ok(Built {
        account_id: file.account_id,
        regions,
    })
}

/// What the services would never hold, refused before a device is built: ids and names
/// outside their model patterns, an id given twice, tags no AWS resource may carry.
fn check_file(file: &FleetFile) -> anyhow::Result<()> {
    if !(file.account_id.len() == 12 && file.account_id.bytes().all(|b| b.is_ascii_digit())) {
        bail!(
            "the fleet file's account_id {:?} is not an AWS account id (12 digits)",
            file.account_id
        );
    }
    let id_like = |text: &str, max: usize| {
        (1..=max).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut seen = std::collections::BTreeSet::new();
    for d in &file.panorama.devices {
        // DeviceName and DeviceId: ^[a-zA-Z0-9\-\_]+$, 1 to 255 characters.
        if !id_like(&d.name, 255) {
            bail!(
                "Panorama appliance name {:?}: use 1 to 255 letters, digits, - and _",
                d.name
            );
        }
        if let Some(id) = &d.id {
            if !id_like(id, 255) {
                bail!(
                    "Panorama appliance {}: id {id:?} is not 1 to 255 letters, digits, - and _",
                    d.name
                );
            }
            if !seen.insert(id.as_str()) {
                bail!("Panorama appliance {}: id {id} is given twice", d.name);
            }
        }
        if let Some(problem) = check::tag_problem(&d.tags) {
            bail!("Panorama appliance {}: {problem}", d.name);
        }
        let mut apps = std::collections::BTreeSet::new();
        for app in &d.applications {
            // ApplicationInstanceName: ^[a-zA-Z0-9\-\_]+$, 1 to 255 characters.
            if !id_like(app, 255) {
                bail!(
                    "Panorama appliance {}: application {app:?} is not 1 to 255 letters, digits, - and _",
                    d.name
                );
            }
            if !apps.insert(app.as_str()) {
                bail!(
                    "Panorama appliance {}: application {app} is listed twice",
                    d.name
                );
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in &file.snow.devices {
        let shown = d.id.as_deref().unwrap_or("(no id)");
        if let Some(id) = &d.id {
            // ManagedDeviceId is 1 to 64 characters; an id in a URL path stays plain ASCII.
            if !id_like(id, 64) {
                bail!("Snow device id {id:?} is not 1 to 64 letters, digits, - and _");
            }
            if !seen.insert(id.as_str()) {
                bail!("Snow device id {id} is given twice");
            }
        }
        if let Some(problem) = check::tag_problem(&d.tags) {
            bail!("Snow device {shown}: {problem}");
        }
    }
    Ok(())
}

const GENERATED_IMAGES: &[&str] = &["4.3.35", "4.3.45", "4.3.55", "4.3.93", "5.0.10", "5.0.21"];
const SITES: &[&str] = &["sea", "pdx", "iad", "ord", "dfw", "atl", "bos", "phx"];

/// `n_pan` Panorama appliances and `n_snow` Snow devices per region, from the streams
/// `from_file` takes.
fn generate(
    account: &str,
    (n_pan, n_snow): (usize, usize),
    regions: &[String],
    (rng, app_rng): (&mut ChaCha8Rng, &mut ChaCha8Rng),
    now: f64,
) -> Built {
    let images: Vec<String> = GENERATED_IMAGES.iter().map(|s| s.to_string()).collect();
    let mut out = BTreeMap::new();
    for region in regions {
        let pan: Vec<panorama::Device> = (0..n_pan)
            .map(|i| {
                let id = random_id(rng, "device-", 26);
                let site = SITES[rng.random_range(0..SITES.len())];
                let tags = BTreeMap::from([
                    ("site".to_string(), site.to_string()),
                    ("env".to_string(), "prod".to_string()),
                ]);
                let software = images[rng.random_range(0..images.len())].clone();
                panorama::Device::new(
                    id.clone(),
                    format!("{site}-cam-{i:05}"),
                    format!("arn:aws:panorama:{region}:{account}:device/{id}"),
                    None,
                    default_brand(),
                    default_panorama_type(),
                    serial(rng),
                    now - 86_400.0 * 30.0 + i as f64,
                    software,
                    rng.random_bool(0.9),
                    tags,
                    format!("10.20.{}.{}", 1 + i / 200, 10 + i % 200),
                )
            })
            .collect();
        let snow = (0..n_snow)
            .map(|i| {
                let id = random_id(rng, "smd-", 17);
                let site = SITES[rng.random_range(0..SITES.len())];
                let tags = BTreeMap::from([
                    ("site".to_string(), site.to_string()),
                    ("env".to_string(), "prod".to_string()),
                ]);
                let state = if rng.random_bool(0.6) {
                    "LOCKED"
                } else {
                    "UNLOCKED"
                };
                let reachable = rng.random_bool(0.95);
                snow::Device::new(
                    id.clone(),
                    format!(
                        "arn:aws:snow-device-management:{region}:{account}:managed-device/{id}"
                    ),
                    default_snow_type(),
                    state.into(),
                    reachable,
                    "7.1.0".into(),
                    None,
                    tags,
                    capacities("SNOWCONE", rng),
                    format!("10.30.{}.{}", 1 + i / 200, 10 + i % 200),
                    mac(rng),
                    last_seen(reachable, now, rng),
                )
            })
            .collect();
        let names: Vec<Vec<String>> = pan.iter().map(|_| apps::pick(app_rng)).collect();
        let panorama = Panorama::new(pan, images.clone());
        out.insert(
            region.clone(),
            Region {
                apps: Apps::build(&panorama, &names, (region, account), app_rng, now),
                panorama,
                snow: Snow::new(account.to_string(), snow),
            },
        );
    }
    Built {
        account_id: account.to_string(),
        regions: out,
    }
}

/// A reachable device checked in within the last minutes; an unreachable one days ago.
fn last_seen(reachable: bool, now: f64, rng: &mut ChaCha8Rng) -> f64 {
    if reachable {
        now - rng.random_range(5.0..300.0)
    } else {
        now - rng.random_range(2.0..9.0) * 86_400.0
    }
}

fn serial(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{:012}",
        rng.random_range(100_000_000_000u64..999_999_999_999)
    )
}

fn mac(rng: &mut ChaCha8Rng) -> String {
    let bytes: Vec<String> = (0..6)
        .map(|_| format!("{:02x}", rng.random_range(0..=255u8)))
        .collect();
    bytes.join(":")
}

fn capacities(device_type: &str, rng: &mut ChaCha8Rng) -> Vec<Capacity> {
    let (storage, vcpu, memory) = match device_type {
        "SNOWCONE" => (8_000_000_000_000i64, 4, 4),
        _ => (80_000_000_000_000i64, 52, 208),
    };
    let used = rng.random_range(0..storage / 2);
    vec![
        Capacity {
            name: "Storage".into(),
            unit: "Bytes".into(),
            total: storage,
            used,
        },
        Capacity {
            name: "vCPUs".into(),
            unit: "Count".into(),
            total: vcpu,
            used: 0,
        },
        Capacity {
            name: "Memory".into(),
            unit: "GB".into(),
            total: memory,
            used: 0,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn demo_fleet_loads_with_the_promised_mix() {
        let built = build(
            &FleetSource::Toml(DEMO_FLEET.into()),
            None,
            &regions(&["us-east-1"]),
            7,
            0.0,
            true,
        )
        .unwrap();
        let r = &built.regions["us-east-1"];
        assert!(r.panorama.device_count() >= 12);
        assert!(r.snow.device_count() >= 8);
    }

    #[test]
    fn the_lab_fleet_needs_us_west_2_and_takes_its_account_id() {
        let lab = FleetSource::Toml(DEMO_FLEET_LAB.into());
        let err = build(&lab, None, &regions(&["us-east-1"]), 7, 0.0, true)
            .err()
            .unwrap();
        assert!(err.to_string().contains("us-west-2"), "{err}");
        let built = build(
            &lab,
            None,
            &regions(&["us-east-1", "us-west-2"]),
            7,
            0.0,
            true,
        )
        .unwrap();
        assert_eq!(built.account_id, "210987654321");
        let (east, west) = (&built.regions["us-east-1"], &built.regions["us-west-2"]);
        assert_eq!(east.panorama.device_count(), 0);
        assert_eq!(west.panorama.device_count(), 6);
        assert_eq!(east.snow.device_count(), 2);
        assert_eq!(west.snow.device_count(), 4);
        // An account id given for the account replaces the file's.
        let built = build(
            &lab,
            Some("200000000009"),
            &regions(&["us-east-1", "us-west-2"]),
            7,
            0.0,
            true,
        )
        .unwrap();
        assert_eq!(built.account_id, "200000000009");
    }

    #[test]
    fn the_panorama_quota_refuses_a_crowded_region() {
        let src = FleetSource::Generated {
            panorama: 51,
            snow: 0,
        };
        let err = build(&src, None, &regions(&["us-east-1"]), 1, 0.0, true)
            .err()
            .unwrap();
        assert!(err.to_string().contains("at most 50"), "{err}");
        assert!(build(&src, None, &regions(&["us-east-1"]), 1, 0.0, false).is_ok());
    }

    #[test]
    fn an_application_named_badly_or_twice_is_refused() {
        let with = |apps: &str| {
            let text = format!(
                "[panorama]\nimages = [\"1.0.0\"]\n[[panorama.devices]]\nname = \"cam\"\nsoftware = \"1.0.0\"\napplications = {apps}\n"
            );
            build(
                &FleetSource::Toml(text),
                None,
                &regions(&["us-east-1"]),
                1,
                0.0,
                true,
            )
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(with(r#"["people-counter", "my_app-2"]"#), None);
        let twice = with(r#"["ppe-check", "ppe-check"]"#).unwrap();
        assert!(twice.contains("listed twice"), "{twice}");
        let bad = with(r#"["people counter"]"#).unwrap();
        assert!(bad.contains("\"people counter\""), "{bad}");
    }

    #[test]
    fn a_device_in_an_unsimulated_region_is_an_error() {
        let text = r#"
            [panorama]
            images = ["1.0.0"]
            [[panorama.devices]]
            name = "cam"
            software = "1.0.0"
            region = "eu-west-9"
        "#;
        let err = build(
            &FleetSource::Toml(text.into()),
            None,
            &regions(&["us-east-1"]),
            1,
            0.0,
            true,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("eu-west-9"));
    }
}
