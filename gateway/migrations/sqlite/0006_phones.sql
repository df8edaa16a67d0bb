-- Agents' SIP phones. A user may have one SIP account; the registrar keeps
-- only its HA1 digest (MD5 of username:realm:secret), never the secret.
CREATE TABLE sip_accounts (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    username TEXT NOT NULL UNIQUE,
    realm TEXT NOT NULL,
    ha1 TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Where each registered phone can be reached, written by the node whose
-- registrar accepted the REGISTER. Rows past expires_at are stale.
CREATE TABLE sip_registrations (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    transport TEXT NOT NULL,
    node TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX sip_registrations_username ON sip_registrations (username);
