//! The appliance's footprint, measured on the real release binary: its size (as built and
//! stripped), start-to-READY time, resident memory and idle CPU, first with an empty
//! history and then with a year of it (50,000 telegrams in SQLite), the database's size
//! per year and the history page query time at that size.
//!
//! The daemon runs as on the appliance but with the sim board: one JMA TCP link to this
//! process (connected, silent — an idle day), the web UI, SQLite history, the delivery
//! assurance schedule; no MQTT broker (the MQTT output is measured by `--bench latency`).
//! READY is taken from systemd's notify protocol: the bench is the `NOTIFY_SOCKET`.
//!
//! `cargo bench -p eewgate --bench footprint` prints a Markdown table (BENCHMARKS.md).
//! `FOOTPRINT_IDLE_S` sets the idle window (default 30 s). Run without `--bench`
//! (`cargo test --benches`) it is a smoke test: 2,000 telegrams and a 2 s idle window.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    reason = "a benchmark: any failure should stop it loudly"
)]

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use eewgate::store::{PageQuery, Record, Store, TelegramRecord, Verdict};

/// The daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, link_port: u16) -> PathBuf {
    let text = format!(
        "# eewgate footprint benchmark\n\
         [site]\nlat = 38.05\nlon = 140.75\narv400 = 1.2\narea_code = \"221\"\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n\
         [webui]\nlisten = \"127.0.0.1:{}\"\nstate_dir = {:?}\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {link_port}\n\
         framing = \"plain\"\nsilence_limit_s = 3600\n",
        dir.join("history.db").to_string_lossy(),
        free_port(),
        dir.join("state").to_string_lossy(),
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What one start of the daemon measured.
struct Run {
    ready: Duration,
    rss_ready_kb: u64,
    rss_idle_kb: u64,
    hwm_kb: u64,
    cpu_percent: f64,
}

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_s() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100)
}

/// Starts the daemon in `dir`, waits for READY, lets it settle, then measures an idle
/// window of `idle`.
fn measure(dir: &Path, idle: Duration) -> Run {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = config(dir, upstream.local_addr().unwrap().port());
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_eewgate"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("EEWGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 4096];
    let ready = loop {
        let n = socket.recv(&mut buf).expect("READY=1 within 60 s");
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            break started.elapsed();
        }
    };
    // The link connects (and stays silent, as on an idle day).
    let (_link, _) = upstream.accept().unwrap();
    let pid = daemon.0.id();
    std::thread::sleep(Duration::from_secs(1));
    let rss_ready_kb = proc_status_kb(pid, "VmRSS:");
    let ticks0 = cpu_ticks(pid);
    let t0 = Instant::now();
    std::thread::sleep(idle);
    let ticks = cpu_ticks(pid) - ticks0;
    let wall = t0.elapsed().as_secs_f64();
    let cpu_percent = ticks as f64 / clock_ticks_per_s() as f64 / wall * 100.0;
    let run = Run {
        ready,
        rss_ready_kb,
        rss_idle_kb: proc_status_kb(pid, "VmRSS:"),
        hwm_kb: proc_status_kb(pid, "VmHWM:"),
        cpu_percent,
    };
    // The daemon goes before its link does (else it logs the link's loss).
    drop(daemon);
    run
}

/// A year of telegrams as the appliance receives them over two links: `rows` spread over
/// 365 days, the raw bytes of real telegrams (code telegrams; one in twenty a JMA XML
/// document), 45 % accepted, 45 % duplicates (the second link's copy), 8 % rejected, 2 %
/// garbage.
fn a_year(rows: usize) -> Vec<Record> {
    let f = fixtures();
    let code = [
        "20110311_tohoku_ncn001_first.txt",
        "20110311_tohoku_ncn009_warning.txt",
        "20110415_fukushima_ncn005_warning.txt",
    ]
    .map(|n| std::fs::read(f.join(n)).unwrap());
    let xml = std::fs::read(f.join("jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml"))
        .unwrap();
    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let step_ms = 365 * 86_400_000 / i64::try_from(rows).unwrap();
    (0..rows)
        .map(|i| {
            let n = i64::try_from(i).unwrap();
            let verdict = match i % 50 {
                0 => Verdict::Garbage,
                1..=4 => Verdict::Rejected,
                k if k % 2 == 0 => Verdict::Accepted,
                _ => Verdict::Duplicate,
            };
            let report = matches!(verdict, Verdict::Accepted | Verdict::Duplicate);
            let raw = if i % 20 == 0 {
                xml.clone()
            } else {
                code[i % code.len()].clone()
            };
            Record::Telegram(TelegramRecord {
                received_at: start + chrono::Duration::milliseconds(n * step_ms),
                link: if verdict == Verdict::Duplicate {
                    "backup"
                } else {
                    "primary"
                }
                .to_owned(),
                verdict,
                reason: (!report).then(|| "bad_header".to_owned()),
                message: (!report).then(|| "the header is not a telegram header".to_owned()),
                event_id: report.then(|| format!("{:014}", 20_260_101_000_000 + n / 10)),
                serial: report.then(|| u32::try_from(i % 10 + 1).unwrap()),
                status: report.then(|| "normal".to_owned()),
                kind: report.then(|| if i % 10 == 6 { "warning" } else { "forecast" }.to_owned()),
                format: report.then(|| if i % 20 == 0 { "jma_xml" } else { "jma_code" }.to_owned()),
                product: report.then(|| if i % 20 == 0 { "vxse44" } else { "code37" }.to_owned()),
                actionable: report.then_some(true),
                decode_us: Some(40),
                raw,
            })
        })
        .collect()
}

fn dir_size(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// The median of five page queries after one to warm the cache.
async fn page_time(store: &Store, q: &PageQuery) -> Duration {
    let mut times = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        let rows = store.telegrams_page(q).await.unwrap();
        assert!(!rows.is_empty());
        times.push(t.elapsed());
    }
    times.remove(0);
    times.sort();
    times[2]
}

fn strip_size(bin: &Path, dir: &Path) -> Option<u64> {
    let out = dir.join("eewgate.stripped");
    let ok = Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::metadata(&out).ok().map(|m| m.len()))
        .flatten()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows = if full { 50_000 } else { 2_000 };
    let idle = Duration::from_secs(
        std::env::var("FOOTPRINT_IDLE_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { 30 } else { 2 }),
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("footprint-bench");
    let _ = std::fs::remove_dir_all(&root);
    let empty_dir = root.join("empty");
    let year_dir = root.join("year");
    std::fs::create_dir_all(&empty_dir).unwrap();
    std::fs::create_dir_all(&year_dir).unwrap();

    let bin = Path::new(env!("CARGO_BIN_EXE_eewgate"));
    let size = std::fs::metadata(bin).unwrap().len();
    let stripped = strip_size(bin, &root);

    let empty = measure(&empty_dir, idle);

    // A year of history, written the way the daemon writes (batches through the store).
    let db = year_dir.join("history.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = a_year(rows);
    let (insert, db_bytes, newest, middle, filtered) = runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let t = Instant::now();
        for chunk in records.chunks(500) {
            store.record_batch(chunk).await.unwrap();
        }
        let insert = t.elapsed();
        let half = i64::try_from(rows / 2).unwrap();
        let page = |before_id, verdict: Option<&str>| PageQuery {
            before_id,
            limit: 50,
            verdict: verdict.map(str::to_owned),
            ..PageQuery::default()
        };
        let newest = page_time(&store, &page(None, None)).await;
        let middle = page_time(&store, &page(Some(half), None)).await;
        let filtered = page_time(&store, &page(Some(half), Some("garbage"))).await;
        drop(store);
        (insert, dir_size(&db), newest, middle, filtered)
    });
    let year = measure(&year_dir, idle);
    let db_after = dir_size(&db);

    let per_year = if full { "" } else { " (smoke run: not a year)" };
    println!(
        "\n## eewgate footprint ({rows} telegrams{per_year}, idle window {} s)\n",
        idle.as_secs()
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| binary (release, as built) | {} |", mib(size));
    match stripped {
        Some(s) => println!("| binary (stripped) | {} |", mib(s)),
        None => println!("| binary (stripped) | `strip` not available |"),
    }
    for (name, r) in [("empty history", &empty), ("a year of history", &year)] {
        println!(
            "| start to READY, {name} | {:.0} ms |",
            r.ready.as_secs_f64() * 1000.0
        );
        println!(
            "| resident memory 1 s after READY, {name} | {} |",
            mib(r.rss_ready_kb * 1024)
        );
        println!(
            "| resident memory after {} s idle, {name} (peak) | {} ({}) |",
            idle.as_secs(),
            mib(r.rss_idle_kb * 1024),
            mib(r.hwm_kb * 1024)
        );
        println!("| idle CPU, {name} | {:.2} % of one core |", r.cpu_percent);
    }
    println!(
        "| database, {rows} telegrams | {} ({:.0} bytes per telegram); {} after a start on it |",
        mib(db_bytes),
        db_bytes as f64 / rows as f64,
        mib(db_after)
    );
    println!(
        "| writing them (batches of 500) | {:.1} s |",
        insert.as_secs_f64()
    );
    println!(
        "| history page of 50, newest | {:.2} ms |",
        newest.as_secs_f64() * 1000.0
    );
    println!(
        "| history page of 50, from the middle | {:.2} ms |",
        middle.as_secs_f64() * 1000.0
    );
    println!(
        "| history page of 50, garbage only (2 %), from the middle | {:.2} ms |",
        filtered.as_secs_f64() * 1000.0
    );
}
