//! `[mqtt]` (and `[mqtt.tls]`) of the settings file, checked with the same
//! [`Walker`] as the other daemon sections so `eewgate check-config` reports every problem
//! at once, each with its path.
//!
//! Parsing reads no file except to check that the named secret and key files exist and
//! are private (as `[[links.dmdata]] api_key_file` is): a typo there should fail
//! `check-config`, not the first alert. The device id's default (the host name) is
//! resolved when the output starts ([`MqttConfig::device_id_or_default`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use eew_core::settings::Walker;
use toml::Table;

/// Default broker port without TLS.
pub const DEFAULT_PORT: u16 = 1883;
/// Default broker port with TLS.
pub const DEFAULT_TLS_PORT: u16 = 8883;
/// Default message expiry of `event` messages (s).
pub const DEFAULT_EVENT_EXPIRY_S: u32 = 60;
/// Default age beyond which a queued alert publish is dropped (ms).
pub const DEFAULT_STALE_AFTER_MS: u32 = 3000;
/// Default MQTT keep-alive (s): a dead broker connection is noticed within 1.5× this.
pub const DEFAULT_KEEP_ALIVE_S: u32 = 15;
/// Default time for a probe (and a BMS acknowledgement) to come back (s).
pub const DEFAULT_PROBE_TIMEOUT_S: u32 = 10;
/// Home Assistant's default discovery prefix.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";
/// Longest device id (it is a topic level and part of Home Assistant's unique ids).
pub const MAX_DEVICE_ID: usize = 64;

/// `[mqtt.tls]`: TLS to the broker (rustls with the ring provider).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA(s) the broker's certificate must chain to; Mozilla's roots
    /// (`webpki-roots`) when absent.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file` (mode 600).
    pub client_key_file: Option<PathBuf>,
}

/// `[mqtt]`: the MQTT output to the building management system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttConfig {
    /// The output runs (false when the section is absent; true by default when present).
    pub enabled: bool,
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883, or 8883 with TLS, unless given).
    pub port: u16,
    /// This appliance's id in topics and Home Assistant ids; the host name when absent.
    pub device_id: Option<String>,
    /// MQTT client id; the device id when absent.
    pub client_id: Option<String>,
    /// Topic prefix `P`; `eewgate/<device-id>` when absent.
    pub topic_prefix: Option<String>,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// File holding the password (mode 600); read when the output starts, never logged.
    pub password_file: Option<PathBuf>,
    /// TLS, when enabled.
    pub tls: Option<TlsConfig>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Message expiry interval of `event` messages (s).
    pub event_expiry_s: u32,
    /// Queued alert publishes older than this are dropped, never delivered late.
    pub stale_after: Duration,
    /// Publish Home Assistant discovery configs.
    pub home_assistant_discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Publish CAP 1.2 XML on `P/cap`.
    pub cap: bool,
    /// The building management system acknowledges probes on `P/ack`: only its answer
    /// proves the channel (docs/mqtt.md, "Probes and acknowledgements").
    pub bms_ack: bool,
    /// A probe (and its acknowledgement) not back within this has failed.
    pub probe_timeout: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            device_id: None,
            client_id: None,
            topic_prefix: None,
            username: None,
            password_file: None,
            tls: None,
            keep_alive: Duration::from_secs(u64::from(DEFAULT_KEEP_ALIVE_S)),
            event_expiry_s: DEFAULT_EVENT_EXPIRY_S,
            stale_after: Duration::from_millis(u64::from(DEFAULT_STALE_AFTER_MS)),
            home_assistant_discovery: false,
            discovery_prefix: DEFAULT_DISCOVERY_PREFIX.to_owned(),
            cap: false,
            bms_ack: false,
            probe_timeout: Duration::from_secs(u64::from(DEFAULT_PROBE_TIMEOUT_S)),
        }
    }
}

impl MqttConfig {
    /// The device id: the configured one, else this machine's host name made safe for a
    /// topic level, else `eewgate`.
    pub fn device_id_or_default(&self) -> String {
        if let Some(id) = &self.device_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        device_id_from_hostname(&host)
    }
}

/// A host name as a device id: `[A-Za-z0-9_-]` only (anything else becomes `-`), at most
/// [`MAX_DEVICE_ID`] characters; `eewgate` when nothing is left.
pub fn device_id_from_hostname(host: &str) -> String {
    let id: String = host
        .trim()
        .chars()
        .take(MAX_DEVICE_ID)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_matches('-').to_owned();
    if id.is_empty() {
        "eewgate".to_owned()
    } else {
        id
    }
}

const KEYS: &[&str] = &[
    "enabled",
    "host",
    "port",
    "device_id",
    "client_id",
    "topic_prefix",
    "username",
    "password_file",
    "tls",
    "keep_alive_s",
    "event_expiry_s",
    "stale_after_ms",
    "home_assistant_discovery",
    "discovery_prefix",
    "cap",
    "bms_ack",
    "probe_timeout_s",
];

const TLS_KEYS: &[&str] = &["enabled", "ca_file", "client_cert_file", "client_key_file"];

/// Checks `[mqtt]`; the defaults (output off) when the section is absent. Relative paths
/// are taken from `base` (the settings file's directory).
pub(crate) fn section(w: &mut Walker, table: &Table, base: &Path) -> MqttConfig {
    let mut out = MqttConfig::default();
    let Some(t) = w.section(table, "", "mqtt") else {
        return out;
    };
    let path = "mqtt";
    out.enabled = w
        .get(t, path, "enabled")
        .and_then(|(p, v)| w.bool_at(&p, v))
        .unwrap_or(true);
    if let Some((p, v)) = w.get(t, path, "host")
        && let Some(s) = w.str_at(&p, v)
    {
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
            w.error(p, "must be a host name or address, e.g. \"broker.example\"");
        } else {
            s.clone_into(&mut out.host);
        }
    }
    out.tls = tls_section(w, t, base);
    out.port = if out.tls.is_some() {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_PORT
    };
    if let Some((p, v)) = w.get(t, path, "port")
        && let Some(port) = w.int_in(&p, v, 1, 65535)
        && let Ok(port) = u16::try_from(port)
    {
        out.port = port;
    }
    if let Some((p, v)) = w.get(t, path, "device_id")
        && let Some(s) = w.str_at(&p, v)
    {
        if device_id_ok(s) {
            out.device_id = Some(s.to_owned());
        } else {
            w.error(
                p,
                format!(
                    "1–{MAX_DEVICE_ID} characters of A–Z, a–z, 0–9, '_' and '-' (it is a topic level), e.g. \"tower-a\""
                ),
            );
        }
    }
    if let Some((p, v)) = w.get(t, path, "client_id")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
            w.error(p, "1–128 bytes without control characters");
        } else {
            out.client_id = Some(s.to_owned());
        }
    }
    if let Some((p, v)) = w.get(t, path, "topic_prefix")
        && let Some(s) = w.str_at(&p, v)
    {
        match topic_prefix_problem(s) {
            Some(m) => w.error(p, m),
            None => out.topic_prefix = Some(s.to_owned()),
        }
    }
    if let Some((p, v)) = w.get(t, path, "username")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.is_empty() {
            w.error(
                p,
                "must not be empty (leave it out for an anonymous broker)",
            );
        } else {
            out.username = Some(s.to_owned());
        }
    }
    if let Some((p, v)) = w.get(t, path, "password_file")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.trim().is_empty() {
            w.error(p, "must name a file");
        } else if out.username.is_none() {
            w.error(p, "a password needs a username: set mqtt.username too");
        } else {
            let file = base.join(s);
            // Checked now so check-config catches it; read again when the output starts.
            match crate::config::read_secret(&file) {
                Ok(_) => out.password_file = Some(file),
                Err(err) => w.error(p, format!("{err:#}")),
            }
        }
    }
    if let Some((p, v)) = w.get(t, path, "keep_alive_s")
        && let Some(s) = w.u32_in(&p, v, 5, 3600)
    {
        out.keep_alive = Duration::from_secs(u64::from(s));
    }
    if let Some((p, v)) = w.get(t, path, "event_expiry_s")
        && let Some(s) = w.u32_in(&p, v, 1, 86_400)
    {
        out.event_expiry_s = s;
    }
    if let Some((p, v)) = w.get(t, path, "stale_after_ms")
        && let Some(ms) = w.u32_in(&p, v, 100, 60_000)
    {
        out.stale_after = Duration::from_millis(u64::from(ms));
    }
    if let Some((p, v)) = w.get(t, path, "home_assistant_discovery")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.home_assistant_discovery = b;
    }
    if let Some((p, v)) = w.get(t, path, "discovery_prefix")
        && let Some(s) = w.str_at(&p, v)
    {
        match topic_prefix_problem(s) {
            Some(m) => w.error(p, m),
            None => out.discovery_prefix = s.to_owned(),
        }
    }
    if let Some((p, v)) = w.get(t, path, "cap")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.cap = b;
    }
    if let Some((p, v)) = w.get(t, path, "bms_ack")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.bms_ack = b;
    }
    if let Some((p, v)) = w.get(t, path, "probe_timeout_s")
        && let Some(s) = w.u32_in(&p, v, 1, 120)
    {
        out.probe_timeout = Duration::from_secs(u64::from(s));
    }
    w.unknown_keys(t, path, KEYS);
    out
}

/// `[mqtt.tls]`: `Some` when TLS is on (the table is present and `enabled` is not false).
fn tls_section(w: &mut Walker, t: &Table, base: &Path) -> Option<TlsConfig> {
    let path = "mqtt.tls";
    let tls = w.section(t, "mqtt", "tls")?;
    let enabled = w
        .get(tls, path, "enabled")
        .and_then(|(p, v)| w.bool_at(&p, v))
        .unwrap_or(true);
    let mut out = TlsConfig::default();
    let file = |w: &mut Walker, key: &str, secret: bool| {
        crate::config::file_key(w, tls, path, key, base, secret)
    };
    out.ca_file = file(w, "ca_file", false);
    out.client_cert_file = file(w, "client_cert_file", false);
    out.client_key_file = file(w, "client_key_file", true);
    let cert = tls.contains_key("client_cert_file");
    let key = tls.contains_key("client_key_file");
    if cert != key {
        w.error(
            format!(
                "{path}.{}",
                if cert {
                    "client_key_file"
                } else {
                    "client_cert_file"
                }
            ),
            "mutual TLS needs both client_cert_file and client_key_file",
        );
    }
    w.unknown_keys(tls, path, TLS_KEYS);
    enabled.then_some(out)
}

fn device_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DEVICE_ID
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why `s` cannot prefix topics, if it cannot.
fn topic_prefix_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 200 {
        Some("1–200 bytes, e.g. \"eewgate/tower-a\"")
    } else if s.contains(['+', '#', '\0']) {
        Some("must not contain the wildcards '+' or '#'")
    } else if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        Some("levels separated by single '/', none empty, e.g. \"site/eewgate\"")
    } else if s.starts_with('$') {
        Some("topics starting with '$' are reserved by brokers")
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    fn parse(text: &str, base: &Path) -> (MqttConfig, Vec<String>) {
        let table: Table = text.parse().unwrap();
        let mut w = Walker::new();
        let cfg = crate::mqtt::section(&mut w, &table, base);
        let errors = w
            .into_errors()
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        (cfg, errors)
    }

    #[test]
    fn absent_section_is_off_and_present_section_is_on_with_defaults() {
        let (cfg, e) = parse("", Path::new("."));
        assert!(e.is_empty());
        assert_eq!(cfg, MqttConfig::default());
        assert!(!cfg.enabled);
        let (cfg, e) = parse("[mqtt]\n", Path::new("."));
        assert!(e.is_empty(), "{e:?}");
        assert!(cfg.enabled);
        assert_eq!(cfg.host, "127.0.0.1");
        assert_eq!(cfg.port, 1883);
        assert_eq!(cfg.event_expiry_s, 60);
        assert_eq!(cfg.stale_after, Duration::from_secs(3));
        assert_eq!(cfg.discovery_prefix, "homeassistant");
        assert!(!cfg.cap && !cfg.home_assistant_discovery && cfg.tls.is_none());
    }

    #[test]
    fn tls_changes_the_default_port_and_checks_its_files() {
        let dir = std::env::temp_dir().join(format!("eewgate-mqtt-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "x").unwrap();
        let (cfg, e) = parse("[mqtt]\n[mqtt.tls]\nca_file = \"ca.pem\"\n", &dir);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(cfg.port, 8883);
        assert_eq!(cfg.tls.unwrap().ca_file, Some(dir.join("ca.pem")));
        let (_, e) = parse(
            "[mqtt]\n[mqtt.tls]\nca_file = \"missing.pem\"\nclient_cert_file = \"ca.pem\"\n",
            &dir,
        );
        assert!(
            e.iter().any(|l| l.starts_with("mqtt.tls.ca_file:")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|l| l.starts_with("mqtt.tls.client_key_file:")),
            "{e:?}"
        );
        let (cfg, e) = parse("[mqtt]\nport = 1884\n[mqtt.tls]\nenabled = false\n", &dir);
        assert!(e.is_empty(), "{e:?}");
        assert!(cfg.tls.is_none());
        assert_eq!(cfg.port, 1884);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let (_, e) = parse(
            "[mqtt]\nhost = \"\"\nport = 0\ndevice_id = \"a/b\"\ntopic_prefix = \"x/#\"\n\
             password_file = \"pw\"\nstale_after_ms = 5\nevent_expiry_s = \"60\"\ncap = \"yes\"\n\
             discovery_prefix = \"/ha\"\ncolour = 1\n[mqtt.tls]\nverify = false\n",
            Path::new("."),
        );
        for p in [
            "mqtt.host:",
            "mqtt.port:",
            "mqtt.device_id:",
            "mqtt.topic_prefix:",
            "mqtt.password_file:",
            "mqtt.stale_after_ms:",
            "mqtt.event_expiry_s:",
            "mqtt.cap:",
            "mqtt.discovery_prefix:",
            "mqtt.colour:",
            "mqtt.tls.verify:",
        ] {
            assert!(e.iter().any(|l| l.starts_with(p)), "{p} in {e:?}");
        }
    }

    #[test]
    fn host_names_become_device_ids() {
        assert_eq!(device_id_from_hostname("tower-a\n"), "tower-a");
        assert_eq!(device_id_from_hostname("eew.gate.local"), "eew-gate-local");
        assert_eq!(device_id_from_hostname(" \n"), "eewgate");
        assert_eq!(
            device_id_from_hostname(&"x".repeat(100)).len(),
            MAX_DEVICE_ID
        );
    }
}
