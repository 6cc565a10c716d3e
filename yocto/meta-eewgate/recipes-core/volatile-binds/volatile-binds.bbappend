# Read-only root, writable data partition (/data, files/wic/eewgate-sdimage.wks).
#
# oe-core's default binds /var/lib etc. to a tmpfs (/var/volatile). On the appliance
# /var/lib and /etc/eewgate come from /data instead, so history, keys, evidence, chrony's
# state, the broker's passwords and retained messages, and the settings survive reboots
# and root file system updates. mount-copybind seeds an empty target on /data with the
# image's copy on first boot (e.g. the default eewgate.toml). Only in the eewgate
# distribution (conf/distro/eewgate.conf).
# The "\n" separators belong to the value (VOLATILE_BINDS[separator]); the linter reads
# them as line starts and misjudges the indentation.
# nooelint: oelint.vars.multilineident
VOLATILE_BINDS:eewgate = "\
    /data${localstatedir}/lib ${localstatedir}/lib\n\
    ${localstatedir}/volatile/cache ${localstatedir}/cache\n\
    ${localstatedir}/volatile/spool ${localstatedir}/spool\n\
    ${localstatedir}/volatile/srv ${servicedir}\n\
    /data${sysconfdir}/eewgate ${sysconfdir}/eewgate\n\
"

# systemd-random-seed keeps its seed in /var/lib: bind it first, as oe-core does for its
# own tmpfs /var/lib.
do_compile:append:eewgate() {
    if [ -e data-var-lib.service ]; then
        sed -i -e "/^Before=/s/\$/ systemd-random-seed.service/" \
               -e "/^WantedBy=/s/\$/ systemd-random-seed.service/" \
               data-var-lib.service
    fi
}
