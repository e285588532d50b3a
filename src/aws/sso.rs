//! When an SSO profile's token expires, read from the AWS CLI's token cache the way the CLI
//! and the SDKs name it: `~/.aws/sso/cache/<sha1 of the sso-session name, or of the legacy
//! start URL>.json`, field `expiresAt`. Only for the header: the SDK does the real loading.

use std::path::PathBuf;

use sha1::{Digest, Sha1};

/// The profile's SSO token expiry (epoch seconds), when it is an SSO profile with a cached
/// token.
pub fn expiry(profile: &str) -> Option<u64> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let text = std::fs::read_to_string(config).ok()?;
    let key = cache_key(&text, profile)?;
    let cached =
        std::fs::read_to_string(home.join(".aws/sso/cache").join(format!("{key}.json"))).ok()?;
    expires_at(&cached)
}

/// The cache file's name for the profile: sha1 of its sso_session, else of its sso_start_url.
fn cache_key(config: &str, profile: &str) -> Option<String> {
    let section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let mut inside = false;
    let (mut session, mut start_url) = (None, None);
    for line in config.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "sso_session" => session = Some(v.trim().to_string()),
                "sso_start_url" => start_url = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let source = session.or(start_url)?;
    Some(hex::encode(Sha1::digest(source.as_bytes())))
}

fn expires_at(cached: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(cached).ok()?;
    let text = v.get("expiresAt")?.as_str()?;
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_is_named_by_the_session_or_the_start_url() {
        let config = "[profile prod]\nsso_session = my-sso\nregion = us-east-1\n\
                      [profile old]\nsso_start_url = https://d-123.awsapps.com/start\n\
                      [profile keys]\nregion = us-east-1\n";
        // sha1("my-sso"), as the AWS CLI names the file.
        assert_eq!(
            cache_key(config, "prod").as_deref(),
            Some("0ad374308c5a4e22f723adf10145eafad7c4031c")
        );
        assert_eq!(
            cache_key(config, "old"),
            Some(hex::encode(Sha1::digest(
                b"https://d-123.awsapps.com/start"
            )))
        );
        assert_eq!(cache_key(config, "keys"), None);
        assert_eq!(cache_key(config, "missing"), None);
    }

    #[test]
    fn expiry_is_read_from_expires_at() {
        let cached =
            r#"{"accessToken":"x","expiresAt":"2026-11-25T18:00:00Z","region":"us-east-1"}"#;
        assert_eq!(expires_at(cached), Some(1_795_629_600));
        assert_eq!(expires_at("{}"), None);
    }
}
