SUMMARY = "eewgate: Earthquake Early Warning receiving appliance for buildings"
DESCRIPTION = "The eewgate daemon and command line: receives JMA EEW telegrams, decides \
               what they mean for this site, drives relay contacts, the audio jack and the \
               status LED, and republishes every alert over MQTT to the building management \
               system."
# No public home yet: reserved placeholders until the project has one.
HOMEPAGE = "https://eewgate.invalid/"
BUGTRACKER = "https://eewgate.invalid/issues"
SECTION = "console/network"
LICENSE = "Apache-2.0"
# The workspace declares Apache-2.0 (Cargo.toml) but ships no LICENSE file yet, so the
# checksum is taken from oe-core's copy of the licence text.
# nooelint: oelint.var.licenseremotefile
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

# alsa-sys finds libasound through pkg-config.
DEPENDS = "alsa-lib"

# The git fetcher unpacks to ${UNPACKDIR}/${BP}, the default S.
PV = "0.1.0+git"

# The project has no public git remote yet. Default: the repository that contains this
# layer (EEWGATE_REPO_DIR, set in conf/layer.conf), branch main, i.e. what is committed
# there (not the working tree). Override in local.conf or a kas file for a mirror, e.g.
#   EEWGATE_SRC_URI = "git://git.example.org/eewgate.git;protocol=https;branch=main"
EEWGATE_SRC_URI ?= "git://${EEWGATE_REPO_DIR};protocol=file;branch=main"
SRC_URI = "${EEWGATE_SRC_URI}"

# Development builds follow the branch head: bitbake asks the repository at parse time.
# A release build pins the commit it was tagged from (local.conf or a kas file):
#   SRCREV:pn-eewgate = "<40-hex commit of the release tag>"
# (yocto/README.md, "Source and revision").
# nooelint: oelint.vars.autorev
SRCREV ?= "${AUTOREV}"

inherit cargo cargo-update-recipe-crates pkgconfig systemd useradd

require ${BPN}-crates.inc

# The workspace has three members; build only the daemon binary, with the Raspberry Pi
# GPIO and ALSA back ends. The cargo class passes --frozen (offline, Cargo.lock exactly).
# sqlx is used without its compile-time checked query macros (no query!/query_as!),
# only sqlx::migrate!, which embeds the SQL files: no DATABASE_URL, no SQLX_OFFLINE.
CARGO_BUILD_FLAGS:append = " -p eewgate --features alsa,rpi"
# The release profile strips symbols itself (Cargo.toml); leave that to bitbake so the
# -dbg package has them and the already-stripped QA check passes.
export CARGO_PROFILE_RELEASE_STRIP = "false"

# Which settings file becomes /etc/eewgate/eewgate.toml (a path in the source tree): the
# first-boot file, harmless until set up (its only link never answers), with the web UI,
# the GPIO and ALSA back ends and the local broker on; CI checks it stays valid.
EEWGATE_SETTINGS_FILE ?= "config/eewgate.appliance.toml"

do_install:append() {
    # Units and system configuration, as written in the source tree's systemd/.
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/eewgate.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/systemd/eewgate-setup-console.service ${D}${systemd_system_unitdir}/

    install -d ${D}${nonarch_libdir}/sysusers.d
    install -m 0644 ${S}/systemd/sysusers.d/eewgate.conf ${D}${nonarch_libdir}/sysusers.d/eewgate.conf

    install -d ${D}${nonarch_libdir}/tmpfiles.d
    install -m 0644 ${S}/systemd/tmpfiles.d/eewgate.conf ${D}${nonarch_libdir}/tmpfiles.d/eewgate.conf

    # PID 1 owns /dev/watchdog (RuntimeWatchdogSec below the BCM2835's ~15 s limit).
    install -d ${D}${nonarch_libdir}/systemd/system.conf.d
    install -m 0644 ${S}/systemd/system.conf.d/50-eewgate-watchdog.conf \
        ${D}${nonarch_libdir}/systemd/system.conf.d/50-eewgate-watchdog.conf

    # /dev/gpiomem and /dev/gpiochip* group-owned by gpio.
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/systemd/udev/60-eewgate-gpio.rules ${D}${nonarch_base_libdir}/udev/rules.d/

    # Default settings. On the appliance /etc/eewgate is bound from the data partition and
    # seeded from this copy on first boot (volatile-binds bbappend).
    install -d -m 0750 ${D}${sysconfdir}/eewgate
    chown eewgate:eewgate ${D}${sysconfdir}/eewgate
    install -m 0644 ${S}/${EEWGATE_SETTINGS_FILE} ${D}${sysconfdir}/eewgate/eewgate.toml

    install -d ${D}${docdir}/${BPN}
    install -m 0644 ${S}/README.md ${D}${docdir}/${BPN}/README.md
}

# The service user. useradd creates it while the root file system is assembled, which a
# read-only root needs (systemd-sysusers could not write /etc/passwd at boot); the
# sysusers.d file is shipped too and then finds everything in place.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system gpio"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/eewgate --no-create-home \
                       --shell /sbin/nologin --user-group --groups gpio,audio,dialout eewgate"

SYSTEMD_PACKAGES = "${PN}"
SYSTEMD_SERVICE:${PN} = "eewgate.service eewgate-setup-console.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

FILES:${PN} += "\
    ${systemd_system_unitdir}/eewgate.service \
    ${systemd_system_unitdir}/eewgate-setup-console.service \
    ${nonarch_libdir}/sysusers.d/eewgate.conf \
    ${nonarch_libdir}/tmpfiles.d/eewgate.conf \
    ${nonarch_libdir}/systemd/system.conf.d/50-eewgate-watchdog.conf \
    ${nonarch_base_libdir}/udev/rules.d/60-eewgate-gpio.rules \
"
CONFFILES:${PN} = "${sysconfdir}/eewgate/eewgate.toml"

COMPATIBLE_HOST = "(aarch64|arm).*-linux.*"
