//! Which alert the retained state shows. The engine marks the Publish actions of the
//! event driving the outputs (`driving`); the state follows that event. When it is
//! cancelled, ends or is reset the state falls back to another running alarm (the first
//! of the engine's `running` list, most dangerous first, that this output has heard of)
//! or is cleared: alert state is never left retained once its alarm is over.

use std::collections::BTreeMap;

use eew_core::JstTime;
use eew_core::engine::{Action, AlertState};

use super::payload::{Shown, publish_state};

/// CAP references kept per event (the earliest are dropped beyond this).
const MAX_REFERENCES: usize = 64;

/// One running alarm this output has published.
#[derive(Clone, Debug)]
struct Active {
    /// Its latest Started/Updated action.
    action: Action,
    /// Order of arrival (the fallback when the engine's order is unknown).
    seq: u64,
    /// Its CAP messages so far (`sender,identifier,sent`).
    cap_refs: Vec<String>,
    /// Its latest CAP document.
    cap_xml: Option<String>,
}

/// The running alarms and the one shown.
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    active: BTreeMap<String, Active>,
    shown: Option<String>,
    updated_at: Option<JstTime>,
    seq: u64,
}

impl Model {
    /// No alert, as of `now` (the state's `updated_at` is never empty).
    pub(crate) fn new(now: JstTime) -> Self {
        Self {
            updated_at: Some(now),
            ..Self::default()
        }
    }

    /// Applies a Publish action; true when the shown state changed (republish it).
    /// `running` is the engine's list of running alarms, most dangerous first.
    pub(crate) fn apply(&mut self, a: &Action, running: &[String], now: JstTime) -> bool {
        let (Some((state, driving)), Some(id)) = (publish_state(a), a.event_id.clone()) else {
            return false;
        };
        self.seq += 1;
        let before = self.shown_action().cloned();
        match state {
            AlertState::Started | AlertState::Updated => {
                let seq = self.seq;
                self.active
                    .entry(id.clone())
                    .and_modify(|e| {
                        e.action = a.clone();
                        e.seq = seq;
                    })
                    .or_insert_with(|| Active {
                        action: a.clone(),
                        seq,
                        cap_refs: Vec::new(),
                        cap_xml: None,
                    });
                let shown_gone = self
                    .shown
                    .as_ref()
                    .is_none_or(|s| !self.active.contains_key(s));
                if driving || shown_gone {
                    self.shown = Some(id);
                }
            }
            AlertState::Cancelled | AlertState::Ended | AlertState::Reset => {
                self.active.remove(&id);
                if self.shown.as_deref() == Some(id.as_str()) {
                    self.shown = self.fallback(running);
                }
            }
        }
        let changed = self.shown_action() != before.as_ref();
        if changed {
            self.updated_at = Some(now);
        }
        changed
    }

    /// The next alarm to show: the engine's most dangerous one we know, else the one
    /// published last.
    fn fallback(&self, running: &[String]) -> Option<String> {
        running
            .iter()
            .find(|id| self.active.contains_key(*id))
            .cloned()
            .or_else(|| {
                self.active
                    .iter()
                    .max_by_key(|(_, e)| e.seq)
                    .map(|(id, _)| id.clone())
            })
    }

    fn shown_action(&self) -> Option<&Action> {
        self.shown
            .as_ref()
            .and_then(|id| self.active.get(id))
            .map(|e| &e.action)
    }

    /// The event shown, if any.
    pub(crate) fn shown_event(&self) -> Option<&str> {
        self.shown
            .as_deref()
            .filter(|id| self.active.contains_key(*id))
    }

    /// The state to publish.
    pub(crate) fn shown(&self) -> Shown {
        Shown {
            action: self.shown_action().cloned(),
            updated_at: self.updated_at,
        }
    }

    /// True when `event_id` is a running alarm this output has published.
    pub(crate) fn is_active(&self, event_id: &str) -> bool {
        self.active.contains_key(event_id)
    }

    /// The CAP messages already sent for `event_id`.
    pub(crate) fn cap_references(&self, event_id: &str) -> Vec<String> {
        self.active
            .get(event_id)
            .map(|e| e.cap_refs.clone())
            .unwrap_or_default()
    }

    /// Remembers a CAP message of a running alarm.
    pub(crate) fn add_cap(&mut self, event_id: &str, reference: String, xml: String) {
        if let Some(e) = self.active.get_mut(event_id) {
            if e.cap_refs.len() >= MAX_REFERENCES {
                e.cap_refs.remove(0);
            }
            e.cap_refs.push(reference);
            e.cap_xml = Some(xml);
        }
    }

    /// The retained CAP document: the shown alarm's latest, or empty (cleared).
    pub(crate) fn shown_cap(&self) -> String {
        self.shown
            .as_ref()
            .and_then(|id| self.active.get(id))
            .and_then(|e| e.cap_xml.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use crate::mqtt::payload::tests::publish;
    use eew_core::Intensity;

    #[test]
    fn the_driving_event_is_shown_and_a_cancel_falls_back_or_clears() {
        let mut m = Model::default();
        let a = publish("A", 1, AlertState::Started, true, Some(Intensity::Four), 20);
        let now = a.at;
        assert!(m.apply(&a, &[], now));
        assert_eq!(m.shown_event(), Some("A"));
        // Another event, not driving: recorded, not shown.
        let b = publish(
            "B",
            1,
            AlertState::Started,
            false,
            Some(Intensity::Three),
            20,
        );
        assert!(!m.apply(&b, &[], now));
        assert_eq!(m.shown_event(), Some("A"));
        // B becomes the driver.
        let b2 = publish(
            "B",
            2,
            AlertState::Updated,
            true,
            Some(Intensity::FiveLower),
            15,
        );
        assert!(m.apply(&b2, &[], now));
        assert_eq!(m.shown_event(), Some("B"));
        // B cancelled: A is still running, so A is shown again.
        let bc = publish("B", 2, AlertState::Cancelled, false, None, 0);
        assert!(m.apply(&bc, &["A".into()], now));
        assert_eq!(m.shown_event(), Some("A"));
        // A ends: nothing left, the state clears.
        let ae = publish("A", 1, AlertState::Ended, false, None, 0);
        assert!(m.apply(&ae, &[], now));
        assert_eq!(m.shown_event(), None);
        assert!(m.shown().action.is_none());
        assert_eq!(m.shown_cap(), "");
    }

    #[test]
    fn an_update_of_the_shown_event_changes_the_state() {
        let mut m = Model::default();
        let a = publish("A", 1, AlertState::Started, true, Some(Intensity::Four), 20);
        m.apply(&a, &[], a.at);
        let a2 = publish(
            "A",
            2,
            AlertState::Updated,
            true,
            Some(Intensity::FiveUpper),
            18,
        );
        assert!(m.apply(&a2, &[], a2.at));
        assert_eq!(m.shown().action.unwrap().serial, Some(2));
        // A reset of an unknown event changes nothing.
        let r = publish("Z", 1, AlertState::Reset, false, None, 0);
        assert!(!m.apply(&r, &[], r.at));
    }
}
