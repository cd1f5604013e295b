//! A server-sent-events parser for streamed completions.
//!
//! It works on bytes as they come off the network: a line, or a multi-byte
//! character, may be split across any number of network chunks. Lines end
//! in `\n`, `\r\n` or `\r`. Comment lines (`:`), `event:`, `id:` and
//! `retry:` are ignored; `data:` lines make up an event, which ends at a
//! blank line. Servers that separate events with a single newline are
//! tolerated: a `data:` line arriving while the event so far is already a
//! complete JSON value starts a new event.

/// While no event has been seen, the parser keeps up to this many bytes of
/// the body so the caller can tell what came back instead (an HTML page, a
/// plain JSON completion).
const RAW_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    /// Where the current (unfinished) line starts in `buf`.
    start: usize,
    /// How far past `start` the search for a line end has already looked.
    scanned: usize,
    /// The `data:` lines of the event being read.
    data: Vec<String>,
    events: usize,
    lines: usize,
    other_lines: usize,
    raw: Vec<u8>,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Feeds bytes from the network; pushes the data of each completed
    /// event to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        if self.events == 0 && self.raw.len() < RAW_LIMIT {
            let room = RAW_LIMIT - self.raw.len();
            self.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        self.buf.extend_from_slice(bytes);
        while let Some(line) = self.next_line(false) {
            self.line(&line, out);
        }
        self.compact();
    }

    /// The body ended: handles an unterminated last line and event.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        while let Some(line) = self.next_line(true) {
            self.line(&line, out);
        }
        self.compact();
        self.dispatch(out);
    }

    /// How many events have been dispatched.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Lines that were neither blank, comments nor SSE fields.
    #[cfg(test)]
    pub fn other_lines(&self) -> usize {
        self.other_lines
    }

    /// The start of the body, kept only until the first event.
    pub fn raw_start(&self) -> &[u8] {
        &self.raw
    }

    /// Takes the next complete line out of the buffer, without its ending.
    fn next_line(&mut self, eof: bool) -> Option<String> {
        let from = self.start + self.scanned;
        let rest = &self.buf[from..];
        match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            Some(pos) => {
                let end = from + pos;
                let ending = if self.buf[end] == b'\n' {
                    1
                } else if end + 1 < self.buf.len() {
                    if self.buf[end + 1] == b'\n' {
                        2
                    } else {
                        1
                    }
                } else if eof {
                    1
                } else {
                    // A `\r` at the very end: wait to see whether `\n` follows.
                    self.scanned = end - self.start;
                    return None;
                };
                let line = String::from_utf8_lossy(&self.buf[self.start..end]).into_owned();
                self.start = end + ending;
                self.scanned = 0;
                Some(line)
            }
            None if eof && self.start < self.buf.len() => {
                let line = String::from_utf8_lossy(&self.buf[self.start..]).into_owned();
                self.start = self.buf.len();
                self.scanned = 0;
                Some(line)
            }
            None => {
                self.scanned = self.buf.len() - self.start;
                None
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    fn line(&mut self, line: &str, out: &mut Vec<String>) {
        self.lines += 1;
        let line = if self.lines == 1 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if let Some(pending) = self.data.first() {
                    if self.data.len() == 1 && is_complete(pending) {
                        self.dispatch(out);
                    }
                }
                self.data.push(value.to_string());
            }
            "event" | "id" | "retry" => {}
            _ => self.other_lines += 1,
        }
    }

    fn dispatch(&mut self, out: &mut Vec<String>) {
        if self.data.is_empty() {
            return;
        }
        let data = self.data.join("\n");
        self.data.clear();
        if self.events == 0 {
            self.raw = Vec::new();
        }
        self.events += 1;
        out.push(data);
    }
}

/// Whether `data` is already a whole event by itself.
fn is_complete(data: &str) -> bool {
    let trimmed = data.trim();
    trimmed == "[DONE]" || (trimmed.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn events_end_at_blank_lines() {
        let out = parse_all(&[b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"]);
        assert_eq!(out, vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let out = parse_all(&[b"data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\rdata: [DONE]\r\n\r\n"]);
        assert_eq!(out, vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let out = parse_all(&[
            b": keep-alive\n\nevent: completion\nid: 7\nretry: 100\ndata: {\"a\":1}\n\n: OPENROUTER PROCESSING\n\n",
        ]);
        assert_eq!(out, vec!["{\"a\":1}"]);
    }

    #[test]
    fn the_space_after_the_colon_is_optional() {
        let out = parse_all(&[b"data:{\"a\":1}\n\ndata:  x\n\n"]);
        assert_eq!(out, vec!["{\"a\":1}", " x"]);
    }

    #[test]
    fn multi_line_data_is_joined() {
        let out = parse_all(&[b"data: {\"a\":\ndata: 1}\n\n"]);
        assert_eq!(out, vec!["{\"a\":\n1}"]);
    }

    #[test]
    fn single_newline_separated_events_are_split() {
        let out = parse_all(&[b"data: {\"a\":1}\ndata: {\"b\":2}\ndata: [DONE]\n"]);
        assert_eq!(out, vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn an_unterminated_last_event_is_kept_at_the_end() {
        let out = parse_all(&[b"data: {\"a\":1}\n\ndata: [DONE]"]);
        assert_eq!(out, vec!["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn a_leading_bom_is_dropped() {
        let out = parse_all(&["\u{feff}data: x\n\n".as_bytes()]);
        assert_eq!(out, vec!["x"]);
    }

    #[test]
    fn non_sse_bodies_are_noticed_and_kept() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"<html>\n<body>Bad gateway</body>\n</html>\n", &mut out);
        parser.finish(&mut out);
        assert!(out.is_empty());
        assert_eq!(parser.events(), 0);
        assert_eq!(parser.other_lines(), 3);
        assert!(String::from_utf8_lossy(parser.raw_start()).contains("Bad gateway"));
    }

    #[test]
    fn raw_bytes_are_dropped_after_the_first_event() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: x\n\n", &mut out);
        assert!(parser.raw_start().is_empty());
    }

    /// A realistic stream with multi-byte characters, CRLF endings, a
    /// comment and a usage chunk, split into two network chunks at every
    /// possible byte position, and into single bytes.
    #[test]
    fn every_split_of_the_byte_stream_gives_the_same_events() {
        let stream = concat!(
            ": ping\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"h\u{e9}llo \u{2713} \u{1F600}\"}}]}\r\n\r\n",
            "event: message\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\r\r",
            "data: [DONE]\n\n",
        )
        .as_bytes();
        let expected = parse_all(&[stream]);
        assert_eq!(expected.len(), 4);
        assert!(expected[0].contains("h\u{e9}llo \u{2713} \u{1F600}"));
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(parse_all(&[a, b]), expected, "split at byte {split}");
        }
        for (i, j) in [(1, 2), (10, 11), (40, 90), (100, 101)] {
            let (a, rest) = stream.split_at(i);
            let (b, c) = rest.split_at(j - i);
            assert_eq!(parse_all(&[a, b, c]), expected, "split at {i} and {j}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&bytes), expected);
    }
}
