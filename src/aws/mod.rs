//! The SDK boundary: loading configuration through aws-config, and translating between SDK
//! types and fleetdeck's own. Only this module and `worker` see SDK types.

pub mod advice;
pub mod cloudwatch;
pub mod config;
pub mod error;
pub mod panorama;
pub mod snow;
pub mod sso;

pub use config::{Clients, Connection, Target};
pub use error::{ApiError, ErrorKind};

/// What a create call made: the job or task id, and the request id AWS gave the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub request_id: Option<String>,
}

/// An SDK tag map, in a stable order for display and sorting.
fn tags(map: Option<&std::collections::HashMap<String, String>>) -> crate::fleet::Tags {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The account a device's ARN names. The ARN itself is not kept: nothing after the read
/// needs it, and 100,000 of them would be about 10 MB of the UI's memory.
fn account(arn: Option<&str>) -> Option<compact_str::CompactString> {
    arn.and_then(crate::fleet::account_of_arn).map(Into::into)
}

/// restJson timestamps as the UI shows them: seconds since the epoch.
fn epoch(t: Option<&aws_smithy_types::DateTime>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}
