//! Reading request members and checking them against the models' constraints, with the
//! messages AWS writes ("1 validation error detected: Value 'x' at 'y' failed to satisfy ...").

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::wire::{ApiError, ApiResult, Service};

/// One parsed request: path parameters in route order, the query string and the JSON body.
#[derive(Debug, Default)]
pub struct ApiRequest {
    pub path: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Map<String, Value>,
}

impl ApiRequest {
    pub fn parse(path: Vec<String>, query: Option<&str>, body: &[u8]) -> ApiResult<Self> {
        let query = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(serialization("the request body must be a JSON object")),
                Err(e) => {
                    return Err(serialization(&format!(
                        "the request body is not valid JSON: {e}"
                    )));
                }
            }
        };
        Ok(Self { path, query, body })
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// An integer query member, e.g. MaxResults.
    pub fn query_int(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.query(name) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<i64>()
                .map(Some)
                .map_err(|_| serialization(&format!("'{name}' must be an integer, got '{raw}'"))),
        }
    }

    pub fn body_str(&self, name: &str) -> ApiResult<Option<String>> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(serialization(&format!("'{name}' must be a string"))),
        }
    }

    pub fn body_list_of_str(&self, name: &str) -> ApiResult<Option<Vec<String>>> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(serialization(&format!(
                        "'{name}' must be a list of strings"
                    ))),
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(serialization(&format!("'{name}' must be a list"))),
        }
    }

    pub fn body_map_of_str(&self, name: &str) -> ApiResult<Option<Vec<(String, String)>>> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(serialization(&format!("'{name}' must be a map of strings"))),
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(serialization(&format!("'{name}' must be a map"))),
        }
    }

    pub fn body_object(&self, name: &str) -> ApiResult<Option<&Map<String, Value>>> {
        object_member(&self.body, name)
    }
}

pub fn object_member<'a>(
    map: &'a Map<String, Value>,
    name: &str,
) -> ApiResult<Option<&'a Map<String, Value>>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(serialization(&format!("'{name}' must be a structure"))),
    }
}

/// A body AWS cannot deserialize; restJson1 services answer 400 SerializationException.
pub fn serialization(detail: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "SerializationException",
        detail,
    )
}

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// A fleet file's tags, against the same rules a call's are held to: the first broken one.
pub fn tag_problem(tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let mut c = Checker::default();
    c.tags("tags", tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c.violations.into_iter().next().map(|(_, m)| m)
}

/// Collects every constraint violation of one request, then reports them together.
#[derive(Default)]
pub struct Checker {
    violations: Vec<(String, String)>,
}

fn shown(value: &str) -> String {
    format!("'{value}'")
}

impl Checker {
    fn fail(&mut self, field: &str, value: String, constraint: String) {
        self.violations.push((
            field.to_string(),
            format!("Value {value} at '{field}' failed to satisfy constraint: {constraint}"),
        ));
    }

    pub fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.fail(field, "null".into(), "Member must not be null".into());
        }
    }

    pub fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.fail(
                field,
                shown(value),
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.fail(
                field,
                shown(value),
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn pattern(&mut self, field: &str, value: &str, pattern: &Regex, as_written: &str) {
        if !pattern.is_match(value) {
            self.fail(
                field,
                shown(value),
                format!("Member must satisfy regular expression pattern: {as_written}"),
            );
        }
    }

    pub fn one_of(&mut self, field: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.fail(
                field,
                shown(value),
                format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    pub fn range(&mut self, field: &str, value: i64, min: i64, max: i64) {
        if value < min {
            self.fail(
                field,
                value.to_string(),
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.fail(
                field,
                value.to_string(),
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    pub fn count(&mut self, field: &str, len: usize, min: usize, max: usize) {
        let value = format!("of {len} items");
        if len < min {
            self.fail(
                field,
                value,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.fail(
                field,
                value,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// AWS's tagging rules, which Snow's model leaves to prose: at most 50 tags; a key of
    /// 1 to 128 characters, a value of at most 256; letters, digits, spaces and `_.:/=+-@`
    /// only; and no key in the `aws:` prefix, which AWS keeps for itself.
    pub fn tags<'a>(
        &mut self,
        field: &str,
        tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) {
        self.count(field, tags.len(), 0, MAX_TAGS);
        for (key, value) in tags {
            let at = format!("{field}.{key}");
            self.length(&format!("{at} (key)"), key, 1, 128);
            self.length(&format!("{at} (value)"), value, 0, 256);
            for (what, text) in [("key", key), ("value", value)] {
                if !text.chars().all(tag_char) {
                    self.rule(
                        &at,
                        &format!(
                            "Value '{text}' at '{at}' failed to satisfy constraint: a tag {what} holds only letters, digits, spaces and _ . : / = + - @"
                        ),
                    );
                }
            }
            if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
                self.rule(
                    &at,
                    &format!("Value '{key}' at '{at}' failed to satisfy constraint: the aws: prefix is reserved for AWS use"),
                );
            }
        }
    }

    /// A rule the models state in prose rather than as a constraint trait.
    pub fn rule(&mut self, field: &str, message: &str) {
        self.violations
            .push((field.to_string(), message.to_string()));
    }

    pub fn finish(self, service: Service) -> ApiResult<()> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let n = self.violations.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let details: Vec<&str> = self.violations.iter().map(|(_, m)| m.as_str()).collect();
        let message = format!("{n} validation {plural} detected: {}", details.join("; "));
        let error = ApiError::validation(message);
        match service {
            // Panorama's ValidationException also carries a reason and the failing fields.
            Service::Panorama => {
                let fields: Vec<Value> = self
                    .violations
                    .iter()
                    .map(|(name, msg)| serde_json::json!({ "Name": name, "Message": msg }))
                    .collect();
                Err(error
                    .with("Reason", "FIELD_VALIDATION_FAILED")
                    .with("Fields", fields))
            }
            Service::Snow => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_violation_into_one_message() {
        let mut c = Checker::default();
        c.length("description", &"x".repeat(129), 1, 128);
        c.count("targets", 11, 1, 10);
        let err = c.finish(Service::Snow).unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(
            err.message.starts_with("2 validation errors detected"),
            "{}",
            err.message
        );
        assert!(err.message.contains("at 'description'"));
        assert!(err.message.contains("at 'targets'"));
    }

    #[test]
    fn panorama_errors_name_the_fields() {
        let mut c = Checker::default();
        c.required::<String>("JobType", &None);
        let err = c.finish(Service::Panorama).unwrap_err();
        assert_eq!(err.extra["Fields"][0]["Name"], "JobType");
        assert_eq!(err.extra["Reason"], "FIELD_VALIDATION_FAILED");
    }

    #[test]
    fn bad_json_is_a_serialization_error() {
        let err = ApiRequest::parse(vec![], None, b"{nope").unwrap_err();
        assert_eq!(err.code, "SerializationException");
        let err = ApiRequest::parse(vec![], None, b"[1]").unwrap_err();
        assert_eq!(err.code, "SerializationException");
    }
}
