//! WAV files: reading RIFF PCM 16-bit (the clips, an operator's chime, the tests reading
//! back what the WAV sink wrote) and writing them (the WAV sink).
//!
//! Only what the appliance needs: integer PCM, 16 bits, one or two channels. Chunk
//! walking never indexes: every read goes through `get`, so a truncated or hostile file
//! is an error, never a panic.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Sample rates accepted from files (common rates from telephone to studio).
pub(crate) const RATES: &[u32] = &[
    8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000,
];

/// Why bytes are not a WAV file the appliance can play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// No `RIFF…WAVE` header.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// No `fmt ` chunk before the data.
    #[error("no \"fmt \" chunk")]
    NoFormat,
    /// No `data` chunk.
    #[error("no \"data\" chunk")]
    NoData,
    /// Compressed or floating-point samples.
    #[error("format tag {0} is not integer PCM (export as 16-bit PCM)")]
    NotPcm(u16),
    /// Not 16 bits per sample.
    #[error("{0}-bit samples; only 16-bit PCM is supported")]
    Bits(u16),
    /// More than two channels, or none.
    #[error("{0} channels; only mono or stereo is supported")]
    Channels(u16),
    /// An unusual sample rate.
    #[error(
        "sample rate {0} Hz is not one of 8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000"
    )]
    Rate(u32),
    /// A chunk runs past the end of the file.
    #[error("truncated (a chunk runs past the end of the file)")]
    Truncated,
    /// No samples at all.
    #[error("contains no samples")]
    Empty,
}

/// Decoded PCM: interleaved 16-bit samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcm {
    /// Frames per second.
    pub rate: u32,
    /// 1 or 2.
    pub channels: u16,
    /// Interleaved samples (`frames × channels`).
    pub samples: Vec<i16>,
}

impl Pcm {
    /// The samples as one channel (stereo is averaged).
    pub fn mono(&self) -> Vec<i16> {
        super::dsp::to_mono(&self.samples, self.channels)
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.rate.max(1))
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}

/// Parses a RIFF WAV file holding 16-bit integer PCM, mono or stereo, at a common rate.
pub fn parse(bytes: &[u8]) -> Result<Pcm, WavError> {
    if bytes.get(0..4) != Some(b"RIFF".as_slice()) || bytes.get(8..12) != Some(b"WAVE".as_slice()) {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut format: Option<(u16, u32)> = None;
    while let (Some(id), Some(size)) = (
        bytes.get(at..at.saturating_add(4)),
        u32_at(bytes, at.saturating_add(4)),
    ) {
        let body = at.saturating_add(8);
        let size = usize::try_from(size).map_err(|_| WavError::Truncated)?;
        if id == b"fmt " {
            let tag = u16_at(bytes, body).ok_or(WavError::Truncated)?;
            let channels = u16_at(bytes, body + 2).ok_or(WavError::Truncated)?;
            let rate = u32_at(bytes, body + 4).ok_or(WavError::Truncated)?;
            let bits = u16_at(bytes, body + 14).ok_or(WavError::Truncated)?;
            let real_tag = if tag == FORMAT_EXTENSIBLE {
                // cbSize(2) validBits(2) channelMask(4), then the sub-format GUID.
                u16_at(bytes, body + 24).ok_or(WavError::Truncated)?
            } else {
                tag
            };
            if real_tag != FORMAT_PCM {
                return Err(WavError::NotPcm(real_tag));
            }
            if bits != 16 {
                return Err(WavError::Bits(bits));
            }
            if !(1..=2).contains(&channels) {
                return Err(WavError::Channels(channels));
            }
            if !RATES.contains(&rate) {
                return Err(WavError::Rate(rate));
            }
            format = Some((channels, rate));
        } else if id == b"data" {
            let (channels, rate) = format.ok_or(WavError::NoFormat)?;
            // Streaming writers leave the size at 0 or 0xFFFFFFFF: take what is there.
            let end = body.saturating_add(size).min(bytes.len());
            let data = bytes.get(body..end).ok_or(WavError::Truncated)?;
            let samples: Vec<i16> = data
                .chunks_exact(2)
                .map(|c| {
                    i16::from_le_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            if samples.len() < usize::from(channels) {
                return Err(WavError::Empty);
            }
            return Ok(Pcm {
                rate,
                channels,
                samples,
            });
        }
        // Chunks are padded to an even size.
        at = body
            .checked_add(size)
            .and_then(|n| n.checked_add(size & 1))
            .ok_or(WavError::Truncated)?;
    }
    Err(if format.is_some() {
        WavError::NoData
    } else {
        WavError::NoFormat
    })
}

/// The 44-byte header of a 16-bit PCM WAV file with `frames` frames.
pub fn header(rate: u32, channels: u16, frames: u32) -> [u8; 44] {
    let block = channels.saturating_mul(2);
    let data = frames.saturating_mul(u32::from(block));
    let mut h = [0u8; 44];
    let mut put = |at: usize, b: &[u8]| {
        if let Some(dst) = h.get_mut(at..at + b.len()) {
            dst.copy_from_slice(b);
        }
    };
    put(0, b"RIFF");
    put(4, &data.saturating_add(36).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &FORMAT_PCM.to_le_bytes());
    put(22, &channels.to_le_bytes());
    put(24, &rate.to_le_bytes());
    put(28, &rate.saturating_mul(u32::from(block)).to_le_bytes());
    put(32, &block.to_le_bytes());
    put(34, &16u16.to_le_bytes());
    put(36, b"data");
    put(40, &data.to_le_bytes());
    h
}

/// Encodes mono samples as a complete WAV file (tests, small files).
pub fn encode(rate: u32, samples: &[i16]) -> Vec<u8> {
    let frames = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let mut out = header(rate, 1, frames).to_vec();
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Writes a mono 16-bit WAV file as samples come; the sizes in the header are patched
/// when it is finished (and on drop, so an error path still leaves a readable file).
#[derive(Debug)]
pub struct WavWriter {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    rate: u32,
    frames: u32,
}

impl WavWriter {
    /// Creates `path` (failing if it exists) with a header for zero frames.
    pub fn create(path: &Path, rate: u32) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let mut file = BufWriter::new(file);
        file.write_all(&header(rate, 1, 0))?;
        Ok(Self {
            file: Some(file),
            path: path.to_owned(),
            rate,
            frames: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("the WAV file is already finished"));
        };
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        f.write_all(&bytes)?;
        self.frames = self
            .frames
            .saturating_add(u32::try_from(samples.len()).unwrap_or(u32::MAX));
        Ok(())
    }

    /// Patches the header's sizes and flushes; returns the number of frames written.
    pub fn finish(&mut self) -> std::io::Result<u32> {
        let Some(mut f) = self.file.take() else {
            return Ok(self.frames);
        };
        f.flush()?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header(self.rate, 1, self.frames))?;
        f.flush()?;
        Ok(self.frames)
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if let Err(err) = self.finish() {
            tracing::warn!(path = %self.path.display(), error = %err, "WAV file not finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 30) as i16).collect();
        let bytes = encode(16000, &samples);
        let pcm = parse(&bytes).unwrap();
        assert_eq!(pcm.rate, 16000);
        assert_eq!(pcm.channels, 1);
        assert_eq!(pcm.samples, samples);
    }

    #[test]
    fn writer_patches_the_header() {
        let dir = std::env::temp_dir().join(format!("eewgate-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.wav");
        let _ = std::fs::remove_file(&path);
        let mut w = WavWriter::create(&path, 48000).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        w.write(&[4]).unwrap();
        assert_eq!(w.finish().unwrap(), 4);
        let pcm = parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(pcm.samples, vec![1, 2, 3, 4]);
        assert_eq!(pcm.rate, 48000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        assert_eq!(parse(b""), Err(WavError::NotWav));
        assert_eq!(parse(b"RIFF\0\0\0\0WAVE"), Err(WavError::NoFormat));
        let good = encode(16000, &[1, 2, 3]);
        for cut in 0..good.len() {
            let _ = parse(good.get(..cut).unwrap());
        }
        // 8-bit, 3 channels, odd rate, float.
        let mut b = good.clone();
        b[34] = 8;
        assert_eq!(parse(&b), Err(WavError::Bits(8)));
        let mut b = good.clone();
        b[22] = 3;
        assert_eq!(parse(&b), Err(WavError::Channels(3)));
        let mut b = good.clone();
        b[24..28].copy_from_slice(&12345u32.to_le_bytes());
        assert_eq!(parse(&b), Err(WavError::Rate(12345)));
        let mut b = good;
        b[20] = 3;
        assert_eq!(parse(&b), Err(WavError::NotPcm(3)));
        // A chunk size that would overflow.
        let mut b = b"RIFF\0\0\0\0WAVEjunk".to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&b).is_err());
    }

    #[test]
    fn stereo_is_mixed_down() {
        let pcm = Pcm {
            rate: 8000,
            channels: 2,
            samples: vec![100, 300, -100, -300],
        };
        assert_eq!(pcm.mono(), vec![200, -200]);
        assert_eq!(pcm.frames(), 2);
    }
}
