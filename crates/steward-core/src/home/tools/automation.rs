//! `save_automation` and `delete_automation`: write a Home Assistant
//! automation through the home's automation config API.
//!
//! Both change the house's configuration, so both are `mutate`: the policy
//! asks, and the approval's preview is the diff between the automation as
//! it is and as it would be. Once applied, the change is handed to the
//! [`ChangeRecorder`] (git audit) when one is configured.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::{arguments_object, required_str, spec};
use crate::changes::{AppliedChange, ChangeRecorder, ChangedFile};
use crate::home::automation_check::{check_automation, parse_automation_yaml, to_yaml, CheckedAutomation};
use crate::home::{Home, HomeError};
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};

/// Lines of diff a preview shows at most.
const DIFF_LINES: usize = 200;

pub struct SaveAutomation {
    spec: ToolSpec,
    home: Arc<dyn Home>,
    changes: Option<Arc<dyn ChangeRecorder>>,
}

pub struct DeleteAutomation {
    spec: ToolSpec,
    home: Arc<dyn Home>,
    changes: Option<Arc<dyn ChangeRecorder>>,
}

impl SaveAutomation {
    pub fn new(home: Arc<dyn Home>, changes: Option<Arc<dyn ChangeRecorder>>) -> Self {
        let mut tool = SaveAutomation {
            spec: spec(
                "save_automation",
                "Creates or replaces a Home Assistant automation, written as YAML (preferred) or as a JSON config. \
It is checked first (valid YAML, well-formed triggers/conditions/actions, every entity exists, Home Assistant's \
own validation); a person then approves the change, seeing the YAML (or the diff when it replaces one). After \
approval it is deployed, confirmed loaded, and rolled back if it does not load.",
                automation_parameters(true),
                Effect::Mutate,
                Duration::from_secs(45),
                6 * 1024,
            ),
            home,
            changes,
        };
        tool.spec.domain = Some("automation".into());
        tool
    }

    /// The checked automation and the one it replaces, if any.
    async fn prepare(&self, arguments: &Value) -> Result<(String, CheckedAutomation, Option<Value>), ToolError> {
        let args = arguments_object(arguments, &["id", "yaml", "config"])?;
        let id = automation_id(&args)?;
        let config = draft_config(&args)?;
        let checked = check_automation(self.home.as_ref(), config).await.map_err(refusal)?;
        let before = current(self.home.as_ref(), &id).await?;
        Ok((id, checked, before))
    }
}

/// The JSON Schema shared by `save_automation` and `validate_automation`.
fn automation_parameters(with_id: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "yaml": {"type": "string", "description": "The automation as Home Assistant YAML: alias, description, triggers (each with `trigger:`), conditions, actions (e.g. `action: light.turn_on` with a `target`), mode."},
            "config": {"type": "object", "description": "The same automation as a JSON object, instead of `yaml`."}
        },
        "additionalProperties": false
    });
    if with_id {
        schema["properties"]["id"] = json!({"type": "string", "description": "The automation's id: lowercase letters, digits and _, e.g. \"porch_light_at_sunset\"."});
        schema["required"] = json!(["id"]);
    }
    schema
}

/// The automation from `yaml` or `config` (exactly one of them).
fn draft_config(args: &serde_json::Map<String, Value>) -> Result<Value, ToolError> {
    match (args.get("yaml"), args.get("config")) {
        (Some(Value::String(text)), None) => parse_automation_yaml(text).map_err(ToolError::InvalidArguments),
        (None, Some(config @ Value::Object(_))) => Ok(config.clone()),
        (Some(_), Some(_)) => Err(ToolError::InvalidArguments("send either `yaml` or `config`, not both".into())),
        (None, None) => Err(ToolError::InvalidArguments(
            "`yaml` is required: the automation as Home Assistant YAML (alias, triggers, conditions, actions)".into(),
        )),
        (Some(other), None) => Err(ToolError::InvalidArguments(format!("`yaml` must be text, not {other}"))),
        (None, Some(other)) => Err(ToolError::InvalidArguments(format!("`config` must be an object, not {other}"))),
    }
}

/// The checks' findings as one message the model can act on.
fn refusal(errors: Vec<String>) -> ToolError {
    ToolError::InvalidArguments(format!(
        "the automation was not accepted; fix these and try again:\n- {}",
        errors.join("\n- ")
    ))
}

/// `validate_automation`: the checks of `save_automation` without saving.
pub struct ValidateAutomation {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

impl ValidateAutomation {
    pub fn new(home: Arc<dyn Home>) -> Self {
        ValidateAutomation {
            spec: spec(
                "validate_automation",
                "Checks an automation without saving it: valid YAML, well-formed triggers/conditions/actions, every \
entity exists, and Home Assistant's own validation. Returns the problems, or the YAML as it would be saved.",
                automation_parameters(false),
                Effect::Read,
                Duration::from_secs(20),
                6 * 1024,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for ValidateAutomation {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["yaml", "config"])?;
        let config = match draft_config(&args) {
            Ok(c) => c,
            Err(ToolError::InvalidArguments(m)) => return Ok(json!({"valid": false, "errors": [m]}).to_string()),
            Err(e) => return Err(e),
        };
        Ok(match check_automation(self.home.as_ref(), config).await {
            Ok(checked) => json!({"valid": true, "entities": checked.entities, "yaml": checked.yaml}),
            Err(errors) => json!({"valid": false, "errors": errors}),
        }
        .to_string())
    }
}

impl DeleteAutomation {
    pub fn new(home: Arc<dyn Home>, changes: Option<Arc<dyn ChangeRecorder>>) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The automation's id."}},
            "required": ["id"],
            "additionalProperties": false
        });
        let mut tool = DeleteAutomation {
            spec: spec(
                "delete_automation",
                "Deletes a Home Assistant automation. A person approves the change first.",
                parameters,
                Effect::Destructive,
                Duration::from_secs(30),
                2 * 1024,
            ),
            home,
            changes,
        };
        tool.spec.domain = Some("automation".into());
        tool
    }
}

fn automation_id(args: &serde_json::Map<String, Value>) -> Result<String, ToolError> {
    let id = required_str(args, "id", "porch_light_at_sunset")?;
    let ok = !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(ToolError::InvalidArguments(format!(
            "automation id '{id}' must be 1–100 letters, digits or _ (it names a file and a config entry)"
        )));
    }
    Ok(id.to_string())
}

/// The automation's current config, or `None` when there is none.
async fn current(home: &dyn Home, id: &str) -> Result<Option<Value>, ToolError> {
    match home.automation(id).await {
        Ok(a) => Ok(Some(a.config)),
        Err(HomeError::NotFound { .. }) => Ok(None),
        Err(e) => Err(ToolError::Failed(e.to_string())),
    }
}

fn file(id: &str) -> String {
    format!("automations/{id}.yaml")
}

/// A line diff of `before` and `after` (longest common subsequence), each
/// line prefixed by ` `, `-` or `+`, under `---`/`+++` headers.
pub fn line_diff(name: &str, before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = vec![format!("--- {name}"), format!("+++ {name}")];
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    if out.len() > DIFF_LINES + 2 {
        let more = out.len() - DIFF_LINES - 2;
        out.truncate(DIFF_LINES + 2);
        out.push(format!("… {more} more lines"));
    }
    out.join("\n")
}

/// Hands an applied change to the recorder; says in the output what happened.
async fn record(
    changes: &Option<Arc<dyn ChangeRecorder>>,
    ctx: &ToolContext,
    summary: String,
    files: Vec<ChangedFile>,
) -> Value {
    let Some(recorder) = changes else { return Value::Null };
    let reference = ctx.approval.as_ref().map(|a| a.id.clone()).unwrap_or_else(|| ctx.turn_id.clone());
    match recorder.record(&AppliedChange { reference, summary, files }).await {
        Ok(Some(commit)) => json!({"commit": commit}),
        Ok(None) => json!({"commit": null, "note": "the audit repository already had this content"}),
        Err(e) => {
            tracing::warn!(error = %e, "the change was applied but could not be recorded in the audit repository");
            json!({"error": format!("applied, but not recorded in the audit repository: {e}")})
        }
    }
}

#[async_trait]
impl Tool for SaveAutomation {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let (id, checked, before) = self.prepare(arguments).await?;
        let alias = checked.config.get("alias").and_then(Value::as_str).unwrap_or(&id).to_string();
        let (summary, state, details) = match &before {
            Some(old) => (
                format!("update automation '{alias}' ({id})"),
                "exists",
                line_diff(&file(&id), &to_yaml(old), &checked.yaml),
            ),
            None => {
                (format!("create automation '{alias}' ({id})"), "new", format!("# {}\n{}", file(&id), checked.yaml))
            }
        };
        let mut targets =
            vec![PreviewTarget { id: format!("automation config {id}"), name: Some(alias), state: Some(state.into()) }];
        targets.extend(checked.entities.iter().map(|e| PreviewTarget { id: e.clone(), name: None, state: None }));
        Ok(Preview { summary, targets, details: Some(details) })
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let (id, checked, before) = self.prepare(&arguments).await?;
        let saved = match self.home.upsert_automation(&id, checked.config.clone()).await {
            Ok(saved) => saved,
            // Refused before anything was written.
            Err(e @ HomeError::InvalidRequest { .. }) => {
                return Err(ToolError::InvalidArguments(format!("automation {id} was not saved: {e}")))
            }
            Err(e) => {
                // It may be written but did not load: put back what was there before.
                let rollback = match &before {
                    Some(old) => {
                        self.home.upsert_automation(&id, old.clone()).await.map(|_| "restored the previous version")
                    }
                    None => match self.home.delete_automation(&id).await {
                        Ok(()) | Err(HomeError::NotFound { .. }) => Ok("removed the new automation again"),
                        Err(e) => Err(e),
                    },
                };
                let rolled = match rollback {
                    Ok(what) => format!("rolled back: {what}"),
                    Err(r) => format!("the rollback failed too ({r}); check automation {id} in Home Assistant"),
                };
                return Err(ToolError::Failed(format!("automation {id} was not deployed: {e}; {rolled}")));
            }
        };
        let summary = format!("save automation {id}: {}", saved.alias);
        let files = vec![ChangedFile { path: file(&id), contents: Some(checked.yaml.clone()) }];
        let recorded = record(&self.changes, ctx, summary, files).await;
        let mut out = json!({
            "saved": id,
            "alias": saved.alias,
            "entity_id": saved.entity_id,
            "enabled": saved.enabled,
            "loaded": true,
            "replaced": before.is_some(),
        });
        if !recorded.is_null() {
            out["audit"] = recorded;
        }
        Ok(out.to_string())
    }
}

#[async_trait]
impl Tool for DeleteAutomation {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let args = arguments_object(arguments, &["id"])?;
        let id = automation_id(&args)?;
        let Some(before) = current(self.home.as_ref(), &id).await? else {
            return Err(ToolError::InvalidArguments(format!("there is no automation '{id}' to delete")));
        };
        let alias = before.get("alias").and_then(Value::as_str).unwrap_or(&id).to_string();
        Ok(Preview {
            summary: format!("delete automation '{alias}' ({id})"),
            targets: vec![PreviewTarget {
                id: format!("automation config {id}"),
                name: Some(alias),
                state: Some("exists".into()),
            }],
            details: Some(line_diff(&file(&id), &to_yaml(&before), "")),
        })
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["id"])?;
        let id = automation_id(&args)?;
        self.home.delete_automation(&id).await.map_err(ToolError::from)?;
        let recorded = record(
            &self.changes,
            ctx,
            format!("delete automation {id}"),
            vec![ChangedFile { path: file(&id), contents: None }],
        )
        .await;
        let mut out = json!({"deleted": id});
        if !recorded.is_null() {
            out["audit"] = recorded;
        }
        Ok(out.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_removed_and_added_lines_in_order() {
        let d = line_diff("f", "a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(d, "--- f\n+++ f\n a\n-b\n+x\n c\n+d");
        assert_eq!(line_diff("f", "", "a"), "--- f\n+++ f\n+a");
        assert_eq!(line_diff("f", "a", ""), "--- f\n+++ f\n-a");
    }
}
