//! What a model sees of an MCP tool's result: its text, with everything
//! else (images, audio, binary resources) named and sized rather than
//! pasted, since base64 bytes in a prompt only cost tokens.

use rmcp::model::{CallToolResult, RawContent, ResourceContents};

/// The result as text: text parts joined by newlines, other parts summarised,
/// and the structured result as JSON when the server sent nothing else.
pub fn render(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = result.content.iter().map(|c| render_part(&c.raw)).collect();
    if parts.is_empty() {
        if let Some(structured) = &result.structured_content {
            parts.push(structured.to_string());
        }
    }
    parts.join("\n")
}

fn render_part(part: &RawContent) -> String {
    match part {
        RawContent::Text(t) => t.text.clone(),
        RawContent::Image(i) => format!("[image: {}, {} bytes]", i.mime_type, base64_len(&i.data)),
        RawContent::Audio(a) => format!("[audio: {}, {} bytes]", a.mime_type, base64_len(&a.data)),
        RawContent::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => format!("[resource {uri}]\n{text}"),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => {
                format!("[resource {uri}: {}, {} bytes]", mime_type.as_deref().unwrap_or("binary"), base64_len(blob))
            }
        },
        RawContent::ResourceLink(link) => match &link.description {
            Some(d) => format!("[resource link {} ({}): {d}]", link.uri, link.name),
            None => format!("[resource link {} ({})]", link.uri, link.name),
        },
    }
}

/// How many bytes a base64 text decodes to.
fn base64_len(data: &str) -> usize {
    let digits = data.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    let padding = data.bytes().rev().filter(|b| !b.is_ascii_whitespace()).take_while(|b| *b == b'=').count();
    (digits / 4 * 3).saturating_sub(padding.min(2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn result(content: serde_json::Value) -> CallToolResult {
        serde_json::from_value(serde_json::json!({ "content": content })).unwrap()
    }

    #[test]
    fn text_is_joined_and_binary_is_summarised() {
        let r = result(serde_json::json!([
            {"type": "text", "text": "first"},
            {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "inside"}},
            {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAA", "mimeType": "application/gzip"}},
            {"type": "resource_link", "uri": "file:///c", "name": "c"},
            {"type": "text", "text": "last"}
        ]));
        assert_eq!(
            render(&r),
            "first\n[image: image/png, 8 bytes]\n[resource file:///a.txt]\ninside\n\
[resource file:///b.bin: application/gzip, 3 bytes]\n[resource link file:///c (c)]\nlast"
        );
    }

    #[test]
    fn structured_content_stands_in_for_missing_text() {
        let r: CallToolResult =
            serde_json::from_value(serde_json::json!({"content": [], "structuredContent": {"t": 21}})).unwrap();
        assert_eq!(render(&r), r#"{"t":21}"#);
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("QQ=="), 1);
        assert_eq!(base64_len("QUI="), 2);
        assert_eq!(base64_len("QUJD"), 3);
    }
}
