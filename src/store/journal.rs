//! The write-ahead journal of the sled store: the durable record of subscriber updates
//! between two checkpoints (see the "Journal and checkpoints" section of [`super::sled`]).
//!
//! A journal file holds entries, appended in sequence-number order and made durable by
//! `fdatasync` (group commit: one sync covers every entry appended before it):
//!
//! | octets | field                                                   |
//! |--------|---------------------------------------------------------|
//! | 1      | magic `0xA5`                                            |
//! | 4      | payload length, little-endian                           |
//! | 4      | CRC-32 (IEEE) of the sequence number and payload, LE    |
//! | 8      | sequence number (the record's revision), little-endian  |
//! | n      | payload: the whole subscriber record (its store encoding) |
//!
//! Reading stops at the first entry that is incomplete or fails its CRC: that is the tail a
//! crash tore while writing, and nothing after it was acknowledged.
//!
//! The file is zero-filled ahead of its entries, [`PREALLOCATE`] octets at a time, and
//! entries are written over the zeros: an `fdatasync` after an append that grew the file
//! had to commit the new size to the file system's own journal as well, and cost about half
//! as much again (per 30 KB append and `fdatasync` on the machine of BENCHMARKS.md: 73
//! against 47 µs of system time, 207 against 140 µs of wall time, the zero-filling
//! included). Reading stops at the zeros, which are not a torn entry.
//!
//! Pure std: no sled, no tokio.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u8 = 0xA5;
const HEADER: usize = 1 + 4 + 4 + 8;
/// Longest payload accepted when reading (a subscriber record is a few KiB).
const MAX_PAYLOAD: usize = 16 << 20;
/// Octets zero-filled ahead of the entries at a time.
pub(crate) const PREALLOCATE: u64 = 1 << 20;

/// The block of zeros a fill writes at a time.
const ZERO_BLOCK: usize = 64 * 1024;

/// File name of journal number `n` in `dir`.
pub(crate) fn path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("sichss-journal.{n:016}"))
}

/// Numbers of the journal files present in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("sichss-journal."))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends one entry to `buf`.
pub(crate) fn push_entry(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a subscriber record is far below 4 GiB");
    let mut crc = Crc32::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    buf.reserve(HEADER + payload.len());
    buf.push(MAGIC);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finish().to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The entries of a journal file's bytes, up to the first torn or corrupt one; also returns
/// how many octets after the last good entry were ignored (0 when they are all zero: the
/// file's preallocated tail).
pub(crate) fn entries(bytes: &[u8]) -> (Vec<(u64, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= HEADER && rest[0] == MAGIC {
        let len = u32::from_le_bytes(rest[1..5].try_into().expect("4 octets")) as usize;
        let crc = u32::from_le_bytes(rest[5..9].try_into().expect("4 octets"));
        let seq_bytes = &rest[9..17];
        if len > MAX_PAYLOAD || rest.len() - HEADER < len {
            break;
        }
        let payload = &rest[HEADER..HEADER + len];
        let mut check = Crc32::new();
        check.update(seq_bytes);
        check.update(payload);
        if check.finish() != crc {
            break;
        }
        out.push((
            u64::from_le_bytes(seq_bytes.try_into().expect("8 octets")),
            payload,
        ));
        rest = &rest[HEADER + len..];
    }
    let torn = if rest.iter().all(|&b| b == 0) {
        0
    } else {
        rest.len()
    };
    (out, torn)
}

/// Reads a whole journal file.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An open journal file, written by the group-commit flusher only.
#[derive(Debug)]
pub(crate) struct JournalFile {
    file: File,
    /// Octets written so far (all of them whole entries).
    pub(crate) len: u64,
    /// Octets of the file zero-filled so far (from the start); entries are written over
    /// them.
    allocated: u64,
    /// A sync failed: what the file holds is unknown (Linux may drop the dirty pages of a
    /// failed `fdatasync` and report the next one as a success), so no later append may be
    /// acknowledged from it. The next checkpoint replaces the file.
    broken: bool,
}

impl JournalFile {
    /// Creates journal `n` in `dir` (empty), and makes its directory entry durable.
    pub(crate) fn create(dir: &Path, n: u64) -> io::Result<JournalFile> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path(dir, n))?;
        File::open(dir)?.sync_all()?;
        Ok(JournalFile {
            file,
            len: 0,
            allocated: 0,
            broken: false,
        })
    }

    /// Appends `bytes` (whole entries) and waits until they are on disk.
    ///
    /// A write that fails part-way is cut off again, so that a torn entry never sits before
    /// later, acknowledged ones (reading stops at the first torn entry); if even that
    /// fails, or a sync fails, the file is marked broken and every later append fails
    /// until the next checkpoint replaces it.
    pub(crate) fn append_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "the journal file failed earlier; changes wait for the next checkpoint to start a new one",
            ));
        }
        let end = self.len + bytes.len() as u64;
        let written = self
            .preallocate(end)
            .and_then(|()| self.file.write_all_at(bytes, self.len));
        if let Err(e) = written {
            // Cut back to the entries written so far (the zeros ahead go too; they are
            // written again before the next append needs them).
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            self.allocated = self.allocated.min(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        if let Err(e) = self.file.sync_data() {
            self.broken = true;
            return Err(e);
        }
        Ok(())
    }

    /// Zero-fills the file up to at least `end`, [`PREALLOCATE`] octets at a time; the
    /// `fdatasync` of the append that follows makes them durable with it.
    fn preallocate(&mut self, end: u64) -> io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = end.div_ceil(PREALLOCATE) * PREALLOCATE;
        // From one static block of zeros: a fresh megabyte of zeros per fill cost 256 page
        // faults (half of the server's, at 70,000 requests/s) and its clearing.
        static ZEROS: [u8; ZERO_BLOCK] = [0; ZERO_BLOCK];
        while self.allocated < target {
            let n = (target - self.allocated).min(ZERO_BLOCK as u64);
            self.file
                .write_all_at(&ZEROS[..n as usize], self.allocated)?;
            self.allocated += n;
        }
        Ok(())
    }

    /// A journal file over `file` (tests of the failure handling).
    #[cfg(test)]
    fn over(file: File) -> JournalFile {
        JournalFile {
            file,
            len: 0,
            allocated: 0,
            broken: false,
        }
    }
}

/// CRC-32 (IEEE 802.3), hardware-accelerated where the CPU allows.
struct Crc32(crc32fast::Hasher);

impl Crc32 {
    fn new() -> Self {
        Crc32(crc32fast::Hasher::new())
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> u32 {
        self.0.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn entries_read_back_in_order() {
        let mut buf = Vec::new();
        push_entry(&mut buf, 7, b"{\"a\":1}");
        push_entry(&mut buf, 9, b"");
        push_entry(&mut buf, 12, b"xyz");
        let (got, ignored) = entries(&buf);
        assert_eq!(
            got,
            vec![(7, &b"{\"a\":1}"[..]), (9, &b""[..]), (12, &b"xyz"[..])]
        );
        assert_eq!(ignored, 0);
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_journal_without_losing_earlier_entries() {
        let mut buf = Vec::new();
        push_entry(&mut buf, 1, b"first");
        let good = buf.len();
        push_entry(&mut buf, 2, b"second");
        for cut in good..buf.len() {
            let (got, ignored) = entries(&buf[..cut]);
            assert_eq!(got, vec![(1, &b"first"[..])], "cut at {cut}");
            assert_eq!(ignored, cut - good);
        }
        let mut flipped = buf.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(entries(&flipped).0, vec![(1, &b"first"[..])]);
        // A length field pointing past the end, or absurdly large, is a torn entry too.
        let mut huge = buf[..good].to_vec();
        huge.extend_from_slice(&[MAGIC, 0xFF, 0xFF, 0xFF, 0x7F]);
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(entries(&huge).0.len(), 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 1;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    if i % 23 == 0 {
                        MAGIC
                    } else {
                        (x >> 16) as u8
                    }
                })
                .collect();
            let _ = entries(&bytes);
        }
    }

    #[test]
    fn a_failed_write_leaves_no_torn_entry_and_a_file_that_cannot_be_repaired_refuses_appends() {
        let dir = std::env::temp_dir().join(format!("sichss-journal-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut entry = Vec::new();
        push_entry(&mut entry, 1, b"record");
        // Writing through a read-only handle fails, and so does cutting it back.
        JournalFile::create(&dir, 1).unwrap();
        let mut j = JournalFile::over(File::open(path(&dir, 1)).unwrap());
        assert!(j.append_durably(&entry).is_err());
        let again = j.append_durably(&entry).unwrap_err();
        assert!(again.to_string().contains("next checkpoint"), "{again}");
        assert_eq!(j.len, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_is_zero_filled_ahead_and_its_zeros_are_not_a_torn_tail() {
        let dir =
            std::env::temp_dir().join(format!("sichss-journal-prealloc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = JournalFile::create(&dir, 1).unwrap();
        let mut expected = Vec::new();
        // Past one preallocation unit, so that the file grows once more on the way.
        let payload = vec![0x5a; 100_000];
        for seq in 1..=15u64 {
            let mut buf = Vec::new();
            push_entry(&mut buf, seq, &payload);
            f.append_durably(&buf).unwrap();
            expected.push(seq);
        }
        let bytes = read(&path(&dir, 1)).unwrap();
        assert_eq!(bytes.len() as u64 % PREALLOCATE, 0);
        assert!(bytes.len() as u64 >= f.len);
        // Filled a block of zeros at a time, to the end of the unit.
        assert!(bytes[f.len as usize..].iter().all(|b| *b == 0));
        let (got, torn) = entries(&bytes);
        assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), expected);
        assert!(got.iter().all(|(_, p)| *p == payload.as_slice()));
        assert_eq!(torn, 0, "the zeros after the entries are not torn");
        // Half an entry over the zeros is a torn tail, as at the end of a file.
        let mut torn_bytes = bytes.clone();
        let half = &bytes[..(HEADER + payload.len()) / 2];
        torn_bytes[f.len as usize..f.len as usize + half.len()].copy_from_slice(half);
        let (got, torn) = entries(&torn_bytes);
        assert_eq!(got.len(), 15);
        assert_eq!(torn, torn_bytes.len() - f.len as usize);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_listed_by_number() {
        let dir = std::env::temp_dir().join(format!("sichss-journal-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [3, 1, 20] {
            JournalFile::create(&dir, n).unwrap();
        }
        std::fs::write(dir.join("unrelated"), b"x").unwrap();
        assert_eq!(list(&dir).unwrap(), vec![1, 3, 20]);
        let mut f = JournalFile::create(&dir, 21).unwrap();
        let mut buf = Vec::new();
        push_entry(&mut buf, 5, b"rec");
        f.append_durably(&buf).unwrap();
        assert_eq!(
            entries(&read(&path(&dir, 21)).unwrap()).0,
            vec![(5, &b"rec"[..])]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
