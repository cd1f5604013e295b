//! `/ui/tasks`: each task with its plan — steps in dependency levels, each
//! step's status and output — its execution log, and a Cancel button.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use steward_protocol::task::{StepStatus, Task, TaskStatus, TaskStep};

use super::html::{badge, esc, json_pre, money, time_tag, url_encode};
use super::{html_response, layout, viewer};
use crate::AppState;

const SHOWN: u32 = 50;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/tasks") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let list = list(&state).await;
    if query.contains_key("fragment") {
        return html_response(StatusCode::OK, list);
    }
    let body = format!(
        "<p class=\"lead\">Requests that need several steps, planned as a graph and run in order. \
         <span class=\"live-status\" data-live-status></span></p>\
         <div id=\"tasks\" data-live-fragment=\"/ui/tasks?fragment=1\" data-live-events=\"task_updated\" data-after=\"{}\">{list}</div>",
        state.engine.activity().last_seq()
    );
    layout(&viewer, "/ui/tasks", "Tasks", &body)
}

async fn list(state: &AppState) -> String {
    let Some(tasks) = &state.tasks else {
        return "<p class=\"empty\">Tasks are not enabled on this server (it was started without a task runner).</p>"
            .into();
    };
    let list = match tasks.list(SHOWN).await {
        Ok(l) => l,
        Err(e) => return format!("<p class=\"error\">The tasks could not be read: {}</p>", esc(&e.to_string())),
    };
    if list.is_empty() {
        return "<p class=\"empty\">No tasks yet. <code>POST /api/requests</code> with a request that needs several \
                steps makes one.</p>"
            .into();
    }
    let mut out = String::new();
    for task in &list {
        let logs = tasks.logs(&task.id).await.unwrap_or_default();
        render(&mut out, task, &logs);
    }
    out
}

fn task_kind(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Succeeded => "ok",
        TaskStatus::Failed | TaskStatus::Rejected => "bad",
        TaskStatus::Cancelled => "muted",
        TaskStatus::Planning | TaskStatus::AwaitingApproval | TaskStatus::Running => "warn",
    }
}

fn step_kind(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "ok",
        StepStatus::Failed => "bad",
        StepStatus::Skipped | StepStatus::Cancelled => "muted",
        StepStatus::Pending | StepStatus::Running => "warn",
    }
}

/// Each step's level: 0 for steps that wait for nothing, else one more
/// than the deepest step it waits for. Unknown or cyclic dependencies
/// count as nothing (the planner refuses both; this only must not loop).
pub fn levels(steps: &[TaskStep]) -> Vec<usize> {
    let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut level: Vec<Option<usize>> = vec![None; steps.len()];
    fn visit(
        i: usize,
        steps: &[TaskStep],
        index: &HashMap<&str, usize>,
        level: &mut Vec<Option<usize>>,
        depth: usize,
    ) -> usize {
        if let Some(l) = level[i] {
            return l;
        }
        if depth > steps.len() {
            return 0;
        }
        let l = steps[i]
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .map(|d| visit(d, steps, index, level, depth + 1) + 1)
            .max()
            .unwrap_or(0);
        level[i] = Some(l);
        l
    }
    (0..steps.len()).map(|i| visit(i, steps, &index, &mut level, 0)).collect()
}

fn render(out: &mut String, task: &Task, logs: &[steward_protocol::task::ExecutionLog]) {
    let _ = write!(
        out,
        "<article class=\"card task\" data-task-id=\"{}\"><header><h3>{}</h3>{}</header>\
         <p class=\"meta\"><code>{}</code> · by {} · {} · estimated {} · <a href=\"/?c={}\">conversation</a></p>",
        esc(&task.id),
        esc(&task.request),
        badge(task_kind(task.status), task.status.as_str()),
        esc(&task.id),
        esc(&task.created_by),
        time_tag(task.created_at),
        money(task.estimated_cost_usd),
        esc(&url_encode(&task.conversation_id))
    );
    if let Some(summary) = &task.plan_summary {
        let _ = write!(out, "<p>{}</p>", esc(summary));
    }
    if let Some(error) = &task.error {
        let _ = write!(out, "<p class=\"error\">{}</p>", esc(error));
    }
    if let Some(approval) = &task.approval_id {
        if task.status == TaskStatus::AwaitingApproval {
            let _ = write!(
                out,
                "<p>The plan waits for approval <code>{}</code> — decide it on <a href=\"/ui/approvals\">Approvals</a>.</p>",
                esc(approval)
            );
        }
    }
    let level = levels(&task.steps);
    let depth = level.iter().copied().max().map(|m| m + 1).unwrap_or(0);
    out.push_str("<ol class=\"levels\">");
    for l in 0..depth {
        let _ = write!(out, "<li><span class=\"level\">Stage {}</span><ul class=\"steps\">", l + 1);
        for (step, _) in task.steps.iter().zip(&level).filter(|(_, sl)| **sl == l) {
            let after = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"after\">after: {}</span>", esc(&step.depends_on.join(", ")))
            };
            let _ = write!(
                out,
                "<li class=\"step\" data-step-id=\"{}\"><div><code>{}</code> {} <strong>{}</strong>{after}</div>\
                 <div class=\"meta\">{} · <code>{}</code> ({}) · attempts {}</div>",
                esc(&step.id),
                esc(&step.id),
                badge(step_kind(step.status), step.status.as_str()),
                esc(&step.description),
                esc(&step.agent),
                esc(&step.tool),
                esc(step.effect.as_str()),
                step.attempts
            );
            let _ = write!(out, "<details><summary>Arguments</summary>{}</details>", json_pre(&step.arguments));
            if let Some(output) = &step.output {
                let _ = write!(out, "<details><summary>Output</summary><pre>{}</pre></details>", esc(output));
            }
            if let Some(error) = &step.error {
                let _ = write!(out, "<p class=\"error\">{}</p>", esc(error));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ol>");
    if !logs.is_empty() {
        let _ = write!(out, "<details class=\"logs\"><summary>Execution log ({} lines)</summary><pre>", logs.len());
        for log in logs {
            let _ = writeln!(
                out,
                "{} {:5} {}{}",
                esc(&super::html::when(log.created_at)),
                log.level.as_str(),
                log.step_id.as_deref().map(|s| format!("[{}] ", esc(s))).unwrap_or_default(),
                esc(&log.message)
            );
        }
        out.push_str("</pre></details>");
    }
    if !task.status.is_final() {
        let _ = write!(
            out,
            "<div class=\"actions\"><button class=\"reject\" data-post=\"/api/requests/{}/cancel\">Cancel</button><span class=\"result\"></span></div>",
            esc(&url_encode(&task.id))
        );
    }
    out.push_str("</article>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_protocol::Effect;

    fn step(id: &str, deps: &[&str]) -> TaskStep {
        TaskStep {
            id: id.into(),
            agent: "architect".into(),
            tool: "t".into(),
            arguments: serde_json::json!({}),
            description: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            effect: Effect::Read,
            estimated_cost_usd: 0.0,
            status: StepStatus::Pending,
            attempts: 0,
            output: None,
            error: None,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn steps_fall_into_levels_by_their_dependencies() {
        let steps = [step("c", &["a", "b"]), step("a", &[]), step("b", &["a"]), step("d", &["a", "ghost"])];
        assert_eq!(levels(&steps), vec![2, 0, 1, 1]);
        // A cycle (which the planner refuses) does not loop.
        let cyclic = [step("x", &["y"]), step("y", &["x"])];
        assert_eq!(levels(&cyclic).len(), 2);
    }
}
