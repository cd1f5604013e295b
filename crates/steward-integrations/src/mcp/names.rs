//! The names MCP tools get in Steward: `<server>__<tool>`.
//!
//! Model APIs accept tool names of `[a-zA-Z0-9_-]{1,64}` only, while an MCP
//! server may name its tools as it likes (dots, slashes, spaces, long
//! names). So names are rewritten, shortened and made unique. The rewriting
//! is deterministic — the same servers give the same names on every start —
//! because approvals and policy rules refer to tools by name.

use std::collections::BTreeSet;

/// The longest tool name model APIs accept.
pub const MAX_NAME: usize = 64;

/// Every character outside `[a-zA-Z0-9_-]` becomes `_`.
pub fn sanitise(part: &str) -> String {
    let s: String =
        part.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// `<server>__<tool>`, sanitised and at most [`MAX_NAME`] long. A name that
/// had to be shortened ends in a hash of the full one, so two long names
/// sharing a prefix still differ.
pub fn tool_name(server: &str, tool: &str) -> String {
    let full = format!("{}__{}", sanitise(server), sanitise(tool));
    if full.len() <= MAX_NAME {
        return full;
    }
    let hash = format!("{:08x}", fnv1a(format!("{server}\0{tool}").as_bytes()));
    // ASCII only after sanitising, so any byte index is a char boundary.
    format!("{}_{hash}", &full[..MAX_NAME - hash.len() - 1])
}

/// Hands out unique names: a name already taken gets `_2`, `_3`, … (within
/// [`MAX_NAME`]).
#[derive(Debug, Default)]
pub struct UniqueNames {
    taken: BTreeSet<String>,
}

impl UniqueNames {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn claim(&mut self, name: String) -> String {
        if self.taken.insert(name.clone()) {
            return name;
        }
        let mut n = 2u32;
        loop {
            let suffix = format!("_{n}");
            let mut base = name.clone();
            base.truncate(MAX_NAME - suffix.len());
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// FNV-1a, 32 bits: stable across Rust versions, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_namespaced_and_sanitised() {
        assert_eq!(tool_name("everything", "echo"), "everything__echo");
        assert_eq!(tool_name("fs", "get-file.info v2"), "fs__get-file_info_v2");
        assert_eq!(tool_name("fs", "löschen/alles"), "fs__l_schen_alles");
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash() {
        let a = tool_name("server", &"a".repeat(100));
        let b = tool_name("server", &format!("{}b", "a".repeat(99)));
        assert_eq!(a.len(), MAX_NAME);
        assert_eq!(b.len(), MAX_NAME);
        assert_ne!(a, b);
        assert_eq!(a, tool_name("server", &"a".repeat(100)));
        assert!(a.starts_with("server__aaaa"));
    }

    #[test]
    fn duplicates_get_a_number() {
        let mut names = UniqueNames::new();
        assert_eq!(names.claim(tool_name("s", "a.b")), "s__a_b");
        assert_eq!(names.claim(tool_name("s", "a/b")), "s__a_b_2");
        assert_eq!(names.claim(tool_name("s", "a b")), "s__a_b_3");
        let long = "x".repeat(MAX_NAME);
        assert_eq!(names.claim(long.clone()), long);
        let second = names.claim(long);
        assert!(second.ends_with("_2") && second.len() == MAX_NAME, "{second}");
    }
}
