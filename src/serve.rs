//! `sichss serve`: the composition root. Reads the configuration, opens the store, wires
//! the Cx application to the Diameter server and the provisioning API, and runs until
//! Ctrl-C or SIGTERM, then shuts down gracefully (DPR to every peer, requests in flight
//! finished, store flushed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{Application, PeerInfo};
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError};
use crate::cx::{CxApp, CX_APPLICATION_ID};
use crate::dict::Dictionary;
use crate::peer::{AllowEntry, Allowlist, LocalIdentity};
use crate::server::{PeerError, Peers, Server, ServerConfig};
use crate::store::any::{AnyStore, StoreLocation};
use crate::store::secrets::{EncryptingStore, SecretsKey};
use crate::store::SubscriberStore;

/// Flags of `sichss serve`; each overrides the configuration file, and each has an
/// environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (every setting optional).
    #[arg(long, env = "SICHSS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded sled store [default: ./sichss-data]; the same as
    /// `--store sled:DIR`.
    #[arg(long, env = "SICHSS_DATA")]
    pub data: Option<PathBuf>,
    /// The store: `sled:DIR`, or `postgres://[user[:password]@]host[:port]/db[?schema=NAME]`
    /// to share one PostgreSQL database between several nodes (migrated at start).
    #[arg(long, env = "SICHSS_STORE", hide_env_values = true, value_name = "URL")]
    pub store: Option<String>,
    /// Diameter listen address(es), IPv4 or IPv6 [default: 127.0.0.1:3868].
    #[arg(long, env = "SICHSS_LISTEN", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,
    /// Provisioning API listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SICHSS_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token of the provisioning API (required beyond loopback).
    #[arg(long, env = "SICHSS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Diameter Origin-Host of this HSS.
    #[arg(long, env = "SICHSS_ORIGIN_HOST")]
    pub origin_host: Option<String>,
    /// Diameter Origin-Realm of this HSS.
    #[arg(long, env = "SICHSS_ORIGIN_REALM")]
    pub origin_realm: Option<String>,
    /// S-CSCF SIP URI named in Server-Capabilities [default: sip:127.0.0.1:6060].
    #[arg(long, env = "SICHSS_DEFAULT_SCSCF")]
    pub default_scscf: Option<String>,
    /// Diameter over TLS listen address(es) (TLS from the first byte, RFC 6733 §13; 5658
    /// by convention), beside the TCP ones; needs --tls-cert and --tls-key.
    #[arg(long, env = "SICHSS_TLS_LISTEN", value_delimiter = ',')]
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for Diameter over TLS (leaf first).
    #[arg(long, env = "SICHSS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SICHSS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of CAs whose client certificates Diameter peers must present (mutual TLS).
    #[arg(long, env = "SICHSS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// PEM certificate chain: serve the provisioning API over HTTPS.
    #[arg(long, env = "SICHSS_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of --admin-tls-cert.
    #[arg(long, env = "SICHSS_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<PathBuf>,
    /// File with the 32-octet key (64 hex digits or base64) that encrypts K, OPc, OP and
    /// passwords at rest. The key itself may instead be given in SICHSS_SECRETS_KEY.
    #[arg(long, env = "SICHSS_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// Provision the demo subscribers if absent, and print how to try them.
    #[arg(long)]
    pub demo: bool,
}

/// The environment variable that may hold the secrets key itself (not a file).
pub const SECRETS_KEY_ENV: &str = "SICHSS_SECRETS_KEY";

/// Why `sichss serve` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store {location}: {error} ({hint})")]
    Store {
        /// `sled:DIR` or the URL with its password hidden.
        location: String,
        /// Why.
        error: crate::store::StoreError,
        /// What to check.
        hint: &'static str,
    },
    /// This node could not join the other nodes on the PostgreSQL store.
    #[error("cannot join the cluster on {location}: {error}")]
    Cluster {
        /// The URL with its password hidden.
        location: String,
        /// Why.
        error: crate::cluster::ForwardError,
    },
    /// A listener could not be bound.
    #[error("{0} (choose another address with --listen / --admin-listen)")]
    Bind(std::io::Error),
    /// A dictionary file could not be loaded.
    #[error("dictionary {path}: {error}")]
    Dictionary {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// The provisioning API refused its settings.
    #[error("{0}")]
    Admin(String),
    /// The store failed while provisioning the demo.
    #[error("provisioning the demo subscribers: {0}")]
    Demo(crate::store::StoreError),
    /// A TLS certificate, key or CA file is unusable.
    #[error("{setting}: {error}")]
    Tls {
        /// The settings at fault, e.g. `[diameter.tls] / --tls-cert, --tls-key, --tls-client-ca`.
        setting: &'static str,
        /// Why.
        error: crate::tls::TlsError,
    },
    /// The secrets key is missing, unreadable or does not fit the store.
    #[error("{0}")]
    Secrets(String),
}

impl ServeArgs {
    /// The effective configuration: defaults, then the file, then flags and environment.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or a value is invalid.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        match (&self.data, &self.store) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    setting: "store",
                    problem: "give --data DIR or --store URL, not both (--data DIR is \
                              --store sled:DIR)"
                        .into(),
                })
            }
            (Some(d), None) => {
                c.store.data = d.clone();
                c.store.url = None;
            }
            (None, Some(url)) => c.store.url = Some(url.clone()),
            (None, None) => {}
        }
        if !self.listen.is_empty() {
            c.diameter.listen = self.listen.clone();
        }
        if let Some(a) = self.admin_listen {
            c.admin.listen = a;
        }
        if let Some(t) = &self.admin_token {
            c.admin.token = Some(t.clone());
        }
        if let Some(h) = &self.origin_host {
            c.diameter.origin_host = h.clone();
        }
        if let Some(r) = &self.origin_realm {
            c.diameter.origin_realm = r.clone();
        }
        if let Some(s) = &self.default_scscf {
            c.cx.default_scscf = s.clone();
        }
        if !self.tls_listen.is_empty() {
            c.diameter.tls.listen = self.tls_listen.clone();
        }
        if let Some(p) = &self.tls_cert {
            c.diameter.tls.cert = Some(p.clone());
        }
        if let Some(p) = &self.tls_key {
            c.diameter.tls.key = Some(p.clone());
        }
        if let Some(p) = &self.tls_client_ca {
            c.diameter.tls.client_ca = Some(p.clone());
        }
        if let Some(p) = &self.admin_tls_cert {
            c.admin.tls.cert = Some(p.clone());
        }
        if let Some(p) = &self.admin_tls_key {
            c.admin.tls.key = Some(p.clone());
        }
        if let Some(p) = &self.secrets_key_file {
            c.store.secrets_key_file = Some(p.clone());
        }
        c.check()?;
        Ok(c)
    }
}

/// The Cx application as the server sees it: answers Cx requests and counts them.
pub struct CxService<S> {
    /// The Cx application.
    pub cx: CxApp<S>,
    /// Request counters and latency histograms, shown on /metrics.
    pub metrics: Arc<crate::api::metrics::Metrics>,
}

impl<S: SubscriberStore> Application for CxService<S> {
    fn application_ids(&self) -> &[u32] {
        &[CX_APPLICATION_ID]
    }

    async fn handle(&self, req: crate::codec::Message, _peer: &PeerInfo) -> crate::codec::Message {
        let started = Instant::now();
        let answer = self.cx.handle(&req).await;
        let code = answer
            .result_code()
            .map(|r| r.0)
            .or_else(|| answer.experimental_result().map(|e| e.0))
            .unwrap_or(0);
        self.metrics.record_request(
            crate::cx::command_abbrev(req.header.command),
            code,
            started.elapsed(),
        );
        answer
    }
}

/// Sends HSS-initiated requests through the server's peer registry; with a PostgreSQL
/// store, a request for a peer this node has no connection to is forwarded to the node
/// that has one ([`crate::cluster`]).
struct PeerRequests {
    peers: Peers,
    cluster: Option<Cluster>,
    dict: Arc<Dictionary>,
}

impl crate::api::HssRequests for PeerRequests {
    fn send<'a>(
        &'a self,
        origin_host: &'a str,
        mut req: crate::codec::Message,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<crate::codec::Message, String>> + Send + 'a>,
    > {
        Box::pin(async move {
            req.header.end_to_end = self.peers.next_end_to_end();
            let Some(cluster) = &self.cluster else {
                return self
                    .peers
                    .send_request(origin_host, req)
                    .await
                    .map_err(|e| e.to_string());
            };
            let copy = req.clone();
            match self.peers.send_request(origin_host, req).await {
                Err(PeerError::NotConnected { .. }) => {}
                other => return other.map_err(|e| e.to_string()),
            }
            let answer = cluster
                .forward(origin_host, copy.encode())
                .await
                .map_err(|e| e.to_string())?;
            crate::codec::decode_message(&answer, &self.dict).map_err(|e| {
                format!("the answer of peer {origin_host:?} forwarded by another node does not decode: {e}")
            })
        })
    }
}

/// Carries out a request forwarded by another node: sends it on this node's connection
/// (never forwarding again) and returns the encoded answer.
fn forwarded_request_handler(peers: Peers, dict: Arc<Dictionary>) -> crate::cluster::Handler {
    Arc::new(move |origin_host: String, request: Vec<u8>| {
        let (peers, dict) = (peers.clone(), dict.clone());
        Box::pin(async move {
            let req = crate::codec::decode_message(&request, &dict)
                .map_err(|e| format!("the forwarded request does not decode: {e}"))?;
            match peers.send_request(&origin_host, req).await {
                Ok(answer) => Ok(answer.encode()),
                Err(e @ PeerError::NotConnected { .. }) => {
                    Err(format!("{e} (it disconnected from this node)"))
                }
                Err(e) => Err(e.to_string()),
            }
        })
    })
}

fn allowlist(c: &Config) -> Result<Allowlist, ConfigError> {
    if c.diameter.peers.is_empty() {
        return Ok(Allowlist::loopback());
    }
    let mut entries = Vec::new();
    for p in &c.diameter.peers {
        let source = match &p.source {
            None => None,
            Some(s) => Some(s.parse().map_err(|e| ConfigError::Invalid {
                setting: "diameter.peers.source",
                problem: format!("{s:?}: {e} (expected an address or prefix such as 10.0.0.0/8)"),
            })?),
        };
        entries.push(AllowEntry {
            origin_host: p.origin_host.clone(),
            source,
        });
    }
    Ok(Allowlist { entries })
}

/// The secrets key from `[store] secrets_key_file` (or its flag), else from the
/// SICHSS_SECRETS_KEY environment variable (`env_key`); `None` when neither is given.
///
/// # Errors
/// [`ServeError::Secrets`]: both given, or the key unreadable or malformed.
pub fn secrets_key(cfg: &Config, env_key: Option<&str>) -> Result<Option<SecretsKey>, ServeError> {
    let env_key = env_key.filter(|k| !k.trim().is_empty());
    match (&cfg.store.secrets_key_file, env_key) {
        (Some(_), Some(_)) => Err(ServeError::Secrets(format!(
            "the secrets key is given twice, as a file (--secrets-key-file / [store] secrets_key_file) and in {SECRETS_KEY_ENV}: give one"
        ))),
        (Some(path), None) => SecretsKey::from_file(path)
            .map(Some)
            .map_err(|e| ServeError::Secrets(e.to_string())),
        (None, Some(k)) => SecretsKey::parse(k, SECRETS_KEY_ENV)
            .map(Some)
            .map_err(|e| ServeError::Secrets(e.to_string())),
        (None, None) => Ok(None),
    }
}

/// The TLS settings of the Diameter listeners and of the API, when configured.
type TlsConfigs = (
    Option<Arc<rustls::ServerConfig>>,
    Option<Arc<rustls::ServerConfig>>,
);

fn tls_configs(cfg: &Config) -> Result<TlsConfigs, ServeError> {
    let t = &cfg.diameter.tls;
    let diameter = match (&t.cert, &t.key, t.listen.is_empty()) {
        (Some(cert), Some(key), false) => Some(
            crate::tls::server_config(cert, key, t.client_ca.as_deref(), &[]).map_err(
                |error| ServeError::Tls {
                    setting: "Diameter TLS ([diameter.tls] cert/key/client_ca, --tls-cert/--tls-key/--tls-client-ca)",
                    error,
                },
            )?,
        ),
        _ => None,
    };
    let a = &cfg.admin.tls;
    let api = match (&a.cert, &a.key) {
        (Some(cert), Some(key)) => Some(
            crate::tls::server_config(cert, key, None, &[b"http/1.1"]).map_err(|error| {
                ServeError::Tls {
                    setting: "API TLS ([admin.tls] cert/key, --admin-tls-cert/--admin-tls-key)",
                    error,
                }
            })?,
        ),
        _ => None,
    };
    Ok((diameter, api))
}

/// Runs the HSS until Ctrl-C or SIGTERM.
///
/// # Errors
/// Whatever prevents starting; once running, errors are logged and answered.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let cfg = args.config()?;
    let started = Instant::now();

    let mut dict = Dictionary::with_builtin();
    for path in &cfg.diameter.dictionaries {
        let text = std::fs::read_to_string(path).map_err(|e| ServeError::Dictionary {
            path: path.clone(),
            error: e.to_string(),
        })?;
        dict.load_str(&text).map_err(|e| ServeError::Dictionary {
            path: path.clone(),
            error: e.to_string(),
        })?;
    }
    let dict = Arc::new(dict);

    let (diameter_tls, api_tls) = tls_configs(&cfg)?;
    let key = secrets_key(&cfg, std::env::var(SECRETS_KEY_ENV).ok().as_deref())?;

    let location = cfg.store.location()?;
    let store = AnyStore::open(&location, cfg.store.pool_size)
        .await
        .map_err(|error| ServeError::Store {
            location: location.to_string(),
            error,
            hint: match location {
                StoreLocation::Sled(_) => "is another sichss using it? choose another --data DIR",
                StoreLocation::Postgres(_) => {
                    "is the server up, and may this user connect and create tables?"
                }
            },
        })?;
    let store = EncryptingStore::new(store, key);
    let check = store
        .check_key()
        .await
        .map_err(|e| ServeError::Secrets(e.to_string()))?;
    if store.encrypts() {
        tracing::info!(
            verified = check.encrypted_found,
            "secrets encrypted at rest (AES-256-GCM)"
        );
        if check.plaintext_records > 0 {
            tracing::warn!(
                records = check.plaintext_records,
                scanned = check.scanned,
                "some subscribers still hold plaintext secrets; each is encrypted when next \
                 written, or all at once with `sichss export` then `sichss import`"
            );
        }
    }
    let store = Arc::new(store);
    if args.demo {
        provision_demo(store.as_ref()).await?;
    }
    // Known at once after a clean stop; after a crash the sled store counts its records in
    // the background (Cx requests are served meanwhile), and the count is logged then.
    let subscribers = match futures_util::FutureExt::now_or_never(store.count()) {
        Some(n) => n.unwrap_or(0).to_string(),
        None => {
            let store = store.clone();
            tokio::spawn(async move {
                if let Ok(n) = store.count().await {
                    tracing::info!(subscribers = n, "subscribers counted");
                }
            });
            "counting".to_owned()
        }
    };

    let cx = CxApp::new(store.clone(), cfg.cx_config());
    let metrics = Arc::new(crate::api::metrics::Metrics::default());
    let peers = Peers::new();

    let mut local = LocalIdentity::new(&cfg.diameter.origin_host, &cfg.diameter.origin_realm);
    local.host_ip_addresses = Vec::new();
    let server_cfg = ServerConfig {
        listen: cfg.diameter.listen.clone(),
        local,
        allowlist: allowlist(&cfg)?,
        max_message_len: cfg.diameter.max_message_len,
        watchdog_tw: Duration::from_secs(cfg.diameter.watchdog_seconds.max(6)),
        request_timeout: Duration::from_millis(cfg.diameter.request_timeout_ms),
        max_in_flight_per_connection: cfg.diameter.max_in_flight_per_connection,
        max_in_flight_total: cfg.diameter.max_in_flight_total,
        max_queued_per_connection: cfg.diameter.max_queued_per_connection,
        connection_buffer_bytes: cfg.diameter.connection_buffer_bytes,
        max_connections: cfg.diameter.max_connections,
        max_connections_per_address: cfg.diameter.max_connections_per_address,
        incomplete_message_timeout: Duration::from_millis(
            cfg.diameter.incomplete_message_timeout_ms,
        ),
        write_timeout: Duration::from_millis(cfg.diameter.write_timeout_ms),
        tls_listen: cfg.diameter.tls.listen.clone(),
        tls: diameter_tls,
        tls_handshake_timeout: Duration::from_millis(cfg.diameter.tls.handshake_timeout_ms),
        ..ServerConfig::new(LocalIdentity::new("x", "x"))
    };
    let service = Arc::new(CxService {
        cx: cx.clone(),
        metrics: metrics.clone(),
    });
    let server = Server::bind(server_cfg, service, dict.clone(), peers.clone())
        .await
        .map_err(ServeError::Bind)?;
    let cluster = match store.inner().postgres() {
        None => None,
        Some(pg) => {
            let cluster = Cluster::join(
                pg,
                &cfg.diameter.origin_host,
                forwarded_request_handler(peers.clone(), dict.clone()),
                Duration::from_millis(cfg.diameter.request_timeout_ms),
            )
            .await
            .map_err(|error| ServeError::Cluster {
                location: location.to_string(),
                error,
            })?;
            let listed = peers.clone();
            cluster.spawn_connection_sync(
                move || {
                    listed
                        .list()
                        .into_iter()
                        .filter(|p| p.state == crate::peer::PeerState::Open)
                        .map(|p| p.origin_host)
                        .collect()
                },
                peers.changes(),
            );
            Some(cluster)
        }
    };
    let diameter_addrs = server.local_addrs();
    let diameter_tls_addrs = server.tls_local_addrs();

    crate::api::check_listen(cfg.admin.listen, cfg.admin.token.as_deref())
        .map_err(ServeError::Admin)?;
    let api_listener = tokio::net::TcpListener::bind(cfg.admin.listen)
        .await
        .map_err(|e| {
            ServeError::Bind(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", cfg.admin.listen),
            ))
        })?;
    let api_addr = api_listener.local_addr().map_err(ServeError::Bind)?;
    let api_state = crate::api::ApiState::new(
        cx,
        Arc::new(PeerRequests {
            peers: peers.clone(),
            cluster: cluster.clone(),
            dict: dict.clone(),
        }),
        metrics.clone(),
        cfg.admin.token.clone(),
    );
    // Peers and store flushes, refreshed for /metrics.
    {
        let (peers, store, metrics) = (peers.clone(), store.clone(), metrics.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                metrics.set_peers(
                    peers
                        .list()
                        .into_iter()
                        .map(|p| (p.origin_host, format!("{:?}", p.state)))
                        .collect(),
                );
                metrics.set_store_stats(store.stats());
            }
        });
    }

    let join = |v: &[SocketAddr]| {
        v.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    // TLS fields only when configured, so existing readers of the line see what they did.
    let mut tls_fields = String::new();
    if !diameter_tls_addrs.is_empty() {
        tls_fields.push_str(&format!(" diameter_tls={}", join(&diameter_tls_addrs)));
    }
    if api_tls.is_some() {
        tls_fields.push_str(" api_scheme=https");
    }
    let signals = stop_signals();
    // One line for people and scripts: tests read the bound ports from it.
    println!(
        "sichss listening diameter={} api={} store={}{} subscribers={} startup_ms={}{tls_fields}",
        join(&diameter_addrs),
        api_addr,
        location,
        cluster
            .as_ref()
            .map(|c| format!(" node={}", c.node_id()))
            .unwrap_or_default(),
        subscribers,
        started.elapsed().as_millis()
    );
    if args.demo {
        let scheme = if api_tls.is_some() { "https" } else { "http" };
        print_demo_help(&diameter_addrs, scheme, api_addr);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let api = match api_tls {
        Some(tls) => tokio::spawn(crate::api::serve_tls(
            api_listener,
            tls,
            api_state,
            wait_stop(stop_rx.clone()),
        )),
        None => tokio::spawn(crate::api::serve(
            api_listener,
            api_state,
            wait_stop(stop_rx.clone()),
        )),
    };
    let diameter = tokio::spawn(server.serve(wait_stop(stop_rx)));

    shutdown_signal(signals).await;
    tracing::info!("stopping: sending DPR to peers and finishing requests in flight");
    let _ = stop_tx.send(true);
    let _ = diameter.await;
    let _ = api.await;
    if let Some(c) = &cluster {
        c.leave().await;
    }
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// The stop signals (SIGTERM, SIGINT), listened for from before the ready line is
/// printed: a SIGTERM sent as soon as that line appears still stops the server gracefully
/// instead of killing it (the default action while no handler is installed).
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

fn stop_signals() -> StopSignals {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        StopSignals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }
    #[cfg(not(unix))]
    {
        StopSignals {}
    }
}

async fn shutdown_signal(signals: StopSignals) {
    #[cfg(unix)]
    {
        async fn recv(s: Option<tokio::signal::unix::Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(signals.term) => {}
            _ = recv(signals.int) => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = signals;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Creates demo subscribers A and B unless they exist (another node sharing the store
/// may create them at the same moment: that is fine).
async fn provision_demo<S: SubscriberStore>(store: &S) -> Result<(), ServeError> {
    for sub in [crate::demo::subscriber_a(), crate::demo::subscriber_b()] {
        if store
            .get(&sub.imsi)
            .await
            .map_err(ServeError::Demo)?
            .is_none()
        {
            tracing::info!(imsi = %sub.imsi, "provisioning demo subscriber");
            match store.create(sub).await {
                Ok(()) | Err(crate::store::StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(ServeError::Demo(e)),
            }
        }
    }
    Ok(())
}

fn print_demo_help(diameter: &[SocketAddr], scheme: &str, api: SocketAddr) {
    let d = diameter.first().map(|a| a.to_string()).unwrap_or_default();
    println!(
        "\
demo subscribers provisioned (K <set>, OPc <set>, AMF 8000, SIP Digest password <set>):
  A  IMSI {ia}  MSISDN {ma}
     VoLTE (SIC 001)  IMPI {va}
     RCS   (SIC 002)  IMPI {ra}
     shared IMPUs     sip:{ma}@{dom}  tel:{ma}
  B  IMSI {ib}  MSISDN {mb}  plain IMPI {pb}
try:
  sichss subscriber show --imsi {ia}          (API at {scheme}://{api})
  sichss decode --hex <a captured Cx message>
  point a Kamailio I-CSCF/S-CSCF at {d} (see harness/kamailio/README.md)",
        ia = crate::demo::IMSI_A,
        ma = crate::demo::MSISDN_A,
        va = crate::demo::impi_a("001"),
        ra = crate::demo::impi_a("002"),
        dom = crate::demo::HOME_DOMAIN,
        ib = crate::demo::IMSI_B,
        mb = crate::demo::MSISDN_B,
        pb = crate::demo::impi_b(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secrets_key_comes_from_the_file_or_the_environment_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, "11".repeat(32)).unwrap();
        let env_key = "22".repeat(32);
        let mut cfg = Config::default();
        assert!(secrets_key(&cfg, None).unwrap().is_none());
        assert!(secrets_key(&cfg, Some("  ")).unwrap().is_none());
        assert!(secrets_key(&cfg, Some(&env_key)).unwrap().is_some());
        cfg.store.secrets_key_file = Some(file.clone());
        assert!(secrets_key(&cfg, None).unwrap().is_some());
        let e = secrets_key(&cfg, Some(&env_key)).unwrap_err().to_string();
        assert!(
            e.contains("given twice") && e.contains(SECRETS_KEY_ENV),
            "{e}"
        );
        cfg.store.secrets_key_file = Some(dir.path().join("absent"));
        let e = secrets_key(&cfg, None).unwrap_err().to_string();
        assert!(e.contains("absent"), "{e}");
    }

    #[test]
    fn flags_set_the_tls_and_secrets_settings() {
        let args = ServeArgs {
            tls_listen: vec!["127.0.0.1:5658".parse().unwrap()],
            tls_cert: Some("c".into()),
            tls_key: Some("k".into()),
            tls_client_ca: Some("ca".into()),
            admin_tls_cert: Some("ac".into()),
            admin_tls_key: Some("ak".into()),
            secrets_key_file: Some("s".into()),
            ..ServeArgs::default()
        };
        let c = args.config().unwrap();
        assert_eq!(c.diameter.tls.listen.len(), 1);
        assert_eq!(c.diameter.tls.client_ca, Some(PathBuf::from("ca")));
        assert!(c.admin.tls.enabled());
        assert_eq!(c.store.secrets_key_file, Some(PathBuf::from("s")));
    }
}
