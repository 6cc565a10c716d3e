//! The web UI over the in-memory fake appliance, with a status that changes every second
//! and an alert with a countdown every minute — for UI work without the daemon:
//! `cargo run -p eewgate-webui --example demo -- 127.0.0.1:8080`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use eewgate_webui::fake::FakeAppliance;
use eewgate_webui::{Options, WebUi};
use serde_json::json;

fn status(tick: u64) -> serde_json::Value {
    let now = DateTime::<Utc>::from(SystemTime::now());
    let alerting = tick % 60 < 25;
    let current = alerting.then(|| {
        json!({
            "event_id": "20260101120000",
            "label": "drill",
            "class": "5-",
            "warning": true,
            "flags": { "plum": true, "deep": false, "single_station": false },
            "s_arrival_at": (now + chrono::Duration::seconds(i64::try_from(25 - tick % 60).unwrap_or(0))).to_rfc3339(),
        })
    });
    json!({
        "started_at": now,
        "ready": true,
        "links": {
            "dmdata-tokyo": { "up": true, "peer": "ws-tokyo", "fault": false, "last_alive_at": now, "last_telegram_at": now, "telegrams": tick },
            "dmdata-osaka": { "up": tick % 20 < 15, "down_reason": "connection reset", "fault": false, "last_alive_at": now },
        },
        "all_links_down": false,
        "time": { "synchronised": true, "est_error_us": 1200, "since_last_sync_s": 30, "upstream_offset_ms": 450, "fault": false },
        "storage": { "ok": true, "dropped": 0 },
        "watchdog": { "systemd": true, "hardware": false, "progressing": true },
        "outputs": { "relay:1": "ok", "relay:2": "ok", "audio": "ok", "mqtt": "fault: broker unreachable", "led": "normal" },
        "alert": { "running": if alerting { vec!["20260101120000"] } else { vec![] }, "closed_relays": if alerting { vec![1] } else { vec![] }, "led": if alerting { "exercise" } else { "normal" }, "current": current },
        "verification_overdue": [],
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let fake = FakeAppliance::new(status(0));
    fake.state().alerts = (1..=6)
        .map(|i| json!({ "id": i, "event_id": format!("2025120{i}093000"), "label": if i % 2 == 0 { "training" } else { "real" }, "first_ms": 1_764_000_000_000_i64 + i * 86_400_000, "max_class": "4", "cancelled": i == 3, "ended": "expiry" }))
        .collect();
    let ui = WebUi::new(Arc::new(fake.clone()), Options::default()).await?;
    if let Some(code) = ui.setup_code() {
        println!("setup code: {code}");
    }
    tokio::spawn(async move {
        let mut tick = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tick += 1;
            fake.set_status(status(tick));
        }
    });
    println!("http://{addr}/");
    ui.serve(tokio::net::TcpListener::bind(&addr).await?)
        .await?;
    Ok(())
}
