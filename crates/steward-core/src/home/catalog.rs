//! The librarian's catalog: the home's entities mirrored into the store,
//! so the API and the agents can list and search them without asking the
//! home each time, and kept live from state changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use steward_protocol::api::CatalogEntity;
use tokio::sync::broadcast::error::RecvError;

use super::types::{Area, Device, Entity};
use super::Home;
use crate::store::Store;

/// Names of areas and devices, for catalog rows.
#[derive(Debug, Clone, Default)]
pub struct Names {
    areas: HashMap<String, String>,
    devices: HashMap<String, String>,
}

impl Names {
    pub fn new(areas: &[Area], devices: &[Device]) -> Self {
        Names {
            areas: areas.iter().map(|a| (a.area_id.clone(), a.name.clone())).collect(),
            devices: devices.iter().map(|d| (d.device_id.clone(), d.name.clone())).collect(),
        }
    }

    /// The catalog row of an entity.
    pub fn entry(&self, e: &Entity) -> CatalogEntity {
        CatalogEntity {
            entity_id: e.entity_id.clone(),
            domain: e.domain.clone(),
            name: e.name.clone(),
            aliases: e.aliases.clone(),
            area_id: e.area_id.clone(),
            area: e.area_id.as_ref().and_then(|a| self.areas.get(a).cloned()),
            device_id: e.device_id.clone(),
            device: e.device_id.as_ref().and_then(|d| self.devices.get(d).cloned()),
            state: e.state.clone(),
            attributes: e.attributes.clone(),
            last_changed: e.last_changed,
            last_updated: e.last_updated,
            available: e.available,
        }
    }
}

/// Reads every entity, area and device from the home and replaces the
/// stored catalog with them. Returns the names used and the entity count.
pub async fn sync_catalog(home: &dyn Home, store: &dyn Store) -> Result<(Names, usize), String> {
    let entities = home.entities().await.map_err(|e| format!("reading the home's entities: {e}"))?;
    let areas = home.areas().await.map_err(|e| format!("reading the home's areas: {e}"))?;
    let devices = home.devices().await.map_err(|e| format!("reading the home's devices: {e}"))?;
    let names = Names::new(&areas, &devices);
    let rows: Vec<CatalogEntity> = entities.iter().map(|e| names.entry(e)).collect();
    store.replace_entities(&rows).await.map_err(|e| format!("storing the entity catalog: {e}"))?;
    Ok((names, rows.len()))
}

/// Keeps the stored catalog in step with the home: subscribes to state
/// changes first (so none is missed), syncs everything, then applies each
/// change. A subscriber that fell behind, or a failed sync, syncs again
/// (after `retry` when it failed).
pub fn spawn_catalog_sync(home: Arc<dyn Home>, store: Arc<dyn Store>, retry: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut changes = home.subscribe();
            let names = match sync_catalog(home.as_ref(), store.as_ref()).await {
                Ok((names, count)) => {
                    tracing::info!(entities = count, home = home.name(), "entity catalog synced");
                    names
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not sync the entity catalog; trying again");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            loop {
                match changes.recv().await {
                    Ok(change) => {
                        let result = match &change.new {
                            Some(entity) => store.upsert_entity(&names.entry(entity)).await,
                            None => store.remove_entity(&change.entity_id).await,
                        };
                        if let Err(e) = result {
                            tracing::warn!(error = %e, entity = %change.entity_id, "could not update the entity catalog");
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::info!(skipped, "the entity catalog fell behind the home; syncing again");
                        break;
                    }
                    Err(RecvError::Closed) => {
                        tracing::info!("the home stopped sending state changes; the entity catalog sync ends");
                        return;
                    }
                }
            }
        }
    })
}
