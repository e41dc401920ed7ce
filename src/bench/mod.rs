//! `sichss bench`: a Cx load generator that drives whole registration flows against a
//! Diameter HSS as Kamailio's I-CSCF and S-CSCF would (TS 29.228 §6, TS 29.229 §6.1),
//! checks every answer, and reports throughput, latency percentiles and errors; and
//! `sichss bench --null-server ADDR`, the baseline server on the same peer layer
//! (RFC 6733 §5 handled by `crate::server`) whose Cx application answers from constants.
//!
//! # A run
//!
//! 1. With `--provision-api URL`, the population (`--subscribers S`, IMSIs from `--imsi-base`, two
//!    services each: SIC 001 and 002 sharing a sip: and a tel: IMPU) is imported through
//!    `POST {api}/import` ([`provision`]); not timed with the run.
//! 2. `--connections N` clients connect ([`crate::client`], CER/CEA advertising Cx), each
//!    with its own Origin-Host `bench<pid>-<n>.<realm>`.
//! 3. Each connection runs `--window W` lanes; a lane owns the subscribers `i` with
//!    `i mod (N·W)` equal to its number (so one service is never driven by two lanes at
//!    once) and goes round its services, one flow at a time. Every request takes one of the
//!    connection's W permits (a semaphore), so at most W requests are in flight on it.
//! 4. For `reregister` and `mixed`, an untimed setup pass registers every service first.
//! 5. The timed run lasts `--duration`, as fast as answers come back or, with `--rate R`,
//!    paced at R requests per second over all connections (to measure latency below the
//!    saturation point); a line of progress goes to stderr every second.
//!    With `--baseline ADDR` the load goes in turns of `--slice` to a null server at ADDR
//!    (its own connections and lanes, set up the same way) and to the HSS, until each has
//!    had `--duration`: both throughputs come from the same minutes, so the ratio between
//!    them does not carry the machine's drift from one run to the next.
//! 6. The connections close with DPR/DPA; the [`Report`] is printed as text or, with
//!    `--json`, as one JSON object (see [`report`] for its fields).
//!
//! # Scenarios ([`flows`] lists every step and the answer it must get)
//!
//! - `register`: full registration flows. A service not registered does
//!   UAR → MAR → SAR(REGISTRATION); a registered one is de-registered with
//!   UAR(DE_REGISTRATION) → SAR(USER_DEREGISTRATION). Mix: UAR 40 %, MAR 20 %, SAR 40 %.
//! - `reregister`: on registered services, SAR(RE_REGISTRATION) and LIR, 50 % each (a
//!   service found not registered is registered first).
//! - `mixed`: a service not registered registers; a registered one refreshes
//!   (SAR RE_REGISTRATION) with probability 50 %, is looked up (LIR) 40 %, de-registers
//!   10 %. In steady state, per 14 requests: SAR 7 (50 %), LIR 4 (29 %), UAR 2 (14 %),
//!   MAR 1 (7 %); about one registration flow per 14 requests.
//!
//! A wrong answer (another Result-Code or Experimental-Result, or a missing AVP the step
//! needs) is counted by command and result and reported, never ignored; the service is
//! then taken as not registered, so its next flow starts from a registration.
//!
//! # Bounds
//!
//! Traffic goes only to `--to` (and to `--baseline`). The run stops after `--duration`
//! (flows under way finish: at most three requests each), every request after `--timeout`,
//! the setup pass after `--setup-timeout`, and the null server after `--duration` when
//! given, else at Ctrl-C.
//!
//! Must not depend on: the Cx application or the store backends (it is a client; only the
//! null server's answers reuse `cx::user_data` and `cx::vsai` to look like the HSS's).

pub mod flows;
pub mod null;
pub mod procfs;
pub mod provision;
pub mod report;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{Client, ClientConfig, ClientError};
use crate::codec::Message;

use flows::{check, Action, Expect, Identities, Population, Requests, Rng};
pub use report::Report;
use report::{Baseline, Cmd, LaneStats, Live, ServerUsage, Setup, SharedStats, COMMANDS, SCHEMA};

/// The realm of the HSS's default configuration, used as Destination-Realm.
pub const DEFAULT_REALM: &str = "ims.mnc001.mcc460.3gppnetwork.org";

/// What the lanes do (see the module documentation for the mixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Full registration flows (then de-registration, to register again).
    Register,
    /// SAR RE_REGISTRATION and LIR on registered services.
    Reregister,
    /// Registrations, refreshes, lookups and de-registrations.
    Mixed,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Register => "register",
            Scenario::Reregister => "reregister",
            Scenario::Mixed => "mixed",
        }
    }
}

/// `sichss bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Diameter address of the HSS to drive.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_unless_present = "null_server"
    )]
    pub to: Option<String>,
    /// Connections to open.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Requests in flight on each connection.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Subscribers of the population (two services each).
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: u64,
    /// How long the timed run lasts (`10s`, `500ms`, `2m`; a bare number is seconds);
    /// 10 s when not given. With `--null-server`: how long to serve (else until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// What the lanes do.
    #[arg(long, value_enum, default_value_t = Scenario::Mixed)]
    pub scenario: Scenario,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Provisioning API to import the population through first (`http://host:port`).
    #[arg(long = "provision-api", value_name = "URL")]
    pub provision_api: Option<String>,
    /// Bearer token for the provisioning API.
    #[arg(long, value_name = "TOKEN", env = "SICHSS_API_TOKEN")]
    pub api_token: Option<String>,
    /// Subscribers per POST /import.
    #[arg(long, default_value_t = 10_000)]
    pub import_batch: u64,
    /// Import the population, report, and stop (no Diameter traffic).
    #[arg(long)]
    pub provision_only: bool,
    /// IMSI of the first subscriber; the others follow.
    #[arg(long, default_value = "001010000000000")]
    pub imsi_base: String,
    /// Origin-Realm and Destination-Realm of the requests: the HSS's realm.
    #[arg(long, default_value = DEFAULT_REALM)]
    pub realm: String,
    /// Process id of the server, to report its CPU time and memory (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Pace the run at this many requests per second over all connections (the window
    /// still bounds what is in flight); without it, as fast as the answers come back.
    #[arg(long, value_name = "REQUESTS_PER_S")]
    pub rate: Option<u64>,
    /// Longest wait for one answer.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Longest setup pass (registering every service before `reregister` and `mixed`).
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    pub setup_timeout: Duration,
    /// Seed of the per-lane random mix (same seed, same mix).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run the null server on ADDR instead: the same peer layer as the HSS, answering
    /// every Cx request from constants (the throughput ceiling).
    #[arg(long, value_name = "ADDR", conflicts_with = "to")]
    pub null_server: Option<SocketAddr>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Threads of the load generator's runtime (of the null server's, with
    /// `--null-server`); one per CPU when not given. A paced run (`--rate`) needs a part of
    /// a core: with one thread, its requests and answers wake no other thread, and take
    /// less of the CPU that the server shares (see BENCHMARKS.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Also drive the null server at ADDR (`sichss bench --null-server ADDR`), in turns
    /// with the HSS of `--to`, `--slice` each, until each has had `--duration`: the two
    /// throughputs come from the same minutes, whatever the machine does meanwhile, and the
    /// report gives their ratio.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["null_server", "rate"])]
    pub baseline: Option<String>,
    /// Length of one turn with `--baseline` (`1s`, `500ms`).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub slice: Duration,
}

impl BenchArgs {
    /// Arguments for a run against `to` with the defaults of the command line.
    pub fn to(to: impl Into<String>) -> Self {
        BenchArgs {
            to: Some(to.into()),
            connections: 16,
            window: 32,
            subscribers: 10_000,
            duration: None,
            scenario: Scenario::Mixed,
            json: false,
            provision_api: None,
            api_token: None,
            import_batch: 10_000,
            provision_only: false,
            imsi_base: "001010000000000".into(),
            realm: DEFAULT_REALM.into(),
            server_pid: None,
            rate: None,
            timeout: Duration::from_secs(5),
            setup_timeout: Duration::from_secs(300),
            seed: 1,
            null_server: None,
            quiet: false,
            threads: None,
            baseline: None,
            slice: Duration::from_secs(1),
        }
    }
}

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A setting is out of range.
    #[error("{setting}: {problem}")]
    Invalid {
        /// The flag.
        setting: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// `--to` does not resolve.
    #[error("--to {to}: {source}")]
    Resolve {
        /// The address given.
        to: String,
        /// Why.
        source: std::io::Error,
    },
    /// A connection could not be opened.
    #[error("connection {n} to {addr}: {source}")]
    Connect {
        /// Which connection (0-based).
        n: usize,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: Box<ClientError>,
    },
    /// Importing the population failed.
    #[error("provisioning: {why}")]
    Provisioning {
        /// What failed.
        why: String,
    },
    /// The null server could not listen or serve.
    #[error("null server on {addr}: {source}")]
    NullServer {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a bare number of seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the bench (or the null server) and prints the report to stdout: text, or JSON with
/// `--json`. This is what `sichss bench` calls.
///
/// # Errors
/// Those of [`run`].
pub async fn main(args: BenchArgs) -> Result<Report, BenchError> {
    let json = args.json;
    let r = run(args).await?;
    if json {
        println!("{}", r.to_json());
    } else {
        print!("{}", r.to_text());
    }
    Ok(r)
}

/// Runs the bench as `args` say and returns its report (printing only progress lines).
///
/// # Errors
/// [`BenchError::Invalid`] for bad settings, [`BenchError::Resolve`],
/// [`BenchError::Provisioning`], [`BenchError::Connect`] when a connection cannot be
/// opened, [`BenchError::NullServer`]. Wrong answers during the run are not errors: they
/// are in the report.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    if let Some(addr) = args.null_server {
        return null::serve(addr, &args).await;
    }
    let to = args.to.clone().ok_or(BenchError::Invalid {
        setting: "--to",
        problem: "give the HSS's Diameter address, or --null-server ADDR".into(),
    })?;
    if args.connections == 0 || args.connections > 1024 {
        return Err(BenchError::Invalid {
            setting: "--connections",
            problem: format!("{} is not in 1..=1024", args.connections),
        });
    }
    if args.window == 0 || args.window > 4096 {
        return Err(BenchError::Invalid {
            setting: "--window",
            problem: format!("{} is not in 1..=4096", args.window),
        });
    }
    if args.subscribers == 0 {
        return Err(BenchError::Invalid {
            setting: "--subscribers",
            problem: "at least 1".into(),
        });
    }
    let pop = Population::new(&args.imsi_base, args.subscribers)?;
    let duration = args.duration.unwrap_or(Duration::from_secs(10));
    if args.rate == Some(0) {
        return Err(BenchError::Invalid {
            setting: "--rate",
            problem: "at least 1 request per second".into(),
        });
    }
    if args.baseline.is_some() && args.slice.is_zero() {
        return Err(BenchError::Invalid {
            setting: "--slice",
            problem: "a turn must last longer than 0 (e.g. 1s)".into(),
        });
    }
    let mut report = Report {
        schema: SCHEMA,
        mode: "load",
        target: to.clone(),
        scenario: args.scenario.name().to_owned(),
        connections: args.connections,
        window: args.window,
        subscribers: args.subscribers,
        duration_s: duration.as_secs_f64(),
        rate: args.rate,
        ..Report::default()
    };

    if let Some(api) = &args.provision_api {
        if !args.quiet {
            eprintln!(
                "provisioning {} subscribers through {api}/import",
                pop.len()
            );
        }
        report.provisioning = Some(
            provision::provision(api, args.api_token.as_deref(), &pop, args.import_batch).await?,
        );
    }
    if args.provision_only {
        report.fill(&LaneStats::default(), Duration::ZERO);
        return Ok(report);
    }

    let clients = connect_all(resolve(&to).await?, &args).await?;
    let lanes = build_lanes(&clients, &args, &pop)?;
    let live = Arc::new(Live::default());

    // Setup: register every service once, untimed.
    let (mut lanes, done) = setup(lanes, &args, &live).await;
    report.setup = done;
    // The null server to compare with, set up the same way (its answers ignore the state).
    let baseline = match &args.baseline {
        Some(b) => {
            let clients = connect_all(resolve(b).await?, &args).await?;
            let lanes = build_lanes(&clients, &args, &pop)?;
            let (lanes, _) = setup(lanes, &args, &live).await;
            Some((b.clone(), clients, lanes))
        }
        None => None,
    };

    // The timed run.
    let live = Arc::new(Live::default());
    let server_before = args.server_pid.and_then(|p| procfs::cpu_seconds(Some(p)));
    let started = Instant::now();
    if let Some(rate) = args.rate {
        let pacer = Arc::new(Pacer::start(rate, started));
        for l in &mut lanes {
            l.pacer = Some(Arc::clone(&pacer));
        }
    }
    let progress = (!args.quiet).then(|| tokio::spawn(progress(Arc::clone(&live), started)));
    let mut baseline_clients = Vec::new();
    let mut hss = Turns::default();
    match baseline {
        None => {
            hss.run(lanes, duration, &live).await;
        }
        Some((target, clients, mut null_lanes)) => {
            baseline_clients = clients;
            let mut null = Turns::default();
            // Turns counted out in advance: a turn whose lanes all stop at once (connections
            // closed) does not make the run go round forever.
            let mut left = duration;
            while !left.is_zero() {
                let turn = args.slice.min(left);
                left -= turn;
                null_lanes = null.run(null_lanes, turn, &live).await;
                lanes = hss.run(lanes, turn, &live).await;
            }
            let (hss_rate, null_rate) = (hss.per_s(), null.per_s());
            report.baseline = Some(Baseline {
                target,
                requests: null.stats.requests(),
                requests_per_s: null_rate,
                errors_total: null.stats.errors_total(),
                client_cpu_s: (null.cpu_s * 100.0).round() / 100.0,
                ratio: if null_rate > 0.0 {
                    (hss_rate / null_rate * 1000.0).round() / 1000.0
                } else {
                    0.0
                },
            });
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    report.fill(&hss.stats, hss.elapsed);
    report.client.cpu_s = (hss.cpu_s * 100.0).round() / 100.0;
    report.client.threads = tokio::runtime::Handle::current().metrics().num_workers();
    if let Some(pid) = args.server_pid {
        let after = procfs::cpu_seconds(Some(pid));
        let mem = procfs::memory_kib(pid);
        if let (Some(b), Some(a), Some((hwm, rss))) = (server_before, after, mem) {
            let cpu = a - b;
            report.server = Some(ServerUsage {
                pid,
                cpu_s: (cpu * 100.0).round() / 100.0,
                cpu_us_per_request: if report.requests > 0 {
                    (cpu * 1e7 / report.requests as f64).round() / 10.0
                } else {
                    0.0
                },
                rss_peak_kib: hwm,
                rss_kib: rss,
            });
        }
    }

    let closing: Vec<_> = clients
        .into_iter()
        .chain(baseline_clients)
        .map(|c| tokio::spawn(async move { c.close().await }))
        .collect();
    for c in closing {
        let _ = c.await;
    }
    Ok(report)
}

/// The first address `to` names.
async fn resolve(to: &str) -> Result<SocketAddr, BenchError> {
    tokio::net::lookup_host(to)
        .await
        .map_err(|source| BenchError::Resolve {
            to: to.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| BenchError::Resolve {
            to: to.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })
}

/// The untimed pass that registers every service once (not for `register`, which
/// registers as its load).
async fn setup(lanes: Vec<Lane>, args: &BenchArgs, live: &Arc<Live>) -> (Vec<Lane>, Option<Setup>) {
    if args.scenario == Scenario::Register {
        return (lanes, None);
    }
    let started = Instant::now();
    let deadline = started + args.setup_timeout;
    let (lanes, stats) = run_lanes(lanes, Phase::Setup, deadline, live).await;
    let setup = Setup {
        requests: stats.requests(),
        errors_total: stats.errors_total(),
        errors: stats.error_rows(),
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    (lanes, Some(setup))
}

/// What the timed turns against one target added up to.
#[derive(Default)]
struct Turns {
    stats: LaneStats,
    elapsed: Duration,
    /// CPU seconds of this process during them.
    cpu_s: f64,
}

impl Turns {
    /// Runs `lanes` for one turn of `turn` and adds what they measured.
    async fn run(&mut self, lanes: Vec<Lane>, turn: Duration, live: &Arc<Live>) -> Vec<Lane> {
        let cpu_before = procfs::cpu_seconds(None);
        let started = Instant::now();
        let (lanes, stats) = run_lanes(lanes, Phase::Run, started + turn, live).await;
        self.elapsed += started.elapsed();
        if let (Some(b), Some(a)) = (cpu_before, procfs::cpu_seconds(None)) {
            self.cpu_s += a - b;
        }
        self.stats.merge(&stats);
        lanes
    }

    fn per_s(&self) -> f64 {
        report::per_s(self.stats.requests(), self.elapsed.as_secs_f64())
    }
}

/// Opens every connection (concurrently).
async fn connect_all(addr: SocketAddr, args: &BenchArgs) -> Result<Vec<Client>, BenchError> {
    let pid = std::process::id();
    let mut tasks = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let mut cfg = ClientConfig::new(format!("bench{pid}-{n}.{}", args.realm), &args.realm);
        cfg.request_timeout = args.timeout;
        tasks.push(tokio::spawn(async move {
            Client::connect(addr, cfg)
                .await
                .map_err(|source| BenchError::Connect {
                    n,
                    addr,
                    source: Box::new(source),
                })
        }));
    }
    let mut clients = Vec::with_capacity(tasks.len());
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(BenchError::Invalid {
                    setting: "--connections",
                    problem: format!("a connection task failed: {e}"),
                });
            }
        }
    }
    if let Some(e) = first_err {
        for c in clients {
            let _ = c.close().await;
        }
        return Err(e);
    }
    Ok(clients)
}

/// One service a lane drives.
#[derive(Debug, Clone)]
struct Slot {
    /// Index into the lane's subscribers.
    sub: usize,
    /// Index into [`flows::SICS`].
    service: usize,
    /// Whether the last flow left it registered.
    registered: bool,
    /// Alternates the IMPU of LIRs (sip:, tel:).
    lir_tel: bool,
}

/// One sequential driver of flows on one connection.
struct Lane {
    client: Client,
    pacer: Option<Arc<Pacer>>,
    window: Arc<Semaphore>,
    req: Requests,
    subs: Vec<Identities>,
    slots: Vec<Slot>,
    next: usize,
    rng: Rng,
    scenario: Scenario,
    /// Shared by every lane; this lane records into shard `id`.
    stats: Arc<SharedStats>,
    id: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// One pass registering every service not registered.
    Setup,
    /// The timed run.
    Run,
}

fn build_lanes(
    clients: &[Client],
    args: &BenchArgs,
    pop: &Population,
) -> Result<Vec<Lane>, BenchError> {
    let total = clients.len() * args.window;
    let mut lanes = Vec::with_capacity(total);
    let stats = Arc::new(SharedStats::new(STATS_SHARDS));
    for (c, client) in clients.iter().enumerate() {
        let window = Arc::new(Semaphore::new(args.window));
        for w in 0..args.window {
            let n = c * args.window + w;
            let mut subs = Vec::new();
            let mut i = n as u64;
            while i < pop.len() {
                subs.push(pop.identities(i)?);
                i += total as u64;
            }
            let slots = (0..subs.len())
                .flat_map(|s| {
                    (0..flows::SICS.len()).map(move |service| Slot {
                        sub: s,
                        service,
                        registered: false,
                        lir_tel: false,
                    })
                })
                .collect();
            lanes.push(Lane {
                client: client.clone(),
                pacer: None,
                window: Arc::clone(&window),
                req: Requests::new(&client.config().origin_host, &args.realm, w),
                subs,
                slots,
                next: 0,
                rng: Rng::new(args.seed.wrapping_add(n as u64)),
                scenario: args.scenario,
                stats: Arc::clone(&stats),
                id: n,
            });
        }
    }
    Ok(lanes)
}

/// Runs every lane until `deadline`; returns them (with their services' states) and the
/// merged statistics.
async fn run_lanes(
    lanes: Vec<Lane>,
    phase: Phase,
    deadline: Instant,
    live: &Arc<Live>,
) -> (Vec<Lane>, LaneStats) {
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|mut l| {
            let live = Arc::clone(live);
            tokio::spawn(async move {
                l.run(phase, deadline, &live).await;
                l
            })
        })
        .collect();
    let mut lanes = Vec::with_capacity(tasks.len());
    for t in tasks {
        // A lane does not panic on network input; a panic is a bug worth seeing.
        lanes.push(t.await.expect("bench lane panicked"));
    }
    // Every lane shares one `SharedStats`; taking it leaves it empty for the next phase.
    let stats = lanes.first().map(|l| l.stats.take()).unwrap_or_default();
    (lanes, stats)
}

/// How one step ended.
enum Step {
    /// The expected answer.
    Ok,
    /// Another answer, or no answer (timeout): counted; the flow stops.
    Wrong,
    /// The connection is gone: the lane stops.
    Closed,
}

impl Lane {
    async fn run(&mut self, phase: Phase, deadline: Instant, live: &Live) {
        if self.slots.is_empty() {
            return;
        }
        let mut visited = 0;
        loop {
            if Instant::now() >= deadline {
                return;
            }
            if phase == Phase::Setup && visited == self.slots.len() {
                return;
            }
            visited += 1;
            let k = self.next;
            self.next = (self.next + 1) % self.slots.len();
            let action = self.pick(phase, k);
            let Some(action) = action else { continue };
            if let Step::Closed = self.flow(k, action, live).await {
                return;
            }
        }
    }

    fn pick(&mut self, phase: Phase, k: usize) -> Option<Action> {
        let registered = self.slots[k].registered;
        if !registered {
            return Some(Action::Register);
        }
        if phase == Phase::Setup {
            return None;
        }
        Some(match self.scenario {
            Scenario::Register => Action::Deregister,
            Scenario::Reregister => {
                if self.rng.percent() < 50 {
                    Action::Refresh
                } else {
                    Action::Locate
                }
            }
            Scenario::Mixed => match self.rng.percent() {
                0..=49 => Action::Refresh,
                50..=89 => Action::Locate,
                _ => Action::Deregister,
            },
        })
    }

    async fn flow(&mut self, k: usize, action: Action, live: &Live) -> Step {
        let Slot {
            sub,
            service,
            lir_tel,
            ..
        } = self.slots[k];
        let id = &self.subs[sub];
        let steps: Vec<(Cmd, Message, Expect)> = match action {
            Action::Register => vec![
                (
                    Cmd::Uar,
                    self.req.uar(id, service, false),
                    Expect::UaaRegistration,
                ),
                (Cmd::Mar, self.req.mar(id, service), Expect::Maa),
                (
                    Cmd::Sar,
                    self.req.sar_registration(id, service),
                    Expect::SaaWithProfile,
                ),
            ],
            Action::Refresh => vec![(
                Cmd::Sar,
                self.req.sar_reregistration(id, service),
                Expect::Saa,
            )],
            Action::Locate => {
                let impu = if lir_tel { &id.tel } else { &id.sip };
                vec![(Cmd::Lir, self.req.lir(impu), Expect::Lia)]
            }
            Action::Deregister => vec![
                (
                    Cmd::Uar,
                    self.req.uar(id, service, true),
                    Expect::UaaDeregistration,
                ),
                (
                    Cmd::Sar,
                    self.req.sar_deregistration(id, service),
                    Expect::Saa,
                ),
            ],
        };
        if action == Action::Locate {
            self.slots[k].lir_tel = !lir_tel;
        }
        for (cmd, msg, expect) in steps {
            match self.step(cmd, msg, expect, live).await {
                Step::Ok => {}
                other => {
                    // Unknown state at the HSS now: start over with a registration.
                    self.slots[k].registered = false;
                    return other;
                }
            }
        }
        match action {
            Action::Register => {
                self.slots[k].registered = true;
                self.stats.with(self.id, |s| s.registrations += 1);
                live.registrations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Action::Deregister => self.slots[k].registered = false,
            Action::Refresh | Action::Locate => {}
        }
        Step::Ok
    }

    async fn step(&mut self, cmd: Cmd, msg: Message, expect: Expect, live: &Live) -> Step {
        if let Some(p) = &self.pacer {
            p.wait().await;
        }
        // The semaphore is never closed: acquiring only waits.
        let _permit = self.window.acquire().await;
        let t0 = Instant::now();
        let r = self.client.request(msg).await;
        let dt = t0.elapsed();
        drop(_permit);
        live.count(cmd);
        let failed = |what: String| {
            self.stats.with(self.id, |s| s.error(cmd, what));
            live.errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        match r {
            Ok(a) => {
                self.stats.with(self.id, |s| s.record(cmd, dt));
                match check(expect, &a) {
                    Ok(()) => Step::Ok,
                    Err(what) => {
                        failed(what);
                        Step::Wrong
                    }
                }
            }
            Err(ClientError::Closed { .. }) => {
                failed("connection closed".into());
                Step::Closed
            }
            Err(ClientError::Timeout { .. }) => {
                failed("timeout".into());
                Step::Wrong
            }
            Err(ClientError::Decode(e)) => {
                failed(format!("undecodable answer: {}", e.error));
                Step::Wrong
            }
            Err(ClientError::MismatchedAnswer { .. }) => {
                failed("mismatched answer".into());
                Step::Wrong
            }
            Err(e) => {
                failed(format!("client error: {e}"));
                Step::Closed
            }
        }
    }
}

/// Shards of the lanes' statistics (each a set of histograms, 512 KiB; lanes spread over
/// them, so that two lanes seldom wait for the same lock).
const STATS_SHARDS: usize = 8;

/// How often the pacer releases the slots that have fallen due.
const PACER_TICK: Duration = Duration::from_micros(100);

/// Spaces requests evenly at a fixed rate: a thread releases the slots of the schedule as
/// they fall due, every [`PACER_TICK`], and each request takes one (slots already past are
/// taken at once, so a server slower than the rate is driven as fast as it answers).
///
/// Not a tokio sleep per request: tokio's timers fire on whole milliseconds, so every
/// request due within a millisecond went out at once (seen on the wire: 55 requests every
/// 1 ms at 55,000/s), and the server's queue at each burst's end was measured as latency.
struct Pacer {
    /// Closed when the pacer is dropped, which also stops its thread.
    slots: Arc<Semaphore>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The pacer's schedule: slot `k` falls due `k / rate` seconds after the start.
struct Schedule {
    start: Instant,
    rate: u128,
    released: u128,
}

impl Schedule {
    fn new(rate: u64, start: Instant) -> Self {
        Schedule {
            start,
            rate: u128::from(rate.max(1)),
            released: 0,
        }
    }

    /// How many slots fell due by `now` that were not released before.
    fn due_by(&mut self, now: Instant) -> usize {
        let due =
            now.saturating_duration_since(self.start).as_nanos() * self.rate / 1_000_000_000 + 1;
        let n = usize::try_from(due.saturating_sub(self.released)).unwrap_or(usize::MAX);
        self.released += n as u128;
        n
    }
}

impl Pacer {
    fn start(rate: u64, start: Instant) -> Self {
        let slots = Arc::new(Semaphore::new(0));
        let mut schedule = Schedule::new(rate, start);
        let thread = std::thread::Builder::new()
            .name("bench-pacer".to_owned())
            .spawn({
                let slots = Arc::clone(&slots);
                move || {
                    while !slots.is_closed() {
                        let n = schedule.due_by(Instant::now());
                        // Never past the semaphore's limit (a server far slower than the
                        // rate leaves slots untaken).
                        let room = Semaphore::MAX_PERMITS - slots.available_permits();
                        slots.add_permits(n.min(room));
                        std::thread::sleep(PACER_TICK);
                    }
                }
            })
            .ok();
        if thread.is_none() {
            // No thread: requests go unpaced rather than not at all.
            slots.close();
        }
        Pacer { slots, thread }
    }

    async fn wait(&self) {
        // Closed only without a pacer thread, or once the run is over.
        if let Ok(slot) = self.slots.acquire().await {
            slot.forget();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.slots.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Prints a line of progress to stderr every second.
async fn progress(live: Arc<Live>, started: Instant) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(started) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last = ([0u64; 4], 0u64);
    loop {
        tick.tick().await;
        let (done, errors, regs) = live.snapshot();
        let mut line = format!("[{:>4}s]", started.elapsed().as_secs());
        let total: u64 = done.iter().sum::<u64>() - last.0.iter().sum::<u64>();
        line.push_str(&format!(" {total:>7} req/s"));
        for (i, name) in COMMANDS.iter().enumerate() {
            line.push_str(&format!("  {name} {:>6}", done[i] - last.0[i]));
        }
        line.push_str(&format!("  reg {:>5}/s  errors {errors}", regs - last.1));
        eprintln!("{line}");
        last = (done, regs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_releases_a_tick_worth_of_slots_at_a_time() {
        // 55,000/s: 5.5 slots per 100 µs tick, where a tokio sleep per request sent each
        // millisecond's 55 at once.
        let t0 = Instant::now();
        let mut schedule = Schedule::new(55_000, t0);
        assert_eq!(schedule.due_by(t0), 1, "the first slot at once");
        let mut released = 1;
        for k in 1..=100u32 {
            let n = schedule.due_by(t0 + PACER_TICK * k);
            assert!((5..=6).contains(&n), "tick {k} released {n}");
            released += n;
        }
        assert_eq!(released, 551, "10 ms at 55,000/s, and the slot at 0");
        // A late tick releases what fell due meanwhile (a slow server is not waited for).
        assert_eq!(schedule.due_by(t0 + Duration::from_millis(20)), 550);
        assert_eq!(schedule.due_by(t0 + Duration::from_millis(20)), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pacer_thread_hands_out_slots_and_stops_with_the_pacer() {
        let pacer = Pacer::start(100_000, Instant::now());
        for _ in 0..100 {
            pacer.wait().await;
        }
        let slots = Arc::clone(&pacer.slots);
        drop(pacer);
        assert!(slots.is_closed(), "waiting lanes are let go");
    }

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn command_line_defaults_match_bench_args_to() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = Cli::parse_from(["sichss", "--to", "127.0.0.1:3868"]);
        let d = BenchArgs::to("127.0.0.1:3868");
        assert_eq!(format!("{:?}", cli.bench), format!("{d:?}"));
        assert!(Cli::try_parse_from(["sichss"]).is_err(), "--to is required");
        let cli = Cli::parse_from(["sichss", "--null-server", "127.0.0.1:0", "--duration", "1s"]);
        assert!(cli.bench.null_server.is_some());
    }

    #[test]
    fn root_command_line_keeps_the_admin_api_apart_from_provisioning() {
        use clap::Parser;
        // The admin flags are global: `--api` must not fill `--provision-api`.
        let cli = crate::cli::Cli::parse_from(["sichss", "bench", "--to", "127.0.0.1:3868"]);
        let crate::cli::Command::Bench(b) = cli.command else {
            panic!("not the bench command");
        };
        assert_eq!(b.provision_api, None);
        let cli = crate::cli::Cli::parse_from([
            "sichss",
            "bench",
            "--to",
            "127.0.0.1:3868",
            "--provision-api",
            "http://127.0.0.1:9",
        ]);
        let crate::cli::Command::Bench(b) = cli.command else {
            panic!("not the bench command");
        };
        assert_eq!(b.provision_api.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn mixed_picks_the_documented_shares() {
        let mut lane_rng = Rng::new(3);
        let (mut refresh, mut locate, mut dereg) = (0, 0, 0);
        for _ in 0..100_000 {
            match lane_rng.percent() {
                0..=49 => refresh += 1,
                50..=89 => locate += 1,
                _ => dereg += 1,
            }
        }
        assert!((48_000..52_000).contains(&refresh));
        assert!((38_000..42_000).contains(&locate));
        assert!((9_000..11_000).contains(&dereg));
    }
}
