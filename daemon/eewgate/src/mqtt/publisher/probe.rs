//! The MQTT probe (the self-test, and delivery assurance's scheduled probe): a message of
//! type `probe` published on `<prefix>/event` — the alert messages' own topic (QoS 1) —
//! and received back through the daemon's own subscription to it. The round trip is the
//! evidence: it proves the broker, the credentials, the topic prefix and the broker's
//! ACL for the alert topics, which a PUBACK alone does not (a broker acknowledges a
//! publish it then drops for want of permission on some setups).
//!
//! With `bms_ack`, the building management system answers each probe on `<prefix>/ack`
//! with its `probe_id`; only that answer proves the channel, so a BMS subscribed to a
//! wrong prefix (or not at all) fails the probe although the broker routes it.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Class, Msg, OUTPUT, Outcome, Publisher};
use crate::mqtt::payload::ms_time;
use crate::outputs::{Proof, ms};
use crate::system::clock::now_jst;

/// A probe under way.
#[derive(Debug)]
pub(super) struct Probe {
    id: String,
    tag: u64,
    source: &'static str,
    started: Instant,
    /// The broker's PUBACK (success) came.
    acked: Option<Instant>,
    /// The probe came back through the daemon's own subscription, this long after.
    back: Option<Duration>,
}

impl Publisher {
    /// Where probes go: the alert messages' own topic, so the probe takes their path.
    pub(super) fn probe_topic(&self) -> String {
        self.names.topic("event")
    }

    /// Where the BMS answers probes.
    pub(super) fn ack_topic(&self) -> String {
        self.names.topic("ack")
    }

    fn method(&self) -> &'static str {
        if self.cfg.bms_ack {
            eew_core::assurance::method::BMS_ACK
        } else {
            eew_core::assurance::method::ROUNDTRIP
        }
    }

    /// Starts a probe (`source`: `self_test` or `probe`); one at a time.
    pub(super) fn start_probe(&mut self, source: &'static str) {
        if self.probe.is_some() {
            tracing::info!(output = OUTPUT, "a probe is already under way");
            return;
        }
        if !self.connected && !self.attempted {
            // The connection is still being made (the daemon just started, or a saved
            // change restarted the output): the probe waits for it, up to its timeout.
            self.probe_waiting.get_or_insert((source, Instant::now()));
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
        let mut payload = json!({
            "type": "probe", "probe_id": id, "device_id": self.names.device_id,
            "sent_at": ms_time(sent),
        });
        if self.cfg.bms_ack
            && let Some(m) = payload.as_object_mut()
        {
            m.insert("ack_topic".into(), json!(self.ack_topic()));
        }
        tracing::info!(output = OUTPUT, probe_id = %id, topic = %self.probe_topic(), "probe sent");
        let now = Instant::now();
        self.probe = Some(Probe {
            id,
            tag,
            source,
            started: now,
            acked: None,
            back: None,
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

    /// A message from the broker on the probe or acknowledgement topic: true when it
    /// was (our own alert messages come back on the probe topic too, and are ignored).
    pub(super) fn probe_message(&mut self, topic: &str, payload: &[u8]) -> bool {
        let ack = self.cfg.bms_ack && topic == self.ack_topic();
        if !ack && topic != self.probe_topic() {
            return false;
        }
        let Some(p) = self.probe.as_mut() else {
            return true;
        };
        // Only a probe's own id is looked for: an alert message is never parsed whole.
        let id = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("probe_id")?.as_str().map(str::to_owned));
        if id.as_deref() != Some(p.id.as_str()) {
            if ack {
                tracing::info!(output = OUTPUT, probe_id = ?id, "an acknowledgement of another probe");
            }
            return true;
        }
        let elapsed = p.started.elapsed();
        let prefix = self.names.prefix.clone();
        let broker = self.names.broker.clone();
        if ack {
            let detail = format!(
                "the building management system acknowledged the probe on {prefix}/ack in {:.1} ms",
                ms(elapsed)
            );
            self.finish_probe(true, Some(ms(elapsed)), detail);
        } else if self.cfg.bms_ack {
            // Back through the broker; the BMS's answer is still awaited.
            p.back = Some(elapsed);
        } else {
            let detail = format!(
                "probe received back through the broker {broker} on {prefix}/event in {:.1} ms",
                ms(elapsed)
            );
            self.finish_probe(true, Some(ms(elapsed)), detail);
        }
        true
    }

    /// When the probe under way times out.
    pub(super) fn probe_deadline(&self) -> Option<Instant> {
        let waiting = self.probe_waiting.map(|(_, at)| at);
        self.probe
            .as_ref()
            .map(|p| p.started)
            .or(waiting)
            .map(|at| at + self.cfg.probe_timeout)
    }

    /// Fails the probe once it is overdue.
    pub(super) fn probe_timers(&mut self, now: Instant) {
        if let Some((source, at)) = self.probe_waiting
            && now >= at + self.cfg.probe_timeout
        {
            self.probe_waiting = None;
            let why = self.problem.clone().unwrap_or_else(|| "no answer".into());
            let detail = format!(
                "not connected to the broker {} within {} s: {why}",
                self.names.broker,
                self.cfg.probe_timeout.as_secs()
            );
            self.probe_result(source, false, None, detail);
        }
        let Some(p) = self.probe.as_ref() else {
            return;
        };
        let timeout = self.cfg.probe_timeout;
        if now < p.started + timeout {
            return;
        }
        let detail = if let Some(back) = p.back {
            format!(
                "the probe came back through the broker in {:.1} ms but the building management \
                 system did not acknowledge it on {} within {} s: is it subscribed to {}?",
                ms(back),
                self.ack_topic(),
                timeout.as_secs(),
                self.probe_topic()
            )
        } else if p.acked.is_some() {
            format!(
                "the broker acknowledged the probe but never delivered it back on {} within {} s: \
                 check the broker's ACL for this client and prefix",
                self.probe_topic(),
                timeout.as_secs()
            )
        } else {
            format!(
                "no acknowledgement from the broker {} within {} s",
                self.names.broker,
                timeout.as_secs()
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
            method: self.method(),
            ok,
            measurement_ms,
            detail,
        });
    }
}
