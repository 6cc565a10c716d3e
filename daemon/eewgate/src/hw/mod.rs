//! The hardware seam: output pins (relay contacts, the status LED) and input pins
//! (relay read-back), behind a small trait with two backends — [`sim`] (in memory,
//! every change timestamped and logged, for laptops, CI and the demo) and `rppal`
//! (the Raspberry Pi's GPIO, cargo feature `rpi`).

pub mod led;
#[cfg(feature = "rpi")]
pub mod rpi;
pub mod sim;

use std::sync::Arc;

/// One output pin, driven high (`true`) or low (`false`).
pub trait OutputPin: Send {
    /// Drives the pin.
    fn set(&mut self, high: bool) -> anyhow::Result<()>;
}

/// One input pin (a relay's feedback contact).
pub trait InputPin: Send {
    /// Reads the pin (`true` = high).
    fn read(&mut self) -> anyhow::Result<bool>;
}

/// Hands out pins.
pub trait Backend: Send + Sync {
    /// Claims `pin` (BCM number) as an output driven at `initial` from the start; `label`
    /// names what drives it (`relay:1`, `led:red`) for the sim backend's log.
    fn output(&self, pin: u8, label: &str, initial: bool) -> anyhow::Result<Box<dyn OutputPin>>;
    /// Claims `pin` as an input.
    fn input(&self, pin: u8, label: &str) -> anyhow::Result<Box<dyn InputPin>>;
}

/// Opens the configured backend; `sim` is the in-memory one (handed back so the caller
/// can read its log or listen to it).
pub fn open(
    kind: crate::config::HardwareBackend,
    sim: &sim::SimBoard,
) -> anyhow::Result<Arc<dyn Backend>> {
    match kind {
        crate::config::HardwareBackend::Sim => Ok(Arc::new(sim.clone())),
        #[cfg(feature = "rpi")]
        crate::config::HardwareBackend::Rpi => Ok(Arc::new(rpi::RpiBackend::open()?)),
        #[cfg(not(feature = "rpi"))]
        crate::config::HardwareBackend::Rpi => anyhow::bail!(
            "hardware.backend = \"rpi\" needs a build with the `rpi` feature (cargo build --features rpi)"
        ),
    }
}

/// The pin level that releases (opens) a contact.
pub fn released_level(active_low: bool) -> bool {
    active_low
}

/// The pin level that operates (closes) a contact.
pub fn operated_level(active_low: bool) -> bool {
    !active_low
}
