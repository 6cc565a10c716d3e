//! Loading the settings file: size-bounded read, every problem reported at once.

use std::path::Path;
use std::process::ExitCode;

use eew_core::settings::Settings;

/// `EX_CONFIG` from sysexits.h: the configuration is invalid.
pub const EX_CONFIG: u8 = 78;

/// Settings files larger than this are refused (a real one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads and validates the settings file. On failure every problem has been printed to
/// standard error and the exit code to return is given.
pub fn load(path: &Path) -> Result<Settings, ExitCode> {
    let name = path.display();
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{name}: cannot read the settings file: {err}");
            return Err(ExitCode::from(EX_CONFIG));
        }
    };
    let loaded = eew_core::settings::parse_table(&text)
        .and_then(|table| Settings::load(&table, DAEMON_SECTIONS));
    match loaded {
        Ok(loaded) => {
            for note in &loaded.notes {
                eprintln!("{name}: note: {}: {}", note.path, note.message);
            }
            Ok(loaded.settings)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{name}: {e}");
            }
            eprintln!("{name}: {} problem(s); nothing was started", errors.0.len());
            Err(ExitCode::from(EX_CONFIG))
        }
    }
}

/// Top-level sections the binary itself owns (none yet; the daemon's links, MQTT broker,
/// web UI and storage sections arrive with it).
const DAEMON_SECTIONS: &[&str] = &[];

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    let read = file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if read as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(text)
}
