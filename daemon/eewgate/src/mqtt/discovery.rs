//! Home Assistant MQTT discovery: one retained config per entity under
//! `<discovery_prefix>/<component>/<device-id>/<object>/config`, all bound to the flat
//! state topics and to `P/status` for availability. Republished after every connect and
//! whenever Home Assistant announces itself (`<discovery_prefix>/status` = `online`).

use serde_json::{Value, json};

/// One entity: component, object id, display name and its own keys.
struct Entity {
    component: &'static str,
    object: &'static str,
    name: &'static str,
    keys: Value,
}

fn entities(prefix: &str) -> Vec<Entity> {
    let state = |f: &str| format!("{prefix}/state/{f}");
    // HA shows "unknown" for a sensor whose template renders None: our empty string
    // means "no alert", not a value.
    let text = "{{ value if value else None }}";
    vec![
        Entity {
            component: "binary_sensor",
            object: "alert_active",
            name: "EEW alert",
            keys: json!({
                "state_topic": state("alert_active"), "payload_on": "true",
                "payload_off": "false", "device_class": "safety",
            }),
        },
        Entity {
            component: "binary_sensor",
            object: "warning",
            name: "EEW warning",
            keys: json!({
                "state_topic": state("warning"), "payload_on": "true",
                "payload_off": "false", "device_class": "safety",
            }),
        },
        Entity {
            component: "binary_sensor",
            object: "training",
            name: "EEW exercise",
            keys: json!({
                "state_topic": state("training"), "payload_on": "true",
                "payload_off": "false", "icon": "mdi:school",
            }),
        },
        Entity {
            component: "sensor",
            object: "intensity_class",
            name: "Forecast intensity",
            keys: json!({
                "state_topic": state("intensity_class"), "value_template": text,
                "icon": "mdi:waveform",
            }),
        },
        Entity {
            component: "sensor",
            object: "long_period_class",
            name: "Forecast long-period class",
            keys: json!({
                "state_topic": state("long_period_class"), "value_template": text,
                "icon": "mdi:office-building",
            }),
        },
        Entity {
            component: "sensor",
            object: "seconds_to_arrival",
            name: "Seconds to arrival",
            keys: json!({
                "state_topic": state("seconds_to_arrival"), "value_template": text,
                "unit_of_measurement": "s", "device_class": "duration",
            }),
        },
        Entity {
            component: "sensor",
            object: "arrival_time",
            name: "Predicted arrival",
            keys: json!({
                "state_topic": state("arrival_time"), "value_template": text,
                "device_class": "timestamp",
            }),
        },
        Entity {
            component: "sensor",
            object: "label",
            name: "EEW label",
            keys: json!({
                "state_topic": state("label"), "value_template": text, "icon": "mdi:tag",
            }),
        },
        Entity {
            component: "sensor",
            object: "event_id",
            name: "EEW event id",
            keys: json!({
                "state_topic": state("event_id"), "value_template": text,
                "entity_category": "diagnostic",
            }),
        },
        Entity {
            component: "binary_sensor",
            object: "problem",
            name: "Gateway problem",
            keys: json!({
                "state_topic": format!("{prefix}/health"),
                "value_template": "{{ 'OFF' if value_json.ok else 'ON' }}",
                "device_class": "problem", "entity_category": "diagnostic",
                "json_attributes_topic": format!("{prefix}/health"),
            }),
        },
    ]
}

/// Every discovery config: `(topic, retained JSON payload)`.
pub(crate) fn configs(
    discovery_prefix: &str,
    prefix: &str,
    device_id: &str,
) -> Vec<(String, String)> {
    let version = env!("CARGO_PKG_VERSION");
    let device = json!({
        "identifiers": [format!("eewgate_{device_id}")],
        "name": format!("eewgate {device_id}"),
        "manufacturer": "eewgate",
        "model": "Earthquake Early Warning gateway",
        "sw_version": version,
    });
    entities(prefix)
        .into_iter()
        .map(|e| {
            let mut v = json!({
                "name": e.name,
                "unique_id": format!("eewgate_{device_id}_{}", e.object),
                "availability_topic": format!("{prefix}/status"),
                "payload_available": "online",
                "payload_not_available": "offline",
                "qos": 1,
                "device": device,
                "origin": {"name": "eewgate", "sw_version": version},
            });
            if let (Value::Object(map), Value::Object(keys)) = (&mut v, e.keys) {
                map.extend(keys);
            }
            (
                format!(
                    "{discovery_prefix}/{}/{device_id}/{}/config",
                    e.component, e.object
                ),
                v.to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn the_alert_binary_sensor_is_bound_to_the_flat_topic() {
        let c = configs("homeassistant", "eewgate/tower-a", "tower-a");
        let (topic, payload) = c
            .iter()
            .find(|(t, _)| t.contains("/alert_active/"))
            .unwrap();
        assert_eq!(
            topic,
            "homeassistant/binary_sensor/tower-a/alert_active/config"
        );
        let v: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(v["state_topic"], "eewgate/tower-a/state/alert_active");
        assert_eq!(v["availability_topic"], "eewgate/tower-a/status");
        assert_eq!(v["device_class"], "safety");
        assert_eq!(v["unique_id"], "eewgate_tower-a_alert_active");
        assert_eq!(v["device"]["identifiers"][0], "eewgate_tower-a");
        let ids: std::collections::BTreeSet<&str> = c.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(ids.len(), c.len(), "unique topics");
    }
}
