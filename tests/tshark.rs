//! An independent check of the encoder: messages built with the codec (base CER/CEA,
//! DWR/DWA, DPR/DPA; every Cx command; an error answer with the E bit and Failed-AVP) are
//! written into a pcap as one TCP connection on port 3868 and dissected by Wireshark's
//! `tshark`, which must see every data frame as Diameter with the right command code and
//! report nothing malformed and no expert item at warning or error level.
//!
//! tshark comes from Debian's packages; `./scripts/test` (the README's test command)
//! installs it. Without it this test fails, on purpose: a silent skip would hide an
//! encoder regression.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;

use sichss::codec::codes::*;
use sichss::codec::header::FLAG_E;
use sichss::codec::{
    ApplicationId, Avp, CommandCode, ExperimentalResultCode, Message, ResultCode, VENDOR_3GPP,
};
use sichss::pcap::net::TcpFlow;
use sichss::pcap::{LinkType, PcapWriter};

const HSS: &str = "hss.ims.example.org";
const SCSCF: &str = "scscf.ims.example.org";
const REALM: &str = "ims.example.org";
const IMPI: &str = "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org";
const IMPU: &str = "sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org";

/// Who sends a message on the connection (the CSCF is the TCP client).
#[derive(Clone, Copy, PartialEq)]
enum From {
    Cscf,
    Hss,
}

fn cx_request(cmd: CommandCode, n: u32, session: &str) -> Message {
    Message::request(cmd, ApplicationId::CX, true, n, 0x5000 + n)
        .with(Avp::utf8(SESSION_ID, session))
        .with(Avp::grouped(
            VENDOR_SPECIFIC_APPLICATION_ID,
            vec![
                Avp::u32(VENDOR_ID, VENDOR_3GPP),
                Avp::u32(AUTH_APPLICATION_ID, ApplicationId::CX.0),
            ],
        ))
        .with(Avp::enumerated(AUTH_SESSION_STATE, 1))
}

fn origin(m: Message, host: &str) -> Message {
    m.with(Avp::identity(ORIGIN_HOST, host))
        .with(Avp::identity(ORIGIN_REALM, REALM))
}

fn cx_answer(req: &Message) -> Message {
    let a = Message::answer_to(req)
        .with(Avp::grouped(
            VENDOR_SPECIFIC_APPLICATION_ID,
            vec![
                Avp::u32(VENDOR_ID, VENDOR_3GPP),
                Avp::u32(AUTH_APPLICATION_ID, ApplicationId::CX.0),
            ],
        ))
        .with(Avp::enumerated(AUTH_SESSION_STATE, 1));
    origin(a, HSS)
}

fn success(mut m: Message) -> Message {
    m.set_result(ResultCode::DIAMETER_SUCCESS);
    m
}

const USER_DATA_XML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "<IMSSubscription><PrivateID>",
    "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
    "</PrivateID><ServiceProfile><PublicIdentity><Identity>",
    "sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org",
    "</Identity></PublicIdentity></ServiceProfile></IMSSubscription>"
);

/// The representative set: (label, sender, message).
fn messages() -> Vec<(&'static str, From, Message)> {
    let host_ip = Avp::address(HOST_IP_ADDRESS, Ipv4Addr::new(10, 0, 0, 1).into());
    let cer = origin(
        Message::request(
            CommandCode::CAPABILITIES_EXCHANGE,
            ApplicationId::COMMON,
            false,
            1,
            1,
        ),
        SCSCF,
    )
    .with(host_ip.clone())
    .with(Avp::u32(VENDOR_ID, 0))
    .with(Avp::utf8(PRODUCT_NAME, "sichss-test"))
    .with(Avp::u32(ORIGIN_STATE_ID, 1))
    .with(Avp::u32(SUPPORTED_VENDOR_ID, VENDOR_3GPP))
    .with(Avp::grouped(
        VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(VENDOR_ID, VENDOR_3GPP),
            Avp::u32(AUTH_APPLICATION_ID, ApplicationId::CX.0),
        ],
    ))
    .with(Avp::u32(FIRMWARE_REVISION, 1));
    let cea = success(origin(Message::answer_to(&cer), HSS))
        .with(Avp::address(
            HOST_IP_ADDRESS,
            Ipv4Addr::new(10, 0, 0, 2).into(),
        ))
        .with(Avp::u32(VENDOR_ID, 0))
        .with(Avp::utf8(PRODUCT_NAME, "sichss"))
        .with(Avp::grouped(
            VENDOR_SPECIFIC_APPLICATION_ID,
            vec![
                Avp::u32(VENDOR_ID, VENDOR_3GPP),
                Avp::u32(AUTH_APPLICATION_ID, ApplicationId::CX.0),
            ],
        ));
    let dwr = origin(
        Message::request(
            CommandCode::DEVICE_WATCHDOG,
            ApplicationId::COMMON,
            false,
            2,
            2,
        ),
        SCSCF,
    );
    let dwa = success(origin(Message::answer_to(&dwr), HSS));

    let uar = origin(
        cx_request(CommandCode::USER_AUTHORIZATION, 3, "icscf;1;3"),
        SCSCF,
    )
    .with(Avp::identity(DESTINATION_REALM, REALM))
    .with(Avp::utf8(USER_NAME, IMPI))
    .with(Avp::utf8(PUBLIC_IDENTITY, IMPU))
    .with(Avp::octets(
        VISITED_NETWORK_IDENTIFIER,
        REALM.as_bytes().to_vec(),
    ))
    .with(Avp::enumerated(USER_AUTHORIZATION_TYPE, 0));
    let mut uaa = cx_answer(&uar).with(Avp::grouped(
        SERVER_CAPABILITIES,
        vec![
            Avp::u32(MANDATORY_CAPABILITY, 1),
            Avp::u32(OPTIONAL_CAPABILITY, 2),
            Avp::utf8(SERVER_NAME, "sip:scscf.ims.example.org:6060"),
        ],
    ));
    uaa.set_experimental(ExperimentalResultCode::DIAMETER_FIRST_REGISTRATION);

    let mar = origin(
        cx_request(CommandCode::MULTIMEDIA_AUTH, 4, "scscf;1;4"),
        SCSCF,
    )
    .with(Avp::identity(DESTINATION_REALM, REALM))
    .with(Avp::utf8(USER_NAME, IMPI))
    .with(Avp::utf8(PUBLIC_IDENTITY, IMPU))
    .with(Avp::u32(SIP_NUMBER_AUTH_ITEMS, 2))
    .with(Avp::grouped(
        SIP_AUTH_DATA_ITEM,
        vec![Avp::utf8(SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5")],
    ))
    .with(Avp::utf8(SERVER_NAME, "sip:scscf.ims.example.org:6060"));
    let maa = success(
        cx_answer(&mar)
            .with(Avp::utf8(USER_NAME, IMPI))
            .with(Avp::utf8(PUBLIC_IDENTITY, IMPU))
            .with(Avp::u32(SIP_NUMBER_AUTH_ITEMS, 2))
            .with(Avp::grouped(
                SIP_AUTH_DATA_ITEM,
                vec![
                    Avp::u32(SIP_ITEM_NUMBER, 1),
                    Avp::utf8(SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5"),
                    Avp::octets(SIP_AUTHENTICATE, vec![0x5a; 32]),
                    Avp::octets(SIP_AUTHORIZATION, vec![0x3c; 8]),
                    Avp::octets(CONFIDENTIALITY_KEY, vec![0x11; 16]),
                    Avp::octets(INTEGRITY_KEY, vec![0x22; 16]),
                ],
            ))
            .with(Avp::grouped(
                SIP_AUTH_DATA_ITEM,
                vec![
                    Avp::u32(SIP_ITEM_NUMBER, 2),
                    Avp::utf8(SIP_AUTHENTICATION_SCHEME, "SIP Digest"),
                    Avp::grouped(
                        SIP_DIGEST_AUTHENTICATE,
                        vec![
                            Avp::utf8(DIGEST_REALM, REALM),
                            Avp::utf8(DIGEST_ALGORITHM, "MD5"),
                            Avp::utf8(DIGEST_QOP, "auth"),
                            Avp::octets(DIGEST_HA1, b"0123456789abcdef0123456789abcdef".to_vec()),
                        ],
                    ),
                ],
            )),
    );

    let sar = origin(
        cx_request(CommandCode::SERVER_ASSIGNMENT, 5, "scscf;1;5"),
        SCSCF,
    )
    .with(Avp::identity(DESTINATION_REALM, REALM))
    .with(Avp::utf8(USER_NAME, IMPI))
    .with(Avp::utf8(PUBLIC_IDENTITY, IMPU))
    .with(Avp::utf8(SERVER_NAME, "sip:scscf.ims.example.org:6060"))
    .with(Avp::enumerated(SERVER_ASSIGNMENT_TYPE, 1))
    .with(Avp::enumerated(USER_DATA_ALREADY_AVAILABLE, 0));
    let saa = success(
        cx_answer(&sar)
            .with(Avp::utf8(USER_NAME, IMPI))
            .with(Avp::octets(USER_DATA, USER_DATA_XML.as_bytes().to_vec()))
            .with(Avp::grouped(
                CHARGING_INFORMATION,
                vec![Avp::uri(
                    PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
                    "aaa://ccf.ims.example.org",
                )],
            )),
    );

    let lir = origin(
        cx_request(CommandCode::LOCATION_INFO, 6, "icscf;1;6"),
        SCSCF,
    )
    .with(Avp::identity(DESTINATION_REALM, REALM))
    .with(Avp::utf8(PUBLIC_IDENTITY, "tel:+8618612345678"));
    let lia =
        success(cx_answer(&lir).with(Avp::utf8(SERVER_NAME, "sip:scscf.ims.example.org:6060")));

    let rtr = origin(
        cx_request(CommandCode::REGISTRATION_TERMINATION, 7, "hss;1;7"),
        HSS,
    )
    .with(Avp::identity(DESTINATION_HOST, SCSCF))
    .with(Avp::identity(DESTINATION_REALM, REALM))
    .with(Avp::utf8(USER_NAME, IMPI))
    .with(Avp::grouped(
        DEREGISTRATION_REASON,
        vec![
            Avp::enumerated(REASON_CODE, 0),
            Avp::utf8(REASON_INFO, "service 001 withdrawn"),
        ],
    ));
    let rta = success(origin(
        Message::answer_to(&rtr)
            .with(Avp::grouped(
                VENDOR_SPECIFIC_APPLICATION_ID,
                vec![
                    Avp::u32(VENDOR_ID, VENDOR_3GPP),
                    Avp::u32(AUTH_APPLICATION_ID, ApplicationId::CX.0),
                ],
            ))
            .with(Avp::enumerated(AUTH_SESSION_STATE, 1)),
        SCSCF,
    ));

    let ppr = origin(cx_request(CommandCode::PUSH_PROFILE, 8, "hss;1;8"), HSS)
        .with(Avp::identity(DESTINATION_HOST, SCSCF))
        .with(Avp::identity(DESTINATION_REALM, REALM))
        .with(Avp::utf8(USER_NAME, IMPI))
        .with(Avp::octets(USER_DATA, USER_DATA_XML.as_bytes().to_vec()));

    // A protocol error (RFC 6733 §7.1.3): E bit, 3xxx Result-Code, the offending AVP in
    // Failed-AVP (§7.5).
    let bad_uar = origin(
        cx_request(CommandCode::USER_AUTHORIZATION, 9, "icscf;1;9"),
        SCSCF,
    )
    .with(Avp::identity(DESTINATION_REALM, REALM));
    let mut error_answer = origin(Message::answer_to(&bad_uar), HSS);
    error_answer.header.flags |= FLAG_E;
    error_answer.set_result(ResultCode::DIAMETER_INVALID_AVP_BITS);
    error_answer.push(Avp::grouped(
        FAILED_AVP,
        vec![Avp::utf8(PUBLIC_IDENTITY, IMPU)],
    ));
    error_answer.push(Avp::utf8(ERROR_MESSAGE, "reserved AVP flag bits set"));

    let dpr = origin(
        Message::request(
            CommandCode::DISCONNECT_PEER,
            ApplicationId::COMMON,
            false,
            10,
            10,
        ),
        SCSCF,
    )
    .with(Avp::enumerated(DISCONNECT_CAUSE, 0));
    let dpa = success(origin(Message::answer_to(&dpr), HSS));

    vec![
        ("CER", From::Cscf, cer),
        ("CEA", From::Hss, cea),
        ("DWR", From::Cscf, dwr),
        ("DWA", From::Hss, dwa),
        ("UAR", From::Cscf, uar),
        ("UAA", From::Hss, uaa),
        ("MAR", From::Cscf, mar),
        ("MAA", From::Hss, maa),
        ("SAR", From::Cscf, sar),
        ("SAA", From::Hss, saa),
        ("LIR", From::Cscf, lir),
        ("LIA", From::Hss, lia),
        ("RTR", From::Hss, rtr),
        ("RTA", From::Cscf, rta),
        ("PPR", From::Hss, ppr),
        ("UAR (bad)", From::Cscf, bad_uar),
        ("error answer", From::Hss, error_answer),
        ("DPR", From::Cscf, dpr),
        ("DPA", From::Hss, dpa),
    ]
}

/// Writes the messages as one TCP connection (handshake first) and returns, per message,
/// its frame number.
fn write_capture(path: &Path, msgs: &[(&str, From, Message)]) -> Vec<u64> {
    let mut flow = TcpFlow::new(
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3868),
    );
    let mut frames = flow.open();
    let mut numbers = Vec::new();
    for (_, from, m) in msgs {
        frames.push(flow.data(*from == From::Cscf, &m.encode()));
        numbers.push(frames.len() as u64);
    }
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 1_000_000, f)
            .unwrap();
    }
    std::fs::write(path, w.into_inner()).unwrap();
    numbers
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run tshark ({e}). Install it by running the README's test command, \
                 ./scripts/test (it installs tshark from Debian's packages), or \
                 `apt-get install -y tshark`"
            )
        });
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tshark_installed() {
    let found = Command::new("tshark").arg("--version").output().is_ok();
    assert!(
        found,
        "tshark is not installed. Run the README's test command, ./scripts/test, which installs \
         it from Debian's packages (or `DEBIAN_FRONTEND=noninteractive apt-get install -y tshark`)"
    );
}

#[test]
fn tshark_dissects_every_built_message_without_malformed_or_expert_warnings() {
    tshark_installed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("built.pcap");
    let msgs = messages();
    let frames = write_capture(&path, &msgs);
    // To look at the capture in Wireshark: SICHSS_TSHARK_PCAP=/tmp/built.pcap cargo test …
    if let Some(keep) = std::env::var_os("SICHSS_TSHARK_PCAP") {
        std::fs::copy(&path, keep).unwrap();
    }
    let file = path.to_str().unwrap();
    // `-o diameter.tcp.ports:3868` is gone from tshark 4.x (Debian 12 ships 4.0); "decode as"
    // works in every version.
    let port = "tcp.port==3868,diameter";

    // Every data frame is Diameter, with the command code and R/E bits it was built with.
    let fields = tshark(&[
        "-r",
        file,
        "-d",
        port,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.number",
        "-e",
        "diameter.cmd.code",
        "-e",
        "diameter.flags.request",
        "-e",
        "diameter.flags.error",
    ]);
    let rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split('|').collect()).collect();
    for ((label, _, m), frame) in msgs.iter().zip(&frames) {
        let row = rows
            .iter()
            .find(|r| r[0] == frame.to_string())
            .unwrap_or_else(|| panic!("{label}: frame {frame} missing from tshark output"));
        assert_eq!(
            row[1],
            m.header.command.0.to_string(),
            "{label}: frame {frame} is not dissected as Diameter command {}: {row:?}",
            m.header.command.0
        );
        let flag = |b: bool| if b { ["1", "True"] } else { ["0", "False"] };
        assert!(
            flag(m.header.is_request()).contains(&row[2]),
            "{label}: R bit {row:?}"
        );
        assert!(
            flag(m.header.is_error()).contains(&row[3]),
            "{label}: E bit {row:?}"
        );
    }

    // Nothing malformed, no expert item at warning or error level.
    let filter = "_ws.malformed || _ws.expert.severity >= 0x00600000";
    let flagged = tshark(&[
        "-r",
        file,
        "-d",
        port,
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ]);
    if !flagged.trim().is_empty() {
        let detail = tshark(&["-r", file, "-d", port, "-V", "-Y", filter]);
        let expert = tshark(&["-r", file, "-d", port, "-q", "-z", "expert,warn"]);
        panic!("tshark flags frames:\n{flagged}\n{expert}\n{detail}");
    }
    // The filter itself works: it finds a planted malformation (an AVP length past the end).
    let mut broken = msgs[2].2.encode();
    broken[20 + 7] = 0xff;
    let bad_path = dir.path().join("broken.pcap");
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    let mut flow = TcpFlow::new(
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3868),
    );
    for f in flow.open() {
        w.write_packet(0, &f).unwrap();
    }
    w.write_packet(0, &flow.data(true, &broken)).unwrap();
    std::fs::write(&bad_path, w.into_inner()).unwrap();
    let caught = tshark(&[
        "-r",
        bad_path.to_str().unwrap(),
        "-d",
        port,
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert_eq!(
        caught.trim(),
        "4",
        "the check must catch a broken AVP length"
    );
}
