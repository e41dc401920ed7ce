//! Seeds the fuzz corpora (`fuzz/corpus/decode/`, `fuzz/corpus/roundtrip/`) with Diameter
//! messages from the shared third-party captures: at most two per (application, command,
//! request/answer), Cx captures first, at most 50 files per target, named `<capture>-f<frame>.bin`.
//!
//! ```text
//! cargo run --example fuzz_corpus            # captures from ../shared/captures
//! cargo run --example fuzz_corpus -- DIR     # or from DIR
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use sichss::codec::header::parse_header;
use sichss::pcap::diameter::diameter_messages;

const MAX_FILES: usize = 50;
const PER_KIND: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/captures"));
    let mut captures: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| {
            format!(
                "{}: {e} (give the captures folder as the argument)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    // Cx captures first, so that the cap of 50 cuts other applications' traffic.
    captures.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        (
            !name.starts_with("cx-"),
            !name.starts_with("requests-"),
            name,
        )
    });
    let mut seen: HashMap<(u32, u32, bool), usize> = HashMap::new();
    let mut picked = Vec::new();
    for path in &captures {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for m in diameter_messages(&std::fs::read(path)?)? {
            let Ok((_, h)) = parse_header(&m.bytes) else {
                continue;
            };
            let n = seen
                .entry((h.application.0, h.command.0, h.is_request()))
                .or_default();
            if *n < PER_KIND && picked.len() < MAX_FILES {
                *n += 1;
                picked.push((format!("{stem}-f{}.bin", m.frame), m.bytes));
            }
        }
    }
    for target in ["decode", "roundtrip"] {
        let out = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&out)?;
        for (name, bytes) in &picked {
            std::fs::write(out.join(name), bytes)?;
        }
        println!("{}: {} seeds", out.display(), picked.len());
    }
    Ok(())
}
