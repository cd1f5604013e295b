-- The home's entity catalog, mirrored from Home Assistant (or the demo
-- home) and kept live from state changes. `aliases` and `attributes` are
-- JSON text; `search` is the lower-cased text free-text search matches:
-- id, name, aliases, area and device.

CREATE TABLE entities (
    entity_id TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    aliases TEXT NOT NULL,
    area_id TEXT,
    area TEXT,
    device_id TEXT,
    device TEXT,
    state TEXT NOT NULL,
    attributes TEXT NOT NULL,
    last_changed BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    available BIGINT NOT NULL,
    search TEXT NOT NULL
);

CREATE INDEX entities_domain_idx ON entities (domain);
CREATE INDEX entities_area_idx ON entities (area_id);
