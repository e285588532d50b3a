//! Targeted faults: rules that each hit exactly one call, the nth of an operation, so a test
//! can make one failure happen on purpose and then assert that it did.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::routes;
use super::wire::Service;

/// Hits the `nth` call (1-based) of `operation` counted from when the rule was added, then
/// never again. `operation` is the model's name ("CreateJobForDevices"), which matches that
/// operation of either service, or "signing-name:Operation" ("panorama:ListDevices") for one
/// service only. Calls refused by authentication or throttled are not counted.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub operation: String,
    pub nth: u32,
    pub fault: TargetedFault,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetedFault {
    /// 500 InternalServerException; nothing takes effect.
    FailBefore,
    /// The call takes effect, then 500 InternalServerException.
    FailAfter,
    /// The call takes effect, then the connection is closed without an answer.
    DropAfter,
    /// The call is held this long before it takes effect, then answered normally: a client
    /// whose timeout is shorter gives up, and the call lands anyway.
    Delay(Duration),
}

/// A rule and whether it has fired.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultStatus {
    pub rule: FaultRule,
    pub hit: bool,
}

const KINDS: &str = "fail_before, fail_after, drop_after or delay";

impl TargetedFault {
    fn name(self) -> &'static str {
        match self {
            Self::FailBefore => "fail_before",
            Self::FailAfter => "fail_after",
            Self::DropAfter => "drop_after",
            Self::Delay(_) => "delay",
        }
    }

    /// From the name used on the command line and in the admin endpoint's JSON; `field` names
    /// the milliseconds as that form spells them.
    fn from_parts(kind: &str, delay_ms: Option<u64>, field: &str) -> Result<Self, String> {
        let fault = match kind {
            "fail_before" => Self::FailBefore,
            "fail_after" => Self::FailAfter,
            "drop_after" => Self::DropAfter,
            "delay" => {
                let ms = delay_ms.ok_or_else(|| {
                    format!("a delay fault needs {field}, its length in milliseconds")
                })?;
                return Ok(Self::Delay(Duration::from_millis(ms)));
            }
            other => return Err(format!("unknown fault '{other}': use {KINDS}")),
        };
        match delay_ms {
            Some(_) => Err(format!("only a delay fault takes {field}, not {kind}")),
            None => Ok(fault),
        }
    }
}

impl FaultRule {
    pub fn new(operation: impl Into<String>, nth: u32, fault: TargetedFault) -> Self {
        Self {
            operation: operation.into(),
            nth,
            fault,
        }
    }

    /// Refuses a rule that could never fire: an operation the simulator does not serve, or
    /// an `nth` of 0.
    pub fn check(&self) -> Result<(), String> {
        if self.nth == 0 {
            return Err(format!(
                "fault rule {self}: nth counts calls from 1, so it cannot be 0"
            ));
        }
        let known = match self.operation.split_once(':') {
            Some((name, operation)) => {
                let Some(service) = Service::from_signing_name(name) else {
                    return Err(format!(
                        "fault rule {self}: unknown service '{name}': use panorama or snow-device-management"
                    ));
                };
                routes::serves(Some(service), operation)
            }
            None => routes::serves(None, &self.operation),
        };
        if known {
            Ok(())
        } else {
            Err(format!(
                "fault rule {self}: no operation '{}' is served; the operations are {}",
                self.operation,
                routes::operation_names().join(", ")
            ))
        }
    }

    fn matches(&self, service: Service, operation: &str) -> bool {
        match self.operation.split_once(':') {
            Some((name, op)) => name == service.signing_name() && op == operation,
            None => self.operation == operation,
        }
    }
}

/// The command-line form, `OPERATION:NTH:KIND[:MS]`.
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.operation, self.nth, self.fault.name())?;
        if let TargetedFault::Delay(d) = self.fault {
            write!(f, ":{}", d.as_millis())?;
        }
        Ok(())
    }
}

/// Parses `OPERATION:NTH:KIND[:MS]`, where OPERATION may itself be `service:Operation`:
/// `CreateJobForDevices:3:drop_after`, `panorama:ListDevices:2:delay:1500`.
impl FromStr for FaultRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "'{s}' is not OPERATION:NTH:KIND[:MS] (KIND: {KINDS}; MS only for delay), \
                 e.g. CreateJobForDevices:3:drop_after or panorama:ListDevices:2:delay:1500"
            )
        };
        let parts: Vec<&str> = s.split(':').collect();
        // OPERATION is service:Operation when it starts with a service's name, or when the
        // number comes third rather than second (so an unknown service is named as such).
        let number = |i: usize| parts.get(i).is_some_and(|p| p.parse::<u32>().is_ok());
        let scoped = parts.len() > 1
            && (Service::from_signing_name(parts[0]).is_some() || (!number(1) && number(2)));
        let (operation, rest) = if scoped {
            (format!("{}:{}", parts[0], parts[1]), &parts[2..])
        } else {
            (parts[0].to_string(), &parts[1..])
        };
        parse_rest(operation, rest).map_err(|e| e.unwrap_or_else(usage))
    }
}

/// NTH, KIND and MS; `Err(None)` means the shape is wrong, `Err(Some)` a value is.
fn parse_rest(operation: String, rest: &[&str]) -> Result<FaultRule, Option<String>> {
    let (nth, kind, ms) = match rest {
        [nth, kind] => (nth, kind, None),
        [nth, kind, ms] => (nth, kind, Some(ms)),
        _ => return Err(None),
    };
    if operation.is_empty() {
        return Err(None);
    }
    let nth = nth
        .parse::<u32>()
        .map_err(|_| Some(format!("NTH must be a whole number from 1, not '{nth}'")))?;
    let ms = ms
        .map(|ms| {
            ms.parse::<u64>()
                .map_err(|_| format!("MS must be a whole number of milliseconds, not '{ms}'"))
        })
        .transpose()?;
    let rule = FaultRule::new(operation, nth, TargetedFault::from_parts(kind, ms, "MS")?);
    rule.check()?;
    Ok(rule)
}

/// The admin endpoint's JSON form of a rule.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    operation: String,
    nth: u32,
    fault: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_deserializing)]
    hit: bool,
}

/// Reads `{"operation":"CreateJobForDevices","nth":3,"fault":"drop_after"}`
/// (`"fault":"delay","delay_ms":N` for a delay).
pub(super) fn from_json(body: &[u8]) -> Result<FaultRule, String> {
    let json: RuleJson = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body must be a JSON object such as \
             {{\"operation\":\"CreateJobForDevices\",\"nth\":3,\"fault\":\"drop_after\"}} \
             (faults: {KINDS}; a delay also takes \"delay_ms\"): {e}"
        )
    })?;
    let rule = FaultRule::new(
        json.operation,
        json.nth,
        TargetedFault::from_parts(&json.fault, json.delay_ms, "delay_ms")?,
    );
    rule.check()?;
    Ok(rule)
}

pub(super) fn to_json(status: &FaultStatus) -> serde_json::Value {
    let rule = &status.rule;
    let delay_ms = match rule.fault {
        TargetedFault::Delay(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        _ => None,
    };
    serde_json::to_value(RuleJson {
        operation: rule.operation.clone(),
        nth: rule.nth,
        fault: rule.fault.name().to_string(),
        delay_ms,
        hit: status.hit,
    })
    .unwrap_or_default()
}

/// What the rules do to one call.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Drawn {
    /// How long to hold the call before it takes effect.
    pub delay: Duration,
    /// FailBefore, FailAfter or DropAfter.
    pub outcome: Option<TargetedFault>,
}

struct Armed {
    rule: FaultRule,
    /// Matching calls counted since the rule was added.
    seen: u32,
    hit: bool,
}

/// Every rule added, in order, with its count.
#[derive(Default)]
pub(super) struct Rules {
    armed: Vec<Armed>,
}

impl Rules {
    pub fn add(&mut self, rule: FaultRule) {
        self.armed.push(Armed {
            rule,
            seen: 0,
            hit: false,
        });
    }

    pub fn statuses(&self) -> Vec<FaultStatus> {
        self.armed
            .iter()
            .map(|a| FaultStatus {
                rule: a.rule.clone(),
                hit: a.hit,
            })
            .collect()
    }

    /// Counts one admitted call against every rule and returns what those whose turn it is do.
    /// Delays add up; of two other faults on one call the rule added first applies and the
    /// other is left not hit, so that `hit` never claims what did not happen.
    pub fn on_call(&mut self, service: Service, operation: &str) -> Drawn {
        let mut drawn = Drawn::default();
        for armed in &mut self.armed {
            if armed.hit || !armed.rule.matches(service, operation) {
                continue;
            }
            armed.seen = armed.seen.saturating_add(1);
            if armed.seen != armed.rule.nth {
                continue;
            }
            match armed.rule.fault {
                TargetedFault::Delay(d) => drawn.delay += d,
                fault if drawn.outcome.is_none() => drawn.outcome = Some(fault),
                _ => continue,
            }
            armed.hit = true;
        }
        drawn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_form_round_trips() {
        for text in [
            "CreateJobForDevices:3:drop_after",
            "CancelTask:1:fail_after",
            "ListDevicesJobs:2:fail_before",
            "CreateJobForDevices:2:delay:1500",
            "panorama:ListDevices:4:fail_before",
            "snow-device-management:ListDevices:1:delay:0",
        ] {
            let rule: FaultRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        let rule: FaultRule = "CreateJobForDevices:2:delay:1500".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule::new(
                "CreateJobForDevices",
                2,
                TargetedFault::Delay(Duration::from_millis(1500))
            )
        );
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (text, says) in [
            ("CreateJobForDevices", "OPERATION:NTH:KIND"),
            ("CreateJobForDevices:3", "OPERATION:NTH:KIND"),
            (":3:fail_before", "OPERATION:NTH:KIND"),
            ("CreateJobForDevices:0:fail_before", "cannot be 0"),
            ("CreateJobForDevices:x:fail_before", "NTH must be"),
            ("CreateJobForDevices:1:explode", "unknown fault 'explode'"),
            ("CreateJobForDevices:1:delay", "needs MS"),
            ("CreateJobForDevices:1:delay:soon", "MS must be"),
            ("CreateJobForDevices:1:drop_after:5", "only a delay"),
            ("CreateJob:1:fail_before", "no operation 'CreateJob'"),
            (
                "snow-device-management:CreateJobForDevices:1:fail_before",
                "no operation",
            ),
            ("ec2:RunInstances:1:fail_before", "unknown service 'ec2'"),
        ] {
            let err = text.parse::<FaultRule>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn json_rules_parse_and_print() {
        let rule = from_json(
            br#"{"operation":"CreateJobForDevices","nth":2,"fault":"delay","delay_ms":800}"#,
        )
        .unwrap();
        assert_eq!(rule.to_string(), "CreateJobForDevices:2:delay:800");
        let shown = to_json(&FaultStatus { rule, hit: true });
        assert_eq!(shown["delay_ms"], 800);
        assert_eq!(shown["hit"], true);
        for body in [
            &br#"{"operation":"CancelTask","nth":1}"#[..],
            br#"{"operation":"CancelTask","nth":1,"fault":"fail_after","extra":1}"#,
            br#"{"operation":"CancelTask","nth":-1,"fault":"fail_after"}"#,
            br#"{"operation":"Nope","nth":1,"fault":"fail_after"}"#,
            b"not json",
        ] {
            assert!(
                from_json(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_rule_hits_the_nth_matching_call_once() {
        let mut rules = Rules::default();
        rules.add(FaultRule::new("ListDevices", 3, TargetedFault::FailBefore));
        rules.add(FaultRule::new(
            "panorama:ListDevices",
            2,
            TargetedFault::DropAfter,
        ));
        // Plain names count both services' calls; a scoped name counts one service's.
        assert_eq!(
            rules.on_call(Service::Snow, "ListDevices"),
            Drawn::default()
        );
        assert_eq!(
            rules.on_call(Service::Panorama, "ListDevices").outcome,
            None
        );
        assert_eq!(
            rules.on_call(Service::Panorama, "DescribeDevice"),
            Drawn::default()
        );
        let third = rules.on_call(Service::Panorama, "ListDevices");
        // Both rules pick this call: the first added applies, the other stays not hit.
        assert_eq!(third.outcome, Some(TargetedFault::FailBefore));
        let hits: Vec<bool> = rules.statuses().iter().map(|s| s.hit).collect();
        assert_eq!(hits, vec![true, false]);
        assert_eq!(
            rules.on_call(Service::Panorama, "ListDevices"),
            Drawn::default()
        );
    }

    #[test]
    fn delays_combine_with_other_faults() {
        let mut rules = Rules::default();
        let ms = Duration::from_millis(100);
        rules.add(FaultRule::new("CancelTask", 1, TargetedFault::Delay(ms)));
        rules.add(FaultRule::new("CancelTask", 1, TargetedFault::FailAfter));
        let drawn = rules.on_call(Service::Snow, "CancelTask");
        assert_eq!(drawn.delay, ms);
        assert_eq!(drawn.outcome, Some(TargetedFault::FailAfter));
        assert!(rules.statuses().iter().all(|s| s.hit));
    }
}
