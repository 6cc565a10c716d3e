//! # eew-core — the pure domain of eewgate
//!
//! eewgate is an Earthquake Early Warning (緊急地震速報, EEW) receiving appliance for
//! buildings. This crate is its pure core: it takes values (telegram bytes, settings,
//! `now`) and returns values (reports, predictions, decisions). It performs no I/O, reads
//! no clock, spawns nothing and never blocks; the `eewgate` binary is the imperative shell
//! around it. `chrono` is used without its `clock` feature, so reading the time here does
//! not even compile.
//!
//! ## Map
//!
//! - [`telegram`] — parsers for every EEW input format into one [`Report`], with
//!   validation: invalid input becomes a [`telegram::Rejection`] with a reason, never a
//!   report and never a panic.
//! - [`report`] — the normalized report and its public JSON schema.
//! - [`intensity`] — JMA intensity and long-period classes, and predicted ranges.
//! - [`codes`] — JMA code tables compiled in (areas, epicentres, regions, prefectures).
//! - [`whatif`] — reference earthquakes around the site and what the settings would do
//!   with them (the settings page's preview, `eewgate whatif`).
//!
//! ## Example
//!
//! ```
//! let telegram = "37 03 00 110311144645 C11 110311144619 ND20110311144640 NCN001 \
//!                 JD////////////// JN/// 287 N382 E1427 010 43 01 RK6620/ RT10/// RC///// 9999=";
//! let report = eew_core::parse(telegram.as_bytes()).expect("a real first report of 2011-03-11");
//! assert_eq!(report.event_id.as_str(), "20110311144640");
//! assert_eq!(report.magnitude, Some(4.3));
//! assert_eq!(report.hypocenter.as_ref().and_then(|h| h.name.as_deref()), Some("宮城県沖"));
//!
//! let rejection = eew_core::parse(b"37 03 00 110311144645 C11").expect_err("no terminator");
//! assert_eq!(rejection.reason.code(), "truncated");
//! ```
//!
//! ## Invariants
//!
//! - A [`Report`] value has passed every check of its format and the common checks in
//!   `telegram::finish`: known codes, ranges, cross-field consistency.
//! - All times are JST (+09:00).
//! - The same report received in two formats yields the same `event_id`, `serial`, `kind`
//!   and area forecasts.

#![forbid(unsafe_code)]

pub mod assurance;
pub mod codes;
pub mod engine;
pub mod intensity;
pub mod predict;
pub mod report;
pub mod settings;
pub mod telegram;
pub mod whatif;

pub use intensity::{Intensity, IntensityRange, LongPeriodRange, Upper};
pub use report::{
    Accuracy, AreaForecast, EventId, Flags, Format, Hypocenter, InfoType, IntensityChange,
    IssuingSystem, JstTime, Kind, LandOrSea, Product, RegionLevel, Report, Status, WarnedRegion,
};
pub use telegram::{Reason, Rejection, parse};
