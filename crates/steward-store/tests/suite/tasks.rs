//! Tasks, steps and execution logs: stored and read back whole, every
//! status change conditional (one winner under concurrency), steps start
//! only while their task runs, log lines numbered without gaps.

use std::sync::Arc;

use serde_json::json;
use steward_core::store::{StepUpdate, TaskPlan, TaskTransition};
use steward_core::Store;
use steward_protocol::task::{LogLevel, StepStatus, Task, TaskStatus, TaskStep};
use steward_protocol::Effect;

use super::harness::{TestDb, T0};

backend_tests!(
    a_task_round_trips_with_its_steps,
    a_plan_is_recorded_only_while_planning,
    of_simultaneous_status_changes_one_wins,
    a_step_starts_only_while_its_task_runs,
    execution_logs_are_numbered_in_order_under_concurrency,
    recovery_finds_tasks_by_status,
);

fn step(id: &str, deps: &[&str], effect: Effect) -> TaskStep {
    TaskStep {
        id: id.into(),
        agent: "architect".into(),
        tool: "set_switch".into(),
        arguments: json!({"entity_id": "switch.heater", "note": "nul \u{0} inside"}),
        description: format!("step {id}"),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        effect,
        estimated_cost_usd: 0.015,
        status: StepStatus::Pending,
        attempts: 0,
        output: None,
        error: None,
        started_at: None,
        finished_at: None,
    }
}

fn task(id: &str, conversation: &str, status: TaskStatus, at: i64, steps: Vec<TaskStep>) -> Task {
    Task {
        id: id.into(),
        request: "warm up the house".into(),
        status,
        conversation_id: conversation.into(),
        approval_id: None,
        plan_summary: Some("Warm the house".into()),
        estimated_cost_usd: 0.045,
        error: None,
        created_by: "user:local".into(),
        created_at: at,
        updated_at: at,
        finished_at: None,
        steps,
    }
}

fn three_steps() -> Vec<TaskStep> {
    vec![step("s1", &[], Effect::Read), step("s2", &["s1"], Effect::Mutate), step("s3", &["s1"], Effect::Destructive)]
}

async fn conversation(db: &TestDb) -> String {
    db.store.create_conversation("architect", Some("task")).await.unwrap().id
}

async fn a_task_round_trips_with_its_steps(db: &TestDb) {
    let c = conversation(db).await;
    let t = task("task_000000000001", &c, TaskStatus::Running, T0, three_steps());
    db.store.create_task(&t).await.unwrap();
    let back = db.store.get_task(&t.id).await.unwrap().unwrap();
    // NUL survives as the JSON escape; costs come back as they went in.
    assert_eq!(back, t);
    assert!(db.store.get_task("task_missing").await.unwrap().is_none());
    // The same id twice is refused, not overwritten.
    assert!(db.store.create_task(&t).await.is_err());
    // A task belongs to a stored conversation.
    assert!(db.store.create_task(&task("task_000000000002", "nope", TaskStatus::Planning, T0, vec![])).await.is_err());
    // Listed newest first, with steps.
    let newer = task("task_000000000003", &c, TaskStatus::Planning, T0 + 10, vec![]);
    db.store.create_task(&newer).await.unwrap();
    let listed = db.store.list_tasks(10).await.unwrap();
    assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["task_000000000003", "task_000000000001"]);
    assert_eq!(listed[1].steps.len(), 3);
    assert_eq!(db.store.list_tasks(1).await.unwrap().len(), 1);
}

async fn a_plan_is_recorded_only_while_planning(db: &TestDb) {
    let c = conversation(db).await;
    let t = task("task_plan", &c, TaskStatus::Planning, T0, vec![]);
    db.store.create_task(&t).await.unwrap();
    let plan = TaskPlan { summary: "Do it".into(), estimated_cost_usd: 1.5, steps: three_steps(), at: T0 + 5 };
    assert!(db.store.set_task_plan(&t.id, &plan).await.unwrap());
    let back = db.store.get_task(&t.id).await.unwrap().unwrap();
    assert_eq!(back.steps, plan.steps);
    assert_eq!(back.plan_summary.as_deref(), Some("Do it"));
    assert_eq!(back.estimated_cost_usd, 1.5);
    assert_eq!(back.updated_at, T0 + 5);

    let mut to_wait = TaskTransition::to(TaskStatus::AwaitingApproval, T0 + 6);
    to_wait.approval_id = Some("apr_1".into());
    assert!(db.store.set_task_status(&t.id, TaskStatus::Planning, &to_wait).await.unwrap());
    // No longer planning: a second plan is refused and changes nothing.
    let other = TaskPlan { summary: "Other".into(), estimated_cost_usd: 0.0, steps: vec![], at: T0 + 7 };
    assert!(!db.store.set_task_plan(&t.id, &other).await.unwrap());
    let back = db.store.get_task(&t.id).await.unwrap().unwrap();
    assert_eq!(back.steps.len(), 3);
    assert_eq!(back.approval_id.as_deref(), Some("apr_1"));
    assert_eq!(back.status, TaskStatus::AwaitingApproval);
    assert_eq!(back.finished_at, None);
}

async fn of_simultaneous_status_changes_one_wins(db: &TestDb) {
    let c = conversation(db).await;
    let t = task("task_race", &c, TaskStatus::Running, T0, three_steps());
    db.store.create_task(&t).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(db.reopen().await);
    let mut racers = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let (to, error) = if n % 2 == 0 {
                (TaskStatus::Cancelled, format!("cancelled by racer {n}"))
            } else {
                (TaskStatus::Succeeded, String::new())
            };
            let mut change = TaskTransition::to(to, T0 + 100 + n);
            if !error.is_empty() {
                change.error = Some(error);
            }
            store.set_task_status("task_race", TaskStatus::Running, &change).await.unwrap()
        }));
    }
    let mut wins = 0;
    for r in racers {
        if r.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one change from running takes effect");
    let back = db.store.get_task("task_race").await.unwrap().unwrap();
    assert!(matches!(back.status, TaskStatus::Cancelled | TaskStatus::Succeeded));
    assert_eq!(back.status == TaskStatus::Cancelled, back.error.is_some());
    assert_eq!(back.finished_at, Some(back.updated_at), "a final status records when it ended");
    // An error already recorded is kept when a later change sets none.
    let failed = TaskTransition::to(TaskStatus::Failed, T0 + 200).with_error("boom");
    let t2 = task("task_err", &c, TaskStatus::Running, T0, vec![]);
    db.store.create_task(&t2).await.unwrap();
    assert!(db.store.set_task_status("task_err", TaskStatus::Running, &failed).await.unwrap());
    assert!(!db.store.set_task_status("task_err", TaskStatus::Running, &failed).await.unwrap());
    assert_eq!(db.store.get_task("task_err").await.unwrap().unwrap().error.as_deref(), Some("boom"));
}

async fn a_step_starts_only_while_its_task_runs(db: &TestDb) {
    let c = conversation(db).await;
    let t = task("task_steps", &c, TaskStatus::AwaitingApproval, T0, three_steps());
    db.store.create_task(&t).await.unwrap();
    let mut start = StepUpdate::to(StepStatus::Running);
    start.started_at = Some(T0 + 1);
    start.attempts = Some(1);
    assert!(!db.store.update_step(&t.id, "s1", &[StepStatus::Pending], &start).await.unwrap(), "not yet approved");

    let run = TaskTransition::to(TaskStatus::Running, T0 + 2);
    assert!(db.store.set_task_status(&t.id, TaskStatus::AwaitingApproval, &run).await.unwrap());
    assert!(db.store.update_step(&t.id, "s1", &[StepStatus::Pending], &start).await.unwrap());
    // Only from the expected status: a second start does nothing.
    assert!(!db.store.update_step(&t.id, "s1", &[StepStatus::Pending], &start).await.unwrap());
    assert!(!db.store.update_step(&t.id, "nope", &[StepStatus::Pending], &start).await.unwrap());

    let cancel = TaskTransition::to(TaskStatus::Cancelled, T0 + 3).with_error("cancelled by user:local");
    assert!(db.store.set_task_status(&t.id, TaskStatus::Running, &cancel).await.unwrap());
    // Cancelled: nothing new starts, not even a retry of a running step …
    assert!(!db.store.update_step(&t.id, "s2", &[StepStatus::Pending], &start).await.unwrap());
    let mut retry = StepUpdate::to(StepStatus::Running);
    retry.attempts = Some(2);
    assert!(!db.store.update_step(&t.id, "s1", &[StepStatus::Running], &retry).await.unwrap());
    // … but a step that was running still records how it ended.
    let mut done = StepUpdate::to(StepStatus::Succeeded);
    done.output = Some("switch.heater is now on".into());
    done.finished_at = Some(T0 + 4);
    assert!(db.store.update_step(&t.id, "s1", &[StepStatus::Running], &done).await.unwrap());
    let mut cancelled = StepUpdate::to(StepStatus::Cancelled);
    cancelled.error = Some("not run: the task was cancelled".into());
    for id in ["s2", "s3"] {
        assert!(db.store.update_step(&t.id, id, &[StepStatus::Pending], &cancelled).await.unwrap());
    }
    let back = db.store.get_task(&t.id).await.unwrap().unwrap();
    let s1 = &back.steps[0];
    assert_eq!(
        (s1.status, s1.attempts, s1.output.as_deref(), s1.started_at, s1.finished_at),
        (StepStatus::Succeeded, 1, Some("switch.heater is now on"), Some(T0 + 1), Some(T0 + 4)),
        "unset fields keep their value"
    );
    assert_eq!(back.steps[1].status, StepStatus::Cancelled);
    assert_eq!(back.steps[2].error.as_deref(), Some("not run: the task was cancelled"));
    assert_eq!(back.status, TaskStatus::Cancelled);
}

async fn execution_logs_are_numbered_in_order_under_concurrency(db: &TestDb) {
    let c = conversation(db).await;
    db.store.create_task(&task("task_logs", &c, TaskStatus::Running, T0, three_steps())).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(db.reopen().await);
    let mut writers = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let step = if n % 2 == 0 { Some("s2") } else { None };
            store.append_execution_log("task_logs", step, LogLevel::Info, &format!("line {n}")).await.unwrap()
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    db.store.append_execution_log("task_logs", Some("s3"), LogLevel::Error, "attempt 1 failed: x\u{0}y").await.unwrap();
    let logs = db.store.list_execution_logs("task_logs").await.unwrap();
    assert_eq!(logs.iter().map(|l| l.seq).collect::<Vec<_>>(), (1..=17).collect::<Vec<i64>>());
    assert_eq!(logs.iter().filter(|l| l.step_id.as_deref() == Some("s2")).count(), 8);
    let last = logs.last().unwrap();
    assert_eq!(
        (last.level, last.message.as_str(), last.created_at),
        (LogLevel::Error, "attempt 1 failed: x\u{FFFD}y", T0)
    );
    assert!(db.store.append_execution_log("task_missing", None, LogLevel::Info, "x").await.is_err());
    assert!(db.store.list_execution_logs("task_missing").await.unwrap().is_empty());
}

async fn recovery_finds_tasks_by_status(db: &TestDb) {
    let c = conversation(db).await;
    for (n, status) in
        [TaskStatus::Running, TaskStatus::Succeeded, TaskStatus::Planning, TaskStatus::Running].into_iter().enumerate()
    {
        db.store.create_task(&task(&format!("task_{n}"), &c, status, T0 + n as i64, vec![])).await.unwrap();
    }
    let found = db.store.tasks_in_status(&[TaskStatus::Running, TaskStatus::Planning], 10).await.unwrap();
    assert_eq!(found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["task_3", "task_2", "task_0"]);
    assert_eq!(db.store.tasks_in_status(&[TaskStatus::Running], 1).await.unwrap()[0].id, "task_3");
    assert!(db.store.tasks_in_status(&[], 10).await.unwrap().is_empty());
}
