//! The DM-D.S.S link against the simulator (in process, and as the `eewgate sim dmdata`
//! binary): a ticket with the API key, the `dmdata.v2` subprotocol, `start`; every ping
//! answered with its own id (the simulator closes the socket with 4891 or 4640
//! otherwise); gzip+base64 bodies decoded into telegrams the parser accepts; copies of
//! one delivery suppressed by id across two sockets; a wrong key reported clearly and not
//! retried in a loop; dropped and restarted sockets reconnected; garbage set aside. The
//! simulator's own protocol checks (subprotocol, single-use tickets) are tested too.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test crate: helpers outside #[test] fns fail the test by panicking"
)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use eewgate::inputs::LinkEvent;
use eewgate::inputs::dmdata::{self, DmdataConfig, Endpoint};
use eewgate::sim::dmdata::{DmdataSimOptions, load_telegrams, serve};
use eewgate::sim::jma::SimTelegram;
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const KEY: &str = "test-api-key";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams")
        .join(name)
}

/// JMA XML of three products and a DM-D.S.S JSON conversion, all parseable.
fn telegrams() -> Vec<SimTelegram> {
    let files: Vec<PathBuf> = [
        "jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml",
        "jmaxml_vxse43_20240417_bungo_37_01_01_serial1_warning.xml",
        "dmdata_eewinfo_vxse45_rjtd_20110311144810.json",
        "jmaxml_vxse43_20240417_bungo_37_01_02_serial2_warning.xml",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let telegrams = load_telegrams(&files).unwrap();
    assert_eq!(telegrams.len(), 4);
    for t in &telegrams {
        eew_core::parse(&t.bytes).unwrap();
    }
    telegrams
}

struct Sim {
    base: String,
    events: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Sim {
    async fn start(configure: impl FnOnce(&mut DmdataSimOptions)) -> Sim {
        let mut options = DmdataSimOptions::new(telegrams(), Duration::from_millis(250));
        options.api_key = Some(KEY.to_owned());
        options.plan.start_delay = Duration::from_millis(300);
        options.ping_interval = Duration::from_millis(300);
        options.pong_timeout = Duration::from_secs(1);
        options.seed = 7;
        let (tx, events) = mpsc::unbounded_channel();
        options.events = Some(tx);
        configure(&mut options);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, options));
        Sim {
            base: format!("http://{addr}"),
            events,
            seen: Vec::new(),
            task,
        }
    }

    /// Every event so far.
    fn drain(&mut self) -> &[Value] {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }

    fn count(&mut self, event: &str) -> usize {
        self.drain().iter().filter(|e| e["event"] == event).count()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Link {
    rx: mpsc::Receiver<LinkEvent>,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    events: Vec<LinkEvent>,
}

fn config(base: &str, key: &str, endpoints: Vec<Endpoint>) -> DmdataConfig {
    let mut c = DmdataConfig::new("dm", base, key);
    c.endpoints = endpoints;
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c.connect_timeout = Duration::from_secs(3);
    c
}

impl Link {
    fn start(config: DmdataConfig) -> Link {
        let (tx, rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(dmdata::run(config, tx, cancel.clone()));
        Link {
            rx,
            cancel,
            task,
            events: Vec::new(),
        }
    }

    /// Collects events for `d`.
    async fn run_for(&mut self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(until, self.rx.recv()).await {
            self.events.push(e);
        }
    }

    /// Collects events until `done` holds (or panics after 10 s).
    async fn until(&mut self, what: &str, done: impl Fn(&[LinkEvent]) -> bool) {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(&self.events) {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(e)) => self.events.push(e),
                _ => panic!("{what}: not seen; events: {:#?}", self.events),
            }
        }
    }

    fn telegrams(&self) -> Vec<Vec<u8>> {
        telegrams_in(&self.events)
    }

    fn count(&self, pred: impl Fn(&LinkEvent) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }

    async fn stop(self) {
        self.cancel.cancel();
        let done = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the link stops promptly");
        done.unwrap().unwrap();
    }
}

fn telegrams_in(events: &[LinkEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Telegram(r) => Some(r.bytes.clone()),
            _ => None,
        })
        .collect()
}

fn is_up(e: &LinkEvent) -> bool {
    matches!(e, LinkEvent::Up { .. })
}

fn is_down(e: &LinkEvent) -> bool {
    matches!(e, LinkEvent::Down { .. })
}

#[tokio::test]
async fn ticket_subprotocol_start_pongs_and_decoded_telegrams() {
    let mut sim = Sim::start(|_| {}).await;
    let mut link = Link::start(config(&sim.base, KEY, vec![Endpoint::Ticket]));
    link.until("four telegrams", |ev| telegrams_in(ev).len() >= 4)
        .await;
    // long enough for several pings at 300 ms
    link.run_for(Duration::from_millis(900)).await;
    let expected = telegrams();
    let got = link.telegrams();
    assert_eq!(got.len(), 4, "each telegram once");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, &e.bytes, "the body is the file, decoded");
        eew_core::parse(g).unwrap();
    }
    assert!(
        matches!(&link.events[0], LinkEvent::Up { peer, .. } if peer.starts_with("127.0.0.1:"))
    );
    assert_eq!(link.count(is_down), 0, "{:#?}", link.events);
    assert!(link.count(|e| matches!(e, LinkEvent::Alive { .. })) >= 2);
    assert_eq!(sim.count("ticket"), 1);
    assert!(sim.count("ping") >= 3, "{:#?}", sim.drain());
    assert!(
        sim.count("pong") >= 3,
        "every ping answered: {:#?}",
        sim.drain()
    );
    assert_eq!(sim.count("pong_missed") + sim.count("pong_mismatch"), 0);
    assert_eq!(sim.count("closed"), 0, "{:#?}", sim.drain());
    link.stop().await;
    // the socket was closed cleanly (a normal close frame)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let closed: Vec<Value> = sim
        .drain()
        .iter()
        .filter(|e| e["event"] == "closed")
        .cloned()
        .collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["code"], 1000);
}

#[tokio::test]
async fn two_sockets_at_once_and_copies_suppressed_by_id() {
    let mut sim = Sim::start(|o| {
        o.plan.duplicate = 1.0;
        o.plan.start_delay = Duration::from_millis(600);
    })
    .await;
    let host = sim.base.trim_start_matches("http://").to_owned();
    // one socket through the host-replacement path, one to the ticket's URL
    let mut link = Link::start(config(
        &sim.base,
        KEY,
        vec![Endpoint::Host(host), Endpoint::Ticket],
    ));
    link.until("four telegrams", |ev| telegrams_in(ev).len() >= 4)
        .await;
    link.run_for(Duration::from_millis(500)).await;
    assert_eq!(sim.count("start"), 2, "two sockets: {:#?}", sim.drain());
    let sent = sim.count("sent");
    assert_eq!(sent, 16, "4 telegrams × 2 copies × 2 sockets");
    let got = link.telegrams();
    assert_eq!(got.len(), 4, "one Telegram per id");
    let distinct: HashSet<&Vec<u8>> = got.iter().collect();
    assert_eq!(distinct.len(), 4);
    // Up names both sockets once both are up
    assert!(
        link.events.iter().any(
            |e| matches!(e, LinkEvent::Up { peer, .. } if peer.matches("127.0.0.1:").count() == 2)
        ),
        "{:#?}",
        link.events
    );
    assert_eq!(link.count(is_down), 0);
    link.stop().await;
}

#[tokio::test]
async fn a_wrong_api_key_is_down_with_a_clear_reason_and_not_retried_in_a_loop() {
    let mut sim = Sim::start(|_| {}).await;
    let mut link = Link::start(config(
        &sim.base,
        "not-the-key",
        vec![Endpoint::Ticket, Endpoint::Ticket],
    ));
    link.until("down", |ev| ev.iter().any(is_down)).await;
    link.run_for(Duration::from_secs(2)).await;
    let downs: Vec<&String> = link
        .events
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Down { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(downs.len(), 1, "one Down per outage: {downs:?}");
    assert!(
        downs[0].contains("API key")
            && downs[0].contains("401")
            && downs[0].contains("every 300 s"),
        "{}",
        downs[0]
    );
    assert_eq!(link.count(is_up), 0);
    assert_eq!(
        sim.count("ticket_refused"),
        2,
        "one attempt per socket, then the long backoff: {:#?}",
        sim.drain()
    );
    link.stop().await;
}

#[tokio::test]
async fn a_dropped_socket_reconnects_and_a_restart_too() {
    let mut sim = Sim::start(|o| {
        o.drop_after = Some(2);
        o.plan.interval = Duration::from_millis(500);
    })
    .await;
    let mut link = Link::start(config(&sim.base, KEY, vec![Endpoint::Ticket]));
    link.until("four telegrams", |ev| telegrams_in(ev).len() >= 4)
        .await;
    assert!(link.count(is_up) >= 2, "{:#?}", link.events);
    assert!(link.count(is_down) >= 1);
    let reason = link
        .events
        .iter()
        .find_map(|e| match e {
            LinkEvent::Down { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("127.0.0.1:"), "{reason}");
    assert_eq!(link.telegrams().len(), 4);
    assert!(sim.count("ticket") >= 2, "a new ticket per connection");
    link.stop().await;

    let mut sim = Sim::start(|o| {
        o.restart_after = Some(1);
        o.plan.interval = Duration::from_millis(500);
    })
    .await;
    let mut link = Link::start(config(&sim.base, KEY, vec![Endpoint::Ticket]));
    link.until("a restart", |ev| ev.iter().any(is_down)).await;
    link.until("up again", |ev| ev.iter().filter(|e| is_up(e)).count() >= 2)
        .await;
    let reason = link
        .events
        .iter()
        .find_map(|e| match e {
            LinkEvent::Down { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("4503"), "{reason}");
    assert!(sim.count("restart") >= 1);
    link.stop().await;
}

#[tokio::test]
async fn bad_bodies_and_garbage_are_set_aside_and_the_telegrams_still_arrive() {
    let mut sim = Sim::start(|o| {
        o.bad_body = true;
        o.plan.garbage = true;
        o.plan.interval = Duration::from_millis(100);
    })
    .await;
    let mut link = Link::start(config(&sim.base, KEY, vec![Endpoint::Ticket]));
    link.until("four telegrams", |ev| telegrams_in(ev).len() >= 4)
        .await;
    link.run_for(Duration::from_millis(300)).await;
    let reasons: Vec<&str> = link
        .events
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Garbage { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "dmdata_bad_body").count(),
        4,
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| ["dmdata_bad_body", "dmdata_bad_json", "dmdata_binary_frame"].contains(r)),
        "{reasons:?}"
    );
    assert_eq!(link.telegrams().len(), 4);
    assert_eq!(link.count(is_down), 0);
    assert_eq!(sim.count("closed"), 0);
    link.stop().await;
}

#[tokio::test]
async fn the_simulator_requires_the_subprotocol_and_single_use_tickets() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let sim = Sim::start(|_| {}).await;
    let mut c = config(&sim.base, "wrong", vec![Endpoint::Ticket]);
    c.types = vec!["VXSE45".into()];
    let refused = dmdata::socket_start(&c).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    c.api_key = KEY.into();
    let ticket = dmdata::socket_start(&c).await.unwrap();
    assert!(ticket.url.starts_with("ws://127.0.0.1:"), "{}", ticket.url);
    assert!(ticket.socket_id.is_some());
    let url = ticket.url;
    // without the subprotocol: error 4400, then close 4400
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    let error: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_i64()),
        (Some("error"), Some(4400))
    );
    assert!(
        matches!(ws.next().await, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 4400)
    );
    // the ticket was used by that failed attempt: 4404 now, even with the subprotocol
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "dmdata.v2".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "dmdata.v2"
    );
    let first = ws.next().await.unwrap().unwrap();
    let error: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(error["code"], 4404);
}

#[tokio::test]
async fn the_simulator_binary_serves_the_link() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args([
            "sim",
            "dmdata",
            "--api-key",
            KEY,
            "--ping-interval-s",
            "0.3",
        ])
        .arg("--start-delay-ms")
        .arg("200")
        .arg(fixture(
            "jmaxml_vxse44_20240417_bungo_36_01_02_serial2_forecast.xml",
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first: Value = serde_json::from_str(&line).unwrap();
    let base = first["listening"].as_str().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut link = Link::start(config(&base, KEY, vec![Endpoint::Ticket]));
    link.until("a telegram", |ev| !telegrams_in(ev).is_empty())
        .await;
    link.run_for(Duration::from_millis(700)).await;
    link.stop().await;
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let events: Vec<Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("ticket"), 1, "{events:#?}");
    assert_eq!(count("sent"), 1);
    assert!(count("pong") >= 2, "{events:#?}");
    assert_eq!(count("pong_missed"), 0);
}

#[tokio::test]
async fn a_quiet_socket_is_kept_alive_by_our_own_pings() {
    let mut sim = Sim::start(|o| {
        o.ping_interval = Duration::from_secs(60);
        o.plan.start_delay = Duration::from_secs(60);
    })
    .await;
    let mut c = config(&sim.base, KEY, vec![Endpoint::Ticket]);
    c.quiet_ping_after = Duration::from_millis(200);
    c.idle_timeout = Duration::from_millis(700);
    let mut link = Link::start(c);
    link.until("up", |ev| ev.iter().any(is_up)).await;
    link.run_for(Duration::from_millis(1500)).await;
    assert_eq!(link.count(is_down), 0, "{:#?}", link.events);
    assert!(sim.count("client_ping") >= 3, "{:#?}", sim.drain());
    assert!(link.count(|e| matches!(e, LinkEvent::Alive { .. })) >= 3);
    link.stop().await;
}

#[tokio::test]
async fn a_silent_socket_is_dropped_freed_through_the_api_and_reopened() {
    let mut sim = Sim::start(|o| {
        o.ping_interval = Duration::from_secs(60);
        o.plan.start_delay = Duration::from_secs(60);
    })
    .await;
    let mut c = config(&sim.base, KEY, vec![Endpoint::Ticket]);
    c.quiet_ping_after = Duration::from_secs(60);
    c.idle_timeout = Duration::from_millis(500);
    let mut link = Link::start(c);
    link.until("down", |ev| ev.iter().any(is_down)).await;
    let reason = link
        .events
        .iter()
        .find_map(|e| match e {
            LinkEvent::Down { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("nothing received"), "{reason}");
    link.until("up again", |ev| ev.iter().filter(|e| is_up(e)).count() >= 2)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.count("socket_closed_by_api") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Socket Close was not asked: {:#?}",
            sim.drain()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the server closed the dead socket with 4808
    assert!(
        sim.drain()
            .iter()
            .any(|e| e["event"] == "closed" && e["code"] == 4808),
        "{:#?}",
        sim.drain()
    );
    link.stop().await;
}

#[tokio::test]
async fn over_the_connection_limit_one_socket_carries_on_and_the_other_says_why() {
    let mut sim = Sim::start(|o| o.max_sockets = Some(1)).await;
    let mut link = Link::start(config(
        &sim.base,
        KEY,
        vec![Endpoint::Ticket, Endpoint::Ticket],
    ));
    link.until("a degraded up", |ev| {
        ev.iter().any(
            |e| matches!(e, LinkEvent::Up { peer, .. } if peer.contains("down:") && peer.contains("limit")),
        )
    })
    .await;
    link.until("four telegrams", |ev| telegrams_in(ev).len() >= 4)
        .await;
    assert_eq!(link.count(is_down), 0, "the link is up on one socket");
    assert_eq!(sim.count("start"), 1);
    // the refused socket waits the limited backoff (30 s), not the normal one
    link.run_for(Duration::from_millis(500)).await;
    assert!(
        sim.count("ticket_refused") + sim.count("closed") <= 1,
        "{:#?}",
        sim.drain()
    );
    link.stop().await;
}
