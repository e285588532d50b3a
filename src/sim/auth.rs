//! SigV4 verification, as AWS does it. The signature is recomputed with the official
//! `aws-sigv4` signer over exactly the headers the client says it signed, then compared, so a
//! request signed with any other key, for any other body, or altered on the way is refused.
//! Both places a signature can travel are checked: the Authorization header and the query
//! string of a presigned URL. Everything but the signature itself is checked before the body
//! is read ([`authenticate`]), so an unsigned request never gets its body read.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use http::StatusCode;
use http::request::Parts;

use super::wire::{ApiError, Service};

/// AWS refuses a signature whose time is further than this from its own clock.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest a presigned URL may live: seven days, as SigV4 allows.
const MAX_EXPIRES: u64 = 7 * 24 * 3600;
/// The query parameters that carry a presigned URL's signature.
const QUERY_AUTH: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Who signed a request, and for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The signer's account: its index in the `Keyring`.
    pub account: usize,
    pub region: String,
    pub service: Service,
}

#[derive(Debug, Clone)]
struct Key {
    id: String,
    secret: String,
    /// Temporary credentials come with a token every request must carry; long-term keys
    /// have none, and a request that carries one is refused.
    token: Option<String>,
}

/// The key pairs the simulator accepts, one per account, in account order.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// Adds an account's long-term key pair; its index is the number of pairs added before it.
    pub fn add(&mut self, access_key_id: &str, secret_access_key: &str) {
        self.add_with_token(access_key_id, secret_access_key, None);
    }

    /// Adds an account's key pair with the session token its requests must carry, if any.
    pub fn add_with_token(&mut self, access_key_id: &str, secret: &str, token: Option<&str>) {
        self.keys.push(Key {
            id: access_key_id.to_string(),
            secret: secret.to_string(),
            token: token.map(str::to_string),
        });
    }

    /// The account an access key belongs to, and its secret.
    pub fn lookup(&self, access_key_id: &str) -> Option<(usize, &str)> {
        self.find(access_key_id)
            .map(|(i, k)| (i, k.secret.as_str()))
    }

    fn find(&self, access_key_id: &str) -> Option<(usize, &Key)> {
        self.keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.id == access_key_id)
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

fn invalid_token() -> ApiError {
    forbidden(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
}

fn parse_credential(credential: &str) -> Result<[&str; 4], ApiError> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(incomplete(&format!(
            "a Credential of the form KEY/DATE/REGION/SERVICE/aws4_request, not '{credential}'"
        )));
    };
    Ok([access_key, date, region, service])
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
    let [access_key, date, region, service] = parse_credential(credential)?;
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

/// The one value of a header that may appear at most once; a second one is refused, as AWS
/// refuses it (which of two dates or signatures would be the real one?).
fn single_header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = parts.headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(incomplete(&format!("exactly one '{name}' header, not two")));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| incomplete(&format!("a readable '{name}' header")))
}

/// A request's query string as decoded pairs.
fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A request whose signature has yet to be checked against its body: who it claims to be,
/// already checked against the keyring, the clock and its own headers.
#[derive(Debug)]
pub struct Pending {
    scope: Scope,
    access_key: String,
    secret: String,
    token: Option<String>,
    signed_headers: Vec<String>,
    signature: String,
    signed_at: SystemTime,
    /// For a presigned URL, how long it is valid for.
    expires: Option<Duration>,
}

impl Pending {
    /// The service the credential is scoped to: whose error shapes the answer takes.
    pub fn service(&self) -> Service {
        self.scope.service
    }

    /// Recomputes the signature over the body and compares.
    pub fn verify(self, parts: &Parts, body: &[u8]) -> Result<Scope, ApiError> {
        let expected = self.expected_signature(parts, body)?;
        if !constant_time_eq(expected.as_bytes(), self.signature.as_bytes()) {
            return Err(forbidden(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ));
        }
        Ok(self.scope)
    }

    fn expected_signature(&self, parts: &Parts, body: &[u8]) -> Result<String, ApiError> {
        let unreadable = || incomplete("signed headers with readable values");
        let mut headers = Vec::new();
        for name in &self.signed_headers {
            for value in parts.headers.get_all(name.as_str()) {
                headers.push((name.as_str(), value.to_str().map_err(|_| unreadable())?));
            }
        }
        let host = parts
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| incomplete("a 'host' header"))?;
        let path = parts.uri.path();
        let query: Cow<str> = match (self.expires, parts.uri.query()) {
            (_, None) => Cow::Borrowed(""),
            (None, Some(q)) => Cow::Borrowed(q),
            // The signer adds the presigning parameters itself: what it signs over is the
            // rest of the query, each pair as the client sent it.
            (Some(_), Some(q)) => Cow::Owned(
                q.split('&')
                    .filter(|pair| {
                        let name = pair.split('=').next().unwrap_or("");
                        !QUERY_AUTH.contains(&name)
                    })
                    .collect::<Vec<_>>()
                    .join("&"),
            ),
        };
        let uri = if query.is_empty() {
            format!("http://{host}{path}")
        } else {
            format!("http://{host}{path}?{query}")
        };
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
        if let Some(expires) = self.expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let identity: Identity = Credentials::new(
            &self.access_key,
            &self.secret,
            self.token.clone(),
            None,
            "fleetdeck-sim",
        )
        .into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(&self.scope.region)
            .name(self.scope.service.signing_name())
            .time(self.signed_at)
            .settings(settings)
            .build()
            .map_err(|_| incomplete("a complete credential scope"))?;
        let output = sign(signable, &params.into())
            .map_err(|_| incomplete("a request that can be signed"))?;
        Ok(output.signature().to_string())
    }
}

/// The signature's parts, from the Authorization header or a presigned URL's query.
struct Claim {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    token: Option<String>,
    expires: Option<Duration>,
}

fn header_claim(parts: &Parts, header: &str) -> Result<Claim, ApiError> {
    let auth = parse_authorization(header)?;
    let amz_date = single_header(parts, "x-amz-date")?
        .ok_or_else(|| incomplete("existence of a 'X-Amz-Date' header"))?;
    Ok(Claim {
        access_key: auth.access_key.to_string(),
        date: auth.date.to_string(),
        region: auth.region.to_string(),
        service: auth.service.to_string(),
        signed_headers: auth.signed_headers.iter().map(|h| h.to_string()).collect(),
        signature: auth.signature.to_string(),
        amz_date: amz_date.to_string(),
        token: single_header(parts, "x-amz-security-token")?.map(str::to_string),
        expires: None,
    })
}

fn query_claim(pairs: &[(String, String)]) -> Result<Claim, ApiError> {
    let one = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut found = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = found.next();
        if found.next().is_some() {
            return Err(incomplete(&format!("exactly one '{name}' query parameter")));
        }
        Ok(first.map(String::as_str))
    };
    let needed = |name: &str| -> Result<&str, ApiError> {
        one(name)?.ok_or_else(|| {
            forbidden(
                "IncompleteSignatureException",
                format!("AWS query-string parameters must include '{name}'."),
            )
        })
    };
    if needed("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(incomplete("the AWS4-HMAC-SHA256 algorithm"));
    }
    let credential = needed("X-Amz-Credential")?;
    let [access_key, date, region, service] = parse_credential(credential)?;
    let expires = needed("X-Amz-Expires")?;
    let expires = expires
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=MAX_EXPIRES).contains(s))
        .ok_or_else(|| {
            forbidden(
                "AuthorizationQueryParametersError",
                format!(
                    "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES}, not '{expires}'."
                ),
            )
        })?;
    Ok(Claim {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: needed("X-Amz-SignedHeaders")?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: needed("X-Amz-Signature")?.to_string(),
        amz_date: needed("X-Amz-Date")?.to_string(),
        token: one("X-Amz-Security-Token")?.map(str::to_string),
        expires: Some(Duration::from_secs(expires)),
    })
}

/// Checks everything about a request's signature that its body does not decide, at
/// wall-clock time `now`: the key (which decides the account), the token, the scope, the
/// time, and that every signed header is there exactly as often as it may be.
pub fn authenticate(
    parts: &Parts,
    keyring: &Keyring,
    now: SystemTime,
) -> Result<Pending, ApiError> {
    let header = single_header(parts, "authorization")?;
    let pairs = query_pairs(parts);
    let presigned = pairs
        .iter()
        .any(|(k, _)| QUERY_AUTH[..6].contains(&k.as_str()));
    let claim = match (header, presigned) {
        (Some(_), true) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.",
            ));
        }
        (Some(header), false) => header_claim(parts, header)?,
        (None, true) => query_claim(&pairs)?,
        (None, false) => {
            return Err(forbidden(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        }
    };
    let Some((account, key)) = keyring.find(&claim.access_key) else {
        return Err(forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    // A token with a long-term key, none with a temporary one, or someone else's.
    if claim.token != key.token {
        return Err(invalid_token());
    }
    let Some(service) = Service::from_signing_name(&claim.service) else {
        return Err(forbidden(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: 'panorama' or 'snow-device-management', not '{}'.",
                claim.service
            ),
        ));
    };
    let amz_date = claim.amz_date.as_str();
    let signed_at =
        parse_amz_date(amz_date).ok_or_else(|| incomplete("a valid 'X-Amz-Date' header"))?;
    if !amz_date.starts_with(&claim.date) {
        return Err(forbidden(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid date: {}, not {}.",
                &amz_date[..8],
                claim.date
            ),
        ));
    }
    let ahead = signed_at.duration_since(now).unwrap_or_default();
    let behind = now.duration_since(signed_at).unwrap_or_default();
    match claim.expires {
        None if ahead.max(behind) > MAX_SKEW => {
            return Err(forbidden(
                "InvalidSignatureException",
                format!(
                    "Signature expired: {amz_date} is outside the 5 minute window of the server's time."
                ),
            ));
        }
        Some(_) if ahead > MAX_SKEW => {
            return Err(forbidden(
                "InvalidSignatureException",
                format!(
                    "Signature not yet current: {amz_date} is more than 5 minutes ahead of the server's time."
                ),
            ));
        }
        Some(expires) if behind > expires => {
            return Err(forbidden(
                "InvalidSignatureException",
                format!(
                    "Signature expired: {amz_date} plus X-Amz-Expires {}s is earlier than the server's time.",
                    expires.as_secs()
                ),
            ));
        }
        _ => {}
    }
    if !claim.signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("the 'host' header to be signed"));
    }
    // Every header named as signed must be there: a signature over fewer headers than it
    // claims is no signature over them.
    if let Some(missing) = claim
        .signed_headers
        .iter()
        .find(|h| !parts.headers.contains_key(h.as_str()))
    {
        return Err(incomplete(&format!(
            "the signed header '{missing}' to be present in the request"
        )));
    }
    Ok(Pending {
        scope: Scope {
            account,
            region: claim.region,
            service,
        },
        access_key: claim.access_key,
        secret: key.secret.clone(),
        token: claim.token,
        signed_headers: claim.signed_headers,
        signature: claim.signature,
        signed_at,
        expires: claim.expires,
    })
}

/// [`authenticate`], then the signature over `body`.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    keyring: &Keyring,
    now: SystemTime,
) -> Result<Scope, ApiError> {
    authenticate(parts, keyring, now)?.verify(parts, body)
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
