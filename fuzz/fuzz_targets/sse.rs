//! The `text/event-stream` parser `authctl mcp` runs on what a remote MCP server streams: any bytes,
//! split anywhere, give the same events as when fed whole, and no event outgrows the bounds.
#![no_main]

use authctl_proto::sse::{MAX_EVENT, Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = Parser::new().feed(data);
    // The first byte picks a chunk size: the same stream, split differently.
    let size = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut split = Parser::new();
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in data.chunks(size) {
        match split.feed(chunk) {
            Ok(evs) => events.extend(evs),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    match whole {
        Ok(all) => {
            assert!(!failed, "a split stream failed where the whole one did not");
            assert_eq!(all, events);
            assert!(all.iter().all(|e| e.data.len() <= MAX_EVENT));
        }
        Err(_) => assert!(failed, "a bound broken whole must be broken split too"),
    }
});
