#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_protocol::task::StepStatus;
use steward_protocol::Effect;

use super::*;
use crate::agent::{AgentProfile, AgentRegistry};
use crate::policy::{Policy, Preset, Rule, RulePolicy, StrictPolicy};
use crate::tool::{Tool, ToolContext, ToolError, ToolRegistry, ToolSpec};

struct Fake(ToolSpec);

#[async_trait]
impl Tool for Fake {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        Ok("ok".into())
    }
}

fn tool(name: &str, effect: Effect) -> Arc<dyn Tool> {
    Arc::new(Fake(ToolSpec {
        name: name.into(),
        description: format!("The {name} tool."),
        parameters: json!({"type": "object", "properties": {"entity_id": {"type": "string"}}}),
        effect,
        timeout: Duration::from_secs(1),
        output_cap: 1000,
        domain: None,
    }))
}

fn setup() -> (AgentRegistry, ToolRegistry) {
    let mut tools = ToolRegistry::new();
    for (name, effect) in
        [("read_note", Effect::Read), ("set_switch", Effect::Mutate), ("wipe_disk", Effect::Destructive)]
    {
        tools.register(tool(name, effect));
    }
    tools.register(tool(RUN_TASK, Effect::Mutate));
    let mut agents = AgentRegistry::builtin();
    let mut architect = AgentProfile::architect();
    architect.tools = vec!["read_note".into(), "set_switch".into(), "wipe_disk".into(), RUN_TASK.into()];
    agents.insert(architect);
    let mut librarian = AgentProfile::librarian();
    librarian.tools = vec!["read_note".into()];
    agents.insert(librarian);
    (agents, tools)
}

fn parse(answer: &str) -> Result<Plan, PlanError> {
    let (agents, tools) = setup();
    parse_plan(answer, &agents, &tools, &StrictPolicy)
}

fn step(id: &str, agent: &str, tool: &str, deps: &[&str]) -> Value {
    json!({"id": id, "agent": agent, "tool": tool, "arguments": {"entity_id": "switch.heater"},
           "description": format!("do {id}"), "depends_on": deps, "estimated_cost_usd": 0.01})
}

fn plan_json(steps: Vec<Value>) -> String {
    json!({"summary": "Warm the house", "steps": steps}).to_string()
}

/// s1, then s2 and s3 in parallel: the plan the integration tests use too.
fn diamond() -> String {
    plan_json(vec![
        step("s1", "librarian", "read_note", &[]),
        step("s2", "architect", "set_switch", &["s1"]),
        step("s3", "architect", "read_note", &["s1"]),
    ])
}

#[test]
fn a_valid_plan_is_read_with_its_order_effect_and_cost() {
    let plan = parse(&diamond()).unwrap();
    assert_eq!(plan.summary, "Warm the house");
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert!(plan.steps.iter().all(|s| s.status == StepStatus::Pending && s.attempts == 0));
    assert_eq!(plan.steps[1].effect, Effect::Mutate);
    assert_eq!(plan.effect(), Effect::Mutate);
    assert!((plan.estimated_cost_usd() - 0.03).abs() < 1e-9);
    assert_eq!(waves(&plan.steps).unwrap(), vec![vec!["s1".to_string()], vec!["s2".to_string(), "s3".to_string()]]);
}

#[test]
fn fences_prose_and_stringified_arguments_are_tolerated() {
    let fenced = format!("Here is the plan:\n```json\n{}\n```\nDone.", diamond());
    assert_eq!(parse(&fenced).unwrap().steps.len(), 3);
    let stringy = r#"{"steps": [{"id": "s1", "agent": "architect", "tool": "read_note", "arguments": "{\"entity_id\": \"x.y\"}"}]}"#;
    let plan = parse(stringy).unwrap();
    assert_eq!(plan.steps[0].arguments, json!({"entity_id": "x.y"}));
    assert_eq!(plan.summary, "");
    assert_eq!(plan.steps[0].estimated_cost_usd, 0.0);
    assert!(plan.steps[0].description.starts_with("read_note"), "a missing description is made up");
}

#[test]
fn unusable_plans_are_refused_naming_the_problem() {
    let cases: Vec<(String, &str)> = vec![
        ("I'd be happy to help!".into(), "contains no JSON object"),
        ("{\"steps\": [".into(), "not valid JSON"),
        (json!({"summary": "x"}).to_string(), "missing field `steps`"),
        (plan_json(vec![]), "has no steps"),
        (plan_json((1..=21).map(|n| step(&format!("s{n}"), "architect", "read_note", &[])).collect()), "21 steps"),
        (plan_json(vec![step("s 1", "architect", "read_note", &[])]), "use short ids"),
        (
            plan_json(vec![step("s1", "architect", "read_note", &[]), step("s1", "architect", "read_note", &[])]),
            "two steps have the id 's1'",
        ),
        (plan_json(vec![step("s1", "plumber", "read_note", &[])]), "agent 'plumber', which does not exist"),
        (plan_json(vec![step("s1", "architect", "fly", &[])]), "tool 'fly', which does not exist"),
        (
            plan_json(vec![step("s1", "librarian", "set_switch", &[])]),
            "'set_switch', which agent 'librarian' does not have",
        ),
        (plan_json(vec![step("s1", "architect", RUN_TASK, &[])]), "'run_task', which does not exist"),
        (plan_json(vec![step("s1", "architect", "read_note", &["s9"])]), "depends on 's9', which is not a step"),
        (plan_json(vec![step("s1", "architect", "read_note", &["s1"])]), "depends on itself"),
        (
            plan_json(vec![
                step("s1", "architect", "read_note", &["s3"]),
                step("s2", "architect", "read_note", &["s1"]),
                step("s3", "architect", "read_note", &["s2"]),
            ]),
            "cycle (s1 → s3 → s2 → s1)",
        ),
        (
            json!({"steps": [{"id": "s1", "agent": "architect", "tool": "read_note", "arguments": [1]}]}).to_string(),
            "arguments must be a JSON object",
        ),
        (
            json!({"steps": [{"id": "s1", "agent": "architect", "tool": "read_note", "estimated_cost_usd": -1}]})
                .to_string(),
            "estimated_cost_usd must be",
        ),
    ];
    for (answer, expected) in cases {
        let e = parse(&answer).unwrap_err().to_string();
        assert!(e.contains(expected), "{expected:?} not in {e:?} (answer {answer})");
    }
}

#[test]
fn a_step_the_policy_denies_is_refused_at_planning() {
    let (agents, tools) = setup();
    let policy = RulePolicy {
        preset: Preset::Strict,
        rules: vec![Rule { tool: Some("wipe_*".into()), domain: None, entity: None, decision: Decision::Deny }],
    };
    let answer = plan_json(vec![step("s1", "architect", "wipe_disk", &[])]);
    let e = parse_plan(&answer, &agents, &tools, &policy).unwrap_err();
    assert!(e.0.contains("the policy denies 'wipe_disk'"), "{e}");
    assert!(policy.decide(&CallFacts::of(tools.get("read_note").unwrap().spec(), &json!({}))) == Decision::Allow);
}

#[test]
fn the_prompt_lists_each_agents_tools_with_effects_and_schemas_but_never_run_task() {
    let (agents, tools) = setup();
    let prompt = planner_prompt(&agents, &tools);
    assert!(prompt.contains("Reply with ONLY one JSON object"), "{prompt}");
    assert!(prompt.contains("- librarian: "), "{prompt}");
    assert!(prompt.contains("Tools: read_note, set_switch, wipe_disk\n"), "{prompt}");
    assert!(prompt.contains("- wipe_disk (destructive): The wipe_disk tool."), "{prompt}");
    assert!(prompt.contains(r#"arguments schema: {"properties":{"entity_id":{"type":"string"}},"type":"object"}"#));
    assert!(!prompt.contains(RUN_TASK), "{prompt}");
    assert_eq!(prompt.matches("- read_note (read)").count(), 1, "each tool is described once");
}

#[test]
fn the_rendered_plan_shows_every_step_and_the_parallel_order() {
    let plan = parse(&diamond()).unwrap();
    let text = render(&plan.steps);
    assert!(text.contains("s2  set_switch (mutate) by architect, after s1, est. $0.01"), "{text}");
    assert!(text.contains(r#"arguments: {"entity_id":"switch.heater"}"#), "{text}");
    assert!(text.ends_with("Order: s1 → s2 + s3 (in parallel)"), "{text}");
}

#[test]
fn effects_order_read_mutate_destructive() {
    assert_eq!(strongest(Effect::Read, Effect::Mutate), Effect::Mutate);
    assert_eq!(strongest(Effect::Destructive, Effect::Mutate), Effect::Destructive);
    assert_eq!(strongest(Effect::Read, Effect::Read), Effect::Read);
}

#[test]
fn titles_are_the_first_line_shortened() {
    assert_eq!(title_from("\n  warm up\nthe house"), "warm up");
    assert_eq!(title_from(&"x".repeat(70)).chars().count(), 61);
}
