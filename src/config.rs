//! Configuration: one TOML file, with environment variables and flags over it. Every
//! setting has a default, so `sichss serve` runs with no file at all.
//!
//! ```toml
//! [diameter]
//! listen = ["127.0.0.1:3868"]            # IPv4 and IPv6 addresses
//! origin_host = "hss.ims.mnc001.mcc460.3gppnetwork.org"
//! origin_realm = "ims.mnc001.mcc460.3gppnetwork.org"
//! max_message_len = 1048576
//! watchdog_seconds = 30
//! request_timeout_ms = 5000              # RTR/PPR answers
//! max_in_flight_per_connection = 256
//! dictionaries = []                      # extra dictionary files
//! [[diameter.peers]]                     # allowlist; none = loopback peers only
//! origin_host = "scscf.ims.mnc001.mcc460.3gppnetwork.org"
//! source = "10.0.0.0/8"
//! [diameter.tls]                         # Diameter over TLS (RFC 6733 §13); off by default
//! listen = ["127.0.0.1:5658"]            # TLS from the first byte, beside the TCP listeners
//! cert = "/etc/sichss/hss.crt"           # PEM chain, leaf first
//! key = "/etc/sichss/hss.key"            # PEM private key
//! client_ca = "/etc/sichss/peers-ca.crt" # optional: require client certificates (mutual TLS)
//! handshake_timeout_ms = 10000
//!
//! [admin]
//! listen = "127.0.0.1:8080"
//! token = "…"                            # required beyond loopback
//! [admin.tls]                            # HTTPS for the provisioning API; off by default
//! cert = "/etc/sichss/api.crt"
//! key = "/etc/sichss/api.key"
//!
//! [store]
//! data = "./sichss-data"                 # the embedded sled store's directory, or:
//! url = "postgres://sichss@db.example.org/sichss?schema=sichss"   # shared by several nodes
//! pool_size = 16                         # PostgreSQL connections per node
//! secrets_key_file = "/etc/sichss/secrets.key"  # optional: encrypt K/OPc/OP/passwords at rest
//!
//! [cx]
//! default_scscf = "sip:127.0.0.1:6060"
//! mandatory_capabilities = []
//! optional_capabilities = []
//! keep_server_name = true
//! max_auth_items = 5
//! [cx.sics]
//! "001" = "VoLTE"
//! "002" = "RCS"
//! [cx.charging]
//! primary_ccf = "aaa://ccf.example.org:3868"
//! ```
//!
//! Must not depend on: the server, the store backends (it only describes them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cx::{ChargingInfo, CxConfig};
use crate::store::any::StoreLocation;
use crate::store::SicRegistry;

/// Why the configuration was refused; names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a setting of the wrong shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// toml's message, which names the key and line.
        message: String,
    },
    /// A value is out of range.
    #[error("{setting}: {problem}")]
    Invalid {
        /// The setting, e.g. `diameter.listen`.
        setting: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// One allowlist entry of the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Origin-Host the peer must present (case-insensitive); absent = any.
    #[serde(default)]
    pub origin_host: Option<String>,
    /// Source address or network (`10.0.0.5`, `10.0.0.0/8`, `::1/128`); absent = any.
    #[serde(default)]
    pub source: Option<String>,
}

/// `[diameter]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DiameterConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Our Origin-Host.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// Largest message accepted, in octets.
    pub max_message_len: u32,
    /// RFC 3539 watchdog interval Tw.
    pub watchdog_seconds: u64,
    /// How long to wait for an RTA/PPA.
    pub request_timeout_ms: u64,
    /// Requests processed at once on one connection.
    pub max_in_flight_per_connection: usize,
    /// Allowed peers; empty = peers connecting from loopback addresses.
    pub peers: Vec<PeerEntry>,
    /// Extra dictionary files loaded at start.
    pub dictionaries: Vec<PathBuf>,
    /// `[diameter.tls]`: Diameter over TLS.
    pub tls: DiameterTlsConfig,
}

/// `[diameter.tls]`: Diameter over TLS (RFC 6733 §13, TLS from the first byte) on its own
/// listeners, beside the plain TCP ones. Off while `listen` is empty.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DiameterTlsConfig {
    /// TLS listen addresses (port 5658 by convention).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain of this HSS, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM file of the CAs whose client certificates are accepted; when set, peers must
    /// present one (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Longest TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
}

impl Default for DiameterTlsConfig {
    fn default() -> Self {
        DiameterTlsConfig {
            listen: Vec::new(),
            cert: None,
            key: None,
            client_ca: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// `[admin.tls]`: HTTPS for the provisioning API (both or neither).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminTlsConfig {
    /// PEM certificate chain of the API, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

impl AdminTlsConfig {
    /// Whether HTTPS is configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

impl Default for DiameterConfig {
    fn default() -> Self {
        let cx = CxConfig::default();
        DiameterConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 3868))],
            origin_host: cx.origin_host,
            origin_realm: cx.origin_realm,
            max_message_len: 1 << 20,
            watchdog_seconds: 30,
            request_timeout_ms: 5000,
            max_in_flight_per_connection: 256,
            peers: Vec::new(),
            dictionaries: Vec::new(),
            tls: DiameterTlsConfig::default(),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the provisioning API.
    pub listen: SocketAddr,
    /// Bearer token; required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// `[admin.tls]`: HTTPS.
    pub tls: AdminTlsConfig,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            tls: AdminTlsConfig::default(),
        }
    }
}

/// `[store]`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the sled database (when `url` is not set).
    pub data: PathBuf,
    /// `sled:DIR` or `postgres://…` (see [`crate::store::any::StoreLocation`]); overrides
    /// `data`. May hold a password: never shown whole.
    pub url: Option<String>,
    /// Pooled PostgreSQL connections of this node.
    pub pool_size: usize,
    /// File holding the 32-octet key (64 hex digits or base64) that encrypts K, OPc, OP,
    /// passwords and HA1 at rest ([`crate::store::secrets`]); absent = stored in clear.
    pub secrets_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data", &self.data)
            .field(
                "url",
                &self
                    .url
                    .as_deref()
                    .map(crate::store::postgres::location::redact),
            )
            .field("pool_size", &self.pool_size)
            .field("secrets_key_file", &self.secrets_key_file)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data: PathBuf::from("./sichss-data"),
            url: None,
            pool_size: crate::store::postgres::DEFAULT_POOL_SIZE,
            secrets_key_file: None,
        }
    }
}

impl StoreConfig {
    /// Where the store is: `url` when set, else the sled directory `data`.
    ///
    /// # Errors
    /// `Invalid` on `store.url`, naming the accepted forms.
    pub fn location(&self) -> Result<StoreLocation, ConfigError> {
        match &self.url {
            None => Ok(StoreLocation::Sled(self.data.clone())),
            Some(url) => StoreLocation::parse(url).map_err(|e| ConfigError::Invalid {
                setting: "store.url",
                problem: match e {
                    crate::store::StoreError::Invalid { problem, .. } => problem,
                    other => other.to_string(),
                },
            }),
        }
    }
}

/// `[cx]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CxSection {
    /// S-CSCF named in Server-Capabilities when none is assigned.
    pub default_scscf: String,
    /// Mandatory capabilities in Server-Capabilities.
    pub mandatory_capabilities: Vec<u32>,
    /// Optional capabilities in Server-Capabilities.
    pub optional_capabilities: Vec<u32>,
    /// Keep the S-CSCF name on *_STORE_SERVER_NAME de-registrations.
    pub keep_server_name: bool,
    /// Most AKA vectors in one MAA.
    pub max_auth_items: u32,
    /// SIC registry.
    pub sics: SicRegistry,
    /// Charging-Information, if any.
    pub charging: Option<ChargingInfo>,
}

impl Default for CxSection {
    fn default() -> Self {
        let cx = CxConfig::default();
        CxSection {
            default_scscf: cx.default_scscf,
            mandatory_capabilities: cx.mandatory_capabilities,
            optional_capabilities: cx.optional_capabilities,
            keep_server_name: cx.keep_server_name,
            max_auth_items: cx.max_auth_items,
            sics: cx.sics,
            charging: cx.charging,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[diameter]`.
    pub diameter: DiameterConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[cx]`.
    pub cx: CxSection,
}

impl Config {
    /// Reads a TOML file (all settings optional).
    ///
    /// # Errors
    /// `Read` or `Parse`, naming the file, key and line.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// toml's message, which names the key and line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values that serde cannot.
    ///
    /// # Errors
    /// `Invalid`, naming the setting and the expected form.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.diameter.listen.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "diameter.listen",
                problem: "needs at least one address, e.g. \"127.0.0.1:3868\"".into(),
            });
        }
        if self.diameter.origin_host.trim().is_empty() || !self.diameter.origin_host.contains('.') {
            return Err(ConfigError::Invalid {
                setting: "diameter.origin_host",
                problem: format!(
                    "{:?} must be a fully qualified domain name, e.g. hss.ims.mnc001.mcc460.3gppnetwork.org",
                    self.diameter.origin_host
                ),
            });
        }
        if self.diameter.origin_realm.trim().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "diameter.origin_realm",
                problem: "must not be empty, e.g. ims.mnc001.mcc460.3gppnetwork.org".into(),
            });
        }
        if self.diameter.max_message_len < 20 {
            return Err(ConfigError::Invalid {
                setting: "diameter.max_message_len",
                problem: "must be at least 20 octets (the Diameter header)".into(),
            });
        }
        if !self.cx.default_scscf.starts_with("sip:") && !self.cx.default_scscf.starts_with("sips:")
        {
            return Err(ConfigError::Invalid {
                setting: "cx.default_scscf",
                problem: format!(
                    "{:?} must be a routable SIP URI, e.g. sip:127.0.0.1:6060",
                    self.cx.default_scscf
                ),
            });
        }
        for (sic, _) in self.cx.sics.iter() {
            if sic.len() != 3 || !sic.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Invalid {
                    setting: "cx.sics",
                    problem: format!("SIC {sic:?} must be exactly 3 digits, e.g. \"001\""),
                });
            }
        }
        self.store.location()?;
        if self.store.pool_size == 0 {
            return Err(ConfigError::Invalid {
                setting: "store.pool_size",
                problem: "must be at least 1 (16 is the default)".into(),
            });
        }
        let tls = &self.diameter.tls;
        if !tls.listen.is_empty() {
            if tls.cert.is_none() || tls.key.is_none() {
                return Err(ConfigError::Invalid {
                    setting: "diameter.tls",
                    problem:
                        "TLS listen addresses need a certificate and a key: give cert and key \
                              (PEM files) in [diameter.tls], or --tls-cert and --tls-key"
                            .into(),
                });
            }
            if tls.handshake_timeout_ms == 0 {
                return Err(ConfigError::Invalid {
                    setting: "diameter.tls.handshake_timeout_ms",
                    problem: "must be at least 1 (default 10000)".into(),
                });
            }
        } else if tls.cert.is_some() || tls.key.is_some() || tls.client_ca.is_some() {
            return Err(ConfigError::Invalid {
                setting: "diameter.tls.listen",
                problem: "is empty, but a TLS certificate, key or client CA is given: give the \
                          TLS addresses (e.g. listen = [\"0.0.0.0:5658\"], or --tls-listen), or \
                          remove the TLS files"
                    .into(),
            });
        }
        if self.admin.tls.cert.is_some() != self.admin.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                setting: "admin.tls",
                problem: "give both cert and key (PEM files), or neither \
                          (--admin-tls-cert and --admin-tls-key)"
                    .into(),
            });
        }
        if self.cx.max_auth_items == 0 {
            return Err(ConfigError::Invalid {
                setting: "cx.max_auth_items",
                problem: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The Cx application's view of the configuration.
    pub fn cx_config(&self) -> CxConfig {
        CxConfig {
            origin_host: self.diameter.origin_host.clone(),
            origin_realm: self.diameter.origin_realm.clone(),
            default_scscf: self.cx.default_scscf.clone(),
            mandatory_capabilities: self.cx.mandatory_capabilities.clone(),
            optional_capabilities: self.cx.optional_capabilities.clone(),
            sics: self.cx.sics.clone(),
            keep_server_name: self.cx.keep_server_name,
            charging: self.cx.charging.clone(),
            max_auth_items: self.cx.max_auth_items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.diameter.listen, vec!["127.0.0.1:3868".parse().unwrap()]);
        assert_eq!(
            c.diameter.origin_host,
            "hss.ims.mnc001.mcc460.3gppnetwork.org"
        );
        assert_eq!(c.diameter.origin_realm, "ims.mnc001.mcc460.3gppnetwork.org");
        assert_eq!(c.admin.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.store.data, PathBuf::from("./sichss-data"));
        assert_eq!(c.cx.default_scscf, "sip:127.0.0.1:6060");
        assert_eq!(c.cx.sics.name("001"), Some("VoLTE"));
        assert_eq!(c.cx.sics.name("002"), Some("RCS"));
        c.check().unwrap();
    }

    #[test]
    fn reads_every_section() {
        let c = Config::from_toml(
            r#"
            [diameter]
            listen = ["127.0.0.1:3869", "[::1]:3869"]
            origin_host = "hss.example.org"
            [[diameter.peers]]
            origin_host = "scscf.example.org"
            source = "10.0.0.0/8"
            [admin]
            listen = "127.0.0.1:9090"
            token = "t"
            [store]
            data = "/var/lib/sichss"
            [cx]
            default_scscf = "sip:scscf.example.org:6060"
            [cx.sics]
            "003" = "Video"
            [cx.charging]
            primary_ccf = "aaa://ccf.example.org"
            "#,
        )
        .unwrap();
        assert_eq!(c.diameter.listen.len(), 2);
        assert_eq!(c.diameter.peers[0].source.as_deref(), Some("10.0.0.0/8"));
        assert_eq!(c.admin.token.as_deref(), Some("t"));
        assert_eq!(c.cx.sics.name("003"), Some("Video"));
        assert_eq!(
            c.cx_config().charging.unwrap().primary_ccf.as_deref(),
            Some("aaa://ccf.example.org")
        );
        c.check().unwrap();
    }

    #[test]
    fn reads_tls_and_secrets_settings() {
        let c = Config::from_toml(
            r#"
            [diameter.tls]
            listen = ["127.0.0.1:5658"]
            cert = "hss.crt"
            key = "hss.key"
            client_ca = "ca.crt"
            [admin.tls]
            cert = "api.crt"
            key = "api.key"
            [store]
            secrets_key_file = "secrets.key"
            "#,
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(
            c.diameter.tls.listen,
            vec!["127.0.0.1:5658".parse().unwrap()]
        );
        assert_eq!(c.diameter.tls.client_ca, Some(PathBuf::from("ca.crt")));
        assert_eq!(c.diameter.tls.handshake_timeout_ms, 10_000);
        assert!(c.admin.tls.enabled());
        assert_eq!(c.store.secrets_key_file, Some(PathBuf::from("secrets.key")));
        assert!(!Config::default().admin.tls.enabled());
        assert!(Config::default().diameter.tls.listen.is_empty());
    }

    #[test]
    fn rejects_incomplete_tls_settings_naming_the_fix() {
        let mut c = Config::default();
        c.diameter.tls.listen = vec!["127.0.0.1:5658".parse().unwrap()];
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("diameter.tls") && e.contains("--tls-cert"),
            "{e}"
        );
        let mut c = Config::default();
        c.diameter.tls.cert = Some("x".into());
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("diameter.tls.listen") && e.contains("--tls-listen"),
            "{e}"
        );
        let mut c = Config::default();
        c.admin.tls.key = Some("x".into());
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("admin.tls") && e.contains("--admin-tls-cert"),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_setting_naming_it() {
        let e = Config::from_toml("[diameter]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.contains("listen_addr"), "{e}");
    }

    #[test]
    fn rejects_bad_values_naming_the_setting_and_the_form() {
        let mut c = Config::default();
        c.cx.default_scscf = "127.0.0.1:6060".into();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("cx.default_scscf") && e.contains("sip:"), "{e}");
        let mut c = Config::default();
        c.cx.sics.insert("01", "X");
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("cx.sics") && e.contains("3 digits"), "{e}");
        let mut c = Config::default();
        c.diameter.origin_host = "hss".into();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("diameter.origin_host"));
    }

    #[test]
    fn reads_a_postgres_store_url_and_refuses_a_bad_one_without_showing_the_password() {
        let c = Config::from_toml(
            "[store]\nurl = \"postgres://hss:s3cret@db.example.org/ims?schema=sichss\"\npool_size = 4\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(
            c.store.location().unwrap().to_string(),
            "postgres://hss:***@db.example.org/ims?schema=sichss"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let mut c = Config::default();
        c.store.url = Some("postgress://hss:s3cret@db/ims".into());
        let e = c.check().unwrap_err().to_string();
        assert!(e.starts_with("store.url: "), "{e}");
        assert!(e.contains("postgres://[user[:password]@]host"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
