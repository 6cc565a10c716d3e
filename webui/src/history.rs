//! The history API: pages of received telegrams and of alerts (keyset paging, filters),
//! one telegram's raw bytes, and CSV or JSON export of everything a filter matches.
//!
//! - `GET /api/history/telegrams` — `limit`, `before_id`, `event_id`, `from`, `to`, and
//!   `verdict` (`accepted`, `duplicate`, `rejected`, `garbage`) and `kind` (`forecast`,
//!   `warning`, `cancel`, `delivery_test`), each one value.
//! - `GET /api/history/alerts` — the same, with `label` (`real`, `training`, `test`,
//!   `drill`) instead of `verdict` and `kind`.
//! - `GET /api/history/telegrams/{id}/raw` — the bytes as `text/plain; charset=utf-8`
//!   (bytes that are not UTF-8 become U+FFFD), shown inline; 404 for an unknown id.
//! - `GET /api/history/{telegrams,alerts}/export?format=csv|json` — the table's filters
//!   (and `before_id` to go on where a cut export stopped), no `limit`: a download of at
//!   most [`EXPORT_MAX_ROWS`] records, newest first, read through the same pages (500 at
//!   a time). CSV is RFC 4180 (CRLF, a header row, fields with a comma, quote or line
//!   break quoted) with [`CSV_TELEGRAM_COLUMNS`] / [`CSV_ALERT_COLUMNS`], and text that a
//!   spreadsheet would run as a formula gets a leading `'`; JSON is one array of the
//!   records as the page API returns them. `X-Eewgate-Export-Rows` says how many rows,
//!   `X-Eewgate-Export-Truncated` whether the bound cut it, and then
//!   `X-Eewgate-Export-Next-Before-Id` where to go on.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::appliance::{Appliance, HistoryQuery};
use crate::server::{Admin, ApiError, AppState, Shared, parse_history_query};

/// An export stops after this many records (and says so): it is built in memory, at most
/// some tens of MiB, and one export runs at a time.
pub const EXPORT_MAX_ROWS: usize = 100_000;

/// The CSV columns of a telegram: what the history page shows.
pub const CSV_TELEGRAM_COLUMNS: &[&str] = &[
    "id",
    "received_at",
    "link",
    "verdict",
    "reason",
    "message",
    "event_id",
    "serial",
    "status",
    "kind",
    "format",
    "product",
    "actionable",
    "decode_us",
    "size",
];

/// The CSV columns of an alert: what the history page shows.
pub const CSV_ALERT_COLUMNS: &[&str] = &[
    "id",
    "event_id",
    "label",
    "first_at",
    "last_at",
    "first_serial",
    "last_serial",
    "max_class",
    "max_long_period_class",
    "warning",
    "cancelled",
    "ended",
    "actions",
];

/// One export at a time (per process): each holds its whole file in memory.
static EXPORTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Which history table a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Telegrams,
    Alerts,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Telegrams => "telegrams",
            Table::Alerts => "alerts",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Telegrams => CSV_TELEGRAM_COLUMNS,
            Table::Alerts => CSV_ALERT_COLUMNS,
        }
    }

    /// The parameters this table's requests take, for error messages.
    fn parameters(self, export: bool) -> &'static str {
        match (self, export) {
            (Table::Telegrams, false) => "limit, before_id, event_id, from, to, verdict, kind",
            (Table::Alerts, false) => "limit, before_id, event_id, from, to, label",
            (Table::Telegrams, true) => "format, before_id, event_id, from, to, verdict, kind",
            (Table::Alerts, true) => "format, before_id, event_id, from, to, label",
        }
    }
}

/// An export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Json,
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{name} must be one of {}", allowed.join(", ")))
    }
}

/// Map and validate the query of a page (`export` false) or an export of `table`: the
/// common parameters through [`parse_history_query`], plus this table's filters and, for
/// an export, its format (required) instead of a page size.
pub(crate) fn parse_query(
    params: &BTreeMap<String, String>,
    table: Table,
    export: bool,
) -> Result<(HistoryQuery, Option<Format>), String> {
    let mut common = BTreeMap::new();
    let (mut verdict, mut kind, mut label, mut format) = (None, None, None, None);
    for (k, v) in params {
        match (k.as_str(), table) {
            ("verdict", Table::Telegrams) => verdict = Some(one_of(k, v, HistoryQuery::VERDICTS)?),
            ("kind", Table::Telegrams) => kind = Some(one_of(k, v, HistoryQuery::KINDS)?),
            ("label", Table::Alerts) => label = Some(one_of(k, v, HistoryQuery::LABELS)?),
            ("format", _) if export => {
                format = Some(match v.as_str() {
                    "csv" => Format::Csv,
                    "json" => Format::Json,
                    _ => return Err("format must be csv or json".to_owned()),
                });
            }
            ("limit", _) if export => {
                return Err(format!(
                    "an export takes no limit: it has every matching record, at most \
                     {EXPORT_MAX_ROWS} (go on from X-Eewgate-Export-Next-Before-Id with before_id)"
                ));
            }
            ("limit" | "before_id" | "event_id" | "from" | "to", _) => {
                common.insert(k.clone(), v.clone());
            }
            (other, _) => {
                return Err(format!(
                    "unknown parameter {other:?} for {} (use {})",
                    table.name(),
                    table.parameters(export)
                ));
            }
        }
    }
    let mut q = parse_history_query(&common)?;
    q.verdict = verdict;
    q.kind = kind;
    q.label = label;
    if export && format.is_none() {
        return Err("format is required: csv or json".to_owned());
    }
    Ok((q, format))
}

fn query_params(
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    table: Table,
    export: bool,
) -> Result<(HistoryQuery, Option<Format>), ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    parse_query(&params, table, export).map_err(ApiError::bad_request)
}

async fn fetch<A: Appliance>(
    shared: &Shared<A>,
    table: Table,
    q: HistoryQuery,
) -> Result<Vec<Value>, ApiError> {
    match table {
        Table::Telegrams => shared.appliance.telegrams(q).await,
        Table::Alerts => shared.appliance.alerts(q).await,
    }
    .map_err(ApiError::internal)
}

fn id_of(item: &Value) -> Option<i64> {
    item.get("id").and_then(Value::as_i64)
}

async fn page<A: Appliance>(
    shared: &Shared<A>,
    table: Table,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (q, _) = query_params(params, table, false)?;
    let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let items = fetch(shared, table, q).await?;
    // A short page is the last one.
    let next = if items.len() >= limit {
        items.last().and_then(id_of)
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_before_id": next })))
}

/// `GET /api/history/telegrams`: one page of received telegrams.
pub(crate) async fn telegrams<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    page(&shared, Table::Telegrams, params).await
}

/// `GET /api/history/alerts`: one page of alerts.
pub(crate) async fn alerts<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    page(&shared, Table::Alerts, params).await
}

/// `GET /api/history/telegrams/{id}/raw`: the bytes as text, never as HTML (the type is
/// `text/plain` and every response says `nosniff`).
pub(crate) async fn telegram_raw<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id =
        id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request("the telegram id must be a positive whole number")
        })?;
    let raw = shared
        .appliance
        .telegram_raw(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no telegram {id} in history (it may have been purged)"),
            )
        })?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let disposition = format!("inline; filename=\"eewgate-telegram-{id}.txt\"");
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    Ok(r)
}

/// `GET /api/history/telegrams/export`.
pub(crate) async fn telegrams_export<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    export(&shared, Table::Telegrams, params).await
}

/// `GET /api/history/alerts/export`.
pub(crate) async fn alerts_export<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    export(&shared, Table::Alerts, params).await
}

/// What an export collected.
#[derive(Debug)]
struct Collected {
    body: Vec<u8>,
    rows: usize,
    /// `Some(before_id)` to go on from when the bound cut the export.
    next_before_id: Option<i64>,
}

/// Walks the keyset pages of `q` (newest first, [`HistoryQuery::MAX_LIMIT`] at a time)
/// into one file of at most `max_rows` records. Each page is written out and dropped
/// before the next is read, so only the file grows.
async fn collect<A: Appliance>(
    shared: &Shared<A>,
    table: Table,
    mut q: HistoryQuery,
    format: Format,
    max_rows: usize,
) -> Result<Collected, ApiError> {
    let page_size = usize::try_from(HistoryQuery::MAX_LIMIT).unwrap_or(500);
    let mut file = ExportFile::new(format, table);
    let mut next_before_id = None;
    loop {
        let want = max_rows.saturating_sub(file.rows).min(page_size);
        if want == 0 {
            // The bound is reached: is there anything beyond it?
            q.limit = 1;
            let more = fetch(shared, table, q.clone()).await?;
            if !more.is_empty() {
                next_before_id = q.before_id;
            }
            break;
        }
        q.limit = u32::try_from(want).unwrap_or(1);
        let items = fetch(shared, table, q.clone()).await?;
        for item in &items {
            file.push(item);
        }
        let last = items.last().and_then(id_of);
        // A short page is the last; ids must go down, or an appliance that ignores
        // `before_id` would have the export loop until the bound.
        if items.len() < want || last.is_none() || q.before_id.is_some_and(|b| last >= Some(b)) {
            break;
        }
        q.before_id = last;
    }
    let rows = file.rows;
    Ok(Collected {
        body: file.finish(),
        rows,
        next_before_id,
    })
}

async fn export<A: Appliance>(
    shared: &Shared<A>,
    table: Table,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (q, format) = query_params(params, table, true)?;
    let format = format.unwrap_or(Format::Csv);
    let _one_at_a_time = EXPORTING.acquire().await.map_err(ApiError::internal)?;
    let done = collect(shared, table, q, format, EXPORT_MAX_ROWS).await?;
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8; header=present", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let filename = format!(
        "eewgate-{}-{}.{ext}",
        table.name(),
        today_jst().format("%Y%m%d")
    );
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| -> Result<(), ApiError> {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).map_err(ApiError::internal)?,
        );
        Ok(())
    };
    put("content-type", content_type.to_owned())?;
    put(
        "content-disposition",
        format!("attachment; filename=\"{filename}\""),
    )?;
    put("x-eewgate-export-rows", done.rows.to_string())?;
    put(
        "x-eewgate-export-truncated",
        done.next_before_id.is_some().to_string(),
    )?;
    if let Some(id) = done.next_before_id {
        put("x-eewgate-export-next-before-id", id.to_string())?;
    }
    Ok((headers, done.body).into_response())
}

/// Today in Japan: the appliance's time zone names the file.
fn today_jst() -> chrono::NaiveDate {
    let now = DateTime::<Utc>::from(std::time::SystemTime::now());
    match FixedOffset::east_opt(9 * 3600) {
        Some(jst) => now.with_timezone(&jst).date_naive(),
        None => now.date_naive(),
    }
}

/// An export being written.
#[derive(Debug)]
struct ExportFile {
    format: Format,
    columns: &'static [&'static str],
    out: String,
    rows: usize,
}

impl ExportFile {
    fn new(format: Format, table: Table) -> Self {
        let columns = table.columns();
        let mut out = String::new();
        match format {
            Format::Csv => {
                // A byte-order mark: Excel on Japanese Windows reads UTF-8 only with it.
                out.push('\u{feff}');
                for (i, c) in columns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(c);
                }
                out.push_str("\r\n");
            }
            Format::Json => out.push('['),
        }
        Self {
            format,
            columns,
            out,
            rows: 0,
        }
    }

    fn push(&mut self, item: &Value) {
        match self.format {
            Format::Csv => {
                for (i, c) in self.columns.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    csv_field(&mut self.out, item.get(*c));
                }
                self.out.push_str("\r\n");
            }
            Format::Json => {
                self.out.push_str(if self.rows == 0 { "\n" } else { ",\n" });
                self.out.push_str(&item.to_string());
            }
        }
        self.rows += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.format == Format::Json {
            self.out.push_str("\n]\n");
        }
        self.out.into_bytes()
    }
}

/// Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, and the tab and
/// carriage return that some treat alike) gets a leading `'`, which makes it plain text
/// there. Numbers and booleans come from the appliance as JSON numbers and are left as
/// they are.
pub(crate) fn formula_guard(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// One CSV field (RFC 4180): absent and null are empty, text is guarded against formulas,
/// objects and arrays are their compact JSON; quoted when it holds a comma, a double
/// quote or a line break, with double quotes doubled.
pub(crate) fn csv_field(out: &mut String, value: Option<&Value>) {
    let text: Cow<'_, str> = match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => formula_guard(s),
        Some(v @ (Value::Bool(_) | Value::Number(_))) => Cow::Owned(v.to_string()),
        Some(v) => Cow::Owned(formula_guard(&v.to_string()).into_owned()),
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn table_filters_are_mapped_and_checked() {
        let (q, f) = parse_query(
            &params(&[("verdict", "garbage"), ("kind", "warning"), ("limit", "9")]),
            Table::Telegrams,
            false,
        )
        .unwrap();
        assert_eq!(q.verdict.as_deref(), Some("garbage"));
        assert_eq!(q.kind.as_deref(), Some("warning"));
        assert_eq!(q.limit, 9);
        assert_eq!(f, None);
        let (q, f) = parse_query(
            &params(&[("label", "drill"), ("format", "json")]),
            Table::Alerts,
            true,
        )
        .unwrap();
        assert_eq!(q.label.as_deref(), Some("drill"));
        assert_eq!(f, Some(Format::Json));
        for (table, export, bad) in [
            (Table::Telegrams, false, ("verdict", "ok")),
            (Table::Telegrams, false, ("verdict", "")),
            (Table::Telegrams, false, ("kind", "Warning")),
            (Table::Telegrams, false, ("label", "real")),
            (Table::Alerts, false, ("verdict", "accepted")),
            (Table::Alerts, false, ("label", "exercise")),
            (Table::Telegrams, false, ("format", "csv")),
            (Table::Telegrams, true, ("format", "xlsx")),
            (Table::Telegrams, true, ("limit", "10")),
            (Table::Alerts, true, ("event_id", "x")),
        ] {
            assert!(
                parse_query(&params(&[bad]), table, export).is_err(),
                "{table:?} {export} {bad:?}"
            );
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_guarded() {
        let field = |v: Value| {
            let mut s = String::new();
            csv_field(&mut s, Some(&v));
            s
        };
        assert_eq!(field(json!("plain")), "plain");
        assert_eq!(field(json!("a,b")), "\"a,b\"");
        assert_eq!(field(json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(field(json!("two\nlines")), "\"two\nlines\"");
        assert_eq!(field(json!("=1+1")), "'=1+1");
        assert_eq!(field(json!("-2")), "'-2");
        assert_eq!(field(json!("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(field(json!("+81")), "'+81");
        assert_eq!(
            field(json!("=HYPERLINK(\"x\",\"y\")")),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(field(json!(-3)), "-3");
        assert_eq!(field(json!(true)), "true");
        assert_eq!(field(Value::Null), "");
        assert_eq!(field(json!({"a": 1})), "\"{\"\"a\"\":1}\"");
        let mut s = String::new();
        csv_field(&mut s, None);
        assert_eq!(s, "");
    }
}
