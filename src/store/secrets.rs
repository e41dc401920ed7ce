//! Encryption at rest of subscriber secrets: K, OPc, OP (`aka.k`, `aka.opc`, `aka.op`),
//! the SIP Digest password and HA1 (`digest.password`, `digest.ha1`).
//!
//! # Format
//!
//! Each secret field is encrypted on its own with AES-256-GCM (NIST SP 800-38D) under the
//! operator's 32-octet key, with a fresh random 96-bit nonce, and stored in place of the
//! plaintext as
//!
//! ```text
//! enc:v1:<base64(nonce (12 octets) ‖ ciphertext ‖ tag (16 octets))>
//! ```
//!
//! (standard base64 with padding). The plaintext is the field's text as provisioned (32 hex
//! digits for K/OPc/OP/HA1, the password's UTF-8). The associated data binds a value to
//! its subscriber and field (`sichss-secret-v1`, IMSI, field path), so a ciphertext copied
//! to another subscriber or field does not decrypt.
//!
//! # Where it happens
//!
//! [`EncryptingStore`] wraps any [`SubscriberStore`]: it encrypts on every write and
//! decrypts on every read, so the Cx procedures and the provisioning API see plaintext and
//! do not change, while the backend (the sled files) only ever holds ciphertext.
//! [`SubscriberStore::list_stored`] returns records as stored, with ciphertext: the export
//! (`GET /export`, `sichss export`) uses it, so a backup taken with a key configured holds
//! no plaintext secret. Writes accept both plaintext and `enc:v1:` values (an import of such
//! a backup); an `enc:v1:` value must decrypt under the configured key.
//!
//! Decrypting is not repeated for every read: the Cx path's shared reads keep the decrypted
//! copy of a record (at most [`OPENED_CACHE`] of them) for as long as the backend hands out
//! the same record (`Arc::ptr_eq`, as sled's record cache does until the record changes). A
//! backend that builds a new record for every read (PostgreSQL) decrypts every time. The
//! plaintext secrets of those records stay in memory as long as their copies do.
//!
//! Without a key the wrapper passes plaintext through and refuses `enc:v1:` values, both on
//! write and on read, with a message naming the setting to give.
//!
//! Must not depend on: any backend, the codec, the Cx layer.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;

use super::{HashCache, StoreError, StoreStats, Subscriber, SubscriberStore};

/// The prefix of an encrypted value.
pub const PREFIX: &str = "enc:v1:";

/// Where the operator gives the key, for messages.
pub const KEY_SETTINGS: &str =
    "--secrets-key-file FILE, SICHSS_SECRETS_KEY_FILE, SICHSS_SECRETS_KEY or [store] secrets_key_file";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Associated-data domain separator.
const AAD_DOMAIN: &[u8] = b"sichss-secret-v1";

/// How many records [`EncryptingStore::check_key`] reads at most, looking for an encrypted
/// one to try the key on.
const CHECK_SCAN: usize = 1_000;

/// Whether `value` is an encrypted (`enc:v1:`) value.
pub fn is_encrypted(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// Checks the shape of an `enc:v1:` value (base64 of at least nonce and tag), without
/// decrypting it; `Err` says what is wrong (never quoting the value).
pub fn check_shape(value: &str) -> Result<(), String> {
    let Some(b64) = value.strip_prefix(PREFIX) else {
        return Err(format!("does not start with {PREFIX}"));
    };
    match B64.decode(b64.trim()) {
        Ok(raw) if raw.len() > NONCE_LEN + TAG_LEN => Ok(()),
        Ok(_) => Err(format!(
            "is too short for an {PREFIX} value (base64 of a 12-octet nonce, the ciphertext and a 16-octet tag)"
        )),
        Err(_) => Err(format!(
            "is not valid base64 after {PREFIX} (expected base64 of nonce ‖ ciphertext ‖ tag)"
        )),
    }
}

/// Why a secrets key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the secrets key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key is not 32 octets in hex or base64.
    #[error("the secrets key {origin} must be 32 octets, as 64 hex digits or base64 (44 characters); {problem}. Make one with `head -c 32 /dev/urandom | base64 > FILE` (or `openssl rand -hex 32`)")]
    Format {
        /// Where it came from (`file /etc/sichss/secrets.key`, `SICHSS_SECRETS_KEY`).
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// The operator's AES-256-GCM key for secrets at rest. Debug never shows it.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// The key of these 32 octets.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretsKey {
            cipher: Aes256Gcm::new(&bytes.into()),
        }
    }

    /// Parses a key given as 64 hex digits or as base64 of 32 octets (surrounding
    /// whitespace ignored); `origin` names where it came from in the error.
    ///
    /// # Errors
    /// [`KeyError::Format`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let bad = |problem: String| KeyError::Format {
            origin: origin.to_owned(),
            problem,
        };
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| bad(e.to_string()))?
        } else {
            B64.decode(t).map_err(|_| {
                bad(format!(
                    "got {} characters that are neither 64 hex digits nor base64",
                    t.chars().count()
                ))
            })?
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| bad(format!("it decodes to {} octets", v.len())))?;
        Ok(Self::from_bytes(arr))
    }

    /// Reads a key file (64 hex digits or base64, one line). On Unix, warns when the file
    /// can be read by group or others.
    ///
    /// # Errors
    /// [`KeyError::Read`] or [`KeyError::Format`].
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(),
                        "the secrets key file can be read by group or others: chmod 600 it");
                }
            }
        }
        Self::parse(&text, &format!("in file {}", path.display()))
    }

    /// Encrypts `plaintext` of field `field` of subscriber `imsi` into an `enc:v1:` value.
    pub fn encrypt(&self, imsi: &str, field: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(imsi, field);
        // Encryption fails only for messages beyond 64 GiB.
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        format!("{PREFIX}{}", B64.encode(raw))
    }

    /// Decrypts an `enc:v1:` value of field `field` of subscriber `imsi`.
    ///
    /// # Errors
    /// A reason (never quoting the value): not an `enc:v1:` value, malformed, or it does
    /// not authenticate (another key, another subscriber or field, or altered).
    pub fn decrypt(&self, imsi: &str, field: &str, value: &str) -> Result<String, String> {
        check_shape(value)?;
        let raw = B64
            .decode(value[PREFIX.len()..].trim())
            .map_err(|_| "is not valid base64".to_owned())?;
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let aad = aad(imsi, field);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| {
                "does not decrypt with this key (written with another key, or copied from another subscriber or field)"
                    .to_owned()
            })?;
        String::from_utf8(pt).map_err(|_| "decrypts to something that is not text".to_owned())
    }
}

fn aad(imsi: &str, field: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(AAD_DOMAIN.len() + imsi.len() + field.len() + 2);
    v.extend_from_slice(AAD_DOMAIN);
    v.push(0);
    v.extend_from_slice(imsi.as_bytes());
    v.push(0);
    v.extend_from_slice(field.as_bytes());
    v
}

/// The secret fields of a subscriber, by their path, for reading.
fn secret_fields(sub: &Subscriber) -> [(&'static str, Option<&String>); 5] {
    let aka = sub.aka.as_ref();
    let digest = sub.digest.as_ref();
    [
        ("aka.k", aka.map(|a| &a.k.0)),
        ("aka.opc", aka.and_then(|a| a.opc.as_ref()).map(|s| &s.0)),
        ("aka.op", aka.and_then(|a| a.op.as_ref()).map(|s| &s.0)),
        (
            "digest.password",
            digest.and_then(|d| d.password.as_ref()).map(|p| &p.0),
        ),
        (
            "digest.ha1",
            digest.and_then(|d| d.ha1.as_ref()).map(|s| &s.0),
        ),
    ]
}

/// The values of [`secret_fields`], owned.
fn owned(fields: [(&'static str, Option<&String>); 5]) -> Vec<(&'static str, Option<String>)> {
    fields.into_iter().map(|(f, v)| (f, v.cloned())).collect()
}

/// The same fields, for writing.
fn secret_fields_mut(sub: &mut Subscriber) -> Vec<(&'static str, &mut String)> {
    let mut v = Vec::with_capacity(5);
    if let Some(a) = sub.aka.as_mut() {
        v.push(("aka.k", &mut a.k.0));
        if let Some(s) = a.opc.as_mut() {
            v.push(("aka.opc", &mut s.0));
        }
        if let Some(s) = a.op.as_mut() {
            v.push(("aka.op", &mut s.0));
        }
    }
    if let Some(d) = sub.digest.as_mut() {
        if let Some(p) = d.password.as_mut() {
            v.push(("digest.password", &mut p.0));
        }
        if let Some(s) = d.ha1.as_mut() {
            v.push(("digest.ha1", &mut s.0));
        }
    }
    v
}

/// Whether any secret field of `sub` holds an `enc:v1:` value.
pub fn has_encrypted(sub: &Subscriber) -> bool {
    secret_fields(sub)
        .iter()
        .any(|(_, v)| v.is_some_and(|v| is_encrypted(v)))
}

/// Whether any secret field of `sub` holds plaintext.
pub fn has_plaintext(sub: &Subscriber) -> bool {
    secret_fields(sub)
        .iter()
        .any(|(_, v)| v.is_some_and(|v| !is_encrypted(v)))
}

/// A [`SubscriberStore`] that encrypts secrets on write and decrypts them on read; see the
/// module documentation. With no key it passes plaintext through and refuses encrypted
/// values.
#[derive(Debug)]
pub struct EncryptingStore<S> {
    inner: S,
    key: Option<Arc<SecretsKey>>,
    /// Decrypted copies of records read through the `_shared` methods (with a key).
    opened: OpenedCache,
}

/// Most decrypted records [`EncryptingStore`] keeps (each a copy of the record's top level:
/// its services are shared with the backend's record, not copied).
pub const OPENED_CACHE: usize = 65_536;

/// Decrypted copies of records, by IMSI, each with the backend's record it was made from:
/// a copy is handed out again only for that very record (`Arc::ptr_eq`), so an update (a
/// new record) is never answered with the copy of the old one.
struct OpenedCache(HashCache<Opened>);

struct Opened {
    /// The backend's record, held so that its address cannot be reused for another one.
    sealed: Arc<Subscriber>,
    plain: Arc<Subscriber>,
}

impl std::fmt::Debug for OpenedCache {
    // The copies hold plaintext secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedCache").finish_non_exhaustive()
    }
}

impl OpenedCache {
    /// The decrypted copy of `sealed`, if this very record was decrypted before (a copy of
    /// another record with the same hash is not it).
    fn get(&self, sealed: &Arc<Subscriber>) -> Option<Arc<Subscriber>> {
        self.0.get(&sealed.imsi, |o| {
            Arc::ptr_eq(&o.sealed, sealed).then(|| Arc::clone(&o.plain))
        })
    }

    fn put(&self, sealed: Arc<Subscriber>, plain: Arc<Subscriber>) {
        let key = Arc::clone(&sealed);
        // The copy it replaces is dropped here, after the shard's lock.
        drop(self.0.put(&key.imsi, Opened { sealed, plain }));
    }
}

/// What [`EncryptingStore::check_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyCheck {
    /// A record with encrypted secrets was found, and (with a key) decrypted.
    pub encrypted_found: bool,
    /// Records read that still hold plaintext secrets (with a key configured these are
    /// encrypted when next written, or all at once by an export and import).
    pub plaintext_records: u64,
    /// Records read.
    pub scanned: u64,
}

impl<S: SubscriberStore> EncryptingStore<S> {
    /// Wraps `inner`; `key` None passes plaintext through and refuses `enc:v1:` values.
    pub fn new(inner: S, key: Option<SecretsKey>) -> Self {
        EncryptingStore {
            inner,
            key: key.map(Arc::new),
            opened: OpenedCache(HashCache::new(OPENED_CACHE)),
        }
    }

    /// The wrapped store (records as stored, with ciphertext).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Whether a key is configured.
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// Checks at start that the configured key (or its absence) fits the store: reads
    /// records in IMSI order (at most 1 000) until one holds an encrypted secret, and
    /// decrypts its secrets.
    ///
    /// # Errors
    /// [`StoreError::Secrets`] naming the setting and the fix: encrypted secrets but no
    /// key, or a key that does not decrypt them.
    pub async fn check_key(&self) -> Result<KeyCheck, StoreError> {
        let mut check = KeyCheck::default();
        let mut after: Option<String> = None;
        const PAGE: usize = 500;
        while (check.scanned as usize) < CHECK_SCAN {
            let page = self.inner.list(after.as_deref(), PAGE).await?;
            for sub in &page {
                check.scanned += 1;
                if has_plaintext(sub) {
                    check.plaintext_records += 1;
                }
                if has_encrypted(sub) {
                    let mut s = sub.clone();
                    self.open(&mut s).map_err(|e| match (&self.key, e) {
                        (Some(_), StoreError::Secrets(why)) => StoreError::Secrets(format!(
                            "secrets key does not match the store ({why}): give the key the store was written with ({KEY_SETTINGS})"
                        )),
                        (_, e) => e,
                    })?;
                    check.encrypted_found = true;
                    return Ok(check);
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.imsi.clone()),
                _ => break,
            }
        }
        Ok(check)
    }

    /// Decrypts every `enc:v1:` secret of `sub` in place.
    fn open(&self, sub: &mut Subscriber) -> Result<(), StoreError> {
        let imsi = sub.imsi.clone();
        for (field, value) in secret_fields_mut(sub) {
            if !is_encrypted(value) {
                continue;
            }
            let Some(key) = &self.key else {
                return Err(StoreError::Secrets(format!(
                    "subscriber {imsi}: {field} is encrypted ({PREFIX}) but no secrets key is configured: give the key the store was written with ({KEY_SETTINGS})"
                )));
            };
            *value = key
                .decrypt(&imsi, field, value)
                .map_err(|why| StoreError::Secrets(format!("subscriber {imsi}: {field} {why}")))?;
        }
        Ok(())
    }

    /// Prepares a record for the backend: decrypts `enc:v1:` values (they must decrypt under
    /// the configured key); with a key, validates the plaintext record and encrypts it.
    fn seal_new(&self, mut sub: Subscriber) -> Result<Subscriber, StoreError> {
        self.open_written(&mut sub)?;
        let Some(key) = &self.key else {
            // Passed on as it is: the backend validates every record it writes.
            return Ok(sub);
        };
        sub.validate()?;
        let imsi = sub.imsi.clone();
        for (field, value) in secret_fields_mut(&mut sub) {
            *value = key.encrypt(&imsi, field, value);
        }
        Ok(sub)
    }

    /// Like [`Self::open`] for a record being written: an undecryptable value is the
    /// writer's fault (400, naming the field), not the store's.
    fn open_written(&self, sub: &mut Subscriber) -> Result<(), StoreError> {
        let imsi = sub.imsi.clone();
        for (field, value) in secret_fields_mut(sub) {
            if !is_encrypted(value) {
                continue;
            }
            let Some(key) = &self.key else {
                return Err(StoreError::Invalid {
                    field: field.to_owned(),
                    problem: format!(
                        "is encrypted ({PREFIX}) but this server has no secrets key: give the key it was encrypted with ({KEY_SETTINGS}), or import plaintext"
                    ),
                });
            };
            *value = key
                .decrypt(&imsi, field, value)
                .map_err(|why| StoreError::Invalid {
                    field: field.to_owned(),
                    problem: format!(
                        "{why}; give this server the key the export was written with, or import plaintext"
                    ),
                })?;
        }
        Ok(())
    }

    /// After an update of the decrypted `plain` (made from `stored`, whose secrets read
    /// `before` in plaintext), encrypts the changed secrets and keeps the stored ciphertext
    /// of unchanged ones (so an update that changes nothing writes nothing).
    fn reseal(
        &self,
        stored: Option<&[(&'static str, Option<String>)]>,
        before: Option<&[(&'static str, Option<String>)]>,
        plain: &mut Subscriber,
    ) -> Result<(), StoreError> {
        self.open_written(plain)?;
        let Some(key) = &self.key else {
            return Ok(());
        };
        let imsi = plain.imsi.clone();
        fn find<'a>(
            values: Option<&'a [(&'static str, Option<String>)]>,
            field: &str,
        ) -> Option<&'a str> {
            values?
                .iter()
                .find(|(f, _)| *f == field)
                .and_then(|(_, v)| v.as_deref())
        }
        for (field, value) in secret_fields_mut(plain) {
            *value = match (find(before, field), find(stored, field)) {
                (Some(p), Some(c)) if p == value.as_str() && is_encrypted(c) => c.to_owned(),
                _ => key.encrypt(&imsi, field, value),
            };
        }
        Ok(())
    }

    /// Like [`Self::opened`], copying the record only when it has secrets to decrypt.
    fn opened_shared(
        &self,
        sub: Option<Arc<Subscriber>>,
    ) -> Result<Option<Arc<Subscriber>>, StoreError> {
        let Some(sealed) = sub else {
            return Ok(None);
        };
        if self.key.is_some() {
            if let Some(plain) = self.opened.get(&sealed) {
                return Ok(Some(plain));
            }
        }
        if !has_encrypted(&sealed) {
            return Ok(Some(sealed));
        }
        let mut plain = Subscriber::clone(&sealed);
        self.open(&mut plain)?;
        let plain = Arc::new(plain);
        self.opened.put(sealed, Arc::clone(&plain));
        Ok(Some(plain))
    }

    fn opened(&self, sub: Option<Subscriber>) -> Result<Option<Subscriber>, StoreError> {
        match sub {
            Some(mut s) => {
                self.open(&mut s)?;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }
}

impl<S: SubscriberStore> SubscriberStore for EncryptingStore<S> {
    async fn get(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        self.opened(self.inner.get(imsi).await?)
    }

    async fn find_by_impi(&self, impi: &str) -> Result<Option<Subscriber>, StoreError> {
        self.opened(self.inner.find_by_impi(impi).await?)
    }

    async fn find_by_impu(&self, impu: &str) -> Result<Option<Subscriber>, StoreError> {
        self.opened(self.inner.find_by_impu(impu).await?)
    }

    async fn get_shared(&self, imsi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        self.opened_shared(self.inner.get_shared(imsi).await?)
    }

    async fn settled(&self, imsi: &str) -> Result<(), StoreError> {
        self.inner.settled(imsi).await
    }

    async fn find_by_impi_shared(&self, impi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        self.opened_shared(self.inner.find_by_impi_shared(impi).await?)
    }

    async fn find_by_impu_shared(&self, impu: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        self.opened_shared(self.inner.find_by_impu_shared(impu).await?)
    }

    async fn create(&self, sub: Subscriber) -> Result<(), StoreError> {
        let sub = self.seal_new(sub)?;
        self.inner.create(sub).await
    }

    async fn put(&self, sub: Subscriber) -> Result<(), StoreError> {
        let sub = self.seal_new(sub)?;
        self.inner.put(sub).await
    }

    async fn try_update<T, F>(&self, imsi: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Subscriber) -> Result<T, StoreError> + Send,
        T: Send,
    {
        self.inner
            .try_update(imsi, |record| {
                // `record` is the backend's working copy: an error below writes nothing.
                // With a key, the ciphertext as stored and the plaintext before `f` let
                // `reseal` keep the ciphertext of secrets `f` left alone.
                let sealed = self.key.as_ref().map(|_| owned(secret_fields(record)));
                self.open(record)?;
                let before = sealed.as_ref().map(|_| owned(secret_fields(record)));
                let out = f(record)?;
                self.reseal(sealed.as_deref(), before.as_deref(), record)?;
                Ok(out)
            })
            .await
    }

    async fn delete(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        let removed = self.inner.delete(imsi).await?;
        // The record is gone either way: hand back what can be decrypted.
        Ok(removed.map(|mut s| {
            let raw = s.clone();
            match self.open(&mut s) {
                Ok(()) => s,
                Err(_) => raw,
            }
        }))
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        let mut page = self.inner.list(after, limit).await?;
        for s in &mut page {
            self.open(s)?;
        }
        Ok(page)
    }

    async fn list_stored(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StoreError> {
        self.inner.list_stored(after, limit).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }

    async fn contains(&self, imsi: &str) -> Result<bool, StoreError> {
        self.inner.contains(imsi).await
    }

    async fn contains_many(&self, imsis: &[&str]) -> Result<Vec<bool>, StoreError> {
        self.inner.contains_many(imsis).await
    }

    async fn put_many(&self, subs: Vec<Subscriber>) -> Result<(), StoreError> {
        use rayon::prelude::*;
        // Checked and sealed on both cores: a bulk import's records are independent.
        let sealed = subs
            .into_par_iter()
            .with_min_len(64)
            .map(|s| self.seal_new(s))
            .collect::<Result<Vec<_>, _>>()?;
        self.inner.put_many(sealed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretsKey {
        SecretsKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trips_and_binds_subscriber_and_field() {
        let k = key(1);
        let v = k.encrypt(
            "001010000000001",
            "aka.k",
            "465b5ce8b199b49faa5f0a2ee238a6bc",
        );
        assert!(v.starts_with(PREFIX));
        assert!(!v.contains("465b5ce8"));
        assert_eq!(
            k.decrypt("001010000000001", "aka.k", &v).unwrap(),
            "465b5ce8b199b49faa5f0a2ee238a6bc"
        );
        assert!(k.decrypt("001010000000002", "aka.k", &v).is_err());
        assert!(k.decrypt("001010000000001", "aka.opc", &v).is_err());
        assert!(key(2).decrypt("001010000000001", "aka.k", &v).is_err());
        // A fresh nonce every time.
        assert_ne!(
            v,
            k.encrypt(
                "001010000000001",
                "aka.k",
                "465b5ce8b199b49faa5f0a2ee238a6bc"
            )
        );
    }

    #[test]
    fn rejects_tampered_and_malformed_values() {
        let k = key(1);
        let v = k.encrypt("1", "aka.k", "x");
        let mut raw = B64.decode(&v[PREFIX.len()..]).unwrap();
        raw[13] ^= 1;
        let tampered = format!("{PREFIX}{}", B64.encode(raw));
        assert!(k.decrypt("1", "aka.k", &tampered).is_err());
        assert!(check_shape("enc:v1:!!").is_err());
        assert!(check_shape("enc:v1:AAAA").is_err());
        assert!(check_shape("465b").is_err());
    }

    #[test]
    fn parses_hex_and_base64_keys_and_says_how_to_make_one() {
        let hex = "00".repeat(32);
        let b64 = B64.encode([7u8; 32]);
        SecretsKey::parse(&format!("{hex}\n"), "test").unwrap();
        SecretsKey::parse(&b64, "test").unwrap();
        let e = SecretsKey::parse("abcd", "SICHSS_SECRETS_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SICHSS_SECRETS_KEY") && e.contains("32 octets") && e.contains("urandom"),
            "{e}"
        );
        let e = SecretsKey::parse(&B64.encode([7u8; 16]), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("16 octets"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", key(9)), "SecretsKey(<redacted>)");
    }
}
