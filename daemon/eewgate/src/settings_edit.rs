//! Editing the settings file from the web UI.
//!
//! An edit is either a list of key changes by dotted path — the same paths the
//! validators report (`outputs.relay[0].min_class`, `links.jma_tcp[1].host`,
//! `outputs.audio.include.training`) — or the whole file's new text. Changes are applied
//! with `toml_edit`, so the operator's comments and layout survive a save from the UI.
//! The result is checked exactly as `eewgate check-config` checks a file, diffed key by
//! key against the file on disk (the audit trail records that diff), and written
//! atomically: a temporary file beside it, synced, renamed over it, the directory
//! synced — a power cut leaves the old file or the new one, never half of either.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use eew_core::settings::SettingsError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike};

/// One key change: `value` `None` removes the key (its default applies again).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Dotted path, blocks indexed from 0 in file order.
    pub path: String,
    /// The new value.
    pub value: Option<serde_json::Value>,
}

/// One key whose value differs between two versions of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    /// Dotted path.
    pub path: String,
    /// The value before, in TOML notation; `None` when the key was absent.
    pub old: Option<String>,
    /// The value after; `None` when the key was removed.
    pub new: Option<String>,
}

impl std::fmt::Display for DiffEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let old = self.old.as_deref().unwrap_or("(default)");
        let new = self.new.as_deref().unwrap_or("(default)");
        write!(f, "{}: {old} → {new}", self.path)
    }
}

/// The revision of a settings text: the first 16 hex digits of its SHA-256. A save names
/// the revision it was made against, so two people editing at once cannot silently undo
/// each other's change.
pub fn revision(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One step of a path: a key, optionally indexing an array of tables.
#[derive(Debug, PartialEq, Eq)]
struct Seg<'a> {
    key: &'a str,
    index: Option<usize>,
}

fn parse_path(path: &str) -> Result<Vec<Seg<'_>>, String> {
    let bad = || {
        format!(
            "{path:?} is not a settings path (keys joined by '.', blocks indexed like \
             outputs.relay[0].min_class)"
        )
    };
    if path.is_empty() || path.len() > 200 {
        return Err(bad());
    }
    path.split('.')
        .map(|part| {
            let (key, index) = match part.split_once('[') {
                None => (part, None),
                Some((key, rest)) => {
                    let n = rest.strip_suffix(']').ok_or_else(bad)?;
                    (key, Some(n.parse::<usize>().map_err(|_| bad())?))
                }
            };
            let ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if ok {
                Ok(Seg { key, index })
            } else {
                Err(bad())
            }
        })
        .collect()
}

fn to_toml(path: &str, v: &serde_json::Value) -> Result<toml_edit::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Bool(b) => (*b).into(),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(f) = n.as_f64() {
                f.into()
            } else {
                return Err(format!("{path}: {n} is out of range"));
            }
        }
        J::String(s) => s.as_str().into(),
        J::Array(items) => {
            let mut a = toml_edit::Array::new();
            for item in items {
                a.push(to_toml(path, item)?);
            }
            toml_edit::Value::Array(a)
        }
        J::Object(map) => {
            let mut t = InlineTable::new();
            for (k, item) in map {
                t.insert(k, to_toml(path, item)?);
            }
            toml_edit::Value::InlineTable(t)
        }
        J::Null => return Err(format!("{path}: null is only allowed as the whole value")),
    })
}

fn set_in(
    t: &mut dyn TableLike,
    inline: bool,
    segs: &[Seg<'_>],
    value: Option<toml_edit::Value>,
    path: &str,
) -> Result<(), String> {
    let Some((seg, rest)) = segs.split_first() else {
        return Err(format!("{path}: empty path"));
    };
    if rest.is_empty() {
        if let Some(i) = seg.index {
            // `null` at a block removes it; a block is never replaced whole.
            if value.is_some() {
                return Err(format!(
                    "{path}: a whole block cannot be replaced; edit its keys, or the file's text"
                ));
            }
            let Some(item) = t.get_mut(seg.key) else {
                return Err(format!("{path}: there is no block {}", seg.key));
            };
            let blocks = item
                .as_array_of_tables_mut()
                .ok_or_else(|| format!("{path}: {} is not a list of blocks", seg.key))?;
            if i >= blocks.len() {
                return Err(format!(
                    "{path}: there are only {} {} blocks",
                    blocks.len(),
                    seg.key
                ));
            }
            blocks.remove(i);
            if blocks.is_empty() {
                t.remove(seg.key);
            }
            return Ok(());
        }
        match value {
            None => {
                t.remove(seg.key);
            }
            Some(mut v) => match t.get_mut(seg.key) {
                Some(item) if item.is_value() => {
                    // Keep the comment that follows the value on its line.
                    if let Some(old) = item.as_value() {
                        *v.decor_mut() = old.decor().clone();
                    }
                    *item = Item::Value(v);
                }
                Some(_) => {
                    return Err(format!(
                        "{path}: is a section, not a value; edit the keys inside it"
                    ));
                }
                None => {
                    t.insert(seg.key, Item::Value(v));
                }
            },
        }
        return Ok(());
    }
    // A key of the block just after the last one adds a block (a new link or contact).
    if let (Some(i), Some(_)) = (seg.index, &value) {
        match t.get_mut(seg.key) {
            None if i == 0 && !inline => {
                let mut blocks = ArrayOfTables::new();
                blocks.push(Table::new());
                t.insert(seg.key, Item::ArrayOfTables(blocks));
            }
            Some(item) => {
                if let Some(blocks) = item.as_array_of_tables_mut()
                    && blocks.len() == i
                {
                    blocks.push(Table::new());
                }
            }
            None => {}
        }
    }
    if t.get(seg.key).is_none() {
        if seg.index.is_some() {
            return Err(format!("{path}: there is no block {}", seg.key));
        }
        if value.is_none() {
            return Ok(()); // removing below a missing table: nothing to do
        }
        let new = if inline {
            Item::Value(toml_edit::Value::InlineTable(InlineTable::new()))
        } else {
            let mut table = Table::new();
            // A table that only holds other tables gets no header of its own.
            table.set_implicit(rest.len() > 1);
            Item::Table(table)
        };
        t.insert(seg.key, new);
    }
    let child = t
        .get_mut(seg.key)
        .ok_or_else(|| format!("{path}: {} could not be created", seg.key))?;
    match seg.index {
        None => {
            let child_inline = child.is_inline_table();
            let table = child
                .as_table_like_mut()
                .ok_or_else(|| format!("{path}: {} is a value, not a section", seg.key))?;
            set_in(table, inline || child_inline, rest, value, path)
        }
        Some(i) => {
            if let Some(blocks) = child.as_array_of_tables_mut() {
                let n = blocks.len();
                let table = blocks
                    .get_mut(i)
                    .ok_or_else(|| format!("{path}: there are only {n} {} blocks", seg.key))?;
                set_in(table, false, rest, value, path)
            } else if let Some(array) = child.as_array_mut() {
                let n = array.len();
                let table = array
                    .get_mut(i)
                    .ok_or_else(|| format!("{path}: there are only {n} {} entries", seg.key))?
                    .as_inline_table_mut()
                    .ok_or_else(|| format!("{path}: {}[{i}] is not a table", seg.key))?;
                set_in(table, true, rest, value, path)
            } else {
                Err(format!("{path}: {} is not a list of blocks", seg.key))
            }
        }
    }
}

/// Applies `changes` to `text`, keeping everything else (comments, order, layout) as it
/// was. Every change that cannot be applied is reported, each with its path.
pub fn apply_changes(text: &str, changes: &[Change]) -> Result<String, Vec<SettingsError>> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        vec![SettingsError {
            path: String::new(),
            message: format!("the settings file on disk is not valid TOML: {e}"),
        }]
    })?;
    let mut errors = Vec::new();
    // Block removals last, the highest index first, so the other changes' indices (as the
    // page showed them) still name the blocks they meant.
    let is_removal = |c: &&Change| c.value.is_none() && c.path.ends_with(']');
    let mut removals: Vec<&Change> = changes.iter().filter(is_removal).collect();
    removals.sort_by(|a, b| b.path.cmp(&a.path));
    let ordered = changes.iter().filter(|c| !is_removal(c)).chain(removals);
    for c in ordered {
        let result = parse_path(&c.path).and_then(|segs| {
            let value = c.value.as_ref().map(|v| to_toml(&c.path, v)).transpose()?;
            set_in(doc.as_table_mut(), false, &segs, value, &c.path)
        });
        if let Err(message) = result {
            // The path is reported beside the message; do not repeat it inside.
            let message = message
                .strip_prefix(&format!("{}: ", c.path))
                .map_or_else(|| message.clone(), str::to_owned);
            errors.push(SettingsError {
                path: c.path.clone(),
                message,
            });
        }
    }
    if errors.is_empty() {
        Ok(doc.to_string())
    } else {
        Err(errors)
    }
}

fn flatten_into(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_into(&join(k), v, out);
            }
        }
        toml::Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.is_table()) => {
            for (i, item) in items.iter().enumerate() {
                flatten_into(&format!("{prefix}[{i}]"), item, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Every value of a settings text by dotted path, rendered in TOML notation. `None` when
/// the text is not valid TOML.
pub fn flatten(text: &str) -> Option<BTreeMap<String, String>> {
    let table: toml::Table = text.parse().ok()?;
    let mut out = BTreeMap::new();
    flatten_into("", &toml::Value::Table(table), &mut out);
    Some(out)
}

/// The keys whose values differ between two settings texts, in path order. A text that
/// is not valid TOML counts as empty.
pub fn diff(old: &str, new: &str) -> Vec<DiffEntry> {
    let old = flatten(old).unwrap_or_default();
    let new = flatten(new).unwrap_or_default();
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let (o, n) = (old.get(p), new.get(p));
            (o != n).then(|| DiffEntry {
                path: p.clone(),
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

/// Writes `bytes` to `path` atomically: a temporary file beside it (created with `mode`,
/// or the existing file's permissions), written and synced, renamed over `path`, then the
/// directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mode = std::fs::metadata(path).map_or(mode, |m| m.permissions().mode() & 0o7777);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &str = "# The building in Ōita\n[site]\nlat = 33.24  # roof\nlon = 131.61\n\n\
                        [[outputs.relay]]\nid = 1\nmin_class = \"4\"\ninclude = { training = false }\n\n\
                        [[outputs.relay]]\nid = 2\nmin_class = \"5-\"\n";

    fn change(path: &str, value: serde_json::Value) -> Change {
        Change {
            path: path.to_owned(),
            value: (!value.is_null()).then_some(value),
        }
    }

    #[test]
    fn changes_keep_comments_and_layout() {
        let out = apply_changes(
            TEXT,
            &[
                change("site.lat", json!(33.25)),
                change("outputs.relay[1].min_class", json!("6-")),
                change("outputs.relay[0].include.training", json!(true)),
                change("outputs.relay[0].hold_s", json!(30)),
            ],
        )
        .unwrap();
        assert!(out.starts_with("# The building in Ōita\n[site]\nlat = 33.25  # roof\n"));
        assert!(out.contains("include = { training = true }"), "{out}");
        assert!(out.contains("min_class = \"6-\""), "{out}");
        assert!(out.contains("hold_s = 30"), "{out}");
        let d = diff(TEXT, &out);
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "outputs.relay[0].hold_s: (default) → 30",
                "outputs.relay[0].include.training: false → true",
                "outputs.relay[1].min_class: \"5-\" → \"6-\"",
                "site.lat: 33.24 → 33.25",
            ]
        );
    }

    #[test]
    fn new_sections_are_created_and_keys_removed() {
        let out = apply_changes(
            TEXT,
            &[
                change("outputs.audio.style", json!("phrase")),
                change("mqtt.include.training", json!(true)),
                change("site.lon", json!(null)),
                change("nothing.here", json!(null)),
            ],
        )
        .unwrap();
        let table: toml::Table = out.parse().unwrap();
        assert_eq!(table["outputs"]["audio"]["style"].as_str(), Some("phrase"));
        assert_eq!(table["mqtt"]["include"]["training"].as_bool(), Some(true));
        assert!(table["site"].get("lon").is_none());
        assert!(table.get("nothing").is_none());
        assert!(!out.contains("[outputs]\n"), "{out}");
    }

    #[test]
    fn every_bad_change_is_reported_with_its_path() {
        let errors = apply_changes(
            TEXT,
            &[
                change("outputs.relay[5].min_class", json!("4")),
                change("site", json!(1)),
                change("site.lat.x", json!(1)),
                change("bad path!", json!(1)),
                change("outputs.relay[0]", json!(1)),
                change("x[", json!(1)),
                change("site.lat", json!([1, null])),
            ],
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "outputs.relay[5].min_class",
                "site",
                "site.lat.x",
                "bad path!",
                "outputs.relay[0]",
                "x[",
                "site.lat"
            ]
        );
        assert!(errors[0].message.contains("only 2"), "{errors:?}");
        let bad_toml = apply_changes("[site\n", &[]).unwrap_err();
        assert_eq!(bad_toml.len(), 1);
    }

    #[test]
    fn blocks_are_added_after_the_last_and_removed() {
        let out = apply_changes(
            TEXT,
            &[
                change("outputs.relay[2].id", json!(3)),
                change("outputs.relay[2].min_class", json!("any")),
                change("links.jma_tcp[0].name", json!("primary")),
                change("links.jma_tcp[0].host", json!("192.0.2.1")),
                change("links.jma_tcp[1].name", json!("secondary")),
                change("outputs.relay[0]", json!(null)),
            ],
        )
        .unwrap();
        let table: toml::Table = out.parse().unwrap();
        let relays = table["outputs"]["relay"].as_array().unwrap();
        let ids: Vec<i64> = relays
            .iter()
            .map(|r| r["id"].as_integer().unwrap())
            .collect();
        assert_eq!(ids, [2, 3], "{out}");
        let links = table["links"]["jma_tcp"].as_array().unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0]["host"].as_str(), Some("192.0.2.1"));
        assert!(out.contains("[[links.jma_tcp]]"), "{out}");
        assert!(!out.contains("[links]\n"), "{out}");
        // Not two past the end, not a missing block's removal.
        let errors = apply_changes(
            TEXT,
            &[
                change("outputs.relay[3].id", json!(4)),
                change("outputs.relay[2]", json!(null)),
            ],
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].message, "there are only 2 relay blocks");
        // The last block removed takes its key with it.
        let one = apply_changes("[[a]]\nx = 1\n", &[change("a[0]", json!(null))]).unwrap();
        assert!(one.parse::<toml::Table>().unwrap().is_empty(), "{one}");
    }

    #[test]
    fn revisions_differ_with_the_text() {
        assert_eq!(revision(TEXT), revision(TEXT));
        assert_ne!(revision(TEXT), revision("x = 1\n"));
        assert_eq!(revision(TEXT).len(), 16);
    }

    #[test]
    fn diff_of_blocks_added_and_removed() {
        let d = diff("a = 1\n", "a = 1\n[[b]]\nc = \"x\"\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "b[0].c");
        assert_eq!(d[0].old, None);
        assert!(diff("not toml [", "a = 1").len() == 1);
    }

    #[test]
    fn atomic_write_keeps_the_mode_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("eewgate.toml");
        write_atomic(&path, b"a = 1\n", 0o640).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"a = 2\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
