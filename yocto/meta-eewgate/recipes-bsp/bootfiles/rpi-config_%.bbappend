# config.txt of the eewgate appliance (Raspberry Pi 4 / CM4). Only in the eewgate
# distribution (conf/distro/eewgate.conf).
#
# - dtparam=audio=on: the analogue jack (snd_bcm2835 "Headphones"), the PA feed.
# - dtparam=watchdog=on: bcm2835_wdt as /dev/watchdog0, owned by systemd (PID 1,
#   RuntimeWatchdogSec=14s from eewgate's system.conf.d drop-in; the hardware cannot count
#   beyond about 15 s).
# - gpio=: the relay and LED outputs driven to their released level by the firmware,
#   before Linux boots, so no contact chatters during boot, reboot or a watchdog reset.
#   The daemon sets the same levels again before READY=1 and on every exit.
#
# The pins come from EEWGATE_RELAY_PINS, EEWGATE_RELAY_RELEASED and EEWGATE_LED_PINS,
# set and explained in conf/distro/eewgate.conf.
RPI_EXTRA_CONFIG:append:eewgate = " \n# eewgate appliance (meta-eewgate)"
RPI_EXTRA_CONFIG:append:eewgate = " \ndtparam=audio=on"
RPI_EXTRA_CONFIG:append:eewgate = " \ndtparam=watchdog=on"
RPI_EXTRA_CONFIG:append:eewgate = " \ngpio=${EEWGATE_RELAY_PINS}=op,${EEWGATE_RELAY_RELEASED}"
RPI_EXTRA_CONFIG:append:eewgate = " \ngpio=${EEWGATE_LED_PINS}=op,dl\n"
