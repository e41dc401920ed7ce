//! The IMS subscription XML carried in the Cx User-Data AVP of SAA and PPR
//! (TS 29.228 Annex E, `CxDataType_Rel7.xsd`; cx-spec §5).
//!
//! One document describes one service of a subscriber: its private identity, one
//! ServiceProfile holding the service's implicit registration set (every public identity
//! of the service), the CoreNetworkServicesAuthorization and the initial filter criteria.
//!
//! The output is shaped for Kamailio's `userdata_parser` (kamailio.md §4.5), which keeps
//! trailing white space of text values: the document is UTF-8, starts with the XML
//! declaration, and the rest is a single line with no white space between elements and no
//! leading or trailing white space in any text value. Elements follow the order of the
//! XSD's `xs:sequence`s, since the S-CSCF may validate against the Rel-7 schema.
//!
//! Pure: no IO, no clock. Must not depend on sled, tokio, the codec or the server; it only
//! reads the store's domain model.

use std::fmt::Display;

use crate::store::model::{
    ApplicationServer, InitialFilterCriteria, Service, ServiceProfile, Spt, TriggerPoint,
};

/// The XML declaration that starts every document.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// One public identity to list, with its barring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentityEntry<'a> {
    /// The SIP or tel URI, as stored (normalised).
    pub identity: &'a str,
    /// Whether the identity is barred (BarringIndication = 1).
    pub barred: bool,
}

/// Builds the IMSSubscription document for one service's IMPI.
///
/// PrivateID is `impi`; one ServiceProfile holds every public identity of the service (the
/// implicit registration set), each with `BarringIndication` 1 when it is listed in the
/// profile's `barred_impus` (and no BarringIndication otherwise; tel: URIs get nothing
/// special). The identity being registered (`first`) is listed first, then the rest in the
/// service's order (see [`public_identities`]). CoreNetworkServicesAuthorization is present
/// when the profile has a `media_profile_id`; the initial filter criteria follow in
/// priority order (see [`subscription_xml_for`] for the rules on malformed criteria).
///
/// The result is schema-valid only if the service has at least one public identity; the
/// Cx layer never asks for a service without one.
pub fn subscription_xml(impi: &str, service: &Service, first: Option<&str>) -> String {
    let identities = public_identities(service, first);
    subscription_xml_for(impi, &identities, &service.profile)
}

/// The public identities of `service` in document order, with their barring.
///
/// `first` (the identity being registered) comes first when the service lists it (exact
/// match on the normalised form); an identity the service does not list is never added,
/// so `first` then only has no effect. The rest follow in the service's order; duplicates
/// are listed once.
pub fn public_identities<'a>(
    service: &'a Service,
    first: Option<&str>,
) -> Vec<PublicIdentityEntry<'a>> {
    let barred = &service.profile.barred_impus;
    let entry = |identity: &'a String| PublicIdentityEntry {
        identity: identity.as_str(),
        barred: barred.iter().any(|b| b == identity),
    };
    let mut out: Vec<PublicIdentityEntry<'a>> = Vec::with_capacity(service.impus.len());
    if let Some(first) = first {
        if let Some(id) = service.impus.iter().find(|i| i.as_str() == first) {
            out.push(entry(id));
        }
    }
    for id in &service.impus {
        if !out.iter().any(|e| e.identity == id.as_str()) {
            out.push(entry(id));
        }
    }
    out
}

/// Builds the IMSSubscription document from its parts: `impi`, the public identities in
/// the order to list them, and the service profile (media profile and iFCs).
///
/// Initial filter criteria are sorted by priority (stable: equal priorities keep the
/// provisioned order). Values are written as provisioned (range checks belong to
/// provisioning), with these repairs so that the document stays well-formed and matches
/// the schema's structure:
/// - an SPT with several conditions keeps only the first in the XSD's choice order
///   (RequestURI, Method, SIPHeader, SessionCase, SessionDescription);
/// - an SPT with no condition is left out, and an iFC whose trigger point is left with no
///   SPT is left out entirely (rather than becoming unconditional);
/// - an SPT with no group is written with Group 0;
/// - text values lose leading and trailing white space and characters XML 1.0 cannot carry.
pub fn subscription_xml_for(
    impi: &str,
    identities: &[PublicIdentityEntry<'_>],
    profile: &ServiceProfile,
) -> String {
    let mut x = Xml::new();
    x.open("IMSSubscription");
    x.text("PrivateID", impi);
    x.open("ServiceProfile");
    for id in identities {
        x.open("PublicIdentity");
        if id.barred {
            x.flag("BarringIndication", true);
        }
        x.text("Identity", id.identity);
        x.close("PublicIdentity");
    }
    if let Some(media) = profile.media_profile_id {
        x.open("CoreNetworkServicesAuthorization");
        x.num("SubscribedMediaProfileId", media);
        x.close("CoreNetworkServicesAuthorization");
    }
    let mut ifcs: Vec<&InitialFilterCriteria> = profile.ifcs.iter().collect();
    ifcs.sort_by_key(|ifc| ifc.priority);
    for ifc in ifcs {
        write_ifc(&mut x, ifc);
    }
    x.close("ServiceProfile");
    x.close("IMSSubscription");
    x.finish()
}

/// XML-escapes a text value: `&`, `<`, `>`, `"` and `'` become entity references, CR
/// becomes `&#13;` (so parsers do not fold it), and characters XML 1.0 cannot carry at all
/// (most C0 controls, U+FFFE, U+FFFF) are dropped. Nothing is trimmed.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    // Runs of octets that go out as they are, copied whole; the rest char by char.
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| !plain_octet(b)) {
        out.push_str(&rest[..i]);
        // `i` starts a char: an ASCII octet, or 0xEF, which only ever leads one.
        let Some(c) = rest[i..].chars().next() else {
            return;
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
        rest = &rest[i + c.len_utf8()..];
    }
    out.push_str(rest);
}

/// An octet of UTF-8 text that goes out as it is: part of an XML `Char` ([`xml_octet`])
/// and neither markup nor a carriage return, which are escaped.
fn plain_octet(b: u8) -> bool {
    xml_octet(b) && !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'\r')
}

/// An octet of UTF-8 text that belongs to an XML `Char`, whatever follows it (0xEF leads
/// the encodings of U+FFFE and U+FFFF, and of other chars, which then take the slow way).
fn xml_octet(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\r') || (b >= 0x20 && b != 0xEF)
}

/// XML 1.0 `Char` (Rust chars are never surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// One condition of an SPT: the XSD's choice.
enum Condition<'a> {
    RequestUri(&'a str),
    Method(&'a str),
    SipHeader(&'a str, Option<&'a str>),
    SessionCase(u8),
    SessionDescription(&'a str, Option<&'a str>),
}

/// The condition to write for `spt`: the first set, in the XSD's choice order.
fn condition(spt: &Spt) -> Option<Condition<'_>> {
    if let Some(uri) = &spt.request_uri {
        return Some(Condition::RequestUri(uri));
    }
    if let Some(method) = &spt.method {
        return Some(Condition::Method(method));
    }
    if let Some((header, content)) = &spt.sip_header {
        return Some(Condition::SipHeader(header, content.as_deref()));
    }
    if let Some(case) = spt.session_case {
        return Some(Condition::SessionCase(case));
    }
    if let Some((line, content)) = &spt.session_description {
        return Some(Condition::SessionDescription(line, content.as_deref()));
    }
    None
}

/// InitialFilterCriteria: Priority, TriggerPoint?, ApplicationServer, ProfilePartIndicator?.
fn write_ifc(x: &mut Xml, ifc: &InitialFilterCriteria) {
    let spts: Option<Vec<(&Spt, Condition<'_>)>> = match &ifc.trigger {
        None => None,
        Some(tp) => {
            let spts: Vec<_> = tp
                .spts
                .iter()
                .filter_map(|s| condition(s).map(|c| (s, c)))
                .collect();
            if spts.is_empty() {
                return; // never turn a conditional iFC into an unconditional one
            }
            Some(spts)
        }
    };
    x.open("InitialFilterCriteria");
    x.num("Priority", ifc.priority);
    if let (Some(tp), Some(spts)) = (&ifc.trigger, spts) {
        write_trigger(x, tp, &spts);
    }
    write_application_server(x, &ifc.application_server);
    if let Some(ppi) = ifc.profile_part_indicator {
        x.num("ProfilePartIndicator", ppi);
    }
    x.close("InitialFilterCriteria");
}

/// TriggerPoint: ConditionTypeCNF, SPT+.
fn write_trigger(x: &mut Xml, tp: &TriggerPoint, spts: &[(&Spt, Condition<'_>)]) {
    x.open("TriggerPoint");
    x.flag("ConditionTypeCNF", tp.cnf);
    for (spt, cond) in spts {
        // SPT: ConditionNegated?, Group+, choice, Extension? (RegistrationType: not modelled).
        x.open("SPT");
        x.flag("ConditionNegated", spt.negated);
        if spt.group.is_empty() {
            x.num("Group", 0u32);
        }
        for group in &spt.group {
            x.num("Group", group);
        }
        match cond {
            Condition::RequestUri(uri) => x.text("RequestURI", uri),
            Condition::Method(method) => x.text("Method", method),
            Condition::SipHeader(header, content) => {
                x.open("SIPHeader");
                x.text("Header", header);
                if let Some(content) = content {
                    x.text("Content", content);
                }
                x.close("SIPHeader");
            }
            Condition::SessionCase(case) => x.num("SessionCase", case),
            Condition::SessionDescription(line, content) => {
                x.open("SessionDescription");
                x.text("Line", line);
                if let Some(content) = content {
                    x.text("Content", content);
                }
                x.close("SessionDescription");
            }
        }
        x.close("SPT");
    }
    x.close("TriggerPoint");
}

/// ApplicationServer: ServerName, DefaultHandling?, ServiceInfo?.
fn write_application_server(x: &mut Xml, server: &ApplicationServer) {
    x.open("ApplicationServer");
    x.text("ServerName", &server.server_name);
    x.num("DefaultHandling", server.default_handling);
    if let Some(info) = &server.service_info {
        x.text("ServiceInfo", info);
    }
    x.close("ApplicationServer");
}

/// A minimal writer: no indentation, no white space between elements.
struct Xml {
    out: String,
}

impl Xml {
    fn new() -> Self {
        let mut out = String::with_capacity(1024);
        out.push_str(XML_DECLARATION);
        out.push('\n');
        Self { out }
    }

    fn open(&mut self, tag: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
    }

    fn close(&mut self, tag: &str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// A text element: the value without characters XML cannot carry, trimmed, escaped.
    fn text(&mut self, tag: &str, value: &str) {
        // Usually every char is one XML can carry, and the value is used as it is.
        let clean: std::borrow::Cow<'_, str> = if value.bytes().all(xml_octet) {
            value.into()
        } else {
            value
                .chars()
                .filter(|&c| is_xml_char(c))
                .collect::<String>()
                .into()
        };
        self.open(tag);
        escape_into(&mut self.out, clean.trim());
        self.close(tag);
    }

    fn num(&mut self, tag: &str, value: impl Display) {
        self.open(tag);
        self.out.push_str(&value.to_string());
        self.close(tag);
    }

    /// A tBool element, written as 0 or 1.
    fn flag(&mut self, tag: &str, value: bool) {
        self.num(tag, u8::from(value));
    }

    fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    fn service(impi: &str, impus: &[&str], profile: ServiceProfile) -> Service {
        Service {
            name: "VoLTE".into(),
            impi: impi.into(),
            impus: impus.iter().map(|s| s.to_string()).collect(),
            profile,
            registrations: BTreeMap::new(),
            auth_pending: None,
        }
    }

    fn spt(group: u32) -> Spt {
        Spt {
            group: vec![group],
            ..Spt::default()
        }
    }

    fn ifc(priority: u32, server: &str, trigger: Option<TriggerPoint>) -> InitialFilterCriteria {
        InitialFilterCriteria {
            priority,
            trigger,
            application_server: ApplicationServer {
                server_name: server.into(),
                default_handling: 0,
                service_info: None,
            },
            profile_part_indicator: None,
        }
    }

    /// Removes the white space between elements (and around the declaration) of a
    /// pretty-printed example, keeping text values as they are.
    fn compact(pretty: &str) -> String {
        let mut out = String::new();
        for line in pretty.lines() {
            let line = line.trim();
            if line.starts_with("<?xml") {
                out.push_str(line);
                out.push('\n');
            } else {
                out.push_str(line);
            }
        }
        out
    }

    /// The text values of a generated document (after the declaration line), in order.
    fn text_values(doc: &str) -> Vec<&str> {
        let body = doc.strip_prefix(XML_DECLARATION).unwrap_or(doc);
        let body = body.strip_prefix('\n').unwrap_or(body);
        body.split('<')
            .skip(1)
            .filter_map(|piece| piece.split_once('>').map(|(_, text)| text))
            .filter(|text| !text.is_empty())
            .collect()
    }

    const MINIMAL_IMPI: &str = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
    const MINIMAL_IMPU: &str = "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org";

    fn minimal() -> String {
        let s = service(MINIMAL_IMPI, &[MINIMAL_IMPU], ServiceProfile::default());
        subscription_xml(MINIMAL_IMPI, &s, None)
    }

    const PATENT_IMPI: &str = "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org";
    const PATENT_SIP: &str = "sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org";
    const PATENT_TEL: &str = "tel:+8618612345678";
    const PATENT_TAS: &str = "sip:tas.ims.mnc001.mcc460.3gppnetwork.org:5060";

    fn patent_service() -> Service {
        let trigger = TriggerPoint {
            cnf: false,
            spts: vec![
                Spt {
                    method: Some("INVITE".into()),
                    ..spt(0)
                },
                Spt {
                    session_case: Some(0),
                    ..spt(0)
                },
            ],
        };
        let profile = ServiceProfile {
            ifcs: vec![ifc(0, PATENT_TAS, Some(trigger))],
            media_profile_id: Some(0),
            barred_impus: vec![],
        };
        service(PATENT_IMPI, &[PATENT_SIP, PATENT_TEL], profile)
    }

    fn patent() -> String {
        subscription_xml(PATENT_IMPI, &patent_service(), Some(PATENT_SIP))
    }

    /// Every SPT kind, CNF, negation, several groups, ProfilePartIndicator, ServiceInfo,
    /// DefaultHandling 1, a barred identity and an unconditional iFC.
    fn every_spt_kind() -> String {
        let trigger = TriggerPoint {
            cnf: true,
            spts: vec![
                Spt {
                    request_uri: Some("sip:voicemail@example.com".into()),
                    ..spt(0)
                },
                Spt {
                    negated: true,
                    group: vec![0, 1],
                    method: Some("MESSAGE".into()),
                    ..Spt::default()
                },
                Spt {
                    sip_header: Some(("Accept-Contact".into(), Some(".*mmtel.*".into()))),
                    ..spt(1)
                },
                Spt {
                    sip_header: Some(("P-Asserted-Identity".into(), None)),
                    ..spt(1)
                },
                Spt {
                    session_case: Some(3),
                    ..spt(2)
                },
                Spt {
                    session_description: Some(("m".into(), Some("audio".into()))),
                    ..spt(2)
                },
                Spt {
                    session_description: Some(("c".into(), None)),
                    ..spt(2)
                },
            ],
        };
        let mut conditional = ifc(10, "sip:as1.example.com", Some(trigger));
        conditional.profile_part_indicator = Some(1);
        conditional.application_server.default_handling = 1;
        conditional.application_server.service_info = Some("mmtel service".into());
        let mut unconditional = ifc(20, "sip:as2.example.com;transport=tcp", None);
        unconditional.profile_part_indicator = Some(0);
        let profile = ServiceProfile {
            ifcs: vec![unconditional, conditional],
            media_profile_id: Some(7),
            barred_impus: vec!["sip:barred@example.com".into()],
        };
        let s = service(
            "user@example.com",
            &[
                "sip:user@example.com",
                "sip:barred@example.com",
                "tel:+15551230001",
            ],
            profile,
        );
        subscription_xml("user@example.com", &s, Some("sip:user@example.com"))
    }

    fn needs_escaping() -> String {
        let trigger = TriggerPoint {
            cnf: false,
            spts: vec![Spt {
                sip_header: Some(("Subject".into(), Some("<a & \"b\" 'c'>".into()))),
                ..spt(0)
            }],
        };
        let mut i = ifc(0, "sip:as.example.com;x=a&b", Some(trigger));
        i.application_server.service_info = Some("<info attr=\"1\">R&D's</info>".into());
        let profile = ServiceProfile {
            ifcs: vec![i],
            ..ServiceProfile::default()
        };
        let s = service(
            "o'brien@example.com",
            &["sip:o'brien&co@example.com"],
            profile,
        );
        subscription_xml("o'brien@example.com", &s, None)
    }

    #[test]
    fn generates_minimal_document_matching_spec_example() {
        let spec = r#"<?xml version="1.0" encoding="UTF-8"?>
<IMSSubscription>
  <PrivateID>001010000000001@ims.mnc001.mcc001.3gppnetwork.org</PrivateID>
  <ServiceProfile>
    <PublicIdentity>
      <Identity>sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org</Identity>
    </PublicIdentity>
  </ServiceProfile>
</IMSSubscription>"#;
        assert_eq!(minimal(), compact(spec));
    }

    #[test]
    fn generates_patent_example_exactly() {
        let expected = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n<IMSSubscription>",
            "<PrivateID>460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org</PrivateID>",
            "<ServiceProfile>",
            "<PublicIdentity><Identity>sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org</Identity></PublicIdentity>",
            "<PublicIdentity><Identity>tel:+8618612345678</Identity></PublicIdentity>",
            "<CoreNetworkServicesAuthorization><SubscribedMediaProfileId>0</SubscribedMediaProfileId></CoreNetworkServicesAuthorization>",
            "<InitialFilterCriteria><Priority>0</Priority>",
            "<TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF>",
            "<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT>",
            "<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><SessionCase>0</SessionCase></SPT>",
            "</TriggerPoint>",
            "<ApplicationServer><ServerName>sip:tas.ims.mnc001.mcc460.3gppnetwork.org:5060</ServerName>",
            "<DefaultHandling>0</DefaultHandling></ApplicationServer>",
            "</InitialFilterCriteria></ServiceProfile></IMSSubscription>",
        );
        assert_eq!(patent(), expected);
    }

    #[test]
    fn lists_registered_identity_first() {
        let s = patent_service();
        let ids = |first| {
            public_identities(&s, first)
                .iter()
                .map(|e| e.identity)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(None), [PATENT_SIP, PATENT_TEL]);
        assert_eq!(ids(Some(PATENT_SIP)), [PATENT_SIP, PATENT_TEL]);
        assert_eq!(ids(Some(PATENT_TEL)), [PATENT_TEL, PATENT_SIP]);
        // An identity the service does not list is never added.
        assert_eq!(ids(Some("sip:other@example.com")), [PATENT_SIP, PATENT_TEL]);

        let doc = subscription_xml(PATENT_IMPI, &s, Some(PATENT_TEL));
        let tel = doc.find(PATENT_TEL).expect("tel listed");
        let sip = doc
            .find(&format!("<Identity>{PATENT_SIP}"))
            .expect("sip listed");
        assert!(tel < sip, "{doc}");
        assert_eq!(doc.matches("<PublicIdentity>").count(), 2);
    }

    #[test]
    fn marks_barred_identities() {
        let mut s = patent_service();
        s.profile.barred_impus = vec![PATENT_TEL.into()];
        let doc = subscription_xml(PATENT_IMPI, &s, None);
        assert!(doc.contains(&format!(
            "<PublicIdentity><BarringIndication>1</BarringIndication><Identity>{PATENT_TEL}</Identity></PublicIdentity>"
        )));
        assert!(doc.contains(&format!(
            "<PublicIdentity><Identity>{PATENT_SIP}</Identity></PublicIdentity>"
        )));
        assert_eq!(doc.matches("<BarringIndication>").count(), 1);
        let entries = public_identities(&s, None);
        assert_eq!(
            entries,
            [
                PublicIdentityEntry {
                    identity: PATENT_SIP,
                    barred: false
                },
                PublicIdentityEntry {
                    identity: PATENT_TEL,
                    barred: true
                },
            ]
        );
    }

    #[test]
    fn escapes_text_values() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(escape("a\r\nb\u{1}c\u{FFFF}"), "a&#13;\nbc");
        assert_eq!(escape("sip:ü@例.com"), "sip:ü@例.com");

        let doc = needs_escaping();
        assert!(doc.contains("<PrivateID>o&apos;brien@example.com</PrivateID>"));
        assert!(doc.contains("<Identity>sip:o&apos;brien&amp;co@example.com</Identity>"));
        assert!(doc.contains("<Content>&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;</Content>"));
        assert!(doc.contains("<ServerName>sip:as.example.com;x=a&amp;b</ServerName>"));
        assert!(doc.contains(
            "<ServiceInfo>&lt;info attr=&quot;1&quot;&gt;R&amp;D&apos;s&lt;/info&gt;</ServiceInfo>"
        ));
        // No raw markup characters survive in any text value.
        for text in text_values(&doc) {
            assert!(!text.contains(['<', '>', '"', '\'']), "{text:?}");
            assert!(
                !text
                    .replace("&amp;", "")
                    .replace("&lt;", "")
                    .replace("&gt;", "")
                    .replace("&quot;", "")
                    .replace("&apos;", "")
                    .contains('&'),
                "{text:?}"
            );
        }
    }

    #[test]
    fn escaping_by_runs_gives_what_char_by_char_escaping_gave() {
        fn by_chars(s: &str) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&apos;"),
                    '\r' => out.push_str("&#13;"),
                    c if is_xml_char(c) => out.push(c),
                    _ => {}
                }
            }
            out
        }
        // 0xEF leads U+FFFE and U+FFFF (dropped) and U+F000 or U+FEFF (kept).
        let pieces = [
            "",
            "a",
            "&",
            "<>",
            "\"'",
            "\r",
            "\n",
            "\t",
            "\u{1}",
            "\u{1f}",
            " ",
            "ü",
            "例",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{F000}",
            "\u{FEFF}",
            "\u{10000}",
            "\u{7f}",
            "sip:x@y",
        ];
        let mut n = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}");
                    assert_eq!(escape(&s), by_chars(&s), "{s:?}");
                    n += 1;
                }
            }
        }
        assert_eq!(n, pieces.len().pow(3));
        // A text value loses what XML cannot carry before it is trimmed, as before.
        let mut x = Xml::new();
        x.text("T", "\u{1} a\u{FFFE} ");
        let mut y = Xml::new();
        y.text("T", "\u{F000} b ");
        assert_eq!(
            (x.finish(), y.finish()),
            (
                format!("{XML_DECLARATION}\n<T>a</T>"),
                format!("{XML_DECLARATION}\n<T>\u{F000} b</T>")
            )
        );
    }

    #[test]
    fn has_no_whitespace_inside_text_values() {
        let trigger = TriggerPoint {
            cnf: false,
            spts: vec![Spt {
                method: Some(" INVITE\n".into()),
                ..spt(0)
            }],
        };
        let mut i = ifc(0, "\tsip:tas.example.com ", Some(trigger));
        i.application_server.service_info = Some("  two words \r\n".into());
        let profile = ServiceProfile {
            ifcs: vec![i],
            ..ServiceProfile::default()
        };
        let s = service(" user@example.com", &["sip:user@example.com \n"], profile);
        let doc = subscription_xml(" user@example.com\n", &s, None);

        let (decl, body) = doc.split_once('\n').expect("declaration line");
        assert_eq!(decl, XML_DECLARATION);
        assert!(
            !body.contains(['\n', '\r']),
            "one line after the declaration"
        );
        assert!(!body.contains("> "), "no white space between elements");
        assert!(!body.contains(" <"), "no white space between elements");
        let texts = text_values(&doc);
        assert!(!texts.is_empty());
        for text in &texts {
            assert_eq!(*text, text.trim(), "white space around a text value");
        }
        assert!(texts.contains(&"user@example.com"));
        assert!(texts.contains(&"sip:user@example.com"));
        assert!(texts.contains(&"INVITE"));
        assert!(texts.contains(&"sip:tas.example.com"));
        assert!(texts.contains(&"two words"), "inner spaces are data");
        for doc in [minimal(), patent(), every_spt_kind(), needs_escaping()] {
            let body = doc.split_once('\n').map(|(_, b)| b).unwrap_or_default();
            assert!(!body.contains(['\n', '\r', '\t']), "{doc}");
            for text in text_values(&doc) {
                assert_eq!(text, text.trim(), "{doc}");
            }
        }
    }

    #[test]
    fn orders_ifcs_by_priority() {
        let profile = ServiceProfile {
            ifcs: vec![
                ifc(30, "sip:c.example.com", None),
                ifc(5, "sip:a.example.com", None),
                ifc(10, "sip:b1.example.com", None),
                ifc(10, "sip:b2.example.com", None),
            ],
            ..ServiceProfile::default()
        };
        let s = service("u@example.com", &["sip:u@example.com"], profile);
        let doc = subscription_xml("u@example.com", &s, None);
        let pos = |needle: &str| doc.find(needle).expect(needle);
        let order = [
            pos("sip:a.example.com"),
            pos("sip:b1.example.com"),
            pos("sip:b2.example.com"),
            pos("sip:c.example.com"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{doc}");
        let priorities: Vec<&str> = doc
            .match_indices("<Priority>")
            .map(|(i, _)| &doc[i + 10..i + 10 + doc[i + 10..].find('<').unwrap_or(0)])
            .collect();
        assert_eq!(priorities, ["5", "10", "10", "30"]);
        // The iFCs come after the identities and the media profile.
        assert!(doc.find("</PublicIdentity>") < doc.find("<InitialFilterCriteria>"));
    }

    #[test]
    fn writes_spt_elements_in_schema_order_and_repairs_malformed_spts() {
        let doc = every_spt_kind();
        assert!(doc.contains(
            "<SPT><ConditionNegated>1</ConditionNegated><Group>0</Group><Group>1</Group><Method>MESSAGE</Method></SPT>"
        ));
        assert!(doc.contains(
            "<SIPHeader><Header>Accept-Contact</Header><Content>.*mmtel.*</Content></SIPHeader>"
        ));
        assert!(doc.contains("<SIPHeader><Header>P-Asserted-Identity</Header></SIPHeader>"));
        assert!(doc.contains(
            "<SessionDescription><Line>m</Line><Content>audio</Content></SessionDescription>"
        ));
        assert!(doc.contains(
            "</ApplicationServer><ProfilePartIndicator>1</ProfilePartIndicator></InitialFilterCriteria>"
        ));
        assert!(doc.contains(
            "<ServerName>sip:as1.example.com</ServerName><DefaultHandling>1</DefaultHandling><ServiceInfo>mmtel service</ServiceInfo>"
        ));
        // The unconditional iFC has no TriggerPoint.
        assert!(doc.contains("<Priority>20</Priority><ApplicationServer>"));

        // Several conditions: the first in choice order; no group: Group 0;
        // no condition at all: the SPT goes, and an iFC left without SPTs goes too.
        let trigger = TriggerPoint {
            cnf: false,
            spts: vec![
                Spt {
                    group: vec![],
                    method: Some("INVITE".into()),
                    session_case: Some(1),
                    ..Spt::default()
                },
                spt(3),
            ],
        };
        let empty = TriggerPoint {
            cnf: false,
            spts: vec![spt(0)],
        };
        let profile = ServiceProfile {
            ifcs: vec![
                ifc(0, "sip:kept.example.com", Some(trigger)),
                ifc(1, "sip:dropped.example.com", Some(empty)),
            ],
            ..ServiceProfile::default()
        };
        let s = service("u@example.com", &["sip:u@example.com"], profile);
        let doc = subscription_xml("u@example.com", &s, None);
        assert!(doc.contains(
            "<TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint>"
        ), "{doc}");
        assert!(!doc.contains("dropped"), "{doc}");
        assert_eq!(doc.matches("<InitialFilterCriteria>").count(), 1);
    }

    fn schema_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas/CxDataType_Rel7.xsd")
    }

    #[test]
    fn validates_against_rel7_schema() {
        let schema = schema_path();
        if !schema.exists() {
            eprintln!(
                "SKIPPED validates_against_rel7_schema: schema not found at {}",
                schema.display()
            );
            return;
        }
        match Command::new("xmllint").arg("--version").output() {
            Ok(_) => {}
            Err(e) => panic!(
                "xmllint is not installed ({e}); install it with `apt-get install -y libxml2-utils`"
            ),
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let docs = [
            ("minimal", minimal()),
            ("patent", patent()),
            ("every_spt_kind", every_spt_kind()),
            ("needs_escaping", needs_escaping()),
        ];
        let mut failures = Vec::new();
        for (name, doc) in &docs {
            let file = dir.path().join(format!("{name}.xml"));
            std::fs::write(&file, doc).expect("write temp file");
            let out = Command::new("xmllint")
                .arg("--noout")
                .arg("--schema")
                .arg(&schema)
                .arg(&file)
                .output()
                .expect("run xmllint");
            if !out.status.success() {
                failures.push(format!(
                    "{name}: {}\n{}\n{doc}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
