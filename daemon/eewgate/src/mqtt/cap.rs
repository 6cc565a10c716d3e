//! CAP 1.2 (OASIS Common Alerting Protocol) for `P/cap`, for mass-notification and PA
//! systems that speak it. Conservative: only the elements a receiver needs, every value
//! from the engine's action, nothing a receiver could read as a site-specific forecast
//! beyond what the other topics already say.

use std::fmt::Write as _;

use chrono::TimeDelta;
use eew_core::engine::{Action, AlertState, Label};
use eew_core::{Intensity, JstTime};

use super::payload::{publish_state, seconds_to};

/// The CAP 1.2 namespace.
pub(crate) const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// How long a CAP alert stays valid (`expires`): EEW is over within minutes; an update,
/// a cancel or the cleared retained topic normally comes first.
const VALID_FOR: TimeDelta = TimeDelta::minutes(10);

/// CAP `msgType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MsgType {
    /// The first message of an event.
    Alert,
    /// A later serial or a change of the alarm.
    Update,
    /// The event was cancelled (取消).
    Cancel,
}

impl MsgType {
    fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }

    /// The message type for a Publish action; `None` for ended and reset alarms, which
    /// only clear the retained topic (CAP has no "ended": `expires` covers it).
    pub(crate) fn of(a: &Action, first: bool) -> Option<Self> {
        match publish_state(a)?.0 {
            AlertState::Started | AlertState::Updated if first => Some(MsgType::Alert),
            AlertState::Started | AlertState::Updated => Some(MsgType::Update),
            AlertState::Cancelled => Some(MsgType::Cancel),
            AlertState::Ended | AlertState::Reset => None,
        }
    }
}

/// CAP time: RFC 3339 with an explicit offset and whole seconds (CAP forbids `Z` and
/// fractions).
fn cap_time(t: JstTime) -> String {
    t.0.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// `Extreme` … `Minor` from the site's class (and the long-period class): 6弱 or more, or
/// long-period class 4, is JMA's 特別警報 range.
pub(crate) fn severity(a: &Action) -> &'static str {
    let by_class = match a.intensity_class {
        Some(c) if c >= Intensity::SixLower => 4,
        Some(c) if c >= Intensity::FiveLower => 3,
        Some(Intensity::Four) => 2,
        Some(_) => 1,
        None => 0,
    };
    let by_long_period = match a.long_period_class {
        Some(c) if c >= 4 => 4,
        Some(3) => 3,
        Some(2) => 2,
        Some(_) => 1,
        None => 0,
    };
    match by_class.max(by_long_period) {
        4 => "Extreme",
        3 => "Severe",
        2 => "Moderate",
        1 => "Minor",
        _ if a.warning => "Severe",
        _ => "Unknown",
    }
}

/// `Likely`, or `Possible` when the forecast rests on one station, an assumed hypocentre
/// or the level method (the guidance on conservative CAP: say what the data support).
fn certainty(a: &Action) -> &'static str {
    if a.flags.single_station || a.flags.assumed_hypocenter || a.flags.level_method {
        "Possible"
    } else {
        "Likely"
    }
}

/// `Actual`, `Exercise` (JMA 訓練, local drill) or `Test` (JMA 試験).
fn status(a: &Action) -> &'static str {
    match a.label {
        Label::Real => "Actual",
        Label::Training | Label::Drill => "Exercise",
        Label::Test => "Test",
    }
}

/// XML text escaping (eew-core's, shared with its JMA XML writer).
fn esc(s: &str) -> String {
    eew_core::telegram::jma_xml_encode::escape(s)
}

/// One CAP message: its identifier (for later `references`) and the XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CapMessage {
    /// `sender,identifier,sent`, as a later message references it.
    pub(crate) reference: String,
    /// The document.
    pub(crate) xml: String,
}

/// Builds the CAP message for `a`. `seq` makes the identifier unique within the process
/// (with the send time, across restarts); `references` are the earlier messages of the
/// same event.
pub(crate) fn message(
    a: &Action,
    msg_type: MsgType,
    device_id: &str,
    seq: u64,
    sent: JstTime,
    references: &[String],
) -> CapMessage {
    let sender = format!("eewgate@{device_id}");
    let event_id = a.event_id.as_deref().unwrap_or("none");
    let identifier = format!(
        "eewgate-{device_id}-{event_id}-{}-{seq}",
        sent.0.format("%Y%m%dT%H%M%S")
    );
    let sent_s = cap_time(sent);
    let class = a.intensity_class.map(Intensity::as_str);
    let mut x = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(x, "<alert xmlns=\"{NAMESPACE}\">");
    let _ = writeln!(x, "  <identifier>{}</identifier>", esc(&identifier));
    let _ = writeln!(x, "  <sender>{}</sender>", esc(&sender));
    let _ = writeln!(x, "  <sent>{sent_s}</sent>");
    let _ = writeln!(x, "  <status>{}</status>", status(a));
    let _ = writeln!(x, "  <msgType>{}</msgType>", msg_type.as_str());
    let _ = writeln!(x, "  <scope>Public</scope>");
    if msg_type != MsgType::Alert && !references.is_empty() {
        let _ = writeln!(
            x,
            "  <references>{}</references>",
            esc(&references.join(" "))
        );
    }
    let _ = writeln!(x, "  <info>");
    let _ = writeln!(x, "    <language>en-US</language>");
    let _ = writeln!(x, "    <category>Geo</category>");
    let _ = writeln!(x, "    <event>Earthquake Early Warning</event>");
    let cancel = msg_type == MsgType::Cancel;
    let _ = writeln!(
        x,
        "    <responseType>{}</responseType>",
        if cancel { "AllClear" } else { "Shelter" }
    );
    // A cancel says the shaking is not coming: past, unknown severity, unlikely.
    let (urgency, sev, cert) = if cancel {
        ("Past", "Unknown", "Unlikely")
    } else {
        ("Immediate", severity(a), certainty(a))
    };
    let _ = writeln!(x, "    <urgency>{urgency}</urgency>");
    let _ = writeln!(x, "    <severity>{sev}</severity>");
    let _ = writeln!(x, "    <certainty>{cert}</certainty>");
    let _ = writeln!(
        x,
        "    <eventCode><valueName>JMA-EventID</valueName><value>{}</value></eventCode>",
        esc(event_id)
    );
    if !cancel && let Some(t) = a.arrival {
        let _ = writeln!(x, "    <onset>{}</onset>", cap_time(t));
    }
    let _ = writeln!(
        x,
        "    <expires>{}</expires>",
        cap_time(JstTime(sent.0 + VALID_FOR))
    );
    let _ = writeln!(x, "    <senderName>eewgate {}</senderName>", esc(device_id));
    let exercise = match a.label {
        Label::Real => "",
        Label::Training => " (JMA training)",
        Label::Test => " (test)",
        Label::Drill => " (local drill)",
    };
    let headline = if cancel {
        format!("Earthquake Early Warning cancelled{exercise}")
    } else {
        match class {
            Some(c) => {
                format!("Earthquake Early Warning: seismic intensity {c} expected{exercise}")
            }
            None => format!("Earthquake Early Warning{exercise}"),
        }
    };
    let _ = writeln!(x, "    <headline>{}</headline>", esc(&headline));
    let description = if cancel {
        "The earthquake early warning for this site was cancelled.".to_owned()
    } else {
        let when = match a.arrival {
            Some(t) => format!(
                "Strong shaking predicted at {} ({} s after this message was sent).",
                cap_time(t),
                seconds_to(t, sent)
            ),
            None => "Strong shaking is imminent or has arrived.".to_owned(),
        };
        format!("Take cover. {when}")
    };
    let _ = writeln!(x, "    <description>{}</description>", esc(&description));
    let mut param = |name: &str, value: String| {
        let _ = writeln!(
            x,
            "    <parameter><valueName>{name}</valueName><value>{}</value></parameter>",
            esc(&value)
        );
    };
    if let Some(s) = a.serial {
        param("serial", s.to_string());
    }
    if let Some(c) = class {
        param("intensity_class", c.to_owned());
    }
    if let Some(c) = a.long_period_class {
        param("long_period_class", c.to_string());
    }
    param("warning", a.warning.to_string());
    let label = match a.label {
        Label::Real => "real",
        Label::Training => "training",
        Label::Test => "test",
        Label::Drill => "drill",
    };
    param("label", label.to_owned());
    let f = a.flags;
    for (name, on) in [
        ("plum", f.plum),
        ("deep", f.deep),
        ("level_method", f.level_method),
        ("single_station", f.single_station),
        ("assumed_hypocenter", f.assumed_hypocenter),
    ] {
        if on {
            param("flag", name.to_owned());
        }
    }
    let _ = writeln!(x, "  </info>");
    let _ = writeln!(x, "</alert>");
    CapMessage {
        reference: format!("{sender},{identifier},{sent_s}"),
        xml: x,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use crate::mqtt::payload::tests::publish;

    #[test]
    fn alert_update_and_cancel_reference_each_other() {
        let a = publish(
            "20240417231454",
            1,
            AlertState::Started,
            true,
            Some(Intensity::SixLower),
            10,
        );
        let m1 = message(&a, MsgType::Alert, "tower-a", 1, a.at, &[]);
        assert!(m1.xml.contains(&format!("<alert xmlns=\"{NAMESPACE}\">")));
        assert!(m1.xml.contains("<msgType>Alert</msgType>"));
        assert!(m1.xml.contains("<status>Actual</status>"));
        assert!(m1.xml.contains("<severity>Extreme</severity>"));
        assert!(m1.xml.contains("<certainty>Likely</certainty>"));
        assert!(m1.xml.contains("<urgency>Immediate</urgency>"));
        assert!(m1.xml.contains("<category>Geo</category>"));
        assert!(!m1.xml.contains("<references>"));
        assert!(m1.xml.contains("+09:00</sent>"), "{}", m1.xml);
        let mut u = a.clone();
        u.kind = eew_core::engine::ActionKind::Publish {
            state: AlertState::Cancelled,
            driving: true,
        };
        u.label = Label::Training;
        let m2 = message(
            &u,
            MsgType::Cancel,
            "tower-a",
            2,
            u.at,
            std::slice::from_ref(&m1.reference),
        );
        assert!(m2.xml.contains("<msgType>Cancel</msgType>"));
        assert!(m2.xml.contains("<status>Exercise</status>"));
        assert!(
            m2.xml
                .contains(&format!("<references>{}</references>", m1.reference))
        );
        assert_ne!(m1.reference, m2.reference);
    }

    #[test]
    fn severity_follows_the_classes() {
        let mut a = publish(
            "1",
            1,
            AlertState::Started,
            true,
            Some(Intensity::FiveUpper),
            5,
        );
        assert_eq!(severity(&a), "Severe");
        a.intensity_class = Some(Intensity::Three);
        a.long_period_class = Some(4);
        assert_eq!(severity(&a), "Extreme");
        a.long_period_class = None;
        assert_eq!(severity(&a), "Minor");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
