//! Questions: "is the garage door open?", "what's the temperature in the
//! bedroom?", "which lights are on?", "are any doors unlocked?", "how warm
//! is it in the office?", "what is the thermostat set to?".
//!
//! A question is read into what it asks (a state, an attribute, a list)
//! and a target phrase, which the matcher resolves as for commands — with
//! the whole house as the default place for a set, since asking is harmless.

use super::lexicon::{self, Kind, StateWord, EVERYTHING};
use super::matcher::{Ask, BarePlace, Found, View};
use super::numbers::Tok;
use super::words::Words;
use super::{Intent, QueryKind, Subject, Understanding};
use crate::home::Entity;

/// Words a question starts with.
pub(crate) fn is_question(toks: &[Tok], question_mark: bool) -> bool {
    match toks.first().and_then(Tok::word) {
        Some("is" | "are" | "what" | "which" | "how" | "tell" | "show" | "give" | "check") => true,
        Some(w) => question_mark && !super::command::is_verb(w),
        None => false,
    }
}

struct Question {
    kind: QueryKind,
    attribute: Option<&'static str>,
    /// The domain the attribute belongs to.
    domain: Option<&'static str>,
    expect: Option<StateWord>,
    implied: Option<&'static Kind>,
    phrase: Vec<Tok>,
    certainty: f32,
}

impl Question {
    fn new(kind: QueryKind, phrase: Vec<Tok>) -> Question {
        Question { kind, attribute: None, domain: None, expect: None, implied: None, phrase, certainty: 1.0 }
    }

    fn attribute(mut self, attribute: &'static str, domain: &'static str) -> Question {
        self.kind = QueryKind::Attribute;
        self.attribute = Some(attribute);
        self.domain = Some(domain);
        self
    }
}

fn copula(w: &str) -> bool {
    matches!(w, "is" | "are")
}

/// "how warm", "how humid", "how bright": what the adjective asks about.
enum Measure {
    Kind(&'static str),
    Attribute(&'static str, &'static str),
}

fn measure(adjective: &str) -> Option<Measure> {
    Some(match adjective {
        "warm" | "hot" | "cold" | "cool" | "chilly" | "freezing" => Measure::Kind("temperature"),
        "humid" | "damp" | "dry" | "muggy" => Measure::Kind("humidity"),
        "bright" => Measure::Attribute("brightness", "light"),
        "loud" => Measure::Attribute("volume_level", "media_player"),
        "open" => Measure::Attribute("current_position", "cover"),
        _ => return None,
    })
}

fn parse(toks: &[Tok], question_mark: bool) -> Option<Question> {
    let mut w = Words::new(toks);
    let first = w.word(0)?.to_string();
    match first.as_str() {
        "is" | "are" => {
            w.take(0);
            w.take_any(&["there"]);
            yes_no(w)
        }
        "which" | "what" => {
            w.take(0);
            which_or_what(w, first == "what")
        }
        "how" => {
            w.take(0);
            let adjective = w.word(1)?.to_string();
            if adjective == "many" {
                w.take(1);
                let mut q = listing(w)?;
                q.kind = QueryKind::List;
                return Some(q);
            }
            let m = measure(&adjective)?;
            w.take(1);
            let c = w.find(copula)?;
            w.take(c);
            w.take_any(&["it"]);
            let q = Question::new(QueryKind::State, w.rest());
            Some(match m {
                Measure::Kind(k) => Question { implied: lexicon::kind(k), ..q },
                Measure::Attribute(a, d) => q.attribute(a, d),
            })
        }
        "tell" | "show" | "give" => {
            w.take(0);
            w.take_any(&["me", "us"]);
            measurement(w)
        }
        "check" => {
            w.take(0);
            measurement(w)
        }
        _ if question_mark => {
            // "garage door open?", "bedroom temperature?"
            let mut q = if w.find(|x| StateWord::parse(x).is_some()).is_some() { yes_no(w)? } else { measurement(w)? };
            q.certainty = 0.9;
            Some(q)
        }
        _ => None,
    }
}

/// "is the garage door open", "are any doors unlocked", "are all the
/// doors locked", "are the kitchen lights on".
fn yes_no(mut w: Words) -> Option<Question> {
    let i = w.rfind(|x| StateWord::parse(x).is_some())?;
    let expect = w.word(i).and_then(StateWord::parse);
    w.take(i);
    let quantifier = w.find(|x| matches!(x, "any" | "anything" | "something" | "all" | "every" | "everything"));
    let kind = match quantifier.and_then(|q| w.word(q)) {
        Some("all" | "every" | "everything") => QueryKind::Every,
        Some(_) => QueryKind::List,
        None => QueryKind::State,
    };
    let mut q = Question::new(kind, w.rest());
    q.expect = expect;
    Some(q)
}

/// "which lights are on", "what's on in the kitchen", "what is the
/// temperature in the bedroom", "what is the thermostat set to",
/// "what temperature is it in the office", "what's playing".
fn which_or_what(mut w: Words, what: bool) -> Option<Question> {
    // "what is on …", "which lights are on …": a state right after the verb.
    if let Some(c) = w.find(copula) {
        if let Some(s) = w.next(c).filter(|&s| w.word(s).and_then(StateWord::parse).is_some()) {
            // "what is playing" asks for the title, not for a list.
            if !(what && w.word(s) == Some("playing")) {
                let expect = w.word(s).and_then(StateWord::parse);
                w.take(c);
                w.take(s);
                let mut q = Question::new(QueryKind::List, subject_or_everything(&w, c));
                q.expect = expect;
                return Some(q);
            }
        }
    }
    if !what {
        return None;
    }
    // "what temperature is it in the bedroom"
    if let (Some(k), Some(c)) = (w.word(1).and_then(lexicon::kind).map(|_| 1), w.find(copula)) {
        if c == k + 1 {
            w.take(c);
            w.take_any(&["it"]);
            return measurement(w);
        }
    }
    let c = w.find(copula)?;
    if c != 1 {
        return None;
    }
    w.take(c);
    measurement(w)
}

/// The phrase of a list question, or "everything" when it names no subject
/// before the verb ("what is on in the kitchen").
fn subject_or_everything(w: &Words, verb: usize) -> Vec<Tok> {
    let before = (0..verb).any(|i| !w.taken[i]);
    let mut phrase = w.rest();
    if !before {
        phrase.insert(0, Tok::Word("everything".into()));
    }
    phrase
}

/// "how many lights are on upstairs".
fn listing(mut w: Words) -> Option<Question> {
    let c = w.find(copula)?;
    let s = w.next(c)?;
    let expect = w.word(s).and_then(StateWord::parse)?;
    w.take(c);
    w.take(s);
    let mut q = Question::new(QueryKind::List, subject_or_everything(&w, c));
    q.expect = Some(expect);
    Some(q)
}

/// "the temperature in the bedroom", "the thermostat set to", "the tv
/// volume", "playing on the tv": a state or an attribute.
fn measurement(mut w: Words) -> Option<Question> {
    w.take_any(&["current", "currently", "like", "level", "reading", "value", "now"]);
    w.take_any(&["level", "reading"]);
    if w.take_seq(&["set", "to"]) || w.take_seq(&["set", "at"]) || w.take_seq(&["target", "temperature"]) {
        return Some(Question::new(QueryKind::Attribute, w.rest()).attribute("temperature", "climate"));
    }
    let attribute = match w.take_any(&["brightness", "volume", "position", "playing"]) {
        Some("brightness") => Some(("brightness", "light")),
        Some("volume") => Some(("volume_level", "media_player")),
        Some("position") => Some(("current_position", "cover")),
        Some(_) => Some(("media_title", "media_player")),
        None => None,
    };
    let q = Question::new(QueryKind::State, w.rest());
    Some(match attribute {
        Some((a, d)) => q.attribute(a, d),
        None => q,
    })
}

pub(crate) fn understand(view: &View<'_>, toks: &[Tok], question_mark: bool) -> Option<Understanding> {
    let q = parse(toks, question_mark)?;
    let expect = q.expect;
    let domain = q.domain;
    let allow = |e: &Entity| {
        expect.is_none_or(|x| x.applies(e)) && domain.is_none_or(|d| e.domain == d) && e.domain != "automation"
    };
    let everything: &[&str] = match expect {
        Some(StateWord::On | StateWord::Off) => EVERYTHING,
        _ => &[],
    };
    let ask =
        Ask { allow: &allow, bare_place: BarePlace::Vague, house_by_default: true, implied: q.implied, everything };
    let found = match view.index.resolve(&q.phrase, &ask) {
        Some(found) => found,
        None => now_playing(view, &q)?,
    };
    let mut kind = q.kind;
    let mut attribute = q.attribute;
    let targets: Vec<&Entity> = found.ids.iter().map(|&i| view.entity(i)).collect();
    // A temperature read from a thermostat: its current temperature.
    let about_temperature = q.implied.is_some_and(|k| k.one == "temperature")
        || q.phrase.iter().any(|t| matches!(t.word(), Some("temperature" | "temp")));
    if kind == QueryKind::State && about_temperature && targets.iter().all(|e| e.domain == "climate") {
        kind = QueryKind::Attribute;
        attribute = Some("current_temperature");
    }
    if matches!(kind, QueryKind::List | QueryKind::Every) && expect.is_none() {
        return None;
    }
    Some(Understanding {
        intent: Intent::Query { kind, attribute: attribute.map(String::from), expect },
        targets: targets.iter().map(|e| e.entity_id.clone()).collect(),
        confidence: (found.quality * q.certainty).clamp(0.0, 1.0),
        subject: Subject { noun: found.noun, place: found.place, set: found.set },
    })
}

/// "what's playing?": the one player that is playing.
fn now_playing(view: &View<'_>, q: &Question) -> Option<Found> {
    if q.attribute != Some("media_title") || q.phrase.iter().any(|t| t.word().is_none_or(|w| !lexicon::is_filler(w))) {
        return None;
    }
    let players: Vec<usize> = (0..view.len())
        .filter(|&i| view.entity(i).domain == "media_player" && view.entity(i).state == "playing")
        .collect();
    (players.len() == 1).then_some(Found {
        ids: players,
        quality: 0.85,
        set: false,
        exact: false,
        noun: None,
        place: None,
    })
}
