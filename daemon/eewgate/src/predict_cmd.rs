//! `eewgate predict`: what a report (or a bare hypocentre) means for one site, as JSON
//! Lines — the same [`eew_core::predict::predict`] the daemon runs, so an installer can
//! check a site's settings and a developer can check the chain's numbers by hand.
//!
//! `--mode` defaults to `site` here, unlike the appliance (whose default, `area`, comes
//! from its settings): this command exists to show the computation. The hypocentre form
//! carries no JMA area forecast, so area mode would print nothing but travel times; for
//! report files JMA's own area values are printed either way (`area_range`) and are what
//! `eewgate parse` shows. Site-mode values for real events are pinpoint forecasts:
//! giving them to others needs a JMA forecasting licence (see the prediction docs).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args, ValueEnum};
use eew_core::codes::FORECAST_AREA;
use eew_core::predict::{
    self, Amplification, DEFAULT_MW_OFFSET, DEFAULT_ROCK_FACTOR, Prediction, PredictionMode,
    PredictionSettings, Site, SiteError, chain, suggest_area,
};
use eew_core::report::{
    DEEP_EVENT_KM, EventId, Flags, Format, Hypocenter, InfoType, JstTime, Kind, Product, Report,
    Status,
};
use eew_core::telegram;
use serde_json::{Map, Value, json};

/// Arguments of `eewgate predict`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("amplification").required(true).args(["arv", "avs30"])))]
#[command(group(ArgGroup::new("source").required(true).args(["hypocenter", "inputs"])))]
pub struct PredictArgs {
    /// The site, in degrees (WGS84), e.g. `35.68,139.76`.
    #[arg(long, value_name = "LAT,LON", value_parser = parse_lat_lon)]
    site: LatLon,
    /// Site amplification as J-SHIS ARV400 (表層地盤増幅率, PGV relative to Vs 400 m/s;
    /// 0–10). Exactly one of `--arv` and `--avs30` is required.
    #[arg(long, value_name = "ARV400", value_parser = parse_finite)]
    arv: Option<f64>,
    /// Site amplification from AVS30 in m/s (100–1500; Fujimoto & Midorikawa 2006).
    #[arg(long, value_name = "M_PER_S", value_parser = parse_finite)]
    avs30: Option<f64>,
    /// The site's JMA forecast area code (3 digits). Without it, the area whose centroid is
    /// nearest is used, and `site.area_suggested` says so.
    #[arg(long, value_name = "CODE")]
    area: Option<String>,
    /// `site`: the point-source value at the site, floored at JMA's area lower bound
    /// (default here, to show the computation); `area`: JMA's forecast for the area.
    #[arg(long, value_enum, default_value_t = ModeArg::Site)]
    mode: ModeArg,
    /// A hypocentre instead of report files: latitude, longitude (degrees) and depth
    /// (whole km, 0–700), e.g. `35.0,139.0,10`. Needs `--magnitude`.
    #[arg(long, value_name = "LAT,LON,DEPTH_KM", value_parser = parse_hypocenter,
          requires = "magnitude", conflicts_with = "inputs")]
    hypocenter: Option<Hypo>,
    /// JMA magnitude Mj for `--hypocenter` (0.1–9.9).
    #[arg(long, value_name = "MJ", value_parser = parse_magnitude, requires = "hypocenter")]
    magnitude: Option<f64>,
    /// Origin time for `--hypocenter` (RFC 3339); without it no arrival time is given,
    /// only travel times.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time, requires = "hypocenter")]
    origin_time: Option<JstTime>,
    /// Report files to predict for; `-` reads one telegram from standard input.
    #[arg(value_name = "FILE")]
    inputs: Vec<PathBuf>,
    /// `Mw = Mj − offset`.
    #[arg(long, value_name = "OFFSET", default_value_t = DEFAULT_MW_OFFSET,
          value_parser = parse_finite, allow_negative_numbers = true)]
    mw_offset: f64,
    /// Vs 600 → Vs 400 m/s factor applied with `--arv` (1.41 J-SHIS-consistent, 1.31
    /// viewer-compatible).
    #[arg(long, value_name = "FACTOR", default_value_t = DEFAULT_ROCK_FACTOR,
          value_parser = parse_positive)]
    rock_factor: f64,
    /// The time to count down from (RFC 3339): adds `remaining_s`, seconds until the S
    /// wave (negative once passed). Without it `remaining_s` is omitted.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    now: Option<JstTime>,
    /// Pretty-print each object over several lines (no longer JSON Lines).
    #[arg(long)]
    pretty: bool,
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// JMA's forecast for the site's area.
    Area,
    /// The point-source value at the site.
    Site,
}

/// `LAT,LON`.
#[derive(Clone, Copy, Debug)]
struct LatLon {
    lat: f64,
    lon: f64,
}

/// `LAT,LON,DEPTH_KM`.
#[derive(Clone, Copy, Debug)]
struct Hypo {
    lat: f64,
    lon: f64,
    depth_km: u16,
}

fn parse_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?} is not a finite number"))
    }
}

fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be greater than 0"))
    }
}

fn parse_magnitude(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if (0.1..=9.9).contains(&v) {
        Ok(v)
    } else {
        Err(format!("magnitude {s} is outside 0.1–9.9"))
    }
}

fn parse_lat_lon(s: &str) -> Result<LatLon, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [lat, lon] = parts.as_slice() else {
        return Err(format!("expected LAT,LON (e.g. 35.68,139.76), got {s:?}"));
    };
    Ok(LatLon {
        lat: parse_finite(lat)?,
        lon: parse_finite(lon)?,
    })
}

fn parse_hypocenter(s: &str) -> Result<Hypo, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [lat, lon, depth] = parts.as_slice() else {
        return Err(format!(
            "expected LAT,LON,DEPTH_KM (e.g. 35.0,139.0,10), got {s:?}"
        ));
    };
    let (lat, lon) = (parse_finite(lat)?, parse_finite(lon)?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("{s:?} is not a position on Earth"));
    }
    let depth_km: u16 = depth
        .trim()
        .parse()
        .map_err(|_| format!("depth {depth:?} is not a whole number of km"))?;
    if depth_km > telegram::MAX_DEPTH_KM {
        return Err(format!(
            "depth {depth_km} km is deeper than the table's {} km",
            telegram::MAX_DEPTH_KM
        ));
    }
    Ok(Hypo { lat, lon, depth_km })
}

fn parse_time(s: &str) -> Result<JstTime, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(JstTime::from_datetime)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))
}

/// A usage error found after parsing (clap prints it and exits 2).
#[derive(Debug)]
pub struct UsageError(pub String);

/// The site from the arguments, and whether its area was suggested.
fn site(args: &PredictArgs) -> Result<(Site, bool), UsageError> {
    let amplification = match (args.arv, args.avs30) {
        (Some(arv), None) => Amplification::Arv400(arv),
        (None, Some(avs30)) => Amplification::Avs30(avs30),
        // clap's group makes exactly one present; say so if that ever changes.
        _ => return Err(UsageError("give exactly one of --arv and --avs30".into())),
    };
    let site = Site::new(
        args.site.lat,
        args.site.lon,
        amplification,
        args.area.as_deref(),
    )
    .map_err(|e| {
        let option = match e {
            SiteError::Latitude(_) | SiteError::Longitude(_) => "--site",
            SiteError::Arv400(_) => "--arv",
            SiteError::Avs30(_) => "--avs30",
            SiteError::UnknownArea(_) => "--area",
        };
        UsageError(format!("{option}: {e}"))
    })?;
    Ok((site, args.area.is_none()))
}

/// A report standing for a bare hypocentre: no areas, nothing else known.
fn scenario_report(hypo: Hypo, magnitude: f64, origin_time: Option<JstTime>) -> Report {
    let event_id = origin_time
        .and_then(|t| EventId::parse(&t.0.format("%Y%m%d%H%M%S").to_string()))
        .or_else(|| EventId::parse("00000000000000"))
        .expect("fourteen zeros are a well-formed event id");
    Report {
        format: Format::JmaCode,
        product: Product::Code37,
        event_id,
        serial: 1,
        final_report: false,
        kind: Kind::Forecast,
        status: Status::Normal,
        info_type: InfoType::Issued,
        issued_at: None,
        origin_time,
        detected_at: None,
        hypocenter: Some(Hypocenter {
            code: None,
            name: None,
            lat: hypo.lat,
            lon: hypo.lon,
            depth_km: Some(hypo.depth_km),
            assumed: false,
            land_or_sea: None,
        }),
        magnitude: Some(magnitude),
        max_intensity: None,
        max_long_period_class: None,
        accuracy: None,
        max_intensity_change: None,
        areas: Vec::new(),
        warned_regions: Vec::new(),
        flags: Flags {
            deep: hypo.depth_km > DEEP_EVENT_KM,
            ..Flags::default()
        },
        issuing_system: None,
        actionable: true,
        not_actionable_reason: None,
    }
}

/// One output line for a prediction.
fn prediction_line(
    report: &Report,
    site: &Site,
    settings: &PredictionSettings,
    args: &PredictArgs,
    suggested: bool,
) -> anyhow::Result<Value> {
    let p: Prediction = predict::predict(report, site, settings);
    let mut value = serde_json::to_value(&p).context("serializing a prediction")?;
    let Value::Object(map) = &mut value else {
        anyhow::bail!("a prediction serializes to an object");
    };
    if let Some(now) = args.now {
        map.insert("remaining_s".into(), json!(p.remaining_s(now)));
    }
    // Every intermediate of the chain when site mode computed a value (the same inputs
    // give the same numbers).
    let point_source = match (
        p.instrumental_intensity,
        p.epicentral_distance_km,
        report.hypocenter.as_ref().and_then(|h| h.depth_km),
        report.magnitude,
    ) {
        (Some(_), Some(delta), Some(depth), Some(mj)) => chain::point_source(
            mj,
            settings.mw_offset,
            f64::from(depth),
            delta,
            site.arv600(settings.rock_factor),
        ),
        _ => None,
    };
    map.insert("point_source".into(), serde_json::to_value(point_source)?);
    map.insert("site".into(), site_json(site, settings, suggested)?);
    Ok(value)
}

fn site_json(site: &Site, settings: &PredictionSettings, suggested: bool) -> anyhow::Result<Value> {
    let mut obj = Map::new();
    obj.insert("lat".into(), json!(site.lat));
    obj.insert("lon".into(), json!(site.lon));
    obj.insert(
        "amplification".into(),
        serde_json::to_value(site.amplification)?,
    );
    obj.insert("arv600".into(), json!(site.arv600(settings.rock_factor)));
    obj.insert("area_code".into(), json!(site.area_code));
    obj.insert(
        "area_name".into(),
        json!(FORECAST_AREA.name(&site.area_code)),
    );
    obj.insert("area_suggested".into(), json!(suggested));
    if suggested {
        let distance = suggest_area(site.lat, site.lon).map(|s| s.distance_km);
        obj.insert("area_centroid_distance_km".into(), json!(distance));
    }
    Ok(Value::Object(obj))
}

/// Runs `eewgate predict`. `Err(UsageError)` for arguments clap could not check alone.
pub fn run(args: &PredictArgs) -> Result<anyhow::Result<ExitCode>, UsageError> {
    let (site, suggested) = site(args)?;
    let settings = PredictionSettings {
        mode: match args.mode {
            ModeArg::Area => PredictionMode::Area,
            ModeArg::Site => PredictionMode::Site,
        },
        mw_offset: args.mw_offset,
        rock_factor: args.rock_factor,
    };
    if let Some(s) = suggest_area(site.lat, site.lon).filter(|_| suggested) {
        tracing::info!(
            code = s.code,
            name = s.name,
            distance_km = s.distance_km,
            "no --area: using the area with the nearest centroid"
        );
    }
    Ok(write_lines(args, &site, &settings, suggested))
}

fn write_lines(
    args: &PredictArgs,
    site: &Site,
    settings: &PredictionSettings,
    suggested: bool,
) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut all_ok = true;
    let emit = |out: &mut BufWriter<_>, line: &Value| -> anyhow::Result<()> {
        if args.pretty {
            serde_json::to_writer_pretty(&mut *out, line)?;
        } else {
            serde_json::to_writer(&mut *out, line)?;
        }
        out.write_all(b"\n")?;
        Ok(())
    };
    if let (Some(hypo), Some(magnitude)) = (args.hypocenter, args.magnitude) {
        let report = scenario_report(hypo, magnitude, args.origin_time);
        let line = prediction_line(&report, site, settings, args, suggested)?;
        emit(&mut out, &line)?;
    }
    for input in &args.inputs {
        let name = input.to_string_lossy().into_owned();
        let line = match crate::cli::read_input(input) {
            Err(err) => {
                all_ok = false;
                tracing::warn!(input = %name, error = %err, "input unreadable");
                json!({
                    "error": "unreadable",
                    "reason": "io",
                    "message": format!("{err:#}"),
                    "input": name,
                })
            }
            Ok(bytes) => match telegram::parse(&bytes) {
                Ok(report) => {
                    let mut line = prediction_line(&report, site, settings, args, suggested)?;
                    if let Value::Object(map) = &mut line {
                        map.insert("event_id".into(), json!(report.event_id));
                        map.insert("serial".into(), json!(report.serial));
                        map.insert("kind".into(), json!(report.kind));
                        map.insert("origin_time".into(), json!(report.origin_time));
                        map.insert("magnitude".into(), json!(report.magnitude));
                        map.insert("input".into(), Value::String(name));
                    }
                    line
                }
                Err(rejection) => {
                    all_ok = false;
                    tracing::info!(input = %name, reason = %rejection.reason, "rejected: {}", rejection.message);
                    json!({
                        "error": "rejected",
                        "reason": rejection.reason.code(),
                        "message": rejection.message,
                        "input": name,
                    })
                }
            },
        };
        emit(&mut out, &line)?;
    }
    out.flush()?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsers() {
        assert!(parse_lat_lon("35.68,139.76").is_ok());
        assert!(parse_lat_lon("35.68").is_err());
        assert!(parse_lat_lon("35.68,x").is_err());
        assert!(parse_lat_lon("NaN,139").is_err());
        let h = parse_hypocenter("35,139,10").unwrap();
        assert_eq!(h.depth_km, 10);
        assert!(parse_hypocenter("35,139,10.5").is_err());
        assert!(parse_hypocenter("35,139,701").is_err());
        assert!(parse_hypocenter("95,139,10").is_err());
        assert!(parse_magnitude("10").is_err());
        assert!(parse_positive("0").is_err());
        assert!(parse_time("2024-01-01T00:00:00+09:00").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}
