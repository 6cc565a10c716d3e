//! Prediction time per report (group `predict`: a real parsed report, the 2018 Osaka
//! warning, in area and site mode for a site in a listed area and one in an unlisted
//! area), and the pieces (group `pieces`: JMA2001 lookup, its inverse, the chain alone,
//! the area suggestion).
//!
//! `cargo bench -p eew-core --bench predict`. The fixture is compiled in. The embedded
//! tables are parsed once on first use, which falls in the warm-up: the figures are the
//! steady state an appliance sees after start-up.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use eew_core::predict::{
    self, Amplification, PredictionMode, PredictionSettings, Site, chain, suggest_area, traveltime,
};

const OSAKA: &str = include_str!("../tests/fixtures/telegrams/20180618_osaka_ncn011_warning.txt");

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

fn per_report(c: &mut Criterion) {
    let report = eew_core::parse(OSAKA.as_bytes()).expect("the Osaka fixture parses");
    let listed = Site::new(34.62, 136.31, Amplification::Arv400(1.2), Some("461"))
        .expect("a site in 三重県中部");
    let unlisted = Site::new(35.68, 139.76, Amplification::Arv400(1.2), Some("350"))
        .expect("a site in 東京都２３区");
    let mut group = c.benchmark_group("predict");
    for (mode, name) in [
        (PredictionMode::Area, "area"),
        (PredictionMode::Site, "site"),
    ] {
        let settings = PredictionSettings {
            mode,
            ..PredictionSettings::default()
        };
        for (site, where_) in [(&listed, "listed_area"), (&unlisted, "unlisted_area")] {
            group.bench_function(format!("osaka_ncn011/{name}/{where_}"), |b| {
                b.iter(|| predict::predict(black_box(&report), black_box(site), &settings))
            });
        }
    }
    group.finish();
}

fn pieces(c: &mut Criterion) {
    let mut group = c.benchmark_group("pieces");
    group.bench_function("traveltime/p_s_times", |b| {
        b.iter(|| traveltime::p_s_times(black_box(24.0), black_box(373.0)))
    });
    group.bench_function("traveltime/wavefront_radius_km", |b| {
        b.iter(|| traveltime::wavefront_radius_km(black_box(20.0), black_box(20.0)))
    });
    group.bench_function("chain/point_source", |b| {
        b.iter(|| {
            chain::point_source(
                black_box(6.3),
                0.171,
                black_box(10.0),
                black_box(68.0),
                1.41,
            )
        })
    });
    group.bench_function("chain/class_jma", |b| {
        b.iter(|| chain::class_jma(black_box(4.495)))
    });
    group.bench_function("site/suggest_area", |b| {
        b.iter(|| suggest_area(black_box(35.68), black_box(139.76)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_report, pieces
}
criterion_main!(benches);
