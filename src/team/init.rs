//! `fleetdeck team init`: the team's table, made once (on-demand billing, TTL on `expires`)
//! and found again after, and the settings every member reads from it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::table::{self, key, n, s};
use super::{ApprovalRule, TeamConfig, refused};
use crate::aws::ApiError;

/// What `team init` did.
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    /// The table was made now, rather than found.
    pub created: bool,
    pub lease: Duration,
    pub approval: Option<ApprovalRule>,
    pub by: String,
}

/// Makes the table if it is not there (waiting for it to be active), turns on TTL, and writes
/// the team's settings. Running it again changes only the settings.
pub async fn init(
    config: &TeamConfig,
    lease: Duration,
    approval: Option<ApprovalRule>,
    attempt: Duration,
) -> Result<Made, String> {
    let t = &config.table;
    let sdk = super::sdk_config(config, attempt).await;
    let me = super::identity(&sdk).await.map_err(|e| refused(t, &e))?;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let created = create(&db, t).await.map_err(|e| refused(t, &e))?;
    table::check_schema(&db, t)
        .await
        .map_err(|e| refused(t, &e))?;
    wait_active(&db, t).await.map_err(|e| refused(t, &e))?;
    db.update_time_to_live()
        .table_name(t)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires")
                .build()
                .map_err(|e| format!("team table {t}: {e}"))?,
        )
        .send()
        .await
        .map(drop)
        .map_err(ApiError::from_sdk)
        .or_else(already_on)
        .map_err(|e| refused(t, &e))?;
    let mut put = db
        .put_item()
        .table_name(t)
        .set_item(Some(key("team", "settings")))
        .item("lease_secs", n(lease.as_secs().max(1)))
        .item("by", s(me.arn.clone()))
        .item("at", n(crate::fleet::now()));
    if let Some(rule) = &approval {
        put = put
            .item("approval_filter", s(rule.filter.clone()))
            .item("approval_min", n(rule.min));
    }
    put.send()
        .await
        .map_err(|e| refused(t, &ApiError::from_sdk(e)))?;
    Ok(Made {
        created,
        lease,
        approval,
        by: me.arn,
    })
}

/// TTL that is on already is not an error.
fn already_on(e: ApiError) -> Result<(), ApiError> {
    if e.message.contains("already enabled") || e.message.contains("TimeToLive is already") {
        Ok(())
    } else {
        Err(e)
    }
}

/// Makes the table; false when it was there already.
async fn create(db: &aws_sdk_dynamodb::Client, t: &str) -> Result<bool, ApiError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key_of = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let built = (|| -> Result<_, aws_smithy_types::error::operation::BuildError> {
        Ok((
            vec![attr("pk")?, attr("sk")?],
            vec![key_of("pk", KeyType::Hash)?, key_of("sk", KeyType::Range)?],
        ))
    })();
    let (attrs, keys) = built
        .map_err(|e| ApiError::new(crate::aws::ErrorKind::Other, "BuildError", e.to_string()))?;
    let made = db
        .create_table()
        .table_name(t)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(keys))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match made {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = ApiError::from_sdk(e);
            if e.code == "ResourceInUseException" {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// A new table takes a moment to become active.
async fn wait_active(db: &aws_sdk_dynamodb::Client, t: &str) -> Result<(), ApiError> {
    for _ in 0..120 {
        let d = db
            .describe_table()
            .table_name(t)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        let active = d
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ApiError::new(
        crate::aws::ErrorKind::Timeout,
        "TableNotActive",
        format!("{t} did not become active within a minute"),
    ))
}
