//! Every Diameter message in the third-party captures (`../shared/captures/`, see its
//! README) decodes with the built-in dictionary and re-encodes to the same octets
//! (RFC 6733 §3, §4: decode then encode is the identity on well-formed input).
//!
//! The Cx requests are also checked against the TS 29.229 §6.1 grammars; deviations are
//! reported on stderr, not failed: the captures come from other implementations, and what
//! they do differently is information for the HSS, not a fault in the codec.
//!
//! The folder is outside the repository; without it the tests print why and pass.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use sichss::codec::{decode_message, validate, ApplicationId, Message};
use sichss::dict::Dictionary;
use sichss::pcap::diameter::{diameter_messages, CapturedMessage};

/// Diameter messages per capture file, as Wireshark counts them.
const EXPECTED: &[(&str, usize)] = &[
    ("base-cer-dpr-tcp_open5gs-docs.pcapng", 132),
    ("base-cer-dwr-sctp_diafuzzer.pcap", 4),
    ("base-dwr-tcp_magma.pcap", 12),
    ("cx-lir-tel_open5gs-docs.pcapng", 2),
    ("cx-registration-kamailio-fhoss_open5gs-docs.pcapng", 6),
    ("cx-uar-lir_openimscore_diafuzzer.pcap", 14),
    ("requests-cer-dwr-dpr-mar-uar-sar-rtr_pyhss-tests.pcap", 12),
];

fn captures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; the capture tests need the shared third-party captures beside the repository",
            dir.display()
        );
        None
    }
}

/// Every capture file in the folder with its messages.
fn all_messages(dir: &PathBuf) -> Vec<(String, Vec<CapturedMessage>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let msgs = diameter_messages(&bytes)
                .unwrap_or_else(|e| panic!("{name}: cannot read the capture: {e}"));
            (name, msgs)
        })
        .collect()
}

#[test]
fn every_captured_message_decodes_and_reencodes_byte_identical() {
    let Some(dir) = captures_dir() else { return };
    let dict = Dictionary::builtin();
    let mut total = 0;
    for (name, msgs) in all_messages(&dir) {
        for m in &msgs {
            let decoded = decode_message(&m.bytes, dict).unwrap_or_else(|e| {
                panic!(
                    "{name} frame {}: does not decode: {e}\n{}",
                    m.frame,
                    hex::encode(&m.bytes)
                )
            });
            assert!(
                decoded.encode() == m.bytes,
                "{name} frame {}: re-encoding differs\n original {}\n encoded  {}",
                m.frame,
                hex::encode(&m.bytes),
                hex::encode(decoded.encode())
            );
        }
        let expected = EXPECTED.iter().find(|(n, _)| *n == name).map(|e| e.1);
        eprintln!(
            "{name}: {} Diameter messages decode and re-encode",
            msgs.len()
        );
        assert!(!msgs.is_empty(), "{name}: no Diameter message found");
        if let Some(expected) = expected {
            assert_eq!(msgs.len(), expected, "{name}: message count");
        }
        total += msgs.len();
    }
    eprintln!("all captures: {total} messages");
}

#[test]
fn every_expected_capture_is_present() {
    let Some(dir) = captures_dir() else { return };
    for (name, _) in EXPECTED {
        assert!(
            dir.join(name).is_file(),
            "{name} is missing from {}",
            dir.display()
        );
    }
}

#[test]
fn validating_captured_cx_requests_reports_deviations_without_panicking() {
    let Some(dir) = captures_dir() else { return };
    let dict = Dictionary::builtin();
    let mut checked = 0;
    let mut deviations = Vec::new();
    for (name, msgs) in all_messages(&dir) {
        for m in msgs {
            let Ok(msg): Result<Message, _> = decode_message(&m.bytes, dict) else {
                continue; // the decode test reports it
            };
            if msg.header.application != ApplicationId::CX || !msg.header.is_request() {
                continue;
            }
            checked += 1;
            let result = catch_unwind(AssertUnwindSafe(|| validate(&msg, dict)));
            match result {
                Err(_) => panic!("{name} frame {}: validate panicked", m.frame),
                Ok(Ok(())) => {}
                Ok(Err(e)) => deviations.push(format!(
                    "{name} frame {} command {}: {e} (Result-Code {})",
                    m.frame,
                    msg.header.command.0,
                    e.result_code().0
                )),
            }
        }
    }
    eprintln!(
        "validated {checked} Cx requests; {} deviate from the TS 29.229 grammars:",
        deviations.len()
    );
    for d in &deviations {
        eprintln!("  {d}");
    }
    assert!(checked > 0, "no Cx request found in the captures");
}
