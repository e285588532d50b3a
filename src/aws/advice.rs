//! What an error means to the operator: a one-line cause and the fix, in place of the SDK's
//! text (which stays in the error log, `!`). Only the errors a person can act on get advice.

use super::{ApiError, Connection, ErrorKind};
use crate::fleet::Service;

/// The IAM service prefix of a call, as a policy names it.
fn iam_prefix(service: Service) -> &'static str {
    match service {
        Service::Panorama => "panorama",
        Service::Snow => "snow-device-management",
    }
}

fn endpoint(c: &Connection, service: Service) -> &str {
    match service {
        Service::Panorama => &c.panorama_endpoint,
        Service::Snow => &c.snow_endpoint,
    }
}

/// The cause and the fix of `e`, met calling `call` (ListDevices, CreateTask…) on `service`,
/// when it is one a person can act on; `None` leaves the error as the service said it.
pub fn advice(e: &ApiError, c: &Connection, service: Service, call: &str) -> Option<String> {
    let text = e.message.to_lowercase();
    let profile = &c.profile;
    let at = endpoint(c, service);
    match e.code.as_str() {
        "AccessDeniedException" => {
            return Some(format!(
                "Access denied: profile {profile} may not call {}:{call} in {}; grant that IAM action",
                iam_prefix(service),
                c.region
            ));
        }
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => {
            return Some(format!(
                "The credentials of profile {profile} have expired: renew them (for SSO: aws sso login --profile {profile})"
            ));
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" => {
            return Some(format!(
                "The access key of profile {profile} is not known at {at}: check the key pair the profile uses"
            ));
        }
        "InvalidSignatureException" => {
            return Some(format!(
                "The secret key of profile {profile} does not match its access key: fix the profile's secret"
            ));
        }
        _ => {}
    }
    if e.kind == ErrorKind::Auth {
        if text.contains("sso") && (text.contains("expired") || text.contains("token")) {
            return Some(format!(
                "The SSO session of profile {profile} has expired: run aws sso login --profile {profile}"
            ));
        }
        if text.contains("expired") {
            return Some(format!(
                "The credentials of profile {profile} have expired: renew them"
            ));
        }
        // The chain ran out: no profile keys, no environment, and (off EC2) no IMDS either.
        if text.contains("no credentials")
            || text.contains("not enabled")
            || text.contains("loading credentials")
        {
            return Some(format!(
                "No AWS credentials for profile {profile}: run aws configure --profile {profile} (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; --demo needs none)"
            ));
        }
        if text.contains("region") {
            return Some(format!(
                "No AWS region is set for profile {profile}: pass --region or set AWS_REGION"
            ));
        }
    }
    if matches!(
        e.kind,
        ErrorKind::Ambiguous | ErrorKind::NotSent | ErrorKind::Timeout
    ) {
        if text.contains("connection refused") {
            return Some(format!(
                "Nothing answers at {at} (connection refused): start the endpoint (fleetdeck sim) or fix --endpoint-url"
            ));
        }
        if text.contains("dns error") || text.contains("failed to lookup") {
            return Some(format!(
                "The host of {at} cannot be found (DNS): check --endpoint-url or the network"
            ));
        }
        if e.kind == ErrorKind::Timeout || text.contains("timed out") {
            return Some(format!(
                "{at} did not answer in time: check the network or the endpoint"
            ));
        }
    }
    None
}

/// The advice when there is some, else the error as the service said it.
pub fn explain(e: &ApiError, c: &Connection, service: Service, call: &str) -> String {
    advice(e, c, service, call).unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection {
            profile: "ops".into(),
            region: "us-west-2".into(),
            panorama_endpoint: "http://127.0.0.1:4580".into(),
            snow_endpoint: "http://127.0.0.1:4580".into(),
            demo: false,
            ..Connection::default()
        }
    }

    fn said(kind: ErrorKind, code: &str, message: &str) -> String {
        let e = ApiError::new(kind, code, message);
        advice(&e, &connection(), Service::Snow, "ListDevices").unwrap_or_default()
    }

    #[test]
    fn each_error_a_person_can_fix_names_its_cause_and_fix() {
        let none = said(
            ErrorKind::Auth,
            "CredentialsError",
            "dispatch failure: other: the credential provider was not enabled: no credentials found in chain",
        );
        assert!(
            none.starts_with("No AWS credentials for profile ops"),
            "{none}"
        );
        assert!(none.contains("aws configure --profile ops"), "{none}");
        let chain = said(
            ErrorKind::Auth,
            "CredentialsError",
            "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session token",
        );
        assert!(
            chain.starts_with("No AWS credentials for profile ops"),
            "{chain}"
        );
        let sso = said(
            ErrorKind::Auth,
            "CredentialsError",
            "the SSO token for profile ops has expired",
        );
        assert!(sso.contains("aws sso login --profile ops"), "{sso}");
        let expired = said(ErrorKind::Auth, "ExpiredTokenException", "token expired");
        assert!(expired.contains("have expired"), "{expired}");
        let denied = said(ErrorKind::Auth, "AccessDeniedException", "not authorized");
        assert!(
            denied.contains("snow-device-management:ListDevices in us-west-2"),
            "the IAM action is named: {denied}"
        );
        let refused = said(
            ErrorKind::Ambiguous,
            "ConnectionError",
            "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)",
        );
        assert!(
            refused.starts_with("Nothing answers at http://127.0.0.1:4580 (connection refused)"),
            "{refused}"
        );
        let slow = said(
            ErrorKind::Timeout,
            "Timeout",
            "the call did not finish in time",
        );
        assert!(slow.contains("did not answer in time"), "{slow}");
        let key = said(ErrorKind::Auth, "UnrecognizedClientException", "bad key");
        assert!(key.contains("access key of profile ops"), "{key}");
        for advice in [none, sso, expired, denied, refused, slow, key] {
            assert!(
                !advice.contains("dispatch failure"),
                "no SDK text: {advice}"
            );
        }
    }

    #[test]
    fn other_errors_are_left_as_the_service_said_them() {
        let e = ApiError::new(ErrorKind::Validation, "ValidationException", "bad id");
        assert_eq!(
            advice(&e, &connection(), Service::Panorama, "DescribeDevice"),
            None
        );
        assert_eq!(
            explain(&e, &connection(), Service::Panorama, "DescribeDevice"),
            "ValidationException: bad id"
        );
    }
}
