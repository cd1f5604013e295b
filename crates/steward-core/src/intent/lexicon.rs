//! The words the intent engine knows: fillers, words that send an
//! utterance to the model, kinds of things ("lights", "doors",
//! "temperature"), states ("on", "open", "locked") and colours.

use serde::{Deserialize, Serialize};

use crate::home::Entity;

/// Words that carry nothing in a target phrase ("the lights in my kitchen").
const FILLERS: &[&str] = &[
    "the",
    "a",
    "an",
    "my",
    "our",
    "your",
    "in",
    "inside",
    "on",
    "of",
    "at",
    "for",
    "from",
    "please",
    "now",
    "right",
    "just",
    "kindly",
    "me",
    "us",
    "thanks",
    "thank",
    "you",
    "currently",
    "still",
    "again",
    "there",
    "here",
    "around",
    "throughout",
    "whole",
    "entire",
    "state",
    "status",
];

pub(crate) fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// Words that make a phrase name a set ("all the lights", "every door").
pub(crate) fn is_quantifier(word: &str) -> bool {
    matches!(word, "all" | "every" | "each" | "both" | "any")
}

/// Words that name every controllable thing ("turn off everything").
pub(crate) fn is_everything(word: &str) -> bool {
    matches!(word, "everything" | "anything" | "something" | "things" | "devices")
}

/// Words that name the whole house as the place.
pub(crate) fn is_house(word: &str) -> bool {
    matches!(word, "house" | "home" | "flat" | "apartment")
}

/// Words that mean the utterance is more than a plain command or question:
/// time, conditions, history, reasons, negation, or writing something.
/// Such an utterance always goes to the model.
const HAND_OVER: &[&str] = &[
    "why",
    "when",
    "whenever",
    "while",
    "if",
    "unless",
    "until",
    "till",
    "after",
    "before",
    "tomorrow",
    "tonight",
    "today",
    "yesterday",
    "later",
    "soon",
    "minute",
    "minutes",
    "hour",
    "hours",
    "seconds",
    "schedule",
    "remind",
    "automation",
    "automations",
    "script",
    "scene",
    "not",
    "never",
    "no",
    "without",
    "except",
    "but",
    "should",
    "would",
    "could",
    "might",
    "maybe",
    "was",
    "were",
    "did",
    "been",
    "has",
    "have",
    "had",
    "ago",
    "since",
    "last",
    "average",
    "total",
    "history",
    "bill",
    "cost",
    "write",
    "create",
    "explain",
    "help",
    "else",
    "than",
    "or",
    "whether",
    "who",
    "where",
    "am",
    "pm",
    "oclock",
    "clock",
    "noon",
    "midnight",
    "sunset",
    "sunrise",
    "morning",
    "evening",
    "afternoon",
    "daily",
    "weekdays",
    "weekends",
    "timer",
];

/// Whether the utterance holds a word or pair ("how much", "how long")
/// that sends it to the model.
pub(crate) fn hands_over(words: &[&str]) -> bool {
    words.iter().any(|w| HAND_OVER.contains(w))
        || words.windows(2).any(|p| matches!(p, ["how", "much" | "long" | "often" | "come"]))
}

/// A kind of thing, with the nouns replies use for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noun {
    pub one: String,
    pub many: String,
}

impl Noun {
    pub(crate) fn new(one: &str, many: &str) -> Noun {
        Noun { one: one.into(), many: many.into() }
    }

    pub(crate) fn count(&self, n: usize) -> String {
        if n == 1 {
            format!("1 {}", self.one)
        } else {
            format!("{n} {}", self.many)
        }
    }
}

/// An entity fits a kind when its domain is one of these, and its device
/// class one of `classes` (`""` standing for none) when they are given.
#[derive(Debug)]
pub(crate) struct Fit {
    pub domain: &'static str,
    pub classes: Option<&'static [&'static str]>,
}

const fn fit(domain: &'static str) -> Fit {
    Fit { domain, classes: None }
}

const fn fit_class(domain: &'static str, classes: &'static [&'static str]) -> Fit {
    Fit { domain, classes: Some(classes) }
}

#[derive(Debug)]
pub(crate) struct Kind {
    /// The singular word(s) that name it.
    pub words: &'static [&'static str],
    pub one: &'static str,
    pub many: &'static str,
    /// Tried in order: the first tier with a match wins ("temperature" is a
    /// temperature sensor before it is a thermostat).
    pub tiers: &'static [&'static [Fit]],
}

impl Kind {
    pub(crate) fn noun(&self) -> Noun {
        Noun::new(self.one, self.many)
    }

    /// The tier this entity fits in, if any.
    pub(crate) fn tier_of(&self, entity: &Entity) -> Option<usize> {
        self.tiers.iter().position(|tier| tier.iter().any(|f| fits(f, entity)))
    }
}

fn fits(fit: &Fit, entity: &Entity) -> bool {
    if entity.domain != fit.domain {
        return false;
    }
    match fit.classes {
        None => true,
        Some(classes) => classes.contains(&entity.device_class().unwrap_or("")),
    }
}

const BLINDISH: &[&str] = &["blind", "shade", "shutter", "curtain", "awning", "window", ""];

pub(crate) const KINDS: &[Kind] = &[
    Kind { words: &["light", "lamp", "bulb", "lighting"], one: "light", many: "lights", tiers: &[&[fit("light")]] },
    Kind {
        words: &["switch", "plug", "socket", "outlet"],
        one: "switch",
        many: "switches",
        tiers: &[&[fit("switch")]],
    },
    Kind { words: &["fan"], one: "fan", many: "fans", tiers: &[&[fit("fan")]] },
    Kind {
        words: &["blind", "shutter", "curtain", "shade", "awning"],
        one: "blind",
        many: "blinds",
        tiers: &[&[fit_class("cover", BLINDISH)]],
    },
    Kind { words: &["cover"], one: "cover", many: "covers", tiers: &[&[fit("cover")]] },
    Kind {
        words: &["door"],
        one: "door",
        many: "doors",
        tiers: &[&[
            fit("lock"),
            fit_class("cover", &["door", "garage", "gate"]),
            fit_class("binary_sensor", &["door", "garage_door", "opening"]),
        ]],
    },
    Kind {
        words: &["window"],
        one: "window",
        many: "windows",
        tiers: &[&[fit_class("binary_sensor", &["window"]), fit_class("cover", &["window"])]],
    },
    Kind { words: &["lock"], one: "lock", many: "locks", tiers: &[&[fit("lock")]] },
    Kind { words: &["tv", "television"], one: "TV", many: "TVs", tiers: &[&[fit_class("media_player", &["tv", ""])]] },
    Kind {
        words: &["speaker"],
        one: "speaker",
        many: "speakers",
        tiers: &[&[fit_class("media_player", &["speaker", "receiver", ""])]],
    },
    Kind {
        words: &["music", "media", "player"],
        one: "media player",
        many: "media players",
        tiers: &[&[fit("media_player")]],
    },
    Kind {
        words: &["thermostat", "heating", "heater", "radiator", "climate", "hvac"],
        one: "thermostat",
        many: "thermostats",
        tiers: &[&[fit("climate")]],
    },
    Kind {
        words: &["temperature", "temp"],
        one: "temperature",
        many: "temperatures",
        tiers: &[&[fit_class("sensor", &["temperature"])], &[fit("climate")]],
    },
    Kind { words: &["humidity"], one: "humidity", many: "humidities", tiers: &[&[fit_class("sensor", &["humidity"])]] },
    Kind {
        words: &["motion"],
        one: "motion sensor",
        many: "motion sensors",
        tiers: &[&[fit_class("binary_sensor", &["motion", "occupancy", "presence"])]],
    },
    Kind { words: &["battery"], one: "battery", many: "batteries", tiers: &[&[fit_class("sensor", &["battery"])]] },
    Kind {
        words: &["power"],
        one: "power reading",
        many: "power readings",
        tiers: &[&[fit_class("sensor", &["power"])]],
    },
    Kind {
        words: &["energy"],
        one: "energy meter",
        many: "energy meters",
        tiers: &[&[fit_class("sensor", &["energy"])]],
    },
    Kind {
        words: &["leak"],
        one: "leak sensor",
        many: "leak sensors",
        tiers: &[&[fit_class("binary_sensor", &["moisture"])]],
    },
    Kind { words: &["sensor"], one: "sensor", many: "sensors", tiers: &[&[fit("sensor"), fit("binary_sensor")]] },
    Kind { words: &["vacuum", "hoover"], one: "vacuum", many: "vacuums", tiers: &[&[fit("vacuum")]] },
    Kind { words: &["alarm"], one: "alarm", many: "alarms", tiers: &[&[fit("alarm_control_panel")]] },
];

/// The kind a (singular) word names.
pub(crate) fn kind(word: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.words.contains(&word))
}

/// The noun for a domain, when a reply needs one and nobody said one.
pub(crate) fn domain_noun(domain: &str) -> Noun {
    match domain {
        "light" => Noun::new("light", "lights"),
        "switch" => Noun::new("switch", "switches"),
        "fan" => Noun::new("fan", "fans"),
        "cover" => Noun::new("cover", "covers"),
        "lock" => Noun::new("lock", "locks"),
        "media_player" => Noun::new("media player", "media players"),
        "climate" => Noun::new("thermostat", "thermostats"),
        "binary_sensor" | "sensor" => Noun::new("sensor", "sensors"),
        _ => Noun::new("device", "devices"),
    }
}

/// The domains "everything" covers: what people mean by switching
/// everything in a room off. Thermostats, locks and covers are left out on
/// purpose; they are named when meant.
pub(crate) const EVERYTHING: &[&str] = &["light", "switch", "fan", "media_player"];

/// A state asked about ("is the garage door open?", "which lights are on?").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateWord {
    On,
    Off,
    Open,
    Closed,
    Locked,
    Unlocked,
    Playing,
    Paused,
    Running,
}

impl StateWord {
    pub(crate) fn parse(word: &str) -> Option<StateWord> {
        Some(match word {
            "on" => StateWord::On,
            "off" => StateWord::Off,
            "open" | "opened" => StateWord::Open,
            "closed" | "shut" => StateWord::Closed,
            "locked" => StateWord::Locked,
            "unlocked" => StateWord::Unlocked,
            "playing" => StateWord::Playing,
            "paused" => StateWord::Paused,
            "running" => StateWord::Running,
            _ => return None,
        })
    }

    /// The word, as a reply says it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateWord::On => "on",
            StateWord::Off => "off",
            StateWord::Open => "open",
            StateWord::Closed => "closed",
            StateWord::Locked => "locked",
            StateWord::Unlocked => "unlocked",
            StateWord::Playing => "playing",
            StateWord::Paused => "paused",
            StateWord::Running => "running",
        }
    }

    /// Whether the question makes sense for this entity ("is the front
    /// door open" asks the door sensor, not the lock).
    pub fn applies(self, entity: &Entity) -> bool {
        let class = entity.device_class().unwrap_or("");
        match self {
            StateWord::On | StateWord::Off => matches!(
                entity.domain.as_str(),
                "light"
                    | "switch"
                    | "fan"
                    | "input_boolean"
                    | "media_player"
                    | "climate"
                    | "binary_sensor"
                    | "humidifier"
                    | "siren"
                    | "remote"
            ),
            StateWord::Open | StateWord::Closed => {
                entity.domain == "cover"
                    || entity.domain == "valve"
                    || (entity.domain == "binary_sensor"
                        && matches!(class, "door" | "window" | "garage_door" | "opening" | "gate"))
            }
            StateWord::Locked | StateWord::Unlocked => entity.domain == "lock",
            StateWord::Playing | StateWord::Paused => entity.domain == "media_player",
            StateWord::Running => (entity.domain == "binary_sensor" && class == "running") || entity.domain == "vacuum",
        }
    }

    /// Whether the entity is in this state now.
    pub fn holds(self, entity: &Entity) -> bool {
        let state = entity.state.as_str();
        let on = match entity.domain.as_str() {
            "media_player" => !matches!(state, "off" | "standby" | "unavailable" | "unknown"),
            "climate" => !matches!(state, "off" | "unavailable" | "unknown"),
            _ => state == "on",
        };
        match self {
            StateWord::On => on,
            StateWord::Off => state == "off" || (entity.domain == "media_player" && state == "standby"),
            StateWord::Open => match entity.domain.as_str() {
                "binary_sensor" => state == "on",
                _ => matches!(state, "open" | "opening"),
            },
            StateWord::Closed => match entity.domain.as_str() {
                "binary_sensor" => state == "off",
                _ => matches!(state, "closed" | "closing"),
            },
            StateWord::Locked => state == "locked",
            StateWord::Unlocked => matches!(state, "unlocked" | "open" | "opening" | "unlocking"),
            StateWord::Playing => state == "playing",
            StateWord::Paused => state == "paused",
            StateWord::Running => match entity.domain.as_str() {
                "vacuum" => state == "cleaning",
                _ => state == "on",
            },
        }
    }
}

/// Colour names Home Assistant's `color_name` takes (CSS names), with the
/// ways people say the ones of two words.
const COLOURS: &[&str] = &[
    "red",
    "green",
    "blue",
    "white",
    "yellow",
    "orange",
    "purple",
    "pink",
    "hotpink",
    "deeppink",
    "cyan",
    "aqua",
    "magenta",
    "fuchsia",
    "teal",
    "navy",
    "gold",
    "violet",
    "indigo",
    "turquoise",
    "coral",
    "salmon",
    "crimson",
    "lavender",
    "skyblue",
    "royalblue",
    "lime",
    "limegreen",
    "forestgreen",
    "seagreen",
    "olive",
    "maroon",
    "tomato",
    "orchid",
    "plum",
    "peachpuff",
    "chartreuse",
    "firebrick",
    "tan",
    "beige",
    "khaki",
];

/// The colour named by the words at the start of `words` ("sky", "blue"),
/// and how many words it took. Names that begin with "light" ("light
/// blue") are left out: "light" names the thing far more often.
pub(crate) fn colour(words: &[&str]) -> Option<(&'static str, usize)> {
    let first = *words.first()?;
    if first == "amber" {
        return Some(("orange", 1));
    }
    if let Some(second) = words.get(1) {
        let joined = format!("{first}{second}");
        if let Some(name) = COLOURS.iter().find(|c| **c == joined) {
            return Some((name, 2));
        }
    }
    COLOURS.iter().find(|c| **c == first).map(|name| (*name, 1))
}

/// Shades of white said by name, as colour temperatures in kelvin.
pub(crate) fn white(words: &[&str]) -> Option<(u32, usize)> {
    match (words.first().copied()?, words.get(1).copied()) {
        ("warm" | "soft", Some("white")) => Some((2700, 2)),
        ("neutral", Some("white")) => Some((4000, 2)),
        ("cool" | "cold", Some("white")) => Some((5000, 2)),
        ("daylight", _) => Some((6500, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_names() {
        assert_eq!(colour(&["blue"]), Some(("blue", 1)));
        assert_eq!(colour(&["sky", "blue"]), Some(("skyblue", 2)));
        assert_eq!(colour(&["hot", "pink", "please"]), Some(("hotpink", 2)));
        assert_eq!(colour(&["red", "light"]), Some(("red", 1)));
        assert_eq!(colour(&["amber"]), Some(("orange", 1)));
        assert_eq!(colour(&["light", "blue"]), None);
        assert_eq!(colour(&["bluish"]), None);
        assert_eq!(colour(&[]), None);
        assert_eq!(white(&["warm", "white"]), Some((2700, 2)));
        assert_eq!(white(&["daylight"]), Some((6500, 1)));
        assert_eq!(white(&["warm"]), None);
    }

    #[test]
    fn kinds_and_states() {
        assert_eq!(kind("lamp").map(|k| k.one), Some("light"));
        assert_eq!(kind("door").map(|k| k.many), Some("doors"));
        assert!(kind("kitchen").is_none());
        assert_eq!(StateWord::parse("shut"), Some(StateWord::Closed));
        assert_eq!(Noun::new("light", "lights").count(1), "1 light");
        assert_eq!(Noun::new("light", "lights").count(3), "3 lights");
    }
}
