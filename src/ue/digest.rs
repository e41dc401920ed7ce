//! The UE's side of SIP authentication: reading a `WWW-Authenticate` challenge and writing
//! the `Authorization` answer (RFC 3261 §22.4, RFC 2617 §3.2), for Digest-AKAv1-MD5
//! (RFC 3310; TS 33.203 §6.1) and plain MD5 digest, with the USIM's SQN check and AUTS
//! resynchronisation (TS 33.102 §6.3.3, Annex C; RFC 3310 §3.4).
//!
//! ```text
//! AKAv1-MD5   nonce = base64(RAND ‖ AUTN [‖ server data])
//!             AUTN ok, SQN fresh   → response with password = RES (raw octets)
//!             AUTN ok, SQN stale   → response with password = "" and auts="base64(AUTS)"
//!             AUTN bad (MAC-A)     → error, no answer
//! MD5         response with password = the shared secret
//! qop=auth    nc=00000001 for a fresh nonce, cnonce random; no qop: RFC 2069 form
//! ```
//!
//! Pure: no IO except [`Usim::load`]/[`Usim::save`] for the optional SQN file.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::error::UeError;
use super::sip::{quote, AuthParams};
use crate::auth::digest::{ha1_aka, response};
use crate::auth::sqn::{seq, SQN_MAX};
use crate::auth::{ue_check_autn, ue_make_auts, Milenage};

/// Largest step ahead of the USIM's highest SEQ that it accepts (TS 33.102 Annex C.2.2, Δ).
pub const DELTA: u64 = 1 << 28;

/// The digest algorithms this UE answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `AKAv1-MD5` (RFC 3310): password = RES.
    AkaV1Md5,
    /// `MD5` or no algorithm (RFC 2617): password = the shared secret.
    Md5,
}

impl Algorithm {
    /// The token as written in the headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::AkaV1Md5 => "AKAv1-MD5",
            Algorithm::Md5 => "MD5",
        }
    }
}

/// A Digest challenge from `WWW-Authenticate` / `Proxy-Authenticate` (RFC 2617 §3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`, as sent.
    pub nonce: String,
    /// The algorithm asked for.
    pub algorithm: Algorithm,
    /// The `algorithm` parameter as written, to echo it back (None when absent).
    pub algorithm_token: Option<String>,
    /// Whether qop "auth" is to be used (offered by the challenge).
    pub qop_auth: bool,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `stale=true`: the nonce expired, the credentials were right.
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value.
    ///
    /// # Errors
    /// [`UeError::BadChallenge`] when it is not Digest or lacks a nonce,
    /// [`UeError::UnsupportedAlgorithm`] for algorithms other than AKAv1-MD5 and MD5,
    /// [`UeError::UnsupportedQop`] when qop is offered but "auth" is not among it.
    pub fn parse(value: &str) -> Result<Self, UeError> {
        let p = AuthParams::parse(value).map_err(|e| UeError::BadChallenge {
            what: e.to_string(),
        })?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Err(UeError::BadChallenge {
                what: format!("scheme {:?} is not Digest", p.scheme),
            });
        }
        let nonce = p.get("nonce").ok_or_else(|| UeError::BadChallenge {
            what: "no nonce parameter".into(),
        })?;
        let algorithm_token = p.get("algorithm").map(str::to_owned);
        let algorithm = match algorithm_token.as_deref() {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("AKAv1-MD5") => Algorithm::AkaV1Md5,
            Some(a) => {
                return Err(UeError::UnsupportedAlgorithm {
                    algorithm: a.to_owned(),
                })
            }
        };
        let qop_auth = match p.get("qop") {
            None => false,
            Some(q) => {
                if q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    true
                } else {
                    return Err(UeError::UnsupportedQop { qop: q.to_owned() });
                }
            }
        };
        Ok(Self {
            realm: p.get("realm").unwrap_or_default().to_owned(),
            nonce: nonce.to_owned(),
            algorithm,
            algorithm_token,
            qop_auth,
            opaque: p.get("opaque").map(str::to_owned),
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// An `Authorization` header value (RFC 2617 §3.2.2; RFC 3310 §3.4 for `auts`).
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `username`: the IMPI.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce` (empty in the initial REGISTER).
    pub nonce: String,
    /// `uri`: the Request-URI.
    pub uri: String,
    /// `response` (empty in the initial REGISTER).
    pub response: String,
    /// `algorithm`, when the challenge named one.
    pub algorithm: Option<String>,
    /// `qop`, `nc` and `cnonce` when qop=auth is used.
    pub qop: Option<(u32, String)>,
    /// `opaque`, echoed.
    pub opaque: Option<String>,
    /// `auts` (base64) on a synchronisation failure.
    pub auts: Option<String>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

impl Authorization {
    /// The 3GPP initial Authorization of a first REGISTER (TS 24.229 §5.1.1.2.1; kamailio.md
    /// §3): `username` carries the IMPI, everything else is empty, so the I-CSCF and
    /// S-CSCF take the IMPI from it rather than from the To URI.
    pub fn initial(impi: &str, realm: &str, uri: &str) -> Self {
        Self {
            username: impi.to_owned(),
            realm: realm.to_owned(),
            nonce: String::new(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: None,
            qop: None,
            opaque: None,
            auts: None,
        }
    }

    /// The header value, starting with `Digest `.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        );
        if let Some(a) = &self.algorithm {
            s.push_str(&format!(", algorithm={a}"));
        }
        if let Some((nc, cnonce)) = &self.qop {
            s.push_str(&format!(
                ", qop=auth, nc={nc:08x}, cnonce={}",
                quote(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque={}", quote(o)));
        }
        if let Some(a) = &self.auts {
            s.push_str(&format!(", auts={}", quote(a)));
        }
        s
    }
}

/// The UE's long-term credentials: AKA keys (ISIM) and/or a SIP Digest password.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Milenage with K and OPc, for AKAv1-MD5.
    pub aka: Option<Milenage>,
    /// The shared secret, for MD5.
    pub password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("aka", &self.aka.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The USIM's sequence number state (TS 33.102 §6.3.3, Annex C.2).
///
/// This test USIM keeps the highest accepted SQN only (an array of one element): a
/// challenge is fresh when its SEQ is above SEQ_MS and at most [`DELTA`] ahead. This is
/// all an HSS that steps SEQ for every vector needs (see `auth::sqn`). With a path, the
/// state is read from and written to a file holding SQN_MS as decimal, so that UEs of one
/// IMSI run one after the other (or side by side) share one USIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usim {
    /// SQN_MS: the highest SQN accepted so far (48 bits).
    sqn_ms: u64,
    /// Where SQN_MS is kept between runs.
    file: Option<PathBuf>,
}

/// What the USIM made of a challenge that authenticated the network.
#[derive(Clone, PartialEq, Eq)]
pub enum AkaOutcome {
    /// The SQN was fresh: answer with RES.
    Res {
        /// RES (f2), the digest password.
        res: [u8; 8],
        /// The accepted SQN.
        sqn: u64,
    },
    /// The SQN was not fresh: answer with AUTS (RFC 3310 §3.4).
    Resync {
        /// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S.
        auts: [u8; 14],
        /// The SQN the network sent.
        sqn: u64,
        /// The USIM's SQN_MS reported in AUTS.
        sqn_ms: u64,
    },
}

impl fmt::Debug for AkaOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AkaOutcome::Res { sqn, .. } => write!(f, "Res {{ sqn: {sqn:#x}, res: <redacted> }}"),
            AkaOutcome::Resync { sqn, sqn_ms, .. } => {
                write!(f, "Resync {{ sqn: {sqn:#x}, sqn_ms: {sqn_ms:#x} }}")
            }
        }
    }
}

impl Usim {
    /// A USIM that has accepted `sqn_ms` (0 for a new card), kept in memory.
    pub fn new(sqn_ms: u64) -> Self {
        Self {
            sqn_ms: sqn_ms & SQN_MAX,
            file: None,
        }
    }

    /// A USIM whose SQN_MS lives in `path` (a missing file means a new card, SQN_MS 0).
    ///
    /// # Errors
    /// [`UeError::SqnFile`] when the file exists but cannot be read or holds no number.
    pub fn load(path: &Path) -> Result<Self, UeError> {
        let sqn_ms = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| UeError::SqnFile {
                path: path.to_owned(),
                what: "does not hold a decimal SQN; delete it to start from 0".into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(UeError::SqnFile {
                    path: path.to_owned(),
                    what: e.to_string(),
                })
            }
        };
        Ok(Self {
            sqn_ms: sqn_ms & SQN_MAX,
            file: Some(path.to_owned()),
        })
    }

    /// SQN_MS, the highest accepted SQN.
    pub fn sqn_ms(&self) -> u64 {
        self.sqn_ms
    }

    /// Whether `sqn` is fresh: SEQ(sqn) > SEQ_MS and SEQ(sqn) − SEQ_MS ≤ Δ
    /// (TS 33.102 Annex C.2.2).
    pub fn is_fresh(&self, sqn: u64) -> bool {
        let (new, old) = (seq(sqn), seq(self.sqn_ms));
        new > old && new - old <= DELTA
    }

    /// Runs the USIM's part of an AKA challenge (TS 33.102 §6.3.3): verifies AUTN, then
    /// checks SQN freshness; a fresh SQN becomes SQN_MS (and is saved when a file is set).
    ///
    /// # Errors
    /// [`UeError::NetworkAuth`] when MAC-A does not verify; [`UeError::SqnFile`] when the
    /// new SQN_MS cannot be saved.
    pub fn authenticate(
        &mut self,
        m: &Milenage,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<AkaOutcome, UeError> {
        let (sqn, res, _ck, _ik) = ue_check_autn(m, rand, autn).map_err(UeError::NetworkAuth)?;
        if self.is_fresh(sqn) {
            self.sqn_ms = sqn;
            self.save()?;
            Ok(AkaOutcome::Res { res, sqn })
        } else {
            Ok(AkaOutcome::Resync {
                auts: ue_make_auts(m, rand, self.sqn_ms),
                sqn,
                sqn_ms: self.sqn_ms,
            })
        }
    }

    fn save(&self) -> Result<(), UeError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", self.sqn_ms))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| UeError::SqnFile {
                path: path.to_owned(),
                what: e.to_string(),
            })
    }
}

/// Splits an AKA nonce into RAND and AUTN (RFC 3310 §3.2: base64 of RAND ‖ AUTN, possibly
/// followed by server data).
///
/// # Errors
/// [`UeError::BadChallenge`] when the nonce is not base64 or shorter than 32 octets.
pub fn split_aka_nonce(nonce: &str) -> Result<([u8; 16], [u8; 16]), UeError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(nonce.trim())
        .map_err(|_| UeError::BadChallenge {
            what: "AKAv1-MD5 nonce is not base64 (RFC 3310 §3.2)".into(),
        })?;
    if raw.len() < 32 {
        return Err(UeError::BadChallenge {
            what: format!(
                "AKAv1-MD5 nonce decodes to {} octets, RAND ‖ AUTN needs 32",
                raw.len()
            ),
        });
    }
    let mut rand = [0u8; 16];
    let mut autn = [0u8; 16];
    rand.copy_from_slice(&raw[..16]);
    autn.copy_from_slice(&raw[16..32]);
    Ok((rand, autn))
}

/// A challenge that has been answered: enough to answer again with the same nonce (nc + 1)
/// for a re-registration (RFC 2617 §3.2.2; TS 24.229 §5.1.1.4.1).
#[derive(Clone)]
pub struct DigestSession {
    /// The challenge answered.
    pub challenge: Challenge,
    /// The digest password: RES octets (AKA) or the shared secret's octets (MD5).
    password: Vec<u8>,
    /// The last nonce count used.
    nc: u32,
}

impl fmt::Debug for DigestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestSession")
            .field("challenge", &self.challenge)
            .field("password", &"<redacted>")
            .field("nc", &self.nc)
            .finish()
    }
}

/// What answering a challenge produced.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The Authorization to send.
    pub authorization: Authorization,
    /// The session to reuse the nonce with; `None` after a resync (the nonce is spent).
    pub session: Option<DigestSession>,
    /// Set when the USIM asked for resynchronisation: (network SQN, SQN_MS).
    pub resync: Option<(u64, u64)>,
}

/// Who is answering, for what.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The IMPI (digest username).
    pub username: &'a str,
    /// The SIP method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The Request-URI, used as digest-uri.
    pub uri: &'a str,
}

/// Answers a challenge (RFC 2617 §3.2.2; RFC 3310 §3.3–§3.4) with nc=00000001.
///
/// `cnonce` is used only when the challenge offers qop=auth.
///
/// # Errors
/// [`UeError::MissingCredentials`] when the needed keys or password were not given;
/// those of [`split_aka_nonce`] and [`Usim::authenticate`].
pub fn answer(
    challenge: &Challenge,
    req: Request<'_>,
    creds: &Credentials,
    usim: &mut Usim,
    cnonce: &str,
) -> Result<Answer, UeError> {
    match challenge.algorithm {
        Algorithm::Md5 => {
            let password = creds
                .password
                .as_deref()
                .ok_or(UeError::MissingCredentials {
                    algorithm: "MD5".into(),
                    missing: "no --password was",
                })?;
            let session = DigestSession {
                challenge: challenge.clone(),
                password: password.as_bytes().to_vec(),
                nc: 0,
            };
            Ok(session.next(req, cnonce))
        }
        Algorithm::AkaV1Md5 => {
            let m = creds.aka.as_ref().ok_or(UeError::MissingCredentials {
                algorithm: "AKAv1-MD5".into(),
                missing: "no --k/--opc were",
            })?;
            let (rand, autn) = split_aka_nonce(&challenge.nonce)?;
            match usim.authenticate(m, &rand, &autn)? {
                AkaOutcome::Res { res, .. } => {
                    let session = DigestSession {
                        challenge: challenge.clone(),
                        password: res.to_vec(),
                        nc: 0,
                    };
                    Ok(session.next(req, cnonce))
                }
                AkaOutcome::Resync { auts, sqn, sqn_ms } => {
                    // RFC 3310 §3.4: empty password, and the AUTS.
                    let session = DigestSession {
                        challenge: challenge.clone(),
                        password: Vec::new(),
                        nc: 0,
                    };
                    let mut a = session.next(req, cnonce);
                    a.authorization.auts =
                        Some(base64::engine::general_purpose::STANDARD.encode(auts));
                    a.session = None;
                    a.resync = Some((sqn, sqn_ms));
                    Ok(a)
                }
            }
        }
    }
}

impl DigestSession {
    /// The next Authorization on this nonce: nc incremented (RFC 2617 §3.2.2).
    pub fn next(mut self, req: Request<'_>, cnonce: &str) -> Answer {
        self.nc += 1;
        let c = &self.challenge;
        // HA1 = MD5(username:realm:password); for AKA the password is RES as raw octets
        // (RFC 3310 §3.3), for MD5 the secret's UTF-8 octets (what `digest::ha1` hashes).
        let h1 = ha1_aka(req.username, &c.realm, &self.password);
        let nc = format!("{:08x}", self.nc);
        let qop = c.qop_auth.then_some((nc.as_str(), cnonce, "auth"));
        let resp = response(&h1, &c.nonce, req.method, req.uri, qop);
        let authorization = Authorization {
            username: req.username.to_owned(),
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
            uri: req.uri.to_owned(),
            response: resp,
            algorithm: c.algorithm_token.clone(),
            qop: c.qop_auth.then(|| (self.nc, cnonce.to_owned())),
            opaque: c.opaque.clone(),
            auts: None,
        };
        Answer {
            authorization,
            session: Some(self),
            resync: None,
        }
    }
}
