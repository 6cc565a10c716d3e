//! The words the audio output speaks, in Japanese and English.
//!
//! Two styles, as JMA's guideline describes (受信端末ガイドライン (3)4): numbers
//! (「震度５弱、あと２０秒」) or a fixed phrase (「地震です。落ち着いて身を守ってください」)
//! for sites that prefer not to state uncertain numbers. Either way the last seconds are
//! counted down. Exercises say so first; low-accuracy reports say so last (guideline
//! (1)12).

use crate::intensity::Intensity;
use crate::settings::AudioStyle;

use super::action::{AlertFlags, Label};

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

/// Full-width digits, as Japanese announcement scripts write them.
fn zenkaku(n: u32) -> String {
    n.to_string()
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0xFF10 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

fn class_ja(class: Intensity) -> String {
    let (digit, suffix) = match class {
        Intensity::Zero => (0, ""),
        Intensity::One => (1, ""),
        Intensity::Two => (2, ""),
        Intensity::Three => (3, ""),
        Intensity::Four => (4, ""),
        Intensity::FiveLower => (5, "弱"),
        Intensity::FiveUpper => (5, "強"),
        Intensity::SixLower => (6, "弱"),
        Intensity::SixUpper => (6, "強"),
        Intensity::Seven => (7, ""),
    };
    format!("震度{}{suffix}", zenkaku(digit))
}

fn class_en(class: Intensity) -> &'static str {
    match class {
        Intensity::Zero => "intensity 0",
        Intensity::One => "intensity 1",
        Intensity::Two => "intensity 2",
        Intensity::Three => "intensity 3",
        Intensity::Four => "intensity 4",
        Intensity::FiveLower => "intensity 5 lower",
        Intensity::FiveUpper => "intensity 5 upper",
        Intensity::SixLower => "intensity 6 lower",
        Intensity::SixUpper => "intensity 6 upper",
        Intensity::Seven => "intensity 7",
    }
}

fn exercise_prefix(label: Label) -> (&'static str, &'static str) {
    match label {
        Label::Real => ("", ""),
        Label::Training | Label::Drill => ("これは訓練です。", "This is a drill. "),
        Label::Test => ("これは試験です。", "This is a test. "),
    }
}

fn accuracy_suffix(flags: AlertFlags) -> (String, String) {
    let mut ja = String::new();
    let mut en = String::new();
    if flags.deep {
        ja.push_str("深発地震です。");
        en.push_str(" Deep earthquake.");
    }
    if flags.level_method {
        ja.push_str("強い揺れを観測した地点があります。");
        en.push_str(" Strong shaking was detected nearby.");
    } else if flags.single_station {
        ja.push_str("一点の観測による情報です。");
        en.push_str(" Based on a single station.");
    }
    (ja, en)
}

/// The alert announcement.
pub(crate) fn announcement(style: AudioStyle, s: Spoken) -> (String, String) {
    let (pre_ja, pre_en) = exercise_prefix(s.label);
    let (head_ja, head_en) = if s.warning {
        (
            "緊急地震速報、警報です。",
            "Earthquake early warning, public warning. ",
        )
    } else {
        ("緊急地震速報。", "Earthquake early warning. ")
    };
    let (body_ja, body_en) = match (style, s.class, s.seconds_left) {
        (AudioStyle::Phrase, _, _) => (
            "地震です。落ち着いて身を守ってください。".to_owned(),
            "Earthquake. Stay calm and protect yourself.".to_owned(),
        ),
        (AudioStyle::Numbers, Some(class), Some(secs)) => (
            format!("{}、あと{}秒。", class_ja(class), zenkaku(secs)),
            format!("Expected {}, in {secs} seconds.", class_en(class)),
        ),
        (AudioStyle::Numbers, Some(class), None) => (
            format!("{}。強い揺れに警戒してください。", class_ja(class)),
            format!("Expected {}. Strong shaking now.", class_en(class)),
        ),
        (AudioStyle::Numbers, None, _) => (
            "強い揺れに警戒してください。".to_owned(),
            "Beware of strong shaking.".to_owned(),
        ),
    };
    let (suf_ja, suf_en) = accuracy_suffix(s.flags);
    (
        format!("{pre_ja}{head_ja}{body_ja}{suf_ja}"),
        format!("{pre_en}{head_en}{body_en}{suf_en}"),
    )
}

/// The cancellation announcement.
pub(crate) fn cancellation(label: Label) -> (String, String) {
    let (pre_ja, pre_en) = exercise_prefix(label);
    (
        format!("{pre_ja}先ほどの緊急地震速報は取り消されました。"),
        format!("{pre_en}The earthquake early warning has been cancelled."),
    )
}

/// One countdown number.
pub(crate) fn countdown(seconds: u8) -> (String, String) {
    (zenkaku(u32::from(seconds)), seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoken(class: Option<Intensity>, secs: Option<u32>) -> Spoken {
        Spoken {
            label: Label::Real,
            class,
            warning: false,
            seconds_left: secs,
            flags: AlertFlags::default(),
        }
    }

    #[test]
    fn numbers_style_says_class_and_seconds_in_the_guideline_form() {
        let (ja, en) = announcement(
            AudioStyle::Numbers,
            spoken(Some(Intensity::FiveLower), Some(20)),
        );
        assert_eq!(ja, "緊急地震速報。震度５弱、あと２０秒。");
        assert_eq!(
            en,
            "Earthquake early warning. Expected intensity 5 lower, in 20 seconds."
        );
    }

    #[test]
    fn phrase_style_states_no_numbers_and_exercises_say_so_first() {
        let mut s = spoken(Some(Intensity::SixUpper), Some(12));
        s.label = Label::Training;
        s.flags.deep = true;
        let (ja, en) = announcement(AudioStyle::Phrase, s);
        assert_eq!(
            ja,
            "これは訓練です。緊急地震速報。地震です。落ち着いて身を守ってください。深発地震です。"
        );
        assert!(!ja.contains('６') && !en.contains('6'));
        assert!(en.starts_with("This is a drill."));
    }

    #[test]
    fn countdown_and_cancel_texts() {
        assert_eq!(countdown(10), ("１０".to_owned(), "10".to_owned()));
        assert!(cancellation(Label::Test).0.starts_with("これは試験です。"));
    }
}
