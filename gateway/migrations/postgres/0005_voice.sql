-- Call and voicemail recordings (the WAV lives under <data_dir>/recordings/),
-- and who listened to which recording when.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    caller TEXT NOT NULL,
    called TEXT NOT NULL,
    agent TEXT,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    path TEXT NOT NULL
);
CREATE INDEX recordings_started ON recordings (started_at);
CREATE INDEX recordings_caller ON recordings (caller);
CREATE INDEX recordings_conversation ON recordings (conversation_id);
CREATE TABLE recording_access (
    recording_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX recording_access_recording ON recording_access (recording_id, at);
