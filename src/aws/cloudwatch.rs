//! CloudWatch alarms, read for a rollout's gate: DescribeAlarms by name, translated to the
//! fleet's readings. The client has its own configuration: `--endpoint-url` is the fleet's
//! only, and aws-config's AWS_ENDPOINT_URL_CLOUDWATCH points it elsewhere.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::AlarmType;
use aws_types::region::Region;

use super::ApiError;
use crate::fleet::AlarmReading;

/// The credentials and region CloudWatch is read with: the first context's.
#[derive(Clone, Debug, Default)]
pub struct AlarmSource {
    pub profile: Option<String>,
    pub region: Option<String>,
    /// The demo's key pair, when the demo's contexts are in use.
    pub demo_key: Option<(String, String)>,
}

/// DescribeAlarms takes at most this many names per call.
const NAMES_PER_CALL: usize = 100;

pub async fn client(source: &AlarmSource, attempt: Duration) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(super::config::retries())
        .timeout_config(super::config::timeouts(attempt));
    if let Some((key, secret)) = &source.demo_key {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            key,
            secret,
            None,
            None,
            "fleetdeck-demo",
        ));
    } else if let Some(p) = &source.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &source.region {
        loader = loader.region(Region::new(r.clone()));
    }
    Client::new(&loader.load().await)
}

/// The named alarms, metric and composite, as CloudWatch has them now. A name CloudWatch
/// does not know is simply absent.
pub async fn read(client: &Client, names: &[String]) -> Result<Vec<AlarmReading>, ApiError> {
    let mut out = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut token = None;
        loop {
            let page = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token)
                .send()
                .await
                .map_err(ApiError::from_sdk)?;
            let metric = page.metric_alarms().iter().map(|a| {
                reading(
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_reason(),
                    a.state_transitioned_timestamp()
                        .or(a.state_updated_timestamp()),
                )
            });
            let composite = page.composite_alarms().iter().map(|a| {
                reading(
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_reason(),
                    a.state_transitioned_timestamp()
                        .or(a.state_updated_timestamp()),
                )
            });
            out.extend(metric.chain(composite).flatten());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

fn reading(
    name: Option<&str>,
    state: Option<&str>,
    reason: Option<&str>,
    since: Option<&aws_smithy_types::DateTime>,
) -> Option<AlarmReading> {
    Some(AlarmReading {
        name: name?.to_string(),
        state: state.unwrap_or("UNKNOWN").to_string(),
        reason: reason.unwrap_or_default().to_string(),
        since: since.map_or(0, |t| u64::try_from(t.secs()).unwrap_or(0)),
    })
}
