//! The player: a state machine ([`Core`]) that turns actions into a program of segments
//! (chime, clips, gaps) and renders it period by period, and the blocking thread
//! ([`run`]) that owns the sink and feeds it.
//!
//! Rules (ADR 0009):
//! - An `Announce` for a new event (another event, or nothing playing) starts an
//!   *episode*: the chime, then the clips of each configured language, the whole said
//!   `repeat` times.
//! - An `Announce` for the event being played replaces the rest of the current one at
//!   the next clip boundary: no second chime, and never a queue of stale announcements
//!   (a newer update replaces one still waiting for its boundary).
//! - A `Countdown` is said at once, in the first configured language only (a number a
//!   second leaves no time for two): the current sound fades out over [`FADE`] and the
//!   number follows; each countdown replaces the previous one. Except that an episode's
//!   *opening* is never cut by a countdown: the chime and, in the first language, the
//!   first pass up to the intensity (or the fixed phrase) — 「（これは訓練です。）緊急地震
//!   速報、警報です。震度５弱。」 — are said first, so the PA never plays bare numbers
//!   without saying what they count down to. A countdown arriving during the opening
//!   waits for its end (only the newest one is kept: a late number would be wrong).
//! - A `Stop` fades out over [`FADE`] and ends the episode.
//!
//! The core never blocks and never reads a clock: the thread measures latencies. Tests
//! drive it directly, period by period.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use eew_core::engine::{Action, ActionKind};

use super::Lang;
use super::clips::ClipBank;
use super::dsp::{Fade, apply_gain, resample_linear, volume_gain};
use super::settings::{AudioConfig, Chime};
use super::sink::{Sink, SinkError};

/// One period: the player checks for commands between periods, so a command takes
/// effect within one.
pub const PERIOD: Duration = Duration::from_millis(20);
/// Fade-out when sound is cut (stop, countdown, another event): short enough that
/// silence follows within 50 ms, long enough not to click.
pub const FADE: Duration = Duration::from_millis(10);
/// Silence after the chime.
pub const GAP_AFTER_CHIME: Duration = Duration::from_millis(300);
/// Silence between languages and between repeats.
pub const GAP_BETWEEN: Duration = Duration::from_millis(400);
/// How often a sink that failed is opened again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(5);

fn samples_for(d: Duration, rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(rate)).round() as usize
}

/// What is played, fixed for the life of the player.
#[derive(Clone, Debug)]
pub struct PlayerSettings {
    /// Languages in order.
    pub languages: Vec<Lang>,
    /// Times an announcement is said.
    pub repeat: u8,
    /// Gain applied to every sample.
    pub gain: f32,
    /// The chime.
    pub chime: Chime,
}

impl PlayerSettings {
    /// From `[audio]`.
    pub fn from_config(cfg: &AudioConfig) -> Self {
        Self {
            languages: cfg.languages.clone(),
            repeat: cfg.repeat.max(1),
            gain: volume_gain(cfg.volume),
            chime: cfg.chime.clone(),
        }
    }
}

#[derive(Clone, Debug)]
enum Audio {
    Samples(Arc<[i16]>),
    Silence(usize),
}

/// A piece of the program: a chime, a clip or a gap, owned by the action that asked.
#[derive(Clone, Debug)]
struct Segment {
    /// `chime:alert`, `ja:eew`; `None` for gaps.
    label: Option<String>,
    audio: Audio,
    owner: u64,
    /// The chime and the gap after it: an update in place keeps them.
    lead: bool,
    /// Part of an episode's opening, which a countdown does not cut.
    opening: bool,
}

impl Segment {
    fn len(&self) -> usize {
        match &self.audio {
            Audio::Samples(s) => s.len(),
            Audio::Silence(n) => *n,
        }
    }
}

/// An action whose sound is queued or playing.
#[derive(Debug)]
struct Owner {
    token: u64,
    action: Action,
    clips: Vec<String>,
    started: bool,
}

/// What happens once a cut's fade is over.
#[derive(Debug)]
enum Then {
    /// The episode ends.
    End,
    /// The same episode goes on with these.
    Continue(VecDeque<Segment>),
    /// The episode ends and another starts (another event).
    NewEpisode(Option<String>, VecDeque<Segment>),
}

#[derive(Debug)]
struct Cut {
    fade: Fade,
    then: Then,
}

#[derive(Debug)]
struct Episode {
    event_id: Option<String>,
    begun: bool,
}

/// What the core reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// The first sample of an action's sound is in this period.
    Started {
        /// The action.
        action: Action,
        /// What it plays, in order (`chime:alert`, `ja:eew`, …), repeats included.
        clips: Vec<String>,
    },
    /// A stop's fade ended in this period (or nothing was playing).
    Stopped {
        /// The stop.
        action: Action,
        /// Nothing was playing.
        idle: bool,
    },
    /// An action was replaced before any of it was played.
    Superseded {
        /// The action.
        action: Action,
    },
    /// A clip could not be played (`missing clip ja/xyz`); the rest plays.
    Missing(String),
    /// A chime or clip starts playing (`chime:alert`, `ja:eew`): the exact sequence heard.
    Segment(String),
}

/// What one render produced.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Samples written into the buffer.
    pub len: usize,
    /// An episode begins with this buffer (its event id): the sink opens it first.
    pub begin: Option<Option<String>>,
    /// The episode ended with this buffer.
    pub end: bool,
    /// What happened.
    pub notes: Vec<Note>,
}

/// The player's state machine.
#[derive(Debug)]
pub struct Core {
    settings: PlayerSettings,
    rate: u32,
    bank: ClipBank,
    chime: Arc<[i16]>,
    next_token: u64,
    episode: Option<Episode>,
    current: Option<(Segment, usize)>,
    queue: VecDeque<Segment>,
    /// Replaces `queue` at the next segment boundary (an update in place).
    replacement: Option<VecDeque<Segment>>,
    /// A countdown waiting for the episode's opening to be said.
    deferred: Option<VecDeque<Segment>>,
    /// The clips of the announcement now being said, said so far (an update continues
    /// after the part it shares with them instead of starting over).
    said: Vec<String>,
    cut: Option<Cut>,
    owners: Vec<Owner>,
    /// Stops waiting for their fade to end.
    stops: Vec<Action>,
}

impl Core {
    /// A core rendering at `rate` Hz.
    pub fn new(settings: PlayerSettings, rate: u32) -> Self {
        let chime = chime_samples(&settings.chime, rate);
        Self {
            settings,
            rate,
            bank: ClipBank::new(rate),
            chime,
            next_token: 0,
            episode: None,
            current: None,
            queue: VecDeque::new(),
            replacement: None,
            deferred: None,
            said: Vec::new(),
            cut: None,
            owners: Vec::new(),
            stops: Vec::new(),
        }
    }

    /// The rate it renders at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The clip bank (tests add their own clips).
    #[cfg(test)]
    pub fn bank_mut(&mut self) -> &mut ClipBank {
        &mut self.bank
    }

    /// True while an episode is playing (or about to).
    pub fn active(&self) -> bool {
        self.episode.is_some()
    }

    /// The event being played.
    pub fn playing_event(&self) -> Option<&str> {
        self.episode.as_ref().and_then(|e| e.event_id.as_deref())
    }

    fn segments_for(
        &mut self,
        token: u64,
        chime: bool,
        langs: &[(Lang, &[&str])],
        repeat: u8,
        notes: &mut Vec<Note>,
    ) -> (VecDeque<Segment>, Vec<String>) {
        let mut segs = VecDeque::new();
        let mut labels = Vec::new();
        if chime {
            segs.push_back(Segment {
                label: Some(self.settings.chime.label()),
                audio: Audio::Samples(self.chime.clone()),
                owner: token,
                lead: true,
                opening: true,
            });
            labels.push(self.settings.chime.label());
            segs.push_back(Segment {
                label: None,
                audio: Audio::Silence(samples_for(GAP_AFTER_CHIME, self.rate)),
                owner: token,
                lead: true,
                opening: true,
            });
        }
        // Only an episode's first announcement (the one with the chime) has an opening.
        let opening_clips = if chime {
            langs.first().map_or(0, |(_, ids)| opening_len(ids))
        } else {
            0
        };
        let mut first = true;
        for _ in 0..repeat.max(1) {
            for (lang, ids) in langs {
                if ids.is_empty() {
                    continue;
                }
                if !first {
                    segs.push_back(Segment {
                        label: None,
                        audio: Audio::Silence(samples_for(GAP_BETWEEN, self.rate)),
                        owner: token,
                        lead: false,
                        opening: false,
                    });
                }
                let first_pass = first;
                first = false;
                for (i, id) in ids.iter().enumerate() {
                    match self.bank.get(*lang, id) {
                        Ok(samples) => {
                            let label = format!("{}:{id}", lang.as_str());
                            labels.push(label.clone());
                            segs.push_back(Segment {
                                label: Some(label),
                                audio: Audio::Samples(samples),
                                owner: token,
                                lead: false,
                                opening: first_pass && i < opening_clips,
                            });
                        }
                        Err(e) => {
                            let n = Note::Missing(e.to_string());
                            if !notes.contains(&n) {
                                notes.push(n);
                            }
                        }
                    }
                }
            }
        }
        (segs, labels)
    }

    fn owner(&mut self, action: Action, clips: Vec<String>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.owners.push(Owner {
            token,
            action,
            clips,
            started: false,
        });
        token
    }

    /// Takes one action; returns what can be said at once (superseded actions, a stop
    /// with nothing playing, missing clips).
    pub fn command(&mut self, action: Action) -> Vec<Note> {
        let mut notes = Vec::new();
        let same_event = self.active() && self.playing_event() == action.event_id.as_deref();
        let stopping = matches!(
            self.cut,
            Some(Cut {
                then: Then::End,
                ..
            })
        );
        match &action.kind {
            ActionKind::Announce {
                clips_ja, clips_en, ..
            } => {
                let chime = !same_event || stopping;
                let langs = self.lang_clips(clips_ja, clips_en, false);
                let token = self.next_token;
                let repeat = self.settings.repeat;
                let (segs, labels) = self.segments_for(token, chime, &langs, repeat, &mut notes);
                let event = action.event_id.clone();
                self.owner(action, labels);
                if !self.active() {
                    self.start_episode(event, segs);
                } else if same_event && !stopping {
                    // A newer announcement supersedes a countdown still waiting: the
                    // next number comes within a second if it is still due.
                    self.deferred = None;
                    match self.cut.as_mut() {
                        // A countdown is fading in: the update follows it instead.
                        Some(cut) => cut.then = Then::Continue(segs),
                        None => self.replacement = Some(segs),
                    }
                } else {
                    self.cut_to(Then::NewEpisode(event, segs));
                }
            }
            ActionKind::Countdown {
                clips_ja, clips_en, ..
            } => {
                let langs = self.lang_clips(clips_ja, clips_en, true);
                let token = self.next_token;
                let (segs, labels) = self.segments_for(token, false, &langs, 1, &mut notes);
                let event = action.event_id.clone();
                self.owner(action, labels);
                if !self.active() {
                    self.start_episode(event, segs);
                } else if same_event && !stopping && self.cut.is_none() && self.in_opening() {
                    // Said once the opening is over; a newer number replaces this one.
                    self.deferred = Some(segs);
                } else if same_event && !stopping {
                    self.replacement = None;
                    self.deferred = None;
                    self.cut_to(Then::Continue(segs));
                } else {
                    self.cut_to(Then::NewEpisode(event, segs));
                }
            }
            ActionKind::Stop => {
                if self.active() {
                    self.replacement = None;
                    self.cut_to(Then::End);
                    self.stops.push(action);
                } else {
                    notes.push(Note::Stopped { action, idle: true });
                }
            }
            _ => {}
        }
        self.collect_owners(&mut notes);
        notes
    }

    fn lang_clips<'a>(
        &self,
        ja: &'a [&'static str],
        en: &'a [&'static str],
        first_only: bool,
    ) -> Vec<(Lang, &'a [&'static str])> {
        let mut out: Vec<(Lang, &[&str])> = self
            .settings
            .languages
            .iter()
            .map(|l| match l {
                Lang::Ja => (Lang::Ja, ja),
                Lang::En => (Lang::En, en),
            })
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if first_only {
            out.truncate(1);
        }
        out
    }

    /// The episode's opening is playing or still to come.
    fn in_opening(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(seg, pos)| seg.opening && *pos < seg.len())
            || self.queue.iter().any(|s| s.opening)
    }

    fn start_episode(&mut self, event_id: Option<String>, segs: VecDeque<Segment>) {
        self.episode = Some(Episode {
            event_id,
            begun: false,
        });
        self.current = None;
        self.queue = segs;
        self.replacement = None;
        self.deferred = None;
        self.said.clear();
        self.cut = None;
    }

    /// Cuts the current sound with a fade; what was queued is dropped.
    fn cut_to(&mut self, then: Then) {
        self.queue.clear();
        self.replacement = None;
        self.deferred = None;
        match self.cut.as_mut() {
            // Already fading: keep the fade, change what follows.
            Some(cut) => cut.then = then,
            None => {
                self.cut = Some(Cut {
                    fade: Fade::new(samples_for(FADE, self.rate)),
                    then,
                });
            }
        }
    }

    /// Owners none of whose sound remains: not started → superseded; started → done.
    fn collect_owners(&mut self, notes: &mut Vec<Note>) {
        let mut live: Vec<u64> = Vec::new();
        let mut mark = |s: &Segment| {
            if !live.contains(&s.owner) {
                live.push(s.owner);
            }
        };
        if let Some((s, _)) = &self.current {
            mark(s);
        }
        self.queue.iter().for_each(&mut mark);
        if let Some(r) = &self.replacement {
            r.iter().for_each(&mut mark);
        }
        if let Some(d) = &self.deferred {
            d.iter().for_each(&mut mark);
        }
        if let Some(Cut {
            then: Then::Continue(s) | Then::NewEpisode(_, s),
            ..
        }) = &self.cut
        {
            s.iter().for_each(&mut mark);
        }
        let (keep, gone): (Vec<Owner>, Vec<Owner>) = std::mem::take(&mut self.owners)
            .into_iter()
            .partition(|o| live.contains(&o.token));
        self.owners = keep;
        for o in gone {
            if !o.started {
                notes.push(Note::Superseded { action: o.action });
            }
        }
    }

    /// Renders up to `out.len()` samples. A buffer never spans two episodes: when one
    /// ends the render returns early with `end` set, and the next render begins the next.
    pub fn render(&mut self, out: &mut [i16]) -> Rendered {
        let mut r = Rendered::default();
        if let Some(ep) = self.episode.as_mut()
            && !ep.begun
        {
            ep.begun = true;
            r.begin = Some(ep.event_id.clone());
        }
        if self.episode.is_none() {
            return r;
        }
        let mut filled = 0usize;
        while filled < out.len() {
            if let Some(cut) = self.cut.as_mut() {
                // Fade what is playing, then do what the cut says.
                let mut n = 0;
                if let Some((seg, pos)) = self.current.as_mut() {
                    let want = (out.len() - filled)
                        .min(seg.len() - *pos)
                        .min(cut.fade.left);
                    if let Some(dst) = out.get_mut(filled..filled + want) {
                        copy_segment(seg, *pos, dst);
                        apply_gain(dst, self.settings.gain);
                        n = cut.fade.apply(dst);
                    }
                    *pos += n;
                    filled += n;
                    if *pos >= seg.len() {
                        self.current = None;
                    }
                }
                if n == 0 || cut.fade.done() || self.current.is_none() {
                    let Some(cut) = self.cut.take() else { break };
                    self.current = None;
                    match cut.then {
                        Then::End => {
                            self.finish_episode(&mut r);
                            break;
                        }
                        Then::Continue(segs) => self.queue = segs,
                        Then::NewEpisode(event_id, segs) => {
                            self.finish_episode(&mut r);
                            self.start_episode(event_id, segs);
                            break;
                        }
                    }
                }
                continue;
            }
            let at_boundary = self
                .current
                .as_ref()
                .is_none_or(|(seg, pos)| *pos >= seg.len());
            if at_boundary {
                self.current = None;
                if let Some(mut rep) = self.replacement.take() {
                    // The chime (and its gap) still to come stay: the update replaces
                    // the words, not the opening of the episode. If the opening's words
                    // are not all said, the update's opening takes their place.
                    if self.queue.iter().any(|s| s.opening && !s.lead) {
                        mark_opening(&mut rep);
                    }
                    // The update goes on after what it shares with what was just said
                    // (「緊急地震速報、警報です。」 is not said twice; a frequent update
                    // never keeps the sentence from reaching the intensity).
                    let shared = self
                        .said
                        .iter()
                        .zip(rep.iter())
                        .take_while(|(a, b)| b.label.as_deref() == Some(a.as_str()))
                        .count();
                    rep.drain(..shared);
                    self.said.truncate(shared);
                    self.queue.retain(|s| s.lead);
                    self.queue.extend(rep);
                }
                if self.deferred.is_some() && !self.queue.iter().any(|s| s.opening) {
                    // The opening has been said: the waiting countdown replaces the rest.
                    if let Some(d) = self.deferred.take() {
                        self.queue = d;
                    }
                }
                match self.queue.pop_front() {
                    Some(seg) => self.current = Some((seg, 0)),
                    None => {
                        self.finish_episode(&mut r);
                        break;
                    }
                }
                self.collect_owners(&mut r.notes);
            }
            let Some((seg, pos)) = self.current.as_mut() else {
                break;
            };
            if *pos == 0
                && let Some(label) = &seg.label
            {
                r.notes.push(Note::Segment(label.clone()));
            }
            if *pos == 0
                && !seg.lead
                && let Some(label) = &seg.label
            {
                self.said.push(label.clone());
            }
            if *pos == 0
                && let Some(o) = self.owners.iter_mut().find(|o| o.token == seg.owner)
                && !o.started
            {
                o.started = true;
                r.notes.push(Note::Started {
                    action: o.action.clone(),
                    clips: o.clips.clone(),
                });
            }
            let n = (out.len() - filled).min(seg.len() - *pos);
            if let Some(dst) = out.get_mut(filled..filled + n) {
                copy_segment(seg, *pos, dst);
                apply_gain(dst, self.settings.gain);
            }
            *pos += n;
            filled += n;
        }
        r.len = filled;
        r
    }

    fn finish_episode(&mut self, r: &mut Rendered) {
        self.episode = None;
        self.current = None;
        self.queue.clear();
        self.replacement = None;
        self.deferred = None;
        self.cut = None;
        r.end = true;
        for action in self.stops.drain(..) {
            r.notes.push(Note::Stopped {
                action,
                idle: false,
            });
        }
        self.collect_owners(&mut r.notes);
    }

    /// Drops everything (the sink failed); returns the actions that never played.
    pub fn abort(&mut self) -> Vec<Action> {
        self.episode = None;
        self.current = None;
        self.queue.clear();
        self.replacement = None;
        self.deferred = None;
        self.cut = None;
        let mut lost: Vec<Action> = self.stops.drain(..).collect();
        lost.extend(
            std::mem::take(&mut self.owners)
                .into_iter()
                .filter(|o| !o.started)
                .map(|o| o.action),
        );
        lost
    }
}

/// How many clips of a first-language announcement form its opening: up to and including
/// the intensity or the fixed phrase, or else the header (「緊急地震速報」).
fn opening_len(ids: &[&str]) -> usize {
    let key = |id: &&str| id.starts_with("shindo_") || *id == "protect" || *id == "beware";
    let header = |id: &&str| *id == "eew" || *id == "eew_warning";
    ids.iter()
        .position(key)
        .or_else(|| ids.iter().position(header))
        .map_or(0, |i| i + 1)
}

/// Marks the opening of an announcement's segments (its first pass, up to the first gap).
fn mark_opening(segs: &mut VecDeque<Segment>) {
    let ids: Vec<&str> = segs
        .iter()
        .map_while(|s| s.label.as_deref())
        .map(|l| l.split_once(':').map_or(l, |(_, id)| id))
        .collect();
    let n = opening_len(&ids);
    for s in segs.iter_mut().take(n) {
        s.opening = true;
    }
}

fn copy_segment(seg: &Segment, pos: usize, dst: &mut [i16]) {
    match &seg.audio {
        Audio::Samples(s) => {
            for (d, v) in dst.iter_mut().zip(s.iter().skip(pos)) {
                *d = *v;
            }
        }
        Audio::Silence(_) => dst.fill(0),
    }
}

/// The chime's samples at `rate`.
fn chime_samples(chime: &Chime, rate: u32) -> Arc<[i16]> {
    match chime {
        Chime::Builtin(name) => super::chime::synthesize(name, rate)
            .unwrap_or_default()
            .into(),
        Chime::File {
            rate: from,
            samples,
            ..
        } => resample_linear(samples, *from, rate).into(),
    }
}

/// A command to the player thread.
#[derive(Debug)]
pub enum Command {
    /// Play (or stop) as the action says.
    Act(Box<Action>),
    /// Delivery assurance's audio probe: a short low-level tone (`level_db` dBFS) as an
    /// episode of its own, when nothing else plays; any action interrupts it.
    Probe {
        /// The tone's level (dBFS, negative).
        level_db: f64,
    },
    /// Fade out, finish the episode and return.
    Shutdown,
}

/// The probe tone: 1 kHz for 400 ms with 20 ms raised-cosine edges (no click into a PA).
pub const PROBE_TONE: Duration = Duration::from_millis(400);

/// The probe tone at `rate`, `level_db` dBFS.
pub fn probe_tone(rate: u32, level_db: f64) -> Vec<i16> {
    let rate_f = f64::from(rate.max(1));
    let n = samples_for(PROBE_TONE, rate);
    let edge = (rate_f * 0.020) as usize;
    let amplitude = 10f64.powf(level_db.min(0.0) / 20.0) * f64::from(i16::MAX);
    (0..n)
        .map(|i| {
            let from_edge = i.min(n.saturating_sub(1 + i));
            let env = if edge > 0 && from_edge < edge {
                0.5 - 0.5 * (std::f64::consts::PI * from_edge as f64 / edge as f64).cos()
            } else {
                1.0
            };
            let v =
                amplitude * env * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate_f).sin();
            v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

/// What the thread reports (to history, events and the status model in the daemon; to
/// a vector in tests).
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerEvent {
    /// An action's first sample has been written to the sink.
    Started {
        /// The action.
        action: Action,
        /// What it plays.
        clips: Vec<String>,
        /// The episode's file (WAV sink).
        file: Option<PathBuf>,
    },
    /// A stop took effect: silence.
    Stopped {
        /// The stop.
        action: Action,
        /// Nothing was playing.
        idle: bool,
        /// The episode's file (WAV sink).
        file: Option<PathBuf>,
    },
    /// An action was replaced before any of it was played.
    Superseded {
        /// The action.
        action: Action,
    },
    /// An action could not be played at all (the sink is down).
    Failed {
        /// The action.
        action: Action,
        /// Why.
        detail: String,
    },
    /// An episode ended (its file, if any, is complete).
    EpisodeEnded {
        /// The event.
        event_id: Option<String>,
        /// The file (WAV sink).
        file: Option<PathBuf>,
        /// Its length.
        seconds: f64,
    },
    /// The output's health changed (`None` = healthy).
    Health(Option<String>),
    /// The probe tone was played to its end (`ok`), or could not be played.
    Probe {
        /// Every sample was accepted by the sink.
        ok: bool,
        /// For people.
        detail: String,
        /// How long it played.
        seconds: f64,
    },
    /// The probe was not played: something else played, or an action interrupted it.
    ProbeSkipped {
        /// Why.
        why: String,
    },
    /// A chime or clip started (`chime:alert`, `ja:eew`).
    Segment {
        /// Which.
        label: String,
    },
}

/// Opens the sink (again, after a failure).
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Sink>, SinkError> + Send>;

/// Thread state around the core: the sink and the health it reports.
struct Runner {
    settings: PlayerSettings,
    open: Opener,
    sink: Option<Box<dyn Sink>>,
    core: Option<Core>,
    report: Box<dyn FnMut(PlayerEvent) + Send>,
    sink_problem: Option<String>,
    clip_problem: Option<String>,
    health: Option<Option<String>>,
    file: Option<PathBuf>,
    episode_frames: usize,
    episode_event: Option<String>,
    /// The probe tone under way and how far it has played.
    probe: Option<(Vec<i16>, usize)>,
}

impl Runner {
    /// Starts the probe tone, unless something plays or the sink is down.
    fn start_probe(&mut self, level_db: f64) {
        if self.active() || self.probe.is_some() {
            (self.report)(PlayerEvent::ProbeSkipped {
                why: "an announcement is playing".to_owned(),
            });
            return;
        }
        if !self.ensure_sink() {
            let detail = self.sink_problem.clone().unwrap_or_default();
            (self.report)(PlayerEvent::Probe {
                ok: false,
                detail,
                seconds: 0.0,
            });
            return;
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        match sink.begin(Some("probe")) {
            Ok(file) => {
                self.file = file;
                self.probe = Some((probe_tone(sink.rate(), level_db), 0));
            }
            Err(err) => {
                let detail = err.to_string();
                self.sink_failed(&err);
                (self.report)(PlayerEvent::Probe {
                    ok: false,
                    detail,
                    seconds: 0.0,
                });
            }
        }
    }

    /// An action arrived: the probe gives way at once (its file is closed).
    fn interrupt_probe(&mut self) {
        if self.probe.take().is_some() {
            if let Some(Err(err)) = self.sink.as_mut().map(|s| s.end()) {
                self.sink_failed(&err);
            }
            self.file = None;
            (self.report)(PlayerEvent::ProbeSkipped {
                why: "interrupted by an announcement".to_owned(),
            });
        }
    }

    /// Writes the probe's next period; reports it at its end.
    fn probe_period(&mut self, period: usize) {
        let Some((tone, pos)) = self.probe.as_mut() else {
            return;
        };
        let end = (*pos + period).min(tone.len());
        let chunk = tone.get(*pos..end).unwrap_or_default().to_vec();
        *pos = end;
        let done = end >= tone.len();
        let Some(sink) = self.sink.as_mut() else {
            self.probe = None;
            return;
        };
        let rate = sink.rate();
        let mut result = sink.write(&chunk);
        if result.is_ok() && done {
            result = sink.end();
        }
        match result {
            Err(err) => {
                self.probe = None;
                let detail = err.to_string();
                self.sink_failed(&err);
                (self.report)(PlayerEvent::Probe {
                    ok: false,
                    detail,
                    seconds: 0.0,
                });
            }
            Ok(()) if done => {
                let frames = self.probe.take().map_or(0, |(t, _)| t.len());
                let seconds = frames as f64 / f64::from(rate.max(1));
                let describe = self.sink.as_ref().map(|s| s.describe()).unwrap_or_default();
                self.file = None;
                (self.report)(PlayerEvent::Probe {
                    ok: true,
                    detail: format!(
                        "a {:.0} ms probe tone was accepted by {describe}",
                        seconds * 1000.0
                    ),
                    seconds,
                });
            }
            Ok(()) => {}
        }
    }

    fn update_health(&mut self) {
        let problem = match (&self.sink_problem, &self.clip_problem) {
            (Some(s), Some(c)) => Some(format!("{s}; {c}")),
            (Some(p), None) | (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        };
        if self.health.as_ref() != Some(&problem) {
            self.health = Some(problem.clone());
            (self.report)(PlayerEvent::Health(problem));
        }
    }

    /// Makes sure a sink is open; false if it cannot be.
    fn ensure_sink(&mut self) -> bool {
        if self.sink.is_some() {
            return true;
        }
        match (self.open)() {
            Ok(sink) => {
                let rate = sink.rate();
                tracing::info!(output = "audio", sink = %sink.describe(), rate, "audio sink open");
                if self.core.as_ref().is_none_or(|c| c.rate() != rate) {
                    self.core = Some(Core::new(self.settings.clone(), rate));
                }
                self.sink = Some(sink);
                self.sink_problem = None;
            }
            Err(err) => {
                let text = format!("fault: {err}");
                if self.sink_problem.as_ref() != Some(&text) {
                    tracing::error!(output = "audio", error = %err, "audio sink cannot open; retrying every {}s", REOPEN_EVERY.as_secs());
                }
                self.sink_problem = Some(text);
            }
        }
        self.update_health();
        self.sink.is_some()
    }

    fn sink_failed(&mut self, err: &SinkError) {
        tracing::error!(output = "audio", error = %err, "audio sink failed");
        self.sink = None;
        self.sink_problem = Some(format!("fault: {err}"));
        self.file = None;
        self.update_health();
        if let Some(core) = self.core.as_mut() {
            for action in core.abort() {
                (self.report)(PlayerEvent::Failed {
                    action,
                    detail: err.to_string(),
                });
            }
        }
    }

    fn notes(&mut self, notes: Vec<Note>) {
        for n in notes {
            let ev = match n {
                Note::Started { action, clips } => PlayerEvent::Started {
                    action,
                    clips,
                    file: self.file.clone(),
                },
                Note::Stopped { action, idle } => PlayerEvent::Stopped {
                    action,
                    idle,
                    file: self.file.clone(),
                },
                Note::Superseded { action } => PlayerEvent::Superseded { action },
                Note::Segment(label) => PlayerEvent::Segment { label },
                Note::Missing(m) => {
                    if self.clip_problem.as_deref().is_none_or(|p| !p.contains(&m)) {
                        tracing::error!(output = "audio", problem = %m, "clip missing; playing the rest");
                        self.clip_problem = Some(match self.clip_problem.take() {
                            Some(p) => format!("{p}, {m}"),
                            None => format!("fault: {m}"),
                        });
                        self.update_health();
                    }
                    continue;
                }
            };
            (self.report)(ev);
        }
    }

    fn command(&mut self, action: Action) {
        if !self.ensure_sink() {
            let detail = self.sink_problem.clone().unwrap_or_default();
            (self.report)(PlayerEvent::Failed { action, detail });
            return;
        }
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let notes = core.command(action);
        self.notes(notes);
    }

    /// Renders and writes one period.
    fn period(&mut self, buf: &mut [i16]) {
        let (Some(core), Some(sink)) = (self.core.as_mut(), self.sink.as_mut()) else {
            return;
        };
        let r = core.render(buf);
        if let Some(event_id) = &r.begin {
            match sink.begin(event_id.as_deref()) {
                Ok(file) => {
                    self.file = file;
                    self.episode_frames = 0;
                    self.episode_event = event_id.clone();
                }
                Err(err) => {
                    self.sink_failed(&err);
                    return;
                }
            }
        }
        let written = buf.get(..r.len).unwrap_or_default();
        if !written.is_empty()
            && let Err(err) = sink.write(written)
        {
            self.sink_failed(&err);
            return;
        }
        self.episode_frames += r.len;
        let rate = sink.rate();
        let ended = r.end;
        self.notes(r.notes);
        if ended {
            let end = self.sink.as_mut().map(|s| s.end());
            if let Some(Err(err)) = end {
                self.sink_failed(&err);
                return;
            }
            (self.report)(PlayerEvent::EpisodeEnded {
                event_id: self.episode_event.take(),
                file: self.file.take(),
                seconds: self.episode_frames as f64 / f64::from(rate.max(1)),
            });
        }
    }

    fn active(&self) -> bool {
        self.core.as_ref().is_some_and(Core::active)
    }
}

/// The player thread's body: plays until [`Command::Shutdown`] or the sender is gone.
///
/// `missing` is the clip problem found at start-up (catalogue ids not embedded), raised
/// as the output's fault from the start.
pub fn run(
    settings: PlayerSettings,
    open: Opener,
    rx: Receiver<Command>,
    missing: Option<String>,
    report: Box<dyn FnMut(PlayerEvent) + Send>,
) {
    let mut runner = Runner {
        settings,
        open,
        sink: None,
        core: None,
        report,
        sink_problem: None,
        clip_problem: missing,
        health: None,
        file: None,
        episode_frames: 0,
        episode_event: None,
        probe: None,
    };
    // Open at once so the first alarm does not wait for the device.
    runner.ensure_sink();
    let mut buf: Vec<i16> = Vec::new();
    let mut shutting_down = false;
    loop {
        // Between periods: take every command waiting; when idle, wait for one (and
        // retry a failed sink now and then). A closed queue is a shutdown.
        let mut cmds = Vec::new();
        if !runner.active() && runner.probe.is_none() {
            if shutting_down {
                return;
            }
            match rx.recv_timeout(REOPEN_EVERY) {
                Ok(c) => cmds.push(c),
                Err(RecvTimeoutError::Timeout) => {
                    runner.ensure_sink();
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    cmds.push(Command::Shutdown);
                    break;
                }
            }
        }
        for cmd in cmds {
            match cmd {
                Command::Probe { level_db } => runner.start_probe(level_db),
                Command::Act(a) => {
                    runner.interrupt_probe();
                    tracing::debug!(
                        output = "audio", action = a.kind.name(), event_id = ?a.event_id,
                        serial = ?a.serial, "audio command"
                    );
                    runner.command(*a);
                }
                Command::Shutdown => {
                    shutting_down = true;
                    runner.interrupt_probe();
                    if let Some(core) = runner.core.as_mut()
                        && core.active()
                    {
                        core.replacement = None;
                        core.cut_to(Then::End);
                    }
                }
            }
        }
        if runner.active() {
            let rate = runner.core.as_ref().map_or(48000, Core::rate);
            buf.resize(samples_for(PERIOD, rate), 0);
            runner.period(&mut buf);
        } else if runner.probe.is_some() {
            let rate = runner.sink.as_ref().map_or(48000, |s| s.rate());
            runner.probe_period(samples_for(PERIOD, rate));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
pub(crate) mod tests {
    use eew_core::engine::{AlertFlags, Cause, Label, OutputId};

    use super::*;
    use crate::system::clock::now_jst;

    pub(crate) const RATE: u32 = 16000;
    /// Length of every test clip: 100 ms.
    pub(crate) const CLIP: usize = 1600;

    pub(crate) fn action(kind: ActionKind, event: &str, serial: u32, label: Label) -> Action {
        Action {
            at: now_jst(),
            output: OutputId::Audio,
            kind,
            cause: Cause::Start,
            event_id: Some(event.to_owned()),
            serial: Some(serial),
            label,
            training: label.is_exercise(),
            intensity_class: None,
            long_period_class: None,
            warning: false,
            arrival: None,
            remaining_s: None,
            flags: AlertFlags::default(),
        }
    }

    pub(crate) fn announce(ids: &[&'static str], event: &str, serial: u32) -> Action {
        action(
            ActionKind::announce(ids.to_vec(), ids.to_vec()),
            event,
            serial,
            Label::Real,
        )
    }

    fn settings(langs: &[Lang], repeat: u8) -> PlayerSettings {
        PlayerSettings {
            languages: langs.to_vec(),
            repeat,
            gain: 1.0,
            chime: Chime::Builtin("alert"),
        }
    }

    /// A core whose every catalogue clip is a 100 ms tone (so lengths are exact).
    fn core(langs: &[Lang], repeat: u8) -> Core {
        let mut c = Core::new(settings(langs, repeat), RATE);
        for def in eew_core::engine::voice::CLIPS {
            for l in [Lang::Ja, Lang::En] {
                let tone: Vec<i16> = (0..CLIP)
                    .map(|i| if (i / 8) % 2 == 0 { 8000 } else { -8000 })
                    .collect();
                c.bank_mut().insert(l, def.id, tone);
            }
        }
        c
    }

    /// Everything rendered, period by period, until the core is idle or `periods` ran.
    #[derive(Debug, Default)]
    struct Run {
        samples: Vec<i16>,
        notes: Vec<Note>,
        begins: usize,
        ends: usize,
    }

    impl Run {
        fn segments(&self) -> Vec<String> {
            self.notes
                .iter()
                .filter_map(|n| match n {
                    Note::Segment(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        }
        fn started(&self) -> Vec<Option<u32>> {
            self.notes
                .iter()
                .filter_map(|n| match n {
                    Note::Started { action, .. } => Some(action.serial),
                    _ => None,
                })
                .collect()
        }
    }

    fn play(core: &mut Core, run: &mut Run, periods: usize) {
        let mut buf = vec![0i16; samples_for(PERIOD, RATE)];
        for _ in 0..periods {
            if !core.active() {
                return;
            }
            let r = core.render(&mut buf);
            run.samples.extend_from_slice(&buf[..r.len]);
            run.notes.extend(r.notes);
            run.begins += usize::from(r.begin.is_some());
            run.ends += usize::from(r.end);
        }
    }

    fn full(core: &mut Core, run: &mut Run) {
        play(core, run, 100_000);
    }

    fn chime_len() -> usize {
        super::super::chime::synthesize("alert", RATE)
            .unwrap()
            .len()
    }

    fn expected(ids: &[&str], langs: &[Lang], repeat: usize) -> Vec<String> {
        let mut out = vec!["chime:alert".to_owned()];
        for _ in 0..repeat {
            for l in langs {
                out.extend(ids.iter().map(|id| format!("{}:{id}", l.as_str())));
            }
        }
        out
    }

    const NUMBERS: &[&str] = &["eew", "shindo_5_lower", "ato", "num_2x", "num_5", "seconds"];
    const PHRASE: &[&str] = &["eew", "protect"];

    #[test]
    fn numbers_style_chime_then_each_language_repeated() {
        let langs = [Lang::Ja, Lang::En];
        let mut c = core(&langs, 2);
        let mut run = Run::default();
        let notes = c.command(announce(NUMBERS, "20240101000000", 1));
        assert!(notes.is_empty(), "{notes:?}");
        full(&mut c, &mut run);
        assert_eq!(run.segments(), expected(NUMBERS, &langs, 2));
        assert_eq!((run.begins, run.ends), (1, 1));
        assert_eq!(run.started(), vec![Some(1)]);
        // chime + gap + 2 × (6 clips + gap + 6 clips) + 1 gap between the repeats.
        let gap_chime = samples_for(GAP_AFTER_CHIME, RATE);
        let gap = samples_for(GAP_BETWEEN, RATE);
        let want = chime_len() + gap_chime + 2 * 12 * CLIP + 3 * gap;
        assert_eq!(run.samples.len(), want);
        assert!(!c.active());
    }

    #[test]
    fn phrase_style_and_language_order_and_repeat_follow_the_settings() {
        let langs = [Lang::En];
        let mut c = core(&langs, 3);
        let mut run = Run::default();
        c.command(announce(PHRASE, "e", 1));
        full(&mut c, &mut run);
        assert_eq!(run.segments(), expected(PHRASE, &langs, 3));
        let langs = [Lang::En, Lang::Ja];
        let mut c = core(&langs, 1);
        let mut run = Run::default();
        c.command(announce(PHRASE, "e", 1));
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            [
                "chime:alert",
                "en:eew",
                "en:protect",
                "ja:eew",
                "ja:protect"
            ]
        );
    }

    #[test]
    fn exercises_say_so_first() {
        for (prefix, label) in [("drill", Label::Training), ("delivery_test", Label::Test)] {
            let ids = vec![prefix, "eew", "protect"];
            let a = action(
                ActionKind::announce(ids.clone(), ids.clone()),
                "e",
                1,
                label,
            );
            let mut c = core(&[Lang::Ja], 1);
            let mut run = Run::default();
            c.command(a);
            full(&mut c, &mut run);
            assert_eq!(
                run.segments(),
                [
                    "chime:alert".to_owned(),
                    format!("ja:{prefix}"),
                    "ja:eew".into(),
                    "ja:protect".into()
                ]
            );
        }
    }

    #[test]
    fn a_countdown_cuts_at_once_and_is_said_in_the_first_language() {
        let mut c = core(&[Lang::Ja, Lang::En], 2);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        // Past the opening (chime, gap, header, intensity) and 30 ms into 「あと」.
        let into = chime_len() + samples_for(GAP_AFTER_CHIME, RATE) + 2 * CLIP + 480;
        while run.samples.len() < into {
            play(&mut c, &mut run, 1);
        }
        let before = run.samples.len();
        c.command(action(ActionKind::countdown(5), "e", 1, Label::Real));
        play(&mut c, &mut run, 1);
        // The fade (10 ms) and the number start in the very next period.
        assert_eq!(
            run.segments(),
            [
                "chime:alert",
                "ja:eew",
                "ja:shindo_5_lower",
                "ja:ato",
                "ja:num_5"
            ]
        );
        // Each countdown replaces the previous one.
        play(&mut c, &mut run, 2);
        c.command(action(ActionKind::countdown(4), "e", 1, Label::Real));
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            [
                "chime:alert",
                "ja:eew",
                "ja:shindo_5_lower",
                "ja:ato",
                "ja:num_5",
                "ja:num_4"
            ]
        );
        let fade = samples_for(FADE, RATE);
        // Three periods (the first fade, then 5), the second fade, then 4 whole.
        assert_eq!(
            run.samples.len(),
            before + 3 * samples_for(PERIOD, RATE) + fade + CLIP
        );
        assert_eq!(run.ends, 1, "one episode");
    }

    #[test]
    fn a_countdown_waits_for_the_opening_then_the_newest_number_cuts_in() {
        let mut c = core(&[Lang::Ja, Lang::En], 2);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        // Into the chime: two countdowns arrive; neither cuts the opening.
        play(&mut c, &mut run, 10);
        c.command(action(ActionKind::countdown(3), "e", 1, Label::Real));
        play(&mut c, &mut run, 5);
        let notes = c.command(action(ActionKind::countdown(2), "e", 1, Label::Real));
        assert!(
            matches!(&notes[..], [Note::Superseded { .. }]),
            "the older number is dropped: {notes:?}"
        );
        full(&mut c, &mut run);
        // Chime, header and intensity in the first language, then the newest number.
        assert_eq!(
            run.segments(),
            ["chime:alert", "ja:eew", "ja:shindo_5_lower", "ja:num_2"]
        );
        assert_eq!(run.ends, 1, "one episode");
    }

    #[test]
    fn an_update_during_the_opening_goes_on_from_what_was_said_and_keeps_it_protected() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        // Chime, gap, and 30 ms into the header 「緊急地震速報。」.
        let into = chime_len() + samples_for(GAP_AFTER_CHIME, RATE) + 480;
        while run.samples.len() < into {
            play(&mut c, &mut run, 1);
        }
        // The update shares the header: it goes on with its intensity, which the
        // countdown (arriving meanwhile) does not cut.
        c.command(announce(&["eew", "shindo_6_upper", "beware"], "e", 2));
        c.command(action(ActionKind::countdown(4), "e", 2, Label::Real));
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            ["chime:alert", "ja:eew", "ja:shindo_6_upper", "ja:num_4"]
        );
    }

    #[test]
    fn frequent_updates_never_keep_the_sentence_from_its_end() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        // An update (fewer seconds) every 60 ms: each goes on from what was said.
        for serial in 2..40 {
            play(&mut c, &mut run, 3);
            let secs = ["num_9", "num_8", "num_7", "num_6", "num_5"][serial as usize % 5];
            c.command(announce(
                &["eew", "shindo_5_lower", "ato", secs, "seconds"],
                "e",
                serial,
            ));
        }
        full(&mut c, &mut run);
        let segs = run.segments();
        assert_eq!(segs[..3], ["chime:alert", "ja:eew", "ja:shindo_5_lower"]);
        assert_eq!(
            segs.iter().filter(|s| *s == "ja:eew").count(),
            1,
            "{segs:?}"
        );
        assert_eq!(segs.last().map(String::as_str), Some("ja:seconds"));
    }

    #[test]
    fn the_opening_is_up_to_the_intensity_or_phrase_or_else_the_header() {
        assert_eq!(opening_len(NUMBERS), 2);
        assert_eq!(opening_len(&["drill", "eew", "protect"]), 3);
        assert_eq!(opening_len(&["eew_warning", "beware"]), 2);
        assert_eq!(opening_len(&["cancelled"]), 0);
    }

    #[test]
    fn a_newer_announcement_supersedes_a_waiting_countdown() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        play(&mut c, &mut run, 10);
        c.command(action(ActionKind::countdown(2), "e", 1, Label::Real));
        let notes = c.command(announce(&["cancelled"], "e", 32));
        assert!(
            matches!(&notes[..], [Note::Superseded { action }]
                if matches!(action.kind, ActionKind::Countdown { .. })),
            "{notes:?}"
        );
        full(&mut c, &mut run);
        assert_eq!(run.segments(), ["chime:alert", "ja:cancelled"]);
    }

    #[test]
    fn an_update_replaces_the_rest_at_the_next_clip_boundary_without_a_second_chime() {
        let mut c = core(&[Lang::Ja], 2);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        // Chime, gap, and 30 ms into the first clip.
        let into = chime_len() + samples_for(GAP_AFTER_CHIME, RATE) + 480;
        while run.samples.len() < into {
            play(&mut c, &mut run, 1);
        }
        // Two updates before the boundary: only the last is played.
        let n2 = c.command(announce(&["eew", "shindo_6_upper", "beware"], "e", 2));
        assert!(n2.is_empty());
        let n3 = c.command(announce(
            &["eew_warning", "shindo_6_upper", "beware"],
            "e",
            3,
        ));
        assert!(
            matches!(&n3[..], [Note::Superseded { action }] if action.serial == Some(2)),
            "{n3:?}"
        );
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            [
                "chime:alert",
                "ja:eew",
                "ja:eew_warning",
                "ja:shindo_6_upper",
                "ja:beware",
                "ja:eew_warning",
                "ja:shindo_6_upper",
                "ja:beware"
            ]
        );
        assert_eq!(run.started(), vec![Some(1), Some(3)]);
        assert_eq!((run.begins, run.ends), (1, 1));
    }

    #[test]
    fn an_update_before_or_during_the_chime_keeps_the_chime_and_its_gap() {
        let ids: &[&str] = &["eew", "beware"];
        let want = chime_len() + samples_for(GAP_AFTER_CHIME, RATE) + 2 * CLIP;
        for periods_before in [0, 1, 30] {
            let mut c = core(&[Lang::Ja], 1);
            let mut run = Run::default();
            c.command(announce(&["eew", "shindo_4"], "e", 1));
            play(&mut c, &mut run, periods_before);
            c.command(announce(ids, "e", 2));
            full(&mut c, &mut run);
            assert_eq!(run.segments(), ["chime:alert", "ja:eew", "ja:beware"]);
            assert_eq!(run.samples.len(), want, "after {periods_before} periods");
        }
    }

    #[test]
    fn a_cancel_after_the_announcement_ended_chimes_again_one_while_playing_does_not() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(PHRASE, "e", 1));
        full(&mut c, &mut run);
        c.command(announce(&["cancelled"], "e", 2));
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            [
                "chime:alert",
                "ja:eew",
                "ja:protect",
                "chime:alert",
                "ja:cancelled"
            ]
        );
        assert_eq!(run.ends, 2);

        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(PHRASE, "e", 1));
        // Chime (1.15 s), gap (0.3 s) and into "eew" (0.1 s).
        play(&mut c, &mut run, 75);
        c.command(announce(&["cancelled"], "e", 2));
        full(&mut c, &mut run);
        assert_eq!(run.segments(), ["chime:alert", "ja:eew", "ja:cancelled"]);
        assert_eq!(run.ends, 1);
    }

    #[test]
    fn another_event_cuts_in_with_its_own_chime_and_episode() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        c.command(announce(PHRASE, "a", 1));
        play(&mut c, &mut run, 5);
        c.command(announce(PHRASE, "b", 1));
        full(&mut c, &mut run);
        assert_eq!(
            run.segments(),
            ["chime:alert", "chime:alert", "ja:eew", "ja:protect"]
        );
        assert_eq!((run.begins, run.ends), (2, 2));
    }

    #[test]
    fn stop_is_silence_within_50_ms() {
        let mut c = core(&[Lang::Ja, Lang::En], 2);
        let mut run = Run::default();
        c.command(announce(NUMBERS, "e", 1));
        play(&mut c, &mut run, 20);
        let before = run.samples.len();
        let n = c.command(action(ActionKind::Stop, "e", 1, Label::Real));
        assert!(n.is_empty());
        full(&mut c, &mut run);
        let after = run.samples.len() - before;
        assert_eq!(after, samples_for(FADE, RATE));
        assert!(after <= samples_for(Duration::from_millis(50), RATE));
        // Faded to zero.
        assert_eq!(*run.samples.last().unwrap(), 0);
        assert!(
            run.notes
                .iter()
                .any(|n| matches!(n, Note::Stopped { idle: false, .. }))
        );
        assert_eq!(run.ends, 1);
        // A stop with nothing playing is answered at once.
        let n = c.command(action(ActionKind::Stop, "e", 2, Label::Real));
        assert!(matches!(&n[..], [Note::Stopped { idle: true, .. }]));
    }

    #[test]
    fn a_missing_clip_is_reported_and_the_rest_plays() {
        let mut c = core(&[Lang::Ja], 1);
        let mut run = Run::default();
        let notes = c.command(announce(&["eew", "no_such_clip", "protect"], "e", 1));
        assert_eq!(
            notes,
            vec![Note::Missing("missing clip ja/no_such_clip".into())]
        );
        full(&mut c, &mut run);
        assert_eq!(run.segments(), ["chime:alert", "ja:eew", "ja:protect"]);
    }

    #[test]
    fn volume_scales_every_sample() {
        let mut loud = core(&[Lang::Ja], 1);
        let mut quiet = Core::new(
            PlayerSettings {
                gain: volume_gain(50),
                ..settings(&[Lang::Ja], 1)
            },
            RATE,
        );
        let (mut a, mut b) = (Run::default(), Run::default());
        loud.command(announce(PHRASE, "e", 1));
        quiet.command(announce(PHRASE, "e", 1));
        play(&mut loud, &mut a, 20);
        play(&mut quiet, &mut b, 20);
        let ra = super::super::dsp::rms(&a.samples);
        let rb = super::super::dsp::rms(&b.samples);
        assert!((rb / ra - 0.125).abs() < 0.01, "{ra} {rb}");
    }
}
