-- Routing (ACD): queue and agent configuration, agents' presence, and the
-- routing leader's latest snapshot for the supervisor view.
-- Configuration values are JSON documents of the router crate's types.
CREATE TABLE routing_queues (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE agent_routing (
    agent_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per agent who ever set a presence; `version` grows by one per change.
CREATE TABLE agent_presence (
    agent_id TEXT PRIMARY KEY,
    presence TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX agent_presence_changed ON agent_presence(changed_at);

-- Counters: `config_version` grows on every configuration change.
CREATE TABLE routing_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO routing_meta (key, value) VALUES ('config_version', 1);

-- The routing leader writes its live view here about once a second.
CREATE TABLE routing_snapshot (
    id BIGINT PRIMARY KEY,
    leader TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
