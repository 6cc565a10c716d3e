//! The Raspberry Pi backend (rppal, `/dev/gpiomem`). Pins keep their level when the
//! process exits (`set_reset_on_drop(false)`), so `eewgate failsafe` leaves the contacts
//! released and the daemon's last word stands.

use super::{Backend, InputPin, OutputPin};

/// The Pi's GPIO.
#[derive(Debug)]
pub struct RpiBackend {
    gpio: rppal::gpio::Gpio,
}

impl RpiBackend {
    /// Opens the GPIO peripheral.
    pub fn open() -> anyhow::Result<Self> {
        Ok(Self {
            gpio: rppal::gpio::Gpio::new()?,
        })
    }
}

struct RpiOut(rppal::gpio::OutputPin);

impl OutputPin for RpiOut {
    fn set(&mut self, high: bool) -> anyhow::Result<()> {
        if high {
            self.0.set_high();
        } else {
            self.0.set_low();
        }
        Ok(())
    }
}

struct RpiIn(rppal::gpio::InputPin);

impl InputPin for RpiIn {
    fn read(&mut self) -> anyhow::Result<bool> {
        Ok(self.0.is_high())
    }
}

impl Backend for RpiBackend {
    fn output(&self, pin: u8, _label: &str, initial: bool) -> anyhow::Result<Box<dyn OutputPin>> {
        let pin = self.gpio.get(pin)?;
        let mut p = if initial {
            pin.into_output_high()
        } else {
            pin.into_output_low()
        };
        p.set_reset_on_drop(false);
        Ok(Box::new(RpiOut(p)))
    }

    fn input(&self, pin: u8, _label: &str) -> anyhow::Result<Box<dyn InputPin>> {
        let mut p = self.gpio.get(pin)?.into_input();
        p.set_reset_on_drop(false);
        Ok(Box::new(RpiIn(p)))
    }
}
