//! Where a PostgreSQL store is: a `postgres://` URL, with sichss's own `schema` parameter,
//! parsed once and shown only with its password hidden.
//!
//! ```text
//! postgres://[user[:password]@]host[:port]/database[?param=value&…][&schema=NAME]
//! ```
//!
//! Every parameter but `schema` is libpq's, as tokio-postgres reads them (`sslmode`,
//! `connect_timeout`, `application_name`, `options`, …). `schema=NAME` puts sichss's tables
//! in schema NAME (created by the migrations) instead of the database's default search
//! path, so several HSS deployments, or tests, can share one database.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::super::StoreError;

/// The accepted form, quoted by every refusal.
pub const URL_FORM: &str =
    "postgres://[user[:password]@]host[:port]/database[?schema=NAME], e.g. postgres://sichss@127.0.0.1:5432/sichss";

/// A parsed PostgreSQL store location. Its `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct PgLocation {
    config: tokio_postgres::Config,
    schema: Option<String>,
    redacted: String,
}

impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgLocation").field(&self.redacted).finish()
    }
}

impl fmt::Display for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl FromStr for PgLocation {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::parse(s)
    }
}

fn invalid(problem: String) -> StoreError {
    StoreError::Invalid {
        field: "store.url".to_owned(),
        problem,
    }
}

impl PgLocation {
    /// Parses a `postgres://` or `postgresql://` URL.
    ///
    /// # Errors
    /// `Invalid` on `store.url`, saying what is wrong and quoting [`URL_FORM`]; the
    /// message never contains the password.
    pub fn parse(url: &str) -> Result<PgLocation, StoreError> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(format!(
                "{:?} is not a PostgreSQL URL; expected {URL_FORM}",
                redact(url)
            )));
        }
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut schema = None;
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("schema", name)) => {
                    check_schema(name)?;
                    schema = Some(name.to_owned());
                }
                _ if pair.is_empty() => {}
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            invalid(format!(
                "{:?} is not a valid PostgreSQL URL ({}); expected {URL_FORM}",
                redact(url),
                super::describe(&e)
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(invalid(format!(
                "{:?} names no host; expected {URL_FORM}",
                redact(url)
            )));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("sichss");
        }
        if let Some(name) = &schema {
            let search_path = format!("-c search_path={name}");
            let options = match config.get_options() {
                Some(o) if !o.is_empty() => format!("{o} {search_path}"),
                _ => search_path,
            };
            config.options(options);
        }
        Ok(PgLocation {
            config,
            schema,
            redacted: redact(url),
        })
    }

    /// The same database with sichss's tables in schema `name` (tests give each their own).
    ///
    /// # Errors
    /// `Invalid` when `name` is not a plain lower-case identifier.
    pub fn with_schema(&self, name: &str) -> Result<PgLocation, StoreError> {
        let base = match self.redacted.split_once('?') {
            Some((b, q)) => {
                let q: Vec<&str> = q.split('&').filter(|p| !p.starts_with("schema=")).collect();
                if q.is_empty() {
                    b.to_owned()
                } else {
                    format!("{b}?{}", q.join("&"))
                }
            }
            None => self.redacted.clone(),
        };
        check_schema(name)?;
        let mut config = self.config.clone();
        let search_path = format!("-c search_path={name}");
        let options = match (self.schema.as_deref(), config.get_options()) {
            (Some(old), Some(o)) => o.replace(&format!("-c search_path={old}"), &search_path),
            (None, Some(o)) if !o.is_empty() => format!("{o} {search_path}"),
            _ => search_path,
        };
        config.options(options);
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(PgLocation {
            config,
            schema: Some(name.to_owned()),
            redacted: format!("{base}{sep}schema={name}"),
        })
    }

    /// The connection settings for tokio-postgres.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The schema given with `schema=`, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The URL with its password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// A schema name: a plain lower-case SQL identifier, so it needs no quoting anywhere.
fn check_schema(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "schema={name:?}: a schema name is 1 to 63 characters of a-z, 0-9 and _, \
             not starting with a digit, e.g. schema=sichss"
        )))
    }
}

/// `url` with the password of its user-info and any `password=` parameter replaced by
/// `***`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|p| {
                    if p.starts_with("password=") {
                        "password=***".to_owned()
                    } else {
                        p.to_owned()
                    }
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_with_schema_and_hides_the_password() {
        let l = PgLocation::parse("postgres://hss:s3cret@db.example.org:6432/ims?schema=sichss")
            .unwrap();
        assert_eq!(l.schema(), Some("sichss"));
        assert_eq!(
            l.redacted(),
            "postgres://hss:***@db.example.org:6432/ims?schema=sichss"
        );
        assert!(!format!("{l:?} {l}").contains("s3cret"));
        assert_eq!(l.config().get_dbname(), Some("ims"));
        assert_eq!(l.config().get_options(), Some("-c search_path=sichss"));
        assert_eq!(l.config().get_password(), Some(&b"s3cret"[..]));
    }

    #[test]
    fn keeps_libpq_parameters_and_redacts_password_parameter() {
        let l = PgLocation::parse(
            "postgresql://hss@127.0.0.1/ims?connect_timeout=3&password=pw&schema=a_1",
        )
        .unwrap();
        assert_eq!(
            l.config().get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(
            l.redacted(),
            "postgresql://hss@127.0.0.1/ims?connect_timeout=3&password=***&schema=a_1"
        );
    }

    #[test]
    fn refuses_other_schemes_bad_schema_and_unknown_parameters_naming_the_form() {
        for bad in [
            "mysql://u:pw@h/db",
            "/var/lib/sichss",
            "postgres://u:pw@h/db?schema=Bad-Name",
            "postgres://u:pw@h/db?schema=",
            "postgres://u:pw@h/db?frobnicate=1",
        ] {
            let e = PgLocation::parse(bad).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("store.url: "), "{text}");
            assert!(!text.contains("pw@"), "password leaked: {text}");
            assert!(
                text.contains("postgres://[user[:password]@]host") || text.contains("schema name"),
                "{text}"
            );
        }
    }

    #[test]
    fn with_schema_replaces_the_schema() {
        let l = PgLocation::parse("postgres://u:pw@h/db?schema=one&sslmode=disable").unwrap();
        let m = l.with_schema("two").unwrap();
        assert_eq!(m.schema(), Some("two"));
        assert_eq!(m.config().get_options(), Some("-c search_path=two"));
        assert_eq!(
            m.redacted(),
            "postgres://u:***@h/db?sslmode=disable&schema=two"
        );
    }
}
