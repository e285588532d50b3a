//! Every operation the simulator serves, with its HTTP binding from the API models: what the
//! server routes by, and what a fault rule may name.

use http::Method;

use super::wire::Service;

pub(super) struct Route {
    pub service: Service,
    pub method: Method,
    /// `{}` stands for one path parameter.
    pub path: &'static str,
    pub operation: &'static str,
    pub mutating: bool,
}

const fn route(
    service: Service,
    method: Method,
    path: &'static str,
    operation: &'static str,
    mutating: bool,
) -> Route {
    Route {
        service,
        method,
        path,
        operation,
        mutating,
    }
}

/// Every operation served, with its HTTP binding from the API models.
const ROUTES: &[Route] = &[
    route(
        Service::Panorama,
        Method::GET,
        "/devices",
        "ListDevices",
        false,
    ),
    route(
        Service::Panorama,
        Method::GET,
        "/devices/{}",
        "DescribeDevice",
        false,
    ),
    route(
        Service::Panorama,
        Method::POST,
        "/jobs",
        "CreateJobForDevices",
        true,
    ),
    route(
        Service::Panorama,
        Method::GET,
        "/jobs",
        "ListDevicesJobs",
        false,
    ),
    route(
        Service::Panorama,
        Method::GET,
        "/jobs/{}",
        "DescribeDeviceJob",
        false,
    ),
    route(
        Service::Panorama,
        Method::GET,
        "/application-instances",
        "ListApplicationInstances",
        false,
    ),
    route(
        Service::Panorama,
        Method::GET,
        "/application-instances/{}",
        "DescribeApplicationInstance",
        false,
    ),
    route(
        Service::Snow,
        Method::GET,
        "/managed-devices",
        "ListDevices",
        false,
    ),
    route(
        Service::Snow,
        Method::POST,
        "/managed-device/{}/describe",
        "DescribeDevice",
        false,
    ),
    route(Service::Snow, Method::POST, "/task", "CreateTask", true),
    route(
        Service::Snow,
        Method::POST,
        "/task/{}",
        "DescribeTask",
        false,
    ),
    route(Service::Snow, Method::GET, "/tasks", "ListTasks", false),
    route(
        Service::Snow,
        Method::GET,
        "/executions",
        "ListExecutions",
        false,
    ),
    route(
        Service::Snow,
        Method::POST,
        "/task/{}/execution/{}",
        "DescribeExecution",
        false,
    ),
    route(
        Service::Snow,
        Method::POST,
        "/task/{}/cancel",
        "CancelTask",
        true,
    ),
];

/// Whether an operation of that name is served (by `service`, or by either when `None`).
pub(super) fn serves(service: Option<Service>, operation: &str) -> bool {
    ROUTES
        .iter()
        .any(|r| r.operation == operation && service.is_none_or(|s| s == r.service))
}

/// Every operation served, as a fault rule may name it.
pub(super) fn operation_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ROUTES.iter().map(|r| r.operation).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Finds the route and decodes its path parameters.
pub(super) fn find_route(
    service: Service,
    method: &Method,
    path: &str,
) -> Option<(&'static Route, Vec<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.service == service && r.method == *method)
        .find_map(|r| {
            let pattern: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
            if pattern.len() != segments.len() {
                return None;
            }
            let mut params = Vec::new();
            for (p, s) in pattern.iter().zip(&segments) {
                if *p == "{}" {
                    let decoded = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
                    if decoded.is_empty() {
                        return None;
                    }
                    params.push(decoded.into_owned());
                } else if p != s {
                    return None;
                }
            }
            Some((r, params))
        })
}
