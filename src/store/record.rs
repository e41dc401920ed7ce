//! The bytes of one subscriber record in the sled store's values and its journal.
//!
//! Layout 5 writes a record as MessagePack with named fields (`rmp_serde::to_vec_named`):
//! the serde form of [`Subscriber`], so the same fields, defaults and optional parts as the
//! JSON of the export format, without JSON's escaping of every string. Encoding it costs
//! about a sixth of the JSON (a MAR's record: ~22,000 instructions as JSON), which every
//! Cx write paid on its request task.
//!
//! Layouts 1–4 wrote JSON, which starts with `{`; MessagePack's map of named fields starts
//! with `0x80`–`0x8f`, `0xde` or `0xdf`. [`decode`] tells them apart by that first octet, so
//! older records and journal entries read as they are and are rewritten as MessagePack
//! when next changed.

use super::Subscriber;

/// The record's bytes as layout 5 writes them.
pub(crate) fn encode(sub: &Subscriber) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(sub).map_err(|e| e.to_string())
}

/// A record from its bytes: MessagePack, or JSON (layouts 1–4).
pub(crate) fn decode(bytes: &[u8]) -> Result<Subscriber, String> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| format!("bad JSON: {e}")),
        Some(_) => rmp_serde::from_slice(bytes).map_err(|e| format!("bad MessagePack: {e}")),
        None => Err("the record is empty".to_owned()),
    }
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
                            ..Spt::default()
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
        let bare = Subscriber {
            imsi: "001010000000001".into(),
            msisdns: vec![],
            home_domain: "ims.mnc001.mcc001.3gppnetwork.org".into(),
            aka: None,
            digest: None,
            default_scheme: AuthScheme::DigestAkaV1Md5,
            barred: false,
            allowed_visited_networks: vec![],
            services: Default::default(),
        };
        vec![full, bare]
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
}
