//! Token-endpoint answers of any status and body (JSON, form-encoded, garbage), and the provider
//! text the agent keeps from them.
#![no_main]

use authctl_agent::fuzzing::{clean, parse_response, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_le_bytes(*head) % 500;
    let retry_after = std::str::from_utf8(&body[..body.len().min(16)])
        .ok()
        .and_then(parse_retry_after);
    if let Some(d) = retry_after {
        assert!(d.as_secs() <= 3600, "Retry-After is capped");
    }
    match parse_response(status, retry_after, body) {
        Ok(set) => assert!(format!("{set:?}").len() < 4096),
        Err(e) => {
            let shown = clean(&e.to_string());
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
});
