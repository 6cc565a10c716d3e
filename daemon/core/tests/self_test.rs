//! Self-tests through the engine (`Command::SelfTest`): a contact closes for a short
//! pulse and opens by itself, the voice says the test phrase, the LED shows its lamp
//! test — every action labelled `test` with cause `self_test` and no event. Nothing is
//! tested while an alarm runs, and an alarm that starts during a test takes the contact
//! over: it stays closed for the alarm instead of opening at the test's pulse end.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test crate: fixtures are read from disk and a broken fixture should stop the run"
)]

use std::path::Path;

use chrono::TimeDelta;
use eew_core::engine::{
    ActionKind, Cause, Command, DrillSpec, Engine, Input, Label, LedPattern, OutputId,
    SELF_TEST_PULSE_MS, Step, voice,
};
use eew_core::settings::Settings;
use eew_core::{Intensity, JstTime, Report};

fn osaka_warning() -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/telegrams/20180618_osaka_ncn011_warning.txt");
    eew_core::parse(&std::fs::read(path).unwrap()).unwrap()
}

/// Contact 1 latched with a 15 s hold, contact 2 a 2 s pulse, contact 3 disabled.
fn settings() -> Settings {
    Settings::from_toml_str(
        "[site]\nlat = 34.69\nlon = 135.50\narv400 = 1.5\narea_code = \"600\"\n\
         [alert]\ndrill = true\n\
         [[outputs.relay]]\nid = 1\nmin_class = \"4\"\nhold_s = 15\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\nmode = \"pulse\"\npulse_ms = 2000\n\
         [[outputs.relay]]\nid = 3\nmin_class = \"4\"\nenabled = false\n",
    )
    .unwrap()
}

fn at(base: JstTime, ms: i64) -> JstTime {
    JstTime(base.0 + TimeDelta::milliseconds(ms))
}

fn self_test(engine: &mut Engine, output: OutputId, now: JstTime) -> Step {
    engine.step(Input::Command(Command::SelfTest { output }), now)
}

fn outcome(step: &Step) -> (&'static str, Option<&'static str>) {
    assert_eq!(step.decisions.len(), 1, "{:?}", step.decisions);
    (step.decisions[0].outcome, step.decisions[0].detail)
}

#[test]
fn a_latched_contact_pulses_for_the_self_test_and_opens_by_itself() {
    let now = osaka_warning().issued_at.unwrap();
    let mut engine = Engine::new(settings());
    let step = self_test(&mut engine, OutputId::Relay(1), now);
    assert_eq!(outcome(&step), ("self_test_started", None));
    assert_eq!(step.actions.len(), 1, "{:?}", step.actions);
    let on = &step.actions[0];
    assert_eq!(on.output, OutputId::Relay(1));
    assert_eq!(
        on.kind,
        ActionKind::On {
            pulse_ms: Some(SELF_TEST_PULSE_MS)
        }
    );
    assert_eq!(
        (on.cause, on.label, on.training),
        (Cause::SelfTest, Label::Test, true)
    );
    assert_eq!(on.event_id, None);
    assert_eq!(engine.closed_relays(), [1]);
    assert!(engine.current_alarm().is_none(), "a test is not an alarm");
    let end = at(now, i64::from(SELF_TEST_PULSE_MS));
    assert_eq!(step.next_deadline, Some(end));
    // Not before its end (the 15 s hold is an alarm's, not the test's) …
    assert!(engine.step(Input::Tick, at(end, -1)).actions.is_empty());
    // … and exactly then.
    let step = engine.step(Input::Tick, end);
    assert_eq!(step.actions.len(), 1, "{:?}", step.actions);
    assert_eq!(step.actions[0].kind, ActionKind::Off);
    assert_eq!(step.actions[0].cause, Cause::PulseEnd);
    assert!(engine.closed_relays().is_empty());
    assert_eq!(step.next_deadline, None);
}

#[test]
fn a_pulse_contact_pulses_for_its_own_length() {
    let now = osaka_warning().issued_at.unwrap();
    let mut engine = Engine::new(settings());
    let step = self_test(&mut engine, OutputId::Relay(2), now);
    assert_eq!(
        step.actions[0].kind,
        ActionKind::On {
            pulse_ms: Some(2000)
        }
    );
    assert_eq!(step.next_deadline, Some(at(now, 2000)));
}

#[test]
fn refusals_name_their_reason_and_change_nothing() {
    let report = osaka_warning();
    let now = report.issued_at.unwrap();
    let mut engine = Engine::new(settings());
    for (output, why) in [
        (OutputId::Relay(3), "output_disabled"),
        (OutputId::Relay(9), "unknown_output"),
        (OutputId::Mqtt, "not_an_engine_test"),
    ] {
        let step = self_test(&mut engine, output, now);
        assert_eq!(outcome(&step), ("self_test_refused", Some(why)));
        assert!(step.actions.is_empty());
    }
    // A contact already under test is busy.
    self_test(&mut engine, OutputId::Relay(1), now);
    let step = self_test(&mut engine, OutputId::Relay(1), at(now, 10));
    assert_eq!(outcome(&step), ("self_test_refused", Some("busy")));
    assert!(step.actions.is_empty());

    // While an alarm runs, nothing is tested: not its contacts, not the others.
    let mut engine = Engine::new(settings());
    engine.step(Input::Report(Box::new(report)), now);
    assert!(engine.current_alarm().is_some());
    for output in [OutputId::Relay(1), OutputId::Audio, OutputId::Led] {
        let step = self_test(&mut engine, output, at(now, 100));
        assert_eq!(
            outcome(&step),
            ("self_test_refused", Some("alert_in_progress"))
        );
        assert!(step.actions.is_empty());
    }
}

#[test]
fn an_alarm_during_a_test_pulse_keeps_the_contact_closed() {
    let report = osaka_warning();
    let now = report.issued_at.unwrap();
    let mut engine = Engine::new(settings());
    self_test(&mut engine, OutputId::Relay(1), now);
    // The alarm comes 100 ms into the 500 ms test pulse.
    let step = engine.step(Input::Report(Box::new(report.clone())), at(now, 100));
    let ons: Vec<_> = step
        .actions
        .iter()
        .filter(|a| a.output == OutputId::Relay(1))
        .collect();
    assert_eq!(ons.len(), 1, "the alarm's own on: {:?}", step.actions);
    assert_eq!(ons[0].kind, ActionKind::On { pulse_ms: None });
    assert_eq!(ons[0].event_id.as_deref(), Some(report.event_id.as_str()));
    assert_eq!(ons[0].label, Label::Real);
    // The test pulse's end passes: the contact stays closed for the alarm.
    let step = engine.step(Input::Tick, at(now, 600));
    assert!(
        !step.actions.iter().any(|a| a.output == OutputId::Relay(1)),
        "{:?}",
        step.actions
    );
    assert_eq!(engine.closed_relays(), [1, 2]);

    // A pulse contact under test gets the alarm's whole pulse from the moment it came.
    let mut engine = Engine::new(settings());
    self_test(&mut engine, OutputId::Relay(2), now);
    let step = engine.step(Input::Report(Box::new(report)), at(now, 1500));
    assert!(step.actions.iter().any(|a| a.output == OutputId::Relay(2)
        && a.kind
            == ActionKind::On {
                pulse_ms: Some(2000)
            }
        && a.event_id.is_some()));
    assert!(
        !engine
            .step(Input::Tick, at(now, 2000))
            .actions
            .iter()
            .any(|a| a.output == OutputId::Relay(2)),
        "not at the test's end"
    );
    let step = engine.step(Input::Tick, at(now, 3500));
    assert!(step.actions.iter().any(|a| a.output == OutputId::Relay(2)
        && a.kind == ActionKind::Off
        && a.cause == Cause::PulseEnd));
}

#[test]
fn the_voice_says_the_test_phrase_and_an_alarm_replaces_it() {
    let now = osaka_warning().issued_at.unwrap();
    let mut engine = Engine::new(settings());
    let step = self_test(&mut engine, OutputId::Audio, now);
    assert_eq!(outcome(&step), ("self_test_started", None));
    let [a] = step.actions.as_slice() else {
        panic!("{:?}", step.actions)
    };
    assert_eq!(
        (a.output, a.cause, a.label),
        (OutputId::Audio, Cause::SelfTest, Label::Test)
    );
    let ActionKind::Announce {
        clips_ja, text_ja, ..
    } = &a.kind
    else {
        panic!("{a:?}")
    };
    assert_eq!(clips_ja, &[voice::SELF_TEST_ID]);
    assert!(text_ja.contains("地震ではありません"), "{text_ja}");
    // An alarm right after speaks at once (the player replaces in place).
    let step = engine.step(Input::Report(Box::new(osaka_warning())), at(now, 200));
    assert!(
        step.actions
            .iter()
            .any(|a| a.output == OutputId::Audio && a.label == Label::Real),
        "{:?}",
        step.actions
    );
    // Nor does a test block a drill's voice where drills speak.
    let mut settings = settings();
    settings.outputs.audio.trigger.include.drill = true;
    let mut engine = Engine::new(settings);
    self_test(&mut engine, OutputId::Audio, now);
    let step = engine.step(
        Input::Command(Command::Drill(DrillSpec {
            class: Intensity::FiveLower,
            seconds: 20,
            long_period_class: None,
            warning: false,
        })),
        at(now, 200),
    );
    assert!(
        step.actions
            .iter()
            .any(|a| a.output == OutputId::Audio && a.label == Label::Drill),
        "{:?}",
        step.actions
    );
}

#[test]
fn the_lamp_test_leaves_the_standing_pattern_alone() {
    let now = osaka_warning().issued_at.unwrap();
    let mut engine = Engine::new(settings());
    let step = self_test(&mut engine, OutputId::Led, now);
    let [a] = step.actions.as_slice() else {
        panic!("{:?}", step.actions)
    };
    assert_eq!(
        a.kind,
        ActionKind::Led {
            pattern: LedPattern::LampTest
        }
    );
    assert_eq!(engine.led(), LedPattern::Normal);
    assert_eq!(step.next_deadline, None);
}
