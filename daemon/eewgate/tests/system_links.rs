//! System tests of redundant links: the real `eewgate run` against real `eewgate sim
//! jma-tcp` processes on loopback, and the history it leaves behind.
//!
//! - two links carrying the same sequence, one of them with duplicates, reordering and
//!   garbage: each report is accepted once, the other copies are duplicates measured
//!   against the first, garbage and an invalid telegram are reported and survived;
//! - links that die — one dropped by its upstream, one gone silent (its simulator
//!   stopped with SIGSTOP) — are faults within their silence limit while the third carries
//!   on, and `all_links_down` fires only when the last one dies;
//! - `kill -9` during a burst loses nothing the daemon had reported as accepted a second
//!   earlier, the database is consistent, and a restart on it resumes and appends.
//!
//! Every wait polls for a condition under a generous deadline (a loaded 2-core CI machine
//! must not fail them); no fixed sleep is an assertion. Child processes are killed by
//! Drop guards when a test fails.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

#[path = "support/synth.rs"]
mod synth;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Deadline for anything that should take a second or two.
const WAIT: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_eewgate")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_links")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process that is killed (SIGKILL works on a stopped process too) and reaped
/// when dropped, and whose JSON stdout lines are collected with their arrival instants.
struct Proc {
    what: String,
    child: Child,
    rx: mpsc::Receiver<(Instant, Value)>,
    /// Every line so far, with when the test read it.
    log: Vec<(Instant, Value)>,
    stderr: Option<PathBuf>,
}

impl Proc {
    fn spawn(what: &str, mut cmd: Command, stderr: Option<PathBuf>) -> Proc {
        cmd.stdout(Stdio::piped());
        match &stderr {
            Some(path) => cmd.stderr(std::fs::File::create(path).unwrap()),
            None => cmd.stderr(Stdio::null()),
        };
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout is JSON Lines ({e}): {line}"));
                if tx.send((at, v)).is_err() {
                    break;
                }
            }
        });
        Proc {
            what: what.to_owned(),
            child,
            rx,
            log: Vec::new(),
            stderr,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// Takes whatever lines have arrived.
    fn pump(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.log.push(line);
        }
    }

    /// Collects lines until `done(log)` holds; panics (with the log's tail) after
    /// `timeout`.
    fn until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[(Instant, Value)]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        self.pump();
        while !done(&self.log) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => self.log.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(_) => self.fail(&format!("waiting for {what}")),
            }
        }
    }

    /// Index of the first line from `from` on that satisfies `pred`, waiting for it.
    fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        from: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        self.until(timeout, what, |log| {
            log.iter().skip(from).any(|(_, v)| pred(v))
        });
        from + self
            .log
            .iter()
            .skip(from)
            .position(|(_, v)| pred(v))
            .unwrap()
    }

    fn fail(&self, what: &str) -> ! {
        let tail: Vec<String> = self
            .log
            .iter()
            .rev()
            .take(40)
            .rev()
            .map(|(_, v)| v.to_string())
            .collect();
        let stderr = self
            .stderr
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            })
            .unwrap_or_default();
        panic!(
            "{}: gave up {what}\n--- last stdout lines:\n{}\n--- stderr tail:\n{stderr}",
            self.what,
            tail.join("\n")
        );
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// SIGKILL, reaped; the rest of stdout is collected.
    fn kill9(&mut self) -> Instant {
        self.signal(Signal::SIGKILL);
        let at = Instant::now();
        let _ = self.child.wait();
        // The reader thread ends at EOF and drops its sender.
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        at
    }

    /// SIGTERM; waits for the exit (bounded) and collects the rest of stdout.
    fn terminate(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.fail("stopping within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        status
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.log.iter().map(|(_, v)| v)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `eewgate sim jma-tcp ARGS FILES…`, with its address.
fn sim(name: &str, args: &[&str], files: &[PathBuf]) -> (Proc, u16) {
    let mut cmd = Command::new(bin());
    cmd.arg("sim").arg("jma-tcp").args(args).args(files);
    let mut p = Proc::spawn(&format!("sim {name}"), cmd, None);
    p.until(WAIT, "the listening address", |log| !log.is_empty());
    let addr: std::net::SocketAddr = p.log[0].1["listening"]
        .as_str()
        .unwrap_or_else(|| p.fail("a first line with the address"))
        .parse()
        .unwrap();
    (p, addr.port())
}

/// The `sent` events of a simulator.
fn sends(sim: &Proc) -> Vec<&Value> {
    sim.values().filter(|v| v["event"] == "sent").collect()
}

/// One `[[links.jma_tcp]]`.
struct LinkSpec<'a> {
    name: &'a str,
    port: u16,
    framing: &'a str,
    silence_limit_s: u32,
}

fn config(dir: &Path, links: &[LinkSpec<'_>]) -> PathBuf {
    let mut text = format!(
        "[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\narea_code = \"350\"\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n",
        dir.join("history.db").to_string_lossy()
    );
    for l in links {
        text.push_str(&format!(
            "[[links.jma_tcp]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n\
             framing = \"{}\"\nsilence_limit_s = {}\n",
            l.name, l.port, l.framing, l.silence_limit_s
        ));
    }
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn daemon(dir: &Path, config: &Path, env: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--events-stdout", "--config"])
        .arg(config)
        .env("EEWGATE_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("daemon"))
        })
        .count();
    Proc::spawn("eewgate run", cmd, Some(dir.join(format!("daemon{n}.log"))))
}

/// `eewgate history --db DB --WHAT --json` (every row, newest first).
fn history(db: &Path, what: &str) -> Vec<Value> {
    let out = Command::new(bin())
        .args(["history", "--json", "--limit", "1000000", what, "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "history {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn is(v: &Value, ty: &str) -> bool {
    v["type"] == ty
}

fn link_up(v: &Value, link: &str) -> bool {
    is(v, "link") && v["link"] == link && v["state"] == "up"
}

fn fault(v: &Value, name: &str, active: bool) -> bool {
    is(v, "fault") && v["fault"] == name && v["active"] == active
}

fn accepted(v: &Value) -> bool {
    is(v, "telegram") && v["verdict"] == "accepted"
}

/// A report's identity in the daemon's lines and in history.
fn key(v: &Value) -> (String, u64) {
    (
        v["event_id"].as_str().unwrap().to_owned(),
        v["serial"].as_u64().unwrap(),
    )
}

fn at(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap()
}

/// Every real code telegram of the corpus with its own (event id, serial), one invalid
/// one (`unknown_code`), in a fixed order.
fn corpus() -> (Vec<PathBuf>, BTreeSet<(String, u64)>, PathBuf) {
    let dir = synth::fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".txt")
                && !n.starts_with("malformed_")
                && !n.starts_with("modified_")
                // Same report as its type-47 sibling.
                && n != "spec_20061004_warning_type47_variant.txt"
        })
        .collect();
    files.sort();
    let mut keys = BTreeSet::new();
    files.retain(|f| match eew_core::parse(&std::fs::read(f).unwrap()) {
        Ok(r) => {
            assert!(
                keys.insert((r.event_id.as_str().to_owned(), u64::from(r.serial))),
                "{} repeats a report",
                f.display()
            );
            true
        }
        Err(_) => false,
    });
    assert!(files.len() >= 20, "{files:?}");
    let invalid = dir.join("modified_20110311_ncn009_out_of_range_accuracy.txt");
    assert!(eew_core::parse(&std::fs::read(&invalid).unwrap()).is_err());
    files.insert(files.len() / 2, invalid.clone());
    (files, keys, invalid)
}

#[test]
fn synthetic_telegrams_are_valid_and_distinct() {
    let base = synth::base();
    let mut seen = BTreeSet::new();
    for t in synth::sequence(&base, 7, 300) {
        let r = eew_core::parse(&t).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(seen.insert((r.event_id.as_str().to_owned(), r.serial)));
    }
    assert!(seen.contains(&(synth::event_id(7), 1)));
    assert!(seen.contains(&(synth::event_id(9), 99)));
    assert!(seen.contains(&(synth::event_id(10), 300 - 3 * 99)));
    for serial in [1, 99, 100, 359] {
        let issued = chrono::NaiveDate::from_ymd_opt(2030, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 50)
            .unwrap();
        let t = synth::telegram(&base, synth::MAX_EVENT, serial, Some(issued));
        let r = eew_core::parse(&t).unwrap_or_else(|e| panic!("{serial}: {e:?}"));
        assert_eq!(r.serial, serial);
        assert_eq!(
            r.issued_at.unwrap().0.naive_local(),
            issued,
            "issue time moved"
        );
    }
}

#[test]
fn two_links_with_duplicates_reordering_and_garbage_accept_each_report_once() {
    let dir = scratch("merge");
    let (files, keys, invalid) = corpus();
    let (mut clean, clean_port) = sim("clean", &["--interval-ms", "40", "--seed", "1"], &files);
    let (mut noisy, noisy_port) = sim(
        "noisy",
        &[
            "--interval-ms",
            "40",
            "--duplicate",
            "0.5",
            "--reorder",
            "--garbage",
            "--seed",
            "11",
        ],
        &files,
    );
    let cfg = config(
        &dir,
        &[
            LinkSpec {
                name: "clean",
                port: clean_port,
                framing: "plain",
                silence_limit_s: 60,
            },
            LinkSpec {
                name: "noisy",
                port: noisy_port,
                framing: "plain",
                silence_limit_s: 60,
            },
        ],
    );
    let mut d = daemon(&dir, &cfg, &[]);
    for s in [&mut clean, &mut noisy] {
        s.wait_for(WAIT, "the end of the sequence", 0, |v| {
            v["event"] == "end_of_sequence"
        });
    }
    let sent = |s: &Proc| sends(s).len();
    let (n_clean, n_noisy) = (sent(&clean), sent(&noisy));
    let count = |log: &[(Instant, Value)], link: &str| {
        log.iter()
            .filter(|(_, v)| is(v, "telegram") && v["link"] == link)
            .count()
    };
    d.until(WAIT, "a verdict for every telegram sent", |log| {
        count(log, "clean") >= n_clean && count(log, "noisy") >= n_noisy
    });
    assert!(d.running(), "the daemon keeps going");

    // What the simulators did.
    let noisy_sends = sends(&noisy);
    assert!(
        noisy_sends.iter().any(|v| v["duplicate"] == true),
        "the noisy link sent duplicates"
    );
    let order: Vec<&str> = noisy_sends
        .iter()
        .filter(|v| v["duplicate"] == false)
        .map(|v| v["source"].as_str().unwrap())
        .collect();
    let files_s: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert_ne!(order, files_s, "the noisy link reordered");
    let garbage_sent = noisy_sends
        .iter()
        .filter(|v| v["decor"] == "noise" || v["decor"] == "junk")
        .count();
    assert!(garbage_sent > 0, "the noisy link sent garbage");
    let invalid_sent = |s: &Proc| {
        sends(s)
            .iter()
            .filter(|v| v["source"] == invalid.display().to_string())
            .count()
    };

    // What the daemon made of it.
    let telegrams: Vec<&Value> = d.values().filter(|v| is(v, "telegram")).collect();
    let mut first: BTreeMap<(String, u64), &str> = BTreeMap::new();
    for t in telegrams.iter().filter(|v| accepted(v)) {
        assert!(
            first.insert(key(t), t["link"].as_str().unwrap()).is_none(),
            "accepted twice: {t}"
        );
        assert!(t["decision_us"].is_u64() && t["decode_us"].is_u64(), "{t}");
    }
    assert_eq!(
        first.keys().cloned().collect::<BTreeSet<_>>(),
        keys,
        "every report accepted exactly once"
    );
    let mut duplicates = 0;
    for t in telegrams.iter().filter(|v| v["verdict"] == "duplicate") {
        duplicates += 1;
        let first_link = first.get(&key(t)).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(t["first_link"], *first_link, "{t}");
        assert!(t["lag_ms"].is_u64(), "{t}");
    }
    let rejected: Vec<&&Value> = telegrams
        .iter()
        .filter(|v| v["verdict"] == "rejected")
        .collect();
    assert!(rejected.iter().all(|v| v["reason"] == "unknown_code"));
    for (link, s) in [("clean", &clean), ("noisy", &noisy)] {
        assert_eq!(
            rejected.iter().filter(|v| v["link"] == link).count(),
            invalid_sent(s),
            "{link}: the invalid telegram is rejected each time it comes"
        );
    }
    assert_eq!(
        keys.len() + duplicates + rejected.len(),
        n_clean + n_noisy,
        "every copy has one verdict"
    );
    assert!(duplicates >= keys.len(), "at least the other link's copies");
    let garbage: Vec<&Value> = d.values().filter(|v| is(v, "garbage")).collect();
    assert!(garbage.iter().all(|g| g["link"] == "noisy"), "{garbage:?}");
    assert_eq!(
        garbage.len(),
        garbage_sent,
        "each noise or junk line reported"
    );
    // The link was never lost over it.
    assert!(
        !d.values().any(|v| is(v, "link") && v["state"] == "down"),
        "no link went down"
    );

    let rejected = rejected.len();
    let first: BTreeMap<(String, u64), String> =
        first.into_iter().map(|(k, l)| (k, l.to_owned())).collect();
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    // History has the same story.
    let rows = history(&dir.join("history.db"), "--telegrams");
    let verdicts = |verdict: &str| rows.iter().filter(|r| r["verdict"] == verdict).count();
    assert_eq!(verdicts("accepted"), keys.len());
    assert_eq!(verdicts("duplicate"), duplicates);
    assert_eq!(verdicts("rejected"), rejected);
    assert_eq!(verdicts("garbage"), garbage_sent);
    let stored: BTreeMap<(String, u64), String> = rows
        .iter()
        .filter(|r| r["verdict"] == "accepted")
        .map(|r| (key(r), r["link"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(stored, first, "history names the link that delivered first");
}

#[test]
fn a_dropped_link_and_a_silent_link_are_faults_and_the_last_link_carries_on() {
    let dir = scratch("faults");
    let base = synth::base();
    let telegrams = synth::sequence(&base, 0, 40);
    let tdir = dir.join("telegrams");
    synth::write_files(&tdir, &telegrams);
    let keys: BTreeSet<(String, u64)> = (1..=40).map(|s| (synth::event_id(0), s)).collect();
    let limit_s = 2;
    // "dropped": its upstream closes the connection after 5 telegrams and takes no more.
    let (mut dropped, dropped_port) = sim(
        "dropped",
        &[
            "--interval-ms",
            "100",
            "--drop-after",
            "5",
            "--max-connections",
            "1",
        ],
        std::slice::from_ref(&tdir),
    );
    // "silent": its upstream hangs (SIGSTOP) with the connection open.
    let (mut silent, silent_port) = sim(
        "silent",
        &["--interval-ms", "100"],
        std::slice::from_ref(&tdir),
    );
    // "socket": JMA socket framing; health checks keep it alive after its sequence.
    let (mut socket, socket_port) = sim(
        "socket",
        &[
            "--framing",
            "jma-socket",
            "--health-interval-s",
            "0.5",
            "--interval-ms",
            "100",
        ],
        std::slice::from_ref(&tdir),
    );
    let cfg = config(
        &dir,
        &[
            LinkSpec {
                name: "dropped",
                port: dropped_port,
                framing: "plain",
                silence_limit_s: limit_s,
            },
            LinkSpec {
                name: "silent",
                port: silent_port,
                framing: "plain",
                silence_limit_s: limit_s,
            },
            LinkSpec {
                name: "socket",
                port: socket_port,
                framing: "jma_socket",
                silence_limit_s: limit_s,
            },
        ],
    );
    let mut d = daemon(&dir, &cfg, &[]);
    let mut all_up = 0;
    for link in ["dropped", "silent", "socket"] {
        all_up = all_up.max(d.wait_for(WAIT, "every link up", 0, |v| link_up(v, link)));
    }

    // The silent link's upstream hangs after a few telegrams.
    silent.until(WAIT, "three telegrams sent", |log| {
        log.iter().filter(|(_, v)| v["event"] == "sent").count() >= 3
    });
    silent.signal(Signal::SIGSTOP);

    // The dropped link: down, and a fault at once (well within its limit).
    let down = d.wait_for(WAIT, "link dropped down", all_up, |v| {
        is(v, "link") && v["link"] == "dropped" && v["state"] == "down"
    });
    let dropped_at = d.log[down].0;
    let dropped_fault = d.wait_for(
        Duration::from_secs(u64::from(limit_s) + 10),
        "fault link:dropped",
        all_up,
        |v| fault(v, "link:dropped", true),
    );
    assert!(dropped_fault > down, "the fault follows the drop");
    dropped.wait_for(WAIT, "the simulator's drop", 0, |v| {
        v["event"] == "dropped" && v["after"] == 5
    });
    let waited = d.log[dropped_fault].0.saturating_duration_since(dropped_at);
    assert!(
        waited < Duration::from_secs(u64::from(limit_s) + 3),
        "link:dropped raised {waited:?} after the drop (limit {limit_s} s + 3 s slack)"
    );

    // The silent link: a fault once it has said nothing for its limit.
    let silent_fault = d.wait_for(
        Duration::from_secs(u64::from(limit_s) + 10),
        "fault link:silent",
        all_up,
        |v| fault(v, "link:silent", true),
    );
    let last_silent = d.log[..silent_fault]
        .iter()
        .rev()
        .find(|(_, v)| is(v, "telegram") && v["link"] == "silent")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| d.fail("a telegram from the silent link before its fault"));
    let quiet = at(&d.log[silent_fault].1) - at(&last_silent);
    assert!(
        quiet >= chrono::TimeDelta::milliseconds(i64::from(limit_s) * 1000 - 300)
            && quiet <= chrono::TimeDelta::seconds(i64::from(limit_s) + 3),
        "link:silent raised {quiet} after its last telegram (limit {limit_s} s, 3 s slack)"
    );
    assert!(
        !d.values()
            .any(|v| is(v, "link") && v["link"] == "silent" && v["state"] == "down"),
        "a hung upstream keeps its connection: silence, not a drop"
    );

    // The socket link carries on: the whole sequence is accepted, the later part from it.
    d.until(WAIT, "every report accepted", |log| {
        log.iter().filter(|(_, v)| accepted(v)).count() >= keys.len()
    });
    let got: Vec<(String, u64)> = d.values().filter(|v| accepted(v)).map(key).collect();
    assert_eq!(got.len(), keys.len(), "each once: {got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), keys);
    let later_from_socket = d.log[dropped_fault.max(silent_fault)..]
        .iter()
        .filter(|(_, v)| accepted(v) && v["link"] == "socket")
        .count();
    assert!(
        later_from_socket > 0,
        "telegrams after both faults are accepted from the socket link"
    );
    // Its health checks keep it alive past its sequence: wait until it has been quiet
    // (no telegram) for longer than the limit, and it is still no fault.
    socket.wait_for(WAIT, "the socket sequence's end", 0, |v| {
        v["event"] == "end_of_sequence"
    });
    let end = Instant::now();
    let health_before = socket
        .values()
        .filter(|v| v["event"] == "health_answer")
        .count();
    socket.until(
        WAIT,
        "health checks answered for longer than the limit",
        |log| {
            log.iter()
                .filter(|(_, v)| v["event"] == "health_answer")
                .count()
                > health_before
                && end.elapsed() > Duration::from_secs(u64::from(limit_s) + 1)
        },
    );
    d.pump();
    assert!(
        !d.log[all_up..]
            .iter()
            .any(|(_, v)| fault(v, "link:socket", true) || fault(v, "all_links_down", true)),
        "no socket fault and no all_links_down while the socket link lives"
    );

    // The last link dies: all links down.
    let before_kill = d.log.len();
    socket.kill9();
    d.wait_for(WAIT, "fault link:socket", before_kill, |v| {
        fault(v, "link:socket", true)
    });
    d.wait_for(WAIT, "all_links_down", before_kill, |v| {
        fault(v, "all_links_down", true)
    });
    assert!(d.running());
    let status = d.terminate();
    assert!(status.success(), "{status:?}");

    let faults = history(&dir.join("history.db"), "--faults");
    for (kind, detail) in [
        ("link", Value::from("dropped")),
        ("link", Value::from("silent")),
        ("link", Value::from("socket")),
        ("all_links", Value::Null),
    ] {
        assert!(
            faults
                .iter()
                .any(|f| f["kind"] == kind && f["detail"] == detail && f["active"] == true),
            "history records {kind} {detail} raised: {faults:?}"
        );
    }
    drop(silent);
}

/// A notify socket as systemd gives one.
fn notify_socket(dir: &Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    (socket, path.to_string_lossy().into_owned())
}

fn wait_ready(socket: &UnixDatagram) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf)
            && String::from_utf8_lossy(&buf[..n]).contains("READY=1")
        {
            return;
        }
    }
    panic!("no READY=1 within {WAIT:?}");
}

/// The stored rows' identities: (row id, link, verdict, event id, serial).
type RowKey = (i64, String, String, Option<String>, Option<u64>);

fn row_key(r: &Value) -> RowKey {
    (
        r["id"].as_i64().unwrap(),
        r["link"].as_str().unwrap().to_owned(),
        r["verdict"].as_str().unwrap().to_owned(),
        r["event_id"].as_str().map(str::to_owned),
        r["serial"].as_u64(),
    )
}

/// Slack between the daemon printing an accepted telegram and its history row being
/// committed: the core loop queues the record *before* printing, and the history task
/// commits what is queued in one transaction (WAL, `synchronous = FULL`: one fsync) within
/// milliseconds. A second covers an fsync on a busy CI disk many times over.
const COMMIT_SLACK: Duration = Duration::from_secs(1);

#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged_and_a_restart_appends() {
    let dir = scratch("kill9");
    let base = synth::base();
    let burst = synth::sequence(&base, 0, 400);
    synth::write_files(&dir.join("burst"), &burst);
    let (mut upstream, port) = sim("burst", &["--interval-ms", "10"], &[dir.join("burst")]);
    let link = |port| LinkSpec {
        name: "primary",
        port,
        framing: "plain",
        silence_limit_s: 60,
    };
    let cfg = config(&dir, &[link(port)]);
    let db = dir.join("history.db");
    let mut d = daemon(&dir, &cfg, &[]);

    // Kill once well over a second of the burst has been reported accepted, mid-burst.
    d.until(WAIT, "150 accepted", |log| {
        log.iter().filter(|(_, v)| accepted(v)).count() >= 150
    });
    upstream.pump();
    assert!(
        !upstream.values().any(|v| v["event"] == "end_of_sequence"),
        "still mid-burst (the burst lasts ~4 s)"
    );
    let killed_at = d.kill9();
    assert!(
        d.log.iter().filter(|(_, v)| accepted(v)).count() < burst.len(),
        "killed before the burst ended"
    );
    drop(upstream);

    let printed: Vec<(Instant, (String, u64))> = d
        .log
        .iter()
        .filter(|(_, v)| accepted(v))
        .map(|(t, v)| (*t, key(v)))
        .collect();
    let acknowledged: Vec<&(String, u64)> = printed
        .iter()
        .filter(|(t, _)| *t + COMMIT_SLACK <= killed_at)
        .map(|(_, k)| k)
        .collect();
    assert!(
        acknowledged.len() >= 20,
        "{} acknowledged",
        acknowledged.len()
    );

    // The database opens (the WAL left by the kill is read), passes SQLite's check, and
    // holds every telegram acknowledged a second before the kill.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = eewgate::store::Store::open_read_only(&db).await.unwrap();
        store.quick_check().await.unwrap();
        store.close().await;
    });
    let rows = history(&db, "--telegrams");
    let ids: BTreeSet<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "row ids are unique");
    let stored: BTreeSet<(String, u64)> = rows
        .iter()
        .filter(|r| r["verdict"] == "accepted")
        .map(|r| {
            assert_eq!(r["link"], "primary");
            assert!(r["size"].as_u64().unwrap() > 100, "{r}");
            key(r)
        })
        .collect();
    assert_eq!(
        stored.len(),
        rows.len(),
        "only accepted telegrams, each once"
    );
    let missing: Vec<&&(String, u64)> = acknowledged
        .iter()
        .filter(|k| !stored.contains(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged ≥{COMMIT_SLACK:?} before the kill but not in history: {missing:?}"
    );
    let printed_keys: BTreeSet<&(String, u64)> = printed.iter().map(|(_, k)| k).collect();
    assert!(
        stored.iter().all(|k| printed_keys.contains(k)),
        "nothing stored that was not received"
    );
    let late = printed.len() - acknowledged.len();
    let late_stored = printed
        .iter()
        .filter(|(t, k)| *t + COMMIT_SLACK > killed_at && stored.contains(k))
        .count();
    eprintln!(
        "kill -9: {} accepted printed, {} stored; of the {late} printed in the last {COMMIT_SLACK:?}, {late_stored} stored",
        printed.len(),
        stored.len()
    );
    let before: BTreeSet<RowKey> = rows.iter().map(row_key).collect();

    // Restart on the same database against a new upstream with new reports.
    let fresh = synth::sequence(&base, 100, 20);
    synth::write_files(&dir.join("fresh"), &fresh);
    let (_upstream, port) = sim("fresh", &["--interval-ms", "20"], &[dir.join("fresh")]);
    let cfg = config(&dir, &[link(port)]);
    let (socket, notify) = notify_socket(&dir);
    let mut d = daemon(&dir, &cfg, &[("NOTIFY_SOCKET", notify)]);
    wait_ready(&socket);
    d.wait_for(WAIT, "link up", 0, |v| link_up(v, "primary"));
    d.until(WAIT, "the new reports accepted", |log| {
        log.iter().filter(|(_, v)| accepted(v)).count() >= fresh.len()
    });
    assert!(
        !d.values().any(|v| fault(v, "storage", true)),
        "history healthy after the restart"
    );
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    let rows = history(&db, "--telegrams");
    let after: BTreeSet<RowKey> = rows.iter().map(row_key).collect();
    assert!(before.is_subset(&after), "every row from before is intact");
    let new: Vec<&RowKey> = after.difference(&before).collect();
    assert_eq!(new.len(), fresh.len(), "{new:?}");
    let old_max = before.iter().map(|r| r.0).max().unwrap_or(0);
    for r in new {
        assert!(r.0 > old_max, "appended: {r:?}");
        assert_eq!(r.2, "accepted");
        assert_eq!(r.3.as_deref(), Some(synth::event_id(100).as_str()));
    }
}
