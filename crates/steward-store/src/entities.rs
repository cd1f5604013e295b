//! The entity catalog in SQL: a full sync replaces every row in one
//! transaction; state changes upsert or remove one row.

use sqlx::any::AnyRow;
use sqlx::Row;
use steward_core::store::entity_search_text;
use steward_core::{EntityFilter, StoreError};
use steward_protocol::api::CatalogEntity;

use crate::{storable, SqlStore};

const COLUMNS: &str = "entity_id, domain, name, aliases, area_id, area, device_id, device, state, attributes, \
last_changed, last_updated, available, search";

const UPSERT_TAIL: &str = " ON CONFLICT (entity_id) DO UPDATE SET domain = excluded.domain, name = excluded.name, \
aliases = excluded.aliases, area_id = excluded.area_id, area = excluded.area, device_id = excluded.device_id, \
device = excluded.device, state = excluded.state, attributes = excluded.attributes, \
last_changed = excluded.last_changed, last_updated = excluded.last_updated, available = excluded.available, \
search = excluded.search";

fn insert_sql() -> String {
    format!("INSERT INTO entities ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    e: &CatalogEntity,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>, StoreError> {
    let encode = |what: &str, v: Result<String, serde_json::Error>| {
        v.map_err(|err| StoreError::Database(format!("encoding the {what} of '{}': {err}", e.entity_id)))
    };
    Ok(query
        .bind(e.entity_id.clone())
        .bind(e.domain.clone())
        .bind(storable(&e.name))
        .bind(encode("aliases", serde_json::to_string(&e.aliases))?)
        .bind(e.area_id.as_deref().map(storable))
        .bind(e.area.as_deref().map(storable))
        .bind(e.device_id.as_deref().map(storable))
        .bind(e.device.as_deref().map(storable))
        .bind(storable(&e.state))
        .bind(encode("attributes", serde_json::to_string(&e.attributes))?)
        .bind(e.last_changed)
        .bind(e.last_updated)
        .bind(i64::from(e.available))
        .bind(storable(&entity_search_text(e))))
}

fn entity_from_row(row: &AnyRow) -> Result<CatalogEntity, StoreError> {
    let id: String = row.try_get("entity_id").map_err(|e| StoreError::Corrupt(format!("entity row: {e}")))?;
    let corrupt = |what: String| StoreError::Corrupt(format!("entity '{id}': {what}"));
    let get = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>("domain")?,
            row.try_get::<String, _>("name")?,
            row.try_get::<String, _>("aliases")?,
            row.try_get::<Option<String>, _>("area_id")?,
            row.try_get::<Option<String>, _>("area")?,
            row.try_get::<Option<String>, _>("device_id")?,
            row.try_get::<Option<String>, _>("device")?,
            row.try_get::<String, _>("state")?,
            row.try_get::<String, _>("attributes")?,
            row.try_get::<i64, _>("last_changed")?,
            row.try_get::<i64, _>("last_updated")?,
            row.try_get::<i64, _>("available")?,
        ))
    };
    let (
        domain,
        name,
        aliases,
        area_id,
        area,
        device_id,
        device,
        state,
        attributes,
        last_changed,
        last_updated,
        available,
    ) = get().map_err(|e| corrupt(e.to_string()))?;
    Ok(CatalogEntity {
        aliases: serde_json::from_str(&aliases).map_err(|e| corrupt(format!("aliases are not a JSON list ({e})")))?,
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt(format!("attributes are not JSON ({e})")))?,
        entity_id: id.clone(),
        domain,
        name,
        area_id,
        area,
        device_id,
        device,
        state,
        last_changed,
        last_updated,
        available: available != 0,
    })
}

impl SqlStore {
    pub(crate) async fn replace_all_entities(&self, entities: &[CatalogEntity]) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let fail = |e: sqlx::Error| self.db_error("replacing the entity catalog", e);
        let mut tx = self.begin_write().await.map_err(fail)?;
        sqlx::query("DELETE FROM entities").execute(&mut *tx).await.map_err(fail)?;
        let sql = insert_sql();
        for e in entities {
            bind(sqlx::query(&sql), e)?.execute(&mut *tx).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    pub(crate) async fn upsert_one_entity(&self, e: &CatalogEntity) -> Result<(), StoreError> {
        let sql = format!("{}{UPSERT_TAIL}", insert_sql());
        let _turn = self.write_turn().await;
        bind(sqlx::query(&sql), e)?
            .execute(self.pool())
            .await
            .map_err(|err| self.db_error(&format!("storing entity '{}'", e.entity_id), err))?;
        Ok(())
    }

    pub(crate) async fn delete_entity(&self, entity_id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM entities WHERE entity_id = $1")
            .bind(entity_id)
            .execute(self.pool())
            .await
            .map_err(|e| self.db_error(&format!("removing entity '{entity_id}'"), e))?;
        Ok(())
    }

    pub(crate) async fn select_entities(
        &self,
        filter: &EntityFilter,
    ) -> Result<(Vec<CatalogEntity>, usize), StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<String> = Vec::new();
        if let Some(d) = &filter.domain {
            values.push(d.to_lowercase());
            conditions.push(format!("domain = ${}", values.len()));
        }
        if let Some(a) = &filter.area {
            values.push(a.to_lowercase());
            let n = values.len();
            conditions.push(format!("(LOWER(area_id) = ${n} OR LOWER(area) = ${n})"));
        }
        for word in filter.search.iter().flat_map(|s| s.split_whitespace()) {
            let escaped = word.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            values.push(format!("%{escaped}%"));
            conditions.push(format!("search LIKE ${} ESCAPE '\\'", values.len()));
        }
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };

        let count_sql = format!("SELECT COUNT(*) AS n FROM entities{where_clause}");
        let mut count = sqlx::query(&count_sql);
        for v in &values {
            count = count.bind(v.clone());
        }
        let total: i64 = count
            .fetch_one(self.pool())
            .await
            .and_then(|row| row.try_get("n"))
            .map_err(|e| self.db_error("counting entities", e))?;

        let sql =
            format!("SELECT {COLUMNS} FROM entities{where_clause} ORDER BY entity_id LIMIT ${}", values.len() + 1);
        let mut query = sqlx::query(&sql);
        for v in &values {
            query = query.bind(v.clone());
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db_error("listing entities", e))?;
        let entities = rows.iter().map(entity_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok((entities, usize::try_from(total).unwrap_or(0)))
    }
}
