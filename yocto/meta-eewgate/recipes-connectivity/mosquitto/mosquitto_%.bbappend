# The stock mosquitto.conf is the upstream example with every option commented out; let
# it read the drop-ins of eewgate-mosquitto-conf (and any later ones) from conf.d.
# Only in the eewgate distribution (conf/distro/eewgate.conf).
do_install:append:eewgate() {
    install -d ${D}${sysconfdir}/mosquitto/conf.d
    printf '\n# meta-eewgate: site configuration\ninclude_dir %s/mosquitto/conf.d\n' \
        "${sysconfdir}" >> ${D}${sysconfdir}/mosquitto/mosquitto.conf
}

FILES:${PN}:append:eewgate = " ${sysconfdir}/mosquitto/conf.d"
