//! Finding what a phrase names: "the kitchen light", "all the lights
//! upstairs", "the ceilling light in the bedroom", "the blinds".
//!
//! The index holds, for every entity, the canonical words of its names
//! (friendly name, aliases, object id) and its area; for every area its
//! names and floor. A phrase is resolved in steps, most certain first:
//!
//! 1. the whole phrase is exactly one of an entity's names;
//! 2. the place (areas, floors, "upstairs") and kind words ("lights",
//!    "doors", "temperature") are taken out, and what is left are name
//!    words;
//! 3. with no name words, the phrase names a scope: the things of those
//!    kinds in that place — all of them for a set ("all the lights", "the
//!    kitchen lights"), the only one for a singular ("the bedroom fan");
//! 4. with name words, every entity whose names hold every name word
//!    (exactly, as a prefix, or with one typo) is scored, and the best
//!    wins only if it clearly beats the next.
//!
//! Every word must be explained — as a filler, a place, a kind or a word
//! of the chosen entity's names. A word that is none of these means the
//! phrase is not understood, and the utterance goes to the model.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use super::fuzzy::{contains_run, coverage, quality};
use super::lexicon::{self, is_everything, is_filler, is_house, is_quantifier, Kind, Noun};
use super::numbers::Tok;
use super::place::Place;
use super::tokens::{is_plural, name_words, singular, surface_words};
use crate::home::{Area, Entity};

/// How much a match through a kind ("light" for a light not called one)
/// is worth, against 1 for a word of the entity's own names.
const KIND_FIT: f32 = 0.75;
/// How far the best candidate must be ahead of the next to be chosen.
const MARGIN: f32 = 0.1;
/// The lowest score a fuzzy match may have.
const MIN_SCORE: f32 = 0.55;

/// A word of a phrase: as said, and in its canonical (singular) form.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub surface: String,
    pub canon: String,
}

impl Word {
    pub(crate) fn from_tok(tok: &Tok) -> Word {
        match tok {
            Tok::Word(w) => Word { surface: w.clone(), canon: singular(w) },
            Tok::Num(n) => Word { surface: n.text(), canon: n.text() },
        }
    }

    fn plural(&self) -> bool {
        is_plural(&self.surface)
    }
}

/// What a phrase that names only a place means for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarePlace {
    /// Too vague ("turn off the kitchen": the lights? everything?).
    Vague,
    /// The one allowed thing there ("set the bedroom to 20 degrees").
    One,
    /// All allowed things there ("dim the living room").
    All,
}

/// What the request allows a phrase to name.
pub(crate) struct Ask<'a> {
    pub allow: &'a dyn Fn(&Entity) -> bool,
    pub bare_place: BarePlace,
    /// A set with no place named means the whole house ("which lights are
    /// on?"); for commands the whole house must be said ("all the lights").
    pub house_by_default: bool,
    /// A kind the rest of the utterance implies ("how warm" → temperature).
    pub implied: Option<&'static Kind>,
    /// The domains "everything" stands for; empty for every allowed one.
    pub everything: &'a [&'a str],
}

/// What a phrase named.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub ids: Vec<usize>,
    /// 0 to 1: how sure the match is.
    pub quality: f32,
    /// The phrase named a set ("all the lights", "the kitchen lights").
    pub set: bool,
    /// Every target was named by one of its own names, exactly.
    pub exact: bool,
    pub noun: Option<Noun>,
    pub place: Option<String>,
}

struct Item {
    /// Canonical words of each name.
    labels: Vec<Vec<String>>,
}

pub(crate) struct AreaItem {
    pub name: String,
    /// Canonical words of its name, aliases and id; and of the name written as one word.
    pub names: Vec<Vec<String>>,
    pub floor: Option<usize>,
    pub members: Vec<usize>,
}

pub(crate) struct FloorItem {
    pub words: Vec<String>,
    pub areas: Vec<usize>,
}

/// The catalog with the states to read: those given with the utterance
/// when there are some, else the ones the index was built or updated with.
/// Names, areas and domains always come from the index.
pub(crate) struct View<'a> {
    pub index: &'a Index,
    states: Option<&'a [Entity]>,
    /// Where each id is in `states`, when they are not in the index's order.
    positions: OnceCell<HashMap<&'a str, usize>>,
}

impl<'a> View<'a> {
    pub(crate) fn new(index: &'a Index, states: Option<&'a [Entity]>) -> View<'a> {
        View { index, states, positions: OnceCell::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.entities.len()
    }

    /// Entity `i` as it is now.
    pub(crate) fn entity(&self, i: usize) -> &'a Entity {
        let known = &self.index.entities[i];
        let Some(states) = self.states else { return known };
        // The states usually come in the order the index was built from.
        if let Some(e) = states.get(i).filter(|e| e.entity_id == known.entity_id) {
            return e;
        }
        let positions =
            self.positions.get_or_init(|| states.iter().enumerate().map(|(j, e)| (e.entity_id.as_str(), j)).collect());
        positions.get(known.entity_id.as_str()).map(|&j| &states[j]).unwrap_or(known)
    }
}

/// The entity catalog, indexed for matching.
pub(crate) struct Index {
    pub entities: Vec<Entity>,
    items: Vec<Item>,
    pub(crate) areas: Vec<AreaItem>,
    pub(crate) floors: Vec<FloorItem>,
    by_id: HashMap<String, usize>,
    /// Canonical name word → entities with it.
    postings: HashMap<String, Vec<usize>>,
    /// The keys of `postings`, for prefix and typo look-ups.
    vocab: Vec<String>,
    /// A whole name as said (surface words) → entities.
    exact_surface: HashMap<String, Vec<usize>>,
    /// A whole name in canonical words → entities.
    exact_canon: HashMap<String, Vec<usize>>,
}

impl Index {
    pub(crate) fn new(entities: Vec<Entity>, areas: &[Area]) -> Index {
        let mut floor_ids: Vec<String> = Vec::new();
        let mut area_items: Vec<AreaItem> = Vec::with_capacity(areas.len());
        for area in areas {
            let mut names: Vec<Vec<String>> = Vec::new();
            for text in std::iter::once(&area.name).chain(area.aliases.iter()).chain(std::iter::once(&area.area_id)) {
                let words = name_words(text);
                if words.len() > 1 {
                    names.push(vec![words.concat()]);
                }
                if !words.is_empty() {
                    names.push(words);
                }
            }
            names.sort();
            names.dedup();
            let floor = area.floor.as_ref().map(|f| match floor_ids.iter().position(|x| x == f) {
                Some(i) => i,
                None => {
                    floor_ids.push(f.clone());
                    floor_ids.len() - 1
                }
            });
            area_items.push(AreaItem { name: area.name.clone(), names, floor, members: Vec::new() });
        }
        let mut floors: Vec<FloorItem> =
            floor_ids.iter().map(|f| FloorItem { words: name_words(f), areas: Vec::new() }).collect();
        for (i, area) in area_items.iter().enumerate() {
            if let Some(f) = area.floor {
                floors[f].areas.push(i);
            }
        }
        let area_of: HashMap<&str, usize> = areas.iter().enumerate().map(|(i, a)| (a.area_id.as_str(), i)).collect();

        let mut items = Vec::with_capacity(entities.len());
        let mut postings: HashMap<String, Vec<usize>> = HashMap::new();
        let mut exact_surface: HashMap<String, Vec<usize>> = HashMap::new();
        let mut exact_canon: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::with_capacity(entities.len());
        for (i, entity) in entities.iter().enumerate() {
            by_id.insert(entity.entity_id.clone(), i);
            let object_id = entity.entity_id.split_once('.').map(|(_, o)| o).unwrap_or(&entity.entity_id);
            // The object id is a name for matching words ("living room
            // floor lamp"), but not one to be named by exactly: ids are
            // often just an area ("light.garage", "climate.bedroom").
            let texts = std::iter::once((entity.name.as_str(), true))
                .chain(entity.aliases.iter().map(|a| (a.as_str(), true)))
                .chain(std::iter::once((object_id, false)));
            let mut labels: Vec<Vec<String>> = Vec::new();
            for (text, exact) in texts {
                let canon = name_words(text);
                if canon.is_empty() {
                    continue;
                }
                if exact {
                    push_unique(exact_surface.entry(surface_words(text).join(" ")).or_default(), i);
                    push_unique(exact_canon.entry(canon.join(" ")).or_default(), i);
                }
                for word in &canon {
                    push_unique(postings.entry(word.clone()).or_default(), i);
                }
                labels.push(canon);
            }
            if let Some(a) = entity.area_id.as_deref().and_then(|a| area_of.get(a).copied()) {
                area_items[a].members.push(i);
            }
            items.push(Item { labels });
        }
        let mut vocab: Vec<String> = postings.keys().cloned().collect();
        vocab.sort();
        Index { entities, items, areas: area_items, floors, by_id, postings, vocab, exact_surface, exact_canon }
    }

    pub(crate) fn position(&self, entity_id: &str) -> Option<usize> {
        self.by_id.get(entity_id).copied()
    }

    /// What `phrase` names, among the entities `ask` allows; `None` when it
    /// names nothing, or more than one thing where one was meant.
    pub(crate) fn resolve(&self, phrase: &[Tok], ask: &Ask<'_>) -> Option<Found> {
        let words: Vec<Word> = phrase.iter().map(Word::from_tok).collect();
        let joined = words.iter().any(|w| w.surface == "and" || w.surface == ",");
        if joined {
            // "the tv and the kitchen speaker": each part on its own first;
            // "the kitchen and hallway lights" only reads as a whole.
            if let Some(found) = self.resolve_parts(&words, ask) {
                return Some(found);
            }
        }
        self.resolve_part(&words, ask)
    }

    fn resolve_parts(&self, words: &[Word], ask: &Ask<'_>) -> Option<Found> {
        let parts: Vec<&[Word]> =
            words.split(|w| w.surface == "and" || w.surface == ",").filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 {
            return None;
        }
        let mut all: Option<Found> = None;
        for part in parts {
            let found = self.resolve_part(part, ask)?;
            all = Some(match all {
                None => found,
                Some(mut acc) => {
                    for id in found.ids {
                        push_unique(&mut acc.ids, id);
                    }
                    acc.quality = acc.quality.min(found.quality);
                    acc.exact &= found.exact;
                    if acc.noun != found.noun {
                        acc.noun = None;
                    }
                    if acc.place != found.place {
                        acc.place = None;
                    }
                    acc
                }
            });
        }
        all.map(|mut f| {
            f.set = true;
            f
        })
    }

    fn resolve_part(&self, words: &[Word], ask: &Ask<'_>) -> Option<Found> {
        let mut quantified = false;
        let mut everything = false;
        let mut house = false;
        let mut rest: Vec<&Word> = Vec::with_capacity(words.len());
        for w in words {
            let s = w.surface.as_str();
            if is_quantifier(s) {
                quantified = true;
            } else if is_everything(s) {
                everything = true;
                quantified = true;
            } else if is_house(s) {
                house = true;
            } else if !(is_filler(s) || s == "and" || s == ",") {
                rest.push(w);
            }
        }
        if rest.is_empty() && !everything && !house && ask.implied.is_none() {
            return None;
        }
        if !quantified && !rest.is_empty() {
            if let Some(found) = self.exact(&rest, ask) {
                return found;
            }
        }

        let mut place = self.find_place(&rest)?;
        place.house = house;
        let mut kinds: Vec<(&'static Kind, &Word, bool)> = Vec::new();
        let mut names: Vec<&Word> = Vec::new();
        for (i, w) in rest.iter().enumerate() {
            if place.used(i) {
                continue;
            }
            match lexicon::kind(&w.canon) {
                Some(k) => kinds.push((k, w, w.plural())),
                None => names.push(w),
            }
        }
        let implied_word;
        if let Some(k) = ask.implied {
            if !kinds.iter().any(|(x, _, _)| std::ptr::eq(*x, k)) {
                implied_word = Word { surface: k.words[0].to_string(), canon: k.words[0].to_string() };
                kinds.push((k, &implied_word, false));
            }
        }
        let set = quantified || kinds.iter().any(|(_, _, plural)| *plural);
        let noun = kinds.first().map(|(k, _, _)| k.noun());
        let place_q = if place.areas.is_empty() { 1.0 } else { place.quality };
        // Every word of the phrase, for how much of a name it covers; a
        // place said by another of its names counts as said ("lounge lamp"
        // covers "living room lamp").
        let mut said: Vec<&str> = rest.iter().map(|w| w.canon.as_str()).collect();
        for &a in &place.areas {
            said.extend(self.areas[a].names.iter().flatten().map(String::as_str));
        }
        if let Some(k) = ask.implied {
            said.push(k.words[0]);
        }

        if names.is_empty() {
            let pool: Vec<usize> = if kinds.is_empty() && !everything {
                if place.areas.is_empty() && !place.house {
                    return None;
                }
                let pool = self.in_place(&place, true, ask);
                return match ask.bare_place {
                    BarePlace::Vague => None,
                    BarePlace::One if pool.len() == 1 => {
                        Some(self.found(pool, 0.9 * place_q, false, false, noun, &place))
                    }
                    BarePlace::One => None,
                    BarePlace::All if !pool.is_empty() => {
                        Some(self.found(pool, 0.9 * place_q, true, false, noun, &place))
                    }
                    BarePlace::All => None,
                };
            } else {
                let strict = set;
                let in_place = self.in_place(&place, strict, ask);
                if everything && kinds.is_empty() {
                    let domains = ask.everything;
                    in_place
                        .into_iter()
                        .filter(|&i| domains.is_empty() || domains.contains(&self.entities[i].domain.as_str()))
                        .collect()
                } else {
                    self.of_kinds(in_place, &kinds, set)
                }
            };
            if pool.is_empty() {
                return None;
            }
            if set {
                let anywhere = place.areas.is_empty() && !place.house;
                // "turn off the lights": which ones? And "turn off
                // everything" is too broad to do without asking. The
                // model can ask; "all the lights" and "everything in the
                // house" say it.
                if anywhere && !ask.house_by_default && (!quantified || everything) {
                    return None;
                }
                return Some(self.found(pool, 0.92 * place_q, true, false, noun, &place));
            }
            if pool.len() == 1 {
                let q = if place.areas.is_empty() { 0.86 } else { 0.9 * place_q };
                return Some(self.found(pool, q, false, false, noun, &place));
            }
            // "the bedroom lamp": the light called a lamp over the ceiling light.
            return self
                .best(&pool, &[], &kinds, &said, place_q)
                .map(|(i, q)| self.found(vec![i], q, false, false, None, &place));
        }

        // Name words: entities whose names hold every one of them.
        let mut candidates: Option<HashMap<usize, ()>> = None;
        for w in &names {
            let hits = self.word_hits(&w.canon);
            candidates = Some(match candidates {
                None => hits.into_iter().map(|i| (i, ())).collect(),
                Some(prev) => hits.into_iter().filter(|i| prev.contains_key(i)).map(|i| (i, ())).collect(),
            });
        }
        let placed: HashSet<usize> = self.in_place(&place, set, ask).into_iter().collect();
        let mut pool: Vec<usize> = candidates.unwrap_or_default().into_keys().filter(|i| placed.contains(i)).collect();
        pool.sort_unstable();
        if pool.is_empty() {
            return None;
        }
        if set {
            let mut chosen = Vec::new();
            let mut worst: f32 = 1.0;
            for &i in &pool {
                if let Some(s) = self.score(i, &names, &kinds, &said) {
                    if s >= MIN_SCORE {
                        chosen.push(i);
                        worst = worst.min(s);
                    }
                }
            }
            if chosen.is_empty() {
                return None;
            }
            return Some(self.found(chosen, worst * place_q, true, false, noun, &place));
        }
        self.best(&pool, &names, &kinds, &said, place_q)
            .map(|(i, q)| self.found(vec![i], q, false, false, None, &place))
    }

    /// Step 1: the phrase is one of the names. `Some(None)` means it is a
    /// name of several entities and cannot be told apart ("ceiling light").
    fn exact(&self, rest: &[&Word], ask: &Ask<'_>) -> Option<Option<Found>> {
        let surface = rest.iter().map(|w| w.surface.as_str()).collect::<Vec<_>>().join(" ");
        // A plural kind word over a singular name ("kitchen lights" against
        // the alias "kitchen light") names a set, not the one thing.
        let plural_kind = rest.iter().any(|w| w.plural() && lexicon::kind(&w.canon).is_some());
        let mut hits: Vec<usize> = self.exact_surface.get(&surface).cloned().unwrap_or_default();
        hits.retain(|&i| (ask.allow)(&self.entities[i]));
        let mut exact_surface = true;
        if hits.is_empty() && !plural_kind {
            let canon = rest.iter().map(|w| w.canon.as_str()).collect::<Vec<_>>().join(" ");
            hits = self.exact_canon.get(&canon).cloned().unwrap_or_default();
            hits.retain(|&i| (ask.allow)(&self.entities[i]));
            exact_surface = false;
        }
        let place = Place::default();
        match hits.len() {
            0 => None,
            1 => Some(Some(self.found(hits, if exact_surface { 0.97 } else { 0.95 }, false, true, None, &place))),
            _ if rest.iter().any(|w| w.plural()) => Some(Some(self.found(hits, 0.93, true, true, None, &place))),
            _ => Some(None),
        }
    }

    fn found(&self, ids: Vec<usize>, quality: f32, set: bool, exact: bool, noun: Option<Noun>, place: &Place) -> Found {
        let noun = noun.or_else(|| {
            let first = ids.first().map(|&i| self.entities[i].domain.as_str())?;
            let same = ids.iter().all(|&i| self.entities[i].domain == first);
            (set && same).then(|| lexicon::domain_noun(first))
        });
        Found { ids, quality: quality.clamp(0.0, 1.0), set, exact, noun, place: place.text.clone() }
    }

    /// The best of `pool` if it clearly beats the rest: its index and score.
    fn best(
        &self,
        pool: &[usize],
        names: &[&Word],
        kinds: &[(&'static Kind, &Word, bool)],
        said: &[&str],
        place_q: f32,
    ) -> Option<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> =
            pool.iter().filter_map(|&i| self.score(i, names, kinds, said).map(|s| (i, s))).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (top, top_score) = *scored.first()?;
        if top_score < MIN_SCORE {
            return None;
        }
        if let Some((_, second)) = scored.get(1) {
            if *second > top_score - MARGIN {
                return None;
            }
        }
        Some((top, top_score * place_q * 0.95))
    }

    /// How well the entity's names hold the name and kind words: the mean
    /// quality of the words times how much of its best name was said.
    /// `None` when a word is not in its names (and, for a kind word, the
    /// entity is not of that kind).
    fn score(&self, i: usize, names: &[&Word], kinds: &[(&'static Kind, &Word, bool)], said: &[&str]) -> Option<f32> {
        let item = &self.items[i];
        let entity = &self.entities[i];
        let mut total = 0.0;
        let mut count = 0.0;
        for w in names {
            let q = item.labels.iter().flatten().map(|l| quality(&w.canon, l)).fold(0.0, f32::max);
            if q <= 0.0 {
                return None;
            }
            total += q;
            count += 1.0;
        }
        for (k, w, _) in kinds {
            let q = if item.labels.iter().flatten().any(|l| *l == w.canon) {
                1.0
            } else if k.tier_of(entity).is_some() {
                KIND_FIT
            } else {
                return None;
            };
            total += q;
            count += 1.0;
        }
        if count == 0.0 {
            return None;
        }
        let coverage = item.labels.iter().map(|label| coverage(label, said)).fold(0.0, f32::max);
        Some(total / count * (0.6 + 0.4 * coverage))
    }

    /// Entities with a name word that `word` matches.
    fn word_hits(&self, word: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        if let Some(ids) = self.postings.get(word) {
            out.extend(ids);
        }
        if word.len() >= 3 {
            for v in &self.vocab {
                if v != word && quality(word, v) > 0.0 {
                    if let Some(ids) = self.postings.get(v) {
                        out.extend(ids);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The allowed entities in the place. Strict: by area only; loose: also
    /// those whose names hold the place's words ("garden door").
    fn in_place(&self, place: &Place, strict: bool, ask: &Ask<'_>) -> Vec<usize> {
        let allowed = |i: &usize| (ask.allow)(&self.entities[*i]);
        if place.areas.is_empty() {
            return (0..self.entities.len()).filter(allowed).collect();
        }
        let mut out: Vec<usize> = place.areas.iter().flat_map(|&a| self.areas[a].members.iter().copied()).collect();
        if !strict {
            for mention in &place.mentions {
                for (i, item) in self.items.iter().enumerate() {
                    if item.labels.iter().any(|l| contains_run(l, mention)) {
                        out.push(i);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out.retain(allowed);
        out
    }

    /// The entities of `pool` of the kinds said: of any of them for a set
    /// ("lights and switches"), of each for one thing ("tv light"). A kind
    /// with tiers keeps only its first tier that has a match.
    fn of_kinds(&self, pool: Vec<usize>, kinds: &[(&'static Kind, &Word, bool)], set: bool) -> Vec<usize> {
        let mut keep: Vec<bool> = vec![!set; pool.len()];
        for (k, w, _) in kinds {
            let tier_of = |i: usize| {
                if self.items[i].labels.iter().flatten().any(|l| *l == w.canon) {
                    Some(0)
                } else {
                    k.tier_of(&self.entities[i])
                }
            };
            let best = pool.iter().filter_map(|&i| tier_of(i)).min();
            for (slot, &i) in keep.iter_mut().zip(&pool) {
                let ok = best.is_some() && tier_of(i) == best;
                *slot = if set { *slot || ok } else { *slot && ok };
            }
        }
        pool.into_iter().zip(keep).filter(|(_, k)| *k).map(|(i, _)| i).collect()
    }
}

fn push_unique(list: &mut Vec<usize>, i: usize) {
    if !list.contains(&i) {
        list.push(i);
    }
}
