SUMMARY = "Mark the booted RAUC slot good once eewgate passes its health gate"
DESCRIPTION = "A oneshot unit after eewgate.service that runs `eewgate health-gate` \
               (upstream link up, time synchronised, no output fault) and only then \
               `rauc status mark-good`."
HOMEPAGE = "https://eewgate.invalid/"
BUGTRACKER = "https://eewgate.invalid/issues"
SECTION = "console/utils"
LICENSE = "Apache-2.0"
# Configuration written for eewgate (Apache-2.0); the text is oe-core's copy.
# nooelint: oelint.var.licenseremotefile
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "\
    file://eewgate-mark-good \
    file://eewgate-mark-good.service \
"

S = "${UNPACKDIR}"

inherit allarch systemd

do_install() {
    install -d ${D}${libexecdir}
    install -m 0755 ${S}/eewgate-mark-good ${D}${libexecdir}/eewgate-mark-good
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/eewgate-mark-good.service ${D}${systemd_system_unitdir}/
}

SYSTEMD_SERVICE:${PN} = "eewgate-mark-good.service"

RDEPENDS:${PN} = "eewgate rauc"
