//! The team table's items, and the DynamoDB calls in fleetdeck's terms. One table, a string
//! partition key `pk` and sort key `sk`, on-demand, TTL on `expires`:
//!
//! | pk              | sk                      | what                                          |
//! |-----------------|-------------------------|-----------------------------------------------|
//! | `team`          | `settings`              | lease duration, approval rule                 |
//! | `plans`         | plan id                 | the plan's lease (owner, epoch, record        |
//! |                 |                         | version) and its mirror (phase, figures)      |
//! | `devices`       | `panorama#ID`, `snow#ID`| a device's lease (plan, epoch, holder), what  |
//! |                 |                         | its send needs (token, jobs before), outcome  |
//! | `plan#ID`       | `word#AT#ID`            | a word to the plan's rollout, and its answer  |
//! | `plan#ID`       | `gate#N`                | one of its rollout's decisions                |
//! | `quota#ACCT#RGN`| plan id                 | the plan's part in the account's Panorama     |
//! |                 |                         | quota (`budget`)                              |
//!
//! Every list is a Query of one partition: nothing here scans.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType};

use super::{ApprovalRule, Settings};
use crate::aws::{ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Service};

pub type Item = HashMap<String, AttributeValue>;

/// Ended plans, released devices and answered words stay this long, then TTL removes them.
pub const KEEP_SECS: u64 = 30 * 24 * 3600;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A device's sort key: `panorama#ID` or `snow#ID`.
pub fn device_sk(key: &DeviceKey) -> String {
    match key.service {
        Service::Panorama => format!("panorama#{}", key.id),
        Service::Snow => format!("snow#{}", key.id),
    }
}

pub fn device_of(sk: &str) -> Option<DeviceKey> {
    match sk.split_once('#')? {
        ("panorama", id) => Some(DeviceKey::new(Service::Panorama, id)),
        ("snow", id) => Some(DeviceKey::new(Service::Snow, id)),
        _ => None,
    }
}

pub fn get_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub fn get_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub fn get_list_s(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(l)) => l
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn list_s(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.clone())).collect())
}

/// Expression values, `:name` → value.
pub fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `#name` for every attribute an expression names: none of DynamoDB's reserved words can
/// then trip one up.
pub fn names(exprs: &[&str]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in exprs {
        let mut rest = *e;
        while let Some(at) = rest.find('#') {
            let word: String = rest[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                out.insert(format!("#{word}"), word.clone());
            }
            rest = &rest[at + 1..];
        }
    }
    out
}

/// A conditional UpdateItem of one item, the attributes its expressions name given their
/// `#names`: true when it was written, false when its condition did not hold.
pub async fn update_if<const N: usize>(
    db: &Client,
    table: &str,
    item: Item,
    update: &str,
    condition: &str,
    vals: [(&str, AttributeValue); N],
) -> Result<bool, ApiError> {
    let sent = db
        .update_item()
        .table_name(table)
        .set_key(Some(item))
        .update_expression(update)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names(&[update, condition])))
        .set_expression_attribute_values(Some(values(vals)))
        .send()
        .await
        .map_err(ApiError::from_sdk);
    match sent {
        Ok(_) => Ok(true),
        Err(e) if failed_condition(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether an error is a condition that did not hold (someone else holds, or changed, it).
pub fn failed_condition(e: &ApiError) -> bool {
    e.code == "ConditionalCheckFailedException"
}

/// The table's key schema must be fleetdeck's: `pk` (string, hash) and `sk` (string, range).
pub async fn check_schema(db: &Client, table: &str) -> Result<(), ApiError> {
    let described = db
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let Some(t) = described.table() else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "ResourceNotFoundException",
            format!("DescribeTable gave no table {table}"),
        ));
    };
    let keys: Vec<(String, KeyType)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    let types: HashMap<String, ScalarAttributeType> = t
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name().to_string(), a.attribute_type().clone()))
        .collect();
    let ok = keys.len() == 2
        && keys.contains(&("pk".into(), KeyType::Hash))
        && keys.contains(&("sk".into(), KeyType::Range))
        && types.get("pk") == Some(&ScalarAttributeType::S)
        && types.get("sk") == Some(&ScalarAttributeType::S);
    if ok {
        return Ok(());
    }
    let found: Vec<String> = keys
        .iter()
        .map(|(name, kind)| format!("{name} ({})", kind.as_str()))
        .collect();
    Err(ApiError::new(
        ErrorKind::Validation,
        "NotATeamTable",
        format!(
            "its key schema is {}, not pk (string, HASH) and sk (string, RANGE): it is not a fleetdeck team table",
            found.join(" + ")
        ),
    ))
}

/// The team's settings, if `team init` wrote them.
/// One item as of now (a consistent read), if it is there.
pub async fn get(db: &Client, table: &str, item: Item) -> Result<Option<Item>, ApiError> {
    let got = db
        .get_item()
        .table_name(table)
        .set_key(Some(item))
        .consistent_read(true)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    Ok(got.item)
}

pub async fn read_settings(db: &Client, table: &str) -> Result<Option<Settings>, ApiError> {
    let Some(item) = get(db, table, key("team", "settings")).await? else {
        return Ok(None);
    };
    let item = &item;
    let lease = Duration::from_secs(get_n(item, "lease_secs").unwrap_or(120).max(1));
    let approval = get_s(item, "approval_filter").map(|filter| ApprovalRule {
        filter,
        min: get_n(item, "approval_min").unwrap_or(1) as usize,
    });
    Ok(Some(Settings { lease, approval }))
}

/// Items of one partition, every page, in sort-key order.
pub async fn query_all(
    db: &Client,
    table: &str,
    pk: &str,
    sk_prefix: Option<&str>,
) -> Result<Vec<Item>, ApiError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut q = db
            .query()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take());
        q = match sk_prefix {
            Some(p) => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(p)),
            None => q
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk)),
        };
        let page = q.send().await.map_err(ApiError::from_sdk)?;
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_key_reads_back_from_its_sort_key() {
        for k in [
            DeviceKey::new(Service::Panorama, "device-abc"),
            DeviceKey::new(Service::Snow, "smd-1#x"),
        ] {
            assert_eq!(device_of(&device_sk(&k)), Some(k));
        }
        assert_eq!(device_of("nothing"), None);
    }
}
