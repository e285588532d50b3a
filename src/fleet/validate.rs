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
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("tag key '{k}' is given twice"));
        }
    }
    Ok(out)
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
}
