//! The what-if preview (`eew_core::whatif`): the reference earthquakes are valid reports
//! for every site in Japan, and the preview says exactly what the engine does with them —
//! a changed threshold, exercise setting or flag policy changes it as the rules say.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use eew_core::engine::{ActionKind, Engine, Input, Label, OutputId, Timeline};
use eew_core::predict::{self, Amplification, Arrival, ClassBasis, PredictionMode, Site};
use eew_core::settings::{FlagPolicy, Settings};
use eew_core::whatif::{self, DRAIN_LIMIT_S, ISLAND_EPICENTRES, Preview, Scenario};
use eew_core::{Intensity, JstTime, LandOrSea, Status, codes};

/// A building in 大分県中部 (the site of the demo and of the daemon's system tests).
const OITA: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n";

const IDS: [&str; 5] = [
    "nearby_m7_inland",
    "distant_m8_offshore",
    "deep_m6",
    "plum_only",
    "training_nearby_m7",
];

fn now() -> JstTime {
    JstTime::from_parts(2026, 5, 1, 12, 0, 0).unwrap()
}

fn oita() -> Settings {
    Settings::from_toml_str(OITA).unwrap()
}

fn run(settings: &Settings) -> Vec<Preview> {
    let scenarios = whatif::scenarios(settings, now()).unwrap();
    whatif::preview(settings, &scenarios)
}

fn get<'a>(previews: &'a [Preview], id: &str) -> &'a Preview {
    previews.iter().find(|p| p.scenario == id).unwrap()
}

/// The outputs that operate, by name (`relay:1`, `audio`, …).
fn firing(p: &Preview) -> Vec<String> {
    p.outputs
        .iter()
        .filter(|o| o.fires)
        .map(|o| o.output.to_string())
        .collect()
}

fn fires(p: &Preview, output: OutputId) -> bool {
    p.outputs.iter().any(|o| o.output == output && o.fires)
}

#[test]
fn every_site_in_japan_gets_five_valid_reference_earthquakes() {
    for c in predict::area_centroids() {
        let site = Site::new(c.lat, c.lon, Amplification::Arv400(1.0), Some(c.code)).unwrap();
        let settings = Settings::for_site(site.clone());
        let scenarios = whatif::scenarios(&settings, now())
            .unwrap_or_else(|e| panic!("a site at the centroid of {} ({}): {e}", c.code, c.name));
        let ids: Vec<&str> = scenarios.iter().map(|s| s.id).collect();
        assert_eq!(ids, IDS, "{}", c.code);
        for s in &scenarios {
            let what = format!("{} at {} {}", s.id, c.code, c.name);
            // The report is exactly what the written telegram parses to.
            assert_eq!(
                eew_core::parse(s.telegram.as_bytes()).as_ref(),
                Ok(&s.report),
                "{what}"
            );
            assert!(
                s.report.actionable,
                "{what}: {:?}",
                s.report.not_actionable_reason
            );
            assert_eq!(s.report.issued_at, Some(s.received_at), "{what}");
            assert!(s.received_at <= now(), "{what}");
            let h = s.report.hypocenter.as_ref().unwrap();
            let code = h.code.as_deref().unwrap();
            assert_eq!(codes::EPICENTER.name(code), h.name.as_deref(), "{what}");
        }
        let by = |id| scenarios.iter().find(|s| s.id == id).unwrap();
        let (nearby, distant, deep, plum, training) = (
            by("nearby_m7_inland"),
            by("distant_m8_offshore"),
            by("deep_m6"),
            by("plum_only"),
            by("training_nearby_m7"),
        );
        let km = |s: &Scenario| s.epicentre.distance_km.unwrap();
        assert!(
            (15.0..=35.0).contains(&km(nearby)),
            "{} nearby {}",
            c.code,
            km(nearby)
        );
        assert!(km(distant) >= 200.0, "{} distant {}", c.code, km(distant));
        assert_eq!(
            distant.report.hypocenter.as_ref().unwrap().land_or_sea,
            Some(LandOrSea::Sea)
        );
        assert!(nearby.report.hypocenter.as_ref().unwrap().depth_km <= Some(20));
        assert!(!nearby.report.flags.deep && !distant.report.flags.deep);
        assert_eq!(nearby.report.magnitude, Some(7.0));
        assert_eq!(distant.report.magnitude, Some(8.0));
        // Deep: beyond 150 km, no intensity predicted (JMA gives none either).
        assert!(
            deep.report.flags.deep && deep.report.areas.is_empty(),
            "{}",
            c.code
        );
        assert!(deep.report.hypocenter.as_ref().unwrap().depth_km > Some(150));
        // PLUM only: an assumed hypocentre, the site's area predicted by PLUM.
        let h = plum.report.hypocenter.as_ref().unwrap();
        assert!(plum.report.flags.plum && h.assumed, "{}", c.code);
        assert!(
            plum.report
                .area(&site.area_code)
                .is_some_and(|a| a.plum && a.arrival.is_none())
        );
        // Training: the nearby report as a training telegram.
        assert_eq!(training.report.status, Status::Training);
        assert_eq!(training.report.areas, nearby.report.areas);
        assert_eq!(nearby.report.status, Status::Normal);

        // The area forecasts are the site-mode chain: both modes give the site one class,
        // and a shallow M7 at 25 km is felt strongly anywhere (JMA's area range for the
        // site has no floor above it).
        let site_mode = predict::PredictionSettings {
            mode: PredictionMode::Site,
            ..settings.prediction
        };
        for s in [nearby, distant] {
            let area = predict::predict(&s.report, &site, &settings.prediction);
            let point = predict::predict(&s.report, &site, &site_mode);
            assert_eq!(
                area.intensity_class, point.intensity_class,
                "{} at {}",
                s.id, c.code
            );
        }
        let class = predict::predict(&nearby.report, &site, &settings.prediction).intensity_class;
        assert!(
            class >= Some(Intensity::FiveLower),
            "{} nearby: {class:?}",
            c.code
        );
    }
}

#[test]
fn the_island_table_names_real_codes_and_covers_every_island_area() {
    for (area, epicentre) in ISLAND_EPICENTRES {
        assert!(codes::FORECAST_AREA.name(area).is_some(), "{area}");
        assert!(
            codes::EPICENTER.name(area).is_none(),
            "{area} has a name of its own"
        );
        assert!(codes::EPICENTER.name(epicentre).is_some(), "{epicentre}");
    }
    for (area, name) in codes::FORECAST_AREA.entries() {
        assert!(
            codes::EPICENTER.name(area).is_some()
                || ISLAND_EPICENTRES.iter().any(|(a, _)| a == area),
            "{area} {name} has no epicentre name"
        );
    }
}

#[test]
fn a_contact_fires_exactly_when_the_predicted_class_reaches_its_threshold() {
    // Every threshold for the elevators contact, on every reference earthquake: it fires
    // when (and only when) the engine acts and the site's class reaches the threshold.
    let base = run(&oita());
    let mut seen = (false, false);
    for threshold in Intensity::ALL {
        let mut settings = oita();
        settings.outputs.relays[0].trigger.min_class = Some(threshold);
        for p in run(&settings) {
            let reaches = p.acted && p.prediction.class.is_some_and(|c| c >= threshold);
            assert_eq!(
                fires(&p, OutputId::Relay(1)),
                reaches,
                "{} with min_class {threshold}: class {:?}",
                p.scenario,
                p.prediction.class
            );
            if reaches {
                seen.0 = true
            } else {
                seen.1 = true
            }
            // Nothing else changes with this one threshold.
            let before = get(&base, p.scenario);
            let others = |p: &Preview| {
                firing(p)
                    .into_iter()
                    .filter(|o| o != "relay:1")
                    .collect::<Vec<_>>()
            };
            if p.acted == before.acted {
                assert_eq!(
                    others(&p),
                    others(before),
                    "{} with {threshold}",
                    p.scenario
                );
            }
        }
    }
    assert!(seen.0 && seen.1, "some thresholds fire and some do not");
}

#[test]
fn raising_a_threshold_above_the_nearby_m7_removes_that_contact() {
    let base = run(&oita());
    let nearby = get(&base, "nearby_m7_inland");
    assert!(nearby.acted);
    assert!(fires(nearby, OutputId::Relay(1)), "{:?}", firing(nearby));
    let class = nearby.prediction.class.unwrap();
    let above = Intensity::ALL.into_iter().find(|c| *c > class).unwrap();
    let mut settings = oita();
    settings.outputs.relays[0].trigger.min_class = Some(above);
    let changed = run(&settings);
    let nearby_after = get(&changed, "nearby_m7_inland");
    assert!(!fires(nearby_after, OutputId::Relay(1)));
    let relay1 = nearby_after
        .outputs
        .iter()
        .find(|o| o.output == OutputId::Relay(1))
        .unwrap();
    assert!(relay1.actions.is_empty(), "{:?}", relay1.actions);
    // The rest of the building still acts.
    assert!(fires(nearby_after, OutputId::Relay(3)) && fires(nearby_after, OutputId::Audio));
}

#[test]
fn training_fires_nothing_unless_training_reception_is_on() {
    let base = run(&oita());
    let training = get(&base, "training_nearby_m7");
    assert_eq!(training.label, Label::Training);
    assert!(!training.acted);
    assert_eq!(training.reason, Some("training_disabled"));
    assert!(firing(training).is_empty(), "{:?}", firing(training));
    // The same report as a real one does act.
    assert!(get(&base, "nearby_m7_inland").acted);

    // Training reception on: outputs that include training act, labelled so.
    let mut settings = oita();
    settings.alert.training = true;
    settings.outputs.relays[0].trigger.include.training = true;
    let on = run(&settings);
    let training = get(&on, "training_nearby_m7");
    assert!(training.acted, "{:?}", training.reason);
    assert!(fires(training, OutputId::Relay(1)));
    // The default MQTT rule includes every exercise; the gas contact includes none.
    assert!(fires(training, OutputId::Mqtt));
    assert!(!fires(training, OutputId::Relay(3)));
    for o in training.outputs.iter().filter(|o| o.fires) {
        for a in &o.actions {
            assert_eq!(a.action.label, Label::Training, "{}", o.output);
            assert!(a.action.training);
        }
    }
}

#[test]
fn the_deep_m6_follows_the_deep_policy() {
    let base = run(&oita());
    let deep = get(&base, "deep_m6");
    // Acted on (deep = act by default) but no class: only outputs without a class
    // condition operate — the default MQTT rule.
    assert!(deep.acted);
    assert_eq!(deep.prediction.class, None);
    assert_eq!(deep.prediction.class_basis, ClassBasis::NotListed);
    assert!(deep.prediction.notes.contains(&"deep_event"));
    assert_eq!(firing(deep), ["mqtt"]);

    let mut settings = oita();
    settings.alert.deep = FlagPolicy::Ignore;
    let ignored = run(&settings);
    let deep = get(&ignored, "deep_m6");
    assert!(!deep.acted);
    assert_eq!(deep.reason, Some("deep_event_ignored"));
    assert!(firing(deep).is_empty());
    // The policy touches the deep event only.
    assert_eq!(
        firing(get(&ignored, "nearby_m7_inland")),
        firing(get(&base, "nearby_m7_inland"))
    );
}

#[test]
fn plum_only_is_imminent_without_countdown_and_follows_the_plum_policy() {
    let base = run(&oita());
    let plum = get(&base, "plum_only");
    assert!(plum.acted);
    assert_eq!(plum.prediction.class, Some(Intensity::FiveLower));
    assert_eq!(plum.prediction.class_basis, ClassBasis::PlumArea);
    assert_eq!(plum.prediction.arrival, Arrival::Imminent);
    assert!(plum.prediction.warning);
    let audio = plum
        .outputs
        .iter()
        .find(|o| o.output == OutputId::Audio)
        .unwrap();
    assert!(audio.fires);
    assert!(
        audio
            .actions
            .iter()
            .all(|a| !matches!(a.action.kind, ActionKind::Countdown { .. })),
        "no countdown without an arrival time"
    );

    let mut settings = oita();
    settings.alert.plum = FlagPolicy::Ignore;
    let ignored = run(&settings);
    let plum = get(&ignored, "plum_only");
    assert_eq!((plum.acted, plum.reason), (false, Some("plum_ignored")));
    assert!(firing(plum).is_empty());
}

#[test]
fn the_pa_prestart_delays_the_announcement() {
    let base = run(&oita());
    let nearby = get(&base, "nearby_m7_inland");
    let prestart = oita().outputs.relays[1].prestart_ms;
    assert!(prestart > 0, "the default contact 2 is the PA pre-start");
    let on = |p: &Preview, out| {
        p.outputs
            .iter()
            .find(|o| o.output == out)
            .unwrap()
            .actions
            .first()
            .unwrap()
            .offset_ms
    };
    assert_eq!(on(nearby, OutputId::Relay(2)), 0);
    assert_eq!(on(nearby, OutputId::Audio), i64::from(prestart));

    let mut settings = oita();
    settings.outputs.relays[1].prestart_ms = 0;
    let at_once = run(&settings);
    assert_eq!(on(get(&at_once, "nearby_m7_inland"), OutputId::Audio), 0);
}

#[test]
fn a_contact_released_only_by_reset_is_held_at_the_end() {
    let base = run(&oita());
    let nearby = get(&base, "nearby_m7_inland");
    let relay = |id| {
        nearby
            .outputs
            .iter()
            .find(|o| o.output == OutputId::Relay(id))
            .unwrap()
    };
    // Contact 3 (gas / doors) opens on reset only; contact 1 is released on expiry.
    assert!(relay(3).fires && relay(3).held_at_end);
    assert!(relay(1).fires && !relay(1).held_at_end);
    let off = relay(1).actions.last().unwrap();
    assert_eq!(off.action.kind, ActionKind::Off);
    assert_eq!(off.offset_ms, 1000 * i64::from(oita().alert.event_expiry_s));
}

#[test]
fn the_preview_is_what_the_engine_does_with_each_written_telegram() {
    // As `eewgate replay` runs a telegram: parsed from the bytes, fed at its issue time,
    // drained. The preview's actions (grouped by output) are exactly those.
    for settings in [oita(), {
        let mut s = oita();
        s.alert.training = true;
        s.outputs.relays[0].trigger.min_class = Some(Intensity::FiveLower);
        s
    }] {
        let scenarios = whatif::scenarios(&settings, now()).unwrap();
        for (s, p) in scenarios.iter().zip(whatif::preview(&settings, &scenarios)) {
            let report = eew_core::parse(s.telegram.as_bytes()).unwrap();
            let at = report.issued_at.unwrap();
            let mut timeline = Timeline::new(Engine::new(settings.clone()));
            let mut steps = timeline.feed(Input::Report(Box::new(report)), at);
            steps.extend(timeline.drain(JstTime(at.0 + chrono::TimeDelta::seconds(DRAIN_LIMIT_S))));
            let mut replayed: Vec<String> = steps
                .iter()
                .flat_map(|st| st.actions.iter())
                .map(|a| serde_json::to_string(a).unwrap())
                .collect();
            let mut previewed: Vec<String> = p
                .outputs
                .iter()
                .flat_map(|o| o.actions.iter())
                .map(|a| serde_json::to_string(&a.action).unwrap())
                .collect();
            replayed.sort();
            previewed.sort();
            assert_eq!(previewed, replayed, "{}", s.id);
            let decisions: Vec<&str> = steps
                .iter()
                .flat_map(|st| st.decisions.iter())
                .map(|d| d.outcome)
                .collect();
            let shown: Vec<&str> = p.decisions.iter().map(|d| d.decision.outcome).collect();
            assert_eq!(shown, decisions, "{}", s.id);
        }
    }
}

#[test]
fn the_receipt_is_the_given_time_to_the_second() {
    let t = JstTime(now().0 + chrono::TimeDelta::milliseconds(730));
    let scenarios = whatif::scenarios(&oita(), t).unwrap();
    for s in &scenarios {
        assert_eq!(s.received_at, now(), "{}", s.id);
    }
    let later = whatif::scenarios(&oita(), JstTime(now().0 + chrono::TimeDelta::hours(5))).unwrap();
    assert_eq!(
        later[0].received_at.0 - scenarios[0].received_at.0,
        chrono::TimeDelta::hours(5)
    );
}
