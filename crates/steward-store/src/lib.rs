//! The sqlx implementation of [`steward_core::Store`], for SQLite (the
//! embedded default) and PostgreSQL.
//!
//! One code path serves both databases through sqlx's `Any` driver: the SQL
//! is portable (`$n` placeholders, TEXT and BIGINT columns), timestamps are
//! milliseconds since the Unix epoch, ids are uuid v4 strings and tool calls
//! are stored as JSON text. The schema is created and upgraded by embedded
//! migrations (see `migrations/`) when a store connects.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Row, Transaction};
use steward_core::audit::{self, AuditEntry, NewAuditEntry};
use steward_core::{
    ApprovalDecision, ApprovalFilter, Clock, EntityFilter, NewMessage, Store, StoreError, UsageGroup, UsageRecord,
    UsageTotal,
};
use steward_protocol::api::{CatalogEntity, Conversation, StoredMessage};
use steward_protocol::approval::{Approval, ApprovalStatus};
use steward_protocol::{Role, ToolCall};

mod approvals;
mod entities;
mod insights;
mod migrate;
mod snapshots;
mod tasks;
mod url;

pub use crate::url::redact_url;

/// How long connecting (and waiting for a pooled connection) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another writer before reporting "busy".
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
const SQLITE_POOL_SIZE: u32 = 8;
const POSTGRES_POOL_SIZE: u32 = 10;
/// Attempts for a write transaction that lost a race (unique violation,
/// deadlock, serialization failure, SQLite busy).
const WRITE_ATTEMPTS: u32 = 8;

/// Attempts for an audit append that lost the race for the next `seq`.
/// Appenders of one process already queue (SQLite) or take a lock
/// (PostgreSQL), so this only covers other processes.
const AUDIT_ATTEMPTS: u32 = 32;
/// `pg_advisory_xact_lock` key serialising audit appends ("StewAudt").
const AUDIT_LOCK_KEY: i64 = 0x5374_6577_4175_6474;

const ACCEPTED_SCHEMES: &str = "sqlite:, postgres: or postgresql:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A [`Store`] on SQLite or PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// The connect URL with its password redacted, for messages.
    url: String,
    /// SQLite has one write lock per database, and a writer that finds it
    /// taken polls with sleeps (the busy timeout), which turns contention
    /// into latency spikes. Writers of this process queue here instead; the
    /// busy timeout still covers other processes.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend.name()).field("url", &self.url).finish()
    }
}

impl SqlStore {
    /// Connects to `url` and applies pending migrations.
    ///
    /// Accepts `sqlite://path?mode=rwc`, `sqlite:path` (created if missing
    /// unless a `mode` is given), `sqlite::memory:` (one connection, since
    /// every in-memory connection is its own database), and
    /// `postgres://…`/`postgresql://…`. Fails within about ten seconds if the
    /// database cannot be reached; no error or log line contains the URL's
    /// password.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<SqlStore, StoreError> {
        let redacted = redact_url(url);
        let fail = |what: &str, cause: &dyn fmt::Display| {
            StoreError::Database(format!("{what} {redacted}: {}", url::scrub(&cause.to_string(), url)))
        };

        let Some(scheme) = url::scheme(url) else {
            return Err(StoreError::Database(format!(
                "unsupported database URL '{redacted}': it has no scheme; use {ACCEPTED_SCHEMES}"
            )));
        };
        // Normalise the scheme's case; the drivers match it exactly.
        let rest = &url[scheme.len()..];
        let (backend, effective_url) = match scheme.as_str() {
            "sqlite" => (Backend::Sqlite, url::sqlite_with_default_mode(&format!("sqlite{rest}"))),
            "postgres" | "postgresql" => (Backend::Postgres, format!("{scheme}{rest}")),
            other => {
                return Err(StoreError::Database(format!(
                    "unsupported database URL scheme '{other}:' in '{redacted}'; use {ACCEPTED_SCHEMES}"
                )))
            }
        };
        let memory = backend == Backend::Sqlite && url::sqlite_is_memory(&effective_url);

        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(&effective_url).map_err(|e| fail("invalid database URL", &e))?;

        // One direct connection first: the pool retries refused connections
        // until its timeout and then reports only "timed out", while a
        // direct attempt fails fast with the real cause.
        let mut first = match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(fail("connecting to", &e)),
            Err(_) => {
                return Err(fail("connecting to", &format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())))
            }
        };

        let pool_options = AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT);
        let pool_options = match backend {
            Backend::Postgres => pool_options.max_connections(POSTGRES_POOL_SIZE),
            Backend::Sqlite if memory => {
                pool_options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
            }
            Backend::Sqlite => pool_options.max_connections(SQLITE_POOL_SIZE),
        };
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _meta| Box::pin(configure_sqlite(conn))),
            Backend::Postgres => pool_options,
        };
        let pool = pool_options.connect_lazy_with(options);

        let now = clock.now_ms();
        let migrated = match backend {
            // The advisory lock lives on this one dedicated connection,
            // which is closed afterwards (releasing the lock in any case).
            Backend::Postgres => {
                let result = migrate::run(&mut first, backend, now).await;
                let _ = first.close().await;
                result
            }
            // On a pooled connection, so an in-memory database that is
            // migrated is the one the pool keeps.
            Backend::Sqlite => {
                let _ = first.close().await;
                let mut conn = pool.acquire().await.map_err(|e| fail("connecting to", &e))?;
                migrate::run(&mut conn, backend, now).await
            }
        };
        let applied = match migrated {
            Ok(applied) => applied,
            Err(e) => {
                pool.close().await;
                return Err(fail(&format!("{} on", e.step), &e.source));
            }
        };

        tracing::info!(
            backend = backend.name(),
            url = %redacted,
            applied_migrations = applied.len(),
            "database ready"
        );
        Ok(SqlStore { pool, backend, clock, url: redacted, sqlite_writer: Arc::new(tokio::sync::Mutex::new(())) })
    }

    /// Opens (creating it if needed) the SQLite database
    /// `<data_dir>/steward.db`, creating `data_dir` too.
    pub async fn open_in_dir(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<SqlStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Database(format!("creating data directory {}: {e}", data_dir.display())))?;
        let dir = std::fs::canonicalize(data_dir)
            .map_err(|e| StoreError::Database(format!("resolving data directory {}: {e}", data_dir.display())))?;
        let path = dir.join("steward.db");
        let url = url::sqlite_url_for_path(&path).ok_or_else(|| {
            StoreError::Database(format!("data directory path {} is not valid UTF-8", path.display()))
        })?;
        SqlStore::connect(&url, clock).await
    }

    /// The connect URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying pool, for crate tests and maintenance queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; later calls fail. Waits for checked-out
    /// connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that will write: on SQLite `BEGIN IMMEDIATE` takes the
    /// write lock up front (waiting up to the busy timeout) instead of
    /// failing when a read lock cannot be upgraded.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Holds this process's SQLite writers in line; nothing on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        }
    }

    pub(crate) fn db_error(&self, operation: &str, e: sqlx::Error) -> StoreError {
        StoreError::Database(format!("{operation}: {e}"))
    }

    async fn try_append(&self, messages: &[NewMessage], now: i64) -> Result<Vec<StoredMessage>, AppendError> {
        let mut tx = self.begin_write().await?;

        // Lock each conversation by touching it, in a fixed order so two
        // appends over the same conversations cannot deadlock. On
        // PostgreSQL the row lock serialises concurrent appenders, so the
        // MAX(seq) read afterwards sees every committed message; on SQLite
        // the transaction already holds the database's write lock.
        let mut next_seq: BTreeMap<&str, i64> = BTreeMap::new();
        for m in messages {
            next_seq.insert(m.conversation_id.as_str(), 0);
        }
        for (id, seq) in next_seq.iter_mut() {
            let touched = sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(*id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(AppendError::Store(StoreError::ConversationNotFound((*id).to_string())));
            }
            *seq = sqlx::query_scalar("SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE conversation_id = $1")
                .bind(*id)
                .fetch_one(&mut *tx)
                .await?;
        }

        let mut stored = Vec::with_capacity(messages.len());
        for m in messages {
            let slot = next_seq.get_mut(m.conversation_id.as_str());
            let Some(slot) = slot else {
                // Every id was inserted above.
                return Err(AppendError::Store(StoreError::ConversationNotFound(m.conversation_id.clone())));
            };
            let seq = *slot;
            *slot += 1;
            let tool_calls = encode_tool_calls(&m.message.tool_calls)?;
            let id = uuid::Uuid::new_v4().to_string();
            let content = storable(&m.message.content);
            let tool_call_id = m.message.tool_call_id.as_deref().map(storable);
            let name = m.message.name.as_deref().map(storable);
            sqlx::query(
                "INSERT INTO messages \
                 (id, conversation_id, seq, role, content, tool_calls, tool_call_id, name, turn_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&id)
            .bind(&m.conversation_id)
            .bind(seq)
            .bind(m.message.role.as_str())
            .bind(&content)
            .bind(tool_calls)
            .bind(tool_call_id.clone())
            .bind(name.clone())
            .bind(m.turn_id.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            stored.push(StoredMessage {
                id,
                conversation_id: m.conversation_id.clone(),
                seq,
                role: m.message.role,
                content,
                tool_calls: m.message.tool_calls.clone(),
                tool_call_id,
                name,
                created_at: now,
            });
        }
        tx.commit().await?;
        Ok(stored)
    }
}

impl SqlStore {
    /// One attempt at appending an audit entry: read the head, chain, insert,
    /// in one transaction. A concurrent appender that took the same `seq`
    /// makes the insert fail with a unique violation, and the caller retries.
    async fn try_append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Appenders queue here instead of racing for the same seq.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK_KEY).execute(&mut *tx).await?;
        }
        let head =
            sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await?;
        let (seq, prev_hash) = match head {
            Some(row) => (row.try_get::<i64, _>("seq")? + 1, row.try_get::<String, _>("hash")?),
            None => (1, audit::GENESIS_HASH.to_string()),
        };
        let at = self.clock.now_ms();
        let mut stored = AuditEntry {
            seq,
            at,
            actor: storable(&entry.actor),
            action: storable(&entry.action),
            subject: storable(&entry.subject),
            targets: entry.targets.iter().map(|t| storable(t)).collect(),
            detail: entry.detail.clone(),
            trace_id: entry.trace_id.as_deref().map(storable),
            prev_hash,
            hash: String::new(),
        };
        audit::redact(&mut stored.detail);
        stored.hash = audit::expected_hash(&stored);
        let targets = serde_json::to_string(&stored.targets).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let detail = serde_json::to_string(&stored.detail).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO audit_log (seq, created_at, actor, action, subject, targets, detail, trace_id, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(stored.seq)
        .bind(stored.at)
        .bind(&stored.actor)
        .bind(&stored.action)
        .bind(&stored.subject)
        .bind(targets)
        .bind(detail)
        .bind(stored.trace_id.clone())
        .bind(&stored.prev_hash)
        .bind(&stored.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored)
    }
}

/// An audit row as stored. Text that is no longer JSON (edited by hand)
/// still loads, as a value no genuine row has, so that verification names
/// the row instead of the listing failing.
fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let get = || -> Result<AuditEntry, sqlx::Error> {
        let targets: String = row.try_get("targets")?;
        let detail: String = row.try_get("detail")?;
        Ok(AuditEntry {
            seq: row.try_get("seq")?,
            at: row.try_get("created_at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            subject: row.try_get("subject")?,
            targets: serde_json::from_str(&targets).unwrap_or_else(|_| vec![format!("(not a JSON list: {targets})")]),
            detail: serde_json::from_str(&detail).unwrap_or_else(|_| serde_json::json!({ "(not JSON)": detail })),
            trace_id: row.try_get("trace_id")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    };
    get().map_err(|e| StoreError::Corrupt(format!("audit log row: {e}")))
}

/// Runs on every new SQLite connection.
async fn configure_sqlite(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str()).await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // In WAL mode, NORMAL syncs at checkpoints rather than at every commit:
    // a commit survives a crash of Steward; only a power cut can lose the
    // last moments. It takes an fsync off every write.
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    // Switching to WAL needs an exclusive lock that the busy timeout does
    // not wait for; it only happens once per database file (the mode is
    // persistent), so retry briefly if another connection holds a lock.
    let mut attempt = 0;
    loop {
        match conn.execute("PRAGMA journal_mode = WAL").await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 50 && is_retryable(&e, Backend::Sqlite) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a failed write transaction may succeed if run again.
fn is_retryable(e: &sqlx::Error, backend: Backend) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    if db.is_unique_violation() {
        return true;
    }
    match backend {
        // Serialization failure, deadlock detected.
        Backend::Postgres => matches!(db.code().as_deref(), Some("40001") | Some("40P01")),
        Backend::Sqlite => {
            // (Extended) result codes: SQLITE_BUSY = 5, SQLITE_LOCKED = 6.
            let busy =
                db.code().and_then(|c| c.parse::<i64>().ok()).map(|n| matches!(n & 0xff, 5 | 6)).unwrap_or(false);
            let message = db.message();
            busy || message.contains("database is locked") || message.contains("database table is locked")
        }
    }
}

/// Token counts are u64 on the wire and BIGINT in the database.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A summed column (cast to BIGINT in the query, so both backends agree).
fn sum(row: &AnyRow, column: &str) -> Result<i64, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0))
}

/// `YYYY-MM-DD` of a UTC day number (days since 1970-01-01).
fn day_string(day: i64) -> String {
    steward_core::tools::rfc3339(day * 86_400_000)[..10].to_string()
}

/// PostgreSQL's text type cannot hold NUL characters; SQLite's can. So that
/// both store the same thing (and a model that emits a NUL cannot make a
/// reply unstorable), NUL becomes U+FFFD.
pub(crate) fn storable(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_string()
    }
}

enum AppendError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        AppendError::Sql(e)
    }
}

fn encode_tool_calls(calls: &[ToolCall]) -> Result<Option<String>, AppendError> {
    if calls.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(calls)
        .map(Some)
        .map_err(|e| AppendError::Store(StoreError::Database(format!("encoding tool calls: {e}"))))
}

fn conversation_from_row(row: &AnyRow) -> Result<Conversation, StoreError> {
    let get = || -> Result<Conversation, sqlx::Error> {
        Ok(Conversation {
            id: row.try_get("id")?,
            agent: row.try_get("agent")?,
            title: row.try_get("title")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            debug: row.try_get::<i64, _>("debug")? != 0,
        })
    };
    get().map_err(|e| StoreError::Corrupt(format!("conversation row: {e}")))
}

fn message_from_row(row: &AnyRow) -> Result<StoredMessage, StoreError> {
    let id: String = row.try_get("id").map_err(|e| StoreError::Corrupt(format!("message row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("message '{id}': {what}"));
    let get = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>("conversation_id")?,
            row.try_get::<i64, _>("seq")?,
            row.try_get::<String, _>("role")?,
            row.try_get::<String, _>("content")?,
            row.try_get::<Option<String>, _>("tool_calls")?,
            row.try_get::<Option<String>, _>("tool_call_id")?,
            row.try_get::<Option<String>, _>("name")?,
            row.try_get::<i64, _>("created_at")?,
        ))
    };
    let (conversation_id, seq, role, content, tool_calls, tool_call_id, name, created_at) =
        get().map_err(|e| corrupt(e.to_string()))?;
    let role = Role::parse(&role)
        .ok_or_else(|| corrupt(format!("unknown role '{role}' (conversation '{conversation_id}', seq {seq})")))?;
    let tool_calls = match tool_calls {
        None => Vec::new(),
        Some(json) => serde_json::from_str::<Vec<ToolCall>>(&json).map_err(|e| {
            corrupt(format!(
                "tool_calls is not a JSON list of tool calls ({e}) (conversation '{conversation_id}', seq {seq})"
            ))
        })?,
    };
    Ok(StoredMessage { id, conversation_id, seq, role, content, tool_calls, tool_call_id, name, created_at })
}

const CONVERSATION_COLUMNS: &str = "id, agent, title, created_at, updated_at, debug";

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.db_error(&format!("pinging {}", self.url), e))
    }

    async fn create_conversation(&self, agent: &str, title: Option<&str>) -> Result<Conversation, StoreError> {
        let now = self.clock.now_ms();
        let conversation = Conversation {
            id: uuid::Uuid::new_v4().to_string(),
            agent: agent.to_string(),
            title: title.map(storable),
            created_at: now,
            updated_at: now,
            debug: false,
        };
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO conversations (id, agent, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&conversation.id)
            .bind(&conversation.agent)
            .bind(conversation.title.clone())
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(&format!("creating a conversation for agent '{agent}'"), e))?;
        Ok(conversation)
    }

    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_error(&format!("reading conversation '{id}'"), e))?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn list_conversations(&self, limit: u32) -> Result<Vec<Conversation>, StoreError> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations ORDER BY updated_at DESC, id ASC LIMIT $1");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_error("listing conversations", e))?;
        rows.iter().map(conversation_from_row).collect()
    }

    async fn append_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<StoredMessage>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<&str> = messages.iter().map(|m| m.conversation_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let operation = match ids.as_slice() {
            [one] => format!("appending messages to conversation '{one}'"),
            many => format!("appending messages to conversations '{}'", many.join("', '")),
        };

        let now = self.clock.now_ms();
        let _turn = self.write_turn().await;
        let mut attempt = 1;
        loop {
            match self.try_append(&messages, now).await {
                Ok(stored) => return Ok(stored),
                Err(AppendError::Store(e)) => return Err(e),
                Err(AppendError::Sql(e)) if attempt < WRITE_ATTEMPTS && is_retryable(&e, self.backend) => {
                    tracing::debug!(attempt, error = %e, "{operation}: retrying after a write conflict");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(AppendError::Sql(e)) => {
                    let e = if attempt > 1 {
                        StoreError::Database(format!("{operation} (after {attempt} attempts): {e}"))
                    } else {
                        self.db_error(&operation, e)
                    };
                    return Err(e);
                }
            }
        }
    }

    async fn set_client_fingerprint(&self, conversation_id: &str, fingerprint: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE conversations SET client_fingerprint = $1 WHERE id = $2")
            .bind(fingerprint)
            .bind(conversation_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(&format!("recording the transcript of conversation '{conversation_id}'"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(conversation_id.to_string()));
        }
        Ok(())
    }

    async fn find_by_client_fingerprint(&self, fingerprint: &str) -> Result<Option<Conversation>, StoreError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE client_fingerprint = $1 \
             ORDER BY updated_at DESC, id ASC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_error("looking up a conversation by its transcript", e))?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn record_usage(&self, r: &UsageRecord) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let fallback = (!r.fallback_path.is_empty()).then(|| r.fallback_path.join(" > "));
        sqlx::query(
            "INSERT INTO usage_ledger (id, created_at, caller, tier, provider, model, prompt_tokens, \
             completion_tokens, cached_tokens, cost_micros, latency_ms, ttft_ms, outcome, local, fallback_path, trace_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(r.created_at)
        .bind(r.caller.as_deref().map(storable))
        .bind(r.tier.clone())
        .bind(storable(&r.provider))
        .bind(storable(&r.model))
        .bind(clamp(r.usage.prompt_tokens))
        .bind(clamp(r.usage.completion_tokens))
        .bind(clamp(r.usage.cached_prompt_tokens))
        .bind(r.cost_micros)
        .bind(r.latency_ms)
        .bind(r.ttft_ms)
        .bind(storable(&r.outcome))
        .bind(i64::from(r.local))
        .bind(fallback.as_deref().map(storable))
        .bind(r.trace_id.as_deref().map(storable))
        .execute(&self.pool)
        .await
        .map_err(|e| self.db_error("recording a model call in the usage ledger", e))?;
        Ok(())
    }

    async fn usage_totals(&self, since_ms: i64, group: UsageGroup) -> Result<Vec<UsageTotal>, StoreError> {
        // Integer division gives the UTC day number on both backends.
        let key = match group {
            UsageGroup::Day => "CAST(created_at / 86400000 AS TEXT)",
            UsageGroup::Provider => "provider",
            UsageGroup::Model => "provider || '/' || model",
        };
        let sql = format!(
            "SELECT {key} AS k, CAST(COUNT(*) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END) AS BIGINT) AS ok_requests, \
             CAST(SUM(local) AS BIGINT) AS local_requests, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
             CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens, CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
             FROM usage_ledger WHERE created_at >= $1 GROUP BY k ORDER BY k"
        );
        let rows = sqlx::query(&sql)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_error("summing the usage ledger", e))?;
        rows.iter()
            .map(|row| {
                let get = || -> Result<UsageTotal, sqlx::Error> {
                    let raw_key: String = row.try_get("k")?;
                    let key = match group {
                        UsageGroup::Day => raw_key.parse::<i64>().map(day_string).unwrap_or(raw_key),
                        UsageGroup::Provider | UsageGroup::Model => raw_key,
                    };
                    Ok(UsageTotal {
                        key,
                        requests: row.try_get("requests")?,
                        ok_requests: sum(row, "ok_requests")?,
                        local_requests: sum(row, "local_requests")?,
                        prompt_tokens: sum(row, "prompt_tokens")?,
                        completion_tokens: sum(row, "completion_tokens")?,
                        cached_tokens: sum(row, "cached_tokens")?,
                        cost_micros: sum(row, "cost_micros")?,
                    })
                };
                get().map_err(|e| StoreError::Corrupt(format!("usage ledger totals: {e}")))
            })
            .collect()
    }

    async fn list_messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, seq, role, content, tool_calls, tool_call_id, name, created_at \
             FROM messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_error(&format!("listing messages of conversation '{conversation_id}'"), e))?;
        rows.iter().map(message_from_row).collect()
    }

    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let operation = format!("appending '{}' to the audit log", entry.action);
        let _turn = self.write_turn().await;
        let mut attempt = 1;
        loop {
            match self.try_append_audit(&entry).await {
                Ok(stored) => return Ok(stored),
                Err(e) if attempt < AUDIT_ATTEMPTS && is_retryable(&e, self.backend) => {
                    tracing::debug!(attempt, error = %e, "{operation}: retrying after a write conflict");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(StoreError::Database(format!("{operation} (attempt {attempt}): {e}")));
                }
            }
        }
    }

    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, created_at, actor, action, subject, targets, detail, trace_id, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_error("listing the audit log", e))?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn create_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.insert_approval(approval).await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.select_approval(id).await
    }

    async fn list_approvals(&self, filter: &ApprovalFilter, limit: u32) -> Result<Vec<Approval>, StoreError> {
        self.select_approvals(filter, limit).await
    }

    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<Option<Approval>, StoreError> {
        self.update_decision(id, decision).await
    }

    async fn claim_approval(&self, id: &str, started_at: i64) -> Result<bool, StoreError> {
        self.update_claim(id, started_at).await
    }

    async fn finish_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        outcome: &str,
        finished_at: i64,
    ) -> Result<Option<Approval>, StoreError> {
        self.update_finish(id, status, outcome, finished_at).await
    }

    async fn has_conversation_grant(&self, conversation_id: &str, kind: &str) -> Result<bool, StoreError> {
        self.select_grant(conversation_id, kind).await
    }

    async fn replace_entities(&self, entities: &[CatalogEntity]) -> Result<(), StoreError> {
        self.replace_all_entities(entities).await
    }

    async fn upsert_entity(&self, entity: &CatalogEntity) -> Result<(), StoreError> {
        self.upsert_one_entity(entity).await
    }

    async fn remove_entity(&self, entity_id: &str) -> Result<(), StoreError> {
        self.delete_entity(entity_id).await
    }

    async fn list_entities(&self, filter: &EntityFilter) -> Result<(Vec<CatalogEntity>, usize), StoreError> {
        self.select_entities(filter).await
    }

    async fn set_conversation_debug(&self, conversation_id: &str, debug: bool) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE conversations SET debug = $1 WHERE id = $2")
            .bind(i64::from(debug))
            .bind(conversation_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(&format!("setting debug mode of conversation '{conversation_id}'"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(conversation_id.to_string()));
        }
        Ok(())
    }

    // Tasks and plans: see tasks.rs.
    async fn create_task(&self, task: &steward_protocol::task::Task) -> Result<(), StoreError> {
        self.insert_task(task).await
    }

    async fn get_task(&self, id: &str) -> Result<Option<steward_protocol::task::Task>, StoreError> {
        self.select_task(id).await
    }

    async fn list_tasks(&self, limit: u32) -> Result<Vec<steward_protocol::task::Task>, StoreError> {
        self.select_tasks(limit).await
    }

    async fn tasks_in_status(
        &self,
        statuses: &[steward_protocol::task::TaskStatus],
        limit: u32,
    ) -> Result<Vec<steward_protocol::task::Task>, StoreError> {
        self.select_tasks_in(statuses, limit).await
    }

    async fn set_task_plan(&self, id: &str, plan: &steward_core::store::TaskPlan) -> Result<bool, StoreError> {
        self.update_task_plan(id, plan).await
    }

    async fn set_task_status(
        &self,
        id: &str,
        from: steward_protocol::task::TaskStatus,
        change: &steward_core::store::TaskTransition,
    ) -> Result<bool, StoreError> {
        self.update_task_status(id, from, change).await
    }

    async fn update_step(
        &self,
        task_id: &str,
        step_id: &str,
        from: &[steward_protocol::task::StepStatus],
        update: &steward_core::store::StepUpdate,
    ) -> Result<bool, StoreError> {
        self.update_task_step(task_id, step_id, from, update).await
    }

    async fn append_execution_log(
        &self,
        task_id: &str,
        step_id: Option<&str>,
        level: steward_protocol::task::LogLevel,
        message: &str,
    ) -> Result<steward_protocol::task::ExecutionLog, StoreError> {
        self.insert_execution_log(task_id, step_id, level, message).await
    }

    async fn list_execution_logs(
        &self,
        task_id: &str,
    ) -> Result<Vec<steward_protocol::task::ExecutionLog>, StoreError> {
        self.select_execution_logs(task_id).await
    }

    // Insights: see insights.rs.
    async fn create_insight(&self, insight: &steward_protocol::insight::Insight) -> Result<(), StoreError> {
        self.insert_insight(insight).await
    }

    async fn get_insight(&self, id: &str) -> Result<Option<steward_protocol::insight::Insight>, StoreError> {
        self.select_insight(id).await
    }

    async fn list_insights(
        &self,
        filter: &steward_core::store::InsightFilter,
    ) -> Result<Vec<steward_protocol::insight::Insight>, StoreError> {
        self.select_insights(filter).await
    }

    // Snapshots: see snapshots.rs.
    async fn memory_counts(&self) -> Result<steward_core::snapshots::StateCounts, StoreError> {
        self.count_memory().await
    }

    async fn save_snapshot(
        &self,
        spec: &steward_core::snapshots::SnapshotSpec,
        replace: bool,
    ) -> Result<steward_core::snapshots::SaveOutcome, StoreError> {
        self.insert_snapshot(spec, replace).await
    }

    async fn list_snapshots(&self) -> Result<Vec<steward_core::snapshots::SnapshotSummary>, StoreError> {
        self.select_snapshots().await
    }

    async fn get_snapshot(&self, name: &str) -> Result<Option<steward_core::snapshots::Snapshot>, StoreError> {
        self.select_snapshot(name).await
    }

    async fn load_snapshot(
        &self,
        name: &str,
        backup: &steward_core::snapshots::SnapshotSpec,
    ) -> Result<Option<steward_core::snapshots::Loaded>, StoreError> {
        self.restore_snapshot(name, backup).await
    }
}

/// Exponential backoff with jitter: about 10, 20, 40 … ms, at most ~320 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 10u64 << attempt.min(5);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod send_check {
    use super::*;

    fn is_send<T: Send>(_: T) {}

    #[allow(dead_code)]
    fn futures_are_send(conn: &mut AnyConnection) {
        is_send(SqlStore::connect("", Arc::new(steward_core::SystemClock)));
        is_send(migrate::run(conn, Backend::Sqlite, 0));
        is_send(configure_sqlite(conn));
    }
}
