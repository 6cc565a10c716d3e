//! The sim backend: pins in memory. Every change is timestamped (wall clock and
//! monotonic) and kept in a bounded log that tests and the status model read; a listener
//! may be told of each change as it happens (`eewgate run --events-stdout` prints them).
//!
//! A read-back input follows the output it is wired to ([`SimBoard::wire`]) unless a
//! test breaks the wire ([`SimBoard::stick`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Backend, InputPin, OutputPin};
use crate::system::clock::now_utc;

/// Changes kept in the log; older ones are dropped.
pub const LOG_CAPACITY: usize = 4096;

/// One pin change.
#[derive(Clone, Debug, PartialEq)]
pub struct PinChange {
    /// BCM pin number.
    pub pin: u8,
    /// The new level.
    pub level: bool,
    /// What drives it (`relay:1`, `led:red`).
    pub output: String,
    /// Wall-clock time of the change.
    pub at: DateTime<Utc>,
    /// Monotonic time of the change.
    pub mono: Instant,
}

type Listener = Box<dyn Fn(&PinChange) + Send + Sync>;

#[derive(Default)]
struct State {
    levels: BTreeMap<u8, bool>,
    labels: BTreeMap<u8, String>,
    /// Input pin → (output pin it follows, inverted).
    wires: BTreeMap<u8, (u8, bool)>,
    /// Input pins stuck at a level (a broken feedback wire).
    stuck: BTreeMap<u8, bool>,
    log: VecDeque<PinChange>,
    listener: Option<Arc<Listener>>,
    /// Where the levels are kept across processes, if anywhere.
    state_file: Option<PathBuf>,
}

impl State {
    /// Writes every driven pin's level (write to a temporary file, then rename: a reader
    /// never sees half a file). Best effort: the file is a stand-in for the board's
    /// memory, never a reason to fail a switch.
    fn persist(&self) {
        let Some(path) = &self.state_file else { return };
        let pins: Vec<serde_json::Value> = self
            .levels
            .iter()
            .map(|(pin, level)| {
                serde_json::json!({
                    "pin": pin, "level": level,
                    "output": self.labels.get(pin).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let text = serde_json::json!({ "pins": pins }).to_string();
        let tmp = path.with_extension("tmp");
        let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(err) = result {
            tracing::warn!(file = %path.display(), error = %err, "sim board: cannot keep pin levels");
        }
    }
}

/// Reads the levels a sim state file holds (pin → level); an absent file holds none.
pub fn read_state_file(path: &Path) -> anyhow::Result<BTreeMap<u8, bool>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a sim state file: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    let pins = v.get("pins").and_then(|p| p.as_array());
    for p in pins.into_iter().flatten() {
        if let (Some(pin), Some(level)) = (
            p.get("pin")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u8::try_from(n).ok()),
            p.get("level").and_then(serde_json::Value::as_bool),
        ) {
            out.insert(pin, level);
        }
    }
    Ok(out)
}

/// An in-memory board. Cheap to clone; clones share the pins.
#[derive(Clone, Default)]
pub struct SimBoard {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBoard").finish_non_exhaustive()
    }
}

impl SimBoard {
    /// A board with every pin low.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps every pin's level in `path` from now on, starting from the levels the file
    /// already holds (what the previous process left), which are returned.
    pub fn persist_to(&self, path: &Path) -> anyhow::Result<BTreeMap<u8, bool>> {
        let before = read_state_file(path)?;
        let mut s = self.lock();
        for (pin, level) in &before {
            s.levels.entry(*pin).or_insert(*level);
        }
        s.state_file = Some(path.to_owned());
        s.persist();
        Ok(before)
    }

    /// Calls `f` on every change from now on (it must not block).
    pub fn set_listener(&self, f: impl Fn(&PinChange) + Send + Sync + 'static) {
        self.lock().listener = Some(Arc::new(Box::new(f)));
    }

    /// Wires input `input` to follow output `output` (inverted when `invert`).
    pub fn wire(&self, input: u8, output: u8, invert: bool) {
        self.lock().wires.insert(input, (output, invert));
    }

    /// Sticks input `input` at `level` (a broken feedback wire), or unsticks it.
    pub fn stick(&self, input: u8, level: Option<bool>) {
        let mut s = self.lock();
        match level {
            Some(l) => s.stuck.insert(input, l),
            None => s.stuck.remove(&input),
        };
    }

    /// The current level of a pin (`false` when never driven).
    pub fn level(&self, pin: u8) -> bool {
        self.lock().levels.get(&pin).copied().unwrap_or(false)
    }

    /// The log of changes, oldest first.
    pub fn log(&self) -> Vec<PinChange> {
        self.lock().log.iter().cloned().collect()
    }

    fn drive(&self, pin: u8, level: bool) {
        let (change, listener) = {
            let mut s = self.lock();
            if s.levels.insert(pin, level) == Some(level) {
                return;
            }
            let change = PinChange {
                pin,
                level,
                output: s.labels.get(&pin).cloned().unwrap_or_default(),
                at: now_utc(),
                mono: Instant::now(),
            };
            if s.log.len() >= LOG_CAPACITY {
                s.log.pop_front();
            }
            s.log.push_back(change.clone());
            s.persist();
            (change, s.listener.clone())
        };
        if let Some(l) = listener {
            l(&change);
        }
    }

    fn read(&self, pin: u8) -> bool {
        let s = self.lock();
        if let Some(l) = s.stuck.get(&pin) {
            return *l;
        }
        match s.wires.get(&pin) {
            Some((out, invert)) => s.levels.get(out).copied().unwrap_or(false) != *invert,
            None => s.levels.get(&pin).copied().unwrap_or(false),
        }
    }
}

struct SimOut {
    board: SimBoard,
    pin: u8,
}

impl OutputPin for SimOut {
    fn set(&mut self, high: bool) -> anyhow::Result<()> {
        self.board.drive(self.pin, high);
        Ok(())
    }
}

struct SimIn {
    board: SimBoard,
    pin: u8,
}

impl InputPin for SimIn {
    fn read(&mut self) -> anyhow::Result<bool> {
        Ok(self.board.read(self.pin))
    }
}

impl Backend for SimBoard {
    fn output(&self, pin: u8, label: &str, initial: bool) -> anyhow::Result<Box<dyn OutputPin>> {
        self.lock().labels.insert(pin, label.to_owned());
        self.drive(pin, initial);
        Ok(Box::new(SimOut {
            board: self.clone(),
            pin,
        }))
    }

    fn input(&self, pin: u8, label: &str) -> anyhow::Result<Box<dyn InputPin>> {
        self.lock()
            .labels
            .entry(pin)
            .or_insert_with(|| label.to_owned());
        Ok(Box::new(SimIn {
            board: self.clone(),
            pin,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn changes_are_logged_in_order_with_labels_and_repeats_are_not() {
        let board = SimBoard::new();
        let mut p = board.output(17, "relay:1", false).unwrap();
        p.set(true).unwrap();
        p.set(true).unwrap();
        p.set(false).unwrap();
        let log = board.log();
        // Claimed at its initial level (logged), then on, then off.
        assert_eq!(log.len(), 3);
        assert!(!log[0].level);
        assert_eq!(
            (log[1].pin, log[1].level, log[1].output.as_str()),
            (17, true, "relay:1")
        );
        assert!(!log[2].level);
        assert!(log[2].mono >= log[1].mono);
        assert!(log[2].at >= log[1].at);
        assert!(!board.level(17));
    }

    #[test]
    fn the_log_is_bounded() {
        let board = SimBoard::new();
        let mut p = board.output(5, "led:red", false).unwrap();
        for i in 0..(LOG_CAPACITY + 10) {
            p.set(i % 2 == 0).unwrap();
        }
        assert_eq!(board.log().len(), LOG_CAPACITY);
    }

    #[test]
    fn a_wired_input_follows_its_output_until_stuck() {
        let board = SimBoard::new();
        let mut out = board.output(6, "relay:2", false).unwrap();
        let mut input = board.input(12, "relay:2 read-back").unwrap();
        board.wire(12, 6, false);
        out.set(true).unwrap();
        assert!(input.read().unwrap());
        board.stick(12, Some(false));
        assert!(!input.read().unwrap());
        board.stick(12, None);
        assert!(input.read().unwrap());
    }

    #[test]
    fn the_listener_hears_every_change() {
        let board = SimBoard::new();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        board.set_listener(move |c| h.lock().unwrap().push((c.pin, c.level)));
        let mut p = board.output(13, "relay:3", false).unwrap();
        p.set(true).unwrap();
        p.set(false).unwrap();
        // Claimed (released), then on, then off.
        assert_eq!(
            *heard.lock().unwrap(),
            vec![(13, false), (13, true), (13, false)]
        );
    }
}
