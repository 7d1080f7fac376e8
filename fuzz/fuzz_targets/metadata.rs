//! Discovery documents (OpenID / RFC 8414), protected-resource metadata (RFC 9728) and
//! registration answers (RFC 7591): parsed, and every endpoint checked as the agent checks it.
#![no_main]

use authctl_agent::fuzzing::{Endpoints, Registered, ResourceMetadata, endpoint_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ep) = serde_json::from_slice::<Endpoints>(data) {
        for (_, url) in ep.urls() {
            if let Ok(u) = endpoint_url(url) {
                assert!(matches!(u.scheme(), "https" | "http"));
            }
        }
    }
    if let Ok(md) = serde_json::from_slice::<ResourceMetadata>(data) {
        for server in &md.authorization_servers {
            let _ = endpoint_url(server);
        }
    }
    if let Ok(r) = serde_json::from_slice::<Registered>(data)
        && r.client_secret.is_some()
    {
        // A registered client's secret never shows in `Debug`.
        assert!(format!("{r:?}").contains("[redacted]"));
    }
});
