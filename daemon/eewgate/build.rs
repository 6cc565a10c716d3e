//! Rebuilds when a migration changes (they are embedded by `sqlx::migrate!`), and
//! embeds the pre-rendered voice clips (`assets/voice/<lang>/<id>.wav` at the repository
//! root) into the binary, so `eewgate` speaks from any directory on a fresh machine with
//! no asset files installed beside it.
//!
//! Generates `$OUT_DIR/voice_clips.rs`: a sorted table `(lang, id, bytes)` of
//! `include_bytes!`, read by `src/audio/clips.rs`. The clips are checked (format, every
//! id of the catalogue present) by the crate's tests, not here: a build script cannot see
//! the catalogue in `eew-core`, and a missing clip must never stop an alarm appliance
//! from building — the daemon plays what exists and reports the output as faulted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn simple(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Migrations are embedded by `sqlx::migrate!`; a new or changed file must rebuild.
    println!("cargo:rerun-if-changed=migrations");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let voice = manifest.join("../../assets/voice");
    // A directory is scanned recursively for changes (added, removed or edited clips).
    println!("cargo:rerun-if-changed={}", voice.display());

    let mut table = String::from(
        "/// Every embedded clip: (language, clip id, WAV file bytes), sorted.\n\
         pub(crate) static EMBEDDED: &[(&str, &str, &[u8])] = &[\n",
    );
    let mut clips: Vec<(String, String, String)> = Vec::new();
    for lang_dir in sorted_entries(&voice) {
        if !lang_dir.is_dir() {
            continue;
        }
        let Some(lang) = lang_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !simple(lang) {
            println!(
                "cargo:warning=skipping voice directory {}: not a language code",
                lang_dir.display()
            );
            continue;
        }
        for file in sorted_entries(&lang_dir) {
            if file.extension().and_then(|e| e.to_str()) != Some("wav") {
                continue;
            }
            let Some(id) = file.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            let Ok(abs) = file.canonicalize() else {
                continue;
            };
            let Some(abs) = abs.to_str() else {
                println!(
                    "cargo:warning=skipping {}: path is not UTF-8",
                    file.display()
                );
                continue;
            };
            if !simple(id) {
                println!(
                    "cargo:warning=skipping {}: clip ids are lowercase ASCII, digits and _",
                    file.display()
                );
                continue;
            }
            clips.push((lang.to_owned(), id.to_owned(), abs.to_owned()));
        }
    }
    // Sorted by (lang, id): the daemon looks clips up by binary search.
    clips.sort();
    for (lang, id, abs) in &clips {
        let _ = writeln!(table, "    ({lang:?}, {id:?}, include_bytes!({abs:?})),");
    }
    table.push_str("];\n");
    if clips.is_empty() {
        println!(
            "cargo:warning=no voice clips found in {}: the audio output will only chime",
            voice.display()
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("voice_clips.rs");
    if let Err(err) = std::fs::write(&out, table) {
        println!("cargo:warning=cannot write {}: {err}", out.display());
        std::process::exit(1);
    }
}
