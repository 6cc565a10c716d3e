SUMMARY = "eewgate appliance image for Raspberry Pi 4 / CM4"
DESCRIPTION = "systemd, the eewgate daemon, Mosquitto for the building management \
               system, chrony, the analogue audio jack as the default ALSA device, the hardware \
               watchdog owned by PID 1, a read-only root file system and a data partition."
HOMEPAGE = "https://eewgate.invalid/"
BUGTRACKER = "https://eewgate.invalid/issues"
SECTION = "base"
LICENSE = "MIT"

inherit core-image features_check

REQUIRED_DISTRO_FEATURES = "systemd"

IMAGE_FEATURES += "read-only-rootfs"

IMAGE_INSTALL = "\
    packagegroup-core-boot \
    kernel-modules \
    eewgate \
    eewgate-mosquitto-conf \
    mosquitto \
    mosquitto-clients \
    chrony \
    chronyc \
    alsa-state \
    alsa-utils-amixer \
    alsa-utils-aplay \
    volatile-binds \
    ${CORE_IMAGE_EXTRA_INSTALL} \
"

IMAGE_LINGUAS = ""

# boot + read-only root + /data (files/wic/eewgate-sdimage.wks); bmaptool flashes the
# .wic.bz2 with its .bmap in seconds.
IMAGE_FSTYPES = "wic.bz2 wic.bmap"
WKS_FILE ?= "eewgate-sdimage.wks"

# The mount point of the data partition must exist in the read-only root.
ROOTFS_POSTPROCESS_COMMAND += "eewgate_data_mountpoint"
eewgate_data_mountpoint[doc] = "Creates /data, the mount point of the data partition, in the root file system"
eewgate_data_mountpoint() {
    install -d ${IMAGE_ROOTFS}/data
}

COMPATIBLE_MACHINE = "^rpi$"
