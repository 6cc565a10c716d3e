# The default ALSA device is the Raspberry Pi's analogue jack (bcm2835 "Headphones"
# card), which feeds the PA system; HDMI audio is never the default (files/asound.conf).
# Only in the eewgate distribution (conf/distro/eewgate.conf).
FILESEXTRAPATHS:prepend:eewgate := "${THISDIR}/files:"
