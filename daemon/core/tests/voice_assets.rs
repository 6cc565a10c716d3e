//! The pre-rendered voice clips in `assets/voice/` match the catalogue
//! (`eew_core::engine::voice::CLIPS`):
//!
//! - every catalogue id has `ja/<id>.wav` and `en/<id>.wav`, and every WAV file there is a
//!   catalogue id (nothing stale, nothing missing);
//! - every file is a plain RIFF/WAVE of 16 kHz, mono, signed 16-bit PCM with sound in it,
//!   peak-normalised near −3 dBFS (what `scripts/render-voice` makes and the audio output
//!   plays without converting);
//! - `assets/voice/clips.tsv`, written by the same render, lists exactly the catalogue's
//!   ids, readings and English texts: a catalogue change without a new render fails here.
//!
//! After changing the catalogue: `scripts/render-voice`, then review the phonemes in
//! `assets/voice/clips.tsv`.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test crate: the assets are read from disk and a broken asset should stop the run"
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use eew_core::engine::voice::{CLIPS, clip};

const LANGS: [&str; 2] = ["ja", "en"];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/voice")
}

/// What the `fmt ` and `data` chunks of a WAV file say.
#[derive(Debug, PartialEq)]
struct Wav {
    format: u16,
    channels: u16,
    rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    samples: Vec<i16>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a RIFF/WAVE file by hand: the header, then every chunk (`fmt `, `data`, and
/// any other, skipped), each padded to an even length.
fn parse_wav(b: &[u8]) -> Result<Wav, String> {
    if b.get(0..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WAVE") {
        return Err("not RIFF/WAVE".into());
    }
    let riff_len = u32_at(b, 4).ok_or("no RIFF length")? as usize;
    if riff_len + 8 != b.len() {
        return Err(format!(
            "RIFF length {riff_len} + 8 is not the file length {}",
            b.len()
        ));
    }
    let mut fmt = None;
    let mut data = None;
    let mut at = 12;
    while at < b.len() {
        let id = b.get(at..at + 4).ok_or("truncated chunk header")?;
        let len = u32_at(b, at + 4).ok_or("truncated chunk header")? as usize;
        let body = b
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| format!("chunk {:?} runs past the end", String::from_utf8_lossy(id)))?;
        match id {
            b"fmt " => {
                if fmt.is_some() {
                    return Err("two fmt chunks".into());
                }
                fmt = Some(body);
            }
            b"data" => {
                if data.is_some() {
                    return Err("two data chunks".into());
                }
                data = Some(body);
            }
            _ => {}
        }
        at += 8 + len + len % 2;
    }
    let fmt = fmt.ok_or("no fmt chunk")?;
    let data = data.ok_or("no data chunk")?;
    if fmt.len() < 16 {
        return Err("fmt chunk too short".into());
    }
    if data.len() % 2 != 0 {
        return Err("odd data length for 16-bit samples".into());
    }
    Ok(Wav {
        format: u16_at(fmt, 0).ok_or("fmt")?,
        channels: u16_at(fmt, 2).ok_or("fmt")?,
        rate: u32_at(fmt, 4).ok_or("fmt")?,
        byte_rate: u32_at(fmt, 8).ok_or("fmt")?,
        block_align: u16_at(fmt, 12).ok_or("fmt")?,
        bits: u16_at(fmt, 14).ok_or("fmt")?,
        samples: data
            .chunks_exact(2)
            .filter_map(|s| s.try_into().ok().map(i16::from_le_bytes))
            .collect(),
    })
}

/// The WAV files under `assets/voice`, at any depth, relative to it.
fn wav_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wav_files(&path, root, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

#[test]
fn every_catalogue_clip_has_a_wav_in_each_language() {
    let missing: Vec<String> = CLIPS
        .iter()
        .flat_map(|c| LANGS.map(|lang| format!("{lang}/{}.wav", c.id)))
        .filter(|rel| !assets().join(rel).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "missing clips (run scripts/render-voice): {missing:?}"
    );
}

#[test]
fn every_wav_is_a_catalogue_clip_in_a_language_directory() {
    let root = assets();
    let mut files = Vec::new();
    wav_files(&root, &root, &mut files);
    let stray: Vec<&PathBuf> = files
        .iter()
        .filter(|rel| {
            let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap_or("")).collect();
            match parts.as_slice() {
                [lang, file] => {
                    !(LANGS.contains(lang)
                        && file
                            .strip_suffix(".wav")
                            .is_some_and(|id| clip(id).is_some()))
                }
                _ => true,
            }
        })
        .collect();
    assert!(
        stray.is_empty(),
        "WAV files that are not catalogue clips (run scripts/render-voice): {stray:?}"
    );
    assert_eq!(files.len(), CLIPS.len() * LANGS.len());
}

#[test]
fn every_wav_is_16_khz_mono_16_bit_pcm_with_sound_near_minus_3_dbfs() {
    for c in CLIPS {
        for lang in LANGS {
            let path = assets().join(lang).join(format!("{}.wav", c.id));
            let bytes = fs::read(&path).unwrap();
            let wav = parse_wav(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let what = path.display();
            assert_eq!(wav.format, 1, "{what}: not PCM");
            assert_eq!(wav.channels, 1, "{what}: not mono");
            assert_eq!(wav.rate, 16_000, "{what}: not 16 kHz");
            assert_eq!(wav.bits, 16, "{what}: not 16-bit");
            assert_eq!(wav.block_align, 2, "{what}: block align");
            assert_eq!(wav.byte_rate, 32_000, "{what}: byte rate");
            // At least 0.1 s (the shortest clip, 「に」, is about 0.18 s with its 2 × 30 ms of
            // silence) and at most 10 s: a clip, not a recording.
            assert!(
                (1_600..=160_000).contains(&wav.samples.len()),
                "{what}: {} samples",
                wav.samples.len()
            );
            // −3 dBFS is 0.708 of full scale; between −4 and −2 dBFS allows other tools.
            let peak = wav
                .samples
                .iter()
                .map(|s| i32::from(*s).abs())
                .max()
                .unwrap_or(0);
            let peak = f64::from(peak) / 32_768.0;
            assert!(
                (0.63..=0.80).contains(&peak),
                "{what}: peak {peak:.3} of full scale"
            );
        }
    }
}

#[test]
fn the_render_manifest_matches_the_catalogue() {
    let text = fs::read_to_string(assets().join("clips.tsv")).unwrap();
    let rendered: Vec<(String, String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "clips.tsv line {l:?}");
            // Open JTalk read something: more than the silences around it.
            assert!(
                f[3].split(' ').any(|p| p != "sil" && p != "pau"),
                "clips.tsv: {} has no phonemes",
                f[0]
            );
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    let catalogue: Vec<(String, String, String)> = CLIPS
        .iter()
        .map(|c| (c.id.to_owned(), c.ja_reading.to_owned(), c.en.to_owned()))
        .collect();
    assert_eq!(
        rendered, catalogue,
        "the catalogue changed since the clips were rendered: run scripts/render-voice"
    );
    let ids: BTreeSet<&str> = CLIPS.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), CLIPS.len());
}

#[test]
fn the_wav_parser_rejects_what_the_player_could_not_play() {
    let good = fs::read(assets().join("ja").join(format!("{}.wav", CLIPS[0].id))).unwrap();
    assert!(parse_wav(&good).is_ok());
    assert!(parse_wav(&good[..good.len() - 1]).is_err(), "truncated");
    assert!(parse_wav(b"RIFF\x04\x00\x00\x00WAVE").is_err(), "no chunks");
    let mut not_wave = good.clone();
    not_wave[8..12].copy_from_slice(b"AVI ");
    assert!(parse_wav(&not_wave).is_err());
}
