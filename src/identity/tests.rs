//! Behaviour tests for identities, table-driven in both directions.

use super::*;

const PATENT_IMSI: &str = "460011100612345";

fn imsi(s: &str) -> Imsi {
    Imsi::parse(s).unwrap()
}

fn sic(s: &str) -> Sic {
    Sic::parse(s).unwrap()
}

fn derive(imsi_s: &str, net: &HomeNetwork, sic_s: Option<&str>) -> String {
    let sic = sic_s.map(self::sic);
    derive_impi(&imsi(imsi_s), net, sic.as_ref())
        .unwrap()
        .as_str()
        .to_owned()
}

/// Asserts that `result` failed and that its message holds every one of `parts`.
#[track_caller]
fn assert_err_mentions<T: std::fmt::Debug>(
    input: &str,
    result: Result<T, IdentityError>,
    parts: &[&str],
) -> IdentityError {
    let err = match result {
        Ok(v) => panic!("{input:?} was accepted as {v:?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    for part in parts {
        assert!(
            msg.contains(part),
            "{input:?}: error {msg:?} does not mention {part:?}"
        );
    }
    err
}

#[test]
fn derives_sic_impi_from_patent_example() {
    for (sic_s, expected) in [
        (
            "001",
            "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "002",
            "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org",
        ),
    ] {
        let impi = derive_impi(
            &imsi(PATENT_IMSI),
            &HomeNetwork::MncLen(2),
            Some(&sic(sic_s)),
        )
        .unwrap();
        assert_eq!(impi.as_str(), expected);
        assert_eq!(impi.sic(), Some(&sic(sic_s)));
        assert_eq!(impi.imsi(), Some(&imsi(PATENT_IMSI)));
    }
}

#[test]
fn derives_plain_impi_without_sic() {
    let impi = derive_impi(&imsi(PATENT_IMSI), &HomeNetwork::MncLen(2), None).unwrap();
    assert_eq!(
        impi.as_str(),
        "460011100612345@ims.mnc001.mcc460.3gppnetwork.org"
    );
    assert_eq!(
        impi.kind(),
        &ImpiKind::Imsi {
            imsi: imsi(PATENT_IMSI)
        }
    );
    assert_eq!(impi.sic(), None);
}

#[test]
fn pads_two_digit_mnc_to_three() {
    for (imsi_s, expected) in [
        (
            "460011100612345",
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        // The TS 23.003 §13.3 example.
        (
            "234150999999999",
            "234150999999999@ims.mnc015.mcc234.3gppnetwork.org",
        ),
        ("262991", "262991@ims.mnc099.mcc262.3gppnetwork.org"),
    ] {
        assert_eq!(derive(imsi_s, &HomeNetwork::MncLen(2), None), expected);
    }
    assert_eq!(
        home_domain(&imsi("234150999999999"), &HomeNetwork::MncLen(2)).unwrap(),
        "ims.mnc015.mcc234.3gppnetwork.org"
    );
}

#[test]
fn derives_three_digit_mnc() {
    for (imsi_s, sic_s, expected) in [
        (
            "310260123456789",
            None,
            "310260123456789@ims.mnc260.mcc310.3gppnetwork.org",
        ),
        (
            "310260123456789",
            Some("002"),
            "310260123456789@ims.sic002.mnc260.mcc310.3gppnetwork.org",
        ),
        (
            "405854000000001",
            Some("001"),
            "405854000000001@ims.sic001.mnc854.mcc405.3gppnetwork.org",
        ),
    ] {
        assert_eq!(derive(imsi_s, &HomeNetwork::MncLen(3), sic_s), expected);
    }
}

#[test]
fn derives_with_explicit_home_domain() {
    let cases = [
        (
            "ims.example.com",
            Some("002"),
            "460011100612345@ims.sic002.example.com",
        ),
        (
            "example.com",
            Some("002"),
            "460011100612345@sic002.example.com",
        ),
        (
            "IMS.Example.COM",
            Some("001"),
            "460011100612345@ims.sic001.example.com",
        ),
        ("ims.example.com", None, "460011100612345@ims.example.com"),
        // An explicit TS 23.003 domain matching the IMSI is fine too.
        (
            "ims.mnc001.mcc460.3gppnetwork.org",
            Some("001"),
            "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        ),
        // `ims` must be a whole label to take the SIC after it.
        (
            "imsi.example.com",
            Some("001"),
            "460011100612345@sic001.imsi.example.com",
        ),
    ];
    for (domain, sic_s, expected) in cases {
        let net = HomeNetwork::Domain(domain.to_owned());
        assert_eq!(derive(PATENT_IMSI, &net, sic_s), expected, "{domain}");
    }
    let impi = derive_impi(
        &imsi(PATENT_IMSI),
        &HomeNetwork::Domain("example.com".into()),
        Some(&sic("002")),
    )
    .unwrap();
    assert_eq!(impi.home_domain(), "example.com");
    assert_eq!(impi.sic(), Some(&sic("002")));
}

#[test]
fn parses_sic_impi_into_imsi_sic_and_home_domain() {
    let cases = [
        (
            "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
            "460011100612345",
            "001",
            "ims.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "460011100612345@IMS.SIC002.MNC001.MCC460.3GPPNETWORK.ORG",
            "460011100612345",
            "002",
            "ims.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "310260123456789@ims.sic123.mnc260.mcc310.3gppnetwork.org",
            "310260123456789",
            "123",
            "ims.mnc260.mcc310.3gppnetwork.org",
        ),
        (
            "460011100612345@ims.sic002.example.com",
            "460011100612345",
            "002",
            "ims.example.com",
        ),
        (
            "460011100612345@sic002.example.com",
            "460011100612345",
            "002",
            "example.com",
        ),
    ];
    for (input, imsi_s, sic_s, home) in cases {
        let impi = Impi::parse(input).unwrap();
        assert_eq!(
            impi.kind(),
            &ImpiKind::Sic {
                imsi: imsi(imsi_s),
                sic: sic(sic_s)
            },
            "{input}"
        );
        assert_eq!(impi.imsi().map(Imsi::as_str), Some(imsi_s));
        assert_eq!(impi.sic().map(Sic::as_str), Some(sic_s));
        assert_eq!(impi.user(), imsi_s);
        assert_eq!(
            impi.domain(),
            input.split_once('@').unwrap().1.to_ascii_lowercase()
        );
        assert_eq!(impi.home_domain(), home, "{input}");
    }
}

#[test]
fn stripping_sic_gives_subscriber_key() {
    let cases = [
        (
            "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org",
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "460011100612345@ims.sic002.example.com",
            "460011100612345@ims.example.com",
        ),
        (
            "460011100612345@sic002.example.com",
            "460011100612345@example.com",
        ),
        // No SIC: the identity itself.
        (
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        ("alice@sic001.example.com", "alice@sic001.example.com"),
    ];
    for (input, key) in cases {
        let stripped = Impi::parse(input).unwrap().without_sic();
        assert_eq!(stripped.as_str(), key, "{input}");
        assert_eq!(stripped.sic(), None);
        // The key is exactly what parsing its text gives.
        assert_eq!(stripped, Impi::parse(key).unwrap(), "{input}");
    }
    // Two services of one phone share one subscriber key.
    let volte = Impi::parse("460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org").unwrap();
    let rcs = Impi::parse("460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org").unwrap();
    assert_ne!(volte, rcs);
    assert_eq!(volte.without_sic(), rcs.without_sic());
    assert_eq!(
        volte.without_sic().kind(),
        &ImpiKind::Imsi {
            imsi: imsi(PATENT_IMSI)
        }
    );
}

#[test]
fn parses_plain_23003_impi() {
    for (input, imsi_s) in [
        (
            "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
            "460011100612345",
        ),
        (
            "234150999999999@ims.mnc015.mcc234.3gppnetwork.org",
            "234150999999999",
        ),
        (
            "310260123456789@Ims.Mnc260.Mcc310.3gppNetwork.org",
            "310260123456789",
        ),
    ] {
        let impi = Impi::parse(input).unwrap();
        assert_eq!(impi.kind(), &ImpiKind::Imsi { imsi: imsi(imsi_s) });
        assert_eq!(impi.sic(), None);
        assert_eq!(impi.home_domain(), impi.domain());
        assert_eq!(impi.without_sic(), impi);
        assert_eq!(impi.as_str(), input.to_ascii_lowercase());
    }
}

#[test]
fn parses_non_imsi_impi_as_other() {
    for (input, normalised) in [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),
        // A sic label in a non-digit user's domain stays part of the domain.
        ("alice@sic001.example.com", "alice@sic001.example.com"),
        ("bob@ims.sic002.example.com", "bob@ims.sic002.example.com"),
        (
            "alice@ims.mnc001.mcc460.3gppnetwork.org",
            "alice@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        // Digits on a domain with no SIC and not TS 23.003: a provisioned NAI.
        ("460011100612345@example.com", "460011100612345@example.com"),
        (
            "+8613800138000@ims.example.com",
            "+8613800138000@ims.example.com",
        ),
        // The EAP-AKA permanent NAI is not an IMS domain.
        (
            "0460011100612345@nai.epc.mnc001.mcc460.3gppnetwork.org",
            "0460011100612345@nai.epc.mnc001.mcc460.3gppnetwork.org",
        ),
        // `sic` with letters is not a SIC label.
        (
            "460011100612345@sicx.example.com",
            "460011100612345@sicx.example.com",
        ),
        ("host-1@a", "host-1@a"),
    ] {
        let impi = Impi::parse(input).unwrap();
        assert_eq!(impi.kind(), &ImpiKind::Other, "{input}");
        assert_eq!(impi.as_str(), normalised);
        assert_eq!(impi.imsi(), None);
        assert_eq!(impi.sic(), None);
        assert_eq!(impi.home_domain(), impi.domain());
        assert_eq!(impi.without_sic(), impi);
    }
    let impi = Impi::parse("Alice@Example.com").unwrap();
    assert_eq!(impi.user(), "Alice");
    assert_eq!(impi.domain(), "example.com");
}

#[test]
fn rejects_imsi_of_bad_length_or_chars() {
    for input in [
        "",
        "46001",
        "4600111006123456",
        "46001abc",
        " 46001110061234",
        "-460011100",
    ] {
        let err = assert_err_mentions(
            input,
            Imsi::parse(input),
            &[&format!("IMSI {input:?}"), "6 to 15 decimal digits"],
        );
        assert!(matches!(err, IdentityError::Imsi { .. }));
    }
    // The same rule inside an IMPI whose domain says it is IMSI-derived.
    for input in [
        "46001@ims.mnc001.mcc460.3gppnetwork.org",
        "4600111006123456@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "4600111006123456@sic001.example.com",
    ] {
        assert_err_mentions(
            input,
            Impi::parse(input),
            &["IMSI", "6 to 15 decimal digits"],
        );
    }
}

#[test]
fn rejects_sic_of_two_or_four_digits() {
    for input in ["01", "0001", "", "0a1", "1"] {
        let err = assert_err_mentions(
            input,
            Sic::parse(input),
            &[&format!("SIC {input:?}"), "exactly 3 digits (e.g. 001)"],
        );
        assert!(matches!(err, IdentityError::Sic { .. }));
    }
    for (input, label) in [
        (
            "460011100612345@ims.sic01.mnc001.mcc460.3gppnetwork.org",
            "sic01",
        ),
        (
            "460011100612345@ims.sic0001.mnc001.mcc460.3gppnetwork.org",
            "sic0001",
        ),
        (
            "460011100612345@ims.sicab.mnc001.mcc460.3gppnetwork.org",
            "sicab",
        ),
        ("460011100612345@ims.sic01.example.com", "sic01"),
        ("460011100612345@sic0001.example.com", "sic0001"),
    ] {
        let err = assert_err_mentions(
            input,
            Impi::parse(input),
            &[&format!("SIC label {label:?}"), "sic followed by 3 digits"],
        );
        assert!(matches!(err, IdentityError::SicLabel { .. }), "{input}");
    }
}

#[test]
fn rejects_mcc_mismatch() {
    for (input, domain_mcc) in [
        ("460011100612345@ims.mnc001.mcc461.3gppnetwork.org", "461"),
        (
            "460011100612345@ims.sic001.mnc001.mcc310.3gppnetwork.org",
            "310",
        ),
    ] {
        let err = assert_err_mentions(
            input,
            Impi::parse(input),
            &[
                &format!("MCC {domain_mcc}"),
                "MCC 460",
                "460011100612345",
                "expected mcc460",
            ],
        );
        assert!(matches!(err, IdentityError::MccMismatch { .. }));
    }
    // Through derivation with an explicit domain.
    let net = HomeNetwork::Domain("ims.mnc001.mcc234.3gppnetwork.org".into());
    assert_err_mentions(
        "derive",
        derive_impi(&imsi(PATENT_IMSI), &net, None),
        &["MCC 234", "MCC 460"],
    );
}

#[test]
fn rejects_mnc_mismatch() {
    for (input, domain_mnc, two, three) in [
        (
            "460011100612345@ims.mnc002.mcc460.3gppnetwork.org",
            "002",
            "001",
            "011",
        ),
        (
            "460011100612345@ims.sic001.mnc010.mcc460.3gppnetwork.org",
            "010",
            "001",
            "011",
        ),
        (
            "310260123456789@ims.mnc026.mcc310.3gppnetwork.org",
            "026",
            "026",
            "260",
        ),
    ] {
        if domain_mnc == two {
            // Sanity: that one is accepted (2-digit reading).
            assert!(Impi::parse(input).is_ok(), "{input}");
            continue;
        }
        let err = assert_err_mentions(
            input,
            Impi::parse(input),
            &[
                &format!("MNC {domain_mnc}"),
                &format!("mnc{two}"),
                &format!("mnc{three}"),
                "does not match IMSI",
            ],
        );
        assert!(matches!(err, IdentityError::MncMismatch { .. }));
    }
    // Both readings of the MNC are accepted.
    for input in [
        "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.mnc011.mcc460.3gppnetwork.org",
    ] {
        assert!(Impi::parse(input).is_ok(), "{input}");
    }
}

#[test]
fn rejects_impi_without_at() {
    let input = "460011100612345";
    let err = assert_err_mentions(
        input,
        Impi::parse(input),
        &["exactly one '@'", "user@domain", "found 0"],
    );
    assert_eq!(
        err,
        IdentityError::AtSign {
            impi: input.into(),
            count: 0
        }
    );
}

#[test]
fn rejects_impi_with_two_at() {
    let input = "a@b@example.com";
    assert_err_mentions(input, Impi::parse(input), &["exactly one '@'", "found 2"]);
}

#[test]
fn rejects_impi_with_empty_user() {
    let input = "@ims.mnc001.mcc460.3gppnetwork.org";
    let err = assert_err_mentions(
        input,
        Impi::parse(input),
        &["empty user part", "user@domain"],
    );
    assert!(matches!(err, IdentityError::EmptyUser { .. }));
}

#[test]
fn rejects_impi_with_empty_domain() {
    let input = "460011100612345@";
    let err = assert_err_mentions(input, Impi::parse(input), &["empty domain", "user@domain"]);
    assert!(matches!(err, IdentityError::EmptyDomain { .. }));
}

#[test]
fn rejects_impi_with_bad_label() {
    let long = "a".repeat(64);
    let long_input = format!("alice@{long}.com");
    for (input, label) in [
        ("alice@example..com", ""),
        ("alice@example.com.", ""),
        ("alice@.example.com", ""),
        ("alice@-ims.example.com", "-ims"),
        ("alice@ims-.example.com", "ims-"),
        ("alice@ex_ample.com", "ex_ample"),
        ("alice@exämple.com", "exämple"),
        (long_input.as_str(), long.as_str()),
    ] {
        let err = assert_err_mentions(
            input,
            Impi::parse(input),
            &[
                &format!("label {label:?}"),
                "1 to 63 letters, digits or hyphens",
            ],
        );
        assert!(matches!(err, IdentityError::Label { .. }), "{input}");
    }
    let input = "ali ce@example.com";
    assert_err_mentions(input, Impi::parse(input), &["' '", "whitespace"]);
}

#[test]
fn rejects_malformed_3gpp_ims_domain() {
    for (input, parts) in [
        (
            "460011100612345@ims.mnc01.mcc460.3gppnetwork.org",
            &["MNC label \"mnc01\"", "mnc followed by 3 digits"][..],
        ),
        (
            "460011100612345@ims.net001.mcc460.3gppnetwork.org",
            &["MNC label \"net001\"", "mnc followed by 3 digits"][..],
        ),
        (
            "460011100612345@ims.mnc001.mcc46.3gppnetwork.org",
            &["MCC label \"mcc46\"", "mcc followed by 3 digits"][..],
        ),
        (
            "460011100612345@ims.foo.mnc001.mcc460.3gppnetwork.org",
            &["ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org"][..],
        ),
        (
            "460011100612345@ims.mcc460.3gppnetwork.org",
            &["ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org"][..],
        ),
        // The SIC goes after `ims`, not before it.
        (
            "460011100612345@sic001.ims.mnc001.mcc460.3gppnetwork.org",
            &["ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org"][..],
        ),
        (
            "460011100612345@ims.sic001.sic002.example.com",
            &["unexpected SIC label \"sic002\""][..],
        ),
    ] {
        assert_err_mentions(input, Impi::parse(input), parts);
    }
}

#[test]
fn rejects_mnc_length_other_than_two_or_three() {
    for len in [0, 1, 4] {
        let err = assert_err_mentions(
            "MncLen",
            home_domain(&imsi(PATENT_IMSI), &HomeNetwork::MncLen(len)),
            &[&format!("MNC length {len}"), "must be 2 or 3"],
        );
        assert_eq!(err, IdentityError::MncLength { len });
    }
}

#[test]
fn rejects_bad_explicit_home_domain() {
    for (domain, parts) in [
        (
            "sic001.example.com",
            &["unexpected SIC label \"sic001\""][..],
        ),
        (
            "ims.sic001.example.com",
            &["unexpected SIC label \"sic001\""][..],
        ),
        ("example..com", &["label \"\""][..]),
        ("", &["label \"\""][..]),
        ("exa mple.com", &["whitespace"][..]),
    ] {
        let net = HomeNetwork::Domain(domain.into());
        assert_err_mentions(domain, home_domain(&imsi(PATENT_IMSI), &net), parts);
        assert!(derive_impi(&imsi(PATENT_IMSI), &net, Some(&sic("001"))).is_err());
        assert!(temporary_impu(&imsi(PATENT_IMSI), &net).is_err());
    }
}

#[test]
fn derive_then_parse_roundtrips() {
    let imsis = [
        "460011100612345",
        "460001234567890",
        "234150999999999",
        "310260123456789",
        "001010000000001",
        "999999999999999",
        "262991",
        "4600112345",
    ];
    let sics = [None, Some("000"), Some("001"), Some("002"), Some("999")];
    let nets = [
        HomeNetwork::MncLen(2),
        HomeNetwork::MncLen(3),
        HomeNetwork::Domain("ims.example.com".into()),
        HomeNetwork::Domain("example.com".into()),
        HomeNetwork::Domain("Operator.Example".into()),
        HomeNetwork::Domain("ims".into()),
    ];
    let mut count = 0;
    for imsi_s in imsis {
        for net in &nets {
            for sic_s in sics {
                let imsi = imsi(imsi_s);
                let sic = sic_s.map(self::sic);
                let derived = derive_impi(&imsi, net, sic.as_ref()).unwrap();
                let parsed = Impi::parse(derived.as_str()).unwrap();
                assert_eq!(parsed, derived);
                assert_eq!(parsed.to_string().parse::<Impi>().unwrap(), derived);
                assert_eq!(parsed.user(), imsi_s);
                assert_eq!(parsed.sic(), sic.as_ref(), "{derived}");
                assert_eq!(parsed.home_domain(), home_domain(&imsi, net).unwrap());
                let plain = derive_impi(&imsi, net, None).unwrap();
                assert_eq!(parsed.without_sic(), plain, "{derived}");
                if sic.is_some() {
                    assert_eq!(parsed.imsi(), Some(&imsi));
                }
                if matches!(net, HomeNetwork::MncLen(_)) {
                    assert_eq!(parsed.imsi(), Some(&imsi));
                }
                count += 1;
            }
        }
    }
    assert_eq!(count, imsis.len() * nets.len() * sics.len());
}

#[test]
fn normalises_public_identities() {
    let cases = [
        (
            "sip:alice@example.com",
            "sip:alice@example.com",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "SIP:Alice@Example.COM",
            "sip:Alice@example.com",
            ImpuScheme::Sip,
            Some("Alice"),
            Some("example.com"),
        ),
        (
            "sips:alice@example.com",
            "sip:alice@example.com",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "sip:alice@example.com:5060",
            "sip:alice@example.com",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "sips:alice@example.com:5061",
            "sip:alice@example.com",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "sip:alice@example.com:5070",
            "sip:alice@example.com:5070",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "sip:+8613800138000@ims.mnc001.mcc460.3gppnetwork.org;user=phone",
            "sip:+8613800138000@ims.mnc001.mcc460.3gppnetwork.org",
            ImpuScheme::Sip,
            Some("+8613800138000"),
            Some("ims.mnc001.mcc460.3gppnetwork.org"),
        ),
        (
            "sip:alice@example.com;transport=tcp?subject=hi&priority=urgent",
            "sip:alice@example.com",
            ImpuScheme::Sip,
            Some("alice"),
            Some("example.com"),
        ),
        (
            "sip:+1-212-555-1212;npdi@Example.com;user=phone",
            "sip:+1-212-555-1212;npdi@example.com",
            ImpuScheme::Sip,
            Some("+1-212-555-1212;npdi"),
            Some("example.com"),
        ),
        (
            "sip:conference.example.com",
            "sip:conference.example.com",
            ImpuScheme::Sip,
            None,
            Some("conference.example.com"),
        ),
        (
            "sip:chatlist!.*!@example.com",
            "sip:chatlist!.*!@example.com",
            ImpuScheme::Sip,
            Some("chatlist!.*!"),
            Some("example.com"),
        ),
        (
            "sip:alice@10.0.0.1:5060",
            "sip:alice@10.0.0.1",
            ImpuScheme::Sip,
            Some("alice"),
            Some("10.0.0.1"),
        ),
        (
            "sip:alice@[2001:DB8:0:0::1]:5080",
            "sip:alice@[2001:db8::1]:5080",
            ImpuScheme::Sip,
            Some("alice"),
            Some("[2001:db8::1]"),
        ),
        (
            "sip:460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
            "sip:460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
            ImpuScheme::Sip,
            Some("460011100612345"),
            Some("ims.mnc001.mcc460.3gppnetwork.org"),
        ),
        (
            "tel:+8613800138000",
            "tel:+8613800138000",
            ImpuScheme::Tel,
            Some("+8613800138000"),
            None,
        ),
        (
            "TEL:+86-138-0013-8000",
            "tel:+8613800138000",
            ImpuScheme::Tel,
            Some("+8613800138000"),
            None,
        ),
        (
            "tel:+1(212)555.1212;ext=22",
            "tel:+12125551212",
            ImpuScheme::Tel,
            Some("+12125551212"),
            None,
        ),
        (
            "tel:0198765432100",
            "tel:0198765432100",
            ImpuScheme::Tel,
            Some("0198765432100"),
            None,
        ),
        (
            "tel:7042;phone-context=example.com",
            "tel:7042",
            ImpuScheme::Tel,
            Some("7042"),
            None,
        ),
        (
            "tel:*21#;Phone-Context=+86",
            "tel:*21#",
            ImpuScheme::Tel,
            Some("*21#"),
            None,
        ),
        (
            "tel:863-1234;phone-context=+1-914-555",
            "tel:8631234",
            ImpuScheme::Tel,
            Some("8631234"),
            None,
        ),
    ];
    for (input, key, scheme, user, host) in cases {
        let impu = Impu::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(impu.as_str(), key, "{input}");
        assert_eq!(impu.scheme(), scheme, "{input}");
        assert_eq!(impu.user(), user, "{input}");
        assert_eq!(impu.host(), host, "{input}");
        assert_eq!(impu.to_string(), key);
        // The key is a fixed point, except for a local tel number: its phone-context is
        // left out of the key, so the key alone is no longer a valid tel URI.
        if !input.to_ascii_lowercase().contains("phone-context") {
            assert_eq!(Impu::parse(key).unwrap(), impu, "{input}");
            assert_eq!(key.parse::<Impu>().unwrap(), impu);
        }
    }
}

#[test]
fn rejects_bad_public_identities() {
    let cases: &[(&str, &[&str])] = &[
        (
            "foo",
            &["public identity \"foo\" must start with sip:, sips: or tel:"],
        ),
        (
            "alice@example.com",
            &["must start with sip:, sips: or tel:"],
        ),
        (
            "mailto:alice@example.com",
            &["must start with sip:, sips: or tel:"],
        ),
        ("", &["must start with sip:, sips: or tel:"]),
        (
            "tel:+86a",
            &["tel URI \"tel:+86a\" must be + followed by digits"],
        ),
        ("tel:+", &["must be + followed by digits"]),
        ("tel:+86 138", &["whitespace"]),
        (
            "tel:12ab;phone-context=+86",
            &["local number of digits, * or #"],
        ),
        ("tel:", &["local number"]),
        ("tel:7042;phone-context=", &["empty phone-context"]),
        ("sip:", &["empty host"]),
        ("sip:alice@", &["empty host"]),
        ("sip:alice@;user=phone", &["empty host"]),
        ("sip:alice@:5060", &["empty host"]),
        ("sip:@example.com", &["empty user part", "sip:user@host"]),
        (
            "sip:alice:secret@example.com",
            &["must not carry a password"],
        ),
        (
            "sip:alice@exa_mple.com",
            &["host \"exa_mple.com\"", "domain name"],
        ),
        ("sip:alice@example..com", &["host \"example..com\""]),
        ("sip:alice@[2001:db8::g]", &["[IPv6]"]),
        ("sip:alice@[2001:db8::1", &["[IPv6]"]),
        ("sip:alice@example.com:0", &["port \"0\"", "1 to 65535"]),
        ("sip:alice@example.com:70000", &["port \"70000\""]),
        ("sip:alice@example.com:", &["port \"\""]),
        ("sip:alice@example.com:+80", &["port \"+80\""]),
        ("sip:alice@example.com:abc", &["port \"abc\""]),
    ];
    for (input, parts) in cases {
        assert_err_mentions(input, Impu::parse(input), parts);
    }
}

#[test]
fn temporary_impu_has_no_sic() {
    for (imsi_s, net, expected) in [
        (
            PATENT_IMSI,
            HomeNetwork::MncLen(2),
            "sip:460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        ),
        (
            "310260123456789",
            HomeNetwork::MncLen(3),
            "sip:310260123456789@ims.mnc260.mcc310.3gppnetwork.org",
        ),
        (
            PATENT_IMSI,
            HomeNetwork::Domain("ims.example.com".into()),
            "sip:460011100612345@ims.example.com",
        ),
    ] {
        let impu = temporary_impu(&imsi(imsi_s), &net).unwrap();
        assert_eq!(impu.as_str(), expected);
        assert_eq!(impu.scheme(), ImpuScheme::Sip);
        assert!(!impu.as_str().contains("sic"));
        // Same user and domain as the plain IMPI (TS 23.003 §13.3/§13.4).
        let plain = derive_impi(&imsi(imsi_s), &net, None).unwrap();
        assert_eq!(impu.host(), Some(plain.domain()));
        assert_eq!(impu.user(), Some(plain.user()));
    }
}

#[test]
fn parses_imsi_and_sic_and_reports_mcc() {
    let imsi = imsi(PATENT_IMSI);
    assert_eq!(imsi.as_str(), PATENT_IMSI);
    assert_eq!(imsi.mcc(), "460");
    assert_eq!(imsi.to_string(), PATENT_IMSI);
    assert_eq!("460011100612345".parse::<Imsi>().unwrap(), imsi);
    let sic = sic("001");
    assert_eq!(sic.as_str(), "001");
    assert_eq!(sic.to_string(), "001");
    assert_eq!("002".parse::<Sic>().unwrap(), self::sic("002"));
}

#[test]
fn orders_and_compares_by_normalised_text() {
    let a = Impi::parse("alice@EXAMPLE.com").unwrap();
    let b = Impi::parse("alice@example.com").unwrap();
    assert_eq!(a, b);
    let mut impis: Vec<Impi> = [
        "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "bob@example.com",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    impis.sort();
    let sorted: Vec<&str> = impis.iter().map(Impi::as_str).collect();
    assert_eq!(
        sorted,
        [
            "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
            "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org",
            "bob@example.com",
        ]
    );
    assert_eq!(
        Impu::parse("sips:Bob@EXAMPLE.com:5061").unwrap(),
        Impu::parse("sip:Bob@example.com;user=phone").unwrap()
    );
    assert!(Impu::parse("sip:a@x").unwrap() < Impu::parse("tel:+1").unwrap());
}

#[test]
fn parse_sic_accepts_only_sic_impis() {
    let sic = Impi::parse_sic("460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org").unwrap();
    assert_eq!(sic.imsi().unwrap().as_str(), "460011100612345");
    assert_eq!(sic.sic().unwrap().as_str(), "002");
    for other in [
        "460011100612345@ims.mnc001.mcc460.3gppnetwork.org", // TS 23.003, no SIC
        "alice@ims.sic001.mnc001.mcc460.3gppnetwork.org",    // not an IMSI user part
        "460011100612345@ims.sic01.mnc001.mcc460.3gppnetwork.org", // malformed SIC
        "@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "no-at-sign",
        "",
    ] {
        assert!(Impi::parse_sic(other).is_none(), "{other}");
    }
}

#[test]
fn impu_normalize_gives_exactly_the_key_or_the_error_of_parse() {
    let inputs = [
        // Already key form: the one-pass path.
        "sip:+460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        "sip:alice@example.com",
        "sip:a@b@example.com",
        "sip:alice;x=1?y@example.com",
        "tel:+8613800138000",
        // Near misses of the key form: parse decides.
        "sip:alice@Example.com",
        "sip:alice@example.com:5060",
        "sip:alice@example.com:5070",
        "sip:alice@example.com;user=phone",
        "sip:alice@example.com?subject=x",
        "sips:alice@example.com",
        "SIP:alice@example.com",
        "sip:example.com",
        "sip:alice@[2001:db8::1]",
        "sip:alice@-example.com",
        "sip:alice@example-.com",
        "sip:alice@example..com",
        "sip:alice@example.com.",
        "sip:alice@",
        "sip:@example.com",
        "sip:alice:secret@example.com",
        "sip:al ice@example.com",
        "sip:álice@example.com",
        "tel:+86-138-0013-8000",
        "tel:+",
        "tel:+86a",
        "tel:12345;phone-context=example.com",
        "tel:+8613800138000;npdi",
        "mailto:alice@example.com",
        "",
    ];
    for s in inputs {
        assert_eq!(
            Impu::normalize(s),
            Impu::parse(s).map(|i| i.as_str().to_owned()),
            "{s:?}"
        );
    }
    let label63 = "a".repeat(63);
    let label64 = "a".repeat(64);
    for host in [label63, label64] {
        let s = format!("sip:u@{host}.org");
        assert_eq!(
            Impu::normalize(&s),
            Impu::parse(&s).map(|i| i.as_str().to_owned())
        );
    }
}

#[test]
fn impi_parse_reads_the_usual_3gpp_forms_in_one_pass_exactly_as_in_full() {
    let usual = [
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.mnc001.mcc460.3gppnetwork.org",
        "310150123456789@ims.sic002.mnc150.mcc310.3gppnetwork.org",
        "001010000000001@ims.sic999.mnc001.mcc001.3gppnetwork.org",
        "001010@ims.mnc001.mcc001.3gppnetwork.org",
    ];
    let near_misses = [
        "460011100612345@IMS.sic001.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic01.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic0011.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc002.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc001.mcc461.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc01.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org.",
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.or",
        "460011100612345@ims.sic001.sic002.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@sic001.ims.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org@x",
        "46001110061234a@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "4600111006123456@ims.sic001.mnc001.mcc460.3gppnetwork.org",
        "46001@ims.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sicabc.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org ",
        "460011100612345@ims.sic001.example.com",
        "alice@ims.mnc001.mcc460.3gppnetwork.org",
        "@ims.mnc001.mcc460.3gppnetwork.org",
        "460011100612345@",
        "",
    ];
    for s in usual {
        let fast = Impi::parse_3gpp(s).unwrap_or_else(|| panic!("{s} is a usual form"));
        assert_eq!(fast.kind(), Impi::parse(s).unwrap().kind(), "{s}");
        assert_eq!(fast.as_str(), s);
    }
    // Nothing the one pass declines is lost: the full parse decides those, and whatever the
    // one pass accepts is what the full parse gives.
    for s in near_misses.iter().chain(&usual) {
        if let Some(fast) = Impi::parse_3gpp(s) {
            assert!(usual.contains(s), "{s} should be left to the full parse");
            assert_eq!(Ok(fast), Impi::parse_full(s), "{s}");
        }
    }
    for s in near_misses {
        assert_eq!(Impi::parse(s), Impi::parse_full(s), "{s}");
    }
}

#[test]
fn imsis_and_sics_held_inline_compare_sort_and_print_as_their_digits_do() {
    let texts = [
        "460011100612345",
        "46001110061234",
        "460011100612346",
        "001010000000000",
        "999999",
        "9999990",
        "100000",
        "46001",
    ];
    let mut as_text: Vec<&str> = texts.iter().copied().filter(|t| t.len() >= 6).collect();
    let mut parsed: Vec<Imsi> = as_text.iter().map(|t| Imsi::parse(t).unwrap()).collect();
    as_text.sort_unstable();
    parsed.sort_unstable();
    let back: Vec<&str> = parsed.iter().map(Imsi::as_str).collect();
    assert_eq!(back, as_text);
    let imsi = Imsi::parse("460011100612345").unwrap();
    assert_eq!(format!("{imsi:?}"), "Imsi(\"460011100612345\")");
    assert_eq!(
        (imsi.mcc(), imsi.to_string().as_str()),
        ("460", "460011100612345")
    );
    assert!(Imsi::parse("46001").is_err() && Imsi::parse("4600111006123456").is_err());
    let (a, b) = (Sic::parse("001").unwrap(), Sic::parse("010").unwrap());
    assert!(a < b && a.as_str() == "001" && format!("{b:?}") == "Sic(\"010\")");
}
