//! Plans: the prompt that asks a model for one, and the checks a plan must
//! pass before a person is asked to approve it.
//!
//! A plan is a JSON object, `{"summary", "steps": [{"id", "agent", "tool",
//! "arguments", "description", "depends_on", "estimated_cost_usd"}]}`. Its
//! steps are fixed tool calls: nothing runs a model between them, so a step
//! cannot use another's output, and what a person approves is exactly what
//! runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;
use steward_protocol::task::{StepStatus, TaskStep};
use steward_protocol::Effect;

use crate::agent::AgentRegistry;
use crate::policy::{CallFacts, Decision, Policy};
use crate::tool::{Tool, ToolRegistry};

/// Steps a plan may have at most: more is a project, not a request.
pub const MAX_STEPS: usize = 20;

/// The name of the tool that starts an approved plan; never a step.
pub const RUN_TASK: &str = "run_task";

/// Longest step id accepted.
const MAX_ID_CHARS: usize = 32;

/// Why a plan cannot be used, in words the model (on its retry) and the
/// person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

fn bad(message: impl Into<String>) -> PlanError {
    PlanError(message.into())
}

/// A plan that passed every check: steps pending, in the model's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub summary: String,
    pub steps: Vec<TaskStep>,
}

impl Plan {
    pub fn estimated_cost_usd(&self) -> f64 {
        self.steps.iter().map(|s| s.estimated_cost_usd).sum()
    }

    /// The strongest effect of any step: what approving the plan allows.
    pub fn effect(&self) -> Effect {
        self.steps.iter().map(|s| s.effect).fold(Effect::Read, strongest)
    }
}

/// The stronger of two effects.
pub fn strongest(a: Effect, b: Effect) -> Effect {
    fn rank(e: Effect) -> u8 {
        match e {
            Effect::Read => 0,
            Effect::Mutate => 1,
            Effect::Destructive => 2,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Whether a registered tool can be a step: the task runner calls tools
/// directly, so neither `run_task` itself nor a delegation tool (which
/// only the engine's turn loop can run) qualifies.
fn plannable(tool: &dyn Tool) -> bool {
    tool.spec().name != RUN_TASK && tool.delegation().is_none()
}

/// The tools of `agent` that may appear in a plan, in the agent's order.
fn agent_tools<'a>(tools: &'a ToolRegistry, names: &'a [String]) -> impl Iterator<Item = &'a dyn Tool> + 'a {
    names.iter().filter_map(|n| tools.get(n)).map(|t| t.as_ref()).filter(|t| plannable(*t))
}

/// The planner's system prompt: the rules, the JSON shape, and every agent
/// with the tools it may use (each tool once, with its effect and schema).
pub fn planner_prompt(agents: &AgentRegistry, tools: &ToolRegistry) -> String {
    let mut text = String::from(
        "You are Steward's planner. A person asked for something that takes several steps. Turn the request \
into a plan: a small set of tool calls, each made by one agent, with the order they depend on.\n\n\
Reply with ONLY one JSON object, no prose and no code fence, of this shape:\n\
{\"summary\": \"one line on what the plan does\", \"steps\": [{\"id\": \"s1\", \"agent\": \"<agent id>\", \
\"tool\": \"<tool name>\", \"arguments\": {}, \"description\": \"what this step does and why\", \
\"depends_on\": [], \"estimated_cost_usd\": 0}]}\n\n\
Rules:\n\
- 1 to 20 steps with short unique ids (s1, s2, …).\n\
- Each step uses exactly one tool from ITS agent's list below, with arguments that match the tool's JSON \
Schema. Use only entity ids and names the request gives or that you know exist; never invent them.\n\
- depends_on lists the ids of the steps that must succeed first. Steps that do not depend on each other run \
at the same time. No cycles.\n\
- Steps run exactly as written, with no model in between: a step cannot use another step's output in its \
arguments.\n\
- estimated_cost_usd is your estimate of what the step costs in US dollars (0 for an ordinary tool call).\n\
- A person approves the whole plan before anything that changes the world runs; plan only what the request \
asks for.\n\n\
Agents and the tools each may use:\n",
    );
    let mut described: BTreeMap<&str, &dyn Tool> = BTreeMap::new();
    for agent in agents.all() {
        let names: Vec<&str> = agent_tools(tools, &agent.tools).map(|t| t.spec().name.as_str()).collect();
        if names.is_empty() {
            continue;
        }
        text.push_str(&format!("- {}: {} Tools: {}\n", agent.id, agent.purpose, names.join(", ")));
        for tool in agent_tools(tools, &agent.tools) {
            described.insert(tool.spec().name.as_str(), tool);
        }
    }
    text.push_str("\nTools:\n");
    for (name, tool) in described {
        let spec = tool.spec();
        text.push_str(&format!(
            "- {name} ({}): {}\n  arguments schema: {}\n",
            spec.effect.as_str(),
            spec.description,
            spec.parameters
        ));
    }
    text
}

/// The plan as a model writes it, before any check.
#[derive(Debug, Deserialize)]
struct RawPlan {
    #[serde(default)]
    summary: Option<String>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
struct RawStep {
    id: String,
    agent: String,
    tool: String,
    #[serde(default)]
    arguments: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    estimated_cost_usd: Option<f64>,
}

/// Reads a model's answer as a plan: the JSON object in it (a ```json
/// fence or prose around it is tolerated), then every check of
/// [`validate`].
pub fn parse_plan(
    answer: &str,
    agents: &AgentRegistry,
    tools: &ToolRegistry,
    policy: &dyn Policy,
) -> Result<Plan, PlanError> {
    let Some(start) = answer.find('{') else {
        return Err(bad("the answer contains no JSON object; reply with only the plan's JSON object"));
    };
    // Up to the last closing brace; a cut-off object is parsed whole, so
    // the error says where it ends.
    let json = match answer.rfind('}') {
        Some(end) if end > start => &answer[start..=end],
        Some(_) | None => &answer[start..],
    };
    let raw: RawPlan = serde_json::from_str(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => bad(format!("the plan does not have the expected shape: {e}")),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            bad(format!("the answer is not valid JSON: {e}"))
        }
    })?;
    validate(raw, agents, tools, policy)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Model arguments: an object, an object written as a JSON string, or
/// nothing (no arguments).
fn arguments_object(id: &str, arguments: Value) -> Result<Value, PlanError> {
    match arguments {
        Value::Null => Ok(Value::Object(Default::default())),
        v @ Value::Object(_) => Ok(v),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(bad(format!("step '{id}': arguments must be a JSON object, not the string {s:?}"))),
        },
        other => Err(bad(format!("step '{id}': arguments must be a JSON object, not {other}"))),
    }
}

fn validate(
    raw: RawPlan,
    agents: &AgentRegistry,
    tools: &ToolRegistry,
    policy: &dyn Policy,
) -> Result<Plan, PlanError> {
    if raw.steps.is_empty() {
        return Err(bad(format!("the plan has no steps; a plan needs 1 to {MAX_STEPS}")));
    }
    if raw.steps.len() > MAX_STEPS {
        return Err(bad(format!(
            "the plan has {} steps; at most {MAX_STEPS} are allowed, so combine or drop some",
            raw.steps.len()
        )));
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (n, s) in raw.steps.iter().enumerate() {
        if !valid_id(&s.id) {
            return Err(bad(format!(
                "step #{} has the id {:?}; use short ids of letters, digits, '-' or '_' such as s1, s2",
                n + 1,
                s.id
            )));
        }
        if !seen.insert(s.id.clone()) {
            return Err(bad(format!("two steps have the id '{}'; step ids must be unique", s.id)));
        }
    }
    let mut steps = Vec::with_capacity(raw.steps.len());
    for s in raw.steps {
        let Some(agent) = agents.get(&s.agent) else {
            let known: Vec<&str> = agents.all().map(|a| a.id.as_str()).collect();
            return Err(bad(format!(
                "step '{}' names the agent '{}', which does not exist; agents: {}",
                s.id,
                s.agent,
                known.join(", ")
            )));
        };
        let offered: Vec<&str> = agent_tools(tools, &agent.tools).map(|t| t.spec().name.as_str()).collect();
        let tool = match tools.get(&s.tool).filter(|t| plannable(t.as_ref())) {
            None => {
                return Err(bad(format!(
                    "step '{}' uses the tool '{}', which does not exist; agent '{}' has: {}",
                    s.id,
                    s.tool,
                    agent.id,
                    offered.join(", ")
                )))
            }
            Some(_) if !offered.contains(&s.tool.as_str()) => {
                return Err(bad(format!(
                    "step '{}' uses the tool '{}', which agent '{}' does not have; its tools: {}",
                    s.id,
                    s.tool,
                    agent.id,
                    offered.join(", ")
                )))
            }
            Some(tool) => tool,
        };
        let arguments = arguments_object(&s.id, s.arguments)?;
        for dep in &s.depends_on {
            if dep == &s.id {
                return Err(bad(format!("step '{}' depends on itself", s.id)));
            }
            if !seen.contains(dep.as_str()) {
                return Err(bad(format!("step '{}' depends on '{dep}', which is not a step of the plan", s.id)));
            }
        }
        let cost = s.estimated_cost_usd.unwrap_or(0.0);
        if !cost.is_finite() || cost < 0.0 {
            return Err(bad(format!("step '{}': estimated_cost_usd must be a number of dollars, 0 or more", s.id)));
        }
        let spec = tool.spec();
        if policy.decide(&CallFacts::of(spec, &arguments)) == Decision::Deny {
            return Err(bad(format!(
                "step '{}': the policy denies '{}' with these arguments, so it can never run; plan without it",
                s.id, spec.name
            )));
        }
        let mut depends_on = s.depends_on;
        depends_on.dedup();
        let description = match s.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()) {
            Some(d) => d,
            None => format!("{} {}", spec.name, arguments),
        };
        steps.push(TaskStep {
            id: s.id,
            agent: agent.id.clone(),
            tool: spec.name.clone(),
            arguments,
            description,
            depends_on,
            effect: spec.effect,
            estimated_cost_usd: cost,
            status: StepStatus::Pending,
            attempts: 0,
            output: None,
            error: None,
            started_at: None,
            finished_at: None,
        });
    }
    if let Err(cycle) = waves(&steps) {
        return Err(bad(format!(
            "the steps depend on each other in a cycle ({}); dependencies must form a DAG",
            cycle.join(" → ")
        )));
    }
    let summary = raw.summary.map(|s| s.trim().to_string()).unwrap_or_default();
    Ok(Plan { summary, steps })
}

/// The steps in waves: each wave's steps depend only on earlier waves, so
/// a wave's steps can run at the same time. `Err` holds a cycle
/// (`s1, s2, s1`) when there is one.
pub fn waves(steps: &[TaskStep]) -> Result<Vec<Vec<String>>, Vec<String>> {
    let mut remaining: BTreeMap<&str, Vec<&str>> =
        steps.iter().map(|s| (s.id.as_str(), s.depends_on.iter().map(String::as_str).collect())).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&str> = steps
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| remaining.get(id).is_some_and(|deps| deps.iter().all(|d| done.contains(d))))
            .collect();
        if ready.is_empty() {
            return Err(find_cycle(&remaining));
        }
        for id in &ready {
            remaining.remove(id);
            done.insert(id);
        }
        out.push(ready.into_iter().map(String::from).collect());
    }
    Ok(out)
}

/// Follows unresolved dependencies from any left-over step until one
/// repeats: that stretch is a cycle.
fn find_cycle(remaining: &BTreeMap<&str, Vec<&str>>) -> Vec<String> {
    let Some(mut at) = remaining.keys().next().copied() else { return Vec::new() };
    let mut path: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    loop {
        if let Some(&i) = index.get(at) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(at.to_string());
            return cycle;
        }
        index.insert(at, path.len());
        path.push(at);
        // Every left-over step has a left-over dependency (else it would
        // have been ready), so this walk cannot stop before it repeats.
        match remaining.get(at).and_then(|deps| deps.iter().find(|d| remaining.contains_key(*d))) {
            Some(next) => at = next,
            None => return path.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Dollars for people: two decimals.
pub fn dollars(usd: f64) -> String {
    format!("${usd:.2}")
}

/// The plan as a person reads it before approving: each step with its
/// agent, tool, effect, arguments, dependencies and cost, then the order
/// in which they run.
pub fn render(steps: &[TaskStep]) -> String {
    let mut text = String::new();
    for s in steps {
        let after =
            if s.depends_on.is_empty() { String::new() } else { format!(", after {}", s.depends_on.join(", ")) };
        text.push_str(&format!(
            "{}  {} ({}) by {}{after}, est. {}\n    {}\n    arguments: {}\n",
            s.id,
            s.tool,
            s.effect.as_str(),
            s.agent,
            dollars(s.estimated_cost_usd),
            s.description,
            s.arguments
        ));
    }
    if let Ok(waves) = waves(steps) {
        let order: Vec<String> = waves
            .iter()
            .map(|w| if w.len() > 1 { format!("{} (in parallel)", w.join(" + ")) } else { w.join("") })
            .collect();
        text.push_str(&format!("Order: {}", order.join(" → ")));
    }
    text
}
