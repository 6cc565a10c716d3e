//! The host: clock, systemd notification, watchdog, time-sync status, signals.

pub mod clock;
pub mod http;
pub mod logring;
pub mod notify;
pub mod runtime_dir;
pub mod timesync;
pub mod watchdog;
