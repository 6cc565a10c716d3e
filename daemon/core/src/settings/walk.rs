//! Walking a TOML table by hand, collecting every problem instead of stopping at the
//! first.
//!
//! [`Walker`] is what [`Settings::from_toml_table`](super::Settings::from_toml_table) uses,
//! and it is public so that the `eewgate` binary can check the sections it owns (`[links]`,
//! `[mqtt]`, `[web]`, …) with the same messages and the same "did you mean" help:
//!
//! ```
//! use eew_core::settings::Walker;
//!
//! let table: toml::Table = "[web]\nport = 70000\nlisten = \"0.0.0.0\"\n".parse().unwrap();
//! let mut w = Walker::new();
//! if let Some(web) = w.section(&table, "", "web") {
//!     let _port = w
//!         .get(web, "web", "port")
//!         .and_then(|(path, v)| w.int_in(&path, v, 1, 65535));
//!     w.unknown_keys(web, "web", &["port", "bind"]);
//! }
//! let errors = w.into_errors();
//! assert_eq!(errors.len(), 2);
//! assert_eq!(errors[0].path, "web.port");
//! assert_eq!(errors[1].path, "web.listen");
//! ```

use toml::{Table, Value};

use super::parse::SettingsError;

/// Collects [`SettingsError`]s while converting TOML values; every conversion records its
/// own error and returns `None` on failure, so a caller goes on with the next key.
#[derive(Debug, Default)]
pub struct Walker {
    errors: Vec<SettingsError>,
}

/// `path.key`, or `key` at the top level.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A short description of a TOML value for messages: `the string "yes"`, `the integer 5`.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("the string {shown:?}…")
            } else {
                format!("the string {shown:?}")
            }
        }
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date-time {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// The candidate closest to `word` when it is close enough to be a likely typo
/// (case-insensitive edit distance at most 1 for short words, at most a third of the
/// length for longer ones, or the same letters without `_`/`-`).
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-' && *c != ' ')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = norm(word);
    if w.is_empty() {
        return None;
    }
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &norm(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance over chars, counting a swap of two neighbours as one edit (optimal
/// string alignment): `prot` → `port` is 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // d[i * width + j] = distance between a[..i] and b[..j].
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        if let Some(x) = d.get_mut(at(i, 0)) {
            *x = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(x) = d.get_mut(at(0, j)) {
            *x = j;
        }
    }
    let get = |d: &[usize], i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut best = (get(&d, i - 1, j) + 1)
                .min(get(&d, i, j - 1) + 1)
                .min(get(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                best = best.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(x) = d.get_mut(at(i, j)) {
                *x = best;
            }
        }
    }
    get(&d, a.len(), b.len())
}

/// `"a", "b" or "c"`.
pub fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl Walker {
    /// An empty walker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at `path`.
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SettingsError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// True when nothing has been recorded.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems recorded so far.
    pub fn errors(&self) -> &[SettingsError] {
        &self.errors
    }

    /// Every problem recorded, in the order found.
    pub fn into_errors(self) -> Vec<SettingsError> {
        self.errors
    }

    /// Adds problems found elsewhere (for example by another walker).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = SettingsError>) {
        self.errors.extend(errors);
    }

    /// The value of `key` in `table` with its dotted path; `None` when absent (not an
    /// error: absent keys take their defaults).
    pub fn get<'t>(&self, table: &'t Table, path: &str, key: &str) -> Option<(String, &'t Value)> {
        table.get(key).map(|v| (join(path, key), v))
    }

    /// Like [`get`](Self::get), but records "missing" when absent; `what` says what the key
    /// is for and what it takes.
    pub fn require<'t>(
        &mut self,
        table: &'t Table,
        path: &str,
        key: &str,
        what: &str,
    ) -> Option<(String, &'t Value)> {
        let found = self.get(table, path, key);
        if found.is_none() {
            self.error(join(path, key), format!("missing: {what}"));
        }
        found
    }

    /// The sub-table `key` of `table` (a `[section]`); `None` when absent. Records an
    /// error when `key` is present but not a table.
    pub fn section<'t>(&mut self, table: &'t Table, path: &str, key: &str) -> Option<&'t Table> {
        let (p, v) = self.get(table, path, key)?;
        self.table_at(&p, v)
    }

    /// Records one error per key of `table` not in `known`, with a suggestion when a known
    /// key is close. At the top level (`path` empty) keys are called sections. Keys are
    /// reported in the table's iteration order (alphabetical).
    pub fn unknown_keys(&mut self, table: &Table, path: &str, known: &[&str]) {
        for key in table.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let what = if path.is_empty() { "section" } else { "key" };
            let message = match did_you_mean(key, known) {
                Some(s) => format!("unknown {what} {key:?}; did you mean {s:?}?"),
                None if known.is_empty() => {
                    format!("unknown {what} {key:?}; this table takes no keys")
                }
                None => format!(
                    "unknown {what} {key:?}; the {what}s allowed here are {}",
                    quoted_list(known)
                ),
            };
            self.error(join(path, key), message);
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &str, v: &Value) {
        self.error(path, format!("expected {expected}, found {}", describe(v)));
    }

    /// A table.
    pub fn table_at<'t>(&mut self, path: &str, v: &'t Value) -> Option<&'t Table> {
        match v {
            Value::Table(t) => Some(t),
            _ => {
                self.wrong_type(path, "a table", v);
                None
            }
        }
    }

    /// A boolean.
    pub fn bool_at(&mut self, path: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Boolean(b) => Some(*b),
            Value::String(s) if matches!(s.as_str(), "true" | "false") => {
                self.error(
                    path,
                    format!("expected a boolean, found the string {s:?}; write {s} without quotes"),
                );
                None
            }
            _ => {
                self.wrong_type(path, "a boolean (true or false)", v);
                None
            }
        }
    }

    /// A string.
    pub fn str_at<'t>(&mut self, path: &str, v: &'t Value) -> Option<&'t str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type(path, "a string", v);
                None
            }
        }
    }

    /// A whole number in `lo..=hi`.
    pub fn int_in(&mut self, path: &str, v: &Value, lo: i64, hi: i64) -> Option<i64> {
        match v {
            Value::Integer(i) if (lo..=hi).contains(i) => Some(*i),
            Value::Integer(i) => {
                self.error(path, format!("{i} is out of range; allowed {lo}–{hi}"));
                None
            }
            Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                self.error(
                    path,
                    format!(
                        "expected a whole number, found the string {s:?}; write it without quotes"
                    ),
                );
                None
            }
            _ => {
                self.wrong_type(path, &format!("a whole number ({lo}–{hi})"), v);
                None
            }
        }
    }

    /// A whole number in `lo..=hi`, as `u32` (both bounds must fit).
    pub fn u32_in(&mut self, path: &str, v: &Value, lo: u32, hi: u32) -> Option<u32> {
        self.int_in(path, v, i64::from(lo), i64::from(hi))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// A finite number (integers are accepted); range checks are the caller's.
    pub fn number_at(&mut self, path: &str, v: &Value) -> Option<f64> {
        match v {
            Value::Float(f) if f.is_finite() => Some(*f),
            Value::Float(f) => {
                self.error(path, format!("{f} is not a finite number"));
                None
            }
            // Settings values are small; i64 → f64 is exact for them and harmless beyond.
            #[allow(clippy::cast_precision_loss, reason = "settings values are small")]
            Value::Integer(i) => Some(*i as f64),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => {
                self.error(
                    path,
                    format!("expected a number, found the string {s:?}; write it without quotes"),
                );
                None
            }
            _ => {
                self.wrong_type(path, "a number", v);
                None
            }
        }
    }

    /// One of a fixed set of strings, mapped to its value.
    pub fn choice_at<T: Copy>(
        &mut self,
        path: &str,
        v: &Value,
        options: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let Value::String(s) = v else {
            self.wrong_type(path, &format!("one of {}", quoted_list(&names)), v);
            return None;
        };
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == s.as_str()) {
            return Some(*t);
        }
        let message = match did_you_mean(s, &names) {
            Some(n) => format!(
                "{s:?} is not allowed; did you mean {n:?}? (allowed: {})",
                quoted_list(&names)
            ),
            None => format!("{s:?} is not allowed; allowed: {}", quoted_list(&names)),
        };
        self.error(path, message);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("min_clas", &["min_class", "mode"]),
            Some("min_class")
        );
        assert_eq!(
            did_you_mean("minclass", &["min_class", "mode"]),
            Some("min_class")
        );
        assert_eq!(did_you_mean("MIN_CLASS", &["min_class"]), Some("min_class"));
        assert_eq!(did_you_mean("colour", &["min_class", "mode"]), None);
        assert_eq!(did_you_mean("relays", &["relay", "audio"]), Some("relay"));
        assert_eq!(did_you_mean("", &["a"]), None);
    }

    #[test]
    fn lists() {
        assert_eq!(quoted_list(&[]), "");
        assert_eq!(quoted_list(&["a"]), "\"a\"");
        assert_eq!(quoted_list(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("prot", "port"), 1);
        assert_eq!(edit_distance("trainnig", "training"), 1);
    }
}
