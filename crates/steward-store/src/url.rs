//! Database URL handling: classifying the scheme and keeping passwords out of
//! every message and log line.

/// The URL with its password (`user:PASSWORD@host`) and any `…password=`
/// query parameter replaced by `***`. Everything else is kept, so the result
/// still says which database was meant.
///
/// A well-formed URL is redacted precisely. If the password contains an
/// unencoded `/`, `?` or `#`, everything up to the last `@` is treated as
/// user information, which may hide more than the password but never less.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // `sqlite:path`, `sqlite::memory:`: there is no authority to redact.
        return redact_query(url);
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => Some(at),
        // No `@` in the authority as parsed: if one appears later, the
        // password may hold a `/`, `?` or `#`; redact generously.
        None => rest.rfind('@').filter(|&at| rest[..at].contains(':')),
    };
    let redacted = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) if colon + 1 < userinfo.len() => {
                    format!("{}{}:***{}", &url[..start], &userinfo[..colon], &rest[at..])
                }
                _ => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    redact_query(&redacted)
}

/// Replaces the value of every query parameter whose name ends in
/// `password` (any case) with `***`.
fn redact_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let (head, query) = url.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if is_password_key(key) && !value.is_empty() => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}{fragment}", pairs.join("&"))
}

fn is_password_key(key: &str) -> bool {
    let key = percent_decode(key).to_ascii_lowercase();
    key.ends_with("password") || key.ends_with("passwd")
}

/// The secrets a URL carries (its password and `…password=` parameters),
/// both as written and percent-decoded, for scrubbing driver messages.
fn secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut user = None;
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = rest[..authority_end].rfind('@').or_else(|| rest.rfind('@').filter(|&at| rest[..at].contains(':')));
        if let Some(at) = at {
            if let Some((name, password)) = rest[..at].split_once(':') {
                user = Some(percent_decode(name));
                out.push(password.to_string());
            }
        }
    }
    if let Some(q) = url.find('?') {
        for pair in url[q + 1..].split(['&', '#']) {
            if let Some((key, value)) = pair.split_once('=') {
                if is_password_key(key) {
                    out.push(value.to_string());
                }
            }
        }
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode(s)).collect();
    out.extend(decoded);
    // A password equal to the user name is shown by the redacted URL
    // anyway; hiding it would only garble messages that name the user.
    out.retain(|s| !s.is_empty() && Some(percent_decode(s)) != user);
    // Longest first, so a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every secret of `url` replaced by `***`: defence in depth
/// for driver error messages, which should never echo a password anyway.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut text = text.to_string();
    for secret in secrets(url) {
        if text.contains(&secret) {
            text = text.replace(&secret, "***");
        }
    }
    text
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scheme of a URL (before the first `:`), lower-cased, if it looks
/// like one.
pub(crate) fn scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// For a `sqlite:` URL, whether it names an in-memory database.
pub(crate) fn sqlite_is_memory(url: &str) -> bool {
    let body = url.split_once(':').map_or(url, |(_, body)| body);
    let body = body.strip_prefix("//").unwrap_or(body);
    let (database, query) = body.split_once('?').unwrap_or((body, ""));
    database == ":memory:" || query.split('&').any(|p| p == "mode=memory")
}

/// For a `sqlite:` URL: adds `mode=rwc` unless a mode is given, so a new
/// database file is created on first use.
pub(crate) fn sqlite_with_default_mode(url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|p| p.starts_with("mode=")) => url.to_string(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

/// A `sqlite:` URL for a file path, percent-encoding what a URL would
/// otherwise misread.
pub(crate) fn sqlite_url_for_path(path: &std::path::Path) -> Option<String> {
    let path = path.to_str()?;
    let mut encoded = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            _ => encoded.push(c),
        }
    }
    Some(if path.starts_with('/') {
        format!("sqlite://{encoded}?mode=rwc")
    } else {
        format!("sqlite:{encoded}?mode=rwc")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_authority() {
        assert_eq!(
            redact_url("postgres://steward:secretpw@127.0.0.1:5432/db"),
            "postgres://steward:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact_url("postgresql://u:p%40ss@h/db?x=1"), "postgresql://u:***@h/db?x=1");
    }

    #[test]
    fn keeps_urls_without_password() {
        for url in [
            "postgres://steward@localhost/db",
            "postgres://localhost:5432/db",
            "sqlite://data/steward.db?mode=rwc",
            "sqlite:steward.db",
            "sqlite::memory:",
            "postgres://u:@h/db",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn redacts_unencoded_special_characters_generously() {
        let r = redact_url("postgres://u:pa/ss?x#y@host/db");
        assert!(!r.contains("pa/ss"), "{r}");
        assert!(r.starts_with("postgres://u:***@host/db"), "{r}");
        let r = redact_url("postgres://u:p@ss@host/db");
        assert_eq!(r, "postgres://u:***@host/db");
    }

    #[test]
    fn redacts_password_query_parameters() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=hunter2&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://h/db?sslPassword=x#frag"), "postgres://h/db?sslPassword=***#frag");
    }

    #[test]
    fn scrubs_raw_and_decoded_secrets() {
        let url = "postgres://u:p%40ssword@h/db?password=other";
        assert_eq!(scrub("bad p@ssword, p%40ssword, other", url), "bad ***, ***, ***");
        assert_eq!(scrub("nothing here", "sqlite:x.db"), "nothing here");
        assert_eq!(
            scrub("password authentication failed for user \"steward\"", "postgres://steward:steward@h/db"),
            "password authentication failed for user \"steward\""
        );
    }

    #[test]
    fn classifies_schemes() {
        assert_eq!(scheme("SQLite://x").as_deref(), Some("sqlite"));
        assert_eq!(scheme("postgresql://x").as_deref(), Some("postgresql"));
        assert_eq!(scheme("/just/a/path"), None);
        assert_eq!(scheme("no scheme"), None);
    }

    #[test]
    fn sqlite_helpers() {
        assert!(sqlite_is_memory("sqlite::memory:"));
        assert!(sqlite_is_memory("sqlite://:memory:"));
        assert!(sqlite_is_memory("sqlite://?mode=memory"));
        assert!(!sqlite_is_memory("sqlite://x.db?mode=rwc"));
        assert_eq!(sqlite_with_default_mode("sqlite:x.db"), "sqlite:x.db?mode=rwc");
        assert_eq!(sqlite_with_default_mode("sqlite:x.db?cache=shared"), "sqlite:x.db?cache=shared&mode=rwc");
        assert_eq!(sqlite_with_default_mode("sqlite:x.db?mode=ro"), "sqlite:x.db?mode=ro");
        assert_eq!(
            sqlite_url_for_path(std::path::Path::new("/tmp/a b/50%?#.db")).as_deref(),
            Some("sqlite:///tmp/a b/50%25%3F%23.db?mode=rwc")
        );
        assert_eq!(sqlite_url_for_path(std::path::Path::new("rel/x.db")).as_deref(), Some("sqlite:rel/x.db?mode=rwc"));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
