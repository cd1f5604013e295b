//! Snapshots in SQL: one row per snapshot with its summary and its body as
//! JSON text (see `steward_core::snapshots`).
//!
//! A save reads the memory and writes the snapshot in one transaction, and
//! a load reads the snapshot, saves the memory it replaces as the backup
//! and replaces it, all in one transaction: a failure anywhere leaves the
//! old state and every snapshot as they were.
//!
//! A load never deletes a row an approval or a task refers to (their
//! foreign keys cascade): a conversation in both the live state and the
//! snapshot is updated in place rather than deleted and inserted again, and
//! one the snapshot lacks that an approval or a task refers to is kept.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use steward_core::snapshots::{
    Loaded, Memory, SaveOutcome, SavedConversation, SavedMessage, Snapshot, SnapshotBody, SnapshotSpec,
    SnapshotSummary, StateCounts,
};
use steward_core::StoreError;

use crate::insights::{insight_from_row, write_insight, COLUMNS as INSIGHT_COLUMNS};
use crate::{conversation_from_row, message_from_row, storable, SqlStore};

type Tx = Transaction<'static, Any>;

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("encoding {what}: {e}")))
}

fn corrupt(name: &str, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("snapshot '{name}': {what} ({e})"))
}

/// A snapshot row's summary and, when selected, body.
fn snapshot_from_row(row: &AnyRow) -> Result<(SnapshotSummary, Option<SnapshotBody>), StoreError> {
    let name: String = row.try_get("name").map_err(|e| StoreError::Corrupt(format!("snapshot row: {e}")))?;
    let summary: String = row.try_get("summary").map_err(|e| corrupt(&name, "summary", e))?;
    let summary = serde_json::from_str(&summary).map_err(|e| corrupt(&name, "summary is not a summary", e))?;
    let body = match row.try_get::<String, _>("body") {
        Ok(body) => Some(serde_json::from_str(&body).map_err(|e| corrupt(&name, "body has the wrong shape", e))?),
        Err(sqlx::Error::ColumnNotFound(_)) => None,
        Err(e) => return Err(corrupt(&name, "body", e)),
    };
    Ok((summary, body))
}

impl SqlStore {
    fn sql_failed<'a>(&'a self, operation: &'a str) -> impl Fn(sqlx::Error) -> StoreError + 'a {
        move |e| self.db_error(operation, e)
    }

    /// Every conversation with its messages, and every insight, as the
    /// transaction sees them.
    async fn read_memory(&self, tx: &mut Tx) -> Result<Memory, StoreError> {
        let failed = self.sql_failed("reading the memory for a snapshot");
        let rows = sqlx::query(
            "SELECT id, agent, title, created_at, updated_at, debug, client_fingerprint FROM conversations \
             ORDER BY created_at, id",
        )
        .fetch_all(&mut **tx)
        .await
        .map_err(&failed)?;
        let mut conversations = Vec::with_capacity(rows.len());
        let mut index = BTreeMap::new();
        for row in &rows {
            let conversation = conversation_from_row(row)?;
            let client_fingerprint = row
                .try_get::<Option<String>, _>("client_fingerprint")
                .map_err(|e| StoreError::Corrupt(format!("conversation '{}': {e}", conversation.id)))?;
            index.insert(conversation.id.clone(), conversations.len());
            conversations.push(SavedConversation { conversation, client_fingerprint, messages: Vec::new() });
        }
        let rows = sqlx::query(
            "SELECT id, conversation_id, seq, role, content, tool_calls, tool_call_id, name, turn_id, created_at \
             FROM messages ORDER BY conversation_id, seq",
        )
        .fetch_all(&mut **tx)
        .await
        .map_err(&failed)?;
        for row in &rows {
            let message = message_from_row(row)?;
            let turn_id = row
                .try_get::<Option<String>, _>("turn_id")
                .map_err(|e| StoreError::Corrupt(format!("message '{}': {e}", message.id)))?;
            // The foreign key keeps every message's conversation present.
            if let Some(&i) = index.get(&message.conversation_id) {
                conversations[i].messages.push(SavedMessage { message, turn_id });
            }
        }
        let sql = format!("SELECT {INSIGHT_COLUMNS} FROM insights ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&mut **tx).await.map_err(&failed)?;
        let insights = rows.iter().map(insight_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Memory { conversations, insights })
    }

    /// Writes `snapshot`, replacing one of the same name when `replace`;
    /// `false` when one existed and was kept.
    async fn write_snapshot(&self, tx: &mut Tx, snapshot: &Snapshot, replace: bool) -> Result<bool, StoreError> {
        let summary = json("the snapshot's summary", &snapshot.summary)?;
        let body = json("the snapshot", &snapshot.body)?;
        let on_conflict = if replace {
            "DO UPDATE SET created_at = excluded.created_at, created_by = excluded.created_by, \
             summary = excluded.summary, body = excluded.body"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO snapshots (name, created_at, created_by, summary, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) {on_conflict}"
        );
        let done = sqlx::query(&sql)
            .bind(&snapshot.summary.name)
            .bind(snapshot.summary.created_at)
            .bind(storable(&snapshot.summary.created_by))
            .bind(summary)
            .bind(body)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.db_error(&format!("saving snapshot '{}'", snapshot.summary.name), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn snapshot_exists(&self, tx: &mut Tx, name: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT name FROM snapshots WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.db_error(&format!("looking up snapshot '{name}'"), e))?;
        Ok(row.is_some())
    }

    pub(crate) async fn count_memory(&self) -> Result<StateCounts, StoreError> {
        let mut counts = [0u64; 3];
        for (i, table) in ["conversations", "messages", "insights"].iter().enumerate() {
            let n: i64 = sqlx::query_scalar(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"))
                .fetch_one(self.pool())
                .await
                .map_err(|e| self.db_error(&format!("counting {table}"), e))?;
            counts[i] = u64::try_from(n).unwrap_or(0);
        }
        Ok(StateCounts { conversations: counts[0], messages: counts[1], insights: counts[2], entities: 0 })
    }

    pub(crate) async fn insert_snapshot(&self, spec: &SnapshotSpec, replace: bool) -> Result<SaveOutcome, StoreError> {
        let operation = format!("saving snapshot '{}'", spec.name);
        let failed = self.sql_failed(&operation);
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await.map_err(&failed)?;
        let existed = self.snapshot_exists(&mut tx, &spec.name).await?;
        if existed && !replace {
            tx.rollback().await.map_err(&failed)?;
            return Ok(SaveOutcome::Exists);
        }
        let snapshot = Snapshot::new(spec, self.read_memory(&mut tx).await?);
        if !self.write_snapshot(&mut tx, &snapshot, replace).await? {
            // Saved by someone else since we looked.
            tx.rollback().await.map_err(&failed)?;
            return Ok(SaveOutcome::Exists);
        }
        tx.commit().await.map_err(&failed)?;
        Ok(if existed { SaveOutcome::Replaced(snapshot.summary) } else { SaveOutcome::Created(snapshot.summary) })
    }

    pub(crate) async fn select_snapshots(&self) -> Result<Vec<SnapshotSummary>, StoreError> {
        let rows = sqlx::query("SELECT name, summary FROM snapshots ORDER BY created_at DESC, name DESC")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing snapshots", e))?;
        rows.iter().map(|row| snapshot_from_row(row).map(|(summary, _)| summary)).collect()
    }

    pub(crate) async fn select_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query("SELECT name, summary, body FROM snapshots WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("reading snapshot '{name}'"), e))?;
        match row {
            None => Ok(None),
            Some(row) => match snapshot_from_row(&row)? {
                (summary, Some(body)) => Ok(Some(Snapshot { summary, body })),
                (_, None) => Err(StoreError::Corrupt(format!("snapshot '{name}' has no body"))),
            },
        }
    }

    pub(crate) async fn restore_snapshot(
        &self,
        name: &str,
        backup: &SnapshotSpec,
    ) -> Result<Option<Loaded>, StoreError> {
        let operation = format!("loading snapshot '{name}'");
        let failed = self.sql_failed(&operation);
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await.map_err(&failed)?;
        let row = sqlx::query("SELECT name, summary, body FROM snapshots WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&failed)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(&failed)?;
            return Ok(None);
        };
        let snapshot = match snapshot_from_row(&row)? {
            (summary, Some(body)) => Snapshot { summary, body },
            (_, None) => return Err(StoreError::Corrupt(format!("snapshot '{name}' has no body"))),
        };

        // The backup first, under a name nobody has taken.
        let current = self.read_memory(&mut tx).await?;
        let live: Vec<String> = current.conversations.iter().map(|c| c.conversation.id.clone()).collect();
        let mut backup_name = backup.name.clone();
        let mut n = 1;
        while self.snapshot_exists(&mut tx, &backup_name).await? {
            n += 1;
            backup_name = format!("{}-{n}", backup.name);
        }
        let backup = Snapshot::new(&SnapshotSpec { name: backup_name, ..backup.clone() }, current);
        if !self.write_snapshot(&mut tx, &backup, false).await? {
            return Err(StoreError::Database(format!(
                "{operation}: the backup '{}' could not be saved; try again",
                backup.summary.name
            )));
        }

        let kept = self.replace_memory(&mut tx, &snapshot.body.memory, &live).await?;
        tx.commit().await.map_err(&failed)?;
        Ok(Some(Loaded { snapshot, backup: backup.summary, kept_conversations: kept }))
    }

    /// Makes the memory `memory`; returns the conversations kept because an
    /// approval or a task refers to them.
    async fn replace_memory(&self, tx: &mut Tx, memory: &Memory, live: &[String]) -> Result<Vec<String>, StoreError> {
        let failed = self.sql_failed("replacing the memory with a snapshot's");
        let referenced: BTreeSet<String> =
            sqlx::query_scalar("SELECT conversation_id FROM approvals UNION SELECT conversation_id FROM tasks")
                .fetch_all(&mut **tx)
                .await
                .map_err(&failed)?
                .into_iter()
                .collect();
        let wanted: BTreeMap<&str, &SavedConversation> =
            memory.conversations.iter().map(|c| (c.conversation.id.as_str(), c)).collect();

        sqlx::query("DELETE FROM insight_entities").execute(&mut **tx).await.map_err(&failed)?;
        sqlx::query("DELETE FROM insights").execute(&mut **tx).await.map_err(&failed)?;

        let mut kept = Vec::new();
        for id in live {
            let in_snapshot = wanted.contains_key(id.as_str());
            if !in_snapshot && referenced.contains(id) {
                kept.push(id.clone());
                continue;
            }
            sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(&failed)?;
            if !in_snapshot {
                sqlx::query("DELETE FROM conversations WHERE id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .map_err(&failed)?;
            }
        }

        for saved in &memory.conversations {
            let c = &saved.conversation;
            let sql = if live.contains(&c.id) {
                "UPDATE conversations SET agent = $2, title = $3, created_at = $4, updated_at = $5, \
                 client_fingerprint = $6, debug = $7 WHERE id = $1"
            } else {
                "INSERT INTO conversations (id, agent, title, created_at, updated_at, client_fingerprint, debug) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            };
            sqlx::query(sql)
                .bind(&c.id)
                .bind(&c.agent)
                .bind(c.title.as_deref().map(storable))
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(saved.client_fingerprint.clone())
                .bind(i64::from(c.debug))
                .execute(&mut **tx)
                .await
                .map_err(&failed)?;
            for m in &saved.messages {
                let message = &m.message;
                let tool_calls =
                    if message.tool_calls.is_empty() { None } else { Some(json("tool calls", &message.tool_calls)?) };
                sqlx::query(
                    "INSERT INTO messages \
                     (id, conversation_id, seq, role, content, tool_calls, tool_call_id, name, turn_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&message.id)
                .bind(&c.id)
                .bind(message.seq)
                .bind(message.role.as_str())
                .bind(storable(&message.content))
                .bind(tool_calls)
                .bind(message.tool_call_id.as_deref().map(storable))
                .bind(message.name.as_deref().map(storable))
                .bind(m.turn_id.clone())
                .bind(message.created_at)
                .execute(&mut **tx)
                .await
                .map_err(&failed)?;
            }
        }

        for i in &memory.insights {
            write_insight(tx, i, &failed).await?;
        }
        Ok(kept)
    }
}
