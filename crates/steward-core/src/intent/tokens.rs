//! Cutting an utterance into words and numbers.
//!
//! Lower-cases; splits on anything that is not a letter or a digit; keeps
//! decimals ("21.5", "21,5") and the signs that give a number its unit
//! ("40%", "20°", "20°C", "20c"); expands the contractions people type
//! ("what's", "isn't", "whats"); and folds numbers said in words into
//! numbers ([`super::numbers`]). Entity and area names go through the same
//! cutting, so a name and what people say about it compare word for word.

use super::numbers::{fold, read_digits, Tok};

/// An utterance cut into tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Utterance {
    pub toks: Vec<Tok>,
    /// It had a question mark.
    pub question: bool,
}

pub(crate) fn utterance(text: &str) -> Utterance {
    let (words, question) = lex(text);
    Utterance { toks: fold(&words), question }
}

/// The canonical words of a name: cut and folded like an utterance, each
/// word in its singular form, numbers written in digits.
pub(crate) fn name_words(text: &str) -> Vec<String> {
    let (words, _) = lex(text);
    fold(&words)
        .iter()
        .filter(|t| !t.is(","))
        .map(|t| match t {
            Tok::Word(w) => singular(w),
            Tok::Num(n) => n.text(),
        })
        .collect()
}

/// The surface words of a name (cut and folded, not singularised).
pub(crate) fn surface_words(text: &str) -> Vec<String> {
    let (words, _) = lex(text);
    fold(&words).iter().filter(|t| !t.is(",")).map(Tok::text).collect()
}

/// A word's singular form, near enough for matching: `lights` → `light`,
/// `batteries` → `battery`, `switches` → `switch`; `glass`, `status` stay.
pub(crate) fn singular(word: &str) -> String {
    let n = word.len();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..n - 3]);
    }
    if n > 4 && ["sses", "shes", "ches", "xes", "zes"].iter().any(|s| word.ends_with(s)) {
        return word[..n - 2].to_string();
    }
    let keeps = ["ss", "us", "is"].iter().any(|s| word.ends_with(s));
    if (n > 3 || word == "tvs") && word.ends_with('s') && !keeps {
        return word[..n - 1].to_string();
    }
    word.to_string()
}

/// Whether a word is a plural ("lights", not "light" or "glass").
pub(crate) fn is_plural(word: &str) -> bool {
    singular(word) != word
}

fn lex(text: &str) -> (Vec<String>, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut question = false;
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
            continue;
        }
        let next = chars.get(i + 1).copied();
        let numeric = !cur.is_empty() && cur.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',');
        match c {
            '.' | ',' if numeric && next.is_some_and(|n| n.is_ascii_digit()) => cur.push(c),
            '\'' | '\u{2019}' | '\u{2018}' | '`' if !cur.is_empty() && next.is_some_and(char::is_alphabetic) => {
                cur.push('\'')
            }
            _ => {
                flush(&mut cur, &mut out);
                match c {
                    '%' => out.push("%".into()),
                    '°' | 'º' => out.push("°".into()),
                    '℃' => out.extend(["°".to_string(), "c".to_string()]),
                    '?' => question = true,
                    ',' | ';' => out.push(",".into()),
                    '&' | '+' => out.push("and".into()),
                    _ => {}
                }
            }
        }
    }
    flush(&mut cur, &mut out);
    (out, question)
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    if cur.is_empty() {
        return;
    }
    let word = std::mem::take(cur);
    if word.contains('\'') {
        expand(&word, out);
    } else if let Some(split) = glued_unit(&word) {
        out.extend(split);
    } else if let Some(full) = bare_contraction(&word) {
        out.extend(full.iter().map(|w| w.to_string()));
    } else {
        out.push(word);
    }
}

/// "20c", "21.5°c" (the sign already split off), "40pct": a number glued to its unit.
fn glued_unit(word: &str) -> Option<Vec<String>> {
    let at = word.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
    let (number, unit) = word.split_at(at);
    read_digits(number)?;
    matches!(unit, "c" | "f" | "pct" | "percent" | "deg" | "degrees")
        .then(|| vec![number.to_string(), unit.to_string()])
}

/// Contractions typed without the apostrophe.
fn bare_contraction(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "whats" => &["what", "is"],
        "hows" => &["how", "is"],
        "wheres" => &["where", "is"],
        "thats" => &["that", "is"],
        "theres" => &["there", "is"],
        "dont" => &["do", "not"],
        "doesnt" => &["does", "not"],
        "isnt" => &["is", "not"],
        "arent" => &["are", "not"],
        "cant" => &["can", "not"],
        "wont" => &["will", "not"],
        "didnt" => &["did", "not"],
        _ => return None,
    })
}

/// "what's" → what is, "isn't" → is not, "kid's" → kids.
fn expand(word: &str, out: &mut Vec<String>) {
    let Some((base, suffix)) = word.split_once('\'') else {
        out.push(word.to_string());
        return;
    };
    let suffix = suffix.replace('\'', "");
    let push2 = |out: &mut Vec<String>, a: &str, b: &str| {
        out.push(a.to_string());
        out.push(b.to_string());
    };
    match suffix.as_str() {
        "s" if matches!(base, "what" | "it" | "that" | "there" | "here" | "how" | "where" | "who" | "when" | "why") => {
            push2(out, base, "is")
        }
        "s" if base == "let" => push2(out, "let", "us"),
        "t" if base.ends_with('n') => {
            let stem = match base {
                "can" | "don" | "won" | "ain" => match base {
                    "can" => "can",
                    "don" => "do",
                    "won" => "will",
                    _ => "is",
                },
                other => &other[..other.len() - 1],
            };
            push2(out, stem, "not");
        }
        "re" => push2(out, base, "are"),
        "ll" => push2(out, base, "will"),
        "m" => push2(out, base, "am"),
        "d" => push2(out, base, "would"),
        "ve" => push2(out, base, "have"),
        _ => out.push(format!("{base}{suffix}")),
    }
}

/// "Living Room" → "living room", "TV Backlight" → "TV backlight": words
/// written as capitalised words are lower-cased, acronyms kept.
pub(crate) fn soft_lower(name: &str) -> String {
    name.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            let first_upper = chars.next().is_some_and(char::is_uppercase);
            let rest_lower = chars.all(|c| !c.is_uppercase());
            if first_upper && rest_lower {
                w.to_lowercase()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "a", "a and b", "a, b and c".
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::numbers::Unit;
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        utterance(text).toks.iter().map(Tok::text).collect()
    }

    #[test]
    fn words_numbers_and_units() {
        assert_eq!(texts("Set the Kitchen light to 40%!"), ["set", "the", "kitchen", "light", "to", "40"]);
        let u = utterance("set the thermostat to 21.5°C");
        assert_eq!(u.toks.last().and_then(Tok::num).map(|n| (n.value, n.unit)), Some((21.5, Unit::Degrees)));
        let u = utterance("bedroom to 20c");
        assert_eq!(u.toks.last().and_then(Tok::num).map(|n| (n.value, n.unit)), Some((20.0, Unit::Degrees)));
        let u = utterance("set it to 21,5 degrees");
        assert_eq!(u.toks.last().and_then(Tok::num).map(|n| n.value), Some(21.5));
        assert!(utterance("is the garage door open?").question);
        assert!(!utterance("open the garage door.").question);
    }

    #[test]
    fn contractions() {
        assert_eq!(texts("what's the temperature"), ["what", "is", "the", "temperature"]);
        assert_eq!(texts("Whats on"), ["what", "is", "on"]);
        assert_eq!(texts("don't unlock"), ["do", "not", "unlock"]);
        assert_eq!(texts("isn’t it"), ["is", "not", "it"]);
        assert_eq!(texts("can't"), ["can", "not"]);
        assert_eq!(texts("the kid's lamp"), ["the", "kids", "lamp"]);
        assert_eq!(texts("kitchen & hallway"), ["kitchen", "and", "hallway"]);
    }

    #[test]
    fn names_are_singular_words() {
        assert_eq!(name_words("Garden Path Lights"), ["garden", "path", "light"]);
        assert_eq!(name_words("light.living_room_floor_lamp"), ["light", "living", "room", "floor", "lamp"]);
        assert_eq!(name_words("Under-cabinet lights"), ["under", "cabinet", "light"]);
        assert_eq!(name_words("Bedroom Two"), ["bedroom", "2"]);
        assert_eq!(surface_words("Counter Lights"), ["counter", "lights"]);
    }

    #[test]
    fn singulars() {
        for (plural, one) in [
            ("lights", "light"),
            ("batteries", "battery"),
            ("switches", "switch"),
            ("blinds", "blind"),
            ("shades", "shade"),
            ("tvs", "tv"),
            ("glass", "glass"),
            ("status", "status"),
            ("gas", "gas"),
            ("light", "light"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
        assert!(is_plural("doors"));
        assert!(!is_plural("door"));
    }
}
