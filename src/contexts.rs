//! Contexts: which AWS profiles, regions and endpoints fleetdeck works against at once. A
//! context is a named profile with its regions (from the config file, or made up on the spot
//! from `--profiles`); every (context, region) pair is a *scope* with its own clients, quota
//! pacing and journal routes.
//!
//! Which contexts are used, first found wins: `--ctx` or `--profiles` (flags);
//! `FLEETDECK_CONTEXT` or `AWS_PROFILE` (environment); `current` in the config file; the only
//! context the file has; the default profile. A context's regions, first found wins:
//! `--regions`; the context's own; `AWS_REGION` (or `AWS_DEFAULT_REGION`); the profile's
//! region. `--endpoint-url` and `--read-only` apply to every context. Nothing here does I/O
//! but `read_file` and `aws_profiles`, so precedence is unit-tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `$XDG_CONFIG_HOME/fleetdeck/config.toml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The contexts used when neither flags nor environment name any.
    #[serde(default)]
    pub current: Option<OneOrMany>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextEntry>,
    /// Filters (the `/` language) naming the devices drawn and counted as dangerous to
    /// touch; `env=prod` when unset.
    #[serde(default)]
    pub danger: Option<Vec<String>>,
}

pub use crate::fleet::filter::DEFAULT_DANGER;

impl ConfigFile {
    /// The danger filters: the file's, or `env=prod`. Blank entries are dropped.
    pub fn danger(&self) -> Vec<String> {
        match &self.danger {
            Some(list) => list
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => vec![DEFAULT_DANGER.to_string()],
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn names(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContextEntry {
    pub profile: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// A word the header shows beside the context, such as "prod".
    pub label: Option<String>,
    /// The label's colour: red, yellow, green, blue, magenta, cyan.
    pub colour: Option<String>,
    /// Team mode: the DynamoDB table the team shares, and the profile and region that reach
    /// it (default: the context's own profile, and aws-config's region).
    pub team: Option<String>,
    pub team_profile: Option<String>,
    pub team_region: Option<String>,
    /// CloudWatch alarms that breach a rollout's gate in this context.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// The maintenance window of this context's devices without one of their own.
    pub window: Option<String>,
    /// The device tag that carries a device's own window.
    pub window_tag: Option<String>,
}

/// What the contexts in use say a rollout's gate watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchDefaults {
    pub alarms: Vec<String>,
    pub window: Option<String>,
    pub window_tag: Option<String>,
}

/// One context as used: a profile and the regions it reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub name: String,
    /// `None`: aws-config's default chain picks the profile.
    pub profile: Option<String>,
    /// Empty: the profile's own region.
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    pub read_only: bool,
    pub label: Option<String>,
    pub colour: Option<String>,
}

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub ctx: Vec<String>,
    pub profiles: Vec<String>,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    pub read_only: bool,
}

/// What the environment says, read once at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// FLEETDECK_CONTEXT: context names, comma-separated.
    pub context: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Env {
    pub fn read() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        Self {
            context: var("FLEETDECK_CONTEXT"),
            profile: var("AWS_PROFILE"),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
        }
    }
}

pub const COLOURS: &[&str] = &["red", "yellow", "green", "blue", "magenta", "cyan"];

/// Where the config file is: `$XDG_CONFIG_HOME/fleetdeck/config.toml` (or the platform's).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "fleetdeck").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the config file; a missing file is an empty one, a malformed one an error naming the
/// file and the line.
pub fn read_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let file = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(file)
}

pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    for (name, c) in &file.contexts {
        if name.is_empty() || name.contains(['/', ',', ' ']) {
            return Err(format!(
                "context name {name:?}: use letters, digits, '-' or '_' (no '/', ',' or spaces)"
            ));
        }
        if let Some(colour) = &c.colour
            && !COLOURS.contains(&colour.as_str())
        {
            return Err(format!(
                "context {name}: colour {colour:?} is not one of {}",
                COLOURS.join(", ")
            ));
        }
        for r in &c.regions {
            check_region(r).map_err(|e| format!("context {name}: {e}"))?;
        }
    }
    if let Some(current) = &file.current {
        for n in current.names() {
            if !file.contexts.contains_key(&n) {
                return Err(format!(
                    "current names {n:?}, which no [contexts.{n}] defines"
                ));
            }
        }
    }
    Ok(file)
}

/// A region name as AWS spells them: letters, digits and dashes, such as us-east-1.
pub fn check_region(r: &str) -> Result<(), String> {
    let parts: Vec<&str> = r.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("{r:?} is not a region name (such as us-east-1)"))
    }
}

fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn ad_hoc(profile: Option<String>) -> Context {
    Context {
        name: profile.clone().unwrap_or_else(|| "default".into()),
        profile,
        ..Context::default()
    }
}

fn named(file: &ConfigFile, names: &[String]) -> Result<Vec<Context>, String> {
    names
        .iter()
        .map(|n| {
            let Some(e) = file.contexts.get(n) else {
                let known: Vec<&str> = file.contexts.keys().map(String::as_str).collect();
                return Err(if known.is_empty() {
                    format!(
                        "no context is named {n}: the config file defines none (see the README's \"Contexts\")"
                    )
                } else {
                    format!("no context is named {n} (known: {})", known.join(", "))
                });
            };
            Ok(Context {
                name: n.clone(),
                profile: e.profile.clone(),
                regions: e.regions.clone(),
                endpoint_url: e.endpoint_url.clone(),
                read_only: e.read_only,
                label: e.label.clone(),
                colour: e.colour.clone(),
            })
        })
        .collect()
}

/// The contexts to use, by the precedence in this module's header.
pub fn resolve(flags: &Flags, env: &Env, file: &ConfigFile) -> Result<Vec<Context>, String> {
    if !flags.ctx.is_empty() && !flags.profiles.is_empty() {
        return Err("name contexts (--ctx) or profiles (--profiles), not both".into());
    }
    for r in &flags.regions {
        check_region(r)?;
    }
    let mut contexts = if !flags.ctx.is_empty() {
        named(file, &flags.ctx)?
    } else if !flags.profiles.is_empty() {
        flags
            .profiles
            .iter()
            .cloned()
            .map(Some)
            .map(ad_hoc)
            .collect()
    } else if let Some(names) = &env.context {
        named(file, &split(names))?
    } else if let Some(p) = &env.profile {
        vec![ad_hoc(Some(p.clone()))]
    } else if let Some(current) = &file.current {
        named(file, &current.names())?
    } else if file.contexts.len() == 1 {
        named(file, &file.contexts.keys().cloned().collect::<Vec<_>>())?
    } else {
        vec![ad_hoc(None)]
    };
    // A profile named directly is no way around a context's read-only: it inherits it from
    // any context of the file using that profile.
    for c in &mut contexts {
        let guarded = file
            .contexts
            .values()
            .any(|e| e.read_only && e.profile.is_some() && e.profile == c.profile);
        c.read_only |= guarded;
    }
    let mut seen = std::collections::BTreeSet::new();
    contexts.retain(|c| seen.insert(c.name.clone()));
    for c in &mut contexts {
        if !flags.regions.is_empty() {
            c.regions = flags.regions.clone();
        } else if c.regions.is_empty()
            && let Some(r) = &env.region
        {
            c.regions = vec![r.clone()];
        }
        let mut seen = std::collections::BTreeSet::new();
        c.regions.retain(|r| seen.insert(r.clone()));
        if flags.endpoint_url.is_some() {
            c.endpoint_url = flags.endpoint_url.clone();
        }
        c.read_only |= flags.read_only;
    }
    Ok(contexts)
}

/// Profiles named in the AWS shared config and credentials files, for completion.
pub fn aws_profiles() -> Vec<String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let credentials = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let mut out = std::collections::BTreeSet::new();
    for (path, is_config) in [(config, true), (credentials, false)] {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            continue;
        };
        out.extend(profile_names(&text, is_config));
    }
    out.into_iter().collect()
}

fn profile_names(text: &str, is_config: bool) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
        .filter_map(|s| {
            let s = s.trim();
            if is_config {
                match s.strip_prefix("profile ") {
                    Some(p) => Some(p.trim().to_string()),
                    None => (s == "default").then(|| s.to_string()),
                }
            } else {
                Some(s.to_string())
            }
        })
        .collect()
}

/// Regions where either service is offered, for completion.
pub const KNOWN_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// The in-process simulator's side of contexts: its endpoint and each context's key pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demo {
    pub endpoint: String,
    pub keys: BTreeMap<String, (String, String)>,
}

/// Everything needed to turn flags (or `:ctx`, `:region`, `:profile`) into targets, read once
/// at start, so the app resolves a switch without I/O.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub file: ConfigFile,
    pub env: Env,
    /// What is in use now, as flags would say it.
    pub flags: Flags,
    /// Profiles in the AWS shared files, for completion.
    pub profiles: Vec<String>,
    pub demo: Option<Demo>,
}

/// One target per context and region; a context naming no region gets its profile's.
fn targets_of(contexts: &[Context]) -> Vec<crate::aws::Target> {
    let mut out = Vec::new();
    for c in contexts {
        let regions: Vec<Option<String>> = if c.regions.is_empty() {
            vec![None]
        } else {
            c.regions.iter().cloned().map(Some).collect()
        };
        for region in regions {
            out.push(crate::aws::Target {
                context: c.name.clone(),
                profile: c.profile.clone(),
                region,
                endpoint_url: c.endpoint_url.clone(),
                read_only: c.read_only,
                label: c.label.clone(),
                colour: c.colour.clone(),
                demo_key: None,
            });
        }
    }
    out
}

impl Catalog {
    pub fn targets(&self, flags: &Flags) -> Result<Vec<crate::aws::Target>, String> {
        if self.demo.is_some() && !flags.profiles.is_empty() {
            let names: Vec<&str> = self.file.contexts.keys().map(String::as_str).collect();
            return Err(format!(
                "the demo has no AWS profiles: its contexts are {} (:ctx NAME)",
                names.join(", ")
            ));
        }
        let contexts = resolve(flags, &self.env, &self.file)?;
        let mut targets = targets_of(&contexts);
        if let Some(demo) = &self.demo {
            for t in &mut targets {
                t.demo_key = demo.keys.get(&t.context).cloned();
                t.endpoint_url = Some(demo.endpoint.clone());
            }
        }
        Ok(targets)
    }

    /// Context names the file (or the demo) defines.
    pub fn context_names(&self) -> Vec<String> {
        self.file.contexts.keys().cloned().collect()
    }

    /// The alarms and window of the contexts in use, for what the flags leave unsaid: every
    /// context's alarms, and their one window and window tag (two that differ are refused).
    pub fn watch_defaults(&self, flags: &Flags) -> Result<WatchDefaults, String> {
        let contexts = resolve(flags, &self.env, &self.file)?;
        let entries: Vec<&ContextEntry> = contexts
            .iter()
            .filter_map(|c| self.file.contexts.get(&c.name))
            .collect();
        let mut alarms: Vec<String> = entries.iter().flat_map(|e| e.alarms.clone()).collect();
        alarms.sort();
        alarms.dedup();
        let one = |what: &str, pick: &dyn Fn(&ContextEntry) -> Option<String>| {
            let mut all: Vec<String> = entries.iter().filter_map(|e| pick(e)).collect();
            all.sort();
            all.dedup();
            match all.len() {
                0 | 1 => Ok(all.pop()),
                _ => Err(format!(
                    "the contexts in use name {} different {what}s ({}): pass --{what} to choose",
                    all.len(),
                    all.join(" | ")
                )),
            }
        };
        let window = one("window", &|e| e.window.clone())?;
        let window_tag = one("window-tag", &|e| e.window_tag.clone())?;
        Ok(WatchDefaults {
            alarms,
            window,
            window_tag,
        })
    }

    /// Team mode for the contexts in use: `--team` or `FLEETDECK_TEAM` (as `flag`), else the
    /// contexts' `team`, which must then name one table. `None`: no team mode.
    pub fn team(
        &self,
        flags: &Flags,
        flag: Option<&str>,
    ) -> Result<Option<crate::team::TeamConfig>, String> {
        let contexts = resolve(flags, &self.env, &self.file)?;
        let entries: Vec<&ContextEntry> = contexts
            .iter()
            .filter_map(|c| self.file.contexts.get(&c.name))
            .collect();
        let from_file = |table: &str| {
            let e = entries.iter().find(|e| e.team.as_deref() == Some(table));
            crate::team::TeamConfig {
                table: table.to_string(),
                profile: e.and_then(|e| e.team_profile.clone().or_else(|| e.profile.clone())),
                region: e.and_then(|e| e.team_region.clone()),
            }
        };
        if let Some(table) = flag.map(str::trim).filter(|t| !t.is_empty()) {
            return Ok(Some(from_file(table)));
        }
        let mut tables: Vec<&str> = entries.iter().filter_map(|e| e.team.as_deref()).collect();
        tables.sort_unstable();
        tables.dedup();
        match tables.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(from_file(one))),
            many => Err(format!(
                "the contexts in use name {} team tables ({}): one session works with one team; pass --team TABLE",
                many.len(),
                many.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        current = "prod"
        [contexts.prod]
        profile = "prod-admin"
        regions = ["us-east-1", "us-west-2"]
        label = "prod"
        colour = "red"
        [contexts.lab]
        profile = "lab"
        read_only = true
    "#;

    fn file() -> ConfigFile {
        parse(FILE).unwrap()
    }

    fn names(c: &[Context]) -> Vec<(&str, Vec<&str>)> {
        c.iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.regions.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_file_decides_when_nothing_else_does() {
        let got = resolve(&Flags::default(), &Env::default(), &file()).unwrap();
        assert_eq!(names(&got), [("prod", vec!["us-east-1", "us-west-2"])]);
        assert_eq!(got[0].profile.as_deref(), Some("prod-admin"));
        assert_eq!(got[0].colour.as_deref(), Some("red"));
    }

    #[test]
    fn the_environment_beats_the_file_and_flags_beat_both() {
        let env = Env {
            profile: Some("ops".into()),
            region: Some("eu-west-1".into()),
            ..Env::default()
        };
        let got = resolve(&Flags::default(), &env, &file()).unwrap();
        assert_eq!(names(&got), [("ops", vec!["eu-west-1"])]);
        let env_ctx = Env {
            context: Some("lab".into()),
            ..env.clone()
        };
        let got = resolve(&Flags::default(), &env_ctx, &file()).unwrap();
        // The lab context names no region: the environment's fills it.
        assert_eq!(names(&got), [("lab", vec!["eu-west-1"])]);
        assert!(got[0].read_only);
        let flags = Flags {
            profiles: vec!["a".into(), "b".into()],
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            ..Flags::default()
        };
        let got = resolve(&flags, &env_ctx, &file()).unwrap();
        assert_eq!(
            names(&got),
            [
                ("a", vec!["us-east-1", "us-west-2"]),
                ("b", vec!["us-east-1", "us-west-2"])
            ]
        );
    }

    #[test]
    fn flags_override_a_named_contexts_regions_endpoint_and_read_only() {
        let flags = Flags {
            ctx: vec!["prod".into(), "lab".into(), "prod".into()],
            regions: vec!["ap-south-1".into()],
            endpoint_url: Some("http://127.0.0.1:4580".into()),
            read_only: true,
            ..Flags::default()
        };
        let got = resolve(&flags, &Env::default(), &file()).unwrap();
        assert_eq!(
            names(&got),
            [("prod", vec!["ap-south-1"]), ("lab", vec!["ap-south-1"])]
        );
        assert!(got.iter().all(|c| c.read_only));
        assert!(
            got.iter()
                .all(|c| c.endpoint_url.as_deref() == Some("http://127.0.0.1:4580"))
        );
    }

    #[test]
    fn a_read_only_contexts_profile_stays_read_only_when_named_directly() {
        let flags = Flags {
            profiles: vec!["lab".into(), "other".into()],
            ..Flags::default()
        };
        let got = resolve(&flags, &Env::default(), &file()).unwrap();
        assert!(got[0].read_only, "lab is read-only in the file");
        assert!(!got[1].read_only);
        let env = Env {
            profile: Some("lab".into()),
            ..Env::default()
        };
        assert!(resolve(&Flags::default(), &env, &file()).unwrap()[0].read_only);
    }

    #[test]
    fn defaults_are_the_default_profile_and_its_region() {
        let got = resolve(&Flags::default(), &Env::default(), &ConfigFile::default()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "default");
        assert_eq!(got[0].profile, None);
        assert!(got[0].regions.is_empty());
    }

    #[test]
    fn a_lone_context_in_the_file_is_the_current_one() {
        let f = parse("[contexts.only]\nregions = [\"us-east-2\"]\n").unwrap();
        let got = resolve(&Flags::default(), &Env::default(), &f).unwrap();
        assert_eq!(names(&got), [("only", vec!["us-east-2"])]);
    }

    #[test]
    fn mistakes_are_named() {
        let e = resolve(
            &Flags {
                ctx: vec!["nope".into()],
                ..Flags::default()
            },
            &Env::default(),
            &file(),
        )
        .unwrap_err();
        assert!(
            e.contains("no context is named nope (known: lab, prod)"),
            "{e}"
        );
        let e = resolve(
            &Flags {
                regions: vec!["useast1".into()],
                ..Flags::default()
            },
            &Env::default(),
            &file(),
        )
        .unwrap_err();
        assert!(e.contains("not a region name"), "{e}");
        for bad in ["us-west-", "us-west", "US-east-1", "us-east-x", "us--1"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
        for good in ["us-east-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(check_region(good).is_ok(), "{good}");
        }
        let e = parse("current = \"x\"\n").unwrap_err();
        assert!(e.contains("no [contexts.x]"), "{e}");
        let e = parse("[contexts.a]\ncolour = \"pink\"\n").unwrap_err();
        assert!(e.contains("not one of red"), "{e}");
        let e = parse("[contexts.a]\nregion = \"us-east-1\"\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = resolve(
            &Flags {
                ctx: vec!["prod".into()],
                profiles: vec!["a".into()],
                ..Flags::default()
            },
            &Env::default(),
            &file(),
        )
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn profiles_are_read_from_both_aws_files() {
        let config =
            "[default]\nregion=us-east-1\n[profile prod-admin]\nsso_session=x\n[sso-session x]\n";
        assert_eq!(profile_names(config, true), ["default", "prod-admin"]);
        assert_eq!(profile_names("[ci]\naws_access_key_id=A\n", false), ["ci"]);
    }
}
