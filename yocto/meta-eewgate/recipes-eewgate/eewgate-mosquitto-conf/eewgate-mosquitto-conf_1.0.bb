SUMMARY = "eewgate appliance configuration for the Mosquitto MQTT broker"
DESCRIPTION = "Listener for the building management system on the LAN, no anonymous \
               clients, an ACL per user and a password file on the data partition whose passwords are \
               created on the device (first boot, installer), never in the image."
HOMEPAGE = "https://eewgate.invalid/"
BUGTRACKER = "https://eewgate.invalid/issues"
SECTION = "console/network"
LICENSE = "Apache-2.0"
# Configuration written for eewgate (Apache-2.0); the text is oe-core's copy.
# nooelint: oelint.var.licenseremotefile
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "\
    file://eewgate.conf \
    file://eewgate.acl \
    file://eewgate-mqtt-user \
    file://eewgate-mqtt-setup.service \
    file://mosquitto-eewgate.conf \
"

S = "${UNPACKDIR}"

inherit allarch systemd

do_install() {
    install -d ${D}${sysconfdir}/mosquitto/conf.d
    install -m 0644 ${S}/eewgate.conf ${D}${sysconfdir}/mosquitto/conf.d/eewgate.conf
    install -m 0644 ${S}/eewgate.acl ${D}${sysconfdir}/mosquitto/eewgate.acl

    install -d ${D}${sbindir}
    install -m 0755 ${S}/eewgate-mqtt-user ${D}${sbindir}/eewgate-mqtt-user

    install -d ${D}${systemd_system_unitdir}/mosquitto.service.d
    install -m 0644 ${S}/eewgate-mqtt-setup.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/mosquitto-eewgate.conf ${D}${systemd_system_unitdir}/mosquitto.service.d/50-eewgate.conf
}

SYSTEMD_SERVICE:${PN} = "eewgate-mqtt-setup.service"

FILES:${PN} += "${systemd_system_unitdir}/mosquitto.service.d/50-eewgate.conf"
CONFFILES:${PN} = "\
    ${sysconfdir}/mosquitto/conf.d/eewgate.conf \
    ${sysconfdir}/mosquitto/eewgate.acl \
"

# mosquitto_passwd and the mosquitto user; the eewgate user owns the daemon's secret.
RDEPENDS:${PN} = "eewgate mosquitto"
