//! The `[llm]` section: providers, tiers, prices, budgets and the router's
//! retry and cooldown policy, and what the environment adds to them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use steward_core::Tier;
use steward_llm::router::Price;

use super::{Env, Problem, Secret};

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible server: OpenAI, vLLM, llama.cpp, LM Studio, OpenRouter…
    Openai,
    Anthropic,
    /// Ollama's native `/api/chat`.
    Ollama,
    Gemini,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Gemini => "gemini",
        }
    }

    fn from_name(name: &str) -> Option<ProviderKind> {
        match name {
            "openai" => Some(ProviderKind::Openai),
            "anthropic" => Some(ProviderKind::Anthropic),
            "ollama" => Some(ProviderKind::Ollama),
            "gemini" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }

    /// The base URL the official SDK uses when none is given.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Ollama => "http://127.0.0.1:11434",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// Default models for the fast and smart tiers.
    fn default_models(self) -> (&'static str, &'static str) {
        match self {
            ProviderKind::Openai => ("gpt-4o-mini", "gpt-4o"),
            ProviderKind::Anthropic => ("claude-3-5-haiku-latest", "claude-sonnet-4-5"),
            ProviderKind::Ollama => ("llama3.1", "llama3.1"),
            ProviderKind::Gemini => ("gemini-2.0-flash", "gemini-2.5-pro"),
        }
    }

    fn needs_key(self) -> bool {
        match self {
            ProviderKind::Openai | ProviderKind::Anthropic | ProviderKind::Gemini => true,
            ProviderKind::Ollama => false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSection {
    /// The wire format; may be left out for providers named openai,
    /// anthropic, ollama or gemini.
    pub kind: Option<ProviderKind>,
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// The model for every tier, unless `fast_model`/`smart_model` say otherwise.
    pub model: Option<String>,
    pub fast_model: Option<String>,
    pub smart_model: Option<String>,
    /// Whether it runs on your own machines (free, preferred). Default: true
    /// when the base URL's host is loopback, private or `.local`.
    pub local: Option<bool>,
}

impl ProviderSection {
    pub fn kind_of(&self, name: &str) -> Option<ProviderKind> {
        self.kind.or_else(|| ProviderKind::from_name(name))
    }

    pub fn base_url_of(&self, kind: ProviderKind) -> String {
        let url = self.base_url.clone().unwrap_or_else(|| kind.default_base_url().to_string());
        match kind {
            // Ollama's clients accept a bare host:port.
            ProviderKind::Ollama => steward_llm::ollama_base_url(&url).trim_end_matches("/v1").to_string(),
            ProviderKind::Openai | ProviderKind::Anthropic | ProviderKind::Gemini => url,
        }
    }

    pub fn is_local(&self, kind: ProviderKind) -> bool {
        self.local.unwrap_or_else(|| host_is_local(&self.base_url_of(kind)))
    }

    fn models(&self, kind: ProviderKind) -> (String, String) {
        let (fast, smart) = kind.default_models();
        let base = self.model.clone();
        (
            self.fast_model.clone().or_else(|| base.clone()).unwrap_or_else(|| fast.to_string()),
            self.smart_model.clone().or(base).unwrap_or_else(|| smart.to_string()),
        )
    }
}

/// Whether a URL's host is this machine or the local network.
fn host_is_local(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    if host == "localhost" || host.ends_with(".local") || host.ends_with(".lan") || host.ends_with(".internal") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback() || a.is_private() || a.is_link_local(),
        Ok(IpAddr::V6(a)) => a.is_loopback() || (a.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentSection {
    pub context_window: Option<u32>,
    pub max_output_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsSection {
    /// For all paid providers together.
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
    pub providers: BTreeMap<String, Limits>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSection {
    pub request_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Tries per deployment before falling back.
    pub retries: u32,
    /// Consecutive failures that rest a deployment, and for how long.
    pub cooldown_failures: u32,
    pub cooldown_secs: u64,
    pub providers: BTreeMap<String, ProviderSection>,
    /// Deployment ids (`provider/model`) per tier; unset tiers are derived
    /// from the providers, local ones first.
    pub tiers: BTreeMap<Tier, Vec<String>>,
    pub deployments: BTreeMap<String, DeploymentSection>,
    /// Price overrides per `provider/model` (or a prefix), per million tokens.
    pub prices: BTreeMap<String, Price>,
    pub budgets: BudgetsSection,
}

impl Default for LlmSection {
    fn default() -> Self {
        LlmSection {
            request_timeout_secs: 300,
            connect_timeout_secs: 10,
            retries: 2,
            cooldown_failures: 3,
            cooldown_secs: 60,
            providers: BTreeMap::new(),
            tiers: BTreeMap::new(),
            deployments: BTreeMap::new(),
            prices: BTreeMap::new(),
            budgets: BudgetsSection::default(),
        }
    }
}

/// The environment's variables per built-in provider: (name, key var,
/// base-URL var, model var).
const ENV: &[(&str, Option<&str>, &str, &str)] = &[
    ("openai", Some("OPENAI_API_KEY"), "OPENAI_BASE_URL", "OPENAI_MODEL"),
    ("anthropic", Some("ANTHROPIC_API_KEY"), "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL"),
    ("gemini", Some("GEMINI_API_KEY"), "GEMINI_BASE_URL", "GEMINI_MODEL"),
    ("ollama", None, "OLLAMA_HOST", "OLLAMA_MODEL"),
];

/// Every provider whose key or host is set in the environment becomes
/// usable (or is updated, when the file names it too).
pub fn apply_env(llm: &mut LlmSection, env: &dyn Env) {
    for (name, key_var, url_var, model_var) in ENV {
        let key = key_var.and_then(|k| env.var(k));
        let url = env.var(url_var);
        let model = env.var(model_var);
        if key.is_none() && url.is_none() && !llm.providers.contains_key(*name) {
            continue;
        }
        let p = llm.providers.entry(name.to_string()).or_default();
        if let Some(k) = key {
            p.api_key = Some(Secret::new(k));
        }
        if let Some(u) = url {
            p.base_url = Some(u);
        }
        if let Some(m) = model {
            p.model = Some(m);
        }
    }
}

/// Order in which cloud providers appear in derived tiers.
fn provider_order(name: &str) -> (usize, String) {
    let rank = ["openai", "anthropic", "gemini"].iter().position(|n| *n == name).unwrap_or(3);
    (rank, name.to_string())
}

impl LlmSection {
    /// Tiers as configured, with unset ones derived: every local provider's
    /// model first, then each cloud provider's fast or smart model.
    pub fn effective_tiers(&self) -> BTreeMap<Tier, Vec<String>> {
        let mut locals = Vec::new();
        let mut clouds: Vec<(&String, &ProviderSection, ProviderKind)> = Vec::new();
        for (name, p) in &self.providers {
            let Some(kind) = p.kind_of(name) else { continue };
            if p.is_local(kind) {
                let (fast, smart) = p.models(kind);
                locals.push(format!("{name}/{fast}"));
                if smart != fast {
                    locals.push(format!("{name}/{smart}"));
                }
            } else {
                clouds.push((name, p, kind));
            }
        }
        clouds.sort_by_key(|(name, _, _)| provider_order(name));
        let mut tiers = BTreeMap::new();
        for tier in [Tier::Local, Tier::Fast, Tier::Smart] {
            if let Some(list) = self.tiers.get(&tier) {
                tiers.insert(tier, list.clone());
                continue;
            }
            let mut list = locals.clone();
            if tier != Tier::Local {
                for (name, p, kind) in &clouds {
                    let (fast, smart) = p.models(*kind);
                    list.push(format!("{name}/{}", if tier == Tier::Fast { fast } else { smart }));
                }
            }
            tiers.insert(tier, list);
        }
        tiers
    }

    pub fn validate(&self, p: &mut Vec<Problem>) {
        let is_provider_id = |id: &str| {
            id.split_once('/')
                .map(|(prov, model)| !model.is_empty() && self.providers.contains_key(prov))
                .unwrap_or(false)
        };
        for name in self.providers.keys() {
            if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
                p.push(Problem {
                    key: format!("llm.providers.\"{name}\""),
                    message:
                        "a provider's name is the first half of provider/model, so it cannot contain '/' or spaces"
                            .into(),
                    fix: "rename the section, e.g. [llm.providers.gpu-box]".into(),
                });
            }
        }
        for (id, d) in &self.deployments {
            if !is_provider_id(id) {
                p.push(Problem {
                    key: format!("llm.deployments.\"{id}\""),
                    message: format!("'{id}' is not provider/model with a configured provider"),
                    fix: "key deployments by provider/model, e.g. [llm.deployments.\"ollama/llama3.1\"]".into(),
                });
            }
            if d.context_window == Some(0) || d.max_output_tokens == Some(0) {
                p.push(Problem {
                    key: format!("llm.deployments.\"{id}\""),
                    message: "a context window or output limit of 0 tokens would fail every call".into(),
                    fix: "give the model's real numbers, e.g. context_window = 32768, or leave them out".into(),
                });
            }
        }
        for key in self.prices.keys() {
            if !self.providers.keys().any(|prov| key.starts_with(&format!("{prov}/"))) {
                p.push(Problem {
                    key: format!("llm.prices.\"{key}\""),
                    message: format!("'{key}' names no configured provider, so this price would never apply"),
                    fix: "key prices by provider/model of a configured provider, e.g. \"openai/gpt-4o\"".into(),
                });
            }
        }
        if self.retries > 10 || self.cooldown_secs > 86_400 {
            p.push(Problem {
                key: "llm.retries / llm.cooldown_secs".into(),
                message: format!("{} tries or a {} s cooldown is beyond reason", self.retries, self.cooldown_secs),
                fix: "use at most 10 tries and a cooldown of at most a day (86400 s); the defaults are 2 and 60".into(),
            });
        }
        for (name, provider) in &self.providers {
            let Some(kind) = provider.kind_of(name) else {
                p.push(Problem {
                    key: format!("llm.providers.{name}.kind"),
                    message: format!("provider '{name}' does not say which API it speaks"),
                    fix:
                        "add kind = \"openai\" (any OpenAI-compatible server), \"anthropic\", \"ollama\" or \"gemini\""
                            .into(),
                });
                continue;
            };
            let url = provider.base_url_of(kind);
            if let Err(why) = super::check_http_url(&url) {
                p.push(Problem {
                    key: format!("llm.providers.{name}.base_url"),
                    message: format!("'{}' {why}", steward_store::redact_url(provider.base_url.as_deref().unwrap_or(&url))),
                    fix: "use a URL such as https://api.openai.com/v1, http://127.0.0.1:8080/v1 or, for Ollama, http://127.0.0.1:11434".into(),
                });
            }
            if kind.needs_key() && provider.api_key.is_none() && provider.base_url.is_none() {
                let var = ENV.iter().find(|e| e.0 == kind.as_str()).and_then(|e| e.1).unwrap_or("the api_key");
                p.push(Problem {
                    key: format!("llm.providers.{name}.api_key ({var})"),
                    message: format!("{}'s API needs a key, and none is set", kind.as_str()),
                    fix: format!("set {var}, or a base_url of a server that needs none"),
                });
            }
        }
        for (tier, ids) in &self.tiers {
            for id in ids {
                match id.split_once('/') {
                    Some((provider, model)) if !model.is_empty() && self.providers.contains_key(provider) => {}
                    _ => p.push(Problem {
                        key: format!("llm.tiers.{}", tier.as_str()),
                        message: format!("'{id}' is not provider/model with a configured provider"),
                        fix: format!(
                            "name a deployment as provider/model with one of: {}",
                            self.providers.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    }),
                }
            }
        }
        for (key, price) in &self.prices {
            let parts = [price.input, price.output, price.cached_input.unwrap_or(0.0)];
            if parts.iter().any(|v| !v.is_finite() || *v < 0.0) {
                p.push(Problem {
                    key: format!("llm.prices.\"{key}\""),
                    message: "prices must be zero or more".into(),
                    fix: "give input, output (and optionally cached_input) per million tokens, e.g. input = 2.5".into(),
                });
            }
        }
        let mut limits =
            vec![("llm.budgets".to_string(), Limits { daily: self.budgets.daily, monthly: self.budgets.monthly })];
        for (name, l) in &self.budgets.providers {
            limits.push((format!("llm.budgets.providers.{name}"), *l));
            if !self.providers.contains_key(name) {
                p.push(Problem {
                    key: format!("llm.budgets.providers.{name}"),
                    message: format!("there is no provider '{name}'"),
                    fix: "name a configured provider".into(),
                });
            }
        }
        for (key, l) in limits {
            for v in [l.daily, l.monthly].into_iter().flatten() {
                if !v.is_finite() || v < 0.0 {
                    p.push(Problem {
                        key: key.clone(),
                        message: format!("{v} is not a budget"),
                        fix: "use an amount of zero or more in the price table's currency, e.g. monthly = 20".into(),
                    });
                }
            }
        }
        if self.request_timeout_secs == 0 || self.connect_timeout_secs == 0 {
            p.push(Problem {
                key: "llm.request_timeout_secs / llm.connect_timeout_secs".into(),
                message: "a timeout of 0 seconds would fail every call".into(),
                fix: "use at least 1 second; the defaults are 300 and 10".into(),
            });
        }
        if self.retries == 0 {
            p.push(Problem {
                key: "llm.retries".into(),
                message: "0 tries would never call a model".into(),
                fix: "use at least 1 (no retry); the default is 2".into(),
            });
        }
    }

    /// The section as shown by `config check`: secrets and URL credentials masked.
    pub fn masked(&self) -> LlmSection {
        let mut shown = self.clone();
        for p in shown.providers.values_mut() {
            p.base_url = p.base_url.as_deref().map(steward_store::redact_url);
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:11434",
            "http://localhost:8080/v1",
            "http://192.168.1.20:8000/v1",
            "http://nas.local:11434",
            "http://[::1]:8080",
        ] {
            assert!(host_is_local(url), "{url}");
        }
        for url in ["https://api.openai.com/v1", "https://8.8.8.8/v1", "https://openrouter.ai/api/v1"] {
            assert!(!host_is_local(url), "{url}");
        }
    }

    #[test]
    fn deployment_price_and_provider_names_are_checked() {
        let mut llm = LlmSection::default();
        llm.providers.insert("ollama".into(), ProviderSection::default());
        llm.providers.insert("a/b".into(), ProviderSection { kind: Some(ProviderKind::Ollama), ..Default::default() });
        llm.deployments.insert("nobody".into(), DeploymentSection::default());
        llm.deployments
            .insert("ollama/x".into(), DeploymentSection { context_window: Some(0), max_output_tokens: None });
        llm.prices.insert("opneai/gpt-4o".into(), Price { input: 1.0, output: 1.0, cached_input: None });
        llm.cooldown_secs = u64::MAX;
        let mut problems = Vec::new();
        llm.validate(&mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(problems.len(), 5, "{keys:?}");
        assert!(keys.iter().any(|k| k.contains("opneai")), "{keys:?}");
    }

    #[test]
    fn derived_tiers_put_local_models_first() {
        let mut llm = LlmSection::default();
        let env: BTreeMap<String, String> = [
            ("OPENAI_API_KEY", "sk-x"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("OLLAMA_HOST", "127.0.0.1:11434"),
            ("OLLAMA_MODEL", "qwen2.5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply_env(&mut llm, &env);
        let tiers = llm.effective_tiers();
        assert_eq!(tiers[&Tier::Local], vec!["ollama/qwen2.5"]);
        assert_eq!(
            tiers[&Tier::Fast],
            vec!["ollama/qwen2.5", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"]
        );
        assert_eq!(tiers[&Tier::Smart], vec!["ollama/qwen2.5", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]);
    }
}
