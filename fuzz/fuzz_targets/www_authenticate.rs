//! The `WWW-Authenticate` challenge parser (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).
#![no_main]

use authctl_agent::fuzzing::parse_bearer_challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data)
        && let Some(c) = parse_bearer_challenge(header)
    {
        let total = c.resource_metadata.as_ref().map_or(0, String::len)
            + c.scope.as_ref().map_or(0, String::len);
        assert!(total <= header.len());
    }
});
