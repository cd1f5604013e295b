-- Snapshots: named copies of the agents' memory and state (conversations
-- with their messages, insights, and the demo home's entity states), to go
-- back to later. `summary` is the JSON of what it holds in numbers, which
-- listing reads; `body` is the JSON of everything, which only a load reads.
-- Nothing refers to a snapshot, and a snapshot refers to nothing: it is a
-- copy, kept as text.

CREATE TABLE snapshots (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE INDEX snapshots_created_idx ON snapshots (created_at);
