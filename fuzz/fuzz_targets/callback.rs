//! The loopback listener's view of a request: raw bytes parsed as HTTP/1.1 by `httparse` (the
//! parser hyper uses), then judged by the agent (method, `Host`, path, `state`).
#![no_main]

use authctl_agent::fuzzing::{Routes, Verdict, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return;
    };
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let routes = Routes::new(
        "127.0.0.1:8400",
        "/callback",
        "s3cret-state".to_owned().into(),
    );
    if let Verdict::Callback(params) = judge(method, host, path, query, &routes) {
        // Only a request carrying the login's state is a callback.
        assert_eq!(
            params.get("state").map(String::as_str),
            Some("s3cret-state")
        );
        assert_eq!(method, "GET");
    }
});
