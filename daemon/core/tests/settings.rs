//! Settings: the example file, the defaults, every-problem-at-once reporting, each
//! cross-field rule, and that no input makes the reader panic.

use eew_core::Intensity;
use eew_core::predict::{Amplification, PredictionMode, PredictionSettings, Site};
use eew_core::settings::{
    AlertSettings, AudioRule, AudioStyle, ContactMode, Include, LedRule, MqttRule, OutputRules,
    RelayRule, Release, Settings, SettingsErrors, Trigger, Walker, parse_table,
};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../config/eewgate.example.toml");

const SITE: &str = "[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\narea_code = \"350\"\n";

fn tokyo() -> Site {
    Site {
        lat: 35.681,
        lon: 139.767,
        amplification: Amplification::Arv400(1.6),
        area_code: "350".to_owned(),
    }
}

/// Settings from `[site]` plus `rest`.
fn with_site(rest: &str) -> Result<Settings, SettingsErrors> {
    Settings::from_toml_str(&format!("{SITE}\n{rest}"))
}

/// The errors of `[site]` plus `rest` (which must be wrong).
fn errors(rest: &str) -> SettingsErrors {
    with_site(rest).expect_err("these settings are invalid")
}

/// The single error of `[site]` plus `rest`, as (path, message).
fn one_error(rest: &str) -> (String, String) {
    let e = errors(rest);
    assert_eq!(e.0.len(), 1, "expected one error, got {e}");
    let first = e.0.into_iter().next().expect("one error");
    (first.path, first.message)
}

// ---------------------------------------------------------------------------------------
// The example and the defaults

/// The sections the `eewgate` binary owns (checked by its own tests).
const DAEMON_SECTIONS: &[&str] = &[
    "daemon",
    "storage",
    "time",
    "links",
    "hardware",
    "audio",
    "mqtt",
    "webui",
    "assurance",
];

fn example() -> Settings {
    let table = parse_table(EXAMPLE).expect("the example is valid TOML");
    Settings::from_toml_table(&table, DAEMON_SECTIONS).expect("the example is valid settings")
}

#[test]
fn example_config_parses() {
    assert_eq!(example().site, tokyo());
}

#[test]
fn example_config_shows_exactly_the_defaults() {
    assert_eq!(example(), Settings::for_site(tokyo()));
}

#[test]
fn example_config_sets_the_area_explicitly() {
    let table = parse_table(EXAMPLE).unwrap();
    let loaded = Settings::load(&table, DAEMON_SECTIONS).unwrap();
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
}

#[test]
fn a_site_alone_takes_every_default() {
    let s = with_site("").unwrap();
    assert_eq!(s, Settings::for_site(tokyo()));
    assert_eq!(s.prediction, PredictionSettings::default());
    assert_eq!(s.alert, AlertSettings::default());
    assert_eq!(s.outputs, OutputRules::default());
}

#[test]
fn empty_sections_take_every_default() {
    let s = with_site(
        "[prediction]\n[alert]\n[outputs]\n[outputs.audio]\n[outputs.led]\n[outputs.mqtt]\n",
    )
    .unwrap();
    assert_eq!(s, Settings::for_site(tokyo()));
}

#[test]
fn default_relays_are_the_four_building_contacts() {
    let relays = OutputRules::default().relays;
    let ids: Vec<u8> = relays.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let [elevators, pa, gas, warning] = relays.as_slice() else {
        panic!("four relays")
    };
    assert_eq!(elevators.trigger.min_class, Some(Intensity::Four));
    assert_eq!(elevators.mode, ContactMode::Latched);
    assert_eq!(elevators.hold_s, 60);
    assert_eq!(elevators.release, Release::ANY);
    assert_eq!(pa.prestart_ms, 1500);
    assert_eq!(pa.trigger.min_class, Some(Intensity::Four));
    assert!(!pa.release.on_cancel && pa.release.on_expiry && pa.release.on_reset);
    assert_eq!(gas.trigger.min_class, Some(Intensity::FiveLower));
    assert_eq!(
        gas.release,
        Release {
            on_cancel: false,
            on_expiry: false,
            on_reset: true
        }
    );
    assert!(warning.trigger.warning_only);
    assert_eq!(warning.trigger.min_class, None);
    assert_eq!(warning.mode, ContactMode::Pulse { pulse_ms: 3000 });
    for r in &relays {
        assert!(r.enabled);
        assert_eq!(r.trigger.include, Include::default(), "relay {}", r.id);
    }
}

#[test]
fn default_audio_led_mqtt() {
    let a = AudioRule::default();
    assert!(a.enabled);
    assert_eq!(a.trigger, Trigger::from_class(Intensity::Four));
    assert_eq!(a.style, AudioStyle::Numbers);
    assert_eq!(a.countdown_from_s, 10);
    assert_eq!(a.quiet_hours, None);
    let l = LedRule::default();
    assert!(l.enabled);
    assert_eq!(l.trigger.min_class, Some(Intensity::Four));
    assert_eq!(l.trigger.min_long_period_class, None);
    assert!(l.trigger.include.drill && !l.trigger.include.training && !l.trigger.include.test);
    let m = MqttRule::default();
    assert!(m.enabled);
    assert_eq!(m.trigger.min_class, None);
    assert_eq!(m.trigger.include, Include::ALL);
}

// ---------------------------------------------------------------------------------------
// Every problem at once

#[test]
fn many_mistakes_are_all_reported_with_their_paths() {
    let text = r#"
[site]
lat = 95.0
lon = "139.7"
arv400 = 0
area_code = "999"
colour = "blue"

[prediction]
mode = "pinpoint"
rock_factor = -1

[alert]
trainig = true
deep = "yes"
past_arrival_s = -5
event_expiry_s = 5

[outputs.audio]
min_class = "8"
style = "words"
countdown_from_s = 100

[outputs.led]
enabled = "yes"

[[outputs.relay]]
id = 0
min_class = "4"

[[outputs.relay]]
id = 2
name = ""
mode = "pulse"
min_class = 5

[[outputs.relay]]
id = 2
min_class = "4"
release_on = []

[storage]
path = "/var/lib/eewgate"
"#;
    let e = Settings::from_toml_str(text).expect_err("full of mistakes");
    assert_eq!(
        e.paths(),
        [
            "site.lat",
            "site.lon",
            "site.arv400",
            "site.area_code",
            "site.colour",
            "prediction.mode",
            "prediction.rock_factor",
            "alert.deep",
            "alert.past_arrival_s",
            "alert.event_expiry_s",
            "alert.trainig",
            "outputs.audio.min_class",
            "outputs.audio.style",
            "outputs.audio.countdown_from_s",
            "outputs.led.enabled",
            "outputs.relay[0].id",
            "outputs.relay[1].name",
            "outputs.relay[1].min_class",
            "outputs.relay[1].pulse_ms",
            "outputs.relay[2].release_on",
            "outputs.relay[2].id",
            "storage",
        ],
        "{e}"
    );
    assert_eq!(e.0.len(), 22);
    let text = e.to_string();
    assert!(
        text.starts_with("22 problems in the settings:\n  site.lat: "),
        "{text}"
    );
    assert!(text.contains("alert.trainig: unknown key \"trainig\"; did you mean \"training\"?"));
    assert!(
        text.contains(
            "prediction.mode: \"pinpoint\" is not allowed; allowed: \"area\" or \"site\""
        )
    );
    assert!(text.contains("outputs.relay[1].min_class: 5 is ambiguous"));
    assert!(text.contains("outputs.relay[2].id: relay id 2 is already used by outputs.relay[1]"));
}

#[test]
fn missing_site_is_one_error() {
    let e = Settings::from_toml_str("").expect_err("no site");
    assert_eq!(e.paths(), ["site"]);
    assert!(e.0[0].message.starts_with("missing:"));
}

#[test]
fn missing_site_keys_are_each_reported() {
    let e = Settings::from_toml_str("[site]\n").expect_err("empty site");
    assert_eq!(e.paths(), ["site.lat", "site.lon", "site.arv400"]);
}

#[test]
fn syntax_error_is_one_error_with_line_and_column() {
    let e = Settings::from_toml_str("[site]\nlat = 35.6\nlon = = 139\n").expect_err("syntax");
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].path, "");
    let m = &e.0[0].message;
    assert!(
        m.starts_with("TOML syntax error at line 3, column 7: "),
        "{m}"
    );
    assert_eq!(e.to_string(), format!("1 problem in the settings:\n  {m}"));
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let e = Settings::from_toml_str("[site]\nlat = 35.6\nlat = 35.7\n").expect_err("dup");
    assert!(e.0[0].message.contains("line 3"), "{e}");
}

#[test]
fn line_and_column_count_characters() {
    let e = parse_table("# 日本語のコメント\n名前 = \"x\" y\n").expect_err("syntax");
    assert!(e.0[0].message.contains("line 2, column 10"), "{e}");
}

#[test]
fn unknown_key_suggests_the_close_one() {
    let (path, message) = one_error("[outputs.audio]\ncountdown_from = 5\n");
    assert_eq!(path, "outputs.audio.countdown_from");
    assert_eq!(
        message,
        "unknown key \"countdown_from\"; did you mean \"countdown_from_s\"?"
    );
}

#[test]
fn unknown_key_far_from_any_lists_the_allowed_ones() {
    let (path, message) = one_error("[prediction]\nvolume = 5\n");
    assert_eq!(path, "prediction.volume");
    assert_eq!(
        message,
        "unknown key \"volume\"; the keys allowed here are \"mode\", \"mw_offset\" or \"rock_factor\""
    );
}

#[test]
fn unknown_section_suggests_and_extra_sections_are_skipped() {
    let (path, message) = one_error("[output.audio]\nenabled = false\n");
    assert_eq!(path, "output");
    assert!(message.contains("did you mean \"outputs\"?"), "{message}");

    let table = parse_table(&format!(
        "{SITE}[mqtt]\nhost = \"bms.local\"\n[web]\nport = 8080\n[mqqt]\nx = 1\n"
    ))
    .unwrap();
    let e = Settings::from_toml_table(&table, &["mqtt", "web"]).expect_err("mqqt");
    assert_eq!(e.paths(), ["mqqt"]);
    assert!(e.0[0].message.contains("did you mean \"mqtt\"?"), "{e}");

    let table = parse_table(&format!("{SITE}[mqtt]\nhost = \"bms.local\"\n")).unwrap();
    assert!(Settings::from_toml_table(&table, &["mqtt"]).is_ok());
    assert_eq!(
        Settings::from_toml_table(&table, &[])
            .expect_err("mqtt unknown to core")
            .paths(),
        ["mqtt"]
    );
}

#[test]
fn the_daemon_can_walk_its_own_sections() {
    let table = parse_table(&format!("{SITE}[web]\nprot = 8080\n")).unwrap();
    let core = Settings::from_toml_table(&table, &["web"]);
    assert!(core.is_ok());
    let mut w = Walker::new();
    if let Some(web) = w.section(&table, "", "web") {
        let _ = w
            .get(web, "web", "port")
            .and_then(|(p, v)| w.int_in(&p, v, 1, 65535));
        w.unknown_keys(web, "web", &["port", "bind"]);
    }
    let e = w.into_errors();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "web.prot: unknown key \"prot\"; did you mean \"port\"?"
    );
}

#[test]
fn include_underscore_keys_point_to_the_include_table() {
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 1\nmin_class = \"4\"\ninclude_drill = true\n");
    assert_eq!(path, "outputs.relay[0].include_drill");
    assert!(message.contains("write include.drill = …"), "{message}");
    let e = errors("[outputs.audio]\ninclude = { drill = true, trainnig = true }\n");
    assert_eq!(e.paths(), ["outputs.audio.include.trainnig"]);
}

#[test]
fn wrong_types_say_what_was_found() {
    let e = errors(
        "[alert]\ntraining = \"true\"\ntest = 1\nevent_expiry_s = \"60\"\nevent_expiry_s_x = 1\n",
    );
    let m: Vec<String> = e.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        m,
        [
            "alert.training: expected a boolean, found the string \"true\"; write true without quotes",
            "alert.test: expected a boolean (true or false), found the integer 1",
            "alert.event_expiry_s: expected a whole number, found the string \"60\"; write it without quotes",
            "alert.event_expiry_s_x: unknown key \"event_expiry_s_x\"; did you mean \"event_expiry_s\"?",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Values

#[test]
fn every_spelling_of_a_class() {
    for (written, class) in [
        ("\"0\"", Intensity::Zero),
        ("\"4\"", Intensity::Four),
        ("4", Intensity::Four),
        ("7", Intensity::Seven),
        ("\"5-\"", Intensity::FiveLower),
        ("\"5弱\"", Intensity::FiveLower),
        ("\"5+\"", Intensity::FiveUpper),
        ("\"5強\"", Intensity::FiveUpper),
        ("\"6弱\"", Intensity::SixLower),
        ("\"6強\"", Intensity::SixUpper),
        ("\" 6+ \"", Intensity::SixUpper),
    ] {
        let s = with_site(&format!("[outputs.audio]\nmin_class = {written}\n"))
            .unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(s.outputs.audio.trigger.min_class, Some(class), "{written}");
    }
    let (path, message) = one_error("[outputs.audio]\nmin_class = \"5\"\n");
    assert_eq!(path, "outputs.audio.min_class");
    assert!(message.contains("ambiguous"), "{message}");
    let (_, message) = one_error("[outputs.audio]\nmin_class = 4.5\n");
    assert!(message.contains("found the float 4.5"), "{message}");
}

#[test]
fn any_means_no_class_condition() {
    let s = with_site("[outputs.audio]\nmin_class = \"any\"\n").unwrap();
    assert_eq!(s.outputs.audio.trigger.min_class, None);
    let s = with_site("[outputs.led]\nmin_class = \"any\"\n").unwrap();
    assert_eq!(s.outputs.led.trigger.min_class, None);
    let s = with_site("[outputs.mqtt]\nmin_long_period_class = 3\n").unwrap();
    assert_eq!(s.outputs.mqtt.trigger.min_class, None);
    assert_eq!(s.outputs.mqtt.trigger.min_long_period_class, Some(3));
    let s = with_site("[outputs.led]\nmin_long_period_class = 3\n").unwrap();
    assert_eq!(s.outputs.led.trigger.min_class, Some(Intensity::Four));
    assert_eq!(s.outputs.led.trigger.min_long_period_class, Some(3));
    let s = with_site("[outputs.audio]\nmin_long_period_class = 3\n").unwrap();
    assert_eq!(s.outputs.audio.trigger.min_class, Some(Intensity::Four));
    assert_eq!(s.outputs.audio.trigger.min_long_period_class, Some(3));
    let (path, _) = one_error("[outputs.audio]\nmin_long_period_class = 5\n");
    assert_eq!(path, "outputs.audio.min_long_period_class");
}

#[test]
fn past_arrival_can_be_disabled_with_false() {
    let s = with_site("[alert]\npast_arrival_s = false\n").unwrap();
    assert_eq!(s.alert.past_arrival_s, None);
    let s = with_site("[alert]\npast_arrival_s = 0\n").unwrap();
    assert_eq!(s.alert.past_arrival_s, Some(0));
    let (path, message) = one_error("[alert]\npast_arrival_s = true\n");
    assert_eq!(path, "alert.past_arrival_s");
    assert!(message.contains("or false"), "{message}");
}

#[test]
fn alert_policies_and_flags() {
    let s = with_site(
        "[alert]\ntraining = true\ntest = true\ndrill = false\ndeep = \"ignore\"\n\
         level_method = \"act\"\nevent_expiry_s = 3600\n",
    )
    .unwrap();
    assert!(s.alert.training && s.alert.test && !s.alert.drill);
    assert_eq!(s.alert.deep, eew_core::settings::FlagPolicy::Ignore);
    assert_eq!(s.alert.level_method, eew_core::settings::FlagPolicy::Act);
    assert_eq!(s.alert.event_expiry_s, 3600);
    let (_, message) = one_error("[alert]\nplum = \"ignroe\"\n");
    assert!(message.contains("did you mean \"ignore\"?"), "{message}");
}

#[test]
fn prediction_values() {
    let s =
        with_site("[prediction]\nmode = \"site\"\nmw_offset = 0\nrock_factor = 1.31\n").unwrap();
    assert_eq!(s.prediction.mode, PredictionMode::Site);
    assert_eq!(s.prediction.mw_offset, 0.0);
    assert_eq!(s.prediction.rock_factor, 1.31);
    let e = errors("[prediction]\nmw_offset = nan\nrock_factor = inf\n");
    assert_eq!(
        e.paths(),
        ["prediction.mw_offset", "prediction.rock_factor"]
    );
}

#[test]
fn site_with_avs30_and_integer_area_code() {
    let s =
        Settings::from_toml_str("[site]\nlat = 34.7\nlon = 135.5\navs30 = 250\narea_code = 600\n")
            .unwrap();
    assert_eq!(s.site.amplification, Amplification::Avs30(250.0));
    assert_eq!(s.site.area_code, "600");
}

#[test]
fn site_amplification_either_or() {
    let e = Settings::from_toml_str(
        "[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\navs30 = 300\narea_code = \"350\"\n",
    )
    .expect_err("both");
    assert_eq!(e.paths(), ["site.avs30"]);
    assert!(e.0[0].message.contains("not both"));
    let e = Settings::from_toml_str("[site]\nlat = 35.681\nlon = 139.767\narea_code = \"350\"\n")
        .expect_err("neither");
    assert_eq!(e.paths(), ["site.arv400"]);
    let e = Settings::from_toml_str(
        "[site]\nlat = 35.681\nlon = 139.767\navs30 = 50\narea_code = \"350\"\n",
    )
    .expect_err("avs30 range");
    assert_eq!(e.paths(), ["site.avs30"]);
}

#[test]
fn unknown_area_code_names_the_nearest_area() {
    let e = Settings::from_toml_str(
        "[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\narea_code = \"999\"\n",
    )
    .expect_err("999");
    assert_eq!(e.paths(), ["site.area_code"]);
    assert!(
        e.0[0]
            .message
            .contains("the nearest to the site is \"350\""),
        "{e}"
    );
}

#[test]
fn area_name_instead_of_code_is_pointed_out() {
    let e = Settings::from_toml_str(
        "[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\narea_code = \"東京都23区\"\n",
    )
    .expect_err("a name");
    assert!(e.0[0].message.contains("write area_code = \"350\""), "{e}");
}

#[test]
fn missing_area_code_is_suggested_with_a_note() {
    let table = parse_table("[site]\nlat = 35.681\nlon = 139.767\narv400 = 1.6\n").unwrap();
    let loaded = Settings::load(&table, &[]).unwrap();
    assert_eq!(loaded.settings.site.area_code, "350");
    assert_eq!(loaded.notes.len(), 1);
    assert_eq!(loaded.notes[0].path, "site.area_code");
    assert!(
        loaded.notes[0].message.contains("\"350\""),
        "{}",
        loaded.notes[0]
    );
    assert!(loaded.notes[0].message.contains("set area_code explicitly"));
}

// ---------------------------------------------------------------------------------------
// Relays

#[test]
fn listed_relays_replace_the_defaults() {
    let s = with_site(
        "[[outputs.relay]]\nid = 7\nmin_class = \"6-\"\n\n\
         [[outputs.relay]]\nid = 3\nname = \"sirens\"\nmin_long_period_class = 3\nmode = \"pulse\"\npulse_ms = 500\n",
    )
    .unwrap();
    assert_eq!(
        s.outputs.relays,
        [
            RelayRule {
                id: 7,
                name: "relay 7".to_owned(),
                enabled: true,
                trigger: Trigger::from_class(Intensity::SixLower),
                mode: ContactMode::Latched,
                hold_s: 0,
                prestart_ms: 0,
                release: Release::ANY,
            },
            RelayRule {
                id: 3,
                name: "sirens".to_owned(),
                enabled: true,
                trigger: Trigger {
                    min_long_period_class: Some(3),
                    ..Trigger::default()
                },
                mode: ContactMode::Pulse { pulse_ms: 500 },
                hold_s: 0,
                prestart_ms: 0,
                release: Release::NONE,
            },
        ]
    );
}

#[test]
fn an_empty_relay_list_means_no_relays() {
    let s = with_site("[outputs]\nrelay = []\n").unwrap();
    assert!(s.outputs.relays.is_empty());
}

#[test]
fn relay_section_with_single_brackets_is_explained() {
    let (path, message) = one_error("[outputs.relay]\nid = 1\nmin_class = \"4\"\n");
    assert_eq!(path, "outputs.relay");
    assert!(message.contains("[[outputs.relay]]"), "{message}");
}

#[test]
fn relay_needs_an_id_and_a_class() {
    let e = errors("[[outputs.relay]]\nname = \"x\"\n");
    assert_eq!(
        e.paths(),
        ["outputs.relay[0].id", "outputs.relay[0].min_class"]
    );
    let (path, _) = one_error("[[outputs.relay]]\nid = 17\nmin_class = \"4\"\n");
    assert_eq!(path, "outputs.relay[0].id");
}

#[test]
fn duplicate_relay_ids() {
    let e = errors(
        "[[outputs.relay]]\nid = 1\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 1\nmin_class = \"5-\"\n",
    );
    assert_eq!(e.paths(), ["outputs.relay[2].id"]);
    assert!(e.0[0].message.contains("already used by outputs.relay[0]"));
}

#[test]
fn pulse_rules() {
    let e = errors(
        "[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nmode = \"pulse\"\n\
         release_on = [\"cancel\"]\nhold_s = 5\n",
    );
    assert_eq!(
        e.paths(),
        [
            "outputs.relay[0].pulse_ms",
            "outputs.relay[0].release_on",
            "outputs.relay[0].hold_s"
        ]
    );
    let (path, _) = one_error(
        "[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nmode = \"pulse\"\npulse_ms = 50\n",
    );
    assert_eq!(path, "outputs.relay[0].pulse_ms");
}

#[test]
fn latched_with_pulse_ms() {
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 1\nmin_class = \"4\"\npulse_ms = 500\n");
    assert_eq!(path, "outputs.relay[0].pulse_ms");
    assert!(message.contains("mode = \"pulse\""), "{message}");
}

#[test]
fn latched_contact_that_can_never_release() {
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nrelease_on = []\n");
    assert_eq!(path, "outputs.relay[0].release_on");
    assert!(message.contains("forever"), "{message}");
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nrelease_on = [\"cancel\"]\n");
    assert_eq!(path, "outputs.relay[0].release_on");
    assert!(message.contains("add \"expiry\" or \"reset\""), "{message}");
    let e = errors(
        "[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nrelease_on = [\"reset\", \"rest\", \"reset\"]\n",
    );
    assert_eq!(
        e.paths(),
        [
            "outputs.relay[0].release_on[1]",
            "outputs.relay[0].release_on[2]"
        ]
    );
    assert!(e.0[0].message.contains("did you mean \"reset\"?"));
    assert!(e.0[1].message.contains("listed twice"));
    let s = with_site("[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nrelease_on = [\"expiry\"]\n")
        .unwrap();
    assert_eq!(
        s.outputs.relays[0].release,
        Release {
            on_cancel: false,
            on_expiry: true,
            on_reset: false
        }
    );
}

#[test]
fn any_cannot_be_combined_with_a_long_period_minimum() {
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 1\nmin_class = \"any\"\nmin_long_period_class = 2\n");
    assert_eq!(path, "outputs.relay[0].min_class");
    assert!(message.contains("cannot be combined"), "{message}");
}

#[test]
fn prestart_contact_must_close_whenever_audio_speaks() {
    let (path, message) =
        one_error("[[outputs.relay]]\nid = 2\nmin_class = \"5-\"\nprestart_ms = 1500\n");
    assert_eq!(path, "outputs.relay[0].min_class");
    assert!(message.contains("amplifier that is off"), "{message}");
    let (path, _) = one_error(
        "[[outputs.relay]]\nid = 2\nmin_class = \"4\"\nwarning_only = true\nprestart_ms = 1500\n",
    );
    assert_eq!(path, "outputs.relay[0].warning_only");
    // Weaker than the audio's, or audio off: fine.
    assert!(
        with_site("[[outputs.relay]]\nid = 2\nmin_class = \"3\"\nprestart_ms = 1500\n").is_ok()
    );
    assert!(with_site(
        "[outputs.audio]\nenabled = false\n[[outputs.relay]]\nid = 2\nmin_class = \"6-\"\nprestart_ms = 1500\n"
    )
    .is_ok());
}

#[test]
fn the_default_pa_contact_follows_the_audio_trigger() {
    let s = with_site("[outputs.audio]\nmin_class = \"3\"\ninclude.drill = true\n").unwrap();
    let pa = &s.outputs.relays[1];
    assert_eq!(pa.prestart_ms, 1500);
    assert_eq!(pa.trigger, s.outputs.audio.trigger);
    assert_eq!(pa.trigger.min_class, Some(Intensity::Three));
    assert!(pa.trigger.include.drill);
    // The other defaults do not move.
    assert_eq!(s.outputs.relays[0], OutputRules::default().relays[0]);
}

#[test]
fn prestart_contact_must_follow_everything_audio_follows() {
    let (path, message) = one_error(
        "[outputs.audio]\ninclude = { drill = true }\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\nprestart_ms = 1500\n",
    );
    assert_eq!(path, "outputs.relay[0].include");
    assert!(message.contains("audio follows drill"), "{message}");
    let (path, message) = one_error(
        "[outputs.audio]\nmin_class = \"any\"\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\nprestart_ms = 1500\n",
    );
    assert_eq!(path, "outputs.relay[0].min_class");
    assert!(message.contains("every report"), "{message}");
    let (path, _) = one_error(
        "[outputs.audio]\nmin_long_period_class = 2\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\nmin_long_period_class = 3\nprestart_ms = 1500\n",
    );
    assert_eq!(path, "outputs.relay[0].min_long_period_class");
}

#[test]
fn relay_names() {
    let e = errors(&format!(
        "[[outputs.relay]]\nid = 1\nmin_class = \"4\"\nname = \"{}\"\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\nname = \"a\\tb\"\n",
        "x".repeat(65)
    ));
    assert_eq!(
        e.paths(),
        ["outputs.relay[0].name", "outputs.relay[1].name"]
    );
}

#[test]
fn include_table_defaults_per_key() {
    let s = with_site(
        "[outputs.mqtt]\ninclude = { training = false }\n\
         [[outputs.relay]]\nid = 1\nmin_class = \"4\"\ninclude.drill = true\n",
    )
    .unwrap();
    assert_eq!(
        s.outputs.mqtt.trigger.include,
        Include {
            training: false,
            test: true,
            drill: true
        }
    );
    assert_eq!(
        s.outputs.relays[0].trigger.include,
        Include {
            training: false,
            test: false,
            drill: true
        }
    );
}

// ---------------------------------------------------------------------------------------
// Audio

#[test]
fn quiet_hours_accept_strings_and_toml_times() {
    let s = with_site(
        "[outputs.audio]\nstyle = \"phrase\"\ncountdown_from_s = 0\n\
         quiet_hours = { start = \"22:00\", end = 07:00:00 }\n",
    )
    .unwrap();
    let q = s.outputs.audio.quiet_hours.unwrap();
    assert_eq!(q.start.to_string(), "22:00:00");
    assert_eq!(q.end.to_string(), "07:00:00");
    assert_eq!(q.min_class, Intensity::FiveLower);
    assert_eq!(s.outputs.audio.style, AudioStyle::Phrase);
    assert_eq!(s.outputs.audio.countdown_from_s, 0);
}

#[test]
fn quiet_hours_rules() {
    let (path, message) =
        one_error("[outputs.audio.quiet_hours]\nstart = \"22:00\"\nend = \"22:00\"\n");
    assert_eq!(path, "outputs.audio.quiet_hours.end");
    assert!(message.contains("same time (22:00)"), "{message}");
    let (path, message) = one_error(
        "[outputs.audio]\nmin_class = \"5-\"\nquiet_hours = { start = \"22:00\", end = \"07:00\", min_class = \"4\" }\n",
    );
    assert_eq!(path, "outputs.audio.quiet_hours.min_class");
    assert!(message.contains("change nothing"), "{message}");
    let e = errors("[outputs.audio.quiet_hours]\nstart = \"25:00\"\nmin_class = \"any\"\n");
    assert_eq!(
        e.paths(),
        [
            "outputs.audio.quiet_hours.start",
            "outputs.audio.quiet_hours.end",
            "outputs.audio.quiet_hours.min_class"
        ]
    );
    let (path, _) =
        one_error("[outputs.audio.quiet_hours]\nstart = 2026-01-01T22:00:00\nend = \"07:00\"\n");
    assert_eq!(path, "outputs.audio.quiet_hours.start");
}

// ---------------------------------------------------------------------------------------
// Nothing panics

/// Keys the reader knows, so generated tables reach the deep checks.
const KEYS: &[&str] = &[
    "site",
    "prediction",
    "alert",
    "outputs",
    "audio",
    "led",
    "mqtt",
    "relay",
    "lat",
    "lon",
    "arv400",
    "avs30",
    "area_code",
    "mode",
    "mw_offset",
    "rock_factor",
    "training",
    "test",
    "drill",
    "deep",
    "plum",
    "past_arrival_s",
    "event_expiry_s",
    "id",
    "name",
    "enabled",
    "min_class",
    "min_long_period_class",
    "warning_only",
    "include",
    "pulse_ms",
    "hold_s",
    "prestart_ms",
    "release_on",
    "style",
    "countdown_from_s",
    "quiet_hours",
    "start",
    "end",
];

fn value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<i64>().prop_map(toml::Value::Integer),
        (-20i64..200).prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        prop::sample::select(vec![
            "4", "5-", "6弱", "any", "pulse", "latched", "cancel", "reset", "expiry", "area",
            "site", "act", "ignore", "22:00", "350", "", "numbers",
        ])
        .prop_map(|s| toml::Value::String(s.to_owned())),
        ".{0,12}".prop_map(toml::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), inner, 0..6).prop_map(
                |m| toml::Value::Table(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Settings::from_toml_str(&text);
    }

    #[test]
    fn toml_like_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("[site]".to_owned()),
                Just("[[outputs.relay]]".to_owned()),
                Just("[outputs.audio.quiet_hours]".to_owned()),
                (prop::sample::select(KEYS.to_vec()), "[ -~]{0,12}")
                    .prop_map(|(k, v)| format!("{k} = {v}")),
            ],
            0..20,
        )
    ) {
        let _ = Settings::from_toml_str(&lines.join("\n"));
    }

    #[test]
    fn arbitrary_tables_never_panic_and_errors_have_paths(
        table in prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value(), 0..6)
    ) {
        let table: toml::Table = table.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Err(e) = Settings::from_toml_table(&table, &["web"]) {
            prop_assert!(!e.0.is_empty());
            for err in &e.0 {
                prop_assert!(!err.path.is_empty());
                prop_assert!(!err.message.is_empty());
            }
        }
    }

    #[test]
    fn mutated_example_never_panics(at in any::<prop::sample::Index>(), junk in "\\PC{0,8}", cut in any::<bool>()) {
        let mut text = EXAMPLE.to_owned();
        let mut i = at.index(text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        if cut {
            text.truncate(i);
        }
        text.insert_str(i, &junk);
        let _ = Settings::from_toml_str(&text);
    }

    #[test]
    fn any_valid_site_with_defaults_round_trips(
        lat in 20.0f64..=46.0, lon in 122.0f64..=154.0, arv in 0.01f64..=10.0
    ) {
        let text = format!("[site]\nlat = {lat:?}\nlon = {lon:?}\narv400 = {arv:?}\narea_code = \"350\"\n");
        let s = Settings::from_toml_str(&text).unwrap();
        prop_assert_eq!(s.site.lat, lat);
        prop_assert_eq!(s.site.amplification, Amplification::Arv400(arv));
    }
}
