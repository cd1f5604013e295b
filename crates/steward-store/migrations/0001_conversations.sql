-- Conversations and their messages.
--
-- Portable between SQLite and PostgreSQL: TEXT and BIGINT only, no
-- AUTOINCREMENT/SERIAL. Ids are uuid v4 strings, times are milliseconds since
-- the Unix epoch, tool_calls is a JSON array as text (NULL when empty).

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    title TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX conversations_updated_at_idx ON conversations (updated_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_calls TEXT,
    tool_call_id TEXT,
    name TEXT,
    turn_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
