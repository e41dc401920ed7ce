//! The `sichss` binary end to end: exit status, stdout and stderr of `impi` and `decode`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sichss(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sichss"))
        .args(args)
        .output()
        .expect("run sichss")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn impi_derive_prints_the_identity_and_exits_zero() {
    let o = sichss(&[
        "impi",
        "derive",
        "--imsi",
        "460011100612345",
        "--sic",
        "002",
        "--mnc-len",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org\n"
    );
}

#[test]
fn impi_parse_error_names_the_part_and_exits_non_zero() {
    let o = sichss(&[
        "impi",
        "parse",
        "460011100612345@ims.sic001.mnc001.mcc999.3gppnetwork.org",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("sichss: IMPI: MCC 999"), "{e}");
    assert!(e.contains("expected mcc460"), "{e}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn decode_of_a_missing_file_says_which_and_exits_non_zero() {
    let o = sichss(&["decode", "/nonexistent/capture.pcap"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read /nonexistent/capture.pcap"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn decode_requires_a_file_or_hex() {
    let o = sichss(&["decode"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    assert!(stderr(&o).contains("--hex"), "{}", stderr(&o));
}

#[test]
fn decode_hex_prints_the_command_by_name() {
    // A DWR: Origin-Host "a.b", Origin-Realm "b".
    let hex = "0100002c 80000118 00000000 00000001 00000002 \
               00000108 4000000b 612e6200 00000128 40000009 62000000";
    let o = sichss(&["decode", "--hex", hex]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Device-Watchdog-Request (280)  flags R---"),
        "{out}"
    );
    assert!(out.contains("Origin-Host (264) [M]: \"a.b\""), "{out}");
}

#[test]
fn decode_json_gives_one_line_per_captured_message() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let file = dir.join("cx-uar-lir_openimscore_diafuzzer.pcap");
    if !file.is_file() {
        eprintln!("SKIPPED: {} is absent", file.display());
        return;
    }
    let o = sichss(&["decode", "--json", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    assert!(lines
        .iter()
        .all(|v| v["frame"].is_u64() && v["src"].is_string()));
    assert_eq!(lines[0]["command"]["abbrev"], "UAR");
}
