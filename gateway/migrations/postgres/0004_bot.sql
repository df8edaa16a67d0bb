-- The virtual agent's memory per conversation (language, clarification and
-- misunderstanding counts, transcript), saved after each turn.
CREATE TABLE bot_state (
    conversation_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
