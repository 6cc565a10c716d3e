# RAUC on the eewgate appliance: two root file system slots driven by U-Boot (boot script
# and environment from meta-rauc-raspberrypi), status on the data partition, bundles
# verified against the project's keyring. Only in the eewgate distribution.
#
# The keyring (the CA certificate that signed the bundle signing certificate; public) is
# not in this repository: EEWGATE_RAUC_KEY_DIR names a directory holding
# eewgate-keyring.pem (image/kas/rauc.yml forwards it from the environment). Without it
# do_fetch stops with "Unable to find file file://eewgate-keyring.pem". The private
# signing key never enters a layer or the image (yocto/README.md, "Keys").
FILESEXTRAPATHS:prepend:eewgate := "${THISDIR}/files:"
FILESEXTRAPATHS:prepend:eewgate := "${@d.getVar('EEWGATE_RAUC_KEY_DIR') + ':' if d.getVar('EEWGATE_RAUC_KEY_DIR') else ''}"

RAUC_KEYRING_FILE:eewgate = "eewgate-keyring.pem"

# RAUC's data-directory (system.conf) on the data partition.
do_install:append:eewgate() {
    install -d ${D}${nonarch_libdir}/tmpfiles.d
    echo "d /data/rauc 0700 root root -" > ${D}${nonarch_libdir}/tmpfiles.d/eewgate-rauc.conf
}
FILES:${PN}:append:eewgate = " ${nonarch_libdir}/tmpfiles.d/eewgate-rauc.conf"
