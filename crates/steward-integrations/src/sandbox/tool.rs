//! `run_analysis_script`: a Python script the model writes, run in the
//! sandbox over the recorded history of some entities.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_core::home::{domain_of, parse_number, Home};
use steward_core::{Clock, Tool, ToolContext, ToolError, ToolSpec};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::{RunOutput, Sandbox, SandboxError};

const NAME: &str = "run_analysis_script";
const HOUR_MS: i64 = 3_600_000;
const DEFAULT_HOURS: f64 = 24.0;
/// A week: enough for daily patterns, small enough to stay a few MB of JSON.
const MAX_HOURS: f64 = 168.0;
const MAX_ENTITIES: usize = 20;
/// A longer script is not an analysis script.
const MAX_CODE_BYTES: usize = 100_000;
/// Characters of each stream quoted when a run was stopped at a limit.
const TAIL_CHARS: usize = 2_000;
/// The input file, in the script's working directory.
const DATA_FILE: &str = "data.json";

/// The tool. Its effect is decided once, from the sandbox found at
/// start-up: `read` in the sandbox (a script there cannot change anything
/// outside it), `mutate` when it would run without one, so that a person
/// approves every such run.
pub struct RunAnalysisScript {
    spec: ToolSpec,
    home: Arc<dyn Home>,
    clock: Arc<dyn Clock>,
    sandbox: Arc<Sandbox>,
}

impl RunAnalysisScript {
    pub fn new(home: Arc<dyn Home>, clock: Arc<dyn Clock>, sandbox: Arc<Sandbox>) -> Self {
        let config = sandbox.config();
        let (effect, place) = if sandbox.is_sandboxed() || !sandbox.can_run() {
            (
                Effect::Read,
                "It runs in a sandbox: no network, a read-only system, and a private working directory /tmp holding \
only /tmp/data.json. Files you write go to /tmp and vanish after the run.",
            )
        } else {
            (
                Effect::Mutate,
                "It runs WITHOUT a sandbox on the Steward host (allowed by configuration), so a person approves \
every run; do not touch anything but data.json in the working directory.",
            )
        };
        let description = format!(
            "Runs a Python 3 script you write over the recorded history of some entities, for analysis the other \
tools cannot do (correlations, regressions, custom statistics, comparisons across entities). {place} Only the \
standard library is guaranteed. Limits: {timeout} s wall clock, {cpu} s CPU, {mem} MB memory, {cap} bytes of \
output kept. Read the data with json.load(open('data.json')) (the working directory): {{\"start\": ms, \"end\": \
ms, \"entities\": {{\"<entity_id>\": {{\"name\": str, \"unit\": str or null, \"points\": [{{\"t\": ms since the \
epoch, \"state\": str, \"value\": number or null}}]}}}}}}. Points are oldest first, the first is the state at \
`start`; value is the state as a number, null for on/off, text, unavailable or unknown. Print a short result; \
the output comes back as JSON with stdout, stderr and exit_code.",
            timeout = config.timeout_secs,
            cpu = config.cpu_secs,
            mem = config.memory_mb,
            cap = config.output_cap_bytes,
        );
        let parameters = json!({
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The Python 3 script. It reads data.json and prints its findings."},
                "entity_ids": {
                    "type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_ENTITIES,
                    "description": "The entities whose history goes into data.json, e.g. [\"sensor.living_room_temperature\"] (at most 20)."
                },
                "hours": {"type": "number", "minimum": 1, "maximum": MAX_HOURS, "description": "How far back from now (default 24, at most 168)."}
            },
            "required": ["code", "entity_ids"],
            "additionalProperties": false
        });
        let spec = ToolSpec {
            name: NAME.into(),
            description,
            parameters,
            effect,
            // Beyond the sandbox's own clock: fetching the history, building
            // the sandbox, and the grace periods of stopping it.
            timeout: Duration::from_secs(config.timeout_secs.saturating_add(30)),
            output_cap: config.output_cap_bytes.saturating_mul(2).saturating_add(4096),
            // Its own domain, so that the `balanced` preset asks before an
            // unsandboxed run even when every entity is a light.
            domain: Some("python".into()),
        };
        RunAnalysisScript { spec, home, clock, sandbox }
    }
}

#[async_trait]
impl Tool for RunAnalysisScript {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = Args::parse(&arguments)?;
        // Refuse before fetching anything when there is nowhere to run.
        if !self.sandbox.can_run() {
            let why = self.sandbox.unavailable_reason().unwrap_or("unknown").to_string();
            return Err(ToolError::Failed(SandboxError::Unavailable(why).to_string()));
        }
        let end = self.clock.now_ms();
        let start = end - (args.hours * HOUR_MS as f64) as i64;
        let data = self.data(&args.entity_ids, start, end).await?;
        let files = [(DATA_FILE.to_string(), data.to_string().into_bytes())];
        match self.sandbox.run_python(&args.code, &files).await {
            Ok(output) => Ok(render(&output).to_string()),
            Err(e) => Err(ToolError::Failed(describe_failure(&e))),
        }
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let args = Args::parse(arguments)?;
        let how = if self.sandbox.is_sandboxed() { "in the sandbox" } else { "WITHOUT a sandbox, as Steward's user" };
        Ok(Preview {
            summary: format!(
                "run a model-written Python script {how} over the last {} h of {} entit{}",
                args.hours,
                args.entity_ids.len(),
                if args.entity_ids.len() == 1 { "y" } else { "ies" }
            ),
            targets: args
                .entity_ids
                .iter()
                .map(|id| PreviewTarget { id: id.clone(), ..PreviewTarget::default() })
                .collect(),
            details: Some(args.code),
        })
    }
}

impl RunAnalysisScript {
    /// `data.json`, as the description promises it.
    async fn data(&self, ids: &[String], start: i64, end: i64) -> Result<Value, ToolError> {
        let mut entities = Map::new();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let entity = self.home.entity(id).await.map_err(|e| match ToolError::from(e) {
                ToolError::InvalidArguments(m) => {
                    ToolError::InvalidArguments(format!("{m} Use discover_entities to find the right id."))
                }
                other @ ToolError::Failed(_) => other,
            })?;
            found.push(entity);
        }
        let histories = self.home.history(ids, start, end).await?;
        for entity in found {
            let points: Vec<Value> = histories
                .iter()
                .find(|h| h.entity_id == entity.entity_id)
                .map(|h| {
                    h.points
                        .iter()
                        .map(|p| json!({"t": p.at, "state": p.state, "value": parse_number(&p.state)}))
                        .collect()
                })
                .unwrap_or_default();
            entities.insert(
                entity.entity_id.clone(),
                json!({"name": entity.name, "unit": entity.unit(), "points": points}),
            );
        }
        Ok(json!({"start": start, "end": end, "entities": entities}))
    }
}

/// The tool's answer for a script that ran to its end.
fn render(output: &RunOutput) -> Value {
    json!({
        "sandboxed": output.sandboxed,
        "exit_code": output.exit_code,
        "stdout": output.stdout,
        "stderr": output.stderr,
        "truncated": output.truncated,
        "elapsed_ms": output.elapsed_ms,
    })
}

/// The error, and for a run stopped at a limit the end of what it printed,
/// which is where the model sees how far it got.
fn describe_failure(e: &SandboxError) -> String {
    let mut text = e.to_string();
    if let Some(output) = e.output() {
        for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let stream = stream.trim();
            if !stream.is_empty() {
                text.push_str(&format!("\n{name} (end):\n{}", tail(stream, TAIL_CHARS)));
            }
        }
    }
    text
}

fn tail(text: &str, chars: usize) -> &str {
    let count = text.chars().count();
    if count <= chars {
        return text;
    }
    let skip = text.char_indices().nth(count - chars).map(|(i, _)| i).unwrap_or(0);
    &text[skip..]
}

/// The checked arguments.
struct Args {
    code: String,
    entity_ids: Vec<String>,
    hours: f64,
}

impl Args {
    fn parse(arguments: &Value) -> Result<Args, ToolError> {
        let invalid = |m: String| ToolError::InvalidArguments(m);
        let Some(map) = arguments.as_object() else {
            return Err(invalid(format!("arguments must be a JSON object with code and entity_ids, not {arguments}")));
        };
        if let Some(unknown) = map.keys().find(|k| !["code", "entity_ids", "hours"].contains(&k.as_str())) {
            return Err(invalid(format!("unknown argument `{unknown}`; this tool takes: code, entity_ids, hours")));
        }
        let code = match map.get("code") {
            Some(Value::String(code)) if !code.trim().is_empty() => code.clone(),
            _ => return Err(invalid("`code` is required: the Python 3 script, as a string".into())),
        };
        if code.len() > MAX_CODE_BYTES {
            return Err(invalid(format!("`code` is {} bytes; keep the script under {MAX_CODE_BYTES}", code.len())));
        }
        let entity_ids = entity_ids(map.get("entity_ids"))?;
        let hours = match map.get("hours") {
            None | Some(Value::Null) => DEFAULT_HOURS,
            Some(v) => match v.as_f64() {
                Some(h) if (1.0..=MAX_HOURS).contains(&h) => h,
                _ => return Err(invalid(format!("`hours` must be a number from 1 to {MAX_HOURS}, not {v}"))),
            },
        };
        Ok(Args { code, entity_ids, hours })
    }
}

fn entity_ids(value: Option<&Value>) -> Result<Vec<String>, ToolError> {
    let invalid = |m: String| ToolError::InvalidArguments(m);
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::String(_)) => vec![one],
        None | Some(_) => {
            return Err(invalid(
                "`entity_ids` is required: a list of entity ids, e.g. [\"sensor.living_room_temperature\"]".into(),
            ))
        }
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let Some(id) = item.as_str().map(str::trim) else {
            return Err(invalid(format!("`entity_ids` must hold entity id strings, not {item}")));
        };
        if domain_of(id).is_none() {
            return Err(invalid(format!(
                "`{id}` is not an entity id; ids look like `sensor.kitchen_temperature` (find them with discover_entities)"
            )));
        }
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
    if ids.is_empty() || ids.len() > MAX_ENTITIES {
        return Err(invalid(format!("`entity_ids` names {} entities; give 1 to {MAX_ENTITIES}", ids.len())));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::PathBuf;

    use steward_core::SystemClock;

    use super::*;
    use crate::sandbox::SandboxConfig;
    use crate::DemoHome;

    fn ctx() -> ToolContext {
        ToolContext {
            turn_id: "t".into(),
            conversation_id: "c".into(),
            agent: "data-scientist".into(),
            call_id: "1".into(),
            approval: None,
            progress: None,
        }
    }

    async fn tool(allow_unsandboxed: bool) -> RunAnalysisScript {
        let config = SandboxConfig {
            allow_unsandboxed,
            bwrap_path: Some(PathBuf::from("/nonexistent/steward-test/bwrap")),
            timeout_secs: 10,
            ..SandboxConfig::default()
        };
        let sandbox = Arc::new(Sandbox::detect(&config).await);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        RunAnalysisScript::new(Arc::new(DemoHome::new(clock.clone())), clock, sandbox)
    }

    fn script_args() -> Value {
        json!({"code": "import json\nd = json.load(open('data.json'))\nprint(len(d['entities']))", "entity_ids": ["sensor.living_room_temperature"]})
    }

    #[tokio::test]
    async fn without_bwrap_and_without_permission_scripts_are_refused_with_the_reason() {
        let tool = tool(false).await;
        assert_eq!(tool.spec().effect, Effect::Read);
        let e = tool.call(script_args(), &ctx()).await.unwrap_err();
        let ToolError::Failed(message) = e else { panic!("{e:?}") };
        assert!(
            message.starts_with("refusing to run model-written code: no sandbox (bubblewrap not found"),
            "{message}"
        );
        assert!(message.contains("/nonexistent/steward-test/bwrap"), "{message}");
        assert!(message.contains("apt-get install bubblewrap"), "{message}");
        assert!(message.contains("[sandbox] allow_unsandboxed = true"), "{message}");
    }

    #[tokio::test]
    async fn allowed_to_run_without_a_sandbox_the_tool_asks_first_and_says_so() {
        let tool = tool(true).await;
        assert_eq!(tool.spec().effect, Effect::Mutate);
        assert!(tool.spec().description.contains("WITHOUT a sandbox"));
        let preview = tool.preview(&script_args(), &ctx()).await.unwrap();
        assert!(preview.summary.contains("WITHOUT a sandbox"), "{}", preview.summary);
        assert!(preview.details.unwrap_or_default().contains("json.load"));
        let out: Value = serde_json::from_str(&tool.call(script_args(), &ctx()).await.unwrap()).unwrap();
        assert_eq!(out["sandboxed"], json!(false));
        assert_eq!(out["exit_code"], json!(0), "{out}");
        assert_eq!(out["stdout"], json!("1\n"));
    }

    #[tokio::test]
    async fn bad_arguments_are_the_model_s_to_fix() {
        let tool = tool(false).await;
        for (args, expected) in [
            (json!({"entity_ids": ["sensor.x"]}), "`code` is required"),
            (json!({"code": "print(1)"}), "`entity_ids` is required"),
            (json!({"code": "print(1)", "entity_ids": ["kitchen"]}), "not an entity id"),
            (json!({"code": "print(1)", "entity_ids": ["sensor.x"], "hours": 500}), "from 1 to 168"),
            (json!({"code": "print(1)", "entity_ids": ["sensor.x"], "shell": true}), "unknown argument `shell`"),
        ] {
            match tool.call(args, &ctx()).await {
                Err(ToolError::InvalidArguments(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_tail_of_a_stream_is_cut_on_a_character_boundary() {
        assert_eq!(tail("abc", 5), "abc");
        assert_eq!(tail("ééé", 2), "éé");
    }
}
