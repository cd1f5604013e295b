//! Tasks, their steps and execution logs in SQL.
//!
//! Every status change is one conditional UPDATE (`… AND status = $from`),
//! so of a cancel and a finish racing on the same task exactly one takes
//! effect. A step is started (moved to `running`) in a transaction that
//! first touches its task's row only if the task is `running`: on
//! PostgreSQL that takes the row lock a concurrent cancel also takes, and
//! re-checks the status after it; on SQLite the transaction holds the
//! database's write lock. Either way, once a cancel has been recorded no new
//! step starts.

use sqlx::any::AnyRow;
use sqlx::Row;
use steward_core::store::{StepUpdate, TaskPlan, TaskTransition};
use steward_core::StoreError;
use steward_protocol::task::{ExecutionLog, LogLevel, StepStatus, Task, TaskStatus, TaskStep};
use steward_protocol::Effect;

use crate::{backoff, is_retryable, storable, SqlStore, WRITE_ATTEMPTS};

const TASK_COLUMNS: &str = "id, request, status, conversation_id, approval_id, plan_summary, estimated_cost_micros, \
error, created_by, created_at, updated_at, finished_at";

const STEP_COLUMNS: &str = "task_id, step_id, position, agent, tool, arguments, description, depends_on, effect, \
estimated_cost_micros, status, attempts, output, error, started_at, finished_at";

/// Dollars as stored: whole micro-dollars, as in the usage ledger.
fn micros(usd: f64) -> i64 {
    if usd.is_finite() {
        (usd * 1e6).round() as i64
    } else {
        0
    }
}

fn dollars(micros: i64) -> f64 {
    micros as f64 / 1e6
}

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map(|s| storable(&s))
        .map_err(|e| StoreError::Database(format!("encoding {what}: {e}")))
}

fn parse_effect(s: &str) -> Option<Effect> {
    match s {
        "read" => Some(Effect::Read),
        "mutate" => Some(Effect::Mutate),
        "destructive" => Some(Effect::Destructive),
        _ => None,
    }
}

/// `'a', 'b'` for an `IN (…)` list. The values are our own enum names,
/// never user text.
fn in_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

fn task_from_row(row: &AnyRow, steps: Vec<TaskStep>) -> Result<Task, StoreError> {
    let id: String = row.try_get("id").map_err(|e| StoreError::Corrupt(format!("task row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("task '{id}': {what}"));
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_text = |column: &str| row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(e.to_string()));
    let int = |column: &str| row.try_get::<i64, _>(column).map_err(|e| corrupt(e.to_string()));
    let status = text("status")?;
    let status = TaskStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status '{status}'")))?;
    Ok(Task {
        request: text("request")?,
        status,
        conversation_id: text("conversation_id")?,
        approval_id: opt_text("approval_id")?,
        plan_summary: opt_text("plan_summary")?,
        estimated_cost_usd: dollars(int("estimated_cost_micros")?),
        error: opt_text("error")?,
        created_by: text("created_by")?,
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        finished_at: row.try_get::<Option<i64>, _>("finished_at").map_err(|e| corrupt(e.to_string()))?,
        steps,
        id,
    })
}

fn step_from_row(row: &AnyRow) -> Result<TaskStep, StoreError> {
    let task: String = row.try_get("task_id").map_err(|e| StoreError::Corrupt(format!("task step row: {e}")))?;
    let id: String = row.try_get("step_id").map_err(|e| StoreError::Corrupt(format!("task step row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("step '{id}' of task '{task}': {what}"));
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_text = |column: &str| row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(e.to_string()));
    let int = |column: &str| row.try_get::<i64, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_int = |column: &str| row.try_get::<Option<i64>, _>(column).map_err(|e| corrupt(e.to_string()));
    let status = text("status")?;
    let status = StepStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status '{status}'")))?;
    let effect = text("effect")?;
    let effect = parse_effect(&effect).ok_or_else(|| corrupt(format!("unknown effect '{effect}'")))?;
    let arguments =
        serde_json::from_str(&text("arguments")?).map_err(|e| corrupt(format!("arguments is not JSON ({e})")))?;
    let depends_on: Vec<String> = serde_json::from_str(&text("depends_on")?)
        .map_err(|e| corrupt(format!("depends_on is not a JSON list of step ids ({e})")))?;
    Ok(TaskStep {
        agent: text("agent")?,
        tool: text("tool")?,
        arguments,
        description: text("description")?,
        depends_on,
        effect,
        estimated_cost_usd: dollars(int("estimated_cost_micros")?),
        status,
        attempts: u32::try_from(int("attempts")?).unwrap_or(u32::MAX),
        output: opt_text("output")?,
        error: opt_text("error")?,
        started_at: opt_int("started_at")?,
        finished_at: opt_int("finished_at")?,
        id,
    })
}

fn log_from_row(row: &AnyRow) -> Result<ExecutionLog, StoreError> {
    let get = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>("task_id")?,
            row.try_get::<i64, _>("seq")?,
            row.try_get::<Option<String>, _>("step_id")?,
            row.try_get::<String, _>("level")?,
            row.try_get::<String, _>("message")?,
            row.try_get::<i64, _>("created_at")?,
        ))
    };
    let (task_id, seq, step_id, level, message, created_at) =
        get().map_err(|e| StoreError::Corrupt(format!("execution log row: {e}")))?;
    let level = LogLevel::parse(&level).ok_or_else(|| {
        StoreError::Corrupt(format!("execution log {seq} of task '{task_id}': unknown level '{level}'"))
    })?;
    Ok(ExecutionLog { seq, task_id, step_id, level, message, created_at })
}

/// Why a write transaction did not go through.
enum WriteError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Sql(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl SqlStore {
    async fn insert_steps(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        task_id: &str,
        steps: &[TaskStep],
    ) -> Result<(), WriteError> {
        let sql = format!(
            "INSERT INTO task_steps ({STEP_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        for (position, s) in steps.iter().enumerate() {
            sqlx::query(&sql)
                .bind(task_id)
                .bind(storable(&s.id))
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(storable(&s.agent))
                .bind(storable(&s.tool))
                .bind(encode("step arguments", &s.arguments)?)
                .bind(storable(&s.description))
                .bind(encode("step dependencies", &s.depends_on)?)
                .bind(s.effect.as_str())
                .bind(micros(s.estimated_cost_usd))
                .bind(s.status.as_str())
                .bind(i64::from(s.attempts))
                .bind(s.output.as_deref().map(storable))
                .bind(s.error.as_deref().map(storable))
                .bind(s.started_at)
                .bind(s.finished_at)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn try_create_task(&self, t: &Task) -> Result<(), WriteError> {
        let mut tx = self.begin_write().await?;
        let sql =
            format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
        sqlx::query(&sql)
            .bind(&t.id)
            .bind(storable(&t.request))
            .bind(t.status.as_str())
            .bind(&t.conversation_id)
            .bind(t.approval_id.clone())
            .bind(t.plan_summary.as_deref().map(storable))
            .bind(micros(t.estimated_cost_usd))
            .bind(t.error.as_deref().map(storable))
            .bind(storable(&t.created_by))
            .bind(t.created_at)
            .bind(t.updated_at)
            .bind(t.finished_at)
            .execute(&mut *tx)
            .await?;
        self.insert_steps(&mut tx, &t.id, &t.steps).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_task(&self, t: &Task) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        self.try_create_task(t).await.map_err(|e| match e {
            WriteError::Store(e) => e,
            WriteError::Sql(e) => self.db_error(&format!("storing task '{}'", t.id), e),
        })
    }

    async fn select_steps(&self, task_id: &str) -> Result<Vec<TaskStep>, StoreError> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM task_steps WHERE task_id = $1 ORDER BY position");
        let rows = sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("reading the steps of task '{task_id}'"), e))?;
        rows.iter().map(step_from_row).collect()
    }

    async fn with_steps(&self, rows: &[AnyRow]) -> Result<Vec<Task>, StoreError> {
        let mut tasks = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(|e| StoreError::Corrupt(format!("task row: {e}")))?;
            let steps = self.select_steps(&id).await?;
            tasks.push(task_from_row(row, steps)?);
        }
        Ok(tasks)
    }

    pub(crate) async fn select_task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("reading task '{id}'"), e))?;
        match row {
            Some(row) => Ok(self.with_steps(&[row]).await?.pop()),
            None => Ok(None),
        }
    }

    pub(crate) async fn select_tasks(&self, limit: u32) -> Result<Vec<Task>, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing tasks", e))?;
        self.with_steps(&rows).await
    }

    pub(crate) async fn select_tasks_in(&self, statuses: &[TaskStatus], limit: u32) -> Result<Vec<Task>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ({}) ORDER BY created_at DESC, id DESC LIMIT $1",
            in_list(statuses.iter().map(|s| s.as_str()))
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing tasks by status", e))?;
        self.with_steps(&rows).await
    }

    async fn try_set_plan(&self, id: &str, plan: &TaskPlan) -> Result<bool, WriteError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tasks SET plan_summary = $1, estimated_cost_micros = $2, updated_at = $3 \
             WHERE id = $4 AND status = 'planning'",
        )
        .bind(storable(&plan.summary))
        .bind(micros(plan.estimated_cost_usd))
        .bind(plan.at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM task_steps WHERE task_id = $1").bind(id).execute(&mut *tx).await?;
        self.insert_steps(&mut tx, id, &plan.steps).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn update_task_plan(&self, id: &str, plan: &TaskPlan) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        self.try_set_plan(id, plan).await.map_err(|e| match e {
            WriteError::Store(e) => e,
            WriteError::Sql(e) => self.db_error(&format!("recording the plan of task '{id}'"), e),
        })
    }

    pub(crate) async fn update_task_status(
        &self,
        id: &str,
        from: TaskStatus,
        change: &TaskTransition,
    ) -> Result<bool, StoreError> {
        let finished_at = change.to.is_final().then_some(change.at);
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE tasks SET status = $1, updated_at = $2, error = COALESCE($3, error), \
             approval_id = COALESCE($4, approval_id), finished_at = COALESCE($5, finished_at) \
             WHERE id = $6 AND status = $7",
        )
        .bind(change.to.as_str())
        .bind(change.at)
        .bind(change.error.as_deref().map(storable))
        .bind(change.approval_id.clone())
        .bind(finished_at)
        .bind(id)
        .bind(from.as_str())
        .execute(self.pool())
        .await
        .map_err(|e| {
            self.db_error(&format!("moving task '{id}' from {} to {}", from.as_str(), change.to.as_str()), e)
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn try_update_step(
        &self,
        task_id: &str,
        step_id: &str,
        from: &[StepStatus],
        u: &StepUpdate,
    ) -> Result<bool, sqlx::Error> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        // Touching the task row first: a start needs the task running, and
        // takes the same row lock a cancel does.
        let task_sql = if u.status == StepStatus::Running {
            "UPDATE tasks SET updated_at = $1 WHERE id = $2 AND status = 'running'"
        } else {
            "UPDATE tasks SET updated_at = $1 WHERE id = $2"
        };
        let touched = sqlx::query(task_sql).bind(now).bind(task_id).execute(&mut *tx).await?;
        if touched.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let sql = format!(
            "UPDATE task_steps SET status = $1, attempts = COALESCE($2, attempts), output = COALESCE($3, output), \
             error = COALESCE($4, error), started_at = COALESCE($5, started_at), \
             finished_at = COALESCE($6, finished_at) WHERE task_id = $7 AND step_id = $8 AND status IN ({})",
            in_list(from.iter().map(|s| s.as_str()))
        );
        let done = sqlx::query(&sql)
            .bind(u.status.as_str())
            .bind(u.attempts.map(i64::from))
            .bind(u.output.as_deref().map(storable))
            .bind(u.error.as_deref().map(storable))
            .bind(u.started_at)
            .bind(u.finished_at)
            .bind(task_id)
            .bind(step_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn update_task_step(
        &self,
        task_id: &str,
        step_id: &str,
        from: &[StepStatus],
        update: &StepUpdate,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let operation = format!("moving step '{step_id}' of task '{task_id}' to {}", update.status.as_str());
        let _turn = self.write_turn().await;
        let mut attempt = 1;
        loop {
            match self.try_update_step(task_id, step_id, from, update).await {
                Ok(changed) => return Ok(changed),
                Err(e) if attempt < WRITE_ATTEMPTS && is_retryable(&e, self.backend) => {
                    tracing::debug!(attempt, error = %e, "{operation}: retrying after a write conflict");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.db_error(&operation, e)),
            }
        }
    }

    async fn try_append_log(
        &self,
        task_id: &str,
        step_id: Option<&str>,
        level: LogLevel,
        message: &str,
        now: i64,
    ) -> Result<ExecutionLog, WriteError> {
        let mut tx = self.begin_write().await?;
        // The row lock on the task serialises appenders on PostgreSQL, so
        // the MAX(seq) read next sees every committed line.
        let touched = sqlx::query("UPDATE tasks SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        // Or it is the log of an approved call run on its own, keyed by the
        // approval (a no-op update, for the same row lock).
        let touched = if touched.rows_affected() == 0 {
            sqlx::query("UPDATE approvals SET id = id WHERE id = $1").bind(task_id).execute(&mut *tx).await?
        } else {
            touched
        };
        if touched.rows_affected() == 0 {
            return Err(WriteError::Store(StoreError::Database(format!(
                "no task or approval '{task_id}'; cannot add to its execution log"
            ))));
        }
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_logs WHERE task_id = $1")
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        let message = storable(message);
        let step_id = step_id.map(storable);
        sqlx::query(
            "INSERT INTO execution_logs (task_id, seq, step_id, level, message, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(task_id)
        .bind(seq)
        .bind(step_id.clone())
        .bind(level.as_str())
        .bind(&message)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ExecutionLog { seq, task_id: task_id.to_string(), step_id, level, message, created_at: now })
    }

    pub(crate) async fn insert_execution_log(
        &self,
        task_id: &str,
        step_id: Option<&str>,
        level: LogLevel,
        message: &str,
    ) -> Result<ExecutionLog, StoreError> {
        let operation = format!("adding to the execution log of task '{task_id}'");
        let now = self.clock.now_ms();
        let _turn = self.write_turn().await;
        let mut attempt = 1;
        loop {
            match self.try_append_log(task_id, step_id, level, message, now).await {
                Ok(line) => return Ok(line),
                Err(WriteError::Store(e)) => return Err(e),
                Err(WriteError::Sql(e)) if attempt < WRITE_ATTEMPTS && is_retryable(&e, self.backend) => {
                    tracing::debug!(attempt, error = %e, "{operation}: retrying after a write conflict");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(WriteError::Sql(e)) => return Err(self.db_error(&operation, e)),
            }
        }
    }

    pub(crate) async fn select_execution_logs(&self, task_id: &str) -> Result<Vec<ExecutionLog>, StoreError> {
        let rows = sqlx::query(
            "SELECT task_id, seq, step_id, level, message, created_at FROM execution_logs \
             WHERE task_id = $1 ORDER BY seq",
        )
        .bind(task_id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db_error(&format!("reading the execution log of task '{task_id}'"), e))?;
        rows.iter().map(log_from_row).collect()
    }
}
