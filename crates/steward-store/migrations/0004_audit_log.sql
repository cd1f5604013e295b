-- The tamper-evident audit log: one row per decision or action, chained by
-- SHA-256 (see steward_core::audit).
--
-- `seq` runs 1, 2, 3 … with no gaps; its uniqueness is what makes
-- concurrent appenders form one chain (a loser retries). `targets` is a
-- JSON list of strings and `detail` a JSON value, both as text; `hash` is
-- the lower-case hex SHA-256 of the row's content and `prev_hash`.

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    targets TEXT NOT NULL,
    detail TEXT NOT NULL,
    trace_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
