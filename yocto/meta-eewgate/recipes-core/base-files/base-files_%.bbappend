# The appliance's /etc/fstab (files/fstab): /boot and /data by label. It lives in the root
# file system itself (the wks files pass --no-fstab-update), so a root file system
# installed by a RAUC bundle mounts the data partition exactly like the one flashed with
# the card. Only in the eewgate distribution (conf/distro/eewgate.conf).
FILESEXTRAPATHS:prepend:eewgate := "${THISDIR}/files:"
