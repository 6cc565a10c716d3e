//! `[[links.dmdata]]` in the settings file: defaults, every key, every problem reported
//! at its path — among them an API key file that is missing, empty or readable by
//! others (the key never sits in the settings file).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test crate: helpers outside #[test] fns fail the test by panicking"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eewgate::config::{DmdataTest, LinkKind, parse_daemon};

const SITE: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n";

/// A fresh directory holding `dmdata.key` (mode 600) — removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "eewgate-dmdata-config-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Dir(dir);
        d.key("dmdata.key", "  the-api-key\n", 0o600);
        d
    }

    fn key(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn problems(text: &str, base: &Path) -> Vec<(String, String)> {
    match parse_daemon(text, base) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

fn error_at<'a>(errors: &'a [(String, String)], path: &str) -> &'a str {
    errors
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no error at {path}: {errors:#?}"))
}

#[test]
fn a_minimal_block_takes_every_default() {
    let dir = Dir::new("minimal");
    let text =
        format!("{SITE}[[links.dmdata]]\nname = \"dmdata\"\napi_key_file = \"dmdata.key\"\n");
    let cfg = parse_daemon(&text, dir.path()).unwrap();
    let link = &cfg.links[0];
    assert_eq!(link.name, "dmdata");
    assert_eq!(link.silence_limit, Duration::from_secs(120));
    let LinkKind::Dmdata {
        api_key_file,
        api_base,
        test,
        types,
        endpoints,
        app_name,
    } = &link.kind
    else {
        panic!("{:?}", link.kind);
    };
    assert_eq!(
        api_key_file,
        &dir.path().join("dmdata.key"),
        "relative to the file"
    );
    assert_eq!(api_base, "https://api.dmdata.jp");
    assert_eq!(*test, DmdataTest::No);
    assert_eq!(types, &["VXSE43", "VXSE44", "VXSE45"]);
    assert_eq!(
        endpoints,
        &["ws-tokyo.api.dmdata.jp", "ws-osaka.api.dmdata.jp"],
        "redundant by default: two sockets"
    );
    assert_eq!(app_name, "eewgate");
    assert!(
        !format!("{cfg:?}").contains("the-api-key"),
        "the key is not in the configuration"
    );
}

#[test]
fn every_key_can_be_set() {
    let dir = Dir::new("every");
    let key = dir.key("other.key", "k", 0o400);
    let text = format!(
        "{SITE}[[links.dmdata]]\nname = \"dm-1\"\napi_key_file = \"{}\"\n\
         api_base = \"http://127.0.0.1:8080\"\ntest = \"including\"\ntypes = [\"VXSE45\", \"VXSE42\"]\n\
         redundant = false\nendpoints = [\"ticket\"]\napp_name = \"building-7\"\nsilence_limit_s = 75\n\n\
         [[links.dmdata]]\nname = \"dm-2\"\napi_key_file = \"dmdata.key\"\nendpoints = [\"ws001.api.dmdata.jp\", \"ws003.api.dmdata.jp:443\", \"ticket\"]\n",
        key.display()
    );
    let cfg = parse_daemon(&text, dir.path()).unwrap();
    assert_eq!(cfg.links.len(), 2);
    assert_eq!(cfg.links[0].silence_limit, Duration::from_secs(75));
    let LinkKind::Dmdata {
        api_key_file,
        api_base,
        test,
        types,
        endpoints,
        app_name,
    } = &cfg.links[0].kind
    else {
        panic!()
    };
    assert_eq!(api_key_file, &key);
    assert_eq!(api_base, "http://127.0.0.1:8080");
    assert_eq!(*test, DmdataTest::Including);
    assert_eq!(types, &["VXSE45", "VXSE42"]);
    assert_eq!(endpoints, &["ticket"]);
    assert_eq!(app_name, "building-7");
    let LinkKind::Dmdata { endpoints, .. } = &cfg.links[1].kind else {
        panic!()
    };
    assert_eq!(endpoints.len(), 3);
    // not redundant and no endpoints: the ticket's own URL
    let text = format!(
        "{SITE}[[links.dmdata]]\nname = \"d\"\napi_key_file = \"dmdata.key\"\nredundant = false\n"
    );
    let cfg = parse_daemon(&text, dir.path()).unwrap();
    let LinkKind::Dmdata { endpoints, .. } = &cfg.links[0].kind else {
        panic!()
    };
    assert_eq!(endpoints, &["ticket"]);
}

#[test]
fn a_key_file_readable_by_others_missing_or_empty_is_refused() {
    let dir = Dir::new("perm");
    dir.key("open.key", "k", 0o644);
    dir.key("group.key", "k", 0o640);
    dir.key("empty.key", " \n", 0o600);
    let text = format!(
        "{SITE}\
         [[links.dmdata]]\nname = \"a\"\napi_key_file = \"open.key\"\n\
         [[links.dmdata]]\nname = \"b\"\napi_key_file = \"group.key\"\n\
         [[links.dmdata]]\nname = \"c\"\napi_key_file = \"missing.key\"\n\
         [[links.dmdata]]\nname = \"d\"\napi_key_file = \"empty.key\"\n\
         [[links.dmdata]]\nname = \"e\"\n"
    );
    let errors = problems(&text, dir.path());
    let open = error_at(&errors, "links.dmdata[0].api_key_file");
    assert!(
        open.contains("readable by group or others")
            && open.contains("644")
            && open.contains("chmod 600"),
        "{open}"
    );
    assert!(error_at(&errors, "links.dmdata[1].api_key_file").contains("640"));
    assert!(error_at(&errors, "links.dmdata[2].api_key_file").contains("cannot read"));
    assert!(error_at(&errors, "links.dmdata[3].api_key_file").contains("empty"));
    assert!(error_at(&errors, "links.dmdata[4].api_key_file").starts_with("missing"));
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn every_bad_value_is_reported_at_its_path() {
    let dir = Dir::new("bad");
    let text = format!(
        "{SITE}[[links.dmdata]]\nname = \"d\"\napi_key_file = \"dmdata.key\"\n\
         api_base = \"http://api.dmdata.jp\"\ntest = \"yes\"\ntypes = [\"VXSE45\", \"VXSE51\", \"VXSE45\"]\n\
         endpoints = [\"ws-tokyo.api.dmdata.jp\"]\napp_name = \"an application name that is too long\"\n\
         silence_limit_s = 0\napi_kye = 1\n\n\
         [[links.dmdata]]\nname = \"e\"\napi_key_file = \"dmdata.key\"\nredundant = false\n\
         endpoints = [\"wss://ws001.api.dmdata.jp/v2\", \"x\"]\ntypes = []\napi_base = \"ftp://x\"\n"
    );
    let errors = problems(&text, dir.path());
    assert!(error_at(&errors, "links.dmdata[0].api_base").contains("in clear"));
    assert!(error_at(&errors, "links.dmdata[0].test").contains("including"));
    assert!(error_at(&errors, "links.dmdata[0].types[1]").contains("VXSE51"));
    assert!(error_at(&errors, "links.dmdata[0].types[2]").contains("twice"));
    assert!(error_at(&errors, "links.dmdata[0].endpoints").contains("2–4"));
    assert!(error_at(&errors, "links.dmdata[0].app_name").contains("24"));
    assert!(error_at(&errors, "links.dmdata[0].silence_limit_s").contains("out of range"));
    assert!(error_at(&errors, "links.dmdata[0].api_kye").contains("api_key_file"));
    assert!(error_at(&errors, "links.dmdata[1].endpoints[0]").contains("host name"));
    assert!(error_at(&errors, "links.dmdata[1].types").contains("at least one"));
    assert!(error_at(&errors, "links.dmdata[1].api_base").contains("https://"));
    assert_eq!(errors.len(), 11, "{errors:#?}");
    // with redundant = false, exactly one endpoint
    let text = format!(
        "{SITE}[[links.dmdata]]\nname = \"d\"\napi_key_file = \"dmdata.key\"\nredundant = false\n\
         endpoints = [\"ws-tokyo.api.dmdata.jp\", \"ws-osaka.api.dmdata.jp\"]\n"
    );
    let errors = problems(&text, dir.path());
    assert!(error_at(&errors, "links.dmdata[0].endpoints").contains("exactly one"));
}

#[test]
fn the_example_file_documents_the_block() {
    let example = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/eewgate.example.toml"),
    )
    .unwrap();
    assert!(example.contains("# [[links.dmdata]]"));
    for key in [
        "api_key_file",
        "api_base",
        "test",
        "types",
        "redundant",
        "endpoints",
        "app_name",
    ] {
        assert!(example.contains(&format!("# {key} = ")), "{key}");
    }
    // the commented-out block, uncommented, is valid
    let block: String = example
        .lines()
        .skip_while(|l| *l != "# [[links.dmdata]]")
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let dir = Dir::new("example");
    let block = block.replace("/etc/eewgate/dmdata.key", "dmdata.key");
    let cfg = parse_daemon(&format!("{SITE}{block}"), dir.path())
        .unwrap_or_else(|e| panic!("{e:#?}\n{block}"));
    assert!(matches!(cfg.links[0].kind, LinkKind::Dmdata { .. }));
}
