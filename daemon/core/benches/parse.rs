//! Parse time per telegram: one benchmark per fixture that parses (group `parse`, id = file
//! name), and format detection alone on one fixture of each format (group `detect`).
//!
//! `cargo bench -p eew-core --bench parse`; a filter narrows it down, e.g.
//! `cargo bench -p eew-core --bench parse -- detect/`. The fixtures are read when the
//! benchmark starts, so telegrams added to the corpus (and formats whose parser lands
//! later) are measured without touching this file.

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark reads its fixture files; the ban on I/O is for the library"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams")
}

/// Every telegram of the corpus as (file name, bytes), sorted by name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixture_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the fixture directory tests/fixtures/telegrams exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let skip =
                name == "README.md" || name == "index.csv" || name.ends_with(".expected.json");
            (!skip).then_some((name, path))
        })
        .map(|(name, path)| {
            let bytes = std::fs::read(&path).expect("a listed fixture file is readable");
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

/// `eew_core::parse` on every fixture that it accepts (rejections are not what this
/// measures; malformed inputs fail fast).
fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in fixtures() {
        if eew_core::parse(&bytes).is_err() {
            continue;
        }
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name.as_str(), |b| {
            b.iter(|| eew_core::parse(black_box(&bytes)))
        });
    }
    group.finish();
}

/// `telegram::detect` alone, on the first fixture (by name) of each format. Real code
/// telegrams are the files named by their date (`20…`); the others carry a format prefix.
fn detect(c: &mut Criterion) {
    let all = fixtures();
    let picks = [
        ("jma_code", "20"),
        ("jma_xml", "jmaxml_"),
        ("dmdata_json", "dmdata_"),
        ("wolfx_json", "wolfx_"),
    ];
    let mut group = c.benchmark_group("detect");
    for (format, prefix) in picks {
        let Some((name, bytes)) = all.iter().find(|(name, _)| name.starts_with(prefix)) else {
            continue;
        };
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{format}/{name}"), |b| {
            b.iter(|| eew_core::telegram::detect(black_box(bytes)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse, detect
}
criterion_main!(benches);
