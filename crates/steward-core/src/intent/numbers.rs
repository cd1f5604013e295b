//! Numbers as people say them: "40", "21.5", "21,5", "twenty one",
//! "a hundred", "twenty one point five", "twenty and a half", "half",
//! "halfway", "a quarter", "three quarters", with the unit that follows
//! ("40%", "forty percent", "20°", "20 degrees", "20 c").
//!
//! [`fold`] turns the words of an utterance into words and numbers; the
//! grammar then decides what a number means from where it stands.

use serde::{Deserialize, Serialize};

/// The unit said after a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    None,
    Percent,
    /// Degrees, Celsius or unstated.
    Degrees,
    /// Degrees Fahrenheit, said so.
    Fahrenheit,
}

/// A number from an utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Num {
    pub value: f64,
    pub unit: Unit,
    /// Said as a share ("half", "halfway", "three quarters"): `value` is
    /// then a percentage.
    pub fraction: bool,
}

impl Num {
    /// The number as a name would write it: `2`, `21.5`.
    pub fn text(&self) -> String {
        number_text(self.value)
    }

    /// As a percentage: said with `%`, as a share, or bare.
    pub fn percent(&self) -> Option<f64> {
        match self.unit {
            Unit::Percent | Unit::None => Some(self.value),
            Unit::Degrees | Unit::Fahrenheit => None,
        }
    }
}

/// `21` for 21.0, `21.5` for 21.5.
pub(crate) fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let s = format!("{value:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A word or a number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    Num(Num),
}

impl Tok {
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            Tok::Num(_) => None,
        }
    }

    pub fn is(&self, word: &str) -> bool {
        self.word() == Some(word)
    }

    pub fn num(&self) -> Option<Num> {
        match self {
            Tok::Num(n) => Some(*n),
            Tok::Word(_) => None,
        }
    }

    /// The token as text: the word, or the number written out.
    pub fn text(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Num(n) => n.text(),
        }
    }
}

const SMALL: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: &[(&str, u32)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

fn small(word: &str) -> Option<u32> {
    SMALL.iter().position(|w| *w == word).map(|i| i as u32)
}

fn tens(word: &str) -> Option<u32> {
    TENS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
}

fn digit(word: &str) -> Option<u32> {
    match word {
        "oh" => Some(0),
        w => small(w).filter(|v| *v <= 9),
    }
}

fn at(words: &[String], i: usize) -> &str {
    words.get(i).map(String::as_str).unwrap_or("")
}

/// A number in digits: `40`, `21.5`, `21,5` (a decimal comma) or `1,000`.
pub(crate) fn read_digits(word: &str) -> Option<f64> {
    if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if !word.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    let normal = match word.split_once(',') {
        // One comma with three digits after it groups thousands; with fewer it is a decimal comma.
        Some((whole, rest)) if rest.len() == 3 && !rest.contains([',', '.']) => format!("{whole}{rest}"),
        Some((whole, rest)) if !rest.contains([',', '.']) => format!("{whole}.{rest}"),
        Some(_) => return None,
        None => word.to_string(),
    };
    normal.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A number said in words at the start of `words`: its value and how many
/// words it took. "a" alone is not a number ("a hundred" is).
pub(crate) fn read_words(words: &[String]) -> Option<(f64, usize)> {
    let mut i = 0;
    let mut value: Option<f64> = None;
    // Hundreds: "a hundred", "one hundred", "hundred".
    let first = at(words, 0);
    if at(words, 1) == "hundred" && (first == "a" || small(first).is_some_and(|v| (1..=9).contains(&v))) {
        value = Some(f64::from(small(first).unwrap_or(1)) * 100.0);
        i = 2;
    } else if first == "hundred" {
        value = Some(100.0);
        i = 1;
    }
    if value.is_some()
        && at(words, i) == "and"
        && (tens(at(words, i + 1)).is_some() || small(at(words, i + 1)).is_some())
    {
        i += 1;
    }
    let base = value.unwrap_or(0.0);
    if let Some(t) = tens(at(words, i)) {
        let mut v = f64::from(t);
        i += 1;
        if let Some(u) = small(at(words, i)).filter(|u| (1..=9).contains(u)) {
            v += f64::from(u);
            i += 1;
        }
        value = Some(base + v);
    } else if let Some(s) = small(at(words, i)) {
        value = Some(base + f64::from(s));
        i += 1;
    }
    let mut value = value?;
    let (extra, used) = read_tail(&words[i..]);
    value += extra;
    Some((value, i + used))
}

/// What may follow a whole number: "point five", "and a half", "and a quarter".
fn read_tail(words: &[String]) -> (f64, usize) {
    if at(words, 0) == "point" && digit(at(words, 1)).is_some() {
        let mut fraction = 0.0;
        let mut scale = 0.1;
        let mut i = 1;
        while let Some(d) = digit(at(words, i)) {
            fraction += f64::from(d) * scale;
            scale /= 10.0;
            i += 1;
        }
        return (fraction, i);
    }
    if at(words, 0) == "and" && at(words, 1) == "a" {
        match at(words, 2) {
            "half" => return (0.5, 3),
            "quarter" => return (0.25, 3),
            _ => {}
        }
    }
    (0.0, 0)
}

/// A share said in words: "half", "halfway", "half way", "a quarter",
/// "three quarters" — as a percentage.
fn read_share(words: &[String]) -> Option<(f64, usize)> {
    match (at(words, 0), at(words, 1)) {
        ("half", "way") => Some((50.0, 2)),
        ("half" | "halfway", _) => Some((50.0, 1)),
        ("a" | "one", "quarter") => Some((25.0, 2)),
        ("quarter", _) => Some((25.0, 1)),
        ("three", "quarter" | "quarters") => Some((75.0, 2)),
        _ => None,
    }
}

/// The unit after a number, and how many words it took.
fn read_unit(words: &[String]) -> (Unit, usize) {
    let scale = |w: &str| match w {
        "c" | "celsius" | "centigrade" => Some(Unit::Degrees),
        "f" | "fahrenheit" => Some(Unit::Fahrenheit),
        _ => None,
    };
    match (at(words, 0), at(words, 1)) {
        ("%" | "percent" | "pct", _) => (Unit::Percent, 1),
        ("per", "cent") => (Unit::Percent, 2),
        ("°" | "degree" | "degrees" | "deg", next) => match scale(next) {
            Some(unit) => (unit, 2),
            None => (Unit::Degrees, 1),
        },
        (w, _) => match scale(w) {
            Some(unit) => (unit, 1),
            None => (Unit::None, 0),
        },
    }
}

/// Turns words into words and numbers.
pub(crate) fn fold(words: &[String]) -> Vec<Tok> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        let found = if let Some(v) = read_digits(&rest[0]) {
            let (extra, used) = read_tail(&rest[1..]);
            Some((v + extra, 1 + used, false))
        } else if let Some((v, used)) = read_share(rest) {
            Some((v, used, true))
        } else {
            read_words(rest).map(|(v, used)| (v, used, false))
        };
        match found {
            Some((value, used, fraction)) => {
                i += used;
                let (unit, taken) = if fraction { (Unit::Percent, 0) } else { read_unit(&words[i..]) };
                i += taken;
                out.push(Tok::Num(Num { value, unit, fraction }));
            }
            None => {
                out.push(Tok::Word(rest[0].clone()));
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn nums(text: &str) -> Vec<(f64, Unit)> {
        fold(&words(text)).iter().filter_map(Tok::num).map(|n| (n.value, n.unit)).collect()
    }

    #[test]
    fn digits_with_decimal_points_and_commas() {
        assert_eq!(read_digits("40"), Some(40.0));
        assert_eq!(read_digits("21.5"), Some(21.5));
        assert_eq!(read_digits("21,5"), Some(21.5));
        assert_eq!(read_digits("1,000"), Some(1000.0));
        assert_eq!(read_digits("co2"), None);
        assert_eq!(read_digits("1,2,3"), None);
        assert_eq!(read_digits(""), None);
    }

    #[test]
    fn numbers_in_words() {
        let read = |t: &str| read_words(&words(t));
        assert_eq!(read("twenty"), Some((20.0, 1)));
        assert_eq!(read("twenty one"), Some((21.0, 2)));
        assert_eq!(read("nineteen degrees"), Some((19.0, 1)));
        assert_eq!(read("a hundred"), Some((100.0, 2)));
        assert_eq!(read("one hundred and five"), Some((105.0, 4)));
        assert_eq!(read("twenty one point five"), Some((21.5, 4)));
        assert_eq!(read("twenty and a half"), Some((20.5, 4)));
        assert_eq!(read("zero"), Some((0.0, 1)));
        assert_eq!(read("a light"), None);
        assert_eq!(read("second"), None);
    }

    #[test]
    fn shares_are_percentages() {
        let toks = fold(&words("open the blinds halfway"));
        assert_eq!(toks[3], Tok::Num(Num { value: 50.0, unit: Unit::Percent, fraction: true }));
        assert_eq!(nums("half way"), vec![(50.0, Unit::Percent)]);
        assert_eq!(nums("a quarter"), vec![(25.0, Unit::Percent)]);
        assert_eq!(nums("three quarters"), vec![(75.0, Unit::Percent)]);
    }

    #[test]
    fn units_follow_numbers() {
        assert_eq!(nums("40 %"), vec![(40.0, Unit::Percent)]);
        assert_eq!(nums("forty percent"), vec![(40.0, Unit::Percent)]);
        assert_eq!(nums("forty per cent"), vec![(40.0, Unit::Percent)]);
        assert_eq!(nums("20 degrees"), vec![(20.0, Unit::Degrees)]);
        assert_eq!(nums("20 ° c"), vec![(20.0, Unit::Degrees)]);
        assert_eq!(nums("twenty one point five degrees celsius"), vec![(21.5, Unit::Degrees)]);
        assert_eq!(nums("70 degrees fahrenheit"), vec![(70.0, Unit::Fahrenheit)]);
        assert_eq!(nums("70 f"), vec![(70.0, Unit::Fahrenheit)]);
        assert_eq!(nums("21 and a half degrees"), vec![(21.5, Unit::Degrees)]);
    }

    #[test]
    fn words_stay_words() {
        let toks = fold(&words("turn on the light"));
        assert!(toks.iter().all(|t| t.word().is_some()));
        assert_eq!(number_text(2.0), "2");
        assert_eq!(number_text(21.5), "21.5");
        assert_eq!(number_text(0.25), "0.25");
    }
}
