//! Cx requests as Kamailio's I-CSCF and S-CSCF send them (TS 29.229 §6.1; kamailio.md §4):
//! the client side of UAR, MAR, SAR and LIR, for tests, `sichss bench`-style drivers and
//! replays. Header R+P, application Cx, Session-Id first, then Origin-Host/Realm,
//! Destination-Realm, Vendor-Specific-Application-Id and Auth-Session-State.
//!
//! Pure: builds [`Message`]s, sends nothing.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::codec::{codes, ApplicationId, Avp, CommandCode, Message};

use super::vsai;

/// Builds requests from one CSCF (Origin-Host) to the HSS's realm.
#[derive(Debug)]
pub struct CscfRequests {
    /// Origin-Host of the requests.
    pub origin_host: String,
    /// Origin-Realm and Destination-Realm.
    pub realm: String,
    /// `<origin_host>;<high>;`, the Session-Id before its counter (RFC 6733 §8.8).
    session_prefix: String,
    next: AtomicU32,
}

/// Appends `n` in decimal.
fn push_decimal(s: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[start..].iter().map(|&d| char::from(d)));
}

impl CscfRequests {
    /// A builder for the CSCF `origin_host` in `realm`; its Session-Ids are
    /// `<origin_host>;<process id>;<n>`.
    pub fn new(origin_host: impl Into<String>, realm: impl Into<String>) -> Self {
        Self::with_session_high(origin_host, realm, u64::from(std::process::id()))
    }

    /// Like [`CscfRequests::new`], with Session-Ids `<origin_host>;<high>;<n>`: builders
    /// of one process that share an Origin-Host keep their Session-Ids apart with
    /// distinct `high`s (the bench's lanes on one connection).
    pub fn with_session_high(
        origin_host: impl Into<String>,
        realm: impl Into<String>,
        high: u64,
    ) -> Self {
        let origin_host = origin_host.into();
        CscfRequests {
            session_prefix: format!("{origin_host};{high};"),
            origin_host,
            realm: realm.into(),
            next: AtomicU32::new(1),
        }
    }

    /// The common part: header (fresh hop-by-hop and end-to-end ids), Session-Id,
    /// Origin-Host/Realm, Destination-Realm, VSAI and Auth-Session-State.
    pub fn base(&self, cmd: CommandCode) -> Message {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // The prefix and the counter's digits, without the formatting machinery (a third
        // of this function's instructions under callgrind).
        let mut session_id = String::with_capacity(self.session_prefix.len() + 10);
        session_id.push_str(&self.session_prefix);
        push_decimal(&mut session_id, id);
        Message::request(cmd, ApplicationId::CX, true, id, id.wrapping_mul(7919))
            .with(Avp::utf8(codes::SESSION_ID, session_id))
            .with(Avp::identity(codes::ORIGIN_HOST, &self.origin_host))
            .with(Avp::identity(codes::ORIGIN_REALM, &self.realm))
            .with(Avp::identity(codes::DESTINATION_REALM, &self.realm))
            .with(vsai())
            .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    }

    /// UAR (I-CSCF) from the HSS's own realm: User-Authorization-Type only when not
    /// REGISTRATION (0), as Kamailio.
    pub fn uar(&self, impi: &str, impu: &str, uat: u32) -> Message {
        self.uar_visited(impi, impu, uat, &self.realm)
    }

    /// UAR (I-CSCF) with this Visited-Network-Identifier.
    pub fn uar_visited(&self, impi: &str, impu: &str, uat: u32, visited: &str) -> Message {
        let mut m = self
            .base(CommandCode::USER_AUTHORIZATION)
            .with(Avp::utf8(codes::USER_NAME, impi))
            .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
            .with(Avp::octets(
                codes::VISITED_NETWORK_IDENTIFIER,
                visited.as_bytes().to_vec(),
            ));
        if uat != 0 {
            m.push(Avp::enumerated(codes::USER_AUTHORIZATION_TYPE, uat as i32));
        }
        m
    }

    /// MAR (S-CSCF) for `n` items of `scheme`, with SIP-Authorization (RAND‖AUTS) on resync.
    pub fn mar(
        &self,
        impi: &str,
        impu: &str,
        server_name: &str,
        scheme: &str,
        n: u32,
        authorization: Option<Vec<u8>>,
    ) -> Message {
        let mut item = vec![Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, scheme)];
        if let Some(a) = authorization {
            item.push(Avp::octets(codes::SIP_AUTHORIZATION, a));
        }
        self.base(CommandCode::MULTIMEDIA_AUTH)
            .with(Avp::utf8(codes::USER_NAME, impi))
            .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
            .with(Avp::u32(codes::SIP_NUMBER_AUTH_ITEMS, n))
            .with(Avp::grouped(codes::SIP_AUTH_DATA_ITEM, item))
            .with(Avp::utf8(codes::SERVER_NAME, server_name))
    }

    /// SAR (S-CSCF) with this Server-Assignment-Type and User-Data-Already-Available.
    pub fn sar(
        &self,
        impi: Option<&str>,
        impus: &[&str],
        server_name: &str,
        sat: i32,
        udaa: i32,
    ) -> Message {
        let mut m = self.base(CommandCode::SERVER_ASSIGNMENT);
        for i in impus {
            m.push(Avp::utf8(codes::PUBLIC_IDENTITY, *i));
        }
        m.push(Avp::utf8(codes::SERVER_NAME, server_name));
        if let Some(i) = impi {
            m.push(Avp::utf8(codes::USER_NAME, i));
        }
        m.push(Avp::enumerated(codes::SERVER_ASSIGNMENT_TYPE, sat));
        m.push(Avp::enumerated(codes::USER_DATA_ALREADY_AVAILABLE, udaa));
        m
    }

    /// LIR (I-CSCF): only Public-Identity, as Kamailio sends it.
    pub fn lir(&self, impu: &str) -> Message {
        self.base(CommandCode::LOCATION_INFO)
            .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_message, validate};
    use crate::dict::Dictionary;

    #[test]
    fn session_ids_are_the_prefix_and_the_counter_in_decimal() {
        let r = CscfRequests::with_session_high("scscf.example.org", "example.org", 42);
        let sid = |m: &Message| {
            m.find(codes::SESSION_ID)
                .and_then(Avp::as_str)
                .map(str::to_owned)
        };
        assert_eq!(
            sid(&r.base(CommandCode::LOCATION_INFO)).unwrap(),
            "scscf.example.org;42;1"
        );
        assert_eq!(
            sid(&r.base(CommandCode::LOCATION_INFO)).unwrap(),
            "scscf.example.org;42;2"
        );
        for n in [0, 7, 10, 99, 1_000_000, u32::MAX] {
            let mut s = String::from("x;");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x;{n}"));
        }
    }

    #[test]
    fn builds_requests_that_obey_the_cx_grammar() {
        let i = CscfRequests::new("icscf.example.org", "example.org");
        let d = Dictionary::builtin();
        for m in [
            i.uar("a@example.org", "sip:a@example.org", 0),
            i.uar("a@example.org", "sip:a@example.org", 1),
            i.mar(
                "a@example.org",
                "sip:a@example.org",
                "sip:s",
                "Digest-AKAv1-MD5",
                1,
                None,
            ),
            i.sar(Some("a@example.org"), &["sip:a@example.org"], "sip:s", 1, 0),
            i.sar(None, &["sip:a@example.org", "tel:+1"], "sip:s", 5, 0),
            i.lir("tel:+1"),
        ] {
            let d2 = decode_message(&m.encode(), d).unwrap();
            validate(&d2, d).unwrap();
            assert!(d2.header.is_request() && d2.header.is_proxiable());
        }
        let a = i.lir("tel:+1");
        let b = i.lir("tel:+1");
        assert_ne!(a.header.hop_by_hop, b.header.hop_by_hop);
        assert_ne!(a.session_id(), b.session_id());
    }
}
