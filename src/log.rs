//! The log's writer and format: lines are appended to a buffer in memory that one thread
//! writes to stderr, a batch per write, instead of one `write(2)` per line under stderr's
//! lock; [`Fields`] writes the fields and [`Clock`] the timestamps, both cheaper than
//! `tracing_subscriber`'s defaults (the same layout; quotes only where a text needs them).
//! The CLI installs it ([`buffered_stderr`], [`allow_direct`]) for every command.
//!
//! `serve` logs one line per Cx request at `info` (the command, the IMPI, the result and
//! the latency). Written one by one, at 60,000 requests a second that was as many system
//! calls, with both runtime workers queueing for stderr's lock; with the defaults' field
//! formatting, the line cost about 15 % of the throughput. The Cx layer now writes that
//! line with [`direct`]: formatted here, as the installed subscriber would format it, and
//! appended to the buffer without going through `tracing`'s dispatch and formatter
//! (BENCHMARKS.md, session 14).
//!
//! Nothing is dropped: a writer that finds [`HIGH_WATER`] octets waiting blocks until the
//! thread has taken them. A line reaches stderr within about [`GATHER`] of being logged,
//! [`finish`] writes out what is left when the command ends, and a panic writes the
//! buffer before its own message (so that the log reads in order).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How long the writing thread lets lines gather after the first of a batch arrives.
pub const GATHER: Duration = Duration::from_millis(1);
/// Octets waiting at which a logging thread blocks until the writer has taken them.
pub const HIGH_WATER: usize = 4 << 20;

/// The buffer shared by the loggers and the writing thread.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer stops being empty, and when it is taken.
    changed: Condvar,
    /// Held by whoever writes to stderr, from taking the buffer until it is written, so that
    /// batches reach stderr in the order they were taken.
    out: Mutex<()>,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// [`finish`] ran: the thread writes what is left and stops.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Bytes and a flag, consistent after any panic: recover from poisoning.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn append(&self, line: &[u8]) {
        let mut st = self
            .changed
            .wait_while(lock(&self.state), |st| {
                st.pending.len() >= HIGH_WATER && !st.closed
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.closed {
            // After `finish`: nobody will write the buffer any more; write the line now.
            drop(st);
            let _out = lock(&self.out);
            let _ = io::stderr().write_all(line);
            return;
        }
        let was_empty = st.pending.is_empty();
        st.pending.extend_from_slice(line);
        drop(st);
        if was_empty {
            self.changed.notify_all();
        }
    }

    /// Takes what is pending and writes it to stderr; returns whether the log is closed.
    fn write_out(&self, spare: &mut Vec<u8>) -> bool {
        let _out = lock(&self.out);
        let closed = {
            let mut st = lock(&self.state);
            std::mem::swap(&mut st.pending, spare);
            st.closed
        };
        self.changed.notify_all();
        if !spare.is_empty() {
            let _ = io::stderr().write_all(spare);
            spare.clear();
        }
        closed
    }

    /// The writing thread: waits for a line, lets more gather for [`GATHER`], writes them.
    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            let closed = self
                .changed
                .wait_while(lock(&self.state), |st| st.pending.is_empty() && !st.closed)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .closed;
            if !closed {
                std::thread::sleep(GATHER);
            }
            if self.write_out(&mut spare) {
                return;
            }
            if spare.capacity() > HIGH_WATER {
                spare = Vec::new();
            }
        }
    }
}

/// The log's timestamps: RFC 3339 in UTC with microseconds, as `tracing_subscriber`'s
/// default writes them (`2026-11-27T13:55:41.421176Z`), with the date and time of day
/// formatted once a second per thread instead of for every line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

thread_local! {
    /// The second last formatted on this thread, and its text up to the fraction's dot.
    static SECOND: std::cell::RefCell<(u64, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

impl tracing_subscriber::fmt::time::FormatTime for Clock {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        timestamp(w)
    }
}

/// Writes the time now as [`Clock`] does.
fn timestamp(w: &mut impl std::fmt::Write) -> std::fmt::Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            second_text(secs, &mut cached.1);
            cached.0 = secs;
        }
        // The microseconds' six digits and the zone, without `fmt`'s machinery.
        w.write_str(&cached.1)?;
        w.write_str(decimal(now.subsec_micros().into(), 6, &mut [0; 20]))?;
        w.write_char('Z')
    })
}

/// `n` in decimal, zero-padded to `width` digits (at most 20), written into `buf`.
fn decimal(mut n: u64, width: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    while at > 0 && (n > 0 || at + width.clamp(1, 20) > buf.len()) {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// `secs` after the Unix epoch as `YYYY-MM-DDTHH:MM:SS.` (UTC), appended to `out`.
fn second_text(secs: u64, out: &mut String) {
    out.push_str(&crate::cli::decode::date_time(
        i64::try_from(secs).unwrap_or(i64::MAX),
    ));
    out.push('.');
}

/// The log's fields, written without `Debug`'s machinery for text and numbers:
/// `name=value`, separated by spaces, the message first and without its name.
///
/// A text value (a peer's IMPI, say) is written as it is when it is plain (printable ASCII
/// without quotes, backslashes or spaces) and quoted and escaped as Rust's `Debug` does it
/// otherwise, so that no peer can break a line or forge one; any other value (a `Display`
/// or `Debug` one, an error) has its control characters escaped. `tracing_subscriber`'s
/// default quotes and escapes every text character by character, and paints every name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields;

/// Writes one event's or span's fields (see [`Fields`]).
pub struct FieldsVisitor<'a> {
    writer: tracing_subscriber::fmt::format::Writer<'a>,
    first: bool,
    result: std::fmt::Result,
}

impl<'a> tracing_subscriber::field::MakeVisitor<tracing_subscriber::fmt::format::Writer<'a>>
    for Fields
{
    type Visitor = FieldsVisitor<'a>;
    fn make_visitor(&self, writer: tracing_subscriber::fmt::format::Writer<'a>) -> Self::Visitor {
        FieldsVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// Whether `text` can go into the log as it is: printable ASCII, no `"`, `\` or space.
pub fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Writes `text` as a field's value: as it is when it [`is_plain`], else quoted and
/// escaped as `Debug` does it.
fn write_text(w: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    if is_plain(text) {
        w.write_str(text)
    } else {
        write!(w, "{text:?}")
    }
}

/// A `fmt::Write` that escapes control characters (`\n`, `\r`, `\t`, `\u{1b}`, …) on
/// their way to the log line.
struct Escaping<'a, W>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !s.chars().any(char::is_control) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl FieldsVisitor<'_> {
    /// The separating space and `name=`; `false` for a field not to write.
    fn name(&mut self, field: &tracing::field::Field) -> bool {
        let name = field.name();
        // `log` records' metadata, already in the line's target and level.
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !self.first {
            self.result = self.writer.write_char(' ');
        }
        self.first = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl tracing::field::Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write as _;
        if !self.name(field) {
            return;
        }
        self.result = if field.name() == "message" {
            Escaping(&mut self.writer).write_str(value)
        } else {
            write_text(&mut self.writer, value)
        };
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if self.name(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if self.name(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if self.name(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        use std::fmt::Write as _;
        if self.name(field) {
            self.result = write!(Escaping(&mut self.writer), "{value}");
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if self.name(field) {
            self.result = write!(Escaping(&mut self.writer), "{value:?}");
        }
    }
}

impl tracing_subscriber::field::VisitOutput<std::fmt::Result> for FieldsVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.result
    }
}

impl tracing_subscriber::field::VisitFmt for FieldsVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        &mut self.writer
    }
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The `MakeWriter` of [`tracing_subscriber::fmt`]: each event's formatted line is
/// appended to the shared buffer.
#[derive(Clone)]
pub struct BufferedStderr(Arc<Shared>);

/// One event's writer (the formatter writes a whole line at once).
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedStderr {
    type Writer = Line<'a>;
    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

/// The process's buffered stderr, its writing thread started on first use (and a panic
/// hook that writes the buffer first). `None` when the thread cannot be started: log
/// straight to stderr then.
pub fn buffered_stderr() -> Option<BufferedStderr> {
    if let Some(shared) = SHARED.get() {
        return Some(BufferedStderr(Arc::clone(shared)));
    }
    let shared = Arc::new(Shared::default());
    let runner = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("sichss-log".to_owned())
        .spawn(move || runner.run())
        .ok()?;
    if SHARED.set(Arc::clone(&shared)).is_err() {
        // Another thread got there first; this one's writer finds nothing to write.
        finish_shared(&shared);
        return SHARED.get().map(|s| BufferedStderr(Arc::clone(s)));
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        hook(info);
    }));
    Some(BufferedStderr(shared))
}

/// Writes what is pending now (the writing thread goes on).
pub fn flush() {
    if let Some(shared) = SHARED.get() {
        shared.write_out(&mut Vec::new());
    }
}

fn finish_shared(shared: &Shared) {
    lock(&shared.state).closed = true;
    shared.changed.notify_all();
    shared.write_out(&mut Vec::new());
}

/// Writes what is pending and stops the writing thread; lines logged afterwards go to
/// stderr directly. Called when the command ends.
pub fn finish() {
    if let Some(shared) = SHARED.get() {
        finish_shared(shared);
    }
}

/// The shared buffer, once the CLI has installed the subscriber whose lines [`direct`]
/// writes as they would be formatted.
static DIRECT: OnceLock<Arc<Shared>> = OnceLock::new();

/// Lets [`direct`] write into `writer`'s buffer. The caller has installed, as the global
/// subscriber, `tracing_subscriber::fmt` with `writer`, [`Clock`], [`Fields`], no colours
/// and the default layout (level, target), which is how [`direct`] formats its lines.
pub fn allow_direct(writer: &BufferedStderr) {
    let _ = DIRECT.set(Arc::clone(&writer.0));
}

/// A field's value in a [`direct`] line.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// A text: as it is when it [`is_plain`], else quoted and escaped (as `name = text`).
    Text(&'a str),
    /// A number.
    U64(u64),
    /// A displayed value, control characters escaped (as `name = %value`).
    Display(&'a dyn std::fmt::Display),
}

thread_local! {
    /// The line [`direct`] is formatting; kept for the thread's next one.
    static DIRECT_LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Logs one event straight into the buffer: the line `tracing::event!(target: target,
/// level, fields…, message)` gives through the installed subscriber, formatted here and
/// appended without `tracing`'s dispatch, filter and formatter (a third of the cost of
/// `serve`'s line per Cx request). The caller has checked that `level` is enabled for its
/// callsite (`tracing::enabled!`). Returns `false`, writing nothing, when that subscriber
/// is not installed (tests, a terminal's colours, another command): log through `tracing`
/// then.
pub fn direct(
    level: tracing::Level,
    target: &str,
    message: &str,
    fields: &[(&str, Value<'_>)],
) -> bool {
    let Some(shared) = DIRECT.get() else {
        return false;
    };
    DIRECT_LINE.with(|cell| {
        let mut line = cell.borrow_mut();
        line.clear();
        if timestamp(&mut *line).is_ok()
            && format_event(&mut line, level, target, message, fields).is_ok()
        {
            shared.append(line.as_bytes());
        }
        if line.capacity() > 4096 {
            *line = String::new();
        }
    });
    true
}

/// What follows the timestamp in a line of the installed subscriber: level, target, the
/// message and the fields, and the newline.
fn format_event(
    line: &mut String,
    level: tracing::Level,
    target: &str,
    message: &str,
    fields: &[(&str, Value<'_>)],
) -> std::fmt::Result {
    use std::fmt::Write as _;
    // As `tracing_subscriber` writes the level: right-aligned in five columns.
    line.push_str(match level {
        tracing::Level::ERROR => " ERROR ",
        tracing::Level::WARN => "  WARN ",
        tracing::Level::INFO => "  INFO ",
        tracing::Level::DEBUG => " DEBUG ",
        tracing::Level::TRACE => " TRACE ",
    });
    line.push_str(target);
    line.push_str(": ");
    Escaping(&mut *line).write_str(message)?;
    for (name, value) in fields {
        line.push(' ');
        line.push_str(name);
        line.push('=');
        match value {
            Value::Text(text) => write_text(&mut *line, text)?,
            Value::U64(n) => line.push_str(decimal(*n, 1, &mut [0; 20])),
            Value::Display(v) => write!(Escaping(&mut *line), "{v}")?,
        }
    }
    line.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `f` logs at `info` and above, formatted as `serve` formats them.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                lock(&self.0).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_timer(Clock)
            .fmt_fields(Fields)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lock(&out.0).clone()).unwrap();
        text
    }

    #[test]
    fn plain_texts_are_logged_as_they_are_and_anything_else_quoted_and_escaped() {
        let impi = "001010000000480@ims.sic001.mnc001.mcc001.3gppnetwork.org";
        let line = logged(|| {
            tracing::info!(
                cmd = "UAR",
                user = impi,
                result = 2001_u32,
                micros = 12_u128,
                "cx"
            )
        });
        assert!(
            line.ends_with(&format!(
                " INFO sichss::log::tests: cx cmd=UAR user={impi} result=2001 micros=12\n"
            )),
            "{line}"
        );
        for forged in [
            "a\n2026-11-27T00:00:00Z  INFO forged",
            "x\" result=2001",
            "with space",
            "back\\slash",
            "caf\u{e9}",
            "",
        ] {
            assert!(!is_plain(forged), "{forged}");
            let line = logged(|| tracing::info!(user = forged, "cx"));
            assert!(line.ends_with(&format!(" cx user={forged:?}\n")), "{line}");
            assert_eq!(line.matches('\n').count(), 1, "{line}");
        }
    }

    #[test]
    fn displayed_values_errors_and_messages_have_their_control_characters_escaped() {
        let err = io::Error::other("bad\nINFO forged");
        let line = logged(|| {
            tracing::warn!(error = %err, other = ?"x", ok = true, n = -3_i64, "one\rtwo");
        });
        assert!(
            line.ends_with(" WARN sichss::log::tests: one\\rtwo error=bad\\nINFO forged other=\"x\" ok=true n=-3\n"),
            "{line}"
        );
        let line =
            logged(|| tracing::info!(error = &err as &(dyn std::error::Error + 'static), "e"));
        assert!(line.ends_with(" e error=bad\\nINFO forged\n"), "{line}");
    }

    /// What [`direct`] writes after the timestamp for an event of this module.
    fn formatted(level: tracing::Level, message: &str, fields: &[(&str, Value<'_>)]) -> String {
        let mut line = String::new();
        format_event(&mut line, level, module_path!(), message, fields).unwrap();
        line
    }

    #[test]
    fn a_direct_line_reads_as_the_same_event_logged_through_tracing() {
        let impi = "001010000000480@ims.sic001.mnc001.mcc001.3gppnetwork.org";
        let forged = "a\n2026-11-27T00:00:00Z  INFO forged \"x\" \\";
        let err = io::Error::other("bad\nINFO forged");
        for user in [impi, forged, "caf\u{e9}", ""] {
            let through = logged(|| {
                tracing::info!(
                    cmd = "UAR",
                    user,
                    result = 2001_u32,
                    micros = 12_u64,
                    error = %err,
                    "cx"
                )
            });
            let fields = [
                ("cmd", Value::Text("UAR")),
                ("user", Value::Text(user)),
                ("result", Value::U64(2001)),
                ("micros", Value::U64(12)),
                ("error", Value::Display(&err)),
            ];
            let direct = formatted(tracing::Level::INFO, "cx", &fields);
            // After the timestamp (27 characters, which `Clock` writes for both).
            assert_eq!(&through[27..], direct, "{user:?}");
        }
        for n in [0, 7, 10, 2001, u64::from(u32::MAX), u64::MAX] {
            let through = logged(|| tracing::warn!(n, "one\rtwo"));
            let direct = formatted(tracing::Level::WARN, "one\rtwo", &[("n", Value::U64(n))]);
            assert_eq!(&through[27..], direct, "{n}");
        }
        let through = logged(|| tracing::error!("e"));
        assert_eq!(&through[27..], formatted(tracing::Level::ERROR, "e", &[]));
    }

    #[test]
    fn seconds_are_written_as_rfc_3339_dates_and_times_in_utc() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00."),
            (951_782_400, "2000-02-29T00:00:00."),
            (951_868_799, "2000-02-29T23:59:59."),
            (1_795_795_200, "2026-11-27T16:00:00."),
            (1_798_761_599, "2026-12-31T23:59:59."),
            (4_102_444_800, "2100-01-01T00:00:00."),
        ] {
            let mut text = String::new();
            second_text(secs, &mut text);
            assert_eq!(text, want, "{secs}");
        }
    }

    #[test]
    fn a_timestamp_has_the_microseconds_after_the_cached_second() {
        use tracing_subscriber::fmt::time::FormatTime;
        let mut line = String::new();
        Clock
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut line))
            .unwrap();
        // e.g. 2026-11-27T13:55:41.421176Z
        assert_eq!(line.len(), 27, "{line}");
        assert!(line.ends_with('Z') && line.as_bytes()[19] == b'.', "{line}");
        assert!(line[20..26].bytes().all(|b| b.is_ascii_digit()), "{line}");
    }

    #[test]
    fn lines_are_taken_whole_and_in_order_and_nothing_is_left_after_finish() {
        let shared = Arc::new(Shared::default());
        let runner = Arc::clone(&shared);
        let mut taken = Vec::new();
        shared.append(b"one\n");
        shared.append(b"two\n");
        // What the writing thread would write, taken the way it takes it.
        std::mem::swap(&mut lock(&shared.state).pending, &mut taken);
        assert_eq!(taken, b"one\ntwo\n");
        shared.append(b"three\n");
        let t = std::thread::spawn(move || runner.run());
        finish_shared(&shared);
        t.join().unwrap();
        assert!(lock(&shared.state).pending.is_empty());
        assert!(lock(&shared.state).closed);
    }

    #[test]
    fn a_logger_past_the_high_water_mark_waits_for_the_writer_and_loses_nothing() {
        let shared = Arc::new(Shared::default());
        let big = vec![b'x'; HIGH_WATER];
        shared.append(&big);
        let logger = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || shared.append(b"after\n"))
        };
        // The logger blocks: the buffer is at the mark.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lock(&shared.state).pending.len(), HIGH_WATER);
        let mut taken = Vec::new();
        std::mem::swap(&mut lock(&shared.state).pending, &mut taken);
        shared.changed.notify_all();
        logger.join().unwrap();
        assert_eq!(taken.len(), HIGH_WATER);
        assert_eq!(lock(&shared.state).pending, b"after\n");
    }
}
