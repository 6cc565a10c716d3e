//! `eewgate health-gate` and `eewgate setup-code`: the programs beside the daemon read
//! what it leaves in its runtime directory (`system::runtime_dir`), so neither needs a
//! login, a broker or the network.
//!
//! - `health-gate` answers "is the daemon running and well?" with its exit status: the
//!   update's mark-good (a new image is kept only once it proves itself) and the
//!   booted-system test use it.
//! - `setup-code` shows the first-boot setup code on the console and at the login prompt,
//!   with the addresses to open.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::system::runtime_dir::{HEALTH_FILE, HEALTH_REFRESH, SETUP_CODE_FILE, write_atomic};

/// Where systemd puts the daemon's runtime directory.
const DEFAULT_RUNTIME_DIR: &str = "/run/eewgate";

/// Arguments of `eewgate health-gate`.
#[derive(Debug, Args)]
pub struct HealthGateArgs {
    /// The daemon's runtime directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Keep asking for up to this long before answering no (a daemon just started may
    /// still be connecting its links).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_s: u64,
    /// Also fail on overdue scheduled proofs (by default they do not fail the gate: an
    /// update did not cause a proof to be late).
    #[arg(long)]
    strict: bool,
}

/// Why the gate says no (empty: yes).
pub fn gate(doc: &Value, age: Duration, alive: bool, strict: bool) -> Vec<String> {
    let mut why = Vec::new();
    if !alive {
        why.push("the daemon that wrote the health file is not running".to_owned());
        return why;
    }
    if age > HEALTH_REFRESH * 3 {
        why.push(format!(
            "the health file is {} s old: the daemon is not updating it",
            age.as_secs()
        ));
    }
    if doc.get("ready").and_then(Value::as_bool) != Some(true) {
        why.push("not ready (READY=1 not sent yet)".to_owned());
    }
    match doc.get("faults").and_then(Value::as_array) {
        None => why.push("the health file has no fault list".to_owned()),
        Some(faults) => {
            for f in faults.iter().filter_map(Value::as_str) {
                if strict || !f.starts_with("verification_overdue:") {
                    why.push(format!("fault: {f}"));
                }
            }
        }
    }
    why
}

/// Reads the health file and judges it.
fn judge(dir: &Path, strict: bool) -> Vec<String> {
    let path = dir.join(HEALTH_FILE);
    let (text, modified) = match std::fs::read_to_string(&path).and_then(|t| {
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|m| (t, m))
    }) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![format!(
                "{} does not exist: the daemon is not running (or runs without a runtime directory)",
                path.display()
            )];
        }
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let doc: Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => return vec![format!("{}: not a health document: {e}", path.display())],
    };
    // A clock step makes the age negative: count it as fresh, the pid check still holds.
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    let alive = doc
        .get("pid")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .is_some_and(process_alive);
    gate(&doc, age, alive, strict)
}

fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// `eewgate health-gate`: exit 0 when healthy, 1 (with the reasons) when not.
pub fn health_gate(args: &HealthGateArgs) -> ExitCode {
    let deadline = std::time::Instant::now() + Duration::from_secs(args.wait_s);
    loop {
        let why = judge(&args.runtime_dir, args.strict);
        if why.is_empty() {
            println!("eewgate is running and healthy");
            return ExitCode::SUCCESS;
        }
        if std::time::Instant::now() >= deadline {
            for w in &why {
                eprintln!("eewgate health-gate: {w}");
            }
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Arguments of `eewgate setup-code`.
#[derive(Debug, Args)]
pub struct SetupCodeArgs {
    /// The daemon's runtime directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Also write the notice here for the login prompt (agetty shows /run/issue.d/*.issue).
    #[arg(long, value_name = "FILE")]
    issue_file: Option<PathBuf>,
}

/// The notice for a code, a scheme, where the UI listens and this box's addresses.
pub fn notice(code: &str, scheme: &str, listen: SocketAddr, addresses: &[IpAddr]) -> String {
    let port = listen.port();
    let url = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}/"),
    };
    let urls: Vec<String> = if listen.ip().is_unspecified() {
        addresses.iter().copied().map(url).collect()
    } else {
        vec![url(listen.ip())]
    };
    let rule = "=".repeat(64);
    let mut out = format!("{rule}\n eewgate: first-boot setup / 初期設定\n\n");
    if urls.is_empty() {
        out.push_str(&format!(
            " Open the web UI / Web 画面: {scheme}://<this box's address>:{port}/\n"
        ));
    } else {
        out.push_str(" Open the web UI / Web 画面を開く:\n");
        for u in &urls {
            out.push_str(&format!("   {u}\n"));
        }
    }
    out.push_str(&format!(
        "\n Setup code / セットアップコード:  {code}\n\n \
         It is asked for once, to set the administrator password.\n \
         管理者パスワードの設定時に一度だけ入力します。\n{rule}\n"
    ));
    out
}

/// This box's addresses a browser could reach (not loopback, not link-local IPv6).
fn host_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let ip = if let Some(v4) = sa.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80));
        if !ip.is_loopback() && !link_local_v6 && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// `eewgate setup-code`: prints the notice (nothing when setup is done). Exit 1 when the
/// file is unreadable or malformed.
pub fn setup_code(args: &SetupCodeArgs) -> ExitCode {
    let path = args.runtime_dir.join(SETUP_CODE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("eewgate setup-code: no setup pending (the appliance is set up)");
            if let Some(f) = &args.issue_file {
                let _ = std::fs::remove_file(f);
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("eewgate setup-code: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let parsed = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        let code = v.get("code")?.as_str()?.to_owned();
        let scheme = v.get("scheme")?.as_str()?.to_owned();
        let listen: SocketAddr = v.get("listen")?.as_str()?.parse().ok()?;
        Some((code, scheme, listen))
    });
    let Some((code, scheme, listen)) = parsed else {
        eprintln!(
            "eewgate setup-code: {}: not a setup code file",
            path.display()
        );
        return ExitCode::FAILURE;
    };
    let text = notice(&code, &scheme, listen, &host_addresses());
    print!("{text}");
    if let Some(f) = &args.issue_file {
        let written = match (f.parent(), f.file_name()) {
            (Some(dir), Some(name)) => write_atomic(dir, &name.to_string_lossy(), &text),
            _ => Err(std::io::Error::other("not a file path")),
        };
        if let Err(e) = written {
            eprintln!("eewgate setup-code: {}: {e}", f.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use serde_json::json;

    fn healthy() -> Value {
        json!({"ok": true, "faults": [], "ready": true})
    }

    #[test]
    fn a_ready_daemon_without_faults_passes() {
        assert!(gate(&healthy(), Duration::from_secs(1), true, false).is_empty());
    }

    #[test]
    fn a_dead_stale_or_unready_daemon_fails() {
        let why = gate(&healthy(), Duration::from_secs(1), false, false);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("not running"));
        let why = gate(&healthy(), Duration::from_secs(31), true, false);
        assert!(why.iter().any(|w| w.contains("31 s old")), "{why:?}");
        let doc = json!({"faults": [], "ready": false});
        assert!(gate(&doc, Duration::ZERO, true, false)[0].contains("not ready"));
        assert!(!gate(&json!({"ready": true}), Duration::ZERO, true, false).is_empty());
    }

    #[test]
    fn faults_fail_and_overdue_proofs_only_when_strict() {
        let doc = json!({"ready": true, "faults": ["link:a", "verification_overdue:audio"]});
        assert_eq!(
            gate(&doc, Duration::ZERO, true, false),
            vec!["fault: link:a".to_owned()]
        );
        assert_eq!(gate(&doc, Duration::ZERO, true, true).len(), 2);
        let doc = json!({"ready": true, "faults": ["verification_overdue:audio"]});
        assert!(gate(&doc, Duration::ZERO, true, false).is_empty());
    }

    #[test]
    fn the_notice_lists_every_address_when_listening_on_all() {
        let addrs: Vec<IpAddr> = vec![
            "192.168.1.23".parse().unwrap(),
            "2001:db8::5".parse().unwrap(),
        ];
        let text = notice(
            "ABCD-EFGH",
            "https",
            "0.0.0.0:8080".parse().unwrap(),
            &addrs,
        );
        assert!(text.contains("https://192.168.1.23:8080/"), "{text}");
        assert!(text.contains("https://[2001:db8::5]:8080/"), "{text}");
        assert!(text.contains("ABCD-EFGH"), "{text}");
        let text = notice("ABCD-EFGH", "http", "10.0.0.2:80".parse().unwrap(), &addrs);
        assert!(
            text.contains("http://10.0.0.2:80/") && !text.contains("192.168"),
            "{text}"
        );
        let text = notice("ABCD-EFGH", "http", "0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(text.contains("<this box's address>"), "{text}");
    }
}
