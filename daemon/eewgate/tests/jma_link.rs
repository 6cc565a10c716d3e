//! The JMA stream link against real peers: a loopback TCP listener driven by the test,
//! the simulator (as a library and as the `eewgate sim` binary), and a pseudo-terminal
//! standing in for a serial line. Telegrams arrive whole and in order, noise is reported,
//! a lost connection is `Down` and then `Up` again, JMA socket health checks are
//! answered, and cancelling stops the link at once.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test crate: helpers outside #[test] fns fail the test by panicking"
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use eew_core::telegram::framing::FramingKind;
use eewgate::inputs::LinkEvent;
use eewgate::inputs::jma_stream::{self, JmaStreamConfig, Transport};
use eewgate::sim::jma::{self, ReplayPlan, SimTelegram, TITLE_SJIS, TcpSimOptions, load_telegrams};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

/// Real telegrams that parse, in a fixed order.
fn telegrams() -> Vec<SimTelegram> {
    let names = [
        "20110311_tohoku_ncn001_first.txt",
        "20110311_tohoku_ncn009_warning.txt",
        "20110311_tohoku_ncn012_warning.txt",
        "20120108_ncn003_cancel.txt",
        "spec_20061004_warning_type47_ncpn01.txt",
    ];
    let files: Vec<PathBuf> = names.iter().map(|n| fixture_dir().join(n)).collect();
    let telegrams = load_telegrams(&files).unwrap();
    assert_eq!(telegrams.len(), names.len());
    for t in &telegrams {
        eew_core::parse(&t.bytes).unwrap();
    }
    telegrams
}

struct Link {
    rx: mpsc::Receiver<LinkEvent>,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Link {
    fn start(transport: Transport, framing: FramingKind) -> Link {
        let mut config = JmaStreamConfig::new("test-link", transport, framing);
        config.backoff_min = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(200);
        config.connect_timeout = Duration::from_secs(2);
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(jma_stream::run(config, tx, cancel.clone()));
        Link { rx, cancel, task }
    }

    fn tcp(addr: std::net::SocketAddr, framing: FramingKind) -> Link {
        Link::start(
            Transport::Tcp {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
            framing,
        )
    }

    async fn next(&mut self) -> LinkEvent {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no link event in time")
            .expect("the link's channel closed")
    }

    /// The next event that is not `Alive`.
    async fn next_not_alive(&mut self) -> LinkEvent {
        loop {
            match self.next().await {
                LinkEvent::Alive { .. } => {}
                other => return other,
            }
        }
    }

    async fn expect_up(&mut self) -> String {
        match self.next_not_alive().await {
            LinkEvent::Up { link, peer } => {
                assert_eq!(&*link, "test-link");
                peer
            }
            other => panic!("expected Up, got {other:?}"),
        }
    }

    async fn expect_telegram(&mut self) -> Vec<u8> {
        match self.next_not_alive().await {
            LinkEvent::Telegram(r) => {
                assert_eq!(&*r.link, "test-link");
                assert!(r.received_mono.elapsed() < WAIT);
                r.bytes
            }
            other => panic!("expected a telegram, got {other:?}"),
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("the link did not stop promptly after cancel")
            .unwrap();
        result.unwrap();
    }
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[tokio::test]
async fn telegrams_arrive_whole_and_in_order_however_the_bytes_are_cut() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut link = Link::tcp(listener.local_addr().unwrap(), FramingKind::Plain);
    let (mut peer, _) = listener.accept().await.unwrap();
    link.expect_up().await;

    let telegrams = telegrams();
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (i, t) in telegrams.iter().enumerate() {
        match i % 3 {
            0 => stream.extend_from_slice(b"\r\n\r\n"),
            1 => {
                stream.extend_from_slice(TITLE_SJIS);
                stream.extend_from_slice(b"\r\n\r\n");
            }
            _ => stream.extend_from_slice(b"+++ NOISE +++\n"),
        }
        let mut want = if i % 3 == 1 {
            [TITLE_SJIS, b"\r\n\r\n"].concat()
        } else {
            Vec::new()
        };
        want.extend_from_slice(trimmed(&t.bytes));
        expected.push(want);
        stream.extend_from_slice(&t.bytes);
        stream.extend_from_slice(b"\r\n");
    }
    // Irregular writes: 1, 2, 3 … bytes at a time, then the rest.
    let writer = tokio::spawn(async move {
        let mut at = 0;
        let mut size = 1;
        while at < stream.len() {
            let end = (at + size).min(stream.len());
            peer.write_all(&stream[at..end]).await.unwrap();
            peer.flush().await.unwrap();
            tokio::task::yield_now().await;
            at = end;
            size = size % 97 + 1;
        }
        peer
    });

    let mut got = Vec::new();
    let mut garbage = 0;
    while got.len() < expected.len() {
        match link.next().await {
            LinkEvent::Telegram(r) => got.push(r.bytes),
            LinkEvent::Garbage { bytes, reason, .. } => {
                assert_eq!(reason, "garbage");
                assert_eq!(trimmed(&bytes), b"+++ NOISE +++");
                garbage += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, expected);
    assert_eq!(garbage, 1);
    for (telegram, t) in got.iter().zip(&telegrams) {
        assert_eq!(
            eew_core::parse(telegram).unwrap(),
            eew_core::parse(&t.bytes).unwrap()
        );
    }
    let _peer = writer.await.unwrap();
    link.stop().await;
}

#[tokio::test]
async fn a_lost_connection_is_down_then_up_again_and_a_cut_telegram_is_truncated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut link = Link::tcp(listener.local_addr().unwrap(), FramingKind::Plain);
    let telegrams = telegrams();

    let (mut peer, _) = listener.accept().await.unwrap();
    link.expect_up().await;
    peer.write_all(&telegrams[0].bytes).await.unwrap();
    assert_eq!(link.expect_telegram().await, trimmed(&telegrams[0].bytes));
    // Half a telegram, then the line drops.
    peer.write_all(&telegrams[1].bytes[..50]).await.unwrap();
    peer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(peer);
    match link.next().await {
        LinkEvent::Garbage { bytes, reason, .. } => {
            assert_eq!(reason, "truncated");
            assert_eq!(bytes, &telegrams[1].bytes[..50]);
        }
        other => panic!("expected the cut telegram, got {other:?}"),
    }
    match link.next().await {
        LinkEvent::Down { link: name, reason } => {
            assert_eq!(&*name, "test-link");
            assert!(reason.contains("closed"), "{reason}");
        }
        other => panic!("expected Down, got {other:?}"),
    }
    // The link reconnects by itself.
    let (mut peer, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    link.expect_up().await;
    peer.write_all(&telegrams[1].bytes).await.unwrap();
    assert_eq!(link.expect_telegram().await, trimmed(&telegrams[1].bytes));
    link.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_down_once_and_cancel_stops_the_retries() {
    // A port with nobody listening.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut link = Link::tcp(addr, FramingKind::Plain);
    match link.next().await {
        LinkEvent::Down { reason, .. } => assert!(!reason.is_empty()),
        other => panic!("expected Down, got {other:?}"),
    }
    // Retries go on quietly: no second Down for the same outage.
    assert!(
        tokio::time::timeout(Duration::from_millis(600), link.rx.recv())
            .await
            .is_err()
    );
    link.stop().await;
}

#[tokio::test]
async fn cancel_stops_a_connected_idle_link_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut link = Link::tcp(listener.local_addr().unwrap(), FramingKind::Plain);
    let (_peer, _) = listener.accept().await.unwrap();
    link.expect_up().await;
    link.stop().await;
}

#[tokio::test]
async fn jma_socket_health_checks_are_answered_and_checkpoints_acknowledged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut options =
        TcpSimOptions::new(telegrams(), ReplayPlan::simple(Duration::from_millis(120)));
    options.framing = FramingKind::JmaSocket;
    options.health_interval = Some(Duration::from_millis(50));
    options.health_timeout = Duration::from_secs(5);
    options.checkpoint = true;
    options.events = Some(events_tx);
    let expected: Vec<Vec<u8>> = options
        .telegrams
        .iter()
        .map(|t| trimmed(&t.bytes).to_vec())
        .collect();
    let server = tokio::spawn(jma::serve_tcp(listener, Arc::new(options)));

    let mut link = Link::tcp(addr, FramingKind::JmaSocket);
    link.expect_up().await;
    let mut got = Vec::new();
    let mut alive = 0;
    while got.len() < expected.len() {
        match link.next().await {
            LinkEvent::Telegram(r) => got.push(r.bytes),
            LinkEvent::Alive { .. } => alive += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, expected);
    assert!(alive >= 3, "{alive} health checks in ~600 ms");

    let mut answers = 0;
    let mut acks = 0;
    while let Ok(event) = events.try_recv() {
        match event["event"].as_str() {
            Some("health_answer") => answers += 1,
            Some("ack") => acks += 1,
            Some("health_missed") => panic!("a health check went unanswered"),
            _ => {}
        }
    }
    assert!(answers >= 3, "{answers}");
    assert!(acks >= expected.len() - 1, "{acks}");
    link.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_broken_jma_socket_frame_is_reported_and_the_link_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut link = Link::tcp(listener.local_addr().unwrap(), FramingKind::JmaSocket);
    let (mut peer, _) = listener.accept().await.unwrap();
    link.expect_up().await;
    // A plain telegram where a socket header should be.
    peer.write_all(&telegrams()[0].bytes).await.unwrap();
    match link.next().await {
        LinkEvent::Garbage { reason, bytes, .. } => {
            assert_eq!(reason, "bad_length");
            assert!(bytes.starts_with(b"37 03 00"));
        }
        other => panic!("expected the broken frame, got {other:?}"),
    }
    match link.next().await {
        LinkEvent::Down { reason, .. } => assert!(reason.contains("bad_length"), "{reason}"),
        other => panic!("expected Down, got {other:?}"),
    }
    let (mut peer, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    link.expect_up().await;
    let wire = eew_core::telegram::framing::encode_telegram(trimmed(&telegrams()[3].bytes), false)
        .unwrap();
    peer.write_all(&wire).await.unwrap();
    assert_eq!(link.expect_telegram().await, trimmed(&telegrams()[3].bytes));
    link.stop().await;
}

#[tokio::test]
async fn the_simulators_faults_come_through_as_garbage_duplicates_and_drops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let plan = ReplayPlan {
        garbage: true,
        duplicate: 0.5,
        ..ReplayPlan::simple(Duration::from_millis(5))
    };
    let mut options = TcpSimOptions::new(telegrams(), plan);
    options.drop_after = Some(6);
    options.max_connections = Some(2);
    options.seed = 11;
    let known: Vec<Vec<u8>> = options
        .telegrams
        .iter()
        .map(|t| trimmed(&t.bytes).to_vec())
        .collect();
    let server = tokio::spawn(jma::serve_tcp(listener, Arc::new(options)));

    let mut link = Link::tcp(addr, FramingKind::Plain);
    for _connection in 0..2 {
        link.expect_up().await;
        let mut sends = 0;
        loop {
            match link.next().await {
                LinkEvent::Telegram(r) => {
                    sends += 1;
                    // A title line may precede the telegram; the rest is one of ours.
                    let start = r
                        .bytes
                        .windows(3)
                        .position(|w| {
                            w[0].is_ascii_digit() && w[1].is_ascii_digit() && w[2] == b' '
                        })
                        .unwrap();
                    let body: Vec<u8> = r.bytes[start..]
                        .iter()
                        .copied()
                        .filter(|&b| b != b'\r')
                        .collect();
                    assert!(known.contains(&body), "{}", String::from_utf8_lossy(&body));
                }
                LinkEvent::Garbage { reason, .. } => assert_eq!(reason, "garbage"),
                LinkEvent::Down { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(sends, 6, "the simulator drops the link after 6 sends");
    }
    // The simulator stops accepting after two connections: the link stays down.
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    link.stop().await;
}

/// Starts the built binary; returns it and its first stdout line as JSON.
fn spawn_sim(
    args: &[&str],
) -> (
    Child,
    serde_json::Value,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (child, first, stdout)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_sim_binary_serves_jma_socket_over_tcp() {
    let files: Vec<String> = telegrams().iter().map(|t| t.source.clone()).collect();
    let mut args = vec![
        "jma-tcp",
        "--framing",
        "jma-socket",
        "--health-interval-s",
        "0.05",
        "--interval-ms",
        "100",
    ];
    args.extend(files.iter().map(String::as_str));
    let (child, first, _stdout) = spawn_sim(&args);
    let _child = Killed(child);
    let addr: std::net::SocketAddr = first["listening"].as_str().unwrap().parse().unwrap();
    let mut link = Link::tcp(addr, FramingKind::JmaSocket);
    link.expect_up().await;
    let mut alive = 0;
    let mut got = 0;
    while got < files.len() {
        match link.next().await {
            LinkEvent::Telegram(r) => {
                eew_core::parse(&r.bytes).unwrap();
                got += 1;
            }
            LinkEvent::Alive { .. } => alive += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(alive >= 2, "{alive}");
    link.stop().await;
}

#[tokio::test]
async fn a_serial_link_reads_the_sim_pty() {
    let files: Vec<String> = telegrams().iter().map(|t| t.source.clone()).collect();
    let mut args = vec![
        "jma-serial",
        "--interval-ms",
        "20",
        "--garbage",
        "--seed",
        "5",
    ];
    args.extend(files.iter().map(String::as_str));
    let (child, first, _stdout) = spawn_sim(&args);
    let _child = Killed(child);
    let device = PathBuf::from(first["pty"].as_str().unwrap());
    let mut link = Link::start(
        Transport::Serial {
            device: device.clone(),
            baud: 9600,
        },
        FramingKind::Plain,
    );
    assert_eq!(link.expect_up().await, device.display().to_string());
    let mut got = 0;
    while got < files.len() {
        match link.next().await {
            LinkEvent::Telegram(r) => {
                eew_core::parse(&r.bytes).unwrap();
                got += 1;
            }
            LinkEvent::Garbage { reason, .. } => assert_eq!(reason, "garbage"),
            other => panic!("unexpected {other:?}"),
        }
    }
    link.stop().await;
}

#[tokio::test]
async fn a_serial_device_that_is_missing_is_down_and_retried() {
    let mut link = Link::start(
        Transport::Serial {
            device: "/dev/eewgate-no-such-tty".into(),
            baud: 9600,
        },
        FramingKind::Plain,
    );
    match link.next().await {
        LinkEvent::Down { reason, .. } => {
            assert!(reason.contains("eewgate-no-such-tty"), "{reason}");
        }
        other => panic!("expected Down, got {other:?}"),
    }
    link.stop().await;
}
