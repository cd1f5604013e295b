-- Insights: what an analysis found, with its evidence and the data of its
-- chart. `evidence` and `chart` are JSON text (`chart` NULL when there is
-- none); `entity_ids` is the JSON list as given. `insight_entities` holds the
-- same ids one per row, so listing the insights about an entity is an exact,
-- indexed match rather than a pattern over JSON text. `conversation_id` has
-- no foreign key: an insight outlives the conversation it came from.

CREATE TABLE insights (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    entity_ids TEXT NOT NULL,
    chart TEXT,
    conversation_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX insights_created_idx ON insights (created_at);
CREATE INDEX insights_kind_idx ON insights (kind, created_at);

CREATE TABLE insight_entities (
    insight_id TEXT NOT NULL REFERENCES insights (id) ON DELETE CASCADE,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (insight_id, entity_id)
);

CREATE INDEX insight_entities_entity_idx ON insight_entities (entity_id);
