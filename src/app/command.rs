//! The `:` command line, k9s style: `:ctx NAME[,NAME]`, `:region R[,R]`, `:profile P[,P]`,
//! `:q`. Tab completes the word under the cursor from the config file's contexts, the known
//! regions and the AWS profiles. Pure: it reads the catalog and says what to do.

use crate::contexts::{Catalog, Flags, KNOWN_REGIONS};

pub const VERBS: &[&str] = &["ctx", "region", "profile", "drift", "team", "q"];

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// Use these flags (a switch of contexts, regions or profiles).
    Use(Flags),
    Quit,
    /// Open the drift view.
    Drift,
    /// Open the team's plans.
    Team,
    /// Nothing to do but say this.
    Say(String),
}

fn list(args: &str) -> Vec<String> {
    args.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads a command line (without its `:`).
pub fn parse(line: &str, catalog: &Catalog) -> Result<Asked, String> {
    let line = line.trim();
    let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
    let args = list(args);
    let now = &catalog.flags;
    match verb {
        "q" | "q!" | "quit" => Ok(Asked::Quit),
        "drift" => Ok(Asked::Drift),
        "team" => Ok(Asked::Team),
        "ctx" | "context" if args.is_empty() => {
            let names = catalog.context_names();
            Ok(Asked::Say(if names.is_empty() {
                "No contexts are defined: add [contexts.NAME] to the config file (see the README), or use :profile".into()
            } else {
                format!("Contexts: {} (:ctx NAME[,NAME])", names.join(", "))
            }))
        }
        "ctx" | "context" => Ok(Asked::Use(Flags {
            ctx: args,
            profiles: Vec::new(),
            // A context brings its own regions.
            regions: Vec::new(),
            ..now.clone()
        })),
        "region" | "regions" if args.is_empty() => {
            Err("name a region: :region us-east-1[,us-west-2]".into())
        }
        "region" | "regions" => Ok(Asked::Use(Flags {
            regions: args,
            ..now.clone()
        })),
        "profile" | "profiles" if args.is_empty() => {
            Err("name a profile: :profile NAME[,NAME]".into())
        }
        "profile" | "profiles" => Ok(Asked::Use(Flags {
            profiles: args,
            ctx: Vec::new(),
            ..now.clone()
        })),
        "" => Ok(Asked::Say(String::new())),
        other => Err(format!(
            "unknown command :{other} (:ctx NAME, :region R[,R], :profile P, :q)"
        )),
    }
}

/// Candidates for the word being typed at the end of `line`.
pub fn candidates(line: &str, catalog: &Catalog) -> Vec<String> {
    let Some((verb, rest)) = line.split_once(' ') else {
        return starting(VERBS.iter().map(|s| s.to_string()), line);
    };
    let word = rest.rsplit([',', ' ']).next().unwrap_or_default();
    let pool: Vec<String> = match verb {
        "ctx" | "context" => catalog.context_names(),
        "region" | "regions" => KNOWN_REGIONS.iter().map(|s| s.to_string()).collect(),
        "profile" | "profiles" => catalog.profiles.clone(),
        _ => Vec::new(),
    };
    starting(pool.into_iter(), word)
}

fn starting(pool: impl Iterator<Item = String>, word: &str) -> Vec<String> {
    pool.filter(|c| c.starts_with(word)).collect()
}

/// Completes the last word: to the only candidate (and a space after a verb), or to what all
/// candidates share.
pub fn complete(line: &str, catalog: &Catalog) -> String {
    let found = candidates(line, catalog);
    let cut = line.rfind([',', ' ']).map_or(0, |i| i + 1);
    let (head, word) = line.split_at(cut);
    let is_verb = !line.contains(' ');
    match found.as_slice() {
        [] => line.to_string(),
        [one] => format!("{head}{one}{}", if is_verb { " " } else { "" }),
        many => {
            let shared = common_prefix(many);
            if shared.len() > word.len() {
                format!("{head}{shared}")
            } else {
                line.to_string()
            }
        }
    }
}

fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut n = first.len();
    for w in &words[1..] {
        n = n.min(
            first
                .chars()
                .zip(w.chars())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    first.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contexts::{self, Env};

    fn catalog() -> Catalog {
        Catalog {
            file: contexts::parse(
                "[contexts.prod]\nregions=[\"us-east-1\"]\n[contexts.prod-eu]\n[contexts.lab]\n",
            )
            .unwrap(),
            env: Env::default(),
            flags: Flags {
                ctx: vec!["lab".into()],
                read_only: true,
                ..Flags::default()
            },
            profiles: vec!["admin".into(), "audit".into()],
            demo: None,
        }
    }

    #[test]
    fn commands_become_flags() {
        let c = catalog();
        let Asked::Use(f) = parse("ctx prod,lab", &c).unwrap() else {
            panic!()
        };
        assert_eq!(f.ctx, ["prod", "lab"]);
        // What the session was started with stays (read-only here).
        assert!(f.read_only);
        let Asked::Use(f) = parse("region us-west-2, eu-west-1", &c).unwrap() else {
            panic!()
        };
        assert_eq!(
            (f.ctx, f.regions),
            (
                vec!["lab".to_string()],
                vec!["us-west-2".to_string(), "eu-west-1".to_string()]
            )
        );
        let Asked::Use(f) = parse("profile admin", &c).unwrap() else {
            panic!()
        };
        assert_eq!((f.ctx.len(), f.profiles), (0, vec!["admin".to_string()]));
        assert_eq!(parse("q", &c).unwrap(), Asked::Quit);
        assert!(
            parse("nope", &c)
                .unwrap_err()
                .contains("unknown command :nope")
        );
        assert!(parse("region", &c).unwrap_err().contains("name a region"));
        let Asked::Say(s) = parse("ctx", &c).unwrap() else {
            panic!()
        };
        assert!(s.contains("lab, prod, prod-eu"), "{s}");
    }

    #[test]
    fn tab_completes_verbs_names_regions_and_profiles() {
        let c = catalog();
        assert_eq!(complete("c", &c), "ctx ");
        assert_eq!(complete("ctx l", &c), "ctx lab");
        // Two contexts share "prod": completed as far as they agree.
        assert_eq!(complete("ctx pr", &c), "ctx prod");
        assert_eq!(candidates("ctx prod", &c), ["prod", "prod-eu"]);
        assert_eq!(
            complete("region us-east-1,us-w", &c),
            "region us-east-1,us-west-"
        );
        assert_eq!(complete("profile au", &c), "profile audit");
        assert_eq!(complete("ctx zz", &c), "ctx zz");
    }
}
