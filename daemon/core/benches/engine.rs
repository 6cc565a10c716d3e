//! Engine step and prediction per report (criterion). Expectation from the issue: well
//! under 100 µs together on a Raspberry Pi 4 class CPU; figures go in the README.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup on compiled-in fixtures"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use eew_core::engine::{Engine, Input};
use eew_core::predict::{self, Amplification, PredictionMode, Site};
use eew_core::settings::Settings;
use eew_core::{JstTime, Report};

const OSAKA: &str = include_str!("../tests/fixtures/telegrams/20180618_osaka_ncn011_warning.txt");

fn site() -> Site {
    // Osaka city (大阪府北部, area 520, listed 6弱〜6強 in the 2018-06-18 warning).
    Site::new(34.69, 135.50, Amplification::Arv400(1.4), Some("520")).unwrap()
}

fn report() -> Report {
    eew_core::parse(OSAKA.as_bytes()).unwrap()
}

fn bench(c: &mut Criterion) {
    let report = report();
    let now: JstTime = report.issued_at.unwrap();
    for mode in [PredictionMode::Area, PredictionMode::Site] {
        let mut settings = Settings::for_site(site());
        settings.prediction.mode = mode;
        let name = format!("{mode:?}").to_lowercase();

        // A fresh engine per iteration: the step that starts an alarm (the expensive
        // path: prediction, every output rule, voice text).
        c.bench_function(&format!("engine_step_start_{name}"), |b| {
            b.iter_batched(
                || {
                    (
                        Engine::new(settings.clone()),
                        Input::Report(Box::new(report.clone())),
                    )
                },
                |(mut engine, input)| black_box(engine.step(input, now)),
                criterion::BatchSize::SmallInput,
            );
        });

        // The common path under a flood of copies: a duplicate dropped.
        let mut engine = Engine::new(settings.clone());
        engine.step(Input::Report(Box::new(report.clone())), now);
        c.bench_function(&format!("engine_step_duplicate_{name}"), |b| {
            b.iter_batched(
                || Input::Report(Box::new(report.clone())),
                |input| black_box(engine.step(input, now)),
                criterion::BatchSize::SmallInput,
            );
        });

        c.bench_function(&format!("predict_per_report_{name}"), |b| {
            b.iter(|| {
                black_box(predict::predict(
                    &report,
                    &settings.site,
                    &settings.prediction,
                ))
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
