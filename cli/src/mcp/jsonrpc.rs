//! JSON-RPC 2.0 framing for the MCP stdio transport: which messages expect an answer, the
//! errors the bridge answers with itself, and the session facts it reads off responses.

use serde_json::{Value, json};

/// JSON-RPC's "Parse error": a line on stdin that is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// No token: the agent refused, the login failed, was denied or timed out.
pub const NO_TOKEN: i64 = -32001;
/// The server could not be reached (connection refused, DNS, TLS, a redirect).
pub const UNREACHABLE: i64 = -32002;
/// The server refused the token even after a refresh (or asks for a scope the login lacks).
pub const REFUSED: i64 = -32003;
/// The server answered with an HTTP error or something that is not MCP.
pub const BAD_ANSWER: i64 = -32004;

/// The longest line read from stdin, and the largest JSON body read from the server.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The ids of the requests in `msg` (one message, or a batch): each expects a response.
/// Notifications (no `id`) and the host's responses to server requests expect none.
pub fn request_ids(msg: &Value) -> Vec<Value> {
    let one = |m: &Value| {
        m.get("method")
            .is_some_and(Value::is_string)
            .then(|| m.get("id").filter(|id| !id.is_null()).cloned())
            .flatten()
    };
    match msg {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        m => one(m).into_iter().collect(),
    }
}

/// The method of a single (not batched) message.
pub fn method(msg: &Value) -> Option<&str> {
    msg.get("method").and_then(Value::as_str)
}

/// The ids that `msg` (from the server: one message or a batch) answers.
pub fn answered_ids(msg: &Value) -> Vec<Value> {
    let one = |m: &Value| {
        (m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some()))
            .then(|| m.get("id").cloned())
            .flatten()
    };
    match msg {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        m => one(m).into_iter().collect(),
    }
}

/// The protocol version an `initialize` result negotiated, when `msg` answers `init_id`.
pub fn negotiated_version(msg: &Value, init_id: &Value) -> Option<String> {
    (msg.get("id") == Some(init_id))
        .then(|| msg.pointer("/result/protocolVersion")?.as_str())
        .flatten()
        .map(str::to_owned)
}

/// An error response to request `id`, as one line.
pub fn error(id: &Value, code: i64, message: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_expect_answers() {
        let req = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let answer = json!({"jsonrpc": "2.0", "id": "s-1", "result": {}});
        assert_eq!(request_ids(&req), vec![json!(7)]);
        assert!(request_ids(&note).is_empty());
        assert!(request_ids(&answer).is_empty());
        assert!(request_ids(&json!({"id": null, "method": "x"})).is_empty());
        assert_eq!(
            request_ids(&json!([req, note, {"id": "a", "method": "ping"}])),
            vec![json!(7), json!("a")]
        );
        assert_eq!(method(&req), Some("tools/list"));
    }

    #[test]
    fn answers_are_recognised_and_the_version_read_from_the_initialize_result() {
        let r = json!({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18"}});
        assert_eq!(answered_ids(&r), vec![json!(0)]);
        assert_eq!(
            negotiated_version(&r, &json!(0)).as_deref(),
            Some("2025-06-18")
        );
        assert_eq!(negotiated_version(&r, &json!(1)), None);
        let e = json!([{"id": 3, "error": {"code": 1, "message": "x"}}, {"method": "n"}]);
        assert_eq!(answered_ids(&e), vec![json!(3)]);
        assert!(answered_ids(&json!({"id": 4, "method": "sampling/createMessage"})).is_empty());
    }

    #[test]
    fn an_error_is_one_json_line_with_the_request_id() {
        let line = error(&json!("r1"), NO_TOKEN, "login \"denied\"\nhere");
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["id"], "r1");
        assert_eq!(v["error"]["code"], NO_TOKEN);
        assert_eq!(v["error"]["message"], "login \"denied\"\nhere");
        assert_eq!(v["jsonrpc"], "2.0");
    }
}
