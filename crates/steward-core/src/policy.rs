//! The gate every tool call passes, decided outside the model.
//!
//! A call is described by [`CallFacts`]: the tool, its effect, the Home
//! Assistant domains and entity ids it targets. The decision is `allow`,
//! `ask` (a person must approve) or `deny`, and it is made like this:
//!
//! 1. Every configured [`Rule`] whose matchers all match the call is
//!    collected. A rule matches when each matcher it sets matches: `tool`
//!    the tool's name, `domain` any of the call's domains, `entity` any of
//!    the call's entity ids (globs: `*` any run of characters, `?` one).
//! 2. If any matching rule says `deny`, the call is denied: deny always wins.
//! 3. Otherwise, if any says `ask`, the call asks; otherwise, if any says
//!    `allow`, it is allowed. Among rules, the most cautious verdict wins.
//! 4. With no matching rule, the [`Preset`] decides from the effect (and,
//!    for `balanced`, the domains).
//!
//! Until approvals can be requested and decided, a call that asks is not
//! executed and the model is told that it waits for a person, so nothing
//! changes the world unapproved.

use serde::{Deserialize, Serialize};
use steward_protocol::Effect;

use crate::tool::ToolSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// What the policy knows about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    pub tool: String,
    pub effect: Effect,
    /// Home Assistant domains (`light`, `lock`, …) or an integration's
    /// domain (`proxmox`, `ansible`, `ssh`, `mcp`).
    pub domains: Vec<String>,
    pub entities: Vec<String>,
}

impl CallFacts {
    /// The facts of a call to `spec` with `arguments`: entity ids from the
    /// `entity_id` / `entity_ids` arguments (a string or a list), domains
    /// from the entity ids and from the tool's own domain.
    pub fn of(spec: &ToolSpec, arguments: &serde_json::Value) -> Self {
        let mut entities = Vec::new();
        for key in ["entity_id", "entity_ids"] {
            match arguments.get(key) {
                Some(serde_json::Value::String(s)) => entities.push(s.clone()),
                Some(serde_json::Value::Array(items)) => {
                    entities.extend(items.iter().filter_map(|v| v.as_str().map(String::from)))
                }
                _ => {}
            }
        }
        let mut domains: Vec<String> = spec.domain.iter().cloned().collect();
        for e in &entities {
            if let Some((domain, _)) = e.split_once('.') {
                if !domains.iter().any(|d| d == domain) {
                    domains.push(domain.to_string());
                }
            }
        }
        CallFacts { tool: spec.name.clone(), effect: spec.effect, domains, entities }
    }
}

/// Decides whether a tool call may run.
pub trait Policy: Send + Sync + 'static {
    fn decide(&self, facts: &CallFacts) -> Decision;
}

/// The default behaviour when no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Every `mutate` and `destructive` call asks.
    #[default]
    Strict,
    /// Lights, media players and covers run; locks, alarms, climate, all
    /// infrastructure and anything else that changes the world asks.
    Balanced,
    /// Only `destructive` calls ask.
    Autonomous,
}

/// Domains whose `mutate` calls the `balanced` preset lets run.
const BALANCED_ALLOWED: &[&str] = &["light", "media_player", "cover"];

impl Preset {
    pub fn decide(self, facts: &CallFacts) -> Decision {
        match (self, facts.effect) {
            (_, Effect::Read) => Decision::Allow,
            (_, Effect::Destructive) => Decision::Ask,
            (Preset::Strict, Effect::Mutate) => Decision::Ask,
            (Preset::Autonomous, Effect::Mutate) => Decision::Allow,
            (Preset::Balanced, Effect::Mutate) => {
                let all_allowed =
                    !facts.domains.is_empty() && facts.domains.iter().all(|d| BALANCED_ALLOWED.contains(&d.as_str()));
                if all_allowed {
                    Decision::Allow
                } else {
                    Decision::Ask
                }
            }
        }
    }
}

/// One rule from config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub entity: Option<String>,
    pub decision: Decision,
}

impl Rule {
    /// Whether the rule names anything to match; a rule without matchers
    /// would match every call and is refused by the config check.
    pub fn has_matcher(&self) -> bool {
        self.tool.is_some() || self.domain.is_some() || self.entity.is_some()
    }

    fn matches(&self, facts: &CallFacts) -> bool {
        self.has_matcher()
            && self.tool.as_deref().map(|g| glob(g, &facts.tool)).unwrap_or(true)
            && self.domain.as_deref().map(|g| facts.domains.iter().any(|d| glob(g, d))).unwrap_or(true)
            && self.entity.as_deref().map(|g| facts.entities.iter().any(|e| glob(g, e))).unwrap_or(true)
    }
}

/// A preset plus rules, combined as the module documentation says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePolicy {
    pub preset: Preset,
    pub rules: Vec<Rule>,
}

impl Policy for RulePolicy {
    fn decide(&self, facts: &CallFacts) -> Decision {
        // Decision orders allow < ask < deny: the most cautious matching rule wins.
        self.rules
            .iter()
            .filter(|r| r.matches(facts))
            .map(|r| r.decision)
            .max()
            .unwrap_or_else(|| self.preset.decide(facts))
    }
}

/// Reads run; everything else asks (the `strict` preset with no rules).
#[derive(Debug, Default, Clone, Copy)]
pub struct StrictPolicy;

impl Policy for StrictPolicy {
    fn decide(&self, facts: &CallFacts) -> Decision {
        Preset::Strict.decide(facts)
    }
}

/// Glob matching with `*` (any run, also empty) and `?` (one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tool: &str, effect: Effect, entities: &[&str]) -> CallFacts {
        let mut domains: Vec<String> = Vec::new();
        for e in entities {
            let d = e.split('.').next().unwrap_or("").to_string();
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        CallFacts { tool: tool.into(), effect, domains, entities: entities.iter().map(|e| e.to_string()).collect() }
    }

    fn infra(tool: &str, effect: Effect, domain: &str) -> CallFacts {
        CallFacts { tool: tool.into(), effect, domains: vec![domain.into()], entities: vec![] }
    }

    fn rule(tool: Option<&str>, domain: Option<&str>, entity: Option<&str>, decision: Decision) -> Rule {
        Rule {
            tool: tool.map(String::from),
            domain: domain.map(String::from),
            entity: entity.map(String::from),
            decision,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("lock.*", "lock.front_door"));
        assert!(glob("*", ""));
        assert!(glob("light.kitchen_?", "light.kitchen_2"));
        assert!(glob("*door*", "lock.front_door_2"));
        assert!(!glob("lock.*", "light.lock"));
        assert!(!glob("light.kitchen", "light.kitchen_2"));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
    }

    /// The policy table: preset × effect × domain.
    #[test]
    fn presets_decide_by_effect_and_domain() {
        use Decision::{Allow, Ask};
        use Effect::{Destructive, Mutate, Read};
        let cases = [
            // (call, strict, balanced, autonomous)
            (facts("get_state", Read, &["lock.front"]), Allow, Allow, Allow),
            (facts("control_entity", Mutate, &["light.kitchen"]), Ask, Allow, Allow),
            (facts("control_entity", Mutate, &["media_player.tv"]), Ask, Allow, Allow),
            (facts("control_entity", Mutate, &["cover.garage"]), Ask, Allow, Allow),
            (facts("control_entity", Mutate, &["lock.front"]), Ask, Ask, Allow),
            (facts("control_entity", Mutate, &["alarm_control_panel.home"]), Ask, Ask, Allow),
            (facts("control_entity", Mutate, &["climate.bedroom"]), Ask, Ask, Allow),
            (facts("control_entity", Mutate, &["light.a", "lock.b"]), Ask, Ask, Allow),
            (infra("proxmox_vm_power", Mutate, "proxmox"), Ask, Ask, Allow),
            (infra("ansible_run", Mutate, "ansible"), Ask, Ask, Allow),
            (facts("note", Mutate, &[]), Ask, Ask, Allow),
            (infra("proxmox_vm_delete", Destructive, "proxmox"), Ask, Ask, Ask),
        ];
        for (f, strict, balanced, autonomous) in cases {
            assert_eq!(Preset::Strict.decide(&f), strict, "strict {f:?}");
            assert_eq!(Preset::Balanced.decide(&f), balanced, "balanced {f:?}");
            assert_eq!(Preset::Autonomous.decide(&f), autonomous, "autonomous {f:?}");
        }
    }

    #[test]
    fn rules_beat_the_preset_and_deny_always_wins() {
        let policy = RulePolicy {
            preset: Preset::Balanced,
            rules: vec![
                rule(None, None, Some("lock.*"), Decision::Ask),
                rule(None, Some("light"), None, Decision::Allow),
                rule(Some("proxmox_*"), None, None, Decision::Deny),
                rule(None, None, Some("lock.shed"), Decision::Allow),
                rule(None, None, Some("light.nursery"), Decision::Deny),
            ],
        };
        let lock = facts("control_entity", Effect::Mutate, &["lock.front"]);
        assert_eq!(policy.decide(&lock), Decision::Ask);
        // Two rules match lock.shed (ask and allow): the more cautious wins.
        assert_eq!(policy.decide(&facts("control_entity", Effect::Mutate, &["lock.shed"])), Decision::Ask);
        // A rule can allow what the preset would ask.
        let strict =
            RulePolicy { preset: Preset::Strict, rules: vec![rule(None, Some("light"), None, Decision::Allow)] };
        assert_eq!(strict.decide(&facts("control_entity", Effect::Mutate, &["light.kitchen"])), Decision::Allow);
        // Deny wins even against an allow for the same call, and even for reads.
        assert_eq!(policy.decide(&facts("control_entity", Effect::Mutate, &["light.nursery"])), Decision::Deny);
        assert_eq!(policy.decide(&infra("proxmox_vm_status", Effect::Read, "proxmox")), Decision::Deny);
        // An entity rule applies when any target matches.
        assert_eq!(
            policy.decide(&facts("control_entity", Effect::Mutate, &["light.hall", "lock.front"])),
            Decision::Ask
        );
        // No rule matches: the preset decides.
        assert_eq!(policy.decide(&facts("control_entity", Effect::Mutate, &["cover.garage"])), Decision::Allow);
    }

    #[test]
    fn facts_come_from_entity_arguments_and_the_tools_domain() {
        let mut spec = ToolSpec {
            name: "control_entity".into(),
            description: String::new(),
            parameters: serde_json::json!({}),
            effect: Effect::Mutate,
            timeout: std::time::Duration::from_secs(1),
            output_cap: 1,
            domain: None,
        };
        let f = CallFacts::of(&spec, &serde_json::json!({"entity_id": "light.kitchen"}));
        assert_eq!(
            (f.domains.clone(), f.entities.clone()),
            (vec!["light".to_string()], vec!["light.kitchen".to_string()])
        );
        let f = CallFacts::of(&spec, &serde_json::json!({"entity_ids": ["lock.a", "light.b", "lock.c"]}));
        assert_eq!(f.domains, vec!["lock".to_string(), "light".to_string()]);
        spec.domain = Some("proxmox".into());
        assert_eq!(CallFacts::of(&spec, &serde_json::json!({})).domains, vec!["proxmox".to_string()]);
    }
}
