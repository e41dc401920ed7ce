-- 002: several sichss nodes on one database.
--
-- cluster_nodes: every running node, with a heartbeat (seen_at) a few seconds old at most.
-- peer_connections: which node holds an open Diameter connection to which peer
-- (Origin-Host, lower case), so that an HSS-initiated request (RTR, PPR) made on one node
-- can be carried out by the node the S-CSCF is connected to.
-- hss_requests: such a forwarded request and, once carried out, its answer. The nodes
-- wake each other with NOTIFY on the channel sichss_node_<node_id>.

CREATE TABLE cluster_nodes (
    node_id     text PRIMARY KEY,
    origin_host text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE peer_connections (
    origin_host  text NOT NULL,
    node_id      text NOT NULL REFERENCES cluster_nodes (node_id) ON DELETE CASCADE,
    connected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin_host, node_id)
);

CREATE TABLE hss_requests (
    id          text PRIMARY KEY,
    from_node   text NOT NULL,
    to_node     text NOT NULL,
    origin_host text NOT NULL,
    request     bytea NOT NULL,
    claimed_at  timestamptz,
    answer      bytea,
    error       text,
    answered_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hss_requests_unclaimed ON hss_requests (to_node) WHERE claimed_at IS NULL;
