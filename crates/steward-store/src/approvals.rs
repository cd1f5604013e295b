//! Approvals in SQL: every status change is one conditional UPDATE, so two
//! processes (or two requests) deciding the same approval cannot both win.

use sqlx::any::AnyRow;
use sqlx::Row;
use steward_core::{ApprovalDecision, ApprovalFilter, StoreError};
use steward_protocol::approval::{Approval, ApprovalScope, ApprovalStatus, Preview};
use steward_protocol::Effect;

use crate::{storable, SqlStore};

const COLUMNS: &str = "id, conversation_id, turn_id, agent, call_id, tool, arguments, effect, targets, preview, kind, \
status, created_at, expires_at, decided_by, decided_at, scope, idempotency_key, started_at, finished_at, outcome";

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

fn approval_from_row(row: &AnyRow) -> Result<Approval, StoreError> {
    let id: String = row.try_get("id").map_err(|e| StoreError::Corrupt(format!("approval row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("approval '{id}': {what}"));
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_text = |column: &str| row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(e.to_string()));
    let int = |column: &str| row.try_get::<i64, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_int = |column: &str| row.try_get::<Option<i64>, _>(column).map_err(|e| corrupt(e.to_string()));
    let json = |column: &str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&text(column)?).map_err(|e| corrupt(format!("{column} is not JSON ({e})")))
    };

    let status = text("status")?;
    let status = ApprovalStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status '{status}'")))?;
    let effect = text("effect")?;
    let effect = parse_effect(&effect).ok_or_else(|| corrupt(format!("unknown effect '{effect}'")))?;
    let scope = match opt_text("scope")? {
        None => None,
        Some(s) => Some(ApprovalScope::parse(&s).ok_or_else(|| corrupt(format!("unknown scope '{s}'")))?),
    };
    let targets: Vec<String> = serde_json::from_value(json("targets")?)
        .map_err(|e| corrupt(format!("targets is not a list of strings ({e})")))?;
    let preview: Preview =
        serde_json::from_value(json("preview")?).map_err(|e| corrupt(format!("preview has the wrong shape ({e})")))?;
    Ok(Approval {
        conversation_id: text("conversation_id")?,
        turn_id: text("turn_id")?,
        agent: text("agent")?,
        call_id: text("call_id")?,
        tool: text("tool")?,
        arguments: json("arguments")?,
        effect,
        targets,
        preview,
        status,
        kind: text("kind")?,
        created_at: int("created_at")?,
        expires_at: int("expires_at")?,
        decided_by: opt_text("decided_by")?,
        decided_at: opt_int("decided_at")?,
        scope,
        idempotency_key: text("idempotency_key")?,
        started_at: opt_int("started_at")?,
        finished_at: opt_int("finished_at")?,
        outcome: opt_text("outcome")?,
        id,
    })
}

impl SqlStore {
    pub(crate) async fn insert_approval(&self, a: &Approval) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        );
        let _turn = self.write_turn().await;
        sqlx::query(&sql)
            .bind(&a.id)
            .bind(&a.conversation_id)
            .bind(&a.turn_id)
            .bind(&a.agent)
            .bind(&a.call_id)
            .bind(&a.tool)
            .bind(encode("arguments", &a.arguments)?)
            .bind(a.effect.as_str())
            .bind(encode("targets", &a.targets)?)
            .bind(encode("preview", &a.preview)?)
            .bind(&a.kind)
            .bind(a.status.as_str())
            .bind(a.created_at)
            .bind(a.expires_at)
            .bind(a.decided_by.clone())
            .bind(a.decided_at)
            .bind(a.scope.map(|s| s.as_str()))
            .bind(&a.idempotency_key)
            .bind(a.started_at)
            .bind(a.finished_at)
            .bind(a.outcome.as_deref().map(storable))
            .execute(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("storing approval '{}'", a.id), e))?;
        Ok(())
    }

    pub(crate) async fn select_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("reading approval '{id}'"), e))?;
        row.as_ref().map(approval_from_row).transpose()
    }

    pub(crate) async fn select_approvals(
        &self,
        filter: &ApprovalFilter,
        limit: u32,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM approvals WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.status.is_some() {
            sql.push_str(&format!(" AND status = ${}", next()));
        }
        if filter.conversation_id.is_some() {
            sql.push_str(&format!(" AND conversation_id = ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", next()));
        let mut query = sqlx::query(&sql);
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(c) = &filter.conversation_id {
            query = query.bind(c.clone());
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing approvals", e))?;
        rows.iter().map(approval_from_row).collect()
    }

    pub(crate) async fn update_decision(&self, id: &str, d: &ApprovalDecision) -> Result<Option<Approval>, StoreError> {
        if !matches!(d.status, ApprovalStatus::Approved | ApprovalStatus::Rejected | ApprovalStatus::Expired) {
            return Err(StoreError::Database(format!(
                "deciding approval '{id}': '{}' is not a decision (approved, rejected or expired)",
                d.status.as_str()
            )));
        }
        let done = {
            let _turn = self.write_turn().await;
            // A person's decision also needs the approval not to have
            // expired by the time it is written.
            let sql = if d.status == ApprovalStatus::Expired {
                "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, scope = $4 \
                 WHERE id = $5 AND status = 'pending'"
            } else {
                "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, scope = $4 \
                 WHERE id = $5 AND status = 'pending' AND expires_at > $3"
            };
            sqlx::query(sql)
                .bind(d.status.as_str())
                .bind(storable(&d.decided_by))
                .bind(d.decided_at)
                .bind(d.scope.map(|s| s.as_str()))
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(|e| self.db_error(&format!("deciding approval '{id}'"), e))?
        };
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.select_approval(id).await
    }

    pub(crate) async fn update_claim(&self, id: &str, started_at: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE approvals SET started_at = $1 WHERE id = $2 AND status = 'approved' AND started_at IS NULL",
        )
        .bind(started_at)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.db_error(&format!("claiming approval '{id}' for execution"), e))?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn update_finish(
        &self,
        id: &str,
        status: ApprovalStatus,
        outcome: &str,
        finished_at: i64,
    ) -> Result<Option<Approval>, StoreError> {
        if !matches!(status, ApprovalStatus::Executed | ApprovalStatus::Failed) {
            return Err(StoreError::Database(format!(
                "finishing approval '{id}': '{}' is not an outcome (executed or failed)",
                status.as_str()
            )));
        }
        let done = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE approvals SET status = $1, outcome = $2, finished_at = $3 WHERE id = $4 AND status = 'approved'",
            )
            .bind(status.as_str())
            .bind(storable(outcome))
            .bind(finished_at)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("recording the outcome of approval '{id}'"), e))?
        };
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.select_approval(id).await
    }

    pub(crate) async fn select_grant(&self, conversation_id: &str, kind: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM approvals WHERE conversation_id = $1 AND kind = $2 AND scope = 'conversation' \
             AND status IN ('approved', 'executed', 'failed') LIMIT 1",
        )
        .bind(conversation_id)
        .bind(kind)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.db_error(&format!("reading the approvals of conversation '{conversation_id}'"), e))?;
        Ok(row.is_some())
    }
}
