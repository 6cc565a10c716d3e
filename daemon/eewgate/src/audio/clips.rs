//! The voice clips embedded in the binary by `build.rs` (from `assets/voice/<lang>/<id>.wav`)
//! and a bank that hands them out decoded at the output's rate.

use std::collections::HashMap;
use std::sync::Arc;

use super::Lang;
use super::dsp::resample_linear;
use super::wav;

include!(concat!(env!("OUT_DIR"), "/voice_clips.rs"));

/// The WAV bytes of clip `id` in `lang`, if embedded.
pub fn embedded(lang: Lang, id: &str) -> Option<&'static [u8]> {
    let lang = lang.as_str();
    EMBEDDED
        .binary_search_by(|(l, i, _)| (*l, *i).cmp(&(lang, id)))
        .ok()
        .and_then(|at| EMBEDDED.get(at))
        .map(|(_, _, b)| *b)
}

/// The ids of `eew_core`'s clip catalogue that are not embedded (or not playable) for
/// `lang`, as `lang/id`.
pub fn missing_from_catalogue(lang: Lang) -> Vec<String> {
    eew_core::engine::voice::CLIPS
        .iter()
        .filter(|c| embedded(lang, c.id).is_none_or(|b| wav::parse(b).is_err()))
        .map(|c| format!("{}/{}", lang.as_str(), c.id))
        .collect()
}

/// Why a clip cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    /// Not in the binary.
    #[error("missing clip {lang}/{id}")]
    Missing {
        /// Language.
        lang: &'static str,
        /// Clip id.
        id: String,
    },
    /// In the binary but not a playable WAV.
    #[error("clip {lang}/{id} is not playable: {err}")]
    Bad {
        /// Language.
        lang: &'static str,
        /// Clip id.
        id: String,
        /// What is wrong with it.
        err: wav::WavError,
    },
}

/// Decoded clips at the output rate, converted on first use and kept.
///
/// Converting lazily keeps memory to what is actually said (the whole catalogue at
/// 48 kHz would be tens of MiB on a small board); a conversion takes well under a
/// millisecond per clip, far below a 20 ms period.
#[derive(Debug)]
pub struct ClipBank {
    rate: u32,
    cache: HashMap<(Lang, String), Arc<[i16]>>,
    /// Extra clips (tests), looked up before the embedded ones.
    extra: HashMap<(Lang, String), Arc<[i16]>>,
}

impl ClipBank {
    /// A bank producing samples at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            cache: HashMap::new(),
            extra: HashMap::new(),
        }
    }

    /// Adds or replaces a clip given as mono samples at the output rate (tests).
    #[cfg(test)]
    pub fn insert(&mut self, lang: Lang, id: &str, samples: Vec<i16>) {
        self.extra.insert((lang, id.to_owned()), samples.into());
    }

    /// Clip `id` in `lang` as mono samples at the output rate.
    pub fn get(&mut self, lang: Lang, id: &str) -> Result<Arc<[i16]>, ClipError> {
        let key = (lang, id.to_owned());
        if let Some(s) = self.extra.get(&key).or_else(|| self.cache.get(&key)) {
            return Ok(s.clone());
        }
        let bytes = embedded(lang, id).ok_or_else(|| ClipError::Missing {
            lang: lang.as_str(),
            id: id.to_owned(),
        })?;
        let pcm = wav::parse(bytes).map_err(|err| ClipError::Bad {
            lang: lang.as_str(),
            id: id.to_owned(),
            err,
        })?;
        let samples: Arc<[i16]> = resample_linear(&pcm.mono(), pcm.rate, self.rate).into();
        self.cache.insert(key, samples.clone());
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        let keys: Vec<(&str, &str)> = EMBEDDED.iter().map(|(l, i, _)| (*l, *i)).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn every_catalogue_clip_is_embedded_in_both_languages_as_16k_mono_pcm() {
        for lang in [Lang::Ja, Lang::En] {
            assert_eq!(missing_from_catalogue(lang), Vec::<String>::new());
            for c in eew_core::engine::voice::CLIPS {
                let pcm = wav::parse(embedded(lang, c.id).unwrap()).unwrap();
                assert_eq!((pcm.rate, pcm.channels), (16000, 1), "{lang:?}/{}", c.id);
                assert!(pcm.seconds() > 0.1, "{lang:?}/{} is too short", c.id);
            }
        }
    }

    #[test]
    fn an_unknown_clip_is_an_error() {
        let mut bank = ClipBank::new(48000);
        assert_eq!(
            bank.get(Lang::Ja, "no_such_clip"),
            Err(ClipError::Missing {
                lang: "ja",
                id: "no_such_clip".into()
            })
        );
    }
}
