//! fleetdeck: operate fleets of AWS Panorama appliances and AWS Snow devices, with a
//! simulator of both services for demos, tests and life after Panorama's end.

pub mod app;
pub mod aws;
pub mod cli;
pub mod contexts;
pub mod fleet;
pub mod journal;
pub mod keymap;
pub mod log;
pub mod ops;
pub mod protocol;
pub mod run;
pub mod sim;
pub mod team;
pub mod tui;
pub mod ui;
pub mod worker;
