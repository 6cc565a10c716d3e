//! Prints the voice clip catalogue (`eew_core::engine::voice::CLIPS`) as TSV, one clip a
//! line: `id<TAB>ja_reading<TAB>en`. `scripts/render-voice` reads it to render
//! `assets/voice/{ja,en}/<id>.wav`, so the catalogue in the code is the only list of
//! clips.
//!
//! ```text
//! cargo run -q -p eew-core --example voice_lines
//! ```

use std::io::{self, Write as _};

use eew_core::engine::voice::CLIPS;

fn main() -> io::Result<()> {
    let mut out = io::stdout().lock();
    for c in CLIPS {
        writeln!(out, "{}\t{}\t{}", c.id, c.ja_reading, c.en)?;
    }
    out.flush()
}
