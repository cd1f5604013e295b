//! The local intent engine: the first stage of routing.
//!
//! It understands everyday home commands and questions — "turn off the
//! kitchen lights", "set the bedroom to 20 degrees", "open the blinds
//! halfway", "is the garage door open?", "which lights are on?" — against
//! a snapshot of the entity catalog, with no model, in microseconds. What
//! it is not sure of it leaves to the model: an utterance with a word it
//! cannot place, a target it cannot tell from another, a vague request
//! ("turn it up"), anything about time, history, reasons or conditions, or
//! anything conversational.
//!
//! Mutations are held to a higher bar than questions: a wrong "unlock" is
//! worse than asking the model, so an unlock must name one lock by one of
//! its own names, exactly. A colour, a brightness or a position is only
//! produced for targets that support it, and a temperature only within the
//! thermostat's range.
//!
//! ```text
//! let engine = IntentEngine::new(home.entities().await?, home.areas().await?);
//! match engine.understand("turn off the kitchen lights") {
//!     Some(u) if u.is_confident() => { /* u.control_calls() → control_entity */ }
//!     _ => { /* hand over to the model */ }
//! }
//! ```
//!
//! The index is built once per catalog ([`IntentEngine::new`]); states can
//! be kept current without rebuilding it ([`IntentEngine::update_state`]),
//! or given with each utterance ([`IntentEngine::understand_with`]).
//!
//! How it reads an utterance: `tokens` cuts it into words and numbers
//! (`numbers` folds "twenty one", "half", "40%"); polite words are dropped
//! and words about time, history or reasons (`lexicon`) send it to the
//! model at once; `command` or `query` takes out the verb, the value and
//! what is asked, and the rest is the target phrase, which `matcher` (with
//! `place` and `fuzzy`) must explain word by word; `service` checks the
//! targets can do what is asked; `reply` words answers and confirmations.

mod command;
mod fuzzy;
mod lexicon;
mod matcher;
mod numbers;
mod place;
mod query;
mod reply;
mod service;
mod tokens;
mod words;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{json, Value};

use crate::home::{Area, Entity, ServiceCall};
use matcher::{Index, View};
use numbers::Tok;

pub use lexicon::{Noun, StateWord};

/// Below this confidence an understanding must not be acted on: hand the
/// utterance to the model instead. At or above it, the engine found one
/// reading, its targets by name or by an unambiguous scope, and every word
/// of the utterance accounted for.
///
/// The scale, roughly: 0.97 a target named by one of its names exactly;
/// 0.95 by its name words in another order or with its area; 0.92 a set
/// ("the kitchen lights", "all the lights upstairs"); 0.9 a room for the
/// one thing the verb fits ("set the bedroom to 20 degrees"); 0.85 the
/// one player playing ("pause"); about 0.8 a name with a typo or a
/// close call between two candidates. A sentence without a verb ("kitchen
/// lights off") costs a tenth. Held below the threshold whatever the
/// match: an unlock not naming one lock exactly (0.6), a media command for
/// a player that is off (0.6), a command for an unavailable thing (0.5).
pub const CONFIDENCE_THRESHOLD: f32 = 0.75;

/// Targets per `control_entity` call at most (the tool refuses more).
const MAX_TARGETS_PER_CALL: usize = 50;

/// Utterances longer than this are conversations, not commands.
const MAX_WORDS: usize = 30;

/// What an utterance asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Understanding {
    pub intent: Intent,
    /// The entity ids acted on or asked about. For a list question ("which
    /// lights are on?") these are the candidates; the answer filters them
    /// by their states at the time it is given.
    pub targets: Vec<String>,
    /// 0 to 1; act only at or above [`CONFIDENCE_THRESHOLD`].
    pub confidence: f32,
    /// How the targets were named, for replies.
    pub subject: Subject,
}

/// How the targets were named, for replies: "3 lights are on in the kitchen".
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Subject {
    /// What they are, when said or implied by a scope ("lights").
    pub noun: Option<Noun>,
    /// Where, as a phrase ("in the kitchen", "upstairs").
    pub place: Option<String>,
    /// A set was named ("all the lights", "the kitchen lights"), not one thing.
    pub set: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Intent {
    /// A service call. `domain` is `None` when the targets span several
    /// domains ("turn off everything in the kitchen"); the calls are then
    /// one per domain, all with the same action and no data.
    Control { domain: Option<String>, action: Action, data: Value },
    /// A question about the targets' states.
    Query {
        kind: QueryKind,
        /// For [`QueryKind::Attribute`]: the attribute read (`brightness`,
        /// `current_temperature`, `volume_level` …).
        attribute: Option<String>,
        /// The state asked about, for yes/no and list questions.
        expect: Option<StateWord>,
    },
}

/// The Home Assistant service an understood command calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    TurnOn,
    TurnOff,
    Toggle,
    SetTemperature,
    OpenCover,
    CloseCover,
    StopCover,
    SetCoverPosition,
    Lock,
    Unlock,
    MediaPause,
    MediaPlay,
    MediaStop,
    MediaNextTrack,
    MediaPreviousTrack,
    VolumeSet,
    VolumeMute,
    SetPercentage,
}

impl Action {
    /// The service name, as `control_entity` takes it in `action`.
    pub fn service(self) -> &'static str {
        match self {
            Action::TurnOn => "turn_on",
            Action::TurnOff => "turn_off",
            Action::Toggle => "toggle",
            Action::SetTemperature => "set_temperature",
            Action::OpenCover => "open_cover",
            Action::CloseCover => "close_cover",
            Action::StopCover => "stop_cover",
            Action::SetCoverPosition => "set_cover_position",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::MediaPause => "media_pause",
            Action::MediaPlay => "media_play",
            Action::MediaStop => "media_stop",
            Action::MediaNextTrack => "media_next_track",
            Action::MediaPreviousTrack => "media_previous_track",
            Action::VolumeSet => "volume_set",
            Action::VolumeMute => "volume_mute",
            Action::SetPercentage => "set_percentage",
        }
    }
}

/// What a question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// The state of each target ("is the garage door open?", "what's the
    /// temperature in the bedroom?").
    State,
    /// One attribute of each target ("what is the thermostat set to?").
    Attribute,
    /// Which targets are in the expected state ("which lights are on?",
    /// "are any doors unlocked?").
    List,
    /// Whether every target is in the expected state ("are all the doors locked?").
    Every,
}

impl Understanding {
    /// Whether it may be acted on without the model.
    pub fn is_confident(&self) -> bool {
        self.confidence >= CONFIDENCE_THRESHOLD
    }

    /// Whether acting on it changes something.
    pub fn is_mutation(&self) -> bool {
        matches!(self.intent, Intent::Control { .. })
    }

    /// The service calls a command makes: one per domain (and per
    /// [`MAX_TARGETS_PER_CALL`] targets); none for a question.
    pub fn service_calls(&self) -> Vec<ServiceCall> {
        let Intent::Control { action, data, .. } = &self.intent else {
            return Vec::new();
        };
        let mut domains: Vec<&str> = Vec::new();
        for id in &self.targets {
            let domain = id.split_once('.').map(|(d, _)| d).unwrap_or(id);
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        let mut calls = Vec::new();
        for domain in domains {
            let ids: Vec<String> =
                self.targets.iter().filter(|id| id.split_once('.').map(|(d, _)| d) == Some(domain)).cloned().collect();
            for chunk in ids.chunks(MAX_TARGETS_PER_CALL) {
                calls.push(ServiceCall::new(domain, action.service(), chunk.to_vec()).with_data(data.clone()));
            }
        }
        calls
    }

    /// The arguments of the `control_entity` calls that carry out a
    /// command, one per domain: `{"entity_id": "light.x" | [...], "action":
    /// "turn_on", "data": {...}}` (`data` left out when there is none).
    pub fn control_calls(&self) -> Vec<Value> {
        self.service_calls()
            .into_iter()
            .map(|call| {
                let entity_id = match call.entity_ids.as_slice() {
                    [one] => json!(one),
                    many => json!(many),
                };
                let mut args = json!({"entity_id": entity_id, "action": call.service});
                if call.data.as_object().is_some_and(|d| !d.is_empty()) {
                    args["data"] = call.data;
                }
                args
            })
            .collect()
    }

    /// The answer to a question from the entities' current states
    /// ("The garage door is closed."); `None` for a command, or when none
    /// of the targets is among `states`.
    pub fn answer(&self, states: &[Entity]) -> Option<String> {
        reply::answer(self, states)
    }

    /// A short confirmation of a finished command from the targets' states
    /// after it ("Kitchen Ceiling is on at 40%."); `None` for a question,
    /// or when none of the targets is among `states`.
    pub fn confirmation(&self, states: &[Entity]) -> Option<String> {
        reply::confirmation(self, states)
    }
}

/// Understands home commands and questions against an entity catalog.
pub struct IntentEngine {
    index: Index,
}

impl std::fmt::Debug for IntentEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentEngine").field("entities", &self.index.entities.len()).finish_non_exhaustive()
    }
}

impl IntentEngine {
    /// Indexes the catalog. Build a new engine when entities are added,
    /// removed, renamed or moved; states alone go through
    /// [`IntentEngine::update_state`].
    pub fn new(entities: Vec<Entity>, areas: Vec<Area>) -> Self {
        IntentEngine { index: Index::new(entities, &areas) }
    }

    pub fn entity_count(&self) -> usize {
        self.index.entities.len()
    }

    /// Takes an entity's new state and attributes. Returns false — and
    /// changes nothing — when the entity is unknown or its name, aliases or
    /// area changed: the engine must then be rebuilt.
    pub fn update_state(&mut self, entity: &Entity) -> bool {
        let Some(i) = self.index.position(&entity.entity_id) else {
            return false;
        };
        let known = &mut self.index.entities[i];
        if known.name != entity.name || known.aliases != entity.aliases || known.area_id != entity.area_id {
            return false;
        }
        known.state.clone_from(&entity.state);
        known.attributes.clone_from(&entity.attributes);
        known.available = entity.available;
        known.last_changed = entity.last_changed;
        known.last_updated = entity.last_updated;
        true
    }

    /// What `text` asks for, or `None` when it is not a home command or
    /// question the engine can read. Check [`Understanding::is_confident`]
    /// before acting on the result.
    ///
    /// Some readings depend on states — "pause" means the player that is
    /// playing, "dim the living room" the lights there that are on, and a
    /// thing that is unavailable is not controlled. This reads them from the
    /// engine's own snapshot; see [`IntentEngine::understand_with`].
    pub fn understand(&self, text: &str) -> Option<Understanding> {
        self.read(text, &View::new(&self.index, None))
    }

    /// As [`IntentEngine::understand`], reading states from `states` (the
    /// house as it is now, e.g. `Home::entities`) rather than from the
    /// snapshot the engine was built with. Entities missing from `states`
    /// keep their snapshot state. Cheapest when `states` lists the entities
    /// in the order the engine was built from.
    pub fn understand_with(&self, text: &str, states: &[Entity]) -> Option<Understanding> {
        self.read(text, &View::new(&self.index, Some(states)))
    }

    fn read(&self, text: &str, view: &View<'_>) -> Option<Understanding> {
        let utterance = tokens::utterance(text);
        let toks = strip_politeness(utterance.toks);
        if toks.is_empty() || toks.len() > MAX_WORDS {
            return None;
        }
        let words: Vec<&str> = toks.iter().filter_map(Tok::word).collect();
        if lexicon::hands_over(&words) {
            return None;
        }
        let understanding = if query::is_question(&toks, utterance.question) {
            query::understand(view, &toks, utterance.question)
        } else {
            command::understand(view, &toks)
        }?;
        (!understanding.targets.is_empty()).then_some(understanding)
    }
}

/// Drops what people put around a request: "hey", "please", "could you",
/// "steward,", "thanks".
fn strip_politeness(mut toks: Vec<Tok>) -> Vec<Tok> {
    const PREFIXES: &[&[&str]] = &[
        &["please"],
        &["hey"],
        &["hi"],
        &["ok"],
        &["okay"],
        &["steward"],
        &[","],
        &["can", "you"],
        &["could", "you"],
        &["would", "you"],
        &["will", "you"],
        &["i", "want", "you", "to"],
        &["i", "would", "like", "you", "to"],
        &["go", "ahead", "and"],
        &["just"],
        &["kindly"],
        &["quickly"],
        &["do", "you", "know"],
    ];
    const SUFFIXES: &[&[&str]] = &[
        &["please"],
        &["thanks"],
        &["thank", "you"],
        &["now"],
        &["right", "now"],
        &["for", "me"],
        &[","],
        &["steward"],
    ];
    let starts = |toks: &[Tok], p: &[&str]| toks.len() >= p.len() && toks.iter().zip(p).all(|(t, w)| t.is(w));
    let ends = |toks: &[Tok], p: &[&str]| {
        toks.len() >= p.len() && toks[toks.len() - p.len()..].iter().zip(p).all(|(t, w)| t.is(w))
    };
    while let Some(p) = PREFIXES.iter().filter(|p| starts(&toks, p)).max_by_key(|p| p.len()) {
        toks.drain(..p.len());
    }
    while let Some(p) = SUFFIXES.iter().find(|p| ends(&toks, p)) {
        toks.truncate(toks.len() - p.len());
    }
    toks
}
