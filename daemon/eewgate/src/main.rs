//! `eewgate`: the Earthquake Early Warning receiving appliance for buildings.
//!
//! This binary is the imperative shell around the pure `eew-core`: it reads files,
//! sockets, pins and the clock, and hands values to the core (see the library's docs and
//! `eewgate --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    // Logs go through a bounded queue to a writer thread; when it falls behind, lines are
    // dropped rather than blocking the decision loop. The guard flushes at exit.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .finish(std::io::stderr());
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Colour only for a person at a terminal: the journal (and a log file) would keep the
    // escape codes as text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("EEWGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        );
    // The last lines at `info` in memory, for the web UI's log download.
    let ring = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(eewgate::system::logring::RingWriter)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(stderr)
        .with(ring)
        .init();
    match eewgate::cli::run() {
        Ok(code) => code,
        // A reader that stopped reading (`eewgate replay … | head`) is not an error.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("eewgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
