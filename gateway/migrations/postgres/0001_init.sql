-- Switchboard schema (PostgreSQL). Times are Unix milliseconds (UTC); ids are UUID text.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE customer_tokens (
    token_hash TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Projection of each conversation, folded from its events (see `state`).
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    contact_id TEXT NOT NULL,
    waiting_since BIGINT,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX conversations_status_updated ON conversations(status, updated_at);
CREATE INDEX conversations_assignee ON conversations(assignee, status, updated_at);

-- The event log: the system of record.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    client_msg_id TEXT,
    body TEXT NOT NULL,
    published BIGINT NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX events_client_msg ON events(conversation_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
CREATE INDEX events_unpublished ON events(id) WHERE published = 0;
