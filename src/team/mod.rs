//! Team mode: several operators and CI runners share one fleet through a DynamoDB table — the
//! team's book. It holds a lease per device and per plan, mirrors each plan as it goes (its
//! phase, waves, decisions, and every device's outcome), carries words to a rollout between
//! hosts, and the approvals of the two-person rule.
//!
//! It answers the engine ("may this plan send to this device now?") and records what the
//! engine decided; it never decides an operation's state itself, and the local journal is
//! still written first. Leases never trust clocks to agree: a plan is taken over only after
//! its record version was seen unchanged for a whole lease duration (the rule of
//! amazon-dynamodb-lock-client). Anything that cannot reach the table sends nothing new.
//!
//! - `table`: the items' layout, and the DynamoDB calls in fleetdeck's terms;
//! - `init`: creating the table and the team's settings;
//! - `leases`: acquiring, checking before a send, and releasing a plan's devices;
//! - `plans`: the plan lease (heartbeat, takeover) and its mirror, words, approvals;
//! - `budget`: the account's Panorama quota, shared by the team's plans sending to it.

pub mod budget;
pub mod cmd;
pub mod init;
pub mod leases;
pub mod plans;
mod table;
pub mod words;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_types::region::Region;

use crate::aws::{ApiError, ErrorKind};
use crate::fleet::filter::Filter;

pub use leases::{Acquired, Holder};
pub use plans::{PlanLease, PlanRow};
pub use words::Word;

/// Where the team's table is and whose credentials reach it: `--team`, `FLEETDECK_TEAM` or a
/// context's `team`, with the context's `team_profile` and `team_region`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamConfig {
    pub table: String,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl TeamConfig {
    /// `--team-profile` and `--team-region` over the context's.
    pub fn overridden(mut self, profile: Option<String>, region: Option<String>) -> Self {
        self.profile = profile.or(self.profile);
        self.region = region.or(self.region);
        self
    }
}

/// Who this process is, as every lease and word names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The caller's ARN, from STS GetCallerIdentity.
    pub arn: String,
    pub account: String,
    pub host: String,
    pub pid: u32,
}

/// What every member of the team agrees on, from the table's settings item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a plan's lease lasts without a heartbeat.
    pub lease: Duration,
    /// Plans touching these devices wait for a second identity's approval.
    pub approval: Option<ApprovalRule>,
}

impl Settings {
    /// How often an owner renews its plan's lease: three times a lease.
    pub fn heartbeat(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(500))
    }

    /// How much of its lease a sender must have left to send: the longest a send can take
    /// (its 30 s deadline) and then some, capped at half the lease.
    pub fn margin(&self) -> Duration {
        (self.lease / 2).min(Duration::from_secs(45))
    }
}

/// `env=prod,min=10`: plans touching at least `min` devices the filter matches need a second
/// identity's approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRule {
    pub filter: String,
    pub min: usize,
}

impl ApprovalRule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut filter = Vec::new();
        let mut min = 1;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix("min=") {
                Some(n) => {
                    min = n.parse().ok().filter(|n: &usize| *n >= 1).ok_or_else(|| {
                        format!("--require-approval: min={n} is not a count of 1 or more")
                    })?
                }
                None => filter.push(part),
            }
        }
        let filter = filter.join(" ");
        if Filter::parse(&filter).is_empty() {
            return Err(
                "--require-approval needs a filter of the devices it guards, such as env=prod,min=10"
                    .into(),
            );
        }
        Ok(Self { filter, min })
    }

    pub fn text(&self) -> String {
        format!("{},min={}", self.filter.replace(' ', ","), self.min)
    }
}

/// The team's table, reached with the team's own credentials.
#[derive(Clone, Debug)]
pub struct Team {
    pub(crate) db: aws_sdk_dynamodb::Client,
    pub table: String,
    pub me: Identity,
    pub settings: Settings,
}

/// Why team mode cannot start: each names the table, the cause and what to do.
pub fn refused(table: &str, e: &ApiError) -> String {
    let fix = match e.kind {
        ErrorKind::NotFound => format!("create it with `fleetdeck team init --team {table}`"),
        ErrorKind::Auth if e.code == "CredentialsError" => "give the team table a profile with credentials: --team-profile PROFILE (FLEETDECK_TEAM_PROFILE, or a context's team_profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        ErrorKind::Auth => format!(
            "give this identity the team table's policy (README, Team mode) on {table}, or set team_profile"
        ),
        ErrorKind::NotSent | ErrorKind::Timeout | ErrorKind::Ambiguous => {
            "check the network and AWS_ENDPOINT_URL_DYNAMODB (or the profile's services section)"
                .into()
        }
        ErrorKind::Throttled => "try again in a moment".into(),
        _ => "see the error above".into(),
    };
    tracing::warn!(%table, error = %e, "the team table refused or did not answer");
    format!(
        "team table {table}: {}. Nothing was sent: {fix}. A team-mode run never falls back to local-only.",
        plain(e)
    )
}

/// An error as the operator reads it: its code, and the cause in a few words where the SDK's
/// message is a transport's dump (the whole of it goes to the log).
pub fn plain(e: &ApiError) -> String {
    let m = e.message.to_lowercase();
    let cause = if m.contains("connection refused") {
        Some("nothing answers at its endpoint (connection refused)")
    } else if m.contains("timed out") || e.kind == ErrorKind::Timeout {
        Some("its endpoint did not answer in time")
    } else if m.contains("dns") || m.contains("failed to lookup") {
        Some("its endpoint's name does not resolve")
    } else {
        None
    };
    if e.code == "CredentialsError" {
        // The SDK's chain of causes, down to the one a person can act on.
        let why = e
            .message
            .split(": ")
            .find(|part| part.contains("profile") || part.contains("no credentials"))
            .map(|part| part.split(" (").next().unwrap_or(part).trim());
        return format!(
            "no credentials ({})",
            why.unwrap_or("none found in the chain")
        );
    }
    match cause {
        Some(c)
            if matches!(
                e.kind,
                ErrorKind::NotSent | ErrorKind::Ambiguous | ErrorKind::Timeout
            ) =>
        {
            format!("{}: {c}", e.code)
        }
        _ => e.to_string(),
    }
}

/// Loads the team's credentials and region through aws-config (its profile and the standard
/// AWS_* variables, `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_STS` among them).
pub async fn sdk_config(config: &TeamConfig, attempt: Duration) -> aws_types::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .timeout_config(crate::aws::config::timeouts(attempt));
    // The table's own credentials: a named profile is used as named, whatever
    // AWS_ACCESS_KEY_ID says (which may be the fleet's).
    if let Some(p) = &config.profile {
        loader = loader.profile_name(p).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build(),
        );
    }
    if let Some(r) = &config.region {
        loader = loader.region(Region::new(r.clone()));
    }
    loader.load().await
}

/// Who the team's credentials are, from STS.
pub async fn identity(sdk: &aws_types::SdkConfig) -> Result<Identity, ApiError> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "an unknown host".into());
    Ok(Identity {
        arn: me.arn().unwrap_or("an unknown identity").to_string(),
        account: me.account().unwrap_or_default().to_string(),
        host,
        pid: std::process::id(),
    })
}

impl Team {
    /// Reaches the table: the caller's identity, the table's key schema, the team's settings.
    /// Any of them failing refuses team mode up front, before any device is touched.
    pub async fn connect(config: &TeamConfig, attempt: Duration) -> Result<Self, String> {
        let table = &config.table;
        let sdk = sdk_config(config, attempt).await;
        let me = identity(&sdk).await.map_err(|e| refused(table, &e))?;
        let db = aws_sdk_dynamodb::Client::new(&sdk);
        table::check_schema(&db, table)
            .await
            .map_err(|e| refused(table, &e))?;
        let settings = match table::read_settings(&db, table).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(format!(
                    "team table {table} has no team settings: run `fleetdeck team init --team {table}` first. Nothing was sent."
                ));
            }
            Err(e) => return Err(refused(table, &e)),
        };
        Ok(Self {
            db,
            table: table.clone(),
            me,
            settings,
        })
    }

    /// "arn:…:user/alice on jump-1 (process 4242)".
    pub fn who(&self) -> String {
        format!(
            "{} on {} (process {})",
            self.me.arn, self.me.host, self.me.pid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_rule_reads_as_written_and_refuses_what_guards_nothing() {
        let r = ApprovalRule::parse("env=prod,min=10").unwrap();
        assert_eq!(r.filter, "env=prod");
        assert_eq!(r.min, 10);
        assert_eq!(r.text(), "env=prod,min=10");
        let r = ApprovalRule::parse("env=prod, site=austin").unwrap();
        assert_eq!((r.filter.as_str(), r.min), ("env=prod site=austin", 1));
        assert!(
            ApprovalRule::parse("min=3")
                .unwrap_err()
                .contains("needs a filter")
        );
        assert!(
            ApprovalRule::parse("env=prod,min=0")
                .unwrap_err()
                .contains("min=0")
        );
    }

    #[test]
    fn missing_credentials_read_as_their_cause_and_their_fix() {
        let e = ApiError::new(
            ErrorKind::Auth,
            "CredentialsError",
            "dispatch failure: other: the credential provider was not enabled: profile `carol` was not defined: could not find source profile carol (DispatchFailure(…))",
        );
        let said = refused("fleet-team", &e);
        assert!(
            said.starts_with(
                "team table fleet-team: no credentials (profile `carol` was not defined)."
            ),
            "{said}"
        );
        assert!(said.contains("--team-profile PROFILE"), "{said}");
        assert!(!said.contains("DispatchFailure"), "{said}");
    }

    #[test]
    fn the_heartbeat_and_the_margin_fit_in_the_lease() {
        let s = Settings {
            lease: Duration::from_secs(120),
            approval: None,
        };
        assert_eq!(s.heartbeat(), Duration::from_secs(40));
        assert_eq!(s.margin(), Duration::from_secs(45));
        let short = Settings {
            lease: Duration::from_secs(6),
            approval: None,
        };
        assert_eq!(short.margin(), Duration::from_secs(3));
        assert!(short.heartbeat() + short.margin() < short.lease);
    }
}
