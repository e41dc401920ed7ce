//! Export and import of a whole store as JSON lines: one [`Subscriber`] per line, in the
//! serde form of [`super::model`]. This is the backup, migration and exchange format of
//! sichss (backends make no promise about their own files).
//!
//! Import writes through [`SubscriberStore::put_many`] in batches; a line that cannot be
//! parsed or stored stops the import with an error naming the line, after every line
//! before it has been written, and nothing of that line or any later one. Each subscriber
//! is written whole or not at all.
//!
//! Must not depend on: any particular backend, the codec, the Cx layer.

use std::collections::HashSet;
use std::io::{BufRead, Write};

use super::{StoreError, Subscriber, SubscriberStore};

/// Subscribers read per `list` page by [`export_jsonl`].
const EXPORT_PAGE: usize = 1000;
/// Subscribers written per `put_many` call by [`import_jsonl`].
const IMPORT_BATCH: usize = 10_000;

/// Writes every subscriber of `store`, in IMSI order, as one JSON line each; returns the
/// number written. Secrets are written as stored ([`SubscriberStore::list_stored`]): with
/// encryption at rest configured, as `enc:v1:` ciphertext. Pages, so a concurrent writer may or
/// may not be seen, but each line is one consistent record.
pub async fn export_jsonl<S: SubscriberStore, W: Write>(
    store: &S,
    out: W,
) -> Result<u64, StoreError> {
    let write_err =
        |e: std::io::Error| StoreError::Backend(format!("writing the export failed: {e}"));
    let mut out = std::io::BufWriter::new(out);
    let mut after: Option<String> = None;
    let mut n = 0u64;
    loop {
        let page = store.list_stored(after.as_deref(), EXPORT_PAGE).await?;
        for sub in &page {
            serde_json::to_writer(&mut out, sub).map_err(|e| {
                StoreError::Backend(format!(
                    "writing subscriber {} to the export failed: {e}",
                    sub.imsi
                ))
            })?;
            out.write_all(b"\n").map_err(write_err)?;
            n += 1;
        }
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE => after = Some(last.imsi.clone()),
            _ => break,
        }
    }
    out.flush().map_err(write_err)?;
    Ok(n)
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Subscribers written (new and replaced).
    pub imported: u64,
    /// Of those, how many replaced a subscriber with the same IMSI (counted when the
    /// line was read; a concurrent writer may make this approximate).
    pub replaced: u64,
}

/// Why an import stopped: the line at fault, what was wrong with it, and what was
/// imported before it.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {kind} (the {} subscribers before this line were imported)", .imported_before.imported)]
pub struct ImportError {
    /// 1-based line number in the input.
    pub line: u64,
    /// What went wrong.
    #[source]
    pub kind: ImportErrorKind,
    /// What was written before the failing line (durably).
    pub imported_before: ImportReport,
}

/// What was wrong with a line of an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportErrorKind {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Read(#[source] std::io::Error),
    /// The line is not a subscriber in the serde form of the model.
    #[error("not a subscriber record at {path}: {error}")]
    Parse {
        /// Where in the record the parser stopped, e.g. `aka.sqn` or `services.001.impus[0]`
        /// (`$` for the record itself).
        path: String,
        /// The serde error.
        #[source]
        error: serde_json::Error,
    },
    /// The store refused the subscriber (invalid, identity conflict) or failed.
    #[error("{0}")]
    Store(#[source] StoreError),
}

/// Reads JSON lines from `input` and writes each subscriber with `put` semantics (insert or
/// replace). Blank lines are skipped. Stops at the first bad line; see the module docs.
///
/// Lines are read 10,000 at a time and parsed on both cores (rayon), then
/// checked and written in input order, so the outcome is that of a line-by-line import.
pub async fn import_jsonl<S: SubscriberStore, R: BufRead>(
    store: &S,
    mut input: R,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut batch = Batch::default();
    let mut buf = String::new();
    let mut line = 0u64;
    loop {
        // Gather the text of up to IMPORT_BATCH non-blank lines.
        let mut read_error = None;
        while batch.lines.len() < IMPORT_BATCH {
            buf.clear();
            line += 1;
            match input.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => batch.push_text(line, buf.trim()),
                Err(e) => {
                    read_error = Some((line, e));
                    break;
                }
            }
        }
        let full = batch.lines.len() >= IMPORT_BATCH;
        // The lines before the first that does not parse are written in any case.
        let mut bad = None;
        for (i, result) in batch.parse().into_iter().enumerate() {
            match result {
                Ok(sub) => batch.subs.push(sub),
                Err(error) => {
                    bad = Some((i, error));
                    break;
                }
            }
        }
        batch.mark_replaced(store, report).await?;
        if let Some((i, error)) = bad {
            let (line, _, ref range) = batch.lines[i];
            let text = batch.text[range.clone()].to_owned();
            batch.lines.truncate(i);
            batch.write(store, &mut report).await?;
            let at_object_end = error.to_string().starts_with("missing field");
            let path = json_path_at(&text, error.column(), at_object_end);
            return Err(ImportError {
                line,
                kind: ImportErrorKind::Parse { path, error },
                imported_before: report,
            });
        }
        batch.write(store, &mut report).await?;
        if let Some((line, e)) = read_error {
            return Err(ImportError {
                line,
                kind: ImportErrorKind::Read(e),
                imported_before: report,
            });
        }
        if !full {
            return Ok(report);
        }
    }
}

/// Lines read and not yet written.
#[derive(Default)]
struct Batch {
    /// Per non-blank line: its number, whether its subscriber replaces an existing one
    /// (known once checked), and where its text is in `text`.
    lines: Vec<(u64, bool, std::ops::Range<usize>)>,
    /// The lines' text, one after the other (kept to parse a line again if the batch must
    /// be written line by line).
    text: String,
    /// The subscribers of `lines`, in input order, once parsed (handed to `put_many`
    /// without a copy).
    subs: Vec<Subscriber>,
}

impl Batch {
    fn push_text(&mut self, line: u64, text: &str) {
        if text.is_empty() {
            return;
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.lines.push((line, false, start..self.text.len()));
    }

    /// Parses every line, on both cores.
    fn parse(&self) -> Vec<Result<Subscriber, serde_json::Error>> {
        use rayon::prelude::*;
        self.lines
            .par_iter()
            .with_min_len(64)
            .map(|(_, _, range)| serde_json::from_str::<Subscriber>(&self.text[range.clone()]))
            .collect()
    }

    /// Marks the lines of `subs` whose subscriber replaces one: its IMSI was on an earlier
    /// line of the batch, or the store has it (asked once for the whole batch).
    async fn mark_replaced<S: SubscriberStore>(
        &mut self,
        store: &S,
        report: ImportReport,
    ) -> Result<(), ImportError> {
        let imsis: Vec<&str> = self.subs.iter().map(|s| s.imsi.as_str()).collect();
        let stored = store.contains_many(&imsis).await.map_err(|e| ImportError {
            line: self.lines.first().map_or(0, |l| l.0),
            kind: ImportErrorKind::Store(e),
            imported_before: report,
        })?;
        let mut seen = HashSet::with_capacity(imsis.len());
        for (i, imsi) in imsis.iter().enumerate() {
            self.lines[i].1 = !seen.insert(*imsi) || stored[i];
        }
        Ok(())
    }

    /// Writes the parsed subscribers (the first `subs.len()` lines) with one `put_many`;
    /// if that fails, writes them again line by line (put is idempotent) to name the line
    /// at fault. Empties the batch.
    async fn write<S: SubscriberStore>(
        &mut self,
        store: &S,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let subs = std::mem::take(&mut self.subs);
        let mut lines = std::mem::take(&mut self.lines);
        let text = std::mem::take(&mut self.text);
        lines.truncate(subs.len());
        if subs.is_empty() {
            return Ok(());
        }
        if store.put_many(subs).await.is_ok() {
            for (_, existed, _) in &lines {
                report.imported += 1;
                report.replaced += u64::from(*existed);
            }
            return Ok(());
        }
        for (line, existed, range) in lines {
            let result = match serde_json::from_str::<Subscriber>(&text[range]) {
                Ok(sub) => store.put(sub).await,
                Err(e) => Err(StoreError::Backend(format!(
                    "the line parsed before cannot be parsed again: {e}"
                ))),
            };
            if let Err(e) = result {
                return Err(ImportError {
                    line,
                    kind: ImportErrorKind::Store(e),
                    imported_before: *report,
                });
            }
            report.imported += 1;
            report.replaced += u64::from(existed);
        }
        Ok(())
    }
}

/// The path (`services.001.impus[1]`) of the JSON value being read at 1-based `column`
/// of the one-line document `text`, for error messages; `$` at the top level. With
/// `at_object_end` (a missing field, reported at the closing brace) it names the object.
fn json_path_at(text: &str, column: usize, at_object_end: bool) -> String {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let bytes = text.as_bytes();
    let end = column.saturating_sub(1).min(bytes.len());
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if let Some(Frame::Object {
                    key,
                    want_key: true,
                }) = stack.last_mut()
                {
                    let raw = &bytes[start..i.min(bytes.len())];
                    *key = Some(String::from_utf8_lossy(raw).into_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if at_object_end {
        if let Some(Frame::Object { key, .. }) = stack.last_mut() {
            *key = None;
        }
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if path.is_empty() {
        "$".to_owned()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::json_path_at;

    fn path_of_error(text: &str) -> String {
        let e = serde_json::from_str::<super::Subscriber>(text).unwrap_err();
        json_path_at(text, e.column(), e.to_string().starts_with("missing field"))
    }

    #[test]
    fn names_the_field_of_a_type_error() {
        let text = r#"{"imsi":"1234567","home_domain":"d","default_scheme":"SIP Digest","aka":{"k":"00","amf":"8000","sqn":"x"},"services":{}}"#;
        assert_eq!(path_of_error(text), "aka.sqn");
        let text = r#"{"imsi":"1234567","home_domain":"d","default_scheme":"SIP Digest","services":{"001":{"name":"VoLTE","impi":"a@b","impus":["sip:a@b",7]}}}"#;
        assert_eq!(path_of_error(text), "services.001.impus[1]");
    }

    #[test]
    fn missing_field_is_reported_at_its_object() {
        let text = r#"{"home_domain":"d","default_scheme":"SIP Digest","services":{}}"#;
        let e = serde_json::from_str::<super::Subscriber>(text).unwrap_err();
        assert!(e.to_string().contains("imsi"), "{e}");
        assert_eq!(path_of_error(text), "$");
        let text = r#"{"imsi":"1234567","home_domain":"d","default_scheme":"SIP Digest","services":{"001":{"name":"VoLTE","impus":["sip:a@b"]}}}"#;
        assert_eq!(path_of_error(text), "services.001");
    }
}
