//! Behaviour of the code-telegram parser, case by case: each test names what a terminal
//! must do with one kind of telegram. Real telegrams come from the fixture corpus;
//! variants are made from them by the smallest edit that shows the case.

use eew_core::{Format, Intensity, IssuingSystem, Kind, Product, Reason, Status, Upper, parse};

const TOHOKU_9: &str = include_str!("fixtures/telegrams/20110311_tohoku_ncn009_warning.txt");
const FIRST_2011_04_15: &str = include_str!("fixtures/telegrams/20110415_005001_ncn001.txt");
const PLUM_ONLY: &str =
    include_str!("fixtures/telegrams/20260308_type36_plum_only_ncn905_final.txt");
const LEVEL: &str = include_str!("fixtures/telegrams/spec_20020117_type35_level_ncn001.txt");
const SPEC_36: &str = include_str!("fixtures/telegrams/spec_20020117_type36_ncn002_jdjn_ebi.txt");
const TYPE_47: &str = include_str!("fixtures/telegrams/spec_20061004_warning_type47_ncpn01.txt");
const CANCEL: &str = include_str!("fixtures/telegrams/20120108_ncn003_cancel.txt");
const OSAKA_CANCEL: &str =
    include_str!("fixtures/telegrams/20181001_osaka_origin_ncn002_cancel.txt");
const UNKNOWN: &str = include_str!("fixtures/telegrams/20160610_ncn001_unknown_depth_mag.txt");
const TRAINING: &str = include_str!("fixtures/telegrams/20120420_training_ncn004.txt");
const PLUM_FINAL: &str = include_str!("fixtures/telegrams/20211006_iwateoki_ncn916_final_plum.txt");
const DEEP_TAIL: &str = include_str!("fixtures/telegrams/malformed_fragment_tail_deep_quake.txt");

fn reason(text: &str) -> Reason {
    parse(text.as_bytes()).expect_err("must be rejected").reason
}

#[test]
fn single_line_crlf_and_multi_line_layouts_give_the_same_report() {
    let multi = parse(TOHOKU_9.as_bytes()).unwrap();
    let single = parse(TOHOKU_9.trim_end().replace('\n', " ").as_bytes()).unwrap();
    let crlf = parse(TOHOKU_9.replace('\n', "\r\n").as_bytes()).unwrap();
    assert_eq!(multi, single);
    assert_eq!(multi, crlf);
    assert_eq!(multi.format, Format::JmaCode);
    assert_eq!(multi.areas.len(), 23);
}

#[test]
fn katakana_title_line_and_blank_lines_before_the_header_are_skipped() {
    // ﾅｳｷﾔｽﾄ3 ｷｼﾖｳ as JIS X 0201 bytes, as a JMBSC dedicated line sends it.
    let mut input = vec![
        0xC5, 0xB3, 0xB7, 0xD4, 0xBD, 0xC4, b'3', b' ', 0xB7, 0xBC, 0xD6, 0xB3,
    ];
    input.extend_from_slice(b"\n\n\n");
    input.extend_from_slice(TOHOKU_9.as_bytes());
    assert_eq!(parse(&input).unwrap(), parse(TOHOKU_9.as_bytes()).unwrap());
    // and the same title in UTF-8, as some relays re-encode it
    let utf8 = format!("ﾅｳｷﾔｽﾄ3 ｷｼﾖｳ\r\n\r\n\r\n{TOHOKU_9}");
    assert_eq!(parse(utf8.as_bytes()).unwrap().serial, 9);
}

#[test]
fn a_warning_telegram_lists_areas_with_bounds_flags_and_arrival_times() {
    let r = parse(TOHOKU_9.as_bytes()).unwrap();
    assert_eq!(r.kind, Kind::Warning);
    assert_eq!(r.product, Product::Code37);
    assert_eq!(r.issuing_system, Some(IssuingSystem::Tokyo));
    assert_eq!(r.event_id.as_str(), "20110311144640");
    assert_eq!(r.magnitude, Some(7.6));
    let h = r.hypocenter.as_ref().unwrap();
    assert_eq!((h.lat, h.lon, h.depth_km), (38.1, 142.9, Some(10)));
    assert_eq!(h.name.as_deref(), Some("三陸沖"));
    let first = &r.areas[0];
    assert_eq!(first.code, "222");
    assert_eq!(first.intensity.lower, Intensity::Four);
    assert_eq!(first.intensity.upper, Upper::At(Intensity::FiveLower));
    assert!(first.warning && first.arrived && first.arrival.is_none());
    let timed = r.area("210").unwrap();
    assert_eq!(
        timed.arrival.unwrap().to_rfc3339(),
        "2011-03-11T14:47:03+09:00"
    );
    assert!(timed.warning && !timed.arrived);
    assert_eq!(
        r.origin_time.unwrap().to_rfc3339(),
        "2011-03-11T14:46:16+09:00"
    );
    assert_eq!(
        r.issued_at.unwrap().to_rfc3339(),
        "2011-03-11T14:47:02+09:00"
    );
    assert!(r.actionable);
}

#[test]
fn an_ebi_group_split_across_lines_and_an_open_upper_bound_parse() {
    let r = parse(SPEC_36.as_bytes()).unwrap();
    assert_eq!(r.areas.len(), 4);
    let wrapped = r.area("441").unwrap();
    assert_eq!(wrapped.intensity.lower, Intensity::SixLower);
    assert_eq!(wrapped.intensity.upper, Upper::Over);
    assert_eq!(
        wrapped.arrival.unwrap().to_rfc3339(),
        "2002-01-17T09:30:36+09:00"
    );
    assert_eq!(r.product, Product::Code36);
}

#[test]
fn serial_numbers_of_one_hundred_and_more_use_the_letter_form() {
    let text = TOHOKU_9.replace("NCN009", "NCN9A3");
    let r = parse(text.as_bytes()).unwrap();
    assert_eq!(r.serial, 103);
    assert!(r.final_report);
}

#[test]
fn plum_only_report_has_an_assumed_hypocenter_and_no_arrival_countdown() {
    let r = parse(PLUM_ONLY.as_bytes()).unwrap();
    let h = r.hypocenter.as_ref().unwrap();
    assert!(h.assumed);
    assert_eq!(r.magnitude, Some(1.0));
    assert!(r.flags.plum && r.flags.single_station);
    let area = &r.areas[0];
    assert!(area.plum && area.arrival.is_none());
    assert_eq!(
        area.plum_predicted_at.unwrap().to_rfc3339(),
        "2026-03-08T22:18:22+09:00"
    );
    assert_eq!(area.intensity.upper, Upper::Over);
    assert!(r.actionable, "PLUM-only areas still drive outputs");
    assert_eq!(r.issuing_system, Some(IssuingSystem::Osaka));
}

#[test]
fn plum_areas_in_a_normal_report_are_flagged_beside_timed_areas() {
    let r = parse(PLUM_FINAL.as_bytes()).unwrap();
    assert!(r.flags.plum && r.final_report && !r.hypocenter.as_ref().unwrap().assumed);
    assert!(r.area("202").unwrap().plum && r.area("202").unwrap().warning);
    assert!(r.area("210").unwrap().arrived);
    assert!(r.area("213").unwrap().plum && !r.area("213").unwrap().warning);
}

#[test]
fn level_method_report_has_no_magnitude_and_a_detection_time() {
    let r = parse(LEVEL.as_bytes()).unwrap();
    assert_eq!(r.product, Product::Code35);
    assert!(r.flags.level_method);
    assert_eq!(r.magnitude, None);
    assert_eq!(r.origin_time, None);
    assert_eq!(
        r.detected_at.unwrap().to_rfc3339(),
        "2002-01-17T09:30:10+09:00"
    );
    assert_eq!(r.max_intensity.unwrap().lower, Intensity::FiveLower);
    assert!(r.actionable);
    // a magnitude on a level-method telegram contradicts its type
    assert_eq!(
        reason(&LEVEL.replace(" 010 // 5-", " 010 55 5-")),
        Reason::Inconsistent
    );
}

#[test]
fn deep_event_has_no_intensity_and_is_flagged_deep() {
    let head =
        "37 03 00 100430002152 C11\n100430001908\nND20100430001920 NCN001 JD////////////// JN///\n";
    let r = parse(format!("{head}{DEEP_TAIL}").as_bytes()).unwrap();
    assert!(r.flags.deep);
    assert_eq!(r.hypocenter.as_ref().unwrap().depth_km, Some(380));
    assert_eq!(r.max_intensity, None);
    assert!(
        r.actionable,
        "a deep event is handled by the deep-event setting, not discarded"
    );
}

#[test]
fn unknown_depth_and_magnitude_parse_but_cannot_drive_outputs() {
    let r = parse(UNKNOWN.as_bytes()).unwrap();
    assert_eq!(r.magnitude, None);
    assert_eq!(r.hypocenter.as_ref().unwrap().depth_km, None);
    assert_eq!(r.max_intensity, None);
    assert!(!r.actionable);
    assert_eq!(r.not_actionable_reason, Some("depth_unknown"));
}

#[test]
fn cancels_from_tokyo_and_osaka_cancel_the_event() {
    let r = parse(CANCEL.as_bytes()).unwrap();
    assert_eq!(
        (r.kind, r.product, r.serial),
        (Kind::Cancel, Product::Code39, 3)
    );
    assert!(r.hypocenter.is_none() && r.areas.is_empty() && r.actionable);
    // the Osaka cancel was kept with its line breaks escaped as \n
    let r = parse(OSAKA_CANCEL.as_bytes()).unwrap();
    assert_eq!(r.kind, Kind::Cancel);
    assert_eq!(r.issuing_system, Some(IssuingSystem::Osaka));
}

#[test]
fn a_cancel_type_needs_the_cancel_status_and_unset_fields() {
    assert_eq!(
        reason(&CANCEL.replace("39 03 10", "39 03 00")),
        Reason::Inconsistent
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("37 03 00", "37 03 10")),
        Reason::Inconsistent
    );
    assert_eq!(
        reason(&CANCEL.replace("/// //// /////", "287 N382 E1427")),
        Reason::Inconsistent
    );
}

#[test]
fn training_telegrams_are_labelled_training() {
    let r = parse(TRAINING.as_bytes()).unwrap();
    assert_eq!(r.status, Status::Training);
    assert_eq!(r.areas[0].intensity.upper, Upper::Over);
    let cancel = CANCEL.replace("39 03 10", "39 03 11");
    assert_eq!(parse(cancel.as_bytes()).unwrap().status, Status::Training);
}

#[test]
fn delivery_test_and_reference_statuses_are_never_normal() {
    let test = parse(FIRST_2011_04_15.replace("37 03 00", "37 03 30").as_bytes()).unwrap();
    assert_eq!((test.kind, test.status), (Kind::DeliveryTest, Status::Test));
    assert!(!test.actionable);
    let reference = parse(FIRST_2011_04_15.replace("37 03 00", "37 03 20").as_bytes()).unwrap();
    assert_eq!(reference.status, Status::Test);
}

#[test]
fn the_public_warning_telegram_carries_warned_regions_and_its_forecast_part() {
    let r = parse(TYPE_47.as_bytes()).unwrap();
    assert_eq!(r.product, Product::Code47);
    assert_eq!(r.kind, Kind::Warning);
    assert_eq!(r.areas.len(), 29);
    use eew_core::RegionLevel::*;
    let count = |l| r.warned_regions.iter().filter(|w| w.level == l).count();
    assert_eq!((count(Region), count(Prefecture), count(Area)), (5, 15, 29));
    assert!(r.warned_regions.iter().all(|w| !w.newly_added));
    let tokai = r.warned_regions.iter().find(|w| w.code == "9936").unwrap();
    assert_eq!(tokai.name, "東海");
    let variant = include_str!("fixtures/telegrams/spec_20061004_warning_type47_variant.txt");
    assert_eq!(parse(variant.as_bytes()).unwrap().areas.len(), 4);
}

#[test]
fn a_warning_flag_without_warned_areas_is_discarded() {
    // RT n2 = 1 but every EBI y1 = 0 (and the reverse) on a real-status telegram
    let flipped = TOHOKU_9
        .replace(" 11 ", " 01 ")
        .replace(" 10\n", " 00\n")
        .replace(" 11\n", " 01\n")
        .replace(" 10 ", " 00 ");
    assert_eq!(reason(&flipped), Reason::Inconsistent);
    assert_eq!(
        reason(&TOHOKU_9.replace("RT11///", "RT10///")),
        Reason::Inconsistent
    );
}

#[test]
fn fixed_line_lengths_are_enforced_in_the_multi_line_layout() {
    assert_eq!(
        reason(&TOHOKU_9.replace("110311144616\n", "1103111446160\n")),
        Reason::Malformed
    );
    assert_eq!(
        reason(
            &TOHOKU_9
                .replace("RC0////\n", "RC0//// \t\n")
                .replace("010 76", "010  76")
        ),
        Reason::BadLineLength
    );
}

#[test]
fn a_split_telegram_must_be_reassembled_first() {
    assert_eq!(
        reason(&TOHOKU_9.replace(" C11", " C20")),
        Reason::SplitTelegram
    );
    assert_eq!(
        reason(&TOHOKU_9.replace(" C11", " C00")),
        Reason::InvalidField
    );
}

#[test]
fn terminator_must_end_the_telegram() {
    assert_eq!(reason(&TOHOKU_9.replace("9999=", "")), Reason::Truncated);
    assert_eq!(reason(&format!("{TOHOKU_9}garbage")), Reason::Malformed);
    assert_eq!(
        reason(&TOHOKU_9.replace("9999=", "X9999=")),
        Reason::Truncated
    );
}

#[test]
fn field_ranges_and_codes_are_checked() {
    assert_eq!(
        reason(&TOHOKU_9.replace("288 N381", "000 N381")),
        Reason::UnknownCode
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("N381 E1429", "N681 E1429")),
        Reason::OutOfRange
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("E1429 010", "E1429 710")),
        Reason::OutOfRange
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("010 76 5-", "010 00 5-")),
        Reason::OutOfRange
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("EBI 222", "EBI 999")),
        Reason::UnknownCode
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("76 5-", "76 08")),
        Reason::InvalidField
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("S5-04 ////// 11 220", "S04// ////// 11 222")),
        Reason::Inconsistent
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("S5-04 ////// 11 220", "S045- ////// 11 220")),
        Reason::Inconsistent
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("37 03 00", "37 09 00")),
        Reason::UnknownCode
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("37 03 00", "33 03 00")),
        Reason::UnknownCode
    );
    assert_eq!(
        reason(&TOHOKU_9.replace("37 03 00", "61 03 00")),
        Reason::UnsupportedProduct
    );
}

#[test]
fn times_that_contradict_each_other_are_discarded() {
    // issued before the origin time
    assert_eq!(
        reason(&TOHOKU_9.replace("110311144702", "110311144502")),
        Reason::Inconsistent
    );
    // origin a day away from the event id
    assert_eq!(
        reason(&TOHOKU_9.replace("\n110311144616", "\n110310144616")),
        Reason::Inconsistent
    );
    // a date that does not exist
    assert_eq!(
        reason(&TOHOKU_9.replace("110311144702", "110231144702")),
        Reason::InvalidField
    );
}

#[test]
fn arrival_times_past_midnight_belong_to_the_next_day() {
    let text = "37 03 00 110311235959 C11 110311235930 ND20110311235935 NCN003 JD////////////// JN/// 288 N381 E1429 010 76 5- RK66444 RT11/// RC0//// EBI 222 S5-04 000012 10 9999=";
    let r = parse(text.as_bytes()).unwrap();
    assert_eq!(
        r.areas[0].arrival.unwrap().to_rfc3339(),
        "2011-03-12T00:00:12+09:00"
    );
}

#[test]
fn non_ascii_after_the_header_is_refused() {
    let text = TOHOKU_9.replace("9999=", "震度 9999=");
    assert_eq!(reason(&text), Reason::InvalidEncoding);
}
