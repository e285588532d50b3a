//! fleetdeck: operate fleets of AWS Panorama appliances and AWS Snow devices, with a
//! simulator of both services for demos, tests and life after Panorama's end.

pub mod cli;
pub mod sim;
