//! Places in a phrase: areas by any of their names ("the lounge"),
//! floors by name ("the ground floor") or position ("upstairs").

use super::fuzzy::area_quality;
use super::matcher::{FloorItem, Index, Word};
use super::tokens::{join_and, soft_lower};

/// A place found in a phrase.
#[derive(Default)]
pub(crate) struct Place {
    pub areas: Vec<usize>,
    /// The words of each area mention, to let names that hold them match
    /// ("garden door" for a lock in the kitchen).
    pub mentions: Vec<Vec<String>>,
    pub quality: f32,
    pub text: Option<String>,
    pub house: bool,
    /// Which words of the phrase the place took.
    pub used_words: Vec<bool>,
}

impl Index {
    /// Areas and floors named in the phrase. `None` when a floor word is
    /// said in a house that has no such floor.
    pub(crate) fn find_place(&self, words: &[&Word]) -> Option<Place> {
        let mut place = Place { quality: 1.0, ..Place::default() };
        let mut used = vec![false; words.len()];
        let mut texts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].surface.as_str();
            // Floors by position.
            if matches!(w, "downstairs" | "upstairs") {
                let floors = self.floors_by_position(w == "upstairs");
                if floors.is_empty() {
                    return None;
                }
                for f in floors {
                    place.areas.extend(self.floors[f].areas.iter().copied());
                }
                used[i] = true;
                texts.push(w.to_string());
                i += 1;
                continue;
            }
            // Floors by name: "the ground floor", "outside" — unless an area
            // has the name too ("basement"): the area is the narrower place.
            let area = self.area_named(&words[i..]);
            let floor = self.floor_named(&words[i..]).filter(|(_, len)| area.is_none_or(|(_, n, _)| n < *len));
            if let Some((f, len)) = floor {
                place.areas.extend(self.floors[f].areas.iter().copied());
                for u in &mut used[i..i + len] {
                    *u = true;
                }
                let name = words[i..i + len].iter().map(|w| w.surface.as_str()).collect::<Vec<_>>().join(" ");
                texts.push(if len == 1 && !name.contains("floor") { name } else { format!("on the {name}") });
                i += len;
                continue;
            }
            // Areas: the longest name that starts here.
            if let Some((a, len, q)) = area {
                place.areas.push(a);
                place.mentions.push(words[i..i + len].iter().map(|w| w.canon.clone()).collect());
                place.quality = place.quality.min(q);
                for u in &mut used[i..i + len] {
                    *u = true;
                }
                texts.push(format!("the {}", soft_lower(&self.areas[a].name)));
                i += len;
                continue;
            }
            i += 1;
        }
        place.areas.sort_unstable();
        place.areas.dedup();
        place.text = match texts.len() {
            0 => None,
            _ if texts.iter().all(|t| t.starts_with("the ")) => Some(format!("in {}", join_and(&texts))),
            _ => Some(join_and(&texts)),
        };
        place.used_words = used;
        Some(place)
    }

    fn floors_by_position(&self, up: bool) -> Vec<usize> {
        let has = |f: &FloorItem, words: &[&str]| f.words.iter().any(|w| words.contains(&w.as_str()));
        let ground_exists = self.floors.iter().any(|f| has(f, &["ground", "downstair"]));
        self.floors
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                if up {
                    has(f, &["upstair", "upper", "top", "second", "attic", "loft"])
                        || (ground_exists && has(f, &["first"]))
                } else if ground_exists {
                    has(f, &["ground", "downstair", "lower"])
                } else {
                    has(f, &["first", "lower", "downstair"])
                }
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn floor_named(&self, words: &[&Word]) -> Option<(usize, usize)> {
        for (f, floor) in self.floors.iter().enumerate() {
            let n = floor.words.len();
            if n == 0 || words.len() < n {
                continue;
            }
            if words[..n].iter().zip(&floor.words).all(|(w, f)| w.canon == *f) {
                return Some((f, n));
            }
            // "outdoors" / "outside" for a floor called outside.
            if n == 1 && floor.words[0] == "outside" && matches!(words[0].surface.as_str(), "outdoors" | "outdoor") {
                return Some((f, 1));
            }
        }
        None
    }

    /// The area whose name starts `words`, the longest first: its index,
    /// the words it took and the match quality.
    fn area_named(&self, words: &[&Word]) -> Option<(usize, usize, f32)> {
        let longest = words.len().min(4);
        for len in (1..=longest).rev() {
            let mut best: Option<(usize, f32)> = None;
            for (a, area) in self.areas.iter().enumerate() {
                for name in area.names.iter().filter(|n| n.len() == len) {
                    let q = words[..len].iter().zip(name).map(|(w, n)| area_quality(&w.canon, n)).fold(1.0, f32::min);
                    if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                        best = Some((a, q));
                    }
                }
            }
            if let Some((a, q)) = best {
                return Some((a, len, q));
            }
        }
        None
    }
}

impl Place {
    pub(crate) fn used(&self, i: usize) -> bool {
        self.used_words.get(i).copied().unwrap_or(false)
    }
}
