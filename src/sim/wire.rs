//! The restJson1 envelope: JSON bodies, error shapes and the headers AWS sends with them.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::{Map, Value};

/// The two services one listener serves, told apart by the SigV4 credential scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Service {
    #[serde(rename = "panorama")]
    Panorama,
    #[serde(rename = "snow-device-management")]
    Snow,
}

impl Service {
    pub fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            "panorama" => Some(Self::Panorama),
            "snow-device-management" => Some(Self::Snow),
            _ => None,
        }
    }

    pub fn signing_name(self) -> &'static str {
        match self {
            Self::Panorama => "panorama",
            Self::Snow => "snow-device-management",
        }
    }

    /// Panorama's model spells the error message member `Message`, Snow's spells it `message`.
    fn message_member(self) -> &'static str {
        match self {
            Self::Panorama => "Message",
            Self::Snow => "message",
        }
    }
}

/// An error shape from one of the models, ready to be written the way AWS writes it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Members beside the message (ResourceId, Fields, ...), already in the model's casing.
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, member: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(member.to_string(), value.into());
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ConflictException", message)
    }

    pub fn throttled() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Rate exceeded",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "We encountered an internal error. Please try again.",
        )
    }

    pub fn unknown_operation() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "The requested operation is not recognized by the service.",
        )
    }

    /// The body and headers for `service`; `None` means the service is not known yet
    /// (authentication failed first), where AWS answers with a lower-case `message`.
    pub fn into_response(
        self,
        service: Option<Service>,
        request_id: &str,
    ) -> Response<Full<Bytes>> {
        let member = service.map_or("message", Service::message_member);
        let mut body = self.extra;
        body.insert(member.to_string(), Value::String(self.message));
        let mut response = json_response(self.status, &Value::Object(body), request_id);
        if let Ok(code) = HeaderValue::from_str(self.code) {
            response.headers_mut().insert("x-amzn-errortype", code);
        }
        response
    }
}

pub type ApiResult<T = Value> = Result<T, ApiError>;

pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    request_id: &str,
) -> Response<Full<Bytes>> {
    // Serializing our own plain structs and maps cannot fail; fall back to an empty object anyway.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// restJson1 writes timestamps as epoch seconds.
pub fn epoch(seconds: f64) -> Value {
    serde_json::Number::from_f64((seconds * 1000.0).round() / 1000.0)
        .map_or(Value::Null, Value::Number)
}

/// Builds a JSON object and leaves out members whose value is null, as AWS omits unset members.
pub fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let map: Map<String, Value> = members
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::Object(map)
}

pub fn opt_str(value: &Option<String>) -> Value {
    value
        .as_ref()
        .map_or(Value::Null, |s| Value::String(s.clone()))
}
