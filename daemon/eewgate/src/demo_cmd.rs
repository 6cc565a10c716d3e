//! `eewgate demo`: the whole daemon on this machine, with nothing to wire.
//!
//! It writes a settings file for a building in Ōita city (大分県中部) into a demo
//! directory, with the sim board for the relay contacts and the LED, audio into WAV
//! files, history in SQLite and MQTT to a local broker (started here when Mosquitto is
//! installed and none is running), then runs the real daemon on a replay link fed with
//! JMA's official sample telegrams of the 2024-04-17 Bungo-channel earthquake (M6.6, 豊後
//! 水道), at their original spacing. Every telegram, decision, pin change, announcement
//! and publish is narrated on standard output; the daemon stops by itself when the
//! sequence is over, releasing every contact (the fail-safe path).
//!
//! The generated settings file is an ordinary one: `eewgate run --config <dir>/eewgate.toml`
//! runs the same thing again, and `eewgate history --config …` reads what it recorded.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::app::{self, RunOptions};
use crate::config::{self, EX_CONFIG};

/// Arguments of `eewgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the settings, history, audio files and pin state go (created if missing).
    #[arg(long, value_name = "DIR", default_value = "eewgate-demo")]
    dir: PathBuf,
    /// Feed the telegrams 200 ms apart instead of at their original spacing (~2 min).
    #[arg(long)]
    fast: bool,
    /// The MQTT broker's port on 127.0.0.1 (one is started there when Mosquitto is
    /// installed and nothing listens yet).
    #[arg(long, value_name = "PORT", default_value_t = 1883)]
    mqtt_port: u16,
    /// Print the events as JSON Lines (as `eewgate run --events-stdout`) instead of text.
    #[arg(long)]
    json: bool,
    /// Also serve the web UI on 127.0.0.1:PORT (8080 when no port is given), and keep
    /// running after the replay until Ctrl-C, so the UI can be explored: settings, history,
    /// drills.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "8080")]
    ui: Option<u16>,
}

/// The embedded Bungo-channel series (`crate::drills`).
const TELEGRAMS: &[(&str, &[u8])] = crate::drills::BUNGO_2024;

/// How long the demo keeps running after the last telegram: the cancel's announcement
/// and the contacts' hold times play out.
const TAIL: Duration = Duration::from_secs(20);

/// Runs the demo; exit 78 if the generated settings were invalid (a bug), 1 on I/O errors.
pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = absolute(&args.dir)?;
    let files = write_telegrams(&dir)?;
    let span = replay_span(args.fast);
    let broker = Broker::ensure(&dir, args.mqtt_port);
    let cfg_path = dir.join("eewgate.toml");
    let mut text = settings(&dir, &files, args.fast, args.mqtt_port);
    if let Some(port) = args.ui {
        text.push_str(&format!(
            "\n[webui]\n# The web UI, on this machine only; the setup code is printed at start.\n\
             listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n"
        ));
    }
    std::fs::write(&cfg_path, text).with_context(|| format!("writing {}", cfg_path.display()))?;
    let cfg = match config::load_daemon(&cfg_path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", cfg_path.display());
            }
            return Ok(ExitCode::from(EX_CONFIG));
        }
    };
    if !args.json {
        intro(&dir, &cfg_path, &broker, span + TAIL, args.ui);
    }
    let opts = RunOptions {
        events_stdout: args.json,
        narrate: (!args.json).then_some(narrate as fn(&Value) -> Option<String>),
        // With the UI it runs until Ctrl-C: someone is exploring it.
        stop_after: args.ui.is_none().then_some(span + TAIL),
        // The UI's settings page edits the demo's own file.
        config_path: Some(cfg_path.clone()),
        ..RunOptions::default()
    };
    let code = app::run(cfg, opts)?;
    drop(broker);
    if !args.json {
        outro(&dir, &cfg_path);
    }
    Ok(code)
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))
}

fn write_telegrams(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let tdir = dir.join("telegrams");
    std::fs::create_dir_all(&tdir).with_context(|| format!("creating {}", tdir.display()))?;
    let mut out = Vec::new();
    for (name, bytes) in TELEGRAMS {
        let path = tdir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

/// How long the replay takes: the spacing of the issue times, or 200 ms per telegram.
fn replay_span(fast: bool) -> Duration {
    if fast {
        let n = u32::try_from(TELEGRAMS.len()).unwrap_or(u32::MAX);
        return Duration::from_millis(200) * n;
    }
    let times: Vec<_> = TELEGRAMS
        .iter()
        .filter_map(|(_, b)| eew_core::parse(b).ok()?.issued_at)
        .collect();
    match (times.first(), times.last()) {
        (Some(a), Some(b)) => {
            b.0.signed_duration_since(a.0)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
        _ => Duration::ZERO,
    }
}

/// The demo's settings: an ordinary file, commented so a reader learns from it.
fn settings(dir: &Path, files: &[PathBuf], fast: bool, mqtt_port: u16) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("  {:?},", f.to_string_lossy()))
        .collect();
    let timing = if fast {
        "interval_ms = 200".to_owned()
    } else {
        "at_original_times = true".to_owned()
    };
    format!(
        r#"# Written by `eewgate demo`: a building in Ōita city (大分県中部, forecast area 751).
# Run it again with: eewgate run --config {cfg:?} --events-stdout
# Everything not written here takes the defaults documented in eewgate.example.toml:
# four relay contacts (1 elevators, 2 PA pre-start, 3 gas/doors, 4 warning pulse),
# audio from class 4, the LED, MQTT for every report.

[site]
lat = 33.24
lon = 131.61
arv400 = 1.2
area_code = "751"

[storage]
path = "history.db"

[time]
# A laptop's clock may not be NTP-synchronised; the appliance requires it.
require_sync = false

[hardware]
# In-memory pins, their levels kept in pins.json (as a real board keeps its GPIO levels).
backend = "sim"
sim_state_file = "pins.json"

[audio]
# Every announcement episode to its own WAV file, paced in real time.
backend = "wav"
wav_dir = "audio"

[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
device_id = "demo"

[[links.replay]]
name = "bungo-2024-04-17"
{timing}
files = [
{files}
]
"#,
        cfg = dir.join("eewgate.toml").to_string_lossy(),
        files = list.join("\n"),
    )
}

/// A local MQTT broker for the demo: one already listening, one started here, or none.
enum Broker {
    Existing(u16),
    Started(Child, u16),
    Missing(u16),
}

impl Broker {
    fn ensure(dir: &Path, port: u16) -> Broker {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            return Broker::Existing(port);
        }
        let Some(bin) = find_mosquitto() else {
            return Broker::Missing(port);
        };
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "# Written by `eewgate demo`: a broker on the loopback interface only.\n\
             listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        );
        if std::fs::write(&conf, text).is_err() {
            return Broker::Missing(port);
        }
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            return Broker::Missing(port);
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Broker::Started(child, port);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Broker::Missing(port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Started(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Mosquitto's binary: on PATH, or where Debian installs it (/usr/sbin is not on every
/// user's PATH).
fn find_mosquitto() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

fn intro(dir: &Path, cfg: &Path, broker: &Broker, total: Duration, ui: Option<u16>) {
    println!("eewgate demo — the whole daemon on this machine");
    println!("  building:  Ōita city (大分県中部, area 751), four relay contacts on the sim board");
    println!(
        "  upstream:  JMA's sample telegrams of the 2024-04-17 Bungo-channel earthquake (M6.6), replayed as if now"
    );
    println!("  settings:  {}", cfg.display());
    println!("  history:   {}", dir.join("history.db").display());
    println!("  audio:     {}/*.wav", dir.join("audio").display());
    match broker {
        Broker::Existing(port) => println!(
            "  MQTT:      the broker already on 127.0.0.1:{port}; watch with\n             mosquitto_sub -h 127.0.0.1 -p {port} -t 'eewgate/demo/#' -v"
        ),
        Broker::Started(_, port) => println!(
            "  MQTT:      Mosquitto started on 127.0.0.1:{port} for the demo; watch with\n             mosquitto_sub -h 127.0.0.1 -p {port} -t 'eewgate/demo/#' -v"
        ),
        Broker::Missing(port) => println!(
            "  MQTT:      no broker on 127.0.0.1:{port} and Mosquitto is not installed: the MQTT output\n             will show a fault. Install one with: sudo apt-get install mosquitto mosquitto-clients"
        ),
    }
    match ui {
        Some(port) => println!(
            "  web UI:    http://127.0.0.1:{port}/ — set a password with the setup code printed below\n  \
             runs:      until Ctrl-C (the replay takes about {} s), then releases every contact\n",
            total.as_secs()
        ),
        None => println!(
            "  runs for:  about {} s, then stops and releases every contact\n",
            total.as_secs()
        ),
    }
}

fn outro(dir: &Path, cfg: &Path) {
    // The sim board's levels after the stop: the fail-safe released every contact.
    if let Ok(levels) = crate::hw::sim::read_state_file(&dir.join("pins.json")) {
        let relays: Vec<String> = levels
            .iter()
            .map(|(pin, level)| format!("pin {pin} {}", if *level { "high" } else { "low" }))
            .collect();
        println!(
            "\nStopped; the fail-safe left the board at: {}",
            relays.join(", ")
        );
    }
    println!("\nDone. What was recorded:");
    println!("  eewgate history --config {} --alerts", cfg.display());
    println!(
        "  eewgate history --config {} --outputs   (each output's result and latency)",
        cfg.display()
    );
    println!(
        "  aplay {}/*.wav                           (the announcements)",
        dir.join("audio").display()
    );
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `HH:MM:SS.mmm` (JST) of an event line's `at`.
fn clock(v: &Value) -> String {
    v.get("at")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&eew_core::report::jst())
                .format("%H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_default()
}

fn ms(us: Option<&Value>) -> String {
    us.and_then(Value::as_f64)
        .map(|u| format!("{:.2} ms", u / 1000.0))
        .unwrap_or_default()
}

/// One event line as text for people (`None`: not worth a line, e.g. LED blink edges).
pub fn narrate(v: &Value) -> Option<String> {
    let t = clock(v);
    let line = match text(v, "type") {
        "telegram" => match text(v, "verdict") {
            "accepted" => format!(
                "telegram  event {} serial {} accepted ({})",
                text(v, "event_id"),
                v.get("serial")?,
                ms(v.get("decision_us")).replace(" ms", " ms to decide"),
            ),
            "duplicate" => return None,
            other => format!("telegram  {other}: {}", text(v, "message")),
        },
        "action" => action(v)?,
        "switched" => format!(
            "{:<9} contact {} ({} after the decision){}",
            text(v, "output"),
            if v.get("closed") == Some(&Value::Bool(true)) {
                "CLOSED"
            } else {
                "opened"
            },
            ms(v.get("latency_us")),
            if v.get("ok") == Some(&Value::Bool(true)) {
                ""
            } else {
                " — FAILED"
            }
        ),
        "led" => format!("led       {}", text(v, "pattern")),
        "fault" => format!(
            "FAULT     {} {}{}",
            text(v, "fault"),
            if v.get("active") == Some(&Value::Bool(true)) {
                "raised"
            } else {
                "cleared"
            },
            v.get("detail")
                .and_then(Value::as_str)
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        "link" => format!("link      {} {}", text(v, "link"), text(v, "state")),
        // Delivery assurance: what proved an output working (or did not).
        "evidence" => format!(
            "proof     {} {} by {} ({}): {}",
            text(v, "output"),
            if v.get("ok") == Some(&Value::Bool(true)) {
                "working"
            } else {
                "NOT PROVED"
            },
            text(v, "method"),
            text(v, "source"),
            text(v, "detail")
        ),
        "pin" | "garbage" => return None,
        "audio" => format!(
            "audio     {} {}{}",
            text(v, "action"),
            v.get("clips")
                .and_then(Value::as_array)
                .map(|c| format!("{} clips", c.len()))
                .unwrap_or_default(),
            v.get("file")
                .and_then(Value::as_str)
                .map(|f| format!(" → {f}"))
                .unwrap_or_default()
        ),
        "audio_end" => format!(
            "audio     episode over ({:.1} s of sound) → {}",
            v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
            text(v, "file")
        ),
        "mqtt" => {
            let mut parts = Vec::new();
            for key in ["event", "state", "topic", "detail"] {
                if let Some(s) = v.get(key).and_then(Value::as_str) {
                    parts.push(s.to_owned());
                }
            }
            format!("mqtt      {}", parts.join(" "))
        }
        other => format!("{other:<9} {v}"),
    };
    Some(format!("{t}  {line}"))
}

fn action(v: &Value) -> Option<String> {
    let output = text(v, "output");
    let class = v
        .get("intensity_class")
        .and_then(Value::as_str)
        .map(|c| format!(" class {c}"))
        .unwrap_or_default();
    let remaining = v
        .get("remaining_s")
        .and_then(Value::as_f64)
        .map(|s| format!(", S wave in {s:.1} s"))
        .unwrap_or_default();
    let why = text(v, "cause");
    Some(match text(v, "action") {
        "on" => format!("{output:<9} close ({why}{class}{remaining})"),
        "off" => format!("{output:<9} release ({why})"),
        "announce" => format!(
            "{output:<9} 「{}」 / \"{}\"",
            text(v, "text_ja"),
            text(v, "text_en")
        ),
        "countdown" => format!("{output:<9} {}", text(v, "text_ja")),
        "stop" => format!("{output:<9} stop ({why})"),
        "publish" => format!("{output:<9} alert {}{class}", text(v, "state")),
        // The LED's own line says what it shows.
        "led" => return None,
        other => format!("{output:<9} {other} ({why})"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_telegram_parses_and_the_sequence_ends_with_its_cancel() {
        let reports: Vec<_> = TELEGRAMS
            .iter()
            .map(|(name, b)| eew_core::parse(b).unwrap_or_else(|e| panic!("{name}: {e:?}")))
            .collect();
        assert_eq!(reports.len(), 33);
        assert!(reports.iter().all(|r| r.event_id == reports[0].event_id));
        assert_eq!(reports.last().unwrap().serial, 32);
        let span = replay_span(false);
        assert!(
            (Duration::from_secs(60)..Duration::from_secs(300)).contains(&span),
            "{span:?}"
        );
    }

    #[test]
    fn narration_reads_each_kind_of_line_and_skips_the_noise() {
        let accepted = serde_json::json!({"type": "telegram", "verdict": "accepted",
            "event_id": "20240417231454", "serial": 4, "decision_us": 2665,
            "at": "2026-11-22T07:25:27.420+00:00"});
        let line = narrate(&accepted).unwrap();
        assert!(line.starts_with("16:25:27.420"), "{line}");
        assert!(
            line.contains("serial 4") && line.contains("2.67 ms"),
            "{line}"
        );
        let switched = serde_json::json!({"type": "switched", "output": "relay:1",
            "closed": true, "latency_us": 728, "ok": true});
        assert!(narrate(&switched).unwrap().contains("CLOSED"));
        let pin = serde_json::json!({"type": "pin", "pin": 17});
        assert_eq!(narrate(&pin), None);
        let announce = serde_json::json!({"type": "action", "output": "audio",
            "action": "announce", "text_ja": "緊急地震速報", "text_en": "EEW"});
        assert!(narrate(&announce).unwrap().contains("「緊急地震速報」"));
        let proof = serde_json::json!({"type": "evidence", "output": "audio", "ok": true,
            "method": "playback", "source": "alarm", "detail": "played 15.2 s"});
        assert_eq!(
            narrate(&proof).unwrap().split_once("  ").unwrap().1,
            "proof     audio working by playback (alarm): played 15.2 s"
        );
    }
}
