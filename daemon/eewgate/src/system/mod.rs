//! The host: clock, systemd notification, watchdog, time-sync status, signals.

pub mod clock;
