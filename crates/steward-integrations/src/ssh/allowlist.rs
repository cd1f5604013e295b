//! Which commands count as read-only: a list of patterns over the parsed
//! argument vector, never over the raw text.
//!
//! A command is read-only only if it is one program with plain arguments:
//! it is refused outright when it holds any character that makes a shell do
//! more than run one program (`; & | $ \` > < ( )` and line breaks), so that
//! `uptime; rm -rf /` or `df -h $(reboot)` can never pass as a read. What is
//! left is split like a shell splits words (quotes and backslashes), matched
//! against the patterns, and sent to the host re-quoted word by word, so the
//! remote shell runs exactly the words that were matched (no globbing, no
//! `~` expansion).
//!
//! # Patterns
//!
//! Words separated by spaces. A plain word must appear as it is; a
//! placeholder stands for one argument of a kind:
//!
//! - `<n>`: a whole number (`journalctl -n <n>`);
//! - `<unit>` or `<name>`: a name of letters, digits and `@ . _ : + -`, not
//!   starting with `-` (so it cannot be an option);
//! - `<path>`: an absolute path of the same characters and `/`, without `..`.
//!
//! Words in `[ … ]` are optional, as a group: `journalctl -n <n> [-u <unit>]`
//! matches `journalctl -n 50` and `journalctl -n 50 -u nginx`. Groups do not
//! nest. Arguments must come in the pattern's order; list another pattern
//! for another order.

use std::fmt;

/// The patterns every configuration starts with: status and resource
/// commands that change nothing on a typical Linux host.
pub const DEFAULT_READONLY_COMMANDS: &[&str] = &[
    // The most useful first: the tool's description quotes the first few.
    "uptime",
    "df -h",
    "free -m",
    "systemctl status <unit> [--no-pager]",
    "journalctl -n <n> [-u <unit>] [--no-pager]",
    "docker ps [-a]",
    "ip addr",
    "uname -a",
    "hostname",
    "free -h",
    "systemctl is-active <unit>",
    "systemctl --failed [--no-pager]",
    "journalctl -u <unit> -n <n> [--no-pager]",
    "ip route",
];

/// Characters that make a shell do more than run one program with
/// arguments: command separators, pipes, expansions, redirections,
/// subshells and line breaks.
const METACHARACTERS: &[char] = &[';', '&', '|', '$', '`', '>', '<', '(', ')', '\n', '\r'];

/// Characters a word may have and still be sent unquoted.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '_' | '-')
}

/// A pattern that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read-only command pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// Why a command is not run as read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It holds a shell metacharacter.
    Metacharacter { command: String, found: char },
    /// It cannot be split into words (an open quote, a control character).
    Unparsable { command: String, reason: String },
    /// It is one plain program, but no pattern matches it.
    NotAllowed { command: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const USE_SSH_RUN: &str = "use ssh_run, which asks a person";
        match self {
            Refusal::Metacharacter { command, found } => write!(
                f,
                "`{command}` is not on the read-only allowlist: it contains `{}`, and a read-only command is one \
program with plain arguments (no ; & | $ ` > < ( ) or line breaks); run such commands one at a time, or \
{USE_SSH_RUN}",
                found.escape_default()
            ),
            Refusal::Unparsable { command, reason } => {
                write!(f, "`{command}` is not on the read-only allowlist: {reason}; {USE_SSH_RUN}")
            }
            Refusal::NotAllowed { command } => write!(
                f,
                "`{command}` is not on the read-only allowlist (ssh_list_hosts shows the allowed patterns); \
{USE_SSH_RUN}"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Name,
    Path,
}

impl Kind {
    fn parse(word: &str) -> Option<Kind> {
        match word {
            "<n>" => Some(Kind::Number),
            "<unit>" | "<name>" => Some(Kind::Name),
            "<path>" => Some(Kind::Path),
            _ => None,
        }
    }

    fn accepts(self, arg: &str) -> bool {
        match self {
            Kind::Number => !arg.is_empty() && arg.len() <= 9 && arg.chars().all(|c| c.is_ascii_digit()),
            Kind::Name => {
                !arg.is_empty()
                    && arg.len() <= 256
                    && !arg.starts_with('-')
                    && arg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | ':' | '+' | '-'))
            }
            Kind::Path => {
                arg.starts_with('/')
                    && arg.len() <= 4096
                    && arg.split('/').all(|part| part != "..")
                    && arg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | ':' | '+' | '-' | '/'))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Placeholder(Kind),
    Optional(Vec<Item>),
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    items: Vec<Item>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, PatternError> {
        let error = |reason: &str| PatternError { pattern: text.to_string(), reason: reason.to_string() };
        let mut items = Vec::new();
        let mut group: Option<Vec<Item>> = None;
        for raw in text.split_whitespace() {
            let mut word = raw;
            let opens = word.starts_with('[');
            if opens {
                if group.is_some() {
                    return Err(error("optional groups `[ … ]` cannot nest"));
                }
                group = Some(Vec::new());
                word = &word[1..];
            }
            let closes = word.ends_with(']');
            if closes {
                word = &word[..word.len() - 1];
            }
            if !word.is_empty() {
                let item = match Kind::parse(word) {
                    Some(kind) => Item::Placeholder(kind),
                    None if word.starts_with('<') || word.ends_with('>') => {
                        return Err(error(&format!(
                            "unknown placeholder `{word}`; use <n> (a number), <unit> or <name> (a name) or <path> \
(an absolute path)"
                        )))
                    }
                    None if word.chars().all(plain) => Item::Literal(word.to_string()),
                    None => {
                        return Err(error(&format!(
                            "`{word}` is not a plain word; words may hold letters, digits and @ % + = : , . / _ -"
                        )))
                    }
                };
                match group.as_mut() {
                    Some(g) => g.push(item),
                    None => items.push(item),
                }
            }
            if closes {
                match group.take() {
                    Some(g) if !g.is_empty() => items.push(Item::Optional(g)),
                    Some(_) => return Err(error("an optional group `[ ]` is empty")),
                    None => return Err(error("`]` closes no group")),
                }
            }
        }
        if group.is_some() {
            return Err(error("an optional group `[` is not closed with `]`"));
        }
        match items.first() {
            Some(Item::Literal(_)) => {
                Ok(Pattern { text: text.split_whitespace().collect::<Vec<_>>().join(" "), items })
            }
            Some(Item::Placeholder(_) | Item::Optional(_)) => {
                Err(error("a pattern starts with the program's name, not a placeholder or an optional group"))
            }
            None => Err(error("the pattern is empty")),
        }
    }

    fn matches(&self, argv: &[String]) -> bool {
        match_items(&self.items, argv)
    }
}

/// Whether `items` match all of `argv`, trying each optional group both
/// taken and skipped.
fn match_items(items: &[Item], argv: &[String]) -> bool {
    let Some((first, rest)) = items.split_first() else { return argv.is_empty() };
    match first {
        Item::Literal(word) => argv.first().is_some_and(|a| a == word) && match_items(rest, &argv[1..]),
        Item::Placeholder(kind) => argv.first().is_some_and(|a| kind.accepts(a)) && match_items(rest, &argv[1..]),
        Item::Optional(group) => {
            let taken = argv.len() >= group.len() && match_items(group, &argv[..group.len()]);
            (taken && match_items(rest, &argv[group.len()..])) || match_items(rest, argv)
        }
    }
}

/// The read-only patterns in force: the defaults and the configured extras.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
}

impl Allowlist {
    /// The default patterns and `extra` ones; a bad extra pattern is an
    /// error naming it.
    pub fn new(extra: &[String]) -> Result<Allowlist, PatternError> {
        let mut patterns = Vec::new();
        for text in DEFAULT_READONLY_COMMANDS.iter().copied().chain(extra.iter().map(String::as_str)) {
            let pattern = Pattern::parse(text)?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(Allowlist { patterns })
    }

    /// The patterns, as written (whitespace normalised).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    /// The command's words when it is read-only, or why it is not.
    pub fn check(&self, command: &str) -> Result<Vec<String>, Refusal> {
        let refuse = |reason: &str| Refusal::Unparsable { command: command.to_string(), reason: reason.to_string() };
        if let Some(found) = command.chars().find(|c| METACHARACTERS.contains(c)) {
            return Err(Refusal::Metacharacter { command: command.to_string(), found });
        }
        if command.chars().any(char::is_control) {
            return Err(refuse("it contains a control character"));
        }
        let argv = split_words(command).map_err(|reason| refuse(&reason))?;
        if argv.is_empty() {
            return Err(refuse("it is empty"));
        }
        if self.patterns.iter().any(|p| p.matches(&argv)) {
            Ok(argv)
        } else {
            Err(Refusal::NotAllowed { command: command.to_string() })
        }
    }
}

/// Splits `command` into words as a POSIX shell would, for a command that
/// holds no metacharacters: whitespace separates words; single quotes keep
/// everything literally; double quotes keep everything but `\"` and `\\`;
/// a backslash outside quotes keeps the next character.
pub fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started: `''` is an empty word, not nothing.
    let mut started = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => word.push(escaped),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                started = true;
                match chars.next() {
                    Some(escaped) => word.push(escaped),
                    None => return Err("it ends with a lone backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

/// The words as one command line for a POSIX shell: plain words as they
/// are, others in single quotes.
pub fn quote_words(argv: &[String]) -> String {
    argv.iter()
        .map(
            |w| {
                if !w.is_empty() && w.chars().all(plain) {
                    w.clone()
                } else {
                    format!("'{}'", w.replace('\'', r"'\''"))
                }
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn defaults() -> Allowlist {
        Allowlist::new(&[]).unwrap()
    }

    #[test]
    fn the_default_commands_pass_with_their_words() {
        let list = defaults();
        for ok in [
            "uptime",
            "  df   -h ",
            "free -m",
            "uname -a",
            "systemctl status nginx.service",
            "systemctl status 'getty@tty1.service' --no-pager",
            "journalctl -n 50",
            "journalctl -n 50 -u ssh --no-pager",
            "journalctl -u docker -n 20",
            "docker ps",
            "docker ps -a",
            "ip addr",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}: {:?}", list.check(ok));
        }
        assert_eq!(list.check("systemctl  status \"nginx\"").unwrap(), ["systemctl", "status", "nginx"]);
    }

    #[test]
    fn shell_metacharacters_are_refused_even_when_quoted() {
        let list = defaults();
        for (bad, found) in [
            ("uptime; id", ';'),
            ("uptime && reboot", '&'),
            ("uptime | sh", '|'),
            ("echo $HOME", '$'),
            ("df -h `reboot`", '`'),
            ("df -h > /etc/passwd", '>'),
            ("df -h < /dev/zero", '<'),
            ("df -h $(reboot)", '$'),
            ("(reboot)", '('),
            ("uptime\nreboot", '\n'),
            ("systemctl status 'a;b'", ';'),
        ] {
            assert_eq!(list.check(bad), Err(Refusal::Metacharacter { command: bad.into(), found }), "{bad}");
        }
        let text = list.check("uptime; id").unwrap_err().to_string();
        assert!(text.contains("not on the read-only allowlist") && text.contains("use ssh_run, which asks a person"));
    }

    #[test]
    fn commands_off_the_list_or_with_wrong_arguments_are_refused() {
        let list = defaults();
        for bad in [
            "reboot",
            "rm -rf /",
            "uptime -p",
            "df",
            "systemctl restart nginx",
            "systemctl status",
            "systemctl status --all",
            "systemctl status -H evil",
            "journalctl -n many",
            "journalctl -n 5 -f",
            "journalctl -u",
            "docker ps -a -q",
            "df -h *",
            "",
            "   ",
        ] {
            assert!(list.check(bad).is_err(), "{bad} passed");
        }
        assert!(matches!(list.check("'uptime"), Err(Refusal::Unparsable { .. })));
        assert!(matches!(list.check("uptime\t\u{7}"), Err(Refusal::Unparsable { .. })));
    }

    #[test]
    fn configured_patterns_extend_the_list() {
        let list =
            Allowlist::new(&["zpool status [-v]".into(), "ls -l <path>".into(), "smartctl -H <name>".into()]).unwrap();
        assert!(list.check("zpool status -v").is_ok());
        assert!(list.check("ls -l /var/log").is_ok());
        assert!(list.check("ls -l /var/../etc").is_err());
        assert!(list.check("ls -l var").is_err());
        assert!(list.check("smartctl -H sda").is_ok());
        assert!(list.check("smartctl -H --all").is_err());
        assert!(list.patterns().any(|p| p == "zpool status [-v]"));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (bad, reason) in [
            ("", "empty"),
            ("<n>", "starts with the program"),
            ("[uptime]", "starts with the program"),
            ("ls <file>", "unknown placeholder `<file>`"),
            ("ls [-l [-a]]", "cannot nest"),
            ("ls [-l", "not closed"),
            ("ls -l]", "closes no group"),
            ("ls []", "empty"),
            ("uptime;", "not a plain word"),
        ] {
            let e = Allowlist::new(&[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains(reason), "{bad}: {e}");
        }
    }

    #[test]
    fn words_split_like_a_shell_and_quote_back() {
        assert_eq!(split_words(r#"a 'b c' "d \"e\"" f\ g ''"#).unwrap(), ["a", "b c", "d \"e\"", "f g", ""]);
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("trailing\\").is_err());
        let words: Vec<String> = ["ls", "-l", "a b", "it's", "", "*"].iter().map(|s| s.to_string()).collect();
        let line = quote_words(&words);
        assert_eq!(line, r#"ls -l 'a b' 'it'\''s' '' '*'"#);
        assert_eq!(split_words(&line).unwrap(), words);
    }
}
