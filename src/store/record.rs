//! The bytes of one subscriber record in the sled store's values and its journal.
//!
//! Layout 5 writes a record as MessagePack with named fields, exactly as
//! `rmp_serde::to_vec_named` would: the serde form of [`Subscriber`], so the same fields,
//! defaults and optional parts as the JSON of the export format, without JSON's escaping
//! of every string. It is written by hand ([`encode`]) and read by `rmp_serde`. Every Cx
//! write encodes its whole record on its request task: a MAR's record cost ~22,000
//! instructions as JSON, ~15,000 through `rmp_serde`, and ~4,000 here.
//!
//! Layouts 1–4 wrote JSON, which starts with `{`; MessagePack's map of named fields starts
//! with `0x80`–`0x8f`, `0xde` or `0xdf`. [`decode`] tells them apart by that first octet, so
//! older records and journal entries read as they are and are rewritten as MessagePack
//! when next changed.

use super::{
    AkaCredentials, ApplicationServer, DigestCredentials, InitialFilterCriteria, Registration,
    ScscfAssignment, Service, ServiceProfile, Spt, Subscriber, TriggerPoint,
};

/// The record's bytes as layout 5 writes them: exactly what `rmp_serde::to_vec_named`
/// gives for the record (a test holds them equal), written by hand. The generic writer
/// costs about 100 instructions per string, field names included, and a record has a
/// couple of hundred; written here, a name is one copy of a few constant octets.
pub(crate) fn encode(sub: &Subscriber) -> Result<Vec<u8>, String> {
    // A registered subscriber with two services is ~1.3 KiB: from 1 KiB the buffer grew
    // (a copy and a free) on every Cx write.
    let mut w = Writer(Vec::with_capacity(2048));
    w.subscriber(sub);
    Ok(w.0)
}

/// A MessagePack writer for the record's types, field by field in their serde order, with
/// serde's `skip_serializing_if` rules (an absent optional is left out, and the map is one
/// entry shorter). A field added to the model must be added here too: the tests build
/// their records with every field named (no `..Default::default()`), so that a new field
/// fails to compile there until it is set, and then fails the byte comparison until it is
/// written here.
struct Writer(Vec<u8>);

impl Writer {
    #[inline]
    fn str(&mut self, s: &str) {
        let n = s.len();
        if n < 32 {
            self.0.push(0xa0 | n as u8);
        } else if n < 256 {
            self.0.extend_from_slice(&[0xd9, n as u8]);
        } else if let Ok(n) = u16::try_from(n) {
            self.0.push(0xda);
            self.0.extend_from_slice(&n.to_be_bytes());
        } else {
            self.0.push(0xdb);
            self.0.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.0.extend_from_slice(s.as_bytes());
    }

    fn uint(&mut self, v: u64) {
        if v < 128 {
            self.0.push(v as u8);
        } else if v < 256 {
            self.0.extend_from_slice(&[0xcc, v as u8]);
        } else if let Ok(v) = u16::try_from(v) {
            self.0.push(0xcd);
            self.0.extend_from_slice(&v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.0.push(0xce);
            self.0.extend_from_slice(&v.to_be_bytes());
        } else {
            self.0.push(0xcf);
            self.0.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn bool(&mut self, b: bool) {
        self.0.push(if b { 0xc3 } else { 0xc2 });
    }

    fn nil(&mut self) {
        self.0.push(0xc0);
    }

    fn len(&mut self, n: usize, fix: u8, m16: u8, m32: u8) {
        if n < 16 {
            self.0.push(fix | n as u8);
        } else if let Ok(n) = u16::try_from(n) {
            self.0.push(m16);
            self.0.extend_from_slice(&n.to_be_bytes());
        } else {
            self.0.push(m32);
            self.0.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn map(&mut self, n: usize) {
        self.len(n, 0x80, 0xde, 0xdf);
    }

    fn array(&mut self, n: usize) {
        self.len(n, 0x90, 0xdc, 0xdd);
    }

    fn strings(&mut self, v: &[String]) {
        self.array(v.len());
        for s in v {
            self.str(s);
        }
    }

    /// A field whose value is an optional string: the name and the value when present.
    fn opt_str(&mut self, name: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(name);
            self.str(v);
        }
    }

    fn subscriber(&mut self, s: &Subscriber) {
        self.map(7 + usize::from(s.aka.is_some()) + usize::from(s.digest.is_some()));
        self.str("imsi");
        self.str(&s.imsi);
        self.str("msisdns");
        self.strings(&s.msisdns);
        self.str("home_domain");
        self.str(&s.home_domain);
        if let Some(a) = &s.aka {
            self.str("aka");
            self.aka(a);
        }
        if let Some(d) = &s.digest {
            self.str("digest");
            self.digest(d);
        }
        self.str("default_scheme");
        self.str(s.default_scheme.as_str());
        self.str("barred");
        self.bool(s.barred);
        self.str("allowed_visited_networks");
        self.strings(&s.allowed_visited_networks);
        self.str("services");
        self.map(s.services.len());
        for (sic, svc) in &s.services {
            self.str(sic);
            self.service(svc);
        }
    }

    fn aka(&mut self, a: &AkaCredentials) {
        self.map(3 + usize::from(a.opc.is_some()) + usize::from(a.op.is_some()));
        self.str("k");
        self.str(&a.k.0);
        self.opt_str("opc", a.opc.as_ref().map(|v| v.0.as_str()));
        self.opt_str("op", a.op.as_ref().map(|v| v.0.as_str()));
        self.str("amf");
        self.str(&a.amf);
        self.str("sqn");
        self.uint(a.sqn);
    }

    fn digest(&mut self, d: &DigestCredentials) {
        self.map(1 + usize::from(d.password.is_some()) + usize::from(d.ha1.is_some()));
        self.str("realm");
        self.str(&d.realm);
        self.opt_str("password", d.password.as_ref().map(|v| v.0.as_str()));
        self.opt_str("ha1", d.ha1.as_ref().map(|v| v.0.as_str()));
    }

    fn service(&mut self, s: &Service) {
        self.map(5 + usize::from(s.auth_pending.is_some()));
        self.str("name");
        self.str(&s.name);
        self.str("impi");
        self.str(&s.impi);
        self.str("impus");
        self.strings(&s.impus);
        self.str("profile");
        self.profile(&s.profile);
        self.str("registrations");
        self.map(s.registrations.len());
        for (impu, reg) in &s.registrations {
            self.str(impu);
            self.registration(reg);
        }
        if let Some(a) = &s.auth_pending {
            self.str("auth_pending");
            self.scscf(a);
        }
    }

    fn profile(&mut self, p: &ServiceProfile) {
        self.map(2 + usize::from(p.media_profile_id.is_some()));
        self.str("ifcs");
        self.array(p.ifcs.len());
        for ifc in &p.ifcs {
            self.ifc(ifc);
        }
        if let Some(id) = p.media_profile_id {
            self.str("media_profile_id");
            self.uint(id.into());
        }
        self.str("barred_impus");
        self.strings(&p.barred_impus);
    }

    fn ifc(&mut self, i: &InitialFilterCriteria) {
        self.map(
            2 + usize::from(i.trigger.is_some()) + usize::from(i.profile_part_indicator.is_some()),
        );
        self.str("priority");
        self.uint(i.priority.into());
        if let Some(t) = &i.trigger {
            self.str("trigger");
            self.trigger(t);
        }
        self.str("application_server");
        self.application_server(&i.application_server);
        if let Some(p) = i.profile_part_indicator {
            self.str("profile_part_indicator");
            self.uint(p.into());
        }
    }

    fn trigger(&mut self, t: &TriggerPoint) {
        self.map(2);
        self.str("cnf");
        self.bool(t.cnf);
        self.str("spts");
        self.array(t.spts.len());
        for spt in &t.spts {
            self.spt(spt);
        }
    }

    fn spt(&mut self, s: &Spt) {
        let present = [
            s.request_uri.is_some(),
            s.method.is_some(),
            s.sip_header.is_some(),
            s.session_case.is_some(),
            s.session_description.is_some(),
        ];
        self.map(2 + present.iter().filter(|p| **p).count());
        self.str("negated");
        self.bool(s.negated);
        self.str("group");
        self.array(s.group.len());
        for g in &s.group {
            self.uint((*g).into());
        }
        self.opt_str("request_uri", s.request_uri.as_deref());
        self.opt_str("method", s.method.as_deref());
        if let Some(pair) = &s.sip_header {
            self.str("sip_header");
            self.pair(pair);
        }
        if let Some(c) = s.session_case {
            self.str("session_case");
            self.uint(c.into());
        }
        if let Some(pair) = &s.session_description {
            self.str("session_description");
            self.pair(pair);
        }
    }

    /// A `(String, Option<String>)`: an array of two, the second nil when absent.
    fn pair(&mut self, (a, b): &(String, Option<String>)) {
        self.array(2);
        self.str(a);
        match b {
            Some(b) => self.str(b),
            None => self.nil(),
        }
    }

    fn application_server(&mut self, a: &ApplicationServer) {
        self.map(2 + usize::from(a.service_info.is_some()));
        self.str("server_name");
        self.str(&a.server_name);
        self.str("default_handling");
        self.uint(a.default_handling.into());
        self.opt_str("service_info", a.service_info.as_deref());
    }

    fn registration(&mut self, r: &Registration) {
        self.map(2 + usize::from(r.scscf.is_some()));
        self.str("state");
        self.str(r.state.as_str());
        if let Some(s) = &r.scscf {
            self.str("scscf");
            self.scscf(s);
        }
        self.str("since");
        self.uint(r.since);
    }

    fn scscf(&mut self, s: &ScscfAssignment) {
        self.map(3);
        self.str("server_name");
        self.str(&s.server_name);
        self.str("origin_host");
        self.str(&s.origin_host);
        self.str("origin_realm");
        self.str(&s.origin_realm);
    }
}

/// A record from its bytes: MessagePack, or JSON (layouts 1–4).
pub(crate) fn decode(bytes: &[u8]) -> Result<Subscriber, String> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| format!("bad JSON: {e}")),
        Some(_) => rmp_serde::from_slice(bytes).map_err(|e| format!("bad MessagePack: {e}")),
        None => Err("the record is empty".to_owned()),
    }
}

/// The IMSI of a record as layout 5 writes it (a map whose first entry is `imsi`), read
/// from its first octets without decoding the rest; `None` for anything shaped otherwise
/// (older layouts' JSON, damage), which the caller decodes whole. The journal's replay
/// keeps each subscriber's newest entry by it, and decodes only those.
pub(crate) fn imsi_of(bytes: &[u8]) -> Option<&str> {
    let rest = match *bytes.first()? {
        0x80..=0x8f => &bytes[1..],
        0xde => bytes.get(3..)?,
        0xdf => bytes.get(5..)?,
        _ => return None,
    };
    let rest = rest.strip_prefix(b"\xa4imsi")?;
    let (len, rest) = match *rest.first()? {
        b @ 0xa0..=0xbf => (usize::from(b & 0x1f), &rest[1..]),
        0xd9 => (usize::from(*rest.get(1)?), rest.get(2..)?),
        0xda => (
            usize::from(u16::from_be_bytes(rest.get(1..3)?.try_into().ok()?)),
            rest.get(3..)?,
        ),
        _ => return None,
    };
    std::str::from_utf8(rest.get(..len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        AkaCredentials, ApplicationServer, AuthScheme, DigestCredentials, InitialFilterCriteria,
        Password, RegState, Registration, ScscfAssignment, SecretHex, Service, ServiceProfile,
        Shared, Spt, TriggerPoint,
    };

    /// A record with every optional part set, and one with none.
    fn records() -> Vec<Subscriber> {
        let scscf = Shared::new(ScscfAssignment {
            server_name: "sip:scscf.ims.example:6060".into(),
            origin_host: "scscf.ims.example".into(),
            origin_realm: "ims.example".into(),
        });
        let full_service = Service {
            name: "VoLTE \"quoted\" é".into(),
            impi: "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org".into(),
            impus: vec![
                "sip:+8613800138000@ims.example".into(),
                "tel:+8613800138000".into(),
            ],
            profile: ServiceProfile {
                ifcs: vec![InitialFilterCriteria {
                    priority: 1,
                    trigger: Some(TriggerPoint {
                        cnf: true,
                        spts: vec![Spt {
                            negated: true,
                            group: vec![0, 1],
                            method: Some("INVITE".into()),
                            sip_header: Some(("P-Asserted-Identity".into(), None)),
                            session_case: Some(0),
                            session_description: Some(("m".into(), Some("audio".into()))),
                            request_uri: Some("sip:conf@ims.example".into()),
                        }],
                    }),
                    application_server: ApplicationServer {
                        server_name: "sip:as.example".into(),
                        default_handling: 1,
                        service_info: Some("info".into()),
                    },
                    profile_part_indicator: Some(0),
                }],
                media_profile_id: Some(7),
                barred_impus: vec!["tel:+8613800138000".into()],
            },
            registrations: [(
                "sip:+8613800138000@ims.example".to_owned(),
                Registration {
                    state: RegState::Registered,
                    scscf: Some(scscf.clone()),
                    since: 1_700_000_000_123,
                },
            )]
            .into(),
            auth_pending: Some(scscf),
        };
        let full = Subscriber {
            imsi: "460011100612345".into(),
            msisdns: vec!["+8613800138000".into()],
            home_domain: "ims.mnc001.mcc460.3gppnetwork.org".into(),
            aka: Some(AkaCredentials {
                k: SecretHex("465b5ce8b199b49faa5f0a2ee238a6bc".into()),
                opc: Some(SecretHex("cd63cb71954a9f4e48a5994e37a02baf".into())),
                op: None,
                amf: "8000".into(),
                sqn: u64::from(u32::MAX) << 8,
            }),
            digest: Some(DigestCredentials {
                realm: "ims.example".into(),
                password: Some(Password("secret".into())),
                ha1: None,
            }),
            default_scheme: AuthScheme::SipDigest,
            barred: true,
            allowed_visited_networks: vec!["*".into()],
            services: [("001".to_owned(), Shared::new(full_service))].into(),
        };
        let bare = Subscriber::bare("001010000000001");
        vec![full, bare]
    }

    #[test]
    fn the_written_record_is_exactly_the_serde_form_in_message_pack() {
        let mut all = records();
        // Every optional part absent and present, one at a time, on the full record.
        let full = all[0].clone();
        let mut variants = Vec::new();
        let mut v = full.clone();
        v.aka.as_mut().unwrap().opc = None;
        v.aka.as_mut().unwrap().op = Some(SecretHex("00".repeat(16)));
        v.digest.as_mut().unwrap().password = None;
        v.digest.as_mut().unwrap().ha1 = Some(SecretHex("ab".repeat(16)));
        v.aka.as_mut().unwrap().sqn = 300;
        variants.push(v);
        let mut v = full.clone();
        {
            let svc: &mut Service = v.services.get_mut("001").unwrap();
            svc.auth_pending = None;
            svc.profile.media_profile_id = None;
            let ifc = &mut svc.profile.ifcs[0];
            ifc.profile_part_indicator = None;
            ifc.application_server.service_info = None;
            ifc.application_server.server_name = "s".repeat(40);
            ifc.priority = 70_000;
            let spt = &mut ifc.trigger.as_mut().unwrap().spts[0];
            spt.request_uri = Some("sip:x".into());
            spt.method = None;
            spt.sip_header = Some(("H".into(), Some("v".into())));
            spt.session_case = None;
            spt.session_description = None;
            spt.group = (0..20).collect();
            svc.impus = (0..20).map(|n| format!("sip:+{n}@ims.example")).collect();
            svc.name = "n".repeat(300);
            svc.registrations.values_mut().for_each(|r| r.scscf = None);
        }
        variants.push(v);
        let mut v = full;
        {
            let svc: &mut Service = v.services.get_mut("001").unwrap();
            svc.profile.ifcs[0].trigger = None;
            for (n, state) in [RegState::NotRegistered, RegState::Unregistered]
                .into_iter()
                .enumerate()
            {
                svc.registrations.insert(
                    format!("tel:+{n}"),
                    Registration {
                        state,
                        scscf: None,
                        since: u64::MAX - n as u64,
                    },
                );
            }
        }
        v.msisdns = (0..70_000).map(|n| n.to_string()).take(17).collect();
        v.home_domain = "d".repeat(70_000);
        variants.push(v);
        all.extend(variants);
        for sub in all {
            assert_eq!(
                encode(&sub).unwrap(),
                rmp_serde::to_vec_named(&sub).unwrap(),
                "{}",
                sub.imsi
            );
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        for sub in records() {
            let bytes = encode(&sub).unwrap();
            assert_ne!(bytes[0], b'{');
            assert_eq!(decode(&bytes).unwrap(), sub);
        }
    }

    #[test]
    fn a_json_record_of_an_older_layout_still_reads() {
        for sub in records() {
            let json = serde_json::to_vec(&sub).unwrap();
            assert_eq!(decode(&json).unwrap(), sub);
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let good = encode(&records().remove(0)).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode(&flipped);
            flipped[i] ^= 0xff;
        }
        assert!(decode(b"{\"imsi\":").unwrap_err().contains("JSON"));
        assert!(decode(&[0xc1]).unwrap_err().contains("MessagePack"));
        assert!(decode(&[]).unwrap_err().contains("empty"));
    }

    #[test]
    fn the_imsi_is_read_from_the_first_octets_as_decoding_would_read_it() {
        let mut subs = records();
        // IMSIs that take each of MessagePack's string headers.
        for imsi in [
            "",
            "0".repeat(31).as_str(),
            &"1".repeat(32),
            &"2".repeat(255),
            &"3".repeat(256),
        ] {
            let mut sub = subs[0].clone();
            sub.imsi = imsi.to_owned();
            subs.push(sub);
        }
        for sub in subs {
            let bytes = encode(&sub).unwrap();
            assert_eq!(imsi_of(&bytes), Some(decode(&bytes).unwrap().imsi.as_str()));
            // Cut short, the IMSI is whole or not given at all.
            for cut in 0..bytes.len() {
                let got = imsi_of(&bytes[..cut]);
                assert!(
                    got.is_none() || got == Some(sub.imsi.as_str()),
                    "cut at {cut}"
                );
            }
            // Older layouts' JSON is left to the decoder.
            assert_eq!(imsi_of(&serde_json::to_vec(&sub).unwrap()), None);
        }
        let mut flipped = encode(&records().remove(0)).unwrap();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = imsi_of(&flipped);
            flipped[i] ^= 0xff;
        }
    }
}
