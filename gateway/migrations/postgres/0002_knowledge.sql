-- Knowledge base (PostgreSQL). Times are Unix milliseconds (UTC); ids are UUID text.
-- Every edit is a new row in kb_versions; kb_articles holds the head and which version is live.
CREATE TABLE kb_articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    lang TEXT NOT NULL,
    tags TEXT NOT NULL,                -- JSON array of strings
    status TEXT NOT NULL,              -- draft | published | archived
    current_version BIGINT NOT NULL,   -- latest version (may be an unpublished draft)
    published_version BIGINT,          -- version served by search while status = published
    source TEXT UNIQUE,                -- import key (relative file path), NULL when written in the UI
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX kb_articles_status ON kb_articles(status, updated_at);

CREATE TABLE kb_versions (
    article_id TEXT NOT NULL REFERENCES kb_articles(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    lang TEXT NOT NULL,
    tags TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (article_id, version)
);
