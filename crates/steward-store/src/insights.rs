//! Insights in SQL: one row per insight with its evidence and chart as JSON
//! text, and one row per entity it is about in `insight_entities`, so
//! listing the insights about an entity is an exact, indexed match.

use sqlx::any::AnyRow;
use sqlx::Row;
use steward_core::insights::chart_url;
use steward_core::store::InsightFilter;
use steward_core::StoreError;
use steward_protocol::insight::{Chart, Insight};

use crate::{storable, SqlStore};

pub(crate) const COLUMNS: &str =
    "id, kind, title, summary, evidence, entity_ids, chart, conversation_id, created_by, created_at";

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map(|s| storable(&s))
        .map_err(|e| StoreError::Database(format!("encoding the insight's {what}: {e}")))
}

pub(crate) fn insight_from_row(row: &AnyRow) -> Result<Insight, StoreError> {
    let id: String = row.try_get("id").map_err(|e| StoreError::Corrupt(format!("insight row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("insight '{id}': {what}"));
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    let opt_text = |column: &str| row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(e.to_string()));
    let evidence: serde_json::Value =
        serde_json::from_str(&text("evidence")?).map_err(|e| corrupt(format!("evidence is not JSON ({e})")))?;
    let entity_ids: Vec<String> = serde_json::from_str(&text("entity_ids")?)
        .map_err(|e| corrupt(format!("entity_ids is not a JSON list of strings ({e})")))?;
    let chart: Option<Chart> = match opt_text("chart")? {
        None => None,
        Some(json) => {
            Some(serde_json::from_str(&json).map_err(|e| corrupt(format!("chart has the wrong shape ({e})")))?)
        }
    };
    Ok(Insight {
        kind: text("kind")?,
        title: text("title")?,
        summary: text("summary")?,
        evidence,
        entity_ids,
        chart_url: chart.as_ref().map(|_| chart_url(&id)),
        chart,
        conversation_id: opt_text("conversation_id")?,
        created_by: text("created_by")?,
        created_at: row.try_get::<i64, _>("created_at").map_err(|e| corrupt(e.to_string()))?,
        id,
    })
}

impl SqlStore {
    pub(crate) async fn insert_insight(&self, i: &Insight) -> Result<(), StoreError> {
        let failed = |e: sqlx::Error| self.db_error(&format!("storing insight '{}'", i.id), e);
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await.map_err(failed)?;
        write_insight(&mut tx, i, failed).await?;
        tx.commit().await.map_err(failed)
    }

    pub(crate) async fn select_insight(&self, id: &str) -> Result<Option<Insight>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM insights WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(storable(id))
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("reading insight '{id}'"), e))?;
        row.as_ref().map(insight_from_row).transpose()
    }

    pub(crate) async fn select_insights(&self, filter: &InsightFilter) -> Result<Vec<Insight>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM insights WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.kind.is_some() {
            sql.push_str(&format!(" AND kind = ${}", next()));
        }
        if filter.entity_id.is_some() {
            sql.push_str(&format!(
                " AND id IN (SELECT insight_id FROM insight_entities WHERE entity_id = ${})",
                next()
            ));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", next()));
        let mut query = sqlx::query(&sql);
        if let Some(kind) = &filter.kind {
            query = query.bind(storable(kind));
        }
        if let Some(entity) = &filter.entity_id {
            query = query.bind(storable(entity));
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing insights", e))?;
        rows.iter().map(insight_from_row).collect()
    }
}

/// Writes one insight and its entity index (each entity once) inside `tx`.
pub(crate) async fn write_insight(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    i: &Insight,
    failed: impl Fn(sqlx::Error) -> StoreError,
) -> Result<(), StoreError> {
    let chart = i.chart.as_ref().map(|c| encode("chart", c)).transpose()?;
    let sql = format!("INSERT INTO insights ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    sqlx::query(&sql)
        .bind(storable(&i.id))
        .bind(storable(&i.kind))
        .bind(storable(&i.title))
        .bind(storable(&i.summary))
        .bind(encode("evidence", &i.evidence)?)
        .bind(encode("entity ids", &i.entity_ids)?)
        .bind(chart)
        .bind(i.conversation_id.as_deref().map(storable))
        .bind(storable(&i.created_by))
        .bind(i.created_at)
        .execute(&mut **tx)
        .await
        .map_err(&failed)?;
    let mut entities: Vec<&str> = Vec::new();
    for id in &i.entity_ids {
        if !entities.contains(&id.as_str()) {
            entities.push(id);
        }
    }
    for entity in entities {
        sqlx::query("INSERT INTO insight_entities (insight_id, entity_id) VALUES ($1, $2)")
            .bind(storable(&i.id))
            .bind(storable(entity))
            .execute(&mut **tx)
            .await
            .map_err(&failed)?;
    }
    Ok(())
}
