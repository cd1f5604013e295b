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
        let parameters = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The automation's id: lowercase letters, digits and _, e.g. \"porch_light_at_sunset\"."},
                "config": {"type": "object", "description": "The automation as Home Assistant's automation config API takes it: alias, description, triggers, conditions, actions, mode."}
            },
            "required": ["id", "config"],
            "additionalProperties": false
        });
        let mut tool = SaveAutomation {
            spec: spec(
                "save_automation",
                "Creates or replaces a Home Assistant automation. A person approves the change first, seeing the diff.",
                parameters,
                Effect::Mutate,
                Duration::from_secs(30),
                6 * 1024,
            ),
            home,
            changes,
        };
        tool.spec.domain = Some("automation".into());
        tool
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

fn pretty(config: &Value) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string())
}

fn file(id: &str) -> String {
    format!("automations/{id}.json")
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
        let args = arguments_object(arguments, &["id", "config"])?;
        let id = automation_id(&args)?;
        let config = args.get("config").filter(|c| c.is_object()).ok_or_else(|| {
            ToolError::InvalidArguments("`config` must be an object with triggers and actions".into())
        })?;
        let before = current(self.home.as_ref(), &id).await?;
        let alias = config.get("alias").and_then(Value::as_str).unwrap_or(&id);
        let (verb, state) = if before.is_some() { ("update", "exists") } else { ("create", "new") };
        let old = before.as_ref().map(pretty).unwrap_or_default();
        Ok(Preview {
            summary: format!("{verb} automation '{alias}' ({id})"),
            targets: vec![PreviewTarget {
                id: format!("automation config {id}"),
                name: Some(alias.to_string()),
                state: Some(state.into()),
            }],
            details: Some(line_diff(&file(&id), &old, &pretty(config))),
        })
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["id", "config"])?;
        let id = automation_id(&args)?;
        let config = args.get("config").cloned().unwrap_or(Value::Null);
        let saved = self.home.upsert_automation(&id, config.clone()).await.map_err(ToolError::from)?;
        let summary = format!("save automation {id}: {}", saved.alias);
        let files = vec![ChangedFile { path: file(&id), contents: Some(pretty(&config) + "\n") }];
        let recorded = record(&self.changes, ctx, summary, files).await;
        let mut out =
            json!({"saved": id, "alias": saved.alias, "entity_id": saved.entity_id, "enabled": saved.enabled});
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
            details: Some(line_diff(&file(&id), &pretty(&before), "")),
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
