//! Device authorization answers (RFC 8628 §3.2) of any status and body: lifetimes and intervals
//! always come out bounded.
#![no_main]

use authctl_agent::fuzzing::parse_authorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_le_bytes(*head) % 500;
    if let Ok(d) = parse_authorization(status, body) {
        assert!((1..=86_400).contains(&d.expires_in));
        assert!((1..=60).contains(&d.interval));
        assert!(!format!("{d:?}").contains("device_code: \""));
    }
});
