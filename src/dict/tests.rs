//! Tests of the built-in dictionary files and of operator files loaded at run time.

use super::*;

const VENDOR_3GPP: u32 = 10415;
const APP_CX: u32 = 16777216;

/// Cx codes in 600..=659 that the dictionary deliberately does not define:
/// 627 User-Data-Request-Type was removed from TS 29.229 in V6.5.0.
const SKIPPED_CX_CODES: &[u32] = &[627];

fn dict() -> &'static Dictionary {
    Dictionary::builtin()
}

fn avp(code: u32, vendor: u32) -> &'static AvpDef {
    dict()
        .avp(code, vendor)
        .unwrap_or_else(|| panic!("AVP ({code}, {vendor}) missing"))
}

#[test]
fn builtin_dictionary_loads() {
    // Load file by file so a broken file fails with its own name and error.
    let mut d = Dictionary::default();
    for (name, text) in BUILTIN_FILES {
        if let Err(e) = d.load_str(text) {
            panic!("{name}: {e}");
        }
    }
    let b = dict();
    assert_eq!(b.avp_count(), d.avp_count());
    assert!(b.avp_count() > 100, "only {} AVPs", b.avp_count());
    // Names are unique across all files: no AVP is shadowed in the by-name index.
    for a in b.avps() {
        assert_eq!(
            b.avp_by_name(&a.name),
            Some(a),
            "name {} is used twice",
            a.name
        );
    }
    assert_eq!(b.vendor_name(0), Some("IETF"));
    assert_eq!(b.vendor_name(VENDOR_3GPP), Some("3GPP"));
    assert_eq!(b.vendor_name(13019), Some("ETSI"));
    assert_eq!(b.vendor_name(50), Some("Kamailio"));
    assert_eq!(b.application_name(0), Some("Diameter Common Messages"));
    assert_eq!(b.application_name(APP_CX), Some("3GPP Cx"));
}

#[test]
fn finds_avps_by_code_and_vendor() {
    let d = dict();
    let user_name = avp(1, 0);
    assert_eq!(user_name.name, "User-Name");
    assert_eq!(user_name.ty, AvpType::Utf8String);
    assert_eq!(user_name.m, FlagRule::Must);
    assert!(d.avp(1, VENDOR_3GPP).is_none());

    let impu = avp(601, VENDOR_3GPP);
    assert_eq!(impu.name, "Public-Identity");
    assert_eq!(impu.ty, AvpType::Utf8String);
    assert_eq!(impu.m, FlagRule::Must);
    assert_eq!(d.avp_by_name("Public-Identity"), Some(impu));
    assert!(d.avp(601, 0).is_none());

    // Same code, different vendor: different AVPs.
    let uat = avp(623, VENDOR_3GPP);
    let olr = avp(623, 0);
    assert_eq!(uat.name, "User-Authorization-Type");
    assert_eq!(uat.ty, AvpType::Enumerated);
    assert_eq!(uat.m, FlagRule::Must);
    assert_eq!(olr.name, "OC-OLR");
    assert_eq!(olr.ty, AvpType::Grouped);
    assert_eq!(olr.m, FlagRule::MustNot);
    for (code, ietf, tgpp) in [
        (
            621,
            "OC-Supported-Features",
            "Primary-Charging-Collection-Function-Name",
        ),
        (650, "Load", "Session-Priority"),
    ] {
        assert_eq!(avp(code, 0).name, ietf);
        assert_eq!(avp(code, VENDOR_3GPP).name, tgpp);
    }

    // Vendor-specific AVPs outside 3GPP.
    let line_id = avp(500, 13019);
    assert_eq!(line_id.name, "Line-Identifier");
    let call_id = avp(494, 50);
    assert_eq!(call_id.name, "Call-Id");
    assert_eq!(call_id.ty, AvpType::Utf8String);
    assert_eq!(call_id.m, FlagRule::MustNot);
    assert_eq!(avp(121, 0).name, "Digest-HA1");
    assert_eq!(avp(121, 0).ty, AvpType::OctetString);
}

#[test]
fn knows_every_cx_avp_from_600_to_659() {
    let d = dict();
    let mut missing = Vec::new();
    for code in 600..=659 {
        if SKIPPED_CX_CODES.contains(&code) {
            assert!(
                d.avp(code, VENDOR_3GPP).is_none(),
                "{code} is skipped on purpose"
            );
            continue;
        }
        match d.avp(code, VENDOR_3GPP) {
            Some(a) => {
                assert_eq!((a.code, a.vendor), (code, VENDOR_3GPP));
                assert_eq!(
                    d.avp_by_name(&a.name),
                    Some(a),
                    "name {} is shadowed",
                    a.name
                );
            }
            None => missing.push(code),
        }
    }
    assert!(missing.is_empty(), "Cx AVPs missing: {missing:?}");

    // Spot checks of types against the TS 29.229 table (cx-spec.md §2.3).
    for (code, name, ty) in [
        (600, "Visited-Network-Identifier", AvpType::OctetString),
        (602, "Server-Name", AvpType::Utf8String),
        (606, "User-Data", AvpType::OctetString),
        (609, "SIP-Authenticate", AvpType::OctetString),
        (612, "SIP-Auth-Data-Item", AvpType::Grouped),
        (614, "Server-Assignment-Type", AvpType::Enumerated),
        (
            619,
            "Primary-Event-Charging-Function-Name",
            AvpType::DiameterUri,
        ),
        (
            622,
            "Secondary-Charging-Collection-Function-Name",
            AvpType::DiameterUri,
        ),
        (624, "User-Data-Already-Available", AvpType::Enumerated),
        (625, "Confidentiality-Key", AvpType::OctetString),
        (626, "Integrity-Key", AvpType::OctetString),
        (628, "Supported-Features", AvpType::Grouped),
        (630, "Feature-List", AvpType::Unsigned32),
        (652, "Priviledged-Sender-Indication", AvpType::Enumerated),
        (659, "RTR-Flags", AvpType::Unsigned32),
    ] {
        let a = avp(code, VENDOR_3GPP);
        assert_eq!((a.name.as_str(), a.ty), (name, ty), "AVP {code}");
    }
}

#[test]
fn m_bit_rules_follow_the_avp_tables() {
    // cx-spec.md §2.3: 600-626 and 633 are "M,V"; 628 is "V (M may)"; the rest is "V".
    for code in (600..=659).filter(|c| !SKIPPED_CX_CODES.contains(c)) {
        let want = match code {
            600..=626 | 633 => FlagRule::Must,
            628 => FlagRule::May,
            _ => FlagRule::MustNot,
        };
        assert_eq!(avp(code, VENDOR_3GPP).m, want, "AVP {code}");
    }
    // cx-spec.md §1.4: the base AVPs marked "–".
    for code in [267, 269, 281, 294] {
        assert_eq!(avp(code, 0).m, FlagRule::MustNot, "AVP {code}");
    }
    for code in [
        1, 33, 257, 258, 260, 263, 264, 268, 277, 279, 283, 296, 297, 298,
    ] {
        assert_eq!(avp(code, 0).m, FlagRule::Must, "AVP {code}");
    }
    // RFC 4740 Digest AVPs: M set.
    for code in 103..=122 {
        assert_eq!(avp(code, 0).m, FlagRule::Must, "AVP {code}");
    }
    assert_eq!(avp(301, 0).m, FlagRule::May); // DRMP
}

#[test]
fn every_cx_command_has_request_and_answer_grammar() {
    let d = dict();
    let abbrevs = [
        (300, "User-Authorization", "UAR", "UAA"),
        (301, "Server-Assignment", "SAR", "SAA"),
        (302, "Location-Info", "LIR", "LIA"),
        (303, "Multimedia-Auth", "MAR", "MAA"),
        (304, "Registration-Termination", "RTR", "RTA"),
        (305, "Push-Profile", "PPR", "PPA"),
    ];
    for (code, name, req, ans) in abbrevs {
        let c = d
            .command(code, APP_CX)
            .unwrap_or_else(|| panic!("command {code} missing"));
        assert_eq!(c.application, APP_CX, "{name}");
        assert_eq!(
            (
                c.name.as_str(),
                c.request_abbrev.as_str(),
                c.answer_abbrev.as_str()
            ),
            (name, req, ans)
        );
        assert!(c.proxiable, "{name} must be proxiable");
        for (side, rules) in [("request", &c.request), ("answer", &c.answer)] {
            let first = &rules[0];
            assert_eq!(first.name, "Session-Id", "{name} {side}");
            assert!(first.fixed, "{name} {side}: Session-Id must be fixed");
            assert_eq!((first.min, first.max), (1, Some(1)));
            assert_eq!(rules.iter().filter(|r| r.fixed).count(), 1, "{name} {side}");
            let has = |n: &str| rules.iter().any(|r| r.name == n);
            for n in [
                "Vendor-Specific-Application-Id",
                "Auth-Session-State",
                "Origin-Host",
            ] {
                assert!(has(n), "{name} {side} lacks {n}");
            }
            assert!(
                rules
                    .iter()
                    .any(|r| r.name == "AVP" && r.min == 0 && r.max.is_none()),
                "{name} {side} lacks *[ AVP ]"
            );
        }
        // Answers carry either Result-Code or Experimental-Result, so both are optional.
        for n in ["Result-Code", "Experimental-Result"] {
            let r = c.answer.iter().find(|r| r.name == n).unwrap();
            assert_eq!((r.min, r.max), (0, Some(1)), "{name} {n}");
        }
    }

    // A few required/optional/repeated lines that the HSS logic relies on.
    let rule = |code: u32, request: bool, avp: &str| -> (u32, Option<u32>) {
        let c = d.command(code, APP_CX).unwrap();
        let rules = if request { &c.request } else { &c.answer };
        let r = rules.iter().find(|r| r.name == avp).unwrap();
        (r.min, r.max)
    };
    assert_eq!(rule(300, true, "Public-Identity"), (1, Some(1)));
    assert_eq!(rule(300, true, "User-Authorization-Type"), (0, Some(1)));
    assert_eq!(rule(301, true, "Public-Identity"), (0, None));
    assert_eq!(rule(301, true, "Server-Assignment-Type"), (1, Some(1)));
    assert_eq!(rule(303, true, "SIP-Auth-Data-Item"), (1, Some(1)));
    assert_eq!(rule(303, false, "SIP-Auth-Data-Item"), (0, None));
    assert_eq!(rule(304, true, "Destination-Host"), (1, Some(1)));
    assert_eq!(rule(304, true, "Deregistration-Reason"), (1, Some(1)));
    assert_eq!(rule(305, true, "Destination-Host"), (1, Some(1)));
    assert_eq!(rule(300, false, "Supported-Features"), (0, None));
}

#[test]
fn base_commands_are_application_zero_and_not_proxiable() {
    let d = dict();
    for (code, req, ans) in [
        (257, "CER", "CEA"),
        (280, "DWR", "DWA"),
        (282, "DPR", "DPA"),
    ] {
        let c = d.command(code, 0).unwrap();
        assert_eq!(
            (c.request_abbrev.as_str(), c.answer_abbrev.as_str()),
            (req, ans)
        );
        assert_eq!(c.application, 0);
        assert!(!c.proxiable, "{req}");
        assert!(
            c.request.iter().all(|r| !r.fixed),
            "{req} has no Session-Id"
        );
        // Found whatever application id the header carries.
        assert_eq!(d.command(code, APP_CX), Some(c));
        assert_eq!(c.answer[0].name, "Result-Code");
    }
    let cer = d.command(257, 0).unwrap();
    let hip = cer
        .request
        .iter()
        .find(|r| r.name == "Host-IP-Address")
        .unwrap();
    assert_eq!((hip.min, hip.max), (1, None));
    let dpr = d.command(282, 0).unwrap();
    assert!(dpr
        .request
        .iter()
        .any(|r| r.name == "Disconnect-Cause" && r.min == 1));
    assert!(
        d.command(300, 0).is_none(),
        "Cx commands are not base commands"
    );
}

#[test]
fn grouped_members_resolve() {
    let d = dict();
    let check = |owner: &str, rules: &[Rule]| {
        for r in rules {
            match r.key {
                None => assert_eq!(r.name, "AVP", "{owner}: {} unresolved", r.name),
                Some((code, vendor)) => {
                    let m = d.avp(code, vendor).unwrap_or_else(|| {
                        panic!("{owner}: {} resolves to missing ({code}, {vendor})", r.name)
                    });
                    assert_eq!(m.name, r.name, "{owner}");
                }
            }
        }
    };
    for a in d.avps() {
        if a.ty == AvpType::Grouped {
            assert!(!a.members.is_empty(), "{} has no member grammar", a.name);
        } else {
            assert!(a.members.is_empty(), "{}", a.name);
        }
        check(&a.name, &a.members);
    }
    for c in d.commands() {
        check(&c.name, &c.request);
        check(&c.name, &c.answer);
    }

    let keys = |name: &str| -> Vec<Option<(u32, u32)>> {
        d.avp_by_name(name)
            .unwrap()
            .members
            .iter()
            .map(|r| r.key)
            .collect()
    };
    assert_eq!(
        keys("Experimental-Result"),
        [Some((266, 0)), Some((298, 0))]
    );
    assert_eq!(
        keys("Supported-Features"),
        [
            Some((266, 0)),
            Some((629, VENDOR_3GPP)),
            Some((630, VENDOR_3GPP)),
            None
        ]
    );
    let item = keys("SIP-Auth-Data-Item");
    for k in [
        (8, 0),
        (96, 0),
        (97, 0),
        (500, 13019),
        (635, VENDOR_3GPP),
        (625, VENDOR_3GPP),
    ] {
        assert!(item.contains(&Some(k)), "SIP-Auth-Data-Item lacks {k:?}");
    }
    let digest = &avp(635, VENDOR_3GPP).members;
    let ha1 = digest.iter().find(|r| r.name == "Digest-HA1").unwrap();
    assert_eq!((ha1.key, ha1.min), (Some((121, 0)), 1));
    let failed = &avp(279, 0).members;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].key, failed[0].min, failed[0].max),
        (None, 1, None)
    );
    let restoration = &avp(639, VENDOR_3GPP).members;
    let ri = restoration
        .iter()
        .find(|r| r.name == "Restoration-Info")
        .unwrap();
    assert_eq!((ri.min, ri.max), (1, None));
}

#[test]
fn names_enumerated_values() {
    let sat = avp(614, VENDOR_3GPP);
    assert_eq!(sat.enum_name(2), Some("RE_REGISTRATION"));
    assert_eq!(sat.enum_name(0), Some("NO_ASSIGNMENT"));
    assert_eq!(sat.enum_name(14), Some("RESTORATION"));
    assert_eq!(sat.enum_name(15), None);
    assert_eq!(sat.enums.len(), 15);
    assert!(
        sat.enums.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted by value"
    );

    for (code, value, name) in [
        (616, 3, "REMOVE_S-CSCF"),
        (623, 2, "REGISTRATION_AND_CAPABILITIES"),
        (624, 1, "USER_DATA_ALREADY_AVAILABLE"),
        (633, 0, "ORIGINATING"),
        (638, 1, "LOOSE_ROUTE_REQUIRED"),
        (648, 0, "NOT_MULTIPLE_REGISTRATION"),
        (650, 4, "PRIORITY-4"),
        (652, 1, "PRIVILEDGED_SENDER"),
    ] {
        assert_eq!(
            avp(code, VENDOR_3GPP).enum_name(value),
            Some(name),
            "AVP {code}"
        );
    }
    assert_eq!(avp(277, 0).enum_name(1), Some("NO_STATE_MAINTAINED"));
    assert_eq!(avp(277, 0).enum_name(0), Some("STATE_MAINTAINED"));
    assert_eq!(avp(273, 0).enum_name(2), Some("DO_NOT_WANT_TO_TALK_TO_YOU"));

    // Every Enumerated AVP names at least one value, and only Enumerated AVPs do.
    for a in dict().avps() {
        assert_eq!(
            a.ty == AvpType::Enumerated,
            !a.enums.is_empty(),
            "{}",
            a.name
        );
    }
}

#[test]
fn names_result_codes() {
    let d = dict();
    assert_eq!(d.result_name(0, 5005), Some("DIAMETER_MISSING_AVP"));
    assert_eq!(d.result_name(0, 2001), Some("DIAMETER_SUCCESS"));
    assert_eq!(
        d.result_name(VENDOR_3GPP, 2001),
        Some("DIAMETER_FIRST_REGISTRATION")
    );
    assert_eq!(
        d.result_name(VENDOR_3GPP, 5005),
        Some("DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED")
    );
    assert_eq!(
        d.result_name(VENDOR_3GPP, 2004),
        Some("DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED")
    );
    assert_eq!(
        d.result_name(VENDOR_3GPP, 5012),
        Some("DIAMETER_ERROR_SERVING_NODE_FEATURE_UNSUPPORTED")
    );
    let base: Vec<u32> = [2001, 2002, 4001]
        .into_iter()
        .chain(3001..=3010)
        .chain(5001..=5017)
        .collect();
    for code in base {
        assert!(d.result_name(0, code).is_some(), "base {code}");
    }
    for code in (2001..=2004).chain(5001..=5012) {
        assert!(d.result_name(VENDOR_3GPP, code).is_some(), "3GPP {code}");
    }
    assert_eq!(d.result_name(0, 5018), None);
    assert_eq!(d.result_name(VENDOR_3GPP, 5013), None);
}

#[test]
fn operator_file_adds_an_avp_at_run_time() {
    let mut d = Dictionary::with_builtin();
    let before = d.avp_count();
    let extra = r#"
        [[vendor]]
        id = 4491
        name = "CableLabs"

        [[avp]]
        name = "CableLabs-Digest-HA1"
        code = 207
        vendor = 4491
        type = "OctetString"
        m = "must"

        [[avp]]
        name = "CableLabs-SIP-Digest-Authenticate"
        code = 228
        vendor = 4491
        type = "Grouped"
        m = "must"
        members = ["{ Digest-Realm }", "{ CableLabs-Digest-HA1 }", "*[ AVP ]"]
    "#;
    d.load_str(extra).unwrap();
    assert_eq!(d.avp_count(), before + 2);
    assert_eq!(d.vendor_name(4491), Some("CableLabs"));
    let g = d.avp(228, 4491).unwrap();
    assert_eq!(g.members[0].key, Some((104, 0)));
    assert_eq!(g.members[1].key, Some((207, 4491)));
    assert_eq!(d.avp_by_name("CableLabs-Digest-HA1").unwrap().code, 207);
    // The built-in dictionary itself is untouched.
    assert!(dict().avp(228, 4491).is_none());
    assert_eq!(dict().avp_count(), before);

    // A later file may correct a built-in entry of the same (code, vendor).
    d.load_str(
        r#"
        [[avp]]
        name = "Digest-HA1"
        code = 121
        type = "UTF8String"
        m = "must"
        "#,
    )
    .unwrap();
    assert_eq!(d.avp(121, 0).unwrap().ty, AvpType::Utf8String);
    assert_eq!(d.avp_count(), before + 2);
    // Grammars naming the replaced AVP still resolve.
    assert_eq!(d.avp(228, 4491).unwrap().members[0].key, Some((104, 0)));
}

#[test]
fn rejects_bad_operator_file_with_a_message_naming_the_field() {
    let cases = [
        (
            r#"
            [[avp]]
            name = "My-Counter"
            code = 9001
            vendor = 99
            type = "Unsigned16"
            m = "must"
            "#,
            vec![
                "My-Counter",
                "\"Unsigned16\"",
                "unknown type",
                "Unsigned32",
                "Grouped",
            ],
        ),
        (
            r#"
            [[avp]]
            name = "My-Flag"
            code = 9002
            vendor = 99
            type = "Unsigned32"
            m = "sometimes"
            "#,
            vec![
                "My-Flag",
                "\"sometimes\"",
                "\"must\"",
                "\"may\"",
                "\"must-not\"",
            ],
        ),
        (
            r#"
            [[avp]]
            name = "My-Group"
            code = 9003
            vendor = 99
            type = "Grouped"
            m = "must"
            members = ["{ Public-Identity }", "[ No-Such-Avp ]"]
            "#,
            vec![
                "My-Group",
                "\"No-Such-Avp\"",
                "no dictionary defines",
                "define it first",
            ],
        ),
        (
            r#"
            [[avp]]
            name = "My-Group"
            code = 9003
            vendor = 99
            type = "Grouped"
            m = "must"
            members = ["{ Public-Identity"]
            "#,
            vec![
                "My-Group",
                "{ Public-Identity",
                "<X>, {X}, [X] or min*max{X}",
            ],
        ),
        (
            r#"
            [[avp]]
            name = "My-Enum"
            code = 9004
            vendor = 99
            type = "Unsigned32"
            m = "must"
            enum = { ON = 1 }
            "#,
            vec!["My-Enum", "only allowed on an Enumerated AVP"],
        ),
        (
            r#"
            [[avp]]
            name = "My-Typo"
            code = 9005
            typ = "Unsigned32"
            m = "must"
            "#,
            vec!["typ"],
        ),
    ];
    for (text, wanted) in cases {
        let mut d = Dictionary::with_builtin();
        let before = d.avp_count();
        let err = d.load_str(text).expect_err(text).to_string();
        for w in wanted {
            assert!(err.contains(w), "error {err:?} should mention {w:?}");
        }
        // A refused file leaves the dictionary as it was.
        assert_eq!(d.avp_count(), before);
        assert!(d.avp_by_name("My-Group").is_none());
    }
}
