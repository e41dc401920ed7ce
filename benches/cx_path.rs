//! The Cx request path without the network: each request is decoded from its bytes,
//! answered by the Cx application over the store `serve` runs by default (sled with its
//! journal, behind the secrets layer, in a temporary directory), and its answer encoded.
//! Requests run 256 at a time over 2,048 subscribers (two services each), as the load
//! generator's lanes would, so the group commit shares its flushes as it does under load.
//!
//! Time here is **CPU time of the whole process** (every thread, from
//! `/proc/self/task/*/schedstat`), not wall time: a write waits for its `fdatasync`, which
//! costs wall time but little CPU, and CPU per request is what limits the throughput of a
//! server on two cores. The figures are the server-side CPU a request costs, minus its
//! sockets and the scheduler (see BENCHMARKS.md for those). Linux only.
//!
//! `cargo bench --bench cx_path`; figures are µs of CPU per request.
//!
//! CPU time on a shared machine varies from run to run by a fifth or more. For an A/B
//! comparison, count instructions instead: `CX_PATH_COUNT=<case>:<n>` runs the setup and
//! then `n` requests of one case (`UAR`, `LIR`, `MAR`, `SAR`, `flow`) without criterion, so
//! `valgrind --tool=callgrind` on the bench binary, once with `n` and once with 0, gives
//! the instructions per request (the difference divided by `n`).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};

use sichss::bench::flows::{Identities, Population, Requests};
use sichss::bench::provision::subscriber;
use sichss::codec::{decode_message, Message};
use sichss::cx::{CxApp, CxConfig};
use sichss::dict::Dictionary;
use sichss::store::any::AnyStore;
use sichss::store::secrets::EncryptingStore;
use sichss::store::sled::SledStore;
use sichss::store::SubscriberStore;

/// As `serve` allocates.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Store = EncryptingStore<AnyStore>;

const SUBSCRIBERS: u64 = 2048;
const IN_FLIGHT: usize = 256;

/// CPU time used so far by every live thread of this process.
fn cpu() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

struct Bench {
    rt: tokio::runtime::Runtime,
    app: Arc<CxApp<Store>>,
    ids: Vec<Identities>,
    req: Requests,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let pop = Population::new("001010000000000", SUBSCRIBERS).expect("a population");
        let ids: Vec<Identities> = (0..SUBSCRIBERS)
            .map(|i| pop.identities(i).expect("identities"))
            .collect();
        let app = rt.block_on(async {
            let sled = SledStore::open(dir.path()).expect("a sled store");
            let store = EncryptingStore::new(AnyStore::Sled(Box::new(sled)), None);
            let subs = ids.iter().map(subscriber).collect();
            store.put_many(subs).await.expect("the population");
            Arc::new(CxApp::new(Arc::new(store), CxConfig::default()))
        });
        let req = Requests::new(
            "bench-0.ims.mnc001.mcc001.3gppnetwork.org",
            "ims.mnc001.mcc001.3gppnetwork.org",
            0,
        );
        Bench {
            rt,
            app,
            ids,
            req,
            _dir: dir,
        }
    }

    /// Runs `n` units of work, [`IN_FLIGHT`] at a time; unit `i` sends the requests
    /// `make(i)` gives, one after the other, each decoded from its bytes and its answer
    /// encoded; returns the CPU time taken.
    fn run<F>(&self, n: u64, make: F) -> Duration
    where
        F: Fn(&Requests, &Identities, usize) -> Vec<Message>,
    {
        // Encoded up front: building requests is the client's cost, not the server's.
        let work: Vec<Vec<_>> = (0..n)
            .map(|i| {
                let id = &self.ids[(i % SUBSCRIBERS) as usize];
                let service = ((i / SUBSCRIBERS) % 2) as usize;
                make(&self.req, id, service)
                    .iter()
                    .map(Message::encode)
                    .collect()
            })
            .collect();
        let before = cpu();
        self.rt.block_on(async {
            let mut chunks = work.into_iter().peekable();
            while chunks.peek().is_some() {
                let tasks: Vec<_> = chunks
                    .by_ref()
                    .take(IN_FLIGHT)
                    .map(|unit| {
                        let app = Arc::clone(&self.app);
                        tokio::spawn(async move {
                            let dict = Dictionary::builtin();
                            for bytes in unit {
                                let m = decode_message(&bytes, dict).expect("decodes");
                                let a = app.handle(&m).await;
                                std::hint::black_box(a.encode());
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("a request task");
                }
            }
        });
        cpu() - before
    }
}

/// Builds the requests of one unit of work for a member of the population and a service.
type Unit = fn(&Requests, &Identities, usize) -> Vec<Message>;

/// The requests of one unit of each case.
fn case(name: &str) -> Option<Unit> {
    Some(match name {
        "UAR" => |r, id, s| vec![r.uar(id, s, false)],
        "LIR" => |r, id, _| vec![r.lir(&id.tel)],
        "MAR" => |r, id, s| vec![r.mar(id, s)],
        "SAR" => |r, id, s| vec![r.sar_reregistration(id, s)],
        // A whole registration and de-registration: SAR, UAR, MAR, SAR, UAR.
        "flow" => |r, id, s| {
            vec![
                r.sar_deregistration(id, s),
                r.uar(id, s, false),
                r.mar(id, s),
                r.sar_registration(id, s),
                r.uar(id, s, true),
            ]
        },
        _ => return None,
    })
}

/// Every service registered once, for the refresh and LIR cases.
fn register_all(b: &Bench) {
    b.run(SUBSCRIBERS * 2, |r, id, s| {
        vec![r.uar(id, s, false), r.mar(id, s), r.sar_registration(id, s)]
    });
}

fn cx_path(c: &mut Criterion) {
    let b = Bench::new();
    register_all(&b);
    let mut g = c.benchmark_group("cx_path_cpu");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    for (name, label) in [
        ("UAR", "UAR"),
        ("LIR", "LIR"),
        ("MAR", "MAR"),
        ("SAR", "SAR re-registration"),
    ] {
        let make = case(name).expect("a case");
        g.bench_function(label, |x| x.iter_custom(|n| b.run(n, make)));
    }
    g.finish();
    let mut g = c.benchmark_group("cx_path_cpu_flow");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(5));
    let make = case("flow").expect("a case");
    g.bench_function("register and de-register", |x| {
        x.iter_custom(|n| b.run(n, make))
    });
    g.finish();
}

criterion_group!(benches, cx_path);

fn main() {
    if let Ok(spec) = std::env::var("CX_PATH_COUNT") {
        let (name, n) = spec
            .split_once(':')
            .and_then(|(c, n)| Some((c, n.parse::<u64>().ok()?)))
            .expect("CX_PATH_COUNT=<case>:<n>");
        let make = case(name).expect("case: UAR, LIR, MAR, SAR or flow");
        let b = Bench::new();
        register_all(&b);
        b.run(n, make);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
