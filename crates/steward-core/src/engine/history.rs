//! Keeping a conversation's history usable as model context.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use steward_protocol::{Message, Role};

/// What a tool result says when none was recorded for a call.
pub const INTERRUPTED_RESULT: &str =
    "error: no result was recorded for this call (the turn was interrupted); it may or may not have run";

/// Gives every assistant tool call a result. A turn interrupted between
/// storing the model's tool calls and their results would otherwise leave a
/// history that providers reject ("tool_calls must be followed by tool
/// messages"), breaking the conversation for good.
pub fn repair_dangling_tool_calls(messages: Vec<Message>) -> Vec<Message> {
    let mut out = Vec::with_capacity(messages.len());
    let mut iter = messages.into_iter().peekable();
    while let Some(message) = iter.next() {
        let calls = message.tool_calls.clone();
        out.push(message);
        if calls.is_empty() {
            continue;
        }
        let mut answered = HashSet::new();
        while let Some(next) = iter.peek() {
            if next.role != Role::Tool {
                break;
            }
            if let Some(id) = &next.tool_call_id {
                answered.insert(id.clone());
            }
            if let Some(next) = iter.next() {
                out.push(next);
            }
        }
        for call in calls.iter().filter(|c| !answered.contains(&c.id)) {
            out.push(Message::tool(call.id.clone(), call.name.clone(), INTERRUPTED_RESULT));
        }
    }
    out
}

/// A fingerprint of the transcript a chat client shows: its system, user
/// and assistant texts in order (tool traffic is not shown to such clients).
/// `None` for an empty transcript, which must never match anything.
pub fn client_fingerprint(messages: &[Message]) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut any = false;
    for m in messages {
        let text = m.content.trim();
        let role = match m.role {
            Role::System | Role::User | Role::Assistant => m.role.as_str(),
            Role::Tool => continue,
        };
        if m.role == Role::Assistant && text.is_empty() {
            continue;
        }
        any = true;
        // Lengths make the encoding unambiguous.
        hasher.update(role.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    any.then(|| hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use steward_protocol::ToolCall;

    use super::*;

    fn with_calls(ids: &[&str]) -> Message {
        let mut m = Message::assistant("");
        m.tool_calls = ids.iter().map(|id| ToolCall::new(*id, "t", "{}")).collect();
        m
    }

    #[test]
    fn dangling_calls_get_an_interrupted_result_and_answered_ones_are_kept() {
        let history = vec![
            Message::user("a"),
            with_calls(&["1", "2"]),
            Message::tool("1", "t", "ok"),
            Message::user("b"),
            with_calls(&["3"]),
        ];
        let repaired = repair_dangling_tool_calls(history);
        let shape: Vec<(Role, Option<&str>, &str)> =
            repaired.iter().map(|m| (m.role, m.tool_call_id.as_deref(), m.content.as_str())).collect();
        assert_eq!(
            shape,
            vec![
                (Role::User, None, "a"),
                (Role::Assistant, None, ""),
                (Role::Tool, Some("1"), "ok"),
                (Role::Tool, Some("2"), INTERRUPTED_RESULT),
                (Role::User, None, "b"),
                (Role::Assistant, None, ""),
                (Role::Tool, Some("3"), INTERRUPTED_RESULT),
            ]
        );
    }

    #[test]
    fn a_complete_history_is_unchanged() {
        let history =
            vec![Message::user("a"), with_calls(&["1"]), Message::tool("1", "t", "ok"), Message::assistant("x")];
        assert_eq!(repair_dangling_tool_calls(history.clone()), history);
    }

    #[test]
    fn fingerprints_ignore_tool_traffic_and_surrounding_whitespace() {
        let client = vec![Message::user("hi"), Message::assistant("Hello! ")];
        let stored =
            vec![Message::user("hi"), with_calls(&["1"]), Message::tool("1", "t", "ok"), Message::assistant("Hello!")];
        assert_eq!(client_fingerprint(&client), client_fingerprint(&stored));
        assert_ne!(client_fingerprint(&client), client_fingerprint(&[Message::user("hi"), Message::assistant("Hi")]));
        // The encoding is unambiguous: moving text between messages changes it.
        assert_ne!(
            client_fingerprint(&[Message::user("ab"), Message::user("c")]),
            client_fingerprint(&[Message::user("a"), Message::user("bc")])
        );
        assert_eq!(client_fingerprint(&[]), None);
        assert_eq!(client_fingerprint(&[Message::tool("1", "t", "x")]), None);
    }
}
