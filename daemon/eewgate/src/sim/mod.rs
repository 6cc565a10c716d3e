//! Protocol-faithful upstream simulators (`eewgate sim`).
