//! Prices of models, per million tokens, and what a call costs.
//!
//! Costs are kept in millionths of the currency unit ("micros"): a price
//! per million tokens times a token count is then exactly a cost in micros.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use steward_protocol::Usage;

/// What a model costs, in currency units per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Prompt tokens served from the provider's cache; `input` when unset.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    pub const FREE: Price = Price { input: 0.0, output: 0.0, cached_input: Some(0.0) };

    pub fn is_free(&self) -> bool {
        self.input == 0.0 && self.output == 0.0 && self.cached_input.unwrap_or(0.0) == 0.0
    }

    /// The cost of a call that used `usage`.
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        let micros = fresh as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + usage.completion_tokens as f64 * self.output;
        micros.ceil().min(i64::MAX as f64) as i64
    }

    /// The most a call with this many prompt tokens and at most this many
    /// output tokens can cost (no cache discount assumed).
    pub fn worst_case_micros(&self, prompt_tokens: u64, max_output_tokens: u64) -> i64 {
        let micros = prompt_tokens as f64 * self.input + max_output_tokens as f64 * self.output;
        micros.ceil().min(i64::MAX as f64) as i64
    }
}

/// The price the ledger records for a paid model no table knows, when no
/// budget covers it (under a budget such a model is refused: see the router).
pub const UNKNOWN_MODEL_PRICE: Price = Price { input: 15.0, output: 75.0, cached_input: None };

/// Built-in prices (USD per million tokens) by `provider/model-prefix`; the
/// longest matching prefix wins. Overrides in config take precedence.
const DEFAULTS: &[(&str, f64, f64, f64)] = &[
    ("openai/gpt-4o-mini", 0.15, 0.60, 0.075),
    ("openai/gpt-4o", 2.50, 10.00, 1.25),
    ("openai/gpt-4.1-nano", 0.10, 0.40, 0.025),
    ("openai/gpt-4.1-mini", 0.40, 1.60, 0.10),
    ("openai/gpt-4.1", 2.00, 8.00, 0.50),
    ("openai/o4-mini", 1.10, 4.40, 0.275),
    ("openai/o3-mini", 1.10, 4.40, 0.55),
    ("openai/o3-pro", 20.00, 80.00, 20.00),
    ("openai/o3", 2.00, 8.00, 0.50),
    ("openai/o1-pro", 150.00, 600.00, 150.00),
    ("openai/o1-mini", 1.10, 4.40, 0.55),
    ("openai/o1", 15.00, 60.00, 7.50),
    ("openai/gpt-5-nano", 0.05, 0.40, 0.005),
    ("openai/gpt-5-mini", 0.25, 2.00, 0.025),
    ("openai/gpt-5-pro", 15.00, 120.00, 15.00),
    ("openai/gpt-5", 1.25, 10.00, 0.125),
    ("anthropic/claude-3-5-haiku", 0.80, 4.00, 0.08),
    ("anthropic/claude-haiku-4", 1.00, 5.00, 0.10),
    ("anthropic/claude-3-5-sonnet", 3.00, 15.00, 0.30),
    ("anthropic/claude-3-7-sonnet", 3.00, 15.00, 0.30),
    ("anthropic/claude-sonnet-4", 3.00, 15.00, 0.30),
    ("anthropic/claude-opus-4", 15.00, 75.00, 1.50),
    ("gemini/gemini-2.0-flash", 0.10, 0.40, 0.025),
    ("gemini/gemini-2.5-flash-lite", 0.10, 0.40, 0.025),
    ("gemini/gemini-2.5-flash", 0.30, 2.50, 0.075),
    ("gemini/gemini-2.5-pro", 1.25, 10.00, 0.31),
];

/// Prices by model: the built-in table plus overrides.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    overrides: BTreeMap<String, Price>,
}

impl PriceTable {
    /// `overrides` are keyed by `provider/model` (exact) or a prefix of it.
    pub fn new(overrides: BTreeMap<String, Price>) -> Self {
        PriceTable { overrides }
    }

    /// The price configured for `provider/model` (exactly, or by a prefix).
    pub fn configured(&self, provider: &str, model: &str) -> Option<Price> {
        let id = format!("{provider}/{model}");
        longest_prefix(self.overrides.iter().map(|(k, v)| (k.as_str(), *v)), &id)
    }

    /// The price of `provider/model`, if any table knows it. `kind` is the
    /// provider's wire format (`openai`, `anthropic`, `gemini`, `ollama`),
    /// which the built-in table is keyed by, so a named provider of a known
    /// kind (say `openai-work`) finds the built-in prices too.
    pub fn lookup(&self, provider: &str, kind: &str, model: &str) -> Option<Price> {
        if let Some(p) = self.configured(provider, model) {
            return Some(p);
        }
        let by_kind = format!("{kind}/{model}");
        longest_prefix(
            DEFAULTS.iter().map(|(k, i, o, c)| (*k, Price { input: *i, output: *o, cached_input: Some(*c) })),
            &by_kind,
        )
    }
}

/// The entry whose key is the longest prefix of `id` that ends where a
/// model's name ends: at the end of `id`, or before a dated or `-latest`
/// suffix. So `gpt-4o` prices `gpt-4o-2024-08-06`, but `o3` does not price
/// `o3-pro`.
fn longest_prefix<'a>(entries: impl Iterator<Item = (&'a str, Price)>, id: &str) -> Option<Price> {
    entries
        .filter(|(k, _)| id.starts_with(k) && is_version_suffix(&id[k.len()..]))
        .max_by_key(|(k, _)| k.len())
        .map(|(_, p)| p)
}

/// `""`, `-latest`, `-2024-08-06`, `-20250219`, `-0125`, `@20240229`: a
/// version of the same model, not another model.
fn is_version_suffix(rest: &str) -> bool {
    if rest.is_empty() {
        return true;
    }
    let Some(tail) = rest.strip_prefix('-').or_else(|| rest.strip_prefix('@')).or_else(|| rest.strip_prefix(':'))
    else {
        return false;
    };
    tail == "latest" || (!tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_micros_with_the_cache_discount() {
        let p = Price { input: 2.5, output: 10.0, cached_input: Some(1.25) };
        let u = Usage { prompt_tokens: 1000, completion_tokens: 200, cached_prompt_tokens: 400 };
        // 600 × 2.5 + 400 × 1.25 + 200 × 10 = 1500 + 500 + 2000 micros
        assert_eq!(p.cost_micros(&u), 4000);
        assert_eq!(p.worst_case_micros(1000, 4096), 2500 + 40_960);
        assert_eq!(Price::FREE.cost_micros(&u), 0);
    }

    #[test]
    fn the_longest_prefix_wins_and_overrides_beat_defaults() {
        let t = PriceTable::new(BTreeMap::from([(
            "openai/gpt-4o".to_string(),
            Price { input: 1.0, output: 2.0, cached_input: None },
        )]));
        assert_eq!(t.lookup("openai", "openai", "gpt-4o-2024-08-06").map(|p| p.output), Some(2.0));
        assert_eq!(t.lookup("openai", "openai", "gpt-4o-mini-2024-07-18").map(|p| p.output), Some(0.60));
        let plain = PriceTable::default();
        assert_eq!(plain.lookup("openai", "openai", "gpt-4o-mini-2024-07-18").map(|p| p.output), Some(0.60));
        assert_eq!(plain.lookup("openai", "openai", "gpt-4o-2024-08-06").map(|p| p.output), Some(10.0));
        assert_eq!(plain.lookup("work", "anthropic", "claude-sonnet-4-5").map(|p| p.input), Some(3.0));
        assert_eq!(plain.lookup("ollama", "ollama", "llama3.1"), None);
        assert_eq!(plain.lookup("work", "anthropic", "claude-3-5-haiku-latest").map(|p| p.input), Some(0.8));
        // Another model of the same family is not priced as the cheaper one.
        assert_eq!(plain.lookup("openai", "openai", "o3-pro").map(|p| p.output), Some(80.0));
        assert_eq!(plain.lookup("openai", "openai", "gpt-5-pro-2025-10-06").map(|p| p.output), Some(120.0));
        assert_eq!(plain.lookup("openai", "openai", "gpt-4o-audio-preview"), None);
    }
}
