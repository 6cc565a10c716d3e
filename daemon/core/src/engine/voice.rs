//! The words the audio output speaks, in Japanese and English, as a catalogue of
//! pre-rendered clips.
//!
//! The appliance does not synthesise speech: every announcement is a sequence of short
//! clips from [`CLIPS`], rendered once by `scripts/render-voice` (Open JTalk for
//! Japanese, espeak-ng for English) into `assets/voice/<lang>/<id>.wav`. Fixed clips are
//! deterministic, cost no CPU at alarm time and can be checked by ear before shipping.
//! The engine decides the clip ids ([`ActionKind::Announce`] and
//! [`ActionKind::Countdown`] carry `clips_ja` / `clips_en`) and the display texts are
//! built from them, so what is shown and what is heard can never disagree:
//!
//! - Japanese text = the clips' `ja` texts concatenated ([`text_ja`]);
//! - English text = the clips' `en` texts joined by single spaces ([`text_en`]).
//!
//! Two styles, as JMA's guideline describes (受信端末ガイドライン (3)4): numbers
//! (「震度５弱。あと２０秒。」) or a fixed phrase (「地震です。落ち着いて身を守ってください。」)
//! for sites that prefer not to state uncertain numbers. Either way the last seconds are
//! counted down. Exercises say so first; low-accuracy reports say so last (guideline
//! (1)12). In order:
//!
//! 1. exercises: 「これは訓練です。」 (JMA training, local drill) or 「配信テストです。」
//!    (JMA test);
//! 2. 「緊急地震速報。」, or 「緊急地震速報、警報です。」 when a warning covers the site;
//! 3. numbers: the class and the seconds left (「震度５弱。あと２０秒。」), or the class and
//!    「強い揺れに警戒してください。」 when no time is left to count; phrase: 「地震です。
//!    落ち着いて身を守ってください。」;
//! 4. what makes the report less certain: deep event, PLUM forecasts in the report, level
//!    method or a single station.
//!
//! A cancel of an event that spoke says 「緊急地震速報を解除します。」, after the exercise
//! prefix. Countdown numbers are the number clips alone (「１０」, "ten").
//!
//! Numbers 0–999 are composed from 63 number clips, the same ids in both languages
//! ([`number_clips`]): 0–19 alone, the tens 20–90 and the hundreds 100–900. Japanese
//! shows numbers as full-width digits, so a tens or hundreds clip has variants that
//! differ only in the digits they display (「２０」 alone, 「２」 before a unit; 「１００」
//! alone, 「１０」 before a unit, 「１」 before two digits) and the concatenation is always
//! the number's digits: ２５ = 「２」(にじゅう) + 「５」(ご), １０５ = 「１０」(ひゃく) +
//! 「５」(ご). English says the same clips as words: "twenty five", "one hundred five".
//!
//! [`ActionKind::Announce`]: super::ActionKind::Announce
//! [`ActionKind::Countdown`]: super::ActionKind::Countdown

use crate::intensity::Intensity;
use crate::settings::AudioStyle;

use super::action::{AlertFlags, Label};

/// One pre-rendered clip: what it displays in each language and what the renderer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClipDef {
    /// Stable id: ASCII snake_case, the file name of its WAV files
    /// (`assets/voice/ja/<id>.wav`, `assets/voice/en/<id>.wav`).
    pub id: &'static str,
    /// Japanese display text; the concatenation of a sequence's `ja` is its `text_ja`.
    pub ja: &'static str,
    /// What Open JTalk is given to say `ja` correctly (kana or kanji where the display
    /// text would be misread, e.g. 「深発」 → 「しんぱつ」, full-width digits → kanji
    /// numerals).
    pub ja_reading: &'static str,
    /// English display text, which is also exactly what espeak-ng says.
    pub en: &'static str,
}

const fn clip_def(
    id: &'static str,
    ja: &'static str,
    ja_reading: &'static str,
    en: &'static str,
) -> ClipDef {
    ClipDef {
        id,
        ja,
        ja_reading,
        en,
    }
}

// ---- fixed phrases -------------------------------------------------------------------

const DRILL: ClipDef = clip_def(
    "drill",
    "これは訓練です。",
    "これは訓練です。",
    "This is a drill.",
);
const DELIVERY_TEST: ClipDef = clip_def(
    "delivery_test",
    "配信テストです。",
    "配信テストです。",
    "This is a delivery test.",
);
/// The self-test phrase (a test of the PA path from the Tests page or a probe). It
/// names no earthquake, so nobody mistakes it for an alert.
const SELF_TEST: ClipDef = clip_def(
    "self_test",
    "放送設備のテストです。地震ではありません。",
    "ほうそうせつびのテストです。じしんではありません。",
    "This is a test of the announcement system. There is no earthquake.",
);
/// The clip id of the self-test phrase.
pub const SELF_TEST_ID: &str = SELF_TEST.id;
const EEW: ClipDef = clip_def(
    "eew",
    "緊急地震速報。",
    "緊急地震速報。",
    "Earthquake early warning.",
);
const EEW_WARNING: ClipDef = clip_def(
    "eew_warning",
    "緊急地震速報、警報です。",
    "緊急地震速報、警報です。",
    "Earthquake early warning, public warning.",
);
const PROTECT: ClipDef = clip_def(
    "protect",
    "地震です。落ち着いて身を守ってください。",
    "地震です。落ち着いて身を守ってください。",
    "Earthquake. Stay calm and protect yourself.",
);
const BEWARE: ClipDef = clip_def(
    "beware",
    "強い揺れに警戒してください。",
    "強い揺れに警戒してください。",
    "Beware of strong shaking.",
);
const ATO: ClipDef = clip_def("ato", "あと", "あと", "Shaking in");
const SECONDS: ClipDef = clip_def("seconds", "秒。", "びょう。", "seconds.");
/// English needs the singular for 1; Japanese does not distinguish.
const SECOND: ClipDef = clip_def("second", "秒。", "びょう。", "second.");
const DEEP: ClipDef = clip_def(
    "deep",
    "深発地震です。",
    // Open JTalk reads 深発 as ふかはつ.
    "しんぱつ地震です。",
    "Deep earthquake.",
);
/// `flags.plum` is about the report (some area's forecast is by PLUM), not necessarily
/// this site's, hence "includes".
const PLUM: ClipDef = clip_def(
    "plum",
    "ＰＬＵＭ法による予想を含みます。",
    // Open JTalk spells the letters out (ピーエルユーエム).
    "プラム法による予想を含みます。",
    "Includes forecasts by the PLUM method.",
);
const LEVEL_METHOD: ClipDef = clip_def(
    "level_method",
    "強い揺れを観測した地点があります。",
    "強い揺れを観測した地点があります。",
    "Strong shaking was detected nearby.",
);
const SINGLE_STATION: ClipDef = clip_def(
    "single_station",
    "一点の観測による情報です。",
    "いってんの観測による情報です。",
    "Based on a single station.",
);
const CANCELLED: ClipDef = clip_def(
    "cancelled",
    "緊急地震速報を解除します。",
    "緊急地震速報を解除します。",
    "The earthquake early warning is cancelled.",
);

// ---- intensity classes -----------------------------------------------------------------

const SHINDO_0: ClipDef = clip_def(
    "shindo_0",
    "震度０。",
    "震度ゼロ。",
    "Expected intensity 0.",
);
const SHINDO_1: ClipDef = clip_def(
    "shindo_1",
    "震度１。",
    "震度いち。",
    "Expected intensity 1.",
);
const SHINDO_2: ClipDef = clip_def("shindo_2", "震度２。", "震度に。", "Expected intensity 2.");
const SHINDO_3: ClipDef = clip_def(
    "shindo_3",
    "震度３。",
    "震度さん。",
    "Expected intensity 3.",
);
const SHINDO_4: ClipDef = clip_def(
    "shindo_4",
    "震度４。",
    "震度よん。",
    "Expected intensity 4.",
);
const SHINDO_5_LOWER: ClipDef = clip_def(
    "shindo_5_lower",
    "震度５弱。",
    "震度ごじゃく。",
    "Expected intensity 5 lower.",
);
const SHINDO_5_UPPER: ClipDef = clip_def(
    "shindo_5_upper",
    "震度５強。",
    "震度ごきょう。",
    "Expected intensity 5 upper.",
);
const SHINDO_6_LOWER: ClipDef = clip_def(
    "shindo_6_lower",
    "震度６弱。",
    "震度ろくじゃく。",
    "Expected intensity 6 lower.",
);
const SHINDO_6_UPPER: ClipDef = clip_def(
    "shindo_6_upper",
    "震度６強。",
    "震度ろくきょう。",
    "Expected intensity 6 upper.",
);
const SHINDO_7: ClipDef = clip_def(
    "shindo_7",
    "震度７。",
    "震度なな。",
    "Expected intensity 7.",
);

/// Every clip the engine can ask for. Order: fixed phrases, classes, numbers.
pub const CLIPS: &[ClipDef] = &[
    DRILL,
    DELIVERY_TEST,
    SELF_TEST,
    EEW,
    EEW_WARNING,
    PROTECT,
    BEWARE,
    ATO,
    SECONDS,
    SECOND,
    DEEP,
    PLUM,
    LEVEL_METHOD,
    SINGLE_STATION,
    CANCELLED,
    SHINDO_0,
    SHINDO_1,
    SHINDO_2,
    SHINDO_3,
    SHINDO_4,
    SHINDO_5_LOWER,
    SHINDO_5_UPPER,
    SHINDO_6_LOWER,
    SHINDO_6_UPPER,
    SHINDO_7,
    // Numbers said alone, or last: 0–19.
    clip_def("num_0", "０", "ゼロ", "zero"),
    clip_def("num_1", "１", "一", "one"),
    clip_def("num_2", "２", "二", "two"),
    clip_def("num_3", "３", "三", "three"),
    clip_def("num_4", "４", "四", "four"),
    clip_def("num_5", "５", "五", "five"),
    clip_def("num_6", "６", "六", "six"),
    clip_def("num_7", "７", "七", "seven"),
    clip_def("num_8", "８", "八", "eight"),
    clip_def("num_9", "９", "九", "nine"),
    clip_def("num_10", "１０", "十", "ten"),
    clip_def("num_11", "１１", "十一", "eleven"),
    clip_def("num_12", "１２", "十二", "twelve"),
    clip_def("num_13", "１３", "十三", "thirteen"),
    clip_def("num_14", "１４", "十四", "fourteen"),
    clip_def("num_15", "１５", "十五", "fifteen"),
    clip_def("num_16", "１６", "十六", "sixteen"),
    clip_def("num_17", "１７", "十七", "seventeen"),
    clip_def("num_18", "１８", "十八", "eighteen"),
    clip_def("num_19", "１９", "十九", "nineteen"),
    // Round tens, last.
    clip_def("num_20", "２０", "二十", "twenty"),
    clip_def("num_30", "３０", "三十", "thirty"),
    clip_def("num_40", "４０", "四十", "forty"),
    clip_def("num_50", "５０", "五十", "fifty"),
    clip_def("num_60", "６０", "六十", "sixty"),
    clip_def("num_70", "７０", "七十", "seventy"),
    clip_def("num_80", "８０", "八十", "eighty"),
    clip_def("num_90", "９０", "九十", "ninety"),
    // Tens before a unit 1–9 (the unit shows the last digit).
    clip_def("num_2x", "２", "二十", "twenty"),
    clip_def("num_3x", "３", "三十", "thirty"),
    clip_def("num_4x", "４", "四十", "forty"),
    clip_def("num_5x", "５", "五十", "fifty"),
    clip_def("num_6x", "６", "六十", "sixty"),
    clip_def("num_7x", "７", "七十", "seventy"),
    clip_def("num_8x", "８", "八十", "eighty"),
    clip_def("num_9x", "９", "九十", "ninety"),
    // Round hundreds, last.
    clip_def("num_100", "１００", "百", "one hundred"),
    clip_def("num_200", "２００", "二百", "two hundred"),
    clip_def("num_300", "３００", "三百", "three hundred"),
    clip_def("num_400", "４００", "四百", "four hundred"),
    clip_def("num_500", "５００", "五百", "five hundred"),
    clip_def("num_600", "６００", "六百", "six hundred"),
    clip_def("num_700", "７００", "七百", "seven hundred"),
    clip_def("num_800", "８００", "八百", "eight hundred"),
    clip_def("num_900", "９００", "九百", "nine hundred"),
    // Hundreds before a unit 1–9 (they show the zero of the tens).
    clip_def("num_10x", "１０", "百", "one hundred"),
    clip_def("num_20x", "２０", "二百", "two hundred"),
    clip_def("num_30x", "３０", "三百", "three hundred"),
    clip_def("num_40x", "４０", "四百", "four hundred"),
    clip_def("num_50x", "５０", "五百", "five hundred"),
    clip_def("num_60x", "６０", "六百", "six hundred"),
    clip_def("num_70x", "７０", "七百", "seven hundred"),
    clip_def("num_80x", "８０", "八百", "eight hundred"),
    clip_def("num_90x", "９０", "九百", "nine hundred"),
    // Hundreds before 10–99.
    clip_def("num_1xx", "１", "百", "one hundred"),
    clip_def("num_2xx", "２", "二百", "two hundred"),
    clip_def("num_3xx", "３", "三百", "three hundred"),
    clip_def("num_4xx", "４", "四百", "four hundred"),
    clip_def("num_5xx", "５", "五百", "five hundred"),
    clip_def("num_6xx", "６", "六百", "six hundred"),
    clip_def("num_7xx", "７", "七百", "seven hundred"),
    clip_def("num_8xx", "８", "八百", "eight hundred"),
    clip_def("num_9xx", "９", "九百", "nine hundred"),
];

/// The clip with this id.
pub fn clip(id: &str) -> Option<&'static ClipDef> {
    CLIPS.iter().find(|c| c.id == id)
}

/// The Japanese text of a clip sequence: the clips' `ja` concatenated (unknown ids add
/// nothing; the engine only uses catalogue ids, which its tests check).
pub fn text_ja(ids: &[&str]) -> String {
    ids.iter().filter_map(|id| clip(id)).map(|c| c.ja).collect()
}

/// The English text of a clip sequence: the clips' `en` joined by single spaces
/// (unknown ids add nothing).
pub fn text_en(ids: &[&str]) -> String {
    ids.iter()
        .filter_map(|id| clip(id))
        .map(|c| c.en)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The clips that say `n` (0–999) in either language, `None` above 999.
pub fn number_clips(n: u32) -> Option<Vec<&'static str>> {
    if n > 999 {
        return None;
    }
    let (hundreds, rest) = (n / 100, n % 100);
    let mut out = Vec::with_capacity(3);
    if hundreds > 0 {
        out.push(hundreds_clip(hundreds, rest)?);
    }
    if rest >= 20 {
        let (tens, unit) = (rest / 10, rest % 10);
        out.push(tens_clip(tens, unit == 0)?);
        if unit > 0 {
            out.push(small_clip(unit)?);
        }
    } else if rest > 0 || hundreds == 0 {
        out.push(small_clip(rest)?);
    }
    Some(out)
}

/// `num_0` … `num_19`.
fn small_clip(n: u32) -> Option<&'static str> {
    Some(match n {
        0 => "num_0",
        1 => "num_1",
        2 => "num_2",
        3 => "num_3",
        4 => "num_4",
        5 => "num_5",
        6 => "num_6",
        7 => "num_7",
        8 => "num_8",
        9 => "num_9",
        10 => "num_10",
        11 => "num_11",
        12 => "num_12",
        13 => "num_13",
        14 => "num_14",
        15 => "num_15",
        16 => "num_16",
        17 => "num_17",
        18 => "num_18",
        19 => "num_19",
        _ => return None,
    })
}

/// Tens 2–9: the round clip when nothing follows, else the one before a unit.
fn tens_clip(tens: u32, last: bool) -> Option<&'static str> {
    let (round, before_unit) = match tens {
        2 => ("num_20", "num_2x"),
        3 => ("num_30", "num_3x"),
        4 => ("num_40", "num_4x"),
        5 => ("num_50", "num_5x"),
        6 => ("num_60", "num_6x"),
        7 => ("num_70", "num_7x"),
        8 => ("num_80", "num_8x"),
        9 => ("num_90", "num_9x"),
        _ => return None,
    };
    Some(if last { round } else { before_unit })
}

/// Hundreds 1–9, by what follows: nothing, a unit (1–9) or two digits (10–99).
fn hundreds_clip(hundreds: u32, rest: u32) -> Option<&'static str> {
    let (round, before_unit, before_two) = match hundreds {
        1 => ("num_100", "num_10x", "num_1xx"),
        2 => ("num_200", "num_20x", "num_2xx"),
        3 => ("num_300", "num_30x", "num_3xx"),
        4 => ("num_400", "num_40x", "num_4xx"),
        5 => ("num_500", "num_50x", "num_5xx"),
        6 => ("num_600", "num_60x", "num_6xx"),
        7 => ("num_700", "num_70x", "num_7xx"),
        8 => ("num_800", "num_80x", "num_8xx"),
        9 => ("num_900", "num_90x", "num_9xx"),
        _ => return None,
    };
    Some(match rest {
        0 => round,
        1..=9 => before_unit,
        _ => before_two,
    })
}

/// An utterance: the clips to play in each language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Utterance {
    pub ja: Vec<&'static str>,
    pub en: Vec<&'static str>,
}

impl Utterance {
    /// A clip said in both languages.
    fn say(&mut self, c: ClipDef) {
        self.ja.push(c.id);
        self.en.push(c.id);
    }
}

/// What an announcement is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spoken {
    pub label: Label,
    pub class: Option<Intensity>,
    pub warning: bool,
    /// Whole seconds left, when there is a countdown to say.
    pub seconds_left: Option<u32>,
    pub flags: AlertFlags,
}

fn class_clip(class: Intensity) -> ClipDef {
    match class {
        Intensity::Zero => SHINDO_0,
        Intensity::One => SHINDO_1,
        Intensity::Two => SHINDO_2,
        Intensity::Three => SHINDO_3,
        Intensity::Four => SHINDO_4,
        Intensity::FiveLower => SHINDO_5_LOWER,
        Intensity::FiveUpper => SHINDO_5_UPPER,
        Intensity::SixLower => SHINDO_6_LOWER,
        Intensity::SixUpper => SHINDO_6_UPPER,
        Intensity::Seven => SHINDO_7,
    }
}

/// Exercises say what they are before anything else.
fn exercise_prefix(label: Label) -> Option<ClipDef> {
    match label {
        Label::Real => None,
        Label::Training | Label::Drill => Some(DRILL),
        Label::Test => Some(DELIVERY_TEST),
    }
}

/// The alert announcement.
pub(crate) fn announcement(style: AudioStyle, s: Spoken) -> Utterance {
    let mut u = Utterance::default();
    if let Some(prefix) = exercise_prefix(s.label) {
        u.say(prefix);
    }
    u.say(if s.warning { EEW_WARNING } else { EEW });
    match (style, s.class) {
        (AudioStyle::Phrase, _) => u.say(PROTECT),
        (AudioStyle::Numbers, Some(class)) => {
            u.say(class_clip(class));
            // More than 999 s cannot happen with JMA's arrival times (reports come within
            // an hour of the origin and the S wave crosses Japan in minutes); should it,
            // the class is said without the seconds rather than a wrong number.
            match s
                .seconds_left
                .and_then(|secs| number_clips(secs).map(|n| (secs, n)))
            {
                Some((secs, number)) => {
                    u.say(ATO);
                    u.ja.extend(&number);
                    u.en.extend(&number);
                    u.ja.push(SECONDS.id);
                    u.en.push(if secs == 1 { SECOND.id } else { SECONDS.id });
                }
                None => u.say(BEWARE),
            }
        }
        (AudioStyle::Numbers, None) => u.say(BEWARE),
    }
    if s.flags.deep {
        u.say(DEEP);
    }
    if s.flags.plum {
        u.say(PLUM);
    }
    if s.flags.level_method {
        u.say(LEVEL_METHOD);
    } else if s.flags.single_station {
        u.say(SINGLE_STATION);
    }
    u
}

/// The cancellation announcement.
pub(crate) fn cancellation(label: Label) -> Utterance {
    let mut u = Utterance::default();
    if let Some(prefix) = exercise_prefix(label) {
        u.say(prefix);
    }
    u.say(CANCELLED);
    u
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Full-width digits, as Japanese announcement scripts write numbers.
    fn zenkaku(n: u32) -> String {
        n.to_string()
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_u32(0xFF10 + d).unwrap(),
                None => c,
            })
            .collect()
    }

    /// English number words, written independently of the clip tables.
    fn words(n: u32) -> String {
        const SMALL: [&str; 20] = [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ];
        const TENS: [&str; 10] = [
            "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
        ];
        let mut parts = Vec::new();
        let (h, r) = (n / 100, n % 100);
        if h > 0 {
            parts.push(format!("{} hundred", SMALL[h as usize]));
        }
        if r >= 20 {
            parts.push(TENS[(r / 10) as usize].to_owned());
            if r % 10 > 0 {
                parts.push(SMALL[(r % 10) as usize].to_owned());
            }
        } else if r > 0 || h == 0 {
            parts.push(SMALL[r as usize].to_owned());
        }
        parts.join(" ")
    }

    fn spoken(class: Option<Intensity>, secs: Option<u32>) -> Spoken {
        Spoken {
            label: Label::Real,
            class,
            warning: false,
            seconds_left: secs,
            flags: AlertFlags::default(),
        }
    }

    /// What a countdown number says (`ActionKind::countdown`).
    fn countdown(seconds: u8) -> Utterance {
        let n = number_clips(seconds.into()).unwrap();
        Utterance {
            ja: n.clone(),
            en: n,
        }
    }

    fn texts(u: &Utterance) -> (String, String) {
        (text_ja(&u.ja), text_en(&u.en))
    }

    /// Every id is in the catalogue, and the texts are exactly what the clips display.
    fn assert_consistent(u: &Utterance) {
        for id in u.ja.iter().chain(&u.en) {
            assert!(clip(id).is_some(), "{id} is not in CLIPS");
        }
        let ja: String = u.ja.iter().map(|id| clip(id).unwrap().ja).collect();
        let en: Vec<&str> = u.en.iter().map(|id| clip(id).unwrap().en).collect();
        assert_eq!(text_ja(&u.ja), ja);
        assert_eq!(text_en(&u.en), en.join(" "));
        assert!(!u.ja.is_empty() && !u.en.is_empty());
    }

    const CLASSES: [Option<Intensity>; 11] = [
        None,
        Some(Intensity::Zero),
        Some(Intensity::One),
        Some(Intensity::Two),
        Some(Intensity::Three),
        Some(Intensity::Four),
        Some(Intensity::FiveLower),
        Some(Intensity::FiveUpper),
        Some(Intensity::SixLower),
        Some(Intensity::SixUpper),
        Some(Intensity::Seven),
    ];
    const LABELS: [Label; 4] = [Label::Real, Label::Training, Label::Test, Label::Drill];
    const STYLES: [AudioStyle; 2] = [AudioStyle::Numbers, AudioStyle::Phrase];

    fn all_flags() -> impl Iterator<Item = AlertFlags> {
        (0u8..32).map(|bits| AlertFlags {
            plum: bits & 1 != 0,
            deep: bits & 2 != 0,
            level_method: bits & 4 != 0,
            single_station: bits & 8 != 0,
            assumed_hypocenter: bits & 16 != 0,
        })
    }

    #[test]
    fn the_catalogue_ids_are_unique_file_safe_and_every_clip_says_something() {
        let mut seen = BTreeSet::new();
        for c in CLIPS {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(
                !c.id.is_empty()
                    && c.id.starts_with(|ch: char| ch.is_ascii_lowercase())
                    && c.id
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{} is not snake_case",
                c.id
            );
            assert!(!c.ja.is_empty() && !c.ja_reading.is_empty() && !c.en.is_empty());
            assert!(c.ja_reading.lines().count() == 1 && !c.ja_reading.contains('\t'));
            assert!(!c.en.contains(['\t', '\n']) && c.en.trim() == c.en);
            assert!(
                !c.ja_reading
                    .chars()
                    .any(|ch| ch.is_ascii_digit() || ('０'..='９').contains(&ch)),
                "{}: digits are read unpredictably, write kanji",
                c.id
            );
        }
    }

    #[test]
    fn every_number_to_999_displays_its_digits_and_reads_as_words() {
        for n in 0..=999 {
            let ids = number_clips(n).unwrap();
            assert_eq!(text_ja(&ids), zenkaku(n), "{n}: {ids:?}");
            assert_eq!(text_en(&ids), words(n), "{n}: {ids:?}");
            assert!(ids.iter().all(|id| clip(id).is_some()));
        }
        assert_eq!(number_clips(1000), None);
        assert_eq!(number_clips(115).unwrap(), ["num_1xx", "num_15"]);
        assert_eq!(number_clips(105).unwrap(), ["num_10x", "num_5"]);
        assert_eq!(number_clips(20).unwrap(), ["num_20"]);
        assert_eq!(text_en(&number_clips(115).unwrap()), "one hundred fifteen");
    }

    #[test]
    fn every_number_clip_is_used() {
        let used: BTreeSet<&str> = (0..=999).flat_map(|n| number_clips(n).unwrap()).collect();
        let numbers: BTreeSet<&str> = CLIPS
            .iter()
            .map(|c| c.id)
            .filter(|id| id.starts_with("num_"))
            .collect();
        assert_eq!(used, numbers);
    }

    #[test]
    fn every_announcement_is_made_of_catalogue_clips_and_its_texts_follow_from_them() {
        // Everything but the seconds exhaustively, with seconds at the edges…
        let edge_seconds = [
            None,
            Some(0),
            Some(1),
            Some(2),
            Some(9),
            Some(10),
            Some(20),
            Some(25),
            Some(100),
            Some(105),
            Some(115),
            Some(999),
            Some(1000),
            Some(u32::MAX),
        ];
        for style in STYLES {
            for label in LABELS {
                for class in CLASSES {
                    for warning in [false, true] {
                        for flags in all_flags() {
                            for secs in edge_seconds {
                                let s = Spoken {
                                    label,
                                    class,
                                    warning,
                                    seconds_left: secs,
                                    flags,
                                };
                                assert_consistent(&announcement(style, s));
                            }
                        }
                    }
                }
            }
        }
        // …and every second 0–999 with every class and style.
        for style in STYLES {
            for class in CLASSES {
                for secs in 0..=999 {
                    let u = announcement(style, spoken(class, Some(secs)));
                    assert_consistent(&u);
                    if style == AudioStyle::Numbers && class.is_some() {
                        assert!(text_ja(&u.ja).ends_with(&format!("あと{}秒。", zenkaku(secs))));
                        let unit = if secs == 1 { "second" } else { "seconds" };
                        assert!(text_en(&u.en).ends_with(&format!("in {} {unit}.", words(secs))));
                    }
                }
            }
        }
        for label in LABELS {
            assert_consistent(&cancellation(label));
        }
        for n in 0..=u8::MAX {
            let u = countdown(n);
            assert_consistent(&u);
            assert_eq!(texts(&u), (zenkaku(n.into()), words(n.into())));
        }
    }

    #[test]
    fn numbers_style_says_class_and_seconds_in_the_guideline_form() {
        let u = announcement(
            AudioStyle::Numbers,
            spoken(Some(Intensity::FiveLower), Some(20)),
        );
        assert_eq!(u.ja, ["eew", "shindo_5_lower", "ato", "num_20", "seconds"]);
        assert_eq!(
            texts(&u),
            (
                "緊急地震速報。震度５弱。あと２０秒。".to_owned(),
                "Earthquake early warning. Expected intensity 5 lower. Shaking in twenty seconds."
                    .to_owned()
            )
        );
        let one = announcement(AudioStyle::Numbers, spoken(Some(Intensity::Four), Some(1)));
        assert_eq!(text_ja(&one.ja), "緊急地震速報。震度４。あと１秒。");
        assert!(text_en(&one.en).ends_with("Shaking in one second."));
        let arrived = announcement(AudioStyle::Numbers, spoken(Some(Intensity::Four), None));
        assert_eq!(
            text_ja(&arrived.ja),
            "緊急地震速報。震度４。強い揺れに警戒してください。"
        );
    }

    #[test]
    fn phrase_style_states_no_numbers_and_exercises_say_so_first() {
        let mut s = spoken(Some(Intensity::SixUpper), Some(12));
        s.label = Label::Training;
        s.flags.deep = true;
        let (ja, en) = texts(&announcement(AudioStyle::Phrase, s));
        assert_eq!(
            ja,
            "これは訓練です。緊急地震速報。地震です。落ち着いて身を守ってください。深発地震です。"
        );
        assert!(!ja.contains('６') && !en.contains('6'));
        assert!(en.starts_with("This is a drill."));
        s.label = Label::Test;
        let (ja, en) = texts(&announcement(AudioStyle::Phrase, s));
        assert!(ja.starts_with("配信テストです。緊急地震速報。"));
        assert!(en.starts_with("This is a delivery test. "));
    }

    #[test]
    fn low_accuracy_reports_say_so_last() {
        let mut s = spoken(Some(Intensity::Four), None);
        s.flags.plum = true;
        s.flags.single_station = true;
        let (ja, _) = texts(&announcement(AudioStyle::Numbers, s));
        assert!(ja.ends_with("ＰＬＵＭ法による予想を含みます。一点の観測による情報です。"));
        s.flags.level_method = true;
        let (ja, _) = texts(&announcement(AudioStyle::Numbers, s));
        assert!(ja.ends_with("ＰＬＵＭ法による予想を含みます。強い揺れを観測した地点があります。"));
    }

    #[test]
    fn countdown_and_cancel_texts() {
        assert_eq!(texts(&countdown(10)), ("１０".to_owned(), "ten".to_owned()));
        assert_eq!(
            texts(&cancellation(Label::Real)),
            (
                "緊急地震速報を解除します。".to_owned(),
                "The earthquake early warning is cancelled.".to_owned()
            )
        );
        assert!(text_ja(&cancellation(Label::Test).ja).starts_with("配信テストです。"));
        assert!(text_ja(&cancellation(Label::Drill).ja).starts_with("これは訓練です。"));
    }
}
