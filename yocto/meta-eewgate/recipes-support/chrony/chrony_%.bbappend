# The appliance's chrony.conf (files/chrony.conf): Japanese public NTP servers, state on
# the data partition. Only in the eewgate distribution (conf/distro/eewgate.conf).
FILESEXTRAPATHS:prepend:eewgate := "${THISDIR}/files:"
