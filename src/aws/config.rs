//! Where calls go and with which credentials: aws-config's default chain (profile, region,
//! endpoint flags and the standard AWS_* variables), or the in-process simulator in demo mode.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::region::Region;

use super::ApiError;

/// One scope to reach: a context's profile in one region (or the profile's own region).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub context: String,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub read_only: bool,
    pub label: Option<String>,
    pub colour: Option<String>,
    /// The in-process simulator's key pair: nothing is read from the environment or profiles.
    pub demo_key: Option<(String, String)>,
}

/// Where one scope's calls go, as the header shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// The context's name: a config file's, or the profile's for `--profiles`.
    pub context: String,
    pub profile: String,
    pub region: String,
    pub panorama_endpoint: String,
    pub snow_endpoint: String,
    pub demo: bool,
    pub read_only: bool,
    pub label: Option<String>,
    pub colour: Option<String>,
    /// The account, once a listed device's ARN has named it.
    pub account: Option<String>,
    /// When the profile's SSO token expires (epoch seconds), for SSO profiles.
    pub sso_expires: Option<u64>,
}

impl Connection {
    /// "context/region": how devices, plans and the journal name the scope.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.context, self.region)
    }
}

/// The SDK clients the worker owns. Panorama is absent where its calls would reach AWS's own
/// endpoint, since AWS ended the service.
#[derive(Clone, Debug)]
pub struct Clients {
    pub panorama: Option<aws_sdk_panorama::Client>,
    pub snow: aws_sdk_snowdevicemanagement::Client,
}

impl Clients {
    pub fn panorama(&self) -> Result<&aws_sdk_panorama::Client, ApiError> {
        self.panorama.as_ref().ok_or_else(ApiError::panorama_ended)
    }
}

/// The operations that change devices. In read-only mode none of them leaves the process.
pub const MUTATING_OPERATIONS: &[&str] = &["CreateJobForDevices", "CreateTask", "CancelTask"];

/// Refuses mutating operations inside the SDK, before they are serialized: whatever asks for
/// one, the request never reaches the network.
#[derive(Debug)]
struct ReadOnly;

impl Intercept for ReadOnly {
    fn name(&self) -> &'static str {
        "fleetdeck-read-only"
    }

    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Fail closed: an operation that cannot be named is not let through.
        let Some(operation) = cfg.load::<Metadata>().map(Metadata::name) else {
            return Err("read-only mode: an unnamed operation was not sent".into());
        };
        if MUTATING_OPERATIONS.contains(&operation) {
            return Err(format!("read-only mode: {operation} was not sent").into());
        }
        Ok(())
    }
}

fn clients(config: &aws_types::SdkConfig, panorama: bool, read_only: bool) -> Clients {
    let mut p = aws_sdk_panorama::config::Builder::from(config);
    let mut s = aws_sdk_snowdevicemanagement::config::Builder::from(config);
    if read_only {
        p = p.interceptor(ReadOnly);
        s = s.interceptor(ReadOnly);
    }
    Clients {
        panorama: panorama.then(|| aws_sdk_panorama::Client::from_conf(p.build())),
        snow: aws_sdk_snowdevicemanagement::Client::from_conf(s.build()),
    }
}

/// Per attempt and per operation (three attempts' worth); the SDK sets none by default.
pub fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(5)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3)
        .build()
}

pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(250))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What can be said before any configuration is loaded: flags and environment only, so the
/// first frame never waits.
pub fn first_guess(target: &Target) -> Connection {
    if let Some(endpoint) = target.demo_key.as_ref().and(target.endpoint_url.as_ref()) {
        return demo_connection(target, endpoint);
    }
    let region = target
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "(from profile)".into());
    let profile = target
        .profile
        .clone()
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let (panorama_endpoint, snow_endpoint) = endpoints(target, None, &region);
    Connection {
        context: target.context.clone(),
        profile,
        region,
        panorama_endpoint,
        snow_endpoint,
        read_only: target.read_only,
        label: target.label.clone(),
        colour: target.colour.clone(),
        ..Connection::default()
    }
}

fn demo_connection(target: &Target, endpoint: &str) -> Connection {
    Connection {
        context: target.context.clone(),
        profile: "demo".into(),
        region: target.region.clone().unwrap_or_else(|| "us-east-1".into()),
        panorama_endpoint: endpoint.into(),
        snow_endpoint: endpoint.into(),
        demo: true,
        read_only: target.read_only,
        label: target.label.clone(),
        colour: target.colour.clone(),
        ..Connection::default()
    }
}

/// The endpoint each service's calls go to: the flag, the service's own variable, the general
/// variable or profile setting, or AWS's default endpoint for the region.
fn endpoints(target: &Target, configured: Option<&str>, region: &str) -> (String, String) {
    let general = target
        .endpoint_url
        .clone()
        .or_else(|| configured.map(str::to_string));
    let pick = |service_var: &str, default_host: &str| {
        target
            .endpoint_url
            .clone()
            .or_else(|| env(service_var))
            .or_else(|| general.clone())
            .unwrap_or_else(|| format!("https://{default_host}.{region}.amazonaws.com"))
    };
    (
        pick("AWS_ENDPOINT_URL_PANORAMA", "panorama"),
        pick(
            "AWS_ENDPOINT_URL_SNOW_DEVICE_MANAGEMENT",
            "snow-device-management",
        ),
    )
}

fn is_aws_endpoint(url: &str) -> bool {
    url.contains(".amazonaws.com")
}

/// Loads configuration through aws-config's default chain. Credentials are resolved lazily by
/// the SDK, so missing ones surface as an error on the first call, not here.
pub async fn load(target: &Target, attempt: Duration) -> (Clients, Connection) {
    if let (Some((key, secret)), Some(endpoint)) = (&target.demo_key, &target.endpoint_url) {
        return demo(target, endpoint, key, secret, attempt);
    }
    let read_only = target.read_only;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retries())
        .timeout_config(timeouts(attempt));
    if let Some(p) = &target.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &target.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &target.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let config = loader.load().await;
    let region = config
        .region()
        .map_or_else(|| "(no region)".to_string(), |r| r.to_string());
    let (panorama_endpoint, snow_endpoint) = endpoints(target, config.endpoint_url(), &region);
    let panorama = !is_aws_endpoint(&panorama_endpoint);
    let profile = target
        .profile
        .clone()
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let connection = Connection {
        context: target.context.clone(),
        sso_expires: super::sso::expiry(&profile),
        profile,
        region,
        panorama_endpoint,
        snow_endpoint,
        read_only,
        label: target.label.clone(),
        colour: target.colour.clone(),
        ..Connection::default()
    };
    (clients(&config, panorama, read_only), connection)
}

/// Clients for the in-process simulator: its endpoint and key pair, nothing from the
/// environment.
fn demo(
    target: &Target,
    endpoint: &str,
    access_key: &str,
    secret: &str,
    attempt: Duration,
) -> (Clients, Connection) {
    let connection = demo_connection(target, endpoint);
    let region = connection.region.clone();
    let credentials = Credentials::new(access_key, secret, None, None, "fleetdeck-demo");
    let config = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .retry_config(retries())
        .timeout_config(timeouts(attempt))
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .build();
    (clients(&config, true, target.read_only), connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_endpoints_are_recognised() {
        assert!(is_aws_endpoint("https://panorama.us-east-1.amazonaws.com"));
        assert!(!is_aws_endpoint("http://127.0.0.1:4580"));
    }

    #[test]
    fn the_flag_wins_for_both_services() {
        let target = Target {
            endpoint_url: Some("http://127.0.0.1:4580".into()),
            ..Target::default()
        };
        let (p, s) = endpoints(&target, Some("http://elsewhere"), "us-east-1");
        assert_eq!(p, "http://127.0.0.1:4580");
        assert_eq!(s, "http://127.0.0.1:4580");
    }
}
