//! The MQTT self-test: a probe message published on `<prefix>/probe` (QoS 1) and
//! received back through the daemon's own subscription to it. The round trip is the
//! evidence: it proves the broker, the credentials, the topic prefix and the broker's
//! ACL for this prefix, which a PUBACK alone does not (a broker acknowledges a publish
//! it then drops for want of permission on some setups).

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Class, Msg, OUTPUT, Outcome, Publisher};
use crate::mqtt::payload::ms_time;
use crate::outputs::{Proof, ms};
use crate::system::clock::now_jst;

/// A probe not back within this has failed.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A probe under way.
#[derive(Debug)]
pub(super) struct Probe {
    id: String,
    tag: u64,
    source: &'static str,
    started: Instant,
    /// The broker's PUBACK (success) came.
    acked: Option<Instant>,
}

impl Publisher {
    pub(super) fn probe_topic(&self) -> String {
        self.names.topic("probe")
    }

    /// Starts a probe (`source`: `self_test` or `probe`); one at a time.
    pub(super) fn start_probe(&mut self, source: &'static str) {
        if self.probe.is_some() {
            tracing::info!(output = OUTPUT, "a probe is already under way");
            return;
        }
        if !self.connected {
            let why = self
                .problem
                .clone()
                .unwrap_or_else(|| "not connected".into());
            self.probe_result(
                source,
                false,
                None,
                format!("not connected to the broker {}: {why}", self.names.broker),
            );
            return;
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        let sent = now_jst();
        let id = format!(
            "{}-{}-{tag}",
            self.names.device_id,
            sent.0.timestamp_millis()
        );
        let payload = json!({
            "type": "probe", "probe_id": id, "device_id": self.names.device_id,
            "sent_at": ms_time(sent),
        });
        tracing::info!(output = OUTPUT, probe_id = %id, topic = %self.probe_topic(), "probe sent");
        let now = Instant::now();
        self.probe = Some(Probe {
            id,
            tag,
            source,
            started: now,
            acked: None,
        });
        self.push(Msg {
            topic: self.probe_topic(),
            payload: payload.to_string().into_bytes(),
            retain: false,
            class: Class::Info,
            born: now,
            tag: Some(tag),
            seq: 0,
            about: None,
        });
    }

    /// What became of the probe's publish, when `tag` is the probe's; false otherwise.
    pub(super) fn probe_outcome(&mut self, tag: u64, outcome: &Outcome) -> bool {
        let Some(p) = self.probe.as_mut().filter(|p| p.tag == tag) else {
            return false;
        };
        match outcome {
            Outcome::Acked { problem: None, .. } => p.acked = Some(Instant::now()),
            Outcome::Acked {
                problem: Some(why), ..
            } => {
                let detail = format!(
                    "the broker refused the probe on {}: {why}",
                    self.probe_topic()
                );
                self.finish_probe(false, None, detail);
            }
            Outcome::Dropped(why) => {
                let detail = format!("the probe could not be sent: {why}");
                self.finish_probe(false, None, detail);
            }
            Outcome::Superseded => {}
        }
        true
    }

    /// A message from the broker: true when it is the probe coming back.
    pub(super) fn probe_message(&mut self, topic: &str, payload: &[u8]) -> bool {
        if topic != self.probe_topic() {
            return false;
        }
        let id = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("probe_id")?.as_str().map(str::to_owned));
        let Some(p) = self.probe.as_ref() else {
            return true;
        };
        if id.as_deref() != Some(p.id.as_str()) {
            tracing::debug!(output = OUTPUT, "a probe message that is not ours");
            return true;
        }
        let rtt = p.started.elapsed();
        let detail = format!(
            "probe received back through the broker {} on {} in {:.1} ms",
            self.names.broker,
            self.probe_topic(),
            ms(rtt)
        );
        self.finish_probe(true, Some(ms(rtt)), detail);
        true
    }

    /// When the probe under way times out.
    pub(super) fn probe_deadline(&self) -> Option<Instant> {
        self.probe.as_ref().map(|p| p.started + PROBE_TIMEOUT)
    }

    /// Fails the probe once it is overdue.
    pub(super) fn probe_timers(&mut self, now: Instant) {
        let Some(p) = self.probe.as_ref() else {
            return;
        };
        if now < p.started + PROBE_TIMEOUT {
            return;
        }
        let detail = if p.acked.is_some() {
            format!(
                "the broker acknowledged the probe but never delivered it back on {} within {} s: \
                 check the broker's ACL for this client and prefix",
                self.probe_topic(),
                PROBE_TIMEOUT.as_secs()
            )
        } else {
            format!(
                "no acknowledgement from the broker {} within {} s",
                self.names.broker,
                PROBE_TIMEOUT.as_secs()
            )
        };
        self.finish_probe(false, None, detail);
    }

    fn finish_probe(&mut self, ok: bool, measurement_ms: Option<f64>, detail: String) {
        if let Some(p) = self.probe.take() {
            self.probe_result(p.source, ok, measurement_ms, detail);
        }
    }

    fn probe_result(
        &self,
        source: &'static str,
        ok: bool,
        measurement_ms: Option<f64>,
        detail: String,
    ) {
        self.ctx.evidence(Proof {
            channel: OUTPUT.to_owned(),
            source,
            method: "roundtrip",
            ok,
            measurement_ms,
            detail,
        });
    }
}
