SUMMARY = "Signed RAUC update bundle of the eewgate appliance"
DESCRIPTION = "A verity-format bundle with the eewgate-image root file system for the \
               A/B slots of files/wic/eewgate-sdimage-dual.wks."
HOMEPAGE = "https://eewgate.invalid/"
BUGTRACKER = "https://eewgate.invalid/issues"
SECTION = "base"
LICENSE = "MIT"
# The bundle class takes its input from the image's deploy directory, not from SRC_URI.
SRC_URI = ""

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "eewgate-raspberrypi4-64"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}-${DATETIME}"
RAUC_BUNDLE_VERSION[vardepsexclude] = "DATETIME"
RAUC_BUNDLE_DESCRIPTION = "eewgate appliance root file system"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "eewgate-image"
RAUC_SLOT_rootfs[fstype] = "ext4"

# The signing key and certificate stay outside every repository and layer; kas forwards
# EEWGATE_RAUC_KEY_DIR from the environment (image/kas/rauc.yml, yocto/README.md).
RAUC_KEY_FILE = "${EEWGATE_RAUC_KEY_DIR}/eewgate-signing.key.pem"
RAUC_CERT_FILE = "${EEWGATE_RAUC_KEY_DIR}/eewgate-signing.cert.pem"

# Skip the recipe with a readable reason rather than failing deep in do_bundle: a bundle
# is always signed and its key has no default. Parse-time check on purpose.
# nooelint: oelint.task.noanonpython
python () {
    if not d.getVar('EEWGATE_RAUC_KEY_DIR'):
        raise bb.parse.SkipRecipe("EEWGATE_RAUC_KEY_DIR is not set: bundles are always "
                                  "signed and the key has no default; see yocto/README.md")
}
