//! Codec micro-benchmarks (criterion): decoding and encoding of the Cx requests the bench
//! sends (UAR, MAR, SAR, built as Kamailio's I-CSCF/S-CSCF send them) and of the answers
//! the real Cx application gives to them (UAA, MAA with one AKA vector, SAA with User-Data),
//! produced once over a sled store in a temporary directory.
//!
//! The `build` group measures building those requests, the load generator's cost per
//! request before encoding.
//!
//! `cargo bench --bench codec`; figures are ns per message.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use sichss::bench::flows::{Population, Requests};
use sichss::bench::provision::subscriber;
use sichss::codec::{decode_frame, decode_message, Message};
use sichss::cx::{CxApp, CxConfig};
use sichss::dict::Dictionary;
use sichss::store::sled::SledStore;
use sichss::store::SubscriberStore;

/// (name, message) for every message measured.
fn messages() -> Vec<(&'static str, Message)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pop = Population::new("001010000000000", 1).expect("a population");
    let id = pop.identities(0).expect("identities");
    let r = Requests::new(
        "bench-0.ims.mnc001.mcc001.3gppnetwork.org",
        "ims.mnc001.mcc001.3gppnetwork.org",
        0,
    );
    let uar = r.uar(&id, 0, false);
    let mar = r.mar(&id, 0);
    let sar = r.sar_registration(&id, 0);
    let (uaa, maa, saa) = rt.block_on(async {
        let store = SledStore::open(dir.path()).expect("a sled store");
        store.create(subscriber(&id)).await.expect("the subscriber");
        let app = CxApp::new(Arc::new(store), CxConfig::default());
        let dict = Dictionary::builtin();
        // Through the codec, as the server hands requests over.
        let dec = |m: &Message| decode_message(&m.encode(), dict).expect("decodes");
        let uaa = app.handle(&dec(&uar)).await;
        let maa = app.handle(&dec(&mar)).await;
        let saa = app.handle(&dec(&sar)).await;
        (uaa, maa, saa)
    });
    assert!(
        maa.find(sichss::codec::codes::SIP_AUTH_DATA_ITEM).is_some(),
        "MAA has a vector"
    );
    assert!(
        saa.find(sichss::codec::codes::USER_DATA).is_some(),
        "SAA has User-Data"
    );
    drop(dir);
    vec![
        ("UAR", uar),
        ("MAR", mar),
        ("SAR", sar),
        ("UAA", uaa),
        ("MAA", maa),
        ("SAA", saa),
    ]
}

fn codec(c: &mut Criterion) {
    let dict = Dictionary::builtin();
    let msgs = messages();
    let mut g = c.benchmark_group("decode");
    for (name, m) in &msgs {
        let bytes = m.encode();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name} ({} B)", bytes.len()), |b| {
            b.iter(|| decode_message(black_box(&bytes), dict).expect("decodes"))
        });
        // As the server decodes: the values are slices of the frame it read, not copies.
        let frame = Bytes::from(bytes.clone());
        g.bench_function(format!("{name} in place ({} B)", bytes.len()), |b| {
            b.iter(|| decode_frame(black_box(frame.clone()), dict).expect("decodes"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("encode");
    for (name, m) in &msgs {
        let len = m.encoded_len();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name} ({len} B)"), |b| {
            b.iter(|| black_box(m).encode())
        });
    }
    g.finish();
}

/// Building the bench's requests: its per-request cost before encoding.
fn build(c: &mut Criterion) {
    let id = Population::new("001010000000000", 1)
        .and_then(|p| p.identities(0))
        .expect("identities");
    let r = Requests::new(
        "bench-0.ims.mnc001.mcc001.3gppnetwork.org",
        "ims.mnc001.mcc001.3gppnetwork.org",
        0,
    );
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(1));
    g.bench_function("UAR", |b| b.iter(|| r.uar(black_box(&id), 0, false)));
    g.bench_function("MAR", |b| b.iter(|| r.mar(black_box(&id), 0)));
    g.bench_function("SAR", |b| b.iter(|| r.sar_registration(black_box(&id), 0)));
    g.bench_function("LIR", |b| b.iter(|| r.lir(black_box(&id.tel))));
    g.finish();
}

criterion_group!(benches, codec, build);
criterion_main!(benches);
