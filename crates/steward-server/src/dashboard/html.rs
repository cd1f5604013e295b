//! Small helpers for writing HTML by hand.

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a
/// value inside a URL.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes one `application/x-www-form-urlencoded` value.
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of a form body, decoded.
pub fn form_fields(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// A time for people: `2026-11-22 09:30:12 UTC`.
pub fn when(ms: i64) -> String {
    let s = steward_core::tools::rfc3339(ms);
    // rfc3339 gives 2026-11-22T09:30:12Z (maybe with fractions).
    let date = s.get(..10).unwrap_or(&s);
    let time = s.get(11..19).unwrap_or("");
    format!("{date} {time} UTC")
}

/// `<time>` with the machine-readable value and the readable text.
pub fn time_tag(ms: i64) -> String {
    format!("<time datetime=\"{}\">{}</time>", esc(&steward_core::tools::rfc3339(ms)), esc(&when(ms)))
}

/// A short status badge; `kind` picks its colour in the stylesheet.
pub fn badge(kind: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(kind), esc(text))
}

/// Money as people read it: `$0.0123`, `$12.40`.
pub fn money(amount: f64) -> String {
    if amount != 0.0 && amount.abs() < 0.01 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

/// JSON pretty-printed for a `<pre>` (escaped).
pub fn json_pre(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("<pre>{}</pre>", esc(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("<script>alert('x')</script>&\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
    }

    #[test]
    fn form_values_decode() {
        assert_eq!(form_decode("a+b%2Fc%3D%zz%4"), "a b/c=%zz%4");
        let fields = form_fields("key=sk-1%2B2&next=%2Fui%2Fhome");
        assert_eq!(fields, vec![("key".into(), "sk-1+2".into()), ("next".into(), "/ui/home".into())]);
        assert_eq!(url_encode("/ui/home?q=a b"), "%2Fui%2Fhome%3Fq%3Da%20b");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }
}
