//! `sichss serve`: the composition root. Reads the configuration, opens the store, wires
//! the Cx application to the Diameter server and the provisioning API, and runs until
//! Ctrl-C or SIGTERM, then shuts down gracefully (DPR to every peer, requests in flight
//! finished, store flushed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{Application, PeerInfo};
use crate::config::{Config, ConfigError};
use crate::cx::{CxApp, CX_APPLICATION_ID};
use crate::dict::Dictionary;
use crate::peer::{AllowEntry, Allowlist, LocalIdentity};
use crate::server::{Peers, Server, ServerConfig};
use crate::store::sled::SledStore;
use crate::store::SubscriberStore;

/// Flags of `sichss serve`; each overrides the configuration file, and each has an
/// environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (every setting optional).
    #[arg(long, env = "SICHSS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded sled store [default: ./sichss-data].
    #[arg(long, env = "SICHSS_DATA")]
    pub data: Option<PathBuf>,
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
    /// Provision the demo subscribers if absent, and print how to try them.
    #[arg(long)]
    pub demo: bool,
}

/// Why `sichss serve` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {error} (is another sichss using it? choose another --data DIR)")]
    Store {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        error: crate::store::StoreError,
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
        if let Some(d) = &self.data {
            c.store.data = d.clone();
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

/// Sends HSS-initiated requests through the server's peer registry.
struct PeerRequests(Peers);

impl crate::api::HssRequests for PeerRequests {
    fn send<'a>(
        &'a self,
        origin_host: &'a str,
        mut req: crate::codec::Message,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<crate::codec::Message, String>> + Send + 'a>,
    > {
        Box::pin(async move {
            req.header.end_to_end = self.0.next_end_to_end();
            self.0
                .send_request(origin_host, req)
                .await
                .map_err(|e| e.to_string())
        })
    }
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

    let store = SledStore::open_with(
        &cfg.store.data,
        crate::store::sled::SledOptions {
            cache_bytes: cfg.store.cache_mb.saturating_mul(1 << 20),
            cache_subscribers: cfg.store.cache_subscribers,
        },
    )
    .map_err(|error| ServeError::Store {
        dir: cfg.store.data.clone(),
        error,
    })?;
    let store = Arc::new(store);
    if args.demo {
        provision_demo(store.as_ref()).await?;
    }
    let subscribers = store.count().await.unwrap_or(0);

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
        ..ServerConfig::new(LocalIdentity::new("x", "x"))
    };
    let service = Arc::new(CxService {
        cx: cx.clone(),
        metrics: metrics.clone(),
    });
    let server = Server::bind(server_cfg, service, dict, peers.clone())
        .await
        .map_err(ServeError::Bind)?;
    let diameter_addrs = server.local_addrs();

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
        Arc::new(PeerRequests(peers.clone())),
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

    let addrs: Vec<String> = diameter_addrs.iter().map(|a| a.to_string()).collect();
    // One line for people and scripts: tests read the bound ports from it.
    println!(
        "sichss listening diameter={} api={} data={} subscribers={} startup_ms={}",
        addrs.join(","),
        api_addr,
        cfg.store.data.display(),
        subscribers,
        started.elapsed().as_millis()
    );
    if args.demo {
        print_demo_help(&diameter_addrs, api_addr);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let api = tokio::spawn(crate::api::serve(
        api_listener,
        api_state,
        wait_stop(stop_rx.clone()),
    ));
    let diameter = tokio::spawn(server.serve(wait_stop(stop_rx)));

    shutdown_signal().await;
    tracing::info!("stopping: sending DPR to peers and finishing requests in flight");
    let _ = stop_tx.send(true);
    let _ = diameter.await;
    let _ = api.await;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Creates demo subscribers A and B unless they exist.
async fn provision_demo<S: SubscriberStore>(store: &S) -> Result<(), ServeError> {
    for sub in [crate::demo::subscriber_a(), crate::demo::subscriber_b()] {
        if store
            .get(&sub.imsi)
            .await
            .map_err(ServeError::Demo)?
            .is_none()
        {
            tracing::info!(imsi = %sub.imsi, "provisioning demo subscriber");
            store.create(sub).await.map_err(ServeError::Demo)?;
        }
    }
    Ok(())
}

fn print_demo_help(diameter: &[SocketAddr], api: SocketAddr) {
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
  sichss subscriber show --imsi {ia}          (API at http://{api})
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
