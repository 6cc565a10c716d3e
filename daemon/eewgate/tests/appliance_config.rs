//! The appliance image's first-boot settings file (config/eewgate.appliance.toml, which
//! yocto/meta-eewgate installs as /etc/eewgate/eewgate.toml) stays valid for the image's
//! build (features `rpi` and `alsa`), and stays harmless until it is set up: its only
//! link points at an address that never answers.
#![cfg(all(feature = "rpi", feature = "alsa"))]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn the_first_boot_settings_file_is_valid_and_harmless() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/eewgate.appliance.toml");
    let text = std::fs::read_to_string(&src).unwrap();
    // On the image the MQTT password file is made on first boot before the daemon starts
    // (eewgate-mqtt-setup.service); here a private stand-in takes its place.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("appliance_config");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("mqtt.password");
    std::fs::write(&secret, "first-boot-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        text.matches("/etc/eewgate/mqtt.password").count(),
        2,
        "comment and key"
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(
        &cfg,
        text.replace(
            "\"/etc/eewgate/mqtt.password\"",
            &format!("{:?}", secret.to_string_lossy()),
        ),
    )
    .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 link(s), 4 relay contact(s)"), "{said}");

    // Until set up, the one link goes to TEST-NET-1 (RFC 5737), which never answers.
    let doc: toml::Table = text.parse().unwrap();
    let links = doc["links"]["jma_tcp"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["host"].as_str(), Some("192.0.2.10"));
    assert!(
        doc.get("links").unwrap().as_table().unwrap().len() == 1,
        "no other link kind"
    );
    // What the image needs on: the web UI (setup code on the console), MQTT to the local
    // broker, the GPIO and ALSA back ends.
    assert_eq!(doc["webui"]["enabled"].as_bool(), Some(true));
    assert_eq!(doc["mqtt"]["host"].as_str(), Some("127.0.0.1"));
    assert_eq!(doc["hardware"]["backend"].as_str(), Some("rpi"));
    assert_eq!(doc["audio"]["backend"].as_str(), Some("alsa"));
}
