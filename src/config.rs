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
//!
//! [admin]
//! listen = "127.0.0.1:8080"
//! token = "…"                            # required beyond loopback
//!
//! [store]
//! data = "./sichss-data"
//! cache_mb = 256                         # sled page cache (bounds the memory of a big store)
//! cache_subscribers = 100000             # decoded subscribers kept in memory (0 = none)
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
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the sled database.
    pub data: PathBuf,
    /// Size of sled's page cache, MiB.
    pub cache_mb: u64,
    /// Most decoded subscriber records kept in memory (0 disables the cache).
    pub cache_subscribers: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data: PathBuf::from("./sichss-data"),
            cache_mb: 256,
            cache_subscribers: 100_000,
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
}
