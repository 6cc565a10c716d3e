//! JMA seismic intensity classes (震度階級) and long-period ground-motion classes
//! (長周期地震動階級), with the ranges EEW reports carry.

use std::fmt;

use serde::{Serialize, Serializer};

/// One JMA seismic intensity class, ordered from weakest to strongest.
///
/// The wire spellings differ per format (`"04"`/`"5-"` in code telegrams, `"4"`/`"5-"` in
/// XML, `"5弱"` in some JSON); [`Intensity::as_str`] is the one spelling of the public
/// schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intensity {
    /// 震度0
    Zero,
    /// 震度1
    One,
    /// 震度2
    Two,
    /// 震度3
    Three,
    /// 震度4
    Four,
    /// 震度5弱
    FiveLower,
    /// 震度5強
    FiveUpper,
    /// 震度6弱
    SixLower,
    /// 震度6強
    SixUpper,
    /// 震度7
    Seven,
}

impl Intensity {
    /// Every class, weakest first.
    pub const ALL: [Intensity; 10] = [
        Intensity::Zero,
        Intensity::One,
        Intensity::Two,
        Intensity::Three,
        Intensity::Four,
        Intensity::FiveLower,
        Intensity::FiveUpper,
        Intensity::SixLower,
        Intensity::SixUpper,
        Intensity::Seven,
    ];

    /// The public-schema spelling: `"0" "1" "2" "3" "4" "5-" "5+" "6-" "6+" "7"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intensity::Zero => "0",
            Intensity::One => "1",
            Intensity::Two => "2",
            Intensity::Three => "3",
            Intensity::Four => "4",
            Intensity::FiveLower => "5-",
            Intensity::FiveUpper => "5+",
            Intensity::SixLower => "6-",
            Intensity::SixUpper => "6+",
            Intensity::Seven => "7",
        }
    }

    /// Japanese label as shown to people (`"5弱"`).
    pub fn label_ja(self) -> &'static str {
        match self {
            Intensity::Zero => "0",
            Intensity::One => "1",
            Intensity::Two => "2",
            Intensity::Three => "3",
            Intensity::Four => "4",
            Intensity::FiveLower => "5弱",
            Intensity::FiveUpper => "5強",
            Intensity::SixLower => "6弱",
            Intensity::SixUpper => "6強",
            Intensity::Seven => "7",
        }
    }

    /// Parses the two-character code-telegram form (`01`..`04`, `5-`..`6+`, `07`).
    /// There is no code for 0 in code telegrams. `//` is not an intensity: callers
    /// handle it as unknown or "or more".
    pub fn from_code_telegram(s: &str) -> Option<Self> {
        Some(match s {
            "01" => Intensity::One,
            "02" => Intensity::Two,
            "03" => Intensity::Three,
            "04" => Intensity::Four,
            "5-" => Intensity::FiveLower,
            "5+" => Intensity::FiveUpper,
            "6-" => Intensity::SixLower,
            "6+" => Intensity::SixUpper,
            "07" => Intensity::Seven,
            _ => return None,
        })
    }

    /// Parses the XML / DM-D.S.S JSON form (`0`..`7`, `5-`, `5+`, `6-`, `6+`).
    pub fn from_xml(s: &str) -> Option<Self> {
        Some(match s {
            "0" => Intensity::Zero,
            "1" => Intensity::One,
            "2" => Intensity::Two,
            "3" => Intensity::Three,
            "4" => Intensity::Four,
            "5-" => Intensity::FiveLower,
            "5+" => Intensity::FiveUpper,
            "6-" => Intensity::SixLower,
            "6+" => Intensity::SixUpper,
            "7" => Intensity::Seven,
            _ => return None,
        })
    }

    /// Parses the Japanese label used by third-party JSON (`"5弱"`, `"4"`).
    pub fn from_label_ja(s: &str) -> Option<Self> {
        Some(match s {
            "0" => Intensity::Zero,
            "1" => Intensity::One,
            "2" => Intensity::Two,
            "3" => Intensity::Three,
            "4" => Intensity::Four,
            "5弱" => Intensity::FiveLower,
            "5強" => Intensity::FiveUpper,
            "6弱" => Intensity::SixLower,
            "6強" => Intensity::SixUpper,
            "7" => Intensity::Seven,
            _ => return None,
        })
    }
}

impl fmt::Display for Intensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Intensity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The upper end of a predicted range: a class, or open ("or more", 程度以上).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upper<T> {
    /// Up to and including this value.
    At(T),
    /// The lower bound or more (`//` in code telegrams, `over` in XML).
    Over,
}

impl<T: Copy + Ord> Upper<T> {
    /// The highest value known to be predicted: the bound itself, or `lower` when open.
    pub fn or_lower(self, lower: T) -> T {
        match self {
            Upper::At(v) => v.max(lower),
            Upper::Over => lower,
        }
    }
}

impl Serialize for Upper<Intensity> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Upper::At(i) => i.serialize(s),
            Upper::Over => s.serialize_str("over"),
        }
    }
}

impl Serialize for Upper<u8> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Upper::At(i) => s.serialize_u8(*i),
            Upper::Over => s.serialize_str("over"),
        }
    }
}

/// A predicted intensity range. Invariant (checked by [`IntensityRange::new`]):
/// `lower <= upper` when the upper bound is a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct IntensityRange {
    /// The lower bound (e3e4 / `From`).
    pub lower: Intensity,
    /// The upper bound (e1e2 / `To`), or open.
    pub upper: Upper<Intensity>,
}

impl IntensityRange {
    /// A range; `None` when the bounds are inverted.
    pub fn new(lower: Intensity, upper: Upper<Intensity>) -> Option<Self> {
        match upper {
            Upper::At(u) if u < lower => None,
            _ => Some(Self { lower, upper }),
        }
    }

    /// A single class.
    pub fn exactly(i: Intensity) -> Self {
        Self {
            lower: i,
            upper: Upper::At(i),
        }
    }

    /// The strongest class the range states (the upper bound, or the lower bound when
    /// the range is open). Used to compare reports: "or more" never counts as less.
    pub fn max_class(&self) -> Intensity {
        self.upper.or_lower(self.lower)
    }
}

/// Highest long-period ground-motion class (長周期地震動階級).
pub const MAX_LONG_PERIOD_CLASS: u8 = 4;

/// A predicted long-period ground-motion class range (`ForecastLgInt From/To`).
/// Invariant: classes are 0..=4 and `lower <= upper`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LongPeriodRange {
    /// Lower bound (0–4).
    pub lower: u8,
    /// Upper bound (0–4) or open.
    pub upper: Upper<u8>,
}

impl LongPeriodRange {
    /// A range; `None` when a class is out of 0..=4 or the bounds are inverted.
    pub fn new(lower: u8, upper: Upper<u8>) -> Option<Self> {
        if lower > MAX_LONG_PERIOD_CLASS {
            return None;
        }
        match upper {
            Upper::At(u) if u < lower || u > MAX_LONG_PERIOD_CLASS => None,
            _ => Some(Self { lower, upper }),
        }
    }

    /// The class an output rule compares against: the highest stated class.
    pub fn max_class(&self) -> u8 {
        self.upper.or_lower(self.lower)
    }

    /// Parses one XML bound (`0`..`4`).
    pub fn parse_class(s: &str) -> Option<u8> {
        match s {
            "0" => Some(0),
            "1" => Some(1),
            "2" => Some(2),
            "3" => Some(3),
            "4" => Some(4),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_telegram_and_xml_spellings_agree_on_order() {
        let code = ["01", "02", "03", "04", "5-", "5+", "6-", "6+", "07"];
        let parsed: Vec<_> = code
            .iter()
            .map(|c| Intensity::from_code_telegram(c).unwrap())
            .collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]));
        for i in Intensity::ALL {
            assert_eq!(Intensity::from_xml(i.as_str()), Some(i));
            assert_eq!(Intensity::from_label_ja(i.label_ja()), Some(i));
        }
        assert_eq!(Intensity::from_code_telegram("//"), None);
        assert_eq!(Intensity::from_code_telegram("00"), None);
    }

    #[test]
    fn inverted_ranges_are_refused_and_open_ranges_compare_by_lower_bound() {
        assert!(IntensityRange::new(Intensity::SixLower, Upper::At(Intensity::Four)).is_none());
        let open = IntensityRange::new(Intensity::FiveLower, Upper::Over).unwrap();
        assert_eq!(open.max_class(), Intensity::FiveLower);
        assert_eq!(
            serde_json::to_string(&open).unwrap(),
            r#"{"lower":"5-","upper":"over"}"#
        );
        assert!(LongPeriodRange::new(3, Upper::At(2)).is_none());
        assert!(LongPeriodRange::new(5, Upper::Over).is_none());
        assert_eq!(
            LongPeriodRange::new(2, Upper::At(4)).unwrap().max_class(),
            4
        );
    }
}
