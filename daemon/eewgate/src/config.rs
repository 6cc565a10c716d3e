//! The settings file: the engine's sections (validated by `eew-core`) plus the daemon's
//! own — `[daemon]`, `[storage]`, `[time]`, `[[links.*]]` and `[hardware]` — checked here with the same
//! [`Walker`], so `eewgate check-config` reports every problem of both at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use eew_core::settings::{Settings, SettingsError, Walker, parse_table};
use toml::Table;

/// `EX_CONFIG` from sysexits.h: the configuration is invalid.
pub const EX_CONFIG: u8 = 78;

/// Settings files larger than this are refused (a real one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Top-level sections the binary owns (the rest belong to `eew-core`).
pub const DAEMON_SECTIONS: &[&str] = &[
    "daemon",
    "storage",
    "time",
    "links",
    "hardware",
    "audio",
    "mqtt",
    "webui",
    "assurance",
];

/// Default history database.
pub const DEFAULT_DB_PATH: &str = "/var/lib/eewgate/history.db";

/// How a JMA code-telegram stream is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFraming {
    /// Bare telegrams, split by header and `9999=`.
    Plain,
    /// JMA's socket procedure: 10-byte length+kind header, health checks answered.
    JmaSocket,
}

/// Whether a DM-D.S.S link asks for JMA's training and test telegrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmdataTest {
    /// `"no"`: real telegrams only.
    No,
    /// `"including"`: training (訓練) and test telegrams as well.
    Including,
}

/// What a link is.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkKind {
    /// JMA code-telegram stream over TCP (client).
    JmaTcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Framing.
        framing: StreamFraming,
    },
    /// JMA code-telegram stream over a serial line.
    JmaSerial {
        /// Device path (`/dev/ttyUSB0`).
        device: PathBuf,
        /// Baud rate.
        baud: u32,
        /// Framing.
        framing: StreamFraming,
    },
    /// Telegram files replayed (drills, the demo).
    Replay {
        /// Files, fed in order.
        files: Vec<PathBuf>,
        /// Milliseconds between files (ignored with `at_original_times`).
        interval_ms: u32,
        /// Keep the telegrams' own spacing (by issue time).
        at_original_times: bool,
        /// Start again after the last file.
        repeat: bool,
    },
    /// DM-D.S.S (dmdata.jp) WebSocket API v2.
    Dmdata {
        /// The file holding the API key (checked: exists, not readable by group or
        /// others, not empty). The key itself is read when the link starts.
        api_key_file: PathBuf,
        /// The API's base URL (`https://api.dmdata.jp`).
        api_base: String,
        /// Training and test telegrams or not.
        test: DmdataTest,
        /// Data types (`VXSE43`, `VXSE44`, `VXSE45`, `VXSE42`).
        types: Vec<String>,
        /// One socket per entry: a host replacing the ticket URL's host, or `"ticket"`.
        endpoints: Vec<String>,
        /// `appName` of the sockets.
        app_name: String,
    },
}

/// One upstream link.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Unique name, used in logs, history and the status model (`link` field).
    pub name: String,
    /// Transport and framing.
    pub kind: LinkKind,
    /// Silence longer than this (no telegram, no health check, no heartbeat) is a link
    /// fault.
    pub silence_limit: Duration,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSection {
    /// Graceful shutdown bound: after this, remaining tasks are abandoned.
    pub shutdown_timeout: Duration,
    /// A hardware watchdog device to pet directly when not under systemd's watchdog.
    pub hardware_watchdog: Option<HardwareWatchdog>,
}

/// `[daemon.hardware_watchdog]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareWatchdog {
    /// Device path (`/dev/watchdog`).
    pub device: PathBuf,
    /// Timeout set on the device (s).
    pub timeout_s: u32,
}

/// `[storage]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// SQLite history database.
    pub path: PathBuf,
    /// Rows older than this are purged daily.
    pub retention_days: u32,
}

/// `[time]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeConfig {
    /// Largest tolerated offset of the local clock from upstream timestamps or the kernel's
    /// error bound (ms). JMA's guideline asks for ±1 s.
    pub max_offset_ms: u32,
    /// How often the kernel's sync status is read (s).
    pub check_interval_s: u32,
    /// Whether an unsynchronised clock is a fault (off for laptops and CI).
    pub require_sync: bool,
}

/// Which pins backend drives the relays and the LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardwareBackend {
    /// In memory (laptops, CI, the demo).
    Sim,
    /// The Raspberry Pi's GPIO (rppal; needs the `rpi` cargo feature).
    Rpi,
}

/// `[[hardware.relay]]`: how one engine contact is wired.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayPins {
    /// The engine contact (`[[outputs.relay]] id`).
    pub id: u8,
    /// BCM pin driving the relay.
    pub pin: u8,
    /// The relay operates when the pin is low.
    pub active_low: bool,
    /// BCM input pin of the feedback contact (high = contact closed).
    pub readback_pin: Option<u8>,
    /// The read-back must follow within this long.
    pub readback_timeout: Duration,
    /// Delivery assurance's scheduled probe of this contact: `pulse` only on contacts
    /// marked safe to pulse, `idle` (read-back of the released state) by default when a
    /// read-back is wired, `none` without one.
    pub probe: eew_core::assurance::RelayProbe,
}

/// `[hardware.led]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LedPins {
    /// Red BCM pin.
    pub red: u8,
    /// Green BCM pin.
    pub green: u8,
    /// Blue BCM pin (optional).
    pub blue: Option<u8>,
}

/// `[hardware]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareConfig {
    /// The backend.
    pub backend: HardwareBackend,
    /// Every engine contact's wiring (the sim backend fills in defaults).
    pub relays: Vec<RelayPins>,
    /// The status LED (none on a Pi without `[hardware.led]`).
    pub led: Option<LedPins>,
    /// Sim backend only: a file that keeps the pins' levels across processes, as a real
    /// board keeps its GPIO levels after a `kill -9` (so `eewgate failsafe` can be shown to
    /// release what a killed daemon left closed).
    pub sim_state_file: Option<PathBuf>,
}

/// Default relay pins of the sim backend, by contact id (1–16).
pub const DEFAULT_RELAY_PINS: [u8; 16] =
    [5, 6, 13, 19, 26, 16, 20, 21, 12, 25, 24, 23, 18, 4, 7, 8];
/// Default LED pins (red, green, blue).
pub const DEFAULT_LED_PINS: (u8, u8, u8) = (17, 27, 22);

/// Everything `eewgate run` needs.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Engine settings.
    pub settings: Settings,
    /// Upstream links (at least one).
    pub links: Vec<LinkConfig>,
    /// `[daemon]`.
    pub daemon: DaemonSection,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[time]`.
    pub time: TimeConfig,
    /// `[hardware]`.
    pub hardware: HardwareConfig,
    /// `[audio]`: the audio jack into the PA.
    pub audio: crate::audio::AudioConfig,
    /// `[mqtt]`: the building management system's broker.
    pub mqtt: crate::mqtt::MqttConfig,
    /// `[webui]`: the local web UI.
    pub webui: crate::webui::WebUiConfig,
    /// `[assurance]`: delivery assurance's probes and evidence ageing.
    pub assurance: crate::assurance::AssuranceConfig,
    /// The file's text, recorded in history when it changes.
    pub text: String,
    /// Notes for the installer (suggested values).
    pub notes: Vec<String>,
}

/// Reads and checks a settings file, every problem at once.
pub fn load_daemon(path: &Path) -> Result<DaemonConfig, Vec<SettingsError>> {
    let text = read_bounded(path).map_err(|err| {
        vec![SettingsError {
            path: String::new(),
            message: format!("cannot read {}: {err}", path.display()),
        }]
    })?;
    parse_daemon(&text, path.parent().unwrap_or(Path::new(".")))
}

/// Checks a settings text; relative paths are taken from `base` (the file's directory).
pub fn parse_daemon(text: &str, base: &Path) -> Result<DaemonConfig, Vec<SettingsError>> {
    let table = parse_table(text).map_err(|e| e.0)?;
    let engine = Settings::load(&table, DAEMON_SECTIONS);
    let mut w = Walker::new();
    let daemon = daemon_section(&mut w, &table);
    let storage = storage_section(&mut w, &table, base);
    let time = time_section(&mut w, &table);
    let links = links_section(&mut w, &table, base);
    let engine_relays: Option<Vec<u8>> = engine
        .as_ref()
        .ok()
        .map(|l| l.settings.outputs.relays.iter().map(|r| r.id).collect());
    let hardware = hardware_section(&mut w, &table, engine_relays.as_deref(), base);
    let audio = crate::audio::section(&mut w, &table, base);
    let mqtt = crate::mqtt::section(&mut w, &table, base);
    let webui = crate::webui::section(&mut w, &table, base);
    let assurance = crate::assurance::section(&mut w, &table, base);
    let mut errors = match &engine {
        Ok(_) => Vec::new(),
        Err(e) => e.0.clone(),
    };
    errors.extend(w.into_errors());
    match engine {
        Ok(loaded) if errors.is_empty() => Ok(DaemonConfig {
            settings: loaded.settings,
            links,
            daemon,
            storage,
            time,
            hardware,
            audio,
            mqtt,
            webui,
            assurance,
            text: text.to_owned(),
            notes: loaded
                .notes
                .iter()
                .map(|n| format!("{}: {}", n.path, n.message))
                .collect(),
        }),
        _ => Err(errors),
    }
}

fn daemon_section(w: &mut Walker, table: &Table) -> DaemonSection {
    let mut out = DaemonSection {
        shutdown_timeout: Duration::from_secs(5),
        hardware_watchdog: None,
    };
    let Some(t) = w.section(table, "", "daemon") else {
        return out;
    };
    if let Some((p, v)) = w.get(t, "daemon", "shutdown_timeout_s")
        && let Some(s) = w.u32_in(&p, v, 1, 60)
    {
        out.shutdown_timeout = Duration::from_secs(u64::from(s));
    }
    if let Some(hw) = w.section(t, "daemon", "hardware_watchdog") {
        let path = "daemon.hardware_watchdog";
        let device = w
            .get(hw, path, "device")
            .and_then(|(p, v)| w.str_at(&p, v).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/dev/watchdog"));
        let timeout_s = w
            .get(hw, path, "timeout_s")
            .and_then(|(p, v)| w.u32_in(&p, v, 2, 120))
            .unwrap_or(15);
        w.unknown_keys(hw, path, &["device", "timeout_s"]);
        out.hardware_watchdog = Some(HardwareWatchdog { device, timeout_s });
    }
    w.unknown_keys(t, "daemon", &["shutdown_timeout_s", "hardware_watchdog"]);
    out
}

fn storage_section(w: &mut Walker, table: &Table, base: &Path) -> StorageConfig {
    let mut out = StorageConfig {
        path: PathBuf::from(DEFAULT_DB_PATH),
        retention_days: 365,
    };
    let Some(t) = w.section(table, "", "storage") else {
        return out;
    };
    if let Some((p, v)) = w.get(t, "storage", "path")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.trim().is_empty() {
            w.error(p, "must name a file, e.g. \"/var/lib/eewgate/history.db\"");
        } else {
            out.path = base.join(s);
        }
    }
    if let Some((p, v)) = w.get(t, "storage", "retention_days")
        && let Some(d) = w.u32_in(&p, v, 1, 3650)
    {
        out.retention_days = d;
    }
    w.unknown_keys(t, "storage", &["path", "retention_days"]);
    out
}

fn time_section(w: &mut Walker, table: &Table) -> TimeConfig {
    let mut out = TimeConfig {
        max_offset_ms: 1000,
        check_interval_s: 10,
        require_sync: true,
    };
    let Some(t) = w.section(table, "", "time") else {
        return out;
    };
    if let Some((p, v)) = w.get(t, "time", "max_offset_ms")
        && let Some(ms) = w.u32_in(&p, v, 10, 60_000)
    {
        out.max_offset_ms = ms;
    }
    if let Some((p, v)) = w.get(t, "time", "check_interval_s")
        && let Some(s) = w.u32_in(&p, v, 1, 3600)
    {
        out.check_interval_s = s;
    }
    if let Some((p, v)) = w.get(t, "time", "require_sync")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.require_sync = b;
    }
    w.unknown_keys(
        t,
        "time",
        &["max_offset_ms", "check_interval_s", "require_sync"],
    );
    out
}

fn pin_at(w: &mut Walker, t: &Table, path: &str, key: &str) -> Option<u8> {
    w.get(t, path, key)
        .and_then(|(p, v)| w.int_in(&p, v, 0, 27))
        .and_then(|n| u8::try_from(n).ok())
}

fn hardware_section(
    w: &mut Walker,
    table: &Table,
    engine: Option<&[u8]>,
    base: &Path,
) -> HardwareConfig {
    let mut out = HardwareConfig {
        backend: HardwareBackend::Sim,
        relays: Vec::new(),
        led: None,
        sim_state_file: None,
    };
    let section = w.section(table, "", "hardware");
    let mut led_given = false;
    // (pin, where it was given) for the uniqueness check.
    let mut used: Vec<(u8, String)> = Vec::new();
    if let Some(t) = section {
        if let Some((p, v)) = w.get(t, "hardware", "backend")
            && let Some(b) = w.choice_at(
                &p,
                v,
                &[("sim", HardwareBackend::Sim), ("rpi", HardwareBackend::Rpi)],
            )
        {
            out.backend = b;
        }
        if let Some((path, v)) = w.get(t, "hardware", "relay") {
            if let Some(array) = v.as_array() {
                for (i, item) in array.iter().enumerate() {
                    let path = format!("hardware.relay[{i}]");
                    let Some(rt) = w.table_at(&path, item) else {
                        continue;
                    };
                    let id = w
                        .require(
                            rt,
                            &path,
                            "id",
                            "the engine contact, as in [[outputs.relay]] id",
                        )
                        .and_then(|(p, v)| {
                            let id = w.int_in(&p, v, 1, 16).and_then(|n| u8::try_from(n).ok())?;
                            if engine.is_some_and(|e| !e.contains(&id)) {
                                w.error(p, format!("no [[outputs.relay]] has id = {id}"));
                                return None;
                            }
                            if out.relays.iter().any(|r: &RelayPins| r.id == id) {
                                w.error(p, format!("contact {id} is wired twice"));
                                return None;
                            }
                            Some(id)
                        });
                    if w.get(rt, &path, "pin").is_none() {
                        w.error(
                            format!("{path}.pin"),
                            "required: the BCM pin driving the relay, 0–27",
                        );
                    }
                    let pin = pin_at(w, rt, &path, "pin");
                    let active_low = w
                        .get(rt, &path, "active_low")
                        .and_then(|(p, v)| w.bool_at(&p, v))
                        .unwrap_or(false);
                    let readback_pin = pin_at(w, rt, &path, "readback_pin");
                    let readback_ms = w
                        .get(rt, &path, "readback_timeout_ms")
                        .and_then(|(p, v)| w.u32_in(&p, v, 5, 5000))
                        .unwrap_or(100);
                    use eew_core::assurance::RelayProbe;
                    let default_probe = if readback_pin.is_some() {
                        RelayProbe::Idle
                    } else {
                        RelayProbe::None
                    };
                    let probe = match w.get(rt, &path, "probe") {
                        Some((p, v)) => w
                            .choice_at(
                                &p,
                                v,
                                &[
                                    ("none", RelayProbe::None),
                                    ("idle", RelayProbe::Idle),
                                    ("pulse", RelayProbe::Pulse),
                                ],
                            )
                            .and_then(|probe| {
                                if probe != RelayProbe::None && readback_pin.is_none() {
                                    w.error(
                                        p,
                                        "a scheduled probe reads the contact back: set readback_pin, \
                                         or probe = \"none\" (operator-confirmed tests only)",
                                    );
                                    None
                                } else {
                                    Some(probe)
                                }
                            })
                            .unwrap_or(default_probe),
                        None => default_probe,
                    };
                    w.unknown_keys(
                        rt,
                        &path,
                        &[
                            "id",
                            "pin",
                            "active_low",
                            "readback_pin",
                            "readback_timeout_ms",
                            "probe",
                        ],
                    );
                    if let Some(pin) = pin {
                        used.push((pin, format!("{path}.pin")));
                    }
                    if let Some(pin) = readback_pin {
                        used.push((pin, format!("{path}.readback_pin")));
                    }
                    if let (Some(id), Some(pin)) = (id, pin) {
                        out.relays.push(RelayPins {
                            id,
                            pin,
                            active_low,
                            readback_pin,
                            readback_timeout: Duration::from_millis(u64::from(readback_ms)),
                            probe,
                        });
                    }
                }
            } else {
                w.error(
                    path,
                    "must be an array of tables: write each contact as [[hardware.relay]]",
                );
            }
        }
        if let Some(lt) = w.section(t, "hardware", "led") {
            led_given = true;
            let path = "hardware.led";
            for key in ["red_pin", "green_pin"] {
                if w.get(lt, path, key).is_none() {
                    w.error(format!("{path}.{key}"), "required: a BCM pin, 0–27");
                }
            }
            let red = pin_at(w, lt, path, "red_pin");
            let green = pin_at(w, lt, path, "green_pin");
            let blue = pin_at(w, lt, path, "blue_pin");
            w.unknown_keys(lt, path, &["red_pin", "green_pin", "blue_pin"]);
            for (key, pin) in [("red_pin", red), ("green_pin", green), ("blue_pin", blue)] {
                if let Some(pin) = pin {
                    used.push((pin, format!("{path}.{key}")));
                }
            }
            if let (Some(red), Some(green)) = (red, green) {
                out.led = Some(LedPins { red, green, blue });
            }
        }
        if let Some((p, v)) = w.get(t, "hardware", "sim_state_file")
            && let Some(f) = w.str_at(&p, v)
        {
            if f.trim().is_empty() {
                w.error(p, "must name a file, e.g. \"/run/eewgate/sim-pins.json\"");
            } else {
                out.sim_state_file = Some(base.join(f));
            }
        }
        w.unknown_keys(
            t,
            "hardware",
            &["backend", "relay", "led", "sim_state_file"],
        );
    }
    for (i, (pin, at)) in used.iter().enumerate() {
        if let Some((_, first)) = used.iter().take(i).find(|(p, _)| p == pin) {
            w.error(at.clone(), format!("pin {pin} is already used by {first}"));
        }
    }
    // Contacts the engine has but the file does not wire.
    let missing: Vec<u8> = engine
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|id| !out.relays.iter().any(|r| r.id == *id))
        .collect();
    match out.backend {
        HardwareBackend::Rpi => {
            if !missing.is_empty() && w.is_clean() {
                w.error(
                    "hardware.relay",
                    format!(
                        "contacts {missing:?} of [[outputs.relay]] have no [[hardware.relay]] (id, pin) on the rpi backend"
                    ),
                );
            }
        }
        HardwareBackend::Sim => {
            let mut taken: Vec<u8> = used.iter().map(|(p, _)| *p).collect();
            if !led_given {
                let (r, g, b) = DEFAULT_LED_PINS;
                taken.extend([r, g, b]);
            }
            for id in missing {
                let preferred = DEFAULT_RELAY_PINS
                    .get(usize::from(id).saturating_sub(1))
                    .copied()
                    .filter(|p| !taken.contains(p));
                let Some(pin) = preferred.or_else(|| (0..=27).find(|p| !taken.contains(p))) else {
                    continue;
                };
                taken.push(pin);
                out.relays.push(RelayPins {
                    id,
                    pin,
                    active_low: false,
                    readback_pin: None,
                    readback_timeout: Duration::from_millis(100),
                    probe: eew_core::assurance::RelayProbe::None,
                });
            }
            if !led_given {
                let (red, green, blue) = DEFAULT_LED_PINS;
                out.led = Some(LedPins {
                    red,
                    green,
                    blue: Some(blue),
                });
            }
        }
    }
    out.relays.sort_by_key(|r| r.id);
    out
}

const LINK_KINDS: &[&str] = &["jma_tcp", "jma_serial", "replay", "dmdata"];

fn links_section(w: &mut Walker, table: &Table, base: &Path) -> Vec<LinkConfig> {
    let mut links = Vec::new();
    let Some(t) = w.section(table, "", "links") else {
        w.error(
            "links",
            "at least one upstream link is required, e.g. [[links.jma_tcp]] with name, host and port",
        );
        return links;
    };
    for kind in LINK_KINDS {
        let Some((path, v)) = w.get(t, "links", kind) else {
            continue;
        };
        let Some(array) = v.as_array() else {
            w.error(
                path,
                format!("must be an array of tables: write each link as [[links.{kind}]]"),
            );
            continue;
        };
        for (i, item) in array.iter().enumerate() {
            let path = format!("links.{kind}[{i}]");
            if let Some(lt) = w.table_at(&path, item)
                && let Some(link) = one_link(w, kind, lt, &path, base)
            {
                links.push(link);
            }
        }
    }
    w.unknown_keys(t, "links", LINK_KINDS);
    if links.is_empty() && w.is_clean() {
        w.error(
            "links",
            "at least one upstream link is required, e.g. [[links.jma_tcp]] with name, host and port",
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for l in &links {
        if !seen.insert(l.name.clone()) {
            w.error(
                "links",
                format!("two links are named {:?}; names must be unique", l.name),
            );
        }
    }
    links
}

fn framing(w: &mut Walker, t: &Table, path: &str) -> StreamFraming {
    w.get(t, path, "framing")
        .and_then(|(p, v)| {
            w.choice_at(
                &p,
                v,
                &[
                    ("plain", StreamFraming::Plain),
                    ("jma_socket", StreamFraming::JmaSocket),
                ],
            )
        })
        .unwrap_or(StreamFraming::Plain)
}

fn one_link(w: &mut Walker, kind: &str, t: &Table, path: &str, base: &Path) -> Option<LinkConfig> {
    let name = w
        .require(
            t,
            path,
            "name",
            "a unique name for logs and history, e.g. \"primary\"",
        )
        .and_then(|(p, v)| {
            let s = w.str_at(&p, v)?;
            if s.is_empty()
                || s.len() > 32
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                w.error(p, "1–32 characters: letters, digits, '-', '_' or '.'");
                None
            } else {
                Some(s.to_owned())
            }
        });
    let silence = w
        .get(t, path, "silence_limit_s")
        .and_then(|(p, v)| w.u32_in(&p, v, 1, 86_400));
    let (kind, known, default_silence): (Option<LinkKind>, &[&str], u32) = match kind {
        "jma_tcp" => {
            let host = w
                .require(t, path, "host", "the distributor's host name or address")
                .and_then(|(p, v)| w.str_at(&p, v).map(str::to_owned));
            let port = w
                .require(t, path, "port", "the TCP port, 1–65535")
                .and_then(|(p, v)| w.int_in(&p, v, 1, 65535))
                .and_then(|p| u16::try_from(p).ok());
            let framing = framing(w, t, path);
            (
                host.zip(port).map(|(host, port)| LinkKind::JmaTcp {
                    host,
                    port,
                    framing,
                }),
                &["name", "host", "port", "framing", "silence_limit_s"],
                // JMA's socket procedure sends a health check every minute or so; a bare
                // stream may be silent between earthquakes, so its limit must come from
                // the distributor's heartbeat (set it explicitly).
                90,
            )
        }
        "jma_serial" => {
            let device = w
                .require(
                    t,
                    path,
                    "device",
                    "the serial device, e.g. \"/dev/ttyUSB0\"",
                )
                .and_then(|(p, v)| w.str_at(&p, v).map(PathBuf::from));
            let baud = w
                .get(t, path, "baud")
                .and_then(|(p, v)| w.u32_in(&p, v, 300, 921_600))
                .unwrap_or(9600);
            let framing = framing(w, t, path);
            (
                device.map(|device| LinkKind::JmaSerial {
                    device,
                    baud,
                    framing,
                }),
                &["name", "device", "baud", "framing", "silence_limit_s"],
                90,
            )
        }
        "dmdata" => (
            dmdata_link(w, t, path, base),
            &[
                "name",
                "api_key_file",
                "api_base",
                "test",
                "types",
                "redundant",
                "endpoints",
                "app_name",
                "silence_limit_s",
            ],
            // dmdata.jp pings every socket and closes it when a pong is missing for
            // 120 s; the link also pings after 30 s of quiet. Two minutes without either
            // is a dead link.
            120,
        ),
        _ => {
            let files = w
                .require(t, path, "files", "telegram files to replay, in order")
                .and_then(|(p, v)| {
                    let Some(arr) = v.as_array() else {
                        w.error(p, "must be an array of file paths");
                        return None;
                    };
                    let mut files = Vec::new();
                    for (i, f) in arr.iter().enumerate() {
                        if let Some(s) = w.str_at(&format!("{p}[{i}]"), f) {
                            files.push(base.join(s));
                        }
                    }
                    if files.is_empty() {
                        w.error(p, "must name at least one file");
                    }
                    Some(files)
                });
            let interval_ms = w
                .get(t, path, "interval_ms")
                .and_then(|(p, v)| w.u32_in(&p, v, 0, 3_600_000))
                .unwrap_or(1000);
            let at_original_times = w
                .get(t, path, "at_original_times")
                .and_then(|(p, v)| w.bool_at(&p, v))
                .unwrap_or(false);
            let repeat = w
                .get(t, path, "repeat")
                .and_then(|(p, v)| w.bool_at(&p, v))
                .unwrap_or(false);
            (
                files.map(|files| LinkKind::Replay {
                    files,
                    interval_ms,
                    at_original_times,
                    repeat,
                }),
                &[
                    "name",
                    "files",
                    "interval_ms",
                    "at_original_times",
                    "repeat",
                    "silence_limit_s",
                ],
                // A replay is silent once done; only a very long silence is a fault.
                86_400,
            )
        }
    };
    w.unknown_keys(t, path, known);
    Some(LinkConfig {
        name: name?,
        kind: kind?,
        silence_limit: Duration::from_secs(u64::from(silence.unwrap_or(default_silence))),
    })
}

/// `[[links.dmdata]]`: everything but the common keys.
fn dmdata_link(w: &mut Walker, t: &Table, path: &str, base: &Path) -> Option<LinkKind> {
    use crate::inputs::dmdata::{
        ApiBase, DEFAULT_API_BASE, DEFAULT_APP_NAME, DEFAULT_ENDPOINTS, DEFAULT_TYPES, EEW_TYPES,
        Endpoint, MAX_APP_NAME_BYTES, TICKET_ENDPOINT,
    };
    let api_key_file = w
        .require(
            t,
            path,
            "api_key_file",
            "the file holding the dmdata.jp API key (mode 600, owned by the service user), e.g. \"/etc/eewgate/dmdata.key\"",
        )
        .and_then(|(p, v)| {
            let s = w.str_at(&p, v)?;
            if s.trim().is_empty() {
                w.error(p, "must name a file");
                return None;
            }
            let file = base.join(s);
            // Checked now so check-config catches it; read again when the link starts.
            if let Err(err) = read_secret(&file) {
                w.error(p, format!("{err:#}"));
                return None;
            }
            Some(file)
        });
    let api_base = match w.get(t, path, "api_base") {
        None => Some(DEFAULT_API_BASE.to_owned()),
        Some((p, v)) => w.str_at(&p, v).and_then(|s| match ApiBase::parse(s) {
            Ok(_) => Some(s.trim().to_owned()),
            Err(e) => {
                w.error(p, e);
                None
            }
        }),
    };
    let test = w
        .get(t, path, "test")
        .and_then(|(p, v)| {
            w.choice_at(
                &p,
                v,
                &[("no", DmdataTest::No), ("including", DmdataTest::Including)],
            )
        })
        .unwrap_or(DmdataTest::No);
    let types = match w.get(t, path, "types") {
        None => Some(DEFAULT_TYPES.iter().map(|s| (*s).to_owned()).collect()),
        Some((p, v)) => string_list(w, &p, v).and_then(|list| {
            let mut ok = true;
            let mut out: Vec<String> = Vec::new();
            for (i, ty) in list.iter().enumerate() {
                if !EEW_TYPES.contains(&ty.as_str()) {
                    w.error(
                        format!("{p}[{i}]"),
                        format!(
                            "{ty:?} is not an EEW data type; allowed {}",
                            EEW_TYPES
                                .iter()
                                .map(|t| format!("{t:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    ok = false;
                } else if out.contains(ty) {
                    w.error(format!("{p}[{i}]"), format!("{ty:?} is listed twice"));
                    ok = false;
                } else {
                    out.push(ty.clone());
                }
            }
            if ok && out.is_empty() {
                w.error(
                    p,
                    "must list at least one type, e.g. [\"VXSE43\", \"VXSE44\", \"VXSE45\"]",
                );
                ok = false;
            }
            ok.then_some(out)
        }),
    };
    let redundant = w
        .get(t, path, "redundant")
        .and_then(|(p, v)| w.bool_at(&p, v))
        .unwrap_or(true);
    let endpoints = match w.get(t, path, "endpoints") {
        None if redundant => Some(DEFAULT_ENDPOINTS.iter().map(|s| (*s).to_owned()).collect()),
        None => Some(vec![TICKET_ENDPOINT.to_owned()]),
        Some((p, v)) => string_list(w, &p, v).and_then(|list| {
            let mut ok = true;
            for (i, e) in list.iter().enumerate() {
                if let Err(m) = Endpoint::parse(e) {
                    w.error(format!("{p}[{i}]"), m);
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            let wanted = if redundant { 2..=4 } else { 1..=1 };
            if !wanted.contains(&list.len()) {
                w.error(
                    p,
                    if redundant {
                        format!(
                            "redundant = true needs 2–4 endpoints (one socket each), found {}",
                            list.len()
                        )
                    } else {
                        format!(
                            "redundant = false takes exactly one endpoint, found {}",
                            list.len()
                        )
                    },
                );
                return None;
            }
            Some(list.into_iter().map(|e| e.trim().to_owned()).collect())
        }),
    };
    let app_name = match w.get(t, path, "app_name") {
        None => Some(DEFAULT_APP_NAME.to_owned()),
        Some((p, v)) => w.str_at(&p, v).and_then(|s| {
            if s.is_empty() || s.len() > MAX_APP_NAME_BYTES {
                w.error(
                    p,
                    format!("1–{MAX_APP_NAME_BYTES} bytes (dmdata.jp's limit)"),
                );
                None
            } else {
                Some(s.to_owned())
            }
        }),
    };
    Some(LinkKind::Dmdata {
        api_key_file: api_key_file?,
        api_base: api_base?,
        test,
        types: types?,
        endpoints: endpoints?,
        app_name: app_name?,
    })
}

/// An array of strings.
fn string_list(w: &mut Walker, path: &str, v: &toml::Value) -> Option<Vec<String>> {
    let Some(arr) = v.as_array() else {
        w.error(path, "must be an array of strings");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in arr.iter().enumerate() {
        match w.str_at(&format!("{path}[{i}]"), item) {
            Some(s) => out.push(s.to_owned()),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A key of `table` (at `section`) naming a file, relative to `base`: it must name one,
/// and the file must be readable — a secret (`secret`) also private to its owner
/// ([`read_secret`]). A problem is reported at the key; `None` then.
pub(crate) fn file_key(
    w: &mut Walker,
    table: &Table,
    section: &str,
    key: &str,
    base: &Path,
    secret: bool,
) -> Option<PathBuf> {
    let (p, v) = w.get(table, section, key)?;
    let s = w.str_at(&p, v)?;
    if s.trim().is_empty() {
        w.error(p, "must name a file");
        return None;
    }
    let f = base.join(s);
    let checked = if secret {
        read_secret(&f).map(|_| ())
    } else {
        std::fs::metadata(&f)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))
    };
    match checked {
        Ok(()) => Some(f),
        Err(err) => {
            w.error(p, format!("{err:#}"));
            None
        }
    }
}

/// Reads a secret (API key, password) from its own file. The file must not be readable
/// by group or others, so a key never sits in the world-readable settings file.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read the secret file {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the secret file {} is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let text = read_bounded(path)?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        anyhow::bail!("the secret file {} is empty", path.display());
    }
    Ok(secret)
}

/// Reads and validates the engine settings only (for `eewgate replay`). On failure every
/// problem has been printed to standard error and the exit code to return is given.
pub fn load(path: &Path) -> Result<Settings, ExitCode> {
    let name = path.display();
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{name}: cannot read the settings file: {err}");
            return Err(ExitCode::from(EX_CONFIG));
        }
    };
    let loaded = parse_table(&text).and_then(|table| Settings::load(&table, DAEMON_SECTIONS));
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

pub(crate) fn read_bounded(path: &Path) -> std::io::Result<String> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod hardware_tests {
    use super::*;

    const BASE: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
        [[links.replay]]\nname = \"r\"\nfiles = [\"x.xml\"]\n";

    fn errors(extra: &str) -> Vec<String> {
        match parse_daemon(&format!("{BASE}{extra}"), Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    }

    #[test]
    fn without_a_hardware_section_the_sim_backend_wires_every_contact() {
        let cfg = parse_daemon(BASE, Path::new(".")).unwrap();
        assert_eq!(cfg.hardware.backend, HardwareBackend::Sim);
        let ids: Vec<u8> = cfg.hardware.relays.iter().map(|r| r.id).collect();
        let engine: Vec<u8> = cfg.settings.outputs.relays.iter().map(|r| r.id).collect();
        assert_eq!(ids, engine);
        assert!(cfg.hardware.led.is_some());
        let mut pins: Vec<u8> = cfg.hardware.relays.iter().map(|r| r.pin).collect();
        pins.extend([17, 27, 22]);
        let n = pins.len();
        pins.sort_unstable();
        pins.dedup();
        assert_eq!(pins.len(), n, "no pin used twice");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let e = errors(
            "[hardware]\nbackend = \"gpio\"\ncolour = 1\n\
             [[hardware.relay]]\nid = 9\npin = 40\n\
             [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 5\n\
             [hardware.led]\nred_pin = 17\n",
        );
        let has = |p: &str| e.iter().any(|l| l.starts_with(p));
        assert!(has("hardware.backend"), "{e:?}");
        assert!(has("hardware.colour"), "{e:?}");
        assert!(has("hardware.relay[0].id"), "{e:?}");
        assert!(has("hardware.relay[0].pin"), "{e:?}");
        assert!(has("hardware.relay[1].readback_pin"), "{e:?}");
        assert!(has("hardware.led.green_pin"), "{e:?}");
    }

    #[test]
    fn the_rpi_backend_needs_every_contact_wired() {
        let e = errors("[hardware]\nbackend = \"rpi\"\n[[hardware.relay]]\nid = 1\npin = 5\n");
        assert!(e.iter().any(|l| l.starts_with("hardware.relay:")), "{e:?}");
    }
}
