//! Property tests of the alert engine over real report sequences from the corpus
//! (`tests/fixtures/telegrams/`), with random settings, random duplication, random delays
//! and random arrival order of copies:
//!
//! - every report fed twice (or three times, the copies late and interleaved), and older
//!   serials arriving after newer ones, give exactly the actions of the clean sequence;
//! - a cancel leaves nothing running that its event started: no countdown or announcement
//!   after it except the cancellation (spoken only if the event had spoken), contacts
//!   released on cancel open (after their hold time), pulses end, contacts released on
//!   expiry open when the event would have expired, only reset-only contacts stay closed;
//! - exercise inputs (JMA 訓練, JMA 試験) never produce a real action: nothing at all when
//!   their label is disabled, and every action labelled and `training = true` when enabled,
//!   on contacts that include them only;
//! - the engine never panics on arbitrary interleavings of reports, ticks, commands and
//!   faults at arbitrary (monotone) times; every `next_deadline` is after `now`; each
//!   contact alternates on/off and `closed_relays()` and `led()` agree with the actions;
//! - every announcement and countdown number is made of catalogue clips
//!   (`engine::voice::CLIPS`) and its texts are exactly what those clips display.
//!
//! Settings are generated as TOML and go through `Settings::from_toml_str`, so only valid
//! settings are used. Case counts are moderate so the file runs in seconds in debug mode;
//! `PROPTEST_CASES=N` raises them.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test crate: fixtures are read from disk and a broken fixture should stop the run"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::TimeDelta;
use eew_core::engine::{
    Action, ActionKind, AlertState, Cause, Command, DrillSpec, Engine, Fault, Input, Label,
    LedPattern, OutputId, Step, Timeline, voice,
};
use eew_core::settings::{ContactMode, Settings};
use eew_core::{Intensity, JstTime, Report};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// The corpus.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams")
}

fn text_of(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse_text(name: &str, text: &str) -> Report {
    eew_core::parse(text.as_bytes())
        .unwrap_or_else(|r| panic!("{name}: rejected ({}): {}", r.reason.code(), r.message))
}

fn load(name: &str) -> Report {
    parse_text(name, &text_of(name))
}

/// A real telegram with one exact substitution (for the few inputs the corpus lacks).
fn load_edited(name: &str, from: &str, to: &str) -> Report {
    let text = text_of(name);
    assert_eq!(
        text.matches(from).count(),
        1,
        "{name}: {from:?} must occur once"
    );
    parse_text(name, &text.replacen(from, to, 1))
}

/// The real 2012-01-08 cancel code telegram given another event's header (the corpus has
/// few cancels).
fn cancel_for(header: &str) -> Report {
    load_edited(
        "20120108_ncn003_cancel.txt",
        "120108133217 C11 120108133154 ND20120108133201 NCN003",
        header,
    )
}

fn bungo44(n: u32) -> String {
    format!("jmaxml_vxse44_20240417_bungo_36_01_{n:02}_serial{n}_forecast.xml")
}

/// One event's reports in the order JMA issued them.
struct Sequence {
    name: &'static str,
    /// Forecast areas the site may be in (each listed by some report of the sequence).
    sites: &'static [&'static str],
    reports: Vec<Report>,
    /// The same report in another format, by index in `reports` (a copy from another link).
    twins: BTreeMap<usize, Report>,
    /// The event's cancel, if the corpus has (or can lend) one.
    cancel: Option<Report>,
}

static SEQUENCES: LazyLock<Vec<Sequence>> = LazyLock::new(|| {
    vec![
        Sequence {
            name: "2024-04-17 Bungo-suido VXSE44 1-32",
            sites: &["621", "620", "622", "631", "632", "751", "752"],
            reports: (1..=32).map(|n| load(&bungo44(n))).collect(),
            twins: BTreeMap::new(),
            cancel: Some(load(
                "jmaxml_vxse44_20240417_bungo_36_01_33_serial32_cancel.xml",
            )),
        },
        Sequence {
            name: "2024-04-17 Bungo-suido VXSE43 1-2",
            sites: &["621", "751", "622", "632", "620"],
            reports: vec![
                load("jmaxml_vxse43_20240417_bungo_37_01_01_serial1_warning.xml"),
                load("jmaxml_vxse43_20240417_bungo_37_01_02_serial2_warning.xml"),
            ],
            twins: BTreeMap::new(),
            cancel: Some(load(
                "jmaxml_vxse43_20240417_bungo_37_01_03_serial2_cancel.xml",
            )),
        },
        Sequence {
            name: "2011-03-11 Tohoku code 1, 9, 12",
            sites: &["220", "222", "211", "210", "212"],
            reports: vec![
                load("20110311_tohoku_ncn001_first.txt"),
                load("20110311_tohoku_ncn009_warning.txt"),
                load("20110311_tohoku_ncn012_warning.txt"),
            ],
            twins: BTreeMap::new(),
            cancel: Some(load("jmaxml_vxse43_20110311_tohoku_sample_cancel.xml")),
        },
        Sequence {
            name: "2011-03-11 Tohoku JMA sample (XML and DM-D.S.S)",
            sites: &["220", "213", "221", "200"],
            reports: vec![
                load("jmaxml_vxse43_20110311_tohoku_sample_serial5_warning.xml"),
                load("dmdata_eewinfo_vxse45_rjtd_20110311144810.json"),
            ],
            twins: BTreeMap::from([(0, load("dmdata_eewinfo_vxse43_rjtd_20110311144810.json"))]),
            cancel: Some(load("jmaxml_vxse43_20110311_tohoku_sample_cancel.xml")),
        },
        Sequence {
            name: "2025-08-11 Miyakojima (code and Wolfx)",
            sites: &["804"],
            reports: vec![
                load("20250811_miyakojima_ncn001_first.txt"),
                load("20250811_miyakojima_ncn903_final.txt"),
            ],
            twins: BTreeMap::from([
                (0, load("wolfx_20250811_miyakojima_serial1.json")),
                (1, load("wolfx_20250811_miyakojima_serial3.json")),
            ]),
            cancel: None,
        },
        Sequence {
            name: "2017-02-28 Fukushima-oki final",
            sites: &["220", "221", "251"],
            reports: vec![load("20170228_fukushimaoki_ncn913_final.txt")],
            twins: BTreeMap::new(),
            cancel: Some(cancel_for(
                "170228165020 C11 170228164901 ND20170228164912 NCN014",
            )),
        },
        Sequence {
            name: "2018-06-18 Osaka warning",
            sites: &["520", "511", "540", "530"],
            reports: vec![load("20180618_osaka_ncn011_warning.txt")],
            twins: BTreeMap::new(),
            cancel: Some(cancel_for(
                "180618075910 C11 180618075834 ND20180618075838 NCN012",
            )),
        },
        Sequence {
            name: "2021-10-06 Iwate-oki final (PLUM)",
            sites: &["202", "210", "211", "212"],
            reports: vec![load("20211006_iwateoki_ncn916_final_plum.txt")],
            twins: BTreeMap::new(),
            cancel: None,
        },
    ]
});

/// Training (訓練) and test (試験) inputs: the real training telegram and real telegrams
/// given the training or test status.
static EXERCISES: LazyLock<Vec<(Label, &'static [&'static str], Report)>> = LazyLock::new(|| {
    let mut out = vec![(
        Label::Training,
        &["360", "350"][..],
        load("20120420_training_ncn004.txt"),
    )];
    for (label, status_xml, code_status) in [
        (Label::Training, "<Status>訓練</Status>", "37 03 01"),
        (Label::Test, "<Status>試験</Status>", "37 03 20"),
    ] {
        for n in [1, 4, 9, 15, 27] {
            out.push((
                label,
                &["621", "622", "620", "751"][..],
                load_edited(&bungo44(n), "<Status>通常</Status>", status_xml),
            ));
        }
        out.push((
            label,
            &["621", "622", "751"][..],
            load_edited(
                "jmaxml_vxse43_20240417_bungo_37_01_03_serial2_cancel.xml",
                "<Status>通常</Status>",
                status_xml,
            ),
        ));
        for name in [
            "20110311_tohoku_ncn009_warning.txt",
            "20110311_tohoku_ncn012_warning.txt",
        ] {
            out.push((
                label,
                &["220", "211", "222"][..],
                load_edited(name, "37 03 00", code_status),
            ));
        }
        out.push((
            label,
            &["520", "511"][..],
            load_edited("20180618_osaka_ncn011_warning.txt", "37 03 00", code_status),
        ));
    }
    out.into_iter()
        .map(|(label, sites, r)| {
            let expected = match label {
                Label::Training => eew_core::Status::Training,
                _ => eew_core::Status::Test,
            };
            assert_eq!(
                r.status, expected,
                "an exercise fixture has the wrong status"
            );
            (label, sites, r)
        })
        .collect()
});

/// Every report the corpus yields (valid fixtures, the sequences, the exercises).
static POOL: LazyLock<Vec<Report>> = LazyLock::new(|| {
    let mut pool: Vec<Report> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.ends_with(".expected.json") && name != "README.md" && name != "index.csv"
        })
        .filter_map(|p| eew_core::parse(&std::fs::read(p).unwrap()).ok())
        .collect();
    for s in SEQUENCES.iter() {
        pool.extend(s.cancel.iter().cloned());
    }
    pool.extend(EXERCISES.iter().map(|(_, _, r)| r.clone()));
    assert!(
        pool.len() > 60,
        "the corpus yields only {} reports",
        pool.len()
    );
    pool
});

/// Forecast-area centroids, for a site in a given area.
static CENTROIDS: LazyLock<BTreeMap<String, (f64, f64)>> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/jma_eew_area_centroids.csv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').map(str::trim).collect();
            let (code, lat, lon) = (cols.first()?, cols.get(2)?, cols.get(3)?);
            Some((code.to_string(), (lat.parse().ok()?, lon.parse().ok()?)))
        })
        .collect()
});

// ---------------------------------------------------------------------------------------
// Random valid settings, written as TOML.

const CLASSES: &[&str] = &["any", "1", "2", "3", "4", "4", "5-", "5+", "6-"];
const RELEASES: &[&str] = &[
    r#"["cancel", "expiry", "reset"]"#,
    r#"["cancel", "expiry", "reset"]"#,
    r#"["expiry", "reset"]"#,
    r#"["reset"]"#,
    r#"["cancel", "reset"]"#,
    r#"["cancel", "expiry"]"#,
    r#"["expiry"]"#,
];

#[derive(Clone, Debug)]
struct RelaySpec {
    class: &'static str,
    long_period: Option<u8>,
    warning_only: bool,
    include: (bool, bool, bool),
    pulse_ms: Option<u32>,
    hold_s: u32,
    release: &'static str,
    prestart_ms: u32,
    enabled: bool,
}

fn include_toml((training, test, drill): (bool, bool, bool)) -> String {
    format!("{{ training = {training}, test = {test}, drill = {drill} }}")
}

fn relay_spec() -> impl Strategy<Value = RelaySpec> {
    (
        select(CLASSES),
        prop::option::weighted(0.2, 0u8..=3),
        prop::bool::weighted(0.2),
        any::<(bool, bool, bool)>(),
        prop::option::weighted(0.3, select(&[100u32, 500, 3000, 10_000][..])),
        select(&[0u32, 0, 5, 60][..]),
        select(RELEASES),
        prop::option::weighted(0.25, select(&[500u32, 1500, 3000][..])),
        prop::bool::weighted(0.95),
    )
        .prop_map(
            |(
                class,
                long_period,
                warning_only,
                include,
                pulse_ms,
                hold_s,
                release,
                pre,
                enabled,
            )| {
                let prestart_ms = pre.unwrap_or(0);
                RelaySpec {
                    // "any" cannot be combined with a long-period class; a pre-start contact
                    // must not be stricter than the voice, so it acts on every report.
                    class: if prestart_ms > 0 {
                        "any"
                    } else if long_period.is_some() && class == "any" {
                        "4"
                    } else {
                        class
                    },
                    long_period: long_period.filter(|_| prestart_ms == 0),
                    warning_only: warning_only && prestart_ms == 0,
                    include,
                    pulse_ms,
                    hold_s,
                    release,
                    prestart_ms,
                    enabled,
                }
            },
        )
}

#[derive(Clone, Debug)]
struct SettingsSpec {
    training: bool,
    test: bool,
    drill: bool,
    policies: [bool; 5],
    past_arrival: Option<u32>,
    expiry_s: u32,
    audio: (bool, &'static str, bool, u8, bool, (bool, bool, bool)),
    led: (bool, &'static str, (bool, bool, bool)),
    mqtt: (bool, &'static str, (bool, bool, bool)),
    relays: Vec<RelaySpec>,
}

fn settings_spec() -> impl Strategy<Value = SettingsSpec> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::array::uniform5(prop::bool::weighted(0.8)),
        prop::option::weighted(0.85, select(&[0u32, 5, 10, 10, 30][..])),
        select(&[10u32, 60, 180, 180, 600][..]),
        (
            prop::bool::weighted(0.9),
            select(CLASSES),
            any::<bool>(),
            0u8..=12,
            prop::bool::weighted(0.2),
            any::<(bool, bool, bool)>(),
        ),
        (
            prop::bool::weighted(0.9),
            select(CLASSES),
            any::<(bool, bool, bool)>(),
        ),
        (
            prop::bool::weighted(0.9),
            select(CLASSES),
            any::<(bool, bool, bool)>(),
        ),
        prop::collection::vec(relay_spec(), 0..=6),
    )
        .prop_map(
            |(
                (training, test, drill),
                policies,
                past_arrival,
                expiry_s,
                audio,
                led,
                mqtt,
                relays,
            )| {
                SettingsSpec {
                    training,
                    test,
                    drill,
                    policies,
                    past_arrival,
                    expiry_s,
                    audio,
                    led,
                    mqtt,
                    relays,
                }
            },
        )
}

fn settings_toml(spec: &SettingsSpec, area: &str) -> String {
    let (lat, lon) = CENTROIDS
        .get(area)
        .copied()
        .unwrap_or_else(|| panic!("no centroid for area {area}"));
    let policy = |act: bool| if act { "\"act\"" } else { "\"ignore\"" };
    let [deep, plum, single, level, assumed] = spec.policies;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[site]\nlat = {lat}\nlon = {lon}\narv400 = 1.4\narea_code = \"{area}\"\n"
    );
    let _ = writeln!(
        t,
        "[alert]\ntraining = {}\ntest = {}\ndrill = {}\ndeep = {}\nplum = {}\n\
         single_station = {}\nlevel_method = {}\nassumed_hypocenter = {}\n\
         past_arrival_s = {}\nevent_expiry_s = {}\n",
        spec.training,
        spec.test,
        spec.drill,
        policy(deep),
        policy(plum),
        policy(single),
        // Level method is ignored unless enabled: enable it less often.
        policy(level && plum),
        policy(assumed),
        spec.past_arrival
            .map_or_else(|| "false".to_owned(), |s| s.to_string()),
        spec.expiry_s
    );
    let (enabled, class, phrase, countdown, quiet, include) = spec.audio;
    let _ = writeln!(
        t,
        "[outputs.audio]\nenabled = {enabled}\nmin_class = \"{class}\"\nstyle = \"{}\"\n\
         countdown_from_s = {countdown}\ninclude = {}",
        if phrase { "phrase" } else { "numbers" },
        include_toml(include)
    );
    if quiet && matches!(class, "any" | "1" | "2" | "3" | "4") {
        let _ = writeln!(
            t,
            "quiet_hours = {{ start = \"22:00\", end = \"07:00\", min_class = \"6-\" }}"
        );
    }
    for (name, (enabled, class, include)) in [("led", spec.led), ("mqtt", spec.mqtt)] {
        let _ = writeln!(
            t,
            "\n[outputs.{name}]\nenabled = {enabled}\nmin_class = \"{class}\"\ninclude = {}",
            include_toml(include)
        );
    }
    if spec.relays.is_empty() {
        let _ = writeln!(t, "\n[outputs]\nrelay = []");
    }
    for (i, r) in spec.relays.iter().enumerate() {
        // A PA pre-start contact follows at least what the voice follows.
        let (at, ae, ad) = include;
        let (rt, re, rd) = r.include;
        let include = if r.prestart_ms > 0 {
            (at || rt, ae || re, ad || rd)
        } else {
            r.include
        };
        let _ = writeln!(
            t,
            "\n[[outputs.relay]]\nid = {}\nenabled = {}\nmin_class = \"{}\"\nwarning_only = {}\n\
             include = {}\nprestart_ms = {}",
            i + 1,
            r.enabled,
            r.class,
            r.warning_only,
            include_toml(include),
            r.prestart_ms
        );
        if let Some(lp) = r.long_period {
            let _ = writeln!(t, "min_long_period_class = {lp}");
        }
        match r.pulse_ms {
            Some(ms) => {
                let _ = writeln!(t, "mode = \"pulse\"\npulse_ms = {ms}");
            }
            None => {
                let _ = writeln!(
                    t,
                    "mode = \"latched\"\nhold_s = {}\nrelease_on = {}",
                    r.hold_s, r.release
                );
            }
        }
    }
    t
}

fn settings_of(spec: &SettingsSpec, area: &str) -> Result<Settings, TestCaseError> {
    let text = settings_toml(spec, area);
    Settings::from_toml_str(&text)
        .map_err(|e| TestCaseError::fail(format!("generated settings are invalid: {e}\n{text}")))
}

// ---------------------------------------------------------------------------------------
// Running.

fn plus_ms(t: JstTime, ms: i64) -> JstTime {
    JstTime(t.0 + TimeDelta::milliseconds(ms))
}

fn issued(r: &Report) -> JstTime {
    r.issued_at
        .or(r.origin_time)
        .unwrap_or_else(|| panic!("{}: no time", r.event_id.as_str()))
}

/// Fires the timeline's deadlines up to `t` one deadline at a time, so every step's time is
/// known.
fn tick_until(tl: &mut Timeline, t: JstTime, out: &mut Vec<(JstTime, Step)>) {
    while let Some(d) = tl.deadline().filter(|d| *d <= t) {
        for step in tl.advance_to(d) {
            out.push((d, step));
        }
    }
}

/// Feeds `(time, input)` in order on a fresh timeline, then drains `drain_h` hours;
/// returns every step with its time, and the timeline.
fn run_timed(
    settings: &Settings,
    inputs: &[(JstTime, Input)],
    drain_h: i64,
) -> (Vec<(JstTime, Step)>, Timeline) {
    let mut tl = Timeline::new(Engine::new(settings.clone()));
    let mut out = Vec::new();
    for (at, input) in inputs {
        tick_until(&mut tl, *at, &mut out);
        for step in tl.feed(input.clone(), *at) {
            out.push((*at, step));
        }
    }
    if let Some((last, _)) = inputs.last() {
        tick_until(&mut tl, plus_ms(*last, drain_h * 3_600_000), &mut out);
    }
    (out, tl)
}

/// Every action of a run, in order.
fn replay(
    settings: &Settings,
    inputs: &[(JstTime, Input)],
    drain_h: i64,
) -> (Vec<Action>, Timeline) {
    let (steps, tl) = run_timed(settings, inputs, drain_h);
    let actions = steps.into_iter().flat_map(|(_, s)| s.actions).collect();
    (actions, tl)
}

fn report(r: &Report) -> Input {
    Input::Report(Box::new(r.clone()))
}

fn show(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {:?} {:?} s{:?} {:?}",
                a.at,
                a.output,
                a.kind.name(),
                a.cause,
                a.event_id,
                a.serial,
                a.label
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first-arrival times of a sequence's reports: each at its issue time plus a delay,
/// never before the previous one.
fn arrival_times(reports: &[Report], delays_ms: &[u32]) -> Vec<JstTime> {
    let mut out: Vec<JstTime> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let own = plus_ms(issued(r), i64::from(*delays_ms.get(i).unwrap_or(&0)));
        let t = out.last().map_or(own, |prev| own.max(*prev));
        out.push(t);
    }
    out
}

/// A copy delivered `delay_ms` after its first arrival over another link.
#[derive(Clone, Debug)]
struct LinkCopy {
    of: Index,
    delay_ms: u32,
    twin: bool,
}

fn copies() -> impl Strategy<Value = Vec<LinkCopy>> {
    prop::collection::vec(
        (any::<Index>(), 0u32..30_000, any::<bool>()).prop_map(|(of, delay_ms, twin)| LinkCopy {
            of,
            delay_ms,
            twin,
        }),
        0..40,
    )
}

/// Merges extra `(time, input)` items into a time-ordered list; an extra item at the same
/// time as another goes after it (a copy never overtakes the first arrival).
fn merge(
    mut base: Vec<(JstTime, u32, Input)>,
    extra: Vec<(JstTime, Input)>,
) -> Vec<(JstTime, Input)> {
    for (t, input) in extra {
        base.push((t, 1, input));
    }
    base.sort_by_key(|(t, order, _)| (*t, *order));
    base.into_iter().map(|(t, _, i)| (t, i)).collect()
}

// ---------------------------------------------------------------------------------------
// Checks over action histories.

/// Each contact alternates on/off, and the engine's view at the end agrees with the
/// actions; the LED shows the last pattern it was told.
fn check_consistency(actions: &[Action], engine: &Engine) -> Result<(), TestCaseError> {
    let mut closed: BTreeSet<u8> = BTreeSet::new();
    // Closed by a self-test: an alarm may take it over with an `on` of its own.
    let mut tested: BTreeSet<u8> = BTreeSet::new();
    let mut led = LedPattern::Normal;
    for a in actions {
        match (&a.output, &a.kind) {
            (OutputId::Relay(id), ActionKind::On { .. }) => {
                let taken_over = a.cause != Cause::SelfTest && tested.remove(id);
                prop_assert!(
                    closed.insert(*id) || taken_over,
                    "relay {id} closed twice without opening:\n{}",
                    show(actions)
                );
                if a.cause == Cause::SelfTest {
                    tested.insert(*id);
                }
            }
            (OutputId::Relay(id), ActionKind::Off) => {
                tested.remove(id);
                prop_assert!(
                    closed.remove(id),
                    "relay {id} opened while open:\n{}",
                    show(actions)
                );
            }
            // A lamp test is shown and over; the engine's standing pattern is unchanged.
            (OutputId::Led, ActionKind::Led { pattern }) if *pattern != LedPattern::LampTest => {
                led = *pattern;
            }
            (
                OutputId::Audio,
                ActionKind::Announce {
                    text_ja,
                    text_en,
                    clips_ja,
                    clips_en,
                }
                | ActionKind::Countdown {
                    text_ja,
                    text_en,
                    clips_ja,
                    clips_en,
                    ..
                },
            ) => check_voice(text_ja, text_en, clips_ja, clips_en)?,
            _ => {}
        }
        if let ActionKind::Countdown {
            seconds, clips_ja, ..
        } = &a.kind
        {
            let number = voice::number_clips(u32::from(*seconds));
            prop_assert_eq!(Some(clips_ja), number.as_ref(), "countdown says its number");
        }
        prop_assert_eq!(a.training, a.label != Label::Real, "training flag vs label");
    }
    let engine_closed: BTreeSet<u8> = engine.closed_relays().into_iter().collect();
    prop_assert_eq!(
        closed,
        engine_closed,
        "closed_relays() disagrees with the actions"
    );
    prop_assert_eq!(led, engine.led(), "led() disagrees with the actions");
    Ok(())
}

/// What the audio output plays is what the texts say: every clip is in the catalogue, the
/// Japanese text is the clips' `ja` concatenated and the English one their `en` joined by
/// single spaces.
fn check_voice(
    text_ja: &str,
    text_en: &str,
    clips_ja: &[&str],
    clips_en: &[&str],
) -> Result<(), TestCaseError> {
    prop_assert!(
        !clips_ja.is_empty() && !clips_en.is_empty(),
        "nothing to say"
    );
    let mut ja = String::new();
    for id in clips_ja {
        let Some(c) = voice::clip(id) else {
            return Err(TestCaseError::fail(format!("{id} is not in CLIPS")));
        };
        ja.push_str(c.ja);
    }
    let mut en = Vec::new();
    for id in clips_en {
        let Some(c) = voice::clip(id) else {
            return Err(TestCaseError::fail(format!("{id} is not in CLIPS")));
        };
        en.push(c.en);
    }
    prop_assert_eq!(text_ja, ja);
    prop_assert_eq!(text_en, en.join(" "));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(160))]

    /// Copies of every report from a second link (same format or another one), delivered
    /// late and out of order, and older serials delivered after newer ones, change nothing.
    #[test]
    fn duplicates_and_late_older_serials_change_nothing(
        seq in any::<Index>(),
        site in any::<Index>(),
        spec in settings_spec(),
        delays in prop::collection::vec(0u32..1500, 40),
        extra in copies(),
        late in prop::collection::vec((any::<Index>(), any::<Index>(), 0u32..5000), 0..6),
        with_cancel in any::<bool>(),
        cancel_gap_ms in 0u32..60_000,
    ) {
        let s = seq.get(&SEQUENCES);
        let area = site.get(s.sites);
        let settings = settings_of(&spec, area)?;
        let n = s.reports.len();
        let times = arrival_times(&s.reports, &delays);

        // Reports that arrive only late, after a newer serial: absent from the clean run.
        // Each arrives after the on-time first arrival of a newer serial (the last report
        // is never late, so there always is one).
        let mut late_items: Vec<(usize, JstTime)> = Vec::new();
        if n >= 2 {
            let late_set: BTreeSet<usize> = late.iter().map(|(w, _, _)| w.index(n - 1)).collect();
            for (which, after, extra_ms) in &late {
                let i = which.index(n - 1);
                if late_items.iter().any(|(k, _)| *k == i) {
                    continue;
                }
                let newer: Vec<usize> = (i + 1..n).filter(|k| !late_set.contains(k)).collect();
                let j = *after.get(&newer);
                late_items.push((i, plus_ms(times[j], i64::from(*extra_ms))));
            }
        }
        let is_late = |i: usize| late_items.iter().any(|(k, _)| *k == i);

        let mut clean: Vec<(JstTime, u32, Input)> = (0..n)
            .filter(|i| !is_late(*i))
            .map(|i| (times[i], 0, report(&s.reports[i])))
            .collect();
        let mut cancel_at = None;
        if let (true, Some(c)) = (with_cancel, &s.cancel) {
            let last = times.last().copied().unwrap_or_else(|| issued(c));
            let at = plus_ms(last.max(issued(c)), i64::from(cancel_gap_ms));
            clean.push((at, 0, report(c)));
            cancel_at = Some(at);
        }
        let clean_inputs: Vec<(JstTime, Input)> =
            clean.iter().map(|(t, _, i)| (*t, i.clone())).collect();

        // The noisy run: the late reports, and copies of what was delivered.
        let mut noise: Vec<(JstTime, Input)> = late_items
            .iter()
            .map(|(i, t)| (*t, report(&s.reports[*i])))
            .collect();
        let delivered: Vec<(JstTime, Report, Option<Report>)> = (0..n)
            .map(|i| {
                let t = late_items.iter().find(|(k, _)| *k == i).map_or(times[i], |(_, t)| *t);
                (t, s.reports[i].clone(), s.twins.get(&i).cloned())
            })
            .chain(cancel_at.zip(s.cancel.clone()).map(|(t, c)| (t, c, None)))
            .collect();
        for c in &extra {
            let (t, r, twin) = c.of.get(&delivered);
            let copy = match (c.twin, twin) {
                (true, Some(twin)) => twin.clone(),
                _ => r.clone(),
            };
            noise.push((plus_ms(*t, i64::from(c.delay_ms)), report(&copy)));
        }
        let noisy_inputs = merge(clean, noise);

        let (clean_actions, clean_tl) = replay(&settings, &clean_inputs, 2);
        let (noisy_actions, noisy_tl) = replay(&settings, &noisy_inputs, 2);
        prop_assert!(
            clean_actions == noisy_actions,
            "{}: copies changed the actions\n-- clean:\n{}\n-- with copies:\n{}",
            s.name,
            show(&clean_actions),
            show(&noisy_actions)
        );
        check_consistency(&noisy_actions, noisy_tl.engine())?;
        prop_assert_eq!(clean_tl.engine().closed_relays(), noisy_tl.engine().closed_relays());
    }

    /// A cancel releases what its event started and leaves nothing running.
    #[test]
    fn a_cancel_leaves_nothing_running_that_its_event_started(
        seq in any::<Index>(),
        site in any::<Index>(),
        spec in settings_spec(),
        prefix in any::<Index>(),
        delays in prop::collection::vec(0u32..1500, 40),
        extra in copies(),
        cancel_gap_ms in 0u32..120_000,
    ) {
        let with_cancel: Vec<&Sequence> = SEQUENCES.iter().filter(|s| s.cancel.is_some()).collect();
        let s = *seq.get(&with_cancel);
        let Some(cancel) = &s.cancel else { return Ok(()) };
        let area = site.get(s.sites);
        let settings = settings_of(&spec, area)?;
        let k = 1 + prefix.index(s.reports.len());
        let reports = &s.reports[..k];
        let times = arrival_times(reports, &delays);
        let last = times.last().copied().unwrap_or_else(|| issued(cancel));
        let t_c = plus_ms(last.max(issued(cancel)), i64::from(cancel_gap_ms));

        let base: Vec<(JstTime, u32, Input)> = reports
            .iter()
            .zip(&times)
            .map(|(r, t)| (*t, 0, report(r)))
            .chain(std::iter::once((t_c, 0, report(cancel))))
            .collect();
        let all: Vec<(JstTime, &Report)> = reports
            .iter()
            .zip(&times)
            .map(|(r, t)| (*t, r))
            .chain(std::iter::once((t_c, cancel)))
            .collect();
        let noise: Vec<(JstTime, Input)> = extra
            .iter()
            .map(|c| {
                let (t, r) = c.of.get(&all);
                (plus_ms(*t, i64::from(c.delay_ms)), report(r))
            })
            .collect();
        let inputs = merge(base, noise);

        // Run, looking at the closed contacts once every hold time has passed after the
        // cancel.
        let max_hold_ms = settings.outputs.relays.iter().map(|r| 1000 * i64::from(r.hold_s)).max();
        let check_at = plus_ms(t_c, max_hold_ms.unwrap_or(0) + 1);
        let mut tl = Timeline::new(Engine::new(settings.clone()));
        let mut steps: Vec<(JstTime, Step)> = Vec::new();
        let mut closed_at_check: Option<Vec<u8>> = None;
        for (at, input) in &inputs {
            if closed_at_check.is_none() && *at > check_at {
                tick_until(&mut tl, check_at, &mut steps);
                closed_at_check = Some(tl.engine().closed_relays());
            }
            tick_until(&mut tl, *at, &mut steps);
            for step in tl.feed(input.clone(), *at) {
                steps.push((*at, step));
            }
        }
        if closed_at_check.is_none() {
            tick_until(&mut tl, check_at, &mut steps);
            closed_at_check = Some(tl.engine().closed_relays());
        }
        let last = inputs.last().map_or(t_c, |(t, _)| *t);
        tick_until(&mut tl, plus_ms(last.max(check_at), 3 * 3_600_000), &mut steps);
        let actions: Vec<Action> = steps.iter().flat_map(|(_, s)| s.actions.clone()).collect();
        check_consistency(&actions, tl.engine())?;
        // Contacts whose rule releases on cancel are open once their hold time is over
        // (whether the event was still running or had expired: its cancel releases what
        // it holds).
        for id in closed_at_check.unwrap_or_default() {
            let rule = settings.outputs.relays.iter().find(|r| r.id == id).unwrap();
            prop_assert!(
                !(rule.mode == ContactMode::Latched && rule.release.on_cancel),
                "relay {id} (released on cancel) still closed at {check_at}: {}:\n{}",
                s.name,
                show(&actions)
            );
        }

        // The event's alarm as it stands when the cancel arrives: it may never have started,
        // or have expired (and maybe started again) while reports were still coming.
        let id = cancel.event_id.as_str();
        let mut alive_since: Option<JstTime> = None;
        for (t, step) in steps.iter().filter(|(t, _)| *t <= t_c) {
            for d in step.decisions.iter().filter(|d| d.event_id.as_deref() == Some(id)) {
                match d.outcome {
                    "started" => alive_since = Some(*t),
                    "expired" => alive_since = None,
                    _ => {}
                }
            }
        }
        // A cancel landing on the very millisecond the event expires: the expiry's own
        // actions at that instant came first and are not the cancel's.
        let after: Vec<&Action> = actions
            .iter()
            .filter(|a| a.at >= t_c && !(a.at == t_c && a.cause == Cause::Expiry))
            .collect();
        let context = || format!("{} at {area}, cancel at {t_c}:\n{}", s.name, show(&actions));
        let Some(since) = alive_since else {
            // Nothing running: the cancel only opens contacts the expired event still
            // holds (a hold time or a pulse may still end).
            prop_assert!(
                after.iter().all(|a| a.kind == ActionKind::Off),
                "a cancel of an event with no alarm acted: {}",
                context()
            );
            prop_assert!(tl.engine().running_alarms().is_empty(), "still running: {}", context());
            return Ok(());
        };
        let before: Vec<&Action> = actions
            .iter()
            .filter(|a| a.at >= since && a.at < t_c && a.event_id.as_deref() == Some(id))
            .collect();
        // The voice: no countdown or announcement after the cancel but the cancellation,
        // which is said only if the event had spoken.
        let spoke = before.iter().any(|a| matches!(a.kind, ActionKind::Announce { .. }));
        let cancellations = after
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Announce { .. }) && a.cause == Cause::Cancel)
            .count();
        prop_assert_eq!(cancellations, usize::from(spoke), "cancellation announcements: {}", context());
        prop_assert!(
            !after.iter().any(|a| matches!(a.kind, ActionKind::Countdown { .. })
                || (matches!(a.kind, ActionKind::Announce { .. }) && a.cause != Cause::Cancel)),
            "the voice went on after the cancel: {}",
            context()
        );
        let published = before.iter().any(|a| a.output == OutputId::Mqtt);
        let cancel_published = after
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Publish { state: AlertState::Cancelled, .. }));
        prop_assert_eq!(cancel_published, published, "cancellation publishing: {}", context());
        prop_assert!(
            !after.iter().any(|a| matches!(a.kind, ActionKind::On { .. })),
            "a contact closed after the cancel: {}",
            context()
        );

        // Contacts: each one this event closed opens when its rule says.
        for rule in &settings.outputs.relays {
            let out = OutputId::Relay(rule.id);
            let Some(on) = actions
                .iter()
                .rev()
                .find(|a| a.output == out && a.at < t_c) else {
                continue;
            };
            if !matches!(on.kind, ActionKind::On { .. }) {
                continue; // already open at the cancel
            }
            let off = actions
                .iter()
                .find(|a| a.output == out && a.at >= t_c && a.kind == ActionKind::Off);
            let hold = plus_ms(on.at, 1000 * i64::from(rule.hold_s));
            let due = match rule.mode {
                ContactMode::Pulse { .. } => Some(t_c),
                ContactMode::Latched if rule.release.on_cancel => Some(t_c.max(hold)),
                ContactMode::Latched if rule.release.on_expiry => Some(
                    plus_ms(t_c, 1000 * i64::from(settings.alert.event_expiry_s)).max(hold),
                ),
                ContactMode::Latched => None,
            };
            match due {
                Some(due) => {
                    let at = off.map(|a| a.at);
                    prop_assert!(
                        at.is_some_and(|t| t <= due),
                        "relay {} should open by {due}, opened {at:?}: {}",
                        rule.id,
                        context()
                    );
                }
                None => prop_assert!(off.is_none(), "a reset-only contact opened: {}", context()),
            }
        }
        prop_assert!(tl.engine().running_alarms().is_empty(), "still running: {}", context());
        prop_assert!(tl.engine().led() != LedPattern::Alert, "LED still alert: {}", context());
    }

    /// Training and test inputs never act as real, act only where their label is enabled,
    /// and only on outputs that include them.
    #[test]
    fn exercises_never_act_as_real(
        spec in settings_spec(),
        site in any::<Index>(),
        picks in prop::collection::vec((any::<Index>(), 0u32..20_000), 1..12),
        commands in prop::collection::vec((0u8..3, 0u32..20_000), 0..3),
    ) {
        let (_, sites, _) = picks[0].0.get(&EXERCISES);
        let area = site.get(sites);
        let settings = settings_of(&spec, area)?;
        let mut items: Vec<(JstTime, u32, Input)> = Vec::new();
        let mut t = issued(&picks[0].0.get(&EXERCISES).2);
        let mut labels = BTreeSet::new();
        for (pick, gap) in &picks {
            let (label, _, r) = pick.get(&EXERCISES);
            labels.insert(*label);
            t = t.max(issued(r));
            t = plus_ms(t, i64::from(*gap % 3000));
            items.push((t, 0, report(r)));
        }
        let start = items[0].0;
        let extra: Vec<(JstTime, Input)> = commands
            .iter()
            .map(|(c, at)| {
                let input = match c {
                    0 => Input::Command(Command::Silence),
                    1 => Input::Command(Command::Reset),
                    _ => Input::Tick,
                };
                (plus_ms(start, i64::from(*at)), input)
            })
            .collect();
        let inputs = merge(items, extra);
        let (actions, tl) = replay(&settings, &inputs, 2);
        check_consistency(&actions, tl.engine())?;

        let enabled = |l: Label| match l {
            Label::Training => settings.alert.training,
            Label::Test => settings.alert.test,
            _ => false,
        };
        for a in &actions {
            prop_assert!(a.training && a.label != Label::Real, "a real action from an exercise:\n{}", show(&actions));
            prop_assert!(enabled(a.label), "an action for a disabled label:\n{}", show(&actions));
        }
        // Contacts close only where the rule includes the exercise.
        for a in &actions {
            if let (OutputId::Relay(id), ActionKind::On { .. }) = (&a.output, &a.kind) {
                let rule = settings.outputs.relays.iter().find(|r| r.id == *id).unwrap();
                let inc = rule.trigger.include;
                let included = match a.label {
                    Label::Training => inc.training,
                    Label::Test => inc.test,
                    _ => false,
                };
                prop_assert!(rule.enabled && included, "relay {id} closed for {:?} without including it", a.label);
            }
            if a.output == OutputId::Audio {
                let inc = settings.outputs.audio.trigger.include;
                let included = match a.label {
                    Label::Training => inc.training,
                    Label::Test => inc.test,
                    _ => false,
                };
                prop_assert!(included, "the voice spoke for {:?} without including it", a.label);
            }
            if let ActionKind::Led { pattern } = a.kind {
                prop_assert!(pattern != LedPattern::Alert, "an exercise turned the LED to alert");
            }
        }
        if !labels.iter().any(|l| enabled(*l)) {
            prop_assert!(actions.is_empty(), "disabled exercises acted:\n{}", show(&actions));
        }
    }
}

/// One operation of the random interleaving.
#[derive(Clone, Debug)]
enum Op {
    Report(Index),
    Tick,
    Silence,
    Reset,
    Drill(Index, u32, bool, Option<u8>),
    Fault(bool, bool),
    /// A self-test of relay 1–4 (0–3), the audio (4) or the LED (5).
    SelfTest(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<Index>().prop_map(Op::Report),
        3 => Just(Op::Tick),
        1 => Just(Op::Silence),
        1 => Just(Op::Reset),
        1 => (any::<Index>(), 0u32..120, any::<bool>(), prop::option::of(0u8..=4))
            .prop_map(|(c, s, w, lp)| Op::Drill(c, s, w, lp)),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(f, a)| Op::Fault(f, a)),
        1 => (0u8..6).prop_map(Op::SelfTest),
    ]
}

const DRILL_CLASSES: &[Intensity] = &[
    Intensity::Zero,
    Intensity::Three,
    Intensity::Four,
    Intensity::FiveLower,
    Intensity::SixUpper,
    Intensity::Seven,
];

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary interleavings at arbitrary monotone times: no panic, deadlines always
    /// after `now`, contacts alternate on/off, the engine's view agrees with its actions.
    /// The engine is stepped directly (ticks at random times, deadlines skipped or hit)
    /// and through a timeline.
    #[test]
    fn arbitrary_interleavings_never_panic_and_deadlines_move_forward(
        spec in settings_spec(),
        area in select(&["621", "220", "520", "360", "804", "212", "540", "442", "161"][..]),
        ops in prop::collection::vec((op(), prop_oneof![
            4 => 0u32..2_000, 2 => 0u32..20_000, 1 => 0u32..600_000, 1 => Just(0u32)
        ]), 1..80),
        start in any::<Index>(),
    ) {
        let settings = settings_of(&spec, area)?;
        let pool = &*POOL;
        let mut now = issued(start.get(pool));
        let mut engine = Engine::new(settings.clone());
        let mut timeline = Timeline::new(Engine::new(settings));
        let mut actions = Vec::new();
        let mut timeline_actions = Vec::new();
        for (op, gap) in &ops {
            now = plus_ms(now, i64::from(*gap));
            let input = match op {
                Op::Report(i) => {
                    let r = i.get(pool);
                    // Half the time the report arrives near its own issue time.
                    if gap % 2 == 0 && issued(r) > now {
                        now = issued(r);
                    }
                    report(r)
                }
                Op::Tick => Input::Tick,
                Op::Silence => Input::Command(Command::Silence),
                Op::Reset => Input::Command(Command::Reset),
                Op::Drill(c, seconds, warning, lp) => Input::Command(Command::Drill(DrillSpec {
                    class: *c.get(DRILL_CLASSES),
                    seconds: *seconds,
                    long_period_class: *lp,
                    warning: *warning,
                })),
                Op::Fault(link, active) => Input::Fault {
                    fault: if *link { Fault::Link } else { Fault::Clock },
                    active: *active,
                },
                Op::SelfTest(n) => Input::Command(Command::SelfTest {
                    output: match n {
                        0..=3 => OutputId::Relay(n + 1),
                        4 => OutputId::Audio,
                        _ => OutputId::Led,
                    },
                }),
            };
            let step = engine.step(input.clone(), now);
            if let Some(d) = step.next_deadline {
                prop_assert!(d > now, "deadline {d} not after now {now} ({op:?})");
            }
            for a in &step.actions {
                prop_assert_eq!(a.at, now, "an action not at the step's time");
            }
            actions.extend(step.actions);
            for s in timeline.feed(input, now) {
                timeline_actions.extend(s.actions);
            }
        }
        check_consistency(&actions, &engine)?;
        for s in timeline.drain(plus_ms(now, 6 * 3_600_000)) {
            timeline_actions.extend(s.actions);
        }
        prop_assert!(timeline.deadline().is_none(), "still busy 6 h after the last input");
        check_consistency(&timeline_actions, timeline.engine())?;
        prop_assert!(timeline.engine().running_alarms().is_empty(), "an alarm outlived its expiry");
        // Only contacts nothing but an operator reset opens may stay closed.
        for id in timeline.engine().closed_relays() {
            let rule = timeline.engine().settings().outputs.relays.iter().find(|r| r.id == id).unwrap();
            prop_assert!(
                rule.mode == ContactMode::Latched && !rule.release.on_expiry,
                "relay {id} ({:?}) still closed 6 h after the last input",
                rule.release
            );
        }
    }
}

#[test]
fn the_corpus_sequences_load_and_are_in_serial_order() {
    for s in SEQUENCES.iter() {
        let serials: Vec<u32> = s.reports.iter().map(|r| r.serial).collect();
        assert!(
            serials.windows(2).all(|w| w[0] < w[1]),
            "{}: serials {serials:?}",
            s.name
        );
        let id = s.reports[0].event_id.as_str();
        assert!(
            s.reports.iter().all(|r| r.event_id.as_str() == id),
            "{}",
            s.name
        );
        if let Some(c) = &s.cancel {
            assert_eq!(
                c.event_id.as_str(),
                id,
                "{}: cancel of another event",
                s.name
            );
            assert_eq!(c.kind, eew_core::Kind::Cancel, "{}", s.name);
        }
        for (i, twin) in &s.twins {
            let r = &s.reports[*i];
            assert_eq!(
                (twin.event_id.as_str(), twin.serial, twin.kind),
                (r.event_id.as_str(), r.serial, r.kind),
                "{}: twin of report {i}",
                s.name
            );
        }
        for area in s.sites {
            assert!(
                CENTROIDS.contains_key(*area),
                "{}: no centroid for {area}",
                s.name
            );
        }
    }
    assert!(EXERCISES.len() >= 10);
}
