//! `--read-only`: no call that changes a device leaves the process, per the simulator's ledger.

mod common;

use std::time::Duration;

use fleetdeck::aws;
use fleetdeck::fleet::{Device, Operation, Service, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::protocol::{Command, Event, Settings, Source};
use fleetdeck::worker;

#[tokio::test]
async fn the_sdk_clients_refuse_mutating_calls_before_sending() {
    let h = common::start(common::config()).await;
    let mut target = Source::simulator(
        &h.endpoint,
        "us-east-1",
        &h.access_key_id,
        &h.secret_access_key,
    )
    .0
    .remove(0);
    target.read_only = true;
    let (clients, _) = aws::config::load(&target, Duration::from_secs(10)).await;
    let panorama = clients.panorama().unwrap();
    // Reading works...
    let (devices, _) = aws::panorama::list_devices(panorama, None).await.unwrap();
    let (snow, _) = aws::snow::list_devices(&clients.snow, None).await.unwrap();
    // ...changing does not.
    let err = aws::panorama::create_job(panorama, &devices[0].id, &Operation::Reboot)
        .await
        .unwrap_err();
    assert_eq!(err.code, "ReadOnly", "{err}");
    let err = aws::snow::create_task(
        &clients.snow,
        &[snow[0].id.to_string()],
        &Operation::Unlock,
        &SnowOptions::default(),
        "t-1",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ReadOnly", "{err}");
    let err = aws::snow::cancel_task(&clients.snow, "task-anything")
        .await
        .unwrap_err();
    assert_eq!(err.code, "ReadOnly", "{err}");
    assert!(h.ledger().is_empty());
}

#[tokio::test]
async fn a_read_only_worker_refuses_plans_and_cancels() {
    let h = common::start(common::config()).await;
    let source = Source::simulator(
        &h.endpoint,
        "us-east-1",
        &h.access_key_id,
        &h.secret_access_key,
    );
    let settings = Settings {
        read_only: true,
        ..Settings::default()
    };
    let (commands, mut events) = worker::spawn(source, settings);
    let devices = [
        Device::new(Service::Panorama, "device-ktsxfvy6plp4rf9tast6m01s12"),
        Device::new(Service::Snow, "smd-ybj6e3wtfq4o4ejpe"),
    ];
    let refs: Vec<&Device> = devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    commands.send(Command::Dispatch(Box::new(plan))).unwrap();
    commands
        .send(Command::CancelTask {
            task_id: "task-x".into(),
        })
        .unwrap();
    let mut refused = false;
    let mut cancel_refused = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !refused || !cancel_refused {
            match events.recv().await.expect("the worker runs") {
                Event::PlanRefused(r) => {
                    assert_eq!(r.error.code, "ReadOnly");
                    refused = true;
                }
                Event::PlanStarted { .. } | Event::Op(..) => panic!("a read-only plan started"),
                Event::Failure(message) if message.contains("CancelTask") => cancel_refused = true,
                _ => {}
            }
        }
    })
    .await
    .expect("both refusals reported");
    assert!(h.ledger().is_empty(), "{:?}", h.ledger());
}
