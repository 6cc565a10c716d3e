//! The defaults: what an appliance does with nothing but `[site]` configured.
//!
//! Every value here is explained in `docs/configuration.md` ("Why these defaults") and
//! repeated in `config/eewgate.example.toml`; a test checks that the example file parses
//! to exactly these values.

use super::{
    AlertSettings, AudioRule, AudioStyle, ContactMode, Include, LedRule, MqttRule, OutputRules,
    RelayRule, Release, Settings, Trigger,
};
use crate::intensity::Intensity;
use crate::predict::{PredictionSettings, Site};

impl Settings {
    /// The settings of a freshly installed appliance at `site`: every section at its
    /// default.
    pub fn for_site(site: Site) -> Settings {
        Settings {
            site,
            prediction: PredictionSettings::default(),
            alert: AlertSettings::default(),
            outputs: OutputRules::default(),
        }
    }
}

impl Release {
    /// Released by cancel, expiry or operator reset.
    pub const ANY: Release = Release {
        on_cancel: true,
        on_expiry: true,
        on_reset: true,
    };
    /// Nothing releases it (the value of pulse contacts, which open by themselves).
    pub const NONE: Release = Release {
        on_cancel: false,
        on_expiry: false,
        on_reset: false,
    };
}

impl Include {
    /// Follows training, test and drill alike (each labelled).
    pub const ALL: Include = Include {
        training: true,
        test: true,
        drill: true,
    };
}

impl Trigger {
    /// Acts from this class up, on real reports only.
    pub const fn from_class(class: Intensity) -> Trigger {
        Trigger {
            min_class: Some(class),
            min_long_period_class: None,
            warning_only: false,
            include: Include {
                training: false,
                test: false,
                drill: false,
            },
        }
    }
}

impl RelayRule {
    /// The four contacts of a default installation (see `docs/configuration.md`).
    pub fn defaults() -> Vec<RelayRule> {
        Self::defaults_for_audio(AudioRule::default().trigger)
    }

    /// The four default contacts, the PA pre-start one (id 2) closing exactly when audio
    /// with trigger `audio` speaks — so changing only `[outputs.audio]` keeps the
    /// amplifier in step.
    pub fn defaults_for_audio(audio: Trigger) -> Vec<RelayRule> {
        vec![
            // Elevators: stop at the nearest floor and open the doors from 震度4 — the
            // class at which elevator seismic operation (地震時管制運転) normally starts.
            RelayRule {
                id: 1,
                name: "elevators".to_owned(),
                enabled: true,
                trigger: Trigger::from_class(Intensity::Four),
                mode: ContactMode::Latched,
                hold_s: 60,
                prestart_ms: 0,
                release: Release::ANY,
            },
            // PA pre-start: powers the amplifier up 1.5 s before the first word, whenever
            // audio speaks. Released by expiry or reset, not by cancel, so the
            // cancellation announcement is heard.
            RelayRule {
                id: 2,
                name: "PA pre-start".to_owned(),
                enabled: true,
                trigger: audio,
                mode: ContactMode::Latched,
                hold_s: 0,
                prestart_ms: 1500,
                release: Release {
                    on_cancel: false,
                    on_expiry: true,
                    on_reset: true,
                },
            },
            // Gas shut-off / door release from 震度5弱: once operated, a person checks
            // the building before it is restored — operator reset only.
            RelayRule {
                id: 3,
                name: "gas / doors".to_owned(),
                enabled: true,
                trigger: Trigger::from_class(Intensity::FiveLower),
                mode: ContactMode::Latched,
                hold_s: 0,
                prestart_ms: 0,
                release: Release {
                    on_cancel: false,
                    on_expiry: false,
                    on_reset: true,
                },
            },
            // Warning indication: a 3 s pulse to a BMS digital input or a lamp controller
            // whenever a warning (警報) covers the site's area, whatever the class.
            RelayRule {
                id: 4,
                name: "warning indication".to_owned(),
                enabled: true,
                trigger: Trigger {
                    warning_only: true,
                    ..Trigger::default()
                },
                mode: ContactMode::Pulse { pulse_ms: 3000 },
                hold_s: 0,
                prestart_ms: 0,
                release: Release::NONE,
            },
        ]
    }
}

impl Default for OutputRules {
    fn default() -> Self {
        Self {
            relays: RelayRule::defaults(),
            audio: AudioRule::default(),
            led: LedRule::default(),
            mqtt: MqttRule::default(),
        }
    }
}

impl Default for AudioRule {
    /// Speaks from 震度4 with class and seconds, counting the last 10 s down; no quiet
    /// hours; real reports only.
    fn default() -> Self {
        Self {
            enabled: true,
            trigger: Trigger::from_class(Intensity::Four),
            style: AudioStyle::Numbers,
            countdown_from_s: 10,
            quiet_hours: None,
        }
    }
}

impl Default for LedRule {
    /// Shows an alert when the voice would speak (from 震度4, the terminal guideline's
    /// "LED blinks while notifying"), and local drills (started by a person standing at
    /// the appliance, who wants to see it react). A distant event that means nothing here
    /// does not turn the LED red.
    fn default() -> Self {
        Self {
            enabled: true,
            trigger: Trigger {
                min_class: Some(Intensity::Four),
                include: Include {
                    training: false,
                    test: false,
                    drill: true,
                },
                ..Trigger::default()
            },
        }
    }
}

impl Default for MqttRule {
    /// Publishes every acted-on report, training, test and drill included: every message
    /// is labelled, and the building management system needs drills to test its side.
    fn default() -> Self {
        Self {
            enabled: true,
            trigger: Trigger {
                include: Include::ALL,
                ..Trigger::default()
            },
        }
    }
}
