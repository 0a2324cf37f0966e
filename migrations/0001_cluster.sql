-- shoal's control plane in PostgreSQL (applied by every node on start, in
-- order, once: see src/cluster/schema.rs). Several clusters may share one
-- database; every row names its cluster.

-- The control state (caches, credentials and their capabilities, alerts,
-- delivery configs, watched prefixes, SSO secrets): one versioned document
-- per cluster. A change is an UPDATE guarded by the revision it was made
-- against, and a NOTIFY on shoal_control in the same transaction.
CREATE TABLE shoal_control (
    cluster    text PRIMARY KEY,
    revision   bigint NOT NULL CHECK (revision >= 0),
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Cluster-wide settings: the operator token.
CREATE TABLE shoal_meta (
    cluster text NOT NULL,
    key     text NOT NULL,
    value   text NOT NULL,
    PRIMARY KEY (cluster, key)
);

-- Node membership: each node upserts its row every heartbeat; a node whose
-- heartbeat is older than the node timeout is marked down by any other.
CREATE TABLE shoal_nodes (
    cluster      text NOT NULL,
    name         text NOT NULL,
    host         text NOT NULL,
    ip           text NOT NULL,
    port         integer NOT NULL,
    admin        text NOT NULL,
    state        text NOT NULL CHECK (state IN ('up', 'leaving', 'down')),
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    report       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (cluster, name)
);

-- The discovery list's version (`config get cluster`): bumped by every
-- change of the set of live nodes.
CREATE TABLE shoal_membership (
    cluster text PRIMARY KEY,
    version bigint NOT NULL
);

-- Each node's stats history (the API's analytics), saved every minute.
CREATE TABLE shoal_stats_history (
    cluster  text NOT NULL,
    node     text NOT NULL,
    saved_at timestamptz NOT NULL,
    history  jsonb NOT NULL,
    PRIMARY KEY (cluster, node)
);
