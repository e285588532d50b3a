//! SigV4 verification. The signature is recomputed with the official `aws-sigv4` signer over
//! exactly the headers the client says it signed, then compared, so a request signed with any
//! other key, for any other body, or altered on the way is refused as AWS refuses it.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use http::StatusCode;
use http::request::Parts;

use super::wire::{ApiError, Service};

/// AWS refuses a signature whose time is further than this from its own clock.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Who signed a request, and for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The signer's account: its index in the `Keyring`.
    pub account: usize,
    pub region: String,
    pub service: Service,
}

/// The key pairs the simulator accepts, one per account, in account order.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<(String, String)>,
}

impl Keyring {
    /// Adds an account's key pair; its index is the number of pairs added before it.
    pub fn add(&mut self, access_key_id: &str, secret_access_key: &str) {
        self.keys
            .push((access_key_id.to_string(), secret_access_key.to_string()));
    }

    /// The account an access key belongs to, and its secret.
    pub fn lookup(&self, access_key_id: &str) -> Option<(usize, &str)> {
        self.keys
            .iter()
            .position(|(k, _)| k == access_key_id)
            .map(|i| (i, self.keys[i].1.as_str()))
    }
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

fn incomplete(detail: &str) -> ApiError {
    forbidden(
        "IncompleteSignatureException",
        format!("Authorization header requires {detail}."),
    )
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, ApiError> {
    let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete("the AWS4-HMAC-SHA256 algorithm"));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| incomplete("'Credential' parameter"))?;
    let signed = signed.ok_or_else(|| incomplete("'SignedHeaders' parameter"))?;
    let signature = signature.ok_or_else(|| incomplete("'Signature' parameter"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(incomplete(&format!(
            "a Credential of the form KEY/DATE/REGION/SERVICE/aws4_request, not '{credential}'"
        )));
    };
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    Some(SystemTime::from(parsed))
}

/// Checks the request's signature with the secret of the access key it names, at wall-clock
/// time `now`; the key decides the account.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    keyring: &Keyring,
    now: SystemTime,
) -> Result<Scope, ApiError> {
    let Some(header) = parts.headers.get("authorization") else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let header = header
        .to_str()
        .map_err(|_| incomplete("a readable value"))?;
    let auth = parse_authorization(header)?;
    let Some((account, secret)) = keyring.lookup(auth.access_key) else {
        return Err(forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let Some(service) = Service::from_signing_name(auth.service) else {
        return Err(forbidden(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: 'panorama' or 'snow-device-management', not '{}'.",
                auth.service
            ),
        ));
    };
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("existence of a 'X-Amz-Date' header"))?;
    let signed_at =
        parse_amz_date(amz_date).ok_or_else(|| incomplete("a valid 'X-Amz-Date' header"))?;
    if !amz_date.starts_with(auth.date) {
        return Err(forbidden(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid date: {}, not {}.",
                &amz_date[..8],
                auth.date
            ),
        ));
    }
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(forbidden(
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is outside the 5 minute window of the server's time."
            ),
        ));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(incomplete("the 'host' header to be signed"));
    }

    let expected = expected_signature(parts, body, &auth, secret, signed_at)?;
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(Scope {
        account,
        region: auth.region.to_string(),
        service,
    })
}

fn expected_signature(
    parts: &Parts,
    body: &[u8],
    auth: &Authorization,
    secret: &str,
    signed_at: SystemTime,
) -> Result<String, ApiError> {
    let unreadable = || incomplete("signed headers with readable values");
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        for value in parts.headers.get_all(*name) {
            headers.push((*name, value.to_str().map_err(|_| unreadable())?));
        }
    }
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| incomplete("a 'host' header"))?;
    let uri = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let signable = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| incomplete("a request that can be canonicalized"))?;

    // Sign exactly what the client listed: nothing excluded, nothing added but the date.
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let identity: Identity =
        Credentials::new(auth.access_key, secret, None, None, "fleetdeck-sim").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|_| incomplete("a complete credential scope"))?;
    let output =
        sign(signable, &params.into()).map_err(|_| incomplete("a request that can be signed"))?;
    Ok(output.signature().to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parts_are_read() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/panorama/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.access_key, "AKID");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.service, "panorama");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(a.signature, "abc");
    }

    #[test]
    fn malformed_authorization_is_incomplete() {
        let err = parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/x, Signature=abc")
            .err()
            .unwrap();
        assert_eq!(err.code, "IncompleteSignatureException");
        let err = parse_authorization("Basic Zm9vOmJhcg==").err().unwrap();
        assert_eq!(err.code, "IncompleteSignatureException");
    }

    fn keyring() -> Keyring {
        let mut k = Keyring::default();
        k.add("AKIDA", "secret-a");
        k.add("AKIDB", "secret-b");
        k
    }

    /// A ListDevices request signed now with `key`/`secret`, as an SDK would sign it.
    fn signed(key: &str, secret: &str) -> Parts {
        let now = SystemTime::now();
        let date = time::OffsetDateTime::from(now)
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let host = "127.0.0.1:4580";
        let identity: Identity = Credentials::new(key, secret, None, None, "test").into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("snow-device-management")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap();
        let headers = [("host", host), ("x-amz-date", date.as_str())];
        let signable = SignableRequest::new(
            "GET",
            format!("http://{host}/managed-devices"),
            headers.into_iter(),
            SignableBody::Bytes(b""),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
        let mut request = http::Request::get("/managed-devices")
            .header("host", host)
            .header("x-amz-date", &date)
            .body(())
            .unwrap();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }

    #[test]
    fn the_access_key_picks_the_account() {
        let k = keyring();
        assert_eq!(k.lookup("AKIDA"), Some((0, "secret-a")));
        assert_eq!(k.lookup("AKIDB"), Some((1, "secret-b")));
        assert_eq!(k.lookup("AKIDC"), None);
        let scope = verify(&signed("AKIDB", "secret-b"), b"", &k, SystemTime::now()).unwrap();
        assert_eq!(scope.account, 1);
        assert_eq!(scope.region, "us-east-1");
    }

    #[test]
    fn another_accounts_secret_does_not_sign_for_a_key() {
        let k = keyring();
        let err = verify(&signed("AKIDB", "secret-a"), b"", &k, SystemTime::now())
            .err()
            .unwrap();
        assert_eq!(err.code, "InvalidSignatureException");
        let err = verify(&signed("AKIDC", "secret-a"), b"", &k, SystemTime::now())
            .err()
            .unwrap();
        assert_eq!(err.code, "UnrecognizedClientException");
    }

    #[test]
    fn amz_dates_parse() {
        assert!(parse_amz_date("20261123T103000Z").is_some());
        assert!(parse_amz_date("2026-11-23").is_none());
    }
}
