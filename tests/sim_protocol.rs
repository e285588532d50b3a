//! What both services share: SigV4 checking, routing by credential scope and region, the
//! Panorama quotas, injected faults and the ledger.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_panorama::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_panorama::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_panorama::types::JobType;
use aws_smithy_async::time::StaticTimeSource;
use bytes::Bytes;
use common::{code, message};
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

const SEA_DOCK_02: &str = "device-ktsxfvy6plp4rf9tast6m01s12";

fn panorama_signed_with(h: &SimHandle, access_key: &str, secret: &str) -> aws_sdk_panorama::Client {
    let config = aws_sdk_panorama::Config::builder()
        .behavior_version(aws_sdk_panorama::config::BehaviorVersion::latest())
        .region(aws_sdk_panorama::config::Region::new("us-east-1"))
        .endpoint_url(&h.endpoint)
        .credentials_provider(aws_sdk_panorama::config::Credentials::new(
            access_key, secret, None, None, "t",
        ))
        .retry_config(aws_sdk_panorama::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_panorama::Client::from_conf(config)
}

/// A plain HTTP GET, for what no SDK would send: an unsigned request, the test ledger.
async fn http_get(url: &str) -> (u16, Option<String>, serde_json::Value) {
    let client: HttpClient<_, Empty<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, error_type, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn one_listener_serves_both_services() {
    let h = common::start(common::config()).await;
    let panorama = common::panorama(&h).list_devices().send().await.unwrap();
    let snow = common::snow(&h).list_devices().send().await.unwrap();
    assert_eq!(panorama.devices().len(), 14);
    assert_eq!(snow.devices().len(), 9);
}

#[tokio::test]
async fn calls_are_counted_per_operation_throttled_ones_included() {
    let h = common::start(SimConfig {
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await;
    let panorama = common::panorama(&h);
    let mut throttled = 0;
    for _ in 0..8 {
        throttled += usize::from(panorama.list_devices().send().await.is_err());
    }
    assert!(throttled > 0, "8 back-to-back calls must exceed 5/s");
    common::snow(&h).list_devices().send().await.unwrap();
    // Unsigned requests reach no operation and are not counted.
    http_get(&format!("{}/devices", h.endpoint)).await;

    let (status, _, body) = http_get(&format!("{}/_fleetdeck/calls", h.endpoint)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({
            "calls": {
                "panorama:ListDevices": 8,
                "snow-device-management:ListDevices": 1,
            },
            "throttled": { "panorama:ListDevices": throttled },
        })
    );
    assert_eq!(h.calls().get("panorama:ListDevices"), Some(&8));
    assert_eq!(
        h.throttled().get("panorama:ListDevices"),
        Some(&(throttled as u64))
    );
}

#[tokio::test]
async fn requests_without_a_valid_signature_are_refused() {
    let h = common::start(common::config()).await;

    let (status, error_type, body) = http_get(&format!("{}/devices", h.endpoint)).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_type.as_deref(),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(body["message"], "Missing Authentication Token");

    let wrong_secret = panorama_signed_with(&h, &h.access_key_id, "not-the-secret");
    let err = wrong_secret.list_devices().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert!(message(&err).contains("signature we calculated does not match"));

    let stranger = panorama_signed_with(&h, "AKIDSOMEONEELSE", &h.secret_access_key);
    let err = stranger.list_devices().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");

    // Signed an hour ago: outside AWS's five-minute window.
    let stale = aws_sdk_panorama::Config::builder()
        .behavior_version(aws_sdk_panorama::config::BehaviorVersion::latest())
        .region(aws_sdk_panorama::config::Region::new("us-east-1"))
        .endpoint_url(&h.endpoint)
        .credentials_provider(common::credentials(&h))
        .retry_config(aws_sdk_panorama::config::retry::RetryConfig::disabled())
        .time_source(StaticTimeSource::new(
            SystemTime::now() - Duration::from_secs(3600),
        ))
        .build();
    let err = aws_sdk_panorama::Client::from_conf(stale)
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert!(message(&err).contains("expired"), "{}", message(&err));

    assert!(h.ledger().is_empty());
}

/// Changes the request after the SDK signed it, as a proxy or an attacker might.
#[derive(Debug)]
struct TamperAfterSigning;

impl Intercept for TamperAfterSigning {
    fn name(&self) -> &'static str {
        "TamperAfterSigning"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_panorama::error::BoxError> {
        let request = context.request_mut();
        let uri = request.uri().replace("MaxResults=5", "MaxResults=6");
        request.set_uri(uri)?;
        Ok(())
    }
}

#[tokio::test]
async fn a_request_changed_after_signing_is_refused() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let err = client
        .list_devices()
        .max_results(5)
        .customize()
        .interceptor(TamperAfterSigning)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
}

#[tokio::test]
async fn each_region_has_its_own_fleet_and_unserved_regions_are_refused() {
    let config = SimConfig {
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        fleet: FleetSource::Generated {
            panorama: 30,
            snow: 12,
        },
        ..common::config()
    };
    let h = common::start(config).await;
    let retry = aws_sdk_panorama::config::retry::RetryConfig::disabled();
    let east =
        common::all_panorama_devices(&common::panorama_with(&h, "us-east-1", retry.clone())).await;
    let west =
        common::all_panorama_devices(&common::panorama_with(&h, "us-west-2", retry.clone())).await;
    assert_eq!(east.len(), 30);
    assert_eq!(west.len(), 30);
    assert!(
        east.iter()
            .all(|d| !west.iter().any(|w| w.device_id() == d.device_id()))
    );
    let west_snow =
        common::snow_device_ids(&common::snow_with(&h, "us-west-2", retry.clone())).await;
    assert_eq!(west_snow.len(), 12);

    // A device of one region is unknown in the other.
    let err = common::panorama_with(&h, "us-west-2", retry.clone())
        .describe_device()
        .device_id(east[0].device_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    let err = common::panorama_with(&h, "eu-west-1", retry)
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    assert!(message(&err).contains("us-west-2"), "{}", message(&err));
}

#[tokio::test]
async fn more_than_fifty_appliances_in_a_region_breaks_the_aws_quota() {
    let config = SimConfig {
        fleet: FleetSource::Generated {
            panorama: 51,
            snow: 1,
        },
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    };
    let err = fleetdeck::sim::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("at most 50"), "{err}");
}

#[tokio::test]
async fn panorama_quotas_throttle_and_the_sdk_rides_through() {
    let h = common::start(SimConfig {
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await;

    // Without retries, a burst over 5 requests/s meets 429 ThrottlingException.
    let impatient = common::panorama(&h);
    let mut throttled = 0;
    for _ in 0..12 {
        if let Err(err) = impatient.list_devices().send().await {
            assert_eq!(code(&err), "ThrottlingException");
            assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
            throttled += 1;
        }
    }
    assert!(throttled > 0, "12 back-to-back calls must exceed 5/s");

    // CreateJobForDevices: one a second.
    let first = impatient
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Reboot)
        .send()
        .await;
    let second = impatient
        .create_job_for_devices()
        .device_ids("device-kotqcfc3r784vjme0m2rlw1u9m")
        .job_type(JobType::Reboot)
        .send()
        .await;
    assert!(
        [&first, &second]
            .iter()
            .any(|r| r.as_ref().is_err_and(|e| code(e) == "ThrottlingException")),
        "two creates at once exceed 1/s"
    );

    // The SDK's standard retries absorb the throttling: every call succeeds.
    let patient = common::panorama_with(&h, "us-east-1", common::patient());
    for _ in 0..12 {
        patient
            .list_devices()
            .send()
            .await
            .expect("retried through throttling");
    }
    // Snow has no such quota here.
    let snow = common::snow(&h);
    for _ in 0..12 {
        snow.list_devices().send().await.unwrap();
    }
}

#[tokio::test]
async fn injected_server_errors_are_internal_server_exceptions() {
    let h = common::start(SimConfig {
        error_rate: 1.0,
        ..common::config()
    })
    .await;
    let err = common::panorama(&h)
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InternalServerException");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    let err = common::snow(&h).list_tasks().send().await.unwrap_err();
    assert_eq!(code(&err), "InternalServerException");
}

#[tokio::test]
async fn a_dropped_connection_still_takes_effect_and_the_ledger_shows_it() {
    let h = common::start(SimConfig {
        drop_rate: 1.0,
        ..common::config()
    })
    .await;
    let err = common::panorama(&h)
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Reboot)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            aws_sdk_panorama::error::SdkError::DispatchFailure(_)
                | aws_sdk_panorama::error::SdkError::ResponseError(_)
        ),
        "the client sees a broken connection, not an answer: {err:?}"
    );
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].device_id, SEA_DOCK_02);
    assert_eq!(ledger[0].operation, "CreateJobForDevices");
    assert_eq!(ledger[0].action, "REBOOT");

    // The ledger is served over HTTP too, outside the AWS API.
    let (status, _, body) = http_get(&format!("{}/_fleetdeck/ledger", h.endpoint)).await;
    assert_eq!(status, 200);
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["entries"][0]["device_id"], SEA_DOCK_02);
    assert_eq!(body["entries"][0]["service"], "panorama");
}

#[tokio::test]
async fn snow_ledger_has_one_entry_per_target() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let ids = common::snow_device_ids(&client).await;
    let out = client
        .create_task()
        .command(aws_sdk_snowdevicemanagement::types::Command::Reboot(
            aws_sdk_snowdevicemanagement::types::Reboot::builder().build(),
        ))
        .set_targets(Some(ids[..4].to_vec()))
        .client_token("plan-7-batch-1")
        .send()
        .await
        .unwrap();
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 4);
    for (entry, id) in ledger.iter().zip(&ids) {
        assert_eq!(&entry.device_id, id);
        assert_eq!(entry.resource_id, out.task_id().unwrap());
        assert_eq!(entry.client_token.as_deref(), Some("plan-7-batch-1"));
        assert_eq!(entry.action, "reboot");
    }
}
