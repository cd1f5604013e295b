//! How well a said word matches a name word: exactly, as a beginning
//! ("temp" for "temperature"), or one typo away ("ceilling").

/// A word that starts a name word ("temp" for "temperature").
pub(crate) const PREFIX: f32 = 0.85;
/// A word one typo away from a name word.
pub(crate) const TYPO: f32 = 0.82;

/// How well a said word matches a name word: 1 the same, [`PREFIX`] a
/// beginning of three letters or more, [`TYPO`] one typo away (for words of
/// four letters or more), 0 not at all.
pub(crate) fn quality(said: &str, word: &str) -> f32 {
    if said == word {
        1.0
    } else if said.len() >= 3 && word.len() > said.len() && word.starts_with(said) {
        PREFIX
    } else if said.len() >= 4 && word.len() >= 4 && within_one_edit(said, word) {
        TYPO
    } else {
        0.0
    }
}

/// Areas are matched a little more strictly: a typo only in words of five
/// letters or more ("kitchn"), and a beginning only of four ("kitch").
pub(crate) fn area_quality(said: &str, word: &str) -> f32 {
    if said == word {
        1.0
    } else if said.len() >= 4 && word.len() > said.len() && word.starts_with(said) {
        PREFIX
    } else if said.len() >= 5 && word.len() >= 5 && within_one_edit(said, word) {
        TYPO
    } else {
        0.0
    }
}

/// Levenshtein distance at most one, or two neighbouring letters swapped.
pub(crate) fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let mut diffs = (0..a.len()).filter(|&i| a[i] != b[i]);
            match (diffs.next(), diffs.next(), diffs.next()) {
                (Some(_), None, _) => true,
                (Some(i), Some(j), None) => j == i + 1 && a[i] == b[j] && a[j] == b[i],
                _ => false,
            }
        }
        1 => {
            let first = (0..short.len()).find(|&i| short[i] != long[i]).unwrap_or(short.len());
            short[first..] == long[first + 1..]
        }
        _ => false,
    }
}

/// How much of a name the said words cover, 0 to 1. Each said word covers
/// one word of the name, its best match (so "light" covers the "light" of
/// "night light", not also the "night" it is one letter from).
pub(crate) fn coverage(label: &[String], said: &[&str]) -> f32 {
    let mut covered = vec![false; label.len()];
    for s in said {
        let best = label
            .iter()
            .enumerate()
            .filter(|(i, _)| !covered[*i])
            .map(|(i, l)| (i, quality(s, l)))
            .filter(|(_, q)| *q >= TYPO)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best {
            covered[i] = true;
        }
    }
    covered.iter().filter(|c| **c).count() as f32 / label.len().max(1) as f32
}

/// Whether `run` appears in `words`, in order and side by side.
pub(crate) fn contains_run(words: &[String], run: &[String]) -> bool {
    !run.is_empty() && words.windows(run.len()).any(|w| w == run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_or_a_swap() {
        assert!(within_one_edit("ceiling", "ceilling"));
        assert!(within_one_edit("lihgt", "light"));
        assert!(within_one_edit("lamp", "lamb"));
        assert!(within_one_edit("kitchn", "kitchen"));
        assert!(!within_one_edit("lamp", "lmpa"));
        assert!(!within_one_edit("kitchen", "chicken"));
        assert!(!within_one_edit("light", "lights!!"));
    }

    #[test]
    fn word_quality() {
        assert_eq!(quality("light", "light"), 1.0);
        assert_eq!(quality("temp", "temperature"), PREFIX);
        assert_eq!(quality("ceilling", "ceiling"), TYPO);
        // Too short to guess at.
        assert_eq!(quality("tv", "tvs"), 0.0);
        assert_eq!(quality("lmp", "lamp"), 0.0);
        assert_eq!(quality("fan", "fat"), 0.0);
        // Areas are stricter about typos.
        assert_eq!(area_quality("hal", "hall"), 0.0);
        assert_eq!(area_quality("kitchn", "kitchen"), TYPO);
        assert_eq!(area_quality("kitch", "kitchen"), PREFIX);
    }

    #[test]
    fn each_said_word_covers_one_name_word() {
        let label = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(coverage(&label("night light"), &["light"]), 0.5);
        assert_eq!(coverage(&label("night light"), &["night", "light"]), 1.0);
        assert_eq!(coverage(&label("kitchen ceiling"), &["kitchen", "ceilling"]), 1.0);
        assert_eq!(coverage(&label("living room lamp"), &["lamp"]), 1.0 / 3.0);
        assert!(contains_run(&label("garden door lock"), &label("garden door")));
        assert!(!contains_run(&label("garden door lock"), &label("door garden")));
        assert!(!contains_run(&label("garden"), &[]));
    }
}
