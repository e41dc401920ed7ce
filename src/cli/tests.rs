//! CLI tests: argument parsing, identity errors attributed to their argument, and the
//! decode tree (names, nesting, raw unknown AVPs, redaction) in text and JSON.

use clap::Parser;

use super::decode::{self, hex_inputs, ntp_to_utc, Options};
use super::impi::ImpiReport;
use super::*;
use crate::codec::{
    codes, Avp, AvpKey, CommandCode, ExperimentalResultCode, Message, ResultCode, Value,
};
use crate::codec::{decode_message, ApplicationId};
use crate::dict::Dictionary;
use crate::identity::Impi;

fn run_args(args: &[&str]) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("sichss").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?} does not parse: {e}"));
    let mut out = Vec::new();
    dispatch(cli, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

const SIC_IMPI: &str = "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org";

#[test]
fn derives_the_sic_impi_from_imsi_sic_and_mnc_length() {
    let out = run_args(&[
        "impi",
        "derive",
        "--imsi",
        "460011100612345",
        "--sic",
        "001",
        "--mnc-len",
        "2",
    ])
    .unwrap();
    assert_eq!(out, format!("{SIC_IMPI}\n"));
}

#[test]
fn derives_on_an_explicit_home_domain_and_as_json() {
    let out = run_args(&[
        "impi",
        "derive",
        "--imsi",
        "460011100612345",
        "--sic",
        "002",
        "--home-domain",
        "IMS.Example.com",
        "--json",
    ])
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["impi"], "460011100612345@ims.sic002.example.com");
    assert_eq!(v["sic"], "002");
    assert_eq!(v["subscriber_key"], "460011100612345@ims.example.com");
}

#[test]
fn parses_a_sic_impi_into_its_parts() {
    let out = run_args(&["impi", "parse", SIC_IMPI]).unwrap();
    assert!(out.contains("kind            sic\n"), "{out}");
    assert!(out.contains("imsi            460011100612345\n"));
    assert!(out.contains("sic             001\n"));
    assert!(out.contains("home domain     ims.mnc001.mcc460.3gppnetwork.org\n"));
    assert!(out.contains("subscriber key  460011100612345@ims.mnc001.mcc460.3gppnetwork.org\n"));
}

#[test]
fn parse_json_of_a_provisioned_nai_has_no_imsi_or_sic() {
    let out = run_args(&["impi", "parse", "alice@IMS.example.com", "--json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "other");
    assert_eq!(v["impi"], "alice@ims.example.com");
    assert!(v["imsi"].is_null() && v["sic"].is_null());
    assert_eq!(v["subscriber_key"], "alice@ims.example.com");
}

#[test]
fn report_matches_the_identity_module() {
    let impi = Impi::parse(SIC_IMPI).unwrap();
    let r = ImpiReport::new(&impi);
    assert_eq!(r.kind, "sic");
    assert_eq!(r.subscriber_key, impi.without_sic().to_string());
}

#[test]
fn names_the_argument_at_fault_and_the_expected_form() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["impi", "derive", "--imsi", "46001x", "--mnc-len", "2"],
            "--imsi:",
            "6 to 15 decimal digits",
        ),
        (
            &[
                "impi",
                "derive",
                "--imsi",
                "460011100612345",
                "--sic",
                "1",
                "--mnc-len",
                "2",
            ],
            "--sic:",
            "exactly 3 digits",
        ),
        (
            &[
                "impi",
                "derive",
                "--imsi",
                "460011100612345",
                "--home-domain",
                "ims.mnc001.mcc310.3gppnetwork.org",
            ],
            "--home-domain:",
            "expected mcc460",
        ),
        (&["impi", "parse", "no-at-sign"], "IMPI:", "exactly one '@'"),
        (
            &[
                "impi",
                "parse",
                "460011100612345@ims.sic01.mnc001.mcc460.3gppnetwork.org",
            ],
            "IMPI:",
            "sic followed by 3 digits",
        ),
    ];
    for (args, arg, expected) in cases {
        let e = run_args(args).expect_err("must fail").to_string();
        assert!(e.starts_with(arg), "{args:?}: {e}");
        assert!(e.contains(expected), "{args:?}: {e}");
    }
}

#[test]
fn clap_requires_exactly_one_home_network_and_an_mnc_length_of_2_or_3() {
    let base = ["sichss", "impi", "derive", "--imsi", "460011100612345"];
    assert!(Cli::try_parse_from(base).is_err());
    let both = [&base[..], &["--mnc-len", "2", "--home-domain", "x.org"]].concat();
    assert!(Cli::try_parse_from(both).is_err());
    let four = [&base[..], &["--mnc-len", "4"]].concat();
    let e = Cli::try_parse_from(four)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("--mnc-len"), "{e}");
}

fn maa() -> Message {
    let req = Message::request(
        CommandCode::MULTIMEDIA_AUTH,
        ApplicationId::CX,
        true,
        0x1234,
        0x5678,
    )
    .with(Avp::utf8(codes::SESSION_ID, "scscf;1;2"));
    let mut a = Message::answer_to(&req);
    a.push(Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
    a.push(Avp::grouped(
        codes::SIP_AUTH_DATA_ITEM,
        vec![
            Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5"),
            Avp::octets(codes::SIP_AUTHENTICATE, vec![0xab; 32]),
            Avp::octets(codes::CONFIDENTIALITY_KEY, vec![0xcd; 16]),
            Avp::octets(codes::INTEGRITY_KEY, vec![0xef; 16]),
        ],
    ));
    a.push(Avp::new(
        AvpKey {
            code: 9999,
            vendor: 1234,
            mandatory: false,
        },
        Value::OctetString(vec![0xde, 0xad].into()),
    ));
    a.set_experimental(ExperimentalResultCode::DIAMETER_ERROR_USER_UNKNOWN);
    a.set_result(ResultCode::DIAMETER_UNABLE_TO_COMPLY);
    a
}

fn decoded_maa() -> (decode::Input, Message) {
    let bytes = maa().encode();
    let input = hex_inputs(&hex::encode(&bytes)).unwrap().remove(0);
    let m = decode_message(&input.bytes, Dictionary::builtin()).unwrap();
    (input, m)
}

#[test]
fn shows_names_nesting_result_codes_and_raw_unknown_avps() {
    let (input, m) = decoded_maa();
    let t = decode::message_text(&input, &m, Dictionary::builtin(), Options::default());
    assert!(
        t.contains("Multimedia-Auth-Answer (303)  flags -P--  application 3GPP Cx (16777216)"),
        "{t}"
    );
    assert!(t.contains("hop-by-hop 0x00001234  end-to-end 0x00005678"));
    assert!(t.contains("  Auth-Session-State (277) [M]: NO_STATE_MAINTAINED (1)\n"));
    assert!(
        t.contains("  SIP-Auth-Data-Item (612, vendor 10415) [VM]:\n    SIP-Authentication-Scheme")
    );
    assert!(
        t.contains("AVP 9999, vendor 1234 (unknown) [V]: 0xdead\n"),
        "{t}"
    );
    assert!(t.contains("Experimental-Result-Code (298) [M]: DIAMETER_ERROR_USER_UNKNOWN (5001)"));
    assert!(t.contains("Result-Code (268) [M]: DIAMETER_UNABLE_TO_COMPLY (5012)"));
}

#[test]
fn redacts_keys_unless_asked_to_show_secrets() {
    let (input, m) = decoded_maa();
    let dict = Dictionary::builtin();
    let hidden = decode::message_text(&input, &m, dict, Options::default());
    assert!(hidden.contains("SIP-Authenticate (609, vendor 10415) [VM]: <redacted 32 octets>"));
    assert!(hidden.contains("Integrity-Key (626, vendor 10415) [VM]: <redacted 16 octets>"));
    assert!(!hidden.contains("abab") && !hidden.contains("cdcd"));
    let json = decode::message_json(&input, &m, dict, Options::default()).to_string();
    assert!(
        json.contains("<redacted 16 octets>") && !json.contains("efef"),
        "{json}"
    );
    let shown = decode::message_text(&input, &m, dict, Options { show_secrets: true });
    assert!(shown.contains(&format!("0x{}", "cd".repeat(16))), "{shown}");
}

#[test]
fn json_has_one_object_with_header_and_avp_tree() {
    let (input, m) = decoded_maa();
    let v = decode::message_json(&input, &m, Dictionary::builtin(), Options::default());
    assert_eq!(v["frame"], 1);
    assert_eq!(v["command"]["name"], "Multimedia-Auth-Answer");
    assert_eq!(v["command"]["abbrev"], "MAA");
    assert_eq!(v["flags"]["proxiable"], true);
    assert_eq!(v["application"]["id"], 16777216);
    let avps = v["avps"].as_array().unwrap();
    assert_eq!(avps[0]["name"], "Session-Id");
    assert_eq!(avps[1]["value_name"], "NO_STATE_MAINTAINED");
    assert_eq!(avps[2]["avps"][0]["value"], "Digest-AKAv1-MD5");
    assert_eq!(avps[3]["hex"], "dead");
    assert!(avps[3]["name"].is_null());
    assert_eq!(
        avps[4]["avps"][1]["value_name"],
        "DIAMETER_ERROR_USER_UNKNOWN"
    );
}

#[test]
fn hex_input_accepts_spacing_and_splits_back_to_back_messages() {
    let one = hex::encode(maa().encode());
    let spaced = format!("0x{} {}\n{}", &one[..8], &one[8..], one);
    let inputs = hex_inputs(&spaced).unwrap();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[1].frame, Some(2));
}

#[test]
fn hex_input_errors_say_what_is_wrong() {
    let msg = |h: &str| hex_inputs(h).err().unwrap().to_string();
    assert!(msg("01zz").contains("'z' at digit 2 is not a hex digit"));
    assert!(msg("010").contains("odd number"));
    assert!(msg("0100").contains("a Diameter header takes 20"));
    let one = hex::encode(maa().encode());
    assert!(msg(&one[..60]).contains("declares"));
}

#[test]
fn an_undecodable_message_is_shown_and_fails_the_command() {
    let mut b = maa().encode();
    b[0] = 2; // version 2
    let err = run_args(&["decode", "--hex", &hex::encode(&b)]).unwrap_err();
    assert!(matches!(
        err,
        CliError::Undecodable {
            failed: 1,
            total: 1
        }
    ));
    let mut out = Vec::new();
    let cli =
        Cli::try_parse_from(["sichss", "decode", "--json", "--hex", &hex::encode(&b)]).unwrap();
    let _ = dispatch(cli, &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result_code"], 5011);
}

#[test]
fn converts_diameter_time_in_both_ntp_eras() {
    // 3_900_000_000 NTP s = 2023-08-02T21:20:00Z (era 0; `date -u -d @1691011200`).
    assert_eq!(ntp_to_utc(3_900_000_000), "2023-08-02T21:20:00Z");
    // High bit clear: era 1, from 2036-02-07T06:28:16Z.
    assert_eq!(ntp_to_utc(0), "2036-02-07T06:28:16Z");
}
