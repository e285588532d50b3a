//! SDK errors, typed as far as the UI and the dispatcher must tell them apart, each keeping
//! the AWS error code and message for the operator.

use std::fmt;

use aws_sdk_panorama::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Throttled,
    Validation,
    NotFound,
    Conflict,
    /// Missing, expired or refused credentials.
    Auth,
    /// The request may or may not have reached the service (dropped connection, 5xx).
    Ambiguous,
    /// The request never left (no connection could be made).
    NotSent,
    Timeout,
    /// The service is not available here (Panorama on AWS after 2026-05-31).
    Unavailable,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn panorama_ended() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "PanoramaEnded",
            "AWS ended Panorama on 2026-05-31; point --endpoint-url at a Panorama simulator such as `fleetdeck sim`",
        )
    }

    /// Whether the call certainly did not take effect, so sending it again is safe.
    pub fn certainly_not_applied(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled
                | ErrorKind::Validation
                | ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::Auth
                | ErrorKind::NotSent
        )
    }

    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::ServiceError(_) => {
                let code = err.code().unwrap_or("UnknownError").to_string();
                let message = err.message().unwrap_or("(no message)").to_string();
                let status = err.raw_response().map_or(0, |r| r.status().as_u16());
                Self::new(kind_of(&code, status), code, message)
            }
            SdkError::TimeoutError(_) => Self::new(
                ErrorKind::Timeout,
                "Timeout",
                "the call did not finish in time; it may or may not have taken effect",
            ),
            SdkError::DispatchFailure(failure) => {
                let text = DisplayErrorContext(&err).to_string();
                // "the credential provider was not enabled", "no credentials", "identity …".
                let lower = text.to_lowercase();
                if failure.is_user() || lower.contains("credential") || lower.contains("identity") {
                    Self::new(ErrorKind::Auth, "CredentialsError", first_line(&text))
                } else if failure.is_io() && !failure.is_timeout() {
                    // The connection failed: a request whose answer was lost may have taken effect.
                    Self::new(ErrorKind::Ambiguous, "ConnectionError", first_line(&text))
                } else if failure.is_timeout() {
                    Self::new(ErrorKind::Timeout, "Timeout", first_line(&text))
                } else {
                    Self::new(ErrorKind::Ambiguous, "DispatchFailure", first_line(&text))
                }
            }
            SdkError::ResponseError(_) => Self::new(
                ErrorKind::Ambiguous,
                "ResponseError",
                first_line(&DisplayErrorContext(&err).to_string()),
            ),
            SdkError::ConstructionFailure(_) => {
                let text = DisplayErrorContext(&err).to_string();
                let (kind, code) = if text.contains("read-only mode") {
                    (ErrorKind::Validation, "ReadOnly")
                } else if text.contains("credentials") || text.contains("identity") {
                    (ErrorKind::Auth, "CredentialsError")
                } else {
                    (ErrorKind::NotSent, "RequestNotSent")
                };
                Self::new(kind, code, first_line(&text))
            }
            _ => Self::new(
                ErrorKind::Other,
                "SdkError",
                first_line(&DisplayErrorContext(&err).to_string()),
            ),
        }
    }
}

fn kind_of(code: &str, status: u16) -> ErrorKind {
    match code {
        "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            ErrorKind::Throttled
        }
        "ValidationException" | "SerializationException" => ErrorKind::Validation,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ConflictException" => ErrorKind::Conflict,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId" => ErrorKind::Auth,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status >= 500 => ErrorKind::Ambiguous,
        _ => ErrorKind::Other,
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or(text)
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(kind_of("ThrottlingException", 429), ErrorKind::Throttled);
        assert_eq!(kind_of("ConflictException", 409), ErrorKind::Conflict);
        assert_eq!(
            kind_of("InternalServerException", 500),
            ErrorKind::Ambiguous
        );
        assert_eq!(kind_of("InvalidSignatureException", 403), ErrorKind::Auth);
        assert_eq!(kind_of("Whatever", 429), ErrorKind::Throttled);
    }

    #[test]
    fn only_sure_failures_are_safe_to_resend() {
        assert!(
            ApiError::new(ErrorKind::Throttled, "ThrottlingException", "x").certainly_not_applied()
        );
        assert!(
            !ApiError::new(ErrorKind::Ambiguous, "InternalServerException", "x")
                .certainly_not_applied()
        );
        assert!(!ApiError::new(ErrorKind::Timeout, "Timeout", "x").certainly_not_applied());
    }
}
