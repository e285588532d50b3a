//! The API models' constraints on what an operator types, checked before anything is sent.
//! Forms and `fleetdeck run` both use these; each error names the field.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

static DESCRIPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9 _.,!#]*$").expect("static pattern"));

/// Snow CreateTask `description`: 1 to 128 of `[A-Za-z0-9 _.,!#]`. Empty means "none".
pub fn description(text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let len = text.chars().count();
    if len > 128 {
        return Err(format!("description is {len} characters; at most 128"));
    }
    if let Some(bad) = text.chars().find(|c| !DESCRIPTION.is_match(&c.to_string())) {
        return Err(format!(
            "description may hold letters, digits, space and _ . , ! # only, not '{bad}'"
        ));
    }
    Ok(Some(text.to_string()))
}

/// CloudWatch `AlarmName`: 1 to 255 characters (DescribeAlarms takes at most 100 names).
pub fn alarm_name(text: &str) -> Result<(), String> {
    let len = text.chars().count();
    if len == 0 || len > 255 {
        return Err(format!(
            "alarm name {text:?} is {len} characters; CloudWatch takes 1 to 255"
        ));
    }
    Ok(())
}

/// Panorama OTAJobConfig `ImageVersion`: 1 to 255 characters on one line.
pub fn image_version(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("image version is required for an OTA".into());
    }
    if text.chars().count() > 255 {
        return Err("image version is longer than 255 characters".into());
    }
    if text.contains(['\n', '\r']) {
        return Err("image version must be on one line".into());
    }
    Ok(text.to_string())
}

/// Snow CreateTask `tags`: `key=value` pairs separated by commas or spaces.
pub fn tags(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("tag '{pair}' needs the form key=value"));
        };
        if k.is_empty() {
            return Err(format!("tag '{pair}' has an empty key"));
        }
        tag_rules(k, v)?;
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("tag key '{k}' is given twice"));
        }
    }
    if out.len() > MAX_TAGS {
        return Err(format!(
            "{} tags: a task takes at most {MAX_TAGS}",
            out.len()
        ));
    }
    Ok(out)
}

/// The most tags an AWS resource takes.
pub const MAX_TAGS: usize = 50;

/// AWS's tagging rules (Snow's model leaves them to its documentation): keys of 1 to 128
/// characters and values of at most 256, letters, digits, spaces and `_ . : / = + - @`, and
/// no key starting `aws:`, which AWS keeps for its own tags.
fn tag_rules(key: &str, value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if key.chars().count() > 128 {
        return Err(format!(
            "tag key '{}…' is {} characters: at most 128",
            key.chars().take(20).collect::<String>(),
            key.chars().count()
        ));
    }
    if value.chars().count() > 256 {
        return Err(format!(
            "the value of tag '{key}' is {} characters: at most 256",
            value.chars().count()
        ));
    }
    if let Some(c) = key.chars().chain(value.chars()).find(|c| !allowed(*c)) {
        return Err(format!(
            "tag '{key}={value}' holds '{c}': tags take letters, digits, spaces and _ . : / = + - @"
        ));
    }
    if key.to_lowercase().starts_with("aws:") {
        return Err(format!(
            "tag key '{key}' starts with aws:, which AWS keeps for its own tags"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_follow_the_model() {
        assert_eq!(description(""), Ok(None));
        assert_eq!(
            description("Unlock for visit, bay #2!"),
            Ok(Some("Unlock for visit, bay #2!".into()))
        );
        let err = description("reboot; now").unwrap_err();
        assert!(err.contains("';'"), "{err}");
        assert!(description(&"a".repeat(128)).is_ok());
        assert!(
            description(&"a".repeat(129))
                .unwrap_err()
                .contains("at most 128")
        );
    }

    #[test]
    fn image_versions_are_required_and_one_line() {
        assert_eq!(image_version(" 5.0.21 "), Ok("5.0.21".into()));
        assert!(image_version("").is_err());
        assert!(image_version(&"9".repeat(256)).is_err());
    }

    #[test]
    fn tags_parse_pairs() {
        let t = tags("owner=ops, ticket=OPS-1").unwrap();
        assert_eq!(t["owner"], "ops");
        assert_eq!(t["ticket"], "OPS-1");
        assert!(tags("owner").is_err());
        assert!(tags("=x").is_err());
        assert!(tags("a=1 a=2").is_err());
        assert!(tags("").unwrap().is_empty());
    }

    #[test]
    fn tags_follow_the_aws_tagging_rules() {
        let long_key = "k".repeat(129);
        let long_value = format!("k={}", "v".repeat(257));
        let many: Vec<String> = (0..51).map(|i| format!("k{i}=v")).collect();
        for (bad, says) in [
            ("aws:owner=ops".to_string(), "aws:"),
            ("AWS:Owner=ops".to_string(), "aws:"),
            (format!("{long_key}=v"), "at most 128"),
            (long_value, "at most 256"),
            ("owner=o'brien".to_string(), "holds '''"),
            ("tick#et=1".to_string(), "holds '#'"),
            (many.join(","), "at most 50"),
        ] {
            let err = tags(&bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let ok: Vec<String> = (0..50).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tags(&ok.join(",")).unwrap().len(), 50);
        let t = tags("team=ops/edge, mail=a@b.c, k.1=+x:y").unwrap();
        assert_eq!(t["mail"], "a@b.c");
        assert_eq!(tags(&format!("{}=v", "k".repeat(128))).unwrap().len(), 1);
    }
}
