//! Commands: a verb ("turn off", "dim", "open", "set … to"), a target
//! phrase, and maybe a value ("to 40%", "blue", "halfway", "20 degrees").
//!
//! The verb and value are taken out of the utterance; what is left is the
//! target phrase, which the matcher must explain word by word. The verb
//! says which domains may be targets; the value and the targets' own
//! capabilities (colour modes, cover features, thermostat range) decide
//! the service and its data. When they do not fit, nothing is produced.

use serde_json::Value;

use super::lexicon::EVERYTHING;
use super::matcher::{Ask, BarePlace, Found, View};
use super::numbers::{Num, Tok, Unit};
use super::service::plan;
use super::words::Words;
use super::{Action, Intent, Subject, Understanding};
use crate::home::{Entity, UNAVAILABLE};

/// A brightness step when none is said ("dim the kitchen"), in percent.
const STEP: f64 = 20.0;
const SMALL_STEP: f64 = 10.0;
const BIG_STEP: f64 = 40.0;

/// Domains that turn on and off.
const ON_OFF: &[&str] = &["light", "switch", "fan", "input_boolean", "media_player", "climate", "humidifier", "siren"];
const TOGGLE: &[&str] = &["light", "switch", "fan", "input_boolean", "media_player", "cover", "humidifier", "siren"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val {
    Num(Num),
    Colour(&'static str),
    Kelvin(u32),
}

/// What a value is said to set ("brightness", "volume" …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aspect {
    Any,
    Brightness,
    Volume,
    Position,
    Temperature,
    Speed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Want {
    On(Option<Val>),
    Off,
    Toggle,
    Set(Val),
    /// A relative brightness change, in percent.
    Step(f64),
    /// "raise" / "lower": a cover opens or closes, a light brightens or dims.
    Shift {
        up: bool,
        step: f64,
        to: Option<Val>,
    },
    Open(Option<f64>),
    Close(Option<f64>),
    Stop,
    Lock,
    Unlock,
    Pause,
    Play,
    Next,
    Previous,
    Mute(bool),
}

impl Want {
    fn is_media(self) -> bool {
        matches!(self, Want::Pause | Want::Play | Want::Next | Want::Previous | Want::Mute(_) | Want::Stop)
    }
}

struct Frame {
    want: Want,
    aspect: Aspect,
    phrase: Vec<Tok>,
    /// How sure the reading of the sentence is (a verbless "kitchen light
    /// on" a little less than "turn on the kitchen light").
    certainty: f32,
}

impl Words {
    /// A colour or shade of white at the end or after "to"/"in"; taken.
    fn take_colour(&mut self) -> Option<Val> {
        for i in 0..self.toks.len() {
            if self.word(i).is_none() {
                continue;
            }
            let mut run = vec![i];
            if let Some(j) = self.next(i) {
                run.push(j);
            }
            let words: Vec<&str> = run.iter().filter_map(|&j| self.word(j)).collect();
            let (val, len) = match (super::lexicon::colour(&words), super::lexicon::white(&words)) {
                (_, Some((k, len))) => (Val::Kelvin(k), len),
                (Some((name, len)), None) => (Val::Colour(name), len),
                (None, None) => continue,
            };
            let end = run[len - 1];
            let at_end = self.next(end).is_none();
            let marker = self.prev(i).filter(|&p| matches!(self.word(p), Some("to" | "in")));
            if !at_end && marker.is_none() {
                continue;
            }
            for &j in &run[..len] {
                self.take(j);
            }
            if let Some(p) = marker {
                self.take(p);
            }
            return Some(val);
        }
        None
    }

    /// A number said as the value: after "to" or "at", or at the end (then
    /// `loose` says whether a bare number there counts). Taken with its
    /// marker. The bool says whether it was marked by a preposition or a unit.
    fn take_number(&mut self, loose: bool) -> Option<(Num, bool)> {
        for i in 0..self.toks.len() {
            if self.taken[i] {
                continue;
            }
            let Some(n) = self.toks[i].num() else { continue };
            let before = self.prev(i).and_then(|p| self.word(p));
            if before == Some("by") {
                continue;
            }
            let marker = self.prev(i).filter(|&p| matches!(self.word(p), Some("to" | "at")));
            let last = self.next(i).is_none();
            let unit = n.unit != Unit::None || n.fraction;
            if !unit && marker.is_some_and(|p| self.word(p) == Some("at")) {
                // "turn on the kitchen light at 7" is a time more likely than 7%.
                continue;
            }
            if marker.is_some() || (last && (unit || loose)) {
                self.take(i);
                if let Some(p) = marker {
                    self.take(p);
                }
                return Some((n, marker.is_some() || unit));
            }
        }
        None
    }

    /// "by 10%": a step size.
    fn take_by(&mut self) -> Option<f64> {
        let i = self.find(|w| w == "by")?;
        let j = self.next(i)?;
        let n = self.toks[j].num()?.percent()?;
        self.take(i);
        self.take(j);
        Some(n)
    }

    /// "a bit", "a lot": a step size.
    fn take_step(&mut self) -> f64 {
        if let Some(by) = self.take_by() {
            return by;
        }
        for seq in [&["a", "little", "bit"][..], &["a", "little"], &["a", "bit"], &["a", "touch"], &["slightly"]] {
            if self.take_seq(seq) {
                return SMALL_STEP;
            }
        }
        for seq in [&["a", "lot"][..], &["much"], &["way"]] {
            if self.take_seq(seq) {
                return BIG_STEP;
            }
        }
        STEP
    }

    fn take_aspect(&mut self) -> Aspect {
        let aspect = match self.take_any(&["brightness", "volume", "position", "speed", "temperature", "temp"]) {
            Some("brightness") => Aspect::Brightness,
            Some("volume") => Aspect::Volume,
            Some("position") => Aspect::Position,
            Some("speed") => Aspect::Speed,
            Some(_) => Aspect::Temperature,
            None => return Aspect::Any,
        };
        self.take_any(&["level"]);
        aspect
    }

    /// "turn on/off/up/down": the particle, taken.
    fn take_particle(&mut self) -> Option<&'static str> {
        self.take_any(&["on", "off", "up", "down"])
    }

    /// "fully", "completely", "all the way".
    fn take_fully(&mut self) {
        self.take_any(&["fully", "completely"]);
        self.take_seq(&["all", "the", "way"]);
    }

    /// Words that only say which track ("the next song", "this one").
    fn take_track_words(&mut self) {
        while self.take_any(&["track", "tracks", "song", "songs", "tune", "this", "forward", "a"]).is_some() {}
        if let Some(i) =
            (0..self.toks.len()).find(|&i| !self.taken[i] && self.toks[i].num().is_some_and(|n| n.value == 1.0))
        {
            self.take(i);
        }
    }
}

/// Words a command starts with.
pub(crate) fn is_verb(word: &str) -> bool {
    matches!(
        word,
        "turn"
            | "switch"
            | "power"
            | "put"
            | "set"
            | "change"
            | "adjust"
            | "make"
            | "bring"
            | "dim"
            | "darken"
            | "brighten"
            | "lighten"
            | "raise"
            | "lower"
            | "open"
            | "close"
            | "shut"
            | "stop"
            | "lock"
            | "unlock"
            | "pause"
            | "resume"
            | "unpause"
            | "continue"
            | "play"
            | "next"
            | "skip"
            | "previous"
            | "prev"
            | "go"
            | "mute"
            | "silence"
            | "unmute"
            | "toggle"
            | "volume"
            | "heat"
    )
}

fn brighter(word: &str) -> Option<bool> {
    match word {
        "brighter" | "lighter" => Some(true),
        "dimmer" | "darker" => Some(false),
        _ => None,
    }
}

fn parse(toks: &[Tok]) -> Option<Frame> {
    let mut w = Words::new(toks);
    let verb = w.word(0)?.to_string();
    let mut certainty = 1.0;
    let mut aspect = Aspect::Any;
    let want = match verb.as_str() {
        "turn" | "switch" | "power" | "put" => {
            w.take(0);
            match w.take_particle() {
                Some("on") => Want::On(value(&mut w, false)),
                Some("off") => Want::Off,
                Some("up") => Want::Step(w.take_step()),
                Some(_) => Want::Step(-w.take_step()),
                None => {
                    aspect = w.take_aspect();
                    Want::Set(value(&mut w, true)?)
                }
            }
        }
        "set" | "change" | "adjust" | "make" | "bring" => {
            w.take(0);
            aspect = w.take_aspect();
            if let Some(v) = value(&mut w, true) {
                Want::Set(v)
            } else if let Some(i) = w.find(|x| brighter(x).is_some()) {
                let up = w.word(i).and_then(brighter)?;
                w.take(i);
                let step = w.take_step();
                Want::Step(if up { step } else { -step })
            } else {
                match w.take_particle() {
                    Some("on") if aspect == Aspect::Any => Want::On(None),
                    Some("off") if aspect == Aspect::Any => Want::Off,
                    _ => return None,
                }
            }
        }
        "dim" | "darken" | "brighten" | "lighten" => {
            w.take(0);
            aspect = Aspect::Brightness;
            w.take_any(&["down", "up"]);
            let up = matches!(verb.as_str(), "brighten" | "lighten");
            if let Some(by) = w.take_by() {
                Want::Step(if up { by } else { -by })
            } else if let Some((n, _)) = w.take_number(false).filter(|(_, marked)| *marked) {
                Want::Set(Val::Num(n))
            } else {
                let step = w.take_step();
                Want::Step(if up { step } else { -step })
            }
        }
        "raise" | "lower" => {
            w.take(0);
            let step = w.take_step();
            let to = w.take_number(false).filter(|(_, marked)| *marked).map(|(n, _)| Val::Num(n));
            Want::Shift { up: verb == "raise", step, to }
        }
        "open" | "close" | "shut" => {
            w.take(0);
            if verb == "shut" && w.take_any(&["off", "down"]).is_some() {
                Want::Off
            } else {
                w.take_fully();
                let to_marker = w.find(|x| x == "to" || x == "at").is_some();
                let position = w.take_number(false).map(|(n, _)| n);
                let position = match position {
                    None => None,
                    Some(n) if n.unit == Unit::Degrees || n.unit == Unit::Fahrenheit => return None,
                    // "close the blinds 30%": 30% closed, or closed to 30%? Ask.
                    Some(n) if verb != "open" && !n.fraction && !to_marker => return None,
                    Some(n) => Some(n.value),
                };
                if verb == "open" {
                    Want::Open(position)
                } else {
                    Want::Close(position)
                }
            }
        }
        "stop" => {
            w.take(0);
            Want::Stop
        }
        "lock" => {
            w.take(0);
            Want::Lock
        }
        "unlock" => {
            w.take(0);
            Want::Unlock
        }
        "pause" => {
            w.take(0);
            Want::Pause
        }
        "resume" | "unpause" | "continue" | "play" => {
            w.take(0);
            if w.take_any(&["next"]).is_some() {
                w.take_track_words();
                Want::Next
            } else if w.take_any(&["previous"]).is_some() {
                w.take_track_words();
                Want::Previous
            } else {
                Want::Play
            }
        }
        "next" | "skip" => {
            w.take(0);
            w.take_seq(&["to", "the", "next"]);
            w.take_any(&["next"]);
            w.take_track_words();
            Want::Next
        }
        "previous" | "prev" => {
            w.take(0);
            w.take_track_words();
            Want::Previous
        }
        "go" => {
            w.take(0);
            if w.take_any(&["back"]).is_some() {
                w.take_track_words();
                Want::Previous
            } else if w.take_seq(&["to", "the", "next"]) || w.take_any(&["next"]).is_some() {
                w.take_track_words();
                Want::Next
            } else {
                return None;
            }
        }
        "mute" | "silence" => {
            w.take(0);
            Want::Mute(true)
        }
        "unmute" => {
            w.take(0);
            Want::Mute(false)
        }
        "toggle" => {
            w.take(0);
            Want::Toggle
        }
        "volume" => {
            w.take(0);
            aspect = Aspect::Volume;
            let (n, _) = w.take_number(true)?;
            Want::Set(Val::Num(n))
        }
        "heat" => {
            w.take(0);
            aspect = Aspect::Temperature;
            let (n, marked) = w.take_number(true)?;
            if !marked {
                return None;
            }
            Want::Set(Val::Num(n))
        }
        _ => {
            // No verb: "kitchen lights off", "garage door to 30%", "tv volume 20", "bedroom lamp brighter".
            certainty = 0.9;
            aspect = w.take_aspect();
            let v = value(&mut w, aspect != Aspect::Any);
            let particle = w.rfind(|x| x == "on" || x == "off");
            match (v, particle) {
                (v, Some(i)) => {
                    let on = w.word(i) == Some("on");
                    w.take(i);
                    match (on, v) {
                        (true, v) => Want::On(v),
                        (false, None) => Want::Off,
                        (false, Some(_)) => return None,
                    }
                }
                (Some(v), None) => Want::Set(v),
                (None, None) => {
                    let i = w.find(|x| brighter(x).is_some())?;
                    let up = w.word(i).and_then(brighter)?;
                    w.take(i);
                    let step = w.take_step();
                    Want::Step(if up { step } else { -step })
                }
            }
        }
    };
    if matches!(want, Want::On(Some(_))) && aspect == Aspect::Any {
        aspect = w.take_aspect();
    }
    Some(Frame { want, aspect, phrase: w.rest(), certainty })
}

/// A value: a colour, or a number after "to"/"at" or at the end (a bare
/// number at the end only when `loose`, so "turn on bedroom 2" keeps its 2).
fn value(w: &mut Words, loose: bool) -> Option<Val> {
    if let Some(c) = w.take_colour() {
        return Some(c);
    }
    if let Some(i) = w.find(|x| matches!(x, "full" | "max" | "maximum")) {
        w.take(i);
        if let Some(j) = w.next(i).filter(|&j| w.word(j) == Some("brightness")) {
            w.take(j);
        }
        if let Some(p) = w.prev(i).filter(|&p| matches!(w.word(p), Some("to" | "at"))) {
            w.take(p);
        }
        return Some(Val::Num(Num { value: 100.0, unit: Unit::Percent, fraction: false }));
    }
    w.take_number(loose).filter(|(_, marked)| loose || *marked).map(|(n, _)| Val::Num(n))
}

/// The domains a command may target.
fn domains(frame: &Frame) -> &'static [&'static str] {
    match (frame.want, frame.aspect) {
        (Want::On(None) | Want::Off, _) => ON_OFF,
        (Want::On(Some(Val::Num(_))), Aspect::Speed) => &["fan"],
        (Want::On(Some(Val::Num(_))), _) => &["light", "fan"],
        (Want::On(Some(_)), _) => &["light"],
        (Want::Toggle, _) => TOGGLE,
        (Want::Set(Val::Colour(_) | Val::Kelvin(_)), _) => &["light"],
        (Want::Set(Val::Num(_)), Aspect::Brightness) => &["light"],
        (Want::Set(Val::Num(_)), Aspect::Volume) => &["media_player"],
        (Want::Set(Val::Num(_)), Aspect::Position) => &["cover"],
        (Want::Set(Val::Num(_)), Aspect::Speed) => &["fan"],
        (Want::Set(Val::Num(_)), Aspect::Temperature) => &["climate"],
        (Want::Set(Val::Num(n)), Aspect::Any) => match n.unit {
            Unit::Degrees | Unit::Fahrenheit => &["climate"],
            Unit::Percent => &["light", "cover", "fan"],
            Unit::None => &["light", "cover", "fan", "climate"],
        },
        (Want::Step(_), _) => &["light"],
        (Want::Shift { .. }, _) => &["light", "cover"],
        (Want::Open(_) | Want::Close(_), _) => &["cover"],
        (Want::Stop, _) => &["cover", "media_player"],
        (Want::Lock | Want::Unlock, _) => &["lock"],
        (Want::Pause | Want::Play | Want::Next | Want::Previous | Want::Mute(_), _) => &["media_player"],
    }
}

fn bare_place(want: Want) -> BarePlace {
    match want {
        Want::On(_) | Want::Off | Want::Toggle => BarePlace::Vague,
        Want::Step(_) | Want::Shift { .. } | Want::Lock => BarePlace::All,
        Want::Set(_)
        | Want::Open(_)
        | Want::Close(_)
        | Want::Stop
        | Want::Unlock
        | Want::Pause
        | Want::Play
        | Want::Next
        | Want::Previous
        | Want::Mute(_) => BarePlace::One,
    }
}

pub(crate) fn understand(view: &View<'_>, toks: &[Tok]) -> Option<Understanding> {
    let frame = parse(toks)?;
    let domains = domains(&frame);
    let allow = |e: &Entity| domains.contains(&e.domain.as_str());
    let ask = Ask {
        allow: &allow,
        bare_place: bare_place(frame.want),
        // Locking every door is the safe direction: "lock the doors" may mean all.
        house_by_default: frame.want == Want::Lock,
        implied: None,
        everything: EVERYTHING,
    };
    let found = match view.index.resolve(&frame.phrase, &ask) {
        Some(found) => found,
        None => implicit_player(view, &frame)?,
    };
    build(view, &frame, found)
}

/// "pause", "pause the music", "next song", "volume to 30": the one media
/// player that is playing (or, to resume, paused).
fn implicit_player(view: &View<'_>, frame: &Frame) -> Option<Found> {
    let media = frame.want.is_media() || frame.aspect == Aspect::Volume;
    let only_media_words = frame.phrase.iter().all(|t| {
        t.word().is_some_and(|w| {
            super::lexicon::is_filler(w) || matches!(w, "music" | "media" | "playback" | "audio" | "sound" | "song")
        })
    });
    // "stop" alone is as likely to be meant for the conversation.
    let said_something = frame.phrase.iter().any(|t| t.word().is_some_and(|w| !super::lexicon::is_filler(w)));
    if !media || !only_media_words || (frame.want == Want::Stop && !said_something) {
        return None;
    }
    let wanted = if frame.want == Want::Play { "paused" } else { "playing" };
    let players: Vec<usize> = (0..view.len())
        .filter(|&i| view.entity(i).domain == "media_player" && view.entity(i).state == wanted)
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

fn build(view: &View<'_>, frame: &Frame, found: Found) -> Option<Understanding> {
    let mut targets: Vec<&Entity> = found.ids.iter().map(|&i| view.entity(i)).collect();
    let mut confidence = found.quality * frame.certainty;
    let unavailable = |e: &Entity| !e.available || e.state == UNAVAILABLE;
    if found.set {
        targets.retain(|e| !unavailable(e));
    } else if targets.iter().any(|e| unavailable(e)) {
        // It cannot be controlled now; the model can say why.
        confidence = confidence.min(0.5);
    }
    let mut domains: Vec<&str> = Vec::new();
    for e in &targets {
        if !domains.contains(&e.domain.as_str()) {
            domains.push(e.domain.as_str());
        }
    }
    let set = found.set;
    let (action, data) = match frame.want {
        Want::On(None) => (Action::TurnOn, Value::Null),
        Want::Off => (Action::TurnOff, Value::Null),
        Want::Toggle => (Action::Toggle, Value::Null),
        want => {
            let [domain] = domains.as_slice() else { return None };
            let domain = domain.to_string();
            plan(want, frame.aspect, &domain, &mut targets, set)?
        }
    };
    match action {
        Action::Unlock if !(found.exact && targets.len() == 1) => {
            // Never guess an unlock: it must name one lock by its own name.
            confidence = confidence.min(0.6);
        }
        Action::MediaPause
        | Action::MediaPlay
        | Action::MediaStop
        | Action::MediaNextTrack
        | Action::MediaPreviousTrack
        | Action::VolumeSet
        | Action::VolumeMute
            if targets.iter().any(|e| e.state == "off") =>
        {
            // A player that is off does none of these; the model can explain.
            confidence = confidence.min(0.6);
        }
        _ => {}
    }
    if targets.is_empty() {
        return None;
    }
    let mut domains: Vec<String> = Vec::new();
    for e in &targets {
        if !domains.contains(&e.domain) {
            domains.push(e.domain.clone());
        }
    }
    let domain = if domains.len() == 1 { domains.pop() } else { None };
    Some(Understanding {
        intent: Intent::Control { domain, action, data },
        targets: targets.iter().map(|e| e.entity_id.clone()).collect(),
        confidence: confidence.clamp(0.0, 1.0),
        subject: Subject { noun: found.noun, place: found.place, set },
    })
}
