//! Tolerant entity search: people say "kitchen lights", "temp in the
//! office" or "ceilling light", not `light.kitchen_ceiling`.
//!
//! A query is cut into words; each word is looked for in the entity's id,
//! name, aliases and area. A word matches exactly, as a plural ("lights" /
//! "light"), as a prefix ("temp" / "temperature") or with one typo
//! ("ceilling"). Entities that match every word win; when none does, the
//! ones that match the most words are returned, so a near miss still finds
//! something to offer.

use super::types::{Area, Entity};

/// Words that carry no meaning in a search ("the lights in my kitchen").
const STOPWORDS: &[&str] = &["a", "all", "an", "and", "any", "at", "for", "in", "is", "my", "of", "the", "to"];

/// Lower-case words separated by single spaces; punctuation, dots and
/// underscores become spaces (`light.Living_Room` → `light living room`).
pub fn normalize(text: &str) -> String {
    let spaced: String = text.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    spaced.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> Vec<String> {
    normalize(text).split(' ').filter(|w| !w.is_empty()).map(String::from).collect()
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit<'a> {
    pub entity: &'a Entity,
    /// Higher is a better match.
    pub score: u32,
    /// False when no entity matched every word and this one matched only some.
    pub matched_all: bool,
}

/// The entities that match `query` best, best first (ties by id). An empty
/// query (or one of stopwords only) matches every entity.
pub fn search_entities<'a>(entities: &'a [Entity], areas: &[Area], query: &str) -> Vec<SearchHit<'a>> {
    let tokens: Vec<String> = words(query).into_iter().filter(|w| !STOPWORDS.contains(&w.as_str())).collect();
    if tokens.is_empty() {
        let mut all: Vec<SearchHit<'a>> =
            entities.iter().map(|entity| SearchHit { entity, score: 0, matched_all: true }).collect();
        all.sort_by(|a, b| a.entity.entity_id.cmp(&b.entity.entity_id));
        return all;
    }
    let phrase = tokens.join(" ");
    let mut scored: Vec<(usize, SearchHit<'a>)> = Vec::new();
    for entity in entities {
        let area = entity.area_id.as_deref().and_then(|id| areas.iter().find(|a| a.area_id == id));
        let mut own: Vec<String> = words(&entity.entity_id);
        own.extend(words(&entity.name));
        for alias in &entity.aliases {
            own.extend(words(alias));
        }
        let mut place: Vec<String> = Vec::new();
        if let Some(area_id) = &entity.area_id {
            place.extend(words(area_id));
        }
        if let Some(area) = area {
            place.extend(words(&area.name));
            for alias in &area.aliases {
                place.extend(words(alias));
            }
        }
        let mut matched = 0;
        let mut score = 0;
        for token in &tokens {
            // The entity's own names weigh more than the room it is in.
            let best_own = own.iter().map(|w| quality(token, w) * 3).max().unwrap_or(0);
            let best_place = place.iter().map(|w| quality(token, w) * 2).max().unwrap_or(0);
            let best = best_own.max(best_place);
            if best > 0 {
                matched += 1;
                score += best;
            }
        }
        if matched == 0 {
            continue;
        }
        let names = std::iter::once(&entity.name).chain(entity.aliases.iter());
        if names.map(|n| normalize(n)).any(|n| n == phrase) {
            score += 20;
        } else if normalize(&entity.name).contains(&phrase) || normalize(&entity.entity_id).contains(&phrase) {
            score += 10;
        }
        scored.push((matched, SearchHit { entity, score, matched_all: matched == tokens.len() }));
    }
    let best_matched = scored.iter().map(|(m, _)| *m).max().unwrap_or(0);
    let mut hits: Vec<SearchHit<'a>> = scored.into_iter().filter(|(m, _)| *m == best_matched).map(|(_, h)| h).collect();
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.entity.entity_id.cmp(&b.entity.entity_id)));
    hits
}

/// Whether `query` names this area: its id, name or an alias, loosely.
pub fn area_matches(area: &Area, query: &str) -> bool {
    let wanted = normalize(query);
    if wanted.is_empty() {
        return false;
    }
    let names = std::iter::once(&area.area_id).chain(std::iter::once(&area.name)).chain(area.aliases.iter());
    let mut found = false;
    for name in names {
        let name = normalize(name);
        if name == wanted {
            return true;
        }
        let name_words: Vec<&str> = name.split(' ').collect();
        found |= wanted.split(' ').all(|t| name_words.iter().any(|w| quality(t, w) >= 2));
    }
    found
}

/// How well a query word matches a word: 3 exact or plural, 2 prefix, 1
/// one typo away, 0 not at all.
fn quality(token: &str, word: &str) -> u32 {
    if token == word || plural_of(token, word) || plural_of(word, token) {
        3
    } else if token.chars().count() >= 3 && word.starts_with(token) {
        2
    } else if token.chars().count() >= 4 && word.chars().count() >= 4 && within_one_edit(token, word) {
        1
    } else {
        0
    }
}

fn plural_of(plural: &str, singular: &str) -> bool {
    if let Some(stem) = plural.strip_suffix("ies") {
        if singular.strip_suffix('y') == Some(stem) {
            return true;
        }
    }
    plural.strip_suffix("es") == Some(singular) || plural.strip_suffix('s') == Some(singular)
}

/// Levenshtein distance ≤ 1, or two neighbouring letters swapped.
fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    match long.len() - short.len() {
        0 => {
            let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            match diffs.as_slice() {
                [_] => true,
                [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
                _ => false,
            }
        }
        1 => {
            let first_diff = (0..short.len()).find(|&i| short[i] != long[i]).unwrap_or(short.len());
            short[first_diff..] == long[first_diff + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, name: &str, aliases: &[&str], area: Option<&str>) -> Entity {
        Entity {
            entity_id: id.into(),
            domain: id.split('.').next().unwrap_or_default().into(),
            name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            area_id: area.map(String::from),
            device_id: None,
            state: "off".into(),
            attributes: serde_json::json!({}),
            last_changed: 0,
            last_updated: 0,
            available: true,
        }
    }

    fn fixture() -> (Vec<Entity>, Vec<Area>) {
        let areas = vec![
            Area { area_id: "kitchen".into(), name: "Kitchen".into(), aliases: vec![], floor: None },
            Area {
                area_id: "living_room".into(),
                name: "Living Room".into(),
                aliases: vec!["lounge".into()],
                floor: None,
            },
        ];
        let entities = vec![
            entity("light.kitchen_ceiling", "Kitchen Ceiling", &["ceiling light"], Some("kitchen")),
            entity("light.floor_lamp", "Floor Lamp", &["reading lamp"], Some("living_room")),
            entity("sensor.kitchen_temperature", "Kitchen Temperature", &[], Some("kitchen")),
            entity("switch.coffee_machine", "Coffee Machine", &["espresso"], Some("kitchen")),
        ];
        (entities, areas)
    }

    fn ids(hits: &[SearchHit<'_>]) -> Vec<String> {
        hits.iter().map(|h| h.entity.entity_id.clone()).collect()
    }

    #[test]
    fn normalizes_ids_and_names() {
        assert_eq!(normalize("light.Living_Room  Lamp!"), "light living room lamp");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn finds_by_plural_prefix_typo_alias_and_area() {
        let (entities, areas) = fixture();
        let hits = search_entities(&entities, &areas, "kitchen lights");
        assert_eq!(ids(&hits), vec!["light.kitchen_ceiling"]);
        assert!(hits[0].matched_all);
        assert_eq!(ids(&search_entities(&entities, &areas, "temp")), vec!["sensor.kitchen_temperature"]);
        assert_eq!(ids(&search_entities(&entities, &areas, "ceilling")), vec!["light.kitchen_ceiling"]);
        assert_eq!(ids(&search_entities(&entities, &areas, "the reading lamp")), vec!["light.floor_lamp"]);
        assert_eq!(ids(&search_entities(&entities, &areas, "lounge")), vec!["light.floor_lamp"]);
        assert_eq!(ids(&search_entities(&entities, &areas, "espresso")), vec!["switch.coffee_machine"]);
    }

    #[test]
    fn exact_names_rank_first_and_partial_matches_are_a_fallback() {
        let (entities, areas) = fixture();
        let hits = search_entities(&entities, &areas, "kitchen");
        assert_eq!(hits.len(), 3);
        // "kitchen ceiling lamp": nothing has all three words; the best partial matches come back.
        let hits = search_entities(&entities, &areas, "kitchen ceiling lamp");
        assert_eq!(ids(&hits)[0], "light.kitchen_ceiling");
        assert!(!hits[0].matched_all);
        assert!(search_entities(&entities, &areas, "garage").is_empty());
        assert_eq!(search_entities(&entities, &areas, "").len(), 4);
    }

    #[test]
    fn areas_match_by_id_name_or_alias() {
        let (_, areas) = fixture();
        assert!(area_matches(&areas[1], "living room"));
        assert!(area_matches(&areas[1], "living_room"));
        assert!(area_matches(&areas[1], "Lounge"));
        assert!(area_matches(&areas[0], "kitch"));
        assert!(!area_matches(&areas[0], "living"));
        assert!(!area_matches(&areas[0], ""));
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("ceiling", "ceilling"));
        assert!(within_one_edit("lamp", "lmap"));
        assert!(within_one_edit("lamp", "lamb"));
        assert!(!within_one_edit("lamp", "lmpa"));
        assert!(!within_one_edit("kitchen", "chicken"));
    }
}
