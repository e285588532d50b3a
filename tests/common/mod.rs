//! Shared set-up for the simulator tests: each test starts its own simulator on 127.0.0.1:0
//! and talks to it with the official SDK clients over loopback HTTP.

#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_panorama::config::retry::RetryConfig;
use aws_sdk_panorama::config::{BehaviorVersion, Credentials, Region};
use fleetdeck::sim::{self, QuotaMode, SimAccountInfo, SimConfig, SimHandle};

/// The demo fleet with quotas off: tests step simulated time with
/// `SimHandle::advance_clock` instead of sleeping for it.
pub fn config() -> SimConfig {
    SimConfig {
        quotas: QuotaMode::Off,
        ..SimConfig::default()
    }
}

/// `config` with the clock all but stopped (a thousandth of real time), for a test that
/// reads two things as of one moment: at real time a stage could end between the two reads.
pub fn still() -> SimConfig {
    SimConfig {
        speed: 0.001,
        ..config()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("the simulator starts")
}

pub fn credentials(h: &SimHandle) -> Credentials {
    Credentials::new(
        &h.access_key_id,
        &h.secret_access_key,
        None,
        None,
        "fleetdeck-tests",
    )
}

pub fn panorama(h: &SimHandle) -> aws_sdk_panorama::Client {
    panorama_with(h, &h.regions[0], RetryConfig::disabled())
}

pub fn panorama_with(h: &SimHandle, region: &str, retry: RetryConfig) -> aws_sdk_panorama::Client {
    let config = aws_sdk_panorama::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&h.endpoint)
        .credentials_provider(credentials(h))
        .retry_config(retry)
        .build();
    aws_sdk_panorama::Client::from_conf(config)
}

pub fn snow(h: &SimHandle) -> aws_sdk_snowdevicemanagement::Client {
    snow_with(h, &h.regions[0], RetryConfig::disabled())
}

pub fn snow_with(
    h: &SimHandle,
    region: &str,
    retry: RetryConfig,
) -> aws_sdk_snowdevicemanagement::Client {
    let config = aws_sdk_snowdevicemanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&h.endpoint)
        .credentials_provider(credentials(h))
        .retry_config(retry)
        .build();
    aws_sdk_snowdevicemanagement::Client::from_conf(config)
}

/// Signs with one of the simulator's accounts' key pairs.
fn account_credentials(account: &SimAccountInfo) -> Credentials {
    Credentials::new(
        &account.access_key_id,
        &account.secret_access_key,
        None,
        None,
        "fleetdeck-tests",
    )
}

/// A Panorama client of `account`, in `region`, without retries.
pub fn panorama_as(
    h: &SimHandle,
    account: &SimAccountInfo,
    region: &str,
) -> aws_sdk_panorama::Client {
    let config = aws_sdk_panorama::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&h.endpoint)
        .credentials_provider(account_credentials(account))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_panorama::Client::from_conf(config)
}

/// A Snow Device Management client of `account`, in `region`, without retries.
pub fn snow_as(
    h: &SimHandle,
    account: &SimAccountInfo,
    region: &str,
) -> aws_sdk_snowdevicemanagement::Client {
    let config = aws_sdk_snowdevicemanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&h.endpoint)
        .credentials_provider(account_credentials(account))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_snowdevicemanagement::Client::from_conf(config)
}

/// A patient retry policy, for riding through throttling.
pub fn patient() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(10)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(2))
}

/// The AWS error code of an SDK error, as a user would read it.
pub fn code<E, R>(err: &aws_sdk_panorama::error::SdkError<E, R>) -> String
where
    E: aws_sdk_panorama::error::ProvideErrorMetadata,
{
    aws_sdk_panorama::error::ProvideErrorMetadata::code(err)
        .unwrap_or("<no code>")
        .to_string()
}

pub fn message<E, R>(err: &aws_sdk_panorama::error::SdkError<E, R>) -> String
where
    E: aws_sdk_panorama::error::ProvideErrorMetadata,
{
    aws_sdk_panorama::error::ProvideErrorMetadata::message(err)
        .unwrap_or("<no message>")
        .to_string()
}

/// Every Panorama appliance, read page by page.
pub async fn all_panorama_devices(
    client: &aws_sdk_panorama::Client,
) -> Vec<aws_sdk_panorama::types::Device> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_devices()
            .max_results(25)
            .set_next_token(token)
            .send()
            .await
            .expect("ListDevices");
        out.extend(page.devices().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

pub async fn snow_device_ids(client: &aws_sdk_snowdevicemanagement::Client) -> Vec<String> {
    let pages: Vec<_> = client
        .list_devices()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListDevices");
    pages
        .into_iter()
        .filter_map(|d| d.managed_device_id().map(str::to_string))
        .collect()
}
