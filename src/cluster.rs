//! Several sichss nodes on one PostgreSQL store: which node holds which Diameter peer, and
//! forwarding of HSS-initiated requests (RTR, PPR; TS 29.229 §6.1.9, §6.1.11) to the node
//! that holds the S-CSCF's connection.
//!
//! An S-CSCF keeps its Diameter connection to one HSS node (or a few), but an
//! administrator may de-register or unsubscribe through any node's API. The node where the
//! request is made sends it itself when it holds a connection to the S-CSCF; otherwise it
//! forwards it through the database:
//!
//! ```text
//! node A (API call)                     PostgreSQL                        node B (holds S-CSCF)
//! peers: NotConnected
//! SELECT node FROM peer_connections ──▶ peer_connections, cluster_nodes
//! INSERT hss_requests + NOTIFY ───────▶ sichss_node_<B> 'req:<id>' ─────▶ claim the row
//!                                                                        send RTR, await RTA
//! wake, read the answer ◀───────────── sichss_node_<A> 'ans:<id>' ◀──── UPDATE answer + NOTIFY
//! ```
//!
//! - **Membership.** Each node has a random id and a row in `cluster_nodes`, refreshed
//!   every second (`seen_at`); a node not seen for [`NODE_TTL`] is taken as gone. It
//!   mirrors its open peer connections into `peer_connections` whenever they change (and
//!   every few seconds), and deletes its row (and so its connections) when it stops.
//! - **Forwarding.** The request's bytes go into `hss_requests`, and a `NOTIFY` on the
//!   target's channel wakes it. The target claims the row (so it is carried out once),
//!   sends the request on its connection with its own request timeout, stores the answer
//!   (or why there is none) and notifies the sender, which then reads and deletes the row.
//!   Notifications can be lost (a listening connection that broke): the target also picks
//!   up unclaimed rows addressed to it every second, and the sender also looks at its row
//!   every half second; the sender gives up after its request timeout plus a margin.
//! - **Bytes only.** Requests and answers are encoded Diameter messages; this module does
//!   not decode them. The composition root supplies the [`Handler`] that sends a request
//!   on a local connection.
//!
//! Must not depend on: the codec, the Cx layer, the server (the composition root connects
//! them); only the PostgreSQL store's pool and location.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::postgres::{describe, PgLocation, PgStore};

/// A node not seen for this long is taken as gone (its connections are not used).
pub const NODE_TTL: Duration = Duration::from_secs(15);

/// How often a node refreshes its heartbeat and looks for requests addressed to it.
const TICK: Duration = Duration::from_secs(1);

/// Margin the sender waits beyond the request timeout, so the target's own timeout
/// report arrives first.
const FORWARD_MARGIN: Duration = Duration::from_secs(2);

/// Carries out a forwarded request on this node: `(origin_host, request bytes)` to the
/// answer's bytes, or why there is none.
pub type Handler = Arc<
    dyn Fn(String, Vec<u8>) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>
        + Send
        + Sync,
>;

/// Why a forwarded request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// No live node holds a connection to this peer.
    #[error(
        "no open Diameter connection to peer {host:?} on this node or on any other sichss node"
    )]
    NoNode {
        /// The peer's Origin-Host.
        host: String,
    },
    /// The node holding the connection did not report back in time.
    #[error("sichss node {node} did not report the answer of peer {host:?} within {timeout:?}")]
    Timeout {
        /// The peer.
        host: String,
        /// The node it was forwarded to.
        node: String,
        /// How long the sender waited.
        timeout: Duration,
    },
    /// The node holding the connection sent the request but got no answer.
    #[error("via sichss node {node}: {error}")]
    Remote {
        /// The node it was forwarded to.
        node: String,
        /// Its report (timeout, connection closed, …).
        error: String,
    },
    /// The database failed.
    #[error("forwarding through PostgreSQL failed: {0}")]
    Backend(String),
}

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: String,
    origin_host: String,
    pool: Pool,
    location: PgLocation,
    handler: Handler,
    forward_timeout: Duration,
    /// Senders waiting for an answer, by request id.
    waiters: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// The last set of peers published, so the heartbeat can republish after a reap.
    published: Mutex<Vec<String>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn backend(what: &str, e: &tokio_postgres::Error) -> ForwardError {
    ForwardError::Backend(format!("{what}: {}", describe(e)))
}

fn channel(node_id: &str) -> String {
    format!("sichss_node_{node_id}")
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl Cluster {
    /// Joins the cluster of the store's database as a new node (a fresh random id), and
    /// starts listening for requests forwarded to it and refreshing its heartbeat.
    /// `handler` carries out those requests; `request_timeout` is this node's wait for an
    /// answer from a peer (forwarded requests are given that plus a margin).
    ///
    /// # Errors
    /// `Backend` when the database refuses the node's row or the listening connection.
    pub async fn join(
        store: &PgStore,
        origin_host: &str,
        handler: Handler,
        request_timeout: Duration,
    ) -> Result<Cluster, ForwardError> {
        let (stop, _) = watch::channel(false);
        let cluster = Cluster {
            inner: Arc::new(Inner {
                node_id: random_hex(8),
                origin_host: origin_host.to_owned(),
                pool: store.pool().clone(),
                location: store.location().clone(),
                handler,
                forward_timeout: request_timeout + FORWARD_MARGIN,
                waiters: Mutex::new(HashMap::new()),
                published: Mutex::new(Vec::new()),
                stop,
            }),
        };
        cluster.register_node().await?;
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(cluster.clone().listen(Some(ready_tx)));
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            _ => {
                return Err(ForwardError::Backend(
                    "the listening connection did not start within 15 s".to_owned(),
                ))
            }
        }
        tokio::spawn(cluster.clone().heartbeat());
        tracing::info!(node = %cluster.inner.node_id, "joined the sichss cluster");
        Ok(cluster)
    }

    /// This node's id (16 hex digits).
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ForwardError> {
        self.inner.pool.get().await.map_err(|e| {
            ForwardError::Backend(format!(
                "cannot get a connection to {}: {e}",
                self.inner.location
            ))
        })
    }

    async fn register_node(&self) -> Result<(), ForwardError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO cluster_nodes (node_id, origin_host) VALUES ($1, $2) \
                 ON CONFLICT (node_id) DO UPDATE SET seen_at = now()",
                &[&self.inner.node_id, &self.inner.origin_host],
            )
            .await
            .map_err(|e| backend("registering this node", &e))?;
        Ok(())
    }

    /// Records the Origin-Hosts this node has open connections to (replacing the last
    /// set).
    ///
    /// # Errors
    /// `Backend` when the database fails.
    pub async fn publish_connections(&self, hosts: &[String]) -> Result<(), ForwardError> {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.sort();
        hosts.dedup();
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| backend("publishing connections", &e))?;
        tx.execute(
            "DELETE FROM peer_connections WHERE node_id = $1 AND NOT (origin_host = ANY($2))",
            &[&self.inner.node_id, &hosts],
        )
        .await
        .map_err(|e| backend("publishing connections", &e))?;
        tx.execute(
            "INSERT INTO peer_connections (origin_host, node_id) \
             SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
            &[&self.inner.node_id, &hosts],
        )
        .await
        .map_err(|e| backend("publishing connections", &e))?;
        tx.commit()
            .await
            .map_err(|e| backend("publishing connections", &e))?;
        *lock(&self.inner.published) = hosts;
        Ok(())
    }

    /// Keeps `peer_connections` in step with this node: publishes `hosts()` now, whenever
    /// `changed` ticks, and every 5 s.
    pub fn spawn_connection_sync<F>(&self, hosts: F, mut changed: watch::Receiver<u64>)
    where
        F: Fn() -> Vec<String> + Send + 'static,
    {
        let this = self.clone();
        let mut stop = self.inner.stop.subscribe();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.publish_connections(&hosts()).await {
                    tracing::warn!(error = %e, "cannot publish this node's peer connections");
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// Sends `request` (an encoded Diameter request) to the peer `origin_host` through
    /// the node that holds its connection, and returns the encoded answer.
    ///
    /// # Errors
    /// [`ForwardError::NoNode`] when no live node holds it, `Timeout` when that node does
    /// not report back in time, `Remote` when it got no answer, `Backend` for the database.
    pub async fn forward(
        &self,
        origin_host: &str,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, ForwardError> {
        let host = origin_host.to_ascii_lowercase();
        let ttl = format!("{} seconds", NODE_TTL.as_secs());
        let target: Option<String> = {
            let client = self.client().await?;
            client
                .query_opt(
                    "SELECT p.node_id FROM peer_connections p \
                     JOIN cluster_nodes n ON n.node_id = p.node_id \
                     WHERE p.origin_host = $1 AND p.node_id <> $2 \
                       AND n.seen_at > now() - $3::text::interval \
                     ORDER BY p.connected_at DESC LIMIT 1",
                    &[&host, &self.inner.node_id, &ttl],
                )
                .await
                .map_err(|e| backend("finding the node of a peer", &e))?
                .map(|r| r.get(0))
        };
        let Some(node) = target else {
            return Err(ForwardError::NoNode {
                host: origin_host.to_owned(),
            });
        };
        let id = random_hex(16);
        let (tx, mut rx) = oneshot::channel();
        lock(&self.inner.waiters).insert(id.clone(), tx);
        let result = self.forward_to(&id, &node, &host, request, &mut rx).await;
        lock(&self.inner.waiters).remove(&id);
        result
    }

    async fn forward_to(
        &self,
        id: &str,
        node: &str,
        host: &str,
        request: Vec<u8>,
        rx: &mut oneshot::Receiver<()>,
    ) -> Result<Vec<u8>, ForwardError> {
        // No pooled connection is held while waiting: the pool serves Cx traffic too.
        self.client()
            .await?
            .execute(
                "WITH r AS (INSERT INTO hss_requests (id, from_node, to_node, origin_host, request) \
                            VALUES ($1, $2, $3, $4, $5) RETURNING id) \
                 SELECT pg_notify($6, 'req:' || id) FROM r",
                &[
                    &id,
                    &self.inner.node_id,
                    &node,
                    &host,
                    &request,
                    &channel(node),
                ],
            )
            .await
            .map_err(|e| backend("forwarding a request", &e))?;
        tracing::debug!(peer = host, node, id, "forwarded an HSS-initiated request");
        let deadline = tokio::time::Instant::now() + self.inner.forward_timeout;
        let answered = loop {
            tokio::select! {
                _ = &mut *rx => break true,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT 1 FROM hss_requests WHERE id = $1 AND answered_at IS NOT NULL",
                    &[&id],
                )
                .await
                .map_err(|e| backend("reading a forwarded answer", &e))?;
            if row.is_some() {
                break true;
            }
            if tokio::time::Instant::now() >= deadline {
                break false;
            }
        };
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM hss_requests WHERE id = $1 \
                 RETURNING answer, error, answered_at IS NOT NULL",
                &[&id],
            )
            .await
            .map_err(|e| backend("reading a forwarded answer", &e))?;
        match row {
            Some(row) if answered || row.get::<_, bool>(2) => {
                let answer: Option<Vec<u8>> = row.get(0);
                let error: Option<String> = row.get(1);
                match (answer, error) {
                    (Some(a), _) => Ok(a),
                    (None, e) => Err(ForwardError::Remote {
                        node: node.to_owned(),
                        error: e.unwrap_or_else(|| "no answer and no reason".to_owned()),
                    }),
                }
            }
            _ => Err(ForwardError::Timeout {
                host: host.to_owned(),
                node: node.to_owned(),
                timeout: self.inner.forward_timeout,
            }),
        }
    }

    /// Claims request `id` (if addressed to this node and not yet claimed), carries it out
    /// and reports the answer to its sender.
    async fn serve_request(self, id: String) {
        if let Err(e) = self.try_serve_request(&id).await {
            tracing::warn!(id, error = %e, "cannot carry out a forwarded request");
        }
    }

    async fn try_serve_request(&self, id: &str) -> Result<(), ForwardError> {
        let claimed = {
            let client = self.client().await?;
            client
                .query_opt(
                    "UPDATE hss_requests SET claimed_at = now() \
                     WHERE id = $1 AND to_node = $2 AND claimed_at IS NULL \
                     RETURNING origin_host, request",
                    &[&id, &self.inner.node_id],
                )
                .await
                .map_err(|e| backend("claiming a forwarded request", &e))?
        };
        let Some(row) = claimed else {
            return Ok(());
        };
        let (host, request): (String, Vec<u8>) = (row.get(0), row.get(1));
        tracing::debug!(peer = %host, id, "carrying out a forwarded request");
        let outcome = (self.inner.handler)(host, request).await;
        let (answer, error) = match outcome {
            Ok(a) => (Some(a), None),
            Err(e) => (None, Some(e)),
        };
        let client = self.client().await?;
        client
            .execute(
                "WITH r AS (UPDATE hss_requests SET answer = $2, error = $3, answered_at = now() \
                            WHERE id = $1 RETURNING id, from_node) \
                 SELECT pg_notify('sichss_node_' || from_node, 'ans:' || id) FROM r",
                &[&id, &answer, &error],
            )
            .await
            .map_err(|e| backend("reporting a forwarded answer", &e))?;
        Ok(())
    }

    /// Listens on this node's channel, reconnecting when the connection breaks. Reports
    /// the first attempt's outcome through `ready`.
    async fn listen(self, mut ready: Option<oneshot::Sender<Result<(), ForwardError>>>) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let attempt = async {
                let (client, mut connection) =
                    self.inner.location.config().connect(NoTls)
                        .await
                        .map_err(|e| backend("opening the listening connection", &e))?;
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = tx.send(n.payload().to_owned());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %describe(&e), "the listening connection failed");
                                break;
                            }
                        }
                    }
                });
                client
                    .batch_execute(&format!("LISTEN {}", channel(&self.inner.node_id)))
                    .await
                    .map_err(|e| backend("listening for forwarded requests", &e))?;
                Ok::<_, ForwardError>((client, driver))
            }
            .await;
            let (client, driver) = match attempt {
                Ok(ok) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok(()));
                    }
                    ok
                }
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e));
                        return;
                    }
                    tracing::warn!(error = %e, "cannot listen for forwarded requests; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            loop {
                tokio::select! {
                    payload = rx.recv() => match payload {
                        Some(p) => self.on_notification(&p),
                        None => break,
                    },
                    _ = stop.changed() => {
                        driver.abort();
                        return;
                    }
                }
            }
            drop(client);
            tokio::time::sleep(TICK).await;
        }
    }

    fn on_notification(&self, payload: &str) {
        if let Some(id) = payload.strip_prefix("req:") {
            tokio::spawn(self.clone().serve_request(id.to_owned()));
        } else if let Some(id) = payload.strip_prefix("ans:") {
            if let Some(w) = lock(&self.inner.waiters).remove(id) {
                let _ = w.send(());
            }
        }
    }

    /// Every second: refresh `seen_at` (re-registering if the row was reaped), pick up
    /// unclaimed requests addressed to this node; every minute, reap nodes and requests
    /// older than an hour.
    async fn heartbeat(self) {
        let mut stop = self.inner.stop.subscribe();
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.changed() => return,
            }
            ticks += 1;
            if let Err(e) = self.beat(ticks % 60 == 0).await {
                tracing::warn!(error = %e, "cluster heartbeat failed");
            }
        }
    }

    async fn beat(&self, reap: bool) -> Result<(), ForwardError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE cluster_nodes SET seen_at = now() WHERE node_id = $1",
                &[&self.inner.node_id],
            )
            .await
            .map_err(|e| backend("refreshing the heartbeat", &e))?;
        if n == 0 {
            drop(client);
            self.register_node().await?;
            let hosts = lock(&self.inner.published).clone();
            self.publish_connections(&hosts).await?;
            return Ok(());
        }
        let pending = client
            .query(
                "SELECT id FROM hss_requests WHERE to_node = $1 AND claimed_at IS NULL",
                &[&self.inner.node_id],
            )
            .await
            .map_err(|e| backend("looking for forwarded requests", &e))?;
        for row in pending {
            tokio::spawn(self.clone().serve_request(row.get(0)));
        }
        if reap {
            client
                .batch_execute(
                    "DELETE FROM cluster_nodes WHERE seen_at < now() - interval '1 hour'; \
                     DELETE FROM hss_requests WHERE created_at < now() - interval '1 hour'",
                )
                .await
                .map_err(|e| backend("reaping old nodes", &e))?;
        }
        Ok(())
    }

    /// Leaves the cluster: stops the tasks and deletes this node's row (and with it its
    /// published connections).
    pub async fn leave(&self) {
        let _ = self.inner.stop.send(true);
        match self.client().await {
            Ok(client) => {
                if let Err(e) = client
                    .execute(
                        "DELETE FROM cluster_nodes WHERE node_id = $1",
                        &[&self.inner.node_id],
                    )
                    .await
                {
                    tracing::warn!(error = %describe(&e), "cannot remove this node's row");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove this node's row"),
        }
    }
}
